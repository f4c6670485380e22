/* iopool.c - I/O worker threads and the loop's mailbox.
 *
 * Design notes: one mutex guards the work queues (for the workers) and the
 * mailbox (callbacks for the loop).  The loop is woken by event_active()
 * on a persistent user event; libevent is made thread-aware with
 * evthread_use_pthreads() in main() before the base is created, so
 * event_active() from another thread is safe.  Completions always run on
 * the loop, so every module's state stays single-threaded (the one
 * exception, spool.c's count of held upload memory, is atomic).
 *
 * Two lanes, each a FIFO with its own threads: the general lane (commits,
 * shreds, directory fsyncs: work that may take seconds) and the data lane
 * (the chunks of large uploads being hashed and written while they
 * arrive: short steps that a client is waiting on).  An upload's next
 * chunk never queues behind a 1 GB shred or fdatasync.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <event2/event.h>

#include "iopool.h"
#include "log.h"

#define DATA_THREADS 2

struct item {
    void (*work)(void *);
    void (*done)(void *);
    void *arg;
    struct item *next;
};

struct fifo { struct item *head, *tail; };

struct lane {
    struct fifo q;
    pthread_cond_t cv;
    pthread_t *threads;
    int nthreads;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct lane general = {.cv = PTHREAD_COND_INITIALIZER};
static struct lane data = {.cv = PTHREAD_COND_INITIALIZER};
static struct fifo mailbox;
static struct event *wake_ev;
static int stopping;
static int pending;

static void fifo_push(struct fifo *f, struct item *it)
{
    it->next = NULL;
    if (f->tail)
        f->tail->next = it;
    else
        f->head = it;
    f->tail = it;
}

static struct item *fifo_pop(struct fifo *f)
{
    struct item *it = f->head;
    if (it) {
        f->head = it->next;
        if (!f->head)
            f->tail = NULL;
    }
    return it;
}

static struct item *item_new(void (*work)(void *), void (*done)(void *), void *arg)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it)
        fatal("iopool: out of memory");
    it->work = work;
    it->done = done;
    it->arg = arg;
    return it;
}

static __thread void (*then_work)(void *);   /* iopool_then() of the running item */

void iopool_then(void (*work)(void *arg))
{
    then_work = work;
}

static void *worker_main(void *arg)
{
    struct lane *l = arg;
    pthread_mutex_lock(&mu);
    for (;;) {
        struct item *it;
        while (!(it = fifo_pop(&l->q)) && !stopping)
            pthread_cond_wait(&l->cv, &mu);
        if (!it)
            break;
        pthread_mutex_unlock(&mu);
        then_work = NULL;
        it->work(it->arg);
        pthread_mutex_lock(&mu);
        if (then_work) {               /* its next step, behind what is queued now */
            it->work = then_work;
            fifo_push(&l->q, it);
        } else if (it->done) {
            fifo_push(&mailbox, it);
            if (wake_ev)
                event_active(wake_ev, EV_READ, 0);
        } else {
            pending--;
            free(it);
        }
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Run every callback in the mailbox (loop thread). */
static void mailbox_drain(void)
{
    for (;;) {
        pthread_mutex_lock(&mu);
        struct item *it = fifo_pop(&mailbox);
        if (it && it->work)
            pending--;
        pthread_mutex_unlock(&mu);
        if (!it)
            return;
        it->done(it->arg);
        free(it);
    }
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    mailbox_drain();
}

static int lane_start(struct lane *l, int n)
{
    l->threads = calloc((size_t)n, sizeof *l->threads);
    if (!l->threads)
        return -1;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&l->threads[i], NULL, worker_main, l) != 0)
            return -1;
        l->nthreads++;
    }
    return 0;
}

static void lane_join(struct lane *l)
{
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->threads[i], NULL);
    l->nthreads = 0;
    free(l->threads);
    l->threads = NULL;
}

int iopool_start(struct event_base *base, int nthreads)
{
    wake_ev = event_new(base, -1, EV_PERSIST, wake_cb, NULL);
    if (!wake_ev)
        return -1;
    if (lane_start(&general, nthreads) < 0 || lane_start(&data, DATA_THREADS) < 0)
        return -1;
    return 0;
}

static void submit(struct lane *l, void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
    struct item *it = item_new(work, done, arg);
    pthread_mutex_lock(&mu);
    pending++;
    fifo_push(&l->q, it);
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&mu);
}

void iopool_submit(void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
    submit(&general, work, done, arg);
}

void iopool_submit_data(void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
    submit(&data, work, done, arg);
}

void iopool_post(void (*fn)(void *arg), void *arg)
{
    struct item *it = item_new(NULL, fn, arg);
    pthread_mutex_lock(&mu);
    fifo_push(&mailbox, it);
    if (wake_ev)
        event_active(wake_ev, EV_READ, 0);
    pthread_mutex_unlock(&mu);
}

int iopool_pending(void)
{
    pthread_mutex_lock(&mu);
    int n = pending;
    pthread_mutex_unlock(&mu);
    return n;
}

void iopool_stop(void)
{
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_broadcast(&general.cv);
    pthread_cond_broadcast(&data.cv);
    pthread_mutex_unlock(&mu);
    lane_join(&general);
    lane_join(&data);
    mailbox_drain();
    if (wake_ev)
        event_free(wake_ev);
    wake_ev = NULL;
    stopping = 0;
}
