/* intake.c - POST /v1/jobs: ticket, streaming upload, commit, preflight,
 * answer.
 *
 * Design notes: the body goes straight from the socket buffer into the
 * incoming file (spool_upload_write hashes it on the way), so memory does
 * not grow with the document; one of 1 MiB or less is held by spool.c
 * and written by the commit's worker instead (docs/design.md).  A larger
 * upload (Content-Length over 1 MiB) is staged: spool.c hands its
 * chunks to the data lane of the I/O workers while more arrives, and when
 * both of its buffers are taken the request is paused (http_req_pause)
 * until upload_ready(); the commit or discard of a staged upload waits for
 * its last chunk the same way.  The commit (fdatasync, rename, directory
 * fsync) runs on an I/O worker; only then is the job row inserted (state
 * preflight), which is the point of no return: from there the job is
 * finished whatever the client does, and after a crash intake_resume()
 * preflights it again.  The answer comes after the verdict: 201 with the
 * job, or 422 once a rejected document has been shredded.  A retry of a
 * known job (idem.c) is matched once its body is committed and hashed; its
 * own copy is then shredded and it gets the first attempt's answer.
 *
 * Group commit: the row insert and the verdict are deferred store writes
 * (store_defer_begin), so they join the batch the store commits at the end
 * of the loop turn, and preflight starts without waiting for the insert's
 * commit (a crash before it leaves a file without a row, shredded at
 * start-up, and no answer was given).  Every answer waits for
 * store_sync(): it is sent once the commit holding the job's row and
 * verdict is done, so a 201 or 422 still means both are durable, while
 * the uploads answered in one loop turn share one fsync of the WAL.
 *
 * A failed commit rolls its batch back, and the row insert's batch may
 * commit (and fail) on its own while preflight runs: so the verdict's
 * write is checked, and verdict_unrecorded() tells a row that went (the
 * document is shredded, the client gets 507 or 500) from one that stands
 * in state preflight (the job is committed: it is checked again until its
 * verdict is recorded).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "api.h"
#include "conf.h"
#include "daemon.h"
#include "idem.h"
#include "intake-ticket.h"
#include "iopool.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "preflight.h"
#include "retention.h"
#include "sched.h"
#include "shred.h"
#include "spool.h"
#include "store.h"
#include "util.h"

enum intake_phase {
    PHASE_UPLOAD, PHASE_DISCARD, PHASE_COMMIT, PHASE_PREFLIGHT, PHASE_REPLAY, PHASE_ANSWER
};

struct intake {
    enum intake_phase phase;
    struct http_req *req;      /* NULL once the request is gone */
    struct upload *up;
    struct job job;
    int commit_rc, commit_errno;
    uint64_t reserved;         /* announced bytes not yet written (min_free) */
    json_t *report;
    bool reject;
    int64_t pf_started;        /* mono ms */
    int64_t prev_id;           /* PHASE_REPLAY: the job this attempt repeats */
    int ans_status;            /* PHASE_ANSWER: the answer, sent once durable */
    json_t *ans_body;
    bool waiting_idle;         /* PHASE_COMMIT / PHASE_DISCARD: for the upload's last chunk */
    bool due_given, media_given;   /* by the client (else the defaults were filled in) */
    struct event *retry_ev;    /* a verdict that could not be recorded: the next check */
    int retries;               /* ... how many were made */
    int shred_err;             /* unrecorded_work: the shred's errno, 0 = done */
};

/* Uploads under way from which an answer waits up to INTAKE_SHARE_MS for
 * its commit, so that more answers share it. */
#define INTAKE_SHARE_BUSY 8
#define INTAKE_SHARE_MS 3

static int busy;
/* Bytes that uploads under way announced and have not yet written: each
 * new upload must leave min_free beyond them, so that concurrent uploads
 * that each passed the check alone do not together go below it. */
static uint64_t reserved_total;

int intake_busy(void)
{
    return busy;
}

static void intake_free(struct intake *in)
{
    if (!in)
        return;
    spool_upload_free(in->up);
    job_clear(&in->job);
    json_decref(in->report);
    json_decref(in->ans_body);
    if (in->retry_ev)
        event_free(in->retry_ev);
    reserved_total -= in->reserved;
    free(in);
    busy--;
}

static void ctx_free(void *ctx)
{
    struct intake *in = ctx;
    /* The request is going away: keep the intake if work is pending. */
    in->req = NULL;
}

/* ------------------------------------------------------------ upload */

/* Answer a failed spool write: 507 when the disk is full, else 500. */
static void respond_disk_error(struct http_req *req, int e)
{
    if (e == ENOSPC || e == EDQUOT) {
        metrics_upload_rejected("insufficient-storage");
        http_respond_error(req, 507, "insufficient-storage", "The spooler is out of disk space.");
    } else {
        http_respond_error(req, 500, "internal", "The spooler cannot store the document.");
    }
}

static void upload_ready(void *arg);

bool intake_headers(struct http_req *req)
{
    struct job j;
    job_init(&j);
    if (!intake_ticket_parse(req, &j)) {
        job_clear(&j);
        return false;
    }
    if (req->idem_key) {
        size_t kl = strlen(req->idem_key);
        if (kl == 0 || kl >= sizeof j.idem_key || !intake_key_valid(req->idem_key)) {
            job_clear(&j);
            metrics_upload_rejected("bad-ticket");
            http_respond_json(req, 400, json_pack("{s:s, s:s, s:s}", "error", "bad-ticket",
                              "field", "Idempotency-Key", "message",
                              "Idempotency-Key must be 1 to 128 visible ASCII characters"));
            return false;
        }
        xstrlcpy(j.idem_key, req->idem_key, sizeof j.idem_key);
        struct job prev;
        if (store_job_find_key(D.store, j.idem_key, &prev) == 0) {
            bool same = idem_same_ticket(&j, &prev, j.due != 0, j.media[0] != '\0');
            job_clear(&prev);
            if (!same) {
                job_clear(&j);
                metrics_upload_rejected("idempotency-conflict");
                http_respond_error(req, 409, "idempotency-conflict",
                                   "This Idempotency-Key was used for another ticket.");
                return false;
            }
        }
    }
    const char *ct = req->content_type ? req->content_type : "";
    size_t ctl = strcspn(ct, "; \t");
    if (ctl != strlen("application/pdf") || strncasecmp(ct, "application/pdf", ctl) != 0) {
        job_clear(&j);
        metrics_upload_rejected("unsupported-media-type");
        http_respond_error(req, 415, "unsupported-media-type",
                           "The body must be a PDF sent as Content-Type: application/pdf.");
        return false;
    }
    if (!req->has_length && !req->chunked) {
        job_clear(&j);
        metrics_upload_rejected("length-required");
        http_respond_error(req, 411, "length-required",
                           "Send Content-Length or a chunked body.");
        return false;
    }
    if (req->has_length && req->content_length > D.conf->max_upload) {
        job_clear(&j);
        metrics_upload_rejected("too-large");
        http_respond_error(req, 413, "too-large", "The document is larger than the %llu bytes allowed.",
                           (unsigned long long)D.conf->max_upload);
        return false;
    }
    if (req->has_length && req->content_length == 0) {
        job_clear(&j);
        metrics_upload_rejected("empty-body");
        http_respond_error(req, 400, "empty-body", "The request carries no document.");
        return false;
    }
    int64_t freeb = spool_free_bytes(D.spool);
    if (freeb >= 0 && (uint64_t)freeb < D.conf->min_free + req->content_length + reserved_total) {
        job_clear(&j);
        log_warn("intake: refusing an upload, spool free space below min_free");
        metrics_upload_rejected("insufficient-storage");
        http_respond_error(req, 507, "insufficient-storage",
                           "The spooler is short of disk space; retry later.");
        return false;
    }
    struct intake *in = calloc(1, sizeof *in);
    if (!in) {
        job_clear(&j);
        http_respond_error(req, 500, "internal", "Out of memory.");
        return false;
    }
    busy++;
    in->reserved = req->has_length ? req->content_length : 0;
    reserved_total += in->reserved;
    in->job = j;
    in->due_given = j.due != 0;          /* (its default comes at the commit) */
    in->media_given = j.media[0] != '\0';
    if (!in->media_given)
        xstrlcpy(in->job.media, D.conf->default_media, sizeof in->job.media);
    in->up = spool_upload_new(D.spool);
    if (!in->up) {
        int e = errno;
        intake_free(in);
        log_err("intake: cannot start an upload: %s", strerror(e));
        respond_disk_error(req, e);
        return false;
    }
    if (req->has_length)
        spool_upload_expect(in->up, req->content_length);
    spool_upload_on_ready(in->up, upload_ready, in);
    in->req = req;
    req->ctx = in;
    req->ctx_free = ctx_free;
    return true;
}

static void discard_work(void *arg)
{
    struct intake *in = arg;
    spool_upload_discard(in->up);
}

static void discard_done(void *arg)
{
    intake_free(arg);
}

/* Give the intake to a worker to discard its file, detached from req
 * (once the upload's last staged chunk is written). */
static void intake_discard(struct intake *in)
{
    if (in->req) {
        in->req->ctx = NULL;
        in->req->ctx_free = NULL;
        in->req = NULL;
    }
    in->phase = PHASE_DISCARD;
    in->waiting_idle = !spool_upload_idle(in->up);
    if (!in->waiting_idle)
        iopool_submit(discard_work, discard_done, in);
}

static void commit_work(void *arg);
static void commit_done(void *arg);

/* The upload wrote a staged chunk: read on, or go on with the commit or
 * discard that waited for it. */
static void upload_ready(void *arg)
{
    struct intake *in = arg;
    if (in->phase == PHASE_UPLOAD) {
        if (in->req)
            http_req_resume(in->req);
        return;
    }
    if (!in->waiting_idle || !spool_upload_idle(in->up))
        return;
    in->waiting_idle = false;
    if (in->phase == PHASE_COMMIT)
        iopool_submit(commit_work, commit_done, in);
    else if (in->phase == PHASE_DISCARD)
        iopool_submit(discard_work, discard_done, in);
}

int intake_body(struct http_req *req, const char *data, size_t len)
{
    struct intake *in = req->ctx;
    if ((uint64_t)spool_upload_bytes(in->up) + len > D.conf->max_upload) {
        intake_discard(in);
        metrics_upload_rejected("too-large");
        http_respond_error(req, 413, "too-large", "The document is larger than the %llu bytes allowed.",
                           (unsigned long long)D.conf->max_upload);
        return -1;
    }
    metrics_bytes_received(len);
    uint64_t done = len < in->reserved ? len : in->reserved;
    in->reserved -= done;
    reserved_total -= done;
    uint64_t before = spool_upload_bytes(in->up);
    if (!req->has_length && (before + len) >> 20 != before >> 20) {
        /* chunked: its size was not known at the check; look again at
         * each MiB, so that it cannot take the spool below min_free */
        int64_t freeb = spool_free_bytes(D.spool);
        if (freeb >= 0 && (uint64_t)freeb < D.conf->min_free + len + reserved_total) {
            intake_discard(in);
            log_warn("intake: cutting a chunked upload short, spool free space below min_free");
            metrics_upload_rejected("insufficient-storage");
            http_respond_error(req, 507, "insufficient-storage",
                               "The spooler is short of disk space; retry later.");
            return -1;
        }
    }
    int rc = spool_upload_write(in->up, data, len);
    if (rc < 0) {
        int e = errno;
        intake_discard(in);
        log_err("intake: writing an upload failed: %s", strerror(e));
        respond_disk_error(req, e);
        return -1;
    }
    if (rc == 1)            /* the upload's buffers are full: upload_ready resumes */
        http_req_pause(req);
    return 0;
}

void intake_abort(struct http_req *req)
{
    struct intake *in = req->ctx;
    if (in && in->phase == PHASE_UPLOAD) {
        /* The body never arrived whole: nothing was acknowledged. */
        intake_discard(in);
        http_req_free(req);
    }
    /* Otherwise the commit or preflight in flight owns req and answers
     * into the void (http_respond frees it): the job is finished anyway. */
}

static void unrecorded_work(void *arg);
static void unrecorded_done(void *arg);
static void verdict_unrecorded(struct intake *in);

/* The answer to a job that could not be recorded: 507 when the store's
 * disk is full, else 500. */
static json_t *unrecorded_answer(struct intake *in, int *status)
{
    bool full = store_out_of_space(D.store);
    *status = full ? 507 : 500;
    if (full && in->req)
        metrics_upload_rejected("insufficient-storage");
    return full ? json_pack("{s:s, s:s}", "error", "insufficient-storage",
                            "message", "The spooler ran out of disk space to record the job.")
                : json_pack("{s:s, s:s}", "error", "internal",
                            "message", "The spooler cannot record the job.");
}

/* Send the answer to in's client, if it is still there, and let go of
 * the request; body is consumed either way. */
static void respond_detached(struct intake *in, int status, json_t *body)
{
    if (in->req) {
        struct http_req *req = in->req;
        req->ctx = NULL;
        req->ctx_free = NULL;
        in->req = NULL;
        http_respond_json(req, status, body);
    } else {
        json_decref(body);
    }
}

/* The writes behind in's answer are committed (ok) or rolled back: answer
 * the client, if any, and let the intake go.  After a failed commit the
 * answer is 500, and a document whose job row went with the rollback is
 * shredded first (nothing acknowledged it). */
static void answer_synced(void *arg, bool ok)
{
    struct intake *in = arg;
    int status = in->ans_status;
    json_t *body = in->ans_body;

    in->ans_body = NULL;
    if (ok)
        fault_point("upload-before-answer");
    if (!ok) {
        json_decref(body);
        struct job cur;
        job_init(&cur);
        if (in->job.id > 0 && in->job.doc_name[0] &&
            store_job_get(D.store, in->job.id, &cur) < 0 && errno == ENOENT) {
            log_err("intake: the job's record was rolled back; its document is shredded");
            in->job.id = 0;
            iopool_submit(unrecorded_work, unrecorded_done, in);
            return;
        }
        job_clear(&cur);
        if (in->job.id > 0 && in->phase == PHASE_ANSWER && in->prev_id == 0) {
            /* this upload's own job: its row stands, its verdict went */
            verdict_unrecorded(in);
            return;
        }
        log_job(LOG_LVL_ERR, in->job.id, NULL, "intake: the job's record could not be committed");
        body = unrecorded_answer(in, &status);
    }
    respond_detached(in, status, body);
    intake_free(in);
}

/* Answer the client, if any, once every write made so far (this job's row
 * and verdict among them) is committed, then let the intake go.  Many
 * uploads answered in one loop turn share that one commit. */
static void intake_answer(struct intake *in, int status, json_t *body)
{
    in->phase = PHASE_ANSWER;
    in->ans_status = status;
    json_decref(in->ans_body);
    in->ans_body = body;
    /* with many uploads under way, give a few more verdicts the chance to
     * share this commit */
    store_sync_within(D.store, answer_synced, in, busy >= INTAKE_SHARE_BUSY ? INTAKE_SHARE_MS : 0);
}

static void rejected_shredded(void *arg)
{
    struct intake *in = arg;
    struct job j;
    json_t *jj = NULL;
    if (store_job_get(D.store, in->job.id, &j) == 0) {
        jj = job_to_json(&j);
        job_clear(&j);
    } else {
        jj = job_to_json(&in->job);
    }
    json_t *reasons = json_incref(json_object_get(in->report, "reasons"));
    int64_t id = in->job.id;
    intake_answer(in, 422, json_pack("{s:s, s:s, s:o, s:o}", "error", "preflight-failed",
                                     "message", "The document cannot be printed.",
                                     "reasons", reasons ? reasons : json_array(), "job", jj));
    idem_done(id);
}

static void preflight_done(int64_t job_id, json_t *report, bool reject, void *arg)
{
    struct intake *in = arg;
    struct job *j = &in->job;
    char *txt = json_dumps(report, JSON_COMPACT);

    in->report = report;
    in->reject = reject;
    metrics_preflight_ms(mono_ms() - in->pf_started);
    free(j->preflight);
    j->preflight = txt;
    j->pages = (int)json_integer_value(json_object_get(report, "pages"));
    if (reject) {
        char codes[256] = "";
        size_t i;
        json_t *r;
        json_array_foreach(json_object_get(report, "reasons"), i, r) {
            const char *c = json_string_value(json_object_get(r, "code"));
            if (c && in->req)       /* count what a client was refused (not restarts) */
                metrics_upload_rejected(c);
            if (c && strlen(codes) + strlen(c) + 2 < sizeof codes) {
                if (codes[0])
                    strcat(codes, ",");
                strcat(codes, c);
            }
        }
        store_defer_begin(D.store);
        int rc = job_set_state(D.store, j, JOB_STATE_REJECTED, -1, "preflight: %s", codes);
        store_defer_end(D.store);
        if (rc < 0) {
            verdict_unrecorded(in);
            return;
        }
        retention_shred_job(j->id, "rejected", rejected_shredded, in);
        return;
    }
    store_defer_begin(D.store);
    int rc = job_set_state(D.store, j, j->hold ? JOB_STATE_HELD : JOB_STATE_QUEUED, -1,
                           "preflight: accepted, %d pages", j->pages);
    store_defer_end(D.store);     /* (logged: preflight's verdict, then the new state) */
    if (rc < 0) {
        verdict_unrecorded(in);
        return;
    }
    sched_kick();
    int64_t id = j->id;
    intake_answer(in, 201, job_to_json(j));
    idem_done(id);
}

static void intake_preflight(struct intake *in);

static void verdict_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    intake_preflight(arg);
}

/* A verdict that could not be recorded: its write failed, or its commit
 * did, or the job's row itself went with a failed commit of the batch it
 * was inserted in (the insert is deferred, and its batch may commit, and
 * fail, while preflight runs).  The client is told at once (507 when the
 * store's disk is full, else 500; never the verdict).  Without a row
 * nothing acknowledged the document: it is shredded, and retries waiting
 * for this job are woken to find it gone.  With one (in state
 * preflight), the job was committed, so it is finished anyway: checked
 * again after a pause (1 s, doubling up to a minute), as after a restart,
 * until its verdict is recorded; retries wait for that. */
static void verdict_unrecorded(struct intake *in)
{
    int64_t id = in->job.id;
    int status;
    struct job cur;

    json_t *body = unrecorded_answer(in, &status);
    respond_detached(in, status, body);
    json_decref(in->report);
    in->report = NULL;
    json_decref(in->ans_body);
    in->ans_body = NULL;
    int got = store_job_get(D.store, id, &cur);      /* (cleared when it fails) */
    if (got < 0 && errno == ENOENT) {
        log_job(LOG_LVL_ERR, id, NULL, "intake: the job's record was rolled back; its document "
                "is shredded");
        in->job.id = 0;
        idem_done(id);
        iopool_submit(unrecorded_work, unrecorded_done, in);   /* (no client left to answer) */
        return;
    }
    if (got == 0) {                  /* the stored job, in place of our unrecorded changes */
        job_clear(&in->job);
        in->job = cur;
    }
    in->job.state = JOB_STATE_PREFLIGHT;
    int delay = (int)backoff_s(in->retries, 1, 60);
    in->retries++;
    log_job(LOG_LVL_ERR, id, NULL, "intake: the verdict could not be recorded; checking the "
            "document again in %d s", delay);
    in->phase = PHASE_PREFLIGHT;
    if (!in->retry_ev && !(in->retry_ev = evtimer_new(D.base, verdict_retry_cb, in)))
        fatal("intake: out of memory");
    struct timeval tv = {delay, 0};
    evtimer_add(in->retry_ev, &tv);
}

/* in's committed document could not be opened for its preflight (errno
 * says why): the job is rejected, document-lost, and whatever is left of
 * the file is shredded as a rejected document is (gone already: noted
 * so). */
static void preflight_unopened(struct intake *in)
{
    int64_t id = in->job.id;
    log_job(LOG_LVL_ERR, id, NULL, "intake: committed document cannot be opened: %s",
            strerror(errno));
    job_reason_add(&in->job, "document-lost");
    store_defer_begin(D.store);
    int rc = job_set_state(D.store, &in->job, JOB_STATE_REJECTED, -1,
                           "document lost before preflight");
    store_defer_end(D.store);
    if (rc == 0)
        retention_shred_job(id, "rejected: document lost", NULL, NULL);
    intake_answer(in, 500, json_pack("{s:s, s:s}", "error", "internal",
                                     "message", "The stored document was lost."));
    idem_done(id);                  /* a retry waiting for this verdict gets it */
}

#ifdef COPEES_TEST_KNOBS
static void unopened_late(evutil_socket_t unused, short what, void *arg)
{
    errno = EIO;
    preflight_unopened(arg);
}
#endif

/* Start the preflight of in's committed job. */
static void intake_preflight(struct intake *in)
{
    in->phase = PHASE_PREFLIGHT;
    in->pf_started = mono_ms();
#ifdef COPEES_TEST_KNOBS
    if (fault_once("preflight-open-fails")) {
        /* test builds: the open fails, 3 s late, so that a retry can be
         * waiting for the verdict by then */
        struct timeval tv = {3, 0};
        event_base_once(D.base, -1, EV_TIMEOUT, unopened_late, in, &tv);
        return;
    }
#endif
    int fd = spool_job_open(D.spool, in->job.doc_name);
    if (fd < 0)
        preflight_unopened(in);
    else
        preflight_submit(in->job.id, fd, &in->job, preflight_done, in);
}

static void commit_dir_work(void *arg)
{
    struct intake *in = arg;
    in->commit_rc = spool_upload_commit_dir(in->up);
    in->commit_errno = errno;
    if (in->commit_rc < 0)
        spool_upload_discard(in->up);
}

/* fdatasync and rename; the directory fsync is a step of its own behind
 * the commits queued meanwhile, so that one fsync makes them all durable. */
static void commit_work(void *arg)
{
    struct intake *in = arg;
    in->commit_rc = spool_upload_commit_file(in->up, in->job.doc_name, in->job.sha256);
    in->commit_errno = errno;
    if (in->commit_rc < 0)
        spool_upload_discard(in->up);
    else
        iopool_then(commit_dir_work);
}

static void unrecorded_work(void *arg)
{
    struct intake *in = arg;
    struct shred_receipt r;
    if (fault_once("leftover-shred-fails")) {    /* test builds: as an I/O error would */
        in->shred_err = EIO;
        return;
    }
    in->shred_err = spool_job_shred(D.spool, in->job.doc_name, D.conf->shred_passes, &r) < 0
                        ? errno : 0;
}

/* A copy that no row names and that could not be shredded is not left
 * to the next start: retention tries again. */
static void unrecorded_shred_check(struct intake *in)
{
    if (in->shred_err && in->shred_err != ENOENT)
        retention_shred_leftover(in->job.doc_name, in->shred_err);
}

static void unrecorded_done(void *arg)
{
    struct intake *in = arg;
    int status;
    unrecorded_shred_check(in);
    json_t *body = unrecorded_answer(in, &status);
    intake_answer(in, status, body);
}

/* Answer a retry with what the first attempt got (or will get). */
static void replay_answer(void *arg)
{
    struct intake *in = arg;
    struct job prev;
    if (store_job_get(D.store, in->prev_id, &prev) < 0) {
        intake_answer(in, 500, json_pack("{s:s, s:s}", "error", "internal",
                                         "message", "The earlier job cannot be read."));
        return;
    }
    /* the earlier attempt's row went with a failed commit, and its id may
     * be another job's by now: this attempt is not that job's retry */
    if (in->job.idem_key[0] ? strcmp(prev.idem_key, in->job.idem_key) != 0
                            : strcmp(prev.order, in->job.order) != 0 ||
                                  strcmp(prev.sha256, in->job.sha256) != 0) {
        job_clear(&prev);
        intake_answer(in, 500, json_pack("{s:s, s:s}", "error", "internal",
                                         "message", "The earlier attempt was not recorded; "
                                         "send the document again."));
        return;
    }
    if (prev.state == JOB_STATE_PREFLIGHT) {
        job_clear(&prev);
        idem_wait(in->prev_id, replay_answer, in);
        return;
    }
    if (prev.state == JOB_STATE_REJECTED) {
        json_t *pf = prev.preflight ? json_loads(prev.preflight, 0, NULL) : NULL;
        json_t *reasons = json_incref(json_object_get(pf, "reasons"));
        json_decref(pf);
        intake_answer(in, 422, json_pack("{s:s, s:s, s:o, s:o}", "error", "preflight-failed",
                                         "message", "The document cannot be printed.",
                                         "reasons", reasons ? reasons : json_array(),
                                         "job", job_to_json(&prev)));
    } else {
        intake_answer(in, 200, job_to_json(&prev));
    }
    job_clear(&prev);
}

static void replay_shredded(void *arg)
{
    struct intake *in = arg;
    unrecorded_shred_check(in);
    if (in->commit_rc == 409) {
        metrics_upload_rejected("idempotency-conflict");
        intake_answer(in, 409, json_pack("{s:s, s:s}", "error", "idempotency-conflict",
                      "message", in->job.idem_key[0]
                          ? "This Idempotency-Key was used for another document or ticket."
                          : "This document was already sent for this order with another ticket; "
                            "give each print its own Idempotency-Key."));
        return;
    }
    replay_answer(in);
}

/* in repeats job prev: shred in's own copy, then answer like prev. */
static void intake_replay(struct intake *in, const struct job *prev)
{
    bool same = idem_same_ticket(&in->job, prev, in->due_given, in->media_given) &&
                strcmp(in->job.sha256, prev->sha256) == 0;
    in->phase = PHASE_REPLAY;
    in->prev_id = prev->id;
    in->commit_rc = same ? 0 : 409;
    log_job(LOG_LVL_INFO, prev->id, NULL, "intake: %s of this job", same ? "a retry" : "a conflicting retry");
    iopool_submit(unrecorded_work, replay_shredded, in);
}

static void commit_done(void *arg)
{
    struct intake *in = arg;
    struct job *j = &in->job;

    if (in->commit_rc < 0) {
        log_err("intake: committing an upload failed: %s", strerror(in->commit_errno));
        bool full = in->commit_errno == ENOSPC || in->commit_errno == EDQUOT;
        if (full)
            metrics_upload_rejected("insufficient-storage");
        intake_answer(in, full ? 507 : 500,
                      json_pack("{s:s, s:s}", "error", full ? "insufficient-storage" : "internal",
                                "message", full ? "The spooler ran out of disk space."
                                                : "The spooler cannot store the document."));
        return;
    }
    j->bytes = spool_upload_bytes(in->up);
    struct job prev;
    if (idem_find(j, &prev) == 0) {
        intake_replay(in, &prev);
        job_clear(&prev);
        return;
    }
    j->created_at = now_s();
    if (!in->due_given)
        j->due = j->created_at + D.conf->default_due_ms / 1000;
    j->state = JOB_STATE_PREFLIGHT;
    j->document_present = true;
    store_defer_begin(D.store);
    int rc = store_job_insert(D.store, j, in->req ? (int64_t)in->req->uid : -1);
    store_defer_end(D.store);
    if (rc < 0) {
        if (errno == EEXIST && idem_find(j, &prev) == 0) {   /* a key raced us */
            intake_replay(in, &prev);
            job_clear(&prev);
            return;
        }
        /* Not acknowledged: the file has no row (the startup sweep would
         * shred it); shred it now, then answer 500. */
        log_err("intake: cannot record a job; its document is shredded");
        iopool_submit(unrecorded_work, unrecorded_done, in);
        return;
    }
    log_job(LOG_LVL_DEBUG, j->id, NULL, "intake: committed %lld bytes", (long long)j->bytes);
    fault_point("upload-after-insert");
    intake_preflight(in);
}

void intake_complete(struct http_req *req)
{
    struct intake *in = req->ctx;
    if (spool_upload_bytes(in->up) == 0) {
        intake_discard(in);
        metrics_upload_rejected("empty-body");
        http_respond_error(req, 400, "empty-body", "The request carries no document.");
        return;
    }
    in->phase = PHASE_COMMIT;
    in->waiting_idle = !spool_upload_idle(in->up);
    if (!in->waiting_idle)
        iopool_submit(commit_work, commit_done, in);
}

static int resume_one(const struct job *j, void *arg)
{
    struct intake *in = calloc(1, sizeof *in);
    if (!in)
        return -1;
    busy++;
    job_copy(&in->job, j);
    log_job(LOG_LVL_INFO, j->id, NULL, "intake: preflighting again after a restart");
    intake_preflight(in);
    return 0;
}

void intake_resume(void)
{
    struct store_filter f = STORE_FILTER_INIT;
    f.states = 1u << JOB_STATE_PREFLIGHT;
    if (store_jobs_query(D.store, &f, resume_one, NULL) < 0)
        fatal("startup: the jobs still in preflight cannot all be read from the database");
}
