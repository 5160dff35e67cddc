/* Growable byte buffer with JSON writing helpers. Used for wire messages and
 * the CLI's JSON lines. Not thread-safe; one owner. Allocation failure sets
 * `oom` and later appends are ignored, so call sites check once at the end. */
#ifndef HARK_BASE_BUF_H
#define HARK_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "base/err.h"

struct buf {
    char *data; /* always NUL-terminated when cap > 0 */
    size_t len;
    size_t cap;
    int oom;
};

void buf_init(struct buf *b);
void buf_deinit(struct buf *b);
void buf_reset(struct buf *b);
int buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *data, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) HARK_PRINTF(2, 3);
/* Drop the first n bytes (consumed input). */
void buf_consume(struct buf *b, size_t n);

/* JSON: a quoted, escaped string (invalid UTF-8 bytes become U+FFFD). */
void buf_json_str(struct buf *b, const char *s);
void buf_json_strn(struct buf *b, const char *s, size_t n);
/* Integers exactly, other values rounded to 3 decimals (ms, confidences);
 * NaN/inf become 0. */
void buf_json_num(struct buf *b, double v);
/* `"key":` with a leading comma unless the buffer ends in '{' or '['. */
void buf_json_key(struct buf *b, const char *key);

#endif
