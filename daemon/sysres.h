/* sysres.h - the CPUs and memory this process may use (sysres.c). */
#ifndef COPEES_SYSRES_H
#define COPEES_SYSRES_H

#include <stdint.h>

struct sysres {
    long cpus;          /* at least 1 */
    uint64_t memory;    /* bytes; 0 when unknown */
};

/* The machine's online CPUs (fewer under this thread's affinity mask)
 * and physical memory, lowered by the cgroup v2 limits (cpu.max,
 * memory.max) of this process's cgroup and of its ancestors: self_cgroup
 * is /proc/self/cgroup's text, root the cgroup2 mount.  -1 when
 * self_cgroup has no cgroup v2 line (r then holds the machine's figures). */
int sysres_read(const char *root, const char *self_cgroup, struct sysres *r);

/* sysres_read() of this process, wherever the cgroup2 hierarchy is
 * mounted; the machine's figures where there is none. */
void sysres_get(struct sysres *r);

#endif
