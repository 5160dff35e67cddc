/*
 * Seed 002's relay shape on /ws/transcribe (docs/seeds.md): the WebSocket a
 * small relay server gives its browser clients, so a client written against
 * such a relay (seed 002's TranscriptionClient) talks to hark unchanged.
 *
 *   query parameters  -> Deepgram's (dg.c): encoding + sample_rate (+
 *                        channels) for raw audio; none = a container (WAV,
 *                        Ogg Opus, WebM/Opus) sniffed from its bytes
 *   binary audio      -> feed; an empty binary message ends the stream
 *                        (the relay's b""): the last finals, then close 1000
 *   events            -> {"transcript","is_final","speech_final"} for every
 *                        transcript with text (the relay forwards no empty
 *                        one); errors as {"error":code,"message"}
 *   text              -> {"type":"finalize"} / {"type":"close"} (also
 *                        Deepgram's Finalize / CloseStream); others ignored
 *
 * The session starts at the upgrade (a bad query gets HTTP 400 before it),
 * with the server's defaults: interim results on unless the query says
 * interim_results=false. Close codes are the native protocol's.
 */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "front/proto/dg.h"
#include "front/proto/dialect.h"

struct relay {
    int streaming;
};

static void render(const void *rstate, const struct hark_event *ev, struct buf *out,
                   unsigned *flags)
{
    (void)rstate;
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT:
        if (!ev->text[0])
            break;
        buf_putc(out, '{');
        buf_json_key(out, "transcript");
        buf_json_str(out, ev->text);
        buf_json_key(out, "is_final");
        buf_puts(out, ev->is_final ? "true" : "false");
        buf_json_key(out, "speech_final");
        buf_puts(out, ev->speech_final ? "true" : "false");
        buf_putc(out, '}');
        break;
    case HARK_EVENT_ERROR:
        buf_putc(out, '{');
        buf_json_key(out, "error");
        buf_json_str(out, hark_err_code(ev->code));
        buf_json_key(out, "message");
        buf_json_str(out, ev->message ? ev->message : "");
        buf_putc(out, '}');
        if (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED)
            *flags |= MSG_FATAL;
        break;
    default:
        break;
    }
}

static int relay_open(const struct dialect_ctx *cx, const struct dialect_req *rq, void **state,
                      struct dialect_out *out, char *err, size_t n)
{
    struct hark_options *o = NULL;
    struct relay *s = NULL;
    struct dg_params p;
    int rc = hark_options_copy(&o, cx->defaults);
    if (rc || !(s = hark_calloc(1, sizeof *s))) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = dg_apply_args(rq->args, rq->n_args, o, &p, cx->engines, cx->any_model, err, n)))
        goto fail;
    s->streaming = 1;
    *state = s;
    da_start(out, o, NULL);
    return 0;
fail:
    hark_options_destroy(o);
    hark_free(s);
    return rc;
}

static int relay_text(void *state, const char *msg, size_t len, struct dialect_out *out)
{
    struct relay *s = state;
    struct json *doc = NULL;
    if (!s->streaming || json_parse(&doc, msg, len, NULL, 0))
        return 0;
    const char *type = json_str(json_get(json_root(doc), "type"));
    if (!type) {
        /* ignored */
    } else if (!strcmp(type, "finalize") || !strcmp(type, "Finalize")) {
        da_simple(out, DA_FINALIZE, 0);
    } else if (!strcmp(type, "close") || !strcmp(type, "CloseStream")) {
        s->streaming = 0;
        da_close(out, 1000, 0, "");
    }
    json_free(doc);
    return 0;
}

static int relay_binary(void *state, const uint8_t *data, size_t len, struct dialect_out *out)
{
    struct relay *s = state;
    if (!s->streaming)
        return 0;
    if (!len) {
        s->streaming = 0;
        da_close(out, 1000, 0, "");
    } else {
        da_audio(out, data, len);
    }
    return 0;
}

static void relay_signal(void *state, enum dialect_sig sig, int err, const char *msg,
                         struct dialect_out *out)
{
    struct relay *s = state;
    s->streaming = 0;
    switch (sig) {
    case DS_REFUSED:
        da_error(out, err, "%s", msg);
        da_close(out, err == HARK_E_BUSY ? 1013 : 1011, 0, err == HARK_E_BUSY ? "busy" : "");
        break;
    case DS_OVERFLOW:
        da_error(out, HARK_E_LIMIT,
                 "session buffer full (%s); the client sends faster than allowed", msg);
        da_close(out, 4429, 0, "buffer overflow");
        break;
    case DS_FIRST_TIMEOUT:
    case DS_IDLE:
        da_error(out, HARK_E_TIMEOUT, "no audio received within the timeout");
        da_close(out, 4408, 0, "idle timeout");
        break;
    case DS_LENGTH:
        da_error(out, HARK_E_LIMIT, "%s", msg);
        da_close(out, 4429, 0, "session length limit");
        break;
    case DS_FATAL:
        da_close(out, 4415, 0, "undecodable audio");
        break;
    case DS_SHUTDOWN:
        da_close(out, 1001, 0, "server shutting down");
        break;
    }
}

static void relay_destroy(void *state)
{
    hark_free(state);
}

const struct dialect_ops dialect_relay = {
    .name = "relay",
    .open = relay_open,
    .text = relay_text,
    .binary = relay_binary,
    .signal = relay_signal,
    .render = render,
    .destroy = relay_destroy,
};
