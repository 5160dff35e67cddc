/* libFuzzer target for the AssemblyAI v3 dialect's parsers
 * (src/front/proto/aai.c): a client's text message, and the upgrade's query
 * arguments. Input: bytes; as a message whole, and split at NUL bytes into
 * "key=value" arguments. Whatever they are: the message is one of the known
 * kinds, an invalid one with a reason; the arguments are applied or refused
 * with a message that names a parameter; a Turn rendered from the input's
 * text is one JSON object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/mem.h"
#include "front/proto/aai.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256] = "";
    enum aai_msg_type t = aai_parse_text((const char *)data, size, why, sizeof why);
    CHECK(t >= AAI_MSG_TERMINATE && t <= AAI_MSG_INVALID);
    if (t == AAI_MSG_INVALID)
        CHECK(why[0]);

    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    const char *args[64];
    size_t n = 0;
    for (size_t i = 0; i <= size && n < 64;) {
        args[n++] = copy + i;
        i += strlen(copy + i) + 1;
    }
    struct hark_options *o = NULL;
    struct aai_params p;
    char err[512] = "";
    if (hark_options_create(&o) == 0) {
        int rc = aai_apply_args(args, n, o, &p, err, sizeof err);
        if (rc)
            CHECK(err[0] && strchr(err, ':'));
        hark_options_destroy(o);
    }

    /* the input's first string as a transcript (valid UTF-8 or not: the
     * renderer escapes what it is given) */
    struct hark_word w = {copy, 0.5, 1.0, 0.5f};
    struct hark_event ev = {.type = HARK_EVENT_TRANSCRIPT,
                            .segment = 1,
                            .is_final = 1,
                            .text = copy,
                            .words = &w,
                            .n_words = 1,
                            .reason = HARK_REASON_FINALIZE};
    struct buf b;
    buf_init(&b);
    unsigned flags = 0;
    memset(&p, 0, sizeof p);
    aai_render_event(&p, &ev, 0, &b, &flags);
    CHECK(b.oom || (b.len >= 2 && b.data[0] == '{' && b.data[b.len - 1] == '}'));
    buf_deinit(&b);
    free(copy);
    return 0;
}
