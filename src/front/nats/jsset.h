/*
 * The JetStream objects `hark worker --jetstream` uses (docs/nats.md
 * "JetStream", docs/deployment.md): their names, their creation, the check
 * that the server's subject mapping sends input where the workers read it,
 * and their read-out for `hark cluster`. jsw.c runs the set-up (retried until
 * it works) and then the workers; this file holds no state.
 *
 * Threads: any; each call uses only its arguments (the jsCtx as nats.c
 * allows: one at a time per context).
 */
#ifndef HARK_FRONT_NATS_JSSET_H
#define HARK_FRONT_NATS_JSSET_H

#include <nats/nats.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The names the workers of subject_in use. */
struct jsset_names {
    char stream[200], leases[220], records[220];
};
void jsset_names(const char *subject_in, struct jsset_names *out);

/* A probe input (jsset_probe) carries this header: the partition's owner
 * acknowledges and drops it, it never becomes a session. */
#define JSSET_PROBE_HEADER "Hark-Probe"
/* Probe ids per mapping check: a mapping to M partitions while the workers
 * read P < M shows in one of them with probability 1 - (P/M)^8. */
#define JSSET_PROBES 8

/* err gets "what: status (JetStream error N: detail; hint)"; returns HARK_E_IO. */
int jsset_fail(char *err, size_t n, const char *what, natsStatus st, jsErrCode je);
/* Creates the input stream, or updates an existing one to these limits. */
int jsset_stream(jsCtx *js, const char *stream, const char *subject_in, int partitions,
                 int64_t max_bytes, int max_age_s, int replicas, char *err, size_t n);
/* Binds bucket into *kv, creating it when missing (another worker may race). */
int jsset_bucket(jsCtx *js, kvStore **kv, const char *bucket, int64_t ttl_ns, int replicas,
                 char *err, size_t n);
/* Publishes probe inputs on {subject_in}.{id} as a client would and checks
 * that the server stored them in stream, under {subject_in}.{P}.{id} with P
 * in 0..partitions-1 (or {subject_in}.{id} with one partition). 0; or an
 * error with *mapping = 1 when the mapping is missing or wrong (the detail
 * names the mapping expected), *mapping = 0 when the server did not answer. */
int jsset_probe(jsCtx *js, const char *stream, const char *subject_in, int partitions,
                const char *instance, int *mapping, char *err, size_t n);

/* `hark cluster`: prints the ownership table (partition, owner, the
 * consumer's pending and unacknowledged input), the live workers and the
 * session records to f. 0, or an error with the detail in err. */
int jsset_print_cluster(const char *url, const char *subject_in, FILE *f, char *err, size_t n);

#endif
