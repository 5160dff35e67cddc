/* WebM demuxing: a real Chromium MediaRecorder recording (the fuzz seed made
 * by tests/fuzz/make_webm_seed.mjs) in any chunking, streams built here with
 * known sizes, every lacing, tracks of other kinds, and every rejection with
 * its error code and message. */
#include <stdint.h>

#include "audio/webm.h"
#include "check.h"
#include "hark/hark.h"

/* The source tree, for the committed seed: from the build when it says, else
 * from this file's own path (tests/unit/test_webm.c). */
static void src_path(char *out, size_t n, const char *rel)
{
#ifdef HARK_SRC_DIR
    snprintf(out, n, "%s/%s", HARK_SRC_DIR, rel);
#else
    const char *f = __FILE__;
    const char *end = strstr(f, "tests/unit/test_webm.c");
    int len = end ? (int)(end - f) : 0;
    snprintf(out, n, "%.*s%s", len, f, rel);
#endif
}

/* ---------------------------------------------------------------- packets */

/* Every packet delivered, concatenated, with their lengths. */
struct pkts {
    uint8_t *data;
    size_t len, cap;
    size_t sizes[4096];
    size_t count;
    int stop_at; /* return 7 from the callback for packet number stop_at (1-based) */
};

static int on_packet(void *user, const uint8_t *pkt, size_t len)
{
    struct pkts *p = user;
    ASSERT(len > 0);
    ASSERT(p->count < sizeof p->sizes / sizeof p->sizes[0]);
    if (p->len + len > p->cap) {
        p->cap = (p->len + len) * 2;
        p->data = realloc(p->data, p->cap);
        ASSERT(p->data != NULL);
    }
    memcpy(p->data + p->len, pkt, len);
    p->len += len;
    p->sizes[p->count++] = len;
    if (p->stop_at && (int)p->count == p->stop_at)
        return 7;
    return 0;
}

static void pkts_free(struct pkts *p)
{
    free(p->data);
    memset(p, 0, sizeof *p);
}

/* Packet i (0 = the head) and its offset in data. */
static const uint8_t *pkt_at(const struct pkts *p, size_t i)
{
    size_t off = 0;
    for (size_t k = 0; k < i; k++)
        off += p->sizes[k];
    return p->data + off;
}

/* Feeds data in pieces of `piece` bytes (0 = whole); returns the first
 * nonzero result, with the message in err. */
static int demux(const uint8_t *data, size_t len, size_t piece, struct pkts *out, char *err,
                 size_t errn)
{
    struct webm_demux *d = NULL;
    ASSERT_OK(webm_demux_create(&d, on_packet, out));
    int rc = 0;
    if (piece == 0)
        piece = len ? len : 1;
    for (size_t pos = 0; pos < len && rc == 0; pos += piece) {
        size_t n = len - pos < piece ? len - pos : piece;
        rc = webm_demux_feed(d, data + pos, n, err, errn);
    }
    if (rc) {
        /* Sticky: the same result and message again, no more packets. */
        size_t count = out->count;
        char err2[256] = "";
        int rc2 = webm_demux_feed(d, data, len, err2, sizeof err2);
        ASSERT_EQ(rc2, rc);
        if (rc < 0 && err)
            ASSERT_STR_EQ(err2, err);
        ASSERT_EQ(out->count, count);
    }
    webm_demux_destroy(d);
    return rc;
}

/* ---------------------------------------------------------------- builder */

struct eb {
    uint8_t *d;
    size_t n, cap;
};

static void eb_bytes(struct eb *w, const void *p, size_t n)
{
    if (w->n + n > w->cap) {
        w->cap = (w->n + n) * 2 + 64;
        w->d = realloc(w->d, w->cap);
        ASSERT(w->d != NULL);
    }
    if (n)
        memcpy(w->d + w->n, p, n);
    w->n += n;
}

static void eb_byte(struct eb *w, unsigned b)
{
    uint8_t c = (uint8_t)b;
    eb_bytes(w, &c, 1);
}

static void eb_id(struct eb *w, uint32_t id)
{
    int len = id > 0xFFFFFF ? 4 : id > 0xFFFF ? 3 : id > 0xFF ? 2 : 1;
    for (int i = len - 1; i >= 0; i--)
        eb_byte(w, id >> (8 * i));
}

/* A size VINT of the smallest length (all-ones values are reserved). */
static void eb_size(struct eb *w, uint64_t v)
{
    int len = 1;
    while (len < 8 && v >= ((uint64_t)1 << (7 * len)) - 1)
        len++;
    uint64_t marked = v | ((uint64_t)1 << (7 * len));
    for (int i = len - 1; i >= 0; i--)
        eb_byte(w, (unsigned)(marked >> (8 * i)));
}

static void eb_unknown(struct eb *w)
{
    static const uint8_t u[8] = {0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    eb_bytes(w, u, 8);
}

static void eb_elem(struct eb *w, uint32_t id, const void *p, size_t n)
{
    eb_id(w, id);
    eb_size(w, n);
    eb_bytes(w, p, n);
}

static void eb_uint(struct eb *w, uint32_t id, uint64_t v)
{
    uint8_t b[8];
    int len = 1;
    while (len < 8 && v >> (8 * len))
        len++;
    for (int i = 0; i < len; i++)
        b[i] = (uint8_t)(v >> (8 * (len - 1 - i)));
    eb_elem(w, id, b, (size_t)len);
}

static void eb_str(struct eb *w, uint32_t id, const char *s)
{
    eb_elem(w, id, s, strlen(s));
}

/* A master of known size: ID and an 8-byte size patched by eb_close. */
static size_t eb_open(struct eb *w, uint32_t id)
{
    eb_id(w, id);
    size_t at = w->n;
    static const uint8_t z[8] = {0x01};
    eb_bytes(w, z, 8);
    return at;
}

static void eb_close(struct eb *w, size_t at)
{
    uint64_t size = w->n - at - 8;
    for (int i = 1; i < 8; i++)
        w->d[at + (size_t)i] = (uint8_t)(size >> (8 * (7 - i)));
}

static void eb_free(struct eb *w)
{
    free(w->d);
    memset(w, 0, sizeof *w);
}

static const uint8_t opus_head_stereo[19] = {'O',  'p',  'u',  's',  'H', 'e', 'a', 'd', 1, 2,
                                             0x38, 0x01, 0x80, 0xBB, 0,   0,   0,   0,   0};

static void eb_ebml_header(struct eb *w)
{
    size_t h = eb_open(w, 0x1A45DFA3);
    eb_uint(w, 0x4286, 1);
    eb_str(w, 0x4282, "webm");
    eb_uint(w, 0x4287, 4);
    eb_close(w, h);
}

/* A TrackEntry; codec_private NULL for none, channels 0 for no Audio. */
static void eb_track(struct eb *w, uint64_t number, uint64_t type, const char *codec,
                     const void *priv, size_t priv_len, uint64_t channels)
{
    size_t t = eb_open(w, 0xAE);
    eb_uint(w, 0xD7, number);
    eb_uint(w, 0x73C5, number * 1000); /* TrackUID */
    eb_uint(w, 0x83, type);
    eb_str(w, 0x86, codec);
    if (priv)
        eb_elem(w, 0x63A2, priv, priv_len);
    if (channels) {
        size_t a = eb_open(w, 0xE1);
        eb_uint(w, 0x9F, channels);
        eb_close(w, a);
    }
    eb_close(w, t);
}

/* A block body: track, timecode, flags, then the payload given. */
static void eb_block(struct eb *w, uint32_t id, uint64_t track, unsigned flags, const void *p,
                     size_t n)
{
    struct eb b = {0};
    eb_size(&b, track); /* the track number is a VINT like a size */
    eb_byte(&b, 0);
    eb_byte(&b, 0);
    eb_byte(&b, flags);
    eb_bytes(&b, p, n);
    eb_elem(w, id, b.d, b.n);
    eb_free(&b);
}

/* A payload of n bytes of value v (distinct packets are easy to check). */
static const uint8_t *fill(size_t n, uint8_t v)
{
    static uint8_t buf[1 << 17];
    ASSERT(n <= sizeof buf);
    memset(buf, v, n);
    return buf;
}

/* Duration of an Opus packet from its TOC (RFC 6716 §3.1), 0 when the
 * packet is malformed: the check that a packet is plausibly Opus. */
static double opus_packet_ms(const uint8_t *p, size_t len)
{
    static const double silk[4] = {10, 20, 40, 60}, hybrid[2] = {10, 20},
                        celt[4] = {2.5, 5, 10, 20};
    if (len < 1 || len > 1275 * 48)
        return 0;
    unsigned config = p[0] >> 3;
    double frame = config < 12   ? silk[config % 4]
                   : config < 16 ? hybrid[config % 2]
                                 : celt[config % 4];
    unsigned frames;
    switch (p[0] & 3) {
    case 0:
        frames = 1;
        break;
    case 1:
    case 2:
        frames = 2;
        break;
    default:
        if (len < 2)
            return 0;
        frames = p[1] & 0x3F;
        break;
    }
    return frames * frame;
}

/* ---------------------------------------------------------------- tests */

/* The real recording: whole, one byte at a time and in odd pieces, the same
 * packets; first the OpusHead, then Opus packets of plausible size. */
static void test_mediarecorder_seed(void)
{
    char path[4096];
    src_path(path, sizeof path, "tests/fuzz/corpus/webm/mediarecorder_opus.webm");
    size_t len = 0;
    uint8_t *data = check_read_file(path, &len);
    if (!data)
        FAIL_("cannot read %s", path);
    ASSERT(webm_sniff(data, len));

    struct pkts whole = {0}, bytes = {0}, odd = {0};
    char err[256] = "";
    ASSERT_OK(demux(data, len, 0, &whole, err, sizeof err));
    ASSERT_OK(demux(data, len, 1, &bytes, err, sizeof err));
    ASSERT_OK(demux(data, len, 7, &odd, err, sizeof err));

    ASSERT_GE(whole.count, 1 + 20); /* 1.5 s; Chromium writes 60 ms packets */
    ASSERT(whole.sizes[0] >= 19 && memcmp(whole.data, "OpusHead", 8) == 0);
    ASSERT_EQ(whole.data[8], 1);                      /* version */
    ASSERT(whole.data[9] == 1 || whole.data[9] == 2); /* channels */
    double total_ms = 0;
    for (size_t i = 1; i < whole.count; i++) {
        double ms = opus_packet_ms(pkt_at(&whole, i), whole.sizes[i]);
        ASSERT(ms > 0 && ms <= 120);
        total_ms += ms;
    }
    /* What was recorded, nothing lost: about 1.5 s. */
    ASSERT_GE(total_ms, 1000);
    ASSERT_LE(total_ms, 2000);
    fprintf(stderr, "  seed: %zu bytes, %zu packets after the head, %.0f ms\n", len,
            whole.count - 1, total_ms);

    ASSERT_EQ(bytes.count, whole.count);
    ASSERT_EQ(odd.count, whole.count);
    ASSERT_EQ(bytes.len, whole.len);
    ASSERT_EQ(odd.len, whole.len);
    ASSERT(memcmp(bytes.sizes, whole.sizes, whole.count * sizeof whole.sizes[0]) == 0);
    ASSERT(memcmp(bytes.data, whole.data, whole.len) == 0);
    ASSERT(memcmp(odd.data, whole.data, whole.len) == 0);

    /* Cut anywhere, the first part is no error and gives a prefix. */
    for (size_t cut = 0; cut < len; cut += 97) {
        struct pkts part = {0};
        ASSERT_OK(demux(data, cut, 0, &part, err, sizeof err));
        ASSERT_LE(part.count, whole.count);
        ASSERT(part.len == 0 || memcmp(part.data, whole.data, part.len) == 0);
        pkts_free(&part);
    }
    pkts_free(&whole);
    pkts_free(&bytes);
    pkts_free(&odd);
    free(data);
}

/* Known sizes everywhere, a video track first whose blocks (one larger than
 * the block cap) are skipped, Info/Void/Cues/Tags skipped, a BlockGroup. */
static void test_known_sizes(void)
{
    struct eb w = {0};
    eb_ebml_header(&w);
    size_t seg = eb_open(&w, 0x18538067);
    size_t info = eb_open(&w, 0x1549A966);
    eb_uint(&w, 0x2AD7B1, 1000000);
    eb_close(&w, info);
    eb_elem(&w, 0xEC, fill(10, 0), 10); /* Void */
    size_t tracks = eb_open(&w, 0x1654AE6B);
    eb_track(&w, 1, 1, "V_VP8", fill(5000, 1), 5000, 0); /* CodecPrivate over the cap: skipped */
    eb_track(&w, 2, 2, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_close(&w, tracks);
    size_t cl = eb_open(&w, 0x1F43B675);
    eb_uint(&w, 0xE7, 0);
    eb_block(&w, 0xA3, 1, 0x80, fill(100000, 0x11), 100000);
    eb_block(&w, 0xA3, 2, 0x80, fill(40, 0xA1), 40);
    size_t bg = eb_open(&w, 0xA0);
    eb_block(&w, 0xA1, 2, 0x00, fill(50, 0xA2), 50);
    eb_uint(&w, 0x9B, 20); /* BlockDuration */
    eb_close(&w, bg);
    eb_elem(&w, 0xEC, NULL, 0); /* empty Void */
    eb_block(&w, 0xA3, 2, 0x80, fill(60, 0xA3), 60);
    eb_close(&w, cl);
    size_t cues = eb_open(&w, 0x1C53BB6B);
    eb_elem(&w, 0xBB, fill(20, 0), 20);
    eb_close(&w, cues);
    cl = eb_open(&w, 0x1F43B675);
    eb_uint(&w, 0xE7, 60);
    eb_block(&w, 0xA3, 2, 0x80, fill(70, 0xA4), 70);
    eb_close(&w, cl);
    eb_close(&w, seg);

    for (size_t piece = 0; piece < 4; piece++) {
        struct pkts p = {0};
        char err[256] = "";
        int rc = demux(w.d, w.n, piece == 3 ? 1000 : piece, &p, err, sizeof err);
        if (rc)
            FAIL_("rc %d: %s", rc, err);
        ASSERT_EQ(p.count, 5);
        ASSERT_EQ(p.sizes[0], sizeof opus_head_stereo);
        ASSERT(memcmp(p.data, opus_head_stereo, sizeof opus_head_stereo) == 0);
        size_t want[4] = {40, 50, 60, 70};
        for (int i = 0; i < 4; i++) {
            ASSERT_EQ(p.sizes[i + 1], want[i]);
            ASSERT_EQ(pkt_at(&p, (size_t)i + 1)[0], 0xA1 + i);
        }
        pkts_free(&p);
    }
    eb_free(&w);
}

/* EBML header, Segment of unknown size, Tracks; `codec_private` NULL for
 * none. The stream continues with clusters the caller adds. */
static void eb_start(struct eb *w, const char *codec, const void *priv, size_t priv_len,
                     uint64_t channels)
{
    eb_ebml_header(w);
    eb_id(w, 0x18538067);
    eb_unknown(w);
    size_t tracks = eb_open(w, 0x1654AE6B);
    eb_track(w, 1, 2, codec, priv, priv_len, channels);
    eb_close(w, tracks);
}

/* Xiph, fixed and EBML lacing split into their frames. */
static void test_lacing(void)
{
    struct eb w = {0};
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);

    /* Xiph: 3 frames of 300, 10 and 25 bytes: sizes 255+45, 10. */
    struct eb b = {0};
    eb_byte(&b, 2);
    eb_byte(&b, 255);
    eb_byte(&b, 45);
    eb_byte(&b, 10);
    eb_bytes(&b, fill(300, 1), 300);
    eb_bytes(&b, fill(10, 2), 10);
    eb_bytes(&b, fill(25, 3), 25);
    eb_block(&w, 0xA3, 1, 0x80 | 0x02, b.d, b.n);
    b.n = 0;

    /* Fixed: 4 frames of 30 bytes. */
    eb_byte(&b, 3);
    for (int i = 0; i < 4; i++)
        eb_bytes(&b, fill(30, (uint8_t)(4 + i)), 30);
    eb_block(&w, 0xA3, 1, 0x80 | 0x04, b.d, b.n);
    b.n = 0;

    /* EBML: 3 frames of 200, 150 (diff -50) and 20 bytes. */
    eb_byte(&b, 2);
    eb_byte(&b, 0x40 | (200 >> 8)); /* 200 as a 2-byte VINT */
    eb_byte(&b, 200 & 0xFF);
    eb_byte(&b, 0x80 | (uint8_t)(-50 + 63)); /* 1-byte signed VINT, bias 63 */
    eb_bytes(&b, fill(200, 8), 200);
    eb_bytes(&b, fill(150, 9), 150);
    eb_bytes(&b, fill(20, 10), 20);
    size_t bg = eb_open(&w, 0xA0);
    eb_block(&w, 0xA1, 1, 0x06, b.d, b.n);
    eb_close(&w, bg);
    eb_free(&b);

    struct pkts p = {0}, q = {0};
    char err[256] = "";
    int rc = demux(w.d, w.n, 0, &p, err, sizeof err);
    if (rc)
        FAIL_("rc %d: %s", rc, err);
    ASSERT_OK(demux(w.d, w.n, 1, &q, err, sizeof err));
    size_t want[] = {19, 300, 10, 25, 30, 30, 30, 30, 200, 150, 20};
    uint8_t first[] = {'O', 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    ASSERT_EQ(p.count, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < p.count; i++) {
        ASSERT_EQ(p.sizes[i], want[i]);
        ASSERT_EQ(pkt_at(&p, i)[0], first[i]);
        ASSERT_EQ(pkt_at(&p, i)[p.sizes[i] - 1], first[i] == 'O' ? 0 : first[i]);
    }
    ASSERT_EQ(q.len, p.len);
    ASSERT(memcmp(q.data, p.data, p.len) == 0);
    pkts_free(&p);
    pkts_free(&q);
    eb_free(&w);
}

/* No CodecPrivate: a minimal OpusHead with the Audio/Channels count. */
static void test_synthesized_head(void)
{
    for (uint64_t ch = 0; ch <= 2; ch++) {
        struct eb w = {0};
        eb_start(&w, "A_OPUS", NULL, 0, ch);
        eb_id(&w, 0x1F43B675);
        eb_unknown(&w);
        eb_block(&w, 0xA3, 1, 0x80, fill(33, 0xF8), 33);
        struct pkts p = {0};
        char err[256] = "";
        ASSERT_OK(demux(w.d, w.n, 0, &p, err, sizeof err));
        ASSERT_EQ(p.count, 2);
        ASSERT_EQ(p.sizes[0], 19);
        uint8_t want[19] = {'O', 'p', 'u',  's',  'H', 'e', 'a', 'd', 1, (uint8_t)(ch ? ch : 1),
                            0,   0,   0x80, 0xBB, 0,   0,   0,   0,   0};
        ASSERT(memcmp(p.data, want, 19) == 0);
        ASSERT_EQ(p.sizes[1], 33);
        pkts_free(&p);
        eb_free(&w);
    }
}

/* Clusters of unknown size end at the next Cluster or a top-level element;
 * a second Segment with the same OpusHead goes on without a second head. */
static void test_unknown_sizes_and_segments(void)
{
    struct eb w = {0};
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    for (int c = 0; c < 3; c++) {
        eb_id(&w, 0x1F43B675);
        eb_unknown(&w);
        eb_uint(&w, 0xE7, (uint64_t)c * 40);
        eb_block(&w, 0xA3, 1, 0x80, fill(20, (uint8_t)(c * 2 + 1)), 20);
        eb_block(&w, 0xA3, 1, 0x80, fill(20, (uint8_t)(c * 2 + 2)), 20);
    }
    size_t cues = eb_open(&w, 0x1C53BB6B); /* ends the last Cluster */
    eb_close(&w, cues);
    size_t tags = eb_open(&w, 0x1254C367);
    eb_elem(&w, 0x7373, fill(30, 0), 30);
    eb_close(&w, tags);
    /* A second recording appended: EBML header ends the Segment. */
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    eb_block(&w, 0xA3, 1, 0x80, fill(20, 7), 20);

    struct pkts p = {0};
    char err[256] = "";
    int rc = demux(w.d, w.n, 3, &p, err, sizeof err);
    if (rc)
        FAIL_("rc %d: %s", rc, err);
    ASSERT_EQ(p.count, 8);
    for (size_t i = 1; i < 8; i++)
        ASSERT_EQ(pkt_at(&p, i)[0], i);
    pkts_free(&p);

    /* A second Segment whose OpusHead differs is refused. */
    uint8_t mono[19];
    memcpy(mono, opus_head_stereo, 19);
    mono[9] = 1;
    eb_start(&w, "A_OPUS", mono, sizeof mono, 1);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    eb_block(&w, 0xA3, 1, 0x80, fill(20, 8), 20);
    rc = demux(w.d, w.n, 0, &p, err, sizeof err);
    ASSERT_EQ(rc, HARK_E_UNSUPPORTED);
    ASSERT(strstr(err, "OpusHead") != NULL);
    ASSERT_EQ(p.count, 8);
    pkts_free(&p);
    eb_free(&w);
}

/* Multi-byte track numbers, a second A_OPUS track (ignored: the first one
 * is delivered), empty elements, blocks of other tracks interleaved. */
static void test_track_choice(void)
{
    struct eb w = {0};
    eb_ebml_header(&w);
    eb_id(&w, 0x18538067);
    eb_unknown(&w);
    size_t tracks = eb_open(&w, 0x1654AE6B);
    eb_track(&w, 5, 1, "V_VP9", NULL, 0, 0);
    eb_track(&w, 300, 2, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_track(&w, 20000, 2, "A_OPUS", NULL, 0, 1);
    eb_close(&w, tracks);
    eb_elem(&w, 0xEC, NULL, 0);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    for (int i = 0; i < 6; i++) {
        uint64_t track = i % 3 == 0 ? 5 : i % 3 == 1 ? 300 : 20000;
        eb_block(&w, 0xA3, track, 0x80, fill(25 + (size_t)i, (uint8_t)(i + 1)), 25 + (size_t)i);
    }
    for (size_t piece = 0; piece <= 1; piece++) {
        struct pkts p = {0};
        char err[256] = "";
        int rc = demux(w.d, w.n, piece, &p, err, sizeof err);
        if (rc)
            FAIL_("rc %d: %s", rc, err);
        ASSERT_EQ(p.count, 3);
        ASSERT(memcmp(p.data, opus_head_stereo, sizeof opus_head_stereo) == 0);
        ASSERT_EQ(p.sizes[1], 26);
        ASSERT_EQ(pkt_at(&p, 1)[0], 2);
        ASSERT_EQ(p.sizes[2], 29);
        ASSERT_EQ(pkt_at(&p, 2)[0], 5);
        pkts_free(&p);
    }
    eb_free(&w);
}

/* Hours of stream: the allocations do not grow with its length. */
static void test_bounded_memory(void)
{
    struct eb head = {0}, cluster = {0};
    eb_start(&head, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_id(&cluster, 0x1F43B675);
    eb_unknown(&cluster);
    for (int i = 0; i < 50; i++) /* one second of 20 ms packets */
        eb_block(&cluster, 0xA3, 1, 0x80, fill(160, (uint8_t)i), 160);

    struct pkts p = {0};
    struct webm_demux *d = NULL;
    ASSERT_OK(webm_demux_create(&d, on_packet, &p));
    char err[256];
    ASSERT_OK(webm_demux_feed(d, head.d, head.n, err, sizeof err));
    ASSERT_OK(webm_demux_feed(d, cluster.d, cluster.n, err, sizeof err));
    long allocs = mem_outstanding();
    for (int s = 0; s < 3 * 3600; s++) { /* three hours */
        p.count = 0;
        p.len = 0;
        ASSERT_OK(webm_demux_feed(d, cluster.d, cluster.n, err, sizeof err));
        ASSERT_EQ(p.count, 50);
    }
    ASSERT_EQ(mem_outstanding(), allocs);
    webm_demux_destroy(d);
    pkts_free(&p);
    eb_free(&head);
    eb_free(&cluster);
}

/* Runs a malformed stream; checks code and a message fragment. */
static void expect_error(const uint8_t *data, size_t len, int code, const char *fragment)
{
    for (size_t piece = 0; piece <= 1; piece++) {
        struct pkts p = {0};
        char err[256] = "";
        int rc = demux(data, len, piece, &p, err, sizeof err);
        if (rc != code || !strstr(err, fragment))
            FAIL_("expected %s with \"%s\", got %s: \"%s\"", hark_err_name(code), fragment,
                  hark_err_name(rc), err);
        if (piece == 0)
            fprintf(stderr, "  %s: %s\n", hark_err_name(rc), err);
        for (size_t i = 0; i < p.count; i++)
            ASSERT(p.sizes[i] > 0);
        if (p.count)
            ASSERT(memcmp(p.data, "OpusHead", 8) == 0);
        pkts_free(&p);
    }
}

static void test_errors(void)
{
    /* Not EBML at all. */
    uint8_t wav[44] = "RIFF\x24\x00\x00\x00WAVEfmt ";
    expect_error(wav, sizeof wav, HARK_E_BAD_AUDIO, "expected an EBML header");
    const uint8_t zeros[8] = {0};
    expect_error(zeros, sizeof zeros, HARK_E_BAD_AUDIO, "expected an EBML header");
    const uint8_t ogg[] = "OggS\x00\x02";
    expect_error(ogg, sizeof ogg - 1, HARK_E_BAD_AUDIO, "not a WebM stream");

    struct eb w = {0};

    /* A SimpleBlock of unknown size. */
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    eb_id(&w, 0xA3);
    eb_unknown(&w);
    eb_bytes(&w, fill(30, 0x81), 30);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "SimpleBlock 0xA3 at byte");
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "unknown size");
    w.n = 0;

    /* Tracks of unknown size. */
    eb_ebml_header(&w);
    eb_id(&w, 0x18538067);
    eb_unknown(&w);
    eb_id(&w, 0x1654AE6B);
    eb_unknown(&w);
    expect_error(w.d, w.n, HARK_E_UNSUPPORTED, "Tracks at byte");
    w.n = 0;

    /* An Opus block over the 64 KiB cap. */
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    eb_block(&w, 0xA3, 1, 0x80, fill(70000, 1), 70000);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "at most 65536");
    w.n = 0;

    /* Vorbis only: refused at the first block with the codec named. */
    eb_start(&w, "A_VORBIS", fill(3000, 2), 3000, 2);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    eb_block(&w, 0xA3, 1, 0x80, fill(30, 1), 30);
    expect_error(w.d, w.n, HARK_E_UNSUPPORTED,
                 "WebM audio codec A_VORBIS is not supported; hark decodes Opus");
    {
        /* Before the first block it is no error yet. */
        struct pkts p = {0};
        char err[256] = "";
        ASSERT_OK(demux(w.d, w.n - 35, 0, &p, err, sizeof err));
        ASSERT_EQ(p.count, 0);
    }
    w.n = 0;

    /* Video only. */
    eb_ebml_header(&w);
    eb_id(&w, 0x18538067);
    eb_unknown(&w);
    size_t tr = eb_open(&w, 0x1654AE6B);
    eb_track(&w, 1, 1, "V_VP9", NULL, 0, 0);
    eb_close(&w, tr);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    eb_block(&w, 0xA3, 1, 0x80, fill(30, 1), 30);
    expect_error(w.d, w.n, HARK_E_UNSUPPORTED, "no audio track (first codec V_VP9)");
    w.n = 0;

    /* A block before any Tracks. */
    eb_ebml_header(&w);
    eb_id(&w, 0x18538067);
    eb_unknown(&w);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    eb_block(&w, 0xA3, 1, 0x80, fill(30, 1), 30);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "before any Tracks");
    w.n = 0;

    /* A CodecPrivate that is not an OpusHead. */
    eb_start(&w, "A_OPUS", "OpusTags0123456789012", 21, 2);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "not an OpusHead");
    w.n = 0;

    /* An element running past its parent. */
    eb_ebml_header(&w);
    size_t seg = eb_open(&w, 0x18538067);
    eb_id(&w, 0xEC);
    eb_size(&w, 100);
    eb_bytes(&w, fill(10, 0), 10);
    eb_close(&w, seg);
    eb_bytes(&w, fill(100, 0), 100);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "runs past the end of its parent Segment");
    w.n = 0;

    /* A corrupt ID inside the stream. */
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_byte(&w, 0x05);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "invalid ID (first byte 0x05)");
    w.n = 0;

    /* Xiph lacing whose sizes exceed the block. */
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    const uint8_t lace[] = {1, 255, 255, 10, 1, 2, 3};
    eb_block(&w, 0xA3, 1, 0x82, lace, sizeof lace);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "declares 520 bytes of frames");
    w.n = 0;

    /* A Cluster outside a Segment. */
    eb_ebml_header(&w);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    expect_error(w.d, w.n, HARK_E_BAD_AUDIO, "Cluster at byte");
    eb_free(&w);
}

/* A nonzero callback result stops the feed and stays. */
static void test_callback_stop(void)
{
    struct eb w = {0};
    eb_start(&w, "A_OPUS", opus_head_stereo, sizeof opus_head_stereo, 2);
    eb_id(&w, 0x1F43B675);
    eb_unknown(&w);
    for (int i = 0; i < 5; i++)
        eb_block(&w, 0xA3, 1, 0x80, fill(20, (uint8_t)i), 20);
    for (size_t piece = 0; piece <= 1; piece++) {
        struct pkts p = {.stop_at = 3};
        char err[256] = "untouched";
        ASSERT_EQ(demux(w.d, w.n, piece, &p, err, sizeof err), 7);
        ASSERT_EQ(p.count, 3);
        ASSERT_STR_EQ(err, "untouched");
        pkts_free(&p);
    }
    eb_free(&w);
}

static void test_sniff_and_args(void)
{
    const uint8_t ebml[] = {0x1A, 0x45, 0xDF, 0xA3, 0x9F};
    ASSERT_EQ(webm_sniff(ebml, sizeof ebml), 1);
    ASSERT_EQ(webm_sniff(ebml, 4), 1);
    ASSERT_EQ(webm_sniff(ebml, 3), 0);
    ASSERT_EQ(webm_sniff((const uint8_t *)"RIFF", 4), 0);
    ASSERT_EQ(webm_sniff(NULL, 0), 0);

    struct webm_demux *d = (struct webm_demux *)1;
    ASSERT_EQ(webm_demux_create(&d, NULL, NULL), HARK_E_INVAL);
    ASSERT(d == NULL);
    ASSERT_EQ(webm_demux_create(NULL, on_packet, NULL), HARK_E_INVAL);
    webm_demux_destroy(NULL);

    struct pkts p = {0};
    ASSERT_OK(webm_demux_create(&d, on_packet, &p));
    ASSERT_OK(webm_demux_feed(d, NULL, 0, NULL, 0));
    ASSERT_OK(webm_demux_feed(d, ebml, 4, NULL, 0));
    webm_demux_destroy(d);
}

int main(void)
{
    RUN(test_mediarecorder_seed);
    RUN(test_known_sizes);
    RUN(test_lacing);
    RUN(test_synthesized_head);
    RUN(test_unknown_sizes_and_segments);
    RUN(test_track_choice);
    RUN(test_bounded_memory);
    RUN(test_errors);
    RUN(test_callback_stop);
    RUN(test_sniff_and_args);
    return 0;
}
