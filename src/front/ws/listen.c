/*
 * The listening socket: which address lws binds and, with a certificate,
 * TLS on it (https and wss on the same port).
 *
 * Address: libwebsockets 4.1 binds an IPv6 socket by default and treats
 * info.iface as an interface name or an IPv6 literal; an IPv4 literal is
 * parsed into the wrong bytes of the IPv6 address, so "127.0.0.1" bound
 * every address of both families. Here an IPv4 address gets an IPv4-only
 * socket (LWS_SERVER_OPTION_DISABLE_IPV6) and an IPv6 address an IPv6-only
 * one (IPV6_V6ONLY), so the socket listens on exactly the address given:
 * 0.0.0.0 is every IPv4 address, :: every IPv6 address. Interface names and
 * host names are refused: what they would bind is not obvious.
 *
 * TLS: the files are read and checked here (PEM, key matches certificate),
 * so a bad file is a start-up error that names it; lws would only say that
 * creating the context failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libwebsockets.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "front/ws/head.h"
#include "front/ws/wsfe.h"

int listen_parse_host(const char *host, char *addr, size_t size, int *is_ipv6)
{
    /* "[::1]" as in URLs */
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') {
        host++;
        len -= 2;
    }
    if (len == 9 && !strncmp(host, "localhost", 9)) {
        host = "127.0.0.1";
        len = 9;
    }
    if (len >= size || len >= INET6_ADDRSTRLEN)
        return -1;
    memcpy(addr, host, len);
    addr[len] = 0;
    unsigned char bin[16];
    if (inet_pton(AF_INET, addr, bin) == 1)
        *is_ipv6 = 0;
    else if (inet_pton(AF_INET6, addr, bin) == 1)
        *is_ipv6 = 1;
    else
        return -1;
    return 0;
}

/* Reads one PEM object to check the file; 0 or an error naming the file. */
static int check_pem(const char *what, const char *path, X509 **cert, EVP_PKEY **key, char *err,
                     size_t n)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(err, n, HARK_E_IO, "cannot read TLS %s '%s': %s", what, path,
                       strerror(errno));
    if (cert)
        *cert = PEM_read_X509(f, NULL, NULL, NULL);
    else
        /* no passphrase prompt: an encrypted key fails here, named */
        *key = PEM_read_PrivateKey(f, NULL, NULL, (void *)"");
    fclose(f);
    if (cert ? !*cert : !*key)
        return err_set(err, n, HARK_E_BAD_OPTION, "TLS %s '%s' holds no PEM %s%s", what, path,
                       cert ? "certificate" : "private key",
                       cert ? "" : " (or it is encrypted: hark needs it unencrypted)");
    return 0;
}

int listen_check_tls(const char *cert_path, const char *key_path, char *err, size_t n)
{
    int have_cert = cert_path && *cert_path, have_key = key_path && *key_path;
    if (!have_cert && !have_key)
        return 0;
    if (have_cert != have_key)
        return err_set(err, n, HARK_E_BAD_OPTION,
                       "TLS needs both --tls-cert and --tls-key (only %s was given)",
                       have_cert ? "--tls-cert" : "--tls-key");
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    int rc = check_pem("certificate", cert_path, &cert, NULL, err, n);
    if (!rc)
        rc = check_pem("key", key_path, NULL, &key, err, n);
    if (!rc && X509_check_private_key(cert, key) != 1)
        rc = err_set(err, n, HARK_E_BAD_OPTION,
                     "TLS key '%s' does not belong to the certificate '%s'", key_path, cert_path);
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

int listen_configure(struct lws_context_creation_info *info, const struct wsfe_cfg *cfg,
                     char *iface, size_t size, char *err, size_t n)
{
    int v6;
    if (listen_parse_host(cfg->host, iface, size, &v6))
        return err_set(err, n, HARK_E_BAD_OPTION,
                       "--host '%s' is not an IP address (give an IPv4 or IPv6 address: "
                       "127.0.0.1, ::1, 0.0.0.0 or :: for all of one family)",
                       cfg->host);
    info->iface = iface;
    if (v6)
        info->options |= LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY | LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE;
    else
        info->options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    int rc = listen_check_tls(cfg->tls_cert, cfg->tls_key, err, n);
    if (rc)
        return rc;
    if (cfg->tls_cert && *cfg->tls_cert) {
        info->options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info->ssl_cert_filepath = cfg->tls_cert;
        info->ssl_private_key_filepath = cfg->tls_key;
    } else {
        /* every connection starts at the door (door.c) */
        info->options |= LWS_SERVER_OPTION_ADOPT_APPLY_LISTEN_ACCEPT_CONFIG;
        info->listen_accept_role = "raw-skt";
        info->listen_accept_protocol = "door";
    }
    /* what the door lets through, plus its rewrite */
    info->max_http_header_data = HEAD_MAX_BYTES + 1024;
    return 0;
}

int door_active(const struct wsfe_cfg *cfg)
{
    return !cfg->tls_cert || !*cfg->tls_cert;
}
