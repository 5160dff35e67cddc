/*
 * The gateway's side of seed 004's protocol (docs/nats.md): renders the
 * input messages a client sends (start, chunk, state_change, end,
 * keepalive) and parses what a `hark worker` publishes on
 * {nats-subject-out}.{session_id} (results, interrupts, errors, warnings,
 * started, closed) into a plain struct. `hark serve --backend nats://`
 * (front/nats/natsgw.h) is that client.
 *
 * Untrusted input: the result subject is open to anyone who may publish on
 * the NATS account, so a result is parsed like any client message:
 * nmsg_validate (depth, object count, every length against the bytes
 * present) before msgpack-c unpacks it, bounded strings and word lists,
 * and a typed error for anything else (fuzzed: tests/fuzz/fuzz_nres.c).
 *
 * Pure functions, no global state: thread-safe.
 */
#ifndef HARK_FRONT_NATS_NRES_H
#define HARK_FRONT_NATS_NRES_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "hark/hark.h"

#define NRES_TEXT_MAX 65536 /* transcript / message bytes */
#define NRES_WORDS_MAX 4096 /* words of one result */

enum nres_kind {
    NRES_RESULT = 0, /* no "type": a transcription result */
    NRES_INTERRUPT,
    NRES_ERROR,
    NRES_WARNING,
    NRES_STARTED,        /* hark's acknowledgement of a start with "ack": true */
    NRES_ALIVE,          /* hark's answer to a keepalive */
    NRES_SPEECH_STARTED, /* with "events": true */
    NRES_UTTERANCE_END,
    NRES_CLOSED,
    NRES_PROVIDER_FAILOVER, /* with "events": true */
    NRES_OTHER,             /* a type this version does not know: ignored */
};

/* One parsed message; release with nres_free. Strings are NUL-terminated
 * and owned (text and word strings live in one arena). */
struct nres {
    enum nres_kind kind;
    char session_id[64];
    /* RESULT */
    int is_final, speech_final, has_voice_activity;
    int64_t sequence, segment;
    double start, end;
    float confidence;
    enum hark_reason reason;
    int64_t committed_ms; /* -1: not given */
    int64_t owner_epoch;  /* a JetStream worker's ownership epoch (docs/nats.md); 0: not given */
    struct hark_word *words;
    size_t n_words;
    int has_words;
    /* RESULT: transcript; ERROR/WARNING: message */
    char *text;
    /* ERROR/WARNING/PROVIDER_FAILOVER */
    int code; /* HARK_E_*; HARK_E_INTERNAL for a code this version does not know */
    char code_name[32];
    /* PROVIDER_FAILOVER: "reason" as given ("unreachable", ...; finals: the
     * segment's reason, also in reason), the engines; start in start */
    char reason_name[16];
    char from[32], to[32];
    /* WARNING "audio_gap": seconds missing, and where in the session's audio */
    double gap_duration, audio_offset;
    /* INTERRUPT, SPEECH_STARTED */
    double audio_time;
    /* UTTERANCE_END */
    double last_word_end;
    /* ALIVE */
    int64_t received_bytes, queued_bytes;
    /* CLOSED */
    double audio_seconds;
    int64_t segments;
    char *arena;
};

/* 0, or HARK_E_PROTOCOL / HARK_E_NOMEM with the reason in err. On error
 * *out holds nothing that needs freeing (nres_free is still safe). */
int nres_parse(struct nres *out, const void *data, size_t len, char *err, size_t errlen);
void nres_free(struct nres *r);

/* HARK_E_* of a stable wire code ("bad_option"); 0 when unknown. */
int nres_err_from_code(const char *code);

/* ---- the input messages (each appends one msgpack map; check out->oom) ---- */

/* {type:"start", session_id, sample_rate, channels, state, speaker_id?, ...}
 * plus every key of kv (name, value pairs as text, NULL-terminated): the
 * session options and hark's start extensions. Integers and booleans in
 * text form are sent as msgpack integers and booleans. */
void nres_render_start(struct buf *out, const char *session_id, int sample_rate, int channels,
                       enum hark_state state, const char *speaker_id, const char *const *kv);
/* {type:"chunk", audio: bin, timestamp?} (timestamp < 0: none) */
void nres_render_chunk(struct buf *out, const void *audio, size_t len, double timestamp);
/* {type:"state_change", state} */
void nres_render_state(struct buf *out, enum hark_state state);
/* {type:"end"}, {type:"finalize"}, {type:"keepalive"} */
void nres_render_simple(struct buf *out, const char *type);

#endif
