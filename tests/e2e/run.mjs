// Browser end-to-end tests: serve the trunk build on 127.0.0.1, open it in Debian's headless
// Chromium through playwright-core (no browser download), and check what a person would see.
// Usage: node run.mjs DIST_DIR   (screenshots go to ../../target/e2e/)
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const dist = path.resolve(process.argv[2] ?? process.env.FOOLMAP_DIST ?? '../../target/dist');
const shots = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../target/e2e');
fs.mkdirSync(shots, { recursive: true });

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm', '.css': 'text/css',
  '.json': 'application/json', '.png': 'image/png', '.jpg': 'image/jpeg', '.safetensors': 'application/octet-stream' };

let server, base, browser;

before(async () => {
  assert.ok(fs.existsSync(path.join(dist, 'index.html')), `no build at ${dist}`);
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
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--enable-unsafe-webgpu'],
  });
});

after(async () => {
  await browser?.close();
  server?.close();
});

test('the page loads and lists every architecture of the registry', async () => {
  const page = await browser.newPage();
  const requests = [];
  const errors = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + '/');
  await page.waitForSelector('#archs tr[data-arch]', { timeout: 60_000 });
  const ids = await page.$$eval('#archs tr[data-arch]', (rows) => rows.map((r) => r.dataset.arch));
  assert.ok(ids.includes('resnet20') && ids.includes('squeezenet1_0') && ids.includes('densenet121'), ids.join(','));
  assert.equal(ids.length, 22);
  const tap = await page.$eval('#archs tr[data-arch="vgg19"] td:nth-child(3)', (td) => td.textContent);
  assert.equal(tap, 'features.34');
  // torchvision's published parameter counts.
  const params = await page.$eval('#archs tr[data-arch="resnet50"] td:nth-child(4)', (td) => td.textContent);
  assert.equal(params, '25557032');
  assert.match(await page.textContent('#status'), /22 architectures/);
  await page.screenshot({ path: path.join(shots, 'architectures.png'), fullPage: true });
  assert.deepEqual(errors, []);
  const foreign = requests.filter((u) => !u.startsWith(base));
  assert.deepEqual(foreign, [], 'requests left the origin');
  await page.close();
});
