/*
 * The table of a process's resumable sessions (issue 11): each by id and
 * resume token, attached to a front end's connection or DETACHED (the
 * connection dropped without a close) and kept for --resume-window seconds
 * while its queued audio is still decoded and its events are kept
 * (outbox.h: the events themselves, within --resume-buffer-bytes and
 * --resume-buffer-events), so a client can reconnect and
 * resume it without losing a word. Transport-neutral: it never sees
 * libwebsockets or nats.c; a connection is an opaque pointer.
 *
 * Ownership: a session added to the table owns its chan (and the render
 * state the chan frees); table_end, the window's expiry and a detached
 * session's overflow release it. The front end keeps using the chan while
 * attached and tells the table what it sent (table_sent).
 *
 * Lookup by id is a hash (constant time); the token is compared in
 * constant time, and an unknown id and a wrong token get the same answer.
 *
 * Threads: one call at a time: the front end's I/O loop, or the front end's
 * lock (NATS: its delivery thread and pump share one).
 */
#ifndef HARK_HOST_TABLE_H
#define HARK_HOST_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/metrics.h"
#include "host/outbox.h"
#include "host/stats.h"
#include "host/chan.h"

struct table;

struct tsess {
    char id[64];
    char token[33];       /* 32 lowercase hex, random */
    struct chan *chan;    /* owned */
    void *conn;           /* the front end's connection; NULL while detached */
    void *render_state;   /* the dialect state the chan renders with */
    struct outbox hist;   /* events a client may still need */
    uint64_t audio_bytes; /* audio received and queued, all connections */
    int64_t detached_at;  /* monotonic ns; 0 while attached */
    uint64_t detach_seq;  /* events from here on were not sent to anyone */
    int finishing;        /* the client asked to finish: input is over, events are not all
                             delivered; kept (and resumable) even once the chan is done */
    void *user;           /* the front end's per-session data, freed by ended_cb */
    struct tsess *hnext, *prev, *next;
};

struct table_cfg {
    int resume_window;           /* seconds a detached session is kept; 0 = resume off */
    size_t resume_buffer_bytes;  /* events kept per session, bytes... */
    size_t resume_buffer_events; /* ...and events (0 = no count limit) */
    size_t replay_bytes;         /* events kept while attached (at most the above) */
    struct metrics *metrics;     /* may be NULL */
    struct stats *stats;         /* events taken while detached are counted here (may be NULL) */
    /* A session leaves the table (ended, expired, overflowed): the front end
     * settles its accounting (chan usage, session counts) before the chan
     * is released. */
    void (*ended_cb)(void *user, struct tsess *s);
    void *user;
};

/* HARK_E_NOMEM. */
int table_create(struct table **out, const struct table_cfg *cfg);
/* Ends every session still in the table. Accepts NULL. */
void table_destroy(struct table *t);
int table_resume_window(const struct table *t);

/* Add a new attached session running on chan (owned from now on, also on
 * failure). HARK_E_NOMEM. */
int table_add(struct table *t, struct chan *chan, void *render_state, void *conn,
              struct tsess **out);
/* The session with this id, attached or detached, or NULL (no token
 * needed: for front ends whose sessions are addressed by id, NATS). */
struct tsess *table_find(struct table *t, const char *id);
/* Sessions in the table, attached or detached. */
int table_count(const struct table *t);
/* Every session: table_first, then each one's ->next (read it before
 * ending that one). */
struct tsess *table_first(struct table *t);

/* The front end sent (queued for writing the rendering of) this message of
 * s, a structured event (MSG_EVENT): the table keeps it for a resume, or
 * frees it (owned from now on). */
void table_sent(struct table *t, struct tsess *s, struct chan_msg *m);
/* The connection dropped without a close: keep the session for the window
 * (returns 1). With resume off, or a session that finished by itself (its
 * chan done and not s->finishing), it ends instead (returns 0; s is gone). */
int table_detach(struct table *t, struct tsess *s, int64_t now);
/* Remove s and release its chan (the session is over). */
void table_end(struct table *t, struct tsess *s);

/* A resume request: 0 with the session, or HARK_E_RESUME_FAILED with the reason in
 * msg (unknown id or wrong token, events after last_seq no longer kept, or
 * the client sent less audio than the session holds). The session may be
 * attached to another connection (a half-open one): the caller takes it
 * over. */
int table_resume(struct table *t, const char *id, const char *token, int64_t last_seq,
                 uint64_t client_bytes, struct tsess **out, char *msg, size_t n);
/* Count a resume that did not go through table_resume/table_attach (a
 * session taken over from another gateway, front/ws/wstake.c). */
void table_count_resume(struct table *t, int ok);
/* Attach a found session to conn (counts the resume). */
void table_attach(struct table *t, struct tsess *s, void *conn);

/* Collect the detached sessions' new events into their outboxes, within the
 * budget (bytes and events); a session whose finals and unsent events alone
 * exceed it ends (hark_sessions_expired_total{reason="resume_buffer"}; a
 * later resume gets resume_failed). */
void table_drain(struct table *t);
/* Expire detached sessions past the window. */
void table_tick(struct table *t, int64_t now);
/* Shutting down: end every detached session (nobody will resume here). */
void table_drop_detached(struct table *t);
int table_detached(const struct table *t);

#endif
