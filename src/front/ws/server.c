/*
 * The libwebsockets server: one port for WebSocket streaming and HTTP.
 *
 * One service thread owns every socket and every wsconn. Recognition runs on
 * the worker pool (host/workers.c); results come back as events on each
 * chan (rendered here, in the connection's dialect: wsess.c), and workers wake this thread with
 * lws_cancel_service, which coalesces: each wake-up drains every chan.
 *
 * Back-pressure: a connection whose queued audio passes half the session
 * buffer stops being read (lws_rx_flow_control) until the workers catch up,
 * so a client sending faster than recognition cannot grow memory; TCP
 * pushes back on it while other sessions keep their latency. Every queued
 * job counts (controls too, see workers.h), and text frames are paused the
 * same way as audio.
 *
 * The output direction is bounded too (outq.c); the session glue (start,
 * events, acks, resume, per-session slots) is wsess.c.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/proto/dg.h" /* dg_uuid */
#include "front/ws/wsfe_state.h"
#include "host/admit.h"
#include "host/limits.h"
#include "host/peers.h"
#include "host/stats.h"

#define RX_CHUNK 65536
/* Events kept for a resume while the connection is up (docs/protocol.md):
 * what may sit in socket buffers when it drops, with room. */
#define REPLAY_BYTES 65536
#define TICK_NS 1000000000LL

/* ------------------------------------------------------------ metrics */

static void register_metrics(struct wsfe *fe)
{
    struct metrics *m = fe->metrics;
    fe->m_conns =
        metrics_gauge(m, "hark_connections", "WebSocket connections open now", NULL, NULL);
    stats_init(&fe->stats, m);
    if (!fe->eng)
        return; /* sessions run elsewhere (--backend): no engine here */
    fe->m_decode =
        metrics_counter(m, "hark_engine_decode_seconds_total", "Time spent inside the engine",
                        "engine", hark_engine_get_name(fe->eng));
    fe->m_streams =
        metrics_gauge(m, "hark_engine_streams_in_use", "Engine streams bound to a talking speaker",
                      "engine", hark_engine_get_name(fe->eng));
    if (hark_engine_circuit(fe->eng, NULL) != HARK_CIRCUIT_NONE)
        fe->m_circuit = metrics_gauge(
            m, "hark_provider_circuit_state",
            "Circuit breaker of the network engine: 0 closed, 1 open (new sessions use the "
            "fallback), 2 half open (one session probes the provider)",
            "engine", hark_engine_get_name(fe->eng));
}

void wsfe_count_event(struct wsfe *fe, const struct hark_event *ev)
{
    stats_event(&fe->stats, ev);
}

static void refresh_gauges(void *user)
{
    struct wsfe *fe = user;
    struct hark_engine_stats es;
    if (!fe->eng)
        return;
    hark_engine_stats(fe->eng, &es);
    metrics_set(fe->m_decode, es.decode_seconds);
    metrics_set(fe->m_streams, es.streams_in_use);
    if (fe->m_circuit)
        metrics_set(fe->m_circuit, hark_engine_circuit(fe->eng, NULL));
}

/* ------------------------------------------------------------ connections */

struct wsfe *wsconn_fe(struct wsconn *c)
{
    return c->fe;
}

const struct hark_options *wsfe_defaults(struct wsfe *fe)
{
    return fe->defaults;
}

struct hark_engine *wsfe_engine(struct wsfe *fe)
{
    return fe->eng;
}

int wsfe_chan_create(struct wsfe *fe, struct chan **out, const struct hark_options *opts,
                     const char *session_id, chan_render_cb render, void *render_user, char *err,
                     size_t n)
{
    if (fe->cfg.backend)
        return chan_create_on(out, fe->workers, fe->cfg.backend, opts, session_id, render,
                              render_user, fe->cfg.session_buffer_bytes, err, n);
    return chan_create(out, fe->workers, fe->eng, opts, session_id, render, render_user,
                       fe->cfg.session_buffer_bytes, err, n);
}

const struct dialect_ctx *wsfe_dialect_ctx(struct wsfe *fe)
{
    return &fe->dcx;
}

struct auth *wsfe_auth(struct wsfe *fe)
{
    return fe->auth;
}

struct metrics *wsfe_metrics(struct wsfe *fe)
{
    return fe->metrics;
}

struct batch **wsfe_batches(struct wsfe *fe)
{
    return &fe->batches;
}

void wsfe_batch_sessions(struct wsfe *fe, int delta)
{
    fe->n_sessions += delta;
}

struct admit_slot *wsfe_admit_take(struct wsfe *fe)
{
    struct admit_slot *s = fe->admitted;
    fe->admitted = NULL;
    return s;
}

const struct wsfe_cfg *wsfe_config(struct wsfe *fe)
{
    return &fe->cfg;
}

struct workers *wsfe_workers(struct wsfe *fe)
{
    return fe->workers;
}

int wsfe_resume_window(struct wsfe *fe)
{
    return table_resume_window(fe->table);
}

/* The host's verdict (host/limits.h) on a connection's session, as the
 * dialect's signal; from here on the session takes no input. */
static const enum dialect_sig verdict_sig[] = {
    [LIMITS_FIRST_MESSAGE] = DS_FIRST_TIMEOUT,
    [LIMITS_IDLE] = DS_IDLE,
    [LIMITS_LENGTH] = DS_LENGTH,
    [LIMITS_FATAL] = DS_FATAL,
    [LIMITS_SHUTDOWN] = DS_SHUTDOWN,
};

void wsconn_verdict(struct wsconn *c, enum limits_verdict v, int code, const char *msg)
{
    if (v != LIMITS_OK && !c->lim.closing)
        drive_signal(c, verdict_sig[v], code, msg);
}

/* Marks the connection closing with code and reason; 0 when it already was
 * (or is gone): the first close decides. */
static int begin_close(struct wsconn *c, int code, const char *reason)
{
    if (c->st == WC_CLOSING || c->st == WC_GONE)
        return 0;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason ? reason : "");
    c->st = WC_CLOSING;
    c->lim.closing = 1;
    if (c->slot)
        admit_closing(c->slot);
    return 1;
}

void wsconn_close_after(struct wsconn *c, int code, const char *reason)
{
    /* With a session, its CLOSED event is the last message (after the final
     * results); without one, an empty last message closes. */
    if (begin_close(c, code, reason) && (!c->chan || chan_post_close(c->chan) != 0))
        wsconn_send(c, "", 0, MSG_LAST);
}

void wsconn_close_now(struct wsconn *c, int code, const char *reason)
{
    if (begin_close(c, code, reason))
        wsconn_send(c, "", 0, MSG_LAST);
}

static void conn_remove(struct wsconn *c)
{
    struct wsfe *fe = c->fe;
    if (!fe)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else if (fe->conns == c)
        fe->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    wsconn_session_gone(c);
    if (c->key_index >= 0)
        auth_release(fe->auth, c->key_index);
    wsfe_peer_release(fe, c->peer);
    drive_destroy(c);
    outq_clear(c);
    buf_deinit(&c->text);
    c->fe = NULL;
}

/* Runs before the 101: only known paths may upgrade. (lws delivers this to
 * the vhost's default protocol, which is "hark" here, not protocols[0].) */
static int confirm_upgrade(struct wsfe *fe, struct lws *wsi)
{
    char path[128], why[256];
    int key;
    if (fe->cfg.health_only || lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0 ||
        !drive_route(path)) {
        http_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found", "no WebSocket endpoint at this path");
        return 1;
    }
    const struct dialect_ops *d = drive_route(path);
    /* Refuse before the upgrade, with a real HTTP status and a JSON body. */
    if (origin_check(fe, wsi, why, sizeof why)) {
        drive_refuse(fe, wsi, d, HTTP_STATUS_FORBIDDEN, HARK_E_AUTH, why);
        return 1;
    }
    /* A dialect that takes its key in a message checks it there; a
     * credential the request does carry must be valid all the same. */
    if (auth_check(fe->auth, wsi, &key, why, sizeof why) &&
        !(d->key_in_message && !auth_has_credential(wsi))) {
        drive_refuse(fe, wsi, d, HTTP_STATUS_UNAUTHORIZED, HARK_E_AUTH, why);
        return 1;
    }
    /* Past a limit, a client whose detached session holds the slot may
     * still come in to resume it (ESTABLISHED makes it provisional). */
    if (auth_acquire(fe->auth, key, why, sizeof why)) {
        if (!auth_has_waiting(fe->auth, key)) {
            drive_refuse(fe, wsi, d, 429, HARK_E_LIMIT, why);
            return 1;
        }
    } else {
        auth_release(fe->auth, key); /* counted for real once established */
    }
    char peer[48];
    if (wsfe_peer_acquire(fe, wsi, peer, why, sizeof why) && !wsfe_peer_waiting(fe, wsi)) {
        drive_refuse(fe, wsi, d, 429, HARK_E_LIMIT, why);
        return 1;
    }
    wsfe_peer_release(fe, peer); /* likewise */
    return drive_check(fe, wsi, d, path);
}

static int cb_ws(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                 size_t len)
{
    struct wsconn *c = user;
    struct wsfe *fe = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(fe, wsi);
    case LWS_CALLBACK_ADD_HEADERS: {
        /* The connection's request id; the 101 carries it when the dialect
         * names a header for it (Deepgram: dg-request-id). lws has already
         * zeroed the connection's storage, which ESTABLISHED keeps. */
        struct lws_process_html_args *args = in;
        char path[128];
        const struct dialect_ops *d;
        dg_uuid(c->request_id);
        if (lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) < 0 ||
            !(d = drive_route(path)) || !d->id_header)
            return 0;
        unsigned char *p = (unsigned char *)args->p;
        if (lws_add_http_header_by_name(
                wsi, (const unsigned char *)d->id_header, (const unsigned char *)c->request_id,
                (int)strlen(c->request_id), &p, (unsigned char *)args->p + args->max_len))
            return 1;
        args->p = (char *)p;
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        /* storage is zeroed by lws; request_id may already be set */
        c->wsi = wsi;
        c->fe = fe;
        c->st = WC_OPEN;
        limits_open(&c->lim, clock_mono_ns());
        buf_init(&c->text);
        if (lws_hdr_copy(wsi, c->path, sizeof c->path, WSI_TOKEN_GET_URI) < 0)
            c->path[0] = 0;
        c->d = drive_route(c->path);
        c->key_index = -1;
        {
            /* CONFIRM_UPGRADE checked both; only a race with another
             * session of the same key gets here refused, and the client
             * learns why from the close frame rather than a bare drop. */
            char why[120];
            int code = 0;
            if (auth_check(fe->auth, wsi, &c->key_index, why, sizeof why) &&
                !(c->d && c->d->key_in_message && !auth_has_credential(wsi))) {
                code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
            } else {
                /* 1013: try again later (CLOSED releases what was taken).
                 * Past a limit held by this client's own detached
                 * sessions: provisional, to resume one of them. */
                if (wsfe_peer_acquire(fe, wsi, c->peer, why, sizeof why)) {
                    if (wsfe_peer_waiting(fe, wsi))
                        c->provisional = 1;
                    else
                        code = 1013;
                }
                if (!code && auth_acquire(fe->auth, c->key_index, why, sizeof why)) {
                    if (auth_has_waiting(fe->auth, c->key_index)) {
                        c->provisional = 1;
                        c->key_index = -1; /* holds no key slot */
                    } else {
                        code = 1013;
                    }
                }
            }
            if (code) {
                c->key_index = -2; /* refused below, after linking */
                lws_close_reason(wsi, (enum lws_close_status)code, (unsigned char *)why,
                                 strlen(why));
            }
        }
        c->next = fe->conns;
        if (fe->conns)
            fe->conns->prev = c;
        fe->conns = c;
        metrics_set(fe->m_conns, metrics_value(fe->m_conns) + 1);
        if (!c->d || c->key_index == -2) /* CONFIRM_UPGRADE checked these already */
            return -1;
        lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
        return drive_open(c) ? -1 : 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        if (!c->fe || c->st == WC_GONE)
            return -1;
        limits_activity(&c->lim, clock_mono_ns(), 0);
        if (lws_is_first_fragment(wsi)) {
            c->msg_bytes = 0;
            buf_reset(&c->text);
        }
        c->msg_bytes += len;
        if (c->msg_bytes > fe->cfg.max_frame_bytes) {
            char msg[160];
            snprintf(msg, sizeof msg, "message larger than %zu bytes", fe->cfg.max_frame_bytes);
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)msg,
                             strlen(msg));
            c->st = WC_GONE; /* ended by the server: no resume */
            return -1;
        }
        if (c->st == WC_CLOSING)
            return 0; /* finishing: further input is ignored */
        if (lws_frame_is_binary(wsi)) {
            int is_last = lws_is_final_fragment(wsi);
            /* An empty binary message means "end of stream" to some clients;
             * an empty chunk of a message that carried bytes means nothing. */
            c->got_message |= is_last;
            if (len == 0 && (!is_last || c->msg_bytes))
                return 0;
            if (drive_binary(c, in, len) == 0)
                return 0;
            c->st = WC_GONE;
            return -1;
        }
        buf_append(&c->text, in, len);
        if (!lws_is_final_fragment(wsi))
            return 0;
        c->got_message = 1;
        if (c->text.oom || drive_text(c, c->text.data ? c->text.data : "", c->text.len)) {
            c->st = WC_GONE; /* ended by the server: no resume */
            return -1;
        }
        wsconn_rx_limit(c); /* controls queue jobs too */
        return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        /* A close frame is a deliberate end (1000) or a peer going away; a
         * connection that just drops never gets here. */
        if (c->fe)
            c->peer_close =
                len >= 2 ? ((const unsigned char *)in)[0] << 8 | ((const unsigned char *)in)[1]
                         : LWS_CLOSE_STATUS_NORMAL;
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!c->fe)
            return -1;
        return outq_write(c);
    case LWS_CALLBACK_CLOSED:
        if (c->fe) {
            metrics_set(fe->m_conns, metrics_value(fe->m_conns) - 1);
            conn_remove(c);
        }
        return 0;
    default:
        break;
    }
    return 0;
}

/* ------------------------------------------------------------ loop, timers */

static void drain_all(struct wsfe *fe)
{
    for (struct wsconn *c = fe->conns; c; c = c->next)
        wsconn_drain(c);
    table_drain(fe->table);
}

static void begin_shutdown(struct wsfe *fe)
{
    if (!limits_drain_begin(&fe->drain, &fe->limits, fe->admit, clock_mono_ns()))
        return;
    LOG_INFO(NULL, "shutting down: finishing %d session(s), dropping %d detached", fe->n_sessions,
             table_detached(fe->table));
    table_drop_detached(fe->table);
    int code;
    char msg[160];
    limits_shutdown_msg(&code, msg, sizeof msg);
    for (struct wsconn *c = fe->conns; c; c = c->next)
        if (c->d && c->dstate)
            wsconn_verdict(c, LIMITS_SHUTDOWN, code, msg);
}

static void tick_cb(lws_sorted_usec_list_t *sul)
{
    struct wsfe *fe = lws_container_of(sul, struct wsfe, tick);
    int64_t now = clock_mono_ns();
    if (fe->stop_requested)
        begin_shutdown(fe);
    admit_release(wsfe_admit_take(fe));
    admit_tick(fe->admit);
    batch_tick(fe);
    table_drain(fe->table);
    table_tick(fe->table, now);
    for (struct wsconn *c = fe->conns; c; c = c->next) {
        if (c->st != WC_OPEN && c->st != WC_STREAMING)
            continue;
        wsconn_ack(c, 0);
        /* lws only counts a PONG as a sign of life; a peer that sent
         * anything in the last tick, or whose reading we paused
         * (back-pressure) cannot get its PONG read: neither must be hung up
         * as dead. */
        if (c->paused || now - c->lim.last_activity < TICK_NS)
            lws_validity_confirmed(c->wsi);
        /* The host's rules (host/limits.h); the first message that counts
         * is a whole one that got the connection past WC_OPEN (the native
         * config). */
        c->lim.got_message = c->got_message && c->st != WC_OPEN;
        c->lim.held = c->paused;
        int code;
        char msg[200];
        enum limits_verdict v =
            limits_tick(&fe->limits, &c->lim, c->chan, now, &code, msg, sizeof msg);
        if (v != LIMITS_OK) {
            LOG_INFO(c->chan ? chan_session_id(c->chan) : NULL, "%s%s; closing",
                     v == LIMITS_FIRST_MESSAGE ? "no first message " : "", msg);
            wsconn_verdict(c, v, code, msg);
        }
    }
    if (limits_drain_over(&fe->drain, now, fe->conns || fe->batches)) {
        fe->exit_loop = 1;
        lws_cancel_service(fe->ctx);
    }
    lws_sul_schedule(fe->ctx, 0, &fe->tick, tick_cb, fe->drain.active ? 100000 : LWS_US_PER_SEC);
}

static int cb_http(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    struct wsfe *fe = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        /* fires once per protocol; this is the one place that drains */
        if (!fe)
            return 0;
        if (fe->stop_requested)
            begin_shutdown(fe);
        drain_all(fe);
        batch_drain(fe);
        wstake_service(fe);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(fe, wsi);
    case LWS_CALLBACK_HTTP:
        return http_handle(fe, wsi, (const char *)in);
    case LWS_CALLBACK_HTTP_BODY:
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
    case LWS_CALLBACK_HTTP_WRITEABLE:
    case LWS_CALLBACK_CLOSED_HTTP: {
        int handled, rc = batch_callback(wsi, reason, user, in, len, &handled);
        if (handled)
            return rc;
        break;
    }
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static int cb_door(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                   size_t len)
{
    return door_callback(wsi, (int)reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
    {"http", cb_http, sizeof(struct http_pss), 0, 0, NULL, 0},
    {"hark", cb_ws, sizeof(struct wsconn), RX_CHUNK, 0, NULL, 0},
    /* Browsers carry API keys as subprotocols "token, KEY" / "bearer, JWT";
     * lws answers with the first offered name it knows, i.e. "token". */
    {"token", cb_ws, sizeof(struct wsconn), RX_CHUNK, 0, NULL, 0},
    {"bearer", cb_ws, sizeof(struct wsconn), RX_CHUNK, 0, NULL, 0},
    /* OpenAI Realtime in a browser: "realtime, openai-insecure-api-key.KEY"
     * (auth.c reads the key); "realtime" is echoed. */
    {"realtime", cb_ws, sizeof(struct wsconn), RX_CHUNK, 0, NULL, 0},
    {"door", cb_door, 0, 0, 0, NULL, 0}, /* door.c */
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Upgrades without Sec-WebSocket-Protocol would otherwise bind to the http
 * protocol and their messages would vanish (c-apis.md §1). */
static const struct lws_protocol_vhost_options pvo_default = {NULL, NULL, "default", "1"};
static const struct lws_protocol_vhost_options pvo = {NULL, &pvo_default, "hark", ""};

static void lws_log_cb(int level, const char *line)
{
    char msg[512];
    snprintf(msg, sizeof msg, "%s", line);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = 0;
    /* The door's hand-off (door.c): lws first tries the vhost's accept role
     * for an adopted socket, and reports a read buffer at error level. */
    if (strstr(msg, "adoption bind to role 'raw-skt'") ||
        strstr(msg, "adopt_socket_readbuf: calling service"))
        level = LLL_DEBUG;
    if (level & LLL_ERR)
        LOG_ERROR(NULL, "lws: %s", msg);
    else if (level & LLL_WARN)
        LOG_WARN(NULL, "lws: %s", msg);
    else
        LOG_DEBUG(NULL, "lws: %s", msg);
}

static void wake_cb(void *user)
{
    struct wsfe *fe = user;
    if (fe->ctx)
        lws_cancel_service(fe->ctx);
}

void wsfe_wake(struct wsfe *fe)
{
    wake_cb(fe);
}

int wsfe_create(struct wsfe **out, const struct wsfe_cfg *cfg, struct hark_engine *eng, char *err,
                size_t n)
{
    *out = NULL;
    struct wsfe *fe = hark_calloc(1, sizeof *fe);
    if (!fe)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    fe->cfg = *cfg;
    fe->eng = eng;
    buf_init(&fe->scratch);
    peers_init(&fe->peers, cfg->max_connections_per_ip);
    fe->limits = (struct limits_cfg){
        .first_message_timeout = cfg->first_message_timeout,
        .idle_timeout = cfg->idle_timeout,
        .max_session_seconds = cfg->max_session_seconds,
        .shutdown_timeout = cfg->shutdown_timeout,
    };
    int rc = hark_options_copy(&fe->defaults, cfg->defaults);
    fe->metrics = cfg->metrics;
    fe->own_metrics = !cfg->metrics;
    if (!rc && fe->own_metrics)
        rc = metrics_create(&fe->metrics);
    if (rc) {
        err_set(err, n, rc, "out of memory");
        goto fail;
    }
    register_metrics(fe);
    rc = auth_create(&fe->auth, cfg->api_keys, cfg->api_keys_file, cfg->max_sessions_per_key, err,
                     n);
    if (rc)
        goto fail;
    metrics_on_render(fe->metrics, refresh_gauges, fe);
    struct table_cfg tc = {
        .resume_window = cfg->resume_window,
        .resume_buffer_bytes = cfg->resume_buffer_bytes,
        .resume_buffer_events = cfg->resume_buffer_events,
        .replay_bytes = REPLAY_BYTES,
        .stats = &fe->stats,
        .metrics = cfg->health_only ? NULL : fe->metrics,
        .ended_cb = wsess_ended_cb,
        .user = fe,
    };
    if ((rc = table_create(&fe->table, &tc)) ||
        (cfg->takeover && (rc = wstake_create(&fe->take)))) {
        err_set(err, n, rc, "out of memory");
        goto fail;
    }
    fe->workers = cfg->pool;
    fe->own_workers = !cfg->pool;
    rc = cfg->pool ? 0 : workers_create(&fe->workers, cfg->workers, wake_cb, fe);
    if (rc) {
        err_set(err, n, rc, "cannot start %u worker threads", cfg->workers);
        goto fail;
    }
    fe->admit = cfg->admit;
    fe->own_admit = !cfg->admit;
    if (fe->own_admit) {
        struct admit_cfg ac = {
            .max_sessions = cfg->max_sessions,
            .workers = cfg->workers,
            .max_lag_ms = cfg->max_lag_ms,
            .max_busy_percent = cfg->max_busy_percent,
            .pool = fe->workers,
            .metrics = fe->metrics,
        };
        if ((rc = admit_create(&fe->admit, &ac))) {
            err_set(err, n, rc, "out of memory");
            goto fail;
        }
    }

    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_cb);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = cfg->port;
    info.protocols = protocols;
    info.pvo = &pvo;
    info.user = fe;
    info.options = LWS_SERVER_OPTION_FAIL_UPON_UNABLE_TO_BIND | LWS_SERVER_OPTION_VALIDATE_UTF8;
    if ((rc = listen_configure(&info, cfg, fe->iface, sizeof fe->iface, err, n)))
        goto fail;
    /* Pings find dead peers (half-open TCP, a vanished NAT entry) so their
     * sessions detach for a resume: a peer that answers nothing for two
     * intervals is dropped. */
    fe->retry.secs_since_valid_ping = (uint16_t)cfg->ping_interval;
    fe->retry.secs_since_valid_hangup = (uint16_t)(2 * cfg->ping_interval);
    if (cfg->ping_interval > 0)
        info.retry_and_idle_policy = &fe->retry;
    info.vhost_name = "hark";
    fe->ctx = lws_create_context(&info);
    if (!fe->ctx) {
        rc = err_set(err, n, HARK_E_IO,
                     "cannot listen on %s port %d (address in use, not on this machine, or not "
                     "allowed)",
                     cfg->host, cfg->port);
        goto fail;
    }
    fe->vhost = lws_get_vhost_by_name(fe->ctx, "hark");
    fe->dcx.defaults = fe->defaults;
    fe->dcx.engine = eng ? hark_engine_get_name(eng) : cfg->engine_name;
    /* a gateway does not know its workers' engine: a model name stays a name */
    fe->dcx.any_model = eng && strcmp(hark_engine_models(eng), "*") == 0;
    for (int i = 0; i < 7 && hark_engine_name(i); i++)
        fe->engines[i] = hark_engine_name(i);
    fe->dcx.engines = fe->engines;
    fe->dcx.resume_window = table_resume_window(fe->table);
    lws_sul_schedule(fe->ctx, 0, &fe->tick, tick_cb, LWS_US_PER_SEC);
    *out = fe;
    return 0;
fail:
    wsfe_destroy(fe);
    return rc;
}

int wsfe_port(struct wsfe *fe)
{
    return fe->vhost ? lws_get_vhost_listen_port(fe->vhost) : fe->cfg.port;
}

void wsfe_stop(struct wsfe *fe)
{
    fe->stop_requested = 1;
    if (fe->ctx)
        lws_cancel_service(fe->ctx);
}

int wsfe_is_ready(struct wsfe *fe)
{
    return !fe->drain.active;
}

int wsfe_run(struct wsfe *fe)
{
    while (!fe->exit_loop) {
        if (lws_service(fe->ctx, 0) < 0)
            break;
    }
    if (fe->conns)
        LOG_WARN(NULL, "shutdown deadline passed with sessions still open");
    return 0;
}

void wsfe_destroy(struct wsfe *fe)
{
    if (!fe)
        return;
    /* Workers first: they finish queued work and stop calling
     * lws_cancel_service. Destroying the context then runs CLOSED for every
     * connection, which releases (and frees) their chans. */
    if (fe->own_workers)
        workers_destroy(fe->workers);
    fe->workers = NULL;
    wstake_destroy(fe, fe->take); /* the backend calls no more (serve.c) */
    fe->take = NULL;
    if (fe->ctx) {
        lws_sul_cancel(&fe->tick);
        lws_context_destroy(fe->ctx);
        fe->ctx = NULL;
    }
    table_destroy(fe->table); /* detached sessions left: before their slots' admit */
    admit_release(wsfe_admit_take(fe));
    if (fe->own_admit)
        admit_destroy(fe->admit);
    if (fe->own_metrics)
        metrics_destroy(fe->metrics);
    auth_destroy(fe->auth);
    hark_options_destroy(fe->defaults);
    peers_deinit(&fe->peers);
    hark_free(fe->tx);
    buf_deinit(&fe->scratch);
    hark_free(fe);
}
