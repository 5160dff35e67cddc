/*
 * The WebSocket front end's session glue: a connection starts a session in
 * the host (admission, the host table, its per-key and per-address slots),
 * feeds it, and writes its events, rendered in the connection's dialect on
 * the service thread (the chan is structured: its messages are the events,
 * host/chan.h MSG_EVENT), each kept in the session's replay history
 * (host/outbox.h) for a resume. Acks of the audio held, resume and replay,
 * and what a session holds against the limits while detached live here;
 * the rules themselves are the host's (src/host).
 *
 * Threads: the service thread.
 */
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/ws/wsfe_state.h"
#include "front/nats/gwtake.h"
#include "host/admit.h"
#include "session/options.h"

/* Acks tell a resuming client how much of its audio it need not resend;
 * they belong to the connection (no seq, never replayed). */
#define ACK_INTERVAL_NS 250000000LL

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
    struct hark_options *opts; /* the session's (a hand-over carries them; NULL: none kept) */
};

const struct hark_options *wsess_options(struct tsess *s)
{
    struct wsess *w = s->user;
    return w ? w->opts : NULL;
}

/* The session detached (+1) or stopped waiting (-1: resumed or ended). */
static void waiting(struct wsfe *fe, struct tsess *s, int delta)
{
    struct wsess *w = s->user;
    auth_waiting(fe->auth, w->key_index, delta);
    peers_wait(&fe->peers, w->peer, delta);
}

/* A session left the table (ended while attached, or detached and not
 * resumed): its accounting ends here, once. */
void wsess_ended_cb(void *user, struct tsess *s)
{
    struct wsfe *fe = user;
    double audio, cpu;
    stats_ended(&fe->stats, s->chan, &audio, &cpu);
    LOG_INFO(s->id, "session ended: %.2f s audio, %.3f s cpu", audio, cpu);
    struct wsess *w = s->user;
    if (s->detached_at)
        waiting(fe, s, -1);
    /* the slots live with the session, across connections */
    admit_release(w->slot);
    auth_release(fe->auth, w->key_index);
    wsfe_peer_release(fe, w->peer);
    hark_options_destroy(w->opts);
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

static int start_session(struct wsconn *c, const struct hark_options *opts, const char *id,
                         chan_render_cb render, void *render_user, void (*free_user)(void *),
                         char *err, size_t n);

int wsconn_start(struct wsconn *c, const struct hark_options *opts, chan_render_cb render,
                 void *render_user, void (*free_user)(void *), char *err, size_t n)
{
    return start_session(c, opts, NULL, render, render_user, free_user, err, n);
}

static int start_session(struct wsconn *c, const struct hark_options *opts, const char *id,
                         chan_render_cb render, void *render_user, void (*free_user)(void *),
                         char *err, size_t n)
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
    rc = wsfe_chan_create(fe, &c->chan, opts, id, NULL, render_user, err, n);
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
    if (fe->cfg.takeover && hark_options_copy(&w->opts, opts))
        w->opts = NULL; /* out of memory: handed over with the gateway's defaults */
    admit_bind(c->slot, c->chan);
    fe->n_sessions++;
    LOG_INFO(chan_session_id(c->chan), "session started on %s (%s%s%s%s%s)", c->path, c->d->name,
             opts->engine[0] ? ", engine " : "", opts->engine, opts->model[0] ? ", model " : "",
             opts->model);
    return 0;
}

/* Back-pressure on input: after any message (audio or control) that left
 * the session's queued jobs past half its buffer. */
void wsconn_rx_limit(struct wsconn *c)
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
    wsconn_rx_limit(c);
    return 0;
}

static void peer_addr(struct lws *wsi, char addr[PEERS_ADDR_MAX])
{
    lws_get_peer_simple(wsi, addr, PEERS_ADDR_MAX);
    /* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d: one client. */
    if (!strncmp(addr, "::ffff:", 7) && strchr(addr + 7, '.'))
        memmove(addr, addr + 7, strlen(addr + 7) + 1);
}

int wsfe_peer_acquire(struct wsfe *fe, struct lws *wsi, char *peer, char *why, size_t n)
{
    peer[0] = 0;
    if (fe->peers.max <= 0)
        return 0;
    char addr[PEERS_ADDR_MAX];
    peer_addr(wsi, addr);
    int counted, rc = peers_acquire(&fe->peers, addr, &counted, why, n);
    if (!rc && counted)
        snprintf(peer, PEERS_ADDR_MAX, "%s", addr);
    return rc;
}

int wsfe_peer_waiting(struct wsfe *fe, struct lws *wsi)
{
    char addr[PEERS_ADDR_MAX];
    peer_addr(wsi, addr);
    return peers_waiting(&fe->peers, addr);
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
    peers_release(&fe->peers, peer);
    peer[0] = 0;
}

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
        /* the session's last message: first an ack of all its audio, so a
         * client whose last frames came after the last final's ack (and
         * within the ack interval) learns they were held too */
        if ((r->flags & MSG_LAST) && c->ts->audio_bytes != c->acked)
            wsconn_ack(c, 1);
        outq_append(c, r);
        outq_limit(c);
        if (final)
            wsconn_ack(c, 1);
        r = next;
    }
    return (int)flags;
}

/* Queue the session's new events on the connection, rendered in its
 * dialect; each event is kept in the session's replay history. */
void wsconn_drain(struct wsconn *c)
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
            wsconn_verdict(c, LIMITS_FATAL, HARK_E_BAD_AUDIO, "");
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
    if (fe->take && table_resume_window(fe->table) && !table_find(fe->table, id))
        /* maybe another gateway's (wsconn_take, which counts the outcome) */
        return err_set(err, n, HARK_E_RESUME_FAILED,
                       "no session with that id and token here (expired, ended, or on another "
                       "server); start a new session");
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
        wsconn_drain(old);
        old->chan = NULL;
        old->ts = NULL;
        while (old->out_head)
            outq_clear(old);
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
        waiting(fe, s, -1);
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
    wsconn_drain(c); /* events made since: after the replayed ones */
    if (fatal)
        wsconn_verdict(c, LIMITS_FATAL, HARK_E_BAD_AUDIO, "");
}

void wsconn_session_gone(struct wsconn *c)
{
    struct wsfe *fe = c->fe;
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
                waiting(fe, ts, +1);
        } else {
            table_end(fe->table, ts);
        }
        c->chan = NULL;
        c->ts = NULL;
        c->slot = NULL; /* released with the session (wsess_ended_cb) */
    }
}

int wsconn_take(struct wsconn *c, const char *id, const char *token, int64_t last_seq,
                uint64_t client_bytes, char *err, size_t n)
{
    struct wsfe *fe = c->fe;
    const struct wsfe_takeover *to = fe->cfg.takeover;
    if (!to || !fe->take || !table_resume_window(fe->table) || table_find(fe->table, id))
        return HARK_E_RESUME_FAILED; /* table_resume answered (and counted) */
    if (c->taking[0] || strlen(id) >= sizeof c->taking || strlen(token) >= sizeof c->take_token) {
        table_count_resume(fe->table, 0);
        return HARK_E_RESUME_FAILED;
    }
    struct gwtake_req q = {.last_seq = last_seq, .audio_bytes = client_bytes};
    snprintf(q.token, sizeof q.token, "%s", token);
    char why[300];
    if (to->take(to->ctx, id, &q, why, sizeof why)) {
        table_count_resume(fe->table, 0);
        LOG_INFO(id, "resume: cannot ask the other gateways: %s", why);
        return err_set(err, n, HARK_E_RESUME_FAILED, "%s", why);
    }
    snprintf(c->taking, sizeof c->taking, "%s", id);
    snprintf(c->take_token, sizeof c->take_token, "%s", token);
    c->take_last_seq = last_seq;
    LOG_INFO(id, "resume: not held here; asking the other gateways");
    return 0;
}

int wsconn_adopt(struct wsconn *c, const struct gwtake_reply *r, chan_render_cb render,
                 void *render_user, void (*free_user)(void *), char *err, size_t n)
{
    struct wsfe *fe = c->fe;
    struct hark_options *o = NULL;
    int rc = hark_options_copy(&o, wsfe_defaults(fe));
    if (rc)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    for (size_t i = 0; !rc && r->st.options[i]; i += 2)
        rc = hark_options_set(o, r->st.options[i], r->st.options[i + 1], err, n);
    if (!rc && !(rc = wsconn_admit(c, err, n)))
        rc = start_session(c, o, c->taking, render, render_user, free_user, err, n);
    if (!rc && strcmp(chan_session_id(c->chan), c->taking))
        rc = err_set(err, n, HARK_E_INTERNAL, "the session did not keep its id");
    char speaker[128] = "";
    if (!rc)
        hark_options_get(o, "speaker_id", speaker, sizeof speaker);
    hark_options_destroy(o);
    if (rc)
        return rc; /* a started session ends with the connection */
    struct tsess *s = c->ts;
    snprintf(s->token, sizeof s->token, "%s", c->take_token);
    s->audio_bytes = r->st.audio_bytes;
    if (c->take_last_seq >= 0) /* older events stayed behind: a resume needing them fails */
        outbox_lose(&s->hist, (uint64_t)c->take_last_seq);
    for (size_t i = 0; i < r->n_events; i++) {
        struct hark_event ev = r->events[i];
        ev.session_id = s->id;
        ev.speaker_id = speaker;
        struct chan_msg *m = chan_event_msg(&ev);
        if (!m) {
            outbox_lose(&s->hist, ev.seq);
            continue;
        }
        outbox_push(&s->hist, m);
    }
    s->hist.next_seq = r->st.next_seq;
    c->acked = s->audio_bytes;
    c->take_token[0] = 0;
    LOG_INFO(s->id, "session taken over from another gateway (%zu events held, next seq %llu)",
             r->n_events, (unsigned long long)r->st.next_seq);
    return 0;
}

void wsconn_count_resume(struct wsconn *c, int ok)
{
    table_count_resume(c->fe->table, ok);
}
