// JetStream benchmark for `hark worker --jetstream` (docs/benchmarks.md,
// "JetStream"). A program, not a test: a real nats-server with JetStream
// (fresh store, free loopback port, the subject mapping for --partitions),
// real `hark worker`s, seed-004 clients publishing plain core NATS.
//
//  1. Overhead, same run: --osessions live sessions (the librivox clips,
//     100 ms chunks in real time, staggered; few enough that one worker
//     with --workers 2 keeps up) against one core-NATS worker, then the same
//     against one --jetstream worker, --rounds times alternating. Per mode: the worker's
//     CPU seconds (/proc/PID/stat utime+stime) per session, and end of
//     speech -> final: the final's arrival minus the moment the client sent
//     the chunk that holds the final's `end` plus the endpointing silence
//     (500 ms), or, for the final the client's `end` makes, minus the moment
//     it sent `end`; p50/p95 over all finals.
//  2. Hand-off time at the default lease TTL: 3 workers, --sessions live
//     sessions of 3 clips each; 4 s in, kill -9 of the worker with the most
//     open sessions. Per moved session: kill -> its first result from the
//     new owner. Repeated --handoffs times.
//  3. Throughput with 1, 2, 3 workers (--workers 1 each; this machine's
//     cores are shared by all of them and nats-server): --burst sessions of
//     one clip sent as fast as possible; audio seconds transcribed per wall
//     second, from the first start to the last closed.
//
// Usage (from the repository root):
//   node bench/jetstream.mjs --hark build/hark [--osessions 2] [--sessions 6]
//        [--handoffs 3] [--burst 40] [--partitions 6] [--only overhead|handoff|throughput]
//        [--json out.json]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const E2E = path.join(HERE, '..', 'tests', 'e2e');
const req = createRequire(path.join(E2E, 'x.js'));
const { connect } = req('nats');
const { encode, decode } = req('@msgpack/msgpack');

const opt = { hark: 'build/hark', sessions: 6, osessions: 2, handoffs: 3, burst: 40, partitions: 6, only: '', json: '' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option --${k}`);
  opt[k] = typeof opt[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}
process.env.HARK_BIN = path.resolve(opt.hark);
const { CLIPS, wavPcm, sleep } = await import(path.join(E2E, 'lib.mjs'));
const IN = 'ai.voice.stream', OUT = 'ai.voice.transcription';
const dir = mkdtempSync(path.join(tmpdir(), 'hark-jsbench-'));
const out = { machine: { cpus: cpus().length }, options: opt };
const children = new Set(); // killed on the way out, whatever happens
process.on('exit', () => { for (const p of children) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); });

async function freePort() {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address();
  srv.close();
  await once(srv, 'close');
  return port;
}

async function startNats() {
  const port = await freePort();
  const conf = path.join(dir, `nats-${port}.conf`);
  writeFileSync(conf, [`listen: 127.0.0.1:${port}`,
    `jetstream { store_dir: "${path.join(dir, `store-${port}`)}", max_memory_store: 64MB, max_file_store: 2GB }`,
    `mappings: { "${IN}.*": "${IN}.{{partition(${opt.partitions},1)}}.{{wildcard(1)}}" }`].join('\n'));
  const proc = spawn('/usr/sbin/nats-server', ['-c', conf, '-l', path.join(dir, `nats-${port}.log`)], { stdio: 'ignore' });
  children.add(proc);
  const url = `nats://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try { const nc = await connect({ servers: url, reconnect: false }); await nc.jetstreamManager(); await nc.close(); break; } catch (e) {
      if (i > 200) throw e;
      await sleep(50);
    }
  }
  return { proc, url, stop: async () => { proc.kill(); await once(proc, 'exit'); } };
}

async function startWorker(url, args) {
  const proc = spawn(path.resolve(opt.hark), ['worker', '--nats-url', url, '--workers', '1', '--max-busy-percent', '100',
    '--max-lag-ms', '60000', ...args], { env: { ...process.env, HARK_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(proc);
  let outText = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    proc.stdout.on('data', (d) => { outText += d; if (/\(connected\)/.test(outText)) resolve(); });
    proc.on('exit', (c) => reject(new Error(`worker exited ${c}: ${err}`)));
  });
  const cpu = () => { // s of CPU so far
    const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  };
  return { proc, log: () => err, cpu, stop: async (sig = 'SIGTERM') => { if (proc.exitCode === null && proc.signalCode === null) { proc.kill(sig); await once(proc, 'exit'); } } };
}

async function client(url) {
  const nc = await connect({ servers: url });
  const by = new Map();
  const sub = nc.subscribe(OUT + '.>');
  (async () => {
    for await (const m of sub) {
      const id = m.subject.slice(OUT.length + 1);
      const msg = decode(m.data);
      msg.at = performance.now();
      if (!by.has(id)) by.set(id, []);
      by.get(id).push(msg);
    }
  })();
  await nc.flush();
  return { nc, msgs: (id) => by.get(id) || [], send: (id, o) => nc.publish(`${IN}.${id}`, encode(o)) };
}

// Live sessions, staggered by 300 ms; records when each chunk was sent.
async function live(c, list, { at } = {}) {
  const t0 = performance.now();
  for (const s of list) { s.sent = []; c.send(s.id, { type: 'start' }); }
  const ticks = Math.max(...list.map((s, i) => i * 3 + Math.ceil(s.pcm.length / 3200)));
  for (let t = 0; t < ticks; t++) {
    if (at && at.tick === t) await at.fn();
    list.forEach((s, i) => {
      const k = t - i * 3, off = k * 3200;
      if (k < 0 || off >= s.pcm.length) return;
      c.send(s.id, { type: 'chunk', audio_b64: s.pcm.subarray(off, off + 3200).toString('base64'), timestamp: 1700000000 + off / 32000 });
      s.sent.push(performance.now());
      if (off + 3200 >= s.pcm.length) { c.send(s.id, { type: 'end' }); s.endAt = performance.now(); }
    });
    const wait = t0 + (t + 1) * 100 - performance.now();
    if (wait > 0) await sleep(wait);
  }
}

async function closed(c, list, ms = 180000) {
  const end = Date.now() + ms;
  while (!list.every((s) => c.msgs(s.id).some((m) => m.type === 'closed'))) {
    if (Date.now() > end) throw new Error('sessions did not close');
    await sleep(50);
  }
}

const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s.length ? s[Math.min(s.length - 1, Math.floor(p * s.length))] : NaN; };
const clip = (i, n = 1) => Buffer.concat(Array.from({ length: n }, (_, j) => wavPcm(CLIPS[(i + j) % CLIPS.length])));

try {
  // 1. overhead
  out.overhead = {};
  const ns = (!opt.only || opt.only === 'overhead') && await startNats();
  const c = ns && await client(ns.url);
  let round = 0;
  for (const mode of ns ? ['core', 'jetstream', 'core', 'jetstream'] : []) {
    round++;
    const w = await startWorker(ns.url, ['--workers', '2', ...(mode === 'core' ? ['--nats-subject-in', 'core.in', '--nats-subject-out', OUT]
      : ['--jetstream', '--jetstream-partitions', String(opt.partitions)])]);
    await sleep(2500); // leases claimed
    const cpu0 = w.cpu();
    const list = Array.from({ length: opt.osessions }, (_, i) => ({ id: `${mode}-${round}-${i}`, pcm: clip(i, 2) }));
    const send = c.send;
    if (mode === 'core') c.send = (id, o) => c.nc.publish(`core.in.${id}`, encode(o));
    await live(c, list);
    await closed(c, list);
    c.send = send;
    const lat = [];
    for (const s of list) {
      for (const r of c.msgs(s.id).filter((m) => m.type === undefined && m.is_final)) {
        if (r.reason === 'close') { lat.push(r.at - s.endAt); continue; } // the client's end
        const k = Math.min(s.sent.length - 1, Math.floor((r.end + 0.5) * 10));
        lat.push(r.at - s.sent[k]);
      }
    }
    const o = (out.overhead[mode] ??= { cpu: [], lat: [] });
    o.cpu.push((w.cpu() - cpu0) / list.length);
    o.lat.push(...lat);
    console.log(mode, 'cpu per session', o.cpu.map((x) => x.toFixed(3)).join(' '), 'p50/p95 ms', Math.round(pct(lat, 0.5)), Math.round(pct(lat, 0.95)));
    await w.stop();
  }
  for (const mode of Object.keys(out.overhead)) {
    const o = out.overhead[mode];
    out.overhead[mode] = {
      cpu_per_session_s: +(o.cpu.reduce((a, b) => a + b, 0) / o.cpu.length).toFixed(3),
      eos_to_final_ms: { p50: Math.round(pct(o.lat, 0.5)), p95: Math.round(pct(o.lat, 0.95)), n: o.lat.length },
    };
  }
  if (ns) { console.log('overhead', JSON.stringify(out.overhead)); await c.nc.close(); await ns.stop(); }

  // 2. hand-off time
  out.handoff = [];
  for (let h = 0; h < (!opt.only || opt.only === 'handoff' ? opt.handoffs : 0); h++) {
    const ns2 = await startNats();
    const c2 = await client(ns2.url);
    const ws = [];
    for (let i = 0; i < 3; i++) ws.push(await startWorker(ns2.url, ['--jetstream', '--jetstream-partitions', String(opt.partitions)]));
    await sleep(4000);
    const list = Array.from({ length: opt.sessions }, (_, i) => ({ id: `ho${h}-${i}`, pcm: clip(i, 3) }));
    let killedAt, victim;
    await live(c2, list, {
      at: { tick: 40, fn: () => {
        const open = ws.map((w) => (w.log().match(/session (started|resumed)/g) || []).length);
        victim = ws[open.indexOf(Math.max(...open))];
        killedAt = performance.now();
        victim.proc.kill('SIGKILL');
      } },
    });
    await closed(c2, list);
    for (const s of list) {
      if (!new RegExp(`\\[${s.id}\\] session`).test(victim.log())) continue;
      const after = c2.msgs(s.id).find((m) => m.at > killedAt + 50 && m.type === undefined);
      if (after) out.handoff.push(Math.round(after.at - killedAt));
    }
    for (const w of ws) await w.stop();
    await c2.nc.close();
    await ns2.stop();
  }
  if (out.handoff.length) {
    out.handoff_ms = { p50: pct(out.handoff, 0.5), max: Math.max(...out.handoff), n: out.handoff.length };
    console.log('hand-off', JSON.stringify(out.handoff_ms));
  }

  // 3. throughput
  out.throughput = {};
  for (const n of !opt.only || opt.only === 'throughput' ? [1, 2, 3] : []) {
    const ns3 = await startNats();
    const c3 = await client(ns3.url);
    const ws = [];
    for (let i = 0; i < n; i++) ws.push(await startWorker(ns3.url, ['--jetstream', '--jetstream-partitions', String(opt.partitions)]));
    await sleep(4000);
    const list = Array.from({ length: opt.burst }, (_, i) => ({ id: `tp${n}-${i}`, pcm: clip(i) }));
    const t0 = performance.now();
    for (const s of list) {
      c3.send(s.id, { type: 'start' });
      for (let off = 0; off < s.pcm.length; off += 3200)
        c3.send(s.id, { type: 'chunk', audio_b64: s.pcm.subarray(off, off + 3200).toString('base64'), timestamp: 1700000000 + off / 32000 });
      c3.send(s.id, { type: 'end' });
    }
    await closed(c3, list, 600000);
    const wall = (performance.now() - t0) / 1000;
    const audio = list.reduce((a, s) => a + s.pcm.length / 32000, 0);
    out.throughput[n] = { audio_s: +audio.toFixed(1), wall_s: +wall.toFixed(1), x_realtime: +(audio / wall).toFixed(2) };
    console.log(`throughput ${n} worker(s)`, JSON.stringify(out.throughput[n]));
    for (const w of ws) await w.stop();
    await c3.nc.close();
    await ns3.stop();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
if (opt.json) writeFileSync(opt.json, JSON.stringify(out, null, 2));
console.log(JSON.stringify(out));
