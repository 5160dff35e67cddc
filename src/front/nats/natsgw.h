/*
 * The NATS session backend (session/backend.h) of `hark serve --backend
 * nats://HOST:PORT`: the gateway runs the WebSocket and HTTP front ends with
 * no local recognition and relays every session to `hark worker`s with seed
 * 004's messages (docs/nats.md, docs/deployment.md "Gateways"):
 *
 *   open        -> start (every session option, "ack": true, "chunk_timeout": 0)
 *   feed        -> chunk (raw bytes, timestamp = the audio's position for raw PCM)
 *   finalize    -> finalize            set_state -> state_change
 *   close       -> end                 (a session abandoned early: end too)
 *   results on {subject_out}.{id} (the session's own subscription) -> the
 *   session's bounded queue -> notify -> poll on the chan's worker thread ->
 *   hark_events, numbered here
 *
 * A worker that never answers is a typed error, not a hang: no `started`
 * within timeout_ms of the start, or no `closed` within timeout_ms of the
 * last message after the end, gives the session a `timeout` error and its
 * CLOSED. A start the worker refused (its error before `started`) gives that
 * error and CLOSED. Results queued past max_queued_bytes (this gateway
 * behind): partials are dropped (a later one supersedes them), anything else
 * ends the session with limit_exceeded.
 *
 * Threads
 *   - the chan's worker thread runs the backend ops (and publishes);
 *   - nats.c's shared delivery thread(s) run each session's subscription
 *     {subject_out}.{id} (its closure is the session), parse results
 *     (front/nats/nres.h) and queue them;
 *   - a timer thread (every 100 ms) runs the timeouts and the keepalives.
 *   One lock (natsgw.mu) guards the timer's session list and the queues;
 *   notify is called under it, so a session is never notified after its
 *   destroy. A session is freed when its subscription's last callback has
 *   returned (nats.c's on-complete), after its destroy.
 *
 * Lifecycle: natsgw_create (connects, retrying in the background) ->
 * sessions -> natsgw_destroy after the worker pool is gone.
 */
#ifndef HARK_FRONT_NATS_NATSGW_H
#define HARK_FRONT_NATS_NATSGW_H

#include <stddef.h>

#include "base/metrics.h"
#include "session/backend.h"

struct natsgw;

struct natsgw_cfg {
    const char *url;         /* one or more server URLs, comma-separated */
    const char *subject_in;  /* the workers' {nats-subject-in} */
    const char *subject_out; /* the workers' {nats-subject-out} */
    const char *name;        /* client name shown by the server (may be NULL) */
    int timeout_ms;          /* a worker's answer to start / after end */
    int keepalive_ms;        /* a session with nothing to send says keepalive this often */
    size_t max_queued_bytes; /* results waiting per session */
    size_t window_bytes;     /* audio in flight to a worker, not yet taken off its queue (0:
                                256 KiB); keep it well under the workers' --session-buffer-bytes */
    struct metrics *metrics; /* may be NULL; outlives the natsgw */
};

int natsgw_create(struct natsgw **out, const struct natsgw_cfg *cfg, char *err, size_t n);
/* The backend to open sessions on (host/chan.h chan_create_on). */
void natsgw_backend(struct natsgw *g, struct backend *out);
/* 1 while connected to a server. Any thread. */
int natsgw_connected(struct natsgw *g);
/* Accepts NULL. Every session must be destroyed (the pool gone) first. */
void natsgw_destroy(struct natsgw *g);

#endif
