/* iopool.c - I/O worker threads and the loop's mailbox.
 *
 * Design notes: one mutex guards two FIFO lists, the work queue (for the
 * workers) and the mailbox (callbacks for the loop).  The loop is woken by
 * event_active() on a persistent user event; libevent is made thread-aware
 * with evthread_use_pthreads() in main() before the base is created, so
 * event_active() from another thread is safe.  Completions always run on
 * the loop, so every module's state stays single-threaded.
 */
#include "config.h"

#include <pthread.h>
#include <stdlib.h>
#include <event2/event.h>

#include "iopool.h"
#include "log.h"

struct item {
    void (*work)(void *);
    void (*done)(void *);
    void *arg;
    struct item *next;
};

struct fifo { struct item *head, *tail; };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct fifo workq, mailbox;
static struct event *wake_ev;
static pthread_t *threads;
static int nthreads_running;
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

static void *worker_main(void *unused)
{
    pthread_mutex_lock(&mu);
    for (;;) {
        struct item *it;
        while (!(it = fifo_pop(&workq)) && !stopping)
            pthread_cond_wait(&cv, &mu);
        if (!it)
            break;
        pthread_mutex_unlock(&mu);
        it->work(it->arg);
        pthread_mutex_lock(&mu);
        if (it->done) {
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

int iopool_start(struct event_base *base, int nthreads)
{
    wake_ev = event_new(base, -1, EV_PERSIST, wake_cb, NULL);
    if (!wake_ev)
        return -1;
    threads = calloc((size_t)nthreads, sizeof *threads);
    if (!threads)
        return -1;
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&threads[i], NULL, worker_main, NULL) != 0)
            return -1;
        nthreads_running++;
    }
    return 0;
}

void iopool_submit(void (*work)(void *arg), void (*done)(void *arg), void *arg)
{
    struct item *it = item_new(work, done, arg);
    pthread_mutex_lock(&mu);
    pending++;
    fifo_push(&workq, it);
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
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
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nthreads_running; i++)
        pthread_join(threads[i], NULL);
    nthreads_running = 0;
    mailbox_drain();
    free(threads);
    threads = NULL;
    if (wake_ev)
        event_free(wake_ev);
    wake_ev = NULL;
    stopping = 0;
}
