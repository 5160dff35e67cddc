/*
 * A pool of engine streams that are expensive to create (a PocketSphinx
 * decoder: ~250 ms and ~50 MB), shared by the sessions of one loaded model:
 * an idle stream is handed out, another is created while the pool has room,
 * and a caller waits (bounded) when all are busy. Engine-neutral: a stream
 * embeds a struct pool_item; the engine creates and destroys streams, the
 * pool decides which one a caller gets and when it may make one.
 *
 * Keys: a stream may carry state that only some callers can use (a decoder
 * with a session's added words). pool_take prefers an idle item with the
 * caller's key, then a clean one (key ""); when the pool is full but an idle
 * item carries another key, that item is handed back as a victim for the
 * caller to destroy and replace, so no caller waits while a stream it could
 * rebuild sits idle.
 *
 * Threads: every call is thread-safe (one mutex per pool). An item is used
 * by one thread at a time, between pool_take and pool_put. Streams are made
 * and destroyed outside the pool lock.
 */
#ifndef HARK_ENGINES_POOL_H
#define HARK_ENGINES_POOL_H

#include <pthread.h>

struct pool_item {
    struct pool_item *next; /* in pool.items */
    const char *key;        /* owned by the engine's stream; "" = clean */
    int busy;
    int broken; /* set by the engine: pool_put unlinks it for destruction */
};

struct pool {
    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t freed; /* an item was put back or a slot given back */
    struct pool_item *items;
    unsigned max;
    unsigned n_items; /* live items + slots reserved for ones being created */
    unsigned n_busy;  /* handed out, or reserved for a caller */
    unsigned next_id;
};

void pool_init(struct pool *p, unsigned max);
/* Items still linked are the caller's to destroy first (pool_first/pool_unlink). */
void pool_deinit(struct pool *p);

/* What pool_take decided. */
struct pool_grant {
    struct pool_item *item;   /* an idle item, now busy; or NULL: */
    int create;               /* make a new stream (a slot is reserved), then pool_add */
    unsigned id;              /* with create: a number for its log lines */
    struct pool_item *victim; /* with create: unlinked idle item to destroy first, or NULL */
};

/* wait_ms: 0 = don't wait, -1 = forever. 0, or HARK_E_BUSY when no item or
 * slot became free in time. */
int pool_take(struct pool *p, const char *key, int wait_ms, struct pool_grant *out);
/* A created stream joins the pool, busy (after pool_take's create). */
void pool_add(struct pool *p, struct pool_item *it);
/* The stream of a create could not be made: its slot goes back. */
void pool_cancel(struct pool *p);
/* A busy item leaves the pool for good (the engine destroys it). */
void pool_drop(struct pool *p, struct pool_item *it);
/* Hands a busy item back. Returns 1 when it is broken: it was unlinked and
 * the caller destroys it. */
int pool_put(struct pool *p, struct pool_item *it);
/* Adds an idle item at load (pool_min). */
void pool_add_idle(struct pool *p, struct pool_item *it);
/* Unlinks and returns any item (for the engine's teardown), or NULL. */
struct pool_item *pool_pop(struct pool *p);
void pool_counts(struct pool *p, unsigned *items, unsigned *busy);

#endif
