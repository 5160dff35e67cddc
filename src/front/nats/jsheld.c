/*
 * Held JetStream input and its acknowledgement rule; see jsheld.h.
 */
#include "front/nats/jsheld.h"

#include "base/mem.h"

int jsheld_push(struct jsheld_list *l, natsMsg *msg, uint64_t sseq, enum jsheld_kind kind,
                size_t audio_len)
{
    struct jsheld *h = hark_calloc(1, sizeof *h);
    if (!h)
        return -1;
    h->msg = msg;
    h->sseq = sseq;
    h->kind = kind;
    if (kind == JSHELD_CHUNK) {
        l->bytes += (int64_t)audio_len;
        h->end = l->bytes;
    }
    if (l->tail)
        l->tail->next = h;
    else
        l->head = h;
    l->tail = h;
    return 0;
}

static int covered(const struct jsheld *h, int64_t committed, int raw)
{
    return raw && h->end <= committed;
}

const struct jsheld *jsheld_take_covered(struct jsheld_list *l, struct jsheld **acked,
                                         int64_t committed, int raw, int closed)
{
    struct jsheld **tail = acked;
    while (*tail)
        tail = &(*tail)->next;
    const struct jsheld *last_chunk = NULL;
    struct jsheld *keep = NULL, **keep_tail = &keep, *last_kept = NULL;
    int stop = 0;
    while (l->head) {
        struct jsheld *h = l->head;
        l->head = h->next;
        h->next = NULL;
        int take;
        if (closed)
            take = 1;
        else if (stop || h->kind == JSHELD_START || h->kind == JSHELD_END)
            take = 0;
        else if (h->kind == JSHELD_CHUNK)
            take = covered(h, committed, raw), stop = !take;
        else {
            /* a state change: acked only together with a later covered chunk */
            take = 0;
            for (const struct jsheld *x = l->head; x; x = x->next) {
                if (x->kind == JSHELD_CHUNK) {
                    take = covered(x, committed, raw);
                    break;
                }
            }
            stop = !take;
        }
        if (take) {
            if (h->kind == JSHELD_CHUNK)
                last_chunk = h;
            *tail = h;
            tail = &h->next;
        } else {
            *keep_tail = h;
            keep_tail = &h->next;
            last_kept = h;
        }
    }
    l->head = keep;
    l->tail = last_kept;
    return last_chunk;
}

void jsheld_free(struct jsheld *h, int ack)
{
    while (h) {
        struct jsheld *n = h->next;
        if (ack && h->msg)
            natsMsg_Ack(h->msg, NULL);
        natsMsg_Destroy(h->msg);
        hark_free(h);
        h = n;
    }
}

int jsheld_count(const struct jsheld *h)
{
    int n = 0;
    for (; h; h = h->next)
        n++;
    return n;
}
