/*
 * The worker pool of the session host: threads that run the sessions'
 * chans (host/chan.h, the per-session job queues) off the front ends' I/O
 * threads, for front ends that serve many sessions at once (WebSocket,
 * NATS):
 *
 *   I/O thread                         worker threads
 *   chan_post_audio/finalize/close --> job queue of the chan (bounded bytes)
 *                                      one worker at a time runs a chan's jobs
 *                                      in order: hark_session_feed, ...
 *   chan_take_msgs  <-- outbox <------ events rendered by the front end's
 *        ^                             render_cb (or copied, structured:
 *        |                             rendered by the front end), then wake_cb()
 *        '--- wake_cb (e.g. lws_cancel_service) coalesces wake-ups
 *
 * A chan is never processed on two threads at once, and chans never wait for
 * each other behind a global lock: the pool lock only guards the ready
 * lists (live sessions, bulk sessions, held audio).
 *
 * Thread-safety: every workers_* call is thread-safe unless noted. The pool
 * outlives every chan created on it.
 */
#ifndef HARK_HOST_WORKERS_H
#define HARK_HOST_WORKERS_H

#include <stdatomic.h>
#include <stdint.h>

struct workers;

/* Called from worker threads when a chan has new output or finished a job;
 * must be cheap and thread-safe (e.g. lws_cancel_service). */
typedef void (*workers_wake_cb)(void *user);

struct workers_stats {
    unsigned threads;
    unsigned queued_chans; /* chans waiting for a worker */
    double busy_fraction;  /* recent share of worker time spent processing, 0..1 */
    double oldest_wait_ms; /* age of the oldest queued job right now */
    uint64_t jobs_done;
};

int workers_create(struct workers **out, unsigned threads, workers_wake_cb wake, void *wake_user);
/* Stops the threads after the queued jobs ran. Chans must be released first. */
void workers_destroy(struct workers *w);
void workers_stats(struct workers *w, struct workers_stats *out);
/* Hold a live session's audio up to hold_ms after it arrives at an idle
 * chan before a worker decodes it, so that one wake-up decodes several
 * frames (0: decode each frame as it arrives). Controls (finalize, close,
 * state, errors), sessions ahead of real time and audio past 0.5 s of 16 kHz
 * s16 are never held; a chan with work left after its turn is not held
 * again. Call before chans post. */
void workers_set_hold(struct workers *w, unsigned hold_ms);

/* ---- for host/chan.c only: a chan's place in the pool */

struct workers_item {
    struct workers_item *next; /* guarded by the pool lock */
    int64_t ready_since;       /* on the held list: when its hold ends */
    /* On the held list, not a ready list; written under the pool lock,
     * read without it by the chan to skip that lock when nothing is held. */
    atomic_int held;
    /* Set by the worker running the chan: its audio runs far ahead of the
     * wall clock, so it queues behind live sessions. */
    atomic_int bulk;
};

/* A chan got jobs and has no worker: audio of a live session (audio = 1,
 * not bulk) waits out the hold, if any; anything else goes to a worker now. */
void workers_schedule(struct workers *w, struct workers_item *it, int audio);
/* Puts it on its ready list now (it has jobs left after its turn). */
void workers_ready(struct workers *w, struct workers_item *it);
/* A held chan goes to a worker now (a control job, or enough audio);
 * nothing if a worker took it meanwhile. O(held chans). */
void workers_unhold(struct workers *w, struct workers_item *it);

#endif
