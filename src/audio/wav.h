/* Incremental RIFF/WAVE header parser. Bytes arrive in any chunking; the
 * parser consumes the header (RIFF, fmt, and any chunks before "data") and
 * reports the format once the data chunk starts. Accepts PCM 8/16/24/32-bit,
 * IEEE float 32/64, u-law, A-law, and WAVE_FORMAT_EXTENSIBLE of those;
 * 1..8 channels; 8000..48000 Hz (the limits of the pipeline; other rates are
 * reported as unsupported). One parser per stream; not thread-safe. */
#ifndef HARK_AUDIO_WAV_H
#define HARK_AUDIO_WAV_H

#include <stddef.h>
#include <stdint.h>

#include "audio/pcm.h"

struct wav_info {
    enum pcm_format fmt;
    int sample_rate;
    int channels;
    int bits;            /* bits per sample as stored */
    uint64_t data_bytes; /* size of the data chunk; UINT64_MAX when unknown (streamed WAV) */
};

struct wav_parser;

int wav_parser_create(struct wav_parser **out);
void wav_parser_destroy(struct wav_parser *p);

/*
 * Feed header bytes. *consumed is set to how many bytes of `in` belonged to
 * the header. Returns 1 when the header is complete (info valid; the audio
 * data starts at in + *consumed), 0 when more bytes are needed (all of `in`
 * consumed), or a negative hark_err (HARK_E_BAD_AUDIO for malformed input,
 * HARK_E_UNSUPPORTED for valid but unsupported formats) with a message in
 * errbuf saying what was wrong and what is accepted. After an error or
 * completion further calls return the same result.
 *
 * Headers are bounded: more than 1 MiB of chunks before "data" is an error.
 */
int wav_parser_feed(struct wav_parser *p, const uint8_t *in, size_t len, size_t *consumed,
                    struct wav_info *info, char *errbuf, size_t errbuf_size);

/* Writes a 44-byte canonical header for PCM data (for tests and tools). */
void wav_write_header(uint8_t out[44], enum pcm_format fmt, int sample_rate, int channels,
                      uint32_t data_bytes);

#endif
