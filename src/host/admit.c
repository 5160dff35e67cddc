/*
 * Admission for every front end (see admit.h). The policy came from the
 * WebSocket front end, where it was measured; the NATS front end used to
 * refuse on worker busy time, which is no signal (below), and neither
 * counted the other's sessions.
 */
#include "host/admit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

/* A session counts once it has this much audio (its CPU per audio second
 * is noise before), and as talking while audio came within the window.
 * Its first second costs more than the rest (the engine's start-up hold is
 * decoded in one burst: +19% read at 2 s of audio), so once a second of
 * audio is decoded past the base snapshot the rate is measured from there. */
#define MEASURE_MIN_AUDIO_SEC 2.0
#define MEASURE_BASE_SEC 1.0
#define MEASURE_SPAN_SEC 1.0
#define TALKING_WINDOW_NS 2000000000LL
#define TICK_NS 900000000LL /* the callers tick every second or faster */

struct admit_slot {
    struct admit *a;
    struct chan *chan; /* NULL until bound */
    int realtime;
    int closing;
    int started;                /* counted in hark_sessions_opened_total */
    _Atomic int64_t last_audio; /* monotonic ns of the last audio (0 = none yet) */
    /* Usage when the session first had MEASURE_BASE_SEC of audio decoded
     * (base_audio 0 = not yet): its steady CPU per audio second is measured
     * from there, past the start-up burst. Under the admit lock. */
    double base_audio, base_cpu;
    struct admit_slot *prev, *next;
};

struct admit {
    struct admit_cfg cfg;
    pthread_mutex_t mu;
    struct admit_slot *slots;
    int n;
    int draining;
    int64_t last_measure;
    struct workers_stats wstats;
    double demand;    /* workers the talking sessions need to stay real time */
    double rtf_prior; /* CPU per audio second of a session, from the last measured ones */

    struct metric *m_opened, *m_active, *m_refused_busy, *m_refused_limit, *m_refused_draining;
    struct metric *m_queue, *m_busy, *m_lag, *m_demand;
};

/* CPU seconds per audio second of a session, or -1 while it has too little
 * audio to tell. Takes the base snapshot on the first call past
 * MEASURE_BASE_SEC (calls come every tick and at each admission). */
static double session_rtf(struct admit_slot *s)
{
    double audio, cpu;
    chan_usage(s->chan, &audio, &cpu);
    if (s->base_audio == 0 && audio >= MEASURE_BASE_SEC) {
        s->base_audio = audio;
        s->base_cpu = cpu;
    }
    if (s->base_audio > 0 && audio - s->base_audio >= MEASURE_SPAN_SEC)
        return (cpu - s->base_cpu) / (audio - s->base_audio);
    return audio >= MEASURE_MIN_AUDIO_SEC ? cpu / audio : -1;
}

/* Real-time demand: the CPU per audio second of every session that is
 * talking (audio arriving), measured where it has enough audio, else the
 * average of the measured ones (the prior; so a burst of new sessions
 * counts before any of them is measured). Closing sessions only finish what
 * they sent; open but silent ones and batch jobs (bulk work with no
 * real-time need) need nothing. Under the lock. */
static void measure(struct admit *a, int64_t now)
{
    workers_stats(a->cfg.pool, &a->wstats);
    double demand = 0, measured = 0;
    int n_measured = 0;
    for (struct admit_slot *s = a->slots; s; s = s->next) {
        if (!s->chan || !s->realtime || s->closing)
            continue;
        double rtf = session_rtf(s);
        if (rtf >= 0) {
            measured += rtf;
            n_measured++;
        }
        int64_t last = atomic_load(&s->last_audio);
        if (last && now - last <= TALKING_WINDOW_NS)
            demand += rtf >= 0 ? rtf : a->rtf_prior;
    }
    if (n_measured)
        a->rtf_prior = measured / n_measured;
    a->demand = demand;
    a->last_measure = now;
}

static void refresh_gauges(void *user)
{
    struct admit *a = user;
    pthread_mutex_lock(&a->mu);
    metrics_set(a->m_queue, a->wstats.queued_chans);
    metrics_set(a->m_busy, a->wstats.busy_fraction);
    metrics_set(a->m_demand, a->demand);
    metrics_set(a->m_lag, a->wstats.oldest_wait_ms / 1000.0);
    pthread_mutex_unlock(&a->mu);
}

static void register_metrics(struct admit *a)
{
    struct metrics *m = a->cfg.metrics;
    a->m_opened = metrics_counter(m, "hark_sessions_opened_total",
                                  "Sessions started (every front end)", NULL, NULL);
    a->m_active =
        metrics_gauge(m, "hark_sessions_active", "Sessions open now (every front end)", NULL, NULL);
    const char *refused = "Sessions refused by admission control or limits";
    a->m_refused_busy =
        metrics_counter(m, "hark_sessions_refused_total", refused, "reason", "busy");
    a->m_refused_limit =
        metrics_counter(m, "hark_sessions_refused_total", refused, "reason", "max_sessions");
    a->m_refused_draining =
        metrics_counter(m, "hark_sessions_refused_total", refused, "reason", "shutting_down");
    a->m_queue = metrics_gauge(m, "hark_worker_queue_depth",
                               "Sessions with work waiting for a worker thread", NULL, NULL);
    a->m_busy = metrics_gauge(m, "hark_worker_busy_ratio",
                              "Share of worker time spent recognising (last second)", NULL, NULL);
    a->m_demand = metrics_gauge(m, "hark_compute_demand_workers",
                                "Workers the talking sessions need to stay real time (sum of "
                                "their CPU per audio second)",
                                NULL, NULL);
    a->m_lag =
        metrics_gauge(m, "hark_worker_lag_seconds", "Age of the oldest queued work", NULL, NULL);
    if (m)
        metrics_on_render(m, refresh_gauges, a);
}

int admit_create(struct admit **out, const struct admit_cfg *cfg)
{
    *out = NULL;
    struct admit *a = hark_calloc(1, sizeof *a);
    if (!a)
        return HARK_E_NOMEM;
    a->cfg = *cfg;
    pthread_mutex_init(&a->mu, NULL);
    register_metrics(a);
    *out = a;
    return 0;
}

void admit_destroy(struct admit *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    hark_free(a);
}

int admit_acquire(struct admit *a, int realtime, struct admit_slot **out, char *msg, size_t n)
{
    *out = NULL;
    struct admit_slot *s = hark_calloc(1, sizeof *s);
    if (!s) {
        snprintf(msg, n, "out of memory");
        return HARK_E_NOMEM;
    }
    int rc = 0;
    pthread_mutex_lock(&a->mu);
    if (a->draining) {
        metrics_inc(a->m_refused_draining);
        snprintf(msg, n, "server is shutting down; retry on another instance");
        rc = HARK_E_BUSY;
        goto out;
    }
    if (a->n >= a->cfg.max_sessions) {
        metrics_inc(a->m_refused_limit);
        snprintf(msg, n, "too many sessions (max %d); retry later", a->cfg.max_sessions);
        rc = HARK_E_LIMIT;
        goto out;
    }
    /* Compute cannot keep up with real time: refuse rather than let every
     * session's latency grow without bound. Two signals: work already waits
     * too long for a worker, or the open sessions' measured CPU per audio
     * second adds up to more than the workers can give. (Plain worker busy
     * time is no signal: one client sending faster than real time makes the
     * workers 100% busy without anyone falling behind; bulk batch uploads do
     * the same.) Measured now, not at the last tick: sessions that just
     * ended must not refuse the next. Bulk work is admitted on the session
     * count alone: it has no deadline to miss. */
    measure(a, clock_mono_ns());
    double capacity = (double)a->cfg.workers * a->cfg.max_busy_percent / 100.0;
    /* The newcomer will need about what the others do; with nobody talking
     * there is always room for one. */
    double need = a->demand > 0 ? a->demand + a->rtf_prior : 0;
    int over = a->cfg.max_busy_percent > 0 && need > capacity;
    if (realtime && (a->wstats.oldest_wait_ms > a->cfg.max_lag_ms || over)) {
        metrics_inc(a->m_refused_busy);
        snprintf(msg, n,
                 "server at capacity (talking sessions need %.2f of %.2f workers, a new one "
                 "about %.2f; queue wait %.0f ms); retry later",
                 a->demand, capacity, a->rtf_prior, a->wstats.oldest_wait_ms);
        rc = HARK_E_BUSY;
        goto out;
    }
    if (realtime) /* what admission saw: bench/load.mjs reads it */
        LOG_INFO(NULL,
                 "admitted: talking sessions need %.3f workers, this one about %.3f (limit %.2f)",
                 a->demand, a->rtf_prior, capacity);
    s->a = a;
    s->realtime = realtime;
    s->next = a->slots;
    if (a->slots)
        a->slots->prev = s;
    a->slots = s;
    a->n++;
    metrics_set(a->m_active, a->n);
    *out = s;
    s = NULL;
out:
    pthread_mutex_unlock(&a->mu);
    hark_free(s);
    return rc;
}

/* Counted when the session exists, not at the admission: a slot whose
 * session the backend refused (a gateway not connected to NATS, a bad
 * option) opened nothing. Under the lock. */
static void started_locked(struct admit_slot *s)
{
    if (!s->started) {
        s->started = 1;
        metrics_inc(s->a->m_opened);
    }
}

void admit_started(struct admit_slot *s)
{
    pthread_mutex_lock(&s->a->mu);
    started_locked(s);
    pthread_mutex_unlock(&s->a->mu);
}

void admit_bind(struct admit_slot *s, struct chan *c)
{
    pthread_mutex_lock(&s->a->mu);
    s->chan = c;
    started_locked(s);
    pthread_mutex_unlock(&s->a->mu);
}

void admit_audio(struct admit_slot *s, int64_t now_ns)
{
    atomic_store(&s->last_audio, now_ns);
}

void admit_closing(struct admit_slot *s)
{
    pthread_mutex_lock(&s->a->mu);
    s->closing = 1;
    pthread_mutex_unlock(&s->a->mu);
}

void admit_release(struct admit_slot *s)
{
    if (!s)
        return;
    struct admit *a = s->a;
    pthread_mutex_lock(&a->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        a->slots = s->next;
    if (s->next)
        s->next->prev = s->prev;
    a->n--;
    metrics_set(a->m_active, a->n);
    pthread_mutex_unlock(&a->mu);
    hark_free(s);
}

void admit_drain(struct admit *a)
{
    pthread_mutex_lock(&a->mu);
    a->draining = 1;
    pthread_mutex_unlock(&a->mu);
}

void admit_tick(struct admit *a)
{
    int64_t now = clock_mono_ns();
    pthread_mutex_lock(&a->mu);
    if (now - a->last_measure >= TICK_NS)
        measure(a, now);
    pthread_mutex_unlock(&a->mu);
}

int admit_sessions(struct admit *a)
{
    pthread_mutex_lock(&a->mu);
    int n = a->n;
    pthread_mutex_unlock(&a->mu);
    return n;
}
