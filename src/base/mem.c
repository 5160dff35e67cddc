#include "base/mem.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static atomic_long outstanding;
static atomic_long fail_countdown;

static int should_fail(void)
{
    long n = atomic_load(&fail_countdown);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&fail_countdown, &n, n - 1))
            return n == 1;
    }
    return 0;
}

void *hark_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    void *p = malloc(n ? n : 1);
    if (p)
        atomic_fetch_add(&outstanding, 1);
    return p;
}

void *hark_calloc(size_t count, size_t n)
{
    if (should_fail())
        return NULL;
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (p)
        atomic_fetch_add(&outstanding, 1);
    return p;
}

void *hark_realloc(void *p, size_t n)
{
    if (!p)
        return hark_malloc(n);
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

int mem_grow(void *pp, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap * 2 > need ? *cap * 2 : need;
    if (elem && n > SIZE_MAX / elem)
        return -1;
    void *old; /* memcpy: the array's pointer type is the caller's */
    memcpy(&old, pp, sizeof old);
    void *p = hark_realloc(old, n * elem);
    if (!p)
        return -1;
    memcpy(pp, &p, sizeof p);
    *cap = n;
    return 0;
}

void hark_free(void *p)
{
    if (p) {
        atomic_fetch_sub(&outstanding, 1);
        free(p);
    }
}

char *hark_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = hark_malloc(len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = 0;
    }
    return d;
}

char *hark_strdup(const char *s)
{
    return hark_strndup(s, (size_t)-1);
}

long mem_outstanding(void)
{
    return atomic_load(&outstanding);
}

void mem_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}
