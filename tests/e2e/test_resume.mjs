// Sessions that survive (issue 11): a real `hark serve`, real WebSocket
// clients (npm ws), connections cut for real (the client's TCP socket
// destroyed with no close frame, or left half-open), and resumes as
// docs/protocol.md (Resume) describes them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';
import { FaultProxy } from './faultproxy.mjs';
import { CLIPS, startServer, openNative, wavPcm, streamPcm, waitFor, checkContract, sleep } from './lib.mjs';

const CONFIG = { encoding: 'pcm_s16le', sample_rate: 16000 };

// Several utterances: the clips with 0.8 s of silence between them.
function speech(n = CLIPS.length) {
  const gap = Buffer.alloc(25600);
  return Buffer.concat(CLIPS.slice(0, n).flatMap((c) => [wavPcm(c), gap]));
}

const sessionEvents = (events) => events.filter((e) => typeof e.seq === 'number');
const finalsBySegment = (events) =>
  sessionEvents(events).filter((e) => e.type === 'transcript' && e.is_final).map((e) => [e.segment, e.text]);

async function metric(srv, name) {
  const text = await (await fetch(srv.http + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{') && l.split(' ')[0] === name);
  return line ? Number(line.split(' ').pop()) : NaN;
}

// A client that keeps what the spec asks of one: the session id and token,
// the last seq it saw, the audio it sent; and resumes on a new connection.
class ResumingClient {
  constructor(url) {
    this.url = url;
    this.events = [];   // every message of every connection, in arrival order
    this.session = [];  // session events (with seq) as the user sees them
    this.lastSeq = -1;
    this.sent = 0;
    this.acks = [];
    this.duplicates = 0;
  }

  attach(ws) {
    this.ws = ws;
    ws.on('error', () => {}); // a reset connection: 'close' follows
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('message', (data, isBinary) => {
      if (isBinary || ws !== this.ws) return;
      const e = JSON.parse(data.toString());
      this.events.push(e);
      if (e.type === 'ack') this.acks.push(e.audio_bytes);
      if (typeof e.seq !== 'number') return;
      if (e.seq <= this.lastSeq) { this.duplicates++; return; }
      this.lastSeq = e.seq;
      this.session.push(e);
    });
  }

  async open(config = CONFIG) {
    const ws = new WebSocket(this.url + '/v1/stream');
    this.attach(ws);
    await once(ws, 'open');
    ws.send(JSON.stringify({ type: 'config', ...config }));
    const ready = await waitFor(this.events, (e) => e.type === 'ready' || e.type === 'error', 15000);
    assert.equal(ready.type, 'ready', JSON.stringify(ready));
    assert.match(ready.resume_token, /^[0-9a-f]{32}$/);
    this.id = ready.session_id;
    this.token = ready.resume_token;
    this.ready = ready;
  }

  // The connection drops: no close frame, the TCP socket just goes.
  cut() {
    this.ws.removeAllListeners('message');
    this.ws._socket.destroy();
  }

  // Resumes on a new connection; resolves the first answer (resumed/error).
  async resume({ id = this.id, token = this.token } = {}) {
    const ws = new WebSocket(this.url + '/v1/stream');
    const mark = this.events.length;
    this.attach(ws);
    await once(ws, 'open');
    this.resumedFrom = this.lastSeq;
    ws.send(JSON.stringify({ type: 'resume', session_id: id, resume_token: token, last_seq: this.lastSeq, audio_bytes: this.sent }));
    return waitFor(this.events, (e, i) => i >= mark && (e.type === 'resumed' || e.type === 'error'), 15000);
  }

  // Streams pcm from offset `from` at up to bytesPerSec, cutting the
  // connection and resuming at each byte offset of `cuts`.
  async stream(pcm, { cuts = [], bytesPerSec = 128000, frame = 3200 } = {}) {
    let off = 0;
    const todo = [...cuts].sort((a, b) => a - b);
    const t0 = Date.now();
    let base = 0;
    while (off < pcm.length) {
      if (todo.length && off >= todo[0]) {
        todo.shift();
        await sleep(100 + Math.random() * 300); // some output in flight
        this.cut();
        await sleep(200);
        const r = await this.resume();
        assert.equal(r.type, 'resumed', JSON.stringify(r));
        assert.equal(r.session_id, this.id);
        assert.equal(r.last_seq, this.resumedFrom);
        assert.ok(r.audio_bytes <= this.sent, `server holds ${r.audio_bytes} > sent ${this.sent}`);
        const lastAck = this.acks.length ? Math.max(...this.acks) : 0;
        assert.ok(r.audio_bytes >= lastAck, `resumed at ${r.audio_bytes} < acked ${lastAck}`);
        off = r.audio_bytes; // resend what the server does not hold
        this.sent = off;
        base = off;
        continue;
      }
      const end = Math.min(off + frame, pcm.length);
      this.ws.send(pcm.subarray(off, end));
      off = end;
      this.sent = off;
      const due = t0 + ((off - base) / bytesPerSec) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
      while (this.ws.bufferedAmount > 1 << 18) await sleep(5);
    }
  }

  // Reconnects and resumes until it works (a resume's own connection may be
  // cut too); resolves the server's audio_bytes.
  async reconnect(tries = 40) {
    for (let i = 0; i < tries; i++) {
      await sleep(50 + i * 50);
      let r;
      try {
        r = await Promise.race([this.resume(), this.closed.then(() => null)]);
      } catch { r = null; }
      if (r && r.type === 'resumed' && this.ws.readyState === WebSocket.OPEN) {
        assert.ok(r.audio_bytes <= this.sent, `server holds ${r.audio_bytes} > sent ${this.sent}`);
        return r.audio_bytes;
      }
      assert.ok(!r || r.type !== 'error', 'resume refused: ' + JSON.stringify(r));
    }
    throw new Error('could not resume');
  }

  // Streams through connections that fail by themselves (the fault proxy).
  async streamThroughFaults(pcm, { bytesPerSec = 128000, frame = 3200 } = {}) {
    let off = 0, base = 0, t0 = Date.now();
    while (off < pcm.length) {
      if (this.ws.readyState !== WebSocket.OPEN) {
        off = this.sent = await this.reconnect();
        base = off;
        t0 = Date.now();
        this.reconnects = (this.reconnects || 0) + 1;
        continue;
      }
      const end = Math.min(off + frame, pcm.length);
      this.ws.send(pcm.subarray(off, end));
      off = this.sent = end;
      const wait = t0 + ((off - base) / bytesPerSec) * 1000 - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }

  async finish() {
    this.ws.send(JSON.stringify({ type: 'close' }));
    const c = await this.closed;
    assert.equal(c.code, 1000, JSON.stringify(c));
    assert.equal(this.session[this.session.length - 1].type, 'closed');
  }
}

let srv;
let reference; // finals of an uninterrupted run of speech()

before(async () => {
  srv = await startServer(['--workers', '2', '--resume-window', '30']);
  const s = await openNative(srv.url, CONFIG);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, speech());
  s.ws.send(JSON.stringify({ type: 'close' }));
  assert.equal((await s.closed).code, 1000);
  checkContract(s.events);
  reference = finalsBySegment(s.events);
  assert.ok(reference.length >= 3, 'several utterances: ' + JSON.stringify(reference));
});
after(async () => { if (srv) await srv.stop(); });

function assertSameTranscript(client) {
  assert.equal(client.duplicates, 0, 'an event with a seq already seen was sent after a resume');
  checkContract(client.session); // seq contiguous from 0, segments in order
  assert.deepEqual(finalsBySegment(client.session), reference);
}

test('a connection cut mid-utterance and resumed gives the transcript of an uninterrupted run', async () => {
  const pcm = speech();
  const c = new ResumingClient(srv.url);
  await c.open();
  assert.equal(c.ready.resume_window, 30);
  await c.stream(pcm, { cuts: [Math.floor(pcm.length * 0.3)] });
  await c.finish();
  assertSameTranscript(c);
  // acks: audio held, never decreasing, and one right after every final
  assert.ok(c.acks.length >= 2, 'acks: ' + c.acks);
  for (let i = 1; i < c.acks.length; i++) assert.ok(c.acks[i] >= c.acks[i - 1], 'ack went back');
  const evs = c.events;
  for (let i = 0; i < evs.length; i++)
    if (evs[i].type === 'transcript' && evs[i].is_final && i + 1 < evs.length && evs[i + 1].type !== 'closed')
      assert.equal(evs[i + 1].type, 'ack', 'no ack after final seq ' + evs[i].seq);
  assert.equal(c.acks[c.acks.length - 1], pcm.length);
  assert.equal(await metric(srv, 'hark_sessions_detached'), 0);
});

test('several cuts in one stream, at random points', async () => {
  const pcm = speech();
  const cuts = [0.15, 0.35, 0.5, 0.7, 0.9].map((f) => Math.floor(pcm.length * (f + (Math.random() - 0.5) * 0.08)));
  const c = new ResumingClient(srv.url);
  await c.open();
  await c.stream(pcm, { cuts });
  await c.finish();
  assertSameTranscript(c);
  const ok = await metric(srv, 'hark_resumes_total{result="ok"}');
  assert.ok(ok >= 6, 'resumes counted: ' + ok);
});

test('random resets through the fault proxy (RST mid-frame, both directions), resumed each time', async () => {
  const proxy = await FaultProxy.start({ port: srv.port });
  try {
    const pcm = speech();
    const c = new ResumingClient(proxy.url);
    await c.open();
    // up: ~1 MB of audio, down: ~90 KB of events; a cut per 2..40 KB of one
    // direction cuts both, many times
    proxy.randomCuts({ minBytes: 2000, maxBytes: 40000 });
    await c.streamThroughFaults(pcm);
    proxy.stopRandomCuts();
    if (c.ws.readyState !== WebSocket.OPEN) await c.reconnect();
    // the last audio must have arrived before the close (a cut may lose it)
    c.ws.send(JSON.stringify({ type: 'keepalive' }));
    let ack = await waitFor(c.events, (e) => e.type === 'ack' && e.audio_bytes === pcm.length, 2000).catch(() => null);
    if (!ack) {
      const h = await c.reconnect();
      c.ws.send(pcm.subarray(h));
    }
    await c.finish();
    assert.ok(proxy.counters.cuts >= 5, 'cuts: ' + JSON.stringify(proxy.counters));
    assertSameTranscript(c);
  } finally {
    await proxy.close();
  }
});

test('a keepalive is answered with an ack', async () => {
  const c = new ResumingClient(srv.url);
  await c.open();
  c.ws.send(Buffer.alloc(3200));
  c.sent = 3200;
  c.ws.send(JSON.stringify({ type: 'keepalive' }));
  await waitFor(c.events, (e) => e.type === 'ack' && e.audio_bytes === 3200, 10000);
  await c.finish();
});

test('resume refused: wrong token, unknown id, after the window; then 4404', async () => {
  const s2 = await startServer(['--resume-window', '2']);
  try {
    const c = new ResumingClient(s2.url);
    await c.open();
    await c.stream(speech(1).subarray(0, 64000));
    await sleep(300);
    c.cut();
    await sleep(200);
    for (const bad of [{ token: '0'.repeat(32) }, { token: c.token.slice(0, 31) }, { id: 'no-such-session' }]) {
      const r = await c.resume(bad);
      assert.equal(r.type, 'error', JSON.stringify(r));
      assert.equal(r.code, 'resume_failed');
      assert.equal((await c.closed).code, 4404);
    }
    // the client claims less audio than the server holds
    c.sent = 10;
    let r = await c.resume();
    assert.equal(r.code, 'resume_failed', JSON.stringify(r));
    assert.match(r.message, /sent 10 audio bytes/);
    assert.equal((await c.closed).code, 4404);
    c.sent = 64000;
    await sleep(4500); // past the 2 s window (the timer ticks each second)
    r = await c.resume();
    assert.equal(r.code, 'resume_failed', JSON.stringify(r));
    assert.equal((await c.closed).code, 4404);
    assert.equal(await metric(s2, 'hark_sessions_expired_total{reason="resume_window"}'), 1);
    assert.equal(await metric(s2, 'hark_resumes_total{result="failed"}'), 5);
    assert.equal(await metric(s2, 'hark_sessions_active'), 0);
    // a resume that is not the first message
    const d = new ResumingClient(s2.url);
    await d.open();
    d.ws.send(JSON.stringify({ type: 'resume', session_id: d.id, resume_token: d.token, last_seq: -1, audio_bytes: 0 }));
    const e = await waitFor(d.events, (x) => x.type === 'error');
    assert.equal(e.code, 'protocol_error');
    await d.finish();
  } finally {
    await s2.stop();
  }
});

test('half-open: the client resumes on a new connection, the old one gets 4409; a dead peer detaches', async () => {
  const s3 = await startServer(['--ping-interval', '1']);
  try {
    const pcm = speech(2);
    const c = new ResumingClient(s3.url);
    await c.open();
    const half = Math.floor(pcm.length / 2);
    await c.stream(pcm.subarray(0, half));
    await sleep(300);
    const old = c.ws;
    old._socket.pause(); // stalls: reads nothing, answers no ping
    const r = await c.resume();
    assert.equal(r.type, 'resumed', JSON.stringify(r));
    const oldClosed = new Promise((resolve) => old.on('close', (code) => resolve(code)));
    old._socket.resume();
    assert.equal(await oldClosed, 4409);
    // the session goes on, on the new connection
    c.ws.send(pcm.subarray(r.audio_bytes));
    c.sent = pcm.length;
    await c.finish();
    assert.equal(c.duplicates, 0);
    checkContract(c.session);

    // a peer that stops answering is found by the pings (~2 intervals) and
    // its session detaches rather than ends
    const d = new ResumingClient(s3.url);
    await d.open();
    d.ws.send(pcm.subarray(0, 32000));
    d.sent = 32000;
    await sleep(300);
    d.ws._socket.pause();
    const t0 = Date.now();
    while ((await metric(s3, 'hark_sessions_detached')) !== 1) {
      assert.ok(Date.now() - t0 < 15000, 'dead peer not detected');
      await sleep(200);
    }
    const r2 = await d.resume();
    assert.equal(r2.type, 'resumed', JSON.stringify(r2));
    assert.equal(r2.audio_bytes, 32000);
    await d.finish();
  } finally {
    await s3.stop();
  }
});

test("a detached session's memory is bounded by --resume-buffer-bytes", async () => {
  // a session buffer that takes the whole upload: it is all queued when the
  // connection drops, and decoded while detached
  const s4 = await startServer(['--resume-buffer-bytes', '8192', '--workers', '1', '--resume-window', '600',
    '--session-buffer-bytes', '8388608']);
  try {
    const pcm = speech();
    // Partials only (finals are small): superseded partials are dropped
    // while detached, and the resume still gives every final.
    const c = new ResumingClient(s4.url);
    await c.open();
    c.ws.send(pcm); // all at once: most of it is decoded while detached
    c.sent = pcm.length;
    await waitFor(c.events, (e) => e.type === 'ack' && e.audio_bytes === pcm.length, 20000);
    c.cut();
    let peak = 0;
    for (let i = 0; i < 40; i++) {
      peak = Math.max(peak, await metric(s4, 'hark_detached_buffer_bytes'));
      await sleep(250);
    }
    assert.ok(peak > 0 && peak <= 8192, 'detached buffer peak ' + peak);
    const r = await c.resume();
    assert.equal(r.type, 'resumed', JSON.stringify(r));
    c.ws.send(pcm.subarray(r.audio_bytes)); // what never arrived
    await c.finish();
    assert.equal(c.duplicates, 0);
    assert.deepEqual(finalsBySegment(c.session), reference);

    // Finals with word timings exceed the budget alone: the session ends,
    // the resume fails, and the memory is given back.
    const d = new ResumingClient(s4.url);
    await d.open({ ...CONFIG, words: true, interim_results: false });
    const long = Buffer.concat([pcm, pcm, pcm]);
    for (let off = 0; off < long.length; off += 65536) d.ws.send(long.subarray(off, off + 65536));
    d.sent = long.length;
    await waitFor(d.events, (e) => e.type === 'ack' && e.audio_bytes === d.sent, 20000);
    d.cut();
    const t0 = Date.now();
    while ((await metric(s4, 'hark_sessions_expired_total{reason="resume_buffer"}')) !== 1) {
      assert.ok(Date.now() - t0 < 120000, 'session over the buffer not ended');
      assert.ok(await metric(s4, 'hark_detached_buffer_bytes') <= 8192);
      await sleep(250);
    }
    const r2 = await d.resume();
    assert.equal(r2.code, 'resume_failed', JSON.stringify(r2));
    assert.equal(await metric(s4, 'hark_detached_buffer_bytes'), 0);
    assert.equal(await metric(s4, 'hark_sessions_active'), 0);
  } finally {
    await s4.stop();
  }
});

test("a detached session's events are bounded by count too (--resume-buffer-events)", async () => {
  // bytes to spare, 16 events: finals alone pass the count while detached
  const s5 = await startServer(['--resume-buffer-events', '16', '--resume-buffer-bytes', '16777216', '--workers', '1',
    '--resume-window', '600', '--session-buffer-bytes', '16777216']);
  try {
    const pcm = speech();
    const d = new ResumingClient(s5.url);
    await d.open({ ...CONFIG, interim_results: false });
    // 30 utterances (one final each): at most a few are sent before the cut
    const long = Buffer.concat([pcm, pcm, pcm, pcm, pcm, pcm]);
    for (let off = 0; off < long.length; off += 65536) d.ws.send(long.subarray(off, off + 65536));
    d.sent = long.length;
    await waitFor(d.events, (e) => e.type === 'ack' && e.audio_bytes === d.sent, 20000);
    d.cut();
    const t0 = Date.now();
    while ((await metric(s5, 'hark_sessions_expired_total{reason="resume_buffer"}')) !== 1) {
      assert.ok(Date.now() - t0 < 150000, 'session over the event count not ended');
      await sleep(250);
    }
    const r = await d.resume();
    assert.equal(r.code, 'resume_failed', JSON.stringify(r));
    assert.equal(await metric(s5, 'hark_sessions_detached'), 0);
    assert.equal(await metric(s5, 'hark_sessions_active'), 0);
  } finally {
    await s5.stop();
  }
});

test('the idle timeout does not end a detached session; the resume window does', async () => {
  const s5 = await startServer(['--idle-timeout', '1', '--resume-window', '6']);
  try {
    const c = new ResumingClient(s5.url);
    await c.open();
    c.ws.send(Buffer.alloc(6400));
    c.sent = 6400;
    await sleep(200);
    c.cut();
    await sleep(3000); // 3 idle timeouts
    assert.equal(await metric(s5, 'hark_sessions_detached'), 1);
    const r = await c.resume();
    assert.equal(r.type, 'resumed', JSON.stringify(r));
    // attached again, the idle timeout applies again
    const e = await waitFor(c.events, (x) => x.type === 'error' && x.code === 'timeout', 10000);
    assert.ok(e);
    assert.equal((await c.closed).code, 4408);

    const d = new ResumingClient(s5.url);
    await d.open();
    d.ws.send(Buffer.alloc(6400));
    d.sent = 6400;
    await sleep(200);
    d.cut();
    const t0 = Date.now();
    await sleep(1000);
    assert.equal(await metric(s5, 'hark_sessions_detached'), 1);
    while ((await metric(s5, 'hark_sessions_detached')) !== 0) {
      assert.ok(Date.now() - t0 < 20000, 'window never expired');
      await sleep(250);
    }
    assert.ok(Date.now() - t0 >= 5000, 'expired before the window: ' + (Date.now() - t0));
    const r2 = await d.resume();
    assert.equal(r2.code, 'resume_failed');
  } finally {
    await s5.stop();
  }
});
