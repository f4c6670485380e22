/* retention.h - keeping documents while the rules say so (job.c,
 * job_retention_deadline) and shredding them when due. */
#ifndef COPEES_RETENTION_H
#define COPEES_RETENTION_H

#include <stdbool.h>
#include <stdint.h>

/* Give job.c the rules of D.conf (start, reload). */
void retention_configure(void);
/* Arm the timer (startup; runs overdue shreds at once). */
void retention_start(void);
/* A retain_until changed somewhere: re-arm the timer on the nearest. */
void retention_kick(void);
/* Every saved job passes here (the store's job hook, via events.c): an
 * earlier retain_until re-arms the timer. */
struct job;
void retention_job_changed(const struct job *j);
/* Shred job_id's document now on an I/O worker (why goes into the
 * receipt event); then done(arg) on the loop (done may be NULL).  A job
 * whose document is gone just calls done; one whose document is being
 * shredded already calls done when that shred ends. */
void retention_shred_job(int64_t job_id, const char *why, void (*done)(void *arg), void *arg);
/* A file in jobs/ that no job row names (a retry's own copy, a document
 * whose row was rolled back) could not be shredded (err): the timer tries
 * again after 2, 4 ... s, at most every 5 minutes, until it goes (the
 * next start's sweep would too). */
void retention_shred_leftover(const char *name, int err);
/* End job_id's life with its document now: an open complaint is closed,
 * a job that never printed is taken back from CUPS if there and canceled
 * with reason why ("erased", "retention-expired"), then the document is
 * shredded.  done(arg, r) on the loop: r 0 done, -1 CUPS unreachable
 * (nothing changed), -2 no such job, -3 a CUPS operation on it is under
 * way (retry).  uid: the actor (-1 = the daemon). */
void retention_end_job(int64_t job_id, const char *why, int64_t uid,
                       void (*done)(void *arg, int r), void *arg);
/* Shreds under way. */
/* Whether the document of job_id is being shredded right now. */
bool retention_shredding(int64_t job_id);
int retention_busy(void);
/* Shreds done and failed since start (metrics). */
void retention_counts(uint64_t *done, uint64_t *failed);
void retention_stop(void);

#endif
