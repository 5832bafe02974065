// The screenshots of docs/dashboard.md and the README (docs/screenshots), not part of the suite (no .test.mjs):
//   cd tests/e2e && SCREENS=../../docs/screenshots PULSEBOARD_BIN=... PULSEBOARD_DIST=../../dist \
//     CHROMIUM=/usr/bin/chromium node --test screenshots.mjs
// The embedded demo at 200 events/s, an alert rule, an annotation.
import { test } from 'node:test';
import fs from 'node:fs';
import path from 'node:path';
import {
  startServer, freePort, tmpDir, until, json, browser, open,
} from './harness.mjs';

const OUT = process.env.SCREENS;

test('merged screenshots', async () => {
  const port = await freePort();
  const dataDir = tmpDir('pb-shots-');
  const alerts = path.join(dataDir, 'alerts.toml');
  fs.writeFileSync(alerts, `
[[rule]]
name = "Busy site"
kind = "events_above"
threshold = 500
over = "10s"
suppress = "1m"
`);
  const server = await startServer({ port, dataDir, demoRate: 200, args: ['--alerts', alerts, '--alerts-interval', '1s'] });
  await until('demo history a day back', async () => {
    const d = await json(`${server.base}/api/v1/summary?range=15m&compare=1d`);
    const u = await json(`${server.base}/api/v1/summary?range=15m&compare=7d&filter=country:US`);
    return d.compare.figures.events > 0 && u.compare.figures.events > 0;
  }, 300000);
  const r = await fetch(`${server.base}/api/v1/annotations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ts: Date.now() - 4 * 60000, text: 'Deploy v2.3' }),
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`annotation: ${r.status}`);
  await until('the alert to fire', async () => (await json(`${server.base}/api/v1/alerts`)).firing.length > 0, 60000);
  const ctx = await browser();
  const shots = [
    ['/?compare=1d', 'dashboard-compare-annotation-alert.png', true],
    ['/?compare=7d&filter=country:US', 'dashboard-filter-us-compare-7d.png', true],
    ['/kiosk?compare=1d', 'kiosk-compare-annotation-alert.png', false],
    ['/kiosk?filter=device:mobile', 'kiosk-filter-mobile.png', false],
    ['/?filter=country:KR', 'dashboard-filter-kr-incomplete.png', true],
    ['/embed/events?compare=1d', 'embed-events-compare.png', false],
  ];
  for (const [url, name, full] of shots) {
    const page = await open(ctx, `${server.base}${url}`);
    // Not a test: give the live charts a few pushes to fill before the picture.
    await new Promise((res) => setTimeout(res, 4000));
    await page.screenshot({ path: path.join(OUT, name), fullPage: full });
    await page.close();
  }
});
