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
    rc = netres_words(words, OA_REPLY_MAX_WORDS, "word", "probability", &out->words, &out->n_words);
out:
    json_free(doc);
    if (rc)
        oa_reply_clear(out);
    return rc;
}
