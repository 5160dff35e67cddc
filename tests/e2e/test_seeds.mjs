// The seeds' own client code, run verbatim against a real `hark serve` with
// only its URL changed (docs/seeds.md):
//   seed 002: TranscriptionClient (JS) on /ws/transcribe, the relay shape
//             {"transcript","is_final","speech_final"}; `ws` is its WebSocket
//   seed 001: the browser snippet on /v1/stream (no config message), in
//             Debian's headless Chromium with a fake microphone playing a clip
//   seed 003: the Soniox-shaped client on /transcribe
// Finals must match the native protocol's for the same audio (seed 001's
// goes through the browser's Opus encoder: the words both agree on).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import vm from 'node:vm';
import WebSocket from 'ws';
import { chromium } from 'playwright-core';
import { CLIPS, DATA, startServer, openNative, waitFor, finals, sleep, wavPcm } from './lib.mjs';

let srv;
// Sessions here stream at full speed, one after another: admission's
// compute measure must not refuse the next one (admission has its own tests).
before(async () => {
  srv = await startServer(['--max-busy-percent', '100', '--max-lag-ms', '60000']);
});
after(async () => { if (srv) await srv.stop(); });

const seed = (name) => readFileSync(new URL(`./seeds/${name}`, import.meta.url), 'utf8');

// Finals of the native protocol for the same bytes (containers sniffed).
async function nativeFinals(bytes, config = { encoding: 'auto' }) {
  const s = await openNative(srv.url, config);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  for (let off = 0; off < bytes.length; off += 8000) s.ws.send(bytes.subarray(off, off + 8000));
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  return finals(s.events);
}

// Seed 002's client code as the seed prints it, with its URL pointed here;
// its console.log lines are what it shows its user.
function runSeed002(url) {
  const lines = [];
  const code = seed('002_client.js').replace('ws://localhost:8000/ws/transcribe', url);
  const ctx = { WebSocket, setTimeout, console: { log: (l) => lines.push(l) } };
  const client = vm.runInNewContext(code + '\n;client', ctx);
  return { client, lines };
}

async function openSeed002(url) {
  const r = runSeed002(url);
  const end = Date.now() + 10000;
  while (r.client.ws.readyState !== WebSocket.OPEN) {
    assert.ok(Date.now() < end, 'seed 002 client did not connect');
    await sleep(10);
  }
  return r;
}

// Stops the seed's reconnect-forever (its onclose reconnects after 1 s).
function stopReconnecting(client) {
  client.connect = () => {};
}

test('seed 002 TranscriptionClient verbatim on /ws/transcribe: WAV sniffed, finals as native', async () => {
  const wav = readFileSync(CLIPS[0]);
  const want = await nativeFinals(wav);
  assert.ok(want.length > 20, want);
  const { client, lines } = await openSeed002(srv.url + '/ws/transcribe');
  const closed = once(client.ws, 'close');
  for (let off = 0; off < wav.length; off += 8000) {
    client.sendAudio(wav.subarray(off, off + 8000)); // the seed's method
    await sleep(5);
  }
  stopReconnecting(client);
  client.ws.send(Buffer.alloc(0)); // the relay's b"": end of audio
  const [code] = await closed;
  assert.equal(code, 1000);
  const got = lines.filter((l) => l.startsWith('FINAL: ')).map((l) => l.slice(7)).join(' ');
  assert.equal(got, want);
  assert.ok(lines.some((l) => l.startsWith('interim: ')), 'interim results shown');
  assert.ok(!lines.some((l) => /undefined/.test(l)), lines.join('\n'));
});

test('relay shape: raw PCM from query parameters; every message is {transcript,is_final,speech_final}', async () => {
  const pcm = wavPcm(CLIPS[1]);
  const want = await nativeFinals(pcm, { encoding: 'pcm_s16le', sample_rate: 16000 });
  const ws = new WebSocket(srv.url + '/ws/transcribe?encoding=linear16&sample_rate=16000&interim_results=false');
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const closed = once(ws, 'close');
  await once(ws, 'open');
  for (let off = 0; off < pcm.length; off += 6400) ws.send(pcm.subarray(off, off + 6400));
  ws.send(JSON.stringify({ type: 'finalize' }));
  ws.send(Buffer.alloc(0));
  const [code] = await closed;
  assert.equal(code, 1000);
  for (const m of msgs) {
    assert.deepEqual(Object.keys(m), ['transcript', 'is_final', 'speech_final']);
    assert.ok(m.transcript.length > 0);
    assert.equal(m.is_final, true); // interim_results=false
  }
  assert.equal(msgs.map((m) => m.transcript).join(' '), want);
});

test('relay shape: a bad query is refused with HTTP 400 before the upgrade; bad audio closes 4415', async () => {
  const ws = new WebSocket(srv.url + '/ws/transcribe?encoding=flac');
  ws.on('error', () => {});
  const [, res] = await once(ws, 'unexpected-response');
  assert.equal(res.statusCode, 400);
  let body = '';
  for await (const c of res) body += c;
  assert.match(JSON.parse(body).error.message, /encoding/);

  const bad = new WebSocket(srv.url + '/ws/transcribe');
  const msgs = [];
  bad.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const closed = once(bad, 'close');
  await once(bad, 'open');
  bad.send(Buffer.from('this is not audio in any container hark reads'.repeat(20)));
  const [code] = await closed;
  assert.equal(code, 4415);
  assert.ok(msgs.some((m) => m.error && m.message), JSON.stringify(msgs));
});

// Seed 003's client code as the seed prints it, URL pointed here; `worklet`
// stands in for the browser's audio worklet that posts ~20 ms PCM frames.
function runSeed003(url) {
  const committed = [], previews = [];
  const worklet = { port: { onmessage: null } };
  const code = seed('003_client.js').replace('wss://stt.example.com/transcribe', url);
  const ctx = {
    WebSocket, JSON, worklet,
    commit: (t) => committed.push(t),
    preview: (t) => previews.push(t),
  };
  vm.runInNewContext(code + '\n;this.ws = ws; this.finish = finish;', ctx);
  return { ws: ctx.ws, finish: ctx.finish, worklet, committed, previews };
}

test('seed 003 client verbatim on /transcribe (Soniox shape): tokens committed equal native finals', async () => {
  // the clip and 1.5 s of silence, so endpointing finalises the last words
  // before the seed's finish() (which closes at once)
  const pcm = Buffer.concat([wavPcm(CLIPS[2]), Buffer.alloc(48000)]);
  const want = await nativeFinals(pcm, { encoding: 'pcm_s16le', sample_rate: 16000 });
  const c = runSeed003(srv.url + '/transcribe');
  const closed = once(c.ws, 'close');
  await once(c.ws, 'open');
  await sleep(50); // the seed's onopen sent the configuration
  for (let off = 0; off < pcm.length; off += 640) {
    c.worklet.port.onmessage({ data: pcm.subarray(off, off + 640) }); // the seed's sender
    if (off % 32000 === 0) await sleep(5);
  }
  const text = () => c.committed.join('').trim();
  const end = Date.now() + 30000;
  while (text() !== want && Date.now() < end) await sleep(50);
  assert.equal(text(), want);
  assert.ok(c.previews.length > 0, 'non-final tokens previewed');
  c.finish();
  await closed;
});

// Seed 001's browser snippet (TypeScript: its one annotation, `: string`,
// stripped), run in the page with the seed's URL argument pointed here.
test('seed 001 browser snippet verbatim on /v1/stream: MediaRecorder WebM/Opus, no config, transcripts shown', async (t) => {
  const CHROMIUM = '/usr/bin/chromium';
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: install Debian's chromium (scripts/setup.sh)`);
  const work = mkdtempSync(path.join(tmpdir(), 'hark-seed001-'));
  t.after(() => rmSync(work, { recursive: true, force: true }));
  // the fake microphone loops the file: speech, then silence for endpointing
  const wav = path.join(work, 'mic.wav');
  execFileSync('sox', [path.join(DATA, 'sense_and_sensibility_01_austen_64kb-0880.wav'),
    '-b', '16', '-e', 'signed-integer', '-c', '1', wav, 'pad', '0.5', '2']);
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, timeout: 30000,
    args: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`, '--no-sandbox', '--disable-gpu',
      '--no-first-run', '--autoplay-policy=no-user-gesture-required'],
  });
  t.after(() => browser.close());
  const page = await (await browser.newContext()).newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(srv.http + '/healthz'); // the server's own origin
  const code = seed('001_client.ts').replace('async function startAudioStream(wsUrl: string)',
    'async function startAudioStream(wsUrl)');
  assert.notEqual(code, seed('001_client.ts'), 'the seed changed: update the annotation strip');
  await page.evaluate(`(async () => {
    window.__shown = [];
    window.__sent = []; // what the page sends, recorded around WebSocket.send
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (d) {
      window.__sent.push(typeof d === 'string' ? 'text' : d.constructor.name);
      return send.call(this, d);
    };
    function updateTranscriptDisplay(text, isFinal) { window.__shown.push({ text, isFinal }); }
    ${code}
    window.__seed = await startAudioStream(${JSON.stringify(srv.url + '/v1/stream')});
  })()`);
  const end = Date.now() + 40000;
  let shown = [];
  while (Date.now() < end) {
    shown = await page.evaluate(() => window.__shown);
    if (shown.some((s) => s.isFinal && /young man/.test(s.text))) break;
    await sleep(200);
  }
  // Reference "he was not an ill disposed young man"; hark hears "he was not
  // an illness those young man": the words both agree on.
  assert.ok(shown.some((s) => s.isFinal && /young man/.test(s.text)), JSON.stringify(shown));
  assert.ok(shown.some((s) => !s.isFinal && s.text), 'interim text shown');
  assert.ok(shown.every((s) => typeof s.text === 'string' && typeof s.isFinal === 'boolean'));
  const sent = await page.evaluate(() => window.__sent);
  assert.ok(sent.length > 2 && sent.every((k) => k === 'Blob'), 'only MediaRecorder chunks were sent: ' + sent);
  assert.deepEqual(errors, []);
  await page.evaluate(() => { window.__seed.mediaRecorder.stop(); window.__seed.ws.close(); });
});
