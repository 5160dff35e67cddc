/* A pool of expensive engine streams (see pool.h). Split out of the
 * PocketSphinx engine, unchanged in behaviour, so other local engines with
 * heavy per-stream state can share it. */
#include "engines/pool.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "hark/hark.h"

void pool_init(struct pool *p, unsigned max)
{
    memset(p, 0, sizeof *p);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, &attr);
    pthread_condattr_destroy(&attr);
    p->max = max;
}

void pool_deinit(struct pool *p)
{
    pthread_cond_destroy(&p->freed);
    pthread_mutex_destroy(&p->lock);
}

static void unlink_item(struct pool *p, struct pool_item *it)
{
    for (struct pool_item **pp = &p->items; *pp; pp = &(*pp)->next)
        if (*pp == it) {
            *pp = it->next;
            return;
        }
}

int pool_take(struct pool *p, const char *key, int wait_ms, struct pool_grant *out)
{
    memset(out, 0, sizeof *out);
    struct timespec deadline = clock_deadline(CLOCK_MONOTONIC, (int64_t)wait_ms * 1000000);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        struct pool_item *same = NULL, *clean = NULL, *dirty = NULL;
        for (struct pool_item *it = p->items; it; it = it->next) {
            if (it->busy)
                continue;
            if (!same && strcmp(it->key, key) == 0)
                same = it;
            else if (!clean && !*it->key)
                clean = it;
            else if (!dirty)
                dirty = it;
        }
        struct pool_item *s = same ? same : clean;
        if (s) {
            s->busy = 1;
            p->n_busy++;
            out->item = s;
            break;
        }
        if (p->n_items < p->max || dirty) {
            /* Reserve a slot, or take over the slot of an item carrying
             * another key while leaving those for their owner when there
             * is room. The new stream is built outside the pool lock. */
            if (p->n_items < p->max) {
                p->n_items++;
            } else {
                out->victim = dirty;
                unlink_item(p, dirty);
            }
            p->n_busy++;
            out->create = 1;
            out->id = ++p->next_id;
            break;
        }
        int w = 0;
        if (wait_ms == 0)
            w = ETIMEDOUT;
        else if (wait_ms < 0)
            w = pthread_cond_wait(&p->freed, &p->lock);
        else
            w = pthread_cond_timedwait(&p->freed, &p->lock, &deadline);
        if (w == ETIMEDOUT) {
            pthread_mutex_unlock(&p->lock);
            return HARK_E_BUSY;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return 0;
}

void pool_add(struct pool *p, struct pool_item *it)
{
    it->busy = 1;
    pthread_mutex_lock(&p->lock);
    it->next = p->items;
    p->items = it;
    pthread_mutex_unlock(&p->lock);
}

void pool_add_idle(struct pool *p, struct pool_item *it)
{
    it->busy = 0;
    pthread_mutex_lock(&p->lock);
    it->next = p->items;
    p->items = it;
    p->n_items++;
    p->next_id++;
    pthread_mutex_unlock(&p->lock);
}

void pool_cancel(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->n_items--;
    p->n_busy--;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void pool_drop(struct pool *p, struct pool_item *it)
{
    pthread_mutex_lock(&p->lock);
    unlink_item(p, it);
    p->n_items--;
    p->n_busy--;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

int pool_put(struct pool *p, struct pool_item *it)
{
    pthread_mutex_lock(&p->lock);
    int destroy = it->broken;
    if (destroy) {
        unlink_item(p, it);
        p->n_items--;
    }
    it->busy = 0;
    p->n_busy--;
    pthread_cond_broadcast(&p->freed);
    pthread_mutex_unlock(&p->lock);
    return destroy;
}

struct pool_item *pool_pop(struct pool *p)
{
    pthread_mutex_lock(&p->lock);
    struct pool_item *it = p->items;
    if (it)
        p->items = it->next;
    pthread_mutex_unlock(&p->lock);
    return it;
}

void pool_counts(struct pool *p, unsigned *items, unsigned *busy)
{
    pthread_mutex_lock(&p->lock);
    *items = p->n_items;
    *busy = p->n_busy;
    pthread_mutex_unlock(&p->lock);
}
