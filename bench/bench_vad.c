/*
 * WebRTC VAD (hark's default, src/audio/vad.c) against Silero VAD (through
 * sherpa-onnx, src/engines/sherpa/sh_vad.c) on speech with noise: precision
 * and recall of 20 ms speech frames, onset lag, and CPU per audio second.
 *
 * Reference speech regions: PocketSphinx's word times on the CLEAN clip (the
 * engine driven directly, no VAD, whole clip as one utterance; fillers and
 * silences are not words), a frame being speech when its centre lies inside
 * a word. This reference is independent of both detectors; it marks short
 * pauses between words as non-speech, which both detectors bridge, so
 * precision is below 1 for both even on clean audio.
 * Noise: white and pink (Paul Kellet's filter), Gaussian, from a fixed seed,
 * added at an SNR measured against the clean clip's power over the
 * reference speech frames. Each condition runs both detectors on the same
 * samples, one fresh instance per clip. CPU: thread CPU time of the
 * classification calls only.
 *
 *   cmake --build build --target bench_vad
 *   (cd tests/e2e && ../../build/bench/bench_vad)   # finds the npm library and weights
 *   bench_vad [librivox-dir] [--lib PATH] [--model PATH] [--threshold PCT]
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audio/vad.h"
#include "engines/engine.h"
#include "engines/sherpa/sh_vad.h"
#include "hark/hark.h"

extern const struct engine_ops engine_pocketsphinx;

#define MAX_CLIPS 16
#define FRAME VAD_FRAME

struct clip {
    char id[128];
    float *pcm;
    size_t n;
    unsigned char *ref; /* per frame: 1 = speech */
    size_t frames;
};

static int load_wav(const char *path, float **pcm, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(len > 0 ? (size_t)len : 1);
    if (!d || fread(d, 1, (size_t)len, f) != (size_t)len || len < 12 || memcmp(d, "RIFF", 4)) {
        fclose(f);
        free(d);
        return -1;
    }
    fclose(f);
    for (size_t off = 12; off + 8 <= (size_t)len;) {
        uint32_t sz;
        memcpy(&sz, d + off + 4, 4);
        if (!memcmp(d + off, "data", 4)) {
            size_t bytes = sz <= (size_t)len - off - 8 ? sz : (size_t)len - off - 8;
            *n = bytes / 2;
            *pcm = malloc(*n * sizeof **pcm);
            for (size_t i = 0; i < *n; i++) {
                int16_t v;
                memcpy(&v, d + off + 8 + 2 * i, 2);
                (*pcm)[i] = v / 32768.0f;
            }
            free(d);
            return 0;
        }
        off += 8 + sz + (sz & 1);
    }
    free(d);
    return -1;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* PocketSphinx's words on the clean clip -> per-frame reference. */
static int reference(struct engine_model *m, struct clip *c)
{
    const struct engine_stream_cfg cfg = {
        .language = "en-US", .model = "", .want_words = 1, .session_id = c->id};
    struct engine_stream *s;
    char err[256];
    if (engine_pocketsphinx.stream_acquire(m, &cfg, -1, &s, err, sizeof err))
        return -1;
    struct engine_result r;
    engine_pocketsphinx.utt_start(s);
    engine_pocketsphinx.utt_feed(s, c->pcm, c->n);
    if (engine_pocketsphinx.utt_end(s, &r)) {
        engine_pocketsphinx.stream_release(s);
        return -1;
    }
    c->frames = c->n / FRAME;
    c->ref = calloc(c->frames, 1);
    for (size_t w = 0; w < r.n_words; w++)
        for (size_t i = 0; i < c->frames; i++) {
            double t = (i + 0.5) * FRAME / 16000.0;
            if (t >= r.words[w].start && t < r.words[w].end)
                c->ref[i] = 1;
        }
    engine_pocketsphinx.stream_release(s);
    return 0;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double gauss(void)
{
    double u[2];
    for (int k = 0; k < 2; k++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        u[k] = ((rng >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2.0 * log(u[0])) * cos(2.0 * M_PI * u[1]);
}

/* clip + noise at snr_db (INFINITY = clean) of colour 0 white, 1 pink. */
static float *noisy(const struct clip *c, double snr_db, int pink)
{
    float *out = malloc(c->n * sizeof *out);
    memcpy(out, c->pcm, c->n * sizeof *out);
    if (isinf(snr_db))
        return out;
    double ps = 0;
    size_t k = 0;
    for (size_t i = 0; i < c->frames; i++)
        if (c->ref[i])
            for (size_t j = 0; j < FRAME; j++, k++)
                ps += (double)c->pcm[i * FRAME + j] * c->pcm[i * FRAME + j];
    ps /= k ? (double)k : 1.0;
    float *nz = malloc(c->n * sizeof *nz);
    double b[7] = {0}, pn = 0;
    for (size_t i = 0; i < c->n; i++) {
        double w = gauss(), v = w;
        if (pink) {
            b[0] = 0.99886 * b[0] + w * 0.0555179;
            b[1] = 0.99332 * b[1] + w * 0.0750759;
            b[2] = 0.96900 * b[2] + w * 0.1538520;
            b[3] = 0.86650 * b[3] + w * 0.3104856;
            b[4] = 0.55000 * b[4] + w * 0.5329522;
            b[5] = -0.7616 * b[5] - w * 0.0168980;
            v = b[0] + b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + w * 0.5362;
            b[6] = w * 0.115926;
        }
        nz[i] = (float)v;
        pn += v * v;
    }
    pn /= (double)c->n;
    double gain = sqrt(ps / pow(10.0, snr_db / 10.0) / pn);
    for (size_t i = 0; i < c->n; i++) {
        float x = out[i] + (float)(gain * nz[i]);
        out[i] = x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x;
    }
    free(nz);
    return out;
}

struct tally {
    long tp, fp, fn, tn;
    double cpu, audio;
    double lag_sum;
    int lag_n, missed_onsets;
};

/* Onset lag: for each reference region (speech frames, gaps < 200 ms
 * bridged), ms from its first frame to the first frame called speech within
 * it (a region never called speech counts as missed). */
static void score(const struct clip *c, const unsigned char *hyp, struct tally *t)
{
    for (size_t i = 0; i < c->frames; i++) {
        if (c->ref[i] && hyp[i])
            t->tp++;
        else if (!c->ref[i] && hyp[i])
            t->fp++;
        else if (c->ref[i])
            t->fn++;
        else
            t->tn++;
    }
    for (size_t i = 0; i < c->frames;) {
        if (!c->ref[i]) {
            i++;
            continue;
        }
        size_t start = i, end = i, gap = 0;
        for (size_t j = i; j < c->frames && gap < 10; j++) {
            if (c->ref[j]) {
                end = j;
                gap = 0;
            } else {
                gap++;
            }
        }
        size_t k = start;
        while (k <= end && !hyp[k])
            k++;
        if (k > end)
            t->missed_onsets++;
        else {
            t->lag_sum += (double)(k - start) * 20.0;
            t->lag_n++;
        }
        i = end + 1;
    }
}

int main(int argc, char **argv)
{
    const char *dir = HARK_TESTDATA_DIR, *lib = "", *model = "", *threshold = "50";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lib") && i + 1 < argc)
            lib = argv[++i];
        else if (!strcmp(argv[i], "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(argv[i], "--threshold") && i + 1 < argc)
            threshold = argv[++i];
        else
            dir = argv[i];
    }
    char err[1024];
    struct sh_vad_model *sm;
    const char *kv[] = {"lib", lib, "model", model, "threshold", threshold, NULL};
    if (sh_vad_model_load(&sm, kv, err, sizeof err)) {
        fprintf(stderr, "bench_vad: %s\n", err);
        return 1;
    }
    struct engine_model *ps;
    const char *ps_kv[] = {"model_dir", HARK_PS_MODEL_DIR, "pool_max", "1", NULL};
    if (engine_pocketsphinx.model_load(&ps, ps_kv, err, sizeof err)) {
        fprintf(stderr, "bench_vad: pocketsphinx: %s\n", err);
        return 1;
    }
    static struct clip clips[MAX_CLIPS];
    int n = 0;
    char path[4096], line[120];
    snprintf(path, sizeof path, "%s/fileids", dir);
    FILE *ids = fopen(path, "r");
    while (ids && n < MAX_CLIPS && fgets(line, sizeof line, ids)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!*line)
            continue;
        snprintf(clips[n].id, sizeof clips[n].id, "%s", line);
        snprintf(path, sizeof path, "%s/%s.wav", dir, line);
        if (!load_wav(path, &clips[n].pcm, &clips[n].n) && !reference(ps, &clips[n]))
            n++;
    }
    if (ids)
        fclose(ids);
    if (!n) {
        fprintf(stderr, "bench_vad: no clips in %s\n", dir);
        return 1;
    }
    long ref_frames = 0, all_frames = 0;
    for (int i = 0; i < n; i++) {
        all_frames += (long)clips[i].frames;
        for (size_t k = 0; k < clips[i].frames; k++)
            ref_frames += clips[i].ref[k];
    }
    printf("%d clips, %.1f s, reference speech %.0f%% of frames (PocketSphinx words, clean)\n", n,
           all_frames * 0.02, 100.0 * ref_frames / all_frames);
    /* Creation cost of one Silero detector (one onnxruntime session). */
    double c0 = cpu_now();
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);
    enum { N_CREATE = 10 };
    for (int i = 0; i < N_CREATE; i++) {
        struct sh_vad *v;
        if (sh_vad_create(&v, sm))
            return 1;
        sh_vad_destroy(v);
    }
    clock_gettime(CLOCK_MONOTONIC, &w1);
    printf("silero detector create+destroy: %.1f ms CPU, %.1f ms wall (mean of %d)\n",
           (cpu_now() - c0) * 1000 / N_CREATE,
           ((w1.tv_sec - w0.tv_sec) * 1e3 + (w1.tv_nsec - w0.tv_nsec) / 1e6) / N_CREATE, N_CREATE);

    /* Memory of live detectors: resident set before and after 10 more. */
    {
        struct sh_vad *live[N_CREATE];
        long before = rss_kb();
        for (int i = 0; i < N_CREATE; i++)
            if (sh_vad_create(&live[i], sm))
                return 1;
        printf("silero detector resident memory: %.1f MB each (%d live)\n",
               (rss_kb() - before) / 1024.0 / N_CREATE, N_CREATE);
        for (int i = 0; i < N_CREATE; i++)
            sh_vad_destroy(live[i]);
    }

    printf("\n| noise | SNR dB | VAD | precision | recall | F1 | onset lag ms (mean) | onsets "
           "missed | CPU ms per audio s |\n|---|---|---|---|---|---|---|---|---|\n");
    const double snrs[] = {INFINITY, 20, 10, 5, 0};
    for (int colour = 0; colour < 2; colour++)
        for (size_t si = 0; si < sizeof snrs / sizeof snrs[0]; si++) {
            if (isinf(snrs[si]) && colour)
                continue;
            struct tally t[2];
            memset(t, 0, sizeof t);
            for (int ci = 0; ci < n; ci++) {
                struct clip *c = &clips[ci];
                float *x = noisy(c, snrs[si], colour);
                unsigned char *hyp = calloc(c->frames, 1);
                for (int d = 0; d < 2; d++) {
                    struct vad *wv = NULL;
                    struct sh_vad *sv = NULL;
                    if (d == 0 ? vad_create(&wv, 2) : sh_vad_create(&sv, sm))
                        return 1;
                    double t0 = cpu_now();
                    for (size_t k = 0; k < c->frames; k++)
                        hyp[k] = (d == 0 ? vad_frame(wv, x + k * FRAME)
                                         : sh_vad_frame(sv, x + k * FRAME)) > 0;
                    t[d].cpu += cpu_now() - t0;
                    t[d].audio += c->frames * 0.02;
                    vad_destroy(wv);
                    sh_vad_destroy(sv);
                    score(c, hyp, &t[d]);
                }
                free(hyp);
                free(x);
            }
            for (int d = 0; d < 2; d++) {
                double p = t[d].tp + t[d].fp ? (double)t[d].tp / (t[d].tp + t[d].fp) : 0;
                double r = t[d].tp + t[d].fn ? (double)t[d].tp / (t[d].tp + t[d].fn) : 0;
                char snr[16];
                if (isinf(snrs[si]))
                    snprintf(snr, sizeof snr, "clean");
                else
                    snprintf(snr, sizeof snr, "%.0f", snrs[si]);
                printf("| %s | %s | %s | %.3f | %.3f | %.3f | %.0f | %d/%d | %.2f |\n",
                       isinf(snrs[si]) ? "-"
                       : colour        ? "pink"
                                       : "white",
                       snr, d ? "silero" : "webrtc", p, r, p + r > 0 ? 2 * p * r / (p + r) : 0,
                       t[d].lag_n ? t[d].lag_sum / t[d].lag_n : 0, t[d].missed_onsets,
                       t[d].missed_onsets + t[d].lag_n, t[d].cpu * 1000 / t[d].audio);
            }
        }
    for (int i = 0; i < n; i++) {
        free(clips[i].pcm);
        free(clips[i].ref);
    }
    engine_pocketsphinx.model_free(ps);
    sh_vad_model_free(sm);
    return 0;
}
