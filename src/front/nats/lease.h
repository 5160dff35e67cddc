/*
 * Partition leases in a JetStream key-value bucket (docs/nats.md
 * "JetStream"): which `hark worker --jetstream` owns which input partition.
 *
 * The bucket's TTL is the lease time. Key "p{N}" holds the owner's instance
 * name; the owner renews it every TTL/3 with a compare-and-set update on its
 * revision, so two workers can never both renew one lease. Key "w.{name}"
 * says a worker is alive; the number of those keys sets each worker's fair
 * share, ceil(partitions / workers). A worker below its share claims free
 * partitions with a create (which fails while the key exists); a worker above
 * it releases a partition that has no open session (so a joining worker
 * disturbs nobody). A dead worker's keys expire after the TTL and the others
 * claim its partitions at their next renewal.
 *
 * Threads: one lease thread runs the renewals and calls gained/lost/idle
 * (never two at once); lease_* calls are thread-safe. A lease not renewed
 * for the TTL less a margin (TTL/5, at most 1 s; measured on the monotonic
 * clock from before the last renewal that got through) counts as lost: the
 * others may claim it from then on. While disconnected, or while its
 * requests get no answer (a stalled connection; they wait lease_wait_ms),
 * the lease thread calls lost() (after expired()) at that point; and
 * lease_valid says 0 from then on, so the output (which nats.c would
 * otherwise buffer and send on reconnect, after the next owner published
 * its own) waits, and is dropped with the sessions if the lease is lost.
 */
#ifndef HARK_FRONT_NATS_LEASE_H
#define HARK_FRONT_NATS_LEASE_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>

struct lease;

struct lease_cfg {
    natsConnection *nc; /* the bucket's connection */
    kvStore *kv;        /* the bucket; its TTL is ttl_ms; outlives the lease */
    int partitions;     /* 1..LEASE_MAX_PARTITIONS */
    int ttl_ms;
    const char *instance; /* this worker's name, a valid KV key token */
    void *user;
    /* Start consuming the partition. epoch: the lease key's revision at this
     * claim; every later claim of the partition, by any worker, has a
     * larger one (the bucket's revisions only grow). */
    void (*gained)(void *user, int part, uint64_t epoch);
    void (*lost)(void *user, int part);    /* stop consuming it, publish nothing more */
    int (*idle)(void *user, int part);     /* 1: no open session (may be released) */
    void (*tick)(void *user);              /* after each renewal (may be NULL) */
    void (*expired)(void *user, int part); /* before lost(): not renewed in time (may be NULL) */
};

#define LEASE_MAX_PARTITIONS 256

/* How long the lease thread's requests should wait for an answer (the
 * JetStream context that cfg->kv was opened with): the margin below, at
 * least 200 ms. A round that gets none holds on while the deadline allows
 * and drops the lease after it, so a stalled connection is noticed within a
 * wait of the deadline. */
int lease_wait_ms(int ttl_ms);
int lease_create(struct lease **out, const struct lease_cfg *cfg, char *err, size_t n);
/* Stops the thread, calls lost() for every held partition and deletes their
 * keys (the others take them at once, without waiting for the TTL). */
void lease_release_all(struct lease *l);
void lease_destroy(struct lease *l);
/* Partitions held now. Any thread. */
int lease_held(struct lease *l);
/* 1 while every held lease is surely still this worker's at monotonic time
 * now (no lease held: 1); 0 once one may have expired, until a renewal gets
 * through or the lease is lost (lost() ran). Any thread, lock-free. */
int lease_valid(struct lease *l, int64_t now);
/* Live workers seen at the last renewal. Any thread. */
int lease_workers(struct lease *l);

#endif
