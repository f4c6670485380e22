/* sysres.c - what this process may use of the machine: CPUs and memory,
 * after its CPU affinity and the cgroup v2 limits on its cgroup and on
 * every ancestor (systemd's CPUQuota= and MemoryMax=, a container's
 * limits).  conf.c sizes the preflight's default `workers` from it.
 *
 * Design notes:
 * - Only the unified hierarchy (cgroup v2) is read: the "0::PATH" line of
 *   /proc/self/cgroup, then memory.max and cpu.max in PATH and in each of
 *   its ancestors under the cgroup2 mount (/sys/fs/cgroup, or
 *   /sys/fs/cgroup/unified on a hybrid system).  The smallest limit on
 *   the way up is the one that holds.  cgroup v1 controllers are not read
 *   (Debian 12 with systemd 252 mounts v2 only).
 * - Inside a container with a cgroup namespace, /proc/self/cgroup says
 *   "0::/" and the mount is the container's own cgroup, whose memory.max
 *   and cpu.max are the container's limits: read the same way.
 * - A file that is missing, unreadable or does not parse limits nothing:
 *   the machine's figure stands.  "max" means no limit.
 * - cpu.max's quota / period is rounded up: a service allowed 150% of a
 *   CPU counts as 2.  The affinity mask (taskset, systemd's
 *   CPUAffinity=) counts too.
 * - Read when the configuration is loaded (start-up and each reload): a
 *   limit changed at run time is seen at the next reload.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysres.h"

#define CG_PATH_MAX 4096

/* The machine's own figures: online CPUs (fewer under an affinity mask)
 * and physical memory. */
static void machine(struct sysres *r)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    cpu_set_t set;

    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0 &&
        (cpus < 1 || CPU_COUNT(&set) < cpus))
        cpus = CPU_COUNT(&set);
    r->cpus = cpus < 1 ? 1 : cpus;
    r->memory = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

/* The first line of dir/name into buf: 0 / -1. */
static int read_line(const char *dir, const char *name, char *buf, size_t len)
{
    char path[CG_PATH_MAX + 64];
    FILE *f;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path ||
        !(f = fopen(path, "re")))
        return -1;
    char *got = fgets(buf, (int)len, f);
    fclose(f);
    if (!got)
        return -1;
    buf[strcspn(buf, "\n")] = '\0';
    return 0;
}

/* An unsigned decimal that is all of s: 0 / -1. */
static int parse_u64(const char *s, uint64_t *v)
{
    char *end;

    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *v = x;
    return 0;
}

/* Apply the limits of the cgroup directory dir to r. */
static void apply_limits(const char *dir, struct sysres *r)
{
    char line[128], quota[64];
    uint64_t v, q, p;

    if (read_line(dir, "memory.max", line, sizeof line) == 0 && parse_u64(line, &v) == 0 &&
        (r->memory == 0 || v < r->memory))
        r->memory = v;
    if (read_line(dir, "cpu.max", line, sizeof line) == 0 &&
        sscanf(line, "%63s %" SCNu64, quota, &p) == 2 && p > 0 && parse_u64(quota, &q) == 0) {
        uint64_t n = q / p + (q % p != 0);
        if (n < 1)
            n = 1;
        if (n < (uint64_t)r->cpus)
            r->cpus = (long)n;
    }
}

int sysres_read(const char *root, const char *self_cgroup, struct sysres *r)
{
    char line[CG_PATH_MAX], dir[CG_PATH_MAX + 256];
    const char *path = NULL;
    FILE *f;

    machine(r);
    if (!(f = fopen(self_cgroup, "re")))
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "0::/", 4) == 0) {
            line[strcspn(line, "\n")] = '\0';
            path = line + 3;
            break;
        }
    fclose(f);
    if (!path)
        return -1;
    if ((size_t)snprintf(dir, sizeof dir, "%s%s", root, strcmp(path, "/") ? path : "") >= sizeof dir)
        return -1;
    /* the cgroup, then each ancestor up to the mount (root itself last) */
    size_t rootlen = strlen(root);
    for (;;) {
        apply_limits(dir, r);
        char *slash = strrchr(dir, '/');
        if (strlen(dir) <= rootlen || !slash || (size_t)(slash - dir) < rootlen)
            break;
        *slash = '\0';
    }
    return 0;
}

void sysres_get(struct sysres *r)
{
    const char *root = "/sys/fs/cgroup";

    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) < 0 &&
        access("/sys/fs/cgroup/unified/cgroup.controllers", F_OK) == 0)
        root = "/sys/fs/cgroup/unified";
    if (sysres_read(root, "/proc/self/cgroup", r) < 0)
        machine(r);
}
