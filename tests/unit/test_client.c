/* The C client's pure parts: the reader of server messages (every kind,
 * fields checked for type and range, errors typed), the audio ring (wrap,
 * release, copy), URL splitting; and the client object itself against no
 * server: a bad URL or option is refused at create, and a port nobody
 * listens on ends in an io_error event and HARK_E_IO from close. */
#include <stdint.h>

#include "check.h"
#include "client/client_msg.h"
#include "client/client_ring.h"
#include "client/client_url.h"
#include "hark/client.h"

static char err[256];

static int parse(struct client_msg *m, const char *text)
{
    /* an exact-size heap copy: ASan sees a read past the end */
    size_t n = strlen(text);
    char *copy = malloc(n ? n : 1);
    memcpy(copy, text, n);
    int rc = client_msg_parse(m, copy, n, err, sizeof err);
    free(copy);
    return rc;
}

static void test_msg_kinds(void)
{
    struct client_msg m;
    client_msg_init(&m);
    ASSERT_OK(parse(&m, "{\"type\":\"ready\",\"session_id\":\"s1\",\"resume_token\":\"abc\","
                        "\"resume_window\":30,\"encoding\":\"pcm_s16le\",\"sample_rate\":16000,"
                        "\"channels\":1,\"engine\":\"pocketsphinx\"}"));
    ASSERT_EQ(m.kind, CLIENT_MSG_READY);
    ASSERT_STR_EQ(m.session_id, "s1");
    ASSERT_STR_EQ(m.resume_token, "abc");
    ASSERT_STR_EQ(m.encoding, "pcm_s16le");
    ASSERT_EQ(m.sample_rate, 16000);
    ASSERT_EQ(m.channels, 1);
    ASSERT_NEAR(m.resume_window, 30, 0);
    /* a server without resume: no token */
    ASSERT_OK(parse(&m, "{\"type\":\"ready\",\"session_id\":\"s2\"}"));
    ASSERT_STR_EQ(m.resume_token, "");

    ASSERT_OK(parse(&m, "{\"type\":\"resumed\",\"session_id\":\"s1\",\"audio_bytes\":64000,"
                        "\"last_seq\":-1}"));
    ASSERT_EQ(m.kind, CLIENT_MSG_RESUMED);
    ASSERT_EQ(m.audio_bytes, 64000);
    ASSERT_EQ(m.last_seq, -1);
    ASSERT_OK(parse(&m, "{\"type\":\"resumed\",\"session_id\":\"s1\",\"audio_bytes\":1,"
                        "\"last_seq\":41}"));
    ASSERT_EQ(m.last_seq, 41);
    ASSERT_OK(parse(&m, "{\"type\":\"ack\",\"audio_bytes\":9007199254740992}"));
    ASSERT_EQ(m.kind, CLIENT_MSG_ACK);
    ASSERT_EQ(m.audio_bytes, 9007199254740992ull);

    ASSERT_OK(parse(&m, "{\"type\":\"transcript\",\"seq\":15,\"segment\":2,\"is_final\":true,"
                        "\"speech_final\":true,\"reason\":\"endpoint\",\"text\":\"he might\","
                        "\"start\":0.3,\"end\":3.84,\"confidence\":0.693,\"language\":\"en-US\","
                        "\"voice_activity\":true,\"words\":[{\"word\":\"he\",\"start\":0.45,"
                        "\"end\":0.64,\"confidence\":0.969},{\"word\":\"might\",\"start\":0.64,"
                        "\"end\":0.89,\"confidence\":1}],\"committed_ms\":3840,"
                        "\"speaker_id\":\"a\"}"));
    ASSERT_EQ(m.kind, CLIENT_MSG_EVENT);
    ASSERT_EQ(m.ev.type, HARK_EVENT_TRANSCRIPT);
    ASSERT_EQ(m.ev.seq, 15);
    ASSERT_EQ(m.ev.segment, 2);
    ASSERT_EQ(m.ev.is_final, 1);
    ASSERT_EQ(m.ev.speech_final, 1);
    ASSERT_EQ(m.ev.reason, HARK_REASON_ENDPOINT);
    ASSERT_STR_EQ(m.ev.text, "he might");
    ASSERT_NEAR(m.ev.end, 3.84, 1e-9);
    ASSERT_NEAR(m.ev.confidence, 0.693, 1e-6);
    ASSERT_EQ(m.ev.n_words, 2);
    ASSERT_STR_EQ(m.ev.words[1].word, "might");
    ASSERT_NEAR(m.ev.words[1].end, 0.89, 1e-9);
    ASSERT_EQ(m.ev.committed_ms, 3840);
    ASSERT_STR_EQ(m.ev.speaker_id, "a");
    ASSERT_STR_EQ(m.ev.language, "en-US");
    ASSERT_EQ(m.ev.voice_activity, 1);
    /* words:false on the session: no words at all; "words":[]: an empty list */
    ASSERT_OK(parse(&m, "{\"type\":\"transcript\",\"seq\":1,\"segment\":0,\"is_final\":false,"
                        "\"text\":\"x\"}"));
    ASSERT(m.ev.words == NULL);
    ASSERT_OK(parse(&m, "{\"type\":\"transcript\",\"seq\":1,\"segment\":0,\"is_final\":false,"
                        "\"text\":\"\",\"words\":[]}"));
    ASSERT(m.ev.words != NULL);
    ASSERT_EQ(m.ev.n_words, 0);

    ASSERT_OK(parse(&m, "{\"type\":\"speech_started\",\"seq\":0,\"timestamp\":0.5}"));
    ASSERT_EQ(m.ev.type, HARK_EVENT_SPEECH_STARTED);
    ASSERT_NEAR(m.ev.start, 0.5, 0);
    ASSERT_OK(parse(&m, "{\"type\":\"utterance_end\",\"seq\":16,\"last_word_end\":3.42}"));
    ASSERT_NEAR(m.ev.end, 3.42, 1e-9);
    ASSERT_OK(parse(&m, "{\"type\":\"interrupt\",\"seq\":3,\"timestamp\":12.34}"));
    ASSERT_EQ(m.ev.type, HARK_EVENT_INTERRUPT);
    ASSERT_OK(parse(&m, "{\"type\":\"error\",\"seq\":0,\"code\":\"bad_option\",\"message\":"
                        "\"sample_rate: 96000\"}"));
    ASSERT_EQ(m.ev.code, HARK_E_BAD_OPTION);
    ASSERT_STR_EQ(m.ev.message, "sample_rate: 96000");
    ASSERT_OK(parse(&m, "{\"type\":\"error\",\"seq\":0,\"code\":\"resume_failed\"}"));
    ASSERT_EQ(m.ev.code, HARK_E_RESUME_FAILED);
    ASSERT_OK(parse(&m, "{\"type\":\"error\",\"seq\":0,\"code\":\"from_the_future\"}"));
    ASSERT_EQ(m.ev.code, HARK_E_INTERNAL);
    ASSERT_STR_EQ(m.error_code, "from_the_future");
    ASSERT_OK(parse(&m, "{\"type\":\"closed\",\"seq\":17,\"audio_seconds\":5.04,\"segments\":1}"));
    ASSERT_EQ(m.ev.type, HARK_EVENT_CLOSED);
    ASSERT_NEAR(m.ev.audio_seconds, 5.04, 1e-9);
    ASSERT_EQ(m.ev.segments, 1);
    /* a type from a newer server is ignored, not an error */
    ASSERT_OK(parse(&m, "{\"type\":\"metadata\",\"x\":[1,2]}"));
    ASSERT_EQ(m.kind, CLIENT_MSG_UNKNOWN);
    client_msg_deinit(&m);
}

static void test_msg_refused(void)
{
    static const struct {
        const char *text, *why;
    } bad[] = {
        {"", "invalid JSON"},
        {"[1]", "JSON object"},
        {"{\"seq\":1}", "no \"type\""},
        {"{\"type\":\"transcript\",\"segment\":0,\"is_final\":true,\"text\":\"\"}",
         "\"seq\" missing"},
        {"{\"type\":\"transcript\",\"seq\":-1,\"segment\":0,\"is_final\":true,\"text\":\"\"}",
         "\"seq\" must be"},
        {"{\"type\":\"transcript\",\"seq\":1.5,\"segment\":0,\"is_final\":true,\"text\":\"\"}",
         "\"seq\" must be"},
        {"{\"type\":\"transcript\",\"seq\":1e300,\"segment\":0,\"is_final\":true,\"text\":\"\"}",
         "\"seq\" must be"},
        {"{\"type\":\"transcript\",\"seq\":1,\"segment\":0,\"is_final\":1,\"text\":\"\"}",
         "is_final"},
        {"{\"type\":\"transcript\",\"seq\":1,\"segment\":0,\"is_final\":true}", "text"},
        {"{\"type\":\"transcript\",\"seq\":1,\"segment\":0,\"is_final\":true,\"text\":\"\","
         "\"words\":[{\"start\":1}]}",
         "words[0]"},
        {"{\"type\":\"transcript\",\"seq\":1,\"segment\":0,\"is_final\":true,\"text\":\"\","
         "\"words\":{}}",
         "\"words\" must be an array"},
        {"{\"type\":\"transcript\",\"seq\":1,\"segment\":0,\"is_final\":true,\"text\":\"\","
         "\"start\":\"0\"}",
         "\"start\" must be a number"},
        {"{\"type\":\"ready\"}", "session_id"},
        {"{\"type\":\"resumed\",\"session_id\":\"s\",\"last_seq\":1}", "audio_bytes"},
        {"{\"type\":\"resumed\",\"session_id\":\"s\",\"audio_bytes\":1,\"last_seq\":-2}",
         "last_seq"},
        {"{\"type\":\"ack\",\"audio_bytes\":-5}", "audio_bytes"},
        {"{\"type\":\"ack\",\"audio_bytes\":1,\"audio_bytes\":2}", "duplicate"},
    };
    struct client_msg m;
    client_msg_init(&m);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = parse(&m, bad[i].text);
        if (rc != HARK_E_PROTOCOL || !strstr(err, bad[i].why))
            FAIL_("%s: rc %d, '%s' (want '%s')", bad[i].text, rc, err, bad[i].why);
        ASSERT_EQ(m.kind, CLIENT_MSG_UNKNOWN);
    }
    client_msg_deinit(&m);
}

static void test_ring(void)
{
    struct client_ring r;
    ASSERT_EQ(client_ring_init(&r, 0), HARK_E_INVAL);
    ASSERT_OK(client_ring_init(&r, 10));
    uint8_t in[25], out[25];
    for (int i = 0; i < 25; i++)
        in[i] = (uint8_t)i;
    ASSERT_EQ(client_ring_push(&r, in, 7), 7);
    ASSERT_EQ(client_ring_room(&r), 3);
    ASSERT_EQ(client_ring_push(&r, in + 7, 5), 3); /* only what fits */
    ASSERT_EQ(client_ring_release(&r, 6), 6);
    ASSERT_EQ(client_ring_release(&r, 2), 6);       /* never backwards */
    ASSERT_EQ(client_ring_push(&r, in + 10, 6), 6); /* wraps */
    ASSERT_EQ(r.end, 16);
    ASSERT_EQ(client_ring_copy(&r, 5, out, 25), 0); /* released */
    ASSERT_EQ(client_ring_copy(&r, 6, out, 25), 10);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(out[i], 6 + i);
    ASSERT_EQ(client_ring_copy(&r, 14, out, 1), 1);
    ASSERT_EQ(out[0], 14);
    ASSERT_EQ(client_ring_copy(&r, 16, out, 5), 0);
    ASSERT_EQ(client_ring_release(&r, 99), 16); /* never past the end */
    client_ring_deinit(&r);
}

static void test_url(void)
{
    struct client_url u;
    ASSERT_OK(client_url_parse(&u, "ws://127.0.0.1:8080", err, sizeof err));
    ASSERT_STR_EQ(u.host, "127.0.0.1");
    ASSERT_EQ(u.port, 8080);
    ASSERT_STR_EQ(u.path, "/v1/stream");
    ASSERT_STR_EQ(u.hostport, "127.0.0.1:8080");
    ASSERT_EQ(u.tls, 0);
    ASSERT_OK(client_url_parse(&u, "wss://stt.example.com/custom/path?x=1", err, sizeof err));
    ASSERT_EQ(u.tls, 1);
    ASSERT_EQ(u.port, 443);
    ASSERT_STR_EQ(u.path, "/custom/path?x=1");
    ASSERT_STR_EQ(u.hostport, "stt.example.com");
    ASSERT_OK(client_url_parse(&u, "ws://[::1]:9/", err, sizeof err));
    ASSERT_STR_EQ(u.host, "::1");
    ASSERT_STR_EQ(u.path, "/v1/stream");
    ASSERT_STR_EQ(u.hostport, "[::1]:9");
    ASSERT_OK(client_url_parse(&u, "http://h?q=1", err, sizeof err));
    ASSERT_STR_EQ(u.path, "/v1/stream?q=1");
    const char *bad[] = {"",         "h:80",          "ftp://h",   "ws://",     "ws://h:0",
                         "ws://h:x", "ws://h:123456", "ws://[::1", "ws://h x/", "ws://u@h/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (client_url_parse(&u, bad[i], err, sizeof err) != HARK_E_INVAL)
            FAIL_("'%s' accepted", bad[i]);
}

struct seen {
    int errors, last_code, closed_state;
};

static void on_ev(void *user, const struct hark_client_event *ev)
{
    struct seen *s = user;
    if (ev->type == HARK_CLIENT_EVENT_ERROR) {
        s->errors++;
        s->last_code = ev->code;
    }
    if (ev->type == HARK_CLIENT_EVENT_STATE && ev->state == HARK_CLIENT_CLOSED)
        s->closed_state = 1;
}

static void test_client_without_server(void)
{
    struct hark_client_config cfg;
    struct hark_client *c = NULL;
    hark_client_config_init(&cfg);
    ASSERT_EQ(hark_client_create(&c, &cfg, on_ev, NULL, err, sizeof err), HARK_E_INVAL);
    cfg.url = "ws://127.0.0.1:1";
    const char *opts[] = {"sample_rate", "96000", NULL};
    cfg.options = opts;
    ASSERT_EQ(hark_client_create(&c, &cfg, on_ev, NULL, err, sizeof err), HARK_E_BAD_OPTION);
    ASSERT(strstr(err, "sample_rate"));
    const char *odd[] = {"encoding", NULL};
    cfg.options = odd;
    ASSERT_EQ(hark_client_create(&c, &cfg, on_ev, NULL, err, sizeof err), HARK_E_INVAL);
    ASSERT(c == NULL);

    /* port 1: nothing listens; two attempts, then the end */
    struct seen s = {0};
    cfg.options = NULL;
    cfg.connect_attempts = 2;
    cfg.backoff_base_ms = 10;
    ASSERT_OK(hark_client_create(&c, &cfg, on_ev, &s, err, sizeof err));
    ASSERT_OK(hark_client_send_audio(c, "\0\0\0\0", 4));
    ASSERT_EQ(hark_client_close(c, 20000), HARK_E_IO);
    ASSERT_EQ(s.errors, 1);
    ASSERT_EQ(s.last_code, HARK_E_IO);
    ASSERT_EQ(s.closed_state, 1);
    ASSERT_EQ(hark_client_state(c), HARK_CLIENT_CLOSED);
    ASSERT_EQ(hark_client_send_audio(c, "\0\0", 2), HARK_E_STATE);
    ASSERT_EQ(hark_client_finalize(c), HARK_E_STATE);
    hark_client_destroy(c);
    hark_client_destroy(NULL);
}

int main(void)
{
    RUN(test_msg_kinds);
    RUN(test_msg_refused);
    RUN(test_ring);
    RUN(test_url);
    RUN(test_client_without_server);
    return 0;
}
