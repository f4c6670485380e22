/* preflight.h - the daemon's side of preflight: runs the sandboxed helper
 * on one committed document and turns its findings into a verdict.  The
 * daemon never parses a PDF itself. */
#ifndef COPEES_PREFLIGHT_H
#define COPEES_PREFLIGHT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

/* The verdict: report is the job's "preflight" object (pages, page_sizes,
 * color_pages, color_page_list, warnings, reasons); reject when any reason
 * is a reject under the current [preflight] on_<code> settings. */
typedef void (*preflight_done_fn)(int64_t job_id, json_t *report, bool reject, void *arg);

/* Queue a preflight of the document at fd (read-only, taken over) for
 * job_id; done runs on the loop with a new report reference it owns.  At
 * most [preflight] workers helpers run at once. */
void preflight_submit(int64_t job_id, int fd, preflight_done_fn done, void *arg);
/* A child exited (from the SIGCHLD handler): true when it was ours. */
bool preflight_child_exited(pid_t pid, int status);
/* Preflights queued or running. */
int preflight_pending(void);
/* Kill running helpers (shutdown). */
void preflight_kill_all(void);

#endif
