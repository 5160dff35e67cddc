/*
 * The session rules (see limits.h). They used to be written twice, in the
 * WebSocket server's tick and the NATS pump, with different comparisons
 * (> there, >= here) and different words for the same event.
 */
#include "host/limits.h"

#include <stdio.h>

#include "base/err.h"
#include "host/admit.h"
#include "host/chan.h"

#define NS_PER_S 1000000000LL

void limits_open(struct limits_sess *s, int64_t now)
{
    s->opened = now;
    s->last_activity = now;
    s->got_message = 0;
    s->held = 0;
    s->closing = 0;
    s->awaited = 0;
}

void limits_awaiting(struct limits_sess *s, int64_t now, unsigned results_pending)
{
    if (results_pending)
        s->awaited = now;
}

void limits_activity(struct limits_sess *s, int64_t now, int whole)
{
    s->last_activity = now;
    s->got_message |= whole != 0;
}

enum limits_verdict limits_check(const struct limits_cfg *cfg, const struct limits_sess *s,
                                 int64_t now, double audio_seconds, int *code, char *msg, size_t n)
{
    if (s->closing)
        return LIMITS_OK;
    /* A hard deadline from connecting to the first whole message: unlike
     * the idle timer, trickling bytes of a message does not extend it. */
    if (cfg->first_message_timeout && !s->got_message &&
        now - s->opened > (int64_t)cfg->first_message_timeout * NS_PER_S) {
        *code = HARK_E_TIMEOUT;
        /* the dialect names what it waited for ("no config ...") */
        snprintf(msg, n, "within %d s of connecting", cfg->first_message_timeout);
        return LIMITS_FIRST_MESSAGE;
    }
    /* While the server has paused reading (back-pressure) the client cannot
     * send: that is not idleness. */
    /* Nor is waiting for a network engine's final (limits_awaiting): the
     * client rightly sends nothing until it has it. */
    int64_t idle_from = s->awaited > s->last_activity ? s->awaited : s->last_activity;
    if (cfg->idle_timeout && !s->held && now - idle_from > (int64_t)cfg->idle_timeout * NS_PER_S) {
        *code = HARK_E_TIMEOUT;
        snprintf(msg, n, "no audio or message for %d s (idle timeout): session finalized",
                 cfg->idle_timeout);
        return LIMITS_IDLE;
    }
    if (cfg->max_session_seconds && audio_seconds > cfg->max_session_seconds) {
        *code = HARK_E_LIMIT;
        snprintf(msg, n, "session reached the %d s limit: session finalized",
                 cfg->max_session_seconds);
        return LIMITS_LENGTH;
    }
    return LIMITS_OK;
}

enum limits_verdict limits_tick(const struct limits_cfg *cfg, struct limits_sess *s,
                                struct chan *chan, int64_t now, int *code, char *msg, size_t n)
{
    double audio = 0, cpu;
    if (chan) {
        chan_usage(chan, &audio, &cpu);
        limits_awaiting(s, now, chan_results_pending(chan));
    }
    return limits_check(cfg, s, now, audio, code, msg, n);
}

enum limits_verdict limits_event(const struct limits_sess *s, unsigned msg_flags)
{
    return !s->closing && (msg_flags & MSG_FATAL) ? LIMITS_FATAL : LIMITS_OK;
}

void limits_shutdown_msg(int *code, char *msg, size_t n)
{
    *code = HARK_E_BUSY;
    snprintf(msg, n, "server shutting down: session finalized; start a new session to go on");
}

int limits_drain_begin(struct limits_drain *d, const struct limits_cfg *cfg, struct admit *a,
                       int64_t now)
{
    if (d->active)
        return 0;
    d->active = 1;
    d->deadline = now + (int64_t)cfg->shutdown_timeout * NS_PER_S;
    if (a)
        admit_drain(a);
    return 1;
}

int limits_drain_over(const struct limits_drain *d, int64_t now, int sessions_left)
{
    return d->active && (sessions_left == 0 || now > d->deadline);
}
