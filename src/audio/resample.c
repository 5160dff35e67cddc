#include "audio/resample.h"

#include <stdint.h>
#include <string.h>

#include <speex/speex_resampler.h>

#include "base/err.h"
#include "base/mem.h"

/* Largest block handed to speex in one call (its counts are 32-bit). */
#define MAX_BLOCK (1u << 24)

struct resampler {
    SpeexResamplerState *st; /* NULL when in_rate == out_rate (plain copy) */
    uint32_t in_rate;
    uint32_t out_rate;
    uint32_t in_latency; /* input samples held in the filter (half its length) */
    /* Samples in and out since creation or the last flush: flush tops the
     * output up to round(n_in * out_rate / in_rate). */
    uint64_t n_in;
    uint64_t n_out;
};

int resampler_create(struct resampler **out, int in_rate, int out_rate, int quality)
{
    if (!out)
        return HARK_E_INVAL;
    *out = NULL;
    if (in_rate < 1000 || in_rate > 192000 || out_rate < 1000 || out_rate > 192000 ||
        quality < SPEEX_RESAMPLER_QUALITY_MIN || quality > SPEEX_RESAMPLER_QUALITY_MAX)
        return HARK_E_INVAL;

    int rc = 0;
    struct resampler *r = hark_calloc(1, sizeof *r);
    if (!r)
        return HARK_E_NOMEM;
    r->in_rate = (uint32_t)in_rate;
    r->out_rate = (uint32_t)out_rate;
    if (in_rate != out_rate) {
        int err = 0;
        r->st = speex_resampler_init(1, r->in_rate, r->out_rate, quality, &err);
        if (!r->st) {
            rc = err == RESAMPLER_ERR_ALLOC_FAILED ? HARK_E_NOMEM : HARK_E_INVAL;
            goto out;
        }
        /* Drop the filter's leading delay so output sample k lines up with
         * input time k / out_rate; the held tail comes out in flush. */
        speex_resampler_skip_zeros(r->st);
        int lat = speex_resampler_get_input_latency(r->st);
        r->in_latency = lat > 0 ? (uint32_t)lat : 0;
    }
out:
    if (rc) {
        resampler_destroy(r);
        return rc;
    }
    *out = r;
    return 0;
}

void resampler_destroy(struct resampler *r)
{
    if (!r)
        return;
    if (r->st)
        speex_resampler_destroy(r->st);
    hark_free(r);
}

size_t resampler_max_out(const struct resampler *r, size_t n)
{
    if (!r->st)
        return n;
    /* Whatever is held in the filter may come out with the next input, so
     * count it as input; +2 covers rounding of the fractional position. */
    uint64_t in = (uint64_t)n + r->in_latency;
    return (size_t)((in * r->out_rate + r->in_rate - 1) / r->in_rate + 2);
}

/* Runs in (or zeros when in is NULL) through speex, writing at most cap
 * samples; returns how many were written and sets *used to the input taken. */
static size_t process(struct resampler *r, const float *in, size_t n, float *out, size_t cap,
                      size_t *used)
{
    size_t done_in = 0, done_out = 0;
    while (done_in < n && done_out < cap) {
        size_t in_left = n - done_in, out_left = cap - done_out;
        spx_uint32_t in_len = in_left > MAX_BLOCK ? MAX_BLOCK : (spx_uint32_t)in_left;
        spx_uint32_t out_len = out_left > MAX_BLOCK ? MAX_BLOCK : (spx_uint32_t)out_left;
        speex_resampler_process_float(r->st, 0, in ? in + done_in : NULL, &in_len, out + done_out,
                                      &out_len);
        done_in += in_len;
        done_out += out_len;
        if (in_len == 0 && out_len == 0)
            break; /* no progress possible; cannot happen with valid arguments */
    }
    *used = done_in;
    return done_out;
}

size_t resampler_feed(struct resampler *r, const float *in, size_t n, float *out)
{
    if (n == 0)
        return 0;
    if (!r->st) {
        memcpy(out, in, n * sizeof *out);
        return n;
    }
    size_t used;
    size_t produced = process(r, in, n, out, resampler_max_out(r, n), &used);
    r->n_in += used;
    r->n_out += produced;
    return produced;
}

size_t resampler_flush(struct resampler *r, float *out)
{
    if (!r->st)
        return 0;
    uint64_t target = (r->n_in * r->out_rate + r->in_rate / 2) / r->in_rate;
    size_t want = target > r->n_out ? (size_t)(target - r->n_out) : 0;
    size_t cap = resampler_max_out(r, 0);
    if (want > cap)
        want = cap;

    /* Zeros push the held tail through the filter; the output is cut at the
     * length the input duration calls for, so the stream neither gains nor
     * loses time. Twice the latency plus a margin always suffices. */
    static const float zeros[256];
    size_t produced = 0;
    size_t budget = 2 * (size_t)r->in_latency + 2 * (r->in_rate / r->out_rate + 1) + 256;
    while (produced < want && budget > 0) {
        size_t n = budget < 256 ? budget : 256, used;
        produced += process(r, zeros, n, out + produced, want - produced, &used);
        budget -= n;
    }

    speex_resampler_reset_mem(r->st);
    speex_resampler_skip_zeros(r->st);
    r->n_in = 0;
    r->n_out = 0;
    return produced;
}
