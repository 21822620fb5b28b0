// Translations: Italian first, English second. The choice of language is
// kept in localStorage (it is not personal data).
import { signal } from '@preact/signals';
import { it, type Key } from './it';
import { en } from './en';

export type Lang = 'it' | 'en';
const dicts: Record<Lang, Record<Key, string>> = { it, en };

function initial(): Lang {
  const saved = globalThis.localStorage?.getItem('strada.lang');
  if (saved === 'it' || saved === 'en') return saved;
  return 'it';
}

export const lang = signal<Lang>(initial());

export function setLang(l: Lang) {
  lang.value = l;
  localStorage.setItem('strada.lang', l);
  document.documentElement.lang = l;
}

/** Numbers in vars are written as the UI language writes them (fmtNumber). */
export function t(key: Key, vars?: Record<string, string | number>): string {
  let s = dicts[lang.value][key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, typeof v === 'number' ? fmtNumber(v) : v);
  return s;
}

const numberFormats = new Map<string, Intl.NumberFormat>();

/**
 * A number as the UI language writes it, with digits grouped from the
 * thousands on ("5.077", "0,7" in Italian; "5,077", "0.7" in English).
 */
export function fmtNumber(n: number, fractionDigits = 0): string {
  const k = locale() + '/' + fractionDigits;
  let f = numberFormats.get(k);
  if (!f) {
    const opts = { useGrouping: 'always' as const, minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits };
    f = new Intl.NumberFormat(locale(), opts as unknown as Intl.NumberFormatOptions);
    numberFormats.set(k, f);
  }
  return f.format(n);
}

export function locale(): string {
  return lang.value === 'it' ? 'it-IT' : 'en-GB';
}

export function fmtDate(s: string | undefined): string {
  if (!s) return '';
  const d = new Date(s.replace(' ', 'T'));
  if (isNaN(d.getTime())) return s;
  return d.toLocaleDateString(locale(), { day: 'numeric', month: 'short', year: 'numeric' });
}

export function fmtTime(s: string | undefined): string {
  if (!s) return '';
  const d = new Date(s);
  return d.toLocaleString(locale(), { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' });
}

export type { Key };
