// `hark serve --backend` in front of `hark worker --jetstream`s (docs/
// deployment.md, Gateways; docs/nats.md, JetStream): the official Deepgram
// SDK streams through a gateway while the worker that runs its session is
// killed with SIGKILL; another worker continues the session from its record
// and the client sees it complete. Real nats-server with JetStream (started
// here), real workers, a real gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeepgramClient } from '@deepgram/sdk';
import { connect } from 'nats';
import { encode, decode } from '@msgpack/msgpack';
import {
  CLIPS, wavPcm, sleep, wer, startServer, openNative, streamPcm, waitFor, checkContract, references,
} from './lib.mjs';
import { freePort, startNats as natsAt, startWorker as workerAt } from './nats_lib.mjs';

let dir;

async function startNats(port) {
  const conf = path.join(dir, 'nats.conf');
  writeFileSync(conf, `listen: 127.0.0.1:${port}\njetstream { store_dir: "${path.join(dir, 'store')}", max_memory_store: 64MB, max_file_store: 1GB }\n`);
  return natsAt(port, { dir, conf, jetstream: true });
}

async function startWorker(url) {
  const w = await workerAt(url, ['--jetstream', '--workers', '1', '--max-busy-percent', '100',
    '--max-lag-ms', '60000']);
  w.holds = () => /consuming partition 0/.test(w.log()) && !/partition 0 given up/.test(w.log());
  return w;
}

let nats, workers = [], gw;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hark-gwjs-'));
  nats = await startNats(await freePort());
  workers.push(await startWorker(nats.url));
  workers.push(await startWorker(nats.url));
  gw = await startServer(['--backend', nats.url]);
});

after(async () => {
  if (gw) assert.equal(await gw.stop(), 0, gw.log().slice(-2000));
  for (const w of workers) await w.stop('SIGKILL');
  if (nats) await nats.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// One Deepgram SDK session through the gateway, at real-time pace; onResult
// sees each message as it comes.
async function dgSession(pcm, onMessage = () => {}) {
  const dg = new DeepgramClient({ apiKey: 'unused', baseUrl: gw.http });
  const socket = await dg.listen.v1.connect({ model: 'nova-3', encoding: 'linear16', sample_rate: 16000,
    channels: 1, interim_results: 'true', punctuate: 'false' });
  const messages = [];
  socket.on('message', (m) => { m.at = Date.now(); messages.push(m); onMessage(m); });
  const closed = new Promise((resolve) => socket.on('close', resolve));
  socket.connect();
  await socket.waitForOpen();
  const t0 = Date.now();
  for (let off = 0, i = 0; off < pcm.length; off += 3200, i++) {
    socket.sendMedia(pcm.subarray(off, off + 3200));
    const wait = t0 + (i + 1) * 100 - Date.now();
    if (wait > 0) await sleep(wait);
  }
  socket.sendCloseStream({ type: 'CloseStream' });
  const ev = await closed;
  return { messages, code: ev.code };
}

const finals = (ms) => ms.filter((m) => m.type === 'Results' && m.is_final)
  .map((m) => m.channel.alternatives[0].transcript).filter(Boolean).join(' ');

test('Deepgram SDK through a gateway: the worker running the session is killed with SIGKILL, another continues it, the client sees it complete', async () => {
  const silence = Buffer.alloc(32000);
  const pcm = Buffer.concat([wavPcm(CLIPS[1]), silence, wavPcm(CLIPS[2]), silence, wavPcm(CLIPS[3]), silence]);
  const ref = await dgSession(pcm);
  assert.equal(ref.code, 1000);
  assert.ok(finals(ref.messages).split(' ').length > 10, finals(ref.messages));

  // the holder of the (one) partition runs every session
  const victim = workers.find((w) => w.holds());
  assert.ok(victim, 'a worker holds the partition');
  let killedAt = 0;
  const run = await dgSession(pcm, (m) => {
    if (!killedAt && m.type === 'Results' && m.is_final && m.channel.alternatives[0].transcript) {
      killedAt = Date.now();
      victim.proc.kill('SIGKILL');
    }
  });
  assert.ok(killedAt, 'killed after the first final');
  assert.equal(run.code, 1000, 'the session completes: close 1000');
  assert.deepEqual(run.messages.filter((m) => m.type === 'Error'), []);
  assert.equal(run.messages.at(-1).type, 'Metadata');
  const survivor = workers.find((w) => w !== victim);
  assert.match(survivor.log(), /session (resumed|started)/);
  // tolerance: the new owner re-decodes the open utterance from its start
  const a = finals(ref.messages), b = finals(run.messages);
  const w = wer(a, b);
  assert.ok(w.errors / w.words <= 0.25, `"${b}" vs "${a}" without the kill`);
  const after = run.messages.find((m) => m.at > killedAt + 50 && m.type === 'Results');
  console.log(`hand-off: first Results ${after ? after.at - killedAt : 'none'} ms after the kill`);
  workers = workers.filter((x) => x !== victim);
});

// A stalled worker's last results can reach the gateway after the next
// owner's (docs/nats.md "JetStream"), with numbers the next owner has not
// used yet. Each JetStream result says which ownership it came from
// (owner_epoch); the gateway drops an older owner's. Here the stale copy is
// made by hand: the session's first result, its epoch one lower and its
// number far ahead, published after its first final. A gateway that went by
// numbers alone would deliver it and then drop every real result after it.
test('a result from an older owner of the session (a lower owner_epoch) is dropped by the gateway, whatever its number', async () => {
  for (let i = 0; i < 100 && !workers[0].holds(); i++) await sleep(100);
  assert.ok(workers[0].holds(), 'the remaining worker holds the partition');
  const nc = await connect({ servers: nats.url });
  try {
    const s = await openNative(gw.url, { sample_rate: 16000 });
    assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
    let first = null;
    nc.subscribe(`ai.voice.transcription.${s.ready.session_id}`, { callback: (err, m) => {
      if (err || first) return;
      const r = decode(m.data);
      if (r.type === undefined) first = r;
    } });
    await nc.flush();
    const silence = Buffer.alloc(32000 * 1.5);
    await streamPcm(s.ws, Buffer.concat([wavPcm(CLIPS[1]), silence]), { realtime: true });
    await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final, 20000);
    assert.ok(first, 'the worker published a result');
    assert.ok(Number.isInteger(first.owner_epoch) && first.owner_epoch > 0, `owner_epoch ${first.owner_epoch}`);
    nc.publish(`ai.voice.transcription.${s.ready.session_id}`, encode({
      ...first, sequence: first.sequence + 1000, owner_epoch: first.owner_epoch - 1,
      transcript: 'stale words', is_partial: false, is_final: true,
    }));
    await nc.flush();
    await streamPcm(s.ws, Buffer.concat([wavPcm(CLIPS[4]), silence]), { realtime: true });
    s.ws.send(JSON.stringify({ type: 'close' }));
    await s.closed;
    checkContract(s.events);
    const texts = s.events.filter((e) => e.type === 'transcript').map((e) => e.text).join(' | ');
    assert.ok(!texts.includes('stale words'), texts);
    const fin = s.events.filter((e) => e.type === 'transcript' && e.is_final).map((e) => e.text).join(' ');
    const ref = references();
    const truth = [1, 4].map((k) => ref[path.basename(CLIPS[k], '.wav')]).join(' ');
    const w = wer(truth, fin);
    assert.ok(w.errors / w.words < 0.5, `"${fin}": the results after the stale copy were delivered`);
    const m = await (await fetch(gw.http + '/metrics')).text();
    assert.match(m, /^hark_backend_stale_results_total 1$/m);
  } finally {
    await nc.close();
  }
});
