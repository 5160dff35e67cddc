/* Splits a client URL: ws://HOST[:PORT][/PATH][?QUERY] or wss://... (http
 * and https are taken as ws and wss). IPv6 literals in brackets. Without a
 * path, /v1/stream. Pure; thread-safe. */
#ifndef HARK_CLIENT_CLIENT_URL_H
#define HARK_CLIENT_CLIENT_URL_H

#include <stddef.h>

struct client_url {
    int tls;
    char host[256]; /* without brackets */
    int port;
    char path[1024];    /* starts with '/', query included */
    char hostport[272]; /* for the Host header: "host" or "host:port" */
};

/* 0, or HARK_E_INVAL with the reason in err. */
int client_url_parse(struct client_url *u, const char *url, char *err, size_t n);

#endif
