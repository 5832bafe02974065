// Browser tests of sites: two sites on two origins include /pb.js (one names itself with
// data-site, the other is named by its host), people visit them, and the dashboard's site
// switcher separates them: each site's totals are exactly its own, the URL pins the site, a
// wall display opened with ?site= shows that site alone.
// Started by `cargo xtask test` like dashboard.test.mjs (PULSEBOARD_BIN, PULSEBOARD_DIST,
// CHROMIUM).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';
import {
  CHROMIUM, CHROMIUM_ARGS, freePort, json, open, openFresh, registerCleanup, serveHtml, shot,
  startServer, tmpDir, until, value,
} from './harness.mjs';

// A person's browser: HeadlessChrome's own user agent is a robot's, and dropped.
const USER_AGENT =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36';

// A site at `host`:`port` whose every path is a single-page app including pb.js.
async function startSite(host, port, pulseboard, dataSite) {
  const attr = dataSite ? ` data-site="${dataSite}"` : '';
  return serveHtml(host, port, `<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>site</title><script defer src="${pulseboard}/pb.js"${attr}></script>
</head><body><h1>site</h1></body></html>`);
}

// One visit of `url`, then `paths` navigated as a single-page app: 1 + paths.length page views.
async function visit(ctx, url, paths) {
  const page = await ctx.newPage();
  let posted = 0;
  page.on('requestfinished', (r) => {
    if (new URL(r.url()).pathname === '/collect') posted += 1;
  });
  await page.goto(url);
  await page.waitForFunction(() => typeof window.pulseboard === 'function');
  for (const p of paths) await page.evaluate((to) => history.pushState({}, '', to), p);
  await until(`${url}: its page views posted`, async () => posted === 1 + paths.length);
  await page.close();
}

test('two sites on two origins: the switcher shows each alone, exactly, and the URL pins it', async () => {
  const [pbPort, shopPort, blogPort] = [await freePort(), await freePort(), await freePort()];
  const pbBase = `http://127.0.0.1:${pbPort}`;
  const shop = await startSite('127.0.0.1', shopPort, pbBase, 'shop.example');
  // Named by its host: the script sends location.hostname.
  const blog = await startSite('localhost', blogPort, pbBase, null);
  const server = await startServer({
    port: pbPort,
    dataDir: tmpDir('pb-sites-'),
    demoRate: 0,
    args: ['--site-origin', new URL(shop).origin, '--site-origin', new URL(blog).origin],
  });
  const visitors = await chromium.launchPersistentContext(tmpDir('pb-chrome-'), {
    executablePath: CHROMIUM,
    headless: true,
    userAgent: USER_AGENT,
    args: CHROMIUM_ARGS,
  });
  registerCleanup(async () => visitors.close());
  await visit(visitors, `${shop}/`, ['/pricing', '/cart']);
  await visit(visitors, `${blog}/`, ['/post']);
  await visit(visitors, `${shop}/sale`, []);

  // The API: 6 events, 4 of the shop and 2 of the blog, each site's figures its own.
  // The summary's sites are as of the last checkpoint (its total is live): wait for both.
  const sites = await until('both sites counted', async () => {
    const s = await json(`${server.base}/api/v1/summary?range=15m`);
    const listed = (s.sites || []).reduce((n, x) => n + x.events, 0);
    return s.events === 6 && listed === 6 && s.sites.length === 2 ? s.sites : null;
  });
  assert.deepEqual(sites.map((s) => [s.site, s.events]), [['shop.example', 4], ['localhost', 2]]);
  const shopOnly = await json(`${server.base}/api/v1/summary?range=15m&site=shop.example&top=10`);
  assert.equal(shopOnly.events, 4);
  assert.deepEqual(shopOnly.top_urls.map((c) => c.key).sort(), ['/', '/cart', '/pricing', '/sale']);
  assert.equal(shopOnly.site.complete, true);

  // The dashboard: all sites, then each alone through the switcher.
  const page = await openFresh(`${server.base}/?range=15m`);
  await until('all sites: 6 events', async () => (await value(page, 'total-events')) === 6, 20000);
  await page.waitForSelector('[data-testid="site-switcher"]');
  const options = await page.$$eval('[data-testid="site-switcher"] option', (os) => os.map((o) => o.value));
  assert.deepEqual(options, ['', 'shop.example', 'localhost']);
  await page.selectOption('[data-testid="site-switcher"]', 'shop.example');
  await until('the shop alone: 4 events', async () => (await value(page, 'total-events')) === 4, 20000);
  assert.equal(new URL(page.url()).searchParams.get('site'), 'shop.example');
  await until('its pages only', async () => {
    const text = await page.textContent('main');
    return text.includes('/cart') && !text.includes('/post');
  }, 20000);
  await shot(page, 'sites-switcher.png');
  await page.selectOption('[data-testid="site-switcher"]', 'localhost');
  await until('the blog alone: 2 events', async () => (await value(page, 'total-events')) === 2, 20000);
  await page.selectOption('[data-testid="site-switcher"]', '');
  await until('all sites again', async () => (await value(page, 'total-events')) === 6, 20000);
  assert.equal(new URL(page.url()).searchParams.get('site'), null);
  // Back: the browser's history holds the site chosen before.
  await page.goBack();
  await until('back to the blog', async () => (await value(page, 'total-events')) === 2, 20000);

  // A wall display pinned to the shop names it and stays live with the shop's traffic only.
  const kiosk = await open(page.context(), `${server.base}/kiosk?site=shop.example`);
  await until('the kiosk shows the shop', async () => (await value(kiosk, 'total-events')) === 4, 20000);
  assert.equal(await kiosk.textContent('[data-testid="site-pinned"]'), 'Siteshop.example');
  await visit(visitors, `${blog}/again`, []);
  await visit(visitors, `${shop}/again`, []);
  await until('the shop grows by one, the blog not shown', async () => (await value(kiosk, 'total-events')) === 5, 20000);
  assert.deepEqual(page.errors, []);
  assert.deepEqual(kiosk.errors, []);
});
