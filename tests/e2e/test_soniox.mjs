// Soniox compatibility (docs/soniox.md), tested with the official
// @soniox/node SDK's real-time client pointed at a real `hark serve` through
// its documented ws_base_url option, plus raw `ws` checks of the wire
// details the SDK hides (error shapes, close codes, key handling).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { SonioxNodeClient, AuthError, BadRequestError } from '@soniox/node';
import { CLIPS, startServer, openNative, finals, sleep, wavPcm } from './lib.mjs';

// The SDK uses the platform's WebSocket; Node 20 has none (22 does): `ws`
// stands in, as it does for the SDK on Node before 22.
globalThis.WebSocket ??= WebSocket;

const KEY = 'soniox-test-key';
let srv;

// Full-speed sessions one after another: admission's compute measure must
// not refuse the next (admission has its own tests).
before(async () => {
  srv = await startServer(['--max-busy-percent', '100', '--max-lag-ms', '60000'],
    { HARK_API_KEYS: `${KEY},other-key` });
});
after(async () => { if (srv) await srv.stop(); });

const PCM = { audio_format: 'pcm_s16le', sample_rate: 16000, num_channels: 1 };

async function nativeFinals(pcm) {
  const s = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 },
    { headers: { Authorization: `Token ${KEY}` } });
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  for (let off = 0; off < pcm.length; off += 8000) s.ws.send(pcm.subarray(off, off + 8000));
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  return finals(s.events);
}

function sdk(key = KEY) {
  return new SonioxNodeClient({ api_key: key, realtime: { ws_base_url: srv.url + '/transcribe-websocket' } });
}

// Runs one SDK session over pcm; returns what the SDK's events gave.
async function sdkSession(pcm, config = {}, { finalizeAt = -1 } = {}) {
  const session = sdk().realtime.stt({ model: 'stt-rt-v4', language_hints: ['en'], ...PCM, ...config });
  const finalTokens = [], results = [], errors = [];
  let finalized = 0, endpoints = 0, finished = 0;
  session.on('token', (t) => { if (t.is_final) finalTokens.push(t); });
  session.on('result', (r) => results.push(r));
  session.on('finalized', () => finalized++);
  session.on('endpoint', () => endpoints++);
  session.on('finished', () => finished++);
  session.on('error', (e) => errors.push(e));
  await session.connect();
  for (let off = 0; off < pcm.length; off += 3200) {
    session.sendAudio(pcm.subarray(off, off + 3200));
    if (off === finalizeAt) session.finalize();
    await sleep(2);
  }
  await session.finish();
  return { session, text: finalTokens.map((t) => t.text).join('').trim(), finalTokens, results,
    errors, finalized, endpoints, finished };
}

test('@soniox/node real-time session: finals match the native protocol, tokens well formed, clean finish', async () => {
  for (const clip of CLIPS.slice(0, 2)) {
    const pcm = wavPcm(clip);
    const want = await nativeFinals(pcm);
    const r = await sdkSession(pcm, { enable_endpoint_detection: true });
    assert.deepEqual(r.errors, []);
    assert.equal(r.text, want, clip);
    assert.equal(r.finished, 1);
    assert.equal(r.session.state, 'finished');
    let lastEnd = 0;
    for (const t of r.finalTokens) {
      assert.equal(typeof t.start_ms, 'number');
      assert.ok(t.end_ms >= t.start_ms && t.start_ms >= lastEnd - 1, JSON.stringify(t));
      assert.ok(t.confidence >= 0 && t.confidence <= 1);
      lastEnd = t.end_ms;
    }
    const last = r.results[r.results.length - 1];
    assert.ok(last.finished);
    assert.ok(last.final_audio_proc_ms >= Math.floor(pcm.length / 32) - 1, JSON.stringify(last));
  }
});

test('@soniox/node finalize: <fin> arrives (the SDK\'s finalized event) and the words before it are final', async () => {
  const pcm = wavPcm(CLIPS[0]);
  const r = await sdkSession(pcm, {}, { finalizeAt: 3200 * 40 });
  assert.deepEqual(r.errors, []);
  assert.equal(r.finalized, 1);
  // the response with <fin> had every token final (the SDK strips <fin>)
  assert.ok(r.results.some((x) => x.raw.tokens.some((t) => t.text === '<fin>') &&
    x.raw.tokens.every((t) => t.is_final)));
  assert.equal(r.text, await nativeFinalsWithFinalize(pcm, 3200 * 40));
});

// Native finals with a finalize after the same byte offset.
async function nativeFinalsWithFinalize(pcm, at) {
  const s = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 },
    { headers: { Authorization: `Token ${KEY}` } });
  for (let off = 0; off < pcm.length; off += 3200) {
    s.ws.send(pcm.subarray(off, off + 3200));
    if (off === at) s.ws.send(JSON.stringify({ type: 'finalize' }));
  }
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  return finals(s.events);
}

test('@soniox/node errors: a wrong key is an AuthError (401), an unknown audio_format a BadRequestError (400)', async () => {
  for (const [key, config, cls, code] of [
    ['wrong-key', {}, AuthError, 401],
    [KEY, { audio_format: 'mp3' }, BadRequestError, 400],
    [KEY, { audio_format: 'pcm_s16le', sample_rate: undefined }, BadRequestError, 400],
  ]) {
    const session = sdk(key).realtime.stt({ model: 'stt-rt-v4', ...PCM, ...config });
    const errors = [];
    session.on('error', (e) => errors.push(e));
    await session.connect();
    const end = Date.now() + 10000;
    while (!errors.length && Date.now() < end) await sleep(20);
    assert.ok(errors[0] instanceof cls, String(errors[0]));
    assert.equal(errors[0].statusCode, code);
    assert.ok(errors[0].message.length > 0);
    assert.equal(session.state, 'error');
  }
});

// Raw wire: what the SDK hides.
async function rawSession(path, { headers = {} } = {}) {
  const ws = new WebSocket(srv.url + path, { headers });
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
  ws.on('error', () => {});
  return { ws, msgs, closed };
}

test('wire: key in the first message, the Authorization header, or refused; error shape and close', async () => {
  // no key anywhere: the upgrade passes, the configuration is refused 401
  let s = await rawSession('/transcribe-websocket');
  await once(s.ws, 'open');
  s.ws.send(JSON.stringify({ model: 'stt-rt-v4', ...PCM }));
  assert.equal(await s.closed, 1008);
  assert.equal(s.msgs.length, 1);
  assert.equal(s.msgs[0].error_code, 401);
  assert.match(s.msgs[0].error_message, /API key/);

  // a wrong key in the request is refused before the upgrade, Soniox-shaped
  const bad = new WebSocket(srv.url + '/transcribe-websocket', { headers: { Authorization: 'Bearer nope' } });
  bad.on('error', () => {});
  const [, res] = await once(bad, 'unexpected-response');
  assert.equal(res.statusCode, 401);
  let body = '';
  for await (const c of res) body += c;
  assert.equal(JSON.parse(body).error_code, 401);

  // the header's key serves; then audio, an empty text message ends: finished, 1000
  s = await rawSession('/transcribe-websocket', { headers: { Authorization: `Bearer ${KEY}` } });
  await once(s.ws, 'open');
  s.ws.send(JSON.stringify({ model: 'stt-rt-v4', ...PCM }));
  s.ws.send(wavPcm(CLIPS[1]));
  s.ws.send('');
  assert.equal(await s.closed, 1000);
  const last = s.msgs[s.msgs.length - 1];
  assert.equal(last.finished, true);
  assert.deepEqual(last.tokens, []);
  assert.ok(s.msgs.some((m) => m.tokens.some((t) => t.is_final && t.text.trim())));

  // audio before the configuration: 400 and close
  s = await rawSession('/transcribe', { headers: { Authorization: `Bearer ${KEY}` } });
  await once(s.ws, 'open');
  s.ws.send(Buffer.alloc(640));
  assert.equal(await s.closed, 1008);
  assert.equal(s.msgs[0].error_code, 400);
});
