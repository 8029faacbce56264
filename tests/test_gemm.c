/* test_gemm.c - the packed GEMM of kern.h (struct eng_gemm, engine/gemm_isa.inc) in every kernel set
 * that has one (AVX2, AVX-512; the plain set has none and conv.c uses sgemm there), against naive
 * references: shapes that hit whole and partial register tiles (rows around 6, columns around each
 * multiple of 8 and 16 up to 64: every tile width), several packed blocks (k across ENG_GEMM_KC, n
 * across ENG_GEMM_NC), odd leading dimensions, guard values around C; with and without bias and post
 * affine, every activation; the weights read in place and packed once (eng_gemm_pack_a) alike. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "kern.h"
#include "layer.h"
#include "layer_harness.h"

#define GUARD 12345.0f

/* The sets with a GEMM; as test_kern.c does for the sets a processor cannot run, the ones left out are
 * printed. Without AVX2 (or in a build without the AVX sets) there is none, and nothing to test: the
 * plain set leaves these GEMMs to sgemm. */
static int gemm_sets(const struct eng_kern **sets)
{
    int n = 0;
    for (int isa = 0; isa < ENG_ISA_COUNT; isa++) {
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (!k)
            print_message("instruction set %d not supported here: not tested\n", isa);
        else if (k->gemm)
            sets[n++] = k;
        else
            print_message("kernel set %s has no packed GEMM (sgemm does its work)\n", k->name);
    }
    if (n == 0)
        print_message("no kernel set with a packed GEMM here: nothing to test\n");
    return n;
}

struct gemm_case {
    int m, n, k;
    size_t lda, ldb, ldc;
    float *a, *b, *c, *bias, *post_w, *post_b;
};

static void case_new(struct gemm_case *t, int m, int n, int k, int with_bias, int with_post)
{
    t->m = m;
    t->n = n;
    t->k = k;
    t->lda = (size_t)k + 3;
    t->ldb = (size_t)n + 5;
    t->ldc = (size_t)n + 7;
    t->a = floats_random((size_t)m * t->lda);
    t->b = floats_random((size_t)k * t->ldb);
    t->c = floats_new((size_t)m * t->ldc);
    for (size_t i = 0; i < (size_t)m * t->ldc; i++)
        t->c[i] = GUARD;
    t->bias = with_bias ? floats_random((size_t)m) : NULL;
    t->post_w = with_post ? floats_random((size_t)m) : NULL;
    t->post_b = with_post ? floats_random((size_t)m) : NULL;
}

static void case_free(struct gemm_case *t)
{
    free(t->a);
    free(t->b);
    free(t->c);
    free(t->bias);
    free(t->post_w);
    free(t->post_b);
}

static struct eng_gemm case_gemm(const struct gemm_case *t, enum eng_act act)
{
    return (struct eng_gemm){.a = t->a, .b = t->b, .c = t->c, .lda = t->lda, .ldb = t->ldb, .ldc = t->ldc,
                             .m = t->m, .n = t->n, .k = t->k, .bias = t->bias, .post_w = t->post_w,
                             .post_b = t->post_b, .act = act};
}

/* C[i][j] against act(post(bias + sum)) summed in double, within the float rounding a k-term sum can
 * carry (relative to the sum of the terms' magnitudes), and the guards beyond n untouched. */
static void check_case(const char *set, const struct gemm_case *t, enum eng_act act)
{
    for (int i = 0; i < t->m; i++) {
        for (size_t j = 0; j < t->ldc; j++) {
            const float got = t->c[(size_t)i * t->ldc + j];
            if (j >= (size_t)t->n) {
                if (got != GUARD)
                    fail_msg("%s m=%d n=%d k=%d: wrote C[%d][%zu] beyond n", set, t->m, t->n, t->k, i, j);
                continue;
            }
            double sum = t->bias ? t->bias[i] : 0.0, mag = fabs(sum);
            for (int kk = 0; kk < t->k; kk++) {
                const double p = (double)t->a[(size_t)i * t->lda + kk] * t->b[(size_t)kk * t->ldb + j];
                sum += p;
                mag += fabs(p);
            }
            if (t->post_w) {
                mag = mag * fabs(t->post_w[i]) + fabs(t->post_b[i]);
                sum = sum * t->post_w[i] + t->post_b[i];
            }
            float want = (float)sum;
            eng_act_ref(&want, 1, act);
            const double tol = 4e-7 * (t->k + 4) * (mag + 1e-3);
            if (!(fabs((double)got - want) <= tol))
                fail_msg("%s %s m=%d n=%d k=%d bias=%d post=%d: C[%d][%zu] = %.9g, expected %.9g (tol %.3g)",
                         set, eng_act_name(act), t->m, t->n, t->k, t->bias != NULL, t->post_w != NULL, i, j,
                         (double)got, (double)want, tol);
        }
    }
}

static void test_gemm_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = gemm_sets(sets);
    float *scratch = floats_new(ENG_GEMM_SCRATCH_FLOATS);
    const int ms[] = {1, 5, 6, 7, 12, 13, 29, 64};
    const int ns[] = {1, 7, 16, 17, 31, 33, 48, 49, 63, 64, 65, 255, 256, 257, 300};
    const int ks[] = {1, 3, 27, 383, 384, 385, 800};
    rng_state = 23;
    for (int s = 0; s < n_sets; s++)
        for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
                for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
                    struct gemm_case t;
                    const int variant = (int)(a + b + c) % 4; /* bias and post on and off */
                    case_new(&t, ms[a], ns[b], ks[c], variant & 1, variant >> 1);
                    const enum eng_act act = (enum eng_act)((a + 2 * b + c) % (ENG_ACT_SWISH + 1));
                    const struct eng_gemm g = case_gemm(&t, act);
                    sets[s]->gemm(&g, scratch);
                    check_case(sets[s]->name, &t, act);
                    case_free(&t);
                }
    free(scratch);
}

/* Every activation on one shape with edges (rows 6 + 6 + 6 + 3, columns 64 + 49 or 16 x 6 + 1, two k
 * blocks). */
static void test_gemm_every_activation_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = gemm_sets(sets);
    float *scratch = floats_new(ENG_GEMM_SCRATCH_FLOATS);
    rng_state = 29;
    for (int s = 0; s < n_sets; s++)
        for (int act = ENG_ACT_LINEAR; act <= ENG_ACT_SWISH; act++)
            for (int post = 0; post < 2; post++) {
                struct gemm_case t;
                case_new(&t, 21, 113, 500, 1, post);
                const struct eng_gemm g = case_gemm(&t, (enum eng_act)act);
                sets[s]->gemm(&g, scratch);
                check_case(sets[s]->name, &t, (enum eng_act)act);
                case_free(&t);
            }
    free(scratch);
}

/* The same GEMM cut into blocks of rows and columns (as conv.c's tasks cut a layer) gives the same
 * bits as one call: what keeps a layer's results independent of the thread count. */
static void test_gemm_any_cut_same_bits_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = gemm_sets(sets);
    float *scratch = floats_new(ENG_GEMM_SCRATCH_FLOATS);
    rng_state = 31;
    for (int s = 0; s < n_sets; s++) {
        struct gemm_case t;
        case_new(&t, 45, 301, 520, 1, 1);
        const size_t size = (size_t)t.m * t.ldc;
        struct eng_gemm g = case_gemm(&t, ENG_ACT_LEAKY);
        sets[s]->gemm(&g, scratch);
        float *whole = floats_new(size);
        memcpy(whole, t.c, sizeof(float) * size);
        const int row_cuts[] = {0, 3, 17, 45}, col_cuts[] = {0, 5, 100, 301};
        for (int r = 0; r < 3; r++)
            for (int q = 0; q < 3; q++) {
                struct eng_gemm part = g;
                part.m = row_cuts[r + 1] - row_cuts[r];
                part.n = col_cuts[q + 1] - col_cuts[q];
                part.a = t.a + (size_t)row_cuts[r] * t.lda;
                part.b = t.b + col_cuts[q];
                part.c = t.c + (size_t)row_cuts[r] * t.ldc + col_cuts[q];
                part.bias = t.bias + row_cuts[r];
                part.post_w = t.post_w + row_cuts[r];
                part.post_b = t.post_b + row_cuts[r];
                for (int i = 0; i < part.m; i++)
                    for (int j = 0; j < part.n; j++)
                        part.c[(size_t)i * t.ldc + j] = GUARD;
                sets[s]->gemm(&part, scratch);
            }
        assert_memory_equal(t.c, whole, sizeof(float) * size);
        free(whole);
        case_free(&t);
    }
    free(scratch);
}

/* A caller's pack (the implicit GEMM: conv.c unfolds its input into the packed blocks) that writes
 * B's values gives the same bits as the GEMM packing B itself; a pack that gets a row wrong fails. */
struct pack_src {
    const struct gemm_case *t;
    int shift; /* 1: rows off by one (the deliberate mistake this test must see) */
};

static void pack_rows(const void *ctx, int kk0, int kc, int j0, int nc, int nr, float *dst)
{
    const struct pack_src *src = ctx;
    const struct gemm_case *t = src->t;
    for (int p = 0; p * nr < nc; p++)
        for (int r = 0; r < kc; r++)
            for (int j = 0; j < nr; j++) {
                const int row = (kk0 + r + src->shift) % t->k, col = j0 + p * nr + j;
                dst[((size_t)p * kc + r) * nr + j] = p * nr + j < nc ? t->b[(size_t)row * t->ldb + col] : 0.0f;
            }
}

static void test_gemm_caller_pack_same_bits_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = gemm_sets(sets);
    float *scratch = floats_new(ENG_GEMM_SCRATCH_FLOATS);
    rng_state = 37;
    for (int s = 0; s < n_sets; s++) {
        struct gemm_case t;
        case_new(&t, 19, 300, 800, 1, 0);
        const size_t size = (size_t)t.m * t.ldc;
        const struct eng_gemm g = case_gemm(&t, ENG_ACT_LEAKY);
        sets[s]->gemm(&g, scratch);
        float *want = floats_new(size);
        memcpy(want, t.c, sizeof(float) * size);
        for (int shift = 0; shift < 2; shift++) {
            const struct pack_src src = {.t = &t, .shift = shift};
            struct eng_gemm implicit = g;
            implicit.b = NULL;
            implicit.pack = pack_rows;
            implicit.pack_ctx = &src;
            for (size_t i = 0; i < size; i++)
                t.c[i] = want[i] == GUARD ? GUARD : 0.0f;
            sets[s]->gemm(&implicit, scratch);
            const int same = memcmp(t.c, want, sizeof(float) * size) == 0;
            if (same != (shift == 0))
                fail_msg("%s: a caller's pack %s", sets[s]->name,
                         shift ? "with wrong rows gave the right result" : "gave other bits than B packed");
        }
        free(want);
        case_free(&t);
    }
    free(scratch);
}

/* eng_gemm_pack_a's layout, element by element (kern.h): per block of ENG_GEMM_KC columns, panels of
 * ENG_GEMM_MR rows, kc groups of ENG_GEMM_MR floats each, zero for the rows beyond m; nothing written
 * beyond eng_gemm_packed_floats. */
static void test_gemm_pack_a_layout(void **state)
{
    (void)state;
    const int ms[] = {1, 5, 6, 7, 13, 18}, ks[] = {1, 3, 385, 800};
    rng_state = 41;
    for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
        for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++) {
            const int m = ms[a], k = ks[b];
            const size_t lda = (size_t)k + 2, size = eng_gemm_packed_floats(m, k);
            assert_int_equal(size, (size_t)((m + ENG_GEMM_MR - 1) / ENG_GEMM_MR) * ENG_GEMM_MR * k);
            float *w = floats_random((size_t)m * lda), *p = floats_new(size + 1);
            p[size] = GUARD;
            eng_gemm_pack_a(w, lda, m, k, p);
            for (int i = 0; i < (m + ENG_GEMM_MR - 1) / ENG_GEMM_MR * ENG_GEMM_MR; i++)
                for (int kk = 0; kk < k; kk++) {
                    const int mp = (m + ENG_GEMM_MR - 1) / ENG_GEMM_MR * ENG_GEMM_MR, kb = kk / ENG_GEMM_KC;
                    const int kc = k - kb * ENG_GEMM_KC < ENG_GEMM_KC ? k - kb * ENG_GEMM_KC : ENG_GEMM_KC;
                    const float got = p[(size_t)kb * ENG_GEMM_KC * mp + (size_t)(i / ENG_GEMM_MR) * kc * ENG_GEMM_MR +
                                        (size_t)(kk % ENG_GEMM_KC) * ENG_GEMM_MR + i % ENG_GEMM_MR];
                    const float want = i < m ? w[(size_t)i * lda + kk] : 0.0f;
                    if (got != want)
                        fail_msg("m=%d k=%d: packed (%d, %d) = %g, expected %g", m, k, i, kk, (double)got,
                                 (double)want);
                }
            assert_true(p[size] == GUARD);
            free(w);
            free(p);
        }
}

/* Weights packed once (as conv.c has them from load) give the same bits as the weights read in place,
 * over the naive test's edge shapes, and so match the naive reference too; and a call for rows [r0, r1)
 * of the packed matrix (a_row = r0, conv.c's blocks of output channels; cuts inside a panel too) gives
 * the same bits as the whole. */
static void test_gemm_packed_weights_same_bits_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = gemm_sets(sets);
    float *scratch = floats_new(ENG_GEMM_SCRATCH_FLOATS);
    const int ms[] = {1, 5, 6, 7, 13, 29}, ns[] = {1, 17, 49, 64, 65, 257}, ks[] = {1, 27, 384, 385, 800};
    rng_state = 43;
    for (int s = 0; s < n_sets; s++) {
        for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
            for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
                for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++) {
                    struct gemm_case t;
                    const int variant = (int)(a + b + c) % 4;
                    case_new(&t, ms[a], ns[b], ks[c], variant & 1, variant >> 1);
                    const enum eng_act act = (enum eng_act)((a + b + 2 * c) % (ENG_ACT_SWISH + 1));
                    const size_t size = (size_t)t.m * t.ldc;
                    struct eng_gemm g = case_gemm(&t, act);
                    sets[s]->gemm(&g, scratch);
                    float *inplace = floats_new(size), *ap = floats_new(eng_gemm_packed_floats(t.m, t.k));
                    memcpy(inplace, t.c, sizeof(float) * size);
                    for (size_t i = 0; i < size; i++)
                        t.c[i] = GUARD;
                    eng_gemm_pack_a(t.a, t.lda, t.m, t.k, ap);
                    g.ap = ap;
                    g.ap_m = t.m;
                    g.a = NULL; /* must not be read */
                    sets[s]->gemm(&g, scratch);
                    if (memcmp(t.c, inplace, sizeof(float) * size) != 0)
                        fail_msg("%s m=%d n=%d k=%d: packed weights gave other bits than in place", sets[s]->name,
                                 t.m, t.n, t.k);
                    check_case(sets[s]->name, &t, act);
                    free(inplace);
                    free(ap);
                    case_free(&t);
                }
        struct gemm_case t;
        case_new(&t, 47, 150, 700, 1, 1);
        const size_t size = (size_t)t.m * t.ldc;
        float *ap = floats_new(eng_gemm_packed_floats(t.m, t.k)), *whole = floats_new(size);
        eng_gemm_pack_a(t.a, t.lda, t.m, t.k, ap);
        struct eng_gemm g = case_gemm(&t, ENG_ACT_LEAKY);
        g.ap = ap;
        g.ap_m = t.m;
        sets[s]->gemm(&g, scratch);
        memcpy(whole, t.c, sizeof(float) * size);
        for (size_t i = 0; i < size; i++)
            t.c[i] = GUARD;
        const int cuts[] = {0, 4, 6, 17, 18, 30, 47};
        for (int r = 0; r + 1 < (int)(sizeof cuts / sizeof cuts[0]); r++) {
            struct eng_gemm part = g;
            part.a_row = cuts[r];
            part.m = cuts[r + 1] - cuts[r];
            part.c = t.c + (size_t)cuts[r] * t.ldc;
            part.bias = t.bias + cuts[r];
            part.post_w = t.post_w + cuts[r];
            part.post_b = t.post_b + cuts[r];
            sets[s]->gemm(&part, scratch);
        }
        assert_memory_equal(t.c, whole, sizeof(float) * size);
        free(ap);
        free(whole);
        case_free(&t);
    }
    free(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_matches_naive_every_set),
        cmocka_unit_test(test_gemm_every_activation_every_set),
        cmocka_unit_test(test_gemm_any_cut_same_bits_every_set),
        cmocka_unit_test(test_gemm_caller_pack_same_bits_every_set),
        cmocka_unit_test(test_gemm_pack_a_layout),
        cmocka_unit_test(test_gemm_packed_weights_same_bits_every_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
