// Issue 8, test 1: the camp worker works with the server stopped, and with
// a server that accepts connections but never answers; everything made
// offline reaches the server exactly once.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import {
  Server, launch, signIn, swReady, unlock, createVisit, waitSynced, pendingShown, go, CAMP, sleep, shot,
} from './harness.mjs';

let server, browser, page;
after(async () => {
  await browser?.close();
  await server?.remove();
});

test('offline: reload from the service worker, save a visit and a referral, sync exactly once', async () => {
  server = await Server.create();
  await server.start();
  browser = await launch();
  page = await browser.context.newPage();
  await signIn(page, server, CAMP);
  await swReady(page);
  const visitsBefore = (await server.list('camp_visits')).length;
  const referralsBefore = (await server.list('referrals')).length;

  await server.stop();
  await page.reload();
  await unlock(page);
  await page.locator('nav.bottom').waitFor();
  const visitId = await createVisit(page, 'Rinnovo carta d’identità per la famiglia');

  await go(page, `/invii/nuovo?visit=${visitId}`);
  await page.getByRole('heading', { name: 'Nuovo invio' }).waitFor();
  await page.getByLabel('Persona').selectOption({ index: 1 });
  await page.getByLabel('Servizio').selectOption({ index: 1 });
  await page.getByLabel('Motivo dell’invio').fill('Accompagnamento per il rinnovo dei documenti');
  await page.getByRole('button', { name: 'Salva' }).click();
  await page.getByRole('heading', { name: 'Invio', exact: true }).waitFor();
  const referralId = page.url().split('/').pop();
  await shot(page, 'offline-referral');
  assert.equal(await pendingShown(page), 2, 'pending shown offline');
  await shot(page, 'offline-sync-status');

  await server.start();
  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  await waitSynced(page);
  await page.locator('#pending-count[data-pending="0"]').waitFor();

  const visits = await server.list('camp_visits');
  const referrals = await server.list('referrals');
  assert.equal(visits.length, visitsBefore + 1, 'visits on the server');
  assert.equal(referrals.length, referralsBefore + 1, 'referrals on the server');
  assert.equal(visits.filter((v) => v.id === visitId).length, 1);
  const ref = referrals.find((r) => r.id === referralId);
  assert.ok(ref, `referral ${referralId} on the server`);
  assert.equal(ref.source_visit, visitId);
  assert.equal(ref.status, 'draft');
  const v = visits.find((x) => x.id === visitId);
  assert.equal(v.needs, 'Rinnovo carta d’identità per la famiglia');
  assert.equal(v.households_met, 3);
});

test('a server that accepts connections but never answers: the app opens within seconds and works', async () => {
  await server.stop();
  const sockets = new Set();
  const hang = createServer((s) => sockets.add(s));
  await new Promise((r) => hang.listen(server.port, '127.0.0.1', r));
  try {
    const started = Date.now();
    await page.reload({ waitUntil: 'domcontentloaded', timeout: 10_000 });
    await unlock(page).catch(async (e) => {
      await shot(page, 'hanging-server-failure');
      throw e;
    });
    await page.locator('nav.bottom').waitFor({ timeout: 10_000 });
    const opened = Date.now() - started;
    assert.ok(opened < 8000, `opened in ${opened} ms, want a few seconds`);
    const id = await createVisit(page, 'Visita con rete bloccata');
    assert.ok(id);
    await go(page, '/sync');
    await page.locator('#pending-count[data-pending="1"]').waitFor();
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hang.close(r));
  }
  // Back online, the visit made against the hanging server arrives.
  await server.start();
  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  await page.locator('#pending-count[data-pending="0"]').waitFor({ timeout: 60_000 });
  const visits = await server.list('camp_visits', "needs = 'Visita con rete bloccata'");
  assert.equal(visits.length, 1);
  await sleep(10);
});
