/*
 * The pronunciation dictionary, held by hark next to the decoders: which
 * words the base dictionary knows (so a session vocabulary is reduced to the
 * words that really must be added), which words are fillers (dropped from
 * results), and pronunciations for words it does not know.
 *
 * PocketSphinx 5prealpha has no letter-to-sound rules, so ps_pron_derive
 * spells an unknown word as the cheapest sequence of pieces, each piece
 * either
 *   - a proper substring that is itself a dictionary word of 2+ letters
 *     containing a vowel letter (so "zorbliq" can borrow "zor" + ...), or
 *   - one grapheme from a small English rule table ("tch" CH, "ee" IY, "ph"
 *     F, a final silent e, vowel-consonant-e as a long vowel, single letters).
 * A dictionary piece costs less per letter than rules, so long known parts
 * win and rules fill the gaps. Words with characters other than letters,
 * apostrophes and inner hyphens get no pronunciation.
 *
 * Read-only after ps_pron_load: all lookups are thread-safe.
 */
#ifndef HARK_ENGINES_PS_PRON_H
#define HARK_ENGINES_PS_PRON_H

#include <stddef.h>

struct ps_model_am;
struct ps_pron;

/*
 * Loads `dict_path` ("word PH ON ES" lines, alternates as "word(2)") and the
 * filler dictionary `filler_path` (may be NULL). Every phone must be a CI
 * phone of `am`: the first lines decide whether the file is a dictionary at
 * all (HARK_E_MODEL naming the path and line otherwise); later bad lines are
 * skipped with a warning, as ps_init skips them.
 */
int ps_pron_load(struct ps_pron **out, const char *dict_path, const char *filler_path,
                 const struct ps_model_am *am, char *errbuf, size_t errbuf_size);
void ps_pron_free(struct ps_pron *p);

/* Number of distinct words (alternates not counted). */
size_t ps_pron_size(const struct ps_pron *p);

/* First pronunciation of `word` (exact, case-sensitive), or NULL. Borrowed. */
const char *ps_pron_lookup(const struct ps_pron *p, const char *word);

/* 1 for words that are not speech: the filler dictionary's words and
 * anything shaped like one (<s>, </s>, <sil>, [NOISE], ++BREATH++). */
int ps_pron_is_filler(const struct ps_pron *p, const char *word);

/*
 * Writes a space-separated phone string for `word` (lower case letters,
 * apostrophes, inner hyphens) into out. Never uses the entry of `word`
 * itself. Returns 0, or -1 when no pronunciation can be made or out is too
 * small.
 */
int ps_pron_derive(const struct ps_pron *p, const char *word, char *out, size_t size);

#endif
