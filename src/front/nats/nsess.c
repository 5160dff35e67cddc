/*
 * One NATS session's bookkeeping (struct nsess, natsw_state.h): finding it
 * in the host table, the recently ended ids, its end and the host's
 * verdicts in this protocol, and the render callback the workers run.
 */
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/mem.h"
#include "front/nats/natsw_state.h"
#include "host/admit.h"
#include "host/table.h"

static void ended_add(struct natsw *nw, const char *id)
{
    snprintf(nw->ended[nw->ended_n++ % ENDED_IDS], NMSG_ID_MAX, "%s", id);
}

int nsess_ended_has(struct natsw *nw, const char *id)
{
    unsigned n = nw->ended_n < ENDED_IDS ? nw->ended_n : ENDED_IDS;
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(nw->ended[i], id))
            return 1;
    return 0;
}

void nsess_ended_forget(struct natsw *nw, const char *id)
{
    unsigned n = nw->ended_n < ENDED_IDS ? nw->ended_n : ENDED_IDS;
    for (unsigned i = 0; i < n; i++)
        if (!strcmp(nw->ended[i], id))
            nw->ended[i][0] = 0;
}

struct nsess *nsess_find(struct natsw *nw, const char *id)
{
    struct tsess *t = table_find(nw->table, id);
    return t ? t->user : NULL;
}

/* A session left the host table (table_end, under nw->mu): the chan is
 * released right after this; the nsess waits in nw->finished until the pump
 * has published what it took from the chan. */
void nsess_ended_cb(void *user, struct tsess *ts)
{
    struct natsw *nw = user;
    struct nsess *s = ts->user;
    double audio, cpu;
    stats_ended(&nw->stats, ts->chan, &audio, &cpu);
    if (chan_done(ts->chan)) /* its last event was taken */
        LOG_INFO(s->id, "session ended: %.2f s audio, %.3f s cpu, %llu results", audio, cpu,
                 (unsigned long long)s->sequence);
    else
        LOG_INFO(s->id, "session abandoned: %.2f s audio, %.3f s cpu", audio, cpu);
    admit_release(s->slot);
    s->slot = NULL;
    s->ts = NULL;
    s->chan = NULL;
    ended_add(nw, s->id);
    s->fin_next = nw->finished;
    nw->finished = s;
}

void nsess_free_msgs(struct chan_msg *m)
{
    while (m) {
        struct chan_msg *n = m->next;
        hark_free(m);
        m = n;
    }
}

void nsess_free(struct nsess *s)
{
    if (!s)
        return;
    nsess_free_msgs(s->out_head);
    hark_free(s);
}

/* Queue a message produced by the pump itself behind the session's results. */
static void pump_note(struct nsess *s, const struct buf *b)
{
    if (b->oom)
        return;
    struct chan_msg *m = hark_malloc(sizeof *m + b->len + 1);
    if (!m)
        return;
    memset(m, 0, sizeof *m);
    m->flags = MSG_BINARY;
    m->len = b->len;
    memcpy(m->data, b->data, b->len);
    m->data[b->len] = 0;
    if (s->out_tail)
        s->out_tail->next = m;
    else
        s->out_head = m;
    s->out_tail = m;
}

static void note_error(struct natsw *nw, struct nsess *s, int err, const char *msg)
{
    struct buf b;
    buf_init(&b);
    nmsg_render_error(&b, s->id, s->speaker, err, msg, nmsg_now());
    pump_note(s, &b);
    buf_deinit(&b);
    atomic_fetch_add(&nw->errors_out, 1);
}

/* ------------------------------------------------------------ render (pump) */

/* What render needs besides the session: the turn the event came with. */
struct nrender {
    struct natsw *nw;
    struct nsess *s;
    int turn;
};

static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    const struct nrender *rc = user;
    struct nsess *s = rc->s;
    stats_event(&rc->nw->stats, ev);
    *flags |= MSG_BINARY;
    double now = nmsg_now();
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT: {
        /* A segment that covers no audio was a finalize in silence: nothing
         * was said, so there is no result to publish (docs/nats.md). */
        if (!(ev->end > ev->start) && !(ev->text && ev->text[0]))
            return;
        struct nmsg_result r = {
            .session_id = s->id,
            .speaker_id = s->speaker,
            .transcript = ev->text ? ev->text : "",
            .sequence = s->sequence++,
            .is_final = ev->is_final,
            .timestamp = now,
            .has_voice_activity = ev->voice_activity, /* what the VAD heard */
            /* the session's turn when the event happened (host/chan.h) */
            .state = rc->turn >= 0 ? (enum hark_state)rc->turn : HARK_STATE_LISTENING,
            .segment = s->segments,
            .start = ev->start,
            .end = ev->end,
            .speech_final = ev->speech_final,
            .reason = ev->is_final ? hark_reason_name(ev->reason) : NULL,
            .committed_ms = ev->committed_ms,
            .confidence = ev->confidence,
            .words = ev->words,
            .n_words = ev->n_words,
            .time_offset = s->time_offset,
            .owner_epoch = s->owner_epoch,
        };
        if (ev->is_final)
            s->segments++;
        nmsg_render_result(out, &r);
        return;
    }
    case HARK_EVENT_INTERRUPT:
        nmsg_render_interrupt(out, s->id, s->speaker, now, ev->start + s->time_offset);
        return;
    case HARK_EVENT_ERROR:
        nmsg_render_error(out, s->id, s->speaker, ev->code, ev->message, now);
        if (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED)
            *flags |= MSG_FATAL;
        return;
    case HARK_EVENT_CLOSED:
        nmsg_render_closed(out, s->id, s->speaker, now, ev->audio_seconds + s->time_offset,
                           s->segments);
        return;
    case HARK_EVENT_SPEECH_STARTED:
        /* not part of seed 004: only for a start with "events": true (a
         * gateway relaying a Deepgram client's vad_events) */
        if (s->events)
            nmsg_render_speech_started(out, s->id, s->speaker, now, ev->start + s->time_offset,
                                       s->segments);
        return;
    case HARK_EVENT_UTTERANCE_END:
        if (s->events)
            nmsg_render_utterance_end(out, s->id, s->speaker, now, ev->end + s->time_offset);
        return;
    case HARK_EVENT_PROVIDER_FAILOVER: /* for a gateway to relay, like the VAD's events */
        if (s->events)
            nmsg_render_failover(out, s->id, s->speaker, now, ev, s->time_offset);
        return;
    default:
        return;
    }
}

/* A result's `state` is the session's turn at the moment of the event,
 * which only the worker knows: the chan hands it over with the event
 * (host/chan.h). So the worker only copies the event and the pump renders
 * it, as the WebSocket front end does on its service thread; rendering
 * under nw->mu keeps the render state and the MSG_LAST/MSG_FATAL checks of
 * pump_once in one place. */
struct chan_msg *nsess_take(struct natsw *nw, struct nsess *s)
{
    struct chan_msg *ev = chan_take_msgs(s->chan), *head = NULL, **tail = &head;
    while (ev) {
        struct chan_msg *next = ev->next, *out = NULL;
        if (!(ev->flags & MSG_EVENT)) { /* not a structured chan's: as it is */
            ev->next = NULL;
            out = ev;
            ev = NULL;
        } else {
            struct nrender rc = {nw, s, ev->turn};
            if (chan_render_msgs(render, &rc, ev, &nw->scratch, &out))
                LOG_ERROR(s->id, "out of memory rendering an event; event dropped");
        }
        hark_free(ev);
        *tail = out;
        while (*tail)
            tail = &(*tail)->next;
        ev = next;
    }
    return head;
}

/* The session stops taking input: its finals, then closed. */
void nsess_end(struct nsess *s)
{
    s->lim.closing = 1;
    admit_closing(s->slot);
    chan_post_close(s->chan);
}

/* The host's verdict (host/limits.h) in this protocol: the reason as an
 * error message in order with the results (a fatal error was one itself),
 * then the finals and closed. Under nw->mu. */
void nsess_verdict(struct natsw *nw, struct nsess *s, enum limits_verdict v, int code,
                   const char *msg)
{
    if (v != LIMITS_FATAL)
        note_error(nw, s, code, msg);
    nsess_end(s);
}
