/* Streaming WebM (Matroska/EBML) demuxer for Opus audio, as browsers'
 * MediaRecorder('audio/webm;codecs=opus') writes it: a Segment and Clusters
 * of unknown size, SimpleBlocks (or BlockGroup/Block), any lacing. Bytes
 * arrive in any chunking (one at a time works); memory stays bounded however
 * long the stream: only the current element header and the body of a leaf
 * being read are kept (blocks up to 64 KiB, CodecPrivate up to 4 KiB; larger
 * ones of the Opus track are an error, those of other tracks are skipped).
 *
 * The track delivered is the first TrackEntry with CodecID "A_OPUS". Blocks
 * of other tracks, and elements the demuxer has no use for (EBML header,
 * SeekHead, Info, Cues, Tags, Void, ...), are skipped. A stream of several
 * Segments (recordings concatenated) goes on as one if every Segment's Opus
 * track has the same OpusHead.
 *
 * Ownership: the demuxer owns its buffers; packets passed to the callback
 * are valid only during the call. One demuxer per stream; not thread-safe
 * (distinct demuxers may be used from different threads). */
#ifndef HARK_AUDIO_WEBM_H
#define HARK_AUDIO_WEBM_H

#include <stddef.h>
#include <stdint.h>

struct webm_demux;

/* Called for each packet in stream order: first the track's OpusHead (the
 * Opus track's CodecPrivate, 19+ bytes starting "OpusHead"), then every Opus
 * packet of that track. Nonzero return stops the feed and is returned by it. */
typedef int (*webm_packet_cb)(void *user, const uint8_t *pkt, size_t len);

/* HARK_E_INVAL for NULL out or cb, HARK_E_NOMEM. */
int webm_demux_create(struct webm_demux **out, webm_packet_cb cb, void *user);
void webm_demux_destroy(struct webm_demux *d); /* NULL ok */

/* Feeds n bytes. 0, the callback's nonzero value, or HARK_E_BAD_AUDIO /
 * HARK_E_UNSUPPORTED with a message in err (sticky: later feeds return the
 * same error). Truncated input is not an error: a partial element waits for
 * more bytes. A stop by the callback is sticky as well (later feeds return
 * its value without calling it again) and leaves err untouched. Empty frames
 * (zero-length laces) are not delivered. */
int webm_demux_feed(struct webm_demux *d, const uint8_t *in, size_t n, char *err, size_t errn);

/* 1 when the bytes start like EBML (0x1A 0x45 0xDF 0xA3), for sniffing; 0
 * otherwise, including when fewer than 4 bytes are given. */
int webm_sniff(const uint8_t *in, size_t n);

#endif
