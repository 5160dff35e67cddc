/*
 * The hand-over of a detached session between `hark serve --backend nats://`
 * gateways (issue 14 §5, docs/deployment.md "Gateways"): the messages, not
 * yet the exchange. A client whose connection to gateway A dropped
 * reconnects to gateway B with `resume`; B asks every gateway on
 * {subject_out}.take.{id} (a NATS request) and only the one holding the
 * session detached answers, with what B needs to continue it where A left
 * off:
 *
 *   request {token, last_seq, audio_bytes}   (the client's resume, as sent)
 *   reply   {ok: true, next_seq, audio_bytes, sent_bytes, last_msg,
 *            results_end, t0, finishing, worker_next, worker_epoch,
 *            options: {name: text}, events: [...]}
 *        or {ok: false, error: "..."}        (wrong token, attached, ...)
 *
 * events are the session's held events after the client's last_seq
 * (host/outbox.h), each a map of the struct hark_event fields that are not
 * zero, with its seq: a neutral encoding of the struct, not of any wire
 * dialect, so B renders them in the resuming connection's dialect like its
 * own. Error codes travel as their stable wire names ("bad_audio").
 *
 * Untrusted input: anyone allowed to publish on the NATS account can send
 * either message, so both are parsed like any client message: the
 * validator first (depth, object count, every length against the bytes
 * present), bounded strings, counts and numbers, a typed error for the rest
 * (fuzzed: tests/fuzz/fuzz_gwtake.c). Pure functions: thread-safe.
 */
#ifndef HARK_FRONT_NATS_GWTAKE_H
#define HARK_FRONT_NATS_GWTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "hark/hark.h"

#define GWTAKE_EVENTS_MAX 1000000 /* --resume-buffer-events' maximum */
#define GWTAKE_OPTIONS_MAX 64     /* session options (hark_options_name) */
/* Objects of one reply: a held event is at most ~25 of its own plus 5 per
 * word; what msgpack-c allocates for them is bounded by this, never by the
 * counts a message claims. */
#define GWTAKE_OBJECTS_MAX (1u << 20)

struct gwtake_req {
    char token[33];
    int64_t last_seq;     /* -1: the client saw nothing */
    uint64_t audio_bytes; /* audio the client sent */
};

/* What a session is, apart from its events. */
struct gwtake_state {
    uint64_t next_seq;    /* the seq its next event gets */
    uint64_t audio_bytes; /* client audio the session holds (the `resumed` message's) */
    uint64_t sent_bytes;  /* audio published to the worker */
    uint64_t last_msg;    /* the newest worker message whose events are in the reply: a
                             64-bit hash of its bytes (0: none) */
    double results_end;   /* the furthest audio a result covered */
    /* the stale-result rule's state (gwsess.c deliver): the worker's result
     * numbers below worker_next were delivered, the largest owner_epoch
     * delivered (0 for both: none; a reply without them) */
    uint64_t worker_next, worker_epoch;
    double t0;     /* wall clock of the session's start (its chunks' timestamps) */
    int finishing; /* the client's `close` was taken */
    /* name, value pairs (the session's options as text, hark_options_get),
     * NULL-terminated */
    const char *const *options;
};

struct gwtake_reply {
    int ok;
    char error[256]; /* !ok: why */
    struct gwtake_state st;
    struct hark_event *events; /* seq ascending; session_id, speaker_id NULL */
    size_t n_events;
    /* owned storage */
    const char **opt;
    struct hark_word *words;
    char *arena;
};

void gwtake_render_request(struct buf *out, const struct gwtake_req *r);
/* 0, or HARK_E_PROTOCOL / HARK_E_NOMEM with the reason in err. */
int gwtake_parse_request(struct gwtake_req *out, const void *data, size_t len, char *err, size_t n);

/* The session's state and its events (seq ascending). */
void gwtake_render_reply(struct buf *out, const struct gwtake_state *st,
                         const struct hark_event *const *events, size_t n_events);
void gwtake_render_refusal(struct buf *out, const char *why);
/* 0 (a hand-over, or a refusal: out->ok), or HARK_E_PROTOCOL / HARK_E_NOMEM
 * with the reason in err. Release with gwtake_reply_free, also on error. */
int gwtake_parse_reply(struct gwtake_reply *out, const void *data, size_t len, char *err, size_t n);
void gwtake_reply_free(struct gwtake_reply *r);

#endif
