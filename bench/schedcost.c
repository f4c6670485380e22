/* bench/schedcost.c - the cost of one scheduling decision with many jobs
 * queued (target: under 1 ms with 100,000), of indexing them, and of one
 * deadline-at-risk simulation over all of them.  The scheduler's own code
 * (queue.c, sched.c) on a state set by hand: 3 printers, jobs spread over
 * 4 capability classes and many orders.  Prints figures; asserts nothing.
 *
 * usage: bench/schedcost [N_JOBS] [N_DECISIONS]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "conf.h"
#include "daemon.h"
#include "job.h"
#include "queue.h"
#include "sched-int.h"
#include "sched.h"
#include "util.h"

struct daemon D;
int daemon_busy;

static const char conf_text[] =
    "[daemon]\nspool_dir=/nonexistent/s\nstate_dir=/nonexistent/t\n"
    "[printer a4-mono]\nmedia=iso_a4_210x297mm\nppm=40\n"
    "[printer a4-mono-2]\nmedia=iso_a4_210x297mm\nduplex=true\nppm=30\n"
    "[printer a3-colour]\nmedia=iso_a4_210x297mm,iso_a3_297x420mm\ncolor=true\nduplex=true\nppm=20\n";

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int m = argc > 2 ? atoi(argv[2]) : 20000;
    char path[] = "/tmp/schedcost.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, conf_text, sizeof conf_text - 1) < 0)
        return 1;
    close(fd);
    char *err = NULL;
    D.conf = conf_load(path, &err);
    unlink(path);
    if (!D.conf) {
        fprintf(stderr, "conf: %s\n", err);
        return 1;
    }
    sched_nprinters = D.conf->nprinters;
    sched_printers = calloc(sched_nprinters, sizeof *sched_printers);
    for (size_t i = 0; i < sched_nprinters; i++) {
        struct printer *p = &sched_printers[i];
        p->cp = &D.conf->printers[i];
        xstrlcpy(p->name, p->cp->name, sizeof p->name);
        p->enabled = p->accepting = p->cups_accepting = true;
        p->pstate = 3;
    }
    sched_queue = queue_new();

    static const char *const media[] = {"iso_a4_210x297mm", "iso_a3_297x420mm"};
    int64_t t0 = now_s();
    struct job j;
    job_init(&j);
    srand(42);
    double a = now_us();
    for (int i = 1; i <= n; i++) {
        j.id = i;
        j.state = JOB_STATE_QUEUED;
        j.due = t0 + 1800 * (rand() % 48);          /* a day of 30-minute slots */
        j.priority = 1 + rand() % 100;
        j.pages = 1 + rand() % 20;
        j.copies = 1;
        snprintf(j.order, sizeof j.order, "ORD-%d", i / 3);
        xstrlcpy(j.media, media[rand() % 10 == 0], sizeof j.media);
        xstrlcpy(j.color, rand() % 4 == 0 ? "color" : "monochrome", sizeof j.color);
        xstrlcpy(j.sides, rand() % 3 == 0 ? "two-sided-long-edge" : "one-sided", sizeof j.sides);
        queue_update(sched_queue, &j);
    }
    double build = now_us() - a;
    printf("jobs queued: %zu in %zu classes, over %zu printers\n", queue_count(sched_queue),
           queue_nclasses(sched_queue), sched_nprinters);
    printf("indexing them: %.1f ms (%.2f us per job)\n", build / 1000, build / n);

    /* Decisions as dispatch makes them: decide, hand over (slot taken, out
     * of the index), and CUPS finishing the oldest one frees a slot. */
    double *lat = malloc(sizeof(double) * (size_t)m);
    int made = 0;
    for (int k = 0; k < m; k++) {
        int64_t id;
        const char *pr;
        double b = now_us();
        bool ok = sched_peek_decision(&id, &pr);
        lat[k] = now_us() - b;
        if (!ok) {
            for (size_t i = 0; i < sched_nprinters; i++)     /* printers finish */
                sched_printers[i].inflight = 0, sched_printers[i].pages_inflight = 0;
            continue;
        }
        made++;
        struct printer *p = printer_find(pr);
        const struct qjob *qj = queue_get(sched_queue, id);
        p->inflight++;
        p->pages_inflight += qj->pages;
        xstrlcpy(p->last_order, qj->order, sizeof p->last_order);
        queue_remove(sched_queue, id);
    }
    qsort(lat, (size_t)m, sizeof *lat, cmp_d);
    double sum = 0;
    for (int k = 0; k < m; k++)
        sum += lat[k];
    printf("one decision (%d decisions, %d dispatches, %zu jobs left): mean %.2f us, "
           "p50 %.2f us, p99 %.2f us, max %.1f us  (target < 1000 us: %s)\n",
           m, made, queue_count(sched_queue), sum / m, lat[m / 2], lat[m * 99 / 100], lat[m - 1],
           lat[m * 99 / 100] < 1000 ? "met" : "NOT met");

    GArray *risky = g_array_new(FALSE, FALSE, sizeof(int64_t));
    a = now_us();
    size_t r = sched_simulate(t0, risky);
    double sim = now_us() - a;
    printf("deadline simulation over %zu queued jobs: %.1f ms (%zu at risk)\n",
           queue_count(sched_queue), sim / 1000, r);
    g_array_free(risky, TRUE);
    free(lat);
    queue_free(sched_queue);
    free(sched_printers);
    job_clear(&j);
    conf_free(D.conf);
    return 0;
}
