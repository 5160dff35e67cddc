#include "audio/ogg.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

#define HDR 27
#define MAX_PAGE (HDR + 255 + 255 * 255)
/* An OpusHead is 19 bytes plus a channel mapping table of at most 257. */
#define OPUSHEAD_MAX 276

struct ogg_demux {
    ogg_packet_cb cb;
    void *user;
    size_t fill, need; /* bytes of the current page held / wanted so far */
    int err;           /* sticky error code (0 = none) */
    char errmsg[240];
    int chosen; /* an Opus logical stream has been found */
    uint32_t serial;
    int ended;    /* that stream's last page (EOS) went by: a chained one may follow */
    int relinked; /* the current stream follows an earlier one (chained Ogg) */
    uint8_t head[OPUSHEAD_MAX]; /* the first stream's OpusHead, to compare links */
    size_t head_len;
    uint64_t packets;  /* complete packets of that stream so far */
    int partial;       /* a packet continues on the next page */
    int skipping;      /* dropping the rest of a packet whose start was never seen */
    const char *other; /* codec of a non-Opus stream seen (static), for the error */
    uint8_t *pkt;
    size_t pkt_len, pkt_cap;
    uint8_t page[MAX_PAGE];
};

int ogg_sniff(const uint8_t *in, size_t n)
{
    return n >= 4 && !memcmp(in, "OggS", 4);
}

int ogg_demux_create(struct ogg_demux **out, ogg_packet_cb cb, void *user)
{
    struct ogg_demux *d = hark_calloc(1, sizeof *d);
    if (!d)
        return HARK_E_NOMEM;
    d->cb = cb;
    d->user = user;
    d->need = HDR;
    *out = d;
    return 0;
}

void ogg_demux_destroy(struct ogg_demux *d)
{
    if (!d)
        return;
    hark_free(d->pkt);
    hark_free(d);
}

static int fail(struct ogg_demux *d, int code, const char *msg)
{
    d->err = code;
    snprintf(d->errmsg, sizeof d->errmsg, "%s", msg);
    return code;
}

static const char *codec_of(const uint8_t *p, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
        const char *name;
    } known[] = {
        {"\x01vorbis", 7, "Vorbis"},
        {"\x7f"
         "FLAC",
         5, "FLAC"},
        {"Speex   ", 8, "Speex"},
        {"\x80theora", 7, "Theora"},
        {"OpusHead", 8, "Opus"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (n >= known[i].len && !memcmp(p, known[i].magic, known[i].len))
            return known[i].name;
    return "an unknown codec";
}

/* A complete packet of the chosen stream: the head, then audio (the tags,
 * packet 1, never reach here). Empty packets (a lost frame in Opus terms)
 * carry nothing to decode. A chained stream's head must match the first
 * one's: the decoder goes on as if the links were one stream. */
static int deliver(struct ogg_demux *d)
{
    uint64_t idx = d->packets++;
    size_t len = d->pkt_len;
    d->pkt_len = 0;
    if (idx == 0 && d->relinked) {
        if (len != d->head_len || memcmp(d->pkt, d->head, len) != 0)
            return fail(d, HARK_E_UNSUPPORTED,
                        "chained Ogg Opus streams with different headers (channels, rate or "
                        "pre-skip) are not supported; send each as its own stream");
        return 0;
    }
    if (idx == 0) {
        if (len > sizeof d->head)
            return fail(d, HARK_E_BAD_AUDIO, "OpusHead packet longer than any valid one");
        memcpy(d->head, d->pkt, len);
        d->head_len = len;
    }
    if (idx > 0 && len == 0)
        return 0;
    return d->cb(d->user, d->pkt, len);
}

static int append(struct ogg_demux *d, const uint8_t *p, size_t n)
{
    if (d->pkt_len + n > OGG_MAX_PACKET)
        return fail(d, HARK_E_BAD_AUDIO, "Ogg packet larger than 128 KiB: not an Opus stream");
    if (mem_grow(&d->pkt, &d->pkt_cap, d->pkt_len + n, 1))
        return fail(d, HARK_E_NOMEM, "out of memory reading Ogg");
    memcpy(d->pkt + d->pkt_len, p, n);
    d->pkt_len += n;
    return 0;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int page_done(struct ogg_demux *d)
{
    const uint8_t *pg = d->page;
    int flags = pg[5], nseg = pg[26];
    const uint8_t *lacing = pg + HDR, *body = pg + HDR + nseg;
    uint32_t serial = le32(pg + 14);
    size_t body_len = d->fill - HDR - (size_t)nseg;

    /* a stream's first page (BOS): its first packet names the codec */
    if ((flags & 0x02) && (!d->chosen || d->ended)) {
        size_t first = 0;
        for (int i = 0; i < nseg; i++) {
            first += lacing[i];
            if (lacing[i] < 255)
                break;
        }
        const char *c = codec_of(body, first < body_len ? first : body_len);
        if (strcmp(c, "Opus") != 0) {
            if (!d->chosen)
                d->other = c;
            return 0;
        }
        d->relinked = d->chosen;
        d->chosen = 1;
        d->ended = 0;
        d->serial = serial;
        d->packets = 0;
        d->pkt_len = 0;
        d->partial = 0;
        flags &= ~0x01; /* nothing can continue into a stream's first page */
    }
    if (!d->chosen) {
        char msg[200];
        if (d->other)
            snprintf(msg, sizeof msg,
                     "the Ogg stream carries %s audio; hark decodes Ogg Opus (or send WAV, "
                     "WebM/Opus, or raw PCM with an encoding)",
                     d->other);
        else
            snprintf(msg, sizeof msg,
                     "Ogg stream without an Opus header (OpusHead) on its first page");
        return fail(d, d->other ? HARK_E_UNSUPPORTED : HARK_E_BAD_AUDIO, msg);
    }
    if (serial != d->serial || d->ended)
        return 0;
    if (flags & 0x04)
        d->ended = 1; /* after this page's packets */
    if (nseg == 0)
        return 0; /* carries nothing, continues nothing */

    /* A page not marked as continuing ends any packet left open (it was
     * truncated); one marked as continuing with nothing open carries the
     * tail of a packet whose start hark never saw. */
    if (!(flags & 0x01) && d->partial)
        d->pkt_len = 0;
    d->skipping = (flags & 0x01) && !d->partial;
    d->partial = 0;
    size_t off = 0;
    for (int i = 0; i < nseg; i++) {
        size_t n = lacing[i];
        /* OpusTags (packet 1) is not kept: it may hold cover art of any size */
        int keep = !d->skipping && d->packets != 1;
        if (keep) {
            int rc = append(d, body + off, n);
            if (rc)
                return rc;
        }
        off += n;
        if (n < 255) {
            if (d->skipping) {
                d->skipping = 0;
            } else if (!keep) {
                d->packets++;
            } else {
                int rc = deliver(d);
                if (rc)
                    return rc;
            }
        }
    }
    d->partial = lacing[nseg - 1] == 255 && !d->skipping;
    return 0;
}

int ogg_demux_feed(struct ogg_demux *d, const uint8_t *in, size_t n, char *err, size_t errn)
{
    while (!d->err && n) {
        size_t take = d->need - d->fill;
        if (take > n)
            take = n;
        memcpy(d->page + d->fill, in, take);
        d->fill += take;
        in += take;
        n -= take;
        if (d->fill < d->need)
            break;
        /* a page is read in three steps: header, lacing table, body */
        if (d->fill == HDR) {
            if (memcmp(d->page, "OggS", 4) != 0) {
                fail(d, HARK_E_BAD_AUDIO,
                     "not an Ogg page where one was expected (capture pattern 'OggS' missing)");
                break;
            }
            if (d->page[4] != 0) {
                fail(d, HARK_E_BAD_AUDIO, "unknown Ogg page version");
                break;
            }
            d->need = HDR + d->page[26];
        }
        if (d->fill == HDR + (size_t)d->page[26] && d->fill == d->need) {
            for (int i = 0; i < d->page[26]; i++)
                d->need += d->page[HDR + i];
        }
        if (d->fill < d->need)
            continue;
        int rc = page_done(d);
        d->fill = 0;
        d->need = HDR;
        if (rc && !d->err)
            return rc; /* the callback's own value */
    }
    if (d->err) {
        err_set(err, errn, d->err, "%s", d->errmsg);
        return d->err;
    }
    return 0;
}
