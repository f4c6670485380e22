/* sdnotify.c - systemd notify, watchdog and socket activation. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "sdnotify.h"

static struct event *wd_ev;

int sdn_listen_fd(void)
{
    int n = sd_listen_fds(1);
    if (n < 0) {
        log_err("systemd: LISTEN_FDS is invalid");
        return -1;
    }
    if (n == 0)
        return -1;
    if (n > 1)
        log_warn("systemd: %d sockets passed, using the first", n);
    if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0) {
        log_err("systemd: the passed socket is not a listening Unix stream socket");
        return -1;
    }
    return SD_LISTEN_FDS_START;
}

void sdn_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void sdn_status(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    sd_notifyf(0, "STATUS=%s", buf);
}

void sdn_reloading(void)
{
    sd_notify(0, "RELOADING=1");
}

void sdn_reloaded(void)
{
    sd_notify(0, "READY=1");
}

void sdn_stopping(void)
{
    sd_notify(0, "STOPPING=1");
}

static void wd_cb(evutil_socket_t fd, short what, void *arg)
{
    sd_notify(0, "WATCHDOG=1");
}

int sdn_watchdog_start(struct event_base *base)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    struct timeval tv = {.tv_sec = (time_t)(usec / 2 / 1000000), .tv_usec = (suseconds_t)(usec / 2 % 1000000)};
    wd_ev = event_new(base, -1, EV_PERSIST, wd_cb, NULL);
    if (!wd_ev || event_add(wd_ev, &tv) < 0)
        return -1;
    sd_notify(0, "WATCHDOG=1");
    return 0;
}

void sdn_watchdog_stop(void)
{
    if (wd_ev)
        event_free(wd_ev);
    wd_ev = NULL;
}
