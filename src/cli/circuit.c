/* `hark engines --server URL`: the circuit breakers of a running server, read
 * from its /metrics (hark_provider_circuit_state), so an operator sees whether
 * sessions go to the provider or to the fallback right now. libcurl (hark
 * links it for the openai engine) for a plain HTTP(S) GET. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "cli/cli.h"

static size_t on_body(char *p, size_t size, size_t n, void *user)
{
    struct buf *b = user;
    if (b->len + size * n > (8u << 20))
        return 0;
    buf_append(b, p, size * n);
    return b->oom ? 0 : size * n;
}

int cli_circuit_print(const char *server)
{
    struct buf url, body;
    buf_init(&url);
    buf_init(&body);
    size_t n = strlen(server);
    while (n && server[n - 1] == '/')
        n--;
    /* ws:// and wss:// name the same server as http:// and https:// */
    if (!strncmp(server, "ws://", 5))
        buf_printf(&url, "http://%.*s/metrics", (int)n - 5, server + 5);
    else if (!strncmp(server, "wss://", 6))
        buf_printf(&url, "https://%.*s/metrics", (int)n - 6, server + 6);
    else
        buf_printf(&url, "%.*s/metrics", (int)n, server);
    int rc = CLI_ENGINE;
    long status = 0;
    CURL *e = curl_easy_init();
    if (e && !url.oom) {
        curl_easy_setopt(e, CURLOPT_URL, url.data);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        CURLcode cc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK)
            fprintf(stderr, "hark engines: %s: %s\n", url.data, curl_easy_strerror(cc));
        else if (status != 200)
            fprintf(stderr, "hark engines: %s: HTTP %ld\n", url.data, status);
        else
            rc = CLI_OK;
    }
    if (e)
        curl_easy_cleanup(e);
    int found = 0;
    static const char *const names[] = {"closed", "open (new sessions use the fallback)",
                                        "half open (the next session probes the provider)"};
    const char *key = "hark_provider_circuit_state{engine=\"";
    for (const char *p = rc ? NULL : body.data; p && (p = strstr(p, key));) {
        p += strlen(key);
        const char *q = strchr(p, '"');
        if (!q || q[1] != '}' || q[2] != ' ')
            break;
        int v = atoi(q + 3);
        printf("circuit of %.*s at %s: %s\n", (int)(q - p), p, server,
               v >= 0 && v <= 2 ? names[v] : "unknown");
        found = 1;
        p = q;
    }
    if (!rc && !found)
        printf("circuit at %s: none (the server runs no network engine with --fallback-engine)\n",
               server);
    buf_deinit(&url);
    buf_deinit(&body);
    return rc;
}
