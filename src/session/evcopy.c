/*
 * Deep copy of an event (evcopy.h). Layout: the struct, the words array,
 * then the strings, NUL-terminated, back to back. An event's strings are
 * short (a transcript, an error message), so one block costs a few hundred
 * bytes where the native JSON rendering of the same event costs about as
 * much (docs/benchmarks.md, Resume: memory per detached session).
 */
#include "session/evcopy.h"

#include <string.h>

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

size_t evcopy_size(const struct hark_event *ev)
{
    size_t n = sizeof *ev + (ev->words ? ev->n_words * sizeof *ev->words : 0);
    n += str_size(ev->session_id) + str_size(ev->speaker_id) + str_size(ev->text) +
         str_size(ev->language) + str_size(ev->message) + str_size(ev->failover_reason) +
         str_size(ev->from_engine) + str_size(ev->to_engine);
    for (size_t i = 0; ev->words && i < ev->n_words; i++)
        n += str_size(ev->words[i].word);
    return n;
}

/* Appends s at *p; the copy, or NULL for NULL. */
static const char *put(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    const char *at = *p;
    *p += n;
    return at;
}

struct hark_event *evcopy_into(void *dst, const struct hark_event *ev)
{
    struct hark_event *c = dst;
    *c = *ev;
    struct hark_word *w = (struct hark_word *)(c + 1);
    char *p = (char *)(w + (ev->words ? ev->n_words : 0));
    if (ev->words) {
        for (size_t i = 0; i < ev->n_words; i++) {
            w[i] = ev->words[i];
            w[i].word = put(&p, ev->words[i].word);
        }
        c->words = w;
    } else {
        c->words = NULL;
        c->n_words = 0;
    }
    c->session_id = put(&p, ev->session_id);
    c->speaker_id = put(&p, ev->speaker_id);
    c->text = put(&p, ev->text);
    c->language = put(&p, ev->language);
    c->message = put(&p, ev->message);
    c->failover_reason = put(&p, ev->failover_reason);
    c->from_engine = put(&p, ev->from_engine);
    c->to_engine = put(&p, ev->to_engine);
    return c;
}
