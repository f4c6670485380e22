/* store.h - the SQLite store: jobs, events, meta.  Only the store's own
 * files (store.c, store-schema.c, store-query.c) include sqlite3.h.  The
 * main thread is the only user.
 *
 * Durability: a write returns once it is committed (synchronous=FULL),
 * unless it is made between store_defer_begin() and store_defer_end():
 * then it joins the open batch, which is committed at the end of the loop
 * turn together with every other deferred write, and its writer learns
 * that it is durable through store_sync(). */
#ifndef COPEES_STORE_H
#define COPEES_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "job.h"

struct store;

/* Open (creating when missing) the database at path: WAL,
 * synchronous=FULL, foreign_keys=ON, secure_delete=ON, schema migrated to
 * the current user_version, a random 8-hex-digit instance id made on
 * creation.  NULL with *err set (caller frees) on failure. */
struct store *store_open(const char *path, char **err);
void store_close(struct store *st);

/* The instance id (borrowed, 8 hex digits). */
const char *store_instance(const struct store *st);
/* A value of the meta table: 1 with it in buf, 0 when the key is absent,
 * -1 on error.  Set one (a plain, committed write): 0 / -1. */
int store_meta_get(struct store *st, const char *key, char *buf, size_t len);
int store_meta_set(struct store *st, const char *key, const char *value);

/* Insert a new job (j->id must be 0); sets j->id (AUTOINCREMENT, never
 * reused) and appends event "created".  0 / -1. */
int store_job_insert(struct store *st, struct job *j, int64_t uid);
/* Load job id into *out (job_init'd by the callee; caller job_clear's).
 * 0; -1 with errno ENOENT when there is no such job, EIO on error. */
int store_job_get(struct store *st, int64_t id, struct job *out);
/* Find a job by Idempotency-Key, or by (order, sha256) among jobs without a
 * key.  Same return as store_job_get. */
int store_job_find_key(struct store *st, const char *idem_key, struct job *out);
int store_job_find_order_sha(struct store *st, const char *order, const char *sha256, struct job *out);
/* Save every mutable column of j and append event (type, detail) in one
 * transaction; detail may be NULL.  uid: actor, -1 = daemon.  0 / -1. */
int store_job_save(struct store *st, const struct job *j, const char *type, int64_t uid,
                   const char *detail);
/* Call fn(j, arg) once for each job row written by store_job_insert() or
 * store_job_save(), after the row is in the database (visible to every
 * reader in this process; a deferred write is committed later, with its
 * batch, and a failed commit undoes it).  This is the one door every job
 * change passes: the scheduler and the retention timer follow it.  fn
 * must not write to the store.  NULL removes the hook. */
void store_set_job_hook(struct store *st, void (*fn)(const struct job *j, void *arg), void *arg);
/* Call fn(j, arg) for each job row written, as written, once the batch
 * holding it is committed (in the order written; at once for a plain
 * write), and never for a row whose batch was rolled back: what is said
 * outside the process (events.c) names only jobs that exist.  fn must not
 * write to the store.  NULL removes the hook. */
void store_set_commit_hook(struct store *st, void (*fn)(const struct job *j, void *arg), void *arg);
/* Append an event (job_id 0 = none).  0 / -1. */
int store_event_add(struct store *st, int64_t job_id, const char *type, int64_t uid,
                    const char *detail);

/* Writes made until the matching store_defer_end() are deferred: they
 * join the open batch instead of each committing before it returns.  The
 * batch is committed at the end of a loop turn in which store_sync() is
 * called, by the next plain write, or within a few milliseconds of a
 * deferred write when nobody waits.  Calls nest.  Without an event loop
 * (D.base unset) writes stay plain. */
void store_defer_begin(struct store *st);
void store_defer_end(struct store *st);
/* Call fn(arg, ok) on the loop once every write made so far is committed:
 * ok is false when the commit holding them failed (they are rolled back).
 * Never called from inside store_sync(), except without an event loop,
 * where every write is committed already and fn runs at once. */
void store_sync(struct store *st, void (*fn)(void *arg, bool ok), void *arg);
/* The same, but the commit may wait up to max_ms for more writes to
 * share it (an earlier deadline or a plain write commits sooner). */
void store_sync_within(struct store *st, void (*fn)(void *arg, bool ok), void *arg, int max_ms);
/* Commit the open batch now (its waiters still run from the loop).
 * 0 / -1. */
int store_flush(struct store *st);
/* Whether the last write or commit that failed did so for lack of disk
 * space (SQLITE_FULL): its caller answers 507 rather than 500. */
bool store_out_of_space(const struct store *st);

struct store_stats {
    uint64_t commits;            /* transactions committed */
    uint64_t writes;             /* inserts, saves and lone events written */
    uint64_t deferred;           /* ... of them deferred into a batch */
    uint64_t commit_failures;    /* commits that failed (rolled back) */
};
/* The counters since the store was opened. */
void store_get_stats(const struct store *st, struct store_stats *out);

enum store_order { STORE_BY_ID, STORE_BY_DUE /* due, priority desc, id */, STORE_BY_RETAIN };

struct store_filter {
    unsigned states;          /* bit (1u << state); 0 = any */
    const char *order;        /* exact order reference, NULL = any */
    int64_t after_id;         /* id > after_id */
    int limit;                /* 0 = no limit */
    int document;             /* -1 any, 0 shredded, 1 present */
    int64_t retain_before;    /* >0: retain_until != 0 and <= this */
    enum store_order sort;
};
#define STORE_FILTER_INIT { .document = -1, .sort = STORE_BY_ID }

/* Call cb for each matching job (the job is only valid during the call;
 * cb returns 0 to go on, non-zero to stop).  Number of jobs visited, -1 on
 * error. */
int store_jobs_query(struct store *st, const struct store_filter *f,
                     int (*cb)(const struct job *j, void *arg), void *arg);

/* Smallest retain_until after the time after (0: any) of a present
 * document (0 if none).  -1 on error. */
int64_t store_next_retain(struct store *st, int64_t after);
/* Number of documents still kept (document present), -1 on error. */
int64_t store_count_present(struct store *st);
/* Count jobs per state into counts[JOB_STATE_COUNT].  0 / -1. */
int store_count_states(struct store *st, int64_t counts[JOB_STATE_COUNT]);
/* Count events of a job by type (tests, audits). -1 on error. */
int store_event_count(struct store *st, int64_t job_id, const char *type);

/* Hand-overs to CUPS in progress (table handovers): between Create-Job and
 * the end of the hand-over, the CUPS job that may hold a job's document,
 * with its cover sheet's CUPS job (0: none) and the attributes CUPS said
 * it would ignore or change.  Set: a plain, committed write (one row per
 * job: a new one replaces it), with an event "handover" ("CUPS job N on
 * printer P"); 0 / -1.  Clear: a write like any other (deferred when
 * deferring); clearing none is no error; 0 / -1.  Each: cb for every row,
 * in job order (cb must not write; the strings live until it returns);
 * the number of rows, -1 on error. */
struct store_handover {
    int64_t job_id;
    int cups_id, cover_id;
    const char *printer, *substituted;
};
int store_handover_set(struct store *st, const struct store_handover *h);
int store_handover_clear(struct store *st, int64_t job_id);
int store_handovers_each(struct store *st, void (*cb)(const struct store_handover *h, void *arg),
                         void *arg);

/* history_retention: remove the order reference (and Idempotency-Key,
 * which may carry one) from finished jobs without a document created
 * before `before` (epoch s); the rows stay for accounting.  An event
 * "history" counts them.  Number of jobs changed, -1 on error. */
int64_t store_forget_orders(struct store *st, int64_t before);

#endif
