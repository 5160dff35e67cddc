/* Chunked request bodies (src/front/ws/chunked.c): what Node's fetch sends
 * for a streamed upload, split at every byte boundary; extensions and
 * trailers; the bytes after the body; malformed framing. */
#include "check.h"
#include "base/err.h"
#include "front/ws/chunked.h"

struct sink {
    char data[256];
    size_t len;
    int stop_after; /* nonzero: the callback returns 7 after this many calls */
    int calls;
};

static int collect(void *user, const uint8_t *data, size_t len)
{
    struct sink *s = user;
    ASSERT(s->len + len <= sizeof s->data);
    memcpy(s->data + s->len, data, len);
    s->len += len;
    s->calls++;
    return s->stop_after && s->calls >= s->stop_after ? 7 : 0;
}

/* Feeds body in pieces of at most step bytes; returns the last result. */
static int feed_steps(const char *body, size_t step, struct sink *s, size_t *consumed)
{
    struct chunked c;
    chunked_init(&c);
    size_t len = strlen(body), off = 0;
    int rc = 0;
    *consumed = 0;
    while (off < len && rc == 0) {
        size_t n = len - off < step ? len - off : step, used;
        rc = chunked_feed(&c, (const uint8_t *)body + off, n, &used, collect, s);
        ASSERT_LE(used, n);
        *consumed += used;
        off += n;
    }
    return rc;
}

static void test_split_anywhere(void)
{
    /* as undici writes a multipart upload: hex sizes, CRLF, "0\r\n\r\n" */
    const char *body = "5\r\nhello\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n";
    for (size_t step = 1; step <= strlen(body); step++) {
        struct sink s = {0};
        size_t used;
        ASSERT_EQ(feed_steps(body, step, &s, &used), 1);
        ASSERT_EQ(used, strlen(body));
        ASSERT_EQ(s.len, 31);
        ASSERT(!memcmp(s.data, "helloabcdefghijklmnopqrstuvwxyz", 31));
    }
}

static void test_extensions_trailers_and_what_follows(void)
{
    const char *body = "4;name=\"v a\" ; x\r\nWiki\r\nA \t;y\r\n0123456789\r\n0;last\r\n"
                       "Expires: never\r\nX-Sum: 1\r\n\r\nPOST /next HTTP/1.1\r\n";
    struct sink s = {0};
    size_t used;
    ASSERT_EQ(feed_steps(body, 1000, &s, &used), 1);
    ASSERT_EQ(s.len, 14);
    ASSERT(!memcmp(s.data, "Wiki0123456789", 14));
    ASSERT_EQ(used, strlen(body) - strlen("POST /next HTTP/1.1\r\n"));
    /* done stays done */
    struct chunked c;
    chunked_init(&c);
    struct sink t = {0};
    ASSERT_EQ(chunked_feed(&c, (const uint8_t *)"0\r\n\r\n", 5, &used, collect, &t), 1);
    ASSERT_EQ(chunked_feed(&c, (const uint8_t *)"zz", 2, &used, collect, &t), 1);
    ASSERT_EQ(used, 0);
}

static void test_malformed(void)
{
    static const char *const bad[] = {
        "x\r\n",                /* not hex */
        "\r\n",                 /* no size */
        "5\nhello\r\n",         /* bare LF after the size */
        "3\r\nhello\r\n",       /* data longer than its size */
        "3\r\nhelX\n",          /* no CRLF after the data */
        "1000000000000000\r\n", /* 16 hex digits */
        "3g\r\n",               /* junk after the size */
        "0\r\nfield\nx\r\n",    /* bare LF in a trailer */
        "0\r\n\rX",             /* final line not CRLF */
        "2;ext\nab\r\n",        /* bare LF in an extension */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct chunked c;
        chunked_init(&c);
        struct sink s = {0};
        size_t used;
        ASSERT_EQ(chunked_feed(&c, (const uint8_t *)bad[i], strlen(bad[i]), &used, collect, &s),
                  HARK_E_PROTOCOL);
        ASSERT(c.why && c.why[0]);
        /* an error sticks */
        ASSERT_EQ(chunked_feed(&c, (const uint8_t *)"0\r\n\r\n", 5, &used, collect, &s),
                  HARK_E_PROTOCOL);
    }
    /* a size line longer than the limit */
    static char longline[CHUNKED_MAX_LINE + 16];
    memset(longline, ' ', sizeof longline);
    longline[0] = '1';
    longline[1] = ';';
    struct chunked c;
    chunked_init(&c);
    struct sink s = {0};
    size_t used;
    ASSERT_EQ(chunked_feed(&c, (const uint8_t *)longline, sizeof longline, &used, collect, &s),
              HARK_E_PROTOCOL);
}

static void test_callback_stops(void)
{
    struct chunked c;
    chunked_init(&c);
    struct sink s = {.stop_after = 1};
    const char *body = "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    size_t used;
    ASSERT_EQ(chunked_feed(&c, (const uint8_t *)body, strlen(body), &used, collect, &s), 7);
    ASSERT_EQ(used, 6); /* through "abc" */
    ASSERT_EQ(s.len, 3);
}

int main(void)
{
    RUN(test_split_anywhere);
    RUN(test_extensions_trailers_and_what_follows);
    RUN(test_malformed);
    RUN(test_callback_stops);
    return 0;
}
