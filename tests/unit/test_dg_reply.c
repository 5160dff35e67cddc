/* The deepgram engine's message parser (src/engines/deepgram/dg_reply.c):
 * Results with words (punctuated form first), interim and finalize flags,
 * other message types, provider errors and malformed messages as typed
 * errors, no leaks on any path. Inputs are copied into exact-size heap
 * blocks so ASan sees any read past len. */
#include "base/buf.h"
#include "base/mem.h"
#include "check.h"
#include "engines/deepgram/dg_reply.h"

static char errbuf[256];

static int parse(struct dg_reply *r, const char *text)
{
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    ASSERT(copy);
    memcpy(copy, text, n);
    int rc = dg_reply_parse(r, copy, n, errbuf, sizeof errbuf);
    free(copy);
    return rc;
}

static void test_results(void)
{
    struct dg_reply r;
    ASSERT_OK(parse(&r, "{\"type\":\"Results\",\"channel_index\":[0,1],\"duration\":1.5,"
                        "\"start\":3.25,\"is_final\":true,\"speech_final\":false,"
                        "\"from_finalize\":true,\"channel\":{\"alternatives\":[{"
                        "\"transcript\":\"  hello \\n world \",\"confidence\":0.9,\"words\":["
                        "{\"word\":\"hello\",\"start\":3.3,\"end\":3.6,\"confidence\":0.8,"
                        "\"punctuated_word\":\"Hello\"},"
                        "{\"word\":\"world\",\"start\":3.1,\"end\":3.0,\"confidence\":7}]}]}}"));
    ASSERT_EQ(r.type, DG_RESULTS);
    ASSERT_EQ(r.is_final, 1);
    ASSERT_EQ(r.speech_final, 0);
    ASSERT_EQ(r.from_finalize, 1);
    ASSERT(r.start == 3.25 && r.duration == 1.5);
    ASSERT_STR_EQ(r.text, "hello world");
    ASSERT_EQ(r.n_words, 2);
    ASSERT_STR_EQ(r.words[0].word, "Hello");
    ASSERT(r.words[0].confidence > 0.79f && r.words[0].confidence < 0.81f);
    /* times kept monotonic, start <= end, a confidence out of 0..1 is 1 */
    ASSERT(r.words[1].start == 3.3 && r.words[1].end == 3.3);
    ASSERT(r.words[1].confidence == 1.0f);
    dg_reply_clear(&r);

    ASSERT_OK(parse(&r, "{\"type\":\"Results\",\"is_final\":false,\"channel\":{\"alternatives\":"
                        "[{\"transcript\":\"\"}]}}"));
    ASSERT_EQ(r.type, DG_RESULTS);
    ASSERT_EQ(r.is_final, 0);
    ASSERT_STR_EQ(r.text, "");
    ASSERT_EQ(r.n_words, 0);
    dg_reply_clear(&r);
}

static void test_other_types(void)
{
    struct dg_reply r;
    ASSERT_OK(parse(&r, "{\"type\":\"Metadata\",\"request_id\":\"x\"}"));
    ASSERT_EQ(r.type, DG_OTHER);
    ASSERT_EQ(r.text, NULL);
    dg_reply_clear(&r);
    ASSERT_OK(parse(&r, "{\"type\":\"SpeechStarted\",\"timestamp\":1}"));
    ASSERT_EQ(r.type, DG_OTHER);
    dg_reply_clear(&r);
    ASSERT_OK(parse(&r, "{\"type\":\"Error\",\"description\":\"bad audio\"}"));
    ASSERT_EQ(r.type, DG_ERROR);
    ASSERT_STR_EQ(r.message, "bad audio");
    dg_reply_clear(&r);
}

static void test_errors(void)
{
    struct dg_reply r;
    ASSERT_EQ(parse(&r, "not json"), HARK_E_PROTOCOL);
    ASSERT(strstr(errbuf, "not JSON"));
    ASSERT_EQ(parse(&r, "{\"channel\":{}}"), HARK_E_PROTOCOL);
    ASSERT(strstr(errbuf, "no \"type\""));
    ASSERT_EQ(parse(&r, "{\"type\":\"Results\",\"channel\":{\"alternatives\":[]}}"),
              HARK_E_PROTOCOL);
    ASSERT(strstr(errbuf, "without a transcript"));
    ASSERT_EQ(r.text, NULL);
    ASSERT_EQ(parse(&r, ""), HARK_E_PROTOCOL);
}

static void test_many_words(void)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"type\":\"Results\",\"channel\":{\"alternatives\":[{\"transcript\":\"w\","
                 "\"words\":[");
    for (int i = 0; i < DG_REPLY_MAX_WORDS + 10; i++)
        buf_printf(&b, "%s{\"word\":\"w\",\"start\":%d,\"end\":%d}", i ? "," : "", i, i);
    buf_puts(&b, "]}]}}");
    struct dg_reply r;
    ASSERT_OK(dg_reply_parse(&r, b.data, b.len, errbuf, sizeof errbuf));
    ASSERT_EQ(r.n_words, DG_REPLY_MAX_WORDS);
    dg_reply_clear(&r);
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_results);
    RUN(test_other_types);
    RUN(test_errors);
    RUN(test_many_words);
    return 0;
}
