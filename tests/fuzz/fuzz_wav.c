/* libFuzzer target for the WAV header parser (untrusted bytes from clients).
 * Every input is parsed twice: in one piece and in pieces whose sizes come
 * from the input itself. Both must agree exactly, the result must be one of
 * the documented ones, and a completed header's data must decode. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio/pcm.h"
#include "audio/wav.h"
#include "base/mem.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

struct outcome {
    int rc;
    size_t consumed;
    struct wav_info info;
    char msg[256];
};

/* Piece sizes: an xorshift seeded from the input's length and last bytes, so
 * the fuzzer can steer the chunking without disturbing the header bytes. */
static uint32_t next_size(uint32_t *s, size_t len)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    uint32_t limit = 1u << (*s % 13); /* 1 .. 4096 */
    uint32_t n = 1 + (*s >> 8) % limit;
    return n > len ? (uint32_t)len : n;
}

static struct outcome parse(const uint8_t *data, size_t len, uint32_t seed)
{
    struct outcome o;
    memset(&o, 0, sizeof o);
    struct wav_parser *p = NULL;
    CHECK(wav_parser_create(&p) == 0);
    size_t pos = 0;
    uint32_t s = seed | 1;
    do {
        size_t n = seed ? next_size(&s, len - pos) : len - pos;
        size_t used = (size_t)-1;
        o.rc = wav_parser_feed(p, data + pos, n, &used, &o.info, o.msg, sizeof o.msg);
        CHECK(used <= n);
        CHECK(o.rc != 0 || used == n);
        o.consumed += used;
        pos += n;
    } while (o.rc == 0 && pos < len);
    /* Terminal results repeat and consume nothing. */
    if (o.rc != 0) {
        size_t used = (size_t)-1;
        char msg2[256];
        struct wav_info info2;
        CHECK(wav_parser_feed(p, data, len, &used, &info2, msg2, sizeof msg2) == o.rc);
        CHECK(used == 0);
    }
    wav_parser_destroy(p);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct outcome whole = parse(data, size, 0);
    uint32_t seed = (uint32_t)size * 2654435761u;
    if (size >= 2)
        seed ^= (uint32_t)data[size - 1] << 8 | data[size - 2];
    struct outcome pieces = parse(data, size, seed ? seed : 1);

    CHECK(whole.rc == pieces.rc);
    CHECK(whole.rc == 0 || whole.rc == 1 || whole.rc == HARK_E_BAD_AUDIO ||
          whole.rc == HARK_E_UNSUPPORTED);
    if (whole.rc < 0) {
        CHECK(whole.msg[0] != 0);
        CHECK(strcmp(whole.msg, pieces.msg) == 0);
    }
    if (whole.rc == 0)
        CHECK(whole.consumed == size && pieces.consumed == size);
    if (whole.rc != 1)
        return 0;

    const struct wav_info *wi = &whole.info;
    CHECK(whole.consumed == pieces.consumed && whole.consumed <= size);
    CHECK(memcmp(wi, &pieces.info, sizeof *wi) == 0);
    CHECK(whole.consumed <= (1u << 20) + 8);
    CHECK(wi->channels >= 1 && wi->channels <= PCM_MAX_CHANNELS);
    CHECK(wi->sample_rate >= 8000 && wi->sample_rate <= 48000);
    CHECK((size_t)wi->bits == 8 * pcm_sample_bytes(wi->fmt));

    /* The audio after the header decodes to samples in [-1, 1]. */
    struct pcm_dec *d = NULL;
    CHECK(pcm_dec_create(&d, wi->fmt, wi->channels) == 0);
    size_t rest = size - whole.consumed;
    float *out = hark_malloc((pcm_dec_max_out(d, rest) + 1) * sizeof *out);
    CHECK(out != NULL);
    size_t n = pcm_dec_feed(d, data + whole.consumed, rest, out);
    CHECK(n == rest / (pcm_sample_bytes(wi->fmt) * (size_t)wi->channels));
    for (size_t i = 0; i < n; i++)
        CHECK(out[i] >= -1.0f && out[i] <= 1.0f);
    hark_free(out);
    pcm_dec_destroy(d);
    return 0;
}
