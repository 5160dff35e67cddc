#include "front/nats/nmsg.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "front/nats/mpk.h"
#include "base/err.h"
#include "base/mem.h"

const char *nmsg_type_name(enum nmsg_type t)
{
    switch (t) {
    case NMSG_START:
        return "start";
    case NMSG_CHUNK:
        return "chunk";
    case NMSG_STATE_CHANGE:
        return "state_change";
    case NMSG_END:
        return "end";
    case NMSG_FINALIZE:
        return "finalize";
    case NMSG_KEEPALIVE:
        return "keepalive";
    }
    return "?";
}

const char *nmsg_state_name(enum hark_state s)
{
    return s == HARK_STATE_RESPONDING ? "responding" : "listening";
}

double nmsg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int nmsg_validate(const void *data, size_t len, char *err, size_t errlen)
{
    return mpk_validate(data, len, NMSG_MAX_DEPTH, NMSG_MAX_OBJECTS, err, errlen);
}

/* ------------------------------------------------------------ base64 */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

long nmsg_base64_decode(const char *in, size_t n, uint8_t *out, size_t *bad_at)
{
    size_t end = n;
    /* up to two '=' of padding, only at the end, only on a 4-char boundary */
    while (end > 0 && n - end < 2 && in[end - 1] == '=')
        end--;
    if (end < n && n % 4 != 0) {
        *bad_at = end;
        return -1;
    }
    if (end % 4 == 1) { /* 6 bits cannot make a byte */
        *bad_at = end - 1;
        return -1;
    }
    uint32_t acc = 0;
    int bits = 0;
    long o = 0;
    for (size_t i = 0; i < end; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            *bad_at = i;
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return o;
}

/* ------------------------------------------------------------ parser */

static int is_int(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

static int is_float(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64;
}

static const char *kind_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "a float";
    case MSGPACK_OBJECT_STR:
        return "a string";
    case MSGPACK_OBJECT_BIN:
        return "binary";
    case MSGPACK_OBJECT_ARRAY:
        return "an array";
    case MSGPACK_OBJECT_MAP:
        return "a map";
    default:
        return "an extension type";
    }
}

/* Integer value of an integer, or of a float with an integral value. */
static int get_int(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        *out = o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    if (is_float(o) && isfinite(o->via.f64) && o->via.f64 == floor(o->via.f64) &&
        fabs(o->via.f64) < 9e15) {
        *out = (int64_t)o->via.f64;
        return 0;
    }
    return -1;
}

/* msgpack-c leaves ptr NULL for an empty string; mem* must not see it. */
static int str_has(const msgpack_object *o, int c)
{
    return o->via.str.size && memchr(o->via.str.ptr, c, o->via.str.size) != NULL;
}

static int copy_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->via.str.size >= cap)
        return -1;
    if (o->via.str.size)
        memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return 0;
}

/* Text form of an extra start key's value for hark_options_set. */
static int extra_text(const msgpack_object *v, char *dst, size_t cap, char *err, size_t errlen,
                      const char *key)
{
    int n = 0;
    switch (v->type) {
    case MSGPACK_OBJECT_STR:
        if (copy_str(v, dst, cap) == 0 && strlen(dst) == v->via.str.size)
            return 0;
        return err_set(err, errlen, HARK_E_PROTOCOL,
                       "%s: string longer than %zu bytes or containing NUL", key, cap - 1);
    case MSGPACK_OBJECT_BOOLEAN:
        n = snprintf(dst, cap, "%s", v->via.boolean ? "true" : "false");
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = snprintf(dst, cap, "%llu", (unsigned long long)v->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = snprintf(dst, cap, "%lld", (long long)v->via.i64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        n = snprintf(dst, cap, "%.17g", v->via.f64);
        break;
    case MSGPACK_OBJECT_ARRAY: {
        size_t at = 0;
        dst[0] = 0;
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *e = &v->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_STR)
                return err_set(err, errlen, HARK_E_PROTOCOL,
                               "%s: array entries must be strings, entry %u is %s", key, i,
                               kind_name(e));
            size_t need = e->via.str.size + (i ? 1 : 0);
            if (at + need >= cap || str_has(e, 0) || str_has(e, ','))
                return err_set(err, errlen, HARK_E_PROTOCOL,
                               "%s: entries must not contain commas and must fit in %zu bytes", key,
                               cap - 1);
            if (i)
                dst[at++] = ',';
            if (e->via.str.size)
                memcpy(dst + at, e->via.str.ptr, e->via.str.size);
            at += e->via.str.size;
            dst[at] = 0;
        }
        return 0;
    }
    default:
        return err_set(err, errlen, HARK_E_PROTOCOL,
                       "%s: must be a string, number, boolean or array of strings, got %s", key,
                       kind_name(v));
    }
    return n > 0 && (size_t)n < cap
               ? 0
               : err_set(err, errlen, HARK_E_PROTOCOL, "%s: value too long", key);
}

enum {
    K_TYPE = 1 << 0,
    K_SESSION = 1 << 1,
    K_RATE = 1 << 2,
    K_CHANNELS = 1 << 3,
    K_STATE = 1 << 4,
    K_SPEAKER = 1 << 5,
    K_B64 = 1 << 6,
    K_AUDIO = 1 << 7,
    K_TS = 1 << 8,
};

static const struct {
    const char *name;
    unsigned bit;
} known_keys[] = {
    {"type", K_TYPE},         {"session_id", K_SESSION}, {"sample_rate", K_RATE},
    {"channels", K_CHANNELS}, {"state", K_STATE},        {"speaker_id", K_SPEAKER},
    {"audio_b64", K_B64},     {"audio", K_AUDIO},        {"timestamp", K_TS},
};

static int parse_type(const msgpack_object *map, struct nmsg_in *out, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || !mpk_key_is(k, "type"))
            continue;
        if (v->type != MSGPACK_OBJECT_STR)
            return err_set(err, errlen, HARK_E_PROTOCOL, "type: must be a string, got %s",
                           kind_name(v));
        static const enum nmsg_type types[] = {NMSG_START, NMSG_CHUNK,    NMSG_STATE_CHANGE,
                                               NMSG_END,   NMSG_FINALIZE, NMSG_KEEPALIVE};
        for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
            if (mpk_key_is(v, nmsg_type_name(types[t]))) {
                out->type = types[t];
                return 0;
            }
        }
        char shown[40];
        size_t n = v->via.str.size < sizeof shown - 1 ? v->via.str.size : sizeof shown - 1;
        if (n)
            memcpy(shown, v->via.str.ptr, n);
        shown[n] = 0;
        for (size_t c = 0; c < n; c++)
            if ((unsigned char)shown[c] < 0x20 || (unsigned char)shown[c] >= 0x7f)
                shown[c] = '?';
        return err_set(err, errlen, HARK_E_PROTOCOL,
                       "unknown message type \"%s\" (accepted: start, chunk, state_change, end, "
                       "finalize, keepalive)",
                       shown);
    }
    return err_set(
        err, errlen, HARK_E_PROTOCOL,
        "message has no \"type\" (accepted: start, chunk, state_change, end, finalize, keepalive)");
}

static int parse_field(struct nmsg_in *out, unsigned bit, const msgpack_object *v, char *err,
                       size_t errlen)
{
    int64_t iv;
    switch (bit) {
    case K_TYPE:
        return 0;
    case K_SESSION:
        if (v->type == MSGPACK_OBJECT_NIL)
            return 0;
        if (v->type != MSGPACK_OBJECT_STR)
            return err_set(err, errlen, HARK_E_PROTOCOL, "session_id: must be a string, got %s",
                           kind_name(v));
        if (copy_str(v, out->session_id, sizeof out->session_id))
            return err_set(err, errlen, HARK_E_PROTOCOL, "session_id: longer than %d bytes",
                           NMSG_ID_MAX - 1);
        out->has_session_id = 1;
        return 0;
    case K_RATE:
    case K_CHANNELS:
        if (v->type == MSGPACK_OBJECT_NIL)
            return 0;
        if (get_int(v, &iv))
            return err_set(err, errlen, HARK_E_PROTOCOL, "%s: must be an integer, got %s",
                           bit == K_RATE ? "sample_rate" : "channels", kind_name(v));
        if (bit == K_RATE) {
            out->sample_rate = iv;
            out->has_sample_rate = 1;
        } else {
            out->channels = iv;
            out->has_channels = 1;
        }
        return 0;
    case K_STATE:
        if (v->type == MSGPACK_OBJECT_NIL)
            return 0;
        if (v->type == MSGPACK_OBJECT_STR && mpk_key_is(v, "listening"))
            out->state = HARK_STATE_LISTENING;
        else if (v->type == MSGPACK_OBJECT_STR && mpk_key_is(v, "responding"))
            out->state = HARK_STATE_RESPONDING;
        else
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "state: must be \"listening\" or \"responding\"");
        out->has_state = 1;
        return 0;
    case K_SPEAKER:
        if (v->type == MSGPACK_OBJECT_NIL)
            return 0;
        if (v->type == MSGPACK_OBJECT_STR) {
            if (copy_str(v, out->speaker_id, sizeof out->speaker_id))
                return err_set(err, errlen, HARK_E_PROTOCOL, "speaker_id: longer than %d bytes",
                               NMSG_SPEAKER_MAX - 1);
        } else if (is_int(v) && get_int(v, &iv) == 0) {
            snprintf(out->speaker_id, sizeof out->speaker_id, "%lld", (long long)iv);
        } else {
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "speaker_id: must be a string or an integer, got %s", kind_name(v));
        }
        out->has_speaker_id = 1;
        return 0;
    case K_B64: {
        if (v->type != MSGPACK_OBJECT_STR)
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "audio_b64: must be a base64 string, got %s", kind_name(v));
        size_t n = v->via.str.size;
        out->audio_owned = hark_malloc(3 * ((n + 3) / 4) + 1);
        if (!out->audio_owned)
            return err_set(err, errlen, HARK_E_NOMEM, "out of memory decoding audio_b64");
        size_t bad = 0;
        long got = nmsg_base64_decode(v->via.str.ptr, n, out->audio_owned, &bad);
        if (got < 0)
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "audio_b64: not valid base64 at character %zu (standard or URL-safe "
                           "alphabet, optional '=' padding, no whitespace)",
                           bad);
        out->audio = out->audio_owned;
        out->audio_len = (size_t)got;
        return 0;
    }
    case K_AUDIO:
        /* raw bytes; old msgpack encoders send bytes as str, so take both */
        if (v->type == MSGPACK_OBJECT_BIN) {
            out->audio = (const uint8_t *)v->via.bin.ptr;
            out->audio_len = v->via.bin.size;
        } else if (v->type == MSGPACK_OBJECT_STR) {
            out->audio = (const uint8_t *)v->via.str.ptr;
            out->audio_len = v->via.str.size;
        } else {
            return err_set(err, errlen, HARK_E_PROTOCOL, "audio: must be binary, got %s",
                           kind_name(v));
        }
        return 0;
    case K_TS:
        if (v->type == MSGPACK_OBJECT_NIL)
            return 0;
        if (is_float(v) && isfinite(v->via.f64))
            out->timestamp = v->via.f64;
        else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            out->timestamp = (double)v->via.u64;
        else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            out->timestamp = (double)v->via.i64;
        else
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "timestamp: must be a number (seconds), got %s", kind_name(v));
        out->has_timestamp = 1;
        return 0;
    }
    return 0;
}

static int add_extra(struct nmsg_in *out, const msgpack_object *k, const msgpack_object *v,
                     char *err, size_t errlen)
{
    char name[32];
    if (k->via.str.size >= sizeof name || str_has(k, 0))
        return 0; /* not an option name: ignored like any unknown key */
    if (k->via.str.size)
        memcpy(name, k->via.str.ptr, k->via.str.size);
    name[k->via.str.size] = 0;
    if (v->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (out->n_extras == NMSG_MAX_EXTRAS)
        return err_set(err, errlen, HARK_E_PROTOCOL, "start has more than %d extra keys",
                       NMSG_MAX_EXTRAS);
    if (!out->extras) {
        out->extras = hark_malloc(NMSG_MAX_EXTRAS * sizeof *out->extras);
        if (!out->extras)
            return err_set(err, errlen, HARK_E_NOMEM, "out of memory");
    }
    struct nmsg_extra *e = &out->extras[out->n_extras];
    memcpy(e->name, name, sizeof name);
    int rc = extra_text(v, e->value, sizeof e->value, err, errlen, name);
    if (rc)
        return rc;
    out->n_extras++;
    return 0;
}

static int parse_map(const msgpack_object *map, struct nmsg_in *out, char *err, size_t errlen)
{
    int rc = parse_type(map, out, err, errlen);
    if (rc)
        return rc;
    unsigned seen = 0;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key, *v = &map->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR)
            return err_set(err, errlen, HARK_E_PROTOCOL, "map keys must be strings, key %u is %s",
                           i, kind_name(k));
        unsigned bit = 0;
        for (size_t j = 0; j < sizeof known_keys / sizeof known_keys[0]; j++)
            if (mpk_key_is(k, known_keys[j].name))
                bit = known_keys[j].bit;
        if (!bit) {
            if (out->type == NMSG_START && (rc = add_extra(out, k, v, err, errlen)))
                return rc;
            continue; /* other types: unknown keys are ignored, as the seed does */
        }
        if (seen & bit)
            return err_set(err, errlen, HARK_E_PROTOCOL, "key \"%.*s\" appears twice",
                           (int)k->via.str.size, k->via.str.ptr);
        seen |= bit;
        if (out->type != NMSG_CHUNK && (bit == K_B64 || bit == K_AUDIO))
            continue; /* audio only means something in a chunk */
        if ((rc = parse_field(out, bit, v, err, errlen)))
            return rc;
    }
    switch (out->type) {
    case NMSG_CHUNK:
        if (!(seen & (K_B64 | K_AUDIO)))
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "chunk has no audio: give \"audio_b64\" (base64 string) or \"audio\" "
                           "(binary)");
        if ((seen & K_B64) && (seen & K_AUDIO))
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "chunk has both \"audio_b64\" and \"audio\"; give one");
        break;
    case NMSG_STATE_CHANGE:
        if (!out->has_state)
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "state_change needs \"state\": \"listening\" or \"responding\"");
        break;
    case NMSG_START:
    case NMSG_END:
    case NMSG_FINALIZE:
    case NMSG_KEEPALIVE:
        break;
    }
    return 0;
}

int nmsg_parse(struct nmsg_in *out, const void *data, size_t len, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = nmsg_validate(data, len, err, errlen);
    if (rc)
        return rc;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, data, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
        rc = err_set(err, errlen, HARK_E_NOMEM, "out of memory unpacking msgpack");
        goto out;
    }
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        rc = err_set(err, errlen, HARK_E_PROTOCOL, "malformed msgpack (unpacker status %d)",
                     (int)ur);
        goto out;
    }
    if (up.data.type != MSGPACK_OBJECT_MAP) {
        rc = err_set(err, errlen, HARK_E_PROTOCOL, "message must be a msgpack map, got %s",
                     kind_name(&up.data));
        goto out;
    }
    rc = parse_map(&up.data, out, err, errlen);
out:
    msgpack_unpacked_destroy(&up);
    if (rc)
        nmsg_free(out);
    return rc;
}

void nmsg_free(struct nmsg_in *m)
{
    if (!m)
        return;
    hark_free(m->audio_owned);
    hark_free(m->extras);
    m->audio_owned = NULL;
    m->extras = NULL;
    m->audio = NULL;
    m->audio_len = 0;
    m->n_extras = 0;
}

/* ------------------------------------------------------------ rendering */

static void pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    mpk_pack_str(pk, k);
    mpk_pack_str(pk, v);
}

/* speaker_id: nil when the session has none, as the seed's None */
static void pack_speaker(msgpack_packer *pk, const char *speaker_id)
{
    mpk_pack_str(pk, "speaker_id");
    if (speaker_id && *speaker_id)
        mpk_pack_str(pk, speaker_id);
    else
        msgpack_pack_nil(pk);
}

static void pack_bool(msgpack_packer *pk, int v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void nmsg_render_result(struct buf *out, const struct nmsg_result *r)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    size_t n = 9 + 5 + (r->reason ? 2 : 0) + (r->words ? 1 : 0) + (r->owner_epoch ? 1 : 0);
    msgpack_pack_map(&pk, n);
    pack_kv_str(&pk, "session_id", r->session_id);
    pack_kv_str(&pk, "transcript", r->transcript);
    mpk_pack_str(&pk, "sequence");
    msgpack_pack_uint64(&pk, r->sequence);
    mpk_pack_str(&pk, "is_partial");
    pack_bool(&pk, !r->is_final);
    mpk_pack_str(&pk, "is_final");
    pack_bool(&pk, r->is_final);
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, r->timestamp);
    pack_speaker(&pk, r->speaker_id);
    mpk_pack_str(&pk, "has_voice_activity");
    pack_bool(&pk, r->has_voice_activity);
    pack_kv_str(&pk, "state", nmsg_state_name(r->state));
    /* hark's own keys */
    mpk_pack_str(&pk, "segment");
    msgpack_pack_int64(&pk, r->segment);
    mpk_pack_str(&pk, "start");
    msgpack_pack_double(&pk, r->start + r->time_offset);
    mpk_pack_str(&pk, "end");
    msgpack_pack_double(&pk, r->end + r->time_offset);
    mpk_pack_str(&pk, "speech_final");
    pack_bool(&pk, r->speech_final);
    mpk_pack_str(&pk, "confidence");
    msgpack_pack_double(&pk, r->confidence);
    if (r->reason) {
        pack_kv_str(&pk, "reason", r->reason);
        mpk_pack_str(&pk, "committed_ms");
        msgpack_pack_int64(&pk, r->committed_ms + (int64_t)(r->time_offset * 1000 + 0.5));
    }
    if (r->owner_epoch) {
        mpk_pack_str(&pk, "owner_epoch");
        msgpack_pack_uint64(&pk, r->owner_epoch);
    }
    if (r->words) {
        mpk_pack_str(&pk, "words");
        msgpack_pack_array(&pk, r->n_words);
        for (size_t i = 0; i < r->n_words; i++) {
            const struct hark_word *w = &r->words[i];
            msgpack_pack_map(&pk, 4);
            pack_kv_str(&pk, "word", w->word ? w->word : "");
            mpk_pack_str(&pk, "start");
            msgpack_pack_double(&pk, w->start + r->time_offset);
            mpk_pack_str(&pk, "end");
            msgpack_pack_double(&pk, w->end + r->time_offset);
            mpk_pack_str(&pk, "confidence");
            msgpack_pack_double(&pk, w->confidence);
        }
    }
}

void nmsg_render_interrupt(struct buf *out, const char *session_id, const char *speaker_id,
                           double timestamp, double audio_time)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 6);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "interrupt");
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    pack_kv_str(&pk, "state", nmsg_state_name(HARK_STATE_LISTENING));
    mpk_pack_str(&pk, "audio_time");
    msgpack_pack_double(&pk, audio_time);
}

void nmsg_render_error(struct buf *out, const char *session_id, const char *speaker_id, int err,
                       const char *message, double timestamp)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 6);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "error");
    pack_kv_str(&pk, "code", hark_err_code(err));
    pack_kv_str(&pk, "message", message ? message : hark_strerror(err));
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
}

void nmsg_render_closed(struct buf *out, const char *session_id, const char *speaker_id,
                        double timestamp, double audio_seconds, int64_t segments)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 6);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "closed");
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    mpk_pack_str(&pk, "audio_seconds");
    msgpack_pack_double(&pk, audio_seconds);
    mpk_pack_str(&pk, "segments");
    msgpack_pack_int64(&pk, segments);
}

void nmsg_render_gap(struct buf *out, const char *session_id, const char *speaker_id,
                     const char *message, double timestamp, double gap_start, double gap_duration,
                     double audio_offset)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 9);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "warning");
    pack_kv_str(&pk, "code", "audio_gap");
    pack_kv_str(&pk, "message", message);
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    mpk_pack_str(&pk, "gap_start");
    msgpack_pack_double(&pk, gap_start);
    mpk_pack_str(&pk, "gap_duration");
    msgpack_pack_double(&pk, gap_duration);
    mpk_pack_str(&pk, "audio_offset");
    msgpack_pack_double(&pk, audio_offset);
}

void nmsg_render_started(struct buf *out, const char *session_id, const char *speaker_id,
                         double timestamp, const char *worker)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 5);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "started");
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    pack_kv_str(&pk, "worker", worker ? worker : "");
}

void nmsg_render_alive(struct buf *out, const char *session_id, const char *speaker_id,
                       double timestamp, uint64_t received_bytes, uint64_t queued_bytes)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 6);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "alive");
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    mpk_pack_str(&pk, "received_bytes");
    msgpack_pack_uint64(&pk, received_bytes);
    mpk_pack_str(&pk, "queued_bytes");
    msgpack_pack_uint64(&pk, queued_bytes);
}

void nmsg_render_speech_started(struct buf *out, const char *session_id, const char *speaker_id,
                                double timestamp, double audio_time, int64_t segment)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 6);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "speech_started");
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    mpk_pack_str(&pk, "audio_time");
    msgpack_pack_double(&pk, audio_time);
    mpk_pack_str(&pk, "segment");
    msgpack_pack_int64(&pk, segment);
}

void nmsg_render_utterance_end(struct buf *out, const char *session_id, const char *speaker_id,
                               double timestamp, double last_word_end)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 5);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "utterance_end");
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    mpk_pack_str(&pk, "last_word_end");
    msgpack_pack_double(&pk, last_word_end);
}

void nmsg_render_failover(struct buf *out, const char *session_id, const char *speaker_id,
                          double timestamp, const struct hark_event *ev, double time_offset)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 10);
    pack_kv_str(&pk, "session_id", session_id);
    pack_kv_str(&pk, "type", "provider_failover");
    mpk_pack_str(&pk, "timestamp");
    msgpack_pack_double(&pk, timestamp);
    pack_speaker(&pk, speaker_id);
    pack_kv_str(&pk, "reason", ev->failover_reason ? ev->failover_reason : "");
    pack_kv_str(&pk, "code", hark_err_code(ev->code));
    pack_kv_str(&pk, "message", ev->message ? ev->message : "");
    pack_kv_str(&pk, "from", ev->from_engine ? ev->from_engine : "");
    pack_kv_str(&pk, "to", ev->to_engine ? ev->to_engine : "");
    mpk_pack_str(&pk, "start");
    msgpack_pack_double(&pk, ev->start + time_offset);
}

int nmsg_id_ok(const char *id)
{
    if (!*id || strlen(id) >= NMSG_ID_MAX)
        return 0;
    for (const char *p = id; *p; p++)
        if (*p == '.' || *p == '*' || *p == '>' || (unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return 1;
}
