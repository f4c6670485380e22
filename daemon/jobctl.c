/* jobctl.c - cancel, hold, release and move (see jobctl.h).
 *
 * Design notes: every change goes through job_set_state() with the peer's
 * uid, so the audit log names who did it.  A job inside CUPS (sent,
 * printing) is taken back first (Cancel-Job, purge-job=true); only when
 * CUPS has let it go is it marked canceled and its document shredded, and
 * only then does the client get its 200.  When cupsd cannot be reached the
 * cancel is refused with 503 rather than promised: the web tier retries.
 * A printed job is not canceled (409): its document is erased with shred.
 * A job with a CUPS operation in flight (being handed over, taken back or
 * settled: sched_busy) gets 409 busy for cancel and hold, as move and
 * shred do (503 cups-unreachable while cupsd does not answer, as the
 * operation then waits for it): its document may be being read, and a CUPS job it left may
 * have it (held, that CUPS job would be purged, and a release would print
 * the job a second time).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "daemon.h"
#include "job.h"
#include "jobctl.h"
#include "log.h"
#include "retention.h"
#include "sched.h"
#include "store.h"
#include "util.h"

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

bool jobctl_unreconciled(struct http_req *req, int64_t id)
{
    if (sched_ready() || store_event_count(D.store, id, "dispatch") == 0)
        return false;
    http_respond_error(req, 503, "starting", "copeesd has not yet matched its jobs with what "
                       "CUPS holds (after a start, or while cupsd does not answer); retry later.");
    return true;
}

/* load() for an action that may change what CUPS is to print: refused,
 * for a job ever handed to CUPS, until the start-up reconciliation is
 * done, as until then a queued job may be in CUPS already (a crash after
 * the hand-over), and holding, moving or releasing it could print it
 * twice. */
static int load_action(struct http_req *req, int64_t id, struct job *j)
{
    if (load(req, id, j) < 0)
        return -1;
    if (!jobctl_unreconciled(req, id))
        return 0;
    job_clear(j);
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
    if (load_action(req, id, &j) < 0)
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
        if (sched_busy(id)) {
            /* CUPS is reading its document (or we are asking CUPS about
             * it): shredding now would hand CUPS overwritten data */
            jobctl_respond_busy(req, id, jobctl_cancel);
            break;
        }
        c = calloc(1, sizeof *c);
        if (!c)
            fatal("jobctl: out of memory");
        c->req = req;
        c->id = id;
        c->uid = (int64_t)req->uid;
        req->answer_pending = true;
        if (s == JOB_STATE_SENT || s == JOB_STATE_PRINTING)
            sched_withdraw(&j, cancel_withdrawn, c);
        else
            cancel_finish(c);
        break;
    }
    job_clear(&j);
}

/* An action on a busy job is tried again every BUSY_RETRY_MS for up to
 * BUSY_RETRIES times before the 409: most CUPS operations on a job (a
 * routine poll of its state, a hand-over) take a few milliseconds, and
 * a client should not see them. */
#define BUSY_RETRY_MS 100
#define BUSY_RETRIES 20

struct busy_retry {
    struct http_req *req;
    int64_t id;
    void (*again)(struct http_req *, int64_t);
    int tries;
    bool rearmed;
    struct event *ev;
};
static struct busy_retry *busy_current;   /* the retry being run, if any */

static void busy_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct busy_retry *b = arg;
    (void)fd, (void)what;
    b->rearmed = false;
    busy_current = b;
    b->again(b->req, b->id);
    busy_current = NULL;
    if (!b->rearmed) {
        event_free(b->ev);
        free(b);
    }
}

void jobctl_respond_busy(struct http_req *req, int64_t id,
                         void (*again)(struct http_req *, int64_t))
{
    if (!sched_cups_ok()) {
        http_respond_error(req, 503, "cups-unreachable", "The job is being handed to CUPS, "
                           "which cannot be reached now (it may have the job); retry later.");
        return;
    }
    struct busy_retry *b = busy_current && busy_current->req == req ? busy_current : NULL;
    if (!b || b->tries < BUSY_RETRIES) {
        if (!b) {
            b = calloc(1, sizeof *b);
            if (!b || !(b->ev = evtimer_new(D.base, busy_retry_cb, b)))
                fatal("jobctl: out of memory");
            b->req = req;
            b->id = id;
            b->again = again;
        }
        b->tries++;
        b->rearmed = true;
        req->answer_pending = true;      /* kept if the client goes away meanwhile */
        struct timeval tv = {0, BUSY_RETRY_MS * 1000};
        evtimer_add(b->ev, &tv);
        return;
    }
    http_respond_error(req, 409, "busy", "The job is being handed to CUPS; retry in a moment.");
}

void jobctl_hold(struct http_req *req, int64_t id)
{
    struct job j;
    if (load_action(req, id, &j) < 0)
        return;
    if (j.state == JOB_STATE_QUEUED && sched_busy(id)) {
        /* being handed over or settled: the CUPS job it left may have its
         * document, and a held job's CUPS job is purged, so a release
         * would print it a second time */
        jobctl_respond_busy(req, id, jobctl_hold);
        job_clear(&j);
        return;
    }
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
    if (load_action(req, id, &j) < 0)
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

/* ------------------------------------------------------------ move */

struct move {
    struct http_req *req;
    int64_t id, uid;
    char printer[64];
    bool started;        /* CUPS had begun printing it where it was */
    bool taken;          /* taken back from CUPS for this move */
};

/* Pin the queued job to m->printer and answer. */
static void move_finish(struct move *m)
{
    struct job j;
    if (load(m->req, m->id, &j) < 0) {
        free(m);
        return;
    }
    const char *msg, *code = NULL;
    if (j.state != JOB_STATE_QUEUED && j.state != JOB_STATE_SENT)
        code = "not-movable", msg = "The job is no longer waiting for a printer.";
    else if (!(code = sched_move_refusal(&j, m->printer, &msg))) {
        char from[sizeof j.printer];
        xstrlcpy(from, j.printer, sizeof from);
        bool started = m->started || job_reason_has(&j, "printer-stopped");
        xstrlcpy(j.printer, m->printer, sizeof j.printer);
        j.cups_job_id = 0;
        job_reason_remove(&j, "no-capable-printer");
        if (started)        /* part of it may be on the other printer's tray */
            job_set_state(D.store, &j, JOB_STATE_QUEUED, m->uid,
                          "moved to printer %s; it had started printing at printer %s",
                          m->printer, from);
        else
            job_set_state(D.store, &j, JOB_STATE_QUEUED, m->uid, "moved to printer %s",
                          m->printer);
        sched_kick();
        http_respond_json(m->req, 200, job_to_json(&j));
    }
    if (code && m->taken && j.state == JOB_STATE_SENT) {
        /* refused only now (the printer was removed or began rejecting
         * while CUPS gave the job back): CUPS no longer has it, so it is
         * queued again, where it was allowed to go */
        char from[sizeof j.printer];
        xstrlcpy(from, j.printer, sizeof from);
        j.printer[0] = '\0';
        j.cups_job_id = 0;
        job_set_state(D.store, &j, JOB_STATE_QUEUED, m->uid, "taken back from printer %s for a "
                      "move to %s, which was then refused (%s): queued again", from, m->printer,
                      code);
        sched_kick();
    }
    if (code)
        http_respond_error(m->req, strcmp(code, "no-such-printer") == 0 ? 404 : 409, code, "%s",
                           msg);
    job_clear(&j);
    free(m);
}

static void move_taken_back(void *arg, int r)
{
    struct move *m = arg;
    if (r < 0) {
        http_respond_error(m->req, 503, "cups-unreachable",
                           "The job is in CUPS and CUPS cannot be reached to take it back; retry later.");
        free(m);
    } else if (r == 1) {
        http_respond_error(m->req, 409, "already-printing", "The printer has started the job.");
        free(m);
    } else if (r == 4) {
        http_respond_error(m->req, 409, "cups-job-lost", "CUPS no longer knows the job, which "
                           "may have printed: it failed; reprint it if it did not.");
        free(m);
    } else {
        m->started = r == 2;
        m->taken = true;
        move_finish(m);
    }
}

void jobctl_move(struct http_req *req, int64_t id)
{
    struct job j;
    bool bad = false;
    char *printer = http_query_get(req->query, "printer", &bad);
    if (bad || !printer || !*printer) {
        http_respond_json(req, 400, json_pack("{s:s, s:s, s:s}", "error", "bad-query", "field",
                                              "printer", "message",
                                              "printer= names the printer to move the job to"));
        free(printer);
        return;
    }
    if (load_action(req, id, &j) < 0) {
        free(printer);
        return;
    }
    const char *msg, *code = sched_move_refusal(&j, printer, &msg);
    if (code && strcmp(code, "no-such-printer") == 0) {
        http_respond_error(req, 404, code, "There is no printer %s.", printer);
    } else if (code) {
        http_respond_error(req, 409, code, "%s", msg);
    } else if (sched_busy(id)) {
        jobctl_respond_busy(req, id, jobctl_move);
    } else if (j.state == JOB_STATE_QUEUED || j.state == JOB_STATE_SENT) {
        struct move *m = calloc(1, sizeof *m);
        if (!m)
            fatal("jobctl: out of memory");
        m->req = req;
        m->id = id;
        m->uid = (int64_t)req->uid;
        req->answer_pending = true;
        xstrlcpy(m->printer, printer, sizeof m->printer);
        if (j.state == JOB_STATE_SENT && strcmp(j.printer, printer) != 0)
            sched_take_back(&j, move_taken_back, m);
        else if (j.state == JOB_STATE_SENT) {
            http_respond_json(req, 200, job_to_json(&j));     /* already there */
            free(m);
        } else
            move_finish(m);
    } else {
        http_respond_error(req, 409, "not-movable",
                           "Only a job not yet printing can be moved; this one is %s.",
                           job_state_name(j.state));
    }
    job_clear(&j);
    free(printer);
}
