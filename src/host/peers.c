/*
 * Per-address slots (peers.h). A linear table: it holds only addresses
 * with slots taken, and the limit exists to keep one address from holding
 * many, so it stays short.
 */
#include "host/peers.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/mem.h"

void peers_init(struct peers *p, int max)
{
    memset(p, 0, sizeof *p);
    p->max = max;
}

void peers_deinit(struct peers *p)
{
    hark_free(p->slot);
    memset(p, 0, sizeof *p);
}

static struct peer_slots *find(const struct peers *p, const char *addr)
{
    for (size_t i = 0; i < p->n; i++)
        if (!strcmp(p->slot[i].addr, addr))
            return &p->slot[i];
    return NULL;
}

int peers_acquire(struct peers *p, const char *addr, int *counted, char *why, size_t n)
{
    *counted = 0;
    if (p->max <= 0 || !addr[0] || strlen(addr) >= PEERS_ADDR_MAX)
        return 0;
    struct peer_slots *s = find(p, addr);
    if (s && s->n >= p->max)
        return err_set(why, n, HARK_E_LIMIT, "too many connections from %s (max %d); retry later",
                       addr, p->max);
    if (!s) {
        if (p->n == p->cap) {
            size_t cap = p->cap ? 2 * p->cap : 16;
            struct peer_slots *t = hark_realloc(p->slot, cap * sizeof *t);
            if (!t)
                return 0; /* not counted rather than refused */
            p->slot = t;
            p->cap = cap;
        }
        s = &p->slot[p->n++];
        snprintf(s->addr, sizeof s->addr, "%s", addr);
        s->n = 0;
        s->waiting = 0;
    }
    s->n++;
    *counted = 1;
    return 0;
}

void peers_release(struct peers *p, const char *addr)
{
    struct peer_slots *s = addr[0] ? find(p, addr) : NULL;
    if (s && --s->n <= 0)
        *s = p->slot[--p->n];
}

void peers_wait(struct peers *p, const char *addr, int delta)
{
    struct peer_slots *s = addr[0] ? find(p, addr) : NULL;
    if (s)
        s->waiting += delta;
}

int peers_waiting(const struct peers *p, const char *addr)
{
    const struct peer_slots *s = addr[0] ? find(p, addr) : NULL;
    return s && s->waiting > 0;
}
