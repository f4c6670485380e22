/* cover.c - the cover sheet: a one-page PDF sent as its own CUPS job just
 * before the job (cupslink.c says why), so staff can match printed stacks
 * to delivery bags.
 *
 * Design notes: the page is written by hand (a dozen lines of PDF with the
 * standard Helvetica font, which every PDF consumer has), so no drawing
 * library enters the daemon for it.  It carries the job id, the delivery
 * slot (the 30-minute slot that ends at the job's due time, local time),
 * copies and page count -- never the order reference or anything else
 * that names the customer.  The page has the job's media size (parsed from
 * the PWG self-describing name; A4 when it cannot be).  The bytes go to an
 * anonymous memory file (memfd), nothing touches the disk.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "cover.h"
#include "job.h"
#include "util.h"

/* Page size in points from a PWG self-describing media name
 * ("iso_a4_210x297mm", "na_letter_8.5x11in"); 0 / -1. */
int cover_media_points(const char *media, double *w, double *h)
{
    const char *us = media ? strrchr(media, '_') : NULL;
    char *x, *end;
    if (!us)
        return -1;
    double a = strtod(us + 1, &x);
    if (x == us + 1 || *x != 'x')
        return -1;
    double b = strtod(x + 1, &end);
    if (end == x + 1 || a <= 0 || b <= 0)
        return -1;
    double unit;
    if (strcmp(end, "mm") == 0)
        unit = 72.0 / 25.4;
    else if (strcmp(end, "in") == 0)
        unit = 72.0;
    else
        return -1;
    *w = a * unit;
    *h = b * unit;
    return 0;
}

/* The delivery slot text "HH:MM-HH:MM, YYYY-MM-DD" for due. */
static void slot_text(int64_t due, char *buf, size_t len)
{
    time_t end = (time_t)due, start = (time_t)(due - 30 * 60);
    struct tm ts, te;
    localtime_r(&start, &ts);
    localtime_r(&end, &te);
    snprintf(buf, len, "%02d:%02d-%02d:%02d, %04d-%02d-%02d", ts.tm_hour, ts.tm_min, te.tm_hour,
             te.tm_min, te.tm_year + 1900, te.tm_mon + 1, te.tm_mday);
}

int cover_sheet_render(const struct job *j, char *buf, size_t len)
{
    double w = 595.28, h = 841.89;
    char slot[64], content[1024];
    cover_media_points(j->media, &w, &h);
    slot_text(j->due, slot, sizeof slot);
    double x = 56, y = h - 120;
    int clen = snprintf(content, sizeof content,
                        "BT /F1 40 Tf %.1f %.1f Td (copees job %lld) Tj ET\n"
                        "BT /F1 20 Tf %.1f %.1f Td (Delivery slot: %s) Tj ET\n"
                        "BT /F1 20 Tf %.1f %.1f Td (Copies: %d    Pages: %d) Tj ET\n"
                        "BT /F1 12 Tf %.1f %.1f Td (Media: %s, %s, %s) Tj ET\n",
                        x, y, (long long)j->id, x, y - 50, slot, x, y - 80, j->copies, j->pages,
                        x, y - 110, j->media, j->sides, j->color);
    if (clen < 0 || (size_t)clen >= sizeof content)
        return -1;
    /* Objects: 1 catalog, 2 pages, 3 page, 4 font, 5 content. */
    size_t off[6];
    int n = 0, r;
#define PUT(...)                                                        \
    do {                                                                \
        r = snprintf(buf + n, len > (size_t)n ? len - (size_t)n : 0, __VA_ARGS__); \
        if (r < 0 || (size_t)(n + r) >= len)                            \
            return -1;                                                  \
        n += r;                                                         \
    } while (0)
    PUT("%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n");
    off[1] = (size_t)n;
    PUT("1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = (size_t)n;
    PUT("2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
    off[3] = (size_t)n;
    PUT("3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.2f %.2f] "
        "/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>\nendobj\n", w, h);
    off[4] = (size_t)n;
    PUT("4 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
        "/Encoding /WinAnsiEncoding >>\nendobj\n");
    off[5] = (size_t)n;
    PUT("5 0 obj\n<< /Length %d >>\nstream\n%sendstream\nendobj\n", clen, content);
    int xref = n;
    PUT("xref\n0 6\n0000000000 65535 f \n");
    for (int i = 1; i <= 5; i++)
        PUT("%010zu 00000 n \n", off[i]);
    PUT("trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", xref);
#undef PUT
    return n;
}

int cover_sheet_fd(const struct job *j)
{
    char buf[4096];
    int n = cover_sheet_render(j, buf, sizeof buf);
    if (n < 0) {
        errno = EOVERFLOW;
        return -1;
    }
    int fd = memfd_create("copees-cover", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t done = 0;
    while (done < (size_t)n) {
        ssize_t w = write(fd, buf + done, (size_t)n - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        done += (size_t)w;
    }
    if (lseek(fd, 0, SEEK_SET) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}
