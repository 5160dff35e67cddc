/*
 * A state machine over single bytes (data runs are handed on whole), so a
 * body may be split anywhere: inside the size, its CRLF, or the trailer.
 * Strict about the framing (CRLF line ends, hex sizes of at most 15 digits,
 * CRLF after each chunk's data) and lenient only where RFC 9112 asks a
 * recipient to be: whitespace before an extension, any extension, any
 * trailer field.
 */
#include "front/ws/chunked.h"

#include "base/err.h"

enum {
    S_SIZE,     /* hex digits of the chunk size */
    S_EXT,      /* after the size: whitespace or ";ext", up to CR */
    S_SIZE_LF,  /* LF ending the size line */
    S_DATA,     /* chunk data */
    S_DATA_CR,  /* CR after the data */
    S_DATA_LF,  /* LF after the data */
    S_TRAILER,  /* start of a trailer line (or the final CRLF) */
    S_FIELD,    /* inside a trailer field, up to CR */
    S_FIELD_LF, /* LF ending a trailer field */
    S_END_LF,   /* LF of the final empty line */
    S_DONE,
    S_ERROR,
};

/* 15 hex digits: sizes below 2^60, far above any body hark accepts, and no
 * overflow in left. */
#define MAX_DIGITS 15

void chunked_init(struct chunked *c)
{
    c->state = S_SIZE;
    c->left = 0;
    c->digits = 0;
    c->line = 0;
    c->why = NULL;
}

static int hexval(uint8_t ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

static int bad(struct chunked *c, const char *why)
{
    c->state = S_ERROR;
    c->why = why;
    return HARK_E_PROTOCOL;
}

int chunked_feed(struct chunked *c, const uint8_t *in, size_t len, size_t *used, chunked_data_cb cb,
                 void *user)
{
    size_t i = 0;
    *used = 0;
    if (c->state == S_ERROR)
        return HARK_E_PROTOCOL;
    while (i < len && c->state != S_DONE) {
        uint8_t ch = in[i];
        if (c->state == S_DATA) {
            size_t n = len - i;
            if (n > c->left)
                n = (size_t)c->left;
            int rc = cb(user, in + i, n);
            i += n;
            c->left -= n;
            if (!c->left)
                c->state = S_DATA_CR;
            if (rc) {
                *used = i;
                return rc;
            }
            continue;
        }
        i++;
        if (c->state == S_SIZE || c->state == S_EXT || c->state == S_FIELD) {
            if (++c->line > CHUNKED_MAX_LINE)
                return bad(c, "a chunk size line or trailer field is too long");
        }
        switch (c->state) {
        case S_SIZE: {
            int v = hexval(ch);
            if (v >= 0) {
                if (++c->digits > MAX_DIGITS)
                    return bad(c, "a chunk size is too large");
                c->left = c->left << 4 | (uint64_t)v;
            } else if (!c->digits) {
                return bad(c, "a chunk does not start with its size in hex");
            } else if (ch == '\r') {
                c->state = S_SIZE_LF;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = S_EXT;
            } else {
                return bad(c, "a chunk size is not hexadecimal");
            }
            break;
        }
        case S_EXT:
            if (ch == '\r')
                c->state = S_SIZE_LF;
            else if (ch == '\n' || ch == 0)
                return bad(c, "a chunk extension holds a bare LF or NUL");
            break;
        case S_SIZE_LF:
            if (ch != '\n')
                return bad(c, "a chunk size line does not end in CRLF");
            c->line = 0;
            c->digits = 0;
            c->state = c->left ? S_DATA : S_TRAILER;
            break;
        case S_DATA_CR:
            if (ch != '\r')
                return bad(c, "chunk data is longer than its size");
            c->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (ch != '\n')
                return bad(c, "chunk data is not followed by CRLF");
            c->state = S_SIZE;
            break;
        case S_TRAILER:
            if (ch == '\r') {
                c->state = S_END_LF;
            } else {
                c->line = 1;
                c->state = S_FIELD;
            }
            break;
        case S_FIELD:
            if (ch == '\r')
                c->state = S_FIELD_LF;
            else if (ch == '\n' || ch == 0)
                return bad(c, "a trailer field holds a bare LF or NUL");
            break;
        case S_FIELD_LF:
            if (ch != '\n')
                return bad(c, "a trailer field does not end in CRLF");
            c->line = 0;
            c->state = S_TRAILER;
            break;
        case S_END_LF:
            if (ch != '\n')
                return bad(c, "the chunked body does not end in CRLF");
            c->state = S_DONE;
            break;
        default:
            return bad(c, "internal state");
        }
    }
    *used = i;
    return c->state == S_DONE ? 1 : 0;
}
