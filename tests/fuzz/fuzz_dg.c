/* libFuzzer target for the Deepgram query parameters (WebSocket /v1/listen
 * and POST /v1/listen): dg_apply_args maps untrusted "key=value" arguments
 * onto session options. Input: the query string after lws's decoding, one
 * argument per '&'-separated piece (bytes of any value, NULs end a piece
 * early, as they would a C string from lws). Whatever the bytes: the result
 * is 0 or a typed error whose message starts with a parameter's name; on
 * success the options read back and the echoed language is never empty. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "front/proto/dg.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static const char *const params[] = {
    "encoding",         "sample_rate", "channels", "interim_results", "vad_events", "endpointing",
    "utterance_end_ms", "keywords",    "keyterm",  "language",        "model",      "utterances"};

static int names_a_parameter(const char *err)
{
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++) {
        size_t n = strlen(params[i]);
        if (!strncmp(err, params[i], n) && err[n] == ':')
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    const char **args = malloc((size + 1) * sizeof *args);
    if (!buf || !args)
        goto out;
    memcpy(buf, data, size);
    buf[size] = 0;
    size_t n = 0;
    for (char *p = buf;;) {
        args[n++] = p;
        char *amp = memchr(p, '&', (size_t)(buf + size - p));
        if (!amp)
            break;
        *amp = 0;
        p = amp + 1;
    }

    struct hark_options *o = NULL;
    CHECK(hark_options_create(&o) == 0);
    struct dg_params p;
    char err[512] = "";
    int rc = dg_apply_args(args, n, o, &p, NULL, (int)(size & 1), err, sizeof err);
    if (rc) {
        CHECK(rc == HARK_E_BAD_OPTION || rc == HARK_E_UNSUPPORTED || rc == HARK_E_LIMIT);
        CHECK(names_a_parameter(err));
    } else {
        char v[4096];
        CHECK(hark_options_get(o, "encoding", v, sizeof v) == 0);
        CHECK(hark_options_get(o, "vocabulary", v, sizeof v) == 0);
        CHECK(p.language[0] != 0);
        CHECK(memchr(p.model, 0, sizeof p.model) && memchr(p.encoding, 0, sizeof p.encoding));
    }
    hark_options_destroy(o);
out:
    free(args);
    free(buf);
    return 0;
}
