/* libFuzzer target for the AssemblyAI v3 dialect (src/front/proto/aai.c):
 * the query of /v3/ws, its text messages and binary audio, its refusal body
 * and its rendering of events, driven as dialect_fuzz.h describes. */
#define _GNU_SOURCE
#include "dialect_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_dialect(&dialect_assemblyai, "/v3/ws", data, size);
}
