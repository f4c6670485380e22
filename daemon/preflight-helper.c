/* preflight-helper.c - the preflight helper (libexec/copees/preflight):
 * checks one PDF with poppler-glib inside a sandbox.
 *
 *   preflight [--memory BYTES] [--cpu SECONDS] [--max-pages N] < document.pdf
 *
 * The document is on fd 0 (a regular file).  Exit 0 with one JSON object
 * on one line on stdout whenever a report could be made, bad documents
 * included.  Exit 2: usage.  Anything else is a crash to the daemon
 * (preflight.c), which also kills us when its wall clock runs out.
 *
 * Design notes:
 * - One exec per document for now.  The per-document work is all in
 *   check_document(), for a later fork-per-document server.
 * - Order: options, close stray fds, diagnostics, rlimits, no_new_privs,
 *   library_init(), seccomp, the document.  ASan builds skip RLIMIT_AS and
 *   the filter: the sanitizer runtime needs address space and more calls.
 * - library_init() keeps a built-in PDF open: poppler builds its globals
 *   (scanning poppler-data) for the first open document and drops them with
 *   the last.  Nothing renders yet, so fontconfig never starts; rendering
 *   must render that page there too, to load fontconfig before the filter.
 * - The document goes to poppler_document_new_from_fd() as a copy above fd
 *   2 (given fd 0, poppler reads it into a memory cache), not mmap'd (which
 *   counts the whole file against RLIMIT_AS).
 * - Poppler prints "Out of memory" (libstdc++ "std::bad_alloc") on stderr
 *   and may go on.  glibc lets us replace the stderr stream: ours counts
 *   those, GLib's log handler counts its messages, and an out-of-memory
 *   count becomes preflight-too-complex.  At most DIAG_MAX_LINES lines reach
 *   fd 2, plus every out-of-memory line, always saying "Out of memory": the
 *   daemon looks for that when we die of SIGABRT.
 * - seccomp kills on anything off the allow-list (errno-style denials
 *   silently changed poppler's results).
 * - RLIMIT_FSIZE is 0 and SIGXFSZ ignored: stdout must be a pipe;
 *   diagnostics sent to a regular file are lost.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <glib.h>
#include <jansson.h>
#include <poppler.h>
#include <seccomp.h>

#include "pfcodes.h"

#define MIN_SIDE_PT 56.69      /* 20 mm */
#define DIAG_MAX_LINES 5       /* diagnostics passed on to fd 2 */

struct opts {
    unsigned long long memory; /* RLIMIT_AS, bytes */
    unsigned long cpu;         /* RLIMIT_CPU soft limit, seconds */
    int max_pages;
};

static struct {
    unsigned messages;         /* GLib log messages and stderr writes */
    unsigned oom;              /* those that said memory ran out */
    unsigned shown;            /* those passed on to fd 2 */
} diag;
static char diag_buf[1024];    /* the stderr stream's buffer: no malloc under OOM */

/* Parse a positive number up to max, with a K/M/G (1024-based) suffix when
 * sized: 0 / -1. */
static int parse_num(const char *s, bool sized, unsigned long long max, unsigned long long *out)
{
    const char *units = "KMG";
    unsigned long long v, mul = 1;
    char *end;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (sized && *end && strchr(units, *end))
        mul = 1ULL << (10 * (strchr(units, *end++) - units + 1));
    if (*s < '0' || *s > '9' || errno || *end || v == 0 || v > max / mul)
        return -1;
    *out = v * mul;
    return 0;
}

/* Fill o from argv; exits 2 with a usage line on a bad command line. */
static void parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"memory", required_argument, NULL, 'm'}, {"cpu", required_argument, NULL, 'c'},
        {"max-pages", required_argument, NULL, 'p'}, {NULL, 0, NULL, 0}};
    unsigned long long v;
    int c;

    *o = (struct opts){.memory = 512ULL << 20, .cpu = 30, .max_pages = 2000};
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'm' && parse_num(optarg, true, ULLONG_MAX, &v) == 0)
            o->memory = v;
        else if (c == 'c' && parse_num(optarg, false, 7 * 86400, &v) == 0)
            o->cpu = (unsigned long)v;
        else if (c == 'p' && parse_num(optarg, false, INT_MAX, &v) == 0)
            o->max_pages = (int)v;
        else
            break;
    }
    if (c != -1 || optind != argc) {
        fputs("usage: preflight [--memory BYTES] [--cpu SECONDS] [--max-pages N] < document.pdf\n",
              stderr);
        exit(2);
    }
}

/* Count one diagnostic; pass it on to fd 2 within the line budget. */
static void diag_note(const char *text, size_t len, bool oom)
{
    const char *tag = oom && !memmem(text, len, "Out of memory", 13) ? "Out of memory: " : "";

    diag.messages++;
    diag.oom += oom;
    if (diag.shown >= DIAG_MAX_LINES && !oom)
        return;
    diag.shown++;
    while (len > 0 && text[len - 1] == '\n')
        len--;
    dprintf(STDERR_FILENO, "preflight: %s%.*s\n", tag, (int)(len < 300 ? len : 300), text);
}

/* The stderr stream's write function (see the design notes). */
static ssize_t diag_stderr_write(void *cookie, const char *buf, size_t len)
{
    diag_note(buf, len, memmem(buf, len, "Out of memory", 13) || memmem(buf, len, "bad_alloc", 9));
    return (ssize_t)len;
}

/* GLib's log (poppler-glib's errors, GLib's own) goes here. */
static void diag_glib_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer p)
{
    diag_note(msg, strlen(msg), strcasestr(msg, "out of memory") != NULL);
}

/* Route stderr writes and GLib's log through diag_note(): 0 / -1. */
static int diag_init(void)
{
    FILE *f = fopencookie(NULL, "w", (cookie_io_functions_t){.write = diag_stderr_write});

    if (!f || setvbuf(f, diag_buf, _IOLBF, sizeof diag_buf) != 0)
        return -1;
    stderr = f;
    g_log_set_default_handler(diag_glib_log, NULL);
    return 0;
}

/* setrlimit, never above an inherited hard limit: 0 / -1. */
static int set_limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit cur, rl = {soft, hard};

    if (getrlimit(resource, &cur) == 0 && cur.rlim_max != RLIM_INFINITY)
        rl = (struct rlimit){MIN(soft, cur.rlim_max), MIN(hard, cur.rlim_max)};
    return setrlimit(resource, &rl);
}

/* The resource limits and no_new_privs: 0 / -1. */
static int sandbox_limits(const struct opts *o)
{
#ifndef COPEES_ASAN
    if (set_limit(RLIMIT_AS, o->memory, o->memory) < 0)
        return -1;
#endif
    if (set_limit(RLIMIT_CPU, o->cpu, o->cpu + 1) < 0 || set_limit(RLIMIT_NOFILE, 32, 32) < 0 ||
        set_limit(RLIMIT_CORE, 0, 0) < 0 || set_limit(RLIMIT_FSIZE, 0, 0) < 0)
        return -1;
    return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

/* Install the kill-by-default system call allow-list: 0 / -1. */
static int sandbox_filter(void)
{
#ifdef COPEES_ASAN
    return 0;
#else
    static const int allow[] = {
        SCMP_SYS(read), SCMP_SYS(pread64), SCMP_SYS(write), SCMP_SYS(writev), SCMP_SYS(lseek),
        SCMP_SYS(close), SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(fcntl), SCMP_SYS(munmap),
        SCMP_SYS(brk), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(futex), SCMP_SYS(getpid),
        SCMP_SYS(clock_gettime), SCMP_SYS(getrandom), SCMP_SYS(rt_sigreturn), SCMP_SYS(gettid),
        SCMP_SYS(rt_sigprocmask), SCMP_SYS(exit), SCMP_SYS(exit_group),
    };
    /* open read-only, never creating or truncating; map without exec;
     * signal only ourselves, and only to abort */
    const int rdonly = O_ACCMODE | O_CREAT | O_TRUNC;
    const struct { int nr; unsigned n; struct scmp_arg_cmp cmp[2]; } cond[] = {
        {SCMP_SYS(openat), 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, rdonly, O_RDONLY)}},
        {SCMP_SYS(mmap), 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)}},
        {SCMP_SYS(mprotect), 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)}},
        {SCMP_SYS(tgkill), 2, {SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)getpid()),
                               SCMP_A2(SCMP_CMP_EQ, SIGABRT)}},
    };
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    int rc = ctx ? 0 : -1;

    for (size_t i = 0; rc == 0 && i < G_N_ELEMENTS(allow); i++)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allow[i], 0);
    for (size_t i = 0; rc == 0 && i < G_N_ELEMENTS(cond); i++)
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, cond[i].nr, cond[i].n, cond[i].cmp);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc == 0 ? 0 : -1;
#endif
}

/* Start poppler on a built-in one-page PDF; the caller keeps the returned
 * document open for the process's life (see the design notes), or NULL. */
static PopplerDocument *library_init(void)
{
    static const char pdf[] =   /* xref offsets checked with qpdf --check */
        "%PDF-1.4\n"
        "1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> endobj\n"
        "xref\n0 4\n0000000000 65535 f \n0000000009 00000 n \n"
        "0000000058 00000 n \n0000000115 00000 n \n"
        "trailer << /Size 4 /Root 1 0 R >>\nstartxref\n186\n%%EOF\n";
    GBytes *bytes = g_bytes_new_static(pdf, sizeof pdf - 1);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, NULL);
    PopplerPage *page = doc ? poppler_document_get_page(doc, 0) : NULL;

    g_bytes_unref(bytes);
    if (!page)
        g_clear_object(&doc);
    else
        g_object_unref(page);
    return doc;
}

/* Append finding code with a printf-style detail to report. */
static void G_GNUC_PRINTF(3, 4) finding_add(json_t *report, enum pf_code code, const char *fmt, ...)
{
    char detail[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_array_append_new(json_object_get(report, "findings"),
                          json_pack("{s:s, s:s}", "code", pf_codes[code].name, "detail", detail));
}

/* A length in points rounded to 0.1 pt (no libm); 0 for nonsense. */
static double round_tenth(double v)
{
    return v > 0 && v < 1e9 ? (double)(long long)(v * 10 + 0.5) / 10 : 0;
}

/* Load pages 0..n-1: distinct sizes into page_sizes, page-missing and
 * page-too-small findings (one each, naming the first such page). */
static void check_pages(PopplerDocument *doc, int n, json_t *report)
{
    struct size { double w, h; } sz, small_sz = {0, 0};
    GArray *seen = g_array_new(FALSE, FALSE, sizeof sz);
    int missing = 0, first_missing = 0, small = 0, first_small = 0;

    for (int i = 0; i < n; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        guint j;

        if (!page) {
            if (missing++ == 0)
                first_missing = i + 1;
            continue;
        }
        poppler_page_get_size(page, &sz.w, &sz.h);     /* crop box, after /Rotate */
        g_object_unref(page);
        if (!(sz.w >= MIN_SIDE_PT && sz.h >= MIN_SIDE_PT) && small++ == 0) {
            first_small = i + 1;
            small_sz = sz;
        }
        sz.w = round_tenth(sz.w);
        sz.h = round_tenth(sz.h);
        for (j = 0; j < seen->len; j++)     /* rounded sizes compare exactly */
            if (!memcmp(&g_array_index(seen, struct size, j), &sz, sizeof sz))
                break;
        if (j == seen->len) {
            g_array_append_val(seen, sz);
            json_array_append_new(json_object_get(report, "page_sizes"),
                                  json_pack("[f, f]", sz.w, sz.h));
        }
    }
    g_array_free(seen, TRUE);
    if (missing)
        finding_add(report, PF_PAGE_MISSING, "page %d cannot be loaded (%d of %d pages)",
                    first_missing, missing, n);
    if (small)
        finding_add(report, PF_PAGE_TOO_SMALL, "page %d is %.1f x %.1f pt (%d of %d pages "
                    "under 20 mm)", first_small, small_sz.w, small_sz.h, small, n);
}

/* Check the PDF on fd (taken over and closed) within o's limits, filling
 * report (made empty by main()); 0, or -1 with errno when it cannot. */
static int check_document(int fd, const struct opts *o, json_t *report)
{
    GError *err = NULL;
    PopplerDocument *doc;
    int n;

    if (fd <= STDERR_FILENO) {  /* see the design notes */
        int copy = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        close(fd);
        if (copy < 0)
            return -1;
        fd = copy;
    }
    doc = poppler_document_new_from_fd(fd, NULL, &err);    /* owns fd, even on failure */
    if (!doc) {
        if (g_error_matches(err, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED))
            finding_add(report, PF_ENCRYPTED, "a user password is needed to open it");
        else
            finding_add(report, PF_NOT_A_PDF, "cannot open: %s", err ? err->message : "no reason");
        g_clear_error(&err);
    } else {
        if (!(poppler_document_get_permissions(doc) & POPPLER_PERMISSIONS_OK_TO_PRINT))
            finding_add(report, PF_PRINT_NOT_PERMITTED, "its permissions do not allow printing");
        n = MAX(poppler_document_get_n_pages(doc), 0);
        json_object_set_new(report, "pages", json_integer(n));
        if (n == 0)
            finding_add(report, PF_NO_PAGES, "the document has no pages");
        else if (n > o->max_pages)
            finding_add(report, PF_TOO_MANY_PAGES, "%d pages, over the limit of %d", n,
                        o->max_pages);
        else
            check_pages(doc, n, report);
        g_object_unref(doc);
    }
    if (diag.oom)
        finding_add(report, PF_PREFLIGHT_TOO_COMPLEX, "the PDF library ran out of memory "
                    "(count %u)", diag.oom);
    return 0;
}

/* Write report as one compact line to stdout with write(2), not stdio
 * (which asks isatty(), off the allow-list, on a character device): 0 / -1. */
static int report_write(const json_t *report)
{
    char *text = json_dumps(report, JSON_COMPACT | JSON_REAL_PRECISION(10));
    size_t len = text ? strlen(text) : 0, done = 0;
    ssize_t n = 0;

    if (!text)
        return -1;
    text[len++] = '\n';        /* over the NUL: text is no string from here */
    while (done < len && ((n = write(STDOUT_FILENO, text + done, len - done)) > 0 ||
                          (n < 0 && errno == EINTR)))
        done += n > 0 ? (size_t)n : 0;
    free(text);
    return done == len ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    PopplerDocument *warm;
    json_t *report;
    int rc = 1;

    parse_opts(argc, argv, &o);
    signal(SIGXFSZ, SIG_IGN);
    close_range(STDERR_FILENO + 1, ~0U, 0);     /* nothing inherited beyond 0-2 */
    if (diag_init() < 0 || sandbox_limits(&o) < 0) {
        dprintf(STDERR_FILENO, "preflight: cannot set up the sandbox: %s\n", strerror(errno));
        return 1;
    }
    warm = library_init();
    /* an empty report, made before the filter: jansson seeds its hashing here */
    report = json_pack("{s:i, s:[], s:[], s:i, s:[]}", "pages", 0, "page_sizes", "findings",
                       "color_pages", 0, "color_page_list");
    if (!warm || !report)
        dprintf(STDERR_FILENO, "preflight: cannot start the PDF library\n");
    else if (sandbox_filter() < 0)
        dprintf(STDERR_FILENO, "preflight: cannot install the system call filter\n");
    else if (check_document(STDIN_FILENO, &o, report) < 0)
        dprintf(STDERR_FILENO, "preflight: cannot read the document: %s\n", strerror(errno));
    else if (report_write(report) < 0)
        dprintf(STDERR_FILENO, "preflight: cannot write the report\n");
    else
        rc = 0;
    if (diag.messages > diag.shown)
        dprintf(STDERR_FILENO, "preflight: %u diagnostics not shown\n", diag.messages - diag.shown);
    json_decref(report);
    g_clear_object(&warm);
    return rc;
}
