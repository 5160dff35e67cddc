/*
 * Soniox-compatible real-time transcription on /transcribe-websocket (and
 * seed 003's /transcribe), docs/soniox.md, so Soniox's SDKs and clients
 * written against its WebSocket API work against hark by their URL alone.
 *
 *   first text message: the configuration {api_key, model, audio_format,
 *       sample_rate, num_channels, language_hints, context, ...}: the key is
 *       checked like a header's, then the session starts
 *   binary audio; text {"type":"finalize"}, {"type":"keepalive"}; an empty
 *       message (text, or binary) ends the stream
 *   responses {"tokens":[{text,start_ms,end_ms,confidence,is_final}],
 *       "final_audio_proc_ms","total_audio_proc_ms"}: a final's tokens are
 *       sent once, a partial's replace the previous non-final ones; a
 *       finalize ends in the token "<fin>", an endpoint in "<end>" (with
 *       enable_endpoint_detection); the last response has "finished":true,
 *       then close 1000
 *   errors {"error_code":HTTP-like,"error_message"} and the close at once
 *
 * A token is a word with its leading space (the client concatenates); the
 * first word of the session has none.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "front/proto/dialect.h"

/* Close codes: 1000 after `finished`; errors close at once after their
 * message, with a code that says whose fault it was. */
#define CLOSE_NORMAL 1000
#define CLOSE_GOING_AWAY 1001
#define CLOSE_CLIENT 1008
#define CLOSE_SERVER 1011
#define CLOSE_TRY_LATER 1013

enum phase { P_CONFIG, P_STREAMING, P_DONE };

struct sonc {
    const struct dialect_ctx *cx;
    enum phase phase;
};

/* Render state: immutable once the session has it. */
struct sonr {
    int end_tokens; /* enable_endpoint_detection: "<end>" after an endpoint */
};

static int error_code(int err)
{
    switch (err) {
    case HARK_E_AUTH:
        return 401;
    case HARK_E_LIMIT:
        return 429;
    case HARK_E_TIMEOUT:
        return 408;
    case HARK_E_BUSY:
        return 503;
    case HARK_E_BAD_OPTION:
    case HARK_E_PROTOCOL:
    case HARK_E_UNSUPPORTED:
    case HARK_E_BAD_AUDIO:
        return 400;
    default:
        return 500;
    }
}

static void error_json(struct buf *b, int code, const char *msg)
{
    buf_putc(b, '{');
    buf_json_key(b, "error_code");
    buf_printf(b, "%d", code);
    buf_json_key(b, "error_message");
    buf_json_str(b, msg ? msg : "");
    buf_putc(b, '}');
}

static long long ms(double seconds)
{
    return seconds > 0 ? (long long)llround(seconds * 1000) : 0;
}

static void token(struct buf *b, int *n, const char *space, const char *text, double start,
                  double end, double confidence, int is_final)
{
    if ((*n)++)
        buf_putc(b, ',');
    buf_putc(b, '{');
    buf_json_key(b, "text");
    size_t sl = strlen(space);
    if (sl) {
        struct buf t;
        buf_init(&t);
        buf_puts(&t, space);
        buf_puts(&t, text);
        buf_json_strn(b, t.data ? t.data : "", t.len);
        buf_deinit(&t);
    } else {
        buf_json_str(b, text);
    }
    if (start >= 0) {
        buf_json_key(b, "start_ms");
        buf_printf(b, "%lld", ms(start));
        buf_json_key(b, "end_ms");
        buf_printf(b, "%lld", ms(end));
    }
    buf_json_key(b, "confidence");
    buf_json_num(b, confidence);
    buf_json_key(b, "is_final");
    buf_puts(b, is_final ? "true" : "false");
    buf_putc(b, '}');
}

static void render_transcript(const struct sonr *r, const struct hark_event *ev, struct buf *b)
{
    int n = 0, fin = ev->is_final && ev->reason == HARK_REASON_FINALIZE;
    int end = ev->is_final && ev->speech_final && r && r->end_tokens;
    if (!ev->text[0] && !fin && !end)
        return; /* nothing new: an empty final, or a partial of nothing yet */
    buf_puts(b, "{\"tokens\":[");
    /* Words after the session's first carry their leading space. */
    const char *lead = ev->segment > 0 ? " " : "";
    if (ev->n_words) {
        for (size_t i = 0; i < ev->n_words; i++)
            token(b, &n, i ? " " : lead, ev->words[i].word, ev->words[i].start, ev->words[i].end,
                  ev->words[i].confidence, ev->is_final);
    } else if (ev->text[0]) {
        token(b, &n, lead, ev->text, ev->start, ev->end, ev->confidence, ev->is_final);
    }
    if (end)
        token(b, &n, "", "<end>", -1, -1, 1, 1);
    if (fin)
        token(b, &n, "", "<fin>", -1, -1, 1, 1);
    buf_puts(b, "]");
    /* All audio before a final's committed_ms, or a partial's segment
     * start, is in finals. */
    long long final_ms = ev->is_final ? ev->committed_ms : ms(ev->start);
    long long total_ms = ms(ev->end) > final_ms ? ms(ev->end) : final_ms;
    buf_json_key(b, "final_audio_proc_ms");
    buf_printf(b, "%lld", final_ms);
    buf_json_key(b, "total_audio_proc_ms");
    buf_printf(b, "%lld", total_ms);
    buf_putc(b, '}');
}

static void render(const void *rstate, const struct hark_event *ev, struct buf *out,
                   unsigned *flags)
{
    const struct sonr *r = rstate;
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT:
        render_transcript(r, ev, out);
        break;
    case HARK_EVENT_CLOSED:
        buf_puts(out, "{\"tokens\":[],\"final_audio_proc_ms\":");
        buf_printf(out, "%lld", ms(ev->audio_seconds));
        buf_puts(out, ",\"total_audio_proc_ms\":");
        buf_printf(out, "%lld", ms(ev->audio_seconds));
        buf_puts(out, ",\"finished\":true}");
        break;
    case HARK_EVENT_ERROR:
        error_json(out, error_code(ev->code), ev->message);
        /* Soniox closes after every error; the session cannot go on. */
        *flags |= MSG_FATAL;
        break;
    default:
        break;
    }
}

static int son_open(const struct dialect_ctx *cx, const struct dialect_req *rq, void **state,
                    struct dialect_out *out, char *err, size_t n)
{
    (void)rq;
    (void)out;
    struct sonc *s = hark_calloc(1, sizeof *s);
    if (!s)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    s->cx = cx;
    *state = s;
    return 0;
}

/* An error the client caused or met: the message, then the close at once. */
static void fail(struct sonc *s, struct dialect_out *out, int err, const char *msg)
{
    s->phase = P_DONE;
    da_error_now(out, err, "%s", msg);
    da_close(out,
             err == HARK_E_BUSY       ? CLOSE_TRY_LATER
             : error_code(err) >= 500 ? CLOSE_SERVER
                                      : CLOSE_CLIENT,
             1, "");
}

/* Soniox's audio formats hark decodes: raw ones need sample_rate (and
 * num_channels, default 1); containers are sniffed. */
static const struct {
    const char *soniox, *hark;
} formats[] = {
    {"auto", "auto"},
    {"wav", "auto"},
    {"ogg", "auto"},
    {"webm", "auto"},
    {"pcm_s16le", "pcm_s16le"},
    {"pcm_f32le", "pcm_f32le"},
    {"mulaw", "mulaw"},
    {"alaw", "alaw"},
};

/* context.terms (or a context string's absence of them) -> vocabulary. */
static int context_terms(const struct json_value *ctx, char *vocab, size_t size)
{
    const struct json_value *terms = json_get(ctx, "terms");
    size_t used = 0;
    for (size_t i = 0; i < json_len(terms); i++) {
        const char *t = json_str(json_at(terms, i));
        if (!t || !t[0])
            continue;
        size_t len = strlen(t);
        if (used + len + 2 > size)
            return -1;
        if (used)
            vocab[used++] = ',';
        for (size_t k = 0; k < len; k++)
            vocab[used++] = t[k] == ',' ? ' ' : t[k];
        vocab[used] = 0;
    }
    return 0;
}

static int build(struct sonc *s, const struct json_value *root, struct hark_options **out,
                 struct sonr *r, char *err, size_t n)
{
    struct hark_options *o = NULL;
    int rc = hark_options_copy(&o, s->cx->defaults);
    if (rc)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    hark_options_set(o, "words", "true", NULL, 0); /* tokens carry times */
    const struct json_value *v;
    const char *fmt = json_str(json_get(root, "audio_format"));
    char text[64];
    if ((v = json_get(root, "audio_format")) && !fmt) {
        rc = err_set(err, n, HARK_E_BAD_OPTION, "audio_format: must be a string");
        goto out;
    }
    size_t f = 0, nf = sizeof formats / sizeof formats[0];
    while (fmt && f < nf && strcmp(formats[f].soniox, fmt))
        f++;
    if (fmt && f == nf) {
        rc = err_set(err, n, HARK_E_UNSUPPORTED,
                     "audio_format: '%.60s' is not supported (supported: auto, wav, ogg, webm, "
                     "pcm_s16le, pcm_f32le, mulaw, alaw)",
                     fmt);
        goto out;
    }
    const char *enc = fmt ? formats[f].hark : "auto";
    if ((rc = dialect_set_option(o, "encoding", enc, "audio_format", err, n)))
        goto out;
    if (strcmp(enc, "auto")) {
        v = json_get(root, "sample_rate");
        if (json_type(v) != JSON_NUMBER) {
            rc = err_set(err, n, HARK_E_BAD_OPTION,
                         "sample_rate: required (a number) with audio_format '%s'", fmt);
            goto out;
        }
        json_to_text(v, text, sizeof text);
        if ((rc = dialect_set_option(o, "sample_rate", text, "sample_rate", err, n)))
            goto out;
        if ((v = json_get(root, "num_channels"))) {
            if (json_type(v) != JSON_NUMBER) {
                rc = err_set(err, n, HARK_E_BAD_OPTION, "num_channels: must be a number");
                goto out;
            }
            json_to_text(v, text, sizeof text);
            if ((rc = dialect_set_option(o, "channels", text, "num_channels", err, n)))
                goto out;
        }
    }
    v = json_get(root, "enable_non_final_tokens");
    if (json_type(v) == JSON_BOOL && !json_bool(v))
        hark_options_set(o, "interim_results", "false", NULL, 0);
    r->end_tokens = json_bool(json_get(root, "enable_endpoint_detection"));
    char vocab[4096] = "";
    if (context_terms(json_get(root, "context"), vocab, sizeof vocab)) {
        rc = err_set(err, n, HARK_E_BAD_OPTION, "context.terms: more than %zu bytes",
                     sizeof vocab - 1);
        goto out;
    }
    if (vocab[0] && (rc = dialect_set_option(o, "vocabulary", vocab, "context.terms", err, n)))
        goto out;
    /* model names Soniox's, language_hints only hints: the session uses
     * the server's engine and language (docs/soniox.md) */
out:
    if (rc) {
        hark_options_destroy(o);
        return rc;
    }
    *out = o;
    return 0;
}

static void on_config(struct sonc *s, const char *msg, size_t len, struct dialect_out *out)
{
    struct json *doc = NULL;
    char err[512];
    if (json_parse(&doc, msg, len, err, sizeof err) || json_type(json_root(doc)) != JSON_OBJECT) {
        fail(s, out, HARK_E_PROTOCOL,
             doc ? "the first message must be the configuration (a JSON object)" : err);
        json_free(doc);
        return;
    }
    const struct json_value *root = json_root(doc);
    const struct json_value *key = json_get(root, "api_key");
    if (key && !json_str(key)) {
        fail(s, out, HARK_E_AUTH, "api_key: must be a string");
        json_free(doc);
        return;
    }
    struct hark_options *o = NULL;
    struct sonr *r = hark_calloc(1, sizeof *r);
    int rc = r ? build(s, root, &o, r, err, sizeof err)
               : err_set(err, sizeof err, HARK_E_NOMEM, "out of memory");
    if (rc) {
        hark_free(r);
        fail(s, out, rc, err);
    } else {
        da_auth(out, key ? json_str(key) : "");
        da_start(out, o, r);
    }
    json_free(doc);
}

static int son_text(void *state, const char *msg, size_t len, struct dialect_out *out)
{
    struct sonc *s = state;
    if (s->phase == P_CONFIG) {
        on_config(s, msg, len, out);
        return 0;
    }
    if (s->phase != P_STREAMING)
        return 0;
    if (!len) { /* end of stream: the last finals, `finished`, close */
        s->phase = P_DONE;
        da_close(out, CLOSE_NORMAL, 0, "");
        return 0;
    }
    struct json *doc = NULL;
    if (json_parse(&doc, msg, len, NULL, 0))
        return 0; /* not JSON: ignored */
    const char *type = json_str(json_get(json_root(doc), "type"));
    if (type && !strcmp(type, "finalize"))
        da_simple(out, DA_FINALIZE, 0);
    else if (type && !strcmp(type, "keepalive"))
        da_simple(out, DA_KEEPALIVE, 0);
    /* other messages (e.g. {"keep_alive":true}) are accepted and ignored */
    json_free(doc);
    return 0;
}

static int son_binary(void *state, const uint8_t *data, size_t len, struct dialect_out *out)
{
    struct sonc *s = state;
    if (s->phase == P_CONFIG) {
        fail(s, out, HARK_E_PROTOCOL, "the first message must be the configuration (JSON text)");
    } else if (s->phase == P_STREAMING && !len) {
        s->phase = P_DONE;
        da_close(out, CLOSE_NORMAL, 0, "");
    } else if (s->phase == P_STREAMING) {
        da_audio(out, data, len);
    }
    return 0;
}

static void son_started(void *state, const struct dialect_session *ss, struct dialect_out *out)
{
    struct sonc *s = state;
    (void)ss;
    (void)out;
    s->phase = P_STREAMING;
}

static void son_signal(void *state, enum dialect_sig sig, int err, const char *msg,
                       struct dialect_out *out)
{
    struct sonc *s = state;
    switch (sig) {
    case DS_REFUSED:
        fail(s, out, err, msg);
        break;
    case DS_OVERFLOW:
        fail(s, out, HARK_E_LIMIT, "audio sent faster than it can be processed");
        break;
    case DS_FIRST_TIMEOUT:
        fail(s, out, HARK_E_TIMEOUT, "no configuration received in time");
        break;
    case DS_IDLE:
        fail(s, out, HARK_E_TIMEOUT, "no audio or keepalive received within the idle timeout");
        break;
    case DS_LENGTH:
        fail(s, out, HARK_E_LIMIT, msg);
        break;
    case DS_FATAL: /* the error event went out already */
        s->phase = P_DONE;
        da_close(out, CLOSE_CLIENT, 1, "");
        break;
    case DS_SHUTDOWN:
        /* the finals so far and `finished`, rather than Soniox's early
         * 503: the client loses nothing it sent */
        s->phase = P_DONE;
        da_close(out, CLOSE_GOING_AWAY, 0, "server shutting down");
        break;
    }
}

static void son_refuse(unsigned status, int err, const char *msg, struct buf *body,
                       struct dialect_headers *h)
{
    (void)err;
    (void)h;
    error_json(body, (int)status, msg);
}

static void son_destroy(void *state)
{
    hark_free(state);
}

const struct dialect_ops dialect_soniox = {
    .name = "soniox",
    .key_in_message = 1,
    .open = son_open,
    .text = son_text,
    .binary = son_binary,
    .signal = son_signal,
    .started = son_started,
    .render = render,
    .refuse = son_refuse,
    .destroy = son_destroy,
};
