// hark-client's parts that need no recogniser: the ring buffer's offsets
// across wrap-around and drops, the backoff's exponential ceiling with full
// jitter and its cap, and audio_lost for audio queued while the server is
// unreachable (a real TCP listener that resets every connection: the fault
// proxy in its blocked state).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { AudioRing, HarkClient } from '../../clients/js/index.js';
import { FaultProxy } from './faultproxy.mjs';
import { sleep, waitFor } from './lib.mjs';

const bytes = (from, to) => Uint8Array.from({ length: to - from }, (_, i) => (from + i) & 255);

test('AudioRing: absolute offsets, wrap-around, drops of the oldest, trim', () => {
  const r = new AudioRing(10);
  assert.deepEqual(r.push(bytes(0, 7)), [0, 0]);
  assert.deepEqual(r.push(bytes(7, 14)), [0, 4]); // 4 oldest bytes dropped
  assert.deepEqual([r.start, r.end], [4, 14]);
  assert.deepEqual(r.read(0, 100), bytes(4, 14)); // clamped to what is held, across the wrap
  assert.deepEqual(r.read(6, 9), bytes(6, 9));
  r.trim(8);
  assert.deepEqual(r.read(0, 100), bytes(8, 14));
  assert.deepEqual(r.push(bytes(14, 40)), [8, 30]); // larger than the ring: only the newest 10
  assert.deepEqual(r.read(0, 100), bytes(30, 40));
  r.trim(50); // never past the end
  assert.deepEqual([r.start, r.end], [40, 40]);
  assert.equal(r.read(0, 100).length, 0);
});

async function unreachable(t) {
  const proxy = await FaultProxy.start({ port: 9, log: (s) => t.diagnostic(s) });
  proxy.block();
  t.after(() => proxy.close());
  return proxy;
}

test('backoff: full jitter under 250 ms x 2^n, capped', async (t) => {
  const proxy = await unreachable(t);
  // random() just under 1: every wait sits at its ceiling.
  const client = new HarkClient({ url: proxy.url, WebSocket, random: () => 0.9999, backoff: { baseMs: 10, capMs: 100 },
    closeTimeoutMs: 200 });
  const delays = [];
  client.on('reconnecting', (e) => delays.push(e.delay_ms));
  client.connect().catch(() => {});
  await waitFor([delays], (a) => a.length >= 7, 10000);
  assert.deepEqual(delays.slice(0, 7), [9, 19, 39, 79, 99, 99, 99]);
  assert.equal(client.state, 'reconnecting');
  const states = [];
  client.on('state', (e) => states.push(e.state));
  const closed = await client.close(); // nothing to flush into: gives up after closeTimeoutMs
  assert.deepEqual(states, ['finalizing', 'closed'], 'closing stays finalizing while it retries');
  assert.equal(closed.reason, 'timeout');
  assert.equal(client.state, 'closed');
  // random() = 0: every wait is 0 (full jitter reaches down to nothing).
  const eager = new HarkClient({ url: proxy.url, WebSocket, random: () => 0, closeTimeoutMs: 100 });
  const zero = [];
  eager.on('reconnecting', (e) => zero.push(e.delay_ms));
  eager.connect().catch(() => {});
  await waitFor([zero], (a) => a.length >= 3, 10000);
  assert.deepEqual(zero.slice(0, 3), [0, 0, 0]);
  await eager.close();
});

test('audio queued while unreachable: the ring keeps the newest, audio_lost gives the rest', async (t) => {
  const proxy = await unreachable(t);
  const client = new HarkClient({ url: proxy.url, WebSocket, config: { sample_rate: 8000, encoding: 'mulaw' },
    bufferSeconds: 1, closeTimeoutMs: 100 });
  const lost = [];
  client.on('audio_lost', (e) => lost.push(e));
  for (let i = 0; i < 25; i++) client.send(new Uint8Array(160)); // 25 x 20 ms of 8 kHz mu-law
  await sleep(400); // losses are reported within 200 ms
  assert.deepEqual(lost, []); // 0.5 s fits in 1 s
  for (let i = 0; i < 100; i++) client.send(new Uint8Array(160)); // 2.5 s in all
  await waitFor(lost, () => lost.length > 0, 5000);
  assert.deepEqual(lost.map((e) => [e.from_ms, e.to_ms]), [[0, 1500]]);
  assert.equal(client.stats.lostBytes, 12000);
  await client.close();
});
