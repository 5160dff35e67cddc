// Engine deepgram (docs/engines.md): hark in front of a Deepgram-compatible
// live endpoint. The upstream is a second real `hark serve` (its
// WebSocket /v1/listen), started by the test; the front is
// `hark serve --engine deepgram --deepgram-url ws://<upstream>/v1/listen`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { FaultProxy } from './faultproxy.mjs';
import {
  HARK, CLIPS, startServer, openNative, streamPcm, waitFor, wavPcm, finals, wer, checkContract, curl, sleep,
} from './lib.mjs';

const SILENCE = Buffer.alloc(32000 * 1.2); // 1.2 s: ends an utterance (endpointing 500 ms)
const clips = CLIPS.slice(0, 3).map(wavPcm);
const audio = Buffer.concat(clips.flatMap((c) => [c, SILENCE]));

async function session(url, pcm, config = {}, opts = {}) {
  const s = await openNative(url, config);
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, pcm, opts);
  s.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(s.events, (e) => e.type === 'closed', 120000);
  s.ws.close();
  return s.events;
}

// A Finalize timeout far longer than a loaded machine's slowest answer: the
// failures these tests cause are refusals, drops and closes.
function front(up, extra = [], env = {}) {
  return startServer(['--workers', '2', '--engine', 'deepgram', '--deepgram-url', `${up.url}/v1/listen`,
    '--deepgram-timeout-ms', '60000', ...extra], env);
}

test('engine deepgram: finals equal a direct session on the upstream, with words in session time, partials from interim results, in order', async () => {
  const up = await startServer(['--workers', '2']);
  const fr = await front(up);
  try {
    const direct = await session(up.url, audio);
    const ev = await session(fr.url, audio);
    checkContract(ev);
    const fin = ev.filter((e) => e.type === 'transcript' && e.is_final && e.text);
    assert.equal(fin.length, clips.length, JSON.stringify(fin).slice(0, 1000));
    // Tolerance: the front's VAD cuts each utterance and the upstream hears
    // only those (a few frames differ from the whole stream): WER <= 10 %.
    const w = wer(finals(direct), finals(ev));
    assert.ok(w.errors <= Math.ceil(w.words * 0.1), `${w.errors}/${w.words}\nref: ${finals(direct)}\nhyp: ${finals(ev)}`);
    for (const e of fin) {
      assert.ok(e.words.length > 0, JSON.stringify(e));
      assert.ok(e.words[0].start >= e.start - 0.05 && e.words.at(-1).end <= e.end + 0.05, JSON.stringify(e));
    }
    const idx = (p) => ev.findIndex(p);
    for (let k = 1; k < fin.length; k++) {
      const sp = idx((e) => e.type === 'speech_started' && e.timestamp > fin[k - 1].end - 0.01);
      assert.ok(sp > ev.indexOf(fin[k - 1]), `speech_started of segment ${k} before final ${k - 1}`);
    }
    // in real time, partials come from the upstream's interim results, before their final
    const rt = await session(fr.url, Buffer.concat([clips[0].subarray(0, 32000 * 4), SILENCE]), { interim_results: true }, { realtime: true });
    const parts = rt.filter((e) => e.type === 'transcript' && !e.is_final && e.text);
    const fin0 = rt.find((e) => e.type === 'transcript' && e.is_final && e.text);
    assert.ok(parts.length > 0 && fin0, JSON.stringify(rt).slice(0, 1000));
    assert.ok(rt.indexOf(parts[0]) < rt.indexOf(fin0));
  } finally {
    await fr.stop();
    await up.stop();
  }
});

test('upstream SIGKILLed mid-session with --fallback-engine pocketsphinx: provider_failover (unreachable), no word lost; a metric counts it', async () => {
  const up = await startServer(['--workers', '2']);
  const fr = await front(up, ['--fallback-engine', 'pocketsphinx', '--provider-cooldown-ms', '600000']);
  const local = await startServer(['--workers', '2']);
  let upDead = false;
  try {
    const ref = finals(await session(local.url, audio));
    const s = await openNative(fr.url, {});
    await streamPcm(s.ws, Buffer.concat([clips[0], SILENCE]));
    for (let i = 0; i < 600 && !s.events.some((e) => e.type === 'transcript' && e.is_final); i++) {
      s.ws.send(Buffer.alloc(3200));
      await sleep(100);
    }
    await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final, 1000);
    const m0 = (await curl([`${fr.http}/metrics`])).body.toString();
    assert.match(m0, /^hark_provider_circuit_state\{engine="deepgram"\} 0$/m);
    // killed in the middle of the second utterance: half of it went upstream
    const half = clips[1].length / 2 & ~1;
    await streamPcm(s.ws, clips[1].subarray(0, half));
    await sleep(500);
    const tKill = Date.now();
    await up.stop('SIGKILL'); // (stop() again would wait for a second exit)
    upDead = true;
    await streamPcm(s.ws, Buffer.concat([clips[1].subarray(half), SILENCE, clips[2], SILENCE]));
    const fo = await waitFor(s.events, (e) => e.type === 'provider_failover', 60000);
    const firstAfter = await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final && e.seq > fo.seq, 60000);
    const failoverMs = Date.now() - tKill;
    s.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(s.events, (e) => e.type === 'closed', 60000);
    checkContract(s.events);
    assert.equal(fo.reason, 'unreachable', JSON.stringify(fo));
    assert.equal(fo.code, 'provider_error');
    assert.equal(fo.from, 'deepgram');
    assert.equal(fo.to, 'pocketsphinx');
    assert.ok(firstAfter.text.length > 0);
    // No word lost: utterance 1 from the upstream, 2 (replayed from its
    // start) and 3 from the fallback: WER <= 10 % against pocketsphinx alone.
    const w = wer(ref, finals(s.events));
    assert.ok(w.errors <= Math.ceil(w.words * 0.1), `${w.errors}/${w.words}\nref: ${ref}\nhyp: ${finals(s.events)}`);
    console.log(`# failover: kill -> first fallback final ${failoverMs} ms`);
    const m = (await curl([`${fr.http}/metrics`])).body.toString();
    assert.match(m, /hark_provider_failovers_total\{reason="unreachable"\} 1\b/);
    // the breaker is open: the metric, and `hark engines --server`
    assert.match(m, /^hark_provider_circuit_state\{engine="deepgram"\} 1$/m);
    const r = spawnSync(HARK, ['engines', '--server', fr.http], { encoding: 'utf8', timeout: 20000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^circuit of deepgram at \S+: open \(new sessions use the fallback\)$/m);
  } finally {
    await fr.stop();
    await local.stop();
    if (!upDead) await up.stop();
  }
});

// A Deepgram client's `model` (nova-2, ...) names the provider's model: it
// goes upstream as model=. Seen on the wire between the front and the
// upstream (a pass-through proxy that records the request).
test('engine deepgram: a Deepgram client\'s model goes to the provider as its model=; an engine\'s name picks that engine instead', async () => {
  const WebSocket = createRequire(import.meta.url)('ws');
  const up = await startServer(['--workers', '2']);
  let sent = '';
  const proxy = await FaultProxy.start({ port: up.port, log: () => {}, tap: (dir, d) => { if (dir === 'up') sent += d.toString('latin1'); } });
  const fr = await front({ url: proxy.url }, ['--fallback-engine', 'pocketsphinx']);
  const dgSession = async (model) => {
    const ws = new WebSocket(`${fr.url}/v1/listen?model=${model}&encoding=linear16&sample_rate=16000`);
    const msgs = [];
    ws.on('message', (d) => msgs.push(JSON.parse(d.toString())));
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    await streamPcm(ws, Buffer.concat([clips[1], SILENCE]));
    ws.send(JSON.stringify({ type: 'CloseStream' }));
    await new Promise((resolve) => ws.once('close', resolve));
    return msgs.filter((m) => m.type === 'Results' && m.is_final).map((m) => m.channel.alternatives[0].transcript).join(' ');
  };
  try {
    assert.match(await dgSession('nova-2'), /young man/);
    assert.match(sent, /^GET \/v1\/listen\?[^ \r\n]*\bmodel=nova-2\b/m, sent.slice(0, 500));
    assert.match(fr.log(), /session started on \/v1\/listen \(deepgram, model nova-2\)/);
    // model=pocketsphinx: the fallback engine, no new upstream session. The
    // first session's closing frame (8 bytes) may still reach the upstream
    // after it ended, so count upgrade requests, not bytes.
    const upgrades = () => (sent.match(/^GET \/v1\/listen\?/gm) || []).length;
    const before = upgrades();
    assert.equal(before, 1);
    assert.match(await dgSession('pocketsphinx'), /young man/);
    assert.equal(upgrades(), before, sent.slice(-300));
    assert.match(fr.log(), /session started on \/v1\/listen \(deepgram, engine pocketsphinx\)/);
  } finally {
    await fr.stop();
    await proxy.close();
    await up.stop();
  }
});

test('a key the upstream refuses: an unauthorized error (no fallback), or a failover with reason auth (fallback); the right key works', async () => {
  const up = await startServer(['--workers', '2', '--api-keys', 'right-key']);
  const bad = await front(up, ['--deepgram-key', 'wrong-key']);
  const badFb = await front(up, ['--deepgram-key', 'wrong-key', '--fallback-engine', 'pocketsphinx']);
  const good = await front(up, [], { HARK_DEEPGRAM_KEY: 'right-key' });
  try {
    const ev = await session(bad.url, Buffer.concat([clips[0], SILENCE]));
    const err = ev.find((e) => e.type === 'error');
    assert.ok(err, JSON.stringify(ev).slice(0, 600));
    assert.equal(err.code, 'unauthorized');
    assert.match(err.message, /refused the key \(HTTP 401\)/);
    const fin = ev.filter((e) => e.type === 'transcript' && e.is_final);
    assert.equal(fin.length, 1); // still exactly one (empty) final for the segment
    assert.equal(fin[0].text, '');
    assert.ok(!bad.log().includes('wrong-key'));

    const ev2 = await session(badFb.url, Buffer.concat([clips[0], SILENCE]));
    const fo = ev2.find((e) => e.type === 'provider_failover');
    assert.equal(fo?.reason, 'auth', JSON.stringify(ev2).slice(0, 600));
    assert.equal(fo.code, 'unauthorized');
    assert.ok(finals(ev2).split(' ').length > 5, finals(ev2));

    const ev3 = await session(good.url, Buffer.concat([clips[0], SILENCE]));
    assert.equal(ev3.find((e) => e.type === 'error'), undefined, JSON.stringify(ev3).slice(0, 600));
    assert.ok(finals(ev3).split(' ').length > 5);
  } finally {
    await Promise.all([bad.stop(), badFb.stop(), good.stop()]);
    await up.stop();
  }
});

test('an upstream that closes the connection with a code: failover with reason closed', async () => {
  // the upstream's idle timeout (1 s) is shorter than the front's KeepAlive (5 s)
  const up = await startServer(['--workers', '2', '--idle-timeout', '1']);
  const fr = await front(up, ['--fallback-engine', 'pocketsphinx', '--deepgram-keepalive-ms', '5000']);
  try {
    const s = await openNative(fr.url, {});
    await streamPcm(s.ws, Buffer.concat([clips[0], SILENCE]));
    await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final && e.text, 60000);
    // silence, in real time: the front sends nothing upstream, which times out
    await streamPcm(s.ws, Buffer.alloc(32000 * 3), { realtime: true });
    await streamPcm(s.ws, Buffer.concat([clips[1], SILENCE]));
    const fo = await waitFor(s.events, (e) => e.type === 'provider_failover', 60000);
    assert.equal(fo.reason, 'closed', JSON.stringify(fo));
    assert.match(fo.message, /closed the connection \(1011/);
    s.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(s.events, (e) => e.type === 'closed', 60000);
    assert.ok(finals(s.events).split(' ').length > 10);
  } finally {
    await fr.stop();
    await up.stop();
  }
});

test('hark engines lists deepgram with its endpoint; a bad --deepgram-url fails at start', () => {
  const r = spawnSync(HARK, ['engines', '--engine', 'deepgram', '--fallback-engine', 'pocketsphinx'], {
    encoding: 'utf8', timeout: 10000, env: { ...process.env, HARK_DEEPGRAM_KEY: 'sekrit' } });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^deepgram /m);
  assert.match(r.stdout, /endpoint wss:\/\/api\.deepgram\.com\/v1\/listen, model \(provider's default\), with a key/);
  assert.match(r.stdout, /^in use: deepgram, failing over to pocketsphinx/m);
  assert.ok(!r.stdout.includes('sekrit'));
  const bad = spawnSync(HARK, ['serve', '--port', '0', '--engine', 'deepgram', '--deepgram-url', 'ftp://x'], { encoding: 'utf8', timeout: 20000 });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /deepgram: .*ws:\/\/ or wss:\/\//);
});

// Seconds of audio a server's ended sessions took (all protocols). The
// upstream's session ends just after the front's (its connection closes
// then): read until the figure has held still for a second (bounded).
async function audioSeconds(srv) {
  const read = async () => Number((await curl([`${srv.http}/metrics`])).body.toString()
    .match(/^hark_audio_seconds_total (\S+)$/m)?.[1] ?? 0);
  let v = await read();
  for (let i = 0, still = 0; i < 100 && still < 5; i++) {
    await sleep(200);
    const w = await read();
    still = w === v ? still + 1 : 0;
    v = w;
  }
  return v;
}

test('--deepgram-vad-gate: yes sends only the utterances (KeepAlive keeps a 2 s idle timeout away over 4 s of pause), no sends the whole stream; the same words either way', async () => {
  const up = await startServer(['--workers', '2', '--idle-timeout', '2']);
  const gated = await front(up, ['--deepgram-keepalive-ms', '500']);
  const whole = await front(up, ['--deepgram-vad-gate', 'no']);
  try {
    const PAUSE = Buffer.alloc(32000 * 4);
    const pcm = Buffer.concat([clips[0], PAUSE, clips[1], SILENCE]);
    const a0 = await audioSeconds(up);
    const ev = await session(gated.url, Buffer.concat([clips[0], SILENCE]), {});
    // a pause in real time: only KeepAlives go up meanwhile
    const s = await openNative(gated.url, {});
    await streamPcm(s.ws, clips[0]);
    await streamPcm(s.ws, PAUSE, { realtime: true });
    await streamPcm(s.ws, Buffer.concat([clips[1], SILENCE]));
    s.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(s.events, (e) => e.type === 'closed', 120000);
    assert.equal(s.events.find((e) => e.type === 'provider_failover' || e.type === 'error'), undefined, JSON.stringify(s.events).slice(0, 800));
    const gatedUp = (await audioSeconds(up)) - a0;
    const gatedIn = (ev.find((e) => e.type === 'closed').audio_seconds) + s.events.find((e) => e.type === 'closed').audio_seconds;
    assert.ok(gatedUp < gatedIn - 4, `gated: ${gatedUp} s upstream of ${gatedIn} s`);

    const a1 = await audioSeconds(up);
    const ev2 = await session(whole.url, pcm);
    const wholeUp = (await audioSeconds(up)) - a1;
    const wholeIn = ev2.find((e) => e.type === 'closed').audio_seconds;
    // everything but the last pre-roll (<= 0.3 s of pause that never became an utterance)
    assert.ok(wholeUp > wholeIn - 0.35 && wholeUp <= wholeIn + 0.01, `whole: ${wholeUp} s upstream of ${wholeIn} s`);
    const w = wer(finals(s.events), finals(ev2));
    assert.ok(w.errors <= Math.ceil(w.words * 0.1), `${w.errors}/${w.words}\ngated: ${finals(s.events)}\nwhole: ${finals(ev2)}`);
    // word times stay in session time when the whole stream goes up
    const fin = ev2.filter((e) => e.type === 'transcript' && e.is_final && e.text);
    assert.equal(fin.length, 2);
    for (const e of fin) assert.ok(e.words[0].start >= e.start - 0.05 && e.words.at(-1).end <= e.end + 0.05, JSON.stringify(e));
  } finally {
    await Promise.all([gated.stop(), whole.stop()]);
    await up.stop();
  }
});
