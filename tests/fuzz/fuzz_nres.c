/* libFuzzer target for the gateway's result parser (front/nats/nres.h):
 * untrusted msgpack on {nats-subject-out}.* (anyone allowed to publish there
 * reaches `hark serve --backend`). Arbitrary bytes are parsed; checked:
 *   - the outcome is 0 or a protocol error with a message, never a crash,
 *     hang or large allocation (ASan's allocator limit catches those);
 *   - a parsed message is self-consistent: its text and every word are
 *     NUL-terminated strings inside the arena, the word count is bounded,
 *     an error always has a code;
 *   - the gateway's own renders of parsed values are messages the worker's
 *     parser (nmsg) accepts. */
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "front/nats/nmsg.h"
#include "front/nats/nres.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct nres r;
    char err[300];
    err[0] = 0;
    int rc = nres_parse(&r, data, size, err, sizeof err);
    if (rc) {
        CHECK(rc == HARK_E_PROTOCOL || rc == HARK_E_NOMEM);
        CHECK(err[0]);
        nres_free(&r);
        return 0;
    }
    CHECK(r.text && strlen(r.text) <= NRES_TEXT_MAX);
    CHECK(r.n_words <= NRES_WORDS_MAX);
    for (size_t i = 0; i < r.n_words; i++)
        CHECK(r.words[i].word && strlen(r.words[i].word) <= NRES_TEXT_MAX);
    if (r.kind == NRES_ERROR)
        CHECK(r.code < 0);
    CHECK(memchr(r.session_id, 0, sizeof r.session_id));

    struct buf b;
    struct nmsg_in m;
    buf_init(&b);
    const char *kv[] = {"language", r.text, "ack", "true", NULL};
    nres_render_start(&b, r.session_id[0] ? r.session_id : "x", 16000, 1, HARK_STATE_LISTENING,
                      r.code_name, strlen(r.text) < 4000 ? kv : NULL);
    if (!b.oom && nmsg_parse(&m, b.data, b.len, err, sizeof err) == 0)
        nmsg_free(&m);
    else
        CHECK(b.oom || strlen(r.code_name) >= NMSG_SPEAKER_MAX || strlen(r.session_id) >= 64);
    buf_reset(&b);
    nres_render_chunk(&b, r.text, strlen(r.text), r.start);
    if (!b.oom) {
        CHECK(nmsg_parse(&m, b.data, b.len, err, sizeof err) == 0);
        nmsg_free(&m);
    }
    buf_deinit(&b);
    nres_free(&r);
    return 0;
}
