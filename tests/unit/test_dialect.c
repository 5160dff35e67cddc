/* The wire dialects as pure modules (src/front/proto): driven here with no
 * socket, server or session, as the WebSocket driver drives them. */
#include "check.h"
#include "front/proto/dialect.h"
#include "hark/hark.h"

static struct hark_options *defaults;
static struct dialect_ctx cx;

static void setup(void)
{
    ASSERT_OK(hark_options_create(&defaults));
    cx = (struct dialect_ctx){.defaults = defaults, .engine = "pocketsphinx", .resume_window = 30};
}

static void teardown(void)
{
    hark_options_destroy(defaults);
    defaults = NULL;
}

static void *open_ok(const struct dialect_ops *d, const char *const *args, size_t n,
                     struct dialect_out *o)
{
    struct dialect_req rq = {.path = "/", .args = args, .n_args = n, .request_id = ""};
    void *state = NULL;
    char err[256];
    ASSERT_OK(d->open(&cx, &rq, &state, o, err, sizeof err));
    return state;
}

static void expect_opt(const struct hark_options *o, const char *name, const char *want)
{
    char v[256];
    ASSERT_OK(hark_options_get(o, name, v, sizeof v));
    ASSERT_STR_EQ(v, want);
}

/* Seed 001: audio as the first message starts a session, container sniffed. */
static void test_native_audio_without_config(void)
{
    setup();
    struct dialect_out o;
    dialect_out_init(&o);
    void *s = open_ok(&dialect_native, NULL, 0, &o);
    ASSERT_EQ(o.n, 0);
    static const uint8_t webm[] = {0x1a, 0x45, 0xdf, 0xa3, 1, 2, 3};
    ASSERT_OK(dialect_native.binary(s, webm, sizeof webm, &o));
    ASSERT_EQ(o.n, 2);
    ASSERT_EQ(o.act[0].type, DA_START);
    expect_opt(o.act[0].opts, "encoding", "auto");
    ASSERT_EQ(o.act[1].type, DA_AUDIO);
    ASSERT(o.act[1].data == webm && o.act[1].len == sizeof webm);
    dialect_out_reset(&o);
    /* once streaming, a config is a protocol error and the session goes on */
    struct dialect_session ss = {.id = "id", .opts = defaults};
    dialect_native.started(s, &ss, &o);
    ASSERT_EQ(o.act[0].type, DA_SEND); /* ready */
    dialect_out_reset(&o);
    const char *cfg = "{\"type\":\"config\"}";
    ASSERT_OK(dialect_native.text(s, cfg, strlen(cfg), &o));
    ASSERT_EQ(o.n, 1);
    ASSERT_EQ(o.act[0].type, DA_ERROR);
    ASSERT_EQ(o.act[0].code, HARK_E_PROTOCOL);
    dialect_native.destroy(s);
    dialect_out_deinit(&o);
    teardown();
}

static void test_native_bad_config(void)
{
    setup();
    struct dialect_out o;
    dialect_out_init(&o);
    void *s = open_ok(&dialect_native, NULL, 0, &o);
    const char *cfg = "{\"type\":\"config\",\"sample_rate\":-5}";
    ASSERT_OK(dialect_native.text(s, cfg, strlen(cfg), &o));
    ASSERT_EQ(o.n, 2);
    ASSERT_EQ(o.act[0].type, DA_ERROR);
    ASSERT(strstr(dialect_str(&o, o.act[0].str), "sample_rate"));
    ASSERT_EQ(o.act[1].type, DA_CLOSE);
    ASSERT_EQ(o.act[1].code, 4400);
    dialect_native.destroy(s);
    dialect_out_deinit(&o);
    teardown();
}

static void test_soniox_config_and_errors(void)
{
    setup();
    struct dialect_out o;
    dialect_out_init(&o);
    void *s = open_ok(&dialect_soniox, NULL, 0, &o);
    const char *cfg = "{\"api_key\":\"k1\",\"model\":\"stt-rt-v4\",\"audio_format\":\"pcm_s16le\","
                      "\"sample_rate\":8000,\"num_channels\":1,\"language_hints\":[\"en\"],"
                      "\"context\":{\"terms\":[\"Dashwood\",\"Norland\"]}}";
    ASSERT_OK(dialect_soniox.text(s, cfg, strlen(cfg), &o));
    ASSERT_EQ(o.n, 2);
    ASSERT_EQ(o.act[0].type, DA_AUTH);
    ASSERT_STR_EQ(dialect_str(&o, o.act[0].str), "k1");
    ASSERT_EQ(o.act[1].type, DA_START);
    expect_opt(o.act[1].opts, "encoding", "pcm_s16le");
    expect_opt(o.act[1].opts, "sample_rate", "8000");
    expect_opt(o.act[1].opts, "vocabulary", "Dashwood,Norland");
    dialect_out_reset(&o);
    dialect_soniox.destroy(s);

    /* audio before the configuration: 400 now, and the close at once */
    s = open_ok(&dialect_soniox, NULL, 0, &o);
    ASSERT_OK(dialect_soniox.binary(s, (const uint8_t *)"ab", 2, &o));
    ASSERT_EQ(o.n, 2);
    ASSERT(o.act[0].type == DA_ERROR && o.act[0].now && o.act[0].code == HARK_E_PROTOCOL);
    ASSERT(o.act[1].type == DA_CLOSE && o.act[1].now && o.act[1].code == 1008);
    dialect_out_reset(&o);
    dialect_soniox.destroy(s);

    /* raw audio without sample_rate; a format hark does not decode */
    const char *bad[] = {"{\"audio_format\":\"pcm_s16le\"}", "{\"audio_format\":\"mp3\"}"};
    for (size_t i = 0; i < 2; i++) {
        s = open_ok(&dialect_soniox, NULL, 0, &o);
        ASSERT_OK(dialect_soniox.text(s, bad[i], strlen(bad[i]), &o));
        ASSERT_EQ(o.act[0].type, DA_ERROR);
        ASSERT(strstr(dialect_str(&o, o.act[0].str), i ? "audio_format" : "sample_rate"));
        dialect_out_reset(&o);
        dialect_soniox.destroy(s);
    }
    dialect_out_deinit(&o);
    teardown();
}

static char *render(const struct dialect_ops *d, const void *rstate, const struct hark_event *ev)
{
    static char text[2048];
    struct buf b;
    unsigned flags = 0;
    buf_init(&b);
    d->render(rstate, ev, &b, &flags);
    snprintf(text, sizeof text, "%.*s", (int)b.len, b.data ? b.data : "");
    buf_deinit(&b);
    return text;
}

/* Tokens: words with their leading space (none for the session's first),
 * <fin> after a finalize, the final's committed_ms as final_audio_proc_ms. */
static void test_soniox_tokens(void)
{
    struct hark_word w[2] = {{"young", 1.0, 1.25, 0.5f}, {"man", 1.25, 1.5, 1.0f}};
    struct hark_event ev = {.type = HARK_EVENT_TRANSCRIPT,
                            .segment = 0,
                            .is_final = 0,
                            .text = "young man",
                            .start = 1.0,
                            .end = 1.5,
                            .words = w,
                            .n_words = 2};
    ASSERT_STR_EQ(render(&dialect_soniox, NULL, &ev),
                  "{\"tokens\":[{\"text\":\"young\",\"start_ms\":1000,\"end_ms\":1250,"
                  "\"confidence\":0.5,\"is_final\":false},{\"text\":\" man\",\"start_ms\":1250,"
                  "\"end_ms\":1500,\"confidence\":1,\"is_final\":false}],"
                  "\"final_audio_proc_ms\":1000,\"total_audio_proc_ms\":1500}");
    ev.segment = 2;
    ev.is_final = 1;
    ev.reason = HARK_REASON_FINALIZE;
    ev.committed_ms = 1600;
    ev.n_words = 1;
    ASSERT_STR_EQ(render(&dialect_soniox, NULL, &ev),
                  "{\"tokens\":[{\"text\":\" young\",\"start_ms\":1000,\"end_ms\":1250,"
                  "\"confidence\":0.5,\"is_final\":true},{\"text\":\"<fin>\",\"confidence\":1,"
                  "\"is_final\":true}],\"final_audio_proc_ms\":1600,\"total_audio_proc_ms\":1600}");
    struct hark_event empty = {
        .type = HARK_EVENT_TRANSCRIPT, .is_final = 1, .text = "", .reason = HARK_REASON_ENDPOINT};
    ASSERT_STR_EQ(render(&dialect_soniox, NULL, &empty), "");
    struct hark_event closed = {.type = HARK_EVENT_CLOSED, .audio_seconds = 2.5};
    ASSERT_STR_EQ(render(&dialect_soniox, NULL, &closed),
                  "{\"tokens\":[],\"final_audio_proc_ms\":2500,\"total_audio_proc_ms\":2500,"
                  "\"finished\":true}");
    struct hark_event err = {.type = HARK_EVENT_ERROR, .code = HARK_E_BAD_AUDIO, .message = "x"};
    ASSERT_STR_EQ(render(&dialect_soniox, NULL, &err),
                  "{\"error_code\":400,\"error_message\":\"x\"}");
}

/* Seed 002's relay: transcripts with text only, in its three fields. */
static void test_relay_render(void)
{
    struct hark_event ev = {
        .type = HARK_EVENT_TRANSCRIPT, .is_final = 1, .speech_final = 1, .text = "he was"};
    ASSERT_STR_EQ(render(&dialect_relay, NULL, &ev),
                  "{\"transcript\":\"he was\",\"is_final\":true,\"speech_final\":true}");
    ev.text = "";
    ASSERT_STR_EQ(render(&dialect_relay, NULL, &ev), "");
    struct hark_event closed = {.type = HARK_EVENT_CLOSED};
    ASSERT_STR_EQ(render(&dialect_relay, NULL, &closed), "");
}

/* A resume as the first message: numbers out of range are a protocol error
 * (checked before any conversion to an integer: fuzz_dialect_native). */
static void test_native_resume_numbers(void)
{
    setup();
    static const char *const msgs[] = {
        "{\"type\":\"resume\",\"session_id\":\"a\",\"resume_token\":\"t\",\"last_seq\":4,"
        "\"audio_bytes\":640}",
        "{\"type\":\"resume\",\"session_id\":\"a\",\"resume_token\":\"t\",\"last_seq\":4,"
        "\"audio_bytes\":6e49}",
        "{\"type\":\"resume\",\"session_id\":\"a\",\"resume_token\":\"t\",\"last_seq\":-1e300,"
        "\"audio_bytes\":0}",
        "{\"type\":\"resume\",\"session_id\":\"a\",\"resume_token\":\"t\",\"last_seq\":1e19,"
        "\"audio_bytes\":0}",
        "{\"type\":\"resume\",\"session_id\":\"a\",\"resume_token\":\"t\",\"last_seq\":0.5,"
        "\"audio_bytes\":0}",
    };
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++) {
        struct dialect_out o;
        dialect_out_init(&o);
        void *s = open_ok(&dialect_native, NULL, 0, &o);
        ASSERT_OK(dialect_native.text(s, msgs[i], strlen(msgs[i]), &o));
        if (i == 0) {
            ASSERT_EQ(o.n, 1);
            ASSERT_EQ(o.act[0].type, DA_RESUME);
            ASSERT_EQ(o.act[0].last_seq, 4);
            ASSERT_EQ(o.act[0].audio_bytes, 640);
        } else {
            ASSERT(o.n >= 1);
            ASSERT_EQ(o.act[0].type, DA_ERROR);
            ASSERT_EQ(o.act[0].code, HARK_E_PROTOCOL);
        }
        dialect_out_reset(&o);
        dialect_native.destroy(s);
        dialect_out_deinit(&o);
    }
    teardown();
}

int main(void)
{
    RUN(test_native_resume_numbers);
    RUN(test_native_audio_without_config);
    RUN(test_native_bad_config);
    RUN(test_soniox_config_and_errors);
    RUN(test_soniox_tokens);
    RUN(test_relay_render);
    return 0;
}
