/* libFuzzer target for raw sample decoding. The first two bytes choose the
 * format and channel count; the rest is audio, decoded in one piece and in
 * pieces whose sizes come from the input. Both must be bit-identical, within
 * [-1, 1], and within pcm_dec_max_out. The container signature check runs
 * on the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/pcm.h"
#include "base/mem.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    enum pcm_format fmt = (enum pcm_format)(data[0] % 8);
    int channels = 1 + data[1] % PCM_MAX_CHANNELS;
    uint32_t s = 0x9E3779B9u ^ data[2] ^ ((uint32_t)size << 8);
    const uint8_t *audio = data + 3;
    size_t len = size - 3;
    size_t frame = pcm_sample_bytes(fmt) * (size_t)channels;

    /* The raw-stream check of the decode stage reads only the first bytes. */
    const char *magic = pcm_container_magic(audio, len);
    CHECK(!magic || (len >= PCM_MAGIC_BYTES && magic[0]));

    struct pcm_dec *whole = NULL, *pieces = NULL;
    CHECK(pcm_dec_create(&whole, fmt, channels) == 0);
    CHECK(pcm_dec_create(&pieces, fmt, channels) == 0);
    float *a = hark_malloc((len / frame + 1) * sizeof *a);
    float *b = hark_malloc((len / frame + 1) * sizeof *b);
    CHECK(a && b);

    size_t na = pcm_dec_feed(whole, audio, len, a);
    CHECK(na == len / frame);
    CHECK(pcm_dec_pending(whole) == len % frame);

    size_t nb = 0, pos = 0;
    while (pos < len) {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        size_t n = 1 + (s >> 4) % (1u << (s % 10)); /* 1 .. 512 */
        if (n > len - pos)
            n = len - pos;
        size_t max = pcm_dec_max_out(pieces, n);
        size_t got = pcm_dec_feed(pieces, audio + pos, n, b + nb);
        CHECK(got <= max);
        nb += got;
        pos += n;
        CHECK(pcm_dec_pending(pieces) == pos % frame);
    }
    CHECK(nb == na);
    CHECK(na == 0 || memcmp(a, b, na * sizeof *a) == 0);

    for (size_t i = 0; i < na; i++) {
        CHECK(a[i] >= -1.0f && a[i] <= 1.0f);
        /* The G.711 encoders take anything decoded and stay near it. */
        float mu = pcm_mulaw_to_float(pcm_float_to_mulaw(a[i]));
        float al = pcm_alaw_to_float(pcm_float_to_alaw(a[i]));
        CHECK(mu - a[i] <= 0.02f && a[i] - mu <= 0.02f);
        CHECK(al - a[i] <= 0.02f && a[i] - al <= 0.02f);
    }
    hark_free(a);
    hark_free(b);
    pcm_dec_destroy(whole);
    pcm_dec_destroy(pieces);
    return 0;
}
