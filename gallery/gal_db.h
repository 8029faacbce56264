/* gal_db.h - what a gallery backend (gal_sqlite.c, gal_pg.c) provides to the store logic
 * (gal_store.c): run one SQL statement with typed parameters, transactions, the change sequence and
 * waiting for it. Private to gallery/. The SQL is shared: statements number their parameters $1, $2,
 * ... in order of first appearance (SQLite numbers named parameters that way too). */
#ifndef GAL_DB_H
#define GAL_DB_H

#include "gal.h"

enum gal_val_type { GAL_V_NULL, GAL_V_INT, GAL_V_REAL, GAL_V_TEXT, GAL_V_BLOB };

/* A parameter or a result column. Text and blobs are borrowed (results: valid during the row call). */
struct gal_val {
    enum gal_val_type t;
    int64_t i;
    double r;
    const char *s; /* text, NUL-terminated */
    const void *b; /* blob */
    size_t n;      /* blob bytes */
};

static inline struct gal_val gal_int(int64_t i) { return (struct gal_val){.t = GAL_V_INT, .i = i}; }
static inline struct gal_val gal_real(double r) { return (struct gal_val){.t = GAL_V_REAL, .r = r}; }
static inline struct gal_val gal_text(const char *s) { return (struct gal_val){.t = GAL_V_TEXT, .s = s}; }
static inline struct gal_val gal_blob(const void *b, size_t n)
{
    return (struct gal_val){.t = GAL_V_BLOB, .b = b, .n = n};
}

/* Called per result row; non-zero stops the statement and fails it (set err). */
typedef int (*gal_row_fn)(void *user, const struct gal_val *cols, int ncols, struct gal_err *err);

struct gal_db_ops {
    const char *name;
    /* Runs sql with np parameters; row (may be NULL) sees each result row; *changes (may be NULL) gets
     * the rows a write touched. Errors: GAL_ERR_CONFLICT for a unique violation, GAL_ERR_UNAVAILABLE
     * when the database cannot be reached, else GAL_ERR_DB, with the statement. */
    int (*exec)(void *db, const char *sql, const struct gal_val *params, int np, gal_row_fn row,
                void *user, int64_t *changes, struct gal_err *err);
    int (*begin)(void *db, int write, struct gal_err *err); /* write: take the write lock now */
    int (*commit)(void *db, struct gal_err *err);           /* 0 only once durable */
    void (*rollback)(void *db);
    /* Inside a write transaction: bump the change sequence (and notify); *seq gets the new value. */
    int (*bump)(void *db, int64_t *seq, struct gal_err *err);
    int (*wait)(void *db, int64_t known, int timeout_ms, int64_t *seq, struct gal_err *err);
    /* Creates or migrates the schema to the latest version (one transaction, serialized between
     * processes). */
    int (*migrate)(void *db, struct gal_err *err);
    void (*close)(void *db);
};

extern const struct gal_db_ops gal_sqlite_ops;
extern const struct gal_db_ops gal_pg_ops;
/* Open a backend connection; new, closed with ops->close. */
void *gal_sqlite_open(const char *path, struct gal_err *err);
void *gal_pg_open(const char *uri, struct gal_err *err);

/* Row readers for gal_db_ops.exec (gal_store.c): the row's integer columns into an int64_t array (-1 for
 * NULL); the first column as text into a GAL_NAME_MAX + 1 buffer ("" if not text). */
int gal_row_int(void *user, const struct gal_val *c, int n, struct gal_err *err);
int gal_row_text(void *user, const struct gal_val *c, int n, struct gal_err *err);

/* What every backend's migrate does inside its migration transaction, once it has read the schema's
 * version v: refuses a newer schema (a newer visiond's: never downgraded) with version_stmt as the
 * place, else runs migrations[v..n-1] through script (the backend's runner of several statements). */
int gal_migrate_steps(void *db, int64_t v, const char *const *migrations, int n, const char *version_stmt,
                      int (*script)(void *db, const char *sql, struct gal_err *err), struct gal_err *err);

/* Shared statements over the sequence row. */
#define GAL_SQL_SEQ "SELECT seq FROM gal_state WHERE id = 1"

#endif
