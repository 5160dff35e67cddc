/*
 * Benchmark: which final pass should the pocketsphinx engine run?
 *
 * For second_pass = none, bestpath, full it decodes the five librivox clips
 * of pocketsphinx-testdata through the engine ops (acquire, utt_start, 20 ms
 * feeds with a partial every 200 ms, utt_end) and reports word error rate
 * against the reference transcription, the time utt_end takes (the delay
 * between the end of speech reaching the engine and the final) as thread CPU
 * and wall time, that delay per second of audio, decode CPU time per second
 * of audio, and the mean word confidence.
 *
 * A benchmark, never a test. bench/CMakeLists.txt builds it as
 * bench_ps_second_pass; by hand, from the repo root:
 *
 *   gcc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Isrc \
 *       $(pkg-config --cflags pocketsphinx) bench/ps_second_pass.c \
 *       src/engines/pocketsphinx/[a-z]*.c src/engines/pool.c src/base/[a-z]*.c \
 *       -o /tmp/ps_second_pass \
 *       $(pkg-config --libs pocketsphinx) -lm -lpthread
 *   /tmp/ps_second_pass [testdata_dir] [repeats]
 *
 * Two runs on the shared 2-core dev box (Debian 12, 0.8+5prealpha+1-15),
 * repeats=3; "end cpu ms" is utt_end's thread CPU time, i.e. its latency on
 * an idle core (wall ms was inflated by other jobs). "cold": each clip a new
 * session, whose cepstral mean is estimated from its own first 500 ms (WER
 * is deterministic: same in every run); "warm": all clips as one session,
 * each starting from the mean the previous one left:
 *
 *   pass      WER cold WER warm  end cpu ms  cpu ms max  wall ms  cpu ms/audio s  decode RTF
 *   none         28.2%    26.8%   43.2/55.7   72.9/103.6  43/56         9.5/12.1   0.24/0.33
 *   bestpath     26.8%    26.8%   36.1/52.8   60.6/100.0  36/53         7.8/11.3   0.21/0.31
 *   full         32.4%    29.6% 267.0/315.0 366.6/444.4 267/316        55.3/65.0   0.31/0.41
 *
 * bestpath was chosen as the engine's default (see src/engines/pocketsphinx/pocketsphinx.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "engines/engine.h"
#include "hark/hark.h"

extern const struct engine_ops engine_pocketsphinx;

#define MAX_CLIPS 16
#define MAX_WORDS 256

struct clip {
    char id[128];
    char ref[1024];
    float *pcm;
    size_t n;
};

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(n > 0 ? (size_t)n : 1);
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return d;
}

/* 16 kHz mono s16le WAV -> float; 0 on success. */
static int load_wav(const char *path, float **pcm, size_t *n)
{
    size_t len;
    unsigned char *d = read_file(path, &len);
    if (!d || len < 12 || memcmp(d, "RIFF", 4) || memcmp(d + 8, "WAVE", 4)) {
        free(d);
        return -1;
    }
    for (size_t off = 12; off + 8 <= len;) {
        uint32_t sz;
        memcpy(&sz, d + off + 4, 4);
        if (memcmp(d + off, "data", 4) == 0) {
            size_t bytes = sz <= len - off - 8 ? sz : len - off - 8;
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

static int split(char *s, char *w[], int max)
{
    int n = 0;
    for (char *t = strtok(s, " \t\n"); t && n < max; t = strtok(NULL, " \t\n"))
        w[n++] = t;
    return n;
}

static int word_errors(const char *ref, const char *hyp, int *n_ref)
{
    char a[1024], b[1024];
    char *r[MAX_WORDS], *h[MAX_WORDS];
    snprintf(a, sizeof a, "%s", ref);
    snprintf(b, sizeof b, "%s", hyp);
    int nr = split(a, r, MAX_WORDS), nh = split(b, h, MAX_WORDS);
    static int d[MAX_WORDS + 1][MAX_WORDS + 1];
    for (int i = 0; i <= nr; i++)
        d[i][0] = i;
    for (int j = 0; j <= nh; j++)
        d[0][j] = j;
    for (int i = 1; i <= nr; i++)
        for (int j = 1; j <= nh; j++) {
            int c = d[i - 1][j - 1] + (strcmp(r[i - 1], h[j - 1]) != 0);
            if (d[i - 1][j] + 1 < c)
                c = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < c)
                c = d[i][j - 1] + 1;
            d[i][j] = c;
        }
    *n_ref = nr;
    return d[nr][nh];
}

/* "<s> words </s> (fileid)" lines. */
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
        char *w[MAX_WORDS], out[1024] = "";
        int k = split(line, w, MAX_WORDS);
        for (int i = 0; i < k; i++) {
            if (strcmp(w[i], "<s>") == 0 || strcmp(w[i], "</s>") == 0)
                continue;
            if (*out)
                strcat(out, " ");
            strcat(out, w[i]);
        }
        snprintf(clips[n].ref, sizeof clips[n].ref, "%s", out);
        snprintf(path, sizeof path, "%s/%s.wav", dir, clips[n].id);
        if (load_wav(path, &clips[n].pcm, &clips[n].n) == 0)
            n++;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "/usr/share/pocketsphinx/test/data/librivox";
    int repeats = argc > 2 ? atoi(argv[2]) : 3;
    static struct clip clips[MAX_CLIPS];
    int n_clips = load_clips(dir, clips);
    if (n_clips == 0) {
        fprintf(stderr, "no clips in %s\n", dir);
        return 1;
    }
    const struct engine_ops *ops = &engine_pocketsphinx;
    static const char *const modes[] = {"none", "bestpath", "full"};
    printf("%d clips, %d repeats, 20 ms feeds, partial every 200 ms\n\n", n_clips, repeats);
    printf("%-9s %8s %8s %11s %11s %8s %15s %11s %9s\n", "pass", "WER cold", "WER warm",
           "end cpu ms", "cpu ms max", "wall ms", "cpu ms/audio s", "decode RTF", "mean conf");
    for (int mi = 0; mi < 3; mi++) {
        const char *settings[] = {"second_pass", modes[mi], NULL};
        char err[512];
        struct engine_model *m;
        if (ops->model_load(&m, settings, err, sizeof err)) {
            fprintf(stderr, "load: %s\n", err);
            return 1;
        }
        int errors = 0, cold_errors = 0, ref_words = 0, n_words = 0;
        double end_ms_sum = 0, end_cpu_sum = 0, end_cpu_max = 0, end_per_s_sum = 0;
        double cpu_s = 0, audio_s = 0;
        double conf_sum = 0;
        int runs = 0;
        /* r = -1 is the cold pass, counted for WER only: the first
         * utterance after ps_init also pays for page faults on the
         * memory-mapped model. */
        for (int r = -1; r < repeats; r++)
            for (int c = 0; c < n_clips; c++) {
                /* Pass -1: every clip a new session ("cold": its cepstral
                 * mean estimated from its own first 500 ms). Then all clips
                 * as one session ("warm": each utterance starts from the mean
                 * the previous one left). */
                const char *sid = r < 0 ? clips[c].id : "warm";
                struct engine_stream_cfg cfg = {.language = "en-US", .session_id = sid};
                struct engine_stream *s;
                struct engine_result res;
                if (ops->stream_acquire(m, &cfg, -1, &s, err, sizeof err)) {
                    fprintf(stderr, "acquire: %s\n", err);
                    return 1;
                }
                int64_t cpu0 = clock_thread_ns();
                ops->utt_start(s);
                size_t chunk = 320;
                for (size_t off = 0, k = 0; off < clips[c].n; off += chunk, k++) {
                    size_t len = clips[c].n - off < chunk ? clips[c].n - off : chunk;
                    ops->utt_feed(s, clips[c].pcm + off, len);
                    if (k % 10 == 9)
                        ops->utt_partial(s, &res);
                }
                int64_t t0 = clock_mono_ns(), c0 = clock_thread_ns();
                ops->utt_end(s, &res);
                double end_ms = (clock_mono_ns() - t0) / 1e6;
                double end_cpu_ms = (clock_thread_ns() - c0) / 1e6;
                if (r < 0) {
                    int nr;
                    cold_errors += word_errors(clips[c].ref, res.text, &nr);
                    ops->stream_release(s);
                    continue;
                }
                if (getenv("VERBOSE"))
                    printf("    %s run %d: end %.1f ms wall, %.1f ms cpu\n",
                           clips[c].id + strlen(clips[c].id) - 4, r, end_ms, end_cpu_ms);
                cpu_s += (clock_thread_ns() - cpu0) / 1e9;
                double dur = clips[c].n / (double)ENGINE_RATE;
                audio_s += dur;
                end_ms_sum += end_ms;
                end_cpu_sum += end_cpu_ms;
                end_per_s_sum += end_cpu_ms / dur;
                if (end_cpu_ms > end_cpu_max)
                    end_cpu_max = end_cpu_ms;
                for (size_t i = 0; i < res.n_words; i++)
                    conf_sum += res.words[i].confidence;
                n_words += (int)res.n_words;
                if (r == 0) {
                    int nr;
                    errors += word_errors(clips[c].ref, res.text, &nr);
                    ref_words += nr;
                    printf("  [%s] %s: %s\n", modes[mi], clips[c].id + strlen(clips[c].id) - 4,
                           res.text);
                }
                runs++;
                ops->stream_release(s);
            }
        printf("%-9s %7.1f%% %7.1f%% %11.1f %11.1f %8.1f %15.1f %11.3f %9.3f\n", modes[mi],
               100.0 * cold_errors / ref_words, 100.0 * errors / ref_words, end_cpu_sum / runs,
               end_cpu_max, end_ms_sum / runs, end_per_s_sum / runs, cpu_s / audio_s,
               n_words ? conf_sum / n_words : 0.0);
        ops->model_free(m);
    }
    for (int c = 0; c < n_clips; c++)
        free(clips[c].pcm);
    return 0;
}
