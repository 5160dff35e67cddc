/*
 * The record codec of a batch session's results (transcript.h). Fields are
 * memcpy'd, so alignment does not matter; the layout is private to one
 * process (both halves are this file).
 */
#include "front/proto/transcript.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"
#include "host/chan.h" /* MSG_FATAL */

enum { REC_FINAL = 'F', REC_ERROR = 'E', REC_CLOSED = 'C' };
struct rec_final {
    double start, end;
    float conf;
    uint32_t n_words, text_len;
};
struct rec_word {
    double start, end;
    float conf;
    uint32_t len;
};

void transcript_init(struct transcript *t)
{
    memset(t, 0, sizeof *t);
    buf_init(&t->strs);
}

void transcript_deinit(struct transcript *t)
{
    hark_free(t->segs);
    hark_free(t->words);
    buf_deinit(&t->strs);
    transcript_init(t);
}

void transcript_record(const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    char tag;
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT: {
        if (!ev->is_final || !ev->text || !ev->text[0])
            return;
        tag = REC_FINAL;
        struct rec_final h = {ev->start, ev->end, ev->confidence,
                              (uint32_t)(ev->words ? ev->n_words : 0), (uint32_t)strlen(ev->text)};
        buf_append(out, &tag, 1);
        buf_append(out, &h, sizeof h);
        buf_append(out, ev->text, h.text_len);
        for (uint32_t i = 0; i < h.n_words; i++) {
            const struct hark_word *w = &ev->words[i];
            struct rec_word rw = {w->start, w->end, w->confidence, (uint32_t)strlen(w->word)};
            buf_append(out, &rw, sizeof rw);
            buf_append(out, w->word, rw.len);
        }
        return;
    }
    case HARK_EVENT_ERROR: {
        tag = REC_ERROR;
        int32_t code = ev->code;
        const char *msg = ev->message ? ev->message : "";
        uint32_t len = (uint32_t)strlen(msg);
        buf_append(out, &tag, 1);
        buf_append(out, &code, sizeof code);
        buf_append(out, &len, sizeof len);
        buf_append(out, msg, len);
        if (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED)
            *flags |= MSG_FATAL;
        return;
    }
    case HARK_EVENT_CLOSED:
        tag = REC_CLOSED;
        buf_append(out, &tag, 1);
        buf_append(out, &ev->audio_seconds, sizeof ev->audio_seconds);
        return;
    default:
        return;
    }
}

/* ------------------------------------------------------------ reading */

struct rd {
    const unsigned char *p;
    size_t n;
    int bad;
};

static void rd(struct rd *r, void *out, size_t len)
{
    if (r->bad || r->n < len) {
        r->bad = 1;
        memset(out, 0, len);
        return;
    }
    memcpy(out, r->p, len);
    r->p += len;
    r->n -= len;
}

static const char *rd_bytes(struct rd *r, size_t len)
{
    if (r->bad || r->n < len) {
        r->bad = 1;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += len;
    r->n -= len;
    return s;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *p = hark_realloc(*arr, nc * elem);
    if (!p)
        return HARK_E_NOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

static size_t add_str(struct transcript *t, const char *s, size_t n)
{
    size_t off = t->strs.len;
    buf_append(&t->strs, s, n);
    buf_putc(&t->strs, 0);
    return off;
}

static int take_final(struct transcript *t, struct rd *r)
{
    struct rec_final h;
    rd(r, &h, sizeof h);
    const char *text = rd_bytes(r, h.text_len);
    /* Each word takes at least its fixed part: a count the record cannot
     * hold is malformed (and is not allocated for). */
    if (r->bad || h.n_words > r->n / sizeof(struct rec_word))
        return HARK_E_PROTOCOL;
    if (grow((void **)&t->segs, &t->cap_segs, t->n_segs + 1, sizeof *t->segs) ||
        grow((void **)&t->words, &t->cap_words, t->n_words + h.n_words, sizeof *t->words))
        return HARK_E_NOMEM;
    struct transcript_seg *s = &t->segs[t->n_segs++];
    s->text = add_str(t, text, h.text_len);
    s->start = h.start;
    s->end = h.end;
    s->conf = h.conf;
    s->w0 = t->n_words;
    s->nw = 0;
    for (uint32_t i = 0; i < h.n_words && !r->bad; i++) {
        struct rec_word w;
        rd(r, &w, sizeof w);
        const char *word = rd_bytes(r, w.len);
        if (r->bad)
            break;
        t->words[t->n_words++] =
            (struct transcript_word){add_str(t, word, w.len), w.start, w.end, w.conf};
        s->nw++;
    }
    return t->strs.oom ? HARK_E_NOMEM : 0;
}

int transcript_take(struct transcript *t, const void *rec, size_t len, int *code, char *msg,
                    size_t n)
{
    struct rd r = {rec, len, 0};
    char tag = 0;
    rd(&r, &tag, 1);
    if (tag == REC_FINAL)
        return take_final(t, &r);
    if (tag == REC_ERROR) {
        int32_t c;
        uint32_t mlen;
        rd(&r, &c, sizeof c);
        rd(&r, &mlen, sizeof mlen);
        const char *m = rd_bytes(&r, mlen);
        if (r.bad)
            return HARK_E_PROTOCOL;
        *code = c;
        if (n)
            snprintf(msg, n, "%.*s", (int)(mlen > (uint32_t)n ? n : mlen), m);
        return 1;
    }
    if (tag == REC_CLOSED) {
        rd(&r, &t->audio_seconds, sizeof t->audio_seconds);
        if (r.bad)
            return HARK_E_PROTOCOL;
        t->closed = 1;
    }
    return 0;
}

/* ------------------------------------------------------------ reading it out */

const char *transcript_str(const struct transcript *t, size_t off)
{
    return t->strs.data && off < t->strs.len ? t->strs.data + off : "";
}

void transcript_text(const struct transcript *t, struct buf *o)
{
    for (size_t i = 0; i < t->n_segs; i++) {
        if (i)
            buf_putc(o, ' ');
        buf_puts(o, transcript_str(t, t->segs[i].text));
    }
}

double transcript_confidence(const struct transcript *t, size_t w0, size_t nw)
{
    if (!nw)
        return 0;
    double sum = 0;
    for (size_t i = w0; i < w0 + nw; i++)
        sum += t->words[i].conf;
    return sum / (double)nw;
}
