#include "audio/vad.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"

/* Debian's libwebrtc-audio-processing exports the VAD with C linkage but
 * ships no header for it (reference/c-apis.md section 6). */
typedef struct WebRtcVadInst VadInst;
VadInst *WebRtcVad_Create(void);
void WebRtcVad_Free(VadInst *inst);
int WebRtcVad_Init(VadInst *inst);
int WebRtcVad_set_mode(VadInst *inst, int mode);
int WebRtcVad_Process(VadInst *inst, int fs, const int16_t *frame, size_t frame_length);
int WebRtcVad_ValidRateAndFrameLength(int rate, size_t frame_length);

/* The spectrum is taken over the last FFT_N samples (32 ms: the current frame
 * plus 192 samples of the previous ones), because a 20 ms Hann window smears
 * the harmonics of low-pitched voices into a noise-like spectrum. */
#define FFT_N 512
#define FFT_LOG2 9
#define HISTORY (FFT_N - VAD_FRAME)
/* Flatness band: 200 Hz .. 4 kHz at 31.25 Hz per bin. Below 200 Hz is mains
 * hum and rumble; above 4 kHz unvoiced speech is itself noise-like. */
#define BIN_LO 7   /* ceil(200 / 31.25) */
#define BIN_HI 128 /* 4000 / 31.25 */
#define NBINS (BIN_HI - BIN_LO + 1)

/* Thresholds, measured with tests/unit/test_vad.c and a sweep over the
 * librivox and cards clips of pocketsphinx-testdata against 60 s each of
 * white, pink and brown noise at 0.02-0.5:
 * - stationary noise of any power-law colour has a flatness of 0.57 median,
 *   0.41-0.45 at the 0.1th percentile and 0.37-0.43 at its lowest frame;
 * - speech frames have a median of about 0.24. 0.42 keeps 92-100% of the
 *   loudest (vowel) librivox frames, while at most ~0.2% of noise frames
 *   pass, never two within 200 ms, far from the 6-in-10 of an onset. */
#define FLATNESS_MAX 0.42f
/* Mean-square level below which a frame is never speech: digital silence,
 * dither and faint room tone. */
#define ENERGY_FLOOR_DB -55.0f
/* Added to every bin's power so log() of an all-zero frame is finite. */
#define POWER_EPS 1e-10

/* The 512 real samples are transformed as 256 complex ones (even samples
 * real, odd imaginary) and the real spectrum unpacked from that: half the
 * work of a 512-point complex FFT. */
#define CFFT_N (FFT_N / 2)
#define CFFT_LOG2 (FFT_LOG2 - 1)

struct vad {
    VadInst *webrtc;
    int mode;
    int full; /* vad_set_full_analysis: the spectrum of every frame */
    float flatness;
    float energy_db;
    float history[HISTORY]; /* samples preceding the current frame */
    float window[FFT_N];
    float cos_tab[FFT_N / 2]; /* e^(-2 pi i k / FFT_N), k < FFT_N / 2 */
    float sin_tab[FFT_N / 2];
    uint16_t bitrev[CFFT_N];
    double log_bin[NBINS]; /* ln(k) centred on its mean over the band */
    double log_bin_ss;     /* sum of log_bin[i]^2 */
};

static void init_tables(struct vad *v)
{
    for (int i = 0; i < FFT_N; i++)
        v->window[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / (FFT_N - 1)));
    for (int i = 0; i < FFT_N / 2; i++) {
        v->cos_tab[i] = (float)cos(2.0 * M_PI * i / FFT_N);
        v->sin_tab[i] = (float)-sin(2.0 * M_PI * i / FFT_N);
    }
    for (int i = 0; i < CFFT_N; i++) {
        unsigned r = 0;
        for (int b = 0; b < CFFT_LOG2; b++)
            r |= (((unsigned)i >> b) & 1u) << (CFFT_LOG2 - 1 - b);
        v->bitrev[i] = (uint16_t)r;
    }
    double mean = 0.0;
    for (int i = 0; i < NBINS; i++)
        mean += log((double)(BIN_LO + i));
    mean /= NBINS;
    v->log_bin_ss = 0.0;
    for (int i = 0; i < NBINS; i++) {
        v->log_bin[i] = log((double)(BIN_LO + i)) - mean;
        v->log_bin_ss += v->log_bin[i] * v->log_bin[i];
    }
}

/* In-place iterative radix-2 decimation-in-time CFFT_N-point FFT on
 * bit-reversed input; twiddles are every other entry of the FFT_N table. */
static void fft(const struct vad *v, float *re, float *im)
{
    for (int len = 2; len <= CFFT_N; len <<= 1) {
        int half = len >> 1, step = FFT_N / len;
        for (int start = 0; start < CFFT_N; start += len) {
            for (int k = 0; k < half; k++) {
                float wr = v->cos_tab[k * step], wi = v->sin_tab[k * step];
                int a = start + k, b = a + half;
                float tr = re[b] * wr - im[b] * wi;
                float ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
}

/* Power of bin k (0 < k < CFFT_N) of the real FFT_N-point input whose
 * packed transform is Z: with E = (Z[k] + conj Z[N/2-k]) / 2 (even samples)
 * and O = (Z[k] - conj Z[N/2-k]) / 2i (odd samples), X[k] = E + W^k O. */
static double bin_power(const struct vad *v, const float *re, const float *im, int k)
{
    int j = CFFT_N - k;
    float er = 0.5f * (re[k] + re[j]), ei = 0.5f * (im[k] - im[j]);
    float or_ = 0.5f * (im[k] + im[j]), oi = -0.5f * (re[k] - re[j]);
    float wr = v->cos_tab[k], wi = v->sin_tab[k];
    float xr = er + wr * or_ - wi * oi, xi = ei + wr * oi + wi * or_;
    return (double)xr * xr + (double)xi * xi;
}

/* Spectral flatness (geometric over arithmetic mean of the power) of the
 * band after removing the best-fitting power law P ~ f^b, fitted by least
 * squares on log power against log frequency. Plain flatness is ~0.57 for
 * white noise but only ~0.17 for brown noise, as low as many vowels; after
 * the fit every f^b noise is back near 0.57 while harmonic and formant
 * structure, which no power law follows, keeps speech low. Because the
 * residuals of a least-squares fit average to zero, their geometric mean is
 * exp(0) = 1 and the flatness is 1 / mean(exp(residual)). */
static float tilt_free_flatness(const struct vad *v, const float *x)
{
    float re[CFFT_N], im[CFFT_N];
    for (int i = 0; i < CFFT_N; i++) {
        re[v->bitrev[i]] = x[2 * i] * v->window[2 * i];
        im[v->bitrev[i]] = x[2 * i + 1] * v->window[2 * i + 1];
    }
    fft(v, re, im);

    /* Single-precision log and exp (half the cost of double's, and this is
     * per bin per frame); the sums stay double. */
    float logp[NBINS];
    double mean = 0.0, cov = 0.0;
    for (int i = 0; i < NBINS; i++) {
        logp[i] = logf((float)(bin_power(v, re, im, BIN_LO + i) + POWER_EPS));
        mean += logp[i];
        cov += logp[i] * v->log_bin[i];
    }
    mean /= NBINS;
    double slope = cov / v->log_bin_ss;
    double sum = 0.0;
    for (int i = 0; i < NBINS; i++)
        sum += expf((float)(logp[i] - mean - slope * v->log_bin[i]));
    return (float)(NBINS / sum);
}

int vad_create(struct vad **out, int mode)
{
    if (!out)
        return HARK_E_INVAL;
    *out = NULL;
    if (mode < 0 || mode > 3)
        return HARK_E_INVAL;
    int err = 0;
    struct vad *v = hark_calloc(1, sizeof *v);
    if (!v) {
        err = HARK_E_NOMEM;
        goto fail;
    }
    v->mode = mode;
    init_tables(v);
    /* Allocated by the library with malloc; released only by WebRtcVad_Free. */
    v->webrtc = WebRtcVad_Create();
    if (!v->webrtc) {
        err = HARK_E_NOMEM;
        goto fail;
    }
    if (WebRtcVad_Init(v->webrtc) != 0 || WebRtcVad_set_mode(v->webrtc, mode) != 0 ||
        WebRtcVad_ValidRateAndFrameLength(VAD_RATE, VAD_FRAME) != 0) {
        LOG_ERROR(NULL, "webrtc vad: initialisation failed for mode %d, %d Hz, %d-sample frames",
                  mode, VAD_RATE, VAD_FRAME);
        err = HARK_E_INTERNAL;
        goto fail;
    }
    vad_reset(v);
    *out = v;
    return 0;
fail:
    vad_destroy(v);
    return err;
}

void vad_destroy(struct vad *v)
{
    if (!v)
        return;
    if (v->webrtc)
        WebRtcVad_Free(v->webrtc);
    hark_free(v);
}

void vad_reset(struct vad *v)
{
    if (!v)
        return;
    /* Re-initialising clears WebRTC's adaptive noise model and resets the
     * mode to its default, so set it again. Neither can fail on an instance
     * that vad_create initialised. */
    WebRtcVad_Init(v->webrtc);
    WebRtcVad_set_mode(v->webrtc, v->mode);
    memset(v->history, 0, sizeof v->history);
    v->energy_db = -INFINITY;
    v->flatness = NAN;
}

int vad_frame(struct vad *v, const float *frame)
{
    if (!v || !frame)
        return HARK_E_INVAL;
    float x[FFT_N];
    float *cur = x + HISTORY;
    int16_t s16[VAD_FRAME];
    double energy = 0.0;
    memcpy(x, v->history, sizeof v->history);
    for (int i = 0; i < VAD_FRAME; i++) {
        float f = frame[i];
        if (!isfinite(f))
            f = 0.0f;
        else if (f > 1.0f)
            f = 1.0f;
        else if (f < -1.0f)
            f = -1.0f;
        cur[i] = f;
        energy += (double)f * f;
        long r = lrintf(f * 32768.0f);
        s16[i] = (int16_t)(r > INT16_MAX ? INT16_MAX : r);
    }
    memcpy(v->history, x + VAD_FRAME, sizeof v->history);
    energy /= VAD_FRAME;
    v->energy_db = energy > 0.0 ? (float)(10.0 * log10(energy)) : -INFINITY;

    /* Always run WebRTC, even on frames the other checks reject, so its
     * adaptive noise model follows the real signal. */
    int r = WebRtcVad_Process(v->webrtc, VAD_RATE, s16, VAD_FRAME);
    if (r < 0) {
        LOG_ERROR(NULL, "webrtc vad: WebRtcVad_Process failed on a %d-sample %d Hz frame",
                  VAD_FRAME, VAD_RATE);
        return HARK_E_INTERNAL;
    }
    /* The spectrum is the costly part (most of the VAD's CPU): only frames
     * the cheap checks pass need it. */
    if (!v->full && (r == 0 || v->energy_db <= ENERGY_FLOOR_DB)) {
        v->flatness = NAN;
        return 0;
    }
    v->flatness = tilt_free_flatness(v, x);
    return r > 0 && v->energy_db > ENERGY_FLOOR_DB && v->flatness < FLATNESS_MAX;
}

void vad_set_full_analysis(struct vad *v, int on)
{
    if (v)
        v->full = on != 0;
}

float vad_last_flatness(const struct vad *v)
{
    return v ? v->flatness : NAN;
}

float vad_last_energy_db(const struct vad *v)
{
    return v ? v->energy_db : -INFINITY;
}
