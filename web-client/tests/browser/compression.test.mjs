// Issue 11, compressed sync: the field app gzips a long push with
// CompressionStream and the server applies it; pull answers come
// compressed and the browser decodes them itself.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launch, signIn, swReady, createVisit, waitSynced, CAMP } from './harness.mjs';

const cleanup = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

test('a long push goes gzipped and is applied; pull answers come compressed', async () => {
  const server = await Server.create();
  await server.start();
  const browser = await launch();
  cleanup.push(() => server.remove(), () => browser.close());
  const page = await browser.context.newPage();

  const pushes = [];
  const pulls = [];
  page.on('request', (req) => {
    if (req.url().includes('/api/sync/push')) pushes.push(req);
  });
  page.on('response', (resp) => {
    if (resp.url().includes('/api/sync/pull')) pulls.push(resp);
  });

  await signIn(page, server, CAMP);
  await swReady(page);

  // The first sync is a snapshot of the team's records: well over 1 KiB.
  const encodings = await Promise.all(pulls.map(async (r) => (await r.allHeaders())['content-encoding'] ?? ''));
  assert.ok(encodings.some((e) => e === 'gzip' || e === 'zstd'), `got pull answers in ${JSON.stringify(encodings)}, want gzip or zstd`);

  const needs = 'Rinnovo del permesso di soggiorno, iscrizione scolastica dei figli, tessera sanitaria. '.repeat(20);
  const id = await createVisit(page, needs);
  await waitSynced(page);

  assert.ok(pushes.length > 0, 'got no push, want one');
  const push = pushes[pushes.length - 1];
  const headers = await push.allHeaders();
  assert.equal(headers['content-encoding'], 'gzip', `got Content-Encoding ${headers['content-encoding']}, want gzip`);
  const sent = push.postDataBuffer();
  assert.ok(sent && sent[0] === 0x1f && sent[1] === 0x8b, 'got a push body that is not gzip, want the gzip magic bytes');
  assert.ok(sent.length < needs.length / 4, `got a push of ${sent.length} bytes for ${needs.length} characters of text, want at least 4× fewer`);

  const [visit] = await server.list('camp_visits', `id = '${id}'`);
  assert.ok(visit, `got no visit ${id} on the server, want the pushed one`);
  assert.equal(visit.needs.trim(), needs.trim(), 'got other needs on the server, want the text typed');
});
