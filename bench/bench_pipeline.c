/*
 * Benchmark: hark's whole pipeline against the raw PocketSphinx engine
 * (docs/benchmarks.md, Part A). A program, not a test.
 *
 *   cpu      CPU seconds per audio second of hark_session_feed (20 ms chunks)
 *            + hark_session_close, against ps_process_raw (20 ms chunks) +
 *            ps_end_utt + reading the words, on one thread each
 *            (CLOCK_THREAD_CPUTIME_ID), repeated and interleaved hark, raw,
 *            hark, raw... Data sets:
 *              continuous       the librivox clips back to back, one
 *                               utterance for both (no pause to end one)
 *              pauses-silence   each clip followed by 2 s of digital silence
 *              pauses-noise     each clip followed by 2 s of white noise at
 *                               -50 dBFS (RMS, full-scale square = 0 dB)
 *              dialog           (only when named in --sets) each clip
 *                               followed by a turn-taking gap of that noise,
 *                               0.25 to 2.5 s, two of them shorter than the
 *                               500 ms endpointing
 *              noisy            (only when named in --sets) the dialog gaps,
 *                               and white noise 15 dB below each clip's RMS
 *                               over its speech and gap
 *            The raw engine gets the utterances hark's VAD makes but decodes
 *            every sample: on the pause sets each clip plus its pause is one
 *            utterance (what a server with endpointing but no VAD gating
 *            does).
 *   rss      resident memory per session: idle sessions, then up to 6
 *            talking ones (each holding a decoder), RSS and PSS from
 *            /proc/self/smaps_rollup, with the engine's share_model=yes and
 *            =no, each in a child process so earlier allocations do not hide
 *            growth.
 *   resample hark's speex resampler (the quality stage_resample.c uses) on
 *            8, 44.1 and 48 kHz versions of the continuous set, alone and
 *            inside the pipeline (44.1 kHz input against 16 kHz input).
 *   latency  time from the end of the audio to the final for a ~9 s
 *            utterance, per second_pass (none, bestpath, full): inside
 *            hark_session_close (endpointing off, one utterance) and inside
 *            the hark_session_feed call whose audio completed the endpoint
 *            silence; the raw engine's ps_end_utt on the same audio beside.
 *
 * Both sides use identical decoder settings: -hmm/-lm/-dict of the packaged
 * model, -remove_silence no, and -fwdflat/-bestpath per second_pass, as
 * src/engines/pocketsphinx/pocketsphinx.c sets them.
 *
 * Usage: bench_pipeline [--repeats N] [--sections cpu,rss,resample,latency]
 *                       [--sets continuous,pauses-silence,pauses-noise,dialog,noisy]
 *                       [--raw-partials] [--json FILE] [--data DIR]
 *                       [--clips N] [--warmup 0|1] [--passes none,bestpath,full]
 *                       [--paced] [--chunk-ms N] [--max-hmms N]
 *   --raw-partials  adds a third arm: the raw engine also reading its
 *                   hypothesis every 200 ms of audio (ps_get_hyp), as hark
 *                   does for partials, to separate partial cost from the rest.
 *   --json FILE     also writes the cpu figures as JSON (bench/load.mjs uses
 *                   it for the server's CPU ratio).
 *   --clips N       only the first N clips; --warmup 0 skips the unmeasured
 *                   first run of each arm (both for callgrind runs, where
 *                   instruction counts are exact and one run is enough).
 *   --passes LIST   the second_pass settings the latency section measures.
 *   --max-hmms N    the search's HMMs per frame at most, for both sides
 *                   (the engine's max_hmms, the raw engine's -maxhmmpf);
 *                   default the engine's default.
 *   --paced         the cpu section feeds both sides in real time (each 20 ms
 *                   chunk at its due time, sleeping in between), as a live
 *                   stream arrives; otherwise as fast as they decode. A
 *                   decoder that sleeps between chunks finds its caches
 *                   cold, so paced CPU per audio second is higher for both.
 *   --chunk-ms N    the cpu section feeds N ms per call (and, paced, per
 *                   wake-up) instead of 20: what batching a stream's audio
 *                   per wake-up saves (docs/benchmarks.md).
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/feat.h>

#include "audio/resample.h"
#include "base/clock.h"
#include "base/mem.h"
#include "hark/hark.h"

#ifndef HARK_PS_MODEL_DIR
#define HARK_PS_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#endif
#ifndef HARK_TESTDATA_DIR
#define HARK_TESTDATA_DIR "/usr/share/pocketsphinx/test/data/librivox"
#endif

#define RATE 16000
#define CHUNK 320 /* samples: 20 ms */
/* --chunk-ms: the cpu section's feed size (both sides), CHUNK by default. */
static size_t feed_chunk = CHUNK;
#define MAX_CLIPS 8
#define MAX_UTTS 16
#define MAX_REPEATS 64
#define TEXT_CAP 8192
#define PAUSE_S 2.0
#define NOISE_DBFS -50.0

/* ------------------------------------------------------------ data */

struct clip {
    char id[128];
    char ref[1024];
    int16_t *pcm;
    size_t n;
};

struct dataset {
    const char *name;
    int16_t *pcm;
    size_t n;
    /* spans the raw engine decodes as utterances */
    size_t utt_off[MAX_UTTS], utt_len[MAX_UTTS];
    int n_utts;
    char ref[TEXT_CAP];
};

static void die(const char *fmt, const char *arg)
{
    fprintf(stderr, "bench_pipeline: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    exit(1);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = n > 0 ? hark_malloc((size_t)n) : NULL;
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        hark_free(d);
        d = NULL;
    }
    fclose(f);
    *len = d ? (size_t)n : 0;
    return d;
}

/* 16 kHz mono s16le WAV -> samples; 0 on success. */
static int load_wav(const char *path, int16_t **pcm, size_t *n)
{
    size_t len;
    unsigned char *d = slurp(path, &len);
    int rc = -1;
    if (!d || len < 12 || memcmp(d, "RIFF", 4) || memcmp(d + 8, "WAVE", 4))
        goto done;
    for (size_t off = 12; off + 8 <= len;) {
        uint32_t sz;
        memcpy(&sz, d + off + 4, 4);
        if (memcmp(d + off, "fmt ", 4) == 0 && sz >= 16) {
            uint16_t fmt, ch, bits;
            uint32_t rate;
            memcpy(&fmt, d + off + 8, 2);
            memcpy(&ch, d + off + 10, 2);
            memcpy(&rate, d + off + 12, 4);
            memcpy(&bits, d + off + 22, 2);
            if (fmt != 1 || ch != 1 || rate != RATE || bits != 16)
                goto done;
        } else if (memcmp(d + off, "data", 4) == 0) {
            size_t bytes = sz <= len - off - 8 ? sz : len - off - 8;
            *n = bytes / 2;
            *pcm = hark_malloc(*n * sizeof **pcm + 1);
            if (!*pcm)
                goto done;
            memcpy(*pcm, d + off + 8, *n * 2); /* little-endian host */
            rc = 0;
            goto done;
        }
        off += 8 + sz + (sz & 1);
    }
done:
    hark_free(d);
    return rc;
}

/* "<s> words </s> (fileid)" lines of the data set's transcription file. */
static int load_clips(const char *dir, struct clip *clips)
{
    char path[1024], line[2048];
    snprintf(path, sizeof path, "%s/transcription", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0;
    while (n < MAX_CLIPS && fgets(line, sizeof line, f)) {
        char *open = strrchr(line, '('), *close = strrchr(line, ')');
        if (!open || !close || close < open)
            continue;
        *close = '\0';
        snprintf(clips[n].id, sizeof clips[n].id, "%s", open + 1);
        *open = '\0';
        char *ref = clips[n].ref;
        ref[0] = '\0';
        for (char *t = strtok(line, " \t\n"); t; t = strtok(NULL, " \t\n")) {
            if (strcmp(t, "<s>") == 0 || strcmp(t, "</s>") == 0)
                continue;
            size_t l = strlen(ref);
            snprintf(ref + l, sizeof clips[n].ref - l, "%s%s", l ? " " : "", t);
        }
        snprintf(path, sizeof path, "%s/%s.wav", dir, clips[n].id);
        if (load_wav(path, &clips[n].pcm, &clips[n].n) == 0)
            n++;
    }
    fclose(f);
    return n;
}

/* Deterministic white noise: xorshift64 + Box-Muller. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static double uniform01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}

static int16_t noise_sample(double rms)
{
    double g = sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01());
    double v = round(g * rms * 32768.0);
    return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

static void append_ref(struct dataset *d, const char *ref)
{
    size_t l = strlen(d->ref);
    snprintf(d->ref + l, sizeof d->ref - l, "%s%s", l ? " " : "", ref);
}

/* The gaps after each clip of the dialog set: turn-taking pauses, some
 * shorter than the 500 ms endpointing (the speaker goes on in the same
 * utterance), some longer; low noise rather than digital silence. */
static const double dialog_gaps_s[] = {0.35, 1.2, 0.25, 2.5, 0.8};
#define N_DIALOG_GAPS (sizeof dialog_gaps_s / sizeof dialog_gaps_s[0])

/* The noisy set: white noise over the speech too, this far below each clip's
 * own RMS (a car or a busy room rather than a quiet desk), so that search
 * pruning is checked on audio where the right path scores less clearly. */
#define NOISY_SNR_DB 15.0

static double clip_rms(const int16_t *pcm, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++)
        e += (double)pcm[i] * pcm[i];
    return n ? sqrt(e / (double)n) / 32768.0 : 0;
}

static int16_t add_clamped(int16_t a, int16_t b)
{
    int v = a + b;
    return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
}

static size_t pause_samples(int pause, int i)
{
    if (pause >= 3)
        return (size_t)(dialog_gaps_s[(size_t)i % N_DIALOG_GAPS] * RATE);
    return pause ? (size_t)(PAUSE_S * RATE) : 0;
}

/* pause: 0 = none, 1 = digital silence, 2 = noise at NOISE_DBFS, 3 = dialog
 * gaps (dialog_gaps_s) of noise at NOISE_DBFS, 4 = the dialog gaps with
 * noise at NOISY_SNR_DB below the speech over speech and gaps alike */
static void build_dataset(struct dataset *d, const char *name, const struct clip *clips,
                          int n_clips, int pause)
{
    memset(d, 0, sizeof *d);
    d->name = name;
    size_t total = 0;
    for (int i = 0; i < n_clips; i++)
        total += clips[i].n + pause_samples(pause, i);
    d->pcm = hark_malloc(total * sizeof *d->pcm);
    if (!d->pcm)
        die("%s", "out of memory");
    double rms = pow(10.0, NOISE_DBFS / 20.0);
    for (int i = 0; i < n_clips && i < MAX_UTTS; i++) {
        /* Without pauses hark's VAD finds no endpoint: one utterance. The
         * raw engine gets the same utterances, so it decodes the continuous
         * set as one too (the clip boundaries are not in the audio). */
        if (pause || i == 0)
            d->utt_off[d->n_utts++] = d->n;
        if (pause == 4)
            rms = clip_rms(clips[i].pcm, clips[i].n) * pow(10.0, -NOISY_SNR_DB / 20.0);
        memcpy(d->pcm + d->n, clips[i].pcm, clips[i].n * sizeof *d->pcm);
        if (pause == 4)
            for (size_t k = 0; k < clips[i].n; k++)
                d->pcm[d->n + k] = add_clamped(d->pcm[d->n + k], noise_sample(rms));
        d->n += clips[i].n;
        for (size_t k = 0, pause_n = pause_samples(pause, i); k < pause_n; k++)
            d->pcm[d->n++] = pause >= 2 ? noise_sample(rms) : 0;
        d->utt_len[d->n_utts - 1] = d->n - d->utt_off[d->n_utts - 1];
        append_ref(d, clips[i].ref);
    }
}

/* ------------------------------------------------------------ WER */

static int split_words(char *s, char **w, int max)
{
    int n = 0;
    for (char *t = strtok(s, " \t\n"); t && n < max; t = strtok(NULL, " \t\n"))
        w[n++] = t;
    return n;
}

/* Word errors of hyp against ref (Levenshtein over words). */
static int word_errors(const char *ref, const char *hyp, int *n_ref)
{
    enum { MAXW = 400 };
    static char a[TEXT_CAP], b[TEXT_CAP];
    static char *r[MAXW], *h[MAXW];
    static int dist[MAXW + 1][MAXW + 1];
    snprintf(a, sizeof a, "%s", ref);
    snprintf(b, sizeof b, "%s", hyp);
    int nr = split_words(a, r, MAXW), nh = split_words(b, h, MAXW);
    for (int i = 0; i <= nr; i++)
        dist[i][0] = i;
    for (int j = 0; j <= nh; j++)
        dist[0][j] = j;
    for (int i = 1; i <= nr; i++)
        for (int j = 1; j <= nh; j++) {
            int c = dist[i - 1][j - 1] + (strcmp(r[i - 1], h[j - 1]) != 0);
            if (dist[i - 1][j] + 1 < c)
                c = dist[i - 1][j] + 1;
            if (dist[i][j - 1] + 1 < c)
                c = dist[i][j - 1] + 1;
            dist[i][j] = c;
        }
    *n_ref = nr;
    return dist[nr][nh];
}

static double wer_pct(const char *ref, const char *hyp)
{
    int nr;
    int e = word_errors(ref, hyp, &nr);
    return nr ? 100.0 * e / nr : 0.0;
}

static void text_append(char *text, const char *w, size_t wlen)
{
    size_t l = strlen(text);
    if (l + wlen + 2 >= TEXT_CAP)
        return;
    if (l)
        text[l++] = ' ';
    memcpy(text + l, w, wlen);
    text[l + wlen] = '\0';
}

/* ------------------------------------------------------------ hark side */

struct sink {
    int partials, finals, endpoint_finals, errors, closed;
    char text[TEXT_CAP]; /* finals joined */
    char last_final[TEXT_CAP];
};

static void on_event(void *user, const struct hark_event *ev)
{
    struct sink *s = user;
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT:
        if (!ev->is_final) {
            s->partials++;
            break;
        }
        s->finals++;
        if (ev->reason == HARK_REASON_ENDPOINT)
            s->endpoint_finals++;
        if (ev->text[0])
            text_append(s->text, ev->text, strlen(ev->text));
        snprintf(s->last_final, sizeof s->last_final, "%s", ev->text);
        break;
    case HARK_EVENT_ERROR:
        s->errors++;
        fprintf(stderr, "hark error event: %s: %s\n", hark_err_code(ev->code), ev->message);
        break;
    case HARK_EVENT_CLOSED:
        s->closed++;
        break;
    default:
        break;
    }
}

struct run {
    double cpu_s, wall_s, engine_cpu_s;
    double engine_audio_s; /* audio the engine decoded (hark: after VAD gating) */
    int partials, finals;
    double wer;
};

static struct hark_options *make_options(int endpointing)
{
    struct hark_options *o;
    char err[256];
    if (hark_options_create(&o))
        die("%s", "hark_options_create failed");
    if (!endpointing && hark_options_set(o, "endpointing_ms", "false", err, sizeof err))
        die("%s", err);
    return o;
}

/* The engine's share_model setting (the rss section measures both). */
static const char *share_model = "yes";
/* max_hmms of both sides (--max-hmms): the engine's default, given to the
 * raw engine as -maxhmmpf and to hark's engine as its setting, so that both
 * search alike whatever the engine's default becomes. */
static const char *max_hmms = "4000";

static struct hark_engine *load_engine(const char *pass, const char *pool_min, const char *pool_max)
{
    const char *settings[] = {"second_pass", pass,     "pool_min",    pool_min,
                              "pool_max",    pool_max, "share_model", share_model,
                              "max_hmms",    max_hmms, NULL};
    struct hark_engine *eng;
    char err[512];
    if (hark_engine_load(&eng, "pocketsphinx", settings, err, sizeof err))
        die("engine load: %s", err);
    return eng;
}

static struct hark_session *open_session(struct hark_engine *eng, const struct hark_options *o,
                                         struct sink *sink)
{
    /* Every run a new session, as on a server: its cepstral mean is
     * estimated from its own audio, not carried over from the last run. */
    static unsigned runs;
    char id[32];
    snprintf(id, sizeof id, "bench-%u", runs++);
    struct hark_session *s;
    char err[512];
    if (hark_session_create(&s, eng, o, id, on_event, sink, err, sizeof err))
        die("session: %s", err);
    return s;
}

/* --paced: the cpu section's runs wait for each 20 ms chunk's real-time due
 * time, as a live stream arrives (the thread sleeps between chunks, so the
 * decoder starts each chunk with caches other work has used). */
static int paced;
static int pace_on;
static int64_t pace_t0;

static void pace_start(void)
{
    pace_on = paced;
    pace_t0 = clock_mono_ns();
}

static void pace_stop(void)
{
    pace_on = 0;
}

/* Sleeps until the audio before sample `done` (from pace_start) is due. */
static void pace_wait(int64_t done)
{
    if (!pace_on)
        return;
    int64_t due = pace_t0 + done * 1000000000LL / RATE;
    int64_t now = clock_mono_ns();
    if (due > now) {
        struct timespec ts = {(time_t)((due - now) / 1000000000LL),
                              (long)((due - now) % 1000000000LL)};
        nanosleep(&ts, NULL);
    }
}

static void feed_all(struct hark_session *s, const int16_t *pcm, size_t n)
{
    for (size_t off = 0; off < n; off += feed_chunk) {
        size_t k = n - off < feed_chunk ? n - off : feed_chunk;
        pace_wait((int64_t)off);
        if (hark_session_feed(s, pcm + off, k * sizeof *pcm))
            die("feed: %s", hark_session_errmsg(s));
    }
}

__attribute__((noinline)) static void run_hark(struct hark_engine *eng,
                                               const struct hark_options *o,
                                               const struct dataset *d, struct run *out)
{
    static struct sink sink;
    struct hark_engine_stats e0, e1;
    memset(&sink, 0, sizeof sink);
    hark_engine_stats(eng, &e0);
    int64_t c0 = clock_thread_ns(), w0 = clock_mono_ns();
    pace_start();
    struct hark_session *s = open_session(eng, o, &sink);
    feed_all(s, d->pcm, d->n);
    if (hark_session_close(s))
        die("close: %s", hark_session_errmsg(s));
    hark_session_destroy(s);
    pace_stop();
    int64_t c1 = clock_thread_ns(), w1 = clock_mono_ns();
    hark_engine_stats(eng, &e1);
    out->cpu_s = (c1 - c0) / 1e9;
    out->wall_s = (w1 - w0) / 1e9;
    out->engine_cpu_s = e1.decode_seconds - e0.decode_seconds;
    out->engine_audio_s = e1.audio_seconds - e0.audio_seconds;
    out->partials = sink.partials;
    out->finals = sink.finals;
    out->wer = wer_pct(d->ref, sink.text);
}

/* ------------------------------------------------------------ raw side */

/* CMN mean right after ps_init: each raw run starts from it, as a fresh
 * stream would, so repeats decode identically. */
static mfcc_t raw_cmn0[64];
static int raw_cmn_len;

static void raw_reset_cmn(ps_decoder_t *ps)
{
    feat_t *feat = ps_get_feat(ps);
    if (raw_cmn_len && feat && feat->cmn_struct)
        cmn_live_set(feat->cmn_struct, raw_cmn0);
}

static ps_decoder_t *raw_decoder(const char *pass)
{
    /* Exactly the engine's settings (src/engines/pocketsphinx/pocketsphinx.c decoder_new). */
    const char *fwdflat = strcmp(pass, "full") == 0 ? "yes" : "no";
    const char *bestpath = strcmp(pass, "none") == 0 ? "no" : "yes";
    char hmm[1024], lm[1024], dict[1024];
    snprintf(hmm, sizeof hmm, "%s/en-us", HARK_PS_MODEL_DIR);
    snprintf(lm, sizeof lm, "%s/en-us.lm.bin", HARK_PS_MODEL_DIR);
    snprintf(dict, sizeof dict, "%s/cmudict-en-us.dict", HARK_PS_MODEL_DIR);
    err_set_logfp(NULL);
    cmd_ln_t *cfg =
        cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict, "-remove_silence",
                    "no", "-fwdflat", fwdflat, "-bestpath", bestpath, "-maxhmmpf", max_hmms, NULL);
    ps_decoder_t *ps = cfg ? ps_init(cfg) : NULL;
    if (cfg)
        cmd_ln_free_r(cfg);
    if (!ps)
        die("%s", "ps_init failed");
    feat_t *feat = ps_get_feat(ps);
    if (feat && feat->cmn_struct && feat->cmn_struct->veclen <= 64) {
        raw_cmn_len = feat->cmn_struct->veclen;
        cmn_live_get(feat->cmn_struct, raw_cmn0);
    }
    return ps;
}

static int is_filler(const char *w)
{
    return w[0] == '<' || w[0] == '[' || w[0] == '+';
}

/* ps_end_utt and reading the words with times and posteriors, as the
 * engine's collect_words does. */
static void raw_end(ps_decoder_t *ps, char *text)
{
    if (ps_end_utt(ps) < 0)
        die("%s", "ps_end_utt failed");
    for (ps_seg_t *seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
        const char *w = ps_seg_word(seg);
        int sf, ef;
        int32 ascr, lscr, lback;
        ps_seg_frames(seg, &sf, &ef);
        (void)ps_seg_prob(seg, &ascr, &lscr, &lback);
        if (!w || is_filler(w))
            continue;
        size_t n = strcspn(w, "(");
        if (text)
            text_append(text, w, n);
    }
}

static void raw_utt(ps_decoder_t *ps, const int16_t *pcm, size_t n, int64_t base, int partials,
                    char *text)
{
    if (ps_start_stream(ps) < 0 || ps_start_utt(ps) < 0)
        die("%s", "ps_start_utt failed");
    int32 score;
    size_t every = 10 * CHUNK / feed_chunk ? 10 * CHUNK / feed_chunk : 1; /* 200 ms */
    for (size_t off = 0, k = 0; off < n; off += feed_chunk, k++) {
        size_t len = n - off < feed_chunk ? n - off : feed_chunk;
        pace_wait(base + (int64_t)off);
        if (ps_process_raw(ps, pcm + off, len, FALSE, FALSE) < 0)
            die("%s", "ps_process_raw failed");
        if (partials && k % every == every - 1)
            (void)ps_get_hyp(ps, &score);
    }
    raw_end(ps, text);
}

__attribute__((noinline)) static void run_raw(ps_decoder_t *ps, const struct dataset *d,
                                              int partials, struct run *out)
{
    static char text[TEXT_CAP];
    text[0] = '\0';
    raw_reset_cmn(ps);
    int64_t c0 = clock_thread_ns(), w0 = clock_mono_ns();
    pace_start();
    for (int u = 0; u < d->n_utts; u++)
        raw_utt(ps, d->pcm + d->utt_off[u], d->utt_len[u], (int64_t)d->utt_off[u], partials, text);
    pace_stop();
    int64_t c1 = clock_thread_ns(), w1 = clock_mono_ns();
    out->cpu_s = (c1 - c0) / 1e9;
    out->wall_s = (w1 - w0) / 1e9;
    out->engine_cpu_s = out->cpu_s;
    out->engine_audio_s = (double)d->n / RATE;
    out->partials = out->finals = 0;
    out->wer = wer_pct(d->ref, text);
}

/* ------------------------------------------------------------ statistics */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double t[MAX_REPEATS];
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static double vmin(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double vmax(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* ------------------------------------------------------------ cpu section */

static int warmup = 1; /* --warmup 0: no unmeasured first run (callgrind) */

struct cpu_result {
    const char *name;
    double audio_s;
    double hark, raw, rawp;           /* median CPU s per audio s */
    double ratio, ratio_lo, ratio_hi; /* per-pair hark/raw: median, min, max */
    double ratio_p;                   /* median per-pair hark / raw+partials */
    double hark_engine;               /* median engine CPU inside hark per audio s */
    double hark_rtf, raw_rtf;
    double hark_wer, raw_wer;
    double engine_audio_s; /* audio hark's engine decoded */
    int partials, finals;
};

static void cpu_section(const struct dataset *sets, int n_sets, int repeats, int raw_partials,
                        struct cpu_result *res)
{
    struct hark_engine *eng = load_engine("bestpath", "1", "1");
    ps_decoder_t *ps = raw_decoder("bestpath");
    struct hark_options *o = make_options(1);
    printf("== cpu: hark pipeline vs raw engine, %d interleaved repeats, second_pass=bestpath, %s "
           "==\n",
           repeats, paced ? "paced in real time" : "as fast as possible");
    for (int si = 0; si < n_sets; si++) {
        const struct dataset *d = &sets[si];
        double audio = (double)d->n / RATE;
        double h[MAX_REPEATS], r[MAX_REPEATS], rp[MAX_REPEATS], ratio[MAX_REPEATS],
            ratio_p[MAX_REPEATS], he[MAX_REPEATS], hw[MAX_REPEATS], rw[MAX_REPEATS];
        struct run hr, rr, rpr = {0};
        /* warm-up: page faults on the memory-mapped model, caches */
        if (warmup) {
            run_hark(eng, o, d, &hr);
            run_raw(ps, d, 0, &rr);
        }
        for (int i = 0; i < repeats; i++) {
            run_hark(eng, o, d, &hr);
            run_raw(ps, d, 0, &rr);
            if (raw_partials)
                run_raw(ps, d, 1, &rpr);
            h[i] = hr.cpu_s / audio;
            r[i] = rr.cpu_s / audio;
            rp[i] = rpr.cpu_s / audio;
            ratio[i] = hr.cpu_s / rr.cpu_s;
            ratio_p[i] = raw_partials ? hr.cpu_s / rpr.cpu_s : 0;
            he[i] = hr.engine_cpu_s / audio;
            hw[i] = hr.wall_s / audio;
            rw[i] = rr.wall_s / audio;
            if (getenv("BENCH_VERBOSE"))
                fprintf(stderr, "  %s #%d hark %.4f raw %.4f ratio %.4f\n", d->name, i, h[i], r[i],
                        ratio[i]);
        }
        struct cpu_result *c = &res[si];
        c->name = d->name;
        c->audio_s = audio;
        c->hark = median(h, repeats);
        c->raw = median(r, repeats);
        c->rawp = raw_partials ? median(rp, repeats) : 0;
        c->ratio = median(ratio, repeats);
        c->ratio_lo = vmin(ratio, repeats);
        c->ratio_hi = vmax(ratio, repeats);
        c->ratio_p = raw_partials ? median(ratio_p, repeats) : 0;
        c->hark_engine = median(he, repeats);
        c->hark_rtf = median(hw, repeats);
        c->raw_rtf = median(rw, repeats);
        c->hark_wer = hr.wer;
        c->raw_wer = rr.wer;
        c->engine_audio_s = hr.engine_audio_s;
        c->partials = hr.partials;
        c->finals = hr.finals;
    }
    printf("%-15s %7s %10s %10s %8s %15s %12s %9s %9s %8s %8s %6s %9s\n", "set", "audio s",
           "hark CPU/s", "raw CPU/s", "ratio", "ratio min..max", "hark eng/s", "hark RTF",
           "raw RTF", "hark WER", "raw WER", "finals", "decoded");
    for (int si = 0; si < n_sets; si++) {
        const struct cpu_result *c = &res[si];
        printf("%-15s %7.2f %10.4f %10.4f %8.3f %7.3f..%-7.3f %12.4f %9.4f %9.4f %7.1f%% %7.1f%% "
               "%6d %8.1f%%\n",
               c->name, c->audio_s, c->hark, c->raw, c->ratio, c->ratio_lo, c->ratio_hi,
               c->hark_engine, c->hark_rtf, c->raw_rtf, c->hark_wer, c->raw_wer, c->finals,
               100.0 * c->engine_audio_s / c->audio_s);
    }
    if (raw_partials) {
        printf("\nraw engine also reading its hypothesis every 200 ms (as hark's partials do):\n");
        printf("%-15s %14s %18s\n", "set", "raw+hyp CPU/s", "hark / raw+hyp");
        for (int si = 0; si < n_sets; si++)
            printf("%-15s %14.4f %18.3f\n", res[si].name, res[si].rawp, res[si].ratio_p);
    }
    printf("\nratio = median over repeats of (hark CPU / raw CPU) on the same audio, same run.\n"
           "hark eng/s = CPU inside the engine calls of hark's session (hark_engine_stats);\n"
           "hark CPU/s - hark eng/s = everything else hark does (decode, VAD, events).\n"
           "decoded = share of the audio hark's VAD passed to the engine (the raw engine: 100%%).\n"
           "RTF = wall time / audio time.\n\n");
    hark_options_destroy(o);
    ps_free(ps);
    hark_engine_destroy(eng);
}

static void write_json(const char *path, const struct cpu_result *res, int n, int repeats)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("cannot write %s", path);
    fprintf(f, "{\"repeats\":%d,\"paced\":%s,\"sets\":{", repeats, paced ? "true" : "false");
    for (int i = 0; i < n; i++) {
        const struct cpu_result *c = &res[i];
        fprintf(f,
                "%s\"%s\":{\"audio_s\":%.3f,\"hark_cpu_per_audio_s\":%.6f,"
                "\"raw_cpu_per_audio_s\":%.6f,\"ratio\":%.6f,\"hark_engine_cpu_per_audio_s\":%.6f,"
                "\"hark_rtf\":%.6f,\"raw_rtf\":%.6f,\"hark_engine_audio_s\":%.3f}",
                i ? "," : "", c->name, c->audio_s, c->hark, c->raw, c->ratio, c->hark_engine,
                c->hark_rtf, c->raw_rtf, c->engine_audio_s);
    }
    fprintf(f, "}}\n");
    fclose(f);
}

/* ------------------------------------------------------------ rss section */

/* Resident and proportional set size of this process: PSS divides each
 * shared page among the processes mapping it (the model files mapped by
 * PocketSphinx, libraries), RSS counts it whole. */
struct mem {
    double rss, pss; /* MB */
};

static struct mem mem_now(void)
{
    struct mem m = {0, 0};
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long kb;
    while (f && fgets(line, sizeof line, f)) {
        if (sscanf(line, "Rss: %ld kB", &kb) == 1)
            m.rss = kb / 1024.0;
        else if (sscanf(line, "Pss: %ld kB", &kb) == 1)
            m.pss = kb / 1024.0;
    }
    if (f)
        fclose(f);
    return m;
}

#define RSS_IDLE 200
#define RSS_TALK 6

static void rss_child(const struct clip *clips)
{
    static int16_t silence[RATE];
    static struct sink sinks[RSS_IDLE + RSS_TALK];
    struct hark_session *idle[RSS_IDLE], *talk[RSS_TALK];
    char pool_max[16];
    snprintf(pool_max, sizeof pool_max, "%d", RSS_TALK);
    printf("== rss: resident memory, share_model=%s (/proc/self/smaps_rollup) ==\n", share_model);
    struct mem r0 = mem_now();
    struct hark_engine *eng = load_engine("bestpath", "0", pool_max);
    struct mem r1 = mem_now();
    struct hark_options *o = make_options(1);
    for (int i = 0; i < RSS_IDLE; i++)
        idle[i] = open_session(eng, o, &sinks[i]);
    struct mem r2 = mem_now();
    for (int i = 0; i < RSS_IDLE; i++)
        feed_all(idle[i], silence, RATE);
    struct mem r3 = mem_now();
    struct mem rt[RSS_TALK + 1];
    rt[0] = r3;
    /* 1.5 s of speech: the VAD has started an utterance, so each session
     * holds its own decoder (pool_max = RSS_TALK, none pre-created). */
    size_t speech = clips[0].n < RATE * 3 / 2 ? clips[0].n : RATE * 3 / 2;
    for (int i = 0; i < RSS_TALK; i++) {
        talk[i] = open_session(eng, o, &sinks[RSS_IDLE + i]);
        feed_all(talk[i], clips[0].pcm, speech);
        rt[i + 1] = mem_now();
    }
    struct hark_engine_stats es;
    hark_engine_stats(eng, &es);
    printf("%-58s %9s %9s\n", "step", "RSS MB", "PSS MB");
    printf("%-58s %9.1f %9.1f\n", "before engine load", r0.rss, r0.pss);
    printf("%-58s %9.1f %9.1f\n", "engine loaded (pool_min=0: no decoder yet)", r1.rss, r1.pss);
    printf("%-58s %9.1f %9.1f\n", "+200 idle sessions (created, no audio)", r2.rss, r2.pss);
    printf("%-58s %9.1f %9.1f\n", "+1 s of digital silence fed to each of them", r3.rss, r3.pss);
    for (int i = 0; i < RSS_TALK; i++) {
        char what[80];
        snprintf(what, sizeof what, "+talking session %d (1.5 s of speech, holds a decoder)",
                 i + 1);
        printf("%-58s %9.1f %9.1f\n", what, rt[i + 1].rss, rt[i + 1].pss);
    }
    printf("\nper idle session, created only:        %8.1f KB\n",
           (r2.rss - r1.rss) * 1024 / RSS_IDLE);
    printf("per idle session, after 1 s of audio:  %8.1f KB\n",
           (r3.rss - r1.rss) * 1024 / RSS_IDLE);
    printf("first talking session (first decoder): %8.1f MB RSS %8.1f MB PSS\n",
           rt[1].rss - rt[0].rss, rt[1].pss - rt[0].pss);
    printf("second talking session:                %8.1f MB RSS %8.1f MB PSS\n",
           rt[2].rss - rt[1].rss, rt[2].pss - rt[1].pss);
    printf("each further talking session:          %8.1f MB RSS %8.1f MB PSS (mean of %d)\n",
           (rt[RSS_TALK].rss - rt[1].rss) / (RSS_TALK - 1),
           (rt[RSS_TALK].pss - rt[1].pss) / (RSS_TALK - 1), RSS_TALK - 1);
    printf("decoders in use: %u of %u created\n\n", es.streams_in_use, es.streams_total);
    for (int i = 0; i < RSS_TALK; i++) {
        hark_session_destroy(talk[i]);
    }
    for (int i = 0; i < RSS_IDLE; i++)
        hark_session_destroy(idle[i]);
    hark_options_destroy(o);
    hark_engine_destroy(eng);
}

/* Each setting in its own child process, so that neither's freed memory
 * hides the other's growth. */
static void rss_section(const struct clip *clips)
{
    static const char *const modes[] = {"yes", "no"};
    for (size_t k = 0; k < sizeof modes / sizeof modes[0]; k++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            share_model = modes[k];
            rss_child(clips);
            fflush(stdout);
            _exit(0);
        }
        int st;
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st))
            die("%s", "rss child failed");
    }
}

/* ------------------------------------------------------------ latency section */

static int has(const char *list, const char *word);

static void latency_section(const struct clip *clips, int n_clips, int repeats,
                            const char *pass_list)
{
    /* ~9 s of speech as one utterance: two clips back to back. */
    int a = -1, b = -1;
    for (int i = 0; i < n_clips; i++) {
        if (strstr(clips[i].id, "0880"))
            a = i;
        if (strstr(clips[i].id, "0920"))
            b = i;
    }
    if (a < 0 || b < 0) {
        a = 0;
        b = n_clips > 1 ? 1 : 0;
    }
    size_t tail = RATE * 3 / 2; /* endpoint run: 1.5 s of silence after the speech */
    size_t n = clips[a].n + clips[b].n;
    int16_t *pcm = hark_calloc(n + tail, sizeof *pcm);
    if (!pcm)
        die("%s", "out of memory");
    memcpy(pcm, clips[a].pcm, clips[a].n * sizeof *pcm);
    memcpy(pcm + clips[a].n, clips[b].pcm, clips[b].n * sizeof *pcm);
    char ref[2 * 1024 + 2];
    snprintf(ref, sizeof ref, "%s %s", clips[a].ref, clips[b].ref);
    printf("== latency: end of audio -> final, %.2f s utterance (%s + %s), %d repeats ==\n",
           (double)n / RATE, clips[a].id + strlen(clips[a].id) - 4,
           clips[b].id + strlen(clips[b].id) - 4, repeats);
    printf("%-9s | %-36s | %-27s | %-19s | %-27s | %-17s | %-13s\n", "", "hark close -> final",
           "raw ps_end_utt + words", "hark / raw", "hark endpoint feed call", "1st partial call",
           "WER");
    printf("%-9s | %8s %8s %8s %9s | %8s %8s %9s | %9s %9s | %8s %8s %9s | %8s %8s | %6s %6s\n",
           "pass", "CPU ms", "eng ms", "wall ms", "wall max", "CPU ms", "wall ms", "wall max",
           "CPU", "wall", "CPU ms", "wall ms", "wall max", "CPU ms", "wall ms", "hark", "raw");
    static const char *const passes[] = {"none", "bestpath", "full"};
    struct hark_options *o_close = make_options(0), *o_ep = make_options(1);
    for (int pi = 0; pi < 3; pi++) {
        if (!has(pass_list, passes[pi]))
            continue;
        struct hark_engine *eng = load_engine(passes[pi], "1", "1");
        ps_decoder_t *ps = raw_decoder(passes[pi]);
        /* per repeat: hark close, raw end, hark endpoint; CPU and wall ms */
        double hc[MAX_REPEATS], hw[MAX_REPEATS], rc[MAX_REPEATS], rw[MAX_REPEATS];
        double ec[MAX_REPEATS], ew[MAX_REPEATS], rat_c[MAX_REPEATS], rat_w[MAX_REPEATS];
        double he[MAX_REPEATS], fpc[MAX_REPEATS], fpw[MAX_REPEATS];
        int n_ep = 0, n_fp = 0;
        static struct sink sink;
        static char final_text[TEXT_CAP], raw_text[TEXT_CAP];
        for (int r = -1; r < repeats; r++) {
            /* close: endpointing off, so the clip pair is one utterance */
            memset(&sink, 0, sizeof sink);
            struct hark_session *s = open_session(eng, o_close, &sink);
            feed_all(s, pcm, n);
            struct hark_engine_stats es0, es1;
            hark_engine_stats(eng, &es0);
            int64_t w0 = clock_mono_ns(), c0 = clock_thread_ns();
            if (hark_session_close(s))
                die("close: %s", hark_session_errmsg(s));
            int64_t w1 = clock_mono_ns(), c1 = clock_thread_ns();
            hark_engine_stats(eng, &es1);
            if (sink.finals != 1)
                die("%s", "expected exactly one final, delivered by close");
            snprintf(final_text, sizeof final_text, "%s", sink.last_final);
            hark_session_destroy(s);

            /* raw: same audio, one utterance; ps_end_utt + words */
            raw_reset_cmn(ps);
            if (ps_start_stream(ps) < 0 || ps_start_utt(ps) < 0)
                die("%s", "ps_start_utt failed");
            for (size_t off = 0; off < n; off += CHUNK)
                ps_process_raw(ps, pcm + off, n - off < CHUNK ? n - off : CHUNK, FALSE, FALSE);
            raw_text[0] = '\0';
            int64_t rw0 = clock_mono_ns(), rc0 = clock_thread_ns();
            raw_end(ps, raw_text);
            int64_t rw1 = clock_mono_ns(), rc1 = clock_thread_ns();

            /* endpoint: default options, the speech then 1.5 s of silence;
             * the feed call that completes endpointing_ms of silence returns
             * with the final delivered */
            memset(&sink, 0, sizeof sink);
            s = open_session(eng, o_ep, &sink);
            double ep_c = -1, ep_w = -1, fp_c = -1, fp_w = -1;
            for (size_t off = 0; off < n + tail; off += CHUNK) {
                size_t k = n + tail - off < CHUNK ? n + tail - off : CHUNK;
                int before = sink.endpoint_finals, partials_before = sink.partials;
                int64_t f0 = clock_mono_ns(), fc0 = clock_thread_ns();
                if (hark_session_feed(s, pcm + off, k * sizeof *pcm))
                    die("feed: %s", hark_session_errmsg(s));
                int64_t f1 = clock_mono_ns(), fc1 = clock_thread_ns();
                if (sink.endpoint_finals > before) {
                    ep_c = (fc1 - fc0) / 1e6; /* the last one: end of the whole utterance */
                    ep_w = (f1 - f0) / 1e6;
                }
                if (partials_before == 0 && sink.partials > 0) {
                    fp_c = (fc1 - fc0) / 1e6;
                    fp_w = (f1 - f0) / 1e6;
                }
            }
            if (sink.endpoint_finals != 1)
                fprintf(stderr, "note: %d endpoint finals in the %s endpoint run\n",
                        sink.endpoint_finals, passes[pi]);
            hark_session_close(s);
            hark_session_destroy(s);
            if (r < 0)
                continue; /* warm-up */
            hc[r] = (c1 - c0) / 1e6;
            he[r] = (es1.decode_seconds - es0.decode_seconds) * 1e3;
            hw[r] = (w1 - w0) / 1e6;
            rc[r] = (rc1 - rc0) / 1e6;
            rw[r] = (rw1 - rw0) / 1e6;
            rat_c[r] = hc[r] / rc[r];
            rat_w[r] = hw[r] / rw[r];
            if (ep_c >= 0) {
                ec[n_ep] = ep_c;
                ew[n_ep++] = ep_w;
            }
            if (fp_c >= 0) {
                fpc[n_fp] = fp_c;
                fpw[n_fp++] = fp_w;
            }
        }
        printf(
            "%-9s | %8.1f %8.1f %8.1f %9.1f | %8.1f %8.1f %9.1f | %9.3f %9.3f | %8.1f %8.1f %9.1f "
            "| %8.1f %8.1f | %5.1f%% %5.1f%%\n",
            passes[pi], median(hc, repeats), median(he, repeats), median(hw, repeats),
            vmax(hw, repeats), median(rc, repeats), median(rw, repeats), vmax(rw, repeats),
            median(rat_c, repeats), median(rat_w, repeats), n_ep ? median(ec, n_ep) : NAN,
            n_ep ? median(ew, n_ep) : NAN, n_ep ? vmax(ew, n_ep) : NAN,
            n_fp ? median(fpc, n_fp) : NAN, n_fp ? median(fpw, n_fp) : NAN,
            wer_pct(ref, final_text), wer_pct(ref, raw_text));
        ps_free(ps);
        hark_engine_destroy(eng);
    }
    printf(
        "\nhark close = hark_session_close with endpointing off (one utterance), which\n"
        "delivers the final; eng ms = the part of it inside the engine's utt_end (its own\n"
        "CPU accounting); raw = ps_end_utt + reading the words, same audio and settings;\n"
        "hark endpoint feed call = the hark_session_feed call (20 ms of audio) that completed\n"
        "endpointing_ms=500 of silence and delivered the final; 1st partial call = the feed\n"
        "call that delivered the utterance's first partial.\n"
        "Medians over the repeats.\n"
        "CPU = thread CPU time (load-independent); wall = elapsed, grows with machine load.\n\n");
    hark_options_destroy(o_close);
    hark_options_destroy(o_ep);
    hark_free(pcm);
}

/* ------------------------------------------------------------ resample section */

/* speex quality of src/session/stage_resample.c (RESAMPLE_QUALITY there). */
#define STAGE_RESAMPLE_QUALITY 4

/* s16 at 16 kHz -> s16 at rate, with the best speex quality (setup, not timed). */
static int16_t *convert_rate(const int16_t *in, size_t n, int rate, size_t *out_n)
{
    struct resampler *rs;
    float *fin = hark_malloc(n * sizeof *fin);
    if (!fin || resampler_create(&rs, RATE, rate, 10))
        die("%s", "resampler setup failed");
    for (size_t i = 0; i < n; i++)
        fin[i] = in[i] / 32768.0f;
    size_t cap = resampler_max_out(rs, n) + resampler_max_out(rs, 0);
    float *fout = hark_malloc(cap * sizeof *fout);
    int16_t *out = hark_malloc(cap * sizeof *out);
    if (!fout || !out)
        die("%s", "out of memory");
    size_t got = resampler_feed(rs, fin, n, fout);
    got += resampler_flush(rs, fout + got);
    for (size_t i = 0; i < got; i++) {
        float v = roundf(fout[i] * 32768.0f);
        out[i] = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : v);
    }
    resampler_destroy(rs);
    hark_free(fin);
    hark_free(fout);
    *out_n = got;
    return out;
}

/* CPU of hark's resampler alone on pcm at rate, 20 ms chunks; seconds. */
static double time_resampler(const int16_t *pcm, size_t n, int rate)
{
    struct resampler *rs;
    size_t chunk = (size_t)rate / 50;
    float *fin = hark_malloc(chunk * sizeof *fin);
    if (!fin || resampler_create(&rs, rate, RATE, STAGE_RESAMPLE_QUALITY))
        die("%s", "resampler setup failed");
    float *fout = hark_malloc((resampler_max_out(rs, chunk) + 64) * sizeof *fout);
    if (!fout)
        die("%s", "out of memory");
    volatile float sink = 0;
    int64_t c0 = clock_thread_ns();
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        for (size_t i = 0; i < k; i++)
            fin[i] = pcm[off + i] / 32768.0f;
        size_t got = resampler_feed(rs, fin, k, fout);
        if (got)
            sink += fout[got - 1];
    }
    int64_t c1 = clock_thread_ns();
    (void)sink;
    resampler_destroy(rs);
    hark_free(fin);
    hark_free(fout);
    return (c1 - c0) / 1e9;
}

/* Same as run_hark, for input at `rate`, in 20 ms chunks. */
static double run_hark_rate(struct hark_engine *eng, const struct hark_options *o,
                            const int16_t *pcm, size_t n, int rate)
{
    static struct sink sink;
    memset(&sink, 0, sizeof sink);
    size_t chunk = (size_t)rate / 50;
    int64_t c0 = clock_thread_ns();
    struct hark_session *s = open_session(eng, o, &sink);
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        if (hark_session_feed(s, pcm + off, k * sizeof *pcm))
            die("feed: %s", hark_session_errmsg(s));
    }
    if (hark_session_close(s))
        die("close: %s", hark_session_errmsg(s));
    hark_session_destroy(s);
    return (clock_thread_ns() - c0) / 1e9;
}

static void resample_section(const struct dataset *d, int repeats)
{
    static const int rates[] = {8000, 44100, 48000};
    enum { NR = sizeof rates / sizeof rates[0] };
    double audio = (double)d->n / RATE;
    int16_t *conv[NR];
    size_t conv_n[NR];
    for (int i = 0; i < NR; i++)
        conv[i] = convert_rate(d->pcm, d->n, rates[i], &conv_n[i]);
    struct hark_engine *eng = load_engine("bestpath", "1", "1");
    ps_decoder_t *ps = raw_decoder("bestpath");
    struct hark_options *o16 = make_options(1), *o44 = make_options(1);
    char err[256];
    if (hark_options_set(o44, "sample_rate", "44100", err, sizeof err))
        die("%s", err);
    printf("== resample: speex quality %d (stage_resample.c), %s set, %d repeats ==\n",
           STAGE_RESAMPLE_QUALITY, d->name, repeats);
    double raw[MAX_REPEATS], h16[MAX_REPEATS], h44[MAX_REPEATS], r44[MAX_REPEATS];
    double alone[NR][MAX_REPEATS];
    struct run rr;
    run_raw(ps, d, 0, &rr); /* warm-up */
    run_hark_rate(eng, o44, conv[1], conv_n[1], 44100);
    for (int r = 0; r < repeats; r++) {
        h44[r] = run_hark_rate(eng, o44, conv[1], conv_n[1], 44100) / audio;
        h16[r] = run_hark_rate(eng, o16, d->pcm, d->n, RATE) / audio;
        run_raw(ps, d, 0, &rr);
        raw[r] = rr.cpu_s / audio;
        r44[r] = h44[r] / h16[r];
        for (int i = 0; i < NR; i++)
            alone[i][r] = time_resampler(conv[i], conv_n[i], rates[i]) / audio;
    }
    double raw_m = median(raw, repeats);
    printf("%-40s %14s %14s\n", "", "CPU s/audio s", "vs raw engine");
    printf("%-40s %14.5f %14.4f\n", "raw engine, 16 kHz", raw_m, 1.0);
    printf("%-40s %14.5f %14.4f\n", "hark pipeline, 16 kHz input", median(h16, repeats),
           median(h16, repeats) / raw_m);
    printf("%-40s %14.5f %14.4f\n", "hark pipeline, 44.1 kHz input", median(h44, repeats),
           median(h44, repeats) / raw_m);
    for (int i = 0; i < NR; i++) {
        char what[64];
        snprintf(what, sizeof what, "resampler alone, %d -> 16000", rates[i]);
        printf("%-40s %14.5f %14.4f\n", what, median(alone[i], repeats),
               median(alone[i], repeats) / raw_m);
    }
    printf("\nhark 44.1 kHz / hark 16 kHz (per-pair median): %.4f\n\n", median(r44, repeats));
    hark_options_destroy(o16);
    hark_options_destroy(o44);
    ps_free(ps);
    hark_engine_destroy(eng);
    for (int i = 0; i < NR; i++)
        hark_free(conv[i]);
}

/* ------------------------------------------------------------ main */

static void quiet_log(void *user, enum hark_log_level level, const char *sid, const char *msg)
{
    (void)user;
    (void)sid;
    fprintf(stderr, "[%s] %s\n", hark_log_level_name(level), msg);
}

static void print_loadavg(const char *when)
{
    char buf[128] = "?";
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (!fgets(buf, sizeof buf, f))
            snprintf(buf, sizeof buf, "?\n");
        fclose(f);
    }
    printf("load average %s: %s", when, buf);
}

static int has(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; (p = strstr(p, word)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: bench_pipeline [--repeats N] [--sections cpu,rss,resample,latency]\n"
            "                      [--sets continuous,pauses-silence,pauses-noise,dialog,noisy]\n"
            "                      [--raw-partials] [--json FILE] [--data DIR]\n"
            "                      [--clips N] [--warmup 0|1] [--passes none,bestpath,full]\n"
            "                      [--paced] [--chunk-ms N] [--max-hmms N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dir = HARK_TESTDATA_DIR, *sections = "cpu,rss,resample,latency", *json = NULL;
    const char *set_names = "continuous,pauses-silence,pauses-noise";
    const char *passes = "none,bestpath,full";
    int repeats = 5, raw_partials = 0, max_clips = MAX_CLIPS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--raw-partials") == 0) {
            raw_partials = 1;
            continue;
        }
        if (strcmp(a, "--paced") == 0) {
            paced = 1;
            continue;
        }
        if (!v)
            usage();
        if (strcmp(a, "--chunk-ms") == 0 && v) {
            int ms = atoi(v);
            if (ms < 10 || ms > 1000 || ms % 10)
                die("%s", "--chunk-ms: 10..1000, a multiple of 10");
            feed_chunk = (size_t)ms * RATE / 1000;
            i++;
            continue;
        }
        if (strcmp(a, "--repeats") == 0)
            repeats = atoi(v);
        else if (strcmp(a, "--sections") == 0)
            sections = v;
        else if (strcmp(a, "--sets") == 0)
            set_names = v;
        else if (strcmp(a, "--json") == 0)
            json = v;
        else if (strcmp(a, "--data") == 0)
            dir = v;
        else if (strcmp(a, "--passes") == 0)
            passes = v;
        else if (strcmp(a, "--max-hmms") == 0)
            max_hmms = v;
        else if (strcmp(a, "--clips") == 0)
            max_clips = atoi(v);
        else if (strcmp(a, "--warmup") == 0)
            warmup = atoi(v) != 0;
        else
            usage();
        i++;
    }
    if (repeats < 1 || repeats > MAX_REPEATS)
        usage();
    hark_log_set(quiet_log, NULL, HARK_LOG_WARN);

    static struct clip clips[MAX_CLIPS];
    int n_clips = load_clips(dir, clips);
    for (int i = max_clips > 0 ? max_clips : 0; i < n_clips; i++)
        hark_free(clips[i].pcm);
    if (max_clips > 0 && n_clips > max_clips)
        n_clips = max_clips;
    if (n_clips == 0)
        die("no 16 kHz mono s16 clips with a transcription in %s", dir);
    double speech_s = 0;
    for (int i = 0; i < n_clips; i++)
        speech_s += (double)clips[i].n / RATE;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bench_pipeline: hark %s, %d clips (%.2f s of speech) from %s, %ld cores\n",
           hark_version(), n_clips, speech_s, dir, cores);
    print_loadavg("at start");
    printf("\n");

    if (has(sections, "rss"))
        rss_section(clips);
    if (has(sections, "cpu")) {
        static struct dataset sets[5];
        static struct cpu_result res[5];
        int n_sets = 0;
        if (has(set_names, "continuous"))
            build_dataset(&sets[n_sets++], "continuous", clips, n_clips, 0);
        if (has(set_names, "pauses-silence"))
            build_dataset(&sets[n_sets++], "pauses-silence", clips, n_clips, 1);
        if (has(set_names, "pauses-noise"))
            build_dataset(&sets[n_sets++], "pauses-noise", clips, n_clips, 2);
        if (has(set_names, "dialog"))
            build_dataset(&sets[n_sets++], "dialog", clips, n_clips, 3);
        if (has(set_names, "noisy"))
            build_dataset(&sets[n_sets++], "noisy", clips, n_clips, 4);
        if (!n_sets)
            usage();
        cpu_section(sets, n_sets, repeats, raw_partials, res);
        if (json)
            write_json(json, res, n_sets, repeats);
        for (int i = 0; i < n_sets; i++)
            hark_free(sets[i].pcm);
    }
    if (has(sections, "resample")) {
        static struct dataset cont;
        build_dataset(&cont, "continuous", clips, n_clips, 0);
        resample_section(&cont, repeats);
        hark_free(cont.pcm);
    }
    if (has(sections, "latency"))
        latency_section(clips, n_clips, repeats, passes);
    print_loadavg("at end");
    for (int i = 0; i < n_clips; i++)
        hark_free(clips[i].pcm);
    return 0;
}
