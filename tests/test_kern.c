/* test_kern.c - the per-instruction-set kernels (engine/kern.h) against naive references: every set
 * this processor runs (C always; AVX2 and AVX-512 where supported, reported when skipped), on sizes
 * that hit the full register tiles, the one-vector stretches and the scalar tails, and on sub-ranges
 * with guard values around them so a write outside the range fails. */
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

static const enum eng_act all_acts[] = {ENG_ACT_LINEAR, ENG_ACT_LEAKY,    ENG_ACT_RELU, ENG_ACT_LOGISTIC,
                                        ENG_ACT_TANH,   ENG_ACT_MISH,     ENG_ACT_SWISH};

/* The sets to test; prints the ones this processor cannot run, so a skip is visible. */

/* eng_kern_widest is the widest set that runs; eng_kern_best is the set VISIOND_KERNELS forces (scripts/test
 * runs the suite once per set), else the widest. */
static void test_kern_best_is_widest_supported(void **state)
{
    (void)state;
    const struct eng_kern *best = eng_kern_widest();
    const char *forced = getenv(ENG_KERN_ENV);
    assert_null(eng_kern_env_error());
    if (forced && *forced && strcmp(forced, "auto") != 0)
        assert_string_equal(eng_kern_best()->name, forced);
    else
        assert_ptr_equal(eng_kern_best(), best);
    assert_non_null(best);
    assert_ptr_equal(eng_kern_for(ENG_ISA_C), &eng_kern_c);
    for (int isa = best->isa + 1; isa < ENG_ISA_COUNT; isa++)
        assert_null(eng_kern_for((enum eng_isa)isa));
    assert_null(eng_kern_for(ENG_ISA_COUNT));
}

/* Every activation, every length up to 70 (vector bodies and tails), against eng_act_ref: leaky and
 * relu must be exact (the same float operations), the rest go through eng_act_ref itself. Signs,
 * zeros, large magnitudes and a NaN are included. */
static void test_kern_activation_matches_reference_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 11;
    float x[72], want[72], got[72];
    for (int s = 0; s < n_sets; s++) {
        for (size_t a = 0; a < sizeof all_acts / sizeof all_acts[0]; a++) {
            for (size_t n = 0; n <= 70; n++) {
                for (size_t i = 0; i < n + 2; i++)
                    x[i] = rnd() * (i % 7 == 3 ? 100.0f : 3.0f);
                if (n > 5) {
                    x[1] = 0.0f;
                    x[2] = -0.0f;
                    x[4] = NAN;
                }
                memcpy(want, x, sizeof x);
                memcpy(got, x, sizeof x);
                eng_act_ref(want, n, all_acts[a]);
                sets[s]->act(got, n, all_acts[a]);
                for (size_t i = 0; i < n + 2; i++)
                    if (memcmp(&got[i], &want[i], sizeof(float)) && !(isnan(got[i]) && isnan(want[i])))
                        fail_msg("%s %s n=%zu element %zu: %.9g, expected %.9g", sets[s]->name,
                                 eng_act_name(all_acts[a]), n, i, (double)got[i], (double)want[i]);
            }
        }
    }
}

static void test_kern_activation_leaky_hand_values(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    for (int s = 0; s < n_sets; s++) {
        float x[20];
        for (int i = 0; i < 20; i++)
            x[i] = (float)(i - 10);
        sets[s]->act(x, 20, ENG_ACT_LEAKY);
        for (int i = 0; i < 20; i++)
            assert_true(x[i] == (i < 10 ? 0.1f * (float)(i - 10) : (float)(i - 10)));
    }
}

/* out[o][p] = act(bias[o] + sum_k w[o][k] in[k][p]) in double, for channels [m0, m1), pixels [p0, p1). */
static void pointwise_reference(const struct eng_pw *pw, int m0, int m1, size_t p0, size_t p1,
                                float *out)
{
    for (int o = m0; o < m1; o++) {
        for (size_t p = p0; p < p1; p++) {
            double s = pw->bias ? pw->bias[o] : 0.0;
            for (int k = 0; k < pw->k; k++)
                s += (double)pw->w[(size_t)o * pw->k + k] * pw->in[(size_t)k * pw->plane + p];
            out[(size_t)o * pw->plane + p] = (float)s;
        }
        eng_act_ref(out + (size_t)o * pw->plane + p0, p1 - p0, pw->act);
    }
}

static void check_pointwise(const struct eng_kern *kern, int m, int k, size_t plane, int m0, int m1,
                            size_t p0, size_t p1, int with_bias, enum eng_act act)
{
    float *w = floats_random((size_t)m * k), *bias = floats_random((size_t)m);
    float *in = floats_random((size_t)k * plane);
    float *got = floats_new((size_t)m * plane), *want = floats_new((size_t)m * plane);
    for (size_t i = 0; i < (size_t)m * plane; i++)
        got[i] = want[i] = GUARD;
    const struct eng_pw pw = {.w = w, .bias = with_bias ? bias : NULL, .in = in, .out = got,
                              .m = m, .k = k, .plane = plane, .act = act};
    kern->pointwise(&pw, m0, m1, p0, p1);
    pointwise_reference(&pw, m0, m1, p0, p1, want);
    for (size_t i = 0; i < (size_t)m * plane; i++) {
        const double tol = want[i] == GUARD ? 0.0 : 1e-5 * (1.0 + sqrt((double)k));
        if (!(fabs((double)got[i] - (double)want[i]) <= tol))
            fail_msg("%s m=%d k=%d plane=%zu [%d,%d)x[%zu,%zu) bias=%d %s: out[%zu][%zu] = %.9g, "
                     "expected %.9g", kern->name, m, k, plane, m0, m1, p0, p1, with_bias,
                     eng_act_name(act), i / plane, i % plane, (double)got[i], (double)want[i]);
    }
    free(w);
    free(bias);
    free(in);
    free(got);
    free(want);
}

/* Whole layers: channel counts around the register tile (1..17) and pixel counts around the vector
 * lengths 4, 8, 16 and the 2-vector tiles (1..70, 100). */
static void test_kern_pointwise_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 5;
    const int ms[] = {1, 3, 4, 7, 8, 9, 16, 17, 48};
    const int ks[] = {1, 2, 8, 13, 32, 64, 97, 193}; /* past 64: the small-m layers (conv_pw.c) */
    const size_t planes[] = {1, 3, 4, 8, 15, 16, 17, 31, 32, 33, 47, 64, 70, 100};
    const enum eng_act acts[] = {ENG_ACT_LINEAR, ENG_ACT_LEAKY, ENG_ACT_RELU, ENG_ACT_LOGISTIC};
    for (int s = 0; s < n_sets; s++)
        for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
            for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++)
                for (size_t c = 0; c < sizeof planes / sizeof planes[0]; c++) {
                    const size_t i = a + b + c;
                    check_pointwise(sets[s], ms[a], ks[b], planes[c], 0, ms[a], 0, planes[c],
                                    (int)(i % 3 != 0), acts[i % 4]);
                }
}

/* Sub-ranges, as a thread team splits a layer: only [m0, m1) x [p0, p1) is written. */
static void test_kern_pointwise_sub_range_writes_only_its_range(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 9;
    for (int s = 0; s < n_sets; s++) {
        check_pointwise(sets[s], 20, 16, 100, 3, 17, 5, 77, 1, ENG_ACT_LEAKY);
        check_pointwise(sets[s], 20, 16, 100, 0, 20, 33, 34, 1, ENG_ACT_RELU);
        check_pointwise(sets[s], 20, 16, 100, 8, 16, 32, 96, 0, ENG_ACT_LINEAR);
        check_pointwise(sets[s], 20, 16, 100, 19, 20, 0, 100, 1, ENG_ACT_MISH);
        check_pointwise(sets[s], 20, 16, 100, 4, 4, 0, 100, 1, ENG_ACT_LEAKY); /* empty */
    }
}

/* The conv layer routes pointwise layers of up to 64 input channels or up to 48 outputs per group to
 * the direct kernel, and its output (groups included) matches the naive reference. */
static void test_kern_conv_layer_pointwise_direct_matches_naive(void **state)
{
    (void)state;
    rng_state = 21;
    const int shapes[][4] = {{8, 48, 1, 13}, {16, 20, 2, 9}, {64, 16, 1, 7}, {3, 5, 1, 1},
                             {193, 48, 1, 11}, {272, 33, 1, 5}, {130, 96, 2, 9}, {8, 48, 1, 41},
                             {3, 13, 1, 70}, {24, 64, 2, 37}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int c = shapes[i][0], filters = shapes[i][1], groups = shapes[i][2], hw = shapes[i][3];
        float *w = floats_random((size_t)filters * (c / groups)), *bias = floats_random((size_t)filters);
        float *in = floats_random((size_t)c * hw * hw);
        struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, c, hw, hw);
        l.p.conv = (struct eng_conv){.filters = filters, .size = 1, .stride = 1, .groups = groups,
                                     .act = ENG_ACT_LEAKY, .weights = w, .bias = bias};
        char why[256] = "";
        setup_ok(eng_conv_setup(&l, why, sizeof why), why);
        assert_true(l.forward == eng_conv_pointwise_forward);
        float *got = run(&l, in, NULL);
        const size_t plane = (size_t)hw * hw;
        for (int g = 0; g < groups; g++) {
            const int m = filters / groups, k = c / groups;
            const struct eng_pw pw = {.w = w + (size_t)g * m * k, .bias = bias + (size_t)g * m,
                                      .in = in + (size_t)g * k * plane, .m = m, .k = k,
                                      .plane = plane, .act = ENG_ACT_LEAKY};
            float *want = floats_new((size_t)m * plane);
            pointwise_reference(&pw, 0, m, 0, plane, want);
            for (size_t j = 0; j < (size_t)m * plane; j++)
                if (!(fabs((double)got[(size_t)g * m * plane + j] - (double)want[j]) <= 1e-4))
                    fail_msg("shape %zu group %d element %zu: %.9g, expected %.9g", i, g, j,
                             (double)got[(size_t)g * m * plane + j], (double)want[j]);
            free(want);
        }
        free(got);
        free(w);
        free(bias);
        free(in);
    }
    /* more input channels and outputs go to the GEMM */
    const float w[65 * 49] = {0};
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, 65, 4, 4);
    l.p.conv = (struct eng_conv){.filters = 49, .size = 1, .stride = 1, .groups = 1, .weights = w};
    char why[256] = "";
    setup_ok(eng_conv_setup(&l, why, sizeof why), why);
    assert_true(l.forward != eng_conv_pointwise_forward);
}

/* conv_pw.c runs layers with few outputs in stretches of pixels, a few channels at a time: the bits
 * are those of one kernel call over the whole plane (planes long enough for several stretches, tails
 * shorter than a tile, channel counts not a multiple of the pass). */
static void test_kern_conv_layer_pointwise_stretches_same_bits(void **state)
{
    (void)state;
    rng_state = 23;
    const int shapes[][3] = {{8, 48, 41}, {3, 13, 70}, {16, 64, 45}, {33, 9, 29}, {64, 17, 23}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int c = shapes[i][0], filters = shapes[i][1], hw = shapes[i][2];
        float *w = floats_random((size_t)filters * c), *bias = floats_random((size_t)filters);
        float *in = floats_random((size_t)c * hw * hw);
        struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, c, hw, hw);
        l.p.conv = (struct eng_conv){.filters = filters, .size = 1, .stride = 1, .groups = 1,
                                     .act = ENG_ACT_LEAKY, .weights = w, .bias = bias};
        char why[256] = "";
        setup_ok(eng_conv_setup(&l, why, sizeof why), why);
        assert_true(l.forward == eng_conv_pointwise_forward);
        float *got = run(&l, in, NULL);
        const size_t plane = (size_t)hw * hw;
        float *want = floats_new((size_t)filters * plane);
        const struct eng_pw pw = {.w = w, .bias = bias, .in = in, .out = want, .m = filters, .k = c,
                                  .plane = plane, .act = ENG_ACT_LEAKY};
        eng_kern_best()->pointwise(&pw, 0, filters, 0, plane);
        if (memcmp(got, want, sizeof(float) * (size_t)filters * plane) != 0)
            fail_msg("shape %zu: the layer's bits differ from one call's", i);
        free(want);
        free(got);
        free(w);
        free(bias);
        free(in);
    }
}

/* A conv with a 2x2 stride-2 TF 'same' max-pool folded into its output pass by `fold` (conv_direct.c,
 * conv_pw.c): exactly the bits of the conv layer then the maxpool layer, and within 1e-5 of a naive
 * double conv + pool. The conv output's height and width must be alike odd or even (the maxpool
 * layer pads both ways alike). */
static void pool2_fold_case(int c, int h, int w, int filters, int k, int (*fold)(struct eng_layer *))
{
    float *wt = floats_random((size_t)filters * c * k * k), *bias = floats_random((size_t)filters);
    float *in = floats_random((size_t)c * h * w);
    struct eng_layer conv = layer_new(ENG_LAYER_CONV, 0, c, h, w);
    conv.p.conv = (struct eng_conv){.filters = filters, .size = k, .stride = 1, .groups = 1,
                                    .act = ENG_ACT_LEAKY, .weights = wt, .bias = bias};
    char why[256] = "";
    setup_ok(eng_conv_setup(&conv, why, sizeof why), why);
    struct eng_layer fused = conv;
    assert_int_equal(fold(&fused), 1);
    struct eng_layer pool = layer_new(ENG_LAYER_MAXPOOL, 1, filters, conv.out.h, conv.out.w);
    int o, before, after;
    eng_tf_same_pad(conv.out.h, 2, 2, &o, &before, &after);
    pool.p.pool = (struct eng_pool){.size = 2, .stride = 2, .pad = before + after};
    setup_ok(eng_maxpool_setup(&pool, why, sizeof why), why);
    assert_int_equal(fused.out.c, pool.out.c);
    assert_int_equal(fused.out.h, pool.out.h);
    assert_int_equal(fused.out.w, pool.out.w);
    float *conv_out = run(&conv, in, NULL), *want = run(&pool, conv_out, NULL), *got = run(&fused, in, NULL);
    const int oh = conv.out.h, ow = conv.out.w;
    for (int f = 0; f < filters; f++)
        for (int py = 0; py < pool.out.h; py++)
            for (int px = 0; px < pool.out.w; px++) {
                double best = -INFINITY;
                for (int y = 2 * py; y < 2 * py + 2 && y < oh; y++)
                    for (int x = 2 * px; x < 2 * px + 2 && x < ow; x++) {
                        double sum = bias[f];
                        for (int ch = 0; ch < c; ch++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++)
                                    sum += (double)wt[((f * c + ch) * k + ky) * k + kx] *
                                           in[((size_t)ch * h + y + ky) * w + x + kx];
                        sum = sum > 0 ? sum : 0.1 * sum;
                        best = sum > best ? sum : best;
                    }
                const size_t j = ((size_t)f * pool.out.h + py) * pool.out.w + px;
                if (memcmp(&got[j], &want[j], sizeof got[j]) != 0 || !(fabs(got[j] - best) <= 1e-5))
                    fail_msg("%dx%dx%d -> %d, %dx%d: out[%d][%d][%d] = %.9g, conv + pool %.9g, naive %.9g", c,
                             h, w, filters, k, k, f, py, px, (double)got[j], (double)want[j], best);
            }
    free(conv_out);
    free(want);
    free(got);
    free(wt);
    free(bias);
    free(in);
}

/* Layers a fold does not take are left as they are. */
static void pool2_fold_refused(struct eng_layer l, int (*fold)(struct eng_layer *))
{
    static const float w[16 * 128 * 9];
    l.p.conv.weights = w;
    char why[256] = "";
    setup_ok(eng_conv_setup(&l, why, sizeof why), why);
    const struct eng_layer before = l;
    assert_int_equal(fold(&l), 0);
    assert_memory_equal(&l, &before, sizeof l);
}

/* The direct stride-1 unpadded conv (the face detector's first layer): even and odd outputs. */
static void test_kern_conv_direct_pool2_matches_conv_then_pool(void **state)
{
    (void)state;
    rng_state = 37;
    pool2_fold_case(3, 20, 70, 16, 3, eng_conv_direct_pool2_setup);
    pool2_fold_case(3, 21, 69, 5, 3, eng_conv_direct_pool2_setup);
    pool2_fold_case(2, 11, 35, 9, 3, eng_conv_direct_pool2_setup);
    pool2_fold_case(1, 5, 37, 8, 5, eng_conv_direct_pool2_setup);
    struct eng_layer padded = layer_new(ENG_LAYER_CONV, 0, 3, 20, 40);
    padded.p.conv = (struct eng_conv){.filters = 8, .size = 3, .stride = 1, .pad = 1, .groups = 1};
    pool2_fold_refused(padded, eng_conv_direct_pool2_setup);
}

/* The direct pointwise conv (the face detector's 1x1 layers before a pool): rows of whole vectors,
 * partial ones, one row; refused below ENG_KERN_MAX_VL columns and where sgemm computes the layer. */
static void test_kern_conv_pointwise_pool2_matches_conv_then_pool(void **state)
{
    (void)state;
    rng_state = 41;
    pool2_fold_case(16, 8, 32, 32, 1, eng_conv_pointwise_pool2_setup);
    pool2_fold_case(7, 9, 35, 13, 1, eng_conv_pointwise_pool2_setup);
    pool2_fold_case(64, 3, 17, 9, 1, eng_conv_pointwise_pool2_setup);
    pool2_fold_case(5, 1, 33, 3, 1, eng_conv_pointwise_pool2_setup);
    struct eng_layer narrow = layer_new(ENG_LAYER_CONV, 0, 8, 10, ENG_KERN_MAX_VL - 1);
    narrow.p.conv = (struct eng_conv){.filters = 8, .size = 1, .stride = 1, .groups = 1};
    pool2_fold_refused(narrow, eng_conv_pointwise_pool2_setup);
    pool2_fold_case(128, 6, 20, 16, 1, eng_conv_pointwise_pool2_setup); /* few outputs: any k (conv_pw.c) */
    struct eng_layer deep = layer_new(ENG_LAYER_CONV, 0, 128, 10, 40);
    deep.p.conv = (struct eng_conv){.filters = ENG_CONV_PW_MAX_M + 1, .size = 1, .stride = 1, .groups = 1};
    pool2_fold_refused(deep, eng_conv_pointwise_pool2_setup);
    pool2_fold_refused(deep, eng_conv_direct_pool2_setup);
}

/* The pointwise kernel reading input planes in_plane apart (an im2col tile) and writing planes plane
 * apart (the layer's output), as conv.c uses it for GEMMs with k <= 64. */
static void test_kern_pointwise_input_stride_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 31;
    const int m = 11, k = 27;
    const size_t cols = 37, in_plane = 40, plane = 90;
    float *w = floats_random((size_t)m * k), *bias = floats_random((size_t)m);
    float *in = floats_random((size_t)k * in_plane);
    float *got = floats_new((size_t)m * plane);
    for (int s = 0; s < n_sets; s++) {
        for (size_t i = 0; i < (size_t)m * plane; i++)
            got[i] = GUARD;
        const struct eng_pw pw = {.w = w, .bias = bias, .in = in, .out = got, .m = m, .k = k,
                                  .plane = plane, .in_plane = in_plane, .act = ENG_ACT_LEAKY};
        sets[s]->pointwise(&pw, 0, m, 0, cols);
        for (int o = 0; o < m; o++)
            for (size_t p = 0; p < plane; p++) {
                double want = GUARD;
                if (p < cols) {
                    want = bias[o];
                    for (int kk = 0; kk < k; kk++)
                        want += (double)w[(size_t)o * k + kk] * in[(size_t)kk * in_plane + p];
                    want = want > 0 ? want : 0.1 * want;
                }
                if (!(fabs((double)got[(size_t)o * plane + p] - want) <= 1e-5 * (1.0 + sqrt((double)k))))
                    fail_msg("%s: out[%d][%zu] = %.9g, expected %.9g", sets[s]->name, o, p,
                             (double)got[(size_t)o * plane + p], want);
            }
    }
    free(w);
    free(bias);
    free(in);
    free(got);
}

/* C += A B for 1..16 columns: rows around the register tiles (1..17), A and C with leading
 * dimensions wider than their rows, guards around C's columns; every set against double sums. */
static void test_kern_gemm_small_n_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 17;
    const int ms[] = {1, 2, 3, 4, 7, 8, 9, 16, 17};
    const int ks[] = {1, 5, 64, 300};
    for (int s = 0; s < n_sets; s++)
        for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
            for (size_t b = 0; b < sizeof ks / sizeof ks[0]; b++)
                for (int n = 1; n <= ENG_KERN_SMALL_N; n += (n < 4 ? 1 : 3)) {
                    const int m = ms[a], k = ks[b];
                    const size_t lda = (size_t)k + 3, ldc = (size_t)n + 5;
                    float *A = floats_random((size_t)m * lda), *B = floats_random((size_t)k * ENG_KERN_SMALL_N);
                    float *C = floats_random((size_t)m * ldc), *C0 = floats_new((size_t)m * ldc);
                    for (int kk = 0; kk < k; kk++) /* zero beyond n, as the caller pads */
                        for (int j = n; j < ENG_KERN_SMALL_N; j++)
                            B[(size_t)kk * ENG_KERN_SMALL_N + j] = 0.0f;
                    for (int i = 0; i < m; i++)
                        for (size_t j = (size_t)n; j < ldc; j++)
                            C[(size_t)i * ldc + j] = GUARD;
                    memcpy(C0, C, sizeof(float) * (size_t)m * ldc);
                    sets[s]->gemm_small_n(A, lda, B, C, ldc, m, n, k);
                    for (int i = 0; i < m; i++)
                        for (size_t j = 0; j < ldc; j++) {
                            double want = C0[(size_t)i * ldc + j];
                            for (int kk = 0; kk < k && j < (size_t)n; kk++)
                                want += (double)A[(size_t)i * lda + kk] * B[(size_t)kk * ENG_KERN_SMALL_N + j];
                            const double tol = j < (size_t)n ? 1e-5 * (1.0 + sqrt((double)k)) : 0.0;
                            if (!(fabs((double)C[(size_t)i * ldc + j] - want) <= tol))
                                fail_msg("%s m=%d n=%d k=%d: C[%d][%zu] = %.9g, expected %.9g", sets[s]->name,
                                         m, n, k, i, j, (double)C[(size_t)i * ldc + j], want);
                        }
                    free(A);
                    free(B);
                    free(C);
                    free(C0);
                }
}

/* 2x2 max pooling of two rows at stride 2 and 1, every length up to 70 (vector bodies and tails),
 * every set, with a guard after the output: exactly the largest of the four inputs; at stride 1 (all
 * of whose bits pool.c's scalar loop must match) also the zero it picks among signed zeros. */
static void test_kern_maxpool2_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 23;
    float *r0 = floats_random(142), *r1 = floats_random(142), out[71];
    r0[5] = 0.0f, r0[6] = -0.0f, r1[5] = -0.0f, r1[6] = -0.0f; /* stride 1, window 5: zeros of both signs */
    for (int s = 0; s < n_sets; s++)
        for (int stride = 1; stride <= 2; stride++)
            for (int n = 0; n <= 70; n++) {
                for (int i = 0; i <= n; i++)
                    out[i] = GUARD;
                (stride == 2 ? sets[s]->maxpool2 : sets[s]->maxpool2_s1)(r0, r1, out, n);
                for (int i = 0; i < n; i++) {
                    const float *p = r0 + stride * i, *q = r1 + stride * i;
                    const float a = p[1] > p[0] ? p[1] : p[0], b = q[1] > q[0] ? q[1] : q[0];
                    const float want = b > a ? b : a;
                    if (stride == 2 ? out[i] != want : memcmp(&out[i], &want, sizeof want) != 0)
                        fail_msg("%s stride %d n=%d: out[%d] = %g, expected %g", sets[s]->name, stride, n, i,
                                 (double)out[i], (double)want);
                }
                assert_true(out[n] == GUARD);
            }
    free(r0);
    free(r1);
}

/* The one-pass sum of 1..8 inputs with every activation, lengths around the vector widths, every
 * set: the bits of zero plus each input in turn, then the reference activation; nothing written
 * after n. A -0 input alone must come out +0 (the zero the sum starts from). */
static void test_kern_add_act_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 31;
    enum { MAXN = 67 };
    float *ins[ENG_ADD_MAX_INPUTS];
    for (int j = 0; j < ENG_ADD_MAX_INPUTS; j++)
        ins[j] = floats_random(MAXN);
    ins[0][3] = -0.0f;
    float out[MAXN + 1], want[MAXN];
    const int lengths[] = {0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 47, MAXN};
    for (int s = 0; s < n_sets; s++)
        for (size_t a = 0; a < sizeof all_acts / sizeof all_acts[0]; a++)
            for (int k = 1; k <= ENG_ADD_MAX_INPUTS; k++)
                for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
                    const int n = lengths[li];
                    for (int i = 0; i <= n; i++)
                        out[i] = GUARD;
                    for (int i = 0; i < n; i++) {
                        want[i] = 0.0f;
                        for (int j = 0; j < k; j++)
                            want[i] += ins[j][i];
                    }
                    eng_act_ref(want, (size_t)n, all_acts[a]);
                    sets[s]->add_act(out, (const float *const *)ins, k, (size_t)n, all_acts[a]);
                    for (int i = 0; i < n; i++)
                        if (memcmp(&out[i], &want[i], sizeof want[i]) != 0)
                            fail_msg("%s %s k=%d n=%d: out[%d] = %.9g, expected %.9g", sets[s]->name,
                                     eng_act_name(all_acts[a]), k, n, i, (double)out[i], (double)want[i]);
                    assert_true(out[n] == GUARD);
                }
    for (int j = 0; j < ENG_ADD_MAX_INPUTS; j++)
        free(ins[j]);
}

/* The heads' vector logistic against 1 / (1 + exp(-x)) in double, scaled and shifted as a [yolo]
 * layer's x and y (scale_x_y 1 and 2): every length up to past four AVX-512 vectors (the padded
 * tail), values across the clamp (+-87, +-88, +-100, +-inf), signed zeros and NaN; nothing past n
 * written; and each element the same bits whether computed in the body or in a tail. */
static void test_kern_logistic_matches_double_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    const float scales[][2] = {{1.0f, 0.0f}, {2.0f, -0.5f}};
    const float special[] = {0.0f, -0.0f, 87.0f, -87.0f, 88.0f, -88.0f, 100.0f, -100.0f, INFINITY, -INFINITY,
                             1e-8f, -17.3f, 0.34657359f};
    float x[72], got[72];
    rng_state = 29;
    for (int s = 0; s < n_sets; s++) {
        for (size_t k = 0; k < 2; k++) {
            const float sc = scales[k][0], sh = scales[k][1];
            for (size_t n = 0; n <= 70; n++) {
                for (size_t i = 0; i < n; i++)
                    x[i] = i % 5 == 2 ? special[(i / 5 + n) % (sizeof special / sizeof special[0])]
                                      : rnd() * (i % 3 ? 10.0f : 40.0f);
                if (n == 9)
                    x[4] = NAN;
                for (size_t i = n; i < 72; i++)
                    x[i] = GUARD;
                memcpy(got, x, sizeof x);
                sets[s]->logistic(got, n, sc, sh);
                for (size_t i = 0; i < 72; i++) {
                    if (i >= n) {
                        if (got[i] != GUARD)
                            fail_msg("%s n=%zu: element %zu past the end written", sets[s]->name, n, i);
                        continue;
                    }
                    if (isnan(x[i])) {
                        if (!isnan(got[i]))
                            fail_msg("%s: logistic(NaN) = %g", sets[s]->name, (double)got[i]);
                        continue;
                    }
                    const double want = 1.0 / (1.0 + exp(-(double)x[i])) * sc + sh;
                    if (!(fabs(got[i] - want) <= 1e-6 * (fabs(want) + fabs(sh)) + 1e-37))
                        fail_msg("%s scale %g n=%zu x[%zu] = %.9g: %.9g, expected %.9g", sets[s]->name,
                                 (double)sc, n, i, (double)x[i], (double)got[i], want);
                }
                /* the same values one at a time (all tails): the same bits */
                for (size_t i = 0; i < n; i++) {
                    float one = x[i];
                    sets[s]->logistic(&one, 1, sc, sh);
                    if (memcmp(&one, &got[i], sizeof one))
                        fail_msg("%s n=%zu element %zu: %.9g alone, %.9g in the range", sets[s]->name, n,
                                 i, (double)one, (double)got[i]);
                }
            }
        }
    }
}

/* Every row gets its bias (or 0) over exactly cols columns; the gap between rows is untouched. */
static void test_kern_fill_rows_writes_bias_rows_only(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    const float bias[5] = {1.5f, -2.0f, 0.25f, 7.0f, -0.5f};
    for (int s = 0; s < n_sets; s++)
        for (int cols = 0; cols <= 40; cols++) {
            float buf[5 * 45];
            for (int i = 0; i < 5 * 45; i++)
                buf[i] = GUARD;
            const int with_bias = cols % 2;
            sets[s]->fill_rows(buf, 5, cols, 45, with_bias ? bias : NULL);
            for (int o = 0; o < 5; o++)
                for (int i = 0; i < 45; i++) {
                    const float want = i < cols ? (with_bias ? bias[o] : 0.0f) : GUARD;
                    if (buf[o * 45 + i] != want)
                        fail_msg("%s cols=%d row %d column %d: %g, expected %g", sets[s]->name, cols,
                                 o, i, (double)buf[o * 45 + i], (double)want);
                }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kern_best_is_widest_supported),
        cmocka_unit_test(test_kern_activation_matches_reference_every_set),
        cmocka_unit_test(test_kern_activation_leaky_hand_values),
        cmocka_unit_test(test_kern_pointwise_matches_naive_every_set),
        cmocka_unit_test(test_kern_pointwise_sub_range_writes_only_its_range),
        cmocka_unit_test(test_kern_conv_layer_pointwise_direct_matches_naive),
        cmocka_unit_test(test_kern_conv_layer_pointwise_stretches_same_bits),
        cmocka_unit_test(test_kern_conv_direct_pool2_matches_conv_then_pool),
        cmocka_unit_test(test_kern_conv_pointwise_pool2_matches_conv_then_pool),
        cmocka_unit_test(test_kern_pointwise_input_stride_every_set),
        cmocka_unit_test(test_kern_gemm_small_n_matches_naive_every_set),
        cmocka_unit_test(test_kern_maxpool2_matches_naive_every_set),
        cmocka_unit_test(test_kern_add_act_matches_naive_every_set),
        cmocka_unit_test(test_kern_fill_rows_writes_bias_rows_only),
        cmocka_unit_test(test_kern_logistic_matches_double_every_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
