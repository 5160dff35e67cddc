/*
 * HTTP/1.1 chunked request bodies (RFC 9112 §7.1), decoded incrementally.
 * lws 4.1 does not decode them (it hands the raw framing to HTTP_BODY as if
 * the body were 100 MB long), and Node's fetch sends every streamed upload
 * that way: the official openai SDK's audio.transcriptions.create with an
 * fs.createReadStream file has no Content-Length. Chunk extensions and
 * trailer fields are read and ignored; lines (size line with extensions,
 * trailer field) are bounded by CHUNKED_MAX_LINE. Pure: no I/O, any thread;
 * one struct chunked per body, caller-owned, no allocation.
 */
#ifndef HARK_FRONT_WS_CHUNKED_H
#define HARK_FRONT_WS_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#define CHUNKED_MAX_LINE 4096 /* bytes of a size line or trailer field */

struct chunked {
    int state;
    uint64_t left;   /* data bytes left in the current chunk */
    unsigned digits; /* hex digits of the size read so far */
    size_t line;     /* bytes of the current line */
    const char *why; /* after an error: what was wrong (static) */
};

/* A piece of chunk data (borrowed: valid during the call). Nonzero stops
 * chunked_feed, which then returns that value. */
typedef int (*chunked_data_cb)(void *user, const uint8_t *data, size_t len);

void chunked_init(struct chunked *c);

/*
 * Decodes the next bytes of the body; data goes to cb in order. Returns 0
 * while more is expected, 1 once the last chunk and the trailer section are
 * complete (*used then says how many bytes of in belonged to the body; any
 * after it are the next request's), HARK_E_PROTOCOL for malformed framing
 * (c->why says what; further calls keep failing), or cb's nonzero value.
 */
int chunked_feed(struct chunked *c, const uint8_t *in, size_t len, size_t *used, chunked_data_cb cb,
                 void *user);

#endif
