/*
 * The NATS connection every hark NATS client opens (the worker, natsw.h; the
 * gateway, natsgw.h): one setting for all of them, so a worker and a gateway
 * ride out the same outages the same way.
 *
 *   servers     "nats://a:4222,nats://b:4222" (up to 16)
 *   reconnect   forever, every 250 ms, 8 MiB of publishes buffered meanwhile
 *   dead peer   a ping every 5 s, two unanswered = reconnect
 *   first try   a server that is not up yet is retried in the background
 *
 * Threads: nconn_open runs on the caller's thread; the callbacks run on
 * nats.c's threads (connected also once on the caller's, when the first
 * attempt succeeds). Ownership: *nc is the caller's (natsConnection_Destroy).
 */
#ifndef HARK_FRONT_NATS_NCONN_H
#define HARK_FRONT_NATS_NCONN_H

#include <nats/nats.h>
#include <stddef.h>

struct nconn_cbs {
    natsConnectionHandler connected; /* also after each reconnect unless reconnected is set */
    natsConnectionHandler disconnected;
    natsConnectionHandler reconnected; /* NULL: connected */
    natsConnectionHandler closed;      /* may be NULL */
    natsErrHandler error;
    void *user;
    /* many subscriptions (one per session): nats.c's shared delivery pool
     * instead of a thread per subscription (order per subscription kept) */
    int shared_delivery;
};

/* 0 (connected, or retrying in the background: *nc is set either way), or
 * HARK_E_INVAL (no usable URL; `what` names the setting, e.g. "nats-url"),
 * HARK_E_NOMEM, HARK_E_IO, with the reason in err. */
int nconn_open(natsConnection **nc, const char *url, const char *name, const char *what,
               const struct nconn_cbs *cbs, char *err, size_t n);

#endif
