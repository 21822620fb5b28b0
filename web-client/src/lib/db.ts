// The local database. Dexie indexes hold no personal data: ids, collection,
// team, version and states only. Every object with personal data is a
// Sealed blob (see crypto.ts). No function here awaits anything but
// IndexedDB inside a transaction: callers seal and open outside.
import Dexie, { type Table, type Transaction } from 'dexie';
import type { Sealed, WrappedKey } from './crypto';

export const DB_NAME = 'strada';

export interface AccountRow {
  k: 'account';
  userId: string;
  role: string;
  teams: string[];
  deviceId: string;
  /**
   * The device's secret from its registration, kept in clear on purpose: it
   * grants nothing but learning, without a token, that the device was
   * revoked, so that a locked app can still wipe itself.
   */
  deviceSecret: string;
  key: WrappedKey;
  /** Sealed {email, name, token}. */
  profile: Sealed;
  lockMinutes: number;
}

export interface SyncRow {
  k: 'sync';
  cursor: string;
  seq: number;
  lastSync: string;
  snapshotDone: boolean;
}

export interface AttemptsRow {
  k: 'attempts';
  failures: number;
  notBefore: number;
}

export interface ColleaguesRow {
  k: 'colleagues';
  data: Sealed;
}

export type MetaRow = AccountRow | SyncRow | AttemptsRow | ColleaguesRow;

/** A pulled record: the server's state as last pulled. */
export interface RecordRow {
  collection: string;
  id: string;
  team: string;
  /** The person the record is about (contacts, referrals), for purges. */
  person: string;
  /** The referral an event belongs to, for purges. */
  referral: string;
  version: number;
  data: Sealed;
}

export type OutboxState = 'pending' | 'acked' | 'rejected';

/** A mutation made on this device. */
export interface OutboxRow {
  n?: number;
  id: string;
  collection: string;
  recordId: string;
  person: string;
  state: OutboxState;
  /** The change log position of the mutation's effect, once answered. */
  ackSeq: number;
  ackedAt: number;
  /** Sealed {mutation, error?}. */
  data: Sealed;
}

/** One version of the local schema: its Dexie stores and how data moves up to it. */
export interface SchemaVersion {
  version: number;
  stores: Record<string, string | null>;
  /** Moves the data of the previous version; runs inside the upgrade transaction. */
  upgrade?: (tx: Transaction) => Promise<void> | void;
}

/**
 * The versions of the local schema, oldest first. A shipped version is never
 * edited: a change is a new entry with its upgrade function, and
 * tests/unit/db-migrations.test.ts opens a database made by every shipped
 * version (frozen there) with the current code.
 */
export const SCHEMA: readonly SchemaVersion[] = [
  {
    version: 1,
    stores: {
      meta: 'k',
      records: '[collection+id], collection, team, person, referral',
      outbox: '++n, &id, state, recordId, person, ackedAt',
    },
  },
];

export class StradaDB extends Dexie {
  meta!: Table<MetaRow, string>;
  records!: Table<RecordRow, [string, string]>;
  outbox!: Table<OutboxRow, number>;

  constructor(name = DB_NAME) {
    super(name, { chromeTransactionDurability: 'strict' });
    for (const v of SCHEMA) {
      const version = this.version(v.version).stores(v.stores);
      if (v.upgrade) version.upgrade(v.upgrade);
    }
  }
}

let current: StradaDB | null = null;

export function db(): StradaDB {
  if (!current) current = new StradaDB();
  return current;
}

/** Closes and deletes the database. */
export async function deleteDatabase(): Promise<void> {
  const d = db();
  current = null;
  d.close();
  await Dexie.delete(DB_NAME);
}

export function setDatabaseForTests(d: StradaDB | null) {
  current = d;
}
