/*
 * The NATS session backend of `hark serve --backend` (natsgw.h): sessions
 * relayed to `hark worker`s, their results turned back into hark_events.
 *
 * One subscription on {subject_out}.* serves every session of the gateway;
 * a result for an id this gateway does not hold (another gateway's session,
 * or one already gone) is dropped after a hash lookup, before it is parsed.
 * Per-session subscriptions would save that traffic when many gateways
 * share the subjects, at the cost of a SUB/UNSUB round per session and the
 * subscriptions' callback lifetimes; results are small next to the audio
 * (a few hundred bytes, a few per second per talking session).
 *
 * Pacing: core NATS has no back-pressure, and a worker refuses chunks past
 * its --session-buffer-bytes (limit_exceeded: the audio is lost). So the
 * gateway keeps at most `window` bytes of audio that the worker has not yet
 * taken off its queue in flight; the worker's answer to a keepalive says
 * how far it got (received - queued). Audio beyond the window waits in the
 * session's outgoing queue, which chan_pending_bytes counts, so the front
 * end stops reading the client (WebSocket rx flow control, batch upload
 * pause) exactly as it does when a local session falls behind.
 */
#include "front/nats/natsgw.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/nats/nmsg.h"
#include "front/nats/nres.h"
#include "session/options.h"

#define TICK_MS 100
#define BUCKETS 1024
#define CHUNK_MAX 32768 /* bytes of audio per chunk message (a worker takes 1 MiB) */

/* A message for the session, waiting for its poll. */
struct gitem {
    struct gitem *next;
    size_t cost;
    struct nres r; /* parsed result, or a synthetic error (kind NRES_ERROR, text in msg) */
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
    double results_end; /* the furthest audio a result covered */
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
    struct gsess *hnext, *prev, *next;
};

struct natsgw {
    struct natsgw_cfg cfg;
    char *url, *subj_in, *subj_out, *name;
    natsConnection *nc;
    natsSubscription *sub;
    atomic_int connected;
    uint64_t window; /* audio bytes in flight to a worker, at most */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gsess *buckets[BUCKETS];
    struct gsess *all;
    int stop;
    pthread_t timer;
    int timer_started;

    struct metric *m_connected, *m_sessions, *m_timeouts, *m_bad;
};

/* ------------------------------------------------------------ table */

static unsigned hash_id(const char *id)
{
    unsigned h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h % BUCKETS;
}

static struct gsess *find(struct natsgw *g, const char *id)
{
    for (struct gsess *s = g->buckets[hash_id(id)]; s; s = s->hnext)
        if (!strcmp(s->id, id))
            return s;
    return NULL;
}

static void table_add(struct natsgw *g, struct gsess *s)
{
    unsigned b = hash_id(s->id);
    s->hnext = g->buckets[b];
    g->buckets[b] = s;
    s->prev = NULL;
    s->next = g->all;
    if (g->all)
        g->all->prev = s;
    g->all = s;
}

static void table_del(struct natsgw *g, struct gsess *s)
{
    for (struct gsess **p = &g->buckets[hash_id(s->id)]; *p; p = &(*p)->hnext)
        if (*p == s) {
            *p = s->hnext;
            break;
        }
    if (s->prev)
        s->prev->next = s->next;
    else
        g->all = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

/* ------------------------------------------------------------ publishing */

static void publish(struct natsgw *g, struct gsess *s, const void *data, size_t len)
{
    natsStatus st = natsConnection_Publish(g->nc, s->subject, data, (int)len);
    if (st != NATS_OK)
        LOG_WARN(s->id, "publish to %s failed: %s", s->subject, natsStatus_GetText(st));
}

static void publish_buf(struct natsgw *g, struct gsess *s, const struct buf *b)
{
    if (b->oom)
        LOG_ERROR(s->id, "out of memory rendering a message for the worker; dropped");
    else
        publish(g, s, b->data, b->len);
}

/* Publishes what the window allows, in order. The chan's worker thread. */
static void pump(struct gsess *s)
{
    struct natsgw *g = s->g;
    struct buf b;
    buf_init(&b);
    while (s->ohead) {
        struct gout *o = s->ohead;
        if (o->audio) {
            uint64_t sent = atomic_load(&s->sent_bytes);
            pthread_mutex_lock(&g->mu);
            uint64_t done = s->consumed;
            pthread_mutex_unlock(&g->mu);
            uint64_t inflight = sent > done ? sent - done : 0;
            if (inflight && inflight + o->len > g->window) {
                atomic_store(&s->blocked, 1); /* the worker's answer unblocks (handle) */
                break;
            }
            /* raw PCM: the chunk's timestamp is where its audio starts, so
             * a worker sees a chunk lost on the way as an audio_gap */
            double ts = s->bytes_per_sec ? s->t0 + (double)sent / s->bytes_per_sec : -1;
            buf_reset(&b);
            nres_render_chunk(&b, o->data, o->len, ts);
            publish_buf(g, s, &b);
            atomic_store(&s->sent_bytes, sent + o->len);
        } else {
            publish(g, s, o->data, o->len);
        }
        s->ohead = o->next;
        if (!s->ohead)
            s->otail = NULL;
        atomic_fetch_sub(&s->backlog, o->len);
        hark_free(o);
    }
    if (!s->ohead)
        atomic_store(&s->blocked, 0);
    if (s->end_queued && !s->ohead)
        s->end_sent = 1;
    buf_deinit(&b);
}

static void enqueue(struct gsess *s, int audio, const void *data, size_t len)
{
    struct gout *o = hark_malloc(sizeof *o + len);
    if (!o) {
        LOG_ERROR(s->id, "out of memory queueing a message for the worker; dropped");
        return;
    }
    o->next = NULL;
    o->audio = audio;
    o->len = len;
    memcpy(o->data, data, len);
    if (s->otail)
        s->otail->next = o;
    else
        s->ohead = o;
    s->otail = o;
    atomic_fetch_add(&s->backlog, len);
}

static void enqueue_buf(struct gsess *s, const struct buf *b)
{
    if (b->oom)
        LOG_ERROR(s->id, "out of memory rendering a message for the worker; dropped");
    else
        enqueue(s, 0, b->data, b->len);
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
    s->notify(s->notify_user);
}

/* ------------------------------------------------------------ results (delivery thread) */

static void drop_item(struct gitem *it)
{
    nres_free(&it->r);
    hark_free(it);
}

static void handle(struct natsgw *g, const char *id, const void *data, size_t len)
{
    pthread_mutex_lock(&g->mu);
    int ours = find(g, id) != NULL;
    pthread_mutex_unlock(&g->mu);
    if (!ours)
        return; /* another gateway's session, or one that has gone */
    struct gitem *it = hark_calloc(1, sizeof *it);
    char err[300];
    if (!it)
        return;
    if (nres_parse(&it->r, data, len, err, sizeof err)) {
        metrics_inc(g->m_bad);
        LOG_WARN(id, "result message dropped: %s", err);
        hark_free(it);
        return;
    }
    it->cost = sizeof *it + len * 2;
    pthread_mutex_lock(&g->mu);
    struct gsess *s = find(g, id);
    if (!s || s->finished) {
        pthread_mutex_unlock(&g->mu);
        drop_item(it);
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
        if (atomic_load(&s->blocked))
            s->notify(s->notify_user); /* its poll pumps */
    }
    if (k == NRES_STARTED || k == NRES_OTHER || k == NRES_ALIVE) {
        s->started |= k == NRES_STARTED;
        pthread_mutex_unlock(&g->mu);
        drop_item(it);
        return;
    }
    int refused = k == NRES_ERROR && !s->started;
    int over = s->queued_bytes + it->cost > g->cfg.max_queued_bytes;
    if (over && k == NRES_RESULT && !it->r.is_final) {
        /* this gateway is behind: a later partial or the final supersedes it */
        pthread_mutex_unlock(&g->mu);
        drop_item(it);
        return;
    }
    if (over) {
        drop_item(it);
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
    s->notify(s->notify_user);
    pthread_mutex_unlock(&g->mu);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    struct natsgw *g = closure;
    const char *subject = natsMsg_GetSubject(msg);
    size_t plen = strlen(g->subj_out);
    if (!strncmp(subject, g->subj_out, plen) && subject[plen] == '.' &&
        strlen(subject + plen + 1) < NMSG_ID_MAX) {
        int n = natsMsg_GetDataLength(msg);
        handle(g, subject + plen + 1, natsMsg_GetData(msg), n > 0 ? (size_t)n : 0);
    }
    natsMsg_Destroy(msg);
}

/* ------------------------------------------------------------ timer thread */

static void tick(struct natsgw *g, int64_t now)
{
    int64_t tmo = (int64_t)g->cfg.timeout_ms * 1000000;
    int64_t ka = (int64_t)g->cfg.keepalive_ms * 1000000;
    if (ka > tmo / 3)
        ka = tmo / 3;
    for (struct gsess *s = g->all; s; s = s->next) {
        if (s->finished)
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

/* ------------------------------------------------------------ backend ops */

static int bytes_per_sample(const struct hark_options *o)
{
    switch (o->encoding) {
    case ENC_PCM_F32LE:
        return 4;
    case ENC_MULAW:
    case ENC_ALAW:
        return 1;
    default:
        return 2;
    }
}

/* A NATS subject token: no separators or wildcards. */
static int token_ok(const char *id)
{
    if (!*id || strlen(id) >= NMSG_ID_MAX)
        return 0;
    for (const char *p = id; *p; p++)
        if (*p == '.' || *p == '*' || *p == '>' || (unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}

static void make_id(char *out, size_t n)
{
    unsigned char r[12];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memset(r, 0, sizeof r);
    snprintf(out, n, "gw-%02x%02x%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2],
             r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]);
}

/* The start: every session option by name, as the session would run here
 * (the gateway's defaults and the client's choices), so a worker's own
 * defaults do not change what the client asked for. */
static int render_start(struct gsess *s, const struct hark_options *o, struct buf *b)
{
    static const char *const seed_keys[] = {"sample_rate", "channels", "speaker_id"};
    const char *kv[2 * 40 + 5];
    char vals[32][128];
    char *vocab = NULL;
    int n = 0, nv = 0;
    for (int i = 0; hark_options_name(i) && n < 2 * 36 && nv < 32; i++) {
        const char *name = hark_options_name(i);
        int skip = 0;
        for (size_t k = 0; k < sizeof seed_keys / sizeof seed_keys[0]; k++)
            skip |= !strcmp(name, seed_keys[k]);
        if (skip)
            continue;
        if (!strcmp(name, "vocabulary")) {
            if (!o->vocabulary[0])
                continue;
            vocab = hark_strdup(o->vocabulary);
            if (!vocab)
                return HARK_E_NOMEM;
            kv[n++] = name;
            kv[n++] = vocab;
            continue;
        }
        if (hark_options_get(o, name, vals[nv], sizeof vals[nv]) || !vals[nv][0])
            continue;
        kv[n++] = name;
        kv[n++] = vals[nv++];
    }
    kv[n++] = "ack";
    kv[n++] = "true";
    kv[n++] = "events"; /* speech_started, utterance_end: the dialects render them */
    kv[n++] = "true";
    kv[n++] = "chunk_timeout"; /* pauses are the client's to end: its finalize, our limits */
    kv[n++] = "0";
    kv[n] = NULL;
    nres_render_start(b, s->id, o->sample_rate, o->channels, HARK_STATE_LISTENING, o->speaker_id,
                      kv);
    hark_free(vocab);
    return b->oom ? HARK_E_NOMEM : 0;
}

static int gw_open(void *ctx, const struct hark_options *opts, const char *session_id,
                   hark_event_cb ev, void *ev_user, void (*notify)(void *), void *notify_user,
                   void **out, char *err, size_t n)
{
    struct natsgw *g = ctx;
    *out = NULL;
    if (!atomic_load(&g->connected))
        return err_set(err, n, HARK_E_BUSY,
                       "not connected to NATS: no hark worker can take the session now");
    struct gsess *s = hark_calloc(1, sizeof *s);
    if (!s)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    s->g = g;
    if (session_id && token_ok(session_id))
        snprintf(s->id, sizeof s->id, "%s", session_id);
    else
        make_id(s->id, sizeof s->id);
    snprintf(s->speaker, sizeof s->speaker, "%s", opts->speaker_id);
    snprintf(s->language, sizeof s->language, "%s", opts->language);
    s->ev = ev;
    s->ev_user = ev_user;
    s->notify = notify;
    s->notify_user = notify_user;
    if (opts->encoding == ENC_PCM_S16LE || opts->encoding == ENC_PCM_F32LE ||
        opts->encoding == ENC_MULAW || opts->encoding == ENC_ALAW)
        s->bytes_per_sec = (double)opts->sample_rate * opts->channels * bytes_per_sample(opts);
    s->t0 = nmsg_now();
    size_t sl = strlen(g->subj_in) + 1 + strlen(s->id) + 1;
    s->subject = hark_malloc(sl);
    struct buf b;
    buf_init(&b);
    int rc = s->subject ? render_start(s, opts, &b) : HARK_E_NOMEM;
    if (rc) {
        buf_deinit(&b);
        hark_free(s->subject);
        hark_free(s);
        return err_set(err, n, rc, "out of memory");
    }
    snprintf(s->subject, sl, "%s.%s", g->subj_in, s->id);
    pthread_mutex_lock(&g->mu);
    if (find(g, s->id)) {
        pthread_mutex_unlock(&g->mu);
        buf_deinit(&b);
        hark_free(s->subject);
        hark_free(s);
        return err_set(err, n, HARK_E_STATE, "a session with this id is running");
    }
    s->t_start = s->t_heard = s->t_ka = clock_mono_ns();
    table_add(g, s);
    pthread_mutex_unlock(&g->mu);
    publish_buf(g, s, &b); /* after table_add: the worker's answer finds the session */
    buf_deinit(&b);
    metrics_add(g->m_sessions, 1);
    *out = s;
    return 0;
}

static const char *gw_id(void *p)
{
    return ((struct gsess *)p)->id;
}

static void gw_feed(void *p, const void *bytes, size_t len)
{
    struct gsess *s = p;
    if (s->closed_delivered || s->end_queued)
        return;
    const uint8_t *d = bytes;
    while (len) {
        size_t k = len < CHUNK_MAX ? len : CHUNK_MAX;
        enqueue(s, 1, d, k);
        d += k;
        len -= k;
    }
    pump(s);
}

static void gw_control(struct gsess *s, const char *type)
{
    struct buf b;
    buf_init(&b);
    nres_render_simple(&b, type);
    enqueue_buf(s, &b);
    buf_deinit(&b);
    pump(s);
}

static void gw_finalize(void *p)
{
    struct gsess *s = p;
    if (!s->closed_delivered && !s->end_queued)
        gw_control(s, "finalize");
}

static void gw_set_state(void *p, enum hark_state state)
{
    struct gsess *s = p;
    if (s->closed_delivered || s->end_queued)
        return;
    struct buf b;
    buf_init(&b);
    nres_render_state(&b, state);
    enqueue_buf(s, &b);
    buf_deinit(&b);
    pump(s);
}

static void emit(struct gsess *s, struct hark_event *ev)
{
    ev->seq = s->seq++;
    ev->session_id = s->id;
    ev->speaker_id = s->speaker;
    s->ev(s->ev_user, ev);
}

/* An error the front end found in the client's input: in order with the
 * results delivered so far. */
static void gw_report_error(void *p, int code, const char *message)
{
    struct gsess *s = p;
    if (s->closed_delivered)
        return;
    struct hark_event ev = {.type = HARK_EVENT_ERROR, .code = code, .message = message};
    emit(s, &ev);
}

static void gw_close(void *p)
{
    struct gsess *s = p;
    if (s->closed_delivered || s->end_queued)
        return;
    s->end_queued = 1;
    gw_control(s, "end");
}

static double gw_audio_seconds(void *p)
{
    struct gsess *s = p;
    if (s->bytes_per_sec)
        return (double)atomic_load(&s->sent_bytes) / s->bytes_per_sec;
    return s->results_end; /* a container: what the worker's results covered */
}

static void deliver(struct gsess *s, struct gitem *it)
{
    struct nres *r = &it->r;
    struct hark_event ev = {0};
    switch (r->kind) {
    case NRES_RESULT:
        ev.type = HARK_EVENT_TRANSCRIPT;
        ev.segment = r->segment;
        ev.is_final = r->is_final;
        ev.speech_final = r->speech_final;
        ev.reason = r->is_final ? r->reason : HARK_REASON_NONE;
        ev.text = r->text ? r->text : "";
        ev.start = r->start;
        ev.end = r->end;
        ev.confidence = r->confidence;
        ev.language = s->language;
        ev.words = r->has_words ? r->words : NULL;
        ev.n_words = r->n_words;
        ev.committed_ms = r->committed_ms >= 0 ? r->committed_ms : (int64_t)(r->end * 1000);
        ev.voice_activity = r->has_voice_activity;
        if (r->end > s->results_end)
            s->results_end = r->end;
        break;
    case NRES_INTERRUPT:
        ev.type = HARK_EVENT_INTERRUPT;
        ev.start = r->audio_time;
        break;
    case NRES_ERROR:
        ev.type = HARK_EVENT_ERROR;
        ev.code = r->code;
        ev.message = it->msg[0] ? it->msg : r->text ? r->text : "";
        break;
    case NRES_SPEECH_STARTED:
        ev.type = HARK_EVENT_SPEECH_STARTED;
        ev.start = r->audio_time;
        ev.segment = r->segment;
        break;
    case NRES_UTTERANCE_END:
        ev.type = HARK_EVENT_UTTERANCE_END;
        ev.end = r->last_word_end;
        break;
    case NRES_WARNING:
        LOG_WARN(s->id, "worker: %s: %s", r->code_name, r->text ? r->text : "");
        return;
    case NRES_CLOSED:
        ev.type = HARK_EVENT_CLOSED;
        ev.audio_seconds = it->synthetic_closed ? gw_audio_seconds(s) : r->audio_seconds;
        ev.segments = r->segments;
        s->closed_delivered = 1;
        break;
    default:
        return;
    }
    emit(s, &ev);
}

static void gw_poll(void *p)
{
    struct gsess *s = p;
    struct natsgw *g = s->g;
    pthread_mutex_lock(&g->mu);
    struct gitem *it = s->head;
    s->head = s->tail = NULL;
    s->queued_bytes = 0;
    pthread_mutex_unlock(&g->mu);
    while (it) {
        struct gitem *next = it->next;
        if (!s->closed_delivered)
            deliver(s, it);
        drop_item(it);
        it = next;
    }
    if (!s->closed_delivered)
        pump(s); /* the window may have moved */
}

static unsigned gw_results_pending(void *p)
{
    struct gsess *s = p;
    /* after the end, the last finals are owed until closed */
    return s->end_queued && !s->closed_delivered;
}

static size_t gw_backlog(void *p)
{
    return atomic_load(&((struct gsess *)p)->backlog);
}

static const struct hark_session *gw_session(void *p)
{
    (void)p;
    return NULL;
}

static void gw_destroy(void *p)
{
    struct gsess *s = p;
    struct natsgw *g = s->g;
    pthread_mutex_lock(&g->mu);
    table_del(g, s);
    struct gitem *it = s->head;
    pthread_mutex_unlock(&g->mu);
    /* abandoned before its end went out (the client went away): the
     * worker's session ends too instead of waiting for its idle timeout */
    if (!s->end_sent && !s->closed_delivered) {
        struct buf b;
        buf_init(&b);
        nres_render_simple(&b, "end");
        publish_buf(g, s, &b);
        buf_deinit(&b);
    }
    while (it) {
        struct gitem *next = it->next;
        drop_item(it);
        it = next;
    }
    for (struct gout *o = s->ohead, *next; o; o = next) {
        next = o->next;
        hark_free(o);
    }
    metrics_add(g->m_sessions, -1);
    hark_free(s->subject);
    hark_free(s);
}

static const struct backend_ops natsgw_ops = {
    .name = "nats",
    .open = gw_open,
    .id = gw_id,
    .feed = gw_feed,
    .finalize = gw_finalize,
    .set_state = gw_set_state,
    .report_error = gw_report_error,
    .close = gw_close,
    .poll = gw_poll,
    .audio_seconds = gw_audio_seconds,
    .results_pending = gw_results_pending,
    .backlog = gw_backlog,
    .session = gw_session,
    .destroy = gw_destroy,
};

void natsgw_backend(struct natsgw *g, struct backend *out)
{
    out->ops = &natsgw_ops;
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

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
    (void)nc;
    (void)sub;
    (void)closure;
    LOG_WARN(NULL, "NATS: %s", natsStatus_GetText(err));
}

static natsStatus set_servers(natsOptions *o, char *list)
{
    const char *urls[16];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < 16;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            urls[n++] = tok;
    }
    return n ? natsOptions_SetServers(o, urls, n) : NATS_INVALID_ARG;
}

static int connect_nats(struct natsgw *g, char *err, size_t n)
{
    natsOptions *o = NULL;
    natsStatus st = natsOptions_Create(&o);
    char *list = hark_strdup(g->url);
    int rc = 0;
    if (st != NATS_OK || !list) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto out;
    }
    if ((st = set_servers(o, list)) != NATS_OK) {
        rc = err_set(err, n, HARK_E_INVAL,
                     "backend '%s' is not usable (%s); expected nats://HOST:PORT[,nats://...]",
                     g->url, natsStatus_GetText(st));
        goto out;
    }
    if (g->name)
        natsOptions_SetName(o, g->name);
    natsOptions_SetMaxReconnect(o, -1);
    natsOptions_SetReconnectWait(o, 250);
    natsOptions_SetReconnectBufSize(o, 8 * 1024 * 1024);
    natsOptions_SetPingInterval(o, 5000);
    natsOptions_SetMaxPingsOut(o, 2);
    natsOptions_SetRetryOnFailedConnect(o, true, on_connected, g);
    natsOptions_SetDisconnectedCB(o, on_disconnected, g);
    natsOptions_SetReconnectedCB(o, on_connected, g);
    natsOptions_SetErrorHandler(o, on_async_error, g);
    st = natsConnection_Connect(&g->nc, o);
    if (st == NATS_OK) {
        on_connected(g->nc, g);
    } else if (st == NATS_NOT_YET_CONNECTED) {
        LOG_WARN(NULL, "no NATS server answers at %s yet; retrying in the background", g->url);
    } else {
        rc = err_set(err, n, HARK_E_IO, "cannot connect to NATS: %s", natsStatus_GetText(st));
        goto out;
    }
    char subject[300];
    snprintf(subject, sizeof subject, "%s.*", g->subj_out);
    st = natsConnection_Subscribe(&g->sub, g->nc, subject, on_msg, g);
    if (st != NATS_OK) {
        rc = err_set(err, n, HARK_E_IO, "cannot subscribe to %s: %s", subject,
                     natsStatus_GetText(st));
        goto out;
    }
    natsSubscription_SetPendingLimits(g->sub, 65536, 64 << 20);
    if (atomic_load(&g->connected))
        natsConnection_FlushTimeout(g->nc, 2000); /* the server has our SUB */
    LOG_INFO(NULL, "gateway: sessions go to %s.{session_id}, results from %s", g->subj_in, subject);
out:
    natsOptions_Destroy(o);
    hark_free(list);
    return rc;
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
    }
    if ((rc = connect_nats(g, err, n)))
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
    if (g->nc && atomic_load(&g->connected))
        natsConnection_FlushTimeout(g->nc, 2000); /* the last ends go out */
    if (g->sub) {
        natsSubscription_Unsubscribe(g->sub);
        natsSubscription_Destroy(g->sub);
    }
    if (g->nc) {
        natsConnection_Close(g->nc);
        natsConnection_Destroy(g->nc);
    }
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    hark_free(g->url);
    hark_free(g->subj_in);
    hark_free(g->subj_out);
    hark_free(g->name);
    hark_free(g);
}
