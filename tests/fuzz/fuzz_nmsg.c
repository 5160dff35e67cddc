/* libFuzzer target for the NATS msgpack codec (untrusted messages on
 * ai.voice.stream.*). Arbitrary bytes are parsed; checked:
 *   - the outcome is 0 or a protocol error with a message, never a crash,
 *     hang or large allocation (ASan's allocator limit catches those);
 *   - whenever the validator accepts, msgpack-c agrees: one object that
 *     spans exactly the input (so the validator's extent logic is right);
 *   - a parsed message is self-consistent: NUL-terminated strings within
 *     their buffers, audio inside the input or in its own buffer, the fields
 *     each type requires;
 *   - everything rendered from parsed values passes the validator and
 *     unpacks again (output is always well-formed msgpack). */
#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "front/nats/nmsg.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static void check_renders(const struct nmsg_in *m)
{
    struct hark_word w = {m->speaker_id, 0.5, 1.0, 0.5f};
    struct nmsg_result r = {
        .session_id = m->session_id,
        .speaker_id = m->speaker_id,
        .transcript = m->n_extras ? m->extras[0].value : "",
        .sequence = (uint64_t)m->sample_rate,
        .is_final = 1,
        .timestamp = m->timestamp,
        .has_voice_activity = 1,
        .state = m->state,
        .segment = m->channels,
        .reason = "endpoint",
        .words = &w,
        .n_words = 1,
    };
    struct buf b;
    buf_init(&b);
    nmsg_render_result(&b, &r);
    nmsg_render_interrupt(&b, m->session_id, m->speaker_id, m->timestamp, 0);
    nmsg_render_error(&b, m->session_id, m->speaker_id, HARK_E_PROTOCOL,
                      m->n_extras ? m->extras[0].name : "x", m->timestamp);
    nmsg_render_closed(&b, m->session_id, m->speaker_id, m->timestamp, 1.0, 2);
    CHECK(!b.oom);
    /* four maps back to back: each validates and unpacks */
    size_t off = 0;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    for (int i = 0; i < 4; i++) {
        size_t before = off;
        CHECK(msgpack_unpack_next(&up, b.data, b.len, &off) == MSGPACK_UNPACK_SUCCESS);
        CHECK(up.data.type == MSGPACK_OBJECT_MAP);
        char err[256];
        CHECK(nmsg_validate(b.data + before, off - before, err, sizeof err) == 0);
    }
    CHECK(off == b.len);
    msgpack_unpacked_destroy(&up);
    buf_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char verr[512] = "", perr[512] = "";
    int vrc = nmsg_validate(data, size, verr, sizeof verr);
    CHECK(vrc == 0 || vrc == HARK_E_PROTOCOL);
    if (vrc == 0) {
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        CHECK(msgpack_unpack_next(&up, (const char *)data, size, &off) == MSGPACK_UNPACK_SUCCESS);
        CHECK(off == size);
        msgpack_unpacked_destroy(&up);
    } else {
        CHECK(verr[0]);
    }

    struct nmsg_in m;
    int rc = nmsg_parse(&m, data, size, perr, sizeof perr);
    CHECK(rc == 0 || rc == HARK_E_PROTOCOL);
    if (vrc)
        CHECK(rc == vrc && strcmp(verr, perr) == 0);
    if (rc) {
        CHECK(perr[0]);
        CHECK(m.audio_owned == NULL && m.extras == NULL);
        return 0;
    }
    CHECK(memchr(m.session_id, 0, sizeof m.session_id));
    CHECK(memchr(m.speaker_id, 0, sizeof m.speaker_id));
    CHECK(m.has_session_id || !m.session_id[0]);
    CHECK(m.n_extras <= NMSG_MAX_EXTRAS);
    CHECK(m.n_extras == 0 || m.type == NMSG_START);
    for (size_t i = 0; i < m.n_extras; i++) {
        CHECK(memchr(m.extras[i].name, 0, sizeof m.extras[i].name));
        CHECK(memchr(m.extras[i].value, 0, sizeof m.extras[i].value));
    }
    if (m.type == NMSG_CHUNK) {
        if (m.audio_owned) {
            CHECK(m.audio == m.audio_owned);
            CHECK(m.audio_len <= size); /* base64 only shrinks */
        } else if (m.audio_len) {
            CHECK(m.audio >= data && m.audio + m.audio_len <= data + size);
        }
    } else {
        CHECK(m.audio == NULL && m.audio_len == 0);
    }
    if (m.type == NMSG_STATE_CHANGE)
        CHECK(m.has_state);
    CHECK(!m.has_state || m.state == HARK_STATE_LISTENING || m.state == HARK_STATE_RESPONDING);
    check_renders(&m);
    nmsg_free(&m);
    CHECK(mem_outstanding() == 0);
    return 0;
}
