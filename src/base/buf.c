#include "base/buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/mem.h"

void buf_init(struct buf *b)
{
    memset(b, 0, sizeof *b);
}

void buf_deinit(struct buf *b)
{
    hark_free(b->data);
    memset(b, 0, sizeof *b);
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    b->oom = 0;
    if (b->data)
        b->data[0] = 0;
}

int buf_reserve(struct buf *b, size_t extra)
{
    if (b->oom)
        return HARK_E_NOMEM;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = hark_realloc(b->data, cap);
    if (!d) {
        b->oom = 1;
        return HARK_E_NOMEM;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void buf_append(struct buf *b, const void *data, size_t n)
{
    if (buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
}

void buf_puts(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

void buf_putc(struct buf *b, char c)
{
    buf_append(b, &c, 1);
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = 0;
}

/* Length of the valid UTF-8 sequence at s (max n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0) {
        len = 2;
        min = 0x80;
        c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        min = 0x800;
        c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    return len;
}

void buf_json_strn(struct buf *b, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    buf_putc(b, '"');
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            buf_putc(b, '\\');
            buf_putc(b, (char)c);
            i++;
        } else if (c < 0x20) {
            switch (c) {
            case '\n':
                buf_puts(b, "\\n");
                break;
            case '\r':
                buf_puts(b, "\\r");
                break;
            case '\t':
                buf_puts(b, "\\t");
                break;
            default:
                buf_printf(b, "\\u%04x", c);
            }
            i++;
        } else {
            size_t l = utf8_len(s + i, n - i);
            if (l == 0) {
                buf_puts(b, "\xEF\xBF\xBD");
                i++;
            } else {
                buf_append(b, s + i, l);
                i += l;
            }
        }
    }
    buf_putc(b, '"');
}

void buf_json_str(struct buf *b, const char *s)
{
    buf_json_strn(b, s ? s : "", s ? strlen(s) : 0);
}

void buf_json_num(struct buf *b, double v)
{
    if (!isfinite(v))
        v = 0;
    if (fabs(v) < 1e15 && v == (double)(long long)v) {
        buf_printf(b, "%lld", (long long)v);
        return;
    }
    char tmp[32];
    /* Three decimals are enough for times in seconds (ms) and confidences
     * and keep the wire compact; anything needing more uses buf_printf.
     * (The library never calls setlocale, so '.' is the decimal point.) */
    snprintf(tmp, sizeof tmp, "%.3f", v);
    char *e = tmp + strlen(tmp) - 1;
    while (e > tmp && *e == '0')
        *e-- = 0;
    if (*e == '.')
        *e = 0;
    if (strcmp(tmp, "-0") == 0)
        strcpy(tmp, "0");
    buf_puts(b, tmp);
}

void buf_json_key(struct buf *b, const char *key)
{
    if (b->len && b->data[b->len - 1] != '{' && b->data[b->len - 1] != '[')
        buf_putc(b, ',');
    buf_json_str(b, key);
    buf_putc(b, ':');
}
