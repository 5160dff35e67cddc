/* The deepgram engine's service thread (dg_int.h): one libwebsockets
 * context per loaded model; every session's connection, what it sends (audio
 * up to the next Finalize mark, Finalize, KeepAlive), the provider's
 * messages into utterance results, and the failures that end a stream. See
 * deepgram.c for the protocol and the reasons behind it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/deepgram/dg_int.h"
#include "engines/deepgram/dg_reply.h"

static void acc_clear(struct engine_stream *s)
{
    for (size_t i = 0; i < s->acc_n; i++)
        hark_free(s->acc_words[i].word);
    s->acc_n = 0;
    buf_reset(&s->acc_text);
    hark_free(s->interim);
    s->interim = NULL;
}

void dg_conn_stream_free(struct engine_stream *s)
{
    netres_clear(&s->done);
    netres_done_free(s->cur);
    acc_clear(s);
    hark_free(s->acc_words);
    buf_deinit(&s->acc_text);
    buf_deinit(&s->rx);
    hark_free(s->tx);
    hark_free(s->interim);
    hark_free(s->partial);
    hark_free(s->path);
    hark_free(s);
}

/* Under m->mu: queue an outcome and tell the session. */
void dg_conn_push_done(struct engine_stream *s, struct netres_done *d)
{
    netres_push(&s->done, d);
    pthread_cond_broadcast(&s->m->done_cv);
    if (s->notify && !s->released)
        s->notify(s->notify_user);
}

void dg_conn_push_error(struct engine_stream *s, uint64_t ticket)
{
    struct netres_done *d = hark_calloc(1, sizeof *d);
    if (!d) {
        LOG_ERROR(s->sid, "deepgram: out of memory queueing an error");
        return; /* the recognise stage's own bound ends the wait */
    }
    d->ticket = ticket;
    d->err = s->err;
    d->reason = s->reason;
    snprintf(d->message, sizeof d->message, "%s", s->message);
    dg_conn_push_done(s, d);
}

/* Under m->mu: the stream cannot go on; every awaited utterance gets the
 * error, and so will every later one (utt_submit). */
void dg_conn_fail(struct engine_stream *s, int err, const char *reason, const char *fmt, ...)
{
    if (s->err)
        return;
    s->err = err;
    s->reason = reason;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->message, sizeof s->message, fmt, ap);
    va_end(ap);
    if (!s->released)
        LOG_INFO(s->sid, "deepgram: %s", s->message);
    while (s->tk_n) {
        dg_conn_push_error(s, s->tks[s->tk_head].ticket);
        s->tk_head = (s->tk_head + 1) % MAX_INFLIGHT;
        s->tk_n--;
    }
    s->tk_sent = 0;
    s->tx_len = 0;
    /* The service thread closes the connection (service_streams): lws is
     * called on that thread only, and dg_conn_fail() runs on session threads too. */
}

/* ------------------------------------------------------------ replies */

static int acc_append(struct engine_stream *s, const struct dg_reply *r)
{
    if (r->text[0]) {
        if (s->acc_text.len)
            buf_putc(&s->acc_text, ' ');
        buf_puts(&s->acc_text, r->text);
    }
    if (r->n_words &&
        mem_grow(&s->acc_words, &s->acc_cap, s->acc_n + r->n_words, sizeof *s->acc_words))
        return HARK_E_NOMEM;
    for (size_t i = 0; i < r->n_words; i++) {
        s->acc_words[s->acc_n] = r->words[i];
        if (!(s->acc_words[s->acc_n].word = hark_strdup(r->words[i].word)))
            return HARK_E_NOMEM;
        s->acc_n++;
    }
    return s->acc_text.oom ? HARK_E_NOMEM : 0;
}

/* Under m->mu: the head utterance is answered with what accumulated. */
static void complete_head(struct engine_stream *s, float confidence)
{
    struct tk *t = &s->tks[s->tk_head];
    struct netres_done *d = hark_calloc(1, sizeof *d);
    if (d && !(d->text = hark_strdup(s->acc_text.data ? s->acc_text.data : "")))
        netres_done_free(d), d = NULL;
    if (d && s->acc_n) {
        /* the accumulated words move over; times to the utterance's clock */
        d->words = s->acc_words;
        d->n_words = s->acc_n;
        for (size_t i = 0; i < d->n_words; i++) {
            d->words[i].start = d->words[i].start > t->off_s ? d->words[i].start - t->off_s : 0;
            d->words[i].end = d->words[i].end > t->off_s ? d->words[i].end - t->off_s : 0;
        }
        s->acc_words = NULL;
        s->acc_n = s->acc_cap = 0;
    }
    if (!d) {
        dg_conn_fail(s, HARK_E_NOMEM, "error", "out of memory keeping a result");
        return;
    }
    d->ticket = t->ticket;
    d->confidence = confidence;
    if (t->sent_ns)
        s->m->answer_seconds += (double)(clock_mono_ns() - t->sent_ns) / 1e9;
    s->tk_head = (s->tk_head + 1) % MAX_INFLIGHT;
    s->tk_n--;
    s->tk_sent--;
    acc_clear(s);
    dg_conn_push_done(s, d);
}

static void on_message(struct engine_stream *s, const char *msg, size_t len)
{
    struct dg_reply r;
    char err[200];
    int rc = dg_reply_parse(&r, msg, len, err, sizeof err);
    pthread_mutex_lock(&s->m->mu);
    s->last_rx_ns = clock_mono_ns();
    if (rc) {
        dg_conn_fail(s, rc == HARK_E_NOMEM ? rc : HARK_E_PROVIDER, "bad_reply",
                     "provider message unusable: %s", err);
    } else if (r.type == DG_ERROR) {
        dg_conn_fail(s, HARK_E_PROVIDER, "error", "provider error: %s", r.message);
    } else if (r.type == DG_RESULTS && !s->err) {
        if (r.is_final) {
            if (acc_append(s, &r))
                dg_conn_fail(s, HARK_E_NOMEM, "error", "out of memory keeping a result");
            hark_free(s->interim);
            s->interim = NULL;
        } else {
            hark_free(s->interim);
            s->interim = hark_strdup(r.text);
        }
        if (!s->err && r.from_finalize && s->tk_sent)
            complete_head(s, r.confidence);
    }
    pthread_mutex_unlock(&s->m->mu);
    dg_reply_clear(&r);
}

/* ------------------------------------------------------------ service thread */

/* Under m->mu: what the connection should send next, into m->wbuf. */
static size_t next_message(struct engine_model *m, struct engine_stream *s, int *binary)
{
    uint8_t *p = m->wbuf + LWS_PRE;
    *binary = 0;
    if (s->tk_sent < s->tk_n) {
        struct tk *t = &s->tks[(s->tk_head + s->tk_sent) % MAX_INFLIGHT];
        if (t->at <= s->sent) {
            t->sent_ns = clock_mono_ns();
            s->tk_sent++;
            return (size_t)snprintf((char *)p, CHUNK_BYTES, "{\"type\":\"Finalize\"}");
        }
    }
    if (s->tx_len) {
        size_t n = s->tx_len < CHUNK_BYTES ? s->tx_len : CHUNK_BYTES;
        if (s->tk_sent < s->tk_n) {
            uint64_t at = s->tks[(s->tk_head + s->tk_sent) % MAX_INFLIGHT].at;
            if (at - s->sent < n)
                n = (size_t)(at - s->sent);
        }
        memcpy(p, s->tx, n);
        memmove(s->tx, s->tx + n, s->tx_len - n);
        s->tx_len -= n;
        s->sent += n;
        m->bytes_sent += n;
        *binary = 1;
        return n;
    }
    if (clock_mono_ns() - s->last_tx_ns > (int64_t)m->keepalive_ms * 1000000) {
        m->keepalives++;
        return (size_t)snprintf((char *)p, CHUNK_BYTES, "{\"type\":\"KeepAlive\"}");
    }
    return 0;
}

static int on_writable(struct engine_model *m, struct engine_stream *s, struct lws *wsi)
{
    pthread_mutex_lock(&m->mu);
    if (s->released || s->err) {
        pthread_mutex_unlock(&m->mu);
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
        return -1;
    }
    int binary;
    size_t n = next_message(m, s, &binary);
    if (n)
        s->last_tx_ns = clock_mono_ns();
    int more = s->tx_len || s->tk_sent < s->tk_n;
    pthread_mutex_unlock(&m->mu);
    if (n &&
        lws_write(wsi, m->wbuf + LWS_PRE, n, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < (int)n)
        return -1;
    if (more)
        lws_callback_on_writable(wsi);
    return 0;
}

static void connect_stream(struct engine_model *m, struct engine_stream *s)
{
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = m->ctx;
    ci.address = m->url.host;
    ci.port = m->url.port;
    ci.path = s->path;
    ci.host = m->url.hostport;
    ci.origin = m->url.hostport;
    ci.ssl_connection = m->url.tls ? LCCSCF_USE_SSL : 0;
    ci.retry_and_idle_policy = &m->retry;
    ci.opaque_user_data = s;
    ci.protocol = NULL;
    struct lws *w = lws_client_connect_via_info(&ci);
    pthread_mutex_lock(&m->mu);
    if (s->state == S_CONNECTING) {
        if (w)
            s->wsi = w;
        else {
            s->state = S_DEAD;
            dg_conn_fail(s, HARK_E_PROVIDER, "unreachable", "cannot connect to %s:%d", m->url.host,
                         m->url.port);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

/* Connects new streams, frees released ones, asks to write what is due and
 * times out unanswered Finalizes. */
static void service_streams(struct engine_model *m)
{
    for (;;) {
        struct engine_stream *to_connect = NULL;
        int64_t now = clock_mono_ns();
        pthread_mutex_lock(&m->mu);
        for (struct engine_stream **pp = &m->streams; *pp;) {
            struct engine_stream *s = *pp;
            if (s->released && !s->wsi && s->state != S_CONNECTING) {
                *pp = s->next;
                dg_conn_stream_free(s);
                continue;
            }
            pp = &s->next;
            if (s->state == S_NEW && !s->released && !s->err && !to_connect) {
                s->state = S_CONNECTING;
                to_connect = s;
                continue;
            }
            if (s->state == S_CONNECTING && s->wsi && s->released)
                lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            if (s->state != S_OPEN || !s->wsi)
                continue;
            /* The wait counts from the Finalize or the provider's last
             * message, whichever is later: a provider still sending Results
             * is working through audio sent faster than real time. */
            int64_t since = s->tk_sent ? s->tks[s->tk_head].sent_ns : 0;
            if (s->last_rx_ns > since)
                since = s->last_rx_ns;
            if (s->tk_sent && now - since > (int64_t)m->timeout_ms * 1000000)
                dg_conn_fail(s, HARK_E_TIMEOUT, "timeout",
                             "provider did not answer a Finalize within %d ms", m->timeout_ms);
            if (s->released || s->err || s->tx_len || s->tk_sent < s->tk_n ||
                now - s->last_tx_ns > (int64_t)m->keepalive_ms * 1000000)
                lws_callback_on_writable(s->wsi);
        }
        pthread_mutex_unlock(&m->mu);
        if (!to_connect)
            return;
        connect_stream(m, to_connect);
    }
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct engine_model *m = lws_container_of(sul, struct engine_model, sul_tick);
    if (m->dying)
        return;
    service_streams(m);
    lws_sul_schedule(m->ctx, 0, &m->sul_tick, tick_cb, TICK_US);
}

/* The connection is gone: the stream fails unless it was ending anyway. */
static void on_down(struct engine_model *m, struct engine_stream *s, struct lws *wsi, int status,
                    const char *why)
{
    lws_set_opaque_user_data(wsi, NULL); /* no callback reaches a freed stream */
    pthread_mutex_lock(&m->mu);
    s->wsi = NULL;
    s->state = S_DEAD;
    if (status == 401 || status == 403)
        dg_conn_fail(s, HARK_E_AUTH, "auth", "provider refused the key (HTTP %d)", status);
    else if (status > 0)
        dg_conn_fail(s, HARK_E_PROVIDER, "http_status", "provider answered HTTP %d to the upgrade",
                     status);
    else if (s->peer_close && s->peer_close != LWS_CLOSE_STATUS_NORMAL)
        dg_conn_fail(s, HARK_E_PROVIDER, "closed", "provider closed the connection (%d%s%.160s)",
                     s->peer_close, why && *why ? ": " : "", why ? why : "");
    else
        dg_conn_fail(s, HARK_E_PROVIDER, "unreachable", "connection to the provider lost%s%.200s",
                     why && *why ? ": " : "", why ? why : "");
    pthread_mutex_unlock(&m->mu);
    lws_cancel_service(m->ctx); /* frees it if released */
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct lws_context *ctx = lws_get_context(wsi);
    struct engine_model *m = ctx ? lws_context_user(ctx) : NULL;
    if (!m)
        return 0;
    if (reason == LWS_CALLBACK_EVENT_WAIT_CANCELLED) {
        if (!m->dying)
            service_streams(m);
        return 0;
    }
    struct engine_stream *s = lws_get_opaque_user_data(wsi);
    if (!s || m->dying)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (m->key[0]) {
            unsigned char **p = (unsigned char **)in, *end = *p + len;
            char v[600];
            int n = snprintf(v, sizeof v, "Token %.580s", m->key);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)v,
                                             n, p, end))
                return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        pthread_mutex_lock(&m->mu);
        s->wsi = wsi;
        s->state = S_OPEN;
        s->last_tx_ns = clock_mono_ns();
        pthread_mutex_unlock(&m->mu);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        lws_validity_confirmed(wsi);
        if (lws_frame_is_binary(wsi))
            return 0;
        if (s->rx.len + len > MAX_RX_BYTES) {
            pthread_mutex_lock(&m->mu);
            dg_conn_fail(s, HARK_E_PROVIDER, "bad_reply", "provider message over %u bytes",
                         MAX_RX_BYTES);
            pthread_mutex_unlock(&m->mu);
            return -1;
        }
        buf_append(&s->rx, in, len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            if (!s->rx.oom)
                on_message(s, s->rx.data, s->rx.len);
            buf_reset(&s->rx);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writable(m, s, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            pthread_mutex_lock(&m->mu);
            s->peer_close = ((unsigned char *)in)[0] << 8 | ((unsigned char *)in)[1];
            if (len > 2 && !s->err)
                snprintf(s->message, sizeof s->message, "%.*s",
                         (int)(len - 2 > 200 ? 200 : len - 2), (const char *)in + 2);
            pthread_mutex_unlock(&m->mu);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
        char why[200];
        snprintf(why, sizeof why, "%s", in ? (const char *)in : "connection failed");
        on_down(m, s, wsi, (int)lws_http_client_http_response(wsi), why);
        return 0;
    }
    case LWS_CALLBACK_CLIENT_CLOSED: {
        char why[220] = "";
        pthread_mutex_lock(&m->mu);
        if (s->peer_close && !s->err)
            snprintf(why, sizeof why, "%.200s", s->message);
        pthread_mutex_unlock(&m->mu);
        on_down(m, s, wsi, 0, why);
        return 0;
    }
    default:
        return 0;
    }
}

const struct lws_protocols dg_conn_protocols[] = {
    {"hark-deepgram", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

void *dg_conn_service_main(void *arg)
{
    struct engine_model *m = arg;
    lws_sul_schedule(m->ctx, 0, &m->sul_tick, tick_cb, TICK_US);
    for (;;) {
        pthread_mutex_lock(&m->mu);
        int stop = m->stop;
        pthread_mutex_unlock(&m->mu);
        if (stop || lws_service(m->ctx, 0) < 0)
            break;
    }
    m->dying = 1;
    lws_sul_cancel(&m->sul_tick);
    return NULL;
}
