#include "base/json.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

/* 16 bytes: counts fit in 32 bits because JSON_MAX_LEN does. */
struct json_value {
    unsigned char type; /* enum json_type */
    uint32_t n;         /* string length, or array/object element count */
    union {
        int boolean;
        double number;
        const char *str;
        struct json_value *items;
        struct json_member *members;
    } u;
};

struct json_member {
    const char *key;
    size_t key_len;
    struct json_value value;
};

/* The document's arena: a list of blocks, each bigger than the last, so a
 * document costs a few allocations and json_free is a walk down the list. */
struct block {
    struct block *next;
    size_t cap, used;
    max_align_t data[]; /* aligns the first byte for any node */
};

#define FIRST_BLOCK_MIN 256
#define FIRST_BLOCK_MAX (64 * 1024)
#define BLOCK_MAX (1024 * 1024)

struct json {
    struct block *blocks;
    size_t next_cap;
    struct json_value root;
};

struct pending_key {
    const char *key;
    size_t len;
    size_t at; /* byte offset of its opening quote, for errors */
};

struct parser {
    const unsigned char *s;
    size_t len, pos;
    int depth;
    struct json *doc;
    /* Values of all open containers, innermost last; a container moves its
     * elements into the arena when it closes, so each value is copied once. */
    struct json_value *vals;
    size_t nvals, cap_vals;
    struct pending_key *keys;
    size_t nkeys, cap_keys;
    struct pending_key *sorted; /* duplicate check of a big object */
    size_t cap_sorted;
    char *scratch; /* decoded string or number text being read */
    size_t cap_scratch;
    char *errbuf;
    size_t errbuf_size;
};

/* ------------------------------------------------------------- arena */

static void *arena_alloc(struct json *doc, size_t n, size_t align)
{
    struct block *b = doc->blocks;
    if (b) {
        size_t at = (b->used + align - 1) & ~(align - 1);
        if (at <= b->cap && n <= b->cap - at) {
            b->used = at + n;
            return (char *)b->data + at;
        }
    }
    size_t cap = doc->next_cap;
    if (cap < n)
        cap = n; /* an oversized request gets a block of its own size */
    else if (doc->next_cap < BLOCK_MAX)
        doc->next_cap *= 2;
    b = hark_malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->cap = cap;
    b->used = n;
    if (cap == n && doc->blocks) {
        /* Full already: keep filling the current block after it. */
        b->next = doc->blocks->next;
        doc->blocks->next = b;
    } else {
        b->next = doc->blocks;
        doc->blocks = b;
    }
    return b->data;
}

void json_free(struct json *doc)
{
    if (!doc)
        return;
    struct block *b = doc->blocks;
    while (b) {
        struct block *next = b->next;
        hark_free(b);
        b = next;
    }
    hark_free(doc);
}

/* ------------------------------------------------------------- errors */

static int fail(struct parser *p, size_t at, const char *fmt, ...) HARK_PRINTF(3, 4);
static int fail(struct parser *p, size_t at, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return err_set(p->errbuf, p->errbuf_size, HARK_E_PROTOCOL, "invalid JSON at byte %zu: %s", at,
                   what);
}

/* "unexpected 'x', expected <expected>", naming the byte found at `at`. */
static int unexpected(struct parser *p, size_t at, const char *expected)
{
    if (at >= p->len)
        return fail(p, at, "unexpected end of input, expected %s", expected);
    unsigned c = p->s[at];
    if (c >= 0x20 && c < 0x7f)
        return fail(p, at, "unexpected '%c', expected %s", (char)c, expected);
    return fail(p, at, "unexpected byte 0x%02x, expected %s", c, expected);
}

static int nomem(struct parser *p)
{
    return err_set(p->errbuf, p->errbuf_size, HARK_E_NOMEM,
                   "out of memory parsing %zu bytes of JSON", p->len);
}

/* ------------------------------------------------------------- stacks */

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *a = hark_realloc(*arr, n * elem);
    if (!a)
        return HARK_E_NOMEM;
    *arr = a;
    *cap = n;
    return 0;
}

static int push_value(struct parser *p, struct json_value v)
{
    if (grow((void **)&p->vals, &p->cap_vals, p->nvals + 1, sizeof *p->vals))
        return nomem(p);
    p->vals[p->nvals++] = v;
    return 0;
}

static int scratch_reserve(struct parser *p, size_t need)
{
    if (grow((void **)&p->scratch, &p->cap_scratch, need, 1))
        return nomem(p);
    return 0;
}

/* ------------------------------------------------------------- locale */

/* strtod and printf follow the process locale, which an embedding program may
 * have set to one with a decimal comma; numbers are converted in "C". */
static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t use_c_locale(void)
{
    pthread_once(&c_locale_once, make_c_locale);
    return c_locale ? uselocale(c_locale) : (locale_t)0;
}

static void restore_locale(locale_t old)
{
    if (old)
        uselocale(old);
}

/* ------------------------------------------------------------- lexing */

static void skip_ws(struct parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The 4 hex digits at `at` (after "\u") into *cp. */
static int read_hex4(struct parser *p, size_t at, unsigned *cp)
{
    unsigned v = 0;
    for (size_t i = at; i < at + 4; i++) {
        int h = i < p->len ? hex_value(p->s[i]) : -1;
        if (h < 0)
            return unexpected(p, i, "4 hex digits after \\u");
        v = v << 4 | (unsigned)h;
    }
    *cp = v;
    return 0;
}

/* Length of the valid UTF-8 sequence at s[i], or 0 with *bad set to the
 * offset of the first byte that makes it invalid (Unicode table 3-7: no
 * overlong forms, no surrogates, nothing above U+10FFFF). */
static size_t utf8_seq(const struct parser *p, size_t i, size_t *bad)
{
    unsigned c = p->s[i];
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *bad = i;
        return 0;
    }
    for (size_t k = 1; k < n; k++) {
        if (i + k >= p->len) {
            *bad = p->len;
            return 0;
        }
        unsigned b = p->s[i + k];
        if (k == 1 ? (b < lo || b > hi) : (b & 0xC0) != 0x80) {
            *bad = i + k;
            return 0;
        }
    }
    return n;
}

static size_t put_utf8(char *d, unsigned cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* An escape at s[i] == '\\': appends its UTF-8 to scratch[*n] and advances
 * *i past it. scratch has room for 4 more bytes. */
static int read_escape(struct parser *p, size_t *i, size_t *n)
{
    size_t at = *i;
    if (at + 1 >= p->len)
        return unexpected(p, at + 1, "an escape after '\\'");
    char simple = 0;
    switch (p->s[at + 1]) {
    case '"':
        simple = '"';
        break;
    case '\\':
        simple = '\\';
        break;
    case '/':
        simple = '/';
        break;
    case 'b':
        simple = '\b';
        break;
    case 'f':
        simple = '\f';
        break;
    case 'n':
        simple = '\n';
        break;
    case 'r':
        simple = '\r';
        break;
    case 't':
        simple = '\t';
        break;
    case 'u':
        break;
    default:
        return unexpected(p, at + 1, "an escape: \\\" \\\\ \\/ \\b \\f \\n \\r \\t or \\uXXXX");
    }
    if (simple) {
        p->scratch[(*n)++] = simple;
        *i = at + 2;
        return 0;
    }
    unsigned cp = 0; /* read_hex4 sets it on success; GCC 12 -O3 cannot tell */
    int rc = read_hex4(p, at + 2, &cp);
    if (rc)
        return rc;
    *i = at + 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(p, at,
                    "lone low surrogate \\u%04X; a \\uDC00-\\uDFFF escape must follow a "
                    "\\uD800-\\uDBFF one",
                    cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (at + 6 >= p->len || (p->s[at + 6] == '\\' && at + 7 >= p->len))
            return unexpected(p, p->len, "a \\uDC00-\\uDFFF escape after a high surrogate");
        unsigned lo = 0;
        if (p->s[at + 6] == '\\' && p->s[at + 7] == 'u') {
            rc = read_hex4(p, at + 8, &lo);
            if (rc)
                return rc;
        }
        if (lo < 0xDC00 || lo > 0xDFFF)
            return fail(p, at,
                        "lone high surrogate \\u%04X; it must be followed by a "
                        "\\uDC00-\\uDFFF escape",
                        cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        *i = at + 12;
    }
    *n += put_utf8(p->scratch + *n, cp);
    return 0;
}

/* The string starting with '"' at pos, decoded into a NUL-terminated arena
 * copy. Decoded text is never longer than its source, so scratch grows with
 * the input consumed. */
static int read_string(struct parser *p, const char **out, size_t *out_len)
{
    size_t start = p->pos, i = p->pos + 1, n = 0;
    for (;;) {
        /* Room for the next run or escape (at most 4 bytes of output). */
        size_t run = i;
        while (run < p->len) {
            unsigned char c = p->s[run];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
                break;
            run++;
        }
        int rc = scratch_reserve(p, n + (run - i) + 5);
        if (rc)
            return rc;
        memcpy(p->scratch + n, p->s + i, run - i);
        n += run - i;
        i = run;
        if (i >= p->len)
            return fail(p, i,
                        "unexpected end of input, expected '\"' to close the string at byte %zu",
                        start);
        unsigned char c = p->s[i];
        if (c == '"')
            break;
        if (c == '\\') {
            rc = read_escape(p, &i, &n);
            if (rc)
                return rc;
        } else if (c < 0x20) {
            return fail(p, i, "control character 0x%02x in a string; write it as \\u%04x", c, c);
        } else {
            size_t bad = 0, k = utf8_seq(p, i, &bad);
            if (!k) {
                if (bad >= p->len)
                    return fail(p, bad, "unexpected end of input inside a UTF-8 sequence");
                return fail(p, bad, "invalid UTF-8 byte 0x%02x in a string; strings must be UTF-8",
                            p->s[bad]);
            }
            memcpy(p->scratch + n, p->s + i, k);
            n += k;
            i += k;
        }
    }
    char *d = arena_alloc(p->doc, n + 1, 1);
    if (!d)
        return nomem(p);
    memcpy(d, p->scratch, n);
    d[n] = 0;
    p->pos = i + 1;
    *out = d;
    *out_len = n;
    return 0;
}

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int read_number(struct parser *p, double *out)
{
    size_t start = p->pos, i = p->pos;
    int neg = 0, simple = 1;
    if (p->s[i] == '-') {
        neg = 1;
        i++;
    }
    size_t digits = i;
    if (i >= p->len || !is_digit(p->s[i]))
        return unexpected(p, i, "a digit after '-'");
    if (p->s[i] == '0') {
        i++;
        if (i < p->len && is_digit(p->s[i]))
            return fail(p, i, "number with a leading zero; numbers are written 0, 12, 0.5, -3e2");
    } else {
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    size_t int_digits = i - digits;
    if (i < p->len && p->s[i] == '.') {
        simple = 0;
        i++;
        if (i >= p->len || !is_digit(p->s[i]))
            return unexpected(p, i, "a digit after '.'");
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        simple = 0;
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-'))
            i++;
        if (i >= p->len || !is_digit(p->s[i]))
            return unexpected(p, i, "a digit in the exponent");
        while (i < p->len && is_digit(p->s[i]))
            i++;
    }
    p->pos = i;
    if (simple && int_digits <= 15) {
        /* Exact in a double; the common case (sample rates, ms) skips strtod. */
        int64_t v = 0;
        for (size_t k = digits; k < i; k++)
            v = v * 10 + (p->s[k] - '0');
        *out = neg ? -(double)v : (double)v;
        return 0;
    }
    int rc = scratch_reserve(p, i - start + 1);
    if (rc)
        return rc;
    memcpy(p->scratch, p->s + start, i - start);
    p->scratch[i - start] = 0;
    locale_t old = use_c_locale();
    double v = strtod(p->scratch, NULL);
    restore_locale(old);
    if (isinf(v))
        return fail(p, start, "number out of range; magnitudes up to about 1.7e308 are accepted");
    *out = v; /* underflow gives 0 or a subnormal, which is fine */
    return 0;
}

static int read_literal(struct parser *p, struct json_value *v)
{
    static const struct {
        const char *text;
        size_t len;
        unsigned char type;
        int boolean;
    } lits[] = {{"true", 4, JSON_BOOL, 1}, {"false", 5, JSON_BOOL, 0}, {"null", 4, JSON_NULL, 0}};
    for (size_t k = 0; k < sizeof lits / sizeof lits[0]; k++) {
        if (p->s[p->pos] != lits[k].text[0])
            continue;
        for (size_t j = 1; j < lits[k].len; j++)
            if (p->pos + j >= p->len || p->s[p->pos + j] != (unsigned char)lits[k].text[j])
                return unexpected(p, p->pos + j, lits[k].text);
        p->pos += lits[k].len;
        v->type = lits[k].type;
        v->u.boolean = lits[k].boolean;
        return 0;
    }
    return unexpected(p, p->pos, "a value");
}

/* ------------------------------------------------------------- parsing */

static int parse_value(struct parser *p);

static int enter(struct parser *p)
{
    if (++p->depth > JSON_MAX_DEPTH)
        return fail(p, p->pos, "nesting deeper than %d levels; at most %d are accepted",
                    JSON_MAX_DEPTH, JSON_MAX_DEPTH);
    p->pos++; /* '[' or '{' */
    skip_ws(p);
    return 0;
}

static int parse_array(struct parser *p)
{
    int rc = enter(p);
    if (rc)
        return rc;
    size_t base = p->nvals;
    if (p->pos < p->len && p->s[p->pos] == ']') {
        p->pos++;
    } else {
        for (;;) {
            rc = parse_value(p);
            if (rc)
                return rc;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ']') {
                p->pos++;
                break;
            }
            if (p->pos >= p->len || p->s[p->pos] != ',')
                return unexpected(p, p->pos, "',' or ']' after an array element");
            size_t comma = p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == ']')
                return fail(p, comma, "trailing comma before ']'; remove it");
        }
    }
    struct json_value arr = {.type = JSON_ARRAY, .n = (uint32_t)(p->nvals - base)};
    if (arr.n) {
        arr.u.items = arena_alloc(p->doc, arr.n * sizeof *arr.u.items, alignof(struct json_value));
        if (!arr.u.items)
            return nomem(p);
        memcpy(arr.u.items, p->vals + base, arr.n * sizeof *arr.u.items);
    }
    p->nvals = base;
    p->depth--;
    return push_value(p, arr);
}

static int key_cmp(const void *a, const void *b)
{
    const struct pending_key *x = a, *y = b;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    int c = memcmp(x->key, y->key, x->len);
    if (c)
        return c;
    return x->at < y->at ? -1 : x->at > y->at;
}

static int same_key(const struct pending_key *x, const struct pending_key *y)
{
    return x->len == y->len && memcmp(x->key, y->key, x->len) == 0;
}

/* A repeated member name is refused (RFC 8259 leaves its meaning open:
 * {"sample_rate":8000,"sample_rate":16000} would silently mean whichever one
 * the reader picks). Reports the first repeat in document order. Pairwise for
 * small objects; sorting a copy for big ones, so a 1 MiB object of distinct
 * names stays O(n log n). */
static int check_duplicates(struct parser *p, const struct pending_key *k, size_t n)
{
    const struct pending_key *dup = NULL;
    if (n <= 16) {
        for (size_t i = 1; i < n && !dup; i++)
            for (size_t j = 0; j < i && !dup; j++)
                if (same_key(&k[i], &k[j]))
                    dup = &k[i];
    } else {
        if (grow((void **)&p->sorted, &p->cap_sorted, n, sizeof *p->sorted))
            return nomem(p);
        memcpy(p->sorted, k, n * sizeof *k);
        qsort(p->sorted, n, sizeof *p->sorted, key_cmp);
        for (size_t i = 1; i < n; i++)
            if (same_key(&p->sorted[i], &p->sorted[i - 1]) && (!dup || p->sorted[i].at < dup->at))
                dup = &p->sorted[i];
    }
    if (!dup)
        return 0;
    /* The name as the input spells it (valid UTF-8 and escapes, so the
     * message stays printable), cut short after 64 bytes. The string was
     * read whole, so its closing quote is within the input. */
    const char *name = (const char *)p->s + dup->at + 1;
    size_t raw = 0;
    while (name[raw] != '"' && raw < 64)
        raw += name[raw] == '\\' ? 2 : 1;
    return fail(p, dup->at, "duplicate member name \"%.*s%s\"; each name may appear once", (int)raw,
                name, name[raw] != '"' ? "..." : "");
}

static int parse_object(struct parser *p)
{
    int rc = enter(p);
    if (rc)
        return rc;
    size_t vbase = p->nvals, kbase = p->nkeys;
    if (p->pos < p->len && p->s[p->pos] == '}') {
        p->pos++;
    } else {
        for (;;) {
            if (p->pos >= p->len || p->s[p->pos] != '"')
                return unexpected(p, p->pos, "'\"' to start a member name");
            if (grow((void **)&p->keys, &p->cap_keys, p->nkeys + 1, sizeof *p->keys))
                return nomem(p);
            struct pending_key *k = &p->keys[p->nkeys];
            size_t key_at = k->at = p->pos;
            rc = read_string(p, &k->key, &k->len);
            if (rc)
                return rc;
            /* Member names are looked up as C strings (json_get, json_key_at):
             * a name holding U+0000 could never be found, so refuse it. */
            if (memchr(k->key, 0, k->len))
                return fail(p, key_at, "member name contains \\u0000");
            p->nkeys++;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':')
                return unexpected(p, p->pos, "':' after a member name");
            p->pos++;
            rc = parse_value(p);
            if (rc)
                return rc;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == '}') {
                p->pos++;
                break;
            }
            if (p->pos >= p->len || p->s[p->pos] != ',')
                return unexpected(p, p->pos, "',' or '}' after an object member");
            size_t comma = p->pos++;
            skip_ws(p);
            if (p->pos < p->len && p->s[p->pos] == '}')
                return fail(p, comma, "trailing comma before '}'; remove it");
        }
    }
    struct json_value obj = {.type = JSON_OBJECT, .n = (uint32_t)(p->nvals - vbase)};
    if (obj.n > 1 && (rc = check_duplicates(p, p->keys + kbase, obj.n)))
        return rc;
    if (obj.n) {
        struct json_member *m = arena_alloc(p->doc, obj.n * sizeof *m, alignof(struct json_member));
        if (!m)
            return nomem(p);
        for (size_t i = 0; i < obj.n; i++) {
            m[i].key = p->keys[kbase + i].key;
            m[i].key_len = p->keys[kbase + i].len;
            m[i].value = p->vals[vbase + i];
        }
        obj.u.members = m;
    }
    p->nvals = vbase;
    p->nkeys = kbase;
    p->depth--;
    return push_value(p, obj);
}

/* Parses one value at pos (after whitespace) and pushes it. */
static int parse_value(struct parser *p)
{
    skip_ws(p);
    if (p->pos >= p->len)
        return unexpected(p, p->pos, "a value");
    struct json_value v = {.type = JSON_NULL};
    int rc;
    unsigned char c = p->s[p->pos];
    if (c == '[')
        return parse_array(p);
    if (c == '{')
        return parse_object(p);
    if (c == '"') {
        size_t n = 0;
        v.type = JSON_STRING;
        rc = read_string(p, &v.u.str, &n);
        v.n = (uint32_t)n;
    } else if (c == '-' || is_digit(c)) {
        v.type = JSON_NUMBER;
        rc = read_number(p, &v.u.number);
    } else {
        rc = read_literal(p, &v);
    }
    return rc ? rc : push_value(p, v);
}

int json_parse(struct json **out, const char *text, size_t len, char *errbuf, size_t errbuf_size)
{
    if (errbuf && errbuf_size)
        errbuf[0] = 0;
    if (!out || (!text && len))
        return err_set(errbuf, errbuf_size, HARK_E_INVAL, "json_parse: out and text are required");
    *out = NULL;
    if (len > JSON_MAX_LEN)
        return err_set(errbuf, errbuf_size, HARK_E_LIMIT,
                       "JSON text of %zu bytes is too long; at most %zu bytes are accepted", len,
                       JSON_MAX_LEN);
    struct parser p = {
        .s = (const unsigned char *)text, .len = len, .errbuf = errbuf, .errbuf_size = errbuf_size};
    int rc = 0;
    p.doc = hark_calloc(1, sizeof *p.doc);
    if (!p.doc) {
        rc = nomem(&p);
        goto cleanup;
    }
    /* Small messages fit the first block; big ones double up from there. */
    size_t first = len * 2;
    p.doc->next_cap = first < FIRST_BLOCK_MIN   ? FIRST_BLOCK_MIN
                      : first > FIRST_BLOCK_MAX ? FIRST_BLOCK_MAX
                                                : first;
    rc = parse_value(&p);
    if (rc)
        goto cleanup;
    skip_ws(&p);
    if (p.pos < len) {
        rc = unexpected(&p, p.pos, "only whitespace after the value");
        goto cleanup;
    }
    p.doc->root = p.vals[0];
    *out = p.doc;
cleanup:
    if (rc)
        json_free(p.doc);
    hark_free(p.vals);
    hark_free(p.keys);
    hark_free(p.sorted);
    hark_free(p.scratch);
    return rc;
}

/* ------------------------------------------------------------- access */

const struct json_value *json_root(const struct json *doc)
{
    return doc ? &doc->root : NULL;
}

enum json_type json_type(const struct json_value *v)
{
    return v ? (enum json_type)v->type : JSON_NULL;
}

const struct json_value *json_get(const struct json_value *obj, const char *key)
{
    if (!obj || obj->type != JSON_OBJECT || !key)
        return NULL;
    size_t len = strlen(key);
    for (size_t i = obj->n; i-- > 0;) {
        const struct json_member *m = &obj->u.members[i];
        if (m->key_len == len && memcmp(m->key, key, len) == 0)
            return &m->value;
    }
    return NULL;
}

size_t json_len(const struct json_value *v)
{
    return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->n : 0;
}

const struct json_value *json_at(const struct json_value *arr, size_t i)
{
    return arr && arr->type == JSON_ARRAY && i < arr->n ? &arr->u.items[i] : NULL;
}

const char *json_key_at(const struct json_value *obj, size_t i)
{
    return obj && obj->type == JSON_OBJECT && i < obj->n ? obj->u.members[i].key : NULL;
}

const struct json_value *json_value_at(const struct json_value *obj, size_t i)
{
    return obj && obj->type == JSON_OBJECT && i < obj->n ? &obj->u.members[i].value : NULL;
}

const char *json_str(const struct json_value *v)
{
    return v && v->type == JSON_STRING ? v->u.str : NULL;
}

size_t json_str_len(const struct json_value *v)
{
    return v && v->type == JSON_STRING ? v->n : 0;
}

double json_num(const struct json_value *v)
{
    return v && v->type == JSON_NUMBER ? v->u.number : 0.0;
}

int json_bool(const struct json_value *v)
{
    return v && v->type == JSON_BOOL ? v->u.boolean : 0;
}

/* ------------------------------------------------------------- to text */

/* Integers below 2^53 are exact, so they print in full (option parsers read
 * them with strtol); anything else gets the fewest digits that read back. */
static void format_number(double v, char *tmp, size_t size)
{
    if (v == 0) {
        snprintf(tmp, size, "0"); /* also -0: a sign on zero means nothing here */
        return;
    }
    if (fabs(v) < 9007199254740992.0 && v == floor(v)) {
        snprintf(tmp, size, "%.0f", v);
        return;
    }
    locale_t old = use_c_locale();
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, size, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    restore_locale(old);
}

/* Appends n bytes at *pos, keeping room for the NUL. */
static int append(char *buf, size_t size, size_t *pos, const char *s, size_t n)
{
    if (n >= size - *pos)
        return HARK_E_LIMIT;
    memcpy(buf + *pos, s, n);
    *pos += n;
    buf[*pos] = 0;
    return 0;
}

/* A scalar's text; in_array rejects strings holding the separator. */
static int scalar_text(const struct json_value *v, int in_array, char *buf, size_t size,
                       size_t *pos)
{
    char tmp[40];
    switch (v->type) {
    case JSON_STRING:
        if (memchr(v->u.str, 0, v->n) || (in_array && memchr(v->u.str, ',', v->n)))
            return HARK_E_BAD_OPTION;
        return append(buf, size, pos, v->u.str, v->n);
    case JSON_NUMBER:
        format_number(v->u.number, tmp, sizeof tmp);
        return append(buf, size, pos, tmp, strlen(tmp));
    case JSON_BOOL:
        return v->u.boolean ? append(buf, size, pos, "true", 4)
                            : append(buf, size, pos, "false", 5);
    default:
        return HARK_E_BAD_OPTION;
    }
}

int json_to_text(const struct json_value *v, char *buf, size_t size)
{
    if (!buf || !size)
        return buf ? HARK_E_LIMIT : HARK_E_INVAL;
    buf[0] = 0;
    if (!v)
        return HARK_E_BAD_OPTION;
    size_t pos = 0;
    int rc = 0;
    if (v->type == JSON_ARRAY) {
        for (size_t i = 0; i < v->n && !rc; i++) {
            if (i)
                rc = append(buf, size, &pos, ",", 1);
            if (!rc)
                rc = scalar_text(&v->u.items[i], 1, buf, size, &pos);
        }
    } else {
        rc = scalar_text(v, 0, buf, size, &pos);
    }
    if (rc)
        buf[0] = 0;
    return rc;
}
