/*
 * The NATS msgpack codec: seed 004's input messages parse into the struct
 * with the right values; malformed, hostile and mistyped input is refused
 * with a message that names the problem, without msgpack-c ever seeing a
 * container count larger than the bytes present; results, interrupts,
 * errors and the closing notice render to maps with seed 004's keys and
 * types (checked by unpacking them again with msgpack-c).
 */
#include <msgpack.h>

#include "check.h"
#include "front/nats/nmsg.h"

/* ---- building inputs with msgpack-c's packer */

struct pk {
    msgpack_sbuffer sb;
    msgpack_packer p;
};

static void pk_init(struct pk *k)
{
    msgpack_sbuffer_init(&k->sb);
    msgpack_packer_init(&k->p, &k->sb, msgpack_sbuffer_write);
}

static void pk_str(struct pk *k, const char *s)
{
    msgpack_pack_str_with_body(&k->p, s, strlen(s));
}

static void pk_kv(struct pk *k, const char *key, const char *val)
{
    pk_str(k, key);
    pk_str(k, val);
}

static int parse(struct nmsg_in *m, const struct pk *k, char *err, size_t n)
{
    return nmsg_parse(m, k->sb.data, k->sb.size, err, n);
}

static void test_start_message(void)
{
    struct pk k;
    pk_init(&k);
    msgpack_pack_map(&k.p, 9);
    pk_kv(&k, "type", "start");
    pk_kv(&k, "session_id", "sess-1");
    pk_str(&k, "sample_rate");
    msgpack_pack_int64(&k.p, 16000); /* decodes as a positive integer */
    pk_str(&k, "channels");
    msgpack_pack_double(&k.p, 1.0); /* integral floats are integers too */
    pk_kv(&k, "state", "responding");
    pk_kv(&k, "speaker_id", "speaker-1");
    pk_str(&k, "endpointing_ms"); /* hark options ride along as extras */
    msgpack_pack_int64(&k.p, 300);
    pk_str(&k, "vocabulary");
    msgpack_pack_array(&k.p, 2);
    pk_str(&k, "dashwood");
    pk_str(&k, "norland");
    pk_str(&k, "interim_results");
    msgpack_pack_false(&k.p);

    struct nmsg_in m;
    char err[256];
    ASSERT_OK(parse(&m, &k, err, sizeof err));
    ASSERT_EQ(m.type, NMSG_START);
    ASSERT(m.has_session_id);
    ASSERT_STR_EQ(m.session_id, "sess-1");
    ASSERT(m.has_sample_rate && m.has_channels);
    ASSERT_EQ(m.sample_rate, 16000);
    ASSERT_EQ(m.channels, 1);
    ASSERT(m.has_state);
    ASSERT_EQ(m.state, HARK_STATE_RESPONDING);
    ASSERT_STR_EQ(m.speaker_id, "speaker-1");
    ASSERT_EQ(m.n_extras, 3);
    ASSERT_STR_EQ(m.extras[0].name, "endpointing_ms");
    ASSERT_STR_EQ(m.extras[0].value, "300");
    ASSERT_STR_EQ(m.extras[1].name, "vocabulary");
    ASSERT_STR_EQ(m.extras[1].value, "dashwood,norland");
    ASSERT_STR_EQ(m.extras[2].value, "false");
    ASSERT(m.audio == NULL);
    nmsg_free(&m);
    msgpack_sbuffer_destroy(&k.sb);

    /* the seed's own test publishes {'type': 'start'} and nothing else;
     * optional keys may be nil (Python None) */
    pk_init(&k);
    msgpack_pack_map(&k.p, 3);
    pk_kv(&k, "type", "start");
    pk_str(&k, "state");
    msgpack_pack_nil(&k.p);
    pk_str(&k, "speaker_id");
    msgpack_pack_nil(&k.p);
    ASSERT_OK(parse(&m, &k, err, sizeof err));
    ASSERT_EQ(m.type, NMSG_START);
    ASSERT(!m.has_session_id && !m.has_state && !m.has_speaker_id && !m.has_sample_rate);
    ASSERT_EQ(m.n_extras, 0);
    nmsg_free(&m);
    msgpack_sbuffer_destroy(&k.sb);
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Reference encoder, independent of the decoder under test. */
static size_t b64_encode(const uint8_t *in, size_t n, char *out, int pad)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64chars[(v >> 18) & 63];
        out[o++] = b64chars[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = b64chars[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (i + 2 < n)
            out[o++] = b64chars[v & 63];
        else if (pad)
            out[o++] = '=';
    }
    out[o] = 0;
    return o;
}

static void test_chunk_audio(void)
{
    uint8_t pcm[1001];
    for (size_t i = 0; i < sizeof pcm; i++)
        pcm[i] = (uint8_t)(i * 7 + 3);
    char text[1400];
    struct nmsg_in m;
    char err[256];
    for (int pad = 0; pad < 2; pad++) {
        for (size_t len = 998; len <= 1001; len++) {
            b64_encode(pcm, len, text, pad);
            struct pk k;
            pk_init(&k);
            msgpack_pack_map(&k.p, 3);
            pk_kv(&k, "type", "chunk");
            pk_kv(&k, "audio_b64", text);
            pk_str(&k, "timestamp");
            msgpack_pack_double(&k.p, 1234567890.123);
            ASSERT_OK(parse(&m, &k, err, sizeof err));
            ASSERT_EQ(m.type, NMSG_CHUNK);
            ASSERT_EQ(m.audio_len, len);
            ASSERT(memcmp(m.audio, pcm, len) == 0);
            ASSERT(m.has_timestamp);
            ASSERT_NEAR(m.timestamp, 1234567890.123, 1e-6);
            nmsg_free(&m);
            msgpack_sbuffer_destroy(&k.sb);
        }
    }
    /* raw bytes in "audio": binary, or str from old encoders; points into the input */
    for (int as_str = 0; as_str < 2; as_str++) {
        struct pk k;
        pk_init(&k);
        msgpack_pack_map(&k.p, 3);
        pk_kv(&k, "type", "chunk");
        pk_str(&k, "audio");
        if (as_str)
            msgpack_pack_str_with_body(&k.p, pcm, 640);
        else
            msgpack_pack_bin_with_body(&k.p, pcm, 640);
        pk_str(&k, "timestamp");
        msgpack_pack_int64(&k.p, 17);
        ASSERT_OK(parse(&m, &k, err, sizeof err));
        ASSERT_EQ(m.audio_len, 640);
        ASSERT(m.audio >= (const uint8_t *)k.sb.data &&
               m.audio + 640 <= (const uint8_t *)k.sb.data + k.sb.size);
        ASSERT(memcmp(m.audio, pcm, 640) == 0);
        ASSERT_NEAR(m.timestamp, 17, 0);
        nmsg_free(&m);
        msgpack_sbuffer_destroy(&k.sb);
    }
}

static void test_state_change_and_end(void)
{
    struct pk k;
    struct nmsg_in m;
    char err[256];
    pk_init(&k);
    msgpack_pack_map(&k.p, 3);
    pk_kv(&k, "state", "listening");
    pk_kv(&k, "type", "state_change"); /* type need not come first */
    pk_kv(&k, "unknown_key", "ignored");
    ASSERT_OK(parse(&m, &k, err, sizeof err));
    ASSERT_EQ(m.type, NMSG_STATE_CHANGE);
    ASSERT_EQ(m.state, HARK_STATE_LISTENING);
    ASSERT_EQ(m.n_extras, 0); /* extras only on start */
    nmsg_free(&m);
    msgpack_sbuffer_destroy(&k.sb);

    pk_init(&k);
    msgpack_pack_map(&k.p, 1);
    pk_kv(&k, "type", "end");
    ASSERT_OK(parse(&m, &k, err, sizeof err));
    ASSERT_EQ(m.type, NMSG_END);
    nmsg_free(&m);
    msgpack_sbuffer_destroy(&k.sb);
}

/* Builds a map from alternating key/value strings; "#nil", "#int",
 * "#bin", "#arr" values stand for other types. */
static int parse_kv(const char *const *kv, char *err, size_t n)
{
    struct pk k;
    pk_init(&k);
    size_t count = 0;
    while (kv[count * 2])
        count++;
    msgpack_pack_map(&k.p, count);
    for (size_t i = 0; i < count; i++) {
        pk_str(&k, kv[i * 2]);
        const char *v = kv[i * 2 + 1];
        if (!strcmp(v, "#nil"))
            msgpack_pack_nil(&k.p);
        else if (!strcmp(v, "#int"))
            msgpack_pack_int64(&k.p, 5);
        else if (!strcmp(v, "#bin"))
            msgpack_pack_bin_with_body(&k.p, "ab", 2);
        else if (!strcmp(v, "#arr")) {
            msgpack_pack_array(&k.p, 1);
            msgpack_pack_int64(&k.p, 1);
        } else
            pk_str(&k, v);
    }
    struct nmsg_in m;
    int rc = nmsg_parse(&m, k.sb.data, k.sb.size, err, n);
    nmsg_free(&m);
    msgpack_sbuffer_destroy(&k.sb);
    return rc;
}

static void expect_refused(const char *const *kv, const char *needle)
{
    char err[512] = "";
    int rc = parse_kv(kv, err, sizeof err);
    if (rc != HARK_E_PROTOCOL || !strstr(err, needle))
        FAIL_("expected protocol error mentioning \"%s\", got %d \"%s\"", needle, rc, err);
}

static void test_bad_fields(void)
{
    expect_refused((const char *const[]){"session_id", "x", NULL}, "no \"type\"");
    expect_refused((const char *const[]){"type", "#int", NULL}, "type: must be a string");
    expect_refused((const char *const[]){"type", "flush", NULL}, "unknown message type \"flush\"");
    expect_refused((const char *const[]){"type", "flush", NULL}, "start, chunk, state_change, end");
    expect_refused((const char *const[]){"type", "chunk", NULL}, "chunk has no audio");
    expect_refused(
        (const char *const[]){"type", "chunk", "audio_b64", "AAAA", "audio", "#bin", NULL}, "both");
    expect_refused((const char *const[]){"type", "chunk", "audio_b64", "AA$A", NULL},
                   "not valid base64 at character 2");
    expect_refused((const char *const[]){"type", "chunk", "audio_b64", "#bin", NULL},
                   "audio_b64: must be a base64 string");
    expect_refused((const char *const[]){"type", "chunk", "audio", "#int", NULL},
                   "audio: must be binary");
    expect_refused(
        (const char *const[]){"type", "chunk", "audio", "#bin", "timestamp", "soon", NULL},
        "timestamp: must be a number");
    expect_refused((const char *const[]){"type", "state_change", NULL}, "needs \"state\"");
    expect_refused((const char *const[]){"type", "state_change", "state", "talking", NULL},
                   "\"listening\" or \"responding\"");
    expect_refused((const char *const[]){"type", "start", "sample_rate", "fast", NULL},
                   "sample_rate: must be an integer");
    expect_refused((const char *const[]){"type", "start", "speaker_id", "#arr", NULL},
                   "speaker_id: must be a string or an integer");
    expect_refused((const char *const[]){"type", "start", "language", "#bin", NULL},
                   "language: must be a string, number, boolean or array of strings");
    expect_refused((const char *const[]){"type", "end", "type", "end", NULL}, "appears twice");
    char longid[100];
    memset(longid, 'x', 80);
    longid[80] = 0;
    expect_refused((const char *const[]){"type", "start", "session_id", longid, NULL},
                   "longer than 63 bytes");
    /* non-string keys */
    struct pk k;
    pk_init(&k);
    msgpack_pack_map(&k.p, 2);
    pk_kv(&k, "type", "end");
    msgpack_pack_int64(&k.p, 1);
    msgpack_pack_int64(&k.p, 2);
    struct nmsg_in m;
    char err[256];
    ASSERT_EQ(parse(&m, &k, err, sizeof err), HARK_E_PROTOCOL);
    ASSERT(strstr(err, "keys must be strings"));
    msgpack_sbuffer_destroy(&k.sb);
    /* not a map */
    pk_init(&k);
    pk_str(&k, "start");
    ASSERT_EQ(parse(&m, &k, err, sizeof err), HARK_E_PROTOCOL);
    ASSERT(strstr(err, "must be a msgpack map, got a string"));
    msgpack_sbuffer_destroy(&k.sb);
}

static void expect_malformed(const void *data, size_t len, const char *needle)
{
    struct nmsg_in m;
    char err[512] = "";
    int rc = nmsg_parse(&m, data, len, err, sizeof err);
    nmsg_free(&m);
    if (rc != HARK_E_PROTOCOL || !strstr(err, needle))
        FAIL_("expected malformed-input error mentioning \"%s\", got %d \"%s\"", needle, rc, err);
}

/* c-apis.md §3: container counts are allocated before the bytes are read;
 * these must be refused by the validator before msgpack-c sees them. */
static void test_hostile_msgpack(void)
{
    static const uint8_t big_array[] = {0xdd, 0x04, 0x00, 0x00, 0x00};
    expect_malformed(big_array, sizeof big_array, "claims 67108864 entries");
    static const uint8_t big_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    expect_malformed(big_map, sizeof big_map, "claims 8589934590 entries");
    static const uint8_t big_str[] = {0x81, 0xa4, 't', 'y', 'p', 'e', 0xdb, 0x7f, 0xff, 0xff, 0xff};
    expect_malformed(big_str, sizeof big_str, "claims 2147483647 bytes");
    static const uint8_t never_used[] = {0x81, 0xc1, 0xc0};
    expect_malformed(never_used, sizeof never_used, "invalid type byte 0xc1");
    static const uint8_t truncated[] = {0x82, 0xa4, 't', 'y', 'p', 'e', 0xa3, 'e', 'n', 'd'};
    expect_malformed(truncated, sizeof truncated, "ends inside an object");
    static const uint8_t short_len[] = {0xda, 0x01};
    expect_malformed(short_len, sizeof short_len, "ends inside a length");
    static const uint8_t trailing[] = {0x80, 0x80};
    expect_malformed(trailing, sizeof trailing, "1 bytes after");
    expect_malformed("", 0, "ends inside an object at byte 0");
    /* depth: 9 nested arrays are refused, 8 are fine for the validator */
    uint8_t deep[16];
    memset(deep, 0x91, sizeof deep);
    deep[9] = 0xc0;
    expect_malformed(deep, 10, "nesting deeper than 8");
    char err[256];
    ASSERT_OK(nmsg_validate(deep + 1, 9, err, sizeof err));
    /* more objects than the limit, each one byte */
    size_t n = 3 + NMSG_MAX_OBJECTS + 1;
    uint8_t *many = hark_malloc(n);
    many[0] = 0xdc;
    many[1] = (uint8_t)((NMSG_MAX_OBJECTS + 1) >> 8);
    many[2] = (uint8_t)((NMSG_MAX_OBJECTS + 1) & 0xff);
    memset(many + 3, 0xc0, NMSG_MAX_OBJECTS + 1);
    expect_malformed(many, n, "more than 4096 objects");
    hark_free(many);
    /* every type the validator knows, in one valid message (not a seed map) */
    /* clang-format off */
    static const uint8_t all[] = {
        0x9f,                                     /* array of 15 */
        0x05, 0xe0, 0xc0, 0xc2,                   /* fixints, nil, false */
        0xc4, 0x01, 0xaa,                         /* bin8 */
        0xc7, 0x01, 0x05, 0xbb,                   /* ext8: len, type, data */
        0xca, 0, 0, 0, 0,                         /* float32 */
        0xcb, 0, 0, 0, 0, 0, 0, 0, 0,             /* float64 */
        0xd1, 0xff, 0xfe,                         /* int16 */
        0xd4, 0x01, 0x02,                         /* fixext1: type, 1 byte */
        0xd8, 1, 0, 0, 0, 0, 0, 0, 0, 0,          /* fixext16: type, 16 bytes */
                 0, 0, 0, 0, 0, 0, 0, 0,
        0xd9, 0x02, 'h', 'i',                     /* str8 */
        0xdc, 0x00, 0x01, 0xc3,                   /* array16 [true] */
        0xde, 0x00, 0x01, 0xa1, 'k', 0x01,        /* map16 {k:1} */
        0xcf, 0, 0, 0, 0, 0, 0, 0, 1,             /* uint64 */
    };
    /* clang-format on */
    if (nmsg_validate(all, sizeof all, err, sizeof err))
        FAIL_("%s", err);
    struct nmsg_in m;
    ASSERT_EQ(nmsg_parse(&m, all, sizeof all, err, sizeof err), HARK_E_PROTOCOL);
    ASSERT(strstr(err, "must be a msgpack map, got an array"));
}

static void test_base64(void)
{
    uint8_t out[16];
    size_t bad = 99;
    ASSERT_EQ(nmsg_base64_decode("", 0, out, &bad), 0);
    ASSERT_EQ(nmsg_base64_decode("aGk=", 4, out, &bad), 2);
    ASSERT(!memcmp(out, "hi", 2));
    ASSERT_EQ(nmsg_base64_decode("aGk", 3, out, &bad), 2);
    ASSERT_EQ(nmsg_base64_decode("-_-_", 4, out, &bad), 3); /* URL-safe alphabet */
    ASSERT_EQ(out[0], 0xfb);
    ASSERT_EQ(nmsg_base64_decode("aGk==", 5, out, &bad), -1); /* padding off the boundary */
    ASSERT_EQ(nmsg_base64_decode("a===", 4, out, &bad), -1);
    ASSERT_EQ(nmsg_base64_decode("aGVsbG8", 7, out, &bad), 5);
    ASSERT_EQ(nmsg_base64_decode("aGVsb", 5, out, &bad), -1); /* 6 spare bits */
    ASSERT_EQ(bad, 4);
    ASSERT_EQ(nmsg_base64_decode("aG k", 4, out, &bad), -1);
    ASSERT_EQ(bad, 2);
}

/* ---- rendering, checked by unpacking with msgpack-c */

static const msgpack_object *get(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
            !memcmp(k->via.str.ptr, key, k->via.str.size))
            return &map->via.map.ptr[i].val;
    }
    FAIL_("key %s missing", key);
    return NULL;
}

static int has(const msgpack_object *map, const char *key)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->via.str.size == strlen(key) && !memcmp(k->via.str.ptr, key, k->via.str.size))
            return 1;
    }
    return 0;
}

static int str_is(const msgpack_object *o, const char *s)
{
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           !memcmp(o->via.str.ptr, s, o->via.str.size);
}

static void unpack(msgpack_unpacked *up, const struct buf *b)
{
    ASSERT(!b->oom);
    size_t off = 0;
    msgpack_unpacked_init(up);
    ASSERT_EQ(msgpack_unpack_next(up, b->data, b->len, &off), MSGPACK_UNPACK_SUCCESS);
    ASSERT_EQ(off, b->len);
    ASSERT_EQ(up->data.type, MSGPACK_OBJECT_MAP);
}

static void test_render_result(void)
{
    struct hark_word words[2] = {{"young", 1.0, 1.4, 0.9f}, {"man", 1.4, 1.7, 0.8f}};
    struct nmsg_result r = {
        .session_id = "s-1",
        .speaker_id = "speaker-1",
        .transcript = "young man",
        .sequence = 7,
        .is_final = 1,
        .timestamp = 1700000000.25,
        .has_voice_activity = 1,
        .state = HARK_STATE_LISTENING,
        .segment = 2,
        .start = 0.9,
        .end = 1.9,
        .speech_final = 1,
        .reason = "endpoint",
        .committed_ms = 1900,
        .confidence = 0.85f,
        .words = words,
        .n_words = 2,
    };
    struct buf b;
    buf_init(&b);
    nmsg_render_result(&b, &r);
    msgpack_unpacked up;
    unpack(&up, &b);
    const msgpack_object *o = &up.data;
    ASSERT_EQ(o->via.map.size, 17); /* 9 seed keys + 8 of hark's */
    ASSERT(str_is(get(o, "session_id"), "s-1"));
    ASSERT(str_is(get(o, "transcript"), "young man"));
    ASSERT_EQ(get(o, "sequence")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    ASSERT_EQ(get(o, "sequence")->via.u64, 7);
    ASSERT_EQ(get(o, "is_partial")->type, MSGPACK_OBJECT_BOOLEAN);
    ASSERT_EQ(get(o, "is_partial")->via.boolean, 0);
    ASSERT_EQ(get(o, "is_final")->via.boolean, 1);
    ASSERT_EQ(get(o, "timestamp")->type, MSGPACK_OBJECT_FLOAT64);
    ASSERT_NEAR(get(o, "timestamp")->via.f64, 1700000000.25, 1e-9);
    ASSERT(str_is(get(o, "speaker_id"), "speaker-1"));
    ASSERT_EQ(get(o, "has_voice_activity")->via.boolean, 1);
    ASSERT(str_is(get(o, "state"), "listening"));
    ASSERT_EQ(get(o, "segment")->via.u64, 2);
    ASSERT(str_is(get(o, "reason"), "endpoint"));
    ASSERT_EQ(get(o, "committed_ms")->via.u64, 1900);
    ASSERT_EQ(get(o, "speech_final")->via.boolean, 1);
    ASSERT(!has(o, "type")); /* results are typeless, as in the seed */
    const msgpack_object *w = get(o, "words");
    ASSERT_EQ(w->type, MSGPACK_OBJECT_ARRAY);
    ASSERT_EQ(w->via.array.size, 2);
    ASSERT(str_is(get(&w->via.array.ptr[1], "word"), "man"));
    ASSERT_NEAR(get(&w->via.array.ptr[1], "end")->via.f64, 1.7, 1e-9);
    msgpack_unpacked_destroy(&up);

    /* a partial without speaker, words off, state responding */
    r.is_final = 0;
    r.reason = NULL;
    r.words = NULL;
    r.speaker_id = "";
    r.state = HARK_STATE_RESPONDING;
    r.has_voice_activity = 0;
    buf_reset(&b);
    nmsg_render_result(&b, &r);
    unpack(&up, &b);
    o = &up.data;
    ASSERT_EQ(o->via.map.size, 14);
    ASSERT_EQ(get(o, "is_partial")->via.boolean, 1);
    ASSERT_EQ(get(o, "is_final")->via.boolean, 0);
    ASSERT_EQ(get(o, "speaker_id")->type, MSGPACK_OBJECT_NIL);
    ASSERT(str_is(get(o, "state"), "responding"));
    ASSERT(!has(o, "reason") && !has(o, "words") && !has(o, "committed_ms"));
    ASSERT(!has(o, "owner_epoch")); /* not a JetStream worker's */
    ASSERT_EQ(get(o, "has_voice_activity")->via.boolean, 0);
    msgpack_unpacked_destroy(&up);

    /* a JetStream worker's result says which ownership it came from */
    r.owner_epoch = 4000000001ull;
    buf_reset(&b);
    nmsg_render_result(&b, &r);
    unpack(&up, &b);
    o = &up.data;
    ASSERT_EQ(o->via.map.size, 15);
    ASSERT_EQ(get(o, "owner_epoch")->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    ASSERT_EQ(get(o, "owner_epoch")->via.u64, 4000000001ull);
    msgpack_unpacked_destroy(&up);
    buf_deinit(&b);
}

static void test_render_notices(void)
{
    struct buf b;
    buf_init(&b);
    msgpack_unpacked up;
    nmsg_render_interrupt(&b, "s-2", "spk", 1700000001.5, 3.25);
    unpack(&up, &b);
    ASSERT(str_is(get(&up.data, "type"), "interrupt"));
    ASSERT(str_is(get(&up.data, "session_id"), "s-2"));
    ASSERT(str_is(get(&up.data, "speaker_id"), "spk"));
    ASSERT_NEAR(get(&up.data, "timestamp")->via.f64, 1700000001.5, 1e-9);
    ASSERT_NEAR(get(&up.data, "audio_time")->via.f64, 3.25, 1e-9);
    msgpack_unpacked_destroy(&up);

    buf_reset(&b);
    nmsg_render_error(&b, "s-3", NULL, HARK_E_PROTOCOL, "unknown message type \"x\"", 5.0);
    unpack(&up, &b);
    ASSERT(str_is(get(&up.data, "type"), "error"));
    ASSERT(str_is(get(&up.data, "code"), "protocol_error"));
    ASSERT(str_is(get(&up.data, "message"), "unknown message type \"x\""));
    ASSERT_EQ(get(&up.data, "speaker_id")->type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&up);

    buf_reset(&b);
    nmsg_render_closed(&b, "s-4", "spk", 6.0, 2.99, 1);
    unpack(&up, &b);
    ASSERT(str_is(get(&up.data, "type"), "closed"));
    ASSERT_NEAR(get(&up.data, "audio_seconds")->via.f64, 2.99, 1e-9);
    ASSERT_EQ(get(&up.data, "segments")->via.u64, 1);
    msgpack_unpacked_destroy(&up);
    buf_deinit(&b);

    /* a rendered message parses back through the validator */
    buf_init(&b);
    nmsg_render_error(&b, "s-5", "x", HARK_E_STATE, "m", 1.0);
    char err[128];
    ASSERT_OK(nmsg_validate(b.data, b.len, err, sizeof err));
    buf_deinit(&b);
}

int main(void)
{
    RUN(test_start_message);
    RUN(test_chunk_audio);
    RUN(test_state_change_and_end);
    RUN(test_bad_fields);
    RUN(test_hostile_msgpack);
    RUN(test_base64);
    RUN(test_render_result);
    RUN(test_render_notices);
    return 0;
}
