/* http.c - HTTP/1.1 on the API socket (see http.h).
 *
 * Design notes: evhttp would buffer each request body in memory, and an
 * upload may be hundreds of megabytes, so connections are bufferevents
 * parsed by http-parser, which hands the body over piece by piece.  A
 * connection is an explicit state machine (struct http_conn.state) changed
 * in one function, conn_set_state().  One request is handled at a time per
 * connection: when the handler answers asynchronously (an upload waiting
 * for its commit and preflight) the parser is paused and reading stops;
 * the answer resumes it, so pipelined requests are answered in order.
 * The input buffer is capped by a read watermark, so a fast client cannot
 * make the daemon buffer more than HTTP_READ_MAX bytes of it.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>

#include "http.h"
#include "log.h"

#define HTTP_HEADER_MAX (16 * 1024)     /* request line + headers */
#define HTTP_READ_MAX (256 * 1024)      /* input buffered per connection */
#define HTTP_IDLE_TIMEOUT 60            /* seconds without a byte */

enum conn_state {
    CONN_READING,      /* parsing a request (head or body) */
    CONN_WAITING,      /* request complete, handler working, reading paused */
    CONN_CLOSING,      /* answer queued, close once it is written */
};

struct http_conn {
    struct bufferevent *bev;
    http_parser parser;
    enum conn_state state;
    struct http_req *req;       /* the request being read or handled */
    bool req_done;              /* its message is complete */
    bool body_wanted;           /* the handler accepted a body */
    size_t head_bytes;
    char *field, *value;        /* header being parsed */
    bool in_value;
    bool in_parse;              /* inside http_parser_execute() */
    uid_t uid;
    gid_t gid;
    pid_t pid;
    struct http_conn *prev, *next;
};

static const struct http_handler *handler;
static struct evconnlistener *listener;
static struct http_conn *conns;
static int nconns;
static bool draining;

static void conn_free(struct http_conn *c);
static void conn_parse(struct http_conn *c);

/* ------------------------------------------------------------ requests */

void http_req_free(struct http_req *req)
{
    if (!req)
        return;
    if (req->ctx_free)
        req->ctx_free(req->ctx);
    free(req->url);
    free(req->path);
    free(req->query);
    free(req->content_type);
    free(req->idem_key);
    free(req->last_event_id);
    free(req);
}

static char *str_append(char *s, const char *at, size_t len)
{
    size_t old = s ? strlen(s) : 0;
    char *n = realloc(s, old + len + 1);
    if (!n)
        return s;
    memcpy(n + old, at, len);
    n[old + len] = '\0';
    return n;
}

static void header_commit(struct http_conn *c)
{
    struct http_req *r = c->req;
    if (r && c->field && c->value) {
        if (strcasecmp(c->field, "Content-Type") == 0) {
            free(r->content_type);
            r->content_type = strdup(c->value);
        } else if (strcasecmp(c->field, "Idempotency-Key") == 0) {
            free(r->idem_key);
            r->idem_key = strdup(c->value);
        } else if (strcasecmp(c->field, "Last-Event-ID") == 0) {
            free(r->last_event_id);
            r->last_event_id = strdup(c->value);
        } else if (strcasecmp(c->field, "Expect") == 0) {
            r->expect_continue = strcasecmp(c->value, "100-continue") == 0;
        }
    }
    free(c->field);
    free(c->value);
    c->field = c->value = NULL;
    c->in_value = false;
}

/* ------------------------------------------------------------ state */

static void conn_set_state(struct http_conn *c, enum conn_state s)
{
    c->state = s;
    switch (s) {
    case CONN_READING:
        bufferevent_enable(c->bev, EV_READ);
        break;
    case CONN_WAITING:
        bufferevent_disable(c->bev, EV_READ);
        break;
    case CONN_CLOSING:
        bufferevent_disable(c->bev, EV_READ);
        /* Inside the parser the connection must outlive the call:
         * conn_parse() frees it on the way out. */
        if (!c->in_parse && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
            conn_free(c);
        break;
    }
}

/* ------------------------------------------------------------ answers */

const char *http_status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

void http_respond(struct http_req *req, int status, const char *ctype, const char *body,
                  size_t len)
{
    struct http_conn *c = req->conn;
    if (!c) {                      /* the client went away */
        http_req_free(req);
        return;
    }
    /* Close unless this request's message was read whole and the client
     * keeps the connection alive. */
    bool keep = c->req_done && http_should_keep_alive(&c->parser) && !draining;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: %s\r\n\r\n",
                        status, http_status_text(status), ctype, len,
                        keep ? "keep-alive" : "close");
    if (len)
        evbuffer_add(out, body, len);
    c->req = NULL;
    req->conn = NULL;
    http_req_free(req);
    if (!keep) {
        conn_set_state(c, CONN_CLOSING);
        return;
    }
    if (c->state == CONN_WAITING) {   /* go on with the next request */
        c->req_done = false;
        http_parser_pause(&c->parser, 0);
        conn_set_state(c, CONN_READING);
        if (!c->in_parse)             /* answered later, from a callback of ours */
            conn_parse(c);
    }
}

void http_respond_json(struct http_req *req, int status, json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s) {
        http_respond(req, 500, "application/json",
                     "{\"error\":\"internal\",\"message\":\"out of memory\"}\n", 46);
        return;
    }
    size_t n = strlen(s);
    char *body = realloc(s, n + 2);
    if (body) {
        body[n++] = '\n';
        s = body;
    }
    http_respond(req, status, "application/json", s, n);
    free(s);
}

void http_respond_error(struct http_req *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_respond_json(req, status, json_pack("{s:s, s:s}", "error", code, "message", msg));
}

void http_req_pause(struct http_req *req)
{
    if (req->conn)
        bufferevent_disable(req->conn->bev, EV_READ);
}

void http_req_resume(struct http_req *req)
{
    if (req->conn && req->conn->state == CONN_READING)
        bufferevent_enable(req->conn->bev, EV_READ);
}

/* ------------------------------------------------------------ parser callbacks */

static int cb_message_begin(http_parser *p)
{
    struct http_conn *c = p->data;
    struct http_req *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    r->conn = c;
    r->uid = c->uid;
    r->gid = c->gid;
    r->pid = c->pid;
    c->req = r;
    c->req_done = false;
    c->body_wanted = false;
    c->head_bytes = 0;
    return 0;
}

static int head_limit(struct http_conn *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > HTTP_HEADER_MAX) {
        if (c->req)
            http_respond_error(c->req, 431, "headers-too-large",
                               "The request head is larger than %d bytes.", HTTP_HEADER_MAX);
        return -1;
    }
    return 0;
}

static int cb_url(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (head_limit(c, len) < 0 || !c->req)
        return -1;
    c->req->url = str_append(c->req->url, at, len);
    return 0;
}

static int cb_header_field(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (head_limit(c, len) < 0)
        return -1;
    if (c->in_value)
        header_commit(c);
    c->field = str_append(c->field, at, len);
    return 0;
}

static int cb_header_value(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (head_limit(c, len) < 0)
        return -1;
    c->in_value = true;
    c->value = str_append(c->value, at, len);
    return 0;
}

static int parse_target(struct http_req *r)
{
    struct http_parser_url u;
    if (!r->url)
        return -1;
    http_parser_url_init(&u);
    if (http_parser_parse_url(r->url, strlen(r->url), 0, &u) != 0 || !(u.field_set & (1 << UF_PATH)))
        return -1;
    r->path = strndup(r->url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
    if (u.field_set & (1 << UF_QUERY))
        r->query = strndup(r->url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
    else
        r->query = strdup("");
    return r->path && r->query ? 0 : -1;
}

static int cb_headers_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    struct http_req *r = c->req;
    header_commit(c);
    if (!r)
        return -1;
    r->method = p->method;
    r->chunked = (p->flags & F_CHUNKED) != 0;
    r->has_length = (p->flags & F_CONTENTLENGTH) != 0;
    r->content_length = r->has_length ? p->content_length : 0;
    if (parse_target(r) < 0) {
        http_respond_error(r, 400, "bad-request", "The request target cannot be parsed.");
        return 0;
    }
    if (draining) {
        http_respond_error(r, 503, "shutting-down", "The spooler is shutting down; retry later.");
        return 0;
    }
    c->body_wanted = handler->on_headers(r);
    if (c->body_wanted && c->req && r->expect_continue)
        evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    return 0;
}

static int cb_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (!c->req || !c->body_wanted)
        return c->state == CONN_CLOSING ? -1 : 0;
    if (handler->on_body(c->req, at, len) < 0)
        return -1;
    return 0;
}

static int cb_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->req_done = true;
    if (!c->req)                   /* answered already */
        return 0;
    /* Stop parsing until the handler answers (maybe right away). */
    http_parser_pause(p, 1);
    conn_set_state(c, CONN_WAITING);
    if (c->body_wanted)
        handler->on_complete(c->req);
    else                           /* a bodiless request it did not answer: a bug */
        http_respond_error(c->req, 500, "internal", "The request was not answered.");
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = cb_message_begin,
    .on_url = cb_url,
    .on_header_field = cb_header_field,
    .on_header_value = cb_header_value,
    .on_headers_complete = cb_headers_complete,
    .on_body = cb_body,
    .on_message_complete = cb_message_complete,
};

/* ------------------------------------------------------------ connections */

/* Feed buffered input to the parser until it pauses, errs or runs dry. */
static void conn_parse(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->state == CONN_READING && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        c->in_parse = true;
        size_t n = http_parser_execute(&c->parser, &settings, v.iov_base, v.iov_len);
        c->in_parse = false;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->state == CONN_CLOSING) {        /* answered with close */
            if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
                conn_free(c);
            return;
        }
        evbuffer_drain(in, n);
        if (e == HPE_PAUSED)
            return;
        if (e != HPE_OK) {
            log_debug("http: bad request from pid %d: %s", (int)c->pid, http_errno_name(e));
            if (c->req && !c->req_done) {
                http_respond_error(c->req, 400, "bad-request", "Malformed HTTP request (%s).",
                                   http_errno_description(e));
            } else {
                conn_set_state(c, CONN_CLOSING);
            }
            return;
        }
    }
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn_parse(arg);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    if (c->state == CONN_CLOSING && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;
    if (what & BEV_EVENT_TIMEOUT && c->req && !c->req_done && c->state == CONN_READING) {
        http_respond_error(c->req, 408, "timeout", "The request was not received in time.");
        return;
    }
    conn_free(c);
}

/* Drop a connection; a request still under way is told (on_abort). */
static void conn_free(struct http_conn *c)
{
    struct http_req *r = c->req;
    if (r) {
        c->req = NULL;
        r->conn = NULL;
        handler->on_abort(r);
    }
    header_commit(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    nconns--;
    bufferevent_free(c->bev);
    free(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct event_base *base = evconnlistener_get_base(l);
    struct http_conn *c = calloc(1, sizeof *c);
    struct ucred cred;
    socklen_t cl = sizeof cred;

    if (!c) {
        close(fd);
        return;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->uid = cred.uid;
        c->gid = cred.gid;
        c->pid = cred.pid;
    } else {
        c->uid = (uid_t)-1;
        c->gid = (gid_t)-1;
    }
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        close(fd);
        free(c);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_READ_MAX);
    struct timeval tv = {HTTP_IDLE_TIMEOUT, 0};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    nconns++;
    conn_set_state(c, CONN_READING);
}

static void accept_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    evconnlistener_enable(arg);
}

static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    int e = EVUTIL_SOCKET_ERROR();
    log_err("http: accept failed: %s", evutil_socket_error_to_string(e));
    if (e == EMFILE || e == ENFILE) {
        /* Out of descriptors: back off for a moment instead of spinning. */
        evconnlistener_disable(l);
        struct timeval tv = {0, 200000};
        event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, accept_resume_cb, l, &tv);
    }
}

int http_listen(struct event_base *base, int listen_fd, const struct http_handler *h)
{
    handler = h;
    evutil_make_socket_nonblocking(listen_fd);
    listener = evconnlistener_new(base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                  -1, listen_fd);
    if (!listener)
        return -1;
    evconnlistener_set_error_cb(listener, accept_error_cb);
    return 0;
}

void http_drain(void)
{
    draining = true;
}

void http_shutdown(void)
{
    if (listener) {
        evconnlistener_free(listener);
        listener = NULL;
    }
    for (struct http_conn *c = conns, *n; c; c = n) {
        n = c->next;
        conn_free(c);
    }
}

int http_conn_count(void)
{
    return nconns;
}

/* ------------------------------------------------------------ query strings */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = tolower(ch);
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

char *http_query_get(const char *query, const char *name, bool *bad)
{
    size_t nl = strlen(name);
    const char *p = query;
    *bad = false;
    while (p && *p) {
        const char *amp = strchr(p, '&');
        size_t seg = amp ? (size_t)(amp - p) : strlen(p);
        if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = seg - nl - 1;
            char *out = malloc(vl + 1), *o = out;
            if (!out)
                return NULL;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] == '%') {
                    int h, l;
                    if (i + 2 >= vl) {
                        *bad = true;
                        free(out);
                        return NULL;
                    }
                    h = hexval((unsigned char)v[i + 1]);
                    l = hexval((unsigned char)v[i + 2]);
                    if (h < 0 || l < 0 || (h == 0 && l == 0)) {
                        *bad = true;
                        free(out);
                        return NULL;
                    }
                    *o++ = (char)(h * 16 + l);
                    i += 2;
                } else {
                    *o++ = v[i];
                }
            }
            *o = '\0';
            return out;
        }
        if (seg == nl && strncmp(p, name, nl) == 0)
            return strdup("");
        p = amp ? amp + 1 : NULL;
    }
    return NULL;
}
