/*
 * The WebSocket/HTTP front end (libwebsockets). Only this directory includes
 * <libwebsockets.h>. It parses wire formats into session calls and renders
 * session events back; it holds no recognition logic.
 *
 * Threads: every function here runs on the lws service thread, except
 * wsfe_wake (any thread). Streaming sessions' events are rendered on the
 * service thread too (wsess.c); batch sessions render on the workers (pure
 * functions of the event and the session's immutable render state).
 *
 * A wire dialect (native, deepgram, ...) is a pure module in src/front/proto
 * (dialect.h); drive.c routes request paths to dialects and runs their
 * actions against the connection and the session host.
 */
#ifndef HARK_FRONT_WS_WSFE_H
#define HARK_FRONT_WS_WSFE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/metrics.h"
#include "front/proto/dialect.h"
#include "host/limits.h"
#include "host/table.h"
#include "hark/hark.h"
#include "host/chan.h"

struct admit;
struct admit_slot;

struct lws;
struct wsfe;
struct wsconn;

struct wsfe_cfg {
    const char *host;
    int port;
    int max_sessions;
    size_t max_frame_bytes;
    int max_session_seconds;
    int idle_timeout;
    size_t session_buffer_bytes;
    size_t max_body_bytes; /* batch endpoints: larger request bodies get 413 */
    int max_lag_ms;
    int max_busy_percent;
    int shutdown_timeout;
    unsigned workers;
    /* Shared worker pool (e.g. with the NATS front end), created with a wake
     * callback that calls wsfe_wake; it must outlive wsfe_destroy. NULL: the
     * front end creates its own pool of `workers` threads. */
    struct workers *pool;
    const struct hark_options *defaults; /* session defaults from the server config */
    const char *api_keys;                /* comma-separated; NULL/"" with no keys file = auth off */
    const char *api_keys_file;           /* one key per line */
    int max_sessions_per_key;            /* 0 = no per-key limit */
    /* Shared with the other front ends (both outlive wsfe_destroy); NULL:
     * the front end makes its own from the fields above. */
    struct metrics *metrics;
    struct admit *admit;
    /* Only /healthz, /readyz and /metrics (hark worker --port): no
     * WebSocket, batch or demo routes. */
    int health_only;
    /* Optional extra readiness (e.g. the NATS connection): NULL when ready,
     * else why not (a line for /readyz's 503). Service thread. */
    const char *(*not_ready)(void *user);
    void *ready_user;
    const char *tls_cert, *tls_key; /* PEM files; NULL/"" = plain http/ws */
    /* Origins (comma list, "*" = any) browsers may connect from besides the
     * server's own; requests without Origin are not browsers and pass. */
    const char *allowed_origins;
    /* Per-client limits (docs/configuration.md "Limits"). */
    size_t max_output_bytes;     /* queued outgoing bytes per connection (0 = unlimited) */
    int first_message_timeout;   /* s from upgrade to config (native) / first message (0 = off) */
    int max_connections_per_ip;  /* WebSocket connections + batch uploads per peer (0 = off) */
    int min_body_rate;           /* batch bodies: least average bytes/s (0 = off) */
    int resume_window;           /* s a dropped native session is kept; 0 = off */
    size_t resume_buffer_bytes;  /* events kept per detached session, bytes... */
    size_t resume_buffer_events; /* ...and events */
    int ping_interval;           /* s between WebSocket pings of a quiet peer */
    /* Where sessions run (session/backend.h): NULL = here, on the engine
     * given to wsfe_create; else e.g. hark workers over NATS (`hark serve
     * --backend`, front/nats/natsgw.h), and the engine is NULL. Outlives
     * wsfe_destroy. */
    const struct backend *backend;
    const char *engine_name; /* with a backend: the engine name dialects report */
    /* With a backend whose sessions other processes can hold (`hark serve
     * --backend`: front/nats/natsgw.h): a resume of a session held detached
     * by another gateway takes it over (wstake.c). NULL: none. Outlives
     * wsfe_destroy. */
    const struct wsfe_takeover *takeover;
};

struct gwtake_req;
struct gwtake_reply;
struct gwtake_state;
/* The backend's half of a hand-over (front/nats/gwhand.h: gwhand_take,
 * gwhand_cancel, gwhand_freeze, gwhand_thaw, gwhand_answer). */
struct wsfe_takeover {
    void *ctx;
    int (*take)(void *ctx, const char *id, const struct gwtake_req *q, char *err, size_t n);
    void (*take_cancel)(void *ctx, const char *id);
    int (*freeze)(void *backend_session, struct gwtake_state *st);
    void (*thaw)(void *backend_session);
    void (*answer)(void *ctx, const char *reply, const struct gwtake_state *st,
                   const struct hark_event *const *events, size_t n_events, const char *why);
    void (*reply_free)(struct gwtake_reply *r); /* the reply and its struct */
};
/* The backend's callbacks (any thread): queued for the service thread.
 * wsfe_take_request: another gateway asks for session id (answered on
 * reply if it is held here detached); wsfe_taken: the outcome of a take
 * this front end asked for (r owned from now on; NULL with why). */
void wsfe_take_request(struct wsfe *fe, const char *id, const struct gwtake_req *q,
                       const char *reply);
void wsfe_taken(struct wsfe *fe, const char *id, struct gwtake_reply *r, const char *why);

enum wsconn_state { WC_OPEN, WC_STREAMING, WC_CLOSING, WC_GONE };

struct wsconn {
    struct lws *wsi;
    struct wsfe *fe;
    const struct dialect_ops *d;
    enum wsconn_state st;
    struct chan *chan;
    struct tsess *ts; /* the session's entry in the host table (owns chan) */
    void *dstate;     /* the dialect's connection state (its render state is the session's) */

    struct chan_msg *out_head, *out_tail; /* ready to write, oldest first */
    size_t out_bytes;                     /* their cost, for max_output_bytes */
    int out_overflow;                     /* closing for max_output_bytes: drop output */
    int paused;
    struct limits_sess lim;  /* host/limits.h: the session rules' timers (upgrade = open) */
    int got_message;         /* a whole message arrived */
    char peer[48];           /* counted against max_connections_per_ip ("" = not counted) */
    struct admit_slot *slot; /* host/admit.h: counted while the session is open */
    int64_t session_started;
    size_t msg_bytes; /* size of the message being received */
    struct buf text;  /* text message being assembled */
    int close_code;   /* sent after the last message (0 = 1000) */
    char close_reason[124];
    char path[128];
    int key_index; /* API key the connection authenticated with, -1 = none */
    /* Past its key's or address's limit, let in only because a detached
     * session of the same key/address holds the slot: it may resume that
     * session and start none. */
    int provisional;
    /* The client asked to finish (native `close`): a drop before the last
     * event is written detaches the session, still finishing. */
    int client_close;
    char
        request_id[37]; /* the connection's uuid; sent on the 101 when the dialect names a header */
    int peer_close;     /* close code the peer sent (0 = none: the connection dropped) */
    uint64_t acked;     /* audio bytes of the last ack sent */
    int64_t last_ack;
    /* A resume waiting for another gateway's hand-over (wstake.c): the
     * session id, "" when none. */
    char taking[64];
    char take_token[33];
    int64_t take_last_seq;
    struct wsconn *prev, *next;
};

/* --- for the dialect driver (drive.c) --- */
struct wsfe *wsconn_fe(struct wsconn *c);
/* Queue a message produced on the I/O thread (copied). MSG_LAST closes the
 * connection after it with close_code/close_reason. */
void wsconn_send(struct wsconn *c, const char *data, size_t len, unsigned flags);
/* Close with code after the session's last results (its CLOSED event). */
void wsconn_close_after(struct wsconn *c, int code, const char *reason);
/* Close with code after the messages queued so far, without the session's
 * further results. */
void wsconn_close_now(struct wsconn *c, int code, const char *reason);
/* Queue audio of a streaming connection; pauses reading when the backlog
 * passes half the session buffer. */
int wsconn_post_audio(struct wsconn *c, const uint8_t *data, size_t len);
/* Per-peer connection count (max_connections_per_ip): takes one slot for
 * the request's peer address, written to peer (size >= 48; "" when not
 * counted); HARK_E_LIMIT with why when the peer has all of them. */
int wsfe_peer_acquire(struct wsfe *fe, struct lws *wsi, char *peer, char *why, size_t n);
void wsfe_peer_release(struct wsfe *fe, char *peer);
/* The request's peer has detached sessions waiting for a resume (each still
 * holds its slot): a connection past the limit may come in to resume one,
 * and nothing else (wsconn.provisional). */
int wsfe_peer_waiting(struct wsfe *fe, struct lws *wsi);
/* Native resume (docs/protocol.md, Resume). wsconn_ack: send an ack of the
 * audio held, when some is unacked and 250 ms passed, or always (force).
 * wsconn_resume: take over the session (from its detached state or a
 * half-open connection, closed 4409), 0 or HARK_E_RESUME_FAILED with why; then the
 * dialect sends its `resumed` and calls wsconn_replay for the events after
 * last_seq. wsconn_token: the session's resume token, NULL when resume is
 * off. */
void wsconn_ack(struct wsconn *c, int force);
int wsconn_resume(struct wsconn *c, const char *id, const char *token, int64_t last_seq,
                  uint64_t client_bytes, char *err, size_t n);
void wsconn_replay(struct wsconn *c, int64_t last_seq);
/* A resume of a session not held here (HARK_E_RESUME_FAILED from
 * wsconn_resume and no such id here): with a takeover, asks the other
 * gateways (0: the connection waits, c->taking; the outcome comes to
 * drive_taken); else HARK_E_RESUME_FAILED. */
int wsconn_take(struct wsconn *c, const char *id, const char *token, int64_t last_seq,
                uint64_t client_bytes, char *err, size_t n);
/* The session handed over (r): the connection's session from now on, its
 * events after last_seq held for the replay. 0 or an error with why. */
int wsconn_adopt(struct wsconn *c, const struct gwtake_reply *r, chan_render_cb render,
                 void *render_user, void (*free_user)(void *), char *err, size_t n);
/* A take's outcome for hark_resumes_total{result}. */
void wsconn_count_resume(struct wsconn *c, int ok);
/* The options a session started with (kept with a takeover), or NULL. */
const struct hark_options *wsess_options(struct tsess *s);
const char *wsconn_token(struct wsconn *c);
uint64_t wsconn_audio_bytes(struct wsconn *c);
int wsfe_resume_window(struct wsfe *fe);
/* Ready to take sessions (not shutting down). */
int wsfe_is_ready(struct wsfe *fe);
/* Admission (host/admit.h, shared by every front end): 0 with a slot held
 * for the session about to start, or HARK_E_BUSY/HARK_E_LIMIT with a
 * message. wsconn_start takes the slot; a batch request takes it with
 * wsfe_admit_take and releases it itself. A slot nobody took is returned at
 * the next admission or tick. */
int wsfe_admit(struct wsfe *fe, char *msg, size_t n);
struct admit_slot *wsfe_admit_take(struct wsfe *fe);
/* Admission for the session a connection is about to start: keeps a slot
 * reserved before the upgrade, else wsfe_admit. */
int wsconn_admit(struct wsconn *c, char *msg, size_t n);
/* Create the session for a connection (after admission). The session owns
 * render_user from then on (free_user(render_user) when it is freed); on
 * failure the caller keeps it. The session takes over the connection's
 * per-key and per-address slots: they stay taken while it is detached,
 * until it ends (docs/protocol.md §7). A provisional connection gets
 * HARK_E_LIMIT. */
int wsconn_start(struct wsconn *c, const struct hark_options *opts, chan_render_cb render,
                 void *render_user, void (*free_user)(void *), char *err, size_t n);
/* HARK_E_LIMIT with the message a provisional connection gets when it
 * tries to start a session. */
int wsconn_provisional_err(struct wsconn *c, char *err, size_t n);
const struct hark_options *wsfe_defaults(struct wsfe *fe);
/* NULL with a session backend (no local recognition). */
struct hark_engine *wsfe_engine(struct wsfe *fe);
/* A new session on the front end's backend (local: its engine). */
int wsfe_chan_create(struct wsfe *fe, struct chan **out, const struct hark_options *opts,
                     const char *session_id, chan_render_cb render, void *render_user, char *err,
                     size_t n);
struct metrics *wsfe_metrics(struct wsfe *fe);
const struct dialect_ctx *wsfe_dialect_ctx(struct wsfe *fe);
/* Count an event type/error for /metrics (any thread). */
void wsfe_count_event(struct wsfe *fe, const struct hark_event *ev);

/* server.c: the host's verdict (host/limits.h) on a connection's session,
 * as the dialect's signal; from here on the session takes no input. */
void wsconn_verdict(struct wsconn *c, enum limits_verdict v, int code, const char *msg);

/* wsess.c: the session glue (the rest of it is declared above) */
/* Queue the session's new events on the connection, rendered in its
 * dialect; each is kept in the session's replay history. */
void wsconn_drain(struct wsconn *c);
/* Back-pressure on input: after any message (audio or control) that left
 * the session's queued jobs past half its buffer, stop reading. */
void wsconn_rx_limit(struct wsconn *c);
/* The connection is going: its session detaches for a resume (dropped
 * without a close) or ends. */
void wsconn_session_gone(struct wsconn *c);
/* The host table's ended_cb (user = the wsfe). */
void wsess_ended_cb(void *user, struct tsess *s);

/* outq.c: a connection's queued output, within max_output_bytes */
/* Append messages (a list, owned from now on). */
void outq_append(struct wsconn *c, struct chan_msg *m);
/* Keep the queue within max_output_bytes (see outq.c). */
void outq_limit(struct wsconn *c);
/* Free every queued message. */
void outq_clear(struct wsconn *c);
/* Write the next message (WRITEABLE); -1 to close the connection. */
int outq_write(struct wsconn *c);

/* --- server lifecycle (cli) --- */
int wsfe_create(struct wsfe **out, const struct wsfe_cfg *cfg, struct hark_engine *eng, char *err,
                size_t n);
int wsfe_port(struct wsfe *fe);
/* Runs the loop until wsfe_stop; then drains sessions (graceful shutdown). */
int wsfe_run(struct wsfe *fe);
/* Async-signal-safe: request a graceful shutdown. */
void wsfe_stop(struct wsfe *fe);
/* A shared pool's workers have output for this front end. Any thread. */
void wsfe_wake(struct wsfe *fe);
void wsfe_destroy(struct wsfe *fe);

/* drive.c: routes and the dialect driver */
/* The dialect serving a WebSocket path, or NULL. */
const struct dialect_ops *drive_route(const char *path);
/* Before the upgrade (CONFIRM_UPGRADE): the dialect's open() on the request,
 * and for a session that starts at the upgrade its options and admission.
 * 1 = refused (the HTTP response is sent). */
int drive_check(struct wsfe *fe, struct lws *wsi, const struct dialect_ops *d, const char *path);
/* A refused upgrade in the dialect's error shape (or the server's). */
void drive_refuse(struct wsfe *fe, struct lws *wsi, const struct dialect_ops *d, unsigned status,
                  int err, const char *msg);
/* ESTABLISHED, a whole message, a front-end signal, connection gone. */
int drive_open(struct wsconn *c);
int drive_text(struct wsconn *c, const char *msg, size_t len);
int drive_binary(struct wsconn *c, const uint8_t *data, size_t len);
void drive_signal(struct wsconn *c, enum dialect_sig sig, int err, const char *msg);
void drive_destroy(struct wsconn *c);
/* A take (wsconn_take) ended: r the hand-over, or NULL with why. */
void drive_taken(struct wsconn *c, const struct gwtake_reply *r, const char *why);
/* wstake.c: the hand-over's queues; wstake_service runs them (service
 * thread: at every wake-up and tick). */
struct wstake;
int wstake_create(struct wstake **out);
void wstake_destroy(struct wsfe *fe, struct wstake *t);
void wstake_service(struct wsfe *fe);

/* http.c */
int http_handle(struct wsfe *fe, struct lws *wsi, const char *path);
/* A complete response; extra: NULL-terminated "name:", "value" pairs. */
int http_respond(struct lws *wsi, unsigned status, const char *mime, const void *body, size_t len,
                 const char *const *extra);
/* The request's query arguments ("key=value", decoded by lws), in order, as
 * one NULL-terminated allocation (hark_free); NULL when out of memory. */
char **http_query_args(struct lws *wsi, size_t *n);
/* {"error":{"code":...,"message":...}} */
int http_error(struct lws *wsi, unsigned status, const char *code, const char *message);
struct auth *wsfe_auth(struct wsfe *fe);

/* listen.c: the listening address and TLS (before the context exists) */
struct lws_context_creation_info;
/* An IP literal ("[::1]" and "localhost" too) into addr; *is_ipv6 set.
 * -1 when host is not an address. Pure. */
int listen_parse_host(const char *host, char *addr, size_t size, int *is_ipv6);
/* Both or neither file; each readable PEM, the key the certificate's. */
int listen_check_tls(const char *cert_path, const char *key_path, char *err, size_t n);
/* Sets iface (stored in iface[size]), family options and TLS of info. */
int listen_configure(struct lws_context_creation_info *info, const struct wsfe_cfg *cfg,
                     char *iface, size_t size, char *err, size_t n);

/* door.c: plain-text connections' request heads, checked (head.h) before
 * lws' HTTP server gets them: the callback of the raw-socket protocol
 * "door" (service thread). */
int door_callback(struct lws *wsi, int reason, void *user, void *in, size_t len);
/* The door is in use (plain text: no TLS), so a query with many arguments
 * may come in the x-hark-query header. */
int door_active(const struct wsfe_cfg *cfg);

/* origin.c: browser origins (--allowed-origins) and CORS */
/* 1 when the request may proceed: no Origin header, the server's own
 * origin, or a listed one. origin (size n) gets the header ("" = none). */
int origin_allowed(struct wsfe *fe, struct lws *wsi, char *origin, size_t n);
/* Adds Access-Control-Allow-Origin (and Vary, Expose-Headers) to a
 * response being built when the request came from an allowed browser
 * origin; nothing otherwise. 0 or -1 (no room). */
int origin_add_cors(struct lws *wsi, unsigned char **p, unsigned char *end);
/* 0 when origin_allowed, else HARK_E_AUTH with why (for a 403). */
int origin_check(struct wsfe *fe, struct lws *wsi, char *why, size_t n);
/* Answers an OPTIONS request (CORS preflight: 204, or 403 for a refused
 * origin). Returns what the HTTP callback must return. */
int origin_preflight(struct wsfe *fe, struct lws *wsi);

/* auth.c: API keys (service thread only) */
struct auth;
int auth_create(struct auth **out, const char *keys_csv, const char *keys_file, int max_per_key,
                char *err, size_t n);
void auth_destroy(struct auth *a);
int auth_enabled(const struct auth *a);
/* 0 (key index in *key_index, -1 when auth is off) or HARK_E_AUTH with why. */
int auth_check(struct auth *a, struct lws *wsi, int *key_index, char *why, size_t n);
/* Count a session against its key's limit; HARK_E_LIMIT when full. */
int auth_acquire(struct auth *a, int key_index, char *why, size_t n);
void auth_release(struct auth *a, int key_index);
/* A session counted against the key detached (+1) or stopped waiting for a
 * resume (-1); auth_has_waiting: the key has such sessions (a connection
 * past the key's limit may still come in to resume one of them). */
void auth_waiting(struct auth *a, int key_index, int delta);
int auth_has_waiting(const struct auth *a, int key_index);
/* A key sent in a dialect's message: 0 (index in *key_index, -1 when auth is
 * off) or HARK_E_AUTH with why. */
int auth_check_key(struct auth *a, const char *key, int *key_index, char *why, size_t n);
/* The request carries a credential (header or subprotocol), valid or not. */
int auth_has_credential(struct lws *wsi);

/* batch.c: pre-recorded transcription over plain HTTP POST (POST /v1/listen,
 * POST /v1/audio/transcriptions), the transport of the batch APIs in
 * src/front/proto/ (batchapi.h), routed by path. The body streams into a
 * session on the worker pool as it arrives; the response is written when
 * the session is done. Service thread only. */
struct batch;
/* protocols[0]'s per-connection storage: the batch request in progress. */
struct http_pss {
    struct batch *batch;
};
/* A POST path batch.c serves. */
int batch_is_path(const char *path);
/* LWS_CALLBACK_HTTP of a POST to a batch path (after auth): validates the
 * request and starts the session, or responds with an error. Returns what
 * the HTTP callback must return. */
int batch_begin(struct wsfe *fe, struct lws *wsi, const char *path);
/* Refuses a request to a batch path in that endpoint's error shape (e.g. 401
 * from http.c's key check). Returns what the HTTP callback must return. */
int batch_refuse(struct lws *wsi, const char *path, unsigned status, int err, const char *msg);
/* HTTP_BODY, HTTP_BODY_COMPLETION, HTTP_WRITEABLE, CLOSED_HTTP of protocols[0];
 * *handled = 0 when the connection has no batch request (use the default). */
int batch_callback(struct lws *wsi, int reason, struct http_pss *pss, void *in, size_t len,
                   int *handled);
/* Wake-up drain: collect results, resume paused uploads, start responses. */
void batch_drain(struct wsfe *fe);
/* Once a second: uploads slower than min_body_rate get 408. */
void batch_tick(struct wsfe *fe);
/* server.c: the front end's list of batch requests, and their session count
 * (they count as sessions for admission and graceful shutdown). */
struct batch **wsfe_batches(struct wsfe *fe);
void wsfe_batch_sessions(struct wsfe *fe, int delta);
const struct wsfe_cfg *wsfe_config(struct wsfe *fe);
struct workers *wsfe_workers(struct wsfe *fe);

/* web assets embedded at build time (web_assets.c, generated) */
struct web_asset {
    const char *path;
    const char *mime;
    const unsigned char *data;
    size_t len;
};
extern const struct web_asset web_assets[];

#endif
