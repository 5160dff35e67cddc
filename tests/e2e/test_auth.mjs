// API keys against a real `hark serve`: where keys come from (HARK_API_KEYS,
// a keys file by flag or environment variable), which endpoints need one,
// every accepted credential form (Authorization schemes, WebSocket
// subprotocols) over the native, Deepgram and batch endpoints, the 401/429
// answers of each endpoint family, and the per-key session limit. Clients:
// the `ws` npm package, curl, and a raw socket to hold a batch request open.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { CLIPS, startServer, openNative, wavPcm, streamPcm, sleep, curl, wavOf } from './lib.mjs';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const NEED = "an API key is required: send 'Authorization: Token KEY' (or Bearer), or the " +
  "WebSocket subprotocols 'token, KEY'";
const SCHEME = "unsupported Authorization scheme: send 'Authorization: Token KEY' (or Bearer), " +
  "or the WebSocket subprotocols 'token, KEY'";
const INVALID = 'invalid API key';
const LIMIT = 'this API key already has 1 open sessions (its limit); retry later';

const ENV_KEYS = ['env-key-1', 'env-key-2', 'env-key-3'];
const FILE_KEYS = ['file-key-1', 'file-key-2'];

let tmp, keyed, fileEnv, limited, open, wav1s;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hark-auth-'));
  // comments, blank lines, indentation, CRLF and a last line without newline
  const keysFile = path.join(tmp, 'keys');
  writeFileSync(keysFile, '# hark API keys\r\n\r\n   file-key-1  \r\n  # file-key-commented\n\nfile-key-2');
  const onlyFile = path.join(tmp, 'only');
  writeFileSync(onlyFile, 'only-file-key\n');
  const pcm = wavPcm(CLIPS[1]).subarray(0, 32000); // one second at 16 kHz s16
  wav1s = path.join(tmp, 'one-second.wav');
  writeFileSync(wav1s, wavOf(pcm));
  [keyed, fileEnv, limited, open] = await Promise.all([
    startServer(['--api-keys-file', keysFile], { HARK_API_KEYS: ` ${ENV_KEYS[0]} , ${ENV_KEYS[1]},${ENV_KEYS[2]}` }),
    startServer([], { HARK_API_KEYS_FILE: onlyFile }),
    startServer(['--max-sessions-per-key', '1'], { HARK_API_KEYS: 'lim-a,lim-b' }),
    startServer([]),
  ]);
});
after(async () => {
  await Promise.all([keyed, fileEnv, limited, open].map((s) => s?.stop()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});


const auth = (value) => (value === undefined ? [] : ['-H', `Authorization: ${value}`]);
const get = (srv, p, authValue) => curl([...auth(authValue), srv.http + p]);
const postListen = (srv, authValue) =>
  curl([...auth(authValue), '-H', 'Content-Type: audio/wav', '--data-binary', '@' + wav1s, srv.http + '/v1/listen']);
const postOpenAI = (srv, authValue) =>
  curl([...auth(authValue), '-F', `file=@${wav1s}`, '-F', 'model=whisper-1', srv.http + '/v1/audio/transcriptions']);

// Opens a WebSocket; resolves { status: 101, ws } once open, or the refusal
// { status, headers, body } from the HTTP answer to the upgrade (bounded).
function wsTry(url, protocols, headers) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, headers ? { headers } : {});
    const timer = setTimeout(() => { ws.terminate(); reject(new Error('no answer to the upgrade: ' + url)); }, 10000);
    ws.on('open', () => { clearTimeout(timer); resolve({ status: 101, ws }); });
    ws.on('unexpected-response', async (req, res) => {
      let body = '';
      for await (const chunk of res) body += chunk;
      clearTimeout(timer);
      req.destroy();
      resolve({ status: res.statusCode, headers: res.headers, body });
    });
    ws.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

async function closeWs(ws) {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = new Promise((r) => ws.once('close', r));
  ws.close();
  await closed;
}

// The generic JSON error of the plain HTTP endpoints and of /v1/stream.
function assertHarkError(r, status, code, message) {
  assert.equal(r.status, status, r.body);
  assert.match(r.headers['content-type'], /^application\/json/);
  assert.deepEqual(JSON.parse(r.body), { error: { code, message } });
}

// Deepgram's legacy error shape, with the request id also in dg-request-id.
function assertDeepgramError(r, status, errCode, message) {
  assert.equal(r.status, status, r.body);
  const j = JSON.parse(r.body);
  assert.match(j.request_id, UUID);
  assert.deepEqual(j, { err_code: errCode, err_msg: message, request_id: j.request_id });
  assert.equal(r.headers['dg-request-id'], j.request_id);
}

function assertOpenAIError(r, status, code, message) {
  assert.equal(r.status, status, r.body);
  assert.deepEqual(JSON.parse(r.body),
    { error: { message, type: 'invalid_request_error', param: null, code } });
}

test('keys from HARK_API_KEYS (several) and the keys file all work; comments are not keys', async () => {
  for (const key of [...ENV_KEYS, ...FILE_KEYS]) {
    const r = await get(keyed, '/metrics', `Token ${key}`);
    assert.equal(r.status, 200, key);
    assert.match(r.body, /hark_sessions_active/);
  }
  for (const key of ['file-key-commented', '#', 'env-key', 'file-key-1x', 'FILE-KEY-1'])
    assertHarkError(await get(keyed, '/metrics', `Token ${key}`), 401, 'unauthorized', INVALID);
});

test('HARK_API_KEYS_FILE names the keys file too', async () => {
  assert.equal((await get(fileEnv, '/metrics', 'Bearer only-file-key')).status, 200);
  assertHarkError(await get(fileEnv, '/metrics', 'Bearer env-key-1'), 401, 'unauthorized', INVALID);
});

test('a bad keys file stops the server at start, naming the line but not the key', async () => {
  const bad = path.join(tmp, 'bad');
  writeFileSync(bad, '# keys\ngood-key\nsecret with-space\n');
  await assert.rejects(startServer(['--api-keys-file', bad]), (e) => {
    assert.match(e.message, /exited 4/);
    assert.match(e.message, /API keys file '.*bad', line 3: API keys may only contain printable characters other than ','/);
    assert.ok(!e.message.includes('secret'), 'the key itself must not be logged');
    return true;
  });
  const empty = path.join(tmp, 'empty');
  writeFileSync(empty, '# no keys yet\n\n');
  await assert.rejects(startServer(['--api-keys-file', empty]), /API keys file '.*empty' holds no keys/);
  await assert.rejects(startServer(['--api-keys-file', path.join(tmp, 'missing')]),
    /cannot read API keys file '.*missing'/);
});

test('/healthz and /readyz answer without a key (and ignore a wrong one)', async () => {
  for (const a of [undefined, 'Token wrong']) {
    const h = await get(keyed, '/healthz', a);
    assert.equal(h.status, 200);
    assert.equal(h.body, 'ok\n');
    const r = await get(keyed, '/readyz', a);
    assert.equal(r.status, 200);
    assert.equal(r.body, 'ready\n');
  }
});

test('every other HTTP endpoint refuses a missing or wrong key with 401 and its JSON error', async () => {
  for (const [a, msg] of [[undefined, NEED], ['Token wrong', INVALID]]) {
    for (const p of ['/metrics', '/', '/app.js', '/no-such-page'])
      assertHarkError(await get(keyed, p, a), 401, 'unauthorized', msg);
    assertDeepgramError(await postListen(keyed, a), 401, 'INVALID_AUTH', msg);
    assertOpenAIError(await postOpenAI(keyed, a), 401, 'invalid_api_key', msg);
  }
  // with a key the same requests succeed
  const page = await get(keyed, '/', 'Token env-key-2');
  assert.equal(page.status, 200);
  assert.match(page.body, /<title>hark/);
  const dg = await postListen(keyed, 'Token env-key-2');
  assert.equal(dg.status, 200, dg.body);
  assert.ok(Array.isArray(dg.json().results.channels[0].alternatives));
  const oa = await postOpenAI(keyed, 'Bearer file-key-1');
  assert.equal(oa.status, 200, oa.body);
  assert.equal(typeof oa.json().text, 'string');
});

test('Authorization schemes match in any case; another scheme or a bare key is refused', async () => {
  for (const a of ['Token env-key-1', 'token env-key-1', 'TOKEN env-key-1', 'Bearer env-key-1',
    'bearer env-key-1', 'BEARER env-key-1', 'Token   env-key-1'])
    assert.equal((await get(keyed, '/metrics', a)).status, 200, a);
  for (const a of ['Basic ZW52LWtleS0xOg==', 'env-key-1', 'Tokenenv-key-1'])
    assertHarkError(await get(keyed, '/metrics', a), 401, 'unauthorized', SCHEME);
});

test('a key in the query string (?access_token=, ?token=) is not a credential', async () => {
  for (const q of ['access_token', 'token', 'key']) {
    assertHarkError(await get(keyed, `/metrics?${q}=env-key-1`, undefined), 401, 'unauthorized', NEED);
    assertHarkError(await wsTry(`${keyed.url}/v1/stream?${q}=env-key-1`), 401, 'unauthorized', NEED);
  }
});

test('native /v1/stream: 401 with a JSON body before any upgrade', async () => {
  const url = keyed.url + '/v1/stream';
  assertHarkError(await wsTry(url), 401, 'unauthorized', NEED);
  assertHarkError(await wsTry(url, [], { Authorization: 'Token wrong' }), 401, 'unauthorized', INVALID);
  assertHarkError(await wsTry(url, ['token', 'wrong']), 401, 'unauthorized', INVALID);
  assertHarkError(await wsTry(url, ['token']), 401, 'unauthorized', NEED);
  // the path is checked first, the key before the query
  assertHarkError(await wsTry(keyed.url + '/v1/nope'), 404, 'not_found', 'no WebSocket endpoint at this path');
  assertDeepgramError(await wsTry(keyed.url + '/v1/listen?encoding=flac'), 401, 'INVALID_AUTH', NEED);
});

async function nativeSession(srv, protocols, headers) {
  const s = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 },
    headers ? { headers } : protocols);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, wavPcm(CLIPS[1]).subarray(0, 32000));
  s.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await s.closed).code, 1000);
  assert.equal(s.events.at(-1).type, 'closed');
  return s;
}

test('native /v1/stream: subprotocols token, KEY upgrade (token echoed) and a session runs', async () => {
  const s = await nativeSession(keyed, ['token', 'file-key-2']);
  assert.equal(s.ws.protocol, 'token');
  assert.match(s.ready.session_id, /\S/);
  assert.ok(s.events.some((e) => e.type === 'transcript' && e.is_final), JSON.stringify(s.events));
  const h = await nativeSession(keyed, undefined, { Authorization: 'Bearer env-key-3' });
  assert.equal(h.ws.protocol, '');
});

test('Deepgram /v1/listen: token/BEARER headers and subprotocols authenticate; wrong key is 401 INVALID_AUTH', async () => {
  const url = keyed.url + '/v1/listen?encoding=linear16&sample_rate=16000';
  for (const [protocols, headers, echo] of [
    [[], { Authorization: 'token env-key-1' }, ''],
    [[], { Authorization: 'BEARER file-key-1' }, ''],
    [['token', 'env-key-2'], undefined, 'token'],
    [['bearer', 'env-key-2'], undefined, 'bearer'],
    // what @deepgram/sdk v5 offers in a browser
    [['token', 'file-key-2', 'x-deepgram-session-id', '3f1c2a9e-5d6b-4c7d-8e9f-0a1b2c3d4e5f'], undefined, 'token'],
  ]) {
    const r = await wsTry(url, protocols, headers);
    assert.equal(r.status, 101, JSON.stringify({ protocols, headers, body: r.body }));
    assert.equal(r.ws.protocol, echo);
    await closeWs(r.ws);
  }
  // a short session: audio, CloseStream, Metadata, close 1000
  const r = await wsTry(url, ['token', 'env-key-1']);
  const msgs = [];
  r.ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const closed = new Promise((res) => r.ws.on('close', (code) => res(code)));
  r.ws.send(wavPcm(CLIPS[1]).subarray(0, 32000));
  r.ws.send(JSON.stringify({ type: 'CloseStream' }));
  assert.equal(await closed, 1000);
  assert.equal(msgs.at(-1).type, 'Metadata');

  for (const [protocols, headers, msg] of [
    [[], undefined, NEED],
    [[], { Authorization: 'Token wrong' }, INVALID],
    [['token', 'wrong'], undefined, INVALID],
  ]) {
    const bad = await wsTry(url, protocols, headers);
    assertDeepgramError(bad, 401, 'INVALID_AUTH', msg);
    assert.equal(bad.headers['dg-error'], msg);
  }
});

test('an Authorization header of another scheme does not hide the subprotocol key; Token/Bearer wins', async () => {
  for (const p of ['/v1/stream', '/v1/listen?encoding=linear16&sample_rate=16000']) {
    const ok = await wsTry(keyed.url + p, ['token', 'env-key-1'], { Authorization: 'Basic dXNlcjpwYXNz' });
    assert.equal(ok.status, 101, p + ' ' + ok.body);
    assert.equal(ok.ws.protocol, 'token');
    await closeWs(ok.ws);
    const bad = await wsTry(keyed.url + p, ['token', 'wrong'], { Authorization: 'Basic dXNlcjpwYXNz' });
    assert.equal(bad.status, 401);
    assert.match(bad.body, /invalid API key/);
    // a Token/Bearer header is the credential even when a subprotocol key is offered
    const hdr = await wsTry(keyed.url + p, ['token', 'env-key-1'], { Authorization: 'Token wrong' });
    assert.equal(hdr.status, 401);
    assert.match(hdr.body, /invalid API key/);
  }
});

// Retries until a new session on the key is admitted (the server frees the
// slot when it sees the close, a moment after the client does); bounded.
async function admittedAgain(url, protocols) {
  const end = Date.now() + 5000;
  for (;;) {
    const r = await wsTry(url, protocols);
    if (r.status === 101) return r;
    assert.equal(r.status, 429, r.body);
    if (Date.now() > end) assert.fail('the slot was not freed within 5 s');
    await sleep(100);
  }
}

test('per-key limit, WebSocket: the next session of a full key gets 429 before the upgrade; closing frees it', async () => {
  const native = limited.url + '/v1/stream';
  const listen = limited.url + '/v1/listen?encoding=linear16&sample_rate=16000';
  const first = await openNative(limited.url, { encoding: 'pcm_s16le', sample_rate: 16000 }, ['token', 'lim-a']);
  assert.equal(first.ready.type, 'ready', JSON.stringify(first.ready));
  try {
    assertHarkError(await wsTry(native, ['token', 'lim-a']), 429, 'limit_exceeded', LIMIT);
    const dg = await wsTry(listen, [], { Authorization: 'Token lim-a' });
    assertDeepgramError(dg, 429, 'TOO_MANY_REQUESTS', LIMIT);
    assert.equal(dg.headers['dg-error'], LIMIT);
    // streaming and batch share the count
    assertDeepgramError(await postListen(limited, 'Token lim-a'), 429, 'TOO_MANY_REQUESTS', LIMIT);
    assertOpenAIError(await postOpenAI(limited, 'Bearer lim-a'), 429, 'limit_exceeded', LIMIT);
    // another key is not affected
    const other = await wsTry(listen, ['token', 'lim-b']);
    assert.equal(other.status, 101);
    await closeWs(other.ws);
  } finally {
    first.ws.send(JSON.stringify({ type: 'close' }));
    assert.equal((await first.closed).code, 1000);
  }
  const again = await admittedAgain(listen, ['token', 'lim-a']);
  await closeWs(again.ws);
  // the Deepgram session's slot is freed in turn
  const third = await admittedAgain(native, ['token', 'lim-a']);
  assert.equal(third.ws.protocol, 'token');
  await closeWs(third.ws);
});

test('per-key limit, batch: a POST while the key has a request in flight gets 429; finishing frees it', async () => {
  // a raw request that announces a body it does not finish: the key's slot is held
  const sock = net.connect(limited.port, '127.0.0.1');
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  let answer = '';
  sock.on('data', (d) => { answer += d; });
  sock.write('POST /v1/listen HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token lim-b\r\n' +
    'Content-Type: audio/wav\r\nContent-Length: 1000000\r\n\r\n');
  sock.write(Buffer.alloc(1000));
  try {
    const end = Date.now() + 5000;
    let r;
    do { // the held request is admitted asynchronously; bounded wait until it counts
      r = await postListen(limited, 'Token lim-b');
      if (r.status === 429) break;
      await sleep(100);
    } while (Date.now() < end);
    assertDeepgramError(r, 429, 'TOO_MANY_REQUESTS', LIMIT);
    assertOpenAIError(await postOpenAI(limited, 'Bearer lim-b'), 429, 'limit_exceeded', LIMIT);
    assertHarkError(await wsTry(limited.url + '/v1/stream', ['token', 'lim-b']), 429, 'limit_exceeded', LIMIT);
    // another key is not affected
    assert.equal((await postListen(limited, 'Token lim-a')).status, 200);
    assert.equal(answer, '', 'the held request is still waiting for its body');
  } finally {
    sock.destroy();
  }
  const end = Date.now() + 5000;
  let ok;
  for (;;) {
    ok = await postListen(limited, 'Token lim-b');
    if (ok.status !== 429 || Date.now() > end) break;
    await sleep(100);
  }
  assert.equal(ok.status, 200, ok.body);
  assert.ok(Array.isArray(ok.json().results.channels[0].alternatives));
  // an answered request gives its slot back too
  const next = await postOpenAI(limited, 'Bearer lim-b');
  assert.equal(next.status, 200, next.body);
});

test('with no keys configured, any or no credential works everywhere', async () => {
  for (const a of [undefined, 'Token anything', 'Basic Zm9vOmJhcg==']) {
    assert.equal((await get(open, '/metrics', a)).status, 200, String(a));
    assert.equal((await postListen(open, a)).status, 200, String(a));
    assert.equal((await postOpenAI(open, a)).status, 200, String(a));
  }
  const s = await nativeSession(open, ['token', 'made-up']);
  assert.equal(s.ws.protocol, 'token');
  await nativeSession(open, undefined);
  const dg = await wsTry(open.url + '/v1/listen?encoding=linear16&sample_rate=16000', [], { Authorization: 'Bearer x' });
  assert.equal(dg.status, 101);
  await closeWs(dg.ws);
});
