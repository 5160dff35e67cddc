/* Pronunciation dictionary and derived pronunciations (see ps_pron.h). */
#include "engines/pocketsphinx/ps_pron.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/pocketsphinx/ps_model.h"

/* Lines that must parse for a file to count as a dictionary at all. */
#define STRICT_LINES 10
#define MAX_DERIVE_LETTERS 64
#define MAX_PIECE_LETTERS 24

/* Costs of the cheapest-spelling search, in arbitrary units. A 3+ letter
 * dictionary piece beats two rule graphemes; two-letter pieces are often
 * spelled-out abbreviations or function words and cost more. Checked by
 * deriving every 37th cmudict word of 4+ letters (3154 words) without its
 * own entry and comparing with the real one: phone error rate 18.2%, 36%
 * exactly right; rules alone: 25.8% and 24%. Other cost settings moved the
 * error rate by less than 1 point. */
#define COST_PIECE 10
#define COST_PIECE_SHORT 16
#define COST_RULE 7

struct entry {
    const char *word;
    const char *phones;
};

struct table {
    struct entry *slot;
    size_t cap, n;
};

struct ps_pron {
    char *text; /* dictionary file, split in place; entries point into it */
    char *filler_text;
    struct table words;
    struct table fillers;
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int table_init(struct table *t, size_t expected)
{
    t->cap = 16;
    while (t->cap < expected * 2)
        t->cap *= 2;
    t->n = 0;
    t->slot = hark_calloc(t->cap, sizeof *t->slot);
    return t->slot ? 0 : HARK_E_NOMEM;
}

/* Keeps the first pronunciation of a word. The table is sized so it never
 * fills (at most one entry per line). */
static void table_put(struct table *t, const char *word, const char *phones)
{
    size_t i = hash_str(word) & (t->cap - 1);
    while (t->slot[i].word) {
        if (strcmp(t->slot[i].word, word) == 0)
            return;
        i = (i + 1) & (t->cap - 1);
    }
    t->slot[i].word = word;
    t->slot[i].phones = phones;
    t->n++;
}

static const char *table_get(const struct table *t, const char *word)
{
    if (!t->slot)
        return NULL;
    for (size_t i = hash_str(word) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
        if (!t->slot[i].word)
            return NULL;
        if (strcmp(t->slot[i].word, word) == 0)
            return t->slot[i].phones;
    }
}

static int read_text(const char *path, char **out, char *errbuf, size_t errbuf_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    int rc = 0;
    if (!f)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL, "dictionary '%s': %s", path,
                       strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL, "dictionary '%s': cannot seek", path);
        goto done;
    }
    long size = ftell(f);
    if (size < 0 || size > (1L << 30) || fseek(f, 0, SEEK_SET) != 0) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL, "dictionary '%s': bad size", path);
        goto done;
    }
    buf = hark_malloc((size_t)size + 1);
    if (!buf) {
        rc = err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory reading '%s'", path);
        goto done;
    }
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = err_set(errbuf, errbuf_size, HARK_E_MODEL, "dictionary '%s': read error", path);
        goto done;
    }
    buf[size] = '\0';
    *out = buf;
    buf = NULL;
done:
    hark_free(buf);
    fclose(f);
    return rc;
}

/*
 * Parses one line in place: the word is NUL-terminated where it stands and
 * the phones are compacted to single spaces right after it. Returns 1 for an
 * entry, 0 for a blank line, -1 for a malformed one.
 */
static int parse_line(char *line, const struct ps_model_am *am, const char **word,
                      const char **phones)
{
    char *p = line;
    for (char *c = line; *c; c++)
        if (*c == '\r' || *c == '\t')
            *c = ' ';
        else if (!isprint((unsigned char)*c))
            return -1;
    while (*p == ' ')
        p++;
    if (!*p)
        return 0;
    char *w = p;
    while (*p && *p != ' ')
        p++;
    if (!*p)
        return -1; /* a word without phones */
    *p++ = '\0';
    /* "word(2)": an alternate pronunciation of "word". */
    char *paren = strchr(w, '(');
    if (paren && paren > w) {
        char *q = paren + 1;
        while (isdigit((unsigned char)*q))
            q++;
        if (q > paren + 1 && q[0] == ')' && q[1] == '\0')
            *paren = '\0';
    }
    char *dst = p;
    const char *out = dst;
    int n_phones = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        char *tok = p;
        while (*p && *p != ' ')
            p++;
        char saved = *p;
        *p = '\0';
        if (!ps_model_am_has_phone(am, tok))
            return -1;
        if (n_phones++)
            *dst++ = ' ';
        size_t len = strlen(tok);
        memmove(dst, tok, len);
        dst += len;
        *p = saved;
        if (saved)
            p++;
    }
    *dst = '\0';
    if (!n_phones)
        return -1;
    *word = w;
    *phones = out;
    return 1;
}

static int load_table(struct table *t, char *text, const char *path, const char *what,
                      const struct ps_model_am *am, char *errbuf, size_t errbuf_size)
{
    size_t lines = 1;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    if (table_init(t, lines))
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    long lineno = 0, bad = 0, first_bad = 0, seen = 0;
    char *line = text;
    while (line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lineno++;
        char shown[48];
        snprintf(shown, sizeof shown, "%s", line);
        const char *word = NULL, *phones = NULL;
        int r = parse_line(line, am, &word, &phones);
        if (r != 0 && seen++ < STRICT_LINES && r < 0) {
            for (char *c = shown; *c; c++)
                if (!isprint((unsigned char)*c))
                    *c = '?';
            return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                           "%s '%s' line %ld is not \"word PHONES\" with phones of the acoustic "
                           "model (e.g. \"hello HH AH L OW\"): '%s'",
                           what, path, lineno, shown);
        }
        if (r > 0)
            table_put(t, word, phones);
        else if (r < 0 && !bad++)
            first_bad = lineno;
        line = nl ? nl + 1 : NULL;
    }
    if (t->n == 0)
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "%s '%s' has no entries (expected \"word PHONES\" lines)", what, path);
    if (bad)
        LOG_WARN(NULL, "pocketsphinx: %s '%s': %ld malformed lines skipped (first: line %ld)", what,
                 path, bad, first_bad);
    return 0;
}

void ps_pron_free(struct ps_pron *p)
{
    if (!p)
        return;
    hark_free(p->words.slot);
    hark_free(p->fillers.slot);
    hark_free(p->text);
    hark_free(p->filler_text);
    hark_free(p);
}

int ps_pron_load(struct ps_pron **out, const char *dict_path, const char *filler_path,
                 const struct ps_model_am *am, char *errbuf, size_t errbuf_size)
{
    *out = NULL;
    struct ps_pron *p = hark_calloc(1, sizeof *p);
    if (!p)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    int rc = ps_model_check_file(dict_path, "dictionary", errbuf, errbuf_size);
    if (!rc)
        rc = read_text(dict_path, &p->text, errbuf, errbuf_size);
    if (!rc)
        rc = load_table(&p->words, p->text, dict_path, "dictionary", am, errbuf, errbuf_size);
    if (!rc && filler_path) {
        rc = read_text(filler_path, &p->filler_text, errbuf, errbuf_size);
        if (!rc)
            rc = load_table(&p->fillers, p->filler_text, filler_path, "filler dictionary", am,
                            errbuf, errbuf_size);
    }
    if (rc) {
        ps_pron_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

size_t ps_pron_size(const struct ps_pron *p)
{
    return p->words.n;
}

const char *ps_pron_lookup(const struct ps_pron *p, const char *word)
{
    return table_get(&p->words, word);
}

static int wrapped(const char *w, size_t n, const char *open, const char *close)
{
    size_t lo = strlen(open), lc = strlen(close);
    return n > lo + lc && strncmp(w, open, lo) == 0 && strcmp(w + n - lc, close) == 0;
}

int ps_pron_is_filler(const struct ps_pron *p, const char *word)
{
    size_t n = strlen(word);
    if (n == 0 || table_get(&p->fillers, word))
        return 1;
    return strcmp(word, "<s>") == 0 || strcmp(word, "</s>") == 0 || wrapped(word, n, "<", ">") ||
           wrapped(word, n, "[", "]") || wrapped(word, n, "++", "++");
}

/* ------------------------------------------------------------ derivation */

static int is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
}

static int is_consonant(char c)
{
    return c >= 'a' && c <= 'z' && !is_vowel(c) && c != 'y';
}

struct rule {
    const char *graph;
    const char *phones;
};

/* Multi-letter graphemes, longest first within each initial letter. */
static const struct rule multi[] = {
    {"tch", "CH"},  {"sch", "S K"}, {"igh", "AY"},  {"eigh", "EY"}, {"ough", "AO"}, {"augh", "AO"},
    {"ch", "CH"},   {"sh", "SH"},   {"th", "TH"},   {"ph", "F"},    {"wh", "W"},    {"ck", "K"},
    {"ng", "NG"},   {"qu", "K W"},  {"gh", "G"},    {"ee", "IY"},   {"ea", "IY"},   {"oo", "UW"},
    {"ai", "EY"},   {"ay", "EY"},   {"ei", "EY"},   {"ey", "IY"},   {"oa", "OW"},   {"ou", "AW"},
    {"ow", "OW"},   {"oi", "OY"},   {"oy", "OY"},   {"au", "AO"},   {"aw", "AO"},   {"ew", "UW"},
    {"ie", "IY"},   {"ue", "UW"},   {"ar", "AA R"}, {"er", "ER"},   {"ir", "ER"},   {"ur", "ER"},
    {"or", "AO R"}, {"bb", "B"},    {"cc", "K"},    {"dd", "D"},    {"ff", "F"},    {"gg", "G"},
    {"ll", "L"},    {"mm", "M"},    {"nn", "N"},    {"pp", "P"},    {"rr", "R"},    {"ss", "S"},
    {"tt", "T"},    {"zz", "Z"},
};

/* One letter at position i of w (length n), with the context rules. */
static const char *letter(const char *w, size_t i, size_t n)
{
    char c = w[i], next = i + 1 < n ? w[i + 1] : '\0';
    int final = i + 1 == n;
    /* vowel, one consonant, final e: the vowel is long ("zane", "kobe") */
    int magic = is_vowel(c) && i + 3 == n && is_consonant(w[i + 1]) && w[i + 2] == 'e' &&
                (i == 0 || !is_vowel(w[i - 1]));
    switch (c) {
    case 'a':
        return magic ? "EY" : final ? "AH" : "AE";
    case 'e':
        if (final && n > 2 && i > 0 && !is_vowel(w[i - 1]))
            return ""; /* silent final e */
        return magic ? "IY" : final ? "IY" : "EH";
    case 'i':
        return magic ? "AY" : final ? "IY" : "IH";
    case 'o':
        return magic || final ? "OW" : "AA";
    case 'u':
        return magic ? "UW" : "AH";
    case 'y':
        return i == 0 ? "Y" : final ? "IY" : "IH";
    case 'c':
        return next == 'e' || next == 'i' || next == 'y' ? "S" : "K";
    case 'g':
        return next == 'e' && i + 2 == n ? "JH" : "G";
    case 'b':
        return "B";
    case 'd':
        return "D";
    case 'f':
        return "F";
    case 'h':
        return "HH";
    case 'j':
        return "JH";
    case 'k':
        return i == 0 && next == 'n' ? "" : "K";
    case 'l':
        return "L";
    case 'm':
        return "M";
    case 'n':
        return "N";
    case 'p':
        return "P";
    case 'q':
        return "K";
    case 'r':
        return "R";
    case 's':
        return "S";
    case 't':
        return "T";
    case 'v':
        return "V";
    case 'w':
        return i == 0 && next == 'r' ? "" : "W";
    case 'x':
        return i == 0 ? "Z" : "K S";
    case 'z':
        return "Z";
    case '\'':
        return "";
    }
    return NULL;
}

struct step {
    int cost;
    int from;
    const char *phones; /* NULL: unreachable */
};

static int append(char *out, size_t size, size_t *len, const char *phones)
{
    if (!*phones)
        return 0;
    size_t n = strlen(phones);
    if (*len + (*len ? 1 : 0) + n + 1 > size)
        return -1;
    if (*len)
        out[(*len)++] = ' ';
    memcpy(out + *len, phones, n + 1);
    *len += n;
    return 0;
}

static int has_vowel_letter(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_vowel(s[i]) || s[i] == 'y')
            return 1;
    return 0;
}

/* One hyphen-free part: cheapest spelling by dictionary pieces and rules. */
static int derive_part(const struct ps_pron *p, const char *w, size_t n, int whole_known_ok,
                       char *out, size_t size, size_t *len)
{
    struct step st[MAX_DERIVE_LETTERS + 1];
    char piece[MAX_PIECE_LETTERS + 1];
    if (whole_known_ok) {
        char part[MAX_DERIVE_LETTERS + 1];
        memcpy(part, w, n);
        part[n] = '\0';
        const char *known = ps_pron_lookup(p, part);
        if (known)
            return append(out, size, len, known);
    }
    for (size_t i = 0; i <= n; i++)
        st[i] = (struct step){INT_MAX, -1, NULL};
    st[0].cost = 0;
    st[0].phones = "";
    for (size_t i = 0; i < n; i++) {
        if (!st[i].phones)
            continue;
        for (size_t j = i + 2; j <= n && j - i <= MAX_PIECE_LETTERS; j++) {
            if (i == 0 && j == n)
                continue; /* never the word itself */
            if (!has_vowel_letter(w + i, j - i))
                continue; /* "bbc", "nls": spelled-out letters */
            memcpy(piece, w + i, j - i);
            piece[j - i] = '\0';
            const char *ph = ps_pron_lookup(p, piece);
            int cost = st[i].cost + (j - i == 2 ? COST_PIECE_SHORT : COST_PIECE);
            if (ph && cost < st[j].cost)
                st[j] = (struct step){cost, (int)i, ph};
        }
        for (size_t r = 0; r < sizeof multi / sizeof multi[0]; r++) {
            size_t g = strlen(multi[r].graph);
            if (i + g <= n && strncmp(w + i, multi[r].graph, g) == 0 &&
                st[i].cost + COST_RULE < st[i + g].cost)
                st[i + g] = (struct step){st[i].cost + COST_RULE, (int)i, multi[r].phones};
        }
        const char *ph = letter(w, i, n);
        if (ph && st[i].cost + COST_RULE < st[i + 1].cost)
            st[i + 1] = (struct step){st[i].cost + COST_RULE, (int)i, ph};
    }
    if (!st[n].phones)
        return -1;
    /* Walk back, then emit in order. */
    int order[MAX_DERIVE_LETTERS + 1], k = 0;
    for (int at = (int)n; at > 0; at = st[at].from)
        order[k++] = at;
    while (k-- > 0)
        if (append(out, size, len, st[order[k]].phones))
            return -1;
    return 0;
}

int ps_pron_derive(const struct ps_pron *p, const char *word, char *out, size_t size)
{
    size_t n = strlen(word), len = 0;
    if (size == 0)
        return -1;
    out[0] = '\0';
    if (n == 0 || n > MAX_DERIVE_LETTERS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = word[i];
        int inner = i > 0 && i + 1 < n;
        if (!((c >= 'a' && c <= 'z') || c == '\'' || (c == '-' && inner && word[i - 1] != '-')))
            return -1;
    }
    /* Hyphenated: each part on its own; known parts keep their entry. */
    int hyphenated = strchr(word, '-') != NULL;
    for (size_t start = 0; start < n;) {
        size_t end = start;
        while (end < n && word[end] != '-')
            end++;
        if (derive_part(p, word + start, end - start, hyphenated, out, size, &len))
            return -1;
        start = end + 1;
    }
    return len ? 0 : -1;
}
