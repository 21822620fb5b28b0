import type { ViewRec } from '../lib/view';

export function personName(p: ViewRec | undefined): string {
  if (!p) return '';
  const name = [p.given_name, p.family_name].filter(Boolean).join(' ');
  return name ? `${p.code} · ${name}` : String(p.code ?? '');
}

export function today(): string {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

export function day(s: unknown): string {
  return typeof s === 'string' ? s.slice(0, 10) : '';
}

export function list(v: unknown): string[] {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string' && v) return [v];
  return [];
}
