/*
 * A session's transcript as a batch response needs it: the finals with their
 * words, the session's first error and its end, in a compact form.
 *
 * Two halves. transcript_record() runs as the session's render function (on
 * a worker thread) and turns one struct hark_event into a binary record:
 * only finals (with words), errors and the end; nothing for other events.
 * transcript_take() runs on the thread that owns the struct transcript and
 * appends one record to it. The records never leave the process, but
 * transcript_take treats them as untrusted bytes all the same (fuzzed:
 * tests/fuzz/fuzz_transcript.c): a short or inconsistent record is refused,
 * never read past its end.
 *
 * Ownership: a struct transcript owns its arrays and strings (freed by
 * transcript_deinit). Pure: no I/O, no locks; one thread per transcript.
 */
#ifndef HARK_FRONT_PROTO_TRANSCRIPT_H
#define HARK_FRONT_PROTO_TRANSCRIPT_H

#include <stddef.h>

#include "base/buf.h"
#include "hark/hark.h"

struct transcript_word {
    size_t text; /* offset in strs */
    double start, end;
    float conf;
};

struct transcript_seg {
    size_t text; /* offset in strs */
    double start, end;
    float conf;
    size_t w0, nw; /* its words in words[] */
};

struct transcript {
    struct transcript_seg *segs;
    size_t n_segs, cap_segs;
    struct transcript_word *words;
    size_t n_words, cap_words;
    struct buf strs;      /* NUL-separated texts */
    double audio_seconds; /* from the end record */
    int closed;           /* the end record arrived */
};

void transcript_init(struct transcript *t);
void transcript_deinit(struct transcript *t);

/* The record of one event appended to out (nothing for partials, empty
 * finals and events a batch response does not carry). Sets MSG_FATAL in
 * *flags for an error that ends the session (undecodable or unsupported
 * audio). Any thread. */
void transcript_record(const struct hark_event *ev, struct buf *out, unsigned *flags);

/* Appends one record. Returns 0 (a final or the end, taken; an unknown tag
 * is ignored), 1 when the record is the session's error (*code and msg,
 * NUL-terminated and cut to n, filled; nothing appended), HARK_E_PROTOCOL
 * for a malformed record or HARK_E_NOMEM. */
int transcript_take(struct transcript *t, const void *rec, size_t len, int *code, char *msg,
                    size_t n);

/* The text at an offset of strs ("" when there is none). */
const char *transcript_str(const struct transcript *t, size_t off);
/* The finals' texts joined by single spaces, appended to o. */
void transcript_text(const struct transcript *t, struct buf *o);
/* The mean confidence of words [w0, w0 + nw) (0 when nw is 0). */
double transcript_confidence(const struct transcript *t, size_t w0, size_t nw);

#endif
