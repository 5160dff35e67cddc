/*
 * The C client of the native protocol (include/hark/client.h): one
 * libwebsockets context and one service thread per client.
 *
 * Who touches what: the user's threads append audio to the ring and
 * controls to a small queue under `mu`, then wake the service thread with
 * lws_cancel_service (the only lws call allowed off that thread). Everything
 * else (the connection, the session bookkeeping, timers, events) belongs to
 * the service thread. Events are delivered with `mu` released, so the
 * callback may queue audio.
 *
 * This file is the connection: connecting and backoff, writing, the
 * libwebsockets callback, timers, the thread and the public calls;
 * client_stream.c turns what the server says into the user's events.
 *
 * Byte offsets are absolute: offset 0 is the first byte ever queued, across
 * every connection and session. A server session started at `sess_base`;
 * its "audio_bytes" N is our offset sess_base + N.
 */
#include "hark/client.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "client/client_int.h"

const char *hark_client_state_name(enum hark_client_state s)
{
    static const char *const names[] = {"connecting",   "streaming",  "paused",
                                        "reconnecting", "finalizing", "closed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

const char *hark_client_event_name(enum hark_client_event_type t)
{
    static const char *const names[] = {"",          "session",    "ready",
                                        "resumed",   "state",      "reconnecting",
                                        "restarted", "audio_lost", "error"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "unknown";
}

void hark_client_config_init(struct hark_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->buffer_bytes = DEFAULT_RING;
    cfg->keepalive_ms = 5000;
    cfg->backoff_base_ms = 250;
    cfg->backoff_cap_ms = 10000;
}

/* Wakes the service thread; called with mu held (ctx_gone is read under it). */
void client_wake_locked(struct hark_client *c)
{
    if (!c->ctx_gone)
        lws_cancel_service(c->ctx);
}

/* ------------------------------------------------------------ connecting */

static void connect_now(struct hark_client *c);

static void retry_cb(lws_sorted_usec_list_t *sul)
{
    struct hark_client *c = lws_container_of(sul, struct hark_client, sul_retry);
    connect_now(c);
}

/* Exponential backoff with full jitter: uniform in [0, min(cap, base*2^n)). */
static unsigned backoff_ms(struct hark_client *c)
{
    uint64_t span = c->base_ms;
    for (unsigned i = 1; i < c->attempt && span < c->cap_ms; i++)
        span *= 2;
    if (span > c->cap_ms)
        span = c->cap_ms;
    c->rng ^= c->rng << 13; /* xorshift64: jitter needs no crypto */
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    return span ? (unsigned)(c->rng % span) : 0;
}

static void schedule_reconnect(struct hark_client *c, const char *why, int now)
{
    c->attempt++;
    unsigned delay = now ? 0 : backoff_ms(c);
    client_stream_state(c, HARK_CLIENT_RECONNECTING);
    struct hark_client_event ev = {.type = HARK_CLIENT_EVENT_RECONNECTING,
                                   .attempt = c->attempt,
                                   .delay_ms = delay,
                                   .message = why};
    LOG_INFO(c->session_id, "client: reconnecting in %u ms (attempt %u): %s", delay, c->attempt,
             why);
    client_stream_emit(c, &ev);
    if (c->state != HARK_CLIENT_CLOSED)
        lws_sul_schedule(c->ctx, 0, &c->sul_retry, retry_cb, (lws_usec_t)delay * 1000);
}

static void connect_now(struct hark_client *c)
{
    if (c->conn != CONN_NONE || c->state == HARK_CLIENT_CLOSED)
        return;
    struct lws_client_connect_info ci;
    memset(&ci, 0, sizeof ci);
    ci.context = c->ctx;
    ci.address = c->url.host;
    ci.port = c->url.port;
    ci.path = c->url.path;
    ci.host = c->url.hostport;
    ci.origin = c->url.hostport;
    ci.ssl_connection = c->url.tls ? LCCSCF_USE_SSL : 0;
    ci.retry_and_idle_policy = &c->retry;
    ci.opaque_user_data = (void *)++c->gen;
    ci.protocol = NULL;
    c->conn = CONN_CONNECTING;
    c->first_sent = c->resuming = c->close_sent = c->keepalive_due = 0;
    c->peer_close = c->last_error = 0;
    buf_reset(&c->rx);
    struct lws *w = lws_client_connect_via_info(&ci);
    if (w && c->conn == CONN_CONNECTING)
        c->wsi = w;
    if (!w && c->conn == CONN_CONNECTING) {
        /* failed before any callback could say so */
        c->wsi = NULL;
        c->conn = CONN_NONE;
        c->first_failures++;
        if (!c->ever_ready && c->connect_attempts && c->first_failures >= c->connect_attempts)
            client_stream_finish(c, HARK_E_IO, "cannot connect to %s:%d", c->url.host, c->url.port);
        else
            schedule_reconnect(c, "connection failed", 0);
    }
}

static int is_fatal_close(int code)
{
    /* bad config or protocol (4400), undecodable audio (4415), a session
     * limit (4429), a message too large (1009): the same again fails again */
    return code == 4400 || code == 4415 || code == 4429 || code == 1009;
}

/* The connection is gone (refused, cut, closed by either side). */
static void on_down(struct hark_client *c, const char *why, int http_status)
{
    if (c->conn == CONN_NONE)
        return;
    enum conn was = c->conn;
    c->conn = CONN_NONE;
    c->wsi = NULL;
    if (c->dying || c->state == HARK_CLIENT_CLOSED)
        return;
    int64_t now = clock_mono_ns();
    if (!c->down_since_ns)
        c->down_since_ns = now;
    if (http_status == 401 || http_status == 403) {
        client_stream_finish(c, HARK_E_AUTH, "the server refused the API key (HTTP %d)",
                             http_status);
        return;
    }
    if (c->resuming && was == CONN_OPEN &&
        (c->peer_close == 4404 || c->peer_close == 4400 || c->last_error)) {
        /* resume refused (or a server that does not know resume): a new session */
        LOG_INFO(c->session_id, "client: resume refused (close %d): new session", c->peer_close);
        c->want_new = 1;
        schedule_reconnect(c, "resume failed; opening a new session", 1);
        return;
    }
    if (is_fatal_close(c->peer_close)) {
        client_stream_finish(c, c->last_error ? c->last_error : HARK_E_PROTOCOL,
                             "the server ended the session (close %d)", c->peer_close);
        return;
    }
    if (!c->ever_ready && was < CONN_OPEN) {
        c->first_failures++;
        if (c->connect_attempts && c->first_failures >= c->connect_attempts) {
            client_stream_finish(c, HARK_E_IO, "cannot connect to %s:%d: %s", c->url.host,
                                 c->url.port, why && *why ? why : "connection failed");
            return;
        }
    }
    if (c->give_up_ms && c->ever_ready &&
        (now - c->down_since_ns) / 1000000 > (int64_t)c->give_up_ms) {
        client_stream_finish(c, HARK_E_IO, "no connection to %s:%d for %u ms; giving up",
                             c->url.host, c->url.port, c->give_up_ms);
        return;
    }
    schedule_reconnect(c, why && *why ? why : "connection lost", 0);
}

/* ------------------------------------------------------------ sending */

static int write_text(struct hark_client *c, const char *s, size_t n)
{
    if (n > TX_MAX)
        return -1;
    memcpy(c->tx + LWS_PRE, s, n);
    return lws_write(c->wsi, c->tx + LWS_PRE, n, LWS_WRITE_TEXT) < (int)n ? -1 : 0;
}

static int send_first(struct hark_client *c)
{
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    buf_json_key(&b, "type");
    if (c->have_session && c->token[0] && !c->session_over && !c->want_new) {
        c->resuming = 1;
        buf_json_str(&b, "resume");
        buf_json_key(&b, "session_id");
        buf_json_str(&b, c->session_id);
        buf_json_key(&b, "resume_token");
        buf_json_str(&b, c->token);
        buf_json_key(&b, "last_seq");
        buf_json_num(&b, (double)c->last_seq);
        buf_json_key(&b, "audio_bytes");
        buf_json_num(&b, (double)(c->sent_hw - c->sess_base));
    } else {
        c->resuming = 0;
        buf_json_str(&b, "config");
        for (size_t i = 0; c->opts && c->opts[i]; i += 2) {
            const char *v = c->opts[i + 1];
            buf_json_key(&b, c->opts[i]);
            if (!strcmp(v, "true") || !strcmp(v, "false") ||
                (v[0] && v[0] != '0' && strspn(v, "0123456789") == strlen(v) && strlen(v) < 10))
                buf_puts(&b, v);
            else
                buf_json_str(&b, v);
        }
    }
    buf_putc(&b, '}');
    int rc = b.oom ? -1 : write_text(c, b.data, b.len);
    buf_deinit(&b);
    c->first_sent = 1;
    return rc;
}

/* One message per WRITEABLE: controls due, then audio, keepalive, close. */
static int on_writable(struct hark_client *c)
{
    if (!c->first_sent)
        return send_first(c);
    if (c->conn != CONN_LIVE || lws_send_pipe_choked(c->wsi))
        return 0;
    char text[64];
    size_t tn = 0, an = 0;
    int more = 0, close_now = 0;
    pthread_mutex_lock(&c->mu);
    /* Lost audio (reported) is sent as silence in a raw encoding, so the
     * server's timeline stays the stream's; other encodings skip it. */
    size_t quiet = 0;
    /* Flow: audio goes no further than a window ahead of the server's ack,
     * so a reconnect resends at most that (the next ack, or the one a
     * keepalive gets, opens it again). */
    int held_back = c->token[0] && c->sent >= c->acked + c->window;
    if (c->sent < c->ring.base && !c->frame_bytes)
        c->sent = c->ring.base;
    if (c->sent < c->ring.base) {
        quiet = c->ring.base - c->sent < CHUNK_MAX ? (size_t)(c->ring.base - c->sent) : CHUNK_MAX;
        memset(c->tx + LWS_PRE, c->silence, quiet);
        c->sent += quiet;
        an = quiet;
        if (c->sent > c->sent_hw)
            c->sent_hw = c->sent;
    } else if (c->ctl_n && c->ctl[0].at <= c->sent) {
        struct ctl k = c->ctl[0];
        memmove(c->ctl, c->ctl + 1, --c->ctl_n * sizeof c->ctl[0]);
        tn = (size_t)snprintf(text, sizeof text,
                              k.kind == CTL_FINALIZE ? "{\"type\":\"finalize\"}"
                              : k.state == HARK_STATE_RESPONDING
                                  ? "{\"type\":\"state\",\"state\":\"responding\"}"
                                  : "{\"type\":\"state\",\"state\":\"listening\"}");
    } else if (c->sent < c->ring.end && !held_back) {
        uint64_t limit = c->ctl_n ? c->ctl[0].at : c->ring.end;
        if (c->token[0] && limit > c->acked + c->window)
            limit = c->acked + c->window;
        size_t max = limit - c->sent < CHUNK_MAX ? (size_t)(limit - c->sent) : CHUNK_MAX;
        an = client_ring_copy(&c->ring, c->sent, c->tx + LWS_PRE, max);
        if (c->sent < c->sent_hw)
            c->stats.bytes_resent += an < c->sent_hw - c->sent ? an : c->sent_hw - c->sent;
        c->sent += an;
        c->stats.bytes_sent += an;
        if (c->sent > c->sent_hw)
            c->sent_hw = c->sent;
    } else if (c->close_req && !c->close_sent && c->sent >= c->ring.end && !c->ctl_n) {
        close_now = 1;
    }
    more = c->ctl_n || c->sent < c->ring.end || (c->close_req && !c->close_sent && !close_now);
    if (c->token[0] && c->sent >= c->acked + c->window && !quiet &&
        !(c->ctl_n && c->ctl[0].at <= c->sent))
        more = 0; /* the next ack asks for WRITEABLE */
    pthread_mutex_unlock(&c->mu);

    int rc = 0;
    if (tn) {
        rc = write_text(c, text, tn);
    } else if (an) {
        rc = lws_write(c->wsi, c->tx + LWS_PRE, an, LWS_WRITE_BINARY) < (int)an ? -1 : 0;
        c->last_audio_ns = clock_mono_ns();
        if (!c->token[0] && c->byte_rate <= 0)
            client_stream_release(c); /* nothing can be replayed: sent is done with */
        if (c->state == HARK_CLIENT_PAUSED)
            client_stream_state(c, HARK_CLIENT_STREAMING);
    } else if (close_now) {
        static const char msg[] = "{\"type\":\"close\"}";
        c->close_sent = 1;
        client_stream_state(c, HARK_CLIENT_FINALIZING);
        rc = write_text(c, msg, sizeof msg - 1);
    } else if (c->keepalive_due) {
        static const char msg[] = "{\"type\":\"keepalive\"}";
        c->keepalive_due = 0;
        c->last_ka_ns = clock_mono_ns();
        rc = write_text(c, msg, sizeof msg - 1);
    }
    if (more || c->keepalive_due)
        lws_callback_on_writable(c->wsi);
    return rc;
}

/* ------------------------------------------------------------ service */

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct hark_client *c = lws_container_of(sul, struct hark_client, sul_tick);
    int64_t now = clock_mono_ns();
    if (c->conn == CONN_LIVE && c->state != HARK_CLIENT_CLOSED) {
        int64_t ka = (int64_t)c->keepalive_ms * 1000000;
        if (now - c->last_audio_ns >= ka && now - c->last_ka_ns >= ka) {
            c->keepalive_due = 1;
            if (c->state == HARK_CLIENT_STREAMING)
                client_stream_state(c, HARK_CLIENT_PAUSED);
            lws_callback_on_writable(c->wsi);
        }
        /* Half-open: a server that acknowledges keepalives (one offering
         * resume) has said nothing for two intervals. */
        if (c->token[0] && now - c->last_rx_ns > 2 * ka + 2000000000LL) {
            LOG_INFO(c->session_id, "client: nothing received for %lld ms: reconnecting",
                     (long long)((now - c->last_rx_ns) / 1000000));
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
    }
    if (c->conn == CONN_NONE && c->give_up_ms && c->ever_ready && c->down_since_ns &&
        (now - c->down_since_ns) / 1000000 > (int64_t)c->give_up_ms)
        client_stream_finish(c, HARK_E_IO, "no connection to %s:%d for %u ms; giving up",
                             c->url.host, c->url.port, c->give_up_ms);
    lws_sul_schedule(c->ctx, 0, &c->sul_tick, tick_cb, TICK_US);
}

/* Requests from the user's threads (audio, controls, close). */
static void on_wake(struct hark_client *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t lf = c->lost_from, lt = c->lost_to;
    c->lost_from = c->lost_to = 0;
    int closing = c->close_req;
    pthread_mutex_unlock(&c->mu);
    client_stream_lost(c, lf, lt);
    if (closing && c->conn == CONN_LIVE)
        client_stream_state(c, HARK_CLIENT_FINALIZING);
    if (c->conn == CONN_LIVE)
        lws_callback_on_writable(c->wsi);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct hark_client *c = lws_context_user(lws_get_context(wsi));
    if (!c)
        return 0;
    /* this attempt's wsi, still current (an old one may report late) */
    int mine = c->conn != CONN_NONE && lws_get_opaque_user_data(wsi) == (void *)c->gen;
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (!c->dying)
            on_wake(c);
        return 0;
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c->api_key && mine) {
            unsigned char **p = (unsigned char **)in, *end = *p + len;
            char v[600];
            int n = snprintf(v, sizeof v, "Token %s", c->api_key);
            if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, (unsigned char *)v,
                                             n, p, end))
                return -1;
        }
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!mine)
            return -1;
        c->wsi = wsi;
        c->conn = CONN_OPEN;
        c->last_rx_ns = c->last_audio_ns = c->last_ka_ns = clock_mono_ns();
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!mine)
            return -1;
        c->last_rx_ns = clock_mono_ns();
        /* Anything from the server proves the connection, not only a PONG:
         * a server applying back-pressure reads (and answers) no PING for a
         * while, yet its events flow. */
        lws_validity_confirmed(wsi);
        if (lws_frame_is_binary(wsi))
            return 0; /* the server sends text only */
        if (c->rx.len + len > RX_MAX) {
            LOG_WARN(c->session_id, "client: server message over %zu bytes: reconnecting",
                     (size_t)RX_MAX);
            return -1;
        }
        buf_append(&c->rx, in, len);
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            if (!c->rx.oom)
                client_stream_message(c, c->rx.data, c->rx.len);
            buf_reset(&c->rx);
        }
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!mine || c->state == HARK_CLIENT_CLOSED)
            return -1;
        return on_writable(c);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (mine && len >= 2)
            c->peer_close = ((unsigned char *)in)[0] << 8 | ((unsigned char *)in)[1];
        return 0;
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (mine) {
            char why[200];
            snprintf(why, sizeof why, "%s", in ? (const char *)in : "connection failed");
            on_down(c, why, lws_http_client_http_response(wsi));
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
        if (mine) {
            char why[64];
            snprintf(why, sizeof why,
                     c->peer_close ? "closed by the server (%d)" : "connection lost",
                     c->peer_close);
            on_down(c, why, 0);
        }
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    {"hark-client", callback, 0, 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service_main(void *arg)
{
    struct hark_client *c = arg;
    lws_sul_schedule(c->ctx, 0, &c->sul_tick, tick_cb, TICK_US);
    connect_now(c);
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int stop = c->stop;
        pthread_mutex_unlock(&c->mu);
        if (stop)
            break;
        if (lws_service(c->ctx, 0) < 0)
            break;
    }
    c->dying = 1;
    lws_sul_cancel(&c->sul_tick);
    lws_sul_cancel(&c->sul_retry);
    pthread_mutex_lock(&c->mu);
    c->ctx_gone = 1; /* no more lws_cancel_service on it */
    pthread_mutex_unlock(&c->mu);
    lws_context_destroy(c->ctx);
    pthread_mutex_lock(&c->mu);
    if (!c->done) {
        c->done = 1;
        c->rc = c->rc ? c->rc : HARK_E_STATE;
        c->state = HARK_CLIENT_CLOSED;
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static void lws_log_cb(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    if (level & LLL_ERR)
        LOG_ERROR(NULL, "lws: %s", msg);
    else
        LOG_DEBUG(NULL, "lws: %s", msg);
}

/* ------------------------------------------------------------ public */

static char **copy_options(const char *const *opts, char *err, size_t n, int *rc)
{
    size_t count = 0;
    while (opts && opts[count])
        count++;
    *rc = 0;
    if (count % 2) {
        *rc = err_set(err, n, HARK_E_INVAL, "options: name '%s' without a value", opts[count - 1]);
        return NULL;
    }
    struct hark_options *check = NULL;
    char **out = hark_calloc(count + 1, sizeof *out);
    if (!out || hark_options_create(&check)) {
        hark_free(out);
        *rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < count && !*rc; i += 2) {
        /* refused here as the server would refuse it, before connecting */
        *rc = hark_options_set(check, opts[i], opts[i + 1], err, n);
        out[i] = hark_strdup(opts[i]);
        out[i + 1] = hark_strdup(opts[i + 1]);
        if (!*rc && (!out[i] || !out[i + 1]))
            *rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
    }
    hark_options_destroy(check);
    if (*rc) {
        for (size_t i = 0; i < count; i++)
            hark_free(out[i]);
        hark_free(out);
        return NULL;
    }
    return out;
}

/* What create allocated besides the thread, its lock and its context. */
static void free_client(struct hark_client *c)
{
    client_ring_deinit(&c->ring);
    buf_deinit(&c->rx);
    client_msg_deinit(&c->msg);
    for (size_t i = 0; c->opts && c->opts[i]; i++)
        hark_free(c->opts[i]);
    hark_free(c->opts);
    hark_free(c->api_key);
    hark_free(c->ca_file);
    hark_free(c);
}

int hark_client_create(struct hark_client **out, const struct hark_client_config *cfg,
                       hark_client_event_cb cb, void *user, char *err, size_t n)
{
    if (!out || !cfg)
        return err_set(err, n, HARK_E_INVAL, "out and cfg must not be NULL");
    *out = NULL;
    struct hark_client *c = hark_calloc(1, sizeof *c);
    if (!c)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    int rc = client_url_parse(&c->url, cfg->url, err, n);
    if (rc)
        goto fail;
    c->opts = copy_options(cfg->options, err, n, &rc);
    if (rc)
        goto fail;
    if ((cfg->api_key && !(c->api_key = hark_strdup(cfg->api_key))) ||
        (cfg->ca_file && !(c->ca_file = hark_strdup(cfg->ca_file)))) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto fail;
    }
    if (c->api_key &&
        (strlen(c->api_key) > 512 || strcspn(c->api_key, "\r\n") != strlen(c->api_key))) {
        rc = err_set(err, n, HARK_E_INVAL, "API key: at most 512 bytes, no line breaks");
        goto fail;
    }
    c->when_full = cfg->when_full;
    c->keepalive_ms = cfg->keepalive_ms ? cfg->keepalive_ms : 5000;
    c->base_ms = cfg->backoff_base_ms ? cfg->backoff_base_ms : 250;
    c->cap_ms = cfg->backoff_cap_ms ? cfg->backoff_cap_ms : 10000;
    c->connect_attempts = cfg->connect_attempts;
    c->give_up_ms = cfg->give_up_ms;
    c->cb = cb;
    c->user = user;
    c->last_seq = -1;
    c->last_final_seg = -1;
    c->rng = (uint64_t)clock_mono_ns() ^ (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ull;
    /* lws's own ping/pong: a dead peer is found even by a server that does
     * not answer keepalives (a PONG, not data, resets the timer) */
    unsigned ka_s = (c->keepalive_ms + 999) / 1000;
    c->retry.secs_since_valid_ping = (uint16_t)ka_s;
    c->retry.secs_since_valid_hangup = (uint16_t)(2 * ka_s + 2);
    buf_init(&c->rx);
    client_msg_init(&c->msg);
    if ((rc = client_ring_init(&c->ring, cfg->buffer_bytes ? cfg->buffer_bytes : DEFAULT_RING))) {
        err_set(err, n, rc, "audio buffer of %zu bytes: %s", cfg->buffer_bytes, hark_strerror(rc));
        goto fail;
    }
    /* A raw encoding's byte rate from the options, until ready confirms it. */
    const char *enc = "pcm_s16le";
    int rate = 16000, ch = 1;
    for (size_t i = 0; c->opts[i]; i += 2) {
        if (!strcmp(c->opts[i], "encoding"))
            enc = c->opts[i + 1];
        else if (!strcmp(c->opts[i], "sample_rate"))
            rate = atoi(c->opts[i + 1]);
        else if (!strcmp(c->opts[i], "channels"))
            ch = atoi(c->opts[i + 1]);
    }
    unsigned sb = !strcmp(enc, "pcm_s16le")                       ? 2
                  : !strcmp(enc, "pcm_f32le")                     ? 4
                  : !strcmp(enc, "mulaw") || !strcmp(enc, "alaw") ? 1
                                                                  : 0;
    c->frame_bytes = sb * (unsigned)ch;
    c->byte_rate = (double)c->frame_bytes * rate;
    client_stream_format(c, enc);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_cb);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = protocols;
    info.user = c;
    info.timeout_secs = 10; /* a connect or handshake that hangs */
    info.gid = -1;
    info.uid = -1;
    if (c->url.tls) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.client_ssl_ca_filepath = c->ca_file;
    }
    c->ctx = lws_create_context(&info);
    if (!c->ctx) {
        rc = err_set(err, n, HARK_E_INTERNAL, "cannot create the WebSocket context");
        goto fail_sync;
    }
    if (pthread_create(&c->thread, NULL, service_main, c)) {
        lws_context_destroy(c->ctx);
        rc = err_set(err, n, HARK_E_INTERNAL, "cannot start the client thread");
        goto fail_sync;
    }
    *out = c;
    return 0;
fail_sync:
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
fail:
    free_client(c);
    return rc;
}

int hark_client_send_audio(struct hark_client *c, const void *bytes, size_t len)
{
    if (!c || (!bytes && len))
        return HARK_E_INVAL;
    const uint8_t *p = bytes;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    while (len && !rc) {
        if (c->done || c->close_req) {
            rc = HARK_E_STATE;
            break;
        }
        size_t room = client_ring_room(&c->ring);
        if (room == 0 && c->when_full == HARK_CLIENT_WAIT) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        if (room < len && c->when_full == HARK_CLIENT_DROP_OLDEST) {
            /* make room for what fits; the oldest goes */
            uint64_t from = c->ring.base > c->sent ? c->ring.base : c->sent;
            uint64_t nb = c->ring.base + (len - room);
            if (len > c->ring.cap) { /* more than the ring: its head never fits */
                size_t skip = len - c->ring.cap;
                nb = c->ring.end + skip;
                c->ring.base = c->ring.end = nb; /* offsets are modular: nothing moves */
                p += skip;
                len -= skip;
            } else {
                client_ring_release(&c->ring, nb);
            }
            if (nb > from) { /* audio never sent: lost now */
                c->lost_from = c->lost_to ? c->lost_from : from;
                c->lost_to = nb;
            }
        }
        size_t k = client_ring_push(&c->ring, p, len);
        p += k;
        len -= k;
    }
    client_wake_locked(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

static int push_ctl(struct hark_client *c, enum ctl_kind kind, enum hark_state st)
{
    if (!c)
        return HARK_E_INVAL;
    pthread_mutex_lock(&c->mu);
    int rc = 0;
    if (c->done || c->close_req)
        rc = HARK_E_STATE;
    else if (c->ctl_n == CTL_MAX)
        rc = HARK_E_LIMIT;
    else
        c->ctl[c->ctl_n++] = (struct ctl){.at = c->ring.end, .kind = kind, .state = st};
    client_wake_locked(c);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

int hark_client_finalize(struct hark_client *c)
{
    return push_ctl(c, CTL_FINALIZE, HARK_STATE_LISTENING);
}

int hark_client_set_state(struct hark_client *c, enum hark_state state)
{
    if (state != HARK_STATE_LISTENING && state != HARK_STATE_RESPONDING)
        return HARK_E_INVAL;
    return push_ctl(c, CTL_STATE, state);
}

int hark_client_close(struct hark_client *c, unsigned timeout_ms)
{
    if (!c)
        return HARK_E_INVAL;
    struct timespec until = clock_deadline(CLOCK_REALTIME, (int64_t)timeout_ms * 1000000);
    pthread_mutex_lock(&c->mu);
    c->close_req = 1;
    pthread_cond_broadcast(&c->cv); /* a waiting send_audio gives up */
    client_wake_locked(c);
    while (!c->done) {
        if (!timeout_ms) {
            pthread_cond_wait(&c->cv, &c->mu);
        } else if (pthread_cond_timedwait(&c->cv, &c->mu, &until)) {
            if (!c->done) {
                c->rc = HARK_E_TIMEOUT;
                c->stop = 1;
                client_wake_locked(c);
            }
            break;
        }
    }
    int rc = c->rc;
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void hark_client_destroy(struct hark_client *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    c->stop = 1;
    pthread_cond_broadcast(&c->cv);
    client_wake_locked(c);
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->thread, NULL);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free_client(c);
}

enum hark_client_state hark_client_state(const struct hark_client *c)
{
    struct hark_client *m = (struct hark_client *)c;
    pthread_mutex_lock(&m->mu);
    enum hark_client_state s = m->state;
    pthread_mutex_unlock(&m->mu);
    return s;
}

void hark_client_stats(const struct hark_client *c, struct hark_client_stats *out)
{
    struct hark_client *m = (struct hark_client *)c;
    pthread_mutex_lock(&m->mu);
    *out = m->stats;
    pthread_mutex_unlock(&m->mu);
}
