/*
 * The request body of a batch transcription into its session (batch.h):
 * raw audio straight to the session, or a multipart form whose file part is
 * the audio (lws_spa parses the form; the API's file() starts the session
 * at the file part); chunked bodies decoded (chunked.c); reading paused
 * while the session's buffer is over half full, with the client's hang-up
 * noticed while paused. Service thread only.
 */
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/mem.h"
#include "front/ws/batch.h"

#ifdef POLLRDHUP
#define RDHUP POLLRDHUP
#else
#define RDHUP 0x2000 /* Linux; <poll.h> only names it with _GNU_SOURCE */
#endif

/* While paused the wait is ours, not the client's: lws's body timeout
 * (5 s between body chunks) must not run, or a long pause drops the upload. */
void upload_pause(struct batch *b)
{
    if (!b->paused) {
        b->paused = 1;
        b->paused_since = clock_mono_ns();
        lws_rx_flow_control(b->wsi, 0);
        lws_set_timeout(b->wsi, NO_PENDING_TIMEOUT, 0);
    }
}

void upload_resume(struct batch *b)
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
void upload_flush(struct batch *b)
{
    if (!b->pend.len || !b->chan || b->err.status)
        return;
    int rc = chan_post_audio(b->chan, b->pend.data, b->pend.len);
    if (rc == HARK_E_LIMIT) {
        upload_pause(b);
        return;
    }
    if (rc) {
        batch_fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, rc, NULL, "cannot queue audio: %s",
                   hark_strerror(rc));
        return;
    }
    buf_reset(&b->pend);
    if (chan_pending_bytes(b->chan) > wsfe_config(b->fe)->session_buffer_bytes / 2)
        upload_pause(b);
}

static void upload_feed(struct batch *b, const void *data, size_t len)
{
    if (b->err.status || !b->chan || !len)
        return; /* after an error the rest of the body is read and dropped */
    buf_append(&b->pend, data, len);
    if (b->pend.oom) {
        batch_fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, HARK_E_NOMEM, NULL, "out of memory");
        return;
    }
    if (b->pend.len >= POST_BYTES)
        upload_flush(b);
}

/* ------------------------------------------------------------ multipart form */

const char *upload_form_field(const struct batchapi_req *rq, int i)
{
    struct batch *b = rq->user;
    return b->spa && lws_spa_get_length(b->spa, i) > 0 ? lws_spa_get_string(b->spa, i) : NULL;
}

/* The file part starts: the session starts with the fields sent before it. */
static void form_file_open(struct batch *b)
{
    int nth = ++b->file_parts;
    if (nth == 1 && b->err.status)
        return;
    struct hark_options *o = NULL;
    char err[512];
    int rc = hark_options_copy(&o, b->cx.defaults);
    if (rc) {
        batch_fail(b, HTTP_STATUS_INTERNAL_SERVER_ERROR, rc, NULL, "out of memory");
        return;
    }
    struct batchapi_refusal r = {0};
    if (b->api->file(b->st, &b->cx, &b->rq, nth, o, &r)) {
        batch_fail(b, r.status, r.err, r.param, "%s", r.msg);
    } else if ((rc = batch_start_session(b, o, err, sizeof err))) {
        batch_fail(b, batchapi_status(rc), rc, r.param, "%s", err);
    }
    hark_options_destroy(o);
}

int upload_form_file(void *data, const char *name, const char *filename, char *buf, int len,
                     enum lws_spa_fileupload_states st)
{
    struct batch *b = data;
    (void)filename;
    if (st == LWS_UFS_CLOSE || !name || strcmp(name, b->api->file_field))
        return 0; /* other file fields are ignored */
    if (st == LWS_UFS_OPEN) {
        form_file_open(b);
        return 0;
    }
    if (b->file_parts == 1 && len > 0)
        upload_feed(b, buf, (size_t)len);
    return 0;
}

/* Answered before the body's end: the connection closes after the answer. */
static void fail_now(struct batch *b, unsigned status, int err, const char *param, const char *msg)
{
    b->err.status = 0; /* this one is answered, whatever was found before */
    batch_fail(b, status, err, param, "%s", msg);
    b->close_after = 1;
    batch_respond(b);
}

static int on_body_data(struct batch *b, const void *in, size_t len)
{
    if (b->sha)
        EVP_DigestUpdate(b->sha, in, len);
    if (!b->api->fields) {
        upload_feed(b, in, len);
    } else if (!b->form_failed && lws_spa_process(b->spa, in, (int)len)) {
        b->form_failed = 1;
        batch_fail(
            b, HTTP_STATUS_BAD_REQUEST, HARK_E_PROTOCOL, NULL,
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
        fail_now(b, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, HARK_E_LIMIT, b->api->body_param, msg);
        return 1;
    }
    if (b->err.status != HTTP_STATUS_REQ_ENTITY_TOO_LARGE) {
        b->err.status = 0; /* the size is what the client must fix first */
        batch_fail(b, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, HARK_E_LIMIT, b->api->body_param, "%s",
                   msg);
        batch_release_chan(b); /* nothing more is recognised */
    }
    return 0;
}

/* A chunked body ends at its last chunk, which lws does not see: it would
 * wait for more. So the request ends here, and the connection closes after
 * the answer (lws cannot parse a next request on it). */
int upload_body(struct batch *b, const void *in, size_t len)
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
        return upload_body_complete(b);
    }
    return 0;
}

int upload_body_complete(struct batch *b)
{
    if (b->phase != P_RECEIVING)
        return 0;
    b->phase = P_PROCESSING;
    if (b->api->fields) {
        lws_spa_finalize(b->spa);
        if (!b->form_failed) /* a refusal lands in b->err, after any earlier one */
            b->api->check(b->st, &b->cx, &b->rq, b->file_parts, &b->err);
    }
    /* The answer can take a while (recognition at a multiple of real time):
     * no lws timeout on our own work. */
    lws_set_timeout(b->wsi, NO_PENDING_TIMEOUT, 0);
    if (b->err.status || !b->chan) {
        batch_respond(b);
        return 0;
    }
    b->close_wanted = 1;
    batch_drain_one(b); /* posts what is left, then the close */
    return 0;
}

/* While reading is paused lws does not see the client hang up (a FIN is
 * only noticed by reading), and the kernel may hold megabytes of its upload:
 * without this, recognition would go on for a client long gone. A peer that
 * shut its side before lws consumed the body is gone: lws closes on that
 * end-of-stream anyway once it reads again (it has no half-close). */
int upload_client_gone(struct batch *b)
{
    int fd = lws_get_socket_fd(b->wsi);
    struct pollfd p = {.fd = fd, .events = RDHUP};
    return fd >= 0 && poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP | RDHUP));
}
