/*
 * Pre-recorded (batch) transcription over plain HTTP POST:
 *
 *   POST /v1/listen[/]             Deepgram pre-recorded: the body is the audio
 *                                  (WAV, or headerless with ?encoding=&sample_rate=)
 *   POST /v1/audio/transcriptions  OpenAI-compatible multipart/form-data (file,
 *                                  model, language, response_format, ...)
 *
 * The body streams into a session on the shared worker pool as it arrives,
 * so a large upload never sits in memory: each body chunk goes to the chan
 * (coalesced to POST_BYTES), and reading pauses (lws_rx_flow_control) while
 * more than half the session buffer waits for a worker. Workers give every
 * chan at most ~1 s of audio per turn and serve sessions at real-time pace
 * before bulk ones (an upload runs far ahead of the clock), so live sessions
 * on the same pool wait at most one slice behind a batch job. At the end of
 * the body the session is closed; its finals (rendered into compact binary
 * records on the worker thread) are collected on the wake-up drain, and the
 * response is written from HTTP_WRITEABLE in chunks once the session is done.
 *
 * Errors before the body (missing or too large Content-Length, bad query,
 * busy) are answered at once; errors found in the body (undecodable audio,
 * bad form fields) are answered after the body was read to its end, so the
 * connection stays usable. The client hanging up releases everything
 * (CLOSED_HTTP). Service thread only, except render().
 */
#include <libwebsockets.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/proto/dg.h"
#include "front/ws/chunked.h"
#include "front/ws/wsfe.h"
#include "host/admit.h"

#define POST_BYTES 32768  /* body bytes coalesced into one worker job */
#define TX_CHUNK 65536    /* response bytes per HTTP_WRITEABLE */
#define SPA_STORAGE 65536 /* multipart: form fields + one chunk of the file part */
#define RETRY_AFTER "2"
#define DEFAULT_MAX_BODY ((size_t)100 << 20)
#define DEFAULT_UTT_SPLIT 0.8 /* Deepgram's default silence between utterances, s */
#define BODY_TIMEOUT 10 /* s without body bytes (while reading) before the upload is dropped */
#ifdef POLLRDHUP
#define RDHUP POLLRDHUP
#else
#define RDHUP 0x2000 /* Linux; <poll.h> only names it with _GNU_SOURCE */
#endif

enum kind { K_DEEPGRAM, K_OPENAI };
enum phase { P_RECEIVING, P_PROCESSING, P_RESPONDING };

/* OpenAI form fields, in lws_spa order. */
enum {
    F_MODEL,
    F_LANGUAGE,
    F_FORMAT,
    F_PROMPT,
    F_TEMPERATURE,
    F_GRANULARITY,
    F_STREAM,
    F_FILE,
    F_COUNT
};
static const char *const form_fields[F_COUNT] = {
    "model",  "language", "response_format", "prompt", "temperature", "timestamp_granularities[]",
    "stream", "file"};

enum oa_format { OA_JSON, OA_TEXT, OA_VERBOSE, OA_SRT, OA_VTT };
static const char *const oa_formats[] = {"json", "text", "verbose_json", "srt", "vtt"};

struct bword {
    size_t text; /* offset in strs */
    double start, end;
    float conf;
};

struct bseg {
    size_t text; /* offset in strs */
    double start, end;
    float conf;
    size_t w0, nw; /* its words in words[] */
};

struct batch {
    struct batch *prev, *next;
    struct wsfe *fe;
    struct lws *wsi;
    struct http_pss *pss;
    enum kind kind;
    enum phase phase;
    struct chan *chan;
    int key_index;           /* API key counted against, -1 = none */
    int counted;             /* counted in the front end's sessions */
    struct admit_slot *slot; /* host/admit.h: counted against max-sessions */
    int paused;
    int64_t paused_since, paused_ns; /* reading paused by us: not the client's slowness */
    int close_after;                 /* answered before the body ended: close after it */
    char peer[48];                   /* counted against max_connections_per_ip */
    int64_t gone_checked;            /* last client_gone() while paused */
    int close_wanted;                /* body complete: close the session once pend is posted */
    int close_posted;
    struct buf pend;                   /* body bytes not yet handed to the chan */
    uint64_t content_length, received; /* received: body bytes (decoded, when chunked) */
    int chunked;                       /* Transfer-Encoding: chunked (no Content-Length) */
    struct chunked ck;
    size_t max_body;
    int64_t t0;
    EVP_MD_CTX *sha; /* Deepgram: metadata.sha256 of the body */
    char request_id[37];
    char created[32];
    struct dg_params dg;
    double utt_split;

    /* OpenAI */
    struct lws_spa *spa;
    int file_parts;
    int form_failed;
    enum oa_format format;
    int stream;             /* stream=true: Server-Sent Events */
    char language_used[36]; /* the session's language option */
    double temperature;

    /* results */
    struct bseg *segs;
    size_t n_segs, cap_segs;
    struct bword *words;
    size_t n_words, cap_words;
    struct buf strs; /* NUL-separated texts */
    double audio_seconds;
    int closed; /* the session's CLOSED record arrived */

    /* the first error: answered instead of results */
    unsigned err_status;
    int err;
    char err_param[40];
    char err_msg[600];

    /* response */
    unsigned status;
    const char *mime;
    struct buf resp;
    size_t resp_off;
    int hdr_sent;
};

/* ------------------------------------------------------------ worker side */

/* Records rendered on the worker thread (chan_msg payloads), parsed on the
 * service thread. Only what a batch response needs: finals with words, the
 * first error, the end. Fields are memcpy'd, so alignment does not matter. */
enum { REC_FINAL = 'F', REC_ERROR = 'E', REC_CLOSED = 'C' };
struct rec_final {
    double start, end;
    float conf;
    uint32_t n_words, text_len;
};
struct rec_word {
    double start, end;
    float conf;
    uint32_t len;
};

static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    struct wsfe *fe = user;
    char tag;
    switch (ev->type) {
    case HARK_EVENT_TRANSCRIPT: {
        if (!ev->is_final || !ev->text || !ev->text[0])
            return;
        tag = REC_FINAL;
        struct rec_final h = {ev->start, ev->end, ev->confidence,
                              (uint32_t)(ev->words ? ev->n_words : 0), (uint32_t)strlen(ev->text)};
        buf_append(out, &tag, 1);
        buf_append(out, &h, sizeof h);
        buf_append(out, ev->text, h.text_len);
        for (uint32_t i = 0; i < h.n_words; i++) {
            const struct hark_word *w = &ev->words[i];
            struct rec_word rw = {w->start, w->end, w->confidence, (uint32_t)strlen(w->word)};
            buf_append(out, &rw, sizeof rw);
            buf_append(out, w->word, rw.len);
        }
        return;
    }
    case HARK_EVENT_ERROR: {
        wsfe_count_event(fe, ev);
        tag = REC_ERROR;
        int32_t code = ev->code;
        const char *msg = ev->message ? ev->message : "";
        uint32_t len = (uint32_t)strlen(msg);
        buf_append(out, &tag, 1);
        buf_append(out, &code, sizeof code);
        buf_append(out, &len, sizeof len);
        buf_append(out, msg, len);
        if (ev->code == HARK_E_BAD_AUDIO || ev->code == HARK_E_UNSUPPORTED)
            *flags |= MSG_FATAL;
        return;
    }
    case HARK_EVENT_CLOSED:
        tag = REC_CLOSED;
        buf_append(out, &tag, 1);
        buf_append(out, &ev->audio_seconds, sizeof ev->audio_seconds);
        return;
    default:
        return;
    }
}

/* ------------------------------------------------------------ helpers */

static const char *kind_name(enum kind k)
{
    return k == K_DEEPGRAM ? "listen" : "openai";
}

static unsigned status_for(int err)
{
    switch (err) {
    case HARK_E_BAD_AUDIO:
    case HARK_E_UNSUPPORTED:
    case HARK_E_BAD_OPTION:
    case HARK_E_INVAL:
    case HARK_E_PROTOCOL:
        return HTTP_STATUS_BAD_REQUEST;
    case HARK_E_AUTH:
        return HTTP_STATUS_UNAUTHORIZED;
    case HARK_E_BUSY:
        return HTTP_STATUS_SERVICE_UNAVAILABLE;
    default:
        return HTTP_STATUS_INTERNAL_SERVER_ERROR;
    }
}

static const char *dg_err_code(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "INVALID_AUTH";
    case 411:
        return "LENGTH_REQUIRED";
    case 408:
        return "REQUEST_TIMEOUT";
    case 413:
        return "PAYLOAD_TOO_LARGE";
    case 429:
        return "TOO_MANY_REQUESTS";
    case 503:
        return "SERVICE_UNAVAILABLE";
    default:
        return "INTERNAL_SERVER_ERROR";
    }
}

/* The endpoint's error body: Deepgram {"err_code","err_msg","request_id"} or
 * OpenAI {"error":{"message","type","param","code"}}. */
static void render_error(struct buf *o, enum kind kind, unsigned status, int err, const char *param,
                         const char *msg, const char *request_id)
{
    buf_putc(o, '{');
    if (kind == K_DEEPGRAM) {
        buf_json_key(o, "err_code");
        buf_json_str(o, dg_err_code(status));
        buf_json_key(o, "err_msg");
        buf_json_str(o, msg);
        buf_json_key(o, "request_id");
        buf_json_str(o, request_id);
    } else {
        buf_json_key(o, "error");
        buf_putc(o, '{');
        buf_json_key(o, "message");
        buf_json_str(o, msg);
        buf_json_key(o, "type");
        buf_json_str(o, status >= 500 ? "server_error" : "invalid_request_error");
        buf_json_key(o, "param");
        if (param && param[0])
            buf_json_str(o, param);
        else
            buf_puts(o, "null");
        buf_json_key(o, "code");
        if (err == HARK_E_AUTH)
            buf_json_str(o, "invalid_api_key"); /* OpenAI's code for it */
        else if (err)
            buf_json_str(o, hark_err_code(err));
        else
            buf_puts(o, "null");
        buf_putc(o, '}');
    }
    buf_putc(o, '}');
}

/* An error answered right away (before the body; the request has no batch
 * state). Returns what the HTTP callback must return. */
static int respond_now(struct lws *wsi, enum kind kind, unsigned status, int err, const char *param,
                       const char *msg, const char *request_id)
{
    struct buf o;
    buf_init(&o);
    render_error(&o, kind, status, err, param, msg, request_id);
    const char *extra[7];
    int k = 0;
    if (kind == K_DEEPGRAM) {
        extra[k++] = "dg-request-id:";
        extra[k++] = request_id;
    }
    if (status == HTTP_STATUS_SERVICE_UNAVAILABLE) {
        extra[k++] = "retry-after:";
        extra[k++] = RETRY_AFTER;
    }
    extra[k] = NULL;
    int rc = o.oom ? -1 : http_respond(wsi, status, "application/json", o.data, o.len, extra);
    buf_deinit(&o);
    return rc;
}

/* Remembers the first error of a request; it is answered once the body has
 * been read (and audio after it is discarded). */
static void fail(struct batch *b, unsigned status, int err, const char *param, const char *fmt, ...)
    HARK_PRINTF(5, 6);

static void fail(struct batch *b, unsigned status, int err, const char *param, const char *fmt, ...)
{
    if (b->err_status)
        return;
    b->err_status = status;
    b->err = err;
    snprintf(b->err_param, sizeof b->err_param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->err_msg, sizeof b->err_msg, fmt, ap);
    va_end(ap);
}

static void release_chan(struct batch *b)
{
    if (!b->chan)
        return;
    double audio, cpu;
    chan_usage(b->chan, &audio, &cpu);
    metrics_add(metrics_counter(wsfe_metrics(b->fe), "hark_audio_seconds_total",
                                "Seconds of audio processed", NULL, NULL),
                audio);
    LOG_INFO(chan_session_id(b->chan), "batch session ended: %.2f s audio, %.3f s cpu, %.2f s",
             audio, cpu, (double)(clock_mono_ns() - b->t0) / 1e9);
    chan_release(b->chan);
    b->chan = NULL;
}

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    struct batch **head = wsfe_batches(b->fe);
    if (b->prev)
        b->prev->next = b->next;
    else if (*head == b)
        *head = b->next;
    if (b->next)
        b->next->prev = b->prev;
    if (b->pss && b->pss->batch == b)
        b->pss->batch = NULL;
    release_chan(b);
    if (b->counted)
        wsfe_batch_sessions(b->fe, -1);
    admit_release(b->slot);
    b->slot = NULL;
    if (b->key_index >= 0)
        auth_release(wsfe_auth(b->fe), b->key_index);
    wsfe_peer_release(b->fe, b->peer);
    if (b->spa)
        lws_spa_destroy(b->spa); /* calls on_form_file(CLOSE): b must still be valid */
    EVP_MD_CTX_free(b->sha);
    buf_deinit(&b->pend);
    buf_deinit(&b->strs);
    buf_deinit(&b->resp);
    hark_free(b->segs);
    hark_free(b->words);
    hark_free(b);
}

/* While paused the wait is ours, not the client's: lws's body timeout
 * (5 s between body chunks) must not run, or a long pause drops the upload. */
static void pause_reading(struct batch *b)
{
    if (!b->paused) {
        b->paused = 1;
        b->paused_since = clock_mono_ns();
        lws_rx_flow_control(b->wsi, 0);
        lws_set_timeout(b->wsi, NO_PENDING_TIMEOUT, 0);
    }
}

static void resume_reading(struct batch *b)
{
    if (b->paused) {
        b->paused = 0;
        b->paused_ns += clock_mono_ns() - b->paused_since;
        lws_rx_flow_control(b->wsi, 1);
        if (b->phase == P_RECEIVING)
            lws_set_timeout(b->wsi, PENDING_TIMEOUT_HTTP_CONTENT, BODY_TIMEOUT);
    }
}

/* Hands the coalesced body bytes to the session. A full chan keeps them
 * here (reading is paused) until the drain finds room. */
static void flush_pend(struct batch *b)
{
    if (!b->pend.len || !b->chan || b->err_status)
        return;
    int rc = chan_post_audio(b->chan, b->pend.data, b->pend.len);
    if (rc == HARK_E_LIMIT) {
        pause_reading(b);
        return;
    }
    if (rc) {
        fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, rc, NULL, "cannot queue audio: %s",
             hark_strerror(rc));
        return;
    }
    buf_reset(&b->pend);
    if (chan_pending_bytes(b->chan) > wsfe_config(b->fe)->session_buffer_bytes / 2)
        pause_reading(b);
}

static void feed(struct batch *b, const void *data, size_t len)
{
    if (b->err_status || !b->chan || !len)
        return; /* after an error the rest of the body is read and dropped */
    buf_append(&b->pend, data, len);
    if (b->pend.oom) {
        fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, HARK_E_NOMEM, NULL, "out of memory");
        return;
    }
    if (b->pend.len >= POST_BYTES)
        flush_pend(b);
}

static void set_session_options(struct hark_options *o)
{
    /* Only finals matter: no partials or VAD events to render; words on. */
    hark_options_set(o, "interim_results", "false", NULL, 0);
    hark_options_set(o, "vad_events", "false", NULL, 0);
    hark_options_set(o, "utterance_end_ms", "0", NULL, 0);
    hark_options_set(o, "words", "true", NULL, 0);
}

static int start_session(struct batch *b, const struct hark_options *o, char *err, size_t n)
{
    const struct wsfe_cfg *cfg = wsfe_config(b->fe);
    int rc = chan_create(&b->chan, wsfe_workers(b->fe), wsfe_engine(b->fe), o, b->request_id,
                         render, b->fe, cfg->session_buffer_bytes, err, n);
    if (rc)
        return rc;
    LOG_INFO(chan_session_id(b->chan), "batch session started on POST %s (%llu bytes)",
             b->kind == K_DEEPGRAM ? "/v1/listen" : "/v1/audio/transcriptions",
             (unsigned long long)b->content_length);
    return 0;
}

/* ------------------------------------------------------------ OpenAI form */

static const char *field(struct batch *b, int i)
{
    const char *v =
        b->spa && lws_spa_get_length(b->spa, i) > 0 ? lws_spa_get_string(b->spa, i) : NULL;
    return v && v[0] ? v : NULL;
}

/* The file part starts: the session starts with the fields sent before it. */
static void form_file_open(struct batch *b)
{
    if (b->file_parts++) {
        fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_OPTION, "file",
             "file: more than one file part; send exactly one");
        return;
    }
    if (b->err_status)
        return;
    struct hark_options *o = NULL;
    char err[512], why[400];
    int rc = hark_options_copy(&o, wsfe_defaults(b->fe));
    if (rc) {
        fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, rc, NULL, "out of memory");
        return;
    }
    set_session_options(o);
    hark_options_set(o, "encoding", "auto", NULL, 0);
    const char *lang = field(b, F_LANGUAGE);
    if (lang && (rc = hark_options_set(o, "language", lang, why, sizeof why))) {
        fail(b, HTTP_STATUS_BAD_REQUEST, rc, "language", "language: %s", why);
        goto out;
    }
    if ((rc = start_session(b, o, err, sizeof err))) {
        fail(b, status_for(rc), rc, lang ? "language" : NULL, "%s", err);
        goto out;
    }
    hark_options_get(o, "language", b->language_used, sizeof b->language_used);
out:
    hark_options_destroy(o);
}

static int on_form_file(void *data, const char *name, const char *filename, char *buf, int len,
                        enum lws_spa_fileupload_states st)
{
    struct batch *b = data;
    (void)filename;
    if (st == LWS_UFS_CLOSE || !name || strcmp(name, "file"))
        return 0; /* other file fields are ignored */
    if (st == LWS_UFS_OPEN) {
        form_file_open(b);
        return 0;
    }
    if (b->file_parts == 1 && len > 0)
        feed(b, buf, (size_t)len);
    return 0;
}

/* Validates the fields once the whole form is in. */
static void form_check(struct batch *b)
{
    const char *v;
    b->format = OA_JSON;
    if ((v = field(b, F_FORMAT))) {
        size_t i, nf = sizeof oa_formats / sizeof oa_formats[0];
        for (i = 0; i < nf && strcmp(v, oa_formats[i]); i++)
            ;
        if (i == nf) {
            fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_OPTION, "response_format",
                 "response_format: '%s' is not supported (supported: json, text, verbose_json, "
                 "srt, vtt)",
                 v);
            return;
        }
        b->format = (enum oa_format)i;
    }
    if ((v = field(b, F_STREAM))) {
        if (!strcasecmp(v, "true") || !strcmp(v, "1")) {
            b->stream = 1;
        } else if (strcasecmp(v, "false") && strcmp(v, "0")) {
            fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_OPTION, "stream",
                 "stream: '%s' is not true or false", v);
            return;
        }
    }
    if ((v = field(b, F_TEMPERATURE))) {
        char *end;
        double t = strtod(v, &end);
        if (end == v || *end || !(t >= 0 && t <= 1)) {
            fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_OPTION, "temperature",
                 "temperature: '%s' is not a number from 0 to 1", v);
            return;
        }
        b->temperature = t;
    }
    if ((v = field(b, F_GRANULARITY)) && strcmp(v, "word") && strcmp(v, "segment")) {
        fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_OPTION, "timestamp_granularities[]",
             "timestamp_granularities[]: '%s' is not supported (supported: word, segment)", v);
        return;
    }
    if (!b->file_parts) {
        if (lws_spa_get_length(b->spa, F_FILE) > 0)
            fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_OPTION, "file",
                 "file: must be uploaded as a file (a form part with a filename), e.g. "
                 "curl -F file=@audio.wav");
        else
            fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_OPTION, "file",
                 "file: missing; send the audio as a multipart form part named \"file\"");
        return;
    }
    /* A language sent after the file part did not reach the session (it
     * had started); it must still be one the engine accepts. */
    if ((v = field(b, F_LANGUAGE)) && strcasecmp(v, b->language_used)) {
        struct hark_options *o = NULL;
        char why[400] = "out of memory";
        int rc = hark_options_copy(&o, wsfe_defaults(b->fe));
        if (!rc && (rc = hark_options_set(o, "language", v, why, sizeof why)) == 0)
            rc = hark_engine_check_options(wsfe_engine(b->fe), o, why, sizeof why);
        hark_options_destroy(o);
        if (rc)
            fail(b, status_for(rc), rc, "language", "%s", why);
    }
}

/* ------------------------------------------------------------ results */

static size_t add_str(struct batch *b, const char *s, size_t n)
{
    size_t off = b->strs.len;
    buf_append(&b->strs, s, n);
    buf_putc(&b->strs, 0);
    return off;
}

static const char *str_at(const struct batch *b, size_t off)
{
    return b->strs.data ? b->strs.data + off : "";
}

struct rd {
    const unsigned char *p;
    size_t n;
    int bad;
};

static void rd(struct rd *r, void *out, size_t len)
{
    if (r->bad || r->n < len) {
        r->bad = 1;
        memset(out, 0, len);
        return;
    }
    memcpy(out, r->p, len);
    r->p += len;
    r->n -= len;
}

static const char *rd_bytes(struct rd *r, size_t len)
{
    if (r->bad || r->n < len) {
        r->bad = 1;
        return NULL;
    }
    const char *s = (const char *)r->p;
    r->p += len;
    r->n -= len;
    return s;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *p = hark_realloc(*arr, nc * elem);
    if (!p)
        return HARK_E_NOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

static void take_record(struct batch *b, const struct chan_msg *m)
{
    struct rd r = {(const unsigned char *)m->data, m->len, 0};
    char tag = 0;
    rd(&r, &tag, 1);
    if (tag == REC_FINAL) {
        struct rec_final h;
        rd(&r, &h, sizeof h);
        const char *text = rd_bytes(&r, h.text_len);
        if (r.bad || grow((void **)&b->segs, &b->cap_segs, b->n_segs + 1, sizeof *b->segs) ||
            grow((void **)&b->words, &b->cap_words, b->n_words + h.n_words, sizeof *b->words)) {
            fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, HARK_E_NOMEM, NULL,
                 "out of memory collecting results");
            return;
        }
        struct bseg *s = &b->segs[b->n_segs++];
        s->text = add_str(b, text, h.text_len);
        s->start = h.start;
        s->end = h.end;
        s->conf = h.conf;
        s->w0 = b->n_words;
        s->nw = 0;
        for (uint32_t i = 0; i < h.n_words && !r.bad; i++) {
            struct rec_word w;
            rd(&r, &w, sizeof w);
            const char *t = rd_bytes(&r, w.len);
            if (r.bad)
                break;
            b->words[b->n_words++] = (struct bword){add_str(b, t, w.len), w.start, w.end, w.conf};
            s->nw++;
        }
        if (b->strs.oom)
            fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, HARK_E_NOMEM, NULL,
                 "out of memory collecting results");
    } else if (tag == REC_ERROR) {
        int32_t code;
        uint32_t len;
        rd(&r, &code, sizeof code);
        rd(&r, &len, sizeof len);
        const char *msg = rd_bytes(&r, len);
        if (r.bad)
            return;
        /* The decoder's hint names native option values; say it in the
         * endpoint's own terms. */
        char text[600];
        snprintf(text, sizeof text, "%.*s", (int)len, msg);
        char *cut = strstr(text, "; for raw audio");
        if (cut)
            *cut = 0;
        const char *hint = "";
        if (code == HARK_E_BAD_AUDIO && b->kind == K_OPENAI)
            hint = "; the file must be WAV (PCM, IEEE float, mu-law or A-law), Ogg Opus or "
                   "WebM/Opus";
        else if (code == HARK_E_BAD_AUDIO && !b->dg.encoding[0])
            hint = "; send WAV, Ogg Opus or WebM/Opus, or headerless audio with "
                   "?encoding=linear16|mulaw|alaw&sample_rate=N";
        fail(b, status_for(code), code, b->kind == K_OPENAI ? "file" : NULL, "%s%s", text, hint);
    } else if (tag == REC_CLOSED) {
        rd(&r, &b->audio_seconds, sizeof b->audio_seconds);
        b->closed = 1;
    }
}

/* ------------------------------------------------------------ responses */

static double words_confidence(const struct batch *b, size_t w0, size_t nw)
{
    if (!nw)
        return 0;
    double sum = 0;
    for (size_t i = w0; i < w0 + nw; i++)
        sum += b->words[i].conf;
    return sum / (double)nw;
}

static void join_texts(struct buf *o, const struct batch *b)
{
    for (size_t i = 0; i < b->n_segs; i++) {
        if (i)
            buf_putc(o, ' ');
        buf_puts(o, str_at(b, b->segs[i].text));
    }
}

static void dg_words(struct buf *o, const struct batch *b, size_t w0, size_t nw)
{
    buf_json_key(o, "words");
    buf_putc(o, '[');
    for (size_t i = w0; i < w0 + nw; i++) {
        const struct bword *w = &b->words[i];
        if (i > w0)
            buf_putc(o, ',');
        buf_putc(o, '{');
        buf_json_key(o, "word");
        buf_json_str(o, str_at(b, w->text));
        buf_json_key(o, "start");
        buf_json_num(o, w->start);
        buf_json_key(o, "end");
        buf_json_num(o, w->end);
        buf_json_key(o, "confidence");
        buf_json_num(o, w->conf);
        buf_json_key(o, "punctuated_word");
        buf_json_str(o, str_at(b, w->text));
        buf_putc(o, '}');
    }
    buf_putc(o, ']');
}

/* Deepgram's utterances: runs of words split where the silence between two
 * words reaches utt_split seconds. */
static void dg_utterances(struct buf *o, const struct batch *b)
{
    buf_json_key(o, "utterances");
    buf_putc(o, '[');
    size_t i = 0;
    int first = 1;
    while (i < b->n_words) {
        size_t j = i + 1;
        while (j < b->n_words && b->words[j].start - b->words[j - 1].end < b->utt_split)
            j++;
        char id[37];
        dg_uuid(id);
        if (!first)
            buf_putc(o, ',');
        first = 0;
        buf_putc(o, '{');
        buf_json_key(o, "start");
        buf_json_num(o, b->words[i].start);
        buf_json_key(o, "end");
        buf_json_num(o, b->words[j - 1].end);
        buf_json_key(o, "confidence");
        buf_json_num(o, words_confidence(b, i, j - i));
        buf_json_key(o, "channel");
        buf_puts(o, "0");
        buf_json_key(o, "transcript");
        struct buf t;
        buf_init(&t);
        for (size_t k = i; k < j; k++) {
            if (k > i)
                buf_putc(&t, ' ');
            buf_puts(&t, str_at(b, b->words[k].text));
        }
        buf_json_strn(o, t.data ? t.data : "", t.len);
        o->oom |= t.oom;
        buf_deinit(&t);
        dg_words(o, b, i, j - i);
        buf_json_key(o, "speaker");
        buf_puts(o, "0");
        buf_json_key(o, "id");
        buf_json_str(o, id);
        buf_putc(o, '}');
        i = j;
    }
    buf_putc(o, ']');
}

static void deepgram_response(struct batch *b, const char *sha_hex)
{
    struct buf *o = &b->resp;
    const char *model = dg_model_uuid();
    buf_puts(o, "{\"metadata\":{");
    buf_json_key(o, "transaction_key");
    buf_json_str(o, "deprecated");
    buf_json_key(o, "request_id");
    buf_json_str(o, b->request_id);
    buf_json_key(o, "sha256");
    buf_json_str(o, sha_hex);
    buf_json_key(o, "created");
    buf_json_str(o, b->created);
    buf_json_key(o, "duration");
    buf_json_num(o, b->audio_seconds);
    buf_json_key(o, "channels");
    buf_puts(o, "1");
    buf_json_key(o, "models");
    buf_putc(o, '[');
    buf_json_str(o, model);
    buf_putc(o, ']');
    buf_json_key(o, "model_info");
    buf_putc(o, '{');
    buf_json_key(o, model);
    buf_putc(o, '{');
    dg_model_fields(o, &b->dg, hark_engine_get_name(wsfe_engine(b->fe)));
    buf_puts(o, "}}},\"results\":{\"channels\":[{\"alternatives\":[{");
    buf_json_key(o, "transcript");
    struct buf t;
    buf_init(&t);
    join_texts(&t, b);
    buf_json_strn(o, t.data ? t.data : "", t.len);
    o->oom |= t.oom;
    buf_deinit(&t);
    buf_json_key(o, "confidence");
    buf_json_num(o, words_confidence(b, 0, b->n_words));
    dg_languages(o, &b->dg);
    dg_words(o, b, 0, b->n_words);
    buf_puts(o, "}]}]");
    if (b->dg.utterances)
        dg_utterances(o, b);
    buf_puts(o, "}}");
    b->mime = "application/json";
}

/* OpenAI's verbose_json names the language in English words. */
static const char *language_name(const char *tag)
{
    static const struct {
        const char *code, *name;
    } names[] = {{"en", "english"}, {"de", "german"},     {"fr", "french"},   {"es", "spanish"},
                 {"it", "italian"}, {"pt", "portuguese"}, {"nl", "dutch"},    {"ru", "russian"},
                 {"zh", "chinese"}, {"ja", "japanese"},   {"ko", "korean"},   {"pl", "polish"},
                 {"sv", "swedish"}, {"tr", "turkish"},    {"uk", "ukrainian"}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t n = strlen(names[i].code);
        if (!strncasecmp(tag, names[i].code, n) && (tag[n] == 0 || tag[n] == '-'))
            return names[i].name;
    }
    return tag;
}

static void timestamp(struct buf *o, double t, char sep)
{
    long long ms = llround(t * 1000.0);
    if (ms < 0)
        ms = 0;
    buf_printf(o, "%02lld:%02lld:%02lld%c%03lld", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60,
               sep, ms % 1000);
}

static void openai_response(struct batch *b)
{
    struct buf *o = &b->resp;
    struct buf t;
    buf_init(&t);
    join_texts(&t, b);
    const char *text = t.data ? t.data : "";
    b->mime = "application/json";
    if (b->stream) {
        /* The events of a streamed transcription (stream=true), whatever
         * the response_format: a delta per final utterance, then the whole
         * text. Written when the upload is transcribed, not as it goes: the
         * response starts once the session is done, like every other. */
        for (size_t i = 0; i < b->n_segs; i++) {
            buf_puts(o, "data: {\"type\":\"transcript.text.delta\",\"delta\":");
            buf_reset(&t);
            if (i)
                buf_putc(&t, ' ');
            buf_puts(&t, str_at(b, b->segs[i].text));
            buf_json_strn(o, t.data ? t.data : "", t.len);
            buf_puts(o, "}\n\n");
        }
        buf_reset(&t);
        join_texts(&t, b);
        buf_puts(o, "data: {\"type\":\"transcript.text.done\",\"text\":");
        buf_json_strn(o, t.data ? t.data : "", t.len);
        buf_puts(o, "}\n\n");
        b->mime = "text/event-stream";
        o->oom |= t.oom;
        buf_deinit(&t);
        return;
    }
    switch (b->format) {
    case OA_JSON:
        buf_putc(o, '{');
        buf_json_key(o, "text");
        buf_json_strn(o, text, t.len);
        buf_putc(o, '}');
        break;
    case OA_TEXT:
        buf_append(o, text, t.len);
        buf_putc(o, '\n');
        b->mime = "text/plain; charset=utf-8";
        break;
    case OA_SRT:
    case OA_VTT:
        if (b->format == OA_VTT)
            buf_puts(o, "WEBVTT\n\n");
        for (size_t i = 0; i < b->n_segs; i++) {
            if (b->format == OA_SRT)
                buf_printf(o, "%zu\n", i + 1);
            timestamp(o, b->segs[i].start, b->format == OA_SRT ? ',' : '.');
            buf_puts(o, " --> ");
            timestamp(o, b->segs[i].end, b->format == OA_SRT ? ',' : '.');
            buf_printf(o, "\n%s\n\n", str_at(b, b->segs[i].text));
        }
        b->mime =
            b->format == OA_SRT ? "application/x-subrip; charset=utf-8" : "text/vtt; charset=utf-8";
        break;
    case OA_VERBOSE:
        buf_putc(o, '{');
        buf_json_key(o, "task");
        buf_json_str(o, "transcribe");
        buf_json_key(o, "language");
        buf_json_str(o, language_name(b->language_used));
        buf_json_key(o, "duration");
        buf_json_num(o, b->audio_seconds);
        buf_json_key(o, "text");
        buf_json_strn(o, text, t.len);
        o->oom |= t.oom; /* t is reused for segment texts below */
        buf_json_key(o, "segments");
        buf_putc(o, '[');
        for (size_t i = 0; i < b->n_segs; i++) {
            const struct bseg *s = &b->segs[i];
            /* Whisper-only fields get neutral values: no tokens, and the
             * log-probability is the words' mean log confidence. */
            double lp = 0;
            for (size_t k = s->w0; k < s->w0 + s->nw; k++)
                lp += log(b->words[k].conf > 1e-6 ? b->words[k].conf : 1e-6);
            if (i)
                buf_putc(o, ',');
            buf_putc(o, '{');
            buf_json_key(o, "id");
            buf_json_num(o, (double)i);
            buf_json_key(o, "seek");
            buf_puts(o, "0");
            buf_json_key(o, "start");
            buf_json_num(o, s->start);
            buf_json_key(o, "end");
            buf_json_num(o, s->end);
            buf_json_key(o, "text");
            /* Whisper's segment texts start with a space */
            buf_reset(&t);
            buf_putc(&t, ' ');
            buf_puts(&t, str_at(b, s->text));
            buf_json_strn(o, t.data ? t.data : "", t.len);
            buf_json_key(o, "tokens");
            buf_puts(o, "[]");
            buf_json_key(o, "temperature");
            buf_json_num(o, b->temperature);
            buf_json_key(o, "avg_logprob");
            buf_json_num(o, s->nw ? lp / (double)s->nw : 0);
            buf_json_key(o, "compression_ratio");
            buf_puts(o, "1");
            buf_json_key(o, "no_speech_prob");
            buf_puts(o, "0");
            buf_putc(o, '}');
        }
        buf_putc(o, ']');
        buf_json_key(o, "words");
        buf_putc(o, '[');
        for (size_t i = 0; i < b->n_words; i++) {
            const struct bword *w = &b->words[i];
            if (i)
                buf_putc(o, ',');
            buf_putc(o, '{');
            buf_json_key(o, "word");
            buf_json_str(o, str_at(b, w->text));
            buf_json_key(o, "start");
            buf_json_num(o, w->start);
            buf_json_key(o, "end");
            buf_json_num(o, w->end);
            buf_putc(o, '}');
        }
        buf_puts(o, "]}");
        break;
    }
    o->oom |= t.oom;
    buf_deinit(&t);
}

/* The answer is known (results or an error): write it from HTTP_WRITEABLE. */
static void respond(struct batch *b)
{
    if (b->phase == P_RESPONDING)
        return;
    b->phase = P_RESPONDING;
    resume_reading(b); /* the connection may carry the next request */
    char sha_hex[65] = "";
    if (b->sha) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(b->sha, md, &n) == 1)
            for (unsigned i = 0; i < n && i < 32; i++)
                snprintf(sha_hex + 2 * i, 3, "%02x", md[i]);
    }
    buf_reset(&b->resp);
    if (!b->err_status && b->audio_seconds <= 0 && !b->n_segs)
        fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_AUDIO, b->kind == K_OPENAI ? "file" : NULL,
             "the body holds no audio samples");
    if (!b->err_status) {
        b->status = HTTP_STATUS_OK;
        if (b->kind == K_DEEPGRAM)
            deepgram_response(b, sha_hex);
        else
            openai_response(b);
    }
    if (b->err_status || b->resp.oom) {
        if (!b->err_status)
            fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, HARK_E_NOMEM, NULL,
                 "out of memory writing the response");
        buf_deinit(&b->resp);
        buf_init(&b->resp);
        b->status = b->err_status;
        b->mime = "application/json";
        render_error(&b->resp, b->kind, b->err_status, b->err, b->err_param, b->err_msg,
                     b->request_id);
        if (b->chan)
            LOG_INFO(chan_session_id(b->chan), "batch request failed (%u): %s", b->err_status,
                     b->err_msg);
    }
    struct metrics *mx = wsfe_metrics(b->fe);
    metrics_inc(metrics_counter(mx, "hark_batch_requests_total",
                                "Batch transcription requests answered (after admission)",
                                "endpoint", kind_name(b->kind)));
    if (b->status != HTTP_STATUS_OK)
        metrics_inc(metrics_counter(mx, "hark_batch_failed_total",
                                    "Batch transcription requests answered with an error",
                                    "endpoint", kind_name(b->kind)));
    /* The session is no longer needed; nothing it would still do matters. */
    release_chan(b);
    lws_callback_on_writable(b->wsi);
}

/* One piece of the response per HTTP_WRITEABLE: headers, then chunks. */
static int write_response(struct batch *b)
{
    struct lws *wsi = b->wsi;
    if (b->phase != P_RESPONDING)
        return 0;
    if (!b->hdr_sent) {
        unsigned char hdr[LWS_PRE + 1024];
        unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
        if (lws_add_http_common_headers(wsi, b->status, b->mime, b->resp.len, &p, end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end))
            return -1;
        if (b->kind == K_DEEPGRAM &&
            lws_add_http_header_by_name(
                wsi, (const unsigned char *)"dg-request-id:", (const unsigned char *)b->request_id,
                (int)strlen(b->request_id), &p, end))
            return -1;
        if (b->close_after &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                        (const unsigned char *)"close", 5, &p, end))
            return -1;
        if (b->status == HTTP_STATUS_SERVICE_UNAVAILABLE &&
            lws_add_http_header_by_name(
                wsi, (const unsigned char *)"retry-after:", (const unsigned char *)RETRY_AFTER,
                (int)strlen(RETRY_AFTER), &p, end))
            return -1;
        if (origin_add_cors(wsi, &p, end) || lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        b->hdr_sent = 1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    size_t left = b->resp.len - b->resp_off;
    size_t n = left < TX_CHUNK ? left : TX_CHUNK;
    unsigned char *tx = hark_malloc(LWS_PRE + n + 1);
    if (!tx)
        return -1;
    if (n)
        memcpy(tx + LWS_PRE, b->resp.data + b->resp_off, n);
    int last = n == left;
    int w = lws_write(wsi, tx + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    hark_free(tx);
    if (w < 0)
        return -1;
    b->resp_off += n;
    if (!last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    int close = b->close_after;
    batch_free(b);
    if (close) /* the rest of the body was never read */
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ------------------------------------------------------------ request */

int batch_is_path(const char *path)
{
    return !strcmp(path, "/v1/listen") || !strcmp(path, "/v1/listen/") ||
           !strcmp(path, "/v1/audio/transcriptions");
}

static int header(struct lws *wsi, enum lws_token_indexes h, char *out, size_t n)
{
    out[0] = 0;
    int len = lws_hdr_total_length(wsi, h);
    if (len <= 0)
        return 0;
    if ((size_t)len >= n || lws_hdr_copy(wsi, out, (int)n, h) < 0)
        return -1;
    return len;
}

/* Deepgram query parameters beyond session options. */
static int dg_extra_query(struct batch *b, char *err, size_t n)
{
    /* Every argument, whatever its length: lws_get_urlarg_by_name stops at
     * the first one longer than its buffer, so a long callback URL (or any
     * long argument before it) would be silently ignored. */
    b->utt_split = DEFAULT_UTT_SPLIT;
    size_t n_args;
    char **args = http_query_args(b->wsi, &n_args);
    if (!args)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    int rc = 0;
    const char *utt = NULL;
    for (size_t i = 0; i < n_args && !rc; i++) {
        if (!strncmp(args[i], "utt_split=", 10) && !utt)
            utt = args[i] + 10; /* the first wins, as for other parameters */
        else if (!strncmp(args[i], "callback=", 9))
            rc = err_set(err, n, HARK_E_UNSUPPORTED,
                         "callback: asynchronous callbacks are not supported; the response "
                         "carries the results");
    }
    if (!rc && utt) {
        char *end;
        double x = strtod(utt, &end);
        if (end == utt || *end || !(x >= 0.05 && x <= 60))
            rc = err_set(err, n, HARK_E_BAD_OPTION,
                         "utt_split: '%.60s%s' is not a number of seconds from 0.05 to 60", utt,
                         strlen(utt) > 60 ? "..." : "");
        else
            b->utt_split = x;
    }
    hark_free(args);
    return rc;
}

static enum kind kind_of(const char *path)
{
    return strncmp(path, "/v1/listen", 10) ? K_OPENAI : K_DEEPGRAM;
}

int batch_refuse(struct lws *wsi, const char *path, unsigned status, int err, const char *msg)
{
    char id[37];
    dg_uuid(id);
    return respond_now(wsi, kind_of(path), status, err, NULL, msg, id);
}

int batch_begin(struct wsfe *fe, struct lws *wsi, const char *path)
{
    enum kind kind = kind_of(path);
    struct http_pss *pss = lws_wsi_user(wsi);
    char id[37], msg[600], h[256];
    dg_uuid(id);
    if (!pss)
        return respond_now(wsi, kind, 500, HARK_E_INTERNAL, NULL, "no request state", id);
    if (pss->batch) /* a previous request on this connection still open: cannot be */
        batch_free(pss->batch);

    /* Body length: lws has no size limit and decodes no chunked bodies
     * (chunked.c does, for OpenAI's multipart uploads: the Node SDK streams
     * a file that way). Both headers at once is how requests are smuggled
     * past a proxy: refused. */
    int te = header(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, h, sizeof h);
    int chunked = te > 0 && !strcasecmp(h, "chunked");
    if (te && !chunked)
        return respond_now(wsi, kind, 501, HARK_E_UNSUPPORTED, NULL,
                           "Transfer-Encoding other than chunked is not supported", id);
    int cl = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, h, sizeof h);
    if (chunked && cl)
        return respond_now(wsi, kind, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL,
                           "a request must not carry both Transfer-Encoding and Content-Length",
                           id);
    if (chunked && kind == K_DEEPGRAM)
        return respond_now(wsi, kind, 411, HARK_E_PROTOCOL, NULL,
                           "Content-Length is required (chunked request bodies are not "
                           "supported here); send the whole body with its length",
                           id);
    if (!chunked && cl <= 0)
        return respond_now(wsi, kind, 411, HARK_E_PROTOCOL, NULL,
                           "Content-Length (or Transfer-Encoding: chunked) is required", id);
    unsigned long long len = 0;
    if (!chunked) {
        char *end;
        len = strtoull(h, &end, 10);
        if (end == h || *end || h[0] == '-')
            return respond_now(wsi, kind, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL,
                               "Content-Length is not a number", id);
    }
    size_t max =
        wsfe_config(fe)->max_body_bytes ? wsfe_config(fe)->max_body_bytes : DEFAULT_MAX_BODY;
    if (len > max) {
        snprintf(msg, sizeof msg,
                 "request body of %llu bytes is larger than the limit of %zu bytes", len, max);
        return respond_now(wsi, kind, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, HARK_E_LIMIT,
                           kind == K_OPENAI ? "file" : NULL, msg, id);
    }
    if (len == 0 && !chunked)
        return respond_now(wsi, kind, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_AUDIO,
                           kind == K_OPENAI ? "file" : NULL,
                           "the request body is empty; send the audio", id);
    int ct = header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, h, sizeof h);
    if (kind == K_DEEPGRAM && ct > 0 && !strncasecmp(h, "application/json", 16))
        return respond_now(wsi, kind, HTTP_STATUS_BAD_REQUEST, HARK_E_UNSUPPORTED, NULL,
                           "JSON bodies ({\"url\": ...}) are not supported: hark does not fetch "
                           "remote audio; send the audio bytes as the request body",
                           id);
    if (kind == K_OPENAI &&
        (ct <= 0 || strncasecmp(h, "multipart/form-data", 19) || !strstr(h, "boundary=")))
        return respond_now(wsi, kind, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL,
                           "Content-Type must be multipart/form-data with a boundary, with the "
                           "audio in a part named \"file\"",
                           id);

    struct batch *b = hark_calloc(1, sizeof *b);
    if (!b)
        return respond_now(wsi, kind, 500, HARK_E_NOMEM, NULL, "out of memory", id);
    b->fe = fe;
    b->wsi = wsi;
    b->pss = pss;
    b->kind = kind;
    b->key_index = -1;
    b->content_length = len;
    b->chunked = chunked;
    chunked_init(&b->ck);
    b->max_body = max;
    b->t0 = clock_mono_ns();
    memcpy(b->request_id, id, sizeof id);
    dg_now_iso(b->created);
    buf_init(&b->pend);
    buf_init(&b->strs);
    buf_init(&b->resp);
    struct hark_options *o = NULL;
    unsigned status = 0;
    int rc = 0;

    /* Query (Deepgram) before capacity: a bad request is the client's to fix. */
    if (kind == K_DEEPGRAM) {
        if ((rc = hark_options_copy(&o, wsfe_defaults(fe)))) {
            status = 500;
            snprintf(msg, sizeof msg, "out of memory");
            goto refuse;
        }
        size_t n_args;
        char **args = http_query_args(wsi, &n_args);
        rc = args ? dg_apply_args((const char *const *)args, n_args, o, &b->dg, msg, sizeof msg)
                  : err_set(msg, sizeof msg, HARK_E_NOMEM, "out of memory");
        hark_free(args);
        if (rc || (rc = dg_extra_query(b, msg, sizeof msg))) {
            status = HTTP_STATUS_BAD_REQUEST;
            goto refuse;
        }
        set_session_options(o);
    }
    {
        char why[256];
        auth_check(wsfe_auth(fe), wsi, &b->key_index, why, sizeof why); /* passed in http.c */
        if ((rc = auth_acquire(wsfe_auth(fe), b->key_index, msg, sizeof msg))) {
            b->key_index = -1;
            status = 429;
            goto refuse;
        }
    }
    if ((rc = wsfe_peer_acquire(fe, wsi, b->peer, msg, sizeof msg))) {
        status = 429;
        goto refuse;
    }
    if ((rc = wsfe_admit(fe, msg, sizeof msg))) {
        status = HTTP_STATUS_SERVICE_UNAVAILABLE;
        rc = HARK_E_BUSY;
        goto refuse;
    }
    if (kind == K_DEEPGRAM) {
        b->sha = EVP_MD_CTX_new();
        if (!b->sha || EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL) != 1) {
            status = 500;
            rc = HARK_E_INTERNAL;
            snprintf(msg, sizeof msg, "cannot start SHA-256");
            goto refuse;
        }
        if ((rc = start_session(b, o, msg, sizeof msg))) {
            status = status_for(rc);
            goto refuse;
        }
    } else {
        lws_spa_create_info_t si;
        memset(&si, 0, sizeof si);
        si.param_names = form_fields;
        si.count_params = F_COUNT;
        si.max_storage = SPA_STORAGE;
        si.opt_cb = on_form_file;
        si.opt_data = b;
        b->spa = lws_spa_create_via_info(wsi, &si);
        if (!b->spa) {
            status = 500;
            rc = HARK_E_NOMEM;
            snprintf(msg, sizeof msg, "cannot create the form parser");
            goto refuse;
        }
    }
    hark_options_destroy(o);
    b->counted = 1;
    b->slot = wsfe_admit_take(fe);
    wsfe_batch_sessions(fe, 1);
    struct batch **head = wsfe_batches(fe);
    b->next = *head;
    if (*head)
        (*head)->prev = b;
    *head = b;
    pss->batch = b;
    /* curl waits a second for "100 Continue" before sending a body over
     * 1 MiB; lws 4.1 never sends it. */
    if (header(wsi, WSI_TOKEN_HTTP_EXPECT, h, sizeof h) > 0 && !strcasecmp(h, "100-continue")) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        unsigned char out[LWS_PRE + sizeof cont];
        memcpy(out + LWS_PRE, cont, sizeof cont - 1);
        if (lws_write(wsi, out + LWS_PRE, sizeof cont - 1, LWS_WRITE_RAW) < 0)
            return -1; /* CLOSED_HTTP frees b */
    }
    return 0;

refuse:
    hark_options_destroy(o);
    batch_free(b);
    return respond_now(wsi, kind, status, rc, NULL, msg, id);
}

static void drain_one(struct batch *b);

static int on_body_complete(struct batch *b);

/* Answered before the body's end: the connection closes after the answer. */
static void fail_now(struct batch *b, unsigned status, int err, const char *param, const char *msg)
{
    b->err_status = 0; /* this one is answered, whatever was found before */
    fail(b, status, err, param, "%s", msg);
    b->close_after = 1;
    respond(b);
}

static int on_body_data(struct batch *b, const void *in, size_t len)
{
    if (b->sha)
        EVP_DigestUpdate(b->sha, in, len);
    if (b->kind == K_DEEPGRAM) {
        feed(b, in, len);
    } else if (!b->form_failed && lws_spa_process(b->spa, in, (int)len)) {
        b->form_failed = 1;
        fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL,
             "the multipart form could not be parsed (a field other than the file larger than "
             "%d bytes, a field name longer than 31 bytes, or a malformed body); send the "
             "audio as a file part, e.g. curl -F file=@audio.wav",
             SPA_STORAGE / 2);
    }
    return 0;
}

/* A chunked body's length is known at its end only. Past max_body the rest
 * is read and dropped, so that the 413 comes after the body like other
 * errors found in it: answering mid-upload and closing with unread input
 * resets the connection, and the reset can destroy the answer before the
 * client reads it (Node's fetch then reports no status at all). A body
 * going on for another max_body is answered at once. */
static int on_chunk(void *user, const uint8_t *data, size_t len)
{
    struct batch *b = user;
    b->received += len;
    if (b->received <= b->max_body)
        return on_body_data(b, data, len);
    char msg[160];
    snprintf(msg, sizeof msg, "request body larger than the limit of %zu bytes", b->max_body);
    if (b->received - b->max_body > b->max_body) {
        fail_now(b, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, HARK_E_LIMIT,
                 b->kind == K_OPENAI ? "file" : NULL, msg);
        return 1;
    }
    if (b->err_status != HTTP_STATUS_REQ_ENTITY_TOO_LARGE) {
        b->err_status = 0; /* the size is what the client must fix first */
        fail(b, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, HARK_E_LIMIT, b->kind == K_OPENAI ? "file" : NULL,
             "%s", msg);
        release_chan(b); /* nothing more is recognised */
    }
    return 0;
}

/* A chunked body ends at its last chunk, which lws does not see: it would
 * wait for more. So the request ends here, and the connection closes after
 * the answer (lws cannot parse a next request on it). */
static int on_body(struct batch *b, const void *in, size_t len)
{
    if (b->phase != P_RECEIVING)
        return 0;
    if (!b->chunked) {
        b->received += len;
        return on_body_data(b, in, len);
    }
    size_t used;
    int rc = chunked_feed(&b->ck, in, len, &used, on_chunk, b);
    if (rc == HARK_E_PROTOCOL) {
        char msg[200];
        snprintf(msg, sizeof msg, "malformed chunked request body: %s", b->ck.why);
        fail_now(b, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL, msg);
    } else if (rc == 1) {
        b->close_after = 1;
        return on_body_complete(b);
    }
    return 0;
}

static int on_body_complete(struct batch *b)
{
    if (b->phase != P_RECEIVING)
        return 0;
    b->phase = P_PROCESSING;
    if (b->kind == K_OPENAI) {
        lws_spa_finalize(b->spa);
        if (!b->form_failed)
            form_check(b);
    }
    /* The answer can take a while (recognition at a multiple of real time):
     * no lws timeout on our own work. */
    lws_set_timeout(b->wsi, NO_PENDING_TIMEOUT, 0);
    if (b->err_status || !b->chan) {
        respond(b);
        return 0;
    }
    b->close_wanted = 1;
    drain_one(b); /* posts what is left, then the close */
    return 0;
}

/* While reading is paused lws does not see the client hang up (a FIN is
 * only noticed by reading), and the kernel may hold megabytes of its upload:
 * without this, recognition would go on for a client long gone. A peer that
 * shut its side before lws consumed the body is gone: lws closes on that
 * end-of-stream anyway once it reads again (it has no half-close). */
static int client_gone(struct batch *b)
{
    int fd = lws_get_socket_fd(b->wsi);
    struct pollfd p = {.fd = fd, .events = RDHUP};
    return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP | RDHUP));
}

static void drain_one(struct batch *b)
{
    if (!b->chan)
        return;
    if (b->paused && b->phase != P_RESPONDING && clock_mono_ns() - b->gone_checked > 200000000) {
        b->gone_checked = clock_mono_ns();
        if (client_gone(b)) {
            LOG_INFO(chan_session_id(b->chan),
                     "batch request dropped: the client hung up after sending %llu of %llu bytes",
                     (unsigned long long)b->received, (unsigned long long)b->content_length);
            release_chan(b);
            lws_set_timeout(b->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
            return;
        }
    }
    struct chan_msg *m = chan_take_msgs(b->chan);
    while (m) {
        struct chan_msg *next = m->next;
        take_record(b, m);
        hark_free(m);
        m = next;
    }
    if (b->phase == P_RESPONDING)
        return;
    flush_pend(b);
    size_t pending = chan_pending_bytes(b->chan);
    if (b->err_status || pending < wsfe_config(b->fe)->session_buffer_bytes / 4)
        resume_reading(b);
    else if (b->paused) /* lws re-arms its body timeout after each body callback */
        lws_set_timeout(b->wsi, NO_PENDING_TIMEOUT, 0);
    if (b->phase != P_PROCESSING)
        return;
    if (b->err_status) {
        respond(b);
        return;
    }
    if (b->close_wanted && !b->close_posted && !b->pend.len) {
        int rc = chan_post_close(b->chan);
        if (rc) {
            fail(b, 500, rc, NULL, "cannot finish the session: %s", hark_strerror(rc));
            respond(b);
            return;
        }
        b->close_posted = 1;
    }
    if (b->closed)
        respond(b);
}

/* An upload must average min_body_rate once it has run RATE_GRACE_SEC
 * (time we paused reading excluded): a client trickling its body would
 * otherwise hold a session slot for as long as it likes, since lws re-arms
 * its body timeout on every byte (4 uploads at 0.5 B/s held all of
 * --max-sessions 4). Answered with 408 now, and the slot is freed. */
#define RATE_GRACE_SEC 5.0

void batch_tick(struct wsfe *fe)
{
    int rate = wsfe_config(fe)->min_body_rate;
    if (rate <= 0)
        return;
    int64_t now = clock_mono_ns();
    struct batch *next;
    for (struct batch *b = *wsfe_batches(fe); b; b = next) {
        next = b->next;
        if (b->phase != P_RECEIVING || b->paused)
            continue;
        double active = (double)(now - b->t0 - b->paused_ns) / 1e9;
        if (active < RATE_GRACE_SEC || (double)b->received >= rate * active)
            continue;
        b->err_status = 0; /* this one is answered, whatever was found before */
        char of[40] = "";  /* a chunked body's length is not known */
        if (!b->chunked)
            snprintf(of, sizeof of, " of %llu", (unsigned long long)b->content_length);
        fail(b, HTTP_STATUS_REQUEST_TIMEOUT, HARK_E_TIMEOUT, NULL,
             "request body too slow: %llu%s bytes in %.1f s, below the minimum of %d "
             "bytes/s (--min-body-rate)",
             (unsigned long long)b->received, of, active, rate);
        b->close_after = 1;
        respond(b);
    }
}

void batch_drain(struct wsfe *fe)
{
    struct batch *next;
    for (struct batch *b = *wsfe_batches(fe); b; b = next) {
        next = b->next;
        drain_one(b);
    }
}

int batch_callback(struct lws *wsi, int reason, struct http_pss *pss, void *in, size_t len,
                   int *handled)
{
    struct batch *b = pss ? pss->batch : NULL;
    *handled = b != NULL && b->wsi == wsi;
    if (!*handled)
        return 0;
    switch (reason) {
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(b, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return on_body_complete(b);
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return write_response(b);
    case LWS_CALLBACK_CLOSED_HTTP:
        if (b->phase != P_RESPONDING && b->chan && !wsfe_is_ready(b->fe))
            LOG_WARN(chan_session_id(b->chan),
                     "batch request dropped: the shutdown timeout passed before its results "
                     "(%llu of %llu body bytes read)",
                     (unsigned long long)b->received, (unsigned long long)b->content_length);
        else if (b->phase != P_RESPONDING && b->chan)
            LOG_INFO(chan_session_id(b->chan),
                     "batch request dropped: the client went away after %llu of %llu bytes",
                     (unsigned long long)b->received, (unsigned long long)b->content_length);
        batch_free(b);
        return 0;
    default:
        *handled = 0;
        return 0;
    }
}
