/*
 * The WebSocket front end's state (struct wsfe), for the files that make
 * up the front end's core: server.c owns it (create, loop, connections),
 * wsess.c (session glue) and outq.c (output queues) use it. The other
 * files of the directory go through wsfe.h's functions.
 *
 * Threads: the service thread only, but for stop_requested (set by a
 * signal handler).
 */
#ifndef HARK_FRONT_WS_WSFE_STATE_H
#define HARK_FRONT_WS_WSFE_STATE_H

#include <libwebsockets.h>
#include <signal.h>

#include "front/ws/wsfe.h"
#include "host/peers.h"
#include "host/stats.h"

struct wsfe {
    struct wsfe_cfg cfg;
    struct hark_options *defaults;
    struct hark_engine *eng;
    struct auth *auth;
    struct workers *workers;
    struct table *table; /* sessions by id and resume token, detached ones too */
    int own_workers;     /* else shared, created and destroyed by the caller */
    struct metrics *metrics;
    int own_metrics;
    struct admit *admit;
    int own_admit;
    struct admit_slot *admitted; /* wsfe_admit's slot, until a session takes it */
    struct dialect_ctx dcx;      /* what dialects read: defaults, engine, resume window */
    const char *engines[8];      /* dcx.engines: the registry's names, NULL-terminated */
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    char iface[64]; /* the address lws binds (it keeps the pointer) */
    lws_sorted_usec_list_t tick;
    lws_retry_bo_t retry; /* ping policy; lws keeps the pointer */
    struct wsconn *conns;
    struct batch *batches; /* batch.c: POST transcriptions in progress */
    int n_sessions;
    volatile sig_atomic_t stop_requested;
    struct limits_cfg limits; /* host/limits.h: the session rules */
    struct limits_drain drain;
    int exit_loop;
    unsigned char *tx;
    size_t tx_cap;
    struct buf scratch; /* events rendered on the service thread */
    struct peers peers; /* host/peers.h: max_connections_per_ip */

    struct stats stats; /* host/stats.h: events, errors, latencies, audio */
    struct metric *m_conns;
    struct metric *m_decode, *m_streams, *m_circuit;
    struct wstake *take; /* wstake.c: hand-overs between gateways (cfg.takeover), or NULL */
};

#endif
