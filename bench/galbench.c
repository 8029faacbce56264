/* galbench.c - the gallery at scale (bench/gallery runs it): for synthetic galleries of N faces
 * (10 faces per subject, random 128-d embeddings of the recognizer's typical norm) in a SQLite store:
 * the time to fill it, the start-up load of the index from it (a fresh process's gal_index_load), the
 * index's memory (its own count and the RSS it added, per face), and identify's search time on one
 * core for one query (sgemv) and for a batch of 8 (sgemm, per query), median of the runs: the search
 * the daemon runs (gal_snap_search: half-precision scan, exact re-ranking of a shortlist) and the exact
 * one over the float rows (gal_snap_search_exact) side by side. Recall@1 vs exact: how often both give
 * the same first subject and face, over the runs' queries of two kinds: a gallery face plus noise (its
 * subject should come first: printed too) and a stranger (a random embedding: many subjects nearly
 * tied, the hard case). "top 3 = exact": the three subjects, face ids and distances all identical.
 *
 *   visiond_galbench [--sizes 10000,100000,1000000] [--runs 50] [--dir DIR]
 *
 * One markdown table on stdout. Run with OPENBLAS_NUM_THREADS=1 for one core (bench/gallery does). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gal.h"

#define FP "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed"
#define PER_SUBJECT 10
#define BATCH 8

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static uint64_t rng = 88172645463325252ull;
static double gauss(void)
{
    double u = 0;
    for (int i = 0; i < 12; i++) { /* Irwin-Hall: close enough to normal for a benchmark */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        u += (double)(rng >> 11) / 9007199254740992.0;
    }
    return u - 6.0;
}

static void face_of(uint64_t seed, float *emb)
{
    uint64_t save = rng;
    rng = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int k = 0; k < GAL_DIM; k++)
        emb[k] = (float)(0.12 * gauss()); /* norm ~1.4, as the recognizer's descriptors */
    rng = save;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int fill(struct gal_store *s, long n, double *ms)
{
    struct gal_err err;
    struct gal_face f;
    memset(&f, 0, sizeof f);
    memcpy(f.fingerprint, FP, sizeof f.fingerprint);
    double t0 = now_ms();
    for (long base = 0; base < n; base += 100000) { /* one transaction per 100k faces */
        if (gal_import_begin(s, &err))
            goto fail;
        for (long i = base; i < n && i < base + 100000; i++) {
            char name[32];
            snprintf(name, sizeof name, "s%07ld", i / PER_SUBJECT);
            face_of((uint64_t)i, f.emb);
            if (gal_import_face(s, name, &f, &err)) {
                gal_import_abort(s);
                goto fail;
            }
        }
        if (gal_import_commit(s, &err))
            goto fail;
    }
    *ms = now_ms() - t0;
    return 0;
fail:
    fprintf(stderr, "fill: %s (%s)\n", err.msg, err.stmt);
    return -1;
}

int main(int argc, char **argv)
{
    const char *sizes = "10000,100000,1000000", *dir = "/tmp";
    int runs = 50;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--sizes") == 0 && i + 1 < argc)
            sizes = argv[++i];
        else if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else {
            fprintf(stderr, "usage: visiond_galbench [--sizes 10000,100000,1000000] [--runs 50] [--dir DIR]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > 10000)
        runs = 50;
    printf("| faces | fill (s) | start-up load (s) | index MB | RSS added MB | bytes/face (RSS) | search 1 query (ms) "
           "| exact, 1 query (ms) | search, batch of %d (ms/query) | exact, batch of %d (ms/query) | recall@1 vs exact "
           "| top 3 = exact | recall@1 (own subject) | index update after 1 enrolment (ms) |\n"
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", BATCH, BATCH);
    char list[256];
    snprintf(list, sizeof list, "%s", sizes);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        long n = atol(tok);
        if (n < PER_SUBJECT)
            continue;
        char spec[512];
        snprintf(spec, sizeof spec, "sqlite:%s/galbench-%ld-%d.db", dir, n, (int)getpid());
        struct gal_err err;
        struct gal_store *s = gal_store_open(spec, FP, &err);
        double fill_ms = 0;
        if (!s || fill(s, n, &fill_ms)) {
            fprintf(stderr, "%s: %s\n", spec, s ? "fill failed" : err.msg);
            return 1;
        }
        gal_store_free(s);
        /* start-up: a fresh connection and index, as a daemon starting */
        double rss0 = rss_mb(), t0 = now_ms();
        s = gal_store_open(spec, FP, &err);
        struct gal_index *ix = gal_index_new();
        if (!s || !ix || gal_index_load(ix, s, &err)) {
            fprintf(stderr, "load: %s\n", err.msg);
            return 1;
        }
        double load_ms = now_ms() - t0, rss1 = rss_mb();
        struct gal_snap *snap = gal_index_acquire(ix);
        double *t1 = malloc(sizeof(double) * (size_t)runs), *tb = malloc(sizeof(double) * (size_t)runs);
        double *e1 = malloc(sizeof(double) * (size_t)runs), *eb = malloc(sizeof(double) * (size_t)runs);
        float q[BATCH][GAL_DIM], stranger[BATCH][GAL_DIM];
        struct gal_candidate c[BATCH * 3], e[BATCH * 3];
        size_t nc[BATCH], ne[BATCH];
        long right = 0, asked = 0, same1 = 0, same3 = 0, compared = 0;
        for (int r = 0; r < runs; r++) {
            long want[BATCH];
            for (int b = 0; b < BATCH; b++) {
                want[b] = (long)((rng = rng * 6364136223846793005ull + 1442695040888963407ull) >> 33) % n;
                face_of((uint64_t)want[b], q[b]);
                for (int k = 0; k < GAL_DIM; k++)
                    q[b][k] += (float)(0.02 * gauss());
                face_of((uint64_t)n + 1000 + (uint64_t)(r * BATCH + b), stranger[b]);
            }
            double a = now_ms();
            gal_snap_search(snap, q[0], 1, 3, c, nc, &err);
            t1[r] = now_ms() - a;
            a = now_ms();
            gal_snap_search_exact(snap, q[0], 1, 3, e, ne, &err);
            e1[r] = now_ms() - a;
            for (int kind = 1; kind >= 0; kind--) { /* strangers first: c and e end with the faces' answers */
                float *qq = kind ? stranger[0] : q[0];
                a = now_ms();
                gal_snap_search(snap, qq, BATCH, 3, c, nc, &err);
                if (!kind)
                    tb[r] = (now_ms() - a) / BATCH;
                a = now_ms();
                gal_snap_search_exact(snap, qq, BATCH, 3, e, ne, &err);
                if (!kind)
                    eb[r] = (now_ms() - a) / BATCH;
                for (int b = 0; b < BATCH; b++) {
                    compared++;
                    int k1 = nc[b] > 0 && ne[b] > 0 && c[b * 3].face_id == e[b * 3].face_id &&
                             strcmp(c[b * 3].subject, e[b * 3].subject) == 0;
                    int k3 = nc[b] == ne[b];
                    for (size_t j = 0; k3 && j < nc[b]; j++)
                        k3 = c[b * 3 + j].face_id == e[b * 3 + j].face_id &&
                             c[b * 3 + j].distance == e[b * 3 + j].distance &&
                             strcmp(c[b * 3 + j].subject, e[b * 3 + j].subject) == 0;
                    same1 += k1, same3 += k3;
                }
            }
            for (int b = 0; b < BATCH; b++) {
                char name[32];
                snprintf(name, sizeof name, "s%07ld", want[b] / PER_SUBJECT);
                asked++;
                right += nc[b] > 0 && strcmp(c[b * 3].subject, name) == 0;
            }
        }
        /* one enrolment, then what every daemon's follower does: append it to the index */
        struct gal_face one;
        memset(&one, 0, sizeof one);
        face_of((uint64_t)n + 7, one.emb);
        memcpy(one.fingerprint, FP, sizeof one.fingerprint);
        gal_snap_release(snap);
        if (gal_faces_add(s, "newcomer", 1, &one, 1, NULL, &err)) {
            fprintf(stderr, "enrol: %s\n", err.msg);
            return 1;
        }
        double u0 = now_ms();
        if (gal_index_update(ix, s, &err)) {
            fprintf(stderr, "update: %s\n", err.msg);
            return 1;
        }
        double update_ms = now_ms() - u0;
        snap = gal_index_acquire(ix);
        qsort(t1, (size_t)runs, sizeof *t1, cmp_double);
        qsort(tb, (size_t)runs, sizeof *tb, cmp_double);
        qsort(e1, (size_t)runs, sizeof *e1, cmp_double);
        qsort(eb, (size_t)runs, sizeof *eb, cmp_double);
        printf("| %ld | %.1f | %.2f | %.1f | %.1f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f %% (%ld/%ld) | %.2f %% "
               "| %.2f %% | %.1f |\n",
               n, fill_ms / 1e3, load_ms / 1e3, gal_snap_bytes(snap) / (1024.0 * 1024.0), rss1 - rss0,
               (rss1 - rss0) * 1024.0 * 1024.0 / (double)n, t1[runs / 2], e1[runs / 2], tb[runs / 2], eb[runs / 2],
               100.0 * (double)same1 / (double)compared, same1, compared, 100.0 * (double)same3 / (double)compared,
               100.0 * (double)right / (double)asked, update_ms);
        fflush(stdout);
        free(t1), free(tb), free(e1), free(eb);
        gal_snap_release(snap);
        gal_index_free(ix);
        gal_store_free(s);
        char path[512];
        snprintf(path, sizeof path, "%s", spec + 7);
        unlink(path);
    }
    return 0;
}
