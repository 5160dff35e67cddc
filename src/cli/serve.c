/* hark serve: the streaming server (WebSocket + HTTP on one port, plus the
 * NATS front end with --nats-url); hark worker: the NATS front end alone.
 * Both front ends share one worker pool over one engine. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/metrics.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "engines/sherpa/sh_lib.h"
#include "base/mem.h"
#include "front/nats/gwhand.h"
#include "front/nats/natsgw.h"
#include "front/nats/natsw.h"
#include "front/ws/wsfe.h"
#include "host/admit.h"

static struct wsfe *running;
static struct natsw *running_nats;

static void on_signal(int sig)
{
    if (running)
        wsfe_stop(running);
    if (running_nats)
        natsw_stop(running_nats);
}

/* The shared pool's wake-up goes to every front end: each drains only its
 * own sessions, so a spurious wake costs one empty pass. */
static pthread_mutex_t wake_mu = PTHREAD_MUTEX_INITIALIZER;
static struct wsfe *wake_ws;
static struct natsw *wake_nats;

static void wake_all(void *user)
{
    pthread_mutex_lock(&wake_mu);
    if (wake_ws)
        wsfe_wake(wake_ws);
    if (wake_nats)
        natsw_wake(wake_nats);
    pthread_mutex_unlock(&wake_mu);
}

static void set_wake(struct wsfe *ws, struct natsw *nw)
{
    pthread_mutex_lock(&wake_mu);
    wake_ws = ws;
    wake_nats = nw;
    pthread_mutex_unlock(&wake_mu);
}

/* JSON-lines logger: one object per line with time, level, session id. */
static void log_json_cb(void *user, enum hark_log_level level, const char *session_id,
                        const char *msg)
{
    char ts[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03ldZ", now.tv_nsec / 1000000);
    struct buf b;
    buf_init(&b);
    buf_putc(&b, '{');
    buf_json_key(&b, "time");
    buf_json_str(&b, ts);
    buf_json_key(&b, "level");
    buf_json_str(&b, hark_log_level_name(level));
    if (session_id && *session_id) {
        buf_json_key(&b, "session_id");
        buf_json_str(&b, session_id);
    }
    buf_json_key(&b, "msg");
    buf_json_str(&b, msg);
    buf_puts(&b, "}\n");
    if (!b.oom)
        fwrite(b.data, 1, b.len, stderr);
    buf_deinit(&b);
}

static void note_ignored(const char *name, const char *value, const char *what)
{
    /* the value is not shown: a URL may carry credentials */
    LOG_WARN(NULL, "%s is set but not used: %s", name, what);
}

/* hark worker --port: /readyz also needs the NATS connection. */
static const char *nats_not_ready(void *user)
{
    struct natsw *const *nw = user;
    return *nw ? natsw_not_ready(*nw) : "not connected to NATS\n";
}

/* hark serve --backend: /readyz also needs the gateway's NATS connection. */
static const char *gateway_not_ready(void *user)
{
    struct natsgw *const *g = user;
    return *g && natsgw_connected(*g) ? NULL : "not connected to NATS (--backend)\n";
}

/* --backend: detached sessions handed between gateways (natsgw.h, wstake.c). */
static int take_ask(void *ctx, const char *id, const struct gwtake_req *q, char *err, size_t n)
{
    return gwhand_take(ctx, id, q, err, n);
}

static void take_cancel(void *ctx, const char *id)
{
    gwhand_cancel(ctx, id);
}

static void take_answer(void *ctx, const char *reply, const struct gwtake_state *st,
                        const struct hark_event *const *events, size_t n_events, const char *why)
{
    gwhand_answer(ctx, reply, st, events, n_events, why);
}

static void take_reply_free(struct gwtake_reply *r)
{
    gwtake_reply_free(r);
    hark_free(r);
}

static void take_request_cb(void *user, const char *id, const struct gwtake_req *q,
                            const char *reply)
{
    wsfe_take_request(user, id, q, reply);
}

static void taken_cb(void *user, const char *id, struct gwtake_reply *r, const char *why)
{
    wsfe_taken(user, id, r, why);
}

/* --backend nats://...: the sessions' backend instead of a local engine. */
static int start_gateway(const struct config *cfg, struct metrics *metrics, struct natsgw **out,
                         char *err, size_t n)
{
    if (strncmp(cfg->backend, "nats://", 7) && strncmp(cfg->backend, "tls://", 6))
        return err_set(err, n, HARK_E_BAD_OPTION,
                       "--backend %s: the only backend is NATS (nats://HOST:PORT[,...])",
                       cfg->backend);
    if (cfg->nats_url[0])
        return err_set(err, n, HARK_E_BAD_OPTION,
                       "--backend and --nats-url together: a gateway runs no sessions itself; run "
                       "`hark worker --nats-url` next to it");
    struct natsgw_cfg gc = {
        .url = cfg->backend,
        .subject_in = cfg->nats_subject_in,
        .subject_out = cfg->nats_subject_out,
        .name = "hark-gateway",
        .timeout_ms = cfg->backend_timeout_ms,
        .keepalive_ms = 5000, /* well inside a worker's --nats-idle-timeout (30 s) */
        .max_queued_bytes = (size_t)cfg->session_buffer_bytes,
        /* a quarter of a worker's queue, when the workers run the same
         * --session-buffer-bytes (default 1 MiB: 256 KiB = 8 s of 16 kHz) */
        .window_bytes = (size_t)cfg->session_buffer_bytes / 4,
        .metrics = metrics,
    };
    return natsgw_create(out, &gc, err, n);
}

/* Session defaults from the server config, as option text. */
/* hark_provider_failovers_total{reason}: one series per reason the
 * recognise stage gives (include/hark/hark.h, PROVIDER_FAILOVER). */
static const char *const failover_reasons[] = {"unreachable", "timeout", "auth",  "http_status",
                                               "bad_reply",   "closed",  "error", "circuit_open"};
static struct metric *failover_series[sizeof failover_reasons / sizeof failover_reasons[0]];
static struct metrics *failover_m;

static void failover_metrics(struct metrics *m)
{
    for (size_t i = 0; i < sizeof failover_reasons / sizeof failover_reasons[0]; i++)
        failover_series[i] = metrics_counter(
            m, "hark_provider_failovers_total",
            "Sessions that left a network engine for the fallback engine, by reason", "reason",
            failover_reasons[i]);
    failover_m = m;
}

static void on_failover(void *user, const char *reason)
{
    (void)user;
    if (!failover_m)
        return;
    for (size_t i = 0; i < sizeof failover_reasons / sizeof failover_reasons[0]; i++)
        if (!strcmp(reason, failover_reasons[i]) && failover_series[i])
            metrics_inc(failover_series[i]);
}

/* --engine, and --fallback-engine for a network engine. ps_kv: the
 * pocketsphinx settings, for whichever of the two is pocketsphinx. An
 * --openai-url (or seed 004's WHISPER_URL) without --engine selects openai. */
static int load_engines(const struct config *cfg, const char *const *ps_kv,
                        struct hark_engine **eng, struct hark_engine **fallback, char *err,
                        size_t n)
{
    *eng = *fallback = NULL;
    const char *name = cfg->engine;
    if (!config_given(cfg, "engine") && cfg->openai_url[0])
        name = "openai";
    char timeout[16], retries[16];
    snprintf(timeout, sizeof timeout, "%d", cfg->openai_timeout_ms);
    snprintf(retries, sizeof retries, "%d", cfg->openai_retries);
    char partial_ms[16];
    snprintf(partial_ms, sizeof partial_ms, "%d", cfg->openai_partial_ms);
    const char *oa_kv[] = {"url",     cfg->openai_url,   "key",        cfg->openai_key,
                           "model",   cfg->openai_model, "timeout_ms", timeout,
                           "retries", retries,           "partial_ms", partial_ms,
                           NULL};
    char threads[16];
    snprintf(threads, sizeof threads, "%d", cfg->sherpa_threads);
    const char *sh_kv[] = {"lib",     cfg->sherpa_lib,  "model_dir", cfg->sherpa_model,
                           "kind",    cfg->sherpa_kind, "files",     cfg->sherpa_files,
                           "threads", threads,          NULL};
    char dg_timeout[16], dg_keepalive[16];
    snprintf(dg_timeout, sizeof dg_timeout, "%d", cfg->deepgram_timeout_ms);
    snprintf(dg_keepalive, sizeof dg_keepalive, "%d", cfg->deepgram_keepalive_ms);
    const char *dg_kv[] = {"url",
                           cfg->deepgram_url,
                           "key",
                           cfg->deepgram_key,
                           "model",
                           cfg->deepgram_model,
                           "timeout_ms",
                           dg_timeout,
                           "keepalive_ms",
                           dg_keepalive,
                           "vad_gate",
                           cfg->deepgram_vad_gate,
                           NULL};
    int network = !strcmp(name, "openai") || !strcmp(name, "deepgram");
    const char *const *kv = !strcmp(name, "openai")     ? oa_kv
                            : !strcmp(name, "sherpa")   ? sh_kv
                            : !strcmp(name, "deepgram") ? dg_kv
                                                        : ps_kv;
    char detail[1024];
    int rc = hark_engine_load(eng, name, kv, detail, sizeof detail);
    if (rc)
        return err_set(err, n, rc, "engine %s: %s", name, detail);
    if (strcmp(cfg->vad, "webrtc")) {
        char pct[16];
        snprintf(pct, sizeof pct, "%d", cfg->silero_threshold);
        const char *vad_kv[] = {
            "lib", cfg->sherpa_lib, "model", cfg->silero_model, "threshold", pct, NULL};
        if ((rc = hark_engine_set_vad(*eng, cfg->vad, vad_kv, detail, sizeof detail))) {
            hark_engine_destroy(*eng);
            *eng = NULL;
            return err_set(err, n, rc, "--vad %s: %s", cfg->vad, detail);
        }
    }
    if (!cfg->fallback_engine[0])
        return 0;
    if (!strcmp(cfg->fallback_engine, "openai") || !strcmp(cfg->fallback_engine, "deepgram") ||
        !strcmp(name, cfg->fallback_engine) || !network) {
        rc = err_set(err, n, HARK_E_BAD_OPTION,
                     "--fallback-engine %s: a fallback is for a network engine (--engine openai "
                     "or deepgram) and must be a local engine (pocketsphinx)",
                     cfg->fallback_engine);
    } else if ((rc = hark_engine_load(fallback, cfg->fallback_engine, ps_kv, detail,
                                      sizeof detail))) {
        rc = err_set(err, n, rc, "fallback engine %s: %s", cfg->fallback_engine, detail);
    } else if ((rc = hark_engine_set_fallback(*eng, *fallback, cfg->provider_cooldown_ms,
                                              on_failover, NULL))) {
        rc = err_set(err, n, rc, "fallback engine %s: %s", cfg->fallback_engine, hark_strerror(rc));
    }
    if (rc) {
        hark_engine_destroy(*eng);
        hark_engine_destroy(*fallback);
        *eng = *fallback = NULL;
    }
    return rc;
}

static int build_defaults(const struct config *c, struct hark_options **out, char *err, size_t n)
{
    struct hark_options *o;
    int rc = hark_options_create(&o);
    if (rc)
        return rc;
    char v[32];
    struct {
        const char *name;
        int value;
    } ints[] = {
        {"vad_mode", c->vad_mode},
        {"utterance_end_ms", c->utterance_end_ms},
        {"max_utterance_ms", c->max_utterance_ms},
        {"partial_interval_ms", c->partial_interval_ms},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0] && !rc; i++) {
        snprintf(v, sizeof v, "%d", ints[i].value);
        rc = hark_options_set(o, ints[i].name, v, err, n);
    }
    if (!rc) {
        if (c->endpointing_ms)
            snprintf(v, sizeof v, "%d", c->endpointing_ms);
        else
            snprintf(v, sizeof v, "false");
        rc = hark_options_set(o, "endpointing_ms", v, err, n);
    }
    if (!rc)
        rc = hark_options_set(o, "interim_results", c->interim_results ? "true" : "false", err, n);
    if (rc) {
        hark_options_destroy(o);
        return rc;
    }
    *out = o;
    return 0;
}

int cli_serve(int argc, char **argv)
{
    return cli_serve_run(argc, argv, 1);
}

int cli_serve_run(int argc, char **argv, int with_ws)
{
    static const char serve_usage[] =
        "usage: hark serve [options]\n\n"
        "Runs the streaming speech-to-text server: WebSocket /v1/stream, "
        "/healthz, /readyz, /metrics and the demo page at /; with --nats-url also the NATS front "
        "end (docs/nats.md); with --backend nats://... a gateway whose sessions run on hark "
        "workers (docs/deployment.md).\n"
        "Every option can also be set by its environment variable.";
    static const char worker_usage[] =
        "usage: hark worker [options]\n\n"
        "Runs the NATS streaming speech-to-text worker (seed 004, docs/nats.md): audio in on "
        "{nats-subject-in}.{session_id}, results out on {nats-subject-out}.{session_id}, msgpack. "
        "With --port (or HARK_PORT) it also serves /healthz, /readyz and /metrics over HTTP.\n"
        "Every option can also be set by its environment variable.";
    const char *usage = with_ws ? serve_usage : worker_usage;
    const char *cmd = with_ws ? "hark serve" : "hark worker";
    struct config cfg;
    char err[512];
    /* docs/configuration.md is this table; a test keeps them equal */
    if (argc == 2 && !strcmp(argv[1], "--config-markdown")) {
        config_print_markdown(stdout);
        return CLI_OK;
    }
    if (config_load_env(&cfg, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return CLI_USAGE;
    }
    unsigned cfg_cmd = with_ws ? CONFIG_SERVE : CONFIG_WORKER;
    int first = config_parse_args(&cfg, cfg_cmd, argc, argv, 1, usage, err, sizeof err);
    if (first == -2)
        return CLI_OK;
    if (first < 0) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return CLI_USAGE;
    }
    if (first < argc) {
        fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", cmd, argv[first]);
        return CLI_USAGE;
    }
    enum hark_log_level level = HARK_LOG_INFO;
    cli_parse_log_level(cfg.log_level, &level);
    hark_log_set(strcmp(cfg.log_format, "json") ? cli_log_cb : log_json_cb, NULL, level);
    config_note_ignored_env(note_ignored);
    /* hark worker opens an HTTP port only when asked to */
    int with_http = with_ws || config_given(&cfg, "port");

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned workers = cfg.workers ? (unsigned)cfg.workers : (unsigned)(cores > 0 ? cores : 1);
    char pool[16];
    /* One engine stream per talking speaker: by default as many as sessions
     * may be open, created lazily, so memory follows active speakers; at
     * most the engine's own cap (a talker past it waits for a stream, then
     * gets a typed error), so any --max-sessions starts. */
    int pmax = cfg.pool_max
                   ? cfg.pool_max
                   : (cfg.max_sessions < CONFIG_POOL_LIMIT ? cfg.max_sessions : CONFIG_POOL_LIMIT);
    snprintf(pool, sizeof pool, "%d", pmax);
    /* Decoders for the first talkers are made at start, not inside the
     * first sessions (ps_init costs ~0.3-0.9 s of CPU). */
    char pool_min[16];
    int pmin = (int)workers < pmax ? (int)workers : pmax;
    snprintf(pool_min, sizeof pool_min, "%d", pmin < 64 ? pmin : 64);
    char max_hmms[16];
    snprintf(max_hmms, sizeof max_hmms, "%d", cfg.max_hmms);
    const char *kv[16] = {"pool_max", pool, "pool_min", pool_min};
    int nkv = 4;
    if (strcmp(cfg.second_pass, "default")) {
        kv[nkv++] = "second_pass";
        kv[nkv++] = cfg.second_pass;
    }
    if (strcmp(cfg.share_model, "yes")) {
        kv[nkv++] = "share_model";
        kv[nkv++] = cfg.share_model;
    }
    if (cfg.max_hmms) {
        kv[nkv++] = "max_hmms";
        kv[nkv++] = max_hmms;
    }
    if (cfg.model_dir[0]) {
        kv[nkv++] = "model_dir";
        kv[nkv++] = cfg.model_dir;
    }
    kv[nkv] = NULL;

    struct hark_engine *eng = NULL, *fallback = NULL;
    struct hark_options *defaults = NULL;
    struct wsfe *fe = NULL;
    /* a gateway (--backend) loads no engine: its sessions run on workers */
    int gateway = with_ws && cfg.backend[0];
    int rc = gateway ? 0 : load_engines(&cfg, kv, &eng, &fallback, err, sizeof err);
    if (rc) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        return CLI_ENGINE;
    }
    if (build_defaults(&cfg, &defaults, err, sizeof err)) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        hark_engine_destroy(eng);
        hark_engine_destroy(fallback);
        return CLI_USAGE;
    }
    /* One pool for both front ends: no oversubscription, and admission
     * control sees all the load. */
    struct workers *wpool = NULL;
    struct natsw *nw = NULL;
    struct natsgw *gw = NULL;
    struct metrics *metrics = NULL;
    struct admit *admit = NULL;
    int status = CLI_OK;
    rc = workers_create(&wpool, workers, wake_all, NULL);
    if (rc) {
        fprintf(stderr, "%s: cannot start %u worker threads\n", cmd, workers);
        status = CLI_RUNTIME;
        goto out;
    }
    workers_set_hold(wpool, (unsigned)cfg.audio_hold_ms);
    /* One metrics registry and one admission policy for both front ends:
     * --max-sessions and the measured demand count every session. */
    struct admit_cfg ac = {
        .max_sessions = cfg.max_sessions,
        .workers = workers,
        .max_lag_ms = cfg.max_lag_ms,
        .max_busy_percent = cfg.max_busy_percent,
        .pool = wpool,
    };
    if (metrics_create(&metrics) || (ac.metrics = metrics, admit_create(&admit, &ac))) {
        fprintf(stderr, "%s: out of memory\n", cmd);
        status = CLI_RUNTIME;
        goto out;
    }
    failover_metrics(metrics);
    struct backend be;
    if (gateway) {
        if ((rc = start_gateway(&cfg, metrics, &gw, err, sizeof err))) {
            fprintf(stderr, "%s: --backend: %s\n", cmd, err);
            status = rc == HARK_E_BAD_OPTION ? CLI_USAGE : CLI_RUNTIME;
            goto out;
        }
        natsgw_backend(gw, &be);
    }
    struct wsfe_takeover takeover = {
        .ctx = gw,
        .take = take_ask,
        .take_cancel = take_cancel,
        .freeze = gwhand_freeze,
        .thaw = gwhand_thaw,
        .answer = take_answer,
        .reply_free = take_reply_free,
    };
    struct wsfe_cfg wc = {
        .host = cfg.host,
        .port = cfg.port,
        .max_sessions = cfg.max_sessions,
        .max_frame_bytes = (size_t)cfg.max_frame_bytes,
        .max_session_seconds = cfg.max_session_seconds,
        .idle_timeout = cfg.idle_timeout,
        .session_buffer_bytes = (size_t)cfg.session_buffer_bytes,
        .max_body_bytes = (size_t)cfg.max_body_bytes,
        .max_lag_ms = cfg.max_lag_ms,
        .max_busy_percent = cfg.max_busy_percent,
        .shutdown_timeout = cfg.shutdown_timeout,
        .workers = workers,
        .pool = wpool,
        .defaults = defaults,
        .api_keys = with_ws ? cfg.api_keys : NULL,
        .api_keys_file = with_ws ? cfg.api_keys_file : NULL,
        .max_sessions_per_key = cfg.max_sessions_per_key,
        .metrics = metrics,
        .admit = admit,
        .health_only = !with_ws,
        .not_ready = gateway   ? gateway_not_ready
                     : with_ws ? NULL
                               : nats_not_ready,
        .ready_user = gateway ? (void *)&gw : (void *)&nw,
        .backend = gateway ? &be : NULL,
        .takeover = gateway && cfg.resume_window ? &takeover : NULL,
        .engine_name = cfg.engine,
        .tls_cert = cfg.tls_cert,
        .tls_key = cfg.tls_key,
        .allowed_origins = cfg.allowed_origins,
        .max_output_bytes = (size_t)cfg.max_output_bytes,
        .first_message_timeout = cfg.first_message_timeout,
        .max_connections_per_ip = cfg.max_connections_per_ip,
        .min_body_rate = cfg.min_body_rate,
        .resume_window = cfg.resume_window,
        .resume_buffer_bytes = (size_t)cfg.resume_buffer_bytes,
        .resume_buffer_events = (size_t)cfg.resume_buffer_events,
        .ping_interval = cfg.ping_interval,
    };
    if (with_http && (rc = wsfe_create(&fe, &wc, eng, err, sizeof err))) {
        fprintf(stderr, "%s: %s\n", cmd, err);
        status = CLI_RUNTIME;
        goto out;
    }
    if (fe && wc.takeover) {
        struct gwhand_cbs tc = {.request = take_request_cb, .taken = taken_cb, .user = fe};
        gwhand_set(gw, &tc);
    }
    if ((!with_ws || cfg.nats_url[0]) &&
        (rc = cli_nats_start(&nw, &cfg, defaults, eng, wpool, admit, metrics, err, sizeof err))) {
        fprintf(stderr, "%s: NATS: %s\n", cmd, err);
        status = CLI_RUNTIME;
        goto out;
    }
    set_wake(fe, nw);
    running = fe;
    running_nats = nw;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    if (fe) {
        /* A URL that works from this machine: the any-address as the
         * loopback one, IPv6 in brackets. */
        int port = wsfe_port(fe), v6 = 0, tls = cfg.tls_cert[0] != 0;
        char addr[sizeof cfg.host], shown[sizeof cfg.host + 2];
        if (listen_parse_host(cfg.host, addr, sizeof addr, &v6))
            snprintf(addr, sizeof addr, "%s", cfg.host); /* cannot be: it listens */
        if (!strcmp(addr, "0.0.0.0"))
            snprintf(addr, sizeof addr, "127.0.0.1");
        else if (!strcmp(addr, "::"))
            snprintf(addr, sizeof addr, "::1");
        snprintf(shown, sizeof shown, v6 ? "[%s]" : "%s", addr);
        if (!with_ws)
            printf("hark %s health on %s://%s:%d/ (/healthz, /readyz, /metrics)\n", hark_version(),
                   tls ? "https" : "http", shown, port);
        else if (gw)
            printf("hark %s gateway listening on %s://%s:%d/ (demo page), %s://%s:%d/v1/stream; "
                   "sessions run on hark workers via NATS %s (%s.*)\n",
                   hark_version(), tls ? "https" : "http", shown, port, tls ? "wss" : "ws", shown,
                   port, cfg.backend, cfg.nats_subject_in);
        else
            printf("hark %s listening on %s://%s:%d/ (demo page), %s://%s:%d/v1/stream; engine "
                   "%s, %u workers\n",
                   hark_version(), tls ? "https" : "http", shown, port, tls ? "wss" : "ws", shown,
                   port, hark_engine_get_name(eng), workers);
    }
    if (nw)
        printf("hark %s worker on NATS %s (%s): %s.* -> %s.*; engine %s, %u workers\n",
               hark_version(), cli_nats_url(&cfg), natsw_connected(nw) ? "connected" : "connecting",
               cfg.nats_subject_in, cfg.nats_subject_out, hark_engine_get_name(eng), workers);
    fflush(stdout);
    if (fe)
        wsfe_run(fe); /* until SIGTERM/SIGINT, then the WebSocket sessions drain */
    if (nw) {
        if (fe)
            natsw_stop(nw); /* the WebSocket loop ended: so does the NATS side */
        natsw_wait(nw);     /* alone: until SIGTERM/SIGINT and the sessions drained */
    }
    running = NULL;
    running_nats = NULL;
out:
    /* The pool goes first: its threads finish what is queued (a session
     * abandoned at the shutdown deadline may still be rendering), then no
     * chan is in use and the front ends can free theirs. */
    workers_destroy(wpool);
    set_wake(NULL, NULL);
    if (gw)
        gwhand_set(gw, NULL); /* no more calls into the front end */
    wsfe_destroy(fe);
    natsgw_destroy(gw); /* after the front end: its sessions were on it */
    natsw_destroy(nw);
    admit_destroy(admit);
    metrics_destroy(metrics);
    hark_options_destroy(defaults);
    hark_engine_destroy(eng);
    hark_engine_destroy(fallback);
    failover_m = NULL;
    if (status == CLI_OK)
        fprintf(stderr, "%s: stopped\n", cmd);
    return status;
}

/* Whether sherpa-onnx's library loads, for `hark engines` (it loads the
 * library, which starts nothing; no model is read). */
static const char *sherpa_state(const struct config *cfg, char *buf, size_t n)
{
    const struct sh_lib *lib;
    char why[1024];
    if (sh_lib_open(&lib, cfg->sherpa_lib, why, sizeof why))
        snprintf(buf, n, "unavailable: %.900s", why);
    else
        snprintf(buf, n, "sherpa-onnx %s at %s", lib->version(), lib->path);
    return buf;
}

/* `hark engines [serve options]`: the engines built in, and what the same
 * options (flags and environment) would run, without loading anything or
 * calling a provider. */
int cli_engines(int argc, char **argv)
{
    struct config cfg;
    char err[512];
    /* --server URL: a running server's circuit breakers (not a serve option) */
    const char *server = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--server") && i + 1 < argc) {
            server = argv[i + 1];
            memmove(argv + i, argv + i + 2, (size_t)(argc - i - 2 + 1) * sizeof *argv);
            argc -= 2;
            break;
        }
    if (config_load_env(&cfg, err, sizeof err)) {
        fprintf(stderr, "hark engines: %s\n", err);
        return CLI_USAGE;
    }
    int first =
        config_parse_args(&cfg, CONFIG_SERVE, argc, argv, 1,
                          "usage: hark engines [--server URL] [serve options]", err, sizeof err);
    if (first == -2)
        return CLI_OK;
    if (first < 0 || first < argc) {
        fprintf(stderr, "hark engines: %s\n", first < 0 ? err : "unexpected argument");
        return CLI_USAGE;
    }
    const char *name = cfg.engine;
    if (!config_given(&cfg, "engine") && cfg.openai_url[0])
        name = "openai";
    char state[1024];
    for (int i = 0; hark_engine_name(i); i++) {
        const char *e = hark_engine_name(i);
        printf("%-14s %s\n", e, hark_engine_description(i));
        if (!strcmp(e, "openai")) {
            if (cfg.openai_url[0])
                printf("%-14s configured: %s, model %s, %s\n", "", cfg.openai_url, cfg.openai_model,
                       cfg.openai_key[0] ? "with a key" : "no key");
            else
                printf("%-14s not configured (--openai-url, HARK_OPENAI_URL or WHISPER_URL)\n", "");
        } else if (!strcmp(e, "sherpa")) {
            if (cfg.sherpa_model[0])
                printf("%-14s configured: model %s (kind %s)\n", "", cfg.sherpa_model,
                       cfg.sherpa_kind);
            else
                printf("%-14s not configured (--sherpa-model DIR, HARK_SHERPA_MODEL)\n", "");
            printf("%-14s library: %s\n", "", sherpa_state(&cfg, state, sizeof state));
        } else if (!strcmp(e, "deepgram")) {
            printf("%-14s endpoint %s, model %s, %s\n", "", cfg.deepgram_url,
                   cfg.deepgram_model[0] ? cfg.deepgram_model : "(provider's default)",
                   cfg.deepgram_key[0] ? "with a key" : "no key");
        } else {
            printf("%-14s available (local)\n", "");
        }
    }
    printf("vad: %s%s%s\n", cfg.vad, strcmp(cfg.vad, "silero") ? " (built in)" : ", library: ",
           strcmp(cfg.vad, "silero") ? "" : sherpa_state(&cfg, state, sizeof state));
    printf("in use: %s", name);
    if (cfg.fallback_engine[0])
        printf(", failing over to %s (circuit breaker %d ms)", cfg.fallback_engine,
               cfg.provider_cooldown_ms);
    printf("\n");
    return server ? cli_circuit_print(server) : CLI_OK;
}
