// Access in the browser: a page without a credential shows the sign-in form (a wrong token
// says so; the right one opens the dashboard, and signing out closes it again); a share
// link opens its kiosk through the session cookie, with no secret left in the address bar;
// revoking the link replaces the open kiosk with "This link was revoked" within seconds,
// and the page stops calling the server; a link's dashboard offers only what the link's
// scope allows, and says when the link has expired (also after a reload); a revoked viewer
// token's dashboard asks to sign in again.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  freePort, openFresh, shot, startServer, stopServer, tmpDir, until, value,
} from './harness.mjs';

const ADMIN = { authorization: 'Bearer admintok', 'content-type': 'application/json' };

// A fresh page (its own browser profile, so no cookie from another test) at `url`, without
// waiting for data: it may show a screen instead of the page.
const freshPage = (url) => openFresh(url, { drawn: false });

async function makeLink(server, body) {
  const made = await fetch(`${server.base}/api/v1/links`, { method: 'POST', headers: ADMIN, body: JSON.stringify(body) });
  const text = await made.text();
  assert.equal(made.status, 201, text);
  const link = JSON.parse(text);
  assert.ok(link.id && link.key && link.url, text);
  return link;
}

async function serve() {
  const port = await freePort();
  return startServer({
    port,
    dataDir: tmpDir('pb-access-'),
    args: ['--demo-rate', '50', '--no-demo-history', '--token', 'admintok'],
  });
}

test('without a credential the page asks to sign in, and the token opens the dashboard', async () => {
  const server = await serve();
  const page = await freshPage(`${server.base}/`);
  await page.waitForSelector('[data-testid="sign-in"]', { timeout: 30000 });
  assert.equal(await page.locator('[data-testid="kiosk"], [data-testid="total-events"]').count(), 0, 'no dashboard behind the form');
  assert.equal(await page.getAttribute('[data-testid="sign-in-token"]', 'type'), 'password');
  await shot(page, 'access-sign-in.png');

  // A wrong token: the form says so and stays.
  await page.fill('[data-testid="sign-in-token"]', 'not-the-token');
  await page.click('[data-testid="sign-in-submit"]');
  await page.waitForSelector('[data-testid="sign-in-error"]', { timeout: 10000 });
  assert.ok((await page.textContent('[data-testid="sign-in-error"]')).trim().length > 0);
  await shot(page, 'access-sign-in-wrong-token.png');

  // The right one: the page reloads with the session cookie and shows live data.
  await page.fill('[data-testid="sign-in-token"]', 'admintok');
  await page.click('[data-testid="sign-in-submit"]');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  await until('the dashboard to count events', async () => (await value(page, 'total-events')) > 0, 30000);
  assert.equal(await page.textContent('[data-testid="connection-state"]'), 'live');
  assert.ok(!page.url().includes('admintok'), page.url());

  // Signing out: the form again.
  await page.click('[data-testid="sign-out"]');
  await page.waitForSelector('[data-testid="sign-in"]', { timeout: 10000 });
  assert.deepEqual(page.errors, [], 'no page errors');

  // A page opened with ?token= keeps working, and its address loses the token.
  const legacy = await freshPage(`${server.base}/kiosk?token=admintok`);
  await legacy.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  assert.ok(!legacy.url().includes('token'), legacy.url());
  await until('the kiosk to count events', async () => (await value(legacy, 'total-events')) > 0, 30000);
  assert.deepEqual(legacy.errors, [], 'no page errors');
  await stopServer(server);
});

test('a share link opens its kiosk, and revoking it ends the kiosk within seconds', async () => {
  const server = await serve();
  const link = await makeLink(server, { view: 'kiosk', filter: null, range: '1h', name: 'lobby' });

  const kiosk = await freshPage(`${server.base}${link.url}`);
  await kiosk.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  assert.equal(await kiosk.locator('[data-testid="kiosk"]').count(), 1, 'the link leads to the kiosk');
  await until('the kiosk to count events', async () => (await value(kiosk, 'total-events')) > 0, 30000);
  await until('the kiosk to count visitors', async () => (await value(kiosk, 'unique-visitors')) > 0, 30000);
  const url = kiosk.url();
  assert.ok(!url.includes(link.id), `the secret is not in the address bar: ${url}`);
  assert.ok(!url.includes('token'), `no token in the address bar: ${url}`);

  // Revoked: the open kiosk gives way to a screen that says so (the socket's 1008 close).
  const t0 = Date.now();
  const revoked = await fetch(`${server.base}/api/v1/links/${encodeURIComponent(link.key)}`, { method: 'DELETE', headers: ADMIN });
  assert.ok(revoked.ok, `revoke: HTTP ${revoked.status} ${await revoked.text()}`);
  await kiosk.waitForSelector('[data-testid="access-ended"][data-reason="revoked"]', { timeout: 10000 });
  console.log(`revoked screen ${Date.now() - t0} ms after the link was revoked`);
  assert.match(await kiosk.textContent('[data-testid="access-ended"]'), /This link was revoked/);
  assert.equal(await kiosk.locator('[data-testid="kiosk"]').count(), 0, 'the kiosk is gone');
  await shot(kiosk, 'access-link-revoked.png');

  // And it stays quiet: no reconnects, no reloads. Proving an absence takes a while: longer
  // than the first reconnect delay (0.5 s) and the summary's period (5 s).
  const calls = [];
  kiosk.on('request', (r) => calls.push(r.url()));
  await new Promise((r) => setTimeout(r, 6000));
  assert.deepEqual(calls, [], 'no request after the end');
  assert.deepEqual(kiosk.errors, [], 'no page errors');

  await stopServer(server);
});

test("a share link's dashboard offers only its scope, and says when the link has expired", async () => {
  const server = await serve();
  const link = await makeLink(server, { view: 'dashboard', filter: 'country:DE', range: '1h', name: 'partner', expires_in: '12s' });
  const page = await freshPage(`${server.base}${link.url}`);
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  assert.ok(!page.url().includes(link.id), page.url());
  // Pinned to the link's segment, which cannot be left; no comparison; no range longer
  // than the link's; rows that do not filter; no links to other views.
  assert.equal(await page.getAttribute('[data-testid="filter-bar"]', 'data-filter'), 'country:DE');
  const none = ['filter-clear', 'filter-hint', 'compare-off', 'compare-1d', 'range-24h', 'range-7d', 'sign-out'];
  for (const id of none) assert.equal(await page.locator(`[data-testid="${id}"]`).count(), 0, id);
  assert.equal(await page.locator('[data-testid="range-1h"]').count(), 1);
  assert.equal(await page.locator('li.clickable').count(), 0);
  assert.equal(await page.locator('a.embed-link').count(), 0);
  await until('the segment to count events', async () => (await value(page, 'total-events')) > 0, 10000);
  // A shorter range than the link's still works.
  await page.click('[data-testid="range-15m"]');
  await until('the 15m summary', async () => (await value(page, 'unique-visitors')) > 0, 10000);

  await page.waitForSelector('[data-testid="access-ended"][data-reason="expired"]', { timeout: 30000 });
  assert.match(await page.textContent('[data-testid="access-ended"]'), /This link has expired/);
  await shot(page, 'access-link-expired.png');
  // Reloaded, the page has no cookie any more (it lasted as long as the link): still the
  // link's end, not a sign-in form.
  await page.reload();
  await page.waitForSelector('[data-testid="access-ended"][data-reason="expired"]', { timeout: 30000 });
  assert.deepEqual(page.errors, [], 'no page errors');
  await stopServer(server);
});

test('revoking a signed-in viewer token brings back the sign-in form', async () => {
  const server = await serve();
  const made = await fetch(`${server.base}/api/v1/tokens`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ name: 'ops', role: 'viewer' }) });
  const text = await made.text();
  assert.equal(made.status, 201, text);
  const token = JSON.parse(text);
  const page = await freshPage(`${server.base}/`);
  await page.waitForSelector('[data-testid="sign-in"]', { timeout: 30000 });
  await page.fill('[data-testid="sign-in-token"]', token.id);
  await page.click('[data-testid="sign-in-submit"]');
  await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
  await until('the dashboard to count events', async () => (await value(page, 'total-events')) > 0, 30000);
  // A viewer's dashboard: everything to read, and a way out.
  assert.equal(await page.locator('[data-testid="compare-1d"]').count(), 1);
  assert.equal(await page.locator('[data-testid="sign-out"]').count(), 1);

  const revoked = await fetch(`${server.base}/api/v1/tokens/${encodeURIComponent(token.key)}`, { method: 'DELETE', headers: ADMIN });
  assert.ok(revoked.ok, `revoke: HTTP ${revoked.status} ${await revoked.text()}`);
  // The socket is closed 1008 "access revoked"; the session then answers 401.
  await page.waitForSelector('[data-testid="sign-in"]', { timeout: 10000 });
  assert.equal(await page.locator('[data-testid="total-events"]').count(), 0);
  assert.deepEqual(page.errors, [], 'no page errors');
  await stopServer(server);
});
