/* bench/shredcost.c - shred throughput of the daemon's own procedure
 * (daemon/shred.c: one pass of CSPRNG data, fdatasync, rename, fsync dir,
 * unlink, fsync dir) against `shred -n1 -u` on identical files in the same
 * directory, in the same run, for 1 MB, 100 MB and 1 GB files (target: at
 * least 0.9x shred's speed).  Each figure is the median of ROUNDS runs;
 * every file is written and fdatasync'd first, then dropped from the page
 * cache (posix_fadvise), so both overwrite cold, allocated blocks.
 * Prints figures; asserts nothing.
 *
 * usage: bench/shredcost DIR [ROUNDS]   (DIR on the disk the spool uses)
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shred.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A file of size bytes (pseudo-random content), synced and out of cache. */
static int make_file(const char *path, long long size)
{
    static char buf[1 << 20];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (char)(i * 2654435761u >> 13);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    for (long long off = 0; off < size;) {
        size_t n = size - off > (long long)sizeof buf ? sizeof buf : (size_t)(size - off);
        if (write(fd, buf, n) != (ssize_t)n) {
            close(fd);
            return -1;
        }
        off += n;
    }
    fdatasync(fd);
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [ROUNDS]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    static const struct { const char *name; long long size; } sizes[] = {
        {"1 MB", 1LL << 20}, {"100 MB", 100LL << 20}, {"1 GB", 1LL << 30}};
    printf("%-8s %14s %14s %8s\n", "size", "copeesd MB/s", "shred -n1 -u", "ratio");
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int r = sizes[s].size >= (1LL << 30) ? (rounds > 2 ? 2 : rounds) : rounds;
        double ours[16], theirs[16];
        for (int i = 0; i < r && i < 16; i++) {
            char a[4096], b[4096], cmd[8300];
            snprintf(a, sizeof a, "%s/bench-ours-%d", dir, i);
            snprintf(b, sizeof b, "%s/bench-shred-%d", dir, i);
            if (make_file(a, sizes[s].size) < 0 || make_file(b, sizes[s].size) < 0) {
                perror("making the files");
                return 1;
            }
            struct shred_receipt rc;
            double t0 = now_s();
            if (shred_file(dir, strrchr(a, '/') + 1, 1, &rc) < 0) {
                perror("shred_file");
                return 1;
            }
            ours[i] = now_s() - t0;
            snprintf(cmd, sizeof cmd, "shred -n1 -u '%s'", b);
            t0 = now_s();
            if (system(cmd) != 0) {
                fprintf(stderr, "shred failed\n");
                return 1;
            }
            theirs[i] = now_s() - t0;
        }
        qsort(ours, (size_t)r, sizeof *ours, cmp);
        qsort(theirs, (size_t)r, sizeof *theirs, cmp);
        double mb = sizes[s].size / 1048576.0;
        double o = mb / ours[r / 2], t = mb / theirs[r / 2];
        printf("%-8s %14.1f %14.1f %7.2fx  (median of %d; %.3f s vs %.3f s)\n", sizes[s].name, o, t,
               o / t, r, ours[r / 2], theirs[r / 2]);
        fflush(stdout);
    }
    return 0;
}
