/* OpenAI Realtime transcription sessions (src/front/proto/oairt.c): client
 * events in the GA and beta shapes, base64 audio, and the server events a
 * final becomes, as the openai SDK's types describe them. */
#include "check.h"
#include "base/json.h"
#include "front/proto/oairt.h"
#include "hark/hark.h"
#include "host/chan.h"

static void parse(const char *msg, const struct oairt_config *cur, struct oairt_in *in,
                  struct buf *audio)
{
    oairt_parse(msg, strlen(msg), cur, in, audio);
}

static void test_updates(void)
{
    struct oairt_config c;
    oairt_config_init(&c);
    struct oairt_in in;
    struct buf a;
    buf_init(&a);
    /* GA: what OpenAIRealtimeWS users send */
    parse(
        "{\"type\":\"session.update\",\"event_id\":\"e1\",\"session\":{\"type\":\"transcription\","
        "\"audio\":{\"input\":{\"format\":{\"type\":\"audio/pcmu\"},\"transcription\":{\"model\":"
        "\"gpt-4o-mini-transcribe\",\"language\":\"en\"},\"turn_detection\":null}}}}",
        &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_UPDATE);
    ASSERT_EQ(in.beta, 0);
    ASSERT_STR_EQ(in.event_id, "e1");
    ASSERT_EQ(in.cfg.format, OAIRT_ULAW);
    ASSERT_EQ(in.cfg.vad, 0);
    ASSERT_STR_EQ(in.cfg.model, "gpt-4o-mini-transcribe");
    ASSERT_STR_EQ(in.cfg.language, "en");
    struct hark_options *o;
    char err[300];
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(oairt_options(&in.cfg, o, err, sizeof err));
    char v[64];
    hark_options_get(o, "encoding", v, sizeof v);
    ASSERT_STR_EQ(v, "mulaw");
    hark_options_get(o, "sample_rate", v, sizeof v);
    ASSERT_STR_EQ(v, "8000");
    hark_options_get(o, "endpointing_ms", v, sizeof v);
    ASSERT_STR_EQ(v, "false");
    hark_options_destroy(o);

    /* beta: transcription_session.update with server_vad */
    parse("{\"type\":\"transcription_session.update\",\"session\":{\"input_audio_format\":"
          "\"pcm16\",\"turn_detection\":{\"type\":\"server_vad\",\"silence_duration_ms\":700}}}",
          &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_UPDATE);
    ASSERT_EQ(in.beta, 1);
    ASSERT_EQ(in.cfg.format, OAIRT_PCM16);
    ASSERT_EQ(in.cfg.vad, 1);
    ASSERT_EQ(in.cfg.silence_ms, 700);
    ASSERT_OK(hark_options_create(&o));
    ASSERT_OK(oairt_options(&in.cfg, o, err, sizeof err));
    hark_options_get(o, "sample_rate", v, sizeof v);
    ASSERT_STR_EQ(v, "24000");
    hark_options_get(o, "endpointing_ms", v, sizeof v);
    ASSERT_STR_EQ(v, "700");
    hark_options_destroy(o);

    /* refused: conversation sessions, semantic_vad, odd formats */
    parse("{\"type\":\"session.update\",\"session\":{\"type\":\"realtime\"}}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    ASSERT_STR_EQ(in.param, "session.type");
    parse("{\"type\":\"session.update\",\"session\":{\"type\":\"transcription\",\"audio\":{"
          "\"input\":{\"turn_detection\":{\"type\":\"semantic_vad\"}}}}}",
          &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    ASSERT_STR_EQ(in.param, "session.audio.input.turn_detection");
    parse("{\"type\":\"session.update\",\"session\":{\"audio\":{\"input\":{\"format\":{\"type\":"
          "\"audio/pcm\",\"rate\":16000}}}}}",
          &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    buf_deinit(&a);
}

static void test_audio_and_others(void)
{
    struct oairt_config c;
    oairt_config_init(&c);
    struct oairt_in in;
    struct buf a;
    buf_init(&a);
    parse("{\"type\":\"input_audio_buffer.append\",\"audio\":\"AAEC/w==\"}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_APPEND);
    ASSERT_EQ(a.len, 4);
    ASSERT(!memcmp(a.data, "\x00\x01\x02\xff", 4));
    parse("{\"type\":\"input_audio_buffer.append\",\"audio\":\"AAECAw==\"}", &c, &in, &a);
    ASSERT_EQ(a.len, 4); /* reset per message */
    parse("{\"type\":\"input_audio_buffer.append\",\"audio\":\"AAE\"}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    ASSERT_STR_EQ(in.param, "audio");
    parse("{\"type\":\"input_audio_buffer.append\",\"audio\":\"AA*=\"}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    parse("{\"type\":\"input_audio_buffer.commit\"}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_COMMIT);
    parse("{\"type\":\"input_audio_buffer.clear\"}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_CLEAR);
    parse("{\"type\":\"response.create\"}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    ASSERT_STR_EQ(in.code, "unsupported_event");
    parse("{\"type\":\"bogus\",\"event_id\":\"x9\"}", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    ASSERT_STR_EQ(in.code, "invalid_value");
    ASSERT_STR_EQ(in.event_id, "x9");
    parse("not json", &c, &in, &a);
    ASSERT_EQ(in.type, OAIRT_INVALID);
    ASSERT_STR_EQ(in.code, "invalid_json");
    buf_deinit(&a);
}

/* Splits NUL-ended messages and checks each is a JSON object; returns count. */
static size_t messages(const struct buf *b, const char *types[], size_t max)
{
    size_t n = 0;
    for (size_t off = 0; off < b->len && n < max;) {
        size_t len = strlen(b->data + off);
        struct json *doc = NULL;
        ASSERT_OK(json_parse(&doc, b->data + off, len, NULL, 0));
        const char *t = json_str(json_get(json_root(doc), "type"));
        ASSERT(t);
        static char keep[8][80];
        snprintf(keep[n], sizeof keep[n], "%s", t);
        types[n] = keep[n];
        n++;
        ASSERT(json_str(json_get(json_root(doc), "event_id")));
        json_free(doc);
        off += len + 1;
    }
    return n;
}

static void test_render_final(void)
{
    struct oairt_render r = {.session_id = "sess_abc", .vad = 1};
    struct hark_event ev = {.type = HARK_EVENT_TRANSCRIPT,
                            .seq = 7,
                            .segment = 2,
                            .is_final = 1,
                            .text = "hello world",
                            .start = 1,
                            .end = 2.5,
                            .reason = HARK_REASON_ENDPOINT,
                            .voice_activity = 1};
    struct buf b;
    buf_init(&b);
    unsigned flags = 0;
    oairt_render_event(&r, &ev, &b, &flags);
    ASSERT(flags & MSG_MULTI);
    const char *types[8];
    ASSERT_EQ(messages(&b, types, 8), 4);
    ASSERT_STR_EQ(types[0], "input_audio_buffer.speech_stopped");
    ASSERT_STR_EQ(types[1], "input_audio_buffer.committed");
    ASSERT_STR_EQ(types[2], "conversation.item.input_audio_transcription.delta");
    ASSERT_STR_EQ(types[3], "conversation.item.input_audio_transcription.completed");
    ASSERT(strstr(b.data + b.len - 200, "\"transcript\":\"hello world\""));
    ASSERT(strstr(b.data, "\"item_id\":\"item_abc_2\""));
    /* committed names the previous item */
    ASSERT(strstr(b.data + strlen(b.data) + 1, "\"previous_item_id\":\"item_abc_1\""));

    /* a commit (no VAD): no speech_stopped */
    r.vad = 0;
    ev.reason = HARK_REASON_FINALIZE;
    buf_reset(&b);
    oairt_render_event(&r, &ev, &b, &flags);
    ASSERT_EQ(messages(&b, types, 8), 3);
    ASSERT_STR_EQ(types[0], "input_audio_buffer.committed");

    /* an empty commit is OpenAI's error; an empty endpoint is nothing */
    struct hark_event empty = {
        .type = HARK_EVENT_TRANSCRIPT, .is_final = 1, .text = "", .reason = HARK_REASON_FINALIZE};
    buf_reset(&b);
    flags = 0;
    oairt_render_event(&r, &empty, &b, &flags);
    ASSERT(strstr(b.data, "input_audio_buffer_commit_empty"));
    empty.reason = HARK_REASON_ENDPOINT;
    buf_reset(&b);
    oairt_render_event(&r, &empty, &b, &flags);
    ASSERT_EQ(b.len, 0);

    /* speech_started only with server_vad; errors */
    struct hark_event ss = {.type = HARK_EVENT_SPEECH_STARTED, .segment = 3, .start = 0.25};
    buf_reset(&b);
    oairt_render_event(&r, &ss, &b, &flags);
    ASSERT_EQ(b.len, 0);
    r.vad = 1;
    oairt_render_event(&r, &ss, &b, &flags);
    buf_putc(&b, 0);
    ASSERT(strstr(b.data, "\"audio_start_ms\":250"));
    ASSERT(strstr(b.data, "item_abc_3"));
    struct hark_event bad = {.type = HARK_EVENT_ERROR, .code = HARK_E_BAD_AUDIO, .message = "x"};
    buf_reset(&b);
    flags = 0;
    oairt_render_event(&r, &bad, &b, &flags);
    ASSERT(flags & MSG_FATAL);
    buf_deinit(&b);
}

static void test_render_session(void)
{
    struct oairt_config c;
    oairt_config_init(&c);
    struct buf b;
    buf_init(&b);
    oairt_render_session(&b, "session.created", "event_1", "sess_x", &c, 0);
    struct json *doc = NULL;
    ASSERT_OK(json_parse(&doc, b.data, b.len, NULL, 0));
    const struct json_value *s = json_get(json_root(doc), "session");
    ASSERT_STR_EQ(json_str(json_get(s, "type")), "transcription");
    const struct json_value *in = json_get(json_get(s, "audio"), "input");
    ASSERT_EQ(json_num(json_get(json_get(in, "format"), "rate")), 24000);
    ASSERT_STR_EQ(json_str(json_get(json_get(in, "turn_detection"), "type")), "server_vad");
    json_free(doc);
    buf_reset(&b);
    c.vad = 0;
    oairt_render_session(&b, "transcription_session.updated", "event_2", "sess_x", &c, 1);
    ASSERT_OK(json_parse(&doc, b.data, b.len, NULL, 0));
    s = json_get(json_root(doc), "session");
    ASSERT_STR_EQ(json_str(json_get(s, "input_audio_format")), "pcm16");
    ASSERT_EQ(json_type(json_get(s, "turn_detection")), JSON_NULL);
    json_free(doc);
    buf_reset(&b);
    oairt_render_error(&b, "event_3", "invalid_request_error", "invalid_value", "bad", "type",
                       "c1");
    ASSERT_OK(json_parse(&doc, b.data, b.len, NULL, 0));
    ASSERT_STR_EQ(json_str(json_get(json_get(json_root(doc), "error"), "event_id")), "c1");
    json_free(doc);
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_updates);
    RUN(test_audio_and_others);
    RUN(test_render_final);
    RUN(test_render_session);
    return 0;
}
