#include "front/proto/dg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "base/err.h"
#include "front/proto/dialect.h"

/* Deepgram's encodings and what hark decodes them as. Containerised ones
 * carry their own rate (sample_rate is not needed); "opus"/"ogg-opus" are
 * Ogg Opus, read like any container hark sniffs. */
static const struct {
    const char *dg, *hark;
    int container;
} encodings[] = {
    {"linear16", "pcm_s16le", 0}, {"mulaw", "mulaw", 0},   {"alaw", "alaw", 0},
    {"opus", "auto", 1},          {"ogg-opus", "auto", 1},
};

/* Appends a keyword or keyterm to the comma-separated vocabulary. A
 * keywords value may end in ":intensifier" (dropped: the engine has no
 * boost); keyterm values are taken whole. lws has already decoded %xx and
 * '+', so a literal '+' (sent as %2B) stays. Commas separate vocabulary
 * entries, so one inside a term becomes a space. */
static int add_vocab(char *vocab, size_t size, const char *key, const char *term, char *err,
                     size_t n)
{
    size_t len = strlen(term);
    if (!strcmp(key, "keywords")) {
        const char *colon = strrchr(term, ':');
        if (colon)
            len = (size_t)(colon - term);
    }
    size_t used = strlen(vocab);
    if (!len)
        return 0;
    if (used + len + 2 > size)
        return err_set(err, n, HARK_E_BAD_OPTION,
                       "%s: more than %zu bytes of keywords and keyterms", key, size - 1);
    if (used)
        vocab[used++] = ',';
    for (size_t i = 0; i < len; i++)
        vocab[used++] = term[i] == ',' ? ' ' : term[i];
    vocab[used] = 0;
    return 0;
}

int dg_apply_args(const char *const *args, size_t n_args, struct hark_options *o,
                  struct dg_params *p, const char *const *engines, int any_model, char *err,
                  size_t n)
{
    memset(p, 0, sizeof *p);
    char vocab[4096] = "";
    const char *sample_rate = NULL;
    int rc = 0, b;
    for (size_t i = 0; !rc && i < n_args; i++) {
        const char *k = args[i], *v = strchr(k, '=');
        if (!v)
            continue;
        size_t klen = (size_t)(v - k);
        v++;
#define IS(name) (klen == sizeof name - 1 && !memcmp(k, name, klen))
        if (IS("encoding")) {
            if (strlen(v) >= sizeof p->encoding)
                rc =
                    err_set(err, n, HARK_E_UNSUPPORTED, "encoding: '%.40s...' is not supported", v);
            else
                snprintf(p->encoding, sizeof p->encoding, "%s", v);
        } else if (IS("sample_rate")) {
            sample_rate = v;
        } else if (IS("channels")) {
            rc = dialect_set_option(o, "channels", v, "channels", err, n);
        } else if (IS("interim_results") || IS("vad_events")) {
            const char *name = IS("vad_events") ? "vad_events" : "interim_results";
            if (dialect_parse_bool(v, &b))
                rc = err_set(err, n, HARK_E_BAD_OPTION, "%s: '%.100s' is not true or false", name,
                             v);
            else {
                rc = dialect_set_option(o, name, b ? "true" : "false", name, err, n);
                if (name[0] == 'i')
                    p->interim_results = b;
                else
                    p->vad_events = b;
            }
        } else if (IS("endpointing")) {
            if (dialect_parse_bool(v, &b) == 0 && b == 0)
                rc = dialect_set_option(o, "endpointing_ms", "false", "endpointing", err, n);
            else
                rc = dialect_set_option(o, "endpointing_ms", v, "endpointing", err, n);
        } else if (IS("utterance_end_ms")) {
            rc = dialect_set_option(o, "utterance_end_ms", v, "utterance_end_ms", err, n);
            p->utterance_end_ms = atoi(v);
        } else if (IS("keywords") || IS("keyterm")) {
            rc = add_vocab(vocab, sizeof vocab, IS("keywords") ? "keywords" : "keyterm", v, err, n);
        } else if (IS("model")) {
            snprintf(p->model, sizeof p->model, "%s", v);
            /* An engine's name picks that engine (docs/deepgram.md); any
             * other name is Deepgram's (nova-3, ...): the server's engine,
             * and its model if that engine takes any (a provider's). */
            int engine = 0;
            for (int e = 0; engines && engines[e]; e++)
                if (strcmp(v, engines[e]) == 0) {
                    engine = 1;
                    rc = dialect_set_option(o, "engine", v, "model", err, n);
                }
            if (!engine && any_model && v[0])
                rc = dialect_set_option(o, "model", v, "model", err, n);
        } else if (IS("language")) {
            if (v[0]) /* empty = not given: the default */
                rc = dialect_set_option(o, "language", v, "language", err, n);
        } else if (IS("utterances")) {
            p->utterances = dialect_parse_bool(v, &b) == 0 && b;
        }
#undef IS
        /* everything else (punctuate, smart_format, diarize, tag, ...) is
         * accepted and ignored, as the docs say */
    }
    if (rc)
        return rc;
    if (p->encoding[0]) {
        size_t e = 0, ne = sizeof encodings / sizeof encodings[0];
        while (e < ne && strcasecmp(encodings[e].dg, p->encoding))
            e++;
        if (e == ne)
            return err_set(err, n, HARK_E_UNSUPPORTED,
                           "encoding: '%s' is not supported (supported: linear16, mulaw, alaw, "
                           "opus, ogg-opus; or omit encoding and send WAV, Ogg Opus or "
                           "WebM/Opus)",
                           p->encoding);
        if ((rc = dialect_set_option(o, "encoding", encodings[e].hark, "encoding", err, n)))
            return rc;
        if (encodings[e].container) {
            /* the container's header carries the rate */
        } else if (!sample_rate)
            return err_set(err, n, HARK_E_BAD_OPTION,
                           "sample_rate: required when encoding is given");
        else if ((rc = dialect_set_option(o, "sample_rate", sample_rate, "sample_rate", err, n)))
            return rc;
    } else if ((rc = dialect_set_option(o, "encoding", "auto", "encoding", err, n))) {
        return rc;
    }
    if (vocab[0] && (rc = dialect_set_option(o, "vocabulary", vocab, "keywords", err, n)))
        return rc;
    /* echoed in results: as the session will use it (the default if not given) */
    hark_options_get(o, "language", p->language, sizeof p->language);
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
    if (p && p->language[0]) {
        buf_json_key(b, "language");
        buf_json_str(b, p->language);
    }
}

void dg_languages(struct buf *b, const struct dg_params *p)
{
    buf_json_key(b, "languages");
    buf_putc(b, '[');
    if (p->language[0])
        buf_json_str(b, p->language);
    buf_putc(b, ']');
}
