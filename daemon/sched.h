/* sched.h - printers and dispatch: which queued job goes to which CUPS
 * queue and when, and tracking each until CUPS is done with it. */
#ifndef COPEES_SCHED_H
#define COPEES_SCHED_H

#include <stdbool.h>
#include <jansson.h>
#include "job.h"

/* Build the printer table from D.conf and start the poll timer. */
void sched_start(void);
/* D.conf was replaced (SIGHUP): rebuild printers, keeping state by name. */
void sched_reload(void);
/* Something changed (a job queued, a printer freed): dispatch soon. */
void sched_kick(void);
/* Take job j (sent or printing) back from CUPS: Cancel-Job with
 * purge-job=true, its printer slot freed; then done(arg, ok) on the loop
 * (ok false: cupsd could not be reached or refused). */
void sched_withdraw(const struct job *j, void (*done)(void *arg, bool ok), void *arg);
/* {"printers": [...]} (new reference). */
json_t *sched_printers_json(void);
/* Whether cupsd answered the last operation. */
bool sched_cups_ok(void);
void sched_stop(void);

#endif
