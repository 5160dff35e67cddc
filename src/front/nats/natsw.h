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
 *   - Worker threads (host/workers.h) run the sessions; each event goes
 *     into the chan's outbox as a copy (a structured chan, host/chan.h,
 *     with the session's turn at that moment), then they call natsw_wake.
 *     They render nothing.
 *   - natsw's own pump thread, woken by natsw_wake or every 100 ms, takes
 *     the events, renders them into msgpack (seed 004) and publishes them
 *     in order, runs the timers
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
 * running on a worker.
 */
#ifndef HARK_FRONT_NATS_NATSW_H
#define HARK_FRONT_NATS_NATSW_H

#include <stddef.h>

#include "hark/hark.h"
#include "base/metrics.h"
#include "host/chan.h"

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
    /* 1: no core subscription and no presence probe; the input comes from
     * natsw_feed (JetStream, front/nats/jsw.h) */
    int external_input;
};

/* What an external input (jsw.h) learns about one message it fed. */
struct natsw_fed {
    int accepted; /* the session took it (a rejected one got its typed error) */
    int type;     /* enum nmsg_type; -1 when the message did not parse */
    size_t audio_len;
    double bytes_per_sec; /* start: the session's raw audio rate; 0 = container encoding */
};

/* A session continued on this worker after another one owned it (jsw.h):
 * its numbering and clock go on where the published results stopped. */
struct natsw_resume {
    uint64_t sequence;    /* next result's sequence */
    int64_t segments;     /* finals published */
    int64_t offset_bytes; /* session audio (bytes) before the replayed input */
    int responding;       /* turn state to start in */
};

/* Calls from the NATS front end to an external input, all optional. */
struct natsw_hooks {
    void *user;
    /* Pump thread, unlocked: a session's rendered messages (MSG_* flags; a
     * message of length 0 is not published) before they are published
     * (after = 0) and once they were handed to the connection (after = 1). */
    void (*batch)(void *user, const char *id, const struct chan_msg *msgs, int after);
    /* Pump thread: shutdown begins, before the open sessions are finalized. */
    void (*draining)(void *user);
    /* natsw_destroy, while the connection is still open. */
    void (*destroy)(void *user);
    /* Any thread: why the input is not consumed yet (a static string), or
     * NULL when it is. */
    const char *(*not_ready)(void *user);
    /* Pump thread, under natsw's lock (so: lock-free): 0 holds every
     * session's output (not published, the sessions not retired) until it
     * says 1 again or the session is abandoned. JetStream: while a lease may
     * have expired or the connection is down, so that nothing waits in
     * nats.c's reconnect buffer to go out after another worker took over. */
    int (*may_publish)(void *user);
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
/* Sets the hooks (copied) before any input is fed. */
void natsw_set_hooks(struct natsw *nw, const struct natsw_hooks *h);
/* One input message for session id, as if it had arrived on
 * {subject_in}.{id}; resume (start only, may be NULL) continues a session
 * another worker owned. owner_epoch (start only; 0: none) goes into each of
 * the session's results as owner_epoch: it grows with each hand-off, so a
 * client tells a previous owner's late results from the current owner's
 * (docs/nats.md "JetStream"). Any thread; never blocks. */
void natsw_feed(struct natsw *nw, const char *id, const void *data, size_t len,
                uint64_t owner_epoch, const struct natsw_resume *resume, struct natsw_fed *fed);
/* The session stops at once and publishes nothing more: another worker owns
 * it now. Any thread. */
void natsw_abandon(struct natsw *nw, const char *id);
/* The connection (for JetStream contexts on it). */
struct __natsConnection *natsw_conn(struct natsw *nw);
/* 1 while connected to a server. Any thread. */
int natsw_connected(struct natsw *nw);
/* NULL when ready to take input (connected, and the external input, if any,
 * ready), else why not (a static string). Any thread. */
const char *natsw_not_ready(struct natsw *nw);
/* Accepts NULL. After natsw_wait and after the pool is destroyed. */
void natsw_destroy(struct natsw *nw);

#endif
