/* sched.c - printers, dispatch and tracking.
 *
 * Design notes: the store is the truth for jobs; this module keeps in RAM
 * only what concerns printers (our enable/accept switches, what CUPS last
 * said, how many of our jobs are inside CUPS) and the ids of jobs with an
 * operation in flight.  Dispatch is one pass over queued jobs in deadline
 * order (due, priority, id), triggered by sched_kick() and by the poll
 * timer; at most max_inflight jobs per printer are inside CUPS so order
 * and moves stay ours.  Tracking polls CUPS (Get-Job-Attributes per job,
 * Get-Printer-Attributes per queue) every poll_interval; when CUPS is done
 * with a job its copy is purged (Cancel-Job, purge-job=true).  Dispatch
 * waits until CUPS has answered once after start (reconciliation).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "conf.h"
#include "cupslink.h"
#include "daemon.h"
#include "events.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "retention.h"
#include "sched.h"
#include "spool.h"
#include "store.h"
#include "util.h"

struct printer {
    char name[64];
    const struct conf_printer *cp;   /* in D.conf; refreshed on reload */
    bool enabled, accepting;         /* our routing switches */
    int64_t since;                   /* when enabled/disabled last changed */
    int pstate;                      /* CUPS printer-state (0 = unknown) */
    char preasons[256];
    bool cups_accepting;
    int inflight;                    /* our jobs inside CUPS or being sent */
    int64_t pages_inflight;
    int64_t printing_job;
    bool polling;
};

struct idnode { int64_t id; struct idnode *next; };

static struct printer *printers;
static size_t nprinters;
static struct event *poll_ev, *kick_ev;
static bool cups_ok = true, reconciled;
static struct idnode *busy_ids;   /* jobs with a CUPS operation in flight */

static bool busy_has(int64_t id)
{
    for (struct idnode *n = busy_ids; n; n = n->next)
        if (n->id == id)
            return true;
    return false;
}

static void busy_add(int64_t id)
{
    struct idnode *n = malloc(sizeof *n);
    if (!n)
        fatal("sched: out of memory");
    n->id = id;
    n->next = busy_ids;
    busy_ids = n;
}

static void busy_del(int64_t id)
{
    for (struct idnode **pp = &busy_ids; *pp; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct idnode *n = *pp;
            *pp = n->next;
            free(n);
            return;
        }
}

static struct printer *printer_find(const char *name)
{
    for (size_t i = 0; i < nprinters; i++)
        if (strcmp(printers[i].name, name) == 0)
            return &printers[i];
    return NULL;
}

static bool printer_can(const struct printer *p, const struct job *j)
{
    const struct conf_printer *cp = p->cp;
    bool media = false;
    for (char **m = cp->media; m && *m; m++)
        if (strcmp(*m, j->media) == 0)
            media = true;
    if (!media)
        return false;
    if (strcmp(j->color, "color") == 0 && !cp->color)
        return false;
    if (strcmp(j->sides, "one-sided") != 0 && !cp->duplex)
        return false;
    return true;
}

static bool printer_free(const struct printer *p)
{
    return p->enabled && p->accepting && p->pstate != 5 && p->cups_accepting &&
           p->inflight < p->cp->max_inflight;
}

static void note_cups(const struct cups_op *op)
{
    bool was = cups_ok;
    cups_ok = !op->unreachable;
    if (was != cups_ok)
        log_msg(cups_ok ? LOG_LVL_INFO : LOG_LVL_WARN, "sched: cupsd is %s",
                cups_ok ? "reachable again" : "unreachable; jobs wait");
}

static void purge(int64_t job_id, int cups_id);

/* ------------------------------------------------------------ dispatch */

static void submit_done(struct cups_op *op)
{
    struct printer *p = op->arg ? printer_find((const char *)op->arg) : NULL;
    struct job j;

    busy_del(op->job_id);
    note_cups(op);
    if (store_job_get(D.store, op->job_id, &j) < 0) {
        cups_op_free(op);
        return;
    }
    if (op->ok && j.state != JOB_STATE_QUEUED) {
        /* held or canceled while it was being sent: take it back */
        log_job(LOG_LVL_INFO, j.id, j.printer, "sched: job left queued while being sent; "
                "withdrawing CUPS job %d", op->cups_job_id);
        if (p) {
            p->inflight--;
            p->pages_inflight -= (int64_t)j.pages * j.copies;
        }
        purge(j.id, op->cups_job_id);
        if (j.state == JOB_STATE_HELD) {
            j.printer[0] = '\0';
            store_job_save(D.store, &j, "withdrawn", -1, "held while being sent");
        }
    } else if (op->ok) {
        j.cups_job_id = op->cups_job_id;
        metrics_dispatch_latency(now_s() - j.created_at);
        job_reason_remove(&j, "no-capable-printer");
        job_set_state(D.store, &j, JOB_STATE_SENT, -1, "sent to printer %s as CUPS job %d",
                      j.printer, op->cups_job_id);
        log_job(LOG_LVL_INFO, j.id, j.printer, "sched: sent as CUPS job %d", op->cups_job_id);
    } else {
        log_job(LOG_LVL_WARN, j.id, j.printer, "sched: CUPS did not take the job: %s", op->error);
        if (p) {
            p->inflight--;
            p->pages_inflight -= (int64_t)j.pages * j.copies;
        }
        j.printer[0] = '\0';
        store_job_save(D.store, &j, "dispatch-failed", -1, op->error);
    }
    job_clear(&j);
    free(op->arg);
    cups_op_free(op);
}

static void job_submit(struct job *j, struct printer *p)
{
    int fd = spool_job_open(D.spool, j->doc_name);
    if (fd < 0) {
        log_job(LOG_LVL_ERR, j->id, NULL, "sched: document missing");
        job_reason_add(j, "document-lost");
        j->document_present = false;
        job_set_state(D.store, j, JOB_STATE_FAILED, -1, "document lost");
        return;
    }
    struct cups_op *op = cups_op_new(CUPS_OP_SUBMIT);
    op->job_id = j->id;
    op->doc_fd = fd;
    op->copies = j->copies;
    xstrlcpy(op->queue, p->cp->queue, sizeof op->queue);
    snprintf(op->job_name, sizeof op->job_name, "copees-%s-%lld", store_instance(D.store),
             (long long)j->id);
    xstrlcpy(op->media, j->media, sizeof op->media);
    xstrlcpy(op->sides, j->sides, sizeof op->sides);
    xstrlcpy(op->color, j->color, sizeof op->color);
    op->arg = strdup(p->name);
    op->done = submit_done;
    p->inflight++;
    p->pages_inflight += (int64_t)j->pages * j->copies;
    xstrlcpy(j->printer, p->name, sizeof j->printer);
    store_job_save(D.store, j, "dispatch", -1, p->name);
    busy_add(j->id);
    cupslink_submit(op);
}

static int dispatch_one(const struct job *cj, void *arg)
{
    struct printer *best = NULL;
    bool capable = false;
    double best_load = 0;

    if (busy_has(cj->id))
        return 0;
    for (size_t i = 0; i < nprinters; i++) {
        struct printer *p = &printers[i];
        if (!printer_can(p, cj))
            continue;
        capable = true;
        if (!printer_free(p))
            continue;
        double load = (double)p->pages_inflight / (p->cp->ppm > 0 ? p->cp->ppm : 1);
        if (!best || load < best_load) {
            best = p;
            best_load = load;
        }
    }
    struct job j;
    job_copy(&j, cj);
    if (!capable) {
        if (!job_reason_has(&j, "no-capable-printer")) {
            job_reason_add(&j, "no-capable-printer");
            store_job_save(D.store, &j, "unroutable", -1,
                           "no configured printer takes this media, colour and sides");
            log_job(LOG_LVL_WARN, j.id, NULL, "sched: no configured printer can print this job");
        }
    } else if (best) {
        job_submit(&j, best);
    }
    job_clear(&j);
    return 0;
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    if (!reconciled || D.draining)
        return;
    struct store_filter f = STORE_FILTER_INIT;
    f.states = 1u << JOB_STATE_QUEUED;
    f.sort = STORE_BY_DUE;
    f.limit = 500;
    store_jobs_query(D.store, &f, dispatch_one, NULL);
}

void sched_kick(void)
{
    if (kick_ev)
        event_active(kick_ev, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------------ tracking */

static void purge_done(struct cups_op *op)
{
    note_cups(op);
    if (!op->ok)
        log_job(LOG_LVL_WARN, op->job_id, NULL, "sched: purging CUPS job %d failed: %s",
                op->cups_job_id, op->error);
    else
        log_job(LOG_LVL_DEBUG, op->job_id, NULL, "sched: CUPS job %d purged", op->cups_job_id);
    cups_op_free(op);
}

static void purge(int64_t job_id, int cups_id)
{
    struct cups_op *op = cups_op_new(CUPS_OP_PURGE);
    op->job_id = job_id;
    op->cups_job_id = cups_id;
    op->done = purge_done;
    cupslink_submit(op);
}

/* CUPS is done with j (printed, failed): free its slot, purge its copy. */
static void job_left_cups(struct job *j)
{
    struct printer *p = printer_find(j->printer);
    if (p) {
        p->inflight--;
        p->pages_inflight -= (int64_t)j->pages * j->copies;
        if (p->printing_job == j->id)
            p->printing_job = 0;
    }
    purge(j->id, j->cups_job_id);
    sched_kick();
}

struct withdraw {
    void (*done)(void *, bool);
    void *arg;
    char printer[64];
    int64_t pages;
};

static void withdraw_done(struct cups_op *op)
{
    struct withdraw *w = op->arg;
    busy_del(op->job_id);
    note_cups(op);
    /* ok, or CUPS no longer knows the job: either way it is out of CUPS */
    bool gone = op->ok;
    if (gone) {
        struct printer *p = printer_find(w->printer);
        if (p) {
            p->inflight--;
            p->pages_inflight -= w->pages;
            if (p->printing_job == op->job_id)
                p->printing_job = 0;
        }
        sched_kick();
    } else {
        log_job(LOG_LVL_WARN, op->job_id, w->printer, "sched: cannot take CUPS job %d back: %s",
                op->cups_job_id, op->error);
    }
    w->done(w->arg, gone);
    free(w);
    cups_op_free(op);
}

void sched_withdraw(const struct job *j, void (*done)(void *arg, bool ok), void *arg)
{
    struct withdraw *w = calloc(1, sizeof *w);
    if (!w)
        fatal("sched: out of memory");
    w->done = done;
    w->arg = arg;
    xstrlcpy(w->printer, j->printer, sizeof w->printer);
    w->pages = (int64_t)j->pages * j->copies;
    struct cups_op *op = cups_op_new(CUPS_OP_PURGE);
    op->job_id = j->id;
    op->cups_job_id = j->cups_job_id;
    op->arg = w;
    op->done = withdraw_done;
    busy_add(j->id);           /* no tracking of it meanwhile */
    cupslink_submit(op);
}

static void jstate_done(struct cups_op *op)
{
    struct job j;
    busy_del(op->job_id);
    note_cups(op);
    if (store_job_get(D.store, op->job_id, &j) < 0)
        goto out;
    if ((j.state != JOB_STATE_SENT && j.state != JOB_STATE_PRINTING) || j.cups_job_id != op->cups_job_id)
        goto out_job;
    if (!op->ok) {
        if (op->unreachable)
            goto out_job;
        log_job(LOG_LVL_ERR, j.id, j.printer, "sched: CUPS no longer knows job %d: %s",
                op->cups_job_id, op->error);
        job_reason_add(&j, "cups-job-lost");
        job_set_state(D.store, &j, JOB_STATE_FAILED, -1, "CUPS job %d lost", op->cups_job_id);
        job_left_cups(&j);
        goto out_job;
    }
    switch (op->jstate) {
    case CUPS_J_PROCESSING:
    case CUPS_J_STOPPED:
        if (j.state != JOB_STATE_PRINTING) {
            struct printer *p = printer_find(j.printer);
            if (p)
                p->printing_job = j.id;
            job_set_state(D.store, &j, JOB_STATE_PRINTING, -1, "CUPS is printing it");
        }
        break;
    case CUPS_J_COMPLETED: {
        int64_t win = (D.conf->complaint_window_ms + 999) / 1000;
        j.pages_printed = op->impressions > 0 ? op->impressions : j.pages * j.copies;
        j.printed_at = now_s();
        j.retain_until = (j.delivered_at > j.printed_at ? j.delivered_at : j.printed_at) + win;
        job_set_state(D.store, &j, JOB_STATE_PRINTED, -1, "%d pages printed", j.pages_printed);
        log_job(LOG_LVL_INFO, j.id, j.printer, "sched: printed (%d pages)", j.pages_printed);
        job_left_cups(&j);
        retention_kick();
        break;
    }
    case CUPS_J_CANCELED:
    case CUPS_J_ABORTED: {
        char kw[64];
        snprintf(kw, sizeof kw, "%s", op->jstate == CUPS_J_CANCELED ? "job-canceled-at-printer"
                                                                      : "aborted-by-system");
        job_reason_add(&j, kw);
        job_set_state(D.store, &j, JOB_STATE_FAILED, -1, "CUPS %s it (%s)",
                      op->jstate == CUPS_J_CANCELED ? "canceled" : "aborted", op->jreasons);
        log_job(LOG_LVL_WARN, j.id, j.printer, "sched: CUPS job %d ended without printing",
                op->cups_job_id);
        job_left_cups(&j);
        break;
    }
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

static json_t *printer_json(const struct printer *p);

/* p's CUPS state or one of our switches changed: publish it (events.c). */
static void printer_changed(const struct printer *p)
{
    events_publish_printer(printer_json(p));
}

static void printer_done(struct cups_op *op)
{
    struct printer *p = printer_find((const char *)op->arg);
    note_cups(op);
    if (p) {
        int was_state = p->pstate;
        bool was_acc = p->cups_accepting;
        char was_reasons[sizeof p->preasons];
        xstrlcpy(was_reasons, p->preasons, sizeof was_reasons);
        p->polling = false;
        if (op->ok) {
            p->pstate = op->pstate;
            xstrlcpy(p->preasons, op->preasons, sizeof p->preasons);
            p->cups_accepting = op->accepting;
        } else if (!op->unreachable) {
            log_msg(LOG_LVL_WARN, "sched: printer %s: %s", p->name, op->error);
            p->pstate = 0;
        }
        if (p->pstate != was_state || p->cups_accepting != was_acc ||
            strcmp(p->preasons, was_reasons) != 0)
            printer_changed(p);
    }
    if (op->ok && !reconciled) {
        reconciled = true;
        log_info("sched: CUPS answered; dispatch starts");
    }
    if (op->ok)
        sched_kick();
    free(op->arg);
    cups_op_free(op);
}

static void poll_cb(evutil_socket_t fd, short what, void *arg)
{
    for (size_t i = 0; i < nprinters; i++) {
        struct printer *p = &printers[i];
        if (p->polling)
            continue;
        struct cups_op *op = cups_op_new(CUPS_OP_PRINTER);
        xstrlcpy(op->queue, p->cp->queue, sizeof op->queue);
        op->arg = strdup(p->name);
        op->done = printer_done;
        p->polling = true;
        cupslink_submit(op);
    }
    struct store_filter f = STORE_FILTER_INIT;
    f.states = (1u << JOB_STATE_SENT) | (1u << JOB_STATE_PRINTING);
    store_jobs_query(D.store, &f, track_one, NULL);
}

/* ------------------------------------------------------------ printers */

static int count_inflight(const struct job *j, void *arg)
{
    struct printer *p = printer_find(j->printer);
    if (p) {
        p->inflight++;
        p->pages_inflight += (int64_t)j->pages * j->copies;
        if (j->state == JOB_STATE_PRINTING)
            p->printing_job = j->id;
    }
    return 0;
}

/* Build the table from D.conf, keeping the state of printers by name. */
static void printers_build(void)
{
    struct printer *old = printers;
    size_t nold = nprinters;
    printers = calloc(D.conf->nprinters ? D.conf->nprinters : 1, sizeof *printers);
    if (!printers)
        fatal("sched: out of memory");
    nprinters = D.conf->nprinters;
    for (size_t i = 0; i < nprinters; i++) {
        struct printer *p = &printers[i];
        p->cp = &D.conf->printers[i];
        xstrlcpy(p->name, p->cp->name, sizeof p->name);
        p->enabled = p->accepting = p->cups_accepting = true;
        p->since = now_s();
        for (size_t k = 0; k < nold; k++) {
            if (strcmp(old[k].name, p->name) == 0) {
                const struct conf_printer *cp = p->cp;
                *p = old[k];
                p->cp = cp;
                p->polling = false;
            }
        }
    }
    free(old);
}

void sched_start(void)
{
    printers_build();
    struct store_filter f = STORE_FILTER_INIT;
    f.states = (1u << JOB_STATE_SENT) | (1u << JOB_STATE_PRINTING);
    store_jobs_query(D.store, &f, count_inflight, NULL);
    kick_ev = event_new(D.base, -1, 0, kick_cb, NULL);
    poll_ev = event_new(D.base, -1, EV_PERSIST, poll_cb, NULL);
    struct timeval tv = {(time_t)(D.conf->poll_interval_ms / 1000),
                         (suseconds_t)(D.conf->poll_interval_ms % 1000) * 1000};
    event_add(poll_ev, &tv);
    if (nprinters == 0)
        log_warn("sched: no [printer] section in the configuration: jobs will wait");
    poll_cb(-1, 0, NULL);
}

void sched_reload(void)
{
    printers_build();
    struct timeval tv = {(time_t)(D.conf->poll_interval_ms / 1000),
                         (suseconds_t)(D.conf->poll_interval_ms % 1000) * 1000};
    event_add(poll_ev, &tv);
    sched_kick();
}

void sched_stop(void)
{
    if (poll_ev)
        event_free(poll_ev);
    if (kick_ev)
        event_free(kick_ev);
    poll_ev = kick_ev = NULL;
    while (busy_ids)
        busy_del(busy_ids->id);
    free(printers);
    printers = NULL;
    nprinters = 0;
}

bool sched_cups_ok(void)
{
    return cups_ok;
}

static const char *pstate_name(int s)
{
    switch (s) {
    case 3: return "idle";
    case 4: return "processing";
    case 5: return "stopped";
    default: return "unknown";
    }
}

/* One printer's JSON (new reference): an element of GET /v1/printers. */
static json_t *printer_json(const struct printer *p)
{
    json_t *media = json_array(), *reasons = json_array();
    char since[32];
    for (char **m = p->cp->media; m && *m; m++)
        json_array_append_new(media, json_string(*m));
    char rs[256];
    xstrlcpy(rs, p->preasons, sizeof rs);
    for (char *save = NULL, *t = strtok_r(rs, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, "none") != 0)
            json_array_append_new(reasons, json_string(t));
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:b, s:b, s:s, s:o, s:o, s:b, s:b, s:i, s:i, s:i}",
        "name", p->name, "queue", p->cp->queue, "state", pstate_name(p->pstate),
        "state_reasons", reasons, "enabled", p->enabled, "accepting", p->accepting,
        "state_since", time_rfc3339(p->since, since, sizeof since),
        "printing_job", p->printing_job ? json_integer(p->printing_job) : json_null(),
        "media", media, "color", p->cp->color, "duplex", p->cp->duplex,
        "ppm", p->cp->ppm, "max_inflight", p->cp->max_inflight, "jobs_active", p->inflight);
}

json_t *sched_printers_json(void)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < nprinters; i++)
        json_array_append_new(arr, printer_json(&printers[i]));
    return json_pack("{s:o}", "printers", arr);
}
