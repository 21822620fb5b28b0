import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import Dexie from 'dexie';
import { createDataKey, open, rewrapDataKey, seal, unlockDataKey, PBKDF2_ITERATIONS } from '../../src/lib/crypto';
import { StradaDB, setDatabaseForTests, db } from '../../src/lib/db';
import { answered, applyPage, enqueue, pendingBatch, readSync, reset, pruneAcked, RESEND_DAYS } from '../../src/lib/store';
import { base, follow, holdRecords, outbox, ready, releaseRecords, remember, syncRow, unfollow, viewOf } from '../../src/lib/view';
import { openItem } from '../../src/lib/store';
import { unlockDelay } from '../../src/lib/session';

let key: CryptoKey;
let n = 0;

beforeEach(async () => {
  setDatabaseForTests(new StradaDB(`test-${++n}`));
  key = (await createDataKey('pw', 1000)).key;
});

afterEach(async () => {
  const d = db();
  d.close();
  await Dexie.delete(d.name);
  setDatabaseForTests(null);
});

/** Every byte IndexedDB holds, as text, to look for clear personal data. */
async function rawText(): Promise<string> {
  const parts: string[] = [];
  for (const table of db().tables) {
    for (const row of await table.toArray()) {
      parts.push(JSON.stringify(row, (_k, v) => (v instanceof ArrayBuffer || ArrayBuffer.isView(v) ? new TextDecoder().decode(v as any) : v)));
    }
  }
  return parts.join('\n');
}

async function loadView() {
  base.value = new Map();
  const m = new Map<string, Map<string, any>>();
  for (const r of await db().records.toArray()) {
    if (!m.has(r.collection)) m.set(r.collection, new Map());
    m.get(r.collection)!.set(r.id, await open(key, r.data));
  }
  base.value = m;
  outbox.value = await Promise.all((await db().outbox.orderBy('n').toArray()).map((r) => openItem(key, r)));
  syncRow.value = await readSync();
}

async function waitFor(cond: () => boolean, ms = 2000) {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const person = (id: string, name: string, version = 1) => ({
  collection: 'persons', id, op: 'upsert' as const, version,
  record: { id, team: 'team1', code: 'R-' + id.toUpperCase(), given_name: name, notes: 'nota riservata ' + name, version },
});

describe('crypto', () => {
  it('derives with at least 600,000 iterations by default and refuses a wrong password', async () => {
    const { wrapped } = await createDataKey('giusta');
    expect(wrapped.iterations).toBeGreaterThanOrEqual(600_000);
    expect(PBKDF2_ITERATIONS).toBeGreaterThanOrEqual(600_000);
    await expect(unlockDataKey(wrapped, 'sbagliata')).rejects.toBeTruthy();
    const k = await unlockDataKey(wrapped, 'giusta');
    expect(k.extractable).toBe(false);
  });

  it('re-wraps the same data key under a new password', async () => {
    const { wrapped, key: k } = await createDataKey('vecchia', 1000);
    const sealed = await seal(k, { a: 1 });
    const re = await rewrapDataKey(wrapped, 'vecchia', 'nuova');
    await expect(unlockDataKey(re, 'vecchia')).rejects.toBeTruthy();
    const k2 = await unlockDataKey(re, 'nuova');
    expect(await open(k2, sealed)).toEqual({ a: 1 });
  });

  it('uses a fresh IV for every write', async () => {
    const a = await seal(key, 'x');
    const b = await seal(key, 'x');
    expect(Array.from(a.iv)).not.toEqual(Array.from(b.iv));
  });
});

describe('store', () => {
  it('keeps no personal data in clear, neither records nor outbox', async () => {
    await applyPage(key, [person('p1', 'Ioana')], 'c1', 10, true);
    await enqueue(key, { collection: 'persons', recordId: 'p1', op: 'upsert', baseVersion: 1, fields: { notes: 'segreto Mihai' } });
    const raw = await rawText();
    for (const secret of ['Ioana', 'R-P1', 'nota riservata', 'segreto Mihai']) {
      expect(raw, `raw IndexedDB holds ${secret}`).not.toContain(secret);
    }
  });

  it('applies a page and its cursor together', async () => {
    await applyPage(key, [person('p1', 'A'), person('p2', 'B')], 'cur-1', 42, true);
    const st = await readSync();
    expect([st.cursor, st.seq, await db().records.count()]).toEqual(['cur-1', 42, 2]);
  });

  it('shows pending and answered mutations on top until the pull reaches their seq', async () => {
    await applyPage(key, [person('p1', 'A')], 'c1', 10, true);
    await enqueue(key, { collection: 'persons', recordId: 'p1', op: 'upsert', baseVersion: 1, fields: { given_name: 'Nuovo' } });
    await loadView();
    expect(viewOf('persons').get('p1')?.given_name).toBe('Nuovo');
    const batch = await pendingBatch(key);
    await answered(key, batch, [{ id: batch[0].mutation.id, status: 'applied', seq: 11, version: 2 }]);
    await loadView();
    expect(viewOf('persons').get('p1')?.given_name, 'answered, not yet pulled').toBe('Nuovo');
    await applyPage(key, [], 'c2', 11, false);
    await loadView();
    expect(viewOf('persons').get('p1')?.given_name, 'pulled past its seq, server state shows').toBe('A');
  });

  it('applies a page in order, batched: the last change of a record wins, a purge cuts the run', async () => {
    const del = (collection: string, id: string) => ({ collection, id, op: 'delete' as const, version: 2, record: null });
    const purge = (collection: string, id: string) => ({ collection, id, op: 'purge' as const, version: 3, record: null });
    const contact = (id: string, p: string) => ({
      collection: 'secretariat_contacts', id, op: 'upsert' as const, version: 1,
      record: { id, team: 'team1', person: p, requests: 'x' },
    });
    const cases = [
      { name: 'upsert then delete', page: [person('p1', 'A'), del('persons', 'p1')], want: [] },
      { name: 'delete then upsert', page: [del('persons', 'p1'), person('p1', 'B', 3)], want: ['persons/p1:B'] },
      { name: 'two upserts, the later wins', page: [person('p1', 'A'), person('p1', 'C', 2)], want: ['persons/p1:C'] },
      {
        name: 'a purge removes what came before it, not what comes after',
        page: [person('p1', 'A'), contact('k1', 'p1'), purge('persons', 'p1'), person('p2', 'D'), contact('k2', 'p2')],
        want: ['persons/p2:D', 'secretariat_contacts/k2:'],
      },
    ];
    for (const c of cases) {
      await db().records.clear();
      await applyPage(key, c.page, 'c-' + c.name, 20, true);
      const got: string[] = [];
      for (const r of await db().records.toArray()) {
        const rec = await open<any>(key, r.data);
        got.push(`${r.collection}/${r.id}:${rec.given_name ?? ''}`);
      }
      expect(got.sort(), c.name).toEqual(c.want);
    }
  });

  it('shows a held pull once it is released, without opening what this tab sealed', async () => {
    follow(key);
    await waitFor(() => ready.value);
    holdRecords();
    await applyPage(key, [person('p1', 'A')], 'c1', 10, false, undefined, remember);
    await applyPage(key, [person('p2', 'B')], 'c2', 11, true, undefined, remember);
    await new Promise((r) => setTimeout(r, 50));
    expect([...(base.value.get('persons')?.keys() ?? [])], 'held: the view is not re-read').toEqual([]);
    const decrypt = vi.spyOn(globalThis.crypto.subtle, 'decrypt');
    releaseRecords();
    await waitFor(() => base.value.get('persons')?.size === 2);
    expect(viewOf('persons').get('p2')?.given_name).toBe('B');
    expect(decrypt.mock.calls.length, 'records opened again').toBe(0);
    decrypt.mockRestore();
    unfollow();
  });

  it('reverts a rejected mutation and keeps its reason', async () => {
    await applyPage(key, [person('p1', 'A')], 'c1', 10, true);
    await enqueue(key, { collection: 'persons', recordId: 'p1', op: 'upsert', baseVersion: 1, fields: { code: 'bad' } });
    const batch = await pendingBatch(key);
    await answered(key, batch, [{ id: batch[0].mutation.id, status: 'rejected', error: { code: 'validation_invalid_format', message: 'Codice non valido' } }]);
    await loadView();
    expect(viewOf('persons').get('p1')?.code).toBe('R-P1');
    const rej = outbox.value.filter((o) => o.state === 'rejected');
    expect(rej.map((r) => r.error?.message)).toEqual(['Codice non valido']);
  });

  it('purges a person with the records and pending mutations about them', async () => {
    await applyPage(key, [
      person('p1', 'A'),
      person('p2', 'B'),
      { collection: 'referrals', id: 'r1', op: 'upsert', version: 1, record: { id: 'r1', team: 'team1', person: 'p1', reason: 'x' } },
      { collection: 'referral_events', id: 'e1', op: 'upsert', version: 1, record: { id: 'e1', team: 'team1', referral: 'r1' } },
    ], 'c1', 10, true);
    await enqueue(key, { collection: 'secretariat_contacts', recordId: 'k1', op: 'upsert', baseVersion: 0, fields: { person: 'p1', team: 'team1' } });
    await enqueue(key, { collection: 'persons', recordId: 'p2', op: 'upsert', baseVersion: 1, fields: { notes: 'resta' } });
    await applyPage(key, [{ collection: 'persons', id: 'p1', op: 'purge', version: 2, record: null }], 'c2', 12, false);
    const left = (await db().records.toArray()).map((r) => `${r.collection}/${r.id}`);
    expect(left).toEqual(['persons/p2']);
    const pending = (await pendingBatch(key)).map((m) => m.mutation.recordId);
    expect(pending).toEqual(['p2']);
  });

  it('reset keeps the outbox and sends again what was acknowledged in the last days', async () => {
    await applyPage(key, [person('p1', 'A')], 'c1', 10, true);
    await enqueue(key, { collection: 'persons', recordId: 'p1', op: 'upsert', baseVersion: 1, fields: { notes: 'uno' } });
    await enqueue(key, { collection: 'persons', recordId: 'p1', op: 'upsert', baseVersion: 1, fields: { notes: 'due' } });
    await enqueue(key, { collection: 'persons', recordId: 'p1', op: 'upsert', baseVersion: 1, fields: { notes: 'tre' } });
    const batch = await pendingBatch(key);
    await answered(key, batch.slice(0, 2), batch.slice(0, 2).map((b, i) => ({ id: b.mutation.id, status: 'applied' as const, seq: 11 + i })));
    // The first acknowledgement is older than the resend window.
    const old = (await db().outbox.orderBy('n').first())!;
    await db().outbox.update(old.n!, { ackedAt: Date.now() - (RESEND_DAYS + 1) * 86_400_000 });
    const resent = await reset();
    expect(resent).toBe(1);
    expect(await db().records.count()).toBe(0);
    expect((await readSync()).cursor).toBe('');
    const notes = (await pendingBatch(key)).map((m) => m.mutation.fields?.notes);
    expect(notes).toEqual(['due', 'tre']);
  });

  it('prunes acknowledged mutations past the resend window', async () => {
    await enqueue(key, { collection: 'persons', recordId: 'p1', op: 'upsert', baseVersion: 0, fields: { notes: 'x' } });
    const batch = await pendingBatch(key);
    await answered(key, batch, [{ id: batch[0].mutation.id, status: 'applied', seq: 5 }]);
    await pruneAcked(5);
    expect(await db().outbox.count(), 'recent: kept').toBe(1);
    await db().outbox.toCollection().modify({ ackedAt: Date.now() - (RESEND_DAYS + 1) * 86_400_000 });
    await pruneAcked(5);
    expect(await db().outbox.count(), 'old and pulled: dropped').toBe(0);
  });
});

describe('unlock delay', () => {
  it.each([
    [1, 0],
    [2, 0],
    [3, 2],
    [5, 8],
    [20, 300],
  ])('after %i failures waits %i s', (failures, want) => {
    expect(unlockDelay(failures)).toBe(want);
  });
});
