/* events.h - GET /v1/events: Server-Sent Events of job and printer
 * changes, with a bounded ring of recent events for Last-Event-ID resume. */
#ifndef COPEES_EVENTS_H
#define COPEES_EVENTS_H

#include <jansson.h>

struct event_base;
struct http_req;
struct job;
struct store;

/* Start: the keep-alive timer on base, and publish every job row st
 * commits (store_set_commit_hook); the scheduler and the retention timer
 * follow every row as it is written (store_set_job_hook).  0 / -1. */
int events_init(struct event_base *base, struct store *st);
/* Serve GET /v1/events on req (answers it: a stream, or an error). */
void events_subscribe(struct http_req *req);
/* Publish a job change (the job's JSON). */
void events_publish_job(const struct job *j);
/* Publish a printer change; takes the reference to the printer's JSON. */
void events_publish_printer(json_t *printer);
/* Close every subscriber (SIGTERM drain); new ones are refused with 503. */
void events_drain(void);
/* Close subscribers, forget the ring, stop the timer. */
void events_free(void);
/* Subscribers connected now. */
int events_subscribers(void);

#endif
