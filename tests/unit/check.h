/* Minimal typed assertions for unit tests (libuv task.h style). Each test
 * file has a main() that calls RUN(fn) per test; a failed assertion prints
 * file:line and the values, and the process exits non-zero. Every test ends
 * with a leak check against the library's allocation counter. */
#ifndef HARK_TEST_CHECK_H
#define HARK_TEST_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"

static const char *check_current = "";

#define FAIL_(...)                                                                                 \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, check_current);                         \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c))                                                                                  \
            FAIL_("assertion failed: %s", #c);                                                     \
    } while (0)
#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            FAIL_("%s == %s: %lld != %lld", #a, #b, a_, b_);                                       \
    } while (0)
#define ASSERT_NE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_)                                                                              \
            FAIL_("%s != %s: both %lld", #a, #b, a_);                                              \
    } while (0)
#define ASSERT_GE(a, b)                                                                            \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(a_ >= b_))                                                                           \
            FAIL_("%s >= %s: %g < %g", #a, #b, a_, b_);                                            \
    } while (0)
#define ASSERT_LE(a, b)                                                                            \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(a_ <= b_))                                                                           \
            FAIL_("%s <= %s: %g > %g", #a, #b, a_, b_);                                            \
    } while (0)
#define ASSERT_OK(e)                                                                               \
    do {                                                                                           \
        long long r_ = (long long)(e);                                                             \
        if (r_ != 0)                                                                               \
            FAIL_("%s returned %lld", #e, r_);                                                     \
    } while (0)
#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            FAIL_("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");   \
    } while (0)
#define ASSERT_NEAR(a, b, eps)                                                                     \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                                 \
        if (!(fabs(a_ - b_) <= (eps)))                                                             \
            FAIL_("%s ~= %s: %g vs %g (eps %g)", #a, #b, a_, b_, (double)(eps));                   \
    } while (0)

#define RUN(fn)                                                                                    \
    do {                                                                                           \
        long before_ = mem_outstanding();                                                          \
        check_current = #fn;                                                                       \
        fn();                                                                                      \
        if (mem_outstanding() != before_)                                                          \
            FAIL_("leak: %ld allocations outstanding after test", mem_outstanding() - before_);    \
        fprintf(stderr, "ok %s\n", #fn);                                                           \
    } while (0)

/* For tests on a shared engine whose pools and caches grow on first use:
 * no per-test leak check; call CHECK_NO_LEAKS() after destroying the engine. */
#define RUN_SHARED(fn)                                                                             \
    do {                                                                                           \
        check_current = #fn;                                                                       \
        fn();                                                                                      \
        fprintf(stderr, "ok %s\n", #fn);                                                           \
    } while (0)
#define CHECK_NO_LEAKS()                                                                           \
    do {                                                                                           \
        check_current = "leak check";                                                              \
        if (mem_outstanding() != 0)                                                                \
            FAIL_("leak: %ld allocations outstanding at exit", mem_outstanding());                 \
    } while (0)

/* Directory of the pocketsphinx-testdata librivox clips. */
static inline const char *check_testdata_dir(void)
{
    const char *d = getenv("HARK_TESTDATA_DIR");
    return d ? d : "/usr/share/pocketsphinx/test/data/librivox";
}

/* Reads a whole file; caller frees with free(). NULL on error. */
static inline unsigned char *check_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc(n > 0 ? (size_t)n : 1);
    if (d && fread(d, 1, (size_t)n, f) != (size_t)n) {
        free(d);
        d = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return d;
}

#endif
