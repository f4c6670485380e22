/* util.h - small helpers shared by the daemon's modules (no library doors). */
#ifndef COPEES_UTIL_H
#define COPEES_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/types.h>

/* Wall-clock now, seconds since the epoch. */
int64_t now_s(void);
/* Monotonic now, milliseconds. */
int64_t mono_ms(void);

/* Format t (seconds since epoch, UTC) as RFC 3339 "2026-11-24T10:01:02Z"
 * into buf (>= 32 bytes). Returns buf. */
char *time_rfc3339(int64_t t, char *buf, size_t len);
/* Parse an RFC 3339 date-time with Z or +hh:mm/-hh:mm offset (fractional
 * seconds accepted and dropped). 0 on success with *out set, -1 if bad. */
int time_parse_rfc3339(const char *s, int64_t *out);

/* An unsigned decimal that is all of s (no sign, no blank). 0 / -1. */
int parse_u64(const char *s, uint64_t *out);
/* "512M", "1G", "300K", "1024" -> bytes (1024-based). 0 / -1. */
int parse_size(const char *s, uint64_t *out);
/* "30s", "50ms", "12h", "7d", "4m" -> milliseconds. A bare number is
 * seconds. 0 / -1. */
int parse_duration_ms(const char *s, int64_t *out);

/* Fill buf with 2*nbytes random lowercase hex digits + NUL (getrandom). */
void random_hex(char *buf, size_t nbytes);

/* fsync a directory by path. 0 / -1 (errno). */
int fsync_dir(const char *path);
/* fsync a directory fd. 0 / -1 (errno). */
int fsync_dirfd(int dirfd);

/* snprintf that reports truncation: 0 if it fit, -1 otherwise. */
int xsnprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Copy src into dst (size len), always NUL-terminated; returns dst. */
char *xstrlcpy(char *dst, const char *src, size_t len);
/* The wait before try number tries+1 of something that failed tries
 * times: first, doubling with each failure, at most max. */
int64_t backoff_s(int tries, int64_t first, int64_t max);

/* Test builds (--enable-test-knobs, the default; packages build with
 * --disable-test-knobs): when COPEES_TEST_FAULT names this point (it may
 * list several, comma-separated), the process dies at once with status 86
 * (crash tests).  A no-op otherwise. */
void fault_point(const char *point);
/* Test builds: true the first time it is called for the point that
 * COPEES_TEST_FAULT names (a failure to simulate once), false otherwise
 * and always in packages. */
bool fault_once(const char *point);
/* Test builds: true every time while COPEES_TEST_FAULT names the point (a
 * failure that persists); false otherwise and always in packages. */
bool fault_always(const char *point);
/* Test builds: the first time COPEES_TEST_FAULT names this point, create
 * the file COPEES_TEST_PAUSE names and block the calling thread until the
 * test removes it (60 s at most): the test acts in that window (stops
 * cupsd, for one).  A no-op otherwise. */
void fault_pause(const char *point);

#endif
