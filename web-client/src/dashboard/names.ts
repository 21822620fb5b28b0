// Names of the staff, sites and teams a summary lists, by id. Persons are
// never named here: the dashboard shows their codes.
import { t, type Key } from '../i18n';
import type { Summary } from './types';

export interface Names {
  worker(id: string): string;
  site(id: string): string;
  team(id: string): string;
}

export function namesOf(s: Summary): Names {
  const w = new Map(s.workers.map((x) => [x.id, x.name]));
  const si = new Map(s.sites.map((x) => [x.id, x.name]));
  const te = new Map(s.teams.map((x) => [x.id, x.name]));
  return {
    worker: (id) => (id ? (w.get(id) ?? id) : t('dash.noAuthor')),
    site: (id) => (id ? (si.get(id) ?? id) : ''),
    team: (id) => (id ? (te.get(id) ?? id) : ''),
  };
}

/** A translated label for an enumerated value, or the value itself when the dictionary lacks it. */
export function label(prefix: string, value: string): string {
  const key = `${prefix}.${value}` as Key;
  const s = t(key);
  return s === key ? value : s;
}

/** The field app's screen of a record, where a supervisor may open it (with names, from the device's own copy). */
export function recordHref(collection: string, id: string): string {
  switch (collection) {
    case 'persons':
      return `/persone/${id}`;
    case 'camp_visits':
      return `/visite/${id}`;
    case 'secretariat_contacts':
      return `/colloqui/${id}`;
    case 'referrals':
      return `/invii/${id}`;
  }
  return '';
}
