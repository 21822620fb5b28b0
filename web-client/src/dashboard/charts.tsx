// Charts in plain SVG. Every chart states its numbers as text too: a bar
// list is a list of buttons whose label and count are read aloud, the bars
// are decoration; a column chart has a <title> and a table beside it.
import { num } from './format';

export interface Bar {
  key: string;
  label: string;
  value: number;
  /** The same measure in the previous period: a thin marker under the bar. */
  previous?: number;
  /** A second part of the bar (e.g. extra murario after intra murario). */
  second?: number;
  /** Shown after the number: "3 intra · 1 extra". */
  detail?: string;
}

/** A horizontal bar list; each row opens its drill-down when given onOpen. */
export function Bars(props: { label: string; bars: Bar[]; onOpen?: (b: Bar) => void; empty: string; id?: string }) {
  const max = Math.max(1, ...props.bars.map((b) => Math.max(b.value + (b.second ?? 0), b.previous ?? 0)));
  if (props.bars.length === 0) return <p class="muted dash-empty">{props.empty}</p>;
  return (
    <ul class="bars" aria-label={props.label} id={props.id}>
      {props.bars.map((b) => {
        const w1 = (b.value / max) * 100;
        const w2 = ((b.second ?? 0) / max) * 100;
        const content = (
          <>
            <span class="bar-label">{b.label}</span>
            <span class="bar-num">
              {num(b.value + (b.second ?? 0))}
              {b.detail && <span class="bar-detail"> · {b.detail}</span>}
            </span>
            <svg class="bar-svg" viewBox="0 0 100 12" preserveAspectRatio="none" aria-hidden="true" focusable="false">
              <rect class="bar-track" x="0" y="0" width="100" height="8" rx="1" />
              {w1 > 0 && <rect class="bar-fill" x="0" y="0" width={w1} height="8" />}
              {w2 > 0 && <rect class="bar-fill2" x={w1} y="0" width={w2} height="8" />}
              {b.previous !== undefined && b.previous > 0 && (
                <rect class="bar-prev" x="0" y="10" width={(b.previous / max) * 100} height="2" />
              )}
            </svg>
          </>
        );
        return (
          <li key={b.key} data-key={b.key} data-value={b.value + (b.second ?? 0)}>
            {props.onOpen ? (
              <button type="button" class="bar-row" onClick={() => props.onOpen!(b)}>
                {content}
              </button>
            ) : (
              <div class="bar-row">{content}</div>
            )}
          </li>
        );
      })}
    </ul>
  );
}

/** A column chart of one value per day, with its title; the numbers are in the table the caller renders. */
export function Columns(props: { title: string; values: { key: string; label: string; value: number; alert?: boolean }[] }) {
  const n = props.values.length;
  if (n === 0) return null;
  const max = Math.max(1, ...props.values.map((v) => v.value));
  const w = 100 / n;
  return (
    <svg class="columns" viewBox="0 0 100 40" preserveAspectRatio="none" role="img" aria-label={props.title}>
      <title>{props.title}</title>
      {props.values.map((v, i) => {
        const h = (v.value / max) * 38;
        return (
          <rect
            key={v.key}
            class={v.alert ? 'col alert' : 'col'}
            x={i * w + w * 0.15}
            y={40 - Math.max(h, v.value > 0 ? 1 : 0)}
            width={w * 0.7}
            height={Math.max(h, v.value > 0 ? 1 : 0)}
          >
            <title>{`${v.label}: ${v.value}`}</title>
          </rect>
        );
      })}
    </svg>
  );
}
