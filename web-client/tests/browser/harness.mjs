// Shared parts of the browser tests: a real strada binary on a fresh data
// directory (stopping it makes the server really unreachable, also for the
// service worker), headless Chromium through playwright-core, and reads of
// the server's records through its REST API.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync, rmSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const webDir = resolve(here, '..', '..');
export const outDir = join(webDir, 'test-results');
export const shotsDir = join(outDir, 'screenshots');
export const PASSWORD = 'strada-demo-2026';
export const CAMP = 'operatore.campi@example.org';
export const PRISON = 'operatore.carcere@example.org';
export const SUPERVISOR = 'supervisore@example.org';
export const ADMIN = 'admin@example.org';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

let binary = null;

/** Builds the server once per test process, outside the temp dir (PocketBase's dev mode logs SQL there). */
export function strada() {
  if (binary) return binary;
  mkdirSync(outDir, { recursive: true });
  binary = join(outDir, 'strada');
  if (!process.env.STRADA_TEST_BINARY_READY) {
    execFileSync('go', ['build', '-o', binary, '.'], { cwd: resolve(webDir, '..'), stdio: 'inherit' });
    process.env.STRADA_TEST_BINARY_READY = '1';
  }
  return binary;
}

export async function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
    s.on('error', rej);
  });
}

/** A strada server on its own data directory; start() and stop() may be called repeatedly. */
export class Server {
  constructor(port, dir) {
    this.port = port;
    this.dir = dir ?? mkdtempSync(join(outDir, 'data-'));
    this.proc = null;
    this.url = `http://127.0.0.1:${port}`;
  }

  /** args are added to `serve`'s command line. */
  static async create(args = []) {
    mkdirSync(outDir, { recursive: true });
    const s = new Server(await freePort());
    s.args = args;
    return s;
  }

  async start() {
    const args = ['serve', '--demo', '--dir', this.dir, '--http', `127.0.0.1:${this.port}`, '--nats-listen', '', ...(this.args ?? [])];
    this.proc = spawn(strada(), args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.log = '';
    this.proc.stderr.on('data', (d) => (this.log += d));
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      if (this.proc.exitCode !== null) throw new Error(`strada exited ${this.proc.exitCode}: ${this.log}`);
      try {
        const r = await fetch(this.url + '/api/health');
        if (r.ok) return;
      } catch {}
      await sleep(200);
    }
    throw new Error('strada did not start: ' + this.log);
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    const p = this.proc;
    const done = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(timer);
  }

  async remove() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async token(email, password = PASSWORD) {
    const coll = email === ADMIN ? '_superusers' : 'users';
    const r = await fetch(`${this.url}/api/collections/${coll}/auth-with-password`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ identity: email, password }),
    });
    if (!r.ok) throw new Error(`auth ${email}: ${r.status} ${await r.text()}`);
    return (await r.json()).token;
  }

  async api(method, path, body, email = ADMIN) {
    const token = await this.token(email);
    const r = await fetch(this.url + path, {
      method,
      headers: { Authorization: token, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  async list(collection, filter = '') {
    const q = `?perPage=500${filter ? '&filter=' + encodeURIComponent(filter) : ''}`;
    return (await this.api('GET', `/api/collections/${collection}/records${q}`)).items;
  }
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Headless Chromium in Italian (the UI language, number and date formats an
 * Italian worker sees): in CI a missing browser fails the run, never skips
 * it. options are passed to the context; args are added to Chromium's.
 */
export async function launch({ args = [], ...options } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install chromium`);
  const userDataDir = mkdtempSync(join(outDir, 'profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 412, height: 915 },
    deviceScaleFactor: 1,
    locale: 'it-IT',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--lang=it-IT', ...args,
    ],
    ...options,
  });
  const close = async () => {
    await context.close().catch(() => {});
    rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}

/** Signs in on a fresh page and waits for the first sync to finish. */
export async function signIn(page, server, email, password = PASSWORD) {
  await page.goto(server.url + '/');
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Accedi' }).click();
  await page.locator('nav.bottom').waitFor({ timeout: 60_000 });
  await waitSynced(page);
}

/** Waits until the app reports a finished sync with nothing pending. */
export async function waitSynced(page, timeout = 60_000) {
  const until = Date.now() + timeout;
  for (;;) {
    const done = await page.evaluate(async () => {
      const dbs = await indexedDB.databases();
      if (!dbs.some((d) => d.name === 'strada')) return false;
      return await new Promise((res) => {
        const req = indexedDB.open('strada');
        req.onsuccess = () => {
          const db = req.result;
          const tx = db.transaction(['meta', 'outbox'], 'readonly');
          const s = tx.objectStore('meta').get('sync');
          const c = tx.objectStore('outbox').index('state').count('pending');
          tx.oncomplete = () => {
            db.close();
            const shown = document.querySelector('nav.bottom') && !document.querySelector('.progress');
            res(!!s.result?.snapshotDone && c.result === 0 && !!shown);
          };
        };
        req.onerror = () => res(false);
      });
    });
    if (done) return;
    if (Date.now() > until) throw new Error('the app did not finish syncing');
    await sleep(250);
  }
}

/** Every record of every object store of the app's database, read with the browser's own IndexedDB API; binary values as text. */
export async function rawIndexedDB(page) {
  return page.evaluate(async () => {
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open('strada');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const out = {};
    for (const name of db.objectStoreNames) {
      out[name] = await new Promise((res) => {
        const req = db.transaction(name).objectStore(name).getAll();
        req.onsuccess = () => res(req.result);
      });
    }
    db.close();
    const dec = new TextDecoder('utf-8', { fatal: false });
    return JSON.stringify(out, (_k, v) => {
      if (v instanceof ArrayBuffer) return dec.decode(v);
      if (ArrayBuffer.isView(v)) return dec.decode(v);
      return v;
    });
  });
}

export async function pendingShown(page) {
  await go(page, '/sync');
  await page.locator('#pending-count').waitFor();
  return Number(await page.locator('#pending-count').getAttribute('data-pending'));
}

export async function shot(page, name) {
  mkdirSync(shotsDir, { recursive: true });
  await page.screenshot({ path: join(shotsDir, name + '.png'), fullPage: false });
}

/** Runs axe-core in the page; returns the serious and critical violations. */
export async function axe(page) {
  const src = join(webDir, 'node_modules', 'axe-core', 'axe.min.js');
  // Evaluated through the DevTools protocol: the page's CSP forbids inline scripts.
  await page.evaluate(readFileSync(src, 'utf8'));
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] });
    return r.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`);
  });
}

/** Waits until the service worker controls the page (the app then opens without the server). */
export async function swReady(page) {
  await page.evaluate(async () => {
    await navigator.serviceWorker.ready;
  });
}

export async function unlock(page, password = PASSWORD) {
  await page.getByRole('heading', { name: 'Strada è bloccata' }).waitFor({ timeout: 15_000 });
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sblocca' }).click();
}

/** Opens a screen through the app's own links (no network needed). */
export async function go(page, path) {
  await page.evaluate((p) => {
    history.pushState(null, '', p);
    dispatchEvent(new PopStateEvent('popstate'));
  }, path);
}

/** Creates a camp visit through the form; returns its id. */
export async function createVisit(page, needs) {
  await go(page, '/visite/nuova');
  await page.getByRole('heading', { name: 'Nuova visita al campo' }).waitFor();
  await page.getByLabel('Luogo').selectOption({ index: 1 });
  await page.getByLabel('Nuclei familiari incontrati').fill('3');
  await page.getByRole('group', { name: 'Persone incontrate' }).getByRole('checkbox').first().check();
  await page.getByRole('checkbox', { name: 'documenti' }).check();
  await page.getByLabel('Bisogni', { exact: true }).fill(needs);
  const before = await outboxIds(page);
  await page.getByRole('button', { name: 'Salva' }).click();
  await page.getByRole('heading', { name: /^Ciao/ }).waitFor();
  const after = await outboxIds(page);
  const added = after.filter((x) => !before.some((b) => b.id === x.id));
  if (added.length !== 1) throw new Error(`got ${added.length} new outbox rows, want 1`);
  return added[0].recordId;
}

/** The outbox's plain index columns: ids, collection and state. */
export async function outboxIds(page) {
  return page.evaluate(async () => {
    const db = await new Promise((res, rej) => {
      const r = indexedDB.open('strada');
      r.onsuccess = () => res(r.result);
      r.onerror = () => rej(r.error);
    });
    const rows = await new Promise((res) => {
      const req = db.transaction('outbox').objectStore('outbox').getAll();
      req.onsuccess = () => res(req.result);
    });
    db.close();
    return rows.map((r) => ({ id: r.id, recordId: r.recordId, collection: r.collection, state: r.state }));
  });
}
