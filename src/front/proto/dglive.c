/*
 * Deepgram-compatible live streaming on /v1/listen (docs/deepgram.md), so the
 * official SDKs work against hark unchanged. A renderer and parser over the
 * same session core as the native protocol:
 *
 *   query parameters        -> session options (dg.c), validated before the
 *                              upgrade: a bad request gets HTTP 400 + dg-error
 *   binary audio            -> feed; an empty binary message = CloseStream
 *   KeepAlive / Finalize / CloseStream text messages; others are ignored
 *   events                  -> Results (every field always present),
 *                              SpeechStarted, UtteranceEnd, Metadata last
 *   close codes             1000 after CloseStream, 1011 NET-0001 on idle
 *                           timeout, 1008 DATA-0000 on undecodable audio
 *
 * Close codes matter: the JS SDK v5 reconnects after anything but 1000.
 */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "front/proto/dg.h"
#include "front/proto/dialect.h"
#include "session/event_json.h"

#define NET0001                                                                                    \
    "NET-0001: hark did not receive audio data or a text message within the timeout window"
#define DATA0000 "DATA-0000: payload cannot be decoded as audio"

/* Render state: immutable once the session has it. */
struct dgr {
    struct dg_params p;
    char request_id[37];
    char created[32];
    char engine[64];
};

/* Connection state. */
struct dgc {
    int streaming; /* the session started (at the upgrade) and is not ending */
};

static void render_results(const struct dgr *d, const struct hark_event *ev, struct buf *b)
{
    int from_finalize = ev->is_final && (ev->reason == HARK_REASON_FINALIZE ||
                                         (ev->reason == HARK_REASON_CLOSE && ev->text[0]));
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, "Results");
    buf_json_key(b, "channel_index");
    buf_puts(b, "[0,1]");
    buf_json_key(b, "duration");
    buf_json_num(b, ev->end - ev->start);
    buf_json_key(b, "start");
    buf_json_num(b, ev->start);
    buf_json_key(b, "is_final");
    buf_puts(b, ev->is_final ? "true" : "false");
    buf_json_key(b, "speech_final");
    buf_puts(b, ev->speech_final ? "true" : "false");
    buf_json_key(b, "from_finalize");
    buf_puts(b, from_finalize ? "true" : "false");
    buf_json_key(b, "channel");
    buf_puts(b, "{\"alternatives\":[{");
    buf_json_key(b, "transcript");
    buf_json_str(b, ev->text);
    buf_json_key(b, "confidence");
    buf_json_num(b, ev->text[0] ? ev->confidence : 0);
    dg_languages(b, &d->p);
    event_json_words(b, ev->words, ev->n_words, EVENT_JSON_PUNCTUATED);
    buf_puts(b, "}]}");
    buf_json_key(b, "metadata");
    buf_putc(b, '{');
    buf_json_key(b, "request_id");
    buf_json_str(b, d->request_id);
    buf_json_key(b, "model_info");
    buf_putc(b, '{');
    dg_model_fields(b, &d->p, d->engine);
    buf_putc(b, '}');
    buf_json_key(b, "model_uuid");
    buf_json_str(b, dg_model_uuid());
    buf_putc(b, '}');
    buf_putc(b, '}');
}

static void render_metadata(const struct dgr *d, double duration, struct buf *b)
{
    buf_putc(b, '{');
    buf_json_key(b, "type");
    buf_json_str(b, "Metadata");
    buf_json_key(b, "transaction_key");
    buf_json_str(b, "deprecated");
    buf_json_key(b, "request_id");
    buf_json_str(b, d->request_id);
    buf_json_key(b, "sha256");
    buf_json_str(b, "incomplete"); /* streaming: no digest of a whole file */
    buf_json_key(b, "created");
    buf_json_str(b, d->created);
    buf_json_key(b, "duration");
    buf_json_num(b, duration);
    buf_json_key(b, "channels");
    buf_puts(b, "1");
    buf_json_key(b, "models");
    buf_putc(b, '[');
    buf_json_str(b, dg_model_uuid());
    buf_putc(b, ']');
    buf_json_key(b, "model_info");
    buf_putc(b, '{');
    buf_json_key(b, dg_model_uuid());
    buf_putc(b, '{');
    dg_model_fields(b, &d->p, d->engine);
    buf_puts(b, "}}}");
}

static void render(const void *rstate, const struct hark_event *ev, struct buf *out,
                   unsigned *flags)
{
    const struct dgr *d = rstate;
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT:
        render_results(d, ev, out);
        break;
    case HARK_EVENT_SPEECH_STARTED:
        buf_puts(out, "{\"type\":\"SpeechStarted\",\"channel\":[0,1],\"timestamp\":");
        buf_json_num(out, ev->start);
        buf_putc(out, '}');
        break;
    case HARK_EVENT_UTTERANCE_END:
        buf_puts(out, "{\"type\":\"UtteranceEnd\",\"channel\":[0,1],\"last_word_end\":");
        buf_json_num(out, ev->end);
        buf_putc(out, '}');
        break;
    case HARK_EVENT_CLOSED:
        render_metadata(d, ev->audio_seconds, out);
        break;
    case HARK_EVENT_ERROR:
        /* Deepgram reports errors by close code, not in-band JSON. */
        if (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED)
            *flags |= MSG_FATAL;
        break;
    case HARK_EVENT_INTERRUPT:
    case HARK_EVENT_PROVIDER_FAILOVER: /* no Deepgram message for it */
    case HARK_EVENT_AUDIO_GAP:
        break;
    }
}

/* Deepgram's session defaults differ from hark's: interim results,
 * SpeechStarted and UtteranceEnd are opt-in. The session starts at the
 * upgrade, so a bad query is refused with HTTP 400 before it. */
static int dg_open(const struct dialect_ctx *cx, const struct dialect_req *rq, void **state,
                   struct dialect_out *out, char *err, size_t n)
{
    struct hark_options *o = NULL;
    struct dgc *c = NULL;
    struct dgr *r = NULL;
    int rc = hark_options_copy(&o, cx->defaults);
    if (rc || !(c = hark_calloc(1, sizeof *c)) || !(r = hark_calloc(1, sizeof *r))) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto fail;
    }
    hark_options_set(o, "interim_results", "false", NULL, 0);
    hark_options_set(o, "vad_events", "false", NULL, 0);
    hark_options_set(o, "utterance_end_ms", "0", NULL, 0);
    if ((rc = dg_apply_args(rq->args, rq->n_args, o, &r->p, cx->engines, cx->any_model, err, n)))
        goto fail;
    snprintf(r->request_id, sizeof r->request_id, "%s", rq->request_id);
    snprintf(r->engine, sizeof r->engine, "%s", cx->engine);
    dg_now_iso(r->created);
    c->streaming = 1;
    *state = c;
    da_start(out, o, r);
    return 0;
fail:
    hark_options_destroy(o);
    hark_free(c);
    hark_free(r);
    return rc;
}

static void dg_refuse(unsigned status, int err, const char *msg, struct buf *b,
                      struct dialect_headers *h)
{
    (void)status;
    char id[37];
    dg_uuid(id);
    buf_putc(b, '{');
    buf_json_key(b, "err_code");
    buf_json_str(b, err == HARK_E_AUTH    ? "INVALID_AUTH"
                    : err == HARK_E_BUSY  ? "SERVICE_UNAVAILABLE"
                    : err == HARK_E_LIMIT ? "TOO_MANY_REQUESTS"
                                          : "Bad Request");
    buf_json_key(b, "err_msg");
    buf_json_str(b, msg);
    buf_json_key(b, "request_id");
    buf_json_str(b, id);
    buf_putc(b, '}');
    /* dg-error carries the message too. Header values must be printable
     * ASCII (the message may quote what the client sent, e.g. a language
     * of raw bytes). */
    h->name[0] = "dg-error:";
    dialect_header_value(h->value[0], sizeof h->value[0], msg);
    h->name[1] = "dg-request-id:";
    snprintf(h->value[1], sizeof h->value[1], "%s", id);
    h->n = 2;
}

static int dg_text(void *state, const char *msg, size_t len, struct dialect_out *out)
{
    struct dgc *c = state;
    struct json *doc = NULL;
    if (json_parse(&doc, msg, len, NULL, 0))
        return 0; /* not JSON: ignored, as Deepgram does */
    const char *type = json_str(json_get(json_root(doc), "type"));
    if (!c->streaming || !type) {
        /* nothing to do */
    } else if (!strcmp(type, "Finalize")) {
        da_simple(out, DA_FINALIZE, 0);
    } else if (!strcmp(type, "CloseStream")) {
        c->streaming = 0;
        da_close(out, 1000, 0, "");
    }
    /* KeepAlive only refreshes the idle timer (done by the front end);
     * Configure and unknown types are accepted and ignored. */
    json_free(doc);
    return 0;
}

static int dg_binary(void *state, const uint8_t *data, size_t len, struct dialect_out *out)
{
    struct dgc *c = state;
    if (!c->streaming)
        return 0;
    if (len == 0) { /* legacy end of stream */
        c->streaming = 0;
        da_close(out, 1000, 0, "");
        return 0;
    }
    da_audio(out, data, len);
    return 0;
}

static void dg_signal(void *state, enum dialect_sig sig, int err, const char *msg,
                      struct dialect_out *out)
{
    struct dgc *c = state;
    (void)err;
    c->streaming = 0;
    switch (sig) {
    case DS_REFUSED: /* checked before the upgrade: only a race or no memory */
        da_close(out, 1011, 0, msg);
        break;
    case DS_OVERFLOW:
        /* Reading pauses before the session's buffer fills; a full one
         * means the client ignored that. */
        da_close(out, 1008, 0, "messages sent faster than they can be buffered");
        break;
    case DS_FIRST_TIMEOUT:
    case DS_IDLE:
        da_close(out, 1011, 0, NET0001);
        break;
    case DS_LENGTH:
        da_close(out, 4429, 0, "session length limit");
        break;
    case DS_FATAL:
        da_close(out, 1008, 0, DATA0000);
        break;
    case DS_SHUTDOWN:
        da_close(out, 1001, 0, "server shutting down");
        break;
    }
}

static void dg_destroy(void *state)
{
    hark_free(state);
}

const struct dialect_ops dialect_deepgram = {
    .name = "deepgram",
    .id_header = "dg-request-id:",
    .open = dg_open,
    .text = dg_text,
    .binary = dg_binary,
    .signal = dg_signal,
    .render = render,
    .refuse = dg_refuse,
    .destroy = dg_destroy,
};
