/* preflight-mem.c - the helper server lays out its memory once, before
 * the first child, so that each child it forks faults in as few pages as
 * it can.
 *
 * Design notes:
 * - Two layouts.  The last three below (a huge page for the fresh heap,
 *   inherited page tables for code, pages copied ahead: "fault-saving")
 *   trade work at fork and exit for fewer page faults.  They were made on
 *   a paravirtualised guest whose faults cost about 10 us (a process 0.7
 *   ms), where they took a one-page check from 10.3 to 8.3 ms of CPU.  On
 *   a machine whose faults cost 1.3 us (a process 0.12 ms) they cost
 *   more than they save: tests/pfdrive -j3, 3 interleaved rounds of 2,000
 *   checks, 1.83 ms of CPU a check with all three against 1.48 without
 *   (the huge page's zeroing of 2 MiB and the copying and zapping of
 *   ~3,100 code entries, 0.17 ms each; the copied-ahead pages about
 *   nothing).  So the server times a fresh page's fault at start-up
 *   (pfm_fault_ns) and uses them only above PFM_DEAR_FAULT_NS (4 us,
 *   between the two); `preflight --server --layout=...` forces either
 *   (tests).  The settled heap is used in both: it measured better on a
 *   fast host too.
 * - A one-page check faulted about 225 pages: ~100 in the heap (60 fresh
 *   pages at its top, 40 copies of the server's pages), ~100 of library
 *   code and read-only data (file pages the child maps again, 16 at a
 *   time), the rest stack, library data and the document.  On a
 *   paravirtualised guest (bench/README.md, "A slower guest") a fault
 *   costs about 10 us, more under load: faults were a fifth of a check.
 * - malloc's settings (pfm_malloc_setup, first thing in the server):
 *   keep free memory up to 16 MiB instead of trimming it, and grow the
 *   heap a megabyte at a time, so that a child does not trim and regrow
 *   it around each page's render surface (no brk in a one-page check).
 *   With LD_BIND_NOW, measured together: 1.87 -> 1.77 ms of CPU a
 *   one-page check.  (They were GLIBC_TUNABLES in the server's
 *   environment before; set here, preflight --lean-check, which a test
 *   runs without that environment, lays out the same heap as a server.)
 * - The settled heap (pfm_heap_settle): start-up leaves free chunks
 *   scattered over the heap, in glibc's per-thread cache, fastbins and
 *   bins.  A child's first allocations were served from them, and the
 *   first write to each copied a whole page from the server; a large
 *   request first walked the fastbins (malloc_consolidate), writing to
 *   every page they lie on.  Allocating each free chunk once and keeping
 *   it, then returning the top of the heap to the kernel, leaves a child
 *   nothing to take but fresh pages at the top, filled densely.  Measured
 *   with tests/pfdrive on a one-page document, 9 interleaved rounds: 251
 *   -> 221 page faults and 1.40 -> 1.35 ms of CPU a check; the server
 *   keeps about 100 KB it will not use.
 * - A huge page for the children's fresh heap (pfm_heap_huge): the
 *   server moves the top of its heap to a 2 MiB boundary (a kept
 *   allocation fills the gap) and makes sure the top chunk spans the
 *   whole huge page after it, untouched, then marks that block
 *   MADV_HUGEPAGE.  A child's first allocation beyond the boundary takes
 *   one fault for a zeroed 2 MiB page instead of one per 4 KiB: 60 fewer
 *   faults a check.  It runs last, after the server's filter (libseccomp
 *   allocates while compiling it), and the server never allocates again,
 *   so the block stays untouched in the server (tests/preflight.sh checks
 *   that its resident size stays 0): a page there would be shared with
 *   every child, and split and copied at its first write.  Where THP is
 *   off, or glibc's heap does not line up as expected, nothing is marked
 *   and children fault as before.  glibc's own glibc.malloc.hugetlb=1 did
 *   not do it: it trims and grows the heap in 2 MiB steps from wherever
 *   the heap ends, so a child's ~400 KB stayed below the next boundary,
 *   in 4 KiB pages.
 * - Inherited page tables for code and read-only data
 *   (pfm_inherit_text): fork copies the page-table entries of a mapping
 *   only when it has anonymous pages (an anon_vma); a library's code has
 *   none, so each child faulted again, through the kernel's fault-around,
 *   every page of it the server had.  Writing one byte of each such
 *   mapping back unchanged through /proc/self/mem (the kernel's
 *   copy-on-write for a debugger's breakpoint: no mprotect, no writable
 *   code, so MemoryDenyWriteExecute= does not stand in the way) gives it
 *   one anonymous page; from then on fork copies its entries, ~3,100 of
 *   them, and a child faults on ~80 pages instead of ~180.  Copying them
 *   costs most of what the faults did on a fast host (measured there
 *   earlier: CPU the same); on the slower guest, tests/pfdrive -j3 spent
 *   4.5% and 7.5% less CPU a check with it in two interleaved runs of 8
 *   rounds.  A kernel that refuses such writes (proc_mem.force_override)
 *   just leaves the mappings as they were.
 * - The server's pages a check writes, copied ahead (pfm_learn_writes,
 *   pfm_child_prefault): with the two above, ~80 faults were left, half
 *   of them copy-on-write faults on the same server pages in every check
 *   (poppler's, cairo's and FreeType's caches and counters on the heap,
 *   library data, the stack).  Last in the server, a learner child checks
 *   the built-in document and compares /proc/self/pagemap before and
 *   after: the pages of writable private mappings that were shared at the
 *   fork and are its own after the check are those it wrote (about 40,
 *   in some 30 runs).  Each child then copies them with one
 *   madvise(MADV_POPULATE_WRITE) per run before it starts, instead of one
 *   fault each: on the slower guest 79 -> 39 faults and 7.89 -> 6.92 ms
 *   of CPU a one-page check (tests/pfdrive -j3, 8 interleaved rounds,
 *   every one lower).  A page the document at hand does not write is
 *   copied for nothing, a page it writes that the built-in one did not
 *   still faults: either way the check is the same.  The learner has a
 *   deadline (10 s) and its runs are checked for alignment; a learner
 *   that fails leaves children without the list, as before.  Kernels
 *   before 5.14 refuse the advice, and the pages fault as before.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "preflight-mem.h"

#if !defined(COPEES_ASAN) && defined(__GLIBC__) && __GLIBC_PREREQ(2, 33)
#define PFM_GLIBC 1
#endif

#define SETTLE_MAX_SIZE 1032          /* glibc's largest per-thread cache size */
#define SETTLE_MAX_BYTES (4UL << 20)  /* never keep more than this */
#define MAX_MAPS 512

long pfm_fault_ns(void)
{
    enum { PAGES = 128, PG = 4096 };
    long best = -1;
    for (int round = 0; round < 3; round++) {
        char *p = mmap(NULL, PAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (p == MAP_FAILED)
            return -1;
        madvise(p, PAGES * PG, MADV_NOHUGEPAGE);
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < PAGES; i++)
            ((volatile char *)p)[(size_t)i * PG] = 1;
        clock_gettime(CLOCK_MONOTONIC, &b);
        munmap(p, PAGES * PG);
        long ns = ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec)) / PAGES;
        if (best < 0 || ns < best)
            best = ns;
    }
    return best;
}

void pfm_malloc_setup(void)
{
#if defined(M_TRIM_THRESHOLD) && defined(M_TOP_PAD)
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
    mallopt(M_TOP_PAD, 1 << 20);
#endif
}

long pfm_heap_settle(void)
{
#ifndef PFM_GLIBC
    return -1;
#else
    size_t kept = 0;

    malloc_trim(0);                    /* merges the fastbins' chunks */
    /* largest first: a big hole goes in few large pieces, and what is left
     * of it goes to the smaller sizes after */
    for (int sz = SETTLE_MAX_SIZE; sz >= 8 && kept < SETTLE_MAX_BYTES; sz -= 16)
        while (kept < SETTLE_MAX_BYTES) {
            size_t top = mallinfo2().keepcost;
            if (!malloc((size_t)sz))   /* kept on purpose: see the notes above */
                break;
            kept += (size_t)sz;
            if (mallinfo2().keepcost != top)
                break;                 /* carved from the top: no free chunk of this size left */
        }
    malloc_trim(0);                    /* the top, back to the kernel */
    struct mallinfo2 m = mallinfo2();
    return (long)(m.fordblks - m.keepcost);
#endif
}

#ifdef PFM_GLIBC
/* The size of a PMD-mapped transparent huge page, 0 where THP is off. */
static size_t thp_size(void)
{
    char mode[128] = "";
    unsigned long sz = 0;
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");

    if (f) {
        if (!fgets(mode, sizeof mode, f))
            mode[0] = '\0';
        fclose(f);
    }
    if (!mode[0] || strstr(mode, "[never]"))
        return 0;
    if ((f = fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "re"))) {
        if (fscanf(f, "%lu", &sz) != 1)
            sz = 0;
        fclose(f);
    }
    return sz >= 4096 && (sz & (sz - 1)) == 0 && sz <= (64UL << 20) ? sz : 0;
}
#endif

void *pfm_heap_huge(void)
{
#ifndef PFM_GLIBC
    return NULL;
#else
    size_t hp = thp_size();
    if (hp == 0)
        return NULL;
    /* the top chunk begins at the break less its size (keepcost); its
     * header takes 16 bytes, so the chunk kept for the gap ends 16 bytes
     * below the boundary and a child's first carve from the top returns
     * the boundary itself */
    uintptr_t top = (uintptr_t)sbrk(0) - mallinfo2().keepcost;
    uintptr_t b = (top + 16 + 4096 + hp - 1) & ~(uintptr_t)(hp - 1);
    if (top & 15)
        return NULL;
    /* both requests from the heap, not mmap, for the time of this call */
    mallopt(M_MMAP_THRESHOLD, (int)(b - top + 2 * hp));
    void *gap = malloc(b - 16 - top - 8);  /* kept on purpose: the gap up to b */
    /* grow the heap past the block without touching it: a chunk over the
     * block, given back at once, merges into the top again (the trim
     * threshold of pfm_malloc_setup keeps it) */
    void *over = gap ? malloc(hp + (64 << 10)) : NULL;
    free(over);
    mallopt(M_MMAP_THRESHOLD, 128 << 10);  /* glibc's default */
    uintptr_t end = (uintptr_t)sbrk(0);
    if (!over || end < b + hp || end - mallinfo2().keepcost != b - 16 ||
        madvise((void *)b, hp, MADV_HUGEPAGE) < 0)
        return NULL;
    return (void *)b;
#endif
}

int pfm_inherit_text(void)
{
#ifndef PFM_GLIBC
    return -1;
#else
    static struct { uintptr_t start; bool eligible; } m[MAX_MAPS];
    FILE *f = fopen("/proc/self/smaps", "re");
    char line[512], perm[8], path[8];
    unsigned long start, end, off;
    int n = 0, cur = -1, done = 0, fd;

    if (!f)
        return 0;
    /* a mapping: its header line, then its fields; "Anonymous:" above 0
     * means it has an anon_vma already (written during relocation), "dc"
     * in VmFlags that children never get it */
    while (fgets(line, sizeof line, f)) {
        path[0] = '\0';
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %7s", &start, &end, perm, &off, path) >= 4) {
            cur = n < MAX_MAPS ? n++ : -1;
            if (cur >= 0)
                m[cur] = (typeof(m[0])){start, strlen(perm) == 4 && perm[0] == 'r' &&
                                                   perm[1] == '-' && perm[3] == 'p' &&
                                                   path[0] == '/'};
        } else if (cur >= 0 && strncmp(line, "Anonymous:", 10) == 0 && strtoul(line + 10, NULL, 10))
            m[cur].eligible = false;
        else if (cur >= 0 && strncmp(line, "VmFlags:", 8) == 0 && strstr(line, " dc"))
            m[cur].eligible = false;
    }
    fclose(f);
    if ((fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC)) < 0)
        return 0;
    for (int i = 0; i < n; i++) {
        unsigned char c;
        if (m[i].eligible && pread(fd, &c, 1, (off_t)m[i].start) == 1 &&
            pwrite(fd, &c, 1, (off_t)m[i].start) == 1)
            done++;
    }
    close(fd);
    return done;
#endif
}

/* The kB of field in /proc/self/smaps for the mapping holding addr, or
 * (addr 0) the first whose path contains name with permissions perm; -1
 * when there is none. */
static long smaps_kb(uintptr_t addr, const char *name, const char *perm, const char *field)
{
    FILE *f = fopen("/proc/self/smaps", "re");
    char line[512], p[8], path[400];
    unsigned long start, end;
    bool in = false;
    long kb = -1;
    size_t fl = strlen(field);

    if (!f)
        return -1;
    while (kb < 0 && fgets(line, sizeof line, f)) {
        path[0] = '\0';
        if (sscanf(line, "%lx-%lx %7s %*s %*s %*s %399s", &start, &end, p, path) >= 3)
            in = addr ? start <= addr && addr < end
                      : strcmp(p, perm) == 0 && strstr(path, name) != NULL;
        else if (in && strncmp(line, field, fl) == 0 && line[fl] == ':')
            kb = strtol(line + fl + 1, NULL, 10);
    }
    fclose(f);
    return kb;
}

int pfm_report(FILE *out, const void *huge)
{
    int status;

    fprintf(out, "huge heap block %s\n", huge ? "yes" : "no");
    fflush(out);
    pid_t pid = fork();
    if (pid == 0) {
        /* what a child has of poppler's code before running any of it */
        long code = smaps_kb(0, "/libpoppler.so.", "r-xp", "Rss");
        long ahead = pfm_prefault_check();
        char *last = NULL;
        for (int i = 0; i < 256; i++)   /* 256 KiB, as a check's first allocations */
            if ((last = malloc(1000)))
                memset(last, 1, 1000);
        fprintf(out, "child code resident %ld kB\nchild pages copied ahead %ld\n"
                "child heap in huge pages %ld kB\n", code, ahead,
                last ? smaps_kb((uintptr_t)last, NULL, NULL, "AnonHugePages") : -1);
        fflush(out);
        _exit(0);
    }
    return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
                   WEXITSTATUS(status) == 0 ? 0 : -1;
}


/* ---- the pages a check writes, copied ahead ---- */

#define LEARN_MAX_PAGES 16384      /* candidates: present, shared pages */
#define LEARN_MAPS_MAX (1 << 20)   /* bytes of /proc/self/maps read */
#define LEARN_MAX_RUNS 256
#define LEARN_MS 10000             /* the learner's deadline */
#define PM_PRESENT (1ULL << 63)    /* /proc/PID/pagemap bits */
#define PM_EXCLUSIVE (1ULL << 56)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23     /* Linux 5.14 */
#endif

struct run { uintptr_t start; size_t len; };
static struct run runs[LEARN_MAX_RUNS];
static int nruns;

void pfm_child_prefault(void)
{
    for (int i = 0; i < nruns; i++)
        madvise((void *)runs[i].start, runs[i].len, MADV_POPULATE_WRITE);
}

#ifdef PFM_GLIBC
static bool pm_entry(int pm, uintptr_t a, uint64_t *e)
{
    return pread(pm, e, sizeof *e, (off_t)(a / 4096 * sizeof *e)) == sizeof *e;
}

/* The learner: the candidates are the pages of writable private mappings
 * that are present and still shared with the server; after work(), the
 * ones now exclusive are those it wrote.  Its own memory is a fresh
 * mapping, so that its bookkeeping copies none; runs go to out. */
static void learn_child(int (*work)(void), int out)
{
    size_t cap = LEARN_MAX_PAGES * sizeof(uintptr_t) + LEARN_MAPS_MAX;
    char *mem = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    size_t mlen = 0, nc = 0;
    ssize_t r;
    int fd, pm;

    if (mem == MAP_FAILED || (fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC)) < 0)
        _exit(1);
    uintptr_t *cand = (uintptr_t *)mem;
    char *maps = mem + LEARN_MAX_PAGES * sizeof(uintptr_t);
    while (mlen < LEARN_MAPS_MAX - 1 && (r = read(fd, maps + mlen, LEARN_MAPS_MAX - 1 - mlen)) > 0)
        mlen += (size_t)r;
    close(fd);
    maps[mlen] = '\0';
    if ((pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)) < 0)
        _exit(1);
    for (char *l = maps; *l && nc < LEARN_MAX_PAGES;) {
        char *nl = strchr(l, '\n');
        unsigned long s, e;
        char perm[8];
        if (sscanf(l, "%lx-%lx %7s", &s, &e, perm) == 3 && strcmp(perm, "rw-p") == 0)
            for (unsigned long a = s; a < e && nc < LEARN_MAX_PAGES; a += 4096) {
                uint64_t ent;
                if (pm_entry(pm, a, &ent) && (ent & PM_PRESENT) && !(ent & PM_EXCLUSIVE))
                    cand[nc++] = a;
            }
        l = nl ? nl + 1 : l + strlen(l);
    }
    if (work() != 0)
        _exit(1);
    struct run cur = {0, 0};
    for (size_t i = 0; i < nc; i++) {
        uint64_t ent;
        if (!pm_entry(pm, cand[i], &ent) || !(ent & PM_PRESENT) || !(ent & PM_EXCLUSIVE))
            continue;
        if (cur.len && cur.start + cur.len == cand[i]) {
            cur.len += 4096;
            continue;
        }
        if (cur.len && write(out, &cur, sizeof cur) != sizeof cur)
            _exit(1);
        cur = (struct run){cand[i], 4096};
    }
    _exit(cur.len && write(out, &cur, sizeof cur) != sizeof cur ? 1 : 0);
}

#endif

long pfm_learn_writes(int (*work)(void))
{
#ifndef PFM_GLIBC
    (void)work;
    return -1;
#else
    int p[2], status = 0, n = 0;
    size_t got = 0;
    long pages = 0;
    char buf[LEARN_MAX_RUNS * sizeof(struct run)];

    nruns = 0;
    if (pipe2(p, O_CLOEXEC) < 0)
        return 0;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        learn_child(work, p[1]);
    }
    close(p[1]);
    /* read to EOF within the deadline; a learner that hangs is killed */
    for (int left = LEARN_MS; pid > 0;) {
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int k = poll(&pfd, 1, left);
        ssize_t r = k > 0 ? read(p[0], buf + got, sizeof buf - got) : -1;
        if (k > 0 && r == 0)
            break;                              /* EOF: the learner is done */
        if (k == 0 || (r < 0 && errno != EINTR) || (r > 0 && (got += (size_t)r) == sizeof buf)) {
            kill(pid, SIGKILL);                 /* hung, failed or too many runs */
            got = 0;
            break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        left -= (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (left <= 0)
            left = 0;
    }
    close(p[0]);
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (pid <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || got % sizeof(struct run))
        return 0;
    for (size_t off = 0; off < got; off += sizeof(struct run)) {
        struct run r;
        memcpy(&r, buf + off, sizeof r);
        if (r.start % 4096 || r.len == 0 || r.len % 4096)
            return 0;
        runs[n++] = r;
        pages += (long)(r.len / 4096);
    }
    nruns = n;
    return pages;
#endif
}

long pfm_prefault_check(void)
{
#ifndef PFM_GLIBC
    return -1;
#else
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    long ok = 0;

    if (pm < 0)
        return -1;
    pfm_child_prefault();
    for (int i = 0; i < nruns; i++)
        for (uintptr_t a = runs[i].start; a < runs[i].start + runs[i].len; a += 4096) {
            uint64_t ent;
            ok += pm_entry(pm, a, &ent) && (ent & PM_PRESENT) && (ent & PM_EXCLUSIVE);
        }
    close(pm);
    return ok;
#endif
}
