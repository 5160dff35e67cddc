/*
 * Stage 5: turns engine hypotheses and VAD marks into the public result
 * contract (DESIGN.md §4): segments numbered from 0, one final per segment,
 * seq +1 per event, session-relative times, committed_ms on finals,
 * speech_final on endpoint finals, utterance_end after utterance_end_ms
 * without new words, voice_activity from the VAD, and the interrupts the
 * VAD finds while the state is "responding" (which switch it to listening).
 */
#include <string.h>

#include "base/mem.h"
#include "session/stage.h"

struct assemble {
    int64_t segment;
    struct hark_word *words;
    size_t words_cap;
    /* utterance_end: armed by a final with words, disarmed when it fires or
     * when new words show up in a partial */
    int ue_armed;
    double last_word_end;
    int utt_has_words;
};

static int assemble_init(struct stage *st)
{
    st->priv = hark_calloc(1, sizeof(struct assemble));
    return st->priv ? 0 : HARK_E_NOMEM;
}

static double secs(int64_t pos)
{
    return (double)pos / PIPE_RATE;
}

static int on_result(struct stage *st, struct assemble *a, const struct frame *f)
{
    struct pipeline *pl = st->pl;
    const struct engine_result *res = f->result;
    double base = secs(f->start_pos);
    struct hark_event ev = {
        .type = HARK_EVENT_TRANSCRIPT,
        .segment = a->segment,
        .is_final = f->is_final,
        .reason = f->is_final ? f->reason : HARK_REASON_NONE,
        .speech_final = f->is_final && f->reason == HARK_REASON_ENDPOINT,
        .text = res->text ? res->text : "",
        .start = base,
        .end = secs(f->pos),
        .voice_activity = pl->utt_voice,
    };
    if (mem_grow(&a->words, &a->words_cap, res->n_words, sizeof *a->words))
        return pipeline_error(pl, HARK_E_NOMEM, "out of memory assembling words");
    double conf = 0;
    for (size_t i = 0; i < res->n_words; i++) {
        const struct engine_word *ew = &res->words[i];
        a->words[i] = (struct hark_word){
            .word = ew->word,
            .start = base + ew->start,
            .end = base + ew->end,
            .confidence = ew->confidence,
        };
        conf += ew->confidence;
    }
    if (res->n_words)
        ev.confidence = (float)(conf / (double)res->n_words);
    else if (ev.text[0])
        ev.confidence = res->confidence;
    if (pl->opts->words) {
        /* non-NULL even when empty: NULL means "words off" to renderers */
        static const struct hark_word no_words[1];
        ev.words = res->n_words ? a->words : no_words;
        ev.n_words = res->n_words;
    }
    if (f->is_final) {
        ev.committed_ms = f->pos * 1000 / PIPE_RATE;
        a->segment++;
        pl->segments_done++;
        if (res->n_words) {
            a->ue_armed = 1;
            a->last_word_end = base + res->words[res->n_words - 1].end;
        }
        a->utt_has_words = 0;
    } else if (ev.text[0]) {
        a->utt_has_words = 1;
        a->ue_armed = 0;
    }
    pipeline_deliver(pl, &ev);
    return 0;
}

static int on_speech_start(struct stage *st, struct assemble *a, const struct frame *f)
{
    struct pipeline *pl = st->pl;
    if (pl->opts->vad_events) {
        struct hark_event ev = {
            .type = HARK_EVENT_SPEECH_STARTED, .segment = a->segment, .start = secs(f->pos)};
        pipeline_deliver(pl, &ev);
    }
    return 0;
}

/* The VAD sends INTERRUPT only while the state is responding and detection
 * is on; switching to listening here is what makes it one per switch. */
static int on_interrupt(struct stage *st, const struct frame *f)
{
    struct pipeline *pl = st->pl;
    if (!pl->state || *pl->state != HARK_STATE_RESPONDING)
        return 0;
    *pl->state = HARK_STATE_LISTENING;
    struct hark_event ev = {.type = HARK_EVENT_INTERRUPT, .start = secs(f->pos)};
    pipeline_deliver(pl, &ev);
    return 0;
}

static int on_clock(struct stage *st, struct assemble *a, const struct frame *f)
{
    struct pipeline *pl = st->pl;
    int ue = pl->opts->utterance_end_ms;
    if (!ue || !a->ue_armed || a->utt_has_words)
        return 0;
    if ((secs(f->pos) - a->last_word_end) * 1000.0 < ue)
        return 0;
    a->ue_armed = 0;
    struct hark_event ev = {.type = HARK_EVENT_UTTERANCE_END, .end = a->last_word_end};
    pipeline_deliver(pl, &ev);
    return 0;
}

static int assemble_write(struct stage *st, const struct frame *f)
{
    struct assemble *a = st->priv;
    switch (f->kind) {
    case FRAME_RESULT:
        return on_result(st, a, f);
    case FRAME_SPEECH_START:
        return on_speech_start(st, a, f);
    case FRAME_INTERRUPT:
        return on_interrupt(st, f);
    case FRAME_CLOCK:
        return on_clock(st, a, f);
    case FRAME_ERROR: {
        struct hark_event ev = {.type = HARK_EVENT_ERROR, .code = f->code, .message = f->message};
        pipeline_deliver(st->pl, &ev);
        return 0;
    }
    default:
        return 0; /* end of the chain */
    }
}

static int assemble_flush(struct stage *st, enum hark_reason reason)
{
    return 0;
}

static void assemble_close(struct stage *st)
{
    struct assemble *a = st->priv;
    if (!a)
        return;
    hark_free(a->words);
    hark_free(a);
    st->priv = NULL;
}

static void assemble_describe(struct stage *st, struct buf *out)
{
    buf_puts(out, "assemble");
}

const struct stage_ops stage_assemble_ops = {
    .name = "assemble",
    .init = assemble_init,
    .write = assemble_write,
    .flush = assemble_flush,
    .close = assemble_close,
    .describe = assemble_describe,
};
