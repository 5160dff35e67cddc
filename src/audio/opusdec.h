/* Opus decoding for containerised audio (Ogg Opus, WebM/Opus): the stream's
 * OpusHead (RFC 7845 §5.1) sets up a libopus decoder that outputs mono float
 * at the rate the engines want (libopus decodes at 8/12/16/24/48 kHz
 * natively and mixes stereo down itself, so no resampling is needed). The
 * encoder's pre-skip is dropped and the header's output gain applied. One
 * decoder per stream; not thread-safe. */
#ifndef HARK_AUDIO_OPUSDEC_H
#define HARK_AUDIO_OPUSDEC_H

#include <stddef.h>
#include <stdint.h>

struct opusdec;

/* head: the OpusHead packet. out_rate: 8000, 12000, 16000, 24000 or 48000.
 * Returns 0, or HARK_E_BAD_AUDIO / HARK_E_UNSUPPORTED with a message in err
 * (e.g. a multichannel mapping family). */
int opusdec_create(struct opusdec **out, const uint8_t *head, size_t len, int out_rate, char *err,
                   size_t errn);
void opusdec_destroy(struct opusdec *d); /* NULL ok */

/* Most samples one packet can yield (120 ms at out_rate). */
size_t opusdec_max_samples(const struct opusdec *d);

/* Decodes one packet into out (room for opusdec_max_samples). Returns the
 * number of samples written (0 while the pre-skip is being dropped), or
 * HARK_E_BAD_AUDIO with a message in err for a corrupt packet. */
int opusdec_decode(struct opusdec *d, const uint8_t *pkt, size_t len, float *out, char *err,
                   size_t errn);

/* Channels and input rate the header declares (for describing the stream). */
int opusdec_channels(const struct opusdec *d);

#endif
