/* libFuzzer target for the transcript record codec (src/front/proto/
 * transcript.c): records are taken from arbitrary bytes, then the
 * transcript is answered in every response format of every batch API.
 *
 * Input: records, each a little-endian 16-bit length and that many bytes.
 * Whatever the bytes: transcript_take returns 0, 1 (an error record, its
 * message NUL-terminated) or HARK_E_PROTOCOL, never reads past a record,
 * keeps every word inside the words array and every text offset inside
 * the strings; the responses are well formed (batch_fuzz.h). */
#include "batch_fuzz.h"

static const char *const requests[] = {
    "audio/wav\n\n\n",
    "audio/wav\n\nutterances=true&utt_split=0.05\n",
    "multipart/form-data; boundary=x\n\x02\n\nresponse_format=json",
    "multipart/form-data; boundary=x\n\x02\n\nresponse_format=text",
    "multipart/form-data; boundary=x\n\x02\n\nresponse_format=srt",
    "multipart/form-data; boundary=x\n\x02\n\nresponse_format=vtt",
    "multipart/form-data; boundary=x\n\x02\n\nresponse_format=verbose_json\ntemperature=0.5",
    "multipart/form-data; boundary=x\n\x02\n\nstream=true",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct transcript t;
    transcript_init(&t);
    while (size >= 2) {
        size_t len = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2;
        size -= 2;
        if (len > size)
            len = size;
        /* a copy of exactly the record, so ASan sees any read past it */
        uint8_t *rec = malloc(len ? len : 1);
        CHECK(rec);
        memcpy(rec, data, len);
        int code = 0;
        char msg[64];
        int rc = transcript_take(&t, rec, len, &code, msg, sizeof msg);
        CHECK(rc == 0 || rc == 1 || rc == HARK_E_PROTOCOL);
        if (rc == 1)
            CHECK(memchr(msg, 0, sizeof msg));
        free(rec);
        data += len;
        size -= len;
    }
    for (size_t i = 0; i < t.n_segs; i++) {
        CHECK(t.segs[i].w0 + t.segs[i].nw <= t.n_words);
        CHECK(t.segs[i].text < t.strs.len);
    }
    for (size_t i = 0; i < t.n_words; i++)
        CHECK(t.words[i].text < t.strs.len);
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        const struct batchapi *api = i < 2 ? &batchapi_deepgram : &batchapi_openai;
        CHECK(fuzz_batch(api, (const uint8_t *)requests[i], strlen(requests[i]), &t) == 0);
    }
    transcript_deinit(&t);
    return 0;
}
