/* Stage 2: any input rate -> 16 kHz. Created lazily on the first audio,
 * because a WAV stream only reveals its rate once the header is parsed.
 * Also stamps positions on the 16 kHz timeline. */
#include "audio/resample.h"
#include "base/mem.h"
#include "session/stage.h"

/* speex quality 4: its default, and measured cheap enough to stay far below
 * the engine's cost (docs/benchmarks.md). */
#define RESAMPLE_QUALITY 4

struct resample {
    struct resampler *rs; /* NULL while the rate is unknown or already 16 kHz */
    int in_rate;
    int64_t pos; /* next output sample position */
    float *out;
    size_t out_cap;
};

static int resample_init(struct stage *st)
{
    st->priv = hark_calloc(1, sizeof(struct resample));
    return st->priv ? 0 : HARK_E_NOMEM;
}

static int emit_audio(struct stage *st, struct resample *r, const float *s, size_t n)
{
    if (!n)
        return 0;
    struct frame f = {.kind = FRAME_AUDIO, .samples = s, .n = n, .rate = PIPE_RATE, .pos = r->pos};
    r->pos += (int64_t)n;
    return stage_emit(st, &f);
}

static int resample_write(struct stage *st, const struct frame *f)
{
    if (f->kind != FRAME_AUDIO)
        return stage_pass(st, f);
    struct resample *r = st->priv;
    if (!r->in_rate) {
        r->in_rate = f->rate;
        if (f->rate != PIPE_RATE) {
            int rc = resampler_create(&r->rs, f->rate, PIPE_RATE, RESAMPLE_QUALITY);
            if (rc)
                return pipeline_error(st->pl, rc, "cannot resample from %d Hz", f->rate);
        }
    }
    if (!r->rs)
        return emit_audio(st, r, f->samples, f->n);
    if (mem_grow(&r->out, &r->out_cap, resampler_max_out(r->rs, f->n), sizeof *r->out))
        return pipeline_error(st->pl, HARK_E_NOMEM, "out of memory resampling");
    size_t got = resampler_feed(r->rs, f->samples, f->n, r->out);
    return emit_audio(st, r, r->out, got);
}

static int resample_flush(struct stage *st, enum hark_reason reason)
{
    struct resample *r = st->priv;
    if (!r->rs)
        return 0;
    if (mem_grow(&r->out, &r->out_cap, resampler_max_out(r->rs, 0), sizeof *r->out))
        return pipeline_error(st->pl, HARK_E_NOMEM, "out of memory resampling");
    size_t got = resampler_flush(r->rs, r->out);
    return emit_audio(st, r, r->out, got);
}

static void resample_close(struct stage *st)
{
    struct resample *r = st->priv;
    if (!r)
        return;
    resampler_destroy(r->rs);
    hark_free(r->out);
    hark_free(r);
    st->priv = NULL;
}

static void resample_describe(struct stage *st, struct buf *out)
{
    struct resample *r = st->priv;
    if (!r->in_rate)
        buf_printf(out, "resample(?\xE2\x86\x92%d)", PIPE_RATE);
    else if (!r->rs)
        buf_printf(out, "resample(%d, none)", PIPE_RATE);
    else
        buf_printf(out, "resample(%d\xE2\x86\x92%d)", r->in_rate, PIPE_RATE);
}

const struct stage_ops stage_resample_ops = {
    .name = "resample",
    .init = resample_init,
    .write = resample_write,
    .flush = resample_flush,
    .close = resample_close,
    .describe = resample_describe,
};
