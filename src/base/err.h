/* Error helpers shared inside the library: formatting detail text into a
 * caller's error buffer. The codes themselves live in hark.h (HARK_ERR_MAP). */
#ifndef HARK_BASE_ERR_H
#define HARK_BASE_ERR_H

#include <stddef.h>
#include "hark/hark.h"

#if defined(__GNUC__)
#define HARK_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HARK_PRINTF(a, b)
#endif

/* Writes the formatted detail into buf (when buf is not NULL) and returns
 * err, so call sites read `return err_set(errbuf, n, HARK_E_X, "...", ...)`. */
int err_set(char *buf, size_t size, int err, const char *fmt, ...) HARK_PRINTF(4, 5);

#endif
