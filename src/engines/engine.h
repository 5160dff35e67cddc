/*
 * Engine interface. An engine is a const ops table registered by name in
 * registry.c. It has two kinds of objects:
 *
 *   model   loaded once per hark_engine (engine_model_load), read-only after
 *           load, shared by every session; its ops must be thread-safe.
 *   stream  the mutable decoding state of ONE utterance at a time, bound to a
 *           session while speech is active (stream_acquire) and handed back
 *           after the utterance (stream_release), so memory grows with active
 *           speakers, not with open connections. A stream is used by one
 *           thread at a time (the session's).
 *
 * Engines see 16 kHz mono float samples in [-1, 1] only. Times in results are
 * seconds from the stream_start of the current utterance; the session maps
 * them to session time.
 *
 * Engines never call exit() on bad input: model_load validates files first
 * (PocketSphinx's sphinxbase calls exit() on corrupt models).
 *
 * Engines that wait on the network (ENGINE_ASYNC, e.g. openai) do not end an
 * utterance with utt_end: utt_submit hands the utterance to the engine's own
 * I/O thread and returns at once, so no worker thread waits on a socket.
 * Their stream is per SESSION (acquired at the first utterance, released at
 * the session's end), and may have several submitted utterances in flight.
 * When one completes, the engine's I/O thread calls cfg->notify (which must
 * be cheap and thread-safe: the session posts itself a job); the session's
 * thread then takes completions with utt_poll. stream_release cancels what is
 * in flight; after it returns, notify is never called for the stream.
 * utt_partial of an ENGINE_ASYNC engine is asked only while no earlier
 * utterance of the session awaits its result (a partial then would overtake
 * that final); "" when it has nothing yet.
 */
#ifndef HARK_ENGINES_ENGINE_H
#define HARK_ENGINES_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "hark/hark.h"

#define ENGINE_ABI 1
#define ENGINE_RATE 16000

struct engine_model;
struct engine_stream;

struct engine_word {
    char *word; /* owned by the result */
    double start, end;
    float confidence;
};

/* A hypothesis. Filled by the engine with storage it owns until the next
 * call on the same stream (or release). */
struct engine_result {
    const char *text; /* words joined by single spaces, no fillers */
    const struct engine_word *words;
    size_t n_words;
    float confidence; /* 0..1 */
};

struct engine_stream_cfg {
    const char *language;          /* "en-US"; engine may reject with HARK_E_UNSUPPORTED */
    const char *model;             /* engine-specific variant name; "" = default */
    const char *const *vocabulary; /* NULL-terminated words/phrases to add, or NULL */
    int want_words;                /* word times/confidences needed in finals */
    int want_partials;             /* the session asked for interim results */
    const char *session_id;        /* for log lines */
    /* ENGINE_ASYNC only: called from the engine's thread when a submitted
     * utterance completed (NULL: the caller waits with utt_wait instead). */
    void (*notify)(void *user);
    void *notify_user;
};

/* A submitted utterance's outcome (ENGINE_ASYNC), from utt_poll. */
struct engine_done {
    uint64_t ticket;             /* as given to utt_submit */
    int err;                     /* 0, or HARK_E_* after the engine's own retries */
    const char *reason;          /* with err: short wire word ("unreachable", "timeout", "auth",
                                    "http_status", "bad_reply"), static */
    char message[256];           /* with err: detail for logs and the client */
    struct engine_result result; /* with !err; storage valid until the next call on the stream */
};

enum {
    ENGINE_ASYNC = 1, /* results of finals come later: utt_submit/utt_poll, not utt_end */
};

struct engine_ops {
    unsigned abi; /* ENGINE_ABI: first, so the struct can grow */
    const char *name;
    const char *description;
    const char *languages; /* comma-separated BCP-47 tags */
    /* Comma-separated model names a session may ask for (option "model");
     * an empty model always means the engine's default. Checked once, when
     * the session is created (hark_engine_check_options), so a name the
     * engine lacks is refused at configure time, not at the first word.
     * "*" (also for languages): any name, passed on to a provider. */
    const char *models;

    /* settings: NULL-terminated name/value pairs (see hark_engine_load). */
    int (*model_load)(struct engine_model **out, const char *const *settings, char *errbuf,
                      size_t errbuf_size);
    void (*model_free)(struct engine_model *m);

    /*
     * Bind a stream for one utterance of a session. wait_ms: how long to wait
     * for a pooled stream when all are busy (0 = don't wait; -1 = forever).
     * HARK_E_BUSY when none became free in time.
     */
    int (*stream_acquire)(struct engine_model *m, const struct engine_stream_cfg *cfg, int wait_ms,
                          struct engine_stream **out, char *errbuf, size_t errbuf_size);
    void (*stream_release)(struct engine_stream *s);

    int (*utt_start)(struct engine_stream *s);
    int (*utt_feed)(struct engine_stream *s, const float *samples, size_t n);
    /* Current hypothesis of the utterance (words optional, may be empty). */
    int (*utt_partial)(struct engine_stream *s, struct engine_result *out);
    /* End the utterance and return its final hypothesis with words. */
    int (*utt_end)(struct engine_stream *s, struct engine_result *out);

    void (*stats)(struct engine_model *m, struct hark_engine_stats *out);

    unsigned flags; /* ENGINE_ASYNC */
    /* ENGINE_ASYNC: end the current utterance and recognise it in the
     * background; its engine_done carries `ticket`. The stream is ready for
     * the next utt_start at once. */
    int (*utt_submit)(struct engine_stream *s, uint64_t ticket);
    /* Takes one completed utterance: 1 and *out filled, or 0 when none. */
    int (*utt_poll)(struct engine_stream *s, struct engine_done *out);
    /* Blocks until a completion is ready or timeout_ms passed (-1: no limit). */
    void (*utt_wait)(struct engine_stream *s, int timeout_ms);

    /* Optional, ENGINE_ASYNC: a streaming provider that is to hear the audio
     * between utterances too (the session's whole stream, not only what the
     * VAD passes). wants_gaps says whether this model does (its settings
     * decide); gap_feed then gets every sample outside utterances, in stream
     * order with utt_feed's, also before the first utt_start. */
    int (*wants_gaps)(const struct engine_model *m);
    int (*gap_feed)(struct engine_stream *s, const float *samples, size_t n);
};

/* Compile-time list, NULL-terminated (registry.c). */
const struct engine_ops *engine_find(const char *name);
const struct engine_ops *engine_at(int index);

/* A circuit breaker per network engine (registry.c): after a failover the
 * provider is "open" for cooldown_ms (new sessions start on the fallback), then
 * one session probes it ("half open"); its first success closes the breaker,
 * its failure opens it again for twice as long (at most 16 x cooldown_ms). */
struct engine_breaker;

/* hark_engine internals shared with the session module. */
struct hark_engine {
    const struct engine_ops *ops;
    struct engine_model *model;
    struct hark_engine *fallback; /* hark_engine_set_fallback, or NULL */
    struct engine_breaker *breaker;
    void (*on_failover)(void *user, const char *reason); /* metrics; any thread */
    void *on_failover_user;
    /* hark_engine_set_vad: the Silero model every session's VAD stage uses
     * instead of WebRTC (owned; engines/sherpa/sh_vad.h), or NULL. */
    struct sh_vad_model *silero;
};

/* Breaker verdict for a new session: 1 = use the provider (closed, or this
 * session is the half-open probe: *probe set), 0 = go to the fallback. */
int engine_breaker_admit(struct hark_engine *eng, int *probe);
/* ok: 1 the provider answered, 0 it failed, -1 no verdict (a probe ended early). */
void engine_breaker_result(struct hark_engine *eng, int ok, int probe);

#endif
