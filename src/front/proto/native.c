/*
 * hark's native streaming protocol on /v1/stream (docs/protocol.md):
 *
 *   client: {"type":"config",...}  then binary audio, and text controls
 *           {"type":"finalize"} {"type":"keepalive"} {"type":"close"}
 *           {"type":"state","state":"listening"|"responding"}
 *           or, first, {"type":"resume",...} to take a dropped session over
 *   server: {"type":"ready",...} then transcript / speech_started /
 *           utterance_end / interrupt / error events, and {"type":"closed"}
 *           as the last message before a 1000 close.
 *
 * Audio as the first message starts a session with the server's defaults
 * and the container sniffed (encoding auto), with no config message.
 *
 * Errors that leave the session intact (bad JSON, unknown type) are
 * reported and the session goes on; errors without a usable session (bad
 * config, undecodable audio) close with a 4xxx code.
 *
 * Errors go out as DA_ERROR: with a session they are queued behind its work
 * and rendered like every other event, so they carry the next seq and the
 * speaker_id in order with the results (the workers own the counter);
 * without one (config refused, no capacity) the error is the
 * connection's first and only event: seq 0.
 */
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/mem.h"
#include "front/proto/dialect.h"
#include "session/event_json.h"

/* Close codes (also in docs/protocol.md). */
#define CLOSE_NORMAL 1000
#define CLOSE_GOING_AWAY 1001
#define CLOSE_INTERNAL 1011
#define CLOSE_TRY_LATER 1013
#define CLOSE_PROTOCOL 4400
#define CLOSE_RESUME_FAILED 4404
#define CLOSE_IDLE 4408
#define CLOSE_BAD_AUDIO 4415
#define CLOSE_LIMIT 4429

enum phase { P_OPEN, P_STREAMING, P_DONE };

struct native {
    const struct dialect_ctx *cx;
    enum phase phase;
};

static void render(const void *rstate, const struct hark_event *ev, struct buf *out,
                   unsigned *flags)
{
    (void)rstate;
    event_json_render(ev, out);
    if (ev->type == HARK_EVENT_ERROR &&
        (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED))
        *flags |= MSG_FATAL;
}

static int native_open(const struct dialect_ctx *cx, const struct dialect_req *rq, void **state,
                       struct dialect_out *out, char *err, size_t n)
{
    (void)rq;
    (void)out;
    (void)err;
    (void)n;
    struct native *s = hark_calloc(1, sizeof *s);
    if (!s)
        return HARK_E_NOMEM;
    s->cx = cx;
    *state = s;
    return 0;
}

static void refuse_first(struct native *s, struct dialect_out *out, int code, const char *reason)
{
    s->phase = P_DONE;
    da_close(out, code, 0, reason);
}

/* {"type":"resume","session_id","resume_token","last_seq":K,"audio_bytes":S}
 * as a connection's first message: take the session over, answer
 * {"type":"resumed","session_id","audio_bytes":H,"last_seq":K}; the front
 * end then replays every event after K as first sent and goes on live. */
static void on_resume(struct native *s, const struct json_value *root, struct dialect_out *out)
{
    const char *id = json_str(json_get(root, "session_id"));
    const char *token = json_str(json_get(root, "resume_token"));
    const struct json_value *k = json_get(root, "last_seq"), *b = json_get(root, "audio_bytes");
    double last = json_num(k), bytes = json_num(b);
    /* the range before the integer test: converting a double out of the
     * integer's range is undefined (fuzz_dialect_native: audio_bytes 6e49) */
    if (!id || !token || json_type(k) != JSON_NUMBER || json_type(b) != JSON_NUMBER || last < -1 ||
        last > 9e15 || last != (double)(int64_t)last || bytes < 0 || bytes > 9e15 ||
        bytes != (double)(uint64_t)bytes) {
        da_error(out, HARK_E_PROTOCOL,
                 "resume: needs session_id and resume_token (strings), last_seq (integer >= "
                 "-1) and audio_bytes (integer >= 0)");
        refuse_first(s, out, CLOSE_PROTOCOL, "bad resume");
        return;
    }
    da_resume(out, id, token, (int64_t)last, (uint64_t)bytes);
}

/* The config message: flat keys = session option names. */
static void on_config(struct native *s, const struct json_value *root, struct dialect_out *out)
{
    struct hark_options *o = NULL;
    char err[512];
    int rc = hark_options_copy(&o, s->cx->defaults);
    if (rc) {
        da_error(out, rc, "out of memory");
        refuse_first(s, out, CLOSE_INTERNAL, "internal error");
        return;
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
        if (!rc)
            rc = hark_options_set(o, key, val, err, sizeof err);
        if (rc) {
            da_error(out, rc, "%s", err);
            refuse_first(s, out, CLOSE_PROTOCOL, "bad config");
            hark_options_destroy(o);
            return;
        }
    }
    da_start(out, o, NULL);
}

static int native_text(void *state, const char *msg, size_t len, struct dialect_out *out)
{
    struct native *s = state;
    struct json *doc = NULL;
    char err[256];
    if (s->phase == P_DONE)
        return 0;
    if (json_parse(&doc, msg, len, err, sizeof err) || json_type(json_root(doc)) != JSON_OBJECT) {
        da_error(out, HARK_E_PROTOCOL, "%s", doc ? "message must be a JSON object" : err);
        if (s->phase == P_OPEN)
            refuse_first(s, out, CLOSE_PROTOCOL, "bad message");
        json_free(doc);
        return 0;
    }
    const struct json_value *root = json_root(doc);
    const char *type = json_str(json_get(root, "type"));
    if (!type) {
        da_error(out, HARK_E_PROTOCOL, "message has no \"type\"");
        if (s->phase == P_OPEN)
            refuse_first(s, out, CLOSE_PROTOCOL, "bad message");
    } else if (s->phase == P_OPEN) {
        if (!strcmp(type, "config")) {
            on_config(s, root, out);
        } else if (!strcmp(type, "resume")) {
            on_resume(s, root, out);
        } else {
            da_error(out, HARK_E_PROTOCOL,
                     "the first message must be {\"type\":\"config\",...} or "
                     "{\"type\":\"resume\",...}, got \"%s\"",
                     type);
            refuse_first(s, out, CLOSE_PROTOCOL, "no config");
        }
    } else if (!strcmp(type, "keepalive")) {
        da_simple(out, DA_KEEPALIVE, 0);
    } else if (!strcmp(type, "finalize")) {
        da_simple(out, DA_FINALIZE, 0);
    } else if (!strcmp(type, "close")) {
        da_close(out, CLOSE_NORMAL, 0, "");
    } else if (!strcmp(type, "state")) {
        const char *st = json_str(json_get(root, "state"));
        if (st && !strcmp(st, "listening"))
            da_simple(out, DA_STATE, HARK_STATE_LISTENING);
        else if (st && !strcmp(st, "responding"))
            da_simple(out, DA_STATE, HARK_STATE_RESPONDING);
        else
            da_error(out, HARK_E_PROTOCOL, "state: must be \"listening\" or \"responding\"");
    } else if (!strcmp(type, "config") || !strcmp(type, "resume")) {
        da_error(out, HARK_E_PROTOCOL, "session already configured; %s is only accepted first",
                 type);
    } else {
        da_error(out, HARK_E_PROTOCOL,
                 "unknown message type \"%s\" (accepted: finalize, keepalive, state, close)", type);
    }
    json_free(doc);
    return 0;
}

static int native_binary(void *state, const uint8_t *data, size_t len, struct dialect_out *out)
{
    struct native *s = state;
    if (s->phase == P_OPEN && len) {
        /* Audio with no config (seed 001's browser snippet: MediaRecorder
         * chunks straight away): the server's defaults, the container
         * sniffed from these first bytes. */
        struct hark_options *o = NULL;
        char err[256] = "";
        int rc = hark_options_copy(&o, s->cx->defaults);
        if (!rc)
            rc = hark_options_set(o, "encoding", "auto", err, sizeof err);
        if (rc) {
            hark_options_destroy(o);
            da_error(out, rc, "%s", rc == HARK_E_NOMEM ? "out of memory" : err);
            refuse_first(s, out, CLOSE_INTERNAL, "internal error");
            return 0;
        }
        da_start(out, o, NULL);
        da_audio(out, data, len);
    } else if (s->phase == P_STREAMING && len) {
        da_audio(out, data, len);
    }
    return 0;
}

static void send_ready(struct native *s, const struct dialect_session *ss, struct dialect_out *out)
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
    buf_json_str(&b, ss->id);
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[256];
        hark_options_get(ss->opts, keys[i], v, sizeof v);
        buf_json_key(&b, keys[i]);
        if (!strcmp(keys[i], "engine") && !v[0])
            buf_json_str(&b, s->cx->engine);
        else if (!strcmp(v, "true") || !strcmp(v, "false") ||
                 (v[0] && strspn(v, "0123456789") == strlen(v)))
            buf_puts(&b, v);
        else
            buf_json_str(&b, v);
    }
    if (ss->resume_token) {
        buf_json_key(&b, "resume_token");
        buf_json_str(&b, ss->resume_token);
        buf_json_key(&b, "resume_window");
        buf_printf(&b, "%d", s->cx->resume_window);
    }
    buf_putc(&b, '}');
    if (b.oom)
        out->oom = 1;
    else
        da_send(out, b.data, b.len);
    buf_deinit(&b);
}

static void native_started(void *state, const struct dialect_session *ss, struct dialect_out *out)
{
    struct native *s = state;
    s->phase = P_STREAMING;
    if (!ss->resumed) {
        send_ready(s, ss, out);
        return;
    }
    char msg[200];
    struct buf m;
    buf_init(&m);
    buf_putc(&m, '{');
    buf_json_key(&m, "type");
    buf_json_str(&m, "resumed");
    buf_json_key(&m, "session_id");
    buf_json_str(&m, ss->id);
    buf_json_key(&m, "audio_bytes");
    snprintf(msg, sizeof msg, "%llu", (unsigned long long)ss->audio_bytes);
    buf_puts(&m, msg);
    buf_json_key(&m, "last_seq");
    snprintf(msg, sizeof msg, "%lld", (long long)ss->last_seq);
    buf_puts(&m, msg);
    buf_putc(&m, '}');
    if (m.oom)
        out->oom = 1;
    else
        da_send(out, m.data, m.len);
    buf_deinit(&m);
}

static void native_signal(void *state, enum dialect_sig sig, int err, const char *msg,
                          struct dialect_out *out)
{
    struct native *s = state;
    switch (sig) {
    case DS_REFUSED:
        da_error(out, err, "%s", msg);
        if (err == HARK_E_BUSY) /* admission: every refusal is "busy" */
            refuse_first(s, out, CLOSE_TRY_LATER, "busy");
        else if (err == HARK_E_LIMIT) /* a per-key/address limit (detached sessions hold it) */
            refuse_first(s, out, CLOSE_TRY_LATER, "limit");
        else if (err == HARK_E_RESUME_FAILED)
            refuse_first(s, out, CLOSE_RESUME_FAILED, "resume failed");
        else
            refuse_first(s, out, CLOSE_PROTOCOL, "bad config");
        break;
    case DS_OVERFLOW:
        da_error(out, HARK_E_LIMIT,
                 "session buffer full (%s); the client sends faster than allowed", msg);
        da_close(out, CLOSE_LIMIT, 0, "buffer overflow");
        break;
    case DS_FIRST_TIMEOUT:
        da_error(out, HARK_E_TIMEOUT, "no config %s", msg);
        da_close(out, CLOSE_IDLE, 0, "config timeout");
        break;
    case DS_IDLE:
        da_error(out, HARK_E_TIMEOUT, "no audio or keepalive received within the idle timeout");
        da_close(out, CLOSE_IDLE, 0, "idle timeout");
        break;
    case DS_LENGTH:
        da_error(out, HARK_E_LIMIT, "%s", msg);
        da_close(out, CLOSE_LIMIT, 0, "session length limit");
        break;
    case DS_FATAL:
        da_close(out, CLOSE_BAD_AUDIO, 0, "undecodable audio");
        break;
    case DS_SHUTDOWN:
        da_close(out, CLOSE_GOING_AWAY, 0, "server shutting down");
        break;
    }
}

static void native_destroy(void *state)
{
    hark_free(state);
}

const struct dialect_ops dialect_native = {
    .name = "native",
    .resumable = 1,
    .open = native_open,
    .text = native_text,
    .binary = native_binary,
    .signal = native_signal,
    .started = native_started,
    .render = render,
    .destroy = native_destroy,
};
