/* copees.c - the copees CUPS backend: wraps the real backend of a device.
 *
 * Design notes: a queue's device URI is "copees:" followed by the real
 * device URI (copees:ipp://localhost:8631/ipp/print).  CUPS runs this
 * program; it runs the real backend, $CUPS_SERVERBIN/backend/<scheme>,
 * with argv[0] and DEVICE_URI set to the inner URI and the same arguments,
 * stdin and stderr, so the real backend's STATE:, ATTR:, PAGE: and log
 * lines reach cupsd unchanged, and exits with the real backend's code.
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
 *   and SIGCHLD are blocked except inside sigsuspend(), so a signal cannot
 *   slip in between the flag check and the wait.
 * - An exec failure is reported through a close-on-exec pipe, so the
 *   message is accurate (e.g. a root-only backend that lp may not run).
 * - Exit: the real backend's code when it is a CUPS code (0-7); a death by
 *   signal, or any other code (a shell's 128+N), becomes
 *   CUPS_BACKEND_FAILED, which is what cupsd makes of them anyway.
 * - Installed 0755, cupsd runs this backend as lp, and the real backend
 *   runs as lp too: ipp, ipps, http, https and socket work; backends that
 *   CUPS runs as root (usb, lpd: installed 0700 or 0744) cannot be wrapped
 *   that way (see docs/).
 *
 * Later: report page progress and the real exit status to copeesd over its
 * socket (the compiled-in COPEES_SOCKET_DEFAULT, or COPEES_SOCKET set with
 * cups-files.conf's SetEnv).  That version reads the real backend's stderr
 * through a pipe instead of sharing fd 2, copies every line to stderr as it
 * comes, and posts the PAGE: counts and the exit status to
 * POST /v1/backend/events; a daemon that is down must never fail or delay
 * the print.  This version does not report anything.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

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

static volatile sig_atomic_t term_requested;

static void on_term(int sig)
{
    term_requested = 1;
}

static void on_chld(int sig)
{
    /* only wakes sigsuspend() */
}

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

/* Starts path with argv; returns its pid, or -1 with errno from fork or
 * exec.  The child gets the signal mask and SIGTERM disposition that cupsd
 * gave us. */
static pid_t backend_start(const char *path, char **argv, const sigset_t *mask)
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

/* Waits for the real backend, forwarding SIGTERM once; 0 with its wait
 * status in *status, or -1 with errno. */
static int backend_wait(pid_t pid, const sigset_t *waitmask, int *status)
{
    int forwarded = 0;

    for (;;) {
        if (term_requested && !forwarded) {
            fputs("DEBUG: copees: job canceled, stopping the real backend\n", stderr);
            kill(pid, SIGTERM);
            forwarded = 1;
        }
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        sigsuspend(waitmask);   /* returns after SIGTERM or SIGCHLD */
    }
}

int main(int argc, char **argv)
{
    char scheme[64], path[4096];
    const char *uri, *inner, *serverbin;
    struct sigaction sa;
    sigset_t block, orig;
    pid_t pid;
    int status;

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
     * sigsuspend(); a cancel that comes before the fork is forwarded at once. */
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

    uri = getenv("DEVICE_URI");
    if (!uri || !*uri)
        uri = argv[0];
    if (strncmp(uri, URI_PREFIX, strlen(URI_PREFIX)) != 0) {
        fputs("ERROR: copees: the device URI must be copees: followed by the real device URI\n", stderr);
        return CUPS_BACKEND_STOP;
    }
    inner = uri + strlen(URI_PREFIX);
    if (uri_scheme(inner, scheme, sizeof scheme) < 0) {
        /* never print the URI itself: it may carry a password */
        fputs("ERROR: copees: the inner device URI has no usable scheme "
              "(letters, digits, + and -; not copees)\n", stderr);
        return CUPS_BACKEND_STOP;
    }
    serverbin = getenv("CUPS_SERVERBIN");
    if (!serverbin || !*serverbin)
        serverbin = CUPS_SERVERBIN_DEFAULT;
    if ((size_t)snprintf(path, sizeof path, "%s/backend/%s", serverbin, scheme) >= sizeof path) {
        fputs("ERROR: copees: CUPS_SERVERBIN is too long\n", stderr);
        return CUPS_BACKEND_FAILED;
    }
    if (setenv("DEVICE_URI", inner, 1) < 0) {
        fprintf(stderr, "ERROR: copees: cannot set DEVICE_URI: %s\n", strerror(errno));
        return CUPS_BACKEND_FAILED;
    }
    argv[0] = (char *)inner;

    pid = backend_start(path, argv, &orig);
    if (pid < 0) {
        int err = errno;
        fprintf(stderr, "ERROR: copees: cannot run the %s backend (%s): %s\n", scheme, path, strerror(err));
        if (err == EACCES || err == EPERM)
            fprintf(stderr, "ERROR: copees: the %s backend may be one that only root can run; "
                    "copees runs as lp and cannot wrap it\n", scheme);
        return CUPS_BACKEND_STOP;
    }
    fprintf(stderr, "DEBUG: copees: running the %s backend, pid %d\n", scheme, (int)pid);
    if (backend_wait(pid, &orig, &status) < 0) {
        fprintf(stderr, "ERROR: copees: lost the %s backend: %s\n", scheme, strerror(errno));
        return CUPS_BACKEND_FAILED;
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "%s: copees: the %s backend was killed by signal %d (%s)\n",
                term_requested ? "DEBUG" : "ERROR", scheme, WTERMSIG(status), strsignal(WTERMSIG(status)));
        return CUPS_BACKEND_FAILED;
    }
    status = WEXITSTATUS(status);
    if (status > CUPS_BACKEND_RETRY_CURRENT) {
        fprintf(stderr, "DEBUG: copees: the %s backend exited with %d, reported as failed\n", scheme, status);
        return CUPS_BACKEND_FAILED;
    }
    if (status != CUPS_BACKEND_OK)
        fprintf(stderr, "DEBUG: copees: the %s backend exited with %d\n", scheme, status);
    return status;
}
