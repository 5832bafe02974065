// Browser end-to-end tests: the real `pulseboard` binary on its embedded Kafka, the built
// frontend, and Debian's Chromium driven by Playwright. Started by `cargo xtask test`, which
// passes PULSEBOARD_BIN, PULSEBOARD_DIST, CHROMIUM and ARTIFACTS (screenshots go there).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  ARTIFACTS, browser, freePort, json, startServer, stopServer, tmpDir, until, value,
} from './harness.mjs';

async function collect(base, n, offset) {
  const now = Date.now();
  const events = Array.from({ length: n }, (_, i) => ({
    ts: now,
    type: i % 5 === 0 ? 'click' : 'pageview',
    visitor: `v-${(offset + i) % 37}`,
    session: `s-${(offset + i) % 53}`,
    url: ['/', '/pricing', '/docs', '/blog/launch'][i % 4],
    referrer: i % 3 === 0 ? 'https://news.example/' : undefined,
    country: ['DE', 'US', 'FR'][i % 3],
    device: i % 2 ? 'mobile' : 'desktop',
  }));
  const r = await fetch(`${base}/collect`, { method: 'POST', body: JSON.stringify(events) });
  assert.equal(r.status, 202, await r.text());
}



test('dashboard renders live charts whose totals equal the summary API', async () => {
  const port = await freePort();
  const server = await startServer({ port, dataDir: tmpDir('pb-data-'), demoRate: 0 });
  await collect(server.base, 200, 0);
  await until('the API to count 200 events', async () => (await json(`${server.base}/api/v1/summary?range=15m`)).events === 200);

  const ctx = await browser();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  const t0 = Date.now();
  await page.goto(`${server.base}/`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  const firstChartMs = Date.now() - t0;
  console.log(`time from navigation to first chart: ${firstChartMs} ms`);
  assert.ok((await page.locator('[data-testid="events-chart"] [data-testid="bar"]').count()) > 0, 'the chart has bars');
  await until('the dashboard to show 200 events', async () => (await value(page, 'total-events')) === 200);
  assert.equal(await page.textContent('[data-testid="connection-state"]'), 'live');

  // The numbers on screen change as events are produced, without a reload.
  await collect(server.base, 150, 200);
  await until('the dashboard to show 350 events', async () => (await value(page, 'total-events')) === 350);
  assert.ok((await page.locator('[data-testid="top-pages"]').innerText()).includes('/pricing'));

  // Totals equal the summary of the same range (uniques come from its HLL merge).
  const summary = await json(`${server.base}/api/v1/summary?range=15m`);
  assert.equal(summary.events, 350);
  await until('unique visitors to equal the summary', async () => (await value(page, 'unique-visitors')) === summary.unique_visitors, 15000);

  // The range selector loads history and keeps the live total.
  await page.click('[data-testid="range-1h"]');
  await until('the 1h range to show 350 events', async () => (await value(page, 'total-events')) === 350);
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  assert.deepEqual(errors, [], 'no page errors');
  await stopServer(server);
});

test('kiosk keeps running through a server kill and restart, without a reload', async () => {
  const port = await freePort();
  const dataDir = tmpDir('pb-data-');
  let server = await startServer({ port, dataDir, demoRate: 300 });
  const ctx = await browser();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/kiosk`);
  await page.waitForSelector('[data-testid="kiosk"]');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  await until('kiosk live with events', async () =>
    (await page.textContent('[data-testid="connection-state"]')) === 'live' && (await value(page, 'total-events')) > 0);
  // Full screen, no scrollbars.
  const overflow = await page.evaluate(() => [document.documentElement.scrollHeight <= innerHeight, document.documentElement.scrollWidth <= innerWidth]);
  assert.deepEqual(overflow, [true, true], 'the kiosk fits the screen');
  await page.evaluate(() => { window.__noReload = true; });

  await stopServer(server, 'SIGKILL');
  await until('the kiosk to notice', async () => (await page.textContent('[data-testid="connection-state"]')) !== 'live', 20000);
  await until('the stale banner', async () => (await page.locator('[data-testid="stale"]').count()) > 0, 20000);
  const before = await value(page, 'total-events');

  server = await startServer({ port, dataDir, demoRate: 300 });
  await until('the kiosk to reconnect', async () => (await page.textContent('[data-testid="connection-state"]')) === 'live', 60000);
  await until('new data after the restart', async () => (await value(page, 'total-events')) > before, 60000);
  await until('the stale banner to go', async () => (await page.locator('[data-testid="stale"]').count()) === 0, 20000);
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  await page.screenshot({ path: path.join(ARTIFACTS, 'kiosk.png') });
  await stopServer(server);
});

test('embed renders one panel alone', async () => {
  const port = await freePort();
  const server = await startServer({ port, dataDir: tmpDir('pb-data-'), demoRate: 300 });
  const ctx = await browser();
  const page = await ctx.newPage();
  await page.setViewportSize({ width: 640, height: 320 });
  await page.goto(`${server.base}/embed/events`);
  await page.waitForSelector('[data-testid="embed-events"]');
  await until('bars in the embedded chart', async () => (await page.locator('[data-testid="events-chart"] [data-testid="bar"]').count()) > 0);
  // The demo's late events (batched clients) revise closed windows: drawn in their own class.
  await until('a revised window in the API', async () =>
    (await json(`${server.base}/api/v1/windows?range=15m`)).windows.some((w) => w.state === 'revised'), 60000);
  await until('a revised bar, drawn distinctly', async () =>
    (await page.locator('[data-testid="events-chart"] [data-testid="bar"].revised').count()) > 0, 20000);
  assert.equal(await page.locator('[data-testid="top-pages"]').count(), 0, 'only the one panel');
  assert.equal(await page.locator('[data-testid^="range-"]').count(), 0, 'no controls');
  await page.screenshot({ path: path.join(ARTIFACTS, 'embed-events.png') });
  await page.goto(`${server.base}/embed/pages`);
  await until('the pages panel', async () => (await page.locator('[data-testid="top-pages"]').count()) > 0);
  await page.screenshot({ path: path.join(ARTIFACTS, 'embed-pages.png') });
  await stopServer(server);
});
