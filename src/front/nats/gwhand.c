/*
 * The hand-over of detached sessions between gateways (gwhand.h): the NATS
 * half, beside natsgw.c's sessions. The front end holds the sessions' table
 * and decides (src/front/ws/wstake.c); this relays.
 *
 * A detached session moves between gateways with no new stream: the taker
 * subscribes to the session's results FIRST (queueing them), then asks on
 * {subject_out}.take.{id}; the holder stops delivering, answers with the
 * session's state and held events and the hash of the last worker message
 * it delivered, and frees its copy without an end, so the worker's session
 * goes on. The taker drops its queued messages up to that one (both
 * subscriptions see the worker's messages in its order on one server), so
 * results in flight are neither lost nor doubled. No holder, a wrong token,
 * an attached session: no ok answer within TAKE_TIMEOUT_MS, resume_failed.
 */
#include "front/nats/gwhand.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/nats/gwsess.h"
#include "front/nats/gwtake.h"

#define TAKE_TIMEOUT_MS 2000

void gwhand_set(struct natsgw *g, const struct gwhand_cbs *cbs)
{
    pthread_mutex_lock(&g->mu);
    if (cbs)
        g->take = *cbs;
    else
        memset(&g->take, 0, sizeof g->take);
    pthread_mutex_unlock(&g->mu);
}

/* {subject_out}.take.{id} (nats.c's thread): the front end answers if it
 * holds the session detached, else nobody does. */
static void on_take(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    struct natsgw *g = closure;
    const char *subj = natsMsg_GetSubject(msg), *reply = natsMsg_GetReply(msg);
    size_t pre = strlen(g->subj_out) + strlen(".take.");
    const char *id = strlen(subj) > pre ? subj + pre : "";
    int n = natsMsg_GetDataLength(msg);
    struct gwtake_req q;
    char err[300];
    if (!reply || !*reply || !nmsg_id_ok(id)) {
        metrics_inc(g->m_bad);
    } else if (gwtake_parse_request(&q, natsMsg_GetData(msg), n > 0 ? (size_t)n : 0, err,
                                    sizeof err)) {
        metrics_inc(g->m_bad);
        LOG_WARN(id, "take request dropped: %s", err);
    } else {
        pthread_mutex_lock(&g->mu);
        if (g->take.request)
            g->take.request(g->take.user, id, &q, reply);
        pthread_mutex_unlock(&g->mu);
    }
    natsMsg_Destroy(msg);
}

static void on_take_sub_done(void *closure)
{
    struct natsgw *g = closure;
    pthread_mutex_lock(&g->mu);
    g->subs--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

int gwhand_subscribe(struct natsgw *g, char *err, size_t n)
{
    char subject[300];
    snprintf(subject, sizeof subject, "%s.take.*", g->subj_out);
    natsStatus st = natsConnection_Subscribe(&g->take_sub, g->nc, subject, on_take, g);
    if (st == NATS_OK)
        st = natsSubscription_SetOnCompleteCB(g->take_sub, on_take_sub_done, g);
    if (st != NATS_OK) {
        natsSubscription_Destroy(g->take_sub);
        g->take_sub = NULL;
        return err_set(err, n, HARK_E_IO, "cannot subscribe to %s: %s", subject,
                       natsStatus_GetText(st));
    }
    pthread_mutex_lock(&g->mu);
    g->subs++;
    pthread_mutex_unlock(&g->mu);
    return 0;
}

struct take_job {
    struct natsgw *g;
    char id[NMSG_ID_MAX];
    struct buf req;
};

static struct gsess *preparing(struct natsgw *g, const char *id)
{
    for (struct gsess *s = g->all; s; s = s->next)
        if (s->adopt && !strcmp(s->id, id))
            return s;
    return NULL;
}

/* The request and its answer: a thread of its own for the (bounded) wait,
 * one per resume in progress. */
static void *take_main(void *arg)
{
    struct take_job *j = arg;
    struct natsgw *g = j->g;
    char subject[300], why[300] = "";
    snprintf(subject, sizeof subject, "%s.take.%s", g->subj_out, j->id);
    natsMsg *reply = NULL;
    struct gwtake_reply *r = NULL;
    natsStatus st = j->req.oom ? NATS_NO_MEMORY
                               : natsConnection_Request(&reply, g->nc, subject, j->req.data,
                                                        (int)j->req.len, TAKE_TIMEOUT_MS);
    if (st != NATS_OK) {
        snprintf(why, sizeof why,
                 "no gateway holds the session detached (no answer within %d ms: %s)",
                 TAKE_TIMEOUT_MS, natsStatus_GetText(st));
    } else if (!(r = hark_calloc(1, sizeof *r))) {
        snprintf(why, sizeof why, "out of memory");
    } else {
        int n = natsMsg_GetDataLength(reply);
        if (gwtake_parse_reply(r, natsMsg_GetData(reply), n > 0 ? (size_t)n : 0, why, sizeof why)) {
            metrics_inc(g->m_bad);
            gwtake_reply_free(r);
            hark_free(r);
            r = NULL;
        }
    }
    natsMsg_Destroy(reply);
    pthread_mutex_lock(&g->mu);
    struct gsess *s = preparing(g, j->id);
    if (r && r->ok && s) {
        s->from = r->st;
        s->from.options = NULL;
        s->adopt = 2;
    }
    if (g->take.taken) {
        g->take.taken(g->take.user, j->id, r, why);
    } else {
        gwtake_reply_free(r);
        hark_free(r);
    }
    g->takes--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    buf_deinit(&j->req);
    hark_free(j);
    return NULL;
}

int gwhand_take(struct natsgw *g, const char *id, const struct gwtake_req *q, char *err, size_t n)
{
    if (!atomic_load(&g->connected))
        return err_set(err, n, HARK_E_BUSY, "not connected to NATS");
    if (!nmsg_id_ok(id))
        return err_set(err, n, HARK_E_RESUME_FAILED, "no session with that id");
    struct gsess *s = hark_calloc(1, sizeof *s);
    struct take_job *j = hark_calloc(1, sizeof *j);
    size_t sl = strlen(g->subj_in) + 1 + strlen(id) + 1;
    if (s)
        s->subject = hark_malloc(sl);
    if (!s || !j || !s->subject) {
        if (s)
            hark_free(s->subject);
        hark_free(s);
        hark_free(j);
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    }
    s->g = g;
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->subject, sl, "%s.%s", g->subj_in, id);
    s->adopt = 1;
    s->started = 1;
    s->t_start = s->t_heard = s->t_ka = clock_mono_ns();
    pthread_mutex_lock(&g->mu);
    if (natsgw_running(g, id)) {
        pthread_mutex_unlock(&g->mu);
        hark_free(s->subject);
        hark_free(s);
        hark_free(j);
        return err_set(err, n, HARK_E_STATE, "a session with this id is here already");
    }
    natsgw_add(g, s);
    pthread_mutex_unlock(&g->mu);
    int rc = natsgw_subscribe(g, s, err, n); /* first: nothing the holder misses is lost */
    if (rc) {
        pthread_mutex_lock(&g->mu);
        natsgw_del(g, s);
        pthread_mutex_unlock(&g->mu);
        hark_free(s->subject);
        hark_free(s);
        hark_free(j);
        return rc;
    }
    j->g = g;
    snprintf(j->id, sizeof j->id, "%s", id);
    buf_init(&j->req);
    gwtake_render_request(&j->req, q);
    pthread_attr_t at;
    pthread_t t;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&g->mu);
    g->takes++;
    pthread_mutex_unlock(&g->mu);
    if (pthread_create(&t, &at, take_main, j)) {
        pthread_attr_destroy(&at);
        pthread_mutex_lock(&g->mu);
        g->takes--;
        pthread_mutex_unlock(&g->mu);
        buf_deinit(&j->req);
        hark_free(j);
        gwhand_cancel(g, id);
        return err_set(err, n, HARK_E_INTERNAL, "cannot start a thread");
    }
    pthread_attr_destroy(&at);
    return 0;
}

void gwhand_cancel(struct natsgw *g, const char *id)
{
    pthread_mutex_lock(&g->mu);
    struct gsess *s = preparing(g, id);
    pthread_mutex_unlock(&g->mu);
    if (!s)
        return;
    struct gitem *it = natsgw_release(s); /* no end: the worker's session is not ours */
    while (it) {
        struct gitem *next = it->next;
        gwsess_item_free(it);
        it = next;
    }
}

int gwhand_freeze(void *bs, struct gwtake_state *st)
{
    struct gsess *s = bs;
    struct natsgw *g = s->g;
    pthread_mutex_lock(&g->mu);
    int ready = !s->head && !s->polling && !s->finished && atomic_load(&s->backlog) == 0;
    if (ready) {
        atomic_store(&s->frozen, 1);
        /* the worker thread's, quiet now: it delivers nothing while frozen,
         * and its last poll ended under this lock */
        st->next_seq = s->seq;
        st->sent_bytes = atomic_load(&s->sent_bytes);
        st->results_end = s->results_end;
        st->worker_next = (uint64_t)s->worker_next;
        st->worker_epoch = (uint64_t)s->worker_epoch;
        st->t0 = s->t0;
        st->last_msg = s->last_hash;
    }
    pthread_mutex_unlock(&g->mu);
    return ready ? 0 : 1;
}

void gwhand_thaw(void *bs)
{
    struct gsess *s = bs;
    struct natsgw *g = s->g;
    pthread_mutex_lock(&g->mu);
    atomic_store(&s->frozen, 0);
    if (s->head && s->notify)
        s->notify(s->notify_user);
    pthread_mutex_unlock(&g->mu);
}

void gwhand_answer(struct natsgw *g, const char *reply, const struct gwtake_state *st,
                   const struct hark_event *const *events, size_t n_events, const char *why)
{
    struct buf b;
    buf_init(&b);
    if (why)
        gwtake_render_refusal(&b, why);
    else
        gwtake_render_reply(&b, st, events, n_events);
    natsStatus s =
        b.oom ? NATS_NO_MEMORY : natsConnection_Publish(g->nc, reply, b.data, (int)b.len);
    if (s != NATS_OK)
        LOG_WARN(NULL, "take answer not sent: %s", natsStatus_GetText(s));
    else if (!why)
        metrics_inc(g->m_handed);
    buf_deinit(&b);
}

void gwhand_stop(struct natsgw *g)
{
    gwhand_set(g, NULL);
    pthread_mutex_lock(&g->mu);
    for (int i = 0; g->takes > 0 && i < TAKE_TIMEOUT_MS / 100 + 10; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    pthread_mutex_unlock(&g->mu);
    if (g->take_sub) {
        natsSubscription_Unsubscribe(g->take_sub); /* on_take_sub_done follows */
        natsSubscription_Destroy(g->take_sub);
        g->take_sub = NULL;
    }
}
