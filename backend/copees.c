/* copees.c - the copees CUPS backend: wraps the real backend of a device.
 *
 * Design notes: a queue's device URI is "copees:" followed by the real
 * device URI (copees:ipp://localhost:8631/ipp/print).  CUPS runs this
 * program; it runs the real backend, $CUPS_SERVERBIN/backend/<scheme>,
 * with argv[0] and DEVICE_URI set to the inner URI and the same arguments
 * and stdin, passes the real backend's STATE:, ATTR:, PAGE: and log lines
 * on to cupsd unchanged, and exits with the real backend's code.
 *
 * - Plain C, no libcups: the CUPS_BACKEND_* exit codes are CUPS's stable
 *   numbers, repeated below.
 * - The inner scheme names a file, so it must be a plain scheme name
 *   (letters, digits, '+' and '-'): no '/' or '.', and not "copees" itself,
 *   which would only wrap itself.
 * - Cancellation: cupsd sends SIGTERM.  The handler only sets a
 *   volatile sig_atomic_t flag (as CUPS backends do); the loop forwards the
 *   signal to the real backend and waits for it to finish, so its own
 *   clean-up (an IPP Cancel-Job, a closed socket) still happens.  SIGTERM
 *   and SIGCHLD are blocked except inside the loop's ppoll(), so a signal
 *   cannot slip in between the flag check and the wait.
 * - An exec failure is reported through a close-on-exec pipe, so the
 *   message is accurate (e.g. a root-only backend that lp may not run).
 * - Exit: the real backend's code when it is a CUPS code (0-7); a death by
 *   signal, or any other code (a shell's 128+N), becomes
 *   CUPS_BACKEND_FAILED, which is what cupsd makes of them anyway.
 * - Installed 0755, cupsd runs this backend as lp, and the real backend
 *   runs as lp too: ipp, ipps, http, https and socket work; backends that
 *   CUPS runs as root (usb, lpd: installed 0700 or 0744) cannot be wrapped
 *   that way (see copees(7)).
 * - Reporting to copeesd: the real backend's stderr is a pipe, not our fd
 *   2.  Every complete line read from it is written to stderr at once and
 *   unchanged (one write per line, so our own lines never split one of
 *   its lines), and PAGE: and ATTR: lines are parsed on the way: the count
 *   of impressions printed is the largest of "PAGE: total N", the sum of
 *   the copies of "PAGE: N COPIES" lines, and ATTR:
 *   job-impressions-completed=N.  report.c sends it to copeesd while the
 *   job prints and the exit code once the real backend is gone; it never
 *   fails or holds up the print.  Only jobs whose title (argv[3]) is
 *   copeesd's job-name copees-<instance>-<id> are reported.
 * - After the real backend has exited, its pipe is read until EOF, but at
 *   most DRAIN_MS more: a process it left behind holding the pipe must
 *   not keep the job.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/wait.h>

#include "report.h"

/* CUPS's backend exit codes (<cups/backend.h>, enum cups_backend_e). */
enum {
    CUPS_BACKEND_OK = 0,
    CUPS_BACKEND_FAILED = 1,
    CUPS_BACKEND_AUTH_REQUIRED = 2,
    CUPS_BACKEND_HOLD = 3,
    CUPS_BACKEND_STOP = 4,
    CUPS_BACKEND_CANCEL = 5,
    CUPS_BACKEND_RETRY = 6,
    CUPS_BACKEND_RETRY_CURRENT = 7,
};

#define URI_PREFIX "copees:"
#define DRAIN_MS 2000          /* reading the pipe after the real backend exited */
#define COUNT_MAX 1000000000L

static volatile sig_atomic_t term_requested;

static void on_term(int sig)
{
    term_requested = 1;
}

static void on_chld(int sig)
{
    /* only wakes ppoll() */
}

/* The real backend's stderr as it comes through the pipe. */
struct relay {
    int fd;                    /* read end; -1 after EOF */
    char buf[4096];
    size_t len;
    bool overlong;             /* in the middle of a line longer than buf */
    long total, copies, impressions;   /* PAGE: total / PAGE: N C / ATTR: */
    struct report *rep;
};

/* Copies the scheme of uri into buf; -1 when it is not a plain scheme
 * name that may name a file in the backend directory. */
static int uri_scheme(const char *uri, char *buf, size_t len)
{
    size_t n = strcspn(uri, ":");

    if (uri[n] != ':' || n == 0 || n >= len)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = uri[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '+' || c == '-'))
            return -1;   /* refuses '/', '.' and anything else */
    }
    memcpy(buf, uri, n);
    buf[n] = '\0';
    return strcmp(buf, "copees") == 0 ? -1 : 0;
}

/* Writes all of buf to fd 2 (cupsd's status pipe). */
static void write_stderr(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(2, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;      /* nobody reads our stderr any more: nothing to do */
        buf += n;
        len -= (size_t)n;
    }
}

/* A non-negative count at s (leading blanks skipped); -1 if none. */
static long parse_count(const char *s, const char **end)
{
    char *e;
    long v;

    s += strspn(s, " \t");
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtol(s, &e, 10);
    if (errno || v > COUNT_MAX)
        v = COUNT_MAX;
    if (end)
        *end = e;
    return v;
}

/* Learns the impressions printed from one line (NUL-terminated, no '\n'). */
static void parse_line(struct relay *rl, const char *line)
{
    const char *p;
    long n, c;

    if (strncmp(line, "PAGE:", 5) == 0) {
        p = line + 5 + strspn(line + 5, " \t");
        if (strncasecmp(p, "total", 5) == 0 && (p[5] == ' ' || p[5] == '\t')) {
            if ((n = parse_count(p + 5, NULL)) >= 0)
                rl->total = n;
        } else if ((n = parse_count(p, &p)) >= 0) {
            c = parse_count(p, NULL);            /* "PAGE: page copies" */
            rl->copies += c >= 0 ? c : 1;
            if (rl->copies > COUNT_MAX)
                rl->copies = COUNT_MAX;
        }
    } else if (strncmp(line, "ATTR:", 5) == 0) {
        static const char key[] = "job-impressions-completed=";
        for (p = line + 5; (p = strstr(p, key)); p += sizeof key - 1)
            if (p[-1] == ' ' || p[-1] == '\t' || p[-1] == ':') {
                if ((n = parse_count(p + sizeof key - 1, NULL)) >= 0)
                    rl->impressions = n;
                break;
            }
    } else {
        return;
    }
    n = rl->total;
    if (rl->copies > n)
        n = rl->copies;
    if (rl->impressions > n)
        n = rl->impressions;
    if (n > 0)
        report_pages(rl->rep, (int)n, report_now_ms());
}

/* uri without the user:password@ of its authority, into out. */
static void uri_without_password(const char *uri, char *out, size_t len)
{
    const char *auth = strstr(uri, "://"), *at = NULL;
    if (auth) {
        auth += 3;
        size_t n = strcspn(auth, "/?#");
        for (const char *p = auth; p < auth + n; p++)
            if (*p == '@')
                at = p;
    }
    if (at)
        snprintf(out, len, "%.*s%s", (int)(auth - uri), uri, at + 1);
    else
        snprintf(out, len, "%s", uri);
}

/* Passes on and parses the complete lines in rl->buf; at_eof: the rest
 * too. */
static void relay_lines(struct relay *rl, bool at_eof)
{
    size_t start = 0;

    for (;;) {
        char *nl = memchr(rl->buf + start, '\n', rl->len - start);
        size_t end;
        if (nl)
            end = (size_t)(nl - rl->buf) + 1;
        else if (at_eof || (start == 0 && rl->len == sizeof rl->buf))
            end = rl->len;       /* a last line without '\n', or one too long */
        else
            break;
        if (end == start)
            break;
        write_stderr(rl->buf + start, end - start);
        if (!rl->overlong && (nl || at_eof)) {
            char line[sizeof rl->buf + 1];
            size_t n = end - start - (nl ? 1 : 0);
            memcpy(line, rl->buf + start, n);
            line[n] = '\0';
            parse_line(rl, line);
        }
        rl->overlong = !nl && !at_eof;   /* the rest of that line is not parsed */
        start = end;
    }
    memmove(rl->buf, rl->buf + start, rl->len - start);
    rl->len -= start;
}

/* Reads what the pipe has; at EOF closes it. */
static void relay_read(struct relay *rl)
{
    for (;;) {
        ssize_t n = read(rl->fd, rl->buf + rl->len, sizeof rl->buf - rl->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            relay_lines(rl, true);
            close(rl->fd);
            rl->fd = -1;
            return;
        }
        rl->len += (size_t)n;
        relay_lines(rl, false);
    }
}

/* Starts path with argv and its stderr on errfd; returns its pid, or -1
 * with errno from fork or exec.  The child gets the signal mask and
 * SIGTERM disposition that cupsd gave us. */
static pid_t backend_start(const char *path, char **argv, int errfd, const sigset_t *mask)
{
    int fds[2], err = 0;
    pid_t pid;
    ssize_t n;

    if (pipe2(fds, O_CLOEXEC) < 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        /* default dispositions before unblocking: a SIGTERM now must kill
         * the child, not run our handler (exec would reset them only later) */
        signal(SIGTERM, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, mask, NULL);
        if (dup2(errfd, 2) >= 0)
            execv(path, argv);
        err = errno;
        (void)!write(fds[1], &err, sizeof err);
        _exit(127);
    }
    err = errno;
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        errno = err;
        return -1;
    }
    do
        n = read(fds[0], &err, sizeof err);   /* 0: exec succeeded */
    while (n < 0 && errno == EINTR);
    close(fds[0]);
    if (n == (ssize_t)sizeof err) {
        waitpid(pid, NULL, 0);
        errno = err;
        return -1;
    }
    return pid;
}

/* A SIGTERM that came after the last ppoll is still pending (it is
 * blocked outside ppoll): take it, so that the end is reported as a
 * cancel.  cupsd signals a backend's whole process group at once, so
 * ours is pending by the time the real backend can have exited of it. */
static void take_pending_term(void)
{
    sigset_t pending, term;
    struct timespec zero = {0, 0};

    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGTERM) &&
        sigtimedwait(&term, NULL, &zero) == SIGTERM)
        term_requested = 1;
}

/* Relays the real backend's stderr, keeps the reports going and waits for
 * it to exit, forwarding SIGTERM once; 0 with its wait status in *status,
 * or -1 with errno. */
static int backend_wait(pid_t pid, struct relay *rl, const sigset_t *waitmask, int *status)
{
    bool forwarded = false, reaped = false;
    int64_t drain_until = 0;

    for (;;) {
        int64_t now = report_now_ms();
        int timeout = -1;
        struct pollfd p[2];

        if (term_requested && !forwarded) {
            /* cupsd running as root puts a backend in a process group of
             * its own and signals the whole group (cupsdEndProcess): the
             * real backend, in ours, has had the SIGTERM already, and a
             * second one makes CUPS's ipp backend exit at once instead of
             * canceling the job at the printer.  (Said also when the real
             * backend is gone already: it may have exited on that SIGTERM
             * before ours was delivered.) */
            if (getpgrp() != getpid()) {
                if (!reaped) {
                    fputs("DEBUG: copees: job canceled, stopping the real backend\n", stderr);
                    kill(pid, SIGTERM);
                }
            } else {
                fputs("DEBUG: copees: job canceled; the real backend, in our process group, "
                      "was told too\n", stderr);
            }
            forwarded = true;
        }
        if (!reaped) {
            pid_t r = waitpid(pid, status, WNOHANG);
            if (r < 0 && errno != EINTR)
                return -1;
            if (r == pid) {
                reaped = true;
                drain_until = now + DRAIN_MS;
            }
        }
        if (reaped && (rl->fd < 0 || now >= drain_until)) {
            if (!term_requested) {
                take_pending_term();
                if (term_requested)
                    continue;      /* say so above, then leave */
            }
            break;
        }
        p[0].fd = rl->fd;
        p[0].events = POLLIN;
        p[0].revents = 0;
        report_poll_fd(rl->rep, &p[1], &timeout, now);
        if (reaped && (timeout < 0 || drain_until - now < timeout))
            timeout = (int)(drain_until - now);
        struct timespec ts = {timeout / 1000, (timeout % 1000) * 1000000L};
        if (ppoll(p, 2, timeout >= 0 ? &ts : NULL, waitmask) < 0) {
            if (errno != EINTR)
                return -1;
            continue;      /* SIGTERM or SIGCHLD */
        }
        if (p[0].revents && rl->fd >= 0)
            relay_read(rl);
        report_step(rl->rep, p[1].revents, report_now_ms());
    }
    if (rl->fd >= 0) {       /* something still holds the pipe: let it be */
        relay_lines(rl, true);
        fputs("DEBUG: copees: the real backend's stderr is still open after its exit; not waiting\n",
              stderr);
        close(rl->fd);
        rl->fd = -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    char scheme[64], path[4096], msg[160], shown[4096];
    const char *uri, *inner, *serverbin, *sock;
    struct sigaction sa;
    sigset_t block, orig;
    struct relay rl;
    int errpipe[2], status, code;
    pid_t pid;

    setbuf(stderr, NULL);
    if (argc == 1) {
        puts("network copees \"Unknown\" \"copees wrapper backend\"");
        return CUPS_BACKEND_OK;
    }
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "Usage: %s job-id user title copies options [file]\n", argv[0]);
        return CUPS_BACKEND_FAILED;
    }

    /* From here on, SIGTERM (a cancel) and SIGCHLD are handled only inside
     * ppoll(); a cancel that comes before the fork is forwarded at once. */
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sa.sa_handler = on_chld;
    sigaction(SIGCHLD, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &orig);

    memset(&rl, 0, sizeof rl);
    rl.fd = -1;
    msg[0] = '\0';
    sock = getenv("COPEES_SOCKET");
    if (!sock || !*sock)
        sock = COPEES_SOCKET_DEFAULT;
    rl.rep = report_new(sock, argv[3], argv[1]);

    uri = getenv("DEVICE_URI");
    if (!uri || !*uri)
        uri = argv[0];
    if (strncmp(uri, URI_PREFIX, strlen(URI_PREFIX)) != 0) {
        fputs("ERROR: copees: the device URI must be copees: followed by the real device URI\n", stderr);
        code = CUPS_BACKEND_STOP;
        snprintf(msg, sizeof msg, "the device URI is not copees:<real device URI>");
        goto out;
    }
    inner = uri + strlen(URI_PREFIX);
    if (uri_scheme(inner, scheme, sizeof scheme) < 0) {
        /* never print the URI itself: it may carry a password */
        fputs("ERROR: copees: the inner device URI has no usable scheme "
              "(letters, digits, + and -; not copees)\n", stderr);
        code = CUPS_BACKEND_STOP;
        snprintf(msg, sizeof msg, "the inner device URI has no usable scheme");
        goto out;
    }
    serverbin = getenv("CUPS_SERVERBIN");
    if (!serverbin || !*serverbin)
        serverbin = CUPS_SERVERBIN_DEFAULT;
    if ((size_t)snprintf(path, sizeof path, "%s/backend/%s", serverbin, scheme) >= sizeof path) {
        fputs("ERROR: copees: CUPS_SERVERBIN is too long\n", stderr);
        code = CUPS_BACKEND_FAILED;
        snprintf(msg, sizeof msg, "CUPS_SERVERBIN is too long");
        goto out;
    }
    if (setenv("DEVICE_URI", inner, 1) < 0 || pipe2(errpipe, O_CLOEXEC) < 0) {
        snprintf(msg, sizeof msg, "cannot set up the %s backend: %s", scheme, strerror(errno));
        fprintf(stderr, "ERROR: copees: %s\n", msg);
        code = CUPS_BACKEND_FAILED;
        goto out;
    }
    /* argv[0] is the URI without its user:password, as CUPS gives a
     * backend (cupsdSetDeviceURI): anyone may read a command line, while
     * DEVICE_URI, in the environment, stays the user's and root's */
    uri_without_password(inner, shown, sizeof shown);
    argv[0] = shown;

    pid = backend_start(path, argv, errpipe[1], &orig);
    close(errpipe[1]);
    rl.fd = errpipe[0];
    fcntl(rl.fd, F_SETFL, fcntl(rl.fd, F_GETFL) | O_NONBLOCK);
    if (pid < 0) {
        int err = errno;
        fprintf(stderr, "ERROR: copees: cannot run the %s backend (%s): %s\n", scheme, path, strerror(err));
        if (err == EACCES || err == EPERM)
            fprintf(stderr, "ERROR: copees: the %s backend may be one that only root can run; "
                    "copees runs as lp and cannot wrap it\n", scheme);
        code = CUPS_BACKEND_STOP;
        snprintf(msg, sizeof msg, "cannot run the %s backend: %s", scheme, strerror(err));
        goto out;
    }
    fprintf(stderr, "DEBUG: copees: running the %s backend, pid %d\n", scheme, (int)pid);
    if (backend_wait(pid, &rl, &orig, &status) < 0) {
        fprintf(stderr, "ERROR: copees: lost the %s backend: %s\n", scheme, strerror(errno));
        code = CUPS_BACKEND_FAILED;
        snprintf(msg, sizeof msg, "lost the real backend");
        goto out;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "%s: copees: the %s backend was killed by signal %d (%s)\n",
                term_requested ? "DEBUG" : "ERROR", scheme, WTERMSIG(status), strsignal(WTERMSIG(status)));
        snprintf(msg, sizeof msg, "the %s backend was killed by signal %d%s", scheme, WTERMSIG(status),
                 term_requested ? " after the job was canceled" : "");
        code = CUPS_BACKEND_FAILED;
    } else if ((code = WEXITSTATUS(status)) > CUPS_BACKEND_RETRY_CURRENT) {
        fprintf(stderr, "DEBUG: copees: the %s backend exited with %d, reported as failed\n", scheme, code);
        snprintf(msg, sizeof msg, "the %s backend exited with %d", scheme, code);
        code = CUPS_BACKEND_FAILED;
    } else {
        if (code != CUPS_BACKEND_OK)
            fprintf(stderr, "DEBUG: copees: the %s backend exited with %d\n", scheme, code);
        if (term_requested)
            snprintf(msg, sizeof msg, "the job was canceled");
    }
out:
    report_exit(rl.rep, code, msg);
    if (rl.fd >= 0)
        close(rl.fd);
    report_free(rl.rep);
    return code;
}
