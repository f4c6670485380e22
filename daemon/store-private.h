/* store-private.h - what the store's own files share (store.c: open,
 * statements, rows and the batched commits; store-schema.c: the schema and
 * its migrations; store-query.c: job queries and counts).  Only these
 * files include sqlite3.h. */
#ifndef COPEES_STORE_PRIVATE_H
#define COPEES_STORE_PRIVATE_H

#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>

#include "job.h"
#include "store.h"

#define STORE_QUERY_CACHE 8

/* The fixed statements, prepared once (store_stmt). */
enum stmt_id {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST_JOB_INSERT, ST_JOB_UPDATE, ST_JOB_GET, ST_JOB_BY_KEY, ST_JOB_BY_ORDER_SHA,
    ST_EVENT_INSERT, ST_NEXT_RETAIN, ST_COUNT_STATES, ST_COUNT_PRESENT, ST_EVENT_COUNT,
    ST_HANDOVER_SET, ST_HANDOVER_CLEAR, ST_HANDOVER_ALL, ST_COUNT
};

/* The columns of a job row, in the order store_row_to_job() reads them. */
#define STORE_JOB_COLS \
    "id, order_ref, idem_key, state, reasons, pages, pages_printed, copies, sides, color, " \
    "media, due, priority, hold, printer, cups_job_id, reprints, bytes, sha256, preflight, " \
    "created_at, printed_at, delivered_at, retain_until, shredded_at, complaint, " \
    "complaint_opened_at, document_present, doc_name"

struct query_slot {
    char *sql;
    sqlite3_stmt *stmt;
};

struct store_waiter;
struct held_job;
struct event;

struct store {
    sqlite3 *db;
    char instance[9];
    sqlite3_stmt *stmt[ST_COUNT];
    struct query_slot qcache[STORE_QUERY_CACHE];
    unsigned qnext;                 /* next cache slot to replace */
    void (*job_hook)(const struct job *j, void *arg);   /* store_set_job_hook */
    void *job_hook_arg;
    void (*commit_hook)(const struct job *j, void *arg); /* store_set_commit_hook */
    void *commit_hook_arg;
    struct held_job *held;          /* rows of the open batch, for commit_hook */
    struct held_job **held_end;     /* ... where the next one goes */
    /* batched commits (store.c) */
    int defer;                      /* store_defer_begin() depth */
    int64_t batch_writes;           /* writes in the open batch */
    struct event *commit_ev;        /* commits the batch: now (active) or at a deadline */
    bool commit_now;                /* commit_ev is active */
    int64_t commit_at;              /* ... else its deadline (mono ms), 0 = none */
    struct store_waiter *pending;   /* store_sync() callers waiting for the open batch */
    struct store_waiter *ready;     /* ... whose commit is done, to run from commit_ev */
    struct store_stats stats;
    bool last_full;                 /* the last failed statement found its disk full */
};

/* Log an SQLite failure: our step and SQLite's message, never a value. */
void store_db_err(sqlite3 *db, const char *what);
/* Set *err (when err) to a malloc'd message. */
void store_set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Run SQL without results (several statements allowed).  0 / -1. */
int store_exec(sqlite3 *db, const char *sql, const char *what);
/* One integer from a single-row query.  0 / -1. */
int store_query_int(sqlite3 *db, const char *sql, int64_t *out);
/* The cached statement id, reset and unbound; NULL (logged) on error. */
sqlite3_stmt *store_stmt(struct store *st, enum stmt_id id);
/* Bind v, or NULL when v is 0. */
int store_bind_int_or_null(sqlite3_stmt *s, int i, int64_t v);

/* store-schema.c: bring the schema to the current version, one step per
 * transaction.  0 / -1 with *err set. */
int store_migrate(sqlite3 *db, char **err);
/* The schema version this code migrates to. */
int store_schema_version(void);

/* store-query.c: release the query cache (store_close). */
void store_query_cache_free(struct store *st);

#endif
