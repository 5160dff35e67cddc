/*
 * hark cluster: the ownership table of `hark worker --jetstream` (which
 * worker holds which partition, how much input waits), read from the lease
 * bucket and the stream on the NATS server (docs/nats.md "JetStream").
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/config.h"
#include "front/nats/jsset.h"

int cli_cluster(int argc, char **argv)
{
    struct config cfg;
    char err[600];
    if (config_load_env(&cfg, err, sizeof err)) {
        fprintf(stderr, "hark cluster: %s\n", err);
        return CLI_USAGE;
    }
    int first = config_parse_args(&cfg, CONFIG_WORKER, argc, argv, 1,
                                  "usage: hark cluster [--nats-url URL] [--nats-subject-in PREFIX]",
                                  err, sizeof err);
    if (first == -2)
        return CLI_OK;
    if (first < 0 || first < argc) {
        fprintf(stderr, "hark cluster: %s\n", first < 0 ? err : "unexpected argument");
        return CLI_USAGE;
    }
    if (jsset_print_cluster(cli_nats_url(&cfg), cfg.nats_subject_in, stdout, err, sizeof err)) {
        fprintf(stderr, "hark cluster: %s\n", err);
        return CLI_RUNTIME;
    }
    return CLI_OK;
}
