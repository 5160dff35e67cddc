/* Plain HTTP on the server's port: health, readiness, Prometheus metrics and
 * the demo page (embedded at build time, so the binary is self-contained). */
#include <libwebsockets.h>
#include <string.h>

#include "base/buf.h"
#include "base/mem.h"
#include "front/ws/head.h"
#include "front/ws/wsfe.h"

/* Sends a complete response. Returns what the HTTP callback must return. */
int http_respond(struct lws *wsi, unsigned status, const char *mime, const void *body, size_t len,
                 const char *const *extra)
{
    unsigned char hdr[LWS_PRE + 2048];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, status, mime, len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end))
        return -1;
    for (; extra && extra[0]; extra += 2)
        if (lws_add_http_header_by_name(wsi, (const unsigned char *)extra[0],
                                        (const unsigned char *)extra[1], (int)strlen(extra[1]), &p,
                                        end))
            return -1;
    if (origin_add_cors(wsi, &p, end) || lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    /* HEAD: the headers of a GET, no body */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0)
        len = 0;
    unsigned char *out = hark_malloc(LWS_PRE + len + 1);
    if (!out)
        return -1;
    if (len)
        memcpy(out + LWS_PRE, body, len);
    int n = lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    hark_free(out);
    if (n < 0)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int respond(struct lws *wsi, unsigned status, const char *mime, const void *body, size_t len)
{
    return http_respond(wsi, status, mime, body, len, NULL);
}

/* The query the door moved into x-hark-query, split like lws' own. */
static char **door_query_args(struct lws *wsi, size_t *n)
{
    int len = lws_hdr_custom_length(wsi, HEAD_QUERY_HEADER, (int)strlen(HEAD_QUERY_HEADER));
    size_t total = len > 0 ? (size_t)len : 0;
    char *raw = hark_malloc(total + 1);
    if (!raw)
        return NULL;
    if (total && lws_hdr_custom_copy(wsi, raw, (int)total + 1, HEAD_QUERY_HEADER,
                                     (int)strlen(HEAD_QUERY_HEADER)) < 0)
        total = 0;
    /* each argument: at most its raw bytes and a NUL, so total + 1 */
    char *strs = hark_malloc(total + 1);
    size_t count = strs ? head_split_query(raw, total, strs, total + 1) : 0;
    char **args = strs ? hark_malloc((count + 1) * sizeof *args + total + 1) : NULL;
    if (args) {
        char *dst = (char *)(args + count + 1), *src = strs;
        memcpy(dst, strs, total + 1);
        for (size_t i = 0; i < count; i++) {
            args[i] = dst + (src - strs);
            src += strlen(src) + 1;
        }
        args[count] = NULL;
        *n = count;
    }
    hark_free(raw);
    hark_free(strs);
    return args;
}

char **http_query_args(struct lws *wsi, size_t *n)
{
    struct wsfe *fe = lws_context_user(lws_get_context(wsi));
    *n = 0;
    /* the door moved a long query there (and drops a client's own) */
    if (fe && door_active(wsfe_config(fe)) &&
        lws_hdr_custom_length(wsi, HEAD_QUERY_HEADER, (int)strlen(HEAD_QUERY_HEADER)) >= 0)
        return door_query_args(wsi, n);

    /* lws stores each argument as a fragment; empty ones ("a=1&&b=2") too,
     * so they are counted first. A copy into total+1 bytes fails only past
     * the last fragment. */
    int t = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_URI_ARGS);
    size_t total = t > 0 ? (size_t)t : 0, count = 0;
    *n = 0;
    char *tmp = total ? hark_malloc(total + 1) : NULL;
    if (total && !tmp)
        return NULL;
    while (total && lws_hdr_copy_fragment(wsi, tmp, (int)total + 1, WSI_TOKEN_HTTP_URI_ARGS,
                                          (int)count) >= 0)
        count++;
    hark_free(tmp);
    size_t room = total + count; /* the strings and their NULs */
    char **args = hark_malloc((count + 1) * sizeof *args + room + 1);
    if (!args)
        return NULL;
    char *dst = (char *)(args + count + 1);
    for (size_t i = 0; i < count; i++) {
        int len = lws_hdr_copy_fragment(wsi, dst, (int)room + 1, WSI_TOKEN_HTTP_URI_ARGS, (int)i);
        if (len < 0)
            break;
        args[(*n)++] = dst;
        dst += len + 1;
        room -= (size_t)len + 1;
    }
    args[*n] = NULL;
    return args;
}

int http_error(struct lws *wsi, unsigned status, const char *code, const char *message)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "{\"error\":{");
    buf_json_key(&b, "code");
    buf_json_str(&b, code);
    buf_json_key(&b, "message");
    buf_json_str(&b, message);
    buf_puts(&b, "}}");
    int rc = b.oom ? -1 : respond(wsi, status, "application/json", b.data, b.len);
    buf_deinit(&b);
    return rc;
}

/* A GET resource: health, metrics, demo assets. */
static const struct web_asset *asset_for(const char *path)
{
    const char *want = strcmp(path, "/") ? path : "/index.html";
    for (const struct web_asset *a = web_assets; a->path; a++)
        if (!strcmp(a->path, want))
            return a;
    return NULL;
}

int http_handle(struct wsfe *fe, struct lws *wsi, const char *path)
{
    int post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    int get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0 ||
              lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    int batch = post && batch_is_path(path);
    if (wsfe_config(fe)->health_only &&
        (post || (strcmp(path, "/healthz") && strcmp(path, "/readyz") && strcmp(path, "/metrics"))))
        return http_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found",
                          "this port serves /healthz, /readyz and /metrics only");
    char refused[400];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0)
        return origin_preflight(fe, wsi);
    /* A page elsewhere may POST a form here (no preflight): refused before
     * any audio is read. */
    if (batch && origin_check(fe, wsi, refused, sizeof refused))
        return batch_refuse(wsi, path, HTTP_STATUS_FORBIDDEN, HARK_E_AUTH, refused);
    if (strcmp(path, "/healthz") && strcmp(path, "/readyz")) {
        int key;
        if (auth_check(wsfe_auth(fe), wsi, &key, refused, sizeof refused))
            return batch ? batch_refuse(wsi, path, HTTP_STATUS_UNAUTHORIZED, HARK_E_AUTH, refused)
                         : http_error(wsi, HTTP_STATUS_UNAUTHORIZED, "unauthorized", refused);
    }
    if (batch)
        return batch_begin(fe, wsi, path);
    int known = !strcmp(path, "/healthz") || !strcmp(path, "/readyz") ||
                !strcmp(path, "/metrics") || asset_for(path);
    if ((!get && known) || (!post && batch_is_path(path))) {
        /* each path has its methods; others are 405 with the ones it has */
        const char *allow = known ? "GET, HEAD, OPTIONS" : "POST, OPTIONS";
        const char *extra[] = {"allow:", allow, NULL};
        char msg[120];
        snprintf(msg, sizeof msg, "this path accepts %s", allow);
        struct buf b;
        buf_init(&b);
        buf_puts(&b, "{\"error\":{");
        buf_json_key(&b, "code");
        buf_json_str(&b, "method_not_allowed");
        buf_json_key(&b, "message");
        buf_json_str(&b, msg);
        buf_puts(&b, "}}");
        int rc = b.oom ? -1
                       : http_respond(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, "application/json",
                                      b.data, b.len, extra);
        buf_deinit(&b);
        return rc;
    }
    if (post)
        return http_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found", "no POST endpoint at this path");
    if (!get)
        return http_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found", "no such resource");
    if (!strcmp(path, "/healthz"))
        return respond(wsi, HTTP_STATUS_OK, "text/plain", "ok\n", 3);
    if (!strcmp(path, "/readyz")) {
        const struct wsfe_cfg *cfg = wsfe_config(fe);
        if (!wsfe_is_ready(fe))
            return respond(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain", "shutting down\n",
                           14);
        const char *why = cfg->not_ready ? cfg->not_ready(cfg->ready_user) : NULL;
        if (why)
            return respond(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, "text/plain", why, strlen(why));
        return respond(wsi, HTTP_STATUS_OK, "text/plain", "ready\n", 6);
    }
    if (!strcmp(path, "/metrics")) {
        struct buf b;
        buf_init(&b);
        metrics_render(wsfe_metrics(fe), &b);
        int rc = b.oom ? -1
                       : respond(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
                                 b.data ? b.data : "", b.len);
        buf_deinit(&b);
        return rc;
    }
    const struct web_asset *a = asset_for(path);
    if (a)
        return respond(wsi, HTTP_STATUS_OK, a->mime, a->data, a->len);
    return http_error(wsi, HTTP_STATUS_NOT_FOUND, "not_found", "no such resource");
}
