/*
 * The worker pool (host/workers.h): threads, the ready lists and the hold.
 * What a turn does with a chan's jobs is host/chan.c's (chan_turn).
 */
#include "host/workers.h"

#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/mem.h"
#include "host/chan.h"

/* A ready list. */
struct readyq {
    struct workers_item *head, *tail;
};

struct workers {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Sessions at real-time pace go first; sessions whose audio is far
     * ahead of the wall clock (file uploads, clients sending faster than
     * real time) use what capacity is left, so they cannot delay anyone's
     * live results. */
    struct readyq live, bulk;
    /* Chans whose audio waits out the hold (workers_set_hold), in the order
     * their holds end (all holds are equally long). */
    struct readyq held;
    atomic_llong hold_ns;
    unsigned queued;
    pthread_t *th;
    unsigned n;
    int stop;
    workers_wake_cb wake;
    void *wake_user;
    atomic_llong busy_ns;
    atomic_ullong jobs_done;
    /* busy_fraction window, guarded by mu */
    int64_t last_stats_at;
    long long last_busy;
    double last_fraction;
};

void workers_ready(struct workers *w, struct workers_item *c)
{
    pthread_mutex_lock(&w->mu);
    c->next = NULL;
    c->ready_since = clock_mono_ns();
    struct readyq *q = atomic_load(&c->bulk) ? &w->bulk : &w->live;
    if (q->tail)
        q->tail->next = c;
    else
        q->head = c;
    q->tail = c;
    w->queued++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Puts c on the held list; its audio goes to a worker when the hold ends. */
static void hold_push(struct workers *w, struct workers_item *c, int64_t hold_ns)
{
    pthread_mutex_lock(&w->mu);
    c->next = NULL;
    c->ready_since = clock_mono_ns() + hold_ns;
    atomic_store(&c->held, 1);
    int first = !w->held.head;
    if (w->held.tail)
        w->held.tail->next = c;
    else
        w->held.head = c;
    w->held.tail = c;
    if (first) /* idle workers wait for the first hold to end */
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void workers_schedule(struct workers *w, struct workers_item *c, int audio)
{
    int64_t hold = atomic_load(&w->hold_ns);
    if (hold > 0 && audio && !atomic_load(&c->bulk))
        hold_push(w, c, hold);
    else
        workers_ready(w, c);
}

void workers_unhold(struct workers *w, struct workers_item *c)
{
    if (!atomic_load(&c->held))
        return;
    pthread_mutex_lock(&w->mu);
    if (!atomic_load(&c->held)) {
        pthread_mutex_unlock(&w->mu);
        return;
    }
    struct workers_item **pp = &w->held.head, *prev = NULL;
    while (*pp != c) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = c->next;
    if (w->held.tail == c)
        w->held.tail = prev;
    atomic_store(&c->held, 0);
    pthread_mutex_unlock(&w->mu);
    workers_ready(w, c);
}

/* Under the pool lock: chans whose hold ended go to the back of the live
 * list. Returns the ns until the next hold ends, or -1 if none is held. */
static int64_t holds_due(struct workers *w, int64_t now)
{
    struct workers_item *c;
    while ((c = w->held.head) && (c->ready_since <= now || w->stop)) {
        w->held.head = c->next;
        if (!w->held.head)
            w->held.tail = NULL;
        atomic_store(&c->held, 0);
        c->next = NULL;
        c->ready_since = now;
        if (w->live.tail)
            w->live.tail->next = c;
        else
            w->live.head = c;
        w->live.tail = c;
        w->queued++;
    }
    return c ? c->ready_since - now : -1;
}

static void *worker_main(void *arg)
{
    struct workers *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        for (;;) {
            int64_t wait = holds_due(w, clock_mono_ns());
            if (w->live.head || w->bulk.head || w->stop)
                break;
            if (wait < 0) {
                pthread_cond_wait(&w->cv, &w->mu);
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts); /* the cv's clock */
                int64_t ns = (int64_t)ts.tv_nsec + wait;
                ts.tv_sec += (time_t)(ns / 1000000000LL);
                ts.tv_nsec = (long)(ns % 1000000000LL);
                pthread_cond_timedwait(&w->cv, &w->mu, &ts);
            }
        }
        if (!w->live.head && !w->bulk.head && w->stop) {
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
        struct readyq *q = w->live.head ? &w->live : &w->bulk;
        struct workers_item *c = q->head;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->mu);

        int64_t t0 = clock_mono_ns();
        unsigned jobs = 0;
        int again = chan_turn(c, &jobs); /* c may be freed when 0 */
        atomic_fetch_add(&w->jobs_done, jobs);
        atomic_fetch_add(&w->busy_ns, clock_mono_ns() - t0);
        if (again)
            workers_ready(w, c);
        if (w->wake)
            w->wake(w->wake_user);
    }
}

int workers_create(struct workers **out, unsigned threads, workers_wake_cb wake, void *wake_user)
{
    *out = NULL;
    if (threads < 1 || threads > 256)
        return HARK_E_INVAL;
    struct workers *w = hark_calloc(1, sizeof *w);
    if (!w)
        return HARK_E_NOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* holds end on the monotonic clock */
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    w->wake = wake;
    w->wake_user = wake_user;
    w->last_stats_at = clock_mono_ns();
    w->th = hark_calloc(threads, sizeof *w->th);
    if (!w->th) {
        workers_destroy(w);
        return HARK_E_NOMEM;
    }
    for (unsigned i = 0; i < threads; i++) {
        if (pthread_create(&w->th[i], NULL, worker_main, w)) {
            workers_destroy(w);
            return HARK_E_INTERNAL;
        }
        w->n++;
    }
    *out = w;
    return 0;
}

void workers_destroy(struct workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (unsigned i = 0; i < w->n; i++)
        pthread_join(w->th[i], NULL);
    hark_free(w->th);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    hark_free(w);
}

void workers_set_hold(struct workers *w, unsigned hold_ms)
{
    atomic_store(&w->hold_ns, (long long)hold_ms * 1000000LL);
}

void workers_stats(struct workers *w, struct workers_stats *out)
{
    memset(out, 0, sizeof *out);
    int64_t now = clock_mono_ns();
    long long busy = atomic_load(&w->busy_ns);
    pthread_mutex_lock(&w->mu);
    out->threads = w->n;
    out->queued_chans = w->queued;
    /* Lag that matters is that of real-time sessions; bulk work waiting is
     * by design. */
    if (w->live.head)
        out->oldest_wait_ms = (double)(now - w->live.head->ready_since) / 1e6;
    /* Measured over at least 1 s so that a burst does not swing it. */
    if (now - w->last_stats_at >= 1000000000LL) {
        double span = (double)(now - w->last_stats_at) * w->n;
        w->last_fraction = span > 0 ? (double)(busy - w->last_busy) / span : 0;
        if (w->last_fraction > 1)
            w->last_fraction = 1;
        w->last_busy = busy;
        w->last_stats_at = now;
    }
    out->busy_fraction = w->last_fraction;
    pthread_mutex_unlock(&w->mu);
    out->jobs_done = atomic_load(&w->jobs_done);
}
