/*
 * A batch API: the pure half of a pre-recorded transcription endpoint
 * (Deepgram's POST /v1/listen, OpenAI's POST /v1/audio/transcriptions). No
 * sockets, no libwebsockets: an API turns
 *
 *   the request (path, query, Content-Type)  -> session options, or a refusal
 *   the form fields (multipart APIs)         -> session options at the file
 *                                               part, checks at the body's end
 *   the session's error                      -> the refusal in its terms
 *   the collected transcript                 -> the response body and type
 *   a refusal                                -> the API's error body
 *
 * and the transport (src/front/ws/batch.c) streams the body into a session,
 * collects its results (transcript.h), admits, limits, times out and writes
 * the answer. Adding a batch API is one file here and one row in the
 * transport's routing table (docs/internals/dialects.md).
 *
 * Ownership: the transport allocates state_size zeroed bytes per request,
 * passes them to every call and frees them (an API keeps no pointers to
 * memory of its own in it). Strings in a batchapi_req live for the call.
 * Threads: one request's calls are made one at a time on the transport's
 * thread; error() and the tables are pure and may be used from any thread.
 */
#ifndef HARK_FRONT_PROTO_BATCHAPI_H
#define HARK_FRONT_PROTO_BATCHAPI_H

#include <stddef.h>

#include "base/buf.h"
#include "front/proto/transcript.h"
#include "hark/hark.h"

/* What an API may read about the server (immutable, shared). */
struct batchapi_ctx {
    const struct hark_options *defaults; /* session defaults of the server config */
    const struct hark_engine *engine;    /* for option checks; NULL = none (fuzzing) */
    const char *engine_name;
    const char *const *engines; /* all engines' names, NULL-terminated (NULL = none) */
    int any_model;              /* the engine takes any model name (dialect_ctx) */
};

/* The request. */
struct batchapi_req {
    const char *path;
    const char *const *args; /* query "key=value" strings, %xx and '+' decoded */
    size_t n_args;
    const char *content_type; /* "" when absent */
    int chunked;              /* Transfer-Encoding: chunked (no Content-Length) */
    /* Multipart APIs: form field i of the API's fields[] as sent so far, NULL
     * when not sent (or empty). */
    const char *(*field)(const struct batchapi_req *rq, int i);
    void *user; /* the transport's, for field() */
};

/* A refusal: HTTP status, hark error code, the parameter it is about ("" =
 * none) and the message. */
struct batchapi_refusal {
    unsigned status;
    int err;
    char param[40];
    char msg[600];
};

/* What a response carries besides the transcript. */
struct batchapi_meta {
    const char *request_id; /* the request's uuid */
    const char *created;    /* ISO-8601 time the request came in */
    const char *sha256;     /* hex SHA-256 of the body ("" unless wants_sha256) */
    const char *engine_name;
};

struct batchapi {
    const char *name;          /* metrics label (endpoint="...") */
    size_t state_size;         /* per-request state, zeroed */
    const char *const *fields; /* multipart form fields; NULL = the body is the audio */
    int n_fields;
    const char *file_field; /* the form part that carries the audio */
    const char *body_param; /* param of errors about the body ("" = none) */
    const char *id_header;  /* response header with the request id ("x:" form) or NULL */
    int wants_sha256;       /* meta.sha256 is the body's */

    /* Before the body, after the transport's framing checks. A raw-audio
     * API sets the session's options in o (a copy of the defaults); a
     * multipart API only checks the request (o unused). Nonzero = refused
     * (r filled). */
    int (*open)(void *st, const struct batchapi_ctx *cx, const struct batchapi_req *rq,
                struct hark_options *o, struct batchapi_refusal *r);
    /* Multipart: the nth (1-based) part named file_field starts; sets the
     * session's options in o from the fields sent before it. Nonzero =
     * refused; on 0, r->param may name what a failing session start is
     * about. */
    int (*file)(void *st, const struct batchapi_ctx *cx, const struct batchapi_req *rq, int nth,
                struct hark_options *o, struct batchapi_refusal *r);
    /* Multipart: the whole form is in (file_parts file parts seen). */
    int (*check)(void *st, const struct batchapi_ctx *cx, const struct batchapi_req *rq,
                 int file_parts, struct batchapi_refusal *r);
    /* The session reported error code with msg: the refusal, in the API's
     * terms. */
    void (*session_error)(const void *st, int code, const char *msg, struct batchapi_refusal *r);
    /* The response of a transcript: body appended to o, *mime set. */
    void (*respond)(const void *st, const struct batchapi_meta *m, const struct transcript *t,
                    struct buf *o, const char **mime);
    /* The error body (JSON) of a refusal. */
    void (*error)(const struct batchapi_refusal *r, const char *request_id, struct buf *o);
};

extern const struct batchapi batchapi_deepgram; /* dgbatch.c */
extern const struct batchapi batchapi_openai;   /* oabatch.c */

/* The HTTP status hark answers an error code with (400, 401, 503, 500). */
unsigned batchapi_status(int err);
/* Fills r (unless it holds a refusal already) and returns err. */
int batchapi_refuse(struct batchapi_refusal *r, unsigned status, int err, const char *param,
                    const char *fmt, ...) HARK_PRINTF(5, 6);
/* Options every batch session gets: finals with words only. */
void batchapi_session_options(struct hark_options *o);
/* The decoder's message without its hint in the native protocol's terms. */
void batchapi_audio_message(const char *msg, char *out, size_t n);

#endif
