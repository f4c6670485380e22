/* bench/machcost.c - what this machine charges for the operations a
 * fork-per-document preflight pays on every check: a fault on a fresh
 * anonymous page (allocate, zero, map), a process created and reaped
 * (fork, exit, wait of a small process), and a 4 KiB copy-on-write
 * fault in a forked child.  bench/intake.sh prints them next to its
 * figures, because they move a check's cost far more than the code does
 * from one machine to another (bench/README.md: a paravirtualised guest
 * measured 10 us a fault where an earlier host took well under 1 us).
 * Prints one line of figures; asserts nothing.
 *
 * usage: bench/machcost [ROUNDS]
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGES 4096          /* 16 MiB a round */

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* us per fresh-page fault: touch PAGES pages of a new mapping */
static double fault_round(void)
{
    size_t len = (size_t)PAGES * 4096;
    volatile char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    double t = now_us();
    for (size_t i = 0; i < PAGES; i++)
        m[i * 4096] = 1;
    t = now_us() - t;
    munmap((void *)m, len);
    return t / PAGES;
}

/* us per copy-on-write fault, measured in a child (reported through a pipe) */
static double cow_round(void)
{
    size_t len = (size_t)PAGES * 4096;
    volatile char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    int p[2];
    double r = -1;
    if (m == MAP_FAILED || pipe(p) < 0)
        return -1;
    for (size_t i = 0; i < PAGES; i++)
        m[i * 4096] = 1;
    pid_t pid = fork();
    if (pid == 0) {
        double t = now_us();
        for (size_t i = 0; i < PAGES; i++)
            m[i * 4096] = 2;
        t = (now_us() - t) / PAGES;
        _exit(write(p[1], &t, sizeof t) == sizeof t ? 0 : 1);
    }
    close(p[1]);
    if (pid > 0) {
        if (read(p[0], &r, sizeof r) != sizeof r)
            r = -1;
        waitpid(pid, NULL, 0);
    }
    close(p[0]);
    munmap((void *)m, len);
    return r;
}

/* us to fork, exit and reap one small child */
static double fork_round(void)
{
    const int n = 100;
    double t = now_us();
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        if (pid < 0 || waitpid(pid, NULL, 0) < 0)
            return -1;
    }
    return (now_us() - t) / n;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 9;
    if (rounds < 1 || rounds > 1000) {
        fprintf(stderr, "usage: machcost [ROUNDS (1-1000)]\n");
        return 2;
    }
    double *f = calloc((size_t)rounds, sizeof *f), *c = calloc((size_t)rounds, sizeof *c),
           *k = calloc((size_t)rounds, sizeof *k);
    if (!f || !c || !k)
        return 1;
    for (int i = 0; i < rounds; i++) {     /* interleaved, medians below */
        f[i] = fault_round();
        c[i] = cow_round();
        k[i] = fork_round();
        if (f[i] < 0 || c[i] < 0 || k[i] < 0) {
            perror("machcost");
            return 1;
        }
    }
    qsort(f, (size_t)rounds, sizeof *f, cmp);
    qsort(c, (size_t)rounds, sizeof *c, cmp);
    qsort(k, (size_t)rounds, sizeof *k, cmp);
    printf("fault_us %.2f cow_fault_us %.2f fork_exit_wait_us %.0f\n", f[rounds / 2],
           c[rounds / 2], k[rounds / 2]);
    free(f), free(c), free(k);
    return 0;
}
