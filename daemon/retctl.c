/* retctl.c - the retention actions of the API: delivered, complaint
 * open/close, reprint, shred (an erasure request).
 *
 * Design notes: each action recomputes retain_until by the rules
 * (job_retention_deadline) and saves the job with an audit event naming the
 * caller's uid, then re-arms the retention timer.  Decisions where the
 * design is silent:
 * - delivered: only a printed job (409 otherwise); `at` (RFC 3339) may
 *   give the delivery time, not in the future; a second report keeps the
 *   first time (200, no change).
 * - complaint open: a printed or failed job whose document is still
 *   present (409 document-shredded otherwise: nothing left to hold);
 *   opening an open complaint is a no-op 200; close of a job without an
 *   open complaint is 409.  Closing re-applies the normal rule, so a
 *   document past its window is shredded at once.
 * - reprint: a printed or failed job with its document; it goes back to
 *   queued with the same id, reprints + 1; its new print starts a new
 *   window.  An open complaint stays open.  pages_printed restarts at 0:
 *   it is the latest print's count, and every print's count stays in its
 *   "printed" audit event (billing sums those).
 * - shred: answered once the document is shredded (200 with the job, its
 *   receipt in the events); a document already shredded is a no-op 200;
 *   a job in preflight is 409 (it has no verdict yet).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "http.h"
#include "job.h"
#include "jobctl.h"
#include "log.h"
#include "retctl.h"
#include "retention.h"
#include "sched.h"
#include "store.h"
#include "util.h"

static int load(struct http_req *req, int64_t id, struct job *j)
{
    if (store_job_get(D.store, id, j) == 0)
        return 0;
    http_respond_error(req, 404, "not-found", "There is no job %lld.", (long long)id);
    return -1;
}

/* Whether j's document is due to be shredded already (its shred has not
 * run yet: it is failing and waiting to be tried again, or the timer has
 * not woken since): nothing may keep it longer or print it again. */
static bool past_retention(const struct job *j)
{
    int64_t due = job_retention_deadline(j);
    return due > 0 && due <= now_s();
}

/* Save j (retain_until recomputed) with event type, answer 200. */
static void save_respond(struct http_req *req, struct job *j, const char *type, const char *detail)
{
    j->retain_until = job_retention_deadline(j);
    if (store_job_save(D.store, j, type, (int64_t)req->uid, detail) < 0)
        http_respond_error(req, 500, "internal", "The change could not be recorded.");
    else
        http_respond_json(req, 200, job_to_json(j));
    retention_kick();
}

void retctl_delivered(struct http_req *req, int64_t id)
{
    struct job j;
    bool bad = false;
    char *at = http_query_get(req->query, "at", &bad);
    int64_t t = now_s();
    if (bad || (at && (time_parse_rfc3339(at, &t) < 0 || t > now_s() + 60))) {
        http_respond_json(req, 400, json_pack("{s:s, s:s, s:s}", "error", "bad-query", "field", "at",
                                              "message",
                                              "at must be an RFC 3339 time, not in the future"));
        free(at);
        return;
    }
    free(at);
    if (load(req, id, &j) < 0)
        return;
    if (j.state != JOB_STATE_PRINTED) {
        http_respond_error(req, 409, "not-printed", "Only a printed job can be delivered; this one is %s.",
                           job_state_name(j.state));
    } else if (j.delivered_at) {
        http_respond_json(req, 200, job_to_json(&j));
    } else {
        j.delivered_at = t;
        save_respond(req, &j, "delivered", "delivery reported");
    }
    job_clear(&j);
}

void retctl_complaint(struct http_req *req, int64_t id, bool open)
{
    struct job j;
    if (load(req, id, &j) < 0)
        return;
    bool is_open = strcmp(j.complaint, "open") == 0;
    if (open && is_open) {
        http_respond_json(req, 200, job_to_json(&j));
    } else if (open && j.state != JOB_STATE_PRINTED && j.state != JOB_STATE_FAILED) {
        http_respond_error(req, 409, "not-printed",
                           "A complaint is about a printed job; this one is %s.",
                           job_state_name(j.state));
    } else if (open && !j.document_present) {
        http_respond_error(req, 409, "document-shredded",
                           "The document is already shredded; there is nothing left to keep.");
    } else if (open && retention_shredding(id)) {
        http_respond_error(req, 409, "document-shredding",
                           "The document is being shredded; there is nothing left to keep.");
    } else if (open && past_retention(&j)) {
        http_respond_error(req, 409, "retention-over",
                           "The complaint window is over; the document is due to be shredded.");
    } else if (open) {
        xstrlcpy(j.complaint, "open", sizeof j.complaint);
        j.complaint_opened_at = now_s();
        job_reason_add(&j, "complaint-open");
        save_respond(req, &j, "complaint-opened", "the document is kept until the complaint closes");
    } else if (!is_open) {
        http_respond_error(req, 409, "no-open-complaint", "The job has no open complaint.");
    } else {
        xstrlcpy(j.complaint, "closed", sizeof j.complaint);
        job_reason_remove(&j, "complaint-open");
        save_respond(req, &j, "complaint-closed", "closed through the API");
    }
    job_clear(&j);
}

void retctl_reprint(struct http_req *req, int64_t id)
{
    struct job j;
    if (load(req, id, &j) < 0)
        return;
    if (jobctl_unreconciled(req, id)) {
        /* a CUPS job left by a crash may be taken for the reprint's */
    } else if (j.state != JOB_STATE_PRINTED && j.state != JOB_STATE_FAILED) {
        http_respond_error(req, 409, "not-reprintable",
                           "Only a printed or failed job can be reprinted; this one is %s.",
                           job_state_name(j.state));
    } else if (!j.document_present) {
        http_respond_error(req, 409, "document-shredded",
                           "The document is already shredded; the customer must upload it again.");
    } else if (retention_shredding(id)) {
        http_respond_error(req, 409, "document-shredding",
                           "The document is being shredded; the customer must upload it again.");
    } else if (past_retention(&j)) {
        http_respond_error(req, 409, "retention-over",
                           "The document is due to be shredded; the customer must upload it again.");
    } else {
        j.reprints++;
        j.pages_printed = 0;          /* counts the new print; the audit log keeps each one's */
        j.printer[0] = '\0';
        j.cups_job_id = 0;
        static const char *const gone[] = {"printer-error", "aborted-by-system",
                                           "job-canceled-at-printer", "cups-job-lost",
                                           "deadline-at-risk", NULL};
        for (int i = 0; gone[i]; i++)
            job_reason_remove(&j, gone[i]);
        if (job_set_state(D.store, &j, JOB_STATE_QUEUED, (int64_t)req->uid, "reprint %d requested",
                          j.reprints) < 0) {
            http_respond_error(req, 500, "internal", "The reprint could not be recorded.");
        } else {
            http_respond_json(req, 200, job_to_json(&j));
            sched_kick();
            retention_kick();
        }
    }
    job_clear(&j);
}

struct erase {
    struct http_req *req;
    int64_t id;
};

static void erased(void *arg, int r)
{
    struct erase *e = arg;
    struct job j;
    if (r == -1)
        http_respond_error(e->req, 503, "cups-unreachable",
                           "The job is in CUPS and CUPS cannot be reached to take it back; retry later.");
    else if (r == -3)
        jobctl_respond_busy(e->req, e->id, retctl_shred);
    else if (load(e->req, e->id, &j) == 0) {
        if (j.document_present)
            http_respond_error(e->req, 500, "shred-failed",
                               "The document could not be shredded yet; it will be retried.");
        else
            http_respond_json(e->req, 200, job_to_json(&j));
        job_clear(&j);
    }
    free(e);
}

void retctl_shred(struct http_req *req, int64_t id)
{
    struct job j;
    if (load(req, id, &j) < 0)
        return;
    if (j.state == JOB_STATE_PREFLIGHT) {
        http_respond_error(req, 409, "preflight-running",
                           "The job is being checked; erase it once it has its verdict.");
    } else if (!j.document_present) {
        http_respond_json(req, 200, job_to_json(&j));
    } else if (jobctl_unreconciled(req, id)) {
        /* the job may be in CUPS without our knowing */
    } else {
        struct erase *e = calloc(1, sizeof *e);
        if (!e)
            fatal("retctl: out of memory");
        e->req = req;
        e->id = id;
        req->answer_pending = true;
        store_event_add(D.store, id, "erasure-requested", (int64_t)req->uid, NULL);
        retention_end_job(id, "erased", (int64_t)req->uid, erased, e);
    }
    job_clear(&j);
}
