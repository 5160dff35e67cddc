/* Builds a session's chain of stages and runs frames through it. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "session/stage.h"

int stage_emit(struct stage *st, const struct frame *f)
{
    struct stage *next = st->next;
    return next ? next->ops->write(next, f) : 0;
}

void pipeline_deliver(struct pipeline *pl, struct hark_event *ev)
{
    ev->seq = pl->seq++;
    ev->session_id = pl->session_id;
    ev->speaker_id = pl->opts->speaker_id;
    if (!ev->language)
        ev->language = pl->opts->language;
    if (pl->cb)
        pl->cb(pl->cb_user, ev);
}

int pipeline_error(struct pipeline *pl, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pl->errmsg, sizeof pl->errmsg, fmt, ap);
    va_end(ap);
    /* Mostly bad client input: worth a line, not a warning. */
    LOG_INFO(pl->session_id, "%s: %s", hark_err_code(err), pl->errmsg);
    struct hark_event ev = {.type = HARK_EVENT_ERROR, .code = err, .message = pl->errmsg};
    pipeline_deliver(pl, &ev);
    return err;
}

int pipeline_report_error(struct pipeline *pl, int code, const char *message)
{
    struct frame f = {.kind = FRAME_ERROR, .code = code, .message = message};
    for (int i = 0; i < pl->n_stages; i++)
        if (pl->stages[i].ops == &stage_recognise_ops)
            return pl->stages[i].ops->write(&pl->stages[i], &f);
    return HARK_E_STATE;
}

int pipeline_init(struct pipeline *pl)
{
    static const struct stage_ops *const chain[] = {
        &stage_decode_ops,    &stage_resample_ops, &stage_vad_ops,
        &stage_recognise_ops, &stage_assemble_ops,
    };
    buf_init(&pl->describe);
    pl->n_stages = 0;
    for (size_t i = 0; i < sizeof chain / sizeof chain[0]; i++) {
        struct stage *st = &pl->stages[i];
        st->ops = chain[i];
        st->pl = pl;
        st->next = NULL;
        if (i)
            pl->stages[i - 1].next = st;
        int rc = st->ops->init(st);
        if (rc) {
            pipeline_deinit(pl);
            return rc;
        }
        pl->n_stages++;
    }
    return 0;
}

int pipeline_write_bytes(struct pipeline *pl, const void *bytes, size_t n)
{
    struct frame f = {.kind = FRAME_BYTES, .bytes = bytes, .n = n};
    struct stage *first = &pl->stages[0];
    return first->ops->write(first, &f);
}

/* Flush runs front to back: each stage pushes out what it holds, into the
 * next stage, before that stage flushes in turn. */
int pipeline_flush(struct pipeline *pl, enum hark_reason reason)
{
    int first_err = 0;
    for (int i = 0; i < pl->n_stages; i++) {
        int rc = pl->stages[i].ops->flush(&pl->stages[i], reason);
        if (rc && !first_err)
            first_err = rc;
    }
    return first_err;
}

int pipeline_poll(struct pipeline *pl)
{
    int first_err = 0;
    for (int i = 0; i < pl->n_stages; i++) {
        int rc = pl->stages[i].ops->poll ? pl->stages[i].ops->poll(&pl->stages[i]) : 0;
        if (rc && !first_err)
            first_err = rc;
    }
    return first_err;
}

void pipeline_deinit(struct pipeline *pl)
{
    for (int i = pl->n_stages - 1; i >= 0; i--)
        pl->stages[i].ops->close(&pl->stages[i]);
    pl->n_stages = 0;
    buf_deinit(&pl->describe);
}

const char *pipeline_describe(struct pipeline *pl)
{
    buf_reset(&pl->describe);
    for (int i = 0; i < pl->n_stages; i++) {
        if (i)
            buf_puts(&pl->describe, "\xE2\x86\x92"); /* → */
        pl->stages[i].ops->describe(&pl->stages[i], &pl->describe);
    }
    return pl->describe.data ? pl->describe.data : "";
}
