// What the screens show: the pulled records with the device's own
// mutations on top (pending, and answered ones until the pull reaches their
// seq). Dexie's liveQuery drives it, in this tab and across tabs; rows are
// opened outside any transaction and cached by their IV, so a change opens
// only what changed.
import { computed, signal } from '@preact/signals';
import { liveQuery, type Subscription } from 'dexie';
import { db, type OutboxRow, type RecordRow, type SyncRow, type ColleaguesRow } from './db';
import { open } from './crypto';
import { openItem, type OutboxItem, type Rec } from './store';

export const base = signal<Map<string, Map<string, Rec>>>(new Map());
export const outbox = signal<OutboxItem[]>([]);
export const syncRow = signal<SyncRow>({ k: 'sync', cursor: '', seq: 0, lastSync: '', snapshotDone: false });
export const colleagues = signal<{ id: string; name: string }[]>([]);
export const ready = signal(false);

let subs: Subscription[] = [];
const recordCache = new Map<string, { iv: string; rec: Rec }>();
const outboxCache = new Map<number, { iv: string; item: OutboxItem; state: string; ackSeq: number }>();

function ivKey(iv: Uint8Array): string {
  return String.fromCharCode(...iv);
}

/** Opens the rows the cache does not hold, all at once: WebCrypto runs the calls side by side. */
async function openRecords(key: CryptoKey, rows: RecordRow[]) {
  const todo: { k: string; iv: string; r: RecordRow }[] = [];
  const keys: string[] = new Array(rows.length);
  rows.forEach((r, i) => {
    const k = r.collection + '/' + r.id;
    keys[i] = k;
    const iv = ivKey(r.data.iv);
    const c = recordCache.get(k);
    if (!c || c.iv !== iv) todo.push({ k, iv, r });
  });
  const opened = await Promise.all(todo.map((t) => open<Rec>(key, t.r.data)));
  todo.forEach((t, i) => recordCache.set(t.k, { iv: t.iv, rec: opened[i] }));
  const next = new Map<string, Map<string, Rec>>();
  const seen = new Set(keys);
  rows.forEach((r, i) => {
    let m = next.get(r.collection);
    if (!m) next.set(r.collection, (m = new Map()));
    m.set(r.id, recordCache.get(keys[i])!.rec);
  });
  for (const k of recordCache.keys()) if (!seen.has(k)) recordCache.delete(k);
  // A result that arrives after a lock belongs to the old key: drop it.
  if (following === key) base.value = next;
}

/**
 * Keeps the plaintext of a record this tab just sealed, under its new IV:
 * when the write shows in the view, it is not opened again.
 */
export function remember(row: RecordRow, rec: Rec): void {
  if (!following) return;
  recordCache.set(row.collection + '/' + row.id, { iv: ivKey(row.data.iv), rec });
}

async function openOutbox(key: CryptoKey, rows: OutboxRow[]) {
  const items: OutboxItem[] = [];
  const seen = new Set<number>();
  for (const r of rows) {
    seen.add(r.n!);
    const iv = ivKey(r.data.iv);
    let c = outboxCache.get(r.n!);
    if (!c || c.iv !== iv) {
      c = { iv, item: await openItem(key, r), state: r.state, ackSeq: r.ackSeq };
      outboxCache.set(r.n!, c);
    }
    items.push({ ...c.item, state: r.state, ackSeq: r.ackSeq, ackedAt: r.ackedAt });
  }
  for (const n of outboxCache.keys()) if (!seen.has(n)) outboxCache.delete(n);
  outbox.value = items;
}

let recordsSub: Subscription | null = null;
let following: CryptoKey | null = null;
let held = false;
let onRecordsLoaded: () => void = () => {};

/**
 * Reads the records table whenever it changes, unless held: then the query
 * reads nothing and stops watching, and release() reads it again once.
 */
function followRecords(key: CryptoKey) {
  recordsSub?.unsubscribe();
  let chain = Promise.resolve();
  recordsSub = liveQuery<RecordRow[] | null>(() => (held ? null : db().records.toArray())).subscribe({
    next: (rows) => {
      if (rows === null) return;
      chain = chain.then(() => openRecords(key, rows)).then(() => onRecordsLoaded(), console.error);
    },
    error: console.error,
  });
}

/**
 * While a pull has more pages to come, the view does not re-read the whole
 * records table after every page: it is read once when the pull ends.
 */
export function holdRecords(): void {
  held = true;
}

/** Ends a hold: the records are read (and what this tab sealed is not opened again). */
export function releaseRecords(): void {
  if (!held) return;
  held = false;
  if (following) followRecords(following);
}

/** Starts following the database with the unlocked key. */
export function follow(key: CryptoKey): void {
  unfollow();
  following = key;
  // Ready once both the records and the outbox have been read.
  let recordsLoaded = false;
  let outboxLoaded = false;
  const done = () => {
    if (recordsLoaded && outboxLoaded) ready.value = true;
  };
  onRecordsLoaded = () => {
    recordsLoaded = true;
    done();
  };
  followRecords(key);
  // Each subscriber handles results in order; opening is async, so chain.
  let outChain = Promise.resolve();
  subs.push(
    liveQuery(() => db().outbox.orderBy('n').toArray()).subscribe({
      next: (rows) => {
        outChain = outChain.then(() => openOutbox(key, rows)).then(() => {
          outboxLoaded = true;
          done();
        }, console.error);
      },
      error: console.error,
    }),
    liveQuery(() => db().meta.bulkGet(['sync', 'colleagues'])).subscribe({
      next: async ([s, c]) => {
        if (s) syncRow.value = s as SyncRow;
        if (c) colleagues.value = await open(key, (c as ColleaguesRow).data);
      },
      error: console.error,
    }),
  );
}

/** Stops following and forgets everything decrypted. */
export function unfollow(): void {
  for (const s of subs) s.unsubscribe();
  subs = [];
  recordsSub?.unsubscribe();
  recordsSub = null;
  following = null;
  held = false;
  recordCache.clear();
  outboxCache.clear();
  base.value = new Map();
  outbox.value = [];
  colleagues.value = [];
  ready.value = false;
}

/** Mutations shown on top of the pulled state. */
export const overlay = computed(() =>
  outbox.value.filter((it) => it.state === 'pending' || (it.state === 'acked' && it.ackSeq > syncRow.value.seq)),
);

export const pendingCount = computed(() => outbox.value.filter((it) => it.state === 'pending').length);
export const rejected = computed(() => outbox.value.filter((it) => it.state === 'rejected'));

export interface ViewRec extends Rec {
  id: string;
  _pending?: boolean;
}

/** The records of a collection as the worker sees them. */
export function viewOf(collection: string): Map<string, ViewRec> {
  const out = new Map<string, ViewRec>();
  for (const [id, r] of base.value.get(collection) ?? []) out.set(id, r as ViewRec);
  for (const it of overlay.value) {
    const m = it.mutation;
    if (m.collection !== collection) continue;
    if (m.op === 'delete') {
      out.delete(m.recordId);
      continue;
    }
    const prev = out.get(m.recordId) ?? { id: m.recordId, version: 0 };
    out.set(m.recordId, { ...prev, ...m.fields, id: m.recordId, _pending: it.state === 'pending' || prev._pending });
  }
  return out;
}

export const views = computed(() => {
  const names = ['teams', 'sites', 'services', 'persons', 'camp_visits', 'secretariat_contacts', 'referrals', 'referral_events', 'sync_conflicts'];
  const out: Record<string, Map<string, ViewRec>> = {};
  for (const n of names) out[n] = viewOf(n);
  return out;
});
