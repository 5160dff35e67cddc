/* Words from sherpa-onnx tokens (see sh_words.h). */
#include "engines/sherpa/sh_words.h"

#include <string.h>

#include "hark/hark.h"
#include "base/mem.h"

static const char marker[] = "\xe2\x96\x81"; /* U+2581 */

/* A CJK ideograph or kana: three UTF-8 bytes in U+3000..U+9FFF or U+F900..U+FAFF. */
static int is_cjk(const char *t)
{
    const unsigned char *u = (const unsigned char *)t;
    if ((u[0] & 0xF0) != 0xE0 || (u[1] & 0xC0) != 0x80 || (u[2] & 0xC0) != 0x80)
        return 0;
    unsigned cp = ((u[0] & 0x0Fu) << 12) | ((u[1] & 0x3Fu) << 6) | (u[2] & 0x3Fu);
    return (cp >= 0x3000 && cp <= 0x9FFF) || (cp >= 0xF900 && cp <= 0xFAFF);
}

void sh_words_clear(struct sh_words *w)
{
    hark_free(w->words);
    hark_free(w->text);
    memset(w, 0, sizeof *w);
}

int sh_words_build(struct sh_words *out, const char *const *tokens, const float *times,
                   size_t count)
{
    memset(out, 0, sizeof *out);
    if (!count)
        return 0;
    size_t bytes = 1;
    for (size_t i = 0; i < count; i++)
        bytes += strlen(tokens[i] ? tokens[i] : "") + 1;
    size_t cap = count < SH_WORDS_MAX ? count : SH_WORDS_MAX;
    out->words = hark_calloc(cap, sizeof *out->words);
    out->text = hark_malloc(bytes);
    if (!out->words || !out->text) {
        sh_words_clear(out);
        return HARK_E_NOMEM;
    }
    char *w = out->text;
    size_t n = 0;
    int prev_cjk = 0;
    for (size_t i = 0; i < count; i++) {
        const char *tok = tokens[i] ? tokens[i] : "";
        int starts = !strncmp(tok, marker, 3);
        if (starts)
            tok += 3;
        if (!*tok)
            continue; /* a bare marker: the next token starts the word */
        int cjk = is_cjk(tok);
        /* A bare marker before this token also starts a word. */
        int after_marker = i > 0 && tokens[i - 1] && !strcmp(tokens[i - 1], marker);
        if (starts || after_marker || n == 0 || cjk || prev_cjk) {
            if (n == cap)
                break;
            if (n)
                *w++ = '\0';
            double t = times[i];
            if (n && t < out->words[n - 1].start)
                t = out->words[n - 1].start; /* never backwards */
            out->words[n] = (struct engine_word){.word = w, .start = t, .confidence = 1.0f};
            n++;
        }
        size_t k = strlen(tok);
        memcpy(w, tok, k);
        w += k;
        double end = times[i] + SH_WORDS_LAST_S;
        out->words[n - 1].end = end > out->words[n - 1].start ? end : out->words[n - 1].start;
        prev_cjk = cjk;
    }
    *w = '\0';
    for (size_t i = 0; i + 1 < n; i++)
        out->words[i].end = out->words[i + 1].start;
    out->n = n;
    return 0;
}
