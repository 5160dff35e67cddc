/*
 * hark worker: the NATS front end (seed 004, docs/nats.md) without the
 * WebSocket server (with --port, a health-only HTTP port: /healthz, /readyz,
 * /metrics); `hark serve --nats-url` runs the same front end next to
 * the WebSocket one. Both go through cli_serve_run (serve.c); this file maps
 * the server config onto the NATS front end.
 */
#include "base/err.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "front/nats/jsw.h"
#include "front/nats/natsw.h"

#define DEFAULT_NATS_URL "nats://127.0.0.1:4222"

int cli_worker(int argc, char **argv)
{
    return cli_serve_run(argc, argv, 0);
}

const char *cli_nats_url(const struct config *cfg)
{
    return cfg->nats_url[0] ? cfg->nats_url : DEFAULT_NATS_URL;
}

int cli_nats_start(struct natsw **out, const struct config *cfg,
                   const struct hark_options *defaults, struct hark_engine *eng,
                   struct workers *pool, struct admit *admit, struct metrics *metrics, char *err,
                   size_t n)
{
    /* STT_ENABLE_VAD and STT_ENABLE_INTERRUPT_DETECTION are session
     * options of the NATS sessions only: WebSocket clients choose per session. */
    struct hark_options *o = NULL;
    int rc = hark_options_copy(&o, defaults);
    if (rc)
        return err_set(err, n, rc, "out of memory");
    rc = hark_options_set(o, "vad", cfg->enable_vad ? "true" : "false", err, n);
    if (!rc)
        rc = hark_options_set(o, "interrupt_detection", cfg->interrupt_detection ? "true" : "false",
                              err, n);
    if (!rc) {
        struct natsw_cfg nc = {
            .url = cli_nats_url(cfg),
            .subject_in = cfg->nats_subject_in,
            .subject_out = cfg->nats_subject_out,
            .name = "hark-worker",
            .max_sessions = cfg->max_sessions,
            .max_message_bytes = (size_t)cfg->max_frame_bytes,
            .session_buffer_bytes = (size_t)cfg->session_buffer_bytes,
            .max_session_seconds = cfg->max_session_seconds,
            .idle_timeout = cfg->nats_idle_timeout,
            .chunk_timeout_ms = cfg->chunk_timeout_ms,
            .buffer_size_bytes = (size_t)cfg->buffer_size_bytes,
            .shutdown_timeout = cfg->shutdown_timeout,
            .defaults = o,
            .gap_threshold_ms = cfg->gap_threshold_ms,
            .allow_shared_subjects = cfg->allow_shared_subjects,
            .admit = admit,
            .metrics = metrics,
            .external_input = cfg->jetstream,
        };
        rc = natsw_create(out, &nc, eng, pool, err, n);
    }
    if (!rc && cfg->jetstream) {
        struct jsw_cfg jc = {
            .subject_in = cfg->nats_subject_in,
            .partitions = cfg->jetstream_partitions,
            .lease_ttl_ms = cfg->jetstream_lease_ttl_ms,
            .max_bytes = (int64_t)cfg->jetstream_max_mb << 20,
            .max_age_s = cfg->jetstream_max_age,
            .replicas = cfg->jetstream_replicas,
            .metrics = metrics,
        };
        struct jsw *j = NULL;
        if ((rc = jsw_create(&j, *out, &jc, err, n))) {
            natsw_stop(*out);
            natsw_wait(*out);
            natsw_destroy(*out);
            *out = NULL;
        }
    }
    hark_options_destroy(o);
    return rc;
}
