/*
 * Deepgram compatibility shared by the live dialect (dglive.c, WebSocket
 * /v1/listen) and the pre-recorded API (dgbatch.c, POST /v1/listen):
 * query parameters -> session options, request ids, model metadata.
 * Pure functions; the service thread calls them.
 */
#ifndef HARK_FRONT_PROTO_DG_H
#define HARK_FRONT_PROTO_DG_H

#include <stddef.h>

#include "base/buf.h"
#include "hark/hark.h"

/* What the query asked for beyond session options. */
struct dg_params {
    char model[64];    /* echoed in metadata ("" = not given) */
    char language[36]; /* the session's language, as given or the default */
    int utterances;    /* pre-recorded: results.utterances wanted */
    int interim_results;
    int vad_events;
    int utterance_end_ms;
    char encoding[24]; /* as given; "" = containerised (sniffed) */
};

/*
 * Applies a request's query arguments ("key=value" strings as lws delivers
 * them: %xx and '+' already decoded) to opts, which hold the server's
 * defaults. Unknown parameters are ignored, booleans are case-insensitive
 * (and 1/0), repeated keywords/keyterm become the session vocabulary.
 * Returns 0, or HARK_E_BAD_OPTION/HARK_E_UNSUPPORTED with a
 * message that starts with the parameter's name. engines: the names of the
 * engines the server has (NULL-terminated; NULL = none): a `model` equal to
 * one picks that engine. Any other `model` is the session's model when
 * any_model (the server's engine takes any name: a provider's, which gets
 * it as its own model=), else only a name for the server's engine, echoed
 * in the metadata. Pure: no I/O, any thread.
 */
int dg_apply_args(const char *const *args, size_t n_args, struct hark_options *opts,
                  struct dg_params *p, const char *const *engines, int any_model, char *err,
                  size_t n);

/* Random (v4) UUID, 36 chars + NUL. */
void dg_uuid(char out[37]);
/* ISO-8601 UTC with milliseconds: "2026-11-21T09:31:02.123Z". */
void dg_now_iso(char out[32]);
/* The engine's model name/version/arch and a stable uuid for it. */
const char *dg_model_uuid(void);
/* Appends "name":..,"version":..,"arch":..,"language":.. (no braces): the
 * requested model name (or "general") and language are echoed back. */
void dg_model_fields(struct buf *b, const struct dg_params *p, const char *engine);
/* Appends "languages":[..] of an alternative: the session's language. */
void dg_languages(struct buf *b, const struct dg_params *p);

#endif
