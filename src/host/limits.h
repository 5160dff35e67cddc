/*
 * The session rules every front end applies, decided once here (issue 11):
 * the first-message deadline, the idle timeout, the session length limit,
 * close-on-error and the drain on shutdown. The host decides; a front end
 * asks for a verdict on each of its sessions at its tick (or on each
 * message it takes from a chan) and renders it in its own wire format (the
 * WebSocket dialects through their signal(), src/front/proto/dialect.h:
 * native an error event and a 44xx close, Deepgram its NET-0001; NATS an
 * error message, the finals, closed). The verdict and its code are the
 * host's; its text is offered to the dialect, which may say it its own way.
 *
 * Transport-neutral: never sees libwebsockets or nats.c.
 *
 * Threads: none inside; the state of a session belongs to the thread (or
 * lock) that owns the session in its front end.
 */
#ifndef HARK_HOST_LIMITS_H
#define HARK_HOST_LIMITS_H

#include <stddef.h>
#include <stdint.h>

struct admit;
struct chan;

struct limits_cfg {
    int first_message_timeout; /* s from connecting to the first whole message (0 = off) */
    int idle_timeout;          /* s without any message (0 = off) */
    int max_session_seconds;   /* seconds of audio per session (0 = no limit) */
    int shutdown_timeout;      /* s a drain waits for sessions to finish */
};

/* One session's timers, kept by its front end. */
struct limits_sess {
    int64_t opened;        /* monotonic ns: connected / started */
    int64_t last_activity; /* monotonic ns: the last message (any kind) */
    int got_message;       /* the first whole message (native: the config) arrived */
    int held;        /* the server stopped reading it (back-pressure): the client cannot send, so
                        this is not idleness */
    int closing;     /* input over (close, end, a verdict, shutdown): no more verdicts */
    int64_t awaited; /* monotonic ns: the last time finals were awaited from a network
                        engine (limits_awaiting), 0 = never */
};

enum limits_verdict {
    LIMITS_OK,
    LIMITS_FIRST_MESSAGE, /* HARK_E_TIMEOUT: nothing usable since connecting */
    LIMITS_IDLE,          /* HARK_E_TIMEOUT: no message for idle_timeout */
    LIMITS_LENGTH,        /* HARK_E_LIMIT: max_session_seconds of audio */
    LIMITS_FATAL,         /* the session reported an error it cannot go on after */
    LIMITS_SHUTDOWN,      /* HARK_E_BUSY: the server is draining */
};

/* A session opened (or was taken over by a resume) at now. */
void limits_open(struct limits_sess *s, int64_t now);
/* A message arrived at now; whole = it was complete (not a fragment). */
void limits_activity(struct limits_sess *s, int64_t now, int whole);

/* At each check, before limits_check: results_pending finals are awaited from
 * the session's network engine (chan_results_pending). While any is, the
 * client is waiting for us, not idle: the idle timeout counts from the last
 * message or the end of that wait, whichever is later. The wait itself is
 * bounded by the engine's own timeout (an error or a failover ends it). */
void limits_awaiting(struct limits_sess *s, int64_t now, unsigned results_pending);

/* The timers' verdict at now, for a session with audio_seconds of audio
 * received. The first that applies: first message, idle, length. With a
 * verdict, msg (n bytes) gets the text for the client and *code its error
 * code (HARK_E_*); for LIMITS_FIRST_MESSAGE only "within N s of
 * connecting" (the dialect names the message it waited for). A closing
 * session gets LIMITS_OK. */
enum limits_verdict limits_check(const struct limits_cfg *cfg, const struct limits_sess *s,
                                 int64_t now, double audio_seconds, int *code, char *msg, size_t n);
/* The check every front end runs on each of its sessions at its tick:
 * limits_awaiting with the chan's pending finals, then limits_check with the
 * chan's audio seconds (chan may be NULL: no session yet). */
enum limits_verdict limits_tick(const struct limits_cfg *cfg, struct limits_sess *s,
                                struct chan *chan, int64_t now, int *code, char *msg, size_t n);
/* Close-on-error: a message taken from the session's chan with these
 * chan_msg flags. LIMITS_FATAL (once: the caller marks the session closing)
 * or LIMITS_OK. */
enum limits_verdict limits_event(const struct limits_sess *s, unsigned msg_flags);
/* The verdict's text and code when the server drains (LIMITS_SHUTDOWN). */
void limits_shutdown_msg(int *code, char *msg, size_t n);

/* Shutdown: the drain of one front end. */
struct limits_drain {
    int active;
    int64_t deadline; /* monotonic ns */
};
/* Begin draining at now: admission refuses every new session from here on
 * (a may be NULL). 1 the first time (the front end then ends its sessions'
 * input with LIMITS_SHUTDOWN), 0 after. */
int limits_drain_begin(struct limits_drain *d, const struct limits_cfg *cfg, struct admit *a,
                       int64_t now);
/* 1 when the front end may stop: draining, and sessions_left is 0 or the
 * deadline passed. */
int limits_drain_over(const struct limits_drain *d, int64_t now, int sessions_left);

#endif
