/* The NATS connection hark's NATS clients open (see nconn.h). */
#include "front/nats/nconn.h"

#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"

/* natsOptions_SetServers wants an array; the config has "a,b,c". */
static natsStatus set_servers(natsOptions *o, char *list)
{
    const char *urls[16];
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < 16;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            urls[n++] = tok;
    }
    return n ? natsOptions_SetServers(o, urls, n) : NATS_INVALID_ARG;
}

int nconn_open(natsConnection **nc, const char *url, const char *name, const char *what,
               const struct nconn_cbs *cbs, char *err, size_t n)
{
    *nc = NULL;
    natsOptions *o = NULL;
    natsStatus st = natsOptions_Create(&o);
    char *list = hark_strdup(url);
    int rc = 0;
    if (st != NATS_OK || !list) {
        rc = err_set(err, n, HARK_E_NOMEM, "out of memory");
        goto out;
    }
    if ((st = set_servers(o, list)) != NATS_OK) {
        rc = err_set(err, n, HARK_E_INVAL,
                     "%s '%s' is not usable (%s); expected nats://HOST:PORT[,nats://...]", what,
                     url, natsStatus_GetText(st));
        goto out;
    }
    if (name)
        natsOptions_SetName(o, name);
    natsOptions_SetMaxReconnect(o, -1); /* forever: hark outlives server restarts */
    natsOptions_SetReconnectWait(o, 250);
    natsOptions_SetReconnectBufSize(o, 8 * 1024 * 1024);
    natsOptions_SetPingInterval(o, 5000);
    natsOptions_SetMaxPingsOut(o, 2);
    natsOptions_SetRetryOnFailedConnect(o, true, cbs->connected, cbs->user);
    natsOptions_SetDisconnectedCB(o, cbs->disconnected, cbs->user);
    natsOptions_SetReconnectedCB(o, cbs->reconnected ? cbs->reconnected : cbs->connected,
                                 cbs->user);
    if (cbs->closed)
        natsOptions_SetClosedCB(o, cbs->closed, cbs->user);
    natsOptions_SetErrorHandler(o, cbs->error, cbs->user);
    if (cbs->shared_delivery)
        natsOptions_UseGlobalMessageDelivery(o, true);
    st = natsConnection_Connect(nc, o);
    if (st == NATS_OK) {
        cbs->connected(*nc, cbs->user);
    } else if (st == NATS_NOT_YET_CONNECTED) {
        LOG_WARN(NULL, "no NATS server answers at %s yet; retrying in the background", url);
    } else {
        rc = err_set(err, n, st == NATS_NO_MEMORY ? HARK_E_NOMEM : HARK_E_IO,
                     "cannot connect to NATS: %s", natsStatus_GetText(st));
        goto out;
    }
out:
    natsOptions_Destroy(o);
    hark_free(list);
    return rc;
}
