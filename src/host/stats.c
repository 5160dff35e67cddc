/*
 * Session metrics (see stats.h). These used to live in the WebSocket
 * server, so NATS sessions were missing from hark_events_total and the
 * latency histograms.
 */
#include "host/stats.h"

#include <string.h>

#include "base/err.h"

static const double lat_bounds[] = {0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10};

void stats_init(struct stats *st, struct metrics *m)
{
    memset(st, 0, sizeof *st);
    if (!m)
        return;
    st->audio =
        metrics_counter(m, "hark_audio_seconds_total", "Seconds of audio processed", NULL, NULL);
    size_t nb = sizeof lat_bounds / sizeof lat_bounds[0];
    st->lat_partial = metrics_histogram(
        m, "hark_first_partial_latency_seconds",
        "From arrival of the audio a segment's first partial covers to sending it", NULL, NULL,
        lat_bounds, nb);
    st->lat_endpoint = metrics_histogram(
        m, "hark_endpoint_final_latency_seconds",
        "From arrival of the audio that completes the endpoint silence to sending the final", NULL,
        NULL, lat_bounds, nb);
    st->lat_finalize = metrics_histogram(m, "hark_finalize_final_latency_seconds",
                                         "From a finalize request to sending its final", NULL, NULL,
                                         lat_bounds, nb);
    static const enum hark_event_type types[] = {
        HARK_EVENT_TRANSCRIPT,        HARK_EVENT_SPEECH_STARTED, HARK_EVENT_UTTERANCE_END,
        HARK_EVENT_INTERRUPT,         HARK_EVENT_ERROR,          HARK_EVENT_CLOSED,
        HARK_EVENT_PROVIDER_FAILOVER, HARK_EVENT_AUDIO_GAP};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        st->events[types[i]] = metrics_counter(m, "hark_events_total", "Events sent", "type",
                                               hark_event_type_name(types[i]));
#define XX(sym, num, code, text)                                                                   \
    st->errors[-(num)] = metrics_counter(m, "hark_errors_total", "Errors by code", "code", code);
    HARK_ERR_MAP(XX)
#undef XX
}

void stats_event(struct stats *st, const struct hark_event *ev)
{
    if ((unsigned)ev->type < sizeof st->events / sizeof st->events[0] && st->events[ev->type])
        metrics_inc(st->events[ev->type]);
    if (ev->type == HARK_EVENT_ERROR && ev->code < 0 &&
        (unsigned)-ev->code < sizeof st->errors / sizeof st->errors[0] && st->errors[-ev->code])
        metrics_inc(st->errors[-ev->code]);
}

void stats_latency(struct stats *st, const struct chan_msg *m, int64_t now)
{
    if (m->lat_kind == LAT_NONE || !m->t_ref)
        return;
    double s = (double)(now - m->t_ref) / 1e9;
    if (m->lat_kind == LAT_FIRST_PARTIAL)
        metrics_observe(st->lat_partial, s);
    else if (m->lat_kind == LAT_FINAL_ENDPOINT)
        metrics_observe(st->lat_endpoint, s);
    else if (m->lat_kind == LAT_FINAL_FINALIZE)
        metrics_observe(st->lat_finalize, s);
}

void stats_ended(struct stats *st, struct chan *c, double *audio, double *cpu)
{
    chan_usage(c, audio, cpu);
    metrics_add(st->audio, *audio);
}
