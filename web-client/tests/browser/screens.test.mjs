// Issue 8 test 9: screenshots of every main screen in Italian at phone size,
// 390×844 (saved to test-results/screenshots, not committed) for review by
// eye, and an axe check (WCAG 2 A and AA) of each screen.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, signIn, shot, axe, go, CAMP, PRISON, SUPERVISOR } from './harness.mjs';

let server, browser;
const PHONE = { viewport: { width: 390, height: 844 } };
after(async () => {
  await browser?.close();
  await server?.remove();
});

async function check(page, name, heading) {
  await page.getByRole('heading', { name: heading, exact: false }).first().waitFor();
  await shot(page, name);
  const violations = await axe(page);
  assert.deepEqual(violations, [], `axe on ${name}`);
}

test('every main screen, screenshot and axe', async () => {
  server = await Server.create();
  await server.start();
  browser = await launch(PHONE);
  const page = await browser.context.newPage();
  await page.goto(server.url + '/');
  await check(page, '01-accesso', 'Accedi a Strada');
  await signIn(page, server, CAMP);
  await check(page, '02-oggi-campi', 'Ciao');
  await go(page, '/persone');
  await check(page, '03-persone', 'Persone');
  await page.getByLabel('Cerca per codice o nome').fill('P-00');
  await page.locator('.list a').first().click();
  await page.getByRole('heading', { name: 'Invii' }).waitFor();
  await check(page, '04-scheda-persona', 'Colloqui');
  await go(page, '/visite/nuova');
  await check(page, '05-nuova-visita', 'Nuova visita al campo');
  await page.getByRole('button', { name: 'Salva' }).click();
  await page.locator('[aria-invalid="true"]').first().waitFor();
  await shot(page, '05b-visita-errori');
  await go(page, '/servizi');
  await check(page, '06-servizi', 'Servizi del territorio');
  await go(page, '/sync');
  await check(page, '07-sincronizzazione', 'Sincronizzazione');
  await go(page, '/conflitti');
  await check(page, '08-conflitti', 'Modifiche in conflitto');
  await go(page, '/impostazioni');
  await check(page, '09-impostazioni', 'Impostazioni');
  await page.locator('#lock-now').click();
  await check(page, '10-blocco', 'Strada è bloccata');

  const b2 = await launch(PHONE);
  try {
    const p2 = await b2.context.newPage();
    await signIn(p2, server, PRISON);
    await check(p2, '11-oggi-carcere', 'Ciao');
    await go(p2, '/colloqui/nuovo');
    await check(p2, '12-nuovo-colloquio', 'Nuovo colloquio');
    await go(p2, '/invii/nuovo');
    await check(p2, '13-nuovo-invio', 'Nuovo invio');
  } finally {
    await b2.close();
  }
  const b3 = await launch(PHONE);
  try {
    const p3 = await b3.context.newPage();
    await signIn(p3, server, SUPERVISOR);
    const [ref] = await server.list('referrals', "status = 'sent'");
    await go(p3, `/invii/${ref.id}`);
    await check(p3, '14-invio-supervisore', 'Cambia stato');
    const moves = await p3.locator('[data-move]').evaluateAll((els) => els.map((e) => e.dataset.move));
    assert.deepEqual(moves.sort(), ['accepted', 'cancelled', 'declined']);
  } finally {
    await b3.close();
  }
});
