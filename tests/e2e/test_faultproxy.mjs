// Self-test of the fault-injecting proxy (faultproxy.mjs): bytes pass
// unchanged; a cut lands exactly at the byte offset asked for, in the
// direction asked for, and both peers see a reset (not a clean FIN); random
// cuts are reproducible from their seed; a stall forwards nothing and closes
// nothing until unstalled. Plain TCP peers on 127.0.0.1, so every byte count
// is exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { FaultProxy, prng } from './faultproxy.mjs';
import { sleep } from './lib.mjs';

// A TCP server that records what each connection receives and how it ended,
// and can send to the latest connection.
async function startPeer() {
  const peer = { conns: [] };
  peer.server = net.createServer((s) => {
    const c = { sock: s, got: Buffer.alloc(0), end: null };
    s.on('data', (d) => { c.got = Buffer.concat([c.got, d]); });
    s.on('error', (e) => { c.end = c.end || e.code; });
    s.on('end', () => { c.end = c.end || 'FIN'; });
    s.on('close', () => { c.end = c.end || 'close'; });
    peer.conns.push(c);
  });
  peer.server.listen(0, '127.0.0.1');
  await once(peer.server, 'listening');
  peer.port = peer.server.address().port;
  return peer;
}

async function dial(port) {
  const s = net.connect({ host: '127.0.0.1', port });
  const c = { sock: s, got: Buffer.alloc(0), end: null };
  s.on('data', (d) => { c.got = Buffer.concat([c.got, d]); });
  s.on('error', (e) => { c.end = c.end || e.code; });
  s.on('end', () => { c.end = c.end || 'FIN'; });
  s.on('close', () => { c.end = c.end || 'close'; });
  await once(s, 'connect');
  return c;
}

async function until(what, fn, ms = 5000) {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(5);
  }
}

const pattern = (n, salt = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + salt) & 255));

async function setup(t) {
  const peer = await startPeer();
  const proxy = await FaultProxy.start({ port: peer.port, log: (s) => t.diagnostic(s) });
  t.after(async () => {
    await proxy.close();
    peer.server.close();
  });
  return { peer, proxy };
}

test('pass-through: every byte both ways, counters', async (t) => {
  const { peer, proxy } = await setup(t);
  const c = await dial(proxy.port);
  const up = pattern(200000, 1), down = pattern(150000, 2);
  c.sock.write(up);
  await until('server side', () => peer.conns.length === 1 && peer.conns[0].got.length === up.length);
  peer.conns[0].sock.write(down);
  await until('client side', () => c.got.length === down.length);
  assert.ok(peer.conns[0].got.equals(up));
  assert.ok(c.got.equals(down));
  assert.equal(proxy.counters.bytesUp, up.length);
  assert.equal(proxy.counters.bytesDown, down.length);
  assert.equal(proxy.counters.connections, 1);
  // A clean end passes as a clean end.
  c.sock.end();
  await until('FIN at the server', () => peer.conns[0].end === 'FIN');
  assert.equal(proxy.counters.cuts, 0);
});

test('cut now: both peers get a reset', async (t) => {
  const { peer, proxy } = await setup(t);
  const c = await dial(proxy.port);
  c.sock.write('hello');
  await until('server got hello', () => peer.conns[0]?.got.length === 5);
  proxy.cut();
  await until('client reset', () => c.end !== null);
  await until('server reset', () => peer.conns[0].end !== null);
  assert.equal(c.end, 'ECONNRESET');
  assert.equal(peer.conns[0].end, 'ECONNRESET');
  assert.equal(proxy.counters.cuts, 1);
});

for (const dir of ['up', 'down']) {
  test(`cut after N bytes ${dir}: exactly N more bytes pass, mid-write`, async (t) => {
    const { peer, proxy } = await setup(t);
    const c = await dial(proxy.port);
    await until('accepted', () => peer.conns.length === 1);
    const srv = peer.conns[0];
    const [from, to] = dir === 'up' ? [c, srv] : [srv, c];
    from.sock.write(pattern(1000)); // before the cut is armed: passes whole
    await until('first 1000', () => to.got.length === 1000);
    proxy.cut({ after: 12345, dir });
    // One large write: the cut falls inside it (inside a "frame").
    from.sock.write(pattern(100000, 3));
    await until('both ends reset', () => c.end !== null && srv.end !== null);
    assert.equal(to.got.length, 1000 + 12345);
    assert.ok(to.got.subarray(1000).equals(pattern(100000, 3).subarray(0, 12345)));
    assert.equal(c.end, 'ECONNRESET');
    assert.equal(srv.end, 'ECONNRESET');
    assert.deepEqual(proxy.cutLog.map((x) => [x.dir, x.at]), [[dir, 1000 + 12345]]);
  });
}

test('random cuts: reproducible from the seed, land where planned', async (t) => {
  const runs = [];
  for (let run = 0; run < 2; run++) {
    const { peer, proxy } = await setup(t);
    proxy.randomCuts({ seed: 4242, minBytes: 100, maxBytes: 5000, dirs: ['up'] });
    const got = [];
    for (let i = 0; i < 4; i++) {
      const c = await dial(proxy.port);
      await until('accepted', () => peer.conns.length === i + 1);
      c.sock.write(pattern(20000, i));
      await until('cut', () => c.end !== null && peer.conns[i].end !== null);
      got.push(peer.conns[i].got.length);
    }
    assert.deepEqual(got, proxy.cutLog.map((x) => x.at));
    runs.push(got);
  }
  assert.deepEqual(runs[0], runs[1]);
  assert.ok(runs[0].every((n) => n >= 100 && n <= 5000), String(runs[0]));
  assert.ok(new Set(runs[0]).size > 1, 'offsets do not vary: ' + runs[0]);
  // The generator itself: same seed, same numbers.
  const a = prng(7), b = prng(7);
  assert.deepEqual([a(), a(), a()], [b(), b(), b()]);
});

test('stall: silence both ways, nothing closed; new connections pass; unstall resumes', async (t) => {
  const { peer, proxy } = await setup(t);
  const c = await dial(proxy.port);
  c.sock.write('x');
  await until('accepted', () => peer.conns[0]?.got.length === 1);
  proxy.stall();
  c.sock.write('during the stall');
  peer.conns[0].sock.write('reply during the stall');
  await sleep(500);
  assert.equal(peer.conns[0].got.length, 1, 'bytes passed up during a stall');
  assert.equal(c.got.length, 0, 'bytes passed down during a stall');
  assert.equal(c.end, null);
  assert.equal(peer.conns[0].end, null);
  // A reconnecting client gets through while the old connection hangs.
  const c2 = await dial(proxy.port);
  c2.sock.write('new');
  await until('second connection forwards', () => peer.conns[1]?.got.toString() === 'new');
  proxy.unstall();
  await until('stalled bytes delivered', () =>
    peer.conns[0].got.toString() === 'xduring the stall' && c.got.toString() === 'reply during the stall');
  assert.equal(proxy.counters.stalls, 1);
  c.sock.destroy();
  c2.sock.destroy();
});

test('block: new connections are reset while blocked, pass again after', async (t) => {
  const { peer, proxy } = await setup(t);
  proxy.block();
  const s = net.connect({ host: '127.0.0.1', port: proxy.port });
  const [err] = await once(s, 'error');
  assert.equal(err.code, 'ECONNRESET');
  assert.equal(peer.conns.length, 0);
  assert.equal(proxy.counters.refused, 1);
  proxy.unblock();
  const c = await dial(proxy.port);
  c.sock.write('ok');
  await until('forwarded', () => peer.conns[0]?.got.toString() === 'ok');
  c.sock.destroy();
});
