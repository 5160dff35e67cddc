#include "front/ws/head.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static long fail(char *why, size_t n, int status, const char *msg)
{
    if (why && n)
        snprintf(why, n, "%s", msg);
    return -status;
}

/* The request target of the request line [p, p+len): 0 or -400. */
static long check_line(const char *p, size_t len, char *why, size_t n)
{
    const char *sp1 = memchr(p, ' ', len);
    if (!sp1 || sp1 == p)
        return fail(why, n, 400, "malformed request line");
    for (const char *m = p; m < sp1; m++)
        if (*m < 'A' || *m > 'Z')
            return fail(why, n, 400, "malformed request line");
    const char *t = sp1 + 1, *end = p + len;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    /* "HTTP/d.d" and nothing after it */
    if (!sp2 || sp2 == t || end - sp2 != 9 || memcmp(sp2 + 1, "HTTP/", 5) || sp2[6] < '0' ||
        sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
        return fail(why, n, 400, "malformed request line");
    for (const char *q = t; q < sp2; q++) {
        unsigned char c = (unsigned char)*q;
        if (c <= 0x20 || c == 0x7f)
            return fail(why, n, 400, "control character in the URI");
        if (c == '%') {
            if (sp2 - q < 3 || hexval(q[1]) < 0 || hexval(q[2]) < 0)
                return fail(why, n, 400, "malformed percent-escape in the URI");
            if (q[1] == '0' && q[2] == '0')
                return fail(why, n, 400, "NUL (%00) in the URI");
        }
    }
    return 0;
}

long head_scan(const char *buf, size_t len, char *why, size_t n)
{
    char msg[120];
    const char *nl = memchr(buf, '\n', len);
    size_t line = nl ? (size_t)(nl - buf) : len;
    if (line > 0 && nl && buf[line - 1] == '\r')
        line--;
    if (line > HEAD_MAX_URI) {
        snprintf(msg, sizeof msg, "request line (URI) longer than %d bytes", HEAD_MAX_URI);
        return fail(why, n, 414, msg);
    }
    if (!nl)
        return 0;
    long rc = check_line(buf, line, why, n);
    if (rc)
        return rc;
    /* headers: lines up to an empty one */
    size_t pos = (size_t)(nl - buf) + 1;
    int lines = 0;
    for (;;) {
        const char *e = memchr(buf + pos, '\n', len - pos);
        if (!e)
            break;
        size_t l = (size_t)(e - (buf + pos));
        if (l == 0 || (l == 1 && buf[pos] == '\r')) {
            size_t total = pos + l + 1;
            if (total > HEAD_MAX_BYTES)
                break;
            return (long)total;
        }
        if (++lines > HEAD_MAX_LINES) {
            snprintf(msg, sizeof msg, "more than %d header lines", HEAD_MAX_LINES);
            return fail(why, n, 431, msg);
        }
        pos += l + 1;
    }
    if (len > HEAD_MAX_BYTES || (pos > HEAD_MAX_BYTES)) {
        snprintf(msg, sizeof msg, "request headers larger than %d bytes", HEAD_MAX_BYTES);
        return fail(why, n, 431, msg);
    }
    return 0;
}

static int put(char *out, size_t cap, size_t *o, const char *s, size_t len)
{
    if (*o + len > cap)
        return -1;
    memcpy(out + *o, s, len);
    *o += len;
    return 0;
}

/* Header line [p, p+len) named name (case-insensitive, name ends in ':'). */
static int named(const char *p, size_t len, const char *name)
{
    size_t nl = strlen(name);
    return len >= nl && !strncasecmp(p, name, nl);
}

long head_rewrite(const char *head, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    const char *nl = memchr(head, '\n', len);
    if (!nl)
        return -1;
    size_t line = (size_t)(nl - head);
    if (line && head[line - 1] == '\r')
        line--;
    const char *sp1 = memchr(head, ' ', line);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(head + line - sp1 - 1)) : NULL;
    if (!sp2)
        return -1;
    const char *q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
    /* is it an upgrade? */
    int upgrade = 0;
    for (const char *p = nl + 1; p < head + len;) {
        const char *e = memchr(p, '\n', (size_t)(head + len - p));
        size_t l = e ? (size_t)(e - p) : (size_t)(head + len - p);
        if (named(p, l, "upgrade:"))
            upgrade = 1;
        p += l + 1;
    }
    if (put(out, cap, &o, head, (size_t)((q ? q : sp2) - head)) ||
        put(out, cap, &o, sp2, (size_t)(head + line - sp2)) || put(out, cap, &o, "\r\n", 2))
        return -1;
    if (q && (put(out, cap, &o, HEAD_QUERY_HEADER " ", sizeof HEAD_QUERY_HEADER) ||
              put(out, cap, &o, q + 1, (size_t)(sp2 - q - 1)) || put(out, cap, &o, "\r\n", 2)))
        return -1;
    for (const char *p = nl + 1; p < head + len;) {
        const char *e = memchr(p, '\n', (size_t)(head + len - p));
        size_t l = e ? (size_t)(e - p) : (size_t)(head + len - p), full = l;
        if (l && p[l - 1] == '\r')
            l--;
        if (!l)
            break; /* the blank line */
        if (!named(p, l, HEAD_QUERY_HEADER) && (upgrade || !named(p, l, "connection:")) &&
            (put(out, cap, &o, p, l) || put(out, cap, &o, "\r\n", 2)))
            return -1;
        p += full + 1;
    }
    if (!upgrade && put(out, cap, &o, "connection: close\r\n", 19))
        return -1;
    if (put(out, cap, &o, "\r\n", 2))
        return -1;
    return (long)o;
}

size_t head_split_query(const char *query, size_t len, char *out, size_t cap)
{
    size_t count = 0, o = 0;
    if (!len || !cap)
        return 0;
    for (size_t i = 0; i <= len; i++) {
        if (o >= cap)
            break;
        if (i == len || query[i] == '&' || query[i] == ';') {
            out[o++] = 0;
            count++;
            continue;
        }
        char c = query[i];
        if (c == '+')
            c = ' ';
        else if (c == '%' && i + 2 < len && hexval(query[i + 1]) >= 0 &&
                 hexval(query[i + 2]) >= 0 && (query[i + 1] != '0' || query[i + 2] != '0')) {
            /* (%00 stays as it is: the strings are NUL-terminated) */
            c = (char)(hexval(query[i + 1]) * 16 + hexval(query[i + 2]));
            i += 2;
        }
        out[o++] = c;
    }
    return count;
}
