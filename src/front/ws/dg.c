#include "front/ws/dg.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/err.h"

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0")) {
        *out = 0;
        return 0;
    }
    return -1;
}

/* Deepgram's encodings and what hark decodes them as. */
static const struct {
    const char *dg, *hark;
} encodings[] = {
    {"linear16", "pcm_s16le"},
    {"mulaw", "mulaw"},
    {"alaw", "alaw"},
};

static int set(struct hark_options *o, const char *name, const char *value, const char *param,
               char *err, size_t n)
{
    char why[400];
    int rc = hark_options_set(o, name, value, why, sizeof why);
    if (rc)
        return err_set(err, n, rc, "%s: %s", param, why);
    return 0;
}

/* Appends a keyword/keyterm to the vocabulary, dropping a ":intensifier". */
static void add_vocab(char *vocab, size_t size, const char *term)
{
    char w[256];
    snprintf(w, sizeof w, "%s", term);
    char *colon = strrchr(w, ':');
    if (colon)
        *colon = 0;
    for (char *p = w; *p; p++)
        if (*p == ',' || *p == '+')
            *p = ' ';
    if (!w[0] || strlen(vocab) + strlen(w) + 2 >= size)
        return;
    if (vocab[0])
        strcat(vocab, ",");
    strcat(vocab, w);
}

int dg_apply_query(struct lws *wsi, struct hark_options *o, struct dg_params *p, char *err,
                   size_t n)
{
    memset(p, 0, sizeof *p);
    char arg[2048], vocab[4096] = "", sample_rate[16] = "";
    int rc = 0, b;
    for (int i = 0;
         !rc && lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, i) >= 0; i++) {
        char *v = strchr(arg, '=');
        if (!v)
            continue;
        *v++ = 0;
        /* '+' means space in query strings (Python's urlencode sends it) */
        for (char *q = v; *q; q++)
            if (*q == '+')
                *q = ' ';
        const char *k = arg;
        if (!strcmp(k, "encoding")) {
            snprintf(p->encoding, sizeof p->encoding, "%s", v);
        } else if (!strcmp(k, "sample_rate")) {
            snprintf(sample_rate, sizeof sample_rate, "%s", v);
        } else if (!strcmp(k, "channels")) {
            rc = set(o, "channels", v, k, err, n);
        } else if (!strcmp(k, "interim_results") || !strcmp(k, "vad_events")) {
            if (parse_bool(v, &b))
                rc = err_set(err, n, HARK_E_BAD_OPTION, "%s: '%s' is not true or false", k, v);
            else {
                rc = set(o, k, b ? "true" : "false", k, err, n);
                if (k[0] == 'i')
                    p->interim_results = b;
                else
                    p->vad_events = b;
            }
        } else if (!strcmp(k, "endpointing")) {
            if (parse_bool(v, &b) == 0 && b == 0)
                rc = set(o, "endpointing_ms", "false", k, err, n);
            else
                rc = set(o, "endpointing_ms", v, k, err, n);
        } else if (!strcmp(k, "utterance_end_ms")) {
            rc = set(o, "utterance_end_ms", v, k, err, n);
            p->utterance_end_ms = atoi(v);
        } else if (!strcmp(k, "keywords") || !strcmp(k, "keyterm")) {
            add_vocab(vocab, sizeof vocab, v);
        } else if (!strcmp(k, "model")) {
            snprintf(p->model, sizeof p->model, "%s", v);
        } else if (!strcmp(k, "language")) {
            snprintf(p->language, sizeof p->language, "%s", v);
            rc = set(o, "language", v, k, err, n);
        } else if (!strcmp(k, "utterances")) {
            p->utterances = parse_bool(v, &b) == 0 && b;
        }
        /* everything else (punctuate, smart_format, diarize, tag, ...) is
         * accepted and ignored, as the docs say */
    }
    if (rc)
        return rc;
    if (p->encoding[0]) {
        const char *h = NULL;
        for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++)
            if (!strcasecmp(encodings[i].dg, p->encoding))
                h = encodings[i].hark;
        if (!h)
            return err_set(err, n, HARK_E_UNSUPPORTED,
                           "encoding: '%s' is not supported (supported: linear16, mulaw, alaw; "
                           "or omit encoding and send WAV)",
                           p->encoding);
        if ((rc = set(o, "encoding", h, "encoding", err, n)))
            return rc;
        if (!sample_rate[0])
            return err_set(err, n, HARK_E_BAD_OPTION,
                           "sample_rate: required when encoding is given");
        if ((rc = set(o, "sample_rate", sample_rate, "sample_rate", err, n)))
            return rc;
    } else if ((rc = set(o, "encoding", "wav", "encoding", err, n))) {
        return rc;
    }
    if (vocab[0] && (rc = set(o, "vocabulary", vocab, "keywords", err, n)))
        return rc;
    return 0;
}

void dg_uuid(char out[37])
{
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
        memset(r, 0x5a, sizeof r);
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0],
             r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
}

void dg_now_iso(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, 32 - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

const char *dg_model_uuid(void)
{
    /* Stable per engine build, so clients that key on it see one model. */
    return "6861726b-0000-4000-8000-706f636b6574";
}

void dg_model_fields(struct buf *b, const struct dg_params *p, const char *engine)
{
    buf_json_key(b, "name");
    buf_json_str(b, p && p->model[0] ? p->model : "general");
    buf_json_key(b, "version");
    buf_json_str(b, hark_version());
    buf_json_key(b, "arch");
    buf_json_str(b, engine);
}
