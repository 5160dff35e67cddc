/* libFuzzer target for the deepgram engine's message parser (what a
 * Deepgram-compatible live endpoint sends: untrusted network input).
 * Arbitrary bytes are parsed; on success Results have a text without
 * leading, trailing or doubled spaces, every word is non-empty, times are
 * finite with start <= end and starts never go back, confidences are within
 * 0..1, an Error has a terminated message. Everything is freed. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engines/deepgram/dg_reply.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dg_reply r;
    char err[256];
    int rc = dg_reply_parse(&r, (const char *)data, size, err, sizeof err);
    if (rc) {
        CHECK(rc == HARK_E_PROTOCOL || rc == HARK_E_LIMIT || rc == HARK_E_NOMEM);
        CHECK(r.text == NULL && r.n_words == 0);
        CHECK(memchr(err, 0, sizeof err));
        return 0;
    }
    CHECK(memchr(r.message, 0, sizeof r.message));
    CHECK(isfinite(r.start) && r.start >= 0 && isfinite(r.duration) && r.duration >= 0);
    CHECK(r.confidence >= 0 && r.confidence <= 1);
    if (r.type == DG_RESULTS) {
        CHECK(r.text);
        size_t n = strlen(r.text);
        CHECK(!n || (r.text[0] != ' ' && r.text[n - 1] != ' ' && !strstr(r.text, "  ")));
    }
    CHECK(r.n_words <= DG_REPLY_MAX_WORDS);
    for (size_t i = 0; i < r.n_words; i++) {
        const struct engine_word *w = &r.words[i];
        CHECK(w->word && w->word[0] && w->word[0] != ' ');
        CHECK(isfinite(w->start) && isfinite(w->end) && w->start >= 0 && w->end >= w->start);
        CHECK(!i || w->start >= r.words[i - 1].start);
        CHECK(w->confidence >= 0 && w->confidence <= 1);
    }
    dg_reply_clear(&r);
    return 0;
}
