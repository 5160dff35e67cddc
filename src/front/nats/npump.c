/*
 * The NATS front end's pump thread (natsw_state.h): woken by natsw_wake or
 * every TICK_MS, it takes the sessions' events, renders them (nsess_take)
 * and publishes them in order, runs the timers (chunk gap, idle, length)
 * and the shutdown drain, and retires finished sessions.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "host/admit.h"
#include "host/table.h"

#include "front/nats/natsw_state.h"

void natsw_wake(void *user)
{
    struct natsw *nw = user;
    pthread_mutex_lock(&nw->wmu);
    nw->wake_pending = 1;
    pthread_cond_signal(&nw->wcv);
    pthread_mutex_unlock(&nw->wmu);
}

static void wait_wake(struct natsw *nw)
{
    struct timespec until = clock_deadline(CLOCK_MONOTONIC, TICK_MS * 1000000LL);
    pthread_mutex_lock(&nw->wmu);
    while (!nw->wake_pending && !nw->stop_requested)
        if (pthread_cond_timedwait(&nw->wcv, &nw->wmu, &until))
            break;
    nw->wake_pending = 0;
    pthread_mutex_unlock(&nw->wmu);
}

static void begin_drain(struct natsw *nw)
{
    /* JetStream (jsw.h): stop taking input and hand the sessions over
     * first, so that no input is refused (and acknowledged) meanwhile. */
    if (nw->hooks.draining)
        nw->hooks.draining(nw->hooks.user);
    pthread_mutex_lock(&nw->mu);
    limits_drain_begin(&nw->drain, &nw->limits, nw->cfg.admit, clock_mono_ns());
    int n = table_count(nw->table);
    pthread_mutex_unlock(&nw->mu);
    LOG_INFO(NULL, "shutting down: no new sessions; finishing %d session(s)", n);
    /* A worker replacing this one (rolling restart) may start now. */
    if (nw->presence)
        natsSubscription_Unsubscribe(nw->presence);
    /* Messages already received are still processed; then no more arrive. */
    if (nw->sub) {
        if (atomic_load(&nw->connected) && natsSubscription_Drain(nw->sub) == NATS_OK)
            natsSubscription_WaitForDrainCompletion(nw->sub, 2000);
        else
            natsSubscription_Unsubscribe(nw->sub); /* not connected: just stop */
    }
    int code;
    char msg[160];
    limits_shutdown_msg(&code, msg, sizeof msg);
    pthread_mutex_lock(&nw->mu);
    for (struct tsess *t = table_first(nw->table); t; t = t->next) {
        struct nsess *s = t->user;
        if (!s->lim.closing)
            nsess_verdict(nw, s, LIMITS_SHUTDOWN, code, msg);
    }
    pthread_mutex_unlock(&nw->mu);
}

/* One pass: collect output, run timers, retire finished sessions. Returns 1
 * when the pump should exit (draining and nothing left). */
static int pump_once(struct natsw *nw)
{
    struct nsess *work = NULL, **work_tail = &work;
    int64_t now = clock_mono_ns();
    int exit_now = 0;
    pthread_mutex_lock(&nw->mu);
    int hold = nw->hooks.may_publish && !nw->hooks.may_publish(nw->hooks.user);
    for (struct tsess *t = table_first(nw->table), *next; t; t = next) {
        next = t->next;
        struct nsess *s = t->user;
        struct chan_msg *m = nsess_take(nw, s);
        for (struct chan_msg *i = m; i; i = i->next) {
            if (i->flags & MSG_LAST)
                s->done = 1;
            if (limits_event(&s->lim, i->flags) == LIMITS_FATAL)
                nsess_verdict(nw, s, LIMITS_FATAL, 0, NULL);
        }
        if (m) {
            if (s->out_tail)
                s->out_tail->next = m;
            else
                s->out_head = m;
            while (m->next)
                m = m->next;
            s->out_tail = m;
        }
        if (!s->lim.closing && s->chunk_timeout_ms && s->audio_since_finalize &&
            now - s->last_chunk >= (int64_t)s->chunk_timeout_ms * 1000000) {
            /* STT_CHUNK_TIMEOUT: the audio stopped coming; finish the
             * utterance now instead of waiting for more */
            s->audio_since_finalize = 0;
            chan_post_finalize(s->chan);
            LOG_DEBUG(s->id, "no chunk for %d ms: utterance finalized", s->chunk_timeout_ms);
        }
        int code;
        char msg[160];
        enum limits_verdict v =
            limits_tick(&nw->limits, &s->lim, s->chan, now, &code, msg, sizeof msg);
        if (v != LIMITS_OK) {
            LOG_INFO(s->id, "%s", msg);
            nsess_verdict(nw, s, v, code, msg);
        }
        int held = hold && !atomic_load(&s->silent);
        if (s->out_head && !held) {
            s->work_next = NULL;
            *work_tail = s;
            work_tail = &s->work_next;
        }
        if (s->done && !held)
            table_end(nw->table, t); /* nsess_ended_cb: to nw->finished */
    }
    if (limits_drain_over(&nw->drain, now, table_count(nw->table) > 0)) {
        if (table_count(nw->table))
            LOG_WARN(NULL, "shutdown deadline passed with %d session(s) unfinished",
                     table_count(nw->table));
        /* a worker may still run one: the chan is freed when it is done */
        while (table_first(nw->table))
            table_end(nw->table, table_first(nw->table));
        exit_now = 1;
    }
    struct nsess *finished = nw->finished;
    nw->finished = NULL;
    pthread_mutex_unlock(&nw->mu);
    admit_tick(nw->cfg.admit);

    /* Only the pump frees sessions, so these stay valid unlocked. */
    for (struct nsess *s = work; s; s = s->work_next) {
        struct chan_msg *m = s->out_head;
        s->out_head = s->out_tail = NULL;
        int64_t sent = clock_mono_ns();
        if (!atomic_load(&s->silent) && nw->hooks.batch)
            nw->hooks.batch(nw->hooks.user, s->id, m, 0);
        for (struct chan_msg *i = m; i; i = i->next) {
            if (i->len && !atomic_load(&s->silent))
                natsw_publish(nw, s->subject, i->data, i->len);
            stats_latency(&nw->stats, i, sent);
        }
        if (!atomic_load(&s->silent) && nw->hooks.batch)
            nw->hooks.batch(nw->hooks.user, s->id, m, 1);
        nsess_free_msgs(m);
    }
    while (finished) {
        struct nsess *s = finished;
        finished = s->fin_next;
        nsess_free(s);
    }
    return exit_now;
}

void *npump_main(void *arg)
{
    struct natsw *nw = arg;
    for (;;) {
        wait_wake(nw);
        if (nw->stop_requested && !nw->drain.active)
            begin_drain(nw);
        if (pump_once(nw))
            break;
    }
    if (!atomic_load(&nw->connected))
        LOG_WARN(NULL, "not connected to NATS: the last results are lost");
    else if (natsConnection_FlushTimeout(nw->nc, 2000) != NATS_OK)
        LOG_WARN(NULL, "could not flush the last results to NATS within 2 s");
    LOG_INFO(NULL, "NATS front end stopped: %llu messages in, %llu sessions, %llu errors sent",
             (unsigned long long)atomic_load(&nw->msgs_in),
             (unsigned long long)atomic_load(&nw->sessions_total),
             (unsigned long long)atomic_load(&nw->errors_out));
    return NULL;
}
