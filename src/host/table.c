#include "host/table.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

/* Buckets of the id hash: the table is sized for --max-sessions of up to
 * tens of thousands with short chains. */
#define NBUCKETS 4096

struct table {
    struct table_cfg cfg;
    struct tsess *buckets[NBUCKETS];
    struct tsess *all; /* every session, attached or not */
    int n_detached, n_all;
    size_t detached_bytes;
    struct metric *m_detached, *m_detached_bytes, *m_resume_ok, *m_resume_failed;
    struct metric *m_expired_window, *m_expired_buffer;
};

static unsigned hash_id(const char *id)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % NBUCKETS;
}

/* Equal or not, in time that depends only on the length of b (the
 * expected token), never on where the first difference is. */
static int ct_equal(const char *a, const char *b)
{
    size_t n = strlen(b), an = strlen(a);
    unsigned char d = an != n;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)((i < an ? a[i] : 0) ^ b[i]);
    return d == 0;
}

int table_create(struct table **out, const struct table_cfg *cfg)
{
    struct table *t = hark_calloc(1, sizeof *t);
    *out = t;
    if (!t)
        return HARK_E_NOMEM;
    t->cfg = *cfg;
    if (t->cfg.replay_bytes > t->cfg.resume_buffer_bytes)
        t->cfg.replay_bytes = t->cfg.resume_buffer_bytes;
    if (!t->cfg.resume_buffer_events)
        t->cfg.resume_buffer_events = SIZE_MAX;
    struct metrics *m = cfg->metrics;
    if (m) {
        t->m_detached =
            metrics_gauge(m, "hark_sessions_detached",
                          "Sessions whose connection dropped, kept for a resume", NULL, NULL);
        t->m_detached_bytes =
            metrics_gauge(m, "hark_detached_buffer_bytes",
                          "Events held for detached sessions' resumes, bytes", NULL, NULL);
        const char *rh = "Resume requests by result";
        t->m_resume_ok = metrics_counter(m, "hark_resumes_total", rh, "result", "ok");
        t->m_resume_failed = metrics_counter(m, "hark_resumes_total", rh, "result", "failed");
        const char *eh = "Detached sessions ended without a resume";
        t->m_expired_window =
            metrics_counter(m, "hark_sessions_expired_total", eh, "reason", "resume_window");
        t->m_expired_buffer =
            metrics_counter(m, "hark_sessions_expired_total", eh, "reason", "resume_buffer");
    }
    return 0;
}

int table_resume_window(const struct table *t)
{
    return t->cfg.resume_window;
}

static void gauges(struct table *t)
{
    metrics_set(t->m_detached, t->n_detached);
    metrics_set(t->m_detached_bytes, (double)t->detached_bytes);
}

int table_add(struct table *t, struct chan *chan, void *render_state, void *conn,
              struct tsess **out)
{
    struct tsess *s = hark_calloc(1, sizeof *s);
    *out = s;
    if (!s) {
        chan_release(chan);
        return HARK_E_NOMEM;
    }
    s->chan = chan;
    s->render_state = render_state;
    s->conn = conn;
    outbox_init(&s->hist);
    snprintf(s->id, sizeof s->id, "%s", chan_session_id(chan));
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* no token without real randomness: this session cannot resume */
        s->token[0] = 0;
    } else {
        for (size_t i = 0; i < sizeof r; i++)
            snprintf(s->token + 2 * i, 3, "%02x", r[i]);
    }
    unsigned b = hash_id(s->id);
    s->hnext = t->buckets[b];
    t->buckets[b] = s;
    s->next = t->all;
    if (t->all)
        t->all->prev = s;
    t->all = s;
    t->n_all++;
    return 0;
}

struct tsess *table_find(struct table *t, const char *id)
{
    for (struct tsess *s = t->buckets[hash_id(id)]; s; s = s->hnext)
        if (!strcmp(s->id, id))
            return s;
    return NULL;
}

int table_count(const struct table *t)
{
    return t->n_all;
}

struct tsess *table_first(struct table *t)
{
    return t->all;
}

static void unlink_sess(struct table *t, struct tsess *s)
{
    struct tsess **pp = &t->buckets[hash_id(s->id)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    if (s->prev)
        s->prev->next = s->next;
    else if (t->all == s)
        t->all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    t->n_all--;
    if (s->detached_at) {
        t->n_detached--;
        t->detached_bytes -= s->hist.bytes;
        gauges(t);
    }
}

void table_end(struct table *t, struct tsess *s)
{
    if (!s)
        return;
    unlink_sess(t, s);
    if (t->cfg.ended_cb)
        t->cfg.ended_cb(t->cfg.user, s);
    chan_release(s->chan);
    outbox_clear(&s->hist);
    hark_free(s);
}

void table_sent(struct table *t, struct tsess *s, struct chan_msg *m)
{
    if (!t->cfg.resume_window || !(m->flags & MSG_SEQ)) {
        hark_free(m);
        return;
    }
    outbox_push(&s->hist, m);
    outbox_trim(&s->hist, t->cfg.replay_bytes, t->cfg.resume_buffer_events);
}

int table_detach(struct table *t, struct tsess *s, int64_t now)
{
    if (!t->cfg.resume_window || !s->token[0] || (chan_done(s->chan) && !s->finishing)) {
        table_end(t, s);
        return 0;
    }
    s->conn = NULL;
    s->detached_at = now;
    s->detach_seq = s->hist.next_seq;
    t->n_detached++;
    t->detached_bytes += s->hist.bytes;
    gauges(t);
    LOG_INFO(s->id, "connection lost; session kept %d s for a resume", t->cfg.resume_window);
    return 1;
}

/* Keep a detached session's new events within the budget: superseded
 * partials first, then events sent before the connection dropped (the
 * client most likely has them), and when the rest (finals and events it
 * never saw) still exceed it the session ends. Returns 0 or -1 (ended). */
static int take_events(struct table *t, struct tsess *s)
{
    struct chan_msg *m = chan_take_msgs(s->chan);
    size_t before = s->hist.bytes;
    while (m) {
        struct chan_msg *n = m->next;
        if (m->ev && t->cfg.stats)
            stats_event(t->cfg.stats, m->ev);
        outbox_push(&s->hist, m);
        m = n;
    }
    size_t limit = t->cfg.resume_buffer_bytes, count = t->cfg.resume_buffer_events;
    if (outbox_over(&s->hist, limit, count))
        outbox_drop_partials(&s->hist);
    if (outbox_over(&s->hist, limit, count))
        outbox_trim_before(&s->hist, s->detach_seq, limit, count);
    t->detached_bytes = t->detached_bytes - before + s->hist.bytes;
    gauges(t);
    if (outbox_over(&s->hist, limit, count)) {
        LOG_WARN(s->id,
                 "detached session's events exceed --resume-buffer-bytes (%zu) or "
                 "--resume-buffer-events (%zu); ended",
                 limit, count);
        metrics_inc(t->m_expired_buffer);
        table_end(t, s);
        return -1;
    }
    return 0;
}

void table_drain(struct table *t)
{
    struct tsess *s = t->all;
    while (s) {
        struct tsess *next = s->next;
        if (s->detached_at)
            take_events(t, s);
        s = next;
    }
}

void table_tick(struct table *t, int64_t now)
{
    int64_t window = (int64_t)t->cfg.resume_window * 1000000000LL;
    struct tsess *s = t->all;
    while (s) {
        struct tsess *next = s->next;
        if (s->detached_at && now - s->detached_at > window) {
            LOG_INFO(s->id, "not resumed within %d s; session ended", t->cfg.resume_window);
            metrics_inc(t->m_expired_window);
            table_end(t, s);
        }
        s = next;
    }
}

void table_drop_detached(struct table *t)
{
    struct tsess *s = t->all;
    while (s) {
        struct tsess *next = s->next;
        if (s->detached_at)
            table_end(t, s);
        s = next;
    }
}

int table_detached(const struct table *t)
{
    return t->n_detached;
}

int table_resume(struct table *t, const char *id, const char *token, int64_t last_seq,
                 uint64_t client_bytes, struct tsess **out, char *msg, size_t n)
{
    *out = NULL;
    struct tsess *s = NULL;
    if (t->cfg.resume_window && id && token)
        s = table_find(t, id);
    int ok = s && s->token[0] && ct_equal(token, s->token);
    if (!ok) {
        metrics_inc(t->m_resume_failed);
        return err_set(msg, n, HARK_E_RESUME_FAILED,
                       "no session with that id and token here (expired, ended, or on another "
                       "server); start a new session");
    }
    if (s->detached_at && take_events(t, s) != 0) {
        metrics_inc(t->m_resume_failed);
        return err_set(msg, n, HARK_E_RESUME_FAILED,
                       "the session ended while detached (its events exceeded the resume buffer)");
    }
    if (!outbox_covers(&s->hist, last_seq)) {
        metrics_inc(t->m_resume_failed);
        return err_set(msg, n, HARK_E_RESUME_FAILED,
                       "events after seq %lld are no longer kept (oldest kept: %lld); start a new "
                       "session",
                       (long long)last_seq,
                       s->hist.head ? (long long)s->hist.head->seq : (long long)s->hist.next_seq);
    }
    if (client_bytes < s->audio_bytes) {
        metrics_inc(t->m_resume_failed);
        return err_set(msg, n, HARK_E_RESUME_FAILED,
                       "the client says it sent %llu audio bytes but the server holds %llu",
                       (unsigned long long)client_bytes, (unsigned long long)s->audio_bytes);
    }
    *out = s;
    return 0;
}

void table_count_resume(struct table *t, int ok)
{
    metrics_inc(ok ? t->m_resume_ok : t->m_resume_failed);
}

void table_attach(struct table *t, struct tsess *s, void *conn)
{
    if (s->detached_at) {
        t->n_detached--;
        t->detached_bytes -= s->hist.bytes;
        s->detached_at = 0;
        gauges(t);
    }
    s->conn = conn;
    metrics_inc(t->m_resume_ok);
    /* back to the attached budget: what a later drop may need again */
    outbox_trim(&s->hist, t->cfg.resume_buffer_bytes, t->cfg.resume_buffer_events);
}

void table_destroy(struct table *t)
{
    if (!t)
        return;
    while (t->all)
        table_end(t, t->all);
    hark_free(t);
}
