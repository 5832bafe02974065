// Browser tests of segments, goals and visitors now: a click on a country filters every
// panel and puts the filter in the URL, live updates keep the segment, the kiosk and the
// embeds are pinned to a segment by their URL; every figure checked against the JSON API
// (itself checked against an independent recomputation in tests/segments.rs). With
// SCREENS set, the screenshots are also written there.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  ARTIFACTS, browser, freePort, json, startServer, stopServer, tmpDir, until, value,
} from './harness.mjs';

const GOALS = ['--goal', 'signup', '--goal', 'pricing=url:/pricing'];

async function screenshot(page, name, options = {}) {
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, ...options });
  if (process.env.SCREENS) {
    fs.mkdirSync(process.env.SCREENS, { recursive: true });
    fs.copyFileSync(file, path.join(process.env.SCREENS, name));
  }
}

// `n` events over HTTP: countries DE/US/FR in turn (so DE is every third), two devices,
// some signups and pricing page views, referrers from two sites.
async function collect(base, n, offset, country) {
  const events = Array.from({ length: n }, (_, i) => ({
    type: i % 7 === 0 ? 'signup' : i % 5 === 0 ? 'click' : 'pageview',
    visitor: `v-${(offset + i) % 41}`,
    session: `s-${(offset + i) % 59}`,
    url: ['/', '/pricing', '/docs', '/blog/launch'][i % 4],
    referrer: i % 3 === 0 ? 'https://news.example/a' : i % 3 === 1 ? 'https://www.search.example/q' : undefined,
    country: country || ['DE', 'US', 'FR'][i % 3],
    device: i % 2 ? 'mobile' : 'desktop',
  }));
  const r = await fetch(`${base}/collect`, { method: 'POST', body: JSON.stringify(events) });
  assert.equal(r.status, 202, await r.text());
}

// The goals table as the page shows it: {name: {completions, converting, rate}}.
async function goals(page) {
  return page.$$eval('[data-testid="goals"] tbody tr', (rows) => Object.fromEntries(rows.map((r) => [
    r.dataset.goal,
    { completions: Number(r.dataset.completions), converting: r.dataset.converting === undefined ? null : Number(r.dataset.converting), rate: r.dataset.rate === undefined ? null : Number(r.dataset.rate) },
  ])));
}

// The API's goals in the same shape.
function apiGoals(summary) {
  return Object.fromEntries(summary.goals.map((g) => [g.name, { completions: g.completions, converting: g.converting_visitors, rate: g.conversion_rate }]));
}

// Equal goals: the same names in the same order, counts exactly, rates to 1e-9 (the page's
// JSON parser may round the last digit of a float differently).
function sameGoals(a, b) {
  const [ka, kb] = [Object.keys(a), Object.keys(b)];
  return JSON.stringify(ka) === JSON.stringify(kb) && ka.every((k) =>
    a[k].completions === b[k].completions && a[k].converting === b[k].converting
      && a[k].rate !== null && Math.abs(a[k].rate - b[k].rate) < 1e-9);
}

async function keys(page, testid) {
  return page.$$eval(`[data-testid="${testid}"] li[data-key]`, (rows) => rows.map((r) => r.dataset.key));
}

// A top list as the page shows it: [[key, count], ...].
async function rows(page, testid) {
  return page.$$eval(`[data-testid="${testid}"] li[data-key]`, (rs) => rs.map((r) => [r.dataset.key, Number(r.dataset.count)]));
}

async function barsTotal(page) {
  return page.$$eval('[data-testid="events-chart"] [data-testid="bar"]', (bars) => bars.reduce((n, b) => n + Number(b.dataset.events), 0));
}

// Every panel of `page` shows what the API says of `query` (`''` or `&filter=...`).
async function panelsEqualApi(page, base, query, what) {
  const summary = await json(`${base}/api/v1/summary?range=15m${query}`);
  await until(`${what}: total events ${summary.events}`, async () => (await value(page, 'total-events')) === summary.events, 20000);
  await until(`${what}: unique visitors`, async () => (await value(page, 'unique-visitors')) === summary.unique_visitors, 20000);
  await until(`${what}: the chart's bars`, async () => (await barsTotal(page)) === summary.events, 20000);
  await until(`${what}: the countries`, async () =>
    JSON.stringify(await keys(page, 'top-countries')) === JSON.stringify(summary.countries.map((c) => c.key)), 20000);
  await until(`${what}: the goals`, async () => {
    const s = await json(`${base}/api/v1/summary?range=15m${query}`);
    return sameGoals(await goals(page), apiGoals(s));
  }, 20000);
  await until(`${what}: unique sessions`, async () => (await value(page, 'unique-sessions')) === summary.unique_sessions, 20000);
  // Every top list, key and count, as far as the page shows it.
  for (const [testid, field] of [['top-pages', 'top_urls'], ['top-referrers', 'top_referrers'], ['top-countries', 'countries'], ['top-devices', 'devices']]) {
    await until(`${what}: ${testid}`, async () => {
      const shown = await rows(page, testid);
      const api = summary[field].slice(0, shown.length).map((c) => [c.key, c.count]);
      return shown.length > 0 && JSON.stringify(shown) === JSON.stringify(api);
    }, 20000);
  }
  // The pipeline's figures since start, of all traffic, whatever the filter.
  await until(`${what}: late and dead-lettered`, async () => {
    const st = await json(`${base}/api/v1/status`);
    return (await value(page, 'late-events')) === st.late_events_total
      && (await value(page, 'dead-letters')) === st.dead_letters_total;
  }, 20000);
  // Each headline figure says what it is on hover.
  const definitions = await page.$$eval('.totals > .kpi, .totals .kpi-with-change > .kpi', (ks) => ks.map((k) => k.getAttribute('title') || ''));
  assert.ok(definitions.length >= 6 && definitions.every((d) => d.length > 20), JSON.stringify(definitions));
  await until(`${what}: visitors now`, async () => {
    const now = await json(`${base}/api/v1/now?${query.slice(1)}`);
    return (await value(page, 'visitors-now')) === now.visitors
      && JSON.stringify(await keys(page, 'now-pages')) === JSON.stringify(now.pages.slice(0, 6).map((c) => c.key));
  }, 20000);
  return summary;
}

// A server without demo traffic that has counted 300 events of `collect`, and a browser
// page that records its errors.
async function serverAndPage() {
  const port = await freePort();
  const server = await startServer({ port, dataDir: tmpDir('pb-data-'), demoRate: 0, args: GOALS });
  await collect(server.base, 300, 0);
  await until('the API to count 300 events', async () => (await json(`${server.base}/api/v1/summary?range=15m`)).events === 300);
  const page = await (await browser()).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  return { server, page, errors };
}

test('a click on a country shows that segment on every panel, in the URL, and live', async () => {
  const { server, page, errors } = await serverAndPage();
  await page.goto(`${server.base}/`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });

  // Unfiltered: visitors now (with its definition on hover) and the goals equal the API.
  const all = await panelsEqualApi(page, server.base, '', 'all traffic');
  const title = await page.getAttribute('.kpi-now', 'title');
  assert.match(title, /Visitors now: distinct visitors .* last 5m/, title);
  assert.ok((await goals(page)).signup.completions > 0, 'signups are conversions');
  await screenshot(page, 'segments-dashboard-goals-visitors-now.png', { fullPage: true });

  // A click on DE: the URL carries the filter, and every panel shows the segment.
  await page.click('[data-testid="top-countries"] li[data-key="DE"]');
  await until('the URL to carry the filter', async () => new URL(page.url()).searchParams.get('filter') === 'country:DE');
  assert.equal(await page.getAttribute('[data-testid="filter-bar"]', 'data-filter'), 'country:DE');
  const de = await panelsEqualApi(page, server.base, '&filter=country:DE', 'country:DE');
  assert.equal(de.events, 100, 'every third event is from DE');
  assert.ok(de.events < all.events);
  assert.deepEqual(await keys(page, 'top-countries'), ['DE']);
  assert.equal(de.segment.complete, true, 'three countries fit in the windows');
  assert.equal(await page.locator('[data-testid="segment-note"]').count(), 0, 'no incomplete note');

  // Live: new DE events reach the filtered page without a reload; others do not count.
  await page.evaluate(() => { window.__noReload = true; });
  await collect(server.base, 30, 300, 'DE');
  await collect(server.base, 30, 330, 'US');
  await until('the filtered total to grow by 30', async () => (await value(page, 'total-events')) === 130, 20000);
  await panelsEqualApi(page, server.base, '&filter=country:DE', 'country:DE, live');
  assert.equal(await page.evaluate(() => window.__noReload), true, 'the page was not reloaded');
  await screenshot(page, 'segments-dashboard-filter-country-DE.png', { fullPage: true });

  // A device and a referrer filter the same way; the referrer by its domain.
  await page.click('[data-testid="filter-clear"]');
  await until('the filter to go', async () => new URL(page.url()).searchParams.get('filter') === null);
  await panelsEqualApi(page, server.base, '', 'all traffic again');
  await page.click('[data-testid="top-referrers"] li[data-key="https://www.search.example/q"]');
  await until('a referrer filter', async () => new URL(page.url()).searchParams.get('filter') === 'referrer:search.example');
  await panelsEqualApi(page, server.base, '&filter=referrer:search.example', 'referrer:search.example');

  // Back goes to the previous segment's view.
  await page.goBack();
  await until('back to all traffic', async () => (await page.locator('[data-testid="filter-bar"]').count()) === 0);
  await panelsEqualApi(page, server.base, '', 'all traffic after back');
  assert.deepEqual(errors, [], 'no page errors');
  await stopServer(server);
});

test('the kiosk and the embeds are pinned to a segment by their URL', async () => {
  const { server, page, errors } = await serverAndPage();

  await page.goto(`${server.base}/kiosk?filter=country:DE`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  // The segment's figures once settled: an open window's segment tables come with its
  // checkpoint, a second after its headline figures (100 of the 300 events are DE's).
  let de;
  await until('the API to hold the segment whole', async () => {
    de = await json(`${server.base}/api/v1/summary?range=15m&filter=country:DE`);
    return de.events === 100 && de.segment.complete === true;
  });
  await until('the kiosk shows the segment', async () => (await value(page, 'total-events')) === de.events);
  await until('its unique visitors', async () => (await value(page, 'unique-visitors')) === de.unique_visitors);
  // Every headline figure of the kiosk says what it is on hover.
  const kioskDefinitions = await page.$$eval('.k-kpis .kpi', (ks) => ks.map((k) => k.getAttribute('title') || ''));
  assert.ok(kioskDefinitions.length === 6 && kioskDefinitions.every((d) => d.length > 20), JSON.stringify(kioskDefinitions));
  await until('its visitors now', async () =>
    (await value(page, 'visitors-now')) === (await json(`${server.base}/api/v1/now?filter=country:DE`)).visitors);
  assert.match(await page.textContent('[data-testid="filter-bar"]'), /country = DE/);
  const rate = `${(de.goals[0].conversion_rate * 100).toFixed(1).replace(/\.0$/, '')}%`;
  await until('the conversion rate', async () => (await page.textContent('[data-testid="kiosk-goal"] .kpi-value')) === rate);
  const overflow = await page.evaluate(() => [document.documentElement.scrollHeight <= innerHeight, document.documentElement.scrollWidth <= innerWidth]);
  assert.deepEqual(overflow, [true, true], 'the kiosk fits the screen');
  await collect(server.base, 20, 300, 'DE');
  await until('the pinned kiosk follows live', async () => (await value(page, 'total-events')) === de.events + 20, 20000);
  await screenshot(page, 'segments-kiosk-filter-country-DE.png');

  await page.setViewportSize({ width: 640, height: 360 });
  await page.goto(`${server.base}/embed/goals?filter=country:DE`);
  await page.waitForSelector('[data-testid="embed-goals"]');
  await until('the embedded goals equal the API', async () =>
    sameGoals(await goals(page), apiGoals(await json(`${server.base}/api/v1/summary?range=15m&filter=country:DE`))));
  assert.equal(await page.locator('[data-testid="top-pages"]').count(), 0, 'only the one panel');
  await screenshot(page, 'segments-embed-goals-country-DE.png');

  await page.goto(`${server.base}/embed/now?filter=device:mobile`);
  await page.waitForSelector('[data-testid="embed-now"]');
  await until('the embedded visitors now equal the API', async () => {
    const now = await json(`${server.base}/api/v1/now?filter=device:mobile`);
    return (await value(page, 'now-visitors')) === now.visitors
      && JSON.stringify(await keys(page, 'now-sources')) === JSON.stringify(now.sources.slice(0, 10).map((c) => c.key));
  });
  await screenshot(page, 'segments-embed-now-device-mobile.png');

  // Every list embed and the totals, at the smallest size an embed is made for (320×200),
  // with and without a segment: each row shown equals the API's, nothing sticks out.
  await page.setViewportSize({ width: 320, height: 200 });
  for (const query of ['', '?filter=country:DE']) {
    const sum = await json(`${server.base}/api/v1/summary?range=15m${query.replace('?', '&')}`);
    const lists = [['pages', 'top-pages', sum.top_urls], ['referrers', 'top-referrers', sum.top_referrers],
      ['countries', 'top-countries', sum.countries], ['devices', 'top-devices', sum.devices],
      ['types', 'event-types', Object.entries(sum.by_type).map(([key, count]) => ({ key, count }))]];
    for (const [panel, testid, api] of lists) {
      await page.goto(`${server.base}/embed/${panel}${query}`);
      await page.waitForSelector(`[data-testid="embed-${panel}"]`);
      const want = new Map(api.map((c) => [c.key, c.count]));
      await until(`the ${panel} embed${query} to equal the API`, async () => {
        const shown = await rows(page, testid);
        return shown.length > 0 && shown.every(([k, n]) => want.get(k) === n);
      });
      const fits = await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth
        && document.querySelector('.embed-head').getBoundingClientRect().top >= 0);
      assert.ok(fits, `the ${panel} embed${query} fits 320×200`);
    }
    // The pipeline: its counts since start, of all traffic, whatever the filter.
    await page.goto(`${server.base}/embed/status${query}`);
    await page.waitForSelector('[data-testid="embed-status"]');
    await until(`the status embed${query} to equal the API`, async () => {
      const st = await json(`${server.base}/api/v1/status`);
      return (await value(page, 'status-events')) === st.events_total
        && (await value(page, 'status-late')) === st.late_events_total
        && (await value(page, 'status-dead')) === st.dead_letters_total;
    });
    await page.goto(`${server.base}/embed/totals${query}`);
    await page.waitForSelector('[data-testid="embed-totals"]');
    await until(`the totals embed${query} to equal the API`, async () =>
      (await value(page, 'total-events')) === sum.events && (await value(page, 'unique-visitors')) === sum.unique_visitors);
  }

  await page.goto(`${server.base}/embed/events?filter=country:DE`);
  await until('the embedded chart shows the segment', async () =>
    (await barsTotal(page)) === (await json(`${server.base}/api/v1/summary?range=15m&filter=country:DE`)).events);
  assert.deepEqual(errors, [], 'no page errors');
  await stopServer(server);
});

test('on the demo traffic: visitors now, goals and a segment, for the screenshots', async () => {
  const port = await freePort();
  const server = await startServer({ port, dataDir: tmpDir('pb-data-'), demoRate: 300 });
  const ctx = await browser();
  const page = await ctx.newPage();
  await page.goto(`${server.base}/`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  // The demo configures goals itself; conversions show on first run.
  await until('demo conversions', async () => ((await goals(page)).signup || {}).completions > 0, 30000);
  await until('visitors now', async () => (await value(page, 'visitors-now')) > 0, 30000);
  await until('the summary to load', async () => (await value(page, 'unique-visitors')) > 0, 30000);
  await screenshot(page, 'segments-demo-dashboard.png', { fullPage: true });
  // The demo's deliberately bad events are information, not faults.
  await until('the dead letters of the demo', async () => (await page.locator('.reasons .chip').count()) > 0, 30000);
  assert.equal(await page.locator('.reasons .chip:not(.info)').count(), 0, 'no fault chip on the demo');
  // The legend counts the revised windows the chart outlines.
  const revised = await page.locator('[data-testid="events-chart"] [data-testid="bar"].revised').count();
  const legend = await page.textContent('[data-testid="legend-revised"]');
  assert.equal(legend.trim(), revised ? `revised · ${revised}` : 'revised');
  await page.click('[data-testid="top-countries"] li[data-key="US"]');
  await until('the US segment', async () => new URL(page.url()).searchParams.get('filter') === 'country:US');
  const us = await json(`${server.base}/api/v1/summary?range=15m&filter=country:US`);
  await until('US figures', async () => Math.abs((await value(page, 'total-events')) - us.events) < us.events * 0.5, 20000);
  await screenshot(page, 'segments-demo-dashboard-filter-country-US.png', { fullPage: true });
  await page.goto(`${server.base}/kiosk`);
  await until('the kiosk with visitors now', async () => (await value(page, 'visitors-now')) > 0, 30000);
  // Its KPI row: every value starts at the same height, whatever its label's length.
  for (const size of [{ width: 1920, height: 1080 }, { width: 1280, height: 720 }, { width: 1024, height: 768 }]) {
    await page.setViewportSize(size);
    const tops = await page.$$eval('.k-kpis .kpi-value', (vs) => vs.map((v) => Math.round(v.getBoundingClientRect().top)));
    assert.ok(tops.length === 6 && Math.max(...tops) - Math.min(...tops) <= 2, `${JSON.stringify(size)}: ${tops}`);
  }
  await screenshot(page, 'segments-demo-kiosk.png');
  // The events embed at 320×200: its top count label inside the embed.
  await page.setViewportSize({ width: 320, height: 200 });
  await page.goto(`${server.base}/embed/events`);
  await until('the embedded chart', async () => (await page.locator('.y-label').count()) > 0, 30000);
  const clipped = await page.evaluate(() => {
    const body = document.querySelector('.embed-body').getBoundingClientRect();
    const shown = (e) => getComputedStyle(e).display !== 'none' && e.offsetParent !== null;
    return [...document.querySelectorAll('.y-label, .x-label, .legend')].filter(shown).filter((l) => {
      const r = l.getBoundingClientRect();
      return r.top < body.top || r.bottom > body.bottom || r.left < 0 || r.right > innerWidth;
    }).map((l) => l.textContent);
  });
  assert.deepEqual(clipped, [], 'no axis label clipped (a legend with no room is left out)');
  await page.setViewportSize({ width: 1400, height: 1000 });
  await page.goto(`${server.base}/kiosk?filter=device:mobile`);
  await until('the kiosk of mobile visitors', async () => (await value(page, 'total-events')) > 0, 30000);
  await screenshot(page, 'segments-demo-kiosk-filter-device-mobile.png');
  await stopServer(server);
});
