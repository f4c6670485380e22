/* preflight-sandbox.h - the preflight helper's resource limits and
 * system call filters (libseccomp; the helper's only door to it). */
#ifndef COPEES_PREFLIGHT_SANDBOX_H
#define COPEES_PREFLIGHT_SANDBOX_H

/* The server's own limits (no core files, fds for its children), no new
 * privileges, and death with the daemon.  0 / -1 with errno. */
int pfs_server_limits(void);
/* The server's filter: what its loop and forking need, plus everything a
 * child may do.  Installed once, after pfc_init().  0 / -1. */
int pfs_server_filter(void);

/* A child's limits: RLIMIT_AS = memory (0: none), RLIMIT_CPU = cpu_s soft
 * and cpu_s + 1 hard (SIGXCPU, not SIGKILL, at the soft limit), 32 files,
 * no core, no file growth.  0 / -1 with errno. */
int pfs_child_limits(unsigned long long memory, unsigned cpu_s);
/* Compile the child's filter once, in the server before its own filter
 * (children then only patch in their pid and load it). */
void pfs_child_filter_prepare(void);
/* A child's second, stricter filter: no fork, no wait, no limits, no more
 * filters, no sockets; abort only itself.  0 / -1. */
int pfs_child_filter(void);

/* The sandbox features of this build, space-separated ("rlimit-as
 * seccomp"); an ASan build has neither (its runtime needs the address
 * space and more system calls) and says "asan". */
const char *pfs_features(void);

#endif
