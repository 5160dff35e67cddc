/* Session options: the typed struct behind the public struct hark_options.
 * One table in options.c defines every option (name, type, range, default,
 * help); setters, getters, the CLI flags and the docs all read it. */
#ifndef HARK_SESSION_OPTIONS_H
#define HARK_SESSION_OPTIONS_H

#include "hark/hark.h"

enum opt_encoding {
    ENC_PCM_S16LE = 0,
    ENC_PCM_F32LE,
    ENC_MULAW,
    ENC_ALAW,
    ENC_WAV,
    ENC_AUTO, /* container read from the stream: WAV, Ogg Opus, WebM/Opus */
};

struct hark_options {
    int encoding; /* enum opt_encoding */
    int sample_rate;
    int channels;
    char language[36];
    char engine[36];
    char model[128];
    int interim_results;
    int words;
    int endpointing_ms;   /* 0 = endpointing off */
    int utterance_end_ms; /* 0 = off */
    int vad_events;
    int vad_mode;
    char vocabulary[4096]; /* comma-separated words or phrases */
    char speaker_id[128];
    int max_utterance_ms;
    int partial_interval_ms;
    int vad;                 /* 0: every frame counts as speech (no endpointing) */
    int interrupt_detection; /* speech while responding -> interrupt + listening */
};

const char *options_encoding_name(int enc);
/* Bytes per second of a raw encoding (PCM s16le/f32le, mu-law, A-law) at the
 * options' rate and channels; 0 for a container (WAV, auto), whose format
 * only its header gives. */
double options_raw_bytes_per_sec(const struct hark_options *o);

/* Splits the vocabulary into a NULL-terminated array of trimmed, non-empty
 * phrases (one allocation; free with hark_free). *out = NULL when empty. */
int options_vocabulary_list(const struct hark_options *o, char ***out);

#endif
