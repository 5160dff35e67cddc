/* libFuzzer target for the Soniox dialect (src/front/proto/soniox.c): the
 * configuration message of /transcribe-websocket, its controls and audio,
 * its refusal body and its rendering of events (tokens), driven as
 * dialect_fuzz.h describes. */
#define _GNU_SOURCE
#include "dialect_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_dialect(&dialect_soniox, "/transcribe-websocket", data, size);
}
