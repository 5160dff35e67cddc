/*
 * Engine "deepgram": relays a session to any Deepgram-compatible live
 * endpoint (Deepgram itself, another hark's /v1/listen) over one WebSocket
 * per session, opened at the session's first utterance and closed at its end.
 *
 * What goes up: 16 kHz linear16 mono (encoding/sample_rate/channels in the
 * query, with language, model, interim_results and keywords from the
 * session). hark's VAD cuts utterances: only their audio is sent (seed 001's
 * "skip silent audio"); between utterances a KeepAlive every keepalive_ms
 * keeps the provider's idle timer (Deepgram's: 10 s) from closing the
 * connection. An utterance's end sends {"type":"Finalize"}; the provider
 * answers with a Results marked from_finalize, and every is_final Results
 * since the previous one make the utterance's final. Interim Results are the
 * partials. Word times come from the provider's stream clock (the audio sent
 * so far), moved to the utterance's own.
 *
 * Threads (ENGINE_ASYNC, engine.h): one libwebsockets service thread per
 * loaded model serves every session's connection, so no worker thread waits
 * on a socket. Session threads touch a stream's shared fields under the
 * model's `mu` and wake the service thread with lws_cancel_service (the only
 * lws call made off it). libwebsockets because hark already links it for its
 * front end and C client; it brings TLS (wss://), ping/pong liveness and the
 * handshake.
 *
 * Failures end the stream for good (the recognise stage fails the session
 * over to the fallback engine, which replays the open utterance): refused
 * key (HTTP 401/403 at the handshake: "auth"), another handshake status
 * ("http_status"), no connection or a dropped one ("unreachable"), a close
 * by the provider with a code ("closed"), no answer to a Finalize within
 * timeout_ms of it or of the provider's last message, or audio the provider
 * does not read ("timeout"). Not retried:
 * reconnecting mid-utterance would lose the provider's context, and the
 * fallback loses nothing.
 */
#include <libwebsockets.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "client/client_url.h"
#include "engines/deepgram/dg_reply.h"
#include "engines/engine.h"

/* Utterances one session may have awaiting their Finalize answer. */
#define MAX_INFLIGHT 64
/* Audio queued for a provider that does not read it: 30 s of 16 kHz s16le.
 * Past it the stream fails ("timeout") instead of growing. */
#define MAX_TX_BYTES (30u * 16000u * 2u)
/* Longest provider message (a Results of a minute of speech is ~40 KB). */
#define MAX_RX_BYTES (1u << 20)
#define CHUNK_BYTES 8192 /* audio per WebSocket message: 256 ms */
#define TICK_US (250 * 1000)

enum st { S_NEW, S_CONNECTING, S_OPEN, S_DEAD };

struct dg_done {
    struct dg_done *next;
    uint64_t ticket;
    int err;
    const char *reason;
    char message[256];
    char *text;
    struct engine_word *words;
    size_t n_words;
    float confidence;
};

/* A submitted utterance: Finalize goes after byte `at` of the stream. */
struct tk {
    uint64_t ticket;
    uint64_t at;
    double off_s;    /* the utterance's start on the provider's clock */
    int64_t sent_ns; /* when its Finalize went out; 0 = not yet */
};

struct engine_model {
    struct client_url url;
    char *key;
    char *model; /* default upstream model; "" = the provider's */
    int timeout_ms, keepalive_ms;
    int vad_gate; /* 1: only utterances go up (KeepAlive between); 0: all audio */

    struct lws_context *ctx;
    pthread_t th;
    int th_started;
    lws_sorted_usec_list_t sul_tick;
    lws_retry_bo_t retry;
    uint8_t wbuf[LWS_PRE + CHUNK_BYTES + 64]; /* service thread */

    pthread_mutex_t mu;     /* guards everything below and streams' shared fields */
    pthread_cond_t done_cv; /* a completion was queued (utt_wait) */
    struct engine_stream *streams;
    int stop, dying;
    unsigned streams_total, streams_in_use;
    double audio_seconds, answer_seconds;
    uint64_t bytes_sent, keepalives;
};

struct engine_stream {
    struct engine_model *m;
    struct engine_stream *next; /* m->streams */
    char sid[64];
    char *path; /* with the query */
    void (*notify)(void *);
    void *notify_user;

    /* guarded by m->mu */
    enum st state;
    struct lws *wsi;
    int released;
    int err; /* failed for good: every ticket gets this */
    const char *reason;
    char message[256];
    uint8_t *tx; /* bytes [sent, queued) of the stream, unsent */
    size_t tx_len, tx_cap;
    uint64_t queued, sent;
    uint64_t utt_at;  /* `queued` at the open utterance's start */
    uint64_t last_at; /* `at` of the last ticket */
    struct tk tks[MAX_INFLIGHT];
    unsigned tk_head, tk_n, tk_sent;
    struct buf acc_text;           /* is_final text since the last Finalize answer */
    struct engine_word *acc_words; /* times on the provider's clock */
    size_t acc_n, acc_cap;
    char *interim;
    struct dg_done *done_head, *done_tail;
    int64_t last_tx_ns;
    int64_t last_rx_ns; /* the provider's last message */
    int peer_close;

    /* service thread only */
    struct buf rx;

    /* session thread only */
    struct dg_done *cur;
    char *partial;
};

static void done_free(struct dg_done *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->n_words; i++)
        hark_free(d->words[i].word);
    hark_free(d->words);
    hark_free(d->text);
    hark_free(d);
}

static void acc_clear(struct engine_stream *s)
{
    for (size_t i = 0; i < s->acc_n; i++)
        hark_free(s->acc_words[i].word);
    s->acc_n = 0;
    buf_reset(&s->acc_text);
    hark_free(s->interim);
    s->interim = NULL;
}

static void stream_free(struct engine_stream *s)
{
    struct dg_done *d = s->done_head;
    while (d) {
        struct dg_done *n = d->next;
        done_free(d);
        d = n;
    }
    done_free(s->cur);
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
static void push_done(struct engine_stream *s, struct dg_done *d)
{
    if (s->done_tail)
        s->done_tail->next = d;
    else
        s->done_head = d;
    s->done_tail = d;
    pthread_cond_broadcast(&s->m->done_cv);
    if (s->notify && !s->released)
        s->notify(s->notify_user);
}

static void push_error(struct engine_stream *s, uint64_t ticket)
{
    struct dg_done *d = hark_calloc(1, sizeof *d);
    if (!d) {
        LOG_ERROR(s->sid, "deepgram: out of memory queueing an error");
        return; /* the recognise stage's own bound ends the wait */
    }
    d->ticket = ticket;
    d->err = s->err;
    d->reason = s->reason;
    snprintf(d->message, sizeof d->message, "%s", s->message);
    push_done(s, d);
}

/* Under m->mu: the stream cannot go on; every awaited utterance gets the
 * error, and so will every later one (utt_submit). */
static void fail(struct engine_stream *s, int err, const char *reason, const char *fmt, ...)
    HARK_PRINTF(4, 5);
static void fail(struct engine_stream *s, int err, const char *reason, const char *fmt, ...)
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
        push_error(s, s->tks[s->tk_head].ticket);
        s->tk_head = (s->tk_head + 1) % MAX_INFLIGHT;
        s->tk_n--;
    }
    s->tk_sent = 0;
    s->tx_len = 0;
    /* The service thread closes the connection (service_streams): lws is
     * called on that thread only, and fail() runs on session threads too. */
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
    struct dg_done *d = hark_calloc(1, sizeof *d);
    if (d && !(d->text = hark_strdup(s->acc_text.data ? s->acc_text.data : "")))
        done_free(d), d = NULL;
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
        fail(s, HARK_E_NOMEM, "error", "out of memory keeping a result");
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
    push_done(s, d);
}

static void on_message(struct engine_stream *s, const char *msg, size_t len)
{
    struct dg_reply r;
    char err[200];
    int rc = dg_reply_parse(&r, msg, len, err, sizeof err);
    pthread_mutex_lock(&s->m->mu);
    s->last_rx_ns = clock_mono_ns();
    if (rc) {
        fail(s, rc == HARK_E_NOMEM ? rc : HARK_E_PROVIDER, "bad_reply",
             "provider message unusable: %s", err);
    } else if (r.type == DG_ERROR) {
        fail(s, HARK_E_PROVIDER, "error", "provider error: %s", r.message);
    } else if (r.type == DG_RESULTS && !s->err) {
        if (r.is_final) {
            if (acc_append(s, &r))
                fail(s, HARK_E_NOMEM, "error", "out of memory keeping a result");
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
            fail(s, HARK_E_PROVIDER, "unreachable", "cannot connect to %s:%d", m->url.host,
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
                stream_free(s);
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
                fail(s, HARK_E_TIMEOUT, "timeout",
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
        fail(s, HARK_E_AUTH, "auth", "provider refused the key (HTTP %d)", status);
    else if (status > 0)
        fail(s, HARK_E_PROVIDER, "http_status", "provider answered HTTP %d to the upgrade", status);
    else if (s->peer_close && s->peer_close != LWS_CLOSE_STATUS_NORMAL)
        fail(s, HARK_E_PROVIDER, "closed", "provider closed the connection (%d%s%.160s)",
             s->peer_close, why && *why ? ": " : "", why ? why : "");
    else
        fail(s, HARK_E_PROVIDER, "unreachable", "connection to the provider lost%s%.200s",
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
            fail(s, HARK_E_PROVIDER, "bad_reply", "provider message over %u bytes", MAX_RX_BYTES);
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

static const struct lws_protocols protocols[] = {
    {"hark-deepgram", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg)
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

/* ------------------------------------------------------------ model */

static const char *const setting_names = "url, key, model, timeout_ms, keepalive_ms, vad_gate";

static void model_free(struct engine_model *m)
{
    if (!m)
        return;
    if (m->th_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_mutex_unlock(&m->mu);
        lws_cancel_service(m->ctx);
        pthread_join(m->th, NULL);
    }
    m->dying = 1;
    if (m->ctx)
        lws_context_destroy(m->ctx); /* closes what is open; callbacks see dying */
    /* Sessions are gone (hark_engine_destroy's contract). */
    while (m->streams) {
        struct engine_stream *s = m->streams;
        m->streams = s->next;
        stream_free(s);
    }
    hark_free(m->key);
    hark_free(m->model);
    pthread_cond_destroy(&m->done_cv);
    pthread_mutex_destroy(&m->mu);
    hark_free(m);
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

static int model_load(struct engine_model **out, const char *const *settings, char *errbuf,
                      size_t errbuf_size)
{
    *out = NULL;
    struct engine_model *m = hark_calloc(1, sizeof *m);
    if (!m)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&m->done_cv, &attr);
    pthread_condattr_destroy(&attr);
    m->timeout_ms = 10000;
    m->keepalive_ms = 4000;
    m->vad_gate = 1;
    const char *url = "wss://api.deepgram.com/v1/listen", *key = "", *model = "";
    int rc = 0;
    for (int i = 0; settings && settings[i] && !rc; i += 2) {
        const char *name = settings[i], *v = settings[i + 1];
        if (!v)
            rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                         "deepgram: setting %s has no value", name);
        else if (!strcmp(name, "url"))
            url = v[0] ? v : url;
        else if (!strcmp(name, "key"))
            key = v;
        else if (!strcmp(name, "model"))
            model = v;
        else if (!strcmp(name, "vad_gate")) {
            if (!strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "true"))
                m->vad_gate = 1;
            else if (!strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "false"))
                m->vad_gate = 0;
            else
                rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                             "deepgram setting vad_gate='%s': yes or no", v);
        } else if (!strcmp(name, "timeout_ms") || !strcmp(name, "keepalive_ms")) {
            int *dst = name[0] == 't' ? &m->timeout_ms : &m->keepalive_ms;
            if (parse_int(v, 100, 600000, dst))
                rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                             "deepgram setting %s='%s' is out of range", name, v);
        } else if (strcmp(name, "pool_min") && strcmp(name, "pool_max"))
            rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                         "unknown deepgram setting '%s' (known: %s)", name, setting_names);
    }
    char uerr[200];
    if (!rc && client_url_parse(&m->url, url, uerr, sizeof uerr))
        rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                     "deepgram: %s (e.g. wss://api.deepgram.com/v1/listen; --deepgram-url)", uerr);
    if (rc) {
        model_free(m);
        return rc;
    }
    /* A URL without a path means the live endpoint, not hark's own. */
    const char *after = strstr(url, "://") + 3;
    if (!strpbrk(after, "/?"))
        snprintf(m->url.path, sizeof m->url.path, "/v1/listen");
    m->key = hark_strdup(key);
    m->model = hark_strdup(model);
    if (!m->key || !m->model) {
        model_free(m);
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    }
    /* Liveness: a PING after 10 s without traffic, hang up 10 s later. */
    m->retry.secs_since_valid_ping = 10;
    m->retry.secs_since_valid_hangup = 20;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = m;
    info.timeout_secs = (unsigned)(m->timeout_ms + 999) / 1000; /* connect and handshake */
    info.gid = -1;
    info.uid = -1;
    if (m->url.tls)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    if (!(m->ctx = lws_create_context(&info))) {
        model_free(m);
        return err_set(errbuf, errbuf_size, HARK_E_INTERNAL,
                       "deepgram: cannot create the WebSocket context");
    }
    if (pthread_create(&m->th, NULL, service_main, m)) {
        model_free(m);
        return err_set(errbuf, errbuf_size, HARK_E_INTERNAL, "deepgram: cannot start its thread");
    }
    m->th_started = 1;
    LOG_INFO(NULL, "deepgram: %s://%s%s, model %s, Finalize timeout %d ms, %s%s",
             m->url.tls ? "wss" : "ws", m->url.hostport, m->url.path,
             m->model[0] ? m->model : "(provider's default)", m->timeout_ms,
             m->vad_gate ? "speech only" : "all audio", key[0] ? ", with a key" : "");
    *out = m;
    return 0;
}

/* ------------------------------------------------------------ streams */

static void put_param(struct buf *b, const char *name, const char *value)
{
    buf_printf(b, "%c%s=", strchr(b->data ? b->data : "", '?') ? '&' : '?', name);
    for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-_.~", *p))
            buf_putc(b, (char)*p);
        else
            buf_printf(b, "%%%02X", *p);
    }
}

static int stream_acquire(struct engine_model *m, const struct engine_stream_cfg *cfg, int wait_ms,
                          struct engine_stream **out, char *errbuf, size_t errbuf_size)
{
    (void)wait_ms; /* nothing pooled: a stream is a connection and its queues */
    struct engine_stream *s = hark_calloc(1, sizeof *s);
    if (!s)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    s->m = m;
    buf_init(&s->acc_text);
    buf_init(&s->rx);
    snprintf(s->sid, sizeof s->sid, "%s", cfg->session_id ? cfg->session_id : "");
    s->notify = cfg->notify;
    s->notify_user = cfg->notify_user;
    struct buf q;
    buf_init(&q);
    buf_puts(&q, m->url.path);
    put_param(&q, "encoding", "linear16");
    put_param(&q, "sample_rate", "16000");
    put_param(&q, "channels", "1");
    put_param(&q, "interim_results", cfg->want_partials ? "true" : "false");
    if (cfg->language && cfg->language[0])
        put_param(&q, "language", cfg->language);
    const char *model = cfg->model && cfg->model[0] ? cfg->model : m->model;
    if (model[0])
        put_param(&q, "model", model);
    for (size_t i = 0; cfg->vocabulary && cfg->vocabulary[i]; i++)
        put_param(&q, "keywords", cfg->vocabulary[i]);
    if (q.oom || !(s->path = hark_strdup(q.data))) {
        buf_deinit(&q);
        stream_free(s);
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    }
    buf_deinit(&q);
    pthread_mutex_lock(&m->mu);
    m->streams_total++;
    m->streams_in_use++;
    s->next = m->streams;
    m->streams = s;
    pthread_mutex_unlock(&m->mu);
    lws_cancel_service(m->ctx); /* connects it */
    *out = s;
    return 0;
}

static void stream_release(struct engine_stream *s)
{
    struct engine_model *m = s->m;
    pthread_mutex_lock(&m->mu);
    m->streams_in_use--;
    s->released = 1;
    LOG_DEBUG(s->sid, "deepgram: %.1f s of audio sent upstream", (double)s->queued / 32000.0);
    pthread_mutex_unlock(&m->mu);
    lws_cancel_service(m->ctx); /* closes and frees it on the service thread */
}

static int queue_audio(struct engine_stream *s, const float *x, size_t n);

static int utt_start(struct engine_stream *s)
{
    pthread_mutex_lock(&s->m->mu);
    s->utt_at = s->queued;
    pthread_mutex_unlock(&s->m->mu);
    hark_free(s->partial);
    s->partial = NULL;
    return 0;
}

static int utt_feed(struct engine_stream *s, const float *x, size_t n)
{
    return queue_audio(s, x, n);
}

static int wants_gaps(const struct engine_model *m)
{
    return !m->vad_gate;
}

static int gap_feed(struct engine_stream *s, const float *x, size_t n)
{
    return queue_audio(s, x, n);
}

static int queue_audio(struct engine_stream *s, const float *x, size_t n)
{
    struct engine_model *m = s->m;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    if (s->err) {
        /* failed: the audio is kept by the recognise stage for the fallback */
    } else if (s->tx_len + n * 2 > MAX_TX_BYTES) {
        fail(s, HARK_E_TIMEOUT, "timeout", "provider does not take audio (%u s queued)",
             MAX_TX_BYTES / 32000);
    } else if (mem_grow(&s->tx, &s->tx_cap, s->tx_len + n * 2, 1)) {
        rc = HARK_E_NOMEM;
    } else {
        uint8_t *p = s->tx + s->tx_len;
        for (size_t i = 0; i < n; i++) {
            float v = x[i] * 32768.0f;
            int16_t q = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : v);
            p[2 * i] = (uint8_t)(q & 0xff);
            p[2 * i + 1] = (uint8_t)((uint16_t)q >> 8);
        }
        s->tx_len += n * 2;
        s->queued += n * 2;
        m->audio_seconds += (double)n / ENGINE_RATE;
    }
    pthread_mutex_unlock(&m->mu);
    lws_cancel_service(m->ctx);
    return rc;
}

/* The open utterance's words so far: its finals and the latest interim,
 * while no earlier utterance awaits its answer (those words would be its). */
static int utt_partial(struct engine_stream *s, struct engine_result *out)
{
    struct buf b;
    buf_init(&b);
    pthread_mutex_lock(&s->m->mu);
    if (!s->tk_n && !s->err) {
        if (s->acc_text.len)
            buf_puts(&b, s->acc_text.data);
        if (s->interim && s->interim[0])
            buf_printf(&b, "%s%s", b.len ? " " : "", s->interim);
    }
    pthread_mutex_unlock(&s->m->mu);
    hark_free(s->partial);
    s->partial = b.len && !b.oom ? hark_strdup(b.data) : NULL;
    buf_deinit(&b);
    *out = (struct engine_result){.text = s->partial ? s->partial : "", .confidence = 1.0f};
    return 0;
}

static int utt_submit(struct engine_stream *s, uint64_t ticket)
{
    struct engine_model *m = s->m;
    int rc = 0;
    pthread_mutex_lock(&m->mu);
    if (s->err) {
        push_error(s, ticket);
    } else if (s->tk_n >= MAX_INFLIGHT) {
        rc = HARK_E_LIMIT;
    } else if (s->queued == s->last_at) {
        /* No audio since the last Finalize: nothing to hear, and a
         * provider need not answer an empty Finalize. */
        struct dg_done *d = hark_calloc(1, sizeof *d);
        if (!d || !(d->text = hark_strdup(""))) {
            hark_free(d);
            rc = HARK_E_NOMEM;
        } else {
            d->ticket = ticket;
            push_done(s, d);
        }
    } else {
        s->tks[(s->tk_head + s->tk_n) % MAX_INFLIGHT] = (struct tk){
            .ticket = ticket,
            .at = s->queued,
            .off_s = (double)s->utt_at / 32000.0,
        };
        s->tk_n++;
        s->last_at = s->queued;
    }
    pthread_mutex_unlock(&m->mu);
    lws_cancel_service(m->ctx);
    return rc;
}

static int utt_poll(struct engine_stream *s, struct engine_done *out)
{
    struct engine_model *m = s->m;
    done_free(s->cur);
    s->cur = NULL;
    pthread_mutex_lock(&m->mu);
    struct dg_done *d = s->done_head;
    if (d) {
        s->done_head = d->next;
        if (!s->done_head)
            s->done_tail = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    if (!d)
        return 0;
    s->cur = d;
    out->ticket = d->ticket;
    out->err = d->err;
    out->reason = d->reason;
    snprintf(out->message, sizeof out->message, "%s", d->message);
    out->result = (struct engine_result){
        .text = d->text ? d->text : "",
        .words = d->words,
        .n_words = d->n_words,
        .confidence = d->confidence,
    };
    return 1;
}

static void utt_wait(struct engine_stream *s, int timeout_ms)
{
    struct engine_model *m = s->m;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&m->mu);
    while (!s->done_head && s->tk_n)
        if (timeout_ms < 0)
            pthread_cond_wait(&m->done_cv, &m->mu);
        else if (pthread_cond_timedwait(&m->done_cv, &m->mu, &deadline))
            break;
    pthread_mutex_unlock(&m->mu);
}

static void stats(struct engine_model *m, struct hark_engine_stats *out)
{
    pthread_mutex_lock(&m->mu);
    out->streams_total = m->streams_total;
    out->streams_in_use = m->streams_in_use;
    out->decode_seconds = m->answer_seconds;
    out->audio_seconds = m->audio_seconds;
    pthread_mutex_unlock(&m->mu);
}

const struct engine_ops engine_deepgram = {
    .abi = ENGINE_ABI,
    .name = "deepgram",
    .description = "any Deepgram-compatible live WebSocket endpoint (--deepgram-url)",
    .languages = "*", /* the provider decides; hark passes the language on */
    .models = "*",    /* any name: passed on as the provider's model= */
    .model_load = model_load,
    .model_free = model_free,
    .stream_acquire = stream_acquire,
    .stream_release = stream_release,
    .utt_start = utt_start,
    .utt_feed = utt_feed,
    .utt_partial = utt_partial,
    .utt_end = NULL,
    .stats = stats,
    .flags = ENGINE_ASYNC,
    .utt_submit = utt_submit,
    .utt_poll = utt_poll,
    .utt_wait = utt_wait,
    .wants_gaps = wants_gaps,
    .gap_feed = gap_feed,
};
