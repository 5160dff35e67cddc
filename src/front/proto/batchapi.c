/*
 * What the batch APIs share (batchapi.h): status codes, refusals, the
 * session options of a batch session.
 */
#include "front/proto/batchapi.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"

unsigned batchapi_status(int err)
{
    switch (err) {
    case HARK_E_BAD_AUDIO:
    case HARK_E_UNSUPPORTED:
    case HARK_E_BAD_OPTION:
    case HARK_E_INVAL:
    case HARK_E_PROTOCOL:
        return 400;
    case HARK_E_AUTH:
        return 401;
    case HARK_E_BUSY:
        return 503;
    default:
        return 500;
    }
}

int batchapi_refuse(struct batchapi_refusal *r, unsigned status, int err, const char *param,
                    const char *fmt, ...)
{
    if (r->status)
        return err;
    r->status = status;
    r->err = err;
    snprintf(r->param, sizeof r->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof r->msg, fmt, ap);
    va_end(ap);
    return err;
}

void batchapi_session_options(struct hark_options *o)
{
    /* Only finals matter: no partials or VAD events to render; words on. */
    hark_options_set(o, "interim_results", "false", NULL, 0);
    hark_options_set(o, "vad_events", "false", NULL, 0);
    hark_options_set(o, "utterance_end_ms", "0", NULL, 0);
    hark_options_set(o, "words", "true", NULL, 0);
}

void batchapi_audio_message(const char *msg, char *out, size_t n)
{
    /* The decoder's hint names native option values; each API says it in
     * its own terms. */
    snprintf(out, n, "%s", msg);
    char *cut = strstr(out, "; for raw audio");
    if (cut)
        *cut = 0;
    if (!out[0] && n) /* nothing but the hint: still say what went wrong */
        snprintf(out, n, "the audio could not be decoded");
}
