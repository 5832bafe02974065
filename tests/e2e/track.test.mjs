// Browser tests of the tracking script: a page on ANOTHER origin (a tiny node server on its
// own port) includes /pb.js from Pulseboard, navigates as a single-page app and fires a
// custom event; Pulseboard (embedded, no demo traffic, --site-origin of that page) counts
// exactly those. A page with Do-Not-Track or Global Privacy Control sends nothing.
// Started by `cargo xtask test` like dashboard.test.mjs (PULSEBOARD_BIN, CHROMIUM).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { BIN, CHROMIUM, freePort, registerCleanup, tmpDir, until } from './harness.mjs';

// A person's browser: HeadlessChrome's own user agent is a robot's, and dropped.
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

async function startPulseboard(port, siteOrigin) {
  assert.ok(BIN && fs.existsSync(BIN), `PULSEBOARD_BIN (${BIN}) must be the built binary`);
  const proc = spawn(
    BIN,
    ['--listen', `127.0.0.1:${port}`, '--data-dir', tmpDir('pb-track-'), '--demo-rate', '0', '--site-origin', siteOrigin],
    { env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise((r) => proc.once('exit', r));
  registerCleanup(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const base = `http://127.0.0.1:${port}`;
  await until('Pulseboard to answer /healthz', async () => (await fetch(`${base}/healthz`)).ok);
  return base;
}

// The tracked site: every path is the same single-page app, which includes pb.js from
// Pulseboard with the stub that queues calls made before the script runs.
async function startSite(port, pulseboard, attrs = '') {
  const html = `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>shop</title>
<script>window.pulseboard=window.pulseboard||function(){(window.pulseboard.q=window.pulseboard.q||[]).push(arguments)};
window.pulseboard('queued');</script>
<script defer src="${pulseboard}/pb.js" data-site="shop.example"${attrs}></script>
</head><body><h1>shop</h1></body></html>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  registerCleanup(async () => new Promise((r) => server.close(r)));
  return `http://127.0.0.1:${port}`;
}

async function browser() {
  const ctx = await chromium.launchPersistentContext(tmpDir('pb-chrome-'), {
    executablePath: CHROMIUM,
    headless: true,
    userAgent: USER_AGENT,
    viewport: { width: 1400, height: 900 },
    screen: { width: 1400, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  registerCleanup(async () => ctx.close());
  return ctx;
}

// A page whose posts to /collect are counted.
async function trackedPage(ctx) {
  const page = await ctx.newPage();
  const posts = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/collect') posts.push(r.postData());
  });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { page, posts, errors };
}

// The script has run: the stub is replaced by the real function.
async function scriptLoaded(page) {
  await page.waitForFunction(() => typeof window.pulseboard === 'function' && !window.pulseboard.q);
}

async function summary(base) {
  const r = await fetch(`${base}/api/v1/summary?range=15m&top=50`);
  assert.equal(r.status, 200);
  return r.json();
}

// Do-Not-Track set before any script of the page runs.
const withDnt = () => Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' });

const counts = (list) => Object.fromEntries((list || []).map((c) => [c.key, c.count]));

test('pb.js on another origin counts the pageviews of a single-page app and its events; DNT and GPC send nothing', async () => {
  const [pbPort, sitePort] = [await freePort(), await freePort()];
  const siteOrigin = `http://127.0.0.1:${sitePort}`;
  const pulseboard = await startPulseboard(pbPort, siteOrigin);
  const site = await startSite(sitePort, pulseboard);
  assert.notEqual(new URL(site).origin, new URL(pulseboard).origin);
  const ctx = await browser();

  // Do-Not-Track, then Global Privacy Control: the script runs and sends nothing.
  for (const [name, init] of [
    ['doNotTrack', withDnt],
    ['globalPrivacyControl', () => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true })],
  ]) {
    const { page, posts, errors } = await trackedPage(ctx);
    await page.addInitScript(init);
    await page.goto(`${site}/private-${name}`);
    await scriptLoaded(page);
    assert.ok(await page.evaluate(() => navigator.doNotTrack === '1' || navigator.globalPrivacyControl === true), name);
    await page.evaluate(() => {
      history.pushState({}, '', location.pathname + '/next');
      window.pulseboard('signup', { plan: 'pro' });
    });
    // A request the page makes after those calls has been seen, so theirs would have been.
    await page.evaluate(async () => fetch('/after'));
    assert.deepEqual(posts, [], `${name}: nothing is sent`);
    assert.deepEqual(errors, []);
    await page.close();
  }

  // The tracked visit: load, two pushState navigations, one hash route, a custom event.
  const { page, posts, errors } = await trackedPage(ctx);
  await page.goto(`${site}/`);
  await scriptLoaded(page);
  await page.evaluate(() => {
    history.pushState({}, '', '/a');
    history.pushState({}, '', '/b');
    history.replaceState({}, '', '/b'); // same URL: not a navigation
  });
  await page.evaluate(() => new Promise((resolve) => {
    window.addEventListener('hashchange', () => resolve(), { once: true });
    location.hash = '#/c';
  }));
  await page.evaluate(() => window.pulseboard('signup', { plan: 'pro' }));
  await until('the browser to post 6 events', async () => posts.length === 6);
  const sent = posts.map((p) => JSON.parse(p));
  assert.deepEqual(
    sent.map((e) => [e.type, e.url]),
    [['pageview', '/'], ['queued', '/'], ['pageview', '/a'], ['pageview', '/b'], ['pageview', '/b#/c'], ['signup', '/b#/c']],
  );
  assert.equal(sent[2].referrer, `${site}/`, 'an SPA navigation refers to the previous URL');
  assert.deepEqual(sent[5].props, { plan: 'pro' });
  assert.ok(sent.every((e) => e.site === 'shop.example' && e.screen === 'desktop' && !('visitor' in e)));
  assert.deepEqual(errors, []);

  // Pulseboard shows exactly those.
  const s = await until('the summary to count the visit', async () => {
    const s = await summary(pulseboard);
    return s.events === 6 ? s : null;
  });
  assert.deepEqual(s.by_type, { pageview: 4, signup: 1, queued: 1 });
  assert.deepEqual(counts(s.top_urls), { '/': 1, '/a': 1, '/b': 1, '/b#/c': 1 });
  assert.equal(s.unique_visitors, 1, 'one visitor without a cookie');
  assert.deepEqual(counts(s.devices), { desktop: 6 });
});

test('data-respect-dnt="false" sends despite Do-Not-Track', async () => {
  const [pbPort, sitePort] = [await freePort(), await freePort()];
  const pulseboard = await startPulseboard(pbPort, `http://127.0.0.1:${sitePort}`);
  const site = await startSite(sitePort, pulseboard, ' data-respect-dnt="false"');
  const ctx = await browser();
  const { page, posts } = await trackedPage(ctx);
  await page.addInitScript(withDnt);
  await page.goto(`${site}/consented`);
  await scriptLoaded(page);
  assert.equal(await page.evaluate(() => navigator.doNotTrack), '1');
  await until('the browser to post the pageview and the queued event', async () => posts.length === 2);
  const s = await until('the summary to count them', async () => {
    const s = await summary(pulseboard);
    return s.events === 2 ? s : null;
  });
  assert.deepEqual(s.by_type, { pageview: 1, queued: 1 });
  assert.deepEqual(counts(s.top_urls), { '/consented': 1 });
});
