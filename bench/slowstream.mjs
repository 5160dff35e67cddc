// Benchmark helper (docs/benchmarks.md, "Instructions per real-time stream"):
// streams one WAV on one native session of a running `hark serve`, 20 ms per
// binary frame, each frame sent `--slow` times later than real time, so a
// server slowed down by valgrind still receives and decodes every frame on its
// own wake-up, as it would a real-time stream; then sends close and waits for
// `closed`. Instruction counts do not depend on the wall-clock pace, so the
// server's callgrind counts for the stream are those of a real-time stream.
// --wav-out writes the streamed audio (the clip plus --tail-ms of silence) as a
// WAV for `hark transcribe` of the same audio (the batch cost).
//
//   node bench/slowstream.mjs --url ws://127.0.0.1:PORT --wav CLIP.wav
//        [--slow 20] [--tail-ms 1000] [--wav-out out.wav]
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(path.join(path.dirname(fileURLToPath(import.meta.url)), '../tests/e2e/'));
const WebSocket = require('ws');

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) =>
  (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const slow = Number(args.slow ?? 20);
const tailMs = Number(args['tail-ms'] ?? 1000);
const RATE = 16000, FRAME_BYTES = 640;

// 16 kHz mono s16 WAV: the samples after the "data" chunk header
const wav = fs.readFileSync(args.wav);
const dataAt = wav.indexOf('data', 12);
if (dataAt < 0 || wav.readUInt32LE(24) !== RATE) throw new Error(`${args.wav}: want a 16 kHz WAV`);
const pcm = Buffer.concat([wav.subarray(dataAt + 8, dataAt + 8 + wav.readUInt32LE(dataAt + 4)),
  Buffer.alloc((RATE * tailMs / 1000) * 2)]);
if (args['wav-out']) {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + pcm.length, 4); h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22); h.writeUInt32LE(RATE, 24);
  h.writeUInt32LE(RATE * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(pcm.length, 40);
  fs.writeFileSync(args['wav-out'], Buffer.concat([h, pcm]));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ws = new WebSocket(args.url + '/v1/stream');
const finals = [];
let ready = false, closed = false;
ws.on('message', (data, isBinary) => {
  if (isBinary) return;
  const e = JSON.parse(data.toString());
  if (e.type === 'ready') ready = true;
  else if (e.type === 'closed') closed = true;
  else if (e.type === 'transcript' && e.is_final && e.text) finals.push(e.text);
});
await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
ws.send(JSON.stringify({ type: 'config', encoding: 'pcm_s16le', sample_rate: RATE }));
for (let i = 0; !ready && i < 6000; i++) await sleep(10);
if (!ready) throw new Error('no ready');
const frames = Math.ceil(pcm.length / FRAME_BYTES);
const t0 = performance.now();
for (let k = 0; k < frames; k++) {
  const wait = t0 + k * 20 * slow - performance.now();
  if (wait > 0) await sleep(wait);
  ws.send(pcm.subarray(k * FRAME_BYTES, Math.min((k + 1) * FRAME_BYTES, pcm.length)));
}
ws.send(JSON.stringify({ type: 'close' }));
for (let i = 0; !closed && i < 60000; i++) await sleep(10);
ws.close();
console.log(JSON.stringify({ frames, audio_s: pcm.length / 2 / RATE, slow, closed, finals }));
