/* libFuzzer target for the JetStream session record (jsrec.h), read from
 * the KV bucket hark_sessions_* where anyone with access to the server can
 * write. Arbitrary bytes are parsed; checked:
 *   - never a crash or a read past the input;
 *   - a record that parses renders back to exactly the input (one spelling
 *     per record: a lenient parser would let a foreign writer smuggle in
 *     values the worker never wrote), and the rendering parses again to the
 *     same values;
 *   - a session id of the input's bytes becomes a key of [-_=A-Za-z0-9] only,
 *     or is refused. */
#include <stdint.h>
#include <string.h>

#include "front/nats/jsrec.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jsrec r;
    if (!jsrec_parse(&r, data, size)) {
        char out[JSREC_MAX];
        size_t n = jsrec_format(&r, out);
        CHECK(n == size && !memcmp(out, data, size));
        struct jsrec again;
        CHECK(!jsrec_parse(&again, out, n));
        CHECK(!memcmp(&again, &r, sizeof r));
    }
    char id[64];
    size_t n = size < sizeof id - 1 ? size : sizeof id - 1;
    memcpy(id, data, n);
    id[n] = 0;
    char key[JSREC_KEY_MAX];
    if (!jsrec_key(id, key, sizeof key)) {
        CHECK(key[0]);
        for (const char *p = key; *p; p++)
            CHECK((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '=');
    }
    return 0;
}
