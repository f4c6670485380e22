/* preflight-scan.c - the raw bytes of a document, read before poppler
 * opens it (see preflight-scan.h).
 *
 * Design notes: poppler-glib does not see every action (document-level
 * /OpenAction JavaScript, for one), so the file's bytes are scanned for
 * the names /JavaScript, /JS, /Launch, /EmbeddedFile(s) and
 * /FileAttachment.  They only make warnings; a name inside a compressed
 * object stream is left to poppler's own scan, and a name spelled with #xx
 * escapes is not seen.  The scan reads with pread in 64 KiB chunks that
 * overlap by 64 bytes, so no name is cut in two.
 * - The colour map's row test (pfc_row_has_color) reads every pixel of a
 *   grey page, 31,000 of them for an A4 page at 18 dpi.  Written plainly
 *   gcc -O2 leaves it scalar, about 2 ns a pixel: 3% of a one-page
 *   check.  On x86-64 it takes four pixels at a time with SSE2 (which
 *   every x86-64 has): the largest and the smallest channel with byte
 *   max/min, their difference less the threshold with saturating
 *   subtraction, any byte left over means colour.  Elsewhere the plain
 *   loop; tests/unit-preflight.c holds both to the same answers.
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "preflight-scan.h"

#define SCAN_CHUNK 65536
#define N_ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

/* Does a PDF name end at p: a delimiter, white space, or the buffer's end? */
static bool name_ends(const char *p, const char *end)
{
    return p >= end || strchr(" \t\r\n\f/<>[]()%{}", *p) != NULL || *p == '\0';
}

void pfc_scan_chunk(const char *buf, size_t len, bool knobs, struct pfc_scan *s)
{
    static const struct { const char *name; bool prefix; int what; } names[] = {
        {"/JavaScript", false, 0}, {"/JS", false, 0}, {"/Launch", false, 1},
        {"/EmbeddedFile", true, 2}, {"/FileAttachment", false, 2},
    };
    const char *end = buf + len;

    for (const char *p = buf; (p = memchr(p, '/', (size_t)(end - p))) != NULL; p++)
        for (size_t i = 0; i < N_ELEMENTS(names); i++) {
            size_t n = strlen(names[i].name);
            if ((size_t)(end - p) < n || memcmp(p, names[i].name, n) != 0 ||
                !(names[i].prefix || name_ends(p + n, end)))
                continue;
            *(names[i].what == 0 ? &s->javascript : names[i].what == 1 ? &s->launch
                                                                       : &s->attachment) = true;
        }
    if (!knobs)
        return;
    for (const char *p = buf; (p = memmem(p, (size_t)(end - p), "%copees-knob:", 13)) != NULL; p++) {
        size_t k = 0;
        for (p += 13; p < end && k + 1 < sizeof s->knob && (isalnum((unsigned char)*p) || *p == '='); p++)
            s->knob[k++] = *p;
        s->knob[k] = '\0';
    }
}

void pfc_scan_file(int fd, bool knobs, struct pfc_scan *s)
{
    static char buf[SCAN_CHUNK];
    const size_t overlap = 64;
    off_t off = 0;
    ssize_t n;

    memset(s, 0, sizeof *s);
    while ((n = pread(fd, buf, sizeof buf, off)) > 0) {
        pfc_scan_chunk(buf, (size_t)n, knobs, s);
        if ((size_t)n < sizeof buf)
            break;
        off += (off_t)(sizeof buf - overlap);
    }
}

/* The pixel's largest channel less its smallest, above chroma? */
static inline unsigned pixel_is_color(uint32_t p, int chroma)
{
    int r = (int)(p >> 16 & 0xff), g = (int)(p >> 8 & 0xff), b = (int)(p & 0xff);
    int hi = r > g ? r : g, lo = r < g ? r : g;

    hi = hi > b ? hi : b;
    lo = lo < b ? lo : b;
    return (unsigned)(hi - lo > chroma);
}

bool pfc_row_has_color_plain(const uint32_t *row, int n, int chroma)
{
    unsigned any = 0;

    for (int x = 0; x < n; x++)
        any |= pixel_is_color(row[x], chroma);
    return any != 0;
}

bool pfc_row_has_color(const uint32_t *row, int n, int chroma)
{
    int x = 0;
#ifdef __SSE2__
    if (chroma < 0 || chroma > 254)            /* outside what a byte compares */
        return pfc_row_has_color_plain(row, n, chroma);
    /* bytes of a pixel, lowest first: blue, green, red, unused */
    const __m128i low = _mm_set1_epi32(0xff), limit = _mm_set1_epi8((char)chroma);
    __m128i any = _mm_setzero_si128();

    for (; x + 4 <= n; x += 4) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(row + x));
        __m128i g = _mm_srli_epi32(v, 8), r = _mm_srli_epi32(v, 16);
        __m128i hi = _mm_max_epu8(_mm_max_epu8(v, g), r), lo = _mm_min_epu8(_mm_min_epu8(v, g), r);
        any = _mm_or_si128(any, _mm_and_si128(_mm_subs_epu8(_mm_subs_epu8(hi, lo), limit), low));
    }
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) != 0xffff)
        return true;
#endif
    return pfc_row_has_color_plain(row + x, n - x, chroma);
}

#ifdef COPEES_TEST_KNOBS
void pfc_knob_run(const char *knob, unsigned long long memory)
{
    volatile unsigned long spin = 0;

    if (strcmp(knob, "spin") == 0) {
        for (;;)
            spin++;
    } else if (strncmp(knob, "slow=", 5) == 0) {        /* busy for N ms, then go on */
        struct timespec t0, t;
        long ms = atol(knob + 5);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        do {
            spin++;
            clock_gettime(CLOCK_MONOTONIC, &t);
        } while ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 < ms);
    } else if (strcmp(knob, "crash") == 0) {
        *(volatile int *)(uintptr_t)spin = 1;            /* SIGSEGV */
    } else if (strcmp(knob, "abort") == 0) {
        abort();
    } else if (strcmp(knob, "oom") == 0) {              /* like poppler's gmalloc */
        /* allocate until RLIMIT_AS refuses (or the budget, where there is
         * no limit); a byte touched per block, not every page: the limit
         * counts address space, and touching 256 MB took over a second of
         * page faults on a slow guest, near the test's 2 s timeout */
        unsigned long long budget = memory ? memory : 1ULL << 30, used = 0;
        char *p;
        while (used < budget && (p = malloc(16 << 20)) != NULL) {
            *(volatile char *)p = 1;
            used += 16 << 20;
        }
        fputs("Out of memory\n", stderr);
        fflush(stderr);
        abort();
    } else if (strcmp(knob, "socket") == 0) {           /* forbidden: SIGSYS */
        close(socket(AF_INET, SOCK_STREAM, 0));
    } else if (strcmp(knob, "write") == 0) {            /* forbidden: SIGSYS */
        FILE *f = fopen("/tmp/copees-knob-write", "w");
        if (f)
            fclose(f);
    } else if (strcmp(knob, "exec") == 0) {             /* forbidden: SIGSYS */
        execl("/bin/true", "true", (char *)NULL);
    } else if (strcmp(knob, "tgkill") == 0) {           /* another pid: SIGSYS */
        const pid_t none = 4194303;                      /* PID_MAX_LIMIT - 1: unused */
        syscall(SYS_tgkill, none, none, SIGABRT);
    }
}
#endif
