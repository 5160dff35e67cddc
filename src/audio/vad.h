/* Frame speech classifier: WebRTC VAD (Debian's libwebrtc-audio-processing)
 * combined with a spectral-flatness check, because WebRTC alone marks loud
 * white noise as speech in every mode. A frame is speech when WebRTC says so,
 * its level is above -55 dBFS, and the flatness of its 200 Hz-4 kHz power
 * spectrum (over the last 32 ms, after removing the best-fitting power-law
 * tilt so that pink and brown noise look as flat as white) is below a
 * threshold. Frames are VAD_FRAME samples (20 ms) of 16 kHz mono float.
 * One instance per stream; not thread-safe. */
#ifndef HARK_AUDIO_VAD_H
#define HARK_AUDIO_VAD_H

#include <stddef.h>

#define VAD_RATE 16000
#define VAD_FRAME 320 /* 20 ms at 16 kHz */

struct vad;

/* mode 0..3: WebRTC aggressiveness (higher = fewer frames called speech);
 * HARK_E_INVAL for any other mode, HARK_E_NOMEM. The caller owns *out. */
int vad_create(struct vad **out, int mode);
void vad_destroy(struct vad *v); /* NULL is a no-op */
/* Forgets the stream: WebRTC's noise model and the 32 ms history. */
void vad_reset(struct vad *v);

/* 1 speech, 0 not speech; HARK_E_INVAL for NULL arguments, HARK_E_INTERNAL
 * if WebRTC rejects the frame (never seen). frame holds
 * VAD_FRAME samples in [-1, 1] (larger values are clamped; NaN and infinities count as 0). */
int vad_frame(struct vad *v, const float *frame);

/* Features of the last frame, for tests and tuning: the tilt-compensated
 * flatness (0..1; ~0.57 for stationary noise; NAN when the frame was already
 * rejected by WebRTC or the level floor, which skips the spectrum) and the
 * mean-square level in dB full scale (a full-scale square wave is 0 dB, a
 * sine of amplitude A is 20*log10(A) - 3; -INFINITY for digital silence). */
float vad_last_flatness(const struct vad *v);
/* on: take the spectrum of every frame, so vad_last_flatness is never NAN
 * (tests and tuning; the decisions are the same either way). */
void vad_set_full_analysis(struct vad *v, int on);
float vad_last_energy_db(const struct vad *v);

#endif
