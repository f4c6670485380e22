/* backendev.c - POST /v1/backend/events: what the copees backend reports.
 *
 * Design notes: the copees CUPS backend (run by cupsd as lp) reports page
 * progress while it prints and the real backend's exit status when it is
 * done.  Those reports are advisory: CUPS's own job state, which sched.c
 * polls, decides the job's state; a report only records pages_printed
 * (never decreasing, so a late or repeated report cannot undo a newer
 * one) and, for a non-zero exit, the reason "backend-failed" with CUPS's
 * meaning of the code in the audit event.  A later exit 0 (CUPS retried
 * the job and it went through) removes that reason again.
 *
 * - The body is small JSON, buffered whole (at most BACKENDEV_BODY_MAX,
 *   else 413), parsed once complete.  Unknown members are ignored so that
 *   a newer backend can talk to an older daemon.
 * - The job is named as CUPS knows it, copees-<instance>-<id>: a name of
 *   another instance (another spooler on the same cupsd) or an unknown id
 *   is 404; a job that is not in CUPS (sent, printing) is 409, and so is a
 *   report about a CUPS job id that is not the job's current one (a report
 *   from before a reprint or a resend).
 * - A page report that changes nothing is answered 200 without a save:
 *   the backend repeats its count, the audit log need not.
 * - The actor in the audit log is the peer's uid (lp for the backend).
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <http_parser.h>

#include "backendev.h"
#include "daemon.h"
#include "job.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define MESSAGE_MAX 256
#define PAGES_MAX 1000000000

struct body {
    size_t len;
    char data[BACKENDEV_BODY_MAX];
};

bool backendev_headers(struct http_req *req)
{
    const char *ct = req->content_type ? req->content_type : "";
    size_t ctl = strcspn(ct, "; \t");

    if (req->method != HTTP_POST) {
        http_respond_error(req, 405, "method-not-allowed", "Use POST.");
        return false;
    }
    if (ctl != strlen("application/json") || strncasecmp(ct, "application/json", ctl) != 0) {
        http_respond_error(req, 415, "unsupported-media-type",
                           "A backend event is JSON sent as Content-Type: application/json.");
        return false;
    }
    if (!req->has_length && !req->chunked) {
        http_respond_error(req, 411, "length-required", "Send Content-Length or a chunked body.");
        return false;
    }
    if (req->has_length && req->content_length > BACKENDEV_BODY_MAX) {
        http_respond_error(req, 413, "too-large", "A backend event is at most %d bytes.",
                           BACKENDEV_BODY_MAX);
        return false;
    }
    if (req->has_length && req->content_length == 0) {
        http_respond_error(req, 400, "empty-body", "The request carries no event.");
        return false;
    }
    struct body *b = calloc(1, sizeof *b);
    if (!b) {
        http_respond_error(req, 500, "internal", "Out of memory.");
        return false;
    }
    req->ctx = b;
    req->ctx_free = free;
    return true;
}

int backendev_body(struct http_req *req, const char *data, size_t len)
{
    struct body *b = req->ctx;
    if (len > sizeof b->data - b->len) {      /* chunked, or longer than announced */
        http_respond_error(req, 413, "too-large", "A backend event is at most %d bytes.",
                           BACKENDEV_BODY_MAX);
        return -1;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

/* CUPS's meaning of a backend exit code (<cups/backend.h>). */
static const char *exit_meaning(int code)
{
    static const char *const m[] = {
        "CUPS_BACKEND_OK: sent",
        "CUPS_BACKEND_FAILED: CUPS applies the queue's error policy",
        "CUPS_BACKEND_AUTH_REQUIRED: CUPS holds the job for authentication",
        "CUPS_BACKEND_HOLD: CUPS holds the job",
        "CUPS_BACKEND_STOP: CUPS stops the queue",
        "CUPS_BACKEND_CANCEL: CUPS cancels the job",
        "CUPS_BACKEND_RETRY: CUPS retries the job later",
        "CUPS_BACKEND_RETRY_CURRENT: CUPS retries the job at once",
    };
    return code >= 0 && code < (int)(sizeof m / sizeof m[0]) ? m[code]
                                                              : "not a CUPS code: CUPS takes it as failed";
}

/* "copees-<8 hex>-<id>" -> instance and id; 0 / -1. */
static int parse_job_name(const char *s, char inst[9], int64_t *id)
{
    if (strncmp(s, "copees-", 7) != 0)
        return -1;
    s += 7;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        inst[i] = c;
    }
    inst[8] = '\0';
    if (s[8] != '-' || s[9] < '1' || s[9] > '9' || strlen(s + 9) > 18)
        return -1;
    int64_t v = 0;
    for (const char *p = s + 9; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        v = v * 10 + (*p - '0');
    }
    *id = v;
    return 0;
}

/* An integer member in [lo, hi]; 1 when present and valid, 0 absent, -1 bad. */
static int get_int(json_t *o, const char *name, json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return -1;
    *out = json_integer_value(v);
    return 1;
}

struct report {
    char instance[9];
    int64_t job_id;
    int cups_job_id;
    bool exit;               /* event "exit", else "page" */
    json_int_t pages;        /* -1 = not given */
    json_int_t exit_status;
    const char *message;     /* borrowed from the JSON, or "" */
};

/* Check the body's members into *r; NULL, or what is wrong (a message
 * naming the field, for the 400). */
static const char *validate(json_t *o, struct report *r)
{
    json_t *v;
    json_int_t n;
    int rc;

    if (!json_is_object(o))
        return "the body must be a JSON object";
    v = json_object_get(o, "job_name");
    if (!json_is_string(v) || parse_job_name(json_string_value(v), r->instance, &r->job_id) < 0)
        return "job_name must be copees-<instance>-<id>";
    if (get_int(o, "cups_job_id", 1, INT_MAX, &n) != 1)
        return "cups_job_id must be a positive integer";
    r->cups_job_id = (int)n;
    v = json_object_get(o, "event");
    if (!json_is_string(v) || (strcmp(json_string_value(v), "page") != 0 &&
                               strcmp(json_string_value(v), "exit") != 0))
        return "event must be page or exit";
    r->exit = strcmp(json_string_value(v), "exit") == 0;
    rc = get_int(o, "pages", 0, PAGES_MAX, &r->pages);
    if (rc < 0 || (rc == 0 && !r->exit))
        return r->exit ? "pages must be an integer from 0 to 1000000000"
                       : "pages must be an integer from 0 to 1000000000 (required for page)";
    if (rc == 0)
        r->pages = -1;
    rc = get_int(o, "exit_status", 0, 255, &r->exit_status);
    if (rc < 0 || (rc == 0 && r->exit))
        return "exit_status must be an integer from 0 to 255 (required for exit)";
    if (rc > 0 && !r->exit)
        return "exit_status is only for the exit event";
    v = json_object_get(o, "message");
    r->message = "";
    if (v && !json_is_null(v)) {
        if (!json_is_string(v) || json_string_length(v) > MESSAGE_MAX)
            return "message must be a string of at most 256 bytes";
        for (const unsigned char *p = (const unsigned char *)json_string_value(v); *p; p++)
            if (*p < 0x20 || *p == 0x7f)
                return "message must be one line without control characters";
        r->message = json_string_value(v);
    }
    return NULL;
}

/* Apply r to its job and answer. */
static void apply(struct http_req *req, const struct report *r)
{
    struct job j;
    char detail[512];
    bool save = false;
    int old_pages;

    if (strcmp(r->instance, store_instance(D.store)) != 0) {
        http_respond_error(req, 404, "not-found", "The job belongs to another copees instance.");
        return;
    }
    if (store_job_get(D.store, r->job_id, &j) < 0) {
        http_respond_error(req, 404, "not-found", "There is no job %lld.", (long long)r->job_id);
        return;
    }
    if (j.state != JOB_STATE_SENT && j.state != JOB_STATE_PRINTING) {
        http_respond_error(req, 409, "not-in-cups", "The job is %s, not in CUPS.",
                           job_state_name(j.state));
        goto out;
    }
    if (j.cups_job_id != r->cups_job_id) {
        http_respond_error(req, 409, "cups-job-mismatch",
                           "The job is CUPS job %d now, not %d.", j.cups_job_id, r->cups_job_id);
        goto out;
    }
    old_pages = j.pages_printed;
    if (r->pages > j.pages_printed) {
        j.pages_printed = (int)r->pages;
        save = true;
    }
    if (r->exit) {
        if (r->exit_status != 0)
            job_reason_add(&j, "backend-failed");
        else
            job_reason_remove(&j, "backend-failed");
        snprintf(detail, sizeof detail, "CUPS job %d: the backend exited with %d (%s), %d pages%s%s",
                 r->cups_job_id, (int)r->exit_status, exit_meaning((int)r->exit_status),
                 j.pages_printed, *r->message ? ": " : "", r->message);
        save = true;
    } else {
        snprintf(detail, sizeof detail, "CUPS job %d: %d pages printed", r->cups_job_id, j.pages_printed);
    }
    if (save && store_job_save(D.store, &j, r->exit ? "backend-exit" : "backend-page",
                               (int64_t)req->uid, detail) < 0) {
        http_respond_error(req, 500, "internal", "The report cannot be recorded.");
        goto out;
    }
    if (r->exit)
        log_job(r->exit_status ? LOG_LVL_WARN : LOG_LVL_INFO, j.id, j.printer,
                "backendev: CUPS job %d: the backend exited with %d (%s)", r->cups_job_id,
                (int)r->exit_status, exit_meaning((int)r->exit_status));
    else if (save)
        log_job(LOG_LVL_DEBUG, j.id, j.printer, "backendev: %d pages printed (was %d)",
                j.pages_printed, old_pages);
    http_respond_json(req, 200, json_pack("{s:b}", "ok", 1));
out:
    job_clear(&j);
}

void backendev_complete(struct http_req *req)
{
    struct body *b = req->ctx;
    struct report r;
    json_error_t err;
    const char *what;

    if (b->len == 0) {
        http_respond_error(req, 400, "empty-body", "The request carries no event.");
        return;
    }
    json_t *o = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        http_respond_error(req, 400, "bad-json", "The body is not JSON: %s.", err.text);
        return;
    }
    memset(&r, 0, sizeof r);
    what = validate(o, &r);
    if (what)
        http_respond_error(req, 400, "bad-event", "%s.", what);
    else
        apply(req, &r);
    json_decref(o);
}
