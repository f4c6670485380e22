/* track.c - what CUPS says: our jobs' states, the printers' states, the
 * reconciliation at startup, and taking jobs back from CUPS.
 *
 * Design notes:
 * - Polling, not IPP subscriptions: every poll_interval one
 *   Get-Printer-Attributes per queue and one Get-Job-Attributes per job of
 *   ours inside CUPS (at most max_inflight per printer, so a handful).
 *   Polling survives cupsd restarts without re-subscribing and costs
 *   little at these counts.
 * - Reconciliation (exactly-once): before the first dispatch, each queue's
 *   jobs are listed (Get-Jobs, which-jobs=all) and every one named
 *   copees-<our instance>-<id> is matched with our row: a job CUPS has
 *   with its document while we still have it queued (a crash after CUPS
 *   took it, before our commit) is adopted as sent, never sent again; one
 *   left waiting for its document (a crash in between) is canceled and
 *   purged, and the job goes out again; a CUPS job for a job we hold,
 *   canceled or finished is purged.  Dispatch starts once every queue has
 *   been listed; until cupsd answers, jobs wait and the API answers.
 * - Taking back (printer stopped or disabled, move): only a job CUPS does
 *   not hold as printing -- its state is read first and only a pending or
 *   held job is purged; a job CUPS is printing stays.  A stopped queue
 *   puts the job it was printing back to pending: CUPS had started it
 *   (time-at-processing set), so part of it may be on that printer's tray
 *   already.  Failover never takes such a job back -- printing it on
 *   another printer could print it twice -- it stays at its printer with
 *   the reason printer-stopped (one "interrupted" event) and finishes
 *   there once the printer is back; an admin may move it (that event
 *   says it had started printing there).  docs/design.md.
 * - A CUPS job a failed submission left behind is settled (read, then
 *   purged or adopted) before the job may go out again: see "settle".
 *   So is, at startup, the CUPS job a hand-over record names (the
 *   handovers table, written between Create-Job and Send-Document): by
 *   its id, before the listings, so that a job CUPS printed and forgot
 *   (no job history) is never sent again (resume_handovers).
 * - When CUPS is done with a job its copy is purged at once
 *   (Cancel-Job, purge-job=true).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "conf.h"
#include "cupslink.h"
#include "daemon.h"
#include "job.h"
#include "log.h"
#include "retention.h"
#include "sched-int.h"
#include "sched.h"
#include "store.h"
#include "util.h"

static struct event *poll_ev;
static bool cups_ok = true;
static char warn_setting[320];   /* health warning: CUPS keeps job files */
static bool warn_no_history;     /* health warning: CUPS keeps no job history */
static int kept_found;           /* finished jobs of ours CUPS still had at startup */

void track_note_cups(const struct cups_op *op)
{
    bool was = cups_ok;
    cups_ok = !op->unreachable;
    if (was != cups_ok)
        log_msg(cups_ok ? LOG_LVL_INFO : LOG_LVL_WARN, "sched: cupsd is %s",
                cups_ok ? "reachable again" : "unreachable; jobs wait");
    if (!was && cups_ok)
        sched_kick();
}

bool sched_cups_ok(void)
{
    return cups_ok;
}

static int64_t job_pages(const struct job *j)
{
    return (int64_t)(j->pages > 0 ? j->pages : 1) * (j->copies > 0 ? j->copies : 1);
}

/* ------------------------------------------------------------ purge */

/* Purges that failed, tried again until CUPS lets the job go: at the next
 * poll when cupsd could not be reached, after 2, 4 ... PURGE_BACKOFF_MAX s
 * when it answered and refused (a refusal that lasts must not cost a
 * request and a log line every poll). */
#define PURGE_BACKOFF_MAX 300
struct purge_retry {
    int64_t job_id;
    int cups_id, tries;
    int64_t not_before;        /* mono ms */
    struct purge_retry *next;
};
static struct purge_retry *retries;

static void purge_submit(struct purge_retry *r);

static void purge_done(struct cups_op *op)
{
    struct purge_retry *r = op->arg;
    track_note_cups(op);
    if (!op->ok) {
        int64_t wait = 0;
        if (!op->unreachable) {
            wait = backoff_s(r->tries, 2, PURGE_BACKOFF_MAX);
        }
        r->tries++;
        r->not_before = mono_ms() + wait * 1000;
        log_job(LOG_LVL_WARN, op->job_id, NULL, "sched: purging CUPS job %d failed (tried again "
                "%s): %s", op->cups_job_id, op->unreachable ? "once cupsd answers" : "later",
                op->error);
        r->next = retries;
        retries = r;
    } else {
        log_job(LOG_LVL_DEBUG, op->job_id, NULL, "sched: CUPS job %d purged", op->cups_job_id);
        free(r);
    }
    op->arg = NULL;
    cups_op_free(op);
}

static void purges_retry(void)
{
    if (!cups_ok)
        return;
    int64_t now = mono_ms();
    struct purge_retry *list = retries;
    retries = NULL;
    while (list) {
        struct purge_retry *r = list;
        list = r->next;
        if (r->not_before > now) {
            r->next = retries;
            retries = r;
        } else {
            purge_submit(r);
        }
    }
}

static void purge_submit(struct purge_retry *r)
{
    struct cups_op *op = cups_op_new(CUPS_OP_PURGE);
    op->job_id = r->job_id;
    op->cups_job_id = r->cups_id;
    op->arg = r;
    op->done = purge_done;
    cupslink_submit(op);
}

void track_purge(int64_t job_id, int cups_id)
{
    struct purge_retry *r = calloc(1, sizeof *r);
    if (!r)
        fatal("sched: out of memory");
    r->job_id = job_id;
    r->cups_id = cups_id;
    purge_submit(r);
}

/* CUPS is done with j (printed, failed): free its slot, purge its copy. */
static void job_left_cups(struct job *j)
{
    printer_release(printer_find(j->printer), j->id, job_pages(j));
    track_purge(j->id, j->cups_job_id);
}

/* CUPS lost sent job j's CUPS job (what: how), which may have printed:
 * j fails with cups-job-lost, never sent again (a reprint is the
 * admin's call). */
static void job_cups_lost(struct job *j, const char *what)
{
    log_job(LOG_LVL_ERR, j->id, j->printer, "sched: CUPS job %d %s", j->cups_job_id, what);
    job_reason_add(j, "cups-job-lost");
    job_set_state(D.store, j, JOB_STATE_FAILED, -1, "CUPS job %d %s: whether it printed is "
                  "not known", j->cups_job_id, what);
    job_left_cups(j);
}

/* ------------------------------------------------------------ settle */

/* A CUPS job left behind by a failed submission: Create-Job went through,
 * Send-Document failed and the cancel was skipped or failed (cupsd stopped
 * answering).  Whether CUPS got the document is not known, so the job may
 * not go out again until that CUPS job is settled: one still waiting for
 * its document (or given up by CUPS) is purged and the job goes out again;
 * one that has its document (the answer, not the document, was lost) is
 * adopted as sent, never sent a second time (or fails, when Create-Job's
 * answer said CUPS would change one of its options); one CUPS no longer
 * knows fails with cups-job-lost.  The job stays busy (out of
 * the dispatch index) meanwhile; a settle that cupsd does not answer is
 * tried again every poll once it answers, one it refuses with a backoff.  A restart meanwhile settles it by name
 * (reconcile_found). */
struct settle {
    int64_t job_id;
    int cups_id, cover_id;
    char printer[64];
    char substituted[128];     /* Create-Job's ignored or changed attributes */
    int tries;                 /* failed reads or purges cupsd did answer */
    const char *how;           /* how it was left: for logs and the audit log */
    int64_t not_before;        /* mono ms: not tried again before */
    bool unsent;               /* CUPS job never got the document: if gone, send again */
    struct settle *next;
};
static struct settle *settles;       /* waiting for the next poll */
static GHashTable *settling;         /* job id -> its settle, from begin to end */

static struct settle *settle_of(int64_t job_id)
{
    return settling ? g_hash_table_lookup(settling, &job_id) : NULL;
}

static void settle_free(struct settle *s)
{
    if (settle_of(s->job_id) == s)
        g_hash_table_remove(settling, &s->job_id);
    free(s);
}

static void settle_start(struct settle *s);

/* Try again at a poll once cupsd answers; an answer that was a refusal
 * waits 2, 4 ... PURGE_BACKOFF_MAX s, as a purge does. */
static void settle_later(struct settle *s, const struct cups_op *op)
{
    int64_t wait = op->unreachable ? 0 : backoff_s(s->tries++, 2, PURGE_BACKOFF_MAX);
    s->not_before = mono_ms() + wait * 1000;
    log_job(LOG_LVL_WARN, s->job_id, s->printer,
            "sched: cannot settle CUPS job %d yet (tried again %s): %s", s->cups_id,
            op->unreachable ? "once cupsd answers" : "later", op->error);
    s->next = settles;
    settles = s;
}

/* The job may be dispatched again. */
static void settle_end(struct settle *s)
{
    struct job j;
    busy_del(s->job_id);
    if (s->cover_id)
        track_purge(s->job_id, s->cover_id);
    if (store_job_get(D.store, s->job_id, &j) == 0) {
        sched_job_changed(&j);           /* back into the index */
        job_clear(&j);
    }
    settle_free(s);
}

static void settle_purged(struct cups_op *op)
{
    struct settle *s = op->arg;
    track_note_cups(op);
    if (op->ok) {
        log_job(LOG_LVL_INFO, s->job_id, s->printer, "sched: CUPS job %d, left without its "
                "document, purged; the job goes out again", s->cups_id);
        settle_end(s);
    } else {
        settle_later(s, op);
    }
    op->arg = NULL;
    cups_op_free(op);
}

/* The settle's outcome could not be recorded (the store failed): the job
 * stays busy, its hand-over record stays, and the settle is tried again
 * later from the start (CUPS is read again). */
static void settle_unrecorded(struct settle *s)
{
    busy_add(s->job_id);
    s->not_before = mono_ms() + backoff_s(s->tries++, 2, PURGE_BACKOFF_MAX) * 1000;
    log_job(LOG_LVL_ERR, s->job_id, s->printer, "sched: the outcome of settling CUPS job %d "
            "could not be recorded; tried again later", s->cups_id);
    s->next = settles;
    settles = s;
}

/* Load s's job: 0; 1 when it no longer exists; -1 (settle_unrecorded
 * done) when it cannot be read. */
static int settle_load(struct settle *s, struct job *j)
{
    if (store_job_get(D.store, s->job_id, j) == 0)
        return 0;
    if (errno == ENOENT)
        return 1;
    settle_unrecorded(s);
    return -1;
}

/* CUPS has the document: the job is in CUPS as that job.  Each outcome
 * is committed together with the end of the hand-over record (a deferred
 * state change, then the record's plain delete commits both) before any
 * purge: a restart in between finds a job that is no longer queued, and
 * the listing purges its CUPS job by name. */
static void settle_adopt(struct settle *s)
{
    struct job j;
    struct printer *p = printer_find(s->printer);
    const char *bad_opt = sched_substituted_option(s->substituted);
    busy_del(s->job_id);
    int got = settle_load(s, &j);
    if (got < 0)
        return;
    if (got > 0) {
        store_handover_clear(D.store, s->job_id);
        track_purge(s->job_id, s->cups_id);
    } else if ((j.state == JOB_STATE_SENT || j.state == JOB_STATE_PRINTING) &&
               j.cups_job_id == s->cups_id) {
        /* ours as that CUPS job already: its state was committed although
         * the hand-over record's delete failed */
        if (p) {
            p->inflight++;
            p->pages_inflight += job_pages(&j);
        }
        if (s->cover_id)
            track_cover(j.id, s->cups_id, s->cover_id);
        if (store_handover_clear(D.store, j.id) < 0)
            log_job(LOG_LVL_WARN, j.id, s->printer, "sched: the hand-over record stays; the "
                    "next start sees the job sent and drops it");
    } else if (j.state == JOB_STATE_QUEUED && bad_opt) {
        /* as at a plain hand-over: CUPS would print it with another
         * media/sides/colour than asked */
        job_reason_add(&j, "option-not-supported");
        if (sched_handover_end(&j, JOB_STATE_FAILED, "printer %s does not support the job's %s "
                               "(CUPS would substitute it; its CUPS job %d, %s, is purged)",
                               s->printer, bad_opt, s->cups_id, s->how) < 0) {
            job_clear(&j);
            settle_unrecorded(s);
            return;
        }
        track_purge(j.id, s->cups_id);
        if (s->cover_id)
            track_purge(j.id, s->cover_id);
        log_job(LOG_LVL_WARN, j.id, s->printer, "sched: %s not supported; job failed", bad_opt);
    } else if (j.state != JOB_STATE_QUEUED) {
        log_job(LOG_LVL_WARN, j.id, s->printer, "sched: CUPS job %d got its document but the "
                "job is %s now; purging it", s->cups_id, job_state_name(j.state));
        if (store_handover_clear(D.store, j.id) < 0) {
            /* purged only once the record is gone (see settle_state) */
            job_clear(&j);
            settle_unrecorded(s);
            return;
        }
        track_purge(j.id, s->cups_id);
        if (s->cover_id)
            track_purge(j.id, s->cover_id);
        sched_job_changed(&j);
    } else {
        /* adopted even when a reload removed its printer meanwhile: CUPS
         * has it, and it is tracked to its end there */
        j.cups_job_id = s->cups_id;
        xstrlcpy(j.printer, s->printer, sizeof j.printer);
        job_reason_remove(&j, "no-capable-printer");
        if (sched_handover_end(&j, JOB_STATE_SENT, "CUPS job %d on printer %s, %s, has its "
                               "document (not sent again)", s->cups_id, s->printer, s->how) < 0) {
            job_clear(&j);
            settle_unrecorded(s);
            return;
        }
        if (p) {
            p->inflight++;
            p->pages_inflight += job_pages(&j);
        }
        if (s->cover_id)
            track_cover(j.id, s->cups_id, s->cover_id);
        log_job(LOG_LVL_WARN, j.id, s->printer, "sched: adopted CUPS job %d, %s", s->cups_id,
                s->how);
    }
    if (got == 0)
        job_clear(&j);
    settle_free(s);
}

/* CUPS no longer knows the job (it may have printed it and then
 * forgotten it: PreserveJobHistory No, MaxJobs), or it had begun printing
 * it and cannot finish: sending it again could print it twice.  As for a
 * sent job whose CUPS job vanished: the job fails with cups-job-lost, and
 * a reprint is the admin's call. */
static void settle_lost(struct settle *s, const char *what)
{
    struct job j;
    int rc = 0;
    busy_del(s->job_id);
    int got = settle_load(s, &j);
    if (got < 0)
        return;
    if (got == 0 && j.state == JOB_STATE_QUEUED) {
        log_job(LOG_LVL_ERR, j.id, s->printer, "sched: CUPS job %d, %s, %s; whether it "
                "printed is not known", s->cups_id, s->how, what);
        job_reason_add(&j, "cups-job-lost");
        rc = sched_handover_end(&j, JOB_STATE_FAILED, "CUPS job %d on printer %s, %s, %s: "
                                "whether it printed is not known, so it is not sent again",
                                s->cups_id, s->printer, s->how, what);
    } else {
        if (got == 0)
            sched_job_changed(&j);
        rc = store_handover_clear(D.store, s->job_id);
    }
    if (got == 0)
        job_clear(&j);
    if (rc < 0) {
        settle_unrecorded(s);
        return;
    }
    if (s->cover_id)
        track_purge(s->job_id, s->cover_id);
    settle_free(s);
}

static void settle_state(struct cups_op *op)
{
    struct settle *s = op->arg;
    track_note_cups(op);
    /* (a CUPS job that never got the whole document cannot print, whatever
     * CUPS says of it) */
    bool waiting = cups_job_docless(op->jstate, op->jdocuments, op->jreasons) ||
                   (op->ok && s->unsent);
    if (!op->ok && strcmp(op->error, "not-found") == 0 && s->unsent) {
        /* it never got the document from us: the job may go out again,
         * once no hand-over record names that CUPS job (a restart would
         * otherwise find the record and not the job, and fail it) */
        if (store_handover_clear(D.store, s->job_id) < 0) {
            busy_del(s->job_id);
            settle_unrecorded(s);
        } else {
            log_job(LOG_LVL_WARN, s->job_id, s->printer, "sched: CUPS job %d, which never got "
                    "the document, is gone; the job goes out again", s->cups_id);
            settle_end(s);
        }
    } else if (!op->ok && strcmp(op->error, "not-found") == 0) {
        settle_lost(s, "is gone");
    } else if (op->ok && op->started && !s->unsent && (waiting || op->jstate == CUPS_J_CANCELED ||
                                         op->jstate == CUPS_J_ABORTED)) {
        /* it had begun printing and cannot finish now */
        track_purge(s->job_id, s->cups_id);
        settle_lost(s, "had started printing, then ended or lost its document");
    } else if (!op->ok) {
        settle_later(s, op);
    } else if (waiting || op->jstate == CUPS_J_CANCELED || op->jstate == CUPS_J_ABORTED) {
        /* never printed: the job may go out again.  The hand-over record
         * goes before the purge (a restart in between finds the CUPS job
         * by name and purges it), never after: a restart would then find
         * the record, not the job, and fail it as lost.  So when the
         * delete fails, nothing is purged until it can be recorded */
        if (store_handover_clear(D.store, s->job_id) < 0) {
            busy_del(s->job_id);
            settle_unrecorded(s);
            op->arg = NULL;
            cups_op_free(op);
            return;
        }
        struct cups_op *pop = cups_op_new(CUPS_OP_PURGE);
        pop->job_id = s->job_id;
        pop->cups_job_id = s->cups_id;
        pop->arg = s;
        pop->done = settle_purged;
        cupslink_submit(pop);
    } else {
        settle_adopt(s);
    }
    op->arg = NULL;
    cups_op_free(op);
}

static void settle_start(struct settle *s)
{
    struct cups_op *op = cups_op_new(CUPS_OP_JOB_STATE);
    op->job_id = s->job_id;
    op->cups_job_id = s->cups_id;
    snprintf(op->job_name, sizeof op->job_name, "copees-%s-%lld", store_instance(D.store),
             (long long)s->job_id);
    op->pause_point = "pause-before-settle";
    op->arg = s;
    op->done = settle_state;
    cupslink_submit(op);
}

static void settle_begin(int64_t job_id, const char *printer, int cups_id, int cover_id,
                         const char *substituted, const char *how, bool unsent)
{
    struct settle *s = calloc(1, sizeof *s);
    if (!s || (!settling && !(settling = g_hash_table_new(g_int64_hash, g_int64_equal))))
        fatal("sched: out of memory");
    s->job_id = job_id;
    s->cups_id = cups_id;
    s->cover_id = cover_id;
    xstrlcpy(s->printer, printer, sizeof s->printer);
    xstrlcpy(s->substituted, substituted, sizeof s->substituted);
    s->how = how;
    s->unsent = unsent;
    g_hash_table_replace(settling, &s->job_id, s);
    busy_add(job_id);
    queue_remove(sched_queue, job_id);   /* (indexed at start) out of dispatch until settled */
    settle_start(s);
}

void track_settle(int64_t job_id, const char *printer, const struct cups_op *op)
{
    if (!op->ok && op->doc_unsent)
        settle_begin(job_id, printer, op->cups_job_id, op->cover_job_id, "",
                     "which never got the document", true);
    else
        settle_begin(job_id, printer, op->cups_job_id, op->cover_job_id, op->substituted,
                     "whose answer was lost", false);
}

/* A hand-over record left by a stop (a crash, or a stop while CUPS had a
 * job of ours without the end of its hand-over): the job's document may
 * be in CUPS as that job.  A job still queued is settled by that CUPS
 * job's id before it may go out again (busy meanwhile, so the listings
 * leave it alone): purged and sent again if CUPS has it without its
 * document, adopted if with, failed with cups-job-lost if CUPS no longer
 * knows it (without job history CUPS forgets a job once printed).  Any
 * other record is stale. */
static void resume_one(const struct store_handover *h, void *arg)
{
    GArray *stale = arg;
    struct job j;
    int got = store_job_get(D.store, h->job_id, &j);
    if (got < 0 && errno != ENOENT)
        fatal("sched: cannot read job %lld, which was being handed to CUPS",
              (long long)h->job_id);
    if (got < 0 || j.state != JOB_STATE_QUEUED || h->cups_id <= 0) {
        g_array_append_val(stale, h->job_id);
    } else {
        log_job(LOG_LVL_WARN, h->job_id, h->printer, "sched: the job was being handed to CUPS "
                "(job %d) when copeesd stopped; settling that first", h->cups_id);
        settle_begin(h->job_id, h->printer, h->cups_id, h->cover_id, h->substituted,
                     "handed over when copeesd stopped", false);
    }
    if (j.id)
        job_clear(&j);
}

static void resume_handovers(void)
{
    GArray *stale = g_array_new(FALSE, FALSE, sizeof(int64_t));
    if (store_handovers_each(D.store, resume_one, stale) < 0)
        fatal("sched: cannot read the hand-overs in progress");
    for (guint i = 0; i < stale->len; i++)
        store_handover_clear(D.store, g_array_index(stale, int64_t, i));
    g_array_free(stale, TRUE);
}

static void settles_retry(void)
{
    if (!cups_ok)
        return;
    int64_t now = mono_ms();
    struct settle *list = settles;
    settles = NULL;
    while (list) {
        struct settle *s = list;
        list = s->next;
        if (s->not_before > now) {
            s->next = settles;
            settles = s;
        } else {
            settle_start(s);
        }
    }
}

/* ------------------------------------------------------------ withdraw */

struct withdraw {
    void (*done)(void *, bool);
    void (*done_r)(void *, int);
    void *arg;
    char printer[64];
    int64_t pages;
    bool started;              /* CUPS had begun printing it (time-at-processing) */
    bool keep_started;         /* failover: leave a job CUPS had begun where it is */
};

static void withdraw_done(struct cups_op *op)
{
    struct withdraw *w = op->arg;
    busy_del(op->job_id);
    track_note_cups(op);
    /* ok, or CUPS no longer knows the job: either way it is out of CUPS */
    if (op->ok)
        printer_release(printer_find(w->printer), op->job_id, w->pages);
    else
        log_job(LOG_LVL_WARN, op->job_id, w->printer, "sched: cannot take CUPS job %d back: %s",
                op->cups_job_id, op->error);
    if (w->done)
        w->done(w->arg, op->ok);
    else
        w->done_r(w->arg, op->ok ? (w->started ? 2 : 0) : -1);
    free(w);
    cups_op_free(op);
}

static void withdraw_start(struct withdraw *w, int64_t job_id, int cups_id)
{
    struct cups_op *op = cups_op_new(CUPS_OP_PURGE);
    op->job_id = job_id;
    op->cups_job_id = cups_id;
    op->arg = w;
    op->done = withdraw_done;
    cupslink_submit(op);
}

static struct withdraw *withdraw_new(const struct job *j)
{
    struct withdraw *w = calloc(1, sizeof *w);
    if (!w)
        fatal("sched: out of memory");
    xstrlcpy(w->printer, j->printer, sizeof w->printer);
    w->pages = job_pages(j);
    return w;
}

void sched_withdraw(const struct job *j, void (*done)(void *arg, bool ok), void *arg)
{
    struct withdraw *w = withdraw_new(j);
    w->done = done;
    w->arg = arg;
    busy_add(j->id);           /* no tracking of it meanwhile */
    withdraw_start(w, j->id, j->cups_job_id);
}

static void take_back_state(struct cups_op *op)
{
    struct withdraw *w = op->arg;
    track_note_cups(op);
    bool gone = !op->ok && strcmp(op->error, "not-found") == 0;
    if (op->ok && (op->jstate == CUPS_J_PENDING || op->jstate == CUPS_J_HELD) &&
        op->started && w->keep_started) {
        busy_del(op->job_id);
        w->done_r(w->arg, 3);
        free(w);
    } else if (op->ok && (op->jstate == CUPS_J_PENDING || op->jstate == CUPS_J_HELD)) {
        w->started = op->started;
        withdraw_start(w, op->job_id, op->cups_job_id);   /* stays busy */
    } else if (gone) {
        /* CUPS may have printed it and forgotten it (PreserveJobHistory
         * No, MaxJobs): not requeued, it fails as tracking would have
         * it fail, and a reprint is the admin's call */
        struct job j;
        busy_del(op->job_id);
        if (store_job_get(D.store, op->job_id, &j) == 0 &&
            (j.state == JOB_STATE_SENT || j.state == JOB_STATE_PRINTING) &&
            j.cups_job_id == op->cups_job_id) {
            job_cups_lost(&j, "lost (found gone when taking it back)");
        } else {
            printer_release(printer_find(w->printer), op->job_id, w->pages);
        }
        if (j.id)
            job_clear(&j);
        w->done_r(w->arg, 4);
        free(w);
    } else {
        busy_del(op->job_id);
        w->done_r(w->arg, op->ok ? 1 : -1);
        free(w);
    }
    op->arg = NULL;
    cups_op_free(op);
}

static void take_back(const struct job *j, bool keep_started, void (*done)(void *arg, int r),
                      void *arg)
{
    struct withdraw *w = withdraw_new(j);
    w->done_r = done;
    w->arg = arg;
    w->keep_started = keep_started;
    busy_add(j->id);
    struct cups_op *op = cups_op_new(CUPS_OP_JOB_STATE);
    op->job_id = j->id;
    op->cups_job_id = j->cups_job_id;
    op->pause_point = "pause-before-take-back";
    op->arg = w;
    op->done = take_back_state;
    cupslink_submit(op);
}

void sched_take_back(const struct job *j, void (*done)(void *arg, int r), void *arg)
{
    take_back(j, false, done, arg);
}

struct requeue {
    int64_t id;
    char why[64], printer[64];
};

static void requeue_done(void *arg, int r)
{
    struct requeue *rq = arg;
    struct job j;
    if (r == 3 && store_job_get(D.store, rq->id, &j) == 0) {
        /* CUPS had begun printing it there before putting it back (a
         * stopped queue): it stays, never printed on a second printer */
        if (j.state == JOB_STATE_SENT && !job_reason_has(&j, "printer-stopped")) {
            char detail[320];
            snprintf(detail, sizeof detail,
                     "printer %s became unavailable (%s) after CUPS had started printing it: "
                     "it stays there and prints once the printer is back, unless moved",
                     rq->printer, rq->why);
            job_reason_add(&j, "printer-stopped");
            store_job_save(D.store, &j, "interrupted", -1, detail);
            log_job(LOG_LVL_WARN, j.id, rq->printer,
                    "sched: interrupted at a stopped printer; stays there (%s)", rq->why);
        }
        job_clear(&j);
    } else if (r == 0 && store_job_get(D.store, rq->id, &j) == 0) {
        if (j.state == JOB_STATE_SENT || j.state == JOB_STATE_PRINTING) {
            j.printer[0] = '\0';
            j.cups_job_id = 0;
            job_set_state(D.store, &j, JOB_STATE_QUEUED, -1,
                          "taken back from printer %s (%s) for another printer", rq->printer,
                          rq->why);
            log_job(LOG_LVL_INFO, j.id, rq->printer, "sched: taken back (%s); requeued", rq->why);
        }
        job_clear(&j);
    }
    free(rq);
}

struct waiting_ctx {
    struct printer *p;
    const char *why;
};

static int withdraw_one(const struct job *j, void *arg)
{
    struct waiting_ctx *wc = arg;
    /* one interrupted there stays: polled like any job in CUPS (its
     * deadline, and what CUPS does with it), never taken back again */
    if (strcmp(j->printer, wc->p->name) != 0 || busy_has(j->id) || j->cups_job_id <= 0 ||
        job_reason_has(j, "printer-stopped"))
        return 0;
    struct requeue *rq = calloc(1, sizeof *rq);
    if (!rq)
        fatal("sched: out of memory");
    rq->id = j->id;
    xstrlcpy(rq->why, wc->why, sizeof rq->why);
    xstrlcpy(rq->printer, wc->p->name, sizeof rq->printer);
    take_back(j, true, requeue_done, rq);
    return 0;
}

void track_withdraw_waiting(struct printer *p, const char *why)
{
    struct waiting_ctx wc = {p, why};
    struct store_filter f = STORE_FILTER_INIT;
    f.states = 1u << JOB_STATE_SENT;
    store_jobs_query(D.store, &f, withdraw_one, &wc);
}

/* ------------------------------------------------------------ covers */

static bool cups_terminal(enum cups_jstate s);

struct cover {
    int64_t job_id;
    int main_id, cover_id;
    bool polling;
    struct cover *next;
};
static struct cover *covers;

void track_cover(int64_t job_id, int main_id, int cover_id)
{
    struct cover *c = calloc(1, sizeof *c);
    if (!c)
        fatal("sched: out of memory");
    c->job_id = job_id;
    c->main_id = main_id;
    c->cover_id = cover_id;
    c->next = covers;
    covers = c;
}

static bool cover_listed(const struct cover *c)
{
    for (struct cover *x = covers; x; x = x->next)
        if (x == c)
            return true;
    return false;
}

static void cover_state_done(struct cups_op *op)
{
    struct cover *c = op->arg;
    struct job j = {0};
    op->arg = NULL;
    if (!cover_listed(c)) {          /* dropped by track_stop meanwhile */
        free(c);
        cups_op_free(op);
        return;
    }
    track_note_cups(op);
    c->polling = false;
    bool done = op->ok ? cups_terminal(op->jstate) : strcmp(op->error, "not-found") == 0;
    bool job_left = store_job_get(D.store, c->job_id, &j) < 0 ||
                    !((j.state == JOB_STATE_SENT || j.state == JOB_STATE_PRINTING) &&
                      j.cups_job_id == c->main_id);
    if (j.id)
        job_clear(&j);
    if ((op->ok || !op->unreachable) && (done || job_left)) {
        if (op->ok || strcmp(op->error, "not-found") != 0)
            track_purge(c->job_id, c->cover_id);
        for (struct cover **pp = &covers; *pp; pp = &(*pp)->next)
            if (*pp == c) {
                *pp = c->next;
                free(c);
                break;
            }
    }
    cups_op_free(op);
}

static void covers_poll(void)
{
    for (struct cover *c = covers; c; c = c->next) {
        if (c->polling)
            continue;
        struct cups_op *op = cups_op_new(CUPS_OP_JOB_STATE);
        op->job_id = c->job_id;
        op->cups_job_id = c->cover_id;
        op->arg = c;
        op->done = cover_state_done;
        c->polling = true;
        cupslink_submit(op);
    }
}

/* ------------------------------------------------------------ jobs */

static void jstate_done(struct cups_op *op)
{
    struct job j;
    busy_del(op->job_id);
    track_note_cups(op);
    if (store_job_get(D.store, op->job_id, &j) < 0)
        goto out;
    if ((j.state != JOB_STATE_SENT && j.state != JOB_STATE_PRINTING) || j.cups_job_id != op->cups_job_id)
        goto out_job;
    if (!op->ok) {
        if (op->unreachable || strcmp(op->error, "not-found") != 0)
            goto out_job;
        job_cups_lost(&j, "lost (CUPS no longer knows it)");
        goto out_job;
    }
    if (cups_job_docless(op->jstate, op->jdocuments, op->jreasons) &&
        !strstr(op->jreasons, "job-incoming")) {
        /* a restarted cupsd restores a job it was printing pending
         * without its files: it would wait for ever, and may have
         * printed, so it is not sent again */
        job_cups_lost(&j, "lost its document (a cupsd restart while it printed?)");
        goto out_job;
    }
    struct printer *p = printer_find(j.printer);
    switch (op->jstate) {
    case CUPS_J_PROCESSING:
    case CUPS_J_STOPPED:
        /* CUPS counts impressions as its filters pass them, before the
         * paper: progress comes from the copees backend's reports */
        if (j.state != JOB_STATE_PRINTING) {
            if (p) {
                p->printing_job = j.id;
                p->printing_since = mono_ms();
                p->printing_pages = job_pages(&j);
            }
            job_set_state(D.store, &j, JOB_STATE_PRINTING, -1, "CUPS is printing it");
        }
        sched_check_sent_deadline(&j);
        break;
    case CUPS_J_PENDING:
    case CUPS_J_HELD:
        if (j.state == JOB_STATE_PRINTING) {
            /* CUPS put it back (its queue was stopped, or its error policy
             * retries it later): it waits in CUPS again.  If the printer
             * is unavailable, the next poll takes it back for another. */
            job_set_state(D.store, &j, JOB_STATE_SENT, -1,
                          "CUPS stopped printing it and holds it again (%s)", op->jreasons);
            if (p && p->printing_job == j.id)
                p->printing_job = 0;
        } else {
            sched_check_sent_deadline(&j);
        }
        break;
    case CUPS_J_COMPLETED: {
        /* retain_until follows from printed_at (job_set_state) */
        {
            int n = op->impressions > 0 ? op->impressions : (int)job_pages(&j);
            if (n > j.pages_printed)
                j.pages_printed = n;
        }
        j.printed_at = now_s();
        job_set_state(D.store, &j, JOB_STATE_PRINTED, -1, "%d pages printed", j.pages_printed);
        log_job(LOG_LVL_INFO, j.id, j.printer, "sched: printed (%d pages)", j.pages_printed);
        fault_point("printed-before-purge");
        job_left_cups(&j);
        retention_kick();
        break;
    }
    case CUPS_J_CANCELED:
    case CUPS_J_ABORTED:
        job_reason_add(&j, op->jstate == CUPS_J_CANCELED ? "job-canceled-at-printer"
                                                         : "aborted-by-system");
        job_set_state(D.store, &j, JOB_STATE_FAILED, -1, "CUPS %s it (%s)",
                      op->jstate == CUPS_J_CANCELED ? "canceled" : "aborted", op->jreasons);
        log_job(LOG_LVL_WARN, j.id, j.printer, "sched: CUPS job %d ended without printing",
                op->cups_job_id);
        job_left_cups(&j);
        break;
    default:
        break;
    }
out_job:
    job_clear(&j);
out:
    cups_op_free(op);
}

static int track_one(const struct job *j, void *arg)
{
    (void)arg;
    if (busy_has(j->id) || j->cups_job_id <= 0)
        return 0;
    struct cups_op *op = cups_op_new(CUPS_OP_JOB_STATE);
    op->job_id = j->id;
    op->cups_job_id = j->cups_job_id;
    op->done = jstate_done;
    busy_add(j->id);
    cupslink_submit(op);
    return 0;
}

/* ------------------------------------------------------------ reconcile */

static bool cups_terminal(enum cups_jstate s)
{
    return s == CUPS_J_COMPLETED || s == CUPS_J_CANCELED || s == CUPS_J_ABORTED;
}

/* One CUPS job named after one of ours, found in p's queue at startup. */
static void reconcile_found(struct printer *p, const struct cups_found *f)
{
    struct job j;
    if (store_job_get(D.store, f->job_id, &j) < 0) {
        if (!cups_terminal(f->jstate)) {
            log_msg(LOG_LVL_WARN, "sched: CUPS job %d names a job we do not have; purging it",
                    f->cups_job_id);
            track_purge(f->job_id, f->cups_job_id);
        }
        return;
    }
    bool in_cups = j.state == JOB_STATE_SENT || j.state == JOB_STATE_PRINTING;
    bool tracked = in_cups && j.cups_job_id == f->cups_job_id;
    bool incomplete = cups_job_docless(f->jstate, f->documents, f->jreasons);
    struct settle *st = settle_of(j.id);
    if (st && (f->cups_job_id == st->cups_id || f->cups_job_id == st->cover_id)) {
        /* being settled: the settle decides for its CUPS job and cover */
    } else if (st && f->cover && !st->cover_id && !cups_terminal(f->jstate)) {
        /* a cover sheet its record did not name (a record from before
         * schema version 4): the settle follows it with the job, or
         * purges it */
        st->cover_id = f->cups_job_id;
    } else if (f->cover) {
        /* a cover sheet: followed while its job is in CUPS, else purged */
        if (in_cups && !cups_terminal(f->jstate))
            track_cover(j.id, j.cups_job_id, f->cups_job_id);
        else
            track_purge(j.id, f->cups_job_id);
    } else if (tracked || busy_has(j.id)) {
        /* ours as we know it */
    } else if (j.state == JOB_STATE_QUEUED && j.reprints == 0 && f->started &&
               (f->jstate == CUPS_J_CANCELED || f->jstate == CUPS_J_ABORTED ||
                (!cups_terminal(f->jstate) && incomplete))) {
        /* CUPS had begun printing it, then ended it or lost its files
         * (a cupsd restart while printing restores it pending without
         * them): part of it may be printed, so it is not sent again.
         * Not for a reprint: a reprint's own hand-over always has its
         * record, settled before the listing, so a CUPS job that had
         * started is an earlier print's whose purge failed (below: purged,
         * and the reprint prints) */
        track_purge(j.id, f->cups_job_id);
        job_reason_add(&j, f->jstate == CUPS_J_CANCELED ? "job-canceled-at-printer" :
                           f->jstate == CUPS_J_ABORTED ? "aborted-by-system" : "cups-job-lost");
        job_set_state(D.store, &j, JOB_STATE_FAILED, -1, "found in CUPS as job %d on printer %s "
                      "at startup, started and then %s; whether it printed is not known, so "
                      "it is not sent again", f->cups_job_id, p->name,
                      cups_terminal(f->jstate) ? "ended" : "without its document");
        log_job(LOG_LVL_WARN, j.id, p->name, "sched: CUPS job %d found at startup had started "
                "and cannot finish; the job failed", f->cups_job_id);
    } else if (j.state == JOB_STATE_QUEUED && !cups_terminal(f->jstate) && incomplete) {
        log_job(LOG_LVL_WARN, j.id, p->name,
                "sched: CUPS job %d was left waiting for its document; purging it, the job "
                "goes out again", f->cups_job_id);
        track_purge(j.id, f->cups_job_id);
    } else if (j.state == JOB_STATE_QUEUED && f->jstate != CUPS_J_CANCELED &&
               f->jstate != CUPS_J_ABORTED && !(j.reprints > 0 && f->jstate == CUPS_J_COMPLETED)) {
        /* CUPS took it, we did not record it: adopt it, never send again
         * (a database from before hand-over records; a reprint's
         * hand-over always has one, settled before the listing, so a
         * completed CUPS job found for a reprint is an earlier print's,
         * whose purge had failed: purged below, and the reprint prints) */
        j.cups_job_id = f->cups_job_id;
        xstrlcpy(j.printer, p->name, sizeof j.printer);
        p->inflight++;
        p->pages_inflight += job_pages(&j);
        job_set_state(D.store, &j, JOB_STATE_SENT, -1,
                      "found in CUPS as job %d on printer %s at startup (not sent again)",
                      f->cups_job_id, p->name);
        log_job(LOG_LVL_WARN, j.id, p->name, "sched: adopted CUPS job %d found at startup",
                f->cups_job_id);
    } else if (!cups_terminal(f->jstate)) {
        log_job(LOG_LVL_WARN, j.id, p->name, "sched: CUPS job %d is not wanted (job %s); purging",
                f->cups_job_id, job_state_name(j.state));
        track_purge(j.id, f->cups_job_id);
    } else {
        /* finished in CUPS and not tracked (a crash before our purge):
         * CUPS may still hold its files (a canceled one was purged
         * already: only its history entry stays) */
        if (f->jstate == CUPS_J_COMPLETED)
            kept_found++;
        log_job(LOG_LVL_WARN, j.id, p->name, "sched: CUPS still had finished job %d of ours; "
                "purging its files", f->cups_job_id);
        track_purge(j.id, f->cups_job_id);
    }
    job_clear(&j);
}

#define NO_HISTORY_WARNING "CUPS keeps no job history (PreserveJobHistory No): a job CUPS " \
    "printed and forgot cannot be told from one it dropped, so a job being handed to CUPS " \
    "when copeesd stopped, or whose hand-over lost its answer, fails with cups-job-lost " \
    "instead of being sent again; keep the history (PreserveJobHistory Yes, the default, " \
    "or a duration of hours)"

static void settings_done(struct cups_op *op)
{
    track_note_cups(op);
    if (op->ok && op->keeps_files)
        snprintf(warn_setting, sizeof warn_setting,
                 "CUPS keeps the files of finished jobs (PreserveJobFiles %s); copeesd purges its "
                 "own jobs' copies as soon as CUPS is done with them", op->keeps_setting);
    else if (op->ok)
        warn_setting[0] = '\0';
    else
        snprintf(warn_setting, sizeof warn_setting,
                 "cannot tell whether CUPS keeps job files (%s)", op->error);
    if (warn_setting[0])
        log_warn("sched: %s", warn_setting);
    if (op->ok)
        warn_no_history = op->no_history;
    if (warn_no_history)
        log_warn("sched: %s", NO_HISTORY_WARNING);
    cups_op_free(op);
}

void sched_cups_warnings(json_t *arr)
{
    if (warn_setting[0])
        json_array_append_new(arr, json_string(warn_setting));
    if (warn_no_history)
        json_array_append_new(arr, json_string(NO_HISTORY_WARNING));
    if (kept_found) {
        char w[160];
        snprintf(w, sizeof w, "CUPS still held %d finished job%s of ours at startup (files "
                 "purged since)", kept_found, kept_found == 1 ? "" : "s");
        json_array_append_new(arr, json_string(w));
    }
}

static void list_done(struct cups_op *op)
{
    struct printer *p = printer_find((const char *)op->arg);
    track_note_cups(op);
    if (p && (op->ok || (!op->unreachable && !p->listed))) {
        for (size_t i = 0; op->ok && i < op->nfound; i++)
            reconcile_found(p, &op->found[i]);
        if (!op->ok)
            log_msg(LOG_LVL_WARN, "sched: listing queue %s: %s", p->cp->queue, op->error);
        p->listed = true;
    }
    bool all = true;
    for (size_t i = 0; i < sched_nprinters; i++)
        all = all && sched_printers[i].listed;
    if (all && !sched_reconciled) {
        sched_reconciled = true;
        log_info("sched: reconciled with CUPS; dispatch starts");
        struct cups_op *s = cups_op_new(CUPS_OP_SETTINGS);
        s->done = settings_done;
        cupslink_submit(s);
        sched_kick();
    }
    free(op->arg);
    cups_op_free(op);
}

/* ------------------------------------------------------------ printers */

static void printer_done(struct cups_op *op)
{
    struct printer *p = printer_find((const char *)op->arg);
    track_note_cups(op);
    if (p) {
        int was_state = p->pstate;
        bool was_acc = p->cups_accepting, was_avail = printer_available(p);
        char was_reasons[sizeof p->preasons];
        xstrlcpy(was_reasons, p->preasons, sizeof was_reasons);
        p->polling = false;
        if (op->ok) {
            p->pstate = op->pstate;
            xstrlcpy(p->preasons, op->preasons, sizeof p->preasons);
            xstrlcpy(p->pmessage, op->pmessage, sizeof p->pmessage);
            xstrlcpy(p->media_sup, op->media_sup, sizeof p->media_sup);
            xstrlcpy(p->sides_sup, op->sides_sup, sizeof p->sides_sup);
            xstrlcpy(p->color_sup, op->color_sup, sizeof p->color_sup);
            xstrlcpy(p->device_uri, op->device_uri, sizeof p->device_uri);
            p->cups_accepting = op->accepting;
        } else if (!op->unreachable) {
            log_msg(LOG_LVL_WARN, "sched: printer %s: %s", p->name, op->error);
            p->pstate = 0;
        }
        bool slow = printer_unreachable_sign(p);
        if (!slow)
            p->blocked_since = 0;
        else if (!p->blocked_since)
            p->blocked_since = mono_ms();
        if (p->pstate != was_state || p->cups_accepting != was_acc ||
            strcmp(p->preasons, was_reasons) != 0 || printer_available(p) != was_avail)
            printer_changed(p);
    }
    free(op->arg);
    cups_op_free(op);
}

/* ------------------------------------------------------------ probes */

static void probe_done(struct cups_op *op)
{
    struct printer *p = printer_find((const char *)op->arg);
    if (p) {
        p->probing = false;
        bool was = p->probe_failed;
        p->probe_failed = !op->ok && !op->unreachable;
        if (p->probe_failed != was)
            log_msg(p->probe_failed ? LOG_LVL_WARN : LOG_LVL_INFO, "sched: printer %s: %s",
                    p->name, p->probe_failed ? op->error : "its device answers again");
        if (p->probe_failed && !p->blocked_since)
            p->blocked_since = mono_ms();
    }
    free(op->arg);
    cups_op_free(op);
}

/* A job printing much longer than its pages take at the printer's ppm
 * (plus 5 s): ask the device itself whether it is still there -- when a
 * printer dies after taking a job, CUPS's ipp backend only waits for the
 * job to complete and shows no reason at all. */
static void probe_if_stuck(struct printer *p)
{
    if (!p->printing_job) {
        p->probe_failed = false;
        return;
    }
    int64_t expect = p->printing_pages * 60000 / (p->cp->ppm > 0 ? p->cp->ppm : 1) + 5000;
    if (p->probing || !p->device_uri[0] || mono_ms() - p->printing_since < expect)
        return;
    struct cups_op *op = cups_op_new(CUPS_OP_PROBE);
    xstrlcpy(op->device_uri, p->device_uri, sizeof op->device_uri);
    op->arg = strdup(p->name);
    op->done = probe_done;
    p->probing = true;
    cupslink_submit(op);
}

static int count_inflight(const struct job *j, void *arg)
{
    (void)arg;
    struct printer *p = printer_find(j->printer);
    if (p) {
        p->inflight++;
        p->pages_inflight += job_pages(j);
        if (j->state == JOB_STATE_PRINTING) {
            p->printing_job = j->id;
            p->printing_since = mono_ms();
            p->printing_pages = job_pages(j);
        }
    }
    return 0;
}

void track_poll(void)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "copees-%s-", store_instance(D.store));
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        if (!p->listed) {
            struct cups_op *op = cups_op_new(CUPS_OP_LIST);
            xstrlcpy(op->queue, p->cp->queue, sizeof op->queue);
            xstrlcpy(op->job_name, prefix, sizeof op->job_name);
            op->arg = strdup(p->name);
            op->done = list_done;
            cupslink_submit(op);
        }
        if (sched_reconciled && p->inflight > 0 && p->pstate && printer_halted(p))
            track_withdraw_waiting(p, !p->enabled ? "printer-disabled" : "printer-stopped");
        probe_if_stuck(p);
        if (p->polling)
            continue;
        struct cups_op *op = cups_op_new(CUPS_OP_PRINTER);
        xstrlcpy(op->queue, p->cp->queue, sizeof op->queue);
        op->arg = strdup(p->name);
        op->done = printer_done;
        p->polling = true;
        cupslink_submit(op);
    }
    if (sched_nprinters == 0 && !sched_reconciled)
        sched_reconciled = true;
    struct store_filter f = STORE_FILTER_INIT;
    f.states = (1u << JOB_STATE_SENT) | (1u << JOB_STATE_PRINTING);
    store_jobs_query(D.store, &f, track_one, NULL);
    covers_poll();
    purges_retry();
    settles_retry();
    sched_check_deadlines();
    sched_kick();     /* slots freed by time (a retry pause over) */
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    track_poll();
}

void track_start(void)
{
    struct store_filter f = STORE_FILTER_INIT;
    f.states = (1u << JOB_STATE_SENT) | (1u << JOB_STATE_PRINTING);
    store_jobs_query(D.store, &f, count_inflight, NULL);
    poll_ev = event_new(D.base, -1, EV_PERSIST, poll_cb, NULL);
    struct timeval tv = {(time_t)(D.conf->poll_interval_ms / 1000),
                         (suseconds_t)(D.conf->poll_interval_ms % 1000) * 1000};
    event_add(poll_ev, &tv);
    resume_handovers();
    track_poll();
}

void track_rearm(void)
{
    struct timeval tv = {(time_t)(D.conf->poll_interval_ms / 1000),
                         (suseconds_t)(D.conf->poll_interval_ms % 1000) * 1000};
    if (poll_ev)
        event_add(poll_ev, &tv);
}

void track_stop(void)
{
    while (settles) {                /* a restart settles them (record or name) */
        struct settle *s = settles;
        settles = s->next;
        settle_free(s);
    }
    if (settling)                    /* (settles whose operation was under way) */
        g_hash_table_destroy(settling);
    settling = NULL;
    while (retries) {
        struct purge_retry *r = retries;
        retries = r->next;
        free(r);
    }
    while (covers) {
        struct cover *c = covers;
        covers = c->next;
        if (!c->polling)            /* a polling one is freed by its op */
            free(c);
    }
    if (poll_ev)
        event_free(poll_ev);
    poll_ev = NULL;
}
