// `hark serve --backend nats://`: a gateway with no local recognition that
// hands every session to `hark worker`s over NATS (docs/deployment.md,
// Gateways). Real nats-server (started here), real workers, real gateways,
// real clients: the native protocol over `ws`, the official Deepgram SDK,
// curl for the batch API. The reference is a local `hark serve` on the same
// audio.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { encode, decode } from '@msgpack/msgpack';
import { DeepgramClient } from '@deepgram/sdk';
import { WORKER_ARGS, freePort, startNats as natsAt, startWorker as workerAt } from './nats_lib.mjs';
import {
  HARK, CLIPS, wavPcm, sleep, startServer, openNative, streamPcm, waitFor, curl,
} from './lib.mjs';


// The same engine settings as the reference server below: 2 worker threads,
// admission off (a loaded CI machine must not refuse starts).
const ENGINE_ARGS = WORKER_ARGS;
const startNats = (port, dir) => natsAt(port, { dir });
const startWorker = (url, args = []) => workerAt(url, [...ENGINE_ARGS, ...args]);

let dir, nats, worker, gwA, gwB, local;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hark-gw-'));
  nats = await startNats(await freePort(), dir);
  worker = await startWorker(nats.url);
  // two gateways, nothing in front of them but their own ports
  gwA = await startServer(['--backend', nats.url, '--backend-timeout', '3', '--idle-timeout', '5']);
  gwB = await startServer(['--backend', nats.url, '--backend-timeout', '3', '--idle-timeout', '5']);
  local = await startServer([...ENGINE_ARGS, '--idle-timeout', '5']);
});

after(async () => {
  for (const s of [gwA, gwB, local]) if (s) assert.equal(await s.stop(), 0, 'clean exit\n' + s.log().slice(-2000));
  if (worker) assert.equal(await worker.stop(), 0, 'worker exit status\n' + worker.log().slice(-2000));
  if (nats) await nats.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// One native session of pcm; its events until the close.
async function nativeSession(url, pcm, config = {}) {
  const s = await openNative(url, { sample_rate: 16000, ...config });
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, pcm);
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  return s.events;
}

// What a client keeps of a session: its finals (text, segment, words) and
// the closing counts.
function finalsOf(events) {
  const f = events.filter((e) => e.type === 'transcript' && e.is_final)
    .map((e) => ({ text: e.text, segment: e.segment, reason: e.reason, words: (e.words || []).map((w) => w.word) }));
  const closed = events.find((e) => e.type === 'closed');
  return { finals: f, audio_seconds: closed?.audio_seconds, segments: closed?.segments };
}

// The result contract: seq counts events from 0, partials then exactly one
// final per segment, closed last.
function checkContract(events) {
  const ev = events.filter((e) => typeof e.seq === 'number');
  ev.forEach((e, i) => assert.equal(e.seq, i, 'seq counts events without gaps'));
  let seg = 0;
  for (const e of ev.filter((x) => x.type === 'transcript')) {
    assert.equal(e.segment, seg);
    if (e.is_final) {
      seg++;
      assert.equal(typeof e.committed_ms, 'number');
    }
  }
  assert.equal(ev[ev.length - 1].type, 'closed');
}

test('native client: the finals through a gateway equal a local hark serve\'s on the same audio', async () => {
  // each server sees the same sessions in the same order (the engine adapts
  // across sessions, so order matters); two clips with silence between
  // utterances give several segments
  for (const k of [1, 4]) {
    const pcm = Buffer.concat([wavPcm(CLIPS[k]), Buffer.alloc(32000), wavPcm(CLIPS[(k + 2) % CLIPS.length])]);
    const viaLocal = await nativeSession(local.url, pcm);
    const viaGw = await nativeSession(gwA.url, pcm);
    checkContract(viaGw);
    const a = finalsOf(viaLocal), b = finalsOf(viaGw);
    assert.ok(a.finals.length >= 2, JSON.stringify(a));
    assert.deepEqual(b, a, `clip ${k}`);
    assert.ok(viaGw.filter((e) => e.type === 'transcript' && !e.is_final).length > 0, 'partials came through');
  }
});

test('two gateways on their own ports serve sessions at the same time, results never mixed', async () => {
  const jobs = [];
  for (let i = 0; i < 4; i++) {
    const k = [1, 3][i % 2];
    jobs.push(nativeSession(i % 2 ? gwB.url : gwA.url, wavPcm(CLIPS[k])).then((ev) => ({ ev, k })));
  }
  const res = await Promise.all(jobs);
  const refs = {};
  for (const { ev, k } of res) {
    checkContract(ev);
    refs[k] ??= finalsOf(await nativeSession(local.url, wavPcm(CLIPS[k])));
    const ref = refs[k];
    // not compared word for word: concurrent sessions on the worker adapt
    // the engine in another order; the words must be this clip's
    const text = finalsOf(ev).finals.map((f) => f.text).join(' ');
    const refWords = new Set(ref.finals.flatMap((f) => f.words));
    const got = text.split(/\s+/).filter(Boolean);
    assert.ok(got.length > 0);
    const same = got.filter((w) => refWords.has(w)).length;
    assert.ok(same / got.length >= 0.7, `clip ${k}: "${text}" vs ${JSON.stringify(ref.finals)}`);
  }
});

test('official Deepgram SDK through the gateway: the same is_final transcripts, SpeechStarted and UtteranceEnd as a local server', async () => {
  async function run(srv) {
    const dg = new DeepgramClient({ apiKey: 'unused', baseUrl: srv.http });
    const socket = await dg.listen.v1.connect({ model: 'nova-3', encoding: 'linear16', sample_rate: 16000,
      channels: 1, interim_results: 'true', punctuate: 'false', vad_events: 'true', utterance_end_ms: '1000' });
    const messages = [];
    socket.on('message', (m) => messages.push(m));
    const closed = new Promise((resolve) => socket.on('close', resolve));
    socket.connect();
    await socket.waitForOpen();
    const pcm = Buffer.concat([wavPcm(CLIPS[2]), Buffer.alloc(32000), wavPcm(CLIPS[3])]);
    for (let off = 0; off < pcm.length; off += 3200) {
      socket.sendMedia(pcm.subarray(off, off + 3200));
      await sleep(10);
    }
    socket.sendCloseStream({ type: 'CloseStream' });
    const ev = await closed;
    assert.equal(ev.code, 1000);
    return messages;
  }
  const a = await run(local), b = await run(gwB);
  const finalsText = (ms) => ms.filter((m) => m.type === 'Results' && m.is_final)
    .map((m) => m.channel.alternatives[0].transcript);
  assert.ok(finalsText(a).length >= 2, JSON.stringify(finalsText(a)));
  assert.deepEqual(finalsText(b), finalsText(a));
  assert.ok(b.some((m) => m.type === 'Results' && !m.is_final), 'interim results came through');
  assert.ok(b.some((m) => m.type === 'Metadata'), 'Metadata at the end');
  // the VAD's events come through too (the start asks the worker for them)
  const vad = (ms) => ms.filter((m) => m.type === 'SpeechStarted' || m.type === 'UtteranceEnd')
    .map((m) => m.type === 'UtteranceEnd' ? `UtteranceEnd ${m.last_word_end}` : `SpeechStarted ${m.timestamp}`);
  assert.ok(vad(a).some((x) => x.startsWith('UtteranceEnd')), JSON.stringify(vad(a)));
  assert.deepEqual(vad(b), vad(a));
});

test('batch: POST /v1/listen through the gateway gives the local server\'s transcript', async () => {
  const post = (srv) => curl(['-H', 'Content-Type: audio/wav', '--data-binary', '@' + CLIPS[4], `${srv.http}/v1/listen`]);
  const a = await post(local), b = await post(gwA);
  assert.equal(a.status, 200, a.body);
  assert.equal(b.status, 200, b.body);
  const t = (r) => r.json().results.channels[0].alternatives[0].transcript;
  assert.ok(t(a).length > 0);
  assert.equal(t(b), t(a));
});

test('results reach only the gateway that holds the session: it subscribes to {subject_out}.{id} while the session lives, never to {subject_out}.*', async () => {
  // nats-server's monitoring port shows each connection's subscriptions
  const port = await freePort(), mport = await freePort();
  const conf = path.join(dir, `subs-${port}.conf`);
  writeFileSync(conf, `listen: 127.0.0.1:${port}\nhttp: 127.0.0.1:${mport}\n`);
  const ns = await natsAt(port, { dir, conf });
  const w = await startWorker(ns.url);
  const g1 = await startServer(['--backend', ns.url]);
  const g2 = await startServer(['--backend', ns.url]);
  const subs = async () => (await curl([`http://127.0.0.1:${mport}/connz?subs=1`])).json().connections
    .map((c) => ({ name: c.name, subs: c.subscriptions_list || [] }));
  try {
    const s = await openNative(g1.url, { sample_rate: 16000 });
    assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
    const mine = `ai.voice.transcription.${s.ready.session_id}`;
    const during = await subs();
    const gws = during.filter((c) => c.name === 'hark-gateway');
    assert.equal(gws.length, 2, JSON.stringify(during));
    assert.deepEqual(gws.map((c) => c.subs.includes(mine)).sort(), [false, true], JSON.stringify(during));
    // besides the hand-over's requests ({subject_out}.take.*: two tokens, never a result's subject)
    assert.ok(!during.some((c) => c.subs.some((x) => x.startsWith('ai.voice.transcription.') &&
      !x.endsWith(s.ready.session_id) && x !== 'ai.voice.transcription.take.*')), JSON.stringify(during));
    await streamPcm(s.ws, wavPcm(CLIPS[1]));
    s.ws.send(JSON.stringify({ type: 'close' }));
    await s.closed;
    assert.ok(finalsOf(s.events).finals.length >= 1);
    // the session is gone: so is its subscription (bounded wait)
    for (const end = Date.now() + 10000; (await subs()).some((c) => c.subs.includes(mine));) {
      assert.ok(Date.now() < end, 'the subscription of an ended session stays');
      await sleep(100);
    }
  } finally {
    assert.equal(await g1.stop(), 0);
    assert.equal(await g2.stop(), 0);
    assert.equal(await w.stop(), 0);
    await ns.stop();
  }
});

// A JetStream worker whose connection stalls publishes its last results
// into the stall; they arrive after the next owner's, some with a number the
// next owner used too (docs/nats.md "JetStream"). The gateway drops a result
// whose number it already delivered. Here the stale copy is replayed by hand:
// the session's first result, published again after its first final.
test('a result number the gateway already delivered (a stale copy from a previous worker) is dropped, not delivered again', async () => {
  const nc = await connect({ servers: nats.url });
  try {
    const s = await openNative(gwA.url, { sample_rate: 16000 });
    assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
    const subject = `ai.voice.transcription.${s.ready.session_id}`;
    let first = null;
    nc.subscribe(subject, { callback: (err, m) => {
      if (!err && !first && decode(m.data).type === undefined) first = m.data;
    } });
    await nc.flush();
    const silence = Buffer.alloc(32000 * 1.5);
    await streamPcm(s.ws, Buffer.concat([wavPcm(CLIPS[1]), silence]), { realtime: true });
    await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final, 20000);
    assert.ok(first, 'the worker published a result');
    nc.publish(subject, first);
    await nc.flush();
    await streamPcm(s.ws, Buffer.concat([wavPcm(CLIPS[4]), silence]), { realtime: true });
    s.ws.send(JSON.stringify({ type: 'close' }));
    await s.closed;
    checkContract(s.events);
    const m = await (await fetch(gwA.http + '/metrics')).text();
    assert.match(m, /^hark_backend_stale_results_total 1$/m);
  } finally {
    await nc.close();
  }
});

test('an option the worker\'s engine refuses: a typed error from the worker, then the close', async () => {
  const s = await openNative(gwA.url, { sample_rate: 16000, language: 'xx-YY' });
  assert.equal(s.ready.type, 'ready', 'the gateway cannot check the worker\'s languages before the start');
  const err = await waitFor(s.events, (e) => e.type === 'error', 10000);
  assert.equal(err.code, 'unsupported', JSON.stringify(err));
  await s.closed;
  assert.equal(s.events[s.events.length - 1].type, 'closed');
});

test('a resume on the other gateway takes the session over; a resume back on the first takes it back', async () => {
  const s = await openNative(gwA.url, { sample_rate: 16000 });
  const { session_id: id, resume_token: token } = s.ready;
  await streamPcm(s.ws, wavPcm(CLIPS[1]).subarray(0, 32000));
  await sleep(300);
  const lastSeq = Math.max(-1, ...s.events.filter((e) => typeof e.seq === 'number').map((e) => e.seq));
  s.ws.terminate(); // a dropped connection, no close
  await sleep(300); // detached on A (an attached session is not handed over)
  async function resume(url) {
    const ws = new (await import('ws')).default(url + '/v1/stream');
    const events = [];
    ws.on('message', (d, bin) => { if (!bin) events.push(JSON.parse(d.toString())); });
    await once(ws, 'open');
    ws.send(JSON.stringify({ type: 'resume', session_id: id, resume_token: token, last_seq: lastSeq, audio_bytes: 32000 }));
    const r = await waitFor(events, (e) => e.type === 'resumed' || e.type === 'error', 10000);
    return { ws, r, events };
  }
  const other = await resume(gwB.url);
  assert.equal(other.r.type, 'resumed', JSON.stringify(other.r));
  assert.equal(other.r.audio_bytes, 32000);
  other.ws.terminate();
  await sleep(300);
  const back = await resume(gwA.url);
  assert.equal(back.r.type, 'resumed', JSON.stringify(back.r));
  back.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(back.events, (e) => e.type === 'closed', 15000);
  const seqs = back.events.filter((e) => typeof e.seq === 'number').map((e) => e.seq);
  assert.equal(seqs[0], lastSeq + 1, JSON.stringify(seqs));
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, JSON.stringify(seqs));
  back.ws.close();
});

test('no worker on the subjects: the session ends with a timeout error within --backend-timeout', async () => {
  const gw = await startServer(['--backend', nats.url, '--nats-subject-in', 'nobody.listens', '--backend-timeout', '1']);
  try {
    const t0 = Date.now();
    const s = await openNative(gw.url, { sample_rate: 16000 });
    const err = await waitFor(s.events, (e) => e.type === 'error', 10000);
    assert.equal(err.code, 'timeout', JSON.stringify(err));
    assert.match(err.message, /no hark worker answered/);
    await s.closed;
    assert.ok(Date.now() - t0 < 6000, `took ${Date.now() - t0} ms`);
    assert.equal(s.events[s.events.length - 1].type, 'closed');
  } finally {
    assert.equal(await gw.stop(), 0);
  }
});

test('the only worker dies (SIGKILL) mid-session: the client gets a timeout error and its close, not a hang', async () => {
  const w2 = await startWorker(nats.url, ['--nats-subject-in', 'solo.in', '--nats-subject-out', 'solo.out']);
  const gw = await startServer(['--backend', nats.url, '--nats-subject-in', 'solo.in',
    '--nats-subject-out', 'solo.out', '--backend-timeout', '2']);
  try {
    const s = await openNative(gw.url, { sample_rate: 16000 });
    const pcm = wavPcm(CLIPS[1]);
    await streamPcm(s.ws, pcm.subarray(0, pcm.length / 2));
    await waitFor(s.events, (e) => e.type === 'transcript', 15000);
    await w2.stop('SIGKILL');
    await streamPcm(s.ws, pcm.subarray(pcm.length / 2));
    const t0 = Date.now();
    s.ws.send(JSON.stringify({ type: 'close' }));
    const err = await waitFor(s.events, (e) => e.type === 'error', 15000);
    assert.equal(err.code, 'timeout', JSON.stringify(err));
    await s.closed;
    assert.ok(Date.now() - t0 < 8000, `took ${Date.now() - t0} ms`);
    checkContract(s.events);
  } finally {
    await w2.stop('SIGKILL');
    assert.equal(await gw.stop(), 0);
  }
});

test('audio faster than the worker recognises is paced, not dropped: every byte arrives, no limit_exceeded', async () => {
  // a worker with a small queue (128 KiB) and a gateway whose window is a
  // quarter of its own 256 KiB: 30 s of audio (950 KB) sent at once would
  // overflow the worker's queue without the pacing
  const w2 = await startWorker(nats.url, ['--nats-subject-in', 'pace.in', '--nats-subject-out', 'pace.out',
    '--session-buffer-bytes', '131072']);
  const gw = await startServer(['--backend', nats.url, '--nats-subject-in', 'pace.in',
    '--nats-subject-out', 'pace.out', '--session-buffer-bytes', '262144']);
  try {
    const pcm = Buffer.concat(CLIPS.flatMap((c) => [wavPcm(c), Buffer.alloc(32000)]));
    const ev = await nativeSession(gw.url, pcm, { interim_results: false });
    const errors = ev.filter((e) => e.type === 'error');
    assert.deepEqual(errors, []);
    checkContract(ev);
    const closed = ev.find((e) => e.type === 'closed');
    assert.ok(Math.abs(closed.audio_seconds - pcm.length / 32000) < 0.01, JSON.stringify(closed));
    assert.ok(!/limit_exceeded/.test(w2.log()), w2.log().slice(-1500));
    assert.ok(finalsOf(ev).finals.length >= 4, JSON.stringify(finalsOf(ev)));
  } finally {
    assert.equal(await w2.stop(), 0);
    assert.equal(await gw.stop(), 0);
  }
});

test('the worker side of the gateway\'s protocol, raw: ack -> started, keepalive -> alive, finalize, chunk_timeout 0', async () => {
  const nc = await connect({ servers: nats.url });
  const id = 'raw-gw-1', msgs = [];
  const sub = nc.subscribe(`ai.voice.transcription.${id}`);
  (async () => { for await (const m of sub) msgs.push(decode(m.data)); })();
  const other = nc.subscribe('ai.voice.transcription.raw-unknown');
  const otherMsgs = [];
  (async () => { for await (const m of other) otherMsgs.push(decode(m.data)); })();
  await nc.flush();
  const send = (o, to = id) => nc.publish(`ai.voice.stream.${to}`, encode(o));
  const until = async (pred, what) => {
    for (let end = Date.now() + 20000; !pred();) {
      if (Date.now() > end) throw new Error(`no ${what}: ${JSON.stringify(msgs).slice(0, 1500)}`);
      await sleep(20);
    }
  };
  try {
    send({ type: 'start', session_id: id, sample_rate: 16000, channels: 1, ack: true, chunk_timeout: 0,
      interim_results: false });
    await until(() => msgs.some((m) => m.type === 'started'), 'started');
    assert.equal(msgs[0].type, 'started', 'started comes first');
    assert.match(msgs[0].worker, /hark worker pid \d+/);
    const pcm = wavPcm(CLIPS[1]);
    send({ type: 'chunk', audio: pcm.subarray(0, 64000) });
    send({ type: 'keepalive' });
    await until(() => msgs.some((m) => m.type === 'alive'), 'alive');
    const alive = msgs.find((m) => m.type === 'alive');
    assert.equal(alive.received_bytes, 64000);
    assert.equal(typeof alive.queued_bytes, 'number');
    // a pause longer than the worker's --chunk-timeout (2 s): no finalize,
    // this session turned the rule off
    await sleep(2600);
    assert.ok(!msgs.some((m) => m.type === undefined && m.is_final), JSON.stringify(msgs));
    send({ type: 'finalize' });
    await until(() => msgs.some((m) => m.type === undefined && m.is_final), 'final');
    assert.equal(msgs.find((m) => m.type === undefined && m.is_final).reason, 'finalize');
    send({ type: 'keepalive' }, 'raw-unknown'); // no session: no answer, no error
    send({ type: 'end' });
    await until(() => msgs.some((m) => m.type === 'closed'), 'closed');
    await sleep(200);
    assert.deepEqual(otherMsgs, []);
    assert.deepEqual(msgs.filter((m) => m.type === 'error'), []);
  } finally {
    await nc.close();
  }
});

test('a gateway without NATS: /readyz says 503 why, sessions are refused (native: busy; Deepgram: HTTP 503; batch: 503) and not counted as opened, then both work once nats-server is up', async () => {
  const port = await freePort();
  const gw = await startServer(['--backend', `nats://127.0.0.1:${port}`]);
  let ns;
  try {
    const r = await curl([`${gw.http}/readyz`]);
    assert.equal(r.status, 503);
    assert.match(r.body, /not connected to NATS/);
    const s = await openNative(gw.url, { sample_rate: 16000 });
    assert.equal(s.ready.type, 'error', JSON.stringify(s.ready));
    assert.equal(s.ready.code, 'busy');
    await s.closed;
    // a dialect whose session starts at the upgrade (Deepgram): HTTP 503
    const WS = (await import('ws')).default;
    const dg = new WS(gw.url + '/v1/listen?encoding=linear16&sample_rate=16000');
    dg.on('error', () => {});
    const [, res] = await Promise.race([once(dg, 'unexpected-response'),
      once(dg, 'open').then(() => { throw new Error('the upgrade succeeded'); })]);
    assert.equal(res.statusCode, 503);
    res.destroy();
    const batch = await curl(['-H', 'Content-Type: audio/wav', '--data-binary', '@' + CLIPS[4], `${gw.http}/v1/listen`]);
    assert.equal(batch.status, 503, batch.body);
    // refused starts opened no session (admission let them in; the backend refused)
    const m0 = (await curl([`${gw.http}/metrics`])).body;
    assert.match(m0, /^hark_sessions_opened_total 0$/m);
    assert.match(m0, /^hark_sessions_active 0$/m);
    ns = await startNats(port, dir);
    const w = await startWorker(ns.url);
    try {
      for (const end = Date.now() + 15000; (await curl([`${gw.http}/readyz`])).status !== 200;) {
        assert.ok(Date.now() < end, 'the gateway connected');
        await sleep(100);
      }
      const ev = await nativeSession(gw.url, wavPcm(CLIPS[1]));
      checkContract(ev);
      assert.ok(finalsOf(ev).finals.length >= 1);
      const m = (await curl([`${gw.http}/metrics`])).body;
      assert.match(m, /^hark_backend_connected 1$/m);
      assert.match(m, /^hark_backend_sessions 0$/m);
      assert.match(m, /^hark_backend_timeouts_total 0$/m);
      assert.match(m, /^hark_sessions_opened_total 1$/m);
    } finally {
      assert.equal(await w.stop(), 0);
    }
  } finally {
    assert.equal(await gw.stop(), 0);
    if (ns) await ns.stop();
  }
});
