/* preflight.h - the daemon's side of preflight: sends each committed
 * document to the sandboxed helper server and turns its findings into a
 * verdict.  The daemon never parses a PDF itself. */
#ifndef COPEES_PREFLIGHT_H
#define COPEES_PREFLIGHT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

struct job;

/* The verdict: report is the job's "preflight" object (pages, page_sizes,
 * color_pages, color_page_list, warnings, reasons); reject when any reason
 * is a reject under the current [preflight] on_<code> settings. */
typedef void (*preflight_done_fn)(int64_t job_id, json_t *report, bool reject, void *arg);

/* Start the helper server now rather than for the first document, so
 * that its start-up (poppler, fontconfig) is not in that document's time.
 * A failure is logged; documents then retry. */
void preflight_start(void);
/* Queue a preflight of the document at fd (read-only, taken over) for
 * job_id; ticket (read now, not kept) gives the media and colour ordered.
 * done runs on the loop, never before this returns, with a new report
 * reference it owns.  At most [preflight] workers documents are checked
 * at once. */
void preflight_submit(int64_t job_id, int fd, const struct job *ticket, preflight_done_fn done,
                      void *arg);
/* A child exited (from the SIGCHLD handler): true when it was ours. */
bool preflight_child_exited(pid_t pid, int status);
/* Preflights queued or running. */
int preflight_pending(void);
/* Kill the helper server and its children (shutdown). */
void preflight_kill_all(void);

#endif
