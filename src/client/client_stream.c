/* The C client's event stream: server messages (ready, resumed, ack,
 * events) become the user's one stream across connections and sessions,
 * and the ring is told what no reconnect can need any more. Runs on the
 * client's service thread only (client_int.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "client/client_int.h"

void client_stream_emit(struct hark_client *c, struct hark_client_event *ev)
{
    if (c->cb)
        c->cb(c->user, ev);
}

void client_stream_state(struct hark_client *c, enum hark_client_state s)
{
    pthread_mutex_lock(&c->mu);
    enum hark_client_state prev = c->state;
    if (prev == s || prev == HARK_CLIENT_CLOSED) {
        pthread_mutex_unlock(&c->mu);
        return;
    }
    c->state = s;
    pthread_mutex_unlock(&c->mu);
    struct hark_client_event ev = {.type = HARK_CLIENT_EVENT_STATE, .state = s, .prev_state = prev};
    client_stream_emit(c, &ev);
}

/* The state a live connection is in: finalizing once close was asked for. */
enum hark_client_state client_stream_live_state(struct hark_client *c)
{
    pthread_mutex_lock(&c->mu);
    int closing = c->close_req;
    pthread_mutex_unlock(&c->mu);
    return closing ? HARK_CLIENT_FINALIZING : HARK_CLIENT_STREAMING;
}

/* Silence byte and flow window for the encoding (byte_rate set). */
void client_stream_format(struct hark_client *c, const char *enc)
{
    c->silence = !strcmp(enc, "mulaw") ? 0xFF : !strcmp(enc, "alaw") ? 0xD5 : 0;
    c->window = c->byte_rate > 0 ? (uint64_t)(FLOW_WINDOW_S * c->byte_rate) : FLOW_WINDOW_BYTES;
}

static int64_t bytes_ms(const struct hark_client *c, uint64_t off)
{
    return c->byte_rate > 0 ? (int64_t)((double)off * 1000.0 / c->byte_rate) : -1;
}

void client_stream_lost(struct hark_client *c, uint64_t from, uint64_t to)
{
    if (to <= from)
        return;
    pthread_mutex_lock(&c->mu);
    c->stats.bytes_lost += to - from;
    pthread_mutex_unlock(&c->mu);
    struct hark_client_event ev = {.type = HARK_CLIENT_EVENT_AUDIO_LOST,
                                   .from_byte = from,
                                   .to_byte = to,
                                   .from_ms = bytes_ms(c, from),
                                   .to_ms = bytes_ms(c, to)};
    LOG_INFO(c->session_id, "client: audio lost: bytes %llu..%llu", (unsigned long long)from,
             (unsigned long long)to);
    client_stream_emit(c, &ev);
}

/* The end: no more connections. rc 0 after the last CLOSED, else why. */
void client_stream_finish(struct hark_client *c, int rc, const char *fmt, ...)
{
    if (c->state == HARK_CLIENT_CLOSED)
        return;
    if (rc && fmt) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        struct hark_client_event ev = {.type = HARK_CLIENT_EVENT_ERROR, .code = rc, .message = msg};
        LOG_INFO(c->session_id, "client: %s", msg);
        client_stream_emit(c, &ev);
    }
    if (c->wsi)
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
    lws_sul_cancel(&c->sul_retry);
    client_stream_state(c, HARK_CLIENT_CLOSED);
    pthread_mutex_lock(&c->mu);
    c->done = 1;
    c->rc = rc;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* What the ring must keep: for a resume, everything after the server's
 * acknowledgement; for a new session (raw encodings only), everything after
 * the last final's committed point. The rest may go. */
void client_stream_release(struct hark_client *c)
{
    uint64_t keep;
    if (c->byte_rate > 0)
        keep = c->token[0] && c->acked < c->committed ? c->acked : c->committed;
    else
        keep = c->token[0] ? c->acked : c->sent_hw;
    pthread_mutex_lock(&c->mu);
    if (keep > c->sent)
        keep = c->sent;
    client_ring_release(&c->ring, keep);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void on_ready(struct hark_client *c, const struct client_msg *m)
{
    uint64_t from = 0;
    if (c->have_session) {
        /* A new session continues the old one: from the last final's
         * committed point, which only raw encodings can find in bytes. */
        if (c->byte_rate <= 0) {
            client_stream_finish(
                c, HARK_E_RESUME_FAILED,
                "session %s could not be resumed, and audio in this encoding cannot be "
                "replayed into a new session (only pcm_s16le, pcm_f32le, mulaw and alaw can)",
                c->session_id);
            return;
        }
        from = c->committed;
        pthread_mutex_lock(&c->mu);
        uint64_t base = c->ring.base;
        pthread_mutex_unlock(&c->mu);
        if (from < base) /* sent as silence: times stay the stream's */
            client_stream_lost(c, from, base);
        snprintf(c->old_session_id, sizeof c->old_session_id, "%s", c->session_id);
        c->seg_base = c->last_final_seg + 1;
    }
    c->sess_base = from;
    c->closed_seconds = c->byte_rate > 0 ? (double)from / c->byte_rate : 0;
    snprintf(c->session_id, sizeof c->session_id, "%s", m->session_id);
    snprintf(c->token, sizeof c->token, "%s", m->resume_token);
    if (m->encoding[0] && m->sample_rate > 0 && m->channels > 0) {
        const char *e = m->encoding;
        unsigned sb = !strcmp(e, "pcm_s16le")                     ? 2
                      : !strcmp(e, "pcm_f32le")                   ? 4
                      : !strcmp(e, "mulaw") || !strcmp(e, "alaw") ? 1
                                                                  : 0;
        c->frame_bytes = sb * (unsigned)m->channels;
        c->byte_rate = (double)c->frame_bytes * m->sample_rate;
        client_stream_format(c, e);
    }
    c->last_seq = -1;
    c->seq_base = c->user_seq;
    c->acked = c->committed = from;
    c->session_over = c->want_new = 0;
    c->conn = CONN_LIVE;
    c->attempt = 0;
    c->down_since_ns = 0;
    pthread_mutex_lock(&c->mu);
    c->sent = from;
    c->sent_hw = from > c->sent_hw ? from : c->sent_hw;
    c->stats.connects++;
    c->stats.restarts += c->have_session;
    pthread_mutex_unlock(&c->mu);
    int restarted = c->have_session;
    c->have_session = c->ever_ready = 1;
    struct hark_client_event ev = {.type = HARK_CLIENT_EVENT_READY, .session_id = c->session_id};
    client_stream_emit(c, &ev);
    if (restarted) {
        struct hark_client_event rs = {.type = HARK_CLIENT_EVENT_RESTARTED,
                                       .session_id = c->session_id,
                                       .old_session_id = c->old_session_id,
                                       .offset_ms = bytes_ms(c, from)};
        LOG_INFO(c->session_id, "client: new session replaces %s from %lld ms", c->old_session_id,
                 (long long)rs.offset_ms);
        client_stream_emit(c, &rs);
    }
    client_stream_state(c, client_stream_live_state(c));
    client_stream_release(c);
    lws_callback_on_writable(c->wsi);
}

static void on_resumed(struct hark_client *c, const struct client_msg *m)
{
    uint64_t held = c->sess_base + m->audio_bytes;
    if (held > c->sent_hw || strcmp(m->session_id, c->session_id)) {
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        c->last_error = HARK_E_RESUME_FAILED; /* treated as refused: new session */
        return;
    }
    pthread_mutex_lock(&c->mu);
    uint64_t base = c->ring.base;
    pthread_mutex_unlock(&c->mu);
    uint64_t from = held;
    if (from < base) {
        client_stream_lost(c, from, base); /* raw: sent as silence; others: skipped */
        if (!c->frame_bytes)
            from = base;
    }
    if (held > c->acked)
        c->acked = held;
    pthread_mutex_lock(&c->mu);
    c->sent = from;
    c->stats.connects++;
    c->stats.resumes++;
    c->stats.bytes_acked = c->acked;
    pthread_mutex_unlock(&c->mu);
    c->conn = CONN_LIVE;
    c->resuming = 0;
    c->attempt = 0;
    c->down_since_ns = 0;
    struct hark_client_event ev = {.type = HARK_CLIENT_EVENT_RESUMED,
                                   .session_id = c->session_id,
                                   .resent_bytes = c->sent_hw - from};
    LOG_INFO(c->session_id, "client: resumed; resending %llu bytes",
             (unsigned long long)(c->sent_hw - from));
    client_stream_emit(c, &ev);
    client_stream_state(c, client_stream_live_state(c));
    client_stream_release(c);
    lws_callback_on_writable(c->wsi);
}

/* A session event: shifted into the user's single stream and delivered. */
static void on_event(struct hark_client *c, struct client_msg *m)
{
    struct hark_event *ev = &m->ev;
    if (c->conn != CONN_LIVE) {
        /* before ready/resumed: only an error refusing the config or resume */
        if (ev->type != HARK_EVENT_ERROR)
            return;
        c->last_error = ev->code;
        if (c->resuming)
            return; /* handled by the fallback, not the user's business */
    } else {
        if (c->last_seq >= 0 && (int64_t)ev->seq <= c->last_seq)
            return; /* replayed twice: already delivered */
        c->last_seq = (int64_t)ev->seq;
        if (ev->type == HARK_EVENT_ERROR)
            c->last_error = ev->code;
    }
    double off = c->closed_seconds;
    /* The server's seq, continued after the last session's (a gap the
     * server made stays visible); an error refusing a config has none. */
    ev->seq = c->conn == CONN_LIVE ? c->seq_base + ev->seq : c->user_seq;
    uint64_t next = c->user_seq;
    c->user_seq = ev->seq + 1;
    ev->session_id = c->session_id;
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT:
        ev->segment += c->seg_base;
        ev->start += off;
        ev->end += off;
        for (size_t i = 0; i < ev->n_words; i++) {
            m->words[i].start += off;
            m->words[i].end += off;
        }
        if (ev->is_final) {
            c->last_final_seg = ev->segment;
            if (c->frame_bytes) {
                uint64_t b = (uint64_t)((double)ev->committed_ms * c->byte_rate / 1000.0);
                b -= b % c->frame_bytes;
                if (c->sess_base + b > c->committed)
                    c->committed = c->sess_base + b;
            }
            ev->committed_ms += (int64_t)(off * 1000.0 + 0.5);
            client_stream_release(c);
        }
        break;
    case HARK_EVENT_SPEECH_STARTED:
    case HARK_EVENT_INTERRUPT:
    case HARK_EVENT_PROVIDER_FAILOVER:
    case HARK_EVENT_AUDIO_GAP:
        ev->start += off;
        break;
    case HARK_EVENT_UTTERANCE_END:
        ev->end += off;
        break;
    case HARK_EVENT_CLOSED:
        ev->audio_seconds += off;
        ev->segments += c->seg_base;
        pthread_mutex_lock(&c->mu);
        int asked = c->close_req && c->close_sent;
        pthread_mutex_unlock(&c->mu);
        if (!asked) {
            /* the server ended it (shutdown, idle, error): the audio not yet
             * in finals goes to a new session on the next connection */
            c->session_over = 1;
            c->user_seq = next;
            return;
        }
        break;
    case HARK_EVENT_ERROR:
        break;
    }
    struct hark_client_event out = {.type = HARK_CLIENT_EVENT_SESSION, .event = ev};
    client_stream_emit(c, &out);
    if (ev->type == HARK_EVENT_CLOSED)
        client_stream_finish(c, 0, NULL);
}

void client_stream_message(struct hark_client *c, const char *text, size_t len)
{
    char err[256];
    int rc = client_msg_parse(&c->msg, text, len, err, sizeof err);
    if (rc) {
        LOG_WARN(c->session_id, "client: bad message from the server: %s", err);
        return;
    }
    switch (c->msg.kind) {
    case CLIENT_MSG_READY:
        if (c->conn == CONN_OPEN && !c->resuming)
            on_ready(c, &c->msg);
        break;
    case CLIENT_MSG_RESUMED:
        if (c->conn == CONN_OPEN && c->resuming)
            on_resumed(c, &c->msg);
        break;
    case CLIENT_MSG_ACK:
        if (c->conn == CONN_LIVE && c->sess_base + c->msg.audio_bytes > c->acked &&
            c->sess_base + c->msg.audio_bytes <= c->sent_hw) {
            c->acked = c->sess_base + c->msg.audio_bytes;
            pthread_mutex_lock(&c->mu);
            c->stats.bytes_acked = c->acked;
            pthread_mutex_unlock(&c->mu);
            client_stream_release(c);
            lws_callback_on_writable(c->wsi); /* the flow window moved */
        }
        break;
    case CLIENT_MSG_EVENT:
        on_event(c, &c->msg);
        break;
    case CLIENT_MSG_UNKNOWN:
        break;
    }
}
