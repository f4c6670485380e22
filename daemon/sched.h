/* sched.h - printers and dispatch: which queued job goes to which CUPS
 * queue and when, and tracking each until CUPS is done with it
 * (sched.c: printers and decisions; track.c: what CUPS says; queue.c: the
 * in-memory index of queued jobs). */
#ifndef COPEES_SCHED_H
#define COPEES_SCHED_H

#include <stdbool.h>
#include <jansson.h>
#include "job.h"

/* Build the printer table from D.conf, index the queued jobs and start
 * the poll timer (dispatch waits for the reconciliation with CUPS). */
void sched_start(void);
/* D.conf was replaced (SIGHUP): rebuild printers, keeping state by name. */
void sched_reload(void);
/* Something changed (a job queued, a printer freed): dispatch soon. */
void sched_kick(void);
/* Every saved job passes here (the store's job hook, via events.c). */
void sched_job_changed(const struct job *j);
/* Take job j (sent or printing) back from CUPS: Cancel-Job with
 * purge-job=true, its printer slot freed; then done(arg, ok) on the loop
 * (ok false: cupsd could not be reached or refused). */
void sched_withdraw(const struct job *j, void (*done)(void *arg, bool ok), void *arg);
/* Take a sent job back only if CUPS is not printing it now (pending or
 * held): done(arg, r) with
 * r 0 = taken back (slot freed; the caller requeues it), 2 = taken back
 * but CUPS had begun printing it before putting it back, 1 = CUPS is
 * printing it (left alone), 4 = CUPS no longer knows it (the job failed
 * with cups-job-lost: it may have printed), -1 = cupsd unreachable.  (Failover's own
 * take-back, in track.c, also leaves a job CUPS had begun.) */
void sched_take_back(const struct job *j, void (*done)(void *arg, int r), void *arg);
/* A dispatch or CUPS operation on job id is under way. */
bool sched_busy(int64_t id);

/* enable|disable|accept|reject printer name (reason: optional text for
 * disable/reject; uid: the actor, for the audit log).  0 and *out = the
 * printer's JSON; -1 unknown printer; -2 unknown action. */
int sched_printer_switch(const char *name, const char *action, const char *reason, int64_t uid,
                         json_t **out);
/* Whether j may be moved to printer name: NULL when it may, else an error
 * code ("no-such-printer", "printer-cannot-print", "printer-not-accepting")
 * with *msg a sentence for a human. */
const char *sched_move_refusal(const struct job *j, const char *name, const char **msg);

/* {"printers": [...]} (new reference). */
json_t *sched_printers_json(void);
/* Whether cupsd answered the last operation. */
bool sched_cups_ok(void);
/* Append /v1/health warnings about CUPS (keeping job files) to arr. */
void sched_cups_warnings(json_t *arr);
/* Add to arr a /v1/health warning when a queue prints through the copees
 * backend (device copees:...) and user lp may not connect to the API
 * socket, so that the backend's reports would be lost (checked at most
 * every 10 s). */
void sched_backend_warnings(json_t *arr);
/* Reconciliation with CUPS after start is done (dispatch may run). */
bool sched_ready(void);
/* One dispatch decision on the current state, for the benchmark: the job
 * that would go next and its printer (ids/names), without sending it;
 * false when nothing can go. */
bool sched_peek_decision(int64_t *job_id, const char **printer);
void sched_stop(void);

#endif
