// Per-session engine choice over NATS (docs/nats.md, docs/engines.md): the
// `start` message's `engine` and `model` keys, on a `hark worker` whose
// engine is deepgram (a second real `hark serve` as the Deepgram-compatible
// upstream) with --fallback-engine pocketsphinx. Real nats-server, real
// msgpack client.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect } from 'nats';
import { encode, decode } from '@msgpack/msgpack';
import { CLIPS, wavPcm, sleep, startServer, curl } from './lib.mjs';
import { WORKER_ARGS, freePort, startNats, startWorker } from './nats_lib.mjs';

const IN = 'ai.voice.stream';
const OUT = 'ai.voice.transcription';
const pcm = Buffer.concat([wavPcm(CLIPS[0]), Buffer.alloc(32000 * 1.2)]);

async function until(pred, ms, what) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(20);
  }
}

// Seconds of audio a server's ended sessions took (all protocols). The
// upstream's session ends just after the front's (its connection closes
// then): read until the figure has held still for a second (bounded).
async function audioSeconds(srv) {
  const read = async () => Number((await curl([`${srv.http}/metrics`])).body.toString()
    .match(/^hark_audio_seconds_total (\S+)$/m)?.[1] ?? 0);
  let v = await read();
  for (let i = 0, still = 0; i < 100 && still < 5; i++) {
    await sleep(200);
    const w = await read();
    still = w === v ? still + 1 : 0;
    v = w;
  }
  return v;
}

test('NATS start: engine "pocketsphinx" runs the session locally, model goes upstream as model= (nova-3 is heard there; a model the upstream refuses fails over)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'hark-nsel-'));
  const nats = await startNats(await freePort(), { dir });
  const up = await startServer(['--workers', '2']);
  let worker, nc;
  try {
    nc = await connect({ servers: nats.url, reconnect: false, timeout: 5000 });
    worker = await startWorker(nats.url, [...WORKER_ARGS,
      '--engine', 'deepgram', '--deepgram-url', `${up.url}/v1/listen`, '--deepgram-timeout-ms', '60000',
      '--fallback-engine', 'pocketsphinx', '--provider-cooldown-ms', '0']);
    const msgs = new Map();
    const sub = nc.subscribe(OUT + '.>');
    (async () => {
      for await (const m of sub) {
        const id = m.subject.slice(OUT.length + 1);
        if (!msgs.has(id)) msgs.set(id, []);
        msgs.get(id).push(decode(m.data));
      }
    })();
    await nc.flush();
    const run = async (id, extra) => {
      nc.publish(`${IN}.${id}`, encode({ type: 'start', session_id: id, sample_rate: 16000, channels: 1, ...extra }));
      for (let off = 0; off < pcm.length; off += 3200)
        nc.publish(`${IN}.${id}`, encode({ type: 'chunk', audio_b64: pcm.subarray(off, off + 3200).toString('base64') }));
      nc.publish(`${IN}.${id}`, encode({ type: 'end' }));
      await until(() => (msgs.get(id) || []).some((m) => m.type === 'closed'), 120000, `closed of ${id}`);
      const ms = msgs.get(id);
      assert.equal(ms.find((m) => m.type === 'error'), undefined, JSON.stringify(ms).slice(0, 600));
      return ms.filter((m) => m.type === undefined && m.is_final && m.transcript).map((m) => m.transcript).join(' ');
    };

    let a0 = await audioSeconds(up);
    const local = await run('s-local', { engine: 'pocketsphinx' });
    assert.ok(local.split(' ').length > 5, local);
    assert.equal(await audioSeconds(up), a0, 'engine pocketsphinx: nothing went upstream');

    a0 = await audioSeconds(up);
    const nova = await run('s-nova', { model: 'nova-3' });
    assert.ok(nova.split(' ').length > 5, nova);
    assert.ok((await audioSeconds(up)) > a0 + 1, 'model nova-3: the upstream heard the session');
    assert.doesNotMatch(worker.log(), /provider failover/);

    // the upstream's /v1/listen takes model=openai as an engine it does not
    // have: HTTP 400 at the upgrade, so the model did go upstream
    const refused = await run('s-refused', { model: 'openai' });
    assert.match(worker.log(), /provider failover \(http_status\): provider answered HTTP 400/);
    assert.ok(refused.split(' ').length > 5, refused);
  } finally {
    if (nc) await nc.close();
    await worker?.stop();
    await up.stop();
    await nats.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});
