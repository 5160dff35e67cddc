/*
 * Browser origins. A web page on any site can open a WebSocket to hark or
 * POST a form to it: browsers do not apply the same-origin policy to
 * either, they only send an Origin header. So requests that carry one are
 * checked: the server's own origin (scheme://Host, the demo page) and the
 * origins of --allowed-origins ("*" = any) pass, others get 403 before any
 * work is done. Requests without Origin are not from a browser page (curl,
 * SDKs, servers) and pass; they cannot be forged from a page.
 *
 * The own origin trusts the Host header, so a DNS-rebinding page (its name
 * pointed at the server's address) passes it: API keys are what protects a
 * server reachable from such pages (docs/security.md).
 *
 * Allowed origins also get CORS headers on HTTP responses, so pages there
 * can read batch results, and OPTIONS preflights are answered.
 */
#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "front/ws/wsfe.h"

#define ORIGIN_MAX 512

/* The Origin header into buf: 1 present, 0 none, -1 present but too long. */
static int get_origin(struct lws *wsi, char *buf, size_t n)
{
    buf[0] = 0;
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
    if (len <= 0)
        return 0;
    if ((size_t)len >= n || lws_hdr_copy(wsi, buf, (int)n, WSI_TOKEN_ORIGIN) < 0) {
        buf[0] = 0;
        return -1;
    }
    return 1;
}

/* The server's own origin: its scheme, "://", the Host header. */
static int is_own(struct wsfe *fe, struct lws *wsi, const char *origin)
{
    char host[256];
    int len = lws_hdr_total_length(wsi, WSI_TOKEN_HOST);
    if (len <= 0 || (size_t)len >= sizeof host ||
        lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) < 0)
        return 0;
    const char *tls = wsfe_config(fe)->tls_cert;
    const char *scheme = tls && *tls ? "https://" : "http://";
    size_t sl = strlen(scheme);
    return !strncasecmp(origin, scheme, sl) && !strcasecmp(origin + sl, host);
}

/* In the comma list (entries trimmed of blanks and a trailing '/'). */
static int listed(const char *list, const char *origin)
{
    size_t olen = strlen(origin);
    for (const char *p = list; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len && (*p == ' ' || *p == '\t')) {
            p++;
            len--;
        }
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '/'))
            len--;
        if ((len == 1 && *p == '*') || (len && len == olen && !strncasecmp(p, origin, len)))
            return 1;
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

int origin_allowed(struct wsfe *fe, struct lws *wsi, char *origin, size_t n)
{
    int r = get_origin(wsi, origin, n);
    if (r == 0)
        return 1;
    if (r < 0) {
        snprintf(origin, n, "(longer than %zu bytes)", n - 1);
        return 0;
    }
    return is_own(fe, wsi, origin) || listed(wsfe_config(fe)->allowed_origins, origin);
}

int origin_check(struct wsfe *fe, struct lws *wsi, char *why, size_t n)
{
    char origin[ORIGIN_MAX];
    if (origin_allowed(fe, wsi, origin, sizeof origin))
        return 0;
    return err_set(why, n, HARK_E_AUTH,
                   "origin '%.200s' is not allowed: pages may connect from this server's own "
                   "origin or one listed in --allowed-origins",
                   origin);
}

static int add(struct lws *wsi, const char *name, const char *value, unsigned char **p,
               unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

int origin_add_cors(struct lws *wsi, unsigned char **p, unsigned char *end)
{
    struct wsfe *fe = lws_context_user(lws_get_context(wsi));
    char origin[ORIGIN_MAX];
    if (!fe || get_origin(wsi, origin, sizeof origin) != 1 ||
        !origin_allowed(fe, wsi, origin, sizeof origin))
        return 0;
    if (add(wsi, "access-control-allow-origin:", origin, p, end) ||
        add(wsi, "vary:", "Origin", p, end) ||
        add(wsi, "access-control-expose-headers:", "dg-request-id, dg-error, retry-after", p, end))
        return -1;
    return 0;
}

int origin_preflight(struct wsfe *fe, struct lws *wsi)
{
    char why[400];
    if (origin_check(fe, wsi, why, sizeof why))
        return http_error(wsi, HTTP_STATUS_FORBIDDEN, "forbidden", why);
    /* Authorization: browsers send no credentials with a preflight, so it
     * is answered without a key. */
    static const char methods[] = "GET, HEAD, POST, OPTIONS";
    const char *extra[] = {"allow:",
                           methods,
                           "access-control-allow-methods:",
                           methods,
                           "access-control-allow-headers:",
                           "Authorization, Content-Type",
                           "access-control-max-age:",
                           "600",
                           NULL};
    return http_respond(wsi, HTTP_STATUS_NO_CONTENT, "text/plain", "", 0, extra);
}
