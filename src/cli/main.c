/* hark: command dispatch and shared helpers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/mem.h"
#include "cli/cli.h"

void cli_log_cb(void *user, enum hark_log_level level, const char *session_id, const char *msg)
{
    char ts[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (session_id && *session_id)
        fprintf(stderr, "%s %-5s [%s] %s\n", ts, hark_log_level_name(level), session_id, msg);
    else
        fprintf(stderr, "%s %-5s %s\n", ts, hark_log_level_name(level), msg);
}

int cli_parse_log_level(const char *s, enum hark_log_level *out)
{
    static const enum hark_log_level levels[] = {HARK_LOG_ERROR, HARK_LOG_WARN, HARK_LOG_INFO,
                                                 HARK_LOG_DEBUG};
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
        if (strcmp(s, hark_log_level_name(levels[i])) == 0) {
            *out = levels[i];
            return 0;
        }
    }
    return -1;
}

void cli_settings_free(struct cli_settings *s)
{
    for (int i = 0; i < s->n; i += 2)
        hark_free((char *)s->kv[i]);
    s->n = 0;
    s->kv[0] = NULL;
}

int cli_settings_add(struct cli_settings *s, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv || s->n + 3 > (int)(sizeof s->kv / sizeof s->kv[0]))
        return -1;
    /* The strings live as long as argv; only the name needs its own copy. */
    char *name = hark_strndup(kv, (size_t)(eq - kv));
    if (!name)
        return -1;
    s->kv[s->n++] = name;
    s->kv[s->n++] = eq + 1;
    s->kv[s->n] = NULL;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: hark <command> [options]\n"
        "\n"
        "commands:\n"
        "  serve [options]               run the streaming server (WebSocket + HTTP)\n"
        "  worker [options]              run the NATS streaming worker (seed 004)\n"
        "  cluster [--nats-url URL]      which `worker --jetstream` owns which partition\n"
        "  transcribe [options] FILE|-   stream a file or stdin through a session\n"
        "  engines [serve options]       list the engines built in and what the options configure\n"
        "  version                       print the version\n"
        "\n"
        "`hark <command> --help` shows the command's options.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "serve"))
        return cli_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "worker"))
        return cli_worker(argc - 1, argv + 1);
    if (!strcmp(cmd, "cluster"))
        return cli_cluster(argc - 1, argv + 1);
    if (!strcmp(cmd, "transcribe"))
        return cli_transcribe(argc - 1, argv + 1);
    if (!strcmp(cmd, "engines"))
        return cli_engines(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("hark %s\n", hark_version());
        return CLI_OK;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return CLI_OK;
    }
    fprintf(stderr, "hark: unknown command '%s'\n", cmd);
    usage(stderr);
    return CLI_USAGE;
}
