#include "front/nats/nres.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "front/nats/mpk.h"
#include "base/err.h"
#include "base/mem.h"
#include "front/nats/nmsg.h"

int nres_err_from_code(const char *code)
{
#define XX(sym, num, wire, text)                                                                   \
    if (!strcmp(code, wire))                                                                       \
        return num;
    HARK_ERR_MAP(XX)
#undef XX
    return 0;
}

/* ------------------------------------------------------------ parser */

static int int64v(const msgpack_object *o, int64_t *out)
{
    double d;
    if (mpk_num(o, &d) || d < -9e15 || d > 9e15)
        return -1;
    *out = (int64_t)d;
    return 0;
}

static int small_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
        return -1;
    if (o->via.str.size)
        memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return 0;
}

/* Appends a string to the arena; returns its offset, or -1. */
struct arena {
    char *p;
    size_t len, cap;
};

static long arena_put(struct arena *a, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > NRES_TEXT_MAX ||
        a->len + o->via.str.size + 1 > a->cap)
        return -1;
    long at = (long)a->len;
    if (o->via.str.size)
        memcpy(a->p + a->len, o->via.str.ptr, o->via.str.size);
    a->len += o->via.str.size;
    a->p[a->len++] = 0;
    return at;
}

static const struct {
    const char *name;
    enum nres_kind kind;
} kinds[] = {
    {"interrupt", NRES_INTERRUPT},
    {"error", NRES_ERROR},
    {"warning", NRES_WARNING},
    {"started", NRES_STARTED},
    {"closed", NRES_CLOSED},
    {"alive", NRES_ALIVE},
    {"speech_started", NRES_SPEECH_STARTED},
    {"utterance_end", NRES_UTTERANCE_END},
    {"provider_failover", NRES_PROVIDER_FAILOVER},
};

/* hark_reason_name's words (docs/nats.md), here so that the parser links
 * without the session core (the fuzz target) */
static enum hark_reason reason_of(const char *s)
{
    static const char *const names[] = {"", "endpoint", "finalize", "max_length", "close"};
    for (int r = HARK_REASON_ENDPOINT; r <= HARK_REASON_CLOSE; r++)
        if (!strcmp(s, names[r]))
            return (enum hark_reason)r;
    return HARK_REASON_NONE;
}

static int bad(char *err, size_t n, const char *key)
{
    return err_set(err, n, HARK_E_PROTOCOL, "result message: key '%s' has the wrong type or size",
                   key);
}

/* The word list: offsets into the arena until the arena stops moving. */
static int parse_words(const msgpack_object *v, struct nres *r, struct arena *a, long *word_at,
                       char *err, size_t n)
{
    if (v->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > NRES_WORDS_MAX)
        return bad(err, n, "words");
    r->words = hark_calloc(v->via.array.size ? v->via.array.size : 1, sizeof *r->words);
    if (!r->words)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    r->has_words = 1;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *w = &v->via.array.ptr[i];
        if (w->type != MSGPACK_OBJECT_MAP)
            return bad(err, n, "words");
        struct hark_word *hw = &r->words[i];
        long at = -1;
        for (uint32_t k = 0; k < w->via.map.size; k++) {
            const msgpack_object *kk = &w->via.map.ptr[k].key, *vv = &w->via.map.ptr[k].val;
            double d;
            if (mpk_key_is(kk, "word")) {
                if ((at = arena_put(a, vv)) < 0)
                    return bad(err, n, "words.word");
            } else if (mpk_key_is(kk, "confidence")) {
                if (mpk_float(vv, &hw->confidence))
                    return bad(err, n, "words.start/end/confidence");
            } else if (mpk_key_is(kk, "start") || mpk_key_is(kk, "end")) {
                if (mpk_num(vv, &d))
                    return bad(err, n, "words.start/end/confidence");
                if (mpk_key_is(kk, "start"))
                    hw->start = d;
                else
                    hw->end = d;
            }
        }
        if (at < 0)
            return err_set(err, n, HARK_E_PROTOCOL, "result message: a word has no 'word'");
        word_at[i] = at;
        r->n_words++;
    }
    return 0;
}

static int parse_map(const msgpack_object *m, struct nres *r, struct arena *a, long **word_at,
                     char *err, size_t n)
{
    long text_at = -1;
    r->kind = NRES_RESULT;
    r->committed_ms = -1;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        if (mpk_key_is(k, "type")) {
            char t[24];
            if (small_str(v, t, sizeof t)) {
                r->kind = NRES_OTHER;
                continue;
            }
            r->kind = NRES_OTHER;
            for (size_t j = 0; j < sizeof kinds / sizeof kinds[0]; j++)
                if (!strcmp(t, kinds[j].name))
                    r->kind = kinds[j].kind;
        }
    }
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        int rc = 0;
        if (k->type != MSGPACK_OBJECT_STR)
            continue;
        if (mpk_key_is(k, "session_id")) {
            if (small_str(v, r->session_id, sizeof r->session_id))
                return bad(err, n, "session_id");
        } else if (mpk_key_is(k, "transcript") || mpk_key_is(k, "message")) {
            if ((text_at = arena_put(a, v)) < 0)
                return bad(err, n, "transcript/message");
        } else if (mpk_key_is(k, "is_final")) {
            rc = mpk_bool(v, &r->is_final);
        } else if (mpk_key_is(k, "speech_final")) {
            rc = mpk_bool(v, &r->speech_final);
        } else if (mpk_key_is(k, "has_voice_activity")) {
            rc = mpk_bool(v, &r->has_voice_activity);
        } else if (mpk_key_is(k, "sequence")) {
            rc = int64v(v, &r->sequence);
        } else if (mpk_key_is(k, "segment")) {
            rc = int64v(v, &r->segment);
        } else if (mpk_key_is(k, "segments")) {
            rc = int64v(v, &r->segments);
        } else if (mpk_key_is(k, "received_bytes")) {
            rc = int64v(v, &r->received_bytes);
        } else if (mpk_key_is(k, "queued_bytes")) {
            rc = int64v(v, &r->queued_bytes);
        } else if (mpk_key_is(k, "committed_ms")) {
            rc = int64v(v, &r->committed_ms);
        } else if (mpk_key_is(k, "owner_epoch")) {
            rc = int64v(v, &r->owner_epoch) || r->owner_epoch < 0 ? -1 : 0;
        } else if (mpk_key_is(k, "start")) {
            rc = mpk_num(v, &r->start);
        } else if (mpk_key_is(k, "end")) {
            rc = mpk_num(v, &r->end);
        } else if (mpk_key_is(k, "last_word_end")) {
            rc = mpk_num(v, &r->last_word_end);
        } else if (mpk_key_is(k, "audio_time")) {
            rc = mpk_num(v, &r->audio_time);
        } else if (mpk_key_is(k, "audio_seconds")) {
            rc = mpk_num(v, &r->audio_seconds);
        } else if (mpk_key_is(k, "confidence")) {
            rc = mpk_float(v, &r->confidence);
        } else if (mpk_key_is(k, "reason")) {
            char s[16];
            if (v->type == MSGPACK_OBJECT_NIL)
                continue;
            if ((rc = small_str(v, s, sizeof s)) == 0) {
                r->reason = reason_of(s);
                memcpy(r->reason_name, s, sizeof r->reason_name);
            }
        } else if (mpk_key_is(k, "code")) {
            rc = small_str(v, r->code_name, sizeof r->code_name);
        } else if (mpk_key_is(k, "from")) {
            rc = small_str(v, r->from, sizeof r->from);
        } else if (mpk_key_is(k, "to")) {
            rc = small_str(v, r->to, sizeof r->to);
        } else if (mpk_key_is(k, "gap_duration")) {
            rc = mpk_num(v, &r->gap_duration);
        } else if (mpk_key_is(k, "audio_offset")) {
            rc = mpk_num(v, &r->audio_offset);
        } else if (mpk_key_is(k, "words")) {
            if (*word_at)
                return bad(err, n, "words (twice)");
            *word_at = hark_calloc(
                v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size ? v->via.array.size : 1,
                sizeof **word_at);
            if (!*word_at)
                return err_set(err, n, HARK_E_NOMEM, "out of memory");
            if ((rc = parse_words(v, r, a, *word_at, err, n)))
                return rc;
            continue;
        }
        if (rc) {
            char key[40];
            if (small_str(k, key, sizeof key))
                snprintf(key, sizeof key, "?");
            return bad(err, n, key);
        }
    }
    if (r->kind == NRES_ERROR || r->kind == NRES_WARNING || r->kind == NRES_PROVIDER_FAILOVER) {
        r->code = nres_err_from_code(r->code_name);
        if (r->kind != NRES_WARNING && !r->code)
            r->code = HARK_E_INTERNAL;
    }
    /* every string is in place: the arena moves no more */
    r->text = text_at >= 0 ? a->p + text_at : a->p + a->len - 1;
    for (size_t i = 0; i < r->n_words; i++)
        r->words[i].word = a->p + (*word_at)[i];
    return 0;
}

int nres_parse(struct nres *out, const void *data, size_t len, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    int rc = nmsg_validate(data, len, err, errlen);
    if (rc)
        return rc;
    /* Every string of the message fits in its own length (+ NUL each, and
     * one empty string at the end). */
    struct arena a = {.cap = len * 2 + 2};
    a.p = hark_malloc(a.cap);
    if (!a.p)
        return err_set(err, errlen, HARK_E_NOMEM, "out of memory");
    a.p[a.len++] = 0;
    out->arena = a.p;
    long *word_at = NULL;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, data, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        rc = err_set(err, errlen, HARK_E_NOMEM, "out of memory unpacking msgpack");
    else if (ur != MSGPACK_UNPACK_SUCCESS)
        rc = err_set(err, errlen, HARK_E_PROTOCOL, "malformed msgpack (unpacker status %d)",
                     (int)ur);
    else if (up.data.type != MSGPACK_OBJECT_MAP)
        rc = err_set(err, errlen, HARK_E_PROTOCOL, "result message must be a msgpack map");
    else
        rc = parse_map(&up.data, out, &a, &word_at, err, errlen);
    msgpack_unpacked_destroy(&up);
    hark_free(word_at);
    if (rc)
        nres_free(out);
    return rc;
}

void nres_free(struct nres *r)
{
    if (!r)
        return;
    hark_free(r->words);
    hark_free(r->arena);
    r->words = NULL;
    r->arena = NULL;
    r->text = NULL;
    r->n_words = 0;
}

/* ------------------------------------------------------------ rendering */

/* Text from hark_options_get as the msgpack type a worker's start parser
 * takes back into hark_options_set: integers, booleans, else strings. */
static void pack_text(msgpack_packer *pk, const char *v)
{
    char *end;
    if (!strcmp(v, "true")) {
        msgpack_pack_true(pk);
        return;
    }
    if (!strcmp(v, "false")) {
        msgpack_pack_false(pk);
        return;
    }
    long long i = *v ? strtoll(v, &end, 10) : 0;
    if (*v && !*end && (v[0] != '0' || !v[1])) {
        msgpack_pack_int64(pk, i);
        return;
    }
    mpk_pack_str(pk, v);
}

void nres_render_start(struct buf *out, const char *session_id, int sample_rate, int channels,
                       enum hark_state state, const char *speaker_id, const char *const *kv)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    size_t n = 5 + (speaker_id && *speaker_id);
    for (size_t i = 0; kv && kv[i]; i += 2)
        n++;
    msgpack_pack_map(&pk, n);
    mpk_pack_str(&pk, "type");
    mpk_pack_str(&pk, "start");
    mpk_pack_str(&pk, "session_id");
    mpk_pack_str(&pk, session_id);
    mpk_pack_str(&pk, "sample_rate");
    msgpack_pack_int(&pk, sample_rate);
    mpk_pack_str(&pk, "channels");
    msgpack_pack_int(&pk, channels);
    mpk_pack_str(&pk, "state");
    mpk_pack_str(&pk, nmsg_state_name(state));
    if (speaker_id && *speaker_id) {
        mpk_pack_str(&pk, "speaker_id");
        mpk_pack_str(&pk, speaker_id);
    }
    for (size_t i = 0; kv && kv[i]; i += 2) {
        mpk_pack_str(&pk, kv[i]);
        pack_text(&pk, kv[i + 1]);
    }
}

void nres_render_chunk(struct buf *out, const void *audio, size_t len, double timestamp)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, timestamp >= 0 ? 3 : 2);
    mpk_pack_str(&pk, "type");
    mpk_pack_str(&pk, "chunk");
    mpk_pack_str(&pk, "audio");
    msgpack_pack_bin_with_body(&pk, audio, len);
    if (timestamp >= 0) {
        mpk_pack_str(&pk, "timestamp");
        msgpack_pack_double(&pk, timestamp);
    }
}

void nres_render_state(struct buf *out, enum hark_state state)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 2);
    mpk_pack_str(&pk, "type");
    mpk_pack_str(&pk, "state_change");
    mpk_pack_str(&pk, "state");
    mpk_pack_str(&pk, nmsg_state_name(state));
}

void nres_render_simple(struct buf *out, const char *type)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 1);
    mpk_pack_str(&pk, "type");
    mpk_pack_str(&pk, type);
}
