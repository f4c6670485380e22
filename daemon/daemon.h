/* daemon.h - the daemon's shared context.
 *
 * Design notes: like tmux, the daemon keeps its few process-wide objects in
 * one global (D) instead of threading them through every call.  Everything
 * in it belongs to the loop thread; other threads reach the loop only
 * through iopool_post().
 */
#ifndef COPEES_DAEMON_H
#define COPEES_DAEMON_H

#include <stdbool.h>
#include <sys/types.h>

struct event_base;
struct conf;
struct store;
struct spool;

struct daemon {
    struct event_base *base;
    struct conf *conf;           /* replaced on SIGHUP */
    struct store *store;
    struct spool *spool;
    bool ready;                  /* locally reconciled, serving */
    bool draining;               /* SIGTERM seen: new requests get 503 */
    uid_t uid;                   /* our own uid (admin role) */
    const char *user;            /* our user name (requesting-user-name) */
    const char *preflight_helper;/* path of the helper program */
    char sock_path[108];         /* the API socket's file (from the listening fd) */
};

extern struct daemon D;

/* Count of requests whose work is still under way (drain waits for 0). */
extern int daemon_busy;

#endif
