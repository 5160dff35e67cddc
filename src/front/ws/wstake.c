/*
 * Detached sessions handed between gateways (`hark serve --backend`, issue
 * 14 §5; the exchange is front/nats/gwhand.c's, the messages gwtake.h's):
 * the front end's half, on the service thread.
 *
 * Holder: another gateway asks for a session (wsfe_take_request, from
 * nats.c's thread, queued here). A session held here detached with the
 * token asked for is frozen (its backend stops delivering), once the audio
 * it holds has all gone to the worker and its results are all delivered;
 * meanwhile the request waits (retried every TAKE_RETRY_US, at most
 * TAKE_HOLD_MS). Then the answer carries its events after the client's
 * last seq and its state, and the session leaves the table without an end
 * to the worker. An unknown id or a wrong token gets no answer (as on a
 * local resume, the two cannot be told apart); an attached or finishing
 * session a refusal.
 *
 * Taker: wsconn_take asks; the outcome (wsfe_taken) finds the connection
 * still waiting (by id) and goes to drive_taken. A connection gone by then,
 * or a refusal: the backend forgets the session (take_cancel).
 *
 * Threads: wsfe_take_request and wsfe_taken on any thread (a lock, then
 * lws_cancel_service); the rest on the service thread.
 */
#include <libwebsockets.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/nats/gwtake.h"
#include "front/ws/wsfe_state.h"

#define TAKE_QUEUE_MAX 64 /* requests waiting; more are dropped (the asker times out) */
#define TAKE_HOLD_MS 1500 /* a request waits this long for the session to be still */
#define TAKE_RETRY_US (50 * 1000)

struct treq {
    struct treq *next;
    char id[64];
    struct gwtake_req q;
    char reply[256];
    int64_t deadline;
};

struct tdone {
    struct tdone *next;
    char id[64];
    struct gwtake_reply *r;
    char why[300];
};

struct wstake {
    pthread_mutex_t mu;
    struct treq *in; /* under mu */
    int n_in;
    struct tdone *done;   /* under mu */
    struct treq *pending; /* service thread */
    int n_pending;
    struct wsfe *fe;
    lws_sorted_usec_list_t sul;
};

int wstake_create(struct wstake **out)
{
    struct wstake *t = hark_calloc(1, sizeof *t);
    *out = t;
    if (!t)
        return HARK_E_NOMEM;
    pthread_mutex_init(&t->mu, NULL);
    return 0;
}

void wstake_destroy(struct wsfe *fe, struct wstake *t)
{
    if (!t)
        return;
    lws_sul_cancel(&t->sul);
    for (struct treq *q = t->in, *n; q; q = n) {
        n = q->next;
        hark_free(q);
    }
    for (struct treq *q = t->pending, *n; q; q = n) {
        n = q->next;
        hark_free(q);
    }
    for (struct tdone *d = t->done, *n; d; d = n) {
        n = d->next;
        fe->cfg.takeover->reply_free(d->r);
        hark_free(d);
    }
    pthread_mutex_destroy(&t->mu);
    hark_free(t);
}

void wsfe_take_request(struct wsfe *fe, const char *id, const struct gwtake_req *q,
                       const char *reply)
{
    struct wstake *t = fe->take;
    if (!t || strlen(id) >= sizeof t->in->id || strlen(reply) >= sizeof t->in->reply)
        return;
    struct treq *r = hark_calloc(1, sizeof *r);
    if (!r)
        return;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->q = *q;
    snprintf(r->reply, sizeof r->reply, "%s", reply);
    pthread_mutex_lock(&t->mu);
    if (t->n_in >= TAKE_QUEUE_MAX) { /* bounded: the asker's request times out */
        pthread_mutex_unlock(&t->mu);
        hark_free(r);
        LOG_WARN(id, "take request dropped: %d waiting already", TAKE_QUEUE_MAX);
        return;
    }
    r->next = t->in;
    t->in = r;
    t->n_in++;
    pthread_mutex_unlock(&t->mu);
    lws_cancel_service(fe->ctx);
}

void wsfe_taken(struct wsfe *fe, const char *id, struct gwtake_reply *r, const char *why)
{
    struct wstake *t = fe->take;
    struct tdone *d = t ? hark_calloc(1, sizeof *d) : NULL;
    if (!d) {
        if (fe->cfg.takeover) {
            fe->cfg.takeover->reply_free(r);
            fe->cfg.takeover->take_cancel(fe->cfg.takeover->ctx, id);
        }
        return;
    }
    snprintf(d->id, sizeof d->id, "%s", id);
    d->r = r;
    snprintf(d->why, sizeof d->why, "%s", why ? why : "");
    pthread_mutex_lock(&t->mu);
    d->next = t->done;
    t->done = d;
    pthread_mutex_unlock(&t->mu);
    lws_cancel_service(fe->ctx);
}

/* Constant time over the token's length: how much of a guess is right
 * does not show. */
static int token_eq(const char *a, const char *b)
{
    size_t n = strlen(b);
    if (strlen(a) != n)
        return 0;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* The session's options as text pairs, NULL-terminated (the caller frees
 * each value and the array). */
static const char **options_text(const struct hark_options *o)
{
    int n = 0;
    while (hark_options_name(n))
        n++;
    const char **kv = hark_calloc((size_t)(2 * n + 1), sizeof *kv);
    if (!kv || !o)
        return kv;
    int k = 0;
    char val[4096];
    for (int i = 0; i < n; i++) {
        const char *name = hark_options_name(i);
        if (hark_options_get(o, name, val, sizeof val) || !val[0])
            continue;
        char *v = hark_strdup(val);
        if (!v)
            continue;
        kv[k++] = name;
        kv[k++] = v;
    }
    return kv;
}

static void options_free(const char **kv)
{
    for (int i = 0; kv && kv[i]; i += 2)
        hark_free((void *)kv[i + 1]);
    hark_free(kv);
}

static void refuse(struct wsfe *fe, const struct treq *q, const char *why)
{
    LOG_INFO(q->id, "not handed over to another gateway: %s", why);
    fe->cfg.takeover->answer(fe->cfg.takeover->ctx, q->reply, NULL, NULL, 0, why);
}

/* 1: keep waiting; 0: answered (or not ours). */
static int serve_request(struct wsfe *fe, struct treq *q, int64_t now)
{
    const struct wsfe_takeover *to = fe->cfg.takeover;
    struct tsess *s = table_find(fe->table, q->id);
    if (!s || !s->token[0] || !token_eq(q->q.token, s->token))
        return 0; /* not ours, or not the client's: no answer, like an unknown id */
    if (s->conn) {
        refuse(fe, q, "the session is attached to a connection on the gateway that holds it");
        return 0;
    }
    if (s->finishing) {
        refuse(fe, q, "the session is finishing (its client closed it)");
        return 0;
    }
    void *bs = chan_backend_session(s->chan);
    struct gwtake_state st = {0};
    int still = !chan_pending_bytes(s->chan) && !chan_done(s->chan) && !to->freeze(bs, &st);
    if (still && st.sent_bytes != s->audio_bytes) { /* audio on its way to the backend */
        to->thaw(bs);
        still = 0;
    }
    if (!still) {
        if (now < q->deadline)
            return 1;
        refuse(fe, q, "the session did not come to rest in time (audio or results in flight)");
        return 0;
    }
    char why[300];
    struct tsess *got;
    if (table_resume(fe->table, q->id, q->q.token, q->q.last_seq, q->q.audio_bytes, &got, why,
                     sizeof why)) {
        if (table_find(fe->table, q->id) == s)
            to->thaw(bs);
        refuse(fe, q, why);
        return 0;
    }
    size_t n = 0;
    for (const struct chan_msg *m = s->hist.head; m; m = m->next)
        n += m->ev && (int64_t)m->seq > q->q.last_seq;
    const struct hark_event **ev = hark_calloc(n ? n : 1, sizeof *ev);
    const char **kv = options_text(wsess_options(s));
    if (!ev || !kv) {
        hark_free(ev);
        options_free(kv);
        to->thaw(bs);
        refuse(fe, q, "out of memory");
        return 0;
    }
    n = 0;
    for (const struct chan_msg *m = s->hist.head; m; m = m->next)
        if (m->ev && (int64_t)m->seq > q->q.last_seq)
            ev[n++] = m->ev;
    st.audio_bytes = s->audio_bytes;
    st.options = kv;
    to->answer(to->ctx, q->reply, &st, ev, n, NULL);
    LOG_INFO(q->id,
             "session handed over to another gateway (client saw seq %lld; %zu events, next seq "
             "%llu, %llu audio bytes)",
             (long long)q->q.last_seq, n, (unsigned long long)st.next_seq,
             (unsigned long long)st.audio_bytes);
    hark_free(ev);
    options_free(kv);
    table_end(fe->table, s); /* frozen: no end goes to the worker, whose session goes on */
    return 0;
}

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct wstake *t = lws_container_of(sul, struct wstake, sul);
    wstake_service(t->fe);
}

void wstake_service(struct wsfe *fe)
{
    struct wstake *t = fe->take;
    if (!t)
        return;
    t->fe = fe;
    pthread_mutex_lock(&t->mu);
    struct treq *in = t->in;
    struct tdone *done = t->done;
    t->in = NULL;
    t->n_in = 0;
    t->done = NULL;
    pthread_mutex_unlock(&t->mu);
    int64_t now = clock_mono_ns();
    while (in) {
        struct treq *q = in;
        in = q->next;
        q->deadline = now + (int64_t)TAKE_HOLD_MS * 1000000;
        q->next = t->pending;
        t->pending = q;
    }
    const struct wsfe_takeover *to = fe->cfg.takeover;
    while (done) {
        struct tdone *d = done;
        done = d->next;
        struct wsconn *c = fe->conns;
        while (c && strcmp(c->taking, d->id))
            c = c->next;
        if (c)
            drive_taken(c, d->r && d->r->ok ? d->r : NULL,
                        d->r ? (d->r->ok ? "" : d->r->error) : d->why);
        else
            LOG_INFO(d->id, "handed over, but its client went away meanwhile");
        to->take_cancel(to->ctx, d->id); /* unless the session adopted it */
        to->reply_free(d->r);
        hark_free(d);
    }
    for (struct treq **pp = &t->pending; *pp;) {
        struct treq *q = *pp;
        if (serve_request(fe, q, now)) {
            pp = &q->next;
        } else {
            *pp = q->next;
            hark_free(q);
        }
    }
    if (t->pending)
        lws_sul_schedule(fe->ctx, 0, &t->sul, retry_cb, TAKE_RETRY_US);
}
