#include "session/options.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"

enum opt_type { OPT_INT, OPT_BOOL, OPT_STR, OPT_ENUM, OPT_MS_OR_FALSE };

static const char *const encodings[] = {"pcm_s16le", "pcm_f32le", "mulaw", "alaw",
                                        "wav",       "auto",      NULL};

struct opt_row {
    const char *name;
    enum opt_type type;
    size_t offset;
    size_t size; /* OPT_STR: capacity */
    long min, max;
    const char *def;
    const char *const *choices; /* OPT_ENUM */
    const char *help;
};

#define OFF(f) offsetof(struct hark_options, f)
#define SZ(f) sizeof(((struct hark_options *)0)->f)

/* The one table. Ranges here are what the pipeline supports; front ends
 * pass user text straight in and relay the error message. */
static const struct opt_row rows[] = {
    {"encoding", OPT_ENUM, OFF(encoding), 0, 0, 0, "pcm_s16le", encodings,
     "audio encoding: pcm_s16le, pcm_f32le, mulaw, alaw, wav (header read from the stream), or "
     "auto (WAV, Ogg Opus or WebM/Opus, told apart by the stream's first bytes)"},
    {"sample_rate", OPT_INT, OFF(sample_rate), 0, 8000, 48000, "16000", NULL,
     "sample rate of raw audio in Hz (8000..48000); WAV headers override it"},
    {"channels", OPT_INT, OFF(channels), 0, 1, 8, "1", NULL,
     "interleaved channels of raw audio (1..8), downmixed to mono"},
    {"language", OPT_STR, OFF(language), SZ(language), 0, 0, "en-US", NULL,
     "BCP-47 language tag; the engine must support it"},
    {"engine", OPT_STR, OFF(engine), SZ(engine), 0, 0, "", NULL,
     "engine name (default: the engine the session is created on)"},
    {"model", OPT_STR, OFF(model), SZ(model), 0, 0, "", NULL,
     "engine-specific model name; the engine must have it (pocketsphinx: default; empty = the "
     "engine's default)"},
    {"interim_results", OPT_BOOL, OFF(interim_results), 0, 0, 1, "true", NULL,
     "send partial (revisable) transcripts"},
    {"words", OPT_BOOL, OFF(words), 0, 0, 1, "true", NULL,
     "include words with times and confidence in transcripts"},
    {"endpointing_ms", OPT_MS_OR_FALSE, OFF(endpointing_ms), 0, 10, 10000, "500", NULL,
     "silence in ms that ends a turn (final with speech_final), or false to disable"},
    {"utterance_end_ms", OPT_INT, OFF(utterance_end_ms), 0, 0, 10000, "0", NULL,
     "send utterance_end after this many ms without new words (0 = off; else >= 500)"},
    {"vad_events", OPT_BOOL, OFF(vad_events), 0, 0, 1, "true", NULL, "send speech_started events"},
    {"vad_mode", OPT_INT, OFF(vad_mode), 0, 0, 3, "2", NULL,
     "voice activity detection aggressiveness 0..3 (3 = fewest frames called speech)"},
    {"vocabulary", OPT_STR, OFF(vocabulary), SZ(vocabulary), 0, 0, "", NULL,
     "comma-separated words or phrases to add to the engine's vocabulary"},
    {"speaker_id", OPT_STR, OFF(speaker_id), SZ(speaker_id), 0, 0, "", NULL,
     "speaker identifier carried on every event"},
    {"max_utterance_ms", OPT_INT, OFF(max_utterance_ms), 0, 1000, 120000, "30000", NULL,
     "longest utterance in ms before a final is forced (reason max_length)"},
    {"partial_interval_ms", OPT_INT, OFF(partial_interval_ms), 0, 50, 5000, "200", NULL,
     "minimum audio time in ms between two partial transcripts"},
    {"vad", OPT_BOOL, OFF(vad), 0, 0, 1, "true", NULL,
     "voice activity detection; false: all audio is speech, so utterances end only by finalize, "
     "max_utterance_ms or close"},
    {"interrupt_detection", OPT_BOOL, OFF(interrupt_detection), 0, 0, 1, "true", NULL,
     "speech while the state is responding sends an interrupt and switches to listening"},
};

#define N_ROWS (sizeof rows / sizeof rows[0])

static const struct opt_row *find_row(const char *name)
{
    for (size_t i = 0; i < N_ROWS; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on")) {
        *out = 1;
        return 0;
    }
    if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int parse_long(const char *v, long *out)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return -1;
    *out = n;
    return 0;
}

static int set_row(struct hark_options *o, const struct opt_row *r, const char *v, char *errbuf,
                   size_t n)
{
    char *field = (char *)o + r->offset;
    long num;
    int b;
    switch (r->type) {
    case OPT_BOOL:
        if (parse_bool(v, &b))
            return err_set(errbuf, n, HARK_E_BAD_OPTION,
                           "%s: '%s' is not a boolean (true or false)", r->name, v);
        *(int *)field = b;
        return 0;
    case OPT_MS_OR_FALSE:
        if (parse_bool(v, &b) == 0 && b == 0) {
            *(int *)field = 0;
            return 0;
        }
        /* fall through */
    case OPT_INT:
        if (parse_long(v, &num))
            return err_set(errbuf, n, HARK_E_BAD_OPTION, "%s: '%s' is not an integer (%ld..%ld%s)",
                           r->name, v, r->min, r->max,
                           r->type == OPT_MS_OR_FALSE ? " or false" : "");
        if (r->offset == OFF(utterance_end_ms) && num > 0 && num < 500)
            return err_set(errbuf, n, HARK_E_BAD_OPTION,
                           "utterance_end_ms: %ld is out of range (0 to disable, or 500..%ld)", num,
                           r->max);
        if (num < r->min || num > r->max)
            return err_set(errbuf, n, HARK_E_BAD_OPTION, "%s: %ld is out of range (%ld..%ld%s)",
                           r->name, num, r->min, r->max,
                           r->type == OPT_MS_OR_FALSE ? " or false" : "");
        *(int *)field = (int)num;
        return 0;
    case OPT_STR:
        if (strlen(v) >= r->size)
            return err_set(errbuf, n, HARK_E_BAD_OPTION, "%s: value too long (at most %zu bytes)",
                           r->name, r->size - 1);
        memcpy(field, v, strlen(v) + 1);
        return 0;
    case OPT_ENUM:
        for (int i = 0; r->choices[i]; i++) {
            if (!strcasecmp(r->choices[i], v)) {
                *(int *)field = i;
                return 0;
            }
        }
        {
            char list[256] = "";
            for (int i = 0; r->choices[i]; i++) {
                if (i)
                    strncat(list, ", ", sizeof list - strlen(list) - 1);
                strncat(list, r->choices[i], sizeof list - strlen(list) - 1);
            }
            return err_set(errbuf, n, HARK_E_BAD_OPTION, "%s: '%s' is not supported (accepted: %s)",
                           r->name, v, list);
        }
    }
    return HARK_E_INTERNAL;
}

int hark_options_create(struct hark_options **out)
{
    struct hark_options *o = hark_calloc(1, sizeof *o);
    if (!o)
        return HARK_E_NOMEM;
    for (size_t i = 0; i < N_ROWS; i++) {
        int rc = set_row(o, &rows[i], rows[i].def, NULL, 0);
        if (rc) {
            hark_free(o);
            return HARK_E_INTERNAL;
        }
    }
    *out = o;
    return 0;
}

void hark_options_destroy(struct hark_options *opts)
{
    hark_free(opts);
}

int hark_options_copy(struct hark_options **out, const struct hark_options *src)
{
    struct hark_options *o = hark_malloc(sizeof *o);
    if (!o)
        return HARK_E_NOMEM;
    memcpy(o, src, sizeof *o);
    *out = o;
    return 0;
}

int hark_options_set(struct hark_options *opts, const char *name, const char *value, char *errbuf,
                     size_t errbuf_size)
{
    if (!opts || !name || !value)
        return err_set(errbuf, errbuf_size, HARK_E_INVAL, "option name and value are required");
    const struct opt_row *r = find_row(name);
    if (!r) {
        char list[512] = "";
        for (size_t i = 0; i < N_ROWS; i++) {
            if (i)
                strncat(list, ", ", sizeof list - strlen(list) - 1);
            strncat(list, rows[i].name, sizeof list - strlen(list) - 1);
        }
        return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION, "unknown option '%s' (known: %s)",
                       name, list);
    }
    return set_row(opts, r, value, errbuf, errbuf_size);
}

int hark_options_get(const struct hark_options *opts, const char *name, char *buf, size_t size)
{
    const struct opt_row *r = find_row(name);
    if (!r)
        return HARK_E_BAD_OPTION;
    const char *field = (const char *)opts + r->offset;
    int v = *(const int *)field;
    switch (r->type) {
    case OPT_BOOL:
        snprintf(buf, size, "%s", v ? "true" : "false");
        break;
    case OPT_MS_OR_FALSE:
        if (v == 0)
            snprintf(buf, size, "false");
        else
            snprintf(buf, size, "%d", v);
        break;
    case OPT_INT:
        snprintf(buf, size, "%d", v);
        break;
    case OPT_STR:
        snprintf(buf, size, "%s", field);
        break;
    case OPT_ENUM:
        snprintf(buf, size, "%s", r->choices[v]);
        break;
    }
    return 0;
}

const char *hark_options_name(int index)
{
    return index >= 0 && (size_t)index < N_ROWS ? rows[index].name : NULL;
}

const char *hark_options_help(int index)
{
    return index >= 0 && (size_t)index < N_ROWS ? rows[index].help : NULL;
}

const char *options_encoding_name(int enc)
{
    return enc >= 0 && enc < (int)(sizeof encodings / sizeof encodings[0]) - 1 ? encodings[enc]
                                                                               : "?";
}

double options_raw_bytes_per_sec(const struct hark_options *o)
{
    int sample;
    switch (o->encoding) {
    case ENC_PCM_S16LE:
        sample = 2;
        break;
    case ENC_PCM_F32LE:
        sample = 4;
        break;
    case ENC_MULAW:
    case ENC_ALAW:
        sample = 1;
        break;
    default:
        return 0;
    }
    return (double)o->sample_rate * o->channels * sample;
}

int options_vocabulary_list(const struct hark_options *o, char ***out)
{
    *out = NULL;
    const char *v = o->vocabulary;
    size_t count = 0, len = strlen(v);
    if (!len)
        return 0;
    for (const char *p = v; *p; p++)
        count += *p == ',';
    count += 1;
    /* One block: pointer array followed by a copy of the text. */
    char **list = hark_malloc((count + 1) * sizeof(char *) + len + 1);
    if (!list)
        return HARK_E_NOMEM;
    char *text = (char *)(list + count + 1);
    memcpy(text, v, len + 1);
    size_t n = 0;
    for (char *tok = text; tok;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = 0;
        while (isspace((unsigned char)*tok))
            tok++;
        char *e = tok + strlen(tok);
        while (e > tok && isspace((unsigned char)e[-1]))
            *--e = 0;
        if (*tok)
            list[n++] = tok;
        tok = comma ? comma + 1 : NULL;
    }
    list[n] = NULL;
    if (n == 0) {
        hark_free(list);
        return 0;
    }
    *out = list;
    return 0;
}
