// Shared helpers for end-to-end tests: start a real `hark serve` on a free
// loopback port, stream real recordings over WebSocket, collect events.
import { execFile, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import WebSocket from 'ws';

export const HARK = process.env.HARK_BIN || path.resolve('build/hark');
export const DATA = process.env.HARK_TESTDATA_DIR || '/usr/share/pocketsphinx/test/data/librivox';

export const CLIPS = readdirSync(DATA).filter((f) => f.endsWith('.wav')).sort()
  .map((f) => path.join(DATA, f));

// Reference transcripts from the data set, by clip id.
export function references() {
  const ref = {};
  for (const line of readFileSync(path.join(DATA, 'transcription'), 'utf8').split('\n')) {
    const m = line.match(/^<s> (.*) <\/s> \((.*)\)$/);
    if (m) ref[m[2]] = m[1];
  }
  return ref;
}

// PCM s16le samples of a canonical 44-byte-header WAV.
export function wavPcm(file) {
  const b = readFileSync(file);
  if (b.toString('ascii', 0, 4) !== 'RIFF') throw new Error(file + ': not a WAV');
  return b.subarray(44);
}

// A canonical 44-byte-header 16 kHz mono s16 WAV of pcm.
export function wavOf(pcm) {
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + pcm.length, 4); h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(16000, 24); h.writeUInt32LE(32000, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([h, pcm]);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Starts `hark serve` with extra args on a kernel-chosen port; resolves when
// it prints its listening line. Returns { proc, port, url, stop(), log() }.
export async function startServer(args = [], env = {}) {
  const proc = spawn(HARK, ['serve', '--host', '127.0.0.1', '--port', '0', ...args], {
    env: { ...process.env, HARK_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  // "listening on http://127.0.0.1:PORT/", https:// with TLS, [::1] for IPv6
  const [scheme, host, port] = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + err)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (https?):\/\/(\[[^\]]+\]|[^:/]+):(\d+)\//);
      if (m) { clearTimeout(timer); resolve([m[1], m[2], Number(m[3])]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${err}`)); });
  });
  return {
    proc, port, host,
    url: `${scheme === 'https' ? 'wss' : 'ws'}://${host}:${port}`,
    http: `${scheme}://${host}:${port}`,
    log: () => err,
    // The exit code, or the name of the signal that ended the process
    // (a crash on shutdown shows as 'SIGSEGV', not null). Bounded: a server
    // that has not exited 30 s after the signal is killed and 'hung' returned.
    async stop(signal = 'SIGTERM') {
      return stopProcess(proc, signal);
    },
  };
}

export async function stopProcess(proc, signal = 'SIGTERM', ms = 30000) {
  const result = () => (proc.exitCode !== null ? proc.exitCode : proc.signalCode);
  if (proc.exitCode !== null || proc.signalCode !== null) return result();
  const exited = once(proc, 'exit');
  proc.kill(signal);
  let timer;
  const hung = await Promise.race([exited.then(() => false),
    new Promise((res) => { timer = setTimeout(() => res(true), ms); })]);
  clearTimeout(timer);
  if (!hung) return result();
  proc.kill('SIGKILL');
  await exited;
  return 'hung';
}

// Opens a native-protocol session. Returns { ws, events, ready, closed }.
export async function openNative(url, config = {}, wsOptions = {}) {
  const ws = new WebSocket(url + '/v1/stream', wsOptions);
  const events = [];
  let closeInfo = null;
  const closed = new Promise((resolve) => {
    ws.on('close', (code, reason) => { closeInfo = { code, reason: reason.toString() }; resolve(closeInfo); });
  });
  ws.on('message', (data, isBinary) => {
    if (!isBinary) events.push(JSON.parse(data.toString()));
  });
  await once(ws, 'open');
  ws.send(JSON.stringify({ type: 'config', ...config }));
  const ready = await waitFor(events, (e) => e.type === 'ready' || e.type === 'error', 10000);
  return { ws, events, ready, closed };
}

// Polls until some event matches (bounded).
export async function waitFor(events, pred, ms = 20000) {
  const end = Date.now() + ms;
  for (;;) {
    const e = events.find(pred);
    if (e) return e;
    if (Date.now() > end) throw new Error('timed out waiting; events: ' + JSON.stringify(events).slice(0, 2000));
    await sleep(10);
  }
}

// Streams PCM in 20 ms frames (640 bytes at 16 kHz s16), paced in real time
// when realtime is true, else as fast as the socket takes it.
export async function streamPcm(ws, pcm, { realtime = false, frameBytes = 640, bytesPerSec = 32000 } = {}) {
  const t0 = Date.now();
  for (let off = 0; off < pcm.length; off += frameBytes) {
    ws.send(pcm.subarray(off, Math.min(off + frameBytes, pcm.length)));
    if (realtime) {
      const due = t0 + ((off + frameBytes) / bytesPerSec) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    } else if (ws.bufferedAmount > 1 << 20) {
      await sleep(5);
    }
  }
}

export function finals(events) {
  return events.filter((e) => e.type === 'transcript' && e.is_final && e.text).map((e) => e.text).join(' ');
}

// Word error rate of hyp against ref (word-level Levenshtein / ref words).
export function wer(ref, hyp) {
  const r = ref.split(/\s+/).filter(Boolean), h = hyp.split(/\s+/).filter(Boolean);
  const d = Array.from({ length: r.length + 1 }, (_, i) => [i, ...Array(h.length).fill(0)]);
  for (let j = 1; j <= h.length; j++) d[0][j] = j;
  for (let i = 1; i <= r.length; i++)
    for (let j = 1; j <= h.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (r[i - 1] === h[j - 1] ? 0 : 1));
  return { errors: d[r.length][h.length], words: r.length };
}

// Checks the result contract on one session's events; throws on violation.
export function checkContract(events) {
  let seq = -1, seg = 0, lastCommit = -1;
  for (const e of events) {
    if (e.type === 'ready') continue;
    if (typeof e.seq === 'number') {
      if (e.seq !== seq + 1) throw new Error(`seq gap: ${seq} -> ${e.seq}`);
      seq = e.seq;
    }
    if (e.type !== 'transcript') continue;
    if (e.segment !== seg) throw new Error(`segment ${e.segment}, expected ${seg}`);
    if (e.is_final) {
      if (e.committed_ms < lastCommit) throw new Error('committed_ms went backwards');
      lastCommit = e.committed_ms;
      seg++;
    }
  }
  return true;
}

// Runs curl; resolves { status, headers, body, json() }. Headers of a
// "100 Continue" interim response are skipped.
export function curl(args, timeoutMs = 150000) {
  return new Promise((resolve, reject) => {
    execFile('curl', ['-sS', '-D', '-', ...args], { encoding: 'buffer', maxBuffer: 64 << 20, timeout: timeoutMs },
      (err, stdout, stderr) => {
        if (err && !stdout.length) return reject(new Error(`curl failed: ${err.message} ${stderr}`));
        let rest = stdout;
        let head;
        for (;;) {
          const end = rest.indexOf('\r\n\r\n');
          if (end < 0) return reject(new Error('no HTTP response: ' + stdout.toString().slice(0, 500)));
          head = rest.subarray(0, end).toString();
          rest = rest.subarray(end + 4);
          if (!/^HTTP\/1\.1 100 /.test(head)) break;
        }
        const [statusLine, ...lines] = head.split('\r\n');
        const headers = {};
        for (const l of lines) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
        }
        const body = rest.toString();
        resolve({ status: Number(statusLine.split(' ')[1]), headers, body, json: () => JSON.parse(body) });
      });
  });
}
