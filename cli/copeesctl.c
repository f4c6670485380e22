/* copeesctl.c - the admin CLI of copees-spool, shaped like lpstat(1):
 * the command line, the reads and the commands.  The socket client is in
 * http.c, the lpstat-shaped lines in output.c.
 *
 * Design notes: copeesctl talks to copeesd only, over the daemon's socket
 * (HTTP/1.1 with libcurl, JSON with jansson); it never opens the database,
 * so what it may do is what the socket's peer-credential roles grant.
 * Reads (-r -a -p -o, -t for all four) are collected from the whole command
 * line and printed in lpstat -t order whatever order they were given in;
 * printer filters accumulate (-p a -p b, or lpstat's -p a,b).  Every printer
 * named is checked against copeesd's list before anything is printed, so a
 * typo is an error (as in lpstat) and not an empty answer.  Actions are one
 * table (method and path tail per subcommand); a job may be named by its id
 * or by its job-line name (atelier-a4-42), so ids can be pasted from -o
 * output.  Options may come before or after the command; after disable or
 * reject, -r takes the reason (as cupsdisable's and cupsreject's -r do).
 * Every failure maps to one exit code (enum ctl_exit), documented in --help
 * and in copeesctl(1).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "ctl.h"

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
    bool reason;                /* takes -r REASON */
    const char *help;
};

static const struct command commands[] = {
    {"cancel", NULL, "DELETE", "", ARG_JOBS, false, "cancel jobs (a printed one: use shred)"},
    {"hold", NULL, "POST", "/hold", ARG_JOBS, false, "hold jobs not yet printing"},
    {"release", NULL, "POST", "/release", ARG_JOBS, false, "release held jobs"},
    {"reprint", NULL, "POST", "/reprint", ARG_JOBS, false, "queue jobs again (same id)"},
    {"move", NULL, "POST", "/move?printer=", ARG_MOVE, false, "route a job to another printer"},
    {"delivered", NULL, "POST", "/delivered", ARG_JOBS, false, "record delivery to the customer"},
    {"shred", NULL, "POST", "/shred", ARG_JOBS, false, "erase the documents now"},
    {"complaint", "open", "POST", "/complaint", ARG_JOBS, false, "keep the documents until closed"},
    {"complaint", "close", "DELETE", "/complaint", ARG_JOBS, false, "close the complaint"},
    {"enable", NULL, "POST", "/enable", ARG_PRINTERS, false, "route jobs to printers again"},
    {"disable", NULL, "POST", "/disable", ARG_PRINTERS, true, "stop routing jobs to printers"},
    {"accept", NULL, "POST", "/accept", ARG_PRINTERS, false, "accept new jobs for printers"},
    {"reject", NULL, "POST", "/reject", ARG_PRINTERS, true, "refuse new jobs for printers"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char *sock_path, *opt_which, *opt_reason;   /* -S, -W, command's -r */
static bool opt_json, opt_long, want_r;                  /* --json, -l, -r */
static struct sel sel_a, sel_p, sel_o;                   /* -a, -p, -o */

int ctl_fail(int rc, const char *fmt, ...)
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
    return c->args == ARG_JOBS ? "ID..." : c->args == ARG_MOVE ? "ID PRINTER"
         : c->reason ? "[-r REASON] PRINTER..." : "PRINTER...";
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
        printf("  %-30s %s\n", head, c->help);
    }
    printf("\nOptions:\n"
           "  -S SOCKET      copeesd's socket (else $COPEES_SOCKET, else %s)\n"
           "  -r REASON      after disable or reject: the reason, shown by -p and -a\n"
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

/* ctl_api_call that prints its error; returns the exit code. */
static int api_get(const char *path, json_t **out)
{
    char err[1024];
    int rc = ctl_api_call("GET", path, out, err, sizeof err);
    return rc == CTL_EXIT_OK ? rc : ctl_fail(rc, "%s", err);
}

/* Adds a printer filter (NULL: all printers) to a read. */
static int sel_add(struct sel *s, const char *names)
{
    size_t used = strlen(s->names);

    s->want = true;
    if (!names)
        s->all = true;
    else if ((size_t)snprintf(s->names + used, sizeof s->names - used, ",%s", names) >= sizeof s->names - used)
        return ctl_fail(CTL_EXIT_USAGE, "too many printer names");
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

/* Fails with CTL_EXIT_NOT_FOUND naming the first printer of the comma
 * list that is not configured (as lpstat does); 0 when all are.  With
 * jobs_too, "copees" (the jobs not routed yet) is a name too. */
static int sel_check(const char *list, const json_t *printers, bool jobs_too)
{
    for (size_t n; *list; list += n + (list[n] == ',')) {
        const char *name;
        bool found = false;
        size_t i;
        json_t *p;
        n = strcspn(list, ",");
        json_array_foreach(printers, i, p)
            found |= (name = jstr(p, "name")) && strlen(name) == n && strncmp(name, list, n) == 0;
        found |= jobs_too && n == 6 && strncmp(list, "copees", 6) == 0;
        if (n && !found)
            return ctl_fail(CTL_EXIT_NOT_FOUND, "no printer named '%.*s'", (int)n, list);
    }
    return 0;
}

/* -r: "scheduler is running" with the daemon's warnings; lpstat's "not
 * running" line (and exit status 5) when nothing answers on the socket. */
static FILE *real_stdout;      /* while run_reads holds the output back */

static int show_health(void)
{
    char err[1024];
    json_t *h;
    int rc = ctl_api_call("GET", "/v1/health", &h, err, sizeof err);

    if (rc == CTL_EXIT_UNREACHABLE && !opt_json) {
        /* lpstat's answer, the first read's: shown although it fails */
        fputs("scheduler is not running\n", real_stdout ? real_stdout : stdout);
        return ctl_fail(rc, "%s", err);
    }
    if (rc != CTL_EXIT_OK)
        return ctl_fail(rc, "%s", err);
    if (opt_json)
        ctl_print_json(h);
    else
        ctl_print_health(h);
    json_decref(h);
    return CTL_EXIT_OK;
}

/* -a and -p from the printer list. */
static void show_printers(const json_t *printers)
{
    json_t *p, *keep = json_array();
    size_t i;

    json_array_foreach(printers, i, p) {
        const char *name = jstr(p, "name");
        if (name && ((sel_a.want && sel_match(&sel_a, name)) || (sel_p.want && sel_match(&sel_p, name))))
            json_array_append(keep, p);
    }
    if (opt_json) {
        json_t *doc = json_pack("{s:O}", "printers", keep);
        ctl_print_json(doc);
        json_decref(doc);
    } else {
        if (sel_a.want)
            json_array_foreach(keep, i, p)
                if (sel_match(&sel_a, jstr(p, "name")))
                    ctl_print_accepting(p);
        if (sel_p.want)
            json_array_foreach(keep, i, p)
                if (sel_match(&sel_p, jstr(p, "name")))
                    ctl_print_printer(p, opt_long);
    }
    json_decref(keep);
}

/* -o: every page of GET /v1/jobs?which=..., filtered by printer. */
static int show_jobs(const char *which)
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
            if (!sel_match(&sel_o, ctl_job_dest(j)))
                continue;
            if (opt_json)
                json_array_append(keep, j);
            else
                ctl_print_job(j, opt_long);
        }
        next = json_object_get(page, "next");
        long long nx = json_is_integer(next) ? (long long)json_integer_value(next) : 0;
        json_decref(page);
        if (!nx)
            break;
        if (nx <= after) {
            rc = ctl_fail(CTL_EXIT_ERROR, "copeesd's job list does not advance (next=%lld)", nx);
            break;
        }
        after = nx;
    }
    if (rc == CTL_EXIT_OK && opt_json) {
        json_t *doc = json_pack("{s:O, s:n}", "jobs", keep, "next");
        ctl_print_json(doc);
        json_decref(doc);
    }
    json_decref(keep);
    return rc;
}

static int run_reads_now(void);

/* Every read asked for, in lpstat -t's order, printed only when every
 * one succeeded: a read that fails after others prints nothing on
 * standard output (copeesctl(1)), so that a script never takes a partial
 * list for the whole one. */
static int run_reads(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len), *out = stdout;
    if (!mem)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    real_stdout = out;
    stdout = mem;
    int rc = run_reads_now();
    fclose(mem);
    stdout = out;
    real_stdout = NULL;
    if (rc == CTL_EXIT_OK && len && fwrite(buf, 1, len, stdout) != len)
        rc = ctl_fail(CTL_EXIT_ERROR, "cannot write to standard output");
    free(buf);
    return rc;
}

static int run_reads_now(void)
{
    json_t *all = NULL, *printers = NULL;
    int rc = CTL_EXIT_OK;
    bool named = sel_a.names[0] || sel_p.names[0] || sel_o.names[0];

    if (want_r && (rc = show_health()) != CTL_EXIT_OK)
        return rc;
    if (sel_a.want || sel_p.want || named) {
        if ((rc = api_get("/v1/printers", &all)) != CTL_EXIT_OK)
            return rc;
        printers = json_object_get(all, "printers");
        if ((rc = sel_check(sel_a.names, printers, false)) != 0
            || (rc = sel_check(sel_p.names, printers, false)) != 0
            || (rc = sel_check(sel_o.names, printers, true)) != 0)
            goto out;
    }
    if (sel_a.want || sel_p.want)
        show_printers(printers);
    if (sel_o.want)
        rc = show_jobs(opt_which ? opt_which : "not-completed");
out:
    json_decref(all);
    return rc;
}

/* "42", "atelier-a4-42" or "copees-42" -> "42" in out, and the part
 * before the last dash ("" when none) in dest; false when it is neither. */
static bool job_id_parse(const char *s, char *out, size_t len, char *dest, size_t dlen)
{
    const char *dash = strrchr(s, '-'), *d = dash ? dash + 1 : s;
    size_t n = strlen(d);

    if (n == 0 || n > 18 || strspn(d, "0123456789") != n || strspn(d, "0") == n)
        return false;
    if (dash && (size_t)(dash - s) >= dlen)
        return false;
    snprintf(out, len, "%s", d + strspn(d, "0"));
    snprintf(dest, dlen, "%.*s", dash ? (int)(dash - s) : 0, s);
    return true;
}

/* A "PRINTER-42" target names job 42 only if it is at PRINTER: anything
 * else before the dash (a typo, an order reference) must not act on some
 * other customer's job 42.  "copees-42" and "42" name the job alone.
 * CTL_EXIT_OK when the target stands. */
static int job_dest_check(const char *cmd, const char *target, const char *id, const char *dest)
{
    char path[64], err[1024];
    json_t *job;
    if (!*dest || strcmp(dest, "copees") == 0)
        return CTL_EXIT_OK;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    int rc = ctl_api_call("GET", path, &job, err, sizeof err);
    if (rc != CTL_EXIT_OK)
        return ctl_fail(rc, "%s %s: %s", cmd, target, err);
    const char *at = ctl_job_dest(job);
    if (strcmp(at, dest) != 0) {
        rc = ctl_fail(CTL_EXIT_USAGE, "%s %s: job %s is at %s, not %s; nothing done (name it %s "
                      "or %s-%s)", cmd, target, id, at, dest, id, at, id);
    }
    json_decref(job);
    return rc;
}

/* Runs one action on one target; prints the answer with --json. */
static int run_one(const struct command *c, const char *target, const char *printer)
{
    char id[32], dest[256], path[1024], err[1024], *e1, *e2, *e3 = NULL;
    json_t *ans;
    bool ok;
    int rc;

    if (c->args != ARG_PRINTERS && !job_id_parse(target, id, sizeof id, dest, sizeof dest))
        return ctl_fail(CTL_EXIT_USAGE, "%s: not a job id: '%s'", c->name, target);
    if (c->args != ARG_PRINTERS && (rc = job_dest_check(c->name, target, id, dest)) != CTL_EXIT_OK)
        return rc;
    if (!*target || (printer && !*printer))
        return ctl_fail(CTL_EXIT_USAGE, "%s: empty printer name", c->name);
    e1 = ctl_escape(c->args == ARG_PRINTERS ? target : id);
    e2 = ctl_escape(printer ? printer : "");
    if (opt_reason)
        e3 = ctl_escape(opt_reason);
    if ((ok = e1 && e2 && (e3 || !opt_reason)))
        snprintf(path, sizeof path, "/v1/%s/%s%s%s%s%s", c->args == ARG_PRINTERS ? "printers" : "jobs",
                 e1, c->tail, e2, e3 ? "?reason=" : "", e3 ? e3 : "");
    free(e1);
    free(e2);
    free(e3);
    if (!ok)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    rc = ctl_api_call(c->method, path, &ans, err, sizeof err);
    if (rc != CTL_EXIT_OK)
        return ctl_fail(rc, "%s%s%s %s%s%s: %s", c->name, c->sub ? " " : "", c->sub ? c->sub : "",
                        target, printer ? " " : "", printer ? printer : "", err);
    if (opt_json)
        ctl_print_json(ans);
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
            return ctl_fail(CTL_EXIT_USAGE, "complaint: say open or close");
        return ctl_fail(CTL_EXIT_USAGE, "unknown command '%s'", argv[0]);
    }
    if (opt_reason && !c->reason)   /* -r before a complaint's "open", say */
        return ctl_fail(CTL_EXIT_USAGE, "%s takes no -r (a reason is for disable and reject)", c->name);
    first = c->sub ? 2 : 1;
    if (c->args == ARG_MOVE ? argc - first != 2 : argc - first < 1)
        return ctl_fail(CTL_EXIT_USAGE, "usage: copeesctl %s%s%s %s", c->name, c->sub ? " " : "",
                        c->sub ? c->sub : "", arg_syntax(c));
    if (c->args == ARG_MOVE)
        return run_one(c, argv[first], argv[first + 1]);
    for (int i = first; i < argc; i++) {
        int r = run_one(c, argv[i], NULL);
        if (r != CTL_EXIT_OK && rc == CTL_EXIT_OK)
            rc = r;
        if (r == CTL_EXIT_UNREACHABLE)      /* a bad target does not stop the others */
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

/* Whether word names a command that takes -r REASON. */
static bool takes_reason(const char *word)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].reason && strcmp(commands[i].name, word) == 0)
            return true;
    return false;
}

/* One cluster of single-letter options (a without its '-'); 0 to go on,
 * else the exit code (-1: --help was printed). */
static int parse_cluster(const char *a, int argc, char **argv, int *i, const char *cmd, bool *reads)
{
    const char *arg;

    for (const char *o = a; *o; o++) {
        char c = *o;
        struct sel *s = c == 'a' ? &sel_a : c == 'p' ? &sel_p : c == 'o' ? &sel_o : NULL;
        if (c == 'r' && cmd && takes_reason(cmd)) {
            if (!(arg = opt_arg(&o, argc, argv, i, false)))
                return ctl_fail(CTL_EXIT_USAGE, "option -r needs a reason");
            opt_reason = arg;
            continue;
        }
        if (c == 'r' && cmd)
            return ctl_fail(CTL_EXIT_USAGE, "%s takes no -r (a reason is for disable and reject)", cmd);
        *reads |= c != 'S';
        if (s) {
            if (sel_add(s, opt_arg(&o, argc, argv, i, true)) != 0)
                return CTL_EXIT_USAGE;
        } else if (c == 'S' || c == 'W') {
            if (!(arg = opt_arg(&o, argc, argv, i, false)))
                return ctl_fail(CTL_EXIT_USAGE, "option -%c needs an argument", c);
            *(c == 'S' ? &sock_path : &opt_which) = arg;
        } else if (c == 'l') {
            opt_long = true;
        } else if (c == 'r' || c == 't') {
            want_r = true;
            if (c == 't')   /* -t is -r -a -p -o */
                sel_add(&sel_a, NULL), sel_add(&sel_p, NULL), sel_add(&sel_o, NULL);
        } else if (c == 'h') {
            print_help();
            return -1;
        } else {
            return ctl_fail(CTL_EXIT_USAGE, "unknown option '-%c'", c);
        }
    }
    return 0;
}

/* Reads the command line into the globals and cmd; returns -1 to go on,
 * else the exit code. */
static int parse_args(int argc, char **argv, char **cmd, int *ncmd)
{
    bool reads = false;
    int rc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
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
            return ctl_fail(CTL_EXIT_USAGE, "unknown option '%s'", a);
        } else if ((rc = parse_cluster(a + 1, argc, argv, &i, *ncmd ? cmd[0] : NULL, &reads)) != 0) {
            return rc < 0 ? CTL_EXIT_OK : rc;
        }
    }
    if (*ncmd && reads)
        return ctl_fail(CTL_EXIT_USAGE, "'%s' cannot be combined with -o, -p, -a, -r, -t, -l or -W", cmd[0]);
    if (opt_which && strcmp(opt_which, "completed") && strcmp(opt_which, "not-completed")
        && strcmp(opt_which, "all"))
        return ctl_fail(CTL_EXIT_USAGE, "-W takes completed, not-completed or all");
    if (opt_which && !sel_o.want && (want_r || sel_a.want || sel_p.want))
        return ctl_fail(CTL_EXIT_USAGE, "-W applies to -o");
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
        return ctl_fail(CTL_EXIT_USAGE, "socket path '%s' is empty or too long", sock_path);
    if (ctl_http_open(sock_path) < 0)
        return ctl_fail(CTL_EXIT_ERROR, "cannot initialise libcurl");
    rc = ncmd ? run_command(ncmd, cmd) : run_reads();
    ctl_http_close();
    if (fflush(stdout) == EOF && rc == CTL_EXIT_OK)
        rc = ctl_fail(CTL_EXIT_ERROR, "cannot write the output: %s", strerror(errno));
    return rc;
}
