/* store.c - the SQLite store: jobs, events, meta (see store.h).
 *
 * Design notes:
 *  - This is the only file that includes sqlite3.h: SQLite enters the
 *    daemon through this one door, and only the main thread uses it.
 *  - The database file is created 0600 by us (O_EXCL|O_NOFOLLOW) before
 *    SQLite opens it, because SQLite would create it 0644 & ~umask; SQLite
 *    gives its -wal and -shm files the main file's mode.  An existing file
 *    that others can read is tightened to 0600 with a warning.
 *  - Schema versions: PRAGMA user_version is the number of migration steps
 *    applied.  migrations[v] takes a database from version v to v + 1, in
 *    its own BEGIN IMMEDIATE transaction together with the user_version
 *    bump, so a crash never leaves half a step.  A later version appends a
 *    step; a database newer than the steps this code knows is refused.
 *  - Column mapping: one column per field of struct job.  Times (epoch
 *    seconds) are NULL when 0; idem_key, printer, complaint and order_ref
 *    are NULL when empty; cups_job_id is NULL when 0; state is the state's
 *    name, so the database reads well with the sqlite3 shell.  order_ref
 *    is nullable because history retention removes it from old rows.
 *  - events is append-only: triggers RAISE on UPDATE and DELETE.  Its
 *    job_id references jobs(id) (foreign_keys=ON), and job rows are never
 *    deleted (history retention only clears the order reference).
 *  - Writes: store_job_insert and store_job_save run the row write and
 *    the event insert in one transaction (BEGIN IMMEDIATE ... COMMIT,
 *    ROLLBACK on any error).  When a transaction is already open on the
 *    connection (a caller batching commits), they use a SAVEPOINT instead,
 *    so they nest and still roll back their own part alone.
 *  - store_jobs_query first collects the matching ids (one SELECT, reset
 *    before any callback runs), then loads each job and checks the filter
 *    again before calling back.  Callbacks may therefore write to the store
 *    (change states, save rows, run nested queries) without the undefined
 *    results SQLite gives for a table changed under a running SELECT, and
 *    a job a previous callback moved out of the filter is not visited.
 *    Only ids are held in memory (8 bytes a job).
 *  - Query SQL is built from the filter's shape only; every value is a
 *    bound parameter.  The few shapes in use are kept prepared in a small
 *    cache keyed by the SQL text.
 *  - Log lines carry SQLite's message and our step, never a value: no
 *    order reference, idempotency key or document name.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "job.h"
#include "log.h"
#include "store.h"
#include "util.h"

#define STORE_BUSY_MS 5000
#define QUERY_CACHE 8

/* ------------------------------------------------------------ schema */

static const char schema_v1[] =
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value TEXT NOT NULL"
    ");"
    "CREATE TABLE jobs ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  order_ref TEXT,"
    "  idem_key TEXT,"
    "  state TEXT NOT NULL CHECK (state IN ('preflight', 'rejected', 'held', 'queued',"
    "    'sent', 'printing', 'printed', 'failed', 'canceled')),"
    "  reasons TEXT NOT NULL DEFAULT '',"
    "  pages INTEGER NOT NULL DEFAULT 0,"
    "  pages_printed INTEGER NOT NULL DEFAULT 0,"
    "  copies INTEGER NOT NULL DEFAULT 1,"
    "  sides TEXT NOT NULL,"
    "  color TEXT NOT NULL,"
    "  media TEXT NOT NULL,"
    "  due INTEGER,"
    "  priority INTEGER NOT NULL DEFAULT 50,"
    "  hold INTEGER NOT NULL DEFAULT 0 CHECK (hold IN (0, 1)),"
    "  printer TEXT,"
    "  cups_job_id INTEGER,"
    "  reprints INTEGER NOT NULL DEFAULT 0,"
    "  bytes INTEGER NOT NULL DEFAULT 0,"
    "  sha256 TEXT NOT NULL,"
    "  preflight TEXT,"
    "  created_at INTEGER NOT NULL,"
    "  printed_at INTEGER,"
    "  delivered_at INTEGER,"
    "  retain_until INTEGER,"
    "  shredded_at INTEGER,"
    "  complaint TEXT CHECK (complaint IN ('open', 'closed')),"
    "  complaint_opened_at INTEGER,"
    "  document_present INTEGER NOT NULL DEFAULT 1 CHECK (document_present IN (0, 1)),"
    "  doc_name TEXT NOT NULL DEFAULT ''"
    ");"
    "CREATE UNIQUE INDEX jobs_idem_key ON jobs (idem_key);"
    "CREATE INDEX jobs_order_sha ON jobs (order_ref, sha256);"
    "CREATE INDEX jobs_dispatch ON jobs (state, due, priority DESC, id);"
    "CREATE INDEX jobs_retain ON jobs (retain_until)"
    "  WHERE document_present = 1 AND retain_until IS NOT NULL;"
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  job_id INTEGER REFERENCES jobs (id),"
    "  at INTEGER NOT NULL,"
    "  type TEXT NOT NULL,"
    "  uid INTEGER,"
    "  detail TEXT"
    ");"
    "CREATE INDEX events_job ON events (job_id, type);"
    "CREATE TRIGGER events_no_update BEFORE UPDATE ON events"
    "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;"
    "CREATE TRIGGER events_no_delete BEFORE DELETE ON events"
    "  BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;";

/* A migration step takes the database from version v to v + 1; it runs
 * inside the step's transaction.  0 / -1. */
typedef int (*migration_fn)(sqlite3 *db);

static int migrate_v1(sqlite3 *db);

static const migration_fn migrations[] = {
    [0] = migrate_v1,           /* 0 -> 1: the first schema, the instance id */
};

#define STORE_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* ------------------------------------------------------------ statements */

enum stmt_id {
    ST_BEGIN, ST_COMMIT, ST_ROLLBACK, ST_SAVEPOINT, ST_RELEASE, ST_ROLLBACK_TO,
    ST_JOB_INSERT, ST_JOB_UPDATE, ST_JOB_GET, ST_JOB_BY_KEY, ST_JOB_BY_ORDER_SHA,
    ST_EVENT_INSERT, ST_NEXT_RETAIN, ST_COUNT_STATES, ST_EVENT_COUNT,
    ST_COUNT
};

#define JOB_COLS \
    "id, order_ref, idem_key, state, reasons, pages, pages_printed, copies, sides, color, " \
    "media, due, priority, hold, printer, cups_job_id, reprints, bytes, sha256, preflight, " \
    "created_at, printed_at, delivered_at, retain_until, shredded_at, complaint, " \
    "complaint_opened_at, document_present, doc_name"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_write",
    [ST_RELEASE] = "RELEASE store_write",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_write",
    /* Parameters ?2.. follow JOB_COLS order; ?1 is the id (NULL on insert). */
    [ST_JOB_INSERT] = "INSERT INTO jobs (" JOB_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, "
                      "?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, "
                      "?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)",
    /* Every column but id and created_at. */
    [ST_JOB_UPDATE] = "UPDATE jobs SET order_ref = ?2, idem_key = ?3, state = ?4, "
                      "reasons = ?5, pages = ?6, pages_printed = ?7, copies = ?8, sides = ?9, "
                      "color = ?10, media = ?11, due = ?12, priority = ?13, hold = ?14, "
                      "printer = ?15, cups_job_id = ?16, reprints = ?17, bytes = ?18, "
                      "sha256 = ?19, preflight = ?20, printed_at = ?22, delivered_at = ?23, "
                      "retain_until = ?24, shredded_at = ?25, complaint = ?26, "
                      "complaint_opened_at = ?27, document_present = ?28, doc_name = ?29 "
                      "WHERE id = ?1",
    [ST_JOB_GET] = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1",
    [ST_JOB_BY_KEY] = "SELECT " JOB_COLS " FROM jobs WHERE idem_key = ?1",
    [ST_JOB_BY_ORDER_SHA] = "SELECT " JOB_COLS " FROM jobs WHERE order_ref = ?1 AND "
                            "sha256 = ?2 AND idem_key IS NULL ORDER BY id LIMIT 1",
    [ST_EVENT_INSERT] = "INSERT INTO events (job_id, at, type, uid, detail) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_NEXT_RETAIN] = "SELECT min(retain_until) FROM jobs "
                       "WHERE document_present = 1 AND retain_until IS NOT NULL",
    [ST_COUNT_STATES] = "SELECT state, count(*) FROM jobs GROUP BY state",
    [ST_EVENT_COUNT] = "SELECT count(*) FROM events WHERE job_id IS ?1 "
                       "AND (?2 IS NULL OR type = ?2)",
};

struct query_slot {
    char *sql;
    sqlite3_stmt *stmt;
};

struct store {
    sqlite3 *db;
    char instance[9];
    sqlite3_stmt *stmt[ST_COUNT];
    struct query_slot qcache[QUERY_CACHE];
    unsigned qnext;                 /* next cache slot to replace */
    void (*job_hook)(const struct job *j, void *arg);   /* store_set_job_hook */
    void *job_hook_arg;
};

/* ------------------------------------------------------------ helpers */

/* Log an SQLite failure: our step and SQLite's message, never a value. */
static void db_err(sqlite3 *db, const char *what)
{
    log_err("store: %s: %s", what, sqlite3_errmsg(db));
}

/* Set *err (when err) to a malloc'd message; each failure path of
 * store_open sets it exactly once. */
static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0)
        *err = NULL;
    va_end(ap);
}

/* Run SQL without results (several statements allowed).  0 / -1. */
static int exec_sql(sqlite3 *db, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_err("store: %s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* One integer from a single-row query (PRAGMA user_version...).  0 / -1. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) == SQLITE_ROW) {
        *out = sqlite3_column_int64(s, 0);
        rc = 0;
    }
out:
    sqlite3_finalize(s);
    return rc;
}

/* The cached statement id, reset and unbound; NULL (logged) on error. */
static sqlite3_stmt *stmt_get(struct store *st, enum stmt_id id)
{
    if (!st->stmt[id]) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                               &st->stmt[id], NULL) != SQLITE_OK) {
            db_err(st->db, "preparing a statement");
            st->stmt[id] = NULL;
            return NULL;
        }
    }
    sqlite3_reset(st->stmt[id]);
    sqlite3_clear_bindings(st->stmt[id]);
    return st->stmt[id];
}

/* Step a statement that returns no row, then reset it.  0 / -1. */
static int stmt_done(struct store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE) {
        db_err(st->db, what);
        sqlite3_reset(s);
        return -1;
    }
    sqlite3_reset(s);
    return 0;
}

static int bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

static int bind_int_or_null(sqlite3_stmt *s, int i, int64_t v)
{
    if (v == 0)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_int64(s, i, v);
}

static void col_text(sqlite3_stmt *s, int i, char *dst, size_t len)
{
    const unsigned char *v = sqlite3_column_text(s, i);
    xstrlcpy(dst, v ? (const char *)v : "", len);
}

/* ------------------------------------------------------------ transactions */

/* Open a write transaction, or a savepoint inside the caller's one
 * (*nested set).  0 / -1. */
static int tx_begin(struct store *st, bool *nested)
{
    *nested = !sqlite3_get_autocommit(st->db);
    sqlite3_stmt *s = stmt_get(st, *nested ? ST_SAVEPOINT : ST_BEGIN);
    if (!s)
        return -1;
    return stmt_done(st, s, "beginning a transaction");
}

/* Commit (ok) or roll back what tx_begin opened.  0 / -1. */
static int tx_end(struct store *st, bool nested, bool ok)
{
    sqlite3_stmt *s;
    if (ok) {
        s = stmt_get(st, nested ? ST_RELEASE : ST_COMMIT);
        if (s && stmt_done(st, s, "committing") == 0)
            return 0;
    }
    if (nested) {
        s = stmt_get(st, ST_ROLLBACK_TO);
        if (s)
            stmt_done(st, s, "rolling back to the savepoint");
        s = stmt_get(st, ST_RELEASE);
        if (s)
            stmt_done(st, s, "releasing the savepoint");
    } else if (!sqlite3_get_autocommit(st->db)) {
        s = stmt_get(st, ST_ROLLBACK);
        if (s)
            stmt_done(st, s, "rolling back");
    }
    return -1;
}

/* ------------------------------------------------------------ migrations */

static int migrate_v1(sqlite3 *db)
{
    char inst[9], created[24];
    sqlite3_stmt *s = NULL;
    int rc = -1;

    if (exec_sql(db, schema_v1, "creating the schema") < 0)
        return -1;
    random_hex(inst, 4);
    snprintf(created, sizeof created, "%lld", (long long)now_s());
    if (sqlite3_prepare_v2(db, "INSERT INTO meta (key, value) VALUES ('instance', ?1), "
                           "('created_at', ?2)", -1, &s, NULL) != SQLITE_OK)
        goto out;
    sqlite3_bind_text(s, 1, inst, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, created, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_DONE)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        db_err(db, "writing the instance id");
    sqlite3_finalize(s);
    return rc;
}

/* Bring the schema to STORE_VERSION, one step per transaction.  0 / -1. */
static int store_migrate(sqlite3 *db, char **err)
{
    for (;;) {
        int64_t v;
        char sql[48];

        if (exec_sql(db, "BEGIN IMMEDIATE", "beginning a migration") < 0) {
            set_err(err, "cannot lock the database: %s", sqlite3_errmsg(db));
            return -1;
        }
        /* read the version under the write lock: a second opener waits */
        if (query_int(db, "PRAGMA user_version", &v) < 0) {
            set_err(err, "cannot read the schema version: %s", sqlite3_errmsg(db));
            goto fail;
        }
        if (v > STORE_VERSION || v < 0) {
            set_err(err, "the database has schema version %lld; this copeesd knows up to %d",
                    (long long)v, STORE_VERSION);
            goto fail;
        }
        if (v == STORE_VERSION)
            return exec_sql(db, "COMMIT", "ending the version check") == 0 ? 0 : -1;
        if (migrations[v](db) < 0) {
            set_err(err, "migrating the schema to version %lld failed: %s", (long long)v + 1,
                    sqlite3_errmsg(db));
            goto fail;
        }
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
        if (exec_sql(db, sql, "setting the schema version") < 0 ||
            exec_sql(db, "COMMIT", "committing a migration") < 0) {
            set_err(err, "migrating the schema to version %lld failed: %s", (long long)v + 1,
                    sqlite3_errmsg(db));
            goto fail;
        }
        log_info("store: schema migrated to version %lld", (long long)v + 1);
    }
fail:
    if (!sqlite3_get_autocommit(db))
        exec_sql(db, "ROLLBACK", "rolling back a migration");
    return -1;
}

/* ------------------------------------------------------------ open / close */

/* Create the file 0600 when missing; tighten an existing one.  0 / -1. */
static int prepare_file(const char *path, char **err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    if (errno != EEXIST) {
        set_err(err, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    int rc = -1;
    if (fstat(fd, &sb) < 0) {
        set_err(err, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        set_err(err, "%s is not a regular file", path);
    } else if ((sb.st_mode & 077) && fchmod(fd, sb.st_mode & 0700) < 0) {
        set_err(err, "cannot restrict the mode of %s: %s", path, strerror(errno));
    } else {
        if (sb.st_mode & 077)
            log_warn("store: %s was readable by others; its mode is now 0600", path);
        rc = 0;
    }
    close(fd);
    return rc;
}

/* Read the instance id from meta into st.  0 / -1. */
static int load_instance(struct store *st)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = 'instance'", -1, &s,
                           NULL) != SQLITE_OK)
        goto out;
    if (sqlite3_step(s) != SQLITE_ROW)
        goto out;
    col_text(s, 0, st->instance, sizeof st->instance);
    rc = strlen(st->instance) == 8 && strspn(st->instance, "0123456789abcdef") == 8 ? 0 : -1;
out:
    sqlite3_finalize(s);
    return rc;
}

struct store *store_open(const char *path, char **err)
{
    struct store *st = calloc(1, sizeof *st);
    char mode[16] = "";
    sqlite3_stmt *s = NULL;
    int64_t v;

    if (!st) {
        set_err(err, "out of memory");
        return NULL;
    }
    if (prepare_file(path, err) < 0)
        goto fail;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        set_err(err, "cannot open the database %s: %s", path,
                st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
    /* refuse a newer schema before changing anything in the file (the
     * journal mode is persistent); store_migrate checks again under lock */
    if (query_int(st->db, "PRAGMA user_version", &v) < 0) {
        set_err(err, "cannot read %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (v > STORE_VERSION || v < 0) {
        set_err(err, "%s has schema version %lld; this copeesd knows up to %d", path,
                (long long)v, STORE_VERSION);
        goto fail;
    }
    /* journal_mode answers the mode in force: check that WAL took */
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        col_text(s, 0, mode, sizeof mode);
    sqlite3_finalize(s);
    if (strcmp(mode, "wal") != 0) {
        set_err(err, "cannot put %s in WAL mode: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (exec_sql(st->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                 "PRAGMA secure_delete = ON;", "setting pragmas") < 0 ||
        query_int(st->db, "PRAGMA foreign_keys", &v) < 0 || v != 1) {
        set_err(err, "cannot set the pragmas of %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (store_migrate(st->db, err) < 0)
        goto fail;
    if (load_instance(st) < 0) {
        set_err(err, "%s has no valid instance id", path);
        goto fail;
    }
    return st;
fail:
    store_close(st);
    return NULL;
}

void store_close(struct store *st)
{
    if (!st)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    for (int i = 0; i < QUERY_CACHE; i++) {
        sqlite3_finalize(st->qcache[i].stmt);
        free(st->qcache[i].sql);
    }
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        db_err(st->db, "closing the database");
    free(st);
}

const char *store_instance(const struct store *st)
{
    return st->instance;
}

/* ------------------------------------------------------------ job rows */

/* Bind every column of j to ST_JOB_INSERT / ST_JOB_UPDATE (?1 = id, 0 =
 * NULL so AUTOINCREMENT picks).  0 / -1. */
static int bind_job(sqlite3_stmt *s, const struct job *j)
{
    const char *state = job_state_name(j->state);
    int rc = 0;

    if (job_state_from_name(state) < 0) {
        errno = EINVAL;
        return -1;
    }
    rc |= bind_int_or_null(s, 1, j->id);
    rc |= bind_text_or_null(s, 2, j->order);
    rc |= bind_text_or_null(s, 3, j->idem_key);
    rc |= sqlite3_bind_text(s, 4, state, -1, SQLITE_STATIC);
    rc |= sqlite3_bind_text(s, 5, j->reasons, -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_int(s, 6, j->pages);
    rc |= sqlite3_bind_int(s, 7, j->pages_printed);
    rc |= sqlite3_bind_int(s, 8, j->copies);
    rc |= sqlite3_bind_text(s, 9, j->sides, -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_text(s, 10, j->color, -1, SQLITE_TRANSIENT);
    rc |= sqlite3_bind_text(s, 11, j->media, -1, SQLITE_TRANSIENT);
    rc |= bind_int_or_null(s, 12, j->due);
    rc |= sqlite3_bind_int(s, 13, j->priority);
    rc |= sqlite3_bind_int(s, 14, j->hold ? 1 : 0);
    rc |= bind_text_or_null(s, 15, j->printer);
    rc |= bind_int_or_null(s, 16, j->cups_job_id);
    rc |= sqlite3_bind_int(s, 17, j->reprints);
    rc |= sqlite3_bind_int64(s, 18, j->bytes);
    rc |= sqlite3_bind_text(s, 19, j->sha256, -1, SQLITE_TRANSIENT);
    if (j->preflight)
        rc |= sqlite3_bind_text(s, 20, j->preflight, -1, SQLITE_TRANSIENT);
    else
        rc |= sqlite3_bind_null(s, 20);
    rc |= bind_int_or_null(s, 21, j->created_at);
    rc |= bind_int_or_null(s, 22, j->printed_at);
    rc |= bind_int_or_null(s, 23, j->delivered_at);
    rc |= bind_int_or_null(s, 24, j->retain_until);
    rc |= bind_int_or_null(s, 25, j->shredded_at);
    rc |= bind_text_or_null(s, 26, j->complaint);
    rc |= bind_int_or_null(s, 27, j->complaint_opened_at);
    rc |= sqlite3_bind_int(s, 28, j->document_present ? 1 : 0);
    rc |= sqlite3_bind_text(s, 29, j->doc_name, -1, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* Fill *out (job_init'd here) from a row of JOB_COLS.  0 / -1 (EIO: a
 * row this code cannot read). */
static int row_to_job(sqlite3_stmt *s, struct job *out)
{
    const unsigned char *t;
    int state;

    job_init(out);
    state = job_state_from_name((const char *)sqlite3_column_text(s, 3));
    if (state < 0) {
        log_err("store: job %lld has an unknown state", (long long)sqlite3_column_int64(s, 0));
        errno = EIO;
        return -1;
    }
    out->id = sqlite3_column_int64(s, 0);
    col_text(s, 1, out->order, sizeof out->order);
    col_text(s, 2, out->idem_key, sizeof out->idem_key);
    out->state = state;
    col_text(s, 4, out->reasons, sizeof out->reasons);
    out->pages = sqlite3_column_int(s, 5);
    out->pages_printed = sqlite3_column_int(s, 6);
    out->copies = sqlite3_column_int(s, 7);
    col_text(s, 8, out->sides, sizeof out->sides);
    col_text(s, 9, out->color, sizeof out->color);
    col_text(s, 10, out->media, sizeof out->media);
    out->due = sqlite3_column_int64(s, 11);
    out->priority = sqlite3_column_int(s, 12);
    out->hold = sqlite3_column_int(s, 13) != 0;
    col_text(s, 14, out->printer, sizeof out->printer);
    out->cups_job_id = sqlite3_column_int(s, 15);
    out->reprints = sqlite3_column_int(s, 16);
    out->bytes = sqlite3_column_int64(s, 17);
    col_text(s, 18, out->sha256, sizeof out->sha256);
    t = sqlite3_column_text(s, 19);
    if (t) {
        out->preflight = strdup((const char *)t);
        if (!out->preflight) {
            errno = ENOMEM;
            return -1;
        }
    }
    out->created_at = sqlite3_column_int64(s, 20);
    out->printed_at = sqlite3_column_int64(s, 21);
    out->delivered_at = sqlite3_column_int64(s, 22);
    out->retain_until = sqlite3_column_int64(s, 23);
    out->shredded_at = sqlite3_column_int64(s, 24);
    col_text(s, 25, out->complaint, sizeof out->complaint);
    out->complaint_opened_at = sqlite3_column_int64(s, 26);
    out->document_present = sqlite3_column_int(s, 27) != 0;
    col_text(s, 28, out->doc_name, sizeof out->doc_name);
    return 0;
}

/* Step a bound single-job SELECT into *out, then reset it.  0; -1 with
 * errno ENOENT (no row) or EIO. */
static int fetch_one(struct store *st, sqlite3_stmt *s, struct job *out)
{
    int rc = sqlite3_step(s), ret = -1, e = EIO;

    if (rc == SQLITE_ROW) {
        if (row_to_job(s, out) == 0)
            ret = 0;
        else
            e = errno;
    } else if (rc == SQLITE_DONE) {
        job_init(out);
        e = ENOENT;
    } else {
        job_init(out);
        db_err(st->db, "reading a job");
    }
    sqlite3_reset(s);
    if (ret < 0) {
        job_clear(out);
        errno = e;
    }
    return ret;
}

/* Insert an event row inside the caller's transaction.  0 / -1. */
static int event_insert(struct store *st, int64_t job_id, const char *type, int64_t uid,
                        const char *detail)
{
    sqlite3_stmt *s = stmt_get(st, ST_EVENT_INSERT);
    if (!s)
        return -1;
    if (bind_int_or_null(s, 1, job_id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, now_s()) != SQLITE_OK ||
        sqlite3_bind_text(s, 3, type, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        (uid >= 0 ? sqlite3_bind_int64(s, 4, uid) : sqlite3_bind_null(s, 4)) != SQLITE_OK ||
        (detail ? sqlite3_bind_text(s, 5, detail, -1, SQLITE_TRANSIENT)
                : sqlite3_bind_null(s, 5)) != SQLITE_OK) {
        db_err(st->db, "binding an event");
        return -1;
    }
    return stmt_done(st, s, "inserting an event");
}

int store_job_insert(struct store *st, struct job *j, int64_t uid)
{
    bool nested;
    int e = EIO, rc;
    int64_t id;
    sqlite3_stmt *s;

    if (j->id != 0) {
        errno = EINVAL;
        return -1;
    }
    if (j->created_at == 0)
        j->created_at = now_s();
    if (tx_begin(st, &nested) < 0) {
        errno = EIO;
        return -1;
    }
    s = stmt_get(st, ST_JOB_INSERT);
    if (!s || bind_job(s, j) < 0)
        goto fail;
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT_UNIQUE) {
            e = EEXIST;         /* an Idempotency-Key already known */
            log_warn("store: inserting a job: %s", sqlite3_errmsg(st->db));
        } else {
            db_err(st->db, "inserting a job");
        }
        goto fail;
    }
    id = sqlite3_last_insert_rowid(st->db);
    if (event_insert(st, id, "created", uid, job_state_name(j->state)) < 0)
        goto fail;
    if (tx_end(st, nested, true) < 0) {
        errno = EIO;
        return -1;
    }
    j->id = id;
    if (st->job_hook)
        st->job_hook(j, st->job_hook_arg);
    return 0;
fail:
    tx_end(st, nested, false);
    errno = e;
    return -1;
}

int store_job_get(struct store *st, int64_t id, struct job *out)
{
    sqlite3_stmt *s = stmt_get(st, ST_JOB_GET);
    if (!s) {
        job_init(out);
        errno = EIO;
        return -1;
    }
    sqlite3_bind_int64(s, 1, id);
    return fetch_one(st, s, out);
}

int store_job_find_key(struct store *st, const char *idem_key, struct job *out)
{
    if (!idem_key || !*idem_key) {
        job_init(out);
        errno = ENOENT;
        return -1;
    }
    sqlite3_stmt *s = stmt_get(st, ST_JOB_BY_KEY);
    if (!s) {
        job_init(out);
        errno = EIO;
        return -1;
    }
    sqlite3_bind_text(s, 1, idem_key, -1, SQLITE_TRANSIENT);
    return fetch_one(st, s, out);
}

int store_job_find_order_sha(struct store *st, const char *order, const char *sha256,
                             struct job *out)
{
    if (!order || !*order || !sha256) {
        job_init(out);
        errno = ENOENT;
        return -1;
    }
    sqlite3_stmt *s = stmt_get(st, ST_JOB_BY_ORDER_SHA);
    if (!s) {
        job_init(out);
        errno = EIO;
        return -1;
    }
    sqlite3_bind_text(s, 1, order, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, sha256, -1, SQLITE_TRANSIENT);
    return fetch_one(st, s, out);
}

int store_job_save(struct store *st, const struct job *j, const char *type, int64_t uid,
                   const char *detail)
{
    bool nested;
    int e = EIO;
    sqlite3_stmt *s;

    if (j->id <= 0 || !type) {
        errno = EINVAL;
        return -1;
    }
    if (tx_begin(st, &nested) < 0) {
        errno = EIO;
        return -1;
    }
    s = stmt_get(st, ST_JOB_UPDATE);
    if (!s || bind_job(s, j) < 0 || stmt_done(st, s, "saving a job") < 0)
        goto fail;
    if (sqlite3_changes(st->db) != 1) {
        log_job(LOG_LVL_ERR, j->id, NULL, "store: saving a job that has no row");
        e = ENOENT;
        goto fail;
    }
    if (event_insert(st, j->id, type, uid, detail) < 0)
        goto fail;
    if (tx_end(st, nested, true) < 0) {
        errno = EIO;
        return -1;
    }
    if (st->job_hook)
        st->job_hook(j, st->job_hook_arg);
    return 0;
fail:
    tx_end(st, nested, false);
    errno = e;
    return -1;
}

void store_set_job_hook(struct store *st, void (*fn)(const struct job *j, void *arg), void *arg)
{
    st->job_hook = fn;
    st->job_hook_arg = arg;
}

int store_event_add(struct store *st, int64_t job_id, const char *type, int64_t uid,
                    const char *detail)
{
    if (!type) {
        errno = EINVAL;
        return -1;
    }
    /* a single INSERT is its own transaction (or part of the caller's) */
    if (event_insert(st, job_id, type, uid, detail) < 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ queries */

/* Append to a fixed SQL buffer; the filter has few clauses, so the
 * buffer cannot overflow, but check anyway.  0 / -1. */
static int sql_add(char *buf, size_t len, const char *piece)
{
    size_t n = strlen(buf), m = strlen(piece);
    if (n + m + 1 > len)
        return -1;
    memcpy(buf + n, piece, m + 1);
    return 0;
}

/* A prepared statement for sql from the query cache (reset, unbound).
 * NULL (logged) on error. */
static sqlite3_stmt *query_stmt(struct store *st, const char *sql)
{
    for (int i = 0; i < QUERY_CACHE; i++) {
        struct query_slot *q = &st->qcache[i];
        if (q->sql && strcmp(q->sql, sql) == 0) {
            sqlite3_reset(q->stmt);
            sqlite3_clear_bindings(q->stmt);
            return q->stmt;
        }
    }
    struct query_slot *q = &st->qcache[st->qnext];
    sqlite3_stmt *s = NULL;
    char *copy = strdup(sql);
    if (!copy)
        return NULL;
    if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK) {
        db_err(st->db, "preparing a job query");
        free(copy);
        return NULL;
    }
    sqlite3_finalize(q->stmt);
    free(q->sql);
    q->sql = copy;
    q->stmt = s;
    st->qnext = (st->qnext + 1) % QUERY_CACHE;
    return s;
}

/* Does j (freshly loaded) still match f?  after_id and limit are the
 * snapshot's business. */
static bool filter_match(const struct store_filter *f, const struct job *j)
{
    if (f->states && !(f->states & (1u << j->state)))
        return false;
    if (f->order && strcmp(f->order, j->order) != 0)
        return false;
    if (f->document >= 0 && (int)j->document_present != f->document)
        return false;
    if (f->retain_before > 0 && (j->retain_until == 0 || j->retain_until > f->retain_before))
        return false;
    return true;
}

/* The ids matching f in f's order into a malloc'd array (*ids, *n).
 * 0 / -1. */
static int query_ids(struct store *st, const struct store_filter *f, int64_t **ids, size_t *n)
{
    char sql[1024] = "SELECT id FROM jobs WHERE 1";
    int nstates = 0, pi = 0, rc = -1, step;
    size_t cap = 0;
    sqlite3_stmt *s;

    *ids = NULL;
    *n = 0;
    if (f->states) {
        sql_add(sql, sizeof sql, " AND state IN (");
        for (int i = 0; i < JOB_STATE_COUNT; i++) {
            if (f->states & (1u << i)) {
                sql_add(sql, sizeof sql, nstates ? ", ?" : "?");
                nstates++;
            }
        }
        sql_add(sql, sizeof sql, ")");
        if (!nstates)           /* only bits for no state: nothing matches */
            return 0;
    }
    if (f->order)
        sql_add(sql, sizeof sql, " AND order_ref = ?");
    if (f->after_id > 0)
        sql_add(sql, sizeof sql, " AND id > ?");
    if (f->document >= 0)
        sql_add(sql, sizeof sql, " AND document_present = ?");
    if (f->retain_before > 0)
        sql_add(sql, sizeof sql, " AND retain_until IS NOT NULL AND retain_until <= ?");
    switch (f->sort) {
    case STORE_BY_DUE:
        sql_add(sql, sizeof sql, " ORDER BY due NULLS LAST, priority DESC, id");
        break;
    case STORE_BY_RETAIN:
        sql_add(sql, sizeof sql, " ORDER BY retain_until NULLS LAST, id");
        break;
    default:
        sql_add(sql, sizeof sql, " ORDER BY id");
        break;
    }
    if (f->limit > 0)
        if (sql_add(sql, sizeof sql, " LIMIT ?") < 0)
            return -1;

    s = query_stmt(st, sql);
    if (!s)
        return -1;
    for (int i = 0; i < JOB_STATE_COUNT; i++)
        if (f->states & (1u << i))
            sqlite3_bind_text(s, ++pi, job_state_name(i), -1, SQLITE_STATIC);
    if (f->order)
        sqlite3_bind_text(s, ++pi, f->order, -1, SQLITE_TRANSIENT);
    if (f->after_id > 0)
        sqlite3_bind_int64(s, ++pi, f->after_id);
    if (f->document >= 0)
        sqlite3_bind_int(s, ++pi, f->document ? 1 : 0);
    if (f->retain_before > 0)
        sqlite3_bind_int64(s, ++pi, f->retain_before);
    if (f->limit > 0)
        sqlite3_bind_int(s, ++pi, f->limit);

    while ((step = sqlite3_step(s)) == SQLITE_ROW) {
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            int64_t *p = realloc(*ids, ncap * sizeof *p);
            if (!p) {
                log_err("store: out of memory listing jobs");
                goto out;
            }
            *ids = p;
            cap = ncap;
        }
        (*ids)[(*n)++] = sqlite3_column_int64(s, 0);
    }
    if (step != SQLITE_DONE) {
        db_err(st->db, "listing jobs");
        goto out;
    }
    rc = 0;
out:
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc < 0) {
        free(*ids);
        *ids = NULL;
        *n = 0;
    }
    return rc;
}

int store_jobs_query(struct store *st, const struct store_filter *f,
                     int (*cb)(const struct job *j, void *arg), void *arg)
{
    int64_t *ids;
    size_t n;
    int visited = 0;

    if (query_ids(st, f, &ids, &n) < 0)
        return -1;
    if (!cb) {
        free(ids);
        return (int)n;
    }
    for (size_t i = 0; i < n; i++) {
        struct job j;
        if (store_job_get(st, ids[i], &j) < 0) {
            if (errno == ENOENT)
                continue;
            visited = -1;
            break;
        }
        if (!filter_match(f, &j)) {      /* changed by an earlier callback */
            job_clear(&j);
            continue;
        }
        visited++;
        int stop = cb(&j, arg);
        job_clear(&j);
        if (stop)
            break;
    }
    free(ids);
    return visited;
}

int64_t store_next_retain(struct store *st)
{
    sqlite3_stmt *s = stmt_get(st, ST_NEXT_RETAIN);
    int64_t v = -1;
    if (!s)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);    /* min() of nothing is NULL: 0 */
    else
        db_err(st->db, "finding the next retention time");
    sqlite3_reset(s);
    return v;
}

int store_count_states(struct store *st, int64_t counts[JOB_STATE_COUNT])
{
    sqlite3_stmt *s = stmt_get(st, ST_COUNT_STATES);
    int rc;

    for (int i = 0; i < JOB_STATE_COUNT; i++)
        counts[i] = 0;
    if (!s)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int state = job_state_from_name((const char *)sqlite3_column_text(s, 0));
        if (state >= 0)
            counts[state] = sqlite3_column_int64(s, 1);
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        db_err(st->db, "counting jobs");
        return -1;
    }
    return 0;
}

int store_event_count(struct store *st, int64_t job_id, const char *type)
{
    sqlite3_stmt *s = stmt_get(st, ST_EVENT_COUNT);
    int n = -1;
    if (!s)
        return -1;
    bind_int_or_null(s, 1, job_id);
    if (type)
        sqlite3_bind_text(s, 2, type, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) == SQLITE_ROW)
        n = sqlite3_column_int(s, 0);
    else
        db_err(st->db, "counting events");
    sqlite3_reset(s);
    return n;
}
