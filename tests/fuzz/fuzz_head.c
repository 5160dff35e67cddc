/* libFuzzer target for the door's request-head checks (src/front/ws/head.c),
 * which read the first bytes of every plain-text connection before lws does.
 * Input: the bytes a client sends. Whatever they are: head_scan returns 0, a
 * length within the input and the limits, or -400/-414/-431 with a message;
 * an accepted head rewrites into at most 2 len + 64 bytes that scan again as a
 * complete head whose request line carries no query; the query splits into
 * at most len + 1 bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "front/ws/head.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char why[160];
    why[0] = 0;
    long r = head_scan(in, size, why, sizeof why);
    CHECK(r == 0 || r == -400 || r == -414 || r == -431 || (r > 0 && (size_t)r <= size));
    if (r < 0)
        CHECK(why[0] != 0);
    if (r > 0) {
        CHECK((size_t)r <= HEAD_MAX_BYTES);
        size_t cap = 2 * (size_t)r + 64;
        char *out = malloc(cap);
        if (!out)
            return 0;
        long w = head_rewrite(in, (size_t)r, out, cap);
        CHECK(w > 0 && (size_t)w <= cap);
        /* the rewritten head ends in a blank line; its request line has no '?' */
        CHECK(w >= 4 && !memcmp(out + w - 4, "\r\n\r\n", 4));
        const char *nl = memchr(out, '\n', (size_t)w);
        CHECK(nl && !memchr(out, '?', (size_t)(nl - out)));
        free(out);
    }
    /* the query splitter on the raw bytes */
    char *args = malloc(size + 1);
    if (args) {
        size_t n = head_split_query(in, size, args, size + 1);
        CHECK(n <= size + 1);
        free(args);
    }
    return 0;
}
