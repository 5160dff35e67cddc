/* Resampling: length, frequency, amplitude and time alignment of sines at
 * the rates the pipeline sees, and that splitting the input anywhere does not
 * change the output. */
#include <stdint.h>

#include "audio/resample.h"
#include "check.h"
#include "hark/hark.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static uint32_t rng_state = 777;
static uint32_t rng(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static float *make_sine(int rate, double freq, size_t n)
{
    float *x = hark_malloc(n * sizeof *x);
    ASSERT(x != NULL);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)sin(2 * M_PI * freq * (double)i / rate);
    return x;
}

/* Resamples x in pieces: cuts[] are split points (ascending, within n), or
 * fixed `step` pieces when cuts is NULL. Checks every call against
 * resampler_max_out; returns the output (hark_free) and its length. */
static float *run(int in_rate, int out_rate, const float *x, size_t n, const size_t *cuts,
                  size_t n_cuts, size_t step, size_t *out_len)
{
    struct resampler *r = NULL;
    ASSERT_OK(resampler_create(&r, in_rate, out_rate, 4));
    size_t cap = resampler_max_out(r, n) + resampler_max_out(r, 0) + n_cuts * 4 + 64;
    float *y = hark_malloc(cap * sizeof *y);
    ASSERT(y != NULL);
    size_t m = 0, pos = 0, ci = 0;
    while (pos < n) {
        size_t end = cuts ? (ci < n_cuts ? cuts[ci++] : n) : pos + step;
        if (end > n)
            end = n;
        size_t len = end - pos;
        size_t bound = resampler_max_out(r, len);
        size_t got = resampler_feed(r, x + pos, len, y + m);
        ASSERT_LE(got, bound);
        m += got;
        pos = end;
    }
    size_t bound = resampler_max_out(r, 0);
    size_t got = resampler_flush(r, y + m);
    ASSERT_LE(got, bound);
    m += got;
    ASSERT_LE(m, cap);
    resampler_destroy(r);
    *out_len = m;
    return y;
}

/* Sign changes in [from, to). */
static size_t zero_crossings(const float *y, size_t from, size_t to)
{
    size_t c = 0;
    for (size_t i = from + 1; i < to; i++)
        if ((y[i - 1] < 0) != (y[i] < 0))
            c++;
    return c;
}

/* One second of a sine through in_rate -> out_rate in 10 ms pieces. */
static void check_sine(int in_rate, int out_rate, double freq)
{
    size_t n = (size_t)in_rate;
    float *x = make_sine(in_rate, freq, n);
    size_t m = 0;
    float *y = run(in_rate, out_rate, x, n, NULL, 0, (size_t)in_rate / 100, &m);

    /* Length: the input's duration, to the sample. */
    ASSERT_NEAR((double)m, (double)out_rate, 1);

    /* Frequency from zero crossings away from both ends (two per period). */
    size_t margin = (size_t)out_rate / 20;
    size_t c = zero_crossings(y, margin, m - margin);
    double secs = (double)(m - 2 * margin) / out_rate;
    ASSERT_NEAR(c / (2 * secs), freq, freq * 0.005 + 2);

    /* Amplitude ~1 once the filter has seen the start, and no delay: the
     * output follows the ideal sine sampled at out_rate. */
    double peak = 0, worst = 0;
    for (size_t i = 64; i + 64 < m; i++) {
        peak = fabs(y[i]) > peak ? fabs(y[i]) : peak;
        double ideal = sin(2 * M_PI * freq * (double)i / out_rate);
        worst = fabs(y[i] - ideal) > worst ? fabs(y[i] - ideal) : worst;
    }
    ASSERT_NEAR(peak, 1.0, 0.01);
    ASSERT_LE(worst, 0.002);
    fprintf(stderr, "  %d -> %d, %.0f Hz: %zu samples, %zu crossings, peak %.4f, max error %.5f\n",
            in_rate, out_rate, freq, m, c, peak, worst);
    hark_free(x);
    hark_free(y);
}

static void test_sine_44100_to_16000(void)
{
    check_sine(44100, 16000, 1000);
}

static void test_common_rates(void)
{
    check_sine(48000, 16000, 1000);
    check_sine(8000, 16000, 440);
    check_sine(22050, 16000, 1000);
    check_sine(11025, 16000, 3000);
    check_sine(16000, 8000, 440);
}

/* Random split points give the same samples as 10 ms pieces. */
static void test_split_anywhere(void)
{
    const int rates[][2] = {{44100, 16000}, {48000, 16000}, {8000, 16000}, {22050, 16000}};
    for (int k = 0; k < 4; k++) {
        int in_rate = rates[k][0], out_rate = rates[k][1];
        size_t n = (size_t)in_rate / 2;
        float *x = hark_malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++) /* speech-like: a few tones and noise */
            x[i] = (float)(0.3 * sin(0.05 * i) + 0.2 * sin(0.31 * i) +
                           0.2 * ((double)(rng() % 2001) / 1000.0 - 1.0));
        size_t m_ref = 0;
        float *ref = run(in_rate, out_rate, x, n, NULL, 0, n, &m_ref);
        for (int trial = 0; trial < 5; trial++) {
            size_t cuts[2000], nc = 0, pos = 0;
            while (nc < 2000) {
                /* mostly small pieces, some single samples, some large */
                size_t len = trial == 0 ? 1 + rng() % 3 : 1 + rng() % (rng() % 4 ? 50 : 3000);
                pos += len;
                if (pos >= n)
                    break;
                cuts[nc++] = pos;
            }
            size_t m = 0;
            float *y = run(in_rate, out_rate, x, n, cuts, nc, 0, &m);
            ASSERT_EQ(m, m_ref);
            double worst = 0;
            for (size_t i = 0; i < m; i++)
                worst = fabs(y[i] - ref[i]) > worst ? fabs(y[i] - ref[i]) : worst;
            ASSERT_LE(worst, 1e-5);
            hark_free(y);
        }
        hark_free(ref);
        hark_free(x);
    }
}

static void test_same_rate_copies(void)
{
    struct resampler *r = NULL;
    ASSERT_OK(resampler_create(&r, 16000, 16000, 4));
    float x[100], y[100];
    for (int i = 0; i < 100; i++)
        x[i] = (float)i / 100.0f - 0.5f;
    ASSERT_LE(100, resampler_max_out(r, 100));
    ASSERT_EQ(resampler_feed(r, x, 100, y), 100);
    ASSERT(memcmp(x, y, sizeof x) == 0);
    ASSERT_EQ(resampler_flush(r, y), 0);
    ASSERT_EQ(resampler_feed(r, x, 0, y), 0);
    resampler_destroy(r);
    resampler_destroy(NULL);
}

/* After a flush the resampler starts over: the same input gives the same
 * output as a fresh one. */
static void test_flush_resets(void)
{
    size_t n = 4410;
    float *x = make_sine(44100, 300, n);
    struct resampler *r = NULL;
    ASSERT_OK(resampler_create(&r, 44100, 16000, 4));
    size_t cap = resampler_max_out(r, n) + resampler_max_out(r, 0);
    float *a = hark_malloc(cap * sizeof *a), *b = hark_malloc(cap * sizeof *b);
    size_t na = resampler_feed(r, x, n, a);
    na += resampler_flush(r, a + na);
    size_t nb = resampler_feed(r, x, n, b);
    nb += resampler_flush(r, b + nb);
    ASSERT_EQ(na, 1600);
    ASSERT_EQ(nb, na);
    ASSERT(memcmp(a, b, na * sizeof *a) == 0);
    /* Flushing with nothing fed gives nothing. */
    ASSERT_EQ(resampler_flush(r, a), 0);
    /* A very short stream still comes out at its length. */
    ASSERT_EQ(resampler_feed(r, x, 10, a), 0);
    ASSERT_EQ(resampler_flush(r, a), 4); /* 10 * 16000 / 44100 = 3.6 */
    resampler_destroy(r);
    hark_free(a);
    hark_free(b);
    hark_free(x);
}

static void test_rejects_bad_args(void)
{
    struct resampler *r = (struct resampler *)1;
    ASSERT_EQ(resampler_create(&r, 999, 16000, 4), HARK_E_INVAL);
    ASSERT(r == NULL);
    ASSERT_EQ(resampler_create(&r, 16000, 192001, 4), HARK_E_INVAL);
    ASSERT_EQ(resampler_create(&r, 16000, 8000, 11), HARK_E_INVAL);
    ASSERT_EQ(resampler_create(&r, 16000, 8000, -1), HARK_E_INVAL);
    ASSERT_OK(resampler_create(&r, 192000, 1000, 10));
    resampler_destroy(r);
}

int main(void)
{
    RUN(test_sine_44100_to_16000);
    RUN(test_common_rates);
    RUN(test_split_anywhere);
    RUN(test_same_rate_copies);
    RUN(test_flush_resets);
    RUN(test_rejects_bad_args);
    return 0;
}
