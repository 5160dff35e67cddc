/*
 * What the engines that wait on the network (openai/, deepgram/) share about
 * results: the owned words of a provider's reply, and the queue of completed
 * utterances a session takes with utt_poll (engine.h, ENGINE_ASYNC).
 *
 * Ownership: a netres_done owns its text and words (each word string);
 * netres_done_free frees it. A netres_queue owns the items pushed on it until
 * they are popped; netres_clear frees what is left.
 * Threads: a queue is guarded by its engine's mutex: the caller holds it for
 * netres_push/netres_pop; netres_wait takes it. The text helpers are pure.
 */
#ifndef HARK_ENGINES_NETRES_H
#define HARK_ENGINES_NETRES_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/json.h"
#include "engines/engine.h"

/* One submitted utterance's outcome: err, or its text and words. */
struct netres_done {
    struct netres_done *next;
    uint64_t ticket;
    int err;
    const char *reason; /* static; see engine_done */
    char message[256];
    char *text;                /* owned; NULL = "" */
    struct engine_word *words; /* n_words, each word owned */
    size_t n_words;
    float confidence;
};

struct netres_queue {
    struct netres_done *head, *tail;
};

/* Copies s[0..n) with runs of whitespace made one space, trimmed; NULL when
 * out of memory. Providers' transcripts differ in spacing; hark's do not. */
char *netres_squeeze(const char *s, size_t n);
/* A time in seconds from a reply: finite, >= 0 and < 1e7, else 0. */
double netres_time(const struct json_value *v);
void netres_words_free(struct engine_word *words, size_t n);
/* A reply's word array [{word_key (or "word" when absent), "start", "end",
 * conf_key}], at most max words: text squeezed (empty words dropped), times
 * kept monotonic with start <= end whatever the provider says, confidence a
 * number in 0..1 or 1. Fills *out and *n (owned; nothing when not an array).
 * 0 or HARK_E_NOMEM (what was filled is still the caller's to free). */
int netres_words(const struct json_value *words, size_t max, const char *word_key,
                 const char *conf_key, struct engine_word **out, size_t *n);

void netres_done_free(struct netres_done *d);
void netres_push(struct netres_queue *q, struct netres_done *d);
struct netres_done *netres_pop(struct netres_queue *q); /* NULL when empty */
void netres_clear(struct netres_queue *q);
/* utt_poll of a network engine: frees *cur (the last poll's storage), takes
 * the next item of q under mu into *cur and fills out from it; 0 = none. */
int netres_poll(pthread_mutex_t *mu, struct netres_queue *q, struct netres_done **cur,
                struct engine_done *out);
/* Fills out from d; out's strings point into d, valid while d lives. */
void netres_export(const struct netres_done *d, struct engine_done *out);
/* Under no lock: waits on cv (with mu) until q has an item, *pending (read
 * under mu) is 0, or timeout_ms passed (-1: no limit). cv must use
 * CLOCK_MONOTONIC. */
void netres_wait(pthread_mutex_t *mu, pthread_cond_t *cv, const struct netres_queue *q,
                 const unsigned *pending, int timeout_ms);

#endif
