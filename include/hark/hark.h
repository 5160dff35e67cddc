/*
 * hark — streaming speech-to-text library.
 *
 * Audio bytes go into a session in chunks of any size; events come back as
 * words are recognised: revisable partial transcripts, then final transcripts
 * that never change, plus speech_started / utterance_end / error.
 *
 *   hark_engine_load()      load an engine's model once (expensive, shared)
 *   hark_options_*()        describe one stream (encoding, rate, VAD, ...)
 *   hark_session_create()   bind options + engine + an event callback
 *   hark_session_feed()     push bytes; events are delivered from inside
 *   hark_session_finalize() end the current utterance now, keep the session
 *   hark_session_close()    flush everything, deliver the last finals
 *   hark_session_destroy()
 *
 * Threading
 *   - hark_strerror, hark_err_name, hark_err_code, hark_version, the engine
 *     listing functions and hark_log_set are thread-safe (hark_log_set should
 *     be called once before other calls; changing it while sessions run is
 *     safe but a message may go to either callback).
 *   - A hark_engine is thread-safe: any number of sessions on any threads may
 *     share it. It must outlive every session created on it.
 *   - A hark_session is NOT thread-safe: calls on one session must be
 *     serialised by the caller. Different sessions may run on different
 *     threads at the same time. Events are delivered synchronously on the
 *     thread that made the call (feed, finalize, close), never later.
 *   - A hark_options object is not thread-safe; it is copied by
 *     hark_session_create and may be destroyed right after.
 *
 * Ownership
 *   - Strings passed in are copied. Objects returned through an out
 *     parameter are owned by the caller and released with their _destroy.
 *   - Pointers inside a struct hark_event are borrowed: valid only during
 *     the event callback. Copy what you keep.
 *
 * Errors
 *   Functions return 0 or a negative enum hark_err. Objects keep a detail
 *   message of their last error (hark_session_errmsg), which front ends put
 *   on the wire next to the stable code name.
 */
#ifndef HARK_HARK_H
#define HARK_HARK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HARK_VERSION_MAJOR 0
#define HARK_VERSION_MINOR 1
#define HARK_VERSION_PATCH 0

/* "0.1.0"; static storage. */
const char *hark_version(void);

/* ---------------------------------------------------------------- errors */

/*
 * One table: symbol, stable wire code, human text. Codes are never
 * renumbered; a retired code stays as HARK_E_OBSOLETE_n.
 */
#define HARK_ERR_MAP(XX)                                                                           \
    XX(INVAL, -1, "invalid_argument", "invalid argument")                                          \
    XX(NOMEM, -2, "out_of_memory", "out of memory")                                                \
    XX(UNSUPPORTED, -3, "unsupported", "unsupported feature or value")                             \
    XX(BAD_AUDIO, -4, "bad_audio", "audio could not be decoded")                                   \
    XX(BAD_OPTION, -5, "bad_option", "option unknown or out of range")                             \
    XX(NO_ENGINE, -6, "unknown_engine", "no engine with that name")                                \
    XX(MODEL, -7, "model_error", "engine model missing or invalid")                                \
    XX(ENGINE, -8, "engine_error", "engine failed")                                                \
    XX(STATE, -9, "bad_state", "call not valid in the session's state")                            \
    XX(LIMIT, -10, "limit_exceeded", "a configured limit was exceeded")                            \
    XX(BUSY, -11, "busy", "no capacity right now; retry later")                                    \
    XX(IO, -12, "io_error", "input/output error")                                                  \
    XX(TIMEOUT, -13, "timeout", "timed out")                                                       \
    XX(PROTOCOL, -14, "protocol_error", "message violates the protocol")                           \
    XX(AUTH, -15, "unauthorized", "missing or invalid credentials")                                \
    XX(INTERNAL, -16, "internal_error", "internal error")                                          \
    XX(RESUME_FAILED, -17, "resume_failed", "the session cannot be resumed")                       \
    XX(PROVIDER, -18, "provider_error", "the recognition provider failed or is unreachable")

enum hark_err {
    HARK_OK = 0,
#define HARK_ERR_ENUM_(sym, num, code, text) HARK_E_##sym = (num),
    HARK_ERR_MAP(HARK_ERR_ENUM_)
#undef HARK_ERR_ENUM_
};

/* Human text ("audio could not be decoded"); unknown codes give "unknown error". */
const char *hark_strerror(int err);
/* Symbol name ("HARK_E_BAD_AUDIO"). */
const char *hark_err_name(int err);
/* Stable lower-case wire code ("bad_audio"); "ok" for 0. */
const char *hark_err_code(int err);

/* --------------------------------------------------------------- logging */

enum hark_log_level {
    HARK_LOG_ERROR = 0,
    HARK_LOG_WARN = 1,
    HARK_LOG_INFO = 2,
    HARK_LOG_DEBUG = 3,
};

/*
 * The library never prints. Every message goes to this callback, with the
 * session id ("" when the message is not about a session). `msg` is borrowed.
 * The callback may run on any thread that calls into hark, concurrently.
 */
typedef void (*hark_log_cb)(void *user, enum hark_log_level level, const char *session_id,
                            const char *msg);
/* cb NULL = discard everything. Messages above max_level are not formatted. */
void hark_log_set(hark_log_cb cb, void *user, enum hark_log_level max_level);
const char *hark_log_level_name(enum hark_log_level level);

/* ---------------------------------------------------------------- engines */

/* Engines compiled into this build, by index; NULL past the end. Static storage. */
const char *hark_engine_name(int index);
const char *hark_engine_description(int index);

struct hark_engine;

/*
 * Engine settings are name/value strings, validated by the engine:
 * pocketsphinx knows "model_dir", "hmm", "lm", "dict", "pool_max",
 * "pool_min", "second_pass" (none|bestpath|full). NULL-terminated array of
 * pairs: { "pool_max", "4", NULL }. May be NULL for defaults.
 *
 * Loads and validates the model (on pocketsphinx ~250 ms and ~50 MB per
 * pooled decoder). errbuf, when not NULL, receives a detail message on error.
 */
int hark_engine_load(struct hark_engine **out, const char *name, const char *const *settings,
                     char *errbuf, size_t errbuf_size);
/* Accepts NULL. All sessions on it must be destroyed first. */
void hark_engine_destroy(struct hark_engine *eng);
const char *hark_engine_get_name(const struct hark_engine *eng);
/* The names hark_options.model may take on eng: a comma-separated list,
 * "*" for any name (a provider's engine passes it on as its model), "" for
 * only the default (empty). Static storage. */
const char *hark_engine_models(const struct hark_engine *eng);

struct hark_options;

/* Checks what hark_session_create would refuse on this engine without
 * creating anything; thread-safe. 0, HARK_E_NO_ENGINE (engine names another
 * engine) or HARK_E_UNSUPPORTED (a language or model the engine lacks), with
 * a message naming the option, the value and what the engine accepts. */
int hark_engine_check_options(const struct hark_engine *eng, const struct hark_options *opts,
                              char *errbuf, size_t errbuf_size);

/*
 * Failover for engines that call a provider over the network (openai): when
 * the provider errors, times out, refuses the key or is unreachable, a
 * session goes on with `fallback` (a local engine, e.g. pocketsphinx) from
 * the start of the utterance that failed, and gets a PROVIDER_FAILOVER
 * event. A circuit breaker then sends new sessions straight to the fallback
 * for cooldown_ms (doubling, up to 16 x, while probes keep failing). Sessions
 * may also ask for the fallback by name (option "engine"). Both engines must
 * outlive every session; call before the first session. on_failover (may
 * be NULL) runs on any thread at every failover, for metrics.
 */
int hark_engine_set_fallback(struct hark_engine *eng, struct hark_engine *fallback, int cooldown_ms,
                             void (*on_failover)(void *user, const char *reason), void *user);

/* The circuit breaker's state now (hark_engine_set_fallback):
 * HARK_CIRCUIT_CLOSED (sessions use the provider), HARK_CIRCUIT_OPEN (new
 * sessions go to the fallback; *ms_left, if not NULL, gets the cooldown
 * left), HARK_CIRCUIT_HALF_OPEN (the cooldown is over: the next session
 * probes the provider, or one is probing), or HARK_CIRCUIT_NONE (no
 * fallback set). Thread-safe. */
enum { HARK_CIRCUIT_NONE = -1, HARK_CIRCUIT_CLOSED, HARK_CIRCUIT_OPEN, HARK_CIRCUIT_HALF_OPEN };
int hark_engine_circuit(const struct hark_engine *eng, int64_t *ms_left);

/*
 * The voice activity detector of every session on this engine: "webrtc" (the
 * default: WebRTC VAD plus a spectral-flatness check, built in) or "silero"
 * (Silero VAD through sherpa-onnx, loaded at run time). settings for silero,
 * NULL-terminated name/value pairs: lib (path of libsherpa-onnx-c-api.so),
 * model (path of silero_vad.onnx), threshold (speech probability in percent,
 * 1..99, default 50); "" or absent = the search documented in
 * docs/engines.md. HARK_E_BAD_OPTION (name or setting), HARK_E_ENGINE (the
 * library is missing or another version), HARK_E_MODEL (the model file is
 * missing or not a Silero model). Call before the first session.
 */
int hark_engine_set_vad(struct hark_engine *eng, const char *name, const char *const *settings,
                        char *errbuf, size_t errbuf_size);

/* Usage counters, thread-safe, for metrics. */
struct hark_engine_stats {
    unsigned streams_total;  /* engine streams (decoders) created */
    unsigned streams_in_use; /* bound to a session right now */
    double decode_seconds;   /* CPU-side wall time spent in the engine */
    double audio_seconds;    /* audio seconds given to the engine */
};
void hark_engine_stats(const struct hark_engine *eng, struct hark_engine_stats *out);

/* ---------------------------------------------------------------- options */

struct hark_options;

int hark_options_create(struct hark_options **out);
void hark_options_destroy(struct hark_options *opts);
int hark_options_copy(struct hark_options **out, const struct hark_options *src);

/*
 * Set one option from its wire name and text value, exactly as the native
 * protocol's config message and the CLI spell them:
 *
 *   encoding          pcm_s16le | pcm_f32le | mulaw | alaw | wav   (default pcm_s16le)
 *   sample_rate       8000..48000                                  (default 16000)
 *   channels          1..8, downmixed to mono                      (default 1)
 *   language          BCP-47 tag; the engine must support it       (default en-US)
 *   engine            engine name                                  (default pocketsphinx)
 *   model             engine-specific model name; the engine must
 *                     have it (pocketsphinx: "default")            (default "")
 *   interim_results   true|false                                   (default true)
 *   words             true|false: word list in events              (default true)
 *   endpointing_ms    10..10000 silence that ends a turn, or false (default 500)
 *   utterance_end_ms  0 (off) or 500..10000                        (default 0)
 *   vad_events        true|false: speech_started events            (default true)
 *   vad_mode          0..3 aggressiveness                          (default 2)
 *   vocabulary        comma-separated words or phrases to add      (default none)
 *   speaker_id        free text carried on every event             (default none)
 *   max_utterance_ms  1000..120000 forced final                   (default 30000)
 *   partial_interval_ms 50..5000 minimum spacing of partials       (default 200)
 *   vad               true|false: false = every frame is speech    (default true)
 *   interrupt_detection true|false: speech while responding sends
 *                     an interrupt and switches to listening       (default true)
 *
 * Returns HARK_E_BAD_OPTION with a message in errbuf (naming the option and
 * what is accepted) when the name is unknown or the value invalid.
 */
int hark_options_set(struct hark_options *opts, const char *name, const char *value, char *errbuf,
                     size_t errbuf_size);
/* Current value as text into buf; HARK_E_BAD_OPTION for unknown names. */
int hark_options_get(const struct hark_options *opts, const char *name, char *buf, size_t size);
/* Names of all options by index, NULL past the end; for help texts. */
const char *hark_options_name(int index);
const char *hark_options_help(int index);

/* ----------------------------------------------------------------- events */

enum hark_event_type {
    HARK_EVENT_TRANSCRIPT = 1,        /* partial (is_final 0) or final (is_final 1) */
    HARK_EVENT_SPEECH_STARTED = 2,    /* VAD saw the onset of speech */
    HARK_EVENT_UTTERANCE_END = 3,     /* utterance_end_ms passed without new words */
    HARK_EVENT_INTERRUPT = 4,         /* speech while state is "responding" */
    HARK_EVENT_ERROR = 5,             /* see code / message */
    HARK_EVENT_CLOSED = 6,            /* last event after hark_session_close */
    HARK_EVENT_PROVIDER_FAILOVER = 7, /* the session left its network engine for the fallback */
    HARK_EVENT_AUDIO_GAP = 8,         /* audio of the session was lost on the way (a relay) */
};

/* Why a segment ended; carried on finals. */
enum hark_reason {
    HARK_REASON_NONE = 0,
    HARK_REASON_ENDPOINT = 1,   /* endpointing_ms of silence */
    HARK_REASON_FINALIZE = 2,   /* hark_session_finalize */
    HARK_REASON_MAX_LENGTH = 3, /* max_utterance_ms reached */
    HARK_REASON_CLOSE = 4,      /* hark_session_close */
};
const char *hark_reason_name(enum hark_reason r); /* "endpoint", ... ; "" for NONE */
const char *hark_event_type_name(enum hark_event_type t);

struct hark_word {
    const char *word;
    double start, end; /* seconds of audio from the start of the session */
    float confidence;  /* 0..1 */
};

struct hark_event {
    enum hark_event_type type;
    uint64_t seq; /* +1 per event of the session, from 0 */
    const char *session_id;
    const char *speaker_id; /* "" when none */

    /* TRANSCRIPT */
    int64_t segment;         /* utterance number from 0 */
    int is_final;            /* 1: never revised; exactly one per segment */
    int speech_final;        /* final ended by endpointing */
    enum hark_reason reason; /* finals only */
    const char *text;        /* words joined by single spaces; may be "" */
    double start, end;       /* span of the segment so far, seconds */
    float confidence;        /* 0..1, mean over words; 0 for empty text */
    const char *language;
    const struct hark_word *words; /* NULL when words are off */
    size_t n_words;
    int64_t committed_ms; /* finals: all audio before this is in finals */
    int voice_activity;   /* the VAD heard speech in the segment (so far); with vad
                             off its detector still listens for this */

    /* SPEECH_STARTED: timestamp = start, segment = the segment the speech
     * belongs to (the one open now); UTTERANCE_END: last_word_end = end */
    /* INTERRUPT: start = time of the speech onset; sent once per switch to
     * HARK_STATE_RESPONDING, at the first speech the VAD hears after it */

    /* ERROR */
    int code;            /* enum hark_err */
    const char *message; /* detail text */

    /* CLOSED */
    double audio_seconds; /* total audio received */
    int64_t segments;     /* segments finalised */

    /* PROVIDER_FAILOVER: code/message say what failed; failover_reason is a
     * short word ("unreachable", "timeout", "auth", "http_status",
     * "bad_reply", "closed", "error", "circuit_open"); from/to name the engines; start: the
     * session time (s) from which the fallback recognises (the open
     * utterance's start, replayed). */
    const char *failover_reason;
    const char *from_engine, *to_engine;

    /* AUDIO_GAP (a session relayed over NATS, `hark serve --backend`: a
     * chunk lost between the gateway and the worker): duration seconds of
     * the client's audio are missing at start (session seconds: the words
     * after it are that much earlier than they were said); message says so.
     * The session goes on. */
    double duration;
};

/* Called synchronously from feed/finalize/close/set_state. Must not call back
 * into the same session. */
typedef void (*hark_event_cb)(void *user, const struct hark_event *ev);

/* --------------------------------------------------------------- sessions */

struct hark_session;

enum hark_state {
    HARK_STATE_LISTENING = 0,  /* user's turn */
    HARK_STATE_RESPONDING = 1, /* assistant is talking: speech is an interrupt */
};

/*
 * Create a session on `eng` (which must outlive it). The options are copied;
 * an engine option in opts must name `eng` (or be unset). session_id NULL
 * generates one. errbuf receives the detail on failure.
 */
int hark_session_create(struct hark_session **out, struct hark_engine *eng,
                        const struct hark_options *opts, const char *session_id, hark_event_cb cb,
                        void *user, char *errbuf, size_t errbuf_size);

/*
 * Push audio bytes of any length (1 byte to many seconds, split anywhere,
 * including inside a sample or a WAV header). Events for what could be
 * recognised are delivered before this returns. Returns 0, or an error that
 * was also delivered as an ERROR event (e.g. HARK_E_BAD_AUDIO); after an
 * error in the audio the session stays usable for finalize/close so nothing
 * already accepted is lost.
 */
int hark_session_feed(struct hark_session *s, const void *bytes, size_t len);

/* End the current utterance now: its final (reason "finalize") is delivered
 * before this returns, even if it is empty. The session stays open. */
int hark_session_finalize(struct hark_session *s);

/* Listening/responding, for interrupt detection (seed 004). */
int hark_session_set_state(struct hark_session *s, enum hark_state state);

/*
 * Engines that wait on the network (openai) answer an utterance after the
 * call that ended it returned. With a notifier set (before the first feed),
 * the session calls notify(user) from the engine's thread when results are
 * ready (cheap, thread-safe: e.g. queue a job), and the owner then calls
 * hark_session_poll on the session's thread, which delivers them, in order
 * with the events after them. Without one, the call that ends an utterance
 * waits for its final. Close always waits for every result.
 */
void hark_session_set_notify(struct hark_session *s, void (*notify)(void *user), void *user);
int hark_session_poll(struct hark_session *s);
enum hark_state hark_session_get_state(const struct hark_session *s);

/* Deliver an ERROR event (code < 0, message copied for the callback) in the
 * session's event order, with its next seq and speaker_id: for errors the
 * caller finds in its own input about this session (a bad control message on
 * the wire), so that a client sees one numbered stream of events. A final
 * still awaited from a network engine comes before it (the error is about
 * input after that utterance). Changes nothing else. HARK_E_STATE once closed (CLOSED is the last
 * event). */
int hark_session_report_error(struct hark_session *s, int code, const char *message);

/* Flush everything: the last finals, then a CLOSED event. Further feeds
 * return HARK_E_STATE. */
int hark_session_close(struct hark_session *s);

/* Accepts NULL. Does not deliver events; call close first to get the last words. */
void hark_session_destroy(struct hark_session *s);

const char *hark_session_id(const struct hark_session *s);
/* Detail message of the session's last error; "" when none. Borrowed. */
const char *hark_session_errmsg(const struct hark_session *s);
/* The pipeline as text: "decode(pcm_s16le,1ch)→resample(44100→16000)→vad(webrtc,2)→..." */
const char *hark_session_describe(const struct hark_session *s);
/* Seconds of audio received so far (at the input rate). */
double hark_session_audio_seconds(const struct hark_session *s);
/* Finals still awaited from a network engine (utterances submitted, result
 * not yet delivered): the session is busy for its client even while the
 * client sends nothing. 0 for local engines. */
unsigned hark_session_results_pending(const struct hark_session *s);

#ifdef __cplusplus
}
#endif
#endif
