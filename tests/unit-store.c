/* unit-store.c - the store (schema, pragmas, rows, events, queries) and the
 * job module (states, reasons, JSON, the state-change function), on a real
 * SQLite file in a private directory per test.
 *
 * The daemon reaches SQLite only through store.c; this test opens the same
 * file with sqlite3 directly to see what the store wrote and to build
 * databases the store must refuse. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <sqlite3.h>

#include "daemon.h"
#include "job.h"
#include "store.h"

/* No event loop here (D.base unset): every write commits before it returns. */
struct daemon D;

#define T_DUE 1795514462        /* 2026-11-24T10:01:02Z */

struct fx {
    char dir[64];
    char db[96];
    struct store *st;
};

/* ------------------------------------------------------------ helpers */

/* Run sql on the file directly; the first column of the first row as an
 * integer (0 when there is no row), or fail the test. */
static int64_t raw_int(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    int64_t v = 0;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
    int rc = sqlite3_step(s);
    assert_true(rc == SQLITE_ROW || rc == SQLITE_DONE);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(h);
    return v;
}

/* The first column of the first row as text into buf ("" = no row/NULL). */
static void raw_text(const char *db, const char *sql, char *buf, size_t len)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &s, NULL), SQLITE_OK);
    buf[0] = '\0';
    if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
        snprintf(buf, len, "%s", (const char *)sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    sqlite3_close(h);
}

/* Execute sql directly; SQLite's result code. */
static int raw_exec(const char *db, const char *sql)
{
    sqlite3 *h = NULL;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
                     SQLITE_OK);
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
    return rc;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char *err = NULL;
    assert_non_null(f);
    strcpy(f->dir, "/tmp/unit-store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/copees.db", f->dir);
    f->st = store_open(f->db, &err);
    if (!f->st)
        fail_msg("store_open: %s", err ? err : "?");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    store_close(f->st);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void reopen(struct fx *f)
{
    char *err = NULL;
    store_close(f->st);
    f->st = store_open(f->db, &err);
    if (!f->st)
        fail_msg("store_open: %s", err ? err : "?");
}

/* A queued-looking job with the given order and a sha256 made from seed. */
static void mkjob(struct job *j, const char *order, int seed)
{
    job_init(j);
    snprintf(j->order, sizeof j->order, "%s", order);
    for (int i = 0; i < 64; i++)
        j->sha256[i] = "0123456789abcdef"[(seed + i) & 15];
    j->sha256[64] = '\0';
    snprintf(j->media, sizeof j->media, "iso_a4_210x297mm");
    snprintf(j->doc_name, sizeof j->doc_name, "%032x", seed);
    j->bytes = 1000 + seed;
}

static int64_t insert(struct store *st, const char *order, int seed, enum job_state s)
{
    struct job j;
    mkjob(&j, order, seed);
    j.state = s;
    assert_int_equal(store_job_insert(st, &j, -1), 0);
    assert_true(j.id > 0);
    job_clear(&j);
    return j.id;
}

static bool is_hex(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* ------------------------------------------------------------ schema */

static void test_create(void **state)
{
    struct fx *f = *state;
    char buf[64], inst[9], wal[128];
    struct stat sb;

    assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 4);
    raw_text(f->db, "PRAGMA journal_mode", buf, sizeof buf);
    assert_string_equal(buf, "wal");
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);

    snprintf(inst, sizeof inst, "%s", store_instance(f->st));
    assert_true(is_hex(inst, 8));
    raw_text(f->db, "SELECT value FROM meta WHERE key = 'instance'", buf, sizeof buf);
    assert_string_equal(buf, inst);
    assert_true(raw_int(f->db, "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'created_at'")
                > 1700000000);

    /* the WAL file shares the database's mode */
    insert(f->st, "ORD-1", 1, JOB_STATE_QUEUED);
    snprintf(wal, sizeof wal, "%s-wal", f->db);
    assert_int_equal(stat(wal, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);

    reopen(f);
    assert_string_equal(store_instance(f->st), inst);
    assert_int_equal(raw_int(f->db, "PRAGMA user_version"), 4);
}

/* The file is 0600 even when the umask would let others read it. */
static void test_create_mode_umask(void **state)
{
    struct fx *f = *state;
    char path[128], *err = NULL;
    struct stat sb;

    snprintf(path, sizeof path, "%s/other.db", f->dir);
    mode_t old = umask(0);
    struct store *st = store_open(path, &err);
    umask(old);
    assert_non_null(st);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
    /* another database gets another instance id (8 hex digits) */
    assert_true(is_hex(store_instance(st), 8));
    store_close(st);
}

/* An existing file readable by others is tightened to 0600. */
static void test_existing_mode_tightened(void **state)
{
    struct fx *f = *state;
    struct stat sb;

    store_close(f->st);
    f->st = NULL;
    assert_int_equal(chmod(f->db, 0644), 0);
    reopen(f);
    assert_int_equal(stat(f->db, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0600);
}

static void test_newer_version_refused(void **state)
{
    struct fx *f = *state;
    char *err = NULL, path[128];

    store_close(f->st);
    f->st = NULL;
    assert_int_equal(raw_exec(f->db, "PRAGMA user_version = 5"), SQLITE_OK);
    assert_null(store_open(f->db, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "version 5"));
    free(err);
    err = NULL;

    /* a foreign database from the future: refused before any change */
    snprintf(path, sizeof path, "%s/future.db", f->dir);
    assert_int_equal(raw_exec(path, "CREATE TABLE x (a); PRAGMA user_version = 99"), SQLITE_OK);
    assert_null(store_open(path, &err));
    assert_non_null(err);
    free(err);
    /* and it was left as it was */
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 99);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'jobs'"), 0);
    char mode[16];
    raw_text(path, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "delete");
}

/* A file that is not an SQLite database is refused with a message. */
static void test_not_a_database(void **state)
{
    struct fx *f = *state;
    char path[128], *err = NULL;
    snprintf(path, sizeof path, "%s/junk.db", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database, ", fp);
    fclose(fp);
    assert_null(store_open(path, &err));
    assert_non_null(err);
    free(err);
}

static void test_pragmas_and_schema(void **state)
{
    struct fx *f = *state;
    /* the unique idempotency index and the other indexes exist */
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                                    "AND name IN ('jobs_idem_key', 'jobs_order_sha', "
                                    "'jobs_dispatch', 'jobs_retain', 'jobs_present', "
                                    "'events_job')"), 6);
    assert_int_equal(raw_int(f->db, "SELECT \"unique\" FROM pragma_index_list('jobs') "
                                    "WHERE name = 'jobs_idem_key'"), 1);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
                                    "AND tbl_name = 'events'"), 2);
}

static void test_events_append_only(void **state)
{
    struct fx *f = *state;
    int64_t id = insert(f->st, "ORD-1", 1, JOB_STATE_QUEUED);
    assert_int_equal(store_event_add(f->st, id, "note", 1000, "hello"), 0);
    assert_int_equal(store_event_add(f->st, 0, "startup", -1, NULL), 0);
    assert_int_equal(store_event_count(f->st, id, "note"), 1);
    assert_int_equal(store_event_count(f->st, 0, "startup"), 1);
    assert_int_equal(store_event_count(f->st, id, NULL), 2);     /* created + note */
    assert_int_equal(raw_int(f->db, "SELECT uid FROM events WHERE type = 'note'"), 1000);
    assert_int_equal(raw_int(f->db, "SELECT uid IS NULL FROM events WHERE type = 'startup'"), 1);

    assert_int_not_equal(raw_exec(f->db, "UPDATE events SET detail = 'x'"), SQLITE_OK);
    assert_int_not_equal(raw_exec(f->db, "DELETE FROM events"), SQLITE_OK);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM events"), 3);
    /* an event for a job that does not exist is refused (foreign key) */
    assert_int_equal(store_event_add(f->st, 999, "note", -1, NULL), -1);
}

/* ------------------------------------------------------------ rows */

static void test_ids_increase_never_reused(void **state)
{
    struct fx *f = *state;
    int64_t a = insert(f->st, "ORD-1", 1, JOB_STATE_QUEUED);
    int64_t b = insert(f->st, "ORD-1", 2, JOB_STATE_QUEUED);
    int64_t c = insert(f->st, "ORD-2", 3, JOB_STATE_QUEUED);
    assert_true(a < b && b < c);

    /* remove the newest row behind the store's back (foreign keys are off
     * on this raw connection): AUTOINCREMENT must not hand out c again */
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(raw_exec(f->db, "DELETE FROM jobs WHERE id = (SELECT max(id) FROM jobs)"),
                     SQLITE_OK);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM jobs"), 2);
    reopen(f);
    int64_t d = insert(f->st, "ORD-3", 4, JOB_STATE_QUEUED);
    assert_true(d > c);

    /* a job with an id cannot be inserted again */
    struct job j;
    mkjob(&j, "ORD-4", 5);
    j.id = a;
    errno = 0;
    assert_int_equal(store_job_insert(f->st, &j, -1), -1);
    assert_int_equal(errno, EINVAL);
}

static void set_all_fields(struct job *j)
{
    mkjob(j, "ORD-ALL.1_x", 7);
    snprintf(j->idem_key, sizeof j->idem_key, "key-0123456789");
    j->state = JOB_STATE_PRINTED;
    snprintf(j->reasons, sizeof j->reasons, "complaint-open,deadline-at-risk");
    j->pages = 12;
    j->pages_printed = 11;
    j->copies = 3;
    snprintf(j->sides, sizeof j->sides, "two-sided-short-edge");
    snprintf(j->color, sizeof j->color, "color");
    snprintf(j->media, sizeof j->media, "na_letter_8.5x11in");
    j->due = T_DUE;
    j->priority = 97;
    j->hold = true;
    snprintf(j->printer, sizeof j->printer, "atelier-a4");
    j->cups_job_id = 4242;
    j->reprints = 2;
    j->bytes = 5000000000LL;           /* over 32 bits */
    j->preflight = strdup("{\"pages\": 12, \"warnings\": []}");
    j->created_at = T_DUE - 7200;
    j->printed_at = T_DUE - 3600;
    j->delivered_at = T_DUE - 60;
    j->retain_until = T_DUE + 43200;
    j->shredded_at = T_DUE + 50000;
    snprintf(j->complaint, sizeof j->complaint, "closed");
    j->complaint_opened_at = T_DUE + 100;
    j->document_present = false;
    snprintf(j->doc_name, sizeof j->doc_name, "0123456789abcdef0123456789abcdef");
}

static void assert_jobs_equal(const struct job *a, const struct job *b)
{
    assert_int_equal(a->id, b->id);
    assert_string_equal(a->order, b->order);
    assert_string_equal(a->idem_key, b->idem_key);
    assert_int_equal(a->state, b->state);
    assert_string_equal(a->reasons, b->reasons);
    assert_int_equal(a->pages, b->pages);
    assert_int_equal(a->pages_printed, b->pages_printed);
    assert_int_equal(a->copies, b->copies);
    assert_string_equal(a->sides, b->sides);
    assert_string_equal(a->color, b->color);
    assert_string_equal(a->media, b->media);
    assert_int_equal(a->due, b->due);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->hold, b->hold);
    assert_string_equal(a->printer, b->printer);
    assert_int_equal(a->cups_job_id, b->cups_job_id);
    assert_int_equal(a->reprints, b->reprints);
    assert_int_equal(a->bytes, b->bytes);
    assert_string_equal(a->sha256, b->sha256);
    if (a->preflight || b->preflight) {
        assert_non_null(a->preflight);
        assert_non_null(b->preflight);
        assert_string_equal(a->preflight, b->preflight);
    }
    assert_int_equal(a->created_at, b->created_at);
    assert_int_equal(a->printed_at, b->printed_at);
    assert_int_equal(a->delivered_at, b->delivered_at);
    assert_int_equal(a->retain_until, b->retain_until);
    assert_int_equal(a->shredded_at, b->shredded_at);
    assert_string_equal(a->complaint, b->complaint);
    assert_int_equal(a->complaint_opened_at, b->complaint_opened_at);
    assert_int_equal(a->document_present, b->document_present);
    assert_string_equal(a->doc_name, b->doc_name);
}

static void test_roundtrip_all_fields(void **state)
{
    struct fx *f = *state;
    struct job j, g;

    set_all_fields(&j);
    assert_int_equal(store_job_insert(f->st, &j, 0), 0);
    assert_int_equal(store_job_get(f->st, j.id, &g), 0);
    assert_jobs_equal(&j, &g);
    job_clear(&g);

    /* the stored columns: names for states, NULL for unset values */
    char buf[320];
    snprintf(buf, sizeof buf, "SELECT state FROM jobs WHERE id = %lld", (long long)j.id);
    char st[16];
    raw_text(f->db, buf, st, sizeof st);
    assert_string_equal(st, "printed");

    /* a save changes every mutable column, and survives a reopen */
    j.state = JOB_STATE_QUEUED;
    j.reasons[0] = '\0';
    j.pages_printed = 0;
    j.printer[0] = '\0';
    j.cups_job_id = 0;
    j.printed_at = j.delivered_at = j.retain_until = j.shredded_at = 0;
    j.complaint[0] = '\0';
    j.complaint_opened_at = 0;
    j.document_present = true;
    j.hold = false;
    j.due = 0;
    j.idem_key[0] = '\0';
    free(j.preflight);
    j.preflight = NULL;
    j.reprints = 3;
    assert_int_equal(store_job_save(f->st, &j, "reprint", 0, NULL), 0);
    reopen(f);
    assert_int_equal(store_job_get(f->st, j.id, &g), 0);
    assert_jobs_equal(&j, &g);
    assert_null(g.preflight);
    job_clear(&g);
    snprintf(buf, sizeof buf, "SELECT count(*) FROM jobs WHERE id = %lld AND printer IS NULL "
             "AND cups_job_id IS NULL AND due IS NULL AND printed_at IS NULL AND idem_key IS NULL "
             "AND complaint IS NULL AND preflight IS NULL", (long long)j.id);
    assert_int_equal(raw_int(f->db, buf), 1);
    assert_int_equal(store_event_count(f->st, j.id, "reprint"), 1);
    job_clear(&j);
}

static void test_get_missing(void **state)
{
    struct fx *f = *state;
    struct job j;

    errno = 0;
    assert_int_equal(store_job_get(f->st, 12345, &j), -1);
    assert_int_equal(errno, ENOENT);
    job_clear(&j);
    errno = 0;
    assert_int_equal(store_job_find_key(f->st, "nope", &j), -1);
    assert_int_equal(errno, ENOENT);
    job_clear(&j);
    errno = 0;
    assert_int_equal(store_job_find_order_sha(f->st, "ORD-X", "00", &j), -1);
    assert_int_equal(errno, ENOENT);
    job_clear(&j);

    /* saving a job that has no row fails and writes no event */
    mkjob(&j, "ORD-X", 1);
    j.id = 777;
    errno = 0;
    assert_int_equal(store_job_save(f->st, &j, "state", -1, "x"), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM events"), 0);
    job_clear(&j);
}

static void test_set_state(void **state)
{
    struct fx *f = *state;
    struct job j, g;
    char buf[128];

    mkjob(&j, "ORD-S", 1);
    assert_int_equal(store_job_insert(f->st, &j, 1000), 0);
    assert_int_equal(store_event_count(f->st, j.id, "created"), 1);
    assert_int_equal(store_event_count(f->st, j.id, "state"), 0);

    assert_int_equal(job_set_state(f->st, &j, JOB_STATE_QUEUED, 1000, "accepted, %d pages", 3), 0);
    assert_int_equal(j.state, JOB_STATE_QUEUED);
    assert_int_equal(store_job_get(f->st, j.id, &g), 0);
    assert_int_equal(g.state, JOB_STATE_QUEUED);
    job_clear(&g);
    assert_int_equal(store_event_count(f->st, j.id, "state"), 1);
    raw_text(f->db, "SELECT detail FROM events WHERE type = 'state'", buf, sizeof buf);
    assert_string_equal(buf, "preflight -> queued: accepted, 3 pages");
    assert_int_equal(raw_int(f->db, "SELECT uid FROM events WHERE type = 'state'"), 1000);
    assert_true(raw_int(f->db, "SELECT at FROM events WHERE type = 'state'") > 1700000000);

    /* the whole row is saved with the state (one transaction) */
    job_reason_add(&j, "deadline-at-risk");
    assert_int_equal(job_set_state(f->st, &j, JOB_STATE_HELD, -1, "held by an admin"), 0);
    assert_int_equal(store_job_get(f->st, j.id, &g), 0);
    assert_int_equal(g.state, JOB_STATE_HELD);
    assert_string_equal(g.reasons, "deadline-at-risk");
    job_clear(&g);
    assert_int_equal(store_event_count(f->st, j.id, "state"), 2);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM events WHERE type = 'state' "
                                    "AND uid IS NULL AND detail = 'queued -> held: held by an admin'"),
                     1);

    /* a failed save keeps neither the row change nor the event, and puts
     * the in-memory state back */
    struct job ghost;
    mkjob(&ghost, "ORD-G", 2);
    ghost.id = 9999;
    ghost.state = JOB_STATE_QUEUED;
    assert_int_equal(job_set_state(f->st, &ghost, JOB_STATE_SENT, -1, "x"), -1);
    assert_int_equal(ghost.state, JOB_STATE_QUEUED);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM events"), 3);
    job_clear(&ghost);
    job_clear(&j);
}

static void test_find(void **state)
{
    struct fx *f = *state;
    struct job a, b, c, g;
    int64_t counts[JOB_STATE_COUNT];

    mkjob(&a, "ORD-F", 1);
    snprintf(a.idem_key, sizeof a.idem_key, "k1");
    assert_int_equal(store_job_insert(f->st, &a, -1), 0);
    mkjob(&b, "ORD-F", 2);               /* no key */
    assert_int_equal(store_job_insert(f->st, &b, -1), 0);
    mkjob(&c, "ORD-F", 2);               /* same order and document, own key */
    snprintf(c.idem_key, sizeof c.idem_key, "k2");
    assert_int_equal(store_job_insert(f->st, &c, -1), 0);

    assert_int_equal(store_job_find_key(f->st, "k1", &g), 0);
    assert_int_equal(g.id, a.id);
    job_clear(&g);
    assert_int_equal(store_job_find_key(f->st, "k2", &g), 0);
    assert_int_equal(g.id, c.id);
    job_clear(&g);
    /* by (order, sha256): only among jobs without a key */
    assert_int_equal(store_job_find_order_sha(f->st, "ORD-F", b.sha256, &g), 0);
    assert_int_equal(g.id, b.id);
    job_clear(&g);
    errno = 0;
    assert_int_equal(store_job_find_order_sha(f->st, "ORD-F", a.sha256, &g), -1);
    assert_int_equal(errno, ENOENT);
    job_clear(&g);
    assert_int_equal(store_job_find_order_sha(f->st, "ORD-OTHER", b.sha256, &g), -1);
    job_clear(&g);

    /* a second job with a known key is refused, leaving nothing behind */
    struct job d;
    mkjob(&d, "ORD-F", 3);
    snprintf(d.idem_key, sizeof d.idem_key, "k1");
    errno = 0;
    assert_int_equal(store_job_insert(f->st, &d, -1), -1);
    assert_int_equal(errno, EEXIST);
    assert_int_equal(d.id, 0);
    assert_int_equal(store_count_states(f->st, counts), 0);
    assert_int_equal(counts[JOB_STATE_PREFLIGHT], 3);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM events"), 3);
    job_clear(&a);
    job_clear(&b);
    job_clear(&c);
    job_clear(&d);
}

/* ------------------------------------------------------------ queries */

struct collect { int64_t ids[32]; int n; int stop_after; };

static int collect_cb(const struct job *j, void *arg)
{
    struct collect *c = arg;
    assert_true(c->n < 32);
    c->ids[c->n++] = j->id;
    return c->stop_after && c->n >= c->stop_after;
}

static void run(struct store *st, const struct store_filter *f, struct collect *c, int expect_rc)
{
    int stop = c->stop_after;
    memset(c, 0, sizeof *c);
    c->stop_after = stop;
    assert_int_equal(store_jobs_query(st, f, collect_cb, c), expect_rc);
    assert_int_equal(c->n, expect_rc);
}

static int64_t mk(struct store *st, const char *order, int seed, enum job_state s, int64_t due,
                  int prio, bool present, int64_t retain)
{
    struct job j;
    mkjob(&j, order, seed);
    j.state = s;
    j.due = due;
    j.priority = prio;
    j.document_present = present;
    j.retain_until = retain;
    assert_int_equal(store_job_insert(st, &j, -1), 0);
    job_clear(&j);
    return j.id;
}

static void test_query_filters(void **state)
{
    struct fx *f = *state;
    struct collect c = {0};
    int64_t j1 = mk(f->st, "ORD-A", 1, JOB_STATE_QUEUED, T_DUE + 600, 50, true, 0);
    int64_t j2 = mk(f->st, "ORD-A", 2, JOB_STATE_QUEUED, T_DUE, 50, true, 0);
    int64_t j3 = mk(f->st, "ORD-B", 3, JOB_STATE_QUEUED, T_DUE, 90, true, 0);
    int64_t j4 = mk(f->st, "ORD-B", 4, JOB_STATE_HELD, T_DUE - 600, 10, true, 0);
    int64_t j5 = mk(f->st, "ORD-C", 5, JOB_STATE_PRINTED, T_DUE, 50, true, 2000);
    int64_t j6 = mk(f->st, "ORD-C", 6, JOB_STATE_PRINTED, T_DUE, 50, false, 1000);
    int64_t j7 = mk(f->st, "ORD-D", 7, JOB_STATE_PRINTED, T_DUE, 50, true, 1500);
    int64_t j8 = mk(f->st, "ORD-D", 8, JOB_STATE_QUEUED, T_DUE, 50, true, 0);   /* due == j2's */

    struct store_filter all = STORE_FILTER_INIT;
    run(f->st, &all, &c, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(c.ids[i], j1 + i);
    assert_int_equal(store_jobs_query(f->st, &all, NULL, NULL), 8);    /* count only */

    struct store_filter fs = STORE_FILTER_INIT;
    fs.states = 1u << JOB_STATE_HELD | 1u << JOB_STATE_PRINTED;
    run(f->st, &fs, &c, 4);
    assert_int_equal(c.ids[0], j4);
    assert_int_equal(c.ids[1], j5);
    assert_int_equal(c.ids[2], j6);
    assert_int_equal(c.ids[3], j7);

    struct store_filter fo = STORE_FILTER_INIT;
    fo.order = "ORD-B";
    run(f->st, &fo, &c, 2);
    assert_int_equal(c.ids[0], j3);
    assert_int_equal(c.ids[1], j4);
    fo.order = "ORD-NONE";
    run(f->st, &fo, &c, 0);
    fo.order = "ORD-B' OR '1'='1";       /* a value is a value, never SQL */
    run(f->st, &fo, &c, 0);

    struct store_filter fp = STORE_FILTER_INIT;
    fp.after_id = j2;
    fp.limit = 3;
    run(f->st, &fp, &c, 3);
    assert_int_equal(c.ids[0], j3);
    assert_int_equal(c.ids[2], j5);
    fp.after_id = j7;
    run(f->st, &fp, &c, 1);
    assert_int_equal(c.ids[0], j8);

    struct store_filter fd = STORE_FILTER_INIT;
    fd.document = 0;
    run(f->st, &fd, &c, 1);
    assert_int_equal(c.ids[0], j6);
    fd.document = 1;
    run(f->st, &fd, &c, 7);

    struct store_filter fr = STORE_FILTER_INIT;
    fr.retain_before = 1500;
    fr.sort = STORE_BY_RETAIN;
    run(f->st, &fr, &c, 2);
    assert_int_equal(c.ids[0], j6);      /* 1000 */
    assert_int_equal(c.ids[1], j7);      /* 1500 */
    fr.document = 1;
    run(f->st, &fr, &c, 1);
    assert_int_equal(c.ids[0], j7);

    /* dispatch order: due, then priority (most urgent first), then id */
    struct store_filter fq = STORE_FILTER_INIT;
    fq.states = 1u << JOB_STATE_QUEUED | 1u << JOB_STATE_HELD;
    fq.sort = STORE_BY_DUE;
    run(f->st, &fq, &c, 5);
    assert_int_equal(c.ids[0], j4);      /* T-600 */
    assert_int_equal(c.ids[1], j3);      /* T, priority 90 */
    assert_int_equal(c.ids[2], j2);      /* T, 50, lower id */
    assert_int_equal(c.ids[3], j8);      /* T, 50 */
    assert_int_equal(c.ids[4], j1);      /* T+600 */

    /* a callback that stops early */
    c.stop_after = 2;
    run(f->st, &fq, &c, 2);
    assert_int_equal(c.ids[1], j3);

    /* a mask with bits for no state matches nothing */
    struct store_filter fx = STORE_FILTER_INIT;
    fx.states = 1u << JOB_STATE_COUNT;
    assert_int_equal(store_jobs_query(f->st, &fx, NULL, NULL), 0);
}

/* A job without a due date comes after every dated one. */
static void test_query_due_unset_last(void **state)
{
    struct fx *f = *state;
    struct collect c = {0};
    int64_t a = mk(f->st, "ORD-A", 1, JOB_STATE_QUEUED, 0, 100, true, 0);
    int64_t b = mk(f->st, "ORD-A", 2, JOB_STATE_QUEUED, T_DUE, 1, true, 0);
    struct store_filter fq = STORE_FILTER_INIT;
    fq.sort = STORE_BY_DUE;
    run(f->st, &fq, &c, 2);
    assert_int_equal(c.ids[0], b);
    assert_int_equal(c.ids[1], a);
}

struct mover { struct store *st; int64_t other; int seen_other; int n; };

/* Dispatch-like callback: moves the job it sees to sent, and the first
 * time also moves another queued job out of the filter. */
static int mover_cb(const struct job *cj, void *arg)
{
    struct mover *m = arg;
    struct job j;
    m->n++;
    if (cj->id == m->other)
        m->seen_other++;
    job_copy(&j, cj);
    assert_int_equal(job_set_state(m->st, &j, JOB_STATE_SENT, -1, "sent"), 0);
    job_clear(&j);
    if (m->n == 1) {
        struct job o;
        assert_int_equal(store_job_get(m->st, m->other, &o), 0);
        assert_int_equal(job_set_state(m->st, &o, JOB_STATE_HELD, -1, "held"), 0);
        job_clear(&o);
    }
    return 0;
}

static void test_query_callback_writes(void **state)
{
    struct fx *f = *state;
    int64_t ids[5];
    int64_t counts[JOB_STATE_COUNT];
    for (int i = 0; i < 5; i++)
        ids[i] = mk(f->st, "ORD-W", i, JOB_STATE_QUEUED, T_DUE + i, 50, true, 0);

    struct mover m = {.st = f->st, .other = ids[3]};
    struct store_filter fq = STORE_FILTER_INIT;
    fq.states = 1u << JOB_STATE_QUEUED;
    fq.sort = STORE_BY_DUE;
    assert_int_equal(store_jobs_query(f->st, &fq, mover_cb, &m), 4);
    assert_int_equal(m.n, 4);
    assert_int_equal(m.seen_other, 0);
    assert_int_equal(store_count_states(f->st, counts), 0);
    assert_int_equal(counts[JOB_STATE_SENT], 4);
    assert_int_equal(counts[JOB_STATE_HELD], 1);
    assert_int_equal(counts[JOB_STATE_QUEUED], 0);
    assert_int_equal(store_event_count(f->st, ids[0], "state"), 1);
}

struct ho_seen {
    int n;
    int64_t job[4];
    int cups[4], cover[4];
    char printer[4][16], subst[4][32];
};

static void ho_cb(const struct store_handover *r, void *arg)
{
    struct ho_seen *h = arg;
    if (h->n < 4) {
        h->job[h->n] = r->job_id;
        h->cups[h->n] = r->cups_id;
        h->cover[h->n] = r->cover_id;
        snprintf(h->printer[h->n], sizeof h->printer[0], "%s", r->printer);
        snprintf(h->subst[h->n], sizeof h->subst[0], "%s", r->substituted);
    }
    h->n++;
}

static int ho_set(struct store *st, int64_t job, int cups, int cover, const char *printer,
                  const char *subst)
{
    struct store_handover h = {.job_id = job, .cups_id = cups, .cover_id = cover,
                               .printer = printer, .substituted = subst};
    return store_handover_set(st, &h);
}

/* Hand-over records: set with an event, replaced, listed in job order
 * with their cover sheet and substitutions, cleared (clearing none is no
 * error), and they survive a reopen. */
static void test_handovers(void **state)
{
    struct fx *f = *state;
    struct ho_seen h = {0};
    int64_t a = insert(f->st, "ORD-H1", 1, JOB_STATE_QUEUED);
    int64_t b = insert(f->st, "ORD-H2", 2, JOB_STATE_QUEUED);

    assert_int_equal(store_handovers_each(f->st, ho_cb, &h), 0);
    assert_int_equal(ho_set(f->st, b, 7, 0, "p2", NULL), 0);
    assert_int_equal(ho_set(f->st, a, 5, 4, "p1", "sides"), 0);
    assert_int_equal(ho_set(f->st, a, 6, 3, "p1", "media,sides"), 0);     /* replaces */
    assert_int_equal(store_event_count(f->st, a, "handover"), 2);
    reopen(f);
    assert_int_equal(store_handovers_each(f->st, ho_cb, &h), 2);
    assert_int_equal(h.job[0], a);
    assert_int_equal(h.cups[0], 6);
    assert_int_equal(h.cover[0], 3);
    assert_string_equal(h.printer[0], "p1");
    assert_string_equal(h.subst[0], "media,sides");
    assert_int_equal(h.job[1], b);
    assert_int_equal(h.cups[1], 7);
    assert_int_equal(h.cover[1], 0);
    assert_string_equal(h.printer[1], "p2");
    assert_string_equal(h.subst[1], "");
    assert_int_equal(store_handover_clear(f->st, a), 0);
    assert_int_equal(store_handover_clear(f->st, a), 0);
    memset(&h, 0, sizeof h);
    assert_int_equal(store_handovers_each(f->st, ho_cb, &h), 1);
    assert_int_equal(h.job[0], b);
}

static void test_next_retain(void **state)
{
    struct fx *f = *state;
    assert_int_equal(store_next_retain(f->st, 0), 0);
    mk(f->st, "ORD-R", 1, JOB_STATE_QUEUED, T_DUE, 50, true, 0);
    assert_int_equal(store_next_retain(f->st, 0), 0);
    mk(f->st, "ORD-R", 2, JOB_STATE_PRINTED, T_DUE, 50, true, T_DUE + 500);
    mk(f->st, "ORD-R", 3, JOB_STATE_PRINTED, T_DUE, 50, true, T_DUE + 300);
    mk(f->st, "ORD-R", 4, JOB_STATE_PRINTED, T_DUE, 50, false, T_DUE + 100);  /* shredded */
    assert_int_equal(store_next_retain(f->st, 0), T_DUE + 300);
    assert_int_equal(store_next_retain(f->st, T_DUE + 300), T_DUE + 500);
    assert_int_equal(store_next_retain(f->st, T_DUE + 500), 0);
}

static void test_count_states(void **state)
{
    struct fx *f = *state;
    int64_t counts[JOB_STATE_COUNT];

    memset(counts, 0xff, sizeof counts);
    assert_int_equal(store_count_states(f->st, counts), 0);
    for (int i = 0; i < JOB_STATE_COUNT; i++)
        assert_int_equal(counts[i], 0);
    insert(f->st, "ORD-C", 1, JOB_STATE_QUEUED);
    insert(f->st, "ORD-C", 2, JOB_STATE_QUEUED);
    insert(f->st, "ORD-C", 3, JOB_STATE_CANCELED);
    insert(f->st, "ORD-C", 4, JOB_STATE_PREFLIGHT);
    assert_int_equal(store_count_states(f->st, counts), 0);
    assert_int_equal(counts[JOB_STATE_QUEUED], 2);
    assert_int_equal(counts[JOB_STATE_CANCELED], 1);
    assert_int_equal(counts[JOB_STATE_PREFLIGHT], 1);
    assert_int_equal(counts[JOB_STATE_PRINTED], 0);
}

/* ------------------------------------------------------------ job module */

static void test_state_names(void **state)
{
    static const char *const names[] = {"preflight", "rejected", "held", "queued", "sent",
                                        "printing", "printed", "failed", "canceled"};
    assert_int_equal(sizeof names / sizeof names[0], JOB_STATE_COUNT);
    for (int i = 0; i < JOB_STATE_COUNT; i++) {
        assert_string_equal(job_state_name(i), names[i]);
        assert_int_equal(job_state_from_name(names[i]), i);
    }
    assert_int_equal(job_state_from_name("Queued"), -1);
    assert_int_equal(job_state_from_name(""), -1);
    assert_int_equal(job_state_from_name(NULL), -1);
    assert_true(job_state_is_completed(JOB_STATE_PRINTED));
    assert_true(job_state_is_completed(JOB_STATE_REJECTED));
    assert_true(job_state_is_completed(JOB_STATE_FAILED));
    assert_true(job_state_is_completed(JOB_STATE_CANCELED));
    assert_false(job_state_is_completed(JOB_STATE_QUEUED));
    assert_false(job_state_is_completed(JOB_STATE_HELD));
    assert_false(job_state_is_completed(JOB_STATE_SENT));
    assert_false(job_state_is_completed(JOB_STATE_PRINTING));
    assert_false(job_state_is_completed(JOB_STATE_PREFLIGHT));
}

static void test_init_copy(void **state)
{
    struct job j, k;
    job_init(&j);
    assert_int_equal(j.id, 0);
    assert_int_equal(j.state, JOB_STATE_PREFLIGHT);
    assert_int_equal(j.copies, 1);
    assert_string_equal(j.sides, "one-sided");
    assert_string_equal(j.color, "monochrome");
    assert_int_equal(j.priority, 50);
    assert_true(j.document_present);
    assert_null(j.preflight);

    j.preflight = strdup("{\"pages\": 1}");
    job_copy(&k, &j);
    assert_non_null(k.preflight);
    assert_ptr_not_equal(k.preflight, j.preflight);
    assert_string_equal(k.preflight, j.preflight);
    job_clear(&j);
    assert_null(j.preflight);
    assert_string_equal(k.preflight, "{\"pages\": 1}");
    job_clear(&k);
    job_clear(&k);      /* twice is harmless */
}

static void test_reasons(void **state)
{
    struct job j;
    job_init(&j);
    assert_false(job_reason_has(&j, "document-lost"));
    job_reason_add(&j, "deadline-at-risk");
    job_reason_add(&j, "printer-stopped");
    job_reason_add(&j, "deadline-at-risk");
    assert_string_equal(j.reasons, "deadline-at-risk,printer-stopped");
    assert_true(job_reason_has(&j, "printer-stopped"));
    assert_false(job_reason_has(&j, "printer"));        /* whole keywords only */
    assert_false(job_reason_has(&j, "deadline-at-risk,printer-stopped"));
    job_reason_add(&j, "complaint-open");
    job_reason_remove(&j, "printer-stopped");
    assert_string_equal(j.reasons, "deadline-at-risk,complaint-open");
    job_reason_remove(&j, "deadline-at-risk");
    assert_string_equal(j.reasons, "complaint-open");
    job_reason_remove(&j, "not-there");
    assert_string_equal(j.reasons, "complaint-open");
    job_reason_remove(&j, "complaint-open");
    assert_string_equal(j.reasons, "");
    job_reason_add(&j, "");
    job_reason_add(&j, "a,b");
    assert_string_equal(j.reasons, "");
    /* full: further keywords are dropped, never overflow */
    for (int i = 0; i < 100; i++) {
        char kw[24];
        snprintf(kw, sizeof kw, "reason-%d", i);
        job_reason_add(&j, kw);
    }
    assert_true(strlen(j.reasons) < sizeof j.reasons);
    assert_true(job_reason_has(&j, "reason-0"));
    assert_false(job_reason_has(&j, "reason-99"));
}

static const char *const json_keys[] = {
    "id", "order", "state", "state_reasons", "pages", "pages_printed", "copies", "sides",
    "color", "media", "due", "priority", "printer", "cups_job_id", "reprints", "bytes",
    "sha256", "preflight", "created_at", "printed_at", "delivered_at", "retain_until",
    "complaint", "document", "shredded_at",
};
#define N_KEYS (sizeof json_keys / sizeof json_keys[0])

static void test_json_defaults(void **state)
{
    struct job j;
    mkjob(&j, "ORD-J", 1);
    j.id = 42;
    json_t *o = job_to_json(&j);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), N_KEYS);
    /* every key, in the design's order */
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        assert_true(i < N_KEYS);
        assert_string_equal(key, json_keys[i]);
        i++;
    }
    assert_true(json_is_integer(json_object_get(o, "id")));
    assert_int_equal(json_integer_value(json_object_get(o, "id")), 42);
    assert_string_equal(json_string_value(json_object_get(o, "order")), "ORD-J");
    assert_string_equal(json_string_value(json_object_get(o, "state")), "preflight");
    assert_true(json_is_array(json_object_get(o, "state_reasons")));
    assert_int_equal(json_array_size(json_object_get(o, "state_reasons")), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "copies")), 1);
    assert_string_equal(json_string_value(json_object_get(o, "sides")), "one-sided");
    assert_string_equal(json_string_value(json_object_get(o, "color")), "monochrome");
    assert_int_equal(json_integer_value(json_object_get(o, "priority")), 50);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes")), 1001);
    assert_string_equal(json_string_value(json_object_get(o, "document")), "present");
    static const char *const nulls[] = {"due", "printer", "cups_job_id", "preflight",
                                        "created_at", "printed_at", "delivered_at",
                                        "retain_until", "complaint", "shredded_at"};
    for (size_t k = 0; k < sizeof nulls / sizeof nulls[0]; k++)
        if (!json_is_null(json_object_get(o, nulls[k])))
            fail_msg("%s should be null", nulls[k]);
    json_decref(o);

    /* a report that is not a JSON object is null, not an error */
    j.preflight = strdup("[1, 2");
    o = job_to_json(&j);
    assert_true(json_is_null(json_object_get(o, "preflight")));
    json_decref(o);
    job_clear(&j);
}

static void test_json_values(void **state)
{
    struct job j;
    set_all_fields(&j);
    j.id = 7;
    json_t *o = job_to_json(&j);
    assert_non_null(o);
    assert_int_equal(json_object_size(o), N_KEYS);
    assert_string_equal(json_string_value(json_object_get(o, "state")), "printed");
    json_t *r = json_object_get(o, "state_reasons");
    assert_int_equal(json_array_size(r), 2);
    assert_string_equal(json_string_value(json_array_get(r, 0)), "complaint-open");
    assert_string_equal(json_string_value(json_array_get(r, 1)), "deadline-at-risk");
    assert_string_equal(json_string_value(json_object_get(o, "due")), "2026-11-24T10:01:02Z");
    assert_string_equal(json_string_value(json_object_get(o, "created_at")),
                        "2026-11-24T08:01:02Z");
    assert_string_equal(json_string_value(json_object_get(o, "retain_until")),
                        "2026-11-24T22:01:02Z");
    assert_string_equal(json_string_value(json_object_get(o, "printer")), "atelier-a4");
    assert_int_equal(json_integer_value(json_object_get(o, "cups_job_id")), 4242);
    assert_int_equal(json_integer_value(json_object_get(o, "bytes")), 5000000000LL);
    assert_int_equal(json_integer_value(json_object_get(o, "pages_printed")), 11);
    assert_int_equal(json_integer_value(json_object_get(o, "reprints")), 2);
    assert_string_equal(json_string_value(json_object_get(o, "complaint")), "closed");
    assert_string_equal(json_string_value(json_object_get(o, "document")), "shredded");
    assert_true(json_is_string(json_object_get(o, "shredded_at")));
    json_t *pf = json_object_get(o, "preflight");
    assert_true(json_is_object(pf));
    assert_int_equal(json_integer_value(json_object_get(pf, "pages")), 12);
    /* private fields stay private */
    assert_null(json_object_get(o, "idem_key"));
    assert_null(json_object_get(o, "doc_name"));
    assert_null(json_object_get(o, "hold"));
    json_decref(o);

    snprintf(j.complaint, sizeof j.complaint, "open");
    o = job_to_json(&j);
    assert_string_equal(json_string_value(json_object_get(o, "complaint")), "open");
    json_decref(o);
    job_clear(&j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_mode_umask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_existing_mode_tightened, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pragmas_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_events_append_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_increase_never_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_all_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_due_unset_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_callback_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handovers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_next_retain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_states, setup, teardown),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_init_copy),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_json_defaults),
        cmocka_unit_test(test_json_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
