/* copeesctl.c - the admin CLI of copees-spool, shaped like lpstat(1).
 *
 * Design notes: copeesctl talks to copeesd only, over the daemon's socket
 * (HTTP/1.1 with libcurl, JSON with jansson); it never opens the database,
 * so what it may do is what the socket's peer-credential roles grant.
 * Reads (-r -a -p -o, -t for all four) are collected from the whole command
 * line and printed in lpstat -t order whatever order they were given in;
 * printer filters accumulate (-p a -p b, or lpstat's -p a,b).  Dates are
 * local time in the C locale's form ("Tue Nov 24 10:01:02 2026") whatever
 * LANG says: lpstat localises them, but a fixed form keeps scripts and docs
 * stable, and --json is the interface for machines.  Actions are one table
 * (method and path tail per subcommand); a job may be named by its id or by its
 * job-line name (atelier-a4-42), so ids can be pasted from -o output.
 * Every failure maps to one exit code (enum ctl_exit), documented in --help
 * and in copeesctl(1).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/un.h>
#include <curl/curl.h>
#include <jansson.h>

enum ctl_exit {
    CTL_EXIT_OK = 0,
    CTL_EXIT_ERROR = 1,         /* anything else */
    CTL_EXIT_USAGE = 2,         /* bad command line */
    CTL_EXIT_NOT_FOUND = 3,     /* 404: no such job, printer or endpoint */
    CTL_EXIT_FORBIDDEN = 4,     /* 403, or the socket refuses our uid */
    CTL_EXIT_UNREACHABLE = 5,   /* copeesd is not listening on the socket */
    CTL_EXIT_CONFLICT = 6,      /* 409: not in this state */
};

/* One kind of read, with the printers it is limited to. */
struct sel {
    bool want, all;
    char names[1024];           /* comma list, from every -p a,b -p c */
};

enum arg_kind { ARG_JOBS, ARG_PRINTERS, ARG_MOVE };

struct command {
    const char *name, *sub;     /* "complaint", "open"; sub NULL for most */
    const char *method, *tail;  /* path: /v1/jobs/ID or /v1/printers/NAME, tail, move's printer */
    enum arg_kind args;
    const char *help;
};

static const struct command commands[] = {
    {"cancel", NULL, "DELETE", "", ARG_JOBS, "cancel jobs (a printed one: use shred)"},
    {"hold", NULL, "POST", "/hold", ARG_JOBS, "hold jobs not yet printing"},
    {"release", NULL, "POST", "/release", ARG_JOBS, "release held jobs"},
    {"reprint", NULL, "POST", "/reprint", ARG_JOBS, "queue jobs again (same id)"},
    {"move", NULL, "POST", "/move?printer=", ARG_MOVE, "route a job to another printer"},
    {"delivered", NULL, "POST", "/delivered", ARG_JOBS, "record delivery to the customer"},
    {"shred", NULL, "POST", "/shred", ARG_JOBS, "erase the documents now"},
    {"complaint", "open", "POST", "/complaint", ARG_JOBS, "keep the documents until closed"},
    {"complaint", "close", "DELETE", "/complaint", ARG_JOBS, "close the complaint"},
    {"enable", NULL, "POST", "/enable", ARG_PRINTERS, "route jobs to printers again"},
    {"disable", NULL, "POST", "/disable", ARG_PRINTERS, "stop routing jobs to printers"},
    {"accept", NULL, "POST", "/accept", ARG_PRINTERS, "accept new jobs for printers"},
    {"reject", NULL, "POST", "/reject", ARG_PRINTERS, "refuse new jobs for printers"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static CURL *curl;
static const char *sock_path, *opt_which;   /* -S, -W */
static bool opt_json, opt_long, want_r;     /* --json, -l, -r */
static struct sel sel_a, sel_p, sel_o;      /* -a, -p, -o */

/* Prints "copeesctl: MESSAGE" on stderr (and a hint after a usage
 * error); returns rc. */
__attribute__((format(printf, 2, 3))) static int fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("copeesctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(rc == CTL_EXIT_USAGE ? "\nTry 'copeesctl --help'.\n" : "\n", stderr);
    va_end(ap);
    return rc;
}

static const char *arg_syntax(const struct command *c)
{
    return c->args == ARG_JOBS ? "ID..." : c->args == ARG_MOVE ? "ID PRINTER" : "PRINTER...";
}

static void print_help(void)
{
    printf("Usage: copeesctl [-S SOCKET] [--json] [-l] [-r] [-a [PRINTER]] [-p [PRINTER]]\n"
           "                 [-o [PRINTER]] [-W completed|not-completed|all] [-t]\n"
           "       copeesctl [-S SOCKET] [--json] COMMAND ARGUMENTS...\n"
           "Show and steer copeesd, the copees-spool print-job spooler.\n\n"
           "Reads (like lpstat; with none, -o is assumed):\n"
           "  -o [PRINTER]   jobs (not completed ones, unless -W says otherwise)\n"
           "  -W WHICH       with -o: completed, not-completed (default) or all\n"
           "  -p [PRINTER]   printers and what they are doing\n"
           "  -a [PRINTER]   whether printers accept jobs\n"
           "  -r             whether copeesd is running\n"
           "  -t             all of the above\n"
           "  -l             long listing (job and printer details)\n"
           "  --json         print copeesd's JSON instead, pretty-printed\n"
           "PRINTER may be a comma-separated list.\n\n"
           "Commands (ID is a job id, or a job-line name such as atelier-a4-42):\n");
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const struct command *c = &commands[i];
        char head[40];
        snprintf(head, sizeof head, "%s%s%s %s", c->name, c->sub ? " " : "", c->sub ? c->sub : "",
                 arg_syntax(c));
        printf("  %-26s %s\n", head, c->help);
    }
    printf("\nOptions:\n"
           "  -S SOCKET      copeesd's socket (else $COPEES_SOCKET, else %s)\n"
           "  -h, --help     show this help\n"
           "  --version      show the version\n\n"
           "Exit status:\n"
           "  0  success\n"
           "  1  other error\n"
           "  2  bad usage\n"
           "  3  not found (no such job, printer or endpoint)\n"
           "  4  not allowed (copeesd refused this user)\n"
           "  5  copeesd unreachable (not running, or no socket at that path)\n"
           "  6  conflict (the job or printer is not in a state that allows it)\n",
           COPEES_SOCKET_DEFAULT);
}

/* Sends METHOD PATH (no body) to copeesd.  Returns CTL_EXIT_OK with the
 * parsed answer in *out (owned by the caller), or another exit code with
 * a message for a human in err and *out NULL. */
static int api_call(const char *method, const char *path, json_t **out, char *err, size_t errlen)
{
    char url[2048], cerr[CURL_ERROR_SIZE] = "", *body = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&body, &len);   /* the answer's body */
    struct curl_slist *hdr = NULL;
    long status = 0, oserr = 0;
    json_error_t jerr;
    CURLcode cc;
    int rc = CTL_EXIT_ERROR;

    *out = NULL;
    if (!mem) {
        snprintf(err, errlen, "out of memory");
        return CTL_EXIT_ERROR;
    }
    snprintf(url, sizeof url, "http://localhost%s", path);
    hdr = curl_slist_append(hdr, "Accept: application/json");
    hdr = curl_slist_append(hdr, "Content-Type:");   /* no form type on bodiless POSTs */
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, sock_path);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "copeesctl/" PACKAGE_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, mem);   /* curl's default writer: fwrite */
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, 0L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    }
    cc = curl_easy_perform(curl);
    curl_slist_free_all(hdr);
    fclose(mem);
    if (cc != CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &oserr);
        if (cc == CURLE_COULDNT_CONNECT && (oserr == EACCES || oserr == EPERM)) {
            snprintf(err, errlen, "cannot connect to copeesd at %s: %s", sock_path, strerror((int)oserr));
            rc = CTL_EXIT_FORBIDDEN;
        } else if (cc == CURLE_COULDNT_CONNECT) {
            snprintf(err, errlen, "cannot connect to copeesd at %s: %s (is copeesd running?)",
                     sock_path, oserr ? strerror((int)oserr) : *cerr ? cerr : curl_easy_strerror(cc));
            rc = CTL_EXIT_UNREACHABLE;
        } else {
            snprintf(err, errlen, "%s %s: %s", method, path, *cerr ? cerr : curl_easy_strerror(cc));
        }
        goto out;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    json_t *j = json_loadb(body, len, 0, &jerr);
    if (status >= 200 && status < 300) {
        if (!(*out = j))
            snprintf(err, errlen, "%s %s: copeesd's answer is not JSON", method, path);
        rc = j ? CTL_EXIT_OK : CTL_EXIT_ERROR;
        goto out;
    }
    const char *msg = json_string_value(json_object_get(j, "message"));
    if (msg && *msg)
        snprintf(err, errlen, "%s", msg);
    else
        snprintf(err, errlen, "%s %s: copeesd answered HTTP %ld", method, path, status);
    json_decref(j);
    rc = status == 404 ? CTL_EXIT_NOT_FOUND : status == 403 ? CTL_EXIT_FORBIDDEN
       : status == 409 ? CTL_EXIT_CONFLICT : CTL_EXIT_ERROR;
out:
    free(body);
    return rc;
}

/* api_call that prints its error; returns the exit code. */
static int api_get(const char *path, json_t **out)
{
    char err[1024];
    int rc = api_call("GET", path, out, err, sizeof err);
    return rc == CTL_EXIT_OK ? rc : fail(rc, "%s", err);
}

/* Borrowed string member, or NULL when absent or not a string. */
static const char *jstr(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

/* Formats an RFC 3339 time (Z or an offset, optional fraction) as lpstat
 * does, in local time; "-" for none, the text itself when unparsable. */
static const char *fmt_date(const char *rfc, char *buf, size_t len)
{
    struct tm tm = {0};
    const char *p = rfc ? strptime(rfc, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    time_t t;

    if (!rfc)
        return "-";
    if (p && *p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    if (!p || !(p = strptime(p, "%z", &tm)) || *p)   /* glibc's %z takes Z, +hh:mm, +hhmm */
        return rfc;
    t = -tm.tm_gmtoff;   /* read first: timegm() resets it */
    t += timegm(&tm);
    return localtime_r(&t, &tm) && strftime(buf, len, "%a %b %e %H:%M:%S %Y", &tm) ? buf : rfc;
}

/* "a, b, c" from a JSON array of strings (or of {"code"} objects). */
static void join_list(const json_t *a, const char *none, char *buf, size_t len)
{
    size_t i, used = 0;
    json_t *v;

    buf[0] = '\0';
    json_array_foreach(a, i, v) {
        const char *s = json_is_object(v) ? jstr(v, "code") : json_string_value(v);
        if (s && used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "", s);
    }
    if (!buf[0])
        snprintf(buf, len, "%s", none);
}

/* Adds a printer filter (NULL: all printers) to a read. */
static int sel_add(struct sel *s, const char *names)
{
    size_t used = strlen(s->names);

    s->want = true;
    if (!names)
        s->all = true;
    else if ((size_t)snprintf(s->names + used, sizeof s->names - used, ",%s", names) >= sizeof s->names - used)
        return fail(CTL_EXIT_USAGE, "too many printer names");
    return 0;
}

/* Whether the comma list has the name of len bytes. */
static bool list_has(const char *list, const char *name, size_t len)
{
    for (size_t n; *list; list += n + (list[n] == ',')) {
        n = strcspn(list, ",");
        if (n == len && strncmp(list, name, len) == 0)
            return true;
    }
    return false;
}

static bool sel_match(const struct sel *s, const char *name)
{
    return s->all || list_has(s->names, name, strlen(name));
}

static void print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    putchar('\n');
}

/* -r: "scheduler is running" with the daemon's warnings, or "not running". */
static int show_health(void)
{
    char err[1024];
    json_t *h, *w;
    size_t i;
    int rc = api_call("GET", "/v1/health", &h, err, sizeof err);

    if (rc == CTL_EXIT_UNREACHABLE && !opt_json) {
        puts("scheduler is not running");
        return rc;
    }
    if (rc != CTL_EXIT_OK)
        return fail(rc, "%s", err);
    if (opt_json) {
        print_json(h);
    } else {
        puts("scheduler is running");
        if (!json_is_true(json_object_get(h, "ready")))
            puts("\tnot ready yet (starting up)");
        json_array_foreach(json_object_get(h, "warnings"), i, w)
            if (json_string_value(w))
                printf("\twarning: %s\n", json_string_value(w));
    }
    json_decref(h);
    return CTL_EXIT_OK;
}

/* One -a line for printer p. */
static void print_accepting(const json_t *p)
{
    char date[64];
    const char *name = jstr(p, "name"), *since = fmt_date(jstr(p, "state_since"), date, sizeof date);

    if (json_is_true(json_object_get(p, "accepting")))
        printf("%s accepting requests since %s\n", name, since);
    else
        printf("%s not accepting requests since %s -\n\trejecting new jobs (copeesctl accept %s)\n",
               name, since, name);
}

/* One -p entry for printer p: lpstat's line, then reasons and -l details. */
static void print_printer(const json_t *p)
{
    char date[64], list[512];
    const char *name = jstr(p, "name"), *state = jstr(p, "state");
    const char *since = fmt_date(jstr(p, "state_since"), date, sizeof date);
    bool enabled = json_is_true(json_object_get(p, "enabled"));
    bool stopped = state && strcmp(state, "stopped") == 0;
    json_t *pj = json_object_get(p, "printing_job");

    join_list(json_object_get(p, "state_reasons"), "none", list, sizeof list);
    if (!enabled || stopped) {
        printf("printer %s disabled since %s -\n", name, since);
        if (!enabled)
            printf("\tdisabled in copeesd (copeesctl enable %s)\n", name);
        if (stopped)
            printf("\tstopped in CUPS: %s\n", list);
    } else if (json_is_integer(pj)) {
        printf("printer %s now printing %s-%lld.  enabled since %s\n", name, name,
               (long long)json_integer_value(pj), since);
    } else if (state && strcmp(state, "processing") == 0) {
        printf("printer %s is busy.  enabled since %s\n", name, since);
    } else if (state && strcmp(state, "idle") == 0) {
        printf("printer %s is idle.  enabled since %s\n", name, since);
    } else {
        printf("printer %s state unknown (CUPS has not answered).  enabled since %s\n", name, since);
    }
    if (!opt_long)
        return;
    printf("\tQueue: %s\n\tAlerts: %s\n", jstr(p, "queue") ? jstr(p, "queue") : "-", list);
    join_list(json_object_get(p, "media"), "-", list, sizeof list);
    printf("\tMedia: %s\n\tColor: %s  Duplex: %s  ppm: %lld\n\tJobs in CUPS: %lld of at most %lld\n", list,
           json_is_true(json_object_get(p, "color")) ? "yes" : "no",
           json_is_true(json_object_get(p, "duplex")) ? "yes" : "no", jint(p, "ppm"),
           jint(p, "jobs_active"), jint(p, "max_inflight"));
}

/* Fails with CTL_EXIT_NOT_FOUND naming the first printer of the comma
 * list that is not configured (as lpstat does); 0 when all are. */
static int sel_check(const char *list, const json_t *printers)
{
    for (size_t n; *list; list += n + (list[n] == ',')) {
        const char *name;
        bool found = false;
        size_t i;
        json_t *p;
        n = strcspn(list, ",");
        json_array_foreach(printers, i, p)
            found |= (name = jstr(p, "name")) && strlen(name) == n && strncmp(name, list, n) == 0;
        if (n && !found)
            return fail(CTL_EXIT_NOT_FOUND, "no printer named '%.*s'", (int)n, list);
    }
    return 0;
}

/* -a and -p: GET /v1/printers, filtered. */
static int show_printers(const struct sel *a, const struct sel *pr)
{
    json_t *all, *printers, *p, *keep;
    size_t i;
    int rc = api_get("/v1/printers", &all);

    if (rc != CTL_EXIT_OK)
        return rc;
    keep = json_array();
    printers = json_object_get(all, "printers");
    json_array_foreach(printers, i, p) {
        const char *name = jstr(p, "name");
        if (name && ((a->want && sel_match(a, name)) || (pr->want && sel_match(pr, name))))
            json_array_append(keep, p);
    }
    if ((rc = sel_check(a->names, printers)) != 0 || (rc = sel_check(pr->names, printers)) != 0)
        goto out;
    if (opt_json) {
        json_t *doc = json_pack("{s:O}", "printers", keep);
        print_json(doc);
        json_decref(doc);
    } else {
        if (a->want)
            json_array_foreach(keep, i, p)
                if (sel_match(a, jstr(p, "name")))
                    print_accepting(p);
        if (pr->want)
            json_array_foreach(keep, i, p)
                if (sel_match(pr, jstr(p, "name")))
                    print_printer(p);
    }
out:
    json_decref(keep);
    json_decref(all);
    return rc;
}

/* One job line, then with -l its details. */
static void print_job(const json_t *j, const char *dest)
{
    char id[128], date[64], list[512];
    const char *order = jstr(j, "order"), *s;

    snprintf(id, sizeof id, "%s-%lld", dest, jint(j, "id"));
    printf("%-23s %-13s %8lld   %s\n", id, order ? order : "-", jint(j, "bytes"),
           fmt_date(jstr(j, "created_at"), date, sizeof date));
    if (!opt_long)
        return;
    join_list(json_object_get(j, "state_reasons"), "none", list, sizeof list);
    printf("\tStatus: %s\n\tAlerts: %s\n", jstr(j, "state") ? jstr(j, "state") : "-", list);
    printf("\tpages: %lld  copies: %lld  media: %s\n", jint(j, "pages"), jint(j, "copies"),
           jstr(j, "media") ? jstr(j, "media") : "-");
    printf("\tdue: %s\n", fmt_date(jstr(j, "due"), date, sizeof date));
    if (json_is_integer(json_object_get(j, "cups_job_id")))
        printf("\tCUPS job: %lld\n", jint(j, "cups_job_id"));
    s = jstr(j, "document");
    printf("\tdocument: %s", s ? s : "-");
    if (s && strcmp(s, "shredded") == 0 && jstr(j, "shredded_at"))
        printf(" %s", fmt_date(jstr(j, "shredded_at"), date, sizeof date));
    if (jstr(j, "complaint"))
        printf("  complaint: %s", jstr(j, "complaint"));
    putchar('\n');
    if (jstr(j, "retain_until"))
        printf("\tretain until: %s\n", fmt_date(jstr(j, "retain_until"), date, sizeof date));
}

/* -o: every page of GET /v1/jobs?which=..., filtered by printer. */
static int show_jobs(const struct sel *o, const char *which)
{
    json_t *keep = json_array(), *page, *j, *next;
    char path[256];
    long long after = 0;
    size_t i;
    int rc = CTL_EXIT_OK;

    for (;;) {
        int n = snprintf(path, sizeof path, "/v1/jobs?which=%s&limit=1000", which);
        if (after)
            snprintf(path + n, sizeof path - (size_t)n, "&after=%lld", after);
        if ((rc = api_get(path, &page)) != CTL_EXIT_OK)
            break;
        json_array_foreach(json_object_get(page, "jobs"), i, j) {
            const char *printer = jstr(j, "printer");
            const char *dest = printer && *printer ? printer : "copees";
            if (!sel_match(o, dest))
                continue;
            if (opt_json)
                json_array_append(keep, j);
            else
                print_job(j, dest);
        }
        next = json_object_get(page, "next");
        long long nx = json_is_integer(next) ? (long long)json_integer_value(next) : 0;
        json_decref(page);
        if (!nx)
            break;
        if (nx <= after) {
            rc = fail(CTL_EXIT_ERROR, "copeesd's job list does not advance (next=%lld)", nx);
            break;
        }
        after = nx;
    }
    if (rc == CTL_EXIT_OK && opt_json) {
        json_t *doc = json_pack("{s:O, s:n}", "jobs", keep, "next");
        print_json(doc);
        json_decref(doc);
    }
    json_decref(keep);
    return rc;
}

/* "42" or "atelier-a4-42" -> "42"; false when it is neither. */
static bool job_id_parse(const char *s, char *out, size_t len)
{
    const char *dash = strrchr(s, '-'), *d = dash ? dash + 1 : s;
    size_t n = strlen(d);

    if (n == 0 || n > 18 || strspn(d, "0123456789") != n || strspn(d, "0") == n)
        return false;
    snprintf(out, len, "%s", d + strspn(d, "0"));
    return true;
}

/* Runs one action on one target; prints the answer with --json. */
static int run_one(const struct command *c, const char *target, const char *printer)
{
    char id[32], path[1024], err[1024], *e1, *e2;
    json_t *ans;
    bool ok;
    int rc;

    if (c->args != ARG_PRINTERS && !job_id_parse(target, id, sizeof id))
        return fail(CTL_EXIT_USAGE, "%s: not a job id: '%s'", c->name, target);
    if (!*target || (printer && !*printer))
        return fail(CTL_EXIT_USAGE, "%s: empty printer name", c->name);
    e1 = curl_easy_escape(curl, c->args == ARG_PRINTERS ? target : id, 0);
    e2 = curl_easy_escape(curl, printer ? printer : "", 0);
    if ((ok = e1 && e2))
        snprintf(path, sizeof path, "/v1/%s/%s%s%s", c->args == ARG_PRINTERS ? "printers" : "jobs",
                 e1, c->tail, e2);
    curl_free(e1);
    curl_free(e2);
    if (!ok)
        return fail(CTL_EXIT_ERROR, "out of memory");
    rc = api_call(c->method, path, &ans, err, sizeof err);
    if (rc != CTL_EXIT_OK)
        return fail(rc, "%s", err);
    if (opt_json)
        print_json(ans);
    json_decref(ans);
    return CTL_EXIT_OK;
}

/* Runs a subcommand over its arguments; the first failure's code wins,
 * and an unreachable daemon stops the run. */
static int run_command(int argc, char **argv)
{
    const struct command *c = NULL;
    int rc = CTL_EXIT_OK, first;

    for (size_t i = 0; i < NCOMMANDS && !c; i++)
        if (strcmp(commands[i].name, argv[0]) == 0
            && (!commands[i].sub || (argc > 1 && strcmp(commands[i].sub, argv[1]) == 0)))
            c = &commands[i];
    if (!c) {
        if (strcmp(argv[0], "complaint") == 0)
            return fail(CTL_EXIT_USAGE, "complaint: say open or close");
        return fail(CTL_EXIT_USAGE, "unknown command '%s'", argv[0]);
    }
    first = c->sub ? 2 : 1;
    if (c->args == ARG_MOVE ? argc - first != 2 : argc - first < 1)
        return fail(CTL_EXIT_USAGE, "usage: copeesctl %s%s%s %s", c->name, c->sub ? " " : "",
                    c->sub ? c->sub : "", arg_syntax(c));
    if (c->args == ARG_MOVE)
        return run_one(c, argv[first], argv[first + 1]);
    for (int i = first; i < argc; i++) {
        int r = run_one(c, argv[i], NULL);
        if (r != CTL_EXIT_OK && rc == CTL_EXIT_OK)
            rc = r;
        if (r == CTL_EXIT_UNREACHABLE || r == CTL_EXIT_USAGE)
            break;
    }
    return rc;
}

/* Takes the argument of option *opt ("-Sx" or "-S x"); NULL when missing. */
static const char *opt_arg(const char **opt, int argc, char **argv, int *i, bool optional)
{
    const char *a = NULL;

    if ((*opt)[1]) {
        a = *opt + 1;
    } else if (*i + 1 < argc && (!optional || argv[*i + 1][0] != '-')) {
        a = argv[++*i];
    }
    if (a)
        *opt = a + strlen(a) - 1;   /* the rest of the cluster is consumed */
    return a;
}

/* Reads the command line into the globals and cmd; returns -1 to go on,
 * else the exit code. */
static int parse_args(int argc, char **argv, char **cmd, int *ncmd)
{
    bool reads = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *arg;
        if (strcmp(a, "--json") == 0) {
            opt_json = true;
        } else if (strcmp(a, "--help") == 0) {
            print_help();
            return CTL_EXIT_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("copeesctl (copees-spool) %s\n", PACKAGE_VERSION);
            return CTL_EXIT_OK;
        } else if (strcmp(a, "--") == 0) {
            while (++i < argc)
                cmd[(*ncmd)++] = argv[i];
        } else if (a[0] != '-' || !a[1]) {
            cmd[(*ncmd)++] = argv[i];
        } else if (a[1] == '-') {
            return fail(CTL_EXIT_USAGE, "unknown option '%s'", a);
        } else {
            for (const char *o = a + 1; *o; o++) {
                char c = *o;
                struct sel *s = c == 'a' ? &sel_a : c == 'p' ? &sel_p : c == 'o' ? &sel_o : NULL;
                reads |= c != 'S';
                if (s) {
                    if (sel_add(s, opt_arg(&o, argc, argv, &i, true)) != 0)
                        return CTL_EXIT_USAGE;
                } else if (c == 'S' || c == 'W') {
                    if (!(arg = opt_arg(&o, argc, argv, &i, false)))
                        return fail(CTL_EXIT_USAGE, "option -%c needs an argument", c);
                    *(c == 'S' ? &sock_path : &opt_which) = arg;
                } else if (c == 'l') {
                    opt_long = true;
                } else if (c == 'r' || c == 't') {
                    want_r = true;
                    if (c == 't')   /* -t is -r -a -p -o */
                        sel_add(&sel_a, NULL), sel_add(&sel_p, NULL), sel_add(&sel_o, NULL);
                } else if (c == 'h') {
                    print_help();
                    return CTL_EXIT_OK;
                } else {
                    return fail(CTL_EXIT_USAGE, "unknown option '-%c'", c);
                }
            }
        }
    }
    if (*ncmd && reads)
        return fail(CTL_EXIT_USAGE, "'%s' cannot be combined with -o, -p, -a, -r, -t, -l or -W", cmd[0]);
    if (opt_which && strcmp(opt_which, "completed") && strcmp(opt_which, "not-completed")
        && strcmp(opt_which, "all"))
        return fail(CTL_EXIT_USAGE, "-W takes completed, not-completed or all");
    if (opt_which && !sel_o.want && (want_r || sel_a.want || sel_p.want))
        return fail(CTL_EXIT_USAGE, "-W applies to -o");
    if (!sel_o.want && !want_r && !sel_a.want && !sel_p.want && !*ncmd)
        sel_add(&sel_o, NULL);   /* lpstat with no arguments lists jobs */
    return -1;
}

int main(int argc, char **argv)
{
    char *cmd[argc + 1];   /* a command and its words, options removed */
    const char *env;
    int ncmd = 0, rc = parse_args(argc, argv, cmd, &ncmd);

    if (rc >= 0)
        return rc;
    if (!sock_path && (env = getenv("COPEES_SOCKET")) && *env)
        sock_path = env;
    if (!sock_path)
        sock_path = COPEES_SOCKET_DEFAULT;
    if (!*sock_path || strlen(sock_path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
        return fail(CTL_EXIT_USAGE, "socket path '%s' is empty or too long", sock_path);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0 || !(curl = curl_easy_init()))
        return fail(CTL_EXIT_ERROR, "cannot initialise libcurl");
    rc = CTL_EXIT_OK;
    if (ncmd) {
        rc = run_command(ncmd, cmd);
    } else {
        if (want_r)
            rc = show_health();
        if (rc == CTL_EXIT_OK && (sel_a.want || sel_p.want))
            rc = show_printers(&sel_a, &sel_p);
        if (rc == CTL_EXIT_OK && sel_o.want)
            rc = show_jobs(&sel_o, opt_which ? opt_which : "not-completed");
    }
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    if (fflush(stdout) == EOF && rc == CTL_EXIT_OK)
        rc = fail(CTL_EXIT_ERROR, "cannot write the output: %s", strerror(errno));
    return rc;
}
