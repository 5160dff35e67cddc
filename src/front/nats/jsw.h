/*
 * `hark worker --jetstream` (docs/nats.md "JetStream"): the seed's input
 * subjects captured in a JetStream stream, consumed per partition by the
 * worker that holds the partition's lease (lease.h), acknowledged only as
 * far as finals cover the audio, and continued by another worker when this
 * one dies.
 *
 *   clients --core publish--> {in}.{id}  (nats-server maps it to {in}.{P}.{id}
 *                                         when partitions > 1)
 *   stream hark_{in} (file, work queue) --durable consumer hark_p{P}-->
 *   the lease holder: natsw_feed --> sessions --> results on {out}.{id}
 *
 * Per session it holds the input messages the session took and acks them
 * when a final's committed_ms covers their audio (jsheld.h). Each session's
 * results carry the partition's owner_epoch (the lease's claim revision,
 * lease.h), larger with each new owner, so clients drop a previous owner's
 * late results (docs/nats.md). At the session's start and before
 * every batch of results it writes the session's record (jsrec.h) to the
 * KV bucket hark_sessions_{in}, so a worker that takes over knows the next
 * sequence and segment and where the unacknowledged audio begins. A
 * taking-over worker deletes and re-creates the partition's consumer: a
 * work-queue stream keeps exactly the unacknowledged messages, so they are
 * delivered again at once (no AckWait) and replayed into fresh sessions
 * that continue the numbering and clock.
 *
 * Threads: one nats.c delivery thread per owned partition calls natsw_feed;
 * natsw's pump calls the batch hook; the lease thread gains and loses
 * partitions; until the set-up (jsset.h) first succeeds, a set-up thread
 * retries it and then starts the lease thread (any thread may ask
 * natsw_not_ready meanwhile). One mutex guards the session table and the partitions; it is
 * taken before natsw's own lock, never after.
 */
#ifndef HARK_FRONT_NATS_JSW_H
#define HARK_FRONT_NATS_JSW_H

#include <stddef.h>
#include <stdint.h>

#include "base/metrics.h"

struct natsw;
struct jsw;

struct jsw_cfg {
    const char *subject_in; /* the natsw's input prefix */
    int partitions;         /* 1: {in}.* without a subject mapping */
    int lease_ttl_ms;
    int64_t max_bytes; /* stream limit: oldest unacknowledged input dropped past it */
    int max_age_s;     /* stream and session records */
    int replicas;      /* of the stream and both buckets (a nats-server cluster) */
    struct metrics *metrics;
};

/* Sets nw's hooks, creates (or binds) the stream and the buckets (jsset.h),
 * checks the subject mapping and starts leasing. nw must be created with
 * external_input; it need not be connected: whatever fails (no server yet,
 * JetStream not up, a wrong mapping) is retried in the background from
 * 0.25 s doubling to 5 s, and natsw_not_ready says why until leasing runs.
 * jsw is then owned by nw: natsw_destroy destroys it. Fails only for a bad
 * cfg or no memory; err gets the detail. */
int jsw_create(struct jsw **out, struct natsw *nw, const struct jsw_cfg *cfg, char *err, size_t n);

#endif
