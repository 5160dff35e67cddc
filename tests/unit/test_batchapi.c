/* The batch APIs' pure halves (src/front/proto/batchapi.h, dgbatch.c,
 * oabatch.c) and the transcript record codec (transcript.c): a known
 * transcript, recorded from events the way a session renders them, answered
 * in every response format with exact bytes; requests refused with each
 * API's error shape. */
#include "check.h"
#include "front/proto/batchapi.h"
#include "front/proto/transcript.h"
#include "hark/hark.h"
#include "host/chan.h"

/* ------------------------------------------------------------ a transcript */

static void take(struct transcript *t, const struct hark_event *ev)
{
    struct buf rec;
    buf_init(&rec);
    unsigned flags = 0;
    transcript_record(ev, &rec, &flags);
    ASSERT_EQ(flags, 0);
    if (rec.len) {
        int code = 0;
        char msg[64];
        ASSERT_OK(transcript_take(t, rec.data, rec.len, &code, msg, sizeof msg));
    }
    buf_deinit(&rec);
}

/* "hello world" 0.5-1.25 s and "bye" 3-3.5 s, 4 s of audio; a partial and
 * an empty final in between are not part of it. */
static void known(struct transcript *t)
{
    transcript_init(t);
    static const struct hark_word w1[] = {{"hello", 0.5, 0.75, 1.0f}, {"world", 0.75, 1.0, 0.5f}};
    static const struct hark_word w2[] = {{"bye", 3.0, 3.5, 0.25f}};
    struct hark_event ev = {.type = HARK_EVENT_TRANSCRIPT, .is_final = 0, .text = "hello"};
    take(t, &ev);
    ev = (struct hark_event){.type = HARK_EVENT_TRANSCRIPT,
                             .is_final = 1,
                             .text = "hello world",
                             .start = 0.5,
                             .end = 1.25,
                             .confidence = 0.75f,
                             .words = w1,
                             .n_words = 2};
    take(t, &ev);
    ev = (struct hark_event){.type = HARK_EVENT_TRANSCRIPT, .is_final = 1, .text = ""};
    take(t, &ev);
    ev = (struct hark_event){.type = HARK_EVENT_TRANSCRIPT,
                             .is_final = 1,
                             .text = "bye",
                             .start = 3.0,
                             .end = 3.5,
                             .confidence = 0.25f,
                             .words = w2,
                             .n_words = 1};
    take(t, &ev);
    ev = (struct hark_event){.type = HARK_EVENT_CLOSED, .audio_seconds = 4.0};
    take(t, &ev);
}

static void test_transcript_records(void)
{
    struct transcript t;
    known(&t);
    ASSERT_EQ(t.n_segs, 2);
    ASSERT_EQ(t.n_words, 3);
    ASSERT(t.closed);
    ASSERT_NEAR(t.audio_seconds, 4.0, 0);
    ASSERT_STR_EQ(transcript_str(&t, t.segs[1].text), "bye");
    ASSERT_STR_EQ(transcript_str(&t, t.words[1].text), "world");
    ASSERT_EQ(t.segs[1].w0, 2);
    ASSERT_NEAR(transcript_confidence(&t, 0, 3), (1.0 + 0.5 + 0.25) / 3, 1e-9);

    /* an error record: reported, not appended; fatal for bad audio */
    struct hark_event ev = {.type = HARK_EVENT_ERROR,
                            .code = HARK_E_BAD_AUDIO,
                            .message = "cannot decode; for raw audio set encoding"};
    struct buf rec;
    buf_init(&rec);
    unsigned flags = 0;
    transcript_record(&ev, &rec, &flags);
    ASSERT(flags & MSG_FATAL);
    int code = 0;
    char msg[600];
    ASSERT_EQ(transcript_take(&t, rec.data, rec.len, &code, msg, sizeof msg), 1);
    ASSERT_EQ(code, HARK_E_BAD_AUDIO);
    ASSERT_STR_EQ(msg, "cannot decode; for raw audio set encoding");
    /* every truncation of it is refused, never read past */
    for (size_t n = 1; n < rec.len; n++)
        ASSERT_EQ(transcript_take(&t, rec.data, n, &code, msg, sizeof msg), HARK_E_PROTOCOL);
    buf_deinit(&rec);

    /* a final claiming more words than its bytes can hold: refused unallocated */
    static const struct hark_word w[] = {{"a", 0, 1, 1}};
    ev = (struct hark_event){
        .type = HARK_EVENT_TRANSCRIPT, .is_final = 1, .text = "a", .words = w, .n_words = 1};
    buf_init(&rec);
    transcript_record(&ev, &rec, &flags);
    uint32_t huge = 0xffffffffu;
    memcpy(rec.data + 1 + 2 * sizeof(double) + sizeof(float), &huge, sizeof huge);
    ASSERT_EQ(transcript_take(&t, rec.data, rec.len, &code, msg, sizeof msg), HARK_E_PROTOCOL);
    buf_deinit(&rec);
    ASSERT_EQ(t.n_segs, 2);
    transcript_deinit(&t);
}

/* ------------------------------------------------------------ OpenAI */

struct form {
    const char *v[8]; /* by the API's field index */
};

static const char *form_get(const struct batchapi_req *rq, int i)
{
    const struct form *f = rq->user;
    return i >= 0 && i < 8 ? f->v[i] : NULL;
}

static int field_index(const char *name)
{
    for (int i = 0; i < batchapi_openai.n_fields; i++)
        if (!strcmp(batchapi_openai.fields[i], name))
            return i;
    FAIL_("no field %s", name);
}

/* An OpenAI request with the form fields given as name, value pairs (all
 * before the file part): the refusal, or the response of the known
 * transcript. */
static int openai(const char *const *kv, int file_parts, struct buf *out, const char **mime,
                  struct batchapi_refusal *r)
{
    struct hark_options *defaults = NULL;
    ASSERT_OK(hark_options_create(&defaults));
    struct batchapi_ctx cx = {defaults, NULL, "pocketsphinx", NULL, 0};
    struct form f = {{0}};
    for (int i = 0; kv && kv[i]; i += 2)
        f.v[field_index(kv[i])] = kv[i + 1];
    struct batchapi_req rq = {
        "/v1/audio/transcriptions", NULL, 0, "multipart/form-data; boundary=x", 0, form_get, &f};
    const struct batchapi *api = &batchapi_openai;
    void *st = hark_calloc(1, api->state_size);
    struct hark_options *o = NULL;
    ASSERT_OK(hark_options_copy(&o, defaults));
    int rc = api->open(st, &cx, &rq, o, r);
    for (int k = 1; !rc && k <= file_parts; k++)
        rc = api->file(st, &cx, &rq, k, o, r);
    if (!rc)
        rc = api->check(st, &cx, &rq, file_parts, r);
    if (rc) {
        api->error(r, "id", out);
    } else {
        struct transcript t;
        known(&t);
        struct batchapi_meta m = {"id", "2026-12-05T00:00:00.000Z", "", "pocketsphinx"};
        api->respond(st, &m, &t, out, mime);
        transcript_deinit(&t);
    }
    hark_options_destroy(o);
    hark_options_destroy(defaults);
    hark_free(st);
    return rc;
}

static void expect_openai(const char *format, const char *stream, const char *want_mime,
                          const char *want)
{
    const char *kv[] = {"response_format", format, "stream", stream, "language", "de", NULL};
    struct buf out;
    buf_init(&out);
    const char *mime = NULL;
    struct batchapi_refusal r = {0};
    ASSERT_OK(openai(kv, 1, &out, &mime, &r));
    buf_putc(&out, 0);
    ASSERT_STR_EQ(out.data, want);
    ASSERT_STR_EQ(mime, want_mime);
    buf_deinit(&out);
}

static void test_openai_formats(void)
{
    expect_openai("json", NULL, "application/json", "{\"text\":\"hello world bye\"}");
    expect_openai(NULL, "false", "application/json", "{\"text\":\"hello world bye\"}");
    expect_openai("text", NULL, "text/plain; charset=utf-8", "hello world bye\n");
    expect_openai("srt", NULL, "application/x-subrip; charset=utf-8",
                  "1\n00:00:00,500 --> 00:00:01,250\nhello world\n\n"
                  "2\n00:00:03,000 --> 00:00:03,500\nbye\n\n");
    expect_openai("vtt", NULL, "text/vtt; charset=utf-8",
                  "WEBVTT\n\n00:00:00.500 --> 00:00:01.250\nhello world\n\n"
                  "00:00:03.000 --> 00:00:03.500\nbye\n\n");
    /* avg_logprob: mean of ln(confidence) of the segment's words */
    expect_openai(
        "verbose_json", NULL, "application/json",
        "{\"task\":\"transcribe\",\"language\":\"german\",\"duration\":4,"
        "\"text\":\"hello world bye\",\"segments\":["
        "{\"id\":0,\"seek\":0,\"start\":0.5,\"end\":1.25,\"text\":\" hello world\",\"tokens\":[],"
        "\"temperature\":0,\"avg_logprob\":-0.347,\"compression_ratio\":1,\"no_speech_prob\":0},"
        "{\"id\":1,\"seek\":0,\"start\":3,\"end\":3.5,\"text\":\" bye\",\"tokens\":[],"
        "\"temperature\":0,\"avg_logprob\":-1.386,\"compression_ratio\":1,\"no_speech_prob\":0}],"
        "\"words\":[{\"word\":\"hello\",\"start\":0.5,\"end\":0.75},"
        "{\"word\":\"world\",\"start\":0.75,\"end\":1},{\"word\":\"bye\",\"start\":3,\"end\":3.5}]"
        "}");
    expect_openai("srt", "true", "text/event-stream",
                  "data: {\"type\":\"transcript.text.delta\",\"delta\":\"hello world\"}\n\n"
                  "data: {\"type\":\"transcript.text.delta\",\"delta\":\" bye\"}\n\n"
                  "data: {\"type\":\"transcript.text.done\",\"text\":\"hello world bye\"}\n\n");
}

static void expect_openai_refusal(const char *const *kv, int file_parts, const char *want)
{
    struct buf out;
    buf_init(&out);
    const char *mime = NULL;
    struct batchapi_refusal r = {0};
    ASSERT_NE(openai(kv, file_parts, &out, &mime, &r), 0);
    ASSERT_EQ(r.status, 400);
    buf_putc(&out, 0);
    ASSERT_STR_EQ(out.data, want);
    buf_deinit(&out);
}

static void test_openai_refusals(void)
{
    const char *fmt[] = {"response_format", "xml", NULL};
    expect_openai_refusal(fmt, 1,
                          "{\"error\":{\"message\":\"response_format: 'xml' is not supported "
                          "(supported: json, text, verbose_json, srt, vtt)\",\"type\":"
                          "\"invalid_request_error\",\"param\":\"response_format\",\"code\":"
                          "\"bad_option\"}}");
    const char *temp[] = {"temperature", "2", NULL};
    expect_openai_refusal(temp, 1,
                          "{\"error\":{\"message\":\"temperature: '2' is not a number from 0 to "
                          "1\",\"type\":\"invalid_request_error\",\"param\":\"temperature\","
                          "\"code\":\"bad_option\"}}");
    expect_openai_refusal(NULL, 0,
                          "{\"error\":{\"message\":\"file: missing; send the audio as a "
                          "multipart form part named \\\"file\\\"\",\"type\":"
                          "\"invalid_request_error\",\"param\":\"file\",\"code\":"
                          "\"bad_option\"}}");
    const char *asfield[] = {"file", "abc", NULL};
    expect_openai_refusal(asfield, 0,
                          "{\"error\":{\"message\":\"file: must be uploaded as a file (a form "
                          "part with a filename), e.g. curl -F file=@audio.wav\",\"type\":"
                          "\"invalid_request_error\",\"param\":\"file\",\"code\":"
                          "\"bad_option\"}}");
    expect_openai_refusal(NULL, 2,
                          "{\"error\":{\"message\":\"file: more than one file part; send "
                          "exactly one\",\"type\":\"invalid_request_error\",\"param\":\"file\","
                          "\"code\":\"bad_option\"}}");

    /* not multipart */
    struct batchapi_req rq = {.path = "/v1/audio/transcriptions", .content_type = "audio/wav"};
    struct batchapi_refusal r = {0};
    ASSERT_EQ(batchapi_openai.open(NULL, NULL, &rq, NULL, &r), HARK_E_PROTOCOL);
    ASSERT_EQ(r.status, 400);

    /* the session's error in OpenAI's terms */
    memset(&r, 0, sizeof r);
    batchapi_openai.session_error(NULL, HARK_E_BAD_AUDIO, "cannot decode; for raw audio set x", &r);
    ASSERT_STR_EQ(r.msg, "cannot decode; the file must be WAV (PCM, IEEE float, mu-law or "
                         "A-law), Ogg Opus or WebM/Opus");
    ASSERT_STR_EQ(r.param, "file");
    struct buf out;
    buf_init(&out);
    struct batchapi_refusal auth = {401, HARK_E_AUTH, "", "bad key"};
    batchapi_openai.error(&auth, "id", &out);
    buf_putc(&out, 0);
    ASSERT_STR_EQ(out.data, "{\"error\":{\"message\":\"bad key\",\"type\":"
                            "\"invalid_request_error\",\"param\":null,\"code\":"
                            "\"invalid_api_key\"}}");
    buf_deinit(&out);
}

/* ------------------------------------------------------------ Deepgram */

static int deepgram(const char *const *args, size_t n, const char *ct, int chunked, struct buf *out,
                    struct batchapi_refusal *r)
{
    struct hark_options *o = NULL;
    ASSERT_OK(hark_options_create(&o));
    struct batchapi_ctx cx = {o, NULL, "pocketsphinx", NULL, 0};
    struct batchapi_req rq = {"/v1/listen", args, n, ct, chunked, NULL, NULL};
    const struct batchapi *api = &batchapi_deepgram;
    void *st = hark_calloc(1, api->state_size);
    int rc = api->open(st, &cx, &rq, o, r);
    if (rc) {
        api->error(r, "req-1", out);
    } else {
        struct transcript t;
        known(&t);
        struct batchapi_meta m = {"req-1", "2026-12-05T00:00:00.000Z", "ab12", "pocketsphinx"};
        const char *mime = NULL;
        api->respond(st, &m, &t, out, &mime);
        ASSERT_STR_EQ(mime, "application/json");
        transcript_deinit(&t);
    }
    hark_options_destroy(o);
    hark_free(st);
    return rc;
}

static void test_deepgram_response(void)
{
    const char *args[] = {"model=nova-3", "language=en"};
    struct buf out;
    buf_init(&out);
    struct batchapi_refusal r = {0};
    ASSERT_OK(deepgram(args, 2, "audio/wav", 0, &out, &r));
    buf_putc(&out, 0);
    char want[2048];
    snprintf(want, sizeof want,
             "{\"metadata\":{\"transaction_key\":\"deprecated\",\"request_id\":\"req-1\","
             "\"sha256\":\"ab12\",\"created\":\"2026-12-05T00:00:00.000Z\",\"duration\":4,"
             "\"channels\":1,\"models\":[\"6861726b-0000-4000-8000-706f636b6574\"],"
             "\"model_info\":{\"6861726b-0000-4000-8000-706f636b6574\":{\"name\":\"nova-3\","
             "\"version\":\"%s\",\"arch\":\"pocketsphinx\",\"language\":\"en\"}}},"
             "\"results\":{\"channels\":[{\"alternatives\":[{\"transcript\":\"hello world bye\","
             "\"confidence\":0.583,\"languages\":[\"en\"],\"words\":["
             "{\"word\":\"hello\",\"start\":0.5,\"end\":0.75,\"confidence\":1,"
             "\"punctuated_word\":\"hello\"},"
             "{\"word\":\"world\",\"start\":0.75,\"end\":1,\"confidence\":0.5,"
             "\"punctuated_word\":\"world\"},"
             "{\"word\":\"bye\",\"start\":3,\"end\":3.5,\"confidence\":0.25,"
             "\"punctuated_word\":\"bye\"}]}]}]}}",
             hark_version());
    ASSERT_STR_EQ(out.data, want);
    buf_deinit(&out);
}

static void test_deepgram_utterances(void)
{
    /* 2 s of silence between "world" and "bye": two utterances at
     * utt_split=1, one at utt_split=2.5 */
    const char *split1[] = {"utterances=true", "utt_split=1"};
    const char *split25[] = {"utterances=true", "utt_split=2.5"};
    for (int k = 0; k < 2; k++) {
        struct buf out;
        buf_init(&out);
        struct batchapi_refusal r = {0};
        ASSERT_OK(deepgram(k ? split25 : split1, 2, "", 0, &out, &r));
        buf_putc(&out, 0);
        const char *u = strstr(out.data, "\"utterances\":[");
        ASSERT(u);
        int n = 0;
        for (const char *p = u; (p = strstr(p, "\"speaker\":0,\"id\":\"")); p++)
            n++;
        ASSERT_EQ(n, k ? 1 : 2);
        if (!k) /* the first: its words, their mean confidence */
            ASSERT(!strncmp(u,
                            "\"utterances\":[{\"start\":0.5,\"end\":1,\"confidence\":0.75,"
                            "\"channel\":0,\"transcript\":\"hello world\",\"words\":[",
                            strlen("\"utterances\":[{\"start\":0.5,\"end\":1,\"confidence\":0."
                                   "75,\"channel\":0,\"transcript\":\"hello world\",\"words\":[")));
        buf_deinit(&out);
    }
}

static void expect_dg_refusal(const char *const *args, size_t n, const char *ct, int chunked,
                              unsigned status, const char *want)
{
    struct buf out;
    buf_init(&out);
    struct batchapi_refusal r = {0};
    ASSERT_NE(deepgram(args, n, ct, chunked, &out, &r), 0);
    ASSERT_EQ(r.status, status);
    buf_putc(&out, 0);
    ASSERT_STR_EQ(out.data, want);
    buf_deinit(&out);
}

static void test_deepgram_refusals(void)
{
    expect_dg_refusal(NULL, 0, "", 1, 411,
                      "{\"err_code\":\"LENGTH_REQUIRED\",\"err_msg\":\"Content-Length is "
                      "required (chunked request bodies are not supported here); send the "
                      "whole body with its length\",\"request_id\":\"req-1\"}");
    expect_dg_refusal(NULL, 0, "application/json; charset=utf-8", 0, 400,
                      "{\"err_code\":\"Bad Request\",\"err_msg\":\"JSON bodies ({\\\"url\\\": "
                      "...}) are not supported: hark does not fetch remote audio; send the audio "
                      "bytes as the request body\",\"request_id\":\"req-1\"}");
    const char *cb[] = {"callback=http://x"};
    expect_dg_refusal(cb, 1, "", 0, 400,
                      "{\"err_code\":\"Bad Request\",\"err_msg\":\"callback: asynchronous "
                      "callbacks are not supported; the response carries the results\","
                      "\"request_id\":\"req-1\"}");
    const char *utt[] = {"utt_split=0"};
    expect_dg_refusal(utt, 1, "", 0, 400,
                      "{\"err_code\":\"Bad Request\",\"err_msg\":\"utt_split: '0' is not a number "
                      "of seconds from 0.05 to 60\",\"request_id\":\"req-1\"}");
    const char *enc[] = {"encoding=linear16"};
    expect_dg_refusal(enc, 1, "", 0, 400,
                      "{\"err_code\":\"Bad Request\",\"err_msg\":\"sample_rate: required when "
                      "encoding is given\",\"request_id\":\"req-1\"}");

    /* the session's error: the hint only where no encoding was given */
    struct batchapi_refusal r = {0};
    void *st = hark_calloc(1, batchapi_deepgram.state_size);
    batchapi_deepgram.session_error(st, HARK_E_BAD_AUDIO, "cannot decode; for raw audio set x", &r);
    ASSERT_STR_EQ(r.msg, "cannot decode; send WAV, Ogg Opus or WebM/Opus, or headerless audio "
                         "with ?encoding=linear16|mulaw|alaw&sample_rate=N");
    ASSERT_STR_EQ(r.param, "");
    hark_free(st);
}

int main(void)
{
    RUN(test_transcript_records);
    RUN(test_openai_formats);
    RUN(test_openai_refusals);
    RUN(test_deepgram_response);
    RUN(test_deepgram_utterances);
    RUN(test_deepgram_refusals);
    return 0;
}
