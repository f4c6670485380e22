/* sysres.c - what this process may use of the machine: CPUs and memory,
 * after its CPU affinity and the cgroup limits on its cgroup and on
 * every ancestor (systemd's CPUQuota= and MemoryMax=, a container's
 * limits).  conf.c sizes the preflight's default `workers` from it.
 *
 * Design notes:
 * - Each line of /proc/self/cgroup names a hierarchy and this process's
 *   cgroup in it.  cgroup v2's ("0::PATH") is read under the unified
 *   mount (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid
 *   system): memory.max and cpu.max.  A cgroup v1 hierarchy with the
 *   memory or cpu controller ("4:memory:PATH", "1:cpu,cpuacct:PATH") is
 *   read under /sys/fs/cgroup/CONTROLLERS: memory.limit_in_bytes, and
 *   cpu.cfs_quota_us over cpu.cfs_period_us (systemd writes MemoryMax=
 *   and CPUQuota= there on such a system).  In each hierarchy the cgroup
 *   and every ancestor count; the smallest limit of all is the one that
 *   holds.
 * - Inside a container with a cgroup namespace, /proc/self/cgroup says
 *   "0::/" and the mount is the container's own cgroup, whose files are
 *   the container's limits: read the same way.
 * - A file that is missing, unreadable or does not parse limits nothing:
 *   the machine's figure stands.  "max" (v2) and -1 (v1) mean no limit,
 *   as does v1's "unlimited" memory, a number larger than any machine's.
 * - cpu.max's quota / period is rounded up: a service allowed 150% of a
 *   CPU counts as 2.  The affinity mask (taskset, systemd's
 *   CPUAffinity=) counts too.
 * - Read when the configuration is loaded (start-up and each reload): a
 *   limit changed at run time is seen at the next reload.
 */
#include "config.h"

#include <inttypes.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sysres.h"
#include "util.h"

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

enum { V2, V1_MEMORY, V1_CPU };

/* quota / period CPUs, rounded up, lowering r->cpus: a quota that is
 * not a number ("max", "-1") limits nothing. */
static void apply_quota(const char *quota, uint64_t period, struct sysres *r)
{
    uint64_t q;

    if (period == 0 || parse_u64(quota, &q) < 0)
        return;
    uint64_t n = q / period + (q % period != 0);
    if (n < 1)
        n = 1;
    if (n < (uint64_t)r->cpus)
        r->cpus = (long)n;
}

static void apply_memory(const char *value, struct sysres *r)
{
    uint64_t v;

    if (parse_u64(value, &v) == 0 && (r->memory == 0 || v < r->memory))
        r->memory = v;
}

/* Apply the limits that the cgroup directory dir holds (of the kind
 * given) to r. */
static void apply_limits(const char *dir, int kind, struct sysres *r)
{
    char line[128], quota[64];
    uint64_t p;

    if (kind == V2 && read_line(dir, "memory.max", line, sizeof line) == 0)
        apply_memory(line, r);
    if (kind == V2 && read_line(dir, "cpu.max", line, sizeof line) == 0 &&
        sscanf(line, "%63s %" SCNu64, quota, &p) == 2)
        apply_quota(quota, p, r);
    if (kind == V1_MEMORY && read_line(dir, "memory.limit_in_bytes", line, sizeof line) == 0)
        apply_memory(line, r);
    if (kind == V1_CPU && read_line(dir, "cpu.cfs_quota_us", quota, sizeof quota) == 0 &&
        read_line(dir, "cpu.cfs_period_us", line, sizeof line) == 0 && parse_u64(line, &p) == 0)
        apply_quota(quota, p, r);
}

/* Apply the limits of the cgroup path ("/a/b") in the hierarchy mounted
 * at root, and of each of its ancestors up to root itself. */
static void walk(const char *root, const char *path, int kind, struct sysres *r)
{
    char dir[CG_PATH_MAX + 256];
    size_t rootlen = strlen(root);

    if ((size_t)snprintf(dir, sizeof dir, "%s%s", root, strcmp(path, "/") ? path : "") >= sizeof dir)
        return;
    for (char *slash;; *slash = '\0') {
        apply_limits(dir, kind, r);
        if (!(slash = strrchr(dir + rootlen, '/')))
            break;
    }
}

/* Whether the comma-separated list has the token t. */
static bool has_token(const char *list, const char *t)
{
    size_t n = strlen(t);

    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, t, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

int sysres_read(const char *base, const char *self_cgroup, struct sysres *r)
{
    char line[CG_PATH_MAX], root[CG_PATH_MAX + 64];
    int found = 0;
    FILE *f;

    machine(r);
    if (!(f = fopen(self_cgroup, "re")))
        return -1;
    while (fgets(line, sizeof line, f)) {
        /* "ID:CONTROLLERS:PATH"; cgroup v2's is "0::PATH" */
        line[strcspn(line, "\n")] = '\0';
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2 || c2[1] != '/')
            continue;
        *c1 = *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (strcmp(line, "0") == 0 && !*ctrls) {
            snprintf(root, sizeof root, "%s/cgroup.controllers", base);
            bool unified = access(root, F_OK) == 0;
            snprintf(root, sizeof root, unified ? "%s" : "%s/unified", base);
            walk(root, path, V2, r);
            found = 1;
        } else if (has_token(ctrls, "memory") || has_token(ctrls, "cpu")) {
            if ((size_t)snprintf(root, sizeof root, "%s/%s", base, ctrls) >= sizeof root)
                continue;
            if (has_token(ctrls, "memory"))
                walk(root, path, V1_MEMORY, r);
            if (has_token(ctrls, "cpu"))
                walk(root, path, V1_CPU, r);
            found = 1;
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

void sysres_get(struct sysres *r)
{
    sysres_read("/sys/fs/cgroup", "/proc/self/cgroup", r);
}
