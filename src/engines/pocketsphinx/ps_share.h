/*
 * What PocketSphinx decoders of one engine model can share: the language
 * model, read once, and the dictionary, reduced to the words that language
 * model knows and read once.
 *
 * Where a 5prealpha decoder's memory goes (heaptrack, en-us model, one
 * ps_init with -lm and the 134,723-entry cmudict): 32 MB language model
 * (24.8 MB trie, the rest its word table), 37 MB n-gram search (17 MB of it
 * the lexicon tree of the LM's 72,547 words), 16 MB dictionary, 2.4 MB
 * acoustic model (mdef and sendump are memory-mapped already). The language
 * model and the dictionary are read-only while decoding (the model only
 * after this module makes it so, below); the search is written by every
 * decoder.
 *
 * Language model: ps_set_lm lets a decoder use an ngram_model_t it did not
 * read. The search wraps it in its own ngram_model_set (word map, history
 * buffer), so the shared model is read through ngram_wid, the word table and
 * scoring, with two exceptions in sphinxbase's source (lm_trie.c,
 * ngram_model_trie.c, ngram_model_set.c of the 5prealpha era):
 *   - lm_trie_score keeps a one-entry cache in the lm_trie_t (the last
 *     history and its backoff weights), written by update_backoff and read
 *     back in the same call. Two threads scoring through one trie would
 *     read each other's backoffs: wrong scores, different words. This module
 *     therefore defines lm_trie_score itself (sphinxbase exports it and its
 *     one caller, ngram_model_trie_raw_score, calls it through the PLT, so
 *     the process-wide definition wins): for a shared trie, each thread
 *     scores through its own copy of the lm_trie_t struct (about 100 bytes:
 *     pointers to the shared read-only arrays plus a private cache), copied
 *     with malloc_usable_size so no field layout is assumed. Every other trie
 *     goes straight to sphinxbase's function. If the definition is not the
 *     one called (a static sphinxbase, another linker), ps_share_open notices
 *     (a probe score does not pass through it) and sharing is off.
 *   - ngram_model_add_word (ps_add_word goes through the search's set to
 *     every model in it) grows the trie's unigram array: a decoder that gets
 *     session vocabulary first gets a private language model (see
 *     pocketsphinx.c), so no session's words reach the shared one.
 * The reference count (ngram_model_retain/free, not atomic) changes only
 * when a search is created or freed, which pocketsphinx.c does under its
 * global sphinxbase lock. Weights (-lw, -wip) are applied once, at read.
 *
 * Dictionary: ps_init reads -dict into a private hash of every entry, and
 * the search sizes its per-word tables by the dictionary, but only words the
 * language model knows ever enter the search (ngram_fwdtree and
 * ngram_fwdflat skip the others). The reduced file, written once into an
 * anonymous memory file (memfd) and named /proc/self/fd/N, holds the entries
 * whose base word is a unigram of the model (79,420 of 134,723 for en-us),
 * and decodes the same words.
 *
 * Shared dictionary: the first decoder reads the reduced file; its dict_t and
 * dict2pid_t (the triphone map built from it, ~14 MB RSS together) become
 * the shared pair. Later decoders are created from a one-entry file (no
 * search yet: -lm is given later through ps_set_lm), and ps_share_dict_attach
 * swaps their pair for the shared one before the search is built on it.
 * Decoding only reads both (dict_wordid, dict2pid tables); ps_add_word writes
 * them, so a decoder first reads its own (ps_load_dict, public). 5prealpha
 * has no API to set a decoder's dictionary, so the swap writes the private
 * struct ps_decoder_s, whose head (config, refcount, acmod, dict, d2p,
 * lmath) has not changed in pocketsphinx from 2014 to the 2016 snapshot
 * Debian ships. Every decoder is checked before the swap: config and lmath
 * where the public getters say, refcount 1, the dictionary knows the
 * one-entry file's word as id 0, the dict2pid_t points back at it and
 * dict_retain/dict2pid_retain move the counts where expected. Any mismatch
 * turns sharing off for good (logged) and that decoder reads the reduced file
 * through ps_load_dict. Reference counts of the shared pair are pinned high
 * (lattices retain and free the dictionary per utterance without atomics);
 * ps_share_close frees it exactly.
 *
 * Thread safety: ps_share_open and ps_share_close are called with no
 * decoder of that share alive; lm_trie_score is thread-safe as described.
 */
#ifndef HARK_ENGINES_PS_SHARE_H
#define HARK_ENGINES_PS_SHARE_H

#include <stddef.h>

#include <pocketsphinx.h>

struct ps_share;

/*
 * Reads the language model at lm_path with the decoder configuration cfg
 * (for -logbase, -lw, -wip) and writes the reduced copy of dict_path.
 * *out is NULL, with 0 returned, when sharing cannot work here (the score
 * interposition is not in effect, no memfd): the caller then gives each
 * decoder its own model, as without sharing; the reason is logged. Returns
 * HARK_E_MODEL when the language model cannot be read, HARK_E_NOMEM.
 */
int ps_share_open(struct ps_share **out, cmd_ln_t *cfg, const char *lm_path, const char *dict_path,
                  char *errbuf, size_t errbuf_size);
void ps_share_close(struct ps_share *s);

/* The shared language model (borrowed; ps_set_lm retains it). */
ngram_model_t *ps_share_lm(const struct ps_share *s);

/* Path of the reduced dictionary, valid until ps_share_close; NULL when it
 * could not be written (decoders then read the full file). */
const char *ps_share_dict(const struct ps_share *s);

/* The dictionary file a new decoder is created from: the one-entry file once
 * the shared dictionary exists (ps_share_dict_attach then swaps it in), else
 * ps_share_dict's (NULL: the caller's full file). */
const char *ps_share_decoder_dict(const struct ps_share *s);

/* Right after ps_init of a decoder created from ps_share_decoder_dict, before
 * its search exists (no -lm), under the lock that serialises decoder
 * creation and freeing: the first such decoder's dictionary becomes the
 * shared one, later ones drop their one-entry dictionary for it. 1: ps
 * decodes with the shared dictionary (call ps_load_dict before ps_add_word);
 * 0: with its own (sharing is off, logged once; a decoder made from the
 * one-entry file then read the reduced one); -1: that read failed. */
int ps_share_dict_attach(struct ps_share *s, ps_decoder_t *ps);

/* Entries kept in / read from the dictionary, for the log. */
void ps_share_dict_counts(const struct ps_share *s, size_t *kept, size_t *total);

#endif
