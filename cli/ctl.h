/* ctl.h - what copeesctl's files share: exit codes, the socket client
 * (http.c), the lpstat-shaped output (output.c). */
#ifndef COPEES_CTL_H
#define COPEES_CTL_H

#include <stdbool.h>
#include <stddef.h>
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

/* Prints "copeesctl: MESSAGE" on stderr (and a hint after a usage
 * error); returns rc. */
__attribute__((format(printf, 2, 3))) int ctl_fail(int rc, const char *fmt, ...);

/* ---- http.c: HTTP/1.1 to copeesd's socket (libcurl) */

/* Opens the client for the socket at path (borrowed for the whole run);
 * -1 when libcurl cannot be initialised. */
int ctl_http_open(const char *path);
void ctl_http_close(void);

/* Sends METHOD PATH (no body).  Returns CTL_EXIT_OK with the parsed
 * answer in *out (owned by the caller), or another exit code with a
 * message for a human in err and *out NULL. */
int ctl_api_call(const char *method, const char *path, json_t **out, char *err, size_t errlen);

/* Percent-encodes s for a path segment or query value; the result is
 * owned by the caller (free()), NULL when out of memory. */
char *ctl_escape(const char *s);

/* ---- output.c: lpstat's shapes */

/* Borrowed string member, or NULL when absent or not a string. */
const char *jstr(const json_t *o, const char *key);
/* Integer member, 0 when absent. */
long long jint(const json_t *o, const char *key);

/* An RFC 3339 time as lpstat prints dates ("Tue Nov 24 10:01:02 2026",
 * local time) into buf; returns buf, "-" for NULL, or the text itself
 * when it cannot be parsed. */
const char *ctl_date(const char *rfc, char *buf, size_t len);

/* The job's printer for a job line: its printer, or "copees" while it has
 * none (borrowed). */
const char *ctl_job_dest(const json_t *job);

void ctl_print_json(const json_t *j);
/* -r: copeesd's health document. */
void ctl_print_health(const json_t *health);
/* -a: one printer's lines. */
void ctl_print_accepting(const json_t *printer);
/* -p: one printer's lines; with lng its details. */
void ctl_print_printer(const json_t *printer, bool lng);
/* -o: one job's line; with lng its details. */
void ctl_print_job(const json_t *job, bool lng);

#endif
