/*
 * Server configuration: one table (config.c) of every setting with its flag,
 * environment variables, type, default, range and help. Flags, environment,
 * `--help` and docs/configuration.md all come from it.
 *
 * Precedence: command-line flag > HARK_* variable > seed alias (STT_*,
 * NATS_URL) > default. Of the two variables only the one used is checked
 * (a bad alias is ignored when the HARK_* variable is set); a bad variable
 * is an error even when a flag overrides it. Not thread-safe; filled once at
 * start-up.
 */
#ifndef HARK_CLI_CONFIG_H
#define HARK_CLI_CONFIG_H

#include <stdio.h>

/* Most engine streams a server may pool: pocketsphinx's own cap (POOL_LIMIT
 * in src/engines/pocketsphinx/pocketsphinx.c; ~50 MB each, so far past any RAM). */
#define CONFIG_POOL_LIMIT 256

struct config {
    /* network */
    char host[128];
    int port;
    char tls_cert[512];
    char tls_key[512];
    char allowed_origins[4096];
    /* limits */
    int max_sessions;
    int max_frame_bytes;
    int max_session_seconds;
    int idle_timeout;
    int session_buffer_bytes;
    int max_body_bytes;
    int max_lag_ms;
    int max_busy_percent;
    int shutdown_timeout;
    int resume_window;
    int resume_buffer_bytes;
    int resume_buffer_events;
    int ping_interval;
    /* compute */
    int workers;
    int audio_hold_ms;
    char engine[32];
    int pool_max;
    char second_pass[16];
    char share_model[8];
    int max_hmms; /* 0 = the engine's default */
    char model_dir[256];
    char openai_url[512];
    char openai_key[512];
    char openai_model[128];
    int openai_timeout_ms;
    int openai_retries;
    int openai_partial_ms;
    char deepgram_url[512];
    char deepgram_key[512];
    char deepgram_model[128];
    int deepgram_timeout_ms;
    int deepgram_keepalive_ms;
    char deepgram_vad_gate[8];
    char fallback_engine[32];
    int provider_cooldown_ms;
    char sherpa_lib[512];
    char sherpa_model[512];
    char sherpa_kind[16];
    char sherpa_files[2048];
    int sherpa_threads;
    char vad[8];
    char silero_model[512];
    int silero_threshold;
    /* session defaults */
    int vad_mode;
    int endpointing_ms;
    int utterance_end_ms;
    int interim_results;
    int max_utterance_ms;
    int partial_interval_ms;
    /* nats (seed 004) */
    char nats_url[512];
    char nats_subject_in[201];
    char nats_subject_out[201];
    int chunk_timeout_ms;
    int buffer_size_bytes;
    int enable_vad;
    int interrupt_detection;
    int nats_idle_timeout;
    int gap_threshold_ms;
    int allow_shared_subjects;
    char backend[512];      /* hark serve --backend nats://...: sessions run on hark workers */
    int backend_timeout_ms; /* a worker's answer to start / after end */
    int jetstream;          /* --jetstream: input through a JetStream stream (jsw.h) */
    int jetstream_partitions;
    int jetstream_lease_ttl_ms;
    int jetstream_max_mb;
    int jetstream_max_age;
    int jetstream_replicas;
    /* auth */
    char api_keys[8192];
    char api_keys_file[512];
    int max_sessions_per_key;
    int max_output_bytes;
    int first_message_timeout;
    int max_connections_per_ip;
    int min_body_rate;
    /* logging */
    char log_level[8];
    char log_format[8];
    /* per table row: set by a flag or an environment variable (not the default) */
    unsigned char given[128];
};

/* The commands that read the table: `hark serve` uses every row,
 * `hark worker` the rows marked for it. */
enum config_cmd { CONFIG_SERVE = 1, CONFIG_WORKER = 2 };

/* Defaults, then environment. Returns 0 or -1 with a message in err. */
int config_load_env(struct config *c, char *err, size_t n);
/*
 * Parses flags from argv[first..argc); unknown flags, and flags of rows the
 * command does not use, are errors. Returns the
 * index of the first non-flag argument, or -1 with a message in err, or -2
 * when --help was given (help already printed to stdout).
 */
int config_parse_args(struct config *c, unsigned cmd, int argc, char **argv, int first,
                      const char *usage_line, char *err, size_t n);
/* 1 when the row of --flag was set by a flag or its variable. */
int config_given(const struct config *c, const char *flag);
/* The table as Markdown (docs/configuration.md, every row with the commands
 * that use it) or as one command's --help text (its rows only). */
void config_print_markdown(FILE *f);
void config_print_help(FILE *f, const char *usage_line, unsigned cmd);
/* Calls note for each set environment variable of seed 004 that hark does
 * not use, with what hark does instead. */
void config_note_ignored_env(void (*note)(const char *name, const char *value, const char *what));

#endif
