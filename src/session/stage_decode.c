/* Stage 1: input bytes -> mono float at the input rate. Raw encodings go
 * straight to the sample decoder; "wav" first runs the header parser, whose
 * format then overrides the configured rate/channels. Bytes after the WAV
 * data chunk (trailing LIST chunks etc.) are not audio and are skipped.
 * "auto" reads the first bytes to tell WAV, Ogg Opus and WebM/Opus apart
 * (what clients send when they do not name an encoding: files, browsers'
 * MediaRecorder); Opus is decoded straight to the pipeline rate.
 *
 * A raw encoding's first bytes are checked too: a stream that starts with an
 * Ogg, WebM, FLAC, MP3 (ID3), CAF or AIFF signature is a file sent with the
 * wrong encoding, which decoded as samples gives noise and no words, so it is
 * refused at once with bad_audio naming the format. A WAV header is the
 * exception: clients send one in front of raw PCM, and as 22 samples (1.4 ms
 * at 16 kHz) it never disturbed recognition, so it is decoded as before. */
#include <stdio.h>
#include <string.h>

#include "audio/ogg.h"
#include "audio/opusdec.h"
#include "audio/pcm.h"
#include "audio/wav.h"
#include "audio/webm.h"
#include "base/mem.h"
#include "session/stage.h"

/* Input is decoded in slices so scratch memory stays bounded however large
 * a single feed is. */
#define SLICE_BYTES 16384

struct decode {
    struct stage *st;
    int sniffing; /* "auto": the container is not known yet */
    int checking; /* raw: the first bytes are not yet checked for a container */
    uint8_t head[PCM_MAGIC_BYTES];
    size_t head_len;
    struct ogg_demux *ogg;
    struct webm_demux *webm;
    struct opusdec *opus;
    int cb_failed; /* an error the packet callback already reported */
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
    d->st = st;
    d->data_left = UINT64_MAX;
    if (pl->opts->encoding == ENC_AUTO) {
        strcpy(d->what, "auto");
        d->sniffing = 1;
        return 0;
    }
    if (pl->opts->encoding == ENC_WAV) {
        strcpy(d->what, "wav");
        return wav_parser_create(&d->wav);
    }
    raw_format(pl->opts->encoding, &d->fmt);
    d->checking = 1;
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
        if (mem_grow(&d->out, &d->out_cap, need, sizeof *d->out))
            return pipeline_error(pl, HARK_E_NOMEM, "out of memory decoding audio");
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

/* One packet of an Ogg or WebM Opus stream: the head sets up the decoder,
 * the rest are decoded and passed on. */
static int opus_packet_cb(void *user, const uint8_t *pkt, size_t len)
{
    struct decode *d = user;
    struct pipeline *pl = d->st->pl;
    char msg[300];
    int rc;
    if (!d->opus) {
        if ((rc = opusdec_create(&d->opus, pkt, len, PIPE_RATE, msg, sizeof msg)))
            return d->cb_failed = pipeline_error(pl, rc, "%s", msg);
        pl->in_rate = PIPE_RATE;
        snprintf(d->what, sizeof d->what, "%s:opus,%dch", d->ogg ? "ogg" : "webm",
                 opusdec_channels(d->opus));
        return 0;
    }
    if (mem_grow(&d->out, &d->out_cap, opusdec_max_samples(d->opus), sizeof *d->out))
        return d->cb_failed = pipeline_error(pl, HARK_E_NOMEM, "out of memory decoding audio");
    int got = opusdec_decode(d->opus, pkt, len, d->out, msg, sizeof msg);
    if (got < 0)
        return d->cb_failed = pipeline_error(pl, got, "%s", msg);
    if (!got)
        return 0;
    struct frame f = {.kind = FRAME_AUDIO, .samples = d->out, .n = (size_t)got, .rate = PIPE_RATE};
    pl->in_samples += got;
    if ((rc = stage_emit(d->st, &f)))
        return d->cb_failed = rc;
    return 0;
}

static int demux(struct decode *d, const uint8_t *in, size_t n)
{
    char msg[300];
    int rc = d->ogg ? ogg_demux_feed(d->ogg, in, n, msg, sizeof msg)
                    : webm_demux_feed(d->webm, in, n, msg, sizeof msg);
    if (!rc)
        return 0;
    d->failed = rc;
    return d->cb_failed ? rc : pipeline_error(d->st->pl, rc, "%s", msg);
}

/* "auto": the first four bytes name the container. */
static int sniff(struct decode *d)
{
    const uint8_t *h = d->head;
    struct pipeline *pl = d->st->pl;
    int rc = 0;
    if (!memcmp(h, "RIFF", 4) || !memcmp(h, "RF64", 4) || !memcmp(h, "RIFX", 4)) {
        strcpy(d->what, "wav");
        rc = wav_parser_create(&d->wav);
    } else if (ogg_sniff(h, 4)) {
        strcpy(d->what, "ogg");
        rc = ogg_demux_create(&d->ogg, opus_packet_cb, d);
    } else if (webm_sniff(h, 4)) {
        strcpy(d->what, "webm");
        rc = webm_demux_create(&d->webm, opus_packet_cb, d);
    } else {
        const char *known = pcm_container_magic(h, 4);
        if (!known && h[0] == 0xff && (h[1] & 0xe0) == 0xe0)
            known = "MP3 or AAC";
        d->failed = known ? HARK_E_UNSUPPORTED : HARK_E_BAD_AUDIO;
        if (known)
            return pipeline_error(pl, d->failed,
                                  "%s audio is not supported; send WAV, Ogg Opus or WebM/Opus, "
                                  "or raw PCM/mu-law/A-law with an encoding",
                                  known);
        return pipeline_error(pl, d->failed,
                              "the stream does not start like WAV, Ogg Opus or WebM/Opus audio; "
                              "for raw audio set the encoding and sample rate");
    }
    d->sniffing = 0;
    if (rc) {
        d->failed = rc;
        return pipeline_error(pl, rc, "out of memory");
    }
    return 0;
}

/* Raw encodings: a container's signature in the first bytes means the
 * encoding is wrong (see the top of the file). */
static int check_raw(struct decode *d)
{
    struct pipeline *pl = d->st->pl;
    const char *name = pcm_container_magic(d->head, d->head_len);
    d->checking = 0;
    if (!name || !strcmp(name, "WAV"))
        return 0;
    int readable = !strcmp(name, "Ogg") || !strcmp(name, "WebM");
    d->failed = HARK_E_BAD_AUDIO;
    return pipeline_error(
        pl, d->failed,
        "the audio is %s data (its first 4 bytes are that format's signature), not raw %s: %s",
        name, options_encoding_name(pl->opts->encoding),
        readable ? "set the encoding to auto (Deepgram /v1/listen: leave encoding out) and hark "
                   "reads the container"
                 : "this format is not supported; send WAV, Ogg Opus or WebM/Opus with the "
                   "encoding auto, or raw PCM, mu-law or A-law");
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
    if (d->sniffing || d->checking) {
        size_t take = sizeof d->head - d->head_len;
        if (take > n)
            take = n;
        memcpy(d->head + d->head_len, in, take);
        d->head_len += take;
        in += take;
        n -= take;
        if (d->head_len < sizeof d->head)
            return 0;
        int rc = d->sniffing ? sniff(d) : check_raw(d);
        if (rc)
            return rc;
        /* the container's first bytes, then the rest */
        struct frame hf = {.kind = FRAME_BYTES, .bytes = d->head, .n = sizeof d->head};
        if ((rc = decode_write(st, &hf)))
            return rc;
        if (!n)
            return 0;
    }
    if (d->ogg || d->webm)
        return demux(d, in, n);
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
    /* A raw stream shorter than the signature check: its bytes are audio. */
    if (reason == HARK_REASON_CLOSE && !d->failed && d->checking && d->head_len) {
        d->checking = 0;
        int rc = decode_samples(st, d, d->head, d->head_len);
        if (rc)
            return rc;
    }
    /* The stream ended inside a WAV header: say so rather than end quietly
     * with no words. (A partial sample frame at the very end is dropped:
     * less than one sample period of audio.) */
    if (reason == HARK_REASON_CLOSE && !d->failed && d->sniffing && d->head_len) {
        d->failed = HARK_E_BAD_AUDIO;
        return pipeline_error(st->pl, HARK_E_BAD_AUDIO,
                              "the stream ended after %zu bytes: too short to be audio",
                              d->head_len);
    }
    if (reason == HARK_REASON_CLOSE && !d->failed && (d->ogg || d->webm) && !d->opus) {
        d->failed = HARK_E_BAD_AUDIO;
        return pipeline_error(st->pl, HARK_E_BAD_AUDIO,
                              "the stream ended before the %s container's Opus header",
                              d->ogg ? "Ogg" : "WebM");
    }
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
    ogg_demux_destroy(d->ogg);
    webm_demux_destroy(d->webm);
    opusdec_destroy(d->opus);
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
