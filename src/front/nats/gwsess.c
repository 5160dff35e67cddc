/*
 * The backend ops of a gateway session (gwsess.h, natsgw.h): the start with
 * every option, audio paced by the worker's progress, controls in order
 * behind it, and the worker's results turned into hark_events on the chan's
 * worker thread.
 */
#include "front/nats/gwsess.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "session/options.h"

#define CHUNK_MAX 32768 /* bytes of audio per chunk message (a worker takes 1 MiB) */

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

void gwsess_item_free(struct gitem *it)
{
    nres_free(&it->r);
    hark_free(it);
}

/* ------------------------------------------------------------ backend ops */

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

/* a (gwhand_take, adopt 2) becomes the session s was opened as. Under g->mu. */
static void adopt(struct gsess *a, struct gsess *s)
{
    memcpy(a->speaker, s->speaker, sizeof a->speaker);
    memcpy(a->language, s->language, sizeof a->language);
    a->ev = s->ev;
    a->ev_user = s->ev_user;
    a->notify = s->notify;
    a->notify_user = s->notify_user;
    a->bytes_per_sec = s->bytes_per_sec;
    a->t0 = a->from.t0;
    a->seq = a->from.next_seq;
    a->results_end = a->from.results_end;
    /* the worker's stale copies count from where A's client got to */
    a->worker_next = (int64_t)a->from.worker_next;
    a->worker_epoch = (int64_t)a->from.worker_epoch;
    a->last_hash = a->from.last_msg;
    atomic_store(&a->sent_bytes, a->from.sent_bytes);
    a->consumed = 0; /* the worker's next answer says */
    a->started = 1;
    a->t_start = a->t_heard = a->t_ka = clock_mono_ns();
    /* What the holder delivered the client has (in the events handed over):
     * its last message and everything before it go. Both gateways received
     * the worker's messages in the worker's order; one the holder never
     * delivered is not in the queue's past. */
    if (a->from.last_msg) {
        struct gitem *hit = NULL;
        for (struct gitem *it = a->head; it; it = it->next)
            if (it->hash == a->from.last_msg) {
                hit = it;
                break;
            }
        while (hit && a->head) {
            struct gitem *it = a->head;
            a->head = it->next;
            a->queued_bytes -= it->cost;
            if (!a->head)
                a->tail = NULL;
            gwsess_item_free(it);
            if (it == hit)
                break;
        }
    }
    a->adopt = 0;
    if (a->head)
        a->notify(a->notify_user);
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
    if (session_id && nmsg_id_ok(session_id))
        snprintf(s->id, sizeof s->id, "%s", session_id);
    else
        make_id(s->id, sizeof s->id);
    snprintf(s->speaker, sizeof s->speaker, "%s", opts->speaker_id);
    snprintf(s->language, sizeof s->language, "%s", opts->language);
    s->ev = ev;
    s->ev_user = ev_user;
    s->notify = notify;
    s->notify_user = notify_user;
    s->bytes_per_sec = options_raw_bytes_per_sec(opts);
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
    struct gsess *a = natsgw_adoptable(g, s->id);
    if (a) {
        /* taken from another gateway (gwhand_take): its subscription has
         * queued the worker's messages since before the holder stopped; the
         * session goes on where the holder left off, with no start */
        adopt(a, s);
        pthread_mutex_unlock(&g->mu);
        buf_deinit(&b);
        hark_free(s->subject);
        hark_free(s);
        metrics_add(g->m_sessions, 1);
        metrics_inc(g->m_taken);
        *out = a;
        return 0;
    }
    if (natsgw_running(g, s->id)) {
        pthread_mutex_unlock(&g->mu);
        buf_deinit(&b);
        hark_free(s->subject);
        hark_free(s);
        return err_set(err, n, HARK_E_STATE, "a session with this id is running");
    }
    s->t_start = s->t_heard = s->t_ka = clock_mono_ns();
    natsgw_add(g, s); /* the id is taken */
    pthread_mutex_unlock(&g->mu);
    if ((rc = natsgw_subscribe(g, s, err, n))) {
        pthread_mutex_lock(&g->mu);
        natsgw_del(g, s);
        pthread_mutex_unlock(&g->mu);
        buf_deinit(&b);
        hark_free(s->subject);
        hark_free(s);
        return rc;
    }
    publish_buf(g, s, &b); /* after the SUB on the same connection: the answer finds us */
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
        /* A stale copy from the session's previous worker, which published
         * it just before its connection stalled and lost its lease
         * (docs/nats.md "JetStream"): an older owner's (owner_epoch), or,
         * from a worker that does not say, a number already delivered. A
         * newer owner's result goes on from that owner's record, so its
         * numbers may repeat ones a stale copy used before it. */
        if (r->owner_epoch < s->worker_epoch ||
            (r->owner_epoch == s->worker_epoch && r->sequence < s->worker_next)) {
            metrics_inc(s->g->m_stale);
            return;
        }
        s->worker_epoch = r->owner_epoch;
        s->worker_next = r->sequence + 1;
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
        if (strcmp(r->code_name, "audio_gap"))
            return;
        /* audio lost between here and the worker (core NATS): the client
         * hears of it, in order with the results around it */
        ev.type = HARK_EVENT_AUDIO_GAP;
        ev.start = r->audio_offset;
        ev.duration = r->gap_duration;
        ev.message = r->text ? r->text : "";
        break;
    case NRES_PROVIDER_FAILOVER:
        ev.type = HARK_EVENT_PROVIDER_FAILOVER;
        ev.code = r->code;
        ev.message = r->text ? r->text : "";
        ev.failover_reason = r->reason_name;
        ev.from_engine = r->from;
        ev.to_engine = r->to;
        ev.start = r->start;
        break;
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
    if (atomic_load(&s->frozen)) { /* being handed over: its messages wait */
        pthread_mutex_unlock(&g->mu);
        return;
    }
    struct gitem *it = s->head;
    s->head = s->tail = NULL;
    s->queued_bytes = 0;
    s->polling = 1;
    pthread_mutex_unlock(&g->mu);
    while (it) {
        struct gitem *next = it->next;
        if (!s->closed_delivered) {
            deliver(s, it);
            if (it->hash)
                s->last_hash = it->hash;
        }
        gwsess_item_free(it);
        it = next;
    }
    pthread_mutex_lock(&g->mu);
    s->polling = 0;
    pthread_mutex_unlock(&g->mu);
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
    /* abandoned before its end went out (the client went away): the
     * worker's session ends too instead of waiting for its idle timeout */
    if (!s->end_sent && !s->closed_delivered && !atomic_load(&s->frozen)) {
        struct buf b;
        buf_init(&b);
        nres_render_simple(&b, "end");
        publish_buf(g, s, &b);
        buf_deinit(&b);
    }
    for (struct gout *o = s->ohead, *next; o; o = next) {
        next = o->next;
        hark_free(o);
    }
    s->ohead = s->otail = NULL;
    struct gitem *it = natsgw_release(s); /* s may be gone from here on */
    while (it) {
        struct gitem *next = it->next;
        gwsess_item_free(it);
        it = next;
    }
    metrics_add(g->m_sessions, -1);
}

const struct backend_ops gwsess_ops = {
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
