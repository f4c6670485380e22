/* api.c - routes of the HTTP API and its read endpoints.
 *
 * Design notes: every request is answered in on_complete (after the whole
 * message), except uploads, whose head is checked in on_headers so that a
 * bad ticket is refused before a byte of the body is stored.  Roles come
 * from SO_PEERCRED: root, the daemon's own uid and admin_group are admin;
 * submit_group is submit; anyone else gets 403 (unset groups grant
 * nothing).  The backend role (lp) arrives with the backend's events.
 */
#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <http_parser.h>

#include "api.h"
#include "backendev.h"
#include "conf.h"
#include "daemon.h"
#include "events.h"
#include "job.h"
#include "jobctl.h"
#include "log.h"
#include "metrics.h"
#include "retctl.h"
#include "sched.h"
#include "store.h"
#include "util.h"

enum role { ROLE_NONE, ROLE_BACKEND, ROLE_SUBMIT, ROLE_ADMIN };

/* Whether uid (primary group gid) belongs to the group called name. */
static bool in_group(const char *name, uid_t uid, gid_t gid)
{
    if (!name)
        return false;
    struct group *g = getgrnam(name);
    if (!g)
        return false;
    if (g->gr_gid == gid)
        return true;
    struct passwd *pw = getpwuid(uid);
    if (!pw)
        return false;
    for (char **m = g->gr_mem; m && *m; m++)
        if (strcmp(*m, pw->pw_name) == 0)
            return true;
    return pw->pw_gid == g->gr_gid;
}

/* Roles of Unix-socket peers are remembered per (uid, gid) for
 * ROLE_CACHE_TTL_MS: working them out reads /etc/passwd and /etc/group,
 * which would otherwise happen for every request.  A changed group
 * membership therefore counts within that time; a reload (a new D.conf)
 * forgets every role at once. */
#define ROLE_CACHE 32
#define ROLE_CACHE_TTL_MS 30000
static struct role_memo { uid_t uid; gid_t gid; enum role role; int64_t until; } role_cache[ROLE_CACHE];
static const struct conf *role_cache_conf;
static unsigned role_cache_next;

static enum role peer_role_lookup(const struct http_req *req);

static enum role peer_role(const struct http_req *req)
{
    if (req->tls)
        return peer_role_lookup(req);
    int64_t now = mono_ms();
    if (role_cache_conf != D.conf) {
        memset(role_cache, 0, sizeof role_cache);
        role_cache_conf = D.conf;
    }
    for (int i = 0; i < ROLE_CACHE; i++)
        if (role_cache[i].until > now && role_cache[i].uid == req->uid &&
            role_cache[i].gid == req->gid)
            return role_cache[i].role;
    enum role r = peer_role_lookup(req);
    role_cache[role_cache_next] = (struct role_memo){req->uid, req->gid, r, now + ROLE_CACHE_TTL_MS};
    role_cache_next = (role_cache_next + 1) % ROLE_CACHE;
    return r;
}

static enum role peer_role_lookup(const struct http_req *req)
{
    /* Over TLS the verified client certificate's CN names the role
     * ([tls] admin_cn, then submit_cn); no CN or another CN: none. */
    if (req->tls) {
        for (char **cn = D.conf->tls_admin_cn; req->tls_cn && cn && *cn; cn++)
            if (strcmp(*cn, req->tls_cn) == 0)
                return ROLE_ADMIN;
        for (char **cn = D.conf->tls_submit_cn; req->tls_cn && cn && *cn; cn++)
            if (strcmp(*cn, req->tls_cn) == 0)
                return ROLE_SUBMIT;
        return ROLE_NONE;
    }
    /* First match wins: lp (the copees backend, run by cupsd) may only
     * report backend events. */
    struct passwd *lp = getpwnam("lp");
    if (lp && req->uid == lp->pw_uid && req->uid != D.uid && req->uid != 0)
        return ROLE_BACKEND;
    if (req->uid == 0 || req->uid == D.uid || in_group(D.conf->admin_group, req->uid, req->gid))
        return ROLE_ADMIN;
    if (in_group(D.conf->submit_group, req->uid, req->gid))
        return ROLE_SUBMIT;
    return ROLE_NONE;
}

static bool is_upload(const struct http_req *req)
{
    return req->method == HTTP_POST && strcmp(req->path, "/v1/jobs") == 0;
}

/* POST /v1/backend/events: the one route besides uploads with a body. */
static bool is_backend_events(const struct http_req *req)
{
    return strcmp(req->path, "/v1/backend/events") == 0;
}

static bool on_headers(struct http_req *req)
{
    enum role role = peer_role(req);
    if (role == ROLE_BACKEND &&
        !(req->method == HTTP_POST && strcmp(req->path, "/v1/backend/events") == 0)) {
        http_respond_error(req, 403, "forbidden", "The backend may only report backend events.");
        return false;
    }
    if (role == ROLE_NONE) {
        http_respond_error(req, 403, "forbidden", "This user may not use the spooler's API.");
        return false;
    }
    if (is_upload(req))
        return intake_headers(req);
    if (is_backend_events(req)) {
        if (role == ROLE_SUBMIT) {
            http_respond_error(req, 403, "forbidden", "Only the backend reports backend events.");
            return false;
        }
        return backendev_headers(req);
    }
    if ((req->has_length && req->content_length > 0) || req->chunked) {
        http_respond_error(req, 413, "body-not-allowed", "This request takes no body.");
        return false;
    }
    return true;
}

static int on_body(struct http_req *req, const char *data, size_t len)
{
    if (is_upload(req))
        return intake_body(req, data, len);
    if (is_backend_events(req))
        return backendev_body(req, data, len);
    return 0;
}

static void on_abort(struct http_req *req)
{
    if (req->ctx && is_upload(req))   /* uploads keep state across callbacks */
        intake_abort(req);
    else if (!req->answer_pending)    /* else its handler answers into the void */
        http_req_free(req);
}

/* ------------------------------------------------------------ reads */

static void get_health(struct http_req *req)
{
    json_t *w = json_array();
    if (D.conf->nprinters == 0)
        json_array_append_new(w, json_string("no printer is configured"));
    if (!sched_cups_ok())
        json_array_append_new(w, json_string("cupsd is unreachable"));
    sched_cups_warnings(w);
    sched_backend_warnings(w);
    http_respond_json(req, 200, json_pack("{s:b, s:s, s:o}", "ready", D.ready,
                                          "cups", sched_cups_ok() ? "ok" : "unreachable",
                                          "warnings", w));
}

static bool parse_id(const char *s, int64_t *id)
{
    char *end;
    if (!s || *s < '1' || *s > '9')
        return false;
    long long v = strtoll(s, &end, 10);
    if (*end || v <= 0)
        return false;
    *id = v;
    return true;
}

static void get_job(struct http_req *req, const char *ids)
{
    int64_t id;
    struct job j;
    if (!parse_id(ids, &id) || store_job_get(D.store, id, &j) < 0) {
        http_respond_error(req, 404, "not-found", "There is no job %s.", ids);
        return;
    }
    http_respond_json(req, 200, job_to_json(&j));
    job_clear(&j);
}

struct list_ctx {
    json_t *jobs;
    int64_t last_id;
    int n, limit;
};

static int list_one(const struct job *j, void *arg)
{
    struct list_ctx *lc = arg;
    if (lc->n == lc->limit)     /* one more than asked: there is a next page */
        return 1;
    json_array_append_new(lc->jobs, job_to_json(j));
    lc->last_id = j->id;
    lc->n++;
    return 0;
}

static void get_jobs(struct http_req *req)
{
    struct store_filter f = STORE_FILTER_INIT;
    struct list_ctx lc = {.jobs = json_array(), .limit = 100};
    char *state = NULL, *order = NULL, *which = NULL, *limit = NULL, *after = NULL;
    bool bad = false, b;
    const char *what = NULL;

    state = http_query_get(req->query, "state", &b); bad |= b;
    order = http_query_get(req->query, "order", &b); bad |= b;
    which = http_query_get(req->query, "which", &b); bad |= b;
    limit = http_query_get(req->query, "limit", &b); bad |= b;
    after = http_query_get(req->query, "after", &b); bad |= b;
    if (bad)
        what = "the query is not correctly percent-encoded";
    unsigned completed = 0;
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        if (job_state_is_completed(s))
            completed |= 1u << s;
    if (!what) {
        if (!which || strcmp(which, "not-completed") == 0)
            f.states = ((1u << JOB_STATE_COUNT) - 1) & ~completed;
        else if (strcmp(which, "completed") == 0)
            f.states = completed;
        else if (strcmp(which, "all") == 0)
            f.states = 0;
        else
            what = "which must be not-completed, completed or all";
    }
    if (!what && state) {
        int s = job_state_from_name(state);
        if (s < 0)
            what = "state is not a job state";
        else
            f.states = 1u << s;
    }
    if (!what && limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end || v < 1 || v > 1000)
            what = "limit must be an integer from 1 to 1000";
        else
            lc.limit = (int)v;
    }
    if (!what && after && !parse_id(after, &f.after_id))
        what = "after must be a job id";
    if (!what) {
        f.order = order;
        f.limit = lc.limit + 1;
        if (store_jobs_query(D.store, &f, list_one, &lc) < 0)
            what = "";
    }
    if (what && *what) {
        json_decref(lc.jobs);
        http_respond_json(req, 400, json_pack("{s:s, s:s}", "error", "bad-query", "message", what));
    } else if (what) {
        json_decref(lc.jobs);
        http_respond_error(req, 500, "internal", "The job list cannot be read.");
    } else {
        json_t *next = lc.n == lc.limit && store_jobs_query(D.store, &(struct store_filter){
                           .states = f.states, .order = f.order, .after_id = lc.last_id, .limit = 1,
                           .document = -1, .sort = STORE_BY_ID}, NULL, NULL) > 0
                       ? json_integer(lc.last_id) : json_null();
        http_respond_json(req, 200, json_pack("{s:o, s:o}", "jobs", lc.jobs, "next", next));
    }
    free(state);
    free(order);
    free(which);
    free(limit);
    free(after);
}

/* POST /v1/jobs/{id}/{action} */
static void job_action(struct http_req *req, const char *rest)
{
    static const struct {
        const char *name;
        void (*fn)(struct http_req *, int64_t);
    } actions[] = {
        {"hold", jobctl_hold},
        {"release", jobctl_release},
        {"move", jobctl_move},
        {"reprint", retctl_reprint},
        {"delivered", retctl_delivered},
        {"shred", retctl_shred},
    };
    char idbuf[24];
    const char *slash = strchr(rest, '/');
    int64_t id;
    size_t n = (size_t)(slash - rest);
    if (n >= sizeof idbuf || strchr(slash + 1, '/')) {
        http_respond_error(req, 404, "not-found", "No such endpoint.");
        return;
    }
    memcpy(idbuf, rest, n);
    idbuf[n] = '\0';
    if (strcmp(slash + 1, "complaint") == 0) {
        if (req->method != HTTP_POST && req->method != HTTP_DELETE)
            http_respond_error(req, 405, "method-not-allowed", "Use POST or DELETE.");
        else if (!parse_id(idbuf, &id))
            http_respond_error(req, 404, "not-found", "There is no job %s.", idbuf);
        else
            retctl_complaint(req, id, req->method == HTTP_POST);
        return;
    }
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strcmp(slash + 1, actions[i].name) != 0)
            continue;
        if (req->method != HTTP_POST)
            http_respond_error(req, 405, "method-not-allowed", "Use POST.");
        else if (!parse_id(idbuf, &id))
            http_respond_error(req, 404, "not-found", "There is no job %s.", idbuf);
        else
            actions[i].fn(req, id);
        return;
    }
    http_respond_error(req, 404, "not-found", "No such endpoint.");
}

/* POST /v1/printers/{name}/{enable,disable,accept,reject}[?reason=] */
static void printer_action(struct http_req *req, const char *rest)
{
    const char *slash = strchr(rest, '/');
    if (!slash || slash == rest || strchr(slash + 1, '/')) {
        http_respond_error(req, 404, "not-found", "No such endpoint.");
        return;
    }
    char name[64];
    size_t n = (size_t)(slash - rest);
    if (n >= sizeof name) {
        http_respond_error(req, 404, "not-found", "There is no such printer.");
        return;
    }
    memcpy(name, rest, n);
    name[n] = '\0';
    const char *action = slash + 1;
    if (strcmp(action, "enable") && strcmp(action, "disable") && strcmp(action, "accept") &&
        strcmp(action, "reject")) {
        http_respond_error(req, 404, "not-found", "No such endpoint.");
        return;
    }
    if (req->method != HTTP_POST) {
        http_respond_error(req, 405, "method-not-allowed", "Use POST.");
        return;
    }
    if (peer_role(req) != ROLE_ADMIN) {
        http_respond_error(req, 403, "forbidden", "Only an admin may switch printers.");
        return;
    }
    bool bad = false;
    char *reason = http_query_get(req->query, "reason", &bad);
    json_t *out = NULL;
    if (bad) {
        http_respond_json(req, 400, json_pack("{s:s, s:s, s:s}", "error", "bad-query", "field",
                                              "reason", "message",
                                              "reason is not correctly percent-encoded"));
    } else if (reason && strlen(reason) > 120) {
        http_respond_json(req, 400, json_pack("{s:s, s:s, s:s}", "error", "bad-query", "field",
                                              "reason", "message",
                                              "reason must be at most 120 characters"));
    } else if (sched_printer_switch(name, action, reason, (int64_t)req->uid, &out) < 0) {
        http_respond_error(req, 404, "not-found", "There is no printer %s.", name);
    } else {
        http_respond_json(req, 200, out);
    }
    free(reason);
}

static void on_complete(struct http_req *req)
{
    const char *p = req->path;
    bool get = req->method == HTTP_GET;

    if (is_upload(req)) {
        intake_complete(req);
        return;
    }
    if (is_backend_events(req)) {
        backendev_complete(req);
        return;
    }
    if (strcmp(p, "/v1/health") == 0) {
        if (get)
            get_health(req);
        else
            http_respond_error(req, 405, "method-not-allowed", "Use GET.");
    } else if (strcmp(p, "/v1/jobs") == 0) {
        if (get)
            get_jobs(req);
        else
            http_respond_error(req, 405, "method-not-allowed", "Use GET or POST.");
    } else if (strncmp(p, "/v1/jobs/", 9) == 0 && !strchr(p + 9, '/')) {
        int64_t id;
        if (req->method == HTTP_DELETE && parse_id(p + 9, &id))
            jobctl_cancel(req, id);
        else if (get)
            get_job(req, p + 9);
        else if (req->method == HTTP_DELETE)
            http_respond_error(req, 404, "not-found", "There is no job %s.", p + 9);
        else
            http_respond_error(req, 405, "method-not-allowed", "Use GET or DELETE.");
    } else if (strncmp(p, "/v1/jobs/", 9) == 0) {
        job_action(req, p + 9);
    } else if (strcmp(p, "/metrics") == 0) {
        char *text = get ? metrics_render() : NULL;
        if (text)
            http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
        else if (get)
            http_respond_error(req, 500, "internal", "Out of memory.");
        else
            http_respond_error(req, 405, "method-not-allowed", "Use GET.");
        free(text);
    } else if (strcmp(p, "/v1/events") == 0) {
        if (get)
            events_subscribe(req);
        else
            http_respond_error(req, 405, "method-not-allowed", "Use GET.");
    } else if (strncmp(p, "/v1/printers/", 13) == 0) {
        printer_action(req, p + 13);
    } else if (strcmp(p, "/v1/printers") == 0) {
        if (get)
            http_respond_json(req, 200, sched_printers_json());
        else
            http_respond_error(req, 405, "method-not-allowed", "Use GET.");
    } else {
        http_respond_error(req, 404, "not-found", "No such endpoint.");
    }
}

const struct http_handler api_handler = {
    .on_headers = on_headers,
    .on_body = on_body,
    .on_complete = on_complete,
    .on_abort = on_abort,
};
