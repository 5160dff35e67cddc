/*
 * Partition leases in a JetStream KV bucket; see lease.h.
 */
#include "front/nats/lease.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

struct lease {
    struct lease_cfg cfg;
    char *instance;
    size_t inst_len;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* lease thread only */
    uint64_t rev[LEASE_MAX_PARTITIONS];    /* 0: not held */
    int64_t renewed[LEASE_MAX_PARTITIONS]; /* monotonic ns of the last good renewal */
    atomic_int held, workers;
    /* Monotonic ns until which every held lease is surely still ours
     * (lease_valid); INT64_MAX while none is held. */
    _Atomic int64_t valid_until;
};

/* A lease is given up this long before the bucket could expire it: the
 * renewal time is taken before the request went out (the server's TTL runs
 * from when it got it, later), and another worker only claims at its next
 * renewal after the expiry; the margin covers a publish that passed the
 * lease_valid check just before the deadline. TTL/5, at most 1 s (600 ms
 * at the default 3 s). */
static int margin_ms(int ttl_ms)
{
    return ttl_ms / 5 > 1000 ? 1000 : ttl_ms / 5;
}

static int64_t margin_ns(const struct lease *l)
{
    return (int64_t)margin_ms(l->cfg.ttl_ms) * 1000000;
}

int lease_wait_ms(int ttl_ms)
{
    return margin_ms(ttl_ms) < 200 ? 200 : margin_ms(ttl_ms);
}

static int64_t deadline(const struct lease *l, int part)
{
    return l->renewed[part] + (int64_t)l->cfg.ttl_ms * 1000000 - margin_ns(l);
}

static void update_valid(struct lease *l)
{
    int64_t v = INT64_MAX;
    for (int p = 0; p < l->cfg.partitions; p++)
        if (l->rev[p] && deadline(l, p) < v)
            v = deadline(l, p);
    atomic_store(&l->valid_until, v);
}

static void key_of(int part, char *out, size_t n)
{
    snprintf(out, n, "p%d", part);
}

/* What a renewal found out. */
enum renewal {
    RENEWED,   /* ours, renewed now */
    TAKEN,     /* another worker's */
    NO_ANSWER, /* the server did not answer (within the lease context's wait) */
};

/* A request that got no answer, as opposed to one the server refused. */
static int no_answer(natsStatus st)
{
    return st == NATS_TIMEOUT || st == NATS_NO_RESPONDERS || st == NATS_CONNECTION_CLOSED ||
           st == NATS_CONNECTION_DISCONNECTED;
}

static enum renewal renew(struct lease *l, int part, int64_t now)
{
    char key[16];
    key_of(part, key, sizeof key);
    uint64_t rev = 0;
    natsStatus st =
        kvStore_Update(&rev, l->cfg.kv, key, l->instance, (int)l->inst_len, l->rev[part]);
    if (st == NATS_OK) {
        l->rev[part] = rev;
        l->renewed[part] = now;
        return RENEWED;
    }
    if (no_answer(st))
        return NO_ANSWER;
    /* Not our revision any more: expired (nobody took it: take it back) or
     * another worker's. */
    kvEntry *e = NULL;
    st = kvStore_Get(&e, l->cfg.kv, key);
    if (st == NATS_NOT_FOUND) {
        st = kvStore_Create(&rev, l->cfg.kv, key, l->instance, (int)l->inst_len);
        if (st == NATS_OK) {
            l->rev[part] = rev;
            l->renewed[part] = now;
            return RENEWED;
        }
        return no_answer(st) ? NO_ANSWER : TAKEN;
    }
    if (st == NATS_OK) {
        int ours = kvEntry_ValueLen(e) == (int)l->inst_len &&
                   !memcmp(kvEntry_Value(e), l->instance, l->inst_len);
        uint64_t r = kvEntry_Revision(e);
        kvEntry_Destroy(e);
        if (ours) {
            l->rev[part] = r;
            l->renewed[part] = now;
            return RENEWED;
        }
        return TAKEN;
    }
    return NO_ANSWER;
}

static int count_workers(struct lease *l)
{
    kvKeysList keys;
    memset(&keys, 0, sizeof keys);
    if (kvStore_Keys(&keys, l->cfg.kv, NULL) != NATS_OK)
        return -1;
    int n = 0;
    for (int i = 0; i < keys.Count; i++)
        n += !strncmp(keys.Keys[i], "w.", 2);
    kvKeysList_Destroy(&keys);
    return n;
}

/* A lease is lost: its sessions stop here (lost()). */
static void drop(struct lease *l, int part, int expired)
{
    l->rev[part] = 0;
    if (expired && l->cfg.expired)
        l->cfg.expired(l->cfg.user, part);
    l->cfg.lost(l->cfg.user, part);
}

static void tick(struct lease *l)
{
    int64_t now = clock_mono_ns();
    char key[300];
    /* Disconnected, or a request of this round got no answer (a stalled
     * connection): no renewal can get through, and each try would wait for
     * the lease context's timeout. A lease not renewed for the TTL (less the
     * margin) is lost then: another worker may take it any moment and
     * continue its sessions from their records, so this one must have
     * stopped publishing for them before (issue 14 section 3: no duplicate
     * sequence). Output is held meanwhile (lease_valid); the leases that
     * outlive the outage are renewed by the first tick after it. */
    int cut = natsConnection_Status(l->cfg.nc) != NATS_CONN_STATUS_CONNECTED;
    if (!cut) {
        snprintf(key, sizeof key, "w.%s", l->instance);
        cut = no_answer(kvStore_Put(NULL, l->cfg.kv, key, l->instance, (int)l->inst_len));
    }
    int held = 0;
    for (int p = 0; p < l->cfg.partitions; p++) {
        if (!l->rev[p])
            continue;
        enum renewal r = cut ? NO_ANSWER : renew(l, p, now);
        if (r == RENEWED) {
            held++;
            continue;
        }
        /* the clock now, not at the start of the round: requests took time */
        int64_t t = clock_mono_ns();
        if (r == NO_ANSWER) {
            cut = 1;
            if (t < deadline(l, p)) {
                held++;
                continue;
            }
            LOG_WARN(NULL,
                     "lease of partition %d lost: not renewed for %.1f s (cut off from NATS, or "
                     "no answer; lease time %.1f s): its sessions stop here, another worker "
                     "continues them",
                     p, (double)(t - l->renewed[p]) / 1e9, l->cfg.ttl_ms / 1000.0);
            drop(l, p, 1);
            continue;
        }
        LOG_WARN(NULL,
                 "lease of partition %d lost (another worker holds it): its sessions stop here", p);
        drop(l, p, t >= deadline(l, p));
    }
    if (cut) {
        update_valid(l);
        atomic_store(&l->held, held);
        return;
    }
    int w = count_workers(l);
    if (w < 1)
        w = atomic_load(&l->workers) > 0 ? atomic_load(&l->workers) : 1;
    atomic_store(&l->workers, w);
    int fair = (l->cfg.partitions + w - 1) / w;
    /* Claim from a different first partition per worker, so workers that
     * start together do not all race for p0. */
    unsigned start = 0;
    for (size_t i = 0; i < l->inst_len; i++)
        start = start * 31 + (unsigned char)l->instance[i];
    for (int i = 0; i < l->cfg.partitions && held < fair; i++) {
        int p = (int)((start + (unsigned)i) % (unsigned)l->cfg.partitions);
        if (l->rev[p])
            continue;
        key_of(p, key, sizeof key);
        uint64_t rev = 0;
        if (kvStore_Create(&rev, l->cfg.kv, key, l->instance, (int)l->inst_len) != NATS_OK)
            continue;
        l->rev[p] = rev;
        l->renewed[p] = now;
        update_valid(l);
        held++;
        LOG_INFO(NULL, "claimed partition %d (%d of %d held, %d worker(s))", p, held, fair, w);
        l->cfg.gained(l->cfg.user, p, rev);
    }
    if (held > fair) {
        /* A worker joined: give one partition with no open session away per
         * renewal, so the open ones finish where they are. */
        for (int p = 0; p < l->cfg.partitions; p++) {
            if (!l->rev[p] || !l->cfg.idle(l->cfg.user, p))
                continue;
            l->cfg.lost(l->cfg.user, p);
            key_of(p, key, sizeof key);
            kvStore_Delete(l->cfg.kv, key);
            l->rev[p] = 0;
            held--;
            LOG_INFO(NULL, "released idle partition %d to rebalance (%d worker(s), %d held)", p, w,
                     held);
            break;
        }
    }
    update_valid(l);
    atomic_store(&l->held, held);
    if (l->cfg.tick)
        l->cfg.tick(l->cfg.user);
}

static void *lease_main(void *arg)
{
    struct lease *l = arg;
    int first = 1;
    for (;;) {
        struct timespec until =
            clock_deadline(CLOCK_MONOTONIC, (int64_t)l->cfg.ttl_ms * 1000000 / 3);
        pthread_mutex_lock(&l->mu);
        while (!l->stop && !first)
            if (pthread_cond_timedwait(&l->cv, &l->mu, &until))
                break;
        int stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop)
            break;
        if (first) {
            /* Say we are here and wait one renewal before claiming: workers
             * that start together then see each other and share. */
            char key[300];
            snprintf(key, sizeof key, "w.%s", l->instance);
            kvStore_Put(NULL, l->cfg.kv, key, l->instance, (int)l->inst_len);
            first = 0;
            continue;
        }
        tick(l);
    }
    return NULL;
}

int lease_create(struct lease **out, const struct lease_cfg *cfg, char *err, size_t n)
{
    *out = NULL;
    if (cfg->partitions < 1 || cfg->partitions > LEASE_MAX_PARTITIONS || cfg->ttl_ms < 300)
        return err_set(err, n, HARK_E_INVAL, "leases: 1..%d partitions and a TTL of >= 300 ms",
                       LEASE_MAX_PARTITIONS);
    struct lease *l = hark_calloc(1, sizeof *l);
    if (!l || !(l->instance = hark_strdup(cfg->instance))) {
        hark_free(l);
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    }
    l->cfg = *cfg;
    l->inst_len = strlen(l->instance);
    atomic_store(&l->valid_until, INT64_MAX);
    pthread_mutex_init(&l->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&l->thread, NULL, lease_main, l)) {
        lease_destroy(l);
        return err_set(err, n, HARK_E_INTERNAL, "cannot start the lease thread");
    }
    l->started = 1;
    *out = l;
    return 0;
}

static void stop_thread(struct lease *l)
{
    if (!l->started)
        return;
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->started = 0;
}

void lease_release_all(struct lease *l)
{
    if (!l)
        return;
    stop_thread(l);
    char key[300];
    int released = 0;
    for (int p = 0; p < l->cfg.partitions; p++) {
        if (!l->rev[p])
            continue;
        l->cfg.lost(l->cfg.user, p);
        key_of(p, key, sizeof key);
        kvStore_Delete(l->cfg.kv, key);
        l->rev[p] = 0;
        released++;
    }
    snprintf(key, sizeof key, "w.%s", l->instance);
    kvStore_Delete(l->cfg.kv, key);
    atomic_store(&l->held, 0);
    atomic_store(&l->valid_until, INT64_MAX);
    if (released)
        LOG_INFO(NULL, "released %d partition lease(s)", released);
}

void lease_destroy(struct lease *l)
{
    if (!l)
        return;
    stop_thread(l);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    hark_free(l->instance);
    hark_free(l);
}

int lease_held(struct lease *l)
{
    return l ? atomic_load(&l->held) : 0;
}

int lease_valid(struct lease *l, int64_t now)
{
    return !l || now < atomic_load(&l->valid_until);
}

int lease_workers(struct lease *l)
{
    return l ? atomic_load(&l->workers) : 0;
}
