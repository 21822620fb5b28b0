// Issue 10, must have 5: outside a secure context (plain http on an origin
// that is not localhost) crypto.subtle does not exist, and the app refuses
// to store anything: it says why, in Italian, and never writes to
// IndexedDB. The same server is reached under a hostname that Chromium
// maps to 127.0.0.1, so the origin is really http://strada.test:<port>,
// which Chromium does not treat as secure (127.0.0.1 and localhost it does).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, shot } from './harness.mjs';

let server, browser;
after(async () => {
  await browser?.close();
  await server?.remove();
});

test('on plain http outside localhost the app stores nothing and says why', async () => {
  server = await Server.create();
  await server.start();
  browser = await launch({ args: ['--host-resolver-rules=MAP strada.test 127.0.0.1'] });
  const page = await browser.context.newPage();
  const writes = [];
  page.on('request', (r) => {
    if (r.url().includes('/api/')) writes.push(`${r.method()} ${r.url()}`);
  });
  await page.goto(`http://strada.test:${server.port}/`);

  // The check is real: the page is not a secure context and has no WebCrypto.
  const ctx = await page.evaluate(() => ({ secure: isSecureContext, subtle: !!globalThis.crypto?.subtle }));
  assert.deepEqual(ctx, { secure: false, subtle: false }, 'the test page must not be a secure context');

  await page.getByRole('heading', { name: 'Connessione non sicura' }).waitFor({ timeout: 30_000 });
  const body = await page.locator('main').innerText();
  assert.match(body, /solo su una connessione sicura \(HTTPS\)/);
  assert.match(body, /nessun dato verrà salvato/);
  assert.equal(await page.getByLabel('Password').count(), 0, 'got a password field, want no way to sign in');
  await shot(page, 'insecure');

  // Nothing was stored, nothing was sent.
  await page.waitForTimeout(1000);
  const stored = await page.evaluate(async () => ({
    dbs: (await indexedDB.databases()).map((d) => d.name),
    caches: 'caches' in globalThis ? (await caches.keys()).length : 0,
  }));
  assert.deepEqual(stored, { dbs: [], caches: 0 }, 'got local storage written outside a secure context');
  assert.deepEqual(writes, [], 'got API calls from an insecure page');
});
