// Issue 8 test 2: two devices edit one visit offline. Different fields
// merge; the same field shows the conflict badge with both values, and
// resolving it reaches the server and the other device.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, signIn, swReady, go, waitSynced, CAMP, shot, sleep } from './harness.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function edit(page, id, fields) {
  await go(page, `/visite/${id}`);
  await page.getByRole('heading', { name: 'Modifica visita al campo' }).waitFor();
  for (const [label, value] of Object.entries(fields)) await page.getByLabel(label, { exact: true }).fill(value);
  await page.getByRole('button', { name: 'Salva' }).click();
  await page.getByRole('heading', { name: /^Ciao/ }).waitFor();
}

async function syncNow(page) {
  await go(page, '/sync');
  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  await page.locator('#pending-count[data-pending="0"]').waitFor({ timeout: 60_000 });
  await waitSynced(page);
}

test('offline edits of one visit on two devices: merge, conflict badge, resolution everywhere', async () => {
  const server = await Server.create();
  await server.start();
  cleanup.push(() => server.remove());
  const a = await launch();
  const b = await launch();
  cleanup.push(() => a.close(), () => b.close());
  const pa = await a.context.newPage();
  const pb = await b.context.newPage();
  await signIn(pa, server, CAMP);
  await signIn(pb, server, CAMP);
  await swReady(pa);
  await swReady(pb);
  const [visit] = await server.list('camp_visits');

  await server.stop();
  await edit(pa, visit.id, { Bisogni: 'Bisogni scritti da A', Azioni: 'Azioni scritte da A' });
  await edit(pb, visit.id, { Bisogni: 'Bisogni scritti da B', Note: 'Note scritte da B' });
  // A's edit reaches the server first: B stays without network until A
  // has synced, so that its own retry timer cannot overtake A.
  await b.context.setOffline(true);
  await server.start();
  await syncNow(pa);
  await b.context.setOffline(false);
  await syncNow(pb);
  await syncNow(pa);

  const [merged] = await server.list('camp_visits', `id = '${visit.id}'`);
  assert.equal(merged.actions, 'Azioni scritte da A', 'A’s field kept');
  assert.equal(merged.notes, 'Note scritte da B', 'B’s field kept');
  assert.equal(merged.needs, 'Bisogni scritti da B', 'the later arrival wins the same field');

  // Both devices show the badge and both values.
  for (const p of [pa, pb]) {
    await go(p, `/visite/${visit.id}`);
    await p.locator('.tag.conflict').waitFor({ timeout: 10_000 });
  }
  await go(pa, `/conflitti?record=${visit.id}`);
  const card = pa.locator('.conflict-card').first();
  await card.waitFor();
  assert.equal(await card.locator('.value.kept').innerText(), 'Bisogni scritti da B');
  assert.equal(await card.locator('.value.overwritten').innerText(), 'Bisogni scritti da A');
  await shot(pa, '15-conflitto');
  await card.locator('[data-resolve="restore_overwritten"]').click();
  await pa.getByText('Nessun conflitto da risolvere.').waitFor({ timeout: 30_000 });

  const [restored] = await server.list('camp_visits', `id = '${visit.id}'`);
  assert.equal(restored.needs, 'Bisogni scritti da A', 'the restored value on the server');
  const open = await server.list('sync_conflicts', `record_id = '${visit.id}' && resolution = ''`);
  assert.equal(open.length, 0, 'open conflicts on the server');

  await syncNow(pb);
  await go(pb, `/visite/${visit.id}`);
  await pb.getByRole('heading', { name: 'Modifica visita al campo' }).waitFor();
  const until = Date.now() + 10_000;
  while (Date.now() < until && (await pb.locator('#f-needs').inputValue()) !== 'Bisogni scritti da A') await sleep(250);
  assert.equal(await pb.locator('#f-needs').inputValue(), 'Bisogni scritti da A', 'the other device');
  assert.equal(await pb.locator('.tag.conflict').count(), 0, 'badge on the other device after resolution');
});
