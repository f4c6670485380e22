/* jobctl.h - actions on a job through the API: cancel, hold, release.
 * Each answers the request itself (200 with the job, or an error). */
#ifndef COPEES_JOBCTL_H
#define COPEES_JOBCTL_H

#include <stdbool.h>
#include <stdint.h>
#include "http.h"

void jobctl_cancel(struct http_req *req, int64_t id);
void jobctl_hold(struct http_req *req, int64_t id);
void jobctl_release(struct http_req *req, int64_t id);
/* POST /v1/jobs/{id}/move?printer=NAME: a job not yet printing (queued, or
 * sent and not started by CUPS, which is taken back first) is pinned to
 * NAME. */
void jobctl_move(struct http_req *req, int64_t id);
/* An action on a job with a CUPS operation in flight (sched_busy): 503
 * cups-unreachable while cupsd does not answer (the operation then waits
 * for it); else again(req, id) is run a little later, and only after
 * about 2 s of such tries is the answer 409 busy. */
void jobctl_respond_busy(struct http_req *req, int64_t id,
                         void (*again)(struct http_req *, int64_t));
/* Until the start-up reconciliation with CUPS is done (sched_ready), an
 * action on a job that was ever handed to CUPS is answered 503 starting
 * here (true). */
bool jobctl_unreconciled(struct http_req *req, int64_t id);

#endif
