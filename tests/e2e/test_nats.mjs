// hark worker over NATS (seed 004): a real nats-server (Debian's, on a free
// loopback port), the real `hark worker`, and a real client (npm nats +
// @msgpack/msgpack) speaking the seed's msgpack protocol with real
// recordings.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { encode, decode } from '@msgpack/msgpack';
import { WORKER_ARGS, freePort, startNats as natsAt, startWorker as workerAt } from './nats_lib.mjs';
import {
  HARK, CLIPS, wavPcm, sleep, wer, references, startServer, openNative, finals as wsFinals,
  streamPcm as wsStreamPcm, curl, wavOf,
} from './lib.mjs';

const startNats = (port, dir) => natsAt(port, { dir });
const startWorker = (url, args = [], env = {}) => workerAt(url, [...WORKER_ARGS, ...args], env);
const IN = 'ai.voice.stream';
const OUT = 'ai.voice.transcription';

// A seed client: publishes msgpack on {prefixIn}.{id}, collects every
// message on {prefixOut}.> by session id, with its arrival time.
async function startClient(url, { prefixIn = IN, prefixOut = OUT } = {}) {
  const nc = await connect({
    servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200, name: 'hark-e2e',
  });
  const bySession = new Map();
  const arrival = new WeakMap();
  const sub = nc.subscribe(prefixOut + '.>');
  (async () => {
    for await (const m of sub) {
      const id = m.subject.slice(prefixOut.length + 1);
      if (!bySession.has(id)) bySession.set(id, []);
      const msg = decode(m.data);
      arrival.set(msg, Date.now());
      bySession.get(id).push(msg);
    }
  })();
  await nc.flush();
  return {
    nc,
    msgs: (id) => bySession.get(id) || [],
    arrivedAt: (msg) => arrival.get(msg),
    ids: () => [...bySession.keys()],
    send: (id, obj) => nc.publish(`${prefixIn}.${id}`, encode(obj)),
    sendRaw: (id, bytes) => nc.publish(`${prefixIn}.${id}`, bytes),
    close: () => nc.close(),
  };
}

// Polls pred (bounded); on timeout the error shows what did arrive.
let dump = () => '';
async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}\n${dump(what)}`);
    await sleep(20);
  }
}

const brief = (msgs) => msgs.map((m) => m.type ? `${m.type}${m.code ? ':' + m.code + ' ' + m.message : ''}`
  : `${m.is_final ? 'final' : 'partial'}#${m.sequence}[${m.state}] ${m.transcript}`).join('\n');

const results = (msgs) => msgs.filter((m) => m.type === undefined);
const ofType = (msgs, type) => msgs.filter((m) => m.type === type);
const finalText = (msgs) => results(msgs).filter((m) => m.is_final && m.transcript).map((m) => m.transcript).join(' ');

// Streams PCM as seed chunks of chunkBytes (100 ms), timestamps = capture
// time (t0 + audio position), base64 or raw bytes, paced in real time or not.
async function streamPcm(client, id, pcm, { realtime = false, raw = false, chunkBytes = 3200, t0 = 1700000000 } = {}) {
  const start = Date.now();
  for (let off = 0; off < pcm.length; off += chunkBytes) {
    const chunk = pcm.subarray(off, Math.min(off + chunkBytes, pcm.length));
    const timestamp = t0 + off / 32000;
    client.send(id, raw ? { type: 'chunk', audio: chunk, timestamp }
      : { type: 'chunk', audio_b64: Buffer.from(chunk).toString('base64'), timestamp });
    if (realtime) {
      const wait = start + ((off + chunkBytes) / 32000) * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }
  await client.nc.flush();
}

// Several sessions at once, live: every 100 ms of the clock one 100 ms chunk
// of each session's pcm[from..to), interleaved, timestamps = capture time.
// Records s.lastSentAt, when a session's last chunk went out; end: then
// sends the session's end right away.
async function streamLive(c, list, { end = false } = {}) {
  const start = Date.now();
  const ticks = Math.max(...list.map((s) => Math.ceil((s.to - s.from) / 3200)));
  for (let t = 0; t < ticks; t++) {
    for (const s of list) {
      const off = s.from + t * 3200;
      if (off >= s.to) continue;
      const chunk = s.pcm.subarray(off, Math.min(off + 3200, s.to));
      c.send(s.id, { type: 'chunk', audio_b64: Buffer.from(chunk).toString('base64'), timestamp: 1700000000 + off / 32000 });
      if (off + 3200 >= s.to) {
        s.lastSentAt = Date.now();
        if (end) c.send(s.id, { type: 'end' });
      }
    }
    const wait = start + (t + 1) * 100 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  await c.nc.flush();
}

// The seed's result shape, on every result of a session. voice: the
// has_voice_activity every result must have (null: not checked here).
function checkResults(msgs, id, speaker, { state = 'listening', voice = true, partialsFirst = true } = {}) {
  const rs = results(msgs);
  assert.ok(rs.length > 0, 'no results');
  rs.forEach((r, i) => {
    assert.equal(r.sequence, i, 'sequence must count results from 0 without gaps');
    assert.equal(r.session_id, id);
    assert.equal(r.speaker_id, speaker);
    assert.equal(typeof r.transcript, 'string');
    assert.equal(typeof r.is_partial, 'boolean');
    assert.equal(r.is_partial, !r.is_final);
    assert.equal(typeof r.timestamp, 'number');
    assert.ok(Math.abs(r.timestamp - Date.now() / 1000) < 600, 'timestamp is wall-clock seconds');
    assert.equal(typeof r.has_voice_activity, 'boolean');
    if (voice !== null) assert.equal(r.has_voice_activity, voice, `has_voice_activity of ${JSON.stringify(r)}`);
    if (r.is_final) assert.equal(typeof r.committed_ms, 'number');
    else assert.ok(!('committed_ms' in r));
    if (state) assert.equal(r.state, state);
    assert.ok(r.start <= r.end);
  });
  // per segment: partials, then exactly one final
  let seg = 0;
  for (const r of rs) {
    assert.equal(r.segment, seg);
    if (r.is_final) seg++;
  }
  if (partialsFirst) {
    const firstFinal = rs.findIndex((r) => r.is_final);
    assert.ok(firstFinal > 0, 'partials come before the first final');
    assert.ok(rs.slice(0, firstFinal).every((r) => r.is_partial));
  }
  const last = msgs[msgs.length - 1];
  assert.equal(last.type, 'closed', 'closed is the last message');
}

// The finals of clip k against the recordings' reference transcripts: close
// to clip k's words and far from every other clip's (so results of sessions
// never mix). Not equality with `hark transcribe`: the engine adapts its
// cepstral mean across sessions (pocketsphinx.c, CMN), so words can differ
// a little with what ran before. Errors are counted per word of the longer
// of reference and hypothesis.
const TRUTH = (() => {
  const r = references();
  return CLIPS.map((c) => r[path.basename(c, '.wav')]);
})();
function assertClip(text, k, what = '') {
  const rate = (j) => {
    const w = wer(TRUTH[j], text);
    return w.errors / Math.max(w.words, text.split(/\s+/).filter(Boolean).length, 1);
  };
  const own = rate(k);
  assert.ok(own <= 0.6, `${what}: "${text}" vs "${TRUTH[k]}" (error rate ${own.toFixed(2)})`);
  TRUTH.forEach((_, j) => {
    if (j !== k) assert.ok(rate(j) >= own + 0.2, `${what}: "${text}" is about as close to clip ${j} as to clip ${k}`);
  });
}

let dir, nats, worker, client;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hark-nats-'));
  nats = await startNats(await freePort(), dir);
  // 6 worker threads (on 2 cores): admission's capacity is threads x
  // --max-busy-percent, and 6 sessions at full speed measure more than 2
  // workers' worth under ASan; the tests here are about NATS, not admission
  // (test_server and the admission test below are)
  worker = await startWorker(nats.url, ['--max-frame-bytes', '65536', '--nats-idle-timeout', '4',
    '--chunk-timeout', '1.5', '--workers', '6']);
  client = await startClient(nats.url);
  dump = (what) => {
    const id = what.match(/of (\S+)/)?.[1];
    const ids = id ? [id] : [...new Set(['intr-1', 'bad-1', 'idle-1', 'rt-0880'])];
    return ids.map((i) => `--- ${i}:\n${brief(client.msgs(i))}`).join('\n') + '\n--- worker log:\n' + worker.log().slice(-3000);
  };
});

after(async () => {
  if (client) await client.close().catch(() => {});
  if (worker) {
    const code = await worker.stop();
    // a clean exit also means no leak report under sanitizer builds
    assert.equal(code, 0, 'worker exit status\n' + worker.log().slice(-3000));
  }
  if (nats) await nats.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('seed flow in real time: partials then finals, strictly increasing sequence, the recording\'s words', async () => {
  const id = 'rt-0880';
  client.send(id, { type: 'start', session_id: id, sample_rate: 16000, channels: 1, state: 'listening', speaker_id: 'speaker-1' });
  await streamPcm(client, id, wavPcm(CLIPS[1]), { realtime: true });
  client.send(id, { type: 'end' });
  await until(() => ofType(client.msgs(id), 'closed').length, 60000, 'closed of ' + id);
  const msgs = client.msgs(id);
  checkResults(msgs, id, 'speaker-1');
  assertClip(finalText(msgs), 1, id);
  assert.ok(results(msgs).filter((r) => r.is_partial).length >= 2);
  assert.equal(ofType(msgs, 'error').length, 0, JSON.stringify(ofType(msgs, 'error')));
  const closed = ofType(msgs, 'closed')[0];
  assert.ok(Math.abs(closed.audio_seconds - 2.99) < 0.02);
});

test('6 concurrent sessions (all 5 clips, base64 and raw audio) never mix results', async () => {
  const jobs = [];
  for (let i = 0; i < 6; i++) {
    const k = i % CLIPS.length;
    const id = `conc-${i}`;
    jobs.push((async () => {
      client.send(id, { type: 'start', sample_rate: 16000, channels: 1, speaker_id: `spk-${i}` });
      await streamPcm(client, id, wavPcm(CLIPS[k]), { raw: i % 2 === 1 });
      client.send(id, { type: 'end' });
      await until(() => ofType(client.msgs(id), 'closed').length, 120000, `closed of ${id}`);
      return { id, k, i };
    })());
  }
  for (const { id, k, i } of await Promise.all(jobs)) {
    const msgs = client.msgs(id);
    checkResults(msgs, id, `spk-${i}`);
    assertClip(finalText(msgs), k, `session ${id} (clip ${k})`);
  }
});

test('interrupts: speech while responding publishes an interrupt and switches to listening', async () => {
  const id = 'intr-1';
  const silence = Buffer.alloc(32000); // 1 s: the endpoint final of each clip comes in it
  client.send(id, { type: 'start', sample_rate: 16000, channels: 1, state: 'responding', speaker_id: 'speaker-7' });
  await streamPcm(client, id, Buffer.concat([wavPcm(CLIPS[1]), silence]), { t0: 100 });
  client.send(id, { type: 'state_change', state: 'responding' });
  await streamPcm(client, id, Buffer.concat([wavPcm(CLIPS[4]), silence]), { t0: 200 });
  client.send(id, { type: 'end' });
  await until(() => ofType(client.msgs(id), 'closed').length, 60000, 'closed of ' + id);
  const msgs = client.msgs(id);
  const kinds = JSON.stringify(msgs.map((m) => m.type || (m.is_final ? 'final' : 'partial')));
  const intr = ofType(msgs, 'interrupt');
  assert.equal(intr.length, 2, kinds);
  for (const m of intr) {
    assert.equal(m.session_id, id);
    assert.equal(m.speaker_id, 'speaker-7');
    assert.equal(typeof m.timestamp, 'number');
    assert.equal(m.state, 'listening');
  }
  // interrupt, clip 1's results and final, interrupt, clip 2's results and final
  const i1 = msgs.indexOf(intr[0]), i2 = msgs.indexOf(intr[1]);
  const firstFinal = msgs.findIndex((m) => m.type === undefined && m.is_final);
  assert.ok(i1 < msgs.findIndex((m) => m.type === undefined), kinds);
  assert.ok(i1 < firstFinal && firstFinal < i2, kinds);
  checkResults(msgs, id, 'speaker-7'); // every result says listening: the speech interrupted
  assert.equal(results(msgs).filter((r) => r.is_final && r.transcript).length, 2);
});

test('interrupt detection off for a session: the state stays responding and is reported exactly', async () => {
  const id = 'intr-off';
  const silence = Buffer.alloc(32000);
  client.send(id, { type: 'start', state: 'responding', speaker_id: 'speaker-8', interrupt_detection: false });
  await streamPcm(client, id, Buffer.concat([wavPcm(CLIPS[1]), silence]), { t0: 100 });
  client.send(id, { type: 'state_change', state: 'listening' });
  await streamPcm(client, id, Buffer.concat([wavPcm(CLIPS[4]), silence]), { t0: 200 });
  client.send(id, { type: 'end' });
  await until(() => ofType(client.msgs(id), 'closed').length, 60000, 'closed of ' + id);
  const msgs = client.msgs(id);
  assert.equal(ofType(msgs, 'interrupt').length, 0);
  checkResults(msgs, id, 'speaker-8', { state: null });
  // results of the first clip were produced while responding, those of the
  // second after the state change, although both were sent before either
  // was processed
  const rs = results(msgs);
  const cut = rs.findIndex((r) => r.is_final) + 1;
  assert.ok(cut > 0 && cut < rs.length);
  assert.ok(rs.slice(0, cut).every((r) => r.state === 'responding'), JSON.stringify(rs.map((r) => r.state)));
  assert.ok(rs.slice(cut).every((r) => r.state === 'listening'), JSON.stringify(rs.map((r) => r.state)));
});

test('6 live sessions interleaved in real time (100 ms chunks paced by the clock): each gets its own clip\'s words, while it talks', async () => {
  const list = Array.from({ length: 6 }, (_, i) => {
    const k = i % CLIPS.length, pcm = wavPcm(CLIPS[k]);
    return { id: `live-${i}`, k, i, pcm, from: 0, to: pcm.length };
  });
  for (const s of list) client.send(s.id, { type: 'start', sample_rate: 16000, channels: 1, speaker_id: `live-spk-${s.i}` });
  await streamLive(client, list, { end: true });
  await until(() => list.every((s) => ofType(client.msgs(s.id), 'closed').length), 60000, 'closed of every live session');
  for (const s of list) {
    const msgs = client.msgs(s.id);
    checkResults(msgs, s.id, `live-spk-${s.i}`);
    assertClip(finalText(msgs), s.k, `live session ${s.id} (clip ${s.k})`);
    assert.equal(ofType(msgs, 'error').length, 0, brief(msgs));
    // live: results came while the session's audio was still being sent (for
    // the clips of 5 s and more: the first utterance of a new session waits
    // for a decoder, ~250 ms each when the pool grows, so a 3 s clip may not
    // see a partial before its end on a loaded machine)
    if (s.pcm.length >= 5 * 32000) {
      const first = results(msgs)[0];
      assert.ok(client.arrivedAt(first) < s.lastSentAt - 1000, `${s.id}: first result ${client.arrivedAt(first) - s.lastSentAt} ms after its last chunk`);
    }
    assert.ok(Math.abs(ofType(msgs, 'closed')[0].audio_seconds - s.pcm.length / 32000) < 0.01);
  }
  const late = Math.max(...list.map((s) => client.arrivedAt(ofType(client.msgs(s.id), 'closed')[0]) - s.lastSentAt));
  assert.ok(late < 10000, `every session closed within ${late} ms of its end`);
});

// The interrupt of seed 004, exactly its keys plus hark's two documented ones.
function checkInterrupt(m, id, speaker) {
  for (const k of ['session_id', 'type', 'timestamp', 'speaker_id']) assert.ok(k in m, `interrupt lacks ${k}: ${JSON.stringify(m)}`);
  assert.deepEqual(Object.keys(m).sort(), ['audio_time', 'session_id', 'speaker_id', 'state', 'timestamp', 'type']);
  assert.equal(m.session_id, id);
  assert.equal(m.type, 'interrupt');
  assert.equal(typeof m.timestamp, 'number');
  assert.ok(Math.abs(m.timestamp - Date.now() / 1000) < 600, 'timestamp is wall-clock seconds');
  assert.equal(m.speaker_id, speaker);
  assert.equal(m.state, 'listening');
}

test('state_change responding in the middle of a clip: the user is still talking, so it interrupts at once', async () => {
  const id = 'intr-mid';
  const pcm = wavPcm(CLIPS[1]); // speech from ~0.3 s to ~2.8 s
  const cut = 12 * 3200; // 1.2 s, inside "ill disposed"
  client.send(id, { type: 'start', state: 'listening', speaker_id: 'speaker-m' });
  await streamPcm(client, id, pcm.subarray(0, cut), { t0: 300 });
  client.send(id, { type: 'state_change', state: 'responding' });
  await streamPcm(client, id, Buffer.concat([pcm.subarray(cut), Buffer.alloc(32000)]), { t0: 300 + cut / 32000 });
  client.send(id, { type: 'end' });
  await until(() => ofType(client.msgs(id), 'closed').length, 60000, 'closed of ' + id);
  const msgs = client.msgs(id);
  const kinds = JSON.stringify(msgs.map((m) => m.type || `${m.is_final ? 'final' : 'partial'}@${m.end.toFixed(2)}`));
  const intr = ofType(msgs, 'interrupt');
  assert.equal(intr.length, 1, kinds);
  checkInterrupt(intr[0], id, 'speaker-m');
  // the queue keeps audio and state changes in order: the speech right after
  // the switch interrupts (the onset rule looks back 160 ms)
  assert.ok(intr[0].audio_time >= 1.0 && intr[0].audio_time <= 1.5, `audio_time ${intr[0].audio_time}`);
  const at = msgs.indexOf(intr[0]);
  assert.ok(results(msgs.slice(0, at)).every((r) => !r.is_final), 'the utterance was still open: ' + kinds);
  assert.ok(results(msgs.slice(at)).some((r) => r.is_final && r.transcript), 'its final comes after: ' + kinds);
  checkResults(msgs, id, 'speaker-m'); // never "responding": no result was made between switch and interrupt
  assertClip(finalText(msgs), 1, id);
});

test('VAD off for a session: the detector still hears speech, so it interrupts at the speech; has_voice_activity is what it heard', async () => {
  const id = 'intr-vadoff';
  // 1 s of silence, then the clip: with max_utterance_ms 1000 every second is a segment
  client.send(id, { type: 'start', state: 'responding', speaker_id: 'speaker-v', vad: false, max_utterance_ms: 1000 });
  await streamPcm(client, id, Buffer.concat([Buffer.alloc(32000), wavPcm(CLIPS[1])]), { t0: 400 });
  client.send(id, { type: 'end' });
  await until(() => ofType(client.msgs(id), 'closed').length, 60000, 'closed of ' + id);
  const msgs = client.msgs(id);
  const intr = ofType(msgs, 'interrupt');
  assert.equal(intr.length, 1, brief(msgs));
  checkInterrupt(intr[0], id, 'speaker-v');
  assert.ok(intr[0].audio_time >= 1.1 && intr[0].audio_time <= 1.8, `audio_time ${intr[0].audio_time}: at the speech, not at the first audio`);
  checkResults(msgs, id, 'speaker-v', { state: null, voice: null, partialsFirst: false });
  const fs = results(msgs).filter((r) => r.is_final);
  assert.deepEqual(fs.map((r) => r.reason), ['max_length', 'max_length', 'max_length', 'close'], brief(msgs));
  // the silent second: published (it covers audio), empty, no voice, made while responding
  assert.equal(fs[0].transcript, '');
  assert.equal(fs[0].has_voice_activity, false);
  assert.equal(fs[0].state, 'responding');
  assert.ok(msgs.indexOf(fs[0]) < msgs.indexOf(intr[0]));
  // the speech: heard, after the interrupt, listening
  for (const r of results(msgs.slice(msgs.indexOf(intr[0])))) {
    assert.equal(r.has_voice_activity, true, JSON.stringify(r));
    assert.equal(r.state, 'listening');
  }
  assert.match(finalText(msgs), /young|man|not/);
});

test('malformed and out-of-place input: typed errors on the session subject, the worker keeps going', async () => {
  const id = 'bad-1';
  const pcm = wavPcm(CLIPS[1]);
  const chunk = (off, ts) => ({ type: 'chunk', audio_b64: pcm.subarray(off, off + 3200).toString('base64'), timestamp: ts });
  const cases = [
    [() => client.sendRaw('never-started', encode({ type: 'chunk', audio_b64: 'AAAA', timestamp: 1 })), 'never-started', 'bad_state', /never started/],
    [() => client.sendRaw(id, Buffer.from('{"type":"start"}')), id, 'protocol_error', /msgpack/],
    [() => client.sendRaw(id, Buffer.from([0xdd, 0x04, 0x00, 0x00, 0x00])), id, 'protocol_error', /claims 67108864 entries/],
    [() => client.sendRaw(id, Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff])), id, 'protocol_error', /claims/],
    [() => client.send(id, { type: 'dance' }), id, 'protocol_error', /unknown message type "dance"/],
    [() => client.send(id, { session_id: id }), id, 'protocol_error', /no "type"/],
    [() => client.send(id, { type: 'start', sample_rate: 96000 }), id, 'bad_option', /sample_rate/],
    // a model the engine lacks: refused at start, once (not at every utterance)
    [() => client.send(id, { type: 'start', model: 'stt-rt' }), id, 'unsupported', /model: 'stt-rt' is not supported by engine pocketsphinx \(supported: default/],
    [() => client.send(id, { type: 'start', session_id: 'other' }), id, 'protocol_error', /differs/],
    [() => client.send('x'.repeat(70), { type: 'start' }), 'x'.repeat(70), 'invalid_argument', /1\.\.63 bytes/],
    [() => client.sendRaw(id, encode({ type: 'start', pad: 'p'.repeat(70000) })), id, 'limit_exceeded', /larger than the 65536/],
  ];
  for (const [act, sid, code, re] of cases) {
    const before = ofType(client.msgs(sid), 'error').length;
    act();
    await until(() => ofType(client.msgs(sid), 'error').length > before, 10000, `error ${code}`);
    const e = ofType(client.msgs(sid), 'error')[before];
    assert.equal(e.code, code, JSON.stringify(e));
    assert.match(e.message, re);
    assert.equal(e.session_id, sid);
  }
  // now a proper session on the same id, with bad messages mixed in
  client.send(id, { type: 'start', speaker_id: 'spk-bad' });
  const sessionCases = [
    [() => client.send(id, { type: 'start' }), 'bad_state', /already started/],
    [() => client.send(id, { type: 'chunk', timestamp: 5 }), 'protocol_error', /chunk has no audio/],
    [() => client.send(id, { type: 'chunk', audio_b64: 'not base64!', timestamp: 5 }), 'protocol_error', /base64/],
    [() => client.send(id, { type: 'state_change', state: 'sleeping' }), 'protocol_error', /listening/],
    [() => client.send(id, chunk(0, 10)), null],
    [() => client.send(id, chunk(0, 10)), 'bad_state', /duplicate chunk/],
    [() => client.send(id, chunk(3200, 9)), 'bad_state', /late chunk/],
  ];
  // all at once (waiting between them could leave a chunk gap that
  // finalizes the utterance); errors come back in order
  const before0 = ofType(client.msgs(id), 'error').length;
  for (const [act] of sessionCases) act();
  const expected = sessionCases.filter(([, code]) => code);
  await until(() => ofType(client.msgs(id), 'error').length >= before0 + expected.length, 10000, 'errors of ' + id);
  expected.forEach(([, code, re], i) => {
    const e = ofType(client.msgs(id), 'error')[before0 + i];
    assert.equal(e.code, code, JSON.stringify(e));
    assert.match(e.message, re);
    assert.equal(e.speaker_id, 'spk-bad');
  });
  for (let off = 3200, ts = 11; off < pcm.length; off += 3200, ts++) client.send(id, chunk(off, ts));
  client.send(id, { type: 'end' });
  await until(() => ofType(client.msgs(id), 'closed').length, 60000, 'closed of ' + id);
  // after end: the chunk is late for a session that has ended
  const before = ofType(client.msgs(id), 'error').length;
  client.send(id, chunk(0, 1000));
  await until(() => ofType(client.msgs(id), 'error').length > before, 10000, 'error after end');
  assert.match(ofType(client.msgs(id), 'error')[before].message, /has ended|is ending/);
  // the session itself was not disturbed
  const started = client.msgs(id).slice(client.msgs(id).findIndex((m) => m.type === undefined));
  checkResults(started.filter((m) => m.type !== 'error'), id, 'spk-bad');
  assertClip(finalText(client.msgs(id)), 1, id);
  assert.ok(worker.alive());
});

test('no end: a gap of chunk-timeout finalizes the utterance, idle timeout finalizes the session', async () => {
  const id = 'idle-1';
  client.send(id, { type: 'start', speaker_id: null });
  const pcm = wavPcm(CLIPS[1]);
  await streamPcm(client, id, pcm.subarray(0, pcm.length - 3200 * 3)); // ends mid-speech: no endpoint
  const sentAt = Date.now();
  await until(() => results(client.msgs(id)).some((r) => r.is_final), 30000, 'final after the chunk gap');
  const final = results(client.msgs(id)).find((r) => r.is_final);
  assert.equal(final.reason, 'finalize'); // chunk-timeout 1.5 s, not endpointing, not idle
  assert.ok(final.transcript.length > 0);
  assert.equal(ofType(client.msgs(id), 'closed').length, 0, 'still open before the idle timeout');
  await until(() => ofType(client.msgs(id), 'closed').length, 30000, 'closed by idle timeout');
  assert.ok(Date.now() - sentAt >= 3500, 'idle timeout is 4 s');
  const errs = ofType(client.msgs(id), 'error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0].code, 'timeout');
  assert.equal(errs[0].speaker_id, null);
  // a final that covers no audio is not published: one final only
  assert.equal(results(client.msgs(id)).filter((r) => r.is_final).length, 1);
});

test('hark serve --nats-url configured only by the seed\'s environment variables: prefixes, buffer size cut, chunk timeout, VAD off, no interrupts, and the WebSocket side', async () => {
  const pin = 'e2e.seed.in', pout = 'e2e.seed.out';
  const srv = await startServer([], {
    NATS_URL: nats.url,
    STT_BUFFER_SIZE_BYTES: '48000', // 1.5 s of 16 kHz s16 mono
    STT_CHUNK_TIMEOUT: '1.0',
    STT_ENABLE_VAD: 'false',
    STT_VAD_AGGRESSIVENESS: '3',
    STT_ENABLE_INTERRUPT_DETECTION: 'false',
    HARK_NATS_SUBJECT_IN: pin,
    HARK_NATS_SUBJECT_OUT: pout,
    // admission control off, as for the test worker: load must not refuse starts
    HARK_WORKERS: '2', HARK_MAX_BUSY_PERCENT: '100', HARK_MAX_LAG_MS: '60000',
  });
  const c = await startClient(nats.url, { prefixIn: pin, prefixOut: pout });
  try {
    // A: responding, the clip and 1.5 s of silence, then end
    const a = 'seed-a', b = 'seed-b';
    const pcm = wavPcm(CLIPS[1]);
    c.send(a, { type: 'start', session_id: a, sample_rate: 16000, channels: 1, state: 'responding', speaker_id: 'spk-a' });
    // B: 1.2 s of speech, then nothing: STT_CHUNK_TIMEOUT finalizes it
    c.send(b, { type: 'start', speaker_id: 'spk-b' });
    await streamPcm(c, b, pcm.subarray(0, 12 * 3200), { t0: 500 });
    const bSent = Date.now();
    await streamPcm(c, a, Buffer.concat([pcm, Buffer.alloc(48000)]), { t0: 600 });
    c.send(a, { type: 'end' });
    await until(() => ofType(c.msgs(a), 'closed').length, 60000, 'closed of seed-a');
    let msgs = c.msgs(a);
    // STT_ENABLE_INTERRUPT_DETECTION=false: speech while responding is no interrupt
    assert.equal(ofType(msgs, 'interrupt').length, 0, brief(msgs));
    checkResults(msgs, a, 'spk-a', { state: 'responding', voice: null });
    // STT_BUFFER_SIZE_BYTES: a max_length final every 1.5 s of audio, exactly
    // (STT_ENABLE_VAD=false: every frame counts as speech, so no endpoint
    // ends a segment even in the 1.5 s of silence)
    const fs = results(msgs).filter((r) => r.is_final);
    assert.deepEqual(fs.map((r) => r.reason), ['max_length', 'max_length', 'close'], brief(msgs));
    fs.forEach((f, i) => {
      assert.ok(Math.abs(f.start - 1.5 * i) < 0.001 && Math.abs(f.end - Math.min(1.5 * (i + 1), 4.49)) < 0.001,
        `segment ${i}: ${f.start}..${f.end}`);
      assert.equal(f.committed_ms, Math.round(f.end * 1000));
    });
    assert.equal(fs[0].has_voice_activity, true);
    assert.equal(fs[1].has_voice_activity, true);
    assert.equal(fs[2].has_voice_activity, false, 'the last 1.5 s are silence'); // 0880 ends at 2.99 s
    assert.equal(fs[2].transcript, '');
    assert.match(finalText(msgs), /young|man|not/);
    // STT_CHUNK_TIMEOUT=1.0: B's final came about 1 s after its last chunk
    await until(() => results(c.msgs(b)).some((r) => r.is_final), 20000, 'final of seed-b');
    const bf = results(c.msgs(b)).find((r) => r.is_final);
    const waited = c.arrivedAt(bf) - bSent;
    assert.equal(bf.reason, 'finalize', brief(c.msgs(b)));
    assert.ok(waited >= 900 && waited < 4000, `final ${waited} ms after the last chunk (chunk timeout 1.0 s)`);
    c.send(b, { type: 'end' });
    await until(() => ofType(c.msgs(b), 'closed').length, 20000, 'closed of seed-b');
    // nothing on the default prefixes (the main client listens there)
    assert.equal(client.msgs(a).length + client.msgs(b).length, 0);

    // the WebSocket side of the same process
    const h = await fetch(srv.http + '/healthz');
    assert.equal(h.status, 200);
    const ws = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 });
    assert.equal(ws.ready.type, 'ready', JSON.stringify(ws.ready));
    assert.equal(ws.ready.vad_mode, 3, 'STT_VAD_AGGRESSIVENESS is the server default for every front end');
    await wsStreamPcm(ws.ws, wavPcm(CLIPS[4]));
    ws.ws.send(JSON.stringify({ type: 'close' }));
    assert.equal((await ws.closed).code, 1000);
    assertClip(wsFinals(ws.events), 4, 'WebSocket session of hark serve --nats-url');
  } finally {
    await c.close().catch(() => {});
    const code = await srv.stop();
    assert.equal(code, 0, 'serve exit status\n' + srv.log().slice(-3000));
  }
});

test('config: a bad seed alias is ignored when the HARK_* variable of the setting overrides it, and refused when used', () => {
  const run = (env) => spawnSync(HARK, ['worker', '--help'], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 10000 });
  let r = run({ STT_ENABLE_VAD: 'perhaps' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /STT_ENABLE_VAD: 'perhaps' is not a boolean/);
  r = run({ STT_ENABLE_VAD: 'perhaps', HARK_ENABLE_VAD: 'false' });
  assert.equal(r.status, 0, r.stderr);
  r = run({ STT_ENABLE_VAD: 'true', HARK_ENABLE_VAD: 'perhaps' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /HARK_ENABLE_VAD: 'perhaps'/);
  r = run({ STT_VAD_AGGRESSIVENESS: '9', HARK_VAD_MODE: '1' });
  assert.equal(r.status, 0, r.stderr);
});

test('nats-server restart with 3 live sessions open: the worker reconnects, each session\'s audio after the restart is transcribed', async () => {
  const port = await freePort();
  let ns = await startNats(port, dir);
  // no chunk-gap finalize during the outage: the sessions' audio has no gap
  const w = await startWorker(ns.url, ['--nats-idle-timeout', '30', '--chunk-timeout', '30']);
  const c = await startClient(ns.url);
  try {
    const list = [0, 3, 4].map((k, i) => {
      const pcm = wavPcm(CLIPS[k]);
      return { id: `restart-${i}`, k, pcm, half: Math.floor(pcm.length / 2 / 3200) * 3200 };
    });
    for (const s of list) c.send(s.id, { type: 'start', speaker_id: `spk-${s.id}` });
    await streamLive(c, list.map((s) => ({ ...s, from: 0, to: s.half })));
    await sleep(300); // the last chunks reach the worker
    await ns.stop('SIGKILL');
    await sleep(500);
    ns = await startNats(port, dir);
    await until(() => /reconnected to NATS/.test(w.log()), 30000, 'worker reconnect');
    // flush completes once the client is connected again and the server has
    // its (re-sent) subscription
    const end = Date.now() + 30000;
    for (;;) {
      try { await c.nc.flush(); break; } catch (e) { // DISCONNECT while it reconnects
        if (Date.now() > end) throw e;
        await sleep(100);
      }
    }
    await streamLive(c, list.map((s) => ({ ...s, from: s.half, to: s.pcm.length })));
    for (const s of list) c.send(s.id, { type: 'end' });
    await until(() => list.every((s) => ofType(c.msgs(s.id), 'closed').length), 60000, 'closed after the restart');
    assert.ok(w.alive());
    assert.match(w.log(), /disconnected from NATS/);
    for (const s of list) {
      const msgs = c.msgs(s.id);
      // whatever crossed the outage, sequence numbers only grow
      const seqs = results(msgs).map((r) => r.sequence);
      assert.ok(seqs.length > 0);
      for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `${s.id}: sequence ${seqs}`);
      // all audio arrived: none lost before the kill or after the restart
      const closed = ofType(msgs, 'closed')[0];
      assert.ok(Math.abs(closed.audio_seconds - s.pcm.length / 32000) < 0.01, `${s.id}: ${closed.audio_seconds} s of ${s.pcm.length / 32000}`);
      assertClip(finalText(msgs), s.k, s.id);
      // and the second half was transcribed: words the engine placed after
      // the restart point are the recording's
      const halfSec = s.half / 32000, ref = new Set(TRUTH[s.k].split(' '));
      const late = results(msgs).filter((r) => r.is_final).flatMap((r) => r.words).filter((x) => x.start >= halfSec).map((x) => x.word);
      assert.ok(late.length >= 2 && late.filter((x) => ref.has(x)).length >= Math.max(1, late.length / 3),
        `${s.id}: words after ${halfSec} s: ${late.join(' ')} (reference: ${TRUTH[s.k]})`);
    }

    // a session started after the restart is complete and correct
    const id2 = 'restart-new';
    c.send(id2, { type: 'start', speaker_id: 'spk-r2' });
    await streamPcm(c, id2, wavPcm(CLIPS[1]));
    c.send(id2, { type: 'end' });
    await until(() => ofType(c.msgs(id2), 'closed').length, 60000, 'closed of the second session');
    checkResults(c.msgs(id2), id2, 'spk-r2');
    assertClip(finalText(c.msgs(id2)), 1, id2);
  } finally {
    await c.close().catch(() => {});
    const code = await w.stop();
    await ns.stop();
    assert.equal(code, 0, 'worker exit status\n' + w.log().slice(-3000));
  }
});

test('SIGTERM: open sessions get their finals and a closed message before the worker exits', async () => {
  const port = await freePort();
  const ns = await startNats(port, dir);
  const w = await startWorker(ns.url, ['--shutdown-timeout', '120']);
  const c = await startClient(ns.url);
  try {
    const id = 'term-1';
    c.send(id, { type: 'start', speaker_id: 'spk-t' });
    await streamPcm(c, id, wavPcm(CLIPS[1]));
    await until(() => results(c.msgs(id)).length > 0, 30000, 'a first result');
    const code = await w.stop('SIGTERM');
    assert.equal(code, 0, w.log().slice(-3000));
    await c.nc.flush();
    await until(() => ofType(c.msgs(id), 'closed').length, 10000, 'closed before exit');
    const e = ofType(c.msgs(id), 'error');
    assert.equal(e.length, 1);
    assert.equal(e[0].code, 'busy');
    assert.match(e[0].message, /shutting down/);
    assertClip(finalText(c.msgs(id)), 1, id);
  } finally {
    await c.close().catch(() => {});
    await w.stop();
    await ns.stop();
  }
});

// ---------------------------------------------------------------- hardening (issue 10)

const metricValue = (text, name) => {
  const m = text.match(new RegExp('^' + name.replace(/[{}"]/g, (c) => '\\' + c) + ' (\\S+)$', 'm'));
  return m ? Number(m[1]) : NaN;
};

// 16 kHz mono s16 WAV of pcm, written to file
function wavFile(file, pcm) {
  writeFileSync(file, wavOf(pcm));
  return file;
}

test('audio gap: chunks skipped on purpose publish one audio_gap warning with where and how long; jittered timestamps publish none', async () => {
  const pcm = wavPcm(CLIPS[2]);
  const id = 'gap-1', id2 = 'gap-jitter';
  client.send(id, { type: 'start', speaker_id: 'spk-g' });
  client.send(id2, { type: 'start', speaker_id: 'spk-j' });
  const t0 = 1700000000;
  let sent = 0, ts2 = 0;
  // send-time stamps of a real-time client: late by 0..300 ms, never decreasing
  const delay = [0, 0.3, 0.05, 0.25, 0.1, 0, 0.28, 0.12, 0.02, 0.3, 0.3, 0];
  for (let off = 0, i = 0; off < pcm.length; off += 3200, i++) {
    const chunk = pcm.subarray(off, Math.min(off + 3200, pcm.length));
    // chunks 10..19 (1.0 s of audio from 1.0 s) never sent
    if (i < 10 || i >= 20) {
      client.send(id, { type: 'chunk', audio_b64: Buffer.from(chunk).toString('base64'), timestamp: t0 + off / 32000 });
      sent += chunk.length;
    }
    ts2 = Math.max(ts2, t0 + off / 32000 + delay[i % delay.length]);
    client.send(id2, { type: 'chunk', audio_b64: Buffer.from(chunk).toString('base64'), timestamp: ts2 });
  }
  client.send(id, { type: 'end' });
  client.send(id2, { type: 'end' });
  await client.nc.flush();
  await until(() => ofType(client.msgs(id), 'closed').length && ofType(client.msgs(id2), 'closed').length, 60000, 'closed of gap-1');
  const w = ofType(client.msgs(id), 'warning');
  assert.equal(w.length, 1, brief(client.msgs(id)));
  assert.equal(w[0].code, 'audio_gap');
  assert.equal(w[0].session_id, id);
  assert.equal(w[0].speaker_id, 'spk-g');
  assert.ok(Math.abs(w[0].gap_duration - 1.0) < 1e-6, `gap_duration ${w[0].gap_duration}`);
  assert.ok(Math.abs(w[0].gap_start - (t0 + 1.0)) < 1e-6, `gap_start ${w[0].gap_start}`);
  assert.ok(Math.abs(w[0].audio_offset - 1.0) < 1e-6, `audio_offset ${w[0].audio_offset}`);
  assert.match(w[0].message, /never arrived/);
  assert.equal(ofType(client.msgs(id), 'error').length, 0, brief(client.msgs(id)));
  assert.ok(Math.abs(ofType(client.msgs(id), 'closed')[0].audio_seconds - sent / 32000) < 0.01);
  assert.equal(ofType(client.msgs(id2), 'warning').length + ofType(client.msgs(id2), 'error').length, 0, brief(client.msgs(id2)));
  assert.match(worker.log(), /audio gap: the chunk at timestamp/);
});

test('nats-server restart while a client that does not buffer keeps streaming: the audio it lost is reported as gaps, as much as the session is missing', async () => {
  const port = await freePort();
  let ns = await startNats(port, dir);
  const w = await startWorker(ns.url, ['--nats-idle-timeout', '30', '--chunk-timeout', '30']);
  const c = await startClient(ns.url);
  let up = true;
  (async () => {
    for await (const st of c.nc.status()) {
      if (st.type === 'disconnect') up = false;
      if (st.type === 'reconnect') up = true;
    }
  })();
  try {
    const id = 'gap-restart';
    const pcm = Buffer.concat([wavPcm(CLIPS[3]), wavPcm(CLIPS[4])]);
    c.send(id, { type: 'start', speaker_id: 'spk-gr' });
    await c.nc.flush();
    // live, 100 ms a chunk; a chunk made while disconnected is dropped by
    // the client (like a client without a reconnect buffer)
    const start = Date.now();
    let dropped = 0, killed = false, restarted = null;
    for (let t = 0, off = 0; off < pcm.length; t++, off += 3200) {
      if (!killed && off >= 20 * 3200) {
        killed = true;
        await ns.stop('SIGKILL');
        restarted = sleep(1200).then(() => startNats(port, dir)).then((n) => { ns = n; });
      }
      const chunk = pcm.subarray(off, Math.min(off + 3200, pcm.length));
      if (up) {
        c.send(id, { type: 'chunk', audio_b64: Buffer.from(chunk).toString('base64'), timestamp: 1700000000 + off / 32000 });
      } else {
        dropped += chunk.length;
      }
      const wait = start + (t + 1) * 100 - Date.now();
      if (wait > 0) await sleep(wait);
    }
    await restarted;
    const end = Date.now() + 30000;
    for (;;) {
      try { await c.nc.flush(); break; } catch (e) {
        if (Date.now() > end) throw e;
        await sleep(100);
      }
    }
    c.send(id, { type: 'end' });
    await until(() => ofType(c.msgs(id), 'closed').length, 60000, 'closed after the restart');
    const msgs = c.msgs(id);
    const lost = pcm.length / 32000 - ofType(msgs, 'closed')[0].audio_seconds;
    const gaps = ofType(msgs, 'warning').filter((m) => m.code === 'audio_gap');
    const reported = gaps.reduce((a, g) => a + g.gap_duration, 0);
    assert.ok(dropped / 32000 >= 0.5, `the client dropped ${dropped / 32000} s`);
    assert.ok(lost >= dropped / 32000 - 0.01, `lost ${lost} s, dropped ${dropped / 32000} s`);
    assert.ok(gaps.length >= 1, brief(msgs));
    // every lost piece longer than the threshold is reported; shorter ones may not be
    assert.ok(Math.abs(reported - lost) <= 0.5 * gaps.length + 0.01, `reported ${reported} s of ${lost} s lost`);
  } finally {
    await c.close().catch(() => {});
    const code = await w.stop();
    await ns.stop();
    assert.equal(code, 0, 'worker exit status\n' + w.log().slice(-3000));
  }
});

test('a second worker on the same subjects refuses to start, naming the fix; on its own partition or with --allow-shared-subjects it starts', async () => {
  const run = (args) => spawnSync(HARK, ['worker', '--nats-url', nats.url, '--workers', '1', ...args],
    { encoding: 'utf8', timeout: 60000, env: { ...process.env, HARK_LOG_LEVEL: 'info' } });
  const r = run([]);
  assert.equal(r.status, 4, r.stderr);
  assert.match(r.stderr, /another hark \(hark worker pid \d+ on .*\) already serves ai\.voice\.stream\.\*/);
  assert.match(r.stderr, /every result twice/);
  assert.match(r.stderr, /Several workers/);
  assert.match(r.stderr, /--allow-shared-subjects/);
  await until(() => /is starting on ai\.voice\.stream\.\*/.test(worker.log()), 5000, 'the running worker logs the newcomer');
  // a partition of its own: no conflict
  const p = await startWorker(nats.url, ['--nats-subject-in', 'ai.voice.stream.p1']);
  assert.equal(await p.stop(), 0, p.log());
  assert.doesNotMatch(p.log(), /another hark/);
  // the override starts, loudly
  const o = await startWorker(nats.url, ['--allow-shared-subjects']);
  assert.match(o.log(), /already serves ai\.voice\.stream\.\*; starting anyway/);
  assert.equal(await o.stop(), 0, o.log());
});

test('hark worker --port serves /healthz, /readyz, /metrics (NATS sessions, events, latencies, gaps) and nothing else; --help lists only the worker\'s options', async () => {
  const port = await freePort();
  let ns = await startNats(port, dir);
  const w = await startWorker(ns.url, ['--port', '0', '--nats-subject-in', 'e2e.health.in', '--nats-subject-out', 'e2e.health.out']);
  const c = await startClient(ns.url, { prefixIn: 'e2e.health.in', prefixOut: 'e2e.health.out' });
  try {
    const hp = Number(w.stdout().match(/health on http:\/\/127\.0\.0\.1:(\d+)\/ \(\/healthz, \/readyz, \/metrics\)/)?.[1]);
    assert.ok(hp > 0, w.stdout());
    const http = `http://127.0.0.1:${hp}`;
    assert.equal((await fetch(http + '/healthz')).status, 200);
    assert.equal((await fetch(http + '/readyz')).status, 200);
    for (const [method, p] of [['GET', '/'], ['GET', '/index.html'], ['POST', '/v1/listen'], ['POST', '/v1/audio/transcriptions']])
      assert.equal((await fetch(http + p, { method, body: method === 'POST' ? 'x' : undefined })).status, 404, `${method} ${p}`);
    const up = await curl(['-H', 'Connection: Upgrade', '-H', 'Upgrade: websocket', '-H', 'Sec-WebSocket-Version: 13',
      '-H', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', http + '/v1/stream'], 10000);
    assert.equal(up.status, 404);
    // a NATS session with a gap shows in the metrics
    const pcm = wavPcm(CLIPS[1]);
    const id = 'health-1';
    c.send(id, { type: 'start' });
    c.send(id, { type: 'chunk', audio_b64: pcm.subarray(0, 32000).toString('base64'), timestamp: 100 });
    await c.nc.flush();
    const end = Date.now() + 20000;
    let m = '';
    while (Date.now() < end) {
      m = await (await fetch(http + '/metrics')).text();
      if (metricValue(m, 'hark_sessions_active') === 1) break;
      await sleep(50);
    }
    assert.equal(metricValue(m, 'hark_sessions_active'), 1, m);
    assert.equal(metricValue(m, 'hark_sessions_opened_total'), 1);
    assert.equal(metricValue(m, 'hark_nats_connected'), 1);
    c.send(id, { type: 'chunk', audio_b64: pcm.subarray(32000, 64000).toString('base64'), timestamp: 103 });
    c.send(id, { type: 'end' });
    await until(() => ofType(c.msgs(id), 'closed').length, 30000, 'closed of health-1');
    m = await (await fetch(http + '/metrics')).text();
    assert.equal(metricValue(m, 'hark_nats_audio_gaps_total'), 1, m);
    assert.equal(metricValue(m, 'hark_nats_audio_gap_seconds_total'), 2);
    assert.equal(metricValue(m, 'hark_sessions_active'), 0);
    assert.ok(metricValue(m, 'hark_audio_seconds_total') >= 1.99);
    assert.ok(metricValue(m, 'hark_nats_messages_total') >= 4);
    // the session host's metrics count NATS sessions like WebSocket ones:
    // events by type, latencies (issue 11)
    const results = c.msgs(id).filter((x) => x.transcript !== undefined);
    assert.equal(metricValue(m, 'hark_events_total{type="closed"}'), 1, m);
    assert.ok(metricValue(m, 'hark_events_total{type="transcript"}') >= results.length, m);
    assert.ok(results.some((x) => x.is_partial), JSON.stringify(c.msgs(id)));
    assert.ok(metricValue(m, 'hark_first_partial_latency_seconds_count') >= 1, m);
    // no NATS server: not ready
    await ns.stop('SIGKILL');
    await until(() => /disconnected from NATS/.test(w.log()), 10000, 'disconnect');
    const r = await fetch(http + '/readyz');
    assert.equal(r.status, 503);
    assert.match(await r.text(), /not connected to NATS/);
    ns = await startNats(port, dir);
    await until(() => /reconnected to NATS/.test(w.log()), 30000, 'reconnect');
    assert.equal((await fetch(http + '/readyz')).status, 200);
  } finally {
    await c.close().catch(() => {});
    const code = await w.stop();
    await ns.stop();
    assert.equal(code, 0, 'worker exit status\n' + w.log().slice(-3000));
  }
  // without --port the worker opens no HTTP port
  assert.doesNotMatch(worker.log() + '', /health on/);
  const help = spawnSync(HARK, ['worker', '--help'], { encoding: 'utf8', timeout: 10000 }).stdout;
  for (const f of ['--nats-url', '--port', '--host', '--max-sessions', '--allow-shared-subjects', '--audio-gap-threshold', '--log-level'])
    assert.ok(help.includes(f + ' '), f);
  for (const f of ['--api-keys', '--api-keys-file', '--max-sessions-per-key', '--max-body-bytes', '--idle-timeout'])
    assert.ok(!help.includes(f + ' '), f);
  const bad = spawnSync(HARK, ['worker', '--api-keys', 'k'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /'--api-keys' is for hark serve only/);
});

test('seed variables hark does not use are each named once on stderr with what hark does instead (values not shown)', () => {
  const r = spawnSync(HARK, ['worker', '--engine', 'no-such-engine'], {
    encoding: 'utf8', timeout: 20000,
    env: { ...process.env, WHISPER_URL: 'http://user:s3cret@whisper:9000', WHISPER_MODEL_SIZE: 'base',
      WHISPER_DEVICE: 'cuda', OTEL_ENABLED: 'true', HYPERDX_ENABLED: 'true' },
  });
  assert.equal(r.status, 3, r.stderr);
  // WHISPER_URL is used: it is --openai-url's seed name (test_providers.mjs)
  for (const [v, what] of [['WHISPER_MODEL_SIZE', /--model-dir/],
    ['WHISPER_DEVICE', /CPU/], ['OTEL_ENABLED', /no OpenTelemetry.*\/metrics/], ['HYPERDX_ENABLED', /HyperDX.*stderr/]]) {
    const lines = r.stderr.split('\n').filter((l) => l.includes(v + ' is set but not used'));
    assert.equal(lines.length, 1, `${v}:\n${r.stderr}`);
    assert.match(lines[0], what);
  }
  assert.ok(!r.stderr.includes('s3cret'));
  const quiet = spawnSync(HARK, ['worker', '--engine', 'no-such-engine'], { encoding: 'utf8', timeout: 20000 });
  assert.doesNotMatch(quiet.stderr, /is set but not used/);
});

test('one admission policy: during 2 batch uploads NATS starts are admitted like WebSocket sessions (busy workers are no signal)', async () => {
  const pin = 'e2e.admit.in', pout = 'e2e.admit.out';
  // default --max-busy-percent (100); queue wait is not what this test is about
  const srv = await startServer(['--workers', '2', '--max-lag-ms', '60000', '--nats-subject-in', pin,
    '--nats-subject-out', pout], { HARK_NATS_URL: nats.url });
  const c = await startClient(nats.url, { prefixIn: pin, prefixOut: pout });
  const long = Buffer.concat([...Array(2)].flatMap(() => CLIPS.map((f) => wavPcm(f))));
  const file = wavFile(path.join(dir, 'long.wav'), long);
  try {
    const uploads = [0, 1].map(() => curl(['-H', 'Content-Type: audio/wav', '--data-binary', '@' + file, `${srv.http}/v1/listen`])
      .catch((e) => ({ status: e.message })));
    // the batch jobs keep both workers busy
    let busy = 0, m = '';
    const end = Date.now() + 30000;
    while (Date.now() < end && busy < 0.9) {
      await sleep(200);
      m = await (await fetch(srv.http + '/metrics')).text();
      busy = metricValue(m, 'hark_worker_busy_ratio');
    }
    assert.ok(busy >= 0.9, `workers ${busy} busy:\n${m}`);
    assert.equal(metricValue(m, 'hark_sessions_active'), 2);
    const ids = [0, 1, 2, 3].map((i) => `admit-${i}`);
    for (const id of ids) c.send(id, { type: 'start' });
    await c.nc.flush();
    const ws = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 });
    assert.equal(ws.ready.type, 'ready', JSON.stringify(ws.ready));
    await sleep(1000);
    for (const id of ids) assert.equal(ofType(c.msgs(id), 'error').length, 0, `${id}: ${brief(c.msgs(id))}`);
    m = await (await fetch(srv.http + '/metrics')).text();
    assert.equal(metricValue(m, 'hark_sessions_active'), 7, 'batch, NATS and WebSocket sessions are counted together');
    assert.equal(metricValue(m, 'hark_sessions_refused_total{reason="busy"}'), 0);
    for (const id of ids) c.send(id, { type: 'end' });
    ws.ws.send(JSON.stringify({ type: 'close' }));
    await ws.closed;
    for (const u of await Promise.all(uploads)) assert.equal(u.status, 200);
  } finally {
    await c.close().catch(() => {});
    const code = await srv.stop();
    assert.equal(code, 0, 'serve exit status\n' + srv.log().slice(-3000));
  }
});

test('--max-sessions counts WebSocket and NATS sessions together on hark serve --nats-url', async () => {
  const pin = 'e2e.max.in', pout = 'e2e.max.out';
  const srv = await startServer(['--max-sessions', '2', '--workers', '2', '--max-busy-percent', '100', '--max-lag-ms', '60000',
    '--nats-subject-in', pin, '--nats-subject-out', pout], { HARK_NATS_URL: nats.url });
  const c = await startClient(nats.url, { prefixIn: pin, prefixOut: pout });
  try {
    const a = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 });
    assert.equal(a.ready.type, 'ready');
    c.send('max-1', { type: 'start' });
    await c.nc.flush();
    await sleep(300);
    assert.equal(ofType(c.msgs('max-1'), 'error').length, 0, brief(c.msgs('max-1')));
    // full: one of each kind
    c.send('max-2', { type: 'start' });
    await until(() => ofType(c.msgs('max-2'), 'error').length, 10000, 'error of max-2');
    assert.equal(ofType(c.msgs('max-2'), 'error')[0].code, 'limit_exceeded', brief(c.msgs('max-2')));
    assert.match(ofType(c.msgs('max-2'), 'error')[0].message, /too many sessions \(max 2\)/);
    const b = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 });
    assert.equal(b.ready.type, 'error', JSON.stringify(b.ready));
    // the native dialect answers every refusal of admission as busy (close 1013)
    assert.equal(b.ready.code, 'busy');
    assert.match(b.ready.message, /too many sessions \(max 2\)/);
    // the WebSocket session ends: a NATS start fits again
    a.ws.send(JSON.stringify({ type: 'close' }));
    await a.closed;
    await sleep(300);
    c.send('max-3', { type: 'start' });
    c.send('max-3', { type: 'end' });
    await until(() => ofType(c.msgs('max-3'), 'closed').length, 10000, 'closed of max-3');
    assert.equal(ofType(c.msgs('max-3'), 'error').length, 0, brief(c.msgs('max-3')));
    c.send('max-1', { type: 'end' });
    await until(() => ofType(c.msgs('max-1'), 'closed').length, 10000, 'closed of max-1');
  } finally {
    await c.close().catch(() => {});
    const code = await srv.stop();
    assert.equal(code, 0, 'serve exit status\n' + srv.log().slice(-3000));
  }
});
