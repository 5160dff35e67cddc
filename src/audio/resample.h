/* Streaming sample-rate conversion (speexdsp), mono float. State carries
 * across calls, so a stream split anywhere resamples without discontinuity.
 * One resampler per stream; not thread-safe. */
#ifndef HARK_AUDIO_RESAMPLE_H
#define HARK_AUDIO_RESAMPLE_H

#include <stddef.h>

struct resampler;

/* quality 0..10 (speex); rates 1000..192000. */
int resampler_create(struct resampler **out, int in_rate, int out_rate, int quality);
void resampler_destroy(struct resampler *r);

/* Upper bound of output samples for n more input samples. */
size_t resampler_max_out(const struct resampler *r, size_t n);
/* Converts all n input samples; returns the number written to out. */
size_t resampler_feed(struct resampler *r, const float *in, size_t n, float *out);
/* End of stream: pushes out the samples still held in the filter delay line
 * (capacity: resampler_max_out(r, 0)); the resampler is then reset. */
size_t resampler_flush(struct resampler *r, float *out);

#endif
