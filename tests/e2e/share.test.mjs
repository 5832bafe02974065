// Share links from the dashboard: an admin opens "Share", makes a kiosk link of the
// segment on screen (a server refusal shows next to the form), copies its address, and the
// link opens the kiosk in another browser; revoking it from the same dialog ends that kiosk
// within seconds. Viewers never see the button.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  freePort, openFresh, shot, startServer, stopServer, tmpDir, until, value,
} from './harness.mjs';

const ADMIN = { authorization: 'Bearer admintok', 'content-type': 'application/json' };

// A page in a fresh browser profile (no cookie from another page) at `url`, once drawn.
const freshPage = (url) => openFresh(url);

async function serve() {
  const port = await freePort();
  // `type` is not segmented here, so a link filtered on it is refused by the server (400).
  return startServer({
    port,
    dataDir: tmpDir('pb-share-'),
    args: ['--demo-rate', '50', '--no-demo-history', '--token', 'admintok', '--segment-dimensions', 'country,device,referrer'],
  });
}

test('an admin shares a kiosk of the segment on screen, and revoking it ends that kiosk', async () => {
  const server = await serve();
  // Signed in as admin through `?token=` (answered 303 with the session cookie).
  const admin = await freshPage(`${server.base}/?filter=device:mobile&token=admintok`);
  assert.ok(!admin.url().includes('admintok'), admin.url());
  await admin.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.base });

  await admin.click('[data-testid="share-open"]');
  await admin.waitForSelector('[data-testid="share"]', { timeout: 10000 });
  // The form starts from the page: its segment and range.
  assert.equal(await admin.inputValue('[data-testid="share-filter"]'), 'device:mobile');
  assert.equal(await admin.inputValue('[data-testid="share-range"]'), '15m');
  assert.equal(await admin.locator('[data-testid="share-panel"]').count(), 0, 'a panel only for an embed');
  await until('the (empty) list of links', async () => (await admin.textContent('[data-testid="share"]')).includes('No share links yet'), 10000);

  // What the server refuses, it says next to the form.
  await admin.fill('[data-testid="share-name"]', 'lobby tv');
  await admin.fill('[data-testid="share-filter"]', 'type:signup');
  await admin.click('[data-testid="share-create"]');
  await admin.waitForSelector('[data-testid="share-error"]', { timeout: 10000 });
  assert.match(await admin.textContent('[data-testid="share-error"]'), /not segmented/);
  assert.equal(await admin.locator('[data-testid="share-url"]').count(), 0);
  // The segment can be cleared (all traffic), or set again.
  await admin.click('[data-testid="share-filter-clear"]');
  assert.equal(await admin.inputValue('[data-testid="share-filter"]'), '');
  await admin.fill('[data-testid="share-filter"]', 'device:mobile');

  // A kiosk of the segment, last hour.
  await admin.selectOption('[data-testid="share-view"]', 'kiosk');
  await admin.selectOption('[data-testid="share-range"]', '1h');
  await admin.click('[data-testid="share-create"]');
  await admin.waitForSelector('[data-testid="share-url"]', { timeout: 10000 });
  assert.equal(await admin.locator('[data-testid="share-error"]').count(), 0, 'the error is gone');
  const url = await admin.inputValue('[data-testid="share-url"]');
  assert.ok(url.startsWith(`${server.base}/s/`), url);
  assert.match(await admin.textContent('[data-testid="share-created"]'), /shown once/);
  // Copy puts the address on the clipboard.
  await admin.click('[data-testid="share-copy"]');
  await until('the address on the clipboard', async () => (await admin.evaluate(() => navigator.clipboard.readText())) === url, 5000);

  // The list (reloaded) holds the new link; the server agrees on what it opens.
  const row = admin.locator('[data-testid="share-link-row"]');
  await until('the new link in the list', async () => (await row.count()) === 1, 10000);
  const key = await row.getAttribute('data-key');
  assert.equal(await row.getAttribute('data-state'), 'active');
  assert.match(await row.textContent(), /lobby tv/);
  assert.match(await row.textContent(), /Wall display · device = mobile · 1h/);
  assert.match(await row.textContent(), /never expires/);
  const listed = await (await fetch(`${server.base}/api/v1/links`, { headers: ADMIN })).json();
  assert.equal(listed.length, 1);
  assert.equal(listed[0].key, key);
  assert.equal(listed[0].name, 'lobby tv');
  assert.deepEqual(
    { view: listed[0].scope.view, filter: listed[0].scope.filter, range: listed[0].scope.range },
    { view: 'kiosk', filter: 'device:mobile', range: '1h' },
  );
  assert.equal(listed[0].expires_ms, undefined, 'no expiry chosen');
  await shot(admin, 'share-dialog-link-created.png');

  // The address opens the kiosk in another browser, with no secret in its address bar.
  const kiosk = await freshPage(url);
  assert.equal(await kiosk.locator('[data-testid="kiosk"]').count(), 1, 'the link leads to the kiosk');
  assert.equal(await kiosk.getAttribute('[data-testid="filter-bar"]', 'data-filter'), 'device:mobile');
  await until('the kiosk to count events', async () => (await value(kiosk, 'total-events')) > 0, 30000);
  await until('the kiosk to count visitors', async () => (await value(kiosk, 'unique-visitors')) > 0, 30000);
  assert.ok(!kiosk.url().includes(url.split('/s/')[1]), kiosk.url());

  // Revoked from the dialog: the kiosk says so within seconds, the row says "revoked".
  const t0 = Date.now();
  await admin.click(`[data-testid="share-link-row"][data-key="${key}"] [data-testid="share-revoke"]`);
  await kiosk.waitForSelector('[data-testid="access-ended"][data-reason="revoked"]', { timeout: 10000 });
  console.log(`revoked screen ${Date.now() - t0} ms after the click`);
  await until('the row to say revoked', async () => (await row.getAttribute('data-state')) === 'revoked', 10000);
  assert.match(await row.textContent(), /revoked/);
  assert.equal(await row.locator('[data-testid="share-revoke"]').count(), 0, 'nothing left to revoke');
  assert.equal(await admin.locator('[data-testid="share-url"]').count(), 0, 'its address is no longer offered');
  await shot(admin, 'share-dialog-link-revoked.png');

  // Closing the dialog leaves the dashboard as it was.
  await admin.click('[data-testid="share-close"]');
  assert.equal(await admin.locator('[data-testid="share"]').count(), 0);
  assert.equal(await admin.textContent('[data-testid="connection-state"]'), 'live');
  assert.deepEqual(admin.errors, [], 'no page errors (admin)');
  assert.deepEqual(kiosk.errors, [], 'no page errors (kiosk)');
  await stopServer(server);
});

test('viewers and share links get no Share button', async () => {
  const server = await serve();
  const made = await fetch(`${server.base}/api/v1/tokens`, { method: 'POST', headers: ADMIN, body: JSON.stringify({ name: 'ops', role: 'viewer' }) });
  const token = await made.json();
  assert.equal(made.status, 201, JSON.stringify(token));
  const viewer = await freshPage(`${server.base}/?token=${encodeURIComponent(token.id)}`);
  assert.equal(await viewer.locator('[data-testid="sign-out"]').count(), 1, 'signed in as a viewer');
  assert.equal(await viewer.locator('[data-testid="share-open"]').count(), 0);

  const link = await fetch(`${server.base}/api/v1/links`, {
    method: 'POST', headers: ADMIN, body: JSON.stringify({ name: 'partner', view: 'dashboard', range: '1h' }),
  });
  const made2 = await link.json();
  assert.equal(link.status, 201, JSON.stringify(made2));
  const shared = await freshPage(`${server.base}${made2.url}`);
  assert.equal(await shared.locator('[data-testid="range-1h"]').count(), 1, "the link's dashboard");
  assert.equal(await shared.locator('[data-testid="share-open"]').count(), 0);
  assert.deepEqual([...viewer.errors, ...shared.errors], [], 'no page errors');
  await stopServer(server);
});
