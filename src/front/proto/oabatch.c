/*
 * OpenAI-compatible transcription (POST /v1/audio/transcriptions) as a
 * batch API (batchapi.h): a multipart/form-data body with the audio in the
 * part "file" and the fields model, language, response_format, prompt,
 * temperature, timestamp_granularities[], stream; the response in one of
 * five formats (json, text, verbose_json, srt, vtt) or, with stream=true, as
 * Server-Sent Events; errors as {"error":{"message","type","param","code"}}.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "front/proto/batchapi.h"

/* Form fields, in the order of fields[]. */
enum {
    F_MODEL,
    F_LANGUAGE,
    F_FORMAT,
    F_PROMPT,
    F_TEMPERATURE,
    F_GRANULARITY,
    F_STREAM,
    F_FILE,
    F_COUNT
};
static const char *const fields[F_COUNT] = {"model",  "language",    "response_format",
                                            "prompt", "temperature", "timestamp_granularities[]",
                                            "stream", "file"};

enum format { OA_JSON, OA_TEXT, OA_VERBOSE, OA_SRT, OA_VTT };
static const char *const formats[] = {"json", "text", "verbose_json", "srt", "vtt"};

struct oabatch {
    enum format format;
    int stream;             /* stream=true: Server-Sent Events */
    char language_used[36]; /* the session's language option */
    double temperature;
};

static const char *field(const struct batchapi_req *rq, int i)
{
    const char *v = rq->field ? rq->field(rq, i) : NULL;
    return v && v[0] ? v : NULL;
}

static int oab_open(void *st, const struct batchapi_ctx *cx, const struct batchapi_req *rq,
                    struct hark_options *o, struct batchapi_refusal *r)
{
    (void)st, (void)cx, (void)o;
    const char *ct = rq->content_type;
    if (strncasecmp(ct, "multipart/form-data", 19) || !strstr(ct, "boundary="))
        return batchapi_refuse(r, 400, HARK_E_PROTOCOL, NULL,
                               "Content-Type must be multipart/form-data with a boundary, with "
                               "the audio in a part named \"file\"");
    return 0;
}

/* The file part starts: the session starts with the fields sent before it. */
static int oab_file(void *st, const struct batchapi_ctx *cx, const struct batchapi_req *rq, int nth,
                    struct hark_options *o, struct batchapi_refusal *r)
{
    struct oabatch *s = st;
    (void)cx;
    if (nth > 1)
        return batchapi_refuse(r, 400, HARK_E_BAD_OPTION, "file",
                               "file: more than one file part; send exactly one");
    batchapi_session_options(o);
    hark_options_set(o, "encoding", "auto", NULL, 0);
    const char *lang = field(rq, F_LANGUAGE);
    char why[400];
    int rc;
    if (lang && (rc = hark_options_set(o, "language", lang, why, sizeof why)))
        return batchapi_refuse(r, 400, rc, "language", "language: %s", why);
    hark_options_get(o, "language", s->language_used, sizeof s->language_used);
    if (lang) /* what a session that cannot start is about */
        snprintf(r->param, sizeof r->param, "language");
    return 0;
}

/* Validates the fields once the whole form is in. */
static int oab_check(void *st, const struct batchapi_ctx *cx, const struct batchapi_req *rq,
                     int file_parts, struct batchapi_refusal *r)
{
    struct oabatch *s = st;
    const char *v;
    s->format = OA_JSON;
    if ((v = field(rq, F_FORMAT))) {
        size_t i, nf = sizeof formats / sizeof formats[0];
        for (i = 0; i < nf && strcmp(v, formats[i]); i++)
            ;
        if (i == nf)
            return batchapi_refuse(r, 400, HARK_E_BAD_OPTION, "response_format",
                                   "response_format: '%s' is not supported (supported: json, "
                                   "text, verbose_json, srt, vtt)",
                                   v);
        s->format = (enum format)i;
    }
    if ((v = field(rq, F_STREAM))) {
        if (!strcasecmp(v, "true") || !strcmp(v, "1"))
            s->stream = 1;
        else if (strcasecmp(v, "false") && strcmp(v, "0"))
            return batchapi_refuse(r, 400, HARK_E_BAD_OPTION, "stream",
                                   "stream: '%s' is not true or false", v);
    }
    if ((v = field(rq, F_TEMPERATURE))) {
        char *end;
        double t = strtod(v, &end);
        if (end == v || *end || !(t >= 0 && t <= 1))
            return batchapi_refuse(r, 400, HARK_E_BAD_OPTION, "temperature",
                                   "temperature: '%s' is not a number from 0 to 1", v);
        s->temperature = t;
    }
    if ((v = field(rq, F_GRANULARITY)) && strcmp(v, "word") && strcmp(v, "segment"))
        return batchapi_refuse(r, 400, HARK_E_BAD_OPTION, "timestamp_granularities[]",
                               "timestamp_granularities[]: '%s' is not supported (supported: "
                               "word, segment)",
                               v);
    if (!file_parts) {
        if (rq->field && rq->field(rq, F_FILE))
            return batchapi_refuse(r, 400, HARK_E_BAD_OPTION, "file",
                                   "file: must be uploaded as a file (a form part with a "
                                   "filename), e.g. curl -F file=@audio.wav");
        return batchapi_refuse(r, 400, HARK_E_BAD_OPTION, "file",
                               "file: missing; send the audio as a multipart form part named "
                               "\"file\"");
    }
    /* A language sent after the file part did not reach the session (it
     * had started); it must still be one the engine accepts. */
    if ((v = field(rq, F_LANGUAGE)) && strcasecmp(v, s->language_used)) {
        struct hark_options *o = NULL;
        char why[400] = "out of memory";
        int rc = hark_options_copy(&o, cx->defaults);
        if (!rc && (rc = hark_options_set(o, "language", v, why, sizeof why)) == 0 && cx->engine)
            rc = hark_engine_check_options(cx->engine, o, why, sizeof why);
        hark_options_destroy(o);
        if (rc)
            return batchapi_refuse(r, batchapi_status(rc), rc, "language", "%s", why);
    }
    return 0;
}

static void oab_session_error(const void *st, int code, const char *msg, struct batchapi_refusal *r)
{
    (void)st;
    char text[600];
    batchapi_audio_message(msg, text, sizeof text);
    const char *hint = code == HARK_E_BAD_AUDIO ? "; the file must be WAV (PCM, IEEE float, "
                                                  "mu-law or A-law), Ogg Opus or WebM/Opus"
                                                : "";
    batchapi_refuse(r, batchapi_status(code), code, "file", "%s%s", text, hint);
}

/* verbose_json names the language in English words. */
static const char *language_name(const char *tag)
{
    static const struct {
        const char *code, *name;
    } names[] = {{"en", "english"}, {"de", "german"},     {"fr", "french"},   {"es", "spanish"},
                 {"it", "italian"}, {"pt", "portuguese"}, {"nl", "dutch"},    {"ru", "russian"},
                 {"zh", "chinese"}, {"ja", "japanese"},   {"ko", "korean"},   {"pl", "polish"},
                 {"sv", "swedish"}, {"tr", "turkish"},    {"uk", "ukrainian"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i].code);
        if (!strncasecmp(tag, names[i].code, n) && (tag[n] == 0 || tag[n] == '-'))
            return names[i].name;
    }
    return tag;
}

static void timestamp(struct buf *o, double t, char sep)
{
    long long ms = llround(t * 1000.0);
    if (ms < 0)
        ms = 0;
    buf_printf(o, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
               sep, ms % 1000);
}

/* The events of a streamed transcription (stream=true), whatever the
 * response_format: a delta per final utterance, then the whole text.
 * Written when the upload is transcribed, not as it goes: the response
 * starts once the session is done, like every other. */
static void sse(const struct transcript *t, struct buf *o, struct buf *x)
{
    for (size_t i = 0; i < t->n_segs; i++) {
        buf_puts(o, "data: {\"type\":\"transcript.text.delta\",\"delta\":");
        buf_reset(x);
        if (i)
            buf_putc(x, ' ');
        buf_puts(x, transcript_str(t, t->segs[i].text));
        buf_json_strn(o, x->data ? x->data : "", x->len);
        buf_puts(o, "}\n\n");
    }
    buf_reset(x);
    transcript_text(t, x);
    buf_puts(o, "data: {\"type\":\"transcript.text.done\",\"text\":");
    buf_json_strn(o, x->data ? x->data : "", x->len);
    buf_puts(o, "}\n\n");
}

static void verbose(const struct oabatch *s, const struct transcript *t, struct buf *o,
                    struct buf *x)
{
    buf_putc(o, '{');
    buf_json_key(o, "task");
    buf_json_str(o, "transcribe");
    buf_json_key(o, "language");
    buf_json_str(o, language_name(s->language_used));
    buf_json_key(o, "duration");
    buf_json_num(o, t->audio_seconds);
    buf_json_key(o, "text");
    buf_json_strn(o, x->data ? x->data : "", x->len);
    o->oom |= x->oom; /* x is reused for segment texts below */
    buf_json_key(o, "segments");
    buf_putc(o, '[');
    for (size_t i = 0; i < t->n_segs; i++) {
        const struct transcript_seg *g = &t->segs[i];
        /* Whisper-only fields get neutral values: no tokens, and the
         * log-probability is the words' mean log confidence. */
        double lp = 0;
        for (size_t k = g->w0; k < g->w0 + g->nw; k++)
            lp += log(t->words[k].conf > 1e-6 ? t->words[k].conf : 1e-6);
        if (i)
            buf_putc(o, ',');
        buf_putc(o, '{');
        buf_json_key(o, "id");
        buf_json_num(o, (double)i);
        buf_json_key(o, "seek");
        buf_puts(o, "0");
        buf_json_key(o, "start");
        buf_json_num(o, g->start);
        buf_json_key(o, "end");
        buf_json_num(o, g->end);
        buf_json_key(o, "text");
        /* Whisper's segment texts start with a space */
        buf_reset(x);
        buf_putc(x, ' ');
        buf_puts(x, transcript_str(t, g->text));
        buf_json_strn(o, x->data ? x->data : "", x->len);
        buf_json_key(o, "tokens");
        buf_puts(o, "[]");
        buf_json_key(o, "temperature");
        buf_json_num(o, s->temperature);
        buf_json_key(o, "avg_logprob");
        buf_json_num(o, g->nw ? lp / (double)g->nw : 0);
        buf_json_key(o, "compression_ratio");
        buf_puts(o, "1");
        buf_json_key(o, "no_speech_prob");
        buf_puts(o, "0");
        buf_putc(o, '}');
    }
    buf_putc(o, ']');
    buf_json_key(o, "words");
    buf_putc(o, '[');
    for (size_t i = 0; i < t->n_words; i++) {
        const struct transcript_word *w = &t->words[i];
        if (i)
            buf_putc(o, ',');
        buf_putc(o, '{');
        buf_json_key(o, "word");
        buf_json_str(o, transcript_str(t, w->text));
        buf_json_key(o, "start");
        buf_json_num(o, w->start);
        buf_json_key(o, "end");
        buf_json_num(o, w->end);
        buf_putc(o, '}');
    }
    buf_puts(o, "]}");
}

static void oab_respond(const void *st, const struct batchapi_meta *m, const struct transcript *t,
                        struct buf *o, const char **mime)
{
    const struct oabatch *s = st;
    (void)m;
    struct buf x;
    buf_init(&x);
    transcript_text(t, &x);
    *mime = "application/json";
    if (s->stream) {
        sse(t, o, &x);
        *mime = "text/event-stream";
    } else {
        switch (s->format) {
        case OA_JSON:
            buf_putc(o, '{');
            buf_json_key(o, "text");
            buf_json_strn(o, x.data ? x.data : "", x.len);
            buf_putc(o, '}');
            break;
        case OA_TEXT:
            buf_append(o, x.data ? x.data : "", x.len);
            buf_putc(o, '\n');
            *mime = "text/plain; charset=utf-8";
            break;
        case OA_SRT:
        case OA_VTT:
            if (s->format == OA_VTT)
                buf_puts(o, "WEBVTT\n\n");
            for (size_t i = 0; i < t->n_segs; i++) {
                if (s->format == OA_SRT)
                    buf_printf(o, "%zu\n", i + 1);
                timestamp(o, t->segs[i].start, s->format == OA_SRT ? ',' : '.');
                buf_puts(o, " --> ");
                timestamp(o, t->segs[i].end, s->format == OA_SRT ? ',' : '.');
                buf_printf(o, "\n%s\n\n", transcript_str(t, t->segs[i].text));
            }
            *mime = s->format == OA_SRT ? "application/x-subrip; charset=utf-8"
                                        : "text/vtt; charset=utf-8";
            break;
        case OA_VERBOSE:
            verbose(s, t, o, &x);
            break;
        }
    }
    o->oom |= x.oom;
    buf_deinit(&x);
}

/* {"error":{"message","type","param","code"}} */
static void oab_error(const struct batchapi_refusal *r, const char *request_id, struct buf *o)
{
    (void)request_id;
    buf_putc(o, '{');
    buf_json_key(o, "error");
    buf_putc(o, '{');
    buf_json_key(o, "message");
    buf_json_str(o, r->msg);
    buf_json_key(o, "type");
    buf_json_str(o, r->status >= 500 ? "server_error" : "invalid_request_error");
    buf_json_key(o, "param");
    if (r->param[0])
        buf_json_str(o, r->param);
    else
        buf_puts(o, "null");
    buf_json_key(o, "code");
    if (r->err == HARK_E_AUTH)
        buf_json_str(o, "invalid_api_key"); /* OpenAI's code for it */
    else if (r->err)
        buf_json_str(o, hark_err_code(r->err));
    else
        buf_puts(o, "null");
    buf_putc(o, '}');
    buf_putc(o, '}');
}

const struct batchapi batchapi_openai = {
    .name = "openai",
    .state_size = sizeof(struct oabatch),
    .fields = fields,
    .n_fields = F_COUNT,
    .file_field = "file",
    .body_param = "file",
    .open = oab_open,
    .file = oab_file,
    .check = oab_check,
    .session_error = oab_session_error,
    .respond = oab_respond,
    .error = oab_error,
};
