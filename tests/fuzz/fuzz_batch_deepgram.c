/* libFuzzer target for the Deepgram pre-recorded API's request parsing
 * (src/front/proto/dgbatch.c): Content-Type, framing and query -> session
 * options or a refusal in Deepgram's error shape. See batch_fuzz.h. */
#include "batch_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct transcript t;
    transcript_init(&t);
    fuzz_batch(&batchapi_deepgram, data, size, &t);
    transcript_deinit(&t);
    return 0;
}
