#include "front/nats/gwtake.h"

#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "front/nats/mpk.h"
#include "base/err.h"
#include "base/mem.h"
#include "front/nats/nmsg.h"
#include "front/nats/nres.h"

/* An event's map holds at least its seq and its type (two keys of 3 and 4
 * letters with a value each: 11 bytes): the event array a reply may
 * allocate is bounded by the message's size, never by the count it
 * claims. A word is an array of 4 (5 bytes at least). */
#define EVENT_MIN_BYTES 11
#define WORD_MIN_BYTES 5

/* ------------------------------------------------------------ rendering */

void gwtake_render_request(struct buf *out, const struct gwtake_req *r)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 3);
    mpk_pack_str(&pk, "token");
    mpk_pack_str(&pk, r->token);
    mpk_pack_str(&pk, "last_seq");
    msgpack_pack_int64(&pk, r->last_seq);
    mpk_pack_str(&pk, "audio_bytes");
    msgpack_pack_uint64(&pk, r->audio_bytes);
}

void gwtake_render_refusal(struct buf *out, const char *why)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 2);
    mpk_pack_str(&pk, "ok");
    msgpack_pack_false(&pk);
    mpk_pack_str(&pk, "error");
    mpk_pack_str(&pk, why);
}

/* The fields of ev that are not zero (NULL strings: absent). */
static void pack_event(msgpack_packer *pk, const struct hark_event *ev)
{
    size_t n = 2;
#define HAS_S(f) (ev->f && ev->f[0])
    n += ev->segment != 0;
    n += ev->is_final != 0;
    n += ev->speech_final != 0;
    n += ev->reason != 0;
    n += ev->text != NULL;
    n += ev->start != 0;
    n += ev->end != 0;
    n += ev->confidence != 0;
    n += HAS_S(language);
    n += ev->words != NULL;
    n += ev->committed_ms != 0;
    n += ev->voice_activity != 0;
    n += ev->code != 0;
    n += ev->message != NULL;
    n += ev->audio_seconds != 0;
    n += ev->segments != 0;
    n += HAS_S(failover_reason);
    n += HAS_S(from_engine);
    n += HAS_S(to_engine);
    n += ev->duration != 0;
    msgpack_pack_map(pk, n);
    mpk_pack_str(pk, "seq");
    msgpack_pack_uint64(pk, ev->seq);
    mpk_pack_str(pk, "type");
    msgpack_pack_int(pk, (int)ev->type);
    if (ev->segment) {
        mpk_pack_str(pk, "segment");
        msgpack_pack_int64(pk, ev->segment);
    }
    if (ev->is_final) {
        mpk_pack_str(pk, "is_final");
        msgpack_pack_true(pk);
    }
    if (ev->speech_final) {
        mpk_pack_str(pk, "speech_final");
        msgpack_pack_true(pk);
    }
    if (ev->reason) {
        mpk_pack_str(pk, "reason");
        msgpack_pack_int(pk, (int)ev->reason);
    }
    if (ev->text) {
        mpk_pack_str(pk, "text");
        mpk_pack_str(pk, ev->text);
    }
    if (ev->start != 0) {
        mpk_pack_str(pk, "start");
        msgpack_pack_double(pk, ev->start);
    }
    if (ev->end != 0) {
        mpk_pack_str(pk, "end");
        msgpack_pack_double(pk, ev->end);
    }
    if (ev->confidence != 0) {
        mpk_pack_str(pk, "confidence");
        msgpack_pack_float(pk, ev->confidence);
    }
    if (HAS_S(language)) {
        mpk_pack_str(pk, "language");
        mpk_pack_str(pk, ev->language);
    }
    if (ev->words) {
        mpk_pack_str(pk, "words");
        msgpack_pack_array(pk, ev->n_words);
        for (size_t i = 0; i < ev->n_words; i++) {
            msgpack_pack_array(pk, 4);
            mpk_pack_str(pk, ev->words[i].word ? ev->words[i].word : "");
            msgpack_pack_double(pk, ev->words[i].start);
            msgpack_pack_double(pk, ev->words[i].end);
            msgpack_pack_float(pk, ev->words[i].confidence);
        }
    }
    if (ev->committed_ms) {
        mpk_pack_str(pk, "committed_ms");
        msgpack_pack_int64(pk, ev->committed_ms);
    }
    if (ev->voice_activity) {
        mpk_pack_str(pk, "voice_activity");
        msgpack_pack_true(pk);
    }
    if (ev->code) {
        mpk_pack_str(pk, "code");
        mpk_pack_str(pk, hark_err_code(ev->code));
    }
    if (ev->message) {
        mpk_pack_str(pk, "message");
        mpk_pack_str(pk, ev->message);
    }
    if (ev->audio_seconds != 0) {
        mpk_pack_str(pk, "audio_seconds");
        msgpack_pack_double(pk, ev->audio_seconds);
    }
    if (ev->segments) {
        mpk_pack_str(pk, "segments");
        msgpack_pack_int64(pk, ev->segments);
    }
    if (HAS_S(failover_reason)) {
        mpk_pack_str(pk, "failover_reason");
        mpk_pack_str(pk, ev->failover_reason);
    }
    if (HAS_S(from_engine)) {
        mpk_pack_str(pk, "from");
        mpk_pack_str(pk, ev->from_engine);
    }
    if (HAS_S(to_engine)) {
        mpk_pack_str(pk, "to");
        mpk_pack_str(pk, ev->to_engine);
    }
    if (ev->duration != 0) {
        mpk_pack_str(pk, "duration");
        msgpack_pack_double(pk, ev->duration);
    }
#undef HAS_S
}

void gwtake_render_reply(struct buf *out, const struct gwtake_state *st,
                         const struct hark_event *const *events, size_t n_events)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, mpk_buf_sink);
    msgpack_pack_map(&pk, 12);
    mpk_pack_str(&pk, "ok");
    msgpack_pack_true(&pk);
    mpk_pack_str(&pk, "next_seq");
    msgpack_pack_uint64(&pk, st->next_seq);
    mpk_pack_str(&pk, "audio_bytes");
    msgpack_pack_uint64(&pk, st->audio_bytes);
    mpk_pack_str(&pk, "sent_bytes");
    msgpack_pack_uint64(&pk, st->sent_bytes);
    mpk_pack_str(&pk, "last_msg");
    msgpack_pack_uint64(&pk, st->last_msg);
    mpk_pack_str(&pk, "results_end");
    msgpack_pack_double(&pk, st->results_end);
    mpk_pack_str(&pk, "worker_next");
    msgpack_pack_uint64(&pk, st->worker_next);
    mpk_pack_str(&pk, "worker_epoch");
    msgpack_pack_uint64(&pk, st->worker_epoch);
    mpk_pack_str(&pk, "t0");
    msgpack_pack_double(&pk, st->t0);
    mpk_pack_str(&pk, "finishing");
    if (st->finishing)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    size_t n_opt = 0;
    while (st->options && st->options[2 * n_opt])
        n_opt++;
    mpk_pack_str(&pk, "options");
    msgpack_pack_map(&pk, n_opt);
    for (size_t i = 0; i < n_opt; i++) {
        mpk_pack_str(&pk, st->options[2 * i]);
        mpk_pack_str(&pk, st->options[2 * i + 1] ? st->options[2 * i + 1] : "");
    }
    mpk_pack_str(&pk, "events");
    msgpack_pack_array(&pk, n_events);
    for (size_t i = 0; i < n_events; i++)
        pack_event(&pk, events[i]);
}

/* ------------------------------------------------------------ parsing */

/* A count or seq: a non-negative integer (below 2^53, exact in a double
 * and in JSON). */
static int u64v(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > (1ull << 53))
        return -1;
    *out = o->via.u64;
    return 0;
}

static int i64v(const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (1ull << 53)) {
        *out = (int64_t)o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= -(1ll << 53)) {
        *out = o->via.i64;
        return 0;
    }
    return -1;
}

static int small_str(const msgpack_object *o, char *dst, size_t cap)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap ||
        memchr(o->via.str.ptr, 0, o->via.str.size))
        return -1;
    if (o->via.str.size)
        memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return 0;
}

/* Strings of the message, NUL-terminated, in one block that never moves:
 * each fits in the bytes of its own header and body. */
struct arena {
    char *p;
    size_t len, cap;
};

static const char *arena_put(struct arena *a, const msgpack_object *o, size_t max)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size > max ||
        a->len + o->via.str.size + 1 > a->cap)
        return NULL;
    char *at = a->p + a->len;
    if (o->via.str.size)
        memcpy(at, o->via.str.ptr, o->via.str.size);
    a->len += o->via.str.size;
    a->p[a->len++] = 0;
    return at;
}

static int unpack(const void *data, size_t len, msgpack_unpacked *up, char *err, size_t n,
                  const char *what)
{
    int rc = mpk_validate(data, len, NMSG_MAX_DEPTH, GWTAKE_OBJECTS_MAX, err, n);
    if (rc)
        return rc;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(up, data, len, &off);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return err_set(err, n, HARK_E_NOMEM, "out of memory unpacking msgpack");
    if (ur != MSGPACK_UNPACK_SUCCESS)
        return err_set(err, n, HARK_E_PROTOCOL, "malformed msgpack (unpacker status %d)", (int)ur);
    if (up->data.type != MSGPACK_OBJECT_MAP)
        return err_set(err, n, HARK_E_PROTOCOL, "%s must be a msgpack map", what);
    return 0;
}

static int bad(char *err, size_t n, const char *what, const char *key)
{
    return err_set(err, n, HARK_E_PROTOCOL, "%s: key '%s' has the wrong type or size", what, key);
}

int gwtake_parse_request(struct gwtake_req *out, const void *data, size_t len, char *err, size_t n)
{
    memset(out, 0, sizeof *out);
    out->last_seq = -1;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = unpack(data, len, &up, err, n, "take request");
    int have_token = 0;
    for (uint32_t i = 0; !rc && i < up.data.via.map.size; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key, *v = &up.data.via.map.ptr[i].val;
        if (mpk_key_is(k, "token")) {
            if (small_str(v, out->token, sizeof out->token))
                rc = bad(err, n, "take request", "token");
            have_token = 1;
        } else if (mpk_key_is(k, "last_seq")) {
            if (i64v(v, &out->last_seq) || out->last_seq < -1)
                rc = bad(err, n, "take request", "last_seq");
        } else if (mpk_key_is(k, "audio_bytes")) {
            if (u64v(v, &out->audio_bytes))
                rc = bad(err, n, "take request", "audio_bytes");
        }
    }
    if (!rc && !have_token)
        rc = err_set(err, n, HARK_E_PROTOCOL, "take request: no token");
    msgpack_unpacked_destroy(&up);
    return rc;
}

struct pctx {
    struct gwtake_reply *r;
    struct arena a;
    size_t words_cap, n_words;
    char *err;
    size_t n;
};

static int parse_words(struct pctx *p, const msgpack_object *v, struct hark_event *ev)
{
    if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > NRES_WORDS_MAX ||
        p->n_words + v->via.array.size > p->words_cap)
        return bad(p->err, p->n, "take reply", "words");
    struct hark_word *w = p->r->words + p->n_words;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *e = &v->via.array.ptr[i];
        double s, en;
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 4 ||
            !(w[i].word = arena_put(&p->a, &e->via.array.ptr[0], NRES_TEXT_MAX)) ||
            mpk_num(&e->via.array.ptr[1], &s) || mpk_num(&e->via.array.ptr[2], &en) ||
            mpk_float(&e->via.array.ptr[3], &w[i].confidence))
            return bad(p->err, p->n, "take reply", "words");
        w[i].start = s;
        w[i].end = en;
    }
    ev->words = w;
    ev->n_words = v->via.array.size;
    p->n_words += v->via.array.size;
    return 0;
}

static int parse_event(struct pctx *p, const msgpack_object *m, struct hark_event *ev)
{
    const char *what = "take reply event";
    if (m->type != MSGPACK_OBJECT_MAP)
        return err_set(p->err, p->n, HARK_E_PROTOCOL, "%s must be a map", what);
    int have_seq = 0, have_type = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        int64_t x;
        const char *key = NULL;
        if (mpk_key_is(k, "seq")) {
            have_seq = 1;
            if (u64v(v, &ev->seq))
                key = "seq";
        } else if (mpk_key_is(k, "type")) {
            have_type = 1;
            if (i64v(v, &x) || x < HARK_EVENT_TRANSCRIPT || x > HARK_EVENT_AUDIO_GAP)
                key = "type";
            else
                ev->type = (enum hark_event_type)x;
        } else if (mpk_key_is(k, "segment")) {
            if (i64v(v, &ev->segment))
                key = "segment";
        } else if (mpk_key_is(k, "is_final")) {
            if (mpk_bool(v, &ev->is_final))
                key = "is_final";
        } else if (mpk_key_is(k, "speech_final")) {
            if (mpk_bool(v, &ev->speech_final))
                key = "speech_final";
        } else if (mpk_key_is(k, "reason")) {
            if (i64v(v, &x) || x < HARK_REASON_NONE || x > HARK_REASON_CLOSE)
                key = "reason";
            else
                ev->reason = (enum hark_reason)x;
        } else if (mpk_key_is(k, "text")) {
            if (!(ev->text = arena_put(&p->a, v, NRES_TEXT_MAX)))
                key = "text";
        } else if (mpk_key_is(k, "start")) {
            if (mpk_num(v, &ev->start))
                key = "start";
        } else if (mpk_key_is(k, "end")) {
            if (mpk_num(v, &ev->end))
                key = "end";
        } else if (mpk_key_is(k, "confidence")) {
            if (mpk_float(v, &ev->confidence))
                key = "confidence";
        } else if (mpk_key_is(k, "language")) {
            if (!(ev->language = arena_put(&p->a, v, 64)))
                key = "language";
        } else if (mpk_key_is(k, "words")) {
            if (ev->words)
                key = "words";
            else if (parse_words(p, v, ev))
                return HARK_E_PROTOCOL;
        } else if (mpk_key_is(k, "committed_ms")) {
            if (i64v(v, &ev->committed_ms))
                key = "committed_ms";
        } else if (mpk_key_is(k, "voice_activity")) {
            if (mpk_bool(v, &ev->voice_activity))
                key = "voice_activity";
        } else if (mpk_key_is(k, "code")) {
            char code[32];
            if (small_str(v, code, sizeof code))
                key = "code";
            else if (!(ev->code = nres_err_from_code(code)))
                ev->code = HARK_E_INTERNAL; /* a code this version does not know */
        } else if (mpk_key_is(k, "message")) {
            if (!(ev->message = arena_put(&p->a, v, NRES_TEXT_MAX)))
                key = "message";
        } else if (mpk_key_is(k, "audio_seconds")) {
            if (mpk_num(v, &ev->audio_seconds))
                key = "audio_seconds";
        } else if (mpk_key_is(k, "segments")) {
            if (i64v(v, &ev->segments))
                key = "segments";
        } else if (mpk_key_is(k, "failover_reason")) {
            if (!(ev->failover_reason = arena_put(&p->a, v, 32)))
                key = "failover_reason";
        } else if (mpk_key_is(k, "from")) {
            if (!(ev->from_engine = arena_put(&p->a, v, 32)))
                key = "from";
        } else if (mpk_key_is(k, "to")) {
            if (!(ev->to_engine = arena_put(&p->a, v, 32)))
                key = "to";
        } else if (mpk_key_is(k, "duration")) {
            if (mpk_num(v, &ev->duration))
                key = "duration";
        } /* a key this version does not know: ignored */
        if (key)
            return bad(p->err, p->n, what, key);
    }
    if (!have_seq || !have_type)
        return err_set(p->err, p->n, HARK_E_PROTOCOL, "%s needs seq and type", what);
    /* the renderers expect these strings */
    if (ev->type == HARK_EVENT_TRANSCRIPT && !ev->text)
        ev->text = "";
    if (!ev->language)
        ev->language = "";
    return 0;
}

static int parse_reply_map(struct pctx *p, const msgpack_object *m, size_t len)
{
    struct gwtake_reply *r = p->r;
    const char *what = "take reply";
    int have_ok = 0;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key, *v = &m->via.map.ptr[i].val;
        const char *key = NULL;
        if (mpk_key_is(k, "ok")) {
            have_ok = 1;
            if (mpk_bool(v, &r->ok))
                key = "ok";
        } else if (mpk_key_is(k, "error")) {
            if (v->type != MSGPACK_OBJECT_STR)
                key = "error";
            else
                snprintf(r->error, sizeof r->error, "%.*s",
                         (int)(v->via.str.size < sizeof r->error ? v->via.str.size
                                                                 : sizeof r->error - 1),
                         v->via.str.ptr);
        } else if (mpk_key_is(k, "next_seq")) {
            if (u64v(v, &r->st.next_seq))
                key = "next_seq";
        } else if (mpk_key_is(k, "audio_bytes")) {
            if (u64v(v, &r->st.audio_bytes))
                key = "audio_bytes";
        } else if (mpk_key_is(k, "sent_bytes")) {
            if (u64v(v, &r->st.sent_bytes))
                key = "sent_bytes";
        } else if (mpk_key_is(k, "last_msg")) {
            if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                key = "last_msg";
            else
                r->st.last_msg = v->via.u64;
        } else if (mpk_key_is(k, "t0")) {
            if (mpk_num(v, &r->st.t0))
                key = "t0";
        } else if (mpk_key_is(k, "results_end")) {
            if (mpk_num(v, &r->st.results_end))
                key = "results_end";
        } else if (mpk_key_is(k, "worker_next")) {
            if (u64v(v, &r->st.worker_next))
                key = "worker_next";
        } else if (mpk_key_is(k, "worker_epoch")) {
            if (u64v(v, &r->st.worker_epoch))
                key = "worker_epoch";
        } else if (mpk_key_is(k, "finishing")) {
            if (mpk_bool(v, &r->st.finishing))
                key = "finishing";
        } else if (mpk_key_is(k, "options")) {
            if (v->type != MSGPACK_OBJECT_MAP || v->via.map.size > GWTAKE_OPTIONS_MAX || r->opt)
                return bad(p->err, p->n, what, "options");
            r->opt = hark_calloc(2 * v->via.map.size + 1, sizeof *r->opt);
            if (!r->opt)
                return err_set(p->err, p->n, HARK_E_NOMEM, "out of memory");
            for (uint32_t j = 0; j < v->via.map.size; j++)
                if (!(r->opt[2 * j] = arena_put(&p->a, &v->via.map.ptr[j].key, 64)) ||
                    !(r->opt[2 * j + 1] = arena_put(&p->a, &v->via.map.ptr[j].val, NRES_TEXT_MAX)))
                    return bad(p->err, p->n, what, "options");
        } else if (mpk_key_is(k, "events")) {
            if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size > GWTAKE_EVENTS_MAX ||
                v->via.array.size > len / EVENT_MIN_BYTES || r->events)
                return bad(p->err, p->n, what, "events");
            uint32_t ne = v->via.array.size;
            r->events = hark_calloc(ne ? ne : 1, sizeof *r->events);
            if (!r->events)
                return err_set(p->err, p->n, HARK_E_NOMEM, "out of memory");
            for (uint32_t j = 0; j < ne; j++) {
                int rc = parse_event(p, &v->via.array.ptr[j], &r->events[j]);
                if (rc)
                    return rc;
                if (j && r->events[j].seq <= r->events[j - 1].seq)
                    return err_set(p->err, p->n, HARK_E_PROTOCOL,
                                   "take reply: events out of order (seq %llu after %llu)",
                                   (unsigned long long)r->events[j].seq,
                                   (unsigned long long)r->events[j - 1].seq);
                r->n_events++;
            }
        }
        if (key)
            return bad(p->err, p->n, what, key);
    }
    if (!have_ok)
        return err_set(p->err, p->n, HARK_E_PROTOCOL, "take reply: no ok");
    if (!r->ok) {
        r->n_events = 0;
        return 0;
    }
    if (r->n_events && r->events[r->n_events - 1].seq >= r->st.next_seq)
        return err_set(p->err, p->n, HARK_E_PROTOCOL,
                       "take reply: an event's seq is not below next_seq");
    if (r->st.sent_bytes > r->st.audio_bytes)
        return err_set(p->err, p->n, HARK_E_PROTOCOL,
                       "take reply: more audio sent to the worker than held");
    return 0;
}

int gwtake_parse_reply(struct gwtake_reply *out, const void *data, size_t len, char *err, size_t n)
{
    memset(out, 0, sizeof *out);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    int rc = unpack(data, len, &up, err, n, "take reply");
    if (!rc) {
        struct pctx p = {.r = out, .err = err, .n = n, .words_cap = len / WORD_MIN_BYTES};
        p.a.cap = len + 2;
        p.a.p = out->arena = hark_malloc(p.a.cap);
        out->words = hark_calloc(p.words_cap ? p.words_cap : 1, sizeof *out->words);
        if (!out->arena || !out->words)
            rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        else
            rc = parse_reply_map(&p, &up.data, len);
    }
    msgpack_unpacked_destroy(&up);
    if (!rc) {
        static const char *const none[] = {NULL};
        out->st.options = out->opt ? out->opt : none;
    }
    return rc;
}

void gwtake_reply_free(struct gwtake_reply *r)
{
    if (!r)
        return;
    hark_free(r->events);
    hark_free(r->opt);
    hark_free(r->words);
    hark_free(r->arena);
    memset(r, 0, sizeof *r);
}
