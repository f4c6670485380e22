/* preflight.c - run the helper, read its report, decide (see preflight.h).
 *
 * Design notes: this first version execs the helper once per document
 * (posix_spawn: no bare fork of the threaded daemon).  The helper gets the
 * document as stdin, an empty environment, and sets its own rlimits from
 * its arguments; the daemon adds the wall-clock kill (timeout +
 * page_time x pages, pages unknown before the report, so timeout alone for
 * now).  A report is complete when the child has exited AND its stdout is
 * at EOF; anything but "exit 0 with a JSON report" becomes a reject with
 * its own code: preflight-timeout (our kill), preflight-too-complex (CPU
 * limit or out of memory), preflight-crashed (any other signal or exit).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "conf.h"
#include "daemon.h"
#include "log.h"
#include "pfcodes.h"
#include "preflight.h"
#include "util.h"

#define PF_OUT_MAX (4 * 1024 * 1024)   /* a report larger than this is a crash */
#define PF_ERR_KEEP 4096

struct pf {
    int64_t job_id;
    int fd;
    preflight_done_fn done;
    void *arg;
    pid_t pid;
    int status;
    bool exited, out_eof, err_eof, timed_out;
    struct bufferevent *out, *err;
    struct evbuffer *outbuf;
    char errtail[PF_ERR_KEEP + 1];
    size_t errlen;
    struct event *timer;
    int64_t started_ms;
    struct pf *next;
};

static struct pf *queue_head, *queue_tail;   /* waiting for a slot */
static struct pf *running;
static int nrunning;

static void pf_start_next(void);

static void pf_free(struct pf *p)
{
    if (p->out)
        bufferevent_free(p->out);
    if (p->err)
        bufferevent_free(p->err);
    if (p->outbuf)
        evbuffer_free(p->outbuf);
    if (p->timer)
        event_free(p->timer);
    if (p->fd >= 0)
        close(p->fd);
    free(p);
}

/* One finding: into reasons or warnings by the configured verdict. */
static bool add_finding(json_t *reasons, json_t *warnings, const char *code, const char *detail)
{
    int i = pf_code_lookup(code);
    bool reject = i >= 0 ? D.conf->reject[i] : true;
    const char *msg = i >= 0 ? pf_codes[i].message : "The document could not be checked.";
    json_t *o = json_pack("{s:s, s:s}", "code", code, "message", msg);
    (void)detail;      /* detail goes to the log only: it may be technical */
    json_array_append_new(reject ? reasons : warnings, o);
    return reject;
}

/* Build the job's preflight object from the helper's output and exit. */
static json_t *pf_verdict(struct pf *p, bool *reject)
{
    json_t *reasons = json_array(), *warnings = json_array();
    json_t *rep = NULL, *out;
    const char *fail = NULL;
    bool oom = strstr(p->errtail, "Out of memory") != NULL;

    *reject = false;
    if (p->timed_out) {
        fail = "preflight-timeout";
    } else if (WIFSIGNALED(p->status)) {
        int sig = WTERMSIG(p->status);
        fail = (sig == SIGXCPU || sig == SIGKILL || (sig == SIGABRT && oom)) ?
               "preflight-too-complex" : "preflight-crashed";
        log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: helper killed by signal %d", sig);
    } else if (WEXITSTATUS(p->status) != 0) {
        fail = "preflight-crashed";
        log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: helper exited with %d",
                WEXITSTATUS(p->status));
    } else {
        size_t n = evbuffer_get_length(p->outbuf);
        char *txt = malloc(n + 1);
        if (txt) {
            evbuffer_remove(p->outbuf, txt, n);
            txt[n] = '\0';
            json_error_t je;
            rep = json_loads(txt, 0, &je);
            free(txt);
        }
        if (!json_is_object(rep)) {
            fail = "preflight-crashed";
            log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: helper wrote no valid report");
        }
    }
    out = json_pack("{s:i, s:[], s:i, s:[]}", "pages", 0, "page_sizes", "color_pages", 0,
                    "color_page_list");
    if (rep && !fail) {
        const char *k;
        json_t *v;
        json_object_foreach(rep, k, v) {
            if (strcmp(k, "findings") != 0)
                json_object_set(out, k, v);
        }
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(rep, "findings"), i, f) {
            const char *code = json_string_value(json_object_get(f, "code"));
            const char *detail = json_string_value(json_object_get(f, "detail"));
            if (!code)
                continue;
            log_job(LOG_LVL_INFO, p->job_id, NULL, "preflight: %s%s%s", code,
                    detail ? ": " : "", detail ? detail : "");
            if (add_finding(reasons, warnings, code, detail))
                *reject = true;
        }
    }
    if (fail) {
        add_finding(reasons, warnings, fail, NULL);
        *reject = true;      /* whatever on_<code> says: there is no report to print from */
    }
    json_object_set_new(out, "warnings", warnings);
    json_object_set_new(out, "reasons", reasons);
    json_decref(rep);
    return out;
}

static void pf_maybe_finish(struct pf *p)
{
    if (!p->exited || !p->out_eof || !p->err_eof)
        return;
    /* unlink from running */
    for (struct pf **pp = &running; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    }
    nrunning--;
    bool reject;
    json_t *rep = pf_verdict(p, &reject);
    log_job(LOG_LVL_INFO, p->job_id, NULL, "preflight: %s in %lld ms", reject ? "rejected" : "accepted",
            (long long)(mono_ms() - p->started_ms));
    p->done(p->job_id, rep, reject, p->arg);
    pf_free(p);
    pf_start_next();
}

static void out_read_cb(struct bufferevent *bev, void *arg)
{
    struct pf *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (evbuffer_get_length(p->outbuf) + evbuffer_get_length(in) > PF_OUT_MAX) {
        log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: report too large, killing helper");
        kill(p->pid, SIGKILL);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    evbuffer_add_buffer(p->outbuf, in);
}

static void err_read_cb(struct bufferevent *bev, void *arg)
{
    struct pf *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    char buf[1024];
    int n;
    while ((n = evbuffer_remove(in, buf, sizeof buf)) > 0) {
        /* keep the last PF_ERR_KEEP bytes (n <= sizeof buf < PF_ERR_KEEP) */
        if (p->errlen + (size_t)n > PF_ERR_KEEP) {
            size_t drop = p->errlen + (size_t)n - PF_ERR_KEEP;
            memmove(p->errtail, p->errtail + drop, p->errlen - drop);
            p->errlen -= drop;
        }
        memcpy(p->errtail + p->errlen, buf, (size_t)n);
        p->errlen += (size_t)n;
        p->errtail[p->errlen] = '\0';
        /* NULs would hide later text from strstr */
        for (size_t i = 0; i < p->errlen; i++)
            if (p->errtail[i] == '\0')
                p->errtail[i] = ' ';
    }
}

static void pipe_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct pf *p = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (bev == p->out) {
        out_read_cb(bev, p);
        p->out_eof = true;
    } else {
        err_read_cb(bev, p);
        p->err_eof = true;
    }
    bufferevent_disable(bev, EV_READ);
    pf_maybe_finish(p);
}

static void timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct pf *p = arg;
    log_job(LOG_LVL_WARN, p->job_id, NULL, "preflight: no verdict after %lld ms, killing helper",
            (long long)D.conf->timeout_ms);
    p->timed_out = true;
    kill(p->pid, SIGKILL);
}

/* Spawn the helper for p: 0 / -1. */
static int pf_spawn(struct pf *p)
{
    int outp[2] = {-1, -1}, errp[2] = {-1, -1};
    posix_spawn_file_actions_t fa;
    char mem[32], cpu[32], maxp[32];
    int rc = -1;

    if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
        goto out;
    snprintf(mem, sizeof mem, "%llu", (unsigned long long)D.conf->memory);
    snprintf(cpu, sizeof cpu, "%lld", (long long)((D.conf->timeout_ms + 999) / 1000));
    snprintf(maxp, sizeof maxp, "%d", D.conf->max_pages);
    char *argv[] = {"preflight", "--memory", mem, "--cpu", cpu, "--max-pages", maxp, NULL};
    char *envp[] = {NULL};
    posix_spawn_file_actions_init(&fa);
    /* dup2 onto 0/1/2 clears close-on-exec on the copies; the document fd
     * is never 0 here (stdin is /dev/null in the daemon). */
    posix_spawn_file_actions_adddup2(&fa, p->fd, 0);
    posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
    posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
    int e = posix_spawn(&p->pid, D.preflight_helper, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        errno = e;
        log_err("preflight: cannot start %s: %s", D.preflight_helper, strerror(e));
        goto out;
    }
    close(outp[1]);
    close(errp[1]);
    outp[1] = errp[1] = -1;
    close(p->fd);
    p->fd = -1;
    p->outbuf = evbuffer_new();
    evutil_make_socket_nonblocking(outp[0]);
    evutil_make_socket_nonblocking(errp[0]);
    p->out = bufferevent_socket_new(D.base, outp[0], BEV_OPT_CLOSE_ON_FREE);
    p->err = bufferevent_socket_new(D.base, errp[0], BEV_OPT_CLOSE_ON_FREE);
    outp[0] = errp[0] = -1;
    bufferevent_setcb(p->out, out_read_cb, NULL, pipe_event_cb, p);
    bufferevent_setcb(p->err, err_read_cb, NULL, pipe_event_cb, p);
    bufferevent_enable(p->out, EV_READ);
    bufferevent_enable(p->err, EV_READ);
    p->timer = evtimer_new(D.base, timeout_cb, p);
    struct timeval tv = {(time_t)(D.conf->timeout_ms / 1000), (suseconds_t)(D.conf->timeout_ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
    p->started_ms = mono_ms();
    rc = 0;
out:
    for (int i = 0; i < 2; i++) {
        if (outp[i] >= 0)
            close(outp[i]);
        if (errp[i] >= 0)
            close(errp[i]);
    }
    return rc;
}

static void pf_start_next(void)
{
    while (queue_head && nrunning < D.conf->workers) {
        struct pf *p = queue_head;
        queue_head = p->next;
        if (!queue_head)
            queue_tail = NULL;
        p->next = NULL;
        if (pf_spawn(p) < 0) {
            /* No helper: the daemon cannot judge the file; reject as crashed
             * so the web tier hears at once instead of waiting forever. */
            p->exited = p->out_eof = p->err_eof = true;
            p->status = 127 << 8;
            p->next = running;
            running = p;
            nrunning++;
            pf_maybe_finish(p);
            continue;
        }
        p->next = running;
        running = p;
        nrunning++;
    }
}

void preflight_submit(int64_t job_id, int fd, preflight_done_fn done, void *arg)
{
    struct pf *p = calloc(1, sizeof *p);
    if (!p)
        fatal("preflight: out of memory");
    p->job_id = job_id;
    p->fd = fd;
    p->done = done;
    p->arg = arg;
    p->pid = -1;
    if (queue_tail)
        queue_tail->next = p;
    else
        queue_head = p;
    queue_tail = p;
    pf_start_next();
}

bool preflight_child_exited(pid_t pid, int status)
{
    for (struct pf *p = running; p; p = p->next) {
        if (p->pid == pid) {
            p->exited = true;
            p->status = status;
            evtimer_del(p->timer);
            pf_maybe_finish(p);
            return true;
        }
    }
    return false;
}

int preflight_pending(void)
{
    int n = nrunning;
    for (struct pf *p = queue_head; p; p = p->next)
        n++;
    return n;
}

void preflight_kill_all(void)
{
    for (struct pf *p = running; p; p = p->next)
        if (p->pid > 0)
            kill(p->pid, SIGKILL);
}
