// Resume benchmark for `hark serve` (docs/benchmarks.md, "Resume"). A
// program, not a test. Three parts, each against a fresh server on a free
// loopback port:
//
//  1. Reconnect to `resumed`: a native session streams 1 s of speech, its
//     TCP socket is destroyed (no close frame), and a new connection
//     resumes it. Timed from creating the new WebSocket (TCP connect, the
//     upgrade, the `resume` message) to the `resumed` answer, and from the
//     upgrade's completion to `resumed`; p50/p95 over --trials.
//  2. Memory per detached session: VmRSS of the server (/proc/PID/status)
//     idle, after the first session was detached, and after --detached
//     sessions were, one after the other (each sent 3 s of speech and 1 s
//     of silence, got its final, then had its socket destroyed; the engine's
//     decoders are reused, so what stays is what a detached session holds).
//     Per session = (RSS with N - RSS with the first) / (N - 1).
//  3. Forced disconnects in a long stream: the JS client (clients/js)
//     streams --minutes of speech (the librivox clips with 0.8 s gaps,
//     repeated) through the fault proxy (tests/e2e/faultproxy.mjs), which
//     resets the connection (RST both ways) --cuts times at even intervals.
//     The audio is fed to the client at up to --rate times real time, and
//     never more than 30 s ahead of what the server acknowledged (so the
//     client's 60 s ring never overflows when the server is slower); the
//     server takes input faster than real time and its output depends only
//     on the audio, not on its pace (the reference is a full-speed run). The
//     finals, segment by segment, are compared with one uninterrupted
//     connection's: lost = reference segments missing or different,
//     duplicated = a segment or seq delivered twice. Bytes resent per
//     reconnect come from the client's own count (stats.resentBytes).
//
// Usage (from the repository root; ws/the e2e helpers from tests/e2e):
//   node bench/resume.mjs --hark build/hark [--trials 50] [--detached 100]
//        [--minutes 5] [--cuts 100] [--rate 4] [--json out.json]
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const E2E = path.join(HERE, '..', 'tests', 'e2e');

const opt = { hark: 'build/hark', trials: 50, detached: 100, minutes: 5, cuts: 100, rate: 4, json: null, parts: '1,2,3' };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i].replace(/^--/, '');
  const v = process.argv[++i];
  if (!(a in opt)) throw new Error('unknown option --' + a);
  opt[a] = typeof opt[a] === 'number' ? Number(v) : v;
}
process.env.HARK_BIN = path.resolve(opt.hark);
const lib = await import(path.join(E2E, 'lib.mjs'));
const { FaultProxy } = await import(path.join(E2E, 'faultproxy.mjs'));
const { HarkClient } = await import(path.join(HERE, '..', 'clients', 'js', 'index.js'));
const { default: WebSocket } = await import(path.join(E2E, 'node_modules', 'ws', 'index.js'));
const { CLIPS, startServer, openNative, wavPcm, streamPcm, waitFor, sleep } = lib;

const CONFIG = { encoding: 'pcm_s16le', sample_rate: 16000 };
const RATE = 32000;
const GAP = Buffer.alloc(25600);
const SPEECH = Buffer.concat(CLIPS.flatMap((c) => [wavPcm(c), GAP]));
const out = { machine: { cpus: (await import('node:os')).cpus().length }, options: opt };

const q = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
async function metric(srv, name) {
  const text = await (await fetch(srv.http + '/metrics')).text();
  const line = text.split('\n').find((l) => l.split(' ')[0] === name);
  return line ? Number(line.split(' ').pop()) : NaN;
}
async function until(fn, ms, what) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out: ' + what);
    await sleep(50);
  }
}
function raw(url) {
  const ws = new WebSocket(url + '/v1/stream');
  const events = [];
  ws.on('message', (d, bin) => { if (!bin) events.push(JSON.parse(d.toString())); });
  ws.on('error', () => {});
  return { ws, events, closed: new Promise((r) => ws.on('close', (code) => r(code))) };
}
async function native(url) {
  for (;;) {
    const s = raw(url);
    await new Promise((r) => s.ws.once('open', r));
    s.ws.send(JSON.stringify({ type: 'config', ...CONFIG }));
    const first = await waitFor(s.events, (e) => e.type === 'ready' || e.type === 'error', 15000);
    if (first.type === 'ready') return { ...s, ready: first };
    if (first.code !== 'busy') throw new Error(JSON.stringify(first));
    await sleep(500); // admission control: the last ones are still talking
  }
}
const lastSeq = (events) => Math.max(-1, ...events.filter((e) => typeof e.seq === 'number').map((e) => e.seq));

// ------------------------------------------------------------ 1. reconnect -> resumed

async function partResumeTime() {
  const srv = await startServer(['--resume-window', '30']);
  const total = [], afterOpen = [];
  const audio = wavPcm(CLIPS[0]).subarray(0, RATE);
  try {
    for (let i = 0; i < opt.trials; i++) {
      const s = await native(srv.url);
      s.ws.send(audio);
      await waitFor(s.events, (e) => e.type === 'ack' && e.audio_bytes === audio.length, 15000);
      s.ws.removeAllListeners('message');
      s.ws._socket.destroy();
      await sleep(100); // the server sees the drop
      const t0 = performance.now();
      const r = raw(srv.url);
      await new Promise((res) => r.ws.once('open', res));
      const t1 = performance.now();
      r.ws.send(JSON.stringify({ type: 'resume', session_id: s.ready.session_id, resume_token: s.ready.resume_token, last_seq: lastSeq(s.events), audio_bytes: audio.length }));
      const ans = await waitFor(r.events, (e) => e.type === 'resumed' || e.type === 'error', 15000);
      const t2 = performance.now();
      if (ans.type !== 'resumed') throw new Error(JSON.stringify(ans));
      total.push(t2 - t0);
      afterOpen.push(t2 - t1);
      r.ws.send(JSON.stringify({ type: 'close' }));
      await r.closed;
    }
  } finally {
    await srv.stop();
  }
  out.resume_ms = { trials: opt.trials, p50: q(total, 0.5), p95: q(total, 0.95), max: Math.max(...total),
    after_upgrade_p50: q(afterOpen, 0.5), after_upgrade_p95: q(afterOpen, 0.95) };
  console.log(`reconnect -> resumed over ${opt.trials} trials: p50 ${out.resume_ms.p50.toFixed(2)} ms, p95 ${out.resume_ms.p95.toFixed(2)} ms ` +
    `(upgrade done -> resumed: p50 ${out.resume_ms.after_upgrade_p50.toFixed(2)} ms, p95 ${out.resume_ms.after_upgrade_p95.toFixed(2)} ms)`);
}

// ------------------------------------------------------------ 2. memory per detached session

async function partMemory() {
  const n = opt.detached;
  const srv = await startServer(['--resume-window', '600', '--max-sessions', String(n + 10), '--workers', '2', '--idle-timeout', '0']);
  const pid = srv.proc.pid;
  try {
    await sleep(500);
    const base = rssKb(pid);
    // One session at a time: speaks (3 s of a clip, then 1 s of silence:
    // its final), is decoded, is cut. Engine decoders are reused by the
    // next session, so what stays is what a detached session holds.
    const audio = Buffer.concat([wavPcm(CLIPS[1]).subarray(0, 3 * RATE), Buffer.alloc(RATE)]);
    let first = 0;
    for (let i = 0; i < n; i++) {
      const s = await native(srv.url);
      await streamPcm(s.ws, audio, { frameBytes: 3200 });
      await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final, 60000);
      s.ws.removeAllListeners('message');
      s.ws._socket.destroy();
      await until(async () => (await metric(srv, 'hark_sessions_detached')) === i + 1, 30000, 'detached');
      if (i === 0) {
        await sleep(500);
        first = rssKb(pid); // with the first session's decoder and its warm-up
      }
    }
    await until(async () => (await metric(srv, 'hark_worker_queue_depth')) === 0, 120000, 'queue drained');
    await sleep(1500); // a tick collects the detached sessions' last events
    const detached = rssKb(pid);
    const held = await metric(srv, 'hark_detached_buffer_bytes');
    out.memory = { sessions: n, rss_base_kb: base, rss_first_detached_kb: first, rss_detached_kb: detached,
      per_detached_kb: (detached - first) / (n - 1), events_held_bytes: held };
    console.log(`memory: RSS ${base} KB idle, ${first} KB with the first session detached (its decoder made), ${detached} KB with ${n} detached: ` +
      `${((detached - first) / (n - 1)).toFixed(1)} KB per further detached session (events held for resumes: ${(held / n / 1024).toFixed(1)} KiB each)`);
  } finally {
    await srv.stop();
  }
}

// ------------------------------------------------------------ 3. forced disconnects in a long stream

const segFinals = (list) => list.map((e) => `${e.segment}\t${e.text}`);

async function partCuts() {
  const reps = Math.ceil((opt.minutes * 60 * RATE) / SPEECH.length);
  const pcm = Buffer.concat(Array(reps).fill(SPEECH)).subarray(0, opt.minutes * 60 * RATE);
  const audioSec = pcm.length / RATE;
  const srv = await startServer(['--resume-window', '30', '--workers', '2']);
  try {
    // reference: one connection, full speed, no faults
    const t0 = Date.now();
    const ref = await openNative(srv.url, CONFIG);
    await streamPcm(ref.ws, pcm);
    ref.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(ref.events, (e) => e.type === 'closed', 600000);
    const reference = segFinals(ref.events.filter((e) => e.type === 'transcript' && e.is_final));
    console.log(`reference: ${audioSec.toFixed(0)} s of audio, ${reference.length} finals, in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const proxy = await FaultProxy.start({ port: srv.port, log: () => {} });
    // closeTimeoutMs: on a loaded machine the server may finish long after
    // the audio ends; this measures delivery, not the client's patience
    const client = new HarkClient({ url: proxy.url, WebSocket, config: CONFIG, closeTimeoutMs: 600000 });
    const finals = [], seqs = new Map();
    let lost = 0;
    client.on('final', (e) => finals.push(e));
    for (const type of ['partial', 'final', 'speech_started', 'utterance_end', 'closed'])
      client.on(type, (e) => { if (typeof e.seq === 'number') seqs.set(e.seq, (seqs.get(e.seq) || 0) + 1); });
    client.on('audio_lost', (e) => { lost += e.to_ms - e.from_ms; });
    client.on('error', () => {});
    await client.connect();
    const t1 = Date.now();
    const wallMs = (audioSec / opt.rate) * 1000;
    const every = wallMs / (opt.cuts + 1);
    let cuts = 0;
    const cutter = setInterval(() => {
      if (cuts < opt.cuts) {
        cuts++;
        proxy.cut();
      }
    }, every);
    const frame = 640; // 20 ms
    for (let off = 0; off < pcm.length; off += frame) {
      // no faster than the server acknowledges: the client's ring (60 s)
      // must not overflow when the server runs behind the feed
      while (off - client.acked > 30 * RATE) await sleep(20);
      client.send(pcm.subarray(off, off + frame));
      const due = t1 + ((off + frame) / RATE / opt.rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    }
    while (cuts < opt.cuts) await sleep(every); // every planned cut happens while streaming or finishing
    clearInterval(cutter);
    const closed = await client.close();
    const streamed = (Date.now() - t1) / 1000;
    await proxy.close();
    const got = segFinals(finals);
    const refSet = new Map(reference.map((l) => [l.split('\t')[0], l]));
    let missing = 0, differ = 0;
    const gotBySeg = new Map();
    let dupSegs = 0;
    for (const l of got) {
      const k = l.split('\t')[0];
      if (gotBySeg.has(k)) dupSegs++;
      gotBySeg.set(k, l);
    }
    for (const [k, l] of refSet) {
      if (!gotBySeg.has(k)) missing++;
      else if (gotBySeg.get(k) !== l) differ++;
    }
    const dupSeqs = [...seqs.values()].filter((c) => c > 1).length;
    out.cuts = {
      audio_seconds: audioSec, rate: opt.rate, wall_seconds: streamed, cuts_planned: opt.cuts, proxy_cuts: proxy.counters.cuts,
      connects: client.stats.connects, resumes: client.stats.resumes, restarts: client.stats.restarts,
      resent_bytes: client.stats.resentBytes, resent_bytes_per_resume: client.stats.resentBytes / Math.max(1, client.stats.resumes),
      audio_lost_ms: lost, reference_finals: reference.length, finals: got.length, missing, differ,
      duplicated_segments: dupSegs, duplicated_seqs: dupSeqs, identical: JSON.stringify(got) === JSON.stringify(reference),
      closed: closed.reason,
    };
    const c = out.cuts;
    console.log(`${c.proxy_cuts} forced disconnects in ${audioSec.toFixed(0)} s of audio streamed at ${opt.rate}x (${streamed.toFixed(1)} s): ` +
      `${c.resumes} resumes, ${c.restarts} new sessions, ${c.finals}/${c.reference_finals} finals, ${missing} lost, ${differ} different, ` +
      `${dupSegs} duplicated segments, ${dupSeqs} duplicated seqs, audio_lost ${lost} ms, identical: ${c.identical}, closed: ${c.closed}; ` +
      `resent ${c.resent_bytes} bytes = ${(c.resent_bytes_per_resume / 1024).toFixed(1)} KiB per resume (${(c.resent_bytes_per_resume / RATE * 1000).toFixed(0)} ms of audio)`);
  } finally {
    await srv.stop();
  }
}

const parts = String(opt.parts).split(',');
if (parts.includes('1')) await partResumeTime();
if (parts.includes('2')) await partMemory();
if (parts.includes('3')) await partCuts();
if (opt.json) writeFileSync(opt.json, JSON.stringify(out, null, 2));
