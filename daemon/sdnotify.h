/* sdnotify.h - the daemon's systemd integration (notify, watchdog, socket
 * activation), kept in one file so the rest never sees libsystemd. */
#ifndef COPEES_SDNOTIFY_H
#define COPEES_SDNOTIFY_H

struct event_base;

/* The listening socket passed by systemd (LISTEN_FDS), or -1. */
int sdn_listen_fd(void);
/* READY=1 with a STATUS= line. */
void sdn_ready(const char *status);
void sdn_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sdn_reloading(void);
void sdn_reloaded(void);
void sdn_stopping(void);
/* When the service has WatchdogSec=, ping WATCHDOG=1 at half the interval
 * from a loop timer (so a stalled loop stops the pings).  0 / -1. */
int sdn_watchdog_start(struct event_base *base);
/* Stop the pings and free the timer. */
void sdn_watchdog_stop(void);

#endif
