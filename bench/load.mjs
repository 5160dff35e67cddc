// Server load benchmark for `hark serve` (docs/benchmarks.md, Part B). A
// program, not a test.
//
// For each N of a sweep it starts a fresh `hark serve` on a free loopback
// port and opens N native sessions ({"type":"config","encoding":"pcm_s16le",
// "sample_rate":16000}), each streaming the librivox clips, every clip
// followed by 2 s of digital silence, as binary 20 ms frames paced in real
// time, with staggered starts. Every third session also sends
// {"type":"finalize"} once per clip, 60% of the way into it (mid-utterance).
//
// Client-side latencies (performance.now() on this process):
//   first partial     first partial of a segment, from the time the frame
//                     holding the audio at the partial's `end` was sent
//   endpoint final    final with reason "endpoint", from the time the frame
//                     holding the audio at the final's `end` was sent (its
//                     `end` is where endpointing_ms of silence completed)
//   finalize final    final with reason "finalize", from sending the finalize
// and the server's own /metrics histograms for the same three
// (hark_first_partial_latency_seconds, hark_endpoint_final_latency_seconds,
// hark_finalize_final_latency_seconds; quantiles interpolated inside buckets
// as Prometheus' histogram_quantile does).
//
// Server CPU: utime+stime of the server process (/proc/<pid>/stat) over the
// streaming, per second of audio streamed, as a ratio to the raw PocketSphinx
// engine's CPU per audio second on the same audio, measured in the same run by
// bench_pipeline (--sections cpu --sets pauses-silence --paced: fed in real
// time like the server's streams), and to hark's own cost of that audio as
// one batch (the same without --paced; issue 12's "/ batch"). RSS: VmRSS of
// the server, sampled every 250 ms. Client CPU: this script's own share of a
// core (it runs on the same machine), so capacity is measured with it.
//
// The sweep stops at the first N whose client-side p95 endpoint->final is
// above the target or where any session was refused (error code "busy");
// the largest N before it is reported. Then M idle sessions (config only,
// --idle-timeout 0, a keepalive each) give the memory of an idle session.
//
// Usage (from the repository root; `ws` is resolved from tests/e2e):
//   node bench/load.mjs --hark build/hark --bench build/bench/bench_pipeline
//        [--sweep 1,2,4,6,8,10,12,16] [--idle 200] [--target-ms 500]
//        [--raw-repeats 3 (0: no baseline)] [--stagger-ms 5000] [--server-arg=--pool-max=8 ...]
//        [--max-sessions 256] [--cold] [--check-admission] [--json out.json]
// --check-admission (issue 12, goal 4): when a level of the sweep has a
// refusal, the same level runs once more with demand admission off
// (--max-busy-percent=0): admission was exact if that run misses the
// target, i.e. the level it refused is past the capacity.
// Each level first warms the server up (N sessions talk at once briefly, so
// the engine has a decoder per concurrent talker); --cold skips that.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, readdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir, cpus } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const E2E = path.join(HERE, '..', 'tests', 'e2e');
const WebSocket = createRequire(path.join(E2E, 'package.json'))('ws');

// ------------------------------------------------------------ arguments

const opt = {
  hark: 'build/hark',
  bench: 'build/bench/bench_pipeline',
  sweep: [1, 2, 4, 6, 8, 10, 12, 16],
  idle: 200,
  targetMs: 500,
  rawRepeats: 3,
  staggerMs: 5000,
  serverArgs: [],
  maxSessions: 256,
  cold: false,
  json: null,
  data: process.env.HARK_TESTDATA_DIR || '/usr/share/pocketsphinx/test/data/librivox',
};
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  const next = () => {
    if (i + 1 >= process.argv.length) throw new Error(`${a} needs a value`);
    return process.argv[++i];
  };
  if (a === '--hark') opt.hark = next();
  else if (a === '--bench') opt.bench = next();
  else if (a === '--sweep') opt.sweep = next().split(',').map(Number);
  else if (a === '--idle') opt.idle = Number(next());
  else if (a === '--target-ms') opt.targetMs = Number(next());
  else if (a === '--raw-repeats') opt.rawRepeats = Number(next());
  else if (a === '--stagger-ms') opt.staggerMs = Number(next());
  else if (a.startsWith('--server-arg=')) opt.serverArgs.push(a.slice('--server-arg='.length));
  else if (a === '--json') opt.json = next();
  else if (a === '--max-sessions') opt.maxSessions = Number(next());
  else if (a === '--cold') opt.cold = true;
  else if (a === '--check-admission') opt.checkAdmission = true;
  else if (a === '--data') opt.data = next();
  else throw new Error(`unknown argument ${a}`);
}
process.env.HARK_BIN = path.resolve(opt.hark);
process.env.HARK_TESTDATA_DIR = opt.data;
// lib.mjs reads HARK_BIN at import time
const { startServer, sleep } = await import(path.join(E2E, 'lib.mjs'));

// ------------------------------------------------------------ audio

const RATE = 16000;
const FRAME_BYTES = 640; // 20 ms of s16le mono
const PAUSE_S = 2;

function wavData(file) {
  const b = readFileSync(file);
  if (b.toString('ascii', 0, 4) !== 'RIFF' || b.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error(file + ': not a WAV');
  for (let off = 12; off + 8 <= b.length;) {
    const id = b.toString('ascii', off, off + 4), size = b.readUInt32LE(off + 4);
    if (id === 'fmt ') {
      const fmt = b.readUInt16LE(off + 8), ch = b.readUInt16LE(off + 10);
      const rate = b.readUInt32LE(off + 12), bits = b.readUInt16LE(off + 22);
      if (fmt !== 1 || ch !== 1 || rate !== RATE || bits !== 16)
        throw new Error(`${file}: need 16 kHz mono s16 PCM`);
    } else if (id === 'data') {
      return b.subarray(off + 8, off + 8 + Math.min(size, b.length - off - 8));
    }
    off += 8 + size + (size & 1);
  }
  throw new Error(file + ': no data chunk');
}

// Same order and layout as bench_pipeline's pauses-silence set: the clips of
// the transcription file in order, each followed by 2 s of digital silence.
function buildStream() {
  const refs = [], parts = [], clips = [];
  const lines = readFileSync(path.join(opt.data, 'transcription'), 'utf8').split('\n');
  let bytes = 0;
  for (const line of lines) {
    const m = line.match(/^<s> (.*) <\/s> \((.*)\)$/);
    if (!m) continue;
    const pcm = wavData(path.join(opt.data, m[2] + '.wav'));
    const even = pcm.subarray(0, pcm.length & ~1);
    clips.push({ id: m[2], startByte: bytes, bytes: even.length });
    parts.push(even, Buffer.alloc(PAUSE_S * RATE * 2));
    bytes += even.length + PAUSE_S * RATE * 2;
    refs.push(m[1]);
  }
  if (!clips.length) throw new Error('no clips in ' + opt.data);
  return { pcm: Buffer.concat(parts), clips, ref: refs.join(' ') };
}
const STREAM = buildStream();
const STREAM_S = STREAM.pcm.length / 2 / RATE;
const N_FRAMES = Math.ceil(STREAM.pcm.length / FRAME_BYTES);

// ------------------------------------------------------------ helpers

function quantile(values, q) {
  if (!values.length) return NaN;
  const v = [...values].sort((a, b) => a - b);
  const pos = (v.length - 1) * q, lo = Math.floor(pos), hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

function wer(ref, hyp) {
  const r = ref.split(/\s+/).filter(Boolean), h = hyp.split(/\s+/).filter(Boolean);
  let prev = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const cur = [i];
    for (let j = 1; j <= h.length; j++)
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r[i - 1] === h[j - 1] ? 0 : 1));
    prev = cur;
  }
  return r.length ? prev[h.length] / r.length : 0;
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;

function procCpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime, stime (fields 14, 15)
}

// Context switches of all the server's threads (voluntary + involuntary):
// each time a thread sleeps and is woken again, i.e. the wake-ups the server
// pays for (a worker per decode turn, the I/O thread per output). Threads
// that ended before the sample are not counted; the server keeps its threads.
function procCtxSwitches(pid) {
  let n = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8');
      for (const m of st.matchAll(/ctxt_switches:\s+(\d+)/g)) n += Number(m[1]);
    } catch { /* thread gone */ }
  }
  return n;
}

function procRssMb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

function loadavg() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

async function scrapeMetrics(http) {
  const text = await (await fetch(http + '/metrics')).text();
  const hist = {}, counters = {};
  for (const line of text.split('\n')) {
    let m = line.match(/^(hark_\w+_latency_seconds)_bucket\{le="([^"]+)"\} (\S+)/);
    if (m) {
      (hist[m[1]] ||= []).push({ le: m[2] === '+Inf' ? Infinity : Number(m[2]), n: Number(m[3]) });
      continue;
    }
    m = line.match(/^hark_compute_demand_workers (\S+)/);
    if (m) { counters.demand = Number(m[1]); continue; }
    m = line.match(/^(hark_sessions_refused_total\{reason="(\w+)"\}|hark_errors_total\{code="(\w+)"\}) (\S+)/);
    if (m) counters[m[1]] = Number(m[4]);
  }
  return { hist, counters };
}

// Cumulative buckets of a histogram minus an earlier scrape of it: the
// observations in between (the warm-up's sessions, which send audio faster
// than real time, are left out of the measured run's server figures).
function histSince(now, before) {
  if (!now || !before) return now;
  return now.map((b) => ({ le: b.le, n: b.n - (before.find((x) => x.le === b.le)?.n || 0) }));
}

// Prometheus histogram_quantile: linear inside the bucket, first bucket from 0.
function histQuantile(buckets, q) {
  if (!buckets || !buckets.length) return NaN;
  const b = [...buckets].sort((x, y) => x.le - y.le);
  const total = b[b.length - 1].n;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0, prevN = 0;
  for (const { le, n } of b) {
    if (n >= rank) {
      if (le === Infinity) return prevLe; // beyond the last bound: report it as a floor
      return prevLe + (le - prevLe) * ((rank - prevN) / Math.max(n - prevN, 1e-9));
    }
    prevLe = le;
    prevN = n;
  }
  return NaN;
}

const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '-');

// ------------------------------------------------------------ one session

// Streams STREAM in real time on one native session; resolves with its stats.
async function runSession(url, index, startAt, doFinalize, lat) {
  const st = { index, refused: false, errors: {}, finals: [], audioS: 0, closed: false, sent: 0 };
  await sleep(Math.max(0, startAt - performance.now()));
  const ws = new WebSocket(url + '/v1/stream');
  ws.binaryType = 'nodebuffer';
  const sendTime = new Float64Array(N_FRAMES);
  const finalizeSent = [];
  let lastPartialSeg = -1, ready = null, closedMsg = false;
  const done = new Promise((resolve) => ws.on('close', resolve));
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const now = performance.now();
    const e = JSON.parse(data.toString());
    if (e.type === 'ready') ready = e;
    else if (e.type === 'error') {
      st.errors[e.code] = (st.errors[e.code] || 0) + 1;
      if (!ready && e.code === 'busy') { st.refused = true; st.refusal = e.message; }
    } else if (e.type === 'closed') closedMsg = true;
    else if (e.type === 'transcript') {
      // the frame that holds the audio just before `end`
      const idx = Math.min(Math.max(Math.ceil(e.end * 50 - 1e-6) - 1, 0), st.sent - 1);
      if (!e.is_final) {
        if (e.segment !== lastPartialSeg && idx >= 0) {
          lastPartialSeg = e.segment;
          lat.partial.push(now - sendTime[idx]);
        }
      } else {
        if (e.text) st.finals.push(e.text);
        if (e.reason === 'endpoint' && idx >= 0) lat.endpoint.push(now - sendTime[idx]);
        else if (e.reason === 'finalize' && finalizeSent.length) lat.finalize.push(now - finalizeSent.shift());
      }
    }
  });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('close', () => reject(new Error('closed before open')));
  }).catch(() => {});
  if (ws.readyState !== WebSocket.OPEN) return st;
  ws.send(JSON.stringify({ type: 'config', encoding: 'pcm_s16le', sample_rate: RATE }));
  for (let waited = 0; !ready && !st.refused && ws.readyState === WebSocket.OPEN && waited < 10000; waited += 5)
    await sleep(5);
  if (!ready) {
    ws.close();
    await done;
    return st;
  }
  // finalize points: 60% into each clip, as a frame index
  const finalizeAt = new Set(doFinalize
    ? STREAM.clips.map((c) => Math.floor((c.startByte + c.bytes * 0.6) / FRAME_BYTES)) : []);
  const t0 = performance.now();
  for (let k = 0; k < N_FRAMES && ws.readyState === WebSocket.OPEN;) {
    const due = t0 + k * 20;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    // send every frame that is due (catches up after a late timer)
    while (k < N_FRAMES && t0 + k * 20 <= performance.now() + 1) {
      const off = k * FRAME_BYTES;
      ws.send(STREAM.pcm.subarray(off, Math.min(off + FRAME_BYTES, STREAM.pcm.length)));
      sendTime[k] = performance.now();
      st.sent = ++k;
      if (finalizeAt.has(k - 1)) {
        ws.send(JSON.stringify({ type: 'finalize' }));
        finalizeSent.push(performance.now());
      }
    }
  }
  st.audioS = Math.min(st.sent * FRAME_BYTES, STREAM.pcm.length) / 2 / RATE;
  if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'close' }));
  const timer = setTimeout(() => ws.terminate(), 30000);
  await done;
  clearTimeout(timer);
  st.closed = closedMsg;
  st.wer = wer(STREAM.ref, st.finals.join(' '));
  return st;
}

// ------------------------------------------------------------ one load level

// N sessions at once each send 1.5 s of speech as fast as allowed, then close:
// the engine then holds a decoder per concurrent talker, as a server that has
// been up for a while does (a decoder costs ~0.5 s of CPU to create, which
// would otherwise land inside the measured run). --cold skips this.
async function warmUp(url, n) {
  const speech = STREAM.pcm.subarray(0, Math.min(STREAM.clips[0].bytes, 1.5 * RATE * 2));
  await Promise.all(Array.from({ length: n }, async () => {
    const ws = new WebSocket(url + '/v1/stream');
    ws.on('error', () => {});
    const done = new Promise((resolve) => ws.on('close', resolve));
    let ready = false;
    ws.on('message', (d, bin) => { if (!bin && JSON.parse(d.toString()).type === 'ready') ready = true; });
    await new Promise((r) => { ws.once('open', r); ws.once('close', r); });
    if (ws.readyState !== WebSocket.OPEN) return;
    ws.send(JSON.stringify({ type: 'config', encoding: 'pcm_s16le', sample_rate: RATE }));
    for (let w = 0; !ready && w < 10000 && ws.readyState === WebSocket.OPEN; w += 10) await sleep(10);
    for (let off = 0; off < speech.length && ws.readyState === WebSocket.OPEN; off += FRAME_BYTES)
      ws.send(speech.subarray(off, off + FRAME_BYTES));
    await sleep(200);
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'close' }));
    const t = setTimeout(() => ws.terminate(), 30000);
    await done;
    clearTimeout(t);
  }));
}

async function runLevel(n, extraArgs = []) {
  const srv = await startServer(['--max-sessions', String(opt.maxSessions), '--log-level', 'info',
    ...opt.serverArgs, ...extraArgs]);
  try {
    const pid = srv.proc.pid;
    await sleep(300);
    const rssStart = procRssMb(pid);
    if (!opt.cold) await warmUp(srv.url, n);
    await sleep(500); // let the startup settle
    const { hist: hist0 } = await scrapeMetrics(srv.http);
    const rss0 = procRssMb(pid);
    let rssPeak = rss0;
    const sampler = setInterval(() => { rssPeak = Math.max(rssPeak, procRssMb(pid)); }, 250);
    const lat = { partial: [], endpoint: [], finalize: [] };
    const cpu0 = procCpuSeconds(pid);
    const ctx0 = procCtxSwitches(pid);
    const client0 = process.cpuUsage();
    const w0 = performance.now();
    const stagger = n > 1 ? opt.staggerMs / n : 0;
    // The peak of the server's demand gauge (hark_compute_demand_workers,
    // sampled each second), and what admission weighed at each admission
    // (its info log: the talking sessions' need, and the newcomer's).
    const demand = { peak: 0 };
    const demandSampler = setInterval(() => scrapeMetrics(srv.http)
      .then((m) => { demand.peak = Math.max(demand.peak, m.counters.demand || 0); }).catch(() => {}), 1000);
    const sessions = await Promise.all(Array.from({ length: n }, (_, i) =>
      runSession(srv.url, i, w0 + i * stagger, i % 3 === 2, lat)));
    clearInterval(demandSampler);
    demand.admissions = [...srv.log().matchAll(/admitted: talking sessions need ([\d.]+) workers, this one about ([\d.]+)/g)]
      .map((m) => [Number(m[1]), Number(m[2])]).slice(-n);
    const cpu1 = procCpuSeconds(pid);
    const ctx1 = procCtxSwitches(pid);
    const wall = (performance.now() - w0) / 1000;
    const client1 = process.cpuUsage(client0);
    clearInterval(sampler);
    const scraped = await scrapeMetrics(srv.http);
    const counters = scraped.counters;
    const hist = Object.fromEntries(Object.entries(scraped.hist).map(([k, v]) => [k, histSince(v, hist0[k])]));
    const audio = sessions.reduce((a, s) => a + s.audioS, 0);
    const refused = sessions.filter((s) => s.refused).length;
    const errors = {};
    for (const s of sessions) for (const [k, v] of Object.entries(s.errors)) errors[k] = (errors[k] || 0) + v;
    const ok = sessions.filter((s) => !s.refused && s.audioS > 0);
    const q = (arr) => ({ p50: quantile(arr, 0.5), p95: quantile(arr, 0.95), p99: quantile(arr, 0.99), n: arr.length });
    const hq = (name) => ({
      p50: histQuantile(hist[name], 0.5) * 1000,
      p95: histQuantile(hist[name], 0.95) * 1000,
      p99: histQuantile(hist[name], 0.99) * 1000,
      n: hist[name] ? Math.max(...hist[name].map((b) => b.n)) : 0,
    });
    return {
      n,
      refused,
      refusals: sessions.filter((s) => s.refused).map((s) => `session ${s.index + 1}: ${s.refusal}`),
      errors,
      notClosed: ok.filter((s) => !s.closed).length,
      audioS: audio,
      wallS: wall,
      serverCpuS: cpu1 - cpu0,
      clientCpuShare: (client1.user + client1.system) / 1e6 / wall, // cores used by this script
      cpuPerAudioS: audio ? (cpu1 - cpu0) / audio : NaN,
      ctxPerAudioS: audio ? (ctx1 - ctx0) / audio : NaN,
      rssStart, rss0, rssPeak,
      meanWer: ok.length ? ok.reduce((a, s) => a + s.wer, 0) / ok.length : NaN,
      client: { partial: q(lat.partial), endpoint: q(lat.endpoint), finalize: q(lat.finalize) },
      server: {
        partial: hq('hark_first_partial_latency_seconds'),
        endpoint: hq('hark_endpoint_final_latency_seconds'),
        finalize: hq('hark_finalize_final_latency_seconds'),
      },
      demand,
      refusedMetric: counters['hark_sessions_refused_total{reason="busy"}'] || 0,
      loadavg: loadavg(),
    };
  } finally {
    await srv.stop();
  }
}

// ------------------------------------------------------------ idle sessions

async function runIdle(m) {
  const srv = await startServer(['--max-sessions', String(opt.maxSessions), '--idle-timeout', '0',
    '--log-level', 'warn', ...opt.serverArgs]);
  const conns = [];
  try {
    await sleep(500);
    const pid = srv.proc.pid;
    const rss0 = procRssMb(pid);
    let readyCount = 0, refused = 0;
    for (let i = 0; i < m; i++) {
      const ws = new WebSocket(srv.url + '/v1/stream');
      ws.on('error', () => {});
      const state = { ws, ready: false };
      ws.on('message', (d, bin) => {
        if (bin) return;
        const e = JSON.parse(d.toString());
        if (e.type === 'ready') { state.ready = true; readyCount++; }
        if (e.type === 'error') refused++;
      });
      await new Promise((r) => { ws.once('open', r); ws.once('close', r); });
      if (ws.readyState === WebSocket.OPEN)
        ws.send(JSON.stringify({ type: 'config', encoding: 'pcm_s16le', sample_rate: RATE }));
      conns.push(state);
    }
    for (let waited = 0; readyCount + refused < m && waited < 20000; waited += 20) await sleep(20);
    for (const c of conns) if (c.ws.readyState === WebSocket.OPEN) c.ws.send('{"type":"keepalive"}');
    await sleep(1000);
    const rss1 = procRssMb(pid);
    const cpu0 = procCpuSeconds(pid);
    await sleep(5000);
    const cpu1 = procCpuSeconds(pid);
    const rss2 = procRssMb(pid);
    return { m, ready: readyCount, refused, rss0, rss1, rss2, idleCpuPerS: (cpu1 - cpu0) / 5 };
  } finally {
    for (const c of conns) c.ws.terminate();
    await srv.stop();
  }
}

// ------------------------------------------------------------ main

// The raw engine (and hark in-process) on the same audio, paced in real time
// like the server's streams (a decoder that sleeps between 20 ms chunks may
// find its caches cold), and hark in-process as one batch, as fast as it
// decodes: issue 12's baseline, what the same audio costs when nobody waits.
function rawBaseline(paced) {
  const dir = mkdtempSync(path.join(tmpdir(), 'hark-load-'));
  try {
    const out = path.join(dir, 'cpu.json');
    const args = ['--sections', 'cpu', '--sets', 'pauses-silence', '--repeats', String(opt.rawRepeats),
      '--warmup', paced ? '0' : '1', ...(paced ? ['--paced'] : []), '--data', opt.data, '--json', out];
    console.log(`$ ${opt.bench} ${args.join(' ')}`);
    const r = spawnSync(path.resolve(opt.bench), args, { stdio: ['ignore', 'pipe', 'inherit'] });
    if (r.status !== 0) throw new Error('bench_pipeline failed');
    process.stdout.write(r.stdout.toString().split('\n').map((l) => '  ' + l).join('\n') + '\n');
    return JSON.parse(readFileSync(out, 'utf8')).sets['pauses-silence'];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const started = performance.now();
console.log(`hark load benchmark: ${cpus().length} cores (${cpus()[0].model}), load average ${loadavg()}`);
console.log(`per session: ${STREAM.clips.length} clips each followed by ${PAUSE_S} s of silence = ` +
  `${STREAM_S.toFixed(2)} s, 20 ms frames in real time; starts staggered over ${opt.staggerMs} ms; ` +
  `every 3rd session sends finalize 60% into each clip`);
console.log(`server: ${opt.hark} serve --host 127.0.0.1 --port 0 --max-sessions ${opt.maxSessions} ` +
  `--log-level info ${opt.serverArgs.join(' ')}${opt.cold ? ' (cold)' : ' (warmed up)'}\n`);

// --raw-repeats 0: no baseline (runs comparing server settings; ratios NaN)
const none = { raw_cpu_per_audio_s: NaN, hark_cpu_per_audio_s: NaN };
const raw = opt.rawRepeats > 0 ? rawBaseline(true) : none;
const batch = opt.rawRepeats > 0 ? rawBaseline(false) : none;
console.log(`raw engine on the same audio, paced: ${raw.raw_cpu_per_audio_s.toFixed(4)} CPU s per audio s; ` +
  `hark in-process, paced: ${raw.hark_cpu_per_audio_s.toFixed(4)}; as one batch: ${batch.hark_cpu_per_audio_s.toFixed(4)}\n`);

const levels = [];
let best = 0, admissionCheck = null;
const trio = (x) => `${fmt(x.p50)} / ${fmt(x.p95)} / ${fmt(x.p99)}`;
for (const n of opt.sweep) {
  const r = await runLevel(n);
  r.ratioRaw = r.cpuPerAudioS / raw.raw_cpu_per_audio_s;
  r.ratioBatch = r.cpuPerAudioS / batch.hark_cpu_per_audio_s;
  r.ratioLib = r.cpuPerAudioS / raw.hark_cpu_per_audio_s;
  levels.push(r);
  const met = r.refused === 0 && r.client.endpoint.p95 <= opt.targetMs;
  console.log(`N=${n}: ${r.refused} refused, p95 endpoint->final ${fmt(r.client.endpoint.p95)} ms (client), ` +
    `server CPU ${fmt(r.ratioRaw, 3)} x raw engine, demand gauge peak ${fmt(r.demand.peak, 2)} workers, load average ${r.loadavg}` +
    `\n  the last admissions weighed (talking + new): ${r.demand.admissions.slice(-4).map(([d, p]) => `${d.toFixed(3)} + ${p.toFixed(3)}`).join(', ')}` +
    (Object.keys(r.errors).length ? `, errors ${JSON.stringify(r.errors)}` : '') +
    (r.notClosed ? `, ${r.notClosed} session(s) without "closed"` : '') + (met ? '' : ' -> target missed, sweep stops'));
  for (const m of r.refusals) console.log(`  refused ${m}`);
  if (!met) {
    if (opt.checkAdmission && r.refused) {
      const off = await runLevel(n, ['--max-busy-percent=0']);
      const offMet = off.refused === 0 && off.client.endpoint.p95 <= opt.targetMs;
      admissionCheck = { refusedAt: n, offP95: off.client.endpoint.p95, exact: !offMet && best === n - 1 };
      console.log(`  N=${n} again without demand admission: p95 endpoint->final ${fmt(off.client.endpoint.p95)} ms ` +
        `(the last admission weighed ${off.demand.admissions.slice(-1).map(([d, p]) => `${d.toFixed(3)} + ${p.toFixed(3)}`)}) -> ` +
        (offMet ? `it would have passed: admission refused below capacity` : `past capacity: admission exact`));
    } else if (opt.checkAdmission) {
      admissionCheck = { admittedPastCapacity: n, exact: false };
      console.log(`  admission let in all ${n} and the target was missed: admission past capacity`);
    }
    break;
  }
  best = n;
}

console.log('\nserver CPU and memory (CPU = utime+stime of `hark serve` over the run / audio seconds streamed)');
console.log('RSS: at start (pool_min decoders), after the warm-up, peak during the run; per session = (peak - start) / N');
console.log('   N  refused  audio s  srv CPU s/audio s  / raw engine  / hark in-process  / batch  RSS start  warm  peak MB  MB/session  client CPU  WER  srv ctx switches/audio s');
for (const r of levels)
  console.log(`${String(r.n).padStart(4)} ${String(r.refused).padStart(8)} ${fmt(r.audioS, 1).padStart(8)} ` +
    `${fmt(r.cpuPerAudioS, 4).padStart(18)} ${fmt(r.ratioRaw, 3).padStart(13)} ${fmt(r.ratioLib, 3).padStart(17)} ${fmt(r.ratioBatch, 3).padStart(8)} ` +
    `${fmt(r.rssStart, 1).padStart(10)} ${fmt(r.rss0, 1).padStart(5)} ${fmt(r.rssPeak, 1).padStart(8)} ${fmt((r.rssPeak - r.rssStart) / r.n, 1).padStart(11)} ` +
    `${(fmt(r.clientCpuShare * 100) + '%').padStart(11)} ${fmt(r.meanWer * 100, 1)}% ${fmt(r.ctxPerAudioS, 0).padStart(8)}`);
console.log('\nlatency, client side, ms p50 / p95 / p99 (n)');
console.log('   N  first partial              endpoint final             finalize final');
for (const r of levels) {
  const c = r.client;
  console.log(`${String(r.n).padStart(4)}  ${(trio(c.partial) + ` (${c.partial.n})`).padEnd(26)} ` +
    `${(trio(c.endpoint) + ` (${c.endpoint.n})`).padEnd(26)} ${trio(c.finalize)} (${c.finalize.n})`);
}
console.log('\nlatency, server /metrics histograms (the measured run, not the warm-up), ms p50 / p95 / p99 (n), interpolated in buckets');
console.log('   N  first partial              endpoint final             finalize final');
for (const r of levels) {
  const c = r.server;
  console.log(`${String(r.n).padStart(4)}  ${(trio(c.partial) + ` (${c.partial.n})`).padEnd(26)} ` +
    `${(trio(c.endpoint) + ` (${c.endpoint.n})`).padEnd(26)} ${trio(c.finalize)} (${c.finalize.n})`);
}
console.log(`\nlargest N with p95 endpoint->final <= ${opt.targetMs} ms (client side) and no refusals: ${best || 'none'}`);
if (opt.checkAdmission)
  console.log(`admission check: ${!admissionCheck ? 'the sweep reached no refusal and no miss: extend it'
    : admissionCheck.exact ? `exact (admitted ${best}, refused ${best + 1}, which misses the target without admission)`
      : admissionCheck.admittedPastCapacity ? `past capacity (admitted ${admissionCheck.admittedPastCapacity}, which missed the target)`
        : `below capacity (refused ${admissionCheck.refusedAt}, which passes without admission)`}`);

let idle = null;
if (opt.idle > 0) {
  idle = await runIdle(opt.idle);
  console.log(`\nidle: ${idle.ready} of ${idle.m} sessions ready (${idle.refused} refused); RSS ${fmt(idle.rss0, 1)} MB -> ` +
    `${fmt(idle.rss1, 1)} MB (${fmt((idle.rss1 - idle.rss0) * 1024 / Math.max(idle.ready, 1), 1)} KB per idle session); ` +
    `after 5 s more ${fmt(idle.rss2, 1)} MB; server CPU while idle ${fmt(idle.idleCpuPerS * 1000, 1)} ms per second`);
}
console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s; load average ${loadavg()}`);
if (opt.json) writeFileSync(opt.json, JSON.stringify({ opt, raw, batch, levels, best, admissionCheck, idle }, null, 2));
