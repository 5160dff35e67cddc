// The server's edge as a hostile or careless client meets it, against a real
// `hark serve`: the address it listens on (read back from /proc/net/tcp and
// tcp6), browser origins on WebSocket upgrades and the batch endpoints
// (403, CORS, preflight), requests at and past the HTTP parser's limits
// (long URIs, many query arguments, %00), header values that must stay
// printable, oversized credentials, batch parameters past lws' argument
// buffer, and methods the demo assets do not take. Clients: the `ws` npm
// package, curl and raw sockets.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { DeepgramClient } from '@deepgram/sdk';
import { CLIPS, startServer, wavPcm, curl, sleep, wavOf } from './lib.mjs';

let tmp, plain, keyed, listed, any, wav1s;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hark-edge-'));
  const pcm = wavPcm(CLIPS[1]).subarray(0, 32000); // one second at 16 kHz s16
  wav1s = path.join(tmp, 'one-second.wav');
  writeFileSync(wav1s, wavOf(pcm));
  [plain, keyed, listed, any] = await Promise.all([
    startServer([]),
    startServer(['--api-keys', 'edge-key']),
    startServer(['--allowed-origins', ' https://app.example.com/ ,http://b.example:8000']),
    startServer(['--allowed-origins', '*']),
  ]);
});
after(async () => {
  await Promise.all([plain, keyed, listed, any].map((s) => s?.stop()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

// Listening TCP sockets on a port, from /proc/net/tcp and tcp6:
// [{ family: 4|6, addr }] with addr printed as ss does ("127.0.0.1", "::1").
function listeners(port) {
  const found = [];
  for (const [file, family] of [['/proc/net/tcp', 4], ['/proc/net/tcp6', 6]]) {
    let text;
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4 || f[3] !== '0A') continue; // LISTEN
      const [hex, p] = f[1].split(':');
      if (parseInt(p, 16) !== port) continue;
      // each 32-bit word is in host (little-endian) byte order
      const bytes = [];
      for (let w = 0; w < hex.length; w += 8)
        for (let b = 6; b >= 0; b -= 2) bytes.push(parseInt(hex.slice(w + b, w + b + 2), 16));
      let addr;
      if (family === 4) addr = bytes.join('.');
      else {
        const groups = [];
        for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
        addr = groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
      }
      found.push({ family, addr });
    }
  }
  return found;
}

// Sends raw bytes, reads one response (headers + Content-Length body, or
// until the server closes). Resolves { status, headers, raw, body, closed }
// where status is 0 when the server closed without answering.
function rawRequest(port, request, { host = '127.0.0.1', timeoutMs = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    let buf = Buffer.alloc(0), done = false;
    const finish = (closed) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return resolve({ status: 0, headers: {}, raw: buf, body: '', closed });
      const head = buf.subarray(0, end);
      const lines = head.toString('latin1').split('\r\n');
      const headers = {}, rawHeaders = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      // header values as bytes, to check what went on the wire
      let off = 0;
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) rawHeaders[l.slice(0, i).toLowerCase()] = head.subarray(off + i + 1, off + l.length);
        off += l.length + 2;
      }
      resolve({ status: Number(lines[0].split(' ')[1]), headers, rawHeaders, raw: buf,
        body: buf.subarray(end + 4).toString(), closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const m = buf.subarray(0, end).toString('latin1').match(/\r\ncontent-length:\s*(\d+)/i);
      if (m && buf.length >= end + 4 + Number(m[1])) finish(false);
    });
    sock.on('close', () => finish(true));
    sock.on('error', (e) => (done ? null : e.code === 'ECONNRESET' ? finish(true) : reject(e)));
    sock.write(request);
  });
}

const upgradeHeaders = (extra = '') =>
  'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' + extra;

// Opens a WebSocket; resolves { opened: true } or { status, body } of the
// refusal.
function tryWs(url, options = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    ws.on('open', () => { ws.close(); resolve({ opened: true }); });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ opened: false, status: res.statusCode, headers: res.headers, body }));
    });
    ws.on('error', (e) => resolve({ opened: false, error: e.message }));
  });
}

// ---------------------------------------------------------------- item 1: --host

for (const [host, family, addr] of [
  ['127.0.0.1', 4, '127.0.0.1'],
  ['0.0.0.0', 4, '0.0.0.0'],
  ['::1', 6, '::1'],
  ['::', 6, '::'],
]) {
  test(`--host ${host} listens on ${addr} only`, async (t) => {
    const s = await startServer(['--host', host]);
    try {
      assert.deepEqual(listeners(s.port), [{ family, addr }]);
      // the printed URL works (IPv6 in brackets)
      const r = await curl(['-g', s.http + '/healthz']);
      assert.equal(r.status, 200);
      if (family === 6) {
        assert.match(s.http, /^http:\/\/\[::1\]:\d+$/);
        // IPv6-only: nothing answers on IPv4 loopback at that port
        await assert.rejects(rawRequest(s.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      }
    } finally {
      await s.stop();
    }
  });
}

test('--host that is no IP address is a start-up error', async () => {
  await assert.rejects(startServer(['--host', 'no-such-host.invalid']), /--host 'no-such-host.invalid' is not an IP address/);
});

// ---------------------------------------------------------------- item 3: origins

test('WebSocket upgrades: no Origin and the own origin pass, other origins get 403 before the upgrade', async () => {
  const own = `http://127.0.0.1:${plain.port}`;
  assert.deepEqual(await tryWs(plain.url + '/v1/stream'), { opened: true });
  assert.deepEqual(await tryWs(plain.url + '/v1/stream', { origin: own }), { opened: true });
  for (const p of ['/v1/stream', '/v1/listen']) {
    const r = await tryWs(plain.url + p, { origin: 'http://evil.example' });
    assert.equal(r.opened, false);
    assert.equal(r.status, 403, JSON.stringify(r));
    const body = JSON.parse(r.body);
    assert.match(JSON.stringify(body), /origin 'http:\/\/evil.example' is not allowed/);
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  }
  // same host, other port or scheme: another origin
  for (const o of [`http://127.0.0.1:${plain.port + 1}`, `https://127.0.0.1:${plain.port}`, 'null'])
    assert.equal((await tryWs(plain.url + '/v1/stream', { origin: o })).status, 403, o);
});

test('--allowed-origins lists origins (trimmed, case-insensitive), * allows any', async () => {
  for (const o of ['https://app.example.com', 'HTTPS://APP.example.com', 'http://b.example:8000'])
    assert.deepEqual(await tryWs(listed.url + '/v1/stream', { origin: o }), { opened: true }, o);
  for (const o of ['https://app.example.com.evil', 'http://b.example', 'https://app.example'])
    assert.equal((await tryWs(listed.url + '/v1/stream', { origin: o })).status, 403, o);
  // the own origin always passes (the demo page)
  assert.deepEqual(await tryWs(listed.url + '/v1/stream', { origin: `http://127.0.0.1:${listed.port}` }), { opened: true });
  assert.deepEqual(await tryWs(any.url + '/v1/listen', { origin: 'https://anything.example' }), { opened: true });
});

test('batch endpoints: CORS for allowed origins, 403 without CORS headers for others', async () => {
  const post = (srv, origin, p = '/v1/listen') => curl(['-X', 'POST', '-H', 'Content-Type: audio/wav',
    ...(origin ? ['-H', `Origin: ${origin}`] : []), '--data-binary', '@' + wav1s, srv.http + p]);
  const ok = await post(listed, 'https://app.example.com');
  assert.equal(ok.status, 200, ok.body);
  assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com');
  assert.equal(ok.headers.vary, 'Origin');
  assert.match(ok.headers['access-control-expose-headers'], /dg-request-id/);
  const none = await post(listed, null);
  assert.equal(none.status, 200);
  assert.equal(none.headers['access-control-allow-origin'], undefined);
  for (const p of ['/v1/listen', '/v1/audio/transcriptions']) {
    const bad = await post(listed, 'http://evil.example', p);
    assert.equal(bad.status, 403, bad.body);
    assert.equal(bad.headers['access-control-allow-origin'], undefined);
    assert.match(bad.body, /origin 'http:\/\/evil.example' is not allowed/);
  }
});

test('OPTIONS preflight: 204 with methods and headers for allowed origins (no key needed), 403 for others', async () => {
  for (const srv of [listed, keyed]) {
    const origin = srv === listed ? 'https://app.example.com' : `http://127.0.0.1:${keyed.port}`;
    const r = await curl(['-X', 'OPTIONS', '-H', `Origin: ${origin}`, '-H', 'Access-Control-Request-Method: POST',
      '-H', 'Access-Control-Request-Headers: authorization, content-type', srv.http + '/v1/listen']);
    assert.equal(r.status, 204, r.body);
    assert.equal(r.headers['access-control-allow-origin'], origin);
    assert.match(r.headers['access-control-allow-methods'], /POST/);
    assert.match(r.headers['access-control-allow-headers'], /Authorization/);
    assert.match(r.headers['access-control-allow-headers'], /Content-Type/);
    assert.equal(r.headers.vary, 'Origin');
  }
  const bad = await curl(['-X', 'OPTIONS', '-H', 'Origin: http://evil.example', '-H', 'Access-Control-Request-Method: POST',
    listed.http + '/v1/audio/transcriptions']);
  assert.equal(bad.status, 403);
  assert.equal(bad.headers['access-control-allow-origin'], undefined);
});

// ---------------------------------------------------------------- item 14 (parts)

test('dg-error header stays printable ASCII when the message quotes raw bytes (language=%FF%FE)', async () => {
  const r = await rawRequest(plain.port, 'GET /v1/listen?language=%FF%FE HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
    upgradeHeaders() + '\r\n');
  assert.equal(r.status, 400, r.raw.toString('latin1'));
  const v = r.rawHeaders['dg-error'];
  assert.ok(v && v.length > 0, 'dg-error present');
  for (const b of v) assert.ok(b >= 0x20 && b < 0x7f, `byte 0x${b.toString(16)} in dg-error: ${v.toString('latin1')}`);
  assert.match(v.toString(), /language/);
  assert.match(v.toString(), /%FF%FE/);
});

test('an over-long credential is an invalid key, not a missing one', async () => {
  const long = 'k'.repeat(400);
  for (const scheme of ['Token', 'Bearer']) {
    const r = await curl(['-H', `Authorization: ${scheme} ${long}`, keyed.http + '/metrics']);
    assert.equal(r.status, 401);
    assert.match(r.body, /invalid API key/);
  }
  const ws = await tryWs(keyed.url + '/v1/stream', { protocol: undefined, headers: { 'Sec-WebSocket-Protocol': `token, ${long}` } });
  assert.equal(ws.status, 401, JSON.stringify(ws));
  assert.match(ws.body, /invalid API key/);
  // the right key still works, with more subprotocols after it
  const ok = await tryWs(keyed.url + '/v1/stream', ['token', 'edge-key', 'x-deepgram-session-id']);
  assert.deepEqual(ok, { opened: true });
});

test('batch callback= and utt_split= are read whatever their length (and after long arguments)', async () => {
  const post = (q) => curl(['-X', 'POST', '-H', 'Content-Type: audio/wav', '--data-binary', '@' + wav1s,
    plain.http + '/v1/listen?' + q]);
  const cb = await post('callback=' + encodeURIComponent('https://example.com/' + 'c'.repeat(100)));
  assert.equal(cb.status, 400, cb.body);
  assert.match(cb.body, /callback: asynchronous callbacks are not supported/);
  const after = await post('tag=' + 't'.repeat(100) + '&callback=https://example.com/');
  assert.equal(after.status, 400, after.body);
  const utt = await post('utt_split=' + '9'.repeat(70));
  assert.equal(utt.status, 400, utt.body);
  assert.match(utt.body, /utt_split: '9{60}\.\.\.' is not a number of seconds from 0.05 to 60/);
  // a long but valid value is honoured
  const good = await post('utterances=true&utt_split=0.' + '5'.repeat(70));
  assert.equal(good.status, 200, good.body);
});

test('demo assets and health answer GET/HEAD only: other methods get 405 with Allow', async () => {
  for (const m of ['DELETE', 'PUT', 'PATCH']) {
    for (const p of ['/', '/index.html', '/healthz', '/metrics']) {
      const r = await curl(['-X', m, plain.http + p]);
      assert.equal(r.status, 405, `${m} ${p}`);
      assert.equal(r.headers.allow, 'GET, HEAD, OPTIONS');
      assert.equal(r.json().error.code, 'method_not_allowed');
    }
  }
  const get = await curl(['-X', 'GET', plain.http + '/v1/listen']);
  assert.equal(get.status, 405);
  assert.equal(get.headers.allow, 'POST, OPTIONS');
  const head = await rawRequest(plain.port, 'HEAD / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', { timeoutMs: 2000 });
  assert.equal(head.status, 200);
  assert.ok(Number(head.headers['content-length']) > 0);
  assert.equal(head.body, '', 'HEAD has no body');
});

// ---------------------------------------------------------------- item 13: parser limits

test('a URI over 8 KB gets 414, headers over 16 KB or 40 lines 431, %00 400: JSON bodies, no silent hang-up', async () => {
  const long = await rawRequest(plain.port, `GET /v1/listen?tag=${'a'.repeat(9000)} HTTP/1.1\r\nHost: x\r\n` +
    upgradeHeaders() + '\r\n');
  assert.equal(long.status, 414, long.raw.toString().slice(0, 200));
  assert.match(JSON.parse(long.body).error.message, /longer than 8192 bytes/);
  assert.equal(JSON.parse(long.body).error.code, 'limit_exceeded');
  // the request line alone, still being sent: answered as soon as it is too long
  const big = await rawRequest(plain.port, `GET /healthz HTTP/1.1\r\nHost: x\r\nx-pad: ${'p'.repeat(17000)}\r\n\r\n`);
  assert.equal(big.status, 431);
  assert.match(JSON.parse(big.body).error.message, /larger than 16384 bytes/);
  let many = 'GET /healthz HTTP/1.1\r\nHost: x\r\n';
  for (let i = 0; i < 60; i++) many += `Accept-Language: x${i}\r\n`;
  const lines = await rawRequest(plain.port, many + '\r\n');
  assert.equal(lines.status, 431);
  assert.match(JSON.parse(lines.body).error.message, /more than 40 header lines/);
  for (const q of ['language=%00', 'a=%0', 'a=%zz']) {
    const r = await rawRequest(plain.port, `GET /v1/listen?${q} HTTP/1.1\r\nHost: x\r\n` + upgradeHeaders() + '\r\n');
    assert.equal(r.status, 400, q);
    assert.equal(JSON.parse(r.body).error.code, 'protocol_error');
  }
  // curl sees the same
  const c = await curl([`${plain.http}/healthz?a=${'b'.repeat(9000)}`]);
  assert.equal(c.status, 414);
  // and the server is fine afterwards
  assert.equal((await curl([plain.http + '/healthz'])).status, 200);
});

test('@deepgram/sdk live session with 100 keyterms on /v1/listen gets its words', async () => {
  const keyterm = Array.from({ length: 100 }, (_, i) => `term${i}`);
  keyterm[7] = 'young man';
  const dg = new DeepgramClient({ apiKey: 'unused', baseUrl: plain.http });
  const socket = await dg.listen.v1.connect({ model: 'nova-3', encoding: 'linear16', sample_rate: 16000, keyterm });
  const messages = [];
  socket.on('message', (m) => messages.push(m));
  const closed = new Promise((resolve) => socket.on('close', (e) => resolve(e)));
  socket.connect();
  await socket.waitForOpen();
  const pcm = wavPcm(CLIPS[1]);
  for (let off = 0; off < pcm.length; off += 3200) {
    socket.sendMedia(pcm.subarray(off, Math.min(off + 3200, pcm.length)));
    await sleep(25);
  }
  socket.sendCloseStream({ type: 'CloseStream' });
  const ev = await closed;
  assert.equal(ev.code, 1000);
  const finals = messages.filter((m) => m.type === 'Results' && m.is_final)
    .map((m) => m.channel.alternatives[0].transcript).join(' ');
  assert.match(finals, /young man/);
  // and the same many arguments over a raw upgrade: 101, not a hang-up
  const q = keyterm.map((k) => 'keyterm=' + encodeURIComponent(k)).join('&');
  const r = await tryWs(`${plain.url}/v1/listen?encoding=linear16&sample_rate=16000&${q}`);
  assert.deepEqual(r, { opened: true });
});

test('batch: 48 query arguments are served; more on a request with a body get a typed 414', async () => {
  const post = (n) => curl(['-X', 'POST', '-H', 'Content-Type: audio/wav', '--data-binary', '@' + wav1s,
    plain.http + '/v1/listen?' + Array.from({ length: n }, (_, i) => `keyterm=k${i}`).join('&')]);
  const ok = await post(48);
  assert.equal(ok.status, 200, ok.body);
  const tooMany = await post(100);
  assert.equal(tooMany.status, 414, tooMany.body);
  assert.match(tooMany.json().error.message, /more than 48 query arguments on a request with a body/);
});

test('the query header the door uses cannot be sent by a client', async () => {
  const r = await curl(['-H', 'X-Hark-Query: language=xx', plain.http + '/healthz']);
  assert.equal(r.status, 400);
});
