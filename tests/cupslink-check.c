/* tests/cupslink-check.c - daemon/cupslink.c against a real private cupsd.
 *
 * usage: cupslink-check SERVER PDF SPOOL_DIR [CUPS_TEST_DIR]
 *   SERVER         cupsd's domain socket (or host:port)
 *   PDF            a one-page document to print
 *   SPOOL_DIR      cupsd's RequestRoot (its dNNNNN-NNN / cNNNNN files);
 *                  the purge checks expect PreserveJobFiles Yes, so that
 *                  CUPS's copy is still there when the purge comes
 *   CUPS_TEST_DIR  the tests/cups-env.sh directory; with it, the program
 *                  also checks what reached the virtual printer
 *                  (ipp-jobs.log), then freezes cupsd (SIGSTOP) and
 *                  thaws it (run/cupsd.pid), to test the link's behaviour
 *                  when cupsd hangs; and with CUPS_ENV set to the harness
 *                  command ("bash tests/cups-env.sh"), stops and restarts
 *                  cupsd through it.  tests/cupslink.sh runs all of it.
 *
 * CUPSLINK_USER sets the link's user (default copees-check); run as that
 * user against a cupsd with the stock policy, it checks that CUPS's
 * owner rules let the link see and purge its own jobs.
 *
 * The link runs as in copeesd: libevent made thread-aware, iopool started,
 * completions arriving on the loop.  Output is TAP, plan at the end.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cupslink.h"
#include "iopool.h"
#include "log.h"
#include "util.h"

/* requesting-user-name of the link (CUPSLINK_USER, else this); it must
 * reach the printer as the job's originating user. */
#define CHECK_USER "copees-check"

static struct event_base *base;
static const char *link_user;
static pthread_t loop_thread;
static int tap_n, tap_failed;

/* One TAP line: "ok N - what" when cond, else "not ok N - what". */
static bool __attribute__((format(printf, 2, 3))) tap(bool cond, const char *fmt, ...)
{
    va_list ap;
    printf("%s %d - ", cond ? "ok" : "not ok", ++tap_n);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    if (!cond)
        tap_failed++;
    fflush(stdout);
    return cond;
}

/* A TAP comment line. */
static void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
    va_list ap;
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* ------------------------------------------------------------ running ops */

struct waiter {
    bool done;
    bool on_loop;   /* the completion ran on the loop's thread */
};

/* op->done: note that it came back, and on which thread. */
static void op_done(struct cups_op *op)
{
    struct waiter *w = op->arg;
    w->done = true;
    w->on_loop = pthread_equal(pthread_self(), loop_thread);
}

/* Keeps the base from running empty while we wait. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Run the loop until every waiter in ws[0..n) is done or timeout_ms
 * passes; true if all came back. */
static bool loop_until(struct waiter *ws, int n, int64_t timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        for (int i = 0; i < n; i++)
            all = all && ws[i].done;
        if (all)
            return true;
        if (mono_ms() >= end)
            return false;
        event_base_loop(base, EVLOOP_ONCE);
    }
}

/* Queue op, wait for it (timeout_ms); returns the elapsed ms, or -1 if it
 * never came back (op is then leaked to the link on purpose). */
static int64_t run_op(struct cups_op *op, int64_t timeout_ms, struct waiter *w)
{
    int64_t t0 = mono_ms();
    *w = (struct waiter){0};
    op->done = op_done;
    op->arg = w;
    cupslink_submit(op);
    if (!loop_until(w, 1, timeout_ms))
        return -1;
    return mono_ms() - t0;
}

/* New op of kind on queue. */
static struct cups_op *op_new(enum cups_op_kind kind, const char *queue)
{
    struct cups_op *op = cups_op_new(kind);
    if (queue)
        xstrlcpy(op->queue, queue, sizeof op->queue);
    return op;
}

/* PRINTER on queue, run to completion; caller frees. */
static struct cups_op *printer_op(const char *queue, int64_t timeout_ms, int64_t *ms)
{
    struct waiter w;
    struct cups_op *op = op_new(CUPS_OP_PRINTER, queue);
    *ms = run_op(op, timeout_ms, &w);
    return op;
}

/* ------------------------------------------------------------ files */

/* Open path for SUBMIT on a high descriptor number, so that "it was
 * closed" can be checked without another open() reusing the number. */
static int open_doc(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int hi = fcntl(fd, F_DUPFD_CLOEXEC, 700);
    close(fd);
    return hi;
}

/* The descriptor is closed. */
static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* Count spool entries of CUPS job id: prefix 'd' ("dNNNNN-...") or 'c'. */
static int spool_count(const char *dir, char kind, int id)
{
    char pfx[32];
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d) {
        diag("cannot list %s: %s", dir, strerror(errno));
        return -1;
    }
    snprintf(pfx, sizeof pfx, kind == 'd' ? "d%05d-" : "c%05d", id);
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, pfx, strlen(pfx)) && (kind == 'd' || !e->d_name[strlen(pfx)]))
            n++;
    closedir(d);
    return n;
}

/* The line of DIR/ipp-jobs.log that holds needle, into buf; waits up to
 * timeout_ms for it (the printer's command writes it when the job runs). */
static bool ipp_log_line(const char *dir, const char *needle, char *buf, size_t len,
                         int64_t timeout_ms)
{
    char path[4096];
    int64_t end = mono_ms() + timeout_ms;

    snprintf(path, sizeof path, "%s/ipp-jobs.log", dir);
    for (;;) {
        FILE *f = fopen(path, "re");
        if (f) {
            while (fgets(buf, (int)len, f)) {
                if (strstr(buf, needle)) {
                    buf[strcspn(buf, "\n")] = '\0';
                    fclose(f);
                    return true;
                }
            }
            fclose(f);
        }
        if (mono_ms() >= end)
            return false;
        usleep(100 * 1000);
    }
}

/* Does the space-separated line carry the word exactly? */
static bool has_word(const char *line, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = strstr(line, word); p; p = strstr(p + 1, word))
        if ((p == line || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* cupsd's pid from DIR/run/cupsd.pid, or -1. */
static pid_t cupsd_pid(const char *dir)
{
    char path[4096];
    long pid = -1;
    snprintf(path, sizeof path, "%s/run/cupsd.pid", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    if (fscanf(f, "%ld", &pid) != 1)
        pid = -1;
    fclose(f);
    return (pid_t)pid;
}

/* The process exists and is not a zombie. */
static bool pid_alive(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    bool alive = false;
    if (fgets(buf, sizeof buf, f)) {
        const char *p = strrchr(buf, ')');
        alive = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
    }
    fclose(f);
    return alive;
}

/* Run "ENV VERB DIR" (tests/cups-env.sh); true if it exits 0. */
static bool harness(const char *env, const char *verb, const char *dir)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s '%s' >&2", env, verb, dir);
    return system(cmd) == 0;
}

/* ------------------------------------------------------------ the checks */

struct ctx {
    const char *pdf, *spool, *dir;
    char job_name[64];
    int cups_id;
};

/* PRINTER, SUBMIT, JOB_STATE until completed, LIST, PURGE. */
static void check_print_path(struct ctx *c)
{
    struct waiter w;
    struct cups_op *op;
    int64_t ms;

    op = printer_op("test1", 15000, &ms);
    tap(ms >= 0 && op->ok, "PRINTER test1 answers ok (%s)", op->error);
    tap(op->pstate == 3 && op->accepting, "test1 is idle and accepting (state %d, accepting %d, reasons '%s')",
        op->pstate, op->accepting, op->preasons);
    tap(!op->unreachable, "PRINTER test1: cupsd reachable");
    cups_op_free(op);

    snprintf(c->job_name, sizeof c->job_name, "copees-check%ld-1", (long)getpid());
    op = op_new(CUPS_OP_SUBMIT, "test1");
    op->job_id = 1;
    xstrlcpy(op->job_name, c->job_name, sizeof op->job_name);
    op->doc_fd = open_doc(c->pdf);
    int fd = op->doc_fd;
    op->copies = 2;
    xstrlcpy(op->media, "iso_a4_210x297mm", sizeof op->media);
    xstrlcpy(op->sides, "one-sided", sizeof op->sides);
    xstrlcpy(op->color, "monochrome", sizeof op->color);
    if (fd < 0)
        diag("cannot open %s: %s", c->pdf, strerror(errno));
    ms = run_op(op, 30000, &w);
    tap(ms >= 0 && op->ok && op->cups_job_id > 0, "SUBMIT copies=2 to test1 gives a CUPS job id (%d; %s)",
        op->cups_job_id, op->error);
    tap(w.on_loop, "the completion ran on the loop's thread");
    tap(fd >= 0 && fd_closed(fd), "SUBMIT closed the document descriptor");
    c->cups_id = op->cups_job_id;
    cups_op_free(op);
    if (c->cups_id <= 0)
        return;

    /* Track it as copeesd does: JOB_STATE until a final state. */
    int64_t end = mono_ms() + 60000;
    enum cups_jstate last = CUPS_J_UNKNOWN;
    int impressions = 0, polls = 0;
    bool op_ok = true;
    char seen[128] = "";
    while (mono_ms() < end) {
        op = op_new(CUPS_OP_JOB_STATE, NULL);
        op->cups_job_id = c->cups_id;
        ms = run_op(op, 15000, &w);
        polls++;
        if (ms < 0 || !op->ok) {
            diag("JOB_STATE failed: %s", op->error);
            op_ok = false;
            cups_op_free(op);
            break;
        }
        if (op->jstate != last) {
            size_t l = strlen(seen);
            snprintf(seen + l, sizeof seen - l, "%s%d", l ? "," : "", op->jstate);
        }
        last = op->jstate;
        impressions = op->impressions;
        bool final = op->jstate >= CUPS_J_CANCELED;
        if (final && op->jstate != CUPS_J_COMPLETED)
            diag("job ended in state %d (%s)", op->jstate, op->jreasons);
        cups_op_free(op);
        if (final)
            break;
        usleep(200 * 1000);
    }
    tap(op_ok && last == CUPS_J_COMPLETED, "JOB_STATE reaches completed within 60 s (states %s, %d polls)",
        seen, polls);
    tap(impressions > 0, "JOB_STATE reports job-impressions-completed (%d)", impressions);

    if (c->dir) {
        char line[4096], needle[96];
        snprintf(needle, sizeof needle, "IPP_JOB_NAME=%s", c->job_name);
        bool got = ipp_log_line(c->dir, needle, line, sizeof line, 30000);
        tap(got, "the virtual printer received the job under its job-name");
        if (got)
            diag("%s", line);
        tap(got && has_word(line, "IPP_COPIES=2"), "copies=2 reached the printer");
        /* CUPS turns the media keyword into media-col for the printer. */
        tap(got && (has_word(line, "IPP_MEDIA=iso_a4_210x297mm") ||
                    strstr(line, "IPP_MEDIA_COL={media-size={x-dimension=21000 y-dimension=29700}")),
            "media iso_a4_210x297mm reached the printer");
        tap(got && has_word(line, "IPP_PRINT_COLOR_MODE=monochrome"), "print-color-mode reached the printer");
        tap(got && has_word(line, "pages=1"), "the printer got a one-page PDF");
        snprintf(needle, sizeof needle, "-%s.pdf ", c->job_name);
        tap(got && strstr(line, needle), "the printer's file is named after the job-name only");
        snprintf(needle, sizeof needle, "IPP_JOB_ORIGINATING_USER_NAME=%s", link_user);
        tap(got && has_word(line, needle), "the job's user is the link's user (%s)", link_user);
    }

    op = op_new(CUPS_OP_LIST, "test1");
    snprintf(op->job_name, sizeof op->job_name, "copees-check%ld-", (long)getpid());
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && op->ok && op->nfound == 1 && op->found[0].cups_job_id == c->cups_id &&
            op->found[0].job_id == 1 && op->found[0].jstate == CUPS_J_COMPLETED &&
            op->found[0].documents == 1,
        "LIST by job-name prefix finds the same completed job, our id 1, one document "
        "(%zu found; %s)", op->nfound, op->error);
    cups_op_free(op);

    op = op_new(CUPS_OP_LIST, "test1");
    xstrlcpy(op->job_name, "copees-nosuch-", sizeof op->job_name);
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && op->ok && op->nfound == 0, "LIST of an unknown prefix: ok, nothing (%zu; %s)",
        op->nfound, op->error);
    cups_op_free(op);

    /* (cNNNNN is written lazily, on cupsd's dirty-file timer: not checked.) */
    tap(spool_count(c->spool, 'd', c->cups_id) > 0,
        "before PURGE, CUPS keeps its copy of the document (d%05d-*)", c->cups_id);

    op = op_new(CUPS_OP_PURGE, NULL);
    op->cups_job_id = c->cups_id;
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && op->ok, "PURGE of the completed job: ok (%s)", op->error);
    cups_op_free(op);
    tap(spool_count(c->spool, 'd', c->cups_id) == 0, "after PURGE no d%05d-* file remains in %s",
        c->cups_id, c->spool);
    tap(spool_count(c->spool, 'c', c->cups_id) == 0, "after PURGE no c%05d file remains", c->cups_id);

    op = op_new(CUPS_OP_JOB_STATE, NULL);
    op->cups_job_id = c->cups_id;
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && !op->ok && !strcmp(op->error, "not-found") && op->jstate == CUPS_J_UNKNOWN &&
            !op->unreachable,
        "JOB_STATE of the purged job: not-found (ok %d, '%s')", op->ok, op->error);
    cups_op_free(op);

    op = op_new(CUPS_OP_LIST, "test1");
    snprintf(op->job_name, sizeof op->job_name, "copees-check%ld-", (long)getpid());
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && op->ok && op->nfound == 0, "LIST no longer finds the purged job (%zu found)",
        op->nfound);
    cups_op_free(op);

    op = op_new(CUPS_OP_PURGE, NULL);
    op->cups_job_id = c->cups_id;
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && op->ok && !strcmp(op->error, "not-found"),
        "PURGE of a job CUPS no longer knows: ok, noted not-found ('%s')", op->error);
    cups_op_free(op);
}

/* Operations that CUPS refuses. */
static void check_refusals(struct ctx *c)
{
    struct waiter w;
    struct cups_op *op;
    int64_t ms;

    op = op_new(CUPS_OP_SUBMIT, "nosuchqueue");
    op->job_id = 2;
    xstrlcpy(op->job_name, "copees-check-2", sizeof op->job_name);
    op->doc_fd = open_doc(c->pdf);
    int fd = op->doc_fd;
    op->copies = 1;
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && !op->ok && op->error[0] && !op->unreachable && op->cups_job_id == 0,
        "SUBMIT to a missing queue fails with an error (%s)", op->error);
    tap(fd >= 0 && fd_closed(fd), "the failed SUBMIT closed the document descriptor too");
    cups_op_free(op);

    /* A document that cannot be read (a directory): the job CUPS created
     * must be canceled and purged, not left waiting. */
    op = op_new(CUPS_OP_SUBMIT, "test1");
    op->job_id = 3;
    xstrlcpy(op->job_name, "copees-check-3", sizeof op->job_name);
    fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    op->doc_fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 700) : -1;
    if (fd >= 0)
        close(fd);
    fd = op->doc_fd;
    ms = run_op(op, 30000, &w);
    tap(ms >= 0 && !op->ok && strstr(op->error, "reading the document") && !op->unreachable &&
            op->cups_job_id == 0,
        "SUBMIT of an unreadable document fails and cleans up (id %d; %s)", op->cups_job_id, op->error);
    tap(fd >= 0 && fd_closed(fd), "the unreadable document's descriptor is closed");
    cups_op_free(op);
    op = op_new(CUPS_OP_LIST, "test1");
    xstrlcpy(op->job_name, "copees-check-", sizeof op->job_name);
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && op->ok && op->nfound == 0, "no CUPS job is left of it (LIST: %zu; %s)",
        op->nfound, op->error);
    cups_op_free(op);

    op = printer_op("nosuchqueue", 15000, &ms);
    tap(ms >= 0 && !op->ok && op->error[0] && !op->unreachable,
        "PRINTER of a missing queue fails, cupsd reachable (%s)", op->error);
    cups_op_free(op);

    op = op_new(CUPS_OP_JOB_STATE, NULL);
    ms = run_op(op, 15000, &w);
    tap(ms >= 0 && !op->ok && op->error[0], "JOB_STATE without a CUPS job id is refused (%s)", op->error);
    cups_op_free(op);
}

/* cupsd frozen: ops give up in time; stop completes queued ops; the link
 * comes back when cupsd does.  Then cupsd gone: ops fail at once. */
static void check_outages(struct ctx *c, const char *server, const char *user)
{
    struct waiter w, ws[3];
    struct cups_op *op, *ops[3];
    int64_t ms;
    pid_t pid = cupsd_pid(c->dir);

    if (!tap(pid > 0 && pid_alive(pid), "cupsd's pid is known (%ld)", (long)pid))
        return;

    kill(pid, SIGSTOP);
    op = printer_op("test1", 30000, &ms);
    tap(ms >= 0 && ms < 10000 && !op->ok && op->unreachable,
        "cupsd frozen: PRINTER gives up within 10 s, unreachable (%lld ms; %s)", (long long)ms, op->error);
    cups_op_free(op);

    /* Queue three ops behind a hung one, then stop the link. */
    for (int i = 0; i < 3; i++) {
        ops[i] = op_new(CUPS_OP_PRINTER, "test1");
        ws[i] = (struct waiter){0};
        ops[i]->done = op_done;
        ops[i]->arg = &ws[i];
        cupslink_submit(ops[i]);
    }
    usleep(300 * 1000);    /* let the first one reach the frozen cupsd */
    int64_t t0 = mono_ms();
    cupslink_stop();
    ms = mono_ms() - t0;
    tap(ms < 3000, "cupslink_stop returns promptly with an op hung in cupsd (%lld ms)", (long long)ms);
    bool back = loop_until(ws, 3, 5000);
    int stopping = 0;
    for (int i = 0; i < 3; i++)
        stopping += ws[i].done && !ops[i]->ok && !strcmp(ops[i]->error, "stopping");
    tap(back && stopping == 3, "all ops queued at stop complete with ok=false \"stopping\" (%d of 3)", stopping);
    for (int i = 0; i < 3; i++)
        if (ws[i].done)
            cups_op_free(ops[i]);

    op = op_new(CUPS_OP_PRINTER, "test1");
    ms = run_op(op, 5000, &w);
    tap(ms >= 0 && !op->ok && !strcmp(op->error, "stopping"), "an op submitted after stop completes with \"stopping\"");
    cups_op_free(op);

    tap(cupslink_start(server, user) == 0, "the link starts again");
    kill(pid, SIGCONT);
    op = printer_op("test1", 20000, &ms);
    tap(ms >= 0 && op->ok && !op->unreachable, "cupsd thawed: PRINTER ok again (%lld ms; %s)",
        (long long)ms, op->error);
    cups_op_free(op);

    /* Outages through the harness: cupsd goes away and comes back. */
    const char *env = getenv("CUPS_ENV");
    if (!env || !*env) {
        diag("CUPS_ENV unset: the restart checks are skipped");
        return;
    }
    tap(harness(env, "stop-cupsd", c->dir), "cupsd stopped (%s stop-cupsd)", env);
    op = printer_op("test1", 30000, &ms);
    tap(ms >= 0 && ms < 10000 && !op->ok && op->unreachable,
        "cupsd gone: PRINTER fails promptly, unreachable (%lld ms; %s)", (long long)ms, op->error);
    cups_op_free(op);

    op = op_new(CUPS_OP_SUBMIT, "test1");
    op->job_id = 4;
    xstrlcpy(op->job_name, "copees-check-4", sizeof op->job_name);
    op->doc_fd = open_doc(c->pdf);
    int fd = op->doc_fd;
    ms = run_op(op, 30000, &w);
    tap(ms >= 0 && ms < 10000 && !op->ok && op->unreachable && fd >= 0 && fd_closed(fd),
        "cupsd gone: SUBMIT fails promptly, unreachable, document closed (%lld ms; %s)", (long long)ms,
        op->error);
    cups_op_free(op);

    tap(harness(env, "start-cupsd", c->dir), "cupsd started again (%s start-cupsd)", env);
    op = printer_op("test1", 20000, &ms);
    tap(ms >= 0 && op->ok && !op->unreachable, "cupsd back: PRINTER ok, link reconnected (%s)", op->error);
    cups_op_free(op);

    /* Restart behind an idle connection: the next op must not notice. */
    tap(harness(env, "stop-cupsd", c->dir) && harness(env, "start-cupsd", c->dir),
        "cupsd restarted behind the link's idle connection");
    op = printer_op("test1", 20000, &ms);
    tap(ms >= 0 && op->ok && !op->unreachable,
        "first op after a restart succeeds: stale connection replaced (%lld ms; %s)", (long long)ms, op->error);
    cups_op_free(op);
}

int main(int argc, char **argv)
{
    struct ctx c = {0};

    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s SERVER PDF SPOOL_DIR [CUPS_TEST_DIR]\n", argv[0]);
        return 2;
    }
    c.pdf = argv[2];
    c.spool = argv[3];
    c.dir = argc > 4 ? argv[4] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    log_init("cupslink-check", getenv("CUPSLINK_DEBUG") != NULL);
    link_user = getenv("CUPSLINK_USER") && *getenv("CUPSLINK_USER") ? getenv("CUPSLINK_USER") : CHECK_USER;

    if (evthread_use_pthreads() < 0 || !(base = event_base_new())) {
        printf("Bail out! libevent without threads\n");
        return 1;
    }
    loop_thread = pthread_self();
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 100 * 1000};
    event_add(tick, &tv);
    if (iopool_start(base, 1) < 0 || cupslink_start(argv[1], link_user) < 0) {
        printf("Bail out! cannot start iopool or the link\n");
        return 1;
    }

    check_print_path(&c);
    check_refusals(&c);
    if (c.dir)
        check_outages(&c, argv[1], link_user);

    cupslink_stop();
    iopool_stop();
    event_free(tick);
    event_base_free(base);
    printf("1..%d\n", tap_n);
    return tap_failed ? 1 : 0;
}
