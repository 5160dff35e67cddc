#include "audio/ogg.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

#define HDR 27
#define MAX_PAGE (HDR + 255 + 255 * 255)

struct ogg_demux {
    ogg_packet_cb cb;
    void *user;
    size_t fill, need; /* bytes of the current page held / wanted so far */
    int err;           /* sticky error code (0 = none) */
    char errmsg[240];
    int chosen; /* an Opus logical stream has been found */
    uint32_t serial;
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

/* A complete packet of the chosen stream: the head, the tags (skipped), then
 * audio. Empty packets (a lost frame in Opus terms) carry nothing to decode. */
static int deliver(struct ogg_demux *d)
{
    uint64_t idx = d->packets++;
    size_t len = d->pkt_len;
    d->pkt_len = 0;
    if (idx == 1 || (idx > 1 && len == 0))
        return 0;
    return d->cb(d->user, d->pkt, len);
}

static int append(struct ogg_demux *d, const uint8_t *p, size_t n)
{
    if (d->pkt_len + n > OGG_MAX_PACKET)
        return fail(d, HARK_E_BAD_AUDIO, "Ogg packet larger than 128 KiB: not an Opus stream");
    if (d->pkt_len + n > d->pkt_cap) {
        size_t cap = d->pkt_cap ? d->pkt_cap : 4096;
        while (cap < d->pkt_len + n)
            cap *= 2;
        uint8_t *q = hark_realloc(d->pkt, cap);
        if (!q)
            return fail(d, HARK_E_NOMEM, "out of memory reading Ogg");
        d->pkt = q;
        d->pkt_cap = cap;
    }
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

    if (!d->chosen) {
        if (flags & 0x02) {   /* beginning of a logical stream: what codec? */
            size_t first = 0; /* its first packet (a BOS page starts one) */
            for (int i = 0; i < nseg; i++) {
                first += lacing[i];
                if (lacing[i] < 255)
                    break;
            }
            const char *c = codec_of(body, first < body_len ? first : body_len);
            if (strcmp(c, "Opus") != 0) {
                d->other = c;
                return 0;
            }
            d->chosen = 1;
            d->serial = serial;
            flags &= ~0x01; /* nothing can continue into a stream's first page */
        } else {
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
    }
    if (serial != d->serial)
        return 0;

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
        if (!d->skipping) {
            int rc = append(d, body + off, n);
            if (rc)
                return rc;
        }
        off += n;
        if (n < 255) {
            if (d->skipping) {
                d->skipping = 0;
                continue;
            }
            int rc = deliver(d);
            if (rc)
                return rc;
        }
    }
    d->partial = nseg > 0 && lacing[nseg - 1] == 255 && !d->skipping;
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
