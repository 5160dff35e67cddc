/* libFuzzer target for the native dialect (src/front/proto/native.c): the
 * config, resume and control messages of /v1/stream and its rendering of
 * events, driven as dialect_fuzz.h describes. */
#define _GNU_SOURCE
#include "dialect_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_dialect(&dialect_native, "/v1/stream", data, size);
}
