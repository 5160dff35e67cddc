/*
 * Stage 4: the engine. Binds an engine stream for each utterance and hands it
 * back at the end, so a session holds engine memory only while its speaker
 * talks. When the engine's pool is exhausted the utterance's audio is kept
 * (bounded by max_utterance_ms) and fed once a stream frees up; at the end of
 * the utterance we wait for one, because dropping accepted speech is worse
 * than a late final (bounded by ACQUIRE_WAIT_MS; servers size the pool so
 * that this is rare and refuse new sessions before it runs dry).
 *
 * Partials: every partial_interval_ms of utterance audio the current
 * hypothesis is read and sent on when its text changed.
 */
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "session/stage.h"

/* Longest wait for an engine stream when an utterance ends without one. */
#define ACQUIRE_WAIT_MS 10000

struct recog {
    struct engine_stream *es;
    char **vocab; /* NULL-terminated, from the options */
    int in_utt;
    int64_t utt_start;
    int64_t fed_to;        /* pos after the last sample given to the engine */
    int64_t since_partial; /* samples since the last partial check */
    char *last_partial;
    float *backlog; /* audio waiting for an engine stream */
    size_t backlog_len, backlog_cap;
    int64_t backlog_pos;
    int64_t max_samples;
};

static int recog_init(struct stage *st)
{
    struct recog *r = hark_calloc(1, sizeof *r);
    if (!r)
        return HARK_E_NOMEM;
    st->priv = r;
    r->max_samples = (int64_t)st->pl->opts->max_utterance_ms * PIPE_RATE / 1000 + PIPE_RATE;
    return options_vocabulary_list(st->pl->opts, &r->vocab);
}

static int acquire(struct stage *st, struct recog *r, int wait_ms)
{
    struct pipeline *pl = st->pl;
    const struct engine_ops *ops = pl->engine->ops;
    struct engine_stream_cfg cfg = {
        .language = pl->opts->language,
        .model = pl->opts->model,
        .vocabulary = (const char *const *)r->vocab,
        .want_words = 1,
        .session_id = pl->session_id,
    };
    char msg[256] = "";
    int rc = ops->stream_acquire(pl->engine->model, &cfg, wait_ms, &r->es, msg, sizeof msg);
    if (rc == HARK_E_BUSY && wait_ms == 0)
        return rc;
    if (rc)
        return pipeline_error(pl, rc, "%s", msg[0] ? msg : hark_strerror(rc));
    rc = ops->utt_start(r->es);
    if (rc) {
        ops->stream_release(r->es);
        r->es = NULL;
        return pipeline_error(pl, rc, "engine could not start an utterance");
    }
    return 0;
}

static int feed_engine(struct stage *st, struct recog *r, const float *s, size_t n)
{
    int rc = st->pl->engine->ops->utt_feed(r->es, s, n);
    if (rc)
        return pipeline_error(st->pl, rc, "engine failed decoding audio");
    return 0;
}

static int drain_backlog(struct stage *st, struct recog *r)
{
    if (!r->backlog_len)
        return 0;
    int rc = feed_engine(st, r, r->backlog, r->backlog_len);
    r->backlog_len = 0;
    return rc;
}

static int send_result(struct stage *st, struct recog *r, const struct engine_result *res,
                       int is_final, enum hark_reason reason, int64_t end)
{
    struct frame f = {
        .kind = FRAME_RESULT,
        .result = res,
        .is_final = is_final,
        .reason = reason,
        .start_pos = r->utt_start,
        .pos = end,
    };
    return stage_emit(st, &f);
}

static int maybe_partial(struct stage *st, struct recog *r)
{
    struct pipeline *pl = st->pl;
    if (!pl->opts->interim_results || !r->es)
        return 0;
    if (r->since_partial < (int64_t)pl->opts->partial_interval_ms * PIPE_RATE / 1000)
        return 0;
    r->since_partial = 0;
    struct engine_result res = {0};
    if (pl->engine->ops->utt_partial(r->es, &res) || !res.text || !res.text[0])
        return 0;
    if (r->last_partial && strcmp(r->last_partial, res.text) == 0)
        return 0;
    hark_free(r->last_partial);
    r->last_partial = hark_strdup(res.text);
    return send_result(st, r, &res, 0, HARK_REASON_NONE, r->fed_to);
}

static int on_audio(struct stage *st, struct recog *r, const struct frame *f)
{
    if (!r->in_utt)
        return 0; /* cannot happen: vad sends audio only inside utterances */
    int rc;
    r->fed_to = f->pos + (int64_t)f->n;
    if (!r->es && acquire(st, r, 0) == 0 && (rc = drain_backlog(st, r)))
        return rc;
    if (!r->es) {
        if (r->backlog_len + f->n > (size_t)r->max_samples)
            return pipeline_error(st->pl, HARK_E_BUSY,
                                  "no engine capacity for this utterance; audio dropped");
        if (mem_grow(&r->backlog, &r->backlog_cap, r->backlog_len + f->n, sizeof *r->backlog))
            return pipeline_error(st->pl, HARK_E_NOMEM, "out of memory buffering audio");
        memcpy(r->backlog + r->backlog_len, f->samples, f->n * sizeof(float));
        r->backlog_len += f->n;
        return 0;
    }
    if ((rc = feed_engine(st, r, f->samples, f->n)))
        return rc;
    r->since_partial += (int64_t)f->n;
    return maybe_partial(st, r);
}

static void end_cleanup(struct stage *st, struct recog *r)
{
    if (r->es)
        st->pl->engine->ops->stream_release(r->es);
    r->es = NULL;
    r->in_utt = 0;
    r->backlog_len = 0;
    r->since_partial = 0;
    hark_free(r->last_partial);
    r->last_partial = NULL;
}

static int on_utt_end(struct stage *st, struct recog *r, const struct frame *f)
{
    struct pipeline *pl = st->pl;
    struct engine_result res = {.text = ""};
    int rc = 0;
    if (!r->in_utt) {
        /* finalize with nothing pending still gets its (empty) final */
        if (f->reason != HARK_REASON_FINALIZE)
            return 0;
        r->utt_start = f->pos;
        return send_result(st, r, &res, 1, f->reason, f->pos);
    }
    /* Bounded: a worker blocked here cannot run the sessions that hold
     * the streams it waits for. */
    if (!r->es && (rc = acquire(st, r, ACQUIRE_WAIT_MS)) == 0)
        rc = drain_backlog(st, r);
    if (r->es && !rc) {
        rc = pl->engine->ops->utt_end(r->es, &res);
        if (rc) {
            pipeline_error(pl, rc, "engine failed to finish the utterance");
            res = (struct engine_result){.text = ""};
        }
    }
    /* Exactly one final per segment, even when the engine failed. */
    int rc2 = send_result(st, r, &res, 1, f->reason, f->pos);
    end_cleanup(st, r);
    return rc ? rc : rc2;
}

static int recog_write(struct stage *st, const struct frame *f)
{
    struct recog *r = st->priv;
    switch (f->kind) {
    case FRAME_UTT_START:
        if (r->in_utt)
            end_cleanup(st, r);
        r->in_utt = 1;
        r->utt_start = f->pos;
        r->fed_to = f->pos;
        r->backlog_pos = f->pos;
        return stage_pass(st, f);
    case FRAME_AUDIO:
        return on_audio(st, r, f);
    case FRAME_UTT_END:
        return on_utt_end(st, r, f);
    default:
        return stage_pass(st, f);
    }
}

static int recog_flush(struct stage *st, enum hark_reason reason)
{
    return 0; /* the vad stage already ended any utterance */
}

static void recog_close(struct stage *st)
{
    struct recog *r = st->priv;
    if (!r)
        return;
    end_cleanup(st, r);
    hark_free(r->backlog);
    hark_free(r->vocab);
    hark_free(r);
    st->priv = NULL;
}

static void recog_describe(struct stage *st, struct buf *out)
{
    buf_printf(out, "recognise(%s)", st->pl->engine->ops->name);
}

const struct stage_ops stage_recognise_ops = {
    .name = "recognise",
    .init = recog_init,
    .write = recog_write,
    .flush = recog_flush,
    .close = recog_close,
    .describe = recog_describe,
};
