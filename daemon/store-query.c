/* store-query.c - job queries and counts (see store.h).
 *
 * Design notes:
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
 *  - Counts are COUNT queries answered from an index, never by loading
 *    rows (GET /metrics asks for them at every scrape).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sqlite3.h>

#include "log.h"
#include "store-private.h"

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
    for (int i = 0; i < STORE_QUERY_CACHE; i++) {
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
        store_db_err(st->db, "preparing a job query");
        free(copy);
        return NULL;
    }
    sqlite3_finalize(q->stmt);
    free(q->sql);
    q->sql = copy;
    q->stmt = s;
    st->qnext = (st->qnext + 1) % STORE_QUERY_CACHE;
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
        store_db_err(st->db, "listing jobs");
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

/* The one value of a one-row query s (bound already), -1 on an error
 * (logged as "what"). */
static int64_t one_value(struct store *st, sqlite3_stmt *s, const char *what)
{
    int64_t v = -1;
    if (!s)
        return -1;
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    else
        store_db_err(st->db, what);
    sqlite3_reset(s);
    return v;
}

int64_t store_next_retain(struct store *st, int64_t after)
{
    /* min() of nothing is NULL: 0 */
    sqlite3_stmt *s = store_stmt(st, ST_NEXT_RETAIN);
    if (s)
        sqlite3_bind_int64(s, 1, after);
    return one_value(st, s, "finding the next retention time");
}

int store_count_states(struct store *st, int64_t counts[JOB_STATE_COUNT])
{
    sqlite3_stmt *s = store_stmt(st, ST_COUNT_STATES);
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
        store_db_err(st->db, "counting jobs");
        return -1;
    }
    return 0;
}

int store_event_count(struct store *st, int64_t job_id, const char *type)
{
    sqlite3_stmt *s = store_stmt(st, ST_EVENT_COUNT);
    if (!s)
        return -1;
    store_bind_int_or_null(s, 1, job_id);
    if (type)
        sqlite3_bind_text(s, 2, type, -1, SQLITE_TRANSIENT);
    return (int)one_value(st, s, "counting events");
}

int64_t store_count_present(struct store *st)
{
    return one_value(st, store_stmt(st, ST_COUNT_PRESENT), "counting documents");
}

void store_query_cache_free(struct store *st)
{
    for (int i = 0; i < STORE_QUERY_CACHE; i++) {
        sqlite3_finalize(st->qcache[i].stmt);
        free(st->qcache[i].sql);
        st->qcache[i].stmt = NULL;
        st->qcache[i].sql = NULL;
    }
}
