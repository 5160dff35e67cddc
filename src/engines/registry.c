/* The engines compiled into hark, found by name, and the public
 * hark_engine_* calls that wrap a loaded model. */
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/engine.h"

extern const struct engine_ops engine_pocketsphinx;

static const struct engine_ops *const engines[] = {
    &engine_pocketsphinx,
    NULL,
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

void hark_engine_destroy(struct hark_engine *eng)
{
    if (!eng)
        return;
    eng->ops->model_free(eng->model);
    hark_free(eng);
}

const char *hark_engine_get_name(const struct hark_engine *eng)
{
    return eng->ops->name;
}

void hark_engine_stats(const struct hark_engine *eng, struct hark_engine_stats *out)
{
    memset(out, 0, sizeof *out);
    if (eng->ops->stats)
        eng->ops->stats(eng->model, out);
}
