/* hark serve: the streaming server (WebSocket + HTTP on one port). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "cli/cli.h"
#include "cli/config.h"
#include "front/ws/wsfe.h"

static struct wsfe *running;

static void on_signal(int sig)
{
    if (running)
        wsfe_stop(running);
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

/* Session defaults from the server config, as option text. */
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
    static const char usage[] = "usage: hark serve [options]\n\n"
                                "Runs the streaming speech-to-text server: WebSocket /v1/stream, "
                                "/healthz, /readyz, /metrics and the demo page at /.\n"
                                "Every option can also be set by its environment variable.";
    struct config cfg;
    char err[512];
    if (config_load_env(&cfg, err, sizeof err)) {
        fprintf(stderr, "hark serve: %s\n", err);
        return CLI_USAGE;
    }
    int first = config_parse_args(&cfg, argc, argv, 1, usage, err, sizeof err);
    if (first == -2)
        return CLI_OK;
    if (first < 0) {
        fprintf(stderr, "hark serve: %s\n", err);
        return CLI_USAGE;
    }
    if (first < argc) {
        fprintf(stderr, "hark serve: unexpected argument '%s' (see --help)\n", argv[first]);
        return CLI_USAGE;
    }
    enum hark_log_level level = HARK_LOG_INFO;
    cli_parse_log_level(cfg.log_level, &level);
    hark_log_set(strcmp(cfg.log_format, "json") ? cli_log_cb : log_json_cb, NULL, level);

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned workers = cfg.workers ? (unsigned)cfg.workers : (unsigned)(cores > 0 ? cores : 1);
    char pool[16];
    snprintf(pool, sizeof pool, "%u", cfg.pool_max ? (unsigned)cfg.pool_max : workers + 2);
    const char *kv[12] = {"pool_max", pool};
    int nkv = 2;
    if (strcmp(cfg.second_pass, "default")) {
        kv[nkv++] = "second_pass";
        kv[nkv++] = cfg.second_pass;
    }
    if (cfg.model_dir[0]) {
        kv[nkv++] = "model_dir";
        kv[nkv++] = cfg.model_dir;
    }
    kv[nkv] = NULL;

    struct hark_engine *eng = NULL;
    struct hark_options *defaults = NULL;
    struct wsfe *fe = NULL;
    int rc = hark_engine_load(&eng, cfg.engine, kv, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hark serve: engine %s: %s\n", cfg.engine, err);
        return CLI_ENGINE;
    }
    if (build_defaults(&cfg, &defaults, err, sizeof err)) {
        fprintf(stderr, "hark serve: %s\n", err);
        hark_engine_destroy(eng);
        return CLI_USAGE;
    }
    struct wsfe_cfg wc = {
        .host = cfg.host,
        .port = cfg.port,
        .max_sessions = cfg.max_sessions,
        .max_frame_bytes = (size_t)cfg.max_frame_bytes,
        .max_session_seconds = cfg.max_session_seconds,
        .idle_timeout = cfg.idle_timeout,
        .session_buffer_bytes = (size_t)cfg.session_buffer_bytes,
        .max_lag_ms = cfg.max_lag_ms,
        .max_busy_percent = cfg.max_busy_percent,
        .shutdown_timeout = cfg.shutdown_timeout,
        .workers = workers,
        .defaults = defaults,
    };
    rc = wsfe_create(&fe, &wc, eng, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hark serve: %s\n", err);
        hark_options_destroy(defaults);
        hark_engine_destroy(eng);
        return CLI_RUNTIME;
    }
    running = fe;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int port = wsfe_port(fe);
    const char *shown = strcmp(cfg.host, "0.0.0.0") ? cfg.host : "127.0.0.1";
    printf("hark %s listening on http://%s:%d/ (demo page), ws://%s:%d/v1/stream; engine %s, "
           "%u workers\n",
           hark_version(), shown, port, shown, port, cfg.engine, workers);
    fflush(stdout);
    wsfe_run(fe);
    running = NULL;
    wsfe_destroy(fe);
    hark_options_destroy(defaults);
    hark_engine_destroy(eng);
    fprintf(stderr, "hark serve: stopped\n");
    return CLI_OK;
}
