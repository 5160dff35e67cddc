/*
 * Replay history of one session: the rendered events (with their seq) a
 * client may not have received yet, so a resumed connection can be sent
 * every event after the last one the client saw, exactly as first sent.
 *
 * What it keeps (docs/protocol.md, Resume): while a connection is attached,
 * the newest events up to a byte budget (the older ones were written long
 * ago); while detached, every new event, within --resume-buffer-bytes: past
 * it superseded partials go first (a later partial or final of the same
 * utterance replaces them, so the client loses nothing it would show), then
 * events sent before the connection dropped, oldest first. Events dropped
 * from the front are remembered by seq: a resume that needs them fails.
 *
 * The messages are copies in the worker pool's chan_msg shape (rendered
 * bytes + seq): the structured outbox (events rendered per
 * connection on the I/O thread) is still to do; native replay only needs
 * the bytes as first sent.
 *
 * Threads: none inside; one owner at a time (the front end's I/O thread).
 */
#ifndef HARK_HOST_OUTBOX_H
#define HARK_HOST_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "session/workers.h"

struct outbox {
    struct chan_msg *head, *tail; /* oldest first; owned */
    size_t bytes;                 /* held, headers included */
    uint64_t next_seq;            /* one past the newest seq added */
    int lost;                     /* some event was dropped from the front... */
    uint64_t lost_max;            /* ...the newest of them */
};

void outbox_init(struct outbox *o);
/* Frees every message; the outbox may be reused (init state). */
void outbox_clear(struct outbox *o);
/* Keep a copy of m if it is a session event (MSG_SEQ); others are ignored.
 * HARK_E_NOMEM. */
int outbox_add(struct outbox *o, const struct chan_msg *m);
/* Drop the oldest events until at most keep bytes are held. */
void outbox_trim(struct outbox *o, size_t keep);
/* Drop every partial that a later transcript supersedes. Returns the bytes
 * freed. */
size_t outbox_drop_partials(struct outbox *o);
/* Drop events with seq < before, oldest first, until at most keep bytes are
 * held. */
void outbox_trim_before(struct outbox *o, uint64_t before, size_t keep);
/* 1 when every event after last_seq (-1 = from the start) is held or was
 * superseded, i.e. a client that saw up to last_seq can be brought up to
 * date; 0 when one is lost or last_seq is newer than anything sent. */
int outbox_covers(const struct outbox *o, int64_t last_seq);

#endif
