// hark serve, native protocol: real server on loopback, real WebSocket client
// (npm ws), real recordings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import {
  HARK, CLIPS, startServer, openNative, wavPcm, streamPcm, finals, waitFor, checkContract, sleep,
} from './lib.mjs';

let srv;

before(async () => {
  // 3 workers: the 8-session test needs ~8 x 0.25 CPU per audio second,
  // more than 2 workers' admission capacity.
  srv = await startServer(['--max-frame-bytes', '65536', '--workers', '3']);
});
after(async () => { if (srv) await srv.stop(); });

// What `hark transcribe` says about a clip: the reference for the server.
function cliFinals(clip) {
  const out = execFileSync(HARK, ['transcribe', clip], { encoding: 'utf8' });
  return out.trim().split('\n').filter(Boolean).join(' ');
}

async function transcribeOverWs(clip, opts) {
  const s = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 });
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, wavPcm(clip), opts);
  s.ws.send(JSON.stringify({ type: 'close' }));
  const c = await s.closed;
  assert.equal(c.code, 1000);
  checkContract(s.events);
  const last = s.events[s.events.length - 1];
  assert.equal(last.type, 'closed');
  return { text: finals(s.events), events: s.events };
}

test('health, readiness, metrics and the demo page over HTTP', async () => {
  const h = await fetch(srv.http + '/healthz');
  assert.equal(h.status, 200);
  const r = await fetch(srv.http + '/readyz');
  assert.equal(r.status, 200);
  const m = await (await fetch(srv.http + '/metrics')).text();
  for (const name of ['hark_sessions_active', 'hark_sessions_refused_total', 'hark_audio_seconds_total',
    'hark_first_partial_latency_seconds_bucket', 'hark_endpoint_final_latency_seconds_bucket',
    'hark_finalize_final_latency_seconds_bucket', 'hark_worker_queue_depth', 'hark_errors_total',
    'hark_engine_decode_seconds_total'])
    assert.ok(m.includes(name), name + ' missing from /metrics');
  const page = await fetch(srv.http + '/');
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<title>hark/);
  const nf = await fetch(srv.http + '/nope');
  assert.equal(nf.status, 404);
  assert.equal((await nf.json()).error.code, 'not_found');
});

test('full speed and real-time pace give the same finals as hark transcribe', async () => {
  for (const clip of [CLIPS[0], CLIPS[3]]) {
    const ref = cliFinals(clip);
    const fast = await transcribeOverWs(clip, { realtime: false });
    assert.equal(fast.text, ref);
    const live = await transcribeOverWs(clip, { realtime: true });
    assert.equal(live.text, ref);
    assert.ok(live.events.some((e) => e.type === 'transcript' && !e.is_final), 'partials expected');
  }
});

test('--audio-hold-ms: real-time audio held 500 ms per wake-up decodes to the same finals as hark transcribe', async () => {
  // 500 ms (the largest hold): frames of a live stream are decoded in batches
  const held = await startServer(['--audio-hold-ms', '500', '--workers', '1']);
  try {
    const clip = CLIPS[3];
    const s = await openNative(held.url, { encoding: 'pcm_s16le', sample_rate: 16000 });
    assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
    await streamPcm(s.ws, wavPcm(clip), { realtime: true });
    s.ws.send(JSON.stringify({ type: 'close' }));
    assert.equal((await s.closed).code, 1000);
    checkContract(s.events);
    assert.equal(finals(s.events), cliFinals(clip));
    assert.ok(s.events.some((e) => e.type === 'transcript' && !e.is_final), 'partials expected');
  } finally {
    await held.stop();
  }
});

test('8 concurrent sessions never mix results', async () => {
  const refs = CLIPS.map(cliFinals);
  const jobs = [];
  for (let i = 0; i < 8; i++) {
    const k = i % CLIPS.length;
    jobs.push(transcribeOverWs(CLIPS[k], { realtime: i % 2 === 0 }).then((r) => ({ k, r })));
  }
  for (const { k, r } of await Promise.all(jobs)) assert.equal(r.text, refs[k]);
});

test('finalize gives a final with reason finalize and the session goes on', async () => {
  const s = await openNative(srv.url, {});
  const pcm = wavPcm(CLIPS[0]);
  await streamPcm(s.ws, pcm.subarray(0, pcm.length / 2));
  s.ws.send(JSON.stringify({ type: 'finalize' }));
  const f = await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final);
  assert.equal(f.reason, 'finalize');
  assert.ok(f.text.length > 0);
  await streamPcm(s.ws, pcm.subarray(pcm.length / 2));
  s.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await s.closed).code, 1000);
  const fs = s.events.filter((e) => e.type === 'transcript' && e.is_final);
  assert.equal(fs.length, 2);
  assert.equal(fs[1].reason, 'close');
  checkContract(s.events);
});

test('state responding + speech gives an interrupt and back to listening', async () => {
  const s = await openNative(srv.url, {});
  s.ws.send(JSON.stringify({ type: 'state', state: 'responding' }));
  await streamPcm(s.ws, wavPcm(CLIPS[1]));
  const i = await waitFor(s.events, (e) => e.type === 'interrupt');
  assert.equal(typeof i.timestamp, 'number');
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  assert.equal(s.events.filter((e) => e.type === 'interrupt').length, 1);
});

test('bad config is refused naming the field; the socket closes 4400', async () => {
  for (const [cfg, field] of [
    [{ sample_rate: 96000 }, 'sample_rate'],
    [{ encoding: 'mp3' }, 'encoding'],
    [{ vad_mode: 9 }, 'vad_mode'],
    [{ bogus_key: 1 }, 'bogus_key'],
    [{ language: 'xx-YY' }, 'language'],
    [{ model: 'stt-rt' }, "model: 'stt-rt' is not supported by engine pocketsphinx (supported: default"],
    [{ interim_results: { a: 1 } }, 'interim_results'],
  ]) {
    const s = await openNative(srv.url, cfg);
    assert.equal(s.ready.type, 'error', JSON.stringify(cfg));
    assert.ok(s.ready.message.includes(field), s.ready.message);
    assert.ok(s.ready.code.length > 0);
    assert.equal((await s.closed).code, 4400);
  }
});

test('config values: over 4 KB is "too long" with the limit; a repeated key is an error naming it', async () => {
  // a vocabulary of 5000 bytes: the right type, only too long
  let s = await openNative(srv.url, { vocabulary: 'word '.repeat(1000) });
  assert.equal(s.ready.type, 'error');
  assert.equal(s.ready.code, 'bad_option');
  assert.equal(s.ready.message, 'vocabulary: value too long (at most 4095 bytes)');
  assert.equal((await s.closed).code, 4400);
  // the same as an array of words
  s = await openNative(srv.url, { vocabulary: Array(1000).fill('word') });
  assert.equal(s.ready.message, 'vocabulary: value too long (at most 4095 bytes)');
  assert.equal((await s.closed).code, 4400);
  // an unknown key with a long value is still an unknown key
  s = await openNative(srv.url, { bogus: 'x'.repeat(5000) });
  assert.match(s.ready.message, /unknown option 'bogus'/);
  assert.equal((await s.closed).code, 4400);
  // a wrong type is still a type error
  s = await openNative(srv.url, { vocabulary: { a: 1 } });
  assert.match(s.ready.message, /vocabulary: must be a string/);
  assert.equal((await s.closed).code, 4400);

  // {"sample_rate":8000,"sample_rate":16000}: which one? refused, naming it
  const ws = new WebSocket(srv.url + '/v1/stream');
  const ev = [];
  ws.on('message', (d) => ev.push(JSON.parse(d.toString())));
  const closed = new Promise((r) => ws.on('close', (c) => r(c)));
  await new Promise((r) => ws.on('open', r));
  ws.send('{"type":"config","sample_rate":8000,"sample_rate":16000}');
  assert.equal(await closed, 4400);
  assert.equal(ev.length, 1);
  assert.equal(ev[0].type, 'error');
  assert.equal(ev[0].code, 'protocol_error');
  assert.equal(ev[0].message, 'invalid JSON at byte 36: duplicate member name "sample_rate"; each name may appear once');
});

test('protocol errors: bad JSON, unknown type, oversized frame; audio with no config is sniffed', async () => {
  // audio with no config: a session with the server's defaults, encoding
  // auto (seed 001's snippet); bytes of no container then close 4415
  let ws = new WebSocket(srv.url + '/v1/stream');
  let ev = [];
  ws.on('message', (d) => ev.push(JSON.parse(d.toString())));
  await new Promise((r) => ws.on('open', r));
  ws.send(Buffer.from('these bytes are no audio container '.repeat(40)));
  let code = await new Promise((r) => ws.on('close', (c) => r(c)));
  assert.equal(code, 4415);
  assert.equal(ev[0].type, 'ready');
  assert.equal(ev[0].encoding, 'auto');
  assert.ok(ev.some((e) => e.type === 'error' && e.code === 'bad_audio'), JSON.stringify(ev));

  // bad JSON and unknown types after config: errors, session survives
  const s = await openNative(srv.url, {});
  s.ws.send('{not json');
  s.ws.send(JSON.stringify({ type: 'dance' }));
  s.ws.send(JSON.stringify({ type: 'state', state: 'sleeping' }));
  s.ws.send(JSON.stringify({ type: 'config' }));
  await waitFor(s.events, () => s.events.filter((e) => e.type === 'error').length >= 4);
  const errs = s.events.filter((e) => e.type === 'error');
  assert.match(errs[0].message, /invalid JSON/i);
  assert.match(errs[1].message, /unknown message type "dance"/);
  assert.match(errs[2].message, /listening/);
  assert.match(errs[3].message, /already configured/);
  await streamPcm(s.ws, wavPcm(CLIPS[1]));
  s.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await s.closed).code, 1000);
  assert.match(finals(s.events), /young man/);

  // a message over --max-frame-bytes (64 KiB here) closes with 1009
  const big = await openNative(srv.url, {});
  big.ws.send(Buffer.alloc(70000));
  assert.equal((await big.closed).code, 1009);
});

test('errors are events like the others: seq contiguous around protocol errors mid-stream, speaker_id on every event', async () => {
  const s = await openNative(srv.url, { speaker_id: 'spk-7' });
  assert.equal(s.ready.type, 'ready');
  const pcm = wavPcm(CLIPS[1]);
  const half = pcm.length / 2 - ((pcm.length / 2) % 2);
  await streamPcm(s.ws, pcm.subarray(0, half));
  // bad messages while results of the first half are still being made
  s.ws.send('{not json');
  s.ws.send(JSON.stringify({ type: 'dance' }));
  s.ws.send(JSON.stringify({ type: 'state', state: 'sleeping' }));
  s.ws.send(JSON.stringify({ type: 'finalize' }));
  s.ws.send(JSON.stringify({ type: 'config' }));
  await streamPcm(s.ws, pcm.subarray(half));
  s.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await s.closed).code, 1000);
  const evs = s.events.filter((e) => e.type !== 'ready' && e.type !== 'ack'); // acks: connection-level, no seq
  assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i), JSON.stringify(evs.map((e) => [e.type, e.seq])));
  for (const e of evs) assert.equal(e.speaker_id, 'spk-7', JSON.stringify(e));
  const errs = evs.filter((e) => e.type === 'error');
  assert.equal(errs.length, 4);
  assert.deepEqual(errs.map((e) => e.code), Array(4).fill('protocol_error'));
  // in the order sent: after the first half's results, before the finalize's final
  const at = (pred) => evs.findIndex(pred);
  const fin = at((e) => e.type === 'transcript' && e.is_final && e.reason === 'finalize');
  assert.ok(fin > at((e) => e.type === 'error' && /state/.test(e.message)), 'errors before the finalize final');
  assert.ok(fin < at((e) => e.type === 'error' && /already configured/.test(e.message)), 'the config error after it');
  assert.equal(evs.at(-1).type, 'closed');
  checkContract(s.events);
  assert.match(finals(s.events), /young/);

  // an error with no session (bad config) is the only event: seq 0
  const bad = await openNative(srv.url, { sample_rate: 1 });
  assert.equal(bad.ready.type, 'error');
  assert.equal(bad.ready.seq, 0);
  assert.equal((await bad.closed).code, 4400);
});

test('--max-session-seconds: a limit_exceeded error numbered with the session\'s events, then 4429', async () => {
  const own = await startServer(['--max-session-seconds', '1']);
  try {
    const s = await openNative(own.url, { speaker_id: 'spk-l' });
    await streamPcm(s.ws, wavPcm(CLIPS[1]), { realtime: true });
    const c = await s.closed;
    assert.equal(c.code, 4429);
    const evs = s.events.filter((e) => e.type !== 'ready' && e.type !== 'ack');
    assert.deepEqual(evs.map((e) => e.seq), evs.map((_, i) => i));
    const e = evs.find((x) => x.type === 'error');
    assert.equal(e.code, 'limit_exceeded');
    assert.match(e.message, /1 s limit/);
    assert.equal(e.speaker_id, 'spk-l');
    assert.equal(evs.at(-1).type, 'closed');
  } finally {
    await own.stop();
  }
});

test('undecodable audio closes 4415 with a typed error', async () => {
  const s = await openNative(srv.url, { encoding: 'wav' });
  s.ws.send(Buffer.from('definitely not a RIFF header, just some text bytes'));
  const c = await s.closed;
  assert.equal(c.code, 4415);
  const e = s.events.find((x) => x.type === 'error');
  assert.equal(e.code, 'bad_audio');
  assert.match(e.message, /WAV/);
});

test('idle timeout: finals delivered, timeout error, close 4408', async () => {
  const own = await startServer(['--idle-timeout', '2']);
  try {
    await idleChecks(own);
  } finally {
    await own.stop();
  }
});

async function idleChecks(srv) {
  const s = await openNative(srv.url, {});
  const pcm = wavPcm(CLIPS[1]);
  await streamPcm(s.ws, pcm.subarray(0, pcm.length - 3200)); // no trailing silence
  const t0 = Date.now();
  const c = await s.closed;
  assert.equal(c.code, 4408);
  assert.match(c.reason, /idle/);
  assert.ok(Date.now() - t0 < 15000);
  assert.ok(s.events.some((e) => e.type === 'error' && e.code === 'timeout'));
  assert.match(finals(s.events), /young/);
  // keepalive keeps a session open past the timeout
  const k = await openNative(srv.url, {});
  for (let i = 0; i < 4; i++) { await sleep(1000); k.ws.send(JSON.stringify({ type: 'keepalive' })); }
  assert.equal(k.ws.readyState, WebSocket.OPEN);
  k.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await k.closed).code, 1000);
}

test('unknown WebSocket paths are refused', async () => {
  const ws = new WebSocket(srv.url + '/v1/nope');
  const err = await new Promise((r) => { ws.on('error', r); ws.on('unexpected-response', (req, res) => r(res)); });
  assert.ok(err.statusCode === 404 || /404/.test(String(err.message)), String(err.message || err.statusCode));
});

test('admission: at capacity a new session is refused busy (1013); freed capacity admits at once', async () => {
  // One worker allowed 10% busy: a single session decoding at ~0.1-0.3 CPU
  // seconds per audio second already needs more than that.
  const small = await startServer(['--workers', '1', '--max-busy-percent', '10']);
  try {
    const a = await openNative(small.url, {});
    assert.equal(a.ready.type, 'ready');
    const pcm = wavPcm(CLIPS[0]);
    await streamPcm(a.ws, pcm.subarray(0, 32000 * 4));
    // Its demand counts once 2 s of audio are decoded (a partial past 2 s),
    // while it is talking (audio still arriving).
    await waitFor(a.events, (e) => e.type === 'transcript' && e.end >= 2.5, 30000);
    const talking = streamPcm(a.ws, pcm.subarray(32000 * 4, 32000 * 7), { realtime: true });
    const b = await openNative(small.url, {});
    assert.equal(b.ready.type, 'error', JSON.stringify(b.ready));
    assert.equal(b.ready.code, 'busy');
    assert.match(b.ready.message, /capacity/);
    assert.equal((await b.closed).code, 1013);
    await talking;
    a.ws.send(JSON.stringify({ type: 'close' }));
    assert.equal((await a.closed).code, 1000);
    // No wait for the next measurement: the ended session no longer counts.
    const c = await openNative(small.url, {});
    assert.equal(c.ready.type, 'ready', JSON.stringify(c.ready));
    c.ws.send(JSON.stringify({ type: 'close' }));
    assert.equal((await c.closed).code, 1000);
    const m = await (await fetch(small.http + '/metrics')).text();
    assert.match(m, /hark_sessions_refused_total\{reason="busy"\} 1\b/);
  } finally {
    await small.stop();
  }
});

test('a flood client is paused while another session keeps its latency', async () => {
  // A live session at real-time pace, first alone, then while a flooder
  // pushes ~7 minutes of audio as fast as TCP allows. The flooder gets
  // paused (back-pressure) and worker turns are fair, so the live session's
  // final comes about as quickly as without the flood.
  const pcm = wavPcm(CLIPS[1]);
  const liveLag = async () => {
    const live = await openNative(srv.url, {});
    const t0 = Date.now();
    await streamPcm(live.ws, Buffer.concat([pcm, Buffer.alloc(32000)]), { realtime: true });
    const fin = await waitFor(live.events, (e) => e.type === 'transcript' && e.is_final, 30000);
    const lag = Date.now() - t0 - (fin.end * 1000);
    assert.match(fin.text, /young man/);
    live.ws.send(JSON.stringify({ type: 'close' }));
    await live.closed;
    return lag;
  };
  const alone = await liveLag();
  const flood = await openNative(srv.url, {});
  const big = Buffer.concat(Array(16).fill(CLIPS.map(wavPcm)).flat());
  let floodDone = false, handed = 0;
  const f = (async () => {
    for (let off = 0; off < big.length && !floodDone; off += 32000) {
      flood.ws.send(big.subarray(off, off + 32000));
      handed += Math.min(32000, big.length - off);
      while (flood.ws.bufferedAmount > 4 << 20 && !floodDone) await sleep(5);
    }
  })();
  await sleep(500);
  const withFlood = await liveLag();
  floodDone = true;
  await f;
  // the server stopped reading the flooder: data is still waiting client-side
  assert.ok(flood.ws.bufferedAmount > 0, 'flooder was never paused');
  assert.ok(handed - flood.ws.bufferedAmount < big.length, 'everything was read: no back-pressure');
  assert.ok(withFlood < Math.max(3000, 2.5 * alone + 1000),
    `live final lag ${withFlood} ms with a flood vs ${alone} ms alone`);
  flood.ws.terminate();
});

test('SIGTERM: open sessions get their finals, then close 1001', async () => {
  const own = await startServer(['--shutdown-timeout', '30']);
  try {
    const sessions = await Promise.all([0, 1, 2].map(() => openNative(own.url, {})));
    const pcm = wavPcm(CLIPS[1]);
    await Promise.all(sessions.map((s) => streamPcm(s.ws, pcm.subarray(0, pcm.length - 3200))));
    await sleep(200);
    const exited = own.stop('SIGTERM');
    for (const s of sessions) {
      const c = await s.closed;
      assert.equal(c.code, 1001);
      assert.match(finals(s.events), /young/);
      assert.equal(s.events[s.events.length - 1].type, 'closed');
    }
    assert.equal(await exited, 0);
    // new connections are refused while draining / after exit
  } finally {
    await own.stop('SIGKILL');
  }
});
