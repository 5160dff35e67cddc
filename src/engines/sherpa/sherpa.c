/*
 * The sherpa-onnx engine: a streaming model the user brings (transducer,
 * paraformer or zipformer2-ctc from k2-fsa's releases), run by sherpa-onnx's
 * C API, which hark loads at run time (sh_lib.h), so the build and the other
 * engines never need it.
 *
 * Model: the files (sh_files.h), checked one by one so a missing one is
 * named; then the recognizer is built once in a forked child (sh_lib_probe),
 * because onnxruntime aborts the process on a corrupt .onnx file; then for
 * real, once, shared read-only by every session. Loading costs what the
 * model costs (k2-fsa's English zipformer is ~70 MB int8); hark has no
 * weights for it on its CI, so only loading, validation and the error paths
 * are tested there (docs/engines.md says so).
 *
 * Streams: a sherpa-onnx stream is cheap (decoder state only), so one is
 * made per utterance at utt_start and freed at utt_end/release; no pool.
 * One recognizer decodes the streams of many sessions on their own worker
 * threads at once, as sherpa-onnx's own websocket server does with its
 * thread pool. utt_feed decodes as soon as a chunk is ready, so partials
 * cost nothing extra; utt_end pads the utterance with 0.5 s of silence (the
 * model's right context, as k2-fsa's examples do) before input_finished.
 *
 * Results: sherpa-onnx's text (trimmed; English models give upper case),
 * words rebuilt from the tokens and their times (sh_words.h). A model
 * without token times gives text only.
 * sherpa-onnx reports no confidences: they are 1.
 *
 * Threads: the ops follow engine.h (model shared and thread-safe, a stream
 * used by one thread at a time).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/engine.h"
#include "engines/sherpa/sh_files.h"
#include "engines/sherpa/sh_lib.h"
#include "engines/sherpa/sh_words.h"

#define TAIL_PAD_SAMPLES (ENGINE_RATE / 2) /* 0.5 s */

struct engine_model {
    const struct sh_lib *lib;
    struct sh_files files;
    int threads;
    const SherpaOnnxOnlineRecognizer *rec;
    atomic_uint streams_total, streams_in_use;
    atomic_llong decode_ns, audio_samples;
};

struct engine_stream {
    struct engine_model *m;
    const SherpaOnnxOnlineStream *st;
    const SherpaOnnxOnlineRecognizerResult *res; /* the last result handed out */
    char *text;                                  /* of res, trimmed */
    struct sh_words w;                           /* of res */
};

static const char *const setting_names = "lib, model_dir, kind, files, threads";

static int64_t thread_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void fill_config(SherpaOnnxOnlineRecognizerConfig *c, const struct engine_model *m)
{
    memset(c, 0, sizeof *c);
    c->feat_config.sample_rate = ENGINE_RATE;
    c->feat_config.feature_dim = 80;
    const struct sh_files *f = &m->files;
    switch (f->kind) {
    case SH_KIND_TRANSDUCER:
        c->model_config.transducer.encoder = f->encoder;
        c->model_config.transducer.decoder = f->decoder;
        c->model_config.transducer.joiner = f->joiner;
        break;
    case SH_KIND_PARAFORMER:
        c->model_config.paraformer.encoder = f->encoder;
        c->model_config.paraformer.decoder = f->decoder;
        break;
    default:
        c->model_config.zipformer2_ctc.model = f->ctc;
        break;
    }
    c->model_config.tokens = f->tokens;
    c->model_config.num_threads = m->threads;
    c->model_config.provider = "cpu";
    c->decoding_method = "greedy_search";
    c->max_active_paths = 4;
    /* hark's VAD stage cuts utterances; sherpa-onnx's endpointing stays off. */
    c->enable_endpoint = 0;
}

static int try_recognizer(const struct sh_lib *lib, const void *arg)
{
    SherpaOnnxOnlineRecognizerConfig c;
    fill_config(&c, arg);
    const SherpaOnnxOnlineRecognizer *r = lib->rec_create(&c);
    if (!r)
        return -1;
    /* One stream through the model, so a file onnxruntime loads but cannot
     * run fails here too. */
    const SherpaOnnxOnlineStream *s = lib->stream_create(r);
    if (!s) {
        lib->rec_destroy(r);
        return -1;
    }
    static const float zero[ENGINE_RATE] = {0};
    lib->accept(s, ENGINE_RATE, zero, ENGINE_RATE);
    lib->input_finished(s);
    while (lib->ready(r, s))
        lib->decode(r, s);
    const SherpaOnnxOnlineRecognizerResult *res = lib->result(r, s);
    if (res)
        lib->result_free(res);
    lib->stream_destroy(s);
    lib->rec_destroy(r);
    return 0;
}

static int model_load(struct engine_model **out, const char *const *settings, char *errbuf,
                      size_t errbuf_size)
{
    *out = NULL;
    const char *lib_path = "", *dir = "", *files = "";
    int kind = SH_KIND_AUTO, threads = 1;
    for (size_t i = 0; settings && settings[i]; i += 2) {
        const char *name = settings[i], *v = settings[i + 1];
        if (!v)
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "sherpa setting '%s' has no value", name);
        if (!strcmp(name, "lib")) {
            lib_path = v;
        } else if (!strcmp(name, "model_dir")) {
            dir = v;
        } else if (!strcmp(name, "files")) {
            files = v;
        } else if (!strcmp(name, "kind")) {
            if ((kind = sh_kind_parse(v)) < 0)
                return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                               "sherpa kind '%s' is invalid; expected auto, transducer, "
                               "paraformer or zipformer2-ctc",
                               v);
        } else if (!strcmp(name, "threads")) {
            char *end;
            errno = 0;
            long t = strtol(v, &end, 10);
            if (errno || end == v || *end || t < 1 || t > 64)
                return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                               "sherpa threads '%s' is invalid; expected 1..64", v);
            threads = (int)t;
        } else {
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "unknown sherpa setting '%s'; accepted: %s", name, setting_names);
        }
    }
    struct engine_model *m = hark_calloc(1, sizeof *m);
    if (!m)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    m->threads = threads;
    /* Files first: a missing file is named without the library installed. */
    int rc = sh_files_find(&m->files, dir, (enum sh_kind)kind, files, errbuf, errbuf_size);
    if (!rc)
        rc = sh_lib_open(&m->lib, lib_path, errbuf, errbuf_size);
    if (!rc) {
        char what[256];
        snprintf(what, sizeof what, "sherpa %s model %s", sh_kind_name(m->files.kind),
                 *dir ? dir : "(files)");
        rc = sh_lib_probe(m->lib, try_recognizer, m, what, errbuf, errbuf_size);
    }
    if (!rc) {
        SherpaOnnxOnlineRecognizerConfig c;
        fill_config(&c, m);
        m->rec = m->lib->rec_create(&c);
        if (!m->rec)
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                         "sherpa model %s: sherpa-onnx refused it on the second load", dir);
    }
    if (rc) {
        hark_free(m);
        return rc;
    }
    LOG_INFO(NULL, "sherpa: %s model from %s, %d thread(s) per decode", sh_kind_name(m->files.kind),
             *dir ? dir : "(files)", threads);
    *out = m;
    return 0;
}

static void model_free(struct engine_model *m)
{
    if (!m)
        return;
    if (m->rec)
        m->lib->rec_destroy(m->rec);
    hark_free(m);
}

static void drop_result(struct engine_stream *s)
{
    if (s->res)
        s->m->lib->result_free(s->res);
    s->res = NULL;
    hark_free(s->text);
    s->text = NULL;
    sh_words_clear(&s->w);
}

static int stream_acquire(struct engine_model *m, const struct engine_stream_cfg *cfg, int wait_ms,
                          struct engine_stream **out, char *errbuf, size_t errbuf_size)
{
    (void)cfg;
    (void)wait_ms;
    struct engine_stream *s = hark_calloc(1, sizeof *s);
    if (!s)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    s->m = m;
    atomic_fetch_add(&m->streams_total, 1);
    atomic_fetch_add(&m->streams_in_use, 1);
    *out = s;
    return 0;
}

static void stream_release(struct engine_stream *s)
{
    if (!s)
        return;
    drop_result(s);
    if (s->st)
        s->m->lib->stream_destroy(s->st);
    atomic_fetch_sub(&s->m->streams_in_use, 1);
    hark_free(s);
}

static int utt_start(struct engine_stream *s)
{
    const struct sh_lib *lib = s->m->lib;
    if (s->st)
        lib->stream_destroy(s->st);
    s->st = lib->stream_create(s->m->rec);
    return s->st ? 0 : HARK_E_ENGINE;
}

static void decode_ready(struct engine_stream *s)
{
    const struct sh_lib *lib = s->m->lib;
    while (lib->ready(s->m->rec, s->st))
        lib->decode(s->m->rec, s->st);
}

static int utt_feed(struct engine_stream *s, const float *samples, size_t n)
{
    if (!s->st)
        return HARK_E_STATE;
    int64_t t0 = thread_ns();
    while (n) {
        int32_t k = n > (size_t)ENGINE_RATE ? ENGINE_RATE : (int32_t)n;
        s->m->lib->accept(s->st, ENGINE_RATE, samples, k);
        samples += k;
        n -= (size_t)k;
        atomic_fetch_add(&s->m->audio_samples, k);
    }
    decode_ready(s);
    atomic_fetch_add(&s->m->decode_ns, thread_ns() - t0);
    return 0;
}

static int take_result(struct engine_stream *s, struct engine_result *out, int with_words)
{
    const struct sh_lib *lib = s->m->lib;
    drop_result(s);
    s->res = lib->result(s->m->rec, s->st);
    if (!s->res)
        return HARK_E_ENGINE;
    const char *t = s->res->text ? s->res->text : "";
    while (*t == ' ')
        t++;
    s->text = hark_strdup(t);
    if (!s->text)
        return HARK_E_NOMEM;
    for (size_t n = strlen(s->text); n && s->text[n - 1] == ' ';)
        s->text[--n] = '\0';
    memset(out, 0, sizeof *out);
    out->text = s->text;
    out->confidence = 1.0f;
    int count = s->res->count;
    if (!with_words || !s->res->timestamps || count <= 0 || !s->res->tokens_arr)
        return 0;
    int rc = sh_words_build(&s->w, (const char *const *)s->res->tokens_arr, s->res->timestamps,
                            (size_t)count);
    if (rc)
        return rc;
    out->words = s->w.words;
    out->n_words = s->w.n;
    return 0;
}

static int utt_partial(struct engine_stream *s, struct engine_result *out)
{
    if (!s->st)
        return HARK_E_STATE;
    return take_result(s, out, 0);
}

static int utt_end(struct engine_stream *s, struct engine_result *out)
{
    if (!s->st)
        return HARK_E_STATE;
    int64_t t0 = thread_ns();
    static const float pad[TAIL_PAD_SAMPLES] = {0};
    s->m->lib->accept(s->st, ENGINE_RATE, pad, TAIL_PAD_SAMPLES);
    s->m->lib->input_finished(s->st);
    decode_ready(s);
    int rc = take_result(s, out, 1);
    atomic_fetch_add(&s->m->decode_ns, thread_ns() - t0);
    return rc;
}

static void stats(struct engine_model *m, struct hark_engine_stats *out)
{
    out->streams_total = atomic_load(&m->streams_total);
    out->streams_in_use = atomic_load(&m->streams_in_use);
    out->decode_seconds = (double)atomic_load(&m->decode_ns) / 1e9;
    out->audio_seconds = (double)atomic_load(&m->audio_samples) / ENGINE_RATE;
}

const struct engine_ops engine_sherpa = {
    .abi = ENGINE_ABI,
    .name = "sherpa",
    .description = "a streaming sherpa-onnx model you bring (--sherpa-model; library loaded at "
                   "run time, --sherpa-lib)",
    /* The model decides which language it hears; hark cannot know. */
    .languages = "en,en-US,en-GB,zh,zh-CN,de,fr,es,ru,ja,ko,ar,fa,vi,th,it,pt,nl,pl,uk,tr",
    .models = "",
    .model_load = model_load,
    .model_free = model_free,
    .stream_acquire = stream_acquire,
    .stream_release = stream_release,
    .utt_start = utt_start,
    .utt_feed = utt_feed,
    .utt_partial = utt_partial,
    .utt_end = utt_end,
    .stats = stats,
};
