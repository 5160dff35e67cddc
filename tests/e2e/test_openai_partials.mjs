// Engine openai with --openai-partial-ms (docs/engines.md): partials by
// re-transcribing the growing utterance; off by default. The upstream is a
// second real `hark serve` (its POST /v1/audio/transcriptions); its
// hark_audio_seconds_total shows what the partials cost it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CLIPS, startServer, openNative, streamPcm, waitFor, wavPcm, checkContract, curl, sleep, wer,
} from './lib.mjs';

const SILENCE = Buffer.alloc(32000 * 1.2);
const pcm = Buffer.concat([wavPcm(CLIPS[0]).subarray(0, 32000 * 5), SILENCE]);

// Audio seconds of the upstream's finished requests, once they stop growing.
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

async function session(url) {
  const s = await openNative(url, { interim_results: true });
  assert.equal(s.ready.type, 'ready', JSON.stringify(s.ready));
  await streamPcm(s.ws, pcm, { realtime: true });
  s.ws.send(JSON.stringify({ type: 'close' }));
  await waitFor(s.events, (e) => e.type === 'closed', 120000);
  s.ws.close();
  return s.events;
}

test('--openai-partial-ms 1000: partials from re-sent growing utterances before the final, at a cost the upstream sees; off by default: none', async () => {
  const up = await startServer(['--workers', '2']);
  const off = await startServer(['--workers', '2', '--engine', 'openai', '--openai-url', `${up.http}/v1`]);
  const on = await startServer(['--workers', '2', '--engine', 'openai', '--openai-url', `${up.http}/v1`,
    '--openai-partial-ms', '1000']);
  try {
    let a0 = await audioSeconds(up);
    const evOff = await session(off.url);
    const costOff = (await audioSeconds(up)) - a0;
    assert.equal(evOff.filter((e) => e.type === 'transcript' && !e.is_final && e.text).length, 0);

    a0 = await audioSeconds(up);
    const ev = await session(on.url);
    const costOn = (await audioSeconds(up)) - a0;
    checkContract(ev);
    const parts = ev.filter((e) => e.type === 'transcript' && !e.is_final && e.text);
    const fin = ev.find((e) => e.type === 'transcript' && e.is_final && e.text);
    assert.ok(parts.length >= 2, JSON.stringify(ev).slice(0, 1000));
    assert.ok(ev.indexOf(parts.at(-1)) < ev.indexOf(fin));
    // a partial is the beginning of the utterance: its words lead the final's
    const w = wer(fin.text.split(' ').slice(0, parts[0].text.split(' ').length).join(' '), parts[0].text);
    assert.ok(w.errors <= Math.ceil(w.words * 0.3) + 1, `${parts[0].text} / ${fin.text}`);
    // the cost: the upstream transcribed the growing utterance again and again
    assert.ok(costOn > costOff * 1.5, `upstream audio ${costOn} s with partials, ${costOff} s without`);
    console.log(`# upstream audio for one ${(pcm.length / 32000).toFixed(1)} s session: ${costOff.toFixed(2)} s without partials, ` +
      `${costOn.toFixed(2)} s with --openai-partial-ms 1000 (${parts.length} partials)`);
  } finally {
    await Promise.all([off.stop(), on.stop()]);
    await up.stop();
  }
});
