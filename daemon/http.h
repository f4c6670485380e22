/* http.h - HTTP/1.1 connections on the API socket: bufferevents +
 * http-parser, streaming request bodies to the handler as they arrive.
 *
 * A request's life: http.c calls handler.on_headers() once the head is
 * parsed; the handler either answers at once (http_respond*) or accepts a
 * body, which then arrives through on_body(); on_complete() follows the
 * last byte.  Every request ends with exactly one http_respond*() call (or
 * http_req_free() after on_abort()).  When the client goes away before the
 * answer, on_abort() is called and req->conn becomes NULL: the handler may
 * finish its work and then answer into the void (http_respond frees it).
 * A request cut short by http.c itself (too slow: 408; malformed body:
 * 400) is given up the same way: on_abort(), then http.c answers the
 * client directly.
 *
 * Limits (compiled in, see docs/api-limits.md): connections at once, in
 * total and per peer (503 too-many-connections), the head size (431), the
 * head's deadline and the body's minimum rate (408 timeout).
 */
#ifndef COPEES_HTTP_H
#define COPEES_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

struct event_base;
struct http_conn;
struct tls;

struct http_req {
    struct http_conn *conn;      /* NULL once the client went away */
    int method;                  /* enum http_method of http_parser.h */
    char *url;                   /* request target as sent */
    char *path;                  /* decoded path part (no query) */
    char *query;                 /* raw query (after '?'), "" if none */
    /* headers we use */
    char *content_type;
    char *idem_key;
    char *last_event_id;
    bool has_length;
    uint64_t content_length;
    bool chunked;
    bool expect_continue;
    /* peer: SO_PEERCRED on the Unix socket ((uid_t)-1 etc. over TLS) */
    uid_t uid;
    gid_t gid;
    pid_t pid;
    bool tls;                    /* came over the TLS listener */
    char *tls_cn;                /* its verified client certificate's CN; NULL if none */
    /* the handler's own state */
    void *ctx;
    /* Set by a handler that will answer later (a CUPS or disk operation
     * under way): when the client goes away meanwhile, the request is not
     * freed; the handler's answer into the void frees it. */
    bool answer_pending;
    void (*ctx_free)(void *ctx); /* called when the request is freed */
};

struct http_handler {
    /* Head parsed.  Return true to accept a body (on_body/on_complete
     * follow), false when the handler answered already. */
    bool (*on_headers)(struct http_req *req);
    /* A piece of body; return 0 to go on, -1 when the handler answered
     * (an error) and wants no more. */
    int (*on_body)(struct http_req *req, const char *data, size_t len);
    /* The whole body has arrived. */
    void (*on_complete)(struct http_req *req);
    /* The client went away before the answer. */
    void (*on_abort)(struct http_req *req);
};

/* Serve connections accepted on listen_fd (already listening). 0 / -1. */
int http_listen(struct event_base *base, int listen_fd, const struct http_handler *h);
/* The same over TLS: each accepted connection gets a session of t
 * (tls.c) and its requests carry tls and tls_cn.  0 / -1. */
int http_listen_tls(struct event_base *base, int listen_fd, const struct http_handler *h,
                    struct tls *t);
/* Answer requests that arrive from now on with 503; requests under way
 * go on. */
void http_drain(void);
/* Close the listeners and every connection (requests under way are
 * given up through on_abort). */
void http_shutdown(void);
/* Connections open now. */
int http_conn_count(void);

/* Answer: status, content type, body (copied).  Ends the request. */
void http_respond(struct http_req *req, int status, const char *ctype, const char *body,
                  size_t len);
/* Answer with a JSON body (takes the reference to j).  Ends the request. */
void http_respond_json(struct http_req *req, int status, json_t *j);
/* Answer {"error": code, "message": msg}.  Ends the request. */
void http_respond_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Free a request whose client went away (after on_abort). */
void http_req_free(struct http_req *req);
/* Stop/resume reading the request body (backpressure while the handler
 * waits on a worker). */
void http_req_pause(struct http_req *req);
void http_req_resume(struct http_req *req);

/* Serve one already-connected socket (a socketpair in tests and the fuzz
 * target) as if accepted on the Unix listener; fd is owned by http.c from
 * then on.  0 / -1. */
int http_adopt_fd(struct event_base *base, int fd, const struct http_handler *h);

/* Streaming answers (Server-Sent Events).  http_stream_start() ends req's
 * request part: it writes a 200 head with ctype, Cache-Control: no-store,
 * no Content-Length and Connection: close, and gives the connection to the
 * stream (no request or idle deadline; input is read only to notice EOF;
 * the connection caps still count it).  on_close(arg) is called once when
 * the stream ends other than through http_stream_close() (client gone,
 * write timeout, http_shutdown()); the stream is invalid afterwards.
 * Returns NULL when req cannot stream (answered 500). */
struct http_stream;
struct http_stream *http_stream_start(struct http_req *req, const char *ctype,
                                      void (*on_close)(void *arg), void *arg);
/* Queue data (copied).  -1 when the client is too slow (more than 1 MiB
 * would wait unread) or gone: the owner should http_stream_close(). */
int http_stream_write(struct http_stream *s, const char *data, size_t len);
/* Bytes queued and not yet taken by the client. */
size_t http_stream_pending(const struct http_stream *s);
/* End the stream: what is queued is flushed and the connection closed;
 * after a refused write the connection is dropped at once.  Frees s;
 * on_close is not called. */
void http_stream_close(struct http_stream *s);

/* Query parameter name (percent-decoded; '+' stays '+').  Returns a
 * malloc'd string or NULL when absent; *bad set when the encoding is
 * broken. */
char *http_query_get(const char *query, const char *name, bool *bad);
/* Reason phrase for a status code. */
const char *http_status_text(int status);

#endif
