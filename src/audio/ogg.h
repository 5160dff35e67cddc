/* Incremental Ogg demuxer for Ogg Opus streams (RFC 7845), as browsers'
 * MediaRecorder (Firefox), opusenc and most voice SDKs write them. Bytes
 * arrive in any chunking; the demuxer hands over the packets of the first
 * Opus logical stream in order: first its OpusHead, then every audio packet
 * (OpusTags is skipped, whatever its size). Other logical streams are
 * ignored. Chained streams (one Opus stream after another, as `cat a.opus
 * b.opus` makes) go on as one when their OpusHeads are identical, and are
 * refused otherwise. Memory is bounded by one page (64 KiB) and one packet
 * (OGG_MAX_PACKET) whatever the stream's length. Page checksums are not verified: the transports
 * hark reads from (TCP, NATS) already guarantee the bytes. One demuxer per stream; not thread-safe.
 */
#ifndef HARK_AUDIO_OGG_H
#define HARK_AUDIO_OGG_H

#include <stddef.h>
#include <stdint.h>

/* A packet larger than this is refused (an Opus packet is at most 120 ms of
 * frames of up to 1275 bytes each, about 61 KiB). */
#define OGG_MAX_PACKET (128 * 1024)

struct ogg_demux;

/* Called for each packet in stream order (OpusHead first). The packet is
 * the demuxer's: valid only during the call. A nonzero return stops the feed
 * and is returned by it. */
typedef int (*ogg_packet_cb)(void *user, const uint8_t *pkt, size_t len);

int ogg_demux_create(struct ogg_demux **out, ogg_packet_cb cb, void *user);
void ogg_demux_destroy(struct ogg_demux *d); /* NULL ok */

/* Feeds n bytes. Returns 0, the callback's nonzero value, or
 * HARK_E_BAD_AUDIO / HARK_E_UNSUPPORTED with a message in err saying what was
 * wrong and what is accepted. Errors are sticky: later feeds return the same
 * code. A stream that simply stops mid-page is not an error here. */
int ogg_demux_feed(struct ogg_demux *d, const uint8_t *in, size_t n, char *err, size_t errn);

/* 1 when the bytes start like an Ogg page ("OggS"), for sniffing. */
int ogg_sniff(const uint8_t *in, size_t n);

#endif
