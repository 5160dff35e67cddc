/*
 * The NATS front end (seed 004, docs/nats.md): subscribes to
 * {subject_in}.*, runs one session per session id on the shared worker pool,
 * and publishes results on {subject_out}.{session_id} as msgpack. Only this
 * directory includes <nats/nats.h> and <msgpack.h>.
 *
 * Threads
 *   - nats.c's delivery thread for the one subscription parses each message
 *     (front/nats/nmsg.h) and posts to the session's chan; it never blocks
 *     (chan posts are bounded queue appends). It publishes the typed error
 *     of a rejected message itself, at once: such an error can precede
 *     results of audio received earlier (docs/nats.md, order of errors).
 *   - Worker threads (session/workers.h) run the sessions and render events
 *     into msgpack in the chans' outboxes, then call natsw_wake.
 *   - natsw's own pump thread, woken by natsw_wake or every 100 ms, takes
 *     the rendered messages and publishes them in order, runs the timers
 *     (chunk gap, idle) and retires finished sessions. Only the pump frees a
 *     session, so the delivery thread and the pump share one table lock and
 *     nothing else.
 *   - nats.c's own thread runs the connection callbacks (disconnected,
 *     reconnected, errors); they only log.
 *
 * Lifecycle: natsw_create (connects, subscribes, starts the pump) →
 * natsw_stop (from a signal handler) → natsw_wait (finishes open sessions
 * within shutdown_timeout, publishes their finals, flushes) →
 * workers_destroy(pool) → natsw_destroy. natsw_destroy comes after the pool
 * is gone because a session abandoned at the shutdown deadline may still be
 * rendering on a worker.
 */
#ifndef HARK_FRONT_NATS_NATSW_H
#define HARK_FRONT_NATS_NATSW_H

#include <stddef.h>

#include "hark/hark.h"
#include "base/metrics.h"
#include "session/workers.h"

struct admit;

struct natsw;

struct natsw_cfg {
    const char *url;         /* one or more server URLs, comma-separated */
    const char *subject_in;  /* audio on {subject_in}.{session_id} */
    const char *subject_out; /* results on {subject_out}.{session_id} */
    const char *name;        /* client name shown by the server (may be NULL) */
    int max_sessions;        /* sizes the session table; admission is cfg.admit's */
    size_t max_message_bytes;
    size_t session_buffer_bytes; /* audio queued per session before chunks are refused */
    int max_session_seconds;     /* audio per session, then it is finalized (0 = unlimited) */
    int idle_timeout;            /* s without any message: session finalized (0 = never) */
    int chunk_timeout_ms;        /* gap between chunks that finalizes the utterance (0 = off) */
    size_t buffer_size_bytes;    /* > 0: longest utterance in input bytes (seed's
                                    STT_BUFFER_SIZE_BYTES); 0: defaults' max_utterance_ms */
    int shutdown_timeout;        /* s to finish open sessions after natsw_stop */
    const struct hark_options *defaults; /* session defaults; copied */
    int gap_threshold_ms;      /* chunk timestamps jumping further: audio_gap warning (0 = off) */
    int allow_shared_subjects; /* start even when another worker answers on subject_in */
    struct admit *admit;       /* host/admit.h, shared with the other front ends; outlives nw */
    struct metrics *metrics;   /* shared registry (may be NULL); outlives nw */
};

/* Connects (retrying in the background when no server answers yet: the
 * worker may start before nats-server), subscribes and starts the pump.
 * `pool` must be created with natsw_wake as (part of) its wake callback and
 * outlive natsw_wait. err gets the detail on failure. */
int natsw_create(struct natsw **out, const struct natsw_cfg *cfg, struct hark_engine *eng,
                 struct workers *pool, char *err, size_t n);
/* workers_wake_cb for the pool (user = the natsw). Any thread. */
void natsw_wake(void *user);
/* Async-signal-safe: begin the graceful shutdown. */
void natsw_stop(struct natsw *nw);
/* Blocks until stopped and drained; afterwards natsw holds no chan. */
void natsw_wait(struct natsw *nw);
/* 1 while connected to a server. Any thread. */
int natsw_connected(struct natsw *nw);
/* Accepts NULL. After natsw_wait and after the pool is destroyed. */
void natsw_destroy(struct natsw *nw);

#endif
