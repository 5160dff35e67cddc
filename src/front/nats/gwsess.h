/*
 * The sessions of the NATS gateway backend (natsgw.h): the state natsgw.c
 * (connection, result delivery, timer) and gwsess.c (the backend ops: start,
 * paced audio, controls, events) share. Internal to src/front/nats; the
 * threading and locking rules are natsgw.h's: g->mu guards the session table,
 * each session's result queue and its worker-side fields; the outgoing queue
 * and the event numbering belong to the chan's worker thread.
 */
#ifndef HARK_FRONT_NATS_GWSESS_H
#define HARK_FRONT_NATS_GWSESS_H

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/metrics.h"
#include "front/nats/gwhand.h"
#include "front/nats/gwtake.h"
#include "front/nats/natsgw.h"
#include "front/nats/nmsg.h"
#include "front/nats/nres.h"
#include "session/backend.h"
#include "session/options.h"

/* A message for the session, waiting for its poll. */
struct gitem {
    struct gitem *next;
    size_t cost;
    struct nres r; /* parsed result, or a synthetic error (kind NRES_ERROR, text in msg) */
    uint64_t hash; /* of the message's bytes (0: synthetic): what a hand-over matches */
    int synthetic_closed;
    char msg[300];
};

/* A message for the worker, waiting for its turn (audio paced by the
 * worker's progress; controls keep their place behind it). */
struct gout {
    struct gout *next;
    int audio; /* raw audio bytes (rendered as a chunk when sent), else a rendered message */
    size_t len;
    uint8_t data[];
};

struct gsess {
    struct natsgw *g;
    char id[NMSG_ID_MAX];
    char speaker[sizeof((struct hark_options *)0)->speaker_id];
    char language[sizeof((struct hark_options *)0)->language];
    char *subject; /* {subject_in}.{id} */
    hark_event_cb ev;
    void *ev_user;
    void (*notify)(void *);
    void *notify_user;
    double bytes_per_sec; /* 0: a container encoding */
    double t0;            /* wall clock at the start: chunk timestamps count from it */

    /* the chan's worker thread */
    uint64_t seq;
    uint64_t last_hash;   /* the newest worker message delivered (gwtake.h last_msg) */
    int64_t worker_next;  /* the worker's result numbers below this were delivered */
    int64_t worker_epoch; /* the largest owner_epoch delivered (0: none, not JetStream) */
    double results_end;   /* the furthest audio a result covered */
    int closed_delivered;
    int end_queued;
    int end_sent;
    struct gout *ohead, *otail;
    atomic_ullong sent_bytes; /* audio published (read by the timer) */
    atomic_size_t backlog;    /* bytes in the outgoing queue (read by the front end) */
    atomic_int blocked;       /* audio waits: the worker is a window behind */

    /* guarded by g->mu */
    struct gitem *head, *tail;
    size_t queued_bytes;
    int started;       /* the worker acknowledged the start */
    int finished;      /* closed queued (received or synthetic): nothing more is queued */
    int64_t t_start;   /* monotonic ns the start was sent */
    int64_t t_heard;   /* monotonic ns of the last message from the worker */
    int64_t t_ka;      /* monotonic ns the last keepalive went out */
    int ka_out;        /* it awaits its answer */
    uint64_t consumed; /* audio the worker took off its queue, from its last answer */
    int gone;          /* destroyed: its subscription's last messages are dropped */
    int refs;          /* the chan's, and the subscription's until its last callback returned */
    int polling;       /* the chan's worker thread delivers what it took off the queue */
    atomic_int frozen; /* handed to another gateway (gwhand_freeze): nothing is delivered,
                          no end goes to the worker */
    /* taken from another gateway (gwhand_take): subscribed and queueing, not
     * yet opened (adopt 1); the holder's answer arrived (adopt 2) */
    int adopt;
    struct gwtake_state from; /* adopt 2: where the holder left off (no options) */
    struct gsess *prev, *next;

    /* the session's own subscription to {subject_out}.{id}; its closure is
     * this session, freed when both references are gone */
    natsSubscription *sub;
};

struct natsgw {
    struct natsgw_cfg cfg;
    char *url, *subj_in, *subj_out, *name;
    natsConnection *nc;
    atomic_int connected;
    uint64_t window; /* audio bytes in flight to a worker, at most */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gsess *all; /* the timer's list, not a lookup: results find their session by subject */
    int subs;          /* session subscriptions whose last callback has not returned */
    int closed;        /* nats.c ran the connection's closed callback, its last one */
    int stop;
    pthread_t timer;
    int timer_started;

    struct metric *m_connected, *m_sessions, *m_timeouts, *m_bad, *m_handed, *m_taken, *m_stale;
    natsSubscription *take_sub; /* {subject_out}.take.* */
    struct gwhand_cbs take;     /* under mu */
    int takes;                  /* take threads running (under mu) */
};

/* natsgw.c: the timer's list (under g->mu); natsgw_running: a session
 * with this id is in it (a linear scan: once per session start). */
int natsgw_running(struct natsgw *g, const char *id);
/* The session gwhand_take prepared for id, once the holder answered (adopt
 * 2), or NULL. Under g->mu. */
struct gsess *natsgw_adoptable(struct natsgw *g, const char *id);
void natsgw_add(struct natsgw *g, struct gsess *s);
void natsgw_del(struct natsgw *g, struct gsess *s);
/* Subscribes s to {subject_out}.{id}, its results: two references from
 * now on. Before the start is published, so the answer finds it. */
int natsgw_subscribe(struct natsgw *g, struct gsess *s, char *err, size_t n);
/* The chan is done with s: off the list, no more notify or queueing,
 * unsubscribed; freed once its subscription's last callback returned (maybe
 * on nats.c's thread). Returns the results still queued, the caller's. */
struct gitem *natsgw_release(struct gsess *s);

/* gwhand.c: {subject_out}.take.* (at the start); the take callbacks off,
 * takes in flight waited for (bounded), unsubscribed (at the end). */
int gwhand_subscribe(struct natsgw *g, char *err, size_t n);
void gwhand_stop(struct natsgw *g);

/* gwsess.c */
extern const struct backend_ops gwsess_ops;
void gwsess_item_free(struct gitem *it);

#endif
