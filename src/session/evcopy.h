/*
 * A deep copy of a session event (struct hark_event) in one flat block: the
 * struct, its words and every string it points to, with the pointers into
 * the block. What the session host keeps of an event for a resume
 * (src/host/outbox.h), so each connection can render it in its own wire
 * format when it writes it, not bytes rendered once for one format.
 *
 * Ownership: the block is the caller's (one allocation, no pointers out of
 * it; freed with it). Moving it breaks the pointers: copy with evcopy_into
 * again instead. Threads: pure functions.
 */
#ifndef HARK_SESSION_EVCOPY_H
#define HARK_SESSION_EVCOPY_H

#include <stddef.h>

#include "hark/hark.h"

/* Alignment the block needs (that of struct hark_event, doubles and
 * pointers). */
#define EVCOPY_ALIGN 16

/* Bytes the copy of ev takes. */
size_t evcopy_size(const struct hark_event *ev);
/* Copies ev into dst (EVCOPY_ALIGN-aligned, evcopy_size(ev) bytes) and
 * returns the copy, which starts at dst. */
struct hark_event *evcopy_into(void *dst, const struct hark_event *ev);

#endif
