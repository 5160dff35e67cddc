/*
 * A session's chan (host/chan.h): its job queue, the session it runs (on a
 * backend, session/backend.h), the events it turns into messages, and one
 * turn of its jobs on a worker of the pool (host/workers.h).
 */
#include "host/chan.h"

#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "session/backend.h"
#include "session/evcopy.h"

enum job_kind { J_AUDIO, J_FINALIZE, J_STATE, J_ERROR, J_CLOSE, J_POLL };

/* Audio bytes one chan may process per turn on a worker (~1 s of 16 kHz
 * s16; more for wider formats, which is fine). */
#define TURN_BYTES 32000

/* A held chan (workers_set_hold) goes to a worker before its hold ends once
 * this much audio waits: a client sending faster than real time (an upload
 * refilling its budget) is not slowed by the hold; 0.5 s of 16 kHz s16. */
#define HOLD_MAX_BYTES 16000

/* A session whose processed audio runs this far ahead of the wall clock
 * since its first audio is not live: it queues behind live sessions. */
#define BULK_AHEAD_SEC 2.0

struct job {
    struct job *next;
    int64_t arrival; /* monotonic ns when posted */
    enum job_kind kind;
    int state;
    size_t len;  /* payload bytes in data */
    size_t cap;  /* bytes allocated for data */
    size_t cost; /* counted against the chan's budget (JOB_COST) */
    uint8_t data[];
};

/* Every queued job counts against the chan's budget with its fixed costs:
 * the job header and the allocator's chunk header (glibc: 8 bytes, 16-byte
 * granularity; 16 covers both). Before, only audio payload counted, and a
 * client sending {"type":"finalize"} in a loop, or 1-byte audio frames
 * (~74 MB against a 1 MiB budget), grew the server without bound. */
#define JOB_COST(cap) (sizeof(struct job) + (cap) + 16)

/* Audio jobs are allocated with room for at least this much, and audio
 * posted while the tail job is audio not yet taken by a worker is appended
 * to it: a stream of small frames costs one allocation per AUDIO_JOB_MIN
 * bytes, not one per frame. */
#define AUDIO_JOB_MIN 4096

struct chan {
    pthread_mutex_t mu;
    struct workers *w;
    const struct backend_ops *ops; /* where the session runs (session/backend.h) */
    void *s;                       /* its session */
    chan_render_cb render;
    void *render_user;
    size_t max_pending;

    /* guarded by mu */
    struct job *jhead, *jtail;
    size_t pending_bytes;
    struct chan_msg *mhead, *mtail;
    int scheduled; /* on the ready list or being run */
    int released;
    int done;
    int close_posted;
    /* A finalize waits in the queue (not yet taken by a worker) with no
     * audio after it: another one is answered by its final, so it is not
     * queued. One posted after a worker took it gets its own (empty) final,
     * as the protocol promises. */
    int finalize_queued;
    /* A J_POLL (results of a network engine) is queued: one is enough. */
    int poll_queued;
    double audio_sec, cpu_sec;
    unsigned results_pending; /* hark_session_results_pending after the last job */
    int closed_seen;          /* worker-owned: the CLOSED event was delivered */

    int64_t first_arrival; /* worker-owned: arrival of the first audio job */

    /* its place in the pool's lists (item.bulk: set by the worker running
     * the chan) */
    struct workers_item item;

    void (*on_free)(void *);
    void *on_free_arg;

    /* used only by the worker running the chan */
    struct buf scratch;
    int64_t cur_arrival; /* of the job being run */
    int64_t last_partial_segment;
    struct {
        double upto; /* input seconds after the job */
        int64_t arrival;
    } seen[32];
    unsigned seen_n;
    char id[64];
};

static void free_jobs(struct job *j)
{
    while (j) {
        struct job *n = j->next;
        hark_free(j);
        j = n;
    }
}

static void chan_free(struct chan *c)
{
    free_jobs(c->jhead);
    struct chan_msg *m = c->mhead;
    while (m) {
        struct chan_msg *n = m->next;
        hark_free(m);
        m = n;
    }
    if (c->s)
        c->ops->destroy(c->s);
    if (c->on_free)
        c->on_free(c->on_free_arg);
    buf_deinit(&c->scratch);
    pthread_mutex_destroy(&c->mu);
    hark_free(c);
}

/* When did the audio an event is about arrive? The newest job whose audio
 * reaches the event's end; the running job if none recorded yet does. */
static int64_t arrival_of(struct chan *c, double t)
{
    unsigned n = c->seen_n < 32 ? c->seen_n : 32;
    for (unsigned k = 0; k < n; k++) {
        unsigned i = (c->seen_n - n + k) % 32;
        if (c->seen[i].upto >= t - 1e-6)
            return c->seen[i].arrival;
    }
    return c->cur_arrival;
}

static void latency_ref(struct chan *c, const struct hark_event *ev, int *kind, int64_t *t_ref)
{
    *kind = LAT_NONE;
    *t_ref = 0;
    if (ev->type != HARK_EVENT_TRANSCRIPT)
        return;
    if (!ev->is_final) {
        if (ev->segment == c->last_partial_segment)
            return;
        c->last_partial_segment = ev->segment;
        *kind = LAT_FIRST_PARTIAL;
        *t_ref = arrival_of(c, ev->end);
    } else if (ev->reason == HARK_REASON_ENDPOINT) {
        *kind = LAT_FINAL_ENDPOINT;
        *t_ref = arrival_of(c, ev->end);
    } else if (ev->reason == HARK_REASON_FINALIZE) {
        *kind = LAT_FINAL_FINALIZE;
        *t_ref = c->cur_arrival;
    }
}

/* One wire message of an event. */
static struct chan_msg *wire_msg(const struct chan_msg *ev, unsigned flags, const char *data,
                                 size_t len)
{
    struct chan_msg *m = hark_malloc(sizeof *m + len + 1);
    if (!m)
        return NULL;
    m->next = NULL;
    m->flags = flags | MSG_SEQ;
    m->seq = ev->seq;
    m->segment = ev->segment;
    m->lat_kind = LAT_NONE;
    m->t_ref = 0;
    m->ev = NULL;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    m->data[len] = 0;
    return m;
}

/* The rendered bytes of an event (in scratch, with render's flags) as wire
 * messages: one, or one per NUL-ended message with MSG_MULTI; the event's
 * flags go with the last, and so does its latency (ev: seq, segment,
 * latency of the event). *out NULL: nothing to send, nothing to signal. */
static int split_msgs(const struct chan_msg *ev, int type, int is_final, unsigned flags,
                      const struct buf *scratch, struct chan_msg **out)
{
    *out = NULL;
    if (type == HARK_EVENT_CLOSED)
        flags |= MSG_LAST;
    if (!scratch->len && !(flags & (MSG_LAST | MSG_FATAL)))
        return 0;
    if (scratch->oom)
        return HARK_E_NOMEM;
    if (type == HARK_EVENT_TRANSCRIPT)
        flags |= is_final ? MSG_FINAL : MSG_PARTIAL;
    struct chan_msg **tail = out;
    const char *p = scratch->data ? scratch->data : "", *end = p + scratch->len;
    do {
        size_t len = (size_t)(end - p);
        unsigned f = flags & ~(unsigned)MSG_MULTI;
        int last = 1;
        if (flags & MSG_MULTI) {
            const char *nul = memchr(p, 0, len);
            len = nul ? (size_t)(nul - p) : len;
            last = !nul || nul + 1 >= end;
            if (!last)
                f &= ~(unsigned)(MSG_LAST | MSG_FATAL | MSG_FINAL | MSG_PARTIAL);
        }
        struct chan_msg *m = wire_msg(ev, f, p, len);
        if (!m) {
            while (*out) {
                struct chan_msg *n = (*out)->next;
                hark_free(*out);
                *out = n;
            }
            return HARK_E_NOMEM;
        }
        if (last) {
            m->lat_kind = ev->lat_kind;
            m->t_ref = ev->t_ref;
        }
        *tail = m;
        tail = &m->next;
        p += len + 1;
    } while (p < end);
    return 0;
}

int chan_render_msgs(chan_render_cb render, void *user, const struct chan_msg *em,
                     struct buf *scratch, struct chan_msg **out)
{
    unsigned flags = 0;
    buf_reset(scratch);
    render(user, em->ev, scratch, &flags);
    return split_msgs(em, em->ev->type, em->ev->is_final, flags, scratch, out);
}

/* A structured chan's message: the event itself, deep-copied. */
struct chan_msg *chan_event_msg(const struct hark_event *ev)
{
    size_t size = evcopy_size(ev);
    struct chan_msg *m = hark_malloc(sizeof *m + EVCOPY_ALIGN + size + 1);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    uintptr_t at = ((uintptr_t)m->data + EVCOPY_ALIGN - 1) & ~(uintptr_t)(EVCOPY_ALIGN - 1);
    m->ev = evcopy_into((void *)at, ev);
    m->len = (size_t)(at - (uintptr_t)m->data) + size;
    m->data[m->len] = 0;
    m->flags = MSG_SEQ | MSG_EVENT;
    if (ev->type == HARK_EVENT_CLOSED)
        m->flags |= MSG_LAST;
    if (ev->type == HARK_EVENT_TRANSCRIPT)
        m->flags |= ev->is_final ? MSG_FINAL : MSG_PARTIAL;
    m->seq = ev->seq;
    m->segment = ev->type == HARK_EVENT_TRANSCRIPT ? ev->segment : -1;
    return m;
}

static void append_msgs(struct chan *c, struct chan_msg *m)
{
    if (!m)
        return;
    struct chan_msg *last = m;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&c->mu);
    if (c->mtail)
        c->mtail->next = m;
    else
        c->mhead = m;
    c->mtail = last;
    pthread_mutex_unlock(&c->mu);
}

/* Session event sink: runs on the worker thread that runs the chan. */
static void on_event(void *user, const struct hark_event *ev)
{
    struct chan *c = user;
    struct chan_msg head = {.seq = ev->seq,
                            .segment = ev->type == HARK_EVENT_TRANSCRIPT ? ev->segment : -1};
    if (ev->type == HARK_EVENT_CLOSED)
        c->closed_seen = 1;
    if (!c->render) {
        struct chan_msg *m = chan_event_msg(ev);
        if (!m) {
            LOG_ERROR(c->id, "out of memory keeping an event; event dropped");
            return;
        }
        m->seq = head.seq;
        m->segment = head.segment;
        /* the turn now, inside the session call: later it may have changed */
        const struct hark_session *hs = c->ops->session(c->s);
        m->turn = hs ? (int)hark_session_get_state(hs) : -1;
        latency_ref(c, ev, &m->lat_kind, &m->t_ref);
        append_msgs(c, m);
        return;
    }
    unsigned flags = 0;
    buf_reset(&c->scratch);
    c->render(c->render_user, ev, &c->scratch, &flags);
    /* latency only for an event that is sent (a first partial rendered to
     * nothing leaves the next one first) */
    unsigned f = flags | (ev->type == HARK_EVENT_CLOSED ? MSG_LAST : 0);
    if (c->scratch.len || (f & (MSG_LAST | MSG_FATAL)))
        latency_ref(c, ev, &head.lat_kind, &head.t_ref);
    struct chan_msg *list;
    if (split_msgs(&head, ev->type, ev->is_final, flags, &c->scratch, &list)) {
        LOG_ERROR(c->id, "out of memory rendering an event; event dropped");
        return;
    }
    append_msgs(c, list);
}

static void run_jobs(struct chan *c, struct job *j, unsigned *jobs)
{
    while (j) {
        struct job *next = j->next;
        double before = c->ops->audio_seconds(c->s);
        int64_t t0 = clock_thread_ns();
        c->cur_arrival = j->arrival;
        switch (j->kind) {
        case J_AUDIO:
            c->ops->feed(c->s, j->data, j->len);
            break;
        case J_FINALIZE:
            c->ops->finalize(c->s);
            break;
        case J_STATE:
            c->ops->set_state(c->s, (enum hark_state)j->state);
            break;
        case J_ERROR: /* state: the code; data: the message and its NUL */
            c->ops->report_error(c->s, j->state, (const char *)j->data);
            break;
        case J_CLOSE:
            c->ops->close(c->s);
            break;
        case J_POLL:
            pthread_mutex_lock(&c->mu);
            c->poll_queued = 0; /* a notify from now on queues another */
            pthread_mutex_unlock(&c->mu);
            c->ops->poll(c->s);
            break;
        }
        double cpu = (double)(clock_thread_ns() - t0) / 1e9;
        if (j->kind == J_AUDIO) {
            if (!c->first_arrival)
                c->first_arrival = j->arrival;
            double upto = c->ops->audio_seconds(c->s);
            double ahead = upto - (double)(clock_mono_ns() - c->first_arrival) / 1e9;
            atomic_store(&c->item.bulk, ahead > BULK_AHEAD_SEC);
            unsigned i = c->seen_n++ % 32;
            c->seen[i].upto = upto;
            c->seen[i].arrival = j->arrival;
        }
        pthread_mutex_lock(&c->mu);
        /* chan_release may have zeroed it meanwhile */
        c->pending_bytes = c->pending_bytes > j->cost ? c->pending_bytes - j->cost : 0;
        /* Done when the CLOSED event went out: within the close job for a
         * local session, from a later poll for a remote one. */
        if (c->closed_seen)
            c->done = 1;
        c->cpu_sec += cpu;
        c->audio_sec += c->ops->audio_seconds(c->s) - before;
        c->results_pending = c->ops->results_pending(c->s);
        pthread_mutex_unlock(&c->mu);
        (*jobs)++;
        hark_free(j);
        j = next;
    }
}

int chan_turn(struct workers_item *it, unsigned *jobs)
{
    struct chan *c = (struct chan *)(void *)((char *)it - offsetof(struct chan, item));
    /* Take at most TURN_BYTES of audio per turn, then go to the back of
     * the line: a client sending far faster than real time gets one
     * worker at a time in slices, never a worker for many seconds while
     * live sessions wait. */
    pthread_mutex_lock(&c->mu);
    struct job *todo = c->jhead, *last = NULL;
    size_t taken = 0;
    for (struct job *j = c->jhead; j; j = j->next) {
        last = j;
        if (j->kind == J_AUDIO && (taken += j->len) >= TURN_BYTES)
            break;
    }
    c->jhead = last ? last->next : NULL;
    if (!c->jhead) {
        c->jtail = NULL;
        c->finalize_queued = 0; /* taken; a split leaves the tail's finalize queued */
    }
    if (last)
        last->next = NULL;
    pthread_mutex_unlock(&c->mu);

    run_jobs(c, todo, jobs);

    pthread_mutex_lock(&c->mu);
    int again = c->jhead != NULL;
    int free_it = 0;
    if (!again) {
        c->scheduled = 0;
        free_it = c->released;
    }
    pthread_mutex_unlock(&c->mu);
    if (free_it)
        chan_free(c);
    return again;
}

static int post(struct chan *c, enum job_kind kind, int state, const void *data, size_t len);

/* From an engine's thread: results are ready (hark_session_set_notify). The
 * chan outlives this: its session's engine stream is released, which stops
 * the notifications, before the chan is freed. */
static void chan_notify(void *user)
{
    post(user, J_POLL, 0, NULL, 0);
}

/* The local backend: the session core on this machine. */
static int local_open(void *ctx, const struct hark_options *opts, const char *session_id,
                      hark_event_cb ev, void *ev_user, void (*notify)(void *), void *notify_user,
                      void **out, char *err, size_t n)
{
    struct hark_session *s = NULL;
    int rc = hark_session_create(&s, ctx, opts, session_id, ev, ev_user, err, n);
    if (rc)
        return rc;
    hark_session_set_notify(s, notify, notify_user);
    *out = s;
    return 0;
}

static const char *local_id(void *s)
{
    return hark_session_id(s);
}

static void local_feed(void *s, const void *bytes, size_t len)
{
    hark_session_feed(s, bytes, len);
}

static void local_finalize(void *s)
{
    hark_session_finalize(s);
}

static void local_set_state(void *s, enum hark_state state)
{
    hark_session_set_state(s, state);
}

static void local_report_error(void *s, int code, const char *message)
{
    hark_session_report_error(s, code, message);
}

static void local_close(void *s)
{
    hark_session_close(s);
}

static void local_poll(void *s)
{
    hark_session_poll(s);
}

static double local_audio_seconds(void *s)
{
    return hark_session_audio_seconds(s);
}

static unsigned local_results_pending(void *s)
{
    return hark_session_results_pending(s);
}

static const struct hark_session *local_session(void *s)
{
    return s;
}

static void local_destroy(void *s)
{
    hark_session_destroy(s);
}

static const struct backend_ops local_ops = {
    .name = "local",
    .open = local_open,
    .id = local_id,
    .feed = local_feed,
    .finalize = local_finalize,
    .set_state = local_set_state,
    .report_error = local_report_error,
    .close = local_close,
    .poll = local_poll,
    .audio_seconds = local_audio_seconds,
    .results_pending = local_results_pending,
    .session = local_session,
    .destroy = local_destroy,
};

int chan_create_on(struct chan **out, struct workers *w, const struct backend *b,
                   const struct hark_options *opts, const char *session_id, chan_render_cb render,
                   void *render_user, size_t max_pending_bytes, char *errbuf, size_t errbuf_size)
{
    *out = NULL;
    struct chan *c = hark_calloc(1, sizeof *c);
    if (!c)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    pthread_mutex_init(&c->mu, NULL);
    buf_init(&c->scratch);
    c->w = w;
    c->ops = b->ops;
    c->render = render;
    c->render_user = render_user;
    c->max_pending = max_pending_bytes;
    c->last_partial_segment = -1;
    int rc = b->ops->open(b->ctx, opts, session_id, on_event, c, chan_notify, c, &c->s, errbuf,
                          errbuf_size);
    if (rc) {
        c->s = NULL;
        chan_free(c);
        return rc;
    }
    snprintf(c->id, sizeof c->id, "%s", b->ops->id(c->s));
    *out = c;
    return 0;
}

int chan_create(struct chan **out, struct workers *w, struct hark_engine *eng,
                const struct hark_options *opts, const char *session_id, chan_render_cb render,
                void *render_user, size_t max_pending_bytes, char *errbuf, size_t errbuf_size)
{
    struct backend b = {&local_ops, eng};
    return chan_create_on(out, w, &b, opts, session_id, render, render_user, max_pending_bytes,
                          errbuf, errbuf_size);
}

void chan_on_free(struct chan *c, void (*fn)(void *), void *arg)
{
    c->on_free = fn;
    c->on_free_arg = arg;
}

const char *chan_session_id(const struct chan *c)
{
    return c->id;
}

const struct hark_session *chan_session(const struct chan *c)
{
    return c->ops->session(c->s);
}

static int post(struct chan *c, enum job_kind kind, int state, const void *data, size_t len)
{
    pthread_mutex_lock(&c->mu);
    int rc = 0, unhold;
    /* Polls go on after the close: a remote session's last finals (and
     * its CLOSED) arrive after it. */
    if (c->released || (c->close_posted && kind != J_POLL)) {
        rc = HARK_E_STATE;
        goto out;
    }
    /* Coalescing, so that repeated controls cost nothing: a finalize behind
     * a queued finalize with no audio between them is a no-op; a state
     * change replaces a state change still waiting at the tail (only the
     * last one matters, and nothing between them would have seen the
     * first). */
    struct job *t = c->jtail;
    if (kind == J_FINALIZE && c->finalize_queued)
        goto out;
    if (kind == J_POLL && c->poll_queued)
        goto out;
    if (kind == J_STATE && t && t->kind == J_STATE) {
        t->state = state;
        goto out;
    }
    if (kind == J_AUDIO && t && t->kind == J_AUDIO && t->cap - t->len >= len) {
        memcpy(t->data + t->len, data, len); /* its capacity is counted already */
        t->len += len;
        c->finalize_queued = 0;
        goto out;
    }
    size_t cap = kind == J_AUDIO && len < AUDIO_JOB_MIN ? AUDIO_JOB_MIN : len;
    /* The close is never refused: it is how a full session ends; nor a
     * poll (at most one is queued): results already computed are owed. */
    if (kind != J_CLOSE && kind != J_POLL && c->pending_bytes + JOB_COST(cap) > c->max_pending) {
        rc = HARK_E_LIMIT;
        goto out;
    }
    struct job *j = hark_malloc(sizeof *j + cap);
    if (!j) {
        rc = HARK_E_NOMEM;
        goto out;
    }
    j->next = NULL;
    j->arrival = clock_mono_ns();
    j->kind = kind;
    j->state = state;
    j->len = len;
    j->cap = cap;
    j->cost = JOB_COST(cap);
    if (len)
        memcpy(j->data, data, len);
    if (c->jtail)
        c->jtail->next = j;
    else
        c->jhead = j;
    c->jtail = j;
    c->pending_bytes += j->cost;
    if (kind == J_AUDIO)
        c->finalize_queued = 0;
    if (kind == J_FINALIZE)
        c->finalize_queued = 1;
    if (kind == J_CLOSE)
        c->close_posted = 1;
    if (kind == J_POLL)
        c->poll_queued = 1;
    int schedule = !c->scheduled;
    c->scheduled = 1;
    /* Already scheduled, perhaps held: a control is not held back behind
     * audio, nor is audio that piles up faster than real time. */
    unhold = !schedule && (kind != J_AUDIO || c->pending_bytes >= HOLD_MAX_BYTES);
    pthread_mutex_unlock(&c->mu);
    if (schedule)
        workers_schedule(c->w, &c->item, kind == J_AUDIO);
    else if (unhold)
        workers_unhold(c->w, &c->item);
    return 0;
out:
    unhold = !rc && kind == J_AUDIO && c->pending_bytes >= HOLD_MAX_BYTES;
    pthread_mutex_unlock(&c->mu);
    if (unhold)
        workers_unhold(c->w, &c->item);
    return rc;
}

int chan_post_audio(struct chan *c, const void *bytes, size_t len)
{
    return len ? post(c, J_AUDIO, 0, bytes, len) : 0;
}

int chan_post_finalize(struct chan *c)
{
    return post(c, J_FINALIZE, 0, NULL, 0);
}

int chan_post_state(struct chan *c, enum hark_state state)
{
    return post(c, J_STATE, (int)state, NULL, 0);
}

int chan_post_error(struct chan *c, int code, const char *message)
{
    /* Counted and refused like any job when the budget is full, so a flood
     * of bad messages stays bounded; the front end then closes, and the
     * close code and reason say why. */
    return post(c, J_ERROR, code, message, strlen(message) + 1);
}

int chan_post_close(struct chan *c)
{
    return post(c, J_CLOSE, 0, NULL, 0);
}

size_t chan_pending_bytes(struct chan *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = c->pending_bytes;
    pthread_mutex_unlock(&c->mu);
    if (c->ops->backlog)
        n += c->ops->backlog(c->s);
    return n;
}

struct chan_msg *chan_take_msgs(struct chan *c)
{
    pthread_mutex_lock(&c->mu);
    struct chan_msg *m = c->mhead;
    c->mhead = c->mtail = NULL;
    pthread_mutex_unlock(&c->mu);
    return m;
}

int chan_done(struct chan *c)
{
    pthread_mutex_lock(&c->mu);
    int d = c->done;
    pthread_mutex_unlock(&c->mu);
    return d;
}

void chan_usage(struct chan *c, double *audio_sec, double *cpu_sec)
{
    pthread_mutex_lock(&c->mu);
    *audio_sec = c->audio_sec;
    *cpu_sec = c->cpu_sec;
    pthread_mutex_unlock(&c->mu);
}

unsigned chan_results_pending(struct chan *c)
{
    pthread_mutex_lock(&c->mu);
    unsigned n = c->results_pending;
    pthread_mutex_unlock(&c->mu);
    return n;
}

void chan_release(struct chan *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->released = 1;
    /* Nobody will read the results any more: drop audio not yet processed. */
    struct job *drop = c->jhead;
    c->jhead = c->jtail = NULL;
    c->pending_bytes = 0;
    int free_now = !c->scheduled;
    pthread_mutex_unlock(&c->mu);
    free_jobs(drop);
    if (free_now)
        chan_free(c);
}

void *chan_backend_session(const struct chan *c)
{
    return c->s;
}
