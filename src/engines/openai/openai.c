/*
 * Engine "openai": any OpenAI-compatible transcription server (speaches,
 * faster-whisper-server, vLLM, a whisper.cpp server, OpenAI, another hark).
 * hark's VAD cuts utterances; each final POSTs the utterance as a 16 kHz
 * 16-bit WAV, multipart, to {url}/audio/transcriptions with
 * response_format=verbose_json and timestamp_granularities[]=word (servers
 * that ignore them still send "text"; words then stay empty).
 *
 * Partials (partial_ms > 0, off by default): every partial_ms of utterance
 * audio the utterance so far is POSTed again (one request at a time per
 * session; a new one starts when the last answered and partial_ms more audio
 * came); its text is the partial. The cost is one request per partial_ms of
 * speech per session, and the provider transcribes the growing utterance
 * again each time: for an utterance of L seconds about L^2 / (2 partial_ms)
 * seconds of audio instead of L. Failed partial requests are not retried and
 * report nothing (the final's request decides about failover).
 *
 * Threads: one I/O thread per loaded model runs libcurl's multi interface
 * for every session's requests, so no worker thread waits on a socket
 * (ENGINE_ASYNC, engine.h). libcurl rather than a hand-written client: it
 * brings HTTPS, proxies (HTTPS_PROXY), keep-alive reuse across requests,
 * redirects and timeouts, all of which a provider in front of hark may need.
 * Every curl handle is touched by the I/O thread only; other threads queue
 * requests under `mu` and wake it with curl_multi_wakeup.
 *
 * A stream belongs to one session (acquired at its first utterance) and may
 * have several utterances in flight; completions queue on it in the order
 * they finish (the recognise stage restores utterance order). Failures are
 * retried `retries` times with backoff (250 ms, doubling) when they may be
 * passing: connection refused/reset, 5xx, 429. Not retried: a refused key
 * (401/403; another try gets the same answer), other 4xx, a timeout (it
 * already cost timeout_ms; the session's failover should start now).
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audio/wav.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "engines/engine.h"
#include "engines/netres.h"
#include "engines/openai/oa_reply.h"

#define BACKOFF_MS 250
/* Replies larger than this are refused (a 30 s verbose_json is ~10 KB). */
#define MAX_REPLY_BYTES (1u << 20)
/* Utterances one session may have in flight before submit refuses
 * (the recognise stage bounds it lower; this is the engine's own guard). */
#define MAX_INFLIGHT 64

struct oa_req {
    struct oa_req *next;
    struct engine_stream *s;
    uint64_t ticket;
    uint8_t *wav;
    size_t wav_len;
    int attempt;
    int partial;        /* a partial's request: no ticket, no completion */
    unsigned gen;       /* partial: the stream's utt_gen when it was made */
    int64_t not_before; /* monotonic ns; retries wait */
    int64_t t0;
    CURL *easy;
    curl_mime *mime;
    struct buf body;
    int too_big;
    char cerr[CURL_ERROR_SIZE];
};

struct engine_model {
    char *endpoint;             /* {url}/audio/transcriptions */
    struct curl_slist *headers; /* Authorization (with a key), no Expect: 100-continue */
    char *model;
    int timeout_ms, connect_timeout_ms, retries;
    int partial_ms; /* 0 = no partials */

    CURLM *multi;
    pthread_t th;
    int th_started;

    pthread_mutex_t mu;     /* guards everything below, and streams' shared fields */
    pthread_cond_t done_cv; /* a completion was queued (utt_wait) */
    struct oa_req *queue;   /* waiting to be started (new, or a retry's backoff) */
    struct oa_req *active;  /* in the multi handle (I/O thread's list) */
    int stop;
    unsigned streams_total, streams_in_use;
    double audio_seconds, request_seconds, partial_audio_seconds;
};

struct engine_stream {
    struct engine_model *m;
    char language[16];
    char sid[64];
    void (*notify)(void *);
    void *notify_user;
    /* the open utterance (session thread only) */
    int16_t *pcm;
    size_t n, cap;
    /* guarded by m->mu */
    struct netres_queue done;
    unsigned inflight;
    int released;
    unsigned utt_gen;   /* +1 at each utterance's start and end */
    int partial_busy;   /* a partial's request is out */
    char *partial_text; /* the newest partial of the open utterance */
    /* last utt_poll's storage (session thread only) */
    struct netres_done *cur;
    size_t partial_at; /* n at the last partial's request (session thread) */
    char *partial;     /* utt_partial's storage (session thread) */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init_once(void)
{
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

static void stream_free(struct engine_stream *s)
{
    netres_clear(&s->done);
    netres_done_free(s->cur);
    hark_free(s->pcm);
    hark_free(s->partial_text);
    hark_free(s->partial);
    hark_free(s);
}

static void req_free(struct oa_req *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    if (r->mime)
        curl_mime_free(r->mime);
    buf_deinit(&r->body);
    hark_free(r->wav);
    hark_free(r);
}

/* ------------------------------------------------------------ I/O thread */

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct oa_req *r = user;
    size_t len = size * n;
    if (r->body.len + len > MAX_REPLY_BYTES) {
        r->too_big = 1;
        return 0; /* aborts the transfer */
    }
    buf_append(&r->body, p, len);
    return r->body.oom ? 0 : len;
}

static int req_start(struct engine_model *m, struct oa_req *r)
{
    buf_reset(&r->body);
    r->too_big = 0;
    r->cerr[0] = 0;
    if (!r->easy && !(r->easy = curl_easy_init()))
        return HARK_E_NOMEM;
    if (!r->mime) {
        if (!(r->mime = curl_mime_init(r->easy)))
            return HARK_E_NOMEM;
        curl_mimepart *p = curl_mime_addpart(r->mime);
        curl_mime_name(p, "file");
        curl_mime_filename(p, "audio.wav");
        curl_mime_type(p, "audio/wav");
        curl_mime_data(p, (const char *)r->wav, r->wav_len);
        static const char *const fixed[][2] = {
            {"response_format", "verbose_json"},
            {"timestamp_granularities[]", "word"},
        };
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            p = curl_mime_addpart(r->mime);
            curl_mime_name(p, fixed[i][0]);
            curl_mime_data(p, fixed[i][1], CURL_ZERO_TERMINATED);
        }
        p = curl_mime_addpart(r->mime);
        curl_mime_name(p, "model");
        curl_mime_data(p, m->model, CURL_ZERO_TERMINATED);
        if (r->s->language[0]) {
            p = curl_mime_addpart(r->mime);
            curl_mime_name(p, "language");
            curl_mime_data(p, r->s->language, CURL_ZERO_TERMINATED);
        }
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, m->endpoint);
    curl_easy_setopt(e, CURLOPT_MIMEPOST, r->mime);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, m->headers); /* not copied: lives with the model */
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->cerr);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)m->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "hark");
    r->t0 = clock_mono_ns();
    return curl_multi_add_handle(m->multi, e) == CURLM_OK ? 0 : HARK_E_INTERNAL;
}

/* Under m->mu: queue the outcome on its stream and tell the session. */
static void complete(struct engine_model *m, struct oa_req *r, int err, const char *reason,
                     const char *msg, struct oa_reply *reply)
{
    struct engine_stream *s = r->s;
    s->inflight--;
    m->request_seconds += (double)(clock_mono_ns() - r->t0) / 1e9;
    if (r->partial) {
        s->partial_busy = 0;
        if (!s->released && !err && reply && r->gen == s->utt_gen) {
            hark_free(s->partial_text);
            s->partial_text = reply->text; /* moves */
            reply->text = NULL;
        }
        if (reply)
            oa_reply_clear(reply);
        if (s->released && !s->inflight)
            stream_free(s);
        return;
    }
    if (s->released) {
        if (reply)
            oa_reply_clear(reply);
        if (!s->inflight)
            stream_free(s);
        return;
    }
    struct netres_done *d = hark_calloc(1, sizeof *d);
    if (!d) {
        /* The session waits for this ticket: it must hear of it. Reuse
         * nothing; it will time out in the recognise stage's bound. */
        LOG_ERROR(s->sid, "openai: out of memory queueing a result");
        if (reply)
            oa_reply_clear(reply);
        return;
    }
    d->ticket = r->ticket;
    d->err = err;
    d->reason = reason;
    if (msg)
        snprintf(d->message, sizeof d->message, "%s", msg);
    if (reply) { /* moves */
        d->text = reply->text;
        d->words = reply->words;
        d->n_words = reply->n_words;
    }
    d->confidence = 1.0f;
    netres_push(&s->done, d);
    pthread_cond_broadcast(&m->done_cv);
    if (s->notify)
        s->notify(s->notify_user);
}

static void finished(struct engine_model *m, struct oa_req *r, CURLcode cc)
{
    long status = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(m->multi, r->easy);
    char msg[256];
    int err = 0, retry = 0;
    const char *reason = NULL;
    struct oa_reply reply = {0};
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        err = HARK_E_TIMEOUT, reason = "timeout";
        snprintf(msg, sizeof msg, "provider did not answer within %d ms", m->timeout_ms);
    } else if (cc != CURLE_OK && !r->too_big) {
        err = HARK_E_PROVIDER, reason = "unreachable", retry = 1;
        snprintf(msg, sizeof msg, "provider unreachable: %.200s",
                 r->cerr[0] ? r->cerr : curl_easy_strerror(cc));
    } else if (r->too_big) {
        err = HARK_E_PROVIDER, reason = "bad_reply";
        snprintf(msg, sizeof msg, "provider reply larger than %u bytes", MAX_REPLY_BYTES);
    } else if (status == 401 || status == 403) {
        err = HARK_E_AUTH, reason = "auth";
        snprintf(msg, sizeof msg, "provider refused the key (HTTP %ld)", status);
    } else if (status != 200) {
        err = HARK_E_PROVIDER, reason = "http_status";
        retry = status >= 500 || status == 429;
        char detail[160] = "";
        struct oa_reply tmp;
        oa_reply_parse(&tmp, r->body.data ? r->body.data : "", r->body.len, detail, sizeof detail);
        oa_reply_clear(&tmp);
        snprintf(msg, sizeof msg, "provider answered HTTP %ld%s%.160s", status,
                 detail[0] ? ": " : "", detail);
    } else {
        char detail[200];
        int rc = oa_reply_parse(&reply, r->body.data ? r->body.data : "", r->body.len, detail,
                                sizeof detail);
        if (rc) {
            err = rc == HARK_E_NOMEM ? rc : HARK_E_PROVIDER, reason = "bad_reply";
            snprintf(msg, sizeof msg, "provider reply unusable: %s", detail);
        }
    }
    pthread_mutex_lock(&m->mu);
    if (err && retry && !r->partial && r->attempt < m->retries && !r->s->released && !m->stop) {
        LOG_INFO(r->s->sid, "openai: %s; retry %d of %d", msg, r->attempt + 1, m->retries);
        r->not_before = clock_mono_ns() + ((int64_t)BACKOFF_MS << r->attempt) * 1000000;
        r->attempt++;
        r->next = m->queue;
        m->queue = r;
        pthread_mutex_unlock(&m->mu);
        return;
    }
    if (err && r->partial)
        LOG_DEBUG(r->s->sid, "openai: partial: %s", msg);
    else if (err)
        LOG_INFO(r->s->sid, "openai: %s", msg);
    complete(m, r, err, reason, err ? msg : NULL, err ? NULL : &reply);
    pthread_mutex_unlock(&m->mu);
    req_free(r);
}

static void unlink_active(struct engine_model *m, struct oa_req *r)
{
    for (struct oa_req **pp = &m->active; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

static void *io_main(void *arg)
{
    struct engine_model *m = arg;
    pthread_mutex_lock(&m->mu);
    while (!m->stop) {
        /* Start what is due; drop what belongs to released streams. */
        int64_t now = clock_mono_ns(), next_due = now + 1000000000LL;
        for (struct oa_req **pp = &m->queue; *pp;) {
            struct oa_req *r = *pp;
            if (!r->s->released && r->not_before > now) {
                if (r->not_before < next_due)
                    next_due = r->not_before;
                pp = &r->next;
                continue;
            }
            *pp = r->next;
            if (r->s->released || req_start(m, r)) {
                if (!r->s->released)
                    complete(m, r, HARK_E_INTERNAL, "unreachable", "could not start a request",
                             NULL);
                else
                    complete(m, r, 0, NULL, NULL, NULL);
                req_free(r);
                continue;
            }
            r->next = m->active;
            m->active = r;
        }
        for (struct oa_req *r = m->active, *n; r; r = n) {
            n = r->next;
            if (r->s->released) {
                curl_multi_remove_handle(m->multi, r->easy);
                unlink_active(m, r);
                complete(m, r, 0, NULL, NULL, NULL);
                req_free(r);
            }
        }
        pthread_mutex_unlock(&m->mu);

        int running = 0;
        curl_multi_perform(m->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(m->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            struct oa_req *r = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            CURLcode cc = msg->data.result;
            pthread_mutex_lock(&m->mu);
            unlink_active(m, r);
            pthread_mutex_unlock(&m->mu);
            finished(m, r, cc);
        }
        int wait_ms = (int)((next_due - clock_mono_ns()) / 1000000);
        curl_multi_poll(m->multi, NULL, 0, wait_ms < 1 ? 1 : wait_ms, NULL);
        pthread_mutex_lock(&m->mu);
    }
    pthread_mutex_unlock(&m->mu);
    return NULL;
}

/* ------------------------------------------------------------ model */

static const char *const setting_names =
    "url, key, model, timeout_ms, connect_timeout_ms, retries, partial_ms";

static void model_free(struct engine_model *m)
{
    if (!m)
        return;
    if (m->th_started) {
        pthread_mutex_lock(&m->mu);
        m->stop = 1;
        pthread_mutex_unlock(&m->mu);
        curl_multi_wakeup(m->multi);
        pthread_join(m->th, NULL);
    }
    /* Sessions are gone (hark_engine_destroy's contract): only requests of
     * released streams can be left. */
    for (struct oa_req *lists[2] = {m->queue, m->active}, **l = lists; l < lists + 2; l++)
        for (struct oa_req *r = *l, *n; r; r = n) {
            n = r->next;
            if (r->easy && l == lists + 1)
                curl_multi_remove_handle(m->multi, r->easy);
            complete(m, r, 0, NULL, NULL, NULL);
            req_free(r);
        }
    if (m->multi)
        curl_multi_cleanup(m->multi);
    hark_free(m->endpoint);
    curl_slist_free_all(m->headers);
    hark_free(m->model);
    pthread_cond_destroy(&m->done_cv);
    pthread_mutex_destroy(&m->mu);
    hark_free(m);
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < lo || x > hi)
        return -1;
    *out = (int)x;
    return 0;
}

static int model_load(struct engine_model **out, const char *const *settings, char *errbuf,
                      size_t errbuf_size)
{
    *out = NULL;
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ok)
        return err_set(errbuf, errbuf_size, HARK_E_ENGINE, "openai: libcurl failed to start");
    struct engine_model *m = hark_calloc(1, sizeof *m);
    if (!m)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&m->done_cv, &attr);
    pthread_condattr_destroy(&attr);
    m->timeout_ms = 30000;
    m->connect_timeout_ms = 3000;
    m->retries = 2;
    const char *url = "", *key = "", *model = "whisper-1";
    int rc = 0;
    for (int i = 0; settings && settings[i] && !rc; i += 2) {
        const char *name = settings[i], *v = settings[i + 1];
        if (!v)
            rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION, "openai: setting %s has no value",
                         name);
        else if (!strcmp(name, "url"))
            url = v;
        else if (!strcmp(name, "key"))
            key = v;
        else if (!strcmp(name, "model"))
            model = v[0] ? v : model;
        else if (!strcmp(name, "partial_ms")) {
            if (parse_int(v, 0, 600000, &m->partial_ms) || (m->partial_ms && m->partial_ms < 200))
                rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                             "openai setting partial_ms='%s': 0 (off) or 200..600000", v);
        } else if (!strcmp(name, "timeout_ms") || !strcmp(name, "connect_timeout_ms") ||
                   !strcmp(name, "retries")) {
            int *dst = name[0] == 't'   ? &m->timeout_ms
                       : name[0] == 'c' ? &m->connect_timeout_ms
                                        : &m->retries;
            if (parse_int(v, name[0] == 'r' ? 0 : 100, name[0] == 'r' ? 10 : 600000, dst))
                rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                             "openai setting %s='%s' is out of range", name, v);
        } else if (strcmp(name, "pool_min") && strcmp(name, "pool_max"))
            rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                         "unknown openai setting '%s' (known: %s)", name, setting_names);
    }
    if (!rc && strncasecmp(url, "http://", 7) && strncasecmp(url, "https://", 8))
        rc = err_set(errbuf, errbuf_size, HARK_E_BAD_OPTION,
                     "openai: url '%s' must start with http:// or https:// (e.g. "
                     "http://127.0.0.1:8000/v1; --openai-url)",
                     url);
    if (rc) {
        model_free(m);
        return rc;
    }
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        ul--;
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "%.*s/audio/transcriptions", (int)ul, url);
    m->endpoint = b.data ? hark_strdup(b.data) : NULL;
    buf_reset(&b);
    /* Without "Expect:" curl waits up to 1 s for a 100-continue before
     * sending a body over 1 MiB (an utterance of 33 s). */
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    if (h && key[0]) {
        buf_printf(&b, "Authorization: Bearer %s", key);
        struct curl_slist *h2 = b.data ? curl_slist_append(h, b.data) : NULL;
        if (!h2)
            curl_slist_free_all(h);
        h = h2;
    }
    m->headers = h;
    buf_deinit(&b);
    m->model = hark_strdup(model);
    m->multi = curl_multi_init();
    if (!m->endpoint || !m->model || !m->multi || !m->headers) {
        model_free(m);
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    }
    /* Keep connections to the provider open between utterances. */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, 64L);
    if (pthread_create(&m->th, NULL, io_main, m)) {
        model_free(m);
        return err_set(errbuf, errbuf_size, HARK_E_INTERNAL, "openai: cannot start its thread");
    }
    m->th_started = 1;
    LOG_INFO(NULL, "openai: %s, model %s, timeout %d ms, %d retries, partials %s%s", m->endpoint,
             m->model, m->timeout_ms, m->retries, m->partial_ms ? "on" : "off",
             key[0] ? ", with a key" : "");
    *out = m;
    return 0;
}

/* ------------------------------------------------------------ streams */

static int stream_acquire(struct engine_model *m, const struct engine_stream_cfg *cfg, int wait_ms,
                          struct engine_stream **out, char *errbuf, size_t errbuf_size)
{
    (void)wait_ms; /* nothing pooled: a stream is a buffer and a queue */
    struct engine_stream *s = hark_calloc(1, sizeof *s);
    if (!s)
        return err_set(errbuf, errbuf_size, HARK_E_NOMEM, "out of memory");
    s->m = m;
    /* OpenAI takes ISO-639-1 ("en"), not a BCP-47 tag. */
    if (cfg->language)
        for (size_t i = 0; i < 2 && cfg->language[i] && cfg->language[i] != '-'; i++)
            s->language[i] = cfg->language[i];
    snprintf(s->sid, sizeof s->sid, "%s", cfg->session_id ? cfg->session_id : "");
    s->notify = cfg->notify;
    s->notify_user = cfg->notify_user;
    pthread_mutex_lock(&m->mu);
    m->streams_total++;
    m->streams_in_use++;
    pthread_mutex_unlock(&m->mu);
    *out = s;
    return 0;
}

static void stream_release(struct engine_stream *s)
{
    struct engine_model *m = s->m;
    pthread_mutex_lock(&m->mu);
    m->streams_in_use--;
    s->released = 1;
    int free_now = !s->inflight;
    pthread_mutex_unlock(&m->mu);
    if (free_now)
        stream_free(s);
    else
        curl_multi_wakeup(m->multi); /* drops its requests, then frees it */
}

/* A new utterance, or the end of one: partials still out are of the old. */
static void partial_reset(struct engine_stream *s)
{
    pthread_mutex_lock(&s->m->mu);
    s->utt_gen++;
    hark_free(s->partial_text);
    s->partial_text = NULL;
    pthread_mutex_unlock(&s->m->mu);
    s->partial_at = 0;
}

static int utt_start(struct engine_stream *s)
{
    s->n = 0;
    partial_reset(s);
    return 0;
}

static struct oa_req *make_req(struct engine_stream *s, uint64_t ticket)
{
    struct oa_req *r = hark_calloc(1, sizeof *r);
    size_t bytes = s->n * 2;
    if (!r || !(r->wav = hark_malloc(44 + bytes))) {
        hark_free(r);
        return NULL;
    }
    wav_write_header(r->wav, PCM_S16LE, ENGINE_RATE, 1, (uint32_t)bytes);
    memcpy(r->wav + 44, s->pcm, bytes); /* little-endian host (x86-64, arm64) */
    r->wav_len = 44 + bytes;
    r->s = s;
    r->ticket = ticket;
    buf_init(&r->body);
    return r;
}

/* Every partial_ms of audio, one request at a time: the utterance so far. */
static void maybe_request_partial(struct engine_stream *s)
{
    struct engine_model *m = s->m;
    if (!m->partial_ms || s->n - s->partial_at < (size_t)m->partial_ms * (ENGINE_RATE / 1000))
        return;
    pthread_mutex_lock(&m->mu);
    int busy = s->partial_busy || s->inflight >= MAX_INFLIGHT;
    pthread_mutex_unlock(&m->mu);
    if (busy)
        return;
    struct oa_req *r = make_req(s, 0);
    if (!r)
        return; /* no partial this time; the final does not depend on it */
    r->partial = 1;
    s->partial_at = s->n;
    pthread_mutex_lock(&m->mu);
    r->gen = s->utt_gen;
    s->partial_busy = 1;
    s->inflight++;
    m->partial_audio_seconds += (double)s->n / ENGINE_RATE;
    r->next = m->queue;
    m->queue = r;
    pthread_mutex_unlock(&m->mu);
    curl_multi_wakeup(m->multi);
}

static int utt_feed(struct engine_stream *s, const float *x, size_t n)
{
    if (mem_grow(&s->pcm, &s->cap, s->n + n, sizeof *s->pcm))
        return HARK_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        float v = x[i] * 32768.0f;
        s->pcm[s->n++] = (int16_t)(v > 32767.0f ? 32767 : v < -32768.0f ? -32768 : v);
    }
    maybe_request_partial(s);
    return 0;
}

static int utt_partial(struct engine_stream *s, struct engine_result *out)
{
    hark_free(s->partial);
    pthread_mutex_lock(&s->m->mu);
    s->partial = s->partial_text ? hark_strdup(s->partial_text) : NULL;
    pthread_mutex_unlock(&s->m->mu);
    *out = (struct engine_result){.text = s->partial ? s->partial : "", .confidence = 1.0f};
    return 0;
}

static int utt_submit(struct engine_stream *s, uint64_t ticket)
{
    struct engine_model *m = s->m;
    partial_reset(s);
    if (s->n < ENGINE_RATE / 10) {
        /* Under 100 ms: OpenAI refuses it ("audio too short"), and there
         * is no word in it to lose. An empty result, no request. */
        struct netres_done *d = hark_calloc(1, sizeof *d);
        if (!d)
            return HARK_E_NOMEM;
        d->ticket = ticket;
        d->confidence = 1.0f;
        pthread_mutex_lock(&m->mu);
        netres_push(&s->done, d);
        pthread_mutex_unlock(&m->mu);
        s->n = 0;
        if (s->notify)
            s->notify(s->notify_user);
        return 0;
    }
    struct oa_req *r = make_req(s, ticket);
    if (!r)
        return HARK_E_NOMEM;
    pthread_mutex_lock(&m->mu);
    if (s->inflight >= MAX_INFLIGHT) {
        pthread_mutex_unlock(&m->mu);
        req_free(r);
        return HARK_E_LIMIT;
    }
    s->inflight++;
    m->audio_seconds += (double)s->n / ENGINE_RATE;
    r->next = m->queue;
    m->queue = r;
    pthread_mutex_unlock(&m->mu);
    s->n = 0;
    curl_multi_wakeup(m->multi);
    return 0;
}

static int utt_poll(struct engine_stream *s, struct engine_done *out)
{
    return netres_poll(&s->m->mu, &s->done, &s->cur, out);
}

static void utt_wait(struct engine_stream *s, int timeout_ms)
{
    netres_wait(&s->m->mu, &s->m->done_cv, &s->done, &s->inflight, timeout_ms);
}

static void stats(struct engine_model *m, struct hark_engine_stats *out)
{
    pthread_mutex_lock(&m->mu);
    out->streams_total = m->streams_total;
    out->streams_in_use = m->streams_in_use;
    out->decode_seconds = m->request_seconds;
    out->audio_seconds = m->audio_seconds;
    pthread_mutex_unlock(&m->mu);
}

const struct engine_ops engine_openai = {
    .abi = ENGINE_ABI,
    .name = "openai",
    .description = "any OpenAI-compatible POST /audio/transcriptions server (--openai-url)",
    /* The server decides; hark passes the language on. */
    .languages = "en,en-US,en-GB,de,fr,es,it,pt,nl,pl,ru,uk,tr,ar,hi,ja,ko,zh,sv,da,fi,no,cs,el,he",
    .models = "",
    .model_load = model_load,
    .model_free = model_free,
    .stream_acquire = stream_acquire,
    .stream_release = stream_release,
    .utt_start = utt_start,
    .utt_feed = utt_feed,
    .utt_partial = utt_partial,
    .utt_end = NULL,
    .stats = stats,
    .flags = ENGINE_ASYNC,
    .utt_submit = utt_submit,
    .utt_poll = utt_poll,
    .utt_wait = utt_wait,
};
