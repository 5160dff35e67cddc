/* libFuzzer target for the Deepgram dialect (src/front/proto/dglive.c):
 * the query of /v1/listen, its text controls and binary audio, its refusal
 * body and its rendering of events, driven as dialect_fuzz.h describes. */
#define _GNU_SOURCE
#include "dialect_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_dialect(&dialect_deepgram, "/v1/listen", data, size);
}
