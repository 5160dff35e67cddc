/*
 * AssemblyAI Universal-Streaming v3, mapped onto hark's session contract:
 *
 *   a Turn           one segment: turn_order = segment; partials are Turns
 *                    with end_of_turn false and every word word_is_final
 *                    false (hark may still revise them); the final is the
 *                    Turn with end_of_turn true, its words final, and
 *                    utterance = transcript
 *   format_turns     the engine writes no punctuation or case, so there is
 *                    no second, formatted Turn: with format_turns=true the
 *                    end-of-turn Turn itself says turn_is_formatted true
 *                    (clients wait for end_of_turn && turn_is_formatted)
 *   turn silences    hark ends a turn after endpointing_ms of silence, with
 *                    no end-of-turn model: endpointing_ms is min_turn_silence
 *                    (the server's default when absent), at most
 *                    max_turn_silence
 *   ForceEndpoint    finalize: its end-of-turn Turn comes even when empty
 *   Terminate        close: the last Turns, Termination, close 1000
 *
 * Empty finals of turns nobody heard (endpoint or close with no words) are
 * not sent: AssemblyAI sends no Turn for silence.
 */
#include "front/proto/aai.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "front/proto/dialect.h"
#include "host/chan.h"

/* A whole non-negative integer of ms, as AssemblyAI's silences are. */
static int parse_ms(const char *v, long *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d >= 0 && d <= 1e7) || d != floor(d))
        return -1;
    *out = (long)d;
    return 0;
}

/* keyterms_prompt: a JSON array of strings -> comma-separated vocabulary
 * (commas inside a term become spaces: they separate entries). */
static int keyterms(const char *v, char *vocab, size_t size, char *err, size_t n)
{
    struct json *doc = NULL;
    const struct json_value *arr;
    int rc = 0;
    if (json_parse(&doc, v, strlen(v), NULL, 0) || json_type(arr = json_root(doc)) != JSON_ARRAY) {
        json_free(doc);
        return err_set(
            err, n, HARK_E_BAD_OPTION,
            "keyterms_prompt: not a JSON array of strings (e.g. [\"hark\",\"Marianne\"])");
    }
    size_t used = strlen(vocab);
    for (size_t i = 0; i < json_len(arr) && !rc; i++) {
        const struct json_value *t = json_at(arr, i);
        const char *s = json_str(t);
        size_t len = json_str_len(t);
        if (!s) {
            rc = err_set(err, n, HARK_E_BAD_OPTION, "keyterms_prompt: item %zu is not a string", i);
            break;
        }
        if (!len)
            continue;
        if (used + len + 2 > size) {
            rc = err_set(err, n, HARK_E_BAD_OPTION, "keyterms_prompt: more than %zu bytes of terms",
                         size - 1);
            break;
        }
        if (used)
            vocab[used++] = ',';
        for (size_t k = 0; k < len; k++)
            vocab[used++] = s[k] == ',' || s[k] == 0 ? ' ' : s[k];
        vocab[used] = 0;
    }
    json_free(doc);
    return rc;
}

int aai_apply_args(const char *const *args, size_t n_args, struct hark_options *o,
                   struct aai_params *p, char *err, size_t n)
{
    memset(p, 0, sizeof p[0]);
    char vocab[4096] = "";
    const char *sample_rate = NULL, *encoding = NULL;
    long min_silence = -1, max_silence = -1, ms;
    int rc = 0, b;
    for (size_t i = 0; !rc && i < n_args; i++) {
        const char *k = args[i], *v = strchr(k, '=');
        if (!v)
            continue;
        size_t klen = (size_t)(v - k);
        v++;
#define IS(name) (klen == sizeof name - 1 && !memcmp(k, name, klen))
        if (IS("sample_rate")) {
            sample_rate = v;
        } else if (IS("encoding")) {
            encoding = v;
        } else if (IS("format_turns")) {
            if (dialect_parse_bool(v, &b))
                rc = err_set(err, n, HARK_E_BAD_OPTION,
                             "format_turns: '%.60s' is not true or false", v);
            else
                p->format_turns = b;
        } else if (IS("end_of_turn_confidence_threshold") || IS("vad_threshold")) {
            char *end;
            double d = strtod(v, &end);
            if (end == v || *end || !(d >= 0 && d <= 1))
                rc = err_set(err, n, HARK_E_BAD_OPTION, "%.*s: '%.60s' is not a number from 0 to 1",
                             (int)klen, k, v);
        } else if (IS("min_turn_silence") || IS("min_end_of_turn_silence_when_confident") ||
                   IS("max_turn_silence")) {
            if (parse_ms(v, &ms))
                rc = err_set(err, n, HARK_E_BAD_OPTION, "%.*s: '%.60s' is not a whole number of ms",
                             (int)klen, k, v);
            else if (k[1] == 'a')
                max_silence = ms;
            else if (IS("min_turn_silence") || min_silence < 0)
                min_silence = ms; /* the newer name wins over the older */
        } else if (IS("keyterms_prompt") || IS("keyterms")) {
            rc = keyterms(v, vocab, sizeof vocab, err, n);
        } else if (IS("token")) {
            if (strlen(v) >= sizeof p->token)
                rc = err_set(err, n, HARK_E_AUTH, "token: longer than %zu characters",
                             sizeof p->token - 1);
            else
                snprintf(p->token, sizeof p->token, "%s", v);
        }
#undef IS
        /* speech_model, language_detection, inactivity_timeout, prompt, ...:
         * accepted and ignored (docs/assemblyai.md) */
    }
    if (rc)
        return rc;
    if (!encoding || !strcmp(encoding, "pcm_s16le") || !strcmp(encoding, "pcm_mulaw")) {
        if ((rc = dialect_set_option(o, "encoding",
                                     encoding && encoding[4] == 'm' ? "mulaw" : "pcm_s16le",
                                     "encoding", err, n)))
            return rc;
        if (!sample_rate)
            return err_set(err, n, HARK_E_BAD_OPTION, "sample_rate: required for PCM audio");
        if ((rc = dialect_set_option(o, "sample_rate", sample_rate, "sample_rate", err, n)))
            return rc;
    } else if (!strcmp(encoding, "ogg_opus")) {
        if ((rc = dialect_set_option(o, "encoding", "auto", "encoding", err, n)))
            return rc;
    } else {
        return err_set(err, n, HARK_E_UNSUPPORTED,
                       "encoding: '%.60s' is not supported (supported: pcm_s16le, pcm_mulaw, "
                       "ogg_opus)",
                       encoding);
    }
    if (min_silence >= 0 || max_silence >= 0) {
        char cur[32];
        long end_ms = min_silence;
        if (end_ms < 0) {
            hark_options_get(o, "endpointing_ms", cur, sizeof cur);
            end_ms = strtol(cur, NULL, 10);
            if (end_ms <= 0) /* endpointing off by default: the cap decides */
                end_ms = max_silence;
        }
        if (max_silence >= 0 && end_ms > max_silence)
            end_ms = max_silence;
        snprintf(cur, sizeof cur, "%ld", end_ms);
        if ((rc = dialect_set_option(o, "endpointing_ms", cur,
                                     min_silence >= 0 ? "min_turn_silence" : "max_turn_silence",
                                     err, n)))
            return rc;
    }
    if (vocab[0] && (rc = dialect_set_option(o, "vocabulary", vocab, "keyterms_prompt", err, n)))
        return rc;
    /* Turns carry words; SpeechStarted comes from the VAD; no UtteranceEnd. */
    if ((rc = dialect_set_option(o, "words", "true", "words", err, n)) ||
        (rc = dialect_set_option(o, "interim_results", "true", "interim_results", err, n)) ||
        (rc = dialect_set_option(o, "utterance_end_ms", "0", "utterance_end_ms", err, n)))
        return rc;
    return 0;
}

static int check_update(const struct json_value *root, char *why, size_t n)
{
    for (size_t i = 0; i < json_len(root); i++) {
        const char *k = json_key_at(root, i);
        const struct json_value *v = json_value_at(root, i);
        double d = json_num(v);
        if (!strcmp(k, "end_of_turn_confidence_threshold") || !strcmp(k, "vad_threshold")) {
            if (json_type(v) != JSON_NUMBER || !(d >= 0 && d <= 1))
                return err_set(why, n, HARK_E_BAD_OPTION,
                               "Invalid Message: %s must be a number from 0 to 1", k);
        } else if (!strcmp(k, "min_turn_silence") || !strcmp(k, "max_turn_silence") ||
                   !strcmp(k, "min_end_of_turn_silence_when_confident")) {
            if (json_type(v) != JSON_NUMBER || !(d >= 0 && d <= 1e7))
                return err_set(why, n, HARK_E_BAD_OPTION,
                               "Invalid Message: %s must be a number of ms", k);
        }
    }
    return 0;
}

enum aai_msg_type aai_parse_text(const char *msg, size_t len, char *why, size_t n)
{
    struct json *doc = NULL;
    enum aai_msg_type t = AAI_MSG_INVALID;
    if (json_parse(&doc, msg, len, NULL, 0)) {
        err_set(why, n, HARK_E_PROTOCOL, "Invalid JSON: %.*s", len > 80 ? 80 : (int)len, msg);
        return t;
    }
    const struct json_value *root = json_root(doc);
    const char *type = json_str(json_get(root, "type"));
    if (json_type(root) != JSON_OBJECT || !type)
        err_set(why, n, HARK_E_PROTOCOL, "Invalid Message: %.*s", len > 80 ? 80 : (int)len, msg);
    else if (!strcmp(type, "Terminate"))
        t = AAI_MSG_TERMINATE;
    else if (!strcmp(type, "ForceEndpoint"))
        t = AAI_MSG_FORCE_ENDPOINT;
    else if (!strcmp(type, "KeepAlive"))
        t = AAI_MSG_KEEPALIVE;
    else if (!strcmp(type, "UpdateConfiguration"))
        t = check_update(root, why, n) ? AAI_MSG_INVALID : AAI_MSG_UPDATE;
    else
        err_set(why, n, HARK_E_PROTOCOL, "Invalid Message Type: %.60s", type);
    json_free(doc);
    return t;
}

void aai_render_begin(struct buf *b, const char *session_id, const struct aai_params *p)
{
    int64_t life = p->max_session_s > 0 ? p->max_session_s : 3 * 3600;
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, "Begin");
    buf_json_key(b, "id");
    buf_json_str(b, session_id);
    buf_json_key(b, "expires_at");
    buf_printf(b, "%lld", (long long)(p->started_unix + life));
    buf_putc(b, '}');
}

void aai_render_error(struct buf *b, int code, const char *msg)
{
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, "Error");
    buf_json_key(b, "error_code");
    buf_printf(b, "%d", code);
    buf_json_key(b, "error");
    buf_json_str(b, msg);
    buf_putc(b, '}');
}

int aai_close_code(int hark_err)
{
    switch (hark_err) {
    case HARK_E_AUTH:
        return AAI_CLOSE_AUTH;
    case HARK_E_BUSY:
    case HARK_E_LIMIT:
        return AAI_CLOSE_TOO_MANY;
    case HARK_E_BAD_AUDIO:
    case HARK_E_UNSUPPORTED:
    case HARK_E_BAD_OPTION:
    case HARK_E_PROTOCOL:
    case HARK_E_INVAL:
        return AAI_CLOSE_INVALID;
    default:
        return AAI_CLOSE_SERVER;
    }
}

static long ms_of(double s)
{
    return s > 0 ? (long)llround(s * 1000) : 0;
}

static void render_turn(const struct aai_params *p, const struct hark_event *ev, struct buf *b)
{
    int eot = ev->is_final;
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, "Turn");
    buf_json_key(b, "turn_order");
    buf_printf(b, "%lld", (long long)ev->segment);
    buf_json_key(b, "turn_is_formatted");
    buf_puts(b, eot && p->format_turns ? "true" : "false");
    buf_json_key(b, "end_of_turn");
    buf_puts(b, eot ? "true" : "false");
    buf_json_key(b, "transcript");
    buf_json_str(b, ev->text);
    buf_json_key(b, "end_of_turn_confidence");
    buf_puts(b, eot ? "1" : "0");
    buf_json_key(b, "words");
    buf_putc(b, '[');
    for (size_t i = 0; i < ev->n_words; i++) {
        const struct hark_word *w = &ev->words[i];
        if (i)
            buf_putc(b, ',');
        buf_putc(b, '{');
        buf_json_key(b, "start");
        buf_printf(b, "%ld", ms_of(w->start));
        buf_json_key(b, "end");
        buf_printf(b, "%ld", ms_of(w->end));
        buf_json_key(b, "text");
        buf_json_str(b, w->word);
        buf_json_key(b, "confidence");
        buf_json_num(b, w->confidence);
        buf_json_key(b, "word_is_final");
        buf_puts(b, eot ? "true" : "false");
        buf_putc(b, '}');
    }
    buf_putc(b, ']');
    buf_json_key(b, "utterance");
    buf_json_str(b, eot ? ev->text : "");
    buf_putc(b, '}');
}

void aai_render_event(const struct aai_params *p, const struct hark_event *ev, int64_t now_ms,
                      struct buf *out, unsigned *flags)
{
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT:
        if (ev->is_final && !ev->text[0] && ev->reason != HARK_REASON_FINALIZE)
            break; /* nobody spoke: no Turn (a ForceEndpoint gets its answer) */
        if (!ev->is_final && !ev->text[0])
            break;
        render_turn(p, ev, out);
        break;
    case HARK_EVENT_SPEECH_STARTED:
        buf_printf(out, "{\"type\":\"SpeechStarted\",\"timestamp\":%ld}", ms_of(ev->start));
        break;
    case HARK_EVENT_CLOSED: {
        /* Both are integers in AssemblyAI's schema (Python's SDK parses
         * them as int: a fraction would fail its validation). */
        int64_t wall = now_ms - p->started_ms;
        buf_printf(out,
                   "{\"type\":\"Termination\",\"audio_duration_seconds\":%lld,"
                   "\"session_duration_seconds\":%lld}",
                   (long long)llround(ev->audio_seconds),
                   (long long)(wall > 0 ? (wall + 500) / 1000 : 0));
        break;
    }
    case HARK_EVENT_ERROR:
        if (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED) {
            char msg[600];
            snprintf(msg, sizeof msg, "Invalid audio: %s", ev->message ? ev->message : "");
            aai_render_error(out, AAI_CLOSE_INVALID, msg);
            *flags |= MSG_FATAL;
        }
        break;
    case HARK_EVENT_UTTERANCE_END:
    case HARK_EVENT_INTERRUPT:
    case HARK_EVENT_PROVIDER_FAILOVER: /* no AssemblyAI message for it */
    case HARK_EVENT_AUDIO_GAP:
        break;
    }
}

/* ------------------------------------------------------------ the dialect */

/* Connection state (I/O thread). */
struct aaic {
    int streaming; /* the session started and is not ending */
    struct aai_params p;
};

/* An Error message, then the close with the same code (AssemblyAI's way:
 * errors are reported after the upgrade, never as an HTTP status). */
static void fail(struct aaic *c, struct dialect_out *out, int code, const char *msg)
{
    struct buf b;
    buf_init(&b);
    aai_render_error(&b, code, msg);
    if (!b.oom)
        da_send(out, b.data, b.len);
    buf_deinit(&b);
    if (c)
        c->streaming = 0;
    /* the close reason is at most 123 bytes: the Error carries the text */
    da_close(out, code, 0, strlen(msg) < 120 ? msg : "See Error message for details");
}

static int aai_open(const struct dialect_ctx *cx, const struct dialect_req *rq, void **state,
                    struct dialect_out *out, char *err, size_t n)
{
    struct hark_options *o = NULL;
    struct aai_params *r = NULL;
    struct aaic *c = hark_calloc(1, sizeof *c);
    int rc = c ? hark_options_copy(&o, cx->defaults) : HARK_E_NOMEM;
    if (!rc && !(r = hark_malloc(sizeof *r)))
        rc = HARK_E_NOMEM;
    if (rc) {
        hark_options_destroy(o);
        hark_free(c);
        return err_set(err, n, rc, "out of memory");
    }
    *state = c;
    char why[512];
    if ((rc = aai_apply_args(rq->args, rq->n_args, o, &c->p, why, sizeof why))) {
        hark_options_destroy(o);
        hark_free(r);
        fail(c, out, AAI_CLOSE_INVALID, why);
        return 0;
    }
    c->p.started_unix = (int64_t)time(NULL);
    c->p.started_ms = clock_mono_ns() / 1000000;
    *r = c->p;
    c->streaming = 1;
    da_start(out, o, r);
    return 0;
}

static void aai_started(void *state, const struct dialect_session *s, struct dialect_out *out)
{
    struct aaic *c = state;
    struct buf b;
    buf_init(&b);
    aai_render_begin(&b, s->id, &c->p);
    if (!b.oom)
        da_send(out, b.data, b.len);
    buf_deinit(&b);
}

static int aai_text(void *state, const char *msg, size_t len, struct dialect_out *out)
{
    struct aaic *c = state;
    char why[300];
    if (!c->streaming)
        return 0;
    switch (aai_parse_text(msg, len, why, sizeof why)) {
    case AAI_MSG_TERMINATE:
        c->streaming = 0;
        da_close(out, AAI_CLOSE_NORMAL, 0, "");
        break;
    case AAI_MSG_FORCE_ENDPOINT:
        da_simple(out, DA_FINALIZE, 0);
        break;
    case AAI_MSG_KEEPALIVE:
        da_simple(out, DA_KEEPALIVE, 0);
        break;
    case AAI_MSG_UPDATE:
        /* valid; the session's settings are fixed at its start
         * (docs/assemblyai.md) */
        break;
    case AAI_MSG_INVALID:
        fail(c, out, AAI_CLOSE_INVALID, why);
        break;
    }
    return 0;
}

static int aai_binary(void *state, const uint8_t *data, size_t len, struct dialect_out *out)
{
    struct aaic *c = state;
    if (c->streaming && len)
        da_audio(out, data, len);
    return 0;
}

static void aai_signal(void *state, enum dialect_sig sig, int err, const char *msg,
                       struct dialect_out *out)
{
    struct aaic *c = state;
    char text[400];
    switch (sig) {
    case DS_REFUSED:
        snprintf(text, sizeof text, "%s: %s",
                 err == HARK_E_AUTH                          ? "Unauthorized Connection"
                 : err == HARK_E_BUSY || err == HARK_E_LIMIT ? "Too many concurrent sessions"
                                                             : "Session Cancelled",
                 msg ? msg : "");
        fail(c, out, aai_close_code(err), text);
        break;
    case DS_OVERFLOW:
        fail(c, out, AAI_CLOSE_RATE,
             "Audio Transmission Rate Exceeded: audio sent faster than it can be buffered");
        break;
    case DS_FIRST_TIMEOUT:
    case DS_IDLE: /* like inactivity_timeout: the session ends, with its Termination */
        c->streaming = 0;
        da_close(out, AAI_CLOSE_NORMAL, 0, "");
        break;
    case DS_LENGTH:
        fail(c, out, AAI_CLOSE_EXPIRED, "Session Expired: Maximum session duration exceeded");
        break;
    case DS_FATAL: /* the Error (3006) was rendered with the event */
        c->streaming = 0;
        da_close(out, aai_close_code(err ? err : HARK_E_BAD_AUDIO), 0,
                 "See Error message for details");
        break;
    case DS_SHUTDOWN:
        c->streaming = 0;
        da_close(out, 1001, 0, "server shutting down");
        break;
    }
}

static void aai_render(const void *rstate, const struct hark_event *ev, struct buf *out,
                       unsigned *flags)
{
    static const struct aai_params none;
    const struct aai_params *p = rstate ? rstate : &none;
    if (!rstate && ev->type == HARK_EVENT_ERROR) { /* before a session */
        aai_render_error(out, aai_close_code(ev->code), ev->message ? ev->message : "");
        return;
    }
    aai_render_event(p, ev, clock_mono_ns() / 1000000, out, flags);
}

static void aai_refuse(unsigned status, int err, const char *msg, struct buf *body,
                       struct dialect_headers *hdr)
{
    (void)status;
    (void)err;
    (void)hdr;
    buf_putc(body, '{');
    buf_json_key(body, "error");
    buf_json_str(body, msg);
    buf_putc(body, '}');
}

static void aai_destroy(void *state)
{
    hark_free(state);
}

const struct dialect_ops dialect_assemblyai = {
    .name = "assemblyai",
    .open = aai_open,
    .text = aai_text,
    .binary = aai_binary,
    .signal = aai_signal,
    .started = aai_started,
    .render = aai_render,
    .refuse = aai_refuse,
    .destroy = aai_destroy,
};
