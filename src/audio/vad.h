/* Frame speech classifier: WebRTC VAD (Debian's libwebrtc-audio-processing)
 * combined with a spectral-flatness check, because WebRTC alone marks loud
 * white noise as speech in every mode. Frames are VAD_FRAME samples (20 ms)
 * of 16 kHz mono float. One instance per stream; not thread-safe. */
#ifndef HARK_AUDIO_VAD_H
#define HARK_AUDIO_VAD_H

#include <stddef.h>

#define VAD_RATE 16000
#define VAD_FRAME 320 /* 20 ms at 16 kHz */

struct vad;

/* mode 0..3: WebRTC aggressiveness (higher = fewer frames called speech). */
int vad_create(struct vad **out, int mode);
void vad_destroy(struct vad *v);
void vad_reset(struct vad *v);

/* 1 speech, 0 not speech. */
int vad_frame(struct vad *v, const float *frame);

/* Feature of the last frame, for tests and tuning. */
float vad_last_flatness(const struct vad *v);
float vad_last_energy_db(const struct vad *v);

#endif
