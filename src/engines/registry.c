/* The engines compiled into hark, found by name, and the public
 * hark_engine_* calls that wrap a loaded model. */
#include <pthread.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/engine.h"
#include "engines/sherpa/sh_vad.h"

extern const struct engine_ops engine_pocketsphinx;
extern const struct engine_ops engine_openai;
extern const struct engine_ops engine_sherpa;
extern const struct engine_ops engine_deepgram;

static const struct engine_ops *const engines[] = {
    &engine_pocketsphinx, &engine_openai, &engine_sherpa, &engine_deepgram, NULL,
};

struct engine_breaker {
    pthread_mutex_t mu;
    int cooldown_ms;    /* base */
    int open_ms;        /* current: doubles while probes fail */
    int64_t open_until; /* monotonic ns; 0 = closed */
    int probing;        /* a half-open probe session is out */
};

const struct engine_ops *engine_at(int index)
{
    if (index < 0 || index >= (int)(sizeof engines / sizeof engines[0]) - 1)
        return NULL;
    return engines[index];
}

const struct engine_ops *engine_find(const char *name)
{
    for (int i = 0; engines[i]; i++)
        if (strcmp(engines[i]->name, name) == 0)
            return engines[i];
    return NULL;
}

const char *hark_engine_name(int index)
{
    const struct engine_ops *ops = engine_at(index);
    return ops ? ops->name : NULL;
}

const char *hark_engine_description(int index)
{
    const struct engine_ops *ops = engine_at(index);
    return ops ? ops->description : NULL;
}

int hark_engine_load(struct hark_engine **out, const char *name, const char *const *settings,
                     char *errbuf, size_t errbuf_size)
{
    *out = NULL;
    if (!name || !*name)
        name = "pocketsphinx";
    const struct engine_ops *ops = engine_find(name);
    if (!ops) {
        char list[256] = "";
        for (int i = 0; engines[i]; i++) {
            if (i)
                strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, engines[i]->name, sizeof list - strlen(list) - 1);
        }
        return err_set(errbuf, errbuf_size, HARK_E_NO_ENGINE, "unknown engine '%s'; available: %s",
                       name, list);
    }
    if (ops->abi != ENGINE_ABI)
        return err_set(errbuf, errbuf_size, HARK_E_ENGINE, "engine '%s' has ABI %u, hark needs %u",
                       name, ops->abi, ENGINE_ABI);
    struct hark_engine *eng = hark_calloc(1, sizeof *eng);
    if (!eng)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    eng->ops = ops;
    int rc = ops->model_load(&eng->model, settings, errbuf, errbuf_size);
    if (rc) {
        hark_free(eng);
        return rc;
    }
    LOG_INFO(NULL, "engine %s loaded", name);
    *out = eng;
    return 0;
}

int hark_engine_set_fallback(struct hark_engine *eng, struct hark_engine *fallback, int cooldown_ms,
                             void (*on_failover)(void *user, const char *reason), void *user)
{
    if (!eng || !fallback || fallback == eng || fallback->fallback || cooldown_ms < 0 ||
        (fallback->ops->flags & ENGINE_ASYNC) || eng->breaker)
        return HARK_E_INVAL;
    struct engine_breaker *b = hark_calloc(1, sizeof *b);
    if (!b)
        return HARK_E_NOMEM;
    pthread_mutex_init(&b->mu, NULL);
    b->cooldown_ms = b->open_ms = cooldown_ms;
    eng->breaker = b;
    eng->fallback = fallback;
    eng->on_failover = on_failover;
    eng->on_failover_user = user;
    return 0;
}

int engine_breaker_admit(struct hark_engine *eng, int *probe)
{
    struct engine_breaker *b = eng->breaker;
    *probe = 0;
    if (!b)
        return 1;
    pthread_mutex_lock(&b->mu);
    int ok = 1;
    if (b->open_until) {
        /* Open: nobody until the cooldown ends; then one probe at a time. */
        if (clock_mono_ns() < b->open_until || b->probing)
            ok = 0;
        else
            *probe = b->probing = 1;
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void engine_breaker_result(struct hark_engine *eng, int ok, int probe)
{
    struct engine_breaker *b = eng->breaker;
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    if (ok < 0) {
        if (probe)
            b->probing = 0; /* no verdict: the next session probes */
    } else if (ok) {
        if (probe || !b->probing) {
            if (b->open_until)
                LOG_INFO(NULL, "engine %s: provider answers again; circuit closed", eng->ops->name);
            b->open_until = 0;
            b->open_ms = b->cooldown_ms;
            b->probing = 0;
        }
    } else {
        /* A failed probe doubles the wait; a failure while closed opens it
         * for the base cooldown. */
        if (probe && b->open_until)
            b->open_ms =
                b->open_ms * 2 > b->cooldown_ms * 16 ? b->cooldown_ms * 16 : b->open_ms * 2;
        else if (!b->open_until)
            b->open_ms = b->cooldown_ms;
        if (probe)
            b->probing = 0;
        b->open_until = clock_mono_ns() + (int64_t)b->open_ms * 1000000;
        LOG_WARN(NULL, "engine %s: circuit open for %d ms; new sessions use %s", eng->ops->name,
                 b->open_ms, eng->fallback ? eng->fallback->ops->name : "nothing");
    }
    pthread_mutex_unlock(&b->mu);
}

int hark_engine_set_vad(struct hark_engine *eng, const char *name, const char *const *settings,
                        char *errbuf, size_t errbuf_size)
{
    if (!eng || !name)
        return err_set(errbuf, errbuf_size, HARK_E_INVAL, "no engine or VAD name given");
    struct sh_vad_model *m = NULL;
    if (!strcmp(name, "silero")) {
        int rc = sh_vad_model_load(&m, settings, errbuf, errbuf_size);
        if (rc)
            return rc;
    } else if (strcmp(name, "webrtc") != 0) {
        return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                       "unknown VAD '%s'; available: webrtc, silero", name);
    }
    sh_vad_model_free(eng->silero);
    eng->silero = m;
    return 0;
}

int hark_engine_circuit(const struct hark_engine *eng, int64_t *ms_left)
{
    struct engine_breaker *b = eng ? eng->breaker : NULL;
    if (ms_left)
        *ms_left = 0;
    if (!b)
        return HARK_CIRCUIT_NONE;
    pthread_mutex_lock(&b->mu);
    int st = HARK_CIRCUIT_CLOSED;
    if (b->open_until) {
        int64_t left = (b->open_until - clock_mono_ns()) / 1000000;
        st = left > 0 && !b->probing ? HARK_CIRCUIT_OPEN : HARK_CIRCUIT_HALF_OPEN;
        if (st == HARK_CIRCUIT_OPEN && ms_left)
            *ms_left = left;
    }
    pthread_mutex_unlock(&b->mu);
    return st;
}

void hark_engine_destroy(struct hark_engine *eng)
{
    if (!eng)
        return;
    sh_vad_model_free(eng->silero);
    if (eng->breaker) {
        pthread_mutex_destroy(&eng->breaker->mu);
        hark_free(eng->breaker);
    }
    eng->ops->model_free(eng->model);
    hark_free(eng);
}

const char *hark_engine_get_name(const struct hark_engine *eng)
{
    return eng->ops->name;
}

const char *hark_engine_models(const struct hark_engine *eng)
{
    return eng->ops->models ? eng->ops->models : "";
}

void hark_engine_stats(const struct hark_engine *eng, struct hark_engine_stats *out)
{
    memset(out, 0, sizeof *out);
    if (eng->ops->stats)
        eng->ops->stats(eng->model, out);
}
