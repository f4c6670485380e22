/* jobctl.c - cancel, hold and release (see jobctl.h).
 *
 * Design notes: every change goes through job_set_state() with the peer's
 * uid, so the audit log names who did it.  A job inside CUPS (sent,
 * printing) is taken back first (Cancel-Job, purge-job=true); only when
 * CUPS has let it go is it marked canceled and its document shredded, and
 * only then does the client get its 200.  When cupsd cannot be reached the
 * cancel is refused with 503 rather than promised: the web tier retries.
 * A printed job is not canceled (409): its document is erased with shred.
 */
#include "config.h"

#include <stdlib.h>

#include "daemon.h"
#include "job.h"
#include "jobctl.h"
#include "log.h"
#include "retention.h"
#include "sched.h"
#include "store.h"

struct cancel {
    struct http_req *req;
    int64_t id;
    int64_t uid;
};

/* Load job id or answer 404; 0 / -1. */
static int load(struct http_req *req, int64_t id, struct job *j)
{
    if (store_job_get(D.store, id, j) == 0)
        return 0;
    http_respond_error(req, 404, "not-found", "There is no job %lld.", (long long)id);
    return -1;
}

static void respond_job(struct http_req *req, int64_t id)
{
    struct job j;
    if (load(req, id, &j) < 0)
        return;
    http_respond_json(req, 200, job_to_json(&j));
    job_clear(&j);
}

static void cancel_shredded(void *arg)
{
    struct cancel *c = arg;
    respond_job(c->req, c->id);
    free(c);
}

/* Mark canceled (from any state CUPS no longer holds) and shred. */
static void cancel_finish(struct cancel *c)
{
    struct job j;
    if (load(c->req, c->id, &j) < 0) {
        free(c);
        return;
    }
    if (j.state == JOB_STATE_PRINTED) {     /* CUPS finished it meanwhile */
        job_clear(&j);
        http_respond_error(c->req, 409, "already-printed",
                           "The job printed before it could be canceled; erase its document with shred.");
        free(c);
        return;
    }
    job_set_state(D.store, &j, JOB_STATE_CANCELED, c->uid, "canceled through the API");
    job_clear(&j);
    retention_shred_job(c->id, "canceled", cancel_shredded, c);
}

static void cancel_withdrawn(void *arg, bool ok)
{
    struct cancel *c = arg;
    if (!ok) {
        http_respond_error(c->req, 503, "cups-unreachable",
                           "The job is in CUPS and CUPS cannot be reached to take it back; retry later.");
        free(c);
        return;
    }
    cancel_finish(c);
}

void jobctl_cancel(struct http_req *req, int64_t id)
{
    struct job j;
    if (load(req, id, &j) < 0)
        return;
    enum job_state s = j.state;
    struct cancel *c = NULL;
    switch (s) {
    case JOB_STATE_PREFLIGHT:
        http_respond_error(req, 409, "preflight-running",
                           "The job is being checked; cancel it once it has its verdict.");
        break;
    case JOB_STATE_PRINTED:
        http_respond_error(req, 409, "already-printed",
                           "A printed job cannot be canceled; erase its document with shred.");
        break;
    case JOB_STATE_REJECTED:
    case JOB_STATE_CANCELED:
        http_respond_error(req, 409, "already-completed", "The job is already %s.", job_state_name(s));
        break;
    default:
        c = calloc(1, sizeof *c);
        if (!c)
            fatal("jobctl: out of memory");
        c->req = req;
        c->id = id;
        c->uid = (int64_t)req->uid;
        if (s == JOB_STATE_SENT || s == JOB_STATE_PRINTING)
            sched_withdraw(&j, cancel_withdrawn, c);
        else
            cancel_finish(c);
        break;
    }
    job_clear(&j);
}

void jobctl_hold(struct http_req *req, int64_t id)
{
    struct job j;
    if (load(req, id, &j) < 0)
        return;
    if (j.state == JOB_STATE_QUEUED) {
        job_set_state(D.store, &j, JOB_STATE_HELD, (int64_t)req->uid, "held through the API");
    } else if (j.state != JOB_STATE_HELD) {
        http_respond_error(req, 409, "not-holdable", "Only a queued job can be held; this one is %s.",
                           job_state_name(j.state));
        job_clear(&j);
        return;
    }
    http_respond_json(req, 200, job_to_json(&j));
    job_clear(&j);
}

void jobctl_release(struct http_req *req, int64_t id)
{
    struct job j;
    if (load(req, id, &j) < 0)
        return;
    if (j.state == JOB_STATE_HELD) {
        job_set_state(D.store, &j, JOB_STATE_QUEUED, (int64_t)req->uid, "released through the API");
        sched_kick();
    } else if (j.state != JOB_STATE_QUEUED) {
        http_respond_error(req, 409, "not-held", "Only a held job can be released; this one is %s.",
                           job_state_name(j.state));
        job_clear(&j);
        return;
    }
    http_respond_json(req, 200, job_to_json(&j));
    job_clear(&j);
}
