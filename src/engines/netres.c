/* Results of network engines (see netres.h). */
#include "engines/netres.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/mem.h"

char *netres_squeeze(const char *s, size_t n)
{
    char *out = hark_malloc(n + 1);
    if (!out)
        return NULL;
    size_t k = 0;
    int space = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0') {
            space = k > 0;
            continue;
        }
        if (space)
            out[k++] = ' ';
        space = 0;
        out[k++] = c;
    }
    out[k] = 0;
    return out;
}

double netres_time(const struct json_value *v)
{
    double t = json_num(v);
    return isfinite(t) && t >= 0 && t < 1e7 ? t : 0;
}

void netres_words_free(struct engine_word *words, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hark_free(words[i].word);
    hark_free(words);
}

static float unit_of(const struct json_value *v)
{
    double c = json_num(v);
    return json_type(v) == JSON_NUMBER && c >= 0 && c <= 1 ? (float)c : 1.0f;
}

int netres_words(const struct json_value *words, size_t max, const char *word_key,
                 const char *conf_key, struct engine_word **out, size_t *n)
{
    size_t len = json_len(words);
    if (json_type(words) != JSON_ARRAY || !len)
        return 0;
    if (len > max)
        len = max;
    if (!(*out = hark_calloc(len, sizeof **out)))
        return HARK_E_NOMEM;
    double prev = 0;
    for (size_t i = 0; i < len; i++) {
        const struct json_value *w = json_at(words, i);
        const struct json_value *ws = json_get(w, word_key);
        if (!json_str(ws))
            ws = json_get(w, "word");
        if (!json_str(ws))
            continue;
        char *word = netres_squeeze(json_str(ws), json_str_len(ws));
        if (!word)
            return HARK_E_NOMEM;
        if (!word[0]) {
            hark_free(word);
            continue;
        }
        double start = netres_time(json_get(w, "start")), end = netres_time(json_get(w, "end"));
        if (start < prev)
            start = prev;
        if (end < start)
            end = start;
        prev = start;
        (*out)[(*n)++] = (struct engine_word){word, start, end, unit_of(json_get(w, conf_key))};
    }
    return 0;
}

void netres_done_free(struct netres_done *d)
{
    if (!d)
        return;
    netres_words_free(d->words, d->n_words);
    hark_free(d->text);
    hark_free(d);
}

void netres_push(struct netres_queue *q, struct netres_done *d)
{
    d->next = NULL;
    if (q->tail)
        q->tail->next = d;
    else
        q->head = d;
    q->tail = d;
}

struct netres_done *netres_pop(struct netres_queue *q)
{
    struct netres_done *d = q->head;
    if (d) {
        q->head = d->next;
        if (!q->head)
            q->tail = NULL;
        d->next = NULL;
    }
    return d;
}

void netres_clear(struct netres_queue *q)
{
    struct netres_done *d;
    while ((d = netres_pop(q)))
        netres_done_free(d);
}

void netres_export(const struct netres_done *d, struct engine_done *out)
{
    out->ticket = d->ticket;
    out->err = d->err;
    out->reason = d->reason;
    snprintf(out->message, sizeof out->message, "%s", d->message);
    out->result = (struct engine_result){
        .text = d->text ? d->text : "",
        .words = d->words,
        .n_words = d->n_words,
        .confidence = d->confidence,
    };
}

int netres_poll(pthread_mutex_t *mu, struct netres_queue *q, struct netres_done **cur,
                struct engine_done *out)
{
    netres_done_free(*cur);
    pthread_mutex_lock(mu);
    *cur = netres_pop(q);
    pthread_mutex_unlock(mu);
    if (!*cur)
        return 0;
    netres_export(*cur, out);
    return 1;
}

void netres_wait(pthread_mutex_t *mu, pthread_cond_t *cv, const struct netres_queue *q,
                 const unsigned *pending, int timeout_ms)
{
    struct timespec deadline = clock_deadline(CLOCK_MONOTONIC, (int64_t)timeout_ms * 1000000);
    pthread_mutex_lock(mu);
    while (!q->head && *pending)
        if (timeout_ms < 0)
            pthread_cond_wait(cv, mu);
        else if (pthread_cond_timedwait(cv, mu, &deadline))
            break;
    pthread_mutex_unlock(mu);
}
