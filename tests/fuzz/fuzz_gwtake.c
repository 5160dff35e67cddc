/* libFuzzer target for the gateways' hand-over messages (front/nats/gwtake.h):
 * untrusted msgpack on {nats-subject-out}.take.{id} and its replies (anyone
 * allowed to publish on the NATS account reaches `hark serve --backend`).
 * Arbitrary bytes are parsed as a request and as a reply; checked:
 *   - the outcome is 0 or a protocol error with a message, never a crash,
 *     hang or large allocation (ASan's allocator limit catches those);
 *   - a parsed reply is self-consistent: events in seq order below
 *     next_seq, every string NUL-terminated, word counts bounded, options
 *     in pairs;
 *   - a parsed reply rendered again parses to the same events. */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "front/nats/gwtake.h"
#include "front/nats/nres.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[300];
    struct gwtake_req q;
    err[0] = 0;
    int rc = gwtake_parse_request(&q, data, size, err, sizeof err);
    if (rc)
        CHECK((rc == HARK_E_PROTOCOL || rc == HARK_E_NOMEM) && err[0]);
    else
        CHECK(memchr(q.token, 0, sizeof q.token) && q.last_seq >= -1);

    struct gwtake_reply r;
    err[0] = 0;
    rc = gwtake_parse_reply(&r, data, size, err, sizeof err);
    if (rc) {
        CHECK((rc == HARK_E_PROTOCOL || rc == HARK_E_NOMEM) && err[0]);
        gwtake_reply_free(&r);
        return 0;
    }
    CHECK(memchr(r.error, 0, sizeof r.error));
    if (!r.ok) {
        gwtake_reply_free(&r);
        return 0;
    }
    size_t n_opt = 0;
    while (r.st.options[n_opt]) {
        CHECK(r.st.options[n_opt + 1]);
        n_opt += 2;
    }
    const struct hark_event **ev = r.n_events ? malloc(r.n_events * sizeof *ev) : NULL;
    CHECK(!r.n_events || ev);
    for (size_t i = 0; i < r.n_events; i++) {
        const struct hark_event *e = &r.events[i];
        CHECK(e->seq < r.st.next_seq && (!i || e->seq > r.events[i - 1].seq));
        CHECK(e->type >= HARK_EVENT_TRANSCRIPT && e->type <= HARK_EVENT_AUDIO_GAP);
        CHECK(e->n_words <= NRES_WORDS_MAX && (e->words || !e->n_words));
        for (size_t j = 0; j < e->n_words; j++)
            CHECK(strlen(e->words[j].word) <= NRES_TEXT_MAX);
        CHECK(!e->text || strlen(e->text) <= NRES_TEXT_MAX);
        CHECK(e->language);
        ev[i] = e;
    }
    struct buf b;
    buf_init(&b);
    gwtake_render_reply(&b, &r.st, ev, r.n_events);
    if (!b.oom) {
        struct gwtake_reply again;
        CHECK(gwtake_parse_reply(&again, b.data, b.len, err, sizeof err) == 0);
        CHECK(again.n_events == r.n_events && again.st.next_seq == r.st.next_seq);
        CHECK(again.st.worker_next == r.st.worker_next &&
              again.st.worker_epoch == r.st.worker_epoch);
        for (size_t i = 0; i < r.n_events; i++)
            CHECK(again.events[i].seq == r.events[i].seq &&
                  again.events[i].n_words == r.events[i].n_words);
        gwtake_reply_free(&again);
    }
    buf_deinit(&b);
    free((void *)ev);
    gwtake_reply_free(&r);
    return 0;
}
