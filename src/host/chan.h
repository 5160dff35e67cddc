/*
 * A session's chan in the session host: the serial job queue between a
 * front end's I/O thread and the worker pool (host/workers.h, which has the
 * picture), and the outbox of what the session produced. The front end
 * posts input (chan_post_*), a worker runs the jobs in order on the
 * session, and the session's events come back as messages: wire bytes
 * rendered on the worker by the chan's render callback, or, for a
 * structured chan (no render callback), the events themselves (MSG_EVENT,
 * a deep copy) that the front end renders on its own thread
 * (chan_render_msgs) and may keep for a resume (host/outbox.h).
 *
 * Thread-safety: every chan_* call is thread-safe unless noted. A chan is
 * never processed on two threads at once. It is freed only by chan_release
 * after it reached "done" (its close job ran, or it was aborted) and the
 * front end has no more use for it.
 */
#ifndef HARK_HOST_CHAN_H
#define HARK_HOST_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "hark/hark.h"
#include "host/workers.h"

struct chan;

/* Called for every event of the chan's session: append the wire message(s)
 * for ev to out (nothing = drop the event). flags: see MSG_*. Must not
 * block. A chan's own render runs on the worker thread; a structured chan's
 * events are rendered by the front end (chan_render_msgs), on its thread. */
typedef void (*chan_render_cb)(void *user, const struct hark_event *ev, struct buf *out,
                               unsigned *flags);

enum {
    MSG_TEXT = 0,
    MSG_BINARY = 1,
    MSG_LAST = 2,    /* the session is over after this message */
    MSG_FATAL = 4,   /* the session cannot go on (e.g. undecodable audio) */
    MSG_PARTIAL = 8, /* a partial transcript: superseded by any later one of its segment */
    /* Set by the chan on rendered events (render callbacks need not): the
     * message is a session event, numbered `seq` (kept for replay on
     * resume, src/host/outbox.h); MSG_FINAL: a final transcript. */
    MSG_SEQ = 16,
    MSG_FINAL = 32,
    /* Set by a render callback: what it wrote is several text messages,
     * each ended by a NUL byte (JSON text holds none: it escapes them).
     * The chan queues them as separate messages of the same event, in
     * order; the flags of the event (MSG_FINAL, MSG_LAST, ...) go with the
     * last. For wire protocols that answer one event with several
     * messages (OpenAI Realtime: speech_stopped, committed, delta and
     * completed for one final). */
    MSG_MULTI = 64,
    /* Set by a structured chan (created without a render callback): the
     * message holds the event itself (ev, a deep copy in data; len is its
     * size), not wire bytes. The front end renders it with
     * chan_render_msgs when it writes it, and may keep it (src/host/outbox.h)
     * to render it again for a resumed connection. */
    MSG_EVENT = 128,
};

/* What a message's latency measures, for metrics (see docs/metrics). */
enum {
    LAT_NONE = 0,
    LAT_FIRST_PARTIAL,  /* audio at the partial's end arrived -> partial sent */
    LAT_FINAL_ENDPOINT, /* audio completing the endpoint silence arrived -> final sent */
    LAT_FINAL_FINALIZE, /* finalize request arrived -> final sent */
};

struct chan_msg {
    struct chan_msg *next;
    unsigned flags;
    int lat_kind;
    int64_t t_ref;               /* monotonic ns the latency counts from */
    uint64_t seq;                /* with MSG_SEQ: the event's seq */
    int64_t segment;             /* of a transcript (MSG_PARTIAL, MSG_FINAL); -1 for other events */
    const struct hark_event *ev; /* MSG_EVENT: the event, inside data; else NULL */
    /* MSG_EVENT: the session's turn (enum hark_state) when the event was
     * delivered, for wire formats that report it with each result (seed
     * 004's `state`: an interrupt has already switched it); -1 when the
     * session is remote (session/backend.h: no local session to ask) */
    int turn;
    size_t len;
    char data[]; /* len bytes (+ NUL) */
};

/* Creates the session (hark_session_create, on the calling thread) with the
 * chan as its event sink. render/user are used on worker threads; render
 * NULL makes a structured chan: its messages are the events (MSG_EVENT),
 * which the front end renders (render_user is then only freed, see
 * chan_on_free).
 * max_pending_bytes bounds the jobs waiting to be processed: every queued
 * job counts, audio and controls, with its fixed overhead. */
int chan_create(struct chan **out, struct workers *w, struct hark_engine *eng,
                const struct hark_options *opts, const char *session_id, chan_render_cb render,
                void *render_user, size_t max_pending_bytes, char *errbuf, size_t errbuf_size);
/* The same on any session backend (session/backend.h): chan_create is the
 * local one on eng. */
struct backend;
int chan_create_on(struct chan **out, struct workers *w, const struct backend *b,
                   const struct hark_options *opts, const char *session_id, chan_render_cb render,
                   void *render_user, size_t max_pending_bytes, char *errbuf, size_t errbuf_size);
const char *chan_session_id(const struct chan *c);
/* The backend's session (session/backend.h open's out): for a backend's own
 * calls on it (a gateway's hand-over, front/nats/natsgw.h). */
void *chan_backend_session(const struct chan *c);
/* A structured chan's message (MSG_EVENT) holding a deep copy of ev with
 * its seq, as the chan makes them: for events that come from elsewhere (a
 * session handed over by another gateway). NULL when out of memory. */
struct chan_msg *chan_event_msg(const struct hark_event *ev);
/* The chan's session (NULL on a remote backend), for read-only queries from inside the render
 * callback (which runs on the worker thread, synchronously inside the session call), e.g.
 * hark_session_get_state for the turn state at the time of the event. Not for use from other
 * threads. */
const struct hark_session *chan_session(const struct chan *c);

/* Queue audio; copies the bytes (appended to the queued tail job when it is
 * audio with room). HARK_E_LIMIT when max_pending_bytes would be exceeded
 * (the front end should have paused reading before that). */
int chan_post_audio(struct chan *c, const void *bytes, size_t len);
/* Controls coalesce: a finalize behind a finalize still queued, with no
 * audio between them, is a no-op (returns 0, queues nothing: the queued one
 * answers both); a state change replaces one still waiting at the tail. Otherwise they cost a job
 * against max_pending_bytes like audio, and HARK_E_LIMIT when full. */
int chan_post_finalize(struct chan *c);
int chan_post_state(struct chan *c, enum hark_state state);
/* Queue an error the front end found in the client's input about this
 * session (code < 0; message copied): delivered as an ERROR event in order
 * with the session's other events, so it gets the next seq and the speaker_id
 * (hark_session_report_error). HARK_E_STATE after the close was queued,
 * HARK_E_LIMIT when the session budget is full (like any job). */
int chan_post_error(struct chan *c, int code, const char *message);
/* Queue the close: flushes the last finals; the CLOSED event is the last.
 * Never refused for the budget. */
int chan_post_close(struct chan *c);

/* Run fn(arg) when the chan is freed: for state its render callback uses,
 * which must outlive any render on a worker (after chan_release too). */
void chan_on_free(struct chan *c, void (*fn)(void *), void *arg);

/* The wire messages of a structured chan's message em (MSG_EVENT) through
 * render(user, ...): exactly what a chan with that render would have
 * queued for the event (MSG_MULTI split, MSG_LAST after CLOSED,
 * MSG_FINAL/MSG_PARTIAL, seq, segment; em's latency on the last message).
 * *out: the list (NULL when the event renders to nothing). scratch: the
 * caller's buffer. HARK_E_NOMEM. Any thread; em is only read. */
int chan_render_msgs(chan_render_cb render, void *user, const struct chan_msg *em,
                     struct buf *scratch, struct chan_msg **out);

/* Bytes the queued jobs cost (payload + overhead; for rx flow control). */
size_t chan_pending_bytes(struct chan *c);
/* Detach all messages produced so far, oldest first; caller frees each with
 * hark_free. */
struct chan_msg *chan_take_msgs(struct chan *c);
/* 1 once the session's CLOSED event was rendered (all events rendered):
 * within the close job for a local session, later for a remote one. */
int chan_done(struct chan *c);
/* Front end is finished with the chan (connection gone). Jobs not yet
 * started are dropped (nobody will read their results); the chan is freed
 * when no worker uses it any more. */
void chan_release(struct chan *c);

/* Seconds of audio processed and CPU (thread) seconds spent, for metrics. */
void chan_usage(struct chan *c, double *audio_sec, double *cpu_sec);
/* Finals the session awaits from a network engine, as of its last job
 * (hark_session_results_pending): the host's idle rule does not count that
 * wait as the client's idleness. */
unsigned chan_results_pending(struct chan *c);

/* host/workers.c only: one turn of the chan whose pool item is it, on a
 * worker thread: runs its queued jobs (at most ~1 s of audio), adds their
 * number to *jobs. Returns 1 when jobs are left (the pool queues it again);
 * 0 when not, and then a released chan is freed. */
int chan_turn(struct workers_item *it, unsigned *jobs);

#endif
