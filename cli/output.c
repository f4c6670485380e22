/* output.c - copeesctl's lines, in lpstat's shapes (see ctl.h).
 *
 * Design notes: the first line of every entry is lpstat's own, so that
 * what admins and scripts know from CUPS reads the same here:
 *   job      "%-23s %-13s %8lld   %s"  (DEST-ID, order, bytes, date)
 *   printer  "printer NAME is idle.  enabled since DATE"
 *            "printer NAME now printing DEST-ID.  enabled since DATE"
 *            "printer NAME disabled since DATE -" + "\tREASON"
 *   accept   "NAME accepting requests since DATE"
 *            "NAME not accepting requests since DATE -" + "\tREASON"
 * As in lpstat, a reason line follows whenever the printer carries a
 * reason (given with disable or reject), and "reason unknown" stands in
 * for a missing one where lpstat's shape requires the line.  A printer
 * enabled in copeesd but stopped in CUPS (media-empty, offline...) cannot
 * print either: it is shown disabled, with a line naming CUPS's reasons.
 * Long (-l) details are tab-indented "Label: value" lines after the entry,
 * lpstat's "Alerts:" (the state reasons) and "queued for DEST" first.
 * Dates are local time in the C locale's form ("Tue Nov 24 10:01:02
 * 2026") whatever LANG says: lpstat localises them, but a fixed form keeps
 * scripts and docs stable, and --json is the interface for machines.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

#define SLOT_MINUTES 30   /* delivery slots end at a job's due time */

const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

long long jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

static bool jtrue(const json_t *o, const char *key)
{
    return json_is_true(json_object_get(o, key));
}

static const char *or_dash(const char *s)
{
    return s && *s ? s : "-";
}

/* An RFC 3339 time (Z or an offset, optional fraction) as a time_t;
 * false when it is not one. */
static bool parse_time(const char *rfc, time_t *t)
{
    struct tm tm = {0};
    const char *p = rfc ? strptime(rfc, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;

    if (p && *p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    if (!p || !(p = strptime(p, "%z", &tm)) || *p)   /* glibc's %z takes Z, +hh:mm, +hhmm */
        return false;
    *t = -tm.tm_gmtoff;   /* read first: timegm() resets it */
    *t += timegm(&tm);
    return true;
}

const char *ctl_date(const char *rfc, char *buf, size_t len)
{
    struct tm tm;
    time_t t;

    if (!rfc)
        return "-";
    if (!parse_time(rfc, &t))
        return rfc;
    return localtime_r(&t, &tm) && strftime(buf, len, "%a %b %e %H:%M:%S %Y", &tm) ? buf : rfc;
}

/* " (slot HH:MM-HH:MM)" for a due time, "" when it cannot be parsed. */
static const char *slot(const char *due, char *buf, size_t len)
{
    struct tm ts, te;
    time_t end, start;

    if (!parse_time(due, &end))
        return "";
    start = end - SLOT_MINUTES * 60;
    if (!localtime_r(&start, &ts) || !localtime_r(&end, &te))
        return "";
    snprintf(buf, len, " (slot %02d:%02d-%02d:%02d)", ts.tm_hour, ts.tm_min, te.tm_hour, te.tm_min);
    return buf;
}

/* "a b c" from a JSON array of strings (or of {"code"} objects), like
 * lpstat's Alerts; none when it is empty. */
static const char *join_list(const json_t *a, const char *sep, const char *none, char *buf, size_t len)
{
    size_t i, used = 0;
    json_t *v;

    buf[0] = '\0';
    json_array_foreach(a, i, v) {
        const char *s = json_is_object(v) ? jstr(v, "code") : json_string_value(v);
        if (s && used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? sep : "", s);
    }
    return buf[0] ? buf : none;
}

const char *ctl_job_dest(const json_t *job)
{
    const char *printer = jstr(job, "printer");
    return printer && *printer ? printer : "copees";
}

void ctl_print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    putchar('\n');
}

void ctl_print_health(const json_t *h)
{
    size_t i;
    json_t *w;

    puts("scheduler is running");
    if (!jtrue(h, "ready"))
        puts("\tnot ready yet (starting up)");
    if (jstr(h, "cups") && strcmp(jstr(h, "cups"), "ok") != 0)
        printf("\tCUPS: %s\n", jstr(h, "cups"));
    json_array_foreach(json_object_get(h, "warnings"), i, w)
        if (json_string_value(w))
            printf("\twarning: %s\n", json_string_value(w));
}

void ctl_print_accepting(const json_t *p)
{
    char date[64];
    const char *name = jstr(p, "name"), *since = ctl_date(jstr(p, "state_since"), date, sizeof date);

    if (jtrue(p, "accepting"))
        printf("%s accepting requests since %s\n", name, since);
    else
        printf("%s not accepting requests since %s -\n\t%s\n", name, since,
               jstr(p, "reason") && *jstr(p, "reason") ? jstr(p, "reason") : "reason unknown");
}

void ctl_print_printer(const json_t *p, bool lng)
{
    char date[64], list[512];
    const char *name = jstr(p, "name"), *state = jstr(p, "state"), *reason = jstr(p, "reason");
    const char *since = ctl_date(jstr(p, "state_since"), date, sizeof date);
    bool enabled = jtrue(p, "enabled"), stopped = state && strcmp(state, "stopped") == 0;
    json_t *pj = json_object_get(p, "printing_job");
    const char *reasons = join_list(json_object_get(p, "state_reasons"), " ", "none", list, sizeof list);

    if (reason && !*reason)
        reason = NULL;
    if (!enabled || stopped)
        printf("printer %s disabled since %s -\n", name, since);
    else if (json_is_integer(pj))
        printf("printer %s now printing %s-%lld.  enabled since %s\n", name, name,
               (long long)json_integer_value(pj), since);
    else if (state && strcmp(state, "processing") == 0)
        printf("printer %s is busy.  enabled since %s\n", name, since);   /* a job not ours */
    else if (state && strcmp(state, "idle") == 0)
        printf("printer %s is idle.  enabled since %s\n", name, since);
    else
        printf("printer %s is in an unknown state (no answer from CUPS yet).  enabled since %s\n",
               name, since);
    if (reason || !enabled)
        printf("\t%s\n", reason ? reason : "reason unknown");
    if (stopped)
        printf("\tstopped in CUPS: %s\n", reasons);
    if (!lng)
        return;
    printf("\tAlerts: %s\n", reasons);
    printf("\tQueue: %s (CUPS)\n", or_dash(jstr(p, "queue")));
    printf("\tAccepting: %s\n", jtrue(p, "accepting") ? "yes" : "no");
    printf("\tMedia: %s\n", join_list(json_object_get(p, "media"), ", ", "-", list, sizeof list));
    printf("\tColor: %s  Duplex: %s  Speed: %lld ppm  Cover sheet: %s\n",
           jtrue(p, "color") ? "yes" : "no", jtrue(p, "duplex") ? "yes" : "no", jint(p, "ppm"),
           jtrue(p, "cover_sheet") ? "yes" : "no");
    printf("\tJobs in CUPS: %lld of at most %lld\n", jint(p, "jobs_active"), jint(p, "max_inflight"));
}

void ctl_print_job(const json_t *j, bool lng)
{
    char id[128], date[64], list[512], slotbuf[40];
    const char *dest = ctl_job_dest(j), *doc = jstr(j, "document");

    snprintf(id, sizeof id, "%s-%lld", dest, jint(j, "id"));
    printf("%-23s %-13s %8lld   %s\n", id, or_dash(jstr(j, "order")), jint(j, "bytes"),
           ctl_date(jstr(j, "created_at"), date, sizeof date));
    if (!lng)
        return;
    printf("\tStatus: %s\n", or_dash(jstr(j, "state")));
    printf("\tAlerts: %s\n", join_list(json_object_get(j, "state_reasons"), " ", "none", list, sizeof list));
    printf("\tqueued for %s\n", dest);
    printf("\tDue: %s%s  Priority: %lld\n", ctl_date(jstr(j, "due"), date, sizeof date),
           slot(jstr(j, "due"), slotbuf, sizeof slotbuf), jint(j, "priority"));
    printf("\tPages: %lld  Copies: %lld  Pages printed: %lld\n", jint(j, "pages"), jint(j, "copies"),
           jint(j, "pages_printed"));
    printf("\tMedia: %s  Sides: %s  Color: %s\n", or_dash(jstr(j, "media")), or_dash(jstr(j, "sides")),
           or_dash(jstr(j, "color")));
    if (json_is_integer(json_object_get(j, "cups_job_id")))
        printf("\tCUPS job: %lld  Reprints: %lld\n", jint(j, "cups_job_id"), jint(j, "reprints"));
    else
        printf("\tCUPS job: -  Reprints: %lld\n", jint(j, "reprints"));
    printf("\tPrinted: %s", ctl_date(jstr(j, "printed_at"), date, sizeof date));
    printf("  Delivered: %s\n", ctl_date(jstr(j, "delivered_at"), date, sizeof date));
    if (doc && strcmp(doc, "shredded") == 0)
        printf("\tDocument: shredded %s\n", ctl_date(jstr(j, "shredded_at"), date, sizeof date));
    else if (doc && strcmp(doc, "lost") == 0)
        printf("\tDocument: lost (missing from the spool)\n");
    else if (jstr(j, "retain_until"))
        printf("\tDocument: %s, kept until %s\n", or_dash(doc),
               ctl_date(jstr(j, "retain_until"), date, sizeof date));
    else
        printf("\tDocument: %s\n", or_dash(doc));
    printf("\tComplaint: %s\n", jstr(j, "complaint") ? jstr(j, "complaint") : "none");
}
