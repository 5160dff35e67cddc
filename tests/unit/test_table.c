/* The session host's resume table (src/host/table.c) and replay history
 * (src/host/outbox.c): tokens, lookups, refusals, detach and expiry, the
 * detached budget. Real chans on the real engine and worker pool. */
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "host/outbox.h"
#include "host/table.h"

static struct hark_engine *eng;
static struct workers *pool;
static int ended;

static void ended_cb(void *user, struct tsess *s)
{
    (void)user;
    (void)s;
    ended++;
}

static void render(void *user, const struct hark_event *ev, struct buf *out, unsigned *flags)
{
    (void)user;
    (void)flags;
    buf_printf(out, "{\"type\":\"%s\",\"seq\":%llu}", hark_event_type_name(ev->type),
               (unsigned long long)ev->seq);
}

static struct chan_msg *msg(uint64_t seq, unsigned flags, int64_t segment, size_t len)
{
    struct chan_msg *m = hark_calloc(1, sizeof *m + len + 1);
    m->flags = flags | MSG_SEQ;
    m->seq = seq;
    m->segment = segment;
    m->len = len;
    memset(m->data, 'x', len);
    return m;
}

static void add(struct outbox *o, uint64_t seq, unsigned flags, int64_t segment, size_t len)
{
    outbox_push(o, msg(seq, flags, segment, len));
}

static void test_outbox(void)
{
    struct outbox o;
    outbox_init(&o);
    ASSERT(outbox_covers(&o, -1));
    ASSERT(!outbox_covers(&o, 0));   /* nothing sent yet */
    add(&o, 0, 0, 0, 10);            /* speech_started */
    add(&o, 1, MSG_PARTIAL, 0, 100); /* superseded by 2 */
    add(&o, 2, MSG_PARTIAL, 0, 100); /* superseded by the final */
    add(&o, 3, MSG_FINAL, 0, 100);
    add(&o, 4, MSG_PARTIAL, 1, 100);        /* the newest transcript: kept */
    struct chan_msg *ack = msg(0, 0, 0, 5); /* no MSG_SEQ: not kept (freed) */
    ack->flags = 0;
    outbox_push(&o, ack);
    ASSERT_EQ(o.next_seq, 5);
    ASSERT_EQ(o.count, 5);
    for (int64_t k = -1; k <= 4; k++)
        ASSERT(outbox_covers(&o, k));
    ASSERT(!outbox_covers(&o, 5));
    size_t before = o.bytes;
    size_t freed = outbox_drop_partials(&o);
    ASSERT_EQ(before - freed, o.bytes);
    ASSERT_EQ(o.count, 3);
    int n = 0;
    uint64_t seqs[8];
    for (struct chan_msg *m = o.head; m; m = m->next)
        seqs[n++] = m->seq;
    ASSERT_EQ(n, 3);
    ASSERT_EQ(seqs[0], 0);
    ASSERT_EQ(seqs[1], 3);
    ASSERT_EQ(seqs[2], 4);
    ASSERT(outbox_covers(&o, -1)); /* superseded partials are no loss */
    ASSERT_EQ(o.tail->seq, 4);
    add(&o, 5, MSG_FINAL, 1, 100);
    ASSERT_EQ(o.tail->seq, 5);
    /* trimming the front loses events: a resume needing them is refused */
    ASSERT(outbox_over(&o, SIZE_MAX, 3) && !outbox_over(&o, SIZE_MAX, 4));
    outbox_trim_before(&o, 4, 0, 0); /* only before seq 4 */
    ASSERT_EQ(o.head->seq, 4);
    ASSERT(!outbox_covers(&o, -1));
    ASSERT(!outbox_covers(&o, 2));
    ASSERT(outbox_covers(&o, 3));
    /* the count bounds like the bytes */
    outbox_trim(&o, SIZE_MAX, 1);
    ASSERT_EQ(o.count, 1);
    ASSERT_EQ(o.head->seq, 5);
    outbox_trim(&o, 0, SIZE_MAX);
    ASSERT(!o.head && !o.tail && o.bytes == 0 && o.count == 0);
    ASSERT(!outbox_covers(&o, 4));
    ASSERT(outbox_covers(&o, 5));
    outbox_clear(&o);
}

static struct chan *new_chan(void)
{
    struct chan *c;
    char err[256];
    ASSERT_OK(chan_create(&c, pool, eng, NULL, NULL, render, NULL, 1 << 20, err, sizeof err));
    return c;
}

static void test_table(void)
{
    struct table *t;
    struct metrics *m;
    ASSERT_OK(metrics_create(&m));
    struct table_cfg cfg = {.resume_window = 2,
                            .resume_buffer_bytes = 4096,
                            .replay_bytes = 65536,
                            .metrics = m,
                            .ended_cb = ended_cb};
    ASSERT_OK(table_create(&t, &cfg));
    int conn;
    struct tsess *a, *b, *f;
    ASSERT_OK(table_add(t, new_chan(), NULL, &conn, &a));
    ASSERT_OK(table_add(t, new_chan(), NULL, &conn, &b));
    ASSERT_EQ(strlen(a->token), 32);
    ASSERT_EQ(strspn(a->token, "0123456789abcdef"), 32);
    ASSERT(strcmp(a->token, b->token) != 0);
    ASSERT(strcmp(a->id, b->id) != 0);
    /* by id without a token (NATS sessions), and every session */
    ASSERT(table_find(t, a->id) == a && table_find(t, b->id) == b && !table_find(t, "nope"));
    ASSERT_EQ(table_count(t), 2);
    int seen = 0;
    for (struct tsess *i = table_first(t); i; i = i->next)
        seen += i == a ? 1 : i == b ? 2 : 100;
    ASSERT_EQ(seen, 3);
    char msgbuf[300], bad[33];
    snprintf(bad, sizeof bad, "%s", a->token);
    bad[31] = bad[31] == '0' ? '1' : '0';
    ASSERT_EQ(table_resume(t, a->id, bad, -1, 0, &f, msgbuf, sizeof msgbuf), HARK_E_RESUME_FAILED);
    ASSERT(!f);
    ASSERT_EQ(table_resume(t, a->id, b->token, -1, 0, &f, msgbuf, sizeof msgbuf),
              HARK_E_RESUME_FAILED);
    ASSERT_EQ(table_resume(t, a->id, "", -1, 0, &f, msgbuf, sizeof msgbuf), HARK_E_RESUME_FAILED);
    ASSERT_EQ(table_resume(t, "nope", a->token, -1, 0, &f, msgbuf, sizeof msgbuf),
              HARK_E_RESUME_FAILED);
    ASSERT_OK(table_resume(t, a->id, a->token, -1, 0, &f, msgbuf, sizeof msgbuf));
    ASSERT(f == a && f->conn == &conn); /* attached: the caller takes it over */
    /* the client says it sent less than the server holds */
    a->audio_bytes = 1000;
    ASSERT_EQ(table_resume(t, a->id, a->token, -1, 999, &f, msgbuf, sizeof msgbuf),
              HARK_E_RESUME_FAILED);
    ASSERT(strstr(msgbuf, "999"));
    /* events the server never sent */
    ASSERT_EQ(table_resume(t, a->id, a->token, 0, 1000, &f, msgbuf, sizeof msgbuf),
              HARK_E_RESUME_FAILED);
    table_sent(t, a, msg(0, 0, 0, 10)); /* the table's now */
    ASSERT_OK(table_resume(t, a->id, a->token, 0, 1000, &f, msgbuf, sizeof msgbuf));

    /* detached: kept for the window, not beyond */
    table_detach(t, a, 1);
    ASSERT_EQ(table_detached(t), 1);
    ASSERT(!a->conn);
    table_tick(t, 1 + 1000000000LL);
    ASSERT_EQ(table_detached(t), 1);
    ASSERT_EQ(ended, 0);
    ASSERT_OK(table_resume(t, a->id, a->token, 0, 1000, &f, msgbuf, sizeof msgbuf));
    table_attach(t, a, &conn);
    ASSERT_EQ(table_detached(t), 0);
    table_detach(t, a, 10);
    /* the expiry frees the session: ask with copies of its id and token */
    char id[sizeof a->id], token[sizeof a->token];
    memcpy(id, a->id, sizeof id);
    memcpy(token, a->token, sizeof token);
    table_tick(t, 10 + 2100000000LL);
    ASSERT_EQ(ended, 1);
    ASSERT_EQ(table_detached(t), 0);
    ASSERT_EQ(table_resume(t, id, token, 0, 1000, &f, msgbuf, sizeof msgbuf), HARK_E_RESUME_FAILED);
    table_end(t, b);
    ASSERT_EQ(ended, 2);
    ASSERT_EQ(table_count(t), 0);
    ASSERT(!table_first(t));
    table_destroy(t);

    /* resume off: a drop ends the session */
    cfg.resume_window = 0;
    ASSERT_OK(table_create(&t, &cfg));
    ASSERT_OK(table_add(t, new_chan(), NULL, &conn, &a));
    table_detach(t, a, 1);
    ASSERT_EQ(ended, 3);
    table_destroy(t);
    metrics_destroy(m);
}

int main(void)
{
    char err[256];
    if (hark_engine_load(&eng, "pocketsphinx", NULL, err, sizeof err)) {
        fprintf(stderr, "engine: %s\n", err);
        return 1;
    }
    ASSERT_OK(workers_create(&pool, 1, NULL, NULL));
    RUN(test_outbox);
    RUN(test_table);
    workers_destroy(pool);
    hark_engine_destroy(eng);
    CHECK_NO_LEAKS();
    return 0;
}
