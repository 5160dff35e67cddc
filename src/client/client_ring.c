#include "client/client_ring.h"

#include <string.h>

#include "base/mem.h"
#include "hark/hark.h"

int client_ring_init(struct client_ring *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    if (cap == 0)
        return HARK_E_INVAL;
    r->data = hark_malloc(cap);
    if (!r->data)
        return HARK_E_NOMEM;
    r->cap = cap;
    return 0;
}

void client_ring_deinit(struct client_ring *r)
{
    hark_free(r->data);
    memset(r, 0, sizeof *r);
}

size_t client_ring_room(const struct client_ring *r)
{
    return r->cap - (size_t)(r->end - r->base);
}

size_t client_ring_push(struct client_ring *r, const void *p, size_t n)
{
    size_t room = client_ring_room(r);
    if (n > room)
        n = room;
    const uint8_t *src = p;
    size_t done = 0;
    while (done < n) {
        size_t at = (size_t)((r->end + done) % r->cap);
        size_t k = r->cap - at < n - done ? r->cap - at : n - done;
        memcpy(r->data + at, src + done, k);
        done += k;
    }
    r->end += n;
    return n;
}

uint64_t client_ring_release(struct client_ring *r, uint64_t off)
{
    if (off > r->end)
        off = r->end;
    if (off > r->base)
        r->base = off;
    return r->base;
}

size_t client_ring_copy(const struct client_ring *r, uint64_t off, void *out, size_t max)
{
    if (off < r->base || off >= r->end)
        return 0;
    size_t n = (size_t)(r->end - off) < max ? (size_t)(r->end - off) : max;
    uint8_t *dst = out;
    size_t done = 0;
    while (done < n) {
        size_t at = (size_t)((off + done) % r->cap);
        size_t k = r->cap - at < n - done ? r->cap - at : n - done;
        memcpy(dst + done, r->data + at, k);
        done += k;
    }
    return n;
}
