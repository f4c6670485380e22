/* util.c - time, size and duration parsing, random names, directory fsync. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int64_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *time_rfc3339(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
        (*p)++;
    }
    *out = v;
    return 0;
}

int time_parse_rfc3339(const char *s, int64_t *out)
{
    const char *p = s;
    int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
    struct tm tm;

    if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
        digits(&p, 2, &D) || (*p != 'T' && *p != 't' && *p != ' '))
        return -1;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m) || *p++ != ':' ||
        digits(&p, 2, &sec))
        return -1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p == '+' ? 1 : -1;
        p++;
        if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    if (*p != '\0' || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
        return -1;
    memset(&tm, 0, sizeof tm);
    tm.tm_year = Y - 1900;
    tm.tm_mon = M - 1;
    tm.tm_mday = D;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = sec;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    /* timegm normalises 31 Feb into March: refuse such dates. */
    struct tm chk;
    gmtime_r(&t, &chk);
    if (chk.tm_mday != D && sec != 60)
        return -1;
    *out = (int64_t)t - sign * (oh * 3600 + om * 60);
    return 0;
}

int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int parse_size(const char *s, uint64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    uint64_t mul = 1;
    switch (*end) {
    case '\0': break;
    case 'K': case 'k': mul = 1024ULL; end++; break;
    case 'M': case 'm': mul = 1024ULL * 1024; end++; break;
    case 'G': case 'g': mul = 1024ULL * 1024 * 1024; end++; break;
    case 'T': case 't': mul = 1024ULL * 1024 * 1024 * 1024; end++; break;
    default: return -1;
    }
    if (*end == 'B' || *end == 'b')
        end++;
    if (*end != '\0' || (v && mul > UINT64_MAX / v))
        return -1;
    *out = (uint64_t)v * mul;
    return 0;
}

int parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return -1;
    int64_t mul;
    if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        mul = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        mul = 86400 * 1000LL;
    else
        return -1;
    if (v > INT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

void random_hex(char *buf, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    size_t done = 0;

    if (nbytes > sizeof raw)
        nbytes = sizeof raw;
#ifdef HAVE_ARC4RANDOM_BUF
    arc4random_buf(raw, nbytes);     /* seeded and reseeded by getrandom; fork-safe */
    done = nbytes;
#endif
    while (done < nbytes) {
        ssize_t n = getrandom(raw + done, nbytes - done, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            abort();   /* no entropy source at all: nothing sane to do */
        }
        done += (size_t)n;
    }
    for (size_t i = 0; i < nbytes; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
    }
    buf[2 * nbytes] = '\0';
}

int fsync_dirfd(int dirfd)
{
    if (fsync(dirfd) < 0 && errno != EINVAL)
        return -1;
    return 0;
}

int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync_dirfd(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int xsnprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return (n < 0 || (size_t)n >= len) ? -1 : 0;
}

char *xstrlcpy(char *dst, const char *src, size_t len)
{
    if (len == 0)
        return dst;
    size_t n = strlen(src);
    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
    return dst;
}

int64_t backoff_s(int tries, int64_t first, int64_t max)
{
    int64_t wait = first;
    for (int i = 0; i < tries && wait < max; i++)
        wait *= 2;
    return wait < max ? wait : max;
}

#ifdef COPEES_TEST_KNOBS
/* The position of point in COPEES_TEST_FAULT's comma-separated list, or
 * -1 when it is not there. */
static int fault_index(const char *point)
{
    const char *f = getenv("COPEES_TEST_FAULT");
    size_t n = strlen(point);
    for (int i = 0; f && *f; i++) {
        size_t len = strcspn(f, ",");
        if (len == n && strncmp(f, point, n) == 0)
            return i;
        f += len + (f[len] == ',');
    }
    return -1;
}
#endif

bool fault_once(const char *point)
{
#ifdef COPEES_TEST_KNOBS
    static atomic_uint fired;          /* one bit per position in the list */
    int i = fault_index(point);
    if (i < 0 || i >= 32)
        return false;
    return !(atomic_fetch_or(&fired, 1u << i) & (1u << i));
#else
    (void)point;
    return false;
#endif
}

void fault_pause(const char *point)
{
#ifdef COPEES_TEST_KNOBS
    const char *file = getenv("COPEES_TEST_PAUSE");
    if (!file || !*file || !fault_once(point))
        return;
    int fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    for (int i = 0; i < 1200 && access(file, F_OK) == 0; i++)
        usleep(50 * 1000);
#else
    (void)point;
#endif
}

bool fault_always(const char *point)
{
#ifdef COPEES_TEST_KNOBS
    return fault_index(point) >= 0;
#else
    (void)point;
    return false;
#endif
}

void fault_point(const char *point)
{
#ifdef COPEES_TEST_KNOBS
    if (fault_index(point) >= 0)
        _exit(86);
#else
    (void)point;
#endif
}
