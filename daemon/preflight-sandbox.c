/* preflight-sandbox.c - limits and seccomp filters of the preflight
 * helper (see preflight-sandbox.h).
 *
 * Design notes:
 * - Two filters stack.  The server's, installed once after poppler,
 *   fontconfig and cairo have started, allows its loop (poll, the socket
 *   to the daemon, waiting for children) and what a fork needs (clone,
 *   set_robust_list, and in the new child prctl, prlimit64, close_range,
 *   dup2 and seccomp).  Each child then adds a stricter one before it
 *   reads a byte of the document: the calls a check makes and no more.
 *   A call off the list kills the process (SIGSYS): errno-style denials
 *   silently changed poppler's and fontconfig's results.
 * - What a check makes: read, pread64, write (its stream), lseek, close,
 *   stat calls, fcntl, openat read-only (font files), mmap and mprotect
 *   without PROT_EXEC, munmap, brk, mremap, madvise, futex, clocks,
 *   getrandom, signal masks and returns, exit, and tgkill of SIGABRT on
 *   itself (abort()).  getdents64, fstatfs and statx are allowed too: they
 *   only read, and fontconfig uses them when it rechecks its directories.
 * - restart_syscall is allowed: after SIGSTOP and SIGCONT (a debugger, a
 *   cgroup freezer) the kernel resumes an interrupted call that had a
 *   timeout (the server's poll) with it, and it can only resume that
 *   call.  Without it, stopping and continuing the server killed it, and
 *   every document in it was rejected.
 * - clone3 fails with ENOSYS in the server (glibc then uses clone), so a
 *   library that starts a thread there does not kill it.
 * - The child's tgkill rule names its own pid.  The server compiles the
 *   child's filter once, with a marker no pid can equal (pids stay below
 *   2^22) where the pid goes, and exports its BPF program; a child patches
 *   the one instruction holding the marker with its pid and loads the
 *   program (saves about 0.06 ms of libseccomp per document).  When the
 *   marker is not found exactly once, each child builds its filter itself.
 * - RLIMIT_CPU: soft = hard - 1, so the soft limit sends SIGXCPU (counted
 *   as too complex) rather than SIGKILL (which looks like the daemon's
 *   wall-clock kill).
 * - ASan builds skip RLIMIT_AS and both filters: the sanitizer runtime
 *   reserves terabytes of address space and makes calls of its own.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdlib.h>
#include <sys/syscall.h>

#include "preflight-sandbox.h"

#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* setrlimit, never above an inherited hard limit: 0 / -1. */
static int set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit cur, rl = {soft, hard};

    if (getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY) {
        rl.rlim_cur = soft < cur.rlim_max ? soft : cur.rlim_max;
        rl.rlim_max = hard < cur.rlim_max ? hard : cur.rlim_max;
    }
    return setrlimit(resource, &rl);
}

int pfs_server_limits(void)
{
    pid_t parent = getppid();

    if (set_limit(RLIMIT_CORE, 0, 0) < 0 || set_limit(RLIMIT_NOFILE, 256, 256) < 0 ||
        prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        return -1;
    if (getppid() != parent) {     /* the daemon died before we could notice */
        errno = ESRCH;
        return -1;
    }
    return 0;
}

int pfs_child_limits(unsigned long long memory, unsigned cpu_s)
{
    signal(SIGXFSZ, SIG_IGN);
#ifndef COPEES_ASAN
    if (memory && set_limit(RLIMIT_AS, (rlim_t)memory, (rlim_t)memory) < 0)
        return -1;
#else
    (void)memory;
#endif
    if (set_limit(RLIMIT_CPU, cpu_s, (rlim_t)cpu_s + 1) < 0 || set_limit(RLIMIT_NOFILE, 32, 32) < 0 ||
        set_limit(RLIMIT_CORE, 0, 0) < 0 || set_limit(RLIMIT_FSIZE, 0, 0) < 0)
        return -1;
    return 0;
}

#ifndef COPEES_ASAN
/* The calls every check may make, unconditionally. */
static const int check_calls[] = {
    SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(lseek),
    SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(fstatfs),
    SCMP_SYS(getdents64), SCMP_SYS(fcntl), SCMP_SYS(munmap), SCMP_SYS(brk), SCMP_SYS(mremap),
    SCMP_SYS(madvise), SCMP_SYS(futex), SCMP_SYS(getpid), SCMP_SYS(gettid),
    SCMP_SYS(clock_gettime), SCMP_SYS(getrandom), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall), SCMP_SYS(exit), SCMP_SYS(exit_group),
};
/* What the server adds: its loop, forking, and what a new child does
 * before its own filter. */
static const int server_calls[] = {
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(clone),
    SCMP_SYS(wait4), SCMP_SYS(pipe2), SCMP_SYS(kill), SCMP_SYS(getppid),
    SCMP_SYS(set_robust_list), SCMP_SYS(prctl), SCMP_SYS(prlimit64), SCMP_SYS(close_range),
    SCMP_SYS(dup2), SCMP_SYS(dup3), SCMP_SYS(seccomp), SCMP_SYS(rt_sigaction),
    SCMP_SYS(pidfd_open),
};

/* Add the allow rules of a check to ctx; tgkill only for pid (-1: any). */
static int add_check_rules(scmp_filter_ctx ctx, pid_t pid)
{
    /* open read-only, never creating or truncating; map without exec */
    const scmp_datum_t rdonly = O_ACCMODE | O_CREAT | O_TRUNC;
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < N_ELEMENTS(check_calls); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, check_calls[i], 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, rdonly, O_RDONLY));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    if (rc == 0 && pid > 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 2,
                              SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)pid), SCMP_A2(SCMP_CMP_EQ, SIGABRT));
    else if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A2(SCMP_CMP_EQ, SIGABRT));
    return rc;
}

/* Load ctx (kill by default) and release it: 0 / -1. */
static int load(scmp_filter_ctx ctx, int rc)
{
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);   /* already set by the server */
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc == 0 ? 0 : -1;
}
#endif

int pfs_server_filter(void)
{
#ifdef COPEES_ASAN
    return 0;
#else
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    int rc;

    if (!ctx)
        return -1;
    rc = add_check_rules(ctx, -1);
    for (size_t i = 0; rc == 0 && i < N_ELEMENTS(server_calls); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, server_calls[i], 0);
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    return load(ctx, rc);
#endif
}

#ifndef COPEES_ASAN
#define PID_MARK 0x7ff0f0f1u   /* above PID_MAX_LIMIT (2^22): no pid */

static struct sock_filter *child_prog;   /* the child's filter, compiled */
static unsigned short child_len;
static int child_mark = -1;              /* the instruction comparing the pid */

/* ctx's BPF program, read back through a memfd: 0 / -1. */
static int export_prog(scmp_filter_ctx ctx)
{
    int fd = memfd_create("copees-filter", MFD_CLOEXEC), rc = -1;
    off_t len;

    if (fd < 0)
        return -1;
    if (seccomp_export_bpf(ctx, fd) == 0 && (len = lseek(fd, 0, SEEK_END)) > 0 &&
        len % (off_t)sizeof *child_prog == 0 && len / (off_t)sizeof *child_prog <= BPF_MAXINSNS &&
        (child_prog = malloc((size_t)len)) != NULL &&
        pread(fd, child_prog, (size_t)len, 0) == len) {
        child_len = (unsigned short)(len / (off_t)sizeof *child_prog);
        rc = 0;
    }
    close(fd);
    return rc;
}
#endif

void pfs_child_filter_prepare(void)
{
#ifndef COPEES_ASAN
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    int marks = 0;

    if (!ctx)
        return;
    if (add_check_rules(ctx, (pid_t)PID_MARK) == 0 &&
        seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) == 0 && export_prog(ctx) == 0)
        for (int i = 0; i < child_len; i++)
            if (child_prog[i].k == PID_MARK) {
                child_mark = i;
                marks++;
            }
    seccomp_release(ctx);
    if (marks != 1 || BPF_CLASS(child_prog[child_mark].code) != BPF_JMP) {
        free(child_prog);
        child_prog = NULL;
        child_mark = -1;
    }
#endif
}

int pfs_child_filter(void)
{
#ifdef COPEES_ASAN
    return 0;
#else
    if (child_prog) {
        struct sock_fprog prog = {.len = child_len, .filter = child_prog};
        child_prog[child_mark].k = (uint32_t)getpid();   /* this child's copy */
        return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0 ? 0 : -1;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);

    if (!ctx)
        return -1;
    return load(ctx, add_check_rules(ctx, getpid()));
#endif
}

const char *pfs_features(void)
{
#ifdef COPEES_ASAN
    return "asan";
#else
    return "rlimit-as seccomp";
#endif
}
