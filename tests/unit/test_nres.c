/*
 * The gateway's side of the NATS codec (front/nats/nres.h): what a worker
 * renders (results, interrupts, errors, started, alive, closed) parses back
 * into the same values; what the gateway renders (start with every option,
 * chunk, state_change, finalize, keepalive, end) is what the worker's parser
 * (nmsg) reads, options in a text form hark_options_set takes; hostile or
 * mistyped results are refused with a protocol error, never unpacked
 * unchecked.
 */
#include <msgpack.h>

#include "check.h"
#include "front/nats/nmsg.h"
#include "front/nats/nres.h"

static void test_result_round_trip(void)
{
    struct hark_word w[2] = {{"hello", 0.5, 0.9, 0.8f}, {"world", 1.0, 1.4, 0.7f}};
    struct nmsg_result r = {
        .session_id = "s-1",
        .speaker_id = "spk",
        .transcript = "hello world",
        .sequence = 7,
        .is_final = 1,
        .timestamp = 1700000000.5,
        .has_voice_activity = 1,
        .state = HARK_STATE_LISTENING,
        .segment = 3,
        .start = 0.5,
        .end = 1.4,
        .speech_final = 1,
        .reason = "endpoint",
        .committed_ms = 1900,
        .confidence = 0.75f,
        .words = w,
        .n_words = 2,
    };
    struct buf b;
    buf_init(&b);
    nmsg_render_result(&b, &r);
    struct nres p;
    char err[300];
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_RESULT);
    ASSERT_STR_EQ(p.session_id, "s-1");
    ASSERT_STR_EQ(p.text, "hello world");
    ASSERT_EQ(p.is_final, 1);
    ASSERT_EQ(p.speech_final, 1);
    ASSERT_EQ(p.has_voice_activity, 1);
    ASSERT_EQ(p.sequence, 7);
    ASSERT_EQ(p.segment, 3);
    ASSERT_EQ(p.reason, HARK_REASON_ENDPOINT);
    ASSERT_EQ(p.committed_ms, 1900);
    ASSERT_EQ(p.owner_epoch, 0); /* not given */
    ASSERT(fabs(p.start - 0.5) < 1e-9 && fabs(p.end - 1.4) < 1e-9);
    ASSERT(fabs(p.confidence - 0.75) < 1e-6);
    ASSERT_EQ(p.has_words, 1);
    ASSERT_EQ(p.n_words, 2);
    ASSERT_STR_EQ(p.words[1].word, "world");
    ASSERT(fabs(p.words[1].end - 1.4) < 1e-9);
    nres_free(&p);

    /* a partial: no reason, no committed_ms, no words key; a JetStream
     * worker's, with its ownership epoch */
    r.is_final = 0;
    r.reason = NULL;
    r.words = NULL;
    r.owner_epoch = 4000000001ull;
    buf_reset(&b);
    nmsg_render_result(&b, &r);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.owner_epoch, 4000000001ll);
    ASSERT_EQ(p.is_final, 0);
    ASSERT_EQ(p.reason, HARK_REASON_NONE);
    ASSERT_EQ(p.committed_ms, -1);
    ASSERT_EQ(p.has_words, 0);
    nres_free(&p);
    buf_deinit(&b);
}

static void test_notices_round_trip(void)
{
    struct buf b;
    struct nres p;
    char err[300];
    buf_init(&b);
    nmsg_render_error(&b, "s-2", NULL, HARK_E_BAD_OPTION, "endpointing_ms: out of range", 1.0);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_ERROR);
    ASSERT_EQ(p.code, HARK_E_BAD_OPTION);
    ASSERT_STR_EQ(p.text, "endpointing_ms: out of range");
    nres_free(&p);

    buf_reset(&b);
    nmsg_render_interrupt(&b, "s-2", "x", 2.0, 1.25);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_INTERRUPT);
    ASSERT(fabs(p.audio_time - 1.25) < 1e-9);
    nres_free(&p);

    buf_reset(&b);
    nmsg_render_closed(&b, "s-2", NULL, 3.0, 12.5, 4);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_CLOSED);
    ASSERT(fabs(p.audio_seconds - 12.5) < 1e-9);
    ASSERT_EQ(p.segments, 4);
    nres_free(&p);

    buf_reset(&b);
    nmsg_render_started(&b, "s-2", NULL, 3.0, "hark worker pid 1 on h");
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_STARTED);
    nres_free(&p);

    buf_reset(&b);
    nmsg_render_alive(&b, "s-2", NULL, 3.0, 96000, 4200);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_ALIVE);
    ASSERT_EQ(p.received_bytes, 96000);
    ASSERT_EQ(p.queued_bytes, 4200);
    nres_free(&p);

    buf_reset(&b);
    nmsg_render_speech_started(&b, "s-2", NULL, 3.0, 0.42, 2);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_SPEECH_STARTED);
    ASSERT(fabs(p.audio_time - 0.42) < 1e-9);
    ASSERT_EQ(p.segment, 2);
    nres_free(&p);

    buf_reset(&b);
    nmsg_render_utterance_end(&b, "s-2", NULL, 3.0, 2.74);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_UTTERANCE_END);
    ASSERT(fabs(p.last_word_end - 2.74) < 1e-9);
    nres_free(&p);

    /* relayed to the gateway's clients as their own events */
    struct hark_event fo = {.type = HARK_EVENT_PROVIDER_FAILOVER,
                            .code = HARK_E_PROVIDER,
                            .message = "provider unreachable; continuing with pocketsphinx",
                            .failover_reason = "unreachable",
                            .from_engine = "deepgram",
                            .to_engine = "pocketsphinx",
                            .start = 1.5};
    buf_reset(&b);
    nmsg_render_failover(&b, "s-2", NULL, 3.0, &fo, 10.0);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_PROVIDER_FAILOVER);
    ASSERT_EQ(p.code, HARK_E_PROVIDER);
    ASSERT_STR_EQ(p.reason_name, "unreachable");
    ASSERT_STR_EQ(p.from, "deepgram");
    ASSERT_STR_EQ(p.to, "pocketsphinx");
    ASSERT_STR_EQ(p.text, "provider unreachable; continuing with pocketsphinx");
    ASSERT(fabs(p.start - 11.5) < 1e-9); /* the session clock after a hand-off */
    nres_free(&p);

    buf_reset(&b);
    nmsg_render_gap(&b, "s-2", NULL, "1.50 s of audio missing", 3.0, 100.0, 1.5, 4.25);
    ASSERT_OK(nres_parse(&p, b.data, b.len, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_WARNING);
    ASSERT_STR_EQ(p.code_name, "audio_gap");
    ASSERT(fabs(p.gap_duration - 1.5) < 1e-9);
    ASSERT(fabs(p.audio_offset - 4.25) < 1e-9);
    nres_free(&p);

    /* an error code this version does not know is still an error */
    ASSERT_EQ(nres_err_from_code("bad_option"), HARK_E_BAD_OPTION);
    ASSERT_EQ(nres_err_from_code("no_such_code"), 0);
    buf_deinit(&b);
}

static const char *extra(const struct nmsg_in *m, const char *name)
{
    for (size_t i = 0; i < m->n_extras; i++)
        if (!strcmp(m->extras[i].name, name))
            return m->extras[i].value;
    return NULL;
}

static void test_inputs_read_by_worker(void)
{
    struct buf b;
    struct nmsg_in m;
    char err[300];
    buf_init(&b);
    const char *kv[] = {"endpointing_ms",
                        "300",
                        "interim_results",
                        "false",
                        "language",
                        "en-US",
                        "vocabulary",
                        "dashwood,norland",
                        "ack",
                        "true",
                        "chunk_timeout",
                        "0",
                        NULL};
    nres_render_start(&b, "gw-1", 16000, 1, HARK_STATE_RESPONDING, "spk-9", kv);
    ASSERT(!b.oom);
    ASSERT_OK(nmsg_parse(&m, b.data, b.len, err, sizeof err));
    ASSERT_EQ(m.type, NMSG_START);
    ASSERT_STR_EQ(m.session_id, "gw-1");
    ASSERT_EQ(m.sample_rate, 16000);
    ASSERT_EQ(m.channels, 1);
    ASSERT_EQ(m.state, HARK_STATE_RESPONDING);
    ASSERT_STR_EQ(m.speaker_id, "spk-9");
    ASSERT_STR_EQ(extra(&m, "endpointing_ms"), "300");
    ASSERT_STR_EQ(extra(&m, "interim_results"), "false");
    ASSERT_STR_EQ(extra(&m, "language"), "en-US");
    ASSERT_STR_EQ(extra(&m, "vocabulary"), "dashwood,norland");
    ASSERT_STR_EQ(extra(&m, "ack"), "true");
    ASSERT_STR_EQ(extra(&m, "chunk_timeout"), "0");
    nmsg_free(&m);

    /* every session option fits in one start: all but the 3 seed keys,
     * plus ack, chunk_timeout and events */
    int n_options = 0;
    while (hark_options_name(n_options))
        n_options++;
    ASSERT_LE(n_options - 3 + 3, NMSG_MAX_EXTRAS);

    uint8_t audio[5] = {1, 2, 3, 4, 5};
    buf_reset(&b);
    nres_render_chunk(&b, audio, sizeof audio, 1700000000.25);
    ASSERT_OK(nmsg_parse(&m, b.data, b.len, err, sizeof err));
    ASSERT_EQ(m.type, NMSG_CHUNK);
    ASSERT_EQ(m.audio_len, 5);
    ASSERT(!memcmp(m.audio, audio, 5));
    ASSERT_EQ(m.has_timestamp, 1);
    ASSERT(fabs(m.timestamp - 1700000000.25) < 1e-6);
    nmsg_free(&m);

    buf_reset(&b);
    nres_render_chunk(&b, audio, sizeof audio, -1);
    ASSERT_OK(nmsg_parse(&m, b.data, b.len, err, sizeof err));
    ASSERT_EQ(m.has_timestamp, 0);
    nmsg_free(&m);

    buf_reset(&b);
    nres_render_state(&b, HARK_STATE_RESPONDING);
    ASSERT_OK(nmsg_parse(&m, b.data, b.len, err, sizeof err));
    ASSERT_EQ(m.type, NMSG_STATE_CHANGE);
    ASSERT_EQ(m.state, HARK_STATE_RESPONDING);
    nmsg_free(&m);

    static const struct {
        const char *type;
        enum nmsg_type t;
    } simple[] = {{"end", NMSG_END}, {"finalize", NMSG_FINALIZE}, {"keepalive", NMSG_KEEPALIVE}};
    for (size_t i = 0; i < 3; i++) {
        buf_reset(&b);
        nres_render_simple(&b, simple[i].type);
        ASSERT_OK(nmsg_parse(&m, b.data, b.len, err, sizeof err));
        ASSERT_EQ(m.type, simple[i].t);
        nmsg_free(&m);
    }
    buf_deinit(&b);
}

static int parse_packed(msgpack_sbuffer *sb, char *err, size_t n)
{
    struct nres p;
    int rc = nres_parse(&p, sb->data, sb->size, err, n);
    nres_free(&p);
    return rc;
}

static void test_hostile(void)
{
    char err[300];
    struct nres p;
    /* not msgpack / a container count past the bytes present */
    const uint8_t huge[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    ASSERT_EQ(nres_parse(&p, huge, sizeof huge, err, sizeof err), HARK_E_PROTOCOL);
    ASSERT_EQ(nres_parse(&p, "", 0, err, sizeof err), HARK_E_PROTOCOL);

    msgpack_sbuffer sb;
    msgpack_packer pk;
    /* not a map */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 0);
    ASSERT_EQ(parse_packed(&sb, err, sizeof err), HARK_E_PROTOCOL);
    msgpack_sbuffer_destroy(&sb);

    /* mistyped keys */
    static const char *const keys[] = {"transcript", "is_final",   "sequence",
                                       "words",      "session_id", "owner_epoch"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, keys[i], strlen(keys[i]));
        msgpack_pack_map(&pk, 0);
        ASSERT_EQ(parse_packed(&sb, err, sizeof err), HARK_E_PROTOCOL);
        ASSERT(strstr(err, keys[i]) != NULL);
        msgpack_sbuffer_destroy(&sb);
    }

    /* an owner_epoch below 0 */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str_with_body(&pk, "owner_epoch", 11);
    msgpack_pack_int(&pk, -1);
    ASSERT_EQ(parse_packed(&sb, err, sizeof err), HARK_E_PROTOCOL);
    ASSERT(strstr(err, "owner_epoch") != NULL);
    msgpack_sbuffer_destroy(&sb);

    /* a word without its word; words twice */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    for (int k = 0; k < 2; k++) {
        msgpack_pack_str_with_body(&pk, "words", 5);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str_with_body(&pk, "start", 5);
        msgpack_pack_double(&pk, 1.0);
    }
    ASSERT_EQ(parse_packed(&sb, err, sizeof err), HARK_E_PROTOCOL);
    msgpack_sbuffer_destroy(&sb);

    /* non-string keys and unknown types are ignored, not fatal */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_int(&pk, 5);
    msgpack_pack_int(&pk, 6);
    msgpack_pack_str_with_body(&pk, "type", 4);
    msgpack_pack_str_with_body(&pk, "future", 6);
    ASSERT_OK(nres_parse(&p, sb.data, sb.size, err, sizeof err));
    ASSERT_EQ(p.kind, NRES_OTHER);
    nres_free(&p);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    RUN(test_result_round_trip);
    RUN(test_notices_round_trip);
    RUN(test_inputs_read_by_worker);
    RUN(test_hostile);
    return 0;
}
