/* Ogg Opus demuxing and Opus decoding (src/audio/ogg.c, opusdec.c) on real
 * files made by opusenc from a pocketsphinx-testdata recording (the fuzz
 * seeds in tests/fuzz/corpus/ogg). */
#include <stdint.h>

#include "audio/ogg.h"
#include "audio/opusdec.h"
#include "check.h"
#include "hark/hark.h"

struct got {
    size_t packets, bytes;
    uint32_t hash; /* of the packet sequence */
    struct opusdec *dec;
    size_t samples;
    double energy;
};

static int on_packet(void *user, const uint8_t *pkt, size_t len)
{
    struct got *g = user;
    char err[200];
    if (g->packets == 0) {
        ASSERT(len >= 19 && !memcmp(pkt, "OpusHead", 8));
        ASSERT_OK(opusdec_create(&g->dec, pkt, len, 16000, err, sizeof err));
    } else {
        ASSERT(len > 0 && len <= 1275 * 3);
        float out[1920];
        ASSERT(opusdec_max_samples(g->dec) <= 1920);
        int n = opusdec_decode(g->dec, pkt, len, out, err, sizeof err);
        ASSERT(n >= 0);
        g->samples += (size_t)n;
        for (int i = 0; i < n; i++)
            g->energy += out[i] * out[i];
    }
    for (size_t i = 0; i < len; i++)
        g->hash = g->hash * 31 + pkt[i];
    g->packets++;
    g->bytes += len;
    return 0;
}

static uint8_t *load(const char *name, size_t *n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fuzz/corpus/ogg/%s", HARK_SRC_DIR, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        FAIL_("cannot open %s", path);
    static uint8_t buf[1 << 16];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void run(const uint8_t *data, size_t n, size_t chunk, struct got *g)
{
    struct ogg_demux *d;
    char err[256];
    memset(g, 0, sizeof *g);
    ASSERT_OK(ogg_demux_create(&d, on_packet, g));
    for (size_t off = 0; off < n; off += chunk)
        ASSERT_OK(
            ogg_demux_feed(d, data + off, off + chunk <= n ? chunk : n - off, err, sizeof err));
    ogg_demux_destroy(d);
}

static void test_real_files_any_chunking(void)
{
    const char *files[] = {"librivox_16k_mono.opus", "stereo_48k.opus"};
    const double seconds[] = {1.5, 1.0};
    for (int f = 0; f < 2; f++) {
        size_t n;
        const uint8_t *data = load(files[f], &n);
        struct got whole, bytewise, odd;
        run(data, n, n, &whole);
        run(data, n, 1, &bytewise);
        run(data, n, 77, &odd);
        /* 20 ms packets: about 50 per second, plus the head */
        ASSERT(whole.packets > seconds[f] * 40);
        ASSERT_EQ(whole.packets, bytewise.packets);
        ASSERT_EQ(whole.hash, bytewise.hash);
        ASSERT_EQ(whole.hash, odd.hash);
        /* the decoder drops the encoder's pre-skip: the length comes back */
        ASSERT_NEAR((double)whole.samples / 16000, seconds[f], 0.03);
        ASSERT(whole.energy / (double)whole.samples > 1e-4); /* speech, not silence */
        ASSERT_EQ(opusdec_channels(whole.dec), f == 0 ? 1 : 2);
        opusdec_destroy(whole.dec);
        opusdec_destroy(bytewise.dec);
        opusdec_destroy(odd.dec);
    }
}

/* An Ogg page: header, lacing for one packet of len bytes, the packet. */
static size_t page(uint8_t *out, int flags, uint32_t serial, const void *pkt, size_t len)
{
    memset(out, 0, 27);
    memcpy(out, "OggS", 4);
    out[5] = (uint8_t)flags;
    memcpy(out + 14, &serial, 4);
    size_t nseg = len / 255 + 1;
    out[26] = (uint8_t)nseg;
    for (size_t i = 0; i < nseg; i++)
        out[27 + i] = (uint8_t)(i + 1 < nseg ? 255 : len % 255);
    memcpy(out + 27 + nseg, pkt, len);
    return 27 + nseg + len;
}

static int count_cb(void *user, const uint8_t *pkt, size_t len)
{
    (void)pkt;
    (void)len;
    ++*(int *)user;
    return 0;
}

static void test_errors(void)
{
    uint8_t buf[4096];
    char err[256];
    int count = 0;
    struct ogg_demux *d;

    /* Ogg Vorbis: a typed "unsupported" naming the codec, and sticky */
    size_t n = page(buf, 2, 7, "\x01vorbis\0\0\0\0", 11);
    n += page(buf + n, 0, 7, "\x03vorbis", 7);
    ASSERT_OK(ogg_demux_create(&d, count_cb, &count));
    ASSERT_EQ(ogg_demux_feed(d, buf, n, err, sizeof err), HARK_E_UNSUPPORTED);
    ASSERT(strstr(err, "Vorbis") && strstr(err, "Opus"));
    ASSERT_EQ(ogg_demux_feed(d, buf, 1, err, sizeof err), HARK_E_UNSUPPORTED);
    ogg_demux_destroy(d);

    /* not Ogg after a valid page */
    n = page(buf, 2, 9, "OpusHead\x01\x01\x00\x00\x80\x3e\0\0\0\0\0", 19);
    memcpy(buf + n, "garbage-not-a-page-at-all!!", 27);
    ASSERT_OK(ogg_demux_create(&d, count_cb, &count));
    count = 0;
    ASSERT_EQ(ogg_demux_feed(d, buf, n + 27, err, sizeof err), HARK_E_BAD_AUDIO);
    ASSERT(strstr(err, "OggS"));
    ASSERT_EQ(count, 1); /* the head came through before the garbage */
    ogg_demux_destroy(d);

    /* a second logical stream is ignored; an Opus one after a Theora BOS is found */
    n = page(buf, 2, 1, "\x80theora", 7);
    n += page(buf + n, 2, 2, "OpusHead\x01\x01\x00\x00\x80\x3e\0\0\0\0\0", 19);
    n += page(buf + n, 0, 1, "video!", 6);
    n += page(buf + n, 0, 2, "OpusTags", 8);
    n += page(buf + n, 0, 2, "\xfc\xff\xfe", 3);
    ASSERT_OK(ogg_demux_create(&d, count_cb, &count));
    count = 0;
    ASSERT_OK(ogg_demux_feed(d, buf, n, err, sizeof err));
    ASSERT_EQ(count, 2); /* head + one audio packet; tags and video skipped */
    ogg_demux_destroy(d);

    /* OpusHead with a surround mapping: unsupported, said clearly */
    struct opusdec *od;
    ASSERT_EQ(opusdec_create(&od, (const uint8_t *)"OpusHead\x01\x06\x00\x00\x80\xbb\0\0\0\0\x01",
                             19, 16000, err, sizeof err),
              HARK_E_UNSUPPORTED);
    ASSERT(strstr(err, "6 channels"));
    ASSERT_EQ(opusdec_create(&od, (const uint8_t *)"OpusHeaX", 8, 16000, err, sizeof err),
              HARK_E_BAD_AUDIO);
}

/* Pages carrying one packet of any size: full pages of 255 segments of 255
 * bytes, continued, then the rest. */
static size_t big_packet(uint8_t *out, uint32_t serial, const uint8_t *pkt, size_t len)
{
    size_t n = 0, off = 0;
    int cont = 0;
    while (len - off >= 255 * 255) {
        memset(out + n, 0, 27);
        memcpy(out + n, "OggS", 4);
        out[n + 5] = (uint8_t)(cont ? 1 : 0);
        memcpy(out + n + 14, &serial, 4);
        out[n + 26] = 255;
        memset(out + n + 27, 255, 255);
        memcpy(out + n + 27 + 255, pkt + off, 255 * 255);
        n += 27 + 255 + 255 * 255;
        off += 255 * 255;
        cont = 1;
    }
    size_t tail = page(out + n, cont, serial, pkt + off, len - off);
    return n + tail;
}

static const char head1[] = "OpusHead\x01\x01\x38\x01\x80\x3e\0\0\0\0\0";
static const char head2[] = "OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0";

static void test_chains_tags_and_empty_pages(void)
{
    static uint8_t buf[1 << 19], tags[200 * 1024];
    char err[256];
    int count = 0;
    struct ogg_demux *d;

    /* cover art: a 200 KiB OpusTags over several pages is skipped, not refused */
    memcpy(tags, "OpusTags", 8);
    size_t n = page(buf, 2, 5, head1, 19);
    n += big_packet(buf + n, 5, tags, sizeof tags);
    n += page(buf + n, 0, 5, "\xfc\xff\xfe", 3);
    /* a chained second stream with the same head goes on as one */
    n += page(buf + n, 4, 5, "\xfc\xff\xfe", 3); /* EOS of the first link */
    n += page(buf + n, 2, 6, head1, 19);
    n += page(buf + n, 0, 6, "OpusTags", 8);
    n += page(buf + n, 0, 6, "\xfc\xff\xfe", 3);
    ASSERT_OK(ogg_demux_create(&d, count_cb, &count));
    ASSERT_OK(ogg_demux_feed(d, buf, n, err, sizeof err));
    ASSERT_EQ(count, 4); /* one head, 2 + 1 audio packets */
    ogg_demux_destroy(d);

    /* a chained stream with another head: refused, said so */
    n = page(buf, 2, 5, head1, 19);
    n += page(buf + n, 0, 5, "OpusTags", 8);
    n += page(buf + n, 4, 5, "\xfc\xff\xfe", 3);
    n += page(buf + n, 2, 6, head2, 19);
    ASSERT_OK(ogg_demux_create(&d, count_cb, &count));
    ASSERT_EQ(ogg_demux_feed(d, buf, n, err, sizeof err), HARK_E_UNSUPPORTED);
    ASSERT(strstr(err, "chained"));
    ogg_demux_destroy(d);
}

static size_t sizes[16], n_sizes;
static int size_cb(void *user, const uint8_t *pkt, size_t len)
{
    (void)user;
    (void)pkt;
    if (n_sizes < 16)
        sizes[n_sizes++] = len;
    return 0;
}

static void test_packet_sizes_across_empty_page(void)
{
    /* the exact sizes: 255 + 10 across an empty continued page, then 20 */
    static uint8_t buf[4096];
    uint8_t pkt[300];
    memset(pkt, 0xfc, sizeof pkt);
    char err[256];
    size_t n = page(buf, 2, 6, head1, 19);
    n += page(buf + n, 0, 6, "OpusTags", 8);
    /* one page ending in an open 255-byte segment */
    memset(buf + n, 0, 27);
    memcpy(buf + n, "OggS", 4);
    memcpy(buf + n + 14, &(uint32_t){6}, 4);
    buf[n + 26] = 1;
    buf[n + 27] = 255;
    memcpy(buf + n + 28, pkt, 255);
    n += 28 + 255;
    memset(buf + n, 0, 27);
    memcpy(buf + n, "OggS", 4);
    buf[n + 5] = 1;
    memcpy(buf + n + 14, &(uint32_t){6}, 4);
    n += 27;
    n += page(buf + n, 1, 6, pkt, 10);
    n += page(buf + n, 0, 6, pkt, 20);
    struct ogg_demux *d;
    n_sizes = 0;
    ASSERT_OK(ogg_demux_create(&d, size_cb, NULL));
    ASSERT_OK(ogg_demux_feed(d, buf, n, err, sizeof err));
    ogg_demux_destroy(d);
    ASSERT_EQ(n_sizes, 3);
    ASSERT_EQ(sizes[0], 19);
    ASSERT_EQ(sizes[1], 265);
    ASSERT_EQ(sizes[2], 20);
}

int main(void)
{
    RUN(test_real_files_any_chunking);
    RUN(test_errors);
    RUN(test_chains_tags_and_empty_pages);
    RUN(test_packet_sizes_across_empty_page);
    return 0;
}
