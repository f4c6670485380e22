/* api.h - the HTTP API's routes (api.c) and the upload intake (intake.c). */
#ifndef COPEES_API_H
#define COPEES_API_H

#include <stdbool.h>
#include <stddef.h>
#include "http.h"

/* The handler to give http_listen(). */
extern const struct http_handler api_handler;

/* intake.c: POST /v1/jobs, called from the api's callbacks. */
bool intake_headers(struct http_req *req);
int intake_body(struct http_req *req, const char *data, size_t len);
void intake_complete(struct http_req *req);
void intake_abort(struct http_req *req);
/* Startup: preflight again every job left in state preflight. */
void intake_resume(void);
/* Uploads and preflights still under way (drain waits for 0). */
int intake_busy(void);

#endif
