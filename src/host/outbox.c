#include "host/outbox.h"

#include <string.h>

#include "base/mem.h"

size_t outbox_cost(const struct chan_msg *m)
{
    return sizeof *m + m->len + 1;
}

void outbox_init(struct outbox *o)
{
    memset(o, 0, sizeof *o);
}

void outbox_clear(struct outbox *o)
{
    struct chan_msg *m = o->head;
    while (m) {
        struct chan_msg *n = m->next;
        hark_free(m);
        m = n;
    }
    outbox_init(o);
}

void outbox_push(struct outbox *o, struct chan_msg *m)
{
    if (!(m->flags & MSG_SEQ)) {
        hark_free(m);
        return;
    }
    m->next = NULL;
    if (o->tail)
        o->tail->next = m;
    else
        o->head = m;
    o->tail = m;
    o->bytes += outbox_cost(m);
    o->count++;
    if (m->seq + 1 > o->next_seq)
        o->next_seq = m->seq + 1;
}

void outbox_lose(struct outbox *o, uint64_t seq)
{
    if (!o->lost || seq > o->lost_max)
        o->lost_max = seq;
    o->lost = 1;
    if (seq + 1 > o->next_seq)
        o->next_seq = seq + 1;
}

int outbox_over(const struct outbox *o, size_t bytes, size_t count)
{
    return o->bytes > bytes || o->count > count;
}

static void drop_front(struct outbox *o)
{
    struct chan_msg *m = o->head;
    o->head = m->next;
    if (!o->head)
        o->tail = NULL;
    o->bytes -= outbox_cost(m);
    o->count--;
    if (!o->lost || m->seq > o->lost_max)
        o->lost_max = m->seq;
    o->lost = 1;
    hark_free(m);
}

void outbox_trim(struct outbox *o, size_t bytes, size_t count)
{
    while (o->head && outbox_over(o, bytes, count))
        drop_front(o);
}

void outbox_trim_before(struct outbox *o, uint64_t before, size_t bytes, size_t count)
{
    while (o->head && outbox_over(o, bytes, count) && o->head->seq < before)
        drop_front(o);
}

size_t outbox_drop_partials(struct outbox *o)
{
    /* Each utterance ends in exactly one final before the next one's
     * partials, so any transcript after a partial supersedes it: only a
     * partial that is the newest transcript held must stay. */
    struct chan_msg *newest = NULL;
    for (struct chan_msg *m = o->head; m; m = m->next)
        if (m->flags & (MSG_PARTIAL | MSG_FINAL))
            newest = m;
    size_t freed = 0;
    struct chan_msg **pp = &o->head, *prev = NULL;
    while (*pp) {
        struct chan_msg *m = *pp;
        if ((m->flags & MSG_PARTIAL) && m != newest) {
            *pp = m->next;
            freed += outbox_cost(m);
            o->count--;
            hark_free(m);
            continue;
        }
        prev = m;
        pp = &m->next;
    }
    o->tail = prev;
    o->bytes -= freed;
    return freed;
}

int outbox_covers(const struct outbox *o, int64_t last_seq)
{
    if (last_seq < -1 || last_seq + 1 > (int64_t)o->next_seq)
        return 0;
    return !o->lost || last_seq >= (int64_t)o->lost_max;
}
