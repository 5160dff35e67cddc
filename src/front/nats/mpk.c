#include "front/nats/mpk.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"

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

int mpk_float(const msgpack_object *o, float *out)
{
    double d;
    if (mpk_num(o, &d) || d > FLT_MAX || d < -FLT_MAX)
        return -1;
    *out = (float)d;
    return 0;
}

int mpk_bool(const msgpack_object *o, int *out)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = o->via.boolean;
    return 0;
}

/* ------------------------------------------------------------ validator */

static uint64_t read_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int mpk_validate(const void *data, size_t len, int max_depth, size_t max_objects, char *err,
                 size_t errlen)
{
    const uint8_t *p = data;
    uint64_t left[MPK_DEPTH_LIMIT + 1];
    if (max_depth > MPK_DEPTH_LIMIT)
        max_depth = MPK_DEPTH_LIMIT;
    int depth = 0;
    size_t off = 0, objects = 0;
    left[0] = 1;
    while (depth >= 0) {
        if (left[depth] == 0) {
            depth--;
            continue;
        }
        left[depth]--;
        if (off >= len)
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "malformed msgpack: message ends inside an object at byte %zu", off);
        if (++objects > max_objects)
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "msgpack message has more than %zu objects", max_objects);
        size_t at = off;
        uint8_t b = p[off++];
        uint64_t skip = 0, items = 0;
        int lenbytes = 0, container = 0, extra = 0;
        if (b <= 0x7f || b >= 0xe0) {
            /* fixint */
        } else if (b <= 0x8f) {
            items = 2u * (b & 0x0f);
            container = 1;
        } else if (b <= 0x9f) {
            items = b & 0x0f;
            container = 1;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc0: /* nil */
            case 0xc2: /* false */
            case 0xc3: /* true */
                break;
            case 0xc4: /* bin 8/16/32 */
            case 0xd9: /* str 8/16/32 */
                lenbytes = 1;
                break;
            case 0xc5:
            case 0xda:
                lenbytes = 2;
                break;
            case 0xc6:
            case 0xdb:
                lenbytes = 4;
                break;
            case 0xc7: /* ext 8/16/32: length, type byte, data */
                lenbytes = 1;
                extra = 1;
                break;
            case 0xc8:
                lenbytes = 2;
                extra = 1;
                break;
            case 0xc9:
                lenbytes = 4;
                extra = 1;
                break;
            case 0xcc: /* uint8 */
            case 0xd0: /* int8 */
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xca: /* float32 */
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcb: /* float64 */
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4: /* fixext 1/2/4/8/16: type byte + data */
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc: /* array 16/32 */
                lenbytes = 2;
                container = 1;
                break;
            case 0xdd:
                lenbytes = 4;
                container = 1;
                break;
            case 0xde: /* map 16/32 */
                lenbytes = 2;
                container = 2;
                break;
            case 0xdf:
                lenbytes = 4;
                container = 2;
                break;
            default: /* 0xc1 is never used */
                return err_set(err, errlen, HARK_E_PROTOCOL,
                               "malformed msgpack: invalid type byte 0x%02x at byte %zu", b, at);
            }
        }
        if (lenbytes) {
            if ((size_t)lenbytes > len - off)
                return err_set(err, errlen, HARK_E_PROTOCOL,
                               "malformed msgpack: message ends inside a length at byte %zu", at);
            uint64_t v = read_be(p + off, lenbytes);
            off += (size_t)lenbytes;
            if (container == 1)
                items = v;
            else if (container == 2)
                items = 2 * v;
            else
                skip = v + (uint64_t)extra;
        }
        if (skip > len - off)
            return err_set(err, errlen, HARK_E_PROTOCOL,
                           "malformed msgpack: object at byte %zu claims %llu bytes, %zu remain",
                           at, (unsigned long long)skip, len - off);
        off += (size_t)skip;
        if (container) {
            /* every entry takes at least one byte: a count beyond the bytes
             * left is a lie that would make msgpack-c allocate for it */
            if (items > len - off)
                return err_set(err, errlen, HARK_E_PROTOCOL,
                               "malformed msgpack: container at byte %zu claims %llu entries, "
                               "%zu bytes remain",
                               at, (unsigned long long)items, len - off);
            if (items) {
                if (depth == max_depth)
                    return err_set(err, errlen, HARK_E_PROTOCOL,
                                   "msgpack nesting deeper than %d at byte %zu", max_depth, at);
                left[++depth] = items;
            }
        }
    }
    if (off != len)
        return err_set(err, errlen, HARK_E_PROTOCOL,
                       "malformed msgpack: %zu bytes after the message's one object", len - off);
    return 0;
}
