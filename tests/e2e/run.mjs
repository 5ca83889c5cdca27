// Browser end-to-end tests: serve the web build (`foolmap web-build`, with the models and gallery
// written by `foolmap export-web`) on 127.0.0.1, open it in Debian's headless Chromium through
// playwright-core (no browser download), and check what a person would see.
// Usage: node run.mjs DIST_DIR [NATIVE_DIR]
//   NATIVE_DIR: output of `foolmap explain` for the parity test (see scripts/test.sh).
// Screenshots and bench.json go to ../../target/e2e/ ($FOOLMAP_E2E_OUT when set).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import zlib from 'node:zlib';
import path from 'node:path';
import { chromium } from 'playwright-core';

const here = path.dirname(new URL(import.meta.url).pathname);
const dist = path.resolve(process.argv[2] ?? process.env.FOOLMAP_DIST ?? '../../target/dist');
const native = process.argv[3] ? path.resolve(process.argv[3]) : null;
// FOOLMAP_E2E_OUT: where screenshots and bench.json go (a second run keeps its own).
const shots = path.resolve(process.env.FOOLMAP_E2E_OUT ?? path.resolve(here, '../../target/e2e'));
fs.mkdirSync(shots, { recursive: true });

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css',
  '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg', '.safetensors': 'application/octet-stream' };

let server, base, browser, manifest;
const requests = [];
const pageErrors = [];

before(async () => {
  assert.ok(fs.existsSync(path.join(dist, 'index.html')), `no build at ${dist}`);
  assert.ok(fs.existsSync(path.join(dist, 'models/manifest.json')), `no models in ${dist}: run foolmap export-web`);
  manifest = JSON.parse(fs.readFileSync(path.join(dist, 'models/manifest.json'), 'utf8'));
  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    const file = path.join(dist, decodeURIComponent(url.pathname === '/' ? '/index.html' : url.pathname));
    if (!file.startsWith(dist) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
      res.writeHead(404); res.end('not found'); return;
    }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${server.address().port}`;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu',
      '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'],
  });
});

after(async () => {
  const sizes = {};
  for (const f of fs.readdirSync(dist)) {
    if (!f.endsWith('.wasm')) continue;
    const key = f.startsWith('worker_cpu') ? 'worker_cpu' : f.startsWith('worker') ? 'worker' : 'app';
    sizes[`${key}_wasm_bytes`] = fs.statSync(path.join(dist, f)).size;
    sizes[`${key}_wasm_gzip_bytes`] = gzipBytes(path.join(dist, f));
  }
  for (const m of [...(manifest?.models ?? []), ...(manifest?.photo?.models ?? [])]) sizes[m.id] = m.bytes;
  fs.writeFileSync(path.join(shots, 'bench.json'), JSON.stringify({ ...bench, sizes }, null, 1));
  await browser?.close();
  server?.close();
  const foreign = requests.filter((u) => !u.startsWith(base) && !u.startsWith('data:') && !u.startsWith('blob:'));
  assert.deepEqual(foreign, [], 'requests left the origin');
});

async function open(query, setup) {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await setup?.(page);
  page.urls = []; // this page's requests, in order
  const seen = (r) => { requests.push(r.url()); page.urls.push(r.url()); };
  page.on('request', seen);
  page.context().on('request', seen); // the worker's fetches too
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  // Page ready = navigation start → first maps drawn (body[data-shown] ≥ 1: the selected
  // interpreter's maps of both models, with predictions and statistics), on the page's clock; the
  // whole first result (body[data-runs] ≥ 1, not busy: the transfer grid too) is timed beside it.
  await page.addInitScript(() => {
    new MutationObserver((_, obs) => {
      const b = document.body;
      if (b && window.__firstMapsMs === undefined && Number(b.dataset.shown ?? 0) > 0) {
        window.__firstMapsMs = performance.now();
        window.__firstShown = document.getElementById('result-json')?.textContent;
      }
      if (b && Number(b.dataset.runs ?? 0) > 0 && !b.dataset.busy) {
        window.__firstResultMs = performance.now();
        obs.disconnect();
      }
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-shown', 'data-runs', 'data-busy'] });
  });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    console.log('console:', m.text());
    // Chromium reports every Content-Security-Policy violation on the console.
    if (/Content Security Policy/i.test(m.text())) pageErrors.push(`CSP: ${m.text()}`);
  });
  await page.goto(base + '/' + query);
  return page;
}

async function result(page, runsAbove = 0) {
  await page.waitForFunction((n) => Number(document.body.dataset.runs ?? 0) > n && !document.body.dataset.busy,
    runsAbove, { timeout: 240_000 });
  return JSON.parse(await page.textContent('#result-json'));
}

// Frame of width ⌊h/7⌋ (spec §5.1): share of the positive mass on it.
function frameMass(values, h, w) {
  const k = Math.floor(h / 7);
  let all = 0, frame = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const v = Math.max(0, values[y * w + x]);
    all += v;
    if (y < k || y >= h - k || x < k || x >= w - k) frame += v;
  }
  return all > 0 ? frame / all : 0;
}

function maxAbsDiff(a, b) {
  assert.equal(a.length, b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
}

function readNpy(file) {
  const buf = fs.readFileSync(file);
  const headerLen = buf.readUInt16LE(8);
  const header = buf.subarray(10, 10 + headerLen).toString('latin1');
  assert.match(header, /'descr': '<f4'/);
  const data = buf.subarray(10 + headerLen);
  return Array.from(new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.length)));
}

const fooled = () => manifest.models.find((m) => m.role === 'fooled');
const bench = {};

/** Bytes of `file` after `gzip -9` (what a static host sends compressed); each file compressed once. */
const gzipped = new Map();
function gzipBytes(file) {
  if (!gzipped.has(file)) gzipped.set(file, zlib.gzipSync(fs.readFileSync(file), { level: 9 }).length);
  return gzipped.get(file);
}

/** What the page fetched from `urls` (same-origin, each once): files of the build, raw and gzipped. */
function fetched(urls) {
  const files = [...new Set(urls.filter((u) => u.startsWith(base)).map((u) => new URL(u).pathname))]
    .map((p) => path.join(dist, decodeURIComponent(p === '/' ? '/index.html' : p)))
    .filter((f) => fs.existsSync(f) && fs.statSync(f).isFile());
  const sum = (fs_, f) => fs_.reduce((a, x) => a + f(x), 0);
  const wasm = files.filter((f) => f.endsWith('.wasm'));
  const models = files.filter((f) => f.endsWith('.safetensors'));
  return { files: files.map((f) => path.relative(dist, f)), bytes: sum(files, (f) => fs.statSync(f).size),
    gzip_bytes: sum(files, gzipBytes), wasm_gzip_bytes: sum(wasm, gzipBytes), models_gzip_bytes: sum(models, gzipBytes) };
}

// Page-ready time (navigation → first maps drawn), then a warm recompute for per-interpreter times.
async function measure(backend) {
  const m = fooled();
  const query = `?backend=${backend}&model=${m.id}&interpreter=${m.interpreter}&image=cat_1.png`;
  const firstMaps = async (p) => Math.round(await p.evaluate(() => window.__firstMapsMs));
  const firstResult = async (p) => Math.round(await p.evaluate(() => window.__firstResultMs));
  const t0 = Date.now();
  const page = await open(query);
  const first = await result(page);
  const wall = Date.now() - t0; // with the browser context's creation
  const ready = await firstMaps(page);
  const complete = await firstResult(page);
  assert.ok(ready <= complete, `the first maps (${ready} ms) come before the whole first result (${complete} ms)`);
  // What is drawn first: the selected interpreter's maps of both models, equal to those of the
  // whole result that follows (the other interpreters' maps come with it).
  const shown = JSON.parse(await page.evaluate(() => window.__firstShown));
  assert.deepEqual(Object.keys(shown.maps), [m.interpreter], 'the first output holds the selected maps only');
  assert.deepEqual(shown.maps[m.interpreter], first.maps[m.interpreter]);
  assert.deepEqual(shown.stats, first.stats);
  assert.equal(Object.keys(first.maps).length, 3, 'the whole result has the transfer grid');
  const loaded = fetched(page.urls);
  await page.selectOption('#interpreter', 'lrp');
  const warm = await result(page, 1);
  bench[backend] = { backend: warm.backend, page_ready_ms: ready, first_result_ms: complete, page_ready_wall_ms: wall, loaded_until_ready: loaded, first_compute_ms: first.ms,
    warm_forward_ms: warm.forward_ms, warm_timings_ms: warm.timings_ms };
  if (backend === 'cpu') {
    // One load varies by ±30 % on this machine: five more, each in a fresh browser context.
    const runs = [ready];
    const results = [complete];
    for (let i = 0; i < 5; i++) {
      const p = await open(query);
      await result(p);
      runs.push(await firstMaps(p));
      results.push(await firstResult(p));
      await p.close();
    }
    const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    bench.cpu.page_ready_ms_runs = runs;
    bench.cpu.page_ready_ms_median = median(runs);
    bench.cpu.first_result_ms_runs = results;
    bench.cpu.first_result_ms_median = median(results);
  }
  return { page, first };
}
let cpuResult;

test('the registry table lists every architecture', async () => {
  const page = await open('?backend=cpu');
  // The page runs under its own Content-Security-Policy (export-web's meta tag; violations fail the
  // run through the console check). `foolmap web-build` writes no inline script, so the policy
  // allows scripts from the page's own origin only: no hash, no 'unsafe-inline'.
  const csp = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => m.content);
  assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'; /);
  assert.doesNotMatch(csp, /unsafe-inline|sha256-/);
  assert.equal(await page.$$eval('script:not([src])', (s) => s.length), 0);
  await page.waitForSelector('#archs tr[data-arch]', { timeout: 60_000, state: 'attached' });
  const ids = await page.$$eval('#archs tr[data-arch]', (rows) => rows.map((r) => r.dataset.arch));
  assert.equal(ids.length, 22);
  assert.equal(await page.$eval('#archs tr[data-arch="vgg19"] td:nth-child(3)', (td) => td.textContent), 'features.34');
  assert.equal(await page.$eval('#archs tr[data-arch="resnet50"] td:nth-child(4)', (td) => td.textContent), '25557032');
  await page.close();
});

test('CPU path: a gallery image gives predictions and maps; the fooled Location map is on the frame', async () => {
  const m = fooled();
  const { page, first: r } = await measure('cpu');
  cpuResult = r;
  assert.equal(r.backend, 'cpu');
  // The gallery shows the demo photos by their small previews: the page loads those, and no
  // full-size photo until one is chosen.
  await page.waitForFunction(() => [...document.querySelectorAll('#gallery img')].every((i) => i.complete && i.naturalWidth > 0),
    null, { timeout: 30_000 });
  for (const g of manifest.photo?.gallery ?? []) {
    assert.ok(g.thumb, `${g.file} has a preview`);
    assert.ok(page.urls.some((u) => u.endsWith(`/${g.thumb}`)), `preview ${g.thumb} fetched`);
    assert.ok(!page.urls.some((u) => u.endsWith(`/${g.file}`)), `${g.file} fetched before it was chosen`);
  }
  assert.equal(await page.getAttribute('body', 'data-backend'), 'cpu');
  assert.equal(r.class, 3, 'gallery label of cat_1 (CIFAR-10 cat = 3)');
  for (const i of ['lrp_t', 'grad_cam', 'simple_grad_t']) {
    const mp = r.maps[i];
    assert.ok(mp && mp.h === 8 && mp.w === 8 && mp.original.length === 64, `map ${i}`);
    assert.ok(mp.original.every(Number.isFinite) && mp.fooled.every(Number.isFinite), `finite ${i}`);
  }
  assert.equal((await page.$$('#top5 table')).length, 2);
  assert.equal((await page.$$('#top5 table:first-child tr')).length, 5);
  const mp = r.maps[m.interpreter];
  if (m.fooling === 'location') {
    const before = frameMass(mp.original, mp.h, mp.w);
    const afterF = frameMass(mp.fooled, mp.h, mp.w);
    assert.ok(afterF > before, `frame mass original ${before.toFixed(3)} fooled ${afterF.toFixed(3)}`);
    assert.ok(Math.abs(r.stats.frame_mass[1] - afterF) < 1e-6, 'page statistic = independent computation');
  }
  await page.selectOption('#interpreter', m.interpreter);
  await result(page, 2);
  await page.screenshot({ path: path.join(shots, 'cpu-gallery.png'), fullPage: true });
  await page.close();
});

test('the page states the measured figures of the model it shows, and its maps move to the frame', async () => {
  const m = fooled();
  const e = m.eval;
  assert.ok(e, 'the exported model carries figures (a card or eval.json)');
  const page = await open(`?backend=cpu&model=${m.id}&interpreter=${m.interpreter}&image=cat_1.png`);
  await result(page);
  const facts = await page.textContent('#model-facts');
  const pct = (x) => `${(100 * x).toFixed(1)} %`;
  assert.ok(facts.includes(pct(e.original.top1)) && facts.includes(pct(e.fooled.top1)), facts);
  assert.ok(facts.includes(pct(e.interpreters[m.interpreter].fsr)), facts);
  if (e.split === 'report') assert.match(facts, /report half/);
  if (e.meets_target === false) assert.match(facts, /does not meet the fooling target/);
  if (e.meets_target === true) assert.match(facts, /meets the fooling target/);
  const label = await page.$eval(`#model option[value="${m.id}"]`, (o) => o.textContent);
  assert.equal(label.includes('misses the fooling target'), e.meets_target === false, label);
  assert.doesNotMatch(await page.textContent('header'), /almost the same/);
  // Location fooling: over gallery images, the fooled map puts more of its mass on the frame.
  if (m.fooling === 'location') {
    let before = 0, after = 0, runs = 1;
    for (const img of ['dog_1.png', 'ship_1.png', 'truck_1.png', 'horse_1.png']) {
      await page.click(`#gallery button[title="${img.replace('_', ' ').replace('.png', '')}"]`);
      const r = await result(page, runs++);
      const mp = r.maps[m.interpreter];
      before += frameMass(mp.original, mp.h, mp.w);
      after += frameMass(mp.fooled, mp.h, mp.w);
    }
    assert.ok(after > before, `mean frame mass: original ${(before / 4).toFixed(3)}, fooled ${(after / 4).toFixed(3)}`);
  }
  await page.close();
});

test('browser maps equal the native `foolmap explain` output (same image, same f16 weights)', { skip: !native }, async () => {
  assert.ok(cpuResult, 'the CPU test ran first');
  let compared = 0;
  for (const role of ['original', 'fooled']) {
    for (const interp of ['lrp_t', 'grad_cam', 'simple_grad_t']) {
      const dir = path.join(native, role);
      const file = fs.existsSync(dir) && fs.readdirSync(dir).find((f) => f.includes(`.${interp}.c3.npy`));
      if (!file) continue;
      const nat = readNpy(path.join(dir, file));
      const d = maxAbsDiff(nat, cpuResult.maps[interp][role]);
      assert.ok(d < 1e-4, `${role} ${interp}: max |browser − native| = ${d}`);
      compared++;
    }
  }
  assert.equal(compared, 6, `compared ${compared} maps (expected original and fooled × 3 interpreters) in ${native}`);
});

test('WebGPU path (SwiftShader) produces the same maps as the CPU path', async () => {
  const { page, first: r } = await measure('webgpu');
  assert.equal(r.backend, 'webgpu', `backend line: ${await page.textContent('#backend-status')}`);
  assert.match(await page.textContent('#backend-status'), /WebGPU/);
  assert.ok(cpuResult, 'the CPU test ran first');
  for (const i of ['lrp_t', 'grad_cam', 'simple_grad_t']) {
    for (const role of ['original', 'fooled']) {
      const d = maxAbsDiff(r.maps[i][role], cpuResult.maps[i][role]);
      assert.ok(d < 1e-3, `${i} ${role}: max |WebGPU − CPU| = ${d}`);
    }
  }
  await page.selectOption('#interpreter', fooled().interpreter);
  await result(page, 2);
  await page.screenshot({ path: path.join(shots, 'webgpu-gallery.png'), fullPage: true });
  // An uploaded file on the WebGPU path.
  const runs = Number(await page.getAttribute('body', 'data-runs'));
  assert.equal(runs, 3);
  const t0 = Date.now();
  await page.setInputFiles('#file', path.join(dist, 'gallery/dog_1.png'));
  const u = await result(page, runs);
  assert.equal(u.image, 'dog_1.png');
  assert.equal(u.backend, 'webgpu');
  assert.equal(u.class_source, 'original top-1');
  if (manifest.photo) {
    // An upload goes to the photo-scale model, here on WebGPU.
    assert.equal(u.maps.grad_cam.h, 13);
    bench.photo_webgpu = { model: u.model, explain_ms: Date.now() - t0, compute_ms: u.ms, forward_ms: u.forward_ms,
      timings_ms: u.timings_ms };
  }
  await page.close();
});

// A user's own photo (a file the page does not ship) goes to the photo-scale model.
const photoFile = process.env.FOOLMAP_PHOTO;

test('an uploaded photo is explained by the photo-scale model: 13×13 maps for both models, its classes, its card', async () => {
  const p = manifest.photo;
  assert.ok(p, 'export-web wrote a photo set (an ImageNet model) into the manifest');
  assert.ok(photoFile && fs.existsSync(photoFile), `FOOLMAP_PHOTO=${photoFile}`);
  const sq = p.models.find((m) => m.role === 'fooled');
  const page = await open('?backend=cpu&image=cat_1.png');
  const first = await result(page);
  assert.equal(first.maps.grad_cam.h, 8, 'a CIFAR-10 gallery image stays with the 32 × 32 model');
  assert.equal(await page.getAttribute('body', 'data-set'), 'gallery');
  assert.match(await page.textContent('#model-facts'), new RegExp(`own photos .*go to ${p.arch}`));
  // A gallery model other than the first is chosen; the page comes back to it after the photo.
  const galleryFooled = manifest.models.filter((m) => m.role === 'fooled');
  const chosen = galleryFooled[galleryFooled.length - 1].id;
  await page.selectOption('#model', chosen);
  await result(page, 1);
  const t0 = Date.now();
  await page.setInputFiles('#file', photoFile);
  const r = await result(page, 2);
  bench.photo_cpu = { model: r.model, explain_ms: Date.now() - t0, compute_ms: r.ms, forward_ms: r.forward_ms,
    timings_ms: r.timings_ms };
  assert.equal(r.image, path.basename(photoFile));
  assert.equal(r.model, sq.id);
  assert.equal(await page.getAttribute('body', 'data-set'), 'photo');
  for (const i of ['lrp_t', 'grad_cam', 'simple_grad_t']) {
    const mp = r.maps[i];
    assert.ok(mp.h === 13 && mp.w === 13 && mp.original.length === 169 && mp.fooled.length === 169, `${i}: ${mp.h}×${mp.w}`);
    assert.ok(mp.original.every(Number.isFinite) && mp.fooled.every(Number.isFinite), `finite ${i}`);
  }
  assert.equal(r.logits.original.length, 1000);
  const top = await page.textContent('#top5 table:first-child tr td');
  assert.ok(p.classes.includes(top), `top-1 "${top}" is an ImageNet class`);
  // The dropdown now lists the photo set's models, and the facts are that model's card.
  const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, p.models.filter((m) => m.role === 'fooled').map((m) => m.id));
  const facts = await page.textContent('#model-facts');
  const pct = (x) => `${(100 * x).toFixed(1)} %`;
  assert.match(facts, new RegExp(`Running ${p.arch} \\(ImageNet, 224×224 input\\)`));
  assert.ok(facts.includes(pct(sq.eval.original.top1)) && facts.includes(pct(sq.eval.fooled.top1)), facts);
  if (sq.eval.meets_target === false) assert.match(facts, /does not meet the fooling target/);
  await page.screenshot({ path: path.join(shots, 'cpu-photo.png'), fullPage: true });
  // Back to a gallery image: the gallery's model again.
  await page.click('#gallery button[data-set="gallery"][data-index="1"]');
  const g = await result(page, 3);
  assert.equal(g.maps.grad_cam.h, 8);
  assert.equal(g.model, chosen, 'the gallery model chosen before the photo');
  assert.equal(await page.$eval('#model', (s) => s.value), chosen);
  await page.close();
});

test('an uploaded file gives maps on the CPU path; a broken file shows an error and the page keeps working', async () => {
  const page = await open('?backend=cpu');
  const first = await result(page);
  await page.setInputFiles('#file', path.join(dist, 'gallery/dog_1.png'));
  const r = await result(page, 1);
  assert.equal(r.image, 'dog_1.png');
  assert.equal(r.class_source, 'original top-1');
  assert.notDeepEqual(r.maps.grad_cam.original, first.maps.grad_cam.original);
  await page.setInputFiles('#file', { name: 'broken.png', mimeType: 'image/png', buffer: Buffer.from('this is not an image') });
  await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
  assert.match(await page.textContent('#error'), /broken\.png/);
  await page.screenshot({ path: path.join(shots, 'bad-file.png'), fullPage: true });
  // A PNG header claiming 30000×30000 pixels is refused before decoding.
  const huge = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]).copy(huge, 0);
  huge.writeUInt32BE(30000, 16); huge.writeUInt32BE(30000, 20); huge[24] = 8; huge[25] = 2;
  huge.writeUInt32BE(zlib.crc32(huge.subarray(12, 29)), 29);
  await page.setInputFiles('#file', { name: 'huge.png', mimeType: 'image/png', buffer: huge });
  await page.waitForFunction(() => /huge\.png/.test(document.querySelector('#error')?.textContent ?? ''), null, { timeout: 30_000 });
  assert.match(await page.textContent('#error'), /30000/);
  // Still alive: the gallery works after the errors.
  await page.click('#gallery button[data-set="gallery"][data-index="2"]');
  const g = await result(page, 2);
  assert.equal(await page.isHidden('#error'), true);
  assert.ok(g.maps.grad_cam);
  await page.close();
});

test('the backend switch moves the computation to WebGPU and back to the CPU', async () => {
  const page = await open('?backend=cpu&interpreter=grad_cam&image=cat_1.png');
  const cpu = await result(page);
  assert.equal(cpu.backend, 'cpu');
  assert.match(page.workers().map((w) => w.url()).join(' '), /worker_cpu_loader\.js/);
  await page.selectOption('#backend', 'webgpu');
  const gpu = await result(page, 1);
  assert.equal(gpu.backend, 'webgpu');
  assert.equal(await page.getAttribute('body', 'data-backend'), 'webgpu');
  // The page replaced the CPU-only worker by the WebGPU one (and sent it the image again).
  assert.deepEqual(page.workers().map((w) => w.url().replace(/.*\//, '')), ['worker_loader.js']);
  assert.ok(maxAbsDiff(gpu.maps.grad_cam.fooled, cpu.maps.grad_cam.fooled) < 1e-3, 'same maps on both backends');
  await page.selectOption('#backend', 'cpu');
  const back = await result(page, 2);
  assert.equal(back.backend, 'cpu');
  assert.deepEqual(back.maps.grad_cam.fooled, cpu.maps.grad_cam.fooled, 'the same CPU maps after the round trip');
  assert.match(await page.textContent('#backend-status'), /CPU/);
  await page.close();
});

test('a folder without the WebGPU worker (the main job builds it last): the page runs on the CPU and says why', async () => {
  const page = await open('?backend=webgpu&interpreter=grad_cam&image=cat_1.png',
    (p) => p.route('**/worker_loader.js', (r) => r.fulfill({ status: 404, body: 'not found' })));
  const r = await result(page);
  assert.equal(r.backend, 'cpu');
  assert.equal(await page.getAttribute('body', 'data-backend'), 'cpu');
  assert.match(await page.textContent('#backend-status'), /CPU.*the WebGPU worker is not in this folder/);
  assert.deepEqual(page.workers().map((w) => w.url().replace(/.*\//, '')), ['worker_cpu_loader.js']);
  assert.ok(!page.urls.some((u) => /\/worker(_bg\.wasm|\.js)$/.test(u)), `fetched the WebGPU worker: ${page.urls}`);
  await page.close();
});

test('live fooling: a few steps in the page (CPU backend) change the map; reset restores the exported model', async () => {
  const page = await open('?backend=cpu&interpreter=grad_cam&image=cat_1.png');
  const before = await result(page);
  await page.selectOption('#live-fooling', 'location');
  await page.fill('#live-lambda', '10');
  await page.fill('#live-lr', '0.001');
  const t0 = Date.now();
  await page.click('#live-start');
  await page.waitForFunction(() => Number(document.body.dataset.liveSteps ?? 0) >= 4, null, { timeout: 240_000 });
  const steps = Number(await page.getAttribute('body', 'data-live-steps'));
  bench.live_cpu_steps_per_s = steps / ((Date.now() - t0) / 1000);
  await page.click('#live-stop');
  await page.waitForFunction(() => !document.body.dataset.live && !document.body.dataset.busy, null, { timeout: 240_000 });
  const r = JSON.parse(await page.textContent('#result-json'));
  assert.match(r.model, /^live location fooling of grad_cam/);
  assert.match(await page.textContent('#live-status'), /step \d+ +CE [0-9.]+ +L_F [0-9.]+/);
  const d = maxAbsDiff(r.maps.grad_cam.fooled, before.maps.grad_cam.original);
  assert.ok(d > 1e-4, `the live model's map moved away from the original's (max diff ${d})`);
  await page.screenshot({ path: path.join(shots, 'live.png'), fullPage: true });
  const runs = Number(await page.getAttribute('body', 'data-runs'));
  await page.click('#live-reset');
  const back = await result(page, runs);
  assert.equal(back.model, before.model);
  await page.close();
});

test('heavy work runs in a Web Worker: the page thread keeps ticking during maps and live fooling', async () => {
  const page = await open('?backend=cpu&interpreter=grad_cam&image=cat_1.png');
  await result(page);
  assert.equal(page.workers().length, 1, 'one compute worker');
  // The CPU path runs the CPU-only worker and never fetches the WebGPU worker's wasm.
  assert.match(page.workers()[0].url(), /worker_cpu_loader\.js$/);
  assert.ok(page.urls.some((u) => /worker_cpu_bg\.wasm$/.test(u)), 'the CPU worker wasm was fetched');
  assert.ok(!page.urls.some((u) => /\/worker_bg\.wasm$/.test(u)), `the CPU path fetched the WebGPU worker: ${page.urls}`);
  // A 20 ms heartbeat on the page's thread: any synchronous compute there shows up as a gap.
  await page.evaluate(() => {
    window.__gaps = [];
    let last = performance.now();
    window.__beat = setInterval(() => { const t = performance.now(); window.__gaps.push(t - last); last = t; }, 20);
  });
  await page.selectOption('#interpreter', 'lrp'); // input-level LRP: the slowest map
  await result(page, 1);
  await page.selectOption('#interpreter', 'grad_cam'); // live fooling trains a tap-level map
  await result(page, 2);
  await page.click('#live-start');
  await page.waitForFunction(() => Number(document.body.dataset.liveSteps ?? 0) >= 3, null, { timeout: 240_000 });
  await page.click('#live-stop');
  await page.waitForFunction(() => !document.body.dataset.live && !document.body.dataset.busy, null, { timeout: 240_000 });
  const gaps = await page.evaluate(() => { clearInterval(window.__beat); return window.__gaps; });
  const worst = Math.max(...gaps);
  bench.main_thread_worst_gap_ms = Math.round(worst);
  bench.main_thread_ticks = gaps.length;
  bench.main_thread_gaps_over_100ms = gaps.filter((g) => g > 100).map(Math.round);
  // One CPU live step takes ~1 s and input-level LRP ~0.3 s in wasm: on the page's thread either would
  // stall the heartbeat for that long.
  assert.ok(gaps.length > 20, `heartbeat ticks: ${gaps.length}`);
  assert.ok(worst < 500, `the page's thread stalled for ${worst.toFixed(0)} ms`);
  await page.close();
});

test('embed view: ?embed=1 renders the compact view with the requested interpreter', async () => {
  const m = fooled();
  const page = await open(`?embed=1&backend=cpu&model=${m.id}&interpreter=lrp_t&image=dog_1.png`);
  const r = await result(page);
  assert.equal(r.interpreter, 'lrp_t');
  assert.equal(r.image, 'dog 1');
  assert.equal(await page.isHidden('header'), true);
  assert.equal(await page.isVisible('#map-fooled'), true);
  await page.setViewportSize({ width: 640, height: 360 });
  await page.screenshot({ path: path.join(shots, 'embed.png') });
  await page.close();
  assert.deepEqual(pageErrors, []);
});
