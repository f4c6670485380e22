/* http.c - HTTP/1.1 on the API's listeners (see http.h).
 *
 * Design notes: evhttp would buffer each request body in memory, and an
 * upload may be hundreds of megabytes, so connections are bufferevents
 * parsed by http-parser, which hands the body over piece by piece.  A
 * connection is an explicit state machine (struct http_conn.state) changed
 * in one function, conn_set_state(), which also sets what reading and the
 * connection's one timer mean in that state.  One request is handled at a
 * time per connection: when the handler answers asynchronously (an upload
 * waiting for its commit and preflight) the parser is paused and reading
 * stops; the answer resumes it, so pipelined requests are answered in
 * order.  The input buffer is capped by a read watermark, so a fast client
 * cannot make the daemon buffer more than HTTP_READ_MAX bytes of it.  The
 * Unix socket and the TLS listener (tls.c) feed the same machine; a TLS
 * connection first passes its handshake (CONN_HANDSHAKE).
 *
 * Limits and fairness.  Nothing here blocks, so a slow client costs a
 * descriptor and its buffers, never the loop's time; the limits bound how
 * many of those there are and how long each is held:
 *   - a new connection must finish its TLS handshake (if any) and send the
 *     first byte of a request within HTTP_HEAD_TIMEOUT; a kept-alive one
 *     may wait HTTP_IDLE_TIMEOUT for its next request; both end silently.
 *   - a request head must be whole HTTP_HEAD_TIMEOUT after its first byte,
 *     whatever the pace of its bytes (408): dripping a byte just inside
 *     any idle timeout gains nothing.
 *   - a body must bring HTTP_MIN_RATE bytes/s over every HTTP_RATE_WINDOW
 *     seconds, each window judged on its own (408): a fast start earns no
 *     credit for a later stall.  The clock stops while the daemon holds
 *     the reading itself (handler backpressure) and once the body is whole.
 *   - an answer that closes the connection must be written within
 *     HTTP_WRITE_TIMEOUT; then the connection lingers (write side shut,
 *     input discarded) up to HTTP_LINGER_TIMEOUT, so the client reads the
 *     answer instead of a reset from unread input.
 *   - connections are capped in total (HTTP_MAX_CONNS) and per peer
 *     (HTTP_MAX_CONNS_PER_PEER: a uid on the Unix socket, a client address
 *     over TLS), so one local user or one host cannot take every slot.
 *     Over a cap a connection is answered 503 too-many-connections at once
 *     and closed; HTTP_MAX_REFUSING such answers at most are under way,
 *     beyond that a connection is closed at accept.
 * A client that half-closes once its request is sent still gets its
 * answer: its EOF, seen with the answer still unwritten, closes the
 * connection after the write (CONN_CLOSING) instead of at once.
 * A request that http.c cuts short after its handler saw it (a slow or
 * malformed body) is given up through on_abort() first, so that an upload
 * under way is discarded, then answered directly on the connection.
 * Refusals, cut-offs and failed handshakes are logged at most once per
 * HTTP_LOG_EVERY seconds each, with the count of those left unlogged.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <http_parser.h>

#include "http.h"
#include "http-int.h"
#include "log.h"
#include "tls.h"
#include "util.h"

#define HTTP_HEADER_MAX (16 * 1024)     /* request line + headers (431) */
#define HTTP_READ_MAX (256 * 1024)      /* input buffered per connection */
#define HTTP_READ_CHUNK (64 * 1024)     /* libevent's own reads (it caps them at 4 KiB
                                         * anyway: conn_read_more) */
#define LIBEVENT_READ_MAX 4096          /* that cap (EVBUFFER_MAX_READ in 2.1) */
#define HTTP_MAX_CONNS 512              /* connections served at once (503) */
#define HTTP_MAX_CONNS_PER_PEER 128     /* ... per uid, or per client address over TLS */
#define HTTP_MAX_REFUSING 64            /* 503 answers under way; beyond: closed at accept */
#define HTTP_HEAD_TIMEOUT 10            /* s for a request head from its first byte (408) */
#define HTTP_IDLE_TIMEOUT 30            /* s a kept-alive connection may wait */
#define HTTP_RATE_WINDOW 10             /* s over which a body's rate is judged */
#define HTTP_MIN_RATE (4 * 1024)        /* bytes/s a body must keep up (408) */
#define HTTP_LINGER_TIMEOUT 2           /* s to discard input after a closing answer */
#define HTTP_LOG_EVERY 10               /* s between two log lines of one kind */
#define HTTP_OUT_MAX (256 * 1024)     /* answers queued before the next request is read */
#define HTTP_LISTENERS_MAX 2            /* the Unix socket and the TLS listener */

struct http_listener {
    struct evconnlistener *evl;
    struct tls *tls;            /* NULL: plain (the Unix socket) */
};

/* A kind of log line that a flood could repeat: one per HTTP_LOG_EVERY. */
struct log_limit {
    int64_t last_ms;
    bool used;
    unsigned quiet;             /* suppressed since the last line */
};

static const struct http_handler *handler;
static struct http_listener listeners[HTTP_LISTENERS_MAX];
static int nlisteners;
static struct http_conn *conns;
static int nconns;              /* open, refused ones included */
static int nrefusing;           /* open and refused */
static bool draining;
static struct log_limit ll_refuse, ll_timeout, ll_tls;

static void conn_parse(struct http_conn *c);

/* ------------------------------------------------------------ helpers */

/* Whether a line of kind ll may be logged now; if so, buf gets what to
 * append to it: "" or " (N more not logged)" for those suppressed since. */
static bool log_limited(struct log_limit *ll, char *buf, size_t len)
{
    int64_t now = mono_ms();
    if (ll->used && now - ll->last_ms < HTTP_LOG_EVERY * 1000) {
        ll->quiet++;
        return false;
    }
    if (ll->quiet)
        snprintf(buf, len, " (%u more not logged)", ll->quiet);
    else
        buf[0] = '\0';
    ll->quiet = 0;
    ll->used = true;
    ll->last_ms = now;
    return true;
}

/* The peer for log lines, into buf: "uid U pid P" or "ADDR [CN name]". */
static const char *conn_peer(const struct http_conn *c, char *buf, size_t len)
{
    if (!c->tcp) {
        snprintf(buf, len, "uid %d pid %d", (int)c->uid, (int)c->pid);
        return buf;
    }
    char a[INET6_ADDRSTRLEN] = "?";
    const struct sockaddr *sa = (const struct sockaddr *)&c->addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof a);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof a);
    snprintf(buf, len, "%s%s%s", a, c->tls_cn ? " CN " : "", c->tls_cn ? c->tls_cn : "");
    return buf;
}

/* Whether a and b count as one peer for HTTP_MAX_CONNS_PER_PEER. */
static bool same_peer(const struct http_conn *a, const struct http_conn *b)
{
    if (a->tcp != b->tcp)
        return false;
    if (!a->tcp)
        return a->uid == b->uid;
    const struct sockaddr *x = (const struct sockaddr *)&a->addr;
    const struct sockaddr *y = (const struct sockaddr *)&b->addr;
    if (x->sa_family != y->sa_family)
        return false;
    if (x->sa_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)x)->sin_addr,
                      &((const struct sockaddr_in *)y)->sin_addr, sizeof(struct in_addr)) == 0;
    if (x->sa_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
                      &((const struct sockaddr_in6 *)y)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

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
    free(req->tls_cn);
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

/* Let go of c's request without answering it: through on_abort() when the
 * handler has seen it (it may hold an upload), else freed here. */
static void conn_drop_req(struct http_conn *c)
{
    struct http_req *r = c->req;
    if (!r)
        return;
    c->req = NULL;
    r->conn = NULL;
    if (c->seen)
        handler->on_abort(r);
    else
        http_req_free(r);
}

/* ------------------------------------------------------------ state */

/* Arm c's timer for seconds from now; 0 disarms it. */
static void conn_timer(struct http_conn *c, int seconds)
{
    if (seconds > 0) {
        struct timeval tv = {seconds, 0};
        evtimer_add(c->timer, &tv);
    } else {
        evtimer_del(c->timer);
    }
}

/* Whether c reads requests now (not handshaking, waiting, closing or
 * streaming). */
static bool conn_reading(const struct http_conn *c)
{
    return c->state == CONN_IDLE || c->state == CONN_HEAD || c->state == CONN_BODY;
}

/* Bytes of answers not yet written to c's client. */
size_t conn_out_len(const struct http_conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* The one place where a connection changes state. */
void conn_set_state(struct http_conn *c, enum conn_state s)
{
    c->state = s;
    switch (s) {
    case CONN_HANDSHAKE:
        /* tls.c's bufferevent drives the handshake; accept armed the
         * first request's deadline. */
        break;
    case CONN_IDLE:
        if (!c->paused)
            bufferevent_enable(c->bev, EV_READ);
        if (c->nreq > 0)           /* else the deadline from accept runs on */
            conn_timer(c, HTTP_IDLE_TIMEOUT);
        break;
    case CONN_HEAD:
        c->head_bytes = 0;
        conn_timer(c, HTTP_HEAD_TIMEOUT);
        break;
    case CONN_BODY:
        c->win_rx = c->body_rx;
        conn_timer(c, c->paused ? 0 : HTTP_RATE_WINDOW);
        break;
    case CONN_WAITING:
        bufferevent_disable(c->bev, EV_READ);
        conn_timer(c, 0);
        break;
    case CONN_CLOSING:
        bufferevent_disable(c->bev, EV_READ);
        conn_timer(c, HTTP_WRITE_TIMEOUT);
        /* Inside the parser, conn_parse() moves on once it returns. */
        if (!c->in_parse && conn_out_len(c) == 0)
            conn_set_state(c, CONN_LINGER);
        break;
    case CONN_LINGER:
        if (c->tls)
            tls_close_notify(c->bev);
        else
            shutdown(bufferevent_getfd(c->bev), SHUT_WR);
        evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
        bufferevent_enable(c->bev, EV_READ);
        conn_timer(c, HTTP_LINGER_TIMEOUT);
        break;
    case CONN_STREAM:
        /* No request or idle deadline: the stream's owner writes (at least
         * a keep-alive) and a write that makes no progress for
         * HTTP_WRITE_TIMEOUT ends the connection (bufferevent timeout).
         * Reading goes on only to notice the client's EOF. */
        conn_timer(c, 0);
        evbuffer_drain(bufferevent_get_input(c->bev), evbuffer_get_length(bufferevent_get_input(c->bev)));
        bufferevent_enable(c->bev, EV_READ);
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

/* Queue an answer on c (its head only when with_body is false: the
 * answer to a HEAD request, whose Content-Length is the GET's). */
static void conn_write_answer(struct http_conn *c, int status, const char *ctype, const char *body,
                              size_t len, bool keep, bool with_body)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                        "Cache-Control: no-store\r\nConnection: %s\r\n\r\n",
                        status, http_status_text(status), ctype, len,
                        keep ? "keep-alive" : "close");
    if (len && with_body)
        evbuffer_add(out, body, len);
}

/* {"error": code, "message": msg} and a newline (caller frees), or NULL. */
static char *error_text(const char *code, const char *msg, size_t *len)
{
    json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n++] = '\n';
    t[n] = '\0';
    *len = n;
    return t;
}

/* Cut c short: give up its request (if any), answer the error on the
 * connection and close it. */
static void conn_fail(struct http_conn *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void conn_fail(struct http_conn *c, int status, const char *code, const char *fmt, ...)
{
    char msg[256];
    size_t len = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    conn_drop_req(c);
    char *body = error_text(code, msg, &len);
    conn_write_answer(c, status, "application/json", body ? body : "", body ? len : 0, false,
                      c->parser.method != HTTP_HEAD);
    free(body);
    conn_set_state(c, CONN_CLOSING);
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
    conn_write_answer(c, status, ctype, body, len, keep, req->method != HTTP_HEAD);
    c->req = NULL;
    req->conn = NULL;
    http_req_free(req);
    c->paused = false;
    if (!keep) {
        conn_set_state(c, CONN_CLOSING);
        return;
    }
    if (c->state == CONN_WAITING) {   /* go on with the next request */
        c->req_done = false;
        if (conn_out_len(c) > HTTP_OUT_MAX) {   /* not reading its answers: wait (write cb) */
            c->out_wait = true;
            return;
        }
        http_parser_pause(&c->parser, 0);
        conn_set_state(c, CONN_IDLE);
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
    struct http_conn *c = req->conn;
    if (!c)
        return;
    c->paused = true;
    bufferevent_disable(c->bev, EV_READ);
    if (c->state == CONN_BODY)     /* our hold is not the client's slowness */
        conn_timer(c, 0);
}

void http_req_resume(struct http_req *req)
{
    struct http_conn *c = req->conn;
    if (!c || !c->paused)
        return;
    c->paused = false;
    if (!conn_reading(c))
        return;
    bufferevent_enable(c->bev, EV_READ);
    if (c->state == CONN_BODY)     /* a fresh window */
        conn_set_state(c, CONN_BODY);
    if (!c->in_parse)
        conn_parse(c);
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
    r->tls = c->tls;
    if (c->tls_cn && !(r->tls_cn = strdup(c->tls_cn))) {
        free(r);
        return -1;
    }
    c->req = r;
    c->seen = false;
    c->req_done = false;
    c->body_wanted = false;
    c->headers_done = false;
    c->nreq++;
    conn_set_state(c, CONN_HEAD);
    return 0;
}

static int head_limit(struct http_conn *c, size_t len)
{
    c->head_bytes += len;
    if (c->head_bytes > HTTP_HEADER_MAX) {
        if (c->seen && c->req)     /* trailers: the handler holds the request */
            conn_fail(c, 431, "headers-too-large", "The request head is larger than %d bytes.",
                      HTTP_HEADER_MAX);
        else if (c->req)
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
    if (c->headers_done)           /* a trailer: ignored */
        return 0;
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
    if (c->headers_done)
        return 0;
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
    c->headers_done = true;
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
    c->seen = true;
    c->body_wanted = handler->on_headers(r);
    if (c->body_wanted && c->req == r) {
        if (r->expect_continue)
            evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
        conn_set_state(c, CONN_BODY);
    }
    return 0;
}

static int cb_body(http_parser *p, const char *at, size_t len)
{
    struct http_conn *c = p->data;
    if (!c->req || !c->body_wanted)
        return c->state == CONN_CLOSING ? -1 : 0;
    c->body_rx += len;
    if (handler->on_body(c->req, at, len) < 0)
        return -1;
    return 0;
}

static int cb_message_complete(http_parser *p)
{
    struct http_conn *c = p->data;
    c->req_done = true;
    if (!c->req)                   /* answered already (with close): parse no further */
        return c->state == CONN_CLOSING ? -1 : 0;
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
    while (conn_reading(c) && !c->paused && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        c->in_parse = true;
        size_t n = http_parser_execute(&c->parser, &settings, v.iov_base, v.iov_len);
        c->in_parse = false;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (c->state == CONN_CLOSING) {        /* answered with close */
            if (conn_out_len(c) == 0)
                conn_set_state(c, CONN_LINGER);
            return;
        }
        evbuffer_drain(in, n);
        if (e == HPE_PAUSED)
            return;
        if (e != HPE_OK) {
            char peer[160];
            log_debug("http: bad request from %s: %s", conn_peer(c, peer, sizeof peer),
                      http_errno_name(e));
            conn_fail(c, 400, "bad-request", "Malformed HTTP request (%s).",
                      http_errno_description(e));
            return;
        }
    }
}

/* Log a cut-off (rate-limited). */
static void note_timeout(const struct http_conn *c, const char *what)
{
    char peer[160], more[48];
    if (log_limited(&ll_timeout, more, sizeof more))
        log_info("http: %s: %s; cut off with 408%s", conn_peer(c, peer, sizeof peer), what, more);
}

static void conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct http_conn *c = arg;
    char peer[160];
    switch (c->state) {
    case CONN_HANDSHAKE:
        log_debug("http: %s: no TLS handshake within %d s", conn_peer(c, peer, sizeof peer),
                  HTTP_HEAD_TIMEOUT);
        conn_free(c);
        return;
    case CONN_IDLE:
        log_debug("http: %s: idle, closed", conn_peer(c, peer, sizeof peer));
        conn_free(c);
        return;
    case CONN_HEAD:
        note_timeout(c, "request head not whole in time");
        conn_fail(c, 408, "timeout", "The request head did not arrive within %d s.",
                  HTTP_HEAD_TIMEOUT);
        return;
    case CONN_BODY:
        if (c->body_rx - c->win_rx >= (uint64_t)HTTP_MIN_RATE * HTTP_RATE_WINDOW) {
            conn_set_state(c, CONN_BODY);      /* the next window */
            return;
        }
        note_timeout(c, "request body too slow");
        conn_fail(c, 408, "timeout", "The request body arrived slower than %d bytes/s.",
                  HTTP_MIN_RATE);
        return;
    case CONN_WAITING:
        return;
    case CONN_CLOSING:
    case CONN_LINGER:
        conn_free(c);
        return;
    case CONN_STREAM:
        return;
    }
}

/* libevent 2.1 reads at most 4 KiB per wake-up whatever the connection's
 * max single read (EVBUFFER_MAX_READ): a 200 MiB upload took 51,200
 * wake-ups, each an epoll_wait, a FIONREAD ioctl and a readv.  On a plain
 * socket, after libevent's read, one readv of our own takes what else the
 * socket holds, up to the input cap (HTTP_READ_MAX), into the same
 * buffer.  Only when libevent's read was a full 4 KiB: a shorter one
 * emptied the socket, and a small request (a GET, a health probe) would
 * pay a readv that finds nothing.  Nothing else changes: an empty socket (EAGAIN), its end or an
 * error are left for libevent's next read, which reports them as before;
 * the input cap and its watermark still hold; a TLS connection's bytes
 * are OpenSSL's to read. */
static void conn_read_more(struct http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t have = evbuffer_get_length(in);
    if (c->tls || have < LIBEVENT_READ_MAX || have >= HTTP_READ_MAX || !conn_reading(c) ||
        c->paused)
        return;
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    /* a socket bufferevent keeps its input's end frozen between its own
     * reads; thawed for this one as libevent thaws it for its own */
    evbuffer_unfreeze(in, 0);
    int n = evbuffer_reserve_space(in, (ev_ssize_t)(HTTP_READ_MAX - have), v, 2);
    if (n > 0) {
        /* the extents may be larger than asked: read no more than asked */
        size_t room = HTTP_READ_MAX - have;
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len < room ? v[i].iov_len : room;
            room -= iov[i].iov_len;
        }
        ssize_t r = readv(bufferevent_getfd(c->bev), iov, n);
        int used = 0;
        for (size_t left = r > 0 ? (size_t)r : 0; used < n && left > 0; used++) {
            if (v[used].iov_len > left)
                v[used].iov_len = left;
            left -= v[used].iov_len;
        }
        evbuffer_commit_space(in, v, used);     /* 0: nothing taken */
    }
    evbuffer_freeze(in, 0);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    if (c->state == CONN_LINGER || c->state == CONN_STREAM) {
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    conn_read_more(c);
    conn_parse(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct http_conn *c = arg;
    if (c->state == CONN_CLOSING && conn_out_len(c) == 0)
        conn_set_state(c, CONN_LINGER);
    else if (c->out_wait && c->state == CONN_WAITING && conn_out_len(c) <= HTTP_OUT_MAX / 2) {
        c->out_wait = false;
        http_parser_pause(&c->parser, 0);
        conn_set_state(c, CONN_IDLE);
        conn_parse(c);
    }
}

/* c may speak HTTP now (accepted, or its TLS handshake done). */
static void conn_ready(struct http_conn *c)
{
    if (c->refused) {
        conn_fail(c, 503, "too-many-connections",
                  "The spooler has too many connections open; retry in a moment.");
        return;
    }
    conn_set_state(c, CONN_IDLE);
    conn_parse(c);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct http_conn *c = arg;
    char peer[160];
    if (what & BEV_EVENT_CONNECTED) {      /* TLS handshake done */
        char cn[256];
        if (tls_peer_cn(bev, cn, sizeof cn) == 0)
            c->tls_cn = strdup(cn);
        log_debug("http: %s: %s", conn_peer(c, peer, sizeof peer), tls_protocol(bev));
        conn_ready(c);
        return;
    }
    if (c->state == CONN_HANDSHAKE) {
        char e[256], more[48];
        tls_error_string(bev, e, sizeof e);
        if (log_limited(&ll_tls, more, sizeof more))
            log_info("http: TLS handshake with %s failed: %s%s", conn_peer(c, peer, sizeof peer), e,
                     more);
    } else if (what & BEV_EVENT_TIMEOUT) {
        log_debug("http: %s: answer not taken within %d s, closed",
                  conn_peer(c, peer, sizeof peer), HTTP_WRITE_TIMEOUT);
    } else if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->state == CONN_IDLE &&
               conn_out_len(c) > 0) {
        /* the client half-closed after its request (shutdown of its
         * write side): its answer is still being written; then close */
        conn_set_state(c, CONN_CLOSING);
        return;
    }
    conn_free(c);
}

/* Drop a connection; a request still under way is given up (on_abort). */
void conn_free(struct http_conn *c)
{
    conn_drop_req(c);
    stream_conn_gone(c);
    header_commit(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    nconns--;
    if (c->refused)
        nrefusing--;
    event_free(c->timer);
    bufferevent_free(c->bev);
    free(c->tls_cn);
    free(c);
}

/* Log a refusal (rate-limited). */
static void note_refusal(const struct http_conn *c, const char *cap, bool answered)
{
    char peer[160], more[48];
    if (log_limited(&ll_refuse, more, sizeof more))
        log_warn("http: %s: over %s connection limit, %s%s", conn_peer(c, peer, sizeof peer), cap,
                 answered ? "answered 503" : "closed at accept", more);
}

/* Serve fd, a connection accepted from a listener with TLS t (NULL:
 * plain); sa/salen its peer address (NULL for a Unix socket pair). */
static void conn_accept(struct event_base *base, struct tls *t, evutil_socket_t fd,
                        struct sockaddr *sa, int salen)
{
    struct http_conn *c = calloc(1, sizeof *c);

    if (!c) {
        close(fd);
        return;
    }
    c->tls = t != NULL;
    c->tcp = sa && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
    c->uid = (uid_t)-1;
    c->gid = (gid_t)-1;
    c->pid = (pid_t)-1;
    if (c->tcp) {
        memcpy(&c->addr, sa, (size_t)salen < sizeof c->addr ? (size_t)salen : sizeof c->addr);
    } else {
        struct ucred cred;
        socklen_t cl = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
            c->uid = cred.uid;
            c->gid = cred.gid;
            c->pid = cred.pid;
        }
    }
    /* Caps: in total and per peer, counting the connections served. */
    int same = 0;
    for (struct http_conn *o = conns; o; o = o->next)
        if (!o->refused && same_peer(o, c))
            same++;
    const char *cap = nconns - nrefusing >= HTTP_MAX_CONNS ? "the total"
                    : same >= HTTP_MAX_CONNS_PER_PEER ? "the per-peer" : NULL;
    if (cap && nrefusing >= HTTP_MAX_REFUSING) {
        note_refusal(c, cap, false);
        close(fd);
        free(c);
        return;
    }
    if (c->tls) {
        c->bev = tls_bufferevent_new(t, base, fd);   /* closes fd on failure */
    } else {
        c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev)
            close(fd);
    }
    if (!c->bev || !(c->timer = evtimer_new(base, conn_timer_cb, c))) {
        if (c->bev)
            bufferevent_free(c->bev);
        free(c);
        return;
    }
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_READ_MAX);
    bufferevent_setwatermark(c->bev, EV_WRITE, HTTP_OUT_MAX / 2, 0);
    /* (libevent 2.1 still reads at most 4 KiB at a time: conn_read_more) */
    bufferevent_set_max_single_read(c->bev, HTTP_READ_CHUNK);
    struct timeval wtv = {HTTP_WRITE_TIMEOUT, 0};
    bufferevent_set_timeouts(c->bev, NULL, &wtv);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    nconns++;
    if (cap) {
        c->refused = true;
        nrefusing++;
        note_refusal(c, cap, true);
    }
    conn_timer(c, HTTP_HEAD_TIMEOUT);      /* handshake and first byte */
    if (c->tls)
        conn_set_state(c, CONN_HANDSHAKE);
    else
        conn_ready(c);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct http_listener *hl = arg;
    conn_accept(evconnlistener_get_base(l), hl->tls, fd, sa, salen);
}

int http_adopt_fd(struct event_base *base, int fd, const struct http_handler *h)
{
    if (fd < 0 || !h)
        return -1;
    handler = h;
    if (evutil_make_socket_nonblocking(fd) < 0)
        return -1;
    conn_accept(base, NULL, fd, NULL, 0);
    return 0;
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

static int listener_add(struct event_base *base, int listen_fd, const struct http_handler *h,
                        struct tls *t)
{
    if (nlisteners == HTTP_LISTENERS_MAX)
        return -1;
    struct http_listener *hl = &listeners[nlisteners];
    handler = h;
    evutil_make_socket_nonblocking(listen_fd);
    hl->tls = t;
    hl->evl = evconnlistener_new(base, accept_cb, hl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                 -1, listen_fd);
    if (!hl->evl)
        return -1;
    evconnlistener_set_error_cb(hl->evl, accept_error_cb);
    nlisteners++;
    return 0;
}

int http_listen(struct event_base *base, int listen_fd, const struct http_handler *h)
{
    return listener_add(base, listen_fd, h, NULL);
}

int http_listen_tls(struct event_base *base, int listen_fd, const struct http_handler *h,
                    struct tls *t)
{
    return t ? listener_add(base, listen_fd, h, t) : -1;
}

void http_drain(void)
{
    draining = true;
}

void http_shutdown(void)
{
    for (int i = 0; i < nlisteners; i++) {
        evconnlistener_free(listeners[i].evl);
        listeners[i].evl = NULL;
    }
    nlisteners = 0;
    for (struct http_conn *c = conns, *n; c; c = n) {
        n = c->next;
        conn_free(c);
    }
}

int http_conn_count(void)
{
    return nconns;
}
