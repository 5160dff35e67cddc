/*
 * Pre-recorded (batch) transcription over plain HTTP POST: the transport.
 * The APIs themselves (request -> session options, transcript -> response
 * body, error shapes) are pure modules in src/front/proto/ (batchapi.h),
 * routed here by path through routes[]:
 *
 *   POST /v1/listen[/]             Deepgram pre-recorded (dgbatch.c): the body
 *                                  is the audio
 *   POST /v1/audio/transcriptions  OpenAI-compatible multipart/form-data
 *                                  (oabatch.c): the audio in the part "file"
 *
 * The body streams into a session on the shared worker pool as it arrives,
 * so a large upload never sits in memory: each body chunk goes to the chan
 * (coalesced to POST_BYTES), and reading pauses (lws_rx_flow_control) while
 * more than half the session buffer waits for a worker. Workers give every
 * chan at most ~1 s of audio per turn and serve sessions at real-time pace
 * before bulk ones (an upload runs far ahead of the clock), so live sessions
 * on the same pool wait at most one slice behind a batch job. At the end of
 * the body the session is closed; its finals (rendered into compact records
 * on the worker thread, transcript.h) are collected on the wake-up drain,
 * and the response is written from HTTP_WRITEABLE in chunks once the session
 * is done.
 *
 * Errors before the body (missing or too large Content-Length, bad query,
 * busy) are answered at once; errors found in the body (undecodable audio,
 * bad form fields) are answered after the body was read to its end, so the
 * connection stays usable. The client hanging up releases everything
 * (CLOSED_HTTP). Service thread only, except render().
 */
#include <libwebsockets.h>
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
#include "front/proto/batchapi.h"
#include "front/proto/dg.h"
#include "front/proto/transcript.h"
#include "front/ws/batch.h"
#include "host/admit.h"

#define TX_CHUNK 65536 /* response bytes per HTTP_WRITEABLE */
#define RETRY_AFTER "2"
#define DEFAULT_MAX_BODY ((size_t)100 << 20)

/* The batch APIs by path: adding one is a file in src/front/proto/ and a
 * row here. */
static const struct {
    const char *path;
    const struct batchapi *api;
} routes[] = {
    {"/v1/listen", &batchapi_deepgram},
    {"/v1/listen/", &batchapi_deepgram},
    {"/v1/audio/transcriptions", &batchapi_openai},
};

/* ------------------------------------------------------------ worker side */

static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    if (ev->type == HARK_EVENT_ERROR)
        wsfe_count_event(user, ev);
    transcript_record(ev, out, flags);
}

/* ------------------------------------------------------------ helpers */

static const struct batchapi *api_of(const char *path)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (!strcmp(path, routes[i].path))
            return routes[i].api;
    return NULL;
}

int batch_is_path(const char *path)
{
    return api_of(path) != NULL;
}

/* An error answered right away (before the body; the request has no batch
 * state). Returns what the HTTP callback must return. */
/* Answers a request refused before its body was read. The body is still on
 * the connection, where lws would take it for the next request's head, and
 * the client's next request on it would be lost ("socket hang up"): so the
 * answer says `connection: close`, and a keep-alive client (Node's fetch, the
 * SDKs) opens a new connection for the next request. */
static int respond_now(struct lws *wsi, const struct batchapi *api, unsigned status, int err,
                       const char *param, const char *msg, const char *request_id)
{
    struct batchapi_refusal r = {0};
    batchapi_refuse(&r, status, err, param, "%s", msg);
    struct buf o;
    buf_init(&o);
    api->error(&r, request_id, &o);
    const char *extra[9];
    int k = 0;
    extra[k++] = "connection:";
    extra[k++] = "close";
    if (api->id_header) {
        extra[k++] = api->id_header;
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

void batch_fail(struct batch *b, unsigned status, int err, const char *param, const char *fmt, ...)
{
    if (b->err.status)
        return;
    char msg[sizeof b->err.msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    batchapi_refuse(&b->err, status, err, param, "%s", msg);
}

void batch_release_chan(struct batch *b)
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
    batch_release_chan(b);
    if (b->counted)
        wsfe_batch_sessions(b->fe, -1);
    admit_release(b->slot);
    b->slot = NULL;
    if (b->key_index >= 0)
        auth_release(wsfe_auth(b->fe), b->key_index);
    wsfe_peer_release(b->fe, b->peer);
    if (b->spa)
        lws_spa_destroy(b->spa); /* calls upload_form_file(CLOSE): b must still be valid */
    EVP_MD_CTX_free(b->sha);
    buf_deinit(&b->pend);
    transcript_deinit(&b->tr);
    buf_deinit(&b->resp);
    hark_free(b->st);
    hark_free(b);
}

int batch_start_session(struct batch *b, const struct hark_options *o, char *err, size_t n)
{
    int rc = wsfe_chan_create(b->fe, &b->chan, o, b->request_id, render, b->fe, err, n);
    if (rc)
        return rc;
    admit_started(b->slot);
    LOG_INFO(chan_session_id(b->chan), "batch session started on POST %s (%llu bytes)", b->path,
             (unsigned long long)b->content_length);
    return 0;
}

/* ------------------------------------------------------------ results */

static void take_record(struct batch *b, const struct chan_msg *m)
{
    int code = 0;
    char msg[600];
    int rc = transcript_take(&b->tr, m->data, m->len, &code, msg, sizeof msg);
    if (rc == 1) {
        struct batchapi_refusal r = {0};
        b->api->session_error(b->st, code, msg, &r);
        batch_fail(b, r.status, r.err, r.param, "%s", r.msg);
    } else if (rc) {
        batch_fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, rc, NULL, "%s collecting results",
                   rc == HARK_E_NOMEM ? "out of memory" : "malformed record");
    }
}

void batch_respond(struct batch *b)
{
    if (b->phase == P_RESPONDING)
        return;
    b->phase = P_RESPONDING;
    upload_resume(b); /* the connection may carry the next request */
    char sha_hex[65] = "";
    if (b->sha) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (EVP_DigestFinal_ex(b->sha, md, &n) == 1)
            for (unsigned i = 0; i < n && i < 32; i++)
                snprintf(sha_hex + 2 * i, 3, "%02x", md[i]);
    }
    buf_reset(&b->resp);
    if (!b->err.status && b->tr.audio_seconds <= 0 && !b->tr.n_segs)
        batch_fail(b, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_AUDIO, b->api->body_param,
                   "the body holds no audio samples");
    if (!b->err.status) {
        b->status = HTTP_STATUS_OK;
        struct batchapi_meta m = {b->request_id, b->created, sha_hex, b->cx.engine_name};
        b->api->respond(b->st, &m, &b->tr, &b->resp, &b->mime);
    }
    if (b->err.status || b->resp.oom) {
        if (!b->err.status)
            batch_fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, HARK_E_NOMEM, NULL,
                       "out of memory writing the response");
        buf_deinit(&b->resp);
        buf_init(&b->resp);
        b->status = b->err.status;
        b->mime = "application/json";
        b->api->error(&b->err, b->request_id, &b->resp);
        if (b->chan)
            LOG_INFO(chan_session_id(b->chan), "batch request failed (%u): %s", b->err.status,
                     b->err.msg);
    }
    struct metrics *mx = wsfe_metrics(b->fe);
    metrics_inc(metrics_counter(mx, "hark_batch_requests_total",
                                "Batch transcription requests answered (after admission)",
                                "endpoint", b->api->name));
    if (b->status != HTTP_STATUS_OK)
        metrics_inc(metrics_counter(mx, "hark_batch_failed_total",
                                    "Batch transcription requests answered with an error",
                                    "endpoint", b->api->name));
    /* The session is no longer needed; nothing it would still do matters. */
    batch_release_chan(b);
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
        if (b->api->id_header &&
            lws_add_http_header_by_name(wsi, (const unsigned char *)b->api->id_header,
                                        (const unsigned char *)b->request_id,
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

int batch_refuse(struct lws *wsi, const char *path, unsigned status, int err, const char *msg)
{
    const struct batchapi *api = api_of(path);
    char id[37];
    dg_uuid(id);
    return respond_now(wsi, api ? api : routes[0].api, status, err, NULL, msg, id);
}

int batch_begin(struct wsfe *fe, struct lws *wsi, const char *path)
{
    const struct batchapi *api = api_of(path);
    struct http_pss *pss = lws_wsi_user(wsi);
    char id[37], msg[600], h[256];
    dg_uuid(id);
    if (!api)
        api = routes[0].api;
    if (!pss)
        return respond_now(wsi, api, 500, HARK_E_INTERNAL, NULL, "no request state", id);
    if (pss->batch) /* a previous request on this connection still open: cannot be */
        batch_free(pss->batch);

    /* Body length: lws has no size limit and decodes no chunked bodies
     * (chunked.c does, for OpenAI's multipart uploads: the Node SDK streams
     * a file that way). Both headers at once is how requests are smuggled
     * past a proxy: refused. */
    int te = header(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING, h, sizeof h);
    int chunked = te > 0 && !strcasecmp(h, "chunked");
    if (te && !chunked)
        return respond_now(wsi, api, 501, HARK_E_UNSUPPORTED, NULL,
                           "Transfer-Encoding other than chunked is not supported", id);
    int cl = header(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, h, sizeof h);
    if (chunked && cl)
        return respond_now(wsi, api, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL,
                           "a request must not carry both Transfer-Encoding and Content-Length",
                           id);
    unsigned long long len = 0;
    size_t max =
        wsfe_config(fe)->max_body_bytes ? wsfe_config(fe)->max_body_bytes : DEFAULT_MAX_BODY;
    if (!chunked) {
        if (cl <= 0)
            return respond_now(wsi, api, 411, HARK_E_PROTOCOL, NULL,
                               "Content-Length (or Transfer-Encoding: chunked) is required", id);
        char *end;
        len = strtoull(h, &end, 10);
        if (end == h || *end || h[0] == '-')
            return respond_now(wsi, api, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL,
                               "Content-Length is not a number", id);
        if (len > max) {
            snprintf(msg, sizeof msg,
                     "request body of %llu bytes is larger than the limit of %zu bytes", len, max);
            return respond_now(wsi, api, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, HARK_E_LIMIT,
                               api->body_param, msg, id);
        }
        if (len == 0)
            return respond_now(wsi, api, HTTP_STATUS_BAD_REQUEST, HARK_E_BAD_AUDIO, api->body_param,
                               "the request body is empty; send the audio", id);
    }

    struct batch *b = hark_calloc(1, sizeof *b);
    void *st = b ? hark_calloc(1, api->state_size ? api->state_size : 1) : NULL;
    if (!st) {
        hark_free(b);
        return respond_now(wsi, api, 500, HARK_E_NOMEM, NULL, "out of memory", id);
    }
    b->fe = fe;
    b->wsi = wsi;
    b->pss = pss;
    b->api = api;
    b->st = st;
    snprintf(b->path, sizeof b->path, "%s", path);
    b->cx = (struct batchapi_ctx){wsfe_defaults(fe), wsfe_engine(fe), wsfe_dialect_ctx(fe)->engine,
                                  wsfe_dialect_ctx(fe)->engines, wsfe_dialect_ctx(fe)->any_model};
    b->key_index = -1;
    b->content_length = len;
    b->chunked = chunked;
    chunked_init(&b->ck);
    b->max_body = max;
    b->t0 = clock_mono_ns();
    memcpy(b->request_id, id, sizeof id);
    dg_now_iso(b->created);
    buf_init(&b->pend);
    transcript_init(&b->tr);
    buf_init(&b->resp);
    struct hark_options *o = NULL;
    struct batchapi_refusal r = {0};
    int rc = 0;

    /* The request (query, Content-Type) before capacity: a bad request is
     * the client's to fix. Every argument, whatever its length:
     * lws_get_urlarg_by_name stops at the first one longer than its buffer,
     * so a long argument before another would hide it. */
    header(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, h, sizeof h);
    size_t n_args = 0;
    char **args = http_query_args(wsi, &n_args);
    b->rq = (struct batchapi_req){b->path, (const char *const *)args, n_args, h,
                                  chunked, upload_form_field,         b};
    if (!args)
        rc = batchapi_refuse(&r, 500, HARK_E_NOMEM, NULL, "out of memory");
    else if ((rc = hark_options_copy(&o, b->cx.defaults)))
        rc = batchapi_refuse(&r, 500, rc, NULL, "out of memory");
    else
        rc = api->open(st, &b->cx, &b->rq, o, &r);
    hark_free(args);
    b->rq.args = NULL;
    b->rq.n_args = 0;
    b->rq.content_type = "";
    if (rc)
        goto refuse;
    {
        char why[256];
        auth_check(wsfe_auth(fe), wsi, &b->key_index, why, sizeof why); /* passed in http.c */
        if ((rc = auth_acquire(wsfe_auth(fe), b->key_index, msg, sizeof msg))) {
            b->key_index = -1;
            batchapi_refuse(&r, 429, rc, NULL, "%s", msg);
            goto refuse;
        }
    }
    if ((rc = wsfe_peer_acquire(fe, wsi, b->peer, msg, sizeof msg))) {
        batchapi_refuse(&r, 429, rc, NULL, "%s", msg);
        goto refuse;
    }
    if ((rc = wsfe_admit(fe, msg, sizeof msg))) {
        batchapi_refuse(&r, HTTP_STATUS_SERVICE_UNAVAILABLE, HARK_E_BUSY, NULL, "%s", msg);
        goto refuse;
    }
    b->slot = wsfe_admit_take(fe); /* batch_free releases it */
    if (api->wants_sha256) {
        b->sha = EVP_MD_CTX_new();
        if (!b->sha || EVP_DigestInit_ex(b->sha, EVP_sha256(), NULL) != 1) {
            batchapi_refuse(&r, 500, HARK_E_INTERNAL, NULL, "cannot start SHA-256");
            goto refuse;
        }
    }
    if (!api->fields) { /* the body is the audio: the session starts now */
        if ((rc = batch_start_session(b, o, msg, sizeof msg))) {
            batchapi_refuse(&r, batchapi_status(rc), rc, NULL, "%s", msg);
            goto refuse;
        }
    } else {
        lws_spa_create_info_t si;
        memset(&si, 0, sizeof si);
        si.param_names = api->fields;
        si.count_params = api->n_fields;
        si.max_storage = SPA_STORAGE;
        si.opt_cb = upload_form_file;
        si.opt_data = b;
        b->spa = lws_spa_create_via_info(wsi, &si);
        if (!b->spa) {
            batchapi_refuse(&r, 500, HARK_E_NOMEM, NULL, "cannot create the form parser");
            goto refuse;
        }
    }
    hark_options_destroy(o);
    b->counted = 1;
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
    return respond_now(wsi, api, r.status, r.err, r.param, r.msg, id);
}

void batch_drain_one(struct batch *b)
{
    if (!b->chan)
        return;
    if (b->paused && b->phase != P_RESPONDING && clock_mono_ns() - b->gone_checked > 200000000) {
        b->gone_checked = clock_mono_ns();
        if (upload_client_gone(b)) {
            LOG_INFO(chan_session_id(b->chan),
                     "batch request dropped: the client hung up after sending %llu of %llu bytes",
                     (unsigned long long)b->received, (unsigned long long)b->content_length);
            batch_release_chan(b);
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
    upload_flush(b);
    size_t pending = chan_pending_bytes(b->chan);
    if (b->err.status || pending < wsfe_config(b->fe)->session_buffer_bytes / 4)
        upload_resume(b);
    else if (b->paused) /* lws re-arms its body timeout after each body callback */
        lws_set_timeout(b->wsi, NO_PENDING_TIMEOUT, 0);
    if (b->phase != P_PROCESSING)
        return;
    if (b->err.status) {
        batch_respond(b);
        return;
    }
    if (b->close_wanted && !b->close_posted && !b->pend.len) {
        int rc = chan_post_close(b->chan);
        if (rc) {
            batch_fail(b, 500, rc, NULL, "cannot finish the session: %s", hark_strerror(rc));
            batch_respond(b);
            return;
        }
        b->close_posted = 1;
    }
    if (b->tr.closed)
        batch_respond(b);
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
        b->err.status = 0; /* this one is answered, whatever was found before */
        char of[40] = "";  /* a chunked body's length is not known */
        if (!b->chunked)
            snprintf(of, sizeof of, " of %llu", (unsigned long long)b->content_length);
        batch_fail(b, HTTP_STATUS_REQUEST_TIMEOUT, HARK_E_TIMEOUT, NULL,
                   "request body too slow: %llu%s bytes in %.1f s, below the minimum of %d "
                   "bytes/s (--min-body-rate)",
                   (unsigned long long)b->received, of, active, rate);
        b->close_after = 1;
        batch_respond(b);
    }
}

void batch_drain(struct wsfe *fe)
{
    struct batch *next;
    for (struct batch *b = *wsfe_batches(fe); b; b = next) {
        next = b->next;
        batch_drain_one(b);
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
        return upload_body(b, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return upload_body_complete(b);
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
