/* log.c - stderr or journal logging (see log.h).
 *
 * Design notes: under systemd, JOURNAL_STREAM names the device and inode of
 * the journal stream; when stderr is that stream we send structured entries
 * with sd_journal_sendv() (fields COPEES_JOB, COPEES_PRINTER, PRIORITY,
 * SYSLOG_IDENTIFIER), else we write plain lines to stderr with a level
 * prefix.  Both carry the same "[job N printer P]" prefix, so journalctl's
 * plain view reads like stderr.  Lines are formatted into fixed buffers (no
 * allocation of ours) and a log call never fails.  libsystemd sends each entry
 * as one datagram to /run/systemd/journal/socket (tests/journal.sh listens
 * there in a private mount namespace).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
/* CODE_FILE= would always name this file: leave it out. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
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

/* The "[job N printer P] " prefix of a line (empty for neither). */
static void prefix_of(char *buf, size_t len, int64_t job, const char *printer)
{
    if (job > 0 && printer)
        snprintf(buf, len, "[job %lld printer %s] ", (long long)job, printer);
    else if (job > 0)
        snprintf(buf, len, "[job %lld] ", (long long)job);
    else if (printer)
        snprintf(buf, len, "[printer %s] ", printer);
    else
        buf[0] = '\0';
}

static void emit(enum log_level lvl, int64_t job, const char *printer, const char *fmt, va_list ap)
{
    char msg[1024], prefix[160];

    if (lvl == LOG_LVL_DEBUG && !debug_on)
        return;
    vsnprintf(msg, sizeof msg, fmt, ap);
    prefix_of(prefix, sizeof prefix, job, printer);
    if (use_journal) {
        /* Fields are built here and sent as they are (sd_journal_sendv):
         * nothing in them is ever read as a format. */
        char mf[sizeof msg + sizeof prefix + 8], pri[16], ident[80], jf[40], pf[100];
        struct iovec iov[5];
        int n = 0;
        snprintf(mf, sizeof mf, "MESSAGE=%s%s", prefix, msg);
        snprintf(pri, sizeof pri, "PRIORITY=%d", (int)lvl);
        snprintf(ident, sizeof ident, "SYSLOG_IDENTIFIER=%s", log_ident);
        iov[n++] = (struct iovec){mf, strlen(mf)};
        iov[n++] = (struct iovec){pri, strlen(pri)};
        iov[n++] = (struct iovec){ident, strlen(ident)};
        if (job > 0) {
            snprintf(jf, sizeof jf, "COPEES_JOB=%lld", (long long)job);
            iov[n++] = (struct iovec){jf, strlen(jf)};
        }
        if (printer) {
            snprintf(pf, sizeof pf, "COPEES_PRINTER=%s", printer);
            iov[n++] = (struct iovec){pf, strlen(pf)};
        }
        sd_journal_sendv(iov, n);
        return;
    }
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
