// Issue 8 test 5: the page is closed at random moments right after saves,
// 30 times. A save is one IndexedDB transaction: each record's mutation is
// in the outbox whole or not at all, and everything saved reaches the
// server exactly once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, signIn, swReady, unlock, go, outboxIds, waitSynced, CAMP, sleep } from './harness.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

const ROUNDS = 30;

test(`closing the page right after a save, ${ROUNDS} times, loses or duplicates nothing`, async () => {
  const server = await Server.create();
  await server.start();
  cleanup.push(() => server.remove());
  const b = await launch();
  cleanup.push(() => b.close());
  let page = await b.context.newPage();
  await signIn(page, server, CAMP);
  await swReady(page);
  const before = (await server.list('camp_visits')).length;
  await server.stop();
  await page.close();

  for (let i = 0; i < ROUNDS; i++) {
    page = await b.context.newPage();
    await page.goto(server.url + '/visite/nuova');
    await unlock(page);
    await page.getByRole('heading', { name: 'Nuova visita al campo' }).waitFor();
    await page.getByLabel('Luogo').selectOption({ index: 1 });
    await page.getByLabel('Bisogni', { exact: true }).fill(`Chiusura ${i}`);
    await page.getByRole('button', { name: 'Salva' }).click();
    await sleep(Math.floor(Math.random() * 40));
    await page.close({ runBeforeUnload: false });
  }

  page = await b.context.newPage();
  await page.goto(server.url + '/');
  await unlock(page);
  await page.locator('nav.bottom').waitFor();
  const rows = await outboxIds(page);
  assert.ok(rows.length <= ROUNDS, `got ${rows.length} outbox rows for ${ROUNDS} saves`);
  assert.equal(new Set(rows.map((r) => r.recordId)).size, rows.length, 'one mutation per saved visit');
  // Every stored mutation opens (it was written whole) and shows on screen.
  await go(page, '/sync');
  await page.locator(`#pending-count[data-pending="${rows.length}"]`).waitFor();

  await server.start();
  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  await page.locator('#pending-count[data-pending="0"]').waitFor({ timeout: 60_000 });
  await waitSynced(page);
  const visits = (await server.list('camp_visits')).filter((v) => /^Chiusura \d+$/.test(v.needs));
  assert.equal(visits.length, rows.length, 'visits on the server, one per saved mutation');
  assert.equal(new Set(visits.map((v) => v.needs)).size, visits.length, 'a visit on the server twice');
  assert.deepEqual(new Set(visits.map((v) => v.id)), new Set(rows.map((r) => r.recordId)));
  assert.equal((await server.list('camp_visits')).length, before + rows.length);
});
