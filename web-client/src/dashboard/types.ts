// The answers of the dashboard API (docs/dashboard.md), as the page reads
// them. Identifiers, person codes and counts: never a person's name.

export interface Named {
  id: string;
  name: string;
}

export interface SiteRef extends Named {
  kind: string;
  team: string;
}

export interface CategoryCount {
  category: string;
  count: number;
}

export interface Activity {
  campVisits: number;
  householdsMet: number;
  visitsByCamp: { site: string; visits: number; householdsMet: number }[];
  topics: CategoryCount[];
  contacts: number;
  contactsByInstitute: { site: string; intra: number; extra: number; total: number }[];
  requests: CategoryCount[];
}

export interface Item {
  collection: string;
  id: string;
  date: string;
  kind?: string;
  status?: string;
  site?: string;
  worker?: string;
  team?: string;
  personCodes: string[];
  field?: string;
  lagSeconds?: number;
}

export interface Device {
  id: string;
  name: string;
  platform: string;
  worker: string;
  appVersion: string;
  lastSeen: string;
  lastPush: string;
  lastPull: string;
  pending: number;
  storage: string;
  clockSkewMs: number;
  revoked: boolean;
  registered: string;
  silent: boolean;
}

export interface FeedItem {
  seq: number;
  at: string;
  collection: string;
  op: string;
  recordId: string;
  team: string;
  site: string;
  worker: string;
  personCode: string;
}

export interface LagDay {
  day: string;
  records: number;
  avgSeconds: number;
  maxSeconds: number;
  over1h: number;
  over24h: number;
  ahead: number;
}

export interface Summary {
  generatedAt: string;
  seq: number;
  filters: { teams: string[]; team?: string; site?: string; worker?: string };
  period: { kind: string; from: string; to: string; previousFrom: string; previousTo: string; timeZone: string };
  teams: Named[];
  sites: SiteRef[];
  workers: Named[];
  activity: { current: Activity; previous: Activity };
  caseload: { followed: number; newThisWeek: number; notSeen30: number; notSeen60: number; notSeen90: number };
  referrals: {
    total: number;
    byStatus: CategoryCount[];
    byService: { service: string; name: string; category: string; total: number; open: number; byStatus: Record<string, number> }[];
    stuckSent: number;
    stuckDays: number;
    outcomes: { current: CategoryCount[]; previous: CategoryCount[] };
  };
  overdue: {
    total: number;
    visits: number;
    contacts: number;
    referrals: number;
    byWorker: { worker: string; visits: number; contacts: number; referrals: number; total: number }[];
    items: Item[];
  };
  offlineLag: LagDay[];
  conflicts: { open: number; byKind: CategoryCount[]; items: Item[] };
  devices: { silentAfterHours: number; silent: number; items: Device[] };
  feed: FeedItem[];
}

export interface Records {
  block: string;
  page: number;
  perPage: number;
  total: number;
  items: Item[];
}
