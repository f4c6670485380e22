/* backendev.h - POST /v1/backend/events: the copees backend's reports of
 * page progress and of the real backend's exit status (backendev.c).
 * api.c routes the request here; each function answers it on error, and
 * backendev_complete() always answers it. */
#ifndef COPEES_BACKENDEV_H
#define COPEES_BACKENDEV_H

#include <stdbool.h>
#include <stddef.h>
#include "http.h"

/* The largest body accepted (a report is a few hundred bytes). */
#define BACKENDEV_BODY_MAX 4096

/* Head parsed: check method, Content-Type and length, and set up the body
 * buffer (req->ctx).  true to accept the body, false when answered. */
bool backendev_headers(struct http_req *req);
/* A piece of body; 0, or -1 when answered (413). */
int backendev_body(struct http_req *req, const char *data, size_t len);
/* The whole body: validate, apply to the job, answer. */
void backendev_complete(struct http_req *req);

#endif
