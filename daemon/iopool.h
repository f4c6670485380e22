/* iopool.h - a few threads for disk work that can take long (fdatasync of
 * a large upload, shredding, directory fsyncs), so the event loop never
 * waits on the disk; and iopool_post(), the one way any thread hands a
 * callback back to the loop. */
#ifndef COPEES_IOPOOL_H
#define COPEES_IOPOOL_H

struct event_base;

/* Start nthreads general workers and the data lane's threads;
 * completions run on base's thread.  0 / -1. */
int iopool_start(struct event_base *base, int nthreads);
/* Run work(arg) on a worker, then done(arg) on the loop. */
void iopool_submit(void (*work)(void *arg), void (*done)(void *arg), void *arg);
/* The same on the data lane: threads of their own for short steps a
 * client waits on (a large upload's chunks), never queued behind the
 * general lane's long work.  FIFO per lane. */
void iopool_submit_data(void (*work)(void *arg), void (*done)(void *arg), void *arg);
/* From a work function: when it returns, queue work(arg) as the item's
 * next step at the back of its lane (done still follows the last step).
 * A commit uses it so that the commits queued behind it rename their
 * files before the one directory fsync that serves them all. */
void iopool_then(void (*work)(void *arg));
/* From any thread: run fn(arg) on the loop soon. */
void iopool_post(void (*fn)(void *arg), void *arg);
/* Finish queued work, join the workers (run on the loop thread). */
void iopool_stop(void);
/* Work items queued or running (for drain and health). */
int iopool_pending(void);

#endif
