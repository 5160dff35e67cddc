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
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#include "base/json.h"
#include "base/mem.h"
#include "front/ws/dg.h"
#include "front/ws/wsfe.h"
#include "session/event_json.h"

#define NET0001                                                                                    \
    "NET-0001: hark did not receive audio data or a text message within the timeout window"
#define DATA0000 "DATA-0000: payload cannot be decoded as audio"

/* Immutable once the session exists: read by workers when rendering. */
struct dgst {
    struct wsfe *fe;
    struct dg_params p;
    char request_id[37];
    char created[32];
    const char *engine;
};

static void render_results(struct dgst *d, const struct hark_event *ev, struct buf *b)
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

static void render_metadata(struct dgst *d, double duration, struct buf *b)
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

static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    struct dgst *d = user;
    wsfe_count_event(d->fe, ev);
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
        break;
    }
}

/* Deepgram's session defaults differ from hark's: interim results,
 * SpeechStarted and UtteranceEnd are opt-in. */
static int build_options(struct wsfe *fe, struct lws *wsi, struct hark_options **out,
                         struct dg_params *p, char *err, size_t n)
{
    struct hark_options *o;
    int rc = hark_options_copy(&o, wsfe_defaults(fe));
    if (rc)
        return err_set(err, n, rc, "out of memory");
    hark_options_set(o, "interim_results", "false", NULL, 0);
    hark_options_set(o, "vad_events", "false", NULL, 0);
    hark_options_set(o, "utterance_end_ms", "0", NULL, 0);
    size_t n_args;
    char **args = http_query_args(wsi, &n_args);
    rc = args ? dg_apply_args((const char *const *)args, n_args, o, p, err, n)
              : err_set(err, n, HARK_E_NOMEM, "out of memory");
    hark_free(args);
    if (!rc)
        rc = hark_engine_check_options(wsfe_engine(fe), o, err, n);
    if (rc) {
        hark_options_destroy(o);
        return rc;
    }
    *out = o;
    return 0;
}

static void dg_refuse(struct wsfe *fe, struct lws *wsi, unsigned status, int err, const char *msg)
{
    char id[37];
    dg_uuid(id);
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    buf_json_key(&b, "err_code");
    buf_json_str(&b, err == HARK_E_AUTH    ? "INVALID_AUTH"
                     : err == HARK_E_BUSY  ? "SERVICE_UNAVAILABLE"
                     : err == HARK_E_LIMIT ? "TOO_MANY_REQUESTS"
                                           : "Bad Request");
    buf_json_key(&b, "err_msg");
    buf_json_str(&b, msg);
    buf_json_key(&b, "request_id");
    buf_json_str(&b, id);
    buf_putc(&b, '}');
    /* dg-error carries the message too. Header values must be printable
     * ASCII (the message may quote what the client sent, e.g. a language
     * of raw bytes): other bytes are written as %XX, like in the URL. */
    char hdr[300];
    size_t k = 0;
    for (const unsigned char *q = (const unsigned char *)msg; *q && k + 4 < sizeof hdr; q++) {
        if (*q >= 0x20 && *q < 0x7f)
            hdr[k++] = (char)*q;
        else
            k += (size_t)snprintf(hdr + k, sizeof hdr - k, "%%%02X", *q);
    }
    hdr[k] = 0;
    const char *extra[] = {"dg-error:", hdr, "dg-request-id:", id, NULL};
    if (!b.oom)
        http_respond(wsi, status, "application/json", b.data, b.len, extra);
    buf_deinit(&b);
}

/* Before the upgrade: parameters and capacity, so a client learns of a bad
 * request or a full server from an HTTP status rather than a dropped socket. */
static int dg_check(struct wsfe *fe, struct lws *wsi)
{
    struct hark_options *o = NULL;
    struct dg_params p;
    char err[512];
    int rc = build_options(fe, wsi, &o, &p, err, sizeof err);
    hark_options_destroy(o);
    if (rc) {
        dg_refuse(fe, wsi, HTTP_STATUS_BAD_REQUEST, rc, err);
        return 1;
    }
    if ((rc = wsfe_admit(fe, err, sizeof err))) {
        dg_refuse(fe, wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, HARK_E_BUSY, err);
        return 1;
    }
    return 0;
}

static int dg_open(struct wsconn *c)
{
    struct wsfe *fe = wsconn_fe(c);
    struct dgst *d = hark_calloc(1, sizeof *d);
    if (!d)
        return HARK_E_NOMEM;
    c->dstate = d;
    d->fe = fe;
    d->engine = hark_engine_get_name(wsfe_engine(fe));
    snprintf(d->request_id, sizeof d->request_id, "%s", c->request_id);
    dg_now_iso(d->created);
    struct hark_options *o = NULL;
    char err[512];
    int rc = build_options(fe, c->wsi, &o, &d->p, err, sizeof err);
    if (!rc)
        rc = wsconn_start(c, o, d, err, sizeof err);
    hark_options_destroy(o);
    if (rc) {
        /* checked before the upgrade, so only a race or no memory gets here */
        wsconn_close_after(c, 1011, err);
    }
    return 0;
}

static int dg_text(struct wsconn *c, const char *msg, size_t len)
{
    struct json *doc = NULL;
    if (json_parse(&doc, msg, len, NULL, 0))
        return 0; /* not JSON: ignored, as Deepgram does */
    const char *type = json_str(json_get(json_root(doc), "type"));
    if (c->st != WC_STREAMING || !type) {
        /* nothing to do */
    } else if (!strcmp(type, "Finalize")) {
        /* Reading pauses before the session's buffer fills; a full one
         * means the client ignored that, as for audio. */
        if (chan_post_finalize(c->chan))
            wsconn_close_after(c, 1008, "messages sent faster than they can be buffered");
    } else if (!strcmp(type, "CloseStream")) {
        wsconn_close_after(c, 1000, "");
    }
    /* KeepAlive only refreshes the idle timer (done by the server);
     * Configure and unknown types are accepted and ignored. */
    json_free(doc);
    return 0;
}

static int dg_binary(struct wsconn *c, const uint8_t *data, size_t len)
{
    if (c->st != WC_STREAMING)
        return 0;
    if (len == 0) { /* legacy end of stream */
        wsconn_close_after(c, 1000, "");
        return 0;
    }
    if (wsconn_post_audio(c, data, len))
        wsconn_close_after(c, 1008, "audio sent faster than it can be buffered");
    return 0;
}

static void dg_idle(struct wsconn *c)
{
    wsconn_close_after(c, 1011, NET0001);
}

static void dg_shutdown(struct wsconn *c)
{
    wsconn_close_after(c, 1001, "server shutting down");
}

static void dg_fatal(struct wsconn *c)
{
    wsconn_close_after(c, 1008, DATA0000);
}

static void dg_destroy(struct wsconn *c)
{
    if (!c->dstate_owned)
        hark_free(c->dstate);
    c->dstate = NULL;
}

const struct dialect_ops dialect_deepgram = {
    .name = "deepgram",
    .open = dg_open,
    .text = dg_text,
    .binary = dg_binary,
    .render = render,
    .idle = dg_idle,
    .shutdown = dg_shutdown,
    .fatal = dg_fatal,
    .destroy = dg_destroy,
    .check = dg_check,
    .refuse = dg_refuse,
};
