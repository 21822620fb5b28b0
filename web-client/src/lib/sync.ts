// The sync engine. Exactly one tab syncs: the one holding the Web Lock
// "strada-sync"; the others see its changes through Dexie's cross-tab
// liveQuery and take over when it closes. Sync runs from the open app (on
// start, visibilitychange, online, a stream hint, and a timer with backoff);
// never from Background Sync. Push comes before pull. While the app is
// locked, sync pauses: the token and the outbox are sealed by the data key.
import { effect, signal } from '@preact/signals';
import { request, isRevoked, isTemporary, isUnauthorized, ApiError } from './api';
import {
  answered,
  applyPage,
  countUnsynced,
  pendingBatch,
  pruneAcked,
  readSync,
  reset,
  scrubPersonsMet,
  type Change,
  type PushResult,
} from './store';
import { db, type RecordRow } from './db';
import { holdRecords, pendingCount, releaseRecords, remember } from './view';
import { seal } from './crypto';
import { applyPolicy, credentials, key, needsPassword, refreshSession, refreshStorage, wipe, type DevicePolicy } from './session';

export type SyncError = 'offline' | 'server' | 'session' | null;

export const syncing = signal(false);
export const pushing = signal(false);
export const leader = signal(false);
export const lastError = signal<SyncError>(null);
/** Progress of the first sync: records received so far, or null when not in a first sync. */
export const firstSync = signal<number | null>(null);
/** Persons erased on the server since the app was opened (a notice is shown). */
export const erasedNotice = signal(0);
/** Mutations rejected in the last push. */
export const rejectedNotice = signal(0);

/** Records per pull page: the server's maximum (internal/syncapi MaxPullLimit). */
export const PAGE_SIZE = 1000;
const BASE_INTERVAL_MS = 60_000;
const MAX_BACKOFF_MS = 5 * 60_000;

let timer: ReturnType<typeof setTimeout> | null = null;
let failures = 0;
let running: Promise<void> | null = null;
let again = false;
let streamAbort: AbortController | null = null;
let stopped = true;
let streamRunning = false;
let revoked = false;

class Stop extends Error {}

function creds(pending?: number) {
  const c = credentials(pending);
  if (!c || !key()) throw new Stop('locked');
  return c;
}

async function handleFatal(e: unknown): Promise<boolean> {
  if (isRevoked(e)) {
    if (revoked) return true;
    revoked = true;
    stop();
    const dropped = await countUnsynced().catch(() => 0);
    await wipe(dropped);
    revoked = false;
    return true;
  }
  if (isUnauthorized(e)) {
    needsPassword.value = true;
    lastError.value = 'session';
    return true;
  }
  return false;
}

export async function push(): Promise<void> {
  const k = key();
  if (!k) throw new Stop('locked');
  for (;;) {
    const batch = await pendingBatch(k, 500);
    if (batch.length === 0) return;
    const pending = await countUnsynced();
    pushing.value = true;
    let resp: { results: PushResult[] };
    try {
      resp = await request<{ results: PushResult[] }>('POST', '/api/sync/push', creds(pending), {
        mutations: batch.map((it) => it.mutation),
      });
    } finally {
      pushing.value = false;
    }
    const rej = await answered(k, batch, resp.results);
    if (rej > 0) rejectedNotice.value += rej;
    if (batch.length < 500) return;
  }
}

interface PullPage {
  changes: Change[];
  cursor: string;
  seq: number;
  hasMore: boolean;
  reset: boolean;
  snapshot: boolean;
  users?: { id: string; name: string }[];
  policy?: DevicePolicy;
}

/**
 * Pulls until the server has nothing more. The next page is requested as
 * soon as a page arrives (its cursor is known) and travels while this one is
 * sealed and written: the device still stores a page and its cursor
 * together, in order, and a page fetched ahead but not applied (an error, a
 * lock) is simply asked for again from the stored cursor.
 */
export async function pull(): Promise<void> {
  const k = key();
  if (!k) throw new Stop('locked');
  let st = await readSync();
  let received = 0;
  if (!st.snapshotDone) firstSync.value = 0;
  const fetchPage = async (cursor: string) => {
    const q = `/api/sync/pull?limit=${PAGE_SIZE}&cursor=${encodeURIComponent(cursor)}`;
    return request<PullPage>('GET', q, creds(await countUnsynced()));
  };
  let ahead: Promise<PullPage> | null = null;
  try {
    for (let i = 0; i < 10_000; i++) {
      const page = await (ahead ?? fetchPage(st.cursor));
      ahead = null;
      if (page.reset) {
        await reset();
        st = await readSync();
        firstSync.value = 0;
        continue;
      }
      if (page.hasMore) {
        ahead = fetchPage(page.cursor);
        // Not awaited if this page fails: the error is the one to report.
        ahead.catch(() => {});
        // More pages to come: the view reads the table once at the end, not after every page.
        holdRecords();
      }
      const done = !page.snapshot || !page.hasMore;
      const res = await applyPage(k, page.changes, page.cursor, page.seq, done, page.users, remember);
      if (res.purgedPersons.length > 0) {
        erasedNotice.value += res.purgedPersons.length;
        await scrubPersonsMet(k, res.purgedPersons);
      }
      await applyPolicy(page.policy);
      received += page.changes.length;
      if (firstSync.value !== null) firstSync.value = received;
      st = await readSync();
      if (!page.hasMore) break;
    }
  } finally {
    releaseRecords();
    firstSync.value = null;
  }
  await pruneAcked(st.seq);
}

/** Unresolved conflicts of the worker's teams, kept sealed like records. */
export async function pullConflicts(): Promise<void> {
  const k = key();
  if (!k) return;
  const list = await request<{ items: Record<string, any>[] }>(
    'GET',
    '/api/collections/sync_conflicts/records?perPage=200&sort=-created&filter=' + encodeURIComponent("resolved_at=''"),
    { token: creds().token },
  );
  const rows: RecordRow[] = [];
  for (const c of list.items) {
    rows.push({
      collection: 'sync_conflicts',
      id: c.id,
      team: String(c.team ?? ''),
      person: String(c.person ?? ''),
      referral: '',
      version: 0,
      data: await seal(k, c),
    });
  }
  const d = db();
  await d.transaction('rw', d.records, async () => {
    await d.records.where('collection').equals('sync_conflicts').delete();
    await d.records.bulkPut(rows);
  });
}

async function runOnce(): Promise<void> {
  syncing.value = true;
  try {
    await refreshSession();
    await push();
    await pull();
    await pullConflicts();
    failures = 0;
    lastError.value = null;
    void refreshStorage();
  } catch (e) {
    if (e instanceof Stop) return;
    if (await handleFatal(e)) return;
    failures++;
    lastError.value = isTemporary(e) ? (e instanceof ApiError ? 'server' : 'offline') : 'server';
    if (!isTemporary(e)) console.error('sync', e);
  } finally {
    syncing.value = false;
  }
}

/** Syncs now (in the leader tab); a call during a sync runs one more after it. */
export function syncNow(): Promise<void> {
  if (!leader.value || stopped) return Promise.resolve();
  if (running) {
    again = true;
    return running;
  }
  running = (async () => {
    do {
      again = false;
      await runOnce();
    } while (again && !stopped);
    running = null;
    schedule();
  })();
  return running;
}

function schedule() {
  if (timer) clearTimeout(timer);
  if (stopped) return;
  const delay = failures === 0 ? BASE_INTERVAL_MS : Math.min(MAX_BACKOFF_MS, 5000 * 2 ** (failures - 1));
  timer = setTimeout(() => void syncNow(), delay);
}

const onVisible = () => {
  if (document.visibilityState === 'visible') void syncNow();
};
const onOnline = () => void syncNow();

let releaseLock: (() => void) | null = null;
let disposeOutboxWatch: (() => void) | null = null;

/** Starts the engine after unlock: waits to become the syncing tab, then syncs. */
export function start(): void {
  if (!stopped) return;
  stopped = false;
  document.addEventListener('visibilitychange', onVisible);
  window.addEventListener('online', onOnline);
  const become = () => {
    leader.value = true;
    void syncNow();
    void runStream();
    // A save in any tab (Dexie's liveQuery follows the other tabs' writes)
    // is pushed at once by the syncing tab.
    let last = pendingCount.peek();
    disposeOutboxWatch = effect(() => {
      const n = pendingCount.value;
      if (n > last) void syncNow();
      last = n;
    });
  };
  if (navigator.locks) {
    void navigator.locks.request('strada-sync', () => {
      if (stopped) return;
      become();
      return new Promise<void>((resolve) => (releaseLock = resolve));
    });
  } else {
    become();
  }
}

/** Stops syncing (lock, sign-out, wipe). An outbox is never touched. */
export function stop(): void {
  stopped = true;
  leader.value = false;
  if (timer) clearTimeout(timer);
  timer = null;
  streamAbort?.abort();
  streamAbort = null;
  document.removeEventListener('visibilitychange', onVisible);
  window.removeEventListener('online', onOnline);
  disposeOutboxWatch?.();
  disposeOutboxWatch = null;
  releaseLock?.();
  releaseLock = null;
}

/**
 * The live stream, read with fetch() and a ReadableStream: EventSource
 * cannot send the Authorization and X-Strada-Device headers. A hint beyond
 * the last pulled seq starts a sync; silence beyond two heartbeats, an
 * error or the end of the stream reconnects after a pause.
 */
async function runStream(): Promise<void> {
  if (streamRunning) return;
  streamRunning = true;
  try {
    await readStream();
  } finally {
    streamRunning = false;
  }
}

/** After the worker typed the password again: sync and reopen the stream. */
export function resume(): void {
  if (stopped || !leader.value) return;
  void syncNow();
  void runStream();
}

async function readStream(): Promise<void> {
  let pause = 2000;
  while (!stopped) {
    const ctl = new AbortController();
    streamAbort = ctl;
    let watchdog: ReturnType<typeof setTimeout> | null = null;
    const arm = (s: number) => {
      if (watchdog) clearTimeout(watchdog);
      watchdog = setTimeout(() => ctl.abort(), s * 1000);
    };
    try {
      const c = creds();
      arm(30);
      const resp = await fetch('/api/sync/stream', {
        headers: {
          Authorization: c.token,
          'X-Strada-Device': c.device!,
          ...(c.deviceSecret ? { 'X-Strada-Device-Secret': c.deviceSecret } : {}),
          Accept: 'text/event-stream',
        },
        signal: ctl.signal,
        cache: 'no-store',
      });
      if (!resp.ok || !resp.body) {
        const body = await resp.json().catch(() => ({}));
        throw new ApiError(resp.status, body.code ?? String(resp.status), body.message ?? '', !!body.wipe);
      }
      let heartbeat = 25;
      arm(heartbeat * 2 + 5);
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data += line.slice(5).trim();
          }
          const msg = data ? JSON.parse(data) : {};
          arm(heartbeat * 2 + 5);
          pause = 2000;
          if (event === 'hello') {
            heartbeat = Number(msg.heartbeat) || 25;
            void syncNow();
          } else if (event === 'hint') {
            if (Number(msg.seq) > (await readSync()).seq) void syncNow();
          } else if (event === 'reset') {
            void syncNow();
          } else if (event === 'revoked') {
            await handleFatal(new ApiError(403, 'device_revoked', '', true));
            return;
          }
        }
      }
    } catch (e) {
      if (e instanceof Stop) return;
      if (await handleFatal(e)) return;
    } finally {
      if (watchdog) clearTimeout(watchdog);
    }
    if (stopped) return;
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(60_000, pause * 2);
  }
}
