/* fuzz-http.c - libFuzzer target for the API's request parser (http.c),
 * router (api.c) and ticket parser (intake.c).
 *
 * Each input is the bytes a client sends on one connection.  The target
 * runs a minimal real daemon context in a private temporary directory
 * (configuration defaults with spool_dir, state_dir and socket pointed
 * there, the store, the spool, an event loop, the I/O workers), hands one
 * end of a socketpair to http.c (http_adopt_fd) and writes the input into
 * the other; the loop runs until the daemon has answered what it could
 * (nothing pending, no new output), then the client's side is shut and the
 * loop runs until the connection is gone; everything is bounded by
 * iteration counts.  Answers are read and discarded.
 *
 * Uploads cannot grow the disk: max_upload is 64 KiB, the preflight
 * "helper" is /bin/true, so every committed document is rejected
 * (preflight-crashed) and shredded at once, and the directory is removed
 * at exit.  The peer is ourselves (SO_PEERCRED: the daemon's own uid), so
 * requests get the admin role and reach every route.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "api.h"
#include "conf.h"
#include "daemon.h"
#include "http.h"
#include "iopool.h"
#include "log.h"
#include "preflight.h"
#include "retention.h"
#include "spool.h"
#include "store.h"
#include "util.h"

struct daemon D;

static char dir[] = "/tmp/copees-fuzz.XXXXXX";
static struct event *tick;

static void cleanup(void)
{
    char cmd[sizeof dir + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz-http: could not remove %s\n", dir);
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz-http: %s: %s\n", what, err ? err : strerror(errno));
    exit(1);
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *err = NULL, path[256];

    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    atexit(cleanup);
    log_init("fuzz-http", getenv("FUZZ_HTTP_DEBUG") != NULL);
    D.conf = conf_load(NULL, &err);
    if (!D.conf)
        die("conf_load", err);
    snprintf(path, sizeof path, "%s/spool", dir);
    free(D.conf->spool_dir);
    D.conf->spool_dir = strdup(path);
    snprintf(path, sizeof path, "%s/state", dir);
    free(D.conf->state_dir);
    D.conf->state_dir = strdup(path);
    snprintf(path, sizeof path, "%s/copeesd.sock", dir);
    free(D.conf->socket);
    D.conf->socket = strdup(path);
    D.conf->max_upload = 64 * 1024;
    D.conf->min_free = 0;
    D.conf->workers = 1;
    D.conf->timeout_ms = 2000;
    D.uid = geteuid();
    D.user = "copees-fuzz";
    D.preflight_helper = "/bin/true";
    D.spool = spool_open(D.conf->spool_dir, &err);
    if (!D.spool)
        die("spool_open", err);
    if (spool_private_dir(D.conf->state_dir, &err) < 0)
        die("state dir", err);
    snprintf(path, sizeof path, "%s/copees.db", D.conf->state_dir);
    D.store = store_open(path, &err);
    if (!D.store)
        die("store_open", err);
    if (evthread_use_pthreads() < 0)
        die("evthread_use_pthreads", "failed");
    D.base = event_base_new();
    if (!D.base || iopool_start(D.base, 1) < 0)
        die("event loop", "failed");
    tick = event_new(D.base, -1, 0, tick_cb, NULL);
    D.ready = true;
    return 0;
}

/* Anything of ours still under way. */
static bool busy(void)
{
    return iopool_pending() > 0 || preflight_pending() > 0 || intake_busy() > 0 ||
           retention_busy() > 0;
}

/* One turn of the loop: wait (at most 20 ms) only when work is under way;
 * reap exited preflight servers; discard the answer.  Returns the bytes
 * of answer read. */
static size_t turn(int fd)
{
    int st;
    pid_t pid;
    char buf[65536];
    size_t got = 0;
    ssize_t n;

    if (busy()) {
        struct timeval tv = {0, 20000};
        evtimer_add(tick, &tv);
        event_base_loop(D.base, EVLOOP_ONCE);
    } else {
        event_base_loop(D.base, EVLOOP_NONBLOCK);
    }
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        preflight_child_exited(pid, st);
    while (fd >= 0 && (n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        got += (size_t)n;
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2];
    size_t off = 0;

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        die("socketpair", NULL);
    if (http_adopt_fd(D.base, sv[1], &api_handler) < 0)
        die("http_adopt_fd", "failed");
    /* Send the input as the loop takes it; stop once the daemon is idle
     * and has nothing more to say. */
    for (int i = 0, quiet = 0; i < 400 && quiet < 3; i++) {
        if (off < size) {
            ssize_t n = send(sv[0], data + off, size - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            else if (n < 0 && errno != EAGAIN)
                break;                     /* the daemon closed the connection */
        }
        size_t got = turn(sv[0]);
        quiet = (off == size && got == 0 && !busy()) ? quiet + 1 : 0;
    }
    shutdown(sv[0], SHUT_WR);
    for (int i = 0; i < 400 && (http_conn_count() > 0 || busy()); i++)
        turn(sv[0]);
    if (http_conn_count() > 0)             /* still held: give it up */
        http_shutdown();
    for (int i = 0; i < 400 && busy(); i++)
        turn(-1);
    close(sv[0]);
    return 0;
}
