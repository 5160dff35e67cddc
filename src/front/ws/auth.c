/*
 * API keys. When any key is configured, every request but /healthz and
 * /readyz must carry one, in any of the forms clients use today:
 *
 *   Authorization: Token KEY | Bearer KEY      (scheme case-insensitive)
 *   Sec-WebSocket-Protocol: token, KEY          (browsers; "token" is echoed)
 *   Sec-WebSocket-Protocol: realtime, openai-insecure-api-key.KEY
 *                                               (OpenAI Realtime in browsers;
 *                                                "realtime" is echoed)
 *
 * and on AssemblyAI's /v3/ws only, the forms its SDKs send:
 *
 *   Authorization: KEY                          (no scheme)
 *   ?token=KEY                                  (its temporary-token form;
 *                                                hark has no separate
 *                                                temporary tokens)
 *
 * An Authorization header with another scheme (Basic, a raw key elsewhere)
 * does not hide a subprotocol credential. No other query-string form: keys
 * in URLs end up in proxy and access logs, and no other client hark serves
 * needs one.
 *
 * Keys are compared in constant time. Each key has a limit on concurrent
 * streaming sessions. Service thread only.
 */
#include <ctype.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/mem.h"
#include "front/ws/wsfe.h"

#define MAX_KEYS 1024
#define MAX_KEY_LEN 256

struct auth {
    char *keys[MAX_KEYS];
    int sessions[MAX_KEYS];
    int waiting[MAX_KEYS]; /* of those, detached sessions waiting for a resume */
    int n;
    int max_per_key;
};

static int add_key(struct auth *a, const char *k, size_t len, char *err, size_t n)
{
    while (len && isspace((unsigned char)*k)) {
        k++;
        len--;
    }
    while (len && isspace((unsigned char)k[len - 1]))
        len--;
    if (!len || *k == '#')
        return 0;
    if (len > MAX_KEY_LEN)
        return err_set(err, n, HARK_E_BAD_OPTION, "API key longer than %d characters", MAX_KEY_LEN);
    if (a->n >= MAX_KEYS)
        return err_set(err, n, HARK_E_BAD_OPTION, "more than %d API keys", MAX_KEYS);
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)k[i]) || k[i] == ',')
            return err_set(err, n, HARK_E_BAD_OPTION,
                           "API keys may only contain printable characters other than ','");
    a->keys[a->n] = hark_strndup(k, len);
    if (!a->keys[a->n])
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    a->n++;
    return 0;
}

int auth_create(struct auth **out, const char *keys_csv, const char *keys_file, int max_per_key,
                char *err, size_t n)
{
    *out = NULL;
    struct auth *a = hark_calloc(1, sizeof *a);
    if (!a)
        return err_set(err, n, HARK_E_NOMEM, "out of memory");
    a->max_per_key = max_per_key;
    int rc = 0;
    for (const char *p = keys_csv; p && *p && !rc;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        rc = add_key(a, p, len, err, n);
        p = comma ? comma + 1 : NULL;
    }
    if (!rc && keys_file && *keys_file) {
        FILE *f = fopen(keys_file, "r");
        if (!f) {
            rc = err_set(err, n, HARK_E_IO, "cannot read API keys file '%s'", keys_file);
        } else {
            char line[MAX_KEY_LEN + 64];
            int line_no = 0, before = a->n;
            while (!rc && fgets(line, sizeof line, f)) {
                line_no++;
                rc = add_key(a, line, strcspn(line, "\r\n"), err, n);
            }
            fclose(f);
            if (rc) { /* say where, never what: the line may be a key */
                char detail[160];
                snprintf(detail, sizeof detail, "%s", err);
                rc = err_set(err, n, rc, "API keys file '%s', line %d: %s", keys_file, line_no,
                             detail);
            } else if (a->n == before) {
                /* an empty file named on purpose must not switch auth off */
                rc = err_set(err, n, HARK_E_BAD_OPTION, "API keys file '%s' holds no keys",
                             keys_file);
            }
        }
    }
    if (rc) {
        auth_destroy(a);
        return rc;
    }
    *out = a;
    return 0;
}

void auth_destroy(struct auth *a)
{
    if (!a)
        return;
    for (int i = 0; i < a->n; i++)
        hark_free(a->keys[i]);
    hark_free(a);
}

int auth_enabled(const struct auth *a)
{
    return a && a->n > 0;
}

/* Constant-time over the longer length, so timing tells nothing about a key. */
static int key_equal(const char *a, const char *b, size_t blen)
{
    size_t alen = strlen(a), n = alen > blen ? alen : blen;
    unsigned char diff = (unsigned char)(alen != blen);
    for (size_t i = 0; i < n; i++) {
        unsigned char x = i < alen ? (unsigned char)a[i] : 0;
        unsigned char y = i < blen ? (unsigned char)b[i] : 0;
        diff |= x ^ y;
    }
    return diff == 0;
}

static int find_key(const struct auth *a, const char *k, size_t len)
{
    int found = -1;
    for (int i = 0; i < a->n; i++)
        if (key_equal(a->keys[i], k, len))
            found = i;
    return found;
}

/* A whole header (hark_free), or NULL when absent or out of memory. lws
 * bounds headers by max_http_header_data, so this is never large. */
static char *header_dup(struct lws *wsi, enum lws_token_indexes h)
{
    int len = lws_hdr_total_length(wsi, h);
    if (len <= 0)
        return NULL;
    char *v = hark_malloc((size_t)len + 1);
    if (v && lws_hdr_copy(wsi, v, len + 1, h) < 0) {
        hark_free(v);
        v = NULL;
    }
    return v;
}

/* The credential a request carries: 1 found (*key, *key_len point into
 * *hold, which the caller frees), 0 none. *bad_scheme is set when an
 * Authorization header was there but not Token/Bearer. Any length is read:
 * a key too long to be one of ours is an invalid key, not a missing one. */
static int is_assemblyai(struct lws *wsi)
{
    char path[16];
    return lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI) > 0 &&
           (!strcmp(path, "/v3/ws") || !strcmp(path, "/v3/ws/"));
}

static int credential(struct lws *wsi, char **hold, const char **key, size_t *key_len,
                      int *bad_scheme)
{
    int aai = is_assemblyai(wsi);
    *bad_scheme = 0;
    *hold = header_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (*hold) {
        const char *p = *hold;
        if (!strncasecmp(p, "token ", 6))
            p += 6;
        else if (!strncasecmp(p, "bearer ", 7))
            p += 7;
        else if (aai && *p && !strchr(p, ' '))
            ; /* a raw key */
        else
            p = NULL;
        if (p) {
            while (*p == ' ')
                p++;
            *key = p;
            *key_len = strlen(p);
            return 1;
        }
        *bad_scheme = 1;
        hark_free(*hold);
    }
    *hold = header_dup(wsi, WSI_TOKEN_PROTOCOL);
    if (*hold) {
        /* "token, KEY[, x-deepgram-session-id, UUID]" or "bearer, KEY" */
        char *save = NULL, *first = strtok_r(*hold, ", ", &save);
        if (first && (!strcasecmp(first, "token") || !strcasecmp(first, "bearer"))) {
            char *k = strtok_r(NULL, ", ", &save);
            if (k) {
                *key = k;
                *key_len = strlen(k);
                return 1;
            }
        }
        /* OpenAI's browser form: the key is a protocol name's suffix */
        static const char oai[] = "openai-insecure-api-key.";
        for (char *t = first; t; t = strtok_r(NULL, ", ", &save)) {
            if (!strncmp(t, oai, sizeof oai - 1) && t[sizeof oai - 1]) {
                *key = t + sizeof oai - 1;
                *key_len = strlen(*key);
                return 1;
            }
        }
        hark_free(*hold);
        *hold = NULL;
    }
    if (aai) {
        size_t n = 0;
        char **args = http_query_args(wsi, &n);
        for (size_t i = 0; args && i < n && !*hold; i++)
            if (!strncmp(args[i], "token=", 6) && args[i][6])
                *hold = hark_strndup(args[i] + 6, strlen(args[i] + 6));
        hark_free(args);
        if (*hold) {
            *key = *hold;
            *key_len = strlen(*hold);
            return 1;
        }
    }
    return 0;
}

int auth_check(struct auth *a, struct lws *wsi, int *key_index, char *why, size_t n)
{
    *key_index = -1;
    if (!auth_enabled(a))
        return 0;
    char *hold;
    const char *cred;
    size_t cred_len;
    int bad_scheme;
    if (!credential(wsi, &hold, &cred, &cred_len, &bad_scheme))
        return err_set(why, n, HARK_E_AUTH,
                       "%s: send 'Authorization: Token KEY' (or Bearer), or the WebSocket "
                       "subprotocols 'token, KEY'",
                       bad_scheme ? "unsupported Authorization scheme" : "an API key is required");
    int k = cred_len <= MAX_KEY_LEN ? find_key(a, cred, cred_len) : -1;
    hark_free(hold);
    if (k < 0)
        return err_set(why, n, HARK_E_AUTH, "invalid API key");
    *key_index = k;
    return 0;
}

int auth_acquire(struct auth *a, int key_index, char *why, size_t n)
{
    if (!auth_enabled(a) || key_index < 0)
        return 0;
    if (a->max_per_key && a->sessions[key_index] >= a->max_per_key)
        return err_set(why, n, HARK_E_LIMIT,
                       "this API key already has %d open sessions (its limit); retry later",
                       a->sessions[key_index]);
    a->sessions[key_index]++;
    return 0;
}

void auth_waiting(struct auth *a, int key_index, int delta)
{
    if (auth_enabled(a) && key_index >= 0)
        a->waiting[key_index] += delta;
}

int auth_has_waiting(const struct auth *a, int key_index)
{
    return auth_enabled(a) && key_index >= 0 && a->waiting[key_index] > 0;
}

void auth_release(struct auth *a, int key_index)
{
    if (auth_enabled(a) && key_index >= 0 && a->sessions[key_index] > 0)
        a->sessions[key_index]--;
}

int auth_check_key(struct auth *a, const char *key, int *key_index, char *why, size_t n)
{
    *key_index = -1;
    if (!auth_enabled(a))
        return 0;
    size_t len = strlen(key);
    int k = len && len <= MAX_KEY_LEN ? find_key(a, key, len) : -1;
    if (k < 0)
        return err_set(why, n, HARK_E_AUTH, len ? "invalid API key" : "an API key is required");
    *key_index = k;
    return 0;
}

int auth_has_credential(struct lws *wsi)
{
    char *hold;
    const char *cred;
    size_t cred_len;
    int bad_scheme;
    int found = credential(wsi, &hold, &cred, &cred_len, &bad_scheme);
    hark_free(hold);
    return found || bad_scheme;
}
