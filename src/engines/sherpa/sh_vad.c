/* Silero VAD through sherpa-onnx (see sh_vad.h). */
#include "engines/sherpa/sh_vad.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/sherpa/sh_lib.h"

#define WINDOW 512 /* Silero's window at 16 kHz (v4 and v5) */
/* sherpa-onnx switches to a stricter threshold once its segment buffer holds
 * more than this; hark flushes that buffer every frame, so it never does. */
#define MAX_SPEECH_S 30.0f
#define BUFFER_S 2.0f /* the detector's sample buffer; flushed every frame */

static const char *const default_models[] = {
    "./" SH_VAD_NPM_FILE,
    "/usr/local/lib/" SH_VAD_NPM_FILE,
    "/usr/lib/" SH_VAD_NPM_FILE,
};

struct sh_vad_model {
    const struct sh_lib *lib;
    char path[4096];
    SherpaOnnxVadModelConfig cfg; /* cfg.silero_vad.model points at path */
};

struct sh_vad {
    const struct sh_vad_model *m;
    const SherpaOnnxVoiceActivityDetector *det;
    float buf[WINDOW]; /* audio not yet fed: fed one window shift at a time */
    int n_buf;
    int speech; /* the verdict after the last feed */
};

static int try_create(const struct sh_lib *lib, const void *arg)
{
    const SherpaOnnxVadModelConfig *cfg = arg;
    const SherpaOnnxVoiceActivityDetector *d = lib->vad_create(cfg, BUFFER_S);
    if (!d)
        return -1;
    /* One window through the model: a file onnxruntime loads but cannot
     * run (wrong inputs) fails here, in the child, too. */
    float zero[WINDOW] = {0};
    lib->vad_accept(d, zero, WINDOW);
    lib->vad_destroy(d);
    return 0;
}

int sh_vad_model_load(struct sh_vad_model **out, const char *const *settings, char *errbuf,
                      size_t errbuf_size)
{
    *out = NULL;
    const char *lib_path = "", *model = "";
    int threshold = 50;
    for (size_t i = 0; settings && settings[i]; i += 2) {
        const char *name = settings[i], *v = settings[i + 1];
        if (!v)
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "silero vad setting '%s' has no value", name);
        if (!strcmp(name, "lib")) {
            lib_path = v;
        } else if (!strcmp(name, "model")) {
            model = v;
        } else if (!strcmp(name, "threshold")) {
            char *end;
            errno = 0;
            long t = strtol(v, &end, 10);
            if (errno || end == v || *end || t < 1 || t > 99)
                return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                               "silero vad threshold '%s' is invalid; expected a percentage "
                               "1..99",
                               v);
            threshold = (int)t;
        } else {
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "unknown silero vad setting '%s'; accepted: lib, model, threshold",
                           name);
        }
    }
    struct sh_vad_model *m = hark_calloc(1, sizeof *m);
    if (!m)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    int rc = 0;
    if (*model) {
        snprintf(m->path, sizeof m->path, "%s", model);
        if (access(m->path, R_OK) != 0)
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                         "silero vad model %s: %s; get silero_vad.onnx with `npm install %s` "
                         "(%s)",
                         m->path, strerror(errno), SH_VAD_NPM, SH_VAD_NPM_FILE);
    } else {
        size_t i = 0;
        for (; i < sizeof default_models / sizeof default_models[0]; i++)
            if (access(default_models[i], R_OK) == 0)
                break;
        if (i == sizeof default_models / sizeof default_models[0])
            rc = err_set(errbuf, errbuf_size, HARK_E_MODEL,
                         "silero vad model not found (searched ./%s, /usr/local/lib/%s, "
                         "/usr/lib/%s); install it with `npm install %s` or pass "
                         "--silero-model PATH",
                         SH_VAD_NPM_FILE, SH_VAD_NPM_FILE, SH_VAD_NPM_FILE, SH_VAD_NPM);
        else
            snprintf(m->path, sizeof m->path, "%s", default_models[i]);
    }
    if (!rc)
        rc = sh_lib_open(&m->lib, lib_path, errbuf, errbuf_size);
    if (!rc) {
        SherpaOnnxVadModelConfig *c = &m->cfg;
        c->silero_vad.model = m->path;
        c->silero_vad.threshold = (float)threshold / 100.0f;
        /* Frame decisions, not segments: the stage has its own onset and
         * endpoint rules, so no minimum durations here. */
        c->silero_vad.min_silence_duration = 0.0f;
        c->silero_vad.min_speech_duration = 0.0f;
        c->silero_vad.window_size = WINDOW;
        c->silero_vad.max_speech_duration = MAX_SPEECH_S;
        c->sample_rate = 16000;
        c->num_threads = 1;
        c->provider = "cpu";
        char what[4200];
        snprintf(what, sizeof what, "silero vad model %s", m->path);
        rc = sh_lib_probe(m->lib, try_create, c, what, errbuf, errbuf_size);
    }
    if (rc) {
        hark_free(m);
        return rc;
    }
    LOG_INFO(NULL, "silero vad: %s, threshold %.2f", m->path, m->cfg.silero_vad.threshold);
    *out = m;
    return 0;
}

void sh_vad_model_free(struct sh_vad_model *m)
{
    hark_free(m);
}

const char *sh_vad_model_path(const struct sh_vad_model *m)
{
    return m->path;
}

int sh_vad_create(struct sh_vad **out, const struct sh_vad_model *m)
{
    *out = NULL;
    struct sh_vad *v = hark_calloc(1, sizeof *v);
    if (!v)
        return HARK_E_NOMEM;
    v->m = m;
    v->det = m->lib->vad_create(&m->cfg, BUFFER_S);
    if (!v->det) {
        hark_free(v);
        return HARK_E_MODEL;
    }
    *out = v;
    return 0;
}

void sh_vad_destroy(struct sh_vad *v)
{
    if (!v)
        return;
    v->m->lib->vad_destroy(v->det);
    hark_free(v);
}

void sh_vad_reset(struct sh_vad *v)
{
    if (!v)
        return;
    v->m->lib->vad_reset(v->det);
    v->n_buf = 0;
    v->speech = 0;
}

/*
 * Audio goes to the detector one window shift (512 samples) at a time, so
 * that every feed runs the model on exactly one window (v5's first feed
 * after a reset runs none: its window is 576 samples, 64 of them context)
 * and the detector's state after a feed is that window's verdict. Feeding
 * 20 ms frames directly would leave some feeds with no window, and after
 * the flush below the detector would then read "no speech" without having
 * looked. Frames in between keep the last verdict: it lags by < 32 ms.
 */
int sh_vad_frame(struct sh_vad *v, const float *frame)
{
    if (!v || !frame)
        return HARK_E_INVAL;
    const struct sh_lib *lib = v->m->lib;
    for (int i = 0; i < SH_VAD_FRAME; i++) {
        v->buf[v->n_buf++] = isfinite(frame[i]) ? frame[i] : 0.0f;
        if (v->n_buf < WINDOW)
            continue;
        lib->vad_accept(v->det, v->buf, WINDOW);
        v->n_buf = 0;
        v->speech = lib->vad_detected(v->det) != 0;
        if (v->speech)
            lib->vad_flush(v->det); /* close the open segment: see sh_vad.h */
        if (!lib->vad_empty(v->det))
            lib->vad_clear(v->det);
    }
    return v->speech;
}
