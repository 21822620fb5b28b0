// The sliding session: a sync that starts after the app was opened
// exchanges the token for a new one (PocketBase auth-refresh) and keeps it,
// sealed, for the next opening; with no server that is not an error (no
// password prompt); a refused refresh leads to the password prompt that a
// refused session always shows, keeping the data.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, signIn, unlock, waitSynced, sleep, CAMP, shot } from './harness.mjs';

let server, browser;
after(async () => {
  await browser?.close();
  await server?.remove();
});

/** Records the Authorization header of every sync and auth-refresh call, and the refresh answers. */
function watch(page) {
  const seen = { pulls: [], refreshes: [], answers: [] };
  page.on('request', (r) => {
    const auth = r.headers()['authorization'] ?? '';
    // The locked app's revocation check carries no token: not a sync.
    if (r.url().includes('/api/sync/pull') && auth) seen.pulls.push(auth);
    if (r.url().includes('/auth-refresh')) seen.refreshes.push(auth);
  });
  page.on('response', (r) => {
    if (r.url().includes('/auth-refresh')) seen.answers.push(r.status());
  });
  return seen;
}

async function until(cond, what, ms = 30_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('each opening refreshes the token at sync start; offline is no error; a refused refresh asks for the password', async () => {
  server = await Server.create();
  await server.start();
  browser = await launch();
  const page = await browser.context.newPage();
  let seen = watch(page);
  await signIn(page, server, CAMP);
  const first = seen.pulls.at(-1);
  assert.ok(first, 'got no pull after sign-in');
  assert.equal(seen.refreshes.length, 0, 'the token of a fresh sign-in needs no refresh');

  // Opened again: the first sync refreshes the token and uses the new one.
  await page.reload();
  await unlock(page);
  await until(() => seen.answers.includes(200), 'a successful auth-refresh');
  assert.equal(seen.refreshes.at(-1), first, 'the refresh must carry the stored token');
  await until(() => seen.pulls.length > 0 && seen.pulls.at(-1) !== first, 'a pull with the new token');
  const refreshed = seen.pulls.at(-1);
  await waitSynced(page);

  // Opened again with no server: no password prompt, no error but "offline".
  await server.stop();
  seen = watch(page);
  await page.reload();
  await unlock(page);
  await page.getByRole('heading', { name: /^Ciao/ }).waitFor({ timeout: 30_000 });
  await page.evaluate(() => {
    history.pushState(null, '', '/sync');
    dispatchEvent(new PopStateEvent('popstate'));
  });
  await page.getByText('Senza rete: le modifiche restano sul dispositivo').waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('#reauth-password').count(), 0, 'got a password prompt while offline');
  await shot(page, 'session-offline');

  // The server is back: the refresh carries the token stored by the
  // previous opening (it was kept), and sync needs no password.
  await server.start();
  await page.getByRole('button', { name: 'Sincronizza ora' }).click();
  await until(() => seen.answers.includes(200), 'a successful auth-refresh after the server came back');
  assert.equal(seen.refreshes.find(Boolean), refreshed, 'the refresh must carry the token the last refresh stored');
  await waitSynced(page);
  assert.equal(await page.locator('#reauth-password').count(), 0, 'got a password prompt');

  // The password is changed on the server (the old token stops working):
  // at the next opening the refresh is refused, and the sync that follows
  // takes the path of a refused session: it asks for the password and keeps
  // the data. (A revoked device takes the wipe path: revoke.test.mjs.)
  const user = (await server.list('users', `email = '${CAMP}'`))[0];
  await server.api('PATCH', `/api/collections/users/records/${user.id}`, { password: 'nuova-password-2026', passwordConfirm: 'nuova-password-2026' });
  seen = watch(page);
  await page.reload();
  await unlock(page);
  await page.locator('#reauth-password').waitFor({ timeout: 30_000 });
  assert.ok(seen.answers.length > 0 && seen.answers.every((s) => s === 401), `got refresh answers ${seen.answers}, want 401`);
  await page.locator('#reauth-password').fill('nuova-password-2026');
  await page.getByRole('button', { name: 'Conferma password' }).click();
  await page.locator('#reauth-password').waitFor({ state: 'detached', timeout: 30_000 });
  await waitSynced(page);
  assert.ok((await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).includes('strada'), 'the data must stay');
});
