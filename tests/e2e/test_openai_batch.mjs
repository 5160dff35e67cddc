// OpenAI's batch transcription endpoint through the official `openai` SDK
// (client.audio.transcriptions.create with baseURL pointing at a real
// `hark serve`): every response_format, stream=true, files as a stream (the
// SDK sends those with Transfer-Encoding: chunked) and as a Buffer (with a
// Content-Length), and errors as the SDK's APIError subclasses.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, readFileSync } from 'node:fs';
import OpenAI, { toFile, BadRequestError, AuthenticationError, APIError } from 'openai';
import { HARK, CLIPS, startServer, wavPcm } from './lib.mjs';

const KEY = 'oa-sdk-key';
let srv, client;

before(async () => {
  srv = await startServer(['--workers', '2', '--max-body-bytes', '200000'], { HARK_API_KEYS: KEY });
  client = new OpenAI({ apiKey: KEY, baseURL: srv.http + '/v1', maxRetries: 0 });
});
after(async () => { await srv?.stop(); });

const cliCache = new Map();
function cliText(clip) {
  if (!cliCache.has(clip))
    cliCache.set(clip, execFileSync(HARK, ['transcribe', clip], { encoding: 'utf8' })
      .trim().split('\n').filter(Boolean).join(' '));
  return cliCache.get(clip);
}

const small = CLIPS.filter((c) => readFileSync(c).length < 200000);

test('a file stream (chunked upload): json, text, srt, vtt give the words hark transcribe gives', async () => {
  const clip = small[0];
  const want = cliText(clip);
  const j = await client.audio.transcriptions.create({ file: createReadStream(clip), model: 'whisper-1' });
  assert.deepEqual(j, { text: want });
  const t = await client.audio.transcriptions.create({
    file: createReadStream(clip), model: 'whisper-1', response_format: 'text', language: 'en',
  });
  assert.equal(t, want + '\n');
  const srt = await client.audio.transcriptions.create({
    file: createReadStream(clip), model: 'whisper-1', response_format: 'srt',
  });
  assert.match(srt, /^1\n\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}\n\S/);
  assert.equal(srt.split('\n\n').filter(Boolean).map((cue) => cue.split('\n').slice(2).join(' ')).join(' '), want);
  const vtt = await client.audio.transcriptions.create({
    file: createReadStream(clip), model: 'whisper-1', response_format: 'vtt',
  });
  assert.match(vtt, /^WEBVTT\n\n\d\d:\d\d:\d\d\.\d{3} --> /);
});

test('verbose_json with word and segment timestamps, from a Buffer (Content-Length)', async () => {
  const clip = small[1];
  const want = cliText(clip);
  const v = await client.audio.transcriptions.create({
    file: await toFile(readFileSync(clip), 'clip.wav'), model: 'whisper-1',
    response_format: 'verbose_json', timestamp_granularities: ['word', 'segment'],
  });
  assert.equal(v.task, 'transcribe');
  assert.equal(v.language, 'english');
  assert.equal(v.text, want);
  assert.ok(Math.abs(v.duration - wavPcm(clip).length / 32000) < 0.01, String(v.duration));
  assert.ok(v.segments.length >= 1);
  v.segments.forEach((s, i) => {
    assert.equal(s.id, i);
    assert.ok(s.end >= s.start && s.start >= 0);
    assert.equal(s.text[0], ' ');
  });
  assert.equal(v.segments.map((s) => s.text.trim()).join(' '), want);
  assert.equal(v.words.map((w) => w.word).join(' '), want);
  let prev = 0;
  for (const w of v.words) {
    assert.ok(w.start >= prev - 1e-9 && w.end >= w.start, JSON.stringify(w));
    prev = w.start;
  }
});

test('stream: true gives transcript.text.delta events and a transcript.text.done', async () => {
  const clip = small[2];
  const want = cliText(clip);
  const stream = await client.audio.transcriptions.create({
    file: createReadStream(clip), model: 'gpt-4o-transcribe', stream: true,
  });
  const events = [];
  for await (const ev of stream) events.push(ev);
  assert.ok(events.length >= 2, JSON.stringify(events));
  const done = events.at(-1);
  assert.equal(done.type, 'transcript.text.done');
  assert.equal(done.text, want);
  const deltas = events.slice(0, -1);
  for (const d of deltas) assert.equal(d.type, 'transcript.text.delta');
  assert.equal(deltas.map((d) => d.delta).join(''), want);
});

test('errors are the SDK\'s APIError subclasses with OpenAI\'s fields', async () => {
  // not audio: 400 on the file
  const e1 = await client.audio.transcriptions.create({
    file: await toFile(Buffer.from('hello, this is not audio\n'), 'notes.txt'), model: 'whisper-1',
  }).catch((e) => e);
  assert.ok(e1 instanceof BadRequestError, String(e1));
  assert.equal(e1.status, 400);
  assert.equal(e1.param, 'file');
  assert.equal(e1.type, 'invalid_request_error');
  assert.match(e1.message, /WAV/);
  // a format hark does not write
  const e2 = await client.audio.transcriptions.create({
    file: createReadStream(small[0]), model: 'whisper-1', response_format: 'diarized_json',
  }).catch((e) => e);
  assert.ok(e2 instanceof BadRequestError, String(e2));
  assert.equal(e2.param, 'response_format');
  // a wrong key
  const bad = new OpenAI({ apiKey: 'nope', baseURL: srv.http + '/v1', maxRetries: 0 });
  const e3 = await bad.audio.transcriptions.create({ file: createReadStream(small[0]), model: 'whisper-1' })
    .catch((e) => e);
  assert.ok(e3 instanceof AuthenticationError, String(e3));
  assert.equal(e3.status, 401);
  assert.equal(e3.code, 'invalid_api_key');
  // a streamed file past --max-body-bytes: 413 once the decoded body passes it
  const big = CLIPS.find((c) => readFileSync(c).length > 200000);
  const e4 = await client.audio.transcriptions.create({ file: createReadStream(big), model: 'whisper-1' })
    .catch((e) => e);
  assert.ok(e4 instanceof APIError, String(e4));
  assert.equal(e4.status, 413);
  assert.equal(e4.param, 'file');
  assert.match(e4.message, /200000/);
  // and the server goes on serving
  const ok = await client.audio.transcriptions.create({ file: createReadStream(small[0]), model: 'whisper-1' });
  assert.equal(ok.text, cliText(small[0]));
});
