/* sched-int.h - what sched.c (dispatch decisions), printers.c and track.c
 * (what CUPS says: job and printer states, reconciliation, taking jobs
 * back) share.  Not for other modules: they use sched.h. */
#ifndef COPEES_SCHED_INT_H
#define COPEES_SCHED_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <glib.h>
#include <jansson.h>

#include "queue.h"

struct conf_printer;
struct cups_op;
struct job;

struct printer {
    char name[64];
    const struct conf_printer *cp;   /* in D.conf; refreshed on reload */
    /* our routing switches (persisted in state_dir/printers.json) */
    bool enabled, accepting;
    int64_t since;                   /* when a switch last changed */
    char why[128];                   /* reason given with disable/reject */
    /* what CUPS last said */
    int pstate;                      /* printer-state; 0 = unknown / no such queue */
    char preasons[256];
    bool cups_accepting;
    char pmessage[256];              /* printer-state-message */
    char media_sup[2048], sides_sup[128], color_sup[128];  /* what the CUPS queue supports */
    int64_t blocked_since;           /* mono ms a connecting/offline sign was first seen */
    char device_uri[512];            /* the queue's device (from CUPS, admins only) */
    int64_t printing_since;          /* mono ms printing_job started printing */
    int64_t printing_pages;          /* its pages x copies */
    bool probing, probe_failed;      /* the device asked directly (a stuck job) */
    bool was_available;
    bool listed;                     /* reconciliation listed its CUPS queue */
    bool polling;
    /* our jobs inside CUPS or being sent */
    int inflight;
    int64_t pages_inflight;
    int64_t printing_job;
    char last_order[65];             /* order of the last job sent here */
    int64_t retry_after;             /* mono ms: no submit before (after a failure) */
};

extern struct printer *sched_printers;
extern size_t sched_nprinters;
extern struct queue *sched_queue;
extern bool sched_reconciled;

struct printer *printer_find(const char *name);
struct printer *printer_by_queue(const char *queue);
/* Enabled, accepting, and CUPS reports it ready (not stopped, no blocking
 * reason such as media-empty, offline for long). */
bool printer_available(const struct printer *p);
/* Disabled by us, or CUPS cannot print on it now: the jobs waiting in
 * CUPS for it are taken back (a printer that only rejects new jobs keeps
 * those it has, like cupsreject). */
bool printer_halted(const struct printer *p);
/* Its configuration can print jobs of class c (media, colour, duplex). */
bool printer_can(const struct printer *p, const struct qclass *c);
/* Fewer than max_inflight of our jobs in it, and no retry pause. */
bool printer_has_slot(const struct printer *p);
/* Read our switches back from state_dir/printers.json. */
void printers_switches_load(void);
/* A job of p's left CUPS (or never got there): free its slot. */
void printer_release(struct printer *p, int64_t job_id, int64_t pages);
/* p's state or switches changed: publish it, withdraw its waiting jobs
 * when it stopped being available. */
void printer_changed(struct printer *p);
json_t *printer_json(const struct printer *p);

/* Jobs with a CUPS operation in flight (no tracking, no second dispatch). */
bool busy_has(int64_t id);
void busy_add(int64_t id);
void busy_del(int64_t id);
/* The first of the job's own options (media, sides, colour, copies) in
 * the comma-separated list of attributes CUPS said it ignored or changed
 * at Create-Job; NULL when none is. */
const char *sched_substituted_option(const char *substituted);
/* The end of a hand-over, recorded in one commit: j's new state st (the
 * text as for job_set_state) and the delete of its hand-over record (the
 * state change is deferred; the record's plain delete commits both).  -1
 * when a write or the commit failed: the record stays, and the caller
 * settles the CUPS job again, which decides afresh. */
int sched_handover_end(struct job *j, enum job_state st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The deadline simulation at time now: ids of queued jobs whose estimated
 * end passes due - delivery_lead (and not yet marked) appended to risky
 * (a GArray of int64_t); returns their count. */
size_t sched_simulate(int64_t now, GArray *risky);
/* Deadline checks: the queued jobs (every poll) and one job in CUPS. */
void sched_check_deadlines(void);
void sched_check_sent_deadline(const struct job *j);

/* track.c */
void track_start(void);
void track_poll(void);
/* The poll interval may have changed (reload). */
void track_rearm(void);
void track_stop(void);
/* Take back every job of p that CUPS has not started (printer stopped or
 * disabled): each goes back to queued for another printer. */
void track_withdraw_waiting(struct printer *p, const char *why);
/* Note whether cupsd answered op (logs the transitions). */
void track_note_cups(const struct cups_op *op);
/* Purge CUPS job cups_id (ours: job_id), logging the outcome. */
void track_purge(int64_t job_id, int cups_id);
/* Settle CUPS job op->cups_job_id, left by submission op of our job
 * job_id to printer (its document may or may not be in CUPS): the job
 * stays out of dispatch until CUPS's job is purged (it had no document)
 * or adopted (it had).  op->cover_job_id: its cover sheet's CUPS job, or
 * 0.  op->substituted: what Create-Job's answer said CUPS changed (the
 * job fails rather than being adopted when it is one of its options).
 * A failed op whose CUPS job certainly never got the whole document
 * (op->doc_unsent: its hand-over record was refused, or Send-Document
 * failed before the end) settles as unsent: when CUPS no longer knows
 * that job, ours goes out again instead of failing with cups-job-lost. */
void track_settle(int64_t job_id, const char *printer, const struct cups_op *op);
/* Follow cover sheet job cover_id of our job job_id (CUPS job main_id):
 * purged once it is done, or once the job left CUPS. */
void track_cover(int64_t job_id, int main_id, int cover_id);
/* The printer shows signs of being unreachable (offline, connecting, the
 * backend's "unavailable"/"not responding" messages). */
bool printer_unreachable_sign(const struct printer *p);

#endif
