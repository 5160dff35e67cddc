/* Stage 1: input bytes -> mono float at the input rate. Raw encodings go
 * straight to the sample decoder; "wav" first runs the header parser, whose
 * format then overrides the configured rate/channels. Bytes after the WAV
 * data chunk (trailing LIST chunks etc.) are not audio and are skipped. */
#include <stdio.h>
#include <string.h>

#include "audio/pcm.h"
#include "audio/wav.h"
#include "base/mem.h"
#include "session/stage.h"

/* Input is decoded in slices so scratch memory stays bounded however large
 * a single feed is. */
#define SLICE_BYTES 16384

struct decode {
    struct wav_parser *wav;
    struct pcm_dec *pcm;
    enum pcm_format fmt;
    int channels;
    uint64_t data_left;    /* WAV data bytes still expected; UINT64_MAX = unknown */
    int failed;            /* sticky error code after bad input */
    uint64_t header_bytes; /* WAV header bytes seen so far */
    float *out;
    size_t out_cap;
    char what[64]; /* for describe */
};

static int raw_format(int enc, enum pcm_format *fmt)
{
    switch (enc) {
    case ENC_PCM_S16LE:
        *fmt = PCM_S16LE;
        return 0;
    case ENC_PCM_F32LE:
        *fmt = PCM_F32LE;
        return 0;
    case ENC_MULAW:
        *fmt = PCM_MULAW;
        return 0;
    case ENC_ALAW:
        *fmt = PCM_ALAW;
        return 0;
    }
    return -1;
}

static int decode_init(struct stage *st)
{
    struct pipeline *pl = st->pl;
    struct decode *d = hark_calloc(1, sizeof *d);
    if (!d)
        return HARK_E_NOMEM;
    st->priv = d;
    d->data_left = UINT64_MAX;
    if (pl->opts->encoding == ENC_WAV) {
        strcpy(d->what, "wav");
        return wav_parser_create(&d->wav);
    }
    raw_format(pl->opts->encoding, &d->fmt);
    d->channels = pl->opts->channels;
    pl->in_rate = pl->opts->sample_rate;
    snprintf(d->what, sizeof d->what, "%s,%dch", pcm_format_name(d->fmt), d->channels);
    return pcm_dec_create(&d->pcm, d->fmt, d->channels);
}

static int decode_samples(struct stage *st, struct decode *d, const uint8_t *in, size_t n)
{
    struct pipeline *pl = st->pl;
    if (d->data_left != UINT64_MAX) {
        if (n > d->data_left)
            n = (size_t)d->data_left;
        d->data_left -= n;
    }
    while (n) {
        size_t slice = n < SLICE_BYTES ? n : SLICE_BYTES;
        size_t need = pcm_dec_max_out(d->pcm, slice);
        if (need > d->out_cap) {
            float *o = hark_realloc(d->out, need * sizeof(float));
            if (!o)
                return pipeline_error(pl, HARK_E_NOMEM, "out of memory decoding audio");
            d->out = o;
            d->out_cap = need;
        }
        size_t got = pcm_dec_feed(d->pcm, in, slice, d->out);
        if (got) {
            struct frame f = {
                .kind = FRAME_AUDIO, .samples = d->out, .n = got, .rate = pl->in_rate};
            pl->in_samples += (int64_t)got;
            int rc = stage_emit(st, &f);
            if (rc)
                return rc;
        }
        in += slice;
        n -= slice;
    }
    return 0;
}

static int decode_write(struct stage *st, const struct frame *f)
{
    if (f->kind != FRAME_BYTES)
        return stage_pass(st, f);
    struct decode *d = st->priv;
    struct pipeline *pl = st->pl;
    if (d->failed)
        return d->failed;
    const uint8_t *in = f->bytes;
    size_t n = f->n;
    if (!d->pcm) {
        size_t used = 0;
        struct wav_info info;
        char msg[400];
        int rc = wav_parser_feed(d->wav, in, n, &used, &info, msg, sizeof msg);
        d->header_bytes += rc == 0 ? n : used;
        if (rc < 0) {
            d->failed = rc;
            return pipeline_error(pl, rc, "%s", msg);
        }
        if (rc == 0)
            return 0;
        d->fmt = info.fmt;
        d->channels = info.channels;
        d->data_left = info.data_bytes;
        pl->in_rate = info.sample_rate;
        snprintf(d->what, sizeof d->what, "wav:%s,%dch", pcm_format_name(d->fmt), d->channels);
        rc = pcm_dec_create(&d->pcm, d->fmt, d->channels);
        if (rc) {
            d->failed = rc;
            return pipeline_error(pl, rc, "cannot decode WAV sample format %s with %d channels",
                                  pcm_format_name(d->fmt), d->channels);
        }
        in += used;
        n -= used;
    }
    return decode_samples(st, d, in, n);
}

static int decode_flush(struct stage *st, enum hark_reason reason)
{
    struct decode *d = st->priv;
    /* The stream ended inside a WAV header: say so rather than end quietly
     * with no words. (A partial sample frame at the very end is dropped:
     * less than one sample period of audio.) */
    if (reason == HARK_REASON_CLOSE && d->wav && !d->pcm && !d->failed && d->header_bytes) {
        d->failed = HARK_E_BAD_AUDIO;
        return pipeline_error(st->pl, HARK_E_BAD_AUDIO,
                              "the stream ended after %llu bytes, inside the WAV header (a WAV "
                              "stream needs RIFF, fmt and data chunk headers, then samples)",
                              (unsigned long long)d->header_bytes);
    }
    return 0;
}

static void decode_close(struct stage *st)
{
    struct decode *d = st->priv;
    if (!d)
        return;
    wav_parser_destroy(d->wav);
    pcm_dec_destroy(d->pcm);
    hark_free(d->out);
    hark_free(d);
    st->priv = NULL;
}

static void decode_describe(struct stage *st, struct buf *out)
{
    struct decode *d = st->priv;
    buf_printf(out, "decode(%s)", d->what);
}

const struct stage_ops stage_decode_ops = {
    .name = "decode",
    .init = decode_init,
    .write = decode_write,
    .flush = decode_flush,
    .close = decode_close,
    .describe = decode_describe,
};
