/* The input a JetStream session holds until finals cover it
 * (front/nats/jsheld.h): which prefix a commit point acknowledges. The
 * messages are NULL here: the rule touches only positions and kinds. */
#include "check.h"
#include "front/nats/jsheld.h"

/* kinds: S start, C chunk of 100 bytes, T state change, E end */
static void build(struct jsheld_list *l, const char *kinds)
{
    uint64_t sseq = 1;
    for (const char *k = kinds; *k; k++) {
        enum jsheld_kind kind = *k == 'S'   ? JSHELD_START
                                : *k == 'C' ? JSHELD_CHUNK
                                : *k == 'T' ? JSHELD_STATE
                                            : JSHELD_END;
        ASSERT_OK(jsheld_push(l, NULL, sseq++, kind, 100));
    }
}

/* the kinds of a chain, as build spells them */
static void spell(const struct jsheld *h, char *out)
{
    for (; h; h = h->next)
        *out++ = "SCTE"[h->kind];
    *out = 0;
}

static void check_split(const char *kinds, int64_t committed, int raw, int closed,
                        const char *acked, const char *kept, int64_t last_end)
{
    struct jsheld_list l = {0};
    struct jsheld *a = NULL;
    build(&l, kinds);
    const struct jsheld *last = jsheld_take_covered(&l, &a, committed, raw, closed);
    char got_a[32], got_k[32];
    spell(a, got_a);
    spell(l.head, got_k);
    ASSERT_STR_EQ(got_a, acked);
    ASSERT_STR_EQ(got_k, kept);
    ASSERT_EQ(last ? last->end : -1, last_end);
    /* the tail is the list's last element, so pushing goes on working */
    const struct jsheld *t = l.head;
    while (t && t->next)
        t = t->next;
    ASSERT(l.tail == t);
    ASSERT_EQ(jsheld_count(a) + jsheld_count(l.head), (int)strlen(kinds));
    jsheld_free(a, 0);
    jsheld_free(l.head, 0);
}

static void test_covered_prefix(void)
{
    /* nothing covered yet: everything stays */
    check_split("SCCC", 0, 1, 0, "", "SCCC", -1);
    /* the start stays until closed; covered chunks go, up to the first one
     * that is not covered (200: the first two chunks end at 100 and 200) */
    check_split("SCCC", 200, 1, 0, "CC", "SC", 200);
    check_split("SCCC", 250, 1, 0, "CC", "SC", 200);
    /* a state change goes with a later covered chunk, not alone */
    check_split("SCTCC", 200, 1, 0, "CTC", "SC", 200);
    check_split("SCCT", 200, 1, 0, "CC", "ST", 200);
    check_split("SCTC", 100, 1, 0, "C", "STC", 100);
    /* the end stays until closed too, even after covered audio */
    check_split("SCCE", 200, 1, 0, "CC", "SE", 200);
    /* nothing after a chunk that is not covered, even if a later one would be */
    check_split("SCCC", 150, 1, 0, "C", "SCC", 100);
    /* a container encoding has no byte positions: held to the end */
    check_split("SCCC", 1000, 0, 0, "", "SCCC", -1);
    /* closed: all of it */
    check_split("SCTCE", 0, 1, 1, "SCTCE", "", 200);
    check_split("SCCE", 0, 0, 1, "SCCE", "", 200);
}

static void test_appends_to_acked(void)
{
    /* the batch hook takes twice before the acks go out: the second
     * prefix follows the first */
    struct jsheld_list l = {0};
    struct jsheld *a = NULL;
    build(&l, "SCCC");
    jsheld_take_covered(&l, &a, 100, 1, 0);
    build(&l, "C");
    ASSERT_EQ(l.bytes, 400);
    const struct jsheld *last = jsheld_take_covered(&l, &a, 400, 1, 0);
    ASSERT_EQ(last->end, 400);
    char got[32];
    spell(a, got);
    ASSERT_STR_EQ(got, "CCCC");
    spell(l.head, got);
    ASSERT_STR_EQ(got, "S");
    jsheld_free(a, 0);
    jsheld_free(l.head, 0);
}

int main(void)
{
    RUN(test_covered_prefix);
    RUN(test_appends_to_acked);
    return 0;
}
