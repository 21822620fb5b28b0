// The blocks of the dashboard. Each number opens the records behind it
// (a drill-down of /api/dashboard/records); persons appear by code only.
import { useEffect, useState } from 'preact/hooks';
import { t } from '../i18n';
import { Link } from '../ui/router';
import { Bars, Columns, type Bar } from './charts';
import { ago, dateLabel, dayLabel, duration, num, skew, stamp } from './format';
import { label, recordHref, type Names } from './names';
import type { Filters } from './filters';
import type { CategoryCount, Device, Item, Summary } from './types';

export interface Drill {
  title: string;
  params: Record<string, string>;
}

export interface BlockProps {
  s: Summary;
  f: Filters;
  n: Names;
  open: (d: Drill) => void;
}

function Delta(props: { now: number; before: number; period: string }) {
  const d = props.now - props.before;
  const sign = d > 0 ? '▲ +' : d < 0 ? '▼ −' : '= ';
  return <span class="delta">{t('dash.delta', { sign, n: num(Math.abs(d)), period: t(`dash.vs.${props.period}` as any) })}</span>;
}

function Kpi(props: { id: string; title: string; value: number; sub?: any; alert?: boolean; onOpen?: () => void }) {
  const body = (
    <>
      <span class="kpi-title">{props.title}</span>
      <span class="kpi-value" data-value={props.value}>
        {num(props.value)}
      </span>
      {props.sub && <span class="kpi-sub">{props.sub}</span>}
    </>
  );
  return (
    <li class={`kpi${props.alert ? ' alert' : ''}`} id={props.id}>
      {props.onOpen ? (
        <button type="button" class="kpi-btn" onClick={props.onOpen}>
          {body}
        </button>
      ) : (
        <div class="kpi-btn">{body}</div>
      )}
    </li>
  );
}

export function Kpis({ s, f, open }: BlockProps) {
  const cur = s.activity.current;
  const prev = s.activity.previous;
  const intra = cur.contactsByInstitute.reduce((a, c) => a + c.intra, 0);
  const extra = cur.contactsByInstitute.reduce((a, c) => a + c.extra, 0);
  return (
    <ul class="kpis" aria-label={t('dash.activity')}>
      <Kpi
        id="kpi-visits"
        title={t('dash.campVisits')}
        value={cur.campVisits}
        sub={<Delta now={cur.campVisits} before={prev.campVisits} period={f.period} />}
        onOpen={() => open({ title: t('dash.campVisits'), params: { block: 'camp_visits' } })}
      />
      <Kpi
        id="kpi-households"
        title={t('dash.householdsMet')}
        value={cur.householdsMet}
        sub={<Delta now={cur.householdsMet} before={prev.householdsMet} period={f.period} />}
        onOpen={() => open({ title: t('dash.campVisits'), params: { block: 'camp_visits' } })}
      />
      <Kpi
        id="kpi-contacts"
        title={t('dash.contacts')}
        value={cur.contacts}
        sub={
          <>
            {t('dash.intraExtra', { intra: num(intra), extra: num(extra) })}
            <br />
            <Delta now={cur.contacts} before={prev.contacts} period={f.period} />
          </>
        }
        onOpen={() => open({ title: t('dash.contacts'), params: { block: 'contacts' } })}
      />
      <Kpi
        id="kpi-overdue"
        title={t('dash.overdue')}
        value={s.overdue.total}
        alert={s.overdue.total > 0}
        onOpen={() => open({ title: t('dash.overdue'), params: { block: 'overdue' } })}
      />
      <Kpi
        id="kpi-conflicts"
        title={t('dash.conflicts')}
        value={s.conflicts.open}
        alert={s.conflicts.open > 0}
        onOpen={() => open({ title: t('dash.conflicts'), params: { block: 'conflicts' } })}
      />
      <Kpi
        id="kpi-silent"
        title={t('dash.silentDevices')}
        value={s.devices.silent}
        alert={s.devices.silent > 0}
        sub={t('dash.silentFor', { h: num(s.devices.silentAfterHours) })}
        onOpen={() =>
          open({ title: t('dash.devicesSilent', { n: num(s.devices.silent), h: num(s.devices.silentAfterHours) }), params: { block: 'devices', silent: 'true' } })
        }
      />
    </ul>
  );
}

function prevOf(list: CategoryCount[], category: string): number {
  return list.find((c) => c.category === category)?.count ?? 0;
}

function Section(props: { id: string; title: string; class?: string; children: any; extra?: any }) {
  return (
    <section class={`dash-block ${props.class ?? ''}`} id={props.id} aria-labelledby={`${props.id}-h`}>
      <header class="block-head">
        <h2 id={`${props.id}-h`}>{props.title}</h2>
        {props.extra}
      </header>
      {props.children}
    </section>
  );
}

export function ActivityBlock({ s, n, open }: BlockProps) {
  const cur = s.activity.current;
  const prev = s.activity.previous;
  const camps: Bar[] = cur.visitsByCamp.map((c) => ({
    key: c.site,
    label: n.site(c.site),
    value: c.visits,
    previous: prev.visitsByCamp.find((p) => p.site === c.site)?.visits ?? 0,
    detail: t('dash.households', { n: num(c.householdsMet) }),
  }));
  const institutes: Bar[] = cur.contactsByInstitute.map((c) => ({
    key: c.site,
    label: n.site(c.site),
    value: c.intra,
    second: c.extra,
    previous: prev.contactsByInstitute.find((p) => p.site === c.site)?.total ?? 0,
    detail: t('dash.intraExtra', { intra: num(c.intra), extra: num(c.extra) }),
  }));
  const topics: Bar[] = cur.topics
    .filter((c) => c.count > 0 || prevOf(prev.topics, c.category) > 0)
    .map((c) => ({ key: c.category, label: label('topic', c.category), value: c.count, previous: prevOf(prev.topics, c.category) }));
  const requests: Bar[] = cur.requests
    .filter((c) => c.count > 0 || prevOf(prev.requests, c.category) > 0)
    .map((c) => ({ key: c.category, label: label('request', c.category), value: c.count, previous: prevOf(prev.requests, c.category) }));
  return (
    <Section id="block-activity" title={t('dash.activity')} class="wide2">
      <p class="legend muted">
        <span class="swatch fill" aria-hidden="true" /> {t(`dash.period.${s.period.kind}` as any)}{' '}
        <span class="swatch prev" aria-hidden="true" /> {t(`dash.previous.${s.period.kind}` as any)}
      </p>
      <div class="cols2">
        <div>
          <h3>{t('dash.visitsByCamp')}</h3>
          <Bars
            id="bars-camps"
            label={t('dash.visitsByCamp')}
            bars={camps}
            empty={t('dash.none')}
            onOpen={(b) => open({ title: `${t('dash.campVisits')} · ${b.label}`, params: { block: 'camp_visits', site: b.key } })}
          />
          <h3>{t('dash.topics')}</h3>
          <Bars
            label={t('dash.topics')}
            bars={topics}
            empty={t('dash.none')}
            onOpen={(b) => open({ title: `${t('dash.topics')} · ${b.label}`, params: { block: 'camp_visits', category: b.key } })}
          />
        </div>
        <div>
          <h3>{t('dash.contactsByInstitute')}</h3>
          <Bars
            id="bars-institutes"
            label={t('dash.contactsByInstitute')}
            bars={institutes}
            empty={t('dash.none')}
            onOpen={(b) => open({ title: `${t('dash.contacts')} · ${b.label}`, params: { block: 'contacts', site: b.key } })}
          />
          <h3>{t('dash.requests')}</h3>
          <Bars
            label={t('dash.requests')}
            bars={requests}
            empty={t('dash.none')}
            onOpen={(b) => open({ title: `${t('dash.requests')} · ${b.label}`, params: { block: 'contacts', category: b.key } })}
          />
        </div>
      </div>
    </Section>
  );
}

export function CaseloadBlock({ s, open }: BlockProps) {
  const c = s.caseload;
  const rows: [string, string, number, Record<string, string>][] = [
    ['followed', t('dash.followed'), c.followed, { block: 'persons' }],
    ['new', t('dash.newThisWeek'), c.newThisWeek, { block: 'persons_new' }],
    ['30', t('dash.notSeen', { n: 30 }), c.notSeen30, { block: 'persons_not_seen', days: '30' }],
    ['60', t('dash.notSeen', { n: 60 }), c.notSeen60, { block: 'persons_not_seen', days: '60' }],
    ['90', t('dash.notSeen', { n: 90 }), c.notSeen90, { block: 'persons_not_seen', days: '90' }],
  ];
  return (
    <Section id="block-caseload" title={t('dash.caseload')}>
      <ul class="stats">
        {rows.map(([k, title, value, params]) => (
          <li key={k}>
            <button type="button" class="stat" data-stat={k} onClick={() => open({ title, params })}>
              <span class="stat-value">{num(value)}</span>
              <span class="stat-title">{title}</span>
            </button>
          </li>
        ))}
      </ul>
    </Section>
  );
}

export function ReferralsBlock({ s, open }: BlockProps) {
  const r = s.referrals;
  const status: Bar[] = r.byStatus.map((c) => ({ key: c.category, label: label('status', c.category), value: c.count }));
  const outcomes: Bar[] = r.outcomes.current.map((c) => ({
    key: c.category,
    label: label('status', c.category),
    value: c.count,
    previous: prevOf(r.outcomes.previous, c.category),
  }));
  return (
    <Section id="block-referrals" title={t('dash.referrals')} extra={<span class="muted">{num(r.total)} {t('dash.total')}</span>}>
      {r.stuckSent > 0 && (
        <button
          type="button"
          class="alert-line"
          id="stuck-sent"
          onClick={() => open({ title: t('dash.stuck', { n: r.stuckDays }), params: { block: 'referrals_stuck' } })}
        >
          <strong>{num(r.stuckSent)}</strong> {t('dash.stuck', { n: r.stuckDays })}
        </button>
      )}
      <h3>{t('dash.byStatus')}</h3>
      <Bars
        label={t('dash.byStatus')}
        bars={status}
        empty={t('dash.none')}
        onOpen={(b) => open({ title: `${t('dash.referrals')} · ${b.label}`, params: { block: 'referrals', status: b.key } })}
      />
      <h3>{t('dash.outcomes')}</h3>
      <Bars
        label={t('dash.outcomes')}
        bars={outcomes}
        empty={t('dash.none')}
        onOpen={(b) => open({ title: `${t('dash.outcomes')} · ${b.label}`, params: { block: 'referral_outcomes', status: b.key } })}
      />
      <h3>{t('dash.byService')}</h3>
      {r.byService.length === 0 ? (
        <p class="muted dash-empty">{t('dash.none')}</p>
      ) : (
        <table class="dtable compact">
          <thead>
            <tr>
              <th scope="col">{t('dash.service')}</th>
              <th scope="col" class="n">{t('dash.open')}</th>
              <th scope="col" class="n">{t('dash.total')}</th>
            </tr>
          </thead>
          <tbody>
            {r.byService.slice(0, 8).map((sv) => (
              <tr key={sv.service}>
                <td>
                  <button
                    type="button"
                    class="link"
                    onClick={() => open({ title: `${t('dash.referrals')} · ${sv.name}`, params: { block: 'referrals', service: sv.service } })}
                  >
                    {sv.name}
                  </button>
                  <span class="sub">{label('category', sv.category)}</span>
                </td>
                <td class="n">{num(sv.open)}</td>
                <td class="n">{num(sv.total)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function Codes(props: { codes: string[] }) {
  if (!props.codes?.length) return <span class="muted">—</span>;
  return (
    <>
      {props.codes.map((c) => (
        <code class="pcode" key={c}>
          {c}
        </code>
      ))}
    </>
  );
}

function kindOf(it: Item): string {
  switch (it.collection) {
    case 'camp_visits':
      return t('dash.overdueVisits');
    case 'secretariat_contacts':
      return t('dash.overdueContacts');
    case 'referrals':
      return t('dash.overdueReferrals');
  }
  return it.collection;
}

export function OverdueBlock({ s, n, open }: BlockProps) {
  const o = s.overdue;
  return (
    <Section id="block-overdue" title={t('dash.overdue')} extra={<span class={o.total ? 'badge alert' : 'badge'}>{num(o.total)}</span>}>
      <ul class="chips">
        {(
          [
            ['visit', t('dash.overdueVisits'), o.visits],
            ['contact', t('dash.overdueContacts'), o.contacts],
            ['referral', t('dash.overdueReferrals'), o.referrals],
          ] as const
        ).map(([k, title, v]) => (
          <li key={k}>
            <button type="button" class="chipbtn" onClick={() => open({ title: `${t('dash.overdue')} · ${title}`, params: { block: 'overdue', kind: k } })}>
              <strong>{num(v)}</strong> {title}
            </button>
          </li>
        ))}
      </ul>
      {o.byWorker.length > 0 && (
        <table class="dtable compact" id="overdue-by-worker">
          <thead>
            <tr>
              <th scope="col">{t('dash.worker')}</th>
              <th scope="col" class="n">{t('dash.overdueVisits')}</th>
              <th scope="col" class="n">{t('dash.overdueContacts')}</th>
              <th scope="col" class="n">{t('dash.overdueReferrals')}</th>
              <th scope="col" class="n">{t('dash.total')}</th>
            </tr>
          </thead>
          <tbody>
            {o.byWorker.map((w) => (
              <tr key={w.worker}>
                <td>
                  <button
                    type="button"
                    class="link"
                    onClick={() => open({ title: `${t('dash.overdue')} · ${n.worker(w.worker)}`, params: { block: 'overdue', worker: w.worker } })}
                    disabled={!w.worker}
                  >
                    {n.worker(w.worker)}
                  </button>
                </td>
                <td class="n">{num(w.visits)}</td>
                <td class="n">{num(w.contacts)}</td>
                <td class="n">{num(w.referrals)}</td>
                <td class="n">
                  <strong>{num(w.total)}</strong>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {o.items.length > 0 && (
        <>
          <h3>{t('dash.mostOverdue')}</h3>
          <ul class="rows">
            {o.items.slice(0, 6).map((it) => (
              <li key={it.id}>
                <span class="row-date">{dateLabel(it.date)}</span>
                <span class="row-what">{kindOf(it)}</span>
                <Codes codes={it.personCodes} />
                <span class="row-who">{n.worker(it.worker ?? '')}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}

export function LagBlock({ s, open }: BlockProps) {
  const days = s.offlineLag;
  const shown = days.filter((d) => d.records > 0);
  return (
    <Section id="block-lag" title={t('dash.lag')}>
      <p class="muted small">{t('dash.lagHint')}</p>
      <Columns
        title={t('dash.chart', { title: `${t('dash.lag')} (${t('dash.avg').toLowerCase()})` })}
        values={days.map((d) => ({ key: d.day, label: dayLabel(d.day), value: d.avgSeconds, alert: d.over24h > 0 }))}
      />
      {shown.length === 0 ? (
        <p class="muted dash-empty">{t('dash.none')}</p>
      ) : (
        <div class="scroll">
          <table class="dtable compact" id="lag-table">
            <thead>
              <tr>
                <th scope="col">{t('dash.day')}</th>
                <th scope="col" class="n">{t('dash.records')}</th>
                <th scope="col" class="n">{t('dash.avg')}</th>
                <th scope="col" class="n">{t('dash.max')}</th>
                <th scope="col" class="n">&gt; 1 h</th>
                <th scope="col" class="n">&gt; 24 h</th>
                <th scope="col" class="n">{t('dash.ahead')}</th>
              </tr>
            </thead>
            <tbody>
              {shown.map((d) => (
                <tr key={d.day} class={d.over24h > 0 ? 'alert' : ''}>
                  <td>
                    <button
                      type="button"
                      class="link"
                      onClick={() => open({ title: `${t('dash.lag')} · ${dayLabel(d.day)}`, params: { block: 'offline_lag', day: d.day } })}
                    >
                      {dayLabel(d.day)}
                    </button>
                  </td>
                  <td class="n">{num(d.records)}</td>
                  <td class="n">{duration(d.avgSeconds)}</td>
                  <td class="n">{duration(d.maxSeconds)}</td>
                  <td class="n">{num(d.over1h)}</td>
                  <td class="n">{num(d.over24h)}</td>
                  <td class={`n${d.ahead > 0 ? ' warnnum' : ''}`}>{num(d.ahead)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Section>
  );
}

export function ConflictsBlock(props: BlockProps & { resolve: (it: Item, r: 'keep_current' | 'restore_overwritten') => void; busy: string; error: string }) {
  const { s, n, open } = props;
  const c = s.conflicts;
  return (
    <Section
      id="block-conflicts"
      title={t('dash.conflicts')}
      extra={<span class={c.open ? 'badge alert' : 'badge'} id="conflicts-open">{num(c.open)}</span>}
    >
      {c.byKind.some((k) => k.count > 0) && (
        <ul class="chips">
          {c.byKind
            .filter((k) => k.count > 0)
            .map((k) => (
              <li key={k.category}>
                <button
                  type="button"
                  class="chipbtn"
                  onClick={() => open({ title: label('dash.kind', k.category), params: { block: 'conflicts', kind: k.category } })}
                >
                  <strong>{num(k.count)}</strong> {label('dash.kind', k.category)}
                </button>
              </li>
            ))}
        </ul>
      )}
      {props.error && (
        <p class="error" role="alert">
          {props.error}
        </p>
      )}
      {c.items.length === 0 ? (
        <p class="muted dash-empty">{t('dash.conflictsEmpty')}</p>
      ) : (
        <ul class="conflicts" id="conflict-list">
          {c.items.slice(0, 10).map((it) => (
            <li key={it.id} class="conflict" data-conflict={it.id}>
              <div class="conflict-head">
                <strong>{label('dash.kind', it.kind ?? '')}</strong>
                <span class="muted">{stamp(it.date)}</span>
              </div>
              <div class="conflict-body">
                {label('dash.coll', it.collection)}
                {it.field && it.field !== '*' && <> · {t('dash.field', { field: label('field', it.field) })}</>}
                {it.personCodes.length > 0 && (
                  <>
                    {' '}
                    · <Codes codes={it.personCodes} />
                  </>
                )}{' '}
                · <span class="muted">{n.team(it.team ?? '')}</span>
                {it.worker && (
                  <>
                    {' '}
                    · <span class="muted">{n.worker(it.worker)}</span>
                  </>
                )}
              </div>
              <div class="conflict-actions">
                <button type="button" disabled={props.busy === it.id} data-resolve="keep_current" onClick={() => props.resolve(it, 'keep_current')}>
                  {it.kind === 'same_field' ? t('dash.keep') : t('dash.acknowledge')}
                </button>
                {it.kind === 'same_field' && (
                  <button
                    type="button"
                    disabled={props.busy === it.id}
                    data-resolve="restore_overwritten"
                    onClick={() => props.resolve(it, 'restore_overwritten')}
                  >
                    {t('dash.restore')}
                  </button>
                )}
              </div>
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}

function storageLabel(s: string): string {
  return t(s === 'persisted' ? 'dash.storage.persisted' : s === 'best_effort' ? 'dash.storage.best_effort' : 'dash.storage.unknown');
}

/** Now, renewed every 30 s, so that "2 minuti fa" stays true on a page left open (a clock, not a request). */
function useNow(): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 30_000);
    return () => clearInterval(timer);
  }, []);
  return now;
}

function When(props: { at: string; now: number }) {
  if (!props.at) return <span class="muted">{t('dash.never')}</span>;
  return (
    <time dateTime={props.at.replace(' ', 'T')} title={stamp(props.at)}>
      {ago(props.at, props.now)}
    </time>
  );
}

export function DevicesBlock(props: BlockProps & { revoke: (d: Device) => void }) {
  const { s, n } = props;
  const d = s.devices;
  const now = useNow();
  return (
    <Section
      id="block-devices"
      title={t('dash.devices')}
      class="span-all"
      extra={
        <span class={d.silent ? 'badge alert' : 'badge'}>{t('dash.devicesSilent', { n: num(d.silent), h: num(d.silentAfterHours) })}</span>
      }
    >
      {d.items.length === 0 ? (
        <p class="muted dash-empty">{t('dash.none')}</p>
      ) : (
        <table class="dtable devices" id="device-table">
          <thead>
            <tr>
              <th scope="col">{t('dash.worker')}</th>
              <th scope="col">{t('dash.device')}</th>
              <th scope="col">{t('dash.lastPush')}</th>
              <th scope="col">{t('dash.lastPull')}</th>
              <th scope="col" class="n">{t('dash.pending')}</th>
              <th scope="col">{t('dash.appVersion')}</th>
              <th scope="col">{t('dash.storage')}</th>
              <th scope="col" class="n">{t('dash.skew')}</th>
              <th scope="col">
                <span class="sr">{t('dash.revoke')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {d.items.map((dev) => (
              <tr
                key={dev.id}
                data-device={dev.id}
                data-silent={dev.silent ? 'true' : 'false'}
                class={dev.silent ? 'silent' : dev.revoked ? 'revoked' : ''}
              >
                <td data-label={t('dash.worker')}>
                  <span>
                    <strong>{n.worker(dev.worker)}</strong>
                    {dev.silent && <span class="tag silent-tag">{t('dash.silent')}</span>}
                    {dev.revoked && <span class="tag">{t('dash.revoked')}</span>}
                  </span>
                </td>
                <td data-label={t('dash.device')}>
                  <span>
                    {dev.name}
                    <span class="sub">{dev.platform}</span>
                  </span>
                </td>
                <td data-label={t('dash.lastPush')}>
                  <When at={dev.lastPush} now={now} />
                </td>
                <td data-label={t('dash.lastPull')}>
                  <When at={dev.lastPull} now={now} />
                </td>
                <td data-label={t('dash.pending')} class={`n${dev.pending > 0 ? ' warnnum' : ''}`}>
                  {num(dev.pending)}
                </td>
                <td data-label={t('dash.appVersion')}>{dev.appVersion || '—'}</td>
                <td data-label={t('dash.storage')} class={dev.storage === 'best_effort' ? 'warnnum' : ''}>
                  {storageLabel(dev.storage)}
                </td>
                <td data-label={t('dash.skew')} class={`n${Math.abs(dev.clockSkewMs) > 120_000 ? ' warnnum' : ''}`}>
                  {skew(dev.clockSkewMs)}
                </td>
                <td class="act">
                  {!dev.revoked && (
                    <button type="button" class="danger small" data-revoke={dev.id} onClick={() => props.revoke(dev)}>
                      {t('dash.revoke')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

export function FeedBlock({ s, n, open }: BlockProps) {
  return (
    <Section
      id="block-feed"
      title={t('dash.feed')}
      class="wide2"
      extra={
        <button type="button" class="link" onClick={() => open({ title: t('dash.feed'), params: { block: 'feed' } })}>
          {t('dash.showRecords')}
        </button>
      }
    >
      {s.feed.length === 0 ? (
        <p class="muted dash-empty">{t('dash.feedEmpty')}</p>
      ) : (
        <ol class="feed" id="feed" aria-live="polite">
          {s.feed.slice(0, 20).map((e) => {
            const href = e.op === 'purge' ? '' : recordHref(e.collection, e.recordId);
            return (
              <li key={e.seq} data-record={e.recordId} data-seq={e.seq}>
                <time class="feed-time" dateTime={e.at.replace(' ', 'T')}>
                  {stamp(e.at)}
                </time>
                <span class="feed-what">
                  <strong>{e.worker ? n.worker(e.worker) : t('dash.someone')}</strong> {label('dash.op', e.op)}{' '}
                  {href ? <Link href={href}>{label('dash.coll', e.collection)}</Link> : label('dash.coll', e.collection)}
                  {e.personCode && (
                    <>
                      {' '}
                      <code class="pcode">{e.personCode}</code>
                    </>
                  )}
                </span>
                {e.site && <span class="feed-where muted">{n.site(e.site)}</span>}
              </li>
            );
          })}
        </ol>
      )}
    </Section>
  );
}
