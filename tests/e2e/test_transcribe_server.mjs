// `hark transcribe --server`: the C client (include/hark/client.h) between
// the real binary and a real `hark serve` on 127.0.0.1, through real TCP
// cuts. The same engine runs on both sides, so a clean run must print
// exactly what the local mode prints; a cut or a server killed mid-file must
// still lose no words.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLIPS, startServer, sleep, wer, openNative } from './lib.mjs';
import { FaultProxy } from './faultproxy.mjs';
import { run, hark, finalsOf, checkJsonLines } from './cli_helpers.mjs';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'hark-txsrv-'));
const T = (name) => path.join(tmp, name);
let server;
let long; // several utterances with pauses: finals inside the file

before(async () => {
  server = await startServer();
  // four clips with 1.2 s of silence after each: four segments, ~24 s
  await run('sox', ['-n', '-r', '16000', '-c', '1', '-b', '16', T('sil.wav'), 'trim', '0', '1.2']);
  const parts = CLIPS.slice(0, 4).flatMap((c) => [c, T('sil.wav')]);
  const r = await run('sox', ['-D', '-R', ...parts, T('long.wav')]);
  assert.equal(r.code, 0, r.stderr);
  long = T('long.wav');
});
after(async () => {
  await server?.stop();
  rmSync(tmp, { recursive: true, force: true });
});

// Session events only (the client's own restarted / audio_lost lines have
// no seq), checked as the local mode's output is checked.
function events(stdout, what) {
  const lines = stdout.split('\n').filter(Boolean);
  const session = lines.filter((l) => !/^\{"type":"(restarted|audio_lost)"/.test(l));
  const extra = lines.filter((l) => /^\{"type":"(restarted|audio_lost)"/.test(l)).map((l) => JSON.parse(l));
  return { events: checkJsonLines(session.join('\n') + '\n', what), extra };
}

const finalsBySegment = (evs) => evs.filter((e) => e.type === 'transcript' && e.is_final)
  .map((e) => `${e.segment}:${e.text}`);

// Whether the server keeps sessions across connections (its ready offers a
// resume token).
async function offersResume() {
  const { ws, ready } = await openNative(server.url);
  ws.close();
  return typeof ready.resume_token === 'string' && ready.resume_token.length > 0;
}

// The tolerance for a transcript that went through new sessions: a new
// session restarts recognition at the last final's committed point, and its
// decoder starts afresh (cepstral mean, VAD history), so the first words of
// the next utterance may be heard differently (measured: up to 6 of 59
// words). Nothing may be lost: the word count stays within 10 %, and the
// word error rate against the uninterrupted run within 20 %.
function closeTo(want, got) {
  const w = wer(want, got);
  const nw = want.split(' ').length, ng = got.split(' ').length;
  const why = `WER ${w.errors}/${w.words}, ${ng} words for ${nw}\nwant: ${want}\ngot:  ${got}`;
  assert.ok(w.errors / w.words <= 0.2, why);
  assert.ok(Math.abs(ng - nw) <= 0.1 * nw, why);
}

test('--server prints exactly what the local mode prints (--json, every event)', async () => {
  for (const clip of [CLIPS[0], long]) {
    const [local, remote] = await Promise.all([
      hark(['transcribe', '--json', clip]),
      hark(['transcribe', '--json', '--server', server.url, clip]),
    ]);
    assert.equal(local.code, 0, local.stderr);
    assert.equal(remote.code, 0, remote.stderr);
    assert.equal(remote.stderr, '', 'a clean remote run says nothing on stderr');
    checkJsonLines(remote.stdout, 'remote ' + clip);
    assert.equal(remote.stdout, local.stdout, `events differ on ${path.basename(clip)}`);
  }
});

test('--server plain output: finals on lines, as the local mode', async () => {
  const [local, remote] = await Promise.all([
    hark(['transcribe', long]),
    hark(['transcribe', '--server', server.url + '/v1/stream', long]),
  ]);
  assert.equal(remote.code, 0, remote.stderr);
  assert.equal(remote.stdout, local.stdout);
  assert.ok(remote.stdout.split('\n').filter(Boolean).length >= 3, remote.stdout);
});

test('--server from stdin, raw audio with --encoding', async () => {
  const { readFileSync } = await import('node:fs');
  const pcm = readFileSync(CLIPS[0]).subarray(44);
  const [local, remote] = await Promise.all([
    hark(['transcribe', '--json', '--encoding', 'pcm_s16le', '--sample-rate', '16000', '-'], { input: pcm }),
    hark(['transcribe', '--json', '--encoding', 'pcm_s16le', '--sample-rate', '16000', '--server', server.url, '-'], { input: pcm }),
  ]);
  assert.equal(remote.code, 0, remote.stderr);
  assert.equal(remote.stdout, local.stdout);
});

test('bad server URL, nothing listening, wrong key, bad option: a clear error and the exit status', async () => {
  let r = await hark(['transcribe', '--server', 'http//nowhere', CLIPS[0]]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /server URL 'http\/\/nowhere': must start with ws:\/\/ or wss:\/\//);

  // a port with nothing behind it: refused, three quick attempts, then exit 4
  const probe = net.createServer();
  await new Promise((res) => probe.listen(0, '127.0.0.1', res));
  const dead = probe.address().port;
  await new Promise((res) => probe.close(res));
  r = await hark(['transcribe', '--server', `ws://127.0.0.1:${dead}`, CLIPS[0]]);
  assert.equal(r.code, 4, r.stderr);
  assert.match(r.stderr, new RegExp(`hark: error: io_error: cannot connect to 127.0.0.1:${dead}`));
  assert.ok(r.ms < 20000, `gave up after ${r.ms} ms`);

  r = await hark(['transcribe', '--server', server.url, '--sample-rate', '96000', '--encoding', 'pcm_s16le', CLIPS[0]]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /sample_rate/);

  const keyed = await startServer(['--api-keys', 'k1']);
  try {
    r = await hark(['transcribe', '--server', keyed.url, '--api-key', 'wrong', CLIPS[0]]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /hark: error: unauthorized: the server refused the API key \(HTTP 401\)/);
    r = await hark(['transcribe', '--server', keyed.url, CLIPS[0]], { env: { HARK_API_KEY: 'k1' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.trim().split(' ').length > 3, r.stdout);
  } finally {
    await keyed.stop();
  }
});

test('connections cut at random byte offsets (faultproxy): the finals of the uncut run, segments continue', async () => {
  const ref = await hark(['transcribe', '--json', '--server', server.url, long]);
  assert.equal(ref.code, 0, ref.stderr);
  const refEvents = events(ref.stdout, 'uncut').events;
  const proxy = await FaultProxy.start({ port: server.port });
  // Cuts anywhere in either direction (mid-frame, mid-final), three of
  // them, then the connection is left alone so the file can finish.
  const seed = Number(process.env.HARK_TEST_SEED) || undefined;
  proxy.randomCuts({ seed, ranges: { up: [20000, 600000], down: [200, 20000] } });
  const stopper = setInterval(() => { if (proxy.counters.cuts >= 3) proxy.stopRandomCuts(); }, 20);
  try {
    const r = await hark(['transcribe', '--json', '--server', proxy.url, long], { timeoutMs: 120000 });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(proxy.counters.cuts >= 3, `cuts: ${JSON.stringify(proxy.counters)}`);
    const { events: evs, extra } = events(r.stdout, 'cut');
    assert.ok(!extra.some((e) => e.type === 'audio_lost'), 'no audio lost');
    if (await offersResume()) {
      // every cut is resumed: the finals are exactly the uncut run's,
      // segment for segment, and so is everything printed
      assert.ok(!extra.some((e) => e.type === 'restarted'), r.stdout);
      assert.deepEqual(finalsBySegment(evs), finalsBySegment(refEvents));
      assert.equal(r.stdout, ref.stdout, 'every event as in the uncut run');
    } else {
      // a server that keeps no session across connections: every cut is a
      // new session from the last final, marked by "restarted"
      assert.ok(extra.some((e) => e.type === 'restarted'), r.stdout);
      closeTo(finalsOf(refEvents), finalsOf(evs));
    }
    // Times run on across sessions: finals in order, ending where the uncut run's end.
    const fin = evs.filter((e) => e.type === 'transcript' && e.is_final && e.text);
    for (let i = 1; i < fin.length; i++) assert.ok(fin[i].start >= fin[i - 1].end - 0.05, 'finals overlap');
    const refFin = refEvents.filter((e) => e.type === 'transcript' && e.is_final && e.text);
    assert.ok(Math.abs(fin.at(-1).end - refFin.at(-1).end) < 0.5,
      `last final ends at ${fin.at(-1).end}, uncut ${refFin.at(-1).end}`);
    assert.equal(evs.at(-1).type, 'closed');
    assert.ok(Math.abs(evs.at(-1).audio_seconds - refEvents.at(-1).audio_seconds) < 0.01);
  } finally {
    clearInterval(stopper);
    await proxy.close();
  }
});

test('a cut right after the client\'s close (finals still to come): the session is resumed, output as uncut', async () => {
  const srv = await startServer(['--resume-window', '30']);
  const proxy = await FaultProxy.start({ port: srv.port });
  try {
    const ref = await hark(['transcribe', '--json', '--server', srv.url, long]);
    assert.equal(ref.code, 0, ref.stderr);
    const resumedBefore = (srv.log().match(/session resumed/g) || []).length;
    const p = hark(['transcribe', '--json', '--server', proxy.url, long], { timeoutMs: 120000 });
    // The client sends `close` right after its last audio: once nothing
    // more goes up (the count stands still past the file's size) the close
    // is out; the server reads it at once and needs seconds more to decode
    // the rest. Then the connection is reset.
    let last = -1;
    for (let i = 0; i < 1200; i++) {
      const n = proxy.counters.bytesUp;
      if (n >= statSync(long).size && n === last) break;
      last = n;
      await sleep(100);
    }
    await sleep(200);
    proxy.cut();
    const r = await p;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(proxy.counters.cuts, 1);
    assert.equal((srv.log().match(/session resumed/g) || []).length, resumedBefore + 1,
      'the finishing session was resumed, not replaced by a new one');
    assert.equal(r.stdout, ref.stdout, 'every event as in the uncut run');
  } finally {
    await proxy.close();
    await srv.stop();
  }
});

test('half-open connection (faultproxy stall): detected by the missing PONG, the stream carries on', async () => {
  const ref = await hark(['transcribe', '--json', '--server', server.url, CLIPS[0]]);
  const proxy = await FaultProxy.start({ port: server.port });
  try {
    const p = hark(['transcribe', '--json', '--realtime', '--server', proxy.url, CLIPS[0]],
      { timeoutMs: 120000 });
    await sleep(2000);
    proxy.stall(); // nothing passes, nothing closes; a new connection gets through
    const r = await p;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(proxy.counters.connections >= 2, JSON.stringify(proxy.counters));
    const { events: evs } = events(r.stdout, 'stalled');
    closeTo(finalsOf(events(ref.stdout, 'ref').events), finalsOf(evs));
    assert.equal(evs.at(-1).type, 'closed');
  } finally {
    await proxy.close();
  }
});

test('server killed (SIGKILL) and restarted mid-file: the client carries on in a new session', async () => {
  // A fixed port, so the restarted server is found at the same address.
  const probe = net.createServer();
  await new Promise((res) => probe.listen(0, '127.0.0.1', res));
  const port = probe.address().port;
  await new Promise((res) => probe.close(res));
  let srv = await startServerOn(port);
  const ref = await hark(['transcribe', '--json', '--server', `ws://127.0.0.1:${port}`, long]);
  assert.equal(ref.code, 0, ref.stderr);
  const p = hark(['transcribe', '--json', '--realtime', '--server', `ws://127.0.0.1:${port}`, long],
    { timeoutMs: 120000 });
  await sleep(11000); // past the first final (7.1 s of speech, 1.2 s pause)
  srv.proc.kill('SIGKILL');
  await sleep(500);
  srv = await startServerOn(port);
  try {
    const r = await p;
    assert.equal(r.code, 0, r.stderr);
    const { events: evs, extra } = events(r.stdout, 'killed');
    const rs = extra.find((e) => e.type === 'restarted');
    assert.ok(rs, 'restarted line:\n' + r.stdout);
    assert.ok(rs.offset_ms > 3000, `restart offset ${rs.offset_ms}`);
    closeTo(finalsOf(events(ref.stdout, 'ref').events), finalsOf(evs));
    assert.equal(evs.at(-1).type, 'closed');
  } finally {
    await srv.stop();
  }
});

// startServer on a given port (the helper picks one); waits for the line.
async function startServerOn(port) {
  const { spawn } = await import('node:child_process');
  const { HARK } = await import('./lib.mjs');
  const proc = spawn(HARK, ['serve', '--host', '127.0.0.1', '--port', String(port)],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + err)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (/listening on/.test(out)) { clearTimeout(timer); resolve(); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${err}`)); });
  });
  return {
    proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode) return;
      proc.kill('SIGTERM');
      await new Promise((res) => proc.on('exit', res));
    },
  };
}
