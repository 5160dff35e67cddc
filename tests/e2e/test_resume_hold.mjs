// What a detached session holds, and when a session is detached at all
// (issue 11): a real `hark serve`, real clients (npm ws, the JS client),
// connections cut for real (the TCP socket destroyed, or reset by the fault
// proxy).
//  - A detached session keeps its per-address, per-key and admission slots
//    until it expires or is resumed: dropping connections does not make
//    room for more sessions. A client past a limit may still come in to
//    resume its own detached session.
//  - A drop after the client's `close` (finals not all delivered yet)
//    leaves the session detached and resumable until it has delivered
//    everything; the resumed connection gets the rest and `closed`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { HarkClient } from '../../clients/js/index.js';
import { FaultProxy } from './faultproxy.mjs';
import { CLIPS, startServer, openNative, wavPcm, streamPcm, waitFor, checkContract, sleep } from './lib.mjs';

const CONFIG = { encoding: 'pcm_s16le', sample_rate: 16000 };
const GAP = Buffer.alloc(25600); // 0.8 s: one segment per clip
const SPEECH = Buffer.concat(CLIPS.flatMap((c) => [wavPcm(c), GAP]));

const finalsBySegment = (events) =>
  events.filter((e) => e.type === 'transcript' && e.is_final).map((e) => [e.segment, e.text]);

// A native session on a raw connection that can be cut and resumed.
async function session(url, protocols) {
  const ws = new WebSocket(url + '/v1/stream', protocols);
  const events = [];
  ws.on('message', (d, bin) => { if (!bin) events.push(JSON.parse(d.toString())); });
  ws.on('error', () => {});
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'config', ...CONFIG }));
  const first = await waitFor(events, (e) => e.type === 'ready' || e.type === 'error', 15000);
  return { ws, events, closed, first };
}

// Resumes s (id/token from its ready) on a new connection.
async function resumeOn(url, ready, lastSeq, sent, protocols) {
  const ws = new WebSocket(url + '/v1/stream', protocols);
  const events = [];
  ws.on('message', (d, bin) => { if (!bin) events.push(JSON.parse(d.toString())); });
  ws.on('error', () => {});
  const closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'resume', session_id: ready.session_id, resume_token: ready.resume_token, last_seq: lastSeq, audio_bytes: sent }));
  const first = await waitFor(events, (e) => e.type === 'resumed' || e.type === 'error', 15000);
  return { ws, events, closed, first };
}

const lastSeqOf = (events) => Math.max(-1, ...events.filter((e) => typeof e.seq === 'number').map((e) => e.seq));

async function metric(srv, name) {
  const text = await (await fetch(srv.http + '/metrics', { headers: srv.key ? { Authorization: 'Token ' + srv.key } : {} })).text();
  const line = text.split('\n').find((l) => l.split(' ')[0] === name);
  return line ? Number(line.split(' ').pop()) : NaN;
}

// One limit, held by a detached session: a new session is refused, the
// detached one resumes, and once it ends the slot is free again.
async function holdsSlot(srv, { protocols, refusedCode, refusedClose, message }) {
  const a = await session(srv.url, protocols);
  assert.equal(a.first.type, 'ready', JSON.stringify(a.first));
  a.ws.send(Buffer.alloc(6400));
  await waitFor(a.events, (e) => e.type === 'ack' && e.audio_bytes === 6400, 10000);
  a.ws._socket.destroy(); // dropped: no close frame
  for (let i = 0; i < 100 && (await metric(srv, 'hark_sessions_detached')) !== 1; i++) await sleep(50);
  assert.equal(await metric(srv, 'hark_sessions_detached'), 1);

  const b = await session(srv.url, protocols);
  assert.equal(b.first.type, 'error', 'a new session while the detached one holds the slot: ' + JSON.stringify(b.first));
  assert.equal(b.first.code, refusedCode);
  if (message) assert.match(b.first.message, message);
  assert.equal((await b.closed).code, refusedClose);

  const r = await resumeOn(srv.url, a.first, lastSeqOf(a.events), 6400, protocols);
  assert.equal(r.first.type, 'resumed', JSON.stringify(r.first));
  r.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await r.closed).code, 1000);
  assert.ok(r.events.some((e) => e.type === 'closed'));

  const c = await session(srv.url, protocols); // the slot is free again
  assert.equal(c.first.type, 'ready', JSON.stringify(c.first));
  c.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await c.closed).code, 1000);
}

test('a detached session keeps its per-address slot (--max-connections-per-ip)', async () => {
  const srv = await startServer(['--resume-window', '30', '--max-connections-per-ip', '1']);
  try {
    await holdsSlot(srv, { refusedCode: 'limit_exceeded', refusedClose: 1013, message: /detached session.*resume/ });
  } finally {
    await srv.stop();
  }
});

test('a detached session keeps its API key slot (--max-sessions-per-key)', async () => {
  const srv = await startServer(['--resume-window', '30', '--max-sessions-per-key', '1'], { HARK_API_KEYS: 'hold-a,hold-b' });
  srv.key = 'hold-b';
  try {
    await holdsSlot(srv, { protocols: ['token', 'hold-a'], refusedCode: 'limit_exceeded', refusedClose: 1013, message: /detached session.*resume/ });
    // another key is not affected by hold-a's detached session
    const a = await session(srv.url, ['token', 'hold-a']);
    a.ws.send(Buffer.alloc(3200));
    await waitFor(a.events, (e) => e.type === 'ack' && e.audio_bytes === 3200, 10000);
    a.ws._socket.destroy();
    for (let i = 0; i < 100 && (await metric(srv, 'hark_sessions_detached')) !== 1; i++) await sleep(50);
    const other = await session(srv.url, ['token', 'hold-b']);
    assert.equal(other.first.type, 'ready', JSON.stringify(other.first));
    other.ws.send(JSON.stringify({ type: 'close' }));
    assert.equal((await other.closed).code, 1000);
  } finally {
    await srv.stop();
  }
});

test('a detached session keeps its admission slot (--max-sessions)', async () => {
  const srv = await startServer(['--resume-window', '30', '--max-sessions', '1']);
  try {
    await holdsSlot(srv, { refusedCode: 'busy', refusedClose: 1013, message: /too many sessions/ });
  } finally {
    await srv.stop();
  }
});

let srv;
let reference; // finals of SPEECH over one uninterrupted connection

before(async () => {
  srv = await startServer(['--workers', '2', '--resume-window', '30', '--session-buffer-bytes', '4194304']); // no back-pressure: the close is read at once
  const s = await openNative(srv.url, CONFIG);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, SPEECH);
  s.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await s.closed).code, 1000);
  checkContract(s.events);
  reference = finalsBySegment(s.events);
  assert.ok(reference.length >= 3, 'several utterances: ' + JSON.stringify(reference));
});
after(async () => { if (srv) await srv.stop(); });

test('a drop right after `close`: the session stays, is resumed, delivers the rest and `closed`', async () => {
  const s = await session(srv.url);
  assert.equal(s.first.type, 'ready', JSON.stringify(s.first));
  await streamPcm(s.ws, SPEECH);
  // The server has read every byte of audio (a keepalive after it is
  // answered with an ack), so the reset below cannot discard unread audio
  // in its socket buffer.
  s.ws.send(JSON.stringify({ type: 'keepalive' }));
  await waitFor(s.events, (e) => e.type === 'ack' && e.audio_bytes === SPEECH.length, 60000);
  s.ws.send(JSON.stringify({ type: 'close' }));
  // read by the server at once (nothing paused); gone long before the
  // server decoded the rest (seconds): finals and `closed` are to come
  await sleep(300);
  s.ws.removeAllListeners('message');
  s.ws._socket.destroy();
  const seen = s.events.slice();
  assert.ok(!seen.some((e) => e.type === 'closed'), 'closed arrived before the cut');
  await sleep(300);
  assert.equal(await metric(srv, 'hark_sessions_detached'), 1, 'the finishing session is detached, not ended');
  const r = await resumeOn(srv.url, s.first, lastSeqOf(seen), SPEECH.length);
  assert.equal(r.first.type, 'resumed', JSON.stringify(r.first));
  assert.equal(r.first.audio_bytes, SPEECH.length);
  // a client that resends its `close` (it may not have arrived) is harmless
  r.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await r.closed).code, 1000);
  const all = [...seen.filter((e) => typeof e.seq === 'number'), ...r.events.filter((e) => typeof e.seq === 'number')];
  checkContract(all); // seq contiguous from 0, nothing twice, closed last
  assert.equal(all.at(-1).type, 'closed');
  assert.deepEqual(finalsBySegment(all), reference);
  assert.equal(await metric(srv, 'hark_sessions_detached'), 0);
});

test('the JS client, cut by the fault proxy right after close(), resumes the finishing session', { timeout: 120000 }, async (t) => {
  const proxy = await FaultProxy.start({ port: srv.port, log: (x) => t.diagnostic(x) });
  t.after(() => proxy.close());
  const client = new HarkClient({ url: proxy.url, WebSocket, config: CONFIG, closeTimeoutMs: 120000 });
  const finals = [];
  let closedEv = null;
  client.on('final', (e) => finals.push([e.segment, e.text]));
  client.on('closed', (e) => { closedEv = e; });
  client.on('error', () => {});
  await client.connect();
  for (let off = 0; off < SPEECH.length; off += 640) client.send(SPEECH.subarray(off, off + 640));
  const done = client.close();
  // The server acknowledged every byte of audio (the client's own record
  // of its acks), so it has read them and the close queued behind them: a
  // reset cannot discard unread input. Decoding the rest takes seconds.
  for (let i = 0; i < 1200 && client.acked < SPEECH.length; i++) await sleep(50);
  assert.equal(client.acked, SPEECH.length, 'every byte acknowledged');
  await sleep(300);
  assert.equal(closedEv, null, 'closed arrived before the cut');
  proxy.cut();
  const closed = await done;
  assert.equal(closed.reason, 'client', JSON.stringify(closed));
  assert.ok(client.stats.resumes >= 1, 'resumed: ' + JSON.stringify(client.stats));
  assert.equal(client.stats.restarts, 0, 'the session was lost, not resumed: ' + JSON.stringify(client.stats));
  assert.deepEqual(finals, reference);
});
