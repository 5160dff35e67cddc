// Records real browser WebM/Opus for the WebM demuxer's seed corpus and unit
// test: Debian's headless Chromium decodes a librivox clip in an AudioContext,
// plays it into a MediaStreamAudioDestinationNode and records that with
// MediaRecorder('audio/webm;codecs=opus'), exactly what a browser client
// sends. The recording is cut off after a short time so the file stays small.
//
//   node tests/fuzz/make_webm_seed.mjs [out.webm] [wav] [milliseconds]
//
// Defaults: tests/fuzz/corpus/webm/mediarecorder_opus.webm, the 0880 clip of
// pocketsphinx-testdata (HARK_TESTDATA_DIR), 1500 ms. playwright-core comes
// from tests/e2e/node_modules (npm ci there).
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '..', 'e2e', 'package.json'));
const { chromium } = require('playwright-core');

const testdata = process.env.HARK_TESTDATA_DIR || '/usr/share/pocketsphinx/test/data/librivox';
const out = process.argv[2] || path.join(here, 'corpus', 'webm', 'mediarecorder_opus.webm');
const wav = process.argv[3] || path.join(testdata, 'sense_and_sensibility_01_austen_64kb-0880.wav');
const ms = Number(process.argv[4] || 1500);

// playwright gives the browser a new temporary profile of its own.
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  timeout: 30000,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
try {
  const page = await browser.newPage();
  const b64 = await page.evaluate(
    async ({ wavB64, ms }) => {
      const bytes = Uint8Array.from(atob(wavB64), (c) => c.charCodeAt(0));
      const ctx = new AudioContext({ sampleRate: 48000 });
      await ctx.resume();
      const audio = await ctx.decodeAudioData(bytes.buffer);
      const src = ctx.createBufferSource();
      src.buffer = audio;
      const dest = ctx.createMediaStreamDestination();
      dest.channelCount = 1;
      src.connect(dest);
      // A low bitrate keeps the committed seed a few KB; a timeslice makes
      // Chromium write the stream the way a live client sends it.
      const rec = new MediaRecorder(dest.stream, {
        mimeType: 'audio/webm;codecs=opus',
        audioBitsPerSecond: 16000,
      });
      const parts = [];
      rec.ondataavailable = (e) => parts.push(e.data);
      const stopped = new Promise((resolve) => (rec.onstop = resolve));
      rec.start(250);
      src.start();
      await new Promise((resolve) => setTimeout(resolve, ms));
      rec.stop();
      await stopped;
      const buf = new Uint8Array(await new Blob(parts).arrayBuffer());
      let s = '';
      for (let i = 0; i < buf.length; i += 0x8000)
        s += String.fromCharCode(...buf.subarray(i, i + 0x8000));
      return btoa(s);
    },
    { wavB64: readFileSync(wav).toString('base64'), ms },
  );
  const data = Buffer.from(b64, 'base64');
  writeFileSync(out, data);
  console.log(`${out}: ${data.length} bytes`);
} finally {
  await browser.close();
}
