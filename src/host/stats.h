/*
 * The session metrics every front end reports the same way (issue 11): the
 * events sent by type and the errors by code (hark_events_total,
 * hark_errors_total), the latency histograms of first partials and finals,
 * and the audio of ended sessions (hark_audio_seconds_total). WebSocket
 * and NATS sessions count into the same series: the registry returns the
 * same series for the same name and label, so each front end may hold its
 * own struct stats on the shared registry.
 *
 * Transport-neutral: never sees libwebsockets or nats.c.
 *
 * Ownership: a struct stats points into its registry, which outlives it.
 * Threads: every function may run on any thread (metric updates are
 * lock-free); stats_init on one thread before use.
 */
#ifndef HARK_HOST_STATS_H
#define HARK_HOST_STATS_H

#include <stdint.h>

#include "base/metrics.h"
#include "hark/hark.h"
#include "host/chan.h"

struct stats {
    struct metric *audio;
    struct metric *lat_partial, *lat_endpoint, *lat_finalize;
    struct metric *events[HARK_EVENT_AUDIO_GAP + 1]; /* by hark_event_type */
    struct metric *errors[32];
};

/* Registers the series in m (NULL: every call below does nothing). */
void stats_init(struct stats *st, struct metrics *m);
/* A session event was sent (or is about to be) to its client. */
void stats_event(struct stats *st, const struct hark_event *ev);
/* A message of a session (host/chan.h) was written at now (monotonic
 * ns): observes its latency when it measures one (lat_kind). */
void stats_latency(struct stats *st, const struct chan_msg *m, int64_t now);
/* A session ended: its audio joins the total. *audio and *cpu get its
 * seconds of audio and of CPU (for the front end's log line). */
void stats_ended(struct stats *st, struct chan *c, double *audio, double *cpu);

#endif
