/* retention.c - documents kept while the rules say so, then shredded.
 *
 * Design notes:
 * - The rules (job.c, job_retention_deadline) give every job with a
 *   document a retain_until: printed + complaint window (or delivery +
 *   window), capped by created + max_retention; an open complaint holds it
 *   until opened + complaint_max instead.  job_set_state and the API
 *   actions keep the column current, so the store is the truth and the
 *   loop keeps one timer aimed at the nearest retain_until.
 * - The timer never sleeps longer than RETENTION_RECHECK, so a wall-clock
 *   step (forward or back) is noticed within that time even though
 *   libevent timers run on the monotonic clock.
 * - What expiry does depends on the state: a printed job's document is
 *   shredded (an open complaint past complaint_max is closed with an
 *   event); a job that never printed is canceled with reason
 *   retention-expired and shredded, after being taken back from CUPS if it
 *   is there.  Erasure requests (retctl.c) go the same way at once.
 * - Shredding runs on an I/O worker; its receipt (bytes, passes, time) is
 *   an audit event.  A shred that fails leaves the document present, is
 *   counted, logged and recorded (event shred-failed), and is tried again
 *   2 s later, then 4, 8 ... up to every RETENTION_BACKOFF_MAX s: a cause
 *   that lasts (a read-only or immutable file) costs a log line and an
 *   audit event every few minutes, not every second.  An erasure request
 *   tries at once whatever the pause.
 * - While a document is being shredded, nothing may bring it back into
 *   use: retctl.c refuses a reprint or a complaint for it (409
 *   document-shredding; retention_shredding()), which would otherwise
 *   send CUPS a file being overwritten, or promise to keep a document
 *   that is going.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "conf.h"
#include "daemon.h"
#include "iopool.h"
#include "job.h"
#include "log.h"
#include "retention.h"
#include "sched.h"
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
static int64_t armed_for;       /* wall-clock time the timer aims at */
static struct task *tasks;      /* shreds under way */
static int nbusy;
static uint64_t shreds_done, shreds_failed;
static struct idn { int64_t id; struct idn *next; } *expiring;   /* taken back from CUPS */
/* documents whose shred failed: not tried again by the timer before next */
static struct backoff { int64_t id, next; int fails; struct backoff *link; } *backoffs;

#define RETENTION_BACKOFF_MAX 300   /* seconds between two tries of a failing shred */

static struct backoff **backoff_find(int64_t id)
{
    struct backoff **pp = &backoffs;
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->link;
    return pp;
}

/* A shred of id failed (ok = false: wait before the next try, 2, 4 ...
 * RETENTION_BACKOFF_MAX s) or succeeded (forget it). */
static void backoff_note(int64_t id, bool ok)
{
    struct backoff **pp = backoff_find(id), *b = *pp;
    if (ok) {
        if (b) {
            *pp = b->link;
            free(b);
        }
        return;
    }
    if (!b) {
        if (!(b = calloc(1, sizeof *b)))
            fatal("retention: out of memory");
        b->id = id;
        *pp = b;
    }
    int64_t wait = b->fails < 8 ? (int64_t)2 << b->fails : RETENTION_BACKOFF_MAX;
    b->fails++;
    b->next = now_s() + (wait < RETENTION_BACKOFF_MAX ? wait : RETENTION_BACKOFF_MAX);
}

void retention_configure(void)
{
    struct retention_rules r = {
        .complaint_window = (D.conf->complaint_window_ms + 999) / 1000,
        .complaint_max = (D.conf->complaint_max_ms + 999) / 1000,
        .max_retention = (D.conf->max_retention_ms + 999) / 1000,
    };
    job_set_retention_rules(&r);
}

static bool task_running(int64_t id)
{
    for (struct task *t = tasks; t; t = t->next)
        if (t->job_id == id)
            return true;
    return false;
}

bool retention_shredding(int64_t job_id)
{
    return task_running(job_id);
}

static void shred_work(void *arg)
{
    struct task *t = arg;
#ifdef COPEES_TEST_KNOBS
    const char *slow = getenv("COPEES_TEST_SHRED_DELAY_MS");   /* a shred that takes a while */
    if (slow && atoi(slow) > 0)
        usleep((useconds_t)atoi(slow) * 1000);
#endif
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
            backoff_note(j.id, true);
            log_job(LOG_LVL_INFO, j.id, NULL, "retention: document shredded (%s)", detail);
            shreds_done++;
        } else {
            char detail[128];
            snprintf(detail, sizeof detail, "%s: %s", t->why, strerror(t->err));
            store_event_add(D.store, j.id, "shred-failed", -1, detail);
            backoff_note(j.id, false);
            log_job(LOG_LVL_ERR, j.id, NULL, "retention: shredding failed, will retry in %lld s: %s",
                    (long long)((*backoff_find(j.id))->next - now_s()), strerror(t->err));
            shreds_failed++;
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
    log_job(LOG_LVL_INFO, job_id, NULL, "retention: shredding the document (%s)", why);
    job_clear(&j);
    iopool_submit(shred_work, shred_done, t);
}

/* ------------------------------------------------------------ ending */

struct end {
    int64_t id, uid;
    char why[32];              /* receipt: "erased", "retention-expired", ... */
    void (*done)(void *arg, int r);
    void *arg;
};

static void end_shredded(void *arg)
{
    struct end *e = arg;
    if (e->done)
        e->done(e->arg, 0);
    free(e);
}

/* CUPS no longer holds e's job: mark it and shred its document. */
static void end_now(struct end *e)
{
    struct job j;
    if (store_job_get(D.store, e->id, &j) < 0) {
        if (e->done)
            e->done(e->arg, -2);
        free(e);
        return;
    }
    bool erased = strcmp(e->why, "erased") == 0;
    if (strcmp(j.complaint, "open") == 0) {
        xstrlcpy(j.complaint, "closed", sizeof j.complaint);
        job_reason_remove(&j, "complaint-open");
        store_job_save(D.store, &j, "complaint-closed", e->uid,
                       erased ? "closed by an erasure request" : "closed: complaint_max reached");
    }
    /* due now, on disk: a shred that fails or a crash is retried by the
     * timer and at startup, not at the end of the old window */
    if (j.retain_until == 0 || j.retain_until > now_s()) {
        j.retain_until = now_s();
        store_job_save(D.store, &j, "retention", e->uid,
                       erased ? "due now: erasure requested" : "due now");
    }
    switch (j.state) {
    case JOB_STATE_PRINTED:
    case JOB_STATE_REJECTED:
    case JOB_STATE_CANCELED:
        break;
    default:
        /* never printed: it ends canceled, saying why */
        job_reason_add(&j, e->why);
        j.printer[0] = '\0';
        job_set_state(D.store, &j, JOB_STATE_CANCELED, e->uid, "%s",
                      erased ? "erasure requested"
                      : strcmp(e->why, "complaint-max") == 0 ? "complaint_max reached"
                                                             : "max_retention reached before it printed");
        break;
    }
    job_clear(&j);
    retention_shred_job(e->id, e->why, end_shredded, e);
}

static void end_withdrawn(void *arg, bool ok)
{
    struct end *e = arg;
    for (struct idn **pp = &expiring; *pp; pp = &(*pp)->next)
        if ((*pp)->id == e->id) {
            struct idn *n = *pp;
            *pp = n->next;
            free(n);
            break;
        }
    if (!ok) {
        log_job(LOG_LVL_WARN, e->id, NULL, "retention: CUPS cannot be reached to take the job "
                "back; the document stays until it can");
        if (e->done)
            e->done(e->arg, -1);
        free(e);
        return;
    }
    end_now(e);
}

void retention_end_job(int64_t job_id, const char *why, int64_t uid,
                       void (*done)(void *arg, int r), void *arg)
{
    struct job j;
    if (store_job_get(D.store, job_id, &j) < 0) {
        if (done)
            done(arg, -2);
        return;
    }
    struct end *e = calloc(1, sizeof *e);
    if (!e)
        fatal("retention: out of memory");
    e->id = job_id;
    e->uid = uid;
    xstrlcpy(e->why, why, sizeof e->why);
    e->done = done;
    e->arg = arg;
    if ((j.state == JOB_STATE_SENT || j.state == JOB_STATE_PRINTING) && !sched_busy(j.id)) {
        struct idn *n = calloc(1, sizeof *n);
        if (!n)
            fatal("retention: out of memory");
        n->id = j.id;
        n->next = expiring;
        expiring = n;
        sched_withdraw(&j, end_withdrawn, e);
    } else if (sched_busy(j.id)) {
        if (done)
            done(arg, -3);          /* a CUPS operation is under way: later */
        free(e);
    } else {
        end_now(e);
    }
    job_clear(&j);
}

/* ------------------------------------------------------------ timer */

static bool expiring_has(int64_t id)
{
    for (struct idn *n = expiring; n; n = n->next)
        if (n->id == id)
            return true;
    return false;
}

static int due_one(const struct job *j, void *arg)
{
    (void)arg;
    if (task_running(j->id) || expiring_has(j->id) || j->state == JOB_STATE_PREFLIGHT)
        return 0;
    struct backoff *b = *backoff_find(j->id);
    if (b && b->next > now_s())
        return 0;                   /* its shred failed: not yet again */
    if (j->state == JOB_STATE_PRINTED && strcmp(j->complaint, "open") != 0)
        retention_shred_job(j->id, "complaint window over", NULL, NULL);
    else if (strcmp(j->complaint, "open") == 0)
        retention_end_job(j->id, "complaint-max", -1, NULL, NULL);
    else if (j->state == JOB_STATE_REJECTED || j->state == JOB_STATE_CANCELED)
        retention_shred_job(j->id, "ended", NULL, NULL);
    else
        retention_end_job(j->id, "retention-expired", -1, NULL, NULL);
    return 0;
}

/* history_retention: at start, then at most hourly (more often for a
 * short setting), order references leave finished jobs' rows. */
static void forget_history(void)
{
    static int64_t last;
    int64_t keep = D.conf->history_retention_ms / 1000;
    int64_t every = keep / 10 < 3600 ? keep / 10 : 3600;
    if (keep <= 0 || (last && now_s() - last < every))
        return;
    last = now_s();
    int64_t n = store_forget_orders(D.store, now_s() - keep);
    if (n > 0)
        log_info("retention: order references removed from %lld jobs past history_retention",
                 (long long)n);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    forget_history();
    char now[32];
    log_debug("retention: looking for documents due at %s", time_rfc3339(now_s(), now, sizeof now));
    struct store_filter f = STORE_FILTER_INIT;
    f.document = 1;
    f.retain_before = now_s();
    f.sort = STORE_BY_RETAIN;
    store_jobs_query(D.store, &f, due_one, NULL);
    retention_kick();
}

/* How often the timer wakes at the latest (a wall-clock step is noticed
 * within this); test builds may shorten it with COPEES_TEST_RECHECK. */
static int64_t recheck_s(void)
{
#ifdef COPEES_TEST_KNOBS
    const char *v = getenv("COPEES_TEST_RECHECK");
    if (v && atoi(v) > 0)
        return atoi(v);
#endif
    return RETENTION_RECHECK;
}

void retention_kick(void)
{
    if (!timer)
        return;
    int64_t next = store_next_retain(D.store);
    int64_t wait = recheck_s();
    if (next > 0) {
        int64_t d = next - now_s();
        /* overdue ones were just started (or failed): look again in 1 s,
         * so a failing shred is retried without spinning */
        if (d < wait)
            wait = d < 1 ? 1 : d;
    }
    struct timeval tv = {(time_t)wait, 0};
    armed_for = now_s() + wait;
    evtimer_add(timer, &tv);
}

void retention_job_changed(const struct job *j)
{
    if (timer && j->document_present && j->retain_until > 0 && j->retain_until < armed_for)
        retention_kick();
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

void retention_counts(uint64_t *done, uint64_t *failed)
{
    *done = shreds_done;
    *failed = shreds_failed;
}

void retention_stop(void)
{
    while (backoffs) {
        struct backoff *b = backoffs;
        backoffs = b->link;
        free(b);
    }
    if (timer)
        event_free(timer);
    timer = NULL;
}
