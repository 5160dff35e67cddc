/*
 * The NATS front end's input (natsw_state.h): each message on
 * {subject_in}.{id} (or fed by an external input, natsw_feed) is parsed
 * (front/nats/nmsg.h) and posted to its session's chan on the thread that
 * delivered it, which never blocks. Input errors never end the worker: each
 * becomes a typed {type:"error"} message on the session's result subject,
 * published at once, plus a log line (rate-limited).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/nats/natsw_state.h"
#include "host/admit.h"
#include "host/table.h"
#include "session/options.h"

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

/* A message for session id published from the delivery thread: b holds
 * "{subject_out}.{id}\0", the body is rendered after it, and out_publish
 * sends it unless rendering ran out of memory (then 0), then frees b. */
static size_t out_begin(struct natsw *nw, struct buf *b, const char *id)
{
    buf_init(b);
    buf_printf(b, "%s.%s", nw->subj_out, id);
    size_t subj_len = b->len;
    buf_putc(b, 0);
    return subj_len;
}

static int out_publish(struct natsw *nw, struct buf *b, size_t subj_len)
{
    int ok = !b->oom;
    if (ok)
        natsw_publish(nw, b->data, b->data + subj_len + 1, b->len - subj_len - 1);
    buf_deinit(b);
    return ok;
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
    size_t subj_len = out_begin(nw, &b, id);
    nmsg_render_error(&b, id, speaker, err, msg, nmsg_now());
    if (out_publish(nw, &b, subj_len))
        atomic_fetch_add(&nw->errors_out, 1);
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

static int is_option(const char *name)
{
    for (int i = 0; hark_options_name(i); i++)
        if (!strcmp(hark_options_name(i), name))
            return 1;
    return 0;
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
        double bps = options_raw_bytes_per_sec(o);
        if (bps <= 0) /* a container: its format is in its header, 16-bit assumed */
            bps = (double)o->sample_rate * o->channels * 2;
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
                     uint64_t owner_epoch, const struct natsw_resume *rs, struct pend_err *pe)
{
    char err[512];
    struct nsess *s = nsess_find(nw, id);
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
    if (!s) {
        admit_release(slot);
        hark_options_destroy(o);
        fail(pe, m->speaker_id, HARK_E_NOMEM, "out of memory");
        return;
    }
    s->slot = slot;
    s->bytes_per_sec = options_raw_bytes_per_sec(o);
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->speaker, sizeof s->speaker, "%s", m->speaker_id);
    snprintf(s->subject, subj, "%s.%s", nw->subj_out, id);
    for (size_t i = 0; i < m->n_extras; i++)
        s->events |= !strcmp(m->extras[i].name, "events") && !strcmp(m->extras[i].value, "true");
    /* structured: the workers copy events, the pump renders them (nsess_take) */
    rc = chan_create(&s->chan, nw->pool, nw->eng, o, id, NULL, NULL, nw->cfg.session_buffer_bytes,
                     err, sizeof err);
    hark_options_destroy(o);
    if (rc) {
        admit_release(s->slot);
        hark_free(s);
        fail(pe, m->speaker_id, rc, "start refused: %s", err);
        return;
    }
    if (table_add(nw->table, s->chan, NULL, s, &s->ts)) { /* the table released the chan */
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
    s->owner_epoch = owner_epoch;
    if (rs) {
        s->sequence = rs->sequence;
        s->segments = rs->segments;
        s->time_offset = s->bytes_per_sec > 0 ? (double)rs->offset_bytes / s->bytes_per_sec : 0;
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
    nsess_ended_forget(nw, id);
    atomic_fetch_add(&nw->sessions_total, 1);
    if (rs)
        LOG_INFO(id, "session resumed from another worker at %.2f s, sequence %llu", s->time_offset,
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
    if (nsess_ended_has(nw, id))
        fail(pe, m->speaker_id, HARK_E_STATE, "%s for session %s, which has ended; dropped",
             nmsg_type_name(m->type), id);
    else
        fail(pe, m->speaker_id, HARK_E_STATE,
             "%s for session %s, which was never started; send start first",
             nmsg_type_name(m->type), id);
}

static void dispatch(struct natsw *nw, const char *id, const struct nmsg_in *m,
                     uint64_t owner_epoch, const struct natsw_resume *rs, struct pend_err *pe)
{
    if (m->type == NMSG_START) {
        on_start(nw, id, m, owner_epoch, rs, pe);
        return;
    }
    struct nsess *s = nsess_find(nw, id);
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
        nsess_end(s);
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
    size_t subj_len = out_begin(nw, &b, id);
    nmsg_render_gap(&b, id, pe->speaker, pe->msg, nmsg_now(), pe->gap_start, pe->gap_duration,
                    pe->audio_offset);
    out_publish(nw, &b, subj_len);
}

/* The acknowledgement of a start with "ack": true, published before any
 * result of the session can be (its audio comes in later messages on this
 * same thread). */
static void send_started(struct natsw *nw, const char *id, const struct pend_err *pe)
{
    struct buf b;
    size_t subj_len = out_begin(nw, &b, id);
    nmsg_render_started(&b, id, pe->speaker, nmsg_now(), nw->instance);
    out_publish(nw, &b, subj_len);
}

static void send_alive(struct natsw *nw, const char *id, const struct pend_err *pe)
{
    struct buf b;
    size_t subj_len = out_begin(nw, &b, id);
    nmsg_render_alive(&b, id, pe->speaker, nmsg_now(), pe->received, pe->queued);
    out_publish(nw, &b, subj_len);
}

void nin_handle(struct natsw *nw, const char *id, const void *data, size_t len,
                uint64_t owner_epoch, const struct natsw_resume *rs, struct natsw_fed *fed)
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
    struct nsess *s = nsess_find(nw, id);
    const char *speaker = s ? s->speaker : NULL;
    if (rc) {
        fail(&pe, speaker, rc, "%s", err);
    } else if (m.has_session_id && strcmp(m.session_id, id)) {
        fail(&pe, speaker, HARK_E_PROTOCOL,
             "session_id \"%s\" differs from the subject's session id \"%s\"", m.session_id, id);
    } else {
        dispatch(nw, id, &m, owner_epoch, rs, &pe);
    }
    if (fed) {
        fed->accepted = !pe.code;
        fed->type = rc ? -1 : (int)m.type;
        fed->audio_len = rc ? 0 : m.audio_len;
        s = pe.code ? NULL : nsess_find(nw, id);
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

void nin_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct natsw *nw = closure;
    const char *subject = natsMsg_GetSubject(msg);
    size_t plen = strlen(nw->subj_in);
    /* the subscription is {subject_in}.*: the rest is exactly one token */
    if (!strncmp(subject, nw->subj_in, plen) && subject[plen] == '.') {
        int n = natsMsg_GetDataLength(msg);
        nin_handle(nw, subject + plen + 1, natsMsg_GetData(msg), n > 0 ? (size_t)n : 0, 0, NULL,
                   NULL);
    }
    natsMsg_Destroy(msg);
}
