/* store.c - the SQLite store: jobs, events, meta (see store.h): opening,
 * statements, job rows and the batched commits.  The schema and its
 * migrations are in store-schema.c, queries and counts in store-query.c.
 *
 * Design notes:
 *  - Only the store's files include sqlite3.h: SQLite enters the daemon
 *    through this one door, and only the main thread uses it.
 *  - The database file is created 0600 by us (O_EXCL|O_NOFOLLOW) before
 *    SQLite opens it, because SQLite would create it 0644 & ~umask; SQLite
 *    gives its -wal and -shm files the main file's mode.  An existing file
 *    that others can read is tightened to 0600 with a warning.
 *  - Column mapping: one column per field of struct job.  Times (epoch
 *    seconds) are NULL when 0; idem_key, printer, complaint and order_ref
 *    are NULL when empty; cups_job_id is NULL when 0; state is the state's
 *    name, so the database reads well with the sqlite3 shell.  order_ref
 *    is nullable because history retention removes it from old rows.
 *  - events is append-only: triggers RAISE on UPDATE and DELETE.  Its
 *    job_id references jobs(id) (foreign_keys=ON), and job rows are never
 *    deleted (history retention only clears the order reference).
 *  - Writes.  Each write (a job insert or save with its event, or a lone
 *    event) runs in a SAVEPOINT inside one open transaction, the batch, so
 *    a failed write rolls back its own part alone.  A plain write commits
 *    the batch before it returns: it is durable (synchronous=FULL) when
 *    its caller goes on, which every caller outside intake relies on (the
 *    scheduler records a dispatch before CUPS sees the job; a cancel is
 *    answered once recorded).  Writes made between store_defer_begin()
 *    and store_defer_end() leave the batch open instead.  It is committed
 *    once, at the end of the loop turn in which someone calls store_sync()
 *    (a zero-delay event), by any plain write, or at the earliest deadline
 *    set: a waiter may accept a few milliseconds (store_sync_within) to
 *    share the commit with others under load, and a deferred write nobody
 *    waits for is committed within STORE_BATCH_MAX_MS.  So an upload's row
 *    insert rides along with the commit of some verdict instead of costing
 *    an fsync of its own, and under load one fsync of the WAL serves every
 *    upload answered in those milliseconds.  A deferred writer
 *    learns that its writes are durable through store_sync(): its
 *    callback runs on the loop after the commit that holds them, never
 *    from inside store_sync().
 *  - Deferred writes are visible at once to readers in this process (one
 *    connection), and the job hook runs when a row is written, before its
 *    commit: the scheduler and the retention timer may see a state that a
 *    crash in that same loop turn undoes (a job still in preflight is
 *    preflighted again at start-up).  Whatever must be durable before
 *    something outside the process sees it is written plainly, which
 *    commits the batch first.  The commit hook is for what goes outside:
 *    it runs for each row of a batch, in order, once the batch is
 *    committed, and never for a rolled-back one (events.c publishes from
 *    it, so an event stream never names a job that does not exist).
 *  - A failed commit rolls the whole batch back: its waiters hear
 *    ok = false, and its rows are gone (the id of a rolled-back insert
 *    may be handed out again, as it never existed on disk).
 *  - Without a loop (D.base unset, as in the unit tests) every write is
 *    plain and store_sync() calls back at once.
 *  - Lookups by (order, SHA-256) name their index: the planner would
 *    otherwise take the unique Idempotency-Key index for "idem_key IS
 *    NULL" and walk every job uploaded without a key.
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
#include <event2/event.h>
#include <sqlite3.h>

#include "daemon.h"
#include "job.h"
#include "log.h"
#include "store-private.h"
#include "util.h"

#define STORE_BUSY_MS 5000
#define STORE_BATCH_MAX_MS 10    /* a deferred write nobody waits for commits within this */

/* ------------------------------------------------------------ statements */

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_write",
    [ST_RELEASE] = "RELEASE store_write",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_write",
    /* Parameters ?2.. follow STORE_JOB_COLS order; ?1 is the id (NULL on insert). */
    [ST_JOB_INSERT] = "INSERT INTO jobs (" STORE_JOB_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, "
                      "?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, "
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
    [ST_JOB_GET] = "SELECT " STORE_JOB_COLS " FROM jobs WHERE id = ?1",
    [ST_JOB_BY_KEY] = "SELECT " STORE_JOB_COLS " FROM jobs WHERE idem_key = ?1",
    [ST_JOB_BY_ORDER_SHA] = "SELECT " STORE_JOB_COLS " FROM jobs INDEXED BY jobs_order_sha "
                            "WHERE order_ref = ?1 AND sha256 = ?2 AND idem_key IS NULL "
                            "ORDER BY id LIMIT 1",
    [ST_EVENT_INSERT] = "INSERT INTO events (job_id, at, type, uid, detail) "
                        "VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_NEXT_RETAIN] = "SELECT min(retain_until) FROM jobs "
                       "WHERE document_present = 1 AND retain_until > ?1",
    [ST_COUNT_STATES] = "SELECT state, count(*) FROM jobs GROUP BY state",
    [ST_COUNT_PRESENT] = "SELECT count(*) FROM jobs INDEXED BY jobs_present "
                         "WHERE document_present = 1",
    [ST_EVENT_COUNT] = "SELECT count(*) FROM events WHERE job_id IS ?1 "
                       "AND (?2 IS NULL OR type = ?2)",
    [ST_HANDOVER_SET] = "INSERT OR REPLACE INTO handovers (job_id, cups_id, printer, at, "
                        "cover_id, substituted) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_HANDOVER_CLEAR] = "DELETE FROM handovers WHERE job_id = ?1",
    [ST_HANDOVER_ALL] = "SELECT job_id, cups_id, printer, cover_id, substituted FROM handovers "
                        "ORDER BY job_id",
};

/* ------------------------------------------------------------ helpers */

void store_db_err(sqlite3 *db, const char *what)
{
    log_err("store: %s: %s", what, sqlite3_errmsg(db));
}

void store_set_err(char **err, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    if (vasprintf(err, fmt, ap) < 0)
        *err = NULL;
    va_end(ap);
}

int store_exec(sqlite3 *db, const char *sql, const char *what)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        log_err("store: %s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int store_query_int(sqlite3 *db, const char *sql, int64_t *out)
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

sqlite3_stmt *store_stmt(struct store *st, enum stmt_id id)
{
    if (!st->stmt[id]) {
        if (sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                               &st->stmt[id], NULL) != SQLITE_OK) {
            store_db_err(st->db, "preparing a statement");
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
        st->last_full = (sqlite3_extended_errcode(st->db) & 0xff) == SQLITE_FULL;
        store_db_err(st->db, what);
        sqlite3_reset(s);
        return -1;
    }
    sqlite3_reset(s);
    return 0;
}

/* Run one of the fixed statements that return no row.  0 / -1. */
static int run_stmt(struct store *st, enum stmt_id id, const char *what)
{
    sqlite3_stmt *s = store_stmt(st, id);
    return s ? stmt_done(st, s, what) : -1;
}

static int bind_text_or_null(sqlite3_stmt *s, int i, const char *v)
{
    if (!v || !*v)
        return sqlite3_bind_null(s, i);
    return sqlite3_bind_text(s, i, v, -1, SQLITE_TRANSIENT);
}

int store_bind_int_or_null(sqlite3_stmt *s, int i, int64_t v)
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

/* ------------------------------------------------------------ batches */

struct held_job {
    struct job j;               /* a copy of the row as written */
    struct held_job *next;
};

struct store_waiter {
    void (*fn)(void *arg, bool ok);
    void *arg;
    bool ok;
    struct store_waiter *next;
};

static void commit_cb(evutil_socket_t fd, short what, void *arg);

/* Append list b (in order) to the end of list *a. */
static void waiters_append(struct store_waiter **a, struct store_waiter *b)
{
    while (*a)
        a = &(*a)->next;
    *a = b;
}

/* Whether commits may wait for the end of the loop turn: there is a loop
 * (the commit event is made on first use). */
static bool can_defer(struct store *st)
{
    if (!st->commit_ev && D.base)
        st->commit_ev = event_new(D.base, -1, 0, commit_cb, st);
    return st->commit_ev != NULL;
}

/* Have commit_cb run within delay_ms: at the end of this loop turn when
 * 0, else at that deadline unless an earlier one is set. */
static void arm_commit(struct store *st, int delay_ms)
{
    if (!st->commit_ev || st->commit_now)
        return;
    if (delay_ms <= 0) {
        st->commit_now = true;
        st->commit_at = 0;
        event_del(st->commit_ev);
        event_active(st->commit_ev, EV_TIMEOUT, 0);
        return;
    }
    int64_t at = mono_ms() + delay_ms;
    if (st->commit_at && st->commit_at <= at)
        return;
    st->commit_at = at;
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    evtimer_add(st->commit_ev, &tv);
}

/* Keep a copy of the row j, just written in the open batch, for the commit
 * hook. */
static void held_add(struct store *st, const struct job *j)
{
    if (!st->commit_hook)
        return;
    struct held_job *h = calloc(1, sizeof *h);
    if (!h)
        fatal("store: out of memory");
    job_copy(&h->j, j);
    if (!st->held_end)
        st->held_end = &st->held;
    *st->held_end = h;
    st->held_end = &h->next;
}

/* The open batch has ended: pass its rows to the commit hook when it was
 * committed, then let them go. */
static void held_release(struct store *st, bool committed)
{
    struct held_job *h = st->held;
    st->held = NULL;
    st->held_end = &st->held;
    while (h) {
        struct held_job *next = h->next;
        if (committed && st->commit_hook)
            st->commit_hook(&h->j, st->commit_hook_arg);
        job_clear(&h->j);
        free(h);
        h = next;
    }
}

/* Commit the open batch, if any; the waiters for it become ready with the
 * outcome (they run from commit_cb).  0 / -1 (the batch is rolled back). */
static int batch_commit(struct store *st)
{
    int rc = 0;

    if (!sqlite3_get_autocommit(st->db)) {
        rc = run_stmt(st, ST_COMMIT, "committing");
        if (rc == 0) {
            st->stats.commits++;
        } else {
            log_err("store: a commit of %lld writes failed; they are rolled back",
                    (long long)st->batch_writes);
            st->stats.commit_failures++;
            if (!sqlite3_get_autocommit(st->db))
                run_stmt(st, ST_ROLLBACK, "rolling back");
        }
        st->batch_writes = 0;
    }
    held_release(st, rc == 0);
    for (struct store_waiter *w = st->pending; w; w = w->next)
        w->ok = rc == 0;
    waiters_append(&st->ready, st->pending);
    st->pending = NULL;
    return rc;
}

/* Call back every waiter whose commit is done (in the order they came). */
static void run_ready(struct store *st)
{
    struct store_waiter *w = st->ready;
    st->ready = NULL;
    while (w) {
        struct store_waiter *next = w->next;
        w->fn(w->arg, w->ok);
        free(w);
        w = next;
    }
}

static void commit_cb(evutil_socket_t fd, short what, void *arg)
{
    struct store *st = arg;
    st->commit_now = false;
    st->commit_at = 0;
    event_del(st->commit_ev);          /* a deadline may still be pending */
    batch_commit(st);
    run_ready(st);
}

/* Start a write: open the batch when none is open, then a savepoint for
 * this write alone.  0 / -1. */
static int write_begin(struct store *st)
{
    if (sqlite3_get_autocommit(st->db) && run_stmt(st, ST_BEGIN, "beginning a transaction") < 0)
        return -1;
    return run_stmt(st, ST_SAVEPOINT, "beginning a write");
}

/* End a write begun by write_begin(): keep it (ok) or roll its part back;
 * j: the job row it wrote, if any, for the commit hook; then commit the
 * batch, unless the write is deferred.  0; -1 when the
 * write failed or, for a plain write, its commit did. */
static int write_end(struct store *st, bool ok, const struct job *j)
{
    if (ok && run_stmt(st, ST_RELEASE, "ending a write") < 0)
        ok = false;
    if (!ok) {
        run_stmt(st, ST_ROLLBACK_TO, "rolling back a write");
        run_stmt(st, ST_RELEASE, "ending a write");
    } else {
        st->batch_writes++;
        st->stats.writes++;
        if (j)
            held_add(st, j);
    }
    if (st->defer > 0 && can_defer(st)) {
        if (ok)
            st->stats.deferred++;
        arm_commit(st, STORE_BATCH_MAX_MS);
        return ok ? 0 : -1;
    }
    int rc = batch_commit(st);
    if (st->ready)
        arm_commit(st, 0);
    if (rc < 0)
        return -1;
    return ok ? 0 : -1;
}

void store_defer_begin(struct store *st)
{
    st->defer++;
}

void store_defer_end(struct store *st)
{
    if (st->defer > 0)
        st->defer--;
}

void store_sync(struct store *st, void (*fn)(void *arg, bool ok), void *arg)
{
    store_sync_within(st, fn, arg, 0);
}

void store_sync_within(struct store *st, void (*fn)(void *arg, bool ok), void *arg, int max_ms)
{
    if (!can_defer(st)) {        /* no loop: every write is committed already */
        fn(arg, true);
        return;
    }
    struct store_waiter *w = calloc(1, sizeof *w);
    if (!w)
        fatal("store: out of memory");
    w->fn = fn;
    w->arg = arg;
    w->ok = true;
    if (!sqlite3_get_autocommit(st->db)) {
        waiters_append(&st->pending, w);
        arm_commit(st, max_ms);
    } else {
        waiters_append(&st->ready, w);        /* durable already: no need to wait */
        arm_commit(st, 0);
    }
}

int store_flush(struct store *st)
{
    int rc = batch_commit(st);
    if (st->ready)
        arm_commit(st, 0);
    return rc;
}

bool store_out_of_space(const struct store *st)
{
    return st->last_full;
}

void store_get_stats(const struct store *st, struct store_stats *out)
{
    *out = st->stats;
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
        store_set_err(err, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        store_set_err(err, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat sb;
    int rc = -1;
    if (fstat(fd, &sb) < 0) {
        store_set_err(err, "cannot stat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        store_set_err(err, "%s is not a regular file", path);
    } else if ((sb.st_mode & 077) && fchmod(fd, sb.st_mode & 0700) < 0) {
        store_set_err(err, "cannot restrict the mode of %s: %s", path, strerror(errno));
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
        store_set_err(err, "out of memory");
        return NULL;
    }
    if (prepare_file(path, err) < 0)
        goto fail;
    if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL) !=
        SQLITE_OK) {
        store_set_err(err, "cannot open the database %s: %s", path,
                st->db ? sqlite3_errmsg(st->db) : "out of memory");
        goto fail;
    }
    sqlite3_extended_result_codes(st->db, 1);
    sqlite3_busy_timeout(st->db, STORE_BUSY_MS);
    /* refuse a newer schema before changing anything in the file (the
     * journal mode is persistent); store_migrate checks again under lock */
    if (store_query_int(st->db, "PRAGMA user_version", &v) < 0) {
        store_set_err(err, "cannot read %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (v > store_schema_version() || v < 0) {
        store_set_err(err, "%s has schema version %lld; this copeesd knows up to %d", path,
                (long long)v, store_schema_version());
        goto fail;
    }
    /* journal_mode answers the mode in force: check that WAL took */
    if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &s, NULL) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        col_text(s, 0, mode, sizeof mode);
    sqlite3_finalize(s);
    if (strcmp(mode, "wal") != 0) {
        store_set_err(err, "cannot put %s in WAL mode: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (store_exec(st->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
                 "PRAGMA secure_delete = ON;", "setting pragmas") < 0 ||
        store_query_int(st->db, "PRAGMA foreign_keys", &v) < 0 || v != 1) {
        store_set_err(err, "cannot set the pragmas of %s: %s", path, sqlite3_errmsg(st->db));
        goto fail;
    }
    if (store_migrate(st->db, err) < 0)
        goto fail;
    if (load_instance(st) < 0) {
        store_set_err(err, "%s has no valid instance id", path);
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
    if (st->db) {
        batch_commit(st);
        run_ready(st);
    }
    if (st->commit_ev)
        event_free(st->commit_ev);
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    store_query_cache_free(st);
    if (st->db && sqlite3_close(st->db) != SQLITE_OK)
        store_db_err(st->db, "closing the database");
    free(st);
}

const char *store_instance(const struct store *st)
{
    return st->instance;
}

int store_meta_get(struct store *st, const char *key, char *buf, size_t len)
{
    sqlite3_stmt *s = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(st->db, "SELECT value FROM meta WHERE key = ?1", -1, &s, NULL) !=
        SQLITE_OK)
        goto out;
    sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
    int step = sqlite3_step(s);
    if (step == SQLITE_ROW) {
        col_text(s, 0, buf, len);
        rc = 1;
    } else if (step == SQLITE_DONE) {
        rc = 0;
    }
out:
    if (rc < 0)
        store_db_err(st->db, "reading the meta table");
    sqlite3_finalize(s);
    return rc;
}

int store_meta_set(struct store *st, const char *key, const char *value)
{
    sqlite3_stmt *s = NULL;
    if (write_begin(st) < 0)
        return -1;
    bool ok = sqlite3_prepare_v2(st->db, "INSERT OR REPLACE INTO meta (key, value) "
                                 "VALUES (?1, ?2)", -1, &s, NULL) == SQLITE_OK;
    if (ok) {
        sqlite3_bind_text(s, 1, key, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(s, 2, value, -1, SQLITE_TRANSIENT);
        ok = sqlite3_step(s) == SQLITE_DONE;
    }
    if (!ok)
        store_db_err(st->db, "writing the meta table");
    sqlite3_finalize(s);
    return write_end(st, ok, NULL);
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
    rc |= store_bind_int_or_null(s, 1, j->id);
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
    rc |= store_bind_int_or_null(s, 12, j->due);
    rc |= sqlite3_bind_int(s, 13, j->priority);
    rc |= sqlite3_bind_int(s, 14, j->hold ? 1 : 0);
    rc |= bind_text_or_null(s, 15, j->printer);
    rc |= store_bind_int_or_null(s, 16, j->cups_job_id);
    rc |= sqlite3_bind_int(s, 17, j->reprints);
    rc |= sqlite3_bind_int64(s, 18, j->bytes);
    rc |= sqlite3_bind_text(s, 19, j->sha256, -1, SQLITE_TRANSIENT);
    if (j->preflight)
        rc |= sqlite3_bind_text(s, 20, j->preflight, -1, SQLITE_TRANSIENT);
    else
        rc |= sqlite3_bind_null(s, 20);
    rc |= store_bind_int_or_null(s, 21, j->created_at);
    rc |= store_bind_int_or_null(s, 22, j->printed_at);
    rc |= store_bind_int_or_null(s, 23, j->delivered_at);
    rc |= store_bind_int_or_null(s, 24, j->retain_until);
    rc |= store_bind_int_or_null(s, 25, j->shredded_at);
    rc |= bind_text_or_null(s, 26, j->complaint);
    rc |= store_bind_int_or_null(s, 27, j->complaint_opened_at);
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
        store_db_err(st->db, "reading a job");
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
    sqlite3_stmt *s = store_stmt(st, ST_EVENT_INSERT);
    if (!s)
        return -1;
    if (store_bind_int_or_null(s, 1, job_id) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, now_s()) != SQLITE_OK ||
        sqlite3_bind_text(s, 3, type, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        (uid >= 0 ? sqlite3_bind_int64(s, 4, uid) : sqlite3_bind_null(s, 4)) != SQLITE_OK ||
        (detail ? sqlite3_bind_text(s, 5, detail, -1, SQLITE_TRANSIENT)
                : sqlite3_bind_null(s, 5)) != SQLITE_OK) {
        store_db_err(st->db, "binding an event");
        return -1;
    }
    return stmt_done(st, s, "inserting an event");
}

int store_job_insert(struct store *st, struct job *j, int64_t uid)
{
    int e = EIO, rc;
    int64_t id;
    sqlite3_stmt *s;

    if (j->id != 0) {
        errno = EINVAL;
        return -1;
    }
    if (j->created_at == 0)
        j->created_at = now_s();
    if (write_begin(st) < 0) {
        errno = EIO;
        return -1;
    }
    s = store_stmt(st, ST_JOB_INSERT);
    if (!s || bind_job(s, j) < 0)
        goto fail;
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT_UNIQUE) {
            e = EEXIST;         /* an Idempotency-Key already known */
            log_warn("store: inserting a job: %s", sqlite3_errmsg(st->db));
        } else {
            store_db_err(st->db, "inserting a job");
        }
        goto fail;
    }
    id = sqlite3_last_insert_rowid(st->db);
    if (event_insert(st, id, "created", uid, job_state_name(j->state)) < 0)
        goto fail;
    j->id = id;
    if (write_end(st, true, j) < 0) {
        j->id = 0;
        errno = EIO;
        return -1;
    }
    if (st->job_hook)
        st->job_hook(j, st->job_hook_arg);
    return 0;
fail:
    write_end(st, false, NULL);
    errno = e;
    return -1;
}

int store_job_get(struct store *st, int64_t id, struct job *out)
{
    sqlite3_stmt *s = store_stmt(st, ST_JOB_GET);
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
    sqlite3_stmt *s = store_stmt(st, ST_JOB_BY_KEY);
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
    sqlite3_stmt *s = store_stmt(st, ST_JOB_BY_ORDER_SHA);
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
    int e = EIO;
    sqlite3_stmt *s;

    if (j->id <= 0 || !type) {
        errno = EINVAL;
        return -1;
    }
    if (write_begin(st) < 0) {
        errno = EIO;
        return -1;
    }
    s = store_stmt(st, ST_JOB_UPDATE);
    if (!s || bind_job(s, j) < 0 || stmt_done(st, s, "saving a job") < 0)
        goto fail;
    if (sqlite3_changes(st->db) != 1) {
        log_job(LOG_LVL_ERR, j->id, NULL, "store: saving a job that has no row");
        e = ENOENT;
        goto fail;
    }
    if (event_insert(st, j->id, type, uid, detail) < 0)
        goto fail;
    if (write_end(st, true, j) < 0) {
        errno = EIO;
        return -1;
    }
    if (st->job_hook)
        st->job_hook(j, st->job_hook_arg);
    return 0;
fail:
    write_end(st, false, NULL);
    errno = e;
    return -1;
}

void store_set_job_hook(struct store *st, void (*fn)(const struct job *j, void *arg), void *arg)
{
    st->job_hook = fn;
    st->job_hook_arg = arg;
}

void store_set_commit_hook(struct store *st, void (*fn)(const struct job *j, void *arg), void *arg)
{
    st->commit_hook = fn;
    st->commit_hook_arg = arg;
    if (!fn)
        held_release(st, false);
}

int store_event_add(struct store *st, int64_t job_id, const char *type, int64_t uid,
                    const char *detail)
{
    if (!type) {
        errno = EINVAL;
        return -1;
    }
    if (write_begin(st) < 0) {
        errno = EIO;
        return -1;
    }
    if (write_end(st, event_insert(st, job_id, type, uid, detail) == 0, NULL) < 0) {
        errno = EIO;
        return -1;
    }
    return 0;
}


int store_handover_set(struct store *st, const struct store_handover *h)
{
    char detail[160];
    if (write_begin(st) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(st, ST_HANDOVER_SET);
    bool ok = s && sqlite3_bind_int64(s, 1, h->job_id) == SQLITE_OK &&
              sqlite3_bind_int(s, 2, h->cups_id) == SQLITE_OK &&
              sqlite3_bind_text(s, 3, h->printer, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
              sqlite3_bind_int64(s, 4, now_s()) == SQLITE_OK &&
              sqlite3_bind_int(s, 5, h->cover_id) == SQLITE_OK &&
              sqlite3_bind_text(s, 6, h->substituted ? h->substituted : "", -1,
                                SQLITE_TRANSIENT) == SQLITE_OK &&
              stmt_done(st, s, "recording a hand-over") == 0;
    snprintf(detail, sizeof detail, "CUPS job %d on printer %s", h->cups_id, h->printer);
    ok = ok && event_insert(st, h->job_id, "handover", -1, detail) == 0;
    return write_end(st, ok, NULL);
}

int store_handover_clear(struct store *st, int64_t job_id)
{
    if (write_begin(st) < 0)
        return -1;
    sqlite3_stmt *s = store_stmt(st, ST_HANDOVER_CLEAR);
    bool ok = s && sqlite3_bind_int64(s, 1, job_id) == SQLITE_OK &&
              stmt_done(st, s, "clearing a hand-over") == 0;
    return write_end(st, ok, NULL);
}

int store_handovers_each(struct store *st, void (*cb)(const struct store_handover *h, void *arg),
                         void *arg)
{
    sqlite3_stmt *s = store_stmt(st, ST_HANDOVER_ALL);
    int rc, n = 0;
    if (!s)
        return -1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *printer = (const char *)sqlite3_column_text(s, 2);
        const char *subst = (const char *)sqlite3_column_text(s, 4);
        struct store_handover h = {.job_id = sqlite3_column_int64(s, 0),
                                   .cups_id = sqlite3_column_int(s, 1),
                                   .cover_id = sqlite3_column_int(s, 3),
                                   .printer = printer ? printer : "",
                                   .substituted = subst ? subst : ""};
        cb(&h, arg);
        n++;
    }
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) {
        store_db_err(st->db, "reading the hand-overs");
        return -1;
    }
    return n;
}

int64_t store_forget_orders(struct store *st, int64_t before)
{
    static const char sql[] =
        "UPDATE jobs SET order_ref = NULL, idem_key = NULL"
        " WHERE created_at < ?1 AND (order_ref IS NOT NULL OR idem_key IS NOT NULL)"
        " AND document_present = 0"
        " AND state IN ('printed', 'rejected', 'failed', 'canceled')";
    sqlite3_stmt *s = NULL;
    int64_t n = -1;

    if (write_begin(st) < 0)
        return -1;
    if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK) {
        store_db_err(st->db, "preparing the history clean-up");
        write_end(st, false, NULL);
        return -1;
    }
    sqlite3_bind_int64(s, 1, before);
    if (sqlite3_step(s) == SQLITE_DONE)
        n = sqlite3_changes(st->db);
    else
        store_db_err(st->db, "removing old order references");
    sqlite3_finalize(s);
    if (n > 0) {
        char detail[96];
        snprintf(detail, sizeof detail, "order references removed from %lld finished jobs",
                 (long long)n);
        if (event_insert(st, 0, "history", -1, detail) < 0)
            n = -1;
    }
    if (write_end(st, n >= 0, NULL) < 0)
        return -1;
    /* the old pages still hold the references in the WAL: checkpoint it
     * into the database (secure_delete overwrote them there) and empty it */
    if (n > 0 && store_flush(st) == 0 &&
        sqlite3_exec(st->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
        store_db_err(st->db, "checkpointing after the history clean-up");
    return n;
}
