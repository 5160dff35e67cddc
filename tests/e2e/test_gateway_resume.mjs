// Resume across gateways (issue 14 §5; docs/deployment.md, Gateways): two
// `hark serve --backend` gateways in front of a `hark worker --jetstream`,
// real nats-server with JetStream (started here). The JS client (hark-client)
// streams a multi-utterance clip at real-time pace through a TCP proxy to
// gateway A; mid-utterance the proxy is pointed at gateway B and the
// connection is cut, so the client's resume reaches B, which takes the
// detached session over from A: the finals are word for word and segment
// for segment those of an uninterrupted run, every seq arrives once and in
// order, and A handed the session over without ending it on the worker.
// A resume with a wrong token via B is resume_failed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { HarkClient } from '../../clients/js/index.js';
import { FaultProxy } from './faultproxy.mjs';
import { CLIPS, sleep, startServer, waitFor, wavPcm } from './lib.mjs';
import { freePort, startNats as natsAt, startWorker as workerAt } from './nats_lib.mjs';

const RATE = 32000; // bytes per second of 16 kHz s16le mono
const SILENCE = Buffer.alloc(RATE); // 1 s between clips: one segment each
const PCM = Buffer.concat([CLIPS[1], CLIPS[2], CLIPS[3]].flatMap((c) => [wavPcm(c), SILENCE]));
const CONFIG = { encoding: 'pcm_s16le', sample_rate: 16000 };
const SEQ_EVENTS = ['partial', 'final', 'speech_started', 'utterance_end', 'interrupt', 'error', 'closed'];

let dir, nats, worker, gwA, gwB;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hark-gwres-'));
  const port = await freePort();
  const conf = path.join(dir, 'nats.conf');
  writeFileSync(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: "${path.join(dir, 'store')}", max_memory_store: 64MB, max_file_store: 1GB }\n`);
  nats = await natsAt(port, { dir, conf, jetstream: true });
  worker = await workerAt(nats.url, ['--jetstream', '--workers', '2', '--max-busy-percent', '100',
    '--max-lag-ms', '60000']);
  gwA = await startServer(['--backend', nats.url]);
  gwB = await startServer(['--backend', nats.url]);
});

after(async () => {
  for (const g of [gwA, gwB]) if (g) assert.equal(await g.stop(), 0, g.log().slice(-3000));
  if (worker) await worker.stop('SIGKILL');
  if (nats) await nats.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function makeClient(url) {
  const client = new HarkClient({ url, WebSocket, config: CONFIG });
  const log = [];
  for (const type of [...SEQ_EVENTS, 'audio_lost', 'restarted', 'resumed', 'ready', 'reconnecting'])
    client.on(type, (e) => log.push({ ev: type, ...e }));
  return { client, log };
}

// Real-time pace (100 ms frames); at(offset) runs once when that many bytes
// have been sent.
async function stream(client, pcm, { at = -1, action } = {}) {
  const t0 = Date.now();
  for (let off = 0, i = 0; off < pcm.length; off += 3200, i++) {
    if (action && off >= at) {
      await action();
      action = null;
    }
    client.send(pcm.subarray(off, off + 3200));
    const wait = t0 + (i + 1) * 100 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  return client.close();
}

const finalsOf = (log) => log.filter((e) => e.ev === 'final').map((e) => ({ segment: e.segment, text: e.text }));

function checkSeq(log) {
  const seqs = log.filter((e) => SEQ_EVENTS.includes(e.ev) && typeof e.seq === 'number').map((e) => e.seq);
  for (let i = 0; i < seqs.length; i++)
    assert.equal(seqs[i], i, `seq ${seqs[i]} at position ${i}: ${seqs.slice(Math.max(0, i - 5), i + 5)}`);
  return seqs.length;
}

async function metric(g, name) {
  const text = await (await fetch(g.http + '/metrics')).text();
  const m = text.match(new RegExp('^' + name.replace(/[{}]/g, '\\$&') + ' (\\d+)', 'm'));
  return m ? Number(m[1]) : 0;
}

test('a session detached on gateway A resumes on gateway B: the same finals, every seq once, no end on the worker', { timeout: 110000 }, async (t) => {
  // the uninterrupted run, through A
  const ref = makeClient(gwA.url);
  await ref.client.connect();
  const refClosed = await stream(ref.client, PCM);
  assert.equal(refClosed.reason, 'client');
  const reference = finalsOf(ref.log);
  assert.ok(reference.filter((f) => f.text).length >= 3, JSON.stringify(reference));
  checkSeq(ref.log);

  const proxy = await FaultProxy.start({ port: gwA.port, log: (s) => t.diagnostic(s) });
  t.after(() => proxy.close());
  const { client, log } = makeClient(proxy.url);
  const ready = await client.connect();
  assert.ok(ready.resume_token, 'the gateway offers resume');
  const handedBefore = await metric(gwA, 'hark_backend_handed_over_total');
  // mid-utterance: 1.5 s into the second clip
  const cutAt = wavPcm(CLIPS[1]).length + SILENCE.length + 48000;
  const closed = await stream(client, PCM, {
    at: cutAt,
    action: () => {
      proxy.setTarget(gwB.port); // the reconnect goes to B
      proxy.cut();
    },
  });
  assert.equal(closed.reason, 'client');
  const resumed = log.filter((e) => e.ev === 'resumed');
  assert.equal(resumed.length, 1, JSON.stringify(log.filter((e) => e.ev !== 'partial').slice(0, 40)));
  assert.equal(client.stats.restarts, 0, 'no new session');
  assert.equal(log.filter((e) => ['restarted', 'audio_lost', 'error'].includes(e.ev)).length, 0);
  assert.deepEqual(finalsOf(log), reference);
  const n = checkSeq(log);
  assert.equal(closed.seq, n - 1, 'closed is the last event');
  // A handed it over and sent no end; B took it
  assert.equal(await metric(gwA, 'hark_backend_handed_over_total'), handedBefore + 1);
  assert.equal(await metric(gwB, 'hark_backend_taken_over_total'), 1);
  assert.equal(await metric(gwB, 'hark_resumes_total{result="ok"}'), 1);
  assert.equal(await metric(gwB, 'hark_resumes_total{result="failed"}'), 0);
  assert.match(gwA.log(), new RegExp(`${resumed[0].session_id}.*session handed over to another gateway`));
  t.diagnostic(`${reference.length} segments, ${n} events; resumed at seq ${resumed[0].last_seq}`);
});

// A raw native connection: its first message, then what it receives until
// it closes.
async function firstMessage(url, msg) {
  const ws = new WebSocket(url + '/v1/stream');
  const events = [];
  ws.onmessage = (m) => events.push(JSON.parse(m.data.toString()));
  const closed = new Promise((resolve) => { ws.onclose = (e) => resolve(e.code); });
  await new Promise((resolve, reject) => { ws.onopen = resolve; ws.onerror = reject; });
  ws.send(JSON.stringify(msg));
  return { ws, events, closed };
}

test('a wrong token via gateway B: resume_failed, and the session stays on A for its client', { timeout: 60000 }, async () => {
  // a session on A whose connection drops without a close: detached there
  const a = await firstMessage(gwA.url, { type: 'config', ...CONFIG });
  await waitFor(a.events, (e) => e.type === 'ready');
  const ready = a.events.find((e) => e.type === 'ready');
  a.ws.send(PCM.subarray(0, 64000));
  await sleep(500);
  a.ws.close(4000); // not a normal close: the session waits for a resume
  await a.closed;
  await sleep(300);

  const t0 = Date.now();
  const bad = await firstMessage(gwB.url, { type: 'resume', session_id: ready.session_id,
    resume_token: '0'.repeat(32), last_seq: -1, audio_bytes: 64000 });
  assert.equal(await bad.closed, 4404);
  assert.ok(bad.events.some((e) => e.type === 'error' && e.code === 'resume_failed'), JSON.stringify(bad.events));
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(await metric(gwB, 'hark_resumes_total{result="failed"}'), 1);

  // the right token via B takes it over: its events come again from the start
  const good = await firstMessage(gwB.url, { type: 'resume', session_id: ready.session_id,
    resume_token: ready.resume_token, last_seq: 0, audio_bytes: 64000 });
  await waitFor(good.events, (e) => e.type === 'resumed', 10000);
  const r = good.events.find((e) => e.type === 'resumed');
  assert.equal(r.audio_bytes, 64000);
  good.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(good.events, (e) => e.type === 'closed', 30000);
  const seqs = good.events.filter((e) => typeof e.seq === 'number').map((e) => e.seq);
  assert.ok(seqs.length && seqs[0] === 1, JSON.stringify(seqs));
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1);
  good.ws.close();
});
