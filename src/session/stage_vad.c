/*
 * Stage 3: voice activity detection and endpointing. Cuts the 16 kHz stream
 * into utterances; only utterance audio goes on to the engine, so silence
 * between turns costs no recognition CPU.
 *
 *   SILENT  frames go into a pre-roll ring. Speech onset = ONSET_MIN speech
 *           frames among the last ONSET_WINDOW: emit SPEECH_START, UTT_START
 *           at the oldest ring sample (so soft word onsets are not clipped),
 *           then the ring's audio.
 *   SPEECH  frames go on. endpointing_ms of non-speech ends the utterance
 *           (UTT_END, reason endpoint); max_utterance_ms forces a cut
 *           (reason max_length), preferring a non-speech frame near the limit.
 *           Past 300 ms of a pause, non-speech frames are held back:
 *           if speech resumes they go on first (the engine sees every
 *           sample, in order), if the endpoint comes they are dropped. The
 *           engine needs only a short silence to close the last word, and
 *           decoding silence costs it most of what speech costs, so this
 *           saves endpointing_ms - 300 ms of decoding per utterance.
 *
 * The ring only ever holds audio from after the last utterance ended, so
 * every sample is either in an utterance or provably silence: that is what
 * lets finals carry committed_ms.
 *
 * The detector classifies every frame, also with the vad option off (then
 * it only stops gating and endpointing). Its verdicts ("heard") drive two
 * things that must not depend on the gating:
 *   - Interrupts: while the turn state is responding, the first frame heard
 *     as speech with ONSET_MIN of the last ONSET_WINDOW frames heard as
 *     speech (the onset rule) sends INTERRUPT, also in the middle of an
 *     utterance; assemble then switches the state to listening, so there is
 *     one interrupt per switch to responding.
 *   - has_voice_activity: whether speech was heard in the utterance
 *     (pl->utt_voice, reset after the utterance's UTT_END went down).
 */
#include <string.h>

#include "audio/vad.h"
#include "base/mem.h"
#include "engines/sherpa/sh_vad.h"
#include "session/stage.h"

#define ONSET_WINDOW 8
#define ONSET_MIN 5
#define PREROLL_SAMPLES (PIPE_RATE * 3 / 10) /* 300 ms */
/* Silero calls speech later than WebRTC at a word onset: 400 ms on average
 * at the first word of the librivox clips, where WebRTC takes 36 ms
 * (bench/bench_vad.c); with 300 ms of pre-roll it clipped the first words
 * ("and", "he was") of two clips in a row, so its utterances start 700 ms
 * back. */
#define PREROLL_SILERO (PIPE_RATE * 7 / 10)
/* Unconfirmed speech at finalize/close still becomes an utterance when at
 * least this many recent frames were speech (a short last word). */
#define FLUSH_MIN_SPEECH 2
/* Trailing non-speech the engine always gets before a pause is held back.
 * 300 ms: with 200 ms the search has not settled into silence at the end of
 * the utterance and the final pass cost ~2.5x as much (bench_pipeline
 * --sections latency: the endpoint feed call 100 ms instead of 35-40). */
#define TAIL_KEEP_FRAMES 15 /* 300 ms */
/* Most audio held back at once; longer pauses go to the engine in pieces. */
#define HOLD_MAX_SAMPLES PIPE_RATE /* 1 s */
_Static_assert(SH_VAD_FRAME == VAD_FRAME, "both classifiers take the same frames");

enum vad_state { V_SILENT, V_SPEECH };

struct vadst {
    struct vad *vad;       /* WebRTC, or NULL when: */
    struct sh_vad *silero; /* the engine has a Silero model (--vad silero) */
    const struct sh_vad_model *silero_model;
    enum vad_state state;
    float frame[VAD_FRAME];
    size_t frame_len;
    int64_t frame_pos; /* pos of frame[0] */
    int64_t pos;       /* next sample position */

    float ring[PREROLL_SILERO];
    size_t preroll;   /* samples the ring holds: PREROLL_SAMPLES or PREROLL_SILERO */
    size_t ring_head; /* index of the oldest sample */
    size_t ring_len;

    unsigned char window[ONSET_WINDOW]; /* speech flags of recent frames, circular */
    unsigned char heard[ONSET_WINDOW];  /* the detector's verdicts of the same frames */
    int64_t window_pos[ONSET_WINDOW];
    int window_i;

    int64_t utt_start;
    int trailing_silence; /* frames */

    float *held; /* HOLD_MAX_SAMPLES, allocated on first use */
    size_t held_len;
    int64_t held_pos; /* pos of held[0] */
};

static int vad_init_stage(struct stage *st)
{
    struct vadst *v = hark_calloc(1, sizeof *v);
    if (!v)
        return HARK_E_NOMEM;
    st->priv = v;
    for (int i = 0; i < ONSET_WINDOW; i++)
        v->window_pos[i] = -1;
    /* Silero replaces WebRTC for every session of the engine; vad_mode
     * (WebRTC's aggressiveness) then has no effect. */
    v->preroll = PREROLL_SAMPLES;
    if (st->pl->engine && st->pl->engine->silero) {
        /* The detector (an onnxruntime session, ~60 ms of CPU) is made at
         * the first frame, on the session's worker, not here on the front
         * end's thread. */
        v->preroll = PREROLL_SILERO;
        v->silero_model = st->pl->engine->silero;
        return 0;
    }
    return vad_create(&v->vad, st->pl->opts->vad_mode);
}

/* Audio no utterance will have, for an engine that streams everything
 * (pl->want_gaps): every sample goes down exactly once, AUDIO or GAP, in
 * order. */
static int emit_gap(struct stage *st, const float *s, size_t n, int64_t pos)
{
    if (!st->pl->want_gaps || !n)
        return 0;
    struct frame f = {.kind = FRAME_GAP, .samples = s, .n = n, .rate = PIPE_RATE, .pos = pos};
    return stage_emit(st, &f);
}

/* Appends n samples (n <= PREROLL_SAMPLES) that start at v->frame_pos; the
 * oldest fall out (as GAP when wanted). */
static int ring_push(struct stage *st, struct vadst *v, const float *s, size_t n)
{
    size_t over = v->ring_len + n > PREROLL_SAMPLES ? v->ring_len + n - PREROLL_SAMPLES : 0;
    if (over && st->pl->want_gaps) {
        int64_t oldest = v->frame_pos - (int64_t)v->ring_len;
        size_t first =
            PREROLL_SAMPLES - v->ring_head < over ? PREROLL_SAMPLES - v->ring_head : over;
        int rc = emit_gap(st, v->ring + v->ring_head, first, oldest);
        if (!rc)
            rc = emit_gap(st, v->ring, over - first, oldest + (int64_t)first);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < n; i++) {
        size_t at = (v->ring_head + v->ring_len) % v->preroll;
        v->ring[at] = s[i];
        if (v->ring_len < v->preroll)
            v->ring_len++;
        else
            v->ring_head = (v->ring_head + 1) % v->preroll;
    }
    return 0;
}

static void window_clear(struct vadst *v)
{
    memset(v->window, 0, sizeof v->window);
    memset(v->heard, 0, sizeof v->heard);
    for (int i = 0; i < ONSET_WINDOW; i++)
        v->window_pos[i] = -1;
}

static int count_flags(const struct vadst *v, const unsigned char *flags, int64_t *first_pos)
{
    int count = 0;
    int64_t first = -1;
    for (int i = 0; i < ONSET_WINDOW; i++) {
        if (flags[i]) {
            count++;
            if (first < 0 || v->window_pos[i] < first)
                first = v->window_pos[i];
        }
    }
    if (first_pos)
        *first_pos = first;
    return count;
}

static int window_speech(const struct vadst *v, int64_t *first_pos)
{
    return count_flags(v, v->window, first_pos);
}

/* Interrupt detection is armed: the option is on and the state responding. */
static int interrupt_armed(const struct stage *st)
{
    const struct pipeline *pl = st->pl;
    return pl->opts->interrupt_detection && pl->state && *pl->state == HARK_STATE_RESPONDING;
}

static int emit_simple(struct stage *st, enum frame_kind kind, int64_t pos, enum hark_reason reason,
                       int64_t start_pos)
{
    struct frame f = {.kind = kind, .pos = pos, .reason = reason, .start_pos = start_pos};
    return stage_emit(st, &f);
}

static int emit_audio(struct stage *st, const float *s, size_t n, int64_t pos)
{
    struct frame f = {.kind = FRAME_AUDIO, .samples = s, .n = n, .rate = PIPE_RATE, .pos = pos};
    return n ? stage_emit(st, &f) : 0;
}

/* The utterance's final is made while UTT_END goes down; the next one starts
 * without speech heard. */
static int emit_utt_end(struct stage *st, int64_t pos, enum hark_reason reason, int64_t start_pos)
{
    int rc = emit_simple(st, FRAME_UTT_END, pos, reason, start_pos);
    st->pl->utt_voice = 0;
    return rc;
}

/* Sends the held-back pause on, ahead of whatever follows it. */
static int release_held(struct stage *st, struct vadst *v)
{
    size_t n = v->held_len;
    v->held_len = 0;
    return emit_audio(st, v->held, n, v->held_pos);
}

static int hold_frame(struct stage *st, struct vadst *v)
{
    int rc;
    if (!v->held && !(v->held = hark_malloc(HOLD_MAX_SAMPLES * sizeof *v->held)))
        return emit_audio(st, v->frame, VAD_FRAME, v->frame_pos); /* no saving, no loss */
    if (v->held_len + VAD_FRAME > HOLD_MAX_SAMPLES && (rc = release_held(st, v)))
        return rc;
    if (!v->held_len)
        v->held_pos = v->frame_pos;
    memcpy(v->held + v->held_len, v->frame, sizeof v->frame);
    v->held_len += VAD_FRAME;
    return 0;
}

/* Starts an utterance with the ring's audio as its beginning; `interrupt`:
 * the onset is also an interrupt (it goes out before any of the audio, so
 * every result of the utterance has the new state). */
static int start_utterance(struct stage *st, struct vadst *v, int64_t onset_pos, int interrupt)
{
    int rc;
    int64_t start = v->pos - (int64_t)v->ring_len;
    if (onset_pos < start)
        onset_pos = start;
    if ((rc = emit_simple(st, FRAME_SPEECH_START, onset_pos, HARK_REASON_NONE, 0)))
        return rc;
    if (interrupt && (rc = emit_simple(st, FRAME_INTERRUPT, onset_pos, HARK_REASON_NONE, 0)))
        return rc;
    /* the ring's frames are the window's (vad off) or include the onset's
     * speech frames (vad on) */
    st->pl->utt_voice = count_flags(v, v->heard, NULL) > 0;
    if ((rc = emit_simple(st, FRAME_UTT_START, start, HARK_REASON_NONE, start)))
        return rc;
    size_t first = v->ring_len;
    if (v->ring_head + first > v->preroll)
        first = v->preroll - v->ring_head;
    if ((rc = emit_audio(st, v->ring + v->ring_head, first, start)))
        return rc;
    if ((rc = emit_audio(st, v->ring, v->ring_len - first, start + (int64_t)first)))
        return rc;
    v->ring_len = 0;
    v->ring_head = 0;
    v->state = V_SPEECH;
    v->utt_start = start;
    v->trailing_silence = 0;
    return 0;
}

static int end_utterance(struct stage *st, struct vadst *v, enum hark_reason reason)
{
    int rc = emit_gap(st, v->held, v->held_len, v->held_pos);
    if (rc)
        return rc;
    v->held_len = 0; /* the pause after the last word: not needed */
    v->state = V_SILENT;
    window_clear(v);
    return emit_utt_end(st, v->pos, reason, v->utt_start);
}

static int process_frame(struct stage *st, struct vadst *v)
{
    const struct hark_options *o = st->pl->opts;
    /* The detector always runs (header comment). vad off: every frame is
     * speech for the gating, so only finalize, max length and close end
     * utterances (the seed's buffer-and-timeout behaviour). */
    int rc = 0;
    if (v->silero_model && !v->silero && (rc = sh_vad_create(&v->silero, v->silero_model)))
        return rc;
    /* errors count as non-speech */
    int heard = (v->silero ? sh_vad_frame(v->silero, v->frame) : vad_frame(v->vad, v->frame)) > 0;
    int speech = !o->vad || heard;
    v->window[v->window_i] = (unsigned char)speech;
    v->heard[v->window_i] = (unsigned char)heard;
    v->window_pos[v->window_i] = v->frame_pos;
    v->window_i = (v->window_i + 1) % ONSET_WINDOW;
    int64_t intr_pos = -1;
    int interrupt =
        heard && interrupt_armed(st) && count_flags(v, v->heard, &intr_pos) >= ONSET_MIN;

    if (v->state == V_SILENT) {
        if ((rc = ring_push(st, v, v->frame, VAD_FRAME)))
            return rc;
        v->pos = v->frame_pos + VAD_FRAME;
        int64_t onset;
        /* the gating counts at least the heard frames, so an interrupt is
         * never due here without an onset */
        if (window_speech(v, &onset) >= ONSET_MIN)
            rc = start_utterance(st, v, onset, interrupt);
    } else {
        /* before this frame's audio, which may complete a partial */
        if (interrupt && (rc = emit_simple(st, FRAME_INTERRUPT, intr_pos, HARK_REASON_NONE, 0)))
            return rc;
        st->pl->utt_voice |= heard;
        v->pos = v->frame_pos + VAD_FRAME;
        v->trailing_silence = speech ? 0 : v->trailing_silence + 1;
        if (v->trailing_silence > TAIL_KEEP_FRAMES)
            rc = hold_frame(st, v);
        else if (!(rc = release_held(st, v)))
            rc = emit_audio(st, v->frame, VAD_FRAME, v->frame_pos);
        if (rc)
            return rc;
        int64_t len_ms = (v->pos - v->utt_start) * 1000 / PIPE_RATE;
        if (o->endpointing_ms > 0 && v->trailing_silence * 20 >= o->endpointing_ms) {
            rc = end_utterance(st, v, HARK_REASON_ENDPOINT);
        } else if (len_ms >= o->max_utterance_ms ||
                   (!speech && len_ms >= (int64_t)o->max_utterance_ms * 9 / 10)) {
            /* Forced cut; speech carries straight on into a new utterance. */
            if ((rc = emit_gap(st, v->held, v->held_len, v->held_pos)))
                return rc;
            v->held_len = 0; /* a pause at the cut: silence, not needed */
            if ((rc = emit_utt_end(st, v->pos, HARK_REASON_MAX_LENGTH, v->utt_start)))
                return rc;
            v->utt_start = v->pos;
            v->trailing_silence = 0;
            rc = emit_simple(st, FRAME_UTT_START, v->pos, HARK_REASON_NONE, v->pos);
        }
    }
    if (rc)
        return rc;
    return emit_simple(st, FRAME_CLOCK, v->pos, HARK_REASON_NONE, 0);
}

static int vad_write(struct stage *st, const struct frame *f)
{
    if (f->kind != FRAME_AUDIO)
        return stage_pass(st, f);
    struct vadst *v = st->priv;
    size_t i = 0;
    while (i < f->n) {
        if (v->frame_len == 0)
            v->frame_pos = f->pos + (int64_t)i;
        size_t take = VAD_FRAME - v->frame_len;
        if (take > f->n - i)
            take = f->n - i;
        memcpy(v->frame + v->frame_len, f->samples + i, take * sizeof(float));
        v->frame_len += take;
        i += take;
        if (v->frame_len == VAD_FRAME) {
            v->frame_len = 0;
            int rc = process_frame(st, v);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int vad_flush(struct stage *st, enum hark_reason reason)
{
    struct vadst *v = st->priv;
    int rc;
    /* The samples of an incomplete frame are real audio: in an utterance the
     * engine gets them, otherwise they join the pre-roll. */
    if (v->state == V_SPEECH && (rc = release_held(st, v)))
        return rc;
    if (v->frame_len) {
        if (v->state == V_SPEECH) {
            if ((rc = emit_audio(st, v->frame, v->frame_len, v->frame_pos)))
                return rc;
        } else if ((rc = ring_push(st, v, v->frame, v->frame_len))) {
            return rc;
        }
        v->pos = v->frame_pos + (int64_t)v->frame_len;
        v->frame_len = 0;
    }
    if (v->state == V_SILENT && window_speech(v, NULL) >= FLUSH_MIN_SPEECH) {
        int64_t onset;
        window_speech(v, &onset);
        /* a short last word while responding: as many heard frames as make
         * it an utterance here make it an interrupt */
        int interrupt = interrupt_armed(st) && count_flags(v, v->heard, NULL) >= FLUSH_MIN_SPEECH;
        if ((rc = start_utterance(st, v, onset, interrupt)))
            return rc;
    }
    if (v->state == V_SPEECH)
        return end_utterance(st, v, reason);
    /* No utterance: recognise decides whether an empty final is due. */
    window_clear(v);
    return emit_utt_end(st, v->pos, reason, -1);
}

static void vad_close_stage(struct stage *st)
{
    struct vadst *v = st->priv;
    if (!v)
        return;
    vad_destroy(v->vad);
    sh_vad_destroy(v->silero);
    hark_free(v->held);
    hark_free(v);
    st->priv = NULL;
}

static void vad_describe(struct stage *st, struct buf *out)
{
    const struct hark_options *o = st->pl->opts;
    if (!o->vad) {
        buf_puts(out, "vad(off)");
        return;
    }
    struct vadst *v = st->priv;
    if (v && v->silero_model)
        buf_puts(out, "vad(silero,endpoint=");
    else
        buf_printf(out, "vad(webrtc+flatness,%d,endpoint=", o->vad_mode);
    if (o->endpointing_ms)
        buf_printf(out, "%dms)", o->endpointing_ms);
    else
        buf_puts(out, "off)");
}

const struct stage_ops stage_vad_ops = {
    .name = "vad",
    .init = vad_init_stage,
    .write = vad_write,
    .flush = vad_flush,
    .close = vad_close_stage,
    .describe = vad_describe,
};
