/*
 * Small msgpack-c helpers shared by the NATS modules that render and parse
 * msgpack (nmsg.c: seed 004's messages; nres.c: a worker's results as the
 * gateway reads them; gwtake.c: the gateways' hand-over messages).
 *
 * Pure functions, no state: any thread. The readers take objects msgpack-c
 * has unpacked from bytes the caller validated first (mpk_validate, which
 * every parser runs on untrusted bytes before msgpack-c sees them); they
 * only check type and range and never allocate.
 */
#ifndef HARK_FRONT_NATS_MPK_H
#define HARK_FRONT_NATS_MPK_H

#include <msgpack.h>
#include <stddef.h>

/* msgpack_packer's write callback into a struct buf (base/buf.h); -1 once
 * the buffer ran out of memory. */
int mpk_buf_sink(void *buf, const char *p, size_t n);
/* A C string as a msgpack str. */
void mpk_pack_str(msgpack_packer *pk, const char *s);

/* 1 if k is the str name. */
int mpk_key_is(const msgpack_object *k, const char *name);
/* Any msgpack number as a double: 0, or -1 for another type, NaN or an
 * infinity. */
int mpk_num(const msgpack_object *o, double *out);
/* Any msgpack number within a float's range (a confidence): 0, or -1 as
 * mpk_num, or beyond the range (converting it would be undefined). */
int mpk_float(const msgpack_object *o, float *out);
/* A msgpack boolean: 0, or -1 for another type. */
int mpk_bool(const msgpack_object *o, int *out);

/* Deepest nesting mpk_validate can check (its stack of counts). */
#define MPK_DEPTH_LIMIT 16

/* 0 when data is exactly one msgpack object nested at most max_depth deep
 * (capped at MPK_DEPTH_LIMIT) with at most max_objects objects, every length
 * within the bytes; else HARK_E_PROTOCOL with the reason and byte offset.
 * Linear in len, no allocation: msgpack-c's unpacker allocates per object
 * it is told about, so an array header claiming 2^32 items must be refused
 * here first. */
int mpk_validate(const void *data, size_t len, int max_depth, size_t max_objects, char *err,
                 size_t errlen);

#endif
