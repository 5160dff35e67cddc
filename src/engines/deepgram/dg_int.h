/*
 * Internals of the deepgram engine shared by its two modules: deepgram.c
 * (the engine ops: model, streams, the session side) and dg_conn.c (the
 * libwebsockets service thread: connections, what goes up, the provider's
 * messages). Not for other modules.
 *
 * Threads: a stream's fields marked "guarded" are under the model's mu;
 * lws is called on the service thread only (lws_cancel_service excepted).
 */
#ifndef HARK_ENGINES_DEEPGRAM_DG_INT_H
#define HARK_ENGINES_DEEPGRAM_DG_INT_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdint.h>

#include "base/buf.h"
#include "client/client_url.h"
#include "engines/engine.h"
#include "engines/netres.h"

/* Utterances one session may have awaiting their Finalize answer. */
#define MAX_INFLIGHT 64
/* Audio queued for a provider that does not read it: 30 s of 16 kHz s16le.
 * Past it the stream fails ("timeout") instead of growing. */
#define MAX_TX_BYTES (30u * 16000u * 2u)
/* Longest provider message (a Results of a minute of speech is ~40 KB). */
#define MAX_RX_BYTES (1u << 20)
#define CHUNK_BYTES 8192 /* audio per WebSocket message: 256 ms */
#define TICK_US (250 * 1000)

enum st { S_NEW, S_CONNECTING, S_OPEN, S_DEAD };

/* A submitted utterance: Finalize goes after byte `at` of the stream. */
struct tk {
    uint64_t ticket;
    uint64_t at;
    double off_s;    /* the utterance's start on the provider's clock */
    int64_t sent_ns; /* when its Finalize went out; 0 = not yet */
};

struct engine_model {
    struct client_url url;
    char *key;
    char *model; /* default upstream model; "" = the provider's */
    int timeout_ms, keepalive_ms;
    int vad_gate; /* 1: only utterances go up (KeepAlive between); 0: all audio */

    struct lws_context *ctx;
    pthread_t th;
    int th_started;
    lws_sorted_usec_list_t sul_tick;
    lws_retry_bo_t retry;
    uint8_t wbuf[LWS_PRE + CHUNK_BYTES + 64]; /* service thread */

    pthread_mutex_t mu;     /* guards everything below and streams' shared fields */
    pthread_cond_t done_cv; /* a completion was queued (utt_wait) */
    struct engine_stream *streams;
    int stop, dying;
    unsigned streams_total, streams_in_use;
    double audio_seconds, answer_seconds;
    uint64_t bytes_sent, keepalives;
};

struct engine_stream {
    struct engine_model *m;
    struct engine_stream *next; /* m->streams */
    char sid[64];
    char *path; /* with the query */
    void (*notify)(void *);
    void *notify_user;

    /* guarded by m->mu */
    enum st state;
    struct lws *wsi;
    int released;
    int err; /* failed for good: every ticket gets this */
    const char *reason;
    char message[256];
    uint8_t *tx; /* bytes [sent, queued) of the stream, unsent */
    size_t tx_len, tx_cap;
    uint64_t queued, sent;
    uint64_t utt_at;  /* `queued` at the open utterance's start */
    uint64_t last_at; /* `at` of the last ticket */
    struct tk tks[MAX_INFLIGHT];
    unsigned tk_head, tk_n, tk_sent;
    struct buf acc_text;           /* is_final text since the last Finalize answer */
    struct engine_word *acc_words; /* times on the provider's clock */
    size_t acc_n, acc_cap;
    char *interim;
    struct netres_queue done;
    int64_t last_tx_ns;
    int64_t last_rx_ns; /* the provider's last message */
    int peer_close;

    /* service thread only */
    struct buf rx;

    /* session thread only */
    struct netres_done *cur;
    char *partial;
};

/* dg_conn.c */
void dg_conn_stream_free(struct engine_stream *s);
/* Under m->mu: queue an outcome / the stream's error for ticket; tell the session. */
void dg_conn_push_done(struct engine_stream *s, struct netres_done *d);
void dg_conn_push_error(struct engine_stream *s, uint64_t ticket);
/* Under m->mu: the stream cannot go on (see dg_conn.c). */
void dg_conn_fail(struct engine_stream *s, int err, const char *reason, const char *fmt, ...)
    HARK_PRINTF(4, 5);
extern const struct lws_protocols dg_conn_protocols[];
void *dg_conn_service_main(void *model);

#endif
