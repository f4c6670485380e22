/* idem.h - idempotent intake: a job is known by its Idempotency-Key, else
 * by (order, document SHA-256); a retry gets the first attempt's answer,
 * and a retry that arrives during the first one's preflight waits for it. */
#ifndef COPEES_IDEM_H
#define COPEES_IDEM_H

#include <stdbool.h>
#include <stdint.h>
#include "job.h"

/* The earlier job a new attempt t (ticket, key, sha256 filled) repeats:
 * 0 with *prev loaded (caller job_clear's), -1 when there is none. */
int idem_find(const struct job *t, struct job *prev);
/* Whether attempt t asks for the same print as job prev (same ticket;
 * due and media only compared when the attempt gave them: their defaults
 * may have changed since, by the clock or a reload). */
bool idem_same_ticket(const struct job *t, const struct job *prev, bool due_given,
                      bool media_given);
/* Call cb(arg) on the loop once job_id has its verdict (idem_done). */
void idem_wait(int64_t job_id, void (*cb)(void *arg), void *arg);
/* job_id has its verdict: run and forget its waiters. */
void idem_done(int64_t job_id);

#endif
