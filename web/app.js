// hark demo page: microphone -> AudioWorklet (20 ms s16le frames at 16 kHz)
// -> hark-client (clients/js, served as /hark-client.js) -> WebSocket
// /v1/stream (native protocol) -> partial words in grey, final words solid.
// Plain JS modules, no build step, no external resources. The client keeps
// the session through network faults (resume, or a new session replaying the
// audio since the last final); the page only shows what happens.
//
// States shown in the header: idle, connecting, listening, reconnecting,
// stopping (waiting for the last final after Stop), error.
//
// Query parameters (for testing the less common paths):
//   ?resample=worklet  run the AudioContext at the device rate and resample
//                      in the worklet, as on browsers that refuse 16 kHz.
import { HarkClient } from './hark-client.js';

const RATE = 16000;
const FRAME_MS = 20;
const FRAME_BYTES = (RATE * 2 * FRAME_MS) / 1000;

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

let client = null; // between Start and the end of Stop
let audio = null; // { stream, ctx, node, inputRate, outputRate }
let level = 0;
let lostMs = 0; // audio the client had to drop during an outage
let restarts = 0;

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
  const extra = [
    restarts ? 'continued in a new session ' + restarts + '×' : '',
    lostMs ? 'lost ' + (lostMs / 1000).toFixed(1) + ' s of audio (long outage)' : '',
  ];
  ui.info.textContent = [...infoParts, ...extra].filter(Boolean).join(' · ');
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

// Times of the client's events are seconds from Start, across reconnects.
function showPartial(m) {
  if (!m || !m.text) {
    ui.partial.hidden = true;
    ui.partial.querySelector('.text').textContent = '';
    return;
  }
  ui.partial.querySelector('time').textContent = clock(m.start || 0);
  ui.partial.querySelector('.text').textContent = m.text;
  ui.partial.hidden = false;
  ui.placeholder.hidden = true;
}

function addFinal(m) {
  showPartial(null);
  if (!m.text) return; // an utterance that turned out to be noise
  ui.finals.append(line('final', m.start || 0, m.text));
  ui.placeholder.hidden = true;
  ui.finals.lastChild.scrollIntoView({ block: 'nearest' });
}

function onClientState(c, ev) {
  if (c !== client) return;
  switch (ev.state) {
    case 'connecting':
      setState('connecting');
      break;
    case 'streaming':
    case 'paused':
      setState('listening');
      break;
    case 'finalizing':
      setState('stopping', 'finishing the last words');
      break;
    case 'reconnecting':
      // The 'reconnecting' event that follows says when (unless the client
      // reconnects at once, into a new session).
      setState('reconnecting');
      showPartial(null);
      break;
  }
}

function makeClient() {
  const c = new HarkClient({
    url: wsUrl(),
    config: { encoding: 'pcm_s16le', sample_rate: RATE, channels: 1, interim_results: true },
    chunkBytes: FRAME_BYTES, // a backlog goes out as the 20 ms frames it was captured in
    // How long Stop waits for the server's last final. The server first
    // finishes the audio it has queued, which takes a while on a busy machine.
    closeTimeoutMs: 20000,
  });
  c.on('state', (ev) => onClientState(c, ev));
  c.on('reconnecting', (ev) => {
    if (c === client && c.state === 'reconnecting')
      setState('reconnecting', 'try ' + ev.attempt + ' in ' + (ev.delay_ms / 1000).toFixed(1) + ' s');
  });
  c.on('ready', (m) => {
    showError('');
    setInfo([
      'session ' + m.session_id,
      m.engine,
      m.sample_rate / 1000 + ' kHz ' + m.encoding,
      audio && audio.inputRate !== audio.outputRate
        ? 'resampled ' + audio.inputRate + '→' + audio.outputRate + ' Hz in the worklet'
        : audio && 'capture at ' + audio.inputRate + ' Hz',
    ]);
  });
  c.on('resumed', () => showError(''));
  c.on('restarted', () => {
    restarts++;
    renderInfo();
  });
  c.on('audio_lost', (ev) => {
    lostMs += ev.to_ms - ev.from_ms;
    renderInfo();
  });
  c.on('partial', (m) => showPartial(m));
  c.on('final', (m) => addFinal(m));
  c.on('error', (m) => {
    showError(m.code + ': ' + m.message);
    if (m.fatal && c === client) fail(m.code + ': ' + m.message);
  });
  return c;
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
        // The client queues frames while it (re)connects and sends them
        // when it can: nothing is dropped unless an outage outlasts its
        // buffer (then it says so: audio_lost).
        if (client && !client.closing) client.send(e.data.pcm);
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
  const c = client;
  client = null;
  closeAudio();
  if (c) c.close();
  setState('error');
  showError(msg);
  ui.start.disabled = false;
  ui.stop.disabled = true;
}

async function start() {
  if (client) return;
  showError('');
  ui.start.disabled = true;
  setState('connecting', 'microphone');
  lostMs = 0;
  restarts = 0;
  const c = makeClient();
  client = c;
  try {
    audio = await openAudio();
  } catch (e) {
    const why = e && e.name === 'NotAllowedError' ? 'permission denied' : (e && e.message) || e;
    fail('microphone: ' + why);
    return;
  }
  if (client !== c) return;
  ui.stop.disabled = false;
  requestAnimationFrame(drawLevel);
  c.connect().catch(() => {}); // failures arrive as events
}

async function stop() {
  const c = client;
  if (!c) return;
  closeAudio();
  ui.stop.disabled = true;
  // The server finishes the audio it has, sends the last finals and
  // "closed"; the client waits for them (and keeps reconnecting meanwhile).
  await c.close();
  if (client !== c) return; // failed meanwhile
  client = null;
  showPartial(null);
  setState('idle');
  ui.start.disabled = false;
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
  if (client) client.close();
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
