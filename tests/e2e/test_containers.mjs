// Containerised audio read without an encoding ("auto"): Ogg Opus (opusenc,
// as files and SDKs send it) and WebM/Opus (a browser's MediaRecorder, the
// most common way web pages stream to Deepgram). Real producers only: Debian's
// opusenc, and headless Chromium recording a fake microphone that plays a
// pocketsphinx-testdata clip, streaming 250 ms MediaRecorder chunks to hark's
// Deepgram-compatible /v1/listen exactly as a web page would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import { HARK, CLIPS, references, startServer, openNative, sleep, wer } from './lib.mjs';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'container-key';
let srv, work;

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'hark-containers-'));
  srv = await startServer([], { HARK_API_KEYS: KEY });
});
after(async () => {
  // a clean exit: under the sanitizer build a leak or an error report is a
  // non-zero status
  if (srv) assert.equal(await srv.stop(), 0, srv.log().slice(-2000));
  if (work) rmSync(work, { recursive: true, force: true });
});

const clipId = (clip) => path.basename(clip, '.wav');
const transcribe = (file, extra = []) =>
  execFileSync(HARK, ['transcribe', ...extra, file], { encoding: 'utf8' }).trim().split('\n').join(' ');

function opus(clip, args = []) {
  const out = path.join(work, clipId(clip) + (args.length ? '-x' : '') + '.opus');
  execFileSync('opusenc', ['--quiet', ...args, clip, out]);
  return out;
}

test('hark transcribe reads Ogg Opus: words as good as from the WAV', () => {
  const ref = references();
  let errWav = 0, errOpus = 0, words = 0;
  for (const clip of CLIPS.slice(0, 3)) {
    const r = ref[clipId(clip)];
    const fromWav = wer(r, transcribe(clip));
    const fromOpus = wer(r, transcribe(opus(clip)));
    errWav += fromWav.errors;
    errOpus += fromOpus.errors;
    words += fromWav.words;
  }
  // opusenc's default 16 kHz mono voice bitrate is transparent enough for the
  // engine: allow a couple of extra word errors over three clips
  assert.ok(errOpus <= errWav + 3, `WER from Opus ${errOpus}/${words} vs WAV ${errWav}/${words}`);
  // --describe names the container and the channels of the stream
  const desc = spawnSync(HARK, ['transcribe', '--describe', opus(CLIPS[0])], { encoding: 'utf8' });
  assert.match(desc.stderr, /decode\(ogg:opus,1ch\)→resample\(16000, none\)/);
});

test('Deepgram live and batch take Ogg Opus with no encoding; stereo 48 kHz too', async () => {
  const stereo = path.join(work, 'stereo.wav');
  execFileSync('sox', [CLIPS[1], '-c', '2', '-r', '48000', stereo]);
  for (const file of [opus(CLIPS[1]), opus(stereo)]) {
    const bytes = readFileSync(file);
    const ws = new WebSocket(srv.url + '/v1/listen?model=nova-3', ['token', KEY]);
    const msgs = [];
    ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
    const closed = new Promise((r) => ws.on('close', (code) => r(code)));
    await new Promise((r) => ws.on('open', r));
    for (let off = 0; off < bytes.length; off += 500) { ws.send(bytes.subarray(off, off + 500)); await sleep(5); }
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    assert.equal(await closed, 1000);
    const text = msgs.filter((m) => m.type === 'Results' && m.is_final)
      .map((m) => m.channel.alternatives[0].transcript).join(' ');
    assert.match(text, /young man/, file);
    const meta = msgs.at(-1);
    assert.equal(meta.type, 'Metadata');
    assert.ok(Math.abs(meta.duration - 3.3) < 0.5, String(meta.duration));
  }
  // the same file as a pre-recorded request and as an OpenAI upload
  const file = opus(CLIPS[1]);
  const dg = JSON.parse(execFileSync('curl', ['-s', '-H', `Authorization: Token ${KEY}`,
    '--data-binary', '@' + file, srv.http + '/v1/listen'], { encoding: 'utf8' }));
  assert.match(dg.results.channels[0].alternatives[0].transcript, /young man/);
  const oa = JSON.parse(execFileSync('curl', ['-s', '-H', `Authorization: Bearer ${KEY}`,
    '-F', `file=@${file}`, '-F', 'model=whisper-1', srv.http + '/v1/audio/transcriptions'], { encoding: 'utf8' }));
  assert.match(oa.text, /young man/);
});

test('unsupported containers get a typed error naming the format', async () => {
  const flac = path.join(work, 'a.flac');
  execFileSync('sox', [CLIPS[0], flac]);
  const ws = new WebSocket(srv.url + '/v1/listen', ['token', KEY]);
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise((r) => ws.on('open', r));
  ws.send(readFileSync(flac).subarray(0, 4000));
  const c = await closed;
  assert.equal(c.code, 1008);
  assert.match(c.reason, /DATA-0000/);
  const res = JSON.parse(execFileSync('curl', ['-s', '-H', `Authorization: Token ${KEY}`,
    '--data-binary', '@' + flac, srv.http + '/v1/listen'], { encoding: 'utf8' }));
  assert.match(res.err_msg, /FLAC audio is not supported/);
  // the CLI says what it reads
  let out = '';
  try { execFileSync(HARK, ['transcribe', flac], { encoding: 'utf8', stdio: 'pipe' }); } catch (e) { out = e.stderr; }
  assert.match(out, /not a WAV, Ogg Opus or WebM\/Opus file/);
});

test('a file sent as raw PCM: one typed error naming the format and encoding auto; a WAV header on linear16 still works', async () => {
  const ogg = readFileSync(opus(CLIPS[1]));
  const RAW = /the audio is Ogg data \(its first 4 bytes are that format's signature\), not raw pcm_s16le: set the encoding to auto/;
  // native: bad_audio, close 4415 (was: no error and no text)
  const s = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 }, ['token', KEY]);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  for (let off = 0; off < ogg.length; off += 500) s.ws.send(ogg.subarray(off, off + 500));
  assert.equal((await s.closed).code, 4415);
  const errs = s.events.filter((e) => e.type === 'error');
  assert.equal(errs.length, 1, JSON.stringify(s.events));
  assert.equal(errs[0].code, 'bad_audio');
  assert.match(errs[0].message, RAW);
  assert.ok(!s.events.some((e) => e.type === 'transcript' && e.text), 'no transcript from noise');

  // Deepgram live, encoding=linear16: 1008 DATA-0000 at once
  let ws = new WebSocket(srv.url + '/v1/listen?encoding=linear16&sample_rate=16000', ['token', KEY]);
  let msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  let closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await new Promise((r) => ws.on('open', r));
  ws.send(ogg.subarray(0, 4000));
  const c = await closed;
  assert.equal(c.code, 1008);
  assert.match(c.reason, /DATA-0000/);
  assert.ok(!msgs.some((m) => m.type === 'Results'), JSON.stringify(msgs));

  // Deepgram pre-recorded, encoding=linear16: 400 naming the format and the fix
  const res = JSON.parse(execFileSync('curl', ['-s', '-H', `Authorization: Token ${KEY}`, '--data-binary',
    '@' + opus(CLIPS[1]), srv.http + '/v1/listen?encoding=linear16&sample_rate=16000'], { encoding: 'utf8' }));
  assert.match(res.err_msg, /the audio is Ogg data/);
  assert.match(res.err_msg, /leave encoding out/);

  // the CLI: one error, exit 2 (bad input)
  const cli = spawnSync(HARK, ['transcribe', '--encoding', 'pcm_s16le', opus(CLIPS[1])], { encoding: 'utf8' });
  assert.equal(cli.status, 2, cli.stderr);
  assert.match(cli.stderr, RAW);
  assert.equal(cli.stderr.match(/Ogg data/g).length, 1, cli.stderr);

  // a WAV file on linear16 (clients do send the header first): transcribed as before
  const wav = readFileSync(CLIPS[1]);
  ws = new WebSocket(srv.url + '/v1/listen?encoding=linear16&sample_rate=16000', ['token', KEY]);
  msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  closed = new Promise((r) => ws.on('close', (code) => r(code)));
  await new Promise((r) => ws.on('open', r));
  for (let off = 0; off < wav.length; off += 3200) ws.send(wav.subarray(off, off + 3200));
  ws.send(JSON.stringify({ type: 'CloseStream' }));
  assert.equal(await closed, 1000);
  const text = msgs.filter((m) => m.type === 'Results' && m.is_final)
    .map((m) => m.channel.alternatives[0].transcript).join(' ');
  assert.match(text, /young man/);
});

test('browser MediaRecorder (WebM/Opus, 250 ms chunks) streams to /v1/listen like a web page', async (t) => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: install Debian's chromium (scripts/setup.sh)`);
  // the fake microphone plays the clip with silence around it, in a loop
  const mic = path.join(work, 'mic.wav');
  execFileSync('sox', [CLIPS[1], '-b', '16', '-e', 'signed-integer', '-c', '1', mic, 'pad', '0.5', '1.5']);
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30000,
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${mic}`, '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await page.goto(srv.http + '/healthz');
  const r = await page.evaluate(async ({ url, key }) => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const ws = new WebSocket(url, ['token', key]);
    const msgs = [];
    ws.onmessage = (e) => msgs.push(JSON.parse(e.data));
    await new Promise((res, rej) => { ws.onopen = res; ws.onerror = rej; });
    const rec = new MediaRecorder(stream, { mimeType: 'audio/webm;codecs=opus' });
    let chunks = 0;
    rec.ondataavailable = (e) => { if (e.data.size > 0) { chunks++; ws.send(e.data); } };
    rec.start(250);
    await new Promise((res) => setTimeout(res, 5500)); // one loop of the clip and a bit
    const stopped = new Promise((res) => { rec.onstop = res; });
    rec.stop();
    await stopped;
    await new Promise((res) => setTimeout(res, 50)); // the last chunk's send
    const closed = new Promise((res) => { ws.onclose = (e) => res(e.code); });
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    const code = await closed;
    stream.getTracks().forEach((tr) => tr.stop());
    return { code, chunks, protocol: ws.protocol, msgs };
  }, { url: srv.url + '/v1/listen?model=nova-3&interim_results=true', key: KEY });
  assert.equal(r.protocol, 'token');
  assert.equal(r.code, 1000);
  assert.ok(r.chunks >= 15, `${r.chunks} MediaRecorder chunks`);
  const finals = r.msgs.filter((m) => m.type === 'Results' && m.is_final)
    .map((m) => m.channel.alternatives[0].transcript).join(' ');
  assert.match(finals, /young man/);
  assert.ok(r.msgs.some((m) => m.type === 'Results' && !m.is_final), 'interims while recording');
  const meta = r.msgs.at(-1);
  assert.equal(meta.type, 'Metadata');
  assert.ok(meta.duration > 4.5 && meta.duration < 7, `recorded ${meta.duration} s`);
});
