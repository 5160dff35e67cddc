/*
 * The embedded PocketSphinx 5prealpha engine (US English).
 *
 * Model: the validated file paths (ps_model), the base dictionary (ps_pron),
 * with share_model=yes (the default) the language model and the dictionary
 * (reduced to the model's words) all clean decoders read (ps_share; a decoder
 * then costs ~37 MB RSS instead of ~96 MB: its search stays private, see
 * ps_share.h), and a pool of decoders (the engine-neutral src/engines/pool.h).
 * A decoder still takes ~250 ms to
 * create, so a "stream" here IS one pooled decoder: pool_min are created at
 * load, more on demand up to pool_max. stream_acquire's wait_ms bounds only the wait for a busy
 * decoder; creating one (~250 ms) or adding vocabulary words (~0.5 s, the
 * search is rebuilt) happens inside the call. stats: streams_total counts
 * live decoders plus ones being created, decode_seconds the thread CPU time
 * of utt_feed, utt_partial and utt_end.
 *
 * Vocabulary: ps_add_word changes a decoder's dictionary and LM for good (a
 * decoder on the shared ones first reads its own, see add_words).
 * Each decoder is tagged with the canonical key of the words added to it
 * (sorted, unique, only words the base dictionary lacks; "" = clean).
 * stream_acquire takes (pool_take), in order: a free decoder with the session's key, a
 * free clean one (words are then added), a new one while the pool has room,
 * or a free decoder with other words, which is destroyed and replaced. So no
 * session ever decodes with another session's words. Pronunciations of new
 * words are derived by ps_pron_derive (this version has no letter-to-sound).
 *
 * Decoding: hark's session runs its own VAD and feeds only utterance audio,
 * so PocketSphinx's silence removal is off (-remove_silence no) and frame
 * times are contiguous from utt_start (ps_start_stream resets the clock).
 * The cepstral mean is kept per session, see cmn_* below.
 *
 * second_pass, the work ps_end_utt does before the final:
 *   none      fwdtree result only (-fwdflat no -bestpath no)
 *   bestpath  best path through the word lattice (-fwdflat no -bestpath yes)
 *   full      fwdflat re-search, then best path (-fwdflat yes -bestpath yes)
 * Measured with bench/ps_second_pass.c (5 librivox clips, 71 words, 24.7 s;
 * 20 ms feeds; "cold" = each clip a new session, "warm" = one session;
 * utt_end as thread CPU because the 2-core box was shared, two runs):
 *   pass      WER cold  WER warm  utt_end CPU mean / max   per audio s
 *   none      28.2%     26.8%     43-56 ms / 73-104 ms     10-12 ms
 *   bestpath  26.8%     26.8%     36-53 ms / 61-100 ms     8-11 ms
 *   full      32.4%     29.6%     267-315 ms / 367-444 ms  55-65 ms
 * full is both slower and worse here, and bestpath is as fast as none once
 * none computes confidences (below), so bestpath is the default.
 *
 * Word confidence is the lattice posterior, logmath_exp(post) clamped to
 * [0, 1]. Posteriors exist only after the lattice best-path pass: with
 * second_pass=none ps_seg_prob gives 0 (p = 1 for every word), so utt_end
 * runs that pass itself (ps_lattice_bestpath + ps_lattice_posterior, 5-15 ms
 * here) and gives each fwdtree word the posterior of the lattice node with
 * its word and start frame.
 *
 * sphinxbase has process-global state (log callback, VTLN/RNG statics), so
 * decoders are created and freed under one global mutex, and its log output
 * is routed once into hark's log (info at DEBUG, warnings/errors at WARN,
 * fatal at ERROR); err_set_logfp(NULL) keeps cmd_ln's configuration dump off
 * stderr, and -logfn is never used.
 *
 * Threads: the ops are thread-safe per the engine.h contract (model shared,
 * a stream used by one thread at a time).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <pocketsphinx.h>
#include <sphinxbase/err.h>
#include <sphinxbase/fe.h>
#include <sphinxbase/logmath.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/engine.h"
#include "engines/pool.h"
#include "engines/pocketsphinx/ps_model.h"
#include "engines/pocketsphinx/ps_pron.h"
#include "engines/pocketsphinx/ps_share.h"

#ifndef HARK_PS_MODEL_DIR
#define HARK_PS_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
#endif

#define POOL_LIMIT 256
#define FEED_CHUNK 2048      /* int16 samples converted per ps_process_raw call */
#define MAX_VOCAB_WORDS 1000 /* new words one session may add */
#define MAX_PHONES_LEN 512
#define CMN_MAX_LEN 64   /* cepstral vector length handled (en-us: 13) */
#define CMN_SESSIONS 256 /* sessions whose CMN mean is remembered (LRU) */
#define CMN_HOLD_MS 500  /* audio a session's first utterance estimates its mean from */
#define CMN_HOLD_SAMPLES (ENGINE_RATE * CMN_HOLD_MS / 1000)

enum second_pass { PASS_NONE, PASS_BESTPATH, PASS_FULL };

static const char *const pass_names[] = {"none", "bestpath", "full"};
#define DEFAULT_PASS PASS_BESTPATH

/* max_hmms, PocketSphinx's -maxhmmpf: when more HMMs than this are active
 * in a frame, the search keeps the best this many (histogram pruning) on
 * top of its beams. The engine's own default, 30000, hardly ever binds on
 * this model. Measured with bench_pipeline --max-hmms (docs/benchmarks.md,
 * "Search pruning"): 4000 decodes the same words on the librivox, dialog
 * and noisy sets for 31-37% less thread CPU per audio second (19.6% fewer
 * instructions; the rest is a smaller working set per frame); 3000 and
 * below start to lose words in noise, 2000 on clean speech too. */
#define DEFAULT_MAX_HMMS 4000
#define MAX_HMMS_MIN 100
#define MAX_HMMS_MAX 1000000

struct engine_stream {
    struct pool_item item; /* first: a pool_item * is the stream; key = vocab; broken: a
                              ps_* call failed, destroy on release */
    struct engine_model *m;
    ps_decoder_t *ps;
    unsigned id;  /* for log lines */
    char *vocab;  /* key of the words added; "" = clean */
    int own_lm;   /* reads its own language model, not m->shared's */
    int own_dict; /* has its own dictionary, not m->shared's */
    int in_utt;
    int cmn;       /* the decoder has live CMN of the model's length (see cmn_*) */
    int cmn_fresh; /* the session has no remembered mean: estimate one */
    fe_t *est_fe;  /* front end of the estimate, never the decoder's own */
    int16_t *hold; /* CMN_HOLD_SAMPLES, or NULL: no estimator */
    size_t n_hold;
    int holding; /* utt_feed fills hold; the decoder has seen nothing yet */
    char sid[64];

    /* Result storage, valid until the next call on this stream. */
    char *text;
    size_t text_cap;
    char *wtext; /* the words of text, NUL-separated, for engine_word.word */
    size_t wtext_cap;
    struct engine_word *words;
    size_t words_cap;

    int16_t pcm[FEED_CHUNK];
};

struct engine_model {
    char *hmm, *lm, *dict;
    int pool_min, pool_max;
    enum second_pass pass;
    int max_hmms;            /* -maxhmmpf: HMMs the search keeps per frame */
    int share;               /* share_model=yes */
    struct ps_share *shared; /* NULL: each decoder reads its own model */
    struct ps_model_am am;
    struct ps_pron *pron;

    struct pool pool; /* of decoders (src/engines/pool.h) */

    atomic_llong decode_ns;
    atomic_llong audio_samples;

    /* Cepstral mean normalisation state, see cmn_* below. */
    pthread_mutex_t cmn_lock;
    int cmn_len; /* 0 until the first decoder reports its length */
    float cmn_prior[CMN_MAX_LEN];
    struct cmn_session {
        char sid[64];
        float mean[CMN_MAX_LEN];
        uint64_t used; /* 0 = free */
    } cmn_sessions[CMN_SESSIONS];
    uint64_t cmn_clock;
};

/* ------------------------------------------------------------ sphinxbase glue */

static pthread_mutex_t sphinx_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_once = PTHREAD_ONCE_INIT;
/* Session id of the call in progress on this thread, for sphinxbase lines. */
static _Thread_local const char *log_sid;

static void sphinx_log(void *user, err_lvl_t lvl, const char *fmt, ...)
{
    (void)user;
    enum hark_log_level level = lvl >= ERR_FATAL  ? HARK_LOG_ERROR
                                : lvl >= ERR_WARN ? HARK_LOG_WARN
                                                  : HARK_LOG_DEBUG;
    if (!log_enabled(level))
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = strlen(msg);
    while (n && isspace((unsigned char)msg[n - 1]))
        msg[--n] = '\0';
    if (n)
        log_emit(level, log_sid, "pocketsphinx: %s", msg);
}

/* err_set_logfp(NULL) also silences cmd_ln's configuration dump, which is
 * written straight to the log FILE (stderr by default), not the callback. */
static void log_setup(void)
{
    err_set_logfp(NULL);
    err_set_callback(sphinx_log, NULL);
}

/* ------------------------------------------------------------ settings */

static const char *const setting_names =
    "model_dir, hmm, lm, dict, pool_min, pool_max, second_pass, share_model, max_hmms";

static int parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = hark_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static int apply_settings(struct engine_model *m, const char *const *settings, char *errbuf,
                          size_t errbuf_size)
{
    const char *dir = HARK_PS_MODEL_DIR;
    const char *hmm = NULL, *lm = NULL, *dict = NULL;
    m->pool_min = 1;
    m->pool_max = 8;
    m->pass = DEFAULT_PASS;
    m->max_hmms = DEFAULT_MAX_HMMS;
    m->share = 1;
    for (size_t i = 0; settings && settings[i]; i += 2) {
        const char *name = settings[i], *v = settings[i + 1];
        if (!v)
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "pocketsphinx setting '%s' has no value", name);
        if (strcmp(name, "model_dir") == 0) {
            dir = v;
        } else if (strcmp(name, "hmm") == 0) {
            hmm = v;
        } else if (strcmp(name, "lm") == 0) {
            lm = v;
        } else if (strcmp(name, "dict") == 0) {
            dict = v;
        } else if (strcmp(name, "pool_min") == 0 || strcmp(name, "pool_max") == 0) {
            int *dst = name[5] == 'm' && name[6] == 'i' ? &m->pool_min : &m->pool_max;
            int lo = dst == &m->pool_min ? 0 : 1;
            if (parse_int(v, lo, POOL_LIMIT, dst))
                return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                               "pocketsphinx setting %s='%s' is invalid; expected an integer "
                               "%d..%d",
                               name, v, lo, POOL_LIMIT);
        } else if (strcmp(name, "second_pass") == 0) {
            int k = 0;
            while (k < 3 && strcmp(v, pass_names[k]) != 0)
                k++;
            if (k == 3)
                return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                               "pocketsphinx setting second_pass='%s' is invalid; expected none, "
                               "bestpath or full",
                               v);
            m->pass = (enum second_pass)k;
        } else if (strcmp(name, "max_hmms") == 0) {
            if (parse_int(v, MAX_HMMS_MIN, MAX_HMMS_MAX, &m->max_hmms))
                return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                               "pocketsphinx setting max_hmms='%s' is invalid; expected an integer "
                               "%d..%d",
                               v, MAX_HMMS_MIN, MAX_HMMS_MAX);
        } else if (strcmp(name, "share_model") == 0) {
            if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
                return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                               "pocketsphinx setting share_model='%s' is invalid; expected yes "
                               "or no",
                               v);
            m->share = v[0] == 'y';
        } else {
            return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                           "unknown pocketsphinx setting '%s'; accepted: %s", name, setting_names);
        }
    }
    if (m->pool_min > m->pool_max)
        return err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                       "pocketsphinx pool_min (%d) is larger than pool_max (%d)", m->pool_min,
                       m->pool_max);
    m->hmm = hmm ? hark_strdup(hmm) : path_join(dir, "en-us");
    m->lm = lm ? hark_strdup(lm) : path_join(dir, "en-us.lm.bin");
    m->dict = dict ? hark_strdup(dict) : path_join(dir, "cmudict-en-us.dict");
    if (!m->hmm || !m->lm || !m->dict)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    return 0;
}

/* ------------------------------------------------------------ CMN */

/*
 * Cepstral mean normalisation. The front end subtracts a cepstral mean that
 * PocketSphinx's live CMN (sphinxbase cmn_live.c) recomputes only at the end
 * of an utterance and when its running count passes 800 frames, so the mean
 * used while decoding is mostly what earlier audio left. Left alone, a pooled
 * decoder would carry the mean of the session that used it last, and results
 * would depend on other users' audio. So the engine keeps the mean itself:
 *   - a session's later utterances start from the mean its previous one left
 *     (remembered per session id, LRU of CMN_SESSIONS, whichever decoder the
 *     session gets);
 *   - its first utterance starts from a mean estimated from its own first
 *     CMN_HOLD_MS of audio: utt_feed holds that audio back, a second front
 *     end (est_fe, built from the decoder's configuration; the decoder's own
 *     fe carries state) computes its cepstra, their mean (counted the way
 *     cmn_live counts: frames with c0 < 0 skipped) becomes the decoder's
 *     mean, and only then is the held audio decoded. The decoder's running
 *     sum starts empty, so the mean it saves at the end of that utterance is
 *     the mean of the utterance's own frames.
 * Every result is therefore a function of the session's own audio: the same
 * audio gives the same words on a busy server, an idle one and the CLI, in
 * any chunking (the hold ends at exactly CMN_HOLD_SAMPLES).
 *
 * Why: the model's -cmninit fits real channels badly (the librivox clips'
 * means have c3 = 18..26 and c4 = -11..-25; -cmninit has 5.1 and 2.5).
 * Each of the 5 clips as a new session, bestpath, 71 words: -cmninit 38.0%
 * WER, the estimate 26.8%, and sphinxbase's batch CMN, which has the whole
 * clip in hand, also 26.8%. (Starting from an average over recent sessions
 * gave 22.5%, but from other users' audio.) The hold time was chosen on
 * errors summed over 3 ways in (clips fed directly, `hark transcribe` per
 * clip, all clips as one `hark transcribe` session) x 7 sox channel variants
 * (as is, -15 dB, highpass 300 Hz, bass +8, treble -8, +8 dB at 1.5 kHz,
 * 300-3400 Hz band), 1491 words:
 *   hold ms    none  300  400  500  600  800  1000
 *   errors      567  551  462  418  468  486   465
 * (500 ms with the estimate counted as 500 frames, as cmn_live_set would:
 * 432.) The gains over "none" are large everywhere; the differences between
 * 400 and 1000 ms are within what these few clips of one reader can tell.
 * Blending the estimate with -cmninit by frame count (prior worth 100 or
 * 300 frames) helped near-model channels a little and hurt the others badly
 * (300-3400 Hz band: 29 -> 46-51 errors of 71), so the estimate is used
 * alone; an utterance with no countable frame keeps -cmninit.
 * Cost, first utterance of a session only: no partial before CMN_HOLD_MS
 * of utterance audio has arrived. The session sends its ~300 ms pre-roll at
 * once at onset, so that is ~200 ms of speech; on the librivox clips the
 * first words showed at 500 ms of audio instead of 420-480 ms. The held
 * audio gets its MFCCs computed twice (0.3 ms) and is decoded in the one
 * utt_feed call that ends the hold: the same decoding work as without the
 * hold (0.2-0.6 s CPU for the first 500 ms of those clips on the shared dev
 * box, held or not), done at once. utt_end during the hold estimates from
 * what arrived.
 */
static cmn_t *cmn_of(struct engine_stream *s)
{
    feat_t *feat = ps_get_feat(s->ps);
    return s->cmn && feat ? feat->cmn_struct : NULL;
}

/* First decoder: its -cmninit becomes the prior. */
static void cmn_adopt(struct engine_stream *s)
{
    struct engine_model *m = s->m;
    feat_t *feat = ps_get_feat(s->ps);
    if (!feat || !feat->cmn_struct || feat->cmn_struct->veclen > CMN_MAX_LEN)
        return;
    mfcc_t v[CMN_MAX_LEN];
    cmn_live_get(feat->cmn_struct, v);
    pthread_mutex_lock(&m->cmn_lock);
    if (!m->cmn_len) {
        m->cmn_len = feat->cmn_struct->veclen;
        for (int i = 0; i < m->cmn_len; i++)
            m->cmn_prior[i] = v[i];
    }
    s->cmn = m->cmn_len == feat->cmn_struct->veclen;
    pthread_mutex_unlock(&m->cmn_lock);
}

static struct cmn_session *cmn_find(struct engine_model *m, const char *sid)
{
    if (!*sid)
        return NULL;
    for (int i = 0; i < CMN_SESSIONS; i++)
        if (m->cmn_sessions[i].used && strcmp(m->cmn_sessions[i].sid, sid) == 0)
            return &m->cmn_sessions[i];
    return NULL;
}

/* Restores the session's remembered mean; returns 0 when there is none
 * (the decoder then holds -cmninit until the first utterance's estimate). */
static int cmn_restore(struct engine_stream *s)
{
    struct engine_model *m = s->m;
    cmn_t *cmn = cmn_of(s);
    if (!cmn)
        return 0;
    mfcc_t v[CMN_MAX_LEN];
    pthread_mutex_lock(&m->cmn_lock);
    struct cmn_session *e = cmn_find(m, s->sid);
    const float *src = e ? e->mean : m->cmn_prior;
    for (int i = 0; i < m->cmn_len; i++)
        v[i] = src[i];
    if (e)
        e->used = ++m->cmn_clock;
    pthread_mutex_unlock(&m->cmn_lock);
    cmn_live_set(cmn, v);
    return e != NULL;
}

/* Mean of the cepstra of pcm[0..n) as cmn_live would accumulate them
 * (frames with negative c0 skipped); the number of frames counted, or -1. */
static int est_mean(struct engine_stream *s, const int16_t *pcm, size_t n, double *mean, int len)
{
    enum { BLOCK = 16 };
    mfcc_t rows[BLOCK][CMN_MAX_LEN], *rp[BLOCK];
    for (int i = 0; i < BLOCK; i++)
        rp[i] = rows[i];
    for (int j = 0; j < len; j++)
        mean[j] = 0;
    int counted = 0;
    fe_start_stream(s->est_fe);
    if (fe_start_utt(s->est_fe) < 0)
        return -1;
    const int16 *p = pcm;
    size_t left = n;
    for (int last = 0; !last;) {
        int32 nfr = BLOCK;
        if (left) {
            size_t before = left;
            if (fe_process_frames(s->est_fe, &p, &left, rp, &nfr, NULL) < 0 ||
                (nfr == 0 && left == before)) /* no progress: never loop */
                return -1;
        } else {
            last = 1;
            if (fe_end_utt(s->est_fe, rows[0], &nfr) < 0)
                return -1;
        }
        for (int i = 0; i < nfr; i++) {
            if (rows[i][0] < 0)
                continue;
            for (int j = 0; j < len; j++)
                mean[j] += rows[i][j];
            counted++;
        }
    }
    for (int j = 0; counted && j < len; j++)
        mean[j] /= counted;
    return counted;
}

/* Ends the hold: the held audio's mean becomes the decoder's, with an
 * empty running sum (cmn_t's fields are public in sphinxbase's cmn.h;
 * cmn_live_set would count the estimate as 500 frames), then the held audio
 * is decoded. */
static int hold_release(struct engine_stream *s)
{
    struct engine_model *m = s->m;
    cmn_t *cmn = cmn_of(s);
    s->holding = 0;
    if (cmn) {
        double est[CMN_MAX_LEN];
        int k = est_mean(s, s->hold, s->n_hold, est, m->cmn_len);
        if (k < 0) {
            LOG_WARN(s->sid,
                     "pocketsphinx: decoder %u: cepstral mean estimate failed; using "
                     "-cmninit",
                     s->id);
        } else if (k > 0) {
            for (int i = 0; i < m->cmn_len; i++) {
                cmn->cmn_mean[i] = (mfcc_t)est[i];
                cmn->sum[i] = 0;
            }
            cmn->nframe = 0;
        }
        LOG_DEBUG(s->sid, "pocketsphinx: decoder %u: cepstral mean from %d frames of %zu ms", s->id,
                  k, s->n_hold * 1000 / ENGINE_RATE);
    }
    size_t n = s->n_hold;
    s->n_hold = 0;
    if (n && ps_process_raw(s->ps, s->hold, n, FALSE, FALSE) < 0) {
        s->item.broken = 1;
        return HARK_E_ENGINE;
    }
    return 0;
}

/* After ps_end_utt, which updated the decoder's mean. */
static void cmn_save(struct engine_stream *s)
{
    struct engine_model *m = s->m;
    cmn_t *cmn = cmn_of(s);
    if (!cmn)
        return;
    mfcc_t v[CMN_MAX_LEN];
    cmn_live_get(cmn, v);
    pthread_mutex_lock(&m->cmn_lock);
    struct cmn_session *e = cmn_find(m, s->sid);
    if (!e && *s->sid) {
        e = &m->cmn_sessions[0];
        for (int i = 1; i < CMN_SESSIONS && e->used; i++)
            if (m->cmn_sessions[i].used < e->used)
                e = &m->cmn_sessions[i];
        snprintf(e->sid, sizeof e->sid, "%s", s->sid);
    }
    if (e) {
        for (int i = 0; i < m->cmn_len; i++)
            e->mean[i] = v[i];
        e->used = ++m->cmn_clock;
    }
    pthread_mutex_unlock(&m->cmn_lock);
}

/* ------------------------------------------------------------ decoders */

static void decoder_free(struct engine_stream *s)
{
    if (!s)
        return;
    if (s->ps || s->est_fe) {
        pthread_mutex_lock(&sphinx_lock);
        fe_free(s->est_fe);
        ps_free(s->ps);
        pthread_mutex_unlock(&sphinx_lock);
    }
    hark_free(s->hold);
    hark_free(s->vocab);
    hark_free(s->text);
    hark_free(s->wtext);
    hark_free(s->words);
    hark_free(s);
}

/* The decoder configuration; lm NULL leaves -lm out (the decoder then has
 * no search until ps_set_lm). Call under sphinx_lock. */
static cmd_ln_t *decoder_config(const struct engine_model *m, const char *lm, const char *dict)
{
    static const char *const fwdflat[] = {"no", "no", "yes"};
    static const char *const bestpath[] = {"no", "yes", "yes"};
    char maxhmm[16];
    snprintf(maxhmm, sizeof maxhmm, "%d", m->max_hmms);
    if (lm)
        return cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", m->hmm, "-lm", lm, "-dict", dict,
                           "-remove_silence", "no", "-fwdflat", fwdflat[m->pass], "-bestpath",
                           bestpath[m->pass], "-maxhmmpf", maxhmm, NULL);
    return cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", m->hmm, "-dict", dict, "-remove_silence",
                       "no", "-fwdflat", fwdflat[m->pass], "-bestpath", bestpath[m->pass],
                       "-maxhmmpf", maxhmm, NULL);
}

/* With a share, a new decoder is built on the reduced dictionary and given
 * the shared language model (ps_set_lm retains it; the search wraps it in
 * its own ngram_model_set); see ps_share.h. */
static int decoder_new(struct engine_model *m, unsigned id, struct engine_stream **out,
                       char *errbuf, size_t errbuf_size)
{
    *out = NULL;
    struct engine_stream *s = hark_calloc(1, sizeof *s);
    if (!s || !(s->item.key = s->vocab = hark_strdup(""))) {
        hark_free(s);
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    }
    s->m = m;
    s->id = id;
    int64_t t0 = clock_mono_ns();
    pthread_mutex_lock(&sphinx_lock);
    const char *dict =
        m->shared && ps_share_decoder_dict(m->shared) ? ps_share_decoder_dict(m->shared) : m->dict;
    cmd_ln_t *cfg = decoder_config(m, m->shared ? NULL : m->lm, dict);
    if (cfg) {
        s->ps = ps_init(cfg);
        cmd_ln_free_r(cfg); /* the decoder keeps its own reference */
    }
    s->own_lm = !m->shared;
    s->own_dict = 1;
    if (s->ps && m->shared) {
        int rc = ps_share_dict_attach(m->shared, s->ps);
        s->own_dict = rc != 1;
        if (rc < 0) {
            ps_free(s->ps);
            s->ps = NULL;
        }
    }
    if (s->ps && m->shared &&
        (ps_set_lm(s->ps, "_default", ps_share_lm(m->shared)) < 0 ||
         ps_set_search(s->ps, "_default") < 0)) {
        ps_free(s->ps);
        s->ps = NULL;
    }
    if (s->ps)
        s->est_fe = fe_init_auto_r(ps_get_config(s->ps));
    pthread_mutex_unlock(&sphinx_lock);
    if (!s->ps) {
        decoder_free(s);
        return err_set(errbuf, errbuf_size, HARK_E_MODEL,
                       "pocketsphinx could not create a decoder from hmm '%s', lm '%s', dict "
                       "'%s' (see the log for sphinxbase's reason)",
                       m->hmm, m->lm, m->dict);
    }
    cmn_adopt(s);
    if (s->est_fe && s->cmn && fe_get_output_size(s->est_fe) == m->cmn_len) {
        s->hold = hark_malloc(CMN_HOLD_SAMPLES * sizeof *s->hold);
        if (!s->hold) {
            decoder_free(s);
            return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
        }
    } else {
        /* Decodes, but a session's first utterance starts from -cmninit. */
        LOG_WARN(NULL, "pocketsphinx: decoder %u: no cepstral mean estimator for this model", id);
    }
    LOG_DEBUG(NULL, "pocketsphinx: decoder %u created in %.0f ms, %s dictionary", id,
              (clock_mono_ns() - t0) / 1e6, s->own_dict ? "own" : "shared");
    *out = s;
    return 0;
}

/* ------------------------------------------------------------ model */

static void model_free(struct engine_model *m)
{
    if (!m)
        return;
    unsigned n_items, n_busy;
    pool_counts(&m->pool, &n_items, &n_busy);
    if (n_busy)
        LOG_ERROR(NULL, "pocketsphinx: engine freed with %u decoders still in use", n_busy);
    for (struct pool_item *it; (it = pool_pop(&m->pool));)
        decoder_free((struct engine_stream *)it);
    if (m->shared) {
        pthread_mutex_lock(&sphinx_lock);
        ps_share_close(m->shared);
        pthread_mutex_unlock(&sphinx_lock);
    }
    ps_pron_free(m->pron);
    ps_model_am_clear(&m->am);
    pool_deinit(&m->pool);
    pthread_mutex_destroy(&m->cmn_lock);
    hark_free(m->hmm);
    hark_free(m->lm);
    hark_free(m->dict);
    hark_free(m);
}

static int model_load(struct engine_model **out, const char *const *settings, char *errbuf,
                      size_t errbuf_size)
{
    *out = NULL;
    pthread_once(&log_once, log_setup);
    struct engine_model *m = hark_calloc(1, sizeof *m);
    if (!m)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    pthread_mutex_init(&m->cmn_lock, NULL);
    pool_init(&m->pool, 0);

    int64_t t0 = clock_mono_ns();
    int rc = apply_settings(m, settings, errbuf, errbuf_size);
    m->pool.max = (unsigned)m->pool_max;
    /* Everything ps_init will read is checked first: sphinxbase exit()s or
     * crashes on many malformed files. */
    if (!rc)
        rc = ps_model_check_hmm(m->hmm, &m->am, errbuf, errbuf_size);
    if (!rc)
        rc = ps_model_check_lm(m->lm, errbuf, errbuf_size);
    if (!rc)
        rc = ps_pron_load(&m->pron, m->dict, m->am.noisedict, &m->am, errbuf, errbuf_size);
    if (!rc && m->share) {
        pthread_mutex_lock(&sphinx_lock);
        cmd_ln_t *cfg = decoder_config(m, NULL, m->dict);
        rc = cfg ? ps_share_open(&m->shared, cfg, m->lm, m->dict, errbuf, errbuf_size)
                 : err_set(errbuf, errbuf_size, HARK_E_MODEL,
                           "pocketsphinx rejected the decoder configuration");
        cmd_ln_free_r(cfg);
        pthread_mutex_unlock(&sphinx_lock);
    }
    for (int i = 0; !rc && i < m->pool_min; i++) {
        struct engine_stream *s;
        rc = decoder_new(m, (unsigned)i + 1, &s, errbuf, errbuf_size);
        if (!rc)
            pool_add_idle(&m->pool, &s->item);
    }
    if (rc) {
        model_free(m);
        return rc;
    }
    size_t kept = 0, total = 0;
    if (m->shared)
        ps_share_dict_counts(m->shared, &kept, &total);
    LOG_INFO(NULL,
             "pocketsphinx: model %s (%zu words), second_pass=%s, pool %d..%d, language model "
             "%s, decoder dictionary %zu of %zu entries, loaded in %.0f ms",
             m->hmm, ps_pron_size(m->pron), pass_names[m->pass], m->pool_min, m->pool_max,
             m->shared ? "shared" : "per decoder", kept ? kept : ps_pron_size(m->pron),
             total ? total : ps_pron_size(m->pron), (clock_mono_ns() - t0) / 1e6);
    *out = m;
    return 0;
}

/* ------------------------------------------------------------ vocabulary */

struct vocab_plan {
    char *key;     /* sorted unique new words joined by ' '; "" = none */
    char **words;  /* n new words (lower case) */
    char **phones; /* their pronunciations */
    size_t n;
};

static void plan_clear(struct vocab_plan *p)
{
    for (size_t i = 0; i < p->n; i++) {
        hark_free(p->words[i]);
        hark_free(p->phones[i]);
    }
    hark_free(p->words);
    hark_free(p->phones);
    hark_free(p->key);
    memset(p, 0, sizeof *p);
}

static int cmp_word(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lower-cases one token and trims punctuation around it ("Zorbliq," ->
 * "zorbliq"); apostrophes and hyphens inside stay. */
static void normalize_token(char *t)
{
    size_t n = strlen(t), start = 0;
    while (start < n && !isalnum((unsigned char)t[start]))
        start++;
    while (n > start && !isalnum((unsigned char)t[n - 1]))
        n--;
    memmove(t, t + start, n - start);
    t[n - start] = '\0';
    for (char *c = t; *c; c++)
        *c = (char)tolower((unsigned char)*c);
}

static int plan_add(struct vocab_plan *p, size_t *cap, const char *word, const char *phones)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->words[i], word) == 0)
            return 0;
    if (p->n >= MAX_VOCAB_WORDS)
        return HARK_E_LIMIT;
    if (p->n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        char **w = hark_realloc(p->words, ncap * sizeof *w);
        if (!w)
            return HARK_E_NOMEM;
        p->words = w;
        char **ph = hark_realloc(p->phones, ncap * sizeof *ph);
        if (!ph)
            return HARK_E_NOMEM;
        p->phones = ph;
        *cap = ncap;
    }
    p->words[p->n] = hark_strdup(word);
    p->phones[p->n] = hark_strdup(phones);
    p->n++;
    if (!p->words[p->n - 1] || !p->phones[p->n - 1])
        return HARK_E_NOMEM;
    return 0;
}

/* The words of cfg->vocabulary the dictionary lacks, with pronunciations;
 * words none can be made for are logged and skipped. */
static int plan_vocab(const struct engine_model *m, const struct engine_stream_cfg *cfg,
                      struct vocab_plan *p, char *errbuf, size_t errbuf_size)
{
    size_t cap = 0;
    int rc = 0;
    memset(p, 0, sizeof *p);
    for (size_t i = 0; !rc && cfg->vocabulary && cfg->vocabulary[i]; i++) {
        char *phrase = hark_strdup(cfg->vocabulary[i]);
        if (!phrase) {
            rc = HARK_E_NOMEM;
            break;
        }
        char *save = NULL;
        for (char *t = strtok_r(phrase, " \t\r\n", &save); t && !rc;
             t = strtok_r(NULL, " \t\r\n", &save)) {
            normalize_token(t);
            if (!*t || ps_pron_lookup(m->pron, t))
                continue;
            char phones[MAX_PHONES_LEN] = "";
            int ok = ps_pron_derive(m->pron, t, phones, sizeof phones) == 0;
            /* The rule phones are the CMU set; a model without one of them
             * would make ps_add_word fail. */
            char copy[MAX_PHONES_LEN], *s2 = NULL;
            snprintf(copy, sizeof copy, "%s", phones);
            for (char *ph = ok ? strtok_r(copy, " ", &s2) : NULL; ph; ph = strtok_r(NULL, " ", &s2))
                if (!ps_model_am_has_phone(&m->am, ph))
                    ok = 0;
            if (!ok) {
                LOG_WARN(cfg->session_id,
                         "pocketsphinx: vocabulary word '%s' skipped: no pronunciation can be "
                         "made for it (only letters, apostrophes and inner hyphens are spelled)",
                         t);
                continue;
            }
            rc = plan_add(p, &cap, t, phones);
        }
        hark_free(phrase);
    }
    if (rc == HARK_E_LIMIT) {
        plan_clear(p);
        return err_set(errbuf, errbuf_size, HARK_E_LIMIT,
                       "vocabulary adds more than %d words the dictionary lacks", MAX_VOCAB_WORDS);
    }
    if (!rc) {
        /* Sort words and phones together by word. */
        for (size_t i = 1; i < p->n; i++)
            for (size_t j = i; j > 0 && cmp_word(&p->words[j - 1], &p->words[j]) > 0; j--) {
                char *w = p->words[j];
                p->words[j] = p->words[j - 1];
                p->words[j - 1] = w;
                char *ph = p->phones[j];
                p->phones[j] = p->phones[j - 1];
                p->phones[j - 1] = ph;
            }
        size_t len = 1;
        for (size_t i = 0; i < p->n; i++)
            len += strlen(p->words[i]) + 1;
        p->key = hark_malloc(len);
        if (!p->key) {
            rc = HARK_E_NOMEM;
        } else {
            p->key[0] = '\0';
            for (size_t i = 0; i < p->n; i++) {
                if (i)
                    strcat(p->key, " ");
                strcat(p->key, p->words[i]);
            }
        }
    }
    if (rc) {
        plan_clear(p);
        return err_set(errbuf, errbuf_size, rc, "out of memory");
    }
    return 0;
}

/* Adds the plan's words to a clean decoder. The search is rebuilt once, with
 * the last word (update=TRUE); that is the expensive part. ps_add_word adds
 * each word to every language model of the search, so a decoder on the
 * shared one first reads its own (the shared search, freed here, releases
 * its reference under sphinx_lock). */
static int add_words(struct engine_stream *s, const struct vocab_plan *p, char *errbuf,
                     size_t errbuf_size)
{
    int64_t t0 = clock_mono_ns();
    if (!s->own_dict) {
        /* ps_add_word writes into the decoder's dictionary. */
        pthread_mutex_lock(&sphinx_lock);
        int bad = ps_load_dict(s->ps, ps_share_dict(s->m->shared), NULL, NULL) < 0;
        pthread_mutex_unlock(&sphinx_lock);
        if (bad) {
            s->item.broken = 1;
            return err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                           "pocketsphinx could not give decoder %u its own dictionary", s->id);
        }
        s->own_dict = 1;
        LOG_DEBUG(s->sid, "pocketsphinx: decoder %u: own dictionary read in %.0f ms", s->id,
                  (clock_mono_ns() - t0) / 1e6);
    }
    if (!s->own_lm) {
        pthread_mutex_lock(&sphinx_lock);
        int bad =
            ps_set_lm_file(s->ps, "_default", s->m->lm) < 0 || ps_set_search(s->ps, "_default") < 0;
        pthread_mutex_unlock(&sphinx_lock);
        if (bad) {
            s->item.broken = 1;
            return err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                           "pocketsphinx could not give decoder %u its own language model '%s'",
                           s->id, s->m->lm);
        }
        s->own_lm = 1;
        LOG_DEBUG(s->sid, "pocketsphinx: decoder %u: own language model read in %.0f ms", s->id,
                  (clock_mono_ns() - t0) / 1e6);
    }
    for (size_t i = 0; i < p->n; i++) {
        int last = i + 1 == p->n;
        if (ps_add_word(s->ps, p->words[i], p->phones[i], last) < 0) {
            s->item.broken = 1;
            return err_set(errbuf, errbuf_size, HARK_E_ENGINE,
                           "pocketsphinx could not add vocabulary word '%s' (%s)", p->words[i],
                           p->phones[i]);
        }
        LOG_DEBUG(s->sid, "pocketsphinx: decoder %u: added '%s' as %s", s->id, p->words[i],
                  p->phones[i]);
    }
    char *key = hark_strdup(p->key);
    if (!key) {
        s->item.broken = 1;
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    }
    hark_free(s->vocab);
    s->item.key = s->vocab = key;
    LOG_DEBUG(s->sid, "pocketsphinx: decoder %u: %zu vocabulary word(s) added in %.0f ms", s->id,
              p->n, (clock_mono_ns() - t0) / 1e6);
    return 0;
}

/* ------------------------------------------------------------ pool */

static int language_ok(const char *lang)
{
    return !lang || !*lang || strcasecmp(lang, "en") == 0 || strcasecmp(lang, "en-us") == 0;
}

static void reset_stream(struct engine_stream *s, const struct engine_stream_cfg *cfg)
{
    snprintf(s->sid, sizeof s->sid, "%s", cfg->session_id ? cfg->session_id : "");
    s->in_utt = 0;
    s->holding = 0;
    s->cmn_fresh = !cmn_restore(s);
}

static int stream_acquire(struct engine_model *m, const struct engine_stream_cfg *cfg, int wait_ms,
                          struct engine_stream **out, char *errbuf, size_t errbuf_size)
{
    static const struct engine_stream_cfg no_cfg = {0};
    struct vocab_plan plan;
    struct engine_stream *s = NULL, *victim = NULL;
    int rc;
    *out = NULL;
    if (!cfg)
        cfg = &no_cfg;
    if (!language_ok(cfg->language))
        return err_set(errbuf, errbuf_size, HARK_E_UNSUPPORTED,
                       "pocketsphinx supports en-US only (got language '%s')", cfg->language);
    if (cfg->model && *cfg->model && strcmp(cfg->model, "default") != 0)
        return err_set(errbuf, errbuf_size, HARK_E_UNSUPPORTED,
                       "pocketsphinx has one model; model must be empty or 'default' (got '%s')",
                       cfg->model);
    rc = plan_vocab(m, cfg, &plan, errbuf, errbuf_size);
    if (rc)
        return rc;

    struct pool_grant g;
    if (pool_take(&m->pool, plan.key, wait_ms, &g)) {
        plan_clear(&plan);
        return err_set(errbuf, errbuf_size, HARK_E_BUSY,
                       "all %d pocketsphinx decoders are busy (pool_max); waited %d ms",
                       m->pool_max, wait_ms < 0 ? 0 : wait_ms);
    }
    s = (struct engine_stream *)g.item;
    victim = (struct engine_stream *)g.victim;
    int create = g.create;
    unsigned id = g.id;

    log_sid = cfg->session_id;
    if (victim) {
        LOG_DEBUG(cfg->session_id,
                  "pocketsphinx: decoder %u replaced: it carries vocabulary '%s', the session "
                  "needs '%s'",
                  victim->id, victim->vocab, plan.key);
        decoder_free(victim);
    }
    if (create) {
        rc = decoder_new(m, id, &s, errbuf, errbuf_size);
        if (rc) {
            pool_cancel(&m->pool);
            goto done;
        }
        pool_add(&m->pool, &s->item);
    }
    reset_stream(s, cfg);
    if (strcmp(s->vocab, plan.key) != 0) {
        rc = add_words(s, &plan, errbuf, errbuf_size);
        if (rc) {
            pool_drop(&m->pool, &s->item);
            decoder_free(s);
            s = NULL;
            goto done;
        }
    }
    *out = s;
done:
    log_sid = NULL;
    plan_clear(&plan);
    return rc;
}

static void stream_release(struct engine_stream *s)
{
    if (!s)
        return;
    struct engine_model *m = s->m;
    if (s->in_utt) {
        log_sid = s->sid;
        if (ps_end_utt(s->ps) < 0)
            s->item.broken = 1;
        s->in_utt = 0;
        s->holding = 0;
        log_sid = NULL;
    }
    if (pool_put(&m->pool, &s->item)) {
        LOG_WARN(s->sid, "pocketsphinx: decoder %u failed and was destroyed", s->id);
        decoder_free(s);
    }
}

/* ------------------------------------------------------------ utterances */

static int utt_start(struct engine_stream *s)
{
    if (s->in_utt) {
        LOG_WARN(s->sid, "pocketsphinx: utt_start while an utterance is open");
        return HARK_E_STATE;
    }
    int rc = 0;
    log_sid = s->sid;
    if (ps_start_stream(s->ps) < 0 || ps_start_utt(s->ps) < 0) {
        s->item.broken = 1;
        rc = HARK_E_ENGINE;
    } else {
        s->in_utt = 1;
        s->holding = s->cmn_fresh && s->hold != NULL;
        s->n_hold = 0;
    }
    log_sid = NULL;
    return rc;
}

static int16_t to_s16(float x)
{
    if (!(x == x)) /* NaN */
        return 0;
    float v = roundf(x * 32768.0f);
    if (v > 32767.0f)
        return 32767;
    if (v < -32768.0f)
        return -32768;
    return (int16_t)v;
}

static void account(struct engine_stream *s, int64_t cpu0, size_t samples)
{
    atomic_fetch_add(&s->m->decode_ns, (long long)(clock_thread_ns() - cpu0));
    if (samples)
        atomic_fetch_add(&s->m->audio_samples, (long long)samples);
}

static int utt_feed(struct engine_stream *s, const float *samples, size_t n)
{
    if (!s->in_utt)
        return HARK_E_STATE;
    if (n == 0)
        return 0;
    if (!samples)
        return HARK_E_INVAL;
    int64_t cpu0 = clock_thread_ns();
    int rc = 0;
    log_sid = s->sid;
    for (size_t off = 0; off < n;) {
        if (s->holding) {
            size_t k = CMN_HOLD_SAMPLES - s->n_hold;
            if (k > n - off)
                k = n - off;
            for (size_t i = 0; i < k; i++)
                s->hold[s->n_hold + i] = to_s16(samples[off + i]);
            s->n_hold += k;
            off += k;
            if (s->n_hold == CMN_HOLD_SAMPLES && (rc = hold_release(s)))
                break;
            continue;
        }
        size_t k = n - off < FEED_CHUNK ? n - off : FEED_CHUNK;
        for (size_t i = 0; i < k; i++)
            s->pcm[i] = to_s16(samples[off + i]);
        if (ps_process_raw(s->ps, s->pcm, k, FALSE, FALSE) < 0) {
            s->item.broken = 1;
            rc = HARK_E_ENGINE;
            break;
        }
        off += k;
    }
    log_sid = NULL;
    account(s, cpu0, n);
    return rc;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *np = hark_realloc(*p, ncap * elem);
    if (!np)
        return HARK_E_NOMEM;
    *p = np;
    *cap = ncap;
    return 0;
}

/* "been(2)" -> "been" (length of the base word). */
static size_t base_len(const char *w)
{
    size_t n = strlen(w);
    if (n > 3 && w[n - 1] == ')') {
        size_t i = n - 2;
        while (i > 0 && isdigit((unsigned char)w[i]))
            i--;
        if (w[i] == '(' && i > 0 && i < n - 2)
            return i;
    }
    return n;
}

/* Appends a word to s->text with a separating space. */
static int text_append(struct engine_stream *s, size_t *len, const char *w, size_t n)
{
    if (grow((void **)&s->text, &s->text_cap, *len + n + 2, 1))
        return HARK_E_NOMEM;
    if (*len)
        s->text[(*len)++] = ' ';
    memcpy(s->text + *len, w, n);
    *len += n;
    s->text[*len] = '\0';
    return 0;
}

static int empty_text(struct engine_stream *s)
{
    if (grow((void **)&s->text, &s->text_cap, 1, 1))
        return HARK_E_NOMEM;
    s->text[0] = '\0';
    return 0;
}

static int collect_words(struct engine_stream *s, ps_seg_t *seg, ps_lattice_t *dag, int partial,
                         struct engine_result *out);

/* The current best path's words, from the search's backpointer table (no
 * lattice: cheap enough every partial). They have times but no posteriors
 * (ps_seg_prob gives 0 here), so their confidence is 0: unknown. */
static int utt_partial(struct engine_stream *s, struct engine_result *out)
{
    memset(out, 0, sizeof *out);
    if (!s->in_utt)
        return HARK_E_STATE;
    int64_t cpu0 = clock_thread_ns();
    log_sid = s->sid;
    int rc = s->holding ? empty_text(s) : collect_words(s, ps_seg_iter(s->ps), NULL, 1, out);
    log_sid = NULL;
    account(s, cpu0, 0);
    if (rc)
        return rc;
    out->text = s->text;
    return 0;
}

/* A log posterior as a probability in [0, 1]. */
static float seg_confidence(logmath_t *lmath, int32 post)
{
    double p = logmath_exp(lmath, post);
    if (!(p == p) || p < 0)
        return 0.0f;
    return p > 1.0 ? 1.0f : (float)p;
}

/* second_pass=none: the fwdtree words have no posteriors (ps_seg_prob gives
 * 0, i.e. p = 1). The lattice of the utterance gets the same best-path
 * forward pass and posteriors the bestpath mode computes, and each word takes
 * the posterior of the lattice node with its word and start frame. */
static ps_lattice_t *posterior_lattice(struct engine_stream *s)
{
    ps_lattice_t *dag = ps_get_lattice(s->ps);
    if (!dag)
        return NULL;
    cmd_ln_t *cfg = ps_get_config(s->ps);
    /* The engine never switches searches, so the LM search is PocketSphinx's
     * default one ("_default", PS_DEFAULT_SEARCH in its private headers);
     * ps_get_search would leak a hash iterator in this version. */
    ngram_model_t *lm = ps_get_lm(s->ps, "_default");
    float32 ascale = 1.0f / (float32)cmd_ln_float_r(cfg, "-ascale");
    float32 lwf = (float32)(cmd_ln_float_r(cfg, "-bestpathlw") / cmd_ln_float_r(cfg, "-lw"));
    if (!lm || !ps_lattice_bestpath(dag, lm, lwf, ascale))
        return NULL;
    ps_lattice_posterior(dag, lm, ascale);
    return dag;
}

static int32 node_posterior(ps_lattice_t *dag, const char *word, int sf)
{
    int32 post = logmath_get_zero(ps_lattice_get_logmath(dag));
    for (ps_latnode_iter_t *it = ps_latnode_iter(dag); it; it = ps_latnode_iter_next(it)) {
        ps_latnode_t *node = ps_latnode_iter_node(it);
        int16 fef, lef;
        if (ps_latnode_times(node, &fef, &lef) == sf &&
            strcmp(ps_latnode_word(dag, node), word) == 0) {
            ps_latlink_t *best;
            post = ps_latnode_prob(dag, node, &best);
            ps_latnode_iter_free(it);
            break;
        }
    }
    return post;
}

/* Words of seg (fillers and pronunciation suffixes stripped) into out;
 * confidences from dag's posteriors, else from seg's, else 0 (partial). */
static int collect_words(struct engine_stream *s, ps_seg_t *seg, ps_lattice_t *dag, int partial,
                         struct engine_result *out)
{
    logmath_t *lmath = ps_get_logmath(s->ps);
    size_t len = 0, n = 0;
    double conf_sum = 0;
    int rc = empty_text(s);
    for (; seg && !rc; seg = ps_seg_next(seg)) {
        const char *w = ps_seg_word(seg);
        if (!w || ps_pron_is_filler(s->m->pron, w))
            continue;
        int sf, ef;
        int32 ascr, lscr, lback;
        ps_seg_frames(seg, &sf, &ef);
        rc = grow((void **)&s->words, &s->words_cap, n + 1, sizeof *s->words);
        if (!rc)
            rc = text_append(s, &len, w, base_len(w));
        if (rc)
            break;
        struct engine_word *ew = &s->words[n++];
        ew->start = sf < 0 ? 0.0 : sf / 100.0;
        ew->end = (ef + 1) / 100.0;
        if (ew->end < ew->start)
            ew->end = ew->start;
        if (partial)
            ew->confidence = 0.0f;
        else
            ew->confidence = seg_confidence(lmath, dag ? node_posterior(dag, w, sf)
                                                       : ps_seg_prob(seg, &ascr, &lscr, &lback));
        conf_sum += ew->confidence;
    }
    if (seg)
        ps_seg_free(seg);
    if (!rc)
        rc = grow((void **)&s->wtext, &s->wtext_cap, len + 1, 1);
    if (rc)
        return rc;
    /* Word strings: the text split at its spaces. */
    memcpy(s->wtext, s->text, len + 1);
    char *p = s->wtext;
    for (size_t i = 0; i < n; i++) {
        s->words[i].word = p;
        p += strcspn(p, " ");
        if (*p)
            *p++ = '\0';
    }
    out->text = s->text;
    out->words = n ? s->words : NULL;
    out->n_words = n;
    out->confidence = n ? (float)(conf_sum / (double)n) : 0.0f;
    return 0;
}

static int utt_end(struct engine_stream *s, struct engine_result *out)
{
    memset(out, 0, sizeof *out);
    if (!s->in_utt)
        return HARK_E_STATE;
    int64_t cpu0 = clock_thread_ns();
    int rc = 0;
    log_sid = s->sid;
    s->in_utt = 0;
    if (s->holding)
        rc = hold_release(s);
    if (rc || ps_end_utt(s->ps) < 0) {
        s->item.broken = 1;
        rc = HARK_E_ENGINE;
    } else {
        cmn_save(s);
        s->cmn_fresh = 0;
        ps_lattice_t *dag = s->m->pass == PASS_NONE ? posterior_lattice(s) : NULL;
        rc = collect_words(s, ps_seg_iter(s->ps), dag, 0, out);
    }
    log_sid = NULL;
    account(s, cpu0, 0);
    return rc;
}

static void stats(struct engine_model *m, struct hark_engine_stats *out)
{
    pool_counts(&m->pool, &out->streams_total, &out->streams_in_use);
    out->decode_seconds = (double)atomic_load(&m->decode_ns) / 1e9;
    out->audio_seconds = (double)atomic_load(&m->audio_samples) / ENGINE_RATE;
}

const struct engine_ops engine_pocketsphinx = {
    .abi = ENGINE_ABI,
    .name = "pocketsphinx",
    .description = "CMU PocketSphinx 5prealpha, US English, embedded",
    .languages = "en-US",
    .models = "default",
    .model_load = model_load,
    .model_free = model_free,
    .stream_acquire = stream_acquire,
    .stream_release = stream_release,
    .utt_start = utt_start,
    .utt_feed = utt_feed,
    .utt_partial = utt_partial,
    .utt_end = utt_end,
    .stats = stats,
};
