/* Internals of the C client shared by its two modules: client.c (the
 * connection, its thread and the public calls) and client_stream.c (server
 * messages into the user's one stream of events, and what the audio ring
 * must keep). Not installed; not for other modules.
 *
 * Threads: the fields under "shared" are guarded by mu; everything else
 * belongs to the client's service thread, which is the only caller of the
 * client_stream_* functions. */
#ifndef HARK_CLIENT_CLIENT_INT_H
#define HARK_CLIENT_CLIENT_INT_H

#include <libwebsockets.h>
#include <pthread.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/json.h"
#include "client/client_msg.h"
#include "client/client_ring.h"
#include "client/client_url.h"
#include "hark/client.h"

#define CTL_MAX 64           /* finalize/state controls queued at once */
#define CHUNK_MAX 16384      /* audio bytes per WebSocket message */
#define TX_MAX 8192          /* longest text message we send */
#define RX_MAX JSON_MAX_LEN  /* longest server message we accept */
#define TICK_US (250 * 1000) /* keepalive, liveness and give-up checks */
#define DEFAULT_RING (4u << 20)
#define FLOW_WINDOW_S 5             /* seconds of audio ahead of the server's ack */
#define FLOW_WINDOW_BYTES (160000u) /* the same for encodings without a byte rate */

enum conn { CONN_NONE, CONN_CONNECTING, CONN_OPEN, CONN_LIVE /* ready or resumed */ };
enum ctl_kind { CTL_FINALIZE, CTL_STATE };

struct ctl {
    uint64_t at; /* audio offset the control follows */
    enum ctl_kind kind;
    enum hark_state state;
};

struct hark_client {
    /* config, immutable after create */
    struct client_url url;
    char *api_key;
    char *ca_file;
    char **opts; /* name, value, ..., NULL */
    enum hark_client_when_full when_full;
    unsigned keepalive_ms, base_ms, cap_ms, connect_attempts, give_up_ms;
    hark_client_event_cb cb;
    void *user;
    lws_retry_bo_t retry;

    struct lws_context *ctx;
    pthread_t thread;

    /* shared with the user's threads, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct client_ring ring;
    uint64_t sent; /* next byte to send */
    struct ctl ctl[CTL_MAX];
    size_t ctl_n;
    uint64_t lost_from, lost_to; /* unsent audio dropped, not yet reported */
    int close_req, stop, done, rc;
    int ctx_gone; /* the service thread has destroyed the context */
    enum hark_client_state state;
    struct hark_client_stats stats;

    /* service thread only */
    struct lws *wsi;
    uintptr_t gen; /* connection attempt number, in the wsi's opaque data */
    enum conn conn;
    int dying; /* the context is being destroyed: callbacks change nothing */
    int first_sent, resuming, close_sent, keepalive_due;
    int peer_close; /* close code the server sent, 0 if none */
    int last_error; /* last error event's code on this connection */
    int want_new;   /* next connection opens a new session */
    char session_id[128], token[128], old_session_id[128];
    int have_session, session_over, ever_ready;
    int64_t last_seq;  /* server seq of the current session, -1 none */
    uint64_t user_seq; /* next seq the user sees */
    uint64_t seq_base; /* added to the current session's seq */
    int64_t seg_base, last_final_seg;
    uint64_t sess_base, sent_hw, acked, committed;
    double byte_rate;      /* raw encodings: bytes per second; 0 otherwise */
    unsigned frame_bytes;  /* raw: bytes of one sample frame */
    unsigned char silence; /* raw: the byte of a silent sample */
    uint64_t window;       /* most audio sent ahead of the server's ack */
    double closed_seconds; /* audio of earlier sessions */
    unsigned attempt, first_failures;
    int64_t down_since_ns, last_rx_ns, last_audio_ns, last_ka_ns;
    uint64_t rng;
    lws_sorted_usec_list_t sul_tick, sul_retry;
    struct buf rx;
    struct client_msg msg;
    unsigned char tx[LWS_PRE + (CHUNK_MAX > TX_MAX ? CHUNK_MAX : TX_MAX)];
};

/* client.c */
void client_wake_locked(struct hark_client *c);

/* client_stream.c: events to the user and the state machine's edges */
void client_stream_emit(struct hark_client *c, struct hark_client_event *ev);
void client_stream_state(struct hark_client *c, enum hark_client_state s);
/* FINALIZING once close() was asked for, else STREAMING. */
enum hark_client_state client_stream_live_state(struct hark_client *c);
/* Silence byte and flow window for an encoding (byte_rate set first). */
void client_stream_format(struct hark_client *c, const char *enc);
void client_stream_lost(struct hark_client *c, uint64_t from, uint64_t to);
/* The end: no more connections; rc 0 after the last CLOSED, else why. */
void client_stream_finish(struct hark_client *c, int rc, const char *fmt, ...) HARK_PRINTF(3, 4);
/* Lets the ring forget what no reconnect can need. */
void client_stream_release(struct hark_client *c);
/* One text frame from the server. */
void client_stream_message(struct hark_client *c, const char *text, size_t len);

#endif
