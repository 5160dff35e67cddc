/*
 * The NATS worker edge: seed 004's protocol on top of the session core.
 * See natsw.h for the threads and docs/nats.md for the wire format.
 *
 * Per session id there is one struct nsess, the front end's bookkeeping
 * (timers, duplicate detection), in the session host's table
 * (host/table.h, the same table as the WebSocket sessions'), which owns the
 * chan that runs the session; the render state the workers use (ids,
 * sequence counter) is a struct nrender freed with the chan. The session
 * rules are host/limits.h's, admission host/admit.h's and the session
 * metrics host/stats.h's, as for WebSocket sessions. Input errors
 * never end the worker: each becomes a typed {type:"error"} message on the
 * session's result subject plus a log line.
 */
#include "front/nats/natsw.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdarg.h>
#include <signal.h>
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
#include "front/nats/nconn.h"
#include "front/nats/nmsg.h"
#include "host/admit.h"
#include "host/limits.h"
#include "host/stats.h"
#include "host/table.h"
#include "session/options.h"

#define TICK_MS 100
#define RECENT_CHUNKS 8 /* duplicate detection window */
#define ENDED_IDS 256   /* recently ended ids, for "late chunk" errors */
#define LOG_BURST 20    /* input-error log lines per second, then summarised */

/* The render state: used by the worker running the chan, freed with the
 * chan (chan_on_free), so a worker still rendering for a session abandoned
 * at the shutdown deadline never sees it freed. */
struct nrender {
    char id[NMSG_ID_MAX];
    char speaker[NMSG_SPEAKER_MAX];
    uint64_t sequence;  /* results published so far */
    int64_t segments;   /* finals published so far */
    int events;         /* the start asked for speech_started and utterance_end ("events": true) */
    double time_offset; /* s of audio before this worker's (natsw_resume) */
    struct chan *chan;
    struct stats *stats;
};

struct nsess {
    char id[NMSG_ID_MAX];
    char speaker[NMSG_SPEAKER_MAX];
    struct nrender *r;

    /* front end state, guarded by natsw.mu */
    struct tsess *ts;        /* the host table's entry: owns the chan */
    struct chan *chan;       /* ts->chan, while in the table */
    struct admit_slot *slot; /* counted by host/admit.h until the session is freed */
    struct limits_sess lim;  /* host/limits.h; lim.closing: end or a verdict posted the close */
    int64_t last_chunk;      /* monotonic ns */
    int chunk_timeout_ms;    /* the server's, or the start's "chunk_timeout" */
    uint64_t received_bytes; /* audio accepted, for the answer to a keepalive */
    int audio_since_finalize;
    int has_ts;
    double max_ts;
    struct {
        double ts;
        uint64_t hash;
        size_t len;
    } recent[RECENT_CHUNKS];
    unsigned recent_n;
    /* Gap detection (docs/nats.md "Lost audio"): raw PCM only */
    double bytes_per_sec; /* 0: a container encoding, chunk durations unknown */
    int next_ts_valid;
    double next_ts;   /* client time where the next chunk's audio should start */
    double audio_pos; /* seconds of audio the session received */

    atomic_int silent; /* natsw_abandon: another worker owns it; nothing is published */

    /* pump only */
    int done; /* the session's last message was taken */
    struct chan_msg *out_head, *out_tail;
    struct nsess *work_next;
    struct nsess *fin_next; /* ended: freed by the pump after publishing */
    char subject[];         /* {subject_out}.{id} */
};

struct natsw {
    struct natsw_cfg cfg;
    char *url, *subj_in, *subj_out, *name;
    struct hark_options *defaults;
    struct hark_engine *eng;
    struct workers *pool;
    natsConnection *nc;
    natsSubscription *sub;
    atomic_int connected;

    pthread_mutex_t mu;     /* the table */
    struct table *table;    /* host/table.h: the sessions by id */
    struct nsess *finished; /* left the table: freed by the pump after publishing */
    char ended[ENDED_IDS][NMSG_ID_MAX];
    unsigned ended_n;
    struct limits_cfg limits; /* host/limits.h: the session rules */
    struct limits_drain drain;

    pthread_mutex_t wmu; /* wake-ups of the pump */
    pthread_cond_t wcv;
    int wake_pending;
    pthread_t pump;
    int pump_started;
    volatile sig_atomic_t stop_requested;

    /* delivery thread only: log rate limit */
    int64_t log_window;
    unsigned log_count, log_suppressed;

    atomic_ullong msgs_in, errors_out, publish_failed, sessions_total;
    struct metric *m_msgs, *m_gaps, *m_gap_seconds, *m_connected;
    struct stats stats; /* host/stats.h: events, errors, latencies, audio */

    struct natsw_hooks hooks; /* external input (jsw.h); zero when none */

    /* presence probe (one worker per subject space) */
    natsSubscription *presence;
    char presence_subject[300];
    char instance[160]; /* "hark worker pid P on HOST", the probe's answer */
};

/* ------------------------------------------------------------ table */

static uint64_t fnv1a(const void *data, size_t n)
{
    const uint8_t *p = data;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static void ended_add(struct natsw *nw, const char *id)
{
    snprintf(nw->ended[nw->ended_n++ % ENDED_IDS], NMSG_ID_MAX, "%s", id);
}

static int ended_has(struct natsw *nw, const char *id)
{
    unsigned n = nw->ended_n < ENDED_IDS ? nw->ended_n : ENDED_IDS;
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(nw->ended[i], id))
            return 1;
    return 0;
}

static void ended_forget(struct natsw *nw, const char *id)
{
    unsigned n = nw->ended_n < ENDED_IDS ? nw->ended_n : ENDED_IDS;
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(nw->ended[i], id))
            nw->ended[i][0] = 0;
}

static struct nsess *find(struct natsw *nw, const char *id)
{
    struct tsess *t = table_find(nw->table, id);
    return t ? t->user : NULL;
}

/* A session left the host table (table_end, under nw->mu): the chan is
 * released right after this; the nsess waits in nw->finished until the pump
 * has published what it took from the chan. */
static void ended_cb(void *user, struct tsess *ts)
{
    struct natsw *nw = user;
    struct nsess *s = ts->user;
    double audio, cpu;
    stats_ended(&nw->stats, ts->chan, &audio, &cpu);
    if (chan_done(ts->chan)) /* no worker renders for it any more */
        LOG_INFO(s->id, "session ended: %.2f s audio, %.3f s cpu, %llu results", audio, cpu,
                 (unsigned long long)s->r->sequence);
    else
        LOG_INFO(s->id, "session abandoned: %.2f s audio, %.3f s cpu", audio, cpu);
    admit_release(s->slot);
    s->slot = NULL;
    s->ts = NULL;
    s->chan = NULL;
    s->r = NULL; /* freed with the chan */
    ended_add(nw, s->id);
    s->fin_next = nw->finished;
    nw->finished = s;
}

static void free_msgs(struct chan_msg *m)
{
    while (m) {
        struct chan_msg *n = m->next;
        hark_free(m);
        m = n;
    }
}

static void nsess_free(struct nsess *s)
{
    if (!s)
        return;
    free_msgs(s->out_head);
    hark_free(s);
}

/* ------------------------------------------------------------ publishing */

static void publish(struct natsw *nw, const char *subject, const void *data, size_t len)
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

static int input_log_allowed(struct natsw *nw)
{
    int64_t now = clock_mono_ns();
    if (now - nw->log_window >= 1000000000LL) {
        if (nw->log_suppressed)
            LOG_WARN(NULL, "%u more input errors in the last second were not logged",
                     nw->log_suppressed);
        nw->log_window = now;
        nw->log_count = 0;
        nw->log_suppressed = 0;
    }
    if (nw->log_count < LOG_BURST) {
        nw->log_count++;
        return 1;
    }
    nw->log_suppressed++;
    return 0;
}

/* A typed error for the sender, published straight away from the delivery
 * thread (natsConnection_Publish is thread-safe and only buffers). */
static void send_error(struct natsw *nw, const char *id, const char *speaker, int err,
                       const char *fmt, ...) HARK_PRINTF(5, 6);

static void send_error(struct natsw *nw, const char *id, const char *speaker, int err,
                       const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (input_log_allowed(nw))
        LOG_WARN(id, "%s: %s", hark_err_code(err), msg);
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s.%s", nw->subj_out, id);
    size_t subj_len = b.len;
    buf_putc(&b, 0);
    nmsg_render_error(&b, id, speaker, err, msg, nmsg_now());
    if (!b.oom) {
        publish(nw, b.data, b.data + subj_len + 1, b.len - subj_len - 1);
        atomic_fetch_add(&nw->errors_out, 1);
    }
    buf_deinit(&b);
}

/* Queue a message produced by the pump itself behind the session's results. */
static void pump_note(struct nsess *s, const struct buf *b)
{
    if (b->oom)
        return;
    struct chan_msg *m = hark_malloc(sizeof *m + b->len + 1);
    if (!m)
        return;
    memset(m, 0, sizeof *m);
    m->flags = MSG_BINARY;
    m->len = b->len;
    memcpy(m->data, b->data, b->len);
    m->data[b->len] = 0;
    if (s->out_tail)
        s->out_tail->next = m;
    else
        s->out_head = m;
    s->out_tail = m;
}

static void note_error(struct natsw *nw, struct nsess *s, int err, const char *msg)
{
    struct buf b;
    buf_init(&b);
    nmsg_render_error(&b, s->id, s->speaker, err, msg, nmsg_now());
    pump_note(s, &b);
    buf_deinit(&b);
    atomic_fetch_add(&nw->errors_out, 1);
}

/* ------------------------------------------------------------ render (workers) */

static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    struct nrender *s = user;
    stats_event(s->stats, ev);
    *flags |= MSG_BINARY;
    double now = nmsg_now();
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT: {
        /* A segment that covers no audio was a finalize in silence: nothing
         * was said, so there is no result to publish (docs/nats.md). */
        if (!(ev->end > ev->start) && !(ev->text && ev->text[0]))
            return;
        struct nmsg_result r = {
            .session_id = s->id,
            .speaker_id = s->speaker,
            .transcript = ev->text ? ev->text : "",
            .sequence = s->sequence++,
            .is_final = ev->is_final,
            .timestamp = now,
            .has_voice_activity = ev->voice_activity, /* what the VAD heard */
            /* the session's turn right now: exact, since render runs
             * inside the session call (an interrupt has already switched it) */
            .state = hark_session_get_state(chan_session(s->chan)),
            .segment = s->segments,
            .start = ev->start,
            .end = ev->end,
            .speech_final = ev->speech_final,
            .reason = ev->is_final ? hark_reason_name(ev->reason) : NULL,
            .committed_ms = ev->committed_ms,
            .confidence = ev->confidence,
            .words = ev->words,
            .n_words = ev->n_words,
            .time_offset = s->time_offset,
        };
        if (ev->is_final)
            s->segments++;
        nmsg_render_result(out, &r);
        return;
    }
    case HARK_EVENT_INTERRUPT:
        nmsg_render_interrupt(out, s->id, s->speaker, now, ev->start + s->time_offset);
        return;
    case HARK_EVENT_ERROR:
        nmsg_render_error(out, s->id, s->speaker, ev->code, ev->message, now);
        if (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED)
            *flags |= MSG_FATAL;
        return;
    case HARK_EVENT_CLOSED:
        nmsg_render_closed(out, s->id, s->speaker, now, ev->audio_seconds + s->time_offset,
                           s->segments);
        return;
    case HARK_EVENT_SPEECH_STARTED:
        /* not part of seed 004: only for a start with "events": true (a
         * gateway relaying a Deepgram client's vad_events) */
        if (s->events)
            nmsg_render_speech_started(out, s->id, s->speaker, now, ev->start + s->time_offset,
                                       s->segments);
        return;
    case HARK_EVENT_UTTERANCE_END:
        if (s->events)
            nmsg_render_utterance_end(out, s->id, s->speaker, now, ev->end + s->time_offset);
        return;
    default:
        return;
    }
}

/* ------------------------------------------------------------ input (delivery thread) */

/* At most one error per input message; it is published after the table
 * lock is dropped. */
struct pend_err {
    int code;
    char speaker[NMSG_SPEAKER_MAX];
    char msg[600];
    /* or an audio_gap warning (code 0) */
    int gap;
    /* or the acknowledgement of a start that asked for one ("ack": true) */
    int started;
    /* or the answer to a keepalive: the session's audio accepted and still
     * queued (a gateway paces its audio by it) */
    int alive;
    uint64_t received, queued;
    double gap_start, gap_duration, audio_offset;
};

static void fail(struct pend_err *pe, const char *speaker, int code, const char *fmt, ...)
    HARK_PRINTF(4, 5);

static void fail(struct pend_err *pe, const char *speaker, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pe->msg, sizeof pe->msg, fmt, ap);
    va_end(ap);
    pe->code = code;
    snprintf(pe->speaker, sizeof pe->speaker, "%s", speaker ? speaker : "");
}

/* The session stops taking input: its finals, then closed. */
static void end_session(struct nsess *s)
{
    s->lim.closing = 1;
    admit_closing(s->slot);
    chan_post_close(s->chan);
}

/* The host's verdict (host/limits.h) in this protocol: the reason as an
 * error message in order with the results (a fatal error was one itself),
 * then the finals and closed. Under nw->mu. */
static void verdict(struct natsw *nw, struct nsess *s, enum limits_verdict v, int code,
                    const char *msg)
{
    if (v != LIMITS_FATAL)
        note_error(nw, s, code, msg);
    end_session(s);
}

static int is_option(const char *name)
{
    for (int i = 0; hark_options_name(i); i++)
        if (!strcmp(hark_options_name(i), name))
            return 1;
    return 0;
}

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

/* The session's options: server defaults, then the start message. */
static int start_options(struct natsw *nw, const struct nmsg_in *m, struct hark_options **out,
                         char *err, size_t n)
{
    struct hark_options *o;
    int rc = hark_options_copy(&o, nw->defaults);
    if (rc)
        return err_set(err, n, rc, "out of memory");
    char v[32];
    int own_max_utt = 0;
    if (m->has_sample_rate) {
        snprintf(v, sizeof v, "%lld", (long long)m->sample_rate);
        if ((rc = hark_options_set(o, "sample_rate", v, err, n)))
            goto fail;
    }
    if (m->has_channels) {
        snprintf(v, sizeof v, "%lld", (long long)m->channels);
        if ((rc = hark_options_set(o, "channels", v, err, n)))
            goto fail;
    }
    for (size_t i = 0; i < m->n_extras; i++) {
        const struct nmsg_extra *e = &m->extras[i];
        if (!is_option(e->name)) {
            LOG_DEBUG(m->session_id, "start: key '%s' ignored (not a session option)", e->name);
            continue;
        }
        if ((rc = hark_options_set(o, e->name, e->value, err, n)))
            goto fail;
        own_max_utt |= !strcmp(e->name, "max_utterance_ms");
    }
    if (nw->cfg.buffer_size_bytes && !own_max_utt) {
        /* STT_BUFFER_SIZE_BYTES: the seed transcribed at most this much audio
         * at once; the streaming equivalent is the longest utterance. */
        double bps = (double)o->sample_rate * o->channels * bytes_per_sample(o);
        double ms = (double)nw->cfg.buffer_size_bytes * 1000.0 / bps;
        if (ms < 1000)
            ms = 1000;
        if (ms > 120000)
            ms = 120000;
        snprintf(v, sizeof v, "%d", (int)ms);
        if ((rc = hark_options_set(o, "max_utterance_ms", v, err, n)))
            goto fail;
    }
    *out = o;
    return 0;
fail:
    hark_options_destroy(o);
    return rc;
}

static void on_start(struct natsw *nw, const char *id, const struct nmsg_in *m,
                     const struct natsw_resume *rs, struct pend_err *pe)
{
    char err[512];
    struct nsess *s = find(nw, id);
    if (s) {
        fail(pe, s->speaker, HARK_E_STATE,
             s->lim.closing ? "session %s is still finishing; wait for its closed message "
                              "before starting it again"
                            : "session %s is already started; send end first",
             id);
        return;
    }
    /* One admission policy for every front end (host/admit.h): the same
     * session count and measured demand as the WebSocket sessions. */
    struct admit_slot *slot = NULL;
    /* A session continued from another worker (jsw.h) was admitted once
     * and is live: refusing it for load would end it mid-stream, so only
     * the session count applies (as for bulk work). */
    int rc = admit_acquire(nw->cfg.admit, rs ? 0 : 1, &slot, err, sizeof err);
    if (rc) {
        fail(pe, m->speaker_id, rc, "%s", err);
        return;
    }
    struct hark_options *o = NULL;
    if ((rc = start_options(nw, m, &o, err, sizeof err))) {
        admit_release(slot);
        fail(pe, m->speaker_id, rc, "start refused: %s", err);
        return;
    }
    size_t subj = strlen(nw->subj_out) + 1 + strlen(id) + 1;
    s = hark_calloc(1, sizeof *s + subj);
    struct nrender *r = hark_calloc(1, sizeof *r);
    if (!s || !r) {
        hark_free(s);
        hark_free(r);
        admit_release(slot);
        hark_options_destroy(o);
        fail(pe, m->speaker_id, HARK_E_NOMEM, "out of memory");
        return;
    }
    s->slot = slot;
    if (o->encoding == ENC_PCM_S16LE || o->encoding == ENC_PCM_F32LE || o->encoding == ENC_MULAW ||
        o->encoding == ENC_ALAW)
        s->bytes_per_sec = (double)o->sample_rate * o->channels * bytes_per_sample(o);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->speaker, sizeof s->speaker, "%s", m->speaker_id);
    snprintf(s->subject, subj, "%s.%s", nw->subj_out, id);
    memcpy(r->id, s->id, sizeof r->id);
    memcpy(r->speaker, s->speaker, sizeof r->speaker);
    r->stats = &nw->stats;
    for (size_t i = 0; i < m->n_extras; i++)
        r->events |= !strcmp(m->extras[i].name, "events") && !strcmp(m->extras[i].value, "true");
    rc = chan_create(&s->chan, nw->pool, nw->eng, o, id, render, r, nw->cfg.session_buffer_bytes,
                     err, sizeof err);
    hark_options_destroy(o);
    if (rc) {
        admit_release(s->slot);
        hark_free(s);
        hark_free(r);
        fail(pe, m->speaker_id, rc, "start refused: %s", err);
        return;
    }
    r->chan = s->chan;
    s->r = r;
    chan_on_free(s->chan, hark_free, r);
    if (table_add(nw->table, s->chan, r, s, &s->ts)) { /* the table released the chan */
        admit_release(s->slot);
        hark_free(s);
        fail(pe, m->speaker_id, HARK_E_NOMEM, "out of memory");
        return;
    }
    s->ts->user = s;
    admit_bind(s->slot, s->chan);
    s->chunk_timeout_ms = nw->cfg.chunk_timeout_ms;
    for (size_t i = 0; i < m->n_extras; i++) {
        /* hark's start extensions that are not session options (docs/nats.md):
         * a client with its own utterance rules (`hark serve --backend`)
         * turns the chunk gap rule off, and asks for an acknowledgement so
         * that a start nobody answered is told from one refused */
        const struct nmsg_extra *e = &m->extras[i];
        char *end;
        if (!strcmp(e->name, "chunk_timeout")) {
            double sec = strtod(e->value, &end);
            if (!*end && sec >= 0 && sec <= 600)
                s->chunk_timeout_ms = (int)(sec * 1000);
        } else if (!strcmp(e->name, "ack") && !strcmp(e->value, "true")) {
            pe->started = 1;
            snprintf(pe->speaker, sizeof pe->speaker, "%s", s->speaker);
        }
    }
    if (rs) {
        r->sequence = rs->sequence;
        r->segments = rs->segments;
        r->time_offset = s->bytes_per_sec > 0 ? (double)rs->offset_bytes / s->bytes_per_sec : 0;
    }
    if (rs && rs->segments > 0) { /* the state at its last final */
        if (rs->responding)
            chan_post_state(s->chan, HARK_STATE_RESPONDING);
    } else if (m->has_state && m->state == HARK_STATE_RESPONDING) { /* no final yet */
        chan_post_state(s->chan, HARK_STATE_RESPONDING);
    }
    s->last_chunk = clock_mono_ns();
    limits_open(&s->lim, s->last_chunk);
    s->lim.got_message = 1; /* start is the first message */
    ended_forget(nw, id);
    atomic_fetch_add(&nw->sessions_total, 1);
    if (rs)
        LOG_INFO(id, "session resumed from another worker at %.2f s, sequence %llu", r->time_offset,
                 (unsigned long long)rs->sequence);
    else
        LOG_INFO(id, "session started (%s%s%s)",
                 m->has_state ? nmsg_state_name(m->state) : "listening",
                 s->speaker[0] ? ", speaker " : "", s->speaker);
}

/* Ordering and duplicates by the chunk's timestamp (docs/nats.md). */
static int check_order(struct nsess *s, const struct nmsg_in *m, struct pend_err *pe)
{
    if (!m->has_timestamp)
        return 0;
    if (s->has_ts && m->timestamp < s->max_ts) {
        fail(pe, s->speaker, HARK_E_STATE,
             "late chunk: timestamp %.6f is older than an earlier chunk's %.6f; dropped "
             "(audio must arrive in order)",
             m->timestamp, s->max_ts);
        return -1;
    }
    uint64_t h = fnv1a(m->audio, m->audio_len);
    unsigned n = s->recent_n < RECENT_CHUNKS ? s->recent_n : RECENT_CHUNKS;
    for (unsigned i = 0; i < n; i++) {
        if (s->recent[i].ts == m->timestamp && s->recent[i].hash == h &&
            s->recent[i].len == m->audio_len) {
            fail(pe, s->speaker, HARK_E_STATE,
                 "duplicate chunk: same timestamp %.6f and audio as an earlier chunk; "
                 "dropped",
                 m->timestamp);
            return -1;
        }
    }
    unsigned at = s->recent_n++ % RECENT_CHUNKS;
    s->recent[at].ts = m->timestamp;
    s->recent[at].hash = h;
    s->recent[at].len = m->audio_len;
    s->max_ts = m->timestamp;
    s->has_ts = 1;
    return 0;
}

/* Lost audio (docs/nats.md "Lost audio"): core NATS delivers at most once,
 * so chunks published while the worker was not subscribed (a nats-server
 * restart, a network cut) are gone. The chunks' timestamps tell: a chunk
 * should start where the audio before it ended. Clocks jitter, so only a
 * jump past --audio-gap-threshold is reported; a chunk that starts early
 * (a client sending faster than real time) is no gap. Called for audio the
 * session accepted. */
static void track_audio(struct natsw *nw, struct nsess *s, const struct nmsg_in *m,
                        struct pend_err *pe)
{
    if (!s->bytes_per_sec)
        return;
    double dur = (double)m->audio_len / s->bytes_per_sec;
    if (m->has_timestamp) {
        double gap = m->timestamp - s->next_ts;
        if (s->next_ts_valid && nw->cfg.gap_threshold_ms && gap * 1000 > nw->cfg.gap_threshold_ms) {
            pe->gap = 1;
            pe->gap_start = s->next_ts;
            pe->gap_duration = gap;
            pe->audio_offset = s->audio_pos;
            snprintf(pe->speaker, sizeof pe->speaker, "%s", s->speaker);
            snprintf(pe->msg, sizeof pe->msg,
                     "audio gap: the chunk at timestamp %.3f starts %.3f s after the audio before "
                     "it ended (%.3f); that audio never arrived (lost while the worker was not "
                     "subscribed, or not sent) and is missing at %.3f s of the session's audio",
                     m->timestamp, gap, s->next_ts, s->audio_pos);
            metrics_inc(nw->m_gaps);
            metrics_add(nw->m_gap_seconds, gap);
        }
        s->next_ts = m->timestamp + dur;
        s->next_ts_valid = 1;
    } else if (s->next_ts_valid) {
        s->next_ts += dur;
    }
    s->audio_pos += dur;
}

static void no_session(struct natsw *nw, const char *id, const struct nmsg_in *m,
                       struct pend_err *pe)
{
    if (ended_has(nw, id))
        fail(pe, m->speaker_id, HARK_E_STATE, "%s for session %s, which has ended; dropped",
             nmsg_type_name(m->type), id);
    else
        fail(pe, m->speaker_id, HARK_E_STATE,
             "%s for session %s, which was never started; send start first",
             nmsg_type_name(m->type), id);
}

static void dispatch(struct natsw *nw, const char *id, const struct nmsg_in *m,
                     const struct natsw_resume *rs, struct pend_err *pe)
{
    if (m->type == NMSG_START) {
        on_start(nw, id, m, rs, pe);
        return;
    }
    struct nsess *s = find(nw, id);
    if (m->type == NMSG_KEEPALIVE) {
        /* answered also while the session ends (its sender waits for its
         * last finals and wants to know this worker is still there); one
         * for a session unknown here is no error: it just gets no answer */
        if (s) {
            limits_activity(&s->lim, clock_mono_ns(), 1);
            pe->alive = 1;
            pe->received = s->received_bytes;
            pe->queued = chan_pending_bytes(s->chan);
            snprintf(pe->speaker, sizeof pe->speaker, "%s", s->speaker);
        }
        return;
    }
    if (!s) {
        no_session(nw, id, m, pe);
        return;
    }
    if (s->lim.closing) {
        fail(pe, s->speaker, HARK_E_STATE, "%s for session %s, which is ending; dropped",
             nmsg_type_name(m->type), id);
        return;
    }
    int64_t now = clock_mono_ns();
    limits_activity(&s->lim, now, 1);
    switch (m->type) {
    case NMSG_CHUNK: {
        if (check_order(s, m, pe))
            return;
        s->last_chunk = now;
        if (!m->audio_len)
            return;
        s->audio_since_finalize = 1;
        int rc = chan_post_audio(s->chan, m->audio, m->audio_len);
        if (!rc) {
            admit_audio(s->slot, now);
            track_audio(nw, s, m, pe);
            s->received_bytes += m->audio_len;
        }
        if (rc == HARK_E_LIMIT)
            fail(pe, s->speaker, rc,
                 "session buffer full (%zu bytes of audio waiting, limit %zu); chunk of %zu "
                 "bytes dropped: this worker is behind real time",
                 chan_pending_bytes(s->chan), nw->cfg.session_buffer_bytes, m->audio_len);
        else if (rc)
            fail(pe, s->speaker, rc, "chunk dropped: %s", hark_strerror(rc));
        return;
    }
    case NMSG_STATE_CHANGE: {
        /* Coalesces with a state change still queued; refused only when
         * audio and controls alternate past the session buffer. */
        int rc = chan_post_state(s->chan, m->state);
        if (rc)
            fail(pe, s->speaker, rc, "state_change dropped: %s", hark_strerror(rc));
        return;
    }
    case NMSG_END:
        end_session(s);
        LOG_DEBUG(id, "end received");
        return;
    case NMSG_FINALIZE: {
        /* a client's finalize: the utterance's final now */
        s->audio_since_finalize = 0;
        int rc = chan_post_finalize(s->chan);
        if (rc)
            fail(pe, s->speaker, rc, "finalize dropped: %s", hark_strerror(rc));
        return;
    }
    case NMSG_KEEPALIVE: /* answered above */
    case NMSG_START:
        return;
    }
}

/* The audio_gap warning, published at once like input errors (it is about
 * the chunk that just arrived, not about results). */
static void send_gap(struct natsw *nw, const char *id, const struct pend_err *pe)
{
    LOG_WARN(id, "%s", pe->msg);
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s.%s", nw->subj_out, id);
    size_t subj_len = b.len;
    buf_putc(&b, 0);
    nmsg_render_gap(&b, id, pe->speaker, pe->msg, nmsg_now(), pe->gap_start, pe->gap_duration,
                    pe->audio_offset);
    if (!b.oom)
        publish(nw, b.data, b.data + subj_len + 1, b.len - subj_len - 1);
    buf_deinit(&b);
}

/* The acknowledgement of a start with "ack": true, published before any
 * result of the session can be (its audio comes in later messages on this
 * same thread). */
static void send_started(struct natsw *nw, const char *id, const struct pend_err *pe)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s.%s", nw->subj_out, id);
    size_t subj_len = b.len;
    buf_putc(&b, 0);
    nmsg_render_started(&b, id, pe->speaker, nmsg_now(), nw->instance);
    if (!b.oom)
        publish(nw, b.data, b.data + subj_len + 1, b.len - subj_len - 1);
    buf_deinit(&b);
}

static void send_alive(struct natsw *nw, const char *id, const struct pend_err *pe)
{
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%s.%s", nw->subj_out, id);
    size_t subj_len = b.len;
    buf_putc(&b, 0);
    nmsg_render_alive(&b, id, pe->speaker, nmsg_now(), pe->received, pe->queued);
    if (!b.oom)
        publish(nw, b.data, b.data + subj_len + 1, b.len - subj_len - 1);
    buf_deinit(&b);
}

static void handle(struct natsw *nw, const char *id, const void *data, size_t len,
                   const struct natsw_resume *rs, struct natsw_fed *fed)
{
    char err[600];
    atomic_fetch_add(&nw->msgs_in, 1);
    metrics_inc(nw->m_msgs);
    if (!*id || strlen(id) >= NMSG_ID_MAX) {
        send_error(nw, id, NULL, HARK_E_INVAL,
                   "session id must be 1..%d bytes (the last token of the subject)",
                   NMSG_ID_MAX - 1);
        return;
    }
    if (len > nw->cfg.max_message_bytes) {
        send_error(nw, id, NULL, HARK_E_LIMIT,
                   "message of %zu bytes is larger than the %zu allowed", len,
                   nw->cfg.max_message_bytes);
        return;
    }
    struct nmsg_in m;
    struct pend_err pe = {0};
    int rc = nmsg_parse(&m, data, len, err, sizeof err);
    pthread_mutex_lock(&nw->mu);
    struct nsess *s = find(nw, id);
    const char *speaker = s ? s->speaker : NULL;
    if (rc) {
        fail(&pe, speaker, rc, "%s", err);
    } else if (m.has_session_id && strcmp(m.session_id, id)) {
        fail(&pe, speaker, HARK_E_PROTOCOL,
             "session_id \"%s\" differs from the subject's session id \"%s\"", m.session_id, id);
    } else {
        dispatch(nw, id, &m, rs, &pe);
    }
    if (fed) {
        fed->accepted = !pe.code;
        fed->type = rc ? -1 : (int)m.type;
        fed->audio_len = rc ? 0 : m.audio_len;
        s = pe.code ? NULL : find(nw, id);
        fed->bytes_per_sec = s ? s->bytes_per_sec : 0;
    }
    pthread_mutex_unlock(&nw->mu);
    nmsg_free(&m);
    if (pe.code)
        send_error(nw, id, pe.speaker, pe.code, "%s", pe.msg);
    else if (pe.gap)
        send_gap(nw, id, &pe);
    else if (pe.started)
        send_started(nw, id, &pe);
    else if (pe.alive)
        send_alive(nw, id, &pe);
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct natsw *nw = closure;
    const char *subject = natsMsg_GetSubject(msg);
    size_t plen = strlen(nw->subj_in);
    /* the subscription is {subject_in}.*: the rest is exactly one token */
    if (!strncmp(subject, nw->subj_in, plen) && subject[plen] == '.') {
        int n = natsMsg_GetDataLength(msg);
        handle(nw, subject + plen + 1, natsMsg_GetData(msg), n > 0 ? (size_t)n : 0, NULL, NULL);
    }
    natsMsg_Destroy(msg);
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

/* ------------------------------------------------------------ pump */

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
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += TICK_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
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
            verdict(nw, s, LIMITS_SHUTDOWN, code, msg);
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
    for (struct tsess *t = table_first(nw->table), *next; t; t = next) {
        next = t->next;
        struct nsess *s = t->user;
        struct chan_msg *m = chan_take_msgs(s->chan);
        for (struct chan_msg *i = m; i; i = i->next) {
            if (i->flags & MSG_LAST)
                s->done = 1;
            if (limits_event(&s->lim, i->flags) == LIMITS_FATAL)
                verdict(nw, s, LIMITS_FATAL, 0, NULL);
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
            verdict(nw, s, v, code, msg);
        }
        if (s->out_head) {
            s->work_next = NULL;
            *work_tail = s;
            work_tail = &s->work_next;
        }
        if (s->done)
            table_end(nw->table, t); /* ended_cb: to nw->finished */
    }
    if (limits_drain_over(&nw->drain, now, table_count(nw->table) > 0)) {
        if (table_count(nw->table))
            LOG_WARN(NULL, "shutdown deadline passed with %d session(s) unfinished",
                     table_count(nw->table));
        /* a worker may still render for one: its render state goes with
         * its chan */
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
                publish(nw, s->subject, i->data, i->len);
            stats_latency(&nw->stats, i, sent);
        }
        if (!atomic_load(&s->silent) && nw->hooks.batch)
            nw->hooks.batch(nw->hooks.user, s->id, m, 1);
        free_msgs(m);
    }
    while (finished) {
        struct nsess *s = finished;
        finished = s->fin_next;
        nsess_free(s);
    }
    return exit_now;
}

static void *pump_main(void *arg)
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
    natsStatus st = natsConnection_Subscribe(&nw->sub, nw->nc, subject, on_msg, nw);
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
    struct table_cfg tc = {.ended_cb = ended_cb, .user = nw};
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
    if (pthread_create(&nw->pump, NULL, pump_main, nw)) {
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
                const struct natsw_resume *resume, struct natsw_fed *fed)
{
    *fed = (struct natsw_fed){.type = -1};
    handle(nw, id, data, len, resume, fed);
}

void natsw_abandon(struct natsw *nw, const char *id)
{
    pthread_mutex_lock(&nw->mu);
    struct nsess *s = find(nw, id);
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
    hark_free(nw);
}
