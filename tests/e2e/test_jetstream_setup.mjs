// hark worker --jetstream set-up (docs/nats.md "JetStream"): a worker
// started before nats-server retries until it is there; a session id used
// again after its closed is a new session; a subject mapping that does not
// match --jetstream-partitions is reported. Helpers: jetstream_lib.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  HARK, CLIPS, wavPcm, sleep, freePort, startNats, startWorker, startClient, until, results, ofType,
  checkSession, IN,
} from './jetstream_lib.mjs';

// a whole clip at once (JetStream keeps it; no pacing needed)
function sendClip(c, id, pcm) {
  c.send(id, { type: 'start', speaker_id: 'spk' });
  for (let off = 0; off < pcm.length; off += 3200)
    c.send(id, { type: 'chunk', audio_b64: pcm.subarray(off, off + 3200).toString('base64'), timestamp: 1700000000 + off / 32000 });
  c.send(id, { type: 'end' });
}

async function readyz(port) {
  const r = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: r.status, body: await r.text() };
}

test('a worker started before nats-server retries the set-up, is not ready meanwhile, and then runs sessions; an id used again after its closed is a new session', async () => {
  const port = await freePort();
  const proc = spawn(HARK, ['worker', '--nats-url', `nats://127.0.0.1:${port}`, '--jetstream', '--port', '0',
    '--workers', '1', '--max-busy-percent', '100', '--max-lag-ms', '60000'],
  { env: { ...process.env, HARK_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stdout.on('data', (d) => { out += d; });
  proc.stderr.on('data', (d) => { err += d; });
  const alive = () => proc.exitCode === null && proc.signalCode === null;
  let ns, c;
  try {
    await until(() => /health on http:\/\/127\.0\.0\.1:\d+\//.test(out) || !alive(), 30000, 'the health port');
    assert.ok(alive(), 'the worker runs without a server:\n' + err);
    const hp = Number(out.match(/health on http:\/\/127\.0\.0\.1:(\d+)\//)[1]);
    await until(() => /JetStream not set up: not connected to NATS yet; not ready, retried in/.test(err), 10000, 'the retry in the log');
    const before = await readyz(hp);
    assert.equal(before.status, 503);
    assert.match(before.body, /not connected to NATS/);
    await sleep(1500); // a few tries with nobody there
    assert.ok(alive());
    ns = await startNats(port);
    // within the capped backoff (5 s) plus a lease renewal (1 s)
    await until(() => /consuming partition 0/.test(err), 20000, 'the partition after the server came');
    assert.equal((await readyz(hp)).status, 200);
    c = await startClient(ns.url);
    const s = { id: 'late-1', k: 1, pcm: wavPcm(CLIPS[1]) };
    sendClip(c, s.id, s.pcm);
    await until(() => ofType(c.msgs(s.id), 'closed').length === 1, 60000, 'the session on the late worker');
    checkSession(c.msgs(s.id), s);

    // the same id again: a new session with its own numbering, not a
    // replay of the closed one (dropped silently before)
    const first = c.msgs(s.id).length;
    sendClip(c, s.id, s.pcm);
    await until(() => ofType(c.msgs(s.id), 'closed').length === 2, 60000, 'the second session under the same id');
    const again = c.msgs(s.id).slice(first);
    checkSession(again, s);
    assert.ok(results(again).length > 0);
  } finally {
    await c?.close().catch(() => {});
    if (alive()) { proc.kill('SIGTERM'); await new Promise((r) => proc.once('exit', r)); }
    await ns?.stop();
  }
  assert.equal(proc.exitCode, 0, err.slice(-3000));
});

test('a subject mapping that does not match --jetstream-partitions is reported at start and the worker stays not ready', async () => {
  // none at all: input on {in}.{id} matches no stream
  const port = await freePort();
  const ns = await startNats(port); // no mapping
  const w = await startWorker(ns.url, ['--jetstream-partitions', '4', '--port', '0']);
  let ns2, w2, ns3, w3;
  try {
    await until(() => /reaches no stream: nats-server needs the subject mapping/.test(w.log()), 15000, 'the missing mapping in the log');
    assert.match(w.log(), new RegExp(`"${IN.replace(/\./g, '\\.')}\\.\\*": "${IN.replace(/\./g, '\\.')}\\.\\{\\{partition\\(4,1\\)\\}\\}`));
    const hp = Number(w.stdout().match(/health on http:\/\/127\.0\.0\.1:(\d+)\//)[1]);
    const r = await readyz(hp);
    assert.equal(r.status, 503);
    assert.match(r.body, /subject mapping/);
    assert.doesNotMatch(w.log(), /consuming partition/);

    // a mapping to 16 partitions while the workers read 2: most input
    // would land where nobody reads (8 probes all in 0..1: p = 8^-8)
    const port2 = await freePort();
    ns2 = await startNats(port2, { partitions: 16 });
    w2 = await startWorker(ns2.url, ['--jetstream-partitions', '2', '--port', '0']);
    await until(() => /but the workers read partitions 0\.\.1 \(--jetstream-partitions 2\)/.test(w2.log()), 15000, 'the mismatch in the log');
    const hp2 = Number(w2.stdout().match(/health on http:\/\/127\.0\.0\.1:(\d+)\//)[1]);
    assert.equal((await readyz(hp2)).status, 503);

    // a mapping to 2 partitions while the workers read 3: nothing is lost
    // (partition 2 stays empty), so the worker runs, with a warning (the
    // probe ids land where partition(2,1) puts them, not partition(3,1))
    const port3 = await freePort();
    ns3 = await startNats(port3, { partitions: 2 });
    w3 = await startWorker(ns3.url, ['--jetstream-partitions', '3', '--port', '0']);
    await until(() => /the mapping's partition count seems to differ from --jetstream-partitions 3/.test(w3.log()), 15000, 'the warning');
    await until(() => w3.held().size === 3, 15000, 'the partitions');
  } finally {
    await w.stop();
    await w2?.stop();
    await w3?.stop();
    await ns.stop();
    await ns2?.stop();
    await ns3?.stop();
  }
});

test('with the matching mapping the probe inputs reach no session and the worker is ready', async () => {
  const port = await freePort();
  const ns = await startNats(port, { partitions: 3 });
  const w = await startWorker(ns.url, ['--jetstream-partitions', '3', '--port', '0']);
  const c = await startClient(ns.url);
  try {
    await until(() => w.held().size === 3, 15000, 'three partitions');
    const hp = Number(w.stdout().match(/health on http:\/\/127\.0\.0\.1:(\d+)\//)[1]);
    assert.equal((await readyz(hp)).status, 200);
    const s = { id: 'mapped-1', k: 2, pcm: wavPcm(CLIPS[2]) };
    sendClip(c, s.id, s.pcm);
    await until(() => ofType(c.msgs(s.id), 'closed').length === 1, 60000, 'the session');
    checkSession(c.msgs(s.id), s);
    assert.doesNotMatch(w.log(), /hark-probe/, 'no probe input became a session or an error');
    assert.doesNotMatch(w.log(), /JetStream not set up|subject mapping|seems to differ/);
  } finally {
    await c.close().catch(() => {});
    await w.stop();
    await ns.stop();
  }
});
