// Deepgram compatibility, tested with the official @deepgram/sdk (v5) pointed
// at a real `hark serve` through baseUrl, plus raw `ws` checks of the wire
// details the SDK hides (headers, close codes, subprotocol auth).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { execFileSync } from 'node:child_process';
import WebSocket from 'ws';
import { DeepgramClient } from '@deepgram/sdk';
import { HARK, CLIPS, startServer, wavPcm, waitFor, sleep } from './lib.mjs';

const KEY = 'dg-test-key-1';
let srv;

before(async () => {
  srv = await startServer(['--idle-timeout', '3'], { HARK_API_KEYS: `${KEY},other-key` });
});
after(async () => { if (srv) await srv.stop(); });

const cliText = (clip) => execFileSync(HARK, ['transcribe', clip], { encoding: 'utf8' })
  .trim().split('\n').filter(Boolean).join(' ');

function client(key = KEY) {
  return new DeepgramClient({ apiKey: key, baseUrl: srv.http });
}

// Opens an SDK live socket; collects messages and the close event.
async function live(params, key = KEY) {
  const dg = client(key);
  const socket = await dg.listen.v1.connect({ model: 'nova-3', ...params });
  const messages = [];
  let closeEvent = null, opens = 0, errors = [];
  socket.on('open', () => { opens++; });
  socket.on('message', (m) => messages.push(m));
  socket.on('error', (e) => errors.push(e));
  const closed = new Promise((resolve) => socket.on('close', (e) => { closeEvent = e; resolve(e); }));
  socket.connect();
  await socket.waitForOpen();
  return { socket, messages, closed, opens: () => opens, errors, closeEvent: () => closeEvent };
}

// Streams in pieces at `speed` times real time (4x by default: quick, still
// streamed in pieces; 1 = like a microphone).
async function sendRealtime(socket, pcm, frame = 3200, msPerFrame = 100, speed = 4) {
  for (let off = 0; off < pcm.length; off += frame) {
    socket.sendMedia(pcm.subarray(off, Math.min(off + frame, pcm.length)));
    await sleep(msPerFrame / speed);
  }
}

function checkResults(r) {
  // every field always present (legacy Python SDK parses without defaults)
  assert.equal(r.type, 'Results');
  assert.deepEqual(r.channel_index, [0, 1]);
  for (const k of ['duration', 'start']) assert.equal(typeof r[k], 'number', k);
  for (const k of ['is_final', 'speech_final', 'from_finalize']) assert.equal(typeof r[k], 'boolean', k);
  const alt = r.channel.alternatives[0];
  assert.equal(typeof alt.transcript, 'string');
  assert.equal(typeof alt.confidence, 'number');
  assert.ok(Array.isArray(alt.words));
  for (const w of alt.words)
    for (const k of ['word', 'start', 'end', 'confidence', 'punctuated_word']) assert.ok(k in w, k);
  assert.equal(typeof r.metadata.request_id, 'string');
  for (const k of ['name', 'version', 'arch']) assert.ok(k in r.metadata.model_info, k);
  assert.equal(typeof r.metadata.model_uuid, 'string');
}

test('live: SDK gets interim and final Results, SpeechStarted, Metadata, close 1000, no reconnect', async () => {
  const s = await live({ encoding: 'linear16', sample_rate: 16000, channels: 1,
    interim_results: 'true', vad_events: 'true', punctuate: 'true', smart_format: 'true' });
  const pcm = wavPcm(CLIPS[1]);
  // in real time, so the close latency does not depend on a backlog
  await sendRealtime(s.socket, Buffer.concat([pcm, Buffer.alloc(32000)]), 3200, 100, 1);
  const t0 = Date.now();
  s.socket.sendCloseStream({ type: 'CloseStream' });
  const ev = await s.closed;
  const closeMs = Date.now() - t0;
  assert.equal(ev.code, 1000);
  await sleep(1500);
  assert.equal(s.opens(), 1, 'the SDK must not reconnect after a 1000 close');
  const results = s.messages.filter((m) => m.type === 'Results');
  results.forEach(checkResults);
  assert.ok(results.some((r) => !r.is_final), 'interim results expected');
  const finals = results.filter((r) => r.is_final);
  assert.match(finals.map((r) => r.channel.alternatives[0].transcript).join(' '), /young man/);
  assert.ok(finals.some((r) => r.speech_final), 'endpointing should set speech_final');
  assert.ok(s.messages.some((m) => m.type === 'SpeechStarted'));
  const meta = s.messages[s.messages.length - 1];
  assert.equal(meta.type, 'Metadata');
  assert.equal(meta.transaction_key, 'deprecated');
  assert.ok(meta.duration > 2.9 && meta.duration < 4.1, String(meta.duration));
  assert.equal(meta.request_id, results[0].metadata.request_id);
  assert.ok(closeMs < 1500, `closed ${closeMs} ms after CloseStream`);
  // model and language echoed (language: the session's, here the default)
  assert.equal(results[0].metadata.model_info.name, 'nova-3');
  assert.equal(results[0].metadata.model_info.language, 'en-US');
  assert.deepEqual(finals[0].channel.alternatives[0].languages, ['en-US']);
  assert.equal(meta.model_info[meta.models[0]].name, 'nova-3');
  assert.equal(meta.sha256, 'incomplete');
  assert.match(meta.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(meta.channels, 1);
  const started = s.messages.find((m) => m.type === 'SpeechStarted');
  assert.deepEqual(started.channel, [0, 1]);
  assert.ok(started.timestamp >= 0 && started.timestamp < 2, String(started.timestamp));
});

test('live: CloseStream right after speech: last final and Metadata within 500 ms, then 1000', async () => {
  // streamed in real time like a microphone, ending mid-utterance: the
  // final comes from the close (from_finalize, as Deepgram's Finalize)
  const s = await live({ encoding: 'linear16', sample_rate: 16000, language: 'en' });
  const pcm = wavPcm(CLIPS[2]);
  const t0 = Date.now();
  for (let off = 0; off < pcm.length; off += 3200) {
    s.socket.sendMedia(pcm.subarray(off, Math.min(off + 3200, pcm.length)));
    const wait = t0 + ((off + 3200) / 32000) * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  const tClose = Date.now();
  s.socket.sendCloseStream({ type: 'CloseStream' });
  let tMeta = 0;
  const gotMeta = waitFor(s.messages, (m) => m.type === 'Metadata', 10000).then(() => { tMeta = Date.now(); });
  await gotMeta;
  assert.equal((await s.closed).code, 1000);
  const finals = s.messages.filter((m) => m.type === 'Results' && m.is_final);
  const last = finals.at(-1);
  assert.ok(last.channel.alternatives[0].transcript.length > 0, 'the close flushed words');
  assert.equal(last.from_finalize, true);
  assert.equal(last.metadata.model_info.language, 'en', 'language echoed as given');
  const ms = tMeta - tClose;
  console.log(`CloseStream -> Metadata: ${ms} ms`);
  assert.ok(ms <= 500, `finals and Metadata took ${ms} ms after CloseStream`);
});

test('live: Finalize gives a from_finalize final and the stream goes on', async () => {
  const s = await live({ encoding: 'linear16', sample_rate: 16000, interim_results: 'true' });
  const pcm = wavPcm(CLIPS[0]);
  await sendRealtime(s.socket, pcm.subarray(0, pcm.length / 2));
  s.socket.sendFinalize({ type: 'Finalize' });
  const f = await waitFor(s.messages, (m) => m.type === 'Results' && m.from_finalize, 15000);
  assert.equal(f.is_final, true);
  assert.ok(f.channel.alternatives[0].transcript.length > 0);
  await sendRealtime(s.socket, pcm.subarray(pcm.length / 2));
  s.socket.sendKeepAlive({ type: 'KeepAlive' });
  s.socket.sendCloseStream({ type: 'CloseStream' });
  assert.equal((await s.closed).code, 1000);
  const finals = s.messages.filter((m) => m.type === 'Results' && m.is_final);
  assert.ok(finals.length >= 2);
  assert.equal(s.messages.at(-1).type, 'Metadata');
});

test('live: WAV container without encoding; same text as hark transcribe', async () => {
  const s = await live({});
  const wav = (await import('node:fs')).readFileSync(CLIPS[3]);
  await sendRealtime(s.socket, wav, 6400, 50);
  s.socket.sendCloseStream({ type: 'CloseStream' });
  assert.equal((await s.closed).code, 1000);
  const text = s.messages.filter((m) => m.type === 'Results' && m.is_final)
    .map((r) => r.channel.alternatives[0].transcript).filter(Boolean).join(' ');
  assert.equal(text, cliText(CLIPS[3]));
});

test('live: wrong API key is refused (401) and the SDK does not get a session', async () => {
  const raw = new WebSocket(srv.url + '/v1/listen?encoding=linear16&sample_rate=16000', {
    headers: { Authorization: 'Token wrong' } });
  const res = await new Promise((r) => raw.on('unexpected-response', (req, resp) => r(resp)));
  assert.equal(res.statusCode, 401);
  let body = '';
  for await (const chunk of res) body += chunk;
  assert.equal(JSON.parse(body).err_code, 'INVALID_AUTH');
  assert.ok(res.headers['dg-error']);
});

test('live wire: subprotocol auth echoes token, dg-request-id header, utterance_end, empty frame = CloseStream', async () => {
  const ws = new WebSocket(srv.url + '/v1/listen?encoding=mulaw&sample_rate=8000&interim_results=TRUE&utterance_end_ms=1000&keywords=dashwood:2&keyterm=mister+john',
    ['token', KEY]);
  let upgradeHeaders;
  ws.on('upgrade', (res) => { upgradeHeaders = res.headers; });
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise((r) => ws.on('open', r));
  assert.equal(ws.protocol, 'token');
  assert.match(upgradeHeaders['dg-request-id'], /^[0-9a-f-]{36}$/);
  // 8 kHz mu-law made with sox from a clip, then 2 s of silence
  const ulaw = execFileSync('sox', ['-D', '-R', CLIPS[1], '-r', '8000', '-e', 'u-law', '-t', 'raw', '-']);
  const pad = Buffer.alloc(16000, 0xff);
  const audio = Buffer.concat([ulaw, pad]);
  for (let off = 0; off < audio.length; off += 1600) { ws.send(audio.subarray(off, off + 1600)); await sleep(25); }
  await waitFor(msgs, (m) => m.type === 'UtteranceEnd', 15000);
  ws.send(Buffer.alloc(0));
  const c = await closed;
  assert.equal(c.code, 1000);
  assert.equal(msgs.at(-1).type, 'Metadata');
  assert.equal(msgs.at(-1).request_id, upgradeHeaders['dg-request-id']);
  const ue = msgs.find((m) => m.type === 'UtteranceEnd');
  assert.deepEqual(ue.channel, [0, 1]);
  assert.equal(typeof ue.last_word_end, 'number');
  assert.ok(msgs.some((m) => m.type === 'Results' && !m.is_final), 'interim_results=TRUE gives interims');
  assert.ok(msgs.some((m) => m.type === 'Results' && m.is_final && m.channel.alternatives[0].transcript));
});

test('live wire: a client held back by hark (reading paused) is not idle; all its audio is transcribed', async () => {
  // A small session buffer and an idle timeout shorter than the pauses:
  // 8 kHz mu-law sent as fast as possible fills the buffer, hark stops
  // reading for seconds at a time, and the session must still end normally.
  const own = await startServer(['--idle-timeout', '1', '--session-buffer-bytes', '131072', '--workers', '1']);
  try {
    const one = execFileSync('sox', ['-D', '-R', CLIPS[1], '-r', '8000', '-e', 'u-law', '-t', 'raw', '-']);
    const audio = Buffer.concat(Array(8).fill(Buffer.concat([one, Buffer.alloc(8000, 0xff)])));
    const ws = new WebSocket(own.url + '/v1/listen?encoding=mulaw&sample_rate=8000');
    const msgs = [];
    ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
    const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    await new Promise((r) => ws.on('open', r));
    for (let off = 0; off < audio.length; off += 4000) ws.send(audio.subarray(off, off + 4000));
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    const c = await closed;
    assert.equal(c.code, 1000, `closed ${c.code} ${c.reason}`);
    const meta = msgs.at(-1);
    assert.equal(meta.type, 'Metadata');
    assert.ok(Math.abs(meta.duration - audio.length / 8000) < 0.05, `${meta.duration} s of ${audio.length / 8000}`);
    const text = msgs.filter((m) => m.type === 'Results' && m.is_final)
      .map((m) => m.channel.alternatives[0].transcript).join(' ');
    assert.equal(text.match(/young man/g)?.length, 8, text);
    // The session's end is logged when its entry is freed, which may come
    // just after the close reaches the client: wait for it (bounded).
    for (let i = 0; i < 100 && !/paus|resum|session ended/.test(own.log()); i++) await sleep(50);
    assert.match(own.log(), /paus|resum|session ended/);
  } finally {
    await own.stop();
  }
});

test('live: KeepAlive holds a silent session open past the idle timeout (3 s here)', async () => {
  const s = await live({ encoding: 'linear16', sample_rate: 16000 });
  s.socket.sendMedia(wavPcm(CLIPS[4]).subarray(0, 16000));
  for (let i = 0; i < 5; i++) { await sleep(1000); s.socket.sendKeepAlive({ type: 'KeepAlive' }); }
  assert.equal(s.closeEvent(), null, 'closed while kept alive');
  s.socket.sendCloseStream({ type: 'CloseStream' });
  assert.equal((await s.closed).code, 1000);
  assert.equal(s.messages.at(-1).type, 'Metadata');
});

test('live wire: idle timeout sends Metadata then closes 1011 NET-0001', async () => {
  const ws = new WebSocket(srv.url + '/v1/listen?encoding=linear16&sample_rate=16000', {
    headers: { Authorization: `bearer ${KEY}` } });
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise((r) => ws.on('open', r));
  ws.send(wavPcm(CLIPS[4]).subarray(0, 16000));
  const c = await closed;
  assert.equal(c.code, 1011);
  assert.match(c.reason, /NET-0001/);
  assert.equal(msgs.at(-1).type, 'Metadata');
});

test('live wire: undecodable audio closes 1008 DATA-0000; bad parameters get HTTP 400', async () => {
  const ws = new WebSocket(srv.url + '/v1/listen', { headers: { Authorization: `Token ${KEY}` } });
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise((r) => ws.on('open', r));
  ws.send(Buffer.from('this is not audio in any container hark knows'));
  const c = await closed;
  assert.equal(c.code, 1008);
  assert.match(c.reason, /DATA-0000/);

  for (const q of ['encoding=flac&sample_rate=16000', 'encoding=linear16', 'encoding=linear16&sample_rate=96000', 'language=xx']) {
    const bad = new WebSocket(srv.url + '/v1/listen?' + q, { headers: { Authorization: `Token ${KEY}` } });
    const res = await new Promise((r) => bad.on('unexpected-response', (req, resp) => r(resp)));
    assert.equal(res.statusCode, 400, q);
    let body = '';
    for await (const chunk of res) body += chunk;
    const j = JSON.parse(body);
    assert.ok(j.err_msg.length > 0 && j.request_id, q);
  }
});

test('pre-recorded: SDK transcribeFile returns the transcript', async () => {
  const dg = client();
  const res = await dg.listen.v1.media.transcribeFile(createReadStream(CLIPS[1]), { model: 'nova-3' });
  const body = res.results ? res : (res.data ?? res);
  const alt = body.results.channels[0].alternatives[0];
  assert.match(alt.transcript, /young man/);
  assert.ok(alt.words.length > 3);
  assert.equal(body.metadata.channels, 1);
  await assert.rejects(client('bad-key').listen.v1.media.transcribeFile(createReadStream(CLIPS[1]), {}),
    (e) => e.statusCode === 401 && e.body.err_code === 'INVALID_AUTH');
});

test('per-key session limit: a second session on the same key is refused with 429', async () => {
  const own = await startServer(['--max-sessions-per-key', '1'], { HARK_API_KEYS: 'k-one,k-two' });
  const open = (key) => new Promise((resolve) => {
    const ws = new WebSocket(own.url + '/v1/listen?encoding=linear16&sample_rate=16000',
      { headers: { Authorization: `Token ${key}` } });
    ws.on('open', () => resolve({ ws, status: 101 }));
    ws.on('unexpected-response', (req, res) => resolve({ ws, status: res.statusCode }));
  });
  try {
    const a = await open('k-one');
    assert.equal(a.status, 101);
    const b = await open('k-one');
    assert.equal(b.status, 429);
    const c = await open('k-two');
    assert.equal(c.status, 101);
    // native protocol shares the per-key count
    const n = await new Promise((resolve) => {
      const ws = new WebSocket(own.url + '/v1/stream', ['token', 'k-two']);
      ws.on('open', () => resolve(101));
      ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    });
    assert.equal(n, 429);
    a.ws.close();
    await sleep(300);
    const d = await open('k-one');
    assert.equal(d.status, 101, 'the slot is free again after the first session closed');
    d.ws.close();
    c.ws.close();
  } finally {
    await own.stop();
  }
});
