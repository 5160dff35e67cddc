/*
 * The batch transport's request (src/front/ws/batch.c: routing, admission,
 * results, the response; upload.c: the request body into the session). Not
 * a public interface: the two halves of one module share struct batch.
 * Service thread only.
 */
#ifndef HARK_FRONT_WS_BATCH_H
#define HARK_FRONT_WS_BATCH_H

#include <libwebsockets.h>
#include <openssl/evp.h>
#include <stdint.h>

#include "base/buf.h"
#include "front/proto/batchapi.h"
#include "front/proto/transcript.h"
#include "front/ws/chunked.h"
#include "front/ws/wsfe.h"

#define POST_BYTES 32768  /* body bytes coalesced into one worker job */
#define SPA_STORAGE 65536 /* multipart: form fields + one chunk of the file part */
#define BODY_TIMEOUT 10   /* s without body bytes (while reading) before the upload is dropped */

enum phase { P_RECEIVING, P_PROCESSING, P_RESPONDING };

struct batch {
    struct batch *prev, *next;
    struct wsfe *fe;
    struct lws *wsi;
    struct http_pss *pss;
    const struct batchapi *api;
    void *st;               /* the API's request state */
    struct batchapi_req rq; /* path and field() stay valid; args only in batch_begin */
    struct batchapi_ctx cx;
    char path[32];
    enum phase phase;
    struct chan *chan;
    int key_index;           /* API key counted against, -1 = none */
    int counted;             /* counted in the front end's sessions */
    struct admit_slot *slot; /* host/admit.h: counted against max-sessions */
    int paused;
    int64_t paused_since, paused_ns; /* reading paused by us: not the client's slowness */
    int close_after;                 /* answered before the body ended: close after it */
    char peer[48];                   /* counted against max_connections_per_ip */
    int64_t gone_checked;            /* last client_gone() while paused */
    int close_wanted;                /* body complete: close the session once pend is posted */
    int close_posted;
    struct buf pend;                   /* body bytes not yet handed to the chan */
    uint64_t content_length, received; /* received: body bytes (decoded, when chunked) */
    int chunked;                       /* Transfer-Encoding: chunked (no Content-Length) */
    struct chunked ck;
    size_t max_body;
    int64_t t0;
    EVP_MD_CTX *sha; /* metadata.sha256 of the body, for an API that wants it */
    char request_id[37];
    char created[32];

    /* multipart */
    struct lws_spa *spa;
    int file_parts;
    int form_failed;

    struct transcript tr; /* the session's results */

    /* the first error: answered instead of results (err.status 0 = none) */
    struct batchapi_refusal err;

    /* response */
    unsigned status;
    const char *mime;
    struct buf resp;
    size_t resp_off;
    int hdr_sent;
};

/* batch.c */
/* Remembers the first error of a request; it is answered once the body has
 * been read (and audio after it is discarded). */
void batch_fail(struct batch *b, unsigned status, int err, const char *param, const char *fmt, ...)
    HARK_PRINTF(5, 6);
/* The answer is known (results or an error): written from HTTP_WRITEABLE. */
void batch_respond(struct batch *b);
int batch_start_session(struct batch *b, const struct hark_options *o, char *err, size_t n);
void batch_release_chan(struct batch *b);
/* Collects results, posts pending audio, answers when the session is done. */
void batch_drain_one(struct batch *b);

/* upload.c */
void upload_pause(struct batch *b);
void upload_resume(struct batch *b);
/* Hands the coalesced body bytes to the session (or keeps them, paused). */
void upload_flush(struct batch *b);
/* lws_spa's file callback (opt_cb) and the form's fields for the API. */
int upload_form_file(void *data, const char *name, const char *filename, char *buf, int len,
                     enum lws_spa_fileupload_states st);
const char *upload_form_field(const struct batchapi_req *rq, int i);
/* LWS_CALLBACK_HTTP_BODY and HTTP_BODY_COMPLETION. */
int upload_body(struct batch *b, const void *in, size_t len);
int upload_body_complete(struct batch *b);
/* The client hung up while reading was paused. */
int upload_client_gone(struct batch *b);

#endif
