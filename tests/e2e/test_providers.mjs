// Network engines and failover (docs/engines.md): hark in front of an
// OpenAI-compatible transcription server. The upstream is a second real
// `hark serve` (its POST /v1/audio/transcriptions), started by the test;
// the front is `hark serve --engine openai --openai-url <upstream>/v1`.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import WebSocket from 'ws';
import { once } from 'node:events';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  HARK, CLIPS, startServer, openNative, streamPcm, waitFor, wavPcm, wavOf, finals, wer, checkContract,
  curl, sleep,
} from './lib.mjs';

const SILENCE = Buffer.alloc(32000 * 1.2); // 1.2 s: ends an utterance (endpointing 500 ms)
const clips = CLIPS.slice(0, 3).map(wavPcm);
// Each clip, then silence: one utterance per clip.
const audio = Buffer.concat(clips.flatMap((c) => [c, SILENCE]));
let dir;

before(() => { dir = mkdtempSync(path.join(os.tmpdir(), 'hark-prov-')); });
after(() => { rmSync(dir, { recursive: true, force: true }); });

async function session(url, pcm, config = {}, opts = {}) {
  const s = await openNative(url, config);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, pcm, opts);
  s.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(s.events, (e) => e.type === 'closed', 120000);
  s.ws.close();
  return s.events;
}

// The upstream's own batch answer for one utterance (what the front should relay).
async function batch(up, pcm, key) {
  const f = path.join(dir, `u${Math.random().toString(36).slice(2)}.wav`);
  writeFileSync(f, wavOf(pcm));
  const r = await curl([`${up.http}/v1/audio/transcriptions`, '-F', `file=@${f}`, '-F', 'model=whisper-1',
    ...(key ? ['-H', `Authorization: Bearer ${key}`] : [])]);
  assert.equal(r.status, 200, r.body.toString());
  return JSON.parse(r.body).text;
}

function front(up, extra = []) {
  return startServer(['--workers', '2', '--engine', 'openai', '--openai-url', `${up.http}/v1`, ...extra]);
}

test('engine openai: finals match the upstream\'s own batch results for the same utterances, in order with the events after them', async () => {
  const up = await startServer(['--workers', '2']);
  const fr = await front(up);
  try {
    // as fast as the socket takes it: the next utterance's speech_started
    // happens while the previous final is still at the upstream
    const ev = await session(fr.url, audio);
    checkContract(ev);
    const fin = ev.filter((e) => e.type === 'transcript' && e.is_final && e.text);
    assert.equal(fin.length, clips.length, JSON.stringify(fin));
    const ref = [];
    for (const c of clips) ref.push(await batch(up, c));
    // Tolerance: the front cuts each utterance with its VAD (a few frames
    // differ from the whole clip), the upstream's VAD and decoder then see
    // nearly the same audio: word error rate against the batch text <= 10 %.
    const w = wer(ref.join(' '), fin.map((e) => e.text).join(' '));
    assert.ok(w.errors <= Math.ceil(w.words * 0.1), `${w.errors}/${w.words}\nref: ${ref.join(' ')}\nhyp: ${finals(ev)}`);
    // words with times come through verbose_json, mapped to session time
    for (const e of fin) {
      assert.ok(e.words.length > 0, JSON.stringify(e));
      assert.ok(e.words[0].start >= e.start - 0.05 && e.words.at(-1).end <= e.end + 0.05, JSON.stringify(e));
    }
    // Order: every speech_started after segment k's start comes after its final.
    const idx = (p) => ev.findIndex(p);
    for (let k = 1; k < fin.length; k++) {
      const sp = idx((e) => e.type === 'speech_started' && e.timestamp > fin[k - 1].end - 0.01);
      assert.ok(sp > ev.indexOf(fin[k - 1]), `speech_started of segment ${k} before final ${k - 1}`);
    }
  } finally {
    await fr.stop();
    await up.stop();
  }
});

test('upstream SIGKILLed mid-session with --fallback-engine pocketsphinx: provider_failover, no word lost; the next session goes straight to the fallback (breaker), a metric counts both', async () => {
  const up = await startServer(['--workers', '2']);
  // cooldown far longer than this test, however slow the machine
  const fr = await front(up, ['--fallback-engine', 'pocketsphinx', '--openai-retries', '1', '--provider-cooldown-ms', '600000']);
  const local = await startServer(['--workers', '2']);
  let upDead = false;
  try {
    // the reference first: a plain pocketsphinx session on the same audio
    const ref = finals(await session(local.url, audio));
    const s = await openNative(fr.url, {});
    await streamPcm(s.ws, Buffer.concat([clips[0], SILENCE]));
    // silence in real time until the upstream answered (a slow machine must
    // not idle-time-out the session meanwhile)
    for (let i = 0; i < 600 && !s.events.some((e) => e.type === 'transcript' && e.is_final); i++) {
      s.ws.send(Buffer.alloc(3200));
      await sleep(100);
    }
    await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final, 1000);
    const tKill = Date.now();
    await up.stop('SIGKILL'); // (stop() again would wait for a second exit)
    upDead = true;
    await streamPcm(s.ws, Buffer.concat([clips[1], SILENCE, clips[2], SILENCE]), { realtime: false });
    const fo = await waitFor(s.events, (e) => e.type === 'provider_failover', 60000);
    const firstAfter = await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final && e.seq > fo.seq, 60000);
    const failoverMs = Date.now() - tKill;
    s.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(s.events, (e) => e.type === 'closed', 60000);
    checkContract(s.events);
    assert.equal(fo.reason, 'unreachable', JSON.stringify(fo));
    assert.equal(fo.code, 'provider_error');
    assert.equal(fo.from, 'openai');
    assert.equal(fo.to, 'pocketsphinx');
    assert.ok(firstAfter.text.length > 0);
    // No word lost: the finals against a plain pocketsphinx session on the
    // same audio; utterance 1 came from the upstream (hark + pocketsphinx
    // too), the rest from the fallback replaying kept audio: WER <= 10 %.
    const w = wer(ref, finals(s.events));
    assert.ok(w.errors <= Math.ceil(w.words * 0.1), `${w.errors}/${w.words}\nref: ${ref}\nhyp: ${finals(s.events)}`);
    console.log(`# failover: kill -> first fallback final ${failoverMs} ms (fast stream, retries 1)`);

    // Breaker open: the next session starts on pocketsphinx.
    const t0 = Date.now();
    const ev2 = await session(fr.url, Buffer.concat([clips[0], SILENCE]));
    const fo2 = ev2.find((e) => e.type === 'provider_failover');
    assert.ok(fo2, JSON.stringify(ev2).slice(0, 500));
    assert.equal(fo2.reason, 'circuit_open');
    const fin2 = ev2.find((e) => e.type === 'transcript' && e.is_final);
    assert.ok(ev2.indexOf(fo2) < ev2.indexOf(fin2));
    assert.ok(fin2.text.split(' ').length > 5, fin2.text);
    assert.ok(Date.now() - t0 < 20000);
    const m = (await curl([`${fr.http}/metrics`])).body.toString();
    assert.match(m, /hark_provider_failovers_total\{reason="unreachable"\} 1\b/);
    assert.match(m, /hark_provider_failovers_total\{reason="circuit_open"\} 1\b/);
  } finally {
    await fr.stop();
    await local.stop();
    if (!upDead) await up.stop();
  }
});

// A slow provider: an HTTP relay that holds each request delayMs before
// passing it on to the real upstream (a GPU server under load answers late).
async function slowRelay(up, delayMs) {
  const target = new URL(up.http);
  const relay = { requests: 0 };
  const srv = http.createServer((req, res) => {
    relay.requests++;
    const body = [];
    req.on('data', (d) => body.push(d));
    req.on('end', () => setTimeout(() => {
      const fwd = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
      fwd.on('error', () => { res.writeHead(502); res.end(); });
      fwd.end(Buffer.concat(body));
    }, delayMs));
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return Object.assign(relay, { http: `http://127.0.0.1:${srv.address().port}`, close: () => srv.close() });
}

test('a silent client waiting for a slow provider\'s final is not ended by the idle timeout (the wait counts as activity)', async () => {
  const up = await startServer(['--workers', '2']);
  const slow = await slowRelay(up, 4000);
  // idle timeout 1 s, the provider answers after >= 4 s
  const fr = await front(slow, ['--idle-timeout', '1']);
  try {
    const s = await openNative(fr.url, {});
    await streamPcm(s.ws, Buffer.concat([clips[0], SILENCE]), { realtime: false });
    // then nothing at all from the client
    const fin = await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final || e.type === 'closed', 60000);
    assert.equal(fin.type, 'transcript', JSON.stringify(s.events.filter((e) => e.type !== 'transcript')));
    assert.ok(fin.text.length > 0, JSON.stringify(fin));
    const early = s.events.filter((e) => (e.type === 'error' || e.type === 'closed') && e.seq < fin.seq);
    assert.deepEqual(early, []);
    // afterwards the client is idle for real: the idle rule ends the session
    const err = await waitFor(s.events, (e) => e.type === 'error', 30000);
    assert.equal(err.code, 'timeout', JSON.stringify(err));
    assert.ok(err.seq > fin.seq);
    s.ws.close();
  } finally {
    await fr.stop();
    slow.close();
    await up.stop();
  }
});

test('an error about the client\'s input keeps its place behind a final still awaited from the provider', async () => {
  const up = await startServer(['--workers', '2']);
  const slow = await slowRelay(up, 3000);
  const fr = await front(slow);
  try {
    const s = await openNative(fr.url, {});
    await streamPcm(s.ws, Buffer.concat([clips[0], SILENCE]), { realtime: false });
    // the utterance went to the provider; this message is bad input after it
    s.ws.send(JSON.stringify({ type: 'bogus' }));
    const err = await waitFor(s.events, (e) => e.type === 'error', 60000);
    s.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(s.events, (e) => e.type === 'closed', 60000);
    checkContract(s.events);
    const fin = s.events.find((e) => e.type === 'transcript' && e.is_final);
    assert.ok(fin && fin.text.length > 0, JSON.stringify(s.events));
    // arrival order and seq order both: the final first
    assert.ok(s.events.indexOf(fin) < s.events.indexOf(err), JSON.stringify(s.events.map((e) => e.type)));
    assert.ok(fin.seq < err.seq);
    assert.match(err.message, /bogus/);
    s.ws.close();
  } finally {
    await fr.stop();
    slow.close();
    await up.stop();
  }
});

// A Deepgram session through the front: its finals' text.
async function dgSession(fr, model, pcm) {
  const ws = new WebSocket(`${fr.url}/v1/listen?model=${model}&encoding=linear16&sample_rate=16000`);
  const msgs = [];
  ws.on('message', (d) => msgs.push(JSON.parse(d)));
  const closed = once(ws, 'close');
  await once(ws, 'open');
  for (let i = 0; i < pcm.length; i += 32000) ws.send(pcm.subarray(i, i + 32000));
  ws.send(JSON.stringify({ type: 'CloseStream' }));
  await Promise.race([closed, sleep(120000)]);
  return msgs.filter((m) => m.type === 'Results' && m.is_final).map((m) => m.channel.alternatives[0].transcript).join(' ').trim();
}

test('Deepgram `model`: an engine\'s name picks that engine, any other name (nova-3) the server\'s engine', async () => {
  const up = await startServer(['--workers', '2']);
  const relay = await slowRelay(up, 0);
  const fr = await front(relay, ['--fallback-engine', 'pocketsphinx']);
  try {
    const pcm = Buffer.concat([clips[0], SILENCE]);
    const viaProvider = await dgSession(fr, 'nova-3', pcm);
    assert.ok(viaProvider.length > 0);
    const n = relay.requests;
    assert.ok(n >= 1, 'nova-3 goes to the configured provider engine');
    const local = await dgSession(fr, 'pocketsphinx', pcm);
    assert.ok(local.length > 0);
    assert.equal(relay.requests, n, 'model=pocketsphinx is recognised locally');
    // an explicit engine the server does not have is refused (HTTP 400 at the upgrade)
    const ps = await startServer(['--workers', '1']);
    try {
      const ws = new WebSocket(`${ps.url}/v1/listen?model=openai&encoding=linear16&sample_rate=16000`);
      ws.on('error', () => {});
      const [, res] = await Promise.race([once(ws, 'unexpected-response'), sleep(30000).then(() => [null, null])]);
      assert.equal(res?.statusCode, 400);
      res.resume();
      ws.on('error', () => {});
    } finally {
      await ps.stop();
    }
  } finally {
    await fr.stop();
    relay.close();
    await up.stop();
  }
});

test('breaker: after the cooldown one session probes the provider again; its success closes the circuit', async () => {
  const up = await startServer(['--workers', '2']);
  const port = up.port;
  const fr = await startServer(['--workers', '2', '--engine', 'openai', '--openai-url', `http://127.0.0.1:${port}/v1`,
    '--fallback-engine', 'pocketsphinx', '--openai-retries', '0', '--provider-cooldown-ms', '20000']);
  try {
    await up.stop('SIGKILL'); // before any session: the first one fails over
    const ev1 = await session(fr.url, Buffer.concat([clips[0], SILENCE]));
    const tOpen = Date.now(); // the circuit opened during ev1 (20 s: ev2 starts well inside it)
    assert.equal(ev1.find((e) => e.type === 'provider_failover')?.reason, 'unreachable');
    const ev2 = await session(fr.url, Buffer.concat([clips[0], SILENCE]));
    assert.equal(ev2.find((e) => e.type === 'provider_failover')?.reason, 'circuit_open', fr.log());
    assert.ok(finals(ev2).length > 10);
    // the upstream comes back on the same port
    const back = await startServerOn(port);
    try {
      await sleep(Math.max(0, tOpen + 20500 - Date.now())); // past the cooldown
      const ev3 = await session(fr.url, Buffer.concat([clips[0], SILENCE]));
      assert.equal(ev3.find((e) => e.type === 'provider_failover'), undefined, JSON.stringify(ev3).slice(0, 600));
      assert.ok(finals(ev3).length > 10);
      const ev4 = await session(fr.url, Buffer.concat([clips[0], SILENCE]));
      assert.equal(ev4.find((e) => e.type === 'provider_failover'), undefined);
      assert.match(fr.log(), /circuit closed/);
    } finally {
      await back.stop();
    }
  } finally {
    await fr.stop();
  }
});

// `hark serve` on a given port (lib's startServer picks a free one).
async function startServerOn(port) {
  const proc = spawn(HARK, ['serve', '--host', '127.0.0.1', '--port', String(port), '--workers', '2'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('upstream did not restart')), 30000);
    proc.stdout.on('data', (d) => { out += d; if (/listening on/.test(out)) { clearTimeout(timer); resolve(); } });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`upstream exited ${code}`)); });
  });
  return { async stop() { if (proc.exitCode === null) { proc.kill('SIGTERM'); await once(proc, 'exit'); } } };
}

test('a key the upstream refuses: an unauthorized error (no fallback), or a failover with reason auth (fallback)', async () => {
  const up = await startServer(['--workers', '2', '--api-keys', 'right-key']);
  const bad = await front(up, ['--openai-key', 'wrong-key']);
  const badFb = await front(up, ['--openai-key', 'wrong-key', '--fallback-engine', 'pocketsphinx']);
  const good = await startServer(['--workers', '2', '--engine', 'openai', '--openai-url', `${up.http}/v1`],
    { HARK_OPENAI_KEY: 'right-key' });
  try {
    const ev = await session(bad.url, Buffer.concat([clips[0], SILENCE]));
    const err = ev.find((e) => e.type === 'error');
    assert.ok(err, JSON.stringify(ev).slice(0, 600));
    assert.equal(err.code, 'unauthorized');
    assert.match(err.message, /refused the key \(HTTP 401\)/);
    // still exactly one (empty) final for the segment
    const fin = ev.filter((e) => e.type === 'transcript' && e.is_final);
    assert.equal(fin.length, 1);
    assert.equal(fin[0].text, '');
    assert.ok(!bad.log().includes('wrong-key'));

    const ev2 = await session(badFb.url, Buffer.concat([clips[0], SILENCE]));
    const fo = ev2.find((e) => e.type === 'provider_failover');
    assert.equal(fo?.reason, 'auth', JSON.stringify(ev2).slice(0, 600));
    assert.equal(fo.code, 'unauthorized');
    assert.ok(finals(ev2).split(' ').length > 5, finals(ev2));

    const ev3 = await session(good.url, Buffer.concat([clips[0], SILENCE]));
    assert.equal(ev3.find((e) => e.type === 'error'), undefined);
    assert.ok(finals(ev3).split(' ').length > 5);
  } finally {
    await Promise.all([bad.stop(), badFb.stop(), good.stop()]);
    await up.stop();
  }
});

test('per session: engine "pocketsphinx" picks the fallback by name, an unknown engine is refused naming both; WHISPER_URL selects openai', async () => {
  const up = await startServer(['--workers', '2']);
  const fr = await startServer(['--workers', '2', '--fallback-engine', 'pocketsphinx'], { WHISPER_URL: `${up.http}/v1` });
  try {
    const s = await openNative(fr.url, {});
    assert.equal(s.ready.engine, 'openai');
    s.ws.close();
    const ps = await openNative(fr.url, { engine: 'pocketsphinx' });
    assert.equal(ps.ready.type, 'ready', JSON.stringify(ps.ready));
    await streamPcm(ps.ws, Buffer.concat([clips[0], SILENCE]));
    ps.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(ps.events, (e) => e.type === 'closed', 60000);
    assert.ok(finals(ps.events).split(' ').length > 5);
    assert.equal(ps.events.find((e) => e.type === 'provider_failover'), undefined);
    const no = await openNative(fr.url, { engine: 'nope' });
    assert.equal(no.ready.type, 'error');
    assert.match(no.ready.message, /'openai' and 'pocketsphinx'/);
  } finally {
    await fr.stop();
    await up.stop();
  }
});

test('hark transcribe --engine openai (no notifier: each final is waited for) gives the upstream\'s text', async () => {
  const up = await startServer(['--workers', '2']);
  try {
    const r = spawnSync(HARK, ['transcribe', '--engine', 'openai', '--engine-opt', `url=${up.http}/v1`, CLIPS[0]],
      { encoding: 'utf8', timeout: 60000 });
    assert.equal(r.status, 0, r.stderr);
    const ref = await batch(up, clips[0]);
    const w = wer(ref, r.stdout.trim());
    assert.ok(w.errors <= Math.ceil(w.words * 0.1), `${ref}\n${r.stdout}`);
  } finally {
    await up.stop();
  }
});

test('hark engines lists the built-in engines; bad openai settings fail at start with a clear message', () => {
  const r = spawnSync(HARK, ['engines'], { encoding: 'utf8', timeout: 10000 });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^pocketsphinx /m);
  assert.match(r.stdout, /^openai /m);
  assert.match(r.stdout, /not configured/);
  assert.match(r.stdout, /^in use: pocketsphinx$/m);
  const c = spawnSync(HARK, ['engines', '--fallback-engine', 'pocketsphinx'], {
    encoding: 'utf8', timeout: 10000, env: { ...process.env, WHISPER_URL: 'http://gpu:8000/v1', HARK_OPENAI_KEY: 'sekrit' } });
  assert.equal(c.status, 0, c.stderr);
  assert.match(c.stdout, /configured: http:\/\/gpu:8000\/v1, model whisper-1, with a key/);
  assert.match(c.stdout, /^in use: openai, failing over to pocketsphinx/m);
  assert.ok(!c.stdout.includes('sekrit'));
  const bad = spawnSync(HARK, ['serve', '--port', '0', '--engine', 'openai', '--openai-url', 'ftp://x'], { encoding: 'utf8', timeout: 20000 });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /must start with http:\/\/ or https:\/\//);
  const fb = spawnSync(HARK, ['serve', '--port', '0', '--fallback-engine', 'pocketsphinx'], { encoding: 'utf8', timeout: 20000 });
  assert.notEqual(fb.status, 0);
  assert.match(fb.stderr, /a fallback is for a network engine/);
});
