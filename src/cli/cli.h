/* The hark command: shared pieces of its subcommands. */
#ifndef HARK_CLI_CLI_H
#define HARK_CLI_CLI_H

#include <stddef.h>

#include "hark/hark.h"

/* Exit statuses, shared by every subcommand. */
enum cli_exit {
    CLI_OK = 0,
    CLI_USAGE = 1,   /* bad command line */
    CLI_INPUT = 2,   /* unreadable, undecodable or unsupported input */
    CLI_ENGINE = 3,  /* engine/model could not be loaded or failed */
    CLI_RUNTIME = 4, /* anything else */
};

int cli_transcribe(int argc, char **argv);
int cli_engines(int argc, char **argv);
/* circuit.c: the circuit breakers of a running server (its /metrics), printed. */
int cli_circuit_print(const char *server);
int cli_serve(int argc, char **argv);
int cli_worker(int argc, char **argv);
int cli_cluster(int argc, char **argv); /* cluster.c: the JetStream ownership table */

/* serve.c: `hark serve` (with_ws 1) and `hark worker` (0, NATS only). */
int cli_serve_run(int argc, char **argv, int with_ws);

/* worker.c: the NATS front end from the server config, on a shared pool. */
struct config;
struct natsw;
struct workers;
struct admit;
struct metrics;
int cli_nats_start(struct natsw **out, const struct config *cfg,
                   const struct hark_options *defaults, struct hark_engine *eng,
                   struct workers *pool, struct admit *admit, struct metrics *metrics, char *err,
                   size_t n);
/* The URL the NATS front end uses (--nats-url or the default). */
const char *cli_nats_url(const struct config *cfg);

/* stderr logger for hark_log_set; level parsed from "error|warn|info|debug". */
void cli_log_cb(void *user, enum hark_log_level level, const char *session_id, const char *msg);
int cli_parse_log_level(const char *s, enum hark_log_level *out);

/* Collects "--engine-opt name=value" pairs into a NULL-terminated settings
 * array for hark_engine_load. */
struct cli_settings {
    const char *kv[64];
    int n;
};
int cli_settings_add(struct cli_settings *s, const char *name_eq_value);
void cli_settings_free(struct cli_settings *s);

#endif
