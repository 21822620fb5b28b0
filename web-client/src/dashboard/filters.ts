// The dashboard's filters live in the URL (/dashboard?team=…&period=…), so
// that a view can be shared, survives a reload and follows back/forward.

export const PERIODS = ['today', 'week', 'month'] as const;
export type Period = (typeof PERIODS)[number];

/** The thresholds offered for "silent device", in hours; the server's default is 48. */
export const SILENT_HOURS = [24, 48, 72, 168] as const;
export const DEFAULT_SILENT = 48;

export interface Filters {
  team: string;
  site: string;
  worker: string;
  period: Period;
  silent: number;
}

const ID = /^[A-Za-z0-9_-]{1,40}$/;

function id(v: string | null): string {
  return v && ID.test(v) ? v : '';
}

/** Reads the filters from a query string; anything unreadable falls back to its default. */
export function readFilters(search: string): Filters {
  const q = new URLSearchParams(search);
  const period = q.get('period') as Period;
  const silent = Number(q.get('silent'));
  return {
    team: id(q.get('team')),
    site: id(q.get('site')),
    worker: id(q.get('worker')),
    period: PERIODS.includes(period) ? period : 'week',
    silent: Number.isInteger(silent) && silent >= 1 && silent <= 720 ? silent : DEFAULT_SILENT,
  };
}

/** The page's own URL for filters: defaults are left out. */
export function filtersURL(f: Filters): string {
  const q = new URLSearchParams();
  if (f.team) q.set('team', f.team);
  if (f.site) q.set('site', f.site);
  if (f.worker) q.set('worker', f.worker);
  if (f.period !== 'week') q.set('period', f.period);
  if (f.silent !== DEFAULT_SILENT) q.set('silent', String(f.silent));
  const s = q.toString();
  return '/dashboard' + (s ? '?' + s : '');
}

/** The API's parameters for filters (summary, drill-down and export share them). */
export function apiParams(f: Filters, extra: Record<string, string> = {}): URLSearchParams {
  const q = new URLSearchParams();
  if (f.team) q.set('team', f.team);
  if (f.site) q.set('site', f.site);
  if (f.worker) q.set('worker', f.worker);
  q.set('period', f.period);
  q.set('silentHours', String(f.silent));
  for (const [k, v] of Object.entries(extra)) if (v) q.set(k, v);
  return q;
}
