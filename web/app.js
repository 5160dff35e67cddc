// hark demo page: microphone -> AudioWorklet (20 ms s16le frames at 16 kHz)
// -> WebSocket /v1/stream (native protocol) -> partials in grey, finals solid.
'use strict';

const RATE = 16000;
const $ = (id) => document.getElementById(id);
const finalsEl = $('finals'), partialEl = $('partial'), stateEl = $('state'), errorEl = $('error');

let ws = null, ctx = null, stream = null, node = null;
let running = false, retries = 0, retryTimer = null;

function setState(s) {
  stateEl.textContent = s;
  stateEl.className = 'state ' + s;
  document.body.dataset.state = s;
}

function showError(msg) {
  errorEl.hidden = !msg;
  errorEl.textContent = msg || '';
}

function wsUrl() {
  const u = new URL('/v1/stream', location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return u.toString();
}

function onMessage(ev) {
  let m;
  try { m = JSON.parse(ev.data); } catch (e) { return; }
  if (m.type === 'ready') {
    retries = 0;
    setState('listening');
  } else if (m.type === 'transcript') {
    if (m.is_final) {
      if (m.text) {
        const span = document.createElement('span');
        span.className = 'final';
        span.textContent = (finalsEl.childNodes.length ? ' ' : '') + m.text;
        finalsEl.appendChild(span);
      }
      partialEl.textContent = '';
    } else {
      partialEl.textContent = (finalsEl.childNodes.length ? ' ' : '') + m.text;
    }
  } else if (m.type === 'error') {
    showError(m.code + ': ' + m.message);
  }
}

function connect() {
  setState(retries ? 'reconnecting' : 'connecting');
  ws = new WebSocket(wsUrl());
  ws.binaryType = 'arraybuffer';
  ws.onopen = () => {
    ws.send(JSON.stringify({ type: 'config', encoding: 'pcm_s16le', sample_rate: RATE,
                             channels: 1, interim_results: true }));
  };
  ws.onmessage = onMessage;
  ws.onclose = (ev) => {
    ws = null;
    if (!running) { setState('idle'); return; }
    // Reconnect with exponential backoff (0.5 s .. 10 s).
    const delay = Math.min(10000, 500 * Math.pow(2, retries++));
    setState('reconnecting');
    retryTimer = setTimeout(connect, delay);
  };
  ws.onerror = () => { /* onclose follows */ };
}

async function start() {
  showError('');
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true } });
    ctx = new AudioContext({ sampleRate: RATE });
    await ctx.audioWorklet.addModule('worklet.js');
    const src = ctx.createMediaStreamSource(stream);
    node = new AudioWorkletNode(ctx, 'pcm-worklet');
    node.port.onmessage = (e) => {
      if (ws && ws.readyState === WebSocket.OPEN && stateEl.textContent === 'listening') ws.send(e.data);
    };
    src.connect(node);
  } catch (e) {
    setState('error');
    showError('microphone: ' + e.message);
    return;
  }
  running = true;
  $('start').disabled = true;
  $('stop').disabled = false;
  connect();
}

function stop() {
  running = false;
  clearTimeout(retryTimer);
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'close' }));
  if (node) node.disconnect();
  if (stream) stream.getTracks().forEach((t) => t.stop());
  if (ctx) ctx.close();
  node = stream = ctx = null;
  $('start').disabled = false;
  $('stop').disabled = true;
}

$('start').onclick = start;
$('stop').onclick = stop;
setState('idle');
