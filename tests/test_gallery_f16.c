/* test_gallery_f16.c - the index's half-precision scan (gallery/gal_index.c, gallery/gal_f16.c): the
 * conversion of the chosen instruction set against the portable C one and known values, and the
 * search (half scan + exact re-ranking) against a brute-force exact search written here, in double, on
 * a synthetic gallery of clustered faces and many random queries. ctest runs it three times: as the
 * processor chooses, and with VISIOND_KERNELS=c and =avx2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gal.h"
#include "gal_f16.h"

#define FP "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

static char g_dir[64];
static uint64_t g_rng = 88172645463325252ull;

static uint32_t rnd(void)
{
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 32);
}

static float gauss(void)
{
    double u = (rnd() + 1.0) / 4294967297.0, v = rnd() / 4294967296.0;
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static void test_f16_chosen_set(void **state)
{
    (void)state;
    const char *want = getenv("VISIOND_KERNELS");
    if (want && strcmp(want, "c") == 0)
        assert_string_equal(gal_f16_isa(), "c");
    else
        assert_non_null(gal_f16_isa());
    printf("half precision conversion: %s\n", gal_f16_isa());
}

static void test_f16_known_values(void **state)
{
    (void)state;
    const float f[] = {1.0f, -2.0f, 65504.0f, 65520.0f, 0x1p-24f, 0x1p-25f, 0x1.8p-25f, 0x1p-14f,
                       1.0f + 0x1p-11f, 1.0f + 0x3p-11f, 0.0f, -0.0f, 0.1f};
    const uint16_t h[] = {0x3c00, 0xc000, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x0001, 0x0400,
                          0x3c00, 0x3c02, 0x0000, 0x8000, 0x2e66};
    enum { N = sizeof f / sizeof f[0] };
    uint16_t got[N], got_c[N];
    gal_f16_from_f32(got, f, N);
    gal_f16_from_f32_c(got_c, f, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(got[i], h[i]);
        assert_int_equal(got_c[i], h[i]);
    }
}

/* Every half to float, and many floats (all magnitudes, ties included) to half: bit-identical. */
static void test_f16_sets_agree(void **state)
{
    (void)state;
    enum { N = 65536 };
    static uint16_t h[N], h2[N];
    static float a[N], b[N];
    for (int i = 0; i < N; i++)
        h[i] = (uint16_t)i;
    gal_f16_to_f32(a, h, N);
    gal_f16_to_f32_c(b, h, N);
    for (int i = 0; i < N; i++) {
        if (isnan(b[i])) {
            assert_true(isnan(a[i]));
            continue;
        }
        assert_memory_equal(&a[i], &b[i], sizeof a[i]);
        assert_true(((i >> 10) & 0x1f) == 0x1f || isfinite(b[i]));
    }
    for (int rep = 0; rep < 40; rep++) {
        for (int i = 0; i < N; i++) {
            uint32_t u = rnd();
            if (i % 3 == 0) /* exactly halfway between two halves: rounding to even decides */
                u = (u & 0x8fffe000u) | 0x00001000u;
            if ((u & 0x7f800000u) == 0x7f800000u) /* no NaN or infinity: the gallery holds finite values */
                u &= 0xbfffffffu;
            memcpy(&a[i], &u, sizeof u);
        }
        gal_f16_from_f32(h, a, N);
        gal_f16_from_f32_c(h2, a, N);
        assert_memory_equal(h, h2, sizeof h);
    }
}

/* ---- search ---- */

enum { NSUB = 1500, PER = 5, TOPK = 5, NQ = 400 };

static float g_emb[NSUB * PER + 64][GAL_DIM];
static int64_t g_id[NSUB * PER + 64];
static int g_sub[NSUB * PER + 64];
static size_t g_n;
static char g_name[NSUB][16];

struct ref {
    int sub;
    int64_t id;
    float dist;
};

/* The exact answer, brute force: each subject's nearest face by the distance in double, ascending
 * (ties: subject order), the first top_k. */
static size_t exact_ref(const float *q, size_t top_k, struct ref *out)
{
    static double best[NSUB];
    static int64_t best_id[NSUB];
    for (int s = 0; s < NSUB; s++)
        best[s] = INFINITY, best_id[s] = -1;
    for (size_t i = 0; i < g_n; i++) {
        double d = 0;
        for (int k = 0; k < GAL_DIM; k++) {
            double t = (double)q[k] - g_emb[i][k];
            d += t * t;
        }
        d = sqrt(d);
        if (d < best[g_sub[i]] || (d == best[g_sub[i]] && g_id[i] < best_id[g_sub[i]]))
            best[g_sub[i]] = d, best_id[g_sub[i]] = g_id[i];
    }
    size_t k = 0;
    for (int s = 0; s < NSUB; s++) {
        if (best_id[s] < 0 || (k == top_k && best[s] >= out[k - 1].dist))
            continue;
        size_t at = k < top_k ? k++ : top_k - 1;
        while (at > 0 && out[at - 1].dist > best[s])
            out[at] = out[at - 1], at--;
        out[at] = (struct ref){s, best_id[s], (float)best[s]};
        out[at].dist = (float)best[s];
    }
    return k;
}

static int g_missed;

static void check_query(const struct gal_snap *snap, const float *q)
{
    struct gal_candidate c[TOPK], e[TOPK];
    struct ref r[TOPK];
    size_t nc = 0, ne = 0;
    struct gal_err err;
    assert_int_equal(gal_snap_search(snap, q, 1, TOPK, c, &nc, &err), 0);
    assert_int_equal(gal_snap_search_exact(snap, q, 1, TOPK, e, &ne, &err), 0);
    size_t nr = exact_ref(q, TOPK, r);
    assert_int_equal(ne, nr);
    assert_int_equal(nc, nr);
    for (size_t j = 0; j < nr; j++) {
        assert_string_equal(e[j].subject, g_name[r[j].sub]);
        assert_int_equal(e[j].face_id, r[j].id);
        assert_memory_equal(&e[j].distance, &r[j].dist, sizeof(float));
        if (strcmp(c[j].subject, g_name[r[j].sub]) != 0) { /* only if the shortlist missed a true one */
            g_missed++;
            continue;
        }
        assert_int_equal(c[j].face_id, r[j].id);
        assert_memory_equal(&c[j].distance, &r[j].dist, sizeof(float));
    }
}

static void check_queries(const struct gal_snap *snap, int nq)
{
    for (int i = 0; i < nq; i++) {
        float q[GAL_DIM];
        int kind = i % 3;
        size_t near = rnd() % g_n;
        for (int k = 0; k < GAL_DIM; k++) {
            if (kind == 0) /* a gallery face, a little moved: its subject first, the rest close behind */
                q[k] = g_emb[near][k] + 0.01f * gauss();
            else if (kind == 1) /* between two subjects: near-ties between their faces */
                q[k] = 0.5f * (g_emb[near][k] + g_emb[(near + PER) % g_n][k]) + 0.001f * gauss();
            else /* anywhere: many subjects at nearly the same distance */
                q[k] = 0.1f * gauss();
        }
        check_query(snap, q);
    }
}

static void test_f16_search_equals_exact(void **state)
{
    (void)state;
    char spec[128];
    snprintf(spec, sizeof spec, "sqlite:%s/f16.db", g_dir);
    struct gal_err err = {0};
    struct gal_store *s = gal_store_open(spec, FP, &err);
    assert_non_null(s);
    assert_int_equal(gal_import_begin(s, &err), 0);
    /* subjects as clusters: a centre and faces around it, as a recognizer's embeddings are */
    for (int sub = 0; sub < NSUB; sub++) {
        snprintf(g_name[sub], sizeof g_name[sub], "s%05d", sub);
        float centre[GAL_DIM];
        for (int k = 0; k < GAL_DIM; k++)
            centre[k] = 0.1f * gauss();
        for (int j = 0; j < PER; j++) {
            struct gal_face f;
            memset(&f, 0, sizeof f);
            for (int k = 0; k < GAL_DIM; k++)
                f.emb[k] = centre[k] + 0.04f * gauss();
            snprintf(f.fingerprint, sizeof f.fingerprint, "%s", FP);
            assert_int_equal(gal_import_face(s, g_name[sub], &f, &err), 0);
        }
    }
    assert_int_equal(gal_import_commit(s, &err), 0);
    struct gal_index *ix = gal_index_new();
    assert_int_equal(gal_index_load(ix, s, &err), 0);
    struct gal_snap *snap = gal_index_acquire(ix);
    assert_int_equal(gal_snap_faces(snap), NSUB * PER);
    /* the embeddings and ids as the store holds them (the test's reference reads them back) */
    g_n = 0;
    for (int sub = 0; sub < NSUB; sub++) {
        struct gal_face *f;
        size_t n;
        assert_int_equal(gal_faces_list(s, g_name[sub], &f, &n, &err), 0);
        for (size_t j = 0; j < n; j++, g_n++) {
            memcpy(g_emb[g_n], f[j].emb, sizeof g_emb[g_n]);
            g_id[g_n] = f[j].id, g_sub[g_n] = sub;
        }
        free(f);
    }
    check_queries(snap, NQ);
    gal_snap_release(snap);

    /* an enrolment appended by gal_index_update (the merge path): the half rows follow */
    struct gal_face add[PER];
    int64_t ids[PER];
    for (int j = 0; j < PER; j++) {
        memset(&add[j], 0, sizeof add[j]);
        for (int k = 0; k < GAL_DIM; k++)
            add[j].emb[k] = g_emb[7 * PER][k] + 0.02f * gauss();
        snprintf(add[j].fingerprint, sizeof add[j].fingerprint, "%s", FP);
    }
    assert_int_equal(gal_faces_add(s, g_name[3], 0, add, PER, ids, &err), 0);
    assert_int_equal(gal_index_update(ix, s, &err), 0);
    snap = gal_index_acquire(ix);
    assert_int_equal(gal_snap_faces(snap), NSUB * PER + PER);
    for (int j = 0; j < PER; j++, g_n++) {
        memcpy(g_emb[g_n], add[j].emb, sizeof g_emb[g_n]);
        g_id[g_n] = ids[j], g_sub[g_n] = 3;
    }
    check_queries(snap, NQ / 2);
    /* the rare query whose true answer the half scan left off the shortlist: none expected here */
    printf("answers off the shortlist: %d of %d\n", g_missed, (NQ + NQ / 2) * TOPK);
    assert_int_equal(g_missed, 0);
    gal_snap_release(snap);
    gal_index_free(ix);
    gal_store_free(s);
}

int main(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/visiond-test-f16-XXXXXX");
    if (!mkdtemp(g_dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_chosen_set),
        cmocka_unit_test(test_f16_known_values),
        cmocka_unit_test(test_f16_sets_agree),
        cmocka_unit_test(test_f16_search_equals_exact),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0)
        return 1;
    return rc;
}
