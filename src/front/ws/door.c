/*
 * The front door of plain-text connections. lws drops requests past its
 * HTTP parser's fixed limits without an answer (head.h); here each new
 * connection's request head is looked at first and either refused with its
 * 400, 414 or 431 and a JSON body, or handed to lws' HTTP server.
 *
 * How: lws accepts every connection as a raw socket (listen_accept_role
 * "raw-skt", protocol "door"). At adoption, before anything is read, the
 * door takes the socket over: the connection continues on a dup(), and the
 * raw wsi's fd number is pointed at a fresh unconnected socket, which is
 * what lws shuts down and closes with it. The head is then read with
 * MSG_PEEK from a timer (a few ms apart; heads nearly always come in one
 * segment), so nothing is consumed: an acceptable request goes to lws
 * untouched (lws_adopt_socket_vhost) and lws reads it from the socket.
 *
 * One exception: a request with more query arguments than lws' fragment
 * table holds (HEAD_REWRITE_ARGS) is consumed and handed over rewritten,
 * its query moved into the x-hark-query header, through
 * lws_adopt_socket_vhost_readbuf. That works for requests without a body
 * only (lws 4.1 feeds a read buffer's head to the body parser again), so a
 * request with a body and that many arguments gets 414.
 *
 * With TLS lws decrypts inside its own wsi, so there is no door: the
 * library's limits apply as they are (docs/security.md).
 */
#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/ws/head.h"
#include "front/ws/wsfe.h"

#define DOOR_TIMEOUT_NS 10000000000LL /* to send a whole head */
#define DOOR_LINGER_NS 2000000000LL   /* to read the rest after a refusal */

/* A connection at the door (owned by its timer). */
struct door {
    lws_sorted_usec_list_t sul;
    struct lws_context *ctx;
    struct lws_vhost *vhost;
    int fd;
    int64_t deadline;
    unsigned delay_us; /* next peek */
    struct buf resp;   /* a refusal: sent, then input is read until EOF */
    size_t resp_off;
};

static void door_free(struct door *d)
{
    if (d->fd >= 0)
        close(d->fd);
    buf_deinit(&d->resp);
    hark_free(d);
}

static void again(struct door *d, void (*cb)(lws_sorted_usec_list_t *))
{
    lws_sul_schedule(d->ctx, 0, &d->sul, cb, d->delay_us);
    if (d->delay_us < 50000)
        d->delay_us *= 2;
}

/* After a refusal: send it, then discard input until the client closes
 * (closing with unread input would reset the connection, and the reset can
 * destroy the answer before the client reads it). */
static void linger_cb(lws_sorted_usec_list_t *sul)
{
    struct door *d = lws_container_of(sul, struct door, sul);
    while (d->resp_off < d->resp.len) {
        ssize_t n = send(d->fd, d->resp.data + d->resp_off, d->resp.len - d->resp_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
                clock_mono_ns() < d->deadline) {
                again(d, linger_cb);
                return;
            }
            door_free(d);
            return;
        }
        d->resp_off += (size_t)n;
        if (d->resp_off == d->resp.len)
            shutdown(d->fd, SHUT_WR);
    }
    char sink[4096];
    for (;;) {
        ssize_t n = recv(d->fd, sink, sizeof sink, MSG_DONTWAIT);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && clock_mono_ns() < d->deadline) {
            again(d, linger_cb);
            return;
        }
        door_free(d);
        return;
    }
}

static void refuse(struct door *d, long status, const char *why)
{
    const char *text = status == 414   ? "URI Too Long"
                       : status == 431 ? "Request Header Fields Too Large"
                                       : "Bad Request";
    struct buf body;
    buf_init(&body);
    buf_puts(&body, "{\"error\":{");
    buf_json_key(&body, "code");
    buf_json_str(&body, hark_err_code(status == 400 ? HARK_E_PROTOCOL : HARK_E_LIMIT));
    buf_json_key(&body, "message");
    buf_json_str(&body, why);
    buf_puts(&body, "}}");
    char line[256];
    snprintf(line, sizeof line,
             "HTTP/1.1 %ld %s\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
             "cache-control: no-store\r\nconnection: close\r\n\r\n",
             status, text, body.len);
    buf_puts(&d->resp, line);
    buf_append(&d->resp, body.data ? body.data : "", body.len);
    buf_deinit(&body);
    LOG_INFO(NULL, "request refused before parsing: %ld %s", status, why);
    d->deadline = clock_mono_ns() + DOOR_LINGER_NS;
    d->delay_us = 1000;
    if (d->resp.oom) {
        door_free(d);
        return;
    }
    linger_cb(&d->sul);
}

/* Query arguments of the request line, whether the head announces a body
 * (Content-Length other than 0, or Transfer-Encoding), and whether it
 * carries the door's own header. */
static void describe(const char *head, size_t len, size_t *args, int *body, int *reserved)
{
    *reserved = 0;
    const char *nl = memchr(head, '\n', len), *sp = memchr(head, ' ', len);
    *args = 0;
    *body = 0;
    const char *q = sp && nl ? memchr(sp, '?', (size_t)(nl - sp)) : NULL;
    if (q) {
        *args = 1;
        for (const char *p = q; p < nl && *p != ' '; p++)
            *args += *p == '&' || *p == ';';
    }
    for (const char *p = nl ? nl + 1 : head + len; p < head + len;) {
        const char *e = memchr(p, '\n', (size_t)(head + len - p));
        size_t l = e ? (size_t)(e - p) : (size_t)(head + len - p);
        if (l >= sizeof HEAD_QUERY_HEADER - 1 &&
            !strncasecmp(p, HEAD_QUERY_HEADER, sizeof HEAD_QUERY_HEADER - 1))
            *reserved = 1;
        if (l >= 18 && !strncasecmp(p, "transfer-encoding:", 18))
            *body = 1;
        if (l >= 15 && !strncasecmp(p, "content-length:", 15)) {
            for (const char *v = p + 15; v < p + l; v++)
                if (*v >= '1' && *v <= '9')
                    *body = 1;
        }
        p += l + 1;
    }
}

static void peek_cb(lws_sorted_usec_list_t *sul)
{
    struct door *d = lws_container_of(sul, struct door, sul);
    char buf[HEAD_MAX_BYTES + 1], why[160];
    ssize_t n = recv(d->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        door_free(d); /* gone */
        return;
    }
    long r = n > 0 ? head_scan(buf, (size_t)n, why, sizeof why) : 0;
    if (r < 0) {
        refuse(d, -r, why);
        return;
    }
    if (r == 0) {
        if (clock_mono_ns() > d->deadline)
            door_free(d); /* lws' own header timeout also just closes */
        else
            again(d, peek_cb);
        return;
    }
    size_t args;
    int body, reserved;
    describe(buf, (size_t)r, &args, &body, &reserved);
    if (reserved) {
        refuse(d, 400, "the header " HEAD_QUERY_HEADER " is reserved");
        return;
    }
    if (args <= HEAD_REWRITE_ARGS) {
        /* untouched: lws reads it from the socket */
        int fd = d->fd;
        d->fd = -1;
        struct lws_vhost *vh = d->vhost;
        door_free(d);
        if (!lws_adopt_socket_vhost(vh, fd))
            LOG_WARN(NULL, "the HTTP server did not take a connection");
        return;
    }
    if (body) {
        snprintf(why, sizeof why,
                 "more than %d query arguments on a request with a body; send fewer",
                 HEAD_REWRITE_ARGS);
        refuse(d, 414, why);
        return;
    }
    char out[2 * HEAD_MAX_BYTES + 64];
    long w = head_rewrite(buf, (size_t)r, out, sizeof out);
    if (w < 0 || recv(d->fd, buf, (size_t)r, MSG_DONTWAIT) != (ssize_t)r) {
        door_free(d);
        return;
    }
    int fd = d->fd;
    d->fd = -1;
    struct lws_vhost *vh = d->vhost;
    door_free(d);
    if (!lws_adopt_socket_vhost_readbuf(vh, fd, out, (size_t)w))
        LOG_WARN(NULL, "the HTTP server did not take a connection");
}

/* Takes the raw wsi's connection over (see the top). 0 or -1. */
static int take(struct lws *wsi)
{
    int fd = lws_get_socket_fd(wsi);
    struct door *d = hark_calloc(1, sizeof *d);
    if (!d || fd < 0) {
        hark_free(d);
        return -1;
    }
    buf_init(&d->resp);
    d->ctx = lws_get_context(wsi);
    d->vhost = lws_get_vhost(wsi);
    d->deadline = clock_mono_ns() + DOOR_TIMEOUT_NS;
    /* A client sends its head right after connecting: look at once, then
     * less and less often (1 ms doubling to 50 ms; lws' timers have
     * millisecond resolution, so the door adds about 1 ms to a new
     * connection: 1.2 ms median to the first byte of /healthz, 0.2 ms
     * without it). */
    d->delay_us = 1000;
    d->fd = dup(fd);
    int dummy = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (d->fd < 0 || dummy < 0 || dup2(dummy, fd) < 0) {
        LOG_WARN(NULL, "cannot take a new connection: %s", strerror(errno));
        if (dummy >= 0)
            close(dummy);
        door_free(d);
        return -1;
    }
    close(dummy);
    lws_sul_schedule(d->ctx, 0, &d->sul, peek_cb, 1);
    return 0;
}

int door_callback(struct lws *wsi, int reason, void *user, void *in, size_t len)
{
    (void)user;
    (void)in;
    (void)len;
    if (reason == LWS_CALLBACK_RAW_ADOPT) {
        take(wsi);
        return -1; /* the raw wsi goes (with the placeholder socket) */
    }
    return 0;
}
