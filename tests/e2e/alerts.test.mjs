// Alerts in the browser: a rule from an --alerts file fires on real traffic and its banner
// appears on the dashboard and the kiosk (pushed over the socket, no reload), with the
// figures of GET /api/v1/alerts; it goes once the rule resolves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, stopServer, freePort, tmpDir, until, json, browser, open, collect, shot,
} from './harness.mjs';

test('a firing rule shows a banner on the dashboard and the kiosk, and it goes when resolved', async () => {
  const dir = tmpDir('pb-alerts-');
  const rules = path.join(dir, 'alerts.toml');
  fs.writeFileSync(rules, [
    '[[rule]]', 'name = "Traffic spike"', 'kind = "events_above"', 'threshold = 299', 'over = "10s"', 'suppress = "3s"',
  ].join('\n'));
  const port = await freePort();
  const server = await startServer({
    port,
    dataDir: path.join(dir, 'data'),
    args: ['--demo-rate', '0', '--no-demo-history', '--window', '1s', '--allowed-lateness', '200ms',
      '--alerts', rules, '--alerts-interval', '250ms'],
  });
  const ctx = await browser();
  const dash = await open(ctx, `${server.base}/`);
  const kiosk = await open(ctx, `${server.base}/kiosk`);
  assert.equal(await dash.locator('[data-testid="alert-banner"]').count(), 0, 'quiet: no banner');
  // Past the rule's start-up grace (its span and a window), then a burst of 300 events.
  await until('the rule evaluated', async () => (await json(`${server.base}/api/v1/alerts`)).rules[0].state === 'ok', 20000);
  const t0 = Date.now();
  await collect(server.base, 300);
  for (const [name, page] of [['dashboard', dash], ['kiosk', kiosk]]) {
    await until(`the banner on the ${name}`, async () => (await page.locator('[data-testid="alert-banner"]').count()) > 0, 20000);
  }
  console.log(`alert banner on screen ${Date.now() - t0} ms after the burst was posted`);
  const api = await json(`${server.base}/api/v1/alerts`);
  assert.equal(api.firing.length, 1, JSON.stringify(api));
  const firing = api.firing[0];
  assert.equal(firing.value, 300, 'every event of the burst in the span (it fires above 299)');
  for (const page of [dash, kiosk]) {
    assert.equal(await page.getAttribute('[data-testid="alert"]', 'data-rule'), 'Traffic spike');
    const text = await page.textContent('[data-testid="alert-banner"]');
    assert.ok(text.includes('Traffic spike') && text.includes(firing.message), text);
  }
  await shot(dash, 'dashboard-alert.png');
  await shot(kiosk, 'kiosk-alert.png');
  // Quiet for the suppression interval: resolved, the banner goes without a reload.
  for (const page of [dash, kiosk]) {
    await until('the banner to go', async () => (await page.locator('[data-testid="alert-banner"]').count()) === 0, 30000);
  }
  const after = await json(`${server.base}/api/v1/alerts`);
  assert.deepEqual(after.history.map((h) => h.state), ['resolved', 'firing']);
  assert.deepEqual([...dash.errors, ...kiosk.errors], []);
  await stopServer(server);
});
