// Types for hark-client (index.js). See docs/clients.md.

export type ClientState = 'idle' | 'connecting' | 'streaming' | 'paused' | 'reconnecting' | 'finalizing' | 'closed';

/** Native config keys (docs/protocol.md section 1); sent as the session's config. */
export interface NativeConfig {
  encoding?: 'pcm_s16le' | 'pcm_f32le' | 'mulaw' | 'alaw' | 'wav' | 'auto';
  sample_rate?: number;
  channels?: number;
  language?: string;
  engine?: string;
  model?: string;
  interim_results?: boolean;
  words?: boolean;
  endpointing_ms?: number | false;
  utterance_end_ms?: number;
  vad_events?: boolean;
  vad_mode?: 0 | 1 | 2 | 3;
  vocabulary?: string | string[];
  speaker_id?: string;
  max_utterance_ms?: number;
  partial_interval_ms?: number;
  vad?: boolean;
  interrupt_detection?: boolean;
  [key: string]: unknown;
}

/** A WebSocket constructor: globalThis.WebSocket in browsers, `ws` in Node. */
export interface WebSocketLike {
  new (url: string, protocols?: string | string[], options?: unknown): any;
}

export interface HarkClientOptions {
  /** ws://HOST:PORT (then /v1/stream) or a full URL with its path. */
  url: string;
  /** API key: an `Authorization: Token` header (auth 'header') or the subprotocols `token, KEY`. */
  apiKey?: string;
  /** Default: 'header' when a WebSocket implementation other than the global one is passed. */
  auth?: 'header' | 'subprotocol';
  config?: NativeConfig;
  /** Default globalThis.WebSocket. */
  WebSocket?: WebSocketLike;
  /** Ring buffer size in bytes. Default: bufferSeconds of audio for raw encodings, else 4 MiB. */
  bufferBytes?: number;
  /** Ring buffer size in seconds of audio (raw encodings). Default 60. */
  bufferSeconds?: number;
  /** Largest binary message sent (backlogs are split). Default 100 ms of raw audio, else 16 KiB. */
  chunkBytes?: number;
  /** Unacknowledged bytes in flight at most, when the server acks (resume on). Default 5 s of raw audio, else 256 KiB. */
  windowBytes?: number;
  /** Exponential backoff with full jitter: uniform in [0, min(capMs, baseMs * 2^attempt)). Default 250 / 10000. */
  backoff?: { baseMs?: number; capMs?: number };
  /** A keepalive after this long without audio. Default 5000. */
  keepaliveMs?: number;
  /** Nothing received for this long: half-open, reconnect. Default 2 * keepaliveMs + 2000. */
  deadMs?: number;
  /** close() gives up waiting for `closed` after this long. Default 30000. */
  closeTimeoutMs?: number;
  /** Try to resume a dropped session (default true); false: always a new session. */
  resume?: boolean;
  /** Random source in [0, 1) for the jitter (tests). Default Math.random. */
  random?: () => number;
}

export interface Word {
  word: string;
  start: number;
  end: number;
  confidence: number;
}

/** Common to every server event given to the user. */
export interface EventBase {
  type: string;
  /** Continues across restarts: never repeats, never goes back. */
  seq?: number;
  session_id: string;
  speaker_id?: string;
}

export interface TranscriptEvent extends EventBase {
  type: 'transcript';
  /** Continues across restarts. */
  segment: number;
  is_final: boolean;
  speech_final: boolean;
  reason?: 'endpoint' | 'finalize' | 'max_length' | 'close';
  text: string;
  /** Seconds from the start of the client's stream (offset after a restart). */
  start: number;
  end: number;
  confidence: number;
  language: string;
  voice_activity: boolean;
  words?: Word[];
  /** Finals: ms of the client's stream fully accounted for in finals. */
  committed_ms?: number;
}

export interface SpeechStartedEvent extends EventBase { type: 'speech_started'; timestamp: number }
export interface UtteranceEndEvent extends EventBase { type: 'utterance_end'; last_word_end: number }
export interface InterruptEvent extends EventBase { type: 'interrupt'; timestamp: number }
export interface ErrorEvent {
  type: 'error';
  code: string;
  message: string;
  /** true: the client has stopped (a `closed` event follows). */
  fatal?: boolean;
  seq?: number;
  session_id?: string;
}
export interface StateEvent { state: ClientState; from: ClientState }
export interface AudioLostEvent { type: 'audio_lost'; from_ms: number; to_ms: number }
export interface RestartedEvent { type: 'restarted'; old_session_id: string; new_session_id: string; offset_ms: number }
export interface ClosedEvent {
  type: 'closed';
  session_id: string | null;
  /** 'client' (close()), 'server', 'timeout' (no `closed` within closeTimeoutMs), 'error'. */
  reason: string;
  code?: string;
  message?: string;
  audio_seconds?: number;
  segments?: number;
}
export interface ReadyMessage {
  type: 'ready';
  session_id: string;
  resume_token?: string;
  resume_window?: number;
  [key: string]: unknown;
}

export interface HarkClientEvents {
  partial: TranscriptEvent;
  final: TranscriptEvent;
  speech_started: SpeechStartedEvent;
  utterance_end: UtteranceEndEvent;
  interrupt: InterruptEvent;
  state: StateEvent;
  error: ErrorEvent;
  audio_lost: AudioLostEvent;
  restarted: RestartedEvent;
  closed: ClosedEvent;
  ready: ReadyMessage;
  resumed: { type: 'resumed'; session_id: string; audio_bytes: number; last_seq: number };
  reconnecting: { attempt: number; delay_ms: number };
  timeout: { type: 'timeout'; silent_ms: number };
}

export interface ClientStats {
  connects: number;
  resumes: number;
  restarts: number;
  resentBytes: number;
  lostBytes: number;
}

export class HarkClient {
  constructor(options: HarkClientOptions);
  readonly state: ClientState;
  readonly sessionId: string | null;
  readonly stats: ClientStats;
  on<K extends keyof HarkClientEvents>(type: K, fn: (ev: HarkClientEvents[K]) => void): this;
  off<K extends keyof HarkClientEvents>(type: K, fn: (ev: HarkClientEvents[K]) => void): this;
  /** Opens the first connection; resolves with the first `ready`. send() calls it too. */
  connect(): Promise<ReadyMessage>;
  /** Audio in the configured encoding, any size; queued while disconnected. */
  send(audio: ArrayBuffer | ArrayBufferView): void;
  finalize(): void;
  setState(state: 'responding' | 'listening'): void;
  /** Resolves after `closed`. */
  close(): Promise<ClosedEvent>;
}

/** The fixed-size ring of audio the client keeps for resume and fallback. */
export class AudioRing {
  constructor(capacity: number);
  readonly capacity: number;
  start: number;
  end: number;
  push(bytes: Uint8Array): [number, number];
  trim(offset: number): void;
  read(from: number, to: number): Uint8Array;
}

export const STATES: ClientState[];
export default HarkClient;
