/* The JetStream session record (front/nats/jsrec.h): one spelling per
 * record, keys a KV bucket accepts, and the commit point read back from a
 * rendered NATS final. */
#include <string.h>

#include "base/buf.h"
#include "check.h"
#include "front/nats/jsrec.h"
#include "front/nats/nmsg.h"

static void test_round_trip(void)
{
    struct jsrec r = {
        .seq = 35, .seg = 1, .acked_bytes = 236800, .acked_sseq = 310, .responding = 1};
    char out[JSREC_MAX];
    size_t n = jsrec_format(&r, out);
    ASSERT_STR_EQ(out, "hark-js1 seq=35 seg=1 ab=236800 as=310 st=1 cl=0");
    struct jsrec back;
    ASSERT_EQ(jsrec_parse(&back, out, n), 0);
    ASSERT(!memcmp(&back, &r, sizeof r));
    r = (struct jsrec){.seq = UINT64_MAX / 2, .seg = INT64_MAX, .closed = 1};
    n = jsrec_format(&r, out);
    ASSERT_EQ(jsrec_parse(&back, out, n), 0);
    ASSERT_EQ(back.seg, INT64_MAX);
    ASSERT_EQ(back.closed, 1);
}

static void test_refused(void)
{
    static const char *bad[] = {
        "",
        "hark-js1",
        "hark-js2 seq=1 seg=0 ab=0 as=0 st=0 cl=0",                    /* another version */
        "hark-js1 seq=1 seg=0 ab=0 as=0 st=0",                         /* a field missing */
        "hark-js1 seq=1 seg=0 ab=0 as=0 st=0 cl=0 ",                   /* trailing space */
        "hark-js1 seq=01 seg=0 ab=0 as=0 st=0 cl=0",                   /* a second spelling */
        "hark-js1 seq=1 seg=0 ab=0 as=0 st=2 cl=0",                    /* st is 0 or 1 */
        "hark-js1 seq=1 seg=-1 ab=0 as=0 st=0 cl=0",                   /* no signs */
        "hark-js1 seg=0 seq=1 ab=0 as=0 st=0 cl=0",                    /* order is fixed */
        "hark-js1 seq=1 seg=9223372036854775808 ab=0 as=0 st=0 cl=0",  /* past int64 */
        "hark-js1 seq=12345678901234567890 seg=0 ab=0 as=0 st=0 cl=0", /* 20 digits */
    };
    struct jsrec r;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ASSERT_EQ(jsrec_parse(&r, bad[i], strlen(bad[i])), -1);
    ASSERT_EQ(jsrec_parse(&r, NULL, 0), -1);
    /* only the bytes given: a record cut short does not parse */
    const char *ok = "hark-js1 seq=1 seg=0 ab=0 as=0 st=0 cl=0";
    ASSERT_EQ(jsrec_parse(&r, ok, strlen(ok)), 0);
    ASSERT_EQ(jsrec_parse(&r, ok, strlen(ok) - 1), -1);
}

static void test_key(void)
{
    char k[JSREC_KEY_MAX];
    ASSERT_EQ(jsrec_key("sess-1_A", k, sizeof k), 0);
    ASSERT_STR_EQ(k, "sess-1_A");
    ASSERT_EQ(jsrec_key("a:b@c=d/e", k, sizeof k), 0);
    ASSERT_STR_EQ(k, "a=3Ab=40c=3Dd=2Fe");
    ASSERT_EQ(jsrec_key("", k, sizeof k), -1);
    ASSERT_EQ(jsrec_key("abcdef", k, 4), -1);
}

static void test_peek_final(void)
{
    struct buf b;
    buf_init(&b);
    struct nmsg_result r = {
        .session_id = "s",
        .transcript = "hello",
        .sequence = 7,
        .is_final = 1,
        .state = HARK_STATE_RESPONDING,
        .reason = "endpoint",
        .committed_ms = 2990,
        .time_offset = 7.4, /* a resumed session: the record is in session time */
    };
    nmsg_render_result(&b, &r);
    int64_t ms = 0;
    int responding = 0;
    ASSERT_EQ(jsrec_peek_final(b.data, b.len, &ms, &responding), 0);
    ASSERT_EQ(ms, 10390);
    ASSERT_EQ(responding, 1);
    buf_reset(&b);
    r.is_final = 0;
    r.reason = NULL; /* a partial has no committed_ms */
    nmsg_render_result(&b, &r);
    ASSERT_EQ(jsrec_peek_final(b.data, b.len, &ms, &responding), -1);
    ASSERT_EQ(jsrec_peek_final("\x01", 1, &ms, &responding), -1);
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_round_trip);
    RUN(test_refused);
    RUN(test_key);
    RUN(test_peek_final);
    return 0;
}
