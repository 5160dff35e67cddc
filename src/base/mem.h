/* The one allocator indirection. Every allocation in hark goes through these,
 * so tests can check that nothing leaks (mem_outstanding) and inject failures.
 * Thread-safe. */
#ifndef HARK_BASE_MEM_H
#define HARK_BASE_MEM_H

#include <stddef.h>

void *hark_malloc(size_t n);
void *hark_calloc(size_t count, size_t n);
void *hark_realloc(void *p, size_t n);
void hark_free(void *p);
char *hark_strdup(const char *s);
char *hark_strndup(const char *s, size_t n);

/* Makes the array at *(T **)pp hold at least `need` elements of `elem`
 * bytes; *cap counts elements. Grows geometrically (at least doubling), so
 * appending one piece at a time stays linear. Returns 0, or -1 when out of
 * memory (the array and *cap are then unchanged). */
int mem_grow(void *pp, size_t *cap, size_t need, size_t elem);

/* Allocations made and not yet freed through this module. */
long mem_outstanding(void);
/* Make the n-th allocation from now fail (0 = off); for torture tests. */
void mem_fail_after(long n);

#endif
