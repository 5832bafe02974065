// History and comparisons in the browser: long ranges loaded from roll-ups, the compare
// toggle (in the URL) overlaying the earlier period with the change on the totals, and
// annotations drawn on the events chart of the dashboard, the kiosk and the events embed,
// pushed live. Numbers on screen equal the API's (whose numbers the Rust integration tests
// check against an independent recomputation).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, stopServer, freePort, tmpDir, until, json, browser, open, value, shot,
} from './harness.mjs';

// A data dir with demo history a day and a week back (the embedded default), then served
// by a server with no live traffic, so every number stays still while it is compared.
async function quietServerWithHistory() {
  const port = await freePort();
  const dataDir = tmpDir('pb-hist-');
  let server = await startServer({ port, dataDir, args: ['--demo-rate', '40'] });
  await until('demo history a day and a week back', async () => {
    const d = await json(`${server.base}/api/v1/summary?range=15m&compare=1d`);
    const w = await json(`${server.base}/api/v1/summary?range=15m&compare=7d`);
    // The demo history is counted like live traffic: a segment and the goals have it too.
    const us = await json(`${server.base}/api/v1/summary?range=15m&compare=7d&filter=country:US`);
    return d.compare.figures.events > 0 && w.compare.figures.events > 0
      && us.compare.figures.events > 0
      && w.compare.figures.goals.some((g) => g.completions > 0);
  }, 120000);
  await stopServer(server);
  server = await startServer({ port, dataDir, args: ['--demo-rate', '0', '--no-demo-history'] });
  return server;
}

test('compare toggle overlays the earlier period and shows the change the API computes', async () => {
  const server = await quietServerWithHistory();
  const ctx = await browser();
  const page = await open(ctx, `${server.base}/`);
  assert.equal(await page.locator('[data-testid="compare-line"]').count(), 0, 'no overlay by default');
  assert.equal(await page.locator('[data-testid="change-events"]').count(), 0);

  // Turn it on: the URL carries it, the chart overlays a day earlier, the totals show the
  // change of the summary API's comparison.
  await page.click('[data-testid="compare-1d"]');
  assert.ok(page.url().includes('compare=1d'), page.url());
  await page.waitForSelector('[data-testid="compare-line"]', { timeout: 30000 });
  const d = await page.getAttribute('[data-testid="compare-line"]', 'd');
  assert.ok(d.split('L').length > 20, `a line across the range: ${d.slice(0, 80)}`);
  for (const [testid, key] of [['change-events', 'events_pct'], ['change-visitors', 'unique_visitors_pct'], ['change-sessions', 'unique_sessions_pct']]) {
    await until(`${testid} to equal the API`, async () => {
      const api = (await json(`${server.base}/api/v1/summary?range=15m&compare=1d`)).compare.change[key];
      const shown = await value(page, testid);
      return api !== null && shown === api;
    }, 30000);
  }
  const text = await page.textContent('[data-testid="change-events"]');
  assert.match(text, /vs 1d ago/);
  await shot(page, 'dashboard-compare-1d.png');

  // Off again: the overlay goes, the URL forgets it.
  await page.click('[data-testid="compare-off"]');
  await until('the overlay to go', async () => (await page.locator('[data-testid="compare-line"]').count()) === 0);
  assert.ok(!page.url().includes('compare='), page.url());

  // A kiosk pinned to a week earlier by its URL.
  const kiosk = await open(ctx, `${server.base}/kiosk?compare=7d`);
  await kiosk.waitForSelector('[data-testid="compare-line"]', { timeout: 30000 });
  await until('the kiosk change to equal the API', async () => {
    const api = (await json(`${server.base}/api/v1/summary?range=15m&compare=7d`)).compare.change.events_pct;
    return api !== null && (await value(kiosk, 'change-events')) === api;
  });
  await shot(kiosk, 'kiosk-compare-7d.png');
  assert.deepEqual([...page.errors, ...kiosk.errors], [], 'no page errors');
  await stopServer(server);
});

test('long ranges come from history and their totals equal the summary', async () => {
  const server = await quietServerWithHistory();
  const ctx = await browser();
  const page = await open(ctx, `${server.base}/?range=7d`);
  // The summary of exactly the range on screen (a long range starts on a step).
  const shownSummary = async () => {
    const from = await page.getAttribute('[data-testid="total-events"]', 'data-from');
    const to = await page.getAttribute('[data-testid="total-events"]', 'data-to');
    return json(`${server.base}/api/v1/summary?from=${from}&to=${to}`);
  };
  const api = await shownSummary();
  assert.ok(api.events > 100000, `a week with the demo history: ${api.events}`);
  await until('the 7d total to equal the summary', async () => {
    const [shown, api7] = [await value(page, 'total-events'), (await shownSummary()).events];
    if (shown !== api7) {
      const from = await page.getAttribute('[data-testid="total-events"]', 'data-from');
      const to = await page.getAttribute('[data-testid="total-events"]', 'data-to');
      const bars = await page.$$eval('[data-testid="bar"]', (bs) => bs.map((b) => [b.getAttribute('data-start'), b.getAttribute('data-events')]));
      const items = (await json(`${server.base}/api/v1/windows?from=${from}&to=${to}&step=30m&limit=10000`)).windows.map((w) => [w.start, w.events, w.resolution]);
      console.log(`7d: page ${shown}, API ${api7}; bars ${JSON.stringify(bars)}; API steps ${JSON.stringify(items)}`);
    }
    return shown === api7;
  }, 60000);
  // Bars of 30 minutes at least (history steps), drawn where the history is.
  const widths = await page.$$eval('[data-testid="events-chart"] [data-testid="bar"]', (bars) => bars.length);
  assert.ok(widths > 2, `bars: ${widths}`);
  // An axis a person can read: a week is labelled by weekday and date, a label each day,
  // none over another; the caption names the bar's width, the API's step.
  const axis = async () => page.$$eval('.x-axis .x-label', (ls) => ls.map((l) => {
    const r = l.getBoundingClientRect();
    return { text: l.textContent, left: r.left, right: r.right };
  }));
  const readable = (labels, pattern) => {
    assert.ok(labels.length >= 4, JSON.stringify(labels));
    assert.ok(labels.every((l) => pattern.test(l.text)), JSON.stringify(labels));
    assert.equal(new Set(labels.map((l) => l.text)).size, labels.length, 'no label twice');
    for (let i = 1; i < labels.length; i += 1) {
      assert.ok(labels[i].left >= labels[i - 1].right, `labels overlap: ${JSON.stringify(labels)}`);
    }
  };
  readable(await axis(), /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2}$/);
  assert.equal(await page.textContent('.legend-note'), 'one bar = 30 min');
  await page.click('[data-testid="range-30d"]');
  assert.ok(page.url().includes('range=30d'));
  await until('the 30d total to equal the summary', async () =>
    (await value(page, 'total-events')) === (await shownSummary()).events, 60000);
  readable(await axis(), /^\d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)$/);
  assert.equal(await page.textContent('.legend-note'), 'one bar = 2 h');
  // Back to 15 minutes: no coarse item left over the windows.
  await page.click('[data-testid="range-15m"]');
  await until('the 15m total to equal the summary', async () =>
    (await value(page, 'total-events')) === (await shownSummary()).events, 30000);
  assert.deepEqual(page.errors, [], 'no page errors');
  await stopServer(server);
});

test('annotations are drawn on every screen, pushed live', async () => {
  const port = await freePort();
  const server = await startServer({ port, dataDir: tmpDir('pb-notes-'), args: ['--demo-rate', '50', '--no-demo-history', '--token', 'tok'] });
  const ctx = await browser();
  const dash = await open(ctx, `${server.base}/?token=tok`);
  const kiosk = await open(ctx, `${server.base}/kiosk?token=tok`);
  const embed = await open(ctx, `${server.base}/embed/events?token=tok`);
  const ts = Date.now() - 60000;
  // Without the token: refused.
  const refused = await fetch(`${server.base}/api/v1/annotations`, { method: 'POST', body: JSON.stringify({ ts, text: 'x' }) });
  assert.equal(refused.status, 401);
  const r = await fetch(`${server.base}/api/v1/annotations`, {
    method: 'POST',
    headers: { authorization: 'Bearer tok' },
    body: JSON.stringify({ ts, text: 'deploy v2.4' }),
  });
  const body = await r.text();
  assert.equal(r.status, 201, body);
  const note = JSON.parse(body);
  for (const [name, page] of [['dashboard', dash], ['kiosk', kiosk], ['embed', embed]]) {
    await until(`the marker on the ${name}`, async () =>
      (await page.getAttribute('[data-testid="annotation"]', 'data-ts')) === String(ts), 20000);
    assert.equal(await page.getAttribute('[data-testid="annotation"]', 'data-id'), String(note.id));
    assert.match(await page.textContent('[data-testid="annotation"]'), /deploy v2.4/);
  }
  await shot(dash, 'dashboard-annotation.png');
  await shot(embed, 'embed-events-annotation.png');
  // Deleted: gone everywhere, again without a reload.
  const del = await fetch(`${server.base}/api/v1/annotations/${note.id}?token=tok`, { method: 'DELETE' });
  assert.equal(del.status, 204);
  for (const page of [dash, kiosk, embed]) {
    await until('the marker to go', async () => (await page.locator('[data-testid="annotation"]').count()) === 0, 20000);
  }
  assert.deepEqual([...dash.errors, ...kiosk.errors, ...embed.errors], []);
  await stopServer(server);
});
