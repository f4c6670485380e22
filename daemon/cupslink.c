/* cupslink.c - the CUPS link: IPP operations run off the event loop.
 *
 * Design notes:
 * - The only file that includes libcups headers.  libcups calls block, so
 *   one thread owns one http_t and runs the operations the loop queues
 *   (mutex + condvar FIFO), one at a time, in order; each finished op goes
 *   back to the loop with iopool_post(), so op->done runs on the loop and
 *   every other module stays single-threaded.
 * - libcups keeps the user, the server and the password callback per
 *   thread: the link thread sets them itself (cupsSetUser, cupsSetServer,
 *   cupsSetPasswordCB2).  cupsSetServer() also parses "host:port" and
 *   socket paths exactly as CUPS_SERVER would be; ippNewRequest() does not
 *   add requesting-user-name, so every request here adds cupsUser().
 * - A hung cupsd must not stall the link.  We connect ourselves with a
 *   3 s limit (httpConnect2 without connecting, then httpReconnect2 with
 *   msec, so the reason of a failure survives; cupslink_stop aborts it
 *   through the cancel flag) and give the http_t a 1 s wait slice whose
 *   timeout callback gives up once nothing has moved for STALL_MS (8 s) or
 *   the link is stopping.  Measured: an op against a stopped cupsd fails
 *   at once, one against a frozen (SIGSTOP) cupsd after 8.0 s, and
 *   cupslink_stop with an op hung in cupsd returns in under 2 s.
 *   libcups's own silent reconnects use 30 s; they only happen on an
 *   http_t we have not closed, and we close it after every connection
 *   error, so the next op goes through our short connect again.
 * - Connection errors (no fd, HTTP-level error, service-unavailable) close
 *   the http_t and report unreachable = true.  Before each op an idle
 *   connection is checked for EOF (cupsd restarted or timed it out), and a
 *   read-only op that fails at once (< 1 s, not a timeout) on a reused
 *   connection is retried once on a fresh one; SUBMIT is never retried
 *   (Create-Job may have run).
 * - SUBMIT is our own Create-Job (see op_submit for why not
 *   cupsCreateJob) + cupsStartDocument/cupsWriteRequestData (64 KiB
 *   chunks)/cupsFinishDocument.
 *   Any failure after Create-Job closes the connection (a half-sent chunked
 *   document cannot be finished without printing a truncated file) and
 *   cancels and purges the created job over a fresh one (not after a
 *   timeout: that would be a second wait); if that fails or is skipped,
 *   cups_job_id keeps the orphan's id: the scheduler settles it before
 *   the job goes out again (track_settle), or, after a restart, startup
 *   reconciliation (LIST by job-name) does.
 * - Between Create-Job and Send-Document the link thread waits for the
 *   loop to record the hand-over durably (op->created): a job whose
 *   document may have reached CUPS always has that record, so a restart
 *   that finds neither our commit nor the CUPS job (a cupsd keeping no
 *   job history forgets a printed job at once) knows it may have printed
 *   and does not send it again (track.c).  The wait is a condition
 *   variable under mu; cupslink_stop wakes it, and the op then fails as
 *   any op cut short after Create-Job.  Nothing that names a customer goes
 *   to CUPS: the document is "copees-<job id>.pdf".
 * - The cancel flag is an int libcups polls while connecting: we write it
 *   with an atomic store, libcups reads it plainly (a benign race).
 * - All signals are blocked on the link thread: asynchronous ones go to the
 *   loop's thread, and a write to a closed socket gives EPIPE, not SIGPIPE.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cups/cups.h>
#include <cups/http.h>
#include <cups/ipp.h>

#include "cupslink.h"
#include "iopool.h"
#include "log.h"
#include "util.h"

#define CONNECT_MS 3000        /* our own (re)connects */
#define WAIT_SLICE 1.0         /* seconds between timeout callbacks */
#define STALL_MS 8000          /* no progress this long: give up */
#define CHUNK (64 * 1024)      /* Send-Document write size */

/* What an IPP exchange came to. */
enum res { RES_OK, RES_FAIL, RES_BROKEN };

/* Shared between the loop and the link thread, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct cups_op *q_head, *q_tail;
static bool running, stopping;
/* The hand-over record the link thread waits for (op->created). */
static pthread_cond_t rec_cv = PTHREAD_COND_INITIALIZER;
static enum { REC_NONE, REC_WAITING, REC_DONE, REC_REFUSED } rec_state;
static struct cups_op *rec_op;
static pthread_t link_thread;
static char *link_server, *link_user;
/* Set by cupslink_stop, read (atomically) by the link thread and libcups. */
static int stop_flag;
static int connect_cancel;

/* The link thread's own. */
static http_t *http;
static int64_t stall_since;
static bool timed_out;         /* the timeout callback gave up */
static char *chunk;

/* Name of an op kind, for logs. */
static const char *kind_name(enum cups_op_kind k)
{
    switch (k) {
    case CUPS_OP_SUBMIT: return "submit";
    case CUPS_OP_JOB_STATE: return "job-state";
    case CUPS_OP_PURGE: return "purge";
    case CUPS_OP_PRINTER: return "printer";
    case CUPS_OP_LIST: return "list";
    case CUPS_OP_SETTINGS: return "settings";
    case CUPS_OP_PROBE: return "probe";
    }
    return "?";
}

/* Run op's completion on the loop (iopool_post callback). */
static void op_deliver(void *arg)
{
    struct cups_op *op = arg;
    if (op->done)
        op->done(op);
    else
        cups_op_free(op);
}

/* Complete op unrun with ok = false and error why; close its document. */
static void op_refuse(struct cups_op *op, const char *why)
{
    if (op->doc_fd >= 0) {
        close(op->doc_fd);
        op->doc_fd = -1;
    }
    if (op->cover_fd >= 0) {
        close(op->cover_fd);
        op->cover_fd = -1;
    }
    op->ok = false;
    op->unreachable = false;
    xstrlcpy(op->error, why, sizeof op->error);
    iopool_post(op_deliver, op);
}

/* On the loop: record op's hand-over (op->created) unless the link thread
 * stopped waiting for it, and tell the thread. */
static void op_created(void *arg)
{
    struct cups_op *op = arg;
    pthread_mutex_lock(&mu);
    bool waited = rec_state == REC_WAITING && rec_op == op;
    pthread_mutex_unlock(&mu);
    bool ok = waited && op->created(op);
    pthread_mutex_lock(&mu);
    if (rec_state == REC_WAITING && rec_op == op) {
        rec_state = ok ? REC_DONE : REC_REFUSED;
        pthread_cond_broadcast(&rec_cv);
    }
    pthread_mutex_unlock(&mu);
}

/* On the link thread: have the loop record that CUPS job id is op's, and
 * wait for it.  Whether it is recorded (false when stopping). */
static bool record_handover(struct cups_op *op, int id)
{
    op->cups_job_id = id;
    pthread_mutex_lock(&mu);
    rec_op = op;
    rec_state = REC_WAITING;
    pthread_mutex_unlock(&mu);
    iopool_post(op_created, op);
    pthread_mutex_lock(&mu);
    while (rec_state == REC_WAITING && !stopping)
        pthread_cond_wait(&rec_cv, &mu);
    bool ok = rec_state == REC_DONE;
    rec_state = REC_NONE;
    rec_op = NULL;
    pthread_mutex_unlock(&mu);
    op->cups_job_id = 0;
    return ok;
}

/* ------------------------------------------------------------ connection */

/* libcups's timeout callback: 1 = keep waiting, 0 = give up. */
static int link_timeout_cb(http_t *h, void *unused)
{
    if (__atomic_load_n(&stop_flag, __ATOMIC_RELAXED) || mono_ms() - stall_since >= STALL_MS) {
        timed_out = true;
        return 0;
    }
    return 1;
}

/* Drop the connection, if any. */
static void link_close(void)
{
    if (http)
        httpClose(http);
    http = NULL;
}

/* Have a usable connection; 0, or -1 with err set.  An idle connection
 * that has something to read has been closed by cupsd: start afresh. */
static int link_connect(char *err, size_t len)
{
    if (http && (httpGetFd(http) < 0 || httpWait(http, 0)))
        link_close();
    if (http)
        return 0;
    /* Create without connecting (msec 0), then connect: a failed
     * httpConnect2() frees the http_t and with it the reason. */
    http = httpConnect2(cupsServer(), ippPort(), NULL, AF_UNSPEC, cupsEncryption(), 1, 0, NULL);
    if (!http) {
        snprintf(err, len, "cannot resolve cupsd's address %s", cupsServer());
        return -1;
    }
    if (httpReconnect2(http, CONNECT_MS, &connect_cancel) != 0) {
        int e = httpError(http);
        const char *server = cupsServer();
        if (server[0] == '/' && access(server, F_OK) != 0)
            snprintf(err, len, "cannot connect to cupsd: no socket %s", server);
        else
            snprintf(err, len, "cannot connect to cupsd at %s: %s", server,
                     e ? strerror(e) : "timed out");
        link_close();
        return -1;
    }
    httpSetTimeout(http, WAIT_SLICE, link_timeout_cb, NULL);
    log_debug("cupslink: connected to %s", cupsServer());
    return 0;
}

/* After a failed exchange: is the connection itself at fault? */
static bool link_broken(void)
{
    if (!http || httpGetFd(http) < 0 || timed_out)
        return true;
    if (cupsLastError() == IPP_STATUS_ERROR_SERVICE_UNAVAILABLE)
        return true;
    return httpGetStatus(http) == HTTP_STATUS_ERROR;
}

/* Fill op->error from libcups's last error, prefixed by what failed. */
static void op_error_ipp(struct cups_op *op, const char *what)
{
    if (timed_out) {
        snprintf(op->error, sizeof op->error, "%s: cupsd did not answer within %d s", what,
                 STALL_MS / 1000);
        return;
    }
    if (http && httpGetStatus(http) == HTTP_STATUS_ERROR && httpError(http)) {
        snprintf(op->error, sizeof op->error, "%s: connection to cupsd lost: %s", what,
                 strerror(httpError(http)));
        return;
    }
    ipp_status_t st = cupsLastError();
    const char *msg = cupsLastErrorString();
    const char *name = ippErrorString(st);
    if (msg && strcmp(msg, name) != 0)
        snprintf(op->error, sizeof op->error, "%s: %s: %s", what, name, msg);
    else
        snprintf(op->error, sizeof op->error, "%s: %s", what, name);
}

/* ------------------------------------------------------------ IPP helpers */

/* ipp://localhost:PORT/printers/QUEUE into buf. */
static void printer_uri(char *buf, size_t len, const char *queue)
{
    httpAssembleURIf(HTTP_URI_CODING_ALL, buf, (int)len, "ipp", NULL, "localhost", ippPort(),
                     "/printers/%s", queue);
}

/* ipp://localhost:PORT/jobs/ID into buf. */
static void job_uri(char *buf, size_t len, int id)
{
    httpAssembleURIf(HTTP_URI_CODING_ALL, buf, (int)len, "ipp", NULL, "localhost", ippPort(),
                     "/jobs/%d", id);
}

/* New request for op with the target URI (name "printer-uri" or "job-uri")
 * and our requesting-user-name; never NULL. */
static ipp_t *request_new(ipp_op_t ipp_op, const char *uri_name, const char *uri)
{
    ipp_t *req = ippNewRequest(ipp_op);
    ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, uri_name, NULL, uri);
    ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "requesting-user-name", NULL, cupsUser());
    return req;
}

/* Send req (consumed) to resource; *resp is the answer on RES_OK (caller
 * ippDelete()s it), NULL otherwise, with op->error set. */
static enum res request_do(struct cups_op *op, ipp_t *req, const char *resource,
                           const char *what, ipp_t **resp)
{
    stall_since = mono_ms();
    timed_out = false;
    *resp = cupsDoRequest(http, req, resource);
    if (*resp && cupsLastError() <= IPP_STATUS_OK_CONFLICTING)
        return RES_OK;
    ippDelete(*resp);
    *resp = NULL;
    op_error_ipp(op, what);
    return link_broken() ? RES_BROKEN : RES_FAIL;
}

/* Join the keyword values of attr with ',' into buf (whole keywords only). */
static void join_keywords(ipp_attribute_t *attr, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; attr && i < ippGetCount(attr); i++) {
        const char *kw = ippGetString(attr, i, NULL);
        size_t n = kw ? strlen(kw) : 0;
        if (!n || used + (used ? 1 : 0) + n + 1 > len)
            continue;
        if (used)
            buf[used++] = ',';
        memcpy(buf + used, kw, n + 1);
        used += n;
    }
}

/* IPP job-state enum to ours (anything unexpected is UNKNOWN). */
static enum cups_jstate jstate_of(int v)
{
    return v >= CUPS_J_PENDING && v <= CUPS_J_COMPLETED ? (enum cups_jstate)v : CUPS_J_UNKNOWN;
}

/* Cancel-Job with purge-job=true of CUPS job id: RES_OK also when CUPS no
 * longer knows the job (nothing left to purge). */
static enum res cancel_purge(struct cups_op *op, int id)
{
    char uri[HTTP_MAX_URI];
    ipp_t *resp;

    job_uri(uri, sizeof uri, id);
    ipp_t *req = request_new(IPP_OP_CANCEL_JOB, "job-uri", uri);
    ippAddBoolean(req, IPP_TAG_OPERATION, "purge-job", 1);
    enum res r = request_do(op, req, "/jobs/", "Cancel-Job", &resp);
    ippDelete(resp);
    if (r == RES_FAIL && cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND) {
        xstrlcpy(op->error, "not-found", sizeof op->error);
        return RES_OK;
    }
    return r;
}

/* ------------------------------------------------------------ operations */

/* The names of the attributes in resp's unsupported-attributes group,
 * comma-separated, into buf. */
static void unsupported_names(ipp_t *resp, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (ipp_attribute_t *a = ippFirstAttribute(resp); a; a = ippNextAttribute(resp)) {
        const char *name = ippGetName(a);
        if (ippGetGroupTag(a) != IPP_TAG_UNSUPPORTED_GROUP || !name)
            continue;
        size_t n = strlen(name);
        if (used + n + 2 > len)
            break;
        if (used)
            buf[used++] = ',';
        memcpy(buf + used, name, n + 1);
        used += n;
    }
}

/* Send-Document of fd as CUPS job id's next document; 0; -1 (op->error
 * set; the connection may be mid-request) when CUPS cannot have the whole
 * document; 1 when every byte was handed to the connection and the end
 * of the request or its answer failed: CUPS may have the document. */
static int send_document(struct cups_op *op, int id, int fd, const char *docname, bool last)
{
    stall_since = mono_ms();
    if (cupsStartDocument(http, op->queue, id, docname, CUPS_FORMAT_PDF, last) != HTTP_STATUS_CONTINUE) {
        op_error_ipp(op, "Send-Document");
        return -1;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(op->error, sizeof op->error, "reading the document: %s", strerror(errno));
            return -1;
        }
        if (n == 0)
            break;
        stall_since = mono_ms();
        if (cupsWriteRequestData(http, chunk, (size_t)n) != HTTP_STATUS_CONTINUE) {
            op_error_ipp(op, "Send-Document data");
            return -1;
        }
    }
    stall_since = mono_ms();
    if (cupsFinishDocument(http, op->queue) > IPP_STATUS_OK_CONFLICTING) {
        op_error_ipp(op, "Send-Document");
        return 1;
    }
    return 0;
}

/* One CUPS job: Create-Job with the ticket, then the document fd in one
 * Send-Document; on failure after Create-Job, cancel and purge it.
 * Create-Job is our own request, not cupsCreateJob(): that one first looks
 * the queue up with cupsGetNamedDest (which reads the user's lpoptions
 * files and turns "no such queue" into "internal error: No such file or
 * directory") and queries the printer, three round trips where one does.
 * main: the job's own document (fault points, refusal, substitutions are
 * about it).  *id_out: the CUPS job id on RES_OK. */
static enum res one_job(struct cups_op *op, const char *name, int copies, const char *media,
                        const char *sides, const char *color, int fd, const char *docname,
                        bool main, int *id_out)
{
    cups_option_t *opts = NULL;
    int nopts = 0, id;
    enum res r;
    char uri[HTTP_MAX_URI], resource[160];
    ipp_t *resp;

    *id_out = 0;
    if (copies > 0)
        nopts = cupsAddIntegerOption("copies", copies, nopts, &opts);
    if (media[0])
        nopts = cupsAddOption("media", media, nopts, &opts);
    if (sides[0])
        nopts = cupsAddOption("sides", sides, nopts, &opts);
    if (color[0])
        nopts = cupsAddOption("print-color-mode", color, nopts, &opts);
    printer_uri(uri, sizeof uri, op->queue);
    snprintf(resource, sizeof resource, "/printers/%s", op->queue);
    ipp_t *req = request_new(IPP_OP_CREATE_JOB, "printer-uri", uri);
    ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_NAME, "job-name", NULL, name);
    cupsEncodeOptions2(req, nopts, opts, IPP_TAG_JOB);
    cupsFreeOptions(nopts, opts);
    r = request_do(op, req, resource, "Create-Job", &resp);
    if (r != RES_OK) {
        ipp_status_t st = cupsLastError();
        op->refused = r == RES_FAIL && st >= IPP_STATUS_ERROR_BAD_REQUEST &&
                      st <= 0x04ff && st != IPP_STATUS_ERROR_NOT_FOUND &&
                      st != IPP_STATUS_ERROR_NOT_ACCEPTING_JOBS &&
                      st != IPP_STATUS_ERROR_FORBIDDEN && st != IPP_STATUS_ERROR_NOT_AUTHORIZED &&
                      st != IPP_STATUS_ERROR_NOT_AUTHENTICATED;
        return r;
    }
    if (main)
        unsupported_names(resp, op->substituted, sizeof op->substituted);
    if (main && fault_once("create-substituted"))
        /* test builds: Create-Job's answer says CUPS changes the media (a
         * real cupsd leaves media to the filters of an IPP Everywhere
         * queue) */
        xstrlcpy(op->substituted, "media", sizeof op->substituted);
    ipp_attribute_t *a = ippFindAttribute(resp, "job-id", IPP_TAG_INTEGER);
    id = a ? ippGetInteger(a, 0) : 0;
    ippDelete(resp);
    if (id <= 0) {
        xstrlcpy(op->error, "Create-Job: no job-id in the answer", sizeof op->error);
        return RES_FAIL;
    }
    if (main) {
        fault_point("crash-after-create-job");
        fault_pause("pause-after-create-job");
    }
    int sent = -1;
    bool recorded = !main || !op->created || record_handover(op, id);
    if (main && recorded)
        fault_point("crash-after-handover");
    if (!recorded) {
        xstrlcpy(op->error, __atomic_load_n(&stop_flag, __ATOMIC_RELAXED) ? "stopping" :
                 "the hand-over could not be recorded", sizeof op->error);
    } else if (fault_once(main ? "send-timeout-before" : "cover-send-timeout")) {
        /* test builds: cupsd stops answering before the document */
        timed_out = true;
        xstrlcpy(op->error, "Send-Document: no answer (test fault)", sizeof op->error);
    } else if (main && fault_once("send-error-before")) {
        /* test builds: Send-Document fails at once, before the document
         * (a reset, not a stall) */
        xstrlcpy(op->error, "Send-Document: connection reset (test fault)", sizeof op->error);
    } else if (main && fault_once("send-timeout-gone")) {
        /* test builds: the same, and the job is gone from cupsd by the
         * time it is settled (as with PreserveJobHistory No) */
        cancel_purge(op, id);
        timed_out = true;
        xstrlcpy(op->error, "Send-Document: no answer (test fault)", sizeof op->error);
    } else {
        sent = send_document(op, id, fd, docname, true);
        if (sent == 0 && main) {
            fault_point("crash-after-send");
            fault_pause("pause-after-send");
        }
        bool subst = sent == 0 && main && fault_once("send-timeout-after-substituted");
        if (subst)
            /* test builds: as below, and Create-Job's answer had said CUPS
             * changed the media (a real cupsd does not, for an IPP
             * Everywhere queue: it leaves media to the filters) */
            xstrlcpy(op->substituted, "media", sizeof op->substituted);
        if (sent == 0 && main && (subst || fault_once("send-timeout-after"))) {
            /* test builds: the document went in, its answer was lost */
            sent = -1;
            timed_out = true;
            xstrlcpy(op->error, "Send-Document: no answer (test fault)", sizeof op->error);
        }
        if (sent == 0 && main && fault_once("send-error-after")) {
            /* test builds: the document went in, and the answer failed
             * at once (a connection reset, not a stall) */
            sent = 1;
            xstrlcpy(op->error, "Send-Document: connection reset (test fault)",
                     sizeof op->error);
        }
    }
    if (sent == 0) {
        *id_out = id;
        return RES_OK;
    }
    /* The connection may be mid-request: never finish it, start afresh.
     * A cupsd that stopped answering gets no second wait for the cancel.
     * A job that may have its whole document (sent == 1) is not canceled
     * either: CUPS may be printing it already, or have printed and
     * forgotten it (a "not found" would look like a clean purge); the
     * settle reads it instead. */
    bool may_have_doc = sent == 1;
    /* Send-Document failed before the whole document went, without a
     * stall (an error answer, a reset): CUPS cannot print that job.  When
     * a hand-over record names it, it is not purged here: the settle
     * deletes the record first, then purges it (a purge first, then a
     * crash, would leave a record naming a job CUPS no longer knows, and
     * the restart would fail a job that never printed) */
    bool settle_unsent = main && op->created && recorded && sent == -1 && !timed_out;
    if (main && (!recorded || settle_unsent))
        op->doc_unsent = true;
    r = link_broken() ? RES_BROKEN : RES_FAIL;
    link_close();
    char err[sizeof op->error], cerr[64];
    enum res c = RES_BROKEN;
    xstrlcpy(err, op->error, sizeof err);
    if (!timed_out && !may_have_doc && !settle_unsent && link_connect(cerr, sizeof cerr) == 0)
        c = main && fault_once("cancel-refused") ? RES_FAIL : cancel_purge(op, id);
    if (c == RES_BROKEN && !may_have_doc && !settle_unsent)
        r = RES_BROKEN;
    if (c == RES_OK) {
        log_job(LOG_LVL_DEBUG, op->job_id, NULL, "cupslink: CUPS job %d canceled and purged", id);
    } else {
        if (main)
            op->cups_job_id = id;
        else
            *id_out = id;           /* the cover sheet's: op_submit's caller purges it */
        log_job(LOG_LVL_WARN, op->job_id, NULL, "cupslink: CUPS job %d left %s: %s", id,
                may_have_doc ? "with its document, perhaps" : "waiting for its document", err);
    }
    xstrlcpy(op->error, err, sizeof op->error);
    return r;
}

/* SUBMIT: the cover sheet first when there is one (its own one-page CUPS
 * job, named <job_name>-cover, right before the job in the queue's FIFO),
 * then the job.  A multi-document job would be the natural home for a
 * cover sheet, but CUPS concatenates the filtered documents of a job into
 * one stream for an IPP printer: a PDF printer then sees only the last
 * PDF (measured with CUPS 2.4.2 and ippeveprinter).  If the job cannot be
 * sent, its cover sheet is canceled and purged too. */
static enum res op_submit(struct cups_op *op)
{
    int fd = op->doc_fd, id = 0;
    enum res r = RES_OK;
    char name[80], docname[64];

    op->doc_fd = -1;
    op->cups_job_id = op->cover_job_id = 0;
    op->doc_unsent = false;
    if (op->cover_fd >= 0) {
        snprintf(name, sizeof name, "%s-cover", op->job_name);
        snprintf(docname, sizeof docname, "copees-%lld-cover.pdf", (long long)op->job_id);
        r = one_job(op, name, 1, op->media, "one-sided", "monochrome", op->cover_fd, docname,
                    false, &op->cover_job_id);
    }
    if (r == RES_OK) {
        snprintf(docname, sizeof docname, "copees-%lld.pdf", (long long)op->job_id);
        r = one_job(op, op->job_name, op->copies, op->media, op->sides, op->color, fd, docname,
                    true, &id);
        if (r == RES_OK)
            op->cups_job_id = id;
        else if (op->cover_job_id && op->cups_job_id <= 0 && http && r != RES_BROKEN) {
            /* (a job left behind keeps its cover for the settle, which
             * purges or follows it with the job; without a connection the
             * scheduler purges it) */
            char err[sizeof op->error];
            xstrlcpy(err, op->error, sizeof err);
            if (cancel_purge(op, op->cover_job_id) == RES_OK)
                op->cover_job_id = 0;
            xstrlcpy(op->error, err, sizeof op->error);
        }
    }
    if (fd >= 0)
        close(fd);
    return r;
}

/* JOB_STATE: Get-Job-Attributes; error "not-found" when CUPS has no such job. */
static enum res op_job_state(struct cups_op *op)
{
    static const char *const want[] = {"job-state", "job-state-reasons",
                                       "job-impressions-completed", "time-at-processing",
                                       "number-of-documents", "job-name"};
    char uri[HTTP_MAX_URI];
    ipp_t *resp;

    op->jstate = CUPS_J_UNKNOWN;
    op->jreasons[0] = '\0';
    op->impressions = 0;
    op->started = false;
    op->jdocuments = -1;
    if (op->pause_point)
        fault_pause(op->pause_point);
    if (op->pause_point && fault_once("settle-finds-gone"))
        cancel_purge(op, op->cups_job_id);  /* test builds: purged first, as by an admin */
    job_uri(uri, sizeof uri, op->cups_job_id);
    ipp_t *req = request_new(IPP_OP_GET_JOB_ATTRIBUTES, "job-uri", uri);
    ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                  (int)(sizeof want / sizeof want[0]), NULL, want);
    enum res r = request_do(op, req, "/", "Get-Job-Attributes", &resp);
    if (r != RES_OK) {
        if (r == RES_FAIL && cupsLastError() == IPP_STATUS_ERROR_NOT_FOUND)
            xstrlcpy(op->error, "not-found", sizeof op->error);
        return r;
    }
    ipp_attribute_t *a = ippFindAttribute(resp, "job-state", IPP_TAG_ENUM);
    op->jstate = a ? jstate_of(ippGetInteger(a, 0)) : CUPS_J_UNKNOWN;
    join_keywords(ippFindAttribute(resp, "job-state-reasons", IPP_TAG_KEYWORD), op->jreasons,
                  sizeof op->jreasons);
    a = ippFindAttribute(resp, "job-impressions-completed", IPP_TAG_INTEGER);
    op->impressions = a ? ippGetInteger(a, 0) : 0;
    a = ippFindAttribute(resp, "time-at-processing", IPP_TAG_INTEGER);
    op->started = a && ippGetInteger(a, 0) > 0;
    a = ippFindAttribute(resp, "number-of-documents", IPP_TAG_INTEGER);
    op->jdocuments = a ? ippGetInteger(a, 0) : -1;
    /* job_name given: the job must be ours (a cupsd whose state was reset,
     * or another cupsd, may have given the id to another job) */
    a = ippFindAttribute(resp, "job-name", IPP_TAG_NAME);
    const char *name = a ? ippGetString(a, 0, NULL) : NULL;
    bool other = op->job_name[0] && name && strcmp(name, op->job_name) != 0;
    ippDelete(resp);
    if (other) {
        xstrlcpy(op->error, "not-found", sizeof op->error);
        return RES_FAIL;
    }
    return RES_OK;
}

/* PRINTER: Get-Printer-Attributes of the queue. */
static enum res op_printer(struct cups_op *op)
{
    static const char *const want[] = {"printer-state", "printer-state-reasons",
                                       "printer-is-accepting-jobs", "printer-state-message",
                                       "media-supported", "sides-supported",
                                       "print-color-mode-supported", "device-uri"};
    char uri[HTTP_MAX_URI];
    ipp_t *resp;

    op->pstate = 0;
    op->preasons[0] = op->pmessage[0] = '\0';
    op->media_sup[0] = op->sides_sup[0] = op->color_sup[0] = op->device_uri[0] = '\0';
    op->accepting = false;
    printer_uri(uri, sizeof uri, op->queue);
    ipp_t *req = request_new(IPP_OP_GET_PRINTER_ATTRIBUTES, "printer-uri", uri);
    ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                  (int)(sizeof want / sizeof want[0]), NULL, want);
    enum res r = request_do(op, req, "/", "Get-Printer-Attributes", &resp);
    if (r != RES_OK)
        return r;
    ipp_attribute_t *a = ippFindAttribute(resp, "printer-state", IPP_TAG_ENUM);
    op->pstate = a ? ippGetInteger(a, 0) : 0;
    join_keywords(ippFindAttribute(resp, "printer-state-reasons", IPP_TAG_KEYWORD), op->preasons,
                  sizeof op->preasons);
    a = ippFindAttribute(resp, "printer-is-accepting-jobs", IPP_TAG_BOOLEAN);
    op->accepting = a && ippGetBoolean(a, 0);
    a = ippFindAttribute(resp, "printer-state-message", IPP_TAG_TEXT);
    xstrlcpy(op->pmessage, a && ippGetString(a, 0, NULL) ? ippGetString(a, 0, NULL) : "",
             sizeof op->pmessage);
    join_keywords(ippFindAttribute(resp, "media-supported", IPP_TAG_ZERO), op->media_sup,
                  sizeof op->media_sup);
    join_keywords(ippFindAttribute(resp, "sides-supported", IPP_TAG_KEYWORD), op->sides_sup,
                  sizeof op->sides_sup);
    join_keywords(ippFindAttribute(resp, "print-color-mode-supported", IPP_TAG_KEYWORD),
                  op->color_sup, sizeof op->color_sup);
    a = ippFindAttribute(resp, "device-uri", IPP_TAG_URI);
    xstrlcpy(op->device_uri, a && ippGetString(a, 0, NULL) ? ippGetString(a, 0, NULL) : "",
             sizeof op->device_uri);
    ippDelete(resp);
    return RES_OK;
}

/* LIST: Get-Jobs (which-jobs=all) of the queue; every job whose job-name
 * starts with op->job_name (our "copees-<instance>-") and ends in our job
 * id goes into op->found. */
static enum res op_list(struct cups_op *op)
{
    static const char *const want[] = {"job-id", "job-name", "job-state", "job-state-reasons",
                                       "number-of-documents", "time-at-processing"};
    char uri[HTTP_MAX_URI];
    ipp_t *resp;
    size_t cap = 0, plen = strlen(op->job_name);

    free(op->found);
    op->found = NULL;
    op->nfound = 0;
    printer_uri(uri, sizeof uri, op->queue);
    ipp_t *req = request_new(IPP_OP_GET_JOBS, "printer-uri", uri);
    ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "which-jobs", NULL, "all");
    ippAddStrings(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes",
                  (int)(sizeof want / sizeof want[0]), NULL, want);
    enum res r = request_do(op, req, "/", "Get-Jobs", &resp);
    if (r != RES_OK)
        return r;
    /* Jobs come as groups of job attributes split by separators. */
    ipp_attribute_t *a = ippFirstAttribute(resp);
    while (a) {
        struct cups_found f = {.documents = -1};
        bool match = false;
        for (; a && ippGetGroupTag(a) != IPP_TAG_JOB; a = ippNextAttribute(resp))
            ;
        for (; a && ippGetGroupTag(a) == IPP_TAG_JOB; a = ippNextAttribute(resp)) {
            const char *name = ippGetName(a);
            if (!name)
                break;
            if (!strcmp(name, "job-id") && ippGetValueTag(a) == IPP_TAG_INTEGER)
                f.cups_job_id = ippGetInteger(a, 0);
            else if (!strcmp(name, "job-state") && ippGetValueTag(a) == IPP_TAG_ENUM)
                f.jstate = jstate_of(ippGetInteger(a, 0));
            else if (!strcmp(name, "number-of-documents") && ippGetValueTag(a) == IPP_TAG_INTEGER)
                f.documents = ippGetInteger(a, 0);
            else if (!strcmp(name, "time-at-processing") && ippGetValueTag(a) == IPP_TAG_INTEGER)
                f.started = ippGetInteger(a, 0) > 0;
            else if (!strcmp(name, "job-state-reasons"))
                join_keywords(a, f.jreasons, sizeof f.jreasons);
            else if (!strcmp(name, "job-name")) {
                const char *v = ippGetString(a, 0, NULL);
                char *end;
                if (v && strncmp(v, op->job_name, plen) == 0) {
                    long long id = strtoll(v + plen, &end, 10);
                    f.cover = strcmp(end, "-cover") == 0;
                    match = id > 0 && (*end == '\0' || f.cover);
                    f.job_id = id;
                }
            }
        }
        if (match && f.cups_job_id > 0) {
            if (op->nfound == cap) {
                cap = cap ? cap * 2 : 16;
                struct cups_found *nf = realloc(op->found, cap * sizeof *nf);
                if (!nf)
                    fatal("cupslink: out of memory");
                op->found = nf;
            }
            op->found[op->nfound++] = f;
        }
        if (a)
            a = ippNextAttribute(resp);
    }
    ippDelete(resp);
    return RES_OK;
}

/* Whether a cupsd.conf boolean-or-duration value says "no". */
static bool conf_no(const char *v)
{
    return strcasecmp(v, "No") == 0 || strcasecmp(v, "Off") == 0 ||
           strcasecmp(v, "false") == 0 || strcmp(v, "0") == 0;
}

/* SETTINGS: cupsd.conf's PreserveJobFiles and PreserveJobHistory, read through CUPS's admin
 * interface (GET /admin/conf/cupsd.conf: root or a member of CUPS's
 * SystemGroup, which is why the service user is in lpadmin).  Absent, CUPS
 * keeps job files 1 day (cupsd.conf(5)). */
static enum res op_settings(struct cups_op *op)
{
    int fd = memfd_create("cupsd.conf", MFD_CLOEXEC);
    if (fd < 0) {
        snprintf(op->error, sizeof op->error, "memfd: %s", strerror(errno));
        return RES_FAIL;
    }
    stall_since = mono_ms();
    http_status_t st = cupsGetFd(http, "/admin/conf/cupsd.conf", fd);
    if (st != HTTP_STATUS_OK) {
        snprintf(op->error, sizeof op->error, "reading cupsd.conf: HTTP %d (%s)", (int)st,
                 httpStatus(st));
        close(fd);
        return link_broken() ? RES_BROKEN : RES_FAIL;
    }
    FILE *f = fdopen(fd, "r");
    char line[512], value[64] = "1d (default)", history[64] = "Yes";
    if (!f) {
        close(fd);
        return RES_FAIL;
    }
    rewind(f);
    while (fgets(line, sizeof line, f)) {
        char key[64], val[64];
        if (sscanf(line, " %63s %63s", key, val) != 2)
            continue;
        if (strcasecmp(key, "PreserveJobFiles") == 0)
            xstrlcpy(value, val, sizeof value);
        else if (strcasecmp(key, "PreserveJobHistory") == 0)
            xstrlcpy(history, val, sizeof history);
    }
    fclose(f);
    op->keeps_files = !conf_no(value);
    op->no_history = conf_no(history);
    xstrlcpy(op->keeps_setting, value, sizeof op->keeps_setting);
    return RES_OK;
}

static int probe_timeout_cb(http_t *h, void *arg)
{
    (void)h, (void)arg;
    return 0;                 /* one wait slice, then give up */
}

/* PROBE: the device behind a queue, asked directly: an IPP printer must
 * answer Get-Printer-Attributes, a socket/AppSocket one accept a TCP
 * connection, within PROBE_MS.  Other schemes (usb, lpd, ...) cannot be
 * probed from here: reported reachable.  "copees:" wrapping is looked
 * through.  Its own short-lived connection, never the link's. */
#define PROBE_MS 2000
static enum res op_probe(struct cups_op *op)
{
    char scheme[32], user[64], host[128], resource[512];
    int port;
    const char *uri = op->device_uri;
    if (strncmp(uri, "copees:", 7) == 0)
        uri += 7;
    if (httpSeparateURI(HTTP_URI_CODING_ALL, uri, scheme, sizeof scheme, user, sizeof user, host,
                        sizeof host, &port, resource, sizeof resource) < HTTP_URI_STATUS_OK) {
        xstrlcpy(op->error, "device URI not understood", sizeof op->error);
        return RES_OK;
    }
    bool ipp = !strcmp(scheme, "ipp") || !strcmp(scheme, "ipps") || !strcmp(scheme, "http") ||
               !strcmp(scheme, "https");
    if (!ipp && strcmp(scheme, "socket") != 0)
        return RES_OK;                              /* cannot tell: assume it is there */
    http_encryption_t enc = !strcmp(scheme, "ipps") || !strcmp(scheme, "https")
                                ? HTTP_ENCRYPTION_ALWAYS : HTTP_ENCRYPTION_IF_REQUESTED;
    int cancel = 0;
    http_t *h = httpConnect2(host, port, NULL, AF_UNSPEC, enc, 1, PROBE_MS, &cancel);
    if (!h) {
        snprintf(op->error, sizeof op->error, "device %s:%d does not answer", host, port);
        return RES_FAIL;
    }
    enum res r = RES_OK;
    if (ipp) {
        httpSetTimeout(h, PROBE_MS / 1000.0, probe_timeout_cb, NULL);
        ipp_t *req = ippNewRequest(IPP_OP_GET_PRINTER_ATTRIBUTES);
        char puri[HTTP_MAX_URI];
        httpAssembleURI(HTTP_URI_CODING_ALL, puri, sizeof puri, scheme, NULL, host, port, resource);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_URI, "printer-uri", NULL, puri);
        ippAddString(req, IPP_TAG_OPERATION, IPP_TAG_KEYWORD, "requested-attributes", NULL,
                     "printer-state");
        ipp_t *resp = cupsDoRequest(h, req, resource[0] ? resource : "/");
        if (!resp) {
            snprintf(op->error, sizeof op->error, "device %s:%d does not answer IPP", host, port);
            r = RES_FAIL;
        }
        ippDelete(resp);
    }
    httpClose(h);
    return r;
}

/* PURGE: Cancel-Job with purge-job=true (also done jobs; unknown = ok). */
static enum res op_purge(struct cups_op *op)
{
    if (fault_always("purge-refused")) {     /* test builds: cupsd refuses every purge */
        xstrlcpy(op->error, "Cancel-Job: refused (test fault)", sizeof op->error);
        return RES_FAIL;
    }
    return cancel_purge(op, op->cups_job_id);
}

/* Check op's inputs; NULL when it can run, else why not. */
static const char *op_invalid(const struct cups_op *op)
{
    switch (op->kind) {
    case CUPS_OP_SUBMIT:
        if (op->doc_fd < 0)
            return "no document";
        /* fall through */
    case CUPS_OP_PRINTER:
    case CUPS_OP_LIST:
        return op->queue[0] ? NULL : "no queue";
    case CUPS_OP_JOB_STATE:
    case CUPS_OP_PURGE:
        return op->cups_job_id > 0 ? NULL : "no CUPS job id";
    case CUPS_OP_SETTINGS:
        return NULL;
    case CUPS_OP_PROBE:
        return op->device_uri[0] ? NULL : "no device URI";
    }
    return "unknown operation";
}

/* Run one op on the link thread, filling its results. */
static void link_run(struct cups_op *op)
{
    const char *bad = op_invalid(op);
    enum res r = RES_FAIL;

    op->ok = false;
    op->unreachable = false;
    op->error[0] = '\0';
    if (bad) {
        xstrlcpy(op->error, bad, sizeof op->error);
        goto out;
    }
    for (int attempt = 0;; attempt++) {
        bool reused = http != NULL;
        int64_t t0 = mono_ms();
        op->error[0] = '\0';
        timed_out = false;
        stall_since = t0;
        if (link_connect(op->error, sizeof op->error) < 0) {
            r = RES_BROKEN;
            break;
        }
        switch (op->kind) {
        case CUPS_OP_SUBMIT: r = op_submit(op); break;
        case CUPS_OP_JOB_STATE: r = op_job_state(op); break;
        case CUPS_OP_PURGE: r = op_purge(op); break;
        case CUPS_OP_PRINTER: r = op_printer(op); break;
        case CUPS_OP_LIST: r = op_list(op); break;
        case CUPS_OP_SETTINGS: r = op_settings(op); break;
        case CUPS_OP_PROBE: r = op_probe(op); break;
        }
        if (r != RES_BROKEN)
            break;
        link_close();
        /* Retry only what failed at once on an old connection (cupsd
         * closed it), never a timeout: that would double the wait. */
        if (!reused || attempt > 0 || op->kind == CUPS_OP_SUBMIT || timed_out ||
            mono_ms() - t0 > 1000 || __atomic_load_n(&stop_flag, __ATOMIC_RELAXED))
            break;
        log_debug("cupslink: %s: connection lost, retrying once", kind_name(op->kind));
    }
    op->ok = r == RES_OK;
    op->unreachable = r == RES_BROKEN;
    if (!op->ok && __atomic_load_n(&stop_flag, __ATOMIC_RELAXED))
        xstrlcpy(op->error, "stopping", sizeof op->error);
out:
    if (op->doc_fd >= 0) {
        close(op->doc_fd);
        op->doc_fd = -1;
    }
    if (op->cover_fd >= 0) {
        close(op->cover_fd);
        op->cover_fd = -1;
    }
    if (!op->ok)
        log_job(LOG_LVL_DEBUG, op->job_id, NULL, "cupslink: %s failed%s: %s", kind_name(op->kind),
                op->unreachable ? " (cupsd unreachable)" : "", op->error);
}

/* Password callback: a daemon has no one to type a password. */
static const char *no_password(const char *prompt, http_t *h, const char *method,
                               const char *resource, void *data)
{
    return NULL;
}

/* The link thread: take ops until stopped. */
static void *link_main(void *unused)
{
    if (link_user)
        cupsSetUser(link_user);
    cupsSetServer(link_server);
    /* Never prompt (NULL would restore libcups's tty prompt). */
    cupsSetPasswordCB2(no_password, NULL);
    chunk = malloc(CHUNK);
    if (!chunk)
        fatal("cupslink: out of memory");
    log_debug("cupslink: CUPS at %s as %s", cupsServer(), cupsUser());

    pthread_mutex_lock(&mu);
    for (;;) {
        while (!q_head && !stopping)
            pthread_cond_wait(&cv, &mu);
        if (stopping)
            break;
        struct cups_op *op = q_head;
        q_head = op->next;
        if (!q_head)
            q_tail = NULL;
        op->next = NULL;
        pthread_mutex_unlock(&mu);
        link_run(op);
        iopool_post(op_deliver, op);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    link_close();
    free(chunk);
    chunk = NULL;
    return NULL;
}

/* ------------------------------------------------------------ public */

int cupslink_start(const char *server, const char *user)
{
    sigset_t all, old;
    int rc;

    pthread_mutex_lock(&mu);
    if (running) {
        pthread_mutex_unlock(&mu);
        errno = EBUSY;
        return -1;
    }
    free(link_server);
    free(link_user);
    link_server = server && *server ? strdup(server) : NULL;
    link_user = user && *user ? strdup(user) : NULL;
    if ((server && *server && !link_server) || (user && *user && !link_user)) {
        pthread_mutex_unlock(&mu);
        errno = ENOMEM;
        return -1;
    }
    stopping = false;
    __atomic_store_n(&stop_flag, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&connect_cancel, 0, __ATOMIC_RELAXED);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&link_thread, NULL, link_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        pthread_mutex_unlock(&mu);
        errno = rc;
        return -1;
    }
    running = true;
    pthread_mutex_unlock(&mu);
    return 0;
}

void cupslink_submit(struct cups_op *op)
{
    op->next = NULL;
    pthread_mutex_lock(&mu);
    if (!running || stopping) {
        pthread_mutex_unlock(&mu);
        op_refuse(op, "stopping");
        return;
    }
    if (q_tail)
        q_tail->next = op;
    else
        q_head = op;
    q_tail = op;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

void cupslink_stop(void)
{
    struct cups_op *left;

    pthread_mutex_lock(&mu);
    if (!running || stopping) {
        pthread_mutex_unlock(&mu);
        return;
    }
    stopping = true;
    left = q_head;
    q_head = q_tail = NULL;
    /* The op in flight, if any, gives up at its next wait slice. */
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&connect_cancel, 1, __ATOMIC_RELAXED);
    pthread_cond_signal(&cv);
    pthread_cond_broadcast(&rec_cv);
    pthread_mutex_unlock(&mu);

    while (left) {
        struct cups_op *next = left->next;
        op_refuse(left, "stopping");
        left = next;
    }
    pthread_join(link_thread, NULL);
    pthread_mutex_lock(&mu);
    running = false;
    stopping = false;
    pthread_mutex_unlock(&mu);
}

struct cups_op *cups_op_new(enum cups_op_kind kind)
{
    struct cups_op *op = calloc(1, sizeof *op);
    if (!op)
        fatal("cupslink: out of memory");
    op->kind = kind;
    op->doc_fd = -1;
    op->cover_fd = -1;
    return op;
}

void cups_op_free(struct cups_op *op)
{
    if (!op)
        return;
    if (op->doc_fd >= 0)
        close(op->doc_fd);
    if (op->cover_fd >= 0)
        close(op->cover_fd);
    free(op->found);
    free(op);
}
