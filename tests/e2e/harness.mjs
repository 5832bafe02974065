// What the browser tests share: the real `pulseboard` binary on its embedded Kafka, the
// built frontend, and Debian's Chromium driven by Playwright, cleaned up after each test
// file. `cargo xtask test` passes PULSEBOARD_BIN, PULSEBOARD_DIST, CHROMIUM and ARTIFACTS
// (screenshots go there).

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

// Run `f` (async) after the test file, before what was registered earlier.
export function cleanup(f) {
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
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last) ?? last})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Start the binary (with `args` after the usual ones); resolves once it serves /healthz.
export async function startServer({ port, dataDir, demoRate, args = [] }) {
  assert.ok(BIN && fs.existsSync(BIN), `PULSEBOARD_BIN (${BIN}) must be the built binary`);
  const proc = spawn(
    BIN,
    ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--static-dir', DIST, '--demo-rate', String(demoRate), ...args],
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

export async function browser() {
  const ctx = await chromium.launchPersistentContext(tmpDir('pb-chrome-'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  cleanups.push(async () => ctx.close());
  return ctx;
}

// The `data-value` of `[data-testid=<testid>]` as a number (null without one).
export async function value(page, testid) {
  const v = await page.getAttribute(`[data-testid="${testid}"]`, 'data-value');
  return v === null ? null : Number(v);
}
