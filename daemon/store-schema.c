/* store-schema.c - the store's schema and its migrations (see
 * store-private.h).
 *
 * Design notes: PRAGMA user_version is the number of migration steps
 * applied.  migrations[v] takes a database from version v to v + 1, in its
 * own BEGIN IMMEDIATE transaction together with the user_version bump, so
 * a crash never leaves half a step.  A later version appends a step; a
 * database newer than the steps this code knows is refused.  The column
 * mapping and the append-only events table are described in store.c.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sqlite3.h>

#include "log.h"
#include "store-private.h"
#include "util.h"

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
static int migrate_v2(sqlite3 *db);
static int migrate_v3(sqlite3 *db);
static int migrate_v4(sqlite3 *db);

static const migration_fn migrations[] = {
    [0] = migrate_v1,           /* 0 -> 1: the first schema, the instance id */
    [1] = migrate_v2,           /* 1 -> 2: an index of the documents kept */
    [2] = migrate_v3,           /* 2 -> 3: the hand-overs to CUPS in progress */
    [3] = migrate_v4,           /* 3 -> 4: a hand-over's cover sheet and substitutions */
};

#define STORE_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static int migrate_v1(sqlite3 *db)
{
    char inst[9], created[24];
    sqlite3_stmt *s = NULL;
    int rc = -1;

    if (store_exec(db, schema_v1, "creating the schema") < 0)
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
        store_db_err(db, "writing the instance id");
    sqlite3_finalize(s);
    return rc;
}

/* The documents still kept, for counting them (GET /metrics) without
 * reading every row: a partial index holds only present documents, whose
 * number retention bounds, while job rows accumulate for months. */
static int migrate_v2(sqlite3 *db)
{
    return store_exec(db, "CREATE INDEX jobs_present ON jobs (id) WHERE document_present = 1",
                      "creating the documents index");
}

/* The hand-overs to CUPS in progress (store_handover_set): a row from
 * the moment CUPS has created a job until the hand-over is settled, so
 * that a restart knows which CUPS job may hold the document. */
static int migrate_v3(sqlite3 *db)
{
    return store_exec(db, "CREATE TABLE handovers ("
                          "  job_id INTEGER PRIMARY KEY REFERENCES jobs (id),"
                          "  cups_id INTEGER NOT NULL,"
                          "  printer TEXT NOT NULL,"
                          "  at INTEGER NOT NULL)",
                      "creating the hand-overs table");
}

/* What a settle of the hand-over needs besides the CUPS job: its cover
 * sheet's CUPS job (0: none) and the attributes CUPS said at Create-Job it
 * would ignore or change (comma-separated).  Rows from before get 0 and
 * "" (a start-up settle then leaves a cover sheet to the listing). */
static int migrate_v4(sqlite3 *db)
{
    return store_exec(db, "ALTER TABLE handovers ADD COLUMN cover_id INTEGER NOT NULL DEFAULT 0;"
                          "ALTER TABLE handovers ADD COLUMN substituted TEXT NOT NULL DEFAULT ''",
                      "adding the hand-overs' cover sheet and substitutions");
}

/* Bring the schema to STORE_VERSION, one step per transaction.  0 / -1. */
int store_migrate(sqlite3 *db, char **err)
{
    for (;;) {
        int64_t v;
        char sql[48];

        if (store_exec(db, "BEGIN IMMEDIATE", "beginning a migration") < 0) {
            store_set_err(err, "cannot lock the database: %s", sqlite3_errmsg(db));
            return -1;
        }
        /* read the version under the write lock: a second opener waits */
        if (store_query_int(db, "PRAGMA user_version", &v) < 0) {
            store_set_err(err, "cannot read the schema version: %s", sqlite3_errmsg(db));
            goto fail;
        }
        if (v > STORE_VERSION || v < 0) {
            store_set_err(err, "the database has schema version %lld; this copeesd knows up to %d",
                    (long long)v, STORE_VERSION);
            goto fail;
        }
        if (v == STORE_VERSION)
            return store_exec(db, "COMMIT", "ending the version check") == 0 ? 0 : -1;
        if (migrations[v](db) < 0) {
            store_set_err(err, "migrating the schema to version %lld failed: %s", (long long)v + 1,
                    sqlite3_errmsg(db));
            goto fail;
        }
        snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
        if (store_exec(db, sql, "setting the schema version") < 0 ||
            store_exec(db, "COMMIT", "committing a migration") < 0) {
            store_set_err(err, "migrating the schema to version %lld failed: %s", (long long)v + 1,
                    sqlite3_errmsg(db));
            goto fail;
        }
        log_info("store: schema migrated to version %lld", (long long)v + 1);
    }
fail:
    if (!sqlite3_get_autocommit(db))
        store_exec(db, "ROLLBACK", "rolling back a migration");
    return -1;
}


int store_schema_version(void)
{
    return STORE_VERSION;
}
