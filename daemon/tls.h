/* tls.h - the optional TLS listener ([tls] listen): the server context
 * built from the config, the listening socket, and the TLS side of one
 * connection (its bufferevent, its client certificate's CN).  The only
 * door to libssl; http.c keeps the connections.
 *
 * TLS 1.2 or later only; a client certificate signed by [tls] client_ca is
 * required (a client without one fails the handshake).  The CN is mapped
 * to a role by api.c ([tls] admin_cn, submit_cn).  Certificates are read
 * once at start: SIGHUP does not reload them.
 */
#ifndef COPEES_TLS_H
#define COPEES_TLS_H

#include <stddef.h>

struct bufferevent;
struct conf;
struct event_base;
struct http_handler;
struct tls;

/* Build the server context from c's [tls] keys, bind c->tls_listen and
 * serve the API there through http.c.  0, or -1 with *err set (caller
 * frees) naming the key and what is wrong. */
int tls_start(struct event_base *base, const struct conf *c, const struct http_handler *h,
              char **err);
/* Release the server context (after http_shutdown() closed the listener
 * and the connections).  Safe when tls_start() was never called. */
void tls_stop(void);

/* A server-side TLS bufferevent on the accepted socket fd (closed on
 * free), handshake pending.  NULL on failure (fd is then closed). */
struct bufferevent *tls_bufferevent_new(struct tls *t, struct event_base *base, int fd);
/* The verified client certificate's subject CN (UTF-8) into buf.  0, or
 * -1 when there is no verified certificate, no CN, more than one CN, or
 * it does not fit. */
int tls_peer_cn(struct bufferevent *bev, char *buf, size_t len);
/* The negotiated protocol name ("TLSv1.3"), for logs (borrowed). */
const char *tls_protocol(struct bufferevent *bev);
/* Why the handshake or the session failed, for logs, into buf. */
void tls_error_string(struct bufferevent *bev, char *buf, size_t len);
/* Send close_notify (best effort; the answer is already written). */
void tls_close_notify(struct bufferevent *bev);

#endif
