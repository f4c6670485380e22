/* retention.c - documents kept through the complaint window, then shredded.
 *
 * Design notes: the store is the truth for deadlines; the loop keeps one
 * timer aimed at the nearest retain_until.  The timer never sleeps longer
 * than RETENTION_RECHECK, so a wall-clock step (forward or back) is noticed
 * within that time even though libevent timers run on the monotonic clock.
 * Shredding runs on an I/O worker; its receipt (bytes, passes, time) is an
 * audit event.  A shred that fails leaves the document present and is
 * retried at the next wake-up.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "conf.h"
#include "daemon.h"
#include "iopool.h"
#include "job.h"
#include "log.h"
#include "retention.h"
#include "shred.h"
#include "spool.h"
#include "store.h"
#include "util.h"

#define RETENTION_RECHECK 30   /* seconds */

struct task {
    int64_t job_id;
    char doc_name[JOB_NAME_MAX];
    char why[32];
    int passes;
    int rc, err;
    struct shred_receipt r;
    void (*done)(void *);
    void *arg;
    struct task *next;
};

static struct event *timer;
static struct task *tasks;      /* shreds under way */
static int nbusy;

static bool task_running(int64_t id)
{
    for (struct task *t = tasks; t; t = t->next)
        if (t->job_id == id)
            return true;
    return false;
}

static void shred_work(void *arg)
{
    struct task *t = arg;
    t->rc = spool_job_shred(D.spool, t->doc_name, t->passes, &t->r);
    t->err = t->rc < 0 ? errno : 0;
}

static void shred_done(void *arg)
{
    struct task *t = arg;
    struct job j;

    for (struct task **pp = &tasks; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    nbusy--;
    if (store_job_get(D.store, t->job_id, &j) == 0) {
        if (t->rc == 0 || t->err == ENOENT) {
            char detail[160];
            j.document_present = false;
            j.shredded_at = now_s();
            snprintf(detail, sizeof detail, "%s: %lld bytes, %d pass%s, %lld ms%s", t->why,
                     (long long)t->r.bytes, t->r.passes, t->r.passes == 1 ? "" : "es",
                     (long long)t->r.elapsed_ms, t->err == ENOENT ? " (file already gone)" : "");
            store_job_save(D.store, &j, "shred", -1, detail);
            log_job(LOG_LVL_INFO, j.id, NULL, "retention: document shredded (%s)", detail);
        } else {
            char detail[128];
            snprintf(detail, sizeof detail, "%s: %s", t->why, strerror(t->err));
            store_event_add(D.store, j.id, "shred-failed", -1, detail);
            log_job(LOG_LVL_ERR, j.id, NULL, "retention: shredding failed, will retry: %s",
                    strerror(t->err));
        }
        job_clear(&j);
    }
    if (t->done)
        t->done(t->arg);
    free(t);
    retention_kick();
}

void retention_shred_job(int64_t job_id, const char *why, void (*done)(void *arg), void *arg)
{
    struct job j;
    if (task_running(job_id) || store_job_get(D.store, job_id, &j) < 0) {
        if (done)
            done(arg);
        return;
    }
    if (!j.document_present) {
        job_clear(&j);
        if (done)
            done(arg);
        return;
    }
    struct task *t = calloc(1, sizeof *t);
    if (!t)
        fatal("retention: out of memory");
    t->job_id = job_id;
    xstrlcpy(t->doc_name, j.doc_name, sizeof t->doc_name);
    xstrlcpy(t->why, why, sizeof t->why);
    t->passes = D.conf->shred_passes;
    t->done = done;
    t->arg = arg;
    t->next = tasks;
    tasks = t;
    nbusy++;
    job_clear(&j);
    iopool_submit(shred_work, shred_done, t);
}

static int due_one(const struct job *j, void *arg)
{
    if (!task_running(j->id))
        retention_shred_job(j->id, "complaint window over", NULL, NULL);
    return 0;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct store_filter f = STORE_FILTER_INIT;
    f.document = 1;
    f.retain_before = now_s();
    f.sort = STORE_BY_RETAIN;
    f.states = 1u << JOB_STATE_PRINTED;
    store_jobs_query(D.store, &f, due_one, NULL);
    retention_kick();
}

void retention_kick(void)
{
    if (!timer)
        return;
    int64_t next = store_next_retain(D.store);
    int64_t wait = RETENTION_RECHECK;
    if (next > 0) {
        int64_t d = next - now_s();
        /* overdue ones were just started (or failed): look again in 1 s,
         * so a failing shred is retried without spinning */
        if (d < wait)
            wait = d < 1 ? 1 : d;
    }
    struct timeval tv = {(time_t)wait, 0};
    evtimer_add(timer, &tv);
}

void retention_start(void)
{
    timer = evtimer_new(D.base, timer_cb, NULL);
    if (!timer)
        fatal("retention: cannot create the timer");
    timer_cb(-1, 0, NULL);     /* overdue shreds run now */
}

int retention_busy(void)
{
    return nbusy;
}

void retention_stop(void)
{
    if (timer)
        event_free(timer);
    timer = NULL;
}
