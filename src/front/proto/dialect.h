/*
 * A wire dialect: the pure parse/render half of a streaming protocol
 * (native, Deepgram, Soniox, ...). No sockets, no libwebsockets, no
 * connection object: a dialect turns
 *
 *   the upgrade request (path, query, headers)  -> its per-connection state
 *                                                 and actions, or a refusal
 *   a client text or binary message              -> actions
 *   a front-end signal (start failed, idle,
 *   shutdown, ...)                               -> actions
 *   a session event (struct hark_event)          -> zero or more wire bytes
 *
 * and the transport's driver (src/front/ws/drive.c for WebSocket) executes
 * the actions against the session host: start a session, feed audio,
 * finalize, reply, close with a code. Adding a dialect is one file here and
 * one row in the driver's routing table (docs/internals/dialects.md).
 *
 * Ownership: a dialect allocates its connection state in open() and frees it
 * in destroy(). Its render state is a separate, flat hark_malloc'd block
 * handed over with DA_START: from then on it belongs to the session (freed
 * with hark_free when the session is freed) and nobody writes it.
 * Strings and audio in a dialect_out live until dialect_out_reset.
 *
 * Threads: open, text, binary, signal, started and destroy run on the
 * transport's I/O thread, one call at a time per connection. render and
 * refuse are pure functions of their arguments (render: of the event and the
 * immutable render state) and may run on any thread, concurrently.
 */
#ifndef HARK_FRONT_PROTO_DIALECT_H
#define HARK_FRONT_PROTO_DIALECT_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "hark/hark.h"
#include "host/chan.h" /* MSG_* flags of render */

/* What a dialect may read about the server (immutable, shared). */
struct dialect_ctx {
    const struct hark_options *defaults; /* session defaults of the server config */
    const char *engine;                  /* the engine's name */
    const char *const *engines;          /* all engines' names, NULL-terminated (NULL = none) */
    int any_model;     /* the engine takes any model name (a provider's: --engine deepgram) */
    int resume_window; /* s a dropped session is kept (0 = off) */
};

/* The upgrade request. */
struct dialect_req {
    const char *path;
    const char *const *args; /* query "key=value" strings, %xx and '+' decoded */
    size_t n_args;
    const char *request_id; /* the connection's uuid (also in logs); "" before the upgrade */
    /* A request header ("authorization:" form, lowercase), copied into buf;
     * NULL when absent. */
    const char *(*header)(const struct dialect_req *rq, const char *name, char *buf, size_t n);
    void *user; /* the transport's, for header() */
};

enum dialect_act_type {
    DA_START,     /* opts, render: admit and start the session */
    DA_AUDIO,     /* data/len: audio for the session (points into the input, or
                     into the dialect's state when it decoded it: base64) */
    DA_FINALIZE,  /* flush the current utterance */
    DA_STATE,     /* code = enum hark_state */
    DA_KEEPALIVE, /* a sign of life (answered with an ack where resume is on) */
    DA_SEND,      /* str: a text message for the client, sent now */
    DA_ERROR,     /* code (enum hark_err), str: an error event in order with the
                     session's (through render); without a session, or with
                     now = 1, rendered and sent now (before a DA_CLOSE now) */
    DA_CLOSE,     /* code = close code, str = reason: the session's last results,
                     then close; with now = 1 without waiting for them */
    DA_RESUME,    /* str = session id, str2 = token, last_seq, audio_bytes */
    DA_AUTH,      /* str = API key sent in-band: checked like the request's */
};

struct dialect_act {
    enum dialect_act_type type;
    int code;
    int now;
    const uint8_t *data; /* DA_AUDIO */
    size_t len;
    size_t str, str2;          /* offsets into dialect_out.text (NUL-terminated) */
    struct hark_options *opts; /* DA_START: owned until the driver takes it */
    void *render;              /* DA_START: render state, likewise */
    int64_t last_seq;          /* DA_RESUME */
    uint64_t audio_bytes;      /* DA_RESUME */
};

#define DIALECT_MAX_ACTS 8

/* Actions of one call, executed in order. The driver stops at the first
 * that fails (start, resume, auth, or a full session buffer) and tells the
 * dialect with signal(); the rest are dropped. */
struct dialect_out {
    struct dialect_act act[DIALECT_MAX_ACTS];
    size_t n;
    int oom; /* an action or string did not fit: the driver closes (1011) */
    struct buf text;
};

void dialect_out_init(struct dialect_out *o);
/* Frees what the driver did not take (options, render states) and empties. */
void dialect_out_reset(struct dialect_out *o);
void dialect_out_deinit(struct dialect_out *o);
const char *dialect_str(const struct dialect_out *o, size_t off);

void da_start(struct dialect_out *o, struct hark_options *opts, void *render);
void da_audio(struct dialect_out *o, const uint8_t *data, size_t len);
void da_simple(struct dialect_out *o, enum dialect_act_type type, int code);
void da_send(struct dialect_out *o, const char *msg, size_t len);
void da_error(struct dialect_out *o, int code, const char *fmt, ...) HARK_PRINTF(3, 4);
void da_error_now(struct dialect_out *o, int code, const char *fmt, ...) HARK_PRINTF(3, 4);
void da_close(struct dialect_out *o, int code, int now, const char *reason);
void da_resume(struct dialect_out *o, const char *id, const char *token, int64_t last_seq,
               uint64_t audio_bytes);
void da_auth(struct dialect_out *o, const char *key);

/* Why the driver calls signal(). */
enum dialect_sig {
    DS_REFUSED,       /* err, msg: DA_START/DA_RESUME/DA_AUTH failed (HARK_E_BUSY,
                         HARK_E_LIMIT, HARK_E_AUTH, HARK_E_RESUME_FAILED, ...) */
    DS_OVERFLOW,      /* the session's buffer is full: the client ignored the
                         back-pressure */
    DS_FIRST_TIMEOUT, /* no (first) message within first_message_timeout */
    DS_IDLE,          /* nothing received within idle_timeout */
    DS_LENGTH,        /* the session reached max_session_seconds; msg says so */
    DS_FATAL,         /* render flagged an event MSG_FATAL: the session cannot go on */
    DS_SHUTDOWN,      /* the server drains: finish the session */
};

/* The session a DA_START or DA_RESUME began. */
struct dialect_session {
    const char *id;
    const char *resume_token;        /* NULL when resume is off */
    const struct hark_options *opts; /* DA_START's; NULL after a resume */
    int resumed;
    int64_t last_seq;     /* resumed: what the client saw */
    uint64_t audio_bytes; /* resumed: audio the server holds */
};

/* Extra response headers of a refused upgrade. */
struct dialect_headers {
    const char *name[2];
    char value[2][300];
    int n;
};

struct dialect_ops {
    const char *name;
    /* The session resumes after a dropped connection (native only): acks,
     * replay history, detach on a drop. */
    int resumable;
    /* The API key comes in a message (DA_AUTH): an upgrade without any
     * credential is let through, and no session starts before the key
     * passed. A wrong credential in the request is still refused. */
    int key_in_message;
    /* A response header naming the connection's request id on the 101
     * (e.g. "dg-request-id:"), or NULL. */
    const char *id_header;
    /* The upgrade request. 0: *state set (may be NULL) and out holds the
     * first actions; else an error (HARK_E_BAD_OPTION, HARK_E_UNSUPPORTED,
     * ...) with why in err: refused before the upgrade. Called once before
     * the upgrade to validate (then destroyed) and again after it. */
    int (*open)(const struct dialect_ctx *cx, const struct dialect_req *rq, void **state,
                struct dialect_out *out, char *err, size_t n);
    int (*text)(void *state, const char *msg, size_t len, struct dialect_out *out);
    int (*binary)(void *state, const uint8_t *data, size_t len, struct dialect_out *out);
    void (*signal)(void *state, enum dialect_sig sig, int err, const char *msg,
                   struct dialect_out *out);
    /* Optional: a DA_START or DA_RESUME succeeded. */
    void (*started)(void *state, const struct dialect_session *s, struct dialect_out *out);
    /* Any thread: one event into wire bytes appended to out (nothing = no
     * message); flags |= MSG_FATAL (host/chan.h) to end the session,
     * MSG_BINARY for a binary message, MSG_MULTI for several NUL-ended text
     * messages. */
    void (*render)(const void *rstate, const struct hark_event *ev, struct buf *out,
                   unsigned *flags);
    /* Optional, any thread: a refused upgrade's HTTP body in the dialect's
     * error shape; hdr gets up to 2 extra "name:", value pairs. NULL: the
     * server's {"error":{"code","message"}}. */
    void (*refuse)(unsigned status, int err, const char *msg, struct buf *body,
                   struct dialect_headers *hdr);
    void (*destroy)(void *state);
};

/* Header value for an HTTP response: printable ASCII, other bytes as %XX. */
void dialect_header_value(char *out, size_t size, const char *s);

/* hark_options_set of a value the client sent as `param` (a query
 * parameter or message field): on error, err names param, not hark's
 * option (the client knows what it sent), and the option's error code is
 * returned. */
int dialect_set_option(struct hark_options *o, const char *name, const char *value,
                       const char *param, char *err, size_t n);
/* "true"/"false" (any case) or "1"/"0" into *out; -1 for anything else. */
int dialect_parse_bool(const char *v, int *out);

extern const struct dialect_ops dialect_native;
extern const struct dialect_ops dialect_deepgram;
extern const struct dialect_ops dialect_relay;           /* seed 002, relay.c */
extern const struct dialect_ops dialect_assemblyai;      /* aai.c */
extern const struct dialect_ops dialect_openai_realtime; /* oairt.c */
extern const struct dialect_ops dialect_soniox;          /* soniox.c */

#endif
