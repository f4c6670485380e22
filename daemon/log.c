/* log.c - stderr or journal logging (see log.h).
 *
 * Design notes: under systemd, JOURNAL_STREAM names the device and inode of
 * the journal stream; when stderr is that stream we send structured entries
 * with sd_journal_send() (fields COPEES_JOB, COPEES_PRINTER), else we write
 * plain lines to stderr with a level prefix.  Lines are formatted into a
 * fixed buffer: a log call never allocates and never fails.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-journal.h>

#include "log.h"

static int use_journal;
static int debug_on;
static const char *log_ident = "copeesd";

static int stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;

    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
        return 0;
    if (fstat(STDERR_FILENO, &st) < 0)
        return 0;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *ident, int debug)
{
    if (ident)
        log_ident = ident;
    debug_on = debug;
    use_journal = stderr_is_journal();
}

static const char *level_name(enum log_level lvl)
{
    switch (lvl) {
    case LOG_LVL_ERR: return "error";
    case LOG_LVL_WARN: return "warning";
    case LOG_LVL_INFO: return "info";
    default: return "debug";
    }
}

static void emit(enum log_level lvl, int64_t job, const char *printer, const char *fmt, va_list ap)
{
    char msg[1024], prefix[160] = "";

    if (lvl == LOG_LVL_DEBUG && !debug_on)
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    if (use_journal) {
        char jf[40] = "", pf[100] = "";
        if (job > 0)
            snprintf(jf, sizeof jf, "COPEES_JOB=%lld", (long long)job);
        if (printer)
            snprintf(pf, sizeof pf, "COPEES_PRINTER=%s", printer);
        if (job > 0 && printer)
            sd_journal_send("MESSAGE=[job %lld] %s", (long long)job, msg, "PRIORITY=%d", (int)lvl,
                            "SYSLOG_IDENTIFIER=%s", log_ident, jf, pf, NULL);
        else if (job > 0)
            sd_journal_send("MESSAGE=[job %lld] %s", (long long)job, msg, "PRIORITY=%d", (int)lvl,
                            "SYSLOG_IDENTIFIER=%s", log_ident, jf, NULL);
        else if (printer)
            sd_journal_send("MESSAGE=[printer %s] %s", printer, msg, "PRIORITY=%d", (int)lvl,
                            "SYSLOG_IDENTIFIER=%s", log_ident, pf, NULL);
        else
            sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", (int)lvl,
                            "SYSLOG_IDENTIFIER=%s", log_ident, NULL);
        return;
    }
    if (job > 0 && printer)
        snprintf(prefix, sizeof prefix, "[job %lld printer %s] ", (long long)job, printer);
    else if (job > 0)
        snprintf(prefix, sizeof prefix, "[job %lld] ", (long long)job);
    else if (printer)
        snprintf(prefix, sizeof prefix, "[printer %s] ", printer);
    fprintf(stderr, "%s: %s: %s%s\n", log_ident, level_name(lvl), prefix, msg);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(lvl, 0, NULL, fmt, ap);
    va_end(ap);
}

void log_job(enum log_level lvl, int64_t job_id, const char *printer, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(lvl, job_id, printer, fmt, ap);
    va_end(ap);
}

void fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(LOG_LVL_ERR, 0, NULL, fmt, ap);
    va_end(ap);
    exit(1);
}
