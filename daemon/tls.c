/* tls.c - the optional TLS listener (see tls.h).
 *
 * Design notes: the web tier reaches the API from another host through
 * this listener; nothing else does, so the context is strict rather than
 * broad: TLS 1.2 as the floor (OpenSSL's default security level then
 * rules out weak ciphers and keys), no renegotiation, no compression, and
 * SSL_VERIFY_FAIL_IF_NO_PEER_CERT so that a client without a certificate
 * from client_ca never gets past the handshake.  Connections are
 * libevent's bufferevent_openssl over the accepted socket, handed to
 * http.c, which treats them like Unix-socket connections except that the
 * peer is named by its certificate's CN instead of SO_PEERCRED.  The
 * context is built once at start (SIGHUP does not reload certificates:
 * restart copeesd to change them).
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "tls.h"

#define TLS_BACKLOG 128
#define TLS_VERIFY_DEPTH 4
#define TLS_EXPIRY_WARN_DAYS 30

struct tls {
    SSL_CTX *ctx;
};

static struct tls *server;

/* The oldest queued OpenSSL error as text ("" when none); clears the queue. */
static const char *ssl_error(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    buf[0] = '\0';
    if (e)
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0)
        *err = NULL;
    va_end(ap);
    return -1;
}

/* ------------------------------------------------------------ context */

static void warn_expiry(SSL_CTX *ctx, const char *path)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    int days = 0, secs = 0;
    if (!x || !ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)))
        return;
    if (days < 0 || secs < 0)
        log_warn("tls: the server certificate %s has expired", path);
    else if (days < TLS_EXPIRY_WARN_DAYS)
        log_warn("tls: the server certificate %s expires in %d days", path, days);
}

static SSL_CTX *ctx_new(const struct conf *c, char **err)
{
    char e[256];
    struct stat st;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail(err, "[tls]: cannot create a TLS context: %s", ssl_error(e, sizeof e));
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_CIPHER_SERVER_PREFERENCE
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
                             | SSL_OP_IGNORE_UNEXPECTED_EOF
#endif
                        );
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_certificate) != 1) {
        fail(err, "[tls] certificate %s: %s", c->tls_certificate, ssl_error(e, sizeof e));
        goto bad;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1) {
        if (ERR_GET_REASON(ERR_peek_error()) == X509_R_KEY_VALUES_MISMATCH) {
            ERR_clear_error();
            fail(err, "[tls] key %s does not match the certificate %s", c->tls_key,
                 c->tls_certificate);
        } else {
            fail(err, "[tls] key %s: %s", c->tls_key, ssl_error(e, sizeof e));
        }
        goto bad;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail(err, "[tls] key %s does not match the certificate %s", c->tls_key, c->tls_certificate);
        goto bad;
    }
    if (stat(c->tls_key, &st) == 0 && (st.st_mode & 0077))
        log_warn("tls: the key %s is readable by others than its owner (mode %04o)", c->tls_key,
                 (unsigned)(st.st_mode & 07777));
    if (SSL_CTX_load_verify_locations(ctx, c->tls_client_ca, NULL) != 1) {
        fail(err, "[tls] client_ca %s: %s", c->tls_client_ca, ssl_error(e, sizeof e));
        goto bad;
    }
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(c->tls_client_ca);
    if (!names) {
        fail(err, "[tls] client_ca %s: no CA certificate in it", c->tls_client_ca);
        goto bad;
    }
    SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
    /* Sessions resumed with a client certificate need an id context. */
    static const unsigned char sid[] = "copeesd";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
    warn_expiry(ctx, c->tls_certificate);
    return ctx;
bad:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ------------------------------------------------------------ socket */

/* Bind and listen on "HOST:PORT", "*:PORT" or "[V6]:PORT" (conf.c checked
 * the form).  fd, or -1 with *err set. */
static int listen_socket(const char *spec, char **err)
{
    char host[256], port[8];
    const char *colon = strrchr(spec, ':');
    size_t hl = colon ? (size_t)(colon - spec) : 0;
    if (!colon || hl >= sizeof host || strlen(colon + 1) >= sizeof port)
        return fail(err, "[tls] listen %s: expected HOST:PORT", spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    strcpy(port, colon + 1);
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    bool any = strcmp(host, "*") == 0;

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV}, *res, *ai;
    int rc = getaddrinfo(any ? NULL : host, port, &hints, &res);
    if (rc != 0)
        return fail(err, "[tls] listen %s: %s", spec, gai_strerror(rc));
    int fd = -1, e = 0;
    /* The wildcard: one dual-stack IPv6 socket when IPv6 works, else IPv4. */
    for (int pass = any ? 0 : 1; pass < 2 && fd < 0; pass++) {
        for (ai = res; ai && fd < 0; ai = ai->ai_next) {
            if (pass == 0 && ai->ai_family != AF_INET6)
                continue;
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
            if (fd < 0) {
                e = errno;
                continue;
            }
            int one = 1, zero = 0;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (any && ai->ai_family == AF_INET6)
                setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
            if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, TLS_BACKLOG) < 0) {
                e = errno;
                close(fd);
                fd = -1;
            }
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return fail(err, "[tls] listen %s: cannot listen: %s", spec, strerror(e ? e : EADDRNOTAVAIL));
    return fd;
}

/* ------------------------------------------------------------ start, stop */

int tls_start(struct event_base *base, const struct conf *c, const struct http_handler *h,
              char **err)
{
    *err = NULL;
    if (server)
        return fail(err, "[tls]: the TLS listener is already running");
    if (!c->tls_listen || !c->tls_certificate || !c->tls_key || !c->tls_client_ca)
        return fail(err, "[tls] listen: a TLS listener needs listen, certificate, key and client_ca");
    struct tls *t = calloc(1, sizeof *t);
    if (!t)
        return fail(err, "[tls]: out of memory");
    t->ctx = ctx_new(c, err);
    if (!t->ctx) {
        free(t);
        return -1;
    }
    int fd = listen_socket(c->tls_listen, err);
    if (fd < 0) {
        SSL_CTX_free(t->ctx);
        free(t);
        return -1;
    }
    if (http_listen_tls(base, fd, h, t) < 0) {
        close(fd);
        SSL_CTX_free(t->ctx);
        free(t);
        return fail(err, "[tls] listen %s: cannot serve the socket", c->tls_listen);
    }
    server = t;
    if (!c->tls_admin_cn[0] && !c->tls_submit_cn[0])
        log_warn("tls: neither admin_cn nor submit_cn is set: every TLS request gets 403");
    log_info("tls: serving on %s (TLS 1.2+, client certificates from %s)", c->tls_listen,
             c->tls_client_ca);
    return 0;
}

void tls_stop(void)
{
    if (!server)
        return;
    SSL_CTX_free(server->ctx);
    free(server);
    server = NULL;
}

/* ------------------------------------------------------------ connections */

struct bufferevent *tls_bufferevent_new(struct tls *t, struct event_base *base, int fd)
{
    SSL *ssl = SSL_new(t->ctx);
    if (!ssl) {
        close(fd);
        return NULL;
    }
    struct bufferevent *bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                             BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    /* A client that closes without close_notify after its answer is
     * normal (curl, most HTTP clients): an EOF, not an error. */
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

int tls_peer_cn(struct bufferevent *bev, char *buf, size_t len)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    int rc = -1;
    if (!ssl || SSL_get_verify_result(ssl) != X509_V_OK)
        return -1;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    X509 *x = SSL_get1_peer_certificate(ssl);
#else
    X509 *x = SSL_get_peer_certificate(ssl);
#endif
    if (!x)
        return -1;
    X509_NAME *n = X509_get_subject_name(x);
    int i = n ? X509_NAME_get_index_by_NID(n, NID_commonName, -1) : -1;
    if (i >= 0 && X509_NAME_get_index_by_NID(n, NID_commonName, i) < 0) {
        unsigned char *u = NULL;
        int ul = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)));
        if (ul > 0 && (size_t)ul < len && !memchr(u, '\0', (size_t)ul)) {
            memcpy(buf, u, (size_t)ul);
            buf[ul] = '\0';
            rc = 0;
        }
        OPENSSL_free(u);
    }
    X509_free(x);
    return rc;
}

const char *tls_protocol(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    return ssl ? SSL_get_version(ssl) : "?";
}

void tls_error_string(struct bufferevent *bev, char *buf, size_t len)
{
    unsigned long e = bufferevent_get_openssl_error(bev);
    buf[0] = '\0';
    if (e)
        ERR_error_string_n(e, buf, len);
    else
        snprintf(buf, len, "connection closed by the peer");
    ERR_clear_error();
}

void tls_close_notify(struct bufferevent *bev)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    if (ssl && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN))
        SSL_shutdown(ssl);
    ERR_clear_error();
}
