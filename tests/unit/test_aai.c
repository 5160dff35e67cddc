/* AssemblyAI v3 (src/front/proto/aai.c): query parameters as the official
 * SDKs send them -> session options; client messages; Turn, Begin,
 * Termination and Error messages as the SDKs parse them. */
#include "check.h"
#include "base/json.h"
#include "front/proto/aai.h"
#include "hark/hark.h"
#include "host/chan.h"

static void expect_opt(const struct hark_options *o, const char *name, const char *want)
{
    char v[4096];
    ASSERT_OK(hark_options_get(o, name, v, sizeof v));
    ASSERT_STR_EQ(v, want);
}

static int apply(struct hark_options **o, struct aai_params *p, char *err, size_t n,
                 const char *const *args, size_t n_args)
{
    ASSERT_OK(hark_options_create(o));
    return aai_apply_args(args, n_args, *o, p, err, n);
}

static void test_sdk_query(void)
{
    /* what assemblyai 4.x's StreamingTranscriber puts in the URL */
    const char *args[] = {"sample_rate=16000",
                          "end_of_turn_confidence_threshold=0.7",
                          "min_turn_silence=300",
                          "max_turn_silence=1280",
                          "format_turns=true",
                          "encoding=pcm_s16le",
                          "keyterms_prompt=[\"Marianne\",\"Elinor, Dashwood\"]",
                          "speech_model=universal-streaming-english",
                          "token=abc",
                          "whatever=1"};
    struct hark_options *o;
    struct aai_params p;
    char err[256];
    ASSERT_OK(apply(&o, &p, err, sizeof err, args, sizeof args / sizeof args[0]));
    expect_opt(o, "encoding", "pcm_s16le");
    expect_opt(o, "sample_rate", "16000");
    expect_opt(o, "endpointing_ms", "300");
    expect_opt(o, "vocabulary", "Marianne,Elinor  Dashwood");
    expect_opt(o, "words", "true");
    ASSERT_EQ(p.format_turns, 1);
    ASSERT_STR_EQ(p.token, "abc");
    hark_options_destroy(o);

    /* mu-law; only the cap given: the default endpointing (500) stays under it */
    const char *mu[] = {"sample_rate=8000", "encoding=pcm_mulaw", "max_turn_silence=700"};
    ASSERT_OK(apply(&o, &p, err, sizeof err, mu, 3));
    expect_opt(o, "encoding", "mulaw");
    expect_opt(o, "sample_rate", "8000");
    expect_opt(o, "endpointing_ms", "500");
    ASSERT_EQ(p.format_turns, 0);
    hark_options_destroy(o);

    /* the cap wins over a longer minimum; the older name still works */
    const char *cap[] = {"sample_rate=16000", "min_end_of_turn_silence_when_confident=900",
                         "max_turn_silence=600"};
    ASSERT_OK(apply(&o, &p, err, sizeof err, cap, 3));
    expect_opt(o, "endpointing_ms", "600");
    hark_options_destroy(o);

    /* a self-describing container needs no rate */
    const char *ogg[] = {"encoding=ogg_opus"};
    ASSERT_OK(apply(&o, &p, err, sizeof err, ogg, 1));
    expect_opt(o, "encoding", "auto");
    hark_options_destroy(o);
}

static void test_query_errors(void)
{
    static const struct {
        const char *arg, *arg2, *prefix;
        int rc;
    } cases[] = {
        {"encoding=pcm_s16le", NULL, "sample_rate:", HARK_E_BAD_OPTION},
        {"sample_rate=16000", "encoding=aac", "encoding:", HARK_E_UNSUPPORTED},
        {"sample_rate=99", NULL, "sample_rate:", HARK_E_BAD_OPTION},
        {"sample_rate=16000", "format_turns=maybe", "format_turns:", HARK_E_BAD_OPTION},
        {"sample_rate=16000", "end_of_turn_confidence_threshold=2",
         "end_of_turn_confidence_threshold:", HARK_E_BAD_OPTION},
        {"sample_rate=16000", "min_turn_silence=-5", "min_turn_silence:", HARK_E_BAD_OPTION},
        {"sample_rate=16000", "keyterms_prompt=foo", "keyterms_prompt:", HARK_E_BAD_OPTION},
        {"sample_rate=16000", "keyterms_prompt=[1]", "keyterms_prompt:", HARK_E_BAD_OPTION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *args[] = {cases[i].arg, cases[i].arg2};
        struct hark_options *o;
        struct aai_params p;
        char err[256] = "";
        ASSERT_EQ(apply(&o, &p, err, sizeof err, args, cases[i].arg2 ? 2 : 1), cases[i].rc);
        if (strncmp(err, cases[i].prefix, strlen(cases[i].prefix)))
            FAIL_("case %zu: '%s' does not start with '%s'", i, err, cases[i].prefix);
        hark_options_destroy(o);
    }
}

static void test_messages(void)
{
    char why[200];
#define PARSE(s) aai_parse_text(s, strlen(s), why, sizeof why)
    ASSERT_EQ(PARSE("{\"type\":\"Terminate\"}"), AAI_MSG_TERMINATE);
    ASSERT_EQ(PARSE("{ \"type\" : \"ForceEndpoint\" }"), AAI_MSG_FORCE_ENDPOINT);
    ASSERT_EQ(PARSE("{\"type\":\"KeepAlive\"}"), AAI_MSG_KEEPALIVE);
    ASSERT_EQ(PARSE("{\"type\":\"UpdateConfiguration\",\"min_turn_silence\":200,"
                    "\"end_of_turn_confidence_threshold\":0.5}"),
              AAI_MSG_UPDATE);
    ASSERT_EQ(PARSE("{\"type\":\"UpdateConfiguration\",\"max_turn_silence\":\"x\"}"),
              AAI_MSG_INVALID);
    ASSERT(strstr(why, "max_turn_silence"));
    ASSERT_EQ(PARSE("{\"type\":\"Dance\"}"), AAI_MSG_INVALID);
    ASSERT(!strncmp(why, "Invalid Message Type: Dance", 27));
    ASSERT_EQ(PARSE("{nope"), AAI_MSG_INVALID);
    ASSERT(!strncmp(why, "Invalid JSON", 12));
    ASSERT_EQ(PARSE("[]"), AAI_MSG_INVALID);
    ASSERT(!strncmp(why, "Invalid Message:", 16));
#undef PARSE
}

static struct json *parse_out(const struct buf *b)
{
    struct json *doc = NULL;
    ASSERT_OK(json_parse(&doc, b->data, b->len, NULL, 0));
    return doc;
}

static void test_render(void)
{
    struct aai_params p;
    memset(&p, 0, sizeof p);
    p.started_unix = 1700000000;
    p.started_ms = 1000;
    struct hark_word words[] = {{"hello", 0.5, 0.9, 0.875f}, {"world", 1.0, 1.4, 0.5f}};
    struct hark_event ev = {.type = HARK_EVENT_TRANSCRIPT,
                            .segment = 3,
                            .text = "hello world",
                            .words = words,
                            .n_words = 2};
    struct buf b;
    buf_init(&b);
    unsigned flags = 0;
    aai_render_event(&p, &ev, 0, &b, &flags);
    struct json *doc = parse_out(&b);
    const struct json_value *r = json_root(doc);
    ASSERT_STR_EQ(json_str(json_get(r, "type")), "Turn");
    ASSERT_EQ(json_num(json_get(r, "turn_order")), 3);
    ASSERT_EQ(json_type(json_get(r, "end_of_turn")), JSON_BOOL);
    ASSERT_EQ(json_bool(json_get(r, "end_of_turn")), 0);
    ASSERT_EQ(json_bool(json_get(r, "turn_is_formatted")), 0);
    ASSERT_STR_EQ(json_str(json_get(r, "transcript")), "hello world");
    ASSERT_STR_EQ(json_str(json_get(r, "utterance")), "");
    const struct json_value *w = json_get(r, "words");
    ASSERT_EQ(json_len(w), 2);
    ASSERT_EQ(json_num(json_get(json_at(w, 0), "start")), 500);
    ASSERT_EQ(json_num(json_get(json_at(w, 1), "end")), 1400);
    ASSERT_STR_EQ(json_str(json_get(json_at(w, 1), "text")), "world");
    ASSERT_EQ(json_bool(json_get(json_at(w, 0), "word_is_final")), 0);
    json_free(doc);

    /* the final ends the turn; format_turns marks it formatted */
    p.format_turns = 1;
    ev.is_final = 1;
    ev.reason = HARK_REASON_ENDPOINT;
    buf_reset(&b);
    aai_render_event(&p, &ev, 0, &b, &flags);
    doc = parse_out(&b);
    r = json_root(doc);
    ASSERT_EQ(json_bool(json_get(r, "end_of_turn")), 1);
    ASSERT_EQ(json_bool(json_get(r, "turn_is_formatted")), 1);
    ASSERT_EQ(json_num(json_get(r, "end_of_turn_confidence")), 1);
    ASSERT_STR_EQ(json_str(json_get(r, "utterance")), "hello world");
    ASSERT_EQ(json_bool(json_get(json_at(json_get(r, "words"), 1), "word_is_final")), 1);
    json_free(doc);

    /* an empty final is sent only for a ForceEndpoint */
    struct hark_event empty = {
        .type = HARK_EVENT_TRANSCRIPT, .is_final = 1, .text = "", .reason = HARK_REASON_ENDPOINT};
    buf_reset(&b);
    aai_render_event(&p, &empty, 0, &b, &flags);
    ASSERT_EQ(b.len, 0);
    empty.reason = HARK_REASON_FINALIZE;
    aai_render_event(&p, &empty, 0, &b, &flags);
    ASSERT(b.len > 0);

    /* Termination: integers */
    struct hark_event closed = {.type = HARK_EVENT_CLOSED, .audio_seconds = 12.6};
    buf_reset(&b);
    aai_render_event(&p, &closed, 1000 + 13400, &b, &flags);
    buf_putc(&b, 0);
    ASSERT_STR_EQ(b.data, "{\"type\":\"Termination\",\"audio_duration_seconds\":13,"
                          "\"session_duration_seconds\":13}");

    /* undecodable audio: an Error with 3006, and the session ends */
    struct hark_event err = {
        .type = HARK_EVENT_ERROR, .code = HARK_E_BAD_AUDIO, .message = "not WAV"};
    buf_reset(&b);
    flags = 0;
    aai_render_event(&p, &err, 0, &b, &flags);
    ASSERT(flags & MSG_FATAL);
    doc = parse_out(&b);
    r = json_root(doc);
    ASSERT_STR_EQ(json_str(json_get(r, "type")), "Error");
    ASSERT_EQ(json_num(json_get(r, "error_code")), 3006);
    ASSERT(strstr(json_str(json_get(r, "error")), "not WAV"));
    json_free(doc);

    buf_reset(&b);
    aai_render_begin(&b, "sess-1", &p);
    buf_putc(&b, 0);
    ASSERT_STR_EQ(b.data, "{\"type\":\"Begin\",\"id\":\"sess-1\",\"expires_at\":1700010800}");
    buf_deinit(&b);

    ASSERT_EQ(aai_close_code(HARK_E_AUTH), 1008);
    ASSERT_EQ(aai_close_code(HARK_E_BUSY), 3009);
    ASSERT_EQ(aai_close_code(HARK_E_BAD_AUDIO), 3006);
    ASSERT_EQ(aai_close_code(HARK_E_ENGINE), 3005);
}

int main(void)
{
    RUN(test_sdk_query);
    RUN(test_query_errors);
    RUN(test_messages);
    RUN(test_render);
    return 0;
}
