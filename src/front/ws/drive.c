/*
 * The WebSocket side of the wire dialects (src/front/proto/dialect.h): the
 * routing table from request paths to dialects, and the driver that runs a
 * dialect's actions against the connection and the session host.
 *
 * Adding a dialect: its file in src/front/proto and a row in routes[]
 * (docs/internals/dialects.md). Service thread only, but for render_cb
 * (worker threads).
 */
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/ws/wsfe.h"

static const struct route {
    const char *path; /* also matched with a trailing '/' */
    const struct dialect_ops *d;
} routes[] = {
    {"/v1/stream", &dialect_native},
    {"/v1/listen", &dialect_deepgram},
    {"/ws/transcribe", &dialect_relay},
    {"/v3/ws", &dialect_assemblyai},
    {"/v1/realtime", &dialect_openai_realtime},
    {"/transcribe-websocket", &dialect_soniox},
    {"/transcribe", &dialect_soniox}, /* seed 003 */
};

const struct dialect_ops *drive_route(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t n = strlen(routes[i].path);
        if (!strncmp(path, routes[i].path, n) && (!path[n] || !strcmp(path + n, "/")))
            return routes[i].d;
    }
    return NULL;
}

/* The session's render callback: the dialect's pure render (the server
 * counts the events for /metrics when it takes them from the session).
 * Freed with the session (chan_on_free). */
struct rwrap {
    struct wsfe *fe;
    const struct dialect_ops *d;
    void *rstate;
};

static void render_cb(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    struct rwrap *w = user;
    w->d->render(w->rstate, ev, out, flags);
}

static void rwrap_free(void *user)
{
    struct rwrap *w = user;
    if (w)
        hark_free(w->rstate);
    hark_free(w);
}

static const char *req_header(const struct dialect_req *rq, const char *name, char *buf, size_t n)
{
    struct lws *wsi = rq->user;
    int len;
    if (!strcmp(name, "authorization:"))
        len = lws_hdr_copy(wsi, buf, (int)n, WSI_TOKEN_HTTP_AUTHORIZATION);
    else if (!strcmp(name, "sec-websocket-protocol:"))
        len = lws_hdr_copy(wsi, buf, (int)n, WSI_TOKEN_PROTOCOL);
    else
        len = lws_hdr_custom_copy(wsi, buf, (int)n, name, (int)strlen(name));
    return len > 0 ? buf : NULL;
}

/* The dialect's open() on the request; args freed by the caller. */
static int open_dialect(struct wsfe *fe, struct lws *wsi, const struct dialect_ops *d,
                        const char *path, const char *request_id, char ***args, void **state,
                        struct dialect_out *out, char *err, size_t n)
{
    size_t n_args = 0;
    *args = http_query_args(wsi, &n_args);
    if (!*args)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    struct dialect_req rq = {
        .path = path,
        .args = (const char *const *)*args,
        .n_args = n_args,
        .request_id = request_id,
        .header = req_header,
        .user = wsi,
    };
    *state = NULL;
    return d->open(wsfe_dialect_ctx(fe), &rq, state, out, err, n);
}

void drive_refuse(struct wsfe *fe, struct lws *wsi, const struct dialect_ops *d, unsigned status,
                  int err, const char *msg)
{
    (void)fe;
    if (!d || !d->refuse) {
        http_error(wsi, status,
                   status == HTTP_STATUS_FORBIDDEN      ? "forbidden"
                   : status == HTTP_STATUS_UNAUTHORIZED ? "unauthorized"
                   : status == 429                      ? "limit_exceeded"
                   : status == 503                      ? hark_err_code(HARK_E_BUSY)
                                                        : hark_err_code(err),
                   msg);
        return;
    }
    struct buf b;
    struct dialect_headers h;
    memset(&h, 0, sizeof h);
    buf_init(&b);
    d->refuse(status, err, msg, &b, &h);
    const char *extra[2 * 2 + 1];
    int k = 0;
    for (int i = 0; i < h.n && i < 2; i++) {
        extra[k++] = h.name[i];
        extra[k++] = h.value[i];
    }
    extra[k] = NULL;
    if (!b.oom)
        http_respond(wsi, status, "application/json", b.data, b.len, extra);
    buf_deinit(&b);
}

int drive_check(struct wsfe *fe, struct lws *wsi, const struct dialect_ops *d, const char *path)
{
    char **args = NULL, err[512];
    void *state = NULL;
    struct dialect_out out;
    dialect_out_init(&out);
    int rc = open_dialect(fe, wsi, d, path, "", &args, &state, &out, err, sizeof err);
    unsigned status = HTTP_STATUS_BAD_REQUEST;
    /* A session that starts at the upgrade: its options and the capacity
     * are checked now, so a client learns of a bad request or a full server
     * from an HTTP status rather than a dropped socket. */
    for (size_t i = 0; !rc && i < out.n; i++) {
        if (out.act[i].type != DA_START)
            continue;
        /* with a backend (--backend) the worker checks what its engine
         * takes, and refuses the start with a typed error */
        const struct wsfe_cfg *cfg = wsfe_config(fe);
        const char *why;
        if (wsfe_engine(fe))
            rc = hark_engine_check_options(wsfe_engine(fe), out.act[i].opts, err, sizeof err);
        else if (cfg->backend && cfg->not_ready && (why = cfg->not_ready(cfg->ready_user))) {
            /* a gateway cut off from its workers: a 503 the client's retry
             * logic knows, not an open socket that closes at once */
            rc = err_set(err, sizeof err, HARK_E_BUSY, "%.*s", (int)strcspn(why, "\n"), why);
            status = HTTP_STATUS_SERVICE_UNAVAILABLE;
            break;
        }
        if (!rc && wsfe_admit(fe, err, sizeof err)) {
            rc = HARK_E_BUSY;
            status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        }
        break;
    }
    if (rc)
        drive_refuse(fe, wsi, d, status, rc, err);
    if (state)
        d->destroy(state);
    dialect_out_deinit(&out);
    hark_free(args);
    return rc ? 1 : 0;
}

static void execute(struct wsconn *c, struct dialect_out *out, int depth);

static void sig(struct wsconn *c, enum dialect_sig s, int err, const char *msg, int depth)
{
    struct dialect_out out;
    dialect_out_init(&out);
    c->d->signal(c->dstate, s, err, msg, &out);
    execute(c, &out, depth + 1);
    dialect_out_deinit(&out);
}

void drive_signal(struct wsconn *c, enum dialect_sig s, int err, const char *msg)
{
    if (c->dstate)
        sig(c, s, err, msg, 0);
    else
        wsconn_close_after(c, 1011, "internal error");
}

static void started(struct wsconn *c, const struct dialect_session *s, int depth)
{
    if (!c->d->started)
        return;
    struct dialect_out out;
    dialect_out_init(&out);
    c->d->started(c->dstate, s, &out);
    execute(c, &out, depth + 1);
    dialect_out_deinit(&out);
}

/* An error before the session exists: the connection's first and only
 * event, seq 0, rendered here. */
static void error_now(struct wsconn *c, int code, const char *msg)
{
    struct hark_event ev = {.type = HARK_EVENT_ERROR, .seq = 0, .code = code, .message = msg};
    struct buf b;
    unsigned flags = 0;
    buf_init(&b);
    c->d->render(NULL, &ev, &b, &flags);
    if (!b.oom && b.len)
        wsconn_send(c, b.data, b.len, (flags & MSG_BINARY) ? MSG_BINARY : 0);
    buf_deinit(&b);
    wsfe_count_event(c->fe, &ev);
}

static int do_start(struct wsconn *c, struct dialect_act *a, int depth)
{
    char err[512];
    struct hark_options *o = a->opts;
    struct rwrap *w = hark_calloc(1, sizeof *w);
    int rc;
    a->opts = NULL;
    if (w) {
        w->fe = c->fe;
        w->d = c->d;
        w->rstate = a->render; /* w owns it now */
    } else {
        hark_free(a->render);
    }
    a->render = NULL;
    if (!w)
        rc = err_set(err, sizeof err, HARK_E_NOMEM, "out of memory");
    else if (auth_enabled(wsfe_auth(c->fe)) && c->key_index < 0 && !c->provisional)
        rc = err_set(err, sizeof err, HARK_E_AUTH, "an API key is required");
    else if (wsconn_admit(c, err, sizeof err))
        rc = HARK_E_BUSY;
    else
        rc = wsconn_start(c, o, render_cb, w, rwrap_free, err, sizeof err);
    if (rc) {
        rwrap_free(w); /* not taken by a failed start */
        hark_options_destroy(o);
        sig(c, DS_REFUSED, rc, err, depth);
        return rc;
    }
    struct dialect_session s = {
        .id = chan_session_id(c->chan),
        .resume_token = wsconn_token(c),
        .opts = o,
    };
    started(c, &s, depth);
    hark_options_destroy(o);
    return 0;
}

static int do_resume(struct wsconn *c, const struct dialect_out *out, const struct dialect_act *a,
                     int depth)
{
    char err[300];
    const char *id = dialect_str(out, a->str);
    int rc = wsconn_resume(c, id, dialect_str(out, a->str2), a->last_seq, a->audio_bytes, err,
                           sizeof err);
    /* not held here: another gateway may hold it (wstake.c); the answer
     * comes to drive_taken */
    if (rc == HARK_E_RESUME_FAILED && !wsconn_take(c, id, dialect_str(out, a->str2), a->last_seq,
                                                   a->audio_bytes, err, sizeof err))
        return 1;
    if (rc) {
        sig(c, DS_REFUSED, rc, err, depth);
        return rc;
    }
    struct dialect_session s = {
        .id = id,
        .resume_token = wsconn_token(c),
        .resumed = 1,
        .last_seq = a->last_seq,
        .audio_bytes = wsconn_audio_bytes(c),
    };
    started(c, &s, depth);
    wsconn_replay(c, a->last_seq);
    return 0;
}

void drive_taken(struct wsconn *c, const struct gwtake_reply *r, const char *why)
{
    char err[300];
    int rc;
    struct rwrap *w = NULL;
    if (!r) {
        LOG_INFO(c->taking, "resume failed: %s", why);
        rc = err_set(err, sizeof err, HARK_E_RESUME_FAILED,
                     "no session with that id and token here (expired, ended, or on another "
                     "server); start a new session");
    } else if (!(w = hark_calloc(1, sizeof *w))) {
        rc = err_set(err, sizeof err, HARK_E_NOMEM, "out of memory");
    } else {
        w->fe = c->fe;
        w->d = c->d; /* a resumable dialect's render needs no state */
        rc = wsconn_adopt(c, r, render_cb, w, rwrap_free, err, sizeof err);
        if (rc && !c->chan)
            rwrap_free(w); /* not taken by a failed start */
    }
    int64_t last_seq = c->take_last_seq;
    c->taking[0] = 0;
    wsconn_count_resume(c, rc == 0);
    if (rc) {
        sig(c, DS_REFUSED, rc == HARK_E_NOMEM ? rc : HARK_E_RESUME_FAILED, err, 0);
        return;
    }
    struct dialect_session s = {
        .id = chan_session_id(c->chan),
        .resume_token = wsconn_token(c),
        .resumed = 1,
        .last_seq = last_seq,
        .audio_bytes = wsconn_audio_bytes(c),
    };
    started(c, &s, 0);
    wsconn_replay(c, last_seq);
}

/* A key sent in-band (the dialect's first message). A key the request
 * carried was checked before the upgrade and counts; else this one is
 * checked and counted against its session limit like a header's. */
static int do_auth(struct wsconn *c, const char *key, int depth)
{
    struct auth *au = wsfe_auth(c->fe);
    char why[200];
    int k, rc;
    if (!auth_enabled(au) || c->key_index >= 0)
        return 0;
    if ((rc = auth_check_key(au, key, &k, why, sizeof why)) ||
        (rc = auth_acquire(au, k, why, sizeof why))) {
        sig(c, DS_REFUSED, rc, why, depth);
        return rc;
    }
    c->key_index = k;
    return 0;
}

static void execute(struct wsconn *c, struct dialect_out *out, int depth)
{
    if (out->oom || depth > 2) {
        LOG_ERROR(c->chan ? chan_session_id(c->chan) : NULL,
                  "%s dialect: out of memory or actions; closing", c->d->name);
        wsconn_close_after(c, 1011, "internal error");
        return;
    }
    for (size_t i = 0; i < out->n; i++) {
        struct dialect_act *a = &out->act[i];
        int rc = 0;
        switch (a->type) {
        case DA_START:
            if (do_start(c, a, depth))
                return;
            break;
        case DA_RESUME:
            if (do_resume(c, out, a, depth))
                return;
            break;
        case DA_AUDIO:
            if (c->chan && a->len)
                rc = wsconn_post_audio(c, a->data, a->len);
            break;
        case DA_FINALIZE:
            if (c->chan)
                rc = chan_post_finalize(c->chan);
            break;
        case DA_STATE:
            if (c->chan)
                rc = chan_post_state(c->chan, (enum hark_state)a->code);
            break;
        case DA_KEEPALIVE:
            wsconn_ack(c, 1); /* the activity time is refreshed already */
            break;
        case DA_SEND:
            wsconn_send(c, dialect_str(out, a->str), a->len, 0);
            break;
        case DA_ERROR:
            if (!c->chan || a->now) {
                error_now(c, a->code, dialect_str(out, a->str));
            } else if (chan_post_error(c->chan, a->code, dialect_str(out, a->str)) != 0) {
                /* After the close was queued the CLOSED event is the last
                 * one: the error has no place in the stream. */
                LOG_DEBUG(chan_session_id(c->chan), "closing; error not sent: %s: %s",
                          hark_err_code(a->code), dialect_str(out, a->str));
            }
            break;
        case DA_CLOSE:
            /* The client's own end (native `close`): a drop before its
             * last results are written leaves the session resumable. */
            c->client_close |= depth == 0 && a->code == 1000 && !a->now;
            if (a->now)
                wsconn_close_now(c, a->code, dialect_str(out, a->str));
            else
                wsconn_close_after(c, a->code, dialect_str(out, a->str));
            break;
        case DA_AUTH:
            if (do_auth(c, dialect_str(out, a->str), depth))
                return;
            break;
        }
        if (rc && a->type != DA_AUTH) {
            /* The session's buffer is full although reading pauses at
             * half of it. */
            sig(c, DS_OVERFLOW, rc, hark_strerror(rc), depth);
            return;
        }
    }
}

int drive_open(struct wsconn *c)
{
    char **args = NULL, err[512];
    struct dialect_out out;
    dialect_out_init(&out);
    int rc = open_dialect(c->fe, c->wsi, c->d, c->path, c->request_id, &args, &c->dstate, &out, err,
                          sizeof err);
    hark_free(args);
    if (rc) {
        /* checked before the upgrade, so only a race or no memory gets here */
        LOG_WARN(NULL, "%s dialect refused an upgraded request: %s", c->d->name, err);
        wsconn_close_after(c, 1011, err);
    } else {
        execute(c, &out, 0);
    }
    dialect_out_deinit(&out);
    return 0;
}

int drive_text(struct wsconn *c, const char *msg, size_t len)
{
    if (!c->dstate)
        return -1;
    struct dialect_out out;
    dialect_out_init(&out);
    int rc = c->d->text(c->dstate, msg, len, &out);
    if (!rc)
        execute(c, &out, 0);
    dialect_out_deinit(&out);
    return rc;
}

int drive_binary(struct wsconn *c, const uint8_t *data, size_t len)
{
    if (!c->dstate)
        return -1;
    struct dialect_out out;
    dialect_out_init(&out);
    int rc = c->d->binary(c->dstate, data, len, &out);
    if (!rc)
        execute(c, &out, 0);
    dialect_out_deinit(&out);
    return rc;
}

void drive_destroy(struct wsconn *c)
{
    if (c->d && c->dstate)
        c->d->destroy(c->dstate);
    c->dstate = NULL;
}
