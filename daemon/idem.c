/* idem.c - idempotent intake (see idem.h).
 *
 * Design notes: retries are matched after the body is committed and
 * hashed, because (order, SHA-256) needs the whole document; an attempt
 * carrying a known Idempotency-Key with another ticket is refused (409)
 * already from its head.  The event loop inserts rows one at a time, so of
 * two concurrent attempts the second to finish its commit always finds
 * the first's row (a deferred insert is visible in the process at once,
 * before its batch is committed): they make one job.  Waiters (retries that arrived
 * during the first attempt's preflight) are a short list per job, woken
 * when the verdict is recorded; the store stays the only truth.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "idem.h"
#include "log.h"
#include "store.h"

struct waiter {
    int64_t job_id;
    void (*cb)(void *);
    void *arg;
    struct waiter *next;
};

static struct waiter *waiters;

int idem_find(const struct job *t, struct job *prev)
{
    if (t->idem_key[0])
        return store_job_find_key(D.store, t->idem_key, prev);
    if (!t->sha256[0])
        return -1;
    return store_job_find_order_sha(D.store, t->order, t->sha256, prev);
}

bool idem_same_ticket(const struct job *t, const struct job *prev, bool due_given,
                      bool media_given)
{
    return strcmp(t->order, prev->order) == 0 && t->copies == prev->copies &&
           strcmp(t->sides, prev->sides) == 0 && strcmp(t->color, prev->color) == 0 &&
           (!media_given || strcmp(t->media, prev->media) == 0) &&
           t->priority == prev->priority && t->hold == prev->hold &&
           (!due_given || t->due == prev->due);
}

void idem_wait(int64_t job_id, void (*cb)(void *arg), void *arg)
{
    struct waiter *w = calloc(1, sizeof *w);
    if (!w)
        fatal("idem: out of memory");
    w->job_id = job_id;
    w->cb = cb;
    w->arg = arg;
    w->next = waiters;
    waiters = w;
}

void idem_done(int64_t job_id)
{
    struct waiter *mine = NULL;
    for (struct waiter **pp = &waiters; *pp;) {
        struct waiter *w = *pp;
        if (w->job_id == job_id) {
            *pp = w->next;
            w->next = mine;
            mine = w;
        } else {
            pp = &w->next;
        }
    }
    while (mine) {
        struct waiter *w = mine;
        mine = w->next;
        w->cb(w->arg);
        free(w);
    }
}
