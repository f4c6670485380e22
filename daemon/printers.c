/* printers.c - the printer table's own logic: capability, availability,
 * our enable/accept switches (persisted), the printers' JSON.
 *
 * Design notes: a printer is available when our switches allow it and
 * CUPS reports it idle or processing, accepting, with no reason that
 * stops printing.  CUPS and IPP printers suffix reasons with -error,
 * -warning or -report: media-empty, toner-empty, jams, open doors, paused
 * and the like block whatever the suffix (CUPS reports an empty tray as
 * media-empty-warning while a job waits for paper); any other -error
 * blocks; other warnings and reports do not.  Signs of an unreachable
 * printer -- connecting-to-device, offline, timed-out, or CUPS's ipp
 * backend saying the printer "may not exist or is unavailable" / "is not
 * responding" in printer-state-message (it retries forever and clears its
 * reasons at once) -- block once they have lasted five polls (every job
 * starts with a short connecting-to-device).  Our switches act on our
 * routing, never on CUPS's queues, and survive restarts in
 * state_dir/printers.json (written atomically).
 *
 * A queue whose device is copees:... prints through our CUPS backend,
 * which cupsd runs as lp with no supplementary group: /v1/health warns
 * when lp may not connect to the API socket (its mode, group and ACL), as
 * happens when the socket's ACL entry for lp is missing or was stripped.
 * The answer is kept 10 s: the check reads the passwd database and the
 * socket's attributes on the loop.
 */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <glib.h>

#include "conf.h"
#include "daemon.h"
#include "events.h"
#include "job.h"
#include "log.h"
#include "sched-int.h"
#include "sched.h"
#include "sockacl.h"
#include "store.h"
#include "util.h"

static void switches_save(void);

/* ------------------------------------------------------------ printers */

struct printer *printer_find(const char *name)
{
    for (size_t i = 0; name && i < sched_nprinters; i++)
        if (strcmp(sched_printers[i].name, name) == 0)
            return &sched_printers[i];
    return NULL;
}

struct printer *printer_by_queue(const char *queue)
{
    for (size_t i = 0; i < sched_nprinters; i++)
        if (strcmp(sched_printers[i].cp->queue, queue) == 0)
            return &sched_printers[i];
    return NULL;
}

bool printer_can(const struct printer *p, const struct qclass *c)
{
    const struct conf_printer *cp = p->cp;
    bool media = false;
    for (char **m = cp->media; m && *m && !media; m++)
        media = strcmp(*m, c->media) == 0;
    if (!media || (c->color && !cp->color) || (c->duplex && !cp->duplex))
        return false;
    return !c->pinned[0] || strcmp(c->pinned, p->name) == 0;
}

/* Printer-state-reasons that mean the printer cannot print now.  CUPS and
 * IPP printers add -error/-warning/-report suffixes: "-warning" still
 * prints; "connecting-to-device" and offline ones count after a grace of
 * five polls (every job starts with a short connecting-to-device). */
static bool reason_blocks(const char *kw)
{
    static const char *const hard[] = {"media-empty", "media-needed", "media-jam", "toner-empty",
                                       "marker-supply-empty", "door-open", "cover-open",
                                       "input-tray-missing", "output-area-full", "paused",
                                       "shutdown", "stopped", "interlock-open", NULL};
    char base[64];
    xstrlcpy(base, kw, sizeof base);
    size_t n = strlen(base);
    bool error = n > 6 && strcmp(base + n - 6, "-error") == 0;
    char *dash = strrchr(base, '-');
    if (dash && (!strcmp(dash, "-error") || !strcmp(dash, "-warning") || !strcmp(dash, "-report")))
        *dash = '\0';
    /* CUPS reports a printer's media-empty as media-empty-warning while a
     * job waits for paper: these block whatever their severity.  Signs of
     * an unreachable printer are printer_unreachable_sign()'s. */
    for (int i = 0; hard[i]; i++)
        if (strcmp(base, hard[i]) == 0)
            return true;
    return error;
}

bool printer_unreachable_sign(const struct printer *p)
{
    static const char *const msgs[] = {"unavailable", "not responding", "not exist",
                                       "unable to connect", "offline", NULL};
    if (p->probe_failed)
        return true;
    char rs[sizeof p->preasons];
    xstrlcpy(rs, p->preasons, sizeof rs);
    for (char *save = NULL, *t = strtok_r(rs, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t n = strlen(t);
        if (n > 8 && strcmp(t + n - 8, "-warning") == 0)
            continue;                 /* a warning never blocks */
        if (strncmp(t, "connecting-to-device", 20) == 0 || strncmp(t, "offline", 7) == 0 ||
            strncmp(t, "timed-out", 9) == 0)
            return true;
    }
    for (int i = 0; msgs[i]; i++)
        if (strcasestr(p->pmessage, msgs[i]))
            return true;
    return false;
}

/* CUPS reports the queue ready to print: idle or processing, accepting,
 * no blocking reason, no lasting sign of an unreachable printer. */
static bool cups_ready(const struct printer *p)
{
    if (!p->cups_accepting || (p->pstate != 3 && p->pstate != 4))
        return false;
    char rs[sizeof p->preasons];
    xstrlcpy(rs, p->preasons, sizeof rs);
    for (char *save = NULL, *t = strtok_r(rs, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (reason_blocks(t))
            return false;
    return !(p->blocked_since &&
             mono_ms() - p->blocked_since >= 5 * D.conf->poll_interval_ms);
}

bool printer_available(const struct printer *p)
{
    return p->enabled && p->accepting && cups_ready(p);
}

bool printer_halted(const struct printer *p)
{
    return !p->enabled || !cups_ready(p);
}

bool printer_has_slot(const struct printer *p)
{
    return p->inflight < p->cp->max_inflight && mono_ms() >= p->retry_after;
}

void printer_release(struct printer *p, int64_t job_id, int64_t pages)
{
    if (!p)
        return;
    if (p->inflight > 0)
        p->inflight--;
    p->pages_inflight -= pages;
    if (p->pages_inflight < 0 || p->inflight == 0)
        p->pages_inflight = 0;
    if (p->printing_job == job_id)
        p->printing_job = 0;
    sched_kick();
}

void printer_changed(struct printer *p)
{
    bool now = printer_available(p);
    events_publish_printer(printer_json(p));
    if (p->was_available && !now && sched_reconciled && p->inflight > 0 && printer_halted(p))
        track_withdraw_waiting(p, !p->enabled ? "printer-disabled" : "printer-stopped");
    p->was_available = now;
    if (now)
        sched_kick();
}

static const char *pstate_name(int s)
{
    switch (s) {
    case 3: return "idle";
    case 4: return "processing";
    case 5: return "stopped";
    default: return "unknown";
    }
}

/* One printer's JSON (new reference): an element of GET /v1/printers. */
json_t *printer_json(const struct printer *p)
{
    json_t *media = json_array(), *reasons = json_array();
    char since[32];
    for (char **m = p->cp->media; m && *m; m++)
        json_array_append_new(media, json_string(*m));
    char rs[256];
    xstrlcpy(rs, p->preasons, sizeof rs);
    for (char *save = NULL, *t = strtok_r(rs, ",", &save); t; t = strtok_r(NULL, ",", &save))
        if (strcmp(t, "none") != 0)
            json_array_append_new(reasons, json_string(t));
    return json_pack(
        "{s:s, s:s, s:s, s:o, s:s, s:b, s:b, s:b, s:s?, s:s, s:o, s:o, s:b, s:b, s:i, s:i, s:b, s:i}",
        "name", p->name, "queue", p->cp->queue, "state", pstate_name(p->pstate),
        "state_reasons", reasons, "state_message", p->pmessage, "enabled", p->enabled, "accepting", p->accepting,
        "available", printer_available(p), "reason", p->why[0] ? p->why : NULL,
        "state_since", time_rfc3339(p->since, since, sizeof since),
        "printing_job", p->printing_job ? json_integer(p->printing_job) : json_null(),
        "media", media, "color", p->cp->color, "duplex", p->cp->duplex,
        "ppm", p->cp->ppm, "max_inflight", p->cp->max_inflight,
        "cover_sheet", p->cp->cover_sheet, "jobs_active", p->inflight);
}

json_t *sched_printers_json(void)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < sched_nprinters; i++)
        json_array_append_new(arr, printer_json(&sched_printers[i]));
    return json_pack("{s:o}", "printers", arr);
}

/* ------------------------------------------------------------ switches */

static char *switches_path(void)
{
    return g_build_filename(D.conf->state_dir, "printers.json", NULL);
}

/* Write our switches atomically (tmp, fsync, rename, fsync dir). */
static void switches_save(void)
{
    json_t *o = json_object();
    for (size_t i = 0; i < sched_nprinters; i++) {
        const struct printer *p = &sched_printers[i];
        json_object_set_new(o, p->name, json_pack("{s:b, s:b, s:I, s:s}", "enabled", p->enabled,
                                                  "accepting", p->accepting,
                                                  "since", (json_int_t)p->since, "reason", p->why));
    }
    char *path = switches_path(), *tmp = g_strconcat(path, ".tmp", NULL);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    bool ok = fd >= 0 && text && write(fd, text, strlen(text)) == (ssize_t)strlen(text) &&
              fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (ok && rename(tmp, path) == 0)
        fsync_dir(D.conf->state_dir);
    else
        log_err("sched: cannot save the printer switches to %s: %s", path, strerror(errno));
    free(text);
    g_free(tmp);
    g_free(path);
}

void printers_switches_load(void)
{
    char *path = switches_path();
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    if (o) {
        for (size_t i = 0; i < sched_nprinters; i++) {
            struct printer *p = &sched_printers[i];
            json_t *e = json_object_get(o, p->name);
            const char *why = NULL;
            json_int_t since = 0;
            int en = 1, acc = 1;
            if (e && json_unpack(e, "{s:b, s:b, s?I, s?s}", "enabled", &en, "accepting", &acc,
                                 "since", &since, "reason", &why) == 0) {
                p->enabled = en;
                p->accepting = acc;
                if (since)
                    p->since = since;
                xstrlcpy(p->why, why ? why : "", sizeof p->why);
            }
        }
        json_decref(o);
    }
    g_free(path);
}

int sched_printer_switch(const char *name, const char *action, const char *reason, int64_t uid,
                         json_t **out)
{
    struct printer *p = printer_find(name);
    if (!p)
        return -1;
    bool *sw, val;
    if (strcmp(action, "enable") == 0)
        sw = &p->enabled, val = true;
    else if (strcmp(action, "disable") == 0)
        sw = &p->enabled, val = false;
    else if (strcmp(action, "accept") == 0)
        sw = &p->accepting, val = true;
    else if (strcmp(action, "reject") == 0)
        sw = &p->accepting, val = false;
    else
        return -2;
    if (*sw != val || (!val && reason && strcmp(reason, p->why) != 0)) {
        *sw = val;
        p->since = now_s();
        xstrlcpy(p->why, !p->enabled || !p->accepting ? (reason ? reason : p->why) : "",
                 sizeof p->why);
        switches_save();
        char detail[160];
        snprintf(detail, sizeof detail, "printer %s: %s", p->name, action);
        store_event_add(D.store, 0, "printer", uid, detail);
        log_msg(LOG_LVL_INFO, "sched: printer %s: %s (uid %lld)", p->name, action, (long long)uid);
        printer_changed(p);
    }
    if (out)
        *out = printer_json(p);
    return 0;
}

const char *sched_move_refusal(const struct job *j, const char *name, const char **msg)
{
    struct printer *p = printer_find(name);
    if (!p) {
        *msg = "There is no such printer.";
        return "no-such-printer";
    }
    struct qclass c = {0};
    xstrlcpy(c.media, j->media, sizeof c.media);
    c.color = strcmp(j->color, "color") == 0;
    c.duplex = strcmp(j->sides, "one-sided") != 0;
    if (!printer_can(p, &c)) {
        *msg = "That printer cannot print this job's media, colour or sides.";
        return "printer-cannot-print";
    }
    if (!p->accepting) {
        *msg = "That printer does not accept jobs now.";
        return "printer-not-accepting";
    }
    return NULL;
}

/* ------------------------------------------------------------ the backend's access */

void sched_backend_warnings(json_t *arr)
{
    static int64_t checked_at = -1;
    static char warning[256];
    const char *queue = NULL;

    for (size_t i = 0; i < sched_nprinters && !queue; i++)
        if (strncmp(sched_printers[i].device_uri, "copees:", 7) == 0)
            queue = sched_printers[i].cp->queue;
    if (!queue || !D.sock_path[0])
        return;
    if (checked_at < 0 || mono_ms() - checked_at >= 10000) {
        struct passwd *lp = getpwnam("lp");
        warning[0] = '\0';
        if (lp && sockacl_may_connect(D.sock_path, lp->pw_uid, lp->pw_gid) == 0)
            snprintf(warning, sizeof warning,
                     "queue %s prints through the copees backend, which runs as lp and may not "
                     "connect to %s: its page and exit reports are lost (copees(7))",
                     queue, D.sock_path);
        checked_at = mono_ms();
    }
    if (warning[0])
        json_array_append_new(arr, json_string(warning));
}
