/* Sample decoding: every format against hand-computed values, the G.711
 * tables against the reference formulas, downmix, NaN handling, and that any
 * chunking of the input gives bit-identical output. */
#include <stdint.h>

#include "audio/pcm.h"
#include "check.h"
#include "hark/hark.h"

/* Exact float comparison (ASSERT_EQ compares as integers). */
#define ASSERT_FEQ(a, b) ASSERT_NEAR((a), (b), 0.0)

/* Reference G.711 decoders (ITU software tools / Sun g711.c). */
static int ref_ulaw(uint8_t u)
{
    u = (uint8_t)~u;
    int t = ((u & 0x0F) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    return (u & 0x80) ? (0x84 - t) : (t - 0x84);
}

static int ref_alaw(uint8_t a)
{
    a ^= 0x55;
    int t = (a & 0x0F) << 4;
    int seg = (a & 0x70) >> 4;
    if (seg == 0)
        t += 8;
    else if (seg == 1)
        t += 0x108;
    else
        t = (t + 0x108) << (seg - 1);
    return (a & 0x80) ? t : -t;
}

/* Decodes a whole buffer with a fresh decoder; returns the sample count. */
static size_t decode_all(enum pcm_format fmt, int ch, const uint8_t *in, size_t len, float *out)
{
    struct pcm_dec *d = NULL;
    ASSERT_OK(pcm_dec_create(&d, fmt, ch));
    size_t n = pcm_dec_feed(d, in, len, out);
    pcm_dec_destroy(d);
    return n;
}

static float decode_one(enum pcm_format fmt, const uint8_t *in)
{
    float out[1] = {99.0f};
    ASSERT_EQ(decode_all(fmt, 1, in, pcm_sample_bytes(fmt), out), 1);
    return out[0];
}

static void put_f32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static void put_f64(uint8_t *p, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(u >> (8 * i));
}

static void test_sizes_and_names(void)
{
    ASSERT_EQ(pcm_sample_bytes(PCM_S16LE), 2);
    ASSERT_EQ(pcm_sample_bytes(PCM_F32LE), 4);
    ASSERT_EQ(pcm_sample_bytes(PCM_MULAW), 1);
    ASSERT_EQ(pcm_sample_bytes(PCM_ALAW), 1);
    ASSERT_EQ(pcm_sample_bytes(PCM_U8), 1);
    ASSERT_EQ(pcm_sample_bytes(PCM_S24LE), 3);
    ASSERT_EQ(pcm_sample_bytes(PCM_S32LE), 4);
    ASSERT_EQ(pcm_sample_bytes(PCM_F64LE), 8);
    ASSERT_STR_EQ(pcm_format_name(PCM_S16LE), "pcm_s16le");
    ASSERT_STR_EQ(pcm_format_name(PCM_F32LE), "pcm_f32le");
    ASSERT_STR_EQ(pcm_format_name(PCM_MULAW), "mulaw");
    ASSERT_STR_EQ(pcm_format_name(PCM_ALAW), "alaw");
}

static void test_create_rejects_bad_args(void)
{
    struct pcm_dec *d = (struct pcm_dec *)1;
    ASSERT_EQ(pcm_dec_create(&d, PCM_S16LE, 0), HARK_E_INVAL);
    ASSERT(d == NULL);
    ASSERT_EQ(pcm_dec_create(&d, PCM_S16LE, PCM_MAX_CHANNELS + 1), HARK_E_INVAL);
    ASSERT_EQ(pcm_dec_create(&d, (enum pcm_format)99, 1), HARK_E_INVAL);
    ASSERT_OK(pcm_dec_create(&d, PCM_F64LE, PCM_MAX_CHANNELS));
    pcm_dec_destroy(d);
    pcm_dec_destroy(NULL);
}

static void test_mulaw_decode(void)
{
    for (int c = 0; c < 256; c++)
        ASSERT_EQ((long)(pcm_mulaw_to_float((uint8_t)c) * 32768.0f), ref_ulaw((uint8_t)c));
    ASSERT_FEQ(pcm_mulaw_to_float(0xFF), 0.0f);
    ASSERT_FEQ(pcm_mulaw_to_float(0x7F), 0.0f);
    ASSERT_NEAR(pcm_mulaw_to_float(0x00), -0.98034668, 1e-7);
    ASSERT_NEAR(pcm_mulaw_to_float(0x80), 0.98034668, 1e-7);
    uint8_t b = 0x00;
    ASSERT_NEAR(decode_one(PCM_MULAW, &b), -32124.0 / 32768.0, 1e-9);
}

static void test_alaw_decode(void)
{
    for (int c = 0; c < 256; c++)
        ASSERT_EQ((long)(pcm_alaw_to_float((uint8_t)c) * 32768.0f), ref_alaw((uint8_t)c));
    /* The two codes nearest zero, and the extremes. */
    ASSERT_NEAR(pcm_alaw_to_float(0xD5), 8.0 / 32768.0, 1e-9);
    ASSERT_NEAR(pcm_alaw_to_float(0x55), -8.0 / 32768.0, 1e-9);
    ASSERT_NEAR(pcm_alaw_to_float(0xAA), 32256.0 / 32768.0, 1e-9);
    ASSERT_NEAR(pcm_alaw_to_float(0x2A), -32256.0 / 32768.0, 1e-9);
    uint8_t b = 0xAA;
    ASSERT_NEAR(decode_one(PCM_ALAW, &b), 32256.0 / 32768.0, 1e-9);
}

static void test_g711_encode(void)
{
    /* Every code survives decode -> encode (mu-law has two zeros; 0x7F
     * encodes back as the positive zero 0xFF). */
    for (int c = 0; c < 256; c++) {
        uint8_t u = pcm_float_to_mulaw(pcm_mulaw_to_float((uint8_t)c));
        ASSERT_EQ(u, c == 0x7F ? 0xFF : c);
        ASSERT_EQ(pcm_float_to_alaw(pcm_alaw_to_float((uint8_t)c)), c);
    }
    /* Round trip of a dense sweep: absolute error bounded by the top
     * segment's half step plus the clip at +-32124 (mu) / 32256 (A), and
     * relative error above the small segments bounded by half a step over
     * the segment's start (largest in mu-law segment 3: 32 / 924). */
    double worst_mu = 0, worst_a = 0, worst_rel = 0;
    for (int i = -20000; i <= 20000; i++) {
        float x = (float)i / 20000.0f;
        double emu = fabs(pcm_mulaw_to_float(pcm_float_to_mulaw(x)) - x);
        double ea = fabs(pcm_alaw_to_float(pcm_float_to_alaw(x)) - x);
        worst_mu = emu > worst_mu ? emu : worst_mu;
        worst_a = ea > worst_a ? ea : worst_a;
        if (fabs(x) > 0.05 && fabs(x) < 0.98) {
            double rel = (emu > ea ? emu : ea) / fabs(x);
            worst_rel = rel > worst_rel ? rel : worst_rel;
        }
    }
    ASSERT_LE(worst_mu, 0.0200);
    ASSERT_LE(worst_a, 0.0160);
    fprintf(stderr, "g711 round trip: worst abs mu %.5f A %.5f, worst rel %.4f\n", worst_mu,
            worst_a, worst_rel);
    ASSERT_LE(worst_rel, 0.036);
    /* Out-of-range and non-finite inputs. */
    ASSERT_EQ(pcm_float_to_mulaw(NAN), 0xFF);
    ASSERT_EQ(pcm_float_to_mulaw(5.0f), pcm_float_to_mulaw(1.0f));
    ASSERT_EQ(pcm_float_to_mulaw(-5.0f), 0x00);
    ASSERT_EQ(pcm_float_to_alaw(-INFINITY), pcm_float_to_alaw(0.0f));
    ASSERT_EQ(pcm_float_to_alaw(2.0f), 0xAA);
}

static void test_integer_formats(void)
{
    uint8_t s16[][2] = {{0x00, 0x80}, {0xFF, 0x7F}, {0x01, 0x00}, {0xFF, 0xFF}, {0x00, 0x40}};
    ASSERT_FEQ(decode_one(PCM_S16LE, s16[0]), -1.0f);
    ASSERT_FEQ(decode_one(PCM_S16LE, s16[1]), 32767.0f / 32768.0f);
    ASSERT_FEQ(decode_one(PCM_S16LE, s16[2]), 1.0f / 32768.0f);
    ASSERT_FEQ(decode_one(PCM_S16LE, s16[3]), -1.0f / 32768.0f);
    ASSERT_FEQ(decode_one(PCM_S16LE, s16[4]), 0.5f);

    uint8_t u8[] = {0x80, 0x00, 0xFF, 0xC0};
    ASSERT_FEQ(decode_one(PCM_U8, &u8[0]), 0.0f);
    ASSERT_FEQ(decode_one(PCM_U8, &u8[1]), -1.0f);
    ASSERT_FEQ(decode_one(PCM_U8, &u8[2]), 127.0f / 128.0f);
    ASSERT_FEQ(decode_one(PCM_U8, &u8[3]), 0.5f);

    uint8_t s24[][3] = {
        {0x00, 0x00, 0x80}, {0xFF, 0xFF, 0x7F}, {0x00, 0x00, 0x40}, {0xFF, 0xFF, 0xFF}};
    ASSERT_FEQ(decode_one(PCM_S24LE, s24[0]), -1.0f);
    ASSERT_NEAR(decode_one(PCM_S24LE, s24[1]), 8388607.0 / 8388608.0, 1e-7);
    ASSERT_FEQ(decode_one(PCM_S24LE, s24[2]), 0.5f);
    ASSERT_NEAR(decode_one(PCM_S24LE, s24[3]), -1.0 / 8388608.0, 1e-12);

    uint8_t s32[][4] = {
        {0, 0, 0, 0x80}, {0, 0, 0, 0x40}, {0xFF, 0xFF, 0xFF, 0xFF}, {0, 0, 0, 0xC0}};
    ASSERT_FEQ(decode_one(PCM_S32LE, s32[0]), -1.0f);
    ASSERT_FEQ(decode_one(PCM_S32LE, s32[1]), 0.5f);
    ASSERT_NEAR(decode_one(PCM_S32LE, s32[2]), -1.0 / 2147483648.0, 1e-15);
    ASSERT_FEQ(decode_one(PCM_S32LE, s32[3]), -0.5f);
}

static void test_float_formats_and_nan(void)
{
    const float vals[] = {0.5f, -0.25f, 1.5f, -2.0f, NAN, INFINITY, -INFINITY, 1e30f, 1.0f};
    const float want[] = {0.5f, -0.25f, 1.0f, -1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[8];
        put_f32(b, vals[i]);
        ASSERT_FEQ(decode_one(PCM_F32LE, b), want[i]);
        put_f64(b, (double)vals[i]);
        ASSERT_FEQ(decode_one(PCM_F64LE, b), want[i]);
    }
    uint8_t b[8];
    put_f64(b, 1e300); /* overflows float: must clamp, not become inf -> 0 */
    ASSERT_FEQ(decode_one(PCM_F64LE, b), 1.0f);
    put_f64(b, 0.1);
    ASSERT_FEQ(decode_one(PCM_F64LE, b), 0.1f);
    /* A NaN in one channel is silence for that channel only. */
    uint8_t st[8];
    put_f32(st, NAN);
    put_f32(st + 4, 0.5f);
    float out[1];
    ASSERT_EQ(decode_all(PCM_F32LE, 2, st, 8, out), 1);
    ASSERT_FEQ(out[0], 0.25f);
}

static void test_downmix(void)
{
    /* Stereo s16: L = 0.5, R = -0.25 -> 0.125; L = R = -1 -> -1. */
    uint8_t st[] = {0x00, 0x40, 0x00, 0xE0, 0x00, 0x80, 0x00, 0x80};
    float out[8];
    ASSERT_EQ(decode_all(PCM_S16LE, 2, st, sizeof st, out), 2);
    ASSERT_FEQ(out[0], 0.125f);
    ASSERT_FEQ(out[1], -1.0f);

    /* 6-channel float: one frame of distinct values, one of all +1. */
    const float six[12] = {0.1f, 0.2f, 0.3f, -0.6f, 0.9f, 0.5f, 1, 1, 1, 1, 1, 1};
    uint8_t b6[48];
    for (int i = 0; i < 12; i++)
        put_f32(b6 + 4 * i, six[i]);
    ASSERT_EQ(decode_all(PCM_F32LE, 6, b6, sizeof b6, out), 2);
    ASSERT_NEAR(out[0], (0.1 + 0.2 + 0.3 - 0.6 + 0.9 + 0.5) / 6.0, 1e-6);
    ASSERT_FEQ(out[1], 1.0f);

    /* Every channel count 1..8 at full scale stays exactly within [-1, 1],
     * and opposite channels cancel. */
    for (int ch = 1; ch <= PCM_MAX_CHANNELS; ch++) {
        uint8_t fr[2 * 2 * PCM_MAX_CHANNELS];
        for (int c = 0; c < ch; c++) {
            fr[2 * c] = 0x00;
            fr[2 * c + 1] = 0x80; /* frame 0: all -1 */
            fr[2 * ch + 2 * c] = 0x00;
            fr[2 * ch + 2 * c + 1] = (c % 2) ? 0xC0 : 0x40; /* frame 1: +-0.5 */
        }
        ASSERT_EQ(decode_all(PCM_S16LE, ch, fr, (size_t)(4 * ch), out), 2);
        ASSERT_FEQ(out[0], -1.0f);
        ASSERT_NEAR(out[1], (ch % 2) ? 0.5 / ch : 0.0, 1e-7);
    }

    /* 3-channel mu-law and 24-bit. */
    uint8_t mu[] = {0xFF, 0x00, 0x80};
    ASSERT_EQ(decode_all(PCM_MULAW, 3, mu, 3, out), 1);
    ASSERT_NEAR(out[0], 0.0, 1e-7);
    uint8_t s24[] = {0x00, 0x00, 0x40, 0x00, 0x00, 0x20};
    ASSERT_EQ(decode_all(PCM_S24LE, 2, s24, 6, out), 1);
    ASSERT_FEQ(out[0], 0.375f);
}

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

/* Any chunking, including one byte at a time, gives the same samples as one
 * feed of everything, and the pending count follows the frame boundary. */
static void test_chunking_is_invisible(void)
{
    const enum pcm_format fmts[] = {PCM_S16LE, PCM_F32LE, PCM_MULAW, PCM_ALAW,
                                    PCM_U8,    PCM_S24LE, PCM_S32LE, PCM_F64LE};
    const int chans[] = {1, 2, 3, 6, 8};
    enum { LEN = 3001 };
    static uint8_t data[LEN];
    static float whole[LEN], piece[LEN];
    for (size_t f = 0; f < sizeof fmts / sizeof fmts[0]; f++) {
        for (size_t c = 0; c < sizeof chans / sizeof chans[0]; c++) {
            for (size_t i = 0; i < LEN; i++)
                data[i] = (uint8_t)rng();
            size_t fb = pcm_sample_bytes(fmts[f]) * (size_t)chans[c];
            size_t n_whole = decode_all(fmts[f], chans[c], data, LEN, whole);
            ASSERT_EQ(n_whole, LEN / fb);
            for (size_t i = 0; i < n_whole; i++)
                ASSERT(whole[i] >= -1.0f && whole[i] <= 1.0f);

            for (int mode = 0; mode < 2; mode++) {
                struct pcm_dec *d = NULL;
                ASSERT_OK(pcm_dec_create(&d, fmts[f], chans[c]));
                size_t pos = 0, n = 0;
                while (pos < LEN) {
                    size_t len = mode == 0 ? 1 : 1 + rng() % 37;
                    if (len > LEN - pos)
                        len = LEN - pos;
                    size_t max = pcm_dec_max_out(d, len);
                    size_t got = pcm_dec_feed(d, data + pos, len, piece + n);
                    ASSERT_LE(got, max);
                    n += got;
                    pos += len;
                    ASSERT_EQ(pcm_dec_pending(d), pos % fb);
                }
                ASSERT_EQ(pcm_dec_feed(d, NULL, 0, NULL), 0);
                pcm_dec_destroy(d);
                ASSERT_EQ(n, n_whole);
                ASSERT(memcmp(whole, piece, n * sizeof(float)) == 0);
            }
        }
    }
}

static void test_container_magic(void)
{
    static const struct {
        const char *head;
        const char *name;
    } cases[] = {
        {"RIFF", "WAV"},
        {"RF64", "WAV"},
        {"RIFX", "WAV"},
        {"OggS", "Ogg"},
        {"\x1a\x45\xdf\xa3", "WebM"},
        {"fLaC", "FLAC"},
        {"ID3\x03", "MP3"},
        {"ID3\x04", "MP3"},
        {"caff", "CAF"},
        {"FORM", "AIFF"},
        /* not signatures: near misses, MPEG frame sync (plausible as s16
         * samples), an unknown ID3 version, silence */
        {"OggT", NULL},
        {"oggs", NULL},
        {"\xff\xfb\x90\x00", NULL},
        {"ID3\x09", NULL},
        {"\0\0\0\0", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = pcm_container_magic((const uint8_t *)cases[i].head, PCM_MAGIC_BYTES);
        if (cases[i].name ? !got || strcmp(got, cases[i].name) : got != NULL)
            FAIL_("case %zu: got %s, expected %s", i, got ? got : "NULL",
                  cases[i].name ? cases[i].name : "NULL");
    }
    /* fewer than 4 bytes say nothing */
    ASSERT(pcm_container_magic((const uint8_t *)"OggS", 3) == NULL);
    ASSERT(pcm_container_magic(NULL, 4) == NULL);
}

int main(void)
{
    RUN(test_sizes_and_names);
    RUN(test_create_rejects_bad_args);
    RUN(test_mulaw_decode);
    RUN(test_alaw_decode);
    RUN(test_g711_encode);
    RUN(test_integer_formats);
    RUN(test_float_formats_and_nan);
    RUN(test_downmix);
    RUN(test_chunking_is_invisible);
    RUN(test_container_magic);
    return 0;
}
