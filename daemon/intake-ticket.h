/* intake-ticket.h - the ticket of POST /v1/jobs (intake.c's helper). */
#ifndef COPEES_INTAKE_TICKET_H
#define COPEES_INTAKE_TICKET_H

#include <stdbool.h>
#include "job.h"

struct http_req;

/* Fill j (job_init'd) from req's query: order, copies, sides, color,
 * media (left empty when absent: the caller gives default_media once it
 * has compared the ticket with an earlier attempt's), due, priority,
 * hold.  On a bad field
 * answer 400 (naming the field and its rule) and return false. */
bool intake_ticket_parse(struct http_req *req, struct job *j);
/* Whether an Idempotency-Key is made of visible ASCII characters only
 * (its length is the caller's check). */
bool intake_key_valid(const char *key);

#endif
