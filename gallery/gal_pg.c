/* gal_pg.c - the gallery's PostgreSQL backend (libpq), for several replicas on one database.
 *
 * Writes run READ COMMITTED behind the row lock of gal_state (the sequence bump comes first) and
 * commit with synchronous_commit=on: COMMIT returns once the WAL is flushed. Every write transaction
 * also sends pg_notify('visiond_gallery', seq), delivered at commit to every replica's follower
 * (gal_follow.c), which LISTENs on its own connection. Reads of the whole gallery run REPEATABLE READ
 * (one snapshot) in libpq's single-row mode, so a million faces never sit in one PGresult.
 * A lost connection is re-tried at the next statement outside a transaction; until then statements
 * fail with GAL_ERR_UNAVAILABLE. Error texts never include the connection URI (it may hold a password). */
#include "gal_db.h"

#include <endian.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHANNEL "visiond_gallery"
#define MIGRATE_LOCK 0x76697364 /* pg_advisory_xact_lock key: "visd" */

/* Type OIDs from the server's catalog (stable since PostgreSQL 7). */
enum { OID_BOOL = 16, OID_BYTEA = 17, OID_NAME = 19, OID_INT8 = 20, OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25,
       OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_VARCHAR = 1043 };

struct pg {
    PGconn *conn;
    int in_tx;
    int listening;
    int broken; /* a statement failed for want of the server: reconnect before the next one */
};

static const char *const migrations[] = {
    /* 0 -> 1: the first schema. Names compare and sort byte-wise (COLLATE "C"), as on SQLite. */
    "CREATE TABLE gal_state (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL, fingerprint text);"
    "INSERT INTO gal_state (id, seq, fingerprint) VALUES (1, 0, NULL);"
    "CREATE TABLE subjects (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " name text COLLATE \"C\" NOT NULL UNIQUE, created_ms bigint NOT NULL);"
    "CREATE TABLE faces (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " subject_id bigint NOT NULL REFERENCES subjects (id), fingerprint text NOT NULL,"
    " embedding bytea NOT NULL CHECK (length(embedding) = 512), det_score double precision NOT NULL,"
    " x_min double precision NOT NULL, y_min double precision NOT NULL, x_max double precision NOT NULL,"
    " y_max double precision NOT NULL, created_ms bigint NOT NULL);"
    "CREATE INDEX faces_subject ON faces (subject_id);",
    /* 1 -> 2: write tokens, so a COMMIT cut off by a lost connection can be resolved (gal_store.c). */
    "CREATE TABLE gal_writes (token text PRIMARY KEY, at_ms bigint NOT NULL);",
    /* 2 -> 3: the sequence of the last write that removed or renamed (an index may not just append). */
    "ALTER TABLE gal_state ADD COLUMN reshape bigint NOT NULL DEFAULT 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof migrations[0]))

/* The first line of libpq's message, without the trailing newline. */
static const char *first_line(const char *m, char *buf, size_t size)
{
    snprintf(buf, size, "%s", m ? m : "");
    buf[strcspn(buf, "\n")] = '\0';
    return buf;
}

/* Reconnects a broken connection (outside a transaction only: a transaction died with it). */
static int ensure(struct pg *p, const char *sql, struct gal_err *err)
{
    if (PQstatus(p->conn) == CONNECTION_OK && !p->broken)
        return 0;
    if (!p->in_tx) {
        PQreset(p->conn);
        p->listening = 0;
        if (PQstatus(p->conn) == CONNECTION_OK) {
            p->broken = 0;
            PQclear(PQexec(p->conn, "SET synchronous_commit = on"));
            return 0;
        }
    }
    char line[256];
    return gal_err_set(err, GAL_ERR_UNAVAILABLE, sql, "postgres: not connected: %s",
                       first_line(PQerrorMessage(p->conn), line, sizeof line));
}

static int res_fail(struct pg *p, PGresult *r, const char *sql, struct gal_err *err)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    enum gal_err_kind kind = GAL_ERR_DB;
    /* No SQLSTATE: libpq's own error (the socket closed, ...); class 08 and 57P: the server went. */
    if (PQstatus(p->conn) != CONNECTION_OK || !state || strncmp(state, "08", 2) == 0 ||
        strncmp(state, "57P", 3) == 0) {
        kind = GAL_ERR_UNAVAILABLE;
        p->broken = 1;
    }
    else if (state && strcmp(state, "23505") == 0)
        kind = GAL_ERR_CONFLICT;
    char line[256];
    return gal_err_set(err, kind, sql, "postgres: %s",
                       first_line(r ? PQresultErrorMessage(r) : PQerrorMessage(p->conn), line, sizeof line));
}

static void decode(const PGresult *r, int row, int c, struct gal_val *v)
{
    memset(v, 0, sizeof *v);
    if (PQgetisnull(r, row, c))
        return;
    const char *d = PQgetvalue(r, row, c);
    int len = PQgetlength(r, row, c);
    uint64_t u = 0;
    switch (PQftype(r, c)) {
    case OID_INT8: memcpy(&u, d, 8); v->t = GAL_V_INT, v->i = (int64_t)be64toh(u); break;
    case OID_INT4: {
        uint32_t w; memcpy(&w, d, 4); v->t = GAL_V_INT, v->i = (int32_t)be32toh(w); break;
    }
    case OID_INT2: {
        uint16_t w; memcpy(&w, d, 2); v->t = GAL_V_INT, v->i = (int16_t)be16toh(w); break;
    }
    case OID_BOOL: v->t = GAL_V_INT, v->i = d[0] != 0; break;
    case OID_FLOAT8: {
        double x; memcpy(&u, d, 8); u = be64toh(u); memcpy(&x, &u, 8); v->t = GAL_V_REAL, v->r = x; break;
    }
    case OID_FLOAT4: {
        uint32_t w; float x; memcpy(&w, d, 4); w = be32toh(w); memcpy(&x, &w, 4); v->t = GAL_V_REAL, v->r = x; break;
    }
    case OID_BYTEA: v->t = GAL_V_BLOB, v->b = d, v->n = (size_t)len; break;
    default: v->t = GAL_V_TEXT, v->s = d; break; /* text, varchar, name: libpq NUL-terminates */
    }
}

static int pg_exec(void *h, const char *sql, const struct gal_val *params, int np, gal_row_fn row, void *user,
                   int64_t *changes, struct gal_err *err)
{
    struct pg *p = h;
    if (np > 16)
        return gal_err_set(err, GAL_ERR_DB, sql, "too many parameters");
    if (ensure(p, sql, err))
        return -1;
    const char *vals[16];
    int lens[16], fmts[16];
    char txt[16][40];
    for (int i = 0; i < np; i++) {
        const struct gal_val *v = &params[i];
        lens[i] = 0, fmts[i] = 0, vals[i] = txt[i];
        switch (v->t) {
        case GAL_V_NULL: vals[i] = NULL; break;
        case GAL_V_INT: snprintf(txt[i], sizeof txt[i], "%lld", (long long)v->i); break;
        case GAL_V_REAL: snprintf(txt[i], sizeof txt[i], "%.17g", v->r); break;
        case GAL_V_TEXT: vals[i] = v->s; break;
        case GAL_V_BLOB: vals[i] = v->b, lens[i] = (int)v->n, fmts[i] = 1; break;
        }
    }
    if (!PQsendQueryParams(p->conn, sql, np, NULL, vals, lens, fmts, 1))
        return res_fail(p, NULL, sql, err);
    PQsetSingleRowMode(p->conn);
    int rc = 0;
    PGresult *r;
    struct gal_val cols[16];
    while ((r = PQgetResult(p->conn)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (rc == 0) {
            if (st == PGRES_SINGLE_TUPLE) {
                int n = PQnfields(r) < 16 ? PQnfields(r) : 16;
                for (int c = 0; c < n; c++)
                    decode(r, 0, c, &cols[c]);
                if (row && row(user, cols, n, err))
                    rc = -1;
            } else if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
                if (changes)
                    *changes = atoll(PQcmdTuples(r));
            } else {
                rc = res_fail(p, r, sql, err);
            }
        }
        PQclear(r);
    }
    if (rc == 0 && PQstatus(p->conn) != CONNECTION_OK)
        rc = res_fail(p, NULL, sql, err);
    return rc;
}

static int simple(void *h, const char *sql, struct gal_err *err)
{
    struct pg *p = h;
    if (ensure(p, sql, err))
        return -1;
    PGresult *r = PQexec(p->conn, sql);
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    int rc = ok ? 0 : res_fail(p, r, sql, err);
    PQclear(r);
    return rc;
}

static int pg_begin(void *h, int write, struct gal_err *err)
{
    struct pg *p = h;
    if (simple(p, write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", err))
        return -1;
    p->in_tx = 1;
    return 0;
}

static int pg_commit(void *h, struct gal_err *err)
{
    struct pg *p = h;
    int rc = simple(p, "COMMIT", err);
    p->in_tx = 0;
    return rc;
}

static void pg_rollback(void *h)
{
    struct pg *p = h;
    if (PQstatus(p->conn) == CONNECTION_OK && !p->broken)
        PQclear(PQexec(p->conn, "ROLLBACK"));
    p->in_tx = 0;
}

static int pg_bump(void *h, int64_t *seq, struct gal_err *err)
{
    if (pg_exec(h, "UPDATE gal_state SET seq = seq + 1 WHERE id = 1 RETURNING seq", NULL, 0, gal_row_int, seq, NULL,
                err))
        return -1;
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)*seq);
    struct gal_val v[1] = {gal_text(s)};
    return pg_exec(h, "SELECT pg_notify('" CHANNEL "', $1)", v, 1, NULL, NULL, NULL, err);
}

static int pg_wait(void *h, int64_t known, int timeout_ms, int64_t *seq, struct gal_err *err)
{
    struct pg *p = h;
    if (ensure(p, "LISTEN " CHANNEL, err))
        return -1;
    if (!p->listening) {
        if (simple(p, "LISTEN " CHANNEL, err))
            return -1;
        p->listening = 1;
    }
    if (pg_exec(p, GAL_SQL_SEQ, NULL, 0, gal_row_int, seq, NULL, err))
        return -1;
    if (*seq != known || timeout_ms <= 0)
        return 0;
    struct pollfd pfd = {.fd = PQsocket(p->conn), .events = POLLIN};
    if (pfd.fd >= 0 && poll(&pfd, 1, timeout_ms) > 0) {
        if (!PQconsumeInput(p->conn))
            return res_fail(p, NULL, "LISTEN " CHANNEL, err);
        PGnotify *n;
        while ((n = PQnotifies(p->conn)) != NULL)
            PQfreemem(n);
    }
    return pg_exec(p, GAL_SQL_SEQ, NULL, 0, gal_row_int, seq, NULL, err);
}

static int pg_migrate(void *h, struct gal_err *err)
{
    struct pg *p = h;
    char lock[80];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d)", MIGRATE_LOCK);
    if (pg_begin(p, 1, err))
        return -1;
    int64_t v = -1;
    if (pg_exec(p, lock, NULL, 0, NULL, NULL, NULL, err) ||
        simple(p, "CREATE TABLE IF NOT EXISTS gal_schema (version integer NOT NULL)", err) ||
        pg_exec(p, "SELECT version FROM gal_schema", NULL, 0, gal_row_int, &v, NULL, err))
        goto fail;
    if (v < 0) {
        if (simple(p, "INSERT INTO gal_schema (version) VALUES (0)", err))
            goto fail;
        v = 0;
    }
    if (gal_migrate_steps(p, v, migrations, SCHEMA_VERSION, "SELECT version FROM gal_schema", simple, err))
        goto fail;
    struct gal_val ver[1] = {gal_int(SCHEMA_VERSION)};
    if (pg_exec(p, "UPDATE gal_schema SET version = $1", ver, 1, NULL, NULL, NULL, err))
        goto fail;
    return pg_commit(p, err);
fail:
    pg_rollback(p);
    return -1;
}

static void pg_close(void *h)
{
    struct pg *p = h;
    if (!p)
        return;
    PQfinish(p->conn);
    free(p);
}

void *gal_pg_open(const char *uri, struct gal_err *err)
{
    struct pg *p = calloc(1, sizeof *p);
    if (!p) {
        gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    /* A database host that does not answer must not hold a request (or the follower) for the kernel's
     * TCP timeout: unless the URI says otherwise, connecting gives up after a few seconds, and the
     * write answers 503. */
    char with_timeout[4096];
    if (!strstr(uri, "connect_timeout=") && strlen(uri) + 24 < sizeof with_timeout) {
        snprintf(with_timeout, sizeof with_timeout, "%s%sconnect_timeout=3", uri, strchr(uri, '?') ? "&" : "?");
        uri = with_timeout;
    }
    p->conn = PQconnectdb(uri);
    if (!p->conn || PQstatus(p->conn) != CONNECTION_OK) {
        char line[256], red[512];
        gal_err_set(err, GAL_ERR_UNAVAILABLE, NULL, "postgres: cannot connect to %s: %s",
                    gal_spec_redact(uri, red, sizeof red),
                    first_line(p->conn ? PQerrorMessage(p->conn) : "out of memory", line, sizeof line));
        pg_close(p);
        return NULL;
    }
    PQclear(PQexec(p->conn, "SET synchronous_commit = on"));
    PQclear(PQexec(p->conn, "SET client_min_messages = warning"));
    return p;
}

const struct gal_db_ops gal_pg_ops = {
    .name = "postgres",
    .exec = pg_exec,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .bump = pg_bump,
    .wait = pg_wait,
    .migrate = pg_migrate,
    .close = pg_close,
};
