/* WAV header parsing: the real Debian clips, a header built here for every
 * accepted format, extra chunks, any chunking, and every rejection with its
 * error code and message. */
#include <dirent.h>
#include <stdint.h>

#include "audio/pcm.h"
#include "audio/wav.h"
#include "check.h"
#include "hark/hark.h"

/* ---------------------------------------------------------------- builder */

struct wb {
    uint8_t d[1 << 16];
    size_t n;
};

static void wb_bytes(struct wb *w, const void *p, size_t n)
{
    ASSERT(w->n + n <= sizeof w->d);
    memcpy(w->d + w->n, p, n);
    w->n += n;
}

static void wb_u16(struct wb *w, unsigned v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    wb_bytes(w, b, 2);
}

static void wb_u32(struct wb *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    wb_bytes(w, b, 4);
}

static void wb_riff(struct wb *w, uint32_t riff_size)
{
    w->n = 0;
    wb_bytes(w, "RIFF", 4);
    wb_u32(w, riff_size);
    wb_bytes(w, "WAVE", 4);
}

/* A 16-byte fmt chunk, block_align computed unless given. */
static void wb_fmt(struct wb *w, unsigned tag, unsigned ch, uint32_t rate, unsigned bits)
{
    wb_bytes(w, "fmt ", 4);
    wb_u32(w, 16);
    wb_u16(w, tag);
    wb_u16(w, ch);
    wb_u32(w, rate);
    wb_u32(w, rate * ch * (bits / 8));
    wb_u16(w, ch * (bits / 8));
    wb_u16(w, bits);
}

/* WAVE_FORMAT_EXTENSIBLE: 40-byte fmt, sub-format GUID xxxx0000-0000-0010-8000-00AA00389B71. */
static void wb_fmt_ext(struct wb *w, unsigned subtag, unsigned ch, uint32_t rate, unsigned bits,
                       unsigned valid_bits)
{
    static const uint8_t guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                          0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    wb_bytes(w, "fmt ", 4);
    wb_u32(w, 40);
    wb_u16(w, 0xFFFE);
    wb_u16(w, ch);
    wb_u32(w, rate);
    wb_u32(w, rate * ch * (bits / 8));
    wb_u16(w, ch * (bits / 8));
    wb_u16(w, bits);
    wb_u16(w, 22);
    wb_u16(w, valid_bits);
    wb_u32(w, ch == 2 ? 0x3 : 0x4); /* channel mask */
    wb_u16(w, subtag);
    wb_bytes(w, guid_tail, sizeof guid_tail);
}

static void wb_chunk(struct wb *w, const char *id, uint32_t size, uint8_t fill)
{
    wb_bytes(w, id, 4);
    wb_u32(w, size);
    for (uint32_t i = 0; i < size + (size & 1); i++)
        wb_bytes(w, &fill, 1);
}

static void wb_data(struct wb *w, uint32_t size)
{
    wb_bytes(w, "data", 4);
    wb_u32(w, size);
}

/* ---------------------------------------------------------------- helpers */

struct result {
    int rc;
    size_t consumed; /* total over all calls */
    struct wav_info info;
    char msg[512];
};

/* Feeds buf in pieces of `step` bytes (0 = all at once) until the parser
 * finishes or fails; later pieces after completion are not fed. */
static struct result parse(const uint8_t *buf, size_t len, size_t step)
{
    struct result r;
    memset(&r, 0, sizeof r);
    struct wav_parser *p = NULL;
    ASSERT_OK(wav_parser_create(&p));
    size_t pos = 0;
    r.rc = 0;
    while (pos < len) {
        size_t n = step ? step : len;
        if (n > len - pos)
            n = len - pos;
        size_t used = 12345;
        r.rc = wav_parser_feed(p, buf + pos, n, &used, &r.info, r.msg, sizeof r.msg);
        ASSERT_LE(used, n);
        if (r.rc == 0)
            ASSERT_EQ(used, n);
        r.consumed += used;
        pos += n;
        if (r.rc != 0)
            break;
    }
    if (r.rc != 0) {
        /* Terminal: the same answer again, consuming nothing. */
        char again[512] = "";
        struct wav_info info2;
        memset(&info2, 0, sizeof info2);
        size_t used = 12345;
        uint8_t more[4] = {1, 2, 3, 4};
        ASSERT_EQ(wav_parser_feed(p, more, sizeof more, &used, &info2, again, sizeof again), r.rc);
        ASSERT_EQ(used, 0);
        if (r.rc < 0)
            ASSERT_STR_EQ(again, r.msg);
        else
            ASSERT(memcmp(&info2, &r.info, sizeof info2) == 0);
    }
    wav_parser_destroy(p);
    return r;
}

/* Parses whole, 1 byte at a time and 7 bytes at a time; all must agree. */
static struct result parse_all_ways(const uint8_t *buf, size_t len)
{
    struct result whole = parse(buf, len, 0);
    const size_t steps[] = {1, 7, 13};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        struct result r = parse(buf, len, steps[i]);
        ASSERT_EQ(r.rc, whole.rc);
        if (whole.rc == 1) {
            ASSERT_EQ(r.consumed, whole.consumed);
            ASSERT_EQ(r.info.fmt, whole.info.fmt);
            ASSERT_EQ(r.info.sample_rate, whole.info.sample_rate);
            ASSERT_EQ(r.info.channels, whole.info.channels);
            ASSERT_EQ(r.info.bits, whole.info.bits);
            ASSERT(r.info.data_bytes == whole.info.data_bytes);
        } else if (whole.rc < 0) {
            ASSERT_STR_EQ(r.msg, whole.msg);
        }
    }
    return whole;
}

static void expect_error(const struct wb *w, int code, const char *needle)
{
    struct result r = parse_all_ways(w->d, w->n);
    if (r.rc != code)
        fprintf(stderr, "message: %s\n", r.msg);
    ASSERT_EQ(r.rc, code);
    ASSERT(strlen(r.msg) > 10);
    if (needle && !strstr(r.msg, needle))
        FAIL_("message \"%s\" lacks \"%s\"", r.msg, needle);
}

/* ---------------------------------------------------------------- tests */

static void test_real_clips(void)
{
    const char *dir = check_testdata_dir();
    DIR *dp = opendir(dir);
    if (!dp)
        FAIL_("cannot open %s (set HARK_TESTDATA_DIR; Debian package pocketsphinx-testdata)", dir);
    int clips = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl < 5 || strcmp(e->d_name + nl - 4, ".wav") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        unsigned char *buf = check_read_file(path, &len);
        ASSERT(buf != NULL);
        struct result r = parse_all_ways(buf, len);
        ASSERT_EQ(r.rc, 1);
        ASSERT_EQ(r.consumed, 44);
        ASSERT_EQ(r.info.fmt, PCM_S16LE);
        ASSERT_EQ(r.info.sample_rate, 16000);
        ASSERT_EQ(r.info.channels, 1);
        ASSERT_EQ(r.info.bits, 16);
        ASSERT_EQ(r.info.data_bytes, len - 44);

        /* The bytes after the header are the samples. */
        struct pcm_dec *d = NULL;
        ASSERT_OK(pcm_dec_create(&d, r.info.fmt, r.info.channels));
        float *pcm = hark_malloc(pcm_dec_max_out(d, len - r.consumed) * sizeof *pcm);
        size_t n = pcm_dec_feed(d, buf + r.consumed, len - r.consumed, pcm);
        ASSERT_EQ(n, (len - 44) / 2);
        int16_t first = (int16_t)(buf[44] | (buf[45] << 8));
        ASSERT_NEAR(pcm[0], first / 32768.0, 0);
        double energy = 0;
        for (size_t i = 0; i < n; i++)
            energy += (double)pcm[i] * pcm[i];
        ASSERT_GE(sqrt(energy / (double)n), 0.005); /* speech, not silence */
        hark_free(pcm);
        pcm_dec_destroy(d);

        /* And wav_write_header reproduces the canonical header exactly. */
        uint8_t hdr[44];
        wav_write_header(hdr, PCM_S16LE, 16000, 1, (uint32_t)(len - 44));
        ASSERT(memcmp(hdr, buf, 44) == 0);
        free(buf);
        clips++;
    }
    closedir(dp);
    ASSERT_GE(clips, 1);
}

static void test_every_format(void)
{
    const enum pcm_format fmts[] = {PCM_S16LE, PCM_F32LE, PCM_MULAW, PCM_ALAW,
                                    PCM_U8,    PCM_S24LE, PCM_S32LE, PCM_F64LE};
    const unsigned tags[] = {1, 3, 7, 6, 1, 1, 1, 3};
    const int rates[] = {8000, 11025, 16000, 22050, 44100, 48000};
    const int chans[] = {1, 2, 6, 8};
    for (size_t f = 0; f < 8; f++) {
        for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++) {
            for (size_t ci = 0; ci < sizeof chans / sizeof chans[0]; ci++) {
                uint8_t hdr[48];
                wav_write_header(hdr, fmts[f], rates[ri], chans[ci], 1000);
                ASSERT_EQ(hdr[20] | (hdr[21] << 8), tags[f]);
                memcpy(hdr + 44, "\x01\x02\x03\x04", 4); /* first data bytes */
                struct result r = parse_all_ways(hdr, sizeof hdr);
                ASSERT_EQ(r.rc, 1);
                ASSERT_EQ(r.consumed, 44);
                ASSERT_EQ(r.info.fmt, fmts[f]);
                ASSERT_EQ(r.info.sample_rate, rates[ri]);
                ASSERT_EQ(r.info.channels, chans[ci]);
                ASSERT_EQ(r.info.bits, 8 * (int)pcm_sample_bytes(fmts[f]));
                ASSERT_EQ(r.info.data_bytes, 1000);
            }
        }
    }
}

static void test_extensible(void)
{
    struct wb w;
    struct {
        unsigned sub, bits, valid;
        enum pcm_format fmt;
    } cases[] = {
        {1, 16, 16, PCM_S16LE}, {1, 24, 24, PCM_S24LE}, {1, 32, 24, PCM_S32LE},
        {1, 8, 8, PCM_U8},      {3, 32, 32, PCM_F32LE}, {3, 64, 64, PCM_F64LE},
        {6, 8, 8, PCM_ALAW},    {7, 8, 8, PCM_MULAW},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        wb_riff(&w, 0);
        wb_fmt_ext(&w, cases[i].sub, 2, 48000, cases[i].bits, cases[i].valid);
        wb_chunk(&w, "fact", 4, 0);
        wb_data(&w, 4096);
        struct result r = parse_all_ways(w.d, w.n);
        ASSERT_EQ(r.rc, 1);
        ASSERT_EQ(r.consumed, w.n);
        ASSERT_EQ(r.info.fmt, cases[i].fmt);
        ASSERT_EQ(r.info.channels, 2);
        ASSERT_EQ(r.info.sample_rate, 48000);
        ASSERT_EQ(r.info.bits, cases[i].bits);
        ASSERT_EQ(r.info.data_bytes, 4096);
    }
    /* A sub-format that is not accepted names itself. */
    wb_riff(&w, 0);
    wb_fmt_ext(&w, 0x55, 1, 16000, 16, 16);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_UNSUPPORTED, "0x0055");
    /* Extensible with the 18-byte WAVEFORMATEX only. */
    wb_riff(&w, 0);
    wb_bytes(&w, "fmt ", 4);
    wb_u32(&w, 18);
    wb_u16(&w, 0xFFFE);
    wb_u16(&w, 1);
    wb_u32(&w, 16000);
    wb_u32(&w, 32000);
    wb_u16(&w, 2);
    wb_u16(&w, 16);
    wb_u16(&w, 0);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_BAD_AUDIO, "EXTENSIBLE");
}

/* Metadata chunks before and after fmt, with odd sizes and their pad bytes,
 * and a fmt chunk longer than 16 bytes. */
static void test_chunks_before_data(void)
{
    struct wb w;
    wb_riff(&w, 1234);
    wb_chunk(&w, "JUNK", 28, 0);
    wb_bytes(&w, "fmt ", 4);
    wb_u32(&w, 18); /* WAVEFORMATEX with cbSize 0 */
    wb_u16(&w, 1);
    wb_u16(&w, 1);
    wb_u32(&w, 16000);
    wb_u32(&w, 32000);
    wb_u16(&w, 2);
    wb_u16(&w, 16);
    wb_u16(&w, 0);
    wb_chunk(&w, "LIST", 13, 'x'); /* odd: one pad byte follows */
    wb_chunk(&w, "bext", 601, 'b');
    wb_chunk(&w, "fact", 4, 0);
    wb_chunk(&w, "id3 ", 0, 0);
    size_t header = w.n + 8;
    wb_data(&w, 100);
    for (int i = 0; i < 100; i++)
        wb_bytes(&w, "\x7f", 1);
    struct result r = parse_all_ways(w.d, w.n);
    ASSERT_EQ(r.rc, 1);
    ASSERT_EQ(r.consumed, header);
    ASSERT_EQ(r.info.fmt, PCM_S16LE);
    ASSERT_EQ(r.info.data_bytes, 100);

    /* Odd-sized fmt chunk (17 bytes + pad). */
    wb_riff(&w, 0);
    wb_bytes(&w, "fmt ", 4);
    wb_u32(&w, 17);
    wb_u16(&w, 7);
    wb_u16(&w, 1);
    wb_u32(&w, 8000);
    wb_u32(&w, 8000);
    wb_u16(&w, 1);
    wb_u16(&w, 8);
    wb_bytes(&w, "\0\0", 2); /* one byte of fmt, one pad */
    wb_chunk(&w, "LIST", 3, 'y');
    wb_data(&w, 8);
    r = parse_all_ways(w.d, w.n);
    ASSERT_EQ(r.rc, 1);
    ASSERT_EQ(r.consumed, w.n);
    ASSERT_EQ(r.info.fmt, PCM_MULAW);
    ASSERT_EQ(r.info.sample_rate, 8000);
}

/* 1-byte feeding: exactly the header is consumed, the call that completes it
 * consumes its last byte, and the data starts right after. */
static void test_one_byte_feeding(void)
{
    uint8_t buf[64];
    wav_write_header(buf, PCM_F32LE, 22050, 2, 20);
    for (int i = 44; i < 64; i++)
        buf[i] = (uint8_t)i;
    struct wav_parser *p = NULL;
    ASSERT_OK(wav_parser_create(&p));
    struct wav_info info;
    char msg[256];
    size_t i = 0, used = 0;
    int rc = 0;
    for (; i < sizeof buf && rc == 0; i++) {
        rc = wav_parser_feed(p, buf + i, 1, &used, &info, msg, sizeof msg);
        ASSERT_EQ(used, 1);
    }
    ASSERT_EQ(rc, 1);
    ASSERT_EQ(i, 44);
    ASSERT_EQ(info.fmt, PCM_F32LE);
    ASSERT_EQ(info.channels, 2);
    ASSERT_EQ(info.sample_rate, 22050);
    /* Data bytes fed after completion are not consumed. */
    ASSERT_EQ(wav_parser_feed(p, buf + 44, 20, &used, &info, msg, sizeof msg), 1);
    ASSERT_EQ(used, 0);
    wav_parser_destroy(p);

    /* Header and data in one buffer: consumed stops at the data. */
    ASSERT_OK(wav_parser_create(&p));
    ASSERT_EQ(wav_parser_feed(p, buf, sizeof buf, &used, &info, msg, sizeof msg), 1);
    ASSERT_EQ(used, 44);
    ASSERT_EQ(wav_parser_feed(p, NULL, 0, &used, &info, msg, sizeof msg), 1);
    wav_parser_destroy(p);
    wav_parser_destroy(NULL);
}

static void test_streamed_sizes(void)
{
    const uint32_t riff_sizes[] = {0, 0xFFFFFFFFu, 36};
    const uint32_t data_sizes[] = {0, 0xFFFFFFFFu, 7};
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            struct wb w;
            wb_riff(&w, riff_sizes[i]);
            wb_fmt(&w, 1, 1, 16000, 16);
            wb_data(&w, data_sizes[j]);
            struct result r = parse_all_ways(w.d, w.n);
            ASSERT_EQ(r.rc, 1);
            if (j < 2)
                ASSERT(r.info.data_bytes == UINT64_MAX);
            else
                ASSERT_EQ(r.info.data_bytes, 7);
        }
    }
    /* The writer keeps the streamed marker. */
    uint8_t hdr[44];
    wav_write_header(hdr, PCM_S16LE, 16000, 1, 0xFFFFFFFFu);
    ASSERT(memcmp(hdr + 4, "\xff\xff\xff\xff", 4) == 0);
    ASSERT(memcmp(hdr + 40, "\xff\xff\xff\xff", 4) == 0);
    struct result r = parse_all_ways(hdr, 44);
    ASSERT(r.info.data_bytes == UINT64_MAX);
}

static void test_rejects_non_wav(void)
{
    struct wb w;
    w.n = 0;
    wb_bytes(&w, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d", 13); /* raw PCM */
    expect_error(&w, HARK_E_BAD_AUDIO, "not a WAV file: expected 'RIFF....WAVE'");
    ASSERT(strstr(parse(w.d, w.n, 0).msg, "pcm_s16le") != NULL);
    w.n = 0;
    wb_bytes(&w, "RIFF\0\0\0\0AVI LIST", 16);
    expect_error(&w, HARK_E_BAD_AUDIO, "RIFF....WAVE");
    w.n = 0;
    wb_bytes(&w, "OggS\0\2\0\0\0\0\0\0\0\0", 14);
    expect_error(&w, HARK_E_BAD_AUDIO, "encoding");
    w.n = 0;
    wb_bytes(&w, "RF64\xff\xff\xff\xffWAVEds64", 16);
    expect_error(&w, HARK_E_UNSUPPORTED, "RF64");
}

static void test_rejects_bad_fmt(void)
{
    struct wb w;
    /* fmt too short */
    wb_riff(&w, 0);
    wb_bytes(&w, "fmt ", 4);
    wb_u32(&w, 14);
    wb_u16(&w, 1);
    wb_u16(&w, 1);
    wb_u32(&w, 16000);
    wb_u32(&w, 32000);
    wb_u16(&w, 2);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_BAD_AUDIO, "16");

    /* block_align mismatch */
    wb_riff(&w, 0);
    wb_fmt(&w, 1, 2, 16000, 16);
    w.d[w.n - 4] = 2; /* block_align 2 for 2 channels of 16 bits */
    wb_data(&w, 0);
    expect_error(&w, HARK_E_BAD_AUDIO, "block_align");

    wb_riff(&w, 0);
    wb_fmt(&w, 1, 0, 16000, 16);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_BAD_AUDIO, "0 channels");

    wb_riff(&w, 0);
    wb_fmt(&w, 1, 9, 16000, 16);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_UNSUPPORTED, "9 channels");

    const uint32_t bad_rates[] = {7999, 96000, 192000, 4000};
    for (int i = 0; i < 4; i++) {
        wb_riff(&w, 0);
        wb_fmt(&w, 1, 1, bad_rates[i], 16);
        wb_data(&w, 0);
        expect_error(&w, HARK_E_UNSUPPORTED, "8000 to 48000");
    }
    wb_riff(&w, 0);
    wb_fmt(&w, 1, 1, 0, 16);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_BAD_AUDIO, "sample rate 0");

    /* 12-bit PCM (in 2-byte containers) */
    wb_riff(&w, 0);
    wb_fmt(&w, 1, 1, 16000, 16);
    w.d[w.n - 2] = 12;
    wb_data(&w, 0);
    expect_error(&w, HARK_E_UNSUPPORTED, "12 bits");

    wb_riff(&w, 0);
    wb_fmt(&w, 3, 1, 16000, 16);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_UNSUPPORTED, "float");

    wb_riff(&w, 0);
    wb_fmt(&w, 7, 1, 8000, 16);
    wb_data(&w, 0);
    expect_error(&w, HARK_E_UNSUPPORTED, "mu-law");

    /* Compressed formats name their tag and list what is accepted. */
    const unsigned tags[] = {0x0002, 0x0011, 0x0055, 0x0050, 0x1234};
    const char *names[] = {"0x0002", "0x0011", "0x0055", "0x0050", "0x1234"};
    for (int i = 0; i < 5; i++) {
        wb_riff(&w, 0);
        wb_bytes(&w, "fmt ", 4);
        wb_u32(&w, 20);
        wb_u16(&w, tags[i]);
        wb_u16(&w, 1);
        wb_u32(&w, 16000);
        wb_u32(&w, 4055);
        wb_u16(&w, 256); /* ADPCM-style block */
        wb_u16(&w, 4);
        wb_u16(&w, 2);
        wb_u16(&w, 505);
        wb_data(&w, 0);
        expect_error(&w, HARK_E_UNSUPPORTED, names[i]);
        ASSERT(strstr(parse(w.d, w.n, 0).msg, "accepted") != NULL);
    }
    ASSERT(strstr(parse(w.d, w.n, 0).msg, "PCM") != NULL);
}

static void test_rejects_bad_structure(void)
{
    struct wb w;
    /* data before fmt */
    wb_riff(&w, 0);
    wb_data(&w, 100);
    expect_error(&w, HARK_E_BAD_AUDIO, "fmt");

    /* one chunk over the 1 MiB header limit: rejected from its header alone */
    wb_riff(&w, 0);
    wb_fmt(&w, 1, 1, 16000, 16);
    wb_bytes(&w, "LIST", 4);
    wb_u32(&w, 2u << 20);
    expect_error(&w, HARK_E_BAD_AUDIO, "1 MiB");

    /* many chunks adding up to more than 1 MiB */
    static uint8_t big[(1 << 20) + 4096];
    size_t n = 0;
    memcpy(big, "RIFF\0\0\0\0WAVE", 12);
    n = 12;
    while (n + 8 + 4000 < sizeof big) {
        memcpy(big + n, "JUNK\xa0\x0f\0\0", 8); /* 4000 bytes */
        memset(big + n + 8, 0, 4000);
        n += 8 + 4000;
    }
    struct result r = parse(big, n, 0);
    ASSERT_EQ(r.rc, HARK_E_BAD_AUDIO);
    ASSERT(strstr(r.msg, "1 MiB") != NULL);
    ASSERT_LE(r.consumed, 1 << 20);
    r = parse(big, n, 3001);
    ASSERT_EQ(r.rc, HARK_E_BAD_AUDIO);

    /* just under the limit is fine */
    n = 12;
    memcpy(big + n, "JUNK", 4);
    uint32_t junk = (1u << 20) - 12 - 8 - 24; /* 1 MiB exactly before "data" */
    for (int i = 0; i < 4; i++)
        big[n + 4 + i] = (uint8_t)(junk >> (8 * i));
    memset(big + n + 8, 0, junk);
    n += 8 + junk;
    w.n = 0;
    wb_fmt(&w, 1, 1, 16000, 16);
    wb_data(&w, 0);
    memcpy(big + n, w.d, w.n);
    n += w.n;
    ASSERT_EQ(n, (1u << 20) + 8);
    r = parse(big, n, 0);
    ASSERT_EQ(r.rc, 1);
    ASSERT_EQ(r.consumed, n);

    /* An errbuf of NULL or size 1 is tolerated. */
    struct wav_parser *p = NULL;
    ASSERT_OK(wav_parser_create(&p));
    size_t used;
    char one[1] = {'z'};
    ASSERT_EQ(wav_parser_feed(p, (const uint8_t *)"XXXXXXXXXXXXXXXX", 16, &used, NULL, NULL, 0),
              HARK_E_BAD_AUDIO);
    ASSERT_EQ(wav_parser_feed(p, (const uint8_t *)"X", 1, &used, NULL, one, 1), HARK_E_BAD_AUDIO);
    ASSERT_EQ(one[0], 0);
    wav_parser_destroy(p);
}

int main(void)
{
    RUN(test_real_clips);
    RUN(test_every_format);
    RUN(test_extensible);
    RUN(test_chunks_before_data);
    RUN(test_one_byte_feeding);
    RUN(test_streamed_sizes);
    RUN(test_rejects_non_wav);
    RUN(test_rejects_bad_fmt);
    RUN(test_rejects_bad_structure);
    return 0;
}
