/* The openai engine's reply parser (src/engines/openai/oa_reply.c): json and
 * verbose_json replies, word times kept monotonic, error objects and
 * malformed replies as typed errors, no leaks on any path. Inputs are copied
 * into exact-size heap blocks so ASan sees any read past len. */
#include "base/buf.h"
#include "base/mem.h"
#include "check.h"
#include "engines/openai/oa_reply.h"

static char errbuf[256];

static int parse(struct oa_reply *r, const char *text)
{
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    ASSERT(copy);
    memcpy(copy, text, n);
    int rc = oa_reply_parse(r, copy, n, errbuf, sizeof errbuf);
    free(copy);
    return rc;
}

static void test_json_format(void)
{
    struct oa_reply r;
    ASSERT_OK(parse(&r, "{\"text\":\"  Hello,\\n  world.  \"}"));
    ASSERT_STR_EQ(r.text, "Hello, world.");
    ASSERT_EQ(r.n_words, 0);
    oa_reply_clear(&r);
    ASSERT_OK(parse(&r, "{\"text\":\"\"}"));
    ASSERT_STR_EQ(r.text, "");
    oa_reply_clear(&r);
}

static void test_verbose_json_words(void)
{
    struct oa_reply r;
    ASSERT_OK(parse(&r,
                    "{\"task\":\"transcribe\",\"language\":\"english\",\"duration\":2.5,"
                    "\"text\":\"mr john\",\"words\":[{\"word\":\" mr\",\"start\":0.1,\"end\":0.4},"
                    "{\"word\":\"john\",\"start\":0.5,\"end\":0.9,\"probability\":0.75},"
                    "{\"word\":\"\",\"start\":1,\"end\":1},{\"start\":1}]}"));
    ASSERT_STR_EQ(r.text, "mr john");
    ASSERT_EQ(r.n_words, 2); /* empty and word-less entries dropped */
    ASSERT_STR_EQ(r.words[0].word, "mr");
    ASSERT_NEAR(r.words[0].start, 0.1, 1e-9);
    ASSERT_NEAR(r.words[0].end, 0.4, 1e-9);
    ASSERT_NEAR(r.words[0].confidence, 1.0, 1e-6); /* none given */
    ASSERT_NEAR(r.words[1].confidence, 0.75, 1e-6);
    oa_reply_clear(&r);
    /* times out of order, negative, end before start, not numbers */
    ASSERT_OK(parse(&r,
                    "{\"text\":\"a b c\",\"words\":[{\"word\":\"a\",\"start\":2,\"end\":1},"
                    "{\"word\":\"b\",\"start\":-5,\"end\":\"x\"},{\"word\":\"c\",\"start\":1e300,"
                    "\"end\":3,\"probability\":7}]}"));
    ASSERT_EQ(r.n_words, 3);
    for (size_t i = 0; i < r.n_words; i++) {
        ASSERT(r.words[i].end >= r.words[i].start);
        if (i)
            ASSERT(r.words[i].start >= r.words[i - 1].start);
        ASSERT(r.words[i].confidence >= 0 && r.words[i].confidence <= 1);
    }
    oa_reply_clear(&r);
}

static void test_errors(void)
{
    struct oa_reply r;
    ASSERT_EQ(
        parse(&r,
              "{\"error\":{\"message\":\"Invalid API key\",\"type\":\"invalid_request_error\"}}"),
        HARK_E_PROTOCOL);
    ASSERT_STR_EQ(errbuf, "Invalid API key");
    ASSERT_EQ(parse(&r, "{\"error\":\"overloaded\",\"text\":\"x\"}"), HARK_E_PROTOCOL);
    ASSERT_STR_EQ(errbuf, "overloaded");
    ASSERT_EQ(parse(&r, "{\"words\":[]}"), HARK_E_PROTOCOL);
    ASSERT(strstr(errbuf, "no \"text\""));
    ASSERT_EQ(parse(&r, "Internal Server Error"), HARK_E_PROTOCOL);
    ASSERT(strstr(errbuf, "not JSON"));
    ASSERT_EQ(parse(&r, ""), HARK_E_PROTOCOL);
    ASSERT_EQ(parse(&r, "[\"text\"]"), HARK_E_PROTOCOL);
    ASSERT_EQ(parse(&r, "{\"text\":5}"), HARK_E_PROTOCOL);
    ASSERT_EQ(r.text, NULL);
}

static void test_many_words(void)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"text\":\"w\",\"words\":[");
    for (int i = 0; i < OA_REPLY_MAX_WORDS + 10; i++)
        buf_printf(&b, "%s{\"word\":\"w\",\"start\":%d,\"end\":%d}", i ? "," : "", i, i);
    buf_puts(&b, "]}");
    struct oa_reply r;
    ASSERT_OK(oa_reply_parse(&r, b.data, b.len, errbuf, sizeof errbuf));
    ASSERT_EQ(r.n_words, OA_REPLY_MAX_WORDS);
    oa_reply_clear(&r);
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_json_format);
    RUN(test_verbose_json_words);
    RUN(test_errors);
    RUN(test_many_words);
    return 0;
}
