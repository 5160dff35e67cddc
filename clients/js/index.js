// hark-client: a streaming client for hark's native protocol (/v1/stream)
// that keeps a session alive through network faults. Plain ES module, no
// build step, no dependencies; runs in browsers and in Node >= 18 (pass a
// WebSocket implementation such as the `ws` package where there is no global
// one, or to send the API key as a header).
//
//   import { HarkClient } from 'hark-client';
//   const client = new HarkClient({ url: 'ws://localhost:8080', config: { sample_rate: 16000 } });
//   client.on('final', (e) => console.log(e.text));
//   client.send(pcmChunk);            // any time, also while disconnected
//   await client.close();             // last finals, then 'closed'
//
// What it does about faults (docs/clients.md has the contract):
// - Audio goes through a fixed-size ring buffer that keeps everything after
//   the last final's committed_ms. A connection that drops is resumed
//   (session id + resume token + last seq + bytes sent); the server replays
//   the events the client missed and says how much audio it holds, and the
//   client resends the rest. The transcript is that of an unbroken connection.
// - If the server no longer has the session (restarted, expired), a new
//   session is opened with the same options and the audio since the last
//   final is replayed into it; times, segments and seq continue where the
//   old session's left off and a `restarted` event marks the boundary.
// - A ring buffer that overflows during a long outage drops its oldest audio
//   and says so with `audio_lost` {from_ms, to_ms}; lost audio still needed
//   by the server is replaced by silence so that times stay aligned.
// - Liveness: `keepalive` after keepaliveMs without audio; nothing received
//   for 2 x keepaliveMs + margin means a half-open connection: reconnect.
// - Reconnects forever with exponential backoff and full jitter, until
//   close() or an error that retrying cannot fix (HTTP 401, close 4400/4415).
//
// Threading: none; everything runs on the caller's event loop.

const RAW = {
  pcm_s16le: { bytes: 2, silence: 0x00 },
  pcm_f32le: { bytes: 4, silence: 0x00 },
  mulaw: { bytes: 1, silence: 0xff },
  alaw: { bytes: 1, silence: 0xd5 },
};

// Close codes after which a retry cannot succeed: the server refused what
// this client sends (bad config or protocol, undecodable audio).
const FATAL_CLOSE = new Set([4400, 4415]);
const RESUME_FAILED_CLOSE = 4404;
const MAX_SOCKET_BUFFERED = 512 * 1024; // bytes queued on a socket before the pump waits

export const STATES = ['connecting', 'streaming', 'paused', 'reconnecting', 'finalizing', 'closed'];

// A fixed-size byte ring addressed by absolute stream offsets: it holds the
// bytes [start, end) of everything ever appended (end = total appended).
// Appending past the capacity drops the oldest bytes.
export class AudioRing {
  constructor(capacity) {
    this.buf = new Uint8Array(capacity);
    this.start = 0;
    this.end = 0;
  }

  get capacity() {
    return this.buf.length;
  }

  // Appends bytes; returns [from, to) of the oldest bytes it had to drop
  // (from === to when none).
  push(bytes) {
    const cap = this.buf.length;
    let src = bytes;
    if (src.length > cap) src = src.subarray(src.length - cap); // only the newest fit
    const skipped = bytes.length - src.length;
    const dropFrom = this.start;
    const newEnd = this.end + bytes.length;
    const newStart = Math.max(this.start, newEnd - cap);
    let pos = (this.end + skipped) % cap;
    let off = 0;
    while (off < src.length) {
      const n = Math.min(src.length - off, cap - pos);
      this.buf.set(src.subarray(off, off + n), pos);
      off += n;
      pos = (pos + n) % cap;
    }
    this.end = newEnd;
    this.start = newStart;
    return [dropFrom, newStart];
  }

  // Forgets everything before offset (it is no longer needed).
  trim(offset) {
    if (offset > this.start) this.start = Math.min(offset, this.end);
  }

  // A copy of [from, to), clamped to what is held.
  read(from, to) {
    from = Math.max(from, this.start);
    to = Math.min(to, this.end);
    if (to <= from) return new Uint8Array(0);
    const cap = this.buf.length;
    const out = new Uint8Array(to - from);
    let pos = from % cap;
    let off = 0;
    while (off < out.length) {
      const n = Math.min(out.length - off, cap - pos);
      out.set(this.buf.subarray(pos, pos + n), off);
      off += n;
      pos = (pos + n) % cap;
    }
    return out;
  }
}

function toBytes(audio) {
  if (audio instanceof Uint8Array) return audio;
  if (ArrayBuffer.isView(audio)) return new Uint8Array(audio.buffer, audio.byteOffset, audio.byteLength);
  if (audio instanceof ArrayBuffer) return new Uint8Array(audio);
  throw new TypeError('audio must be an ArrayBuffer or a typed array');
}

function streamUrl(url) {
  const u = new URL(url);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1/stream';
  return u.toString();
}

export class HarkClient {
  // options: see index.d.ts (HarkClientOptions).
  constructor(options = {}) {
    if (!options.url) throw new TypeError('url is required');
    this.url = streamUrl(options.url);
    this.apiKey = options.apiKey || null;
    this.config = { ...(options.config || {}) };
    delete this.config.type;
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    if (!this.WebSocket) throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)');
    this.auth = options.auth || (options.WebSocket && options.WebSocket !== globalThis.WebSocket ? 'header' : 'subprotocol');
    const backoff = options.backoff || {};
    this.backoffBase = backoff.baseMs ?? 250;
    this.backoffCap = backoff.capMs ?? 10000;
    this.keepaliveMs = options.keepaliveMs ?? 5000;
    this.deadMs = options.deadMs ?? 2 * this.keepaliveMs + 2000;
    this.closeTimeoutMs = options.closeTimeoutMs ?? 30000;
    this.random = options.random || Math.random;
    this.resume = options.resume ?? true;

    const enc = this.config.encoding || 'pcm_s16le';
    this.raw = RAW[enc] || null;
    this.rate = (this.config.sample_rate || 16000) * (this.config.channels || 1) * (this.raw ? this.raw.bytes : 0);
    this.frameBytes = this.raw ? this.raw.bytes * (this.config.channels || 1) : 1;
    const bufferBytes = options.bufferBytes ?? (this.raw ? Math.round(this.rate * (options.bufferSeconds ?? 60)) : 4 << 20);
    // Largest binary message: 100 ms of raw audio, so that controls queued
    // behind a backlog are not held up long.
    this.chunkBytes = options.chunkBytes ?? (this.raw ? Math.max(this.frameBytes, this.bytesAt(100)) : 16384);
    // Unacknowledged audio in flight at most (when the server acks): a
    // reconnect resends at most this much, and a file streamed at full
    // speed does not pile up in socket buffers.
    this.windowBytes = options.windowBytes ?? (this.raw ? Math.round(this.rate * 5) : 256 << 10);
    this.ring = new AudioRing(Math.max(this.frameBytes, bufferBytes - (bufferBytes % this.frameBytes)));

    this.handlers = new Map();
    this.state = 'idle';
    this.ws = null;
    this.closing = false; // close() was called
    this.done = false; // 'closed' emitted
    this.attempt = 0; // consecutive failed connection attempts
    this.retryTimer = null;
    this.tick = null;
    this.closeTimer = null;

    // The server session this client streams into, in the client's absolute
    // audio offsets: byte 0 of the session is byte `base` of the stream.
    this.session = null; // { id, token, window, base, baseMs, segBase, seqBase, lastSeq, ended }
    this.userSeq = -1; // last seq given to the user
    this.lastFinalSeg = -1; // user-visible segment of the last final
    this.committed = 0; // absolute byte offset of the last final's committed_ms
    this.acked = 0; // absolute byte offset the server said it holds
    this.lostTo = 0; // loss has been reported up to this absolute offset
    this.sent = 0; // absolute offset sent on the current socket (next byte to send)
    this.maxSent = 0; // highest absolute offset ever sent to the current session
    this.controls = []; // [{ at, msg }] controls waiting for the audio before them
    this.lastAudioAt = 0;
    this.lastKeepaliveAt = 0;
    this.lastRecvAt = 0;
    this.stats = { connects: 0, resumes: 0, restarts: 0, resentBytes: 0, lostBytes: 0 };
  }

  // ---- events ------------------------------------------------------------
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return this;
  }

  off(type, fn) {
    this.handlers.get(type)?.delete(fn);
    return this;
  }

  emit(type, ev) {
    for (const fn of [...(this.handlers.get(type) || [])]) {
      try {
        fn(ev);
      } catch (e) {
        // A handler's bug must not break the connection logic.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }

  setClientState(s, detail) {
    if (this.state === s) return;
    const from = this.state;
    this.state = s;
    this.emit('state', { state: s, from, ...(detail || {}) });
  }

  // ---- public API ----------------------------------------------------------

  // Starts the first connection. Resolves with the first `ready` message, or
  // rejects if the client closes before one arrives.
  connect() {
    if (this.state !== 'idle') return this.readyPromise;
    this.readyPromise = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.readyPromise.catch(() => {});
    this.tick = setInterval(() => this.onTick(), Math.min(1000, this.keepaliveMs / 2));
    this.setClientState('connecting');
    this.open();
    return this.readyPromise;
  }

  // Queues audio (ArrayBuffer or typed array, any size) for the session.
  // Never blocks and never fails: while disconnected the audio waits in the
  // ring buffer and is sent on reconnect.
  send(audio) {
    if (this.closing || this.done) return;
    const bytes = toBytes(audio);
    if (!bytes.length) return;
    if (this.state === 'idle') this.connect();
    const [from, to] = this.ring.push(bytes);
    if (to > from) this.dropped(from, to);
    this.lastAudioAt = Date.now();
    if (this.state === 'paused') this.setClientState('streaming');
    this.pump();
  }

  // Ends the current utterance now (its final comes with reason `finalize`).
  finalize() {
    this.control({ type: 'finalize' });
  }

  // 'responding' while a voice agent talks (speech then sends `interrupt`),
  // 'listening' otherwise.
  setState(state) {
    if (state !== 'responding' && state !== 'listening') throw new TypeError("state must be 'responding' or 'listening'");
    this.control({ type: 'state', state });
  }

  // Flushes: the server finishes the audio it has, sends the last finals and
  // `closed`. Resolves with the `closed` event (after closeTimeoutMs without
  // one, with {reason:'timeout'}).
  close() {
    if (this.closePromise) return this.closePromise;
    if (this.done) return (this.closePromise = Promise.resolve(this.closedEvent));
    this.closePromise = new Promise((resolve) => {
      this.closeResolve = resolve;
    });
    if (this.state === 'idle') {
      this.finish({ reason: 'client' });
      return this.closePromise;
    }
    this.closing = true;
    this.setClientState('finalizing');
    this.control({ type: 'close' });
    this.closeTimer = setTimeout(() => this.finish({ reason: 'timeout' }), this.closeTimeoutMs);
    return this.closePromise;
  }

  // The session id the server gave (the current one after a restart).
  get sessionId() {
    return this.session?.id ?? null;
  }

  // ---- connection ----------------------------------------------------------

  open() {
    this.retryTimer = null;
    if (this.done) return;
    this.stats.connects++;
    let ws;
    try {
      if (this.apiKey && this.auth === 'header')
        ws = new this.WebSocket(this.url, [], { headers: { Authorization: 'Token ' + this.apiKey } });
      else if (this.apiKey) ws = new this.WebSocket(this.url, ['token', this.apiKey]);
      else ws = new this.WebSocket(this.url);
    } catch (e) {
      this.fail('connect_failed', String(e && e.message ? e.message : e));
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    this.handshake = true; // until ready / resumed
    this.lastError = null;
    this.lastRecvAt = Date.now();
    let httpStatus = 0;
    ws.onopen = () => {
      if (ws !== this.ws) return;
      this.lastRecvAt = Date.now();
      const s = this.session;
      if (this.resumable()) {
        ws.send(JSON.stringify({
          type: 'resume',
          session_id: s.id,
          resume_token: s.token,
          last_seq: s.lastSeq,
          audio_bytes: this.maxSent - s.base,
        }));
      } else {
        ws.send(JSON.stringify({ type: 'config', ...this.config }));
      }
    };
    ws.onmessage = (ev) => {
      if (ws !== this.ws) return;
      this.lastRecvAt = Date.now();
      if (typeof ev.data !== 'string') return;
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onMessage(m);
    };
    ws.onerror = (ev) => {
      // The `ws` package reports a refused upgrade as an error naming the status.
      const msg = ev && (ev.message || ev.error?.message);
      const st = msg && /Unexpected server response: (\d+)/.exec(msg);
      if (st) httpStatus = Number(st[1]);
    };
    ws.onclose = (ev) => {
      if (ws !== this.ws) return;
      this.dropSocket();
      this.onSocketClosed(ev.code, ev.reason, httpStatus);
    };
  }

  // Forgets the current socket without a close handshake: a dead connection
  // never completes one, and the session must stay resumable (a `close`
  // message would end it).
  dropSocket() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = null;
    // Closing a socket still connecting reports an error (the `ws` package
    // emits it, and throws it when nothing listens): expected, ignored.
    ws.onerror = () => {};
    try {
      if (typeof ws.terminate === 'function') ws.terminate();
      else if (ws.readyState <= 1) ws.close(4000, 'reconnecting');
    } catch {
      // already closed
    }
  }

  onSocketClosed(code, reason, httpStatus) {
    if (this.done) return;
    const s = this.session;
    if (s && s.ended) {
      // The server ended the session with `closed` (we asked, or it shut
      // down / timed out). Asked: done. Otherwise a new session continues.
      if (this.closing) return this.finish(s.closedEvent || { reason: 'server' });
      return this.restart('server closed the session');
    }
    if (httpStatus === 401 || httpStatus === 403) return this.fail('unauthorized', 'the server refused the API key (HTTP ' + httpStatus + ')');
    if (FATAL_CLOSE.has(code)) return this.fail(this.lastError?.code || 'closed_' + code, this.lastError?.message || reason || 'closed ' + code);
    if (code === RESUME_FAILED_CLOSE || (this.lastError && this.lastError.code === 'resume_failed')) {
      this.lastError = null;
      return this.restart('resume failed');
    }
    this.lastError = null;
    // A session the server cannot resume (resume off, or this client's
    // option) continues in a new one.
    if (s && s.id && !this.resumable()) return this.restart('session not resumable');
    this.scheduleReconnect();
  }

  resumable() {
    const s = this.session;
    return Boolean(this.resume && s && s.id && s.token && !s.ended);
  }

  scheduleReconnect() {
    if (this.done || this.retryTimer) return;
    this.setClientState(this.closing ? 'finalizing' : 'reconnecting');
    // Full jitter: uniform in [0, min(cap, base * 2^attempt)).
    const ceiling = Math.min(this.backoffCap, this.backoffBase * 2 ** this.attempt);
    const delay = Math.floor(this.random() * ceiling);
    this.attempt++;
    this.emit('reconnecting', { attempt: this.attempt, delay_ms: delay });
    this.retryTimer = setTimeout(() => this.open(), delay);
  }

  // The server no longer has the session: open a new one with the same
  // options and replay the audio from the last final's committed point.
  restart(why) {
    if (!this.raw) {
      this.fail('resume_failed', why + '; encoding ' + (this.config.encoding || '') + ' cannot be replayed into a new session');
      return;
    }
    const old = this.session;
    const from = Math.max(this.committed, this.ring.start);
    if (from > this.committed) this.lost(this.committed, from);
    this.session = {
      id: null,
      token: null,
      base: from,
      baseMs: this.ms(from),
      segBase: this.lastFinalSeg + 1,
      seqBase: this.userSeq + 1,
      lastSeq: -1,
      ended: false,
      previous: old ? old.id : null,
    };
    this.sent = from;
    this.maxSent = from;
    this.acked = from;
    // Controls sent to the old session after the committed point are sent
    // again to the new one (they apply to audio it will see again).
    this.controls = this.controls.concat(old?.sentControls?.filter((c) => c.at > from) || []).sort((a, b) => a.at - b.at);
    this.stats.restarts++;
    // Straight away: the server answered, it is reachable.
    this.setClientState(this.closing ? 'finalizing' : 'reconnecting');
    this.open();
  }

  fail(code, message) {
    this.emit('error', { type: 'error', code, message, fatal: true });
    this.finish({ reason: 'error', code, message });
  }

  finish(closed) {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.closeTimer);
    clearInterval(this.tick);
    this.retryTimer = this.closeTimer = this.tick = null;
    this.flushLost();
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.onopen = ws.onmessage = ws.onclose = null;
      ws.onerror = () => {}; // as in dropSocket()
      try {
        ws.close(1000);
      } catch {
        // already closed
      }
    }
    this.setClientState('closed');
    const ev = { type: 'closed', session_id: this.session?.id ?? null, ...closed };
    this.closedEvent = ev;
    this.emit('closed', ev);
    if (this.readyReject) this.readyReject(new Error('closed before ready: ' + (closed.message || closed.reason)));
    if (this.closeResolve) this.closeResolve(ev);
  }

  // ---- messages --------------------------------------------------------------

  onMessage(m) {
    const s = this.session;
    switch (m.type) {
      case 'ready':
        return this.onReady(m);
      case 'resumed':
        return this.onResumed(m);
      case 'ack':
        if (s && typeof m.audio_bytes === 'number') {
          const at = s.base + m.audio_bytes;
          if (at > this.acked) this.acked = at;
          // Without a fixed byte rate there is no fallback to keep audio
          // for: what the server holds is all that can be dropped.
          if (!this.raw) this.ring.trim(this.acked);
          this.pump(); // the window moved
        }
        return;
    }
    if (!s) return;
    if (typeof m.seq === 'number') {
      // A resumed session replays exactly the events after last_seq; this
      // only guards against a server that replays more.
      if (m.seq <= s.lastSeq) return;
      s.lastSeq = m.seq;
    }
    if (m.type === 'error') {
      this.lastError = m;
      if (m.code === 'resume_failed') return; // the close (4404) follows
    }
    if (m.type === 'closed') {
      s.ended = true;
      s.closedEvent = { ...this.shift(m), reason: this.closing ? 'client' : 'server' };
      return;
    }
    const ev = this.shift(m);
    if (m.type === 'transcript') {
      if (m.is_final) {
        this.lastFinalSeg = ev.segment;
        if (typeof m.committed_ms === 'number') {
          const c = s.base + this.bytesAt(m.committed_ms);
          if (c > this.committed) this.committed = c;
          // Audio before the committed point is never needed again.
          this.ring.trim(this.committed);
        }
        this.emit('final', ev);
      } else {
        this.emit('partial', ev);
      }
      return;
    }
    this.emit(m.type, ev);
  }

  // A server event as the user sees it: times on the client's timeline, seq
  // and segments continuing across restarts.
  shift(m) {
    const s = this.session;
    const ev = { ...m };
    if (typeof m.seq === 'number') {
      ev.seq = s.seqBase + m.seq;
      if (ev.seq > this.userSeq) this.userSeq = ev.seq;
    }
    if (typeof m.segment === 'number') ev.segment = s.segBase + m.segment;
    const off = s.baseMs / 1000;
    if (off) {
      const r = (x) => Math.round((x + off) * 1000) / 1000;
      for (const k of ['start', 'end', 'timestamp', 'last_word_end']) if (typeof m[k] === 'number') ev[k] = r(m[k]);
      if (typeof m.committed_ms === 'number') ev.committed_ms = m.committed_ms + s.baseMs;
      if (Array.isArray(m.words)) ev.words = m.words.map((w) => ({ ...w, start: r(w.start), end: r(w.end) }));
    }
    ev.session_id = s.id;
    return ev;
  }

  onReady(m) {
    const s = this.session || { base: 0, baseMs: 0, segBase: 0, seqBase: 0, lastSeq: -1, ended: false, previous: null };
    this.session = s;
    s.id = m.session_id;
    s.token = m.resume_token || null;
    s.window = m.resume_window || 0;
    s.sentControls = [];
    if (m.sample_rate && this.raw) {
      this.rate = m.sample_rate * (m.channels || 1) * this.raw.bytes;
      this.frameBytes = this.raw.bytes * (m.channels || 1);
    }
    this.connected();
    if (s.previous) {
      this.emit('restarted', { type: 'restarted', old_session_id: s.previous, new_session_id: s.id, offset_ms: s.baseMs });
      s.previous = null;
    }
    this.emit('ready', { ...m });
    if (this.readyResolve) {
      this.readyResolve(m);
      this.readyResolve = this.readyReject = null;
    }
    this.pump();
  }

  onResumed(m) {
    const s = this.session;
    const held = s.base + (m.audio_bytes || 0);
    if (held > this.acked) this.acked = held;
    // Resend from what the server holds; what the ring no longer has is
    // replaced by silence in pump() (and was reported as lost).
    this.stats.resentBytes += Math.max(0, this.maxSent - held);
    this.sent = held;
    this.maxSent = Math.max(this.maxSent, held);
    this.stats.resumes++;
    // Controls sent after what the server holds were lost with the old
    // connection (the server reads in order): send them again at their place
    // in the audio. A `close` at exactly that point may or may not have
    // arrived; sending it again is harmless, losing it is not.
    const again = (c) => c.at > held || (c.msg.type === 'close' && !s.ended);
    this.controls = this.controls.concat((s.sentControls || []).filter(again)).sort((a, b) => a.at - b.at);
    s.sentControls = (s.sentControls || []).filter((c) => !again(c));
    this.connected();
    this.emit('resumed', { ...m });
    this.pump();
  }

  connected() {
    this.flushLost();
    this.handshake = false;
    this.attempt = 0;
    const now = Date.now();
    this.lastKeepaliveAt = now;
    if (this.closing) this.setClientState('finalizing');
    else this.setClientState(now - this.lastAudioAt >= this.keepaliveMs && this.lastAudioAt ? 'paused' : 'streaming');
  }

  // ---- sending -----------------------------------------------------------------

  live() {
    return this.ws && !this.handshake && this.ws.readyState === 1;
  }

  control(msg) {
    if (this.done) return;
    this.controls.push({ at: this.ring.end, msg });
    if (this.state === 'idle') this.connect();
    this.pump();
  }

  // Sends the audio the server does not have yet, and the controls queued at
  // their place in it, as far as the socket's buffer allows; reschedules
  // itself for the rest.
  pump() {
    if (!this.live()) return;
    const ws = this.ws;
    const s = this.session;
    while (ws === this.ws && this.live()) {
      const next = this.controls.length ? this.controls[0] : null;
      const limit = next ? Math.min(next.at, this.ring.end) : this.ring.end;
      if (this.sent < limit) {
        if (ws.bufferedAmount > MAX_SOCKET_BUFFERED) break;
        // A server that resumes acks what it holds: keep within the window.
        const room = s.token ? this.acked + this.windowBytes - this.sent : Infinity;
        if (room <= 0) break;
        let chunk;
        const to = Math.min(limit, this.sent + this.chunkBytes, this.sent + room);
        if (this.sent < this.ring.start) {
          // Lost in an overflow (reported then): silence keeps the times.
          const n = Math.min(to, this.ring.start) - this.sent;
          chunk = new Uint8Array(n).fill(this.raw ? this.raw.silence : 0);
        } else {
          chunk = this.ring.read(this.sent, to);
        }
        ws.send(chunk);
        this.sent += chunk.length;
        if (this.sent > this.maxSent) this.maxSent = this.sent;
        this.lastSentAt = Date.now();
        continue;
      }
      if (next && this.sent >= next.at) {
        this.controls.shift();
        ws.send(JSON.stringify(next.msg));
        s.sentControls.push(next);
        continue;
      }
      break;
    }
    if (this.live() && (this.sent < this.ring.end || (this.controls.length && this.sent >= this.controls[0].at))) {
      if (!this.pumpTimer) this.pumpTimer = setTimeout(() => {
        this.pumpTimer = null;
        this.pump();
      }, 20);
    }
  }

  // ---- buffer accounting -------------------------------------------------------

  ms(offset) {
    return this.rate ? Math.round((offset * 1000) / this.rate) : 0;
  }

  bytesAt(ms) {
    const b = Math.floor((ms * this.rate) / 1000);
    return b - (b % this.frameBytes);
  }

  // The ring dropped [from, to) to make room. Audio the server has not
  // acknowledged is lost for a resume (the server may not have it), audio
  // it has acknowledged only for a fallback (reported when one happens).
  dropped(from, to) {
    const lostFrom = Math.max(from, this.acked);
    if (to > lostFrom) this.lost(lostFrom, to);
  }

  // Reports [from, to) as lost. An outage drops a little with every frame
  // submitted: contiguous losses are gathered into one event, emitted within
  // 200 ms, on reconnect and at the end.
  lost(from, to) {
    from = Math.max(from, this.lostTo);
    if (to <= from) return;
    this.lostTo = to;
    this.stats.lostBytes += to - from;
    const p = this.pendingLost;
    if (p && p.to === from) p.to = to;
    else {
      this.flushLost();
      this.pendingLost = { from, to };
    }
    if (!this.lostTimer) this.lostTimer = setTimeout(() => this.flushLost(), 200);
  }

  flushLost() {
    clearTimeout(this.lostTimer);
    this.lostTimer = null;
    const p = this.pendingLost;
    if (!p) return;
    this.pendingLost = null;
    this.emit('audio_lost', { type: 'audio_lost', from_ms: this.ms(p.from), to_ms: this.ms(p.to) });
  }

  // ---- timers --------------------------------------------------------------------

  onTick() {
    if (this.done) return;
    const now = Date.now();
    if (this.ws && now - this.lastRecvAt > this.deadMs) {
      // Half-open: the connection looks open but nothing has come for too
      // long (the server acks audio and answers keepalives).
      this.emit('timeout', { type: 'timeout', silent_ms: now - this.lastRecvAt });
      this.dropSocket();
      this.onSocketClosed(1006, 'no data received', 0);
      return;
    }
    if (!this.live()) return;
    if (!this.closing && this.state === 'streaming' && this.lastAudioAt && now - this.lastAudioAt >= this.keepaliveMs)
      this.setClientState('paused');
    const lastOut = Math.max(this.lastSentAt || 0, this.lastKeepaliveAt);
    if (now - lastOut >= this.keepaliveMs) {
      this.lastKeepaliveAt = now;
      this.ws.send(JSON.stringify({ type: 'keepalive' }));
    }
  }
}

export default HarkClient;
