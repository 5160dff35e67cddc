#include "front/nats/mpk.h"

#include <math.h>
#include <string.h>

#include "base/buf.h"

int mpk_buf_sink(void *buf, const char *p, size_t n)
{
    struct buf *b = buf;
    buf_append(b, p, n);
    return b->oom ? -1 : 0;
}

void mpk_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str_with_body(pk, s, strlen(s));
}

int mpk_key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

int mpk_num(const msgpack_object *o, double *out)
{
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        *out = (double)o->via.u64;
        return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        *out = (double)o->via.i64;
        return 0;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64))
            return -1;
        *out = o->via.f64;
        return 0;
    default:
        return -1;
    }
}

int mpk_bool(const msgpack_object *o, int *out)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = o->via.boolean;
    return 0;
}
