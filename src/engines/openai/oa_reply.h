/*
 * The reply of an OpenAI-compatible POST /audio/transcriptions, which is
 * untrusted input from the network: {"text": ...} (response_format json) or
 * verbose_json with "words": [{"word","start","end"}] when the server gives
 * word times (timestamp_granularities[]=word), or {"error": {"message"}}.
 *
 * Ownership: oa_reply_parse fills *out with storage it owns; oa_reply_clear
 * frees it (also after a failed parse). Reentrant, no shared state.
 */
#ifndef HARK_ENGINES_OPENAI_OA_REPLY_H
#define HARK_ENGINES_OPENAI_OA_REPLY_H

#include <stddef.h>

#include "engines/engine.h"

/* Words beyond this are dropped (a 30 s utterance has < 200). */
#define OA_REPLY_MAX_WORDS 4096

struct oa_reply {
    char *text;                /* whitespace collapsed, trimmed; never NULL after success */
    struct engine_word *words; /* n_words; each word string owned */
    size_t n_words;
};

/* 0, or HARK_E_PROTOCOL (not JSON, no "text", an "error" object: its message
 * goes to errbuf), HARK_E_LIMIT (too large), HARK_E_NOMEM. */
int oa_reply_parse(struct oa_reply *out, const char *body, size_t len, char *errbuf,
                   size_t errbuf_size);
void oa_reply_clear(struct oa_reply *r);

#endif
