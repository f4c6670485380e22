/* sched.c - printers and dispatch decisions.
 *
 * Design notes:
 * - The store is the truth for jobs; queue.c indexes the queued ones in
 *   memory (fed by the store's job hook), so one decision costs
 *   O(classes x printers) whatever the queue length.  A job being sent is
 *   out of the index and "busy" until CUPS answers.
 * - A decision, repeated while printers have free slots: (1) a printer
 *   that just took a job of an order takes that order's next job it can
 *   print (an order's jobs print consecutively on one printer); (2) else,
 *   for each class of queued jobs (same media, colour, sides, pin), walk
 *   the first few jobs in deadline order (due, priority desc, id) and give
 *   each the available capable printer that finishes it soonest ((pages
 *   in flight + its pages) / ppm) -- or the printer its order is printing
 *   on; the earliest such job whose printer has a free slot goes.  A job
 *   whose best printer is full waits for it (the soonest finish), it does
 *   not spill onto a slower printer.  At most max_inflight of our jobs are
 *   inside CUPS per printer, so order and moves stay ours.
 * - The printer is written to a job only once CUPS has it (state sent);
 *   a queued job with a printer is one an admin moved there (a pin).  A
 *   crash between CUPS accepting a job and our commit is found at startup
 *   by listing our jobs in each queue by job-name (track.c) before any
 *   dispatch.
 * - deadline-at-risk: every poll, a simulation hands the queued jobs in
 *   deadline order to the printers that would finish them soonest; a job
 *   whose estimated end passes due - delivery_lead gets the reason (once)
 *   and an event.  A long queue makes the walk long: it then runs less
 *   often, never taking more than 2% of the loop (SIM_SHARE).
 * - Printers' own logic (capability, availability, switches) is in
 *   printers.c; what CUPS says, in track.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include <glib.h>

#include "conf.h"
#include "cover.h"
#include "cupslink.h"
#include "daemon.h"
#include "events.h"
#include "job.h"
#include "log.h"
#include "metrics.h"
#include "sched-int.h"
#include "sched.h"
#include "spool.h"
#include "store.h"
#include "util.h"

#define WALK 32                /* jobs looked at per class and decision */

struct printer *sched_printers;
size_t sched_nprinters;
struct queue *sched_queue;
bool sched_reconciled;

static struct event *kick_ev;
static GHashTable *busy;         /* job id -> dispatch start (mono ms), or 0 */
static GHashTable *at_risk;      /* job ids known to carry deadline-at-risk */
static GArray *to_mark;          /* queued ids to mark no-capable-printer */

/* ------------------------------------------------------------ busy */

bool busy_has(int64_t id)
{
    return busy && g_hash_table_contains(busy, &id);
}

static void busy_put(int64_t id, int64_t t0)
{
    int64_t *k = g_new(int64_t, 1), *v = g_new(int64_t, 1);
    *k = id;
    *v = t0;
    g_hash_table_replace(busy, k, v);
}

void busy_add(int64_t id)
{
    busy_put(id, 0);
}

void busy_del(int64_t id)
{
    if (busy)
        g_hash_table_remove(busy, &id);
}

bool sched_busy(int64_t id)
{
    return busy_has(id);
}

/* ------------------------------------------------------------ dispatch */

const char *sched_substituted_option(const char *substituted)
{
    static const char *const ours[] = {"media", "sides", "print-color-mode", "copies",
                                       "media-col", NULL};
    size_t len = strlen(substituted);
    for (int i = 0; ours[i]; i++) {
        size_t n = strlen(ours[i]);
        for (const char *p = substituted; (p = strstr(p, ours[i])); p += n)
            if ((p == substituted || p[-1] == ',') && (p + n == substituted + len || p[n] == ','))
                return ours[i];
    }
    return NULL;
}

int sched_handover_end(struct job *j, enum job_state st, const char *fmt, ...)
{
    char text[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    store_defer_begin(D.store);
    int rc = job_set_state(D.store, j, st, -1, "%s", text);
    store_defer_end(D.store);
    if (rc < 0 || store_handover_clear(D.store, j->id) < 0)
        return -1;
    return 0;
}

struct submit_ctx {
    char printer[64];
    int64_t pages;
    int64_t t0;
};

static void submit_done(struct cups_op *op)
{
    struct submit_ctx *sc = op->arg;
    struct printer *p = printer_find(sc->printer);
    struct job j;
    int64_t t0 = sc->t0;

    busy_del(op->job_id);
    track_note_cups(op);
    if (store_job_get(D.store, op->job_id, &j) < 0) {
        bool gone = errno == ENOENT;
        printer_release(p, op->job_id, sc->pages);
        if (!gone && (op->ok || op->cups_job_id > 0)) {
            /* cannot be read now: CUPS may have it; settled later */
            track_settle(op->job_id, sc->printer, op);
            goto out;
        }
        store_handover_clear(D.store, op->job_id);
        if (op->ok)
            track_purge(op->job_id, op->cups_job_id);
        goto out;
    }
    const char *bad_opt = op->ok ? sched_substituted_option(op->substituted) : NULL;
    if (op->ok && (j.state != JOB_STATE_QUEUED || bad_opt)) {
        /* held or canceled while being sent, or CUPS would print it with
         * another media/sides/colour than asked: take it back.  The end
         * of the hand-over record is committed first, with the failure
         * (a restart then finds a job no longer queued, and the listing
         * purges its CUPS job by name); if that commit fails, the CUPS
         * job is settled instead, which decides again */
        printer_release(p, j.id, sc->pages);
        int rc;
        if (bad_opt) {
            job_reason_add(&j, "option-not-supported");
            rc = sched_handover_end(&j, JOB_STATE_FAILED, "printer %s does not support the "
                                    "job's %s (CUPS would substitute it)", sc->printer, bad_opt);
        } else {
            rc = store_handover_clear(D.store, j.id);
        }
        if (rc < 0) {
            track_settle(j.id, sc->printer, op);
            goto done;
        }
        track_purge(j.id, op->cups_job_id);
        if (op->cover_job_id)
            track_purge(j.id, op->cover_job_id);
        if (bad_opt) {
            log_job(LOG_LVL_WARN, j.id, sc->printer, "sched: %s not supported; job failed", bad_opt);
        } else {
            log_job(LOG_LVL_INFO, j.id, sc->printer,
                    "sched: job left queued while being sent; CUPS job %d withdrawn",
                    op->cups_job_id);
        }
    } else if (op->ok) {
        j.cups_job_id = op->cups_job_id;
        xstrlcpy(j.printer, sc->printer, sizeof j.printer);
        metrics_dispatch_latency(mono_ms() - t0);
        job_reason_remove(&j, "no-capable-printer");
        /* if a write or the commit fails, the CUPS job is settled, which
         * adopts it once the store writes again (or finds it adopted
         * already: the state may have been committed with the batch
         * although the delete failed) */
        if (sched_handover_end(&j, JOB_STATE_SENT, "sent to printer %s as CUPS job %d",
                               j.printer, op->cups_job_id) < 0) {
            printer_release(p, j.id, sc->pages);
            track_settle(j.id, sc->printer, op);
            goto done;
        }
        if (op->cover_job_id)
            track_cover(j.id, op->cups_job_id, op->cover_job_id);
        log_job(LOG_LVL_INFO, j.id, j.printer, "sched: sent as CUPS job %d", op->cups_job_id);
    } else {
        printer_release(p, j.id, sc->pages);
        if (op->cups_job_id <= 0)        /* no CUPS job left (nor a record of one) */
            store_handover_clear(D.store, j.id);
        if (op->refused && j.state == JOB_STATE_QUEUED) {
            job_reason_add(&j, "option-not-supported");
            job_set_state(D.store, &j, JOB_STATE_FAILED, -1, "CUPS refused the job on printer %s: %s",
                          sc->printer, op->error);
            log_job(LOG_LVL_WARN, j.id, sc->printer, "sched: CUPS refused the job: %s", op->error);
        } else {
            log_job(LOG_LVL_WARN, j.id, sc->printer, "sched: CUPS did not take the job: %s",
                    op->error);
            if (p)
                p->retry_after = mono_ms() + D.conf->poll_interval_ms;
            store_event_add(D.store, j.id, "dispatch-failed", -1, op->error);
            if (op->cups_job_id > 0)     /* left in CUPS: settled first */
                track_settle(j.id, sc->printer, op);
            if (op->cups_job_id <= 0) {
                if (op->cover_job_id > 0)
                    track_purge(j.id, op->cover_job_id);
                sched_job_changed(&j);   /* back into the index */
            }
        }
    }
done:
    job_clear(&j);
out:
    free(sc);
    cups_op_free(op);
}

/* The link thread's question between Create-Job and Send-Document:
 * record, committed, that op's job may be in CUPS as op->cups_job_id from
 * now on (a row of the handovers table, cleared when the hand-over ends:
 * sent, taken back, or settled).  A row found at startup is settled by
 * that CUPS job's id (track_resume_handovers) before the job may go out
 * again. */
static bool submit_created(struct cups_op *op)
{
    struct submit_ctx *sc = op->arg;
    struct store_handover h = {.job_id = op->job_id, .cups_id = op->cups_job_id,
                               .cover_id = op->cover_job_id, .printer = sc->printer,
                               .substituted = op->substituted};
    if (store_handover_set(D.store, &h) == 0)
        return true;
    log_job(LOG_LVL_WARN, op->job_id, sc->printer, "sched: cannot record the hand-over of CUPS "
            "job %d; not sending it", op->cups_job_id);
    return false;
}

/* Whether value is in the comma-separated list (an empty list: not
 * known, assume yes). */
static bool queue_supports(const char *list, const char *value)
{
    if (!list[0])
        return true;
    size_t n = strlen(value);
    for (const char *p = list; (p = strstr(p, value)); p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

/* Hand queued job id to printer p. */
static void job_submit(int64_t id, struct printer *p)
{
    struct job j;
    const struct qjob *qj = queue_get(sched_queue, id);
    int64_t queued_ms = qj ? qj->queued_ms : mono_ms();
    if (store_job_get(D.store, id, &j) < 0 || j.state != JOB_STATE_QUEUED) {
        queue_remove(sched_queue, id);
        if (j.id)
            job_clear(&j);
        return;
    }
    const char *attr = NULL, *val = NULL;
    if (!queue_supports(p->media_sup, j.media))
        attr = "media", val = j.media;
    else if (!queue_supports(p->sides_sup, j.sides))
        attr = "sides", val = j.sides;
    else if (!queue_supports(p->color_sup, j.color))
        attr = "print-color-mode", val = j.color;
    if (attr) {
        /* our [printer] claims it, the CUPS queue does not have it: CUPS
         * would take the job and its backend cancel it at the printer */
        char kw[48];
        snprintf(kw, sizeof kw, "%s-not-supported", attr);
        job_reason_add(&j, kw);
        job_reason_add(&j, "option-not-supported");
        xstrlcpy(j.printer, p->name, sizeof j.printer);   /* where it was routed */
        queue_remove(sched_queue, j.id);
        job_set_state(D.store, &j, JOB_STATE_FAILED, -1,
                      "printer %s (CUPS queue %s) does not support %s %s", p->name, p->cp->queue,
                      attr, val);
        log_job(LOG_LVL_WARN, j.id, p->name, "sched: the CUPS queue does not support %s %s; "
                "check the [printer] section", attr, val);
        job_clear(&j);
        return;
    }
    /* The dispatch event is a plain write, so it commits the open batch,
     * which may hold this very job's verdict: the scheduler sees a job as
     * soon as its state is written, before its batch commits.  A job is
     * never sent unless its queued state is committed: when this commit
     * fails, the job waits (a verdict rolled back is decided again by
     * intake, and the job read again at the next try is no longer
     * queued). */
    if (store_event_add(D.store, j.id, "dispatch", -1, p->name) < 0) {
        log_job(LOG_LVL_ERR, j.id, p->name, "sched: cannot record the dispatch; the job waits");
        p->retry_after = mono_ms() + D.conf->poll_interval_ms;
        job_clear(&j);
        return;
    }
    int fd = spool_job_open(D.spool, j.doc_name);
    if (fd < 0) {
        log_job(LOG_LVL_ERR, j.id, NULL, "sched: document missing");
        job_reason_add(&j, "document-lost");
        j.document_present = false;
        job_set_state(D.store, &j, JOB_STATE_FAILED, -1, "document lost");
        job_clear(&j);
        return;
    }
    struct cups_op *op = cups_op_new(CUPS_OP_SUBMIT);
    struct submit_ctx *sc = calloc(1, sizeof *sc);
    if (!sc)
        fatal("sched: out of memory");
    op->job_id = j.id;
    op->doc_fd = fd;
    op->copies = j.copies;
    xstrlcpy(op->queue, p->cp->queue, sizeof op->queue);
    snprintf(op->job_name, sizeof op->job_name, "copees-%s-%lld", store_instance(D.store),
             (long long)j.id);
    xstrlcpy(op->media, j.media, sizeof op->media);
    xstrlcpy(op->sides, j.sides, sizeof op->sides);
    xstrlcpy(op->color, j.color, sizeof op->color);
    if (p->cp->cover_sheet && (op->cover_fd = cover_sheet_fd(&j)) < 0)
        log_job(LOG_LVL_WARN, j.id, p->name, "sched: cover sheet: %s; sending without",
                strerror(errno));
    xstrlcpy(sc->printer, p->name, sizeof sc->printer);
    sc->pages = (int64_t)(j.pages > 0 ? j.pages : 1) * j.copies;
    sc->t0 = queued_ms;
    op->arg = sc;
    op->done = submit_done;
    op->created = submit_created;
    p->inflight++;
    p->pages_inflight += sc->pages;
    xstrlcpy(p->last_order, j.order, sizeof p->last_order);
    queue_remove(sched_queue, j.id);
    busy_put(j.id, mono_ms());
    job_clear(&j);
    cupslink_submit(op);
}

static double finish_min(const struct printer *p, int64_t pages)
{
    return (double)(p->pages_inflight + pages) / (p->cp->ppm > 0 ? p->cp->ppm : 1);
}

/* The printer qj should go to: its order's printer when that one is
 * available and can print it, else the available capable printer that
 * finishes it soonest; NULL when none is available. */
static struct printer *target_of(const struct qjob *qj)
{
    struct printer *best = NULL;
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        if (!printer_can(p, qj->cls) || !printer_available(p))
            continue;
        if (p->last_order[0] && p->inflight > 0 && strcmp(p->last_order, qj->order) == 0)
            return p;
        if (!best || finish_min(p, qj->pages) < finish_min(best, qj->pages))
            best = p;
    }
    return best;
}

struct pick { const struct printer *p; const struct qjob *best; };

static int order_pick(const struct qjob *qj, void *arg)
{
    struct pick *pk = arg;
    if (printer_can(pk->p, qj->cls) && (!pk->best || qjob_before(qj, pk->best)))
        pk->best = qj;
    return 0;
}

/* The next decision: *qj to *to.  false when nothing can go now. */
static bool decide(const struct qjob **qj_out, struct printer **to_out)
{
    /* (1) an order's next job on the printer printing that order */
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        if (!p->last_order[0] || p->inflight == 0 || !printer_available(p) || !printer_has_slot(p))
            continue;
        struct pick pk = {p, NULL};
        queue_each_of_order(sched_queue, p->last_order, order_pick, &pk);
        if (pk.best) {
            *qj_out = pk.best;
            *to_out = p;
            return true;
        }
    }
    /* (2) the earliest job, over classes, whose best printer has a slot */
    const struct qjob *best = NULL;
    struct printer *best_to = NULL;
    for (size_t c = 0; c < queue_nclasses(sched_queue); c++) {
        for (size_t k = 0; k < WALK; k++) {
            const struct qjob *qj = queue_class_nth(sched_queue, c, k);
            if (!qj || (best && qjob_before(best, qj)))
                break;
            struct printer *to = target_of(qj);
            if (!to)
                break;                  /* no capable printer available */
            if (printer_has_slot(to)) {
                best = qj;
                best_to = to;
                break;
            }
        }
    }
    *qj_out = best;
    *to_out = best_to;
    return best != NULL;
}

bool sched_peek_decision(int64_t *job_id, const char **printer)
{
    const struct qjob *qj;
    struct printer *to;
    if (!decide(&qj, &to))
        return false;
    *job_id = qj->id;
    *printer = to->name;
    return true;
}

static bool class_routable(const struct qclass *c)
{
    for (size_t i = 0; i < sched_nprinters; i++)
        if (printer_can(&sched_printers[i], c))
            return true;
    return false;
}

/* Give queued jobs that no configured printer can print their reason. */
static void mark_unroutable(void)
{
    for (guint i = 0; to_mark && i < to_mark->len; i++) {
        int64_t id = g_array_index(to_mark, int64_t, i);
        struct job j;
        if (store_job_get(D.store, id, &j) < 0)
            continue;
        if (j.state == JOB_STATE_QUEUED && !job_reason_has(&j, "no-capable-printer")) {
            job_reason_add(&j, "no-capable-printer");
            store_job_save(D.store, &j, "unroutable", -1,
                           "no configured printer takes this media, colour and sides");
            log_job(LOG_LVL_WARN, j.id, NULL, "sched: no configured printer can print this job");
        }
        job_clear(&j);
    }
    if (to_mark)
        g_array_set_size(to_mark, 0);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    mark_unroutable();
    if (!sched_reconciled || D.draining)
        return;
    for (int n = 0; n < 10000; n++) {
        const struct qjob *qj;
        struct printer *to;
        if (!decide(&qj, &to))
            break;
        job_submit(qj->id, to);
    }
}

void sched_kick(void)
{
    if (kick_ev)
        event_active(kick_ev, EV_TIMEOUT, 0);
}

void sched_job_changed(const struct job *j)
{
    if (!sched_queue)
        return;
    if (j->state != JOB_STATE_QUEUED) {
        queue_remove(sched_queue, j->id);
        if (at_risk && job_state_is_completed(j->state))
            g_hash_table_remove(at_risk, &j->id);
        return;
    }
    if (busy_has(j->id))
        return;
    bool fresh = !queue_get(sched_queue, j->id);
    queue_update(sched_queue, j);
    const struct qjob *qj = queue_get(sched_queue, j->id);
    if (qj && !class_routable(qj->cls) && !job_reason_has(j, "no-capable-printer"))
        g_array_append_val(to_mark, j->id);
    if (fresh || to_mark->len)
        sched_kick();
}

/* ------------------------------------------------------------ deadlines */

struct sim {
    double *t;                 /* minutes until each printer is free */
    int64_t now, lead;
    GArray *risky;
};

static int sim_one(const struct qjob *qj, void *arg)
{
    struct sim *s = arg;
    double best = -1;
    size_t bi = 0;
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        if (!printer_can(p, qj->cls) || !printer_available(p))
            continue;
        double t = s->t[i] + (double)qj->pages / (p->cp->ppm > 0 ? p->cp->ppm : 1);
        if (best < 0 || t < best) {
            best = t;
            bi = i;
        }
    }
    int64_t end;
    if (best >= 0) {
        s->t[bi] = best;
        end = s->now + (int64_t)(best * 60.0 + 0.5);
    } else {
        end = s->now;           /* nowhere to print: at risk once the lead starts */
    }
    if (end > qj->due - s->lead && !(at_risk && g_hash_table_contains(at_risk, &qj->id)))
        g_array_append_val(s->risky, qj->id);
    return 0;
}

/* Mark job id deadline-at-risk (once) with an event. */
static void mark_at_risk(int64_t id, const char *why)
{
    struct job j;
    int64_t *k = g_new(int64_t, 1);
    *k = id;
    g_hash_table_add(at_risk, k);
    if (store_job_get(D.store, id, &j) < 0)
        return;
    if (!job_reason_has(&j, "deadline-at-risk") && !job_state_is_completed(j.state)) {
        job_reason_add(&j, "deadline-at-risk");
        store_job_save(D.store, &j, "deadline-at-risk", -1, why);
        log_job(LOG_LVL_WARN, j.id, j.printer[0] ? j.printer : NULL,
                "sched: deadline at risk (%s)", why);
    }
    job_clear(&j);
}

size_t sched_simulate(int64_t now, GArray *risky)
{
    struct sim s = {.now = now, .lead = D.conf->delivery_lead_ms / 1000, .risky = risky};
    s.t = g_new0(double, sched_nprinters ? sched_nprinters : 1);
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        s.t[i] = (double)p->pages_inflight / (p->cp->ppm > 0 ? p->cp->ppm : 1);
    }
    queue_each(sched_queue, sim_one, &s);
    g_free(s.t);
    return risky->len;
}

/* The simulation's share of the loop: after a walk that took d ms, the
 * next waits until SIM_SHARE * d ms have passed (at most 2% of the loop;
 * a walk of a few hundred jobs takes well under a millisecond, so such a
 * queue is checked on every poll, 83,000 queued jobs every 2 s). */
#define SIM_SHARE 50

/* Called by track.c on every poll. */
void sched_check_deadlines(void)
{
    static int64_t next_ms;
    int64_t t0 = mono_ms();

    if (!sched_queue || t0 < next_ms)
        return;
    GArray *risky = g_array_new(FALSE, FALSE, sizeof(int64_t));
    sched_simulate(now_s(), risky);
    next_ms = t0 + SIM_SHARE * (mono_ms() - t0);
    for (guint i = 0; i < risky->len; i++)
        mark_at_risk(g_array_index(risky, int64_t, i), "estimated end after due - delivery_lead");
    g_array_free(risky, TRUE);
}

/* A job in CUPS on p whose end estimate passes its deadline (track.c). */
void sched_check_sent_deadline(const struct job *j)
{
    struct printer *p = printer_find(j->printer);
    if (!p || g_hash_table_contains(at_risk, &j->id))
        return;
    int64_t end = now_s() + (int64_t)(60.0 * (double)p->pages_inflight /
                                      (p->cp->ppm > 0 ? p->cp->ppm : 1));
    if (end > j->due - D.conf->delivery_lead_ms / 1000)
        mark_at_risk(j->id, "estimated end at the printer after due - delivery_lead");
}

/* ------------------------------------------------------------ life */

/* Build the table from D.conf, keeping the state of printers by name. */
static void printers_build(void)
{
    struct printer *old = sched_printers;
    size_t nold = sched_nprinters;
    size_t n = D.conf->nprinters;
    sched_printers = calloc(n ? n : 1, sizeof *sched_printers);
    if (!sched_printers)
        fatal("sched: out of memory");
    sched_nprinters = n;
    for (size_t i = 0; i < n; i++) {
        struct printer *p = &sched_printers[i];
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

static int index_one(const struct job *j, void *arg)
{
    (void)arg;
    sched_job_changed(j);
    return 0;
}

/* Index every queued job (start, reload: classes may change routability). */
static void index_all(void)
{
    struct store_filter f = STORE_FILTER_INIT;
    f.states = 1u << JOB_STATE_QUEUED;
    f.sort = STORE_BY_ID;
    store_jobs_query(D.store, &f, index_one, NULL);
}

void sched_start(void)
{
    busy = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    at_risk = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    to_mark = g_array_new(FALSE, FALSE, sizeof(int64_t));
    sched_queue = queue_new();
    printers_build();
    printers_switches_load();
    kick_ev = event_new(D.base, -1, 0, kick_cb, NULL);
    index_all();
    if (sched_nprinters == 0)
        log_warn("sched: no [printer] section in the configuration: jobs will wait");
    track_start();
}

void sched_reload(void)
{
    printers_build();
    printers_switches_load();
    /* A pin to a printer that is gone is dropped; routability is rechecked. */
    queue_free(sched_queue);
    sched_queue = queue_new();
    index_all();
    for (size_t c = 0; c < queue_nclasses(sched_queue); c++) {
        const struct qclass *cl = queue_class(sched_queue, c);
        if (!cl->pinned[0] || printer_find(cl->pinned))
            continue;
        for (const struct qjob *qj; (qj = queue_class_nth(sched_queue, c, 0));) {
            struct job j;
            int64_t id = qj->id;
            queue_remove(sched_queue, id);
            if (store_job_get(D.store, id, &j) == 0) {
                j.printer[0] = '\0';
                store_job_save(D.store, &j, "unpinned", -1, "the printer it was moved to is gone");
                job_clear(&j);
            }
        }
    }
    track_rearm();
    track_poll();
    sched_kick();
}

void sched_stop(void)
{
    track_stop();
    if (kick_ev)
        event_free(kick_ev);
    kick_ev = NULL;
    if (busy)
        g_hash_table_destroy(busy);
    if (at_risk)
        g_hash_table_destroy(at_risk);
    if (to_mark)
        g_array_free(to_mark, TRUE);
    busy = at_risk = NULL;
    to_mark = NULL;
    queue_free(sched_queue);
    sched_queue = NULL;
    free(sched_printers);
    sched_printers = NULL;
    sched_nprinters = 0;
    sched_reconciled = false;
}

bool sched_ready(void)
{
    return sched_reconciled;
}
