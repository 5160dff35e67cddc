#include "audio/webm.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

/* Largest block of the Opus track; an Opus packet is at most 1275 bytes per
 * frame and 120 ms, so even laced blocks stay far below. */
#define BLOCK_MAX (64u * 1024)
/* Largest CodecPrivate kept; an OpusHead is 19 bytes plus a channel map. */
#define PRIV_MAX 4096u
/* Longest CodecID accepted (they are short strings like "A_OPUS"). */
#define CODEC_MAX 64u
/* Segment > Tracks > TrackEntry > Audio is the deepest path followed. */
#define DEPTH_MAX 4
#define UNKNOWN_END UINT64_MAX
#define OPUS_HEAD_MIN 19

#define ID_EBML 0x1A45DFA3u
#define ID_SEGMENT 0x18538067u
#define ID_SEEKHEAD 0x114D9B74u
#define ID_INFO 0x1549A966u
#define ID_TRACKS 0x1654AE6Bu
#define ID_CUES 0x1C53BB6Bu
#define ID_ATTACHMENTS 0x1941A469u
#define ID_CHAPTERS 0x1043A770u
#define ID_TAGS 0x1254C367u
#define ID_CLUSTER 0x1F43B675u
#define ID_TRACKENTRY 0xAEu
#define ID_TRACKNUMBER 0xD7u
#define ID_TRACKTYPE 0x83u
#define ID_CODECID 0x86u
#define ID_CODECPRIVATE 0x63A2u
#define ID_AUDIO 0xE1u
#define ID_CHANNELS 0x9Fu
#define ID_BLOCKGROUP 0xA0u
#define ID_BLOCK 0xA1u
#define ID_SIMPLEBLOCK 0xA3u

#define TRACK_TYPE_AUDIO 2

#define EXPECTED "send audio/webm;codecs=opus as a browser's MediaRecorder writes it"

enum state {
    ST_ID,   /* collecting an element ID (1-4 bytes) */
    ST_SIZE, /* collecting an element size (1-8 bytes) */
    ST_SKIP, /* skipping the body of an element */
    ST_LEAF, /* collecting the body of a leaf into buf */
    ST_ERROR,
};

/* Steps of reading a block: its track number decides whether the rest is
 * kept (the Opus track) or skipped (any other), so big video blocks pass. */
enum block_step {
    BLK_FIRST, /* the first byte of the track number, which gives its length */
    BLK_TRACK, /* the rest of the track number */
    BLK_BODY,  /* the whole block */
};

struct level {
    uint32_t id;
    uint64_t end; /* stream offset just past the element; UNKNOWN_END if unknown */
};

/* The TrackEntry being read. */
struct entry {
    uint64_t number;
    uint64_t type;
    uint64_t channels; /* 0 when there was no Audio/Channels */
    char codec[CODEC_MAX + 1];
    int has_codec;
    uint8_t *priv; /* CodecPrivate when it fits in PRIV_MAX */
    size_t priv_len;
    uint64_t priv_big; /* declared size of a CodecPrivate over PRIV_MAX, else 0 */
};

struct webm_demux {
    webm_packet_cb cb;
    void *user;
    enum state state;
    uint64_t pos;        /* bytes consumed from the start of the stream */
    uint64_t elem_start; /* offset of the current element's ID, for messages */
    uint8_t hdr[8];
    size_t have, need; /* bytes of the ID or size collected / needed */
    uint32_t id;
    int seen_ebml;

    struct level stack[DEPTH_MAX];
    int depth;

    uint64_t skip; /* bytes of the current element still to skip */

    uint8_t *buf; /* leaf body; grows up to BLOCK_MAX */
    size_t buf_cap;
    size_t leaf_have, leaf_need;
    uint64_t leaf_size;
    uint32_t leaf_id;
    enum block_step block_step;

    /* Tracks of the current Segment. */
    struct entry entry;
    int seen_tracks;
    int chosen;             /* an A_OPUS track was found */
    uint64_t chosen_number; /* its TrackNumber */
    uint8_t *head;          /* its OpusHead (CodecPrivate or synthesized) */
    size_t head_len;
    char other_codec[CODEC_MAX + 1]; /* first non-Opus audio codec, for the message */
    char any_codec[CODEC_MAX + 1];   /* first codec of any kind, for the message */
    int head_checked;                /* this Segment's head was sent or matched */

    uint8_t *sent; /* the OpusHead delivered, to compare later Segments' with */
    size_t sent_len;

    int result;    /* terminal result: an error or the callback's value */
    int cb_stop;   /* the result came from the callback: no message */
    char msg[256]; /* message of a terminal error, replayed on later calls */
};

static int fail(struct webm_demux *d, int err, const char *fmt, ...) HARK_PRINTF(3, 4);

/* Records a terminal error; the message is kept so later calls repeat it. */
static int fail(struct webm_demux *d, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    d->state = ST_ERROR;
    d->result = err;
    return err;
}

static const char *id_name(uint32_t id)
{
    switch (id) {
    case ID_EBML:
        return "EBML header";
    case ID_SEGMENT:
        return "Segment";
    case ID_SEEKHEAD:
        return "SeekHead";
    case ID_INFO:
        return "Info";
    case ID_TRACKS:
        return "Tracks";
    case ID_CUES:
        return "Cues";
    case ID_ATTACHMENTS:
        return "Attachments";
    case ID_CHAPTERS:
        return "Chapters";
    case ID_TAGS:
        return "Tags";
    case ID_CLUSTER:
        return "Cluster";
    case ID_TRACKENTRY:
        return "TrackEntry";
    case ID_TRACKNUMBER:
        return "TrackNumber";
    case ID_TRACKTYPE:
        return "TrackType";
    case ID_CODECID:
        return "CodecID";
    case ID_CODECPRIVATE:
        return "CodecPrivate";
    case ID_AUDIO:
        return "Audio";
    case ID_CHANNELS:
        return "Channels";
    case ID_BLOCKGROUP:
        return "BlockGroup";
    case ID_BLOCK:
        return "Block";
    case ID_SIMPLEBLOCK:
        return "SimpleBlock";
    default:
        return "element";
    }
}

/* Length of a VINT from its first byte: 1..8, 0 when the byte is 0. */
static int vint_len(uint8_t b)
{
    int n = 1;
    for (uint8_t m = 0x80; m && !(b & m); m >>= 1)
        n++;
    return n > 8 ? 0 : n;
}

/* Value of a VINT of length len with the marker bit removed. */
static uint64_t vint_value(const uint8_t *p, int len)
{
    uint64_t v = p[0] & (0xFFu >> len);
    for (int i = 1; i < len; i++)
        v = v << 8 | p[i];
    return v;
}

static uint64_t be_uint(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v << 8 | p[i];
    return v;
}

/* IDs that belong at the top level or directly in a Segment: one of them
 * ends a Cluster of unknown size, an EBML header or Segment ends a Segment
 * of unknown size. */
static int is_segment_child(uint32_t id)
{
    return id == ID_SEEKHEAD || id == ID_INFO || id == ID_TRACKS || id == ID_CUES ||
           id == ID_ATTACHMENTS || id == ID_CHAPTERS || id == ID_TAGS || id == ID_CLUSTER;
}

static void clear_entry(struct webm_demux *d)
{
    hark_free(d->entry.priv);
    memset(&d->entry, 0, sizeof d->entry);
}

/* A new Segment: its tracks are read afresh; the head already delivered is
 * kept to compare with the new one. */
static void reset_segment(struct webm_demux *d)
{
    clear_entry(d);
    hark_free(d->head);
    d->head = NULL;
    d->head_len = 0;
    d->seen_tracks = 0;
    d->chosen = 0;
    d->chosen_number = 0;
    d->other_codec[0] = 0;
    d->any_codec[0] = 0;
    d->head_checked = 0;
}

static int is_audio(const struct entry *e)
{
    return e->type == TRACK_TYPE_AUDIO || (e->type == 0 && strncmp(e->codec, "A_", 2) == 0);
}

/* The end of a TrackEntry: keep the first Opus track's head. */
static int end_entry(struct webm_demux *d)
{
    struct entry *e = &d->entry;
    if (e->has_codec && !d->any_codec[0])
        snprintf(d->any_codec, sizeof d->any_codec, "%s", e->codec);
    if (!e->has_codec || strcmp(e->codec, "A_OPUS") != 0) {
        if (e->has_codec && is_audio(e) && !d->other_codec[0])
            snprintf(d->other_codec, sizeof d->other_codec, "%s", e->codec);
        clear_entry(d);
        return 0;
    }
    if (d->chosen) {
        clear_entry(d);
        return 0;
    }
    if (e->number == 0)
        return fail(d, HARK_E_BAD_AUDIO,
                    "WebM TrackEntry of the A_OPUS track has no TrackNumber (or 0); every track "
                    "needs a number its blocks refer to");
    if (e->priv_big)
        return fail(d, HARK_E_BAD_AUDIO,
                    "WebM A_OPUS CodecPrivate is %" PRIu64 " bytes; an OpusHead fits in %u",
                    e->priv_big, PRIV_MAX);
    if (e->priv) {
        if (e->priv_len < OPUS_HEAD_MIN || memcmp(e->priv, "OpusHead", 8) != 0)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM A_OPUS CodecPrivate is not an OpusHead (%zu bytes; expected 19 or "
                        "more starting \"OpusHead\")",
                        e->priv_len);
        d->head = e->priv;
        d->head_len = e->priv_len;
        e->priv = NULL;
    } else {
        /* No CodecPrivate: the minimal OpusHead of RFC 7845 §5.1, mapping
         * family 0, which covers mono and stereo only. */
        uint64_t ch = e->channels ? e->channels : 1;
        if (ch > 2)
            return fail(d, HARK_E_UNSUPPORTED,
                        "WebM A_OPUS track of %" PRIu64
                        " channels has no CodecPrivate; more than 2 channels need an OpusHead "
                        "with a channel mapping",
                        ch);
        static const uint8_t tmpl[OPUS_HEAD_MIN] = {'O', 'p', 'u',  's',  'H', 'e', 'a', 'd', 1, 1,
                                                    0,   0,   0x80, 0xBB, 0,   0,   0,   0,   0};
        d->head = hark_malloc(OPUS_HEAD_MIN);
        if (!d->head)
            return fail(d, HARK_E_NOMEM, "out of memory for the OpusHead");
        memcpy(d->head, tmpl, OPUS_HEAD_MIN);
        d->head[9] = (uint8_t)ch;
        d->head_len = OPUS_HEAD_MIN;
    }
    d->chosen = 1;
    d->chosen_number = e->number;
    clear_entry(d);
    return 0;
}

static int pop(struct webm_demux *d)
{
    uint32_t id = d->stack[--d->depth].id;
    if (id == ID_TRACKENTRY)
        return end_entry(d);
    return 0;
}

/* Before the next element: close every master whose known size ends here,
 * together with anything (a Cluster of unknown size) open inside it. */
static int next_element(struct webm_demux *d)
{
    for (int i = 0; i < d->depth; i++) {
        if (d->stack[i].end != d->pos)
            continue;
        while (d->depth > i) {
            int rc = pop(d);
            if (rc)
                return rc;
        }
        break;
    }
    d->state = ST_ID;
    d->have = 0;
    d->need = 0;
    return 0;
}

static int grow(struct webm_demux *d, size_t need)
{
    if (need <= d->buf_cap)
        return 0;
    size_t cap = d->buf_cap ? d->buf_cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > BLOCK_MAX)
        cap = BLOCK_MAX;
    uint8_t *b = hark_realloc(d->buf, cap);
    if (!b)
        return fail(d, HARK_E_NOMEM, "out of memory for a %zu-byte WebM element", need);
    d->buf = b;
    d->buf_cap = cap;
    return 0;
}

static int start_skip(struct webm_demux *d, uint64_t n)
{
    if (n == 0)
        return next_element(d);
    d->skip = n;
    d->state = ST_SKIP;
    return 0;
}

static int on_leaf(struct webm_demux *d);

static int start_leaf(struct webm_demux *d, uint32_t id, uint64_t size)
{
    d->leaf_id = id;
    d->leaf_size = size;
    d->leaf_have = 0;
    switch (id) {
    case ID_TRACKNUMBER:
    case ID_TRACKTYPE:
    case ID_CHANNELS:
        if (size > 8)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM %s at byte %" PRIu64 " is %" PRIu64
                        " bytes; an unsigned integer element has at most 8",
                        id_name(id), d->elem_start, size);
        break;
    case ID_CODECID:
        if (size > CODEC_MAX)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM CodecID at byte %" PRIu64 " is %" PRIu64
                        " bytes; codec IDs are short strings like A_OPUS (at most %u bytes)",
                        d->elem_start, size, CODEC_MAX);
        break;
    case ID_CODECPRIVATE:
        if (size > PRIV_MAX) {
            /* Maybe another codec's (Vorbis, video); only an Opus one matters. */
            d->entry.priv_big = size;
            return start_skip(d, size);
        }
        break;
    default: /* SimpleBlock, Block */
        if (size < 4)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM %s at byte %" PRIu64 " is %" PRIu64
                        " bytes; a block has at least a track number, a timecode and flags (4)",
                        id_name(id), d->elem_start, size);
        d->block_step = BLK_FIRST;
        size = 1;
        break;
    }
    d->leaf_need = (size_t)size;
    if (d->leaf_need == 0)
        return on_leaf(d);
    int rc = grow(d, d->leaf_need);
    if (rc)
        return rc;
    d->state = ST_LEAF;
    return 0;
}

static int deliver(struct webm_demux *d, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = d->cb(d->user, p, n);
    if (rc) {
        d->state = ST_ERROR;
        d->result = rc;
        d->cb_stop = 1;
    }
    return rc;
}

/* The first block of a Segment: the tracks must offer Opus, and its head
 * goes out before any packet (or must match the one that did). */
static int check_tracks(struct webm_demux *d)
{
    if (!d->chosen) {
        if (d->other_codec[0])
            return fail(d, HARK_E_UNSUPPORTED,
                        "WebM audio codec %s is not supported; hark decodes Opus (%s)",
                        d->other_codec, EXPECTED);
        if (!d->seen_tracks)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM block at byte %" PRIu64
                        " comes before any Tracks element; a WebM stream declares its tracks "
                        "first (%s)",
                        d->elem_start, EXPECTED);
        if (d->any_codec[0])
            return fail(d, HARK_E_UNSUPPORTED,
                        "WebM stream has no audio track (first codec %s); hark decodes Opus "
                        "audio (%s)",
                        d->any_codec, EXPECTED);
        return fail(d, HARK_E_BAD_AUDIO,
                    "WebM Tracks element declares no track with a CodecID; expected an A_OPUS "
                    "track (%s)",
                    EXPECTED);
    }
    return 0;
}

static int send_head(struct webm_demux *d)
{
    d->head_checked = 1;
    if (!d->sent) {
        d->sent = hark_malloc(d->head_len);
        if (!d->sent)
            return fail(d, HARK_E_NOMEM, "out of memory for the OpusHead");
        memcpy(d->sent, d->head, d->head_len);
        d->sent_len = d->head_len;
        return deliver(d, d->head, d->head_len);
    }
    if (d->sent_len != d->head_len || memcmp(d->sent, d->head, d->head_len) != 0)
        return fail(d, HARK_E_UNSUPPORTED,
                    "WebM Segment at a later point of the stream has an Opus track with another "
                    "OpusHead (channels, pre-skip or rate changed); a stream must keep one");
    return 0;
}

/* A whole block of the Opus track is in buf: split its lacing, deliver. */
static int parse_block(struct webm_demux *d, int tlen)
{
    const uint8_t *b = d->buf;
    size_t len = d->leaf_need;
    size_t p = (size_t)tlen + 2; /* track number, int16 timecode */
    uint8_t flags = b[p++];
    int lacing = (flags >> 1) & 3;

    if (lacing == 0)
        return deliver(d, b + p, len - p);

    if (p >= len)
        return fail(d, HARK_E_BAD_AUDIO,
                    "WebM laced %s at byte %" PRIu64 " ends before its lace count",
                    id_name(d->leaf_id), d->elem_start);
    size_t count = (size_t)b[p++] + 1;
    size_t sizes[256];
    size_t total = 0; /* of all frames but the last */
    switch (lacing) {
    case 1: /* Xiph: each size as a run of 255s and a final byte below 255 */
        for (size_t k = 0; k + 1 < count; k++) {
            size_t s = 0;
            uint8_t v;
            do {
                if (p >= len)
                    goto truncated;
                v = b[p++];
                s += v;
            } while (v == 255);
            sizes[k] = s;
            total += s;
        }
        break;
    case 3: { /* EBML: the first size, then signed differences */
        int64_t prev = 0;
        for (size_t k = 0; k + 1 < count; k++) {
            if (p >= len)
                goto truncated;
            int n = vint_len(b[p]);
            if (n == 0 || p + (size_t)n > len)
                goto truncated;
            int64_t v = (int64_t)vint_value(b + p, n);
            if (k > 0)
                v = prev + v - (((int64_t)1 << (7 * n - 1)) - 1);
            p += (size_t)n;
            if (v < 0 || (uint64_t)v > len)
                return fail(d, HARK_E_BAD_AUDIO,
                            "WebM EBML-laced %s at byte %" PRIu64 " has a frame size of %" PRId64
                            " in a block of %zu bytes",
                            id_name(d->leaf_id), d->elem_start, v, len);
            sizes[k] = (size_t)v;
            total += (size_t)v;
            prev = v;
        }
        break;
    }
    default: /* 2, fixed: equal frames */
        if ((len - p) % count != 0)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM fixed-laced %s at byte %" PRIu64
                        " has %zu bytes of frames, not a multiple of its %zu frames",
                        id_name(d->leaf_id), d->elem_start, len - p, count);
        for (size_t k = 0; k + 1 < count; k++)
            sizes[k] = (len - p) / count;
        total = (len - p) / count * (count - 1);
        break;
    }
    if (total > len - p)
        return fail(d, HARK_E_BAD_AUDIO,
                    "WebM laced %s at byte %" PRIu64
                    " declares %zu bytes of frames but holds %zu after its lace sizes",
                    id_name(d->leaf_id), d->elem_start, total, len - p);
    sizes[count - 1] = len - p - total;
    for (size_t k = 0; k < count; k++) {
        int rc = deliver(d, b + p, sizes[k]);
        if (rc)
            return rc;
        p += sizes[k];
    }
    return 0;

truncated:
    return fail(d, HARK_E_BAD_AUDIO, "WebM laced %s at byte %" PRIu64 " ends inside its lace sizes",
                id_name(d->leaf_id), d->elem_start);
}

/* Some of a block is in buf (d->leaf_need bytes): read on, skip the rest
 * (*more set), or deliver the whole block. */
static int on_block(struct webm_demux *d, int *more)
{
    *more = 1;
    int tlen = vint_len(d->buf[0]);
    if (d->block_step == BLK_FIRST) {
        if (tlen == 0)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM %s at byte %" PRIu64 " has an invalid track number (first byte 0)",
                        id_name(d->leaf_id), d->elem_start);
        if ((uint64_t)tlen + 3 > d->leaf_size)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM %s at byte %" PRIu64 " is %" PRIu64
                        " bytes, too short for its %d-byte track number, timecode and flags",
                        id_name(d->leaf_id), d->elem_start, d->leaf_size, tlen);
        d->block_step = BLK_TRACK;
        if (tlen > 1) {
            d->leaf_need = (size_t)tlen;
            return 0;
        }
    }
    if (d->block_step == BLK_TRACK) {
        int rc = check_tracks(d);
        if (rc)
            return rc;
        uint64_t track = vint_value(d->buf, tlen);
        if (track != d->chosen_number) {
            uint64_t rest = d->leaf_size - (uint64_t)tlen;
            d->skip = rest;
            d->state = ST_SKIP;
            return 0;
        }
        if (d->leaf_size > BLOCK_MAX)
            return fail(d, HARK_E_BAD_AUDIO,
                        "WebM %s at byte %" PRIu64 " of the Opus track is %" PRIu64
                        " bytes; at most %u are accepted",
                        id_name(d->leaf_id), d->elem_start, d->leaf_size, BLOCK_MAX);
        rc = grow(d, (size_t)d->leaf_size);
        if (rc)
            return rc;
        d->block_step = BLK_BODY;
        d->leaf_need = (size_t)d->leaf_size;
        return 0;
    }
    *more = 0;
    if (!d->head_checked) {
        int rc = send_head(d);
        if (rc)
            return rc;
    }
    return parse_block(d, tlen);
}

/* A leaf's body (or the part wanted so far) is in buf. */
static int on_leaf(struct webm_demux *d)
{
    const uint8_t *b = d->buf;
    size_t n = d->leaf_need;
    switch (d->leaf_id) {
    case ID_TRACKNUMBER:
        d->entry.number = be_uint(b, n);
        break;
    case ID_TRACKTYPE:
        d->entry.type = be_uint(b, n);
        break;
    case ID_CHANNELS:
        d->entry.channels = be_uint(b, n);
        if (d->entry.channels == 0)
            return fail(d, HARK_E_BAD_AUDIO, "WebM Audio/Channels at byte %" PRIu64 " is 0",
                        d->elem_start);
        break;
    case ID_CODECID: {
        /* A string padded with zeros; anything else unprintable is shown as '?'. */
        size_t k = 0;
        for (; k < n && b[k]; k++)
            d->entry.codec[k] = (b[k] >= 0x20 && b[k] < 0x7F) ? (char)b[k] : '?';
        d->entry.codec[k] = 0;
        d->entry.has_codec = 1;
        break;
    }
    case ID_CODECPRIVATE:
        hark_free(d->entry.priv);
        d->entry.priv = hark_malloc(n ? n : 1);
        if (!d->entry.priv)
            return fail(d, HARK_E_NOMEM, "out of memory for a CodecPrivate");
        if (n)
            memcpy(d->entry.priv, b, n);
        d->entry.priv_len = n;
        d->entry.priv_big = 0;
        break;
    default: {
        int more;
        int rc = on_block(d, &more);
        if (rc || more)
            return rc;
        break;
    }
    }
    return next_element(d);
}

static int push(struct webm_demux *d, uint32_t id, uint64_t end)
{
    if (d->depth == DEPTH_MAX) /* cannot happen: pushes follow the fixed paths */
        return fail(d, HARK_E_BAD_AUDIO, "WebM elements nested too deep");
    d->stack[d->depth].id = id;
    d->stack[d->depth].end = end;
    d->depth++;
    if (id == ID_SEGMENT)
        reset_segment(d);
    else if (id == ID_TRACKS)
        d->seen_tracks = 1;
    else if (id == ID_TRACKENTRY)
        clear_entry(d);
    return 0;
}

/* Whether id is a master followed inside parent (0 at the top level). */
static int descends(uint32_t parent, uint32_t id)
{
    switch (id) {
    case ID_SEGMENT:
        return parent == 0;
    case ID_TRACKS:
    case ID_CLUSTER:
        return parent == ID_SEGMENT;
    case ID_TRACKENTRY:
        return parent == ID_TRACKS;
    case ID_AUDIO:
        return parent == ID_TRACKENTRY;
    case ID_BLOCKGROUP:
        return parent == ID_CLUSTER;
    default:
        return 0;
    }
}

/* Whether id is a leaf read inside parent. */
static int reads(uint32_t parent, uint32_t id)
{
    switch (id) {
    case ID_TRACKNUMBER:
    case ID_TRACKTYPE:
    case ID_CODECID:
    case ID_CODECPRIVATE:
        return parent == ID_TRACKENTRY;
    case ID_CHANNELS:
        return parent == ID_AUDIO;
    case ID_SIMPLEBLOCK:
        return parent == ID_CLUSTER;
    case ID_BLOCK:
        return parent == ID_BLOCKGROUP;
    default:
        return 0;
    }
}

/* An element's ID and size are read (the body starts at d->pos). */
static int on_header(struct webm_demux *d, uint64_t size, int unknown)
{
    uint32_t id = d->id;

    if (!d->seen_ebml) {
        if (id != ID_EBML)
            return fail(d, HARK_E_BAD_AUDIO,
                        "not a WebM stream: expected an EBML header (bytes 1A 45 DF A3) at the "
                        "start, got 0x%X; %s",
                        (unsigned)id, EXPECTED);
        if (unknown)
            return fail(d, HARK_E_BAD_AUDIO, "WebM EBML header has an unknown size");
        d->seen_ebml = 1;
        return start_skip(d, size);
    }

    /* Elements of unknown size end where an element that cannot be their
     * child begins. */
    while (d->depth > 0 && d->stack[d->depth - 1].end == UNKNOWN_END) {
        uint32_t top = d->stack[d->depth - 1].id;
        int ends;
        if (top == ID_CLUSTER)
            ends = is_segment_child(id) || id == ID_SEGMENT || id == ID_EBML;
        else
            ends = id == ID_SEGMENT || id == ID_EBML;
        if (!ends)
            break;
        int rc = pop(d);
        if (rc)
            return rc;
    }

    uint32_t parent = d->depth ? d->stack[d->depth - 1].id : 0;
    uint64_t parent_end = d->depth ? d->stack[d->depth - 1].end : UNKNOWN_END;
    int master = descends(parent, id);

    if (!master && (id == ID_SEGMENT || id == ID_CLUSTER))
        return fail(d, HARK_E_BAD_AUDIO, "WebM %s at byte %" PRIu64 " is not %s (%s)", id_name(id),
                    d->elem_start, id == ID_SEGMENT ? "at the top level" : "inside a Segment",
                    EXPECTED);
    if (unknown) {
        if (master && (id == ID_SEGMENT || id == ID_CLUSTER))
            return push(d, id, UNKNOWN_END) ? d->result : next_element(d);
        if (master || is_segment_child(id))
            return fail(d, HARK_E_UNSUPPORTED,
                        "WebM %s at byte %" PRIu64
                        " has an unknown size; only Segment and Cluster may (%s)",
                        id_name(id), d->elem_start, EXPECTED);
        return fail(d, HARK_E_BAD_AUDIO,
                    "WebM %s 0x%X at byte %" PRIu64
                    " has an unknown size; only Segment and Cluster may",
                    id_name(id), (unsigned)id, d->elem_start);
    }
    if (parent_end != UNKNOWN_END && (d->pos > parent_end || size > parent_end - d->pos))
        return fail(d, HARK_E_BAD_AUDIO,
                    "WebM %s 0x%X at byte %" PRIu64 " of %" PRIu64
                    " bytes runs past the end of its parent %s",
                    id_name(id), (unsigned)id, d->elem_start, size, id_name(parent));
    if (master) {
        if (push(d, id, d->pos + size))
            return d->result;
        return next_element(d); /* closes it at once if it is empty */
    }
    if (reads(parent, id))
        return start_leaf(d, id, size);
    return start_skip(d, size);
}

int webm_demux_create(struct webm_demux **out, webm_packet_cb cb, void *user)
{
    if (!out)
        return HARK_E_INVAL;
    *out = NULL;
    if (!cb)
        return HARK_E_INVAL;
    struct webm_demux *d = hark_calloc(1, sizeof *d);
    if (!d)
        return HARK_E_NOMEM;
    d->cb = cb;
    d->user = user;
    d->state = ST_ID;
    *out = d;
    return 0;
}

void webm_demux_destroy(struct webm_demux *d)
{
    if (!d)
        return;
    hark_free(d->entry.priv);
    hark_free(d->head);
    hark_free(d->sent);
    hark_free(d->buf);
    hark_free(d);
}

static int replay(const struct webm_demux *d, char *err, size_t errn)
{
    if (d->cb_stop)
        return d->result;
    return err_set(err, errn, d->result, "%s", d->msg);
}

int webm_demux_feed(struct webm_demux *d, const uint8_t *in, size_t n, char *err, size_t errn)
{
    if (!d || (!in && n))
        return err_set(err, errn, HARK_E_INVAL, "webm_demux_feed: NULL argument");
    size_t i = 0;
    int rc = 0;

    while (rc == 0 && d->state != ST_ERROR && i < n) {
        size_t avail = n - i;
        switch (d->state) {
        case ST_SKIP: {
            size_t k = d->skip < avail ? (size_t)d->skip : avail;
            d->skip -= k;
            d->pos += k;
            i += k;
            if (d->skip == 0)
                rc = next_element(d);
            break;
        }
        case ST_LEAF: {
            size_t k = d->leaf_need - d->leaf_have;
            if (k > avail)
                k = avail;
            memcpy(d->buf + d->leaf_have, in + i, k);
            d->leaf_have += k;
            d->pos += k;
            i += k;
            if (d->leaf_have == d->leaf_need)
                rc = on_leaf(d);
            break;
        }
        case ST_ID: {
            uint8_t b = in[i++];
            d->pos++;
            if (d->have == 0) {
                d->elem_start = d->pos - 1;
                int len = vint_len(b);
                if (len == 0 || len > 4) {
                    if (!d->seen_ebml)
                        rc = fail(d, HARK_E_BAD_AUDIO,
                                  "not a WebM stream: expected an EBML header (bytes 1A 45 DF "
                                  "A3) at the start, got 0x%02X; %s",
                                  b, EXPECTED);
                    else
                        rc = fail(d, HARK_E_BAD_AUDIO,
                                  "WebM element at byte %" PRIu64
                                  " has an invalid ID (first byte 0x%02X); the stream is "
                                  "corrupt or not WebM",
                                  d->elem_start, b);
                    break;
                }
                d->need = (size_t)len;
            }
            d->hdr[d->have++] = b;
            if (d->have == d->need) {
                d->id = (uint32_t)be_uint(d->hdr, d->have);
                d->state = ST_SIZE;
                d->have = 0;
                d->need = 0;
            }
            break;
        }
        case ST_SIZE: {
            uint8_t b = in[i++];
            d->pos++;
            if (d->have == 0) {
                int len = vint_len(b);
                if (len == 0) {
                    rc = fail(d, HARK_E_BAD_AUDIO,
                              "WebM %s 0x%X at byte %" PRIu64
                              " has an invalid size (first byte 0x00)",
                              id_name(d->id), (unsigned)d->id, d->elem_start);
                    break;
                }
                d->need = (size_t)len;
            }
            d->hdr[d->have++] = b;
            if (d->have == d->need) {
                int len = (int)d->need;
                uint64_t v = vint_value(d->hdr, len);
                int unknown = v == (((uint64_t)1 << (7 * len)) - 1);
                rc = on_header(d, v, unknown);
            }
            break;
        }
        default:
            break;
        }
    }
    if (d->state == ST_ERROR)
        return replay(d, err, errn);
    return rc;
}

int webm_sniff(const uint8_t *in, size_t n)
{
    static const uint8_t magic[4] = {0x1A, 0x45, 0xDF, 0xA3};
    return in && n >= 4 && memcmp(in, magic, 4) == 0;
}
