/*
 * The JetStream session record codec; see jsrec.h.
 */
#include "front/nats/jsrec.h"

#include <msgpack.h>
#include <stdio.h>
#include <string.h>

size_t jsrec_format(const struct jsrec *r, char *out)
{
    int n = snprintf(out, JSREC_MAX, "hark-js1 seq=%llu seg=%lld ab=%lld as=%llu st=%d cl=%d",
                     (unsigned long long)r->seq, (long long)r->seg, (long long)r->acked_bytes,
                     (unsigned long long)r->acked_sseq, r->responding ? 1 : 0, r->closed ? 1 : 0);
    return n < 0 ? 0 : (size_t)n;
}

/* "name=digits" at *p (at most 19 digits, so no overflow); advances *p. */
static int field(const char **p, const char *end, const char *name, uint64_t *v)
{
    size_t nl = strlen(name);
    if ((size_t)(end - *p) < nl + 2 || memcmp(*p, name, nl) || (*p)[nl] != '=')
        return -1;
    const char *q = *p + nl + 1;
    uint64_t x = 0;
    int digits = 0;
    while (q < end && *q >= '0' && *q <= '9' && digits < 19) {
        x = x * 10 + (uint64_t)(*q - '0');
        q++;
        digits++;
    }
    if (!digits || (q < end && *q != ' ') || (digits > 1 && (*p)[nl + 1] == '0'))
        return -1; /* one spelling per value: no leading zeros */
    *v = x;
    *p = q < end ? q + 1 : q;
    return 0;
}

int jsrec_parse(struct jsrec *r, const void *data, size_t len)
{
    static const char magic[] = "hark-js1 ";
    const char *p = data, *end = p + len;
    if (!data || len < sizeof magic - 1 || memcmp(p, magic, sizeof magic - 1))
        return -1;
    p += sizeof magic - 1;
    uint64_t v[6];
    static const char *const names[6] = {"seq", "seg", "ab", "as", "st", "cl"};
    for (int i = 0; i < 6; i++) {
        if (field(&p, end, names[i], &v[i]))
            return -1;
        if (i < 5 && p[-1] != ' ')
            return -1;
    }
    if (p != end || end[-1] == ' ' || v[1] > INT64_MAX || v[2] > INT64_MAX || v[4] > 1 || v[5] > 1)
        return -1;
    *r = (struct jsrec){
        .seq = v[0],
        .seg = (int64_t)v[1],
        .acked_bytes = (int64_t)v[2],
        .acked_sseq = v[3],
        .responding = (int)v[4],
        .closed = (int)v[5],
    };
    return 0;
}

int jsrec_key(const char *id, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '_';
        if (o + (plain ? 1 : 3) >= n)
            return -1;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '=';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (!o || o >= n)
        return -1;
    out[o] = 0;
    return 0;
}

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           !memcmp(k->via.str.ptr, name, n);
}

int jsrec_peek_final(const void *data, size_t len, int64_t *committed_ms, int *responding)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&up, data, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        *responding = 0;
        for (uint32_t i = 0; i < up.data.via.map.size; i++) {
            const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
            if (key_is(&kv->key, "committed_ms") &&
                (kv->val.type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                 kv->val.type == MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
                *committed_ms = kv->val.via.i64;
                rc = 0;
            } else if (key_is(&kv->key, "state")) {
                *responding = key_is(&kv->val, "responding");
            }
        }
    }
    msgpack_unpacked_destroy(&up);
    return rc;
}
