/* test_gallery_pg.c - the gallery on a real PostgreSQL 15: a throwaway cluster (initdb + pg_ctl as the
 * unprivileged postgres user when run as root) in a temp dir, listening on a Unix socket only, removed
 * afterwards. Runs the shared store suite (tests/gallery_suite.h, one fresh database per test), then
 * what only PostgreSQL does: notifications wake a follower, a follower and writers survive the server
 * restarting, and no acknowledged write is lost when the server crashes (pg_ctl -m immediate) while
 * 4 writer processes enrol. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libpq-fe.h>
#include <signal.h>
#include <sys/wait.h>

#include "gallery_suite.h"

#define PG_BIN "/usr/lib/postgresql/15/bin"
#define PG_PORT 55433

static char g_dir[64];
static char g_as[32]; /* "runuser -u postgres -- " when root, else "" */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return system(cmd);
}

static int pg_start(void)
{
    return sh("%s%s/pg_ctl -D %s/data -o \"-p %d -k %s -c listen_addresses=''\" -l %s/log -w start >/dev/null",
              g_as, PG_BIN, g_dir, PG_PORT, g_dir, g_dir);
}

static int pg_stop(const char *mode)
{
    return sh("%s%s/pg_ctl -D %s/data -m %s -w stop >/dev/null", g_as, PG_BIN, g_dir, mode);
}

static const char *fresh_spec(void)
{
    static char spec[256];
    static int n;
    char admin[160], sql[64];
    snprintf(admin, sizeof admin, "postgresql:///postgres?host=%s&port=%d&user=visiond", g_dir, PG_PORT);
    PGconn *c = PQconnectdb(admin);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    snprintf(sql, sizeof sql, "CREATE DATABASE g%d", ++n);
    PGresult *r = PQexec(c, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    PQfinish(c);
    snprintf(spec, sizeof spec, "postgresql:///g%d?host=%s&port=%d&user=visiond", n, g_dir, PG_PORT);
    return spec;
}

/* Without polling (a 60 s wait), only a notification can wake the follower in time. */
static void test_gallery_pg_notify_wakes_follower(void **state)
{
    (void)state;
    const char *spec = fresh_spec();
    struct gal_store *w = open_ok(spec, FP_A);
    struct gal_err err;
    struct gal_index *ix = gal_index_new();
    struct gal_follow *fo = gal_follow_start(ix, spec, FP_A, 60000, &err);
    assert_non_null(fo);
    struct timespec ts = {0, 300 * 1000000L}; /* let the follower LISTEN and block */
    nanosleep(&ts, NULL);
    struct gal_face f = face_of(5, FP_A);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(gal_faces_add(w, "Ann", 1, &f, 1, NULL, &err), 0);
    assert_int_equal(gal_follow_wait_seq(fo, gal_store_last_write_seq(w), 5000), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("notified and reloaded in %.1f ms\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    gal_follow_stop(fo);
    gal_index_free(ix);
    gal_store_free(w);
}

/* The server goes away: writes fail as unavailable (never acknowledged), the index keeps answering;
 * once it is back, writes work again on the same handle and the follower catches up with a write it
 * was never notified of (made while it was reconnecting). */
static void test_gallery_pg_restart_unavailable_then_catch_up(void **state)
{
    (void)state;
    const char *spec = fresh_spec();
    struct gal_store *w = open_ok(spec, FP_A);
    struct gal_err err;
    struct gal_face f = face_of(1, FP_A), g = face_of(2, FP_A);
    assert_int_equal(gal_faces_add(w, "Ann", 1, &f, 1, NULL, &err), 0);
    struct gal_index *ix = gal_index_new();
    struct gal_follow *fo = gal_follow_start(ix, spec, FP_A, 60000, &err);
    assert_non_null(fo);
    assert_int_equal(pg_stop("immediate"), 0);
    assert_int_equal(gal_faces_add(w, "Bob", 1, &g, 1, NULL, &err), -1);
    printf("while down: %s (in: %s)\n", err.msg, err.stmt);
    assert_int_equal(err.kind, GAL_ERR_UNAVAILABLE);
    assert_null(strstr(err.msg, "password"));
    struct gal_snap *snap = gal_index_acquire(ix); /* identify still answers from memory */
    struct gal_candidate c;
    size_t n;
    assert_int_equal(gal_snap_search(snap, f.emb, 1, 1, &c, &n, &err), 0);
    assert_string_equal(c.subject, "Ann");
    gal_snap_release(snap);
    struct timespec ts = {1, 0};
    nanosleep(&ts, NULL);
    assert_int_equal(gal_follow_connected(fo), 0);
    assert_int_equal(pg_start(), 0);
    int ok = -1;
    for (int i = 0; i < 50 && ok != 0; i++) {
        ok = gal_faces_add(w, "Bob", 1, &g, 1, NULL, &err);
        if (ok)
            nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    assert_int_equal(ok, 0);
    assert_int_equal(gal_follow_wait_seq(fo, gal_store_last_write_seq(w), 30000), 0);
    snap = gal_index_acquire(ix);
    assert_int_equal(gal_snap_faces(snap), 2);
    gal_snap_release(snap);
    assert_int_equal(gal_follow_connected(fo), 1);
    gal_follow_stop(fo);
    gal_index_free(ix);
    gal_store_free(w);
}

#define WRITERS 4

static struct gal_face tagged(int64_t tag)
{
    struct gal_face f = face_of((uint32_t)tag, FP_A);
    f.emb[0] = (float)tag;
    return f;
}

static void writer(const char *spec, int w, int fd, int64_t first)
{
    struct gal_err err;
    struct gal_store *s;
    /* The server may go down before a writer has connected (a loaded machine starts the 4 forks late):
     * connecting is retried like a write, so only SIGKILL ends a writer. */
    while (!(s = gal_store_open(spec, FP_A, &err)))
        nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL);
    char name[16];
    snprintf(name, sizeof name, "w%d", w);
    for (int64_t tag = first;; tag++) {
        struct gal_face f = tagged(tag);
        while (gal_faces_add(s, name, 1, &f, 1, NULL, &err) != 0)
            nanosleep(&(struct timespec){0, 20 * 1000000L}, NULL); /* not acknowledged: retry */
        if (write(fd, &tag, sizeof tag) != sizeof tag)
            _exit(4);
    }
}

static int count_tag(void *user, const char *name, const struct gal_face *f, struct gal_err *err)
{
    (void)name, (void)err;
    unsigned char *count = user;
    int64_t tag = (int64_t)f->emb[0];
    if (tag >= 0 && tag < 1000000 && count[tag] < 255)
        count[tag]++;
    return 0;
}

/* 3 rounds: writers enrol, the server crashes (immediate stop: no checkpoint) and comes back while
 * they retry, then the writers are killed; every acknowledged face is there exactly once. */
static void test_gallery_pg_crash_loses_no_acknowledged_face(void **state)
{
    (void)state;
    const char *spec = fresh_spec();
    unsigned char *acked = calloc(1000000, 1), *count = calloc(1000000, 1);
    assert_non_null(acked);
    assert_non_null(count);
    srand((unsigned)time(NULL));
    size_t total = 0;
    for (int round = 0; round < 3; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid[WRITERS];
        for (int w = 0; w < WRITERS; w++) {
            pid[w] = fork();
            assert_true(pid[w] >= 0);
            if (pid[w] == 0) {
                close(fds[0]);
                writer(spec, w, fds[1], (int64_t)round * 200000 + w * 50000);
            }
        }
        close(fds[1]);
        nanosleep(&(struct timespec){0, (long)(100 + rand() % 400) * 1000000L}, NULL);
        assert_int_equal(pg_stop("immediate"), 0);
        assert_int_equal(pg_start(), 0);
        nanosleep(&(struct timespec){0, (long)(200 + rand() % 400) * 1000000L}, NULL);
        for (int w = 0; w < WRITERS; w++)
            kill(pid[w], SIGKILL);
        for (int w = 0; w < WRITERS; w++) {
            int st;
            waitpid(pid[w], &st, 0);
            assert_true(WIFSIGNALED(st));
        }
        int64_t tag;
        size_t n = 0;
        while (read(fds[0], &tag, sizeof tag) == sizeof tag)
            acked[tag] = 1, n++;
        close(fds[0]);
        total += n;
        struct gal_err err;
        struct gal_store *s = open_ok(spec, FP_A);
        memset(count, 0, 1000000);
        int64_t seq;
        assert_int_equal(gal_store_scan(s, count_tag, count, &seq, &err), 0);
        gal_store_free(s);
        for (int t = 0; t < 1000000; t++) {
            if ((acked[t] && count[t] != 1) || count[t] > 1)
                fail_msg("round %d: tag %d acknowledged %d, stored %d times", round, t, acked[t], count[t]);
        }
        printf("round %d: %zu faces acknowledged across a server crash, all present once\n", round, n);
    }
    assert_true(total > 0);
    free(acked);
    free(count);
}

int main(void)
{
    if (access(PG_BIN "/initdb", X_OK) != 0) {
        fprintf(stderr, "PostgreSQL 15 is not installed (scripts/install-deps installs it)\n");
        return 1;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/visiond-test-pg-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    if (geteuid() == 0) {
        snprintf(g_as, sizeof g_as, "runuser -u postgres -- ");
        if (sh("chown postgres:postgres %s", g_dir) != 0)
            return 1;
    }
    if (sh("%s%s/initdb -D %s/data -A trust -U visiond -E UTF8 --locale=C.UTF-8 >%s/initdb.log 2>&1", g_as, PG_BIN,
           g_dir, g_dir) != 0 ||
        pg_start() != 0) {
        fprintf(stderr, "could not start a PostgreSQL cluster in %s\n", g_dir);
        sh("cat %s/initdb.log %s/log 1>&2", g_dir, g_dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        GALLERY_SUITE_TESTS,
        cmocka_unit_test(test_gallery_pg_notify_wakes_follower),
        cmocka_unit_test(test_gallery_pg_restart_unavailable_then_catch_up),
        cmocka_unit_test(test_gallery_pg_crash_loses_no_acknowledged_face),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    pg_stop("fast");
    sh("rm -rf '%s'", g_dir);
    return rc;
}
