/* libFuzzer target for session options set by name from untrusted text: the
 * native protocol's config message and the Deepgram query parameters both
 * end in hark_options_set. Input: name, a NUL byte, value (the value ends at
 * the next NUL). Whatever the bytes: the result is 0 or HARK_E_BAD_OPTION
 * with a message (naming the option when the name is a real one); an
 * accepted value reads back with hark_options_get in a form that is itself
 * accepted and reads back the same (the canonical form), survives
 * hark_options_copy, and a vocabulary splits into trimmed, non-empty
 * phrases. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/mem.h"
#include "hark/hark.h"
#include "session/options.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

static int known_name(const char *name)
{
    for (int i = 0; hark_options_name(i); i++)
        if (strcmp(hark_options_name(i), name) == 0)
            return 1;
    return 0;
}

static void check_vocabulary(const struct hark_options *o)
{
    char **list = NULL;
    CHECK(options_vocabulary_list(o, &list) == 0);
    for (char **p = list; p && *p; p++) {
        size_t n = strlen(*p);
        CHECK(n > 0);
        CHECK(!isspace((unsigned char)(*p)[0]) && !isspace((unsigned char)(*p)[n - 1]));
    }
    hark_free(list);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* name \0 value: both as C strings, as the front ends pass them */
    char *buf = malloc(size + 2);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = '\0';
    const char *name = buf;
    size_t nlen = strlen(name);
    const char *value = nlen < size ? buf + nlen + 1 : buf + size + 1;

    struct hark_options *o = NULL, *o2 = NULL, *o3 = NULL;
    CHECK(hark_options_create(&o) == 0);
    char err[512], v1[4096], v2[4096];
    memset(err, 0, sizeof err);
    int rc = hark_options_set(o, name, value, err, sizeof err);
    CHECK(rc == 0 || rc == HARK_E_BAD_OPTION);
    if (rc) {
        CHECK(err[0] && memchr(err, '\0', sizeof err));
        if (known_name(name))
            CHECK(strstr(err, name) != NULL);
        CHECK(hark_options_get(o, name, v1, sizeof v1) ==
              (known_name(name) ? 0 : HARK_E_BAD_OPTION));
    } else {
        CHECK(known_name(name));
        CHECK(hark_options_get(o, name, v1, sizeof v1) == 0);
        CHECK(hark_options_create(&o2) == 0);
        CHECK(hark_options_set(o2, name, v1, err, sizeof err) == 0);
        CHECK(hark_options_get(o2, name, v2, sizeof v2) == 0);
        CHECK(strcmp(v1, v2) == 0);
        CHECK(hark_options_copy(&o3, o) == 0);
        CHECK(hark_options_get(o3, name, v2, sizeof v2) == 0);
        CHECK(strcmp(v1, v2) == 0);
        check_vocabulary(o);
    }
    hark_options_destroy(o3);
    hark_options_destroy(o2);
    hark_options_destroy(o);
    free(buf);
    return 0;
}
