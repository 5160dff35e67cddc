// OpenAI Realtime API, transcription sessions, at /v1/realtime, driven by
// the official `openai` SDK's realtime WebSocket client (OpenAIRealtimeWS
// from openai/realtime/ws, 6.x) against a real `hark serve`. The client
// always connects with wss://, so hark serves TLS here with a certificate
// from a CA made in before(); the CA goes to `ws` through the client's
// `options`. The native protocol gets the same 24 kHz audio for the
// reference finals.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import OpenAI from 'openai';
import { OpenAIRealtimeWS } from 'openai/realtime/ws';
import { CLIPS, startServer, openNative, wavPcm, streamPcm, finals, waitFor, sleep } from './lib.mjs';

const KEY = 'rt-test-key';
let tmp, srv, caPem;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hark-rt-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
    '-days', '2', '-subj', '/CN=hark test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', '/CN=127.0.0.1');
  writeFileSync(path.join(tmp, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
  caPem = readFileSync(path.join(tmp, 'ca.pem'));
  srv = await startServer(['--workers', '2', '--tls-cert', path.join(tmp, 'server.pem'),
    '--tls-key', path.join(tmp, 'server.key')], { HARK_API_KEYS: KEY });
});
after(async () => {
  await srv?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// 16 kHz s16le -> 24 kHz s16le (linear interpolation), what a client sends as pcm16.
function to24k(pcm16k) {
  const inp = new Int16Array(pcm16k.buffer, pcm16k.byteOffset, pcm16k.length >> 1);
  const n = Math.floor(inp.length * 3 / 2);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) {
    const x = i * 2 / 3, k = Math.floor(x), f = x - k;
    const a = inp[k], b = inp[Math.min(k + 1, inp.length - 1)];
    out[i] = Math.round(a + (b - a) * f);
  }
  return Buffer.from(out.buffer);
}

// 16 kHz s16le -> 8 kHz G.711 mu-law (every other sample).
function toUlaw8k(pcm16k) {
  const inp = new Int16Array(pcm16k.buffer, pcm16k.byteOffset, pcm16k.length >> 1);
  const out = Buffer.alloc(inp.length >> 1);
  for (let i = 0; i < out.length; i++) {
    let s = inp[2 * i];
    const sign = s < 0 ? 0x80 : 0;
    if (s < 0) s = -s;
    s = Math.min(s, 32635) + 0x84;
    let exp = 7;
    for (let m = 0x4000; (s & m) === 0 && exp > 0; m >>= 1) exp--;
    out[i] = ~(sign | (exp << 4) | ((s >> (exp + 3)) & 0x0f)) & 0xff;
  }
  return out;
}

async function nativeFinals(audio, config) {
  const s = await openNative(srv.url, config, { ca: caPem, headers: { Authorization: `Bearer ${KEY}` } });
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, audio, { frameBytes: 4800 });
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  return finals(s.events);
}

// The SDK's client; resolves once the socket is open, with every event it got.
async function openRt(apiKey = KEY) {
  const client = new OpenAI({ apiKey, baseURL: srv.http + '/v1' });
  const rt = await OpenAIRealtimeWS.create(client, { model: 'gpt-4o-transcribe', options: { ca: caPem } });
  const events = [], errors = [];
  rt.on('event', (e) => events.push(e));
  rt.on('error', (e) => errors.push(e));
  await once(rt.socket, 'open');
  return { rt, events, errors };
}

async function appendAll(rt, audio, chunk) {
  for (let off = 0; off < audio.length; off += chunk) {
    rt.send({ type: 'input_audio_buffer.append', audio: audio.subarray(off, off + chunk).toString('base64') });
    if (rt.socket.bufferedAmount > 1 << 20) await sleep(5);
  }
}

// Every item the VAD opened has its completed transcription (bounded wait).
async function allCompleted(events, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const started = new Set(events.filter((e) => e.type === 'input_audio_buffer.speech_started').map((e) => e.item_id));
    const done = new Set(events.filter((e) => e.type === 'conversation.item.input_audio_transcription.completed').map((e) => e.item_id));
    if (started.size && [...started].every((id) => done.has(id))) return;
    if (Date.now() > end) throw new Error('items not completed: ' + JSON.stringify(events.map((e) => e.type)));
    await sleep(20);
  }
}

const completedText = (events) => events
  .filter((e) => e.type === 'conversation.item.input_audio_transcription.completed' && e.transcript)
  .map((e) => e.transcript).join(' ');

test('server_vad: pcm16 at 24 kHz; items end with the native protocol\'s finals for the same audio', async () => {
  const clip = CLIPS[0];
  const audio = Buffer.concat([to24k(wavPcm(clip)), Buffer.alloc(48000 * 1.5)]); // 1.5 s of silence after
  const want = await nativeFinals(audio, { encoding: 'pcm_s16le', sample_rate: 24000, endpointing_ms: 500 });
  const { rt, events, errors } = await openRt();
  await waitFor(events, (e) => e.type === 'session.created', 10000);
  assert.equal(events[0].type, 'session.created');
  assert.equal(events[0].session.type, 'transcription');
  rt.send({
    type: 'session.update', session: {
      type: 'transcription', audio: { input: {
        format: { type: 'audio/pcm', rate: 24000 }, transcription: { model: 'gpt-4o-transcribe', language: 'en' },
        turn_detection: { type: 'server_vad', silence_duration_ms: 500 } } },
    },
  });
  const upd = await waitFor(events, (e) => e.type === 'session.updated', 10000);
  assert.equal(upd.session.audio.input.turn_detection.silence_duration_ms, 500);
  await appendAll(rt, audio, 4800); // 100 ms per append
  await allCompleted(events);
  assert.deepEqual(errors, []);
  assert.ok(want.length > 0);
  assert.equal(completedText(events), want);
  // each item: speech_started, speech_stopped, committed, delta, completed, in that order
  const items = [...new Set(events.filter((e) => e.item_id).map((e) => e.item_id))];
  for (const id of items) {
    const seq = events.filter((e) => e.item_id === id).map((e) => e.type);
    const order = ['input_audio_buffer.speech_started', 'input_audio_buffer.speech_stopped',
      'input_audio_buffer.committed', 'conversation.item.input_audio_transcription.delta',
      'conversation.item.input_audio_transcription.completed'];
    assert.deepEqual(seq.filter((t) => t !== order[3]), order.filter((t) => t !== order[3]), `${id}: ${seq}`);
    const delta = events.find((e) => e.item_id === id && e.type === order[3]);
    const done = events.find((e) => e.item_id === id && e.type === order[4]);
    if (done.transcript) assert.equal(delta.delta, done.transcript);
  }
  assert.equal(new Set(events.map((e) => e.event_id)).size, events.length, 'event ids are unique');
  rt.close();
});

test('turn_detection null: the client commits; g711_ulaw; an empty commit is an error', async () => {
  const clip = CLIPS[1];
  const audio = toUlaw8k(wavPcm(clip));
  const want = await nativeFinals(audio, { encoding: 'mulaw', sample_rate: 8000, endpointing_ms: false });
  const { rt, events, errors } = await openRt();
  await waitFor(events, (e) => e.type === 'session.created', 10000);
  // an empty commit: OpenAI's error, the session goes on
  rt.send({ type: 'input_audio_buffer.commit', event_id: 'c-empty' });
  await waitFor(events, (e) => e.type === 'error', 10000);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].error.code, 'input_audio_buffer_commit_empty');
  assert.equal(errors[0].error.event_id, 'c-empty');
  rt.send({
    type: 'session.update', session: {
      type: 'transcription', audio: { input: { format: { type: 'audio/pcmu' }, turn_detection: null } },
    },
  });
  const upd = await waitFor(events, (e) => e.type === 'session.updated', 10000);
  assert.equal(upd.session.audio.input.turn_detection, null);
  await appendAll(rt, audio, 800);
  rt.send({ type: 'input_audio_buffer.commit' });
  const done = await waitFor(events, (e) => e.type === 'conversation.item.input_audio_transcription.completed', 60000);
  assert.equal(done.transcript, want);
  assert.ok(events.some((e) => e.type === 'input_audio_buffer.committed'));
  assert.ok(!events.some((e) => e.type.startsWith('input_audio_buffer.speech_')), 'no VAD events without turn detection');
  // clear is acknowledged
  rt.send({ type: 'input_audio_buffer.clear' });
  await waitFor(events, (e) => e.type === 'input_audio_buffer.cleared', 10000);
  rt.close();
});

test('errors in OpenAI\'s shape: unknown event, conversation events, a format change mid-session', async () => {
  const { rt, events, errors } = await openRt();
  await waitFor(events, (e) => e.type === 'session.created', 10000);
  rt.send({ type: 'dance', event_id: 'e1' });
  rt.send({ type: 'response.create', event_id: 'e2' });
  rt.send({ type: 'session.update', event_id: 'e3', session: { type: 'realtime' } });
  await waitFor(errors, (e) => e.error?.event_id === 'e3', 10000);
  const byId = Object.fromEntries(errors.map((e) => [e.error.event_id, e.error]));
  assert.equal(byId.e1.type, 'invalid_request_error');
  assert.equal(byId.e1.param, 'type');
  assert.equal(byId.e2.code, 'unsupported_event');
  assert.equal(byId.e3.param, 'session.type');
  // audio starts the session; then the format cannot change
  await appendAll(rt, to24k(wavPcm(CLIPS[1])).subarray(0, 48000), 4800);
  rt.send({ type: 'session.update', event_id: 'e4', session: { type: 'transcription', audio: { input: { format: { type: 'audio/pcmu' } } } } });
  await waitFor(errors, (e) => e.error?.event_id === 'e4', 10000);
  assert.equal(rt.socket.readyState, WebSocket.OPEN, 'errors leave the session open');
  rt.close();
});

test('auth: a wrong key is refused before the upgrade with OpenAI\'s error body', async () => {
  const res = await new Promise((resolve) => {
    const ws = new WebSocket(srv.url + '/v1/realtime?intent=transcription', { ca: caPem, headers: { Authorization: 'Bearer nope' } });
    ws.on('unexpected-response', (req, r) => {
      let body = '';
      r.on('data', (d) => { body += d; });
      r.on('end', () => resolve({ status: r.statusCode, body }));
    });
    ws.on('open', () => resolve({ status: 101 }));
    ws.on('error', () => {});
  });
  assert.equal(res.status, 401);
  assert.equal(JSON.parse(res.body).error.code, 'invalid_api_key');
  // through the SDK: its error event
  const client = new OpenAI({ apiKey: 'nope', baseURL: srv.http + '/v1' });
  const rt = await OpenAIRealtimeWS.create(client, { model: 'gpt-4o-transcribe', options: { ca: caPem } });
  const err = await new Promise((resolve) => rt.on('error', resolve));
  assert.match(err.message, /401/);
});

test('beta clients (OpenAI-Beta: realtime=v1): transcription_session.* events', async () => {
  const ws = new WebSocket(srv.url + '/v1/realtime?intent=transcription', {
    ca: caPem, headers: { Authorization: `Bearer ${KEY}`, 'OpenAI-Beta': 'realtime=v1' },
  });
  const events = [];
  ws.on('message', (d) => events.push(JSON.parse(d.toString())));
  await once(ws, 'open');
  const created = await waitFor(events, (e) => e.type === 'transcription_session.created', 10000);
  assert.equal(created.session.input_audio_format, 'pcm16');
  ws.send(JSON.stringify({ type: 'transcription_session.update', session: {
    input_audio_format: 'pcm16', input_audio_transcription: { model: 'whisper-1' },
    turn_detection: { type: 'server_vad', silence_duration_ms: 600 } } }));
  const upd = await waitFor(events, (e) => e.type === 'transcription_session.updated', 10000);
  assert.equal(upd.session.turn_detection.silence_duration_ms, 600);
  assert.equal(upd.session.input_audio_transcription.model, 'whisper-1');
  ws.close();
});

test('browsers: the key as subprotocol openai-insecure-api-key.KEY; realtime is echoed', async () => {
  const open = (key) => new Promise((resolve) => {
    const ws = new WebSocket(srv.url + '/v1/realtime?model=gpt-4o-transcribe',
      ['realtime', `openai-insecure-api-key.${key}`, 'openai-beta.realtime-v1'], { ca: caPem });
    const events = [];
    ws.on('message', (d) => events.push(JSON.parse(d.toString())));
    ws.on('open', () => resolve({ ws, events }));
    ws.on('unexpected-response', (req, r) => resolve({ status: r.statusCode }));
    ws.on('error', () => {});
  });
  const ok = await open(KEY);
  assert.ok(ok.ws, `upgrade refused: ${ok.status}`);
  assert.equal(ok.ws.protocol, 'realtime');
  // the beta subprotocol asks for the beta shape, as the header does
  await waitFor(ok.events, (e) => e.type === 'transcription_session.created', 10000);
  ok.ws.close();
  assert.equal((await open('nope')).status, 401);
});
