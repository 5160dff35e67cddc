/* libFuzzer target for the JSON reader (untrusted WebSocket text frames).
 * Arbitrary bytes are parsed; a failure must carry the documented message
 * with an offset inside the input. A document is walked completely: every
 * node's accessors and json_to_text must agree with each other, every string
 * must be valid UTF-8, and the tree written back out as JSON (strings through
 * buf_json_strn) must parse to an identical tree. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/json.h"
#include "base/mem.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* Independent of the parser's own check: Unicode table 3-7. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        uint32_t cp;
        size_t len;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            cp = c & 0x1F;
            len = 2;
        } else if ((c & 0xF0) == 0xE0) {
            cp = c & 0x0F;
            len = 3;
        } else if ((c & 0xF8) == 0xF0) {
            cp = c & 0x07;
            len = 4;
        } else {
            return 0;
        }
        if (i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* json_to_text into a buffer that always fits and into a small one. */
static void check_text(const struct json_value *v, char *big, size_t big_size)
{
    int rc = json_to_text(v, big, big_size);
    CHECK(rc == 0 || rc == HARK_E_BAD_OPTION);
    if (rc) {
        CHECK(big[0] == 0);
    }
    char small[8];
    int rc_small = json_to_text(v, small, sizeof small);
    if (rc == 0 && strlen(big) < sizeof small) {
        CHECK(rc_small == 0 && strcmp(small, big) == 0);
    } else {
        /* a bad array element may be found before the space runs out */
        CHECK(small[0] == 0);
        CHECK(rc_small == HARK_E_LIMIT || (rc && rc_small == rc));
    }

    switch (json_type(v)) {
    case JSON_NULL:
    case JSON_OBJECT:
        CHECK(rc == HARK_E_BAD_OPTION);
        break;
    case JSON_BOOL:
        CHECK(rc == 0 && strcmp(big, json_bool(v) ? "true" : "false") == 0);
        break;
    case JSON_NUMBER: {
        CHECK(rc == 0);
        double back = strtod(big, NULL);
        CHECK(back == json_num(v)); /* shortest form still reads back exactly */
        break;
    }
    case JSON_STRING:
        if (memchr(json_str(v), 0, json_str_len(v))) {
            CHECK(rc == HARK_E_BAD_OPTION);
        } else {
            CHECK(rc == 0 && strcmp(big, json_str(v)) == 0);
        }
        break;
    case JSON_ARRAY: {
        int scalars = 1;
        size_t commas = 0;
        for (size_t i = 0; i < json_len(v); i++) {
            const struct json_value *e = json_at(v, i);
            enum json_type t = json_type(e);
            if (t == JSON_STRING) {
                commas += memchr(json_str(e), ',', json_str_len(e)) != NULL;
                scalars &= memchr(json_str(e), 0, json_str_len(e)) == NULL;
            }
            scalars &= t == JSON_STRING || t == JSON_NUMBER || t == JSON_BOOL;
        }
        CHECK(rc == ((scalars && !commas) ? 0 : HARK_E_BAD_OPTION));
        if (rc == 0) {
            size_t n = 0;
            for (const char *c = big; *c; c++)
                n += *c == ',';
            CHECK(n == (json_len(v) ? json_len(v) - 1 : 0));
        }
        break;
    }
    }
}

static void walk(const struct json_value *v, int depth, char *big, size_t big_size)
{
    CHECK(v != NULL && depth <= JSON_MAX_DEPTH + 1);
    check_text(v, big, big_size);
    enum json_type t = json_type(v);
    CHECK(t >= JSON_NULL && t <= JSON_OBJECT);
    if (t == JSON_STRING) {
        const char *s = json_str(v);
        size_t n = json_str_len(v);
        CHECK(s != NULL && s[n] == 0 && strlen(s) <= n);
        CHECK(valid_utf8((const unsigned char *)s, n));
    } else {
        CHECK(json_str(v) == NULL && json_str_len(v) == 0);
    }
    if (t == JSON_ARRAY) {
        CHECK(depth <= JSON_MAX_DEPTH);
        size_t n = json_len(v);
        for (size_t i = 0; i < n; i++)
            walk(json_at(v, i), depth + 1, big, big_size);
        CHECK(json_at(v, n) == NULL && json_key_at(v, 0) == NULL);
    } else if (t == JSON_OBJECT) {
        CHECK(depth <= JSON_MAX_DEPTH);
        size_t n = json_len(v);
        for (size_t i = 0; i < n; i++) {
            const char *key = json_key_at(v, i);
            CHECK(key != NULL && valid_utf8((const unsigned char *)key, strlen(key)));
            walk(json_value_at(v, i), depth + 1, big, big_size);
            /* Names are unique and hold no NUL (both refused by the parser),
             * so json_get finds exactly this member, and no other member has
             * its name. */
            if (i < 64) {
                CHECK(json_get(v, key) == json_value_at(v, i));
                for (size_t j = 0; j < i; j++)
                    CHECK(strcmp(json_key_at(v, j), key) != 0);
            }
        }
        CHECK(json_value_at(v, n) == NULL && json_key_at(v, n) == NULL && json_at(v, 0) == NULL);
    } else {
        CHECK(json_len(v) == 0);
    }
}

static void write_json(struct buf *b, const struct json_value *v)
{
    switch (json_type(v)) {
    case JSON_NULL:
        buf_puts(b, "null");
        break;
    case JSON_BOOL:
        buf_puts(b, json_bool(v) ? "true" : "false");
        break;
    case JSON_NUMBER:
        buf_printf(b, "%.17g", json_num(v));
        break;
    case JSON_STRING:
        buf_json_strn(b, json_str(v), json_str_len(v));
        break;
    case JSON_ARRAY:
        buf_putc(b, '[');
        for (size_t i = 0; i < json_len(v); i++) {
            if (i)
                buf_putc(b, ',');
            write_json(b, json_at(v, i));
        }
        buf_putc(b, ']');
        break;
    case JSON_OBJECT:
        buf_putc(b, '{');
        for (size_t i = 0; i < json_len(v); i++) {
            buf_json_key(b, json_key_at(v, i));
            write_json(b, json_value_at(v, i));
        }
        buf_putc(b, '}');
        break;
    }
}

static void check_same(const struct json_value *a, const struct json_value *b)
{
    CHECK(json_type(a) == json_type(b));
    switch (json_type(a)) {
    case JSON_NULL:
        break;
    case JSON_BOOL:
        CHECK(json_bool(a) == json_bool(b));
        break;
    case JSON_NUMBER:
        CHECK(json_num(a) == json_num(b) && signbit(json_num(a)) == signbit(json_num(b)));
        break;
    case JSON_STRING:
        CHECK(json_str_len(a) == json_str_len(b));
        CHECK(memcmp(json_str(a), json_str(b), json_str_len(a)) == 0);
        break;
    case JSON_ARRAY:
        CHECK(json_len(a) == json_len(b));
        for (size_t i = 0; i < json_len(a); i++)
            check_same(json_at(a, i), json_at(b, i));
        break;
    case JSON_OBJECT:
        CHECK(json_len(a) == json_len(b));
        for (size_t i = 0; i < json_len(a); i++) {
            CHECK(strcmp(json_key_at(a, i), json_key_at(b, i)) == 0);
            check_same(json_value_at(a, i), json_value_at(b, i));
        }
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long outstanding = mem_outstanding();
    struct json *doc = (struct json *)&doc;
    char err[256];
    int rc = json_parse(&doc, (const char *)data, size, err, sizeof err);
    if (rc) {
        CHECK(doc == NULL);
        if (size > JSON_MAX_LEN) {
            CHECK(rc == HARK_E_LIMIT);
        } else {
            CHECK(rc == HARK_E_PROTOCOL);
            size_t at = 0;
            int used = 0;
            CHECK(sscanf(err, "invalid JSON at byte %zu: %n", &at, &used) == 1 && used > 0);
            CHECK(at <= size && err[used] != 0);
        }
        CHECK(mem_outstanding() == outstanding);
        return 0;
    }
    CHECK(size <= JSON_MAX_LEN);

    /* A number's text is at most 24 bytes and comes from at least 1 byte. */
    size_t big_size = 32 * size + 64;
    char *big = malloc(big_size);
    CHECK(big != NULL);
    walk(json_root(doc), 1, big, big_size);
    free(big);

    struct buf out;
    buf_init(&out);
    write_json(&out, json_root(doc));
    CHECK(!out.oom);
    if (out.len <= JSON_MAX_LEN) {
        struct json *again = NULL;
        rc = json_parse(&again, out.data, out.len, err, sizeof err);
        CHECK(rc == 0);
        check_same(json_root(doc), json_root(again));
        json_free(again);
    }
    buf_deinit(&out);
    json_free(doc);
    CHECK(mem_outstanding() == outstanding);
    return 0;
}
