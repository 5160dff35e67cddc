#include "audio/pcm.h"

#include <math.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

/* Largest frame: 8 channels of 8-byte samples. */
#define MAX_FRAME_BYTES (PCM_MAX_CHANNELS * 8)

struct pcm_dec {
    enum pcm_format fmt;
    int channels;
    size_t frame_bytes;
    float inv_channels;
    /* Start of a frame whose remaining bytes have not arrived yet. */
    uint8_t carry[MAX_FRAME_BYTES];
    size_t carry_len;
};

/* G.711 decoding tables, 16-bit linear, generated from the reference
 * formulas of the ITU G.711 software tools (Sun g711.c ulaw2linear /
 * alaw2linear); test_pcm recomputes every entry from those formulas. */
/* clang-format off */
static const int16_t mulaw_table[256] = {
    -32124, -31100, -30076, -29052, -28028, -27004, -25980, -24956,
    -23932, -22908, -21884, -20860, -19836, -18812, -17788, -16764,
    -15996, -15484, -14972, -14460, -13948, -13436, -12924, -12412,
    -11900, -11388, -10876, -10364, -9852, -9340, -8828, -8316,
    -7932, -7676, -7420, -7164, -6908, -6652, -6396, -6140,
    -5884, -5628, -5372, -5116, -4860, -4604, -4348, -4092,
    -3900, -3772, -3644, -3516, -3388, -3260, -3132, -3004,
    -2876, -2748, -2620, -2492, -2364, -2236, -2108, -1980,
    -1884, -1820, -1756, -1692, -1628, -1564, -1500, -1436,
    -1372, -1308, -1244, -1180, -1116, -1052, -988, -924,
    -876, -844, -812, -780, -748, -716, -684, -652,
    -620, -588, -556, -524, -492, -460, -428, -396,
    -372, -356, -340, -324, -308, -292, -276, -260,
    -244, -228, -212, -196, -180, -164, -148, -132,
    -120, -112, -104, -96, -88, -80, -72, -64,
    -56, -48, -40, -32, -24, -16, -8, 0,
    32124, 31100, 30076, 29052, 28028, 27004, 25980, 24956,
    23932, 22908, 21884, 20860, 19836, 18812, 17788, 16764,
    15996, 15484, 14972, 14460, 13948, 13436, 12924, 12412,
    11900, 11388, 10876, 10364, 9852, 9340, 8828, 8316,
    7932, 7676, 7420, 7164, 6908, 6652, 6396, 6140,
    5884, 5628, 5372, 5116, 4860, 4604, 4348, 4092,
    3900, 3772, 3644, 3516, 3388, 3260, 3132, 3004,
    2876, 2748, 2620, 2492, 2364, 2236, 2108, 1980,
    1884, 1820, 1756, 1692, 1628, 1564, 1500, 1436,
    1372, 1308, 1244, 1180, 1116, 1052, 988, 924,
    876, 844, 812, 780, 748, 716, 684, 652,
    620, 588, 556, 524, 492, 460, 428, 396,
    372, 356, 340, 324, 308, 292, 276, 260,
    244, 228, 212, 196, 180, 164, 148, 132,
    120, 112, 104, 96, 88, 80, 72, 64,
    56, 48, 40, 32, 24, 16, 8, 0,
};
static const int16_t alaw_table[256] = {
    -5504, -5248, -6016, -5760, -4480, -4224, -4992, -4736,
    -7552, -7296, -8064, -7808, -6528, -6272, -7040, -6784,
    -2752, -2624, -3008, -2880, -2240, -2112, -2496, -2368,
    -3776, -3648, -4032, -3904, -3264, -3136, -3520, -3392,
    -22016, -20992, -24064, -23040, -17920, -16896, -19968, -18944,
    -30208, -29184, -32256, -31232, -26112, -25088, -28160, -27136,
    -11008, -10496, -12032, -11520, -8960, -8448, -9984, -9472,
    -15104, -14592, -16128, -15616, -13056, -12544, -14080, -13568,
    -344, -328, -376, -360, -280, -264, -312, -296,
    -472, -456, -504, -488, -408, -392, -440, -424,
    -88, -72, -120, -104, -24, -8, -56, -40,
    -216, -200, -248, -232, -152, -136, -184, -168,
    -1376, -1312, -1504, -1440, -1120, -1056, -1248, -1184,
    -1888, -1824, -2016, -1952, -1632, -1568, -1760, -1696,
    -688, -656, -752, -720, -560, -528, -624, -592,
    -944, -912, -1008, -976, -816, -784, -880, -848,
    5504, 5248, 6016, 5760, 4480, 4224, 4992, 4736,
    7552, 7296, 8064, 7808, 6528, 6272, 7040, 6784,
    2752, 2624, 3008, 2880, 2240, 2112, 2496, 2368,
    3776, 3648, 4032, 3904, 3264, 3136, 3520, 3392,
    22016, 20992, 24064, 23040, 17920, 16896, 19968, 18944,
    30208, 29184, 32256, 31232, 26112, 25088, 28160, 27136,
    11008, 10496, 12032, 11520, 8960, 8448, 9984, 9472,
    15104, 14592, 16128, 15616, 13056, 12544, 14080, 13568,
    344, 328, 376, 360, 280, 264, 312, 296,
    472, 456, 504, 488, 408, 392, 440, 424,
    88, 72, 120, 104, 24, 8, 56, 40,
    216, 200, 248, 232, 152, 136, 184, 168,
    1376, 1312, 1504, 1440, 1120, 1056, 1248, 1184,
    1888, 1824, 2016, 1952, 1632, 1568, 1760, 1696,
    688, 656, 752, 720, 560, 528, 624, 592,
    944, 912, 1008, 976, 816, 784, 880, 848,
};
/* clang-format on */

size_t pcm_sample_bytes(enum pcm_format fmt)
{
    switch (fmt) {
    case PCM_S16LE:
        return 2;
    case PCM_F32LE:
        return 4;
    case PCM_MULAW:
    case PCM_ALAW:
    case PCM_U8:
        return 1;
    case PCM_S24LE:
        return 3;
    case PCM_S32LE:
        return 4;
    case PCM_F64LE:
        return 8;
    }
    return 0;
}

const char *pcm_container_magic(const uint8_t *h, size_t n)
{
    static const struct {
        char magic[5];
        const char *name;
    } sigs[] = {
        {"RIFF", "WAV"},
        {"RF64", "WAV"},
        {"RIFX", "WAV"},
        {"OggS", "Ogg"},
        {"\x1a\x45\xdf\xa3", "WebM"},
        {"fLaC", "FLAC"},
        {"caff", "CAF"},
        {"FORM", "AIFF"},
    };
    if (!h || n < PCM_MAGIC_BYTES)
        return NULL;
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        if (!memcmp(h, sigs[i].magic, PCM_MAGIC_BYTES))
            return sigs[i].name;
    if (!memcmp(h, "ID3", 3) && h[3] >= 2 && h[3] <= 4)
        return "MP3";
    return NULL;
}

const char *pcm_format_name(enum pcm_format fmt)
{
    switch (fmt) {
    case PCM_S16LE:
        return "pcm_s16le";
    case PCM_F32LE:
        return "pcm_f32le";
    case PCM_MULAW:
        return "mulaw";
    case PCM_ALAW:
        return "alaw";
    case PCM_U8:
        return "pcm_u8";
    case PCM_S24LE:
        return "pcm_s24le";
    case PCM_S32LE:
        return "pcm_s32le";
    case PCM_F64LE:
        return "pcm_f64le";
    }
    return "unknown";
}

/* ---------------------------------------------------------------- samples */

/* Float input may carry anything; non-finite values become silence rather
 * than poisoning the filters downstream. */
static inline float sanitize(float x)
{
    if (!isfinite(x))
        return 0.0f;
    if (x > 1.0f)
        return 1.0f;
    if (x < -1.0f)
        return -1.0f;
    return x;
}

static inline float clamp_unit(float x)
{
    return x > 1.0f ? 1.0f : (x < -1.0f ? -1.0f : x);
}

/* Little-endian reads assembled byte by byte: alignment- and host-endian-free. */
static inline float read_s16(const uint8_t *p)
{
    int32_t v = (int32_t)p[0] | ((int32_t)p[1] << 8);
    v -= (v & 0x8000) << 1;
    return (float)v * (1.0f / 32768.0f);
}

static inline float read_u8(const uint8_t *p)
{
    return (float)((int32_t)p[0] - 128) * (1.0f / 128.0f);
}

static inline float read_s24(const uint8_t *p)
{
    int32_t v = (int32_t)p[0] | ((int32_t)p[1] << 8) | ((int32_t)p[2] << 16);
    v -= (v & 0x800000) << 1;
    return (float)v * (1.0f / 8388608.0f);
}

static inline uint32_t load_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline float read_s32(const uint8_t *p)
{
    uint32_t u = load_u32(p);
    int64_t v = (int64_t)u - ((u & 0x80000000u) ? INT64_C(4294967296) : 0);
    return (float)((double)v * (1.0 / 2147483648.0));
}

static inline float read_f32(const uint8_t *p)
{
    uint32_t u = load_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return sanitize(f);
}

static inline float read_f64(const uint8_t *p)
{
    uint64_t u = (uint64_t)load_u32(p) | ((uint64_t)load_u32(p + 4) << 32);
    double f;
    memcpy(&f, &u, sizeof f);
    if (!isfinite(f))
        return 0.0f;
    /* Clamp before narrowing: a double beyond FLT_MAX has no float value. */
    return f > 1.0 ? 1.0f : (f < -1.0 ? -1.0f : (float)f);
}

static inline float read_mulaw(const uint8_t *p)
{
    return (float)mulaw_table[*p] * (1.0f / 32768.0f);
}

static inline float read_alaw(const uint8_t *p)
{
    return (float)alaw_table[*p] * (1.0f / 32768.0f);
}

/* One loop per format (expanded by the macro) so the per-sample read is
 * inlined instead of going through a function pointer. */
#define DECODE_FRAMES(READ, SB)                                                                    \
    do {                                                                                           \
        if (ch == 1) {                                                                             \
            for (size_t i = 0; i < frames; i++)                                                    \
                out[i] = READ(in + i * (SB));                                                      \
        } else {                                                                                   \
            const uint8_t *p = in;                                                                 \
            for (size_t i = 0; i < frames; i++) {                                                  \
                float sum = 0.0f;                                                                  \
                for (int c = 0; c < ch; c++, p += (SB))                                            \
                    sum += READ(p);                                                                \
                out[i] = clamp_unit(sum * inv);                                                    \
            }                                                                                      \
        }                                                                                          \
    } while (0)

static void decode_frames(const struct pcm_dec *d, const uint8_t *in, size_t frames, float *out)
{
    const int ch = d->channels;
    const float inv = d->inv_channels;
    switch (d->fmt) {
    case PCM_S16LE:
        DECODE_FRAMES(read_s16, 2);
        break;
    case PCM_F32LE:
        DECODE_FRAMES(read_f32, 4);
        break;
    case PCM_MULAW:
        DECODE_FRAMES(read_mulaw, 1);
        break;
    case PCM_ALAW:
        DECODE_FRAMES(read_alaw, 1);
        break;
    case PCM_U8:
        DECODE_FRAMES(read_u8, 1);
        break;
    case PCM_S24LE:
        DECODE_FRAMES(read_s24, 3);
        break;
    case PCM_S32LE:
        DECODE_FRAMES(read_s32, 4);
        break;
    case PCM_F64LE:
        DECODE_FRAMES(read_f64, 8);
        break;
    }
}

/* ---------------------------------------------------------------- decoder */

int pcm_dec_create(struct pcm_dec **out, enum pcm_format fmt, int channels)
{
    if (!out)
        return HARK_E_INVAL;
    *out = NULL;
    size_t sb = pcm_sample_bytes(fmt);
    if (sb == 0 || channels < 1 || channels > PCM_MAX_CHANNELS)
        return HARK_E_INVAL;
    struct pcm_dec *d = hark_calloc(1, sizeof *d);
    if (!d)
        return HARK_E_NOMEM;
    d->fmt = fmt;
    d->channels = channels;
    d->frame_bytes = sb * (size_t)channels;
    d->inv_channels = 1.0f / (float)channels;
    *out = d;
    return 0;
}

void pcm_dec_destroy(struct pcm_dec *d)
{
    hark_free(d);
}

size_t pcm_dec_max_out(const struct pcm_dec *d, size_t len)
{
    return (d->carry_len + len) / d->frame_bytes;
}

size_t pcm_dec_pending(const struct pcm_dec *d)
{
    return d->carry_len;
}

size_t pcm_dec_feed(struct pcm_dec *d, const uint8_t *in, size_t len, float *out)
{
    const size_t fb = d->frame_bytes;
    size_t n_out = 0;
    if (len == 0)
        return 0;
    if (d->carry_len) {
        size_t take = fb - d->carry_len;
        if (take > len)
            take = len;
        memcpy(d->carry + d->carry_len, in, take);
        d->carry_len += take;
        in += take;
        len -= take;
        if (d->carry_len < fb)
            return 0;
        decode_frames(d, d->carry, 1, out);
        d->carry_len = 0;
        n_out = 1;
    }
    size_t frames = len / fb;
    if (frames) {
        decode_frames(d, in, frames, out + n_out);
        n_out += frames;
    }
    size_t rest = len - frames * fb;
    if (rest) {
        memcpy(d->carry, in + frames * fb, rest);
        d->carry_len = rest;
    }
    return n_out;
}

/* ---------------------------------------------------------------- single samples */

float pcm_mulaw_to_float(uint8_t u)
{
    return read_mulaw(&u);
}

float pcm_alaw_to_float(uint8_t a)
{
    return read_alaw(&a);
}

static int float_to_s16(float x)
{
    long v = lrintf(sanitize(x) * 32768.0f);
    return v > 32767 ? 32767 : (v < -32768 ? -32768 : (int)v);
}

/* Segment search of the G.711 encoders: index of the first end >= v. */
static int segment(int v, const int16_t *ends)
{
    int i = 0;
    while (i < 8 && v > ends[i])
        i++;
    return i;
}

/* Encoders: Sun g711.c linear2ulaw / linear2alaw (14- and 13-bit input). */
uint8_t pcm_float_to_mulaw(float x)
{
    static const int16_t ends[8] = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
    int v = float_to_s16(x) >> 2; /* arithmetic shift on this platform's int */
    int mask = 0xFF;
    if (v < 0) {
        v = -v;
        mask = 0x7F;
    }
    if (v > 8159)
        v = 8159;
    v += 0x84 >> 2;
    int seg = segment(v, ends);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    return (uint8_t)(((seg << 4) | ((v >> (seg + 1)) & 0xF)) ^ mask);
}

uint8_t pcm_float_to_alaw(float x)
{
    static const int16_t ends[8] = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};
    int v = float_to_s16(x) >> 3;
    int mask = 0xD5;
    if (v < 0) {
        mask = 0x55;
        v = -v - 1;
    }
    int seg = segment(v, ends);
    if (seg >= 8)
        return (uint8_t)(0x7F ^ mask);
    int aval = seg << 4;
    aval |= (seg < 2 ? (v >> 1) : (v >> seg)) & 0xF;
    return (uint8_t)(aval ^ mask);
}
