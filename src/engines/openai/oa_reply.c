/* Parsing an OpenAI-compatible transcription reply (see oa_reply.h), with
 * hark's strict JSON reader (src/base/json.h), which bounds size and depth. */
#include "engines/openai/oa_reply.h"

#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "engines/netres.h"

void oa_reply_clear(struct oa_reply *r)
{
    netres_words_free(r->words, r->n_words);
    hark_free(r->text);
    memset(r, 0, sizeof *r);
}

int oa_reply_parse(struct oa_reply *out, const char *body, size_t len, char *errbuf,
                   size_t errbuf_size)
{
    memset(out, 0, sizeof *out);
    struct json *doc = NULL;
    char jerr[160];
    int rc = json_parse(&doc, body, len, jerr, sizeof jerr);
    if (rc)
        return err_set(errbuf, errbuf_size, rc, "reply is not JSON: %s", jerr);
    const struct json_value *root = json_root(doc);
    const struct json_value *error = json_get(root, "error");
    const struct json_value *text = json_get(root, "text");
    if (json_type(error) == JSON_OBJECT || json_type(error) == JSON_STRING || !json_str(text)) {
        const char *msg = json_str(json_get(error, "message"));
        if (!msg)
            msg = json_str(error);
        rc = err_set(errbuf, errbuf_size, HARK_E_PROTOCOL, "%.200s",
                     msg ? msg : "reply has no \"text\"");
        goto out;
    }
    if (!(out->text = netres_squeeze(json_str(text), json_str_len(text)))) {
        rc = HARK_E_NOMEM;
        goto out;
    }
    const struct json_value *words = json_get(root, "words");
    size_t n = json_len(words);
    if (json_type(words) != JSON_ARRAY || !n)
        goto out;
    if (n > OA_REPLY_MAX_WORDS)
        n = OA_REPLY_MAX_WORDS;
    if (!(out->words = hark_calloc(n, sizeof *out->words))) {
        rc = HARK_E_NOMEM;
        goto out;
    }
    double prev = 0;
    for (size_t i = 0; i < n; i++) {
        const struct json_value *w = json_at(words, i);
        const struct json_value *ws = json_get(w, "word");
        if (!json_str(ws))
            continue;
        char *word = netres_squeeze(json_str(ws), json_str_len(ws));
        if (!word) {
            rc = HARK_E_NOMEM;
            goto out;
        }
        if (!word[0]) {
            hark_free(word);
            continue;
        }
        /* Times kept monotonic and start <= end whatever the server says. */
        double start = netres_time(json_get(w, "start")), end = netres_time(json_get(w, "end"));
        if (start < prev)
            start = prev;
        if (end < start)
            end = start;
        prev = start;
        const struct json_value *p = json_get(w, "probability");
        float conf = json_type(p) == JSON_NUMBER && json_num(p) >= 0 && json_num(p) <= 1
                         ? (float)json_num(p)
                         : 1.0f;
        out->words[out->n_words++] = (struct engine_word){word, start, end, conf};
    }
out:
    json_free(doc);
    if (rc)
        oa_reply_clear(out);
    return rc;
}
