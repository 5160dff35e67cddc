// A fault-injecting TCP proxy for end-to-end tests: it sits on 127.0.0.1
// between a real client and a real server and forwards bytes both ways until
// the test asks for a fault.
//
//   const proxy = await FaultProxy.start({ port: server.port });
//   client connects to proxy.url (ws://127.0.0.1:PORT) instead of server.url
//   proxy.cut()                          reset every open connection now (RST
//                                        to both sides, nothing flushed)
//   proxy.cut({ after: 100, dir: 'down' })  ... after 100 more bytes towards
//                                        the client (mid-frame, mid-message)
//   proxy.randomCuts({ seed, minBytes, maxBytes })  every connection, the ones
//                                        open now and the ones to come, is cut
//                                        at a random byte offset of a random
//                                        direction; the seed makes the offsets
//                                        reproducible (printed to stderr)
//   proxy.stall()                        half-open: stop forwarding in both
//                                        directions without closing anything;
//                                        the peers see silence. New connections
//                                        still pass (a client that reconnects
//                                        gets through). unstall() resumes.
//   proxy.block() / unblock()            an outage: new connections are reset
//                                        as soon as they arrive (server down)
//   proxy.counters                       connections, bytes, cuts, stalls
//   FaultProxy.start({ port, tap })      tap(dir, data): every chunk forwarded
//                                        (to see what a client sent upstream)
//   await proxy.close()
//
// "up" is client -> server, "down" is server -> client. A cut writes exactly
// the bytes before the cut point, waits until they are handed to the kernel,
// then (10 ms later, so the RST does not arrive together with the data)
// resets both sockets (socket.resetAndDestroy(): SO_LINGER 0, RST), so the
// peer receives a prefix of a frame and then ECONNRESET.
import net from 'node:net';

// mulberry32: a small seeded PRNG, enough for reproducible fault positions.
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Conn {
  constructor(proxy, id, client) {
    this.proxy = proxy;
    this.id = id;
    this.client = client;
    this.server = net.connect({ host: proxy.host, port: proxy.targetPort });
    this.bytes = { up: 0, down: 0 };
    this.plans = []; // { dir, left }: cut after `left` more bytes in `dir` (first one due wins)
    this.stalled = false;
    this.dead = false;
    this.client.setNoDelay(true);
    this.server.setNoDelay(true);
    // Bytes from the client before the server connection is up are queued by
    // net.Socket itself (writes before 'connect' are buffered).
    this.client.on('data', (d) => this.forward('up', d));
    this.server.on('data', (d) => this.forward('down', d));
    const end = () => this.finish();
    for (const s of [this.client, this.server]) {
      s.on('error', end);
      s.on('close', end);
    }
    // A clean FIN from one side is passed on as a FIN.
    this.client.on('end', () => !this.dead && this.server.end());
    this.server.on('end', () => !this.dead && this.client.end());
  }

  forward(dir, data) {
    if (this.dead) return;
    const to = dir === 'up' ? this.server : this.client;
    const mine = this.plans.filter((p) => p.dir === dir || p.dir === 'any');
    const due = mine.filter((p) => data.length >= p.left).sort((a, b) => a.left - b.left)[0];
    if (due) {
      const head = data.subarray(0, due.left);
      this.bytes[dir] += head.length;
      this.proxy.counters[dir === 'up' ? 'bytesUp' : 'bytesDown'] += head.length;
      const cut = { conn: this.id, dir, at: this.bytes[dir], up: this.bytes.up, down: this.bytes.down };
      this.plans = [];
      // Stop reading both sides now: nothing after the cut point may pass.
      this.client.pause();
      this.server.pause();
      this.dead = true;
      // The reset waits a moment after the bytes reach the kernel: a RST
      // that arrives together with data can be reported to the peer as a
      // plain EOF (Linux), and the point is an abrupt reset.
      if (head.length) to.write(head, () => setTimeout(() => this.reset(cut), 10));
      else this.reset(cut);
      return;
    }
    for (const p of mine) p.left -= data.length;
    if (this.proxy.tap) this.proxy.tap(dir, data);
    this.bytes[dir] += data.length;
    this.proxy.counters[dir === 'up' ? 'bytesUp' : 'bytesDown'] += data.length;
    to.write(data);
  }

  cut(after, dir) {
    if (this.dead) return;
    if (after <= 0) {
      this.dead = true;
      this.reset({ conn: this.id, dir, at: this.bytes[dir === 'down' ? 'down' : 'up'], up: this.bytes.up, down: this.bytes.down });
      return;
    }
    this.plans.push({ dir, left: after });
  }

  reset(cut) {
    this.dead = true;
    this.proxy.counters.cuts++;
    this.proxy.cutLog.push(cut);
    for (const s of [this.client, this.server]) {
      if (s.destroyed) continue;
      // A socket still connecting cannot be reset yet; destroy it instead.
      if (s.connecting) s.destroy();
      else s.resetAndDestroy();
    }
    this.finish();
  }

  stall(on) {
    if (this.dead) return;
    this.stalled = on;
    if (on) {
      this.client.pause();
      this.server.pause();
    } else {
      this.client.resume();
      this.server.resume();
    }
  }

  finish() {
    if (this.proxy.conns.has(this)) {
      this.proxy.conns.delete(this);
      this.dead = true;
      if (!this.client.destroyed) this.client.destroy();
      if (!this.server.destroyed) this.server.destroy();
      this.proxy.emitClose(this);
    }
  }
}

export class FaultProxy {
  // Starts a proxy to 127.0.0.1:port (or host). Resolves when it listens.
  static async start({ port, host = '127.0.0.1', log = (s) => process.stderr.write(s + '\n'), tap = null } = {}) {
    const p = new FaultProxy(port, host, log);
    p.tap = tap;
    await new Promise((resolve, reject) => {
      p.listener.once('error', reject);
      p.listener.listen(0, '127.0.0.1', resolve);
    });
    p.port = p.listener.address().port;
    p.url = `ws://127.0.0.1:${p.port}`;
    return p;
  }

  constructor(targetPort, host, log) {
    this.targetPort = targetPort;
    this.host = host;
    this.log = log;
    this.conns = new Set();
    this.nextId = 0;
    this.random = null; // { rnd, minBytes, maxBytes, dirs }
    this.counters = { connections: 0, open: 0, bytesUp: 0, bytesDown: 0, cuts: 0, stalls: 0, refused: 0 };
    this.cutLog = []; // { conn, dir, at, up, down } per cut
    this.closeWaiters = [];
    this.blocked = false;
    this.listener = net.createServer((sock) => {
      if (this.blocked) {
        this.counters.refused++;
        sock.on('error', () => {});
        sock.resetAndDestroy();
        return;
      }
      const c = new Conn(this, this.nextId++, sock);
      this.conns.add(c);
      this.counters.connections++;
      this.counters.open = this.conns.size;
      if (this.random) this.planRandom(c);
    });
  }

  // Retargets the proxy (e.g. a restarted server on another port).
  setTarget(port) {
    this.targetPort = port;
  }

  // Cuts every open connection: now, or after `after` more bytes in direction
  // dir ('up', 'down' or 'any').
  cut({ after = 0, dir = 'any' } = {}) {
    for (const c of [...this.conns]) c.cut(after, dir);
  }

  // From now on, cuts each connection (open or new) at a random offset: for
  // each direction of dirs a random count between minBytes and maxBytes more
  // bytes; the first direction to reach its count cuts.
  // Returns the seed, which is printed so that a failing run can be replayed.
  // ranges: { up: [min, max], down: [min, max] } overrides the range per direction.
  randomCuts({ seed = (Math.random() * 2 ** 32) >>> 0, minBytes = 1, maxBytes = 65536, dirs = ['up', 'down'], ranges = {} } = {}) {
    const range = Object.fromEntries(dirs.map((d) => [d, ranges[d] || [minBytes, maxBytes]]));
    this.log(`faultproxy: random cuts, seed ${seed} (${dirs.map((d) => d + ' ' + range[d].join('..')).join(', ')} bytes)`);
    this.random = { rnd: prng(seed), range, dirs };
    for (const c of this.conns) this.planRandom(c);
    return seed;
  }

  stopRandomCuts() {
    this.random = null;
    for (const c of this.conns) c.plans = [];
  }

  planRandom(c) {
    const { rnd, range, dirs } = this.random;
    for (const dir of dirs) {
      const [lo, hi] = range[dir];
      c.cut(lo + Math.floor(rnd() * (hi - lo + 1)), dir);
    }
  }

  // Half-open: every open connection stops forwarding both ways; nothing is
  // closed. Connections opened later are not stalled.
  stall() {
    for (const c of this.conns) c.stall(true);
    this.counters.stalls++;
  }

  // An outage: connections that arrive are reset at once, as when nothing
  // listens. Open connections are not touched (cut() them too).
  block() {
    this.blocked = true;
  }

  unblock() {
    this.blocked = false;
  }

  unstall() {
    for (const c of this.conns) c.stall(false);
  }

  // Resolves when a connection ends (cut, closed by a peer); bounded.
  waitClose(ms = 10000) {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('faultproxy: no connection closed within ' + ms + ' ms')), ms);
      this.closeWaiters.push((c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
  }

  emitClose(c) {
    this.counters.open = this.conns.size;
    const w = this.closeWaiters;
    this.closeWaiters = [];
    for (const f of w) f(c);
  }

  async close() {
    for (const c of [...this.conns]) c.cut(0, 'any');
    await new Promise((resolve) => this.listener.close(resolve));
  }
}
