/*
 * HTTP/1 request heads as they arrive on a plain-text connection, checked
 * before libwebsockets parses them (door.c). lws drops requests past its
 * parser's fixed limits without any answer: a request line longer than its
 * header buffer, more query arguments and headers than its fragment table
 * (about 90 in all), or %00. Here those get a status, and the query string
 * moves into one header (x-hark-query) that lws stores without counting
 * fragments, so a Deepgram client may send hundreds of keyterm arguments.
 * Pure functions: no I/O, any thread.
 */
#ifndef HARK_FRONT_WS_HEAD_H
#define HARK_FRONT_WS_HEAD_H

#include <stddef.h>

#define HEAD_MAX_URI 8192    /* request line, bytes: longer is 414 */
#define HEAD_MAX_BYTES 16384 /* request line and headers, bytes: more is 431 */
/* lws 4.1 has 94 fragments for a request: the URI, each query argument,
 * the HTTP version and each header it knows take one. */
#define HEAD_MAX_LINES 40    /* header lines: more is 431 */
#define HEAD_REWRITE_ARGS 48 /* more query arguments: the query moves to a header */
/* The header the query string travels in (lower case, as written). */
#define HEAD_QUERY_HEADER "x-hark-query:"

/*
 * Scans the bytes received so far. Returns 0 while the head is incomplete
 * and within the limits, the length of the complete head (through the
 * blank line) when it is there and acceptable, or -status (-400, -414,
 * -431) with a message in why.
 */
long head_scan(const char *buf, size_t len, char *why, size_t n);

/*
 * Rewrites a complete, accepted head (head_scan > 0) for lws: the request
 * line without its query, the query (still percent-encoded) as the first
 * header x-hark-query, a client's own x-hark-query headers dropped, CRLF
 * line ends. Requests that are not upgrades get "connection: close" (their
 * Connection headers dropped), so each request on a connection passes this
 * check. Returns the length written to out, or -1 when cap is too small
 * (cap >= 2 * len + 64 always suffices: a line
 * ending in a bare LF gains a CR).
 */
long head_rewrite(const char *head, size_t len, char *out, size_t cap);

/*
 * Splits a raw query ("a=1&b=%20x+y;c") into decoded arguments, as lws
 * does for its own: '&' and ';' separate, %XX and '+' are decoded. out
 * receives the NUL-terminated strings one after another (cap >= len + 1
 * suffices); returns how many.
 */
size_t head_split_query(const char *query, size_t len, char *out, size_t cap);

#endif
