/* queue.h - the scheduler's in-memory index of queued jobs.
 *
 * The store is the truth; this index holds, for every job in state
 * "queued", what dispatch decisions need (deadline key, capability class,
 * pages, order, pin), so that one decision costs O(classes x printers)
 * however many jobs wait.  Jobs are grouped in classes by what they need
 * of a printer (media, colour, duplex, and the printer they were moved
 * to, if any); each class is kept sorted by (due, priority desc, id).
 * Pure data structure: no store, no event loop (unit-tested, benchmarked).
 */
#ifndef COPEES_QUEUE_H
#define COPEES_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct job;

struct qjob {
    int64_t id;
    int64_t due;                 /* epoch s */
    int priority;                /* 1..100, 100 most urgent */
    int64_t pages;               /* pages x copies */
    char order[65];
    int64_t queued_ms;           /* mono ms it entered the index (kept on updates) */
    const struct qclass *cls;
};

struct qclass {
    char media[64];
    bool color;                  /* needs a colour printer */
    bool duplex;                 /* needs a duplex printer */
    char pinned[64];             /* moved to this printer; "" = any */
};

struct queue;

struct queue *queue_new(void);
void queue_free(struct queue *q);

/* Index j as it is now: added or updated when queued, removed otherwise. */
void queue_update(struct queue *q, const struct job *j);
void queue_remove(struct queue *q, int64_t id);
size_t queue_count(const struct queue *q);
const struct qjob *queue_get(const struct queue *q, int64_t id);

/* Number of classes (some may be empty) and class i's description. */
size_t queue_nclasses(const struct queue *q);
const struct qclass *queue_class(const struct queue *q, size_t i);
/* The k-th job of class i in deadline order (0 = the head); NULL past the
 * end.  k is meant to be small (the iteration is from the head). */
const struct qjob *queue_class_nth(const struct queue *q, size_t i, size_t k);
/* Jobs of class i. */
size_t queue_class_count(const struct queue *q, size_t i);

/* Visit jobs of one order (any class, unspecified order); stop when fn
 * returns non-zero. */
void queue_each_of_order(const struct queue *q, const char *order,
                         int (*fn)(const struct qjob *qj, void *arg), void *arg);
/* Visit every job in deadline order across classes; stop when fn returns
 * non-zero. */
void queue_each(const struct queue *q, int (*fn)(const struct qjob *qj, void *arg), void *arg);

/* a before b in deadline order: earlier due, then higher priority, then
 * lower id. */
bool qjob_before(const struct qjob *a, const struct qjob *b);

#endif
