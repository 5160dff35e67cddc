/* The sherpa engine's words from tokens (src/engines/sherpa/sh_words.c):
 * BPE pieces joined at the word marker, CJK characters as words, times
 * from the tokens and never overlapping, bare markers, NULL tokens, the
 * word cap, no leaks. Token lists are the shapes sherpa-onnx's English
 * zipformer and bilingual paraformer results have. */
#include "check.h"
#include "engines/sherpa/sh_words.h"

#define M "\xe2\x96\x81" /* U+2581, BPE's word marker */

static void test_bpe_pieces(void)
{
    const char *tok[] = {M "HE", "LL", "O", M "WOR", "LD", M "A"};
    const float t[] = {0.40f, 0.48f, 0.52f, 0.80f, 0.92f, 1.30f};
    struct sh_words w;
    ASSERT_OK(sh_words_build(&w, tok, t, 6));
    ASSERT_EQ(w.n, 3);
    ASSERT_STR_EQ(w.words[0].word, "HELLO");
    ASSERT_STR_EQ(w.words[1].word, "WORLD");
    ASSERT_STR_EQ(w.words[2].word, "A");
    ASSERT_NEAR(w.words[0].start, 0.40, 1e-6);
    ASSERT_NEAR(w.words[0].end, 0.80, 1e-6); /* where the next word starts */
    ASSERT_NEAR(w.words[1].end, 1.30, 1e-6);
    ASSERT_NEAR(w.words[2].end, 1.30 + SH_WORDS_LAST_S, 1e-6);
    ASSERT_NEAR(w.words[2].confidence, 1.0, 0);
    sh_words_clear(&w);
}

static void test_cjk_and_mixed(void)
{
    /* 你好 then an English BPE word, as a bilingual model gives them */
    const char *tok[] = {"\xe4\xbd\xa0", "\xe5\xa5\xbd", M "OK", "AY"};
    const float t[] = {0.1f, 0.3f, 0.6f, 0.7f};
    struct sh_words w;
    ASSERT_OK(sh_words_build(&w, tok, t, 4));
    ASSERT_EQ(w.n, 3);
    ASSERT_STR_EQ(w.words[0].word, "\xe4\xbd\xa0");
    ASSERT_STR_EQ(w.words[1].word, "\xe5\xa5\xbd");
    ASSERT_STR_EQ(w.words[2].word, "OKAY");
    sh_words_clear(&w);
    /* a Latin piece right after a CJK character starts its own word */
    const char *tok2[] = {"\xe4\xbd\xa0", "AI"};
    ASSERT_OK(sh_words_build(&w, tok2, t, 2));
    ASSERT_EQ(w.n, 2);
    ASSERT_STR_EQ(w.words[1].word, "AI");
    sh_words_clear(&w);
}

static void test_bare_markers_nulls_and_time_order(void)
{
    const char *tok[] = {M, "HI", NULL, "", M, M "YOU", "S"};
    const float t[] = {0.5f, 0.6f, 0.7f, 0.8f, 0.9f, 0.4f, 1.0f};
    struct sh_words w;
    ASSERT_OK(sh_words_build(&w, tok, t, 7));
    ASSERT_EQ(w.n, 2);
    ASSERT_STR_EQ(w.words[0].word, "HI");
    ASSERT_STR_EQ(w.words[1].word, "YOUS");
    ASSERT_NEAR(w.words[0].start, 0.6, 1e-6);
    /* 0.4 < 0.6: clamped, so the words do not overlap or run backwards */
    ASSERT_GE(w.words[1].start, w.words[0].start);
    ASSERT_LE(w.words[0].end, w.words[1].start);
    ASSERT_GE(w.words[1].end, w.words[1].start);
    sh_words_clear(&w);
    ASSERT_OK(sh_words_build(&w, tok, t, 0));
    ASSERT_EQ(w.n, 0);
    sh_words_clear(&w);
}

static void test_word_cap(void)
{
    enum { N = SH_WORDS_MAX + 10 };
    static const char *tok[N];
    static float t[N];
    for (int i = 0; i < N; i++) {
        tok[i] = M "W";
        t[i] = (float)i * 0.01f;
    }
    struct sh_words w;
    ASSERT_OK(sh_words_build(&w, tok, t, N));
    ASSERT_EQ(w.n, SH_WORDS_MAX);
    ASSERT_STR_EQ(w.words[SH_WORDS_MAX - 1].word, "W");
    sh_words_clear(&w);
}

int main(void)
{
    RUN(test_bpe_pieces);
    RUN(test_cjk_and_mixed);
    RUN(test_bare_markers_nulls_and_time_order);
    RUN(test_word_cap);
    return 0;
}
