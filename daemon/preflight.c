/* preflight.c - the helper server's client in the daemon (see preflight.h
 * and docs/preflight.md).
 *
 * Design notes:
 * - One helper server, exec'd with posix_spawn (never a bare fork of the
 *   threaded daemon) in a process group of its own, with an empty
 *   environment, fds 0-1 on /dev/null, 2 our stderr and 3 its end of a
 *   SOCK_SEQPACKET socketpair.  It is started with the daemon, and again
 *   for the next document after it died; documents are sent at once (the
 *   socket buffers them while it starts up).
 * - Up to [preflight] workers documents are in the server at a time, each
 *   checked by a child of its own; the others wait here in order.
 * - Deadline per document: timeout from when it was sent, plus page_time
 *   for each page once the child has said how many (capped at max_pages).
 *   At the deadline the child is killed through the pidfd the server
 *   passed with PFP_STARTED (by pid on a kernel without pidfds); if
 *   the server has not even started a child by then, or no PFP_DONE comes
 *   within KILL_GRACE_MS of the kill, the server is taken for wedged.
 * - A server that exits, hangs up or is taken for wedged is killed with
 *   its whole process group; every document it held is rejected
 *   (preflight-timeout for one past its deadline, preflight-crashed for
 *   the others) and the next document starts a new server.
 * - How a child ended becomes the failure code: our kill ->
 *   preflight-timeout; SIGXCPU, a SIGKILL that was not ours, or an abort
 *   after the "oom" line -> preflight-too-complex; any other signal
 *   (SIGSYS: the filter) or exit, or no report -> preflight-crashed.
 * - The child's stream is parsed line by line as it arrives.  The report
 *   line is the last thing a child writes: the document is finished there,
 *   without waiting for the child's exit (its address space takes a while
 *   to tear down; 15-20% of a one-page check), and the child is killed
 *   in case it would not exit (its PFP_DONE is then ignored).  The
 *   verdict itself is preflight-verdict.c's.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "conf.h"
#include "daemon.h"
#include "job.h"
#include "log.h"
#include "preflight-proto.h"
#include "preflight-verdict.h"
#include "preflight.h"
#include "util.h"

#define KILL_GRACE_MS 5000
#define DEAD_MAX 8
#define SERVER_LOST (1u << 16)         /* pf_finish() flag beside PFP_DONE_* */

struct pf {
    int64_t job_id;
    int fd;                    /* the document until it is sent */
    struct pf_ticket ticket;
    preflight_done_fn done;
    void *arg;
    uint32_t id;               /* protocol id */
    pid_t pid;                 /* the child checking it, 0 until PFP_STARTED */
    int pidfd;                 /* its pidfd (PFP_STARTED's fd), -1 if none */
    int pages;                 /* announced by the child, 0 until then */
    bool timed_out, oom, fail_now;
    json_t *report;            /* the "report" line, parsed */
    struct evbuffer *stream;   /* bytes of the child's stream not yet parsed */
    struct event *timer;
    int64_t sent_ms, kill_ms;
    struct pf *next;
};

static struct {
    pid_t pid;                 /* 0: no server */
    int sock;
    struct event *ev;
    bool ready;                /* PFP_HELLO seen */
} srv = {.sock = -1};
static pid_t dead[DEAD_MAX];   /* servers given up on, not yet reaped */
static struct pf *queue_head, *queue_tail, *running;
static int nrunning, nlimbo;   /* in the server; failed, finishing from the loop */
static uint32_t next_id = 1;

static void pf_start_next(void);
static void server_lost(const char *why);

static void pf_free(struct pf *p)
{
    if (p->fd >= 0)
        close(p->fd);
    if (p->pidfd >= 0)
        close(p->pidfd);
    if (p->timer)
        event_free(p->timer);
    if (p->stream)
        evbuffer_free(p->stream);
    json_decref(p->report);
    free(p);
}

/* The failure code for how p's child ended, or NULL when its report stands. */
static const char *pf_failure(struct pf *p, int status, int flags)
{
    if (p->timed_out)
        return "preflight-timeout";
    if (flags & SERVER_LOST)
        return "preflight-crashed";
    if (p->fail_now || (flags & PFP_DONE_FORK_FAILED)) {
        log_job(LOG_LVL_ERR, p->job_id, NULL, "preflight: no helper could check the document");
        return "preflight-crashed";
    }
    if (flags & PFP_DONE_OVERFLOW) {
        log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: the helper wrote too much; killed");
        return "preflight-crashed";
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: the check was killed by signal %d%s%s",
                sig, sig == SIGSYS ? " (a system call outside the sandbox)" : "",
                p->oom ? " after running out of memory" : "");
        return sig == SIGXCPU || sig == SIGKILL || p->oom ? "preflight-too-complex"
                                                          : "preflight-crashed";
    }
    if (WEXITSTATUS(status) != 0 || !p->report) {
        log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: the check exited with %d%s",
                WEXITSTATUS(status), WEXITSTATUS(status) == 71 ? " (sandbox set-up failed)"
                                     : !p->report ? " without a report" : "");
        return p->oom ? "preflight-too-complex" : "preflight-crashed";
    }
    return NULL;
}

/* p is over (it is in no list): verdict, callback, next document. */
static void pf_finish(struct pf *p, int status, int flags)
{
    const char *fail = pf_failure(p, status, flags);
    bool reject;
    json_t *out = pf_verdict_build(p->job_id, p->report, fail, p->pages, &p->ticket, D.conf, &reject);

    log_job(LOG_LVL_INFO, p->job_id, NULL, "preflight: %s, %d pages, %lld ms", reject ? "rejected"
            : "accepted", (int)json_integer_value(json_object_get(out, "pages")),
            (long long)(mono_ms() - p->sent_ms));
    p->done(p->job_id, out, reject, p->arg);
    pf_free(p);
}

/* Take p out of the running list. */
static void pf_unlink(struct pf *p)
{
    for (struct pf **pp = &running; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            nrunning--;
            return;
        }
}

static struct pf *pf_find(uint32_t id)
{
    for (struct pf *p = running; p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

/* (Re)arm p's timer for when its deadline comes, from now. */
static void pf_arm(struct pf *p)
{
    int64_t pages = p->pages < D.conf->max_pages ? p->pages : D.conf->max_pages;
    int64_t left = p->sent_ms + D.conf->timeout_ms + D.conf->page_time_ms * pages - mono_ms();

    if (p->timed_out)
        left = p->kill_ms + KILL_GRACE_MS - mono_ms();
    if (left < 0)
        left = 0;
    struct timeval tv = {(time_t)(left / 1000), (suseconds_t)(left % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

/* SIGKILL p's child: through its pidfd, which names that process and no
 * other even once the server has reaped it; by pid only with a helper or
 * kernel that gave none. */
static void pf_kill(struct pf *p)
{
#ifdef SYS_pidfd_send_signal
    if (p->pidfd >= 0) {
        syscall(SYS_pidfd_send_signal, p->pidfd, SIGKILL, NULL, 0);
        return;
    }
#endif
    if (p->pid > 0)
        kill(p->pid, SIGKILL);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pf *p = arg;

    if (p->fail_now) {               /* never sent: see pf_start_next() */
        nlimbo--;
        pf_finish(p, 0, 0);
        pf_start_next();
    } else if (p->timed_out || p->pid <= 0) {
        server_lost(p->timed_out ? "did not report a killed check" : "did not start a check in time");
    } else {
        log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: no verdict after %lld ms, killing the "
                "check", (long long)(mono_ms() - p->sent_ms));
        p->timed_out = true;
        p->kill_ms = mono_ms();
        pf_kill(p);
        pf_arm(p);
    }
}

/* Parse the complete lines of p's stream. */
static void pf_parse(struct pf *p)
{
    size_t len;
    char *line;

    while ((line = evbuffer_readln(p->stream, &len, EVBUFFER_EOL_LF)) != NULL) {
        if (strncmp(line, PFC_PAGES, strlen(PFC_PAGES)) == 0 && p->pages == 0) {
            long n = strtol(line + strlen(PFC_PAGES), NULL, 10);
            p->pages = n > 0 && n < 1000000000 ? (int)n : 0;
            if (!p->timed_out)
                pf_arm(p);
        } else if (strcmp(line, PFC_OOM) == 0) {
            p->oom = true;
        } else if (strncmp(line, PFC_REPORT, strlen(PFC_REPORT)) == 0 && !p->report) {
            json_error_t je;
            p->report = json_loads(line + strlen(PFC_REPORT), JSON_REJECT_DUPLICATES, &je);
            if (!json_is_object(p->report)) {
                json_decref(p->report);
                p->report = NULL;
                log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: the report does not parse");
            }
        }
        free(line);
    }
}

/* One message from the server. */
static void server_msg(const struct pfp_msg *m, const char *payload, int passed)
{
    struct pf *p = m->type == PFP_HELLO ? NULL : pf_find(m->id);

    if (passed >= 0 && (m->type != PFP_STARTED || !p || p->pidfd >= 0)) {
        close(passed);                 /* only PFP_STARTED brings one */
        passed = -1;
    }
    if (m->type == PFP_HELLO) {
        srv.ready = true;
        log_info("preflight: helper server %d ready (protocol %d; %.*s), %d check%s at once",
                 (int)srv.pid, m->a, (int)m->len, payload, D.conf->workers,
                 D.conf->workers == 1 ? "" : "s");
    } else if (!p) {
        if (m->type != PFP_DONE)       /* a PFP_DONE after the report line is the rule */
            log_debug("preflight: message %u for a document no longer here", m->type);
    } else if (m->type == PFP_STARTED) {
        p->pid = m->a;
        p->pidfd = passed;
    } else if (m->type == PFP_DATA) {
        evbuffer_add(p->stream, payload, m->len);
        pf_parse(p);
        if (p->report && !p->timed_out) {  /* the last line: done, whatever its exit */
            pf_kill(p);                /* it is exiting; a check that would not is ended */
            pf_unlink(p);
            pf_finish(p, 0, 0);
            pf_start_next();
        }
    } else if (m->type == PFP_DONE) {
        pf_unlink(p);
        pf_finish(p, m->a, m->b);
        pf_start_next();
    }
}

static void server_read_cb(evutil_socket_t fd, short what, void *arg)
{
    static char payload[PFP_PAYLOAD_MAX];
    struct pfp_msg m;
    int r, passed;

    while (srv.sock == fd && (r = pfp_recv(fd, &m, payload, sizeof payload, &passed)) != 0) {
        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0 && errno == EBADMSG) {
            log_warn("preflight: malformed message from the helper server");
            continue;
        }
        if (r < 0)
            break;
        server_msg(&m, payload, passed);
    }
    if (srv.sock == fd)
        server_lost("hung up");
}

/* Start the helper server: 0 / -1. */
static int server_start(void)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, def;
    char *argv[] = {"preflight", "--server", NULL}, *envp[] = PFP_SERVER_ENV;
    int sv[2], e;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        log_err("preflight: socketpair: %s", strerror(errno));
        return -1;
    }
    if (sv[1] == PFP_SERVER_FD) {      /* dup2(3, 3) would keep close-on-exec */
        int moved = fcntl(sv[1], F_DUPFD_CLOEXEC, PFP_SERVER_FD + 1);
        close(sv[1]);
        sv[1] = moved;
    }
    sigemptyset(&none);
    sigfillset(&def);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, sv[1], PFP_SERVER_FD);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                    POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &def);
    e = sv[1] < 0 ? errno : posix_spawn(&srv.pid, D.preflight_helper, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (sv[1] >= 0)
        close(sv[1]);
    if (e != 0) {
        log_err("preflight: cannot start %s: %s", D.preflight_helper, strerror(e));
        close(sv[0]);
        srv.pid = 0;
        return -1;
    }
    evutil_make_socket_nonblocking(sv[0]);
    srv.sock = sv[0];
    srv.ready = false;
    srv.ev = event_new(D.base, sv[0], EV_READ | EV_PERSIST, server_read_cb, NULL);
    event_add(srv.ev, NULL);
    log_debug("preflight: started helper server %d", (int)srv.pid);
    return 0;
}

/* Give the server up: kill its group, reject what it held. */
static void server_lost(const char *why)
{
    struct pf *held = running;

    if (srv.pid <= 0)
        return;
    log_err("preflight: the helper server %d %s; %d document%s in it rejected", (int)srv.pid, why,
            nrunning, nrunning == 1 ? "" : "s");
    kill(-srv.pid, SIGKILL);
    for (int i = 0; i < DEAD_MAX; i++)
        if (dead[i] == 0) {
            dead[i] = srv.pid;
            break;
        }
    event_free(srv.ev);
    close(srv.sock);
    srv.pid = 0;
    srv.sock = -1;
    srv.ev = NULL;
    running = NULL;
    nrunning = 0;
    while (held) {
        struct pf *p = held;
        held = p->next;
        pf_finish(p, 0, SERVER_LOST);
    }
    pf_start_next();
}

/* Send queued documents while there is room. */
static void pf_start_next(void)
{
    while (queue_head && nrunning < D.conf->workers) {
        struct pf *p = queue_head;
        unsigned long long cpu = (unsigned long long)(D.conf->timeout_ms +
                                 D.conf->page_time_ms * D.conf->max_pages) / 1000 + 2;
        struct pfp_msg m = {.type = PFP_CHECK, .id = p->id, .memory = D.conf->memory,
                            .cpu_s = cpu > 86400 ? 86400 : (uint32_t)cpu,
                            .max_pages = (uint32_t)D.conf->max_pages, .flags = PFP_CHECK_RENDER};
#ifdef COPEES_TEST_KNOBS
        const char *knobs = getenv("COPEES_TEST_KNOBS");
        if (knobs && strcmp(knobs, "1") == 0)
            m.flags |= PFP_CHECK_KNOBS;
#endif
        queue_head = p->next;
        if (!queue_head)
            queue_tail = NULL;
        p->sent_ms = mono_ms();
        if ((srv.pid <= 0 && server_start() < 0) ||
            pfp_send(srv.sock, &m, NULL, 0, p->fd) < 0) {
            if (srv.pid > 0)
                log_err("preflight: cannot send a document to the helper: %s", strerror(errno));
            p->fail_now = true;        /* finished from the loop, not from inside submit */
            p->next = NULL;
            nlimbo++;
            struct timeval now = {0, 0};
            evtimer_add(p->timer, &now);
            if (srv.pid > 0)
                server_lost("cannot be reached");
            continue;
        }
        close(p->fd);
        p->fd = -1;
        p->next = running;
        running = p;
        nrunning++;
        pf_arm(p);
    }
}

void preflight_start(void)
{
    if (srv.pid <= 0)
        server_start();
}

void preflight_submit(int64_t job_id, int fd, const struct job *ticket, preflight_done_fn done,
                      void *arg)
{
    struct pf *p = calloc(1, sizeof *p);

    if (!p || !(p->stream = evbuffer_new()) || !(p->timer = evtimer_new(D.base, timer_cb, p)))
        fatal("preflight: out of memory");
    p->job_id = job_id;
    p->fd = fd;
    p->pidfd = -1;
    p->done = done;
    p->arg = arg;
    p->id = next_id++;
    xstrlcpy(p->ticket.media, ticket->media, sizeof p->ticket.media);
    p->ticket.color = strcmp(ticket->color, "color") == 0;
    if (queue_tail)
        queue_tail->next = p;
    else
        queue_head = p;
    queue_tail = p;
    pf_start_next();
}

bool preflight_child_exited(pid_t pid, int status)
{
    for (int i = 0; i < DEAD_MAX; i++)
        if (dead[i] == pid) {
            dead[i] = 0;
            return true;
        }
    if (pid <= 0 || pid != srv.pid)
        return false;
    char why[64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, sizeof why, "exited with %d", WEXITSTATUS(status));
    server_lost(why);
    for (int i = 0; i < DEAD_MAX; i++)  /* reaped already: not one to wait for */
        if (dead[i] == pid)
            dead[i] = 0;
    return true;
}

int preflight_pending(void)
{
    int n = nrunning + nlimbo;
    for (struct pf *p = queue_head; p; p = p->next)
        n++;
    return n;
}

void preflight_kill_all(void)
{
    if (srv.pid > 0)
        kill(-srv.pid, SIGKILL);
}
