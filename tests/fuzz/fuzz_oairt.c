/* libFuzzer target for the OpenAI Realtime transcription dialect's parser
 * (src/front/proto/oairt.c): a client's text message (JSON events, base64
 * audio). Whatever it is: it parses to a known kind; an invalid one has a
 * code and a reason; decoded audio is at most 3/4 of the input; an update's
 * settings map to session options or a message naming the field; the
 * session and error renderers write one JSON object. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "front/proto/oairt.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void check_json(const struct buf *b)
{
    struct json *doc = NULL;
    CHECK(b->oom || json_parse(&doc, b->data, b->len, NULL, 0) == 0);
    json_free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct oairt_config cur;
    oairt_config_init(&cur);
    struct oairt_in in;
    struct buf audio, b;
    buf_init(&audio);
    buf_init(&b);
    oairt_parse((const char *)data, size, &cur, &in, &audio);
    CHECK(in.type >= OAIRT_UPDATE && in.type <= OAIRT_INVALID);
    if (in.type == OAIRT_INVALID)
        CHECK(in.code[0] && in.why[0]);
    CHECK(audio.len <= size / 4 * 3);
    if (in.type == OAIRT_UPDATE) {
        struct hark_options *o = NULL;
        char err[400] = "";
        if (hark_options_create(&o) == 0) {
            if (oairt_options(&in.cfg, o, err, sizeof err))
                CHECK(err[0]);
            hark_options_destroy(o);
        }
        oairt_render_session(&b, "session.updated", "event_1", "sess_x", &in.cfg, in.beta);
        check_json(&b);
    }
    buf_reset(&b);
    oairt_render_error(&b, "event_2", "invalid_request_error", in.code, in.why, in.param,
                       in.event_id);
    check_json(&b);
    buf_deinit(&b);
    buf_deinit(&audio);
    return 0;
}
