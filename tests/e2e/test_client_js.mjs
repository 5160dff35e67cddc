// hark-client (clients/js) in Node, with the `ws` package, against a real
// `hark serve` through the fault-injecting proxy (faultproxy.mjs):
//   (a) no faults: the finals equal those of a direct connection;
//   (b) many random cuts (mid-frame, mid-utterance, mid-final) with a server
//       that resumes: the same finals, segment for segment, and the events'
//       seq without a gap or a duplicate;
//   (c) the server SIGKILLed and restarted mid-session: resume fails, a new
//       session replays the audio after the last final, a `restarted` event
//       marks the boundary, and no word after the last final is lost;
//   (d) an outage longer than the ring buffer: `audio_lost` gives the span;
//   (e) a half-open stall: detected, and the session continues;
//   (f) the API key as a header or a subprotocol; a refused key is final;
//   (g) paused (seed 003): silence past the half-open limit, kept alive by
//       keepalives and their acks, no reconnect.
// (b) and (g) need a server that offers resume (resume_token in ready, acks);
// they are skipped, saying so, against one that does not.
// Audio goes at full speed (the server reads it as fast as it decodes), so
// the scenarios need no real-time pacing.
//
// Environment: HARK_BIN (the built hark), HARK_TESTDATA_DIR (librivox
// clips), HARK_FAULT_SEED (replays the random cuts of a failed run).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { HarkClient } from '../../clients/js/index.js';
import { FaultProxy } from './faultproxy.mjs';
import { CLIPS, openNative, sleep, startServer, streamPcm, waitFor, wavPcm, wer } from './lib.mjs';

const RATE = 32000; // bytes per second of 16 kHz s16le mono
const SILENCE = Buffer.alloc(RATE); // 1 s between clips: one segment each
// 0870, 0880, 0890, 0920, 0930: 24.7 s of speech, 29.7 s in all.
const ALL = Buffer.concat(CLIPS.flatMap((c) => [wavPcm(c), SILENCE]));
const CONFIG = { encoding: 'pcm_s16le', sample_rate: 16000 };

let server;
let reference; // the finals of ALL over a direct connection

// Events with a seq, as the user sees them: every one, in order.
const SEQ_EVENTS = ['partial', 'final', 'speech_started', 'utterance_end', 'interrupt', 'error', 'closed'];

function makeClient(url, opts = {}) {
  const client = new HarkClient({ url, WebSocket, config: CONFIG, ...opts });
  const log = [];
  for (const type of [...SEQ_EVENTS, 'audio_lost', 'restarted', 'state', 'timeout', 'resumed', 'ready', 'reconnecting'])
    client.on(type, (e) => log.push({ ev: type, at: Date.now(), ...e }));
  return { client, log };
}

// Sends pcm through the client in 20 ms frames (queued by the client at
// once; it sends as fast as its socket takes them), then close().
async function stream(client, pcm, { frame = 640, beforeClose } = {}) {
  for (let off = 0; off < pcm.length; off += frame) client.send(pcm.subarray(off, off + frame));
  if (beforeClose) await beforeClose();
  return client.close();
}

const finalsOf = (log) => log.filter((e) => e.ev === 'final').map((e) => ({ segment: e.segment, text: e.text }));
const words = (finals) => finals.map((f) => f.text).filter(Boolean).join(' ');

// Every event with a seq exactly once, seq 0, 1, 2, ... in order.
function checkSeq(log) {
  const seqs = log.filter((e) => SEQ_EVENTS.includes(e.ev) && typeof e.seq === 'number').map((e) => e.seq);
  for (let i = 0; i < seqs.length; i++)
    if (seqs[i] !== i) throw new Error(`seq ${seqs[i]} at position ${i} (expected ${i}): ${seqs.slice(Math.max(0, i - 5), i + 5)}`);
  return seqs.length;
}

// The same audio over a plain connection, no client library, no proxy.
async function directFinals(url, pcm) {
  const s = await openNative(url, CONFIG);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, pcm);
  s.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(s.events, (e) => e.type === 'closed', 120000);
  s.ws.close();
  const finals = s.events.filter((e) => e.type === 'transcript' && e.is_final);
  const out = finals.map((e) => ({ segment: e.segment, text: e.text }));
  Object.defineProperty(out.at(-1), 'reason', { value: finals.at(-1).reason }); // not compared
  return out;
}

async function withProxy(t, port = server.port) {
  const proxy = await FaultProxy.start({ port, log: (s) => t.diagnostic(s) });
  t.after(() => proxy.close());
  return proxy;
}

before(async () => {
  server = await startServer();
  reference = await directFinals(server.url, ALL);
  assert.ok(reference.filter((f) => f.text).length >= 5, 'reference run: ' + JSON.stringify(reference));
});

after(async () => {
  if (server) await server.stop();
});

test('(a) no faults: the finals of a direct connection', { timeout: 120000 }, async (t) => {
  const proxy = await withProxy(t);
  const { client, log } = makeClient(proxy.url);
  const ready = await client.connect();
  assert.equal(ready.type, 'ready');
  const closed = await stream(client, ALL);
  assert.equal(closed.reason, 'client');
  assert.deepEqual(finalsOf(log), reference);
  const n = checkSeq(log);
  assert.equal(closed.seq, n - 1, 'closed is the last event');
  assert.deepEqual(log.filter((e) => e.ev === 'state').map((e) => e.state),
    ['connecting', 'streaming', 'finalizing', 'closed']);
  assert.equal(client.stats.connects, 1);
  assert.equal(log.filter((e) => ['audio_lost', 'restarted', 'error'].includes(e.ev)).length, 0);
  t.diagnostic(`${reference.length} segments, ${n} events, ${proxy.counters.bytesUp} bytes up`);
});

test('(b) random cuts with resume: the same finals, no seq lost or repeated', { timeout: 150000 }, async (t) => {
  const ready = await openNative(server.url, CONFIG);
  ready.ws.close();
  if (!ready.ready.resume_token) {
    t.skip('this server does not offer resume (no resume_token in ready)');
    return;
  }
  const proxy = await withProxy(t);
  const seed = Number(process.env.HARK_FAULT_SEED) || undefined;
  // Each connection is cut after 8..96 KB up (inside audio frames, 3 s of
  // audio at most) or 1..12 KB down (inside replays, partials and finals),
  // whichever comes first.
  proxy.randomCuts({ seed, ranges: { up: [8000, 96000], down: [1000, 12000] } });
  const { client, log } = makeClient(proxy.url);
  const t0 = Date.now();
  // Cuts until every segment that ends by endpointing is final. A drop
  // after the native `close` ends the session (resume spec: only a drop
  // without `close` detaches), so the flush runs without cuts.
  const endpointed = reference.length - (reference.at(-1).reason === 'close' ? 1 : 0);
  const closed = await stream(client, ALL, {
    beforeClose: async () => {
      await waitFor(log, () => finalsOf(log).length >= endpointed, 120000);
      proxy.stopRandomCuts();
    },
  });
  const secs = (Date.now() - t0) / 1000;
  assert.equal(closed.reason, 'client', JSON.stringify(closed));
  const cuts = proxy.counters.cuts;
  t.diagnostic(`${cuts} cuts in ${secs.toFixed(1)} s (${((cuts * 60) / secs).toFixed(0)} per minute), ` +
    `${client.stats.resumes} resumes, ${client.stats.resentBytes} bytes resent, ` +
    `cut directions ${JSON.stringify(proxy.cutLog.reduce((a, c) => ({ ...a, [c.dir]: (a[c.dir] || 0) + 1 }), {}))}`);
  // Reconnect to `resumed`: from the end of the backoff wait to the answer.
  const waits = [];
  log.forEach((e, i) => {
    if (e.ev !== 'reconnecting') return;
    const r = log.slice(i + 1).find((x) => x.ev === 'resumed' || x.ev === 'reconnecting');
    if (r && r.ev === 'resumed') waits.push(r.at - e.at - e.delay_ms);
  });
  waits.sort((x, y) => x - y);
  if (waits.length)
    t.diagnostic(`reconnect to resumed: median ${waits[waits.length >> 1]} ms, max ${waits.at(-1)} ms; ` +
      `${Math.round(client.stats.resentBytes / Math.max(1, client.stats.resumes) / 1024)} KiB resent per resume`);
  assert.ok(cuts >= 10, `only ${cuts} cuts`);
  assert.ok(proxy.cutLog.some((c) => c.dir === 'down'), 'no cut towards the client');
  assert.equal(client.stats.restarts, 0, 'a resume failed: ' + JSON.stringify(log.filter((e) => e.ev === 'error')));
  assert.deepEqual(finalsOf(log), reference);
  checkSeq(log);
  assert.equal(log.filter((e) => e.ev === 'audio_lost').length, 0);
});

test('(c) server SIGKILLed and restarted: a new session replays from the last final', { timeout: 150000 }, async (t) => {
  const own = await startServer();
  const port = own.port;
  let current = own;
  t.after(() => current.stop());
  const proxy = await withProxy(t, port);
  const { client, log } = makeClient(proxy.url);
  // All the audio is queued at once; kill the server once its first final
  // is out, while the rest is still being decoded.
  const done = stream(client, ALL);
  await waitFor(log, (e) => e.ev === 'final' && e.text, 60000);
  const lastFinalBefore = log.filter((e) => e.ev === 'final').at(-1);
  await own.stop('SIGKILL');
  const killedAt = Date.now();
  await sleep(1000);
  current = await startServer(['--port', String(port)]);
  const closed = await done;
  assert.equal(closed.reason, 'client', JSON.stringify(closed));

  const restarted = log.filter((e) => e.ev === 'restarted');
  assert.equal(restarted.length, 1, JSON.stringify(log.filter((e) => e.ev !== 'partial')).slice(0, 3000));
  const r = restarted[0];
  t.diagnostic(`new session ${r.at - killedAt} ms after the kill (server back after ~1 s + its start)`);
  assert.notEqual(r.old_session_id, r.new_session_id);
  assert.equal(r.offset_ms, lastFinalBefore.committed_ms, 'replay starts at the last final\'s committed_ms');
  const got = finalsOf(log);
  // Segments continue: 0, 1, 2, ... across the boundary.
  assert.deepEqual(got.map((f) => f.segment), got.map((_, i) => i));
  checkSeq(log);
  // The new session's times are on the stream's timeline.
  const after = log.filter((e) => e.ev === 'final' && e.session_id === r.new_session_id && e.text);
  assert.ok(after.length > 0);
  assert.ok(after[0].start * 1000 >= r.offset_ms, `first final after the restart starts at ${after[0].start} s`);
  // No word lost: the finals after the boundary against the reference's
  // finals after the same point. The new session starts decoding at the
  // committed point with fresh voice activity and endpointing state, so its
  // segmentation may differ: tolerance 10% word errors.
  const refAfter = reference.slice(lastFinalBefore.segment + 1);
  const { errors, words: n } = wer(words(refAfter), words(after));
  t.diagnostic(`after the boundary ${n} reference words, ` +
    `${errors} word errors (reference "${words(refAfter)}" / got "${words(after)}")`);
  assert.ok(errors <= Math.ceil(0.1 * n), `${errors} word errors in ${n} words after the restart`);
  assert.equal(log.filter((e) => e.ev === 'audio_lost').length, 0);
});

test('(d) an outage longer than the ring buffer: audio_lost with the span', { timeout: 150000 }, async (t) => {
  const proxy = await withProxy(t);
  const first = Buffer.concat([wavPcm(CLIPS[4]), SILENCE]); // 0930: 4.29 s
  const rest = Buffer.concat([wavPcm(CLIPS[0]), SILENCE, wavPcm(CLIPS[2]), SILENCE, wavPcm(CLIPS[1]), SILENCE]); // 17.39 s
  const BUFFER_S = 6;
  const { client, log } = makeClient(proxy.url, { bufferSeconds: BUFFER_S });
  for (let off = 0; off < first.length; off += 640) client.send(first.subarray(off, off + 640));
  const f0 = await waitFor(log, (e) => e.ev === 'final' && e.text, 60000);
  await sleep(1000); // acks for all of `first` (a resuming server sends them)
  proxy.block();
  proxy.cut();
  await waitFor(log, (e) => e.ev === 'state' && e.state === 'reconnecting', 10000);
  for (let off = 0; off < rest.length; off += 640) client.send(rest.subarray(off, off + 640));
  const totalMs = ((first.length + rest.length) / RATE) * 1000;
  // The ring keeps the newest BUFFER_S seconds: everything before was lost,
  // from the point the client could not be sure the server had.
  const lostTo = Math.round(totalMs - BUFFER_S * 1000);
  await waitFor(log, (e) => e.ev === 'audio_lost' && e.to_ms === lostTo, 5000);
  const lost = log.filter((e) => e.ev === 'audio_lost');
  assert.equal(lost.length, 1, 'one outage, one event: ' + JSON.stringify(lost));
  assert.ok(lost[0].from_ms >= f0.committed_ms && lost[0].from_ms <= (first.length / RATE) * 1000,
    `lost from ${lost[0].from_ms} ms: before the committed point ${f0.committed_ms} or after the outage began`);
  for (let i = 1; i < lost.length; i++) assert.equal(lost[i].from_ms, lost[i - 1].to_ms, 'spans are contiguous');
  t.diagnostic(`audio_lost ${JSON.stringify(lost.map((e) => [e.from_ms, e.to_ms]))} of ${totalMs} ms`);
  proxy.unblock();
  const closed = await client.close();
  assert.equal(closed.reason, 'client');
  // What the ring kept is transcribed: the last clip (0880, 2.99 s + 1 s).
  const text = words(finalsOf(log));
  assert.match(text, /young man/, text);
  checkSeq(log);
});

test('(e) half-open stall: detected within 2K + margin, the session goes on', { timeout: 150000 }, async (t) => {
  const proxy = await withProxy(t);
  const KEEPALIVE = 1000;
  const { client, log } = makeClient(proxy.url, { keepaliveMs: KEEPALIVE });
  const pcm = Buffer.concat([wavPcm(CLIPS[4]), SILENCE, wavPcm(CLIPS[1]), SILENCE]);
  const half = 3 * RATE; // inside the first clip's speech
  for (let off = 0; off < half; off += 640) client.send(pcm.subarray(off, off + 640));
  await waitFor(log, (e) => e.ev === 'partial', 60000);
  proxy.stall();
  const stalledAt = Date.now();
  const timeout = await waitFor(log, (e) => e.ev === 'timeout', 20000);
  const detectMs = timeout.at - stalledAt;
  t.diagnostic(`stall detected after ${detectMs} ms (keepalive ${KEEPALIVE} ms, limit ${client.deadMs} ms)`);
  assert.ok(detectMs >= client.deadMs - 1500 && detectMs <= client.deadMs + 1500, `detected after ${detectMs} ms`);
  for (let off = half; off < pcm.length; off += 640) client.send(pcm.subarray(off, off + 640));
  const closed = await client.close();
  assert.equal(closed.reason, 'client');
  assert.ok(client.stats.connects >= 2);
  const text = words(finalsOf(log));
  // Both utterances, the one cut in the middle by the stall included.
  assert.match(text, /amiable/, text);
  assert.match(text, /young man/, text);
  checkSeq(log);
  proxy.unstall();
});

test('(f) API key: as a header or as the token subprotocol; a wrong key stops without retrying', { timeout: 60000 }, async (t) => {
  const keyed = await startServer(['--api-keys', 'client-key-1']);
  t.after(() => keyed.stop());
  for (const auth of ['header', 'subprotocol']) {
    const { client } = makeClient(keyed.url, { apiKey: 'client-key-1', auth });
    const ready = await client.connect();
    assert.equal(ready.type, 'ready', auth);
    assert.equal((await client.close()).reason, 'client', auth);
  }
  const { client, log } = makeClient(keyed.url, { apiKey: 'wrong-key' });
  await assert.rejects(client.connect(), /closed before ready/);
  assert.equal(client.state, 'closed');
  assert.equal(client.stats.connects, 1, 'retried after a 401');
  const err = log.find((e) => e.ev === 'error');
  assert.equal(err.code, 'unauthorized');
  assert.equal(err.fatal, true);
});

test('(g) paused: no audio for longer than the half-open limit, keepalives keep the session', { timeout: 60000 }, async (t) => {
  const probe = await openNative(server.url, CONFIG);
  probe.ws.close();
  if (!probe.ready.resume_token) {
    t.skip('this server does not answer keepalives with acks (no resume_token in ready)');
    return;
  }
  const KEEPALIVE = 1000;
  const { client, log } = makeClient(server.url, { keepaliveMs: KEEPALIVE });
  const pcm = Buffer.concat([wavPcm(CLIPS[1]), SILENCE]);
  for (let off = 0; off < pcm.length; off += 640) client.send(pcm.subarray(off, off + 640));
  await waitFor(log, (e) => e.ev === 'final' && e.text, 60000);
  await waitFor(log, (e) => e.ev === 'state' && e.state === 'paused', 10000);
  await sleep(2.5 * client.deadMs); // silence from the user, well past the half-open limit
  assert.equal(client.state, 'paused');
  assert.equal(client.stats.connects, 1, 'reconnected while paused: ' + JSON.stringify(log.filter((e) => e.ev === 'timeout')));
  client.send(pcm.subarray(0, 640 * 50)); // talking again
  assert.equal(client.state, 'streaming');
  const closed = await client.close();
  assert.equal(closed.reason, 'client');
  assert.deepEqual(log.filter((e) => e.ev === 'state').map((e) => e.state),
    ['connecting', 'streaming', 'paused', 'streaming', 'finalizing', 'closed']);
});
