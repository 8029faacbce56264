#!/usr/bin/env node
// test_ui.mjs - the web page (ui/, issue 16) in real Chromium (Debian's /usr/bin/chromium driven by
// playwright-core: no browser download), against live daemons on ephemeral ports. Every expectation
// about an answer is taken from the daemon's own API, asked directly beside the page.
//
//   node tests/ui/test_ui.mjs --visiond build/visiond [--out DIR]
//
// Run from the project root (ctest does); screenshots of each step go to --out (default
// build/tests/ui-screenshots). Exit 0: passed; 1: failed; 77: skipped (no chromium or no npm ci here).
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Daemon } from './daemon.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '..', '..');
const SHARED = resolve(ROOT, '..', 'shared');
const CHROMIUM = '/usr/bin/chromium';
const CSP = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; frame-ancestors 'none'; " +
  "base-uri 'none'";
const MAX_UI_BYTES = 100 * 1024;
const KEY = 'ui-test-key-0123456789abcdef';
// Waits only guard against a hang (no speed is asserted): long enough for an ASan daemon on a busy machine.
const WAIT = 300000;

const argv = process.argv.slice(2);
const arg = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt);
const VISIOND = resolve(arg('--visiond', join(ROOT, 'build', 'visiond')));
const OUT = resolve(arg('--out', join(ROOT, 'build', 'tests', 'ui-screenshots')));

function skip(why) {
  console.log(`SKIP: ${why}`);
  process.exit(77);
}
if (!existsSync(CHROMIUM)) skip(`${CHROMIUM} is missing (scripts/install-deps installs Debian's chromium)`);
if (!existsSync(join(HERE, 'node_modules', 'playwright-core')))
  skip('tests/ui/node_modules is missing: (cd tests/ui && npm ci) first');
const { chromium } = await import('playwright-core');
const AXE = readFileSync(join(HERE, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

let failures = 0;
const results = [];
function check(ok, what, detail = '') {
  results.push(`${ok ? 'ok  ' : 'FAIL'} ${what}${detail ? ` (${detail})` : ''}`);
  console.log(results[results.length - 1]);
  if (!ok) failures++;
  return ok;
}
const read = (p) => readFileSync(p);
const DOG = read(join(SHARED, 'images', 'dog.jpg'));
const JOHNS = join(SHARED, 'faces', 'dlib_johns');
const SIMM = ['000288_00470387.jpg', '000297_00470170.jpg'].map((f) => join(JOHNS, 'John_Simm', f));
const SAVAGE = join(JOHNS, 'John_Savage', '000264_01099001.jpg');
const FACE_DEMO = join(ROOT, 'models', 'faces', 'package', 'demo', 'sample1.jpg');
// A valid 1x1 GIF: the server reads only PNG and JPEG.
const GIF = Buffer.from('R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==', 'base64');

// ---- the browser and its watchers ----
mkdirSync(OUT, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'visiond-ui-chromium-'));
const daemons = [];
let context;

// Console errors, page errors, and requests to anything but the daemon, per page. A failed
// resource the test caused on purpose (a 404, 401, 413, 415 it asked for) is the one console error
// allowed, by URL.
function watch(page, origin) {
  const w = { errors: [], foreign: [], requests: [], expected: new Set(), csp: [] };
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = m.location()?.url || '';
    const network = m.text().startsWith('Failed to load resource: the server responded with a status of');
    if (network && [...w.expected].some((p) => url.startsWith(origin + p))) return;
    w.errors.push(`${m.text()} @ ${url}`);
  });
  page.on('pageerror', (e) => w.errors.push(`page error: ${e.message}`));
  page.on('request', (r) => {
    const u = r.url();
    w.requests.push({ method: r.method(), url: u, headers: r.headers() });
    if (!u.startsWith(origin + '/') && !u.startsWith('data:') && !u.startsWith('blob:')) w.foreign.push(u);
  });
  return w;
}

async function newPage(d, viewport = { width: 1280, height: 900 }) {
  const page = await context.newPage();
  await page.setViewportSize(viewport);
  const w = watch(page, d.origin);
  w.expected.add('/v1/gallery'); // the probe: 404 until the gallery routes exist
  // confirm() is accepted; prompt() answers w.promptAnswer.
  page.on('dialog', (dlg) => dlg.accept(dlg.type() === 'prompt' ? w.promptAnswer : undefined));
  await page.goto(d.origin + '/');
  await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT });
  return { page, w };
}

// The end of every page's step: no console errors, no CSP violations, nothing fetched from elsewhere.
async function finish(page, w, step) {
  const csp = await page.evaluate(() => window.__cspViolations || []);
  check(w.errors.length === 0, `${step}: no console errors`, w.errors.join(' | '));
  check(csp.length === 0, `${step}: no CSP violations`, csp.join(' | '));
  check(w.foreign.length === 0, `${step}: no request to any host but the daemon's`, w.foreign.join(', '));
  await page.close();
}

const shot = (page, name, selector) =>
  (selector ? page.locator(selector) : page).screenshot({ path: join(OUT, name) });

const detectRequests = (w) => w.requests.filter((r) => r.method === 'POST' && r.url.includes('/v1/detect')).length;

// Fraction of the pixels along a box's edge that have the given colour (within a tolerance).
async function edgeColorFraction(page, canvasSel, box, hex) {
  return page.$eval(canvasSel, (c, [b, hex]) => {
    const want = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    const ctx = c.getContext('2d');
    const { data, width, height } = ctx.getImageData(0, 0, c.width, c.height);
    const near = (x, y) => {
      x = Math.round(Math.min(Math.max(x, 0), width - 1));
      y = Math.round(Math.min(Math.max(y, 0), height - 1));
      const i = (y * width + x) * 4;
      return want.every((v, k) => Math.abs(data[i + k] - v) <= 40);
    };
    let hit = 0, n = 0;
    for (let t = 0.1; t <= 0.9; t += 0.02) {
      const x = b.x1 + (b.x2 - b.x1) * t, y = b.y1 + (b.y2 - b.y1) * t;
      for (const [px, py] of [[x, b.y2], [b.x1, y], [b.x2, y]]) { n++; if (near(px, py)) hit++; }
    }
    return hit / n;
  }, [box, hex]);
}

// ---- the steps ----

async function testHeadersAndSize(d) {
  const r = await d.request('/');
  check(r.status === 200 && r.headers.get('content-type').startsWith('text/html'), 'GET / serves the page');
  check(r.headers.get('content-security-policy') === CSP, 'CSP header exact', r.headers.get('content-security-policy'));
  check(r.headers.get('x-content-type-options') === 'nosniff', 'X-Content-Type-Options: nosniff');
  check(r.headers.get('referrer-policy') === 'no-referrer', 'Referrer-Policy: no-referrer');
  check(r.headers.get('cache-control') === 'no-cache', 'Cache-Control: no-cache (revalidate with the ETag)');
  const etag = r.headers.get('etag');
  check(/^"[0-9a-f]{8,}"$/.test(etag || ''), 'ETag present', etag);
  const again = await d.request('/', { headers: { 'If-None-Match': etag } });
  check(again.status === 304 && again.body.length === 0 && again.headers.get('etag') === etag,
    'repeated GET with the ETag answers 304', `${again.status}`);
  const other = await d.request('/', { headers: { 'If-None-Match': '"0000"' } });
  check(other.status === 200, 'another ETag gets the page (200)');
  const js = await d.request('/ui/app.js');
  check(js.status === 200 && js.headers.get('content-type').startsWith('text/javascript') &&
    js.headers.get('content-security-policy') === CSP, '/ui/app.js as JavaScript with the CSP');
  const missing = await d.request('/ui/no-such-file.js');
  check(missing.status === 404 && missing.json?.error?.code === 'NOT_FOUND', 'unknown /ui/ file: 404 JSON');
  const post = await d.request('/', { method: 'POST', body: 'x' });
  check(post.status === 405, 'POST / answers 405');
}

async function testLoadAndDetect(d) {
  const { page, w } = await newPage(d);
  const fcp = await page.evaluate(() =>
    performance.getEntriesByType('paint').find((e) => e.name === 'first-contentful-paint')?.startTime);
  console.log(`first contentful paint on loopback: ${fcp?.toFixed(1)} ms`);
  await shot(page, '01-loaded.png');
  check(await page.isHidden('#detect-canvas') && await page.isHidden('#detect-error') &&
    await page.isHidden('#panel-faces'), 'before a photo: no canvas, no error, one panel shown');
  // Size: everything the page loaded from / and /ui/.
  const uiFiles = [...new Set(w.requests.map((r) => r.url).filter((u) => u === d.origin + '/' ||
    u.startsWith(d.origin + '/ui/')))];
  let total = 0;
  for (const u of uiFiles) total += (await d.request(u.slice(d.origin.length))).body.length;
  check(total <= MAX_UI_BYTES && uiFiles.length >= 5, 'the page and its assets ≤ 100 KB',
    `${total} bytes in ${uiFiles.length} files`);

  // The model picker is filled from /v1/models.
  const models = (await d.request('/v1/models')).json.models.filter((m) => m.kind === 'yolo');
  const options = await page.$$eval('#detect-model option', (os) => os.map((o) => [o.value, o.selected]));
  check(options.length === models.length && models.every((m) => options.some(([v, s]) => v === m.name &&
    s === m.default)), 'model picker lists /v1/models with the default selected',
  options.map((o) => o[0]).join(','));

  // Detect dog.jpg: the same labels as the API at the slider's default, boxes on the canvas.
  const api = (await d.post('/v1/detect', [['image', DOG, 'dog.jpg', 'image/jpeg']], { conf: 0.25 })).json;
  await page.setInputFiles('#detect-file', join(SHARED, 'images', 'dog.jpg'));
  await page.waitForSelector('#detect-list li', { timeout: WAIT });
  const labels = await page.$$eval('#detect-list li', (lis) => lis.map((li) => li.dataset.label));
  const want = api.detections.map((x) => x.label);
  check(JSON.stringify([...labels].sort()) === JSON.stringify([...want].sort()),
    'detect lists the labels the API returns', `page ${labels} / API ${want}`);
  check(['dog', 'bicycle', 'car'].every((l) => labels.includes(l)), 'dog, bicycle and car listed');
  const dog = api.detections.find((x) => x.label === 'dog');
  const dogColor = await page.$eval('#detect-list li[data-label="dog"]', (li) => li.dataset.color);
  const onEdge = await edgeColorFraction(page, '#detect-canvas', dog.box, dogColor);
  const inside = await edgeColorFraction(page, '#detect-canvas', {
    x1: dog.box.x1 + 40, y1: dog.box.y1 + 40, x2: dog.box.x2 - 40, y2: dog.box.y2 - 40 }, dogColor);
  check(onEdge > 0.8 && inside < 0.2, "canvas pixels in the box colour along the dog's box",
    `edge ${onEdge.toFixed(2)}, 40 px inside ${inside.toFixed(2)}`);
  await shot(page, '02-detect-dog.png', '#detect-canvas');
  const timing = await page.textContent('#detect-timing');
  check(/inference [\d.]+ ms/.test(timing) && /round trip \d+ ms/.test(timing), 'timings shown', timing);
  await page.click('#detect-json-box summary');
  const json = JSON.parse(await page.textContent('#detect-json'));
  check(await page.isVisible('#detect-json') && json.detections.length >= want.length,
    'JSON answer one click away');

  // The slider filters in the page: no new request.
  const before = detectRequests(w);
  await page.$eval('#detect-conf', (s) => { s.value = '0.9'; s.dispatchEvent(new Event('input')); });
  const only = await page.$$eval('#detect-list li', (lis) => lis.map((li) => li.dataset.label));
  check(JSON.stringify(only) === '["dog"]', 'slider at 0.9 leaves only the dog', only.join(','));
  check(detectRequests(w) === before, 'the slider asked the server nothing');
  const bike = api.detections.find((x) => x.label === 'bicycle');
  const bikeColor = await colorOf(page, 'bicycle');
  const bikeEdge = await edgeColorFraction(page, '#detect-canvas', bike.box, bikeColor);
  check(bikeEdge < 0.3, "the bicycle's box is gone from the canvas", `edge ${bikeEdge.toFixed(2)}`);
  await shot(page, '03-slider-0.9.png', '#detect-canvas');
  // IoU asks again.
  await page.fill('#detect-iou', '0.3');
  await page.press('#detect-iou', 'Tab');
  await page.waitForFunction((n) => performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/v1/detect')).length > n, before, { timeout: WAIT });
  await page.waitForSelector('#detect-list li');
  check(detectRequests(w) === before + 1, 'changing IoU asks again, once');
  // Another model asks again, and the summary names it.
  const other = models.find((m) => !m.default);
  if (check(!!other, 'a second model to switch to')) {
    const n = detectRequests(w);
    await page.selectOption('#detect-model', other.name);
    await page.waitForFunction((name) => document.getElementById('detect-summary').textContent.includes(name),
      other.name, { timeout: WAIT });
    check(detectRequests(w) === n + 1, 'changing the model asks again, once', other.name);
  }
  await finish(page, w, 'detect');
}

// A photo dropped on the zone, and one pasted anywhere: each asks once and lists the answer.
async function testDropAndPaste(d) {
  const { page, w } = await newPage(d);
  const b64 = DOG.toString('base64');
  for (const how of ['drop', 'paste']) {
    const n = detectRequests(w);
    await page.evaluate(([b64, how]) => {
      document.getElementById('detect-list').replaceChildren();
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'dog.jpg', { type: 'image/jpeg' }));
      if (how === 'drop')
        document.getElementById('detect-drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      else
        document.body.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, [b64, how]);
    await page.waitForSelector('#detect-list li[data-label="dog"]');
    check(detectRequests(w) === n + 1, `a photo by ${how} is detected`);
  }
  await finish(page, w, 'drop and paste');
}

async function colorOf(page, label) {
  return page.evaluate(async (l) => (await import('/ui/draw.js')).colorFor(l), label);
}

async function errorText(page, sel) {
  await page.waitForSelector(`${sel}:not([hidden])`, { timeout: WAIT });
  return page.textContent(sel);
}

async function testErrors(d) {
  const { page, w } = await newPage(d);
  w.expected.add('/v1/detect');
  const cases = [
    ['a GIF', GIF, 'tiny.gif', 'image/gif', 415],
    ['a truncated JPEG', DOG.subarray(0, 20000), 'truncated.jpg', 'image/jpeg', 400],
    ['an oversized photo', Buffer.concat([DOG, Buffer.alloc(2 * 1024 * 1024, 7)]), 'big.jpg', 'image/jpeg', 413],
  ];
  let i = 4;
  for (const [what, bytes, name, type, status] of cases) {
    const api = status === 413 ? await d.refusedByLength('/v1/detect', bytes.length)
      : await d.post('/v1/detect', [['image', bytes, name, type]], { conf: 0.05 });
    const file = join(profile, name);
    writeFileSync(file, bytes);
    await page.evaluate(() => { document.getElementById('detect-error').hidden = true; });
    await page.setInputFiles('#detect-file', file);
    const text = await errorText(page, '#detect-error');
    // A 413's message counts the body's bytes, which the browser's multipart framing changes.
    const message = status === 413 ? api.json.error.message.replace(/^.* is over/, 'is over') : api.json.error.message;
    check(api.status === status && text.includes(message) && text.includes(`${status} ${api.json.error.code}`),
      `${what}: the server's message is shown`, `${api.status}: ${text}`);
    await shot(page, `${String(i++).padStart(2, '0')}-error-${name}.png`);
  }
  // A 503 with Retry-After is retried: the first detect is answered 503 by the browser's router,
  // the retry reaches the daemon.
  let refused = 0;
  const t0 = Date.now();
  await page.route('**/v1/detect*', (route) => {
    if (refused++) return route.continue();
    return route.fulfill({ status: 503, headers: { 'Retry-After': '1', 'Content-Type': 'application/json' },
      body: JSON.stringify({ error: { code: 'QUEUE_FULL', message: 'the job queue is full' } }) });
  });
  await page.setInputFiles('#detect-file', join(SHARED, 'images', 'dog.jpg'));
  await page.waitForSelector('#detect-list li', { timeout: WAIT });
  check(refused === 2 && Date.now() - t0 >= 1000 && await page.isHidden('#detect-error'),
    '503 retried after Retry-After', `${refused} requests, ${Date.now() - t0} ms`);
  await page.unroute('**/v1/detect*');
  await finish(page, w, 'errors (but the failed requests asked for)');
}

async function testFaces(d) {
  const { page, w } = await newPage(d);
  await page.click('#tab-faces');
  const api = (await d.post('/v1/faces', [['image', read(FACE_DEMO), 'sample1.jpg', 'image/jpeg']])).json;
  await page.setInputFiles('#faces-file', FACE_DEMO);
  await page.waitForSelector('#faces-list li', { timeout: WAIT });
  const n = await page.$$eval('#faces-list li', (l) => l.length);
  check(n === api.count && n > 0, 'faces: one item per face the API finds', `${n} / ${api.count}`);
  // Points with no other landmark within 12 px: a dot drawn anywhere else cannot cover them.
  const all = api.faces.flatMap((f) => f.landmarks);
  const pts = all.filter(([x, y], i) => all.every(([u, v], j) => i === j || Math.hypot(x - u, y - v) > 12));
  const onPoints = await page.$eval('#faces-canvas', (c, pts) => {
    const ctx = c.getContext('2d');
    return pts.filter(([x, y]) => {
      const p = ctx.getImageData(Math.round(x), Math.round(y), 1, 1).data;
      return Math.abs(p[0] - 0xff) < 40 && Math.abs(p[1] - 0x1f) < 40 && Math.abs(p[2] - 0x5b) < 40;
    }).length / pts.length;
  }, pts);
  check(pts.length >= 10 && onPoints > 0.9, 'landmarks drawn at the points the API gives',
    `${(onPoints * 100).toFixed(0)}% of ${pts.length} isolated points`);
  await shot(page, '07-faces-landmarks.png', '#faces-canvas');

  for (const [a, b, want, name] of [[SIMM[0], SIMM[1], 'Same person', 'same'],
    [SIMM[0], SAVAGE, 'Different people', 'different']]) {
    const ref = (await d.post('/v1/verify', [['image1', read(a), 'a.jpg', 'image/jpeg'],
      ['image2', read(b), 'b.jpg', 'image/jpeg']], { aligned: true })).json;
    await page.setInputFiles('#verify-file1', a);
    await page.setInputFiles('#verify-file2', b);
    await page.check('#verify-aligned');
    await page.click('#verify-run');
    await page.waitForFunction(() => /distance/.test(document.getElementById('verify-sentence').textContent),
      null, { timeout: WAIT });
    const s = await page.textContent('#verify-sentence');
    const expect = `${want}: distance ${ref.distance.toFixed(2)}, threshold ${ref.threshold.toFixed(2)}`;
    check(s === expect, `verify, aligned crops, ${name}: the sentence`, s);
    await shot(page, `08-verify-${name}.png`, '.pair');
  }
  await finish(page, w, 'faces');
}

async function testGallery(d) {
  const { page, w } = await newPage(d);
  await page.click('#tab-gallery');
  const status = (await d.request('/v1/gallery')).status;
  if (status === 404) {
    const text = await page.textContent('#gallery-off');
    check(await page.isVisible('#gallery-off') && /404/.test(text) && await page.isHidden('#gallery-on'),
      'no gallery routes: the tab says so and offers nothing', text);
  } else {
    // The gallery flow: enroll 3 photos of one person, identify a fourth, delete the person.
    const simm = ['000288_00470387.jpg', '000297_00470170.jpg', '000300_00470148.jpg']
      .map((f) => join(JOHNS, 'John_Simm', f));
    await page.fill('#enroll-name', 'ui-test Simm');
    await page.setInputFiles('#enroll-files', simm);
    await page.check('#enroll-aligned');
    await page.click('#gallery-enroll button[type="submit"]');
    await page.waitForSelector('#gallery-rows tr', { timeout: WAIT });
    const cells = await page.$$eval('#gallery-rows tr', (trs) => trs.map((tr) =>
      [...tr.cells].slice(0, 2).map((td) => td.textContent)));
    check(cells.some(([n, c]) => n === 'ui-test Simm' && c === '3'), 'gallery: enrolled 3 photos, listed with 3 faces',
      JSON.stringify(cells));
    // A fourth photo of him, as an aligned crop: named; the demo photo's strangers: unknown.
    const fourth = join(JOHNS, 'John_Simm', '000304_00470122.jpg');
    const ref = (await d.post('/v1/identify', [['image', read(fourth), 'x.jpg', 'image/jpeg']], { aligned: true })).json;
    await page.check('#identify-aligned');
    await page.setInputFiles('#identify-file', fourth);
    await page.waitForSelector('#identify-list li');
    const who = await page.textContent('#identify-list li');
    check(ref.faces[0].match?.subject === 'ui-test Simm' && who.startsWith('ui-test Simm (distance ' +
      ref.faces[0].match.distance.toFixed(2)), 'gallery: identify names an enrolled person as the API does', who);
    await shot(page, '09-gallery-identify.png', '#identify-canvas');
    await page.uncheck('#identify-aligned');
    await page.setInputFiles('#identify-file', join(ROOT, 'models', 'faces', 'package', 'demo', 'sample1.jpg'));
    await page.waitForFunction(() => document.querySelectorAll('#identify-list li').length > 1);
    const strangers = await page.$$eval('#identify-list li', (lis) => lis.map((li) => li.textContent));
    check(strangers.every((t) => t.startsWith('unknown')), 'gallery: strangers are unknown', strangers.join(' | '));
    w.promptAnswer = 'ui-test John Simm';
    await page.click('#gallery-rows button[aria-label="Rename ui-test Simm"]');
    await page.waitForSelector('#gallery-rows button[aria-label^="Delete ui-test John Simm"]');
    const renamed = (await d.request(`/v1/subjects/${encodeURIComponent('ui-test John Simm')}`)).json;
    check(renamed?.face_count === 3, 'gallery: renamed, with its 3 faces', JSON.stringify(renamed));
    await page.click('#gallery-rows button[aria-label^="Delete ui-test John Simm"]');
    await page.waitForFunction(() => !document.getElementById('gallery-rows').textContent.includes('Simm'));
    check((await d.request(`/v1/subjects/${encodeURIComponent('ui-test John Simm')}`)).status === 404,
      'gallery: deleted after the confirmation (GET answers 404)');
  }
  await shot(page, '09-gallery.png');
  await finish(page, w, 'gallery');
}

// Space on the focused file input opens the file chooser, where `file` is picked. Headless Chromium
// now and then opens no chooser for a key press that follows another chooser (once in 2 to 6 runs here,
// on a busy machine): a second press is allowed; no chooser then is a failure.
async function chooseByKeyboard(page, file) {
  for (let attempt = 1; attempt <= 2; attempt++) {
    const chooser = page.waitForEvent('filechooser', { timeout: 10000 }).catch(() => null);
    await page.keyboard.press('Space');
    const c = await chooser;
    if (c) {
      await c.setFiles(file);
      return;
    }
    console.log(`no file chooser after Space on #${await page.evaluate(() => document.activeElement.id)} (attempt ${attempt})`);
  }
  throw new Error('Space on a focused file input opened no file chooser, twice');
}

// Tab through the page: every control of each panel gets the focus, in document order.
async function testKeyboard(d) {
  const { page, w } = await newPage(d);
  const reached = new Set();
  for (const tab of ['tab-detect', 'tab-faces', 'tab-gallery', 'tab-keys']) {
    await page.focus('#tab-detect');
    for (let i = 0; i < ['tab-detect', 'tab-faces', 'tab-gallery', 'tab-keys'].indexOf(tab); i++)
      await page.keyboard.press('ArrowRight');
    check(await page.evaluate((t) => document.activeElement.id === t &&
      document.getElementById(t).getAttribute('aria-selected') === 'true', tab), `arrow keys select ${tab}`);
    const controls = await page.$$eval('[role="tabpanel"]:not([hidden]) :is(input, select, button, summary, a, textarea)',
      (els) => els.filter((e) => e.offsetParent !== null && !e.disabled).map((e) => e.id || e.textContent.trim()));
    const seen = [];
    for (let i = 0; i < 60; i++) {
      await page.keyboard.press('Tab');
      const id = await page.evaluate(() => document.activeElement.id || document.activeElement.textContent.trim());
      if (id === tab) break;
      seen.push(id);
      if (await page.evaluate(() => document.activeElement === document.body)) break;
    }
    const missed = controls.filter((c) => !seen.includes(c));
    controls.forEach((c) => reached.add(c));
    check(missed.length === 0, `Tab reaches every control of ${tab}`, missed.length ? `missed ${missed}` : `${controls.length} controls`);
  }
  // The detect flow with the keyboard alone: Tab to the file input, Space opens the chooser.
  await page.focus('#tab-detect');
  await page.keyboard.press('Enter');
  await page.keyboard.press('Tab'); // the panel
  await page.keyboard.press('Tab'); // the file input
  check(await page.evaluate(() => document.activeElement.id) === 'detect-file', 'Tab goes from the tabs to the file input');
  await chooseByKeyboard(page, join(SHARED, 'images', 'dog.jpg'));
  await page.waitForSelector('#detect-list li', { timeout: WAIT });
  check(true, 'detect flow from the keyboard alone');
  // Verify with the keyboard alone: arrow to the tab, Tab to each control, Space/Enter to use it.
  const tabTo = async (id) => {
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      if (await page.evaluate((x) => document.activeElement.id === x, id)) return true;
    }
    return false;
  };
  await page.focus('#tab-detect');
  await page.keyboard.press('ArrowRight');
  for (const [id, file] of [['verify-file1', SIMM[0]], ['verify-file2', SIMM[1]]]) {
    if (!check(await tabTo(id), `Tab reaches ${id}`))
      throw new Error(`Tab did not reach ${id}; focus on ${await page.evaluate(() => document.activeElement.outerHTML.slice(0, 120))}`);
    await chooseByKeyboard(page, file);
  }
  check(await tabTo('verify-aligned'), 'Tab reaches the aligned option');
  await page.keyboard.press('Space');
  check(await tabTo('verify-run'), 'Tab reaches Compare');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => /distance/.test(document.getElementById('verify-sentence').textContent),
    null, { timeout: WAIT });
  check((await page.textContent('#verify-sentence')).startsWith('Same person'), 'verify flow from the keyboard alone');
  // axe-core on every tab: no serious or critical violation.
  await page.evaluate(AXE);
  for (const tab of ['tab-detect', 'tab-faces', 'tab-gallery', 'tab-keys']) {
    await page.click(`#${tab}`);
    const v = await page.evaluate(async () => (await window.axe.run(document)).violations
      .filter((x) => x.impact === 'serious' || x.impact === 'critical')
      .map((x) => `${x.id}: ${x.nodes.map((n) => n.target.join(' ')).join(', ')}`));
    check(v.length === 0, `axe-core: no serious or critical violation on ${tab}`, v.join(' | '));
  }
  await finish(page, w, 'keyboard');
}

async function testPhone(d) {
  const { page, w } = await newPage(d, { width: 390, height: 844 });
  await page.setInputFiles('#detect-file', join(SHARED, 'images', 'dog.jpg'));
  await page.waitForSelector('#detect-list li', { timeout: WAIT });
  const [sw, cw] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
  check(sw <= cw, '390x844: the detect flow without horizontal scrolling', `${sw} <= ${cw}`);
  await shot(page, '10-phone-detect.png');
  await page.click('#tab-faces');
  const [sw2] = await page.evaluate(() => [document.documentElement.scrollWidth]);
  check(sw2 <= cw, '390x844: faces & verify without horizontal scrolling', `${sw2}`);
  await finish(page, w, 'phone');
}

// CSP is effective: an inline script injected into the page does not run.
async function testCsp(d) {
  const { page, w } = await newPage(d);
  const ran = await page.evaluate(async () => {
    const seen = new Promise((r) => document.addEventListener('securitypolicyviolation', (e) => r(e.violatedDirective), { once: true }));
    const s = document.createElement('script');
    s.textContent = 'window.__inlineRan = true;';
    document.body.append(s);
    return [window.__inlineRan === true, await Promise.race([seen, new Promise((r) => setTimeout(() => r(''), 10000))])];
  });
  check(!ran[0] && /script-src/.test(ran[1]), 'an injected inline script does not run (CSP)', `violated ${ran[1]}`);
  check(w.foreign.length === 0, 'CSP page: no foreign requests');
  await page.close();
}

// With a keys file: the page loads without a key, asks for one on 401 and then works.
async function testKeys(d) {
  const page = await context.newPage();
  const w = watch(page, d.origin);
  w.expected.add('/v1/models').add('/v1/gallery').add('/v1/detect');
  await page.goto(d.origin + '/');
  await page.waitForSelector('#key-dialog[open]', { timeout: WAIT });
  check(true, '401 → the key prompt opens');
  await shot(page, '11-key-prompt.png');
  await page.fill('#key-dialog-input', KEY);
  await page.keyboard.press('Enter');
  await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT });
  const n = await page.$$eval('#detect-model option', (o) => o.length);
  check(n > 0, 'after the key, the models load', `${n} models`);
  await page.setInputFiles('#detect-file', join(SHARED, 'images', 'dog.jpg'));
  await page.waitForSelector('#detect-list li', { timeout: WAIT });
  check(true, 'detect succeeds with the key');
  check(await page.evaluate(() => sessionStorage.getItem('visiond.apiKey')) === KEY, 'the key is kept in sessionStorage');
  check(!w.requests.some((r) => r.url.includes(KEY)), 'the key never appears in a URL');
  const detect = w.requests.filter((r) => r.url.includes('/v1/detect'));
  check(detect.length > 0 && detect.every((r) => r.headers['x-api-key'] === KEY), 'the key is sent as X-API-Key');
  await shot(page, '12-with-key.png');
  // A gallery write with this (inference) key: the server's 403 text.
  if ((await d.request('/v1/gallery', { headers: { 'X-API-Key': KEY } })).status === 200) {
    w.expected.add('/v1/subjects');
    const api = await d.request('/v1/subjects', { method: 'POST', body: JSON.stringify({ name: 'ui-test 403' }),
      headers: { 'X-API-Key': KEY, 'Content-Type': 'application/json' } });
    await page.click('#tab-gallery');
    await page.fill('#enroll-name', 'ui-test 403');
    await page.setInputFiles('#enroll-files', SIMM[0]);
    await page.click('#gallery-enroll button[type="submit"]');
    const text = await errorText(page, '#gallery-error');
    check(api.status === 403 && text.includes(`403 ${api.json.error.code}: ${api.json.error.message}`),
      'an inference key on a gallery write: the 403 text', text);
    await shot(page, '13-gallery-403.png');
  }
  await finish(page, w, 'keys (but the 401s)');
}

async function main() {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  context.setDefaultTimeout(WAIT);
  await context.addInitScript(() => document.addEventListener('securitypolicyviolation',
    (e) => (window.__cspViolations ||= []).push(`${e.violatedDirective} ${e.blockedURI}`)));
  const start = async (flags) => { const d = new Daemon(VISIOND, ROOT, flags); daemons.push(d); return d.start(); };
  const d = await start(['--max-body', '2M']);
  await testHeadersAndSize(d);
  await testLoadAndDetect(d);
  await testDropAndPaste(d);
  await testErrors(d);
  await testFaces(d);
  await testGallery(d);
  await testKeyboard(d);
  await testPhone(d);
  await testCsp(d);
  const keys = join(profile, 'keys');
  writeFileSync(keys, `${KEY}\n`);
  await testKeys(await start(['--keys', keys]));
  const off = await start(['--ui', 'off']);
  const r1 = await off.request('/'), r2 = await off.request('/ui/app.js');
  check(r1.status === 404 && r2.status === 404 && (await off.request('/healthz')).status === 200,
    '--ui off: / and /ui/ answer 404, the API still serves');
}

try {
  await main();
} catch (e) {
  check(false, 'the test ran to its end', e.stack);
} finally {
  if (context) await context.close();
  for (const d of daemons) {
    try { await d.stop(); } catch (e) { check(false, 'daemon stopped cleanly', e.message); }
  }
  rmSync(profile, { recursive: true, force: true });
}
writeFileSync(join(OUT, 'results.txt'), results.join('\n') + '\n');
console.log(`${failures ? 'FAILED' : 'passed'}: ${results.length - failures}/${results.length} checks; screenshots in ${OUT}`);
process.exit(failures ? 1 : 0);
