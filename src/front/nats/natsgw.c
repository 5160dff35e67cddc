/*
 * The NATS session backend of `hark serve --backend` (natsgw.h): sessions
 * relayed to `hark worker`s, their results turned back into hark_events.
 *
 * Each session subscribes to its own {subject_out}.{id}, with the session as
 * the closure: the server routes results to the gateway that holds the
 * session, and the gateway needs no map of its own from id to session (the
 * sessions' table is the host's, src/host/table.h, through the chan). It
 * used to subscribe to {subject_out}.* and look every result up in a hash:
 * with N gateways each received and dropped the results of the other N-1.
 * The cost is a SUB and an UNSUB per session (a line each on the
 * connection) and the callbacks' lifetime: nats.c's on-complete callback
 * says when the last one returned, and only then is the session freed. The
 * callbacks run on nats.c's shared delivery pool (a thread per subscription
 * otherwise), which keeps each subscription's order. The list of sessions
 * that remains is the timer's (timeouts, keepalives), scanned, never looked
 * up by id except for the duplicate check at a start.
 *
 * Pacing: core NATS has no back-pressure, and a worker refuses chunks past
 * its --session-buffer-bytes (limit_exceeded: the audio is lost). So the
 * gateway keeps at most `window` bytes of audio that the worker has not yet
 * taken off its queue in flight; the worker's answer to a keepalive says
 * how far it got (received - queued). Audio beyond the window waits in the
 * session's outgoing queue, which chan_pending_bytes counts, so the front
 * end stops reading the client (WebSocket rx flow control, batch upload
 * pause) exactly as it does when a local session falls behind.
 *
 * A detached session's hand-over to another gateway (a resume there) is
 * gwhand.c's.
 */
#include "front/nats/natsgw.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/nats/gwsess.h"
#include "front/nats/nconn.h"

#define TICK_MS 100

/* ------------------------------------------------------------ sessions */

int natsgw_running(struct natsgw *g, const char *id)
{
    for (struct gsess *s = g->all; s; s = s->next)
        if (!strcmp(s->id, id))
            return 1;
    return 0;
}

struct gsess *natsgw_adoptable(struct natsgw *g, const char *id)
{
    for (struct gsess *s = g->all; s; s = s->next)
        if (s->adopt == 2 && !strcmp(s->id, id))
            return s;
    return NULL;
}

void natsgw_add(struct natsgw *g, struct gsess *s)
{
    s->prev = NULL;
    s->next = g->all;
    if (g->all)
        g->all->prev = s;
    g->all = s;
}

void natsgw_del(struct natsgw *g, struct gsess *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        g->all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void gsess_free(struct gsess *s)
{
    hark_free(s->subject);
    hark_free(s);
}

/* A reference goes (under g->mu); 1 when it was the last: free s after the
 * unlock. */
static int unref_locked(struct gsess *s)
{
    return --s->refs == 0;
}

/* ------------------------------------------------------------ queue (under g->mu) */

static void queue(struct gsess *s, struct gitem *it)
{
    it->next = NULL;
    if (s->tail)
        s->tail->next = it;
    else
        s->head = it;
    s->tail = it;
    s->queued_bytes += it->cost;
}

static void queue_closed(struct gsess *s)
{
    struct gitem *c = hark_calloc(1, sizeof *c);
    s->finished = 1;
    if (c) {
        c->r.kind = NRES_CLOSED;
        c->synthetic_closed = 1;
        c->cost = sizeof *c;
        queue(s, c);
    }
}

/* The session ends here: a typed error, then CLOSED (no worker will send
 * one). Under g->mu. */
static void fail_locked(struct gsess *s, int code, const char *fmt, ...) HARK_PRINTF(3, 4);

static void fail_locked(struct gsess *s, int code, const char *fmt, ...)
{
    if (s->finished)
        return;
    struct gitem *e = hark_calloc(1, sizeof *e);
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->r.kind = NRES_ERROR;
        e->r.code = code;
        e->cost = sizeof *e;
        LOG_WARN(s->id, "%s: %s", hark_err_code(code), e->msg);
        queue(s, e);
    }
    queue_closed(s);
    if (s->notify)
        s->notify(s->notify_user);
}

/* ------------------------------------------------------------ results (delivery thread) */

/* 64-bit FNV-1a: what identifies a worker's message between two gateways
 * (its bytes carry its sequence or its time; never 0 here). */
static uint64_t msg_hash(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h ? h : 1;
}

static void handle(struct natsgw *g, struct gsess *s, const void *data, size_t len)
{
    struct gitem *it = hark_calloc(1, sizeof *it);
    char err[300];
    if (!it)
        return;
    it->hash = msg_hash(data, len);
    if (nres_parse(&it->r, data, len, err, sizeof err)) {
        metrics_inc(g->m_bad);
        LOG_WARN(s->id, "result message dropped: %s", err);
        hark_free(it);
        return;
    }
    it->cost = sizeof *it + len * 2;
    pthread_mutex_lock(&g->mu);
    if (s->gone || s->finished) {
        pthread_mutex_unlock(&g->mu);
        gwsess_item_free(it);
        return;
    }
    s->t_heard = clock_mono_ns();
    enum nres_kind k = it->r.kind;
    if (k == NRES_ALIVE) {
        /* what the worker took off its queue: the pacing window moves */
        int64_t c = it->r.received_bytes - it->r.queued_bytes;
        if (c < 0)
            c = 0;
        if ((uint64_t)c >= s->consumed) {
            s->consumed = (uint64_t)c;
        } else {
            /* the count went back: a worker that took the session over
             * (JetStream hand-off) counts from its replay, not from the
             * start. What it has not done is its queue; the rest waits in
             * the stream, not in a worker's buffer. */
            uint64_t sent = atomic_load(&s->sent_bytes), q = (uint64_t)it->r.queued_bytes;
            s->consumed = sent > q ? sent - q : 0;
        }
        s->ka_out = 0;
        if (atomic_load(&s->blocked) && s->notify)
            s->notify(s->notify_user); /* its poll pumps */
    }
    if (k == NRES_STARTED || k == NRES_OTHER || k == NRES_ALIVE) {
        s->started |= k == NRES_STARTED;
        pthread_mutex_unlock(&g->mu);
        gwsess_item_free(it);
        return;
    }
    int refused = k == NRES_ERROR && !s->started;
    int over = s->queued_bytes + it->cost > g->cfg.max_queued_bytes;
    if (over && k == NRES_RESULT && !it->r.is_final) {
        /* this gateway is behind: a later partial or the final supersedes it */
        pthread_mutex_unlock(&g->mu);
        gwsess_item_free(it);
        return;
    }
    if (over) {
        gwsess_item_free(it);
        fail_locked(s, HARK_E_LIMIT,
                    "more than %zu bytes of results waiting for this session: the gateway is "
                    "behind; session ended",
                    g->cfg.max_queued_bytes);
        pthread_mutex_unlock(&g->mu);
        return;
    }
    queue(s, it);
    if (k == NRES_CLOSED)
        s->finished = 1;
    else if (refused) /* the worker refused the start (a bad option, at capacity,
                         ...): it holds no session, so no closed will come */
        queue_closed(s);
    if (s->notify) /* none yet: taken from another gateway, not yet opened */
        s->notify(s->notify_user);
    pthread_mutex_unlock(&g->mu);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    struct gsess *s = closure; /* valid until on_sub_done */
    int n = natsMsg_GetDataLength(msg);
    handle(s->g, s, natsMsg_GetData(msg), n > 0 ? (size_t)n : 0);
    natsMsg_Destroy(msg);
}

/* The subscription's last callback has returned (nats.c's thread). */
static void on_sub_done(void *closure)
{
    struct gsess *s = closure;
    struct natsgw *g = s->g;
    pthread_mutex_lock(&g->mu);
    g->subs--;
    int last = unref_locked(s);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (last)
        gsess_free(s);
}

int natsgw_subscribe(struct natsgw *g, struct gsess *s, char *err, size_t n)
{
    char subject[300];
    snprintf(subject, sizeof subject, "%s.%s", g->subj_out, s->id);
    natsStatus st = natsConnection_Subscribe(&s->sub, g->nc, subject, on_msg, s);
    if (st == NATS_OK)
        st = natsSubscription_SetOnCompleteCB(s->sub, on_sub_done, s);
    if (st != NATS_OK) {
        if (s->sub) { /* no callback can be running yet: nothing was published */
            natsSubscription_Unsubscribe(s->sub);
            natsSubscription_Destroy(s->sub);
            s->sub = NULL;
        }
        return err_set(err, n, HARK_E_IO, "cannot subscribe to %s: %s", subject,
                       natsStatus_GetText(st));
    }
    pthread_mutex_lock(&g->mu);
    s->refs = 2;
    g->subs++;
    pthread_mutex_unlock(&g->mu);
    return 0;
}

struct gitem *natsgw_release(struct gsess *s)
{
    struct natsgw *g = s->g;
    pthread_mutex_lock(&g->mu);
    natsgw_del(g, s);
    s->gone = 1; /* under the lock: no notify or queueing after this */
    struct gitem *it = s->head;
    s->head = s->tail = NULL;
    pthread_mutex_unlock(&g->mu);
    natsSubscription_Unsubscribe(s->sub); /* on_sub_done follows, once */
    natsSubscription_Destroy(s->sub);
    pthread_mutex_lock(&g->mu);
    int last = unref_locked(s);
    pthread_mutex_unlock(&g->mu);
    if (last)
        gsess_free(s);
    return it;
}

/* ------------------------------------------------------------ timer thread */

static void tick(struct natsgw *g, int64_t now)
{
    int64_t tmo = (int64_t)g->cfg.timeout_ms * 1000000;
    int64_t ka = (int64_t)g->cfg.keepalive_ms * 1000000;
    if (ka > tmo / 3)
        ka = tmo / 3;
    for (struct gsess *s = g->all; s; s = s->next) {
        if (s->finished || s->adopt)
            continue;
        if (!s->started) {
            if (now - s->t_start > tmo) {
                metrics_inc(g->m_timeouts);
                fail_locked(s, HARK_E_TIMEOUT,
                            "no hark worker answered the session's start on %s within %d ms "
                            "(none running, or none reachable)",
                            g->subj_in, g->cfg.timeout_ms);
            }
            continue;
        }
        if (now - s->t_heard > tmo) {
            metrics_inc(g->m_timeouts);
            fail_locked(s, HARK_E_TIMEOUT,
                        "the hark worker stopped answering (nothing for %d ms: it stopped or is "
                        "unreachable); results of the audio after the last one are missing",
                        g->cfg.timeout_ms);
            continue;
        }
        /* A keepalive: the worker's answer proves it is there (while it
         * recognises, and after the end while the last finals are owed),
         * says how far it got through the audio (the pacing window), and
         * keeps its idle timeout from ending a session whose client pauses.
         * Sooner when the window fills. */
        uint64_t sent = atomic_load(&s->sent_bytes);
        uint64_t inflight = sent > s->consumed ? sent - s->consumed : 0;
        if (now - s->t_ka > ka ||
            (!s->ka_out && (atomic_load(&s->blocked) || inflight > g->window / 2))) {
            s->t_ka = now;
            s->ka_out = 1;
            struct buf b;
            buf_init(&b);
            nres_render_simple(&b, "keepalive");
            if (!b.oom)
                natsConnection_Publish(g->nc, s->subject, b.data, (int)b.len);
            buf_deinit(&b);
        }
    }
}

static void *timer_main(void *arg)
{
    struct natsgw *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        tick(g, clock_mono_ns());
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

void natsgw_backend(struct natsgw *g, struct backend *out)
{
    out->ops = &gwsess_ops;
    out->ctx = g;
}

/* ------------------------------------------------------------ connection */

static void on_connected(natsConnection *nc, void *closure)
{
    struct natsgw *g = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_store(&g->connected, 1);
    metrics_set(g->m_connected, 1);
    LOG_INFO(NULL, "gateway connected to NATS at %s", url);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    struct natsgw *g = closure;
    atomic_store(&g->connected, 0);
    metrics_set(g->m_connected, 0);
    if (!g->stop)
        LOG_WARN(NULL, "gateway disconnected from NATS; reconnecting (new sessions are refused "
                       "meanwhile)");
}

/* The last callback nats.c runs for the connection (after any
 * disconnected): natsgw_destroy waits for it before g and the metrics go. */
static void on_closed(natsConnection *nc, void *closure)
{
    (void)nc;
    struct natsgw *g = closure;
    pthread_mutex_lock(&g->mu);
    g->closed = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    LOG_WARN(NULL, "NATS: %s", natsStatus_GetText(err));
}

static int connect_nats(struct natsgw *g, char *err, size_t n)
{
    const struct nconn_cbs cbs = {
        .connected = on_connected,
        .disconnected = on_disconnected,
        .closed = on_closed,
        .error = on_async_error,
        .user = g,
        .shared_delivery = 1, /* a subscription per session */
    };
    int rc = nconn_open(&g->nc, g->url, g->name, "backend", &cbs, err, n);
    if (rc)
        return rc;
    LOG_INFO(NULL, "gateway: sessions go to %s.{session_id}, results from %s.{session_id}",
             g->subj_in, g->subj_out);
    return 0;
}

/* Every session's subscription has had its last callback (bounded: after
 * the connection's close nats.c completes them at once). */
/* Waits up to ms for the session subscriptions' last callbacks (and, with
 * closed, for the connection's closed callback); returns how many
 * subscriptions are left, or -1 when only the closed callback is missing. */
static int wait_subs_closed(struct natsgw *g, int ms, int closed)
{
    pthread_mutex_lock(&g->mu);
    for (int64_t end = clock_mono_ns() + (int64_t)ms * 1000000;
         g->subs > 0 || (closed && !g->closed);) {
        int64_t left = end - clock_mono_ns();
        if (left <= 0)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t step = left < 100000000 ? left : 100000000;
        ts.tv_nsec += (long)step;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    }
    int left = g->subs ? g->subs : closed && !g->closed ? -1 : 0;
    pthread_mutex_unlock(&g->mu);
    return left;
}

static int wait_subs(struct natsgw *g, int ms)
{
    return wait_subs_closed(g, ms, 0);
}

int natsgw_create(struct natsgw **out, const struct natsgw_cfg *cfg, char *err, size_t n)
{
    *out = NULL;
    struct natsgw *g = hark_calloc(1, sizeof *g);
    if (!g)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    g->cfg = *cfg;
    g->window = cfg->window_bytes ? cfg->window_bytes : 256 * 1024;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->url = hark_strdup(cfg->url);
    g->subj_in = hark_strdup(cfg->subject_in);
    g->subj_out = hark_strdup(cfg->subject_out);
    g->name = cfg->name ? hark_strdup(cfg->name) : NULL;
    int rc = 0;
    if (!g->url || !g->subj_in || !g->subj_out || (cfg->name && !g->name)) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto fail;
    }
    if (cfg->metrics) {
        g->m_connected = metrics_gauge(cfg->metrics, "hark_backend_connected",
                                       "1 while the gateway is connected to NATS", NULL, NULL);
        g->m_sessions = metrics_gauge(cfg->metrics, "hark_backend_sessions",
                                      "Sessions relayed to hark workers now", NULL, NULL);
        g->m_timeouts =
            metrics_counter(cfg->metrics, "hark_backend_timeouts_total",
                            "Sessions ended because no worker answered in time", NULL, NULL);
        g->m_bad = metrics_counter(cfg->metrics, "hark_backend_bad_messages_total",
                                   "Result messages from NATS that did not parse", NULL, NULL);
        g->m_handed = metrics_counter(
            cfg->metrics, "hark_backend_handed_over_total",
            "Detached sessions handed to another gateway for a resume (no end to the worker)", NULL,
            NULL);
        g->m_taken = metrics_counter(cfg->metrics, "hark_backend_taken_over_total",
                                     "Sessions resumed here that another gateway held", NULL, NULL);
        g->m_stale = metrics_counter(
            cfg->metrics, "hark_backend_stale_results_total",
            "Results dropped because their sequence number was already delivered (a copy from "
            "a session's previous worker)",
            NULL, NULL);
    }
    if ((rc = connect_nats(g, err, n)) || (rc = gwhand_subscribe(g, err, n)))
        goto fail;
    if (pthread_create(&g->timer, NULL, timer_main, g)) {
        rc = err_set(err, n, HARK_E_INTERNAL, "cannot start the gateway's timer thread");
        goto fail;
    }
    g->timer_started = 1;
    *out = g;
    return 0;
fail:
    natsgw_destroy(g);
    return rc;
}

int natsgw_connected(struct natsgw *g)
{
    return g && atomic_load(&g->connected);
}

void natsgw_destroy(struct natsgw *g)
{
    if (!g)
        return;
    pthread_mutex_lock(&g->mu);
    g->stop = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
    if (g->timer_started)
        pthread_join(g->timer, NULL);
    gwhand_stop(g); /* resumes asking: bounded by their timeout */
    if (g->nc && atomic_load(&g->connected))
        natsConnection_FlushTimeout(g->nc, 2000); /* the last ends go out */
    wait_subs(g, 2000);
    if (g->nc) {
        natsConnection_Close(g->nc);
        natsConnection_Destroy(g->nc);
    }
    /* A session's last callback holds g (its lock), and nats.c runs the
     * connection's disconnected and closed callbacks on its own thread
     * after Close returns (they touch g and its metrics, which the caller
     * frees next: a crash at shutdown before): g waits for all of them.
     * Should one never come, g is left behind rather than freed under it. */
    int left = wait_subs_closed(g, 5000, g->nc != NULL);
    if (left) {
        LOG_ERROR(NULL, "gateway: %s never completed; its memory is kept",
                  left > 0 ? "a session subscription" : "the NATS connection's close");
        return;
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    hark_free(g->url);
    hark_free(g->subj_in);
    hark_free(g->subj_out);
    hark_free(g->name);
    hark_free(g);
}
