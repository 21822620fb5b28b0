// The field app's measured figures, on headless Chromium with 4× CPU
// throttling: first sync of 5,000 field-work records to usable, time to
// unlock, to open a person's card and to search by name, each with the
// encryption at rest and with it bypassed, plus the initial JS and CSS
// gzipped. Not part of the test suite: run `npm run bench` from web-client/.
//
// The server is a real strada binary (--demo) seeded through its own sync
// push API by the camp worker, so every record has its change log entry.
// The bypass exists only in this script: an init script replaces
// SubtleCrypto's encrypt and decrypt with a copy of the bytes and runs
// PBKDF2 with one iteration. The shipped app is the same in both variants;
// JSON serialisation and the byte encoding stay, so the difference is the
// share of AES-GCM and PBKDF2.
//
// BENCH_BASELINE=<git commit> measures, side by side in the same run and
// against the same server, the app of that commit: its committed dist/ is
// served to the browser in place of this build's (a Playwright route for
// everything but /api/). Service workers are blocked in every variant so
// that both apps load the same way.
//
// BENCH_RUNS (default 5) and BENCH_RECORDS (default 5000) change the size;
// BENCH_PROFILE=1 instead profiles one encrypted first sync through the
// DevTools protocol and prints the main thread's self time by function.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { randomUUID, randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Server, launch, CAMP, PASSWORD, go, sleep, webDir, outDir } from '../tests/browser/harness.mjs';

const RECORDS = Number(process.env.BENCH_RECORDS || 5000);
const RUNS = Number(process.env.BENCH_RUNS || 5);
const THROTTLE = 4;
const PERSONS = Math.round(RECORDS * 0.4);
const VISITS = RECORDS - PERSONS;
const FAMILY = [
  'Stanciu', 'Dumitrescu', 'Lungu', 'Ciobanu', 'Moldovan', 'Zamfir', 'Oprea', 'Marinescu', 'Barbu', 'Tudose',
  'Halilović', 'Ahmetović', 'Berisha', 'Krasniqi', 'Jovanović', 'Nikolić', 'Sejdić', 'Mustafić', 'Hodžić', 'Bajrami',
];
const GIVEN = ['Ionela', 'Florin', 'Mirela', 'Costel', 'Nicoleta', 'Adrian', 'Denisa', 'Marius', 'Elvira', 'Samir', 'Dragan', 'Fatima', 'Emir'];
const SEARCHES = ['stanciu', 'halilović', 'zamfir', 'mirela', 'krasniqi'];
const BASELINE = process.env.BENCH_BASELINE || '';
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.webmanifest': 'application/manifest+json', '.svg': 'image/svg+xml', '.png': 'image/png' };

/** Extracts the committed web-client/dist/ of a commit; returns its directory. */
function baselineDist(ref) {
  const dir = join(outDir, 'baseline-' + ref.replace(/[^\w.-]/g, '_'));
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const repo = resolve(webDir, '..');
  execFileSync('sh', ['-c', `git archive "$0" web-client/dist | tar -x -C "$1"`, ref, dir], { cwd: repo, stdio: 'inherit' });
  return join(dir, 'web-client', 'dist');
}

/** Serves the app's files from dist for every request but the API (the server answers those). */
async function serveApp(context, server, dist) {
  await context.route(
    (url) => url.origin === server.url && !url.pathname.startsWith('/api/'),
    async (route) => {
      const path = new URL(route.request().url()).pathname;
      let file = join(dist, path);
      if (path === '/' || !existsSync(file)) file = join(dist, 'index.html');
      await route.fulfill({ status: 200, body: readFileSync(file), headers: { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' } });
    },
  );
}

/** A lowercase UUIDv7, as the app makes record ids. */
function uuidv7() {
  const b = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function call(server, method, path, token, device, body) {
  const headers = { Authorization: token, 'Content-Type': 'application/json' };
  if (device) {
    headers['X-Strada-Device'] = device.id;
    headers['X-Strada-Device-Secret'] = device.secret;
  }
  const r = await fetch(server.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path}: got ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Seeds the camp team with PERSONS persons and VISITS camp visits through POST /api/sync/push. */
async function seed(server) {
  const token = await server.token(CAMP);
  const device = await call(server, 'POST', '/api/sync/devices', token, null, { id: randomUUID(), name: 'bench seeder' });
  const sites = (await call(server, 'GET', '/api/collections/sites/records?perPage=200&filter=' + encodeURIComponent("kind='camp'"), token)).items;
  const site = sites.find((s) => s.team);
  if (!site) throw new Error('the demo data has no camp site with a team');
  const team = site.team;
  const persons = [];
  const mutations = [];
  for (let i = 0; i < PERSONS; i++) {
    const id = uuidv7();
    const fields = {
      team,
      site: site.id,
      code: `B-${String(i).padStart(6, '0')}`,
      given_name: GIVEN[i % GIVEN.length],
      family_name: FAMILY[i % FAMILY.length],
      birth_year: 1950 + (i % 70),
      gender: ['female', 'male'][i % 2],
      languages: 'romanes, romeno',
      consent: 'verbal',
      notes: 'Famiglia seguita dal servizio; documenti da rinnovare, contatto con la scuola del quartiere.',
    };
    persons.push({ id, name: `${fields.code} · ${fields.given_name} ${fields.family_name}` });
    mutations.push({ id: randomUUID(), collection: 'persons', recordId: id, op: 'upsert', baseVersion: 0, fields });
  }
  for (let i = 0; i < VISITS; i++) {
    const met = [0, 1, 2].map((k) => persons[(i * 3 + k * 7) % PERSONS].id);
    const d = new Date(Date.UTC(2026, 0, 1) + (i % 330) * 86_400_000).toISOString().slice(0, 10);
    mutations.push({
      id: randomUUID(),
      collection: 'camp_visits',
      recordId: uuidv7(),
      op: 'upsert',
      baseVersion: 0,
      fields: {
        team,
        site: site.id,
        visited_at: d,
        persons_met: [...new Set(met)],
        households_met: 1 + (i % 6),
        topics: ['documents'],
        needs: 'Rinnovo del permesso di soggiorno e iscrizione scolastica dei figli.',
        actions: 'Accompagnamento all’ufficio anagrafe concordato per la settimana prossima.',
      },
    });
  }
  for (let i = 0; i < mutations.length; i += 500) {
    const batch = mutations.slice(i, i + 500);
    const resp = await call(server, 'POST', '/api/sync/push', token, device, { mutations: batch });
    const bad = resp.results.filter((r) => r.status !== 'applied');
    if (bad.length > 0) throw new Error(`push: got ${bad.length} mutations not applied, first ${JSON.stringify(bad[0])}`);
  }
  return persons;
}

/** Runs in the page before the app: AES-GCM becomes a copy, PBKDF2 one iteration. */
function bypassEncryption() {
  const S = SubtleCrypto.prototype;
  const derive = S.deriveKey;
  const copy = (d) => (d instanceof ArrayBuffer ? d.slice(0) : d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
  S.encrypt = function (_alg, _key, data) {
    return Promise.resolve(copy(data));
  };
  S.decrypt = function (_alg, _key, data) {
    return Promise.resolve(copy(data));
  };
  S.deriveKey = function (alg, base, derived, extractable, usages) {
    return derive.call(this, { ...alg, iterations: 1 }, base, derived, extractable, usages);
  };
}

/**
 * Waits until the app is usable: first sync finished, records opened, the
 * screen drawn. Returns when the signed-in shell first showed (Date.now()).
 */
async function waitUsable(page, timeout = 180_000) {
  const until = Date.now() + timeout;
  let shell = 0;
  for (;;) {
    const usable = await page.evaluate(async () => {
      if (!document.querySelector('nav.bottom')) return false;
      if (document.querySelector('.progress')) return 'shell';
      if (!document.querySelector('main#main h1')) return 'shell';
      const dbs = await indexedDB.databases();
      if (!dbs.some((d) => d.name === 'strada')) return 'shell';
      return await new Promise((res) => {
        const req = indexedDB.open('strada');
        req.onsuccess = () => {
          const db = req.result;
          const tx = db.transaction('meta', 'readonly');
          const s = tx.objectStore('meta').get('sync');
          tx.oncomplete = () => {
            db.close();
            res(s.result?.snapshotDone ? true : 'shell');
          };
        };
        req.onerror = () => res('shell');
      });
    });
    if (usable && !shell) shell = Date.now();
    if (usable === true) return shell;
    if (Date.now() > until) throw new Error('the app was not usable in time');
    await sleep(50);
  }
}

/** Opens a person's card through the app's router; ms until the card is drawn. */
function openCard(page, id, name) {
  return page.evaluate(
    async ({ id, name }) => {
      const t0 = performance.now();
      history.pushState(null, '', '/persone/' + id);
      dispatchEvent(new PopStateEvent('popstate'));
      await new Promise((res) => {
        const done = () => document.querySelector('main#main h1')?.textContent === name;
        if (done()) return res();
        const mo = new MutationObserver(() => {
          if (done()) {
            mo.disconnect();
            res();
          }
        });
        mo.observe(document.body, { subtree: true, childList: true, characterData: true });
      });
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      return performance.now() - t0;
    },
    { id, name },
  );
}

/** Types a name into the people search; ms until the filtered list is drawn. */
function search(page, q) {
  return page.evaluate(async (q) => {
    const input = document.querySelector('#people-search');
    const count = input.closest('main').querySelector('p[aria-live]');
    const before = count.textContent;
    const t0 = performance.now();
    input.value = q;
    input.dispatchEvent(new Event('input', { bubbles: true }));
    await new Promise((res) => {
      const done = () => {
        if (count.textContent === before) return false;
        const shown = [...document.querySelectorAll('main#main ul.list li strong')];
        return shown.length > 0 && shown.every((s) => s.textContent.toLowerCase().includes(q));
      };
      if (done()) return res();
      const mo = new MutationObserver(() => {
        if (done()) {
          mo.disconnect();
          res();
        }
      });
      mo.observe(document.body, { subtree: true, childList: true, characterData: true });
    });
    await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
    const ms = performance.now() - t0;
    input.value = '';
    input.dispatchEvent(new Event('input', { bubbles: true }));
    return ms;
  }, q);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** One fresh browser profile: sign in and first sync, then cards, search, unlock. */
async function run(server, persons, plain, profile = false, dist = '') {
  const { context, close } = await launch({ serviceWorkers: 'block' });
  try {
    if (plain) await context.addInitScript(bypassEncryption);
    if (dist) await serveApp(context, server, dist);
    const page = context.pages()[0] ?? (await context.newPage());
    const cdp = await context.newCDPSession(page);
    await cdp.send('Emulation.setCPUThrottlingRate', { rate: THROTTLE });
    await page.goto(server.url + '/');
    await page.getByLabel('Email').fill(CAMP);
    await page.getByLabel('Password').fill(PASSWORD);
    if (profile) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Accedi' }).click();
    const shell = await waitUsable(page);
    if (profile) {
      const firstSync = Date.now() - t0;
      // Each pull page: from the request to the first byte (the server's work), and to the last.
      const pages = await page.evaluate(() =>
        performance
          .getEntriesByType('resource')
          .filter((e) => e.name.includes('/api/sync/pull'))
          .map((e) => ({ start: Math.round(e.startTime), firstByte: Math.round(e.responseStart - e.requestStart), total: Math.round(e.duration) })),
      );
      return { firstSync, pages, profile: (await cdp.send('Profiler.stop')).profile };
    }
    const firstSync = Date.now() - t0;
    const signIn = shell - t0;
    const stored = await page.evaluate(
      () =>
        new Promise((res) => {
          const req = indexedDB.open('strada');
          req.onsuccess = () => {
            const c = req.result.transaction('records').objectStore('records').count();
            c.onsuccess = () => {
              req.result.close();
              res(c.result);
            };
          };
        }),
    );
    if (stored < RECORDS) throw new Error(`got ${stored} local records after the first sync, want at least ${RECORDS}`);

    const cards = [];
    for (let i = 0; i < 5; i++) {
      const p = persons[(i * 397) % persons.length];
      await go(page, '/');
      await page.locator('main#main h1').first().waitFor();
      cards.push(await openCard(page, p.id, p.name));
    }
    await go(page, '/persone');
    await page.locator('#people-search').waitFor();
    const searches = [];
    for (const q of SEARCHES) {
      await sleep(100);
      searches.push(await search(page, q));
    }

    const unlocks = [];
    for (let i = 0; i < 3; i++) {
      await page.reload();
      await page.getByRole('heading', { name: 'Strada è bloccata' }).waitFor({ timeout: 30_000 });
      await page.getByLabel('Password').fill(PASSWORD);
      const u0 = Date.now();
      await page.getByRole('button', { name: 'Sblocca' }).click();
      await page.locator('main#main h1').first().waitFor({ timeout: 60_000 });
      unlocks.push(Date.now() - u0);
    }
    return { firstSync, signIn, stored, card: median(cards), search: median(searches), unlock: median(unlocks) };
  } finally {
    await close();
  }
}

/** The main thread's self time of the first sync by function, largest first. */
function summarise(profile, top = 15) {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] / 1000;
    total += dt;
    const f = byNode.get(id).callFrame;
    const k = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\//, '')}:${f.lineNumber + 1}:${f.columnNumber + 1}`;
    self.set(k, (self.get(k) ?? 0) + dt);
  });
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  return [`main thread ${total.toFixed(0)} ms sampled`, ...rows.map(([k, ms]) => `${ms.toFixed(0).padStart(7)} ms ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${k}`)].join('\n');
}

function sizes() {
  return execFileSync('node', ['scripts/size-check.mjs'], { cwd: webDir, encoding: 'utf8' }).trim();
}

async function main() {
  const size = sizes();
  const server = await Server.create();
  await server.start();
  const load0 = loadavg();
  const out = { records: RECORDS, runs: RUNS, throttle: THROTTLE, cpus: cpus().length, size };
  try {
    const s0 = Date.now();
    const persons = await seed(server);
    out.seedMs = Date.now() - s0;
    console.error(`seeded ${PERSONS} persons and ${VISITS} camp visits in ${out.seedMs} ms`);
    if (process.env.BENCH_PROFILE) {
      const r = await run(server, persons, false, true);
      console.log(`first sync ${r.firstSync} ms with the profiler on\npull pages (ms from the page's start): ${JSON.stringify(r.pages)}\n${summarise(r.profile)}`);
      return;
    }
    const variants = [
      ['encrypted', false, ''],
      ['bypassed', true, ''],
    ];
    if (BASELINE) {
      const dist = baselineDist(BASELINE);
      variants.push(['baseline encrypted', false, dist], ['baseline bypassed', true, dist]);
      out.baseline = BASELINE;
    }
    const runsOf = Object.fromEntries(variants.map(([name]) => [name, []]));
    // Interleaved: run i of every variant before run i+1 of any, so that a
    // change of the machine's load touches every variant alike.
    for (let i = 0; i < RUNS; i++) {
      for (const [name, plain, dist] of variants) {
        const r = await run(server, persons, plain, false, dist);
        console.error(`${name} run ${i + 1}: ${JSON.stringify(r)}`);
        runsOf[name].push(r);
      }
    }
    for (const [name] of variants) {
      const runs = runsOf[name];
      out[name] = {
        firstSyncMs: median(runs.map((r) => r.firstSync)),
        signInMs: median(runs.map((r) => r.signIn)),
        unlockMs: median(runs.map((r) => r.unlock)),
        cardMs: median(runs.map((r) => r.card)),
        searchMs: median(runs.map((r) => r.search)),
        localRecords: runs[0].stored,
        runs,
      };
    }
  } finally {
    out.loadavg = { start: load0, end: loadavg() };
    await server.remove();
  }
  if (process.env.BENCH_PROFILE) return;
  const f = (n) => (n >= 1000 ? (n / 1000).toFixed(2) + ' s' : n.toFixed(0) + ' ms');
  console.log(JSON.stringify(out, null, 2));
  console.log(`\n${size}`);
  const cols = ['encrypted', 'bypassed', ...(BASELINE ? ['baseline encrypted', 'baseline bypassed'] : [])];
  console.log(`| measure (median of ${RUNS}) | ${cols.join(' | ')} |`);
  console.log(`| --- |${cols.map(() => ' --- |').join('')}`);
  for (const [k, label] of [
    ['firstSyncMs', `first sync of ${RECORDS} records to usable`],
    ['signInMs', '… of which sign-in until the shell shows'],
    ['unlockMs', 'unlock to usable'],
    ['cardMs', "open a person's card"],
    ['searchMs', 'search by name'],
  ]) {
    console.log(`| ${label} | ${cols.map((c) => f(out[c][k])).join(' | ')} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
