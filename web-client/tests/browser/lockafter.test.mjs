// Issue 10, lock: the server sets the idle lock time (--lock-after). A
// server started with one minute hands it to the device at sign-in; the
// device keeps it and locks after one minute without use, not after the
// default fifteen.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, waitSynced, CAMP, PASSWORD, shot } from './harness.mjs';

let server, browser;
after(async () => {
  await browser?.close();
  await server?.remove();
});

test('a lock time set on the server locks the app after it', async () => {
  server = await Server.create(['--lock-after', '1m']);
  await server.start();
  browser = await launch();
  const page = await browser.context.newPage();
  await page.goto(server.url + '/');
  await page.getByLabel('Email').fill(CAMP);
  await page.getByLabel('Password').fill(PASSWORD);
  // The click on "Accedi" is the last input: nothing touches the page after it.
  const t0 = Date.now();
  await page.getByRole('button', { name: 'Accedi' }).click();
  await waitSynced(page);

  const stored = await page.evaluate(
    () =>
      new Promise((res) => {
        const req = indexedDB.open('strada');
        req.onsuccess = () => {
          const g = req.result.transaction('meta').objectStore('meta').get('account');
          g.onsuccess = () => {
            req.result.close();
            res(g.result.lockMinutes);
          };
        };
      }),
  );
  assert.equal(stored, 1, 'got the stored lock time in minutes, want the server’s 1');

  await page.getByRole('heading', { name: 'Strada è bloccata' }).waitFor({ timeout: 90_000 });
  const waited = (Date.now() - t0) / 1000;
  assert.ok(waited >= 59 && waited < 80, `got the lock ${waited} s after the last input, want about 60 s`);
  await shot(page, 'locked-by-server-time');
});
