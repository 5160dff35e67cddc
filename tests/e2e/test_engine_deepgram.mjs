// Engine deepgram (docs/engines.md): hark in front of a Deepgram-compatible
// live endpoint. The upstream is a second real `hark serve` (its
// WebSocket /v1/listen), started by the test; the front is
// `hark serve --engine deepgram --deepgram-url ws://<upstream>/v1/listen`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
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

function front(up, extra = [], env = {}) {
  return startServer(['--workers', '2', '--engine', 'deepgram', '--deepgram-url', `${up.url}/v1/listen`, ...extra], env);
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
