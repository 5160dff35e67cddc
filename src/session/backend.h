/*
 * Session backends: where a chan's session runs (host/chan.h).
 *
 * The local backend is the session core on this machine
 * (hark_session_create on an engine: VAD, endpointing, recognition). A
 * remote backend relays the session elsewhere, e.g. to `hark worker`s over
 * NATS (front/nats/natsgw.h, `hark serve --backend nats://`), and turns the
 * answers back into hark_events. The front ends, dialects, resume table,
 * limits, admission and metrics see the same chan and the same events either
 * way: this table is the only seam.
 *
 * Contract (what the chan relies on; the local backend is the reference):
 *   - feed/finalize/set_state/report_error/close/poll run on the worker
 *     thread that runs the chan, never two at once for one session; events
 *     are delivered only from inside them, through the ev callback given to
 *     open, with seq +1 per event from 0.
 *   - A remote session's results arrive on other threads: it keeps them in
 *     a bounded queue of its own and calls notify (any thread), and the chan
 *     runs poll, which delivers them.
 *   - The CLOSED event is the session's last. close may deliver it at once
 *     (local) or later from poll (remote, when the far side confirmed its
 *     last finals, or with a typed error when it did not answer in time):
 *     the chan is "done" when CLOSED was delivered.
 *   - destroy runs once, when the chan is freed (after close, or abandoned
 *     when the front end released the chan early): no callback after it.
 *
 * Ownership: the backend (ctx) outlives every session opened on it.
 */
#ifndef HARK_SESSION_BACKEND_H
#define HARK_SESSION_BACKEND_H

#include <stddef.h>

#include "hark/hark.h"

struct backend_ops {
    const char *name; /* "local", "nats" */
    /* Opens a session with the negotiated options (copied). session_id NULL:
     * the backend makes one. HARK_E_* with the reason in err. */
    int (*open)(void *ctx, const struct hark_options *opts, const char *session_id,
                hark_event_cb ev, void *ev_user, void (*notify)(void *), void *notify_user,
                void **out, char *err, size_t n);
    const char *(*id)(void *s);
    void (*feed)(void *s, const void *bytes, size_t len);
    void (*finalize)(void *s);
    void (*set_state)(void *s, enum hark_state state);
    void (*report_error)(void *s, int code, const char *message);
    void (*close)(void *s);
    void (*poll)(void *s);
    double (*audio_seconds)(void *s);
    /* finals owed (the idle rule does not count that wait as the client's) */
    unsigned (*results_pending)(void *s);
    /* input taken from the chan but not yet passed on (a remote session
     * pacing its audio): counted in chan_pending_bytes, so the front end
     * stops reading the client; NULL = none. Any thread. */
    size_t (*backlog)(void *s);
    /* the local session, for render callbacks that query it; NULL if remote */
    const struct hark_session *(*session)(void *s);
    void (*destroy)(void *s);
};

struct backend {
    const struct backend_ops *ops;
    void *ctx;
};

#endif
