/*
 * A connection's queued output (the WebSocket front end): messages ready
 * to write, oldest first, one per WRITEABLE as lws wants.
 *
 * Bounded: a connection's queued output is capped at max_output_bytes.
 * Past it, partials that a later message of their segment supersedes are
 * dropped (oldest first), then any partial; finals and errors are never
 * dropped: when they alone pass the cap, the client is not reading, and the
 * connection closes with 1008.
 *
 * Threads: the service thread.
 */
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "base/mem.h"
#include "front/ws/wsfe_state.h"

/* What a queued message holds in memory (the allocator's header aside). */
static size_t cost(const struct chan_msg *m)
{
    return sizeof *m + m->len + 1;
}

void outq_append(struct wsconn *c, struct chan_msg *m)
{
    while (m) {
        struct chan_msg *next = m->next;
        m->next = NULL;
        if (c->out_overflow && !(m->flags & MSG_LAST)) {
            hark_free(m); /* closing for max_output_bytes: only the end matters */
            m = next;
            continue;
        }
        c->out_bytes += cost(m);
        if (c->out_tail)
            c->out_tail->next = m;
        else
            c->out_head = m;
        c->out_tail = m;
        m = next;
    }
}

/* Unlinks m (after prev, or the head) from the output queue and frees it. */
static void drop(struct wsconn *c, struct chan_msg *prev, struct chan_msg *m)
{
    if (prev)
        prev->next = m->next;
    else
        c->out_head = m->next;
    if (c->out_tail == m)
        c->out_tail = prev;
    c->out_bytes -= cost(m);
    hark_free(m);
}

/* Keeps the output queue within max_output_bytes (see the top of the file).
 * Segments never go down along the queue, so a partial is superseded when
 * the next transcript after it has its segment. */
void outq_limit(struct wsconn *c)
{
    size_t cap = c->fe->cfg.max_output_bytes;
    if (!cap || c->out_bytes <= cap || c->out_overflow)
        return;
    struct chan_msg *pp = NULL, *p = NULL; /* the last partial seen, and its predecessor */
    for (struct chan_msg *prev = NULL, *m = c->out_head; m;) {
        struct chan_msg *next = m->next;
        int transcript = m->segment >= 0;
        if (transcript && p && p->segment == m->segment) {
            drop(c, pp, p);
            if (prev == p)
                prev = pp;
            p = NULL;
        }
        if (m->flags & MSG_PARTIAL) {
            pp = prev;
            p = m;
        } else if (transcript) {
            p = NULL;
        }
        prev = m;
        m = next;
    }
    for (struct chan_msg *prev = NULL, *m = c->out_head; m && c->out_bytes > cap;) {
        struct chan_msg *next = m->next;
        if (m->flags & MSG_PARTIAL)
            drop(c, prev, m);
        else
            prev = m;
        m = next;
    }
    if (c->out_bytes <= cap)
        return;
    /* Finals and errors alone pass the cap: the client does not read. */
    LOG_WARN(c->chan ? chan_session_id(c->chan) : NULL,
             "%zu bytes of results queued for a client that does not read (max %zu); closing",
             c->out_bytes, cap);
    while (c->out_head)
        drop(c, NULL, c->out_head);
    c->out_overflow = 1;
    c->close_code = LWS_CLOSE_STATUS_POLICY_VIOLATION;
    snprintf(c->close_reason, sizeof c->close_reason,
             "client not reading: over %zu bytes of results queued", cap);
    c->st = WC_CLOSING; /* input is ignored from now on */
    c->lim.closing = 1;
    wsconn_send(c, "", 0, MSG_LAST);
    /* The close frame waits behind what the socket holds: a peer that never
     * reads never takes it, so the connection goes after a grace period. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

void wsconn_send(struct wsconn *c, const char *data, size_t len, unsigned flags)
{
    struct chan_msg *m = hark_malloc(sizeof *m + len + 1);
    if (!m) {
        LOG_ERROR(NULL, "out of memory queueing a message; closing the connection");
        lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        return;
    }
    memset(m, 0, sizeof *m);
    m->flags = flags;
    m->segment = -1;
    m->len = len;
    memcpy(m->data, data, len);
    m->data[len] = 0;
    outq_append(c, m);
    outq_limit(c);
    lws_callback_on_writable(c->wsi);
}

/* One message per WRITEABLE, as lws wants. Returns -1 to close. */
int outq_write(struct wsconn *c)
{
    struct wsfe *fe = c->fe;
    struct chan_msg *m = c->out_head;
    if (!m)
        return 0;
    c->out_head = m->next;
    if (!c->out_head)
        c->out_tail = NULL;
    c->out_bytes -= cost(m);
    int last = (m->flags & MSG_LAST) != 0;
    if (m->len) {
        if (LWS_PRE + m->len > fe->tx_cap) {
            unsigned char *t = hark_realloc(fe->tx, LWS_PRE + m->len);
            if (!t) {
                hark_free(m);
                return -1;
            }
            fe->tx = t;
            fe->tx_cap = LWS_PRE + m->len;
        }
        memcpy(fe->tx + LWS_PRE, m->data, m->len);
        int n = lws_write(c->wsi, fe->tx + LWS_PRE, m->len,
                          (m->flags & MSG_BINARY) ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        stats_latency(&fe->stats, m, clock_mono_ns());
        if (n < 0) {
            hark_free(m);
            return -1;
        }
    }
    hark_free(m);
    if (last) {
        int code = c->close_code ? c->close_code : LWS_CLOSE_STATUS_NORMAL;
        lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)c->close_reason,
                         strlen(c->close_reason));
        c->st = WC_GONE;
        return -1;
    }
    if (c->out_head)
        lws_callback_on_writable(c->wsi);
    return 0;
}

void outq_clear(struct wsconn *c)
{
    while (c->out_head)
        drop(c, NULL, c->out_head);
}
