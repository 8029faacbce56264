/* test_gallery.c - the gallery layer (gallery/gal.h) on its default backend, SQLite: the shared store
 * suite (tests/gallery_suite.h), name/fingerprint/spec rules, SQLite's settings (WAL, secure_delete,
 * schema version) checked from outside through sqlite3 itself, and a large index across BLAS blocks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <sys/stat.h>

#include "gallery_suite.h"

static char g_dir[64];

static const char *fresh_spec(void)
{
    static char spec[128];
    static int n;
    snprintf(spec, sizeof spec, "sqlite:%s/g%d.db", g_dir, n++);
    return spec;
}

static void test_gallery_names_checked(void **state)
{
    (void)state;
    struct gal_err err;
    char big[GAL_NAME_MAX + 2];
    memset(big, 'x', sizeof big);
    big[GAL_NAME_MAX] = '\0';
    assert_int_equal(gal_name_check(big, &err), 0);
    big[GAL_NAME_MAX] = 'x', big[GAL_NAME_MAX + 1] = '\0';
    assert_int_equal(gal_name_check(big, &err), -1);
    assert_int_equal(gal_name_check("", &err), -1);
    assert_int_equal(gal_name_check("a/b", &err), -1);
    assert_int_equal(gal_name_check("a\nb", &err), -1);
    assert_int_equal(gal_name_check("a\x7f", &err), -1);
    assert_int_equal(gal_name_check("a\xc2\x85", &err), -1); /* U+0085, a C1 control */
    assert_int_equal(gal_name_check("\xc3\x28", &err), -1);  /* broken UTF-8 */
    assert_int_equal(gal_name_check("\xed\xa0\x80", &err), -1); /* a surrogate */
    assert_int_equal(gal_name_check("\xc0\xaf", &err), -1);  /* overlong '/' */
    assert_int_equal(err.kind, GAL_ERR_INVALID);
    assert_int_equal(gal_name_check("Zoë Ångström 王", &err), 0);
    assert_int_equal(gal_fingerprint_check(FP_A, &err), 0);
    assert_int_equal(gal_fingerprint_check("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &err), -1);
    assert_int_equal(gal_fingerprint_check("abc", &err), -1);
}

static void test_gallery_spec_redact_hides_password(void **state)
{
    (void)state;
    char buf[256];
    assert_string_equal(gal_spec_redact("postgres://vis:s3cret@db:5432/g?sslmode=require", buf, sizeof buf),
                        "postgres://vis:***@db:5432/g?sslmode=require");
    assert_string_equal(gal_spec_redact("postgresql://db/g?user=u&password=s3cret&x=1", buf, sizeof buf),
                        "postgresql://db/g?user=u&password=***&x=1");
    assert_string_equal(gal_spec_redact("postgres://vis@db/g", buf, sizeof buf), "postgres://vis@db/g");
    assert_string_equal(gal_spec_redact("sqlite:/var/lib/visiond/gallery.db", buf, sizeof buf),
                        "sqlite:/var/lib/visiond/gallery.db");
}

static sqlite3 *raw_open(const char *spec)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(spec + 7, &db), SQLITE_OK);
    return db;
}

static int64_t raw_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void test_gallery_sqlite_wal_schema_version(void **state)
{
    (void)state;
    const char *spec = fresh_spec();
    gal_store_free(open_ok(spec, FP_A));
    sqlite3 *db = raw_open(spec);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), 3);
    /* a gallery from a newer visiond is refused, not downgraded */
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 7", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    struct gal_err err;
    assert_null(gal_store_open(spec, FP_A, &err));
    assert_non_null(strstr(err.msg, "newer"));
    assert_string_equal(err.stmt, "PRAGMA user_version");
}

/* secure_delete: a deleted embedding's bytes are gone from the file, not left in a free page. */
static void test_gallery_sqlite_deleted_embedding_erased(void **state)
{
    (void)state;
    const char *spec = fresh_spec();
    struct gal_store *s = open_ok(spec, FP_A);
    struct gal_err err;
    struct gal_face f[40];
    for (int i = 0; i < 40; i++)
        f[i] = face_of((uint32_t)(500 + i), FP_A);
    int64_t ids[40];
    assert_int_equal(gal_faces_add(s, "Ann", 1, f, 40, ids, &err), 0);
    assert_int_equal(gal_subject_delete(s, "Ann", NULL, &err), 0);
    gal_store_free(s); /* the last connection checkpoints the WAL into the file and removes it */
    FILE *fp = fopen(spec + 7, "rb");
    assert_non_null(fp);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, fp);
    fclose(fp);
    assert_true(n > 0 && n < sizeof buf);
    for (int i = 0; i < 40; i++)
        assert_null(memmem(buf, n, f[i].emb, 64));
}

static void test_gallery_error_carries_statement(void **state)
{
    (void)state;
    const char *spec = fresh_spec();
    struct gal_store *s = open_ok(spec, FP_A);
    struct gal_err err;
    sqlite3 *db = raw_open(spec);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE faces", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    int64_t a, b;
    assert_int_equal(gal_store_counts(s, &a, &b, &err), -1);
    assert_int_equal(err.kind, GAL_ERR_DB);
    assert_non_null(strstr(err.stmt, "count(*) FROM faces"));
    char line[600];
    assert_non_null(strstr(gal_err_format(&err, line, sizeof line), "no such table: faces"));
    gal_store_free(s);
}

/* Over one BLAS block of rows (16384): the per-subject minimum crosses block boundaries. */
static void test_gallery_index_across_blocks(void **state)
{
    (void)state;
    struct gal_store *s = open_ok(fresh_spec(), FP_A);
    struct gal_err err;
    enum { PER = 700, NSUB = 30 };
    static struct gal_face f[PER];
    for (int i = 0; i < NSUB; i++) {
        char name[16];
        snprintf(name, sizeof name, "p%02d", i);
        for (int j = 0; j < PER; j++)
            f[j] = face_of((uint32_t)(i * PER + j + 1), FP_A);
        assert_int_equal(gal_faces_add(s, name, 1, f, PER, NULL, &err), 0);
    }
    struct gal_index *ix = gal_index_new();
    assert_int_equal(gal_index_load(ix, s, &err), 0);
    struct gal_snap *snap = gal_index_acquire(ix);
    assert_int_equal(gal_snap_faces(snap), PER * NSUB);
    assert_true(gal_snap_bytes(snap) >= (size_t)PER * NSUB * GAL_DIM * 4);
    /* subject p23's face 600 lies across the 16384-row boundary (23 * 700 = 16100 .. 16799) */
    struct gal_face t = face_of((uint32_t)(23 * PER + 600 + 1), FP_A);
    float q[2][GAL_DIM];
    memcpy(q[0], t.emb, sizeof q[0]);
    memcpy(q[1], t.emb, sizeof q[1]);
    q[1][0] += 0.01f;
    struct gal_candidate c[2 * 2];
    size_t n[2];
    assert_int_equal(gal_snap_search(snap, &q[0][0], 2, 2, c, n, &err), 0);
    assert_string_equal(c[0].subject, "p23");
    assert_true(c[0].distance < 1e-6f);
    assert_string_equal(c[2].subject, "p23");
    assert_true(fabsf(c[2].distance - 0.01f) < 1e-5f);
    assert_true(c[1].distance > 0.5f);
    gal_snap_release(snap);
    gal_index_free(ix);
    gal_store_free(s);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/visiond-test-gallery-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gallery_names_checked),
        cmocka_unit_test(test_gallery_spec_redact_hides_password),
        cmocka_unit_test(test_gallery_sqlite_wal_schema_version),
        cmocka_unit_test(test_gallery_sqlite_deleted_embedding_erased),
        cmocka_unit_test(test_gallery_error_carries_statement),
        cmocka_unit_test(test_gallery_index_across_blocks),
        GALLERY_SUITE_TESTS,
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}
