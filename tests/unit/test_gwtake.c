/*
 * The hand-over of a detached session between gateways (front/nats/gwtake.h):
 * a request and a reply render and parse back to the same values (every
 * field of every event kind, words, options, refusals); hostile or
 * inconsistent messages are refused with a protocol error, and no count a
 * message claims is allocated beyond what its bytes can hold.
 */
#include <msgpack.h>

#include "check.h"
#include "front/nats/gwtake.h"

static void test_request_round_trip(void)
{
    struct gwtake_req q = {
        .token = "0123456789abcdef0123456789abcdef", .last_seq = 41, .audio_bytes = 123456};
    struct buf b;
    buf_init(&b);
    gwtake_render_request(&b, &q);
    struct gwtake_req p;
    char err[300];
    ASSERT_OK(gwtake_parse_request(&p, b.data, b.len, err, sizeof err));
    ASSERT_STR_EQ(p.token, q.token);
    ASSERT_EQ(p.last_seq, 41);
    ASSERT_EQ(p.audio_bytes, 123456);
    /* nothing seen yet */
    q.last_seq = -1;
    buf_reset(&b);
    gwtake_render_request(&b, &q);
    ASSERT_OK(gwtake_parse_request(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.last_seq, -1);
    buf_deinit(&b);
}

static void test_reply_round_trip(void)
{
    struct hark_word w[2] = {{"hello", 0.5, 0.9, 0.8f}, {"world", 1.0, 1.4, 0.7f}};
    struct hark_event e[5] = {
        {.type = HARK_EVENT_TRANSCRIPT,
         .seq = 7,
         .segment = 2,
         .text = "hello wor",
         .start = 0.5,
         .end = 1.3,
         .confidence = 0.5f,
         .language = "en",
         .voice_activity = 1},
        {.type = HARK_EVENT_TRANSCRIPT,
         .seq = 9,
         .segment = 2,
         .is_final = 1,
         .speech_final = 1,
         .reason = HARK_REASON_ENDPOINT,
         .text = "hello world",
         .start = 0.5,
         .end = 1.4,
         .confidence = 0.75f,
         .language = "en",
         .words = w,
         .n_words = 2,
         .committed_ms = 1900},
        {.type = HARK_EVENT_AUDIO_GAP,
         .seq = 10,
         .start = 2.0,
         .duration = 0.25,
         .message = "0.25 s lost"},
        {.type = HARK_EVENT_PROVIDER_FAILOVER,
         .seq = 11,
         .code = HARK_E_TIMEOUT,
         .message = "no answer",
         .failover_reason = "timeout",
         .from_engine = "deepgram",
         .to_engine = "pocketsphinx",
         .start = 1.5},
        {.type = HARK_EVENT_ERROR, .seq = 12, .code = HARK_E_BAD_AUDIO, .message = "bad"},
    };
    const struct hark_event *ev[5] = {&e[0], &e[1], &e[2], &e[3], &e[4]};
    const char *opts[] = {"language", "en", "encoding", "linear16", "vocabulary", "a b", NULL};
    struct gwtake_state st = {.next_seq = 13,
                              .audio_bytes = 64000,
                              .sent_bytes = 60000,
                              .last_msg = 0xfedcba9876543210ull,
                              .t0 = 1700000000.25,
                              .results_end = 1.4,
                              .worker_next = 41,
                              .worker_epoch = 4000000001ull,
                              .finishing = 1,
                              .options = opts};
    struct buf b;
    buf_init(&b);
    gwtake_render_reply(&b, &st, ev, 5);
    ASSERT(!b.oom);
    struct gwtake_reply r;
    char err[300];
    ASSERT_OK(gwtake_parse_reply(&r, b.data, b.len, err, sizeof err));
    ASSERT_EQ(r.ok, 1);
    ASSERT_EQ(r.st.next_seq, 13);
    ASSERT_EQ(r.st.audio_bytes, 64000);
    ASSERT_EQ(r.st.sent_bytes, 60000);
    ASSERT(r.st.last_msg == 0xfedcba9876543210ull);
    ASSERT(fabs(r.st.t0 - 1700000000.25) < 1e-6);
    ASSERT_EQ(r.st.finishing, 1);
    ASSERT(fabs(r.st.results_end - 1.4) < 1e-9);
    ASSERT_EQ(r.st.worker_next, 41);
    ASSERT(r.st.worker_epoch == 4000000001ull);
    ASSERT_STR_EQ(r.st.options[0], "language");
    ASSERT_STR_EQ(r.st.options[5], "a b");
    ASSERT(r.st.options[6] == NULL);
    ASSERT_EQ(r.n_events, 5);
    const struct hark_event *p = &r.events[0];
    ASSERT_EQ(p->type, HARK_EVENT_TRANSCRIPT);
    ASSERT_EQ(p->seq, 7);
    ASSERT_EQ(p->is_final, 0);
    ASSERT_STR_EQ(p->text, "hello wor");
    ASSERT_EQ(p->voice_activity, 1);
    ASSERT(p->words == NULL);
    p = &r.events[1];
    ASSERT_EQ(p->is_final, 1);
    ASSERT_EQ(p->speech_final, 1);
    ASSERT_EQ(p->reason, HARK_REASON_ENDPOINT);
    ASSERT_EQ(p->segment, 2);
    ASSERT_EQ(p->committed_ms, 1900);
    ASSERT_STR_EQ(p->language, "en");
    ASSERT(fabs(p->confidence - 0.75) < 1e-6 && fabs(p->end - 1.4) < 1e-9);
    ASSERT_EQ(p->n_words, 2);
    ASSERT_STR_EQ(p->words[1].word, "world");
    ASSERT(fabs(p->words[1].start - 1.0) < 1e-9 && fabs(p->words[0].confidence - 0.8) < 1e-6);
    p = &r.events[2];
    ASSERT_EQ(p->type, HARK_EVENT_AUDIO_GAP);
    ASSERT(fabs(p->duration - 0.25) < 1e-9 && fabs(p->start - 2.0) < 1e-9);
    ASSERT_STR_EQ(p->message, "0.25 s lost");
    p = &r.events[3];
    ASSERT_EQ(p->code, HARK_E_TIMEOUT);
    ASSERT_STR_EQ(p->failover_reason, "timeout");
    ASSERT_STR_EQ(p->from_engine, "deepgram");
    ASSERT_STR_EQ(p->to_engine, "pocketsphinx");
    ASSERT_EQ(r.events[4].code, HARK_E_BAD_AUDIO);
    gwtake_reply_free(&r);

    /* no events, no options */
    static const char *const none[] = {NULL};
    st.options = none;
    buf_reset(&b);
    gwtake_render_reply(&b, &st, NULL, 0);
    ASSERT_OK(gwtake_parse_reply(&r, b.data, b.len, err, sizeof err));
    ASSERT_EQ(r.n_events, 0);
    ASSERT(r.st.options[0] == NULL);
    gwtake_reply_free(&r);

    /* a refusal */
    buf_reset(&b);
    gwtake_render_refusal(&b, "the session is attached");
    ASSERT_OK(gwtake_parse_reply(&r, b.data, b.len, err, sizeof err));
    ASSERT_EQ(r.ok, 0);
    ASSERT_STR_EQ(r.error, "the session is attached");
    gwtake_reply_free(&r);
    buf_deinit(&b);
}

static int buf_sink(void *data, const char *p, size_t n)
{
    buf_append(data, p, n);
    return 0;
}

static void pk_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

/* {ok: true, next_seq: 5, events: [one event from fill]} */
static int parse_one(struct buf *b, void (*fill)(msgpack_packer *), size_t claimed)
{
    msgpack_packer pk;
    buf_reset(b);
    msgpack_packer_init(&pk, b, buf_sink);
    msgpack_pack_map(&pk, 3);
    pk_str(&pk, "ok");
    msgpack_pack_true(&pk);
    pk_str(&pk, "next_seq");
    msgpack_pack_uint64(&pk, 5);
    pk_str(&pk, "events");
    msgpack_pack_array(&pk, claimed);
    fill(&pk);
    struct gwtake_reply r;
    char err[300];
    int rc = gwtake_parse_reply(&r, b->data, b->len, err, sizeof err);
    ASSERT(rc == 0 || err[0]);
    gwtake_reply_free(&r);
    return rc;
}

static void ev_ok(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "seq");
    msgpack_pack_uint64(pk, 3);
    pk_str(pk, "type");
    msgpack_pack_int(pk, HARK_EVENT_TRANSCRIPT);
}

static void ev_bad_type(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "seq");
    msgpack_pack_uint64(pk, 3);
    pk_str(pk, "type");
    msgpack_pack_int(pk, 99);
}

static void ev_no_seq(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 1);
    pk_str(pk, "type");
    msgpack_pack_int(pk, HARK_EVENT_TRANSCRIPT);
}

static void ev_seq_too_new(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    pk_str(pk, "seq");
    msgpack_pack_uint64(pk, 5); /* not below next_seq */
    pk_str(pk, "type");
    msgpack_pack_int(pk, HARK_EVENT_TRANSCRIPT);
}

static void ev_out_of_order(msgpack_packer *pk)
{
    ev_ok(pk);
    ev_ok(pk); /* the same seq twice */
}

static void ev_bad_words(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pk_str(pk, "seq");
    msgpack_pack_uint64(pk, 3);
    pk_str(pk, "type");
    msgpack_pack_int(pk, HARK_EVENT_TRANSCRIPT);
    pk_str(pk, "words");
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 3); /* a word is 4 values */
    pk_str(pk, "x");
    msgpack_pack_double(pk, 0);
    msgpack_pack_double(pk, 1);
}

static void ev_empty_maps(msgpack_packer *pk)
{
    for (int i = 0; i < 1000; i++)
        msgpack_pack_map(pk, 0);
}

static void test_hostile(void)
{
    struct buf b;
    buf_init(&b);
    ASSERT_OK(parse_one(&b, ev_ok, 1));
    ASSERT_EQ(parse_one(&b, ev_bad_type, 1), HARK_E_PROTOCOL);
    ASSERT_EQ(parse_one(&b, ev_no_seq, 1), HARK_E_PROTOCOL);
    ASSERT_EQ(parse_one(&b, ev_seq_too_new, 1), HARK_E_PROTOCOL);
    ASSERT_EQ(parse_one(&b, ev_out_of_order, 2), HARK_E_PROTOCOL);
    ASSERT_EQ(parse_one(&b, ev_bad_words, 1), HARK_E_PROTOCOL);
    /* more events claimed than present: the validator */
    ASSERT_EQ(parse_one(&b, ev_ok, 1000000), HARK_E_PROTOCOL);
    /* 1000 one-byte events: more than the bytes can hold as events */
    ASSERT_EQ(parse_one(&b, ev_empty_maps, 1000), HARK_E_PROTOCOL);

    struct gwtake_reply r;
    struct gwtake_req q;
    char err[300];
    const char junk[] = "\x93\x01\x02";
    ASSERT_EQ(gwtake_parse_reply(&r, junk, 3, err, sizeof err), HARK_E_PROTOCOL);
    gwtake_reply_free(&r);
    ASSERT_EQ(gwtake_parse_request(&q, junk, 3, err, sizeof err), HARK_E_PROTOCOL);
    /* a token past its size; no token */
    msgpack_packer pk;
    buf_reset(&b);
    msgpack_packer_init(&pk, &b, buf_sink);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "token");
    pk_str(&pk, "0123456789abcdef0123456789abcdef0");
    ASSERT_EQ(gwtake_parse_request(&q, b.data, b.len, err, sizeof err), HARK_E_PROTOCOL);
    buf_reset(&b);
    msgpack_pack_map(&pk, 1);
    pk_str(&pk, "last_seq");
    msgpack_pack_int(&pk, 3);
    ASSERT_EQ(gwtake_parse_request(&q, b.data, b.len, err, sizeof err), HARK_E_PROTOCOL);
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_request_round_trip);
    RUN(test_reply_round_trip);
    RUN(test_hostile);
    return 0;
}
