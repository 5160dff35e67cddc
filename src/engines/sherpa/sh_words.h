/*
 * Words from a sherpa-onnx result's tokens and token times (seconds from the
 * stream's start): a token starting with U+2581 (BPE's word marker) starts
 * a word, and so does every CJK character (U+3000..U+9FFF, U+F900..U+FAFF),
 * which is a word of its own; other tokens continue the word before them.
 * A word starts at its first token's time and ends where the next word
 * starts; the last ends SH_WORDS_LAST_S after its last token. Tokens that
 * are only the marker make no word; times that go backwards are clamped so
 * words never overlap. At most SH_WORDS_MAX words.
 *
 * Ownership: sh_words_build fills *out with storage it owns (one block for
 * the strings, one for the array); sh_words_clear frees both, also after a
 * failure. Reentrant.
 */
#ifndef HARK_ENGINES_SHERPA_SH_WORDS_H
#define HARK_ENGINES_SHERPA_SH_WORDS_H

#include <stddef.h>

#include "engines/engine.h"

#define SH_WORDS_LAST_S 0.1
#define SH_WORDS_MAX 4096

struct sh_words {
    struct engine_word *words; /* n, word strings in text */
    size_t n;
    char *text;
};

/* tokens[i] may be NULL (treated as ""); 0 or HARK_E_NOMEM. */
int sh_words_build(struct sh_words *out, const char *const *tokens, const float *times,
                   size_t count);
void sh_words_clear(struct sh_words *w);

#endif
