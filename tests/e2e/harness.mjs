// Shared harness of the browser tests: temporary directories and free ports removed and
// stopped after the file's tests, polling, the real `pulseboard` binary with extra
// arguments, Chromium. Started by `cargo xtask test` (PULSEBOARD_BIN, PULSEBOARD_DIST,
// CHROMIUM, ARTIFACTS).

import http from 'node:http';
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const BIN = process.env.PULSEBOARD_BIN;
export const DIST = process.env.PULSEBOARD_DIST;
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARTIFACTS = process.env.ARTIFACTS || path.resolve('artifacts');
fs.mkdirSync(ARTIFACTS, { recursive: true });

const cleanups = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

// Run `f` (async) after the file's tests, in reverse order of registration.
export function registerCleanup(f) {
  cleanups.push(f);
}

export function tmpDir(prefix) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  cleanups.push(async () => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Poll `f` until it returns a truthy value; fail with `what` after `ms`.
export async function until(what, f, ms = 30000) {
  const deadline = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const shown = last instanceof Error ? String(last) : (JSON.stringify(last) ?? String(last));
      throw new Error(`timed out waiting for ${what} (last: ${shown})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Start the binary on the embedded broker (`demoRate` events/s of demo traffic, when
// given) with `args`; resolves once /healthz answers.
export async function startServer({ port, dataDir, demoRate, args = [] }) {
  assert.ok(BIN && fs.existsSync(BIN), `PULSEBOARD_BIN (${BIN}) must be the built binary`);
  const rate = demoRate === undefined ? [] : ['--demo-rate', String(demoRate)];
  const proc = spawn(
    BIN,
    ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--static-dir', DIST, ...rate, ...args],
    { env: { ...process.env, RUST_LOG: 'warn' }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise((r) => proc.once('exit', r));
  const server = { proc, exited, base: `http://127.0.0.1:${port}` };
  cleanups.push(async () => stopServer(server, 'SIGKILL'));
  await until('the server to answer /healthz', async () => (await fetch(`${server.base}/healthz`)).ok);
  return server;
}

export async function stopServer(server, signal = 'SIGTERM') {
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill(signal);
  await server.exited;
}

export async function json(url) {
  const r = await fetch(url);
  assert.equal(r.status, 200, url);
  return r.json();
}

// POST `n` events to /collect (stamped with the server's receive time).
export async function collect(base, n) {
  const events = Array.from({ length: n }, (_, i) => ({
    type: i % 5 === 0 ? 'click' : 'pageview',
    visitor: `v-${i % 41}`,
    url: ['/', '/pricing', '/docs'][i % 3],
  }));
  const r = await fetch(`${base}/collect`, { method: 'POST', body: JSON.stringify(events) });
  assert.equal(r.status, 202, await r.text());
}

// Chromium's flags in every test (a fresh profile comes with each launch).
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// A web site at `host`:`port` (bound to 127.0.0.1) answering `html` on every path: its base URL.
export async function serveHtml(host, port, html) {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(async () => new Promise((r) => server.close(r)));
  return `http://${host}:${port}`;
}

export async function browser() {
  const ctx = await chromium.launchPersistentContext(tmpDir('pb-chrome-'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: CHROMIUM_ARGS,
  });
  cleanups.push(async () => ctx.close());
  return ctx;
}

// A page of the app at `url`, once its first snapshot is drawn; page errors are collected.
export async function open(ctx, url) {
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  return page;
}

// A page at `url` in a fresh browser profile (no cookie from another page); once drawn,
// or, with `{ drawn: false }`, as soon as it loads (it may show a screen instead of the app).
export async function openFresh(url, { drawn = true } = {}) {
  const ctx = await browser();
  if (drawn) return open(ctx, url);
  const page = await ctx.newPage();
  page.errors = [];
  page.on('pageerror', (e) => page.errors.push(String(e)));
  await page.goto(url);
  return page;
}

export async function value(page, testid) {
  const v = await page.getAttribute(`[data-testid="${testid}"]`, 'data-value');
  return v === null ? null : Number(v);
}

// Screenshots for people: also to SCREENS when set (the closing note).
export async function shot(page, name) {
  await page.screenshot({ path: path.join(ARTIFACTS, name) });
  if (process.env.SCREENS) {
    fs.mkdirSync(process.env.SCREENS, { recursive: true });
    await page.screenshot({ path: path.join(process.env.SCREENS, name) });
  }
}

// The name some test files use for `registerCleanup`.
export const cleanup = registerCleanup;
