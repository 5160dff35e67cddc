#include "base/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

/* The callback and its user pointer are read together on every message from
 * any thread; a pair of atomics is enough because hark_log_set is documented
 * as "call once before other calls" and a torn read only mixes two valid
 * callbacks' user data if it races, which the header warns about. */
static _Atomic(hark_log_cb) log_cb;
static _Atomic(void *) log_user;
static atomic_int log_max = HARK_LOG_WARN;

void hark_log_set(hark_log_cb cb, void *user, enum hark_log_level max_level)
{
    atomic_store(&log_user, user);
    atomic_store(&log_cb, cb);
    atomic_store(&log_max, (int)max_level);
}

const char *hark_log_level_name(enum hark_log_level level)
{
    switch (level) {
    case HARK_LOG_ERROR:
        return "error";
    case HARK_LOG_WARN:
        return "warn";
    case HARK_LOG_INFO:
        return "info";
    case HARK_LOG_DEBUG:
        return "debug";
    }
    return "?";
}

int log_enabled(enum hark_log_level level)
{
    return atomic_load(&log_cb) != NULL && (int)level <= atomic_load(&log_max);
}

void log_emit(enum hark_log_level level, const char *session_id, const char *fmt, ...)
{
    hark_log_cb cb = atomic_load(&log_cb);
    if (!cb || (int)level > atomic_load(&log_max))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cb(atomic_load(&log_user), level, session_id ? session_id : "", msg);
}
