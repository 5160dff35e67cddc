/* The engine-neutral stream pool (src/engines/pool.c): keys preferred in
 * order (same, clean, new, victim), bounded waits, slots given back on a
 * failed create, broken items unlinked on put, a waiter woken by a put. */
#include <pthread.h>

#include "base/clock.h"
#include "check.h"
#include "engines/pool.h"
#include "hark/hark.h"

struct stream {
    struct pool_item item;
    char key[16];
};

static struct stream *make(struct pool *p, const char *key)
{
    struct stream *s = calloc(1, sizeof *s);
    ASSERT(s);
    snprintf(s->key, sizeof s->key, "%s", key);
    s->item.key = s->key;
    pool_add(p, &s->item);
    return s;
}

static void test_order_and_victim(void)
{
    struct pool p;
    pool_init(&p, 2);
    struct pool_grant g;
    ASSERT_OK(pool_take(&p, "", 0, &g));
    ASSERT(g.create && !g.item && !g.victim && g.id == 1);
    struct stream *a = make(&p, "");
    ASSERT_OK(pool_take(&p, "w1", 0, &g));
    ASSERT(g.create && g.id == 2);
    struct stream *b = make(&p, "w1");
    /* full, all busy: no wait means busy */
    ASSERT_EQ(pool_take(&p, "", 0, &g), HARK_E_BUSY);
    ASSERT_EQ(pool_put(&p, &a->item), 0);
    ASSERT_EQ(pool_put(&p, &b->item), 0);
    /* same key first, then clean */
    ASSERT_OK(pool_take(&p, "w1", 0, &g));
    ASSERT(g.item == &b->item && !g.create);
    ASSERT_OK(pool_take(&p, "w2", 0, &g));
    ASSERT(g.item == &a->item); /* clean, before a victim */
    pool_put(&p, &a->item);
    pool_put(&p, &b->item);
    a->item.key = strcpy(a->key, "w3"); /* now both carry words */
    /* pool full, nothing with the key or clean: an idle item is the victim */
    ASSERT_OK(pool_take(&p, "w4", 0, &g));
    ASSERT(g.create && g.victim && !g.item);
    struct stream *victim = (struct stream *)g.victim;
    free(victim);
    struct stream *c = make(&p, "w4");
    unsigned n, busy;
    pool_counts(&p, &n, &busy);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(busy, 1);
    /* broken: unlinked on put, its slot free for a new one */
    c->item.broken = 1;
    ASSERT_EQ(pool_put(&p, &c->item), 1);
    free(c);
    pool_counts(&p, &n, &busy);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(busy, 0);
    ASSERT_OK(pool_take(&p, "w5", 0, &g));
    ASSERT(g.create && !g.victim);
    pool_cancel(&p); /* the create failed: the slot goes back */
    pool_counts(&p, &n, &busy);
    ASSERT_EQ(n, 1);
    ASSERT_EQ(busy, 0);
    for (struct pool_item *it; (it = pool_pop(&p));)
        free(it);
    pool_deinit(&p);
}

struct putter {
    struct pool *p;
    struct pool_item *it;
};

static void *put_later(void *arg)
{
    struct putter *pt = arg;
    struct timespec d = {0, 100 * 1000000L};
    nanosleep(&d, NULL);
    pool_put(pt->p, pt->it);
    return NULL;
}

static void test_waits(void)
{
    struct pool p;
    pool_init(&p, 1);
    struct pool_grant g;
    ASSERT_OK(pool_take(&p, "", 0, &g));
    struct stream *a = make(&p, "");
    int64_t t0 = clock_mono_ns();
    ASSERT_EQ(pool_take(&p, "", 150, &g), HARK_E_BUSY);
    ASSERT_GE(clock_mono_ns() - t0, 140 * 1000000LL);
    /* a put wakes a waiter */
    struct putter pt = {&p, &a->item};
    pthread_t th;
    ASSERT_EQ(pthread_create(&th, NULL, put_later, &pt), 0);
    ASSERT_OK(pool_take(&p, "", 10000, &g));
    ASSERT(g.item == &a->item);
    pthread_join(th, NULL);
    pool_put(&p, &a->item);
    free(pool_pop(&p));
    ASSERT(!pool_pop(&p));
    pool_deinit(&p);
}

int main(void)
{
    RUN(test_order_and_victim);
    RUN(test_waits);
    return 0;
}
