/* test_kern_recog.c - the face recognizer's kernels of issue #17 against naive references: gemm_dot
 * (engine/dot_isa.inc) in every set the processor runs, on sizes that hit its 8-row and 2-row tiles,
 * the 1-row remainder, column groups past 9 and k tails, with NaN past every row so an over-read fails;
 * the convolution layers of engine/conv_dot.c (dot products up to 4 pixels, the small-n kernel on a
 * staged window up to 16) against a naive direct convolution in double, odd channel counts, stride 2
 * 'valid' and 'same' padding, bias, post affine and activations, the same bits on teams of 1 to 3
 * threads; the 3x3 stride-2 max pool's row pass (engine/pool.c) against the window maximum, and the 2x2
 * stride-2 average pool against the general loop's sums, exactly. The layers run the set eng_kern_best
 * picks (scripts/test runs the suite once per set with VISIOND_KERNELS). */
#include <float.h>
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
#include "team.h"

#define GUARD 12345.0f


/* Float rounding of a sum of k products: a few epsilons of the sum of |terms|. A wrong term (a lane
 * dropped, a tail element skipped or doubled) is off by about one term's size, far more. */
static double dot_tol(double mag)
{
    return 4e-7 * mag + 1e-30;
}

static void test_kern_gemm_dot_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 29;
    const int ms[] = {1, 2, 3, 7, 8, 9, 17, 33};
    const int ks[] = {1, 5, 15, 16, 17, 33, 64, 291, 1153};
    const int ns[] = {1, 2, 3, 4, 8, 9, 10, 19};
    for (int s = 0; s < n_sets; s++)
        for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
            for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++)
                for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
                    const int m = ms[a], k = ks[b], n = ns[c];
                    const size_t lda = (size_t)k + 3, ldb = (size_t)k + 7, ldc = (size_t)n + 5;
                    float *A = floats_random((size_t)m * lda), *B = floats_random((size_t)n * ldb);
                    float *C = floats_new((size_t)m * ldc);
                    for (int i = 0; i < m; i++) /* past k: NaN, which would spread to any sum reading it */
                        for (size_t t = (size_t)k; t < lda; t++)
                            A[(size_t)i * lda + t] = NAN;
                    for (int j = 0; j < n; j++)
                        for (size_t t = (size_t)k; t < ldb; t++)
                            B[(size_t)j * ldb + t] = NAN;
                    for (size_t i = 0; i < (size_t)m * ldc; i++)
                        C[i] = GUARD;
                    sets[s]->gemm_dot(A, lda, B, ldb, C, ldc, m, n, k);
                    for (int i = 0; i < m; i++)
                        for (size_t j = 0; j < ldc; j++) {
                            const float got = C[(size_t)i * ldc + j];
                            if (j >= (size_t)n) {
                                if (got != GUARD)
                                    fail_msg("%s m=%d n=%d k=%d: C[%d][%zu] written past n", sets[s]->name, m, n,
                                             k, i, j);
                                continue;
                            }
                            double want = 0, mag = 0;
                            for (int t = 0; t < k; t++) {
                                const double p = (double)A[(size_t)i * lda + t] * B[j * ldb + t];
                                want += p;
                                mag += fabs(p);
                            }
                            if (!(fabs((double)got - want) <= dot_tol(mag)))
                                fail_msg("%s m=%d n=%d k=%d: C[%d][%zu] = %.9g, expected %.9g (terms %.3g)",
                                         sets[s]->name, m, n, k, i, j, (double)got, want, mag);
                        }
                    /* rows in two calls (an odd split, as a team might cut them): the same bits */
                    if (m > 1) {
                        float *C2 = floats_new((size_t)m * ldc);
                        memcpy(C2, C, sizeof(float) * (size_t)m * ldc);
                        const int cut = m / 2 | 1;
                        sets[s]->gemm_dot(A, lda, B, ldb, C2, ldc, cut, n, k);
                        sets[s]->gemm_dot(A + (size_t)cut * lda, lda, B, ldb, C2 + (size_t)cut * ldc, ldc, m - cut,
                                          n, k);
                        assert_memory_equal(C, C2, sizeof(float) * (size_t)m * ldc);
                        free(C2);
                    }
                    free(A);
                    free(B);
                    free(C);
                }
}

struct dot_case {
    int c, h, w, filters, size, stride, pad, same, with_bias, with_post;
    enum eng_act act;
};

static void check_dot_case(const struct dot_case *k)
{
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, k->c, k->h, k->w);
    float *w = floats_random((size_t)k->filters * k->c * k->size * k->size);
    float *bias = k->with_bias ? floats_random((size_t)k->filters) : NULL;
    float *pw = k->with_post ? floats_random((size_t)k->filters) : NULL;
    float *pb = k->with_post ? floats_random((size_t)k->filters) : NULL;
    float *in = floats_random((size_t)k->c * k->h * k->w);
    l.p.conv = (struct eng_conv){.filters = k->filters, .size = k->size, .stride = k->stride, .pad = k->pad,
                                 .same = k->same, .groups = 1, .act = k->act, .weights = w, .bias = bias,
                                 .post_scale = pw, .post_bias = pb};
    char why[256] = "";
    setup_ok(eng_conv_setup(&l, why, sizeof why), why);
    const int n = l.out.h * l.out.w;
    const int pw1 = k->size == 1 && k->stride == 1 && k->pad == 0; /* conv.c reads its input as B */
    const int want_dot = (n <= (eng_kern_best()->isa == ENG_ISA_C ? 1 : 4) || (n <= ENG_KERN_SMALL_N && !pw1)) &&
                         k->c * k->size * k->size >= ENG_KERN_MAX_VL;
    if ((l.forward == eng_conv_dot_forward) != want_dot)
        fail_msg("%dx%dx%d -> %dx%dx%d (%s): dot %d, expected %d", k->c, k->h, k->w, l.out.c, l.out.h, l.out.w,
                 eng_kern_best()->name, l.forward == eng_conv_dot_forward, want_dot);
    double *want = malloc(sizeof(double) * eng_shape_size(l.out)), *mag = malloc(sizeof(double) * eng_shape_size(l.out));
    assert_non_null(want);
    assert_non_null(mag);
    conv_ref_f64(&l, in, want, mag);
    float *got = run_threads(&l, in, 1, NULL, NULL);
    for (size_t i = 0; i < eng_shape_size(l.out); i++)
        if (!(fabs((double)got[i] - want[i]) <= dot_tol(mag[i]) + 1e-7 * fabs(want[i])))
            fail_msg("%dx%dx%d k%d s%d -> %d filters, output %zu: %.9g, expected %.9g (terms %.3g)", k->c, k->h,
                     k->w, k->size, k->stride, k->filters, i, (double)got[i], want[i], mag[i]);
    for (int threads = 2; threads <= 3; threads++) {
        float *again = run_threads(&l, in, threads, NULL, NULL);
        assert_memory_equal(got, again, sizeof(float) * eng_shape_size(l.out));
        free(again);
    }
    free(got);
    free(want);
    free(mag);
    free(w);
    free(bias);
    free(pw);
    free(pb);
    free(in);
}

static void test_kern_conv_dot_layer_matches_naive(void **state)
{
    (void)state;
    rng_state = 31;
    const struct dot_case cases[] = {
        /* the recognizer's: 3x3 stride 2 'valid' on 4x4 -> 1x1, and the 1x1 keep_live_tap leaves */
        {256, 4, 4, 256, 3, 2, 0, 0, 1, 1, ENG_ACT_RELU},
        {256, 1, 1, 256, 1, 1, 0, 0, 1, 1, ENG_ACT_LINEAR},
        /* odd channel and filter counts, k tails, 2x2 and 1x2 outputs, 'same' and symmetric padding */
        {37, 5, 5, 19, 3, 2, 0, 0, 1, 0, ENG_ACT_LEAKY},
        {19, 2, 2, 13, 3, 1, 0, 1, 0, 1, ENG_ACT_RELU},
        {7, 1, 3, 9, 3, 2, 1, 0, 1, 1, ENG_ACT_LINEAR},
        {97, 1, 1, 67, 1, 1, 0, 0, 1, 0, ENG_ACT_LOGISTIC}, /* past conv_pw.c's limits (k > 64, m > 48) */
        {5, 3, 3, 11, 3, 1, 0, 0, 0, 0, ENG_ACT_RELU}, /* k = 45, 1x1 output */
        /* 5..16 pixels, the staged small-n way: the recognizer's 4x4 and 3x3 layers, odd shapes */
        {256, 4, 4, 256, 3, 1, 0, 1, 1, 1, ENG_ACT_RELU},
        {128, 8, 8, 256, 3, 2, 0, 0, 1, 1, ENG_ACT_RELU},
        {17, 3, 3, 8, 3, 1, 0, 1, 1, 0, ENG_ACT_LINEAR},
        {19, 5, 7, 13, 3, 2, 0, 1, 0, 1, ENG_ACT_LEAKY}, /* 3x4, 'same' pads bottom/right only */
        {7, 3, 3, 9, 3, 1, 1, 0, 1, 0, ENG_ACT_TANH},
        /* not taken (more pixels, or k under a vector): conv.c's way, still checked against naive */
        {9, 4, 5, 8, 3, 1, 0, 1, 1, 0, ENG_ACT_LINEAR},
        {1, 2, 2, 5, 3, 1, 0, 1, 1, 0, ENG_ACT_LINEAR},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_dot_case(&cases[i]);
}

/* The window maximum with the padding never winning (pool.c's semantics), one element at a time. */
static float naive_max(const float *plane, int h, int w, int size, int iy0, int ix0)
{
    float best = -FLT_MAX;
    for (int y = iy0; y < iy0 + size; y++)
        for (int x = ix0; x < ix0 + size; x++)
            if (y >= 0 && y < h && x >= 0 && x < w && plane[(size_t)y * w + x] > best)
                best = plane[(size_t)y * w + x];
    return best;
}

static void test_kern_maxpool3_s2_matches_naive(void **state)
{
    (void)state;
    rng_state = 37;
    const struct { int c, h, w, pad; } shapes[] = {
        {32, 72, 72, 0}, /* the recognizer's */
        {3, 9, 11, 0},   {2, 10, 7, 1}, {3, 13, 40, 2}, {1, 3, 3, 0}, {2, 5, 37, 1},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        struct eng_layer l = layer_new(ENG_LAYER_MAXPOOL, 0, shapes[i].c, shapes[i].h, shapes[i].w);
        l.p.pool = (struct eng_pool){.size = 3, .stride = 2, .pad = shapes[i].pad};
        char why[256] = "";
        setup_ok(eng_maxpool_setup(&l, why, sizeof why), why);
        float *in = floats_random(eng_shape_size(l.in));
        for (int threads = 1; threads <= 2; threads++) {
            float *got = run_threads(&l, in, threads, NULL, NULL);
            const int off = -l.p.pool.pad / 2;
            for (int c = 0; c < l.out.c; c++)
                for (int oy = 0; oy < l.out.h; oy++)
                    for (int ox = 0; ox < l.out.w; ox++) {
                        const float want = naive_max(in + (size_t)c * l.in.h * l.in.w, l.in.h, l.in.w, 3,
                                                     off + 2 * oy, off + 2 * ox);
                        const float g = got[((size_t)c * l.out.h + oy) * l.out.w + ox];
                        if (g != want)
                            fail_msg("%dx%dx%d pad %d: out[%d][%d][%d] = %.9g, expected %.9g", l.in.c, l.in.h,
                                     l.in.w, l.p.pool.pad, c, oy, ox, (double)g, (double)want);
                    }
            free(got);
        }
        free(in);
    }
}

/* TF 'valid' 2x2 stride-2 average pooling (the recognizer's down blocks, odd and even sizes): exactly the
 * general window loop's sums, 0 + the top row's pair + the bottom row's pair, over 4. */
static void test_kern_avgpool2_s2_matches_naive_exactly(void **state)
{
    (void)state;
    rng_state = 41;
    const struct { int c, h, w; } shapes[] = {{32, 35, 35}, {3, 4, 4}, {2, 5, 8}, {5, 2, 3}, {1, 17, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        struct eng_layer l = layer_new(ENG_LAYER_AVGPOOL, 0, shapes[i].c, shapes[i].h, shapes[i].w);
        l.p.pool = (struct eng_pool){.size = 2, .stride = 2};
        char why[256] = "";
        setup_ok(eng_avgpool_setup(&l, why, sizeof why), why);
        float *in = floats_random(eng_shape_size(l.in));
        float *got = run_threads(&l, in, 1, NULL, NULL);
        for (int c = 0; c < l.out.c; c++)
            for (int oy = 0; oy < l.out.h; oy++)
                for (int ox = 0; ox < l.out.w; ox++) {
                    float sum = 0.0f;
                    for (int ky = 0; ky < 2; ky++)
                        for (int kx = 0; kx < 2; kx++)
                            sum += in[((size_t)c * l.in.h + 2 * oy + ky) * l.in.w + 2 * ox + kx];
                    const float want = sum / 4.0f, g = got[((size_t)c * l.out.h + oy) * l.out.w + ox];
                    if (memcmp(&g, &want, sizeof g) != 0)
                        fail_msg("%dx%dx%d: out[%d][%d][%d] = %.9g, expected %.9g", l.in.c, l.in.h, l.in.w, c, oy,
                                 ox, (double)g, (double)want);
                }
        free(got);
        free(in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kern_gemm_dot_matches_naive_every_set),
        cmocka_unit_test(test_kern_conv_dot_layer_matches_naive),
        cmocka_unit_test(test_kern_maxpool3_s2_matches_naive),
        cmocka_unit_test(test_kern_avgpool2_s2_matches_naive_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
