/* http-int.h - what http.c (connections, parsing, limits) shares with
 * http-stream.c (streaming answers).  Not for other modules: they use
 * http.h. */
#ifndef COPEES_HTTP_INT_H
#define COPEES_HTTP_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <http_parser.h>

#define HTTP_WRITE_TIMEOUT 30           /* s to write an answer */

enum conn_state {
    CONN_HANDSHAKE,    /* TLS handshake under way */
    CONN_IDLE,         /* waiting for the first byte of a request */
    CONN_HEAD,         /* reading a request head */
    CONN_BODY,         /* head handled, reading its body */
    CONN_WAITING,      /* request complete, handler working, reading paused */
    CONN_CLOSING,      /* answer queued, linger once it is written */
    CONN_LINGER,       /* answer written, write side shut, discarding input */
    CONN_STREAM,       /* streaming an answer (http_stream_*); input discarded */
};

struct http_conn {
    struct bufferevent *bev;
    struct event *timer;        /* meaning set by conn_set_state() */
    http_parser parser;
    enum conn_state state;
    struct http_req *req;       /* the request being read or handled */
    bool seen;                  /* the handler has seen req (on_headers) */
    bool req_done;              /* its message is complete */
    bool body_wanted;           /* the handler accepted a body */
    bool paused;                /* the handler holds the reading */
    bool in_value;
    bool out_wait;              /* answers pile up unread: next request waits */
    bool headers_done;          /* req's head parsed: what follows is body or trailers */
    bool in_parse;              /* inside http_parser_execute() */
    bool refused;               /* over a cap: answered 503, not served */
    unsigned nreq;              /* requests begun on this connection */
    size_t head_bytes;
    uint64_t body_rx, win_rx;   /* body bytes read; at the window's start */
    char *field, *value;        /* header being parsed */
    struct http_stream *stream; /* CONN_STREAM: its stream */
    /* peer */
    bool tcp, tls;
    char *tls_cn;               /* verified client certificate's CN */
    struct sockaddr_storage addr;
    uid_t uid;
    gid_t gid;
    pid_t pid;
    struct http_conn *prev, *next;
};

/* Bytes of answers not yet written to c's client. */
size_t conn_out_len(const struct http_conn *c);
/* The one place where a connection changes state. */
void conn_set_state(struct http_conn *c, enum conn_state s);
/* Drop a connection; a request still under way is given up (on_abort). */
void conn_free(struct http_conn *c);
/* http-stream.c: c is being freed; end its stream, telling the owner
 * unless the owner closed it. */
void stream_conn_gone(struct http_conn *c);

#endif
