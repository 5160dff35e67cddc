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
  streamLive, checkSession, TRUTH, rate, results,
} from './jetstream_lib.mjs';
import { FaultProxy } from './faultproxy.mjs';

const P = 2;
const OUTAGE_MS = 8000; // the lease time is 3 s (the default)

// Worker a (through `via`, a NATS url) holds every partition when 6 live
// sessions of ~10 s start; worker b joins (and so takes nothing while they
// run); 3 s in, fault() cuts a off for OUTAGE_MS, then restore().
async function scenario(tag, { via, fault, restore, reconnects = !!via, stale = false, check = async () => {} }) {
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
    // (a stall ends without a reconnect: the connection just flows again)
    await until(() => /reconnected to NATS|\(connected\)/.test(a.log()) || !reconnects, 15000, 'a reconnected');
    await sleep(1500);
    let late = 0, ahead = 0;
    const kept = new Map();
    for (const s of list) {
      // Every result says which ownership it came from (owner_epoch): a's,
      // then b's, larger, from the hand-off on.
      const epochs = results(c.msgs(s.id)).map((m) => m.owner_epoch);
      assert.ok(epochs.every((e) => Number.isInteger(e) && e > 0), `${s.id}: owner_epoch ${epochs}`);
      if (stale) {
        // a result a wrote before its deadline may still be on the wire when
        // the stall ends (see the test below): it arrives after b's results,
        // and a client drops a result of an older owner than one it already
        // has (docs/nats.md). The rest is the whole contract.
        const msgs = [], seen = new Set();
        let epoch = 0;
        for (const m of c.msgs(s.id)) {
          if (m.type === undefined && m.owner_epoch < epoch) {
            late++;
            if (!seen.has(m.sequence)) ahead++; // a rule by sequence alone would take it
            continue;
          }
          if (m.type === undefined) { epoch = m.owner_epoch; seen.add(m.sequence); }
          msgs.push(m);
        }
        checkSession(msgs, s);
        kept.set(s.id, msgs);
      } else {
        checkSession(c.msgs(s.id), s);
      }
      const own = results(kept.get(s.id) || c.msgs(s.id)).map((m) => m.owner_epoch);
      own.forEach((e, i) => assert.ok(i === 0 || e >= own[i - 1], `${s.id}: owner_epoch never goes down: ${own}`));
      const distinct = [...new Set(own)];
      assert.ok(distinct.length <= 2, `${s.id}: one hand-off: ${distinct}`);
      const got = finalText(kept.get(s.id) || c.msgs(s.id));
      const ref = `${TRUTH[s.k]} ${TRUTH[(s.k + 2) % 5]}`;
      assert.ok(rate(ref, got) < 0.5, `${s.id}: "${got}" (reference: "${ref}")`);
    }
    if (stale) console.log(`# ${late} result(s) of a arrived after the stall, after b's (a lower owner_epoch); ${ahead} with a number b had not sent yet`);
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

// what the cut-off worker says about it, during the outage: a log line and
// a counter per partition. The lease thread's requests wait at most the lease
// margin (lease_wait_ms, 600 ms at the 3 s default), so a cut or a stall that
// catches it inside a renewal still finds the loss at the deadline, not after
// the reconnect (with the 5 s JetStream timeout it could only after it).
async function check(a) {
  const log = a.log();
  const lost = log.search(/lease of partition \d+ lost: not renewed for \d+\.\d s \(cut off from NATS, or no answer/);
  assert.ok(lost >= 0, log.slice(-3000));
  assert.doesNotMatch(log.slice(0, lost), /reconnected to NATS/, 'the loss is found during the outage, not after it');
  assert.doesNotMatch(log, /lost \(another worker holds it\)/);
  const hp = Number(a.stdout().match(/health on http:\/\/127\.0\.0\.1:(\d+)\//)?.[1]);
  assert.ok(hp, a.stdout());
  const metrics = await (await fetch(`http://127.0.0.1:${hp}/metrics`)).text();
  const exp = [...metrics.matchAll(/^hark_js_lease_expiries_total\{partition="\d+"\} (\d+)$/mg)].map((m) => Number(m[1]));
  assert.equal(exp.reduce((x, y) => x + y, 0), P, metrics);
}

// A half-open stall: nothing flows, nothing closes, nats.c notices only
// after two missed pings (10-15 s), so the worker sees a connection that is
// up and requests that get no answer. Its lease requests give up after the
// lease margin and it drops the leases at their deadline, during the stall
// (check). What it published in the instant before the stall (results of
// the audio it had) is still on the wire when the stall ends and reaches the
// client after the new owner's results, some with numbers the new owner used
// too (its record did not yet count them): an older owner_epoch marks them
// (docs/nats.md), and stale: drops them before checking the contract.
test('a worker whose NATS connection stalls (half-open: nothing flows, nothing closes) for longer than the lease time gives its partitions up during the stall; the other worker continues its sessions', async () => {
  await scenario('stall', {
    via: true,
    fault: (a, proxy) => proxy.stall(),
    restore: (a, proxy) => proxy.unstall(),
    reconnects: false,
    stale: true,
    check,
  });
});

test('a worker frozen (SIGSTOP) for longer than the lease time publishes nothing for the sessions the other worker took over once it runs again', async () => {
  await scenario('stop', {
    via: false,
    fault: (a) => a.proc.kill('SIGSTOP'),
    restore: (a) => a.proc.kill('SIGCONT'),
  });
});
