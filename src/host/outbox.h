/*
 * Replay history of one session: the events (with their seq) a client may
 * not have received yet, so a resumed connection can be sent every event
 * after the last one the client saw.
 *
 * It holds the events themselves, not bytes rendered for one wire format:
 * each is a structured chan's message (MSG_EVENT, host/chan.h: a deep
 * copy of the struct hark_event with its seq), rendered by the resuming
 * connection's dialect on its front end's I/O thread when written
 * (chan_render_msgs).
 *
 * What it keeps (docs/protocol.md, Resume): while a connection is attached,
 * the newest events up to a budget (the older ones were written long ago);
 * while detached, every new event, within --resume-buffer-bytes and
 * --resume-buffer-events: past either, superseded partials go first (a
 * later partial or final of the same utterance replaces them, so the client
 * loses nothing it would show), then events sent before the connection
 * dropped, oldest first. Events dropped from the front are remembered by
 * seq: a resume that needs them fails. (A detached session whose events
 * still overflow ends: src/host/table.c.)
 *
 * Ownership: the outbox owns the messages pushed into it.
 * Threads: none inside; one owner at a time (the front end's I/O thread).
 */
#ifndef HARK_HOST_OUTBOX_H
#define HARK_HOST_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "host/chan.h"

struct outbox {
    struct chan_msg *head, *tail; /* oldest first; owned */
    size_t bytes;                 /* held, headers included */
    size_t count;                 /* events held */
    uint64_t next_seq;            /* one past the newest seq added */
    int lost;                     /* some event was dropped from the front... */
    uint64_t lost_max;            /* ...the newest of them */
};

/* What a held event costs in memory (its header, the copy, the allocator's
 * NUL). */
size_t outbox_cost(const struct chan_msg *m);

void outbox_init(struct outbox *o);
/* Frees every message; the outbox may be reused (init state). */
void outbox_clear(struct outbox *o);
/* Keep m (owned from now on) if it is a session event (MSG_SEQ); others
 * are freed. */
void outbox_push(struct outbox *o, struct chan_msg *m);
/* Note an event that could not be kept (out of memory): a resume that needs
 * it will say so. */
void outbox_lose(struct outbox *o, uint64_t seq);
/* 1 when more than bytes or count are held. */
int outbox_over(const struct outbox *o, size_t bytes, size_t count);
/* Drop the oldest events until at most bytes and count are held. */
void outbox_trim(struct outbox *o, size_t bytes, size_t count);
/* Drop every partial that a later transcript supersedes. Returns the bytes
 * freed. */
size_t outbox_drop_partials(struct outbox *o);
/* Drop events with seq < before, oldest first, until at most bytes and
 * count are held. */
void outbox_trim_before(struct outbox *o, uint64_t before, size_t bytes, size_t count);
/* 1 when every event after last_seq (-1 = from the start) is held or was
 * superseded, i.e. a client that saw up to last_seq can be brought up to
 * date; 0 when one is lost or last_seq is newer than anything sent. */
int outbox_covers(const struct outbox *o, int64_t last_seq);

#endif
