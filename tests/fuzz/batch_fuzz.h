/* Shared body of the batch APIs' libFuzzer targets (fuzz_batch_*.c,
 * fuzz_transcript.c): drives one batch API (src/front/proto/batchapi.h) with
 * a request built from arbitrary bytes, and answers it with a transcript.
 *
 * Request input: pieces separated by '\n'. The first piece is the
 * Content-Type; the second's first byte (if any) picks chunked (bit 0) and
 * the number of file parts (bits 1-2); the third is the query
 * ('&'-separated "key=value" arguments, as lws delivers them); every further
 * piece is a form field "name=value".
 *
 * Whatever the bytes: a refusal has an HTTP status from 400 to 599, a
 * message, and renders one JSON value; an accepted request answers the
 * transcript with a body of its type (JSON ones parse). */
#ifndef HARK_TESTS_FUZZ_BATCH_FUZZ_H
#define HARK_TESTS_FUZZ_BATCH_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/mem.h"
#include "front/proto/batchapi.h"
#include "front/proto/transcript.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* The engine is not linked: ctx.engine is NULL, so this is never called. */
int hark_engine_check_options(const struct hark_engine *eng, const struct hark_options *opts,
                              char *err, size_t n)
{
    (void)eng, (void)opts, (void)err, (void)n;
    __builtin_trap();
}

static void check_json(const char *s, size_t len)
{
    struct json *doc = NULL;
    CHECK(json_parse(&doc, s, len, NULL, 0) == 0);
    json_free(doc);
}

#define MAX_FIELDS 16

struct fuzz_form {
    const struct batchapi *api;
    const char *v[MAX_FIELDS];
};

static const char *fuzz_field(const struct batchapi_req *rq, int i)
{
    const struct fuzz_form *f = rq->user;
    return i >= 0 && i < MAX_FIELDS ? f->v[i] : NULL;
}

/* The API's answer to a refusal, checked. */
static void fuzz_refused(const struct batchapi *api, const struct batchapi_refusal *r)
{
    CHECK(r->status >= 400 && r->status <= 599);
    CHECK(r->err != 0 && r->msg[0]);
    CHECK(memchr(r->param, 0, sizeof r->param) && memchr(r->msg, 0, sizeof r->msg));
    struct buf o;
    buf_init(&o);
    api->error(r, "fuzz-id", &o);
    if (!o.oom)
        check_json(o.data, o.len);
    buf_deinit(&o);
}

/* The response to transcript t, checked. */
static void fuzz_respond(const struct batchapi *api, const void *st, const struct transcript *t)
{
    struct buf o;
    buf_init(&o);
    const char *mime = NULL;
    struct batchapi_meta m = {"fuzz-id", "2026-01-01T00:00:00.000Z", "", "engine"};
    api->respond(st, &m, t, &o, &mime);
    CHECK(mime != NULL);
    if (!o.oom && !strcmp(mime, "application/json"))
        check_json(o.data, o.len);
    buf_deinit(&o);
}

/* Runs one request through api; on success answers t. Returns 0 when the
 * request was accepted. */
static int fuzz_batch(const struct batchapi *api, const uint8_t *data, size_t size,
                      const struct transcript *t)
{
    char *buf = malloc(size + 1);
    const char **args = malloc((size + 1) * sizeof *args);
    CHECK(buf && args);
    memcpy(buf, data, size);
    buf[size] = 0;
    char *piece[3] = {"", "", ""};
    char *p = buf;
    for (int i = 0; i < 3 && p; i++) {
        piece[i] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl++ = 0;
        p = nl;
    }
    struct fuzz_form form = {api, {0}};
    while (p) { /* form fields */
        char *nl = strchr(p, '\n');
        if (nl)
            *nl++ = 0;
        char *eq = strchr(p, '=');
        if (eq) {
            *eq = 0;
            for (int i = 0; i < api->n_fields && i < MAX_FIELDS; i++)
                if (!strcmp(api->fields[i], p))
                    form.v[i] = eq + 1;
        }
        p = nl;
    }
    size_t n_args = 0;
    for (char *a = piece[2];;) {
        args[n_args++] = a;
        char *amp = strchr(a, '&');
        if (!amp)
            break;
        *amp = 0;
        a = amp + 1;
    }
    unsigned mode = (unsigned char)piece[1][0];
    int file_parts = (int)(mode >> 1 & 3);

    struct hark_options *defaults = NULL;
    CHECK(hark_options_create(&defaults) == 0);
    /* engine names as a server has them: `model=openai` takes that path */
    static const char *const engines[] = {"pocketsphinx", "openai", NULL};
    struct batchapi_ctx cx = {defaults, NULL, "engine", engines, 0};
    struct batchapi_req rq = {"/fuzz", args, n_args, piece[0], (int)(mode & 1), fuzz_field, &form};
    void *st = hark_calloc(1, api->state_size ? api->state_size : 1);
    CHECK(st);
    struct hark_options *o = NULL;
    CHECK(hark_options_copy(&o, defaults) == 0);
    struct batchapi_refusal r = {0};
    int rc = api->open(st, &cx, &rq, o, &r);
    if (api->fields) {
        for (int k = 1; !rc && k <= file_parts; k++) {
            struct batchapi_refusal fr = {0};
            struct hark_options *fo = NULL;
            CHECK(hark_options_copy(&fo, defaults) == 0);
            rc = api->file(st, &cx, &rq, k, fo, &fr);
            hark_options_destroy(fo);
            if (rc)
                r = fr;
            else
                CHECK(memchr(fr.param, 0, sizeof fr.param));
        }
        if (!rc)
            rc = api->check(st, &cx, &rq, file_parts, &r);
    }
    if (rc)
        fuzz_refused(api, &r);
    else if (t)
        fuzz_respond(api, st, t);
    /* the session's errors in the API's terms */
    struct batchapi_refusal se = {0};
    api->session_error(st, HARK_E_BAD_AUDIO, piece[0], &se);
    fuzz_refused(api, &se);
    hark_options_destroy(o);
    hark_options_destroy(defaults);
    hark_free(st);
    free(args);
    free(buf);
    return rc;
}

#endif
