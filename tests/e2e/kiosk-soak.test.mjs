// A kiosk left running, as a wall display is: its heap and its DOM stay flat, its socket
// is paced (a few frames a second) and small, and it stays live.
//
// SOAK_SECONDS sets how long (60 in `cargo xtask test`; `cargo xtask soak --kiosk-seconds
// 600` runs the 10-minute soak). The figures go to ARTIFACTS/kiosk-soak.json. Bytes are
// the frames' text as Chromium hands it to the page (after permessage-deflate): CDP does
// not expose the compressed size; the benchmark's `ws_bytes_per_s_kiosk` counts the wire.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ARTIFACTS, browser, freePort, open, startServer, stopServer, tmpDir, until, value } from './harness.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 60);
const WARM_UP_S = 15;

test(`a kiosk left running ${SECONDS} s keeps its heap and DOM flat, paced and live`, { timeout: (SECONDS + WARM_UP_S + 120) * 1000 }, async () => {
  const port = await freePort();
  const server = await startServer({ port, dataDir: tmpDir('pb-soak-'), demoRate: 200 });
  const ctx = await browser();
  const page = await open(ctx, `${server.base}/kiosk`);
  const cdp = await ctx.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('HeapProfiler.enable');
  let frames = 0;
  let bytes = 0;
  cdp.on('Network.webSocketFrameReceived', (e) => {
    frames += 1;
    bytes += Buffer.byteLength(e.response.payloadData);
  });
  const sample = async () => {
    await cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = await cdp.send('Runtime.getHeapUsage');
    const { nodes, jsEventListeners } = await cdp.send('Memory.getDOMCounters');
    // On a fresh start the 15-minute chart gains a bar every window until it is full: the
    // chart's elements are counted apart, per bar.
    const dom = await page.evaluate(() => {
      const chart = document.querySelector('[data-testid="events-chart"]');
      const inChart = chart ? chart.getElementsByTagName('*').length : 0;
      const bars = chart ? chart.querySelectorAll('rect').length : 0;
      return { outside: document.getElementsByTagName('*').length - inChart, inChart, bars };
    });
    return {
      at_s: 0,
      heap: usedSize,
      nodes,
      listeners: jsEventListeners,
      outside_chart: dom.outside,
      chart_per_bar: dom.bars ? dom.inChart / dom.bars : 0,
    };
  };
  // Warm up: the first windows, the history, the fonts.
  await new Promise((r) => setTimeout(r, WARM_UP_S * 1000));
  const started = Date.now();
  frames = 0;
  bytes = 0;
  const samples = [];
  const every = Math.max(5, Math.floor(SECONDS / 12));
  while (Date.now() - started < SECONDS * 1000) {
    const s = await sample();
    s.at_s = Math.round((Date.now() - started) / 1000);
    samples.push(s);
    await new Promise((r) => setTimeout(r, every * 1000));
  }
  const end = await sample();
  end.at_s = Math.round((Date.now() - started) / 1000);
  samples.push(end);
  const secs = (Date.now() - started) / 1000;
  const figures = {
    seconds: secs,
    frames_per_s: frames / secs,
    text_bytes_per_s: bytes / secs,
    samples,
  };
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.writeFileSync(path.join(ARTIFACTS, 'kiosk-soak.json'), JSON.stringify(figures, null, 2));
  console.log(`kiosk soak: ${secs.toFixed(0)} s, ${figures.frames_per_s.toFixed(2)} frames/s, ${figures.text_bytes_per_s.toFixed(0)} B/s of text; heap ${samples[0].heap} → ${end.heap} B, DOM nodes ${samples[0].nodes} → ${end.nodes}`);

  // Paced: one message per 500 ms at most (a few more when a snapshot or a reconnect
  // comes), never the 20 a second of an unpaced socket.
  assert.ok(figures.frames_per_s <= 2.5, `frames/s ${figures.frames_per_s}`);
  assert.ok(frames > secs, 'and it keeps getting them');
  // Flat: the second half never holds more than the first (with room for the collector's
  // noise: 10 % and 1 MB of heap, the windows a fresh chart gains included), the DOM
  // outside the chart and the listeners no more, the chart no more elements per bar.
  const half = samples.slice(0, Math.ceil(samples.length / 2));
  const late = samples.slice(Math.ceil(samples.length / 2));
  const max = (xs, k) => Math.max(...xs.map((x) => x[k]));
  const all = JSON.stringify(samples);
  assert.ok(max(late, 'heap') <= max(half, 'heap') * 1.1 + 1_000_000, `heap grew: ${all}`);
  assert.ok(max(late, 'outside_chart') <= max(half, 'outside_chart') + 5, `DOM grew: ${all}`);
  assert.ok(max(late, 'chart_per_bar') <= max(half, 'chart_per_bar') + 0.5, `chart grew: ${all}`);
  assert.ok(max(late, 'listeners') <= max(half, 'listeners') + 5, `listeners grew: ${all}`);
  // Live: the count still moves.
  const before = await value(page, 'total-events');
  await until('the kiosk to count new events', async () => (await value(page, 'total-events')) !== before);
  assert.deepEqual(page.errors, [], 'no page errors');
  await stopServer(server);
});
