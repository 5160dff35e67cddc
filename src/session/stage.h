/*
 * The pipeline: an ordered chain of stages, one file each, all with the same
 * small ops table. Everything flows down as frames; a stage handles the kinds
 * it knows and passes the others on unchanged (stage_pass), so adding a stage
 * touches nothing else:
 *
 *   decode     BYTES  -> AUDIO (mono float, input rate)
 *   resample   AUDIO  -> AUDIO (16 kHz)
 *   vad        AUDIO  -> SPEECH_START, INTERRUPT, UTT_START, AUDIO (utterance only),
 *                         UTT_END, CLOCK; GAP (the rest) when pl->want_gaps
 *   recognise  UTT_*, AUDIO -> RESULT (partial / final)
 *   assemble   RESULT, SPEECH_START, INTERRUPT, CLOCK -> public events (seq, segment, ...)
 *
 * Positions (`pos`) count 16 kHz samples from the start of the session; they
 * are the session's one clock. A pipeline belongs to one session and is used
 * by one thread at a time.
 */
#ifndef HARK_SESSION_STAGE_H
#define HARK_SESSION_STAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "engines/engine.h"
#include "session/options.h"

#define PIPE_RATE 16000

enum frame_kind {
    FRAME_BYTES,        /* bytes, n: raw input */
    FRAME_AUDIO,        /* samples, n at `rate`; pos = first sample (16 kHz stages) */
    FRAME_SPEECH_START, /* pos: onset of speech */
    FRAME_INTERRUPT,    /* pos: onset of speech heard while the state is responding */
    FRAME_UTT_START,    /* pos: first sample of the utterance */
    FRAME_UTT_END,      /* pos: end of the utterance; reason */
    FRAME_CLOCK,        /* pos: all audio before pos has been seen */
    FRAME_RESULT,       /* result, is_final, reason, start_pos..pos */
    FRAME_GAP,          /* samples, n, pos: audio outside utterances, in stream order
                           with AUDIO; only when pl->want_gaps (a network engine
                           that streams everything), consumed by recognise */
    FRAME_ERROR,        /* code, message: an error the session's user reported
                           (hark_session_report_error); enters at recognise so it
                           keeps its place behind finals still awaited */
};

struct frame {
    enum frame_kind kind;
    const uint8_t *bytes;
    const float *samples;
    size_t n;
    int rate;
    int64_t pos;
    int64_t start_pos;
    enum hark_reason reason;
    int is_final;
    const struct engine_result *result;
    int code;            /* FRAME_ERROR */
    const char *message; /* FRAME_ERROR; valid for the call only */
};

struct stage;
struct pipeline;

struct stage_ops {
    const char *name;
    int (*init)(struct stage *st);
    int (*write)(struct stage *st, const struct frame *f);
    /* End of input for now (finalize or close): push out what is held. */
    int (*flush)(struct stage *st, enum hark_reason reason);
    /* Optional: results that arrived from another thread (pipeline_poll). */
    int (*poll)(struct stage *st);
    void (*close)(struct stage *st);
    /* Appends e.g. "resample(44100→16000)". */
    void (*describe)(struct stage *st, struct buf *out);
};

struct stage {
    const struct stage_ops *ops;
    struct stage *next;
    struct pipeline *pl;
    void *priv;
};

/* State shared by the stages of one session's pipeline. */
struct pipeline {
    struct stage stages[5];
    int n_stages;
    const struct hark_options *opts;
    struct hark_engine *engine;
    const char *session_id;
    int *state;    /* enum hark_state, owned by the session (interrupt detection) */
    int utt_voice; /* vad: its detector heard speech in the current utterance so
                      far; read by assemble for results (voice_activity) */
    int want_gaps; /* recognise (at init): vad sends FRAME_GAP too */
    hark_event_cb cb;
    void *cb_user;
    /* hark_session_set_notify: results of network engines are ready */
    void (*notify)(void *user);
    void *notify_user;

    int in_rate;              /* known once the decoder knows it (WAV header) */
    int64_t in_samples;       /* per-channel samples decoded at in_rate */
    int64_t segments_done;    /* finals delivered */
    unsigned results_pending; /* recognise: utterances submitted to a network engine, no
                                 result delivered yet */
    uint64_t seq;
    char errmsg[512];
    struct buf describe;
};

extern const struct stage_ops stage_decode_ops;
extern const struct stage_ops stage_resample_ops;
extern const struct stage_ops stage_vad_ops;
extern const struct stage_ops stage_recognise_ops;
extern const struct stage_ops stage_assemble_ops;

/* Hand a frame to the next stage (no-op at the end of the chain). */
int stage_emit(struct stage *st, const struct frame *f);
/* For kinds a stage does not handle. */
static inline int stage_pass(struct stage *st, const struct frame *f)
{
    return stage_emit(st, f);
}
/* Record a detail message and deliver an ERROR event; returns err. */
int pipeline_error(struct pipeline *pl, int err, const char *fmt, ...) HARK_PRINTF(3, 4);
/* An error found by the session's user (hark_session_report_error), delivered
 * in order with the events of the audio before it: it enters the chain at
 * the recognise stage, which holds it behind finals awaited from a network
 * engine like any other event. */
int pipeline_report_error(struct pipeline *pl, int code, const char *message);
/* Deliver a public event with the next seq number. */
void pipeline_deliver(struct pipeline *pl, struct hark_event *ev);

int pipeline_init(struct pipeline *pl);
int pipeline_write_bytes(struct pipeline *pl, const void *bytes, size_t n);
int pipeline_flush(struct pipeline *pl, enum hark_reason reason);
int pipeline_poll(struct pipeline *pl);
void pipeline_deinit(struct pipeline *pl);
const char *pipeline_describe(struct pipeline *pl);

#endif
