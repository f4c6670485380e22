/* sandbox-run.c - run a program under the seccomp part of copeesd.service.
 *
 * Usage: sandbox-run SYSCALLS FAMILIES -- PROGRAM [ARG...]
 *
 * SYSCALLS is a file of system call names, one a line: the unit's
 * SystemCallFilter= allow-list already expanded by the caller (with
 * systemd-analyze syscall-filter).  FAMILIES is a comma-separated list of
 * address family numbers (RestrictAddressFamilies=).
 *
 * Design notes: this mirrors what systemd installs for the unit, as three
 * stacked filters (the kernel applies the strictest verdict of all):
 * - the allow-list, every other call failing with EPERM
 *   (SystemCallErrorNumber=EPERM), native architecture only
 *   (SystemCallArchitectures=native: libseccomp's default);
 * - socket(2) with a family not in FAMILIES fails with EAFNOSUPPORT;
 * - MemoryDenyWriteExecute=: mmap with PROT_WRITE|PROT_EXEC, and mprotect
 *   or pkey_mprotect adding PROT_EXEC, fail with EPERM.
 * NoNewPrivileges= comes with it (required for an unprivileged seccomp).
 * Names this libseccomp does not know are skipped, as systemd does.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <seccomp.h>

static int die(const char *what, int err)
{
    fprintf(stderr, "sandbox-run: %s: %s\n", what, strerror(err < 0 ? -err : err));
    return 127;
}

static int allow_list(const char *path)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    char line[128];
    int n = 0, rc;
    FILE *f = fopen(path, "re");

    if (!ctx || !f)
        return die(path, errno ? errno : ENOMEM);
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, " \t\r\n")] = '\0';
        if (!line[0])
            continue;
        int nr = seccomp_syscall_resolve_name(line);
        if (nr == __NR_SCMP_ERROR)
            continue;
        if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0)
            return die(line, rc);
        n++;
    }
    fclose(f);
    if (n == 0)
        return die("empty allow-list", EINVAL);
    if ((rc = seccomp_load(ctx)) < 0)
        return die("loading the allow-list", rc);
    seccomp_release(ctx);
    return 0;
}

static int families(const char *list)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    char allowed[AF_MAX] = {0};
    int rc;

    if (!ctx)
        return die("seccomp_init", ENOMEM);
    for (const char *p = list; *p;) {
        char *end;
        long af = strtol(p, &end, 10);
        if (end == p || af < 0 || af >= AF_MAX)
            return die("bad family list", EINVAL);
        allowed[af] = 1;
        p = *end == ',' ? end + 1 : end;
    }
    for (int af = 0; af < AF_MAX; af++)
        if (!allowed[af] &&
            (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                   SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)af))) < 0)
            return die("socket rule", rc);
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                               SCMP_A0(SCMP_CMP_GE, (scmp_datum_t)AF_MAX))) < 0)
        return die("socket rule", rc);
    if ((rc = seccomp_load(ctx)) < 0)
        return die("loading the family filter", rc);
    seccomp_release(ctx);
    return 0;
}

static int wx(void)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    const scmp_datum_t wx = PROT_WRITE | PROT_EXEC;
    int rc;

    if (!ctx)
        return die("seccomp_init", ENOMEM);
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mmap), 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, wx, wx))) < 0 ||
        (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(mprotect), 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))) < 0 ||
        (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(pkey_mprotect), 1,
                               SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC))) < 0)
        return die("W^X rule", rc);
    if ((rc = seccomp_load(ctx)) < 0)
        return die("loading the W^X filter", rc);
    seccomp_release(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: sandbox-run SYSCALLS FAMILIES -- PROGRAM [ARG...]\n");
        return 2;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return die("PR_SET_NO_NEW_PRIVS", errno);
    /* The last filter loaded must still allow execve and what the loader
     * needs: the allow-list goes last, after the two narrow ones. */
    if ((rc = families(argv[2])) != 0 || (rc = wx()) != 0 || (rc = allow_list(argv[1])) != 0)
        return rc;
    execv(argv[4], argv + 4);
    return die(argv[4], errno);
}
