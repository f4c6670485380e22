/* sysres.h - the CPUs and memory this process may use (sysres.c). */
#ifndef COPEES_SYSRES_H
#define COPEES_SYSRES_H

#include <stdint.h>

struct sysres {
    long cpus;          /* at least 1 */
    uint64_t memory;    /* bytes; 0 when unknown */
};

/* The machine's online CPUs (fewer under this thread's affinity mask)
 * and physical memory, lowered by the cgroup limits of this process's
 * cgroup and of its ancestors: cgroup v2's cpu.max and memory.max, v1's
 * cpu.cfs_quota_us / cpu.cfs_period_us and memory.limit_in_bytes.
 * self_cgroup is /proc/self/cgroup's text, base the directory where the
 * hierarchies are mounted (/sys/fs/cgroup).  -1 when self_cgroup names
 * no cgroup v2 hierarchy nor a v1 one with the memory or cpu controller
 * (r then holds the machine's figures). */
int sysres_read(const char *base, const char *self_cgroup, struct sysres *r);

/* sysres_read() of this process. */
void sysres_get(struct sysres *r);

#endif
