/* libFuzzer target for the OpenAI transcription API's request parsing
 * (src/front/proto/oabatch.c): Content-Type and form fields -> session
 * options or a refusal in OpenAI's error shape. See batch_fuzz.h. */
#include "batch_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct transcript t;
    transcript_init(&t);
    fuzz_batch(&batchapi_openai, data, size, &t);
    transcript_deinit(&t);
    return 0;
}
