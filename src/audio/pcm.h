/* Raw sample decoding: interleaved bytes in one of the sample formats below
 * -> mono float samples in [-1, 1] (channels averaged). Streaming: bytes of a
 * sample or frame split across feeds are carried over, so any chunking gives
 * identical output. One decoder per stream; not thread-safe. */
#ifndef HARK_AUDIO_PCM_H
#define HARK_AUDIO_PCM_H

#include <stddef.h>
#include <stdint.h>

enum pcm_format {
    PCM_S16LE = 0,
    PCM_F32LE,
    PCM_MULAW, /* G.711 u-law, 8 bit */
    PCM_ALAW,  /* G.711 A-law, 8 bit */
    PCM_U8,    /* WAV 8-bit unsigned */
    PCM_S24LE, /* packed 3-byte */
    PCM_S32LE,
    PCM_F64LE,
};

#define PCM_MAX_CHANNELS 8

/* Bytes per single-channel sample. */
size_t pcm_sample_bytes(enum pcm_format fmt);
const char *pcm_format_name(enum pcm_format fmt); /* "pcm_s16le", "mulaw", ... */

struct pcm_dec;

/* channels 1..PCM_MAX_CHANNELS; HARK_E_INVAL otherwise. */
int pcm_dec_create(struct pcm_dec **out, enum pcm_format fmt, int channels);
void pcm_dec_destroy(struct pcm_dec *d);

/* Upper bound of mono samples produced by feeding len more bytes. */
size_t pcm_dec_max_out(const struct pcm_dec *d, size_t len);

/* Decode; writes mono samples to out (capacity from pcm_dec_max_out) and
 * returns their count. NaN and infinities in float input become 0 and values
 * are clamped to [-1, 1]. */
size_t pcm_dec_feed(struct pcm_dec *d, const uint8_t *in, size_t len, float *out);

/* Bytes held back waiting for the rest of a frame (0 at a frame boundary). */
size_t pcm_dec_pending(const struct pcm_dec *d);

/* Single-sample conversions, exposed for tests and the WAV writer in tools. */
float pcm_mulaw_to_float(uint8_t u);
float pcm_alaw_to_float(uint8_t a);
uint8_t pcm_float_to_mulaw(float x);
uint8_t pcm_float_to_alaw(float x);

/*
 * Is this the start of a container or compressed file rather than raw
 * samples? Looks at the first PCM_MAGIC_BYTES bytes only (fewer: NULL) and
 * names the format whose signature they are: "WAV" (RIFF, RF64, RIFX), "Ogg"
 * (OggS), "WebM" (EBML 1A 45 DF A3), "FLAC" (fLaC), "MP3" (ID3v2 tag: "ID3"
 * and version 2..4), "CAF" (caff), "AIFF" (FORM); NULL for none of them.
 * Each is four fixed bytes (ID3: three and one of three versions), which raw
 * audio starts with by chance about once in 2^32 streams of random bytes,
 * and less often in practice: as samples they are loud (s16 "OggS" is 26447,
 * 21351), where real streams start near silence. Pure; thread-safe.
 */
#define PCM_MAGIC_BYTES 4
const char *pcm_container_magic(const uint8_t *head, size_t n);

#endif
