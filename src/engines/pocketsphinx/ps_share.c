/*
 * Shared language model and reduced dictionary (see ps_share.h for what is
 * shared and why that is safe).
 */
#define _GNU_SOURCE /* RTLD_NEXT, memfd_create, malloc_usable_size */
#include "engines/pocketsphinx/ps_share.h"

#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sphinxbase/logmath.h>
#include <sphinxbase/ngram_model.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

#define SHARE_SLOTS 8     /* engine models sharing a language model at once */
#define TRIE_COPY_MAX 256 /* bytes of an lm_trie_t copy (5prealpha: 96) */
#define DICT_LINE_MAX 4096

struct ps_share {
    logmath_t *lmath; /* the model's, borrowed by it: freed after it */
    ngram_model_t *lm;
    int slot;    /* in trie_slots, or -1 */
    int dict_fd; /* memfd of the reduced dictionary, or -1 */
    char dict_path[64];
    size_t dict_kept, dict_total;

    /* The shared dictionary (see ps_share.h): NULL until the first decoder
     * gives its own, and for good when dict_off. */
    void *sdict, *sd2p;
    int dict_off;
    int small_fd; /* memfd of the one-entry dictionary, or -1 */
    char small_path[64];
    char probe_word[DICT_LINE_MAX]; /* its entry's word: word id 0 */
};

/* ------------------------------------------------------------ lm_trie_score */

/* sphinxbase's own signature (lm_trie.h is not installed; int32 is int). */
struct lm_trie_s;
typedef float (*trie_score_fn)(struct lm_trie_s *trie, int order, int32 wid, int32 *hist,
                               int32 n_hist, int32 *n_used);
float lm_trie_score(struct lm_trie_s *trie, int order, int32 wid, int32 *hist, int32 n_hist,
                    int32 *n_used);

/* A registered shared trie. gen changes with every registration, so a
 * thread's copy of a freed trie is never taken for a new one at the same
 * address. */
static struct trie_slot {
    _Atomic(struct lm_trie_s *) trie;
    atomic_uint gen;
    size_t size;
} trie_slots[SHARE_SLOTS];
static atomic_int n_slots_live;
static atomic_uint next_gen;
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(trie_score_fn) next_score;

/* This thread's copies of the shared tries' structs: the shared arrays, a
 * private cache. */
static _Thread_local struct trie_copy {
    unsigned gen; /* 0 = none */
    _Alignas(max_align_t) unsigned char data[TRIE_COPY_MAX];
} trie_copies[SHARE_SLOTS];

/* This thread's last shared trie and its copy, valid while slots_epoch (moved
 * by every registration and unregistration) is the one read when they were
 * set: the fast path of lm_trie_score. */
static atomic_uint slots_epoch;
/* initial-exec: read at a fixed offset from the thread pointer, without the
 * __tls_get_addr call (and the register saves around it) that the
 * position-independent default costs on every score. */
static _Thread_local __attribute__((tls_model("initial-exec"))) struct {
    struct lm_trie_s *trie; /* NULL: none */
    struct lm_trie_s *copy;
    unsigned epoch;
} last;

/* ps_share_open's probe: the trie a score went through on this thread. */
static _Thread_local int probing;
static _Thread_local struct lm_trie_s *probe_seen;

static trie_score_fn resolve_next(void)
{
    trie_score_fn f = atomic_load_explicit(&next_score, memory_order_acquire);
    if (f)
        return f;
    /* dlsym returns void *; POSIX guarantees it converts to a function
     * pointer. */
    void *sym = dlsym(RTLD_NEXT, "lm_trie_score");
    if (!sym) {
        /* Only sphinxbase calls this function, so it has one. */
        fprintf(stderr, "hark: sphinxbase's lm_trie_score not found: %s\n", dlerror());
        abort();
    }
    memcpy(&f, &sym, sizeof f);
    atomic_store_explicit(&next_score, f, memory_order_release);
    return f;
}

__attribute__((noinline)) static float score_slow(struct lm_trie_s *trie, int order, int32 wid,
                                                  int32 *hist, int32 n_hist, int32 *n_used)
{
    trie_score_fn next = resolve_next();
    unsigned epoch = atomic_load_explicit(&slots_epoch, memory_order_acquire);
    if (probing)
        probe_seen = trie;
    if (atomic_load_explicit(&n_slots_live, memory_order_acquire)) {
        for (int i = 0; i < SHARE_SLOTS; i++) {
            struct trie_slot *sl = &trie_slots[i];
            if (atomic_load_explicit(&sl->trie, memory_order_acquire) != trie)
                continue;
            struct trie_copy *c = &trie_copies[i];
            unsigned gen = atomic_load_explicit(&sl->gen, memory_order_acquire);
            if (c->gen != gen) {
                memcpy(c->data, trie, sl->size);
                c->gen = gen;
            }
            last.trie = trie;
            last.copy = (struct lm_trie_s *)(void *)c->data;
            last.epoch = epoch;
            return next(last.copy, order, wid, hist, n_hist, n_used);
        }
    }
    return next(trie, order, wid, hist, n_hist, n_used);
}

/* Replaces sphinxbase's lm_trie_score for the whole process (see
 * ps_share.h). A decoder on the shared model scores through the same trie
 * ~240,000 times per audio second, so that case is a thread-local compare
 * and a tail call; the slot search ran ~72 instructions per call, 3% of a
 * stream's instructions (callgrind of `hark serve`, one stream). Unshared
 * tries, the only kind when no model shares, take the slow path: a few
 * loads more than before. */
float lm_trie_score(struct lm_trie_s *trie, int order, int32 wid, int32 *hist, int32 n_hist,
                    int32 *n_used)
{
    if (trie == last.trie && last.epoch == atomic_load_explicit(&slots_epoch, memory_order_acquire))
        return atomic_load_explicit(&next_score, memory_order_relaxed)(last.copy, order, wid, hist,
                                                                       n_hist, n_used);
    return score_slow(trie, order, wid, hist, n_hist, n_used);
}

static int slot_register(struct lm_trie_s *trie, size_t size)
{
    int slot = -1;
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < SHARE_SLOTS && slot < 0; i++) {
        if (atomic_load_explicit(&trie_slots[i].trie, memory_order_relaxed))
            continue;
        slot = i;
        trie_slots[i].size = size;
        atomic_store_explicit(&trie_slots[i].gen, atomic_fetch_add(&next_gen, 1) + 1,
                              memory_order_release);
        atomic_store_explicit(&trie_slots[i].trie, trie, memory_order_release);
        atomic_fetch_add(&n_slots_live, 1);
        atomic_fetch_add(&slots_epoch, 1);
    }
    pthread_mutex_unlock(&slots_lock);
    return slot;
}

static void slot_unregister(int slot)
{
    if (slot < 0)
        return;
    pthread_mutex_lock(&slots_lock);
    atomic_store_explicit(&trie_slots[slot].trie, NULL, memory_order_release);
    atomic_fetch_sub(&n_slots_live, 1);
    atomic_fetch_add(&slots_epoch, 1);
    pthread_mutex_unlock(&slots_lock);
}

/* ------------------------------------------------------------ dictionary */

/* Copies the entries of dict_path whose base word ("word" of "word(2)") is
 * a unigram of lm into a memfd. 0, or -1 (the caller keeps the full file). */
static int write_reduced_dict(struct ps_share *s, const char *dict_path)
{
    FILE *in = fopen(dict_path, "r");
    if (!in)
        return -1;
    int fd = memfd_create("hark-dict", MFD_CLOEXEC);
    int wfd = fd >= 0 ? dup(fd) : -1;
    FILE *out = wfd >= 0 ? fdopen(wfd, "w") : NULL;
    if (!out) {
        if (wfd >= 0)
            close(wfd);
        if (fd >= 0)
            close(fd);
        fclose(in);
        return -1;
    }
    char line[DICT_LINE_MAX], word[DICT_LINE_MAX];
    int32 unknown = ngram_unknown_wid(s->lm);
    int ok = 1;
    while (ok && fgets(line, sizeof line, in)) {
        const char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        size_t n = 0;
        while (p[n] && !isspace((unsigned char)p[n]))
            n++;
        if (!n)
            continue;
        s->dict_total++;
        memcpy(word, p, n);
        word[n] = '\0';
        char *alt = strchr(word, '(');
        if (alt && alt != word)
            *alt = '\0';
        if (ngram_wid(s->lm, word) == unknown)
            continue;
        ok = fputs(line, out) >= 0;
        s->dict_kept++;
    }
    ok = ok && !ferror(in);
    ok = (fclose(out) == 0) && ok;
    fclose(in);
    if (!ok || !s->dict_kept) {
        close(fd);
        return -1;
    }
    s->dict_fd = fd;
    snprintf(s->dict_path, sizeof s->dict_path, "/proc/self/fd/%d", fd);
    /* The path must open: /proc may be missing in a sandbox. */
    FILE *check = fopen(s->dict_path, "r");
    if (!check) {
        close(fd);
        s->dict_fd = -1;
        return -1;
    }
    fclose(check);
    return 0;
}

/* ------------------------------------------------------------ shared dictionary */

/* pocketsphinx exports these but installs no header for them; the types are
 * opaque here (dict_t and dict2pid_t are anonymous structs in its dict.h). */
void *dict_retain(void *d);
int dict_free(void *d);
int32 dict_wordid(void *d, const char *word);
void *dict2pid_retain(void *d2p);
int dict2pid_free(void *d2p);

/* The head of struct ps_decoder_s in pocketsphinx_internal.h of 5prealpha
 * (unchanged from 2014 to the 2016 snapshot Debian ships): */
struct ps_head {
    cmd_ln_t *config;
    int refcount;
    void *acmod;
    void *dict; /* dict_t */
    void *d2p;  /* dict2pid_t */
    logmath_t *lmath;
};
/* and of dict_t / dict2pid_t, which both start with their reference count,
 * the bin_mdef_t they were built for, and (dict2pid_t) its dict_t. */
struct dict_head {
    int refcnt;
    void *mdef;
};
struct d2p_head {
    int refcount;
    void *mdef;
    void *dict;
};

/* Added to the shared pair's reference counts while shared. Lattices retain
 * and free the search's dictionary at every utterance (ps_lattice.c), on the
 * decoding thread and without atomics, so concurrent decoders can lose
 * updates of a shared count: pinned this high it never reaches 0 while a
 * decoder may use it, and ps_share_close sets it exactly before freeing. */
#define DICT_PIN (1 << 28)

/* 1 when ps's head matches struct ps_head: config and lmath are what the
 * public getters return, refcount is 1, dict knows the word of id 0
 * (probe), d2p was built for that dict and mdef, and retaining dict and d2p
 * moves the first int of each by one. */
static int head_ok(struct ps_head *h, ps_decoder_t *ps, const char *probe)
{
    if (h->config != ps_get_config(ps) || h->lmath != ps_get_logmath(ps) || h->refcount != 1 ||
        !h->dict || !h->d2p)
        return 0;
    struct dict_head *d = h->dict;
    struct d2p_head *p = h->d2p;
    if (p->dict != h->dict || p->mdef != d->mdef || !d->mdef)
        return 0;
    if (dict_wordid(h->dict, probe) != 0)
        return 0;
    int rd = d->refcnt, rp = p->refcount;
    if (rd < 1 || rp < 1)
        return 0;
    dict_retain(h->dict);
    dict2pid_retain(h->d2p);
    int moved = d->refcnt == rd + 1 && p->refcount == rp + 1;
    dict2pid_free(h->d2p);
    dict_free(h->dict);
    return moved && d->refcnt == rd && p->refcount == rp;
}

/* The reduced dictionary's first entry, alone, into a memfd: what decoders
 * after the first are created with before they get the shared one. */
static int write_small_dict(struct ps_share *s)
{
    FILE *in = fopen(s->dict_path, "r");
    if (!in)
        return -1;
    char line[DICT_LINE_MAX];
    int got = 0;
    while (!got && fgets(line, sizeof line, in)) {
        size_t n = strcspn(line, " \t\r\n");
        if (n && n < sizeof s->probe_word) {
            memcpy(s->probe_word, line, n);
            s->probe_word[n] = '\0';
            got = 1;
        }
    }
    fclose(in);
    if (!got)
        return -1;
    int fd = memfd_create("hark-dict-small", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = strlen(line);
    if (write(fd, line, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    s->small_fd = fd;
    snprintf(s->small_path, sizeof s->small_path, "/proc/self/fd/%d", fd);
    return 0;
}

static void dict_stop(struct ps_share *s, const char *why)
{
    LOG_WARN(NULL,
             "pocketsphinx: decoders cannot share the dictionary (%s); each decoder reads its "
             "own",
             why);
    s->dict_off = 1;
}

const char *ps_share_decoder_dict(const struct ps_share *s)
{
    if (s->sdict && !s->dict_off && s->small_path[0])
        return s->small_path;
    return ps_share_dict(s);
}

int ps_share_dict_attach(struct ps_share *s, ps_decoder_t *ps)
{
    if (s->dict_off || !ps_share_dict(s))
        return 0;
    struct ps_head *h = (struct ps_head *)(void *)ps;
    if (!s->sdict) {
        /* The first decoder, made from the reduced dictionary: its pair
         * becomes the shared one. */
        if (write_small_dict(s) != 0) {
            dict_stop(s, "no one-entry dictionary file");
            return 0;
        }
        if (!head_ok(h, ps, s->probe_word)) {
            dict_stop(s, "the decoder's layout is not the one this build expects");
            return 0;
        }
        s->sdict = dict_retain(h->dict);
        s->sd2p = dict2pid_retain(h->d2p);
        ((struct dict_head *)s->sdict)->refcnt += DICT_PIN;
        ((struct d2p_head *)s->sd2p)->refcount += DICT_PIN;
        return 1;
    }
    /* A decoder made from the one-entry dictionary. */
    if (!head_ok(h, ps, s->probe_word)) {
        dict_stop(s, "the decoder's layout is not the one this build expects");
        return ps_load_dict(ps, s->dict_path, NULL, NULL) < 0 ? -1 : 0;
    }
    dict2pid_free(h->d2p); /* also releases its dict */
    dict_free(h->dict);
    h->dict = dict_retain(s->sdict);
    h->d2p = dict2pid_retain(s->sd2p);
    return 1;
}

static void dict_release(struct ps_share *s)
{
    if (s->sdict) {
        /* No decoder is left: the share holds one reference to each, and
         * the pair's dict2pid_t one to the dictionary. */
        ((struct d2p_head *)s->sd2p)->refcount = 1;
        ((struct dict_head *)s->sdict)->refcnt = 2;
        dict2pid_free(s->sd2p);
        dict_free(s->sdict);
        s->sdict = s->sd2p = NULL;
    }
    if (s->small_fd >= 0)
        close(s->small_fd);
    s->small_fd = -1;
}

/* ------------------------------------------------------------ public */

void ps_share_close(struct ps_share *s)
{
    if (!s)
        return;
    dict_release(s);
    slot_unregister(s->slot);
    if (s->lm)
        ngram_model_free(s->lm);
    if (s->lmath)
        logmath_free(s->lmath);
    if (s->dict_fd >= 0)
        close(s->dict_fd);
    hark_free(s);
}

int ps_share_open(struct ps_share **out, cmd_ln_t *cfg, const char *lm_path, const char *dict_path,
                  char *errbuf, size_t errbuf_size)
{
    *out = NULL;
    struct ps_share *s = hark_calloc(1, sizeof *s);
    if (!s)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    s->slot = -1;
    s->dict_fd = -1;
    s->small_fd = -1;
    /* As ps_reinit makes the decoder's (ngram_model_set_init requires the
     * same base and shift). */
    s->lmath = logmath_init((float64)cmd_ln_float32_r(cfg, "-logbase"), 0, TRUE);
    if (s->lmath)
        s->lm = ngram_model_read(cfg, lm_path, NGRAM_AUTO, s->lmath);
    if (!s->lm) {
        ps_share_close(s);
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "pocketsphinx could not read the language model '%s' (see the log for "
                       "sphinxbase's reason)",
                       lm_path);
    }

    /* Does scoring reach the lm_trie_score above? */
    resolve_next();
    probing = 1;
    probe_seen = NULL;
    (void)ngram_score(s->lm, "</s>", NULL);
    probing = 0;
    size_t size = probe_seen ? malloc_usable_size(probe_seen) : 0;
    if (!probe_seen || size > TRIE_COPY_MAX || (s->slot = slot_register(probe_seen, size)) < 0) {
        LOG_WARN(NULL,
                 "pocketsphinx: decoders cannot share the language model here (%s); each "
                 "decoder reads its own",
                 !probe_seen            ? "sphinxbase's lm_trie_score is not interposed"
                 : size > TRIE_COPY_MAX ? "unexpected lm_trie_t size"
                                        : "too many models sharing");
        ps_share_close(s);
        return 0;
    }

    if (write_reduced_dict(s, dict_path) != 0) {
        s->dict_kept = s->dict_total = 0;
        snprintf(s->dict_path, sizeof s->dict_path, "%s", "");
        LOG_WARN(NULL,
                 "pocketsphinx: no reduced dictionary (memfd or /proc/self/fd unavailable: %s); "
                 "decoders read '%s'",
                 strerror(errno), dict_path);
    }
    *out = s;
    return 0;
}

ngram_model_t *ps_share_lm(const struct ps_share *s)
{
    return s->lm;
}

const char *ps_share_dict(const struct ps_share *s)
{
    return s->dict_path[0] ? s->dict_path : NULL;
}

void ps_share_dict_counts(const struct ps_share *s, size_t *kept, size_t *total)
{
    *kept = s->dict_kept;
    *total = s->dict_total;
}
