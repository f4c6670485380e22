/* retctl.h - retention actions through the API (see retctl.c).  Each
 * answers the request itself (200 with the job, or an error). */
#ifndef COPEES_RETCTL_H
#define COPEES_RETCTL_H

#include <stdbool.h>
#include <stdint.h>
#include "http.h"

void retctl_delivered(struct http_req *req, int64_t id);
/* POST (open = true) / DELETE (open = false) /v1/jobs/{id}/complaint */
void retctl_complaint(struct http_req *req, int64_t id, bool open);
void retctl_reprint(struct http_req *req, int64_t id);
/* POST /v1/jobs/{id}/shred: an erasure request. */
void retctl_shred(struct http_req *req, int64_t id);

#endif
