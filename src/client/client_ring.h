/* The client's audio ring: a fixed-size window onto the byte stream the
 * client was given, addressed by absolute offsets from the first byte ever
 * queued (so a server's "I hold N bytes" maps straight onto it). Holds
 * [base, end); pushing past the capacity is the caller's decision (drop the
 * oldest or wait), made before the push. Not thread-safe: the client guards
 * it with its mutex. */
#ifndef HARK_CLIENT_CLIENT_RING_H
#define HARK_CLIENT_CLIENT_RING_H

#include <stddef.h>
#include <stdint.h>

struct client_ring {
    uint8_t *data;
    size_t cap;
    uint64_t base; /* oldest byte held */
    uint64_t end;  /* one past the newest: total bytes ever pushed */
};

/* 0 or HARK_E_NOMEM / HARK_E_INVAL (cap 0). */
int client_ring_init(struct client_ring *r, size_t cap);
void client_ring_deinit(struct client_ring *r);

/* Free space: cap - (end - base). */
size_t client_ring_room(const struct client_ring *r);
/* Appends n <= room bytes; returns how many were appended (min(n, room)). */
size_t client_ring_push(struct client_ring *r, const void *p, size_t n);
/* Forgets everything before off (never moves base backwards or past end).
 * Returns the new base. */
uint64_t client_ring_release(struct client_ring *r, uint64_t off);
/* Copies up to max bytes starting at absolute offset off (base <= off <=
 * end) into out; returns the count (0 when off is outside the ring). */
size_t client_ring_copy(const struct client_ring *r, uint64_t off, void *out, size_t max);

#endif
