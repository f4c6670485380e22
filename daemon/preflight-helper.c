/* preflight-helper.c - the preflight helper (libexec/copees/preflight): a
 * single-threaded server that checks PDFs for copeesd, one sandboxed child
 * per document.
 *
 *   preflight --server       fd 3: the daemon's SOCK_SEQPACKET socket
 *   preflight [--memory BYTES] [--cpu SECONDS] [--max-pages N] [--no-render]
 *             < document.pdf  one document, the stream on stdout (debugging)
 *   preflight --features     the sandbox features of this build
 *   preflight --warm N [...] < document.pdf
 *                            check the document N times in this one
 *                            sandboxed process and print the CPU time of
 *                            a check on stdout, a pipe (bench/preflight.sh:
 *                            what a check costs without a fresh process
 *                            per document)
 *   preflight --lean-check   start as a server would, then print how many
 *                            mappings its children would go without
 *                            (preflight-lean.c) and how many are marked,
 *                            the free heap a child could still take
 *                            from the server (-1: cannot tell), and what
 *                            a child gets of its memory (preflight-mem.c)
 *
 * Design notes:
 * - Start-up (once): close every fd above 3, no core files, no new
 *   privileges, die with the daemon; start poppler, fontconfig and cairo
 *   on a built-in document (pfc_init); leave the libraries no check uses
 *   out of children (pfl_setup, after a self-test child); let children
 *   inherit the page tables of code (pfm_inherit_text); settle the heap
 *   (pfm_heap_settle); install the server's filter; put the children's
 *   fresh heap in a huge page (pfm_heap_huge); learn which of its pages
 *   a check writes, for children to copy at once (pfm_learn_writes); say
 *   PFP_HELLO.  That
 *   is the ~17 ms an exec per document would pay for every document.
 * - Per document (PFP_CHECK with its fd): a pipe, fork, PFP_STARTED with
 *   the child's pid and a pidfd of it.  The child dies with the server, keeps fds 0-2 (all
 *   /dev/null), the document as fd 3 and the pipe as fd 4, sets its
 *   rlimits, adds its own filter, checks, writes the report line and
 *   _exit(0)s.  The server relays whatever the pipe carries as PFP_DATA
 *   without reading it, and after the child is reaped (SIGCHLD through a
 *   signalfd) drains the pipe and sends PFP_DONE with the wait status.
 * - Several children run at once; the daemon decides how many.  The
 *   wall-clock deadline is the daemon's: it kills the child through the
 *   pidfd (opened before the child can be reaped: never another process
 *   that got its pid).  If the
 *   server dies, its children die with it (PR_SET_PDEATHSIG), and the
 *   daemon kills the process group it put us in.
 * - The socket to the daemon is blocking: the daemon always reads, and
 *   what is in flight is bounded by the documents it sent.
 * - SIGTERM, SIGINT and SIGHUP are ignored by the server and so by its
 *   children: a stop signal sent to every process of the service
 *   (systemd's KillMode=control-group) is for the daemon, which drains
 *   and then kills the server's process group with SIGKILL.
 * - The server sets its OOM score adjustment to 1000, which its children
 *   inherit: under memory pressure the kernel kills a check rather than
 *   the daemon or cupsd (and the unit's OOMPolicy=continue keeps systemd
 *   from stopping the service for it).
 * - Messages of our own go to fd 2 with dprintf: from pfc_init on, the
 *   stderr stream is the counter of poppler's diagnostics
 *   (preflight-checks.c), and under a child's limits (also one-shot and
 *   --warm) RLIMIT_FSIZE 0 refuses writes to a regular file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preflight-checks.h"
#include "preflight-lean.h"
#include "preflight-mem.h"
#include "preflight-proto.h"
#include "preflight-sandbox.h"

#define MAX_CHILDREN 128     /* workers (at most 64), plus children the daemon is done with
                                 * that are still exiting */
#define EXIT_SANDBOX 71        /* a child could not set up its sandbox */

struct child {
    pid_t pid;                 /* 0: free slot */
    uint32_t id;
    int pipe;                  /* read end, -1 once at EOF */
    size_t relayed;
    bool overflow;
};

static struct child children[MAX_CHILDREN];
static pid_t server_pid;
static char relay_buf[PFP_PAYLOAD_MAX];

/* Send a message to the daemon; a failure means the daemon is gone. */
static void say_fd(uint32_t type, uint32_t id, int32_t a, int32_t b, const void *payload,
                   size_t len, int fd)
{
    struct pfp_msg m = {.type = type, .id = id, .a = a, .b = b};

    if (pfp_send(PFP_SERVER_FD, &m, payload, len, fd) < 0)
        _exit(errno == EPIPE || errno == ECONNRESET ? 0 : 1);
}

static void say(uint32_t type, uint32_t id, int32_t a, int32_t b, const void *payload, size_t len)
{
    say_fd(type, id, a, b, payload, len, -1);
}

/* A pidfd of our child pid, not reaped yet (so it is that process), or -1
 * where the kernel has none (before Linux 5.3). */
static int child_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    return -1;
#endif
}

/* The child's side: never returns. */
static void child_run(const struct pfp_msg *req, int doc, int out)
{
    struct pfc_opts o = {.max_pages = (int)(req->max_pages ? req->max_pages : 1),
                         .render = req->flags & PFP_CHECK_RENDER, .memory = req->memory,
                         .out_fd = 4};
    json_t *report;

#ifdef COPEES_TEST_KNOBS
    o.knobs = req->flags & PFP_CHECK_KNOBS;
#endif
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != server_pid)
        _exit(EXIT_SANDBOX);
    pfm_child_prefault();          /* the server's pages a check writes, copied at once */
    /* fds: 0-2 /dev/null, 3 the document, 4 the stream */
    doc = fcntl(doc, F_DUPFD, 10);
    out = fcntl(out, F_DUPFD, 10);
    if (doc < 0 || out < 0 || dup2(doc, 3) < 0 || dup2(out, 4) < 0 || dup2(1, 2) < 0 ||
        close_range(5, ~0U, 0) < 0)
        _exit(EXIT_SANDBOX);
    if (pfs_child_limits(req->memory, req->cpu_s ? req->cpu_s : 1) < 0 || pfs_child_filter() < 0)
        _exit(EXIT_SANDBOX);
    pfc_diag_reset();
    report = pfc_check(3, &o);
    _exit(report && pfc_report_write(4, report) == 0 ? 0 : 1);
}

/* Start a child for the document doc (closed here). */
static void child_start(const struct pfp_msg *req, int doc)
{
    struct child *c = NULL;
    int p[2];

    for (int i = 0; i < MAX_CHILDREN && !c; i++)
        if (children[i].pid == 0)
            c = &children[i];
    if (!c || pipe2(p, O_CLOEXEC) < 0) {
        close(doc);
        say(PFP_DONE, req->id, 0, PFP_DONE_FORK_FAILED, NULL, 0);
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        child_run(req, doc, p[1]);
    close(doc);
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        say(PFP_DONE, req->id, 0, PFP_DONE_FORK_FAILED, NULL, 0);
        return;
    }
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    *c = (struct child){.pid = pid, .id = req->id, .pipe = p[0]};
    /* with a pidfd, so that the daemon's kill can never reach another
     * process that got the pid after we reaped this one */
    int pidfd = child_pidfd(pid);
    say_fd(PFP_STARTED, req->id, pid, 0, NULL, 0, pidfd);
    if (pidfd >= 0)
        close(pidfd);
}

/* Relay what c's pipe holds; at EOF close it.  all: until EOF (the child
 * is gone), else one read. */
static void child_relay(struct child *c, bool all)
{
    ssize_t n;

    while (c->pipe >= 0) {
        n = read(c->pipe, relay_buf, sizeof relay_buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN && !all)
            return;
        if (n <= 0) {
            close(c->pipe);
            c->pipe = -1;
            return;
        }
        c->relayed += (size_t)n;
        if (c->relayed > PFP_STREAM_MAX && !c->overflow) {
            c->overflow = true;
            kill(c->pid, SIGKILL);
        }
        if (!c->overflow)
            say(PFP_DATA, c->id, 0, 0, relay_buf, (size_t)n);
        if (!all)
            return;
    }
}

/* Reap every child that has ended: its last bytes, then PFP_DONE. */
static void children_reap(void)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        for (int i = 0; i < MAX_CHILDREN; i++) {
            struct child *c = &children[i];
            if (c->pid != pid)
                continue;
            child_relay(c, true);
            say(PFP_DONE, c->id, status, c->overflow ? PFP_DONE_OVERFLOW : 0, NULL, 0);
            c->pid = 0;
        }
}

/* The daemon hung up: end every child, then ourselves. */
static void __attribute__((noreturn)) server_exit(void)
{
    for (int i = 0; i < MAX_CHILDREN; i++)
        if (children[i].pid > 0)
            kill(children[i].pid, SIGKILL);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    _exit(0);
}

/* The features of this build: the sandbox's, "lean" when the children
 * go without the unused libraries (a server's, after pfl_setup), and the
 * test knobs. */
static const char *features(bool lean, const char *layout)
{
    static char buf[112];
#ifdef COPEES_TEST_KNOBS
    const char *knobs = " test-knobs";
#else
    const char *knobs = "";
#endif
    snprintf(buf, sizeof buf, "%s%s%s%s%s", pfs_features(), lean ? " lean" : "",
             layout ? " layout-" : "", layout ? layout : "", knobs);
    return buf;
}

/* layout: 'f' fault-saving, 'p' plain, 'a' by this machine's fault cost */
static int server(int layout)
{
    struct pollfd pfd[2 + MAX_CHILDREN];
    struct child *polled[MAX_CHILDREN];
    const char *feat;
    sigset_t mask;
    int sfd;

    server_pid = getpid();
    pfm_malloc_setup();
    /* Stopping is the daemon's: it drains (checks under way end) and then
     * kills us.  systemd sends SIGTERM to every process of the service,
     * a terminal SIGINT or SIGHUP to a process group; ignored here and in
     * every child (which inherits it), they no longer end a check, whose
     * document was then rejected as preflight-crashed. */
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigaction(SIGTERM, &ign, NULL);
    sigaction(SIGINT, &ign, NULL);
    sigaction(SIGHUP, &ign, NULL);
    /* Under memory pressure the kernel's OOM killer takes the process
     * that scores highest: a check (or this server), not the daemon or
     * cupsd.  Raising one's own score needs no privilege, and children
     * inherit it.  A check killed so ends as preflight-too-complex. */
    int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
    if (oom < 0 || write(oom, "1000", 4) != 4)
        dprintf(STDERR_FILENO, "preflight: cannot raise the OOM score: %s\n", strerror(errno));
    if (oom >= 0)
        close(oom);
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    if (close_range(PFP_SERVER_FD + 1, ~0U, 0) < 0 || pfs_server_limits() < 0 ||
        sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
        (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        dprintf(STDERR_FILENO, "preflight: cannot set up the server: %s\n", strerror(errno));
        return 1;
    }
    if (pfc_init() < 0) {
        dprintf(STDERR_FILENO, "preflight: cannot start the PDF library\n");
        return 1;
    }
    pfs_child_filter_prepare();
    if (layout == 'a')
        layout = pfm_fault_ns() >= PFM_DEAR_FAULT_NS ? 'f' : 'p';
    bool saving = layout == 'f';
    feat = features(pfl_setup(NULL) > 0, saving ? "fault-saving" : "plain");
    if (saving)
        pfm_inherit_text();
    pfm_heap_settle();
    if (pfs_server_filter() < 0) {
        dprintf(STDERR_FILENO, "preflight: cannot install the system call filter\n");
        return 1;
    }
    if (saving) {
        pfm_heap_huge();          /* last: the server allocates no more */
        pfm_learn_writes(pfc_selftest);
    }
    say(PFP_HELLO, 0, PFP_VERSION, server_pid, feat, strlen(feat));
    for (;;) {
        nfds_t n = 2, k = 0;
        pfd[0] = (struct pollfd){.fd = PFP_SERVER_FD, .events = POLLIN};
        pfd[1] = (struct pollfd){.fd = sfd, .events = POLLIN};
        for (int i = 0; i < MAX_CHILDREN; i++)
            if (children[i].pid > 0 && children[i].pipe >= 0) {
                polled[k++] = &children[i];
                pfd[n++] = (struct pollfd){.fd = children[i].pipe, .events = POLLIN};
            }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 1;
        }
        for (nfds_t i = 2; i < n; i++)
            if (pfd[i].revents)
                child_relay(polled[i - 2], false);
        if (pfd[1].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) > 0)
                ;
            children_reap();
        }
        if (pfd[0].revents) {
            struct pfp_msg m;
            int doc, r = pfp_recv(PFP_SERVER_FD, &m, relay_buf, sizeof relay_buf, &doc);
            if (r == 0 || (r < 0 && errno != EAGAIN && errno != EBADMSG))
                server_exit();
            if (r > 0 && m.type == PFP_CHECK && doc >= 0)
                child_start(&m, doc);
            else if (r > 0 && doc >= 0)
                close(doc);
        }
    }
}

/* One document on stdin, the stream on stdout, in this process. */
static int one_shot(unsigned long long memory, unsigned cpu, int max_pages, bool render)
{
    struct pfc_opts o = {.max_pages = max_pages, .render = render, .memory = memory, .out_fd = 1};
    json_t *report;

    if (close_range(STDERR_FILENO + 1, ~0U, 0) < 0 || pfc_init() < 0 ||
        pfs_child_limits(memory, cpu) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        pfs_child_filter() < 0) {
        dprintf(STDERR_FILENO, "preflight: cannot set up the sandbox\n");
        return 1;
    }
    report = pfc_check(STDIN_FILENO, &o);
    _exit(report && pfc_report_write(1, report) == 0 ? 0 : 1);   /* as a child does */
}

/* --warm: the document on stdin checked n times in this process, under
 * the same limits and filter (the address-space limit holds the n checks
 * together), and "warm checks N cpu_ms_per_check MS" on stdout.  The
 * first check is not counted: it is the one that pays for the pages this
 * process has not touched yet, as every child of the server does.  Each
 * check maps the document and, as in a child that exits after it, the
 * mapping stays: n times a large file outgrows the address-space limit
 * and the later checks read through the fd (a small file is meant). */
static int warm(unsigned long long memory, unsigned cpu, int max_pages, bool render, unsigned n)
{
    struct pfc_opts o = {.max_pages = max_pages, .render = render, .memory = memory, .out_fd = -1};
    struct timespec t0 = {0}, t1;

    if (close_range(STDERR_FILENO + 1, ~0U, 0) < 0 || pfc_init() < 0 ||
        pfs_child_limits(memory, cpu) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
        pfs_child_filter() < 0) {
        dprintf(STDERR_FILENO, "preflight: cannot set up the sandbox\n");
        return 1;
    }
    for (unsigned i = 0; i <= n; i++) {
        int fd = fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        json_t *report = fd < 0 ? NULL : pfc_check(fd, &o);    /* closes fd */
        if (!report)
            return 1;
        json_decref(report);
        if (i == 0)
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    /* (a pipe, as a child's stream is: RLIMIT_FSIZE 0 refuses files) */
    return dprintf(STDOUT_FILENO, "warm checks %u cpu_ms_per_check %.3f\n", n,
                   ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
                       n) < 0;
}

/* What a server's start-up leaves out of its children, on stdout.  Test
 * builds leave out one more library, $COPEES_TEST_LEAN_EXTRA, or make the
 * self-test child hang ($COPEES_TEST_LEAN_HANG), so that the fallback can
 * be seen failing safe. */
static int lean_check(void)
{
    const char *extra = NULL;

#ifdef COPEES_TEST_KNOBS
    extra = getenv("COPEES_TEST_LEAN_EXTRA");
    if (getenv("COPEES_TEST_LEAN_HANG"))
        pfl_test_hang();
#endif
    pfm_malloc_setup();
    if (close_range(STDERR_FILENO + 1, ~0U, 0) < 0 || pfs_server_limits() < 0 || pfc_init() < 0) {
        dprintf(STDERR_FILENO, "preflight: cannot start as a server\n");
        return 1;
    }
    int n = pfl_setup(extra);     /* (a failed self-test child leaves no core: no core files) */
    int marked = pfl_count_dontcopy();
    int inherited = pfm_inherit_text();
    long heap = pfm_heap_settle();
    printf("left out %d, marked %d\nheap free outside the top %ld\ninherited code mappings %d\n",
           n, marked, heap, inherited);
    void *huge = pfm_heap_huge();
    printf("copy-on-write pages learned %ld\n", pfm_learn_writes(pfc_selftest));
    return pfm_report(stdout, huge) < 0;
}

/* A positive number up to max with an optional K/M/G (1024-based): 0 / -1. */
static int parse_num(const char *s, unsigned long long max, unsigned long long *out)
{
    const char *units = "KMG";
    unsigned long long v, mul = 1;
    char *end;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (*end && strchr(units, *end))
        mul = 1ULL << (10 * (strchr(units, *end++) - units + 1));
    if (*s < '0' || *s > '9' || errno || *end || v == 0 || v > max / mul)
        return -1;
    *out = v * mul;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", no_argument, NULL, 's'}, {"features", no_argument, NULL, 'f'},
        {"lean-check", no_argument, NULL, 'l'},
        {"memory", required_argument, NULL, 'm'}, {"cpu", required_argument, NULL, 'c'},
        {"max-pages", required_argument, NULL, 'p'}, {"no-render", no_argument, NULL, 'n'},
        {"warm", required_argument, NULL, 'w'}, {"layout", required_argument, NULL, 'L'},
        {NULL, 0, NULL, 0}};
    unsigned long long memory = 512ULL << 20, cpu = 30, pages = 2000, repeat = 0, v;
    bool render = true;
    int c, mode = 0, layout = 'a';

    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 's' || c == 'f' || c == 'l')
            mode = c;
        else if (c == 'm' && parse_num(optarg, ULLONG_MAX, &v) == 0)
            memory = v;
        else if (c == 'c' && parse_num(optarg, 7 * 86400, &v) == 0)
            cpu = v;
        else if (c == 'p' && parse_num(optarg, INT_MAX, &v) == 0)
            pages = v;
        else if (c == 'n')
            render = false;
        else if (c == 'w' && parse_num(optarg, 1000000, &v) == 0)
            repeat = v;
        else if (c == 'L' && strcmp(optarg, "auto") == 0)
            layout = 'a';
        else if (c == 'L' && strcmp(optarg, "fault-saving") == 0)
            layout = 'f';
        else if (c == 'L' && strcmp(optarg, "plain") == 0)
            layout = 'p';
        else
            break;
    }
    if (c != -1 || optind != argc) {
        fputs("usage: preflight --server [--layout auto|fault-saving|plain] | --features | "
              "--lean-check | [--memory BYTES] [--cpu SECONDS] [--max-pages N] [--no-render] "
              "[--warm N] < document.pdf\n", stderr);
        return 2;
    }
    if (mode == 'f')
        return printf("%s\n", features(false, NULL)) < 0;
    if (mode == 's')
        return server(layout);
    if (mode == 'l')
        return lean_check();
    if (repeat)
        return warm(memory, (unsigned)cpu, (int)pages, render, (unsigned)repeat);
    return one_shot(memory, (unsigned)cpu, (int)pages, render);
}
