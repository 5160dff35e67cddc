/*
 * Static checks of PocketSphinx model files, run before ps_init.
 *
 * sphinxbase calls exit() (E_FATAL) or crashes on many malformed inputs: a
 * binary file without its "s3" header, a truncated mdef, a bad feature type
 * in feat.params, an ARPA LM whose n-gram counts do not match its sections,
 * a missing mixture-weights file. A server must never die of a bad path in
 * its configuration, so these functions parse the headers and sizes of every
 * file ps_init will read and reject anything sphinxbase would not survive,
 * with HARK_E_MODEL and a message naming the file and what was expected.
 *
 * They read files only; no sphinxbase state is touched, so they are safe to
 * call from any thread.
 */
#ifndef HARK_ENGINES_PS_MODEL_H
#define HARK_ENGINES_PS_MODEL_H

#include <stddef.h>

/* What the acoustic model directory declares, for later checks (dictionary
 * phones, pronunciations of added words). Owned by the caller; release with
 * ps_model_am_clear. */
struct ps_model_am {
    int n_ciphone;
    char **ciphones; /* sorted by strcmp, as the binary mdef stores them */
    char *noisedict; /* path of <hmm>/noisedict, or NULL when there is none */
};

/* Validates the acoustic model directory: mdef, means, variances,
 * transition_matrices, feat.params and sendump or mixture_weights. On success
 * fills *am. Returns 0 or HARK_E_MODEL / HARK_E_NOMEM. */
int ps_model_check_hmm(const char *dir, struct ps_model_am *am, char *errbuf, size_t errbuf_size);
void ps_model_am_clear(struct ps_model_am *am);

/* 1 when `phone` is a context-independent phone of the model. */
int ps_model_am_has_phone(const struct ps_model_am *am, const char *phone);

/* Validates a language model: the trie binary format ("Trie Language Model"
 * header, complete word table at the end, </s> present) or an ARPA text file
 * (sections consistent with the \data\ counts, every n-gram word a unigram).
 * DMP and compressed files are rejected. Returns 0 or HARK_E_MODEL. */
int ps_model_check_lm(const char *path, char *errbuf, size_t errbuf_size);

/* A readable regular file (what = "dictionary", ... for the message). */
int ps_model_check_file(const char *path, const char *what, char *errbuf, size_t errbuf_size);

#endif
