// Network engines (docs/benchmarks.md, "Network engines"): what hark adds in
// front of an OpenAI-compatible server, how long a failover takes, and what
// VAD gating saves in front of a Deepgram-compatible one.
//
//   (cd tests/e2e && node ../../bench/providers.mjs --hark ../../build/hark [--rounds 2]
//      [--parts latency,failover,gating])
//
// The upstream is a real `hark serve` (its POST /v1/audio/transcriptions);
// the front is `hark serve --engine openai --openai-url <upstream>/v1`.
//  1. Added latency: the librivox clips streamed in real time, each followed
//     by 1.2 s of silence, once straight to the upstream's /v1/stream and once
//     through the front; per utterance, from sending its last speech byte to
//     receiving its final (p50/p95 per arm, and the difference).
//  2. Failover: through a front with --fallback-engine pocketsphinx, the
//     upstream is SIGKILLed 1 s into an utterance; from the kill to the
//     provider_failover event and to that utterance's final (made by the
//     fallback from the kept audio), and its end of speech -> final.
//  3. VAD gating (--engine deepgram, the upstream's /v1/listen): two sets,
//     the librivox clips each followed by 1.2 s of silence, and a "dialog"
//     (each clip followed by a pause as long as itself, white noise at
//     -50 dBFS: 50 % pauses); each streamed through a front with
//     --deepgram-vad-gate yes and no, and straight to the upstream. Audio
//     seconds the upstream took (its hark_audio_seconds_total) per second
//     the front took, and the words of the direct session missing from the
//     relayed finals (reference words not in the longest common
//     subsequence), per arm.
import { parseArgs } from 'node:util';
import path from 'node:path';

const { values: args } = parseArgs({
  options: {
    hark: { type: 'string' },
    rounds: { type: 'string', default: '2' },
    parts: { type: 'string', default: 'latency,failover,gating' },
  },
});
if (args.hark) process.env.HARK_BIN = path.resolve(args.hark);
// after HARK_BIN is set: lib.mjs reads it when loaded
const { CLIPS, startServer, openNative, wavPcm, wavOf, sleep, waitFor, streamPcm } = await import('../tests/e2e/lib.mjs');
const parts = new Set(args.parts.split(','));

const SILENCE = Buffer.alloc(38400); // 1.2 s
const clips = CLIPS.map(wavPcm);
const rounds = Number(args.rounds);

function pct(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

// Streams pcm in 20 ms frames at real time; resolves at the end.
async function realtime(ws, pcm) {
  const t0 = Date.now();
  for (let off = 0; off < pcm.length; off += 640) {
    ws.send(pcm.subarray(off, Math.min(off + 640, pcm.length)));
    const wait = t0 + ((off + 640) / 32000) * 1000 - Date.now();
    if (wait > 0) await sleep(wait);
  }
}

// Per utterance: last speech byte sent -> final received (ms).
async function latencies(url) {
  const s = await openNative(url, {});
  const arrivals = [];
  s.ws.on('message', (d, bin) => {
    if (bin) return;
    const e = JSON.parse(d.toString());
    if (e.type === 'transcript' && e.is_final && e.text) arrivals.push(Date.now());
  });
  const ends = [];
  for (let r = 0; r < rounds; r++)
    for (const c of clips) {
      await realtime(s.ws, c);
      ends.push(Date.now());
      await realtime(s.ws, SILENCE);
    }
  s.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(s.events, (e) => e.type === 'closed', 60000);
  s.ws.close();
  if (arrivals.length !== ends.length) throw new Error(`${arrivals.length} finals for ${ends.length} utterances`);
  return ends.map((t, i) => arrivals[i] - t);
}

// One POST of each clip straight to the upstream: what any batch relay
// must wait for (the server transcribes after the end of speech).
async function batchTimes(http) {
  const out = [];
  for (let r = 0; r < rounds; r++)
    for (const c of clips) {
      const fd = new FormData();
      fd.append('file', new Blob([wavOf(c)], { type: 'audio/wav' }), 'a.wav');
      fd.append('model', 'whisper-1');
      fd.append('response_format', 'verbose_json');
      fd.append('timestamp_granularities[]', 'word');
      const t0 = Date.now();
      const res = await fetch(`${http}/v1/audio/transcriptions`, { method: 'POST', body: fd });
      await res.json();
      out.push(Date.now() - t0);
    }
  return out;
}

const up = await startServer(['--workers', '2']);
if (parts.has('latency')) {
const front = await startServer(['--workers', '2', '--engine', 'openai', '--openai-url', `${up.http}/v1`]);
const direct = await latencies(up.url);
const batch = await batchTimes(up.http);
const metric = async () => {
  const t = await (await fetch(`${front.http}/metrics`)).text();
  const m = t.match(/^hark_engine_decode_seconds_total\{engine="openai"\} ([0-9.e+-]+)$/m);
  return m ? Number(m[1]) * 1000 : NaN; // the openai engine counts its requests' wall time here
};
const req0 = await metric();
const relayed = await latencies(front.url);
const reqMs = (await metric()) - req0;
await front.stop();
const row = (name, xs) => `| ${name} | ${xs.length} | ${pct(xs, 50)} | ${pct(xs, 95)} |`;
console.log('| ms | utterances | p50 | p95 |\n|---|---|---|---|');
console.log(row('end of speech -> final, upstream directly (/v1/stream)', direct));
console.log(row('end of speech -> final, through hark --engine openai', relayed));
console.log(row('the upstream\'s batch POST of the same clip alone', batch));
const mean = (xs) => Math.round(xs.reduce((a, b) => a + b, 0) / xs.length);
console.log(`\nthrough hark, mean per utterance: end of speech -> final ${mean(relayed)} ms, of which waiting for the ` +
  `upstream's answer ${Math.round(reqMs / relayed.length)} ms (hark_engine_decode_seconds_total), the rest ` +
  `(endpointing, cut, WAV, multipart, delivery) ${Math.round(mean(relayed) - reqMs / relayed.length)} ms`);
}

// VAD gating
if (parts.has('gating')) {
  const audioSeconds = async (srv) =>
    Number((await (await fetch(`${srv.http}/metrics`)).text()).match(/^hark_audio_seconds_total (\S+)$/m)?.[1] ?? 0);
  const finalsOf = async (url, pcm) => {
    const s = await openNative(url, {});
    await streamPcm(s.ws, pcm);
    s.ws.send(JSON.stringify({ type: 'close' }));
    await waitFor(s.events, (e) => e.type === 'closed', 300000);
    s.ws.close();
    return s.events.filter((e) => e.type === 'transcript' && e.is_final && e.text).map((e) => e.text).join(' ');
  };
  const lost = (ref, hyp) => { // reference words not in the longest common subsequence
    const a = ref.toLowerCase().split(/\s+/).filter(Boolean), b = hyp.toLowerCase().split(/\s+/).filter(Boolean);
    let prev = new Array(b.length + 1).fill(0);
    for (const x of a) {
      const cur = [0];
      for (let j = 0; j < b.length; j++) cur.push(x === b[j] ? prev[j] + 1 : Math.max(prev[j + 1], cur[j]));
      prev = cur;
    }
    return [a.length - prev[b.length], a.length];
  };
  let seed = 12345;
  const noise = (bytes) => { // white noise at -50 dBFS RMS, deterministic
    const b = Buffer.alloc(bytes);
    const amp = 32768 * 10 ** (-50 / 20) * Math.sqrt(3);
    for (let i = 0; i + 1 < bytes; i += 2) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      b.writeInt16LE(Math.round(((seed / 0x7fffffff) * 2 - 1) * amp), i);
    }
    return b;
  };
  const sets = {
    'clips + 1.2 s silence': Buffer.concat(clips.flatMap((c) => [c, SILENCE])),
    'dialog: clips + equal pauses of noise': Buffer.concat(clips.flatMap((c) => [c, noise(c.length)])),
  };
  const gate = {
    yes: await startServer(['--workers', '2', '--engine', 'deepgram', '--deepgram-url', `${up.url}/v1/listen`,
      '--deepgram-timeout-ms', '120000']),
    no: await startServer(['--workers', '2', '--engine', 'deepgram', '--deepgram-url', `${up.url}/v1/listen`,
      '--deepgram-timeout-ms', '120000', '--deepgram-vad-gate', 'no']),
  };
  console.log('\n| set | pauses | arm | audio upstream / audio in | words of the direct session lost |\n|---|---|---|---|---|');
  for (const [name, pcm] of Object.entries(sets)) {
    const speech = clips.reduce((n, c) => n + c.length, 0) / pcm.length;
    const ref = await finalsOf(up.url, pcm);
    for (const arm of ['no', 'yes']) {
      const u0 = await audioSeconds(up), f0 = await audioSeconds(gate[arm]);
      const hyp = await finalsOf(gate[arm].url, pcm);
      const ratio = ((await audioSeconds(up)) - u0) / ((await audioSeconds(gate[arm])) - f0);
      const [l, n] = lost(ref, hyp);
      console.log(`| ${name} | ${Math.round((1 - speech) * 100)} % | --deepgram-vad-gate ${arm} | ${ratio.toFixed(3)} | ${l} of ${n} |`);
    }
  }
  await gate.yes.stop();
  await gate.no.stop();
}

// Failover
if (parts.has('failover')) {
const fb = await startServer(['--workers', '2', '--engine', 'openai', '--openai-url', `${up.http}/v1`,
  '--fallback-engine', 'pocketsphinx']);
const s = await openNative(fb.url, {});
let tFailover = 0, tFinal = 0;
s.ws.on('message', (d, bin) => {
  if (bin) return;
  const e = JSON.parse(d.toString());
  if (e.type === 'provider_failover') tFailover = Date.now();
  else if (tFailover && !tFinal && e.type === 'transcript' && e.is_final) tFinal = Date.now();
});
await realtime(s.ws, Buffer.concat([clips[0], SILENCE]));
await waitFor(s.events, (e) => e.type === 'transcript' && e.is_final, 30000);
const c = clips[1];
await realtime(s.ws, c.subarray(0, 32000)); // 1 s into the utterance
const tKill = Date.now();
up.proc.kill('SIGKILL');
await realtime(s.ws, c.subarray(32000));
const tEnd = Date.now();
await realtime(s.ws, SILENCE);
await waitFor(s.events, (e) => e.type === 'closed' || (tFinal > 0), 60000);
s.ws.send(JSON.stringify({ type: 'close' }));
await waitFor(s.events, (e) => e.type === 'closed', 60000);
console.log('\n| failover (upstream SIGKILLed 1 s into an utterance) | ms |\n|---|---|');
console.log(`| kill -> provider_failover | ${tFailover - tKill} |`);
console.log(`| kill -> first final by the fallback | ${tFinal - tKill} |`);
console.log(`| that utterance: end of speech -> final | ${tFinal - tEnd} |`);
await fb.stop();
}
if (up.proc.exitCode === null && !up.proc.signalCode) await up.stop();
process.exit(0);
