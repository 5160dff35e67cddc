/* The client's reader of server messages on /v1/stream (docs/protocol.md):
 * one JSON text frame in, one typed message out. The text comes from the
 * network and is untrusted: it goes through base/json's strict parser, and
 * every field the client relies on is checked for type and range (an event
 * without a usable seq, a transcript without text, a negative byte count are
 * refused, not guessed). Fuzzed by tests/fuzz/fuzz_client_msg.c.
 *
 * Ownership: a struct client_msg owns the parsed document and a word array;
 * every pointer in it (the event's strings and words, ids) is valid until
 * the next client_msg_parse on it or client_msg_deinit. One owner, not
 * thread-safe; different client_msg objects are independent. */
#ifndef HARK_CLIENT_CLIENT_MSG_H
#define HARK_CLIENT_CLIENT_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "hark/hark.h"

enum client_msg_kind {
    CLIENT_MSG_UNKNOWN = 0, /* a type this client does not know: ignored */
    CLIENT_MSG_READY,       /* session_id, resume_token, resume_window, encoding, rate, channels */
    CLIENT_MSG_RESUMED,     /* session_id, audio_bytes, last_seq */
    CLIENT_MSG_ACK,         /* audio_bytes */
    CLIENT_MSG_EVENT,       /* ev: transcript, speech_started, ..., error, closed */
};

struct client_msg {
    enum client_msg_kind kind;
    struct hark_event ev;
    const char *type; /* the message's "type" */
    const char *session_id;
    const char *resume_token; /* "" when the server offers no resume */
    double resume_window;     /* seconds; 0 when absent */
    const char *encoding;     /* READY: "" when absent */
    int sample_rate, channels;
    uint64_t audio_bytes;   /* RESUMED, ACK */
    int64_t last_seq;       /* RESUMED: -1 when none */
    const char *error_code; /* ERROR events: the code as sent (ev.code maps it) */

    /* storage */
    struct json *doc;
    struct hark_word *words;
    size_t words_cap;
};

void client_msg_init(struct client_msg *m);
void client_msg_deinit(struct client_msg *m);

/* Parses one text frame. 0 with m filled, or HARK_E_PROTOCOL (malformed or
 * a field of the wrong type or range), HARK_E_LIMIT, HARK_E_NOMEM with the
 * detail in errbuf; m is then of kind UNKNOWN with nothing to read. */
int client_msg_parse(struct client_msg *m, const char *text, size_t len, char *errbuf,
                     size_t errbuf_size);

/* The enum hark_err of a wire code ("bad_audio" -> HARK_E_BAD_AUDIO);
 * HARK_E_INTERNAL for codes this build does not know. */
int client_msg_err_from_code(const char *code);

#endif
