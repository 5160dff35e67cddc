#include "audio/wav.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

/* Everything before the data chunk (RIFF header included) must fit in this. */
#define HEADER_LIMIT (1u << 20)
/* fmt bytes we look at: 16 basic + 2 cbSize + 22 WAVEFORMATEXTENSIBLE. */
#define FMT_KEEP 40

#define TAG_PCM 0x0001
#define TAG_FLOAT 0x0003
#define TAG_ALAW 0x0006
#define TAG_MULAW 0x0007
#define TAG_EXTENSIBLE 0xFFFE

#define ACCEPTED_FORMATS                                                                           \
    "accepted: PCM (format tag 1) 8/16/24/32-bit, IEEE float (3) 32/64-bit, A-law (6) 8-bit, "     \
    "mu-law (7) 8-bit, or WAVE_FORMAT_EXTENSIBLE (0xFFFE) of these"

enum state {
    ST_RIFF,      /* collecting "RIFF" size "WAVE" */
    ST_CHUNK_HDR, /* collecting a chunk id + size */
    ST_FMT,       /* collecting the first bytes of the fmt chunk */
    ST_SKIP,      /* skipping the rest of a chunk and its pad byte */
    ST_DONE,
    ST_ERROR,
};

struct wav_parser {
    enum state state;
    uint8_t buf[FMT_KEEP];
    size_t have; /* bytes collected in buf */
    size_t need; /* bytes the current state collects */
    uint64_t skip;
    uint32_t fmt_size; /* declared size of the fmt chunk being collected */
    uint64_t fmt_rest; /* fmt bytes (and pad) after the FMT_KEEP we keep */
    uint64_t header_bytes;
    int have_fmt;
    struct wav_info info;
    int result;    /* terminal result (1 or a negative hark_err) */
    char msg[256]; /* message of a terminal error, replayed on later calls */
};

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static int fail(struct wav_parser *p, int err, const char *fmt, ...) HARK_PRINTF(3, 4);

/* Records a terminal error; the message is kept so later calls repeat it. */
static int fail(struct wav_parser *p, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->msg, sizeof p->msg, fmt, ap);
    va_end(ap);
    p->state = ST_ERROR;
    p->result = err;
    return err;
}

/* A chunk id for messages: printable as is, otherwise hex. */
static void chunk_id_text(const uint8_t *id, char out[20])
{
    int printable = 1;
    for (int i = 0; i < 4; i++)
        if (id[i] < 0x20 || id[i] > 0x7E)
            printable = 0;
    if (printable)
        snprintf(out, 20, "'%c%c%c%c'", id[0], id[1], id[2], id[3]);
    else
        snprintf(out, 20, "0x%02X%02X%02X%02X", id[0], id[1], id[2], id[3]);
}

static const char *tag_name(unsigned tag)
{
    switch (tag) {
    case 0x0000:
        return "unknown";
    case 0x0002:
        return "Microsoft ADPCM";
    case 0x0011:
        return "IMA ADPCM";
    case 0x0031:
        return "GSM 6.10";
    case 0x0040:
        return "G.721 ADPCM";
    case 0x0050:
        return "MPEG";
    case 0x0055:
        return "MPEG Layer 3";
    case 0x00FF:
        return "AAC";
    case 0x1610:
        return "HE-AAC";
    case 0x2000:
        return "AC-3";
    case 0xF1AC:
        return "FLAC";
    default:
        return "unrecognised";
    }
}

static int check_riff(struct wav_parser *p)
{
    const uint8_t *b = p->buf;
    if (memcmp(b, "RF64", 4) == 0 || memcmp(b, "BW64", 4) == 0)
        return fail(p, HARK_E_UNSUPPORTED,
                    "RF64/BW64 (64-bit WAV) is not supported; send a RIFF WAV (under 4 GiB, or "
                    "with size 0xFFFFFFFF for a stream) or raw audio with encoding pcm_s16le, "
                    "pcm_f32le, mulaw or alaw");
    if (memcmp(b, "RIFX", 4) == 0 && memcmp(b + 8, "WAVE", 4) == 0)
        return fail(p, HARK_E_UNSUPPORTED,
                    "big-endian WAV (RIFX) is not supported; send a little-endian RIFF WAV or "
                    "raw audio with encoding pcm_s16le, pcm_f32le, mulaw or alaw");
    if (memcmp(b, "RIFF", 4) != 0 || memcmp(b + 8, "WAVE", 4) != 0)
        return fail(p, HARK_E_BAD_AUDIO,
                    "not a WAV file: expected 'RIFF....WAVE'; for raw audio set encoding to "
                    "pcm_s16le, pcm_f32le, mulaw or alaw");
    /* The RIFF size is not checked: 0 and 0xFFFFFFFF mark a stream of unknown
     * length, and many writers get it wrong anyway; the data chunk decides. */
    return 0;
}

/* Maps (format tag, bits) to a sample format; p->info gets rate/channels. */
static int parse_fmt(struct wav_parser *p, uint32_t size)
{
    const uint8_t *b = p->buf;
    unsigned tag = le16(b);
    unsigned channels = le16(b + 2);
    uint32_t rate = le32(b + 4);
    unsigned block_align = le16(b + 12);
    unsigned bits = le16(b + 14);
    unsigned outer_tag = tag;

    if (tag == TAG_EXTENSIBLE) {
        if (size < FMT_KEEP || le16(b + 16) < 22)
            return fail(p, HARK_E_BAD_AUDIO,
                        "WAVE_FORMAT_EXTENSIBLE fmt chunk is truncated (%u bytes, cbSize %u); it "
                        "needs 40 bytes with cbSize 22",
                        (unsigned)size, size >= 18 ? le16(b + 16) : 0u);
        tag = le16(b + 24); /* the sub-format GUID starts with the format tag */
    }

    enum pcm_format fmt;
    switch (tag) {
    case TAG_PCM:
        if (bits == 8)
            fmt = PCM_U8;
        else if (bits == 16)
            fmt = PCM_S16LE;
        else if (bits == 24)
            fmt = PCM_S24LE;
        else if (bits == 32)
            fmt = PCM_S32LE;
        else
            return fail(p, HARK_E_UNSUPPORTED,
                        "WAV PCM with %u bits per sample is not supported; accepted: PCM 8, 16, "
                        "24 or 32 bits, IEEE float 32 or 64 bits, A-law or mu-law 8 bits",
                        bits);
        break;
    case TAG_FLOAT:
        if (bits == 32)
            fmt = PCM_F32LE;
        else if (bits == 64)
            fmt = PCM_F64LE;
        else
            return fail(p, HARK_E_UNSUPPORTED,
                        "WAV IEEE float with %u bits per sample is not supported; accepted: "
                        "float 32 or 64 bits, PCM 8, 16, 24 or 32 bits, A-law or mu-law 8 bits",
                        bits);
        break;
    case TAG_ALAW:
    case TAG_MULAW:
        if (bits != 8)
            return fail(p, HARK_E_UNSUPPORTED,
                        "WAV %s with %u bits per sample is not supported; G.711 is 8 bits",
                        tag == TAG_ALAW ? "A-law" : "mu-law", bits);
        fmt = tag == TAG_ALAW ? PCM_ALAW : PCM_MULAW;
        break;
    default:
        if (outer_tag == TAG_EXTENSIBLE)
            return fail(p, HARK_E_UNSUPPORTED,
                        "WAVE_FORMAT_EXTENSIBLE sub-format 0x%04X (%s) is not supported; %s", tag,
                        tag_name(tag), ACCEPTED_FORMATS);
        return fail(p, HARK_E_UNSUPPORTED, "WAV format tag 0x%04X (%s) is not supported; %s", tag,
                    tag_name(tag), ACCEPTED_FORMATS);
    }

    if (channels == 0)
        return fail(p, HARK_E_BAD_AUDIO, "WAV fmt chunk says 0 channels; 1 to %d are accepted",
                    PCM_MAX_CHANNELS);
    if (channels > PCM_MAX_CHANNELS)
        return fail(p, HARK_E_UNSUPPORTED,
                    "WAV with %u channels is not supported; 1 to %d are accepted", channels,
                    PCM_MAX_CHANNELS);
    if (rate == 0)
        return fail(p, HARK_E_BAD_AUDIO,
                    "WAV fmt chunk says sample rate 0; 8000 to 48000 Hz are accepted");
    if (rate < 8000 || rate > 48000)
        return fail(p, HARK_E_UNSUPPORTED,
                    "WAV sample rate %u Hz is not supported; 8000 to 48000 Hz are accepted",
                    (unsigned)rate);
    unsigned expect_align = channels * (bits / 8);
    if (block_align != expect_align)
        return fail(p, HARK_E_BAD_AUDIO,
                    "WAV fmt chunk block_align is %u but %u channels of %u bits need %u",
                    block_align, channels, bits, expect_align);

    p->info.fmt = fmt;
    p->info.sample_rate = (int)rate;
    p->info.channels = (int)channels;
    p->info.bits = (int)bits;
    p->have_fmt = 1;
    return 0;
}

/* A chunk header is complete in p->buf: decide what to do with its body. */
static int on_chunk_header(struct wav_parser *p)
{
    const uint8_t *id = p->buf;
    uint32_t size = le32(p->buf + 4);

    if (memcmp(id, "data", 4) == 0) {
        if (!p->have_fmt)
            return fail(p, HARK_E_BAD_AUDIO,
                        "WAV data chunk comes before any fmt chunk; a WAV needs 'fmt ' before "
                        "'data'");
        p->info.data_bytes = (size == 0 || size == 0xFFFFFFFFu) ? UINT64_MAX : size;
        p->state = ST_DONE;
        p->result = 1;
        return 1;
    }

    uint64_t body = (uint64_t)size + (size & 1); /* chunks are padded to even size */
    if (p->header_bytes + body > HEADER_LIMIT) {
        char name[20];
        chunk_id_text(id, name);
        return fail(p, HARK_E_BAD_AUDIO,
                    "WAV header too large: chunk %s of %u bytes would put more than %u bytes "
                    "before the data chunk; at most 1 MiB of chunks may precede 'data'",
                    name, (unsigned)size, HEADER_LIMIT);
    }

    if (memcmp(id, "fmt ", 4) == 0) {
        if (size < 16)
            return fail(p, HARK_E_BAD_AUDIO,
                        "WAV fmt chunk is %u bytes; at least 16 are needed (40 for "
                        "WAVE_FORMAT_EXTENSIBLE)",
                        (unsigned)size);
        p->fmt_size = size;
        p->need = size < FMT_KEEP ? size : FMT_KEEP;
        p->fmt_rest = body - p->need;
        p->have = 0;
        p->state = ST_FMT;
        return 0;
    }

    /* LIST, fact, bext, JUNK, cue, ...: metadata the pipeline has no use for. */
    p->skip = body;
    p->state = ST_SKIP;
    return 0;
}

static void start_chunk_header(struct wav_parser *p)
{
    p->have = 0;
    p->need = 8;
    p->state = ST_CHUNK_HDR;
}

int wav_parser_create(struct wav_parser **out)
{
    if (!out)
        return HARK_E_INVAL;
    struct wav_parser *p = hark_calloc(1, sizeof *p);
    *out = p;
    if (!p)
        return HARK_E_NOMEM;
    p->state = ST_RIFF;
    p->need = 12;
    return 0;
}

void wav_parser_destroy(struct wav_parser *p)
{
    hark_free(p);
}

int wav_parser_feed(struct wav_parser *p, const uint8_t *in, size_t len, size_t *consumed,
                    struct wav_info *info, char *errbuf, size_t errbuf_size)
{
    size_t pos = 0;
    int rc = 0;

    while (rc == 0 && p->state != ST_DONE && p->state != ST_ERROR && pos < len) {
        size_t avail = len - pos;
        if (p->state == ST_SKIP) {
            size_t n = p->skip < avail ? (size_t)p->skip : avail;
            p->skip -= n;
            pos += n;
            p->header_bytes += n;
            if (p->skip == 0)
                start_chunk_header(p);
            continue;
        }

        size_t n = p->need - p->have;
        if (n > avail)
            n = avail;
        memcpy(p->buf + p->have, in + pos, n);
        p->have += n;
        pos += n;
        p->header_bytes += n;
        if (p->have < p->need)
            break;

        switch (p->state) {
        case ST_RIFF:
            rc = check_riff(p);
            if (rc == 0)
                start_chunk_header(p);
            break;
        case ST_CHUNK_HDR:
            rc = on_chunk_header(p);
            break;
        case ST_FMT:
            rc = parse_fmt(p, p->fmt_size);
            if (rc == 0) {
                p->skip = p->fmt_rest;
                if (p->skip)
                    p->state = ST_SKIP;
                else
                    start_chunk_header(p);
            }
            break;
        default:
            break;
        }
    }

    if (consumed)
        *consumed = pos;
    if (p->state == ST_DONE) {
        if (info)
            *info = p->info;
        return 1;
    }
    if (p->state == ST_ERROR) {
        err_set(errbuf, errbuf_size, p->result, "%s", p->msg);
        return p->result;
    }
    return 0;
}

void wav_write_header(uint8_t out[44], enum pcm_format fmt, int sample_rate, int channels,
                      uint32_t data_bytes)
{
    unsigned sb = (unsigned)pcm_sample_bytes(fmt);
    uint16_t tag = TAG_PCM;
    if (fmt == PCM_F32LE || fmt == PCM_F64LE)
        tag = TAG_FLOAT;
    else if (fmt == PCM_ALAW)
        tag = TAG_ALAW;
    else if (fmt == PCM_MULAW)
        tag = TAG_MULAW;
    unsigned align = sb * (unsigned)channels;
    /* A stream of unknown length keeps 0xFFFFFFFF rather than wrapping. */
    uint32_t riff = data_bytes > 0xFFFFFFFFu - 36 ? 0xFFFFFFFFu : data_bytes + 36;

    memcpy(out, "RIFF", 4);
    put32(out + 4, riff);
    memcpy(out + 8, "WAVE", 4);
    memcpy(out + 12, "fmt ", 4);
    put32(out + 16, 16);
    put16(out + 20, tag);
    put16(out + 22, (uint16_t)channels);
    put32(out + 24, (uint32_t)sample_rate);
    put32(out + 28, (uint32_t)sample_rate * align);
    put16(out + 32, (uint16_t)align);
    put16(out + 34, (uint16_t)(sb * 8));
    memcpy(out + 36, "data", 4);
    put32(out + 40, data_bytes);
}
