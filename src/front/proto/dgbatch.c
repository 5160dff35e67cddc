/*
 * Deepgram pre-recorded transcription (POST /v1/listen) as a batch API
 * (batchapi.h): the body is the audio (WAV, Ogg, WebM, or headerless with
 * ?encoding=&sample_rate=); the query is Deepgram's (dg.c, shared with the
 * live dialect) plus utt_split; the response is Deepgram's JSON with
 * metadata (request id, body SHA-256, duration, model) and, with
 * utterances=true, utterances split at utt_split seconds of silence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "front/proto/batchapi.h"
#include "front/proto/dg.h"

#define DEFAULT_UTT_SPLIT 0.8 /* Deepgram's default silence between utterances, s */

struct dgbatch {
    struct dg_params dg;
    double utt_split;
};

/* Query parameters beyond session options. */
static int extra_query(struct dgbatch *s, const struct batchapi_req *rq, char *err, size_t n)
{
    s->utt_split = DEFAULT_UTT_SPLIT;
    int rc = 0;
    const char *utt = NULL;
    for (size_t i = 0; i < rq->n_args && !rc; i++) {
        if (!strncmp(rq->args[i], "utt_split=", 10) && !utt)
            utt = rq->args[i] + 10; /* the first wins, as for other parameters */
        else if (!strncmp(rq->args[i], "callback=", 9))
            rc = err_set(err, n, HARK_E_UNSUPPORTED,
                         "callback: asynchronous callbacks are not supported; the response "
                         "carries the results");
    }
    if (!rc && utt) {
        char *end;
        double x = strtod(utt, &end);
        if (end == utt || *end || !(x >= 0.05 && x <= 60))
            rc = err_set(err, n, HARK_E_BAD_OPTION,
                         "utt_split: '%.60s%s' is not a number of seconds from 0.05 to 60", utt,
                         strlen(utt) > 60 ? "..." : "");
        else
            s->utt_split = x;
    }
    return rc;
}

static int dgb_open(void *st, const struct batchapi_ctx *cx, const struct batchapi_req *rq,
                    struct hark_options *o, struct batchapi_refusal *r)
{
    struct dgbatch *s = st;
    if (rq->chunked)
        return batchapi_refuse(r, 411, HARK_E_PROTOCOL, NULL,
                               "Content-Length is required (chunked request bodies are not "
                               "supported here); send the whole body with its length");
    if (!strncasecmp(rq->content_type, "application/json", 16))
        return batchapi_refuse(r, 400, HARK_E_UNSUPPORTED, NULL,
                               "JSON bodies ({\"url\": ...}) are not supported: hark does not "
                               "fetch remote audio; send the audio bytes as the request body");
    int rc = dg_apply_args(rq->args, rq->n_args, o, &s->dg, cx->engines, cx->any_model, r->msg,
                           sizeof r->msg);
    if (rc || (rc = extra_query(s, rq, r->msg, sizeof r->msg))) {
        r->status = 400;
        r->err = rc;
        r->param[0] = 0;
        return rc;
    }
    batchapi_session_options(o);
    return 0;
}

static void dgb_session_error(const void *st, int code, const char *msg, struct batchapi_refusal *r)
{
    const struct dgbatch *s = st;
    char text[600];
    batchapi_audio_message(msg, text, sizeof text);
    const char *hint = "";
    if (code == HARK_E_BAD_AUDIO && !s->dg.encoding[0])
        hint = "; send WAV, Ogg Opus or WebM/Opus, or headerless audio with "
               "?encoding=linear16|mulaw|alaw&sample_rate=N";
    batchapi_refuse(r, batchapi_status(code), code, NULL, "%s%s", text, hint);
}

static void words(struct buf *o, const struct transcript *t, size_t w0, size_t nw)
{
    buf_json_key(o, "words");
    buf_putc(o, '[');
    for (size_t i = w0; i < w0 + nw; i++) {
        const struct transcript_word *w = &t->words[i];
        if (i > w0)
            buf_putc(o, ',');
        buf_putc(o, '{');
        buf_json_key(o, "word");
        buf_json_str(o, transcript_str(t, w->text));
        buf_json_key(o, "start");
        buf_json_num(o, w->start);
        buf_json_key(o, "end");
        buf_json_num(o, w->end);
        buf_json_key(o, "confidence");
        buf_json_num(o, w->conf);
        buf_json_key(o, "punctuated_word");
        buf_json_str(o, transcript_str(t, w->text));
        buf_putc(o, '}');
    }
    buf_putc(o, ']');
}

/* Deepgram's utterances: runs of words split where the silence between two
 * words reaches utt_split seconds. */
static void utterances(struct buf *o, const struct transcript *t, double utt_split)
{
    buf_json_key(o, "utterances");
    buf_putc(o, '[');
    size_t i = 0;
    int first = 1;
    while (i < t->n_words) {
        size_t j = i + 1;
        while (j < t->n_words && t->words[j].start - t->words[j - 1].end < utt_split)
            j++;
        char id[37];
        dg_uuid(id);
        if (!first)
            buf_putc(o, ',');
        first = 0;
        buf_putc(o, '{');
        buf_json_key(o, "start");
        buf_json_num(o, t->words[i].start);
        buf_json_key(o, "end");
        buf_json_num(o, t->words[j - 1].end);
        buf_json_key(o, "confidence");
        buf_json_num(o, transcript_confidence(t, i, j - i));
        buf_json_key(o, "channel");
        buf_puts(o, "0");
        buf_json_key(o, "transcript");
        struct buf x;
        buf_init(&x);
        for (size_t k = i; k < j; k++) {
            if (k > i)
                buf_putc(&x, ' ');
            buf_puts(&x, transcript_str(t, t->words[k].text));
        }
        buf_json_strn(o, x.data ? x.data : "", x.len);
        o->oom |= x.oom;
        buf_deinit(&x);
        words(o, t, i, j - i);
        buf_json_key(o, "speaker");
        buf_puts(o, "0");
        buf_json_key(o, "id");
        buf_json_str(o, id);
        buf_putc(o, '}');
        i = j;
    }
    buf_putc(o, ']');
}

static void dgb_respond(const void *st, const struct batchapi_meta *m, const struct transcript *t,
                        struct buf *o, const char **mime)
{
    const struct dgbatch *s = st;
    const char *model = dg_model_uuid();
    buf_puts(o, "{\"metadata\":{");
    buf_json_key(o, "transaction_key");
    buf_json_str(o, "deprecated");
    buf_json_key(o, "request_id");
    buf_json_str(o, m->request_id);
    buf_json_key(o, "sha256");
    buf_json_str(o, m->sha256);
    buf_json_key(o, "created");
    buf_json_str(o, m->created);
    buf_json_key(o, "duration");
    buf_json_num(o, t->audio_seconds);
    buf_json_key(o, "channels");
    buf_puts(o, "1");
    buf_json_key(o, "models");
    buf_putc(o, '[');
    buf_json_str(o, model);
    buf_putc(o, ']');
    buf_json_key(o, "model_info");
    buf_putc(o, '{');
    buf_json_key(o, model);
    buf_putc(o, '{');
    dg_model_fields(o, &s->dg, m->engine_name);
    buf_puts(o, "}}},\"results\":{\"channels\":[{\"alternatives\":[{");
    buf_json_key(o, "transcript");
    struct buf x;
    buf_init(&x);
    transcript_text(t, &x);
    buf_json_strn(o, x.data ? x.data : "", x.len);
    o->oom |= x.oom;
    buf_deinit(&x);
    buf_json_key(o, "confidence");
    buf_json_num(o, transcript_confidence(t, 0, t->n_words));
    dg_languages(o, &s->dg);
    words(o, t, 0, t->n_words);
    buf_puts(o, "}]}]");
    if (s->dg.utterances)
        utterances(o, t, s->utt_split);
    buf_puts(o, "}}");
    *mime = "application/json";
}

static const char *err_code(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "INVALID_AUTH";
    case 411:
        return "LENGTH_REQUIRED";
    case 408:
        return "REQUEST_TIMEOUT";
    case 413:
        return "PAYLOAD_TOO_LARGE";
    case 429:
        return "TOO_MANY_REQUESTS";
    case 503:
        return "SERVICE_UNAVAILABLE";
    default:
        return "INTERNAL_SERVER_ERROR";
    }
}

/* {"err_code","err_msg","request_id"} */
static void dgb_error(const struct batchapi_refusal *r, const char *request_id, struct buf *o)
{
    buf_putc(o, '{');
    buf_json_key(o, "err_code");
    buf_json_str(o, err_code(r->status));
    buf_json_key(o, "err_msg");
    buf_json_str(o, r->msg);
    buf_json_key(o, "request_id");
    buf_json_str(o, request_id);
    buf_putc(o, '}');
}

const struct batchapi batchapi_deepgram = {
    .name = "listen",
    .state_size = sizeof(struct dgbatch),
    .body_param = "",
    .id_header = "dg-request-id:",
    .wants_sha256 = 1,
    .open = dgb_open,
    .session_error = dgb_session_error,
    .respond = dgb_respond,
    .error = dgb_error,
};
