// Issue 8 test 3 and issue 10: what the device stores. The prison worker's
// IndexedDB never holds camp data; the raw IndexedDB content holds none of
// the persons' names, codes or notes, in records or in the outbox; the app
// locks when idle, unlocks offline with the right password only, and a
// mutation made before the lock reaches the server after unlock.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import {
  Server, launch, signIn, rawIndexedDB, createVisit, unlock, go, waitSynced, swReady, CAMP, PRISON, shot,
} from './harness.mjs';

let server, browser;
before(async () => {
  server = await Server.create();
  await server.start();
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await server?.remove();
});

async function teamId(kind) {
  const [team] = await server.list('teams', `kind = '${kind}'`);
  return team.id;
}

test("the prison worker's IndexedDB holds no camp data", async () => {
  const camp = await teamId('camp_outreach');
  const prison = await teamId('prison_secretariat');
  const page = await browser.context.newPage();
  await signIn(page, server, PRISON);
  const rows = await page.evaluate(async () => {
    const db = await new Promise((res) => {
      const r = indexedDB.open('strada');
      r.onsuccess = () => res(r.result);
    });
    const all = await new Promise((res) => {
      const req = db.transaction('records').objectStore('records').getAll();
      req.onsuccess = () => res(req.result);
    });
    db.close();
    return all.map((r) => ({ collection: r.collection, id: r.id, team: r.team }));
  });
  const work = rows.filter((r) => ['persons', 'camp_visits', 'secretariat_contacts', 'referrals', 'referral_events'].includes(r.collection));
  assert.ok(work.length > 0, 'the prison worker pulled their team’s records');
  const campIds = new Set([
    ...(await server.list('persons', `team = '${camp}'`)).map((r) => r.id),
    ...(await server.list('camp_visits')).map((r) => r.id),
    ...(await server.list('referrals', `team = '${camp}'`)).map((r) => r.id),
  ]);
  assert.ok(campIds.size > 0, 'the demo has camp records');
  for (const r of work) {
    assert.equal(r.team, prison, `${r.collection}/${r.id} of team ${r.team}`);
    assert.ok(!campIds.has(r.id), `camp record ${r.collection}/${r.id} on the prison device`);
  }
  const campSecrets = (await server.list('persons', `team = '${camp}'`)).map((p) => p.code);
  const raw = await rawIndexedDB(page);
  for (const s of campSecrets) assert.ok(!raw.includes(s), `camp code ${s} in the prison device's IndexedDB`);
  await page.close();
});

test('raw IndexedDB holds no names, codes or notes, in records or outbox', async () => {
  // A fresh browser profile for the camp worker.
  const b = await launch();
  try {
    const page = await b.context.newPage();
    await signIn(page, server, CAMP);
    await swReady(page);
    await server.stop();
    const secret = 'Nota riservata: gravidanza, visita ginecologica';
    await createVisit(page, secret);
    const raw = await rawIndexedDB(page);
    const camp = await teamId('camp_outreach').catch(() => null);
    assert.equal(camp, null, 'server is stopped while checking');
    await server.start();
    const campTeam = await teamId('camp_outreach');
    const persons = await server.list('persons', `team = '${campTeam}'`);
    const visits = await server.list('camp_visits');
    assert.ok(persons.length > 0 && raw.length > 10_000, 'the device holds the synced data');
    const secrets = new Set([secret]);
    for (const p of persons) {
      for (const v of [p.code, p.given_name, p.family_name, p.notes]) if (v && v.length >= 4) secrets.add(v);
    }
    for (const v of visits) for (const x of [v.needs, v.actions, v.notes]) if (x && x.length >= 8) secrets.add(x);
    const found = [...secrets].filter((s) => raw.includes(s));
    assert.deepEqual(found, [], 'personal data in clear in IndexedDB');
    assert.ok(!raw.includes('operatore.campi@example.org'), 'the account email in clear');
    assert.ok(!raw.includes('Operatrice Campi'), 'the worker name in clear');
  } finally {
    await b.close();
  }
});

test('idle lock, a wrong password keeps data, unlock offline, the mutation made before the lock reaches the server', async () => {
  const b = await launch();
  try {
    const page = await b.context.newPage();
    await signIn(page, server, CAMP);
    await swReady(page);
    // Shorten the idle time to 4 s (the account row holds it), then reload.
    await page.evaluate(async () => {
      const db = await new Promise((res) => {
        const r = indexedDB.open('strada');
        r.onsuccess = () => res(r.result);
      });
      await new Promise((res) => {
        const tx = db.transaction('meta', 'readwrite');
        const st = tx.objectStore('meta');
        const g = st.get('account');
        g.onsuccess = () => st.put({ ...g.result, lockMinutes: 4 / 60 });
        tx.oncomplete = res;
      });
      db.close();
    });
    await server.stop();
    await page.reload();
    await unlock(page);
    await page.locator('nav.bottom').waitFor();
    const id = await createVisit(page, 'Prima del blocco');
    // No input: the app locks by itself.
    await page.getByRole('heading', { name: 'Strada è bloccata' }).waitFor({ timeout: 15_000 });
    await shot(page, 'lock');
    const rawLocked = await rawIndexedDB(page);
    assert.ok(!rawLocked.includes('Prima del blocco'));

    await page.getByLabel('Password').fill('password-sbagliata');
    await page.getByRole('button', { name: 'Sblocca' }).click();
    await page.locator('#unlock-error').waitFor();
    assert.match(await page.locator('#unlock-error').innerText(), /non corretta/);
    const outbox = await page.evaluate(async () => {
      const db = await new Promise((res) => {
        const r = indexedDB.open('strada');
        r.onsuccess = () => res(r.result);
      });
      const n = await new Promise((res) => {
        const req = db.transaction('outbox').objectStore('outbox').count();
        req.onsuccess = () => res(req.result);
      });
      db.close();
      return n;
    });
    assert.equal(outbox, 1, 'the outbox survives a wrong password');

    await page.getByLabel('Password').fill('strada-demo-2026');
    await page.getByRole('button', { name: 'Sblocca' }).click();
    await page.locator('nav.bottom').waitFor();
    await go(page, '/sync');
    await page.locator('#pending-count[data-pending="1"]').waitFor();
    await server.start();
    await page.getByRole('button', { name: 'Sincronizza ora' }).click();
    await waitSynced(page);
    const onServer = await server.list('camp_visits', `id = '${id}'`);
    assert.equal(onServer.length, 1);
    assert.equal(onServer[0].needs, 'Prima del blocco');
  } finally {
    await b.close();
  }
});
