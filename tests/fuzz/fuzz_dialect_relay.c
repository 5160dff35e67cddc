/* libFuzzer target for seed 002's relay dialect (src/front/proto/relay.c):
 * the query of /ws/transcribe, its text controls and binary audio, and its
 * rendering of events, driven as dialect_fuzz.h describes. */
#define _GNU_SOURCE
#include "dialect_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_dialect(&dialect_relay, "/ws/transcribe", data, size);
}
