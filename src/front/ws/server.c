/*
 * The libwebsockets server: one port for WebSocket streaming and HTTP.
 *
 * One service thread owns every socket and every wsconn. Recognition runs on
 * the worker pool (session/workers.c); results come back as rendered
 * messages on each chan, and workers wake this thread with
 * lws_cancel_service, which coalesces: each wake-up drains every chan.
 *
 * Back-pressure: a connection whose queued audio passes half the session
 * buffer stops being read (lws_rx_flow_control) until the workers catch up,
 * so a client sending faster than recognition cannot grow memory; TCP
 * pushes back on it while other sessions keep their latency. Every queued
 * job counts (controls too, see workers.h), and text frames are paused the
 * same way as audio.
 *
 * The other direction is bounded too: a connection's queued output is
 * capped at max_output_bytes. Past it, partials that a later message of
 * their segment supersedes are dropped (oldest first), then any partial;
 * finals and errors are never dropped: when they alone pass the cap, the
 * client is not reading, and the connection closes with 1008.
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
#include "front/ws/wsfe.h"
#include "host/admit.h"
#include "host/limits.h"
#include "host/stats.h"

#define RX_CHUNK 65536
/* Events kept for a resume while the connection is up (docs/protocol.md):
 * what may sit in socket buffers when it drops, with room. */
#define REPLAY_BYTES 65536
#define TICK_NS 1000000000LL

struct wsfe {
    struct wsfe_cfg cfg;
    struct hark_options *defaults;
    struct hark_engine *eng;
    struct auth *auth;
    struct workers *workers;
    struct table *table; /* sessions by id and resume token, detached ones too */
    int own_workers;     /* else shared, created and destroyed by the caller */
    struct metrics *metrics;
    int own_metrics;
    struct admit *admit;
    int own_admit;
    struct admit_slot *admitted; /* wsfe_admit's slot, until a session takes it */
    struct dialect_ctx dcx;      /* what dialects read: defaults, engine, resume window */
    const char *engines[8];      /* dcx.engines: the registry's names, NULL-terminated */
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    char iface[64]; /* the address lws binds (it keeps the pointer) */
    lws_sorted_usec_list_t tick;
    lws_retry_bo_t retry; /* ping policy; lws keeps the pointer */
    struct wsconn *conns;
    struct batch *batches; /* batch.c: POST transcriptions in progress */
    int n_sessions;
    volatile sig_atomic_t stop_requested;
    struct limits_cfg limits; /* host/limits.h: the session rules */
    struct limits_drain drain;
    int exit_loop;
    unsigned char *tx;
    size_t tx_cap;
    struct buf scratch; /* events rendered on the service thread */
    struct peer_slots {
        char addr[48];
        int n;       /* connections and sessions holding a slot */
        int waiting; /* of those, detached sessions waiting for a resume */
    } * peers;       /* addresses with counted connections (max_connections_per_ip) */
    size_t n_peers, cap_peers;

    struct stats stats; /* host/stats.h: events, errors, latencies, audio */
    struct metric *m_conns;
    struct metric *m_decode, *m_streams;
};

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

/* What a queued message holds in memory (the allocator's header aside). */
#define OUT_COST(m) (sizeof *(m) + (m)->len + 1)

int wsfe_resume_window(struct wsfe *fe)
{
    return table_resume_window(fe->table);
}

const char *wsconn_token(struct wsconn *c)
{
    return c->ts && table_resume_window(c->fe->table) && c->ts->token[0] ? c->ts->token : NULL;
}

uint64_t wsconn_audio_bytes(struct wsconn *c)
{
    return c->ts ? c->ts->audio_bytes : 0;
}

/* What a session holds against the limits, across its connections and
 * while detached (so an attacker cannot detach sessions without bound):
 * its admission slot, its API key's and its address's slots. */
struct wsess {
    struct admit_slot *slot;
    int key_index; /* -1 = none */
    char peer[48]; /* "" = not counted */
    /* The session's dialect and its render (with the session's render
     * state): its events are structured (MSG_EVENT) and rendered here, on
     * the service thread, when queued for writing, live or replayed. */
    const struct dialect_ops *d;
    chan_render_cb render;
    void *render_user;
};

static struct peer_slots *peer_find(struct wsfe *fe, const char *addr)
{
    for (size_t i = 0; i < fe->n_peers; i++)
        if (!strcmp(fe->peers[i].addr, addr))
            return &fe->peers[i];
    return NULL;
}

/* The session detached (+1) or stopped waiting (-1: resumed or ended). */
static void session_waiting(struct wsfe *fe, struct tsess *s, int delta)
{
    struct wsess *w = s->user;
    auth_waiting(fe->auth, w->key_index, delta);
    struct peer_slots *p = w->peer[0] ? peer_find(fe, w->peer) : NULL;
    if (p)
        p->waiting += delta;
}

/* A session left the table (ended while attached, or detached and not
 * resumed): its accounting ends here, once. */
static void session_ended_cb(void *user, struct tsess *s)
{
    struct wsfe *fe = user;
    double audio, cpu;
    stats_ended(&fe->stats, s->chan, &audio, &cpu);
    LOG_INFO(s->id, "session ended: %.2f s audio, %.3f s cpu", audio, cpu);
    struct wsess *w = s->user;
    if (s->detached_at)
        session_waiting(fe, s, -1);
    /* the slots live with the session, across connections */
    admit_release(w->slot);
    auth_release(fe->auth, w->key_index);
    wsfe_peer_release(fe, w->peer);
    hark_free(w);
    s->user = NULL;
    fe->n_sessions--;
    struct wsconn *c = s->conn;
    if (c) {
        c->chan = NULL;
        c->ts = NULL;
        c->slot = NULL;
    }
}

static void out_append(struct wsconn *c, struct chan_msg *m)
{
    while (m) {
        struct chan_msg *next = m->next;
        m->next = NULL;
        if (c->out_overflow && !(m->flags & MSG_LAST)) {
            hark_free(m); /* closing for max_output_bytes: only the end matters */
            m = next;
            continue;
        }
        c->out_bytes += OUT_COST(m);
        if (c->out_tail)
            c->out_tail->next = m;
        else
            c->out_head = m;
        c->out_tail = m;
        m = next;
    }
}

/* Unlinks m (after prev, or the head) from the output queue and frees it. */
static void out_drop(struct wsconn *c, struct chan_msg *prev, struct chan_msg *m)
{
    if (prev)
        prev->next = m->next;
    else
        c->out_head = m->next;
    if (c->out_tail == m)
        c->out_tail = prev;
    c->out_bytes -= OUT_COST(m);
    hark_free(m);
}

/* Keeps the output queue within max_output_bytes (see the top of the file).
 * Segments never go down along the queue, so a partial is superseded when
 * the next transcript after it has its segment. */
static void out_limit(struct wsconn *c)
{
    size_t cap = c->fe->cfg.max_output_bytes;
    if (!cap || c->out_bytes <= cap || c->out_overflow)
        return;
    struct chan_msg *pp = NULL, *p = NULL; /* the last partial seen, and its predecessor */
    for (struct chan_msg *prev = NULL, *m = c->out_head; m;) {
        struct chan_msg *next = m->next;
        int transcript = m->segment >= 0;
        if (transcript && p && p->segment == m->segment) {
            out_drop(c, pp, p);
            if (prev == p)
                prev = pp;
            p = NULL;
        }
        if (m->flags & MSG_PARTIAL) {
            pp = prev;
            p = m;
        } else if (transcript) {
            p = NULL;
        }
        prev = m;
        m = next;
    }
    for (struct chan_msg *prev = NULL, *m = c->out_head; m && c->out_bytes > cap;) {
        struct chan_msg *next = m->next;
        if (m->flags & MSG_PARTIAL)
            out_drop(c, prev, m);
        else
            prev = m;
        m = next;
    }
    if (c->out_bytes <= cap)
        return;
    /* Finals and errors alone pass the cap: the client does not read. */
    LOG_WARN(c->chan ? chan_session_id(c->chan) : NULL,
             "%zu bytes of results queued for a client that does not read (max %zu); closing",
             c->out_bytes, cap);
    while (c->out_head)
        out_drop(c, NULL, c->out_head);
    c->out_overflow = 1;
    c->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
    snprintf(c->close_reason, sizeof c->close_reason,
             "client not reading: over %zu bytes of results queued", cap);
    c->st = WC_CLOSING; /* input is ignored from now on */
    c->lim.closing = 1;
    wsconn_send(c, "", 0, MSG_LAST);
    /* The close frame waits behind what the socket holds: a peer that never
     * reads never takes it, so the connection goes after a grace period. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

void wsconn_send(struct wsconn *c, const char *data, size_t len, unsigned flags)
{
    struct chan_msg *m = hark_malloc(sizeof *m + len + 1);
    if (!m) {
        LOG_ERROR(NULL, "out of memory queueing a message; closing the connection");
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    memset(m, 0, sizeof *m);
    m->flags = flags;
    m->segment = -1;
    m->len = len;
    memcpy(m->data, data, len);
    m->data[len] = 0;
    out_append(c, m);
    out_limit(c);
    lws_callback_on_writable(c->wsi);
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

static void conn_verdict(struct wsconn *c, enum limits_verdict v, int code, const char *msg)
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

/* Admission is host/admit.c's, for every front end. The slot waits in
 * fe->admitted for the session this callback is about to start; one that
 * no session took (its start failed) is returned at the next admission or
 * tick: everything here runs on the one service thread. */
int wsfe_admit(struct wsfe *fe, char *msg, size_t n)
{
    admit_release(wsfe_admit_take(fe));
    return admit_acquire(fe->admit, 1, &fe->admitted, msg, n);
}

int wsconn_admit(struct wsconn *c, char *msg, size_t n)
{
    if (c->fe->admitted) /* reserved before the upgrade (drive_check) */
        return 0;
    return wsfe_admit(c->fe, msg, n);
}

int wsconn_start(struct wsconn *c, const struct hark_options *opts, chan_render_cb render,
                 void *render_user, void (*free_user)(void *), char *err, size_t n)
{
    struct wsfe *fe = c->fe;
    /* The slot wsconn_admit reserved; admitted now if none is waiting. */
    struct admit_slot *slot = wsfe_admit_take(fe);
    if (c->provisional) {
        admit_release(slot);
        return wsconn_provisional_err(c, err, n);
    }
    int rc = slot ? 0 : admit_acquire(fe->admit, 1, &slot, err, n);
    if (rc)
        return rc;
    struct wsess *w = hark_calloc(1, sizeof *w);
    if (!w) {
        admit_release(slot);
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    }
    /* structured: the chan keeps the events, rendered here (conn_drain) */
    rc = wsfe_chan_create(fe, &c->chan, opts, NULL, NULL, render_user, err, n);
    if (rc) {
        admit_release(slot);
        hark_free(w);
        return rc;
    }
    /* Workers may still render with it after the connection is gone. */
    chan_on_free(c->chan, free_user, render_user);
    if (table_add(fe->table, c->chan, render_user, c, &c->ts)) {
        c->chan = NULL; /* released by the table */
        admit_release(slot);
        hark_free(w);
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    }
    c->st = WC_STREAMING;
    c->session_started = clock_mono_ns();
    c->slot = slot;
    w->slot = slot;
    w->key_index = c->key_index; /* the connection's slots are the session's now */
    memcpy(w->peer, c->peer, sizeof w->peer);
    w->d = c->d;
    w->render = render;
    w->render_user = render_user;
    c->key_index = -1;
    c->peer[0] = 0;
    c->ts->user = w;
    admit_bind(c->slot, c->chan);
    fe->n_sessions++;
    LOG_INFO(chan_session_id(c->chan), "session started on %s (%s)", c->path, c->d->name);
    return 0;
}

/* Back-pressure on input: after any message (audio or control) that left
 * the session's queued jobs past half its buffer. */
static void rx_limit(struct wsconn *c)
{
    if (c->chan && !c->paused &&
        chan_pending_bytes(c->chan) > c->fe->cfg.session_buffer_bytes / 2) {
        c->paused = 1;
        lws_rx_flow_control(c->wsi, 0);
    }
}

int wsconn_post_audio(struct wsconn *c, const uint8_t *data, size_t len)
{
    int rc = chan_post_audio(c->chan, data, len);
    if (rc)
        return rc;
    admit_audio(c->slot, c->lim.last_activity); /* stamped when this message arrived */
    c->ts->audio_bytes += len;
    wsconn_ack(c, 0);
    rx_limit(c);
    return 0;
}

static void peer_addr(struct lws *wsi, char addr[48])
{
    lws_get_peer_simple(wsi, addr, 48);
    /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: one client. */
    if (!strncmp(addr, "::ffff:", 7) && strchr(addr + 7, '.'))
        memmove(addr, addr + 7, strlen(addr + 7) + 1);
}

int wsfe_peer_acquire(struct wsfe *fe, struct lws *wsi, char *peer, char *why, size_t n)
{
    peer[0] = 0;
    if (fe->cfg.max_connections_per_ip <= 0)
        return 0;
    char addr[48];
    peer_addr(wsi, addr);
    if (!addr[0])
        return 0;
    size_t i = 0;
    while (i < fe->n_peers && strcmp(fe->peers[i].addr, addr))
        i++;
    if (i < fe->n_peers && fe->peers[i].n >= fe->cfg.max_connections_per_ip) {
        snprintf(why, n, "too many connections from %s (max %d); retry later", addr,
                 fe->cfg.max_connections_per_ip);
        return HARK_E_LIMIT;
    }
    if (i == fe->n_peers) {
        if (fe->n_peers == fe->cap_peers) {
            size_t cap = fe->cap_peers ? 2 * fe->cap_peers : 16;
            struct peer_slots *t = hark_realloc(fe->peers, cap * sizeof *t);
            if (!t)
                return 0; /* not counted rather than refused */
            fe->peers = t;
            fe->cap_peers = cap;
        }
        snprintf(fe->peers[i].addr, sizeof fe->peers[i].addr, "%s", addr);
        fe->peers[i].n = 0;
        fe->peers[i].waiting = 0;
        fe->n_peers++;
    }
    fe->peers[i].n++;
    snprintf(peer, 48, "%s", addr);
    return 0;
}

int wsfe_peer_waiting(struct wsfe *fe, struct lws *wsi)
{
    char addr[48];
    peer_addr(wsi, addr);
    struct peer_slots *p = addr[0] ? peer_find(fe, addr) : NULL;
    return p && p->waiting > 0;
}

int wsconn_provisional_err(struct wsconn *c, char *err, size_t n)
{
    return err_set(err, n, HARK_E_LIMIT,
                   "this client's session limit is held by its detached session(s) waiting for a "
                   "resume: resume one, or retry after the resume window (%d s)",
                   table_resume_window(c->fe->table));
}

void wsfe_peer_release(struct wsfe *fe, char *peer)
{
    if (!peer[0])
        return;
    for (size_t i = 0; i < fe->n_peers; i++) {
        if (strcmp(fe->peers[i].addr, peer))
            continue;
        if (--fe->peers[i].n <= 0)
            fe->peers[i] = fe->peers[--fe->n_peers];
        break;
    }
    peer[0] = 0;
}

/* Acks tell a resuming client how much of its audio it need not resend;
 * they belong to the connection (no seq, never replayed). */
#define ACK_INTERVAL_NS 250000000LL

void wsconn_ack(struct wsconn *c, int force)
{
    if (!c->ts || !c->d->resumable || !table_resume_window(c->fe->table))
        return;
    int64_t now = clock_mono_ns();
    if (!force && (c->ts->audio_bytes == c->acked || now - c->last_ack < ACK_INTERVAL_NS))
        return;
    char msg[64];
    int len = snprintf(msg, sizeof msg, "{\"type\":\"ack\",\"audio_bytes\":%llu}",
                       (unsigned long long)c->ts->audio_bytes);
    wsconn_send(c, msg, (size_t)len, 0);
    c->acked = c->ts->audio_bytes;
    c->last_ack = now;
}

/* Render a session's event (MSG_EVENT) for the connection and queue it;
 * an ack follows every final. Returns its messages' flags (MSG_FATAL), or
 * -1 when out of memory (the connection is being closed). */
static int queue_event(struct wsconn *c, const struct chan_msg *em, unsigned drop)
{
    struct wsess *w = c->ts->user;
    struct chan_msg *r;
    if (chan_render_msgs(w->render, w->render_user, em, &c->fe->scratch, &r)) {
        LOG_ERROR(c->ts->id, "out of memory rendering events; closing the connection");
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return -1;
    }
    unsigned flags = 0;
    while (r) {
        struct chan_msg *next = r->next;
        r->next = NULL;
        flags |= r->flags;
        r->flags &= ~drop;
        if (drop)
            r->lat_kind = LAT_NONE; /* latency was observed when first sent */
        int final = (r->flags & MSG_FINAL) != 0;
        out_append(c, r);
        out_limit(c);
        if (final)
            wsconn_ack(c, 1);
        r = next;
    }
    return (int)flags;
}

/* Queue the session's new events on the connection, rendered in its
 * dialect; each event is kept in the session's replay history. */
static void conn_drain(struct wsconn *c)
{
    if (!c->chan)
        return;
    struct chan_msg *m = chan_take_msgs(c->chan);
    if (m) {
        int fatal = 0;
        while (m) {
            struct chan_msg *next = m->next;
            m->next = NULL;
            if (m->ev)
                stats_event(&c->fe->stats, m->ev);
            int f = queue_event(c, m, 0);
            if (f < 0) {
                hark_free(m);
                while (next) {
                    m = next->next;
                    hark_free(next);
                    next = m;
                }
                return;
            }
            fatal |= limits_event(&c->lim, (unsigned)f) == LIMITS_FATAL;
            if (c->d->resumable)
                table_sent(c->fe->table, c->ts, m); /* the table's now */
            else
                hark_free(m);
            m = next;
        }
        lws_callback_on_writable(c->wsi);
        if (fatal)
            conn_verdict(c, LIMITS_FATAL, HARK_E_BAD_AUDIO, "");
    }
    wsconn_ack(c, 0);
    if (c->paused && chan_pending_bytes(c->chan) < c->fe->cfg.session_buffer_bytes / 4) {
        c->paused = 0;
        /* the client was waiting on us, not idle: its clock starts now */
        c->lim.last_activity = clock_mono_ns();
        lws_rx_flow_control(c->wsi, 1);
    }
}

int wsconn_resume(struct wsconn *c, const char *id, const char *token, int64_t last_seq,
                  uint64_t client_bytes, char *err, size_t n)
{
    struct wsfe *fe = c->fe;
    struct tsess *s;
    int rc = table_resume(fe->table, id, token, last_seq, client_bytes, &s, err, n);
    if (rc)
        return rc;
    struct wsess *w = s->user;
    if (w->d != c->d)
        return err_set(err, n, HARK_E_RESUME_FAILED,
                       "the session was started on another endpoint (%s); resume it there",
                       w->d->name);
    struct wsconn *old = s->conn;
    if (old) {
        /* Still attached: a half-open connection the client gave up on.
         * Its undrained events join the history first; what it had queued
         * is in the history already. */
        int finishing = old->client_close && old->st == WC_CLOSING;
        if (old->st != WC_STREAMING && !old->out_overflow && !finishing)
            return err_set(err, n, HARK_E_RESUME_FAILED, "the session is closing");
        s->finishing |= finishing;
        conn_drain(old);
        old->chan = NULL;
        old->ts = NULL;
        while (old->out_head)
            out_drop(old, NULL, old->out_head);
        if (old->paused)
            lws_rx_flow_control(old->wsi, 1);
        if (old->st == WC_STREAMING) {
            wsconn_close_after(old, 4409, "resumed on another connection");
        } else { /* closing already: its queued end went with the rest */
            old->close_code = 4409;
            snprintf(old->close_reason, sizeof old->close_reason, "resumed on another connection");
            old->out_overflow = 0;
            wsconn_send(old, "", 0, MSG_LAST);
        }
        LOG_INFO(s->id, "resumed on a new connection; the old one is closed (4409)");
    }
    c->chan = s->chan;
    c->ts = s;
    c->slot = w->slot;
    /* The session holds its slots; the connection's own go back. */
    auth_release(fe->auth, c->key_index);
    c->key_index = -1;
    wsfe_peer_release(fe, c->peer);
    c->provisional = 0;
    if (s->detached_at)
        session_waiting(fe, s, -1);
    /* A finishing session takes no input: the client's `close` was taken;
     * its events up to `closed` follow, then the close. */
    c->st = s->finishing ? WC_CLOSING : WC_STREAMING;
    c->lim.closing = s->finishing;
    c->client_close = s->finishing;
    c->session_started = clock_mono_ns();
    c->acked = s->audio_bytes; /* the resumed message carries it */
    c->last_ack = c->session_started;
    table_attach(fe->table, s, c);
    LOG_INFO(s->id, "session resumed (client saw seq %lld; server holds %llu audio bytes)",
             (long long)last_seq, (unsigned long long)s->audio_bytes);
    return 0;
}

void wsconn_replay(struct wsconn *c, int64_t last_seq)
{
    int fatal = 0;
    /* the held events, rendered again for this connection (acks after
     * every final, replayed ones too) */
    for (const struct chan_msg *m = c->ts->hist.head; m; m = m->next) {
        if ((int64_t)m->seq <= last_seq)
            continue;
        int f = queue_event(c, m, MSG_FATAL);
        if (f < 0)
            return;
        fatal |= (f & MSG_FATAL) != 0;
    }
    lws_callback_on_writable(c->wsi);
    conn_drain(c); /* events made since: after the replayed ones */
    if (fatal)
        conn_verdict(c, LIMITS_FATAL, HARK_E_BAD_AUDIO, "");
}

/* One message per WRITEABLE, as lws wants. Returns -1 to close. */
static int conn_write(struct wsconn *c)
{
    struct wsfe *fe = c->fe;
    struct chan_msg *m = c->out_head;
    if (!m)
        return 0;
    c->out_head = m->next;
    if (!c->out_head)
        c->out_tail = NULL;
    c->out_bytes -= OUT_COST(m);
    int last = (m->flags & MSG_LAST) != 0;
    if (m->len) {
        if (LWS_PRE + m->len > fe->tx_cap) {
            unsigned char *t = hark_realloc(fe->tx, LWS_PRE + m->len);
            if (!t) {
                hark_free(m);
                return -1;
            }
            fe->tx = t;
            fe->tx_cap = LWS_PRE + m->len;
        }
        memcpy(fe->tx + LWS_PRE, m->data, m->len);
        int n = lws_write(c->wsi, fe->tx + LWS_PRE, m->len,
                          (m->flags & MSG_BINARY) ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        stats_latency(&fe->stats, m, clock_mono_ns());
        if (n < 0) {
            hark_free(m);
            return -1;
        }
    }
    hark_free(m);
    if (last) {
        int code = c->close_code ? c->close_code : LWS_CLOSE_STATUS_NORMAL;
        lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)c->close_reason,
                         strlen(c->close_reason));
        c->st = WC_GONE;
        return -1;
    }
    if (c->out_head)
        lws_callback_on_writable(c->wsi);
    return 0;
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
    if (c->ts) {
        /* Dropped without a close (no close frame, or one other than 1000;
         * the native `close` and every server-side end set WC_CLOSING):
         * the session waits for a resume. */
        struct tsess *ts = c->ts;
        /* A client that stopped reading (out_overflow) may be half-open
         * too: its events are in the history, its session not closed. One
         * that asked to finish (`close`) and dropped before the last event
         * was written has not seen all its finals: its session stays,
         * finishing, until it is resumed and has delivered everything. */
        int finishing = c->client_close && c->st == WC_CLOSING;
        int dropped = (c->st == WC_STREAMING || c->out_overflow || finishing) && c->d->resumable &&
                      !fe->drain.active && c->peer_close != LWS_CLOSE_STATUS_NORMAL;
        ts->finishing |= finishing;
        if (dropped) {
            c->chan = NULL;
            c->ts = NULL;
            if (table_detach(fe->table, ts, clock_mono_ns()))
                session_waiting(fe, ts, +1);
        } else {
            table_end(fe->table, ts);
        }
        c->chan = NULL;
        c->ts = NULL;
        c->slot = NULL; /* released with the session (session_ended_cb) */
    }
    if (c->key_index >= 0)
        auth_release(fe->auth, c->key_index);
    wsfe_peer_release(fe, c->peer);
    drive_destroy(c);
    while (c->out_head) {
        struct chan_msg *n = c->out_head->next;
        hark_free(c->out_head);
        c->out_head = n;
    }
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
        rx_limit(c); /* controls queue jobs too */
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
        return conn_write(c);
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
        conn_drain(c);
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
            conn_verdict(c, LIMITS_SHUTDOWN, code, msg);
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
            conn_verdict(c, v, code, msg);
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
        .ended_cb = session_ended_cb,
        .user = fe,
    };
    if ((rc = table_create(&fe->table, &tc))) {
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
    hark_free(fe->peers);
    hark_free(fe->tx);
    buf_deinit(&fe->scratch);
    hark_free(fe);
}
