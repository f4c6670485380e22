/* job.c - job states, ticket defaults, reason keywords, the job's JSON and
 * the one state-change function (see job.h).
 *
 * Design notes:
 *  - job_set_state is the only place a job's state changes: it saves the
 *    whole row and appends the "state" audit event in one store
 *    transaction.  When the save fails the in-memory state is put back, so
 *    *j never claims a state the database does not hold.
 *  - JSON: every key of the design's Job object is always present; a value
 *    that is unset (time 0, no printer, no CUPS job, no complaint, no
 *    preflight report, an order reference removed by history retention) is
 *    null rather than absent or "", so clients test one thing.
 *  - The preflight report is kept as JSON text in the row and parsed back
 *    here; a report that does not parse to an object becomes null (logged
 *    with the job id only).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "log.h"
#include "store.h"
#include "util.h"

static const char *const state_names[JOB_STATE_COUNT] = {
    [JOB_STATE_PREFLIGHT] = "preflight",
    [JOB_STATE_REJECTED] = "rejected",
    [JOB_STATE_HELD] = "held",
    [JOB_STATE_QUEUED] = "queued",
    [JOB_STATE_SENT] = "sent",
    [JOB_STATE_PRINTING] = "printing",
    [JOB_STATE_PRINTED] = "printed",
    [JOB_STATE_FAILED] = "failed",
    [JOB_STATE_CANCELED] = "canceled",
};

const char *job_state_name(enum job_state s)
{
    if ((unsigned)s >= JOB_STATE_COUNT)
        return "unknown";
    return state_names[s];
}

int job_state_from_name(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < JOB_STATE_COUNT; i++)
        if (strcmp(name, state_names[i]) == 0)
            return i;
    return -1;
}

bool job_state_is_completed(enum job_state s)
{
    return s == JOB_STATE_PRINTED || s == JOB_STATE_REJECTED || s == JOB_STATE_FAILED ||
           s == JOB_STATE_CANCELED;
}

void job_init(struct job *j)
{
    memset(j, 0, sizeof *j);
    j->state = JOB_STATE_PREFLIGHT;
    j->copies = 1;
    xstrlcpy(j->sides, "one-sided", sizeof j->sides);
    xstrlcpy(j->color, "monochrome", sizeof j->color);
    j->priority = 50;
    j->document_present = true;
}

void job_clear(struct job *j)
{
    if (!j)
        return;
    free(j->preflight);
    j->preflight = NULL;
}

void job_copy(struct job *dst, const struct job *src)
{
    if (dst == src)
        return;
    *dst = *src;
    dst->preflight = NULL;
    if (src->preflight) {
        dst->preflight = strdup(src->preflight);
        if (!dst->preflight)
            log_job(LOG_LVL_ERR, src->id, NULL, "job: out of memory copying the preflight report");
    }
}

/* ------------------------------------------------------------ reasons */

/* Is kw a keyword we can store (non-empty, no comma)? */
static bool reason_ok(const char *kw)
{
    return kw && *kw && !strchr(kw, ',');
}

bool job_reason_has(const struct job *j, const char *kw)
{
    size_t n;
    const char *p = j->reasons;

    if (!reason_ok(kw))
        return false;
    n = strlen(kw);
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == n && strncmp(p, kw, n) == 0)
            return true;
        p += len;
        if (*p == ',')
            p++;
    }
    return false;
}

void job_reason_add(struct job *j, const char *kw)
{
    size_t have, n;

    if (!reason_ok(kw) || job_reason_has(j, kw))
        return;
    have = strlen(j->reasons);
    n = strlen(kw);
    if (have + (have ? 1 : 0) + n + 1 > sizeof j->reasons) {
        log_job(LOG_LVL_WARN, j->id, NULL, "job: no room for reason %s", kw);
        return;
    }
    if (have)
        j->reasons[have++] = ',';
    memcpy(j->reasons + have, kw, n + 1);
}

void job_reason_remove(struct job *j, const char *kw)
{
    char out[sizeof j->reasons];
    size_t n, o = 0;
    const char *p = j->reasons;

    if (!reason_ok(kw))
        return;
    n = strlen(kw);
    out[0] = '\0';
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len && !(len == n && strncmp(p, kw, n) == 0)) {
            if (o)
                out[o++] = ',';
            memcpy(out + o, p, len);
            o += len;
            out[o] = '\0';
        }
        p += len;
        if (*p == ',')
            p++;
    }
    memcpy(j->reasons, out, o + 1);
}

/* ------------------------------------------------------------ JSON */

/* A time as RFC 3339 UTC, or null when 0 (new reference). */
static json_t *json_time(int64_t t)
{
    char buf[40];
    if (t == 0)
        return json_null();
    return json_string(time_rfc3339(t, buf, sizeof buf));
}

/* A string, or null when "" (new reference). */
static json_t *json_str_or_null(const char *s)
{
    return s && *s ? json_string(s) : json_null();
}

static json_t *json_reasons(const char *reasons)
{
    json_t *a = json_array();
    const char *p = reasons;

    while (a && *p) {
        size_t len = strcspn(p, ",");
        if (len)
            json_array_append_new(a, json_stringn(p, len));
        p += len;
        if (*p == ',')
            p++;
    }
    return a;
}

static json_t *json_preflight(const struct job *j)
{
    json_error_t err;
    json_t *v;

    if (!j->preflight || !*j->preflight)
        return json_null();
    v = json_loads(j->preflight, JSON_REJECT_DUPLICATES, &err);
    if (!json_is_object(v)) {
        log_job(LOG_LVL_WARN, j->id, NULL, "job: stored preflight report is not a JSON object");
        json_decref(v);
        return json_null();
    }
    return v;
}

json_t *job_to_json(const struct job *j)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    /* keys in the design's order (jansson keeps insertion order) */
    json_object_set_new(o, "id", json_integer(j->id));
    json_object_set_new(o, "order", json_str_or_null(j->order));
    json_object_set_new(o, "state", json_string(job_state_name(j->state)));
    json_object_set_new(o, "state_reasons", json_reasons(j->reasons));
    json_object_set_new(o, "pages", json_integer(j->pages));
    json_object_set_new(o, "pages_printed", json_integer(j->pages_printed));
    json_object_set_new(o, "copies", json_integer(j->copies));
    json_object_set_new(o, "sides", json_string(j->sides));
    json_object_set_new(o, "color", json_string(j->color));
    json_object_set_new(o, "media", json_string(j->media));
    json_object_set_new(o, "due", json_time(j->due));
    json_object_set_new(o, "priority", json_integer(j->priority));
    json_object_set_new(o, "printer", json_str_or_null(j->printer));
    json_object_set_new(o, "cups_job_id",
                        j->cups_job_id ? json_integer(j->cups_job_id) : json_null());
    json_object_set_new(o, "reprints", json_integer(j->reprints));
    json_object_set_new(o, "bytes", json_integer(j->bytes));
    json_object_set_new(o, "sha256", json_string(j->sha256));
    json_object_set_new(o, "preflight", json_preflight(j));
    json_object_set_new(o, "created_at", json_time(j->created_at));
    json_object_set_new(o, "printed_at", json_time(j->printed_at));
    json_object_set_new(o, "delivered_at", json_time(j->delivered_at));
    json_object_set_new(o, "retain_until", json_time(j->retain_until));
    json_object_set_new(o, "complaint",
                        strcmp(j->complaint, "open") == 0 || strcmp(j->complaint, "closed") == 0
                            ? json_string(j->complaint) : json_null());
    json_object_set_new(o, "document", json_string(j->document_present ? "present"
                                                     : j->shredded_at > 0 ? "shredded" : "lost"));
    json_object_set_new(o, "shredded_at", json_time(j->shredded_at));
    return o;
}

/* ------------------------------------------------------------ state */

static struct retention_rules rules;

void job_set_retention_rules(const struct retention_rules *r)
{
    rules = *r;
}

int64_t job_retention_deadline(const struct job *j)
{
    if (!rules.max_retention || j->state == JOB_STATE_PREFLIGHT)
        return 0;
    if (!j->document_present)
        return j->retain_until;
    if (j->state == JOB_STATE_REJECTED || j->state == JOB_STATE_CANCELED) {
        /* due at once: from the moment it ended (kept once set), so that
         * copees_oldest_overdue_document_seconds does not count an hour
         * in the queue as an hour overdue */
        int64_t now = now_s();
        return j->retain_until > 0 && j->retain_until < now ? j->retain_until : now;
    }
    if (strcmp(j->complaint, "open") == 0)
        return j->complaint_opened_at + rules.complaint_max;
    int64_t cap = j->created_at + rules.max_retention;
    if (j->state == JOB_STATE_PRINTED && j->printed_at) {
        int64_t w = (j->delivered_at > j->printed_at ? j->delivered_at : j->printed_at) +
                    rules.complaint_window;
        return w < cap ? w : cap;
    }
    return cap;
}

int job_set_state(struct store *st, struct job *j, enum job_state s, int64_t uid,
                  const char *fmt, ...)
{
    char text[512] = "", detail[600];
    enum job_state old = j->state;
    va_list ap;

    if ((unsigned)s >= JOB_STATE_COUNT) {
        errno = EINVAL;
        return -1;
    }
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
    }
    if (*text)
        snprintf(detail, sizeof detail, "%s -> %s: %s", job_state_name(old), job_state_name(s),
                 text);
    else
        snprintf(detail, sizeof detail, "%s -> %s", job_state_name(old), job_state_name(s));
    int64_t old_retain = j->retain_until;
    /* printer-stopped: interrupted at a printer and waiting in CUPS there
     * (track.c); it goes with any other state: printing again, moved,
     * printed, failed, canceled */
    if (s != JOB_STATE_SENT)
        job_reason_remove(j, "printer-stopped");
    j->state = s;
    if (rules.max_retention && j->document_present)
        j->retain_until = job_retention_deadline(j);
    if (store_job_save(st, j, "state", uid, detail) < 0) {
        int e = errno;
        j->state = old;
        j->retain_until = old_retain;
        log_job(LOG_LVL_ERR, j->id, j->printer[0] ? j->printer : NULL,
                "job: cannot record %s -> %s", job_state_name(old), job_state_name(s));
        errno = e;
        return -1;
    }
    log_job(LOG_LVL_INFO, j->id, j->printer[0] ? j->printer : NULL, "job: %s -> %s",
            job_state_name(old), job_state_name(s));
    return 0;
}
