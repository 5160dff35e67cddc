/*
 * The hand-over of a detached session between `hark serve --backend`
 * gateways (issue 14 §5; docs/deployment.md, Resume across gateways): the
 * NATS half, for the natsgw's sessions (natsgw.h). The messages are
 * gwtake.h's; which session may go, and when, is the front end's
 * (src/front/ws/wstake.c), which calls these.
 *
 * Threads: gwhand_take, gwhand_cancel, gwhand_freeze, gwhand_thaw and
 * gwhand_answer from the front end's thread; the callbacks come on nats.c's
 * threads (a take's own thread for `taken`), under the natsgw's lock.
 */
#ifndef HARK_FRONT_NATS_GWHAND_H
#define HARK_FRONT_NATS_GWHAND_H

#include <stddef.h>

#include "front/nats/gwtake.h"
#include "front/nats/natsgw.h"

/* The front end holds the sessions' table: natsgw relays. The callbacks run
 * on nats.c's threads and must only queue (the front end answers on its own
 * thread). */
struct gwhand_cbs {
    /* holder: another gateway asks for session id; answer once with
     * gwhand_answer on the reply subject (copy it) */
    void (*request)(void *user, const char *id, const struct gwtake_req *q, const char *reply);
    /* taker: gwhand_take's outcome: r (the callee's, gwtake_reply_free), or
     * NULL and why (no answer in time, an answer that did not parse) */
    void (*taken)(void *user, const char *id, struct gwtake_reply *r, const char *why);
    void *user;
};
/* NULL: off (take requests are not answered). */
void gwhand_set(struct natsgw *g, const struct gwhand_cbs *cbs);
/* taker: subscribes to {subject_out}.{id} (its results are queued from
 * now on), then asks the gateways on {subject_out}.take.{id}; the outcome
 * comes through cbs->taken within 2 s. On success the front end
 * opens a session with this id (the backend adopts the subscription), else
 * calls gwhand_cancel. HARK_E_STATE (a session with this id runs here),
 * HARK_E_BUSY (not connected), HARK_E_NOMEM. */
int gwhand_take(struct natsgw *g, const char *id, const struct gwtake_req *q, char *err, size_t n);
void gwhand_cancel(struct natsgw *g, const char *id);
/* holder: a chan's backend session (chan_backend_session) stops delivering
 * so that its state can be handed over: 0 with st's numbers filled (no
 * options, no events), 1 when it is not ready yet (audio or results still
 * on their way: try again later). A frozen session sends no end when it is
 * destroyed. gwhand_thaw undoes it. */
int gwhand_freeze(void *bs, struct gwtake_state *st);
void gwhand_thaw(void *bs);
/* holder: the answer (events NULL and why set: a refusal). */
void gwhand_answer(struct natsgw *g, const char *reply, const struct gwtake_state *st,
                   const struct hark_event *const *events, size_t n_events, const char *why);

#endif
