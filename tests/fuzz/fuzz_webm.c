/* libFuzzer target for the WebM demuxer (untrusted bytes from clients).
 * Every input is demuxed in one feed, in two feeds split at a point taken
 * from the input, and (when small) one byte at a time. All must agree on
 * the result, the message and every packet; the result is 0 or a typed
 * error with a message that later feeds repeat; the first packet is an
 * OpusHead and none is empty or over the block cap. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/webm.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define BLOCK_MAX (64u * 1024)

struct outcome {
    int rc;
    char msg[256];
    size_t count;   /* packets delivered */
    uint64_t hash;  /* FNV-1a of every packet's length and bytes */
    size_t stop_at; /* the callback returns 5 at this packet (1-based; 0 never) */
};

static void mix(uint64_t *h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *h ^= p[i];
        *h *= 0x100000001B3ull;
    }
}

static int on_packet(void *user, const uint8_t *pkt, size_t len)
{
    struct outcome *o = user;
    CHECK(pkt != NULL && len > 0);
    if (o->count == 0) {
        CHECK(len >= 19 && len <= 4096);
        CHECK(memcmp(pkt, "OpusHead", 8) == 0);
    } else {
        CHECK(len <= BLOCK_MAX);
    }
    uint8_t l[8];
    for (int i = 0; i < 8; i++)
        l[i] = (uint8_t)((uint64_t)len >> (8 * i));
    mix(&o->hash, l, sizeof l);
    mix(&o->hash, pkt, len);
    o->count++;
    return o->stop_at && o->count == o->stop_at ? 5 : 0;
}

/* Feeds data in pieces ending at the offsets in cuts (the last is len). */
static struct outcome demux(const uint8_t *data, size_t len, const size_t *cuts, size_t ncuts,
                            size_t stop_at)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.hash = 0xCBF29CE484222325ull;
    o.stop_at = stop_at;
    struct webm_demux *d = NULL;
    CHECK(webm_demux_create(&d, on_packet, &o) == 0);
    size_t pos = 0;
    for (size_t k = 0; k < ncuts && o.rc == 0; k++) {
        o.rc = webm_demux_feed(d, data + pos, cuts[k] - pos, o.msg, sizeof o.msg);
        pos = cuts[k];
    }
    if (o.rc != 0) {
        /* Sticky: the same result and message, and no packet. */
        size_t count = o.count;
        char msg2[256] = "";
        CHECK(webm_demux_feed(d, data, len, msg2, sizeof msg2) == o.rc);
        if (o.rc == 5 && stop_at)
            CHECK(msg2[0] == 0); /* a callback stop leaves err alone */
        else
            CHECK(strcmp(msg2, o.msg) == 0);
        CHECK(o.count == count);
    }
    webm_demux_destroy(d);
    return o;
}

static void same(const struct outcome *a, const struct outcome *b)
{
    CHECK(a->rc == b->rc);
    CHECK(strcmp(a->msg, b->msg) == 0);
    CHECK(a->count == b->count);
    CHECK(a->hash == b->hash);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t whole_cut = size;
    struct outcome whole = demux(data, size, &whole_cut, 1, 0);
    CHECK(whole.rc == 0 || whole.rc == HARK_E_BAD_AUDIO || whole.rc == HARK_E_UNSUPPORTED);
    if (whole.rc != 0)
        CHECK(whole.msg[0] != 0);

    /* Two feeds split at a point from the input's last bytes, so the
     * fuzzer can steer it without disturbing the stream's start. */
    size_t split = 0;
    if (size >= 2)
        split = ((size_t)data[size - 1] << 8 | data[size - 2]) % (size + 1);
    size_t cuts[2] = {split, size};
    struct outcome two = demux(data, size, cuts, 2, 0);
    same(&whole, &two);

    if (size <= 4096) {
        size_t *bytes = malloc((size ? size : 1) * sizeof *bytes);
        CHECK(bytes != NULL);
        for (size_t i = 0; i < size; i++)
            bytes[i] = i + 1;
        struct outcome one = demux(data, size, bytes, size, 0);
        same(&whole, &one);
        free(bytes);
    }

    /* A callback that stops at a packet: the feed returns its value, and
     * the packets before are the same. */
    if (whole.count >= 1) {
        size_t stop_at = 1 + split % whole.count;
        struct outcome stopped = demux(data, size, cuts, 2, stop_at);
        CHECK(stopped.rc == 5);
        CHECK(stopped.count == stop_at);
    }
    return 0;
}
