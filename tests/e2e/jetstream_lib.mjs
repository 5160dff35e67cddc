// Helpers of the `hark worker --jetstream` tests (test_jetstream*.mjs): a
// real nats-server with JetStream (Debian's, on a free loopback port, its
// store in a fresh directory), real `hark worker`s, and real seed-004
// clients (npm nats + @msgpack/msgpack) publishing plain core-NATS messages.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { encode, decode } from '@msgpack/msgpack';
import { HARK, CLIPS, wavPcm, sleep, wer, references } from './lib.mjs';
import { NATS_SERVER, freePort, startNats as natsAt, startWorker as workerAt } from './nats_lib.mjs';

export { HARK, CLIPS, wavPcm, sleep };
export { NATS_SERVER, freePort };

export const IN = 'ai.voice.stream';
export const OUT = 'ai.voice.transcription';

// a fresh directory per test file (stores, configs, logs)
let dir;
before(() => { dir = mkdtempSync(path.join(tmpdir(), 'hark-js-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });

// nats-server with JetStream on 127.0.0.1:port, its store in dir/store-port
// (kept across restarts); partitions > 1 adds the subject mapping the
// workers' --jetstream-partitions expects.
export async function startNats(port, { partitions = 1 } = {}) {
  const conf = path.join(dir, `nats-${port}.conf`);
  writeFileSync(conf, [
    `listen: 127.0.0.1:${port}`,
    `jetstream { store_dir: "${path.join(dir, `store-${port}`)}", max_memory_store: 64MB, max_file_store: 1GB }`,
    partitions > 1 ? `mappings: { "${IN}.*": "${IN}.{{partition(${partitions},1)}}.{{wildcard(1)}}" }` : '',
  ].join('\n'));
  return natsAt(port, { dir, conf, jetstream: true });
}

// `hark worker --jetstream`; resolves when it prints its banner.
export async function startWorker(url, args = []) {
  const w = await workerAt(url, ['--jetstream', '--workers', '1', '--max-busy-percent', '100',
    '--max-lag-ms', '60000', '--nats-idle-timeout', '120', ...args]);
  w.held = () => { // partitions it consumes now, from its log
    const s = new Set();
    for (const m of w.log().matchAll(/consuming partition (\d+)|partition (\d+) given up/g)) {
      if (m[1] !== undefined) s.add(m[1]); else s.delete(m[2]);
    }
    return s;
  };
  return w;
}

// A seed client: core publishes on {IN}.{id}; every message on {OUT}.> by
// session id. While disconnected it keeps what it publishes and sends it
// after the reconnect, as the Go and C clients' reconnect buffers do (the
// npm client drops it: measured, 24 of 24 messages published during a
// 1.2 s nats-server restart were lost).
export async function startClient(url) {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  let up = true, pending = [], downWaiters = [];
  (async () => {
    for await (const st of nc.status()) {
      if (st.type === 'disconnect') { up = false; downWaiters.forEach((f) => f()); downWaiters = []; }
      if (st.type === 'reconnect') {
        up = true;
        for (const [subj, data] of pending) nc.publish(subj, data);
        pending = [];
      }
    }
  })();
  const bySession = new Map();
  const sub = nc.subscribe(OUT + '.>');
  (async () => {
    for await (const m of sub) {
      const id = m.subject.slice(OUT.length + 1);
      if (!bySession.has(id)) bySession.set(id, []);
      bySession.get(id).push(decode(m.data));
    }
  })();
  await nc.flush();
  return {
    nc,
    msgs: (id) => bySession.get(id) || [],
    send: (id, obj) => {
      if (up) nc.publish(`${IN}.${id}`, encode(obj));
      else pending.push([`${IN}.${id}`, encode(obj)]);
    },
    down: () => (up ? new Promise((r) => downWaiters.push(r)) : Promise.resolve()),
    close: () => nc.close(),
  };
}

export async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// Until pred holds; fails when progress() (a count that grows while work
// goes on) stood still for stallMs, or after capMs in all.
export async function untilProgress(pred, progress, stallMs, capMs, what) {
  const start = Date.now();
  let last = progress(), lastAt = start;
  while (!pred()) {
    const now = Date.now(), p = progress();
    if (p !== last) { last = p; lastAt = now; }
    if (now - lastAt > stallMs) throw new Error(`timed out waiting for ${what}: nothing new for ${stallMs / 1000} s`);
    if (now - start > capMs) throw new Error(`timed out waiting for ${what}: still going after ${capMs / 1000} s`);
    await sleep(50);
  }
}

export async function flushed(c) { // once the client is connected again
  const end = Date.now() + 30000;
  for (;;) {
    try { await c.nc.flush(); return; } catch (e) {
      if (Date.now() > end) throw e;
      await sleep(100);
    }
  }
}

export const results = (msgs) => msgs.filter((m) => m.type === undefined);
export const ofType = (msgs, type) => msgs.filter((m) => m.type === type);
export const finalText = (msgs) => results(msgs).filter((m) => m.is_final && m.transcript).map((m) => m.transcript).join(' ');
export const brief = (msgs) => msgs.map((m) => m.type ? `${m.type}${m.code ? ':' + m.code + ' ' + m.message : ''}`
  : `${m.is_final ? 'final' : 'partial'}#${m.sequence}/${m.segment} ${m.transcript}`).join('\n');

// Live sessions: every 100 ms one 100 ms chunk of each session (timestamps =
// capture time); at (tick, fn) pairs fn runs first; end after the last chunk.
export async function streamLive(c, list, { at = [], every = null } = {}) {
  const start = Date.now();
  const ticks = Math.max(...list.map((s) => Math.ceil(s.pcm.length / 3200)));
  for (let t = 0; t < ticks; t++) {
    for (const [tick, fn] of at) if (tick === t) await fn();
    if (every) await every(t);
    for (const s of list) {
      const off = t * 3200;
      if (off >= s.pcm.length) continue;
      const chunk = s.pcm.subarray(off, Math.min(off + 3200, s.pcm.length));
      c.send(s.id, { type: 'chunk', audio_b64: Buffer.from(chunk).toString('base64'), timestamp: 1700000000 + off / 32000 });
      if (off + 3200 >= s.pcm.length) c.send(s.id, { type: 'end' });
    }
    const wait = start + (t + 1) * 100 - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

// The client-visible contract across a hand-off: results numbered 0..n-1 in
// arrival order (no duplicate, no gap), per segment partials then exactly
// one final, closed last and once, and all of the audio in closed.
export function checkSession(msgs, s, { gaps = false } = {}) {
  const rs = results(msgs);
  assert.ok(rs.length > 0, `${s.id}: no results\n${brief(msgs)}`);
  if (gaps) rs.forEach((r, i) => assert.ok(i === 0 || r.sequence > rs[i - 1].sequence, `${s.id}: sequence grows\n${brief(msgs)}`));
  else rs.forEach((r, i) => assert.equal(r.sequence, i, `${s.id}: sequence in arrival order\n${brief(msgs)}`));
  let seg = 0;
  for (const r of rs) {
    if (!gaps) assert.equal(r.segment, seg, `${s.id}: segment\n${brief(msgs)}`);
    seg = r.segment + (r.is_final ? 1 : 0);
  }
  const closed = ofType(msgs, 'closed');
  assert.equal(closed.length, 1, `${s.id}: one closed\n${brief(msgs)}`);
  assert.equal(msgs[msgs.length - 1].type, 'closed', `${s.id}: closed is last`);
  assert.equal(closed[0].segments, seg);
  assert.deepEqual(ofType(msgs, 'error'), [], `${s.id}: no error`);
  assert.deepEqual(ofType(msgs, 'warning'), [], `${s.id}: no audio gap`);
  assert.ok(Math.abs(closed[0].audio_seconds - s.pcm.length / 32000) < 0.01,
    `${s.id}: ${closed[0].audio_seconds} s of ${s.pcm.length / 32000} s arrived`);
}

export const TRUTH = (() => {
  const r = references();
  return CLIPS.map((c) => r[path.basename(c, '.wav')]);
})();
export const rate = (ref, hyp) => { const w = wer(ref, hyp); return w.errors / Math.max(1, w.words); };

