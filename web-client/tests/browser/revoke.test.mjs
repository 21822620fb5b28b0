// Issue 8 test 7, issue 10: a revoked device tells how many unsynced
// mutations it drops, then ends with no IndexedDB database, no caches and
// no service worker, at sign-in.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, signIn, swReady, createVisit, unlock, CAMP, shot } from './harness.mjs';

let server, browser;
after(async () => {
  await browser?.close();
  await server?.remove();
});

test('a revoked device wipes itself and returns to sign-in', async () => {
  server = await Server.create();
  await server.start();
  browser = await launch();
  const page = await browser.context.newPage();
  await signIn(page, server, CAMP);
  await swReady(page);
  const before = await page.evaluate(async () => ({
    dbs: (await indexedDB.databases()).map((d) => d.name),
    caches: (await caches.keys()).length,
    sw: (await navigator.serviceWorker.getRegistrations()).length,
  }));
  assert.ok(before.dbs.includes('strada') && before.caches > 0 && before.sw === 1, JSON.stringify(before));

  // An unsynced visit: made with the server down, then the app is locked
  // (sync pauses) while the supervisor revokes the device.
  await server.stop();
  await createVisit(page, 'Mai sincronizzata');
  await page.evaluate(() => {
    history.pushState(null, '', '/impostazioni');
    dispatchEvent(new PopStateEvent('popstate'));
  });
  await page.locator('#lock-now').click();
  await server.start();
  const user = (await server.list('users', `email = '${CAMP}'`))[0];
  const devices = await server.list('devices', `user = '${user.id}'`);
  assert.equal(devices.length, 1);
  await server.api('PATCH', `/api/collections/devices/records/${devices[0].id}`, { revoked: true });

  await unlock(page);
  // The revocation also invalidated the worker's tokens; the device secret
  // sent with every sync call still lets the server answer device_revoked.
  // Without it the app would ask for the password first.
  const prompt = page.locator('#reauth-password');
  const notice = page.locator('#wiped-notice');
  await Promise.race([prompt.waitFor({ timeout: 30_000 }), notice.waitFor({ timeout: 30_000 })]);
  if (await page.locator('#reauth-password').isVisible()) {
    await page.locator('#reauth-password').fill('strada-demo-2026');
    await page.getByRole('button', { name: 'Conferma password' }).click();
  }
  await page.locator('#wiped-notice').waitFor({ timeout: 30_000 }).catch(async (e) => {
    await shot(page, 'revoked-failure');
    throw e;
  });
  assert.match(await page.locator('#wiped-notice').innerText(), /1 modifiche non sincronizzate/);
  await page.getByRole('heading', { name: 'Accedi a Strada' }).waitFor();
  await shot(page, 'revoked');
  await page.waitForFunction(async () => (await navigator.serviceWorker.getRegistrations()).length === 0);
  const afterWipe = await page.evaluate(async () => ({
    dbs: (await indexedDB.databases()).map((d) => d.name),
    caches: await caches.keys(),
    sw: (await navigator.serviceWorker.getRegistrations()).length,
  }));
  assert.deepEqual(afterWipe, { dbs: [], caches: [], sw: 0 });
});

test('a revoked device wipes itself while locked, without the password', async () => {
  const b = await launch();
  try {
    const page = await b.context.newPage();
    await signIn(page, server, CAMP);
    await swReady(page);
    await page.evaluate(() => {
      history.pushState(null, '', '/impostazioni');
      dispatchEvent(new PopStateEvent('popstate'));
    });
    await page.locator('#lock-now').click();
    await page.getByRole('heading', { name: 'Strada è bloccata' }).waitFor();
    const user = (await server.list('users', `email = '${CAMP}'`))[0];
    const devices = await server.list('devices', `user = '${user.id}' && revoked = false`);
    assert.equal(devices.length, 1);
    await server.api('PATCH', `/api/collections/devices/records/${devices[0].id}`, { revoked: true });
    // Whoever finds the phone opens the app: it asks the server, with the
    // device secret and no token, and wipes.
    await page.reload();
    await page.locator('#wiped-notice').waitFor({ timeout: 30_000 });
    await page.waitForFunction(async () => (await navigator.serviceWorker.getRegistrations()).length === 0);
    const left = await page.evaluate(async () => ({
      dbs: (await indexedDB.databases()).map((d) => d.name),
      caches: await caches.keys(),
    }));
    assert.deepEqual(left, { dbs: [], caches: [] });
  } finally {
    await b.close();
  }
});
