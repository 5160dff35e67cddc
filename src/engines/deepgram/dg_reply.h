/*
 * A message of a Deepgram-compatible live endpoint (wss://.../v1/listen),
 * which is untrusted input from the network. Only "Results" carry text:
 *   {"type":"Results","start":s,"duration":d,"is_final":b,"speech_final":b,
 *    "from_finalize":b,"channel":{"alternatives":[{"transcript":..,
 *    "confidence":c,"words":[{"word","punctuated_word","start","end",
 *    "confidence"}]}]}}
 * Metadata, SpeechStarted, UtteranceEnd are recognised and carry nothing
 * hark needs; an {"type":"Error", "description"/"message"} is reported.
 *
 * Ownership: dg_reply_parse fills *out with storage it owns; dg_reply_clear
 * frees it (also after a failed parse). Reentrant, no shared state.
 */
#ifndef HARK_ENGINES_DEEPGRAM_DG_REPLY_H
#define HARK_ENGINES_DEEPGRAM_DG_REPLY_H

#include <stddef.h>

#include "engines/engine.h"

/* Words beyond this are dropped (one Results message has a few dozen). */
#define DG_REPLY_MAX_WORDS 4096

enum dg_reply_type { DG_OTHER, DG_RESULTS, DG_ERROR };

struct dg_reply {
    enum dg_reply_type type;
    int is_final, speech_final, from_finalize;
    double start, duration;    /* seconds of the upstream's stream, finite, >= 0 */
    char *text;                /* Results: whitespace collapsed, trimmed; never NULL */
    struct engine_word *words; /* n_words; punctuated form when given; each owned */
    size_t n_words;
    float confidence;  /* 0..1 */
    char message[200]; /* DG_ERROR: the provider's description */
};

/* 0, or HARK_E_PROTOCOL (not JSON, no "type", Results without a transcript;
 * detail in errbuf), HARK_E_LIMIT (too large), HARK_E_NOMEM. */
int dg_reply_parse(struct dg_reply *out, const char *msg, size_t len, char *errbuf,
                   size_t errbuf_size);
void dg_reply_clear(struct dg_reply *r);

#endif
