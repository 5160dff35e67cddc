/* Library logging. Everything goes through the callback set with
 * hark_log_set(); nothing is printed. Thread-safe. */
#ifndef HARK_BASE_LOG_H
#define HARK_BASE_LOG_H

#include "base/err.h"

/* True when a message at `level` would be delivered (skip formatting otherwise). */
int log_enabled(enum hark_log_level level);
void log_emit(enum hark_log_level level, const char *session_id, const char *fmt, ...)
    HARK_PRINTF(3, 4);

#define LOG_ERROR(sid, ...) log_emit(HARK_LOG_ERROR, (sid), __VA_ARGS__)
#define LOG_WARN(sid, ...) log_emit(HARK_LOG_WARN, (sid), __VA_ARGS__)
#define LOG_INFO(sid, ...) log_emit(HARK_LOG_INFO, (sid), __VA_ARGS__)
#define LOG_DEBUG(sid, ...)                                                                        \
    do {                                                                                           \
        if (log_enabled(HARK_LOG_DEBUG))                                                           \
            log_emit(HARK_LOG_DEBUG, (sid), __VA_ARGS__);                                          \
    } while (0)

#endif
