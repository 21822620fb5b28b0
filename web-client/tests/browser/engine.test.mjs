// Issue 8 tests 4, 6 and 8: erasure reaches a device that was offline, two
// tabs share one syncing tab, and a server restored from a backup ends with
// every record the device had made.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import {
  Server, launch, signIn, swReady, createVisit, unlock, go, waitSynced, outboxIds, outDir, CAMP, SUPERVISOR, sleep,
} from './harness.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function setup() {
  const server = await Server.create();
  await server.start();
  const browser = await launch();
  cleanup.push(() => server.remove(), () => browser.close());
  const page = await browser.context.newPage();
  await signIn(page, server, CAMP);
  await swReady(page);
  return { server, browser, page };
}

async function lockNow(page) {
  await go(page, '/impostazioni');
  await page.locator('#lock-now').click();
  await page.getByRole('heading', { name: 'Strada è bloccata' }).waitFor();
}

test('a person erased on the server disappears, with their pending edits, from a device that was offline', async () => {
  const { server, page } = await setup();
  const [camp] = await server.list('teams', "kind = 'camp_outreach'");
  const persons = await server.list('persons', `team = '${camp.id}'`);
  const person = persons[0];

  // Offline: an edit of the person and a new referral about them.
  await server.stop();
  await go(page, `/persone/${person.id}/modifica`);
  await page.getByLabel('Note').fill('Modifica fatta senza rete');
  await page.getByRole('button', { name: 'Salva' }).click();
  await page.getByRole('heading', { name: person.code, exact: false }).waitFor();
  await go(page, `/invii/nuovo?person=${person.id}`);
  await page.getByLabel('Servizio').selectOption({ index: 1 });
  await page.getByLabel('Motivo dell’invio').fill('Invio fatto senza rete');
  await page.getByRole('button', { name: 'Salva' }).click();
  await page.getByRole('heading', { name: 'Invio', exact: true }).waitFor();
  assert.equal((await outboxIds(page)).length, 2);
  await lockNow(page);

  await server.start();
  await server.api('POST', `/api/persons/${person.id}/erase`, { reason: 'richiesta dell’interessato' }, SUPERVISOR);
  await unlock(page);
  await page.locator('nav.bottom').waitFor();
  await go(page, '/sync');
  await page.getByText(/1 persone sono state cancellate/).waitFor({ timeout: 30_000 });
  await waitSynced(page);
  assert.deepEqual(await outboxIds(page), [], 'pending edits about the erased person');
  await go(page, `/persone/${person.id}`);
  await page.getByText('Persona non trovata').waitFor();
  const left = await page.evaluate(async (id) => {
    const db = await new Promise((res) => {
      const r = indexedDB.open('strada');
      r.onsuccess = () => res(r.result);
    });
    const rows = await new Promise((res) => {
      const q = db.transaction('records').objectStore('records').getAll();
      q.onsuccess = () => res(q.result);
    });
    db.close();
    return rows.filter((r) => r.id === id || r.person === id).length;
  }, person.id);
  assert.equal(left, 0, 'local records of or about the erased person');
  assert.equal((await server.list('referrals', `reason = 'Invio fatto senza rete'`)).length, 0);
});

test('two tabs: a change in one shows in the other within 1 s; only one pushes; the other takes over', async () => {
  const { server, browser, page: first } = await setup();
  const second = await browser.context.newPage();
  await second.goto(server.url + '/');
  await unlock(second);
  await second.locator('nav.bottom').waitFor();
  const pushes = new Map([[first, 0], [second, 0]]);
  for (const p of [first, second]) {
    p.on('request', (r) => {
      if (r.url().includes('/api/sync/push')) pushes.set(p, pushes.get(p) + 1);
    });
  }
  // A visit saved in the second tab shows in the first within a second.
  const id = await createVisit(second, 'Visita dalla seconda scheda');
  await go(first, `/visite/${id}`);
  const started = Date.now();
  await first.getByLabel('Bisogni', { exact: true }).and(first.locator('textarea')).waitFor({ timeout: 1000 });
  assert.equal(await first.locator('#f-needs').inputValue(), 'Visita dalla seconda scheda');
  assert.ok(Date.now() - started <= 1000);
  // The first tab holds the sync lock: it pushes, the second never does.
  await go(first, '/sync');
  await first.locator('#pending-count[data-pending="0"]').waitFor({ timeout: 60_000 });
  assert.equal((await server.list('camp_visits', `id = '${id}'`)).length, 1);
  assert.ok(pushes.get(first) >= 1, 'the syncing tab pushed');
  assert.equal(pushes.get(second), 0, 'the other tab pushed');
  // Closing the syncing tab: the other takes over within 5 s.
  await first.close();
  await go(second, '/sync');
  await second.getByText('La sincronizzazione avviene in un’altra scheda aperta.').waitFor({ state: 'hidden', timeout: 5000 });
  const id2 = await createVisit(second, 'Dopo la chiusura della prima scheda');
  const until = Date.now() + 5000;
  let found = [];
  while (Date.now() < until && found.length === 0) {
    found = await server.list('camp_visits', `id = '${id2}'`);
    if (found.length === 0) await sleep(250);
  }
  assert.equal(found.length, 1, 'the remaining tab pushed within 5 s');
  assert.ok(pushes.get(second) >= 1);
});

test('a server restored from a backup ends with every record the device had made', async () => {
  const { server, page } = await setup();
  // Backup, taken before the device's last sync.
  await server.stop();
  const backup = mkdtempSync(join(outDir, 'backup-'));
  cleanup.push(async () => rmSync(backup, { recursive: true, force: true }));
  cpSync(server.dir, backup, { recursive: true });
  await server.start();
  await go(page, '/sync');
  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  await waitSynced(page);
  const id = await createVisit(page, 'Registrata dopo il backup');
  await go(page, '/sync');
  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  await page.locator('#pending-count[data-pending="0"]').waitFor({ timeout: 60_000 });
  assert.equal((await server.list('camp_visits', `id = '${id}'`)).length, 1, 'acknowledged before the restore');

  // Restore: the acknowledged visit is gone from the server.
  await server.stop();
  rmSync(server.dir, { recursive: true, force: true });
  cpSync(backup, server.dir, { recursive: true });
  await server.start();
  assert.equal((await server.list('camp_visits', `id = '${id}'`)).length, 0, 'the restore lost the visit');

  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  const until = Date.now() + 60_000;
  let back = [];
  while (Date.now() < until && back.length === 0) {
    back = await server.list('camp_visits', `id = '${id}'`);
    if (back.length === 0) await sleep(500);
  }
  assert.equal(back.length, 1, 'the device sent the visit again');
  assert.equal(back[0].needs, 'Registrata dopo il backup');
  await waitSynced(page);
});
