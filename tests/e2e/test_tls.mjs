// TLS on hark's port (--tls-cert/--tls-key): a CA and a server certificate
// made here with `openssl` (SAN IP:127.0.0.1), then curl over https trusting
// only that CA (/healthz and a batch POST) and the official `@deepgram/sdk`
// over wss in a child node process that trusts the CA through
// NODE_EXTRA_CA_CERTS (read at process start), streaming a real clip and
// getting its words. Bad certificate/key files are start-up errors that name
// the file.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { HARK, CLIPS, startServer, curl } from './lib.mjs';

let tmp, srv, ca, cert, key, otherKey;

const openssl = (...args) => execFileSync('openssl', args, { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hark-tls-'));
  ca = path.join(tmp, 'ca.pem');
  cert = path.join(tmp, 'server.pem');
  key = path.join(tmp, 'server.key');
  otherKey = path.join(tmp, 'other.key');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', ca,
    '-days', '2', '-subj', '/CN=hark test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', 'server.csr',
    '-subj', '/CN=127.0.0.1');
  writeFileSync(path.join(tmp, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', ca, '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', cert, '-days', '2', '-extfile', 'ext.cnf');
  openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', otherKey);
  srv = await startServer(['--tls-cert', cert], { HARK_TLS_KEY: key });
});
after(async () => {
  await srv?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test('the listening line says https:// and wss://', () => {
  assert.match(srv.http, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(srv.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
});

test('curl over https, trusting only the test CA: /healthz and a Deepgram batch POST', async () => {
  const h = await curl(['--cacert', ca, srv.http + '/healthz']);
  assert.equal(h.status, 200);
  assert.equal(h.body, 'ok\n');
  const r = await curl(['--cacert', ca, '-H', 'Content-Type: audio/wav', '--data-binary', '@' + CLIPS[1],
    srv.http + '/v1/listen']);
  assert.equal(r.status, 200, r.body);
  assert.match(r.json().results.channels[0].alternatives[0].transcript, /young man/i);
  // without the CA curl refuses the certificate: it is really TLS with it
  await assert.rejects(curl([srv.http + '/healthz']), /certificate/i);
});

// The SDK runs in a child: NODE_EXTRA_CA_CERTS is read when node starts.
const sdkScript = `
import { readFileSync } from 'node:fs';
import { DeepgramClient } from '@deepgram/sdk';
const [base, clip] = process.argv.slice(2);
const pcm = readFileSync(clip).subarray(44);
const dg = new DeepgramClient({ apiKey: 'unused', baseUrl: base });
const socket = await dg.listen.v1.connect({ model: 'nova-3', encoding: 'linear16', sample_rate: 16000 });
const messages = [];
socket.on('message', (m) => messages.push(m));
const closed = new Promise((r) => socket.on('close', (e) => r(e)));
socket.connect();
await socket.waitForOpen();
for (let off = 0; off < pcm.length; off += 3200) {
  socket.sendMedia(pcm.subarray(off, Math.min(off + 3200, pcm.length)));
  await new Promise((r) => setTimeout(r, 25));
}
socket.sendCloseStream({ type: 'CloseStream' });
const ev = await Promise.race([closed, new Promise((r) => setTimeout(() => r({ code: 'timeout' }), 30000))]);
console.log(JSON.stringify({ code: ev.code, messages }));
process.exit(0);
`;

test('@deepgram/sdk streams a clip over wss and gets its words', async () => {
  const script = path.join(path.resolve('.'), `tls-sdk-${process.pid}.mjs`); // resolves node_modules here
  writeFileSync(script, sdkScript);
  try {
    const out = await new Promise((resolve, reject) => {
      execFile(process.execPath, [script, srv.http, CLIPS[1]],
        { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca }, timeout: 90000 },
        (err, stdout, stderr) => (err ? reject(new Error(err.message + stderr)) : resolve(stdout)));
    });
    const { code, messages } = JSON.parse(out.trim().split('\n').at(-1));
    assert.equal(code, 1000);
    const finals = messages.filter((m) => m.type === 'Results' && m.is_final)
      .map((m) => m.channel.alternatives[0].transcript).join(' ');
    assert.match(finals, /young man/);
    assert.equal(messages.at(-1).type, 'Metadata');
  } finally {
    rmSync(script, { force: true });
  }
});

test('over wss the own origin is https://Host; the same host over http is another origin', async () => {
  const ca_ = (await import('node:fs')).readFileSync(ca);
  const open = (origin) => new Promise((resolve) => {
    const ws = new WebSocket(srv.url + '/v1/stream', { ca: ca_, origin });
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('error', (e) => resolve(e.message));
  });
  assert.equal(await open(`https://127.0.0.1:${srv.port}`), 101);
  assert.equal(await open(`http://127.0.0.1:${srv.port}`), 403);
});

test('bad TLS files are start-up errors that name the file', async () => {
  const garbage = path.join(tmp, 'garbage.pem');
  writeFileSync(garbage, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  const unreadable = path.join(tmp, 'unreadable.key');
  writeFileSync(unreadable, 'x');
  chmodSync(unreadable, 0o000);
  const missing = path.join(tmp, 'missing.pem');
  const cases = [
    [['--tls-cert', missing, '--tls-key', key], new RegExp(`cannot read TLS certificate '${missing}'`)],
    [['--tls-cert', garbage, '--tls-key', key], new RegExp(`TLS certificate '${garbage}' holds no PEM certificate`)],
    [['--tls-cert', cert, '--tls-key', cert], new RegExp(`TLS key '${cert}' holds no PEM private key`)],
    [['--tls-cert', cert, '--tls-key', otherKey], new RegExp(`TLS key '${otherKey}' does not belong to the certificate '${cert}'`)],
    [['--tls-cert', cert], /needs both --tls-cert and --tls-key \(only --tls-cert was given\)/],
    [['--tls-key', key], /only --tls-key was given/],
  ];
  if (process.getuid?.() !== 0) // root reads any file
    cases.push([['--tls-cert', cert, '--tls-key', unreadable], new RegExp(`cannot read TLS key '${unreadable}'`)]);
  for (const [args, re] of cases) {
    const r = await new Promise((resolve) => execFile(HARK, ['serve', '--port', '0', ...args], { timeout: 30000 },
      (err, stdout, stderr) => resolve({ code: err?.code, stderr })));
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
});
