/* log.h - the daemon's one logging door.
 *
 * Lines go to stderr, or to the journal with structured fields when
 * JOURNAL_STREAM says stderr is the journal.  A line starts with its module
 * ("spool: ...") and never carries customer data (no order reference, no
 * document content): only job ids, printer names, sizes and codes.
 */
#ifndef COPEES_LOG_H
#define COPEES_LOG_H

#include <stdint.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/* Set up once at start: debug enables LOG_LVL_DEBUG lines. */
void log_init(const char *ident, int debug);
/* A line about no job or printer. */
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about a job (id > 0) and/or a printer (name or NULL); both become
 * journal fields COPEES_JOB= / COPEES_PRINTER= and a "[job N]" prefix. */
void log_job(enum log_level lvl, int64_t job_id, const char *printer, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Print "copeesd: FATAL ..." and exit(1); only at startup or on a broken
 * internal invariant. */
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
