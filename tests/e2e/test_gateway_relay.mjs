// What a worker says about a session that is not a transcript, relayed by
// `hark serve --backend nats://` (docs/deployment.md, Gateways) to its
// clients the way a local session says it: `provider_failover` (the worker's
// network engine fails over to --fallback-engine) and `audio_gap` (audio lost
// between the gateway and the worker). Real nats-server, real workers, real
// gateway, a local `hark serve` with the same engine as the reference.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { connect } from 'nats';
import { encode, decode } from '@msgpack/msgpack';
import { WORKER_ARGS, freePort, startNats, startWorker } from './nats_lib.mjs';
import { CLIPS, wavPcm, sleep, startServer, openNative, streamPcm, waitFor, checkContract } from './lib.mjs';

const IN = 'ai.voice.stream';

let dir, nats, worker, gw, local, deadPort;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hark-gwrelay-'));
  nats = await startNats(await freePort(), { dir });
  // a Deepgram-compatible provider nobody listens for: every session fails
  // over at its start (unreachable), on the worker as on the local server
  deadPort = await freePort();
  const engine = ['--engine', 'deepgram', '--deepgram-url', `ws://127.0.0.1:${deadPort}/v1/listen`,
    '--fallback-engine', 'pocketsphinx', '--provider-cooldown-ms', '0'];
  worker = await startWorker(nats.url, [...WORKER_ARGS, ...engine]);
  gw = await startServer(['--backend', nats.url, '--backend-timeout', '10']);
  local = await startServer([...WORKER_ARGS, ...engine]);
});

after(async () => {
  for (const s of [gw, local]) if (s) assert.equal(await s.stop(), 0, 'clean exit\n' + s.log().slice(-2000));
  if (worker) assert.equal(await worker.stop(), 0, 'worker exit status\n' + worker.log().slice(-2000));
  if (nats) await nats.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function native(url, pcm) {
  const s = await openNative(url, { sample_rate: 16000 });
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, pcm);
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  return s.events;
}

test('provider_failover: a native client of the gateway gets the event a local server sends (reason, code, engines, start), in order, and the same finals', async () => {
  const pcm = wavPcm(CLIPS[1]);
  const [a, b] = await Promise.all([native(local.url, pcm), native(gw.url, pcm)]);
  checkContract(a);
  checkContract(b);
  const fo = (ev) => ev.filter((e) => e.type === 'provider_failover')
    .map(({ reason, code, from, to, start }) => ({ reason, code, from, to, start }));
  assert.equal(fo(a).length, 1, JSON.stringify(a).slice(0, 800));
  assert.deepEqual(fo(b), fo(a));
  assert.equal(fo(b)[0].reason, 'unreachable');
  assert.equal(fo(b)[0].to, 'pocketsphinx');
  // before the first final the fallback made (docs/protocol.md)
  const firstFinal = (ev) => ev.findIndex((e) => e.type === 'transcript' && e.is_final);
  assert.ok(b.findIndex((e) => e.type === 'provider_failover') < firstFinal(b));
  const finals = (ev) => ev.filter((e) => e.type === 'transcript' && e.is_final).map((e) => e.text);
  assert.deepEqual(finals(b), finals(a));
});

test('provider_failover: a Deepgram client of the gateway gets the messages a local server sends (none for the failover)', async () => {
  const pcm = wavPcm(CLIPS[1]);
  async function dg(url) {
    const ws = new WebSocket(url + '/v1/listen?encoding=linear16&sample_rate=16000&interim_results=false');
    const types = [];
    ws.on('message', (d, bin) => { if (!bin) types.push(JSON.parse(d.toString()).type); });
    await once(ws, 'open');
    for (let off = 0; off < pcm.length; off += 3200) ws.send(pcm.subarray(off, off + 3200));
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    const [code] = await once(ws, 'close');
    return { code, types };
  }
  const [a, b] = await Promise.all([dg(local.url), dg(gw.url)]);
  assert.equal(b.code, 1000);
  assert.deepEqual(b.types, a.types);
  assert.deepEqual([...new Set(b.types)].sort(), ['Metadata', 'Results']);
});

test('audio_gap: audio the worker never got (chunk timestamps jump) reaches the native client as an audio_gap event in order; the session goes on', async () => {
  const nc = await connect({ servers: nats.url, reconnect: false, timeout: 5000 });
  try {
    const s = await openNative(gw.url, { sample_rate: 16000 });
    assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
    const id = s.ready.session_id;
    // the gateway's chunks for this session, as the worker gets them
    let sentBytes = 0, lastEnd = 0;
    const sub = nc.subscribe(`${IN}.${id}`);
    (async () => {
      for await (const m of sub) {
        const msg = decode(m.data);
        if (msg.type !== 'chunk') continue;
        sentBytes += msg.audio.length;
        lastEnd = msg.timestamp + msg.audio.length / 32000;
      }
    })();
    await nc.flush();
    const pcm = wavPcm(CLIPS[1]);
    const half = pcm.subarray(0, Math.floor(pcm.length / 2 / 640) * 640);
    await streamPcm(s.ws, half);
    for (const end = Date.now() + 30000; sentBytes < half.length;) {
      assert.ok(Date.now() < end, `the gateway published ${sentBytes} of ${half.length} bytes`);
      await sleep(20);
    }
    // 1.5 s of the client's audio lost on the way: the next audio the
    // worker gets starts that much later than the audio before it ended
    nc.publish(`${IN}.${id}`, encode({ type: 'chunk', audio: Buffer.alloc(3200), timestamp: lastEnd + 1.5 }));
    await nc.flush();
    const gap = await waitFor(s.events, (e) => e.type === 'audio_gap', 15000);
    assert.ok(Math.abs(gap.duration - 1.5) < 0.01, JSON.stringify(gap));
    assert.ok(Math.abs(gap.start - (half.length + 3200) / 32000) < 0.05 ||
      Math.abs(gap.start - half.length / 32000) < 0.05, JSON.stringify(gap));
    assert.match(gap.message, /1\.5/);
    assert.equal(typeof gap.seq, 'number');
    sub.unsubscribe();
    s.ws.send(JSON.stringify({ type: 'close' }));
    await s.closed;
    checkContract(s.events);
    assert.ok(s.events.some((e) => e.type === 'transcript' && e.is_final && e.text.length > 0));
  } finally {
    await nc.close();
  }
});
