// What a gateway adds (docs/benchmarks.md, Gateways). A program, not a test.
//
// Starts nats-server, one `hark worker`, one `hark serve --backend` (the
// gateway) and one local `hark serve` with the same engine settings, then
// streams the same native sessions through each in turn: N sessions at once,
// each the librivox clips, every clip followed by 2 s of digital silence, as
// 20 ms frames paced in real time. Client-side endpoint latency: a final with
// reason "endpoint", from the time the frame holding the audio at the final's
// `end` was sent. Also the gateway's CPU per second of audio (its own work:
// WebSocket, relaying, rendering), from /proc/<pid>/stat.
//
// Usage (from the repository root): node bench/gateway.mjs [--hark build/hark] [--sessions 2]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const req = createRequire(path.join(HERE, '..', 'tests', 'e2e', 'package.json'));
const WebSocket = req('ws');
const { connect } = req('nats');

const args = process.argv.slice(2);
const arg = (name, def) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : def; };
const HARK = arg('--hark', 'build/hark');
const N = Number(arg('--sessions', '2'));
const DATA = process.env.HARK_TESTDATA_DIR || '/usr/share/pocketsphinx/test/data/librivox';
const clips = readdirSync(DATA).filter((f) => f.endsWith('.wav')).sort()
  .map((f) => readFileSync(path.join(DATA, f)).subarray(44));
const pcm = Buffer.concat(clips.flatMap((c) => [c, Buffer.alloc(64000)]));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ENGINE = ['--workers', '2', '--max-busy-percent', '100', '--max-lag-ms', '60000'];

async function freePort() {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  await once(s, 'close');
  return port;
}

function start(argv, ready) {
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stderr.on('data', () => {});
  return new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => { out += d; const m = out.match(ready); if (m) resolve({ proc, m }); });
    proc.on('exit', (c) => reject(new Error(`${argv.join(' ')} exited ${c}`)));
  });
}

const cpuOf = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks of 10 ms
};

async function session(url, lat) {
  const ws = new WebSocket(url + '/v1/stream');
  await once(ws, 'open');
  const sentAt = [];
  ws.on('message', (d, bin) => {
    if (bin) return;
    const e = JSON.parse(d.toString());
    if (e.type === 'transcript' && e.is_final && e.reason === 'endpoint') {
      const frame = Math.min(Math.ceil((e.end * 32000) / 640) - 1, sentAt.length - 1);
      if (frame >= 0) lat.push(performance.now() - sentAt[frame]);
    }
  });
  ws.send(JSON.stringify({ type: 'config', sample_rate: 16000 }));
  const t0 = performance.now();
  for (let off = 0, i = 0; off < pcm.length; off += 640, i++) {
    ws.send(pcm.subarray(off, off + 640));
    sentAt.push(performance.now());
    const wait = t0 + (i + 1) * 20 - performance.now();
    if (wait > 0) await sleep(wait);
  }
  ws.send(JSON.stringify({ type: 'close' }));
  await once(ws, 'close');
}

const q = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };

const dir = mkdtempSync(path.join(tmpdir(), 'hark-gwbench-'));
const port = await freePort();
const nats = spawn('/usr/sbin/nats-server', ['-a', '127.0.0.1', '-p', String(port), '-l', path.join(dir, 'nats.log')]);
const url = `nats://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  try { await (await connect({ servers: url, reconnect: false })).close(); break; } catch (e) { if (i > 100) throw e; await sleep(50); }
}
const worker = await start([HARK, 'worker', '--nats-url', url, ...ENGINE], /\(connected\)/);
const gw = await start([HARK, 'serve', '--port', '0', '--backend', url], /listening on http:\/\/([^/]+)\//);
const local = await start([HARK, 'serve', '--port', '0', ...ENGINE], /listening on http:\/\/([^/]+)\//);
const audioSec = (pcm.length / 32000) * N;
const results = {};
for (const [name, srv] of [['local', local], ['gateway', gw], ['local again', local], ['gateway again', gw]]) {
  const lat = [];
  const c0 = cpuOf(srv.proc.pid), w0 = cpuOf(worker.proc.pid);
  await Promise.all(Array.from({ length: N }, (_, k) => sleep(k * 700).then(() => session(`ws://${srv.m[1]}`, lat))));
  results[name] = {
    finals: lat.length,
    p50_ms: Math.round(q(lat, 0.5)),
    p95_ms: Math.round(q(lat, 0.95)),
    server_cpu_per_audio_s: +((cpuOf(srv.proc.pid) - c0) / audioSec).toFixed(4),
    worker_cpu_per_audio_s: +((cpuOf(worker.proc.pid) - w0) / audioSec).toFixed(4),
  };
  console.log(name, JSON.stringify(results[name]));
}
for (const p of [gw.proc, local.proc, worker.proc, nats]) { p.kill('SIGTERM'); await once(p, 'exit'); }
rmSync(dir, { recursive: true, force: true });
