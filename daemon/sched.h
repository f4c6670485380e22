/* sched.h - printers and dispatch: which queued job goes to which CUPS
 * queue and when, and tracking each until CUPS is done with it. */
#ifndef COPEES_SCHED_H
#define COPEES_SCHED_H

#include <stdbool.h>
#include <jansson.h>

/* Build the printer table from D.conf and start the poll timer. */
void sched_start(void);
/* D.conf was replaced (SIGHUP): rebuild printers, keeping state by name. */
void sched_reload(void);
/* Something changed (a job queued, a printer freed): dispatch soon. */
void sched_kick(void);
/* {"printers": [...]} (new reference). */
json_t *sched_printers_json(void);
/* Whether cupsd answered the last operation. */
bool sched_cups_ok(void);
void sched_stop(void);

#endif
