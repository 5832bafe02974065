// Browser tests of custom properties: people on a site that includes /pb.js send events
// with properties (window.pulseboard('signup', {plan: 'pro'})); the Properties panel shows
// each value with its events and visitors, a key can be picked, a value's row shows that
// value's traffic alone, and a bad property never loses its event.
// Started by `cargo xtask test` like dashboard.test.mjs (PULSEBOARD_BIN, PULSEBOARD_DIST,
// CHROMIUM).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium } from 'playwright-core';
import {
  CHROMIUM, CHROMIUM_ARGS, freePort, json, openFresh, registerCleanup, serveHtml, shot, startServer,
  tmpDir, until, value,
} from './harness.mjs';

// A person's browser: HeadlessChrome's own user agent is a robot's, and dropped.
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

async function startSite(port, pulseboard) {
  return serveHtml('127.0.0.1', port, `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>shop</title><script defer src="${pulseboard}/pb.js" data-site="shop.example"></script>
</head><body><h1>shop</h1></body></html>`);
}

// Person `n` (a browser context of their own, and a browser version of their own: the
// cookieless visitor id is of the site, the address and the user agent): a page view,
// then each event of `sends` ([type, props]) through the script's API; waits until every
// one was posted.
async function person(browser, n, url, sends) {
  const ctx = await browser.newContext({ userAgent: USER_AGENT.replace('124.0.0.0', `124.0.0.${n}`) });
  const page = await ctx.newPage();
  let posted = 0;
  page.on('requestfinished', (r) => {
    if (new URL(r.url()).pathname === '/collect') posted += 1;
  });
  await page.goto(url);
  await page.waitForFunction(() => typeof window.pulseboard === 'function');
  for (const [type, props] of sends) {
    await page.evaluate(([t, p]) => window.pulseboard(t, p), [type, props]);
  }
  await until(`${url}: its events posted`, async () => posted === 1 + sends.length);
  await ctx.close();
}

// The Properties panel's rows: [value, events, visitors].
async function rows(page) {
  return page.$$eval('[data-testid="property-values"] li[data-key]', (ls) =>
    ls.map((l) => [l.dataset.key, Number(l.dataset.count), Number(l.dataset.visitors)]));
}

test('the Properties panel shows each value with its events and visitors, and filters by one', async () => {
  const [pbPort, shopPort] = [await freePort(), await freePort()];
  const pbBase = `http://127.0.0.1:${pbPort}`;
  const shop = await startSite(shopPort, pbBase);
  const server = await startServer({
    port: pbPort,
    dataDir: tmpDir('pb-props-'),
    demoRate: 0,
    args: ['--site-origin', shop, '--property', 'plan', '--property', 'theme'],
  });
  // Playwright gives the browser a fresh profile of its own.
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  registerCleanup(async () => browser.close());
  // Three people sign up on pro (one twice), one on free; themes on some events; one
  // sends a plan that is an object (dropped, its event kept) and one a number.
  await person(browser, 1, `${shop}/`, [['signup', { plan: 'pro', theme: 'dark' }], ['upgrade', { plan: 'pro' }]]);
  await person(browser, 2, `${shop}/`, [['signup', { plan: 'pro', theme: 'light' }]]);
  await person(browser, 3, `${shop}/`, [['signup', { plan: 'free' }]]);
  await person(browser, 4, `${shop}/pricing`, [['signup', { plan: { tier: 'pro' } }], ['click', { plan: 3 }]]);

  // The API: 4 page views + 6 events; plan: pro 3 events of 2 people, free 1, "3" 1.
  const plan = await until('plan counted', async () => {
    const s = await json(`${server.base}/api/v1/summary?range=15m`);
    const p = (s.properties || []).find((x) => x.key === 'plan');
    return s.events === 10 && p && p.events === 5 ? p : null;
  }, 30000);
  assert.deepEqual(plan.values.map((v) => [v.value, v.events, v.unique_visitors]),
    [['pro', 3, 2], ['3', 1, 1], ['free', 1, 1]]);
  assert.equal(plan.complete, true);
  const metrics = await (await fetch(`${server.base}/metrics`)).text();
  assert.match(metrics, /pulseboard_props_rejected_total\{reason="bad_value"\} 1/);

  // The dashboard's panel: the first key's values, then the other key picked.
  const page = await openFresh(`${server.base}/?range=15m`);
  await page.waitForSelector('[data-testid="property-values"]');
  await until('the panel lists plan', async () =>
    JSON.stringify(await rows(page)) === JSON.stringify([['pro', 3, 2], ['3', 1, 1], ['free', 1, 1]]), 20000);
  await page.locator('[data-testid="properties"]').scrollIntoViewIfNeeded();
  await shot(page, 'properties-panel.png');
  await page.selectOption('[data-testid="property-key"]', 'theme');
  await until('the panel lists theme', async () =>
    JSON.stringify(await rows(page)) === JSON.stringify([['dark', 1, 1], ['light', 1, 1]]), 20000);
  await page.selectOption('[data-testid="property-key"]', 'plan');
  await page.waitForSelector('[data-testid="property-values"] li[data-key="pro"]');

  // A value's row: that value's traffic alone, in the URL too; the panel says why it
  // lists nothing then.
  await page.click('[data-testid="property-values"] li[data-key="pro"]');
  await until('pro alone: 3 events', async () => (await value(page, 'total-events')) === 3, 20000);
  assert.equal(new URL(page.url()).searchParams.get('filter'), 'prop.plan:pro');
  const note = await page.textContent('[data-testid="property-empty"]');
  assert.match(note, /clear the segment/);
  // Download CSV: the view on screen (pro's segment) as a file whose rows add up to it.
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.click('[data-testid="download-csv"]'),
  ]);
  assert.match(download.suggestedFilename(), /^pulseboard-.*\.csv$/);
  const lines = fs.readFileSync(await download.path(), 'utf8').trim().split('\r\n');
  const header = lines[0].split(',');
  assert.deepEqual(header.slice(0, 4), ['start', 'end', 'state', 'events']);
  const events = lines.slice(1).reduce((n, l) => n + Number(l.split(',')[3]), 0);
  assert.equal(events, 3, lines.join('\n'));
  // Opened from its URL, the segment holds.
  const again = await openFresh(`${server.base}/?range=15m&filter=prop.plan%3Afree`);
  await until('free alone: 1 event', async () => (await value(again, 'total-events')) === 1, 20000);
  assert.deepEqual(page.errors, []);
  assert.deepEqual(again.errors, []);
});
