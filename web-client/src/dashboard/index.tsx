// The supervisor dashboard (/dashboard): a lazily loaded chunk of the web
// app, so that the field app's start-up JavaScript does not grow. It reads
// /api/dashboard/summary with the filters of the URL, follows the live
// stream (refetching on hints, never polling), opens the records behind a
// number, resolves conflicts, revokes devices and exports the monthly CSV.
import './dashboard.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import { signal } from '@preact/signals';
import { t, lang } from '../i18n';
import { ApiError, isUnauthorized } from '../lib/api';
import { account, profile, needsPassword } from '../lib/session';
import { path } from '../ui/router';
import * as api from './api';
import { ActivityBlock, CaseloadBlock, ConflictsBlock, DevicesBlock, FeedBlock, Kpis, LagBlock, OverdueBlock, ReferralsBlock, type Drill } from './blocks';
import { DrillDown, RevokeDialog } from './dialogs';
import { DEFAULT_SILENT, PERIODS, SILENT_HOURS, filtersURL, readFilters, type Filters } from './filters';
import { clock, dateLabel, lastMonths, toDate } from './format';
import { Coalescer, LiveStream, type LiveState } from './live';
import { namesOf } from './names';
import type { Device, Item, Records, Summary } from './types';

const summary = signal<Summary | null>(null);
const loadError = signal('');
const forbidden = signal(false);
const live = signal<LiveState>('connecting');
/** The account the signals above belong to: another account on this page starts from nothing. */
let owner = '';

function message(e: unknown): string {
  if (e instanceof ApiError) return e.message || e.code;
  return (e as Error)?.message ?? String(e);
}

function currentFilters(): Filters {
  return readFilters(path.value.split('?')[1] ?? '');
}

/** Changes the filters: a new history entry, so that back and forward work. */
function setFilters(next: Filters) {
  const url = filtersURL(next);
  if (url === location.pathname + location.search) return;
  history.pushState(null, '', url);
  path.value = url;
}

export function Dashboard() {
  const user = account.value?.userId ?? '';
  if (owner !== user) {
    owner = user;
    summary.value = null;
    loadError.value = '';
    forbidden.value = false;
  }
  const f = currentFilters();
  const key = filtersURL(f);
  const token = profile.value?.token ?? '';
  const refetch = useRef<() => void>(() => {});
  const [drill, setDrill] = useState<Drill | null>(null);
  const [drillData, setDrillData] = useState<Records | null>(null);
  const [drillPage, setDrillPage] = useState(1);
  const [drillError, setDrillError] = useState('');
  const [revoking, setRevoking] = useState<Device | null>(null);
  const [busyConflict, setBusyConflict] = useState('');
  const [conflictError, setConflictError] = useState('');
  const drillRef = useRef<{ drill: Drill | null; page: number }>({ drill: null, page: 1 });
  drillRef.current = { drill, page: drillPage };

  useEffect(() => {
    document.title = `${t('dash.title')} · Strada`;
    return () => {
      document.title = 'Strada';
    };
  }, []);

  const loadDrill = async (d: Drill, page: number, append: boolean) => {
    try {
      const r = await api.records(token, f, d.params, page);
      if (drillRef.current.drill !== d) return;
      setDrillError('');
      setDrillData((old) => (append && old ? { ...r, items: [...old.items, ...r.items] } : r));
    } catch (e) {
      if (isUnauthorized(e)) needsPassword.value = true;
      setDrillError(message(e));
    }
  };

  // The summary for the filters of the URL, refetched through the coalescer.
  useEffect(() => {
    if (!token) return;
    let cancelled = false;
    const run = async () => {
      try {
        const s = await api.summary(token, f);
        if (cancelled) return;
        summary.value = s;
        loadError.value = '';
        forbidden.value = false;
        const open = drillRef.current;
        if (open.drill) {
          // An open drill-down follows the summary: its first pages again.
          const r = await api.records(token, f, open.drill.params, 1);
          if (!cancelled && drillRef.current.drill === open.drill) setDrillData(r), setDrillPage(1);
        }
      } catch (e) {
        if (cancelled) return;
        if (isUnauthorized(e)) needsPassword.value = true;
        else if (e instanceof ApiError && e.status === 403) forbidden.value = true;
        loadError.value = message(e);
      }
    };
    const co = new Coalescer(run);
    refetch.current = () => co.request();
    void run();
    return () => {
      cancelled = true;
      co.stop();
    };
  }, [key, token]);

  // The live stream: one per team filter (the stream narrows by team only).
  useEffect(() => {
    if (!token) return;
    const stream = new LiveStream({
      ticket: () => api.ticket(token),
      url: (ticket) => api.streamURL(ticket, f),
      onHello: (seq, reconnected) => {
        if (reconnected || seq > (summary.value?.seq ?? 0)) refetch.current();
      },
      onChanged: (seq) => {
        if (seq > (summary.value?.seq ?? 0)) refetch.current();
      },
      onReset: () => refetch.current(),
      onRefused: (status) => {
        if (status === 401) needsPassword.value = true;
        else forbidden.value = true;
      },
      onState: (st) => (live.value = st),
    });
    stream.start();
    return () => stream.stop();
  }, [f.team, token]);

  const open = (d: Drill) => {
    setDrill(d);
    setDrillData(null);
    setDrillPage(1);
    setDrillError('');
    drillRef.current = { drill: d, page: 1 };
    void loadDrill(d, 1, false);
  };

  const resolve = async (it: Item, r: 'keep_current' | 'restore_overwritten') => {
    setBusyConflict(it.id);
    setConflictError('');
    try {
      await api.resolveConflict(token, it.id, r);
    } catch (e) {
      if (isUnauthorized(e)) needsPassword.value = true;
      setConflictError(t('dash.resolveError', { message: message(e) }));
    } finally {
      setBusyConflict('');
      refetch.current();
    }
  };

  if (forbidden.value) {
    return (
      <div class="dash">
        <h1 tabIndex={-1}>{t('dash.title')}</h1>
        <p class="card warn" role="alert" id="dash-forbidden">
          {t('dash.forbidden')}
        </p>
      </div>
    );
  }

  const s = summary.value;
  lang.value; // re-render on a change of language
  return (
    <div class="dash">
      <div class="dash-top">
        <h1 tabIndex={-1}>{t('dash.title')}</h1>
        <LiveBadge s={s} />
      </div>
      <FilterBar f={f} s={s} />
      {loadError.value && (
        <p class="card warn" role="alert" id="dash-error">
          {t('dash.error', { message: loadError.value })}{' '}
          <button type="button" class="link" onClick={() => refetch.current()}>
            {t('dash.retry')}
          </button>
        </p>
      )}
      {!s ? (
        <p class="muted">{t('dash.loading')}</p>
      ) : (
        <Blocks
          s={s}
          f={f}
          open={open}
          resolve={resolve}
          busyConflict={busyConflict}
          conflictError={conflictError}
          revoke={setRevoking}
        />
      )}
      {drill && (
        <DrillDown
          drill={drill}
          data={drillData}
          error={drillError}
          names={s ? namesOf(s) : null}
          onMore={() => {
            const next = drillPage + 1;
            setDrillPage(next);
            void loadDrill(drill, next, true);
          }}
          onClose={() => {
            setDrill(null);
            drillRef.current = { drill: null, page: 1 };
          }}
        />
      )}
      {revoking && s && (
        <RevokeDialog
          device={revoking}
          worker={namesOf(s).worker(revoking.worker)}
          onCancel={() => setRevoking(null)}
          onConfirm={async () => {
            await api.revokeDevice(token, revoking.id);
            setRevoking(null);
            refetch.current();
          }}
        />
      )}
    </div>
  );
}

function Blocks(props: {
  s: Summary;
  f: Filters;
  open: (d: Drill) => void;
  resolve: (it: Item, r: 'keep_current' | 'restore_overwritten') => void;
  busyConflict: string;
  conflictError: string;
  revoke: (d: Device) => void;
}) {
  const p = { s: props.s, f: props.f, n: namesOf(props.s), open: props.open };
  return (
    <>
      <Kpis {...p} />
      <div class="dash-grid" data-seq={props.s.seq}>
        <ActivityBlock {...p} />
        <OverdueBlock {...p} />
        <ConflictsBlock {...p} resolve={props.resolve} busy={props.busyConflict} error={props.conflictError} />
        <ReferralsBlock {...p} />
        <CaseloadBlock {...p} />
        <LagBlock {...p} />
        <FeedBlock {...p} />
        <DevicesBlock {...p} revoke={props.revoke} />
      </div>
    </>
  );
}

function LiveBadge({ s }: { s: Summary | null }) {
  const st = live.value;
  const at = s ? toDate(s.generatedAt) : null;
  if (st === 'live') {
    return (
      <p class="live on" id="live-status" data-state="live" role="status">
        <span class="dot" aria-hidden="true" /> {t('dash.live')}
        {at && <span class="muted"> · {t('dash.updatedAt', { time: clock(at) })}</span>}
      </p>
    );
  }
  if (st === 'down' && at) {
    return (
      <p class="live off" id="live-status" data-state="down" role="status">
        <span class="dot" aria-hidden="true" /> {t('dash.stale', { time: clock(at) })}
        <span class="sub">{t('dash.staleHint')}</span>
      </p>
    );
  }
  return (
    <p class="live" id="live-status" data-state={st} role="status">
      {t('dash.connecting')}
    </p>
  );
}

function FilterBar({ f, s }: { f: Filters; s: Summary | null }) {
  const teams = s?.teams ?? [];
  const sites = (s?.sites ?? []).filter((x) => !f.team || x.team === f.team);
  const workers = s?.workers ?? [];
  const months = lastMonths(24);
  const [month, setMonth] = useState(months[0].value);
  const [exporting, setExporting] = useState(false);
  const [exportError, setExportError] = useState('');
  const [more, setMore] = useState(false);
  const token = profile.value?.token ?? '';
  const active = [f.team, f.site, f.worker].filter(Boolean).length + (f.silent !== DEFAULT_SILENT ? 1 : 0);
  const sel = (name: keyof Filters, value: string) => {
    const next = { ...f, [name]: name === 'silent' ? Number(value) : value } as Filters;
    if (name === 'team') next.site = ''; // a site belongs to one team
    setFilters(next);
  };
  return (
    <form class={`filters${more ? ' open' : ''}`} aria-label={t('dash.filters')} onSubmit={(e) => e.preventDefault()}>
      <fieldset class="field period">
        <legend>{t('dash.period')}</legend>
        <div class="seg" role="group">
          {PERIODS.map((p) => (
            <button type="button" key={p} data-period={p} aria-pressed={f.period === p} onClick={() => sel('period', p)}>
              {t(`dash.periodShort.${p}` as any)}
            </button>
          ))}
        </div>
        {s && (
          <span class="sub" id="period-range">
            {t('dash.range', { from: dateLabel(s.period.from), to: dateLabel(s.period.to) })}
          </span>
        )}
      </fieldset>
      <button type="button" class="more-toggle" aria-expanded={more} aria-controls="f-more-team" onClick={() => setMore(!more)}>
        {t('dash.moreFilters')}
        {active > 0 && ` · ${t('dash.activeFilters', { n: active })}`}
      </button>
      <div class="field more" id="f-more-team">
        <label for="f-team">{t('dash.team')}</label>
        <select id="f-team" value={f.team} onChange={(e) => sel('team', (e.target as HTMLSelectElement).value)}>
          <option value="">{t('dash.allTeams')}</option>
          {teams.map((x) => (
            <option key={x.id} value={x.id}>
              {x.name}
            </option>
          ))}
          {f.team && !teams.some((x) => x.id === f.team) && <option value={f.team}>{f.team}</option>}
        </select>
      </div>
      <div class="field more">
        <label for="f-site">{t('dash.site')}</label>
        <select id="f-site" value={f.site} onChange={(e) => sel('site', (e.target as HTMLSelectElement).value)}>
          <option value="">{t('dash.allSites')}</option>
          {sites.map((x) => (
            <option key={x.id} value={x.id}>
              {x.name}
            </option>
          ))}
          {f.site && !sites.some((x) => x.id === f.site) && <option value={f.site}>{f.site}</option>}
        </select>
      </div>
      <div class="field more">
        <label for="f-worker">{t('dash.worker')}</label>
        <select id="f-worker" value={f.worker} onChange={(e) => sel('worker', (e.target as HTMLSelectElement).value)}>
          <option value="">{t('dash.allWorkers')}</option>
          {workers.map((x) => (
            <option key={x.id} value={x.id}>
              {x.name}
            </option>
          ))}
          {f.worker && !workers.some((x) => x.id === f.worker) && <option value={f.worker}>{f.worker}</option>}
        </select>
      </div>
      <div class="field more">
        <label for="f-silent">{t('dash.silentAfter')}</label>
        <select id="f-silent" value={String(f.silent)} onChange={(e) => sel('silent', (e.target as HTMLSelectElement).value)}>
          {SILENT_HOURS.map((h) => (
            <option key={h} value={String(h)}>
              {h % 24 === 0 && h > 24 ? t('dash.days', { n: h / 24 }) : t('dash.hours', { n: h })}
            </option>
          ))}
          {!SILENT_HOURS.includes(f.silent as any) && <option value={String(f.silent)}>{t('dash.hours', { n: f.silent })}</option>}
        </select>
      </div>
      <div class="field more export">
        <label for="f-month">{t('dash.exportMonth')}</label>
        <div class="inline">
          <select id="f-month" value={month} onChange={(e) => setMonth((e.target as HTMLSelectElement).value)}>
            {months.map((m) => (
              <option key={m.value} value={m.value}>
                {m.label}
              </option>
            ))}
          </select>
          <button
            type="button"
            class="primary"
            id="export-csv"
            disabled={exporting}
            onClick={async () => {
              setExporting(true);
              setExportError('');
              try {
                await api.exportCSV(token, f, month);
              } catch (e) {
                if (isUnauthorized(e)) needsPassword.value = true;
                setExportError(t('dash.exportError', { message: message(e) }));
              } finally {
                setExporting(false);
              }
            }}
          >
            {exporting ? t('dash.exportBusy') : t('dash.export')}
          </button>
        </div>
        {exportError && (
          <p class="error" role="alert">
            {exportError}
          </p>
        )}
      </div>
    </form>
  );
}
