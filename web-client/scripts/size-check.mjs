// Checks the size budget of the built app: the JavaScript that index.html
// loads at start (its module scripts and what they import statically) must
// stay under 150 KB gzipped. CSS is reported beside it. Chunks loaded on
// demand (dynamic import(), e.g. the supervisor dashboard) are not part of
// the start: each is reported with what it adds, under a budget of its own.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const BUDGET = 150 * 1024;
const LAZY_BUDGET = 60 * 1024;
const dist = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const html = readFileSync(join(dist, 'index.html'), 'utf8');

const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
const seen = new Set();
const queue = [...html.matchAll(/<script[^>]+src="\/([^"]+)"/g)].map((m) => m[1]);
queue.push(...[...html.matchAll(/<link[^>]+rel="modulepreload"[^>]+href="\/([^"]+)"/g)].map((m) => m[1]));
while (queue.length) {
  const file = queue.shift();
  if (seen.has(file)) continue;
  seen.add(file);
  const code = readFileSync(join(dist, file), 'utf8');
  // Static imports only: dynamic import() loads later, on demand.
  for (const m of code.matchAll(/(?:^|[;}\n])\s*import\s*(?:[\w*{}\s,$]+from\s*)?["']\.\/([^"']+)["']/g)) {
    queue.push(join(dirname(file), m[1]));
  }
}
let js = 0;
for (const f of seen) js += gz(f);

// Static imports of one file, as paths under dist/.
const staticImports = (file) =>
  [...readFileSync(join(dist, file), 'utf8').matchAll(/(?:^|[;}\n])\s*import\s*(?:[\w*{}\s,$]+from\s*)?["']\.\/([^"']+)["']/g)].map(
    (m) => join(dirname(file), m[1]),
  );
// Chunks that the start-up code imports dynamically, and what each adds.
const lazy = new Set();
for (const f of seen) {
  for (const m of readFileSync(join(dist, f), 'utf8').matchAll(/import\(\s*[`"']\.\/([^`"']+\.js)[`"']\s*\)/g)) {
    const chunk = join(dirname(f), m[1]);
    if (!seen.has(chunk)) lazy.add(chunk);
  }
}
let lazyOver = false;
for (const chunk of lazy) {
  const own = new Set();
  const q = [chunk];
  while (q.length) {
    const file = q.shift();
    if (own.has(file) || seen.has(file)) continue;
    own.add(file);
    q.push(...staticImports(file));
  }
  let n = 0;
  for (const f of own) n += gz(f);
  const cssFile = chunk.replace(/\.js$/, '.css');
  let css = 0;
  try {
    css = gz(cssFile);
  } catch {
    css = 0;
  }
  console.log(`on demand: ${chunk} adds ${(n / 1024).toFixed(1)} KB JS gzipped (${own.size} files, budget ${(LAZY_BUDGET / 1024).toFixed(1)} KB)` +
    (css ? `, CSS ${(css / 1024).toFixed(1)} KB` : ''));
  if (n > LAZY_BUDGET) lazyOver = true;
}
const css = [...html.matchAll(/<link[^>]+rel="stylesheet"[^>]+href="\/([^"]+)"/g)].reduce((n, m) => n + gz(m[1]), 0);
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
console.log(`initial JS ${kb(js)} gzipped (${seen.size} files, budget ${kb(BUDGET)}); CSS ${kb(css)} gzipped`);
if (js > BUDGET) {
  console.error(`initial JS is over budget: ${kb(js)} > ${kb(BUDGET)}`);
  process.exit(1);
}
if (lazyOver) {
  console.error(`a chunk loaded on demand is over its budget of ${kb(LAZY_BUDGET)}`);
  process.exit(1);
}
if (/<script(?![^>]*\bsrc=)[^>]*>/.test(html) || /<style|\sstyle=/.test(html)) {
  console.error('index.html has an inline script or style: the Content-Security-Policy forbids them');
  process.exit(1);
}
