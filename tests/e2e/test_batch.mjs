// Batch (pre-recorded) transcription over plain HTTP POST, against a real
// `hark serve`: Deepgram's POST /v1/listen and OpenAI's POST
// /v1/audio/transcriptions, driven with curl (the client people paste from the
// docs) and, for the hang-up cases, a raw socket.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  HARK, CLIPS, startServer, openNative, wavPcm, streamPcm, sleep, curl, wavOf,
} from './lib.mjs';

const KEY = 'batch-test-key';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let srv, authSrv, tmp;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hark-batch-'));
  [srv, authSrv] = await Promise.all([
    startServer(['--workers', '2']),
    startServer(['--workers', '1', '--max-body-bytes', '150000'], { HARK_API_KEYS: `${KEY},other` }),
  ]);
});
after(async () => {
  await Promise.all([srv?.stop(), authSrv?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// What `hark transcribe` says about a clip: the reference (memoised).
const cliCache = new Map();
function cliText(clip) {
  if (!cliCache.has(clip))
    cliCache.set(clip, execFileSync(HARK, ['transcribe', clip], { encoding: 'utf8' })
      .trim().split('\n').filter(Boolean).join(' '));
  return cliCache.get(clip);
}


const listen = (base, file, query = '', extra = []) =>
  curl([...extra, '-H', 'Content-Type: audio/wav', '--data-binary', '@' + file, `${base}/v1/listen${query}`]);
const openai = (base, file, fields = {}, extra = []) =>
  curl([...extra, '-F', `file=@${file}`, ...Object.entries(fields).flatMap(([k, v]) => ['-F', `${k}=${v}`]),
    `${base}/v1/audio/transcriptions`]);

function checkDeepgramShape(r, file) {
  const j = r.json();
  const m = j.metadata;
  assert.equal(m.transaction_key, 'deprecated');
  assert.match(m.request_id, UUID);
  assert.equal(r.headers['dg-request-id'], m.request_id);
  assert.equal(m.sha256, createHash('sha256').update(readFileSync(file)).digest('hex'));
  assert.ok(!Number.isNaN(Date.parse(m.created)), m.created);
  assert.equal(m.channels, 1);
  assert.equal(m.models.length, 1);
  for (const k of ['name', 'version', 'arch']) assert.equal(typeof m.model_info[m.models[0]][k], 'string', k);
  assert.equal(j.results.channels.length, 1);
  const alt = j.results.channels[0].alternatives[0];
  assert.equal(typeof alt.transcript, 'string');
  assert.ok(alt.confidence >= 0 && alt.confidence <= 1);
  let prev = 0;
  for (const w of alt.words) {
    for (const k of ['word', 'start', 'end', 'confidence', 'punctuated_word']) assert.ok(k in w, k);
    assert.ok(w.start >= prev - 1e-9 && w.end >= w.start, JSON.stringify(w));
    prev = w.start;
  }
  assert.equal(alt.words.map((w) => w.word).join(' '), alt.transcript);
  return j;
}

test('POST /v1/listen with a WAV body: Deepgram response, same words as hark transcribe', async () => {
  for (const clip of [CLIPS[0], CLIPS[3]]) {
    const r = await listen(srv.http, clip);
    assert.equal(r.status, 200, r.body);
    assert.match(r.headers['content-type'], /application\/json/);
    const j = checkDeepgramShape(r, clip);
    assert.equal(j.results.channels[0].alternatives[0].transcript, cliText(clip));
    assert.ok(Math.abs(j.metadata.duration - wavPcm(clip).length / 32000) < 0.01, String(j.metadata.duration));
    assert.equal(j.results.utterances, undefined, 'utterances only when asked');
  }
  const slash = await listen(srv.http, CLIPS[1], '/');
  assert.equal(slash.status, 200, 'trailing slash accepted');
});

test('raw linear16 with encoding and sample_rate gives the same transcript', async () => {
  const raw = path.join(tmp, 'clip.raw');
  writeFileSync(raw, wavPcm(CLIPS[0]));
  const r = await listen(srv.http, raw, '?encoding=linear16&sample_rate=16000');
  assert.equal(r.status, 200, r.body);
  const j = checkDeepgramShape(r, raw);
  assert.equal(j.results.channels[0].alternatives[0].transcript, cliText(CLIPS[0]));
  // without the encoding, headerless audio is not a WAV: a 400 that says what to send
  const bad = await listen(srv.http, raw);
  assert.equal(bad.status, 400);
  assert.match(bad.json().err_msg, /encoding=linear16/);
});

test('utterances=true: clips joined with pauses come back as one utterance each', async () => {
  const silence = Buffer.alloc(2 * 32000); // 2 s
  const parts = [CLIPS[0], CLIPS[2], CLIPS[4]].map(wavPcm);
  const spans = [];
  let off = 0;
  const chunks = [];
  for (const p of parts) {
    chunks.push(silence, p);
    off += silence.length;
    spans.push([off / 32000, (off + p.length) / 32000]);
    off += p.length;
  }
  chunks.push(silence);
  const file = path.join(tmp, 'joined.wav');
  writeFileSync(file, wavOf(Buffer.concat(chunks)));
  const r = await listen(srv.http, file, '?utterances=true&model=nova-3');
  assert.equal(r.status, 200, r.body);
  const j = checkDeepgramShape(r, file);
  const u = j.results.utterances;
  assert.equal(u.length, 3, JSON.stringify(u.map((x) => x.transcript)));
  const ids = new Set();
  u.forEach((x, i) => {
    assert.ok(x.start >= spans[i][0] - 0.3 && x.end <= spans[i][1] + 0.3, `utterance ${i} ${x.start}-${x.end} outside ${spans[i]}`);
    assert.equal(x.channel, 0);
    assert.equal(x.speaker, 0);
    assert.match(x.id, UUID);
    ids.add(x.id);
    assert.ok(x.transcript.length > 0);
    assert.equal(x.words.map((w) => w.word).join(' '), x.transcript);
  });
  assert.equal(ids.size, 3);
  assert.equal(u.map((x) => x.transcript).join(' '), j.results.channels[0].alternatives[0].transcript);
  assert.equal(j.metadata.model_info[j.metadata.models[0]].name, 'nova-3');
});

test('bad requests: undecodable body, bad query, JSON url body, missing Content-Length', async () => {
  const txt = path.join(tmp, 'notes.txt');
  writeFileSync(txt, 'this is a text file, not audio at all\n');
  const r = await listen(srv.http, txt);
  assert.equal(r.status, 400);
  const e = r.json();
  assert.equal(e.err_code, 'Bad Request');
  assert.match(e.err_msg, /WAV/);
  assert.match(e.request_id, UUID);
  assert.equal(r.headers['dg-request-id'], e.request_id);

  for (const [q, name] of [['?encoding=flac', 'encoding'], ['?encoding=linear16', 'sample_rate'],
    ['?sample_rate=16000&encoding=linear16&channels=99', 'channels'], ['?utt_split=abc', 'utt_split']]) {
    const b = await listen(srv.http, CLIPS[1], q);
    assert.equal(b.status, 400, q);
    assert.match(b.json().err_msg, new RegExp('^' + name + ':'), q);
  }
  const url = await curl(['-H', 'Content-Type: application/json', '-d', '{"url":"https://example.com/a.wav"}',
    `${srv.http}/v1/listen`]);
  assert.equal(url.status, 400);
  assert.match(url.json().err_msg, /not supported/);

  // curl streams a chunked body without Content-Length: refused before reading it
  const chunked = await listen(srv.http, CLIPS[1], '', ['-H', 'Transfer-Encoding: chunked']);
  assert.equal(chunked.status, 411);
  assert.match(chunked.json().err_msg, /Content-Length/);
  // the OpenAI endpoint decodes chunked bodies (Node's fetch streams files that way)
  const oaChunked = await openai(srv.http, CLIPS[1], {}, ['-H', 'Transfer-Encoding: chunked']);
  assert.equal(oaChunked.status, 200, oaChunked.body);
  assert.equal(oaChunked.json().text, cliText(CLIPS[1]));
  assert.equal(oaChunked.headers.connection, 'close');
  // both framings at once is refused (request smuggling); an unknown coding is 501
  const both = await openai(srv.http, CLIPS[1], {}, ['-H', 'Transfer-Encoding: chunked', '-H', 'Content-Length: 10']);
  assert.equal(both.status, 400, both.body);
  assert.match(both.json().error.message, /both/);
  const gz = await curl(['-H', 'Transfer-Encoding: gzip', '-H', 'Content-Length: 5', '-d', 'abcde',
    `${srv.http}/v1/audio/transcriptions`]);
  assert.equal(gz.status, 501, gz.body);

  // the server is still fine afterwards
  assert.equal((await listen(srv.http, CLIPS[4])).status, 200);
});

test('too large a body gets 413 before it is read', async () => {
  const big = CLIPS.find((c) => readFileSync(c).length > 150000);
  const r = await listen(authSrv.http, big, '', ['-H', `Authorization: Token ${KEY}`]);
  assert.equal(r.status, 413);
  assert.match(r.json().err_msg, /150000/);
  const o = await openai(authSrv.http, big, { model: 'whisper-1' }, ['-H', `Authorization: Bearer ${KEY}`]);
  assert.equal(o.status, 413);
  assert.equal(o.json().error.param, 'file');
});

test('API keys: none or a wrong one is 401, Token/Bearer with a key is 200', async () => {
  const small = CLIPS.find((c) => readFileSync(c).length < 150000);
  const none = await listen(authSrv.http, small);
  assert.equal(none.status, 401);
  assert.equal(none.json().err_code, 'INVALID_AUTH'); // in the endpoint's own error shape
  assert.match(none.headers['dg-request-id'], UUID);
  assert.equal((await listen(authSrv.http, small, '', ['-H', 'Authorization: Token nope'])).status, 401);
  const oaNone = await openai(authSrv.http, small, { model: 'whisper-1' });
  assert.equal(oaNone.status, 401);
  assert.equal(oaNone.json().error.code, 'invalid_api_key');
  const oaWrong = await openai(authSrv.http, small, {}, ['-H', 'Authorization: Bearer nope']);
  assert.equal(oaWrong.status, 401);
  const ok = await listen(authSrv.http, small, '', ['-H', `Authorization: Token ${KEY}`]);
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.json().results.channels[0].alternatives[0].transcript, cliText(small));
  const oa = await openai(authSrv.http, small, { model: 'whisper-1' }, ['-H', `Authorization: Bearer ${KEY}`]);
  assert.equal(oa.status, 200, oa.body);
  assert.equal(oa.json().text, cliText(small));
  // health stays open
  assert.equal((await curl([`${authSrv.http}/healthz`])).status, 200);
});

// A refusal sent before the body was read (a wrong key here) leaves the body on
// the connection: the answer must say `connection: close`, or a keep-alive
// client's next request on that connection is lost ("socket hang up").
test('a request refused before its body is read: connection close, the next request on the same agent works', async () => {
  const small = CLIPS.find((c) => readFileSync(c).length < 150000);
  const port = Number(new URL(authSrv.http).port);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (key, chunked) => new Promise((resolve, reject) => {
    const body = readFileSync(small);
    const headers = { authorization: `Token ${key}`, 'content-type': 'audio/wav' };
    if (!chunked) headers['content-length'] = body.length;
    const rq = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/v1/listen', agent, headers }, (r) => {
      let d = '';
      r.setEncoding('utf8');
      r.on('data', (c) => { d += c; });
      r.on('end', () => resolve({ status: r.statusCode, connection: r.headers.connection, body: d }));
    });
    rq.on('error', reject);
    rq.setTimeout(60000, () => rq.destroy(new Error('no answer in 60 s')));
    if (chunked) { rq.write(body.subarray(0, 1000)); rq.write(body.subarray(1000)); } else rq.write(body);
    rq.end();
  });
  try {
    for (const chunked of [true, false]) {
      const refused = await post('nope', chunked);
      assert.equal(refused.status, 401);
      assert.equal(refused.connection, 'close');
      const ok = await post(KEY, false); // /v1/listen wants a Content-Length (411 otherwise)
      assert.equal(ok.status, 200, ok.body);
      assert.equal(JSON.parse(ok.body).results.channels[0].alternatives[0].transcript, cliText(small));
    }
  } finally {
    agent.destroy();
  }
});

test('OpenAI multipart: json, text, verbose_json, srt, vtt', async () => {
  const clip = CLIPS[1];
  const want = cliText(clip);
  const j = await openai(srv.http, clip, { model: 'whisper-1' });
  assert.equal(j.status, 200, j.body);
  assert.deepEqual(j.json(), { text: want });

  const t = await openai(srv.http, clip, { model: 'whisper-1', response_format: 'text', language: 'en' });
  assert.equal(t.status, 200);
  assert.match(t.headers['content-type'], /^text\/plain/);
  assert.equal(t.body, want + '\n');

  // fields after the file part are honoured too (curl sends them in order)
  const v = await curl(['-F', `file=@${clip}`, '-F', 'model=whisper-1', '-F', 'response_format=verbose_json',
    '-F', 'timestamp_granularities[]=word', '-F', 'temperature=0', '-F', 'prompt=Elinor and Marianne',
    `${srv.http}/v1/audio/transcriptions`]);
  assert.equal(v.status, 200, v.body);
  const vj = v.json();
  assert.equal(vj.task, 'transcribe');
  assert.equal(vj.language, 'english');
  assert.equal(vj.text, want);
  assert.ok(Math.abs(vj.duration - wavPcm(clip).length / 32000) < 0.01);
  assert.ok(vj.segments.length >= 1);
  vj.segments.forEach((s, i) => {
    assert.equal(s.id, i);
    for (const k of ['seek', 'start', 'end', 'temperature', 'avg_logprob', 'compression_ratio', 'no_speech_prob'])
      assert.equal(typeof s[k], 'number', k);
    assert.deepEqual(s.tokens, []);
    assert.ok(s.end >= s.start);
  });
  assert.equal(vj.segments.map((s) => s.text.trim()).join(' '), want);
  assert.equal(vj.words.map((w) => w.word).join(' '), want);
  for (const w of vj.words) assert.ok(w.end >= w.start && w.start >= 0);

  const srt = await openai(srv.http, clip, { response_format: 'srt' });
  assert.equal(srt.status, 200);
  assert.match(srt.body, /^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S/);
  const vtt = await openai(srv.http, clip, { response_format: 'vtt' });
  assert.equal(vtt.status, 200);
  assert.match(vtt.body, /^WEBVTT\n\n\d\d:\d\d:\d\d\.\d{3} --> /);
});

test('OpenAI errors: bad response_format, missing file, not audio, bad language', async () => {
  const bad = await openai(srv.http, CLIPS[1], { model: 'whisper-1', response_format: 'xml' });
  assert.equal(bad.status, 400);
  const e = bad.json().error;
  assert.equal(e.type, 'invalid_request_error');
  assert.equal(e.param, 'response_format');
  assert.match(e.message, /verbose_json/);

  const nofile = await curl(['-F', 'model=whisper-1', `${srv.http}/v1/audio/transcriptions`]);
  assert.equal(nofile.status, 400);
  assert.equal(nofile.json().error.param, 'file');

  const txt = path.join(tmp, 'notes2.txt');
  writeFileSync(txt, 'hello, not audio\n');
  const na = await openai(srv.http, txt, { model: 'whisper-1' });
  assert.equal(na.status, 400);
  assert.equal(na.json().error.param, 'file');
  assert.match(na.json().error.message, /WAV/);

  const lang = await curl(['-F', 'language=xx', '-F', `file=@${CLIPS[1]}`, `${srv.http}/v1/audio/transcriptions`]);
  assert.equal(lang.status, 400);
  assert.equal(lang.json().error.param, 'language');
  const late = await curl(['-F', `file=@${CLIPS[1]}`, '-F', 'language=xx', `${srv.http}/v1/audio/transcriptions`]);
  assert.equal(late.status, 400, 'a language after the file part is still validated');

  const form = await curl(['-H', 'Content-Type: application/octet-stream', '--data-binary', `@${CLIPS[1]}`,
    `${srv.http}/v1/audio/transcriptions`]);
  assert.equal(form.status, 400);
  assert.match(form.json().error.message, /multipart/);
});

async function sessionsActive(s) {
  const m = await (await fetch(s.http + '/metrics')).text();
  return Number(m.match(/^hark_sessions_active (\S+)$/m)[1]);
}

async function waitIdle(s, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if ((await sessionsActive(s)) === 0) return true;
    await sleep(100);
  }
  return false;
}

// A FIN queues behind the unsent part of an upload, so a server that paused
// reading only sees it after reading what was in flight; a reset (a killed
// client with unread data, a proxy timeout) is seen at once, paused or not.
test('a client hanging up mid-upload releases the session', async () => {
  const pcm = Buffer.concat([...CLIPS, ...CLIPS].map(wavPcm));
  const body = wavOf(pcm);
  for (const [sent, pace] of [[200000, 'slow'], [1500000, 'fast']]) {
    const sock = net.connect(srv.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /v1/listen HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
    for (let off = 0; off < sent; off += 20000) {
      sock.write(body.subarray(off, off + 20000));
      if (pace === 'slow') await sleep(20);
    }
    // fast: more than the server buffers, so it has paused reading
    await sleep(pace === 'fast' ? 1000 : 300);
    assert.equal(await sessionsActive(srv), 1, pace);
    if (pace === 'slow') sock.destroy(); // FIN
    else sock.resetAndDestroy(); // RST while the server has paused reading
    assert.ok(await waitIdle(srv, 5000), `${pace} upload: session not released after the hang-up`);
  }
  assert.match(srv.log(), /batch request dropped/);
});

test('a batch upload shares the workers: live finals stay prompt', async () => {
  // One worker: the batch job and the live session compete for it.
  const one = await startServer(['--workers', '1']);
  try {
    const batchFile = path.join(tmp, 'long.wav');
    // ~150 s of audio: ~15 s of decoding for the one worker even on a fast
    // machine (0.1 CPU s per audio s), so it outlasts the ~9 s live session
    const long = Array.from({ length: 6 }, () => CLIPS).flat();
    writeFileSync(batchFile, wavOf(Buffer.concat(long.map(wavPcm))));
    let batchDone = 0;
    const batch = listen(one.http, batchFile, '', ['--max-time', '240'])
      .then((r) => { batchDone = Date.now(); return r; }, (error) => ({ error }));
    await sleep(500);
    const live = await openNative(one.url, { encoding: 'pcm_s16le', sample_rate: 16000 });
    assert.equal(live.ready.type, 'ready', JSON.stringify(live.ready));
    const arrivals = [];
    live.ws.on('message', (d, bin) => {
      if (bin) return;
      const e = JSON.parse(d.toString());
      if (e.type === 'transcript' && e.is_final) arrivals.push({ e, at: Date.now() });
    });
    const clip = wavPcm(CLIPS[0]);
    const t0 = Date.now();
    await streamPcm(live.ws, Buffer.concat([clip, Buffer.alloc(32000)]), { realtime: true });
    const closeAt = Date.now();
    live.ws.send(JSON.stringify({ type: 'close' }));
    await live.closed;
    const liveEnd = Date.now();
    const endpointed = arrivals.filter((a) => a.e.reason === 'endpoint' && a.e.text);
    assert.ok(endpointed.length >= 1, JSON.stringify(arrivals.map((a) => a.e)));
    // latency of a final: from when its audio had been sent (real time)
    const lat = endpointed.map((a) => a.at - (t0 + a.e.end * 1000));
    const closeLat = liveEnd - closeAt;
    console.log(`live final latencies under batch load (ms): ${lat.map(Math.round).join(', ')}; close ${closeLat}`);
    // Unloaded, these are ~0.2-0.5 s; a batch job holding the worker for its
    // whole run would make them ~20 s. Bounds are generous for a busy CI box.
    for (const l of lat) assert.ok(l < 3000, `final ${Math.round(l)} ms after its audio`);
    assert.ok(closeLat < 5000, `close took ${closeLat} ms`);
    assert.equal(batchDone, 0, 'the batch job should still be running: the test needs the overlap');
    const r = await batch;
    assert.ifError(r.error);
    assert.equal(r.status, 200, r.body);
    assert.ok(r.json().results.channels[0].alternatives[0].words.length > 100);
  } finally {
    await one.stop();
  }
});
