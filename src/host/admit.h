/*
 * Admission: one policy for every front end (WebSocket streaming, batch
 * HTTP, NATS). The first piece of the session host layer: it holds the
 * table of open sessions of all front ends, counts them against
 * --max-sessions, measures the real-time demand of the talking ones, refuses
 * new sessions at capacity or while shutting down, and owns the session
 * metrics (hark_sessions_*, hark_worker_*, hark_compute_demand_workers).
 * Transport-neutral: it never sees libwebsockets or nats.c.
 *
 * A front end asks admit_acquire for a slot before it creates a session,
 * binds the session's chan to the slot once it exists (or says it started:
 * admit_started; only then is it counted as opened), reports audio
 * arrivals (admit_audio: the session is talking), admit_closing when the
 * session stops taking input, and admit_release when it is gone.
 *
 * Threads: every function may run on any thread (one lock inside). A slot
 * is used by one front end at a time; admit_release ends it. Lock order:
 * a front end's own lock may be held while calling in; admit never calls
 * out except chan_usage and workers_stats (their own leaf locks) and metric
 * updates (lock-free).
 */
#ifndef HARK_HOST_ADMIT_H
#define HARK_HOST_ADMIT_H

#include <stddef.h>
#include <stdint.h>

#include "base/metrics.h"
#include "host/chan.h"

struct admit;
struct admit_slot;

struct admit_cfg {
    int max_sessions;        /* open sessions of all front ends at once */
    unsigned workers;        /* threads of the pool */
    int max_lag_ms;          /* refuse while queued work waits longer */
    int max_busy_percent;    /* share of the workers the talking sessions may need; 0 = no limit */
    struct workers *pool;    /* outlives the admit */
    struct metrics *metrics; /* may be NULL (no metrics); outlives the admit */
};

/* HARK_E_NOMEM. */
int admit_create(struct admit **out, const struct admit_cfg *cfg);
/* Accepts NULL. Every slot must have been released. */
void admit_destroy(struct admit *a);

/* Admit a new session: 0 with a slot (counted from now), or HARK_E_BUSY
 * (shutting down, or compute cannot keep up) / HARK_E_LIMIT (max sessions)
 * with a message for the client. realtime 0 = bulk work (a batch upload):
 * it counts against max-sessions but needs no real-time share. */
int admit_acquire(struct admit *a, int realtime, struct admit_slot **out, char *msg, size_t n);
/* The slot's session now runs on this chan (its usage is measured), and
 * counts as started (admit_started). The chan must stay valid until
 * admit_release. */
void admit_bind(struct admit_slot *s, struct chan *c);
/* The slot's session exists: counted once in hark_sessions_opened_total. A
 * slot released before (the session's start failed: a gateway not connected
 * to NATS, an option the engine refused) opened no session. */
void admit_started(struct admit_slot *s);
/* An audio message arrived for the slot's session at now_ns (monotonic; the
 * front end's arrival stamp, so no second clock read per audio frame): it
 * is talking. */
void admit_audio(struct admit_slot *s, int64_t now_ns);
/* The session takes no more input (finishing): it needs no real-time share. */
void admit_closing(struct admit_slot *s);
/* The session is gone. Accepts NULL. */
void admit_release(struct admit_slot *s);

/* Shutdown began: every later admit_acquire is refused (shutting_down). */
void admit_drain(struct admit *a);
/* Periodic refresh (any front end's timer may call it; it measures at most
 * once per second): per-session usage snapshots and the demand gauge. */
void admit_tick(struct admit *a);
/* Open sessions of all front ends. */
int admit_sessions(struct admit *a);

#endif
