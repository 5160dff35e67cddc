/*
 * The JetStream objects of `hark worker --jetstream`; see jsset.h.
 */
#include "front/nats/jsset.h"

#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "front/nats/jsrec.h"
#include "front/nats/lease.h"

/* ------------------------------------------------------------ names */

/* Stream and bucket names from the input prefix: "ai.voice.stream" ->
 * "hark_ai_voice_stream" (JetStream names allow no dots). */
static void name_of(const char *prefix, const char *subj, char *out, size_t n)
{
    size_t o = (size_t)snprintf(out, n, "%s", prefix);
    for (const char *p = subj; *p && o + 1 < n; p++)
        out[o++] = (*p == '.' || *p == '*' || *p == '>' || *p == ' ') ? '_' : *p;
    out[o] = 0;
}

void jsset_names(const char *subject_in, struct jsset_names *out)
{
    name_of("hark_", subject_in, out->stream, sizeof out->stream);
    name_of("hark_leases_", subject_in, out->leases, sizeof out->leases);
    name_of("hark_sessions_", subject_in, out->records, sizeof out->records);
}

/* ------------------------------------------------------------ set-up */

int jsset_fail(char *err, size_t n, const char *what, natsStatus st, jsErrCode je)
{
    natsStatus last = NATS_OK;
    const char *text = nats_GetLastError(&last);
    return err_set(err, n, HARK_E_IO,
                   "%s: %s (JetStream error %d%s%s; is nats-server running with -js, and is its "
                   "max_file_store larger than --jetstream-max-mb, which the stream reserves?)",
                   what, natsStatus_GetText(st), (int)je, text ? ": " : "", text ? text : "");
}

int jsset_stream(jsCtx *js, const char *stream, const char *subject_in, int partitions,
                 int64_t max_bytes, int max_age_s, int replicas, char *err, size_t n)
{
    char subj[300];
    if (partitions > 1)
        snprintf(subj, sizeof subj, "%s.*.*", subject_in);
    else
        snprintf(subj, sizeof subj, "%s.*", subject_in);
    const char *subjects[] = {subj};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    sc.Retention = js_WorkQueuePolicy;
    sc.Discard = js_DiscardOld;
    sc.MaxBytes = max_bytes;
    sc.MaxAge = (int64_t)max_age_s * 1000000000;
    sc.Replicas = replicas;
    jsErrCode je = 0;
    jsStreamInfo *si = NULL;
    natsStatus st = js_AddStream(&si, js, &sc, NULL, &je);
    if (st != NATS_OK) {
        /* it exists with other limits (or subjects): take this worker's */
        jsStreamInfo_Destroy(si);
        si = NULL;
        st = js_UpdateStream(&si, js, &sc, NULL, &je);
    }
    jsStreamInfo_Destroy(si);
    if (st != NATS_OK)
        return jsset_fail(err, n, "cannot create the JetStream stream", st, je);
    return 0;
}

int jsset_bucket(jsCtx *js, kvStore **kv, const char *bucket, int64_t ttl_ns, int replicas,
                 char *err, size_t n)
{
    if (js_KeyValue(kv, js, bucket) == NATS_OK)
        return 0;
    kvConfig kc;
    kvConfig_Init(&kc);
    kc.Bucket = bucket;
    kc.History = 1;
    kc.TTL = ttl_ns;
    kc.StorageType = js_FileStorage;
    kc.Replicas = replicas;
    natsStatus st = js_CreateKeyValue(kv, js, &kc);
    if (st != NATS_OK && js_KeyValue(kv, js, bucket) != NATS_OK) /* a worker raced us */
        return jsset_fail(err, n, "cannot create the key-value bucket", st, 0);
    return 0;
}

/* Publishes a few probe inputs on {in}.{id} as a client would and checks
 * where the server put them: in this stream, under {in}.{P}.{id} with P one
 * of the partitions the workers read. Without this check a missing
 * mapping loses every session silently (its input matches no stream). */
/* nats-server's partition(n, k) hashes the wildcard token with 32-bit
 * FNV-1a (checked against nats-server 2.9 here: 50 ids of 50 on a mapping to
 * 7 partitions). */
static uint32_t fnv1a32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

int jsset_probe(jsCtx *js, const char *stream, const char *subject_in, int partitions,
                const char *instance, int *mapping, char *err, size_t n)
{
    const char *in = subject_in;
    int parts = partitions;
    *mapping = 0;
    int warned = 0;
    for (int i = 0; i < (parts > 1 ? JSSET_PROBES : 1); i++) {
        char id[160], subject[400];
        snprintf(id, sizeof id, "hark-probe-%s-%d", instance, i);
        snprintf(subject, sizeof subject, "%s.%s", in, id);
        natsMsg *m = NULL;
        jsPubAck *pa = NULL;
        jsErrCode je = 0;
        natsStatus st = natsMsg_Create(&m, subject, NULL, "", 0);
        if (st == NATS_OK)
            st = natsMsgHeader_Set(m, JSSET_PROBE_HEADER, "1");
        if (st == NATS_OK)
            st = js_PublishMsg(&pa, js, m, NULL, &je);
        natsMsg_Destroy(m);
        if (st == NATS_NO_RESPONDERS) {
            *mapping = 1;
            if (parts > 1)
                return err_set(err, n, HARK_E_INVAL,
                               "input published on %s.{session_id} reaches no stream: nats-server "
                               "needs the subject mapping \"%s.*\": "
                               "\"%s.{{partition(%d,1)}}.{{wildcard(1)}}\" for "
                               "--jetstream-partitions %d (docs/deployment.md)",
                               in, in, in, parts, parts);
            return err_set(err, n, HARK_E_INVAL,
                           "input published on %s.{session_id} reaches no stream: nats-server "
                           "maps %s.* elsewhere (a partition mapping?); start the workers with "
                           "--jetstream-partitions as in the mapping, or remove it",
                           in, in);
        }
        if (st != NATS_OK)
            return jsset_fail(err, n, "cannot publish a probe input", st, je);
        uint64_t seq = pa->Sequence;
        int other = strcmp(pa->Stream, stream) != 0;
        jsPubAck_Destroy(pa);
        if (other) /* cannot be: streams may not overlap; say so rather than guess */
            return err_set(err, n, HARK_E_INVAL, "input on %s lands in another stream", subject);
        natsMsg *got = NULL;
        if (parts < 2 || js_GetMsg(&got, js, stream, seq, NULL, &je) != NATS_OK)
            continue; /* one partition, or taken by its owner already: it was stored */
        const char *subj = natsMsg_GetSubject(got);
        size_t inlen = strlen(in);
        const char *p = !strncmp(subj, in, inlen) && subj[inlen] == '.' ? subj + inlen + 1 : "";
        char *after = NULL;
        long part = strtol(p, &after, 10);
        int ok = after != p && *after == '.' && part >= 0 && part < parts;
        if (ok && !warned && (uint32_t)part != fnv1a32(id) % (uint32_t)parts) {
            /* in range, but not where partition(parts,1) puts it: the
             * mapping has another count (fewer partitions: some stay
             * empty; more: the other probes will likely land outside) */
            LOG_WARN(NULL,
                     "nats-server maps %s to partition %ld, but partition(%d,1) gives %u: the "
                     "mapping's partition count seems to differ from --jetstream-partitions %d",
                     subject, part, parts, (unsigned)(fnv1a32(id) % (uint32_t)parts), parts);
            warned = 1;
        }
        char shown[400];
        snprintf(shown, sizeof shown, "%s", subj);
        natsMsg_Destroy(got);
        /* not left for a consumer: one in a partition nobody reads would
         * stay until max-age, 8 more at each check */
        js_DeleteMsg(js, stream, seq, NULL, &je);
        if (!ok) {
            *mapping = 1;
            return err_set(err, n, HARK_E_INVAL,
                           "nats-server maps %s to %s, but the workers read partitions 0..%d "
                           "(--jetstream-partitions %d): input of some sessions would land where "
                           "no worker reads; make the mapping's partition(N,1) and "
                           "--jetstream-partitions agree",
                           subject, shown, parts - 1, parts);
        }
    }
    return 0;
}

/* ------------------------------------------------------------ hark cluster */

static int print_partitions(jsCtx *js, const struct jsset_names *nm, kvStore *kv, FILE *f)
{
    jsStreamInfo *si = NULL;
    jsErrCode je = 0;
    if (js_GetStreamInfo(&si, js, nm->stream, NULL, &je) == NATS_OK) {
        fprintf(f, "stream %s: %llu message(s), %llu bytes of input not yet in finals\n",
                nm->stream, (unsigned long long)si->State.Msgs,
                (unsigned long long)si->State.Bytes);
        jsStreamInfo_Destroy(si);
    } else {
        fprintf(f, "stream %s: none (no worker ran with --jetstream here yet)\n", nm->stream);
    }
    fprintf(f, "%-10s %-32s %10s %12s\n", "partition", "owner", "pending", "unacked");
    int shown = 0;
    for (int p = 0; p < LEASE_MAX_PARTITIONS; p++) {
        char key[16], durable[32];
        snprintf(key, sizeof key, "p%d", p);
        snprintf(durable, sizeof durable, "hark_p%d", p);
        kvEntry *e = NULL;
        int owned = kvStore_Get(&e, kv, key) == NATS_OK;
        jsConsumerInfo *ci = NULL;
        int consumer = js_GetConsumerInfo(&ci, js, nm->stream, durable, NULL, &je) == NATS_OK;
        if (!owned && !consumer) {
            if (p >= 8 && !shown)
                break;
            continue;
        }
        shown++;
        char owner[64];
        snprintf(owner, sizeof owner, "%.*s", owned ? kvEntry_ValueLen(e) : 0,
                 owned ? (const char *)kvEntry_Value(e) : "");
        fprintf(f, "%-10d %-32s %10llu %12lld\n", p, owned ? owner : "(none: lease expired)",
                consumer ? (unsigned long long)ci->NumPending : 0ULL,
                consumer ? (long long)ci->NumAckPending : 0LL);
        kvEntry_Destroy(e);
        jsConsumerInfo_Destroy(ci);
    }
    return shown;
}

int jsset_print_cluster(const char *url, const char *subject_in, FILE *f, char *err, size_t n)
{
    struct jsset_names nm;
    jsset_names(subject_in, &nm);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    kvStore *leases = NULL, *records = NULL;
    int rc = 0;
    natsStatus st = natsConnection_ConnectTo(&nc, url);
    if (st != NATS_OK) {
        rc = err_set(err, n, HARK_E_IO, "cannot connect to %s: %s", url, natsStatus_GetText(st));
        goto out;
    }
    if ((st = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK ||
        (st = js_KeyValue(&leases, js, nm.leases)) != NATS_OK) {
        rc = err_set(err, n, HARK_E_IO,
                     "no lease bucket %s at %s (%s): no worker ran with "
                     "--jetstream and --nats-subject-in %s",
                     nm.leases, url, natsStatus_GetText(st), subject_in);
        goto out;
    }
    print_partitions(js, &nm, leases, f);
    kvKeysList keys;
    memset(&keys, 0, sizeof keys);
    fprintf(f, "workers:");
    if (kvStore_Keys(&keys, leases, NULL) == NATS_OK) {
        for (int i = 0; i < keys.Count; i++)
            if (!strncmp(keys.Keys[i], "w.", 2))
                fprintf(f, " %s", keys.Keys[i] + 2);
        kvKeysList_Destroy(&keys);
    }
    fprintf(f, "\n");
    int open = 0, closed = 0;
    if (js_KeyValue(&records, js, nm.records) == NATS_OK &&
        kvStore_Keys(&keys, records, NULL) == NATS_OK) {
        for (int i = 0; i < keys.Count; i++) {
            kvEntry *e = NULL;
            struct jsrec r;
            if (kvStore_Get(&e, records, keys.Keys[i]) == NATS_OK &&
                !jsrec_parse(&r, kvEntry_Value(e), (size_t)kvEntry_ValueLen(e)))
                r.closed ? closed++ : open++;
            kvEntry_Destroy(e);
        }
        kvKeysList_Destroy(&keys);
    }
    fprintf(f, "sessions: %d open, %d closed (records in %s)\n", open, closed, nm.records);
out:
    kvStore_Destroy(leases);
    kvStore_Destroy(records);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}
