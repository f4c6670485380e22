/* report.h - the copees backend's reports to copeesd (report.c):
 * POST /v1/backend/events over copeesd's Unix socket.
 *
 * Every function accepts a NULL report and then does nothing, so that a
 * job that is not copeesd's is simply not reported. */
#ifndef COPEES_BACKEND_REPORT_H
#define COPEES_BACKEND_REPORT_H

#include <poll.h>
#include <stdint.h>

struct report;

/* A reporter for one CUPS job: job_name is CUPS's job-name (argv[3]),
 * copees-<instance>-<id>; socket_path is copeesd's socket.  NULL when the
 * job is not one of copeesd's (or the path cannot be a socket's; said on
 * stderr as DEBUG:). */
struct report *report_new(const char *socket_path, const char *job_name, const char *cups_job_id);
void report_free(struct report *r);

/* The count of impressions printed so far changed (now_ms: monotonic).
 * Sent at once when no report is under way and the last one started at
 * least REPORT_INTERVAL_MS ago, else later through the poll loop. */
void report_pages(struct report *r, int pages, int64_t now_ms);

/* Poll loop integration: report_poll_fd() fills *pfd (fd -1 when nothing
 * to wait for) and lowers *timeout_ms (-1 = none) to when report_step()
 * must run next; report_step() goes on with the report under way or
 * starts a due one, given pfd->revents. */
void report_poll_fd(const struct report *r, struct pollfd *pfd, int *timeout_ms, int64_t now_ms);
void report_step(struct report *r, short revents, int64_t now_ms);

/* The final report: the exit code the backend exits with and a short
 * message (no customer data; NULL for none).  Waits for copeesd's answer
 * at most REPORT_EXIT_TIMEOUT_MS; a report under way is given up. */
void report_exit(struct report *r, int exit_status, const char *message);

#define REPORT_INTERVAL_MS 500
#define REPORT_TIMEOUT_MS 1000
#define REPORT_EXIT_TIMEOUT_MS 2000

/* Monotonic milliseconds. */
int64_t report_now_ms(void);

#endif
