// hark worker --jetstream (docs/nats.md "JetStream", docs/deployment.md
// "What is guaranteed"): a worker cut off from NATS, or frozen, for longer
// than the lease time. Another worker takes its partitions and continues the
// sessions from their records; the cut-off worker must have stopped
// publishing for them by then, so that nothing it rendered meanwhile (which
// nats.c would buffer and send on reconnect) reaches the clients as a second
// copy of a sequence number. Helpers: jetstream_lib.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLIPS, wavPcm, sleep, freePort, startNats, startWorker, startClient, until, ofType, finalText,
  streamLive, checkSession, TRUTH, rate,
} from './jetstream_lib.mjs';
import { FaultProxy } from './faultproxy.mjs';

const P = 2;
const OUTAGE_MS = 8000; // the lease time is 3 s (the default)

// Worker a (through `via`, a NATS url) holds every partition when 6 live
// sessions of ~10 s start; worker b joins (and so takes nothing while they
// run); 3 s in, fault() cuts a off for OUTAGE_MS, then restore().
async function scenario(tag, { via, fault, restore, check = async () => {} }) {
  const port = await freePort();
  const ns = await startNats(port, { partitions: P });
  const c = await startClient(ns.url);
  const ws = [];
  let proxy;
  try {
    let aUrl = ns.url;
    if (via) {
      proxy = await FaultProxy.start({ port, log: () => {} });
      aUrl = `nats://127.0.0.1:${proxy.port}`;
    }
    const a = await startWorker(aUrl, ['--jetstream-partitions', String(P), '--port', '0']);
    ws.push(a);
    await until(() => a.held().size === P, 15000, 'worker a holds every partition');
    const list = Array.from({ length: 6 }, (_, i) => ({
      id: `${tag}-${i}`, k: i % 5, pcm: Buffer.concat([wavPcm(CLIPS[i % 5]), wavPcm(CLIPS[(i + 2) % 5])]),
    }));
    for (const s of list) c.send(s.id, { type: 'start' });
    let joined, faultAt;
    await streamLive(c, list, {
      at: [
        [5, () => { joined = startWorker(ns.url, ['--jetstream-partitions', String(P)]).then((b) => ws.push(b)); }],
        [30, () => { faultAt = Date.now(); fault(a, proxy); }],
      ],
    });
    await joined;
    const b = ws[1];
    // b takes a's partitions once a's leases expired, during the outage
    await until(() => b.held().size === P, OUTAGE_MS + faultAt - Date.now() - 500, 'worker b holds every partition during the outage');
    await sleep(Math.max(0, faultAt + OUTAGE_MS - Date.now()));
    restore(a, proxy);
    await until(() => list.every((s) => ofType(c.msgs(s.id), 'closed').length), 90000, 'every closed')
      .catch((e) => { throw new Error(`${e.message}\n${a.log().slice(-3000)}\n----\n${b.log().slice(-3000)}`); });
    // a is back on NATS (it renews again) before the verdict: what it held
    // back would have gone out by now
    await until(() => /reconnected to NATS|\(connected\)/.test(a.log()) || !via, 15000, 'a reconnected');
    await sleep(1500);
    for (const s of list) {
      checkSession(c.msgs(s.id), s);
      const got = finalText(c.msgs(s.id));
      const ref = `${TRUTH[s.k]} ${TRUTH[(s.k + 2) % 5]}`;
      assert.ok(rate(ref, got) < 0.5, `${s.id}: "${got}" (reference: "${ref}")`);
    }
    assert.match(a.log(), /lease of partition \d+ lost/);
    assert.match(b.log(), /session resumed from another worker/);
    assert.ok(a.alive(), 'a still runs');
    await check(a);
  } finally {
    await c.close().catch(() => {});
    for (const w of ws) {
      try { w.proc.kill('SIGCONT'); } catch {}
      await w.stop();
    }
    if (proxy) await proxy.close();
    await ns.stop();
  }
}

test('a worker cut off from NATS for longer than the lease time stops publishing for its partitions; the other worker continues its sessions with no duplicate sequence', async () => {
  await scenario('cut', {
    via: true,
    fault: (a, proxy) => { proxy.block(); proxy.cut(); },
    restore: (a, proxy) => proxy.unblock(),
    check,
  });
});

// what the cut-off worker says about it: a log line and a counter per partition.
// The line is "not renewed for N s (cut off from NATS" when the lease timer
// sees the disconnect; when the cut catches the timer inside a renewal (a
// JetStream request waits up to its 5 s timeout, twice), the loss is found
// by the first renewal after the reconnect instead. Output was held from
// the lease deadline on either way (lease_valid), and both count the expiry.
async function check(a) {
  assert.match(a.log(), /not renewed for \d+\.\d s \(cut off from NATS|lease of partition \d+ lost \(another worker holds it, or the server was unreachable/);
  const hp = Number(a.stdout().match(/health on http:\/\/127\.0\.0\.1:(\d+)\//)?.[1]);
  assert.ok(hp, a.stdout());
  const metrics = await (await fetch(`http://127.0.0.1:${hp}/metrics`)).text();
  const exp = [...metrics.matchAll(/^hark_js_lease_expiries_total\{partition="\d+"\} (\d+)$/mg)].map((m) => Number(m[1]));
  assert.equal(exp.reduce((x, y) => x + y, 0), P, metrics);
}

test('a worker frozen (SIGSTOP) for longer than the lease time publishes nothing for the sessions the other worker took over once it runs again', async () => {
  await scenario('stop', {
    via: false,
    fault: (a) => a.proc.kill('SIGSTOP'),
    restore: (a) => a.proc.kill('SIGCONT'),
  });
});
