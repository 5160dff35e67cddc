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
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/deepgram/dg_int.h"

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
        dg_conn_stream_free(s);
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
    info.protocols = dg_conn_protocols;
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
    if (pthread_create(&m->th, NULL, dg_conn_service_main, m)) {
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
        dg_conn_stream_free(s);
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
        dg_conn_fail(s, HARK_E_TIMEOUT, "timeout", "provider does not take audio (%u s queued)",
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
        dg_conn_push_error(s, ticket);
    } else if (s->tk_n >= MAX_INFLIGHT) {
        rc = HARK_E_LIMIT;
    } else if (s->queued == s->last_at) {
        /* No audio since the last Finalize: nothing to hear, and a
         * provider need not answer an empty Finalize. */
        struct netres_done *d = hark_calloc(1, sizeof *d);
        if (!d) {
            rc = HARK_E_NOMEM;
        } else {
            d->ticket = ticket;
            dg_conn_push_done(s, d);
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
    return netres_poll(&s->m->mu, &s->done, &s->cur, out);
}

static void utt_wait(struct engine_stream *s, int timeout_ms)
{
    netres_wait(&s->m->mu, &s->m->done_cv, &s->done, &s->tk_n, timeout_ms);
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
