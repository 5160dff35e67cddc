// AssemblyAI Universal-Streaming v3 at /v3/ws, driven by the official
// `assemblyai` SDK's StreamingTranscriber unchanged but for websocketBaseUrl.
// The SDK refuses anything but wss://, so hark serves TLS here
// (--tls-cert/--tls-key) with a certificate from a CA made by openssl in
// before(); the SDK runs in child node processes that trust that CA through
// NODE_EXTRA_CA_CERTS (read at process start). The native protocol and raw
// `ws` checks run in this process with the CA passed to `ws` directly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { CLIPS, startServer, openNative, wavPcm, streamPcm, finals, waitFor } from './lib.mjs';

const KEY = 'aai-test-key';
let tmp, srv, ca, caPem, scriptPath;

before(async () => {
  tmp = mkdtempSync(path.join(os.tmpdir(), 'hark-aai-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
  ca = path.join(tmp, 'ca.pem');
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', ca,
    '-days', '2', '-subj', '/CN=hark test CA');
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr',
    '-subj', '/CN=127.0.0.1');
  writeFileSync(path.join(tmp, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', 'server.csr', '-CA', ca, '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', path.join(tmp, 'server.pem'), '-days', '2', '-extfile', 'ext.cnf');
  caPem = readFileSync(ca);
  srv = await startServer(['--workers', '2', '--tls-cert', path.join(tmp, 'server.pem'),
    '--tls-key', path.join(tmp, 'server.key')], { HARK_API_KEYS: KEY });
});
after(async () => {
  await srv?.stop();
  if (scriptPath) rmSync(scriptPath, { force: true });
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

// The SDK in a child process. Its script gets the server URL, the clip and
// a plan; it prints one JSON line: the turns it got, how connect() and
// close() went, and the close code.
const sdkScript = `
import { readFileSync } from 'node:fs';
import { AssemblyAI } from 'assemblyai';
const [base, clip, planJson] = process.argv.slice(2);
const plan = JSON.parse(planJson);
const pcm = readFileSync(clip).subarray(44);
const client = new AssemblyAI({ apiKey: plan.apiKey ?? 'unused' });
const params = { websocketBaseUrl: base + '/v3/ws', sampleRate: 16000, ...(plan.params ?? {}) };
if (plan.token) params.token = plan.token;
const t = client.streaming.transcriber(params);
const out = { turns: [], errors: [], begin: null, close: null, forced: null };
t.on('turn', (m) => out.turns.push(m));
t.on('error', (e) => out.errors.push(String(e.message)));
t.on('close', (code, reason) => { out.close = { code, reason }; });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
try {
  out.begin = await t.connect();
} catch (e) {
  out.connectError = { message: String(e.message), code: e.code ?? null };
  console.log(JSON.stringify(out));
  process.exit(0);
}
const send = async (buf) => {
  // 100 ms chunks at real time, as AssemblyAI asks (it closes faster senders with 3007)
  const t0 = Date.now();
  for (let off = 0; off < buf.length; off += 3200) {
    t.sendAudio(buf.subarray(off, Math.min(off + 3200, buf.length)));
    const wait = t0 + ((off + 3200) / 32000) * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
  }
};
if (plan.force) {
  // half the clip, ForceEndpoint, and wait for the end of the turn
  const half = pcm.subarray(0, Math.floor(pcm.length / 4) * 2);
  await send(half);
  const before = out.turns.length;
  t.forceEndpoint();
  const end = Date.now() + 10000;
  while (Date.now() < end && !out.turns.slice(before).some((m) => m.end_of_turn)) await sleep(10);
  out.forced = out.turns.slice(before).find((m) => m.end_of_turn) ?? null;
  await send(pcm.subarray(half.length));
} else {
  await send(pcm);
}
const t0 = Date.now();
// Terminate, then wait for Termination (or the server's close); the SDK
// gives up after 5 s by default, which a loaded test machine may need
await t.close(true, 60000);
out.closeMs = Date.now() - t0;
await sleep(200);
console.log(JSON.stringify(out));
process.exit(0);
`;
function runSdk(clip, plan = {}) {
  if (!scriptPath) {
    scriptPath = path.join(path.resolve('.'), `aai-sdk-${process.pid}.mjs`); // resolves node_modules here
    writeFileSync(scriptPath, sdkScript);
  }
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [scriptPath, srv.url, clip, JSON.stringify({ apiKey: KEY, ...plan })], {
      cwd: process.cwd(), timeout: 90000, maxBuffer: 16 << 20,
      env: { ...process.env, NODE_EXTRA_CA_CERTS: ca },
    }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${err.message}\n${stderr}`));
      const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).at(-1);
      if (!line) return reject(new Error('no output:\n' + stdout + stderr));
      resolve(JSON.parse(line));
    });
  });
}

const endOfTurns = (turns) => turns.filter((m) => m.end_of_turn && m.transcript).map((m) => m.transcript).join(' ');

async function nativeFinals(clip) {
  const s = await openNative(srv.url, { encoding: 'pcm_s16le', sample_rate: 16000 }, {
    ca: caPem, headers: { Authorization: `Bearer ${KEY}` },
  });
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, wavPcm(clip));
  s.ws.send(JSON.stringify({ type: 'close' }));
  await s.closed;
  return finals(s.events);
}

// The clips under 6 s, streamed at once (three sessions in parallel).
const short = CLIPS.filter((c) => wavPcm(c).length < 6 * 32000);

test('the SDK streams clips over wss: its turns end with the native protocol\'s finals', async () => {
  const wants = [];
  for (const clip of short) wants.push(await nativeFinals(clip));
  const runs = await Promise.all(short.map((clip) => runSdk(clip, { params: { formatTurns: true } })));
  for (const [i, r] of runs.entries()) {
    const want = wants[i];
    assert.equal(r.connectError, undefined, JSON.stringify(r.connectError));
    assert.equal(typeof r.begin.id, 'string');
    assert.ok(r.begin.expires_at > Date.now() / 1000, JSON.stringify(r.begin));
    assert.deepEqual(r.errors, []);
    assert.ok(want.length > 0);
    assert.equal(endOfTurns(r.turns), want);
    // turn shape: orders never go down; a turn's partials before its end; words in ms
    let order = -1;
    for (const m of r.turns) {
      assert.ok(m.turn_order >= order, 'turn_order went down');
      order = m.turn_order;
      assert.equal(m.turn_is_formatted, m.end_of_turn, 'format_turns: the end of turn is the formatted one');
      for (const w of m.words) {
        assert.ok(Number.isInteger(w.start) && Number.isInteger(w.end) && w.end >= w.start, JSON.stringify(w));
        assert.equal(w.word_is_final, m.end_of_turn);
      }
      if (m.end_of_turn) assert.equal(m.words.map((w) => w.text).join(' '), m.transcript);
    }
    assert.ok(r.turns.some((m) => !m.end_of_turn), 'partial turns arrive before the end of turn');
    // Terminate's clean ending: close() returned on its Termination, long before its limit
    assert.ok(r.closeMs < 50000, `close() took ${r.closeMs} ms`);
    assert.equal(r.close, null, 'no close before the SDK closed (it removes its listeners first)');
  }
});

test('ForceEndpoint ends the turn at once; the rest of the clip goes on in later turns', async () => {
  const clip = CLIPS[0];
  const r = await runSdk(clip, { force: true });
  assert.ok(r.forced, 'an end-of-turn Turn after ForceEndpoint: ' + JSON.stringify(r.turns.slice(-3)));
  assert.ok(r.forced.transcript.length > 0, 'mid-clip: it has words');
  const after = r.turns.filter((m) => m.turn_order > r.forced.turn_order && m.end_of_turn && m.transcript);
  assert.ok(after.length >= 1, 'turns after the forced one');
  assert.ok(r.closeMs < 50000, `close() took ${r.closeMs} ms`);
});

test('auth: a temporary token in the query works; a bad key is refused', async () => {
  const ok = await runSdk(CLIPS[1], { apiKey: undefined, token: KEY });
  assert.equal(ok.connectError, undefined, JSON.stringify(ok.connectError));
  assert.ok(endOfTurns(ok.turns).length > 0);
  const bad = await runSdk(CLIPS[1], { apiKey: 'nope', params: { maxConnectionRetries: 0 } });
  assert.ok(bad.connectError, 'connect() rejects');
  assert.match(bad.connectError.message, /401|Unauthorized|invalid API key/i);
  const badToken = await runSdk(CLIPS[1], { apiKey: undefined, token: 'nope', params: { maxConnectionRetries: 0 } });
  assert.ok(badToken.connectError, 'connect() rejects a bad token');
});

// Raw `ws` for what the SDK does not surface: the Termination message and
// in-band errors with their close codes.
function rawOpen(query, headers = { Authorization: KEY }) {
  const ws = new WebSocket(`${srv.url}/v3/ws?${query}`, { ca: caPem, headers });
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  ws.on('error', () => {});
  return { ws, msgs, closed };
}

test('raw wire: Begin first, Termination with integer durations, then 1000', async () => {
  const s = rawOpen('sample_rate=16000&encoding=pcm_s16le');
  await waitFor(s.msgs, (m) => m.type === 'Begin', 10000);
  assert.equal(s.msgs[0].type, 'Begin');
  const pcm = wavPcm(CLIPS[1]);
  await streamPcm(s.ws, pcm, { frameBytes: 3200 });
  s.ws.send(JSON.stringify({ type: 'Terminate' }));
  const c = await s.closed;
  assert.equal(c.code, 1000);
  const term = s.msgs.at(-1);
  assert.equal(term.type, 'Termination', JSON.stringify(s.msgs.slice(-2)));
  assert.equal(term.audio_duration_seconds, Math.round(pcm.length / 32000));
  assert.ok(Number.isInteger(term.session_duration_seconds));
});

test('raw wire: an unknown message type and a bad parameter close with 3006 after an Error', async () => {
  const s = rawOpen('sample_rate=16000');
  await waitFor(s.msgs, (m) => m.type === 'Begin', 10000);
  s.ws.send(JSON.stringify({ type: 'Dance' }));
  const c = await s.closed;
  assert.equal(c.code, 3006);
  const e = s.msgs.find((m) => m.type === 'Error');
  assert.equal(e.error_code, 3006);
  assert.match(e.error, /Invalid Message Type/);

  const b = rawOpen('sample_rate=16000&encoding=aac');
  const cb = await b.closed;
  assert.equal(cb.code, 3006);
  assert.match(b.msgs.find((m) => m.type === 'Error')?.error ?? '', /encoding/);
});
