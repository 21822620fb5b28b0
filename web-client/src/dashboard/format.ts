// Numbers, dates and durations as a reader of the language expects them
// (it-IT first), in Rome's time zone, where the periods are cut.
import { locale } from '../i18n';

const TZ = 'Europe/Rome';

/** A day ("2026-11-28"), or a date field holding only a day (PocketBase stores it at midnight UTC). */
export function isDay(s: string): boolean {
  return /^\d{4}-\d{2}-\d{2}([ T]00:00:00(\.0+)?Z)?$/.test(s);
}

/** A PocketBase date ("2026-11-28 09:00:00.000Z"), an RFC 3339 time or a day. */
export function toDate(s: string): Date | null {
  if (!s) return null;
  const d = new Date(isDay(s) ? s.slice(0, 10) + 'T12:00:00Z' : s.replace(' ', 'T'));
  return isNaN(d.getTime()) ? null : d;
}

export function num(n: number, digits = 0): string {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(n);
}

/** "14:05" */
export function clock(d: Date): string {
  return new Intl.DateTimeFormat(locale(), { hour: '2-digit', minute: '2-digit', timeZone: TZ }).format(d);
}

/** "28 nov" (a day) */
export function dayLabel(s: string): string {
  const d = toDate(s);
  if (!d) return s;
  return new Intl.DateTimeFormat(locale(), { day: 'numeric', month: 'short', timeZone: TZ }).format(d);
}

/** "28 nov 2026" */
export function dateLabel(s: string): string {
  const d = toDate(s);
  if (!d) return s;
  return new Intl.DateTimeFormat(locale(), { day: 'numeric', month: 'short', year: 'numeric', timeZone: TZ }).format(d);
}

/** "28 nov, 14:05" */
export function stamp(s: string): string {
  if (isDay(s)) return dateLabel(s);
  const d = toDate(s);
  if (!d) return '';
  return new Intl.DateTimeFormat(locale(), {
    day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', timeZone: TZ,
  }).format(d);
}

/** "3 ore fa", "2 giorni fa": how long ago, in words. */
export function ago(s: string, now = Date.now()): string {
  const d = toDate(s);
  if (!d) return '';
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' });
  const sec = Math.round((d.getTime() - now) / 1000);
  const abs = Math.abs(sec);
  if (abs < 60) return rtf.format(sec, 'second');
  if (abs < 3600) return rtf.format(Math.round(sec / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(sec / 3600), 'hour');
  return rtf.format(Math.round(sec / 86400), 'day');
}

/** A duration in seconds as "45 s", "12 min", "3,5 h", "2,1 g". */
export function duration(seconds: number): string {
  const unit = (value: number, u: 'second' | 'minute' | 'hour' | 'day', digits = 0) =>
    new Intl.NumberFormat(locale(), { style: 'unit', unit: u, unitDisplay: 'narrow', maximumFractionDigits: digits }).format(value);
  if (seconds < 60) return unit(Math.round(seconds), 'second');
  if (seconds < 3600) return unit(Math.round(seconds / 60), 'minute');
  if (seconds < 86400) return unit(seconds / 3600, 'hour', 1);
  return unit(seconds / 86400, 'day', 1);
}

/** A clock difference in milliseconds, signed: "+2 min", "−40 s", "0 s". */
export function skew(ms: number): string {
  const s = Math.abs(ms) / 1000;
  const body = duration(s);
  if (Math.round(s) === 0) return body;
  return (ms > 0 ? '+' : '−') + body;
}

/** The last n months, newest first, as YYYY-MM with their names ("novembre 2026"). */
export function lastMonths(n: number, now = new Date()): { value: string; label: string }[] {
  const [y, m] = thisMonth(now).split('-').map(Number);
  const out = [];
  for (let i = 0; i < n; i++) {
    const d = new Date(Date.UTC(y, m - 1 - i, 15));
    const value = `${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, '0')}`;
    const label = new Intl.DateTimeFormat(locale(), { month: 'long', year: 'numeric', timeZone: 'UTC' }).format(d);
    out.push({ value, label });
  }
  return out;
}

/** The current month as YYYY-MM in Rome. */
export function thisMonth(now = new Date()): string {
  const p = new Intl.DateTimeFormat('en-CA', { year: 'numeric', month: '2-digit', timeZone: TZ }).formatToParts(now);
  const y = p.find((x) => x.type === 'year')?.value;
  const m = p.find((x) => x.type === 'month')?.value;
  return `${y}-${m}`;
}
