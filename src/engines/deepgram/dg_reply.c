/* Parsing a Deepgram-compatible live message (see dg_reply.h), with hark's
 * strict JSON reader (src/base/json.h), which bounds size and depth. */
#include "engines/deepgram/dg_reply.h"

#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/mem.h"
#include "engines/netres.h"

void dg_reply_clear(struct dg_reply *r)
{
    netres_words_free(r->words, r->n_words);
    hark_free(r->text);
    memset(r, 0, sizeof *r);
}

static float unit_of(const struct json_value *v, float dflt)
{
    double c = json_num(v);
    return json_type(v) == JSON_NUMBER && c >= 0 && c <= 1 ? (float)c : dflt;
}

int dg_reply_parse(struct dg_reply *out, const char *msg, size_t len, char *errbuf,
                   size_t errbuf_size)
{
    memset(out, 0, sizeof *out);
    struct json *doc = NULL;
    char jerr[160];
    int rc = json_parse(&doc, msg, len, jerr, sizeof jerr);
    if (rc)
        return err_set(errbuf, errbuf_size, rc, "message is not JSON: %s", jerr);
    const struct json_value *root = json_root(doc);
    const char *type = json_str(json_get(root, "type"));
    if (!type) {
        rc = err_set(errbuf, errbuf_size, HARK_E_PROTOCOL, "message has no \"type\"");
        goto out;
    }
    if (!strcmp(type, "Error")) {
        const char *d = json_str(json_get(root, "description"));
        if (!d)
            d = json_str(json_get(root, "message"));
        out->type = DG_ERROR;
        snprintf(out->message, sizeof out->message, "%.190s", d ? d : "unspecified error");
        goto out;
    }
    if (strcmp(type, "Results"))
        goto out; /* Metadata, SpeechStarted, UtteranceEnd, ... */
    const struct json_value *alt = json_at(json_get(json_get(root, "channel"), "alternatives"), 0);
    const struct json_value *tr = json_get(alt, "transcript");
    if (!json_str(tr)) {
        rc = err_set(errbuf, errbuf_size, HARK_E_PROTOCOL, "Results without a transcript");
        goto out;
    }
    out->type = DG_RESULTS;
    out->is_final = json_bool(json_get(root, "is_final"));
    out->speech_final = json_bool(json_get(root, "speech_final"));
    out->from_finalize = json_bool(json_get(root, "from_finalize"));
    out->start = netres_time(json_get(root, "start"));
    out->duration = netres_time(json_get(root, "duration"));
    out->confidence = unit_of(json_get(alt, "confidence"), 1.0f);
    if (!(out->text = netres_squeeze(json_str(tr), json_str_len(tr)))) {
        rc = HARK_E_NOMEM;
        goto out;
    }
    const struct json_value *words = json_get(alt, "words");
    rc = netres_words(words, DG_REPLY_MAX_WORDS, "punctuated_word", "confidence", &out->words,
                      &out->n_words);
out:
    json_free(doc);
    if (rc)
        dg_reply_clear(out);
    return rc;
}
