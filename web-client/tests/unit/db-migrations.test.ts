// Local schema migrations: a database made by every shipped version of the
// schema must open with the current code and keep everything. Each shipped
// version's stores are frozen here as they were released; a new version is
// added to SCHEMA in src/lib/db.ts with an upgrade function, and its stores
// are frozen here when it ships.
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import Dexie from 'dexie';
import { createDataKey, open, seal, unlockDataKey } from '../../src/lib/crypto';
import { SCHEMA, StradaDB, db, setDatabaseForTests } from '../../src/lib/db';
import { pendingBatch, readSync } from '../../src/lib/store';

/** The stores of every shipped schema version, exactly as released. */
const SHIPPED: Record<number, Record<string, string>> = {
  1: {
    meta: 'k',
    records: '[collection+id], collection, team, person, referral',
    outbox: '++n, &id, state, recordId, person, ackedAt',
  },
};

const PASSWORD = 'parola-segreta';
const PERSON = '0192f3a4-5b6c-7d8e-9f01-23456789abcd';
const CONTACT = '0192f3a4-5b6c-7d8e-9f01-23456789abce';
const MUTATION = '0192f3a4-5b6c-7d8e-9f01-23456789abcf';

const person = { id: PERSON, team: 'team1', code: 'RC-0042', given_name: 'Ionela', notes: 'chiede la residenza', version: 3 };
const contact = { id: CONTACT, team: 'team1', person: PERSON, setting: 'intra', requests: ['documents'], version: 1 };
const mutation = {
  id: MUTATION, collection: 'persons', recordId: PERSON, op: 'update', baseVersion: 3,
  fields: { notes: 'chiede la residenza e il permesso' },
};

/**
 * Makes a database with the frozen stores of a shipped version and the rows
 * that version wrote: an account with a wrapped data key, the cursor, sealed
 * records and a pending outbox entry.
 */
async function makeShipped(name: string, version: number) {
  const old = new Dexie(name);
  old.version(version).stores(SHIPPED[version]);
  await old.open();
  const { wrapped, key } = await createDataKey(PASSWORD, 1000);
  const profile = await seal(key, { email: 'operatore.carcere@example.org', name: 'Operatore Carcere', token: 'tok' });
  const personData = await seal(key, person);
  const contactData = await seal(key, contact);
  const mutationData = await seal(key, { mutation });
  await old.transaction('rw', old.tables, async () => {
    await old.table('meta').bulkAdd([
      {
        k: 'account', userId: 'user1', role: 'worker', teams: ['team1'], deviceId: 'device1',
        deviceSecret: 'a'.repeat(64), key: wrapped, profile, lockMinutes: 5,
      },
      { k: 'sync', cursor: 'c-42', seq: 42, lastSync: '2026-11-20T10:00:00Z', snapshotDone: true },
      { k: 'attempts', failures: 0, notBefore: 0 },
    ]);
    await old.table('records').bulkAdd([
      { collection: 'persons', id: PERSON, team: 'team1', person: PERSON, referral: '', version: 3, data: personData },
      { collection: 'secretariat_contacts', id: CONTACT, team: 'team1', person: PERSON, referral: '', version: 1, data: contactData },
    ]);
    await old.table('outbox').add({
      id: MUTATION, collection: 'persons', recordId: PERSON, person: PERSON,
      state: 'pending', ackSeq: 0, ackedAt: 0, data: mutationData,
    });
  });
  old.close();
}

const shipped = Object.keys(SHIPPED).map(Number);

afterEach(async () => {
  const d = db();
  d.close();
  await Dexie.delete(d.name);
  setDatabaseForTests(null);
});

describe('local schema', () => {
  it('never edits a shipped version', () => {
    for (const v of shipped) {
      const current = SCHEMA.find((s) => s.version === v);
      expect(current, `version ${v} in SCHEMA`).toBeDefined();
      expect(current!.stores).toEqual(SHIPPED[v]);
    }
    const versions = SCHEMA.map((s) => s.version);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
  });

  it.each(shipped)('opens a database made by version %i and keeps its data', async (version) => {
    const name = `migrate-from-v${version}`;
    await makeShipped(name, version);

    setDatabaseForTests(new StradaDB(name));
    await db().open();
    expect(db().verno).toBe(SCHEMA[SCHEMA.length - 1].version);

    const account = (await db().meta.get('account')) as any;
    expect(account?.userId).toBe('user1');
    expect(account?.deviceId).toBe('device1');
    const key = await unlockDataKey(account.key, PASSWORD);
    expect(await open(key, account.profile)).toEqual({
      email: 'operatore.carcere@example.org', name: 'Operatore Carcere', token: 'tok',
    });

    expect(await readSync()).toMatchObject({ cursor: 'c-42', seq: 42, snapshotDone: true });

    const byPerson = await db().records.where('person').equals(PERSON).toArray();
    expect(byPerson.map((r) => r.id).sort()).toEqual([PERSON, CONTACT].sort());
    const p = await db().records.get(['persons', PERSON]);
    expect(p?.version).toBe(3);
    expect(await open(key, p!.data)).toEqual(person);
    const c = await db().records.get(['secretariat_contacts', CONTACT]);
    expect(await open(key, c!.data)).toEqual(contact);

    const pending = await pendingBatch(key);
    expect(pending).toHaveLength(1);
    expect(pending[0].mutation).toEqual(mutation);
    expect(pending[0].state).toBe('pending');
    expect(await db().outbox.where('id').equals(MUTATION).count()).toBe(1);
  });
});
