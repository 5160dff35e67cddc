/* libFuzzer target for the C client's reader of server messages
 * (src/client/client_msg.c): the text frames a hark server (or anything
 * answering on its address) sends are untrusted. Whatever the bytes: 0 with
 * a message whose every string and word can be read, or a typed error with
 * a message; counts the client does arithmetic on stay below 2^53. The same
 * client_msg is reused for a second parse, as the client does. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_msg.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static volatile size_t sink;

static void touch(const char *s)
{
    CHECK(s != NULL);
    sink += strlen(s);
}

static void check(const struct client_msg *m)
{
    touch(m->type);
    touch(m->session_id);
    touch(m->resume_token);
    touch(m->encoding);
    switch (m->kind) {
    case CLIENT_MSG_READY:
    case CLIENT_MSG_RESUMED:
        CHECK(m->session_id[0]);
        CHECK(m->last_seq >= -1);
        /* fall through */
    case CLIENT_MSG_ACK:
        CHECK(m->audio_bytes <= (1ull << 53));
        break;
    case CLIENT_MSG_EVENT: {
        const struct hark_event *ev = &m->ev;
        CHECK(ev->type >= HARK_EVENT_TRANSCRIPT && ev->type <= HARK_EVENT_AUDIO_GAP);
        CHECK(ev->seq <= (1ull << 53));
        touch(ev->speaker_id);
        if (ev->type == HARK_EVENT_TRANSCRIPT) {
            touch(ev->text);
            touch(ev->language);
            CHECK(ev->segment >= 0 && ev->committed_ms >= 0);
            CHECK(ev->words || ev->n_words == 0);
            for (size_t i = 0; i < ev->n_words; i++)
                touch(ev->words[i].word);
        }
        if (ev->type == HARK_EVENT_PROVIDER_FAILOVER) {
            touch(ev->message);
            touch(ev->failover_reason);
            touch(ev->from_engine);
            touch(ev->to_engine);
        }
        if (ev->type == HARK_EVENT_AUDIO_GAP)
            touch(ev->message);
        if (ev->type == HARK_EVENT_ERROR) {
            touch(ev->message);
            touch(m->error_code);
            CHECK(ev->code < 0);
        }
        break;
    }
    case CLIENT_MSG_UNKNOWN:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    struct client_msg m;
    char err[256];
    client_msg_init(&m);
    for (int round = 0; round < 2; round++) {
        err[0] = 0;
        int rc = client_msg_parse(&m, copy, size, err, sizeof err);
        if (rc == 0) {
            check(&m);
        } else {
            CHECK(rc == HARK_E_PROTOCOL || rc == HARK_E_LIMIT || rc == HARK_E_NOMEM);
            CHECK(err[0] != 0);
            CHECK(m.kind == CLIENT_MSG_UNKNOWN);
        }
    }
    client_msg_deinit(&m);
    free(copy);
    return 0;
}
