/* main.c - copeesd: start-up, signals, shutdown.
 *
 * Start-up order: config, log, directories (spool, state), store, local
 * reconciliation (shred leftovers in incoming/, shred documents without a
 * row, mark rows whose document is gone), the API socket (from systemd or
 * our own), the I/O workers and the CUPS link; then READY=1.  Dispatch
 * starts only once CUPS has answered (sched.c).  SIGTERM drains: the
 * listener closes, requests that arrive get 503, uploads and preflights
 * under way finish (up to DRAIN_MAX seconds), then the loop ends.  SIGHUP
 * re-reads the config; a bad file is refused and the old one kept.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <event2/event.h>
#include <glib.h>
#include <event2/thread.h>

#include "api.h"
#include "conf.h"
#include "cupslink.h"
#include "daemon.h"
#include "events.h"
#include "http.h"
#include "iopool.h"
#include "log.h"
#include "preflight.h"
#include "retention.h"
#include "sched.h"
#include "sdnotify.h"
#include "spool.h"
#include "store.h"
#include "tls.h"
#include "util.h"

#define DRAIN_MAX 30      /* seconds to let work in flight finish */
#define IO_THREADS 2

struct daemon D;
static struct event *drain_ev;
static int64_t drain_started;
static bool own_socket;

static void usage(FILE *f)
{
    fprintf(f, "usage: copeesd [-c FILE] [-f] [-d] [-C] [-h] [-V]\n"
               "  -c FILE  configuration file (default %s)\n"
               "  -C       claim spool_dir even without this database's mark\n"
               "  -f       stay in the foreground\n"
               "  -d       log debug lines to stderr\n", COPEES_CONF_DEFAULT);
}

/* ------------------------------------------------------------ socket */

/* The file name a listening Unix socket is bound to (passed by systemd or
 * made by make_socket) into buf; "" when it has none (abstract, unnamed)
 * or it does not fit.  For /v1/health's check that the copees backend may
 * connect. */
static void bound_path(int fd, char *buf, size_t size)
{
    struct sockaddr_un sa;
    socklen_t len = sizeof sa;
    const size_t off = offsetof(struct sockaddr_un, sun_path);

    buf[0] = '\0';
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0 || sa.sun_family != AF_UNIX ||
        len <= off || !sa.sun_path[0])
        return;
    size_t n = strnlen(sa.sun_path, len - off);
    if (n < size) {
        memcpy(buf, sa.sun_path, n);
        buf[n] = '\0';
    }
}

static int make_socket(const struct conf *c)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    char dir[sizeof sa.sun_path];

    if (strlen(c->socket) >= sizeof sa.sun_path)
        fatal("socket path too long: %s", c->socket);
    strcpy(sa.sun_path, c->socket);
    xstrlcpy(dir, c->socket, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST)
            fatal("cannot create %s: %s", dir, strerror(errno));
    }
    /* A stale socket from a previous run: remove it, but never a file that
     * is not a socket. */
    if (lstat(c->socket, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            fatal("%s exists and is not a socket", c->socket);
        unlink(c->socket);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        fatal("socket: %s", strerror(errno));
    mode_t old = umask(0777 & ~c->socket_mode);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        fatal("cannot bind %s: %s", c->socket, strerror(errno));
    umask(old);
    if (chmod(c->socket, c->socket_mode) < 0)
        fatal("chmod %s: %s", c->socket, strerror(errno));
    if (c->socket_group) {
        struct group *g = getgrnam(c->socket_group);
        if (!g)
            fatal("socket_group %s: no such group", c->socket_group);
        if (chown(c->socket, (uid_t)-1, g->gr_gid) < 0)
            fatal("chown %s: %s", c->socket, strerror(errno));
    }
    if (listen(fd, 128) < 0)
        fatal("listen: %s", strerror(errno));
    own_socket = true;
    return fd;
}

/* ------------------------------------------------------------ recovery */

/* Names of the documents the store knows (a set: 100,000 jobs must not
 * cost 100,000 x 100,000 comparisons at startup). */
static int collect_name(const struct job *j, void *arg)
{
    g_hash_table_add((GHashTable *)arg, g_strdup(j->doc_name));
    return 0;
}

static bool name_known(const char *name, void *arg)
{
    return g_hash_table_contains((GHashTable *)arg, name);
}

/* A document whose retention has ended (canceled, rejected, or past
 * retain_until): its shred may have run, or been cut short after the
 * rename, so its absence proves nothing. */
static bool doc_due(const struct job *j)
{
    return j->state == JOB_STATE_CANCELED || j->state == JOB_STATE_REJECTED ||
           (j->retain_until > 0 && j->retain_until <= now_s());
}

static int check_lost(const struct job *cj, void *arg)
{
    if (spool_job_exists(D.spool, cj->doc_name))
        return 0;
    struct job j;
    job_copy(&j, cj);
    if (doc_due(&j)) {
        /* A shred cut short after its rename: the name goes only after
         * the overwrite reached the disk, so the document is gone. */
        j.document_present = false;
        j.shredded_at = now_s();
        store_job_save(D.store, &j, "shred", -1,
                       "completed at startup: the overwritten file had already been renamed away");
        log_job(LOG_LVL_INFO, j.id, NULL, "startup: an interrupted shred is recorded as done");
        job_clear(&j);
        return 0;
    }
    log_job(LOG_LVL_ERR, j.id, NULL, "startup: the job's document is missing");
    job_reason_add(&j, "document-lost");
    j.document_present = false;
    store_job_save(D.store, &j, "document-lost", -1, "document missing at startup");
    job_clear(&j);
    return 0;
}

struct doc_count {
    int listed, found;
};

/* Count the documents still meant to be kept (not due) and those of them
 * in the spool. */
static int count_found(const struct job *j, void *arg)
{
    struct doc_count *c = arg;
    if (doc_due(j))
        return 0;
    c->listed++;
    if (spool_job_exists(D.spool, j->doc_name))
        c->found++;
    return 0;
}

#define META_SPOOL_MARKED "spool_marked"

/* The spool must be this database's before anything in it is shredded or
 * any job is marked lost: spool_dir on a volume that is not mounted is an
 * empty directory, in which every document would be "missing" (and, the
 * volume back, a later start would shred them all as unknown), and a
 * database from elsewhere would have the sweep shred every document.  So
 * spool_dir carries the instance id (spool_mark_*), and the database
 * records (meta spool_marked) that it has marked one: from then on a
 * spool without the mark is refused, whatever the database lists, unless
 * the admin starts once with -C to hand it a new spool.  A database that
 * never marked one (new, or from before the mark existed) claims an
 * unmarked spool only when it holds at least one of the documents still
 * to be kept, or there are none. */
static void claim_spool(bool claim)
{
    char mark[64], marked[32];
    const char *mine = store_instance(D.store);
    int m = spool_mark_read(D.spool, mark, sizeof mark);
    if (m < 0)
        fatal("startup: cannot read %s/.instance: %s; the spool is left untouched",
              D.conf->spool_dir, strerror(errno));
    int r = store_meta_get(D.store, META_SPOOL_MARKED, marked, sizeof marked);
    if (r < 0)
        fatal("startup: the database's meta table cannot be read; the spool is left untouched");
    if (m == 1) {
        if (strcmp(mark, mine))
            fatal("startup: spool_dir %s belongs to instance %s but the database in %s is "
                  "instance %s (another volume, or a database from elsewhere); the spool is "
                  "left untouched", D.conf->spool_dir, mark, D.conf->state_dir, mine);
        if (r == 0 && store_meta_set(D.store, META_SPOOL_MARKED, "1") < 0)
            fatal("startup: cannot record in the database that the spool is marked");
        return;
    }
    struct doc_count c = {0, 0};
    struct store_filter f = STORE_FILTER_INIT;
    f.document = 1;
    if (store_jobs_query(D.store, &f, count_found, &c) < 0)
        fatal("startup: the jobs cannot all be read from the database, so the spool is left "
              "untouched; check it (sqlite3 DB 'PRAGMA integrity_check') or restore it");
    if (!claim && r == 1)
        fatal("startup: spool_dir %s has lost its instance mark (.instance), which this "
              "database wrote; is its volume mounted?  The spool and the jobs are left "
              "untouched.  To give copeesd a new, empty spool on purpose, start it once with "
              "-C", D.conf->spool_dir);
    if (!claim && c.listed > 0 && c.found == 0)
        fatal("startup: spool_dir %s has no instance mark and none of the %d document%s the "
              "database still keeps; is its volume mounted?  The spool and the jobs are left "
              "untouched.  To give copeesd a new spool on purpose (those documents will be "
              "marked lost), start it once with -C", D.conf->spool_dir, c.listed,
              c.listed == 1 ? "" : "s");
    if (spool_mark_write(D.spool, mine) < 0)
        fatal("startup: cannot write %s/.instance: %s", D.conf->spool_dir, strerror(errno));
    if (store_meta_set(D.store, META_SPOOL_MARKED, "1") < 0)
        fatal("startup: cannot record in the database that the spool is marked");
    log_info("startup: spool_dir %s marked as instance %s%s (%d of %d documents found)",
             D.conf->spool_dir, mine, claim ? " on request (-C)" : "", c.found, c.listed);
}

/* Local reconciliation before READY (see DESIGN: Startup).  The spool's
 * files are shredded only against a complete list of the jobs' names: a
 * job row that cannot be read stops the start, as shredding what it names
 * would lose an acknowledged document. */
static void recover(bool claim)
{
    claim_spool(claim);
    GHashTable *names = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    struct store_filter f = STORE_FILTER_INIT;
    f.document = 1;
    if (store_jobs_query(D.store, &f, collect_name, names) < 0)
        fatal("startup: the jobs cannot all be read from the database, so the spool is left "
              "untouched; check it (sqlite3 DB 'PRAGMA integrity_check') or restore it");
    int n = spool_recover(D.spool, name_known, names, D.conf->shred_passes);
    if (n < 0)
        fatal("startup: the spool's directories (incoming/, jobs/) cannot be read");
    if (n > 0)
        log_info("startup: shredded %d unacknowledged file%s", n, n == 1 ? "" : "s");
    g_hash_table_destroy(names);
    if (store_jobs_query(D.store, &f, check_lost, NULL) < 0)
        fatal("startup: the jobs cannot all be read from the database; check it (sqlite3 DB "
              "'PRAGMA integrity_check') or restore it");
}

/* ------------------------------------------------------------ signals */

static void status_update(void)
{
    int64_t c[JOB_STATE_COUNT];
    if (store_count_states(D.store, c) == 0)
        sdn_status("%lld queued, %lld in CUPS, %lld printed kept", (long long)c[JOB_STATE_QUEUED],
                   (long long)(c[JOB_STATE_SENT] + c[JOB_STATE_PRINTING]), (long long)c[JOB_STATE_PRINTED]);
}

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    int busy = intake_busy() + retention_busy() + iopool_pending();
    if (busy == 0 || now_s() - drain_started >= DRAIN_MAX) {
        if (busy)
            log_warn("shutdown: %d operations still under way after %d s; stopping anyway "
                     "(acknowledged jobs resume at the next start)", busy, DRAIN_MAX);
        event_base_loopexit(D.base, NULL);
        return;
    }
    struct timeval tv = {0, 50000};
    evtimer_add(drain_ev, &tv);
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    if (D.draining)
        return;
    log_info("shutdown: signal %d, draining", (int)sig);
    sdn_stopping();
    D.draining = true;
    http_drain();
    events_drain();
    drain_started = now_s();
    drain_ev = evtimer_new(D.base, drain_cb, NULL);
    drain_cb(-1, 0, NULL);
}

static void sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    char *err = NULL;
    sdn_reloading();
    struct conf *c = conf_load(D.conf->path, &err);
    if (!c) {
        log_err("reload: %s; keeping the running configuration", err ? err : "error");
        free(err);
    } else {
        if (strcmp(c->spool_dir, D.conf->spool_dir) || strcmp(c->state_dir, D.conf->state_dir) ||
            strcmp(c->socket, D.conf->socket))
            log_warn("reload: spool_dir, state_dir and socket take effect at the next start");
        if ((c->tls_listen == NULL) != (D.conf->tls_listen == NULL) ||
            (c->tls_listen && strcmp(c->tls_listen, D.conf->tls_listen)))
            log_warn("reload: [tls] changes take effect at the next start");
        struct conf *old = D.conf;
        D.conf = c;
        retention_configure();
        sched_reload();
        retention_kick();
        conf_free(old);
        log_info("reload: configuration re-read (%zu printer%s)", c->nprinters,
                 c->nprinters == 1 ? "" : "s");
    }
    sdn_reloaded();
    status_update();
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (!preflight_child_exited(pid, status))
            log_debug("main: reaped unknown child %d", (int)pid);
}

static void status_cb(evutil_socket_t fd, short what, void *arg)
{
    status_update();
}

#ifdef COPEES_TEST_KNOBS
/* Test builds: SIGUSR2 blocks the loop for COPEES_TEST_STALL seconds, once
 * per signal, so a test sees the watchdog pings stop and resume. */
static void stall_cb(evutil_socket_t sig, short what, void *arg)
{
    const char *v = getenv("COPEES_TEST_STALL");
    struct timespec ts = {.tv_sec = v ? atoi(v) : 0};
    if (ts.tv_sec <= 0)
        return;
    log_info("test: stalling the loop for %d s", (int)ts.tv_sec);
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    log_info("test: the loop runs again");
}
#endif

/* ------------------------------------------------------------ main */

static const char *find_helper(void)
{
    const char *h = getenv("COPEES_PREFLIGHT_HELPER");   /* build-tree runs and tests */
    return h && *h ? h : PREFLIGHT_HELPER_PATH;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    bool foreground = false, debug = false, claim = false;
    int ch;
    char *err = NULL;

    while ((ch = getopt(argc, argv, "c:fdChV")) != -1) {
        switch (ch) {
        case 'c': conf_path = optarg; break;
        case 'f': foreground = true; break;
        case 'd': debug = true; break;
        case 'C': claim = true; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("copeesd %s\n", PACKAGE_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    (void)foreground;   /* copeesd never forks: systemd and tests supervise it */
    /* fds 0-2 must be open, so that no document is ever opened as fd 0
     * (the preflight helper gets its document as stdin via dup2). */
    int nullfd;
    while ((nullfd = open("/dev/null", O_RDWR)) >= 0 && nullfd <= 2)
        ;
    if (nullfd > 2)
        close(nullfd);
    log_init("copeesd", debug);
    if (!conf_path && access(COPEES_CONF_DEFAULT, F_OK) == 0)
        conf_path = COPEES_CONF_DEFAULT;
    D.conf = conf_load(conf_path, &err);
    if (!D.conf) {
        fprintf(stderr, "copeesd: %s\n", err ? err : "cannot read the configuration");
        return 1;
    }
    retention_configure();
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    D.uid = geteuid();
    struct passwd *pw = getpwuid(D.uid);
    D.user = pw ? strdup(pw->pw_name) : "copees";
    D.preflight_helper = find_helper();
    if (access(D.preflight_helper, X_OK) < 0)
        fatal("preflight helper %s: %s", D.preflight_helper, strerror(errno));

    D.spool = spool_open(D.conf->spool_dir, &err);
    if (!D.spool)
        fatal("%s", err ? err : "cannot open the spool");
    if (spool_private_dir(D.conf->state_dir, &err) < 0)
        fatal("%s", err ? err : "cannot open the state directory");
    char dbpath[4096];
    snprintf(dbpath, sizeof dbpath, "%s/copees.db", D.conf->state_dir);
    D.store = store_open(dbpath, &err);
    if (!D.store)
        fatal("%s", err ? err : "cannot open the store");

    if (evthread_use_pthreads() < 0)
        fatal("libevent without thread support");
    D.base = event_base_new();
    if (!D.base)
        fatal("event_base_new failed");
    if (events_init(D.base, D.store) < 0)
        fatal("cannot start the event stream");

    recover(claim);

    int lfd = sdn_listen_fd();
    if (lfd < 0)
        lfd = make_socket(D.conf);
    bound_path(lfd, D.sock_path, sizeof D.sock_path);
    if (http_listen(D.base, lfd, &api_handler) < 0)
        fatal("cannot listen on the API socket");
    if (D.conf->tls_listen && tls_start(D.base, D.conf, &api_handler, &err) < 0)
        fatal("%s", err ? err : "cannot start the TLS listener");
    if (iopool_start(D.base, IO_THREADS) < 0)
        fatal("cannot start the I/O workers");
    if (cupslink_start(D.conf->cups_server, D.user) < 0)
        fatal("cannot start the CUPS link");

    struct event *ev_term = evsignal_new(D.base, SIGTERM, sigterm_cb, NULL);
    struct event *ev_int = evsignal_new(D.base, SIGINT, sigterm_cb, NULL);
    struct event *ev_hup = evsignal_new(D.base, SIGHUP, sighup_cb, NULL);
    struct event *ev_chld = evsignal_new(D.base, SIGCHLD, sigchld_cb, NULL);
    struct event *ev_status = event_new(D.base, -1, EV_PERSIST, status_cb, NULL);
    struct timeval stv = {10, 0};
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_hup, NULL);
    event_add(ev_chld, NULL);
    event_add(ev_status, &stv);
#ifdef COPEES_TEST_KNOBS
    struct event *ev_stall = evsignal_new(D.base, SIGUSR2, stall_cb, NULL);
    event_add(ev_stall, NULL);
#endif

    sched_start();
    retention_start();
    preflight_start();
    intake_resume();
    D.ready = true;
    sdn_ready("serving");
    sdn_watchdog_start(D.base);
    status_update();
    log_info("startup: serving on %s, instance %s", D.conf->socket, store_instance(D.store));

    event_base_dispatch(D.base);
    log_debug("shutdown: the loop has stopped; finishing what the worker threads hold");

    http_shutdown();
    events_free();
    tls_stop();
    sdn_watchdog_stop();
    preflight_kill_all();
    /* The CUPS thread and the I/O workers first: the callbacks of what
     * they still held (a hand-over that failed, a shred) run in
     * iopool_stop and need the scheduler's and retention's state. */
    cupslink_stop();
    iopool_stop();
    sched_stop();
    retention_stop();
    if (own_socket)
        unlink(D.conf->socket);
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
    event_free(ev_chld);
    event_free(ev_status);
#ifdef COPEES_TEST_KNOBS
    event_free(ev_stall);
#endif
    if (drain_ev)
        event_free(drain_ev);
    store_close(D.store);
    spool_close(D.spool);
    conf_free(D.conf);
    event_base_free(D.base);
    log_info("shutdown: done");
    return 0;
}
