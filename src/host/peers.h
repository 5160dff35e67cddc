/*
 * Per-address slots (--max-connections-per-ip): how many connections,
 * batch uploads and sessions each client address holds, and how many of
 * those are detached sessions waiting for a resume (a client at its limit
 * because of its own detached sessions may still come in to resume one).
 * Transport-neutral: an address is the front end's text form of it; the
 * front end finds it (a dual-stack socket's ::ffff:a.b.c.d is one IPv4
 * client).
 *
 * Ownership: a slot taken with peers_acquire is given back with
 * peers_release on the same address text.
 * Threads: none inside; one owner (the front end's I/O thread).
 */
#ifndef HARK_HOST_PEERS_H
#define HARK_HOST_PEERS_H

#include <stddef.h>

#define PEERS_ADDR_MAX 48 /* an address's text, NUL included */

struct peer_slots {
    char addr[PEERS_ADDR_MAX];
    int n;       /* connections and sessions holding a slot */
    int waiting; /* of those, detached sessions waiting for a resume */
};

struct peers {
    int max;                 /* slots per address (0 = no limit: nothing counted) */
    struct peer_slots *slot; /* addresses holding slots */
    size_t n, cap;
};

void peers_init(struct peers *p, int max);
void peers_deinit(struct peers *p);
/* Take a slot for addr: 0 with *counted 1 (give it back), or 0 with
 * *counted 0 (not counted: no limit, no address, or out of memory, which
 * lets the client in rather than refusing it), or HARK_E_LIMIT with why
 * when addr holds every slot. */
int peers_acquire(struct peers *p, const char *addr, int *counted, char *why, size_t n);
void peers_release(struct peers *p, const char *addr);
/* A session of addr detached (+1) or stopped waiting (-1). */
void peers_wait(struct peers *p, const char *addr, int delta);
/* addr has detached sessions waiting for a resume. */
int peers_waiting(const struct peers *p, const char *addr);

#endif
