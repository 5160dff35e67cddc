/*
 * OpenAI Realtime transcription sessions mapped onto hark's session:
 *
 *   an item          one segment: item_<session>_<segment>
 *   server_vad       hark's VAD and endpointing (silence_duration_ms ->
 *                    endpointing_ms): speech_started when the VAD hears
 *                    speech; at the segment's final: speech_stopped,
 *                    committed, one delta and completed
 *   turn_detection   null: no endpointing and no VAD events; the client's
 *                    commit finalizes the segment (committed, delta,
 *                    completed); an empty one is OpenAI's
 *                    input_audio_buffer_commit_empty error
 *   deltas           hark's interim results may still change, OpenAI's
 *                    deltas only append: an item gets one delta, its whole
 *                    text, just before its completed
 *   formats          pcm16 (24 kHz, resampled), g711_ulaw, g711_alaw (8 kHz)
 *
 * Base64 is decoded with libcrypto's EVP_DecodeBlock (linked already for
 * the batch endpoints' SHA-256) rather than by hand.
 */
#include "front/proto/oairt.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "front/proto/dialect.h"
#include "host/chan.h"

void oairt_config_init(struct oairt_config *c)
{
    memset(c, 0, sizeof *c);
    c->format = OAIRT_PCM16;
    c->vad = 1;
    c->silence_ms = 500;
    c->prefix_ms = 300;
    c->threshold = 0.5;
    snprintf(c->model, sizeof c->model, "gpt-4o-transcribe");
}

int oairt_options(const struct oairt_config *c, struct hark_options *o, char *err, size_t n)
{
    static const char *const enc[] = {"pcm_s16le", "mulaw", "alaw"};
    char ms[16];
    int rc;
    snprintf(ms, sizeof ms, "%d", c->silence_ms);
    if ((rc = dialect_set_option(o, "encoding", enc[c->format], "input_audio_format", err, n)) ||
        (rc = dialect_set_option(o, "sample_rate", c->format == OAIRT_PCM16 ? "24000" : "8000",
                                 "input_audio_format", err, n)) ||
        (rc = dialect_set_option(o, "channels", "1", "input_audio_format", err, n)) ||
        (rc = dialect_set_option(o, "interim_results", "false", "interim_results", err, n)) ||
        (rc = dialect_set_option(o, "words", "false", "words", err, n)) ||
        (rc = dialect_set_option(o, "utterance_end_ms", "0", "utterance_end_ms", err, n)) ||
        (rc = dialect_set_option(o, "vad_events", c->vad ? "true" : "false", "turn_detection", err,
                                 n)) ||
        (rc = dialect_set_option(o, "endpointing_ms", c->vad ? ms : "false",
                                 "turn_detection.silence_duration_ms", err, n)))
        return rc;
    if (c->language[0] && (rc = dialect_set_option(o, "language", c->language,
                                                   "input_audio_transcription.language", err, n)))
        return rc;
    return 0;
}

static void invalid(struct oairt_in *in, const char *code, const char *param, const char *fmt, ...)
    HARK_PRINTF(4, 5);

static void invalid(struct oairt_in *in, const char *code, const char *param, const char *fmt, ...)
{
    in->type = OAIRT_INVALID;
    snprintf(in->code, sizeof in->code, "%s", code);
    snprintf(in->param, sizeof in->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(in->why, sizeof in->why, fmt, ap);
    va_end(ap);
}

static int copy_str(const struct json_value *v, char *out, size_t size)
{
    const char *s = json_str(v);
    if (!s || json_str_len(v) >= size || memchr(s, 0, json_str_len(v)))
        return -1;
    memcpy(out, s, json_str_len(v) + 1);
    return 0;
}

/* turn_detection: null, or {type: server_vad, silence_duration_ms, ...}. */
static int turn_detection(const struct json_value *td, struct oairt_config *c, struct oairt_in *in,
                          const char *param)
{
    if (!td)
        return 0;
    if (json_type(td) == JSON_NULL) {
        c->vad = 0;
        return 0;
    }
    const char *type = json_str(json_get(td, "type"));
    if (json_type(td) != JSON_OBJECT || (type && strcmp(type, "server_vad"))) {
        invalid(in, "invalid_value", param,
                "%s: hark supports server_vad or null (semantic_vad is not available)", param);
        return -1;
    }
    c->vad = 1;
    const struct json_value *v;
    double d;
    if ((v = json_get(td, "silence_duration_ms"))) {
        d = json_num(v);
        if (json_type(v) != JSON_NUMBER || !(d >= 10 && d <= 10000) || d != floor(d)) {
            invalid(in, "invalid_value", param,
                    "%s.silence_duration_ms: a whole number of ms from 10 to 10000", param);
            return -1;
        }
        c->silence_ms = (int)d;
    }
    if ((v = json_get(td, "prefix_padding_ms"))) {
        d = json_num(v);
        if (json_type(v) != JSON_NUMBER || !(d >= 0 && d <= 10000)) {
            invalid(in, "invalid_value", param, "%s.prefix_padding_ms: a number of ms", param);
            return -1;
        }
        c->prefix_ms = (int)d;
    }
    if ((v = json_get(td, "threshold"))) {
        d = json_num(v);
        if (json_type(v) != JSON_NUMBER || !(d >= 0 && d <= 1)) {
            invalid(in, "invalid_value", param, "%s.threshold: a number from 0 to 1", param);
            return -1;
        }
        c->threshold = d;
    }
    return 0;
}

static int transcription(const struct json_value *t, struct oairt_config *c, struct oairt_in *in,
                         const char *param)
{
    if (!t || json_type(t) == JSON_NULL)
        return 0;
    const struct json_value *v;
    if (json_type(t) != JSON_OBJECT ||
        ((v = json_get(t, "model")) && copy_str(v, c->model, sizeof c->model)) ||
        ((v = json_get(t, "language")) && json_type(v) != JSON_NULL &&
         copy_str(v, c->language, sizeof c->language)) ||
        ((v = json_get(t, "prompt")) && json_type(v) != JSON_NULL &&
         copy_str(v, c->prompt, sizeof c->prompt))) {
        invalid(in, "invalid_value", param, "%s: model, language and prompt must be short strings",
                param);
        return -1;
    }
    return 0;
}

static int format_name(const char *s, enum oairt_format *f)
{
    if (!strcmp(s, "pcm16") || !strcmp(s, "audio/pcm"))
        *f = OAIRT_PCM16;
    else if (!strcmp(s, "g711_ulaw") || !strcmp(s, "audio/pcmu"))
        *f = OAIRT_ULAW;
    else if (!strcmp(s, "g711_alaw") || !strcmp(s, "audio/pcma"))
        *f = OAIRT_ALAW;
    else
        return -1;
    return 0;
}

static void parse_update(const struct json_value *root, int beta, struct oairt_in *in)
{
    const struct json_value *s = json_get(root, "session");
    struct oairt_config *c = &in->cfg;
    in->type = OAIRT_UPDATE;
    in->beta = beta;
    if (json_type(s) != JSON_OBJECT) {
        invalid(in, "missing_required_parameter", "session", "session: an object is required");
        return;
    }
    const char *type = json_str(json_get(s, "type"));
    if (!beta && type && strcmp(type, "transcription")) {
        invalid(in, "invalid_value", "session.type",
                "session.type: hark serves transcription sessions only ('transcription', not "
                "'%.40s')",
                type);
        return;
    }
    /* the beta shape's fields (also accepted in session.update) */
    const struct json_value *v = json_get(s, "input_audio_format");
    if (v && (!json_str(v) || format_name(json_str(v), &c->format))) {
        invalid(in, "invalid_value", "session.input_audio_format",
                "session.input_audio_format: one of pcm16, g711_ulaw, g711_alaw");
        return;
    }
    if (transcription(json_get(s, "input_audio_transcription"), c, in,
                      "session.input_audio_transcription") ||
        turn_detection(json_get(s, "turn_detection"), c, in, "session.turn_detection"))
        return;
    /* the GA shape: session.audio.input.{format,transcription,turn_detection} */
    const struct json_value *ai = json_get(json_get(s, "audio"), "input");
    if (!ai)
        return;
    const struct json_value *f = json_get(ai, "format");
    if (f) {
        const char *ft = json_str(json_get(f, "type"));
        const struct json_value *rate = json_get(f, "rate");
        if (json_type(f) != JSON_OBJECT || (ft && format_name(ft, &c->format)) ||
            (rate && (json_num(rate) != 24000 || (ft && strcmp(ft, "audio/pcm"))))) {
            invalid(in, "invalid_value", "session.audio.input.format",
                    "session.audio.input.format: {type: audio/pcm, rate: 24000}, audio/pcmu or "
                    "audio/pcma");
            return;
        }
    }
    if (transcription(json_get(ai, "transcription"), c, in, "session.audio.input.transcription") ||
        turn_detection(json_get(ai, "turn_detection"), c, in, "session.audio.input.turn_detection"))
        return;
}

static int b64_decode(const char *s, size_t len, struct buf *out)
{
    if (len % 4)
        return -1;
    if (!len)
        return 0;
    if (len > (size_t)1 << 30 || buf_reserve(out, len / 4 * 3 + 1))
        return -1;
    int n =
        EVP_DecodeBlock((unsigned char *)out->data + out->len, (const unsigned char *)s, (int)len);
    if (n < 0)
        return -1;
    /* EVP_DecodeBlock counts the padding as zero bytes */
    size_t pad = (s[len - 1] == '=') + (s[len - 2] == '=');
    out->len += (size_t)n - pad;
    return 0;
}

void oairt_parse(const char *msg, size_t len, const struct oairt_config *cur, struct oairt_in *in,
                 struct buf *audio)
{
    memset(in, 0, sizeof *in);
    in->cfg = *cur;
    buf_reset(audio);
    struct json *doc = NULL;
    if (json_parse(&doc, msg, len, NULL, 0)) {
        invalid(in, "invalid_json", NULL, "The server could not parse the event: not valid JSON");
        return;
    }
    const struct json_value *root = json_root(doc);
    const char *type = json_str(json_get(root, "type"));
    const struct json_value *eid = json_get(root, "event_id");
    if (eid)
        copy_str(eid, in->event_id, sizeof in->event_id);
    if (json_type(root) != JSON_OBJECT || !type) {
        invalid(in, "missing_required_parameter", "type",
                "Missing required parameter: 'type' (an event is an object with a type)");
    } else if (!strcmp(type, "session.update")) {
        parse_update(root, 0, in);
    } else if (!strcmp(type, "transcription_session.update")) {
        parse_update(root, 1, in);
    } else if (!strcmp(type, "input_audio_buffer.append")) {
        const struct json_value *a = json_get(root, "audio");
        in->type = OAIRT_APPEND;
        if (!json_str(a))
            invalid(in, "missing_required_parameter", "audio",
                    "Missing required parameter: 'audio' (base64 audio)");
        else if (b64_decode(json_str(a), json_str_len(a), audio))
            invalid(in, "invalid_value", "audio", "Invalid 'audio': not valid base64");
    } else if (!strcmp(type, "input_audio_buffer.commit")) {
        in->type = OAIRT_COMMIT;
    } else if (!strcmp(type, "input_audio_buffer.clear")) {
        in->type = OAIRT_CLEAR;
    } else if (!strncmp(type, "response.", 9) || !strncmp(type, "conversation.", 13) ||
               !strncmp(type, "output_audio_buffer.", 20)) {
        invalid(in, "unsupported_event", "type",
                "'%.60s' is not available: hark serves transcription sessions only", type);
    } else {
        invalid(in, "invalid_value", "type",
                "Invalid value: '%.60s'. Supported values are: 'session.update', "
                "'transcription_session.update', 'input_audio_buffer.append', "
                "'input_audio_buffer.commit' and 'input_audio_buffer.clear'.",
                type);
    }
    json_free(doc);
}

static const char *format_beta(enum oairt_format f)
{
    return f == OAIRT_PCM16 ? "pcm16" : f == OAIRT_ULAW ? "g711_ulaw" : "g711_alaw";
}

static void render_transcription(struct buf *b, const struct oairt_config *c)
{
    buf_putc(b, '{');
    buf_json_key(b, "model");
    buf_json_str(b, c->model);
    buf_json_key(b, "language");
    buf_json_str(b, c->language);
    buf_json_key(b, "prompt");
    buf_json_str(b, c->prompt);
    buf_putc(b, '}');
}

static void render_turn_detection(struct buf *b, const struct oairt_config *c)
{
    if (!c->vad) {
        buf_puts(b, "null");
        return;
    }
    buf_puts(b, "{\"type\":\"server_vad\",\"threshold\":");
    buf_json_num(b, c->threshold);
    buf_printf(b, ",\"prefix_padding_ms\":%d,\"silence_duration_ms\":%d}", c->prefix_ms,
               c->silence_ms);
}

void oairt_render_session(struct buf *b, const char *type, const char *event_id,
                          const char *session_id, const struct oairt_config *c, int beta)
{
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, type);
    buf_json_key(b, "event_id");
    buf_json_str(b, event_id);
    buf_json_key(b, "session");
    buf_putc(b, '{');
    buf_json_key(b, "id");
    buf_json_str(b, session_id);
    buf_json_key(b, "object");
    buf_json_str(b, "realtime.transcription_session");
    if (beta) {
        buf_json_key(b, "input_audio_format");
        buf_json_str(b, format_beta(c->format));
        buf_json_key(b, "input_audio_transcription");
        render_transcription(b, c);
        buf_json_key(b, "turn_detection");
        render_turn_detection(b, c);
        buf_puts(b, ",\"input_audio_noise_reduction\":null,\"modalities\":[\"text\"],"
                    "\"include\":[]");
    } else {
        buf_puts(b, ",\"type\":\"transcription\",\"audio\":{\"input\":{\"format\":");
        if (c->format == OAIRT_PCM16)
            buf_puts(b, "{\"type\":\"audio/pcm\",\"rate\":24000}");
        else
            buf_printf(b, "{\"type\":\"%s\"}",
                       c->format == OAIRT_ULAW ? "audio/pcmu" : "audio/pcma");
        buf_json_key(b, "transcription");
        render_transcription(b, c);
        buf_json_key(b, "turn_detection");
        render_turn_detection(b, c);
        buf_puts(b, ",\"noise_reduction\":null}},\"include\":[]");
    }
    buf_puts(b, "}}");
}

void oairt_render_error(struct buf *b, const char *event_id, const char *type, const char *code,
                        const char *message, const char *param, const char *client_event_id)
{
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, "error");
    buf_json_key(b, "event_id");
    buf_json_str(b, event_id);
    buf_json_key(b, "error");
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, type);
    buf_json_key(b, "code");
    if (code && code[0])
        buf_json_str(b, code);
    else
        buf_puts(b, "null");
    buf_json_key(b, "message");
    buf_json_str(b, message);
    buf_json_key(b, "param");
    if (param && param[0])
        buf_json_str(b, param);
    else
        buf_puts(b, "null");
    buf_json_key(b, "event_id");
    if (client_event_id && client_event_id[0])
        buf_json_str(b, client_event_id);
    else
        buf_puts(b, "null");
    buf_puts(b, "}}");
}

void oairt_render_cleared(struct buf *b, const char *event_id)
{
    buf_puts(b, "{\"type\":\"input_audio_buffer.cleared\",\"event_id\":");
    buf_json_str(b, event_id);
    buf_putc(b, '}');
}

/* Server event ids of session events: unique per session and event. */
static void event_head(struct buf *b, const char *type, const struct oairt_render *r,
                       const struct hark_event *ev, int k)
{
    buf_puts(b, "{\"type\":");
    buf_json_str(b, type);
    buf_printf(b, ",\"event_id\":\"event_%s_%llu_%d\"", r->session_id + 5,
               (unsigned long long)ev->seq, k);
}

static void item(struct buf *b, const char *key, const struct oairt_render *r, int64_t segment)
{
    buf_json_key(b, key);
    if (segment < 0)
        buf_puts(b, "null");
    else
        buf_printf(b, "\"item_%s_%lld\"", r->session_id + 5, (long long)segment);
}

static long ms_of(double s)
{
    return s > 0 ? (long)llround(s * 1000) : 0;
}

void oairt_render_event(const struct oairt_render *r, const struct hark_event *ev, struct buf *out,
                        unsigned *flags)
{
    switch (ev->type) {
    case HARK_EVENT_SPEECH_STARTED:
        if (!r->vad)
            break;
        event_head(out, "input_audio_buffer.speech_started", r, ev, 0);
        buf_printf(out, ",\"audio_start_ms\":%ld", ms_of(ev->start));
        item(out, "item_id", r, ev->segment);
        buf_putc(out, '}');
        break;
    case HARK_EVENT_TRANSCRIPT: {
        if (!ev->is_final)
            break;
        int commit = ev->reason == HARK_REASON_FINALIZE;
        if (!ev->text[0] && !ev->voice_activity) {
            if (commit) { /* OpenAI refuses to commit an empty buffer */
                buf_puts(out, "{\"type\":\"error\",\"event_id\":");
                buf_printf(out, "\"event_%s_%llu_0\"", r->session_id + 5,
                           (unsigned long long)ev->seq);
                buf_puts(out, ",\"error\":{\"type\":\"invalid_request_error\",\"code\":"
                              "\"input_audio_buffer_commit_empty\",\"message\":\"Error "
                              "committing input audio buffer: no speech in it.\",\"param\":null,"
                              "\"event_id\":null}}");
            }
            break; /* silence: no item */
        }
        int k = 0;
        if (r->vad && !commit) {
            event_head(out, "input_audio_buffer.speech_stopped", r, ev, k++);
            buf_printf(out, ",\"audio_end_ms\":%ld", ms_of(ev->end));
            item(out, "item_id", r, ev->segment);
            buf_putc(out, '}');
            buf_putc(out, 0);
        }
        event_head(out, "input_audio_buffer.committed", r, ev, k++);
        item(out, "previous_item_id", r, ev->segment - 1);
        item(out, "item_id", r, ev->segment);
        buf_putc(out, '}');
        buf_putc(out, 0);
        if (ev->text[0]) {
            event_head(out, "conversation.item.input_audio_transcription.delta", r, ev, k++);
            item(out, "item_id", r, ev->segment);
            buf_puts(out, ",\"content_index\":0,\"delta\":");
            buf_json_str(out, ev->text);
            buf_putc(out, '}');
            buf_putc(out, 0);
        }
        event_head(out, "conversation.item.input_audio_transcription.completed", r, ev, k++);
        item(out, "item_id", r, ev->segment);
        buf_puts(out, ",\"content_index\":0,\"transcript\":");
        buf_json_str(out, ev->text);
        buf_puts(out, ",\"usage\":{\"type\":\"duration\",\"seconds\":");
        buf_json_num(out, ev->end > ev->start ? ev->end - ev->start : 0);
        buf_puts(out, "}}");
        buf_putc(out, 0);
        *flags |= MSG_MULTI;
        break;
    }
    case HARK_EVENT_ERROR: {
        int fatal = ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED;
        event_head(out, "error", r, ev, 0);
        buf_puts(out, ",\"error\":{\"type\":");
        buf_json_str(out, fatal || ev->code == HARK_E_PROTOCOL || ev->code == HARK_E_BAD_OPTION
                              ? "invalid_request_error"
                              : "server_error");
        buf_json_key(out, "code");
        buf_json_str(out, hark_err_code(ev->code));
        buf_json_key(out, "message");
        buf_json_str(out, ev->message ? ev->message : hark_strerror(ev->code));
        buf_puts(out, ",\"param\":null,\"event_id\":null}}");
        if (fatal)
            *flags |= MSG_FATAL;
        break;
    }
    case HARK_EVENT_UTTERANCE_END:
    case HARK_EVENT_INTERRUPT:
    case HARK_EVENT_CLOSED:
    case HARK_EVENT_PROVIDER_FAILOVER: /* no Realtime message for it */
    case HARK_EVENT_AUDIO_GAP:
        break;
    }
}

/* ------------------------------------------------------------ the dialect */

/* Connection state (I/O thread). The session starts at the first audio
 * (or commit): the client sets the format with session.update first. */
struct oairtc {
    const struct hark_options *defaults; /* the server's (outlive connections) */
    struct oairt_config cfg;
    int beta;    /* the client asked for the beta shape (OpenAI-Beta: realtime=v1) */
    int started; /* DA_START was asked for */
    int ending;
    unsigned events; /* server events sent from here (event ids) */
    char session_id[48];
    struct buf audio; /* the last append, decoded: DA_AUDIO points into it */
};

static void next_event_id(struct oairtc *c, char *id, size_t n)
{
    snprintf(id, n, "event_%s_c%u", c->session_id + 5, c->events++);
}

static void send_session(struct oairtc *c, struct dialect_out *out, const char *type, int beta)
{
    char id[80];
    struct buf b;
    buf_init(&b);
    next_event_id(c, id, sizeof id);
    oairt_render_session(&b, type, id, c->session_id, &c->cfg, beta);
    if (!b.oom)
        da_send(out, b.data, b.len);
    buf_deinit(&b);
}

static void send_error(struct oairtc *c, struct dialect_out *out, const char *type,
                       const char *code, const char *msg, const char *param,
                       const char *client_event)
{
    char id[80];
    struct buf b;
    buf_init(&b);
    next_event_id(c, id, sizeof id);
    oairt_render_error(&b, id, type, code, msg, param, client_event);
    if (!b.oom)
        da_send(out, b.data, b.len);
    buf_deinit(&b);
}

static int rt_open(const struct dialect_ctx *cx, const struct dialect_req *rq, void **state,
                   struct dialect_out *out, char *err, size_t n)
{
    struct oairtc *c = hark_calloc(1, sizeof *c);
    if (!c)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    c->defaults = cx->defaults;
    oairt_config_init(&c->cfg);
    buf_init(&c->audio);
    /* session ids: sess_ and the request id's hex digits */
    size_t k = snprintf(c->session_id, sizeof c->session_id, "sess_");
    for (const char *p = rq->request_id; *p && k + 1 < sizeof c->session_id; p++)
        if (*p != '-')
            c->session_id[k++] = *p;
    c->session_id[k] = 0;
    if (k == 5)
        snprintf(c->session_id, sizeof c->session_id, "sess_hark");
    char h[128];
    const char *beta = rq->header(rq, "openai-beta:", h, sizeof h);
    c->beta = beta && strstr(beta, "realtime=v1") != NULL;
    /* browsers say it as a subprotocol */
    const char *protos = rq->header(rq, "sec-websocket-protocol:", h, sizeof h);
    c->beta |= protos && strstr(protos, "openai-beta.realtime-v1") != NULL;
    *state = c;
    send_session(c, out, c->beta ? "transcription_session.created" : "session.created", c->beta);
    return 0;
}

/* The session, with the settings the client made so far. */
static int start(struct oairtc *c, struct dialect_out *out, const char *client_event)
{
    struct hark_options *o = NULL;
    struct oairt_render *r = NULL;
    char why[400];
    int rc = hark_options_copy(&o, c->defaults);
    if (!rc && !(r = hark_calloc(1, sizeof *r)))
        rc = HARK_E_NOMEM;
    if (!rc)
        rc = oairt_options(&c->cfg, o, why, sizeof why);
    else
        snprintf(why, sizeof why, "out of memory");
    if (rc) {
        hark_options_destroy(o);
        hark_free(r);
        send_error(c, out, "invalid_request_error", hark_err_code(rc), why, NULL, client_event);
        return rc;
    }
    snprintf(r->session_id, sizeof r->session_id, "%s", c->session_id);
    r->vad = c->cfg.vad;
    c->started = 1;
    da_start(out, o, r);
    return 0;
}

static int rt_text(void *state, const char *msg, size_t len, struct dialect_out *out)
{
    struct oairtc *c = state;
    struct oairt_in in;
    if (c->ending)
        return 0;
    oairt_parse(msg, len, &c->cfg, &in, &c->audio);
    switch (in.type) {
    case OAIRT_UPDATE:
        if (c->started &&
            (in.cfg.format != c->cfg.format || in.cfg.vad != c->cfg.vad ||
             in.cfg.silence_ms != c->cfg.silence_ms || strcmp(in.cfg.language, c->cfg.language))) {
            send_error(c, out, "invalid_request_error", "invalid_value",
                       "The audio format, turn detection and language cannot change once audio "
                       "was appended",
                       "session", in.event_id);
            break;
        }
        c->cfg = in.cfg;
        send_session(c, out, in.beta ? "transcription_session.updated" : "session.updated",
                     in.beta);
        break;
    case OAIRT_APPEND:
        if (!c->audio.len)
            break;
        if (!c->started && start(c, out, in.event_id))
            break;
        da_audio(out, (const uint8_t *)c->audio.data, c->audio.len);
        break;
    case OAIRT_COMMIT:
        if (!c->started) {
            send_error(c, out, "invalid_request_error", "input_audio_buffer_commit_empty",
                       "Error committing input audio buffer: the buffer is empty.", NULL,
                       in.event_id);
            break;
        }
        da_simple(out, DA_FINALIZE, 0);
        break;
    case OAIRT_CLEAR: {
        /* Audio already appended is being transcribed: hark cannot take it
         * back (docs/openai.md). */
        char id[80];
        struct buf b;
        buf_init(&b);
        next_event_id(c, id, sizeof id);
        oairt_render_cleared(&b, id);
        if (!b.oom)
            da_send(out, b.data, b.len);
        buf_deinit(&b);
        break;
    }
    case OAIRT_INVALID:
        send_error(c, out, "invalid_request_error", in.code, in.why, in.param, in.event_id);
        break;
    }
    return 0;
}

static int rt_binary(void *state, const uint8_t *data, size_t len, struct dialect_out *out)
{
    struct oairtc *c = state;
    (void)data;
    (void)len;
    if (!c->ending)
        send_error(c, out, "invalid_request_error", "invalid_value",
                   "Binary messages are not events: send audio as input_audio_buffer.append "
                   "with base64",
                   NULL, NULL);
    return 0;
}

static void rt_signal(void *state, enum dialect_sig sig, int err, const char *msg,
                      struct dialect_out *out)
{
    struct oairtc *c = state;
    c->ending = 1;
    switch (sig) {
    case DS_REFUSED:
        send_error(c, out, err == HARK_E_BUSY ? "server_error" : "invalid_request_error",
                   hark_err_code(err), msg ? msg : "", NULL, NULL);
        da_close(out,
                 err == HARK_E_AUTH                          ? 1008
                 : err == HARK_E_BUSY || err == HARK_E_LIMIT ? 1013
                                                             : 1011,
                 0, hark_err_code(err));
        break;
    case DS_OVERFLOW:
        send_error(c, out, "invalid_request_error", "limit_exceeded",
                   "audio appended faster than it can be buffered", NULL, NULL);
        da_close(out, 1008, 0, "audio appended faster than it can be buffered");
        break;
    case DS_FIRST_TIMEOUT:
    case DS_IDLE:
        da_close(out, 1000, 0, "idle");
        break;
    case DS_LENGTH:
        send_error(c, out, "invalid_request_error", "session_expired",
                   msg ? msg : "the session reached its maximum length", NULL, NULL);
        da_close(out, 1000, 0, "session length limit");
        break;
    case DS_FATAL: /* the error event went with the session's events */
        da_close(out, 1008, 0, "undecodable audio");
        break;
    case DS_SHUTDOWN:
        da_close(out, 1001, 0, "server shutting down");
        break;
    }
}

static void rt_render(const void *rstate, const struct hark_event *ev, struct buf *out,
                      unsigned *flags)
{
    static const struct oairt_render none = {.session_id = "sess_hark"};
    oairt_render_event(rstate ? rstate : &none, ev, out, flags);
}

static void rt_refuse(unsigned status, int err, const char *msg, struct buf *body,
                      struct dialect_headers *hdr)
{
    (void)hdr;
    buf_puts(body, "{\"error\":{\"message\":");
    buf_json_str(body, msg);
    buf_json_key(body, "type");
    buf_json_str(body, status >= 500 ? "server_error" : "invalid_request_error");
    buf_json_key(body, "code");
    buf_json_str(body, err == HARK_E_AUTH ? "invalid_api_key" : hark_err_code(err));
    buf_puts(body, ",\"param\":null}}");
}

static void rt_destroy(void *state)
{
    struct oairtc *c = state;
    if (c)
        buf_deinit(&c->audio);
    hark_free(c);
}

const struct dialect_ops dialect_openai_realtime = {
    .name = "openai-realtime",
    .open = rt_open,
    .text = rt_text,
    .binary = rt_binary,
    .signal = rt_signal,
    .render = rt_render,
    .refuse = rt_refuse,
    .destroy = rt_destroy,
};
