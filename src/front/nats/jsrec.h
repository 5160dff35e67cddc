/*
 * The JetStream session record (docs/nats.md "JetStream"): what a worker
 * that takes over a session must know to continue it exactly where the
 * published results stopped. The owner writes it to the KV bucket
 * hark_sessions when it takes the session's start and before each batch of
 * results it publishes (jsw.c), so a record is never behind what clients
 * got and a session handed over before its first result is known as live.
 *
 * The value is one line of text, "hark-js1 seq=N seg=N ab=N as=N st=N cl=N":
 *   seq  the next result's sequence     seg  finals published
 *   ab   audio bytes acknowledged (all covered by finals)
 *   as   stream sequence of the last acknowledged audio message; once
 *        closed, of the session's last input message (input of the id past
 *        it is a new session under the same id)
 *   st   turn state at the last final (1 = responding)
 *   cl   1 once the session's closed message went out
 * Text rather than msgpack: 60 bytes, readable with `nats kv get`.
 *
 * Pure functions, no global state: thread-safe. jsrec_parse reads bytes
 * from the network (the KV bucket) and is fuzzed (tests/fuzz/fuzz_jsrec.c).
 */
#ifndef HARK_FRONT_NATS_JSREC_H
#define HARK_FRONT_NATS_JSREC_H

#include <stddef.h>
#include <stdint.h>

struct jsrec {
    uint64_t seq;
    int64_t seg;
    int64_t acked_bytes;
    uint64_t acked_sseq;
    int responding;
    int closed;
};

#define JSREC_MAX 160     /* longest rendered record, NUL included */
#define JSREC_KEY_MAX 200 /* longest key of a session id (NMSG_ID_MAX - 1 bytes, x3) */

/* Renders r into out (JSREC_MAX bytes); returns the length. */
size_t jsrec_format(const struct jsrec *r, char *out);
/* 0, or -1 when data is not exactly a record this version writes. */
int jsrec_parse(struct jsrec *r, const void *data, size_t len);
/* A session id as a KV key: [-_a-zA-Z0-9] as is, any other byte "=XX".
 * Returns 0, or -1 when it does not fit in n bytes. */
int jsrec_key(const char *id, char *out, size_t n);
/* From a rendered NATS final (nmsg_render_result, our own output): its
 * committed_ms and whether its state is "responding". 0, or -1 when the
 * message has no committed_ms. */
int jsrec_peek_final(const void *data, size_t len, int64_t *committed_ms, int *responding);

#endif
