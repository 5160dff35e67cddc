/*
 * hark transcribe [options] FILE|-
 *
 * Streams a file or stdin through one session. On a terminal the current
 * partial is rewritten in place and finals go on their own lines; piped,
 * only finals are printed (one per line); --json prints every event as one
 * JSON object per line in the native protocol's shape.
 *
 * With --server ws://HOST:PORT the same stream goes to a hark server
 * through the C client (include/hark/client.h), which reconnects and
 * resumes through network faults; the output is the same.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "audio/wav.h"
#include "base/buf.h"
#include "base/log.h"
#include "base/mem.h"
#include "cli/cli.h"
#include "hark/client.h"
#include "session/event_json.h"

#define CLOSE_TIMEOUT_MS 120000 /* hark transcribe --server: the end of input to closed */

struct tx {
    int json;
    int tty;          /* stdout is a terminal */
    int progress;     /* show progress */
    double total_sec; /* estimated input length, 0 = unknown */
    double done_sec;
    int partial_shown;
    int errors;
    int first_error;
    double closed_audio; /* CLOSED's audio_seconds */
    struct buf line;
};

/* --server: events arrive on the client's thread while the main thread
 * reads the input and draws the progress bar; both print under this. */
static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;

static size_t terminal_columns(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* The progress bar goes to stderr. On a terminal it shares the line with
 * the partial (stdout): flush stdout first so the two stay in order. */
#define BAR_WIDTH 20

static void print_progress_prefix(struct tx *t)
{
    if (t->progress && t->total_sec > 0) {
        int pct = (int)(100.0 * t->done_sec / t->total_sec);
        if (pct > 100)
            pct = 100;
        char bar[BAR_WIDTH + 1];
        int fill = pct * BAR_WIDTH / 100;
        for (int i = 0; i < BAR_WIDTH; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        fflush(stdout);
        fprintf(stderr, "[%s] %3d%% ", bar, pct);
    }
}

static void on_event(void *user, const struct hark_event *ev)
{
    struct tx *t = user;
    if (ev->type == HARK_EVENT_CLOSED)
        t->closed_audio = ev->audio_seconds;
    if (ev->type == HARK_EVENT_ERROR) {
        t->errors++;
        if (!t->first_error)
            t->first_error = ev->code;
        if (t->partial_shown) {
            printf("\r\033[K");
            t->partial_shown = 0;
        }
        fflush(stdout);
        fprintf(stderr, "hark: error: %s: %s\n", hark_err_code(ev->code), ev->message);
    }
    if (t->json) {
        buf_reset(&t->line);
        event_json_render(ev, &t->line);
        buf_putc(&t->line, '\n');
        fwrite(t->line.data, 1, t->line.len, stdout);
        fflush(stdout);
        return;
    }
    if (ev->type != HARK_EVENT_TRANSCRIPT)
        return;
    if (!ev->is_final) {
        if (t->tty) {
            /* dim partial, rewritten in place */
            printf("\r\033[K");
            print_progress_prefix(t);
            /* Only the tail that fits on one line: a wrapped partial could
             * not be cleared by \r\033[K and would leave stale lines. */
            const char *shown = ev->text;
            size_t room =
                terminal_columns() - (t->progress && t->total_sec > 0 ? BAR_WIDTH + 8 : 0) - 2;
            if (strlen(shown) > room) {
                shown += strlen(shown) - room + 3;
                while ((*shown & 0xC0) == 0x80) /* not inside a UTF-8 sequence */
                    shown++;
                printf("\033[2m...%s\033[0m", shown);
            } else {
                printf("\033[2m%s\033[0m", shown);
            }
            fflush(stdout);
            t->partial_shown = 1;
        }
        return;
    }
    if (t->tty)
        printf("\r\033[K");
    t->partial_shown = 0;
    if (ev->text[0])
        printf("%s\n", ev->text);
    fflush(stdout);
}

static void show_progress(struct tx *t)
{
    if (!t->progress || t->total_sec <= 0)
        return;
    if (t->tty) {
        if (!t->partial_shown) {
            printf("\r\033[K");
            print_progress_prefix(t);
            fflush(stdout);
        }
        return;
    }
    int pct = (int)(100.0 * t->done_sec / t->total_sec);
    if (pct > 100)
        pct = 100;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r[%s] %3d%% %.1f/%.1f s", bar, pct, t->done_sec, t->total_sec);
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: hark transcribe [options] FILE|-\n"
           "\n"
           "Streams audio through a recognition session and prints what was said.\n"
           "FILE may be WAV, Ogg Opus or WebM/Opus (format read from the file) or raw audio with "
           "--encoding.\n"
           "\n"
           "output:\n"
           "  --json                 one JSON object per event per line\n"
           "  --realtime             pace input at capture rate (default: as fast as possible)\n"
           "  --chunk-ms N           feed audio in chunks of N ms (default 100)\n"
           "  --describe             print the session's pipeline on stderr\n"
           "  --log-level L          error|warn|info|debug (default warn)\n"
           "server (stream to a hark server instead of recognising here):\n"
           "  --server URL           ws://HOST:PORT or wss://HOST:PORT (path default /v1/stream);\n"
           "                         reconnects and resumes through network faults\n"
           "  --api-key KEY          API key for the server (default: $HARK_API_KEY)\n"
           "  --ca-file FILE         wss: CA certificates (PEM) to verify the server\n"
           "engine:\n"
           "  --engine NAME          engine to use (default pocketsphinx; see `hark engines`)\n"
           "  --engine-opt K=V       engine setting, repeatable (pocketsphinx: second_pass=\n"
           "                         none|bestpath|full, share_model=yes|no, max_hmms=N,\n"
           "                         model_dir=, hmm=, lm=, dict=)\n"
           "session options (also settable as --name or --name=value):\n");
    for (int i = 0; hark_options_name(i); i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s", hark_options_name(i));
        for (char *p = flag + 2; *p; p++)
            if (*p == '_')
                *p = '-';
        fprintf(f, "  %-22s %s\n", flag, hark_options_help(i));
    }
    fprintf(f, "\nexit status: 0 ok, 1 usage, 2 bad input, 3 engine error, 4 other error\n");
}

/* Bytes of audio per second of the input, when it can be known up front. */
static double raw_bytes_per_sec(const struct hark_options *o)
{
    char enc[32], rate[16], ch[16];
    hark_options_get(o, "encoding", enc, sizeof enc);
    hark_options_get(o, "sample_rate", rate, sizeof rate);
    hark_options_get(o, "channels", ch, sizeof ch);
    double bps = strcmp(enc, "pcm_s16le") == 0   ? 2
                 : strcmp(enc, "pcm_f32le") == 0 ? 4
                 : strcmp(enc, "wav") == 0       ? 0
                                                 : 1;
    return bps * atof(rate) * atof(ch);
}

static double wav_bytes_per_sec(const unsigned char *h, size_t n)
{
    /* Canonical header: byte rate at offset 28. Only for the progress bar. */
    if (n >= 32 && memcmp(h, "RIFF", 4) == 0 && memcmp(h + 8, "WAVE", 4) == 0)
        return (double)(h[28] | h[29] << 8 | h[30] << 16 | (unsigned)h[31] << 24);
    return 0;
}

static void sleep_until(struct timespec *t0, double sec)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double el = (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
    if (sec > el) {
        double d = sec - el;
        struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/* ------------------------------------------------------------ --server */

/* The session options given on the command line, as the config message's
 * name/value pairs (the server's defaults stand for the rest). */
#define WIRE_MAX 64
struct wire_opts {
    char names[WIRE_MAX][64];
    const char *kv[2 * WIRE_MAX + 1];
    int n;
};

static void wire_set(struct wire_opts *w, const char *name, const char *val)
{
    for (int i = 0; i < w->n; i++) {
        if (!strcmp(w->names[i], name)) {
            w->kv[2 * i + 1] = val;
            return;
        }
    }
    if (w->n == WIRE_MAX)
        return; /* more than every option there is: repeats only */
    snprintf(w->names[w->n], sizeof w->names[0], "%s", name);
    w->kv[2 * w->n] = w->names[w->n];
    w->kv[2 * w->n + 1] = val;
    w->n++;
    w->kv[2 * w->n] = NULL;
}

struct remote {
    struct tx *t;
    int ready;         /* a session was opened */
    int refused_early; /* the server refused the config */
};

static void print_json_line(struct tx *t, struct buf *b)
{
    buf_putc(b, '\n');
    fwrite(b->data, 1, b->len, stdout);
    fflush(stdout);
}

static void on_client_event(void *user, const struct hark_client_event *ce)
{
    struct remote *r = user;
    struct tx *t = r->t;
    pthread_mutex_lock(&print_mu);
    struct buf b;
    buf_init(&b);
    switch (ce->type) {
    case HARK_CLIENT_EVENT_SESSION:
        if (ce->event->type == HARK_EVENT_ERROR && !r->ready)
            r->refused_early = 1;
        on_event(t, ce->event);
        break;
    case HARK_CLIENT_EVENT_READY:
    case HARK_CLIENT_EVENT_RESUMED:
        r->ready = 1;
        break;
    case HARK_CLIENT_EVENT_RECONNECTING: /* the library logs these (--log-level info) */
        break;
    case HARK_CLIENT_EVENT_ERROR:
        t->errors++;
        if (!t->first_error)
            t->first_error = ce->code;
        if (t->partial_shown) {
            printf("\r\033[K");
            t->partial_shown = 0;
        }
        fflush(stdout);
        fprintf(stderr, "hark: error: %s: %s\n", hark_err_code(ce->code), ce->message);
        if (t->json) {
            buf_puts(&b, "{\"type\":\"error\"");
            buf_json_key(&b, "code");
            buf_json_str(&b, hark_err_code(ce->code));
            buf_json_key(&b, "message");
            buf_json_str(&b, ce->message);
            buf_putc(&b, '}');
            print_json_line(t, &b);
        }
        break;
    case HARK_CLIENT_EVENT_RESTARTED:
        fflush(stdout);
        fprintf(stderr, "hark: session %s could not be resumed; session %s continues from %.2f s\n",
                ce->old_session_id, ce->session_id, (double)ce->offset_ms / 1000.0);
        if (t->json) {
            buf_puts(&b, "{\"type\":\"restarted\"");
            buf_json_key(&b, "old_session_id");
            buf_json_str(&b, ce->old_session_id);
            buf_json_key(&b, "new_session_id");
            buf_json_str(&b, ce->session_id);
            buf_json_key(&b, "offset_ms");
            buf_json_num(&b, (double)ce->offset_ms);
            buf_putc(&b, '}');
            print_json_line(t, &b);
        }
        break;
    case HARK_CLIENT_EVENT_AUDIO_LOST:
        fflush(stdout);
        if (ce->from_ms >= 0)
            fprintf(stderr, "hark: warning: audio lost from %.2f s to %.2f s\n",
                    (double)ce->from_ms / 1000.0, (double)ce->to_ms / 1000.0);
        else
            fprintf(stderr, "hark: warning: audio lost: bytes %llu to %llu\n",
                    (unsigned long long)ce->from_byte, (unsigned long long)ce->to_byte);
        if (t->json) {
            buf_puts(&b, "{\"type\":\"audio_lost\"");
            buf_json_key(&b, "from_ms");
            buf_json_num(&b, (double)ce->from_ms);
            buf_json_key(&b, "to_ms");
            buf_json_num(&b, (double)ce->to_ms);
            buf_putc(&b, '}');
            print_json_line(t, &b);
        }
        break;
    case HARK_CLIENT_EVENT_STATE:
        LOG_DEBUG(NULL, "client %s -> %s", hark_client_state_name(ce->prev_state),
                  hark_client_state_name(ce->state));
        break;
    }
    buf_deinit(&b);
    pthread_mutex_unlock(&print_mu);
}

/* A WAV file goes to the server as its raw samples when they are in a raw
 * encoding: then the client can replay them into a new session if the old
 * one is lost (a WAV stream cannot restart without its header). Reads the
 * header (into pre) and sets the wire options; *skip = header bytes. */
static int wav_to_raw(FILE *in, struct buf *pre, struct wire_opts *w, double *bps, size_t *skip,
                      char *rate, char *ch, size_t num_size, const char *input)
{
    struct wav_parser *wp = NULL;
    struct wav_info info;
    char err[256];
    size_t used = 0, total = 0;
    int rc = wav_parser_create(&wp);
    while (!rc) {
        rc = wav_parser_feed(wp, (const uint8_t *)pre->data + total, pre->len - total, &used, &info,
                             err, sizeof err);
        total += used;
        if (rc)
            break;
        unsigned char more[4096];
        size_t n = fread(more, 1, sizeof more, in);
        if (n == 0) {
            rc = 0; /* the header never ended: sent as it is, the server says why */
            break;
        }
        buf_append(pre, more, n);
    }
    wav_parser_destroy(wp);
    if (rc < 0) {
        fprintf(stderr, "hark: error: %s: %s: %s\n", hark_err_code(rc), input, err);
        return rc;
    }
    *skip = 0;
    if (rc == 1 && (info.fmt == PCM_S16LE || info.fmt == PCM_F32LE || info.fmt == PCM_MULAW ||
                    info.fmt == PCM_ALAW)) {
        snprintf(rate, num_size, "%d", info.sample_rate);
        snprintf(ch, num_size, "%d", info.channels);
        wire_set(w, "encoding", pcm_format_name(info.fmt));
        wire_set(w, "sample_rate", rate);
        wire_set(w, "channels", ch);
        *bps = (double)pcm_sample_bytes(info.fmt) * info.sample_rate * info.channels;
        *skip = total;
    }
    return 0;
}

static int run_remote(struct tx *t, const char *url, const char *api_key, const char *ca_file,
                      struct wire_opts *w, FILE *in, const unsigned char *head, size_t head_len,
                      int sniff_wav, int realtime, int chunk_ms, const char *input)
{
    struct remote r = {.t = t};
    struct buf pre;
    buf_init(&pre);
    buf_append(&pre, head, head_len);
    double bps = 0;
    size_t skip = 0;
    char rate[16], ch[16], err[512];
    int rc = CLI_OK;
    struct hark_client *c = NULL;
    unsigned char *chunk = NULL;
    if (sniff_wav) {
        if (wav_to_raw(in, &pre, w, &bps, &skip, rate, ch, sizeof rate, input)) {
            rc = CLI_INPUT;
            goto out;
        }
    } else {
        struct hark_options *o = NULL;
        if (!hark_options_create(&o)) {
            for (int i = 0; i < w->n; i++)
                hark_options_set(o, w->kv[2 * i], w->kv[2 * i + 1], NULL, 0);
            bps = raw_bytes_per_sec(o);
            hark_options_destroy(o);
        }
    }
    if (in != stdin && bps > 0) {
        struct stat st;
        if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
            t->total_sec = (double)(st.st_size - (off_t)skip) / bps;
    }
    t->progress =
        t->total_sec > 5.0 && !t->json && (t->tty || (isatty(STDERR_FILENO) && !realtime));

    struct hark_client_config cfg;
    hark_client_config_init(&cfg);
    cfg.url = url;
    cfg.api_key = api_key;
    cfg.ca_file = ca_file;
    cfg.options = w->kv;
    cfg.when_full = HARK_CLIENT_WAIT; /* a file waits; nothing is dropped */
    cfg.connect_attempts = 3;
    cfg.give_up_ms = 30000;
    int crc = hark_client_create(&c, &cfg, on_client_event, &r, err, sizeof err);
    if (crc) {
        fprintf(stderr, "hark transcribe: %s\n", err);
        rc = crc == HARK_E_INVAL || crc == HARK_E_BAD_OPTION ? CLI_USAGE : CLI_RUNTIME;
        goto out;
    }
    size_t chunk_bytes = bps > 0 ? (size_t)(bps * chunk_ms / 1000.0) : 3200;
    if (chunk_bytes < 1)
        chunk_bytes = 1;
    chunk = hark_malloc(chunk_bytes);
    if (!chunk) {
        rc = CLI_RUNTIME;
        goto out;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned long long sent = pre.len - skip;
    int send_rc = hark_client_send_audio(c, pre.data + skip, pre.len - skip);
    while (!send_rc) {
        size_t n = fread(chunk, 1, chunk_bytes, in);
        if (n == 0)
            break;
        send_rc = hark_client_send_audio(c, chunk, n);
        sent += n;
        if (bps > 0) {
            pthread_mutex_lock(&print_mu);
            t->done_sec = (double)sent / bps;
            show_progress(t);
            pthread_mutex_unlock(&print_mu);
            if (realtime)
                sleep_until(&t0, (double)sent / bps);
        }
    }
    int read_error = ferror(in);
    if (read_error)
        fprintf(stderr, "hark transcribe: read error on %s: %s\n", input, strerror(errno));
    /* The client keeps at most a 5 s window of audio ahead of the server's
     * ack, so the end of a session is seconds after the input's; a server
     * that never ends it must not hang the command (or a script) forever. */
    crc = hark_client_close(c, CLOSE_TIMEOUT_MS);
    if (crc == HARK_E_TIMEOUT)
        fprintf(stderr,
                "hark transcribe: timeout: the server did not end the session within %d s of "
                "the end of %s\n",
                CLOSE_TIMEOUT_MS / 1000, input);
    pthread_mutex_lock(&print_mu);
    if (t->progress && !t->tty)
        fprintf(stderr, "\r\033[K");
    if (t->partial_shown)
        printf("\n");
    pthread_mutex_unlock(&print_mu);
    if (!crc && !t->errors && t->closed_audio <= 0.0) {
        fprintf(stderr,
                "hark transcribe: %s: no audio: the server decoded no samples from %llu bytes\n",
                input, sent);
        rc = CLI_INPUT;
    } else if (read_error) {
        rc = CLI_INPUT;
    } else if (crc || t->errors) {
        int code = t->first_error ? t->first_error : crc;
        rc = r.refused_early && (code == HARK_E_BAD_OPTION || code == HARK_E_UNSUPPORTED ||
                                 code == HARK_E_NO_ENGINE)
                 ? CLI_USAGE
             : code == HARK_E_BAD_AUDIO || code == HARK_E_UNSUPPORTED ? CLI_INPUT
             : code == HARK_E_ENGINE || code == HARK_E_MODEL          ? CLI_ENGINE
                                                                      : CLI_RUNTIME;
    }
out:
    hark_client_destroy(c);
    hark_free(chunk);
    buf_deinit(&pre);
    return rc;
}

int cli_transcribe(int argc, char **argv)
{
    struct tx t = {0};
    struct hark_options *opts = NULL;
    struct hark_engine *eng = NULL;
    struct hark_session *sess = NULL;
    struct cli_settings settings = {0};
    const char *engine_name = "pocketsphinx";
    const char *server = NULL, *api_key = getenv("HARK_API_KEY"), *ca_file = NULL;
    struct wire_opts wire = {0};
    int engine_given = 0;
    int realtime = 0, describe = 0, chunk_ms = 100, encoding_given = 0;
    enum hark_log_level log_level = HARK_LOG_WARN;
    char err[512];
    int rc = CLI_OK;
    FILE *in = NULL;
    unsigned char *chunk = NULL;

    buf_init(&t.line);
    if (hark_options_create(&opts)) {
        fprintf(stderr, "hark: out of memory\n");
        return CLI_RUNTIME;
    }

    int i = 1;
    const char *input = NULL;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-") || a[0] != '-') {
            if (input) {
                fprintf(stderr, "hark transcribe: only one input may be given ('%s', '%s')\n",
                        input, a);
                rc = CLI_USAGE;
                goto out;
            }
            input = a;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            goto out;
        }
        if (!strcmp(a, "--json")) {
            t.json = 1;
            continue;
        }
        if (!strcmp(a, "--realtime")) {
            realtime = 1;
            continue;
        }
        if (!strcmp(a, "--describe")) {
            describe = 1;
            continue;
        }
        /* --name value | --name=value */
        char name[64];
        const char *val = NULL;
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen - 2 >= sizeof name || a[1] != '-') {
            fprintf(stderr, "hark transcribe: unknown option '%s' (see --help)\n", a);
            rc = CLI_USAGE;
            goto out;
        }
        memcpy(name, a + 2, nlen - 2);
        name[nlen - 2] = 0;
        for (char *p = name; *p; p++)
            if (*p == '-')
                *p = '_';
        if (eq) {
            val = eq + 1;
        } else if (!strcmp(name, "no_interim")) {
            name[0] = 0;
            hark_options_set(opts, "interim_results", "false", NULL, 0);
            wire_set(&wire, "interim_results", "false");
            continue;
        } else {
            if (i + 1 >= argc) {
                fprintf(stderr, "hark transcribe: option '%s' needs a value\n", a);
                rc = CLI_USAGE;
                goto out;
            }
            val = argv[++i];
        }
        if (!strcmp(name, "engine")) {
            engine_name = val;
            engine_given = 1;
        } else if (!strcmp(name, "server")) {
            server = val;
        } else if (!strcmp(name, "api_key")) {
            api_key = val;
        } else if (!strcmp(name, "ca_file")) {
            ca_file = val;
        } else if (!strcmp(name, "engine_opt")) {
            if (cli_settings_add(&settings, val)) {
                fprintf(stderr, "hark transcribe: --engine-opt wants NAME=VALUE, got '%s'\n", val);
                rc = CLI_USAGE;
                goto out;
            }
        } else if (!strcmp(name, "chunk_ms")) {
            chunk_ms = atoi(val);
            if (chunk_ms < 1 || chunk_ms > 60000) {
                fprintf(stderr, "hark transcribe: --chunk-ms must be 1..60000\n");
                rc = CLI_USAGE;
                goto out;
            }
        } else if (!strcmp(name, "log_level")) {
            if (cli_parse_log_level(val, &log_level)) {
                fprintf(stderr,
                        "hark transcribe: --log-level must be error, warn, info or debug\n");
                rc = CLI_USAGE;
                goto out;
            }
        } else {
            if (hark_options_set(opts, name, val, err, sizeof err)) {
                fprintf(stderr, "hark transcribe: %s\n", err);
                rc = CLI_USAGE;
                goto out;
            }
            wire_set(&wire, name, val);
            if (!strcmp(name, "encoding"))
                encoding_given = 1;
        }
    }
    if (!input) {
        usage(stderr);
        rc = CLI_USAGE;
        goto out;
    }
    hark_log_set(cli_log_cb, NULL, log_level);

    /* Open and sniff the input before loading the engine (fail fast). */
    if (!strcmp(input, "-")) {
        in = stdin;
    } else {
        in = fopen(input, "rb");
        if (!in) {
            fprintf(stderr, "hark transcribe: cannot open '%s': %s\n", input, strerror(errno));
            rc = CLI_INPUT;
            goto out;
        }
    }
    unsigned char head[64];
    size_t head_len = fread(head, 1, sizeof head, in);
    if (head_len == 0) {
        fprintf(stderr, "hark transcribe: %s: %s\n", input,
                ferror(in) ? strerror(errno) : "empty input, no audio");
        rc = CLI_INPUT;
        goto out;
    }
    int is_wav = head_len >= 12 && !memcmp(head, "RIFF", 4) && !memcmp(head + 8, "WAVE", 4);
    /* Ogg ("OggS") and WebM (EBML magic) carry Opus; the session reads them. */
    int is_opus =
        head_len >= 4 && (!memcmp(head, "OggS", 4) || !memcmp(head, "\x1a\x45\xdf\xa3", 4));
    if (!encoding_given) {
        if (!is_wav && !is_opus) {
            fprintf(stderr,
                    "hark transcribe: %s: not a WAV, Ogg Opus or WebM/Opus file. For raw audio "
                    "give --encoding pcm_s16le|pcm_f32le|mulaw|alaw and --sample-rate (and "
                    "--channels)\n",
                    input);
            rc = CLI_INPUT;
            goto out;
        }
        hark_options_set(opts, "encoding", is_wav ? "wav" : "auto", NULL, 0);
        wire_set(&wire, "encoding", is_wav ? "wav" : "auto");
    }

    t.tty = isatty(STDOUT_FILENO) && !t.json;
    if (server) {
        if (settings.n) {
            fprintf(stderr, "hark transcribe: --engine-opt configures a local engine; the "
                            "server's engine is set where it runs\n");
            rc = CLI_USAGE;
            goto out;
        }
        if (engine_given)
            wire_set(&wire, "engine", engine_name);
        rc = run_remote(&t, server, api_key, ca_file, &wire, in, head, head_len,
                        is_wav && !encoding_given, realtime, chunk_ms, input);
        goto out;
    }
    double bps = is_wav ? wav_bytes_per_sec(head, head_len) : raw_bytes_per_sec(opts);
    if (in != stdin && bps > 0) {
        struct stat st;
        if (fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode))
            t.total_sec = (double)st.st_size / bps;
    }
    t.progress = t.total_sec > 5.0 && !t.json && (t.tty || (isatty(STDERR_FILENO) && !realtime));

    if (settings.n == 0)
        settings.kv[0] = NULL;
    rc = hark_engine_load(&eng, engine_name, settings.kv, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hark transcribe: engine %s: %s\n", engine_name, err);
        rc = rc == HARK_E_BAD_OPTION || rc == HARK_E_NO_ENGINE ? CLI_USAGE : CLI_ENGINE;
        goto out;
    }
    rc = hark_session_create(&sess, eng, opts, NULL, on_event, &t, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hark transcribe: %s\n", err);
        rc = rc == HARK_E_BAD_OPTION || rc == HARK_E_UNSUPPORTED ? CLI_USAGE : CLI_ENGINE;
        goto out;
    }

    /* Chunk size in bytes: chunk_ms of audio when the rate is known. */
    size_t chunk_bytes = bps > 0 ? (size_t)(bps * chunk_ms / 1000.0) : 3200;
    if (chunk_bytes < 1)
        chunk_bytes = 1;
    chunk = hark_malloc(chunk_bytes > sizeof head ? chunk_bytes : sizeof head);
    if (!chunk) {
        rc = CLI_RUNTIME;
        goto out;
    }
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int feed_rc = 0;
    unsigned long long bytes_read = head_len;
    /* The sniffed head goes first, then the rest in chunks. */
    feed_rc = hark_session_feed(sess, head, head_len);
    while (!feed_rc) {
        size_t n = fread(chunk, 1, chunk_bytes, in);
        if (n == 0)
            break;
        bytes_read += n;
        feed_rc = hark_session_feed(sess, chunk, n);
        t.done_sec = hark_session_audio_seconds(sess);
        show_progress(&t);
        if (realtime)
            sleep_until(&t0, t.done_sec);
    }
    if (ferror(in)) {
        fprintf(stderr, "hark transcribe: read error on %s: %s\n", input, strerror(errno));
        feed_rc = HARK_E_IO;
    }
    if (t.progress && !t.tty)
        fprintf(stderr, "\r\033[K");
    if (describe)
        fprintf(stderr, "hark: pipeline %s\n", hark_session_describe(sess));
    /* No sample decoded although bytes arrived: the input ended inside a WAV
     * header, or held less than one sample frame. Not a silent success. */
    int no_audio = !feed_rc && !t.errors && hark_session_audio_seconds(sess) <= 0.0;
    /* Close even after an audio error: words already recognised are delivered. */
    hark_session_close(sess);
    if (t.partial_shown)
        printf("\n");
    if (no_audio && !t.errors) { /* else the session already said why */
        char enc[32];
        hark_options_get(opts, "encoding", enc, sizeof enc);
        if (!strcmp(enc, "wav"))
            fprintf(stderr,
                    "hark transcribe: %s: no audio: the input ended after %llu bytes, inside the "
                    "WAV header or right after it (a WAV file needs RIFF, fmt and data chunk "
                    "headers, at least 44 bytes, followed by samples)\n",
                    input, bytes_read);
        else
            fprintf(stderr,
                    "hark transcribe: %s: no audio: %llu bytes is less than one sample frame of "
                    "%s\n",
                    input, bytes_read, enc);
        rc = CLI_INPUT;
    }
    if (feed_rc || t.errors) {
        int code = feed_rc ? feed_rc : t.first_error;
        rc = code == HARK_E_BAD_AUDIO || code == HARK_E_UNSUPPORTED || code == HARK_E_IO ? CLI_INPUT
             : code == HARK_E_ENGINE || code == HARK_E_MODEL ? CLI_ENGINE
                                                             : CLI_RUNTIME;
    }
out:
    if (in && in != stdin)
        fclose(in);
    hark_free(chunk);
    hark_session_destroy(sess);
    hark_engine_destroy(eng);
    hark_options_destroy(opts);
    cli_settings_free(&settings);
    buf_deinit(&t.line);
    return rc;
}
