// hark worker --jetstream (docs/nats.md "JetStream"): workers that join and
// leave (SIGTERM) under live sessions. Helpers: jetstream_lib.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  HARK, CLIPS, wavPcm, sleep, freePort, startNats, startWorker, startClient, until, flushed, results,
  ofType, finalText, streamLive, checkSession, TRUTH, rate,
} from './jetstream_lib.mjs';

test('elastic: workers that join take idle partitions without disturbing open sessions; SIGTERM hands a worker\'s sessions over at once', async () => {
  const P = 6;
  const port = await freePort();
  const ns = await startNats(port, { partitions: P });
  const c = await startClient(ns.url);
  const ws = [];
  try {
    ws.push(await startWorker(ns.url, ['--jetstream-partitions', String(P)]));
    await until(() => ws[0].held().size === P, 15000, 'one worker holds every partition');
    // 8 live sessions of ~10 s on the one worker; two more workers join 2 s in
    const mk = (tag) => Array.from({ length: 8 }, (_, i) => ({
      id: `${tag}-${i}`, k: i % 5, pcm: Buffer.concat([wavPcm(CLIPS[i % 5]), wavPcm(CLIPS[(i + 2) % 5])]),
    }));
    const list = mk('join');
    for (const s of list) c.send(s.id, { type: 'start' });
    let joined;
    await streamLive(c, list, {
      at: [[20, () => { joined = Promise.all([startWorker(ns.url, ['--jetstream-partitions', String(P)]),
        startWorker(ns.url, ['--jetstream-partitions', String(P)])]).then((x) => ws.push(...x)); }]],
    });
    await joined;
    await until(() => list.every((s) => ofType(c.msgs(s.id), 'closed').length), 90000, 'every closed');
    for (const s of list) checkSession(c.msgs(s.id), s);
    for (const w of ws) assert.doesNotMatch(w.log(), /session resumed|handed over/, 'no open session moved');
    // once idle, the partitions spread: two each
    await until(() => ws.every((w) => w.held().size === 2), 30000, 'two partitions per worker');
    // the ownership table: every partition, three owners
    const table = spawnSync(HARK, ['cluster', '--nats-url', ns.url], { encoding: 'utf8', timeout: 30000 });
    assert.equal(table.status, 0, table.stderr);
    const owners = [...table.stdout.matchAll(/^(\d+)\s+(\S+)\s+\d+\s+\d+$/gm)];
    assert.equal(owners.length, P, table.stdout);
    assert.equal(new Set(owners.map((m) => m[2])).size, 3, table.stdout);
    assert.match(table.stdout, /^workers: \S+ \S+ \S+$/m);
    assert.match(table.stdout, /^sessions: 0 open, 8 closed/m);

    // SIGTERM of a worker with open sessions: they continue on the others,
    // which take its partitions at their next renewal (no lease expiry)
    const list2 = mk('term');
    for (const s of list2) c.send(s.id, { type: 'start' });
    const victim = ws[1];
    let code, termAt;
    await streamLive(c, list2, { at: [[30, async () => { termAt = Date.now(); code = victim.stop('SIGTERM'); }]] });
    assert.equal(await code, 0, victim.log().slice(-2000));
    await until(() => list2.every((s) => ofType(c.msgs(s.id), 'closed').length), 90000, 'every closed after SIGTERM')
      .catch((e) => {
        const open = list2.filter((s) => !ofType(c.msgs(s.id), 'closed').length).map((s) => s.id);
        throw new Error(`${e.message}: ${open} still open\n${ws.map((w) => w.log().split('\n').filter((l) => open.some((id) => l.includes(id)) || /partition|lease/.test(l)).join('\n')).join('\n----\n')}`);
      });
    for (const s of list2) checkSession(c.msgs(s.id), s);
    assert.match(victim.log(), /released \d+ partition lease/);
    const others = ws.filter((w) => w !== victim);
    assert.ok(others.reduce((a, w) => a + w.held().size, 0) === P, 'the others hold every partition');
  } finally {
    await c.close().catch(() => {});
    for (const w of ws) await w.stop();
    await ns.stop();
  }
});

// A session handed over before it had any result: without a record it was
// new to the taker, admitted by load rather than as a live session, and on a
// busy taker refused (busy), its input acked away and its closed never sent.
test('SIGTERM before a session\'s first result: its record exists from the start, so the taker continues it as a live session in its start state', async () => {
  const P = 2;
  const port = await freePort();
  const ns = await startNats(port, { partitions: P });
  const c = await startClient(ns.url);
  const ws = [];
  try {
    ws.push(await startWorker(ns.url, ['--jetstream-partitions', String(P)]));
    await until(() => ws[0].held().size === P, 15000, 'one worker holds every partition');
    const list = Array.from({ length: 4 }, (_, i) => ({ id: `early-${i}`, k: i, pcm: wavPcm(CLIPS[i]) }));
    // early-3 starts responding with interrupts off: every result says so
    for (const s of list) {
      c.send(s.id, s.id === 'early-3' ? { type: 'start', state: 'responding', interrupt_detection: false } : { type: 'start' });
    }
    await until(() => list.every((s) => ws[0].log().includes(`[${s.id}] session started`)), 15000, 'every started');
    const kv = await c.nc.jetstream().views.kv('hark_sessions_ai_voice_stream', { bindOnly: true });
    for (const s of list) {
      let rec = '';
      for (let i = 0; i < 100 && !rec; i++) {
        const e = await kv.get(s.id);
        if (e && e.value.length) rec = new TextDecoder().decode(e.value);
        else await sleep(50);
      }
      assert.match(rec, /^hark-js1 seq=0 seg=0 ab=0 as=0 st=0 cl=0$/, `${s.id}: a record before any result`);
    }
    ws.push(await startWorker(ns.url, ['--jetstream-partitions', String(P)]));
    const [a, b] = ws;
    assert.equal(await a.stop('SIGTERM'), 0, a.log().slice(-2000));
    assert.match(a.log(), /\[early-0\] session handed over to another worker/);
    await until(() => b.held().size === P, 30000, 'the other worker holds every partition');
    await streamLive(c, list);
    await until(() => list.every((s) => ofType(c.msgs(s.id), 'closed').length), 90000, 'every closed');
    for (const s of list) {
      checkSession(c.msgs(s.id), s);
      assert.match(b.log(), new RegExp(`\\[${s.id}\\] session resumed from another worker at 0\\.00 s, sequence 0`));
    }
    const st = results(c.msgs('early-3')).map((r) => r.state);
    assert.ok(st.every((x) => x === 'responding'), `early-3 stays responding: ${st}`);
    assert.ok(results(c.msgs('early-0')).every((r) => r.state === 'listening'));
    assert.doesNotMatch(b.log(), /busy|bad_state/);
  } finally {
    await c.close().catch(() => {});
    for (const w of ws) await w.stop();
    await ns.stop();
  }
});
