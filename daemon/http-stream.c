/* http-stream.c - streaming answers (Server-Sent Events) on an API
 * connection (see http.h, http_stream_*).
 *
 * Design notes: a streaming answer takes over its connection once its
 * request is complete: the head goes out without Content-Length and with
 * Connection: close, the parser stays paused (anything pipelined behind
 * is discarded), reading goes on only to notice the client's EOF, and
 * the request/idle deadlines are off.  The owner writes through
 * http_stream_write(), which refuses (-1) once more than
 * HTTP_STREAM_OUT_MAX bytes would wait in the output buffer: the owner
 * then drops the subscriber with http_stream_close(), which frees the
 * connection at once instead of flushing.  A stream that does not
 * overflow but whose client reads nothing for HTTP_WRITE_TIMEOUT is ended
 * by the bufferevent's write timeout.  The connection still counts
 * against the connection caps.
 */
#include "config.h"

#include <stdlib.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "http.h"
#include "http-int.h"

#define HTTP_STREAM_OUT_MAX (1024 * 1024) /* output a streaming client may leave unread */

struct http_stream {
    struct http_conn *conn;
    bool overflow;                  /* a write was refused: drop, don't flush */
    void (*on_close)(void *arg);
    void *arg;
};

struct http_stream *http_stream_start(struct http_req *req, const char *ctype,
                                      void (*on_close)(void *arg), void *arg)
{
    struct http_conn *c = req->conn;
    struct http_stream *s;

    if (!c || c->req != req || !c->req_done || c->stream) {
        http_respond_error(req, 500, "internal", "This request cannot stream.");
        return NULL;
    }
    if (!(s = calloc(1, sizeof *s))) {
        http_respond_error(req, 500, "internal", "Out of memory.");
        return NULL;
    }
    s->conn = c;
    s->on_close = on_close;
    s->arg = arg;
    evbuffer_add_printf(bufferevent_get_output(c->bev),
                        "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nCache-Control: no-store\r\n"
                        "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n", ctype);
    c->req = NULL;
    req->conn = NULL;
    http_req_free(req);
    c->paused = false;
    c->stream = s;
    conn_set_state(c, CONN_STREAM);
    return s;
}

int http_stream_write(struct http_stream *s, const char *data, size_t len)
{
    struct http_conn *c = s ? s->conn : NULL;
    if (!c || s->overflow)
        return -1;
    if (conn_out_len(c) + len > HTTP_STREAM_OUT_MAX) {
        s->overflow = true;
        return -1;
    }
    return evbuffer_add(bufferevent_get_output(c->bev), data, len) == 0 ? 0 : -1;
}

size_t http_stream_pending(const struct http_stream *s)
{
    return s && s->conn ? conn_out_len(s->conn) : 0;
}

void http_stream_close(struct http_stream *s)
{
    if (!s)
        return;
    struct http_conn *c = s->conn;
    s->on_close = NULL;            /* the owner knows */
    if (!c) {
        free(s);
        return;
    }
    if (s->overflow) {             /* too slow: drop without flushing */
        conn_free(c);              /* frees s through stream_conn_gone() */
        return;
    }
    c->stream = NULL;
    free(s);
    conn_set_state(c, CONN_CLOSING);   /* flush what is queued, then close */
}

void stream_conn_gone(struct http_conn *c)
{
    struct http_stream *s = c->stream;
    if (!s)
        return;
    c->stream = NULL;
    s->conn = NULL;
    if (s->on_close)
        s->on_close(s->arg);
    free(s);
}
