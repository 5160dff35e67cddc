/*
 * The NATS front end's state (struct natsw, struct nsess), for the files
 * that make it up: natsw.c owns it (create, connection, presence, publish,
 * destroy), nin.c takes the input (nats.c's delivery thread), npump.c runs
 * the pump thread (publishing, timers, retiring sessions) and nsess.c holds
 * one session's bookkeeping and the rendering of its events (pump).
 * Nothing outside src/front/nats/ includes this; the rest of hark goes
 * through natsw.h.
 *
 * Threads and locks (natsw.h says which thread does what): nw->mu guards
 * the table and every nsess field marked "guarded by natsw.mu"; nw->wmu
 * the pump's wake-ups; fields marked "pump only" are the pump's. Only the
 * pump frees a session.
 */
#ifndef HARK_FRONT_NATS_NATSW_STATE_H
#define HARK_FRONT_NATS_NATSW_STATE_H

#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/buf.h"
#include "front/nats/natsw.h"
#include "front/nats/nmsg.h"
#include "host/limits.h"
#include "host/stats.h"

#define TICK_MS 100
#define RECENT_CHUNKS 8 /* duplicate detection window */
#define ENDED_IDS 256   /* recently ended ids, for "late chunk" errors */
#define LOG_BURST 20    /* input-error log lines per second, then summarised */

struct nsess {
    char id[NMSG_ID_MAX];
    char speaker[NMSG_SPEAKER_MAX];

    /* render state: set at the start, then the pump's (it renders under
     * natsw.mu, nsess_take) */
    uint64_t sequence;  /* results published so far */
    int64_t segments;   /* finals published so far */
    int events;         /* the start asked for speech_started and utterance_end ("events": true) */
    double time_offset; /* s of audio before this worker's (natsw_resume) */
    uint64_t owner_epoch; /* JetStream: this worker's ownership epoch (natsw_feed); 0: none */

    /* front end state, guarded by natsw.mu */
    struct tsess *ts;        /* the host table's entry: owns the chan */
    struct chan *chan;       /* ts->chan, while in the table */
    struct admit_slot *slot; /* counted by host/admit.h until the session is freed */
    struct limits_sess lim;  /* host/limits.h; lim.closing: end or a verdict posted the close */
    int64_t last_chunk;      /* monotonic ns */
    int chunk_timeout_ms;    /* the server's, or the start's "chunk_timeout" */
    uint64_t received_bytes; /* audio accepted, for the answer to a keepalive */
    int audio_since_finalize;
    int has_ts;
    double max_ts;
    struct {
        double ts;
        uint64_t hash;
        size_t len;
    } recent[RECENT_CHUNKS];
    unsigned recent_n;
    /* Gap detection (docs/nats.md "Lost audio"): raw PCM only */
    double bytes_per_sec; /* 0: a container encoding, chunk durations unknown */
    int next_ts_valid;
    double next_ts;   /* client time where the next chunk's audio should start */
    double audio_pos; /* seconds of audio the session received */

    atomic_int silent; /* natsw_abandon: another worker owns it; nothing is published */

    /* pump only */
    int done; /* the session's last message was taken */
    struct chan_msg *out_head, *out_tail;
    struct nsess *work_next;
    struct nsess *fin_next; /* ended: freed by the pump after publishing */
    char subject[];         /* {subject_out}.{id} */
};

struct natsw {
    struct natsw_cfg cfg;
    char *url, *subj_in, *subj_out, *name;
    struct hark_options *defaults;
    struct hark_engine *eng;
    struct workers *pool;
    natsConnection *nc;
    natsSubscription *sub;
    atomic_int connected;

    pthread_mutex_t mu;     /* the table */
    struct table *table;    /* host/table.h: the sessions by id */
    struct nsess *finished; /* left the table: freed by the pump after publishing */
    char ended[ENDED_IDS][NMSG_ID_MAX];
    unsigned ended_n;
    struct limits_cfg limits; /* host/limits.h: the session rules */
    struct limits_drain drain;

    pthread_mutex_t wmu; /* wake-ups of the pump */
    pthread_cond_t wcv;
    int wake_pending;
    pthread_t pump;
    int pump_started;
    volatile sig_atomic_t stop_requested;

    /* delivery thread only: log rate limit */
    int64_t log_window;
    unsigned log_count, log_suppressed;

    atomic_ullong msgs_in, errors_out, publish_failed, sessions_total;
    struct metric *m_msgs, *m_gaps, *m_gap_seconds, *m_connected;
    struct stats stats; /* host/stats.h: events, errors, latencies, audio */
    struct buf scratch; /* pump only: nsess_take's render buffer */

    struct natsw_hooks hooks; /* external input (jsw.h); zero when none */

    /* presence probe (one worker per subject space) */
    natsSubscription *presence;
    char presence_subject[300];
    char instance[160]; /* "hark worker pid P on HOST", the probe's answer */
};

/* natsw.c: publish on the connection; a failure is counted and logged
 * (rate-limited). Any thread. */
void natsw_publish(struct natsw *nw, const char *subject, const void *data, size_t len);

/* nsess.c, under nw->mu unless said otherwise */
struct nsess *nsess_find(struct natsw *nw, const char *id);
int nsess_ended_has(struct natsw *nw, const char *id);
void nsess_ended_forget(struct natsw *nw, const char *id);
/* host/table.h's ended_cb (user = the natsw) */
void nsess_ended_cb(void *user, struct tsess *ts);
/* Pump only (or once no other thread can see s). */
void nsess_free(struct nsess *s);
void nsess_free_msgs(struct chan_msg *m);
/* The session stops taking input: its finals, then closed. */
void nsess_end(struct nsess *s);
/* The host's verdict (host/limits.h) in this protocol: the reason as an
 * error message in order with the results (a fatal error was one itself),
 * then the finals and closed. */
void nsess_verdict(struct natsw *nw, struct nsess *s, enum limits_verdict v, int code,
                   const char *msg);
/* The session's new messages in this protocol: its structured chan's
 * events (host/chan.h MSG_EVENT) rendered to msgpack, oldest first (NULL:
 * none). Pump only, under nw->mu: the render state is the session's and the
 * turn state came with each event, so no worker renders. */
struct chan_msg *nsess_take(struct natsw *nw, struct nsess *s);

/* nin.c: one input message for session id (natsw_feed; rs and fed may be
 * NULL, owner_epoch 0), and the subscription's callback. Delivery thread (or
 * the external input's); takes nw->mu. */
void nin_handle(struct natsw *nw, const char *id, const void *data, size_t len,
                uint64_t owner_epoch, const struct natsw_resume *rs, struct natsw_fed *fed);
void nin_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure);

/* npump.c: the pump thread's body (arg = the natsw). */
void *npump_main(void *arg);

#endif
