/*
 * JetStream input for `hark worker --jetstream`; see jsw.h for the design
 * and docs/nats.md "JetStream" for what clients see.
 */
#include "front/nats/jsw.h"

#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/nats/jsheld.h"
#include "front/nats/jsrec.h"
#include "front/nats/jsset.h"
#include "front/nats/lease.h"
#include "front/nats/natsw.h"
#include "front/nats/nmsg.h"
#include "host/chan.h"

/* Redelivery to a live owner (a message held longer than this) is harmless:
 * the owner drops the copy by its stream sequence. Hand-off does not wait for
 * it (the new owner re-creates the consumer), so it only bounds how often a
 * long utterance's held audio comes again. */
#define ACK_WAIT_S 60
/* Unacknowledged messages per partition the server lets out; past that it
 * waits for acks (the backpressure of a worker far behind). 20 sessions of
 * 30 s utterances in 100 ms chunks hold 6000. */
#define MAX_ACK_PENDING 65536

struct jsess {
    char id[NMSG_ID_MAX];
    char subject[JSREC_KEY_MAX + 240]; /* $KV.{bucket}.{key} of its record */
    int part;
    double bps;       /* raw audio bytes per second; 0: a container (held to the end) */
    uint64_t skip_to; /* resumed: input up to this stream sequence is in finals already */
    uint64_t max_sseq;
    struct jsrec rec;
    int64_t committed;   /* bytes covered by finals */
    int64_t progress_at; /* monotonic ns of the last InProgress for the held input */
    /* its input not yet in finals; held.bytes: session audio bytes so far
     * (from the record's ab when resumed) */
    struct jsheld_list held;
    struct jsheld *acking; /* taken off the list by the batch hook, acked after publishing */
    struct jsess *next;
};

struct jpart {
    struct jsw *j;
    int index;
    int owned;
    uint64_t epoch; /* the lease's claim revision (lease.h gained): results' owner_epoch */
    natsSubscription *sub;
    int sessions;
    struct metric *m_owned, *m_sessions, *m_lag, *m_redelivered, *m_handoffs, *m_expired;
};

struct jsw {
    struct jsw_cfg cfg;
    struct natsw *nw;
    natsConnection *nc;
    jsCtx *js;
    /* The lease thread's context: its requests wait at most the lease
     * margin (lease_wait_ms), so a stalled connection costs a renewal round
     * one short wait, not the 5 s of the other requests (which left the
     * loss of a lease unnoticed for 5-10 s after its deadline). */
    jsCtx *jsl;
    kvStore *leases, *records;
    struct lease *lease;
    char stream[200], leases_bucket[220], records_bucket[220];
    char instance[120];
    pthread_mutex_t mu;
    struct jsess *all; /* a list: tens of sessions per worker, one lookup per message */
    struct jpart *parts;
    int stopping; /* under mu: the setup thread gives up, no lease is created */
    /* Set-up (stream, buckets, mapping probe) retried until it works, so a
     * worker may start before nats-server (or before its JetStream is up). */
    pthread_t setup;
    int setup_started;
    pthread_cond_t setup_cv;
    atomic_int ready;          /* 1 once leasing runs */
    atomic_int mapping_broken; /* the last probe found the subject mapping wrong */
    struct metric *m_held, *m_workers, *m_partitions;
};

/* ------------------------------------------------------------ sessions */

static struct jsess *find(struct jsw *j, const char *id)
{
    for (struct jsess *s = j->all; s; s = s->next)
        if (!strcmp(s->id, id))
            return s;
    return NULL;
}

static void hold(struct jsw *j, struct jsess *s, natsMsg *msg, uint64_t sseq, enum jsheld_kind kind,
                 size_t audio_len)
{
    if (jsheld_push(&s->held, msg, sseq, kind, audio_len)) {
        /* cannot keep it: ack now rather than leak (at worst not replayed) */
        natsMsg_Ack(msg, NULL);
        natsMsg_Destroy(msg);
        return;
    }
    metrics_add(j->m_held, 1);
}

/* Unlinks s (under j->mu); its held input is dropped unacknowledged when
 * ack is 0 (another worker continues from it), acknowledged when 1. */
static void sess_remove(struct jsw *j, struct jsess *s, int ack)
{
    for (struct jsess **p = &j->all; *p; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    metrics_add(j->m_held, -(double)(jsheld_count(s->held.head) + jsheld_count(s->acking)));
    jsheld_free(s->held.head, ack);
    jsheld_free(s->acking, ack);
    struct jpart *pt = &j->parts[s->part];
    pt->sessions--;
    metrics_set(pt->m_sessions, pt->sessions);
    hark_free(s);
}

/* ------------------------------------------------------------ input */

static void ack_drop(natsMsg *msg)
{
    natsMsg_Ack(msg, NULL);
    natsMsg_Destroy(msg);
}

static enum jsheld_kind kind_of(int type)
{
    switch (type) {
    case NMSG_START:
        return JSHELD_START;
    case NMSG_STATE_CHANGE:
    case NMSG_FINALIZE: /* controls at a point of the audio: replayed in place */
        return JSHELD_STATE;
    case NMSG_END:
        return JSHELD_END;
    default:
        return JSHELD_CHUNK;
    }
}

/* A session this worker does not run: new, or another worker's until now
 * (its record says how far that one got). Under j->mu. */
static void first_message(struct jsw *j, struct jpart *pt, const char *id, natsMsg *msg,
                          uint64_t sseq, const struct jsrec *rec)
{
    if (rec && rec->closed) {
        /* Input up to the closed session's last message is its own, left
         * unacknowledged by a worker that died right after the closed went
         * out. Later input is a new session under the same id (a client
         * may reuse an id once it got the closed): it starts afresh, as
         * without JetStream; anything but a start gets the typed error of
         * a message for an ended session. */
        if (!sseq || sseq <= rec->acked_sseq) {
            ack_drop(msg);
            return;
        }
        rec = NULL;
    }
    struct natsw_resume rs = {0};
    if (rec) {
        rs.sequence = rec->seq;
        rs.segments = rec->seg;
        rs.offset_bytes = rec->acked_bytes;
        rs.responding = rec->responding;
    }
    struct natsw_fed fed;
    int n = natsMsg_GetDataLength(msg);
    natsw_feed(j->nw, id, natsMsg_GetData(msg), n > 0 ? (size_t)n : 0, pt->epoch, rec ? &rs : NULL,
               &fed);
    if (!fed.accepted || fed.type != NMSG_START) {
        ack_drop(msg); /* its error went to the client; nothing to replay */
        return;
    }
    struct jsess *s = hark_calloc(1, sizeof *s);
    char key[JSREC_KEY_MAX];
    if (!s || jsrec_key(id, key, sizeof key)) {
        hark_free(s);
        natsw_abandon(j->nw, id);
        ack_drop(msg);
        return;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    snprintf(s->subject, sizeof s->subject, "$KV.%s.%s", j->records_bucket, key);
    s->part = pt->index;
    s->bps = fed.bytes_per_sec;
    s->max_sseq = sseq;
    if (rec) {
        s->rec = *rec;
        s->held.bytes = s->committed = rec->acked_bytes;
        s->skip_to = rec->acked_sseq;
        metrics_inc(pt->m_handoffs);
    } else {
        /* The record exists from the start on, not only from the first
         * results: a session handed over before it had any (SIGTERM 0.6 s
         * into it) was otherwise new to the taker, admitted by load rather
         * than as a live session, refused busy and its input acked away, so
         * the client never got its closed (test_jetstream_elastic). */
        char line[JSREC_MAX];
        size_t len = jsrec_format(&s->rec, line);
        natsConnection_Publish(j->nc, s->subject, line, (int)len);
    }
    s->next = j->all;
    j->all = s;
    pt->sessions++;
    metrics_set(pt->m_sessions, pt->sessions);
    hold(j, s, msg, sseq, JSHELD_START, 0);
}

static void on_js_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    struct jpart *pt = closure;
    struct jsw *j = pt->j;
    const char *probe = NULL;
    if (natsMsgHeader_Get(msg, JSSET_PROBE_HEADER, &probe) == NATS_OK) {
        ack_drop(msg); /* a worker's mapping check (jsset_probe), no session's */
        return;
    }
    const char *subject = natsMsg_GetSubject(msg);
    const char *dot = strrchr(subject, '.');
    const char *id = dot ? dot + 1 : subject;
    uint64_t sseq = 0;
    jsMsgMetaData *md = NULL;
    if (natsMsg_GetMetaData(&md, msg) == NATS_OK) {
        sseq = md->Sequence.Stream;
        if (md->NumDelivered > 1)
            metrics_inc(pt->m_redelivered);
        metrics_set(pt->m_lag, (double)md->NumPending);
        jsMsgMetaData_Destroy(md);
    }
    pthread_mutex_lock(&j->mu);
    if (!pt->owned || (pt->sub && pt->sub != sub)) { /* fenced: not ours any more */
        pthread_mutex_unlock(&j->mu);
        natsMsg_Destroy(msg);
        return;
    }
    struct jsess *s = find(j, id);
    if (s) {
        if (sseq && sseq <= s->skip_to) {
            ack_drop(msg); /* in finals the previous owner published */
        } else if (sseq && sseq <= s->max_sseq) {
            natsMsg_Destroy(msg); /* redelivered while held here: the held copy gets the ack */
        } else {
            s->max_sseq = sseq;
            struct natsw_fed fed;
            int n = natsMsg_GetDataLength(msg);
            natsw_feed(j->nw, id, natsMsg_GetData(msg), n > 0 ? (size_t)n : 0, 0, NULL, &fed);
            if (fed.accepted && fed.type != NMSG_KEEPALIVE)
                hold(j, s, msg, sseq, kind_of(fed.type), fed.audio_len);
            else
                ack_drop(msg); /* refused (its error went out), or no effect to replay */
        }
        pthread_mutex_unlock(&j->mu);
        return;
    }
    pthread_mutex_unlock(&j->mu);
    /* Not running here: ask the bucket whether another worker ran it (one
     * round trip per new session, on this partition's thread only). */
    struct jsrec rec;
    int have = 0;
    char key[JSREC_KEY_MAX];
    kvEntry *e = NULL;
    if (!jsrec_key(id, key, sizeof key) && kvStore_Get(&e, j->records, key) == NATS_OK) {
        have = !jsrec_parse(&rec, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e));
        if (!have)
            LOG_WARN(id, "session record in %s is not one this version wrote; starting afresh",
                     j->records_bucket);
        kvEntry_Destroy(e);
    }
    pthread_mutex_lock(&j->mu);
    if (!pt->owned)
        natsMsg_Destroy(msg);
    else
        first_message(j, pt, id, msg, sseq, have ? &rec : NULL);
    pthread_mutex_unlock(&j->mu);
}

/* ------------------------------------------------------------ output (pump) */

/* Before a batch is published: count it into the record, take the input
 * the finals now cover off the held list, and write the record, so that it
 * is on the wire before the results and the acks. After: send the acks. */
static void on_batch(void *user, const char *id, const struct chan_msg *msgs, int after)
{
    struct jsw *j = user;
    pthread_mutex_lock(&j->mu);
    struct jsess *s = find(j, id);
    if (!s) {
        pthread_mutex_unlock(&j->mu);
        return;
    }
    if (after) {
        struct jsheld *a = s->acking;
        s->acking = NULL;
        metrics_add(j->m_held, -(double)jsheld_count(a));
        jsheld_free(a, 1);
        if (s->rec.closed)
            sess_remove(j, s, 1);
        pthread_mutex_unlock(&j->mu);
        return;
    }
    int changed = 0;
    for (const struct chan_msg *m = msgs; m; m = m->next) {
        if (!m->len)
            continue;
        if (m->flags & (MSG_PARTIAL | MSG_FINAL)) {
            s->rec.seq++;
            changed = 1;
        }
        if (m->flags & MSG_FINAL) {
            s->rec.seg++;
            int64_t ms;
            int responding;
            if (!jsrec_peek_final(m->data, m->len, &ms, &responding)) {
                s->rec.responding = responding;
                if (s->bps > 0)
                    s->committed = (int64_t)((double)ms * s->bps / 1000.0);
            }
        }
        if (m->flags & MSG_LAST) {
            s->rec.closed = 1;
            changed = 1;
        }
    }
    const struct jsheld *last_chunk =
        jsheld_take_covered(&s->held, &s->acking, s->committed, s->bps > 0, s->rec.closed);
    if (last_chunk) {
        s->rec.acked_bytes = last_chunk->end;
        s->rec.acked_sseq = last_chunk->sseq;
        changed = 1;
    }
    if (s->rec.closed) /* all of it is acked: the id's later input is a new session */
        s->rec.acked_sseq = s->max_sseq;
    if (changed) {
        char rec[JSREC_MAX];
        size_t n = jsrec_format(&s->rec, rec);
        natsConnection_Publish(j->nc, s->subject, rec, (int)n);
    }
    pthread_mutex_unlock(&j->mu);
}

/* Lease thread, after each renewal: input held for half the ack wait (a
 * session's start and end, the audio of a long utterance) gets an
 * InProgress, so the server does not deliver it again while this worker
 * still works on it (a redelivery would be dropped here anyway, by its
 * stream sequence, but costs a message). */
static void on_tick(void *user)
{
    struct jsw *j = user;
    int64_t now = clock_mono_ns(), half = (int64_t)ACK_WAIT_S * 1000000000 / 2;
    pthread_mutex_lock(&j->mu);
    for (struct jsess *s = j->all; s; s = s->next) {
        if (!s->progress_at)
            s->progress_at = now;
        if (now - s->progress_at < half)
            continue;
        s->progress_at = now;
        for (struct jsheld *h = s->held.head; h; h = h->next)
            natsMsg_InProgress(h->msg, NULL);
    }
    pthread_mutex_unlock(&j->mu);
}

/* ------------------------------------------------------------ partitions */

static void part_filter(struct jsw *j, int part, char *out, size_t n)
{
    if (j->cfg.partitions > 1)
        snprintf(out, n, "%s.%d.*", j->cfg.subject_in, part);
    else
        snprintf(out, n, "%s.*", j->cfg.subject_in);
}

static void gained(void *user, int part, uint64_t epoch)
{
    struct jsw *j = user;
    struct jpart *pt = &j->parts[part];
    char durable[32], filter[300];
    snprintf(durable, sizeof durable, "hark_p%d", part);
    part_filter(j, part, filter, sizeof filter);
    /* A fresh consumer: the work queue holds exactly the input nobody
     * acknowledged, and a new consumer delivers it now instead of after the
     * old one's AckWait. */
    jsErrCode je = 0;
    js_DeleteConsumer(j->js, j->stream, durable, NULL, &je);
    pthread_mutex_lock(&j->mu);
    pt->owned = 1;
    pt->epoch = epoch;
    pt->sub = NULL;
    pthread_mutex_unlock(&j->mu);
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = j->stream;
    so.ManualAck = true;
    so.Config.Durable = durable;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = (int64_t)ACK_WAIT_S * 1000000000;
    so.Config.MaxAckPending = MAX_ACK_PENDING;
    so.Config.MaxDeliver = -1;
    so.Config.DeliverPolicy = js_DeliverAll;
    natsSubscription *sub = NULL;
    natsStatus st = js_Subscribe(&sub, j->js, filter, on_js_msg, pt, NULL, &so, &je);
    if (st != NATS_OK) {
        LOG_ERROR(NULL,
                  "partition %d: cannot consume %s: %s (JetStream error %d); retried at the "
                  "next renewal",
                  part, filter, natsStatus_GetText(st), (int)je);
        pthread_mutex_lock(&j->mu);
        pt->owned = 0;
        pthread_mutex_unlock(&j->mu);
        return;
    }
    natsSubscription_SetPendingLimits(sub, 65536, 64 << 20);
    pthread_mutex_lock(&j->mu);
    pt->sub = sub;
    pthread_mutex_unlock(&j->mu);
    metrics_set(pt->m_owned, 1);
    LOG_INFO(NULL, "consuming partition %d (%s) from stream %s", part, filter, j->stream);
}

static void lost(void *user, int part)
{
    struct jsw *j = user;
    struct jpart *pt = &j->parts[part];
    pthread_mutex_lock(&j->mu);
    natsSubscription *sub = pt->sub;
    pt->owned = 0;
    pt->sub = NULL;
    int n = 0;
    for (struct jsess *s = j->all, *next; s; s = next) {
        next = s->next;
        if (s->part != part)
            continue;
        natsw_abandon(j->nw, s->id);
        sess_remove(j, s, 0);
        n++;
    }
    pthread_mutex_unlock(&j->mu);
    if (sub)
        natsSubscription_Destroy(sub); /* the durable consumer stays (nats.c >= 3.4) */
    metrics_set(pt->m_owned, 0);
    LOG_INFO(NULL, "partition %d given up; %d open session(s) continue on its next owner", part, n);
}

static void expired(void *user, int part)
{
    struct jsw *j = user;
    metrics_inc(j->parts[part].m_expired);
}

/* natsw's pump, under its lock: results go out only while the connection is
 * up and every lease is surely ours. Disconnected, a publish would wait in
 * nats.c's reconnect buffer and leave on reconnect, maybe after the lease
 * expired and the next owner published the same sequence numbers from the
 * session's record (which waited in the same buffer). */
static int may_publish(void *user)
{
    struct jsw *j = user;
    if (!atomic_load(&j->ready))
        return 1; /* no lease yet, so no JetStream session either */
    return natsConnection_Status(j->nc) == NATS_CONN_STATUS_CONNECTED &&
           lease_valid(j->lease, clock_mono_ns());
}

static int idle(void *user, int part)
{
    struct jsw *j = user;
    pthread_mutex_lock(&j->mu);
    int none = j->parts[part].sessions == 0;
    pthread_mutex_unlock(&j->mu);
    return none;
}

/* ------------------------------------------------------------ lifecycle */

static void stop_setup(struct jsw *j);

static void on_draining(void *user)
{
    struct jsw *j = user;
    stop_setup(j);
    /* Hand over rather than finish: the next owner continues every open
     * session from its last final (docs/nats.md), without waiting for the
     * lease to expire. */
    lease_release_all(j->lease);
}

static void on_destroy(void *user)
{
    struct jsw *j = user;
    stop_setup(j);
    lease_release_all(j->lease);
    lease_destroy(j->lease);
    pthread_mutex_lock(&j->mu);
    while (j->all)
        sess_remove(j, j->all, 0);
    pthread_mutex_unlock(&j->mu);
    for (int p = 0; p < j->cfg.partitions; p++)
        if (j->parts[p].sub)
            natsSubscription_Destroy(j->parts[p].sub);
    kvStore_Destroy(j->leases);
    kvStore_Destroy(j->records);
    jsCtx_Destroy(j->jsl);
    jsCtx_Destroy(j->js);
    pthread_cond_destroy(&j->setup_cv);
    pthread_mutex_destroy(&j->mu);
    hark_free(j->parts);
    hark_free(j);
}

/* The lease bucket, created (or found) through the main context, then
 * opened through the lease context, whose short wait its renewals use. */
static int lease_bucket(struct jsw *j, char *err, size_t n)
{
    kvStore *kv = NULL;
    int rc = jsset_bucket(j->js, &kv, j->leases_bucket, (int64_t)j->cfg.lease_ttl_ms * 1000000,
                          j->cfg.replicas, err, n);
    kvStore_Destroy(kv);
    if (rc)
        return rc;
    natsStatus st = js_KeyValue(&j->leases, j->jsl, j->leases_bucket);
    return st == NATS_OK ? 0 : jsset_fail(err, n, "cannot open the lease bucket", st, 0);
}

/* One try of the whole set-up; 0 once leasing runs. */
static int setup_once(struct jsw *j, char *err, size_t n)
{
    if (!natsw_connected(j->nw))
        return err_set(err, n, HARK_E_IO, "not connected to NATS yet");
    const struct jsw_cfg *c = &j->cfg;
    int rc, broken = 0;
    if ((rc = jsset_stream(j->js, j->stream, c->subject_in, c->partitions, c->max_bytes,
                           c->max_age_s, c->replicas, err, n)) ||
        (!j->leases && (rc = lease_bucket(j, err, n))) ||
        (!j->records &&
         (rc = jsset_bucket(j->js, &j->records, j->records_bucket,
                            (int64_t)c->max_age_s * 1000000000, c->replicas, err, n))) ||
        (rc = jsset_probe(j->js, j->stream, c->subject_in, c->partitions, j->instance, &broken, err,
                          n))) {
        atomic_store(&j->mapping_broken, broken);
        return rc;
    }
    atomic_store(&j->mapping_broken, 0);
    struct lease_cfg lc = {
        .nc = j->nc,
        .kv = j->leases,
        .partitions = j->cfg.partitions,
        .ttl_ms = j->cfg.lease_ttl_ms,
        .instance = j->instance,
        .user = j,
        .gained = gained,
        .lost = lost,
        .idle = idle,
        .tick = on_tick,
        .expired = expired,
    };
    pthread_mutex_lock(&j->mu);
    if (j->stopping)
        rc = err_set(err, n, HARK_E_STATE, "shutting down");
    else
        rc = lease_create(&j->lease, &lc, err, n);
    pthread_mutex_unlock(&j->mu);
    if (rc)
        return rc;
    atomic_store(&j->ready, 1);
    LOG_INFO(NULL,
             "JetStream: stream %s (%s.%s), %d partition(s), leases in %s (TTL %d ms), session "
             "records in %s; worker %s",
             j->stream, j->cfg.subject_in,
             j->cfg.partitions > 1 ? "{partition}.{session_id}" : "{session_id}", j->cfg.partitions,
             j->leases_bucket, j->cfg.lease_ttl_ms, j->records_bucket, j->instance);
    return 0;
}

/* Backoff between set-up tries: from 250 ms, doubled, at most 5 s (a
 * worker started before nats-server is leasing within 5 s of the server's
 * JetStream answering; one log line per try). */
#define SETUP_FIRST_MS 250
#define SETUP_MAX_MS 5000

static void *setup_main(void *arg)
{
    struct jsw *j = arg;
    int wait_ms = SETUP_FIRST_MS;
    for (;;) {
        struct timespec until = clock_deadline(CLOCK_MONOTONIC, (int64_t)wait_ms * 1000000);
        pthread_mutex_lock(&j->mu);
        while (!j->stopping)
            if (pthread_cond_timedwait(&j->setup_cv, &j->mu, &until))
                break;
        int stop = j->stopping;
        pthread_mutex_unlock(&j->mu);
        if (stop)
            return NULL;
        char err[1024];
        int rc = setup_once(j, err, sizeof err);
        if (!rc)
            return NULL;
        wait_ms = wait_ms * 2 > SETUP_MAX_MS ? SETUP_MAX_MS : wait_ms * 2;
        if (atomic_load(&j->mapping_broken))
            LOG_ERROR(NULL, "JetStream: %s; not ready, checked again in %.2f s", err,
                      wait_ms / 1000.0);
        else
            LOG_WARN(NULL, "JetStream not set up: %s; not ready, retried in %.2f s", err,
                     wait_ms / 1000.0);
    }
}

static void stop_setup(struct jsw *j)
{
    pthread_mutex_lock(&j->mu);
    j->stopping = 1;
    pthread_cond_signal(&j->setup_cv);
    pthread_mutex_unlock(&j->mu);
    if (j->setup_started) {
        pthread_join(j->setup, NULL);
        j->setup_started = 0;
    }
}

static const char *on_not_ready(void *user)
{
    struct jsw *j = user;
    if (atomic_load(&j->ready))
        return NULL;
    return atomic_load(&j->mapping_broken)
               ? "JetStream: the NATS server's subject mapping does not match "
                 "--jetstream-partitions (see the log)\n"
               : "JetStream: the stream and buckets are not set up yet (see the log)\n";
}

int jsw_create(struct jsw **out, struct natsw *nw, const struct jsw_cfg *cfg, char *err, size_t n)
{
    *out = NULL;
    if (cfg->partitions < 1 || cfg->partitions > LEASE_MAX_PARTITIONS)
        return err_set(err, n, HARK_E_INVAL, "--jetstream-partitions must be 1..%d",
                       LEASE_MAX_PARTITIONS);
    if (cfg->lease_ttl_ms < 300)
        return err_set(err, n, HARK_E_INVAL, "--jetstream-lease-ttl must be at least 0.3 s");
    struct jsw *j = hark_calloc(1, sizeof *j);
    if (!j)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    j->cfg = *cfg;
    j->nw = nw;
    j->nc = natsw_conn(nw);
    pthread_mutex_init(&j->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->setup_cv, &ca);
    pthread_condattr_destroy(&ca);
    struct jsset_names nm;
    jsset_names(cfg->subject_in, &nm);
    memcpy(j->stream, nm.stream, sizeof j->stream);
    memcpy(j->leases_bucket, nm.leases, sizeof j->leases_bucket);
    memcpy(j->records_bucket, nm.records, sizeof j->records_bucket);
    char host[64] = "host";
    gethostname(host, sizeof host - 1);
    char raw[120];
    snprintf(raw, sizeof raw, "%s-%ld", host, (long)getpid());
    if (jsrec_key(raw, j->instance, sizeof j->instance))
        snprintf(j->instance, sizeof j->instance, "worker-%ld", (long)getpid());
    int rc = 0;
    j->parts = hark_calloc((size_t)cfg->partitions, sizeof *j->parts);
    if (!j->parts) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto fail;
    }
    struct metrics *mx = cfg->metrics;
    for (int p = 0; p < cfg->partitions; p++) {
        struct jpart *pt = &j->parts[p];
        char label[16];
        snprintf(label, sizeof label, "%d", p);
        pt->j = j;
        pt->index = p;
        pt->m_owned =
            metrics_gauge(mx, "hark_js_partition_owned",
                          "1 while this worker holds the partition's lease", "partition", label);
        pt->m_sessions =
            metrics_gauge(mx, "hark_js_partition_sessions",
                          "Open sessions of the partition on this worker", "partition", label);
        pt->m_lag = metrics_gauge(mx, "hark_js_partition_lag_messages",
                                  "Input messages of the partition in the stream not yet "
                                  "delivered to this worker (at the last delivery)",
                                  "partition", label);
        pt->m_redelivered = metrics_counter(mx, "hark_js_redeliveries_total",
                                            "Input messages delivered again (after a hand-off "
                                            "or an ack wait)",
                                            "partition", label);
        pt->m_handoffs = metrics_counter(mx, "hark_js_handoffs_total",
                                         "Sessions this worker continued from another "
                                         "worker's record",
                                         "partition", label);
        pt->m_expired = metrics_counter(mx, "hark_js_lease_expiries_total",
                                        "Leases of the partition this worker gave up because "
                                        "it could not renew them within the lease time (cut "
                                        "off from NATS, or frozen); their sessions stopped "
                                        "here unpublished and continued on the next owner",
                                        "partition", label);
    }
    j->m_held =
        metrics_gauge(mx, "hark_js_held_messages",
                      "Input messages held unacknowledged until finals cover them", NULL, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    natsStatus st = natsConnection_JetStream(&j->js, j->nc, &jo);
    if (st == NATS_OK) {
        jo.Wait = lease_wait_ms(cfg->lease_ttl_ms);
        st = natsConnection_JetStream(&j->jsl, j->nc, &jo);
    }
    if (st != NATS_OK) {
        rc = jsset_fail(err, n, "no JetStream context", st, 0);
        goto fail;
    }
    struct natsw_hooks h = {
        .user = j,
        .batch = on_batch,
        .draining = on_draining,
        .destroy = on_destroy,
        .not_ready = on_not_ready,
        .may_publish = may_publish,
    };
    /* The first try now, so that a worker whose server is up leases from
     * its start as before; any failure (no server yet, JetStream still
     * electing its leader, a wrong mapping) is retried in the background
     * and /readyz says why meanwhile. */
    natsw_set_hooks(nw, &h); /* before the first lease: input may come at once */
    char why[1024];
    if (setup_once(j, why, sizeof why)) {
        if (atomic_load(&j->mapping_broken))
            LOG_ERROR(NULL, "JetStream: %s; not ready, checked again in %.2f s", why,
                      SETUP_FIRST_MS / 1000.0);
        else
            LOG_WARN(NULL, "JetStream not set up: %s; not ready, retried in %.2f s", why,
                     SETUP_FIRST_MS / 1000.0);
        if (pthread_create(&j->setup, NULL, setup_main, j)) {
            struct natsw_hooks none = {0};
            natsw_set_hooks(nw, &none);
            rc = err_set(err, n, HARK_E_INTERNAL, "cannot start the JetStream set-up thread");
            goto fail;
        }
        j->setup_started = 1;
    }
    *out = j;
    return 0;
fail:
    lease_destroy(j->lease);
    kvStore_Destroy(j->leases);
    kvStore_Destroy(j->records);
    jsCtx_Destroy(j->jsl);
    jsCtx_Destroy(j->js);
    pthread_cond_destroy(&j->setup_cv);
    pthread_mutex_destroy(&j->mu);
    hark_free(j->parts);
    hark_free(j);
    return rc;
}
