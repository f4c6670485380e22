/* retention.h - keeping documents through the complaint window and
 * shredding them when due. */
#ifndef COPEES_RETENTION_H
#define COPEES_RETENTION_H

#include <stdint.h>

/* Arm the timer (startup; runs overdue shreds at once). */
void retention_start(void);
/* A retain_until changed somewhere: re-arm the timer on the nearest. */
void retention_kick(void);
/* Shred job_id's document now on an I/O worker (why goes into the
 * receipt event); then done(arg) on the loop (done may be NULL).  A job
 * whose document is gone or already being shredded just calls done. */
void retention_shred_job(int64_t job_id, const char *why, void (*done)(void *arg), void *arg);
/* Shreds under way. */
int retention_busy(void);
void retention_stop(void);

#endif
