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
 *
 * Engines that wait on the network (ENGINE_ASYNC, engine.h) keep one stream
 * for the whole session. An utterance's end submits it and returns; its
 * final comes later (hark_session_poll, after the engine's notify). Until
 * then every frame this stage would send on is held back in `q`, behind a
 * placeholder for the final, so events stay in order: the final, then what
 * happened after it. Bounds: PEND_MAX utterances in flight and HOLD_MAX held
 * frames (CLOCKs coalesce); past either the stage waits for the oldest
 * result (bounded by the engine's own timeouts, and WAIT_MAX_MS). Without a
 * notifier (library use, hark transcribe) each final is waited for at once.
 *
 * Failover: each submitted utterance keeps its audio until its result is in.
 * When the provider fails (after the engine's retries) and the engine has a
 * fallback, the session switches to it for good: a PROVIDER_FAILOVER event,
 * then every utterance not yet answered is recognised by the fallback from
 * its kept audio, and the open utterance's audio so far is replayed into a
 * fallback stream, so no word is lost. Without a fallback the failed
 * utterance gets an error and an empty final (one final per segment).
 */
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "session/stage.h"

/* Longest wait for an engine stream when an utterance ends without one. */
#define ACQUIRE_WAIT_MS 10000
/* Network engines: utterances in flight, frames held behind them. */
#define PEND_MAX 8
#define HOLD_MAX 256
/* Longest wait for a result the stage must have (a full queue, close). The
 * engine answers within its timeout x (1 + retries) (openai: 30 s x 3 by
 * default); this bound is for an engine that lost one. */
#define WAIT_MAX_MS 120000

struct pend {
    uint64_t ticket;
    int64_t start, end;
    enum hark_reason reason;
    int voice;
    float *audio; /* the utterance, kept for a failover's replay */
    size_t n;
    int state; /* P_WAIT, P_DONE, P_FAILED */
    int err;
    char msg[256];
    /* P_DONE: an owned copy of the result */
    char *text;
    struct engine_word *words;
    size_t n_words;
    float confidence;
};

enum { P_WAIT, P_DONE, P_FAILED };

/* A held item: a frame (pointer-free kinds, or an error with its message
 * copied) or a pending final. */
struct item {
    struct frame f;
    struct pend *p; /* non-NULL: a final waiting for its result */
    char *message;  /* FRAME_ERROR: f.message, owned */
};

struct recog {
    struct hark_engine *eng; /* the engine in use: the session's, or its fallback */
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

    /* ENGINE_ASYNC */
    int async;
    uint64_t next_ticket;
    float *utt_audio; /* the open utterance, kept for a failover */
    size_t utt_n, utt_cap;
    struct item *q; /* HOLD_MAX + PEND_MAX, a ring; allocated for ENGINE_ASYNC only */
    size_t q_head, q_len;
    unsigned n_pend;
    int probe;    /* this session is the breaker's half-open probe */
    int reported; /* breaker told of this session's outcome */
    /* A failover to announce before the next output (circuit open at start). */
    const char *failover_reason;
    int failover_code;
    char failover_msg[256];
};

static int recog_init(struct stage *st)
{
    struct pipeline *pl = st->pl;
    struct recog *r = hark_calloc(1, sizeof *r);
    if (!r)
        return HARK_E_NOMEM;
    st->priv = r;
    r->max_samples = (int64_t)pl->opts->max_utterance_ms * PIPE_RATE / 1000 + PIPE_RATE;
    r->eng = pl->engine;
    struct hark_engine *fb = pl->engine->fallback;
    if (fb && pl->opts->engine[0] && strcmp(pl->opts->engine, fb->ops->name) == 0) {
        r->eng = fb; /* the session asked for the local engine */
    } else if (fb && !engine_breaker_admit(pl->engine, &r->probe)) {
        r->eng = fb;
        r->failover_reason = "circuit_open";
        r->failover_code = HARK_E_PROVIDER;
        snprintf(r->failover_msg, sizeof r->failover_msg,
                 "engine %s failed recently; this session uses %s (circuit breaker)",
                 pl->engine->ops->name, fb->ops->name);
    }
    r->async = (r->eng->ops->flags & ENGINE_ASYNC) != 0;
    const struct engine_ops *ops = r->eng->ops;
    pl->want_gaps = r->async && ops->gap_feed && ops->wants_gaps && ops->wants_gaps(r->eng->model);
    /* ~23 KB: only sessions that start on a network engine hold events */
    if (r->async && !(r->q = hark_calloc(HOLD_MAX + PEND_MAX, sizeof *r->q)))
        return HARK_E_NOMEM;
    return options_vocabulary_list(pl->opts, &r->vocab);
}

static void notify_pipeline(void *user)
{
    struct pipeline *pl = user;
    if (pl->notify)
        pl->notify(pl->notify_user);
}

static int acquire(struct stage *st, struct recog *r, int wait_ms)
{
    struct pipeline *pl = st->pl;
    const struct engine_ops *ops = r->eng->ops;
    struct engine_stream_cfg cfg = {
        .language = pl->opts->language,
        .model = r->eng == pl->engine ? pl->opts->model : "",
        .vocabulary = (const char *const *)r->vocab,
        .want_words = 1,
        .want_partials = pl->opts->interim_results,
        .session_id = pl->session_id,
        .notify = pl->notify ? notify_pipeline : NULL,
        .notify_user = pl,
    };
    char msg[256] = "";
    int rc = ops->stream_acquire(r->eng->model, &cfg, wait_ms, &r->es, msg, sizeof msg);
    if (rc == HARK_E_BUSY && wait_ms == 0)
        return rc;
    if (rc)
        return pipeline_error(pl, rc, "%s", msg[0] ? msg : hark_strerror(rc));
    if (r->async)
        return 0; /* utt_start at each UTT_START */
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
    int rc = r->eng->ops->utt_feed(r->es, s, n);
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

/* ------------------------------------------------------------ output order */

static int announce_failover(struct stage *st, struct recog *r, int64_t from)
{
    struct pipeline *pl = st->pl;
    if (!r->failover_reason)
        return 0;
    struct hark_event ev = {
        .type = HARK_EVENT_PROVIDER_FAILOVER,
        .code = r->failover_code,
        .message = r->failover_msg,
        .failover_reason = r->failover_reason,
        .from_engine = pl->engine->ops->name,
        .to_engine = pl->engine->fallback->ops->name,
        .start = (double)from / PIPE_RATE,
    };
    LOG_WARN(pl->session_id, "provider failover (%s): %s", r->failover_reason, r->failover_msg);
    if (pl->engine->on_failover)
        pl->engine->on_failover(pl->engine->on_failover_user, r->failover_reason);
    r->failover_reason = NULL;
    pipeline_deliver(pl, &ev);
    return 0;
}

static int wait_results(struct stage *st, struct recog *r, int all);

/* Sends f on now, or holds it behind a result still awaited. */
static int out(struct stage *st, struct recog *r, const struct frame *f)
{
    if (r->q_len >= HOLD_MAX + PEND_MAX - 1) {
        int rc = wait_results(st, r, 0);
        if (rc)
            return rc;
    }
    if (!r->q_len)
        return stage_emit(st, f);
    struct item *tail = &r->q[(r->q_head + r->q_len - 1) % (HOLD_MAX + PEND_MAX)];
    if (f->kind == FRAME_CLOCK && !tail->p && tail->f.kind == FRAME_CLOCK) {
        tail->f.pos = f->pos; /* only the newest clock matters */
        return 0;
    }
    struct item *it = &r->q[(r->q_head + r->q_len) % (HOLD_MAX + PEND_MAX)];
    *it = (struct item){.f = *f};
    if (f->kind == FRAME_ERROR && !(it->f.message = it->message = hark_strdup(f->message)))
        return HARK_E_NOMEM;
    r->q_len++;
    return 0;
}

static int send_result(struct stage *st, int64_t start, const struct engine_result *res,
                       int is_final, enum hark_reason reason, int64_t end)
{
    struct frame f = {
        .kind = FRAME_RESULT,
        .result = res,
        .is_final = is_final,
        .reason = reason,
        .start_pos = start,
        .pos = end,
    };
    return stage_emit(st, &f);
}

static void pend_free(struct pend *p)
{
    for (size_t i = 0; i < p->n_words; i++)
        hark_free(p->words[i].word);
    hark_free(p->words);
    hark_free(p->text);
    hark_free(p->audio);
    hark_free(p);
}

static int pend_keep(struct pend *p, const struct engine_result *res)
{
    p->text = hark_strdup(res->text ? res->text : "");
    if (!p->text)
        return HARK_E_NOMEM;
    if (res->n_words && !(p->words = hark_calloc(res->n_words, sizeof *p->words)))
        return HARK_E_NOMEM;
    for (size_t i = 0; i < res->n_words; i++) {
        p->words[i] = res->words[i];
        if (!(p->words[i].word = hark_strdup(res->words[i].word)))
            return HARK_E_NOMEM;
        p->n_words++;
    }
    p->confidence = res->confidence;
    return 0;
}

/* Recognise a kept utterance with the (synchronous) fallback engine. */
static int replay(struct stage *st, struct recog *r, struct pend *p, struct engine_result *res)
{
    const struct engine_ops *ops = r->eng->ops;
    int rc = acquire(st, r, ACQUIRE_WAIT_MS);
    if (rc)
        return rc;
    if (p->n)
        rc = feed_engine(st, r, p->audio, p->n);
    if (!rc && (rc = ops->utt_end(r->es, res)))
        pipeline_error(st->pl, rc, "engine failed to finish the utterance");
    return rc;
}

/* Delivers a pending final whose outcome is known. */
static int emit_pend(struct stage *st, struct recog *r, struct pend *p)
{
    struct pipeline *pl = st->pl;
    int rc = 0;
    struct engine_result res = {.text = ""};
    int voice = pl->utt_voice;
    pl->utt_voice = p->voice;
    if (p->state == P_DONE) {
        res = (struct engine_result){p->text, p->words, p->n_words, p->confidence};
    } else if (!r->async) {
        /* failed over: the fallback hears the kept audio */
        announce_failover(st, r, p->start);
        replay(st, r, p, &res);
    } else {
        pipeline_error(pl, p->err, "%s", p->msg);
    }
    rc = send_result(st, p->start, &res, 1, p->reason, p->end);
    if (!r->async && r->es) {
        r->eng->ops->stream_release(r->es);
        r->es = NULL;
    }
    pl->utt_voice = voice;
    return rc;
}

/* Sends on what is no longer behind an awaited result. */
static int release_ready(struct stage *st, struct recog *r)
{
    int first = 0;
    while (r->q_len) {
        struct item *it = &r->q[r->q_head];
        if (it->p && it->p->state == P_WAIT && r->async)
            break;
        struct item cur = *it;
        r->q_head = (r->q_head + 1) % (HOLD_MAX + PEND_MAX);
        r->q_len--;
        int rc;
        if (cur.p) {
            r->n_pend--;
            st->pl->results_pending = r->n_pend;
            rc = emit_pend(st, r, cur.p);
            pend_free(cur.p);
        } else {
            /* Sent with the queue still non-empty would re-queue it. */
            size_t saved = r->q_len;
            r->q_len = 0;
            rc = stage_emit(st, &cur.f);
            r->q_len = saved;
            hark_free(cur.message);
        }
        if (rc && !first)
            first = rc;
    }
    return first;
}

static struct pend *find_pend(struct recog *r, uint64_t ticket)
{
    for (size_t i = 0; i < r->q_len; i++) {
        struct item *it = &r->q[(r->q_head + i) % (HOLD_MAX + PEND_MAX)];
        if (it->p && it->p->ticket == ticket)
            return it->p;
    }
    return NULL;
}

/* The provider failed: go on with the fallback for the rest of the session. */
static int fail_over(struct stage *st, struct recog *r, const struct engine_done *d)
{
    struct pipeline *pl = st->pl;
    struct hark_engine *fb = pl->engine->fallback;
    engine_breaker_result(pl->engine, 0, r->probe);
    r->reported = 1;
    pl->engine->ops->stream_release(r->es); /* cancels what is still in flight */
    r->es = NULL;
    r->eng = fb;
    r->async = 0;
    r->failover_reason = d->reason ? d->reason : "error";
    r->failover_code = d->err;
    snprintf(r->failover_msg, sizeof r->failover_msg, "%.200s; continuing with %s", d->message,
             fb->ops->name);
    /* Everything unanswered is replayed now, in order (release_ready sees
     * async off), then the open utterance's audio so far. */
    int rc = release_ready(st, r);
    if (r->in_utt) {
        announce_failover(st, r, r->utt_start);
        int rc2 = acquire(st, r, 0);
        if (rc2 == 0)
            rc2 = r->utt_n ? feed_engine(st, r, r->utt_audio, r->utt_n) : 0;
        else if (rc2 == HARK_E_BUSY) {
            /* no stream free yet: the audio waits in the backlog (on_audio) */
            rc2 = 0;
            if (r->utt_n && !mem_grow(&r->backlog, &r->backlog_cap, r->utt_n, sizeof(float))) {
                memcpy(r->backlog, r->utt_audio, r->utt_n * sizeof(float));
                r->backlog_len = r->utt_n;
            }
        }
        if (rc2 && !rc)
            rc = rc2;
    }
    r->utt_n = 0;
    return rc;
}

/* Takes the engine's completed utterances. */
static int collect(struct stage *st, struct recog *r)
{
    struct engine_done d;
    int rc = 0;
    while (r->async && r->es && r->eng->ops->utt_poll(r->es, &d)) {
        struct pend *p = find_pend(r, d.ticket);
        if (!p)
            continue;
        if (d.err && st->pl->engine->fallback) {
            p->state = P_FAILED;
            rc = fail_over(st, r, &d);
            break;
        }
        if (d.err) {
            p->state = P_FAILED;
            p->err = d.err;
            snprintf(p->msg, sizeof p->msg, "%s", d.message);
        } else {
            p->state = P_DONE;
            if (pend_keep(p, &d.result))
                p->state = P_FAILED, p->err = HARK_E_NOMEM,
                snprintf(p->msg, sizeof p->msg, "out of memory keeping a result");
            if (!r->reported && st->pl->engine->fallback) {
                engine_breaker_result(st->pl->engine, 1, r->probe);
                r->reported = 1;
            }
        }
    }
    int rc2 = release_ready(st, r);
    return rc ? rc : rc2;
}

/* Waits until nothing is held (all) or there is room in the queue. */
static int wait_results(struct stage *st, struct recog *r, int all)
{
    int64_t deadline = clock_mono_ns() + (int64_t)WAIT_MAX_MS * 1000000;
    int rc = 0;
    while (r->async && r->q_len &&
           (all || r->n_pend >= PEND_MAX || r->q_len >= HOLD_MAX + PEND_MAX - 1)) {
        if (clock_mono_ns() > deadline) {
            struct engine_done d = {.err = HARK_E_TIMEOUT, .reason = "timeout"};
            snprintf(d.message, sizeof d.message, "no result from engine %s within %d ms",
                     r->eng->ops->name, WAIT_MAX_MS);
            struct item *it = &r->q[r->q_head];
            if (it->p)
                d.ticket = it->p->ticket;
            if (st->pl->engine->fallback) {
                if (it->p)
                    it->p->state = P_FAILED;
                return fail_over(st, r, &d);
            }
            if (it->p) {
                it->p->state = P_FAILED, it->p->err = d.err;
                snprintf(it->p->msg, sizeof it->p->msg, "%s", d.message);
            }
            rc = release_ready(st, r);
            continue;
        }
        r->eng->ops->utt_wait(r->es, 1000);
        if ((rc = collect(st, r)))
            return rc;
    }
    return rc;
}

/* ------------------------------------------------------------ frames */

static int maybe_partial(struct stage *st, struct recog *r)
{
    struct pipeline *pl = st->pl;
    /* A network engine's partial waits until no final is held: sent now, it
     * would overtake them. */
    if (!pl->opts->interim_results || !r->es || (r->async && r->q_len))
        return 0;
    if (r->since_partial < (int64_t)pl->opts->partial_interval_ms * PIPE_RATE / 1000)
        return 0;
    r->since_partial = 0;
    struct engine_result res = {0};
    if (r->eng->ops->utt_partial(r->es, &res) || !res.text || !res.text[0])
        return 0;
    if (r->last_partial && strcmp(r->last_partial, res.text) == 0)
        return 0;
    hark_free(r->last_partial);
    r->last_partial = hark_strdup(res.text);
    return send_result(st, r->utt_start, &res, 0, HARK_REASON_NONE, r->fed_to);
}

static int on_audio(struct stage *st, struct recog *r, const struct frame *f)
{
    if (!r->in_utt)
        return 0; /* cannot happen: vad sends audio only inside utterances */
    int rc;
    r->fed_to = f->pos + (int64_t)f->n;
    if (r->async) {
        if (r->utt_n + f->n > (size_t)r->max_samples)
            return pipeline_error(st->pl, HARK_E_LIMIT, "utterance longer than max_utterance_ms");
        if (mem_grow(&r->utt_audio, &r->utt_cap, r->utt_n + f->n, sizeof *r->utt_audio))
            return pipeline_error(st->pl, HARK_E_NOMEM, "out of memory buffering audio");
        memcpy(r->utt_audio + r->utt_n, f->samples, f->n * sizeof(float));
        r->utt_n += f->n;
        if (!r->es)
            return 0;
        if ((rc = feed_engine(st, r, f->samples, f->n)))
            return rc;
        r->since_partial += (int64_t)f->n;
        return maybe_partial(st, r);
    }
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
    if (r->es && !r->async)
        r->eng->ops->stream_release(r->es);
    if (!r->async)
        r->es = NULL;
    r->in_utt = 0;
    r->backlog_len = 0;
    r->since_partial = 0;
    r->utt_n = 0;
    hark_free(r->last_partial);
    r->last_partial = NULL;
}

/* ENGINE_ASYNC: submit the utterance; its final waits in the queue. */
static int submit(struct stage *st, struct recog *r, const struct frame *f)
{
    struct pipeline *pl = st->pl;
    int rc = wait_results(st, r, 0); /* room for one more */
    if (rc || !r->async)
        return rc ? rc : -1; /* failed over meanwhile: the caller goes the sync way */
    struct pend *p = hark_calloc(1, sizeof *p);
    if (!p)
        return pipeline_error(pl, HARK_E_NOMEM, "out of memory");
    p->ticket = ++r->next_ticket;
    p->start = r->utt_start;
    p->end = f->pos;
    p->reason = f->reason;
    p->voice = pl->utt_voice;
    p->audio = r->utt_audio;
    p->n = r->utt_n;
    r->utt_audio = NULL;
    r->utt_n = r->utt_cap = 0;
    if (r->es && (rc = r->eng->ops->utt_submit(r->es, p->ticket))) {
        p->state = P_FAILED;
        p->err = rc;
        snprintf(p->msg, sizeof p->msg, "engine could not take the utterance: %s",
                 hark_strerror(rc));
    } else if (!r->es) {
        p->state = P_FAILED;
        p->err = HARK_E_ENGINE;
        snprintf(p->msg, sizeof p->msg, "engine %s has no stream for this session",
                 r->eng->ops->name);
    }
    struct item *it = &r->q[(r->q_head + r->q_len) % (HOLD_MAX + PEND_MAX)];
    *it = (struct item){.p = p};
    r->q_len++;
    r->n_pend++;
    st->pl->results_pending = r->n_pend;
    end_cleanup(st, r);
    if (p->state == P_FAILED && pl->engine->fallback) {
        struct engine_done d = {.ticket = p->ticket, .err = p->err, .reason = "error"};
        snprintf(d.message, sizeof d.message, "%s", p->msg);
        return fail_over(st, r, &d);
    }
    if (!pl->notify) /* nobody would call us back: wait for it now */
        return wait_results(st, r, 1);
    return collect(st, r);
}

static int on_utt_end(struct stage *st, struct recog *r, const struct frame *f)
{
    struct engine_result res = {.text = ""};
    int rc = 0;
    if (!r->in_utt) {
        /* finalize with nothing pending still gets its (empty) final */
        if (f->reason != HARK_REASON_FINALIZE)
            return 0;
        if (r->q_len) {
            /* A result frame cannot be held (it points at storage): a pend
             * with a known empty outcome stands in for it. */
            struct pend *p = hark_calloc(1, sizeof *p);
            if (!p || !(p->text = hark_strdup(""))) {
                hark_free(p);
                return pipeline_error(st->pl, HARK_E_NOMEM, "out of memory");
            }
            p->state = P_DONE;
            p->start = p->end = f->pos;
            p->reason = f->reason;
            struct item *it = &r->q[(r->q_head + r->q_len) % (HOLD_MAX + PEND_MAX)];
            *it = (struct item){.p = p};
            r->q_len++;
            r->n_pend++;
            st->pl->results_pending = r->n_pend;
            return 0;
        }
        return send_result(st, f->pos, &res, 1, f->reason, f->pos);
    }
    if (r->async && (rc = submit(st, r, f)) != -1)
        return rc;
    rc = 0;
    /* Bounded: a worker blocked here cannot run the sessions that hold
     * the streams it waits for. */
    if (!r->es && (rc = acquire(st, r, ACQUIRE_WAIT_MS)) == 0)
        rc = drain_backlog(st, r);
    if (r->es && !rc) {
        rc = r->eng->ops->utt_end(r->es, &res);
        if (rc) {
            pipeline_error(st->pl, rc, "engine failed to finish the utterance");
            res = (struct engine_result){.text = ""};
        }
    }
    /* Exactly one final per segment, even when the engine failed. */
    int rc2 = send_result(st, r->utt_start, &res, 1, f->reason, f->pos);
    end_cleanup(st, r);
    return rc ? rc : rc2;
}

static int on_utt_start(struct stage *st, struct recog *r, const struct frame *f)
{
    if (r->in_utt)
        end_cleanup(st, r);
    r->in_utt = 1;
    r->utt_start = f->pos;
    r->fed_to = f->pos;
    r->backlog_pos = f->pos;
    r->utt_n = 0;
    int rc = 0;
    if (!r->q_len)
        announce_failover(st, r, f->pos); /* circuit open at the session's start */
    if (r->async && !r->es)
        rc = acquire(st, r, 0);
    if (!rc && r->async && r->es && (rc = r->eng->ops->utt_start(r->es)))
        pipeline_error(st->pl, rc, "engine could not start an utterance");
    int rc2 = out(st, r, f);
    return rc ? rc : rc2;
}

/* Audio between utterances, for an engine that streams everything. */
static int on_gap(struct stage *st, struct recog *r, const struct frame *f)
{
    if (!r->async || !r->eng->ops->gap_feed)
        return 0; /* failed over: the fallback hears utterances only */
    if (!r->es) {
        int rc = acquire(st, r, 0);
        if (rc)
            return rc;
    }
    int rc = r->eng->ops->gap_feed(r->es, f->samples, f->n);
    return rc ? pipeline_error(st->pl, rc, "engine failed taking audio") : 0;
}

static int recog_write(struct stage *st, const struct frame *f)
{
    struct recog *r = st->priv;
    switch (f->kind) {
    case FRAME_GAP:
        return on_gap(st, r, f);
    case FRAME_UTT_START:
        return on_utt_start(st, r, f);
    case FRAME_AUDIO:
        return on_audio(st, r, f);
    case FRAME_UTT_END:
        return on_utt_end(st, r, f);
    default:
        return out(st, r, f);
    }
}

static int recog_flush(struct stage *st, enum hark_reason reason)
{
    /* The vad stage already ended any utterance. On close every result
     * must be in before the CLOSED event. */
    struct recog *r = st->priv;
    if (reason == HARK_REASON_CLOSE || !st->pl->notify)
        return wait_results(st, r, 1);
    return collect(st, r);
}

static int recog_poll(struct stage *st)
{
    return collect(st, st->priv);
}

static void recog_close(struct stage *st)
{
    struct recog *r = st->priv;
    if (!r)
        return;
    end_cleanup(st, r);
    if (r->es)
        r->eng->ops->stream_release(r->es);
    while (r->q_len) {
        struct item *it = &r->q[r->q_head];
        if (it->p)
            pend_free(it->p);
        hark_free(it->message);
        r->q_head = (r->q_head + 1) % (HOLD_MAX + PEND_MAX);
        r->q_len--;
    }
    /* A probe session that ended before any result leaves the breaker
     * half open for the next one. */
    if (r->probe && !r->reported)
        engine_breaker_result(st->pl->engine, -1, 1);
    hark_free(r->q);
    hark_free(r->utt_audio);
    hark_free(r->backlog);
    hark_free(r->vocab);
    hark_free(r);
    st->priv = NULL;
}

static void recog_describe(struct stage *st, struct buf *out)
{
    struct recog *r = st->priv;
    buf_printf(out, "recognise(%s)", r ? r->eng->ops->name : st->pl->engine->ops->name);
}

const struct stage_ops stage_recognise_ops = {
    .name = "recognise",
    .init = recog_init,
    .write = recog_write,
    .flush = recog_flush,
    .poll = recog_poll,
    .close = recog_close,
    .describe = recog_describe,
};
