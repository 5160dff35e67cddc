/*
 * hark's native streaming protocol on /v1/stream (docs/protocol.md):
 *
 *   client: {"type":"config",...}  then binary audio, and text controls
 *           {"type":"finalize"} {"type":"keepalive"} {"type":"close"}
 *           {"type":"state","state":"listening"|"responding"}
 *   server: {"type":"ready",...} then transcript / speech_started /
 *           utterance_end / interrupt / error events, and {"type":"closed"}
 *           as the last message before a 1000 close.
 *
 * Errors that leave the session intact (bad JSON, unknown type) are
 * reported and the session goes on; errors without a usable session (bad
 * config, audio before config, undecodable audio) close with a 4xxx code.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/ws/wsfe.h"
#include "session/event_json.h"

/* Close codes (also in docs/protocol.md). */
#define CLOSE_NORMAL 1000
#define CLOSE_GOING_AWAY 1001
#define CLOSE_TRY_LATER 1013
#define CLOSE_PROTOCOL 4400
#define CLOSE_RESUME_FAILED 4404
#define CLOSE_IDLE 4408
#define CLOSE_BAD_AUDIO 4415
#define CLOSE_LIMIT 4429

struct native {
    struct wsfe *fe; /* read-only from workers: metrics are thread-safe */
};

static void send_error(struct wsconn *c, int err, const char *fmt, ...) HARK_PRINTF(3, 4);

/* An error found here on the I/O thread. With a session it is queued behind
 * the session's work and rendered like every other event, so it carries the
 * next seq and the speaker_id in order with the results (the workers own the
 * counter; nothing here could number it without racing them). Without one
 * (config refused, audio before config) it is the connection's first and
 * only event: seq 0. After the close was queued the CLOSED event is already
 * the last one, and the error has no place in the stream: it is logged. */
static void send_error(struct wsconn *c, int err, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->chan) {
        if (chan_post_error(c->chan, err, msg) != 0)
            LOG_DEBUG(chan_session_id(c->chan), "closing; error not sent: %s: %s",
                      hark_err_code(err), msg);
        return;
    }
    struct hark_event ev = {.type = HARK_EVENT_ERROR, .seq = 0, .code = err, .message = msg};
    struct buf b;
    buf_init(&b);
    event_json_render(&ev, &b);
    if (!b.oom)
        wsconn_send(c, b.data, b.len, 0);
    buf_deinit(&b);
    wsfe_count_event(wsconn_fe(c), &ev);
}

static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    struct native *n = user;
    wsfe_count_event(n->fe, ev);
    event_json_render(ev, out);
    if (ev->type == HARK_EVENT_ERROR &&
        (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED))
        *flags |= MSG_FATAL;
}

static int native_open(struct wsconn *c)
{
    struct native *n = hark_calloc(1, sizeof *n);
    if (!n)
        return HARK_E_NOMEM;
    n->fe = wsconn_fe(c);
    c->dstate = n;
    return 0;
}

static void send_ready(struct wsconn *c, const struct hark_options *o)
{
    static const char *const keys[] = {
        "encoding",         "sample_rate", "channels",
        "language",         "engine",      "model",
        "interim_results",  "words",       "endpointing_ms",
        "utterance_end_ms", "vad_events",  "vad_mode",
        "max_utterance_ms", "speaker_id",
    };
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    buf_json_key(&b, "type");
    buf_json_str(&b, "ready");
    buf_json_key(&b, "session_id");
    buf_json_str(&b, chan_session_id(c->chan));
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[256];
        hark_options_get(o, keys[i], v, sizeof v);
        buf_json_key(&b, keys[i]);
        if (!strcmp(keys[i], "engine") && !v[0])
            buf_json_str(&b, hark_engine_get_name(wsfe_engine(wsconn_fe(c))));
        else if (!strcmp(v, "true") || !strcmp(v, "false") ||
                 (v[0] && strspn(v, "0123456789") == strlen(v)))
            buf_puts(&b, v);
        else
            buf_json_str(&b, v);
    }
    const char *token = wsconn_token(c);
    if (token) {
        buf_json_key(&b, "resume_token");
        buf_json_str(&b, token);
        buf_json_key(&b, "resume_window");
        buf_printf(&b, "%d", wsfe_resume_window(wsconn_fe(c)));
    }
    buf_putc(&b, '}');
    if (!b.oom)
        wsconn_send(c, b.data, b.len, 0);
    buf_deinit(&b);
}

/* {"type":"resume","session_id","resume_token","last_seq":K,"audio_bytes":S}
 * as a connection's first message: take the session over, answer
 * {"type":"resumed","session_id","audio_bytes":H,"last_seq":K}, replay
 * every event after K as first sent, then go on live. */
static void on_resume(struct wsconn *c, const struct json_value *root)
{
    const char *id = json_str(json_get(root, "session_id"));
    const char *token = json_str(json_get(root, "resume_token"));
    const struct json_value *k = json_get(root, "last_seq"), *b = json_get(root, "audio_bytes");
    double last = json_num(k), bytes = json_num(b);
    if (!id || !token || json_type(k) != JSON_NUMBER || json_type(b) != JSON_NUMBER || last < -1 ||
        last != (double)(int64_t)last || last > 9e15 || bytes < 0 ||
        bytes != (double)(uint64_t)bytes || bytes > 9e15) {
        send_error(c, HARK_E_PROTOCOL,
                   "resume: needs session_id and resume_token (strings), last_seq (integer >= "
                   "-1) and audio_bytes (integer >= 0)");
        wsconn_close_after(c, CLOSE_PROTOCOL, "bad resume");
        return;
    }
    char err[300];
    if (wsconn_resume(c, id, token, (int64_t)last, (uint64_t)bytes, err, sizeof err)) {
        send_error(c, HARK_E_RESUME_FAILED, "%s", err);
        wsconn_close_after(c, CLOSE_RESUME_FAILED, "resume failed");
        return;
    }
    struct buf m;
    buf_init(&m);
    buf_putc(&m, '{');
    buf_json_key(&m, "type");
    buf_json_str(&m, "resumed");
    buf_json_key(&m, "session_id");
    buf_json_str(&m, id);
    buf_json_key(&m, "audio_bytes");
    buf_printf(&m, "%llu", (unsigned long long)wsconn_audio_bytes(c));
    buf_json_key(&m, "last_seq");
    buf_printf(&m, "%lld", (long long)last);
    buf_putc(&m, '}');
    if (!m.oom)
        wsconn_send(c, m.data, m.len, 0);
    buf_deinit(&m);
    wsconn_replay(c, (int64_t)last);
}

/* The config message: flat keys = session option names. */
static int on_config(struct wsconn *c, const struct json_value *root)
{
    struct wsfe *fe = wsconn_fe(c);
    struct hark_options *o = NULL;
    char err[512];
    int rc = hark_options_copy(&o, wsfe_defaults(fe));
    if (rc) {
        send_error(c, rc, "out of memory");
        wsconn_close_after(c, 1011, "internal error");
        return 0;
    }
    for (size_t i = 0; i < json_len(root); i++) {
        const char *key = json_key_at(root, i);
        if (!strcmp(key, "type"))
            continue;
        char val[4096]; /* the longest option (vocabulary) and its NUL */
        rc = json_to_text(json_value_at(root, i), val, sizeof val);
        if (rc == HARK_E_LIMIT && hark_options_get(o, key, val, 1) != 0) {
            rc = hark_options_set(o, key, "", err, sizeof err); /* unknown key: say that */
        } else if (rc == HARK_E_LIMIT) {
            /* the right kind of value, only too long: say that, and the limit */
            snprintf(err, sizeof err, "%s: value too long (at most %zu bytes)", key,
                     sizeof val - 1);
            rc = HARK_E_BAD_OPTION;
        } else if (rc) {
            snprintf(err, sizeof err, "%s: must be a string, number, boolean or array of strings",
                     key);
            rc = HARK_E_BAD_OPTION;
        }
        if (rc) {
            send_error(c, rc, "%s", err);
            goto refuse;
        }
        if ((rc = hark_options_set(o, key, val, err, sizeof err))) {
            send_error(c, rc, "%s", err);
            goto refuse;
        }
    }
    if ((rc = wsfe_admit(fe, err, sizeof err))) {
        send_error(c, HARK_E_BUSY, "%s", err);
        wsconn_close_after(c, CLOSE_TRY_LATER, "busy");
        goto out;
    }
    if ((rc = wsconn_start(c, o, c->dstate, err, sizeof err))) {
        send_error(c, rc, "%s", err);
        goto refuse;
    }
    send_ready(c, o);
    goto out;
refuse:
    wsconn_close_after(c, CLOSE_PROTOCOL, "bad config");
out:
    hark_options_destroy(o);
    return 0;
}

/* The session's buffer is full although reading pauses at half of it. */
static void overflow(struct wsconn *c, int rc)
{
    send_error(c, HARK_E_LIMIT, "session buffer full (%s); the client sends faster than allowed",
               hark_strerror(rc));
    wsconn_close_after(c, CLOSE_LIMIT, "buffer overflow");
}

static int native_text(struct wsconn *c, const char *msg, size_t len)
{
    int rc = 0;
    struct json *doc = NULL;
    char err[256];
    if (json_parse(&doc, msg, len, err, sizeof err) || json_type(json_root(doc)) != JSON_OBJECT) {
        send_error(c, HARK_E_PROTOCOL, "%s", doc ? "message must be a JSON object" : err);
        if (c->st == WC_OPEN)
            wsconn_close_after(c, CLOSE_PROTOCOL, "bad message");
        json_free(doc);
        return 0;
    }
    const struct json_value *root = json_root(doc);
    const char *type = json_str(json_get(root, "type"));
    if (!type) {
        send_error(c, HARK_E_PROTOCOL, "message has no \"type\"");
        if (c->st == WC_OPEN)
            wsconn_close_after(c, CLOSE_PROTOCOL, "bad message");
    } else if (c->st == WC_OPEN) {
        if (!strcmp(type, "config")) {
            on_config(c, root);
        } else if (!strcmp(type, "resume")) {
            on_resume(c, root);
        } else {
            send_error(c, HARK_E_PROTOCOL,
                       "the first message must be {\"type\":\"config\",...} or "
                       "{\"type\":\"resume\",...}, got \"%s\"",
                       type);
            wsconn_close_after(c, CLOSE_PROTOCOL, "no config");
        }
    } else if (!strcmp(type, "keepalive")) {
        /* activity time already refreshed by the server */
        wsconn_ack(c, 1);
    } else if (!strcmp(type, "finalize")) {
        rc = chan_post_finalize(c->chan);
    } else if (!strcmp(type, "close")) {
        wsconn_close_after(c, CLOSE_NORMAL, "");
    } else if (!strcmp(type, "state")) {
        const char *st = json_str(json_get(root, "state"));
        if (st && !strcmp(st, "listening"))
            rc = chan_post_state(c->chan, HARK_STATE_LISTENING);
        else if (st && !strcmp(st, "responding"))
            rc = chan_post_state(c->chan, HARK_STATE_RESPONDING);
        else
            send_error(c, HARK_E_PROTOCOL, "state: must be \"listening\" or \"responding\"");
    } else if (!strcmp(type, "config") || !strcmp(type, "resume")) {
        send_error(c, HARK_E_PROTOCOL, "session already configured; %s is only accepted first",
                   type);
    } else {
        send_error(c, HARK_E_PROTOCOL,
                   "unknown message type \"%s\" (accepted: finalize, keepalive, state, close)",
                   type);
    }
    if (rc)
        overflow(c, rc);
    json_free(doc);
    return 0;
}

static int native_binary(struct wsconn *c, const uint8_t *data, size_t len)
{
    if (c->st == WC_OPEN) {
        send_error(c, HARK_E_PROTOCOL, "audio before config: send {\"type\":\"config\",...} first");
        wsconn_close_after(c, CLOSE_PROTOCOL, "audio before config");
        return 0;
    }
    if (len == 0)
        return 0;
    int rc = wsconn_post_audio(c, data, len);
    if (rc)
        overflow(c, rc);
    return 0;
}

static void native_idle(struct wsconn *c)
{
    send_error(c, HARK_E_TIMEOUT, "no audio or keepalive received within the idle timeout");
    wsconn_close_after(c, CLOSE_IDLE, "idle timeout");
}

static void native_shutdown(struct wsconn *c)
{
    wsconn_close_after(c, CLOSE_GOING_AWAY, "server shutting down");
}

static void native_fatal(struct wsconn *c)
{
    wsconn_close_after(c, CLOSE_BAD_AUDIO, "undecodable audio");
}

static void native_destroy(struct wsconn *c)
{
    if (!c->dstate_owned)
        hark_free(c->dstate);
    c->dstate = NULL;
}

const struct dialect_ops dialect_native = {
    .name = "native",
    .open = native_open,
    .text = native_text,
    .binary = native_binary,
    .render = render,
    .idle = native_idle,
    .shutdown = native_shutdown,
    .fatal = native_fatal,
    .destroy = native_destroy,
};
