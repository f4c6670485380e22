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
 *   tries at once whatever the pause.  A take-back from CUPS that fails
 *   (a job that never printed, at the end of max_retention) backs off the
 *   same way, up to RETENTION_WITHDRAW_MAX s.
 * - The timer aims at the nearest thing to do and is never put off by a
 *   kick: while documents are overdue and waiting (a backoff) it wakes
 *   when the first wait ends, not every second (retention_kick).
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
    int64_t job_id;             /* 0: an orphan file's shred */
    struct orphan *orphan;
    char doc_name[JOB_NAME_MAX];
    char why[32];
    int passes;
    int rc, err;
    struct shred_receipt r;
    void (*done)(void *);
    void *arg;
    struct waiter { void (*done)(void *); void *arg; struct waiter *next; } *waiters;
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
/* when the timer must look at overdue documents again: the end of the
 * earliest backoff, or now for a document that became due (INT64_MAX:
 * every overdue one is under way, and its end kicks the timer) */
static int64_t overdue_wake = INT64_MAX;

/* files in jobs/ that no job row names (a retry's own copy, a document
 * whose row was rolled back) and whose shred failed: tried again */
static struct orphan {
    char name[JOB_NAME_MAX];
    int64_t next;
    int fails;
    bool running;
    struct orphan *link;
} *orphans;

#define RETENTION_BACKOFF_MAX 300   /* seconds between two tries of a failing shred */
#define RETENTION_WITHDRAW_MAX 30   /* ... of a take-back from CUPS that failed */
#define RETENTION_BUSY_WAIT 5       /* ... of a job with a CUPS operation in flight */

static struct backoff **backoff_find(int64_t id)
{
    struct backoff **pp = &backoffs;
    while (*pp && (*pp)->id != id)
        pp = &(*pp)->link;
    return pp;
}

/* A shred or take-back of id failed (ok = false: wait before the next
 * try, 2, 4 ... max s; the wait is returned) or a shred succeeded (forget
 * it; 0). */
static int64_t backoff_note(int64_t id, bool ok, int64_t max)
{
    struct backoff **pp = backoff_find(id), *b = *pp;
    if (ok) {
        if (b) {
            *pp = b->link;
            free(b);
        }
        return 0;
    }
    if (!b) {
        if (!(b = calloc(1, sizeof *b)))
            fatal("retention: out of memory");
        b->id = id;
        *pp = b;
    }
    int64_t wait = backoff_s(b->fails++, 2, max);
    b->next = now_s() + wait;
    if (b->next < overdue_wake)
        overdue_wake = b->next;
    return wait;
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

static struct task *task_find(int64_t id)
{
    for (struct task *t = tasks; t; t = t->next)
        if (t->job_id == id && !t->orphan)
            return t;
    return NULL;
}

static bool task_running(int64_t id)
{
    return task_find(id) != NULL;
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

/* An orphan file's shred ended: forget it, or wait before the next try. */
static void orphan_done(struct task *t)
{
    struct orphan *o = t->orphan, **pp = &orphans;
    o->running = false;
    if (t->rc == 0 || t->err == ENOENT) {
        while (*pp != o)
            pp = &(*pp)->link;
        *pp = o->link;
        free(o);
        log_info("retention: a leftover copy that no job names is shredded at last");
        shreds_done++;
        return;
    }
    int64_t wait = backoff_s(o->fails++, 2, RETENTION_BACKOFF_MAX);
    o->next = now_s() + wait;
    if (o->next < overdue_wake)
        overdue_wake = o->next;
    log_err("retention: shredding a leftover copy that no job names failed, will retry in "
            "%lld s: %s", (long long)wait, strerror(t->err));
    shreds_failed++;
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
    if (t->orphan) {
        orphan_done(t);
    } else if (store_job_get(D.store, t->job_id, &j) == 0) {
        if (t->rc == 0 || t->err == ENOENT) {
            char detail[160];
            j.document_present = false;
            j.shredded_at = now_s();
            snprintf(detail, sizeof detail, "%s: %lld bytes, %d pass%s, %lld ms%s", t->why,
                     (long long)t->r.bytes, t->r.passes, t->r.passes == 1 ? "" : "es",
                     (long long)t->r.elapsed_ms, t->err == ENOENT ? " (file already gone)" : "");
            store_job_save(D.store, &j, "shred", -1, detail);
            backoff_note(j.id, true, 0);
            log_job(LOG_LVL_INFO, j.id, NULL, "retention: document shredded (%s)", detail);
            shreds_done++;
        } else {
            char detail[128];
            snprintf(detail, sizeof detail, "%s: %s", t->why, strerror(t->err));
            store_event_add(D.store, j.id, "shred-failed", -1, detail);
            int64_t wait = backoff_note(j.id, false, RETENTION_BACKOFF_MAX);
            log_job(LOG_LVL_ERR, j.id, NULL, "retention: shredding failed, will retry in %lld s: %s",
                    (long long)wait, strerror(t->err));
            shreds_failed++;
        }
        job_clear(&j);
    }
    if (t->done)
        t->done(t->arg);
    while (t->waiters) {
        struct waiter *w = t->waiters;
        t->waiters = w->next;
        w->done(w->arg);
        free(w);
    }
    free(t);
    retention_kick();
}

void retention_shred_job(int64_t job_id, const char *why, void (*done)(void *arg), void *arg)
{
    struct job j;
    struct task *running = task_find(job_id);
    if (running && done) {
        /* one under way (the timer's, say): done when it ends, so that an
         * erasure is answered with its outcome, not while it runs */
        struct waiter *w = calloc(1, sizeof *w);
        if (!w)
            fatal("retention: out of memory");
        w->done = done;
        w->arg = arg;
        w->next = running->waiters;
        running->waiters = w;
        return;
    }
    if (running || store_job_get(D.store, job_id, &j) < 0) {
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

static void orphan_start(struct orphan *o)
{
    struct task *t = calloc(1, sizeof *t);
    if (!t)
        fatal("retention: out of memory");
    t->orphan = o;
    xstrlcpy(t->doc_name, o->name, sizeof t->doc_name);
    xstrlcpy(t->why, "leftover copy", sizeof t->why);
    t->passes = D.conf->shred_passes;
    t->next = tasks;
    tasks = t;
    nbusy++;
    o->running = true;
    iopool_submit(shred_work, shred_done, t);
}

void retention_shred_leftover(const char *name, int err)
{
    struct orphan *o = calloc(1, sizeof *o);
    if (!o)
        fatal("retention: out of memory");
    xstrlcpy(o->name, name, sizeof o->name);
    o->fails = 1;
    o->next = now_s() + backoff_s(0, 2, RETENTION_BACKOFF_MAX);
    o->link = orphans;
    orphans = o;
    shreds_failed++;
    log_err("retention: shredding a copy that no job names failed, will retry in %lld s: %s",
            (long long)(o->next - now_s()), strerror(err));
    if (o->next < overdue_wake)
        overdue_wake = o->next;
    retention_kick();
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
        /* cupsd unreachable, or it refused: tried again after 2, 4 ...
         * RETENTION_WITHDRAW_MAX s, not every second */
        int64_t wait = backoff_note(e->id, false, RETENTION_WITHDRAW_MAX);
        log_job(LOG_LVL_WARN, e->id, NULL, "retention: the job could not be taken back from "
                "CUPS; the document stays until it can be (tried again in %lld s)",
                (long long)wait);
        retention_kick();
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

/* One overdue document: its shred or its end started, unless one is under
 * way (its end kicks the timer) or it waits (overdue_wake says until when). */
static int due_one(const struct job *j, void *arg)
{
    (void)arg;
    if (task_running(j->id) || expiring_has(j->id) || j->state == JOB_STATE_PREFLIGHT)
        return 0;
    struct backoff *b = *backoff_find(j->id);
    if (b && b->next > now_s()) {   /* its shred failed: not yet again */
        if (b->next < overdue_wake)
            overdue_wake = b->next;
        return 0;
    }
    if (sched_busy(j->id)) {
        /* a CUPS operation on it: a hand-over ends in a moment, but a
         * settle waits for cupsd, which may be down for long */
        int64_t t = now_s() + RETENTION_BUSY_WAIT;
        if (t < overdue_wake)
            overdue_wake = t;
        return 0;
    }
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
    overdue_wake = INT64_MAX;
    if (store_jobs_query(D.store, &f, due_one, NULL) < 0)
        overdue_wake = now_s();      /* not all read: look again soon */
    for (struct orphan *o = orphans; o; o = o->link)
        if (!o->running && o->next <= now_s())
            orphan_start(o);
        else if (!o->running && o->next < overdue_wake)
            overdue_wake = o->next;
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

/* Aim the timer at the nearest of: the next retain_until to come, the
 * moment an overdue document may be tried again (overdue_wake; overdue
 * documents whose shred or end is under way kick again when it ends), and
 * RETENTION_RECHECK from now.  Never later than it already aims: kicks
 * come with every print and every change, and one coming each second
 * while a document is overdue would otherwise put the timer off forever. */
void retention_kick(void)
{
    if (!timer)
        return;
    int64_t now = now_s(), at = now + recheck_s();
    int64_t first = store_next_retain(D.store, 0), next = store_next_retain(D.store, now);
    if (next > 0 && next < at)
        at = next;
    if (((first > 0 && first <= now) || orphans) && overdue_wake < at)   /* some are overdue */
        at = overdue_wake > now ? overdue_wake : now + 1;    /* 1 s: never a spin */
    if (first < 0 || next < 0)
        at = now + 1;                /* the store did not answer: soon again */
    if (evtimer_pending(timer, NULL) && armed_for <= at)
        return;
    struct timeval tv = {(time_t)(at - now), 0};
    armed_for = at;
    evtimer_add(timer, &tv);
}

void retention_job_changed(const struct job *j)
{
    if (!timer || !j->document_present || j->retain_until <= 0)
        return;
    if (j->retain_until <= now_s()) {
        /* due now (a complaint closed, a cancel ...): unless a shred of
         * it is waiting out a failure, the timer looks at it at once */
        struct backoff *b = *backoff_find(j->id);
        if (!b || b->next <= now_s())
            overdue_wake = now_s();
    }
    if (j->retain_until < armed_for || overdue_wake < armed_for)
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
    /* the next start's sweep shreds them; iopool_stop has run, so no
     * shred of one is under way (one would be left to orphan_done) */
    for (struct orphan **pp = &orphans; *pp;) {
        struct orphan *o = *pp;
        if (o->running) {
            pp = &o->link;
        } else {
            *pp = o->link;
            free(o);
        }
    }
    while (backoffs) {
        struct backoff *b = backoffs;
        backoffs = b->link;
        free(b);
    }
    if (timer)
        event_free(timer);
    timer = NULL;
}
