/* preflight-lean.c - the libraries the preflight children do without.
 *
 * Design notes:
 * - poppler-glib and cairo pull 54 shared libraries into the helper, about
 *   300 mappings.  A fork copies every mapping and an exit tears every one
 *   down again, once per document: on the two-core VM this was measured
 *   on, fork + exit + wait of a program with the same libraries cost
 *   0.42 ms with all of their mappings and 0.32 ms without those of the
 *   ones below, and tests/pfdrive -j3 1.76 -> 1.67 ms of CPU a check;
 *   both with every mapping of theirs left out (here each keeps its
 *   first, see below: 111 of 144 are left out).
 * - The libraries listed here are linked for things a check never does:
 *   cairo's X11 surfaces (a check draws on an image surface), poppler's
 *   signature verification (NSS) and TIFF writer, GIO's streams and mounts
 *   (poppler-glib opens documents from memory or an fd).  The server marks
 *   their mappings MADV_DONTFORK, so children never have them: a fork is
 *   cheaper, and a hostile document that takes over a child finds none of
 *   their code to reuse (X11's sockets, NSS's crypto).  A child that did
 *   call into one would die of SIGSEGV: preflight-crashed, like any crash.
 * - Each library's first mapping stays: it holds the ELF and program
 *   headers, which dl_iterate_phdr() hands to its callers for every loaded
 *   object (the C++ unwinder's fallback, backtraces): an exception in
 *   poppler must still unwind normally.
 * - Before trusting the list, the server forks one child that runs the
 *   whole check of the built-in document (pfc_selftest) without those
 *   libraries; if it does not come back clean within 10 s, every mapping
 *   is inherited again and children are whole.  A newer poppler or cairo
 *   that starts using one of them for the paths the built-in document
 *   takes is caught there; the test suite's documents cover the rest.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preflight-checks.h"
#include "preflight-lean.h"

#define MAX_RANGES 512
#define SELFTEST_MS 10000

static const char *const unused[] = {
    /* cairo's X11 and XCB surfaces */
    "libX11.so.", "libX11-xcb.so.", "libxcb.so.", "libxcb-shm.so.", "libxcb-render.so.",
    "libXrender.so.", "libXext.so.", "libXau.so.", "libXdmcp.so.", "libbsd.so.", "libmd.so.",
    /* poppler's signatures */
    "libnss3.so", "libnssutil3.so", "libsmime3.so", "libplc4.so", "libplds4.so", "libnspr4.so",
    /* poppler's TIFF writer */
    "libtiff.so.", "libwebp.so.", "libLerc.so.", "libjbig.so.", "libdeflate.so.", "libzstd.so.",
    "liblzma.so.",
    /* GIO */
    "libgio-2.0.so.", "libgmodule-2.0.so.", "libmount.so.", "libselinux.so.", "libblkid.so.",
};

struct range { void *start; size_t len; };

#ifdef COPEES_TEST_KNOBS
static bool test_hang;

void pfl_test_hang(void)
{
    test_hang = true;
}
#endif

static bool is_unused(const char *path, const char *extra)
{
    const char *base = strrchr(path, '/');

    base = base ? base + 1 : path;
    for (size_t i = 0; i < sizeof unused / sizeof unused[0]; i++)
        if (strncmp(base, unused[i], strlen(unused[i])) == 0)
            return true;
    return extra && strncmp(base, extra, strlen(extra)) == 0;
}

/* Mark the unused libraries' mappings (all but each one's first) with
 * advice; the ranges marked into r.  Returns how many. */
static int mark(struct range *r, int max, const char *extra)
{
    FILE *f = fopen("/proc/self/maps", "re");
    char line[512], path[400];
    unsigned long start, end, off;
    int n = 0;

    if (!f)
        return 0;
    while (n < max && fgets(line, sizeof line, f)) {
        path[0] = '\0';
        if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %399s", &start, &end, &off, path) < 3 ||
            off == 0 || path[0] != '/' || !is_unused(path, extra))
            continue;
        r[n] = (struct range){(void *)start, end - start};
        if (madvise(r[n].start, r[n].len, MADV_DONTFORK) == 0)
            n++;
    }
    fclose(f);
    return n;
}

/* A child checks the built-in document without them: true when clean
 * within SELFTEST_MS (a check of it takes a few milliseconds; one that
 * hangs is killed, and counts as a failure). */
static bool selftest(void)
{
    const struct timespec tick = {0, 1000000};
    int status = 0, limit = SELFTEST_MS;
    pid_t pid = fork(), r = 0;

#ifdef COPEES_TEST_KNOBS
    if (test_hang && pid == 0)
        pause();
    if (test_hang)
        limit = 300;
#endif
    if (pid == 0)
        _exit(pfc_selftest() == 0 ? 0 : 1);
    if (pid < 0)
        return false;
    for (int ms = 0; ms < limit && (r = waitpid(pid, &status, WNOHANG)) == 0; ms++)
        nanosleep(&tick, NULL);
    if (r != pid) {
        kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        return false;
    }
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int pfl_setup(const char *extra)
{
#ifdef COPEES_ASAN
    (void)extra;
    return 0;
#else
    static struct range r[MAX_RANGES];
    int n = mark(r, MAX_RANGES, extra);

    if (n > 0 && !selftest()) {
        for (int i = 0; i < n; i++)
            madvise(r[i].start, r[i].len, MADV_DOFORK);
        n = 0;
    }
    return n;
#endif
}

int pfl_count_dontcopy(void)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    char line[512];
    int n = 0;

    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " dc"))
            n++;
    fclose(f);
    return n;
}
