/* report.c - the copees backend's reports to copeesd (see report.h).
 *
 * Design notes: the backend links no library (no libcups, no libcurl), so
 * this is a minimal HTTP/1.1 client on AF_UNIX: one request per connection
 * (Connection: close), a small JSON body of known fields, and of the
 * answer only the status (and the error text, for the log) is used.
 *
 * - Never in the way of the print: the socket is non-blocking and a
 *   progress report runs inside the backend's poll loop, one at a time,
 *   each with a REPORT_TIMEOUT_MS deadline, at most one per
 *   REPORT_INTERVAL_MS, always with the latest count (counts that come
 *   while a report is under way are folded into the next one).  After
 *   three progress reports in a row fail, progress is no longer reported.
 *   The exit report is sent once the real backend has exited and waits at
 *   most REPORT_EXIT_TIMEOUT_MS: a stuck copeesd delays the backend's own
 *   exit by that much, a stopped one (no socket, refused) not at all.
 * - Failures never change the exit code.  Reaching copeesd fails: the
 *   first time a "WARNING:" line (cupsd logs it, the admin sees it),
 *   afterwards "DEBUG:".  An answer other than 2xx (a job copeesd no
 *   longer has in CUPS, say) is a "DEBUG:" line.
 * - send() with MSG_NOSIGNAL: a daemon that closes early must not kill
 *   the backend with SIGPIPE (ignoring SIGPIPE instead would hand SIG_IGN
 *   to the real backend through exec).  Every fd is close-on-exec.
 * - The socket path: COPEES_SOCKET (cupsd passes it when cups-files.conf
 *   says SetEnv COPEES_SOCKET ...), else the compiled-in default; chosen
 *   by the caller.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "report.h"

#define GIVE_UP_AFTER 3

enum rstate { R_IDLE, R_SEND, R_RECV };

struct report {
    struct sockaddr_un addr;
    char job_name[64];
    int cups_job_id;
    enum rstate st;
    int fd;
    const char *what;          /* "page report" / "exit report" */
    char out[1024];
    size_t outlen, outoff;
    char in[512];
    size_t inlen;
    int64_t deadline;
    int pages, sent_pages;     /* latest count; count of the last report (-1 = none) */
    int64_t last_start;        /* when the last progress report started */
    int failures;              /* progress reports failed in a row */
    bool warned, gave_up;
};

int64_t report_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "copees-" 8 hex "-" digits: the job-name copeesd gives its CUPS jobs. */
static bool is_copees_job_name(const char *s)
{
    if (strncmp(s, "copees-", 7) != 0)
        return false;
    s += 7;
    for (int i = 0; i < 8; i++, s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return false;
    if (*s++ != '-' || *s < '1' || *s > '9' || strlen(s) > 18)
        return false;
    return strspn(s, "0123456789") == strlen(s);
}

struct report *report_new(const char *socket_path, const char *job_name, const char *cups_job_id)
{
    char *end;
    long id;
    struct report *r;

    if (!is_copees_job_name(job_name)) {
        fputs("DEBUG: copees: not a copees-spool job (title), nothing reported\n", stderr);
        return NULL;
    }
    errno = 0;
    id = strtol(cups_job_id, &end, 10);
    if (errno || *end || end == cups_job_id || id <= 0 || id > 0x7fffffff) {
        fputs("DEBUG: copees: the CUPS job id is not a positive number, nothing reported\n", stderr);
        return NULL;
    }
    r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    if (strlen(socket_path) >= sizeof r->addr.sun_path) {
        fprintf(stderr, "WARNING: copees: copeesd's socket path is too long (%zu bytes), nothing reported\n",
                strlen(socket_path));
        free(r);
        return NULL;
    }
    r->addr.sun_family = AF_UNIX;
    strcpy(r->addr.sun_path, socket_path);
    snprintf(r->job_name, sizeof r->job_name, "%s", job_name);
    r->cups_job_id = (int)id;
    r->fd = -1;
    r->pages = r->sent_pages = -1;
    r->last_start = INT64_MIN / 2;
    return r;
}

static void conn_close(struct report *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->st = R_IDLE;
}

void report_free(struct report *r)
{
    if (!r)
        return;
    conn_close(r);
    free(r);
}

/* copeesd could not be reached or did not answer. */
static void unreachable(struct report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void unreachable(struct report *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: copees: %s: %s (the print goes on)\n", r->warned ? "DEBUG" : "WARNING",
            r->what, msg);
    r->warned = true;
    conn_close(r);
}

/* Append s to out as a JSON string (quotes and escapes). */
static void json_str(char *out, size_t len, const char *s)
{
    size_t o = strlen(out);
    if (o + 1 < len)
        out[o++] = '"';
    for (; *s && o + 7 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, len - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (o + 1 < len)
        out[o++] = '"';
    out[o] = '\0';
}

/* Start one request: connect and queue it.  false when it failed at once. */
static bool start(struct report *r, const char *what, const char *body, int64_t now, int timeout)
{
    int n;

    r->what = what;
    r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        unreachable(r, "no socket: %s", strerror(errno));
        return false;
    }
    /* a Unix socket connects at once, or fails (EAGAIN: backlog full) */
    if (connect(r->fd, (struct sockaddr *)&r->addr, sizeof r->addr) < 0) {
        unreachable(r, "cannot connect to copeesd at %s: %s", r->addr.sun_path, strerror(errno));
        return false;
    }
    n = snprintf(r->out, sizeof r->out,
                 "POST /v1/backend/events HTTP/1.1\r\nHost: copees\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s", strlen(body), body);
    if (n < 0 || (size_t)n >= sizeof r->out) {
        unreachable(r, "the report does not fit its buffer");
        return false;
    }
    r->outlen = (size_t)n;
    r->outoff = 0;
    r->inlen = 0;
    r->deadline = now + timeout;
    r->st = R_SEND;
    return true;
}

/* The whole answer is in (copeesd closed): log what it said. */
static void finish(struct report *r)
{
    int status = 0;

    r->in[r->inlen] = '\0';
    if (sscanf(r->in, "HTTP/1.%*1[01] %3d", &status) != 1)
        status = 0;
    if (status >= 200 && status < 300) {
        if (strcmp(r->what, "exit report") == 0)
            fputs("DEBUG: copees: copeesd took the exit report\n", stderr);
        r->failures = 0;
    } else {
        /* the body is copeesd's {"error", "message"}: one line */
        const char *body = strstr(r->in, "\r\n\r\n");
        body = body ? body + 4 : "";
        fprintf(stderr, "DEBUG: copees: %s: copeesd answered %d: %.*s\n", r->what, status,
                (int)strcspn(body, "\r\n"), body);
        r->failures++;
    }
    conn_close(r);
}

/* Go on with the request under way as far as the socket allows. */
static void progress(struct report *r, int64_t now)
{
    while (r->st == R_SEND) {
        ssize_t n = send(r->fd, r->out + r->outoff, r->outlen - r->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            unreachable(r, "cannot send to copeesd: %s", strerror(errno));
            return;
        }
        r->outoff += (size_t)n;
        if (r->outoff == r->outlen)
            r->st = R_RECV;
    }
    while (r->st == R_RECV) {
        ssize_t n = recv(r->fd, r->in + r->inlen, sizeof r->in - 1 - r->inlen, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            unreachable(r, "no answer from copeesd: %s", strerror(errno));
            return;
        }
        r->inlen += (size_t)n;
        if (n == 0 || r->inlen == sizeof r->in - 1)   /* closed, or enough to tell */
            finish(r);
    }
    if (r->st != R_IDLE && now >= r->deadline)
        unreachable(r, "copeesd did not answer within %d ms", (int)(r->deadline - r->last_start));
}

/* Start a progress report when one is due. */
static void maybe_start(struct report *r, int64_t now)
{
    char body[256];

    if (r->st != R_IDLE || r->gave_up || r->pages == r->sent_pages ||
        now < r->last_start + REPORT_INTERVAL_MS)
        return;
    if (r->failures >= GIVE_UP_AFTER) {
        fputs("DEBUG: copees: page reports failed 3 times in a row, no more until the exit report\n",
              stderr);
        r->gave_up = true;
        return;
    }
    snprintf(body, sizeof body, "{\"job_name\":");
    json_str(body, sizeof body, r->job_name);
    snprintf(body + strlen(body), sizeof body - strlen(body),
             ",\"cups_job_id\":%d,\"event\":\"page\",\"pages\":%d}", r->cups_job_id, r->pages);
    r->sent_pages = r->pages;
    r->last_start = now;
    if (!start(r, "page report", body, now, REPORT_TIMEOUT_MS)) {
        r->failures++;
        return;
    }
    progress(r, now);
}

void report_pages(struct report *r, int pages, int64_t now_ms)
{
    if (!r || pages <= r->pages)
        return;
    r->pages = pages;
    maybe_start(r, now_ms);
}

void report_poll_fd(const struct report *r, struct pollfd *pfd, int *timeout_ms, int64_t now_ms)
{
    int64_t due = -1;

    pfd->fd = -1;
    pfd->events = 0;
    pfd->revents = 0;
    if (!r)
        return;
    if (r->st != R_IDLE) {
        pfd->fd = r->fd;
        pfd->events = r->st == R_SEND ? POLLOUT : POLLIN;
        due = r->deadline;
    } else if (!r->gave_up && r->pages != r->sent_pages) {
        due = r->last_start + REPORT_INTERVAL_MS;
    }
    if (due >= 0) {
        int64_t wait = due > now_ms ? due - now_ms : 0;
        if (*timeout_ms < 0 || wait < *timeout_ms)
            *timeout_ms = (int)wait;
    }
}

void report_step(struct report *r, short revents, int64_t now_ms)
{
    if (!r)
        return;
    if (r->st != R_IDLE)
        progress(r, now_ms);
    if (r->st == R_IDLE)
        maybe_start(r, now_ms);
}

void report_exit(struct report *r, int exit_status, const char *message)
{
    char body[768];
    int64_t now = report_now_ms();

    if (!r)
        return;
    if (r->st != R_IDLE) {
        fputs("DEBUG: copees: not waiting for the answer to the last page report\n", stderr);
        conn_close(r);
    }
    snprintf(body, sizeof body, "{\"job_name\":");
    json_str(body, sizeof body, r->job_name);
    snprintf(body + strlen(body), sizeof body - strlen(body),
             ",\"cups_job_id\":%d,\"event\":\"exit\",\"exit_status\":%d", r->cups_job_id, exit_status);
    if (r->pages >= 0)
        snprintf(body + strlen(body), sizeof body - strlen(body), ",\"pages\":%d", r->pages);
    if (message && *message) {
        snprintf(body + strlen(body), sizeof body - strlen(body), ",\"message\":");
        json_str(body, sizeof body - 1, message);
    }
    snprintf(body + strlen(body), sizeof body - strlen(body), "}");
    r->last_start = now;
    if (!start(r, "exit report", body, now, REPORT_EXIT_TIMEOUT_MS))
        return;
    while (r->st != R_IDLE) {
        struct pollfd p = {.fd = r->fd, .events = r->st == R_SEND ? POLLOUT : POLLIN};
        int64_t left = r->deadline - now;
        if (left > 0 && poll(&p, 1, (int)left) < 0 && errno != EINTR) {
            unreachable(r, "poll: %s", strerror(errno));
            return;
        }
        now = report_now_ms();
        progress(r, now);
    }
}
