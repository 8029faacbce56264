/* gal_sqlite.c - the gallery's SQLite backend (the default: one file in the data directory).
 *
 * WAL (readers never block the writer, and a commit is one append), synchronous=FULL (the WAL is
 * fsynced at every commit, so a commit that returned survives a power cut, not only a crash),
 * secure_delete=ON (deleted embeddings are overwritten, not left in free pages: biometric data).
 * The schema version is PRAGMA user_version; migrations run forward in one BEGIN IMMEDIATE transaction,
 * which also serializes two processes opening a new file at once. */
#include "gal_db.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 10000

/* migrations[v] takes a version-v database to version v + 1. */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. */
    "CREATE TABLE gal_state (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, fingerprint TEXT);"
    "INSERT INTO gal_state (id, seq, fingerprint) VALUES (1, 0, NULL);"
    "CREATE TABLE subjects (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE faces (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " subject_id INTEGER NOT NULL REFERENCES subjects (id), fingerprint TEXT NOT NULL,"
    " embedding BLOB NOT NULL CHECK (length(embedding) = 512), det_score REAL NOT NULL,"
    " x_min REAL NOT NULL, y_min REAL NOT NULL, x_max REAL NOT NULL, y_max REAL NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX faces_subject ON faces (subject_id);",
    /* 1 -> 2: write tokens, so a COMMIT cut off by a lost connection can be resolved (gal_store.c). */
    "CREATE TABLE gal_writes (token text PRIMARY KEY, at_ms INTEGER NOT NULL);",
    /* 2 -> 3: the sequence of the last write that removed or renamed (an index may not just append). */
    "ALTER TABLE gal_state ADD COLUMN reshape INTEGER NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

static int fail(sqlite3 *db, int rc, const char *sql, struct gal_err *err)
{
    enum gal_err_kind kind = GAL_ERR_DB;
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
        kind = GAL_ERR_CONFLICT;
    else if ((rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED)
        kind = GAL_ERR_UNAVAILABLE;
    else if ((rc & 0xFF) == SQLITE_NOMEM)
        kind = GAL_ERR_NOMEM;
    return gal_err_set(err, kind, sql, "sqlite: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

static int run(void *db, const char *sql, struct gal_err *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        gal_err_set(err, GAL_ERR_DB, sql, "sqlite: %s", msg ? msg : sqlite3_errstr(rc));
        if ((rc & 0xFF) == SQLITE_BUSY && err)
            err->kind = GAL_ERR_UNAVAILABLE;
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int sq_exec(void *h, const char *sql, const struct gal_val *params, int np, gal_row_fn row, void *user,
                   int64_t *changes, struct gal_err *err)
{
    sqlite3 *db = h;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, sql, err);
    if (sqlite3_bind_parameter_count(st) != np) {
        sqlite3_finalize(st);
        return gal_err_set(err, GAL_ERR_DB, sql, "statement takes %d parameters, %d given",
                           sqlite3_bind_parameter_count(st), np);
    }
    for (int i = 0; i < np && rc == SQLITE_OK; i++) {
        /* "$N" must be the N-th parameter: the shared SQL relies on first-appearance numbering. */
        char want[16];
        snprintf(want, sizeof want, "$%d", i + 1);
        const char *name = sqlite3_bind_parameter_name(st, i + 1);
        if (!name || strcmp(name, want) != 0) {
            sqlite3_finalize(st);
            return gal_err_set(err, GAL_ERR_DB, sql, "parameter %d is %s, not %s", i + 1, name ? name : "?", want);
        }
        const struct gal_val *v = &params[i];
        switch (v->t) {
        case GAL_V_NULL: rc = sqlite3_bind_null(st, i + 1); break;
        case GAL_V_INT: rc = sqlite3_bind_int64(st, i + 1, v->i); break;
        case GAL_V_REAL: rc = sqlite3_bind_double(st, i + 1, v->r); break;
        case GAL_V_TEXT: rc = sqlite3_bind_text(st, i + 1, v->s, -1, SQLITE_STATIC); break;
        case GAL_V_BLOB: rc = sqlite3_bind_blob(st, i + 1, v->b, (int)v->n, SQLITE_STATIC); break;
        }
    }
    if (rc != SQLITE_OK) {
        fail(db, rc, sql, err);
        sqlite3_finalize(st);
        return -1;
    }
    struct gal_val cols[16];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int n = sqlite3_column_count(st);
        if (n > 16)
            n = 16;
        for (int c = 0; c < n; c++) {
            struct gal_val *v = &cols[c];
            memset(v, 0, sizeof *v);
            switch (sqlite3_column_type(st, c)) {
            case SQLITE_INTEGER: v->t = GAL_V_INT, v->i = sqlite3_column_int64(st, c); break;
            case SQLITE_FLOAT: v->t = GAL_V_REAL, v->r = sqlite3_column_double(st, c); break;
            case SQLITE_TEXT: v->t = GAL_V_TEXT, v->s = (const char *)sqlite3_column_text(st, c); break;
            case SQLITE_BLOB:
                v->t = GAL_V_BLOB, v->b = sqlite3_column_blob(st, c);
                v->n = (size_t)sqlite3_column_bytes(st, c);
                break;
            default: v->t = GAL_V_NULL; break;
            }
        }
        if (row && row(user, cols, n, err)) {
            sqlite3_finalize(st);
            return -1;
        }
    }
    if (rc != SQLITE_DONE) {
        fail(db, rc, sql, err);
        sqlite3_finalize(st);
        return -1;
    }
    if (changes)
        *changes = sqlite3_changes64(db);
    sqlite3_finalize(st);
    return 0;
}

static int sq_begin(void *h, int write, struct gal_err *err)
{
    return run(h, write ? "BEGIN IMMEDIATE" : "BEGIN", err);
}

static int sq_commit(void *h, struct gal_err *err)
{
    if (run(h, "COMMIT", err)) {
        sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL);
        return -1;
    }
    return 0;
}

static void sq_rollback(void *h) { sqlite3_exec(h, "ROLLBACK", NULL, NULL, NULL); }

static int sq_bump(void *h, int64_t *seq, struct gal_err *err)
{
    return sq_exec(h, "UPDATE gal_state SET seq = seq + 1 WHERE id = 1 RETURNING seq", NULL, 0, gal_row_int, seq,
                   NULL, err);
}

/* SQLite has no notifications: poll the sequence (a read of one page, usually from the page cache). */
static int sq_wait(void *h, int64_t known, int timeout_ms, int64_t *seq, struct gal_err *err)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (sq_exec(h, GAL_SQL_SEQ, NULL, 0, gal_row_int, seq, NULL, err))
            return -1;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long el = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        if (*seq != known || el >= timeout_ms)
            return 0;
        long step = timeout_ms - el < 50 ? timeout_ms - el : 50;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int sq_migrate(void *h, struct gal_err *err)
{
    sqlite3 *db = h;
    if (run(db, "BEGIN IMMEDIATE", err))
        return -1;
    int64_t v = -1;
    if (sq_exec(db, "PRAGMA user_version", NULL, 0, gal_row_int, &v, NULL, err) ||
        gal_migrate_steps(db, v, migrations, SCHEMA_VERSION, "PRAGMA user_version", run, err))
        goto fail;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version = %d", SCHEMA_VERSION);
    if (run(db, sql, err) || run(db, "COMMIT", err))
        goto fail;
    return 0;
fail:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
}

static void sq_close(void *h) { sqlite3_close(h); }

/* Runs a PRAGMA that answers with its new value and checks the answer (journal_mode can refuse WAL,
 * e.g. on a file system without shared memory). */
static int pragma(sqlite3 *db, const char *sql, const char *want, struct gal_err *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(db, SQLITE_ERROR, sql, err);
    int rc = sqlite3_step(st);
    if (want && (rc != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(st, 0), want) != 0)) {
        gal_err_set(err, GAL_ERR_DB, sql, "sqlite: the database answered %s, not %s",
                    rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : "nothing", want);
        sqlite3_finalize(st);
        return -1;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        fail(db, rc, sql, err);
        sqlite3_finalize(st);
        return -1;
    }
    sqlite3_finalize(st);
    return 0;
}

void *gal_sqlite_open(const char *path, struct gal_err *err)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
    if (rc != SQLITE_OK) {
        gal_err_set(err, GAL_ERR_UNAVAILABLE, NULL, "sqlite: cannot open %s: %s", path,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
    sqlite3_extended_result_codes(db, 1);
    /* Several processes opening a new file at once: switching it to WAL needs a lock the busy handler
     * does not always wait for, so the switch is retried for a while before it counts as refused. */
    int wal = -1;
    for (int i = 0; i < 100 && wal != 0; i++) {
        wal = pragma(db, "PRAGMA journal_mode = WAL", "wal", err);
        if (wal != 0) {
            struct timespec ts = {0, 20 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (wal != 0 || pragma(db, "PRAGMA synchronous = FULL", NULL, err) ||
        pragma(db, "PRAGMA secure_delete = ON", "1", err) || pragma(db, "PRAGMA foreign_keys = ON", NULL, err)) {
        if (err) {
            char why[sizeof err->msg];
            memcpy(why, err->msg, sizeof why);
            snprintf(err->msg, sizeof err->msg, "%.100s: %.200s", path, why);
        }
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

const struct gal_db_ops gal_sqlite_ops = {
    .name = "sqlite",
    .exec = sq_exec,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .bump = sq_bump,
    .wait = sq_wait,
    .migrate = sq_migrate,
    .close = sq_close,
};
