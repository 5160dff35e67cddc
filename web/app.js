// hark demo page: microphone -> AudioWorklet (20 ms s16le frames at 16 kHz)
// -> WebSocket /v1/stream (native protocol) -> partial words in grey, final
// words solid. Plain JS, no build step, no external resources.
//
// States shown in the header: idle, connecting, listening, reconnecting,
// stopping (waiting for the last final after Stop), error.
//
// Query parameters (for testing the less common paths):
//   ?resample=worklet  run the AudioContext at the device rate and resample
//                      in the worklet, as on browsers that refuse 16 kHz.
'use strict';

const RATE = 16000;
const FRAME_MS = 20;
const PREROLL_FRAMES = 50; // audio kept while (re)connecting: 1 s
const MAX_BUFFERED = 256 * 1024; // bytes queued on the socket before frames are dropped
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 10000;
// How long Stop waits for the server's last final. The server first finishes
// the audio it has queued, which takes a while on a busy machine.
const STOP_TIMEOUT_MS = 20000;
// Close codes after which retrying cannot help (the server refused what we send).
const FATAL_CLOSE = new Set([4400, 4415]);

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('state'),
  stateText: $('state-text'),
  start: $('start'),
  stop: $('stop'),
  clear: $('clear'),
  finals: $('finals'),
  partial: $('partial'),
  placeholder: $('placeholder'),
  level: $('level'),
  info: $('info'),
  error: $('error'),
};
const params = new URLSearchParams(location.search);

let running = false; // between Start and Stop
let ws = null; // current socket (null between attempts)
let ready = false; // current socket got "ready": audio may flow
let attempt = 0; // consecutive failed attempts, for the backoff
let retryTimer = null;
let audio = null; // { stream, ctx, node, inputRate, outputRate }
let preroll = []; // frames captured while not ready (bounded)
let startedAt = 0; // performance.now() at Start
let sessionOffset = 0; // seconds from Start to the current session's first audio
let dropped = 0; // frames dropped because the socket was backed up
let level = 0;

function setState(s, detail) {
  ui.state.className = 'state ' + s;
  ui.stateText.textContent = detail ? s + ' · ' + detail : s;
  document.body.dataset.state = s;
}

function showError(msg) {
  ui.error.hidden = !msg;
  ui.error.textContent = msg || '';
}

let infoParts = [];
function setInfo(parts) {
  infoParts = parts.filter(Boolean);
  renderInfo();
}
function renderInfo() {
  const drops = dropped ? 'dropped ' + (dropped * FRAME_MS) / 1000 + ' s of audio (slow network)' : '';
  ui.info.textContent = [...infoParts, drops].filter(Boolean).join(' · ');
}

function wsUrl() {
  const u = new URL('/v1/stream', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  u.search = '';
  return u.toString();
}

function clock(sec) {
  const s = Math.max(0, Math.floor(sec));
  return Math.floor(s / 60) + ':' + String(s % 60).padStart(2, '0');
}

function line(cls, at, text) {
  const p = document.createElement('p');
  p.className = 'line ' + cls;
  const t = document.createElement('time');
  t.textContent = clock(at);
  const span = document.createElement('span');
  span.className = 'text';
  span.textContent = text;
  p.append(t, span);
  return p;
}

function showPartial(m) {
  if (!m || !m.text) {
    ui.partial.hidden = true;
    ui.partial.querySelector('.text').textContent = '';
    return;
  }
  ui.partial.querySelector('time').textContent = clock(sessionOffset + (m.start || 0));
  ui.partial.querySelector('.text').textContent = m.text;
  ui.partial.hidden = false;
  ui.placeholder.hidden = true;
}

function addFinal(m, clearPartial = true) {
  if (clearPartial) showPartial(null);
  if (!m.text) return; // an utterance that turned out to be noise
  ui.finals.append(line('final', sessionOffset + (m.start || 0), m.text));
  ui.placeholder.hidden = true;
  ui.finals.lastChild.scrollIntoView({ block: 'nearest' });
}

function onMessage(sock, ev) {
  if (typeof ev.data !== 'string') return;
  let m;
  try {
    m = JSON.parse(ev.data);
  } catch (e) {
    return;
  }
  // A socket that is no longer current is one that Stop is closing: it only
  // delivers the last words of its session.
  const current = sock === ws;
  switch (m.type) {
    case 'ready':
      if (!current) break;
      ready = true;
      attempt = 0;
      showError('');
      // Frames still in the preroll were captured this long ago.
      sessionOffset = (performance.now() - startedAt) / 1000 - (preroll.length * FRAME_MS) / 1000;
      for (const f of preroll) sock.send(f);
      preroll = [];
      setInfo([
        'session ' + m.session_id,
        m.engine,
        m.sample_rate / 1000 + ' kHz ' + m.encoding,
        audio && audio.inputRate !== audio.outputRate
          ? 'resampled ' + audio.inputRate + '→' + audio.outputRate + ' Hz in the worklet'
          : audio && 'capture at ' + audio.inputRate + ' Hz',
      ]);
      if (running) setState('listening');
      break;
    case 'transcript':
      if (m.is_final) addFinal(m, current || !running);
      else if (current || !running) showPartial(m);
      break;
    case 'error':
      showError(m.code + ': ' + m.message);
      break;
    case 'closed':
      if (current || !running) showPartial(null);
      break;
  }
}

function connect() {
  retryTimer = null;
  setState(attempt ? 'reconnecting' : 'connecting', attempt ? 'try ' + attempt : '');
  const sock = new WebSocket(wsUrl());
  ws = sock;
  ready = false;
  sock.binaryType = 'arraybuffer';
  sock.onopen = () => {
    sock.send(
      JSON.stringify({
        type: 'config',
        encoding: 'pcm_s16le',
        sample_rate: RATE,
        channels: 1,
        interim_results: true,
      }),
    );
  };
  sock.onmessage = (ev) => onMessage(sock, ev);
  sock.onerror = () => {}; // onclose follows with the code
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    ws = null;
    ready = false;
    showPartial(null); // an unfinished utterance of a lost session never becomes final
    if (!running) {
      setState('idle');
      return;
    }
    if (FATAL_CLOSE.has(ev.code)) {
      fail('server refused the stream (' + ev.code + (ev.reason ? ' ' + ev.reason : '') + ')');
      return;
    }
    // Reconnect with exponential backoff and jitter: 0.5 s, 1 s, 2 s ... 10 s.
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    attempt++;
    setState('reconnecting', 'in ' + (delay / 1000).toFixed(1) + ' s');
    retryTimer = setTimeout(connect, delay);
  };
}

function onFrame(pcm) {
  if (ws && ready && ws.readyState === WebSocket.OPEN) {
    if (ws.bufferedAmount > MAX_BUFFERED) {
      dropped++; // the network cannot keep up; stay live rather than fall behind
      if (dropped % 50 === 1) renderInfo();
      return;
    }
    ws.send(pcm);
  } else if (running) {
    preroll.push(pcm);
    if (preroll.length > PREROLL_FRAMES) preroll.shift();
  }
}

function drawLevel() {
  if (!audio) {
    ui.level.style.setProperty('--level', 0);
    return;
  }
  // Speech RMS is roughly 0.01-0.3: show it on a log scale from -60 dBFS.
  const db = 20 * Math.log10(Math.max(level, 1e-6));
  ui.level.style.setProperty('--level', Math.max(0, Math.min(1, (db + 60) / 60)).toFixed(3));
  requestAnimationFrame(drawLevel);
}

async function openAudio() {
  const stream = await navigator.mediaDevices.getUserMedia({
    // The raw signal: the page plays nothing, so there is no echo to cancel,
    // and the recogniser normalises levels itself; browser noise suppression
    // and gain control only distort speech on the way to it.
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const wantWorkletResample = params.get('resample') === 'worklet';
  let ctx = null;
  let src = null;
  if (!wantWorkletResample) {
    try {
      ctx = new AudioContext({ sampleRate: RATE, latencyHint: 'interactive' });
      src = ctx.createMediaStreamSource(stream);
    } catch (e) {
      // Some browsers refuse a 16 kHz context, or refuse to connect a
      // microphone at another rate to it: fall back to the device rate.
      if (ctx) ctx.close();
      ctx = src = null;
    }
  }
  if (!ctx) {
    ctx = new AudioContext({ latencyHint: 'interactive' });
    src = ctx.createMediaStreamSource(stream);
  }
  try {
    await ctx.audioWorklet.addModule('worklet.js');
    // No outputs: the node is pulled by the graph without feeding the speakers.
    const node = new AudioWorkletNode(ctx, 'hark-pcm', {
      numberOfInputs: 1,
      numberOfOutputs: 0,
      channelCount: 1,
      channelCountMode: 'explicit',
      processorOptions: { targetRate: RATE },
    });
    node.port.onmessage = (e) => {
      if (e.data.type === 'frame') {
        level = Math.max(e.data.rms, level * 0.85);
        onFrame(e.data.pcm);
      }
    };
    src.connect(node);
    await ctx.resume();
    return { stream, ctx, node, src, inputRate: ctx.sampleRate, outputRate: RATE };
  } catch (e) {
    ctx.close();
    stream.getTracks().forEach((t) => t.stop());
    throw e;
  }
}

function closeAudio() {
  if (!audio) return;
  audio.src.disconnect();
  audio.node.port.onmessage = null;
  audio.stream.getTracks().forEach((t) => t.stop());
  audio.ctx.close();
  audio = null;
}

function fail(msg) {
  running = false;
  clearTimeout(retryTimer);
  retryTimer = null;
  closeAudio();
  if (ws) {
    const sock = ws;
    ws = null;
    sock.close();
  }
  setState('error');
  showError(msg);
  ui.start.disabled = false;
  ui.stop.disabled = true;
}

async function start() {
  if (running) return;
  showError('');
  ui.start.disabled = true;
  setState('connecting', 'microphone');
  try {
    audio = await openAudio();
  } catch (e) {
    const why = e && e.name === 'NotAllowedError' ? 'permission denied' : (e && e.message) || e;
    fail('microphone: ' + why);
    return;
  }
  running = true;
  attempt = 0;
  dropped = 0;
  preroll = [];
  startedAt = performance.now();
  ui.stop.disabled = false;
  requestAnimationFrame(drawLevel);
  connect();
}

function stop() {
  if (!running) return;
  running = false;
  clearTimeout(retryTimer);
  retryTimer = null;
  closeAudio();
  preroll = [];
  ui.start.disabled = false;
  ui.stop.disabled = true;
  const sock = ws;
  ws = null;
  if (sock && ready && sock.readyState === WebSocket.OPEN) {
    // The server answers with the last final, "closed", then closes.
    sock.send(JSON.stringify({ type: 'close' }));
    setState('stopping', 'finishing the last words');
    const timer = setTimeout(() => sock.close(), STOP_TIMEOUT_MS);
    sock.onclose = () => {
      clearTimeout(timer);
      if (running || ws) return; // Start was pressed again meanwhile
      showPartial(null);
      setState('idle');
    };
  } else {
    if (sock) sock.close();
    showPartial(null);
    setState('idle');
  }
  ready = false;
}

function clearTranscript() {
  ui.finals.replaceChildren();
  showPartial(null);
  ui.placeholder.hidden = false;
}

ui.start.onclick = start;
ui.stop.onclick = stop;
ui.clear.onclick = clearTranscript;
window.addEventListener('pagehide', () => {
  if (ws && ready) ws.send(JSON.stringify({ type: 'close' }));
});
if (!window.AudioWorkletNode || !navigator.mediaDevices) {
  ui.start.disabled = true;
  setState('error');
  showError(
    'This browser cannot capture audio here (AudioWorklet and getUserMedia need a recent ' +
      'browser and a secure origin: https, or http://localhost).',
  );
} else {
  setState('idle');
}
