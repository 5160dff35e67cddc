// The browser demo page end to end: Debian's headless Chromium, driven by
// playwright-core, with a fake microphone that plays a real recording in a
// loop, against a real `hark serve`.
//
// Checks: the page opens the microphone, speaks the native protocol (config,
// wait for ready, then 20 ms 16 kHz s16le frames), shows partial words in a
// lighter style before the final words appear solid, shows its connection
// state, flushes the last words on Stop ({"type":"close"} -> "closed"), and
// reconnects with backoff (exponential ceiling, full jitter) when the server
// goes away and comes back. The page streams through hark-client
// (clients/js, served as /hark-client.js).
//
// Environment: HARK_BIN (the built hark), HARK_TESTDATA_DIR (librivox clips),
// HARK_E2E_SCREENSHOTS (optional directory to keep the page's screenshots).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { DATA, startServer, sleep } from './lib.mjs';
import { FaultProxy } from './faultproxy.mjs';

const CHROMIUM = '/usr/bin/chromium';
const CLIP = path.join(DATA, 'sense_and_sensibility_01_austen_64kb-0880.wav');
// Reference "he was not an ill disposed young man"; hark hears "he was not an
// illness those young man". The words both agree on:
const EXPECTED = 'young man';
const FINAL_WAIT_MS = 40000;
const STOP_WAIT_MS = 25000;

let work; // temp dir: fake-mic WAV, screenshots
let browser;

// Polls fn (in node) until it returns a truthy value; bounded.
async function until(what, fn, ms) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

// Records, inside the page, every change of the partial line, every final
// line added and every state shown, with the computed style at that moment.
function installRecorder() {
  const t0 = performance.now();
  const log = (window.__harkLog = []);
  const style = (el) => {
    const cs = getComputedStyle(el);
    return { color: cs.color, fontStyle: cs.fontStyle };
  };
  const partial = document.getElementById('partial');
  const finals = document.getElementById('finals');
  const state = document.getElementById('state-text');
  const bg = getComputedStyle(document.getElementById('transcript')).backgroundColor;
  const panelBg = getComputedStyle(document.querySelector('.panel')).backgroundColor;
  window.__harkBackground = bg === 'rgba(0, 0, 0, 0)' ? panelBg : bg;
  new MutationObserver(() => {
    const text = partial.querySelector('.text').textContent;
    if (!partial.hidden && text)
      log.push({ t: performance.now() - t0, kind: 'partial', text, ...style(partial) });
  }).observe(partial, { subtree: true, childList: true, characterData: true, attributes: true });
  new MutationObserver((muts) => {
    for (const m of muts)
      for (const n of m.addedNodes)
        if (n.nodeType === 1)
          log.push({
            t: performance.now() - t0,
            kind: 'final',
            cls: n.className,
            text: n.querySelector('.text').textContent,
            ...style(n),
          });
  }).observe(finals, { childList: true });
  new MutationObserver(() => {
    log.push({ t: performance.now() - t0, kind: 'state', text: state.textContent });
  }).observe(state, { subtree: true, childList: true, characterData: true });
}

const pageLog = (page) => page.evaluate(() => window.__harkLog);
const stateText = (page) => page.locator('#state-text').textContent();
const finalsText = (page) => page.locator('#finals').textContent();

// WCAG relative luminance and contrast ratio of CSS rgb()/rgba() colours.
function luminance(css) {
  const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function contrast(a, b) {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

// Every WebSocket frame the page sends or receives, in order.
function recordSockets(page) {
  const frames = [];
  page.on('websocket', (sock) => {
    const id = frames.filter((f) => f.kind === 'open').length;
    frames.push({ kind: 'open', id, url: sock.url() });
    sock.on('framesent', (f) => frames.push({ kind: 'sent', id, payload: f.payload }));
    sock.on('framereceived', (f) => frames.push({ kind: 'recv', id, payload: f.payload }));
    sock.on('close', () => frames.push({ kind: 'close', id }));
  });
  return frames;
}

async function openPage(t, server, query = '', base = server.http) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 640 } });
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const frames = recordSockets(page);
  await page.goto(base + '/' + query);
  await page.evaluate(installRecorder);
  return { page, errors, frames };
}

async function screenshot(t, page, name) {
  const dir = process.env.HARK_E2E_SCREENSHOTS || work;
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  await page.screenshot({ path: file });
  t.diagnostic('screenshot: ' + file);
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} missing: install Debian's chromium (scripts/setup.sh)`);
  work = mkdtempSync(path.join(tmpdir(), 'hark-demo-'));
  // Chromium loops the file: half a second of silence before the speech and
  // two after it, so every loop is one utterance that endpointing closes.
  const wav = path.join(work, 'mic.wav');
  execFileSync('sox', [CLIP, '-b', '16', '-e', 'signed-integer', '-c', '1', wav, 'pad', '0.5', '2']);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: [
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${wav}`,
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (work && !process.env.HARK_E2E_SCREENSHOTS) rmSync(work, { recursive: true, force: true });
});

test('microphone to transcript: grey partials, solid finals, Stop flushes', { timeout: 80000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { page, errors, frames } = await openPage(t, server);

  assert.equal(await stateText(page), 'idle');
  assert.equal(await page.locator('#stop').isDisabled(), true);
  await page.click('#start');
  await until('state listening', async () => (await stateText(page)) === 'listening', 15000);

  await until(`"${EXPECTED}" in the final transcript`, async () =>
    (await finalsText(page)).includes(EXPECTED), FINAL_WAIT_MS);
  assert.equal(await stateText(page), 'listening');

  const log = await pageLog(page);
  const bg = await page.evaluate(() => window.__harkBackground);
  const firstFinal = log.find((e) => e.kind === 'final');
  const partials = log.filter((e) => e.kind === 'partial' && e.t < firstFinal.t);
  assert.ok(partials.length > 0, 'no partial shown before the first final: ' + JSON.stringify(log));
  assert.match(firstFinal.cls, /\bfinal\b/);
  assert.match(firstFinal.text, /young man/);
  for (const p of partials) {
    assert.equal(p.fontStyle, 'italic', 'partial not in the partial style: ' + JSON.stringify(p));
    assert.ok(contrast(p.color, bg) < contrast(firstFinal.color, bg) / 2,
      `partial ${p.color} not lighter than final ${firstFinal.color} on ${bg}`);
  }
  assert.equal(firstFinal.fontStyle, 'normal');
  // The page promotes the utterance it showed as partial: the last partial
  // before the final is a prefix-ish guess of it, at least one shared word.
  const lastPartial = partials[partials.length - 1].text.split(' ');
  assert.ok(lastPartial.some((w) => firstFinal.text.split(' ').includes(w)),
    `last partial "${lastPartial.join(' ')}" shares no word with final "${firstFinal.text}"`);
  t.diagnostic(`first partial ${(partials[0].t / 1000).toFixed(1)} s, first final ` +
    `${(firstFinal.t / 1000).toFixed(1)} s after the page loaded (speech ends 3.5 s into the clip)`);
  await screenshot(t, page, 'demo-listening.png');

  // The wire: config first, audio only after ready, 20 ms of 16 kHz s16le each.
  const mine = frames.filter((f) => f.id === 0 && f.kind !== 'open');
  const config = JSON.parse(mine[0].payload);
  assert.equal(mine[0].kind, 'sent');
  assert.deepEqual(
    { type: config.type, encoding: config.encoding, sample_rate: config.sample_rate, channels: config.channels },
    { type: 'config', encoding: 'pcm_s16le', sample_rate: 16000, channels: 1 });
  const readyAt = mine.findIndex((f) => f.kind === 'recv' && JSON.parse(f.payload).type === 'ready');
  const firstAudio = mine.findIndex((f) => f.kind === 'sent' && typeof f.payload !== 'string');
  assert.ok(readyAt > 0 && firstAudio > readyAt, `audio (frame ${firstAudio}) before ready (${readyAt})`);
  const audio = mine.filter((f) => f.kind === 'sent' && typeof f.payload !== 'string');
  assert.ok(audio.length > 100, `only ${audio.length} audio frames sent`);
  assert.deepEqual([...new Set(audio.map((f) => f.payload.length))], [640]);

  // Stop: {"type":"close"}, the server's "closed", then idle with the finals
  // kept. The server first finishes the audio it has queued, which on a busy
  // machine takes seconds.
  await page.click('#stop');
  await until('state idle after Stop', async () => (await stateText(page)) === 'idle', STOP_WAIT_MS);
  const stateLog = (await pageLog(page)).filter((e) => e.kind === 'state');
  assert.deepEqual(stateLog.slice(-2).map((e) => e.text), ['stopping · finishing the last words', 'idle']);
  const flushMs = stateLog.at(-1).t - stateLog.at(-2).t;
  t.diagnostic(`Stop to idle: ${(flushMs / 1000).toFixed(1)} s`);
  // (keepalives may follow the close while the server finishes)
  const sentText = frames.filter((f) => f.id === 0 && f.kind === 'sent' && typeof f.payload === 'string' &&
    JSON.parse(f.payload).type !== 'keepalive');
  assert.deepEqual(JSON.parse(sentText[sentText.length - 1].payload), { type: 'close' });
  const recvTypes = frames.filter((f) => f.id === 0 && f.kind === 'recv').map((f) => JSON.parse(f.payload).type);
  assert.equal(recvTypes[recvTypes.length - 1], 'closed',
    `no "closed" from the server within the page's stop timeout (idle after ${flushMs} ms); ` +
    'last messages: ' + recvTypes.slice(-3));
  assert.ok((await finalsText(page)).includes(EXPECTED));
  assert.equal(await page.locator('#partial').isHidden(), true);
  assert.equal(await page.locator('#start').isEnabled(), true);
  assert.deepEqual(errors, []);
});

// Also runs the other audio path: the context at the device rate (Chromium's
// fake device: 44.1 or 48 kHz) and the worklet's own resampler to 16 kHz.
test('reconnects with jittered exponential backoff when the server goes away', { timeout: 80000 }, async (t) => {
  let server = await startServer();
  const port = server.port;
  t.after(() => server.stop());
  const { page, errors } = await openPage(t, server, '?resample=worklet');

  await page.click('#start');
  await until('state listening', async () => (await stateText(page)) === 'listening', 15000);
  const firstSession = await page.locator('#info').textContent();
  assert.match(firstSession, /resampled \d+→16000 Hz in the worklet/);

  // Server gone for a while: the page retries with longer and longer waits.
  await server.stop();
  await until('state reconnecting', async () => (await stateText(page)).startsWith('reconnecting'), 10000);
  await sleep(4000);
  server = await startServer(['--port', String(port)]);
  await until('state listening again', async () => (await stateText(page)) === 'listening', 20000);
  assert.notEqual(await page.locator('#info').textContent(), firstSession, 'no new session');

  // Full jitter: try n waits uniformly in [0, min(10 s, 0.25 s * 2^(n-1))),
  // so the waits do not grow one by one; their ceilings do.
  const states = (await pageLog(page)).filter((e) => e.kind === 'state').map((e) => e.text);
  const tries = states.map((s) => s.match(/^reconnecting · try (\d+) in ([\d.]+) s$/)).filter(Boolean)
    .map((m) => ({ n: Number(m[1]), delay: Number(m[2]) }));
  assert.ok(tries.length >= 2, 'expected several retries while the server was down: ' + states);
  for (let i = 1; i < tries.length; i++)
    assert.ok(tries[i].n > tries[i - 1].n, 'try numbers do not grow: ' + JSON.stringify(tries));
  for (const { n, delay } of tries)
    assert.ok(delay <= Math.min(10, 0.25 * 2 ** (n - 1)) + 0.05, `try ${n} waited ${delay} s: over its ceiling`);

  // And the new session transcribes.
  const before = await page.locator('#finals .final').count();
  await until('a final from the new session', async () =>
    (await page.locator('#finals .final').count()) > before &&
    (await page.locator('#finals .final').last().textContent()).includes(EXPECTED), FINAL_WAIT_MS);
  await page.click('#stop');
  await until('state idle after Stop', async () => (await stateText(page)) === 'idle', STOP_WAIT_MS);
  await screenshot(t, page, 'demo-after-reconnect.png');
  // A failed connection attempt is logged by Chromium as a console error;
  // nothing else may be.
  assert.deepEqual(errors.filter((e) => !/WebSocket connection to .* failed/.test(e)), []);
});

// The page loaded through the fault proxy: a connection reset mid-stream is
// survived by hark-client. With a server that resumes, the page keeps its
// session (no second `ready`); without, it continues in a new one.
test('a reset connection: the page resumes and keeps transcribing', { timeout: 80000 }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const proxy = await FaultProxy.start({ port: server.port, log: (s) => t.diagnostic(s) });
  t.after(() => proxy.close());
  const { page, errors, frames } = await openPage(t, server, '', `http://127.0.0.1:${proxy.port}`);
  await page.click('#start');
  await until('state listening', async () => (await stateText(page)) === 'listening', 15000);
  await until(`"${EXPECTED}" in the final transcript`, async () =>
    (await finalsText(page)).includes(EXPECTED), FINAL_WAIT_MS);
  const before = await page.locator('#finals .final').count();
  const ready = JSON.parse(frames.find((f) => f.kind === 'recv' && JSON.parse(f.payload).type === 'ready').payload);
  proxy.cut();
  await until('state reconnecting', async () => (await pageLog(page)).some((e) =>
    e.kind === 'state' && e.text.startsWith('reconnecting')), 10000);
  await until('state listening again', async () => (await stateText(page)) === 'listening', 20000);
  await until('a final after the reset', async () =>
    (await page.locator('#finals .final').count()) > before &&
    (await page.locator('#finals .final').last().textContent()).includes(EXPECTED), FINAL_WAIT_MS);
  const sockets = frames.filter((f) => f.kind === 'open').length;
  const firstSent = frames.filter((f) => f.kind === 'sent' && f.id === 1 && typeof f.payload === 'string')
    .map((f) => JSON.parse(f.payload))[0];
  if (ready.resume_token) {
    assert.deepEqual({ type: firstSent.type, session_id: firstSent.session_id, resume_token: firstSent.resume_token },
      { type: 'resume', session_id: ready.session_id, resume_token: ready.resume_token });
    assert.match(await page.locator('#info').textContent(), new RegExp('session ' + ready.session_id));
  } else {
    assert.equal(firstSent.type, 'config');
  }
  t.diagnostic(`${sockets} sockets; after the reset the page sent ${firstSent.type}`);
  await page.click('#stop');
  await until('state idle after Stop', async () => (await stateText(page)) === 'idle', STOP_WAIT_MS);
  assert.deepEqual(errors.filter((e) => !/WebSocket connection to .* failed/.test(e)), []);
});
