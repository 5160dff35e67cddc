/* libFuzzer target for chunked request bodies (src/front/ws/chunked.c),
 * which decode the bytes of a client's upload. Input: a body. Whatever it
 * is: the decoder returns 0, 1 or HARK_E_PROTOCOL (with a reason), never
 * hands on more data bytes than it was given, reports no more used bytes
 * than given, and decodes the same whether fed whole or split at the
 * position the first byte names. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "front/ws/chunked.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

struct sum {
    size_t bytes;
    uint32_t hash;
};

static int add(void *user, const uint8_t *data, size_t len)
{
    struct sum *s = user;
    s->bytes += len;
    for (size_t i = 0; i < len; i++)
        s->hash = s->hash * 31u + data[i];
    return 0;
}

static int run(const uint8_t *data, size_t size, size_t split, struct sum *s, size_t *used)
{
    struct chunked c;
    chunked_init(&c);
    size_t u1 = 0, u2 = 0;
    int rc = chunked_feed(&c, data, split, &u1, add, s);
    CHECK(u1 <= split);
    if (rc == 0 && split < size) {
        rc = chunked_feed(&c, data + split, size - split, &u2, add, s);
        CHECK(u2 <= size - split);
        u1 = split + u2;
    }
    CHECK(rc == 0 || rc == 1 || rc == HARK_E_PROTOCOL);
    if (rc == HARK_E_PROTOCOL)
        CHECK(c.why && c.why[0]);
    *used = u1;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sum whole = {0, 0}, parts = {0, 0};
    size_t used_whole, used_parts;
    int a = run(data, size, size, &whole, &used_whole);
    size_t split = size ? data[0] % (size + 1) : 0;
    int b = run(data, size, split, &parts, &used_parts);
    CHECK(whole.bytes <= size);
    CHECK(a == b);
    CHECK(whole.bytes == parts.bytes && whole.hash == parts.hash);
    if (a == 1)
        CHECK(used_whole == used_parts);
    return 0;
}
