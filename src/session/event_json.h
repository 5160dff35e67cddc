/* Renders a public event as one JSON object in the native protocol's shape
 * (docs/protocol.md); shared by the CLI's --json output and the native
 * WebSocket front end. Pure function of its input; thread-safe. */
#ifndef HARK_SESSION_EVENT_JSON_H
#define HARK_SESSION_EVENT_JSON_H

#include "base/buf.h"
#include "hark/hark.h"

/* Appends the object (no trailing newline) to out. */
void event_json_render(const struct hark_event *ev, struct buf *out);

/* Appends "words":[{"word","start","end","confidence"}...]; with
 * EVENT_JSON_PUNCTUATED each word also gets "punctuated_word" (Deepgram). */
#define EVENT_JSON_PUNCTUATED 1u
void event_json_words(struct buf *b, const struct hark_word *words, size_t n, unsigned flags);

#endif
