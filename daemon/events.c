/* events.c - GET /v1/events: Server-Sent Events of job and printer changes
 * (see events.h).
 *
 * Design notes:
 *  - Sources.  Every job row the store commits (store_job_insert and
 *    store_job_save, which job_set_state() and the non-state saves —
 *    shredding, routing, reasons — all go through) reaches us through the
 *    store's commit hook, so no caller has to remember to publish.  That
 *    hook runs once the row's batch is committed and never for a batch
 *    that was rolled back (a full disk): a subscriber never hears of a job
 *    that does not exist, whose id may be handed out again.  The
 *    scheduler and the retention timer follow the store's job hook
 *    instead, which runs as a row is written.
 *    Printers are published by sched.c when what CUPS says of a printer,
 *    or one of our switches, changes.
 *  - Frames.  An event is "id: N\nevent: job|printer\ndata: <JSON>\n\n";
 *    the JSON is compact, so it is one data line.  Each frame is formatted
 *    once and kept in a ring of the EVENTS_RING most recent, from which a
 *    client that reconnects with Last-Event-ID gets what it missed.
 *  - Ids.  The first id of a daemon run is its start time (epoch seconds)
 *    times 10^6, and ids count up by one from there: ids keep increasing
 *    across restarts (unless a run publishes a million events a second,
 *    or the clock steps back across a restart), stay exact in a JavaScript
 *    number, and an id from an earlier run is recognisably older than the
 *    ring.
 *  - Reset.  When the given id is older than the ring's oldest event (an
 *    earlier run, or too many events since), newer than anything sent,
 *    not a number, or when the replay would exceed EVENTS_REPLAY_MAX
 *    bytes, the client gets "event: reset" (with the current last id)
 *    instead: it must re-list (GET /v1/jobs, GET /v1/printers) and go on
 *    from the events that follow.  Without Last-Event-ID nothing is
 *    replayed.
 *  - Slow subscribers.  http_stream_write() refuses once more than 1 MiB
 *    would wait unread; such a subscriber is dropped (its connection
 *    closed at once), never buffered without bound.  Memory is therefore
 *    bounded by the ring plus 1 MiB per connection the connection caps
 *    allow.
 *  - Keep-alive: a comment line every EVENTS_KEEPALIVE seconds, so proxies
 *    and idle timers see traffic and a dead client is noticed by the
 *    write timeout.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>

#include "events.h"
#include "http.h"
#include "job.h"
#include "log.h"
#include "retention.h"
#include "sched.h"
#include "store.h"
#include "util.h"

#define EVENTS_RING 1024                 /* recent events kept for resume */
#define EVENTS_REPLAY_MAX (512 * 1024)   /* bytes a resume may replay; beyond: reset */
#define EVENTS_KEEPALIVE 15              /* s between keep-alive comments */
#define EVENTS_RETRY_MS 3000             /* reconnect delay suggested to clients */

struct rec {
    uint64_t id;
    char *text;                 /* the whole frame */
    size_t len;
};

struct sub {
    struct http_stream *s;
    uint64_t n;                 /* subscriber number, for log lines */
    struct sub *prev, *next;
};

static struct rec ring[EVENTS_RING];
static size_t rstart, rcount;
static uint64_t next_id;        /* id of the next event */
static struct sub *subs;
static int nsubs;
static uint64_t nsubs_ever;
static struct event *keepalive_ev;
static struct store *hooked;
static bool draining;

/* ------------------------------------------------------------ subscribers */

static void sub_unlink(struct sub *u)
{
    if (u->prev)
        u->prev->next = u->next;
    else
        subs = u->next;
    if (u->next)
        u->next->prev = u->prev;
    nsubs--;
}

/* The client went away (or the connection was shut): forget it. */
static void sub_gone(void *arg)
{
    struct sub *u = arg;
    log_debug("events: subscriber %" PRIu64 " gone", u->n);
    sub_unlink(u);
    free(u);
}

/* Write to u; a subscriber that cannot keep up is dropped.  0 / -1 (u
 * freed). */
static int sub_write(struct sub *u, const char *text, size_t len)
{
    if (http_stream_write(u->s, text, len) == 0)
        return 0;
    log_info("events: subscriber %" PRIu64 " does not keep up (%zu bytes unread); dropped", u->n,
             http_stream_pending(u->s));
    sub_unlink(u);
    http_stream_close(u->s);
    free(u);
    return -1;
}

static void broadcast(const char *text, size_t len)
{
    for (struct sub *u = subs, *n; u; u = n) {
        n = u->next;
        sub_write(u, text, len);
    }
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    static const char ka[] = ": keep-alive\n\n";
    broadcast(ka, sizeof ka - 1);
}

/* ------------------------------------------------------------ publishing */

/* Format, keep in the ring and send one event; takes the reference to
 * data. */
static void publish(const char *type, json_t *data)
{
    char *js = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!js) {
        log_err("events: out of memory formatting a %s event", type);
        return;
    }
    uint64_t id = next_id++;
    size_t len = strlen(js) + strlen(type) + 64;
    char *text = malloc(len);
    if (!text) {
        free(js);
        log_err("events: out of memory formatting a %s event", type);
        return;
    }
    int n = snprintf(text, len, "id: %" PRIu64 "\nevent: %s\ndata: %s\n\n", id, type, js);
    free(js);
    if (n < 0 || (size_t)n >= len) {
        free(text);
        return;
    }
    if (rcount == EVENTS_RING) {
        free(ring[rstart].text);
        rstart = (rstart + 1) % EVENTS_RING;
        rcount--;
    }
    ring[(rstart + rcount) % EVENTS_RING] = (struct rec){id, text, (size_t)n};
    rcount++;
    broadcast(text, (size_t)n);
}

/* Every saved job: the scheduler's index and the retention timer, as it
 * is written. */
static void job_hook(const struct job *j, void *arg)
{
    (void)arg;
    sched_job_changed(j);
    retention_job_changed(j);
}

/* ... and subscribers, once it is committed. */
static void commit_hook(const struct job *j, void *arg)
{
    (void)arg;
    events_publish_job(j);
}

void events_publish_job(const struct job *j)
{
    publish("job", job_to_json(j));
}

void events_publish_printer(json_t *printer)
{
    publish("printer", printer);
}

/* ------------------------------------------------------------ subscribing */

/* Send u what it missed after last, or a reset.  0 / -1 (u dropped). */
static int replay(struct sub *u, const char *last)
{
    uint64_t id, oldest = rcount ? ring[rstart].id : next_id;
    const char *why = NULL;
    size_t first = rcount, bytes = 0;

    if (parse_u64(last, &id) < 0)
        why = "bad-id";
    else if (id >= next_id)
        why = "unknown-id";            /* from the future: another run, a clock step */
    else if (id + 1 < oldest)
        why = "too-old";
    if (!why) {
        for (size_t i = 0; i < rcount; i++) {
            const struct rec *r = &ring[(rstart + i) % EVENTS_RING];
            if (r->id > id) {
                if (first == rcount)
                    first = i;
                bytes += r->len;
            }
        }
        if (bytes > EVENTS_REPLAY_MAX)
            why = "too-many";
    }
    if (why) {
        char text[200];
        int n = snprintf(text, sizeof text,
                         "id: %" PRIu64 "\nevent: reset\ndata: {\"reason\":\"%s\",\"last_id\":%"
                         PRIu64 "}\n\n", next_id - 1, why, next_id - 1);
        log_debug("events: subscriber %" PRIu64 " resumes from an unknown point (%s): reset",
                  u->n, why);
        return sub_write(u, text, (size_t)n);
    }
    for (size_t i = first; i < rcount; i++) {
        const struct rec *r = &ring[(rstart + i) % EVENTS_RING];
        if (sub_write(u, r->text, r->len) < 0)
            return -1;
    }
    return 0;
}

void events_subscribe(struct http_req *req)
{
    char *last = NULL;
    struct sub *u;

    if (draining) {
        http_respond_error(req, 503, "shutting-down", "The spooler is shutting down; retry later.");
        return;
    }
    if (req->last_event_id && !(last = strdup(req->last_event_id))) {
        http_respond_error(req, 500, "internal", "Out of memory.");
        return;
    }
    if (!(u = calloc(1, sizeof *u))) {
        free(last);
        http_respond_error(req, 500, "internal", "Out of memory.");
        return;
    }
    if (!(u->s = http_stream_start(req, "text/event-stream", sub_gone, u))) {
        free(last);
        free(u);
        return;
    }
    u->n = ++nsubs_ever;
    u->next = subs;
    if (subs)
        subs->prev = u;
    subs = u;
    nsubs++;
    log_debug("events: subscriber %" PRIu64 " connected (%d now)", u->n, nsubs);
    char hello[64];
    int n = snprintf(hello, sizeof hello, "retry: %d\n\n", EVENTS_RETRY_MS);
    if (sub_write(u, hello, (size_t)n) == 0 && last)
        replay(u, last);
    free(last);
}

/* ------------------------------------------------------------ life */

int events_init(struct event_base *base, struct store *st)
{
    struct timeval tv = {EVENTS_KEEPALIVE, 0};
    next_id = (uint64_t)now_s() * 1000000u;
    draining = false;
    keepalive_ev = event_new(base, -1, EV_PERSIST, keepalive_cb, NULL);
    if (!keepalive_ev || event_add(keepalive_ev, &tv) < 0)
        return -1;
    hooked = st;
    store_set_job_hook(st, job_hook, NULL);
    store_set_commit_hook(st, commit_hook, NULL);
    return 0;
}

void events_drain(void)
{
    draining = true;
    while (subs) {
        struct sub *u = subs;
        sub_unlink(u);
        http_stream_close(u->s);
        free(u);
    }
}

void events_free(void)
{
    events_drain();
    if (hooked) {
        store_set_job_hook(hooked, NULL, NULL);
        store_set_commit_hook(hooked, NULL, NULL);
    }
    hooked = NULL;
    if (keepalive_ev)
        event_free(keepalive_ev);
    keepalive_ev = NULL;
    for (size_t i = 0; i < rcount; i++)
        free(ring[(rstart + i) % EVENTS_RING].text);
    rstart = rcount = 0;
}

int events_subscribers(void)
{
    return nsubs;
}
