#include "client/client_url.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"

int client_url_parse(struct client_url *u, const char *url, char *err, size_t n)
{
    memset(u, 0, sizeof *u);
    if (!url || !*url)
        return err_set(err, n, HARK_E_INVAL, "no server URL");
    const char *p;
    if (!strncasecmp(url, "ws://", 5) || !strncasecmp(url, "http://", 7)) {
        p = strstr(url, "://") + 3;
    } else if (!strncasecmp(url, "wss://", 6) || !strncasecmp(url, "https://", 8)) {
        u->tls = 1;
        p = strstr(url, "://") + 3;
    } else {
        return err_set(err, n, HARK_E_INVAL,
                       "server URL '%s': must start with ws:// or wss:// (e.g. ws://HOST:PORT)",
                       url);
    }
    const char *host = p, *host_end;
    if (*p == '[') { /* [v6]:port */
        host = p + 1;
        host_end = strchr(host, ']');
        if (!host_end)
            return err_set(err, n, HARK_E_INVAL, "server URL '%s': unclosed '['", url);
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/?#");
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if (hlen == 0 || hlen >= sizeof u->host)
        return err_set(err, n, HARK_E_INVAL, "server URL '%s': no host", url);
    memcpy(u->host, host, hlen);
    if (strcspn(u->host, " \t\r\n@") != hlen)
        return err_set(err, n, HARK_E_INVAL, "server URL '%s': bad host", url);
    u->port = u->tls ? 443 : 80;
    int explicit_port = 0;
    if (*p == ':') {
        p++;
        long port = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 6) {
            port = port * 10 + (*p++ - '0');
            digits++;
        }
        if (!digits || port < 1 || port > 65535)
            return err_set(err, n, HARK_E_INVAL, "server URL '%s': port must be 1..65535", url);
        u->port = (int)port;
        explicit_port = 1;
    }
    if (*p == '#')
        p += strlen(p);
    if (*p && *p != '/' && *p != '?')
        return err_set(err, n, HARK_E_INVAL, "server URL '%s': unexpected '%c' after the host", url,
                       *p);
    /* A URL with a path is used as given; without one, the native protocol. */
    size_t plen = strcspn(p, "#");
    const char *path = plen == 0 || (plen == 1 && *p == '/') ? "/v1/stream" : p;
    if (path == p && *p == '?')
        snprintf(u->path, sizeof u->path, "/v1/stream%.*s", (int)plen, p);
    else if (path == p)
        snprintf(u->path, sizeof u->path, "%.*s", (int)plen, p);
    else
        snprintf(u->path, sizeof u->path, "%s", path);
    if (plen >= sizeof u->path - 16)
        return err_set(err, n, HARK_E_INVAL, "server URL '%s': path too long", url);
    if (strcspn(u->path, " \t\r\n") != strlen(u->path))
        return err_set(err, n, HARK_E_INVAL, "server URL '%s': spaces in the path", url);
    int v6 = strchr(u->host, ':') != NULL;
    if (explicit_port)
        snprintf(u->hostport, sizeof u->hostport, "%s%s%s:%d", v6 ? "[" : "", u->host,
                 v6 ? "]" : "", u->port);
    else
        snprintf(u->hostport, sizeof u->hostport, "%s%s%s", v6 ? "[" : "", u->host, v6 ? "]" : "");
    return 0;
}
