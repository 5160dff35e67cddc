/*
 * The input a JetStream session holds unacknowledged (docs/nats.md
 * "Acknowledgement up to the commit point"): every message the owner took
 * for the session stays in the work-queue stream until a published final
 * covers it, so a worker that takes the session over replays exactly the
 * audio that is not yet in finals.
 *
 * A list of held messages in arrival order, and the rule that splits off
 * the prefix the finals now cover: chunks whose audio ends at or before the
 * commit point, with the state changes between them; start and end stay
 * until the session is closed; a container encoding (no byte positions) is
 * held to the end.
 *
 * Owns the held messages (natsMsg) until jsheld_free. No locking: the
 * caller's (jsw.c, under its mutex). The split touches no message, so the
 * rule is tested without a server (tests/unit/test_jsheld.c).
 */
#ifndef HARK_FRONT_NATS_JSHELD_H
#define HARK_FRONT_NATS_JSHELD_H

#include <nats/nats.h>
#include <stdint.h>

enum jsheld_kind { JSHELD_START, JSHELD_CHUNK, JSHELD_STATE, JSHELD_END };

struct jsheld {
    natsMsg *msg;
    uint64_t sseq;
    int64_t end; /* CHUNK: session audio bytes up to the end of this chunk */
    enum jsheld_kind kind;
    struct jsheld *next;
};

struct jsheld_list {
    struct jsheld *head, *tail;
    int64_t bytes; /* session audio bytes so far: the next chunk starts here */
};

/* Appends msg (owned from now on); a chunk of audio_len bytes moves bytes
 * on. -1: out of memory, msg not taken. */
int jsheld_push(struct jsheld_list *l, natsMsg *msg, uint64_t sseq, enum jsheld_kind kind,
                size_t audio_len);
/* Moves the covered prefix (above) from l to the end of *acked: committed is
 * the session audio bytes finals cover, raw 0 for a container encoding,
 * closed 1 once the session's closed went out (then all of it). Returns the
 * last chunk moved (its end and sseq are what the record acknowledges), or
 * NULL when none was. */
const struct jsheld *jsheld_take_covered(struct jsheld_list *l, struct jsheld **acked,
                                         int64_t committed, int raw, int closed);
/* Frees a chain of held messages, acknowledging each first when ack is 1. */
void jsheld_free(struct jsheld *h, int ack);
int jsheld_count(const struct jsheld *h);

#endif
