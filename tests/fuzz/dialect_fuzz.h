/* Shared body of the wire dialects' libFuzzer targets (fuzz_dialect_*.c):
 * drives one dialect (src/front/proto/dialect.h) with arbitrary bytes.
 *
 * Input: pieces separated by "\n--\n". The first piece is the request's
 * query ('&'-separated "key=value" arguments, as lws delivers them); each
 * further piece is a client message, text when its first byte is even,
 * binary otherwise (that byte dropped). Every session the dialect starts is
 * "started"; after the messages every signal is raised once. Then events
 * built from the input's bytes are rendered with each render state the
 * dialect handed over (and NULL for an error before a session).
 *
 * Whatever the bytes: actions stay within DIALECT_MAX_ACTS; their strings
 * are readable and NUL-terminated; audio points into the message it came
 * from (or, decoded by the dialect, is readable); every text message rendered
 * or sent is one JSON value (MSG_MULTI: each NUL-ended one); refusals
 * render a JSON body. */
#ifndef HARK_TESTS_FUZZ_DIALECT_FUZZ_H
#define HARK_TESTS_FUZZ_DIALECT_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/mem.h"
#include "front/proto/dialect.h"
#include "hark/hark.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

/* The session's names (src/session/session.c) without linking the session:
 * event_json renders them. */
const char *hark_reason_name(enum hark_reason r)
{
    static const char *const names[] = {"", "endpoint", "finalize", "max_length", "close"};
    return (unsigned)r < 5 ? names[r] : "";
}

const char *hark_event_type_name(enum hark_event_type t)
{
    static const char *const names[] = {"transcript", "speech_started", "utterance_end",
                                        "interrupt",  "error",          "closed"};
    return (unsigned)t < 6 ? names[t] : "?";
}

static void check_json(const char *s, size_t len)
{
    struct json *doc = NULL;
    CHECK(json_parse(&doc, s, len, NULL, 0) == 0);
    json_free(doc);
}

#define MAX_RENDER 4

struct fuzz_run {
    const struct dialect_ops *d;
    void *state;
    void *render[MAX_RENDER];
    int n_render;
    unsigned audio_sum; /* read from decoded audio, so ASan sees every byte */
    int started;
};

static void run_out(struct fuzz_run *r, struct dialect_out *o, const uint8_t *in, size_t in_len,
                    int depth);

static void run_started(struct fuzz_run *r, struct hark_options *opts, int resumed, int depth)
{
    if (!r->d->started || depth > 2)
        return;
    struct dialect_session s = {
        .id = "fuzz-session",
        .resume_token = resumed ? "tok" : NULL,
        .opts = opts,
        .resumed = resumed,
        .last_seq = resumed ? 3 : 0,
        .audio_bytes = resumed ? 320 : 0,
    };
    struct dialect_out o;
    dialect_out_init(&o);
    r->d->started(r->state, &s, &o);
    run_out(r, &o, NULL, 0, depth + 1);
    dialect_out_deinit(&o);
}

static void run_out(struct fuzz_run *r, struct dialect_out *o, const uint8_t *in, size_t in_len,
                    int depth)
{
    CHECK(o->n <= DIALECT_MAX_ACTS);
    if (o->oom)
        return;
    for (size_t i = 0; i < o->n; i++) {
        struct dialect_act *a = &o->act[i];
        if (a->str != (size_t)-1) {
            const char *s = dialect_str(o, a->str);
            CHECK(a->str < o->text.len && memchr(s, 0, o->text.len - a->str));
        }
        if (a->str2 != (size_t)-1)
            CHECK(a->str2 < o->text.len);
        switch (a->type) {
        case DA_START:
            CHECK(a->opts != NULL);
            if (r->n_render < MAX_RENDER) {
                r->render[r->n_render++] = a->render;
                a->render = NULL;
            }
            r->started = 1;
            run_started(r, a->opts, 0, depth);
            break;
        case DA_RESUME:
            run_started(r, NULL, 1, depth);
            break;
        case DA_AUDIO:
            CHECK(a->data && a->len);
            if (!(in && a->data >= in && a->data + a->len <= in + in_len)) {
                /* decoded by the dialect (base64 in JSON): readable */
                unsigned sum = 0;
                for (size_t k = 0; k < a->len; k++)
                    sum += a->data[k];
                r->audio_sum += sum;
            }
            break;
        case DA_SEND:
            check_json(dialect_str(o, a->str), a->len);
            break;
        case DA_ERROR:
            CHECK(a->code < 0);
            break;
        default:
            break;
        }
    }
}

static void render_all(struct fuzz_run *r, const uint8_t *data, size_t size)
{
    char text[256];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = 0;
    struct hark_word words[3];
    for (int i = 0; i < 3; i++)
        words[i] = (struct hark_word){
            .word = text, .start = i * 0.5, .end = i * 0.5 + 0.4, .confidence = 0.5f};
    uint8_t b0 = size ? data[0] : 0, b1 = size > 1 ? data[1] : 0;
    for (int t = HARK_EVENT_TRANSCRIPT; t <= HARK_EVENT_CLOSED; t++) {
        struct hark_event ev = {
            .type = (enum hark_event_type)t,
            .seq = b0,
            .session_id = "fuzz-session",
            .speaker_id = text,
            .segment = b1 & 7,
            .is_final = b0 & 1,
            .speech_final = (b0 >> 1) & 1,
            .reason = (enum hark_reason)((b0 >> 2) % 5),
            .text = text,
            .start = b1 / 10.0,
            .end = b1 / 10.0 + b0 / 100.0,
            .confidence = (float)(b0 / 255.0),
            .language = "en",
            .words = (b0 & 8) ? words : NULL,
            .n_words = (b0 & 8) ? (size_t)(b1 % 4) : 0,
            .committed_ms = b1 * 10,
            .code = -(int)(1 + b1 % 20),
            .message = text,
            .audio_seconds = b1 / 3.0,
            .segments = b0,
        };
        for (int k = -1; k < r->n_render; k++) {
            if (k < 0 && t != HARK_EVENT_ERROR)
                continue;
            struct buf out;
            unsigned flags = 0;
            buf_init(&out);
            r->d->render(k < 0 ? NULL : r->render[k], &ev, &out, &flags);
            if (out.len && (flags & MSG_MULTI)) {
                /* NUL-ended messages (host/chan.h): each one JSON */
                CHECK(!out.oom && out.data[out.len - 1] == 0);
                for (size_t off = 0; off < out.len;) {
                    size_t len = strlen(out.data + off);
                    check_json(out.data + off, len);
                    off += len + 1;
                }
            } else if (out.len && !(flags & MSG_BINARY)) {
                check_json(out.data, out.len);
            }
            buf_deinit(&out);
        }
    }
}

static const char *no_header(const struct dialect_req *rq, const char *name, char *buf, size_t n)
{
    (void)rq;
    (void)name;
    (void)buf;
    (void)n;
    return NULL;
}

static int fuzz_dialect(const struct dialect_ops *d, const char *path, const uint8_t *data,
                        size_t size)
{
    static const char sep[] = "\n--\n";
    uint8_t *copy = malloc(size + 1);
    const char **args = malloc((size + 2) * sizeof *args);
    struct hark_options *defaults = NULL;
    struct fuzz_run r = {.d = d};
    struct dialect_out o;
    dialect_out_init(&o);
    if (!copy || !args || hark_options_create(&defaults))
        goto out;
    memcpy(copy, data, size);
    copy[size] = 0;
    uint8_t *end = copy + size;
    uint8_t *piece_end = memmem(copy, size, sep, 4);
    if (!piece_end)
        piece_end = end;
    *piece_end = 0;
    size_t n_args = 0;
    for (char *p = (char *)copy;;) {
        args[n_args++] = p;
        char *amp = strchr(p, '&');
        if (!amp)
            break;
        *amp = 0;
        p = amp + 1;
    }
    static const char *const engines[] = {"pocketsphinx", "openai", NULL};
    struct dialect_ctx cx = {
        .defaults = defaults, .engine = "pocketsphinx", .engines = engines, .resume_window = 30};
    struct dialect_req rq = {
        .path = path,
        .args = args,
        .n_args = n_args,
        .request_id = "6861726b-0000-4000-8000-000000000000",
        .header = no_header,
    };
    char err[512] = "";
    int rc = d->open(&cx, &rq, &r.state, &o, err, sizeof err);
    if (rc) {
        CHECK(rc < 0 && err[0]);
        if (d->refuse) {
            struct buf body;
            struct dialect_headers h;
            memset(&h, 0, sizeof h);
            buf_init(&body);
            d->refuse(400, rc, err, &body, &h);
            check_json(body.data, body.len);
            CHECK(h.n >= 0 && h.n <= 2);
            buf_deinit(&body);
        }
        goto out;
    }
    run_out(&r, &o, NULL, 0, 0);
    dialect_out_reset(&o);
    for (uint8_t *p = piece_end + (piece_end < end ? 4 : 0); p < end;) {
        uint8_t *q = memmem(p, (size_t)(end - p), sep, 4);
        if (!q)
            q = end;
        int binary = p < q && (p[0] & 1);
        uint8_t *msg = p < q ? p + 1 : p;
        size_t len = (size_t)(q - msg);
        if (binary)
            d->binary(r.state, msg, len, &o);
        else
            d->text(r.state, (const char *)msg, len, &o);
        run_out(&r, &o, msg, len, 0);
        dialect_out_reset(&o);
        p = q < end ? q + 4 : end;
    }
    for (int s = DS_REFUSED; s <= DS_SHUTDOWN; s++) {
        d->signal(r.state, (enum dialect_sig)s, HARK_E_BUSY, "fuzz signal", &o);
        run_out(&r, &o, NULL, 0, 0);
        dialect_out_reset(&o);
    }
    render_all(&r, data, size);
out:
    if (r.state)
        d->destroy(r.state);
    for (int i = 0; i < r.n_render; i++)
        hark_free(r.render[i]);
    dialect_out_deinit(&o);
    hark_options_destroy(defaults);
    free(args);
    free(copy);
    return 0;
}

#endif
