/*
 * The NATS worker edge: seed 004's protocol on top of the session core.
 * See natsw.h for the threads and docs/nats.md for the wire format.
 *
 * Per session id there is one struct nsess, the front end's bookkeeping
 * (timers, duplicate detection), in the session host's table
 * (host/table.h, the same table as the WebSocket sessions'), which owns the
 * chan that runs the session; the chan is structured (host/chan.h): the
 * workers copy the events, the pump renders and publishes them. The session
 * rules are host/limits.h's, admission host/admit.h's and the session
 * metrics host/stats.h's, as for WebSocket sessions.
 *
 * The front end is four files sharing natsw_state.h: this one (create,
 * connection events, presence probe, publish, destroy), nin.c (input),
 * npump.c (the pump thread) and nsess.c (one session's bookkeeping and
 * render).
 */
#include "front/nats/natsw.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/nats/natsw_state.h"
#include "front/nats/nconn.h"
#include "host/table.h"

/* ------------------------------------------------------------ publishing */

void natsw_publish(struct natsw *nw, const char *subject, const void *data, size_t len)
{
    natsStatus st = natsConnection_Publish(nw->nc, subject, data, (int)len);
    if (st != NATS_OK) {
        /* while reconnecting publishes are buffered (8 MB); this is past that */
        unsigned long long n = atomic_fetch_add(&nw->publish_failed, 1) + 1;
        if (n <= 10 || n % 1000 == 0)
            LOG_WARN(NULL, "publish on %s failed: %s (%llu failed so far)", subject,
                     natsStatus_GetText(st), n);
    }
}

/* ------------------------------------------------------------ connection events */

static void on_disconnected(natsConnection *nc, void *closure)
{
    struct natsw *nw = closure;
    atomic_store(&nw->connected, 0);
    metrics_set(nw->m_connected, 0);
    if (nw->stop_requested) /* our own close at shutdown */
        LOG_DEBUG(NULL, "disconnected from NATS");
    else
        LOG_WARN(NULL, "disconnected from NATS; reconnecting (results are buffered meanwhile)");
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    struct natsw *nw = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_store(&nw->connected, 1);
    metrics_set(nw->m_connected, 1);
    LOG_INFO(NULL, "reconnected to NATS at %s; subscriptions restored", url);
}

static void on_connected(natsConnection *nc, void *closure)
{
    struct natsw *nw = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    atomic_store(&nw->connected, 1);
    metrics_set(nw->m_connected, 1);
    LOG_INFO(NULL, "connected to NATS at %s", url);
}

static void on_closed(natsConnection *nc, void *closure)
{
    struct natsw *nw = closure;
    atomic_store(&nw->connected, 0);
    metrics_set(nw->m_connected, 0);
    LOG_DEBUG(NULL, "NATS connection closed");
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus st, void *closure)
{
    int64_t dropped = 0;
    if (sub)
        natsSubscription_GetDropped(sub, &dropped);
    if (st == NATS_SLOW_CONSUMER)
        LOG_ERROR(NULL,
                  "NATS slow consumer: incoming messages dropped (%lld so far); the worker cannot "
                  "keep up with the message rate",
                  (long long)dropped);
    else
        LOG_ERROR(NULL, "NATS error: %s", natsStatus_GetText(st));
}

/* ------------------------------------------------------------ presence */

static int nats_fail(char *err, size_t n, const char *what, natsStatus st)
{
    return err_set(err, n, st == NATS_NO_MEMORY ? HARK_E_NOMEM : HARK_E_IO, "%s: %s", what,
                   natsStatus_GetText(st));
}

/* Two workers on the same subjects both receive every message: each runs
 * every session and every result is published twice (docs/nats.md "Several
 * workers"). Every worker answers a probe on a subject derived from its
 * input prefix (outside {subject_in}.*, so never a session id); a starting
 * worker asks and refuses to start when another answers. The responder is
 * subscribed before asking, so two workers starting together see each
 * other (and both refuse). */
#define PROBE_MS 750

static void on_presence(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct natsw *nw = closure;
    const char *reply = natsMsg_GetReply(msg);
    int len = natsMsg_GetDataLength(msg);
    const char *who = natsMsg_GetData(msg);
    if (reply && !(len == (int)strlen(nw->instance) && !memcmp(who, nw->instance, (size_t)len))) {
        LOG_WARN(NULL,
                 "another hark (%.*s) is starting on %s.*: it refuses to start unless given "
                 "--allow-shared-subjects, in which case every result is published twice",
                 len, who ? who : "", nw->subj_in);
        natsConnection_PublishString(nc, reply, nw->instance);
    }
    natsMsg_Destroy(msg);
}

static int probe_presence(struct natsw *nw, char *err, size_t n)
{
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(nw->instance, sizeof nw->instance, "hark worker pid %ld on %s", (long)getpid(), host);
    snprintf(nw->presence_subject, sizeof nw->presence_subject, "_HARK.presence.%s", nw->subj_in);
    natsStatus st =
        natsConnection_Subscribe(&nw->presence, nw->nc, nw->presence_subject, on_presence, nw);
    if (st != NATS_OK)
        return nats_fail(err, n, "cannot subscribe", st);
    if (!atomic_load(&nw->connected)) {
        LOG_WARN(NULL,
                 "not connected to NATS: cannot check now whether another worker serves %s.*; "
                 "a worker started later will find this one",
                 nw->subj_in);
        return 0;
    }
    natsInbox *inbox = NULL;
    natsSubscription *replies = NULL;
    char other[200] = "";
    st = natsInbox_Create(&inbox);
    if (st == NATS_OK)
        st = natsConnection_SubscribeSync(&replies, nw->nc, inbox);
    if (st == NATS_OK)
        st = natsConnection_FlushTimeout(nw->nc, 2000); /* our responder is in place */
    if (st == NATS_OK)
        st = natsConnection_PublishRequestString(nw->nc, nw->presence_subject, inbox, nw->instance);
    int64_t end = clock_mono_ns() + PROBE_MS * 1000000LL;
    while (st == NATS_OK && !other[0]) {
        int64_t left = (end - clock_mono_ns()) / 1000000;
        natsMsg *m = NULL;
        if (left <= 0 || natsSubscription_NextMsg(&m, replies, left) != NATS_OK)
            break;
        int len = natsMsg_GetDataLength(m);
        if (!(len == (int)strlen(nw->instance) &&
              !memcmp(natsMsg_GetData(m), nw->instance, (size_t)len)))
            snprintf(other, sizeof other, "%.*s", len, natsMsg_GetData(m));
        natsMsg_Destroy(m);
    }
    natsSubscription_Destroy(replies);
    natsInbox_Destroy(inbox);
    if (st != NATS_OK)
        return nats_fail(err, n, "cannot probe for other workers", st);
    if (!other[0])
        return 0;
    if (nw->cfg.allow_shared_subjects) {
        LOG_WARN(
            NULL,
            "another hark (%s) already serves %s.*; starting anyway (--allow-shared-subjects): "
            "both run every session and every result is published twice",
            other, nw->subj_in);
        return 0;
    }
    return err_set(err, n, HARK_E_STATE,
                   "another hark (%s) already serves %s.*: both would run every session and "
                   "publish every result twice. Give each worker its own subjects: partition them "
                   "with a nats-server subject mapping and one --nats-subject-in per worker "
                   "(docs/nats.md, \"Several workers\"); or pass --allow-shared-subjects to start "
                   "anyway",
                   other, nw->subj_in);
}

/* ------------------------------------------------------------ lifecycle */

static int connect_nats(struct natsw *nw, char *err, size_t n)
{
    const struct nconn_cbs cbs = {
        .connected = on_connected,
        .disconnected = on_disconnected,
        .reconnected = on_reconnected,
        .closed = on_closed,
        .error = on_async_error,
        .user = nw,
    };
    int rc = nconn_open(&nw->nc, nw->url, nw->name, "nats-url", &cbs, err, n);
    if (rc)
        return rc;
    if (nw->cfg.external_input)
        return 0; /* JetStream (jsw.h): ownership by leases, input by natsw_feed */
    if ((rc = probe_presence(nw, err, n)))
        return rc;
    char subject[300];
    snprintf(subject, sizeof subject, "%s.*", nw->subj_in);
    natsStatus st = natsConnection_Subscribe(&nw->sub, nw->nc, subject, nin_on_msg, nw);
    if (st != NATS_OK)
        return nats_fail(err, n, "cannot subscribe", st);
    /* Incoming messages beyond these limits are dropped by nats.c (slow
     * consumer, logged); the callback only parses and queues, so reaching
     * them means the machine cannot keep up at all. */
    int bytes_limit =
        (int)(nw->cfg.max_message_bytes * 64 > 256u << 20 ? 256u << 20
                                                          : nw->cfg.max_message_bytes * 64);
    if (bytes_limit < 64 << 20)
        bytes_limit = 64 << 20;
    natsSubscription_SetPendingLimits(nw->sub, 65536, bytes_limit);
    if (atomic_load(&nw->connected))
        natsConnection_FlushTimeout(nw->nc, 2000); /* the server has our SUB */
    LOG_INFO(NULL, "subscribed to %s; results on %s.{session_id}", subject, nw->subj_out);
    return 0;
}

int natsw_create(struct natsw **out, const struct natsw_cfg *cfg, struct hark_engine *eng,
                 struct workers *pool, char *err, size_t n)
{
    *out = NULL;
    if (!cfg->url || !*cfg->url || !cfg->subject_in || !*cfg->subject_in || !cfg->subject_out ||
        !*cfg->subject_out)
        return err_set(err, n, HARK_E_INVAL,
                       "NATS front end needs a URL and both subject prefixes");
    if (strpbrk(cfg->subject_in, "*> \t") || strpbrk(cfg->subject_out, "*> \t") ||
        strlen(cfg->subject_in) > 200 || strlen(cfg->subject_out) > 200)
        return err_set(err, n, HARK_E_INVAL,
                       "subject prefixes must be plain NATS subjects without wildcards or spaces, "
                       "at most 200 bytes (got '%s' and '%s')",
                       cfg->subject_in, cfg->subject_out);
    struct natsw *nw = hark_calloc(1, sizeof *nw);
    if (!nw)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    nw->cfg = *cfg;
    buf_init(&nw->scratch);
    nw->eng = eng;
    nw->pool = pool;
    nw->limits = (struct limits_cfg){
        .idle_timeout = cfg->idle_timeout,
        .max_session_seconds = cfg->max_session_seconds,
        .shutdown_timeout = cfg->shutdown_timeout,
    };
    pthread_mutex_init(&nw->mu, NULL);
    pthread_mutex_init(&nw->wmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&nw->wcv, &ca);
    pthread_condattr_destroy(&ca);
    int rc = 0;
    nw->url = hark_strdup(cfg->url);
    nw->subj_in = hark_strdup(cfg->subject_in);
    nw->subj_out = hark_strdup(cfg->subject_out);
    nw->name = cfg->name ? hark_strdup(cfg->name) : NULL;
    /* NATS sessions do not resume (a session id is its address): no window */
    struct table_cfg tc = {.ended_cb = nsess_ended_cb, .user = nw};
    if (!nw->url || !nw->subj_in || !nw->subj_out || (cfg->name && !nw->name) ||
        table_create(&nw->table, &tc) || hark_options_copy(&nw->defaults, cfg->defaults)) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto fail;
    }
    struct metrics *mx = cfg->metrics;
    nw->m_msgs =
        metrics_counter(mx, "hark_nats_messages_total", "NATS messages received", NULL, NULL);
    nw->m_connected =
        metrics_gauge(mx, "hark_nats_connected", "1 while connected to a NATS server", NULL, NULL);
    nw->m_gaps = metrics_counter(mx, "hark_nats_audio_gaps_total",
                                 "Gaps in NATS sessions' audio (chunk timestamps jumped past "
                                 "--audio-gap-threshold): audio lost or never sent",
                                 NULL, NULL);
    nw->m_gap_seconds = metrics_counter(mx, "hark_nats_audio_gap_seconds_total",
                                        "Seconds of audio missing in those gaps", NULL, NULL);
    stats_init(&nw->stats, mx);
    if ((rc = connect_nats(nw, err, n)))
        goto fail;
    if (pthread_create(&nw->pump, NULL, npump_main, nw)) {
        rc = err_set(err, n, HARK_E_INTERNAL, "cannot start the NATS pump thread");
        goto fail;
    }
    nw->pump_started = 1;
    *out = nw;
    return 0;
fail:
    natsw_destroy(nw);
    return rc;
}

void natsw_stop(struct natsw *nw)
{
    nw->stop_requested = 1; /* the pump sees it within one tick */
}

void natsw_wait(struct natsw *nw)
{
    if (nw->pump_started) {
        pthread_join(nw->pump, NULL);
        nw->pump_started = 0;
    }
}

void natsw_set_hooks(struct natsw *nw, const struct natsw_hooks *h)
{
    pthread_mutex_lock(&nw->mu);
    nw->hooks = *h;
    pthread_mutex_unlock(&nw->mu);
}

void natsw_feed(struct natsw *nw, const char *id, const void *data, size_t len,
                uint64_t owner_epoch, const struct natsw_resume *resume, struct natsw_fed *fed)
{
    *fed = (struct natsw_fed){.type = -1};
    nin_handle(nw, id, data, len, owner_epoch, resume, fed);
}

void natsw_abandon(struct natsw *nw, const char *id)
{
    pthread_mutex_lock(&nw->mu);
    struct nsess *s = nsess_find(nw, id);
    if (s) {
        /* Out of the table now: its queued audio is dropped with the chan,
         * and what it rendered already is not published (silent). */
        atomic_store(&s->silent, 1);
        LOG_INFO(id, "session handed over to another worker: stopped here");
        table_end(nw->table, s->ts);
    }
    pthread_mutex_unlock(&nw->mu);
}

struct __natsConnection *natsw_conn(struct natsw *nw)
{
    return nw->nc;
}

int natsw_connected(struct natsw *nw)
{
    return atomic_load(&nw->connected);
}

const char *natsw_not_ready(struct natsw *nw)
{
    if (!natsw_connected(nw))
        return "not connected to NATS\n";
    pthread_mutex_lock(&nw->mu);
    struct natsw_hooks h = nw->hooks;
    pthread_mutex_unlock(&nw->mu);
    return h.not_ready ? h.not_ready(h.user) : NULL;
}

void natsw_destroy(struct natsw *nw)
{
    if (!nw)
        return;
    if (nw->pump_started) { /* not stopped properly: stop now */
        natsw_stop(nw);
        natsw_wait(nw);
    }
    nw->stop_requested = 1; /* our own close below: no "disconnected" warning */
    if (nw->hooks.destroy)
        nw->hooks.destroy(nw->hooks.user);
    if (nw->sub)
        natsSubscription_Destroy(nw->sub);
    if (nw->presence)
        natsSubscription_Destroy(nw->presence);
    if (nw->nc) {
        natsConnection_Close(nw->nc);
        natsConnection_Destroy(nw->nc);
    }
    /* nats.c may still run a callback after Destroy returns (its issue
     * #735); wait until its threads are gone before freeing the closure. */
    nats_CloseAndWait(2000);
    table_destroy(nw->table); /* ends what is left (natsw_wait left nothing) */
    while (nw->finished) {
        struct nsess *s = nw->finished;
        nw->finished = s->fin_next;
        nsess_free(s);
    }
    hark_options_destroy(nw->defaults);
    hark_free(nw->url);
    hark_free(nw->subj_in);
    hark_free(nw->subj_out);
    hark_free(nw->name);
    pthread_cond_destroy(&nw->wcv);
    pthread_mutex_destroy(&nw->wmu);
    pthread_mutex_destroy(&nw->mu);
    buf_deinit(&nw->scratch);
    hark_free(nw);
}
