#include "front/proto/dialect.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"

void dialect_out_init(struct dialect_out *o)
{
    memset(o, 0, sizeof *o);
    buf_init(&o->text);
}

void dialect_out_reset(struct dialect_out *o)
{
    for (size_t i = 0; i < o->n; i++) {
        hark_options_destroy(o->act[i].opts);
        hark_free(o->act[i].render);
    }
    o->n = 0;
    o->oom = 0;
    buf_reset(&o->text);
}

void dialect_out_deinit(struct dialect_out *o)
{
    dialect_out_reset(o);
    buf_deinit(&o->text);
}

const char *dialect_str(const struct dialect_out *o, size_t off)
{
    return o->text.data && off < o->text.len ? o->text.data + off : "";
}

static struct dialect_act *add(struct dialect_out *o, enum dialect_act_type type)
{
    if (o->n == DIALECT_MAX_ACTS) {
        o->oom = 1;
        return NULL;
    }
    struct dialect_act *a = &o->act[o->n++];
    memset(a, 0, sizeof *a);
    a->type = type;
    a->str = a->str2 = (size_t)-1;
    return a;
}

/* Appends s (n bytes) and a NUL to text; its offset. */
static size_t put(struct dialect_out *o, const char *s, size_t n)
{
    size_t off = o->text.len;
    buf_append(&o->text, s, n);
    buf_putc(&o->text, 0);
    if (o->text.oom)
        o->oom = 1;
    return off;
}

void da_start(struct dialect_out *o, struct hark_options *opts, void *render)
{
    struct dialect_act *a = add(o, DA_START);
    if (!a) {
        hark_options_destroy(opts);
        hark_free(render);
        return;
    }
    a->opts = opts;
    a->render = render;
}

void da_audio(struct dialect_out *o, const uint8_t *data, size_t len)
{
    struct dialect_act *a = add(o, DA_AUDIO);
    if (a) {
        a->data = data;
        a->len = len;
    }
}

void da_simple(struct dialect_out *o, enum dialect_act_type type, int code)
{
    struct dialect_act *a = add(o, type);
    if (a)
        a->code = code;
}

void da_send(struct dialect_out *o, const char *msg, size_t len)
{
    struct dialect_act *a = add(o, DA_SEND);
    if (a) {
        a->str = put(o, msg, len);
        a->len = len;
    }
}

static void add_error(struct dialect_out *o, int code, int now, const char *fmt, va_list ap)
{
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct dialect_act *a = add(o, DA_ERROR);
    if (a) {
        a->code = code;
        a->now = now;
        a->len = strlen(msg);
        a->str = put(o, msg, a->len);
    }
}

void da_error(struct dialect_out *o, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(o, code, 0, fmt, ap);
    va_end(ap);
}

void da_error_now(struct dialect_out *o, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_error(o, code, 1, fmt, ap);
    va_end(ap);
}

void da_close(struct dialect_out *o, int code, int now, const char *reason)
{
    struct dialect_act *a = add(o, DA_CLOSE);
    if (a) {
        a->code = code;
        a->now = now;
        a->len = strlen(reason ? reason : "");
        a->str = put(o, reason ? reason : "", a->len);
    }
}

void da_resume(struct dialect_out *o, const char *id, const char *token, int64_t last_seq,
               uint64_t audio_bytes)
{
    struct dialect_act *a = add(o, DA_RESUME);
    if (a) {
        a->str = put(o, id, strlen(id));
        a->str2 = put(o, token, strlen(token));
        a->last_seq = last_seq;
        a->audio_bytes = audio_bytes;
    }
}

void da_auth(struct dialect_out *o, const char *key)
{
    struct dialect_act *a = add(o, DA_AUTH);
    if (a) {
        a->len = strlen(key);
        a->str = put(o, key, a->len);
    }
}

void dialect_header_value(char *out, size_t size, const char *s)
{
    size_t k = 0;
    for (const unsigned char *q = (const unsigned char *)s; *q && k + 4 < size; q++) {
        if (*q >= 0x20 && *q < 0x7f)
            out[k++] = (char)*q;
        else
            k += (size_t)snprintf(out + k, size - k, "%%%02X", *q);
    }
    if (size)
        out[k < size ? k : size - 1] = 0;
}

int dialect_set_option(struct hark_options *o, const char *name, const char *value,
                       const char *param, char *err, size_t n)
{
    char why[400];
    int rc = hark_options_set(o, name, value, why, sizeof why);
    if (!rc)
        return 0;
    /* The option's message starts with its own name ("endpointing_ms: ...");
     * the client knows the parameter it sent, so that name replaces it
     * rather than being put in front ("sample_rate: sample_rate: ..."). */
    size_t len = strlen(name);
    const char *rest = why;
    if (!strncmp(why, name, len) && !strncmp(why + len, ": ", 2))
        rest = why + len + 2;
    return err_set(err, n, rc, "%s: %s", param, rest);
}

int dialect_parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1"))
        *out = 1;
    else if (!strcasecmp(v, "false") || !strcmp(v, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}
