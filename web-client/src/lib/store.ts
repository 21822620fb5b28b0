// The device's store: pulled records and the outbox, sealed at rest. It
// mirrors internal/syncclient: a page and its cursor are applied in one
// transaction, a reset keeps the outbox, answered mutations stay in the
// view until the pull reaches their seq (write checkpoint), rejected ones
// revert and stay listed with their reason until dismissed, and a purge
// removes a person's records and pending mutations.
import { db, type OutboxRow, type RecordRow, type SyncRow } from './db';
import { open, seal, type Sealed } from './crypto';
import { uuid } from './ids';

export type Rec = Record<string, any>;

export interface Mutation {
  id: string;
  collection: string;
  recordId: string;
  op: 'upsert' | 'delete';
  baseVersion: number;
  fields?: Rec;
  clientTime?: string;
}

export interface MutationError {
  code: string;
  message: string;
  field?: string;
}

export interface OutboxItem {
  n: number;
  state: OutboxRow['state'];
  ackSeq: number;
  ackedAt: number;
  mutation: Mutation;
  error?: MutationError;
}

export interface Change {
  collection: string;
  id: string;
  op: 'upsert' | 'delete' | 'purge';
  version: number;
  record: Rec | null;
}

export interface PushResult {
  id: string;
  status: 'applied' | 'merged' | 'conflict' | 'rejected' | 'duplicate';
  firstStatus?: string;
  version?: number;
  seq?: number;
  conflicts?: string[];
  error?: MutationError;
}

/** How long acknowledged mutations are kept to be sent again after a server restore. */
export const RESEND_DAYS = 7;
/** At most this many acknowledged mutations are kept. */
export const RESEND_MAX = 2000;

/** Fields whose value names the person a record is about. */
const personField: Record<string, string> = { secretariat_contacts: 'person', referrals: 'person' };

function personOf(collection: string, id: string, fields: Rec | null | undefined): string {
  if (collection === 'persons') return id;
  const f = personField[collection];
  return (f && typeof fields?.[f] === 'string' && fields[f]) || '';
}

export async function readSync(): Promise<SyncRow> {
  const row = (await db().meta.get('sync')) as SyncRow | undefined;
  return row ?? { k: 'sync', cursor: '', seq: 0, lastSync: '', snapshotDone: false };
}

/** Appends a mutation: sealed first, then written in one transaction. */
export async function enqueue(key: CryptoKey, m: Omit<Mutation, 'id'>, person = ''): Promise<Mutation> {
  const mutation: Mutation = { ...m, id: uuid() };
  const data = await seal(key, { mutation });
  const row: OutboxRow = {
    id: mutation.id,
    collection: m.collection,
    recordId: m.recordId,
    person: person || personOf(m.collection, m.recordId, m.fields),
    state: 'pending',
    ackSeq: 0,
    ackedAt: 0,
    data,
  };
  await db().transaction('rw', db().outbox, async () => {
    await db().outbox.add(row);
  });
  return mutation;
}

/** The pending mutations, oldest first, decrypted (outside any transaction). */
export async function pendingBatch(key: CryptoKey, max = 500): Promise<OutboxItem[]> {
  const rows = await db().outbox.where('state').equals('pending').sortBy('n');
  return Promise.all(rows.slice(0, max).map((r) => openItem(key, r)));
}

export async function openItem(key: CryptoKey, r: OutboxRow): Promise<OutboxItem> {
  const d = await open<{ mutation: Mutation; error?: MutationError }>(key, r.data);
  return { n: r.n!, state: r.state, ackSeq: r.ackSeq, ackedAt: r.ackedAt, mutation: d.mutation, error: d.error };
}

/** Records the server's answers: answered mutations leave the pending list. */
export async function answered(key: CryptoKey, items: OutboxItem[], results: PushResult[]): Promise<number> {
  const byId = new Map(results.map((r) => [r.id, r]));
  const sealedErrors = new Map<string, Sealed>();
  for (const it of items) {
    const r = byId.get(it.mutation.id);
    const status = r?.status === 'duplicate' ? r.firstStatus : r?.status;
    if (r && status === 'rejected') {
      const error = r.error ?? { code: 'rejected', message: '' };
      sealedErrors.set(it.mutation.id, await seal(key, { mutation: it.mutation, error }));
    }
  }
  const now = Date.now();
  let rejected = 0;
  await db().transaction('rw', db().outbox, async () => {
    for (const it of items) {
      const r = byId.get(it.mutation.id);
      if (!r) continue;
      const data = sealedErrors.get(it.mutation.id);
      if (data) {
        rejected++;
        await db().outbox.update(it.n, { state: 'rejected', ackSeq: 0, ackedAt: now, data });
      } else {
        await db().outbox.update(it.n, { state: 'acked', ackSeq: r.seq ?? 0, ackedAt: now });
      }
    }
  });
  return rejected;
}

/** Removes a rejected mutation the worker has read. */
export async function dismiss(n: number): Promise<void> {
  await db().transaction('rw', db().outbox, async () => {
    const r = await db().outbox.get(n);
    if (r?.state === 'rejected') await db().outbox.delete(n);
  });
}

export interface PageResult {
  purgedPersons: string[];
  purged: number;
}

/** Called with each record of a page as it is sealed, before it is written: lets the view skip opening it again. */
export type Remember = (row: RecordRow, rec: Rec) => void;

/**
 * Applies a pulled page and its cursor in one transaction. The page's
 * records are sealed first, all at once (WebCrypto runs the calls side by
 * side), then written with one bulkPut per run of upserts and deletes: a
 * 1,000-record page is one transaction with a handful of requests, not a
 * thousand awaited puts. Changes keep their order: a run ends at a purge,
 * which cascades to other records, and within a run the last change of a
 * record wins, as it would applied one by one.
 */
export async function applyPage(
  key: CryptoKey,
  changes: Change[],
  cursor: string,
  seq: number,
  snapshotDone: boolean,
  colleagues?: { id: string; name: string }[],
  remember?: Remember,
): Promise<PageResult> {
  const upserts = changes.filter((c) => c.op === 'upsert' && c.record);
  const [sealed, colleaguesData] = await Promise.all([
    Promise.all(upserts.map((c) => seal(key, c.record))),
    colleagues ? seal(key, colleagues) : null,
  ]);
  const rowOf = new Map<Change, RecordRow>();
  upserts.forEach((c, i) => {
    const row: RecordRow = {
      collection: c.collection,
      id: c.id,
      team: String(c.record!.team ?? ''),
      person: personOf(c.collection, c.id, c.record),
      referral: c.collection === 'referral_events' ? String(c.record!.referral ?? '') : '',
      version: c.version,
      data: sealed[i],
    };
    rowOf.set(c, row);
    remember?.(row, c.record!);
  });
  const out: PageResult = { purgedPersons: [], purged: 0 };
  const d = db();
  await d.transaction('rw', d.records, d.outbox, d.meta, async () => {
    // A run of upserts and deletes, by record: the last change wins.
    let run = new Map<string, { row?: RecordRow; key: [string, string] }>();
    const flush = async () => {
      if (run.size === 0) return;
      const puts: RecordRow[] = [];
      const dels: [string, string][] = [];
      for (const v of run.values()) {
        if (v.row) puts.push(v.row);
        else dels.push(v.key);
      }
      run = new Map();
      if (dels.length > 0) await d.records.bulkDelete(dels);
      if (puts.length > 0) await d.records.bulkPut(puts);
    };
    for (const c of changes) {
      const k = c.collection + '/' + c.id;
      if (c.op === 'upsert') {
        const row = rowOf.get(c);
        if (row) {
          run.delete(k);
          run.set(k, { row, key: [c.collection, c.id] });
        }
      } else if (c.op === 'delete') {
        run.delete(k);
        run.set(k, { key: [c.collection, c.id] });
      } else {
        await flush();
        out.purged += await purge(c.collection, c.id);
        if (c.collection === 'persons') out.purgedPersons.push(c.id);
      }
    }
    await flush();
    const prev = ((await d.meta.get('sync')) as SyncRow | undefined) ?? null;
    await d.meta.put({
      k: 'sync',
      cursor,
      seq,
      lastSync: new Date().toISOString(),
      snapshotDone: snapshotDone || !!prev?.snapshotDone,
    });
    if (colleaguesData) await d.meta.put({ k: 'colleagues', data: colleaguesData });
  });
  return out;
}

/** Inside a transaction: drops a purged record, and for a person what is about them. */
async function purge(collection: string, id: string): Promise<number> {
  const d = db();
  let n = 0;
  await d.records.delete([collection, id]);
  n += await d.outbox.where('recordId').equals(id).delete();
  if (collection === 'persons') {
    const about = await d.records.where('person').equals(id).toArray();
    for (const r of about) {
      await d.records.delete([r.collection, r.id]);
      if (r.collection === 'referrals') await d.records.where('referral').equals(r.id).delete();
      n += await d.outbox.where('recordId').equals(r.id).delete();
    }
    n += await d.outbox.where('person').equals(id).delete();
  }
  if (collection === 'referrals') await d.records.where('referral').equals(id).delete();
  return n;
}

/**
 * Removes an erased person from the persons met of pending visit
 * mutations. Runs after the page's transaction: it must open and seal.
 */
export async function scrubPersonsMet(key: CryptoKey, persons: string[]): Promise<void> {
  if (persons.length === 0) return;
  const rows = await db().outbox.where('state').anyOf('pending', 'acked').toArray();
  const updates: { n: number; data: Sealed }[] = [];
  for (const r of rows) {
    if (r.collection !== 'camp_visits') continue;
    const it = await openItem(key, r);
    const met = it.mutation.fields?.persons_met;
    if (!Array.isArray(met) || !met.some((p) => persons.includes(p))) continue;
    it.mutation.fields!.persons_met = met.filter((p) => !persons.includes(p));
    updates.push({ n: it.n, data: await seal(key, { mutation: it.mutation }) });
  }
  if (updates.length === 0) return;
  await db().transaction('rw', db().outbox, async () => {
    for (const u of updates) await db().outbox.update(u.n, { data: u.data });
  });
}

/**
 * Forgets the pulled records and the cursor, keeping the outbox. The
 * mutations acknowledged in the last RESEND_DAYS go back to pending, so that
 * a server restored from a backup receives again what it lost (it answers
 * duplicate for what it still has).
 */
export async function reset(): Promise<number> {
  const d = db();
  const since = Date.now() - RESEND_DAYS * 86_400_000;
  let resend = 0;
  await d.transaction('rw', d.records, d.outbox, d.meta, async () => {
    await d.records.clear();
    await d.meta.put({ k: 'sync', cursor: '', seq: 0, lastSync: '', snapshotDone: false });
    const acked = await d.outbox.where('state').equals('acked').toArray();
    for (const r of acked) {
      if (r.ackedAt >= since) {
        resend++;
        await d.outbox.update(r.n!, { state: 'pending', ackSeq: 0 });
      }
    }
  });
  return resend;
}

/** Drops acknowledged mutations older than RESEND_DAYS, and the oldest beyond RESEND_MAX. */
export async function pruneAcked(seq: number): Promise<void> {
  const d = db();
  const since = Date.now() - RESEND_DAYS * 86_400_000;
  await d.transaction('rw', d.outbox, async () => {
    const acked = await d.outbox.where('state').equals('acked').sortBy('n');
    const drop = acked.filter((r, i) => (r.ackedAt < since && r.ackSeq <= seq) || i < acked.length - RESEND_MAX);
    await d.outbox.bulkDelete(drop.map((r) => r.n!));
  });
}

export async function countUnsynced(): Promise<number> {
  return db().outbox.where('state').equals('pending').count();
}
