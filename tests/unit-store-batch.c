/* unit-store-batch.c - the store's batched commits (deferred writes, their
 * commit at the end of the loop turn or at their deadline, store_sync), the schema migration
 * from version 1, the count of kept documents and the (order, SHA-256)
 * lookup's cost, on a real SQLite file and a real libevent loop.
 *
 * What is committed is checked from a second SQLite connection, which sees
 * only what the store's connection has committed. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <event2/event.h>
#include <sqlite3.h>

#include "daemon.h"
#include "job.h"
#include "store.h"

struct daemon D;

struct fx {
    char dir[64];
    char db[96];
    struct store *st;
    sqlite3 *raw;              /* a second connection: sees commits only */
};

static int64_t raw_int(struct fx *f, const char *sql)
{
    sqlite3_stmt *s = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_prepare_v2(f->raw, sql, -1, &s, NULL), SQLITE_OK);
    if (sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char *err = NULL;
    assert_non_null(f);
    strcpy(f->dir, "/tmp/unit-batch.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/copees.db", f->dir);
    D.base = event_base_new();
    assert_non_null(D.base);
    f->st = store_open(f->db, &err);
    if (!f->st)
        fail_msg("store_open: %s", err ? err : "?");
    assert_int_equal(sqlite3_open_v2(f->db, &f->raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    sqlite3_close(f->raw);
    store_close(f->st);
    event_base_free(D.base);
    D.base = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void mkjob(struct job *j, const char *order, int seed)
{
    job_init(j);
    snprintf(j->order, sizeof j->order, "%s", order);
    for (int i = 0; i < 64; i++)
        j->sha256[i] = "0123456789abcdef"[(seed + i) & 15];
    j->sha256[64] = '\0';
    snprintf(j->media, sizeof j->media, "iso_a4_210x297mm");
    snprintf(j->doc_name, sizeof j->doc_name, "%032x", seed);
}

static int64_t insert(struct store *st, const char *order, int seed)
{
    struct job j;
    mkjob(&j, order, seed);
    assert_int_equal(store_job_insert(st, &j, -1), 0);
    job_clear(&j);
    return j.id;
}

/* A store_sync() callback: counts its calls and remembers ok. */
struct synced { int calls; bool ok; int64_t committed_then; struct fx *f; };

static void on_synced(void *arg, bool ok)
{
    struct synced *s = arg;
    s->calls++;
    s->ok = ok;
    s->committed_then = raw_int(s->f, "SELECT count(*) FROM jobs");
}

static void loop_once(void)
{
    assert_true(event_base_loop(D.base, EVLOOP_NONBLOCK) >= 0);    /* 1: nothing left */
}

/* ------------------------------------------------------------ batches */

/* Deferred writes stay in one open transaction until the loop turn ends;
 * then one commit holds them all and the waiters run after it. */
static void test_deferred_one_commit(void **state)
{
    struct fx *f = *state;
    struct store_stats a, b;
    struct synced s = {.f = f};
    struct job j;

    store_get_stats(f->st, &a);
    store_defer_begin(f->st);
    int64_t id1 = insert(f->st, "ORD-B", 1);
    int64_t id2 = insert(f->st, "ORD-B", 2);
    assert_int_equal(store_job_get(f->st, id1, &j), 0);
    j.state = JOB_STATE_QUEUED;
    assert_int_equal(store_job_save(f->st, &j, "state", -1, "preflight -> queued"), 0);
    job_clear(&j);
    store_sync(f->st, on_synced, &s);
    store_defer_end(f->st);

    /* not committed yet: the store's own reads see the rows, others do not */
    assert_int_equal(s.calls, 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), 0);
    assert_int_equal(store_job_get(f->st, id2, &j), 0);
    job_clear(&j);

    loop_once();
    assert_int_equal(s.calls, 1);
    assert_true(s.ok);
    assert_int_equal(s.committed_then, 2);      /* the waiter ran after the commit */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM events"), 3);
    store_get_stats(f->st, &b);
    assert_int_equal(b.commits - a.commits, 1);
    assert_int_equal(b.writes - a.writes, 3);
    assert_int_equal(b.deferred - a.deferred, 3);
}

/* A deferred write that nobody waits for is committed anyway, within a
 * few milliseconds: the loop's timer, not a store_sync(), brings it. */
static void test_deferred_deadline(void **state)
{
    struct fx *f = *state;

    store_defer_begin(f->st);
    insert(f->st, "ORD-T", 1);
    store_defer_end(f->st);
    loop_once();
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), 0);
    /* the commit timer is the only event: the loop waits for it, runs it
     * and returns */
    assert_int_equal(event_base_loop(D.base, EVLOOP_ONCE), 0);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), 1);
}

/* A plain write commits the open batch before it returns; a waiter for
 * the batch still runs from the loop, never from inside the store call. */
static void test_plain_write_commits_batch(void **state)
{
    struct fx *f = *state;
    struct synced s = {.f = f};

    store_defer_begin(f->st);
    insert(f->st, "ORD-P", 1);
    store_sync(f->st, on_synced, &s);
    store_defer_end(f->st);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), 0);

    insert(f->st, "ORD-P", 2);                  /* plain */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), 2);
    assert_int_equal(s.calls, 0);
    loop_once();
    assert_int_equal(s.calls, 1);
    assert_true(s.ok);

    /* with nothing open, a waiter is still called back from the loop */
    store_sync(f->st, on_synced, &s);
    assert_int_equal(s.calls, 1);
    loop_once();
    assert_int_equal(s.calls, 2);
    assert_true(s.ok);
}

/* A deferred write that fails rolls back its own part only. */
static void test_deferred_failure_is_its_own(void **state)
{
    struct fx *f = *state;
    struct job a, b;
    struct synced s = {.f = f};

    store_defer_begin(f->st);
    mkjob(&a, "ORD-K", 1);
    snprintf(a.idem_key, sizeof a.idem_key, "key-1");
    assert_int_equal(store_job_insert(f->st, &a, -1), 0);
    mkjob(&b, "ORD-K", 2);
    snprintf(b.idem_key, sizeof b.idem_key, "key-1");
    errno = 0;
    assert_int_equal(store_job_insert(f->st, &b, -1), -1);
    assert_int_equal(errno, EEXIST);
    insert(f->st, "ORD-K", 3);
    store_sync(f->st, on_synced, &s);
    store_defer_end(f->st);
    loop_once();
    assert_int_equal(s.calls, 1);
    assert_true(s.ok);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), 2);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM events"), 2);
    job_clear(&a);
    job_clear(&b);
}

/* The job hook runs once per written row, when it is written: a
 * deferred row is already readable in the process then. */
struct hooked { int calls; int64_t last_id; enum job_state last_state; struct store *st; };

static void hook(const struct job *j, void *arg)
{
    struct hooked *h = arg;
    struct job r;
    h->calls++;
    h->last_id = j->id;
    assert_int_equal(store_job_get(h->st, j->id, &r), 0);
    h->last_state = r.state;
    job_clear(&r);
}

static void test_hook_once_per_write(void **state)
{
    struct fx *f = *state;
    struct hooked h = {.st = f->st};
    struct job j;

    store_set_job_hook(f->st, hook, &h);
    store_defer_begin(f->st);
    mkjob(&j, "ORD-H", 1);
    assert_int_equal(store_job_insert(f->st, &j, -1), 0);
    assert_int_equal(h.calls, 1);
    assert_int_equal(h.last_id, j.id);
    assert_int_equal(h.last_state, JOB_STATE_PREFLIGHT);
    assert_int_equal(job_set_state(f->st, &j, JOB_STATE_HELD, -1, "held"), 0);
    assert_int_equal(h.calls, 2);
    assert_int_equal(h.last_state, JOB_STATE_HELD);
    store_defer_end(f->st);
    loop_once();
    assert_int_equal(h.calls, 2);               /* the commit calls no hook */
    store_set_job_hook(f->st, NULL, NULL);
    job_clear(&j);
}

/* The commit hook runs for a batch's rows once it is committed, in the
 * order written, and never for a batch that was rolled back. */
struct committed { int calls; int64_t ids[8]; enum job_state states[8]; char orders[8][JOB_ORDER_MAX + 1]; };

static void on_commit(const struct job *j, void *arg)
{
    struct committed *c = arg;
    if (c->calls < 8) {
        c->ids[c->calls] = j->id;
        c->states[c->calls] = j->state;
        snprintf(c->orders[c->calls], sizeof c->orders[0], "%s", j->order);
    }
    c->calls++;
}

static void test_commit_hook(void **state)
{
    struct fx *f = *state;
    struct committed c = {0};
    struct hooked h = {.st = f->st};
    struct synced s = {.f = f}, s0 = {.f = f};
    struct job j, k;

    store_set_job_hook(f->st, hook, &h);
    store_set_commit_hook(f->st, on_commit, &c);
    /* committed: both rows, in order, after the commit and not before */
    store_defer_begin(f->st);
    mkjob(&j, "ORD-CH", 1);
    assert_int_equal(store_job_insert(f->st, &j, -1), 0);
    assert_int_equal(job_set_state(f->st, &j, JOB_STATE_HELD, -1, "held"), 0);
    store_sync(f->st, on_synced, &s0);
    store_defer_end(f->st);
    assert_int_equal(c.calls, 0);
    assert_int_equal(h.calls, 2);
    loop_once();
    assert_int_equal(s0.calls, 1);
    assert_true(s0.ok);
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.ids[0], j.id);
    assert_int_equal(c.states[0], JOB_STATE_PREFLIGHT);
    assert_int_equal(c.states[1], JOB_STATE_HELD);
    /* rolled back: a COMMIT that fails (a deferred foreign key, set up
     * through a second connection, fails it the way a full disk does) */
    assert_int_equal(sqlite3_exec(f->raw,
                                  "CREATE TABLE p(id INTEGER PRIMARY KEY);"
                                  "CREATE TABLE t(x INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);"
                                  "CREATE TRIGGER tr AFTER INSERT ON jobs WHEN NEW.order_ref = 'ORD-RB' "
                                  "BEGIN INSERT INTO t VALUES (42); END;",
                                  NULL, NULL, NULL), SQLITE_OK);
    store_defer_begin(f->st);
    assert_int_equal(job_set_state(f->st, &j, JOB_STATE_QUEUED, -1, "released"), 0);
    mkjob(&k, "ORD-RB", 2);
    assert_int_equal(store_job_insert(f->st, &k, -1), 0);
    store_sync(f->st, on_synced, &s);
    store_defer_end(f->st);
    assert_int_equal(h.calls, 4);              /* the job hook saw both as written */
    loop_once();
    assert_int_equal(s.calls, 1);
    assert_false(s.ok);                         /* the batch was rolled back */
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs WHERE order_ref = 'ORD-RB'"), 0);
    assert_int_equal(c.calls, 2);               /* ... and nothing of it was passed on */
    /* a plain write afterwards: passed on at once */
    assert_int_equal(job_set_state(f->st, &j, JOB_STATE_QUEUED, -1, "released"), 0);
    assert_int_equal(c.calls, 3);
    assert_int_equal(c.ids[2], j.id);
    assert_int_equal(c.states[2], JOB_STATE_QUEUED);
    assert_string_equal(c.orders[2], "ORD-CH");
    store_set_commit_hook(f->st, NULL, NULL);
    store_set_job_hook(f->st, NULL, NULL);
    job_clear(&j);
    job_clear(&k);
}

/* Closing the store commits what is open and answers its waiters. */
static void test_close_commits(void **state)
{
    struct fx *f = *state;
    struct synced s = {.f = f};
    char *err = NULL;

    store_defer_begin(f->st);
    insert(f->st, "ORD-C", 1);
    store_sync(f->st, on_synced, &s);
    store_defer_end(f->st);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(s.calls, 1);
    assert_true(s.ok);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM jobs"), 1);
    f->st = store_open(f->db, &err);
    assert_non_null(f->st);
}

/* ------------------------------------------------------------ schema, counts */

/* A version 1 database gets the documents index when opened. */
static void test_migrate_from_v1(void **state)
{
    struct fx *f = *state;
    char *err = NULL;

    insert(f->st, "ORD-M", 1);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(sqlite3_exec(f->raw, "DROP INDEX jobs_present; DROP TABLE handovers; "
                                  "PRAGMA user_version = 1", NULL, NULL, NULL), SQLITE_OK);
    f->st = store_open(f->db, &err);
    if (!f->st)
        fail_msg("store_open: %s", err ? err : "?");
    assert_int_equal(raw_int(f, "PRAGMA user_version"), 4);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM sqlite_master WHERE name = 'jobs_present'"),
                     1);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM sqlite_master WHERE name = 'handovers'"),
                     1);
    assert_int_equal(store_count_present(f->st), 1);
}

/* A version 3 database's hand-over records get a cover sheet (none) and
 * substitutions (none) when opened, and stay. */
static void test_migrate_from_v3(void **state)
{
    struct fx *f = *state;
    char *err = NULL;

    int64_t id = insert(f->st, "ORD-M3", 1);
    store_close(f->st);
    f->st = NULL;
    char sql[512];
    snprintf(sql, sizeof sql, "DROP TABLE handovers; CREATE TABLE handovers ("
             "job_id INTEGER PRIMARY KEY REFERENCES jobs (id), cups_id INTEGER NOT NULL, "
             "printer TEXT NOT NULL, at INTEGER NOT NULL); "
             "INSERT INTO handovers VALUES (%lld, 12, 'p1', 1); PRAGMA user_version = 3",
             (long long)id);
    assert_int_equal(sqlite3_exec(f->raw, sql, NULL, NULL, NULL), SQLITE_OK);
    f->st = store_open(f->db, &err);
    if (!f->st)
        fail_msg("store_open: %s", err ? err : "?");
    assert_int_equal(raw_int(f, "PRAGMA user_version"), 4);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM handovers WHERE cups_id = 12 AND "
                                "cover_id = 0 AND substituted = ''"), 1);
}

static void test_count_present(void **state)
{
    struct fx *f = *state;
    struct job j;

    assert_int_equal(store_count_present(f->st), 0);
    insert(f->st, "ORD-D", 1);
    int64_t id = insert(f->st, "ORD-D", 2);
    insert(f->st, "ORD-D", 3);
    assert_int_equal(store_count_present(f->st), 3);
    assert_int_equal(store_job_get(f->st, id, &j), 0);
    j.document_present = false;
    j.shredded_at = 1795514462;
    assert_int_equal(store_job_save(f->st, &j, "shred", -1, NULL), 0);
    job_clear(&j);
    assert_int_equal(store_count_present(f->st), 2);
}

/* Finding a retry by (order, SHA-256) must not cost a walk over every job
 * uploaded without an Idempotency-Key: 40,000 such jobs, 5,000 lookups.
 * Indexed they take well under a second (tens of milliseconds here); a
 * walk over the keyless jobs takes over ten seconds. */
static void test_order_sha_lookup_indexed(void **state)
{
    struct fx *f = *state;
    struct job j;
    char order[32];
    struct timespec t0, t1;

    store_defer_begin(f->st);                   /* one commit for the lot */
    for (int i = 0; i < 40000; i++) {
        snprintf(order, sizeof order, "ORD-%d", i);
        insert(f->st, order, i);
    }
    store_defer_end(f->st);
    assert_int_equal(store_flush(f->st), 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 5000; i++) {
        struct job probe;
        int k = (i * 7919) % 40000;
        mkjob(&probe, "x", k);
        snprintf(order, sizeof order, "ORD-%d", k);
        assert_int_equal(store_job_find_order_sha(f->st, order, probe.sha256, &j), 0);
        assert_string_equal(j.order, order);
        job_clear(&j);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (s > 3.0)
        fail_msg("5000 lookups took %.1f s", s);
    loop_once();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deferred_one_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_plain_write_commits_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deferred_failure_is_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_once_per_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_from_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_count_present, setup, teardown),
        cmocka_unit_test_setup_teardown(test_order_sha_lookup_indexed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
