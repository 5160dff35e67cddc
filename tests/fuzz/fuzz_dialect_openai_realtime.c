/* libFuzzer target for the OpenAI Realtime transcription dialect
 * (src/front/proto/oairt.c): the query of /v1/realtime, its JSON events and
 * binary messages, its refusal body and its rendering of events (several
 * messages per event), driven as dialect_fuzz.h describes. */
#define _GNU_SOURCE
#include "dialect_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_dialect(&dialect_openai_realtime, "/v1/realtime", data, size);
}
