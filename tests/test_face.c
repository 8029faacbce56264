/* test_face.c - the layers face-api's networks need (TF 'same' padding, separable convolution, scale,
 * dense, add, windowed average pooling) against naive references and hand-computed values; context
 * re-binding; the alignment maths and distances; and the real models (models/faces, skipped when
 * absent): load, detect on a demo photo with face-api's numbers, landmarks, descriptors, bad files.
 *
 * Layers are built as the loaders build them: fill a struct eng_layer, call its setup, run forward on
 * buffers of exactly the declared sizes so AddressSanitizer catches any overrun. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "face.h"
#include "layer.h"
#include "net.h"

#ifndef VISIOND_SOURCE_DIR
#define VISIOND_SOURCE_DIR "."
#endif
#ifndef VISIOND_SHARED_DIR
#define VISIOND_SHARED_DIR "../shared"
#endif

#define MODELS_DIR VISIOND_SOURCE_DIR "/models/faces"
#define SAMPLE1 MODELS_DIR "/package/demo/sample1.jpg"
#define JOHNS VISIOND_SHARED_DIR "/faces/dlib_johns"

/* ---- helpers ---------------------------------------------------------------------------------- */

#include "layer_harness.h"

static void assert_floats_near(const float *a, const float *e, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)a[i] - (double)e[i]) <= tol))
            fail_msg("element %zu = %.9g, expected %.9g (tolerance %g)", i, (double)a[i], (double)e[i],
                     tol);
}

#define assert_near(actual, expected, tol)                                                        \
    do {                                                                                          \
        const double a_ = (actual), e_ = (expected);                                              \
        if (!(fabs(a_ - e_) <= (tol)))                                                            \
            fail_msg("%s = %.9g, expected %.9g (tolerance %g)", #actual, a_, e_, (double)(tol));  \
    } while (0)

/* Direct convolution with explicit padding on each side: the reference for every conv below.
 * w is [out][in/groups][k][k]; bias may be NULL. */
static void naive_conv(const float *in, int c, int h, int w, const float *wt, const float *bias,
                       int out_c, int k, int stride, int groups, int pt, int pl, int oh, int ow,
                       float *out)
{
    const int icg = c / groups, ocg = out_c / groups;
    for (int o = 0; o < out_c; o++) {
        const int g = o / ocg;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double acc = bias ? bias[o] : 0.0;
                for (int i = 0; i < icg; i++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = y * stride - pt + ky, ix = x * stride - pl + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            acc += (double)wt[(((size_t)o * icg + i) * k + ky) * k + kx] *
                                   in[((size_t)(g * icg + i) * h + iy) * w + ix];
                        }
                out[((size_t)o * oh + y) * ow + x] = (float)acc;
            }
    }
}

/* ---- TF 'same' padding ------------------------------------------------------------------------ */

static void test_face_tf_same_pad_matches_tensorflow(void **state)
{
    (void)state;
    static const struct {
        int n, k, s, out, before, after;
    } cases[] = {
        {112, 3, 2, 56, 0, 1}, /* face-api's landmark net: only bottom/right */
        {207, 2, 2, 104, 0, 1}, {414, 2, 2, 207, 0, 0}, {13, 2, 1, 13, 0, 1}, {35, 3, 1, 35, 1, 1},
        {7, 5, 1, 7, 2, 2},     {8, 4, 1, 8, 1, 2},     {5, 1, 2, 3, 0, 0},   {1, 3, 2, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int out, before, after;
        eng_tf_same_pad(cases[i].n, cases[i].k, cases[i].s, &out, &before, &after);
        if (out != cases[i].out || before != cases[i].before || after != cases[i].after)
            fail_msg("n=%d k=%d s=%d: got %d (%d, %d), expected %d (%d, %d)", cases[i].n, cases[i].k,
                     cases[i].s, out, before, after, cases[i].out, cases[i].before, cases[i].after);
    }
}

static void test_face_conv_same_stride2_even_input_pads_bottom_right(void **state)
{
    (void)state;
    /* 1 channel 4x4 ramp, 3x3 all-ones kernel, stride 2 'same': out 2x2, padding (0, 1) */
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, 1, 4, 4);
    const float w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    l.p.conv = (struct eng_conv){.filters = 1, .size = 3, .stride = 2, .groups = 1, .same = 1,
                                 .weights = w};
    char why[128] = "";
    setup_ok(eng_conv_setup(&l, why, sizeof why), why);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 2);
    assert_int_equal(l.p.conv.pad_top, 0);
    assert_int_equal(l.p.conv.pad_bottom, 1);
    float in[16];
    for (int i = 0; i < 16; i++)
        in[i] = (float)i;
    float *out = run(&l, in, NULL);
    /* windows rows/cols {0,1,2} and {2,3,(pad)} */
    const float want[4] = {0 + 1 + 2 + 4 + 5 + 6 + 8 + 9 + 10, 2 + 3 + 6 + 7 + 10 + 11,
                           8 + 9 + 10 + 12 + 13 + 14, 10 + 11 + 14 + 15};
    assert_floats_near(out, want, 4, 0);
    free(out);
}

static void test_face_conv_same_and_pad_exclusive(void **state)
{
    (void)state;
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, 1, 4, 4);
    const float w[9] = {0};
    l.p.conv = (struct eng_conv){.filters = 1, .size = 3, .stride = 1, .groups = 1, .same = 1,
                                 .pad = 1, .weights = w};
    char why[128] = "";
    assert_int_equal(eng_conv_setup(&l, why, sizeof why), -1);
    assert_non_null(strstr(why, "exclusive"));
}

/* Random shapes, 'same' and symmetric padding, strides 1 and 2, through the engine's conv (im2col +
 * sgemm for groups == 1, the direct depthwise kernel for groups == channels) against naive_conv. */
static void test_face_conv_same_matches_naive_reference(void **state)
{
    (void)state;
    rng_state = 7;
    static const struct {
        int c, h, w, out, k, s, groups, same, pad;
    } cases[] = {
        {3, 9, 8, 5, 3, 2, 1, 1, 0},  {3, 10, 10, 4, 3, 2, 1, 1, 0}, {4, 7, 11, 6, 3, 1, 1, 1, 0},
        {5, 9, 8, 5, 3, 2, 5, 1, 0},  {6, 12, 12, 6, 3, 2, 6, 1, 0}, {6, 13, 9, 6, 3, 1, 6, 1, 0},
        {4, 8, 8, 4, 3, 1, 4, 0, 1},  {2, 6, 6, 3, 4, 1, 1, 1, 0},   {3, 15, 15, 2, 7, 2, 1, 0, 0},
        {4, 5, 5, 4, 5, 2, 4, 1, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int c = cases[t].c, h = cases[t].h, w = cases[t].w, oc = cases[t].out, k = cases[t].k;
        struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, c, h, w);
        float *wt = floats_random((size_t)oc * (c / cases[t].groups) * k * k);
        float *bias = floats_random((size_t)oc);
        l.p.conv = (struct eng_conv){.filters = oc, .size = k, .stride = cases[t].s,
                                     .groups = cases[t].groups, .same = cases[t].same,
                                     .pad = cases[t].pad, .weights = wt, .bias = bias};
        char why[128] = "";
        setup_ok(eng_conv_setup(&l, why, sizeof why), why);
        int oh = l.out.h, ow = l.out.w, pt = l.p.conv.pad_top, pl = l.p.conv.pad_left;
        if (cases[t].same) {
            int b, a, o;
            eng_tf_same_pad(h, k, cases[t].s, &o, &b, &a);
            assert_int_equal(o, oh);
            assert_int_equal(b, pt);
            eng_tf_same_pad(w, k, cases[t].s, &o, &b, &a);
            assert_int_equal(o, ow);
            assert_int_equal(b, pl);
        }
        float *in = floats_random((size_t)c * h * w);
        float *out = run(&l, in, NULL);
        float *want = floats_new((size_t)oc * oh * ow);
        naive_conv(in, c, h, w, wt, bias, oc, k, cases[t].s, cases[t].groups, pt, pl, oh, ow, want);
        assert_floats_near(out, want, (size_t)oc * oh * ow, 1e-4);
        free(in);
        free(out);
        free(want);
        free(wt);
        free(bias);
    }
}

/* tf.separableConv2d + bias + activation as the engine builds it (depthwise conv with no bias, then a
 * pointwise conv with the bias), against one naive formula. */
static void test_face_separable_conv_matches_naive(void **state)
{
    (void)state;
    rng_state = 11;
    static const struct {
        int c, h, w, out, s;
    } cases[] = {{5, 9, 8, 7, 1}, {8, 14, 14, 16, 2}, {3, 7, 12, 4, 2}, {16, 13, 13, 32, 1}};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const int c = cases[t].c, h = cases[t].h, w = cases[t].w, oc = cases[t].out, s = cases[t].s;
        float *dw = floats_random((size_t)c * 9), *pw = floats_random((size_t)oc * c);
        float *bias = floats_random((size_t)oc);
        struct eng_layer d = layer_new(ENG_LAYER_CONV, 0, c, h, w);
        d.p.conv = (struct eng_conv){.filters = c, .size = 3, .stride = s, .groups = c, .same = 1,
                                     .weights = dw};
        char why[128] = "";
        setup_ok(eng_conv_setup(&d, why, sizeof why), why);
        struct eng_layer p = layer_new(ENG_LAYER_CONV, 1, c, d.out.h, d.out.w);
        p.p.conv = (struct eng_conv){.filters = oc, .size = 1, .stride = 1, .groups = 1,
                                     .weights = pw, .bias = bias, .act = ENG_ACT_RELU};
        setup_ok(eng_conv_setup(&p, why, sizeof why), why);
        assert_int_equal(p.work_floats, 0); /* pointwise: plain GEMM */

        float *in = floats_random((size_t)c * h * w);
        float *mid = run(&d, in, NULL);
        float *out = run(&p, mid, NULL);

        const int oh = d.out.h, ow = d.out.w;
        int o_, pt, pl, a_;
        eng_tf_same_pad(h, 3, s, &o_, &pt, &a_);
        eng_tf_same_pad(w, 3, s, &o_, &pl, &a_);
        float *want = floats_new((size_t)oc * oh * ow);
        for (int o = 0; o < oc; o++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    double acc = bias[o];
                    for (int i = 0; i < c; i++) {
                        double dsum = 0.0;
                        for (int ky = 0; ky < 3; ky++)
                            for (int kx = 0; kx < 3; kx++) {
                                const int iy = y * s - pt + ky, ix = x * s - pl + kx;
                                if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                    dsum += (double)dw[i * 9 + ky * 3 + kx] *
                                            in[((size_t)i * h + iy) * w + ix];
                            }
                        acc += pw[o * c + i] * dsum;
                    }
                    want[((size_t)o * oh + y) * ow + x] = acc > 0 ? (float)acc : 0.0f;
                }
        assert_floats_near(out, want, (size_t)oc * oh * ow, 1e-4);
        free(in);
        free(mid);
        free(out);
        free(want);
        free(dw);
        free(pw);
        free(bias);
    }
}

/* ---- pooling ---------------------------------------------------------------------------------- */

static void test_face_maxpool_tf_same_odd_input(void **state)
{
    (void)state;
    /* 5x5, 2x2 stride 2 'same' (total padding 1, after): 3x3, the last row/column from one cell */
    int o, before, after;
    eng_tf_same_pad(5, 2, 2, &o, &before, &after);
    struct eng_layer l = layer_new(ENG_LAYER_MAXPOOL, 0, 1, 5, 5);
    l.p.pool = (struct eng_pool){.size = 2, .stride = 2, .pad = before + after};
    char why[128] = "";
    setup_ok(eng_maxpool_setup(&l, why, sizeof why), why);
    assert_int_equal(l.out.h, 3);
    float in[25];
    for (int i = 0; i < 25; i++)
        in[i] = (float)(-i); /* the top-left cell of every window is its maximum */
    float *out = run(&l, in, NULL);
    const float want[9] = {0, -2, -4, -10, -12, -14, -20, -22, -24};
    assert_floats_near(out, want, 9, 0);
    free(out);
}

static void test_face_avgpool_window_valid_hand_computed(void **state)
{
    (void)state;
    struct eng_layer l = layer_new(ENG_LAYER_AVGPOOL, 0, 2, 5, 5);
    l.p.pool = (struct eng_pool){.size = 2, .stride = 2};
    char why[128] = "";
    setup_ok(eng_avgpool_setup(&l, why, sizeof why), why);
    assert_int_equal(l.out.c, 2);
    assert_int_equal(l.out.h, 2); /* 'valid': the last row and column are dropped */
    assert_int_equal(l.out.w, 2);
    float in[50];
    for (int i = 0; i < 50; i++)
        in[i] = (float)i;
    float *out = run(&l, in, NULL);
    const float want[8] = {3, 5, 13, 15, 28, 30, 38, 40};
    assert_floats_near(out, want, 8, 0);
    free(out);
}

static void test_face_avgpool_size0_stays_global(void **state)
{
    (void)state;
    struct eng_layer l = layer_new(ENG_LAYER_AVGPOOL, 0, 2, 2, 2);
    char why[128] = "";
    setup_ok(eng_avgpool_setup(&l, why, sizeof why), why);
    const float in[8] = {1, 2, 3, 4, -1, -1, -1, 3};
    float *out = run(&l, in, NULL);
    const float want[2] = {2.5f, 0.0f};
    assert_floats_near(out, want, 2, 0);
    free(out);
    l.p.pool = (struct eng_pool){.size = 3, .stride = 1};
    assert_int_equal(eng_avgpool_setup(&l, why, sizeof why), -1); /* 3x3 window on 2x2 */
}

/* ---- dense, add ------------------------------------------------------------------------ */

static void test_face_dense_matches_naive_chw_flatten(void **state)
{
    (void)state;
    rng_state = 3;
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        struct eng_layer l = layer_new(ENG_LAYER_DENSE, 0, 3, 2, 2);
        float *w = floats_random(5 * 12), *b = floats_random(5);
        l.p.dense = (struct eng_dense){.outputs = 5, .weights = w, .bias = with_bias ? b : NULL};
        char why[128] = "";
        setup_ok(eng_dense_setup(&l, why, sizeof why), why);
        assert_int_equal(l.out.c, 5);
        assert_int_equal(l.out.h, 1);
        float *in = floats_random(12);
        float *out = run(&l, in, NULL);
        for (int o = 0; o < 5; o++) {
            double acc = with_bias ? b[o] : 0.0;
            for (int i = 0; i < 12; i++)
                acc += (double)w[o * 12 + i] * in[i];
            assert_near(out[o], acc, 1e-5);
        }
        free(in);
        free(out);
        free(w);
        free(b);
    }
}

static void test_face_add_sums_inputs_then_activates(void **state)
{
    (void)state;
    struct eng_layer layers[4];
    for (int i = 0; i < 3; i++)
        layers[i] = layer_new(ENG_LAYER_CONV, i, 1, 1, 4);
    layers[3] = layer_new(ENG_LAYER_ADD, 3, 1, 1, 4);
    layers[3].p.add = (struct eng_add){.n = 3, .inputs = {0, 1, 2}, .act = ENG_ACT_RELU};
    char why[128] = "";
    setup_ok(eng_add_setup(&layers[3], layers, why, sizeof why), why);
    float a[4] = {1, 2, 3, -9}, b[4] = {10, 20, 30, 1}, c[4] = {-100, 0.5f, 0, 1};
    float *outs[3] = {a, b, c};
    float *out = run(&layers[3], c, outs);
    const float want[4] = {0, 22.5f, 33, 0};
    assert_floats_near(out, want, 4, 0);
    free(out);
}

static void test_face_add_zero_extend_like_resnet_down_block(void **state)
{
    (void)state;
    /* pooled shortcut 1 x 3 x 3, conv branch 2 x 2 x 2: output 2 x 3 x 3, each added at the origin */
    struct eng_layer layers[3];
    layers[0] = layer_new(ENG_LAYER_AVGPOOL, 0, 1, 3, 3);
    layers[1] = layer_new(ENG_LAYER_CONV, 1, 2, 2, 2);
    layers[2] = layer_new(ENG_LAYER_ADD, 2, 2, 2, 2);
    layers[2].p.add = (struct eng_add){.n = 2, .inputs = {0, 1}, .zero_extend = 1};
    char why[128] = "";
    setup_ok(eng_add_setup(&layers[2], layers, why, sizeof why), why);
    assert_int_equal(layers[2].out.c, 2);
    assert_int_equal(layers[2].out.h, 3);
    assert_int_equal(layers[2].out.w, 3);
    float pooled[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    float conv[8] = {10, 20, 30, 40, 50, 60, 70, 80};
    float *outs[2] = {pooled, conv};
    float *out = run(&layers[2], conv, outs);
    const float want[18] = {11, 22, 3, 34, 45, 6, 7, 8, 9, /* channel 1: the branch only */
                            50, 60, 0, 70, 80, 0, 0, 0, 0};
    assert_floats_near(out, want, 18, 0);
    free(out);

    layers[2].p.add.zero_extend = 0;
    assert_int_equal(eng_add_setup(&layers[2], layers, why, sizeof why), -1);
    layers[2].p.add = (struct eng_add){.n = 2, .inputs = {0, 2}};
    assert_int_equal(eng_add_setup(&layers[2], layers, why, sizeof why), -1); /* not earlier */
}

/* ---- contexts --------------------------------------------------------------------------------- */

static struct eng_net *tiny_net(int side, const float *w)
{
    struct eng_net *net = calloc(1, sizeof *net);
    assert_non_null(net);
    net->layers = calloc(2, sizeof *net->layers);
    assert_non_null(net->layers);
    net->input = (struct eng_shape){1, side, side};
    net->n_layers = 2;
    char why[128] = "";
    net->layers[0] = layer_new(ENG_LAYER_CONV, 0, 1, side, side);
    net->layers[0].p.conv = (struct eng_conv){.filters = 1, .size = 3, .stride = 1, .groups = 1,
                                              .same = 1, .weights = w};
    setup_ok(eng_conv_setup(&net->layers[0], why, sizeof why), why);
    net->layers[1] = layer_new(ENG_LAYER_MAXPOOL, 1, 1, side, side);
    net->layers[1].p.pool = (struct eng_pool){.size = 2, .stride = 2};
    setup_ok(eng_maxpool_setup(&net->layers[1], why, sizeof why), why);
    return net;
}

static void test_face_ctx_bind_smaller_net_fits_larger_refused(void **state)
{
    (void)state;
    const float w[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0}; /* identity */
    struct eng_net *small = tiny_net(4, w), *big = tiny_net(8, w);
    struct eng_ctx *ctx = eng_ctx_new(big, NULL);
    assert_non_null(ctx);
    assert_int_equal(eng_ctx_bind(ctx, small), 0);
    for (int i = 0; i < 16; i++)
        ctx->input[i] = (float)i;
    eng_net_forward(small, ctx);
    const float want[4] = {5, 7, 13, 15};
    assert_floats_near(eng_ctx_output(ctx, 1), want, 4, 0);
    assert_int_equal(eng_ctx_bind(ctx, big), 0);

    struct eng_ctx *ctx2 = eng_ctx_new(small, NULL);
    assert_non_null(ctx2);
    assert_int_equal(eng_ctx_bind(ctx2, big), -1);
    assert_ptr_equal(ctx2->net, small); /* unchanged */
    eng_ctx_free(ctx);
    eng_ctx_free(ctx2);
    eng_net_free(small);
    eng_net_free(big);
}

/* ---- alignment and distances ------------------------------------------------------------------ */

static void fill_face_points(struct eng_face_point *p, float lx, float ly, float rx, float ry, float mx,
                             float my)
{
    for (int i = 0; i < ENG_FACE_LANDMARKS; i++)
        p[i] = (struct eng_face_point){-1000, -1000}; /* not used by the alignment */
    /* the eye and mouth groups average to (lx, ly), (rx, ry), (mx, my) */
    for (int i = 36; i < 42; i++)
        p[i] = (struct eng_face_point){lx + (i % 2 ? 3.0f : -3.0f), ly};
    for (int i = 42; i < 48; i++)
        p[i] = (struct eng_face_point){rx, ry + (i % 2 ? 2.0f : -2.0f)};
    for (int i = 48; i < 68; i++)
        p[i] = (struct eng_face_point){mx + (i % 2 ? 5.0f : -5.0f), my};
}

static void test_face_align_dlib_hand_computed(void **state)
{
    (void)state;
    struct eng_face_point p[ENG_FACE_LANDMARKS];
    fill_face_points(p, 140, 150, 180, 150, 160, 190);
    /* |M - L| = |M - R| = sqrt(20^2 + 40^2) = 44.7214; size = floor(44.7214 / 0.45) = 99;
     * centre (160, 163.333); x = floor(160 - 49.5) = 110; y = floor(163.333 - 42.57) = 120 */
    struct eng_face_rect r = eng_face_align_dlib(p, 300, 300);
    assert_int_equal(r.x, 110);
    assert_int_equal(r.y, 120);
    assert_int_equal(r.w, 99);
    assert_int_equal(r.h, 99);
    /* face-api bounds the size by the landmark crop's size plus the corner (its quirk): */
    r = eng_face_align_dlib(p, 50, 300);
    assert_int_equal(r.w, 99); /* min(99, 50 + 110) */
    fill_face_points(p, 20, 30, 60, 30, 40, 70);
    r = eng_face_align_dlib(p, 40, 20); /* corner clamped at 0, then min(99, 40 + 0) */
    assert_int_equal(r.x, 0);
    assert_int_equal(r.y, 0);
    assert_int_equal(r.w, 40);
    assert_int_equal(r.h, 20);
}

static void test_face_distances_squared_and_euclidean(void **state)
{
    (void)state;
    float a[ENG_FACE_DESCRIPTOR] = {0}, b[ENG_FACE_DESCRIPTOR] = {0};
    b[0] = 3.0f;
    b[127] = -4.0f;
    assert_near(eng_face_distance_sq(a, b), 25.0, 0);
    assert_near(eng_face_distance(a, b), 5.0, 0);
    assert_near(eng_face_distance(b, a), 5.0, 0);
    assert_near(eng_face_distance(b, b), 0.0, 0);
    rng_state = 5;
    for (int i = 0; i < ENG_FACE_DESCRIPTOR; i++) {
        a[i] = rnd();
        b[i] = rnd();
    }
    double sq = 0.0;
    for (int i = 0; i < ENG_FACE_DESCRIPTOR; i++)
        sq += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    assert_near(eng_face_distance_sq(a, b), sq, 1e-12);
    assert_near(eng_face_distance(a, b) * eng_face_distance(a, b), sq, 1e-9);
}

/* ---- choosing faces --------------------------------------------------------------------------- */

static struct eng_face face_at(float x1, float y1, float x2, float y2, float score)
{
    struct eng_face f = {0};
    f.box = (struct eng_box){x1, y1, x2, y2};
    f.score = score;
    return f;
}

static void test_face_sort_largest_area_first_ties_keep_order(void **state)
{
    (void)state;
    struct eng_face f[5] = {
        face_at(0, 0, 10, 10, 0.9f),   /* 100 */
        face_at(0, 0, 20, 20, 0.8f),   /* 400 */
        face_at(5, 5, 15, 15, 0.7f),   /* 100, after the first 100 */
        face_at(-5, -5, 20, 30, 0.6f), /* 875: unclipped, reaching past the border */
        face_at(0, 0, 40, 10, 0.5f),   /* 400, after the first 400 */
    };
    eng_face_sort_largest(f, 5);
    const float want_score[5] = {0.6f, 0.8f, 0.5f, 0.9f, 0.7f};
    for (int i = 0; i < 5; i++)
        assert_true(f[i].score == want_score[i]);
    eng_face_sort_largest(f, 0); /* nothing to do, no access */
    eng_face_sort_largest(f, 1);
    assert_true(f[0].score == 0.6f);
}

static void test_face_box_crop_clipped_floored_outside_empty(void **state)
{
    (void)state;
    struct eng_box b = {10.7f, 20.2f, 50.9f, 60.5f};
    struct eng_face_rect r = eng_face_box_crop(&b, 100, 80); /* inside: x, y, w, h floored */
    assert_int_equal(r.x, 10);
    assert_int_equal(r.y, 20);
    assert_int_equal(r.w, 40); /* floor(50.9 - 10.7) */
    assert_int_equal(r.h, 40); /* floor(60.5 - 20.2) */
    b = (struct eng_box){-30.5f, -10.0f, 40.0f, 95.0f}; /* past the top-left and bottom borders */
    r = eng_face_box_crop(&b, 100, 80);
    assert_int_equal(r.x, 0);
    assert_int_equal(r.y, 0);
    assert_int_equal(r.w, 40);
    assert_int_equal(r.h, 80);
    b = (struct eng_box){-48.1f, 1524.8f, 489.3f, 2040.4f}; /* below the image: in the detector's padding */
    r = eng_face_box_crop(&b, 1920, 1280);
    assert_true(r.h <= 0);
    b = (struct eng_box){2000.0f, 10.0f, 2100.0f, 50.0f}; /* right of it */
    assert_true(eng_face_box_crop(&b, 1920, 1280).w <= 0);
    b = (struct eng_box){10.0f, 10.0f, 10.0f, 50.0f}; /* empty */
    assert_true(eng_face_box_crop(&b, 100, 80).w <= 0);
    b = (struct eng_box){NAN, 10.0f, 20.0f, 50.0f};
    r = eng_face_box_crop(&b, 100, 80);
    assert_true(r.w <= 0 || r.h <= 0);
}

static void test_face_select_largest_best_several_and_none(void **state)
{
    (void)state;
    const struct eng_face f[4] = {
        face_at(0, 0, 10, 10, 0.70f),
        face_at(0, 0, 30, 30, 0.60f), /* largest */
        face_at(0, 0, 12, 12, 0.95f), /* best */
        face_at(0, 0, 30, 30, 0.95f), /* as large as [1], as good as [2]: never picked, ties go first */
    };
    assert_int_equal(eng_face_select(f, 4, ENG_FACE_SELECT_LARGEST), 1);
    assert_int_equal(eng_face_select(f, 4, ENG_FACE_SELECT_BEST), 2);
    assert_int_equal(eng_face_select(f, 1, ENG_FACE_SELECT_LARGEST), 0); /* one face: that one */
    assert_int_equal(eng_face_select(f, 1, ENG_FACE_SELECT_BEST), 0);
    assert_int_equal(eng_face_select(f, 0, ENG_FACE_SELECT_LARGEST), -1); /* none */
    assert_int_equal(eng_face_select(NULL, 0, ENG_FACE_SELECT_BEST), -1);
}

/* ---- the real models -------------------------------------------------------------------------- */

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

struct real {
    struct eng_face_models *m;
    struct eng_face_ctx *ctx;
};

static int real_setup(void **state)
{
    struct real *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    *state = r;
    if (!exists(MODELS_DIR "/" ENG_FACE_RECOGNITION_MANIFEST))
        return 0;
    struct eng_err err = {0};
    const struct eng_face_load_opts opts = {.max_input_size = 608};
    if (eng_face_models_load(MODELS_DIR, &opts, &r->m, &err)) {
        fprintf(stderr, "load: %s: %s\n", err.where, err.msg);
        return -1;
    }
    r->ctx = eng_face_ctx_new(r->m, &err);
    return r->ctx ? 0 : -1;
}

static int real_teardown(void **state)
{
    struct real *r = *state;
    eng_face_ctx_free(r->ctx);
    eng_face_models_free(r->m);
    free(r);
    return 0;
}

#define REQUIRE_MODELS(r)                                                                         \
    do {                                                                                          \
        if (!(r)->m) {                                                                            \
            fprintf(stderr, "SKIP: no models in " MODELS_DIR " (run scripts/fetch-models)\n");    \
            skip();                                                                               \
        }                                                                                         \
    } while (0)

/* face-api 1.7.15 (tests/ref/faceapi, wasm and cpu backends agree) on sample1.jpg at 416:
 * box x1, y1, x2, y2, score, chip, landmark 30 (nose tip) and the descriptor's first values. */
static const struct {
    float box[4], score;
    int chip[4];
    float nose[2], desc[4];
} sample1_ref[3] = {
    {{775.895f, 445.098f, 1089.021f, 701.441f}, 0.778971f, {811, 465, 214, 214}, {914.643f, 589.192f},
     {-0.065363f, 0.107547f, 0.101369f, -0.059279f}},
    {{1422.377f, 214.607f, 1729.148f, 497.391f}, 0.773727f, {1450, 233, 227, 227},
     {1543.662f, 342.389f}, {-0.050548f, 0.136425f, 0.12034f, -0.067034f}},
    {{336.626f, 396.787f, 641.937f, 647.882f}, 0.720292f, {372, 397, 210, 210}, {462.718f, 512.298f},
     {-0.090076f, 0.070328f, 0.024477f, -0.077714f}},
};

static void test_face_real_sample1_matches_faceapi(void **state)
{
    struct real *r = *state;
    REQUIRE_MODELS(r);
    if (!exists(SAMPLE1)) {
        fprintf(stderr, "SKIP: %s missing\n", SAMPLE1);
        skip();
    }
    struct eng_image img = {0};
    struct eng_err err = {0};
    const struct eng_decode_opts dopts = {.apply_exif = 1};
    assert_int_equal(eng_image_load(SAMPLE1, &dopts, &img, NULL, &err), 0);
    struct eng_face_params p;
    eng_face_params_default(&p);
    struct eng_face faces[8];
    const int n = eng_face_detect(r->m, r->ctx, &img, &p, faces, 8, &err);
    assert_int_equal(n, 3);
    float desc[3][ENG_FACE_DESCRIPTOR];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 4; k++)
            assert_near((&faces[i].box.x1)[k], sample1_ref[i].box[k], 0.01);
        assert_near(faces[i].score, sample1_ref[i].score, 1e-5);
        assert_false(faces[i].has_landmarks);
        assert_int_equal(eng_face_landmarks(r->m, r->ctx, &img, &faces[i], &err), 0);
        assert_true(faces[i].has_landmarks);
        assert_near(faces[i].landmarks[30].x, sample1_ref[i].nose[0], 0.01);
        assert_near(faces[i].landmarks[30].y, sample1_ref[i].nose[1], 0.01);
        assert_int_equal(faces[i].chip.x, sample1_ref[i].chip[0]);
        assert_int_equal(faces[i].chip.y, sample1_ref[i].chip[1]);
        assert_int_equal(faces[i].chip.w, sample1_ref[i].chip[2]);
        assert_int_equal(faces[i].chip.h, sample1_ref[i].chip[3]);
        /* sanity of the 68 points: eyes above the mouth, all inside the box widened by a half */
        const struct eng_box b = faces[i].box;
        const float bw = b.x2 - b.x1, bh = b.y2 - b.y1;
        assert_true(faces[i].landmarks[37].y < faces[i].landmarks[57].y);
        for (int k = 0; k < ENG_FACE_LANDMARKS; k++) {
            assert_true(faces[i].landmarks[k].x > b.x1 - bw / 2 && faces[i].landmarks[k].x < b.x2 + bw / 2);
            assert_true(faces[i].landmarks[k].y > b.y1 - bh / 2 && faces[i].landmarks[k].y < b.y2 + bh / 2);
        }
        assert_int_equal(eng_face_descriptor(r->m, r->ctx, &img, &faces[i], desc[i], &err), 0);
        assert_floats_near(desc[i], sample1_ref[i].desc, 4, 1e-5);
    }
    /* three different people */
    for (int i = 0; i < n; i++)
        for (int k = i + 1; k < n; k++)
            assert_true(eng_face_distance(desc[i], desc[k]) > ENG_FACE_MATCH_THRESHOLD);

    /* the same faces at another input size: boxes move a little, scores stay high */
    p.input_size = 608;
    struct eng_face again[8];
    const int n2 = eng_face_detect(r->m, r->ctx, &img, &p, again, 8, &err);
    assert_true(n2 >= 3);
    for (int i = 0; i < n; i++) {
        float best = 0.0f;
        for (int k = 0; k < n2; k++)
            best = fmaxf(best, eng_box_iou(faces[i].box, again[k].box));
        assert_true(best > 0.6f);
    }
    /* cap: only the best one */
    assert_int_equal(eng_face_detect(r->m, r->ctx, &img, &p, again, 1, &err), 1);
    eng_image_release(&img);
}

static void test_face_real_no_face_in_flat_image(void **state)
{
    struct real *r = *state;
    REQUIRE_MODELS(r);
    struct eng_image img = {.width = 320, .height = 200};
    img.rgb = malloc(320 * 200 * 3);
    assert_non_null(img.rgb);
    memset(img.rgb, 128, 320 * 200 * 3);
    struct eng_face_params p;
    eng_face_params_default(&p);
    struct eng_face faces[4];
    struct eng_err err = {0};
    assert_int_equal(eng_face_detect(r->m, r->ctx, &img, &p, faces, 4, &err), 0);
    /* a box outside the image: an error naming the face, not a crash */
    struct eng_face f = {.box = {400, 10, 500, 100}};
    assert_int_equal(eng_face_landmarks(r->m, r->ctx, &img, &f, &err), -1);
    assert_non_null(strstr(err.msg, "no pixel inside"));
    /* no landmarks: no descriptor */
    float d[ENG_FACE_DESCRIPTOR];
    struct eng_face none = {0};
    assert_int_equal(eng_face_descriptor(r->m, r->ctx, &img, &none, d, &err), -1);
    eng_image_release(&img);
}

static void test_face_real_bad_params_rejected(void **state)
{
    struct real *r = *state;
    REQUIRE_MODELS(r);
    uint8_t px[3 * 64 * 64] = {0};
    const struct eng_image img = {.width = 64, .height = 64, .rgb = px};
    struct eng_face faces[1];
    struct eng_face_params p;
    struct eng_err err = {0};
    eng_face_params_default(&p);
    p.input_size = 100;
    assert_int_equal(eng_face_detect(r->m, r->ctx, &img, &p, faces, 1, &err), -1);
    assert_string_equal(err.where, "input_size");
    p.input_size = eng_face_models_max_input(r->m) + 32;
    assert_int_equal(eng_face_detect(r->m, r->ctx, &img, &p, faces, 1, &err), -1);
    eng_face_params_default(&p);
    p.score_threshold = 1.5f;
    assert_int_equal(eng_face_detect(r->m, r->ctx, &img, &p, faces, 1, &err), -1);
    p.score_threshold = NAN;
    assert_int_equal(eng_face_detect(r->m, r->ctx, &img, &p, faces, 1, &err), -1);
    p.score_threshold = 0.0f; /* keeps every box: NMS still bounds them */
    p.input_size = 64;
    assert_true(eng_face_detect(r->m, r->ctx, &img, &p, faces, 1, &err) <= 1);
}

/* dlib's aligned 150x150 chips: same person close, different people apart (face-api: 100 % of pairs). */
static int load_john(const char *person, int k, struct eng_image *img)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", JOHNS, person);
    static const char *files[][2] = {
        {"John_Salley", "000179_02159509.jpg"}, {"John_Salley", "000183_02159543.jpg"},
        {"John_Simm", "000288_00470387.jpg"},   {"John_Simm", "000297_00470170.jpg"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strcmp(files[i][0], person) || k-- != 0)
            continue;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", dir, files[i][1]);
        return exists(path) ? eng_image_load(path, NULL, img, NULL, NULL) : -1;
    }
    return -1;
}

static void test_face_real_aligned_chips_same_person_close(void **state)
{
    struct real *r = *state;
    REQUIRE_MODELS(r);
    struct eng_image a = {0}, b = {0}, c = {0}, d = {0};
    if (load_john("John_Salley", 0, &a) || load_john("John_Salley", 1, &b) ||
        load_john("John_Simm", 0, &c) || load_john("John_Simm", 1, &d)) {
        eng_image_release(&a);
        eng_image_release(&b);
        eng_image_release(&c);
        fprintf(stderr, "SKIP: %s chips missing\n", JOHNS);
        skip();
    }
    float da[ENG_FACE_DESCRIPTOR], db[ENG_FACE_DESCRIPTOR], dc[ENG_FACE_DESCRIPTOR],
        dd[ENG_FACE_DESCRIPTOR];
    struct eng_err err = {0};
    assert_int_equal(eng_face_descriptor_aligned(r->m, r->ctx, &a, da, &err), 0);
    assert_int_equal(eng_face_descriptor_aligned(r->m, r->ctx, &b, db, &err), 0);
    assert_int_equal(eng_face_descriptor_aligned(r->m, r->ctx, &c, dc, &err), 0);
    assert_int_equal(eng_face_descriptor_aligned(r->m, r->ctx, &d, dd, &err), 0);
    assert_true(eng_face_distance(da, db) < ENG_FACE_MATCH_THRESHOLD);
    assert_true(eng_face_distance(dc, dd) < ENG_FACE_MATCH_THRESHOLD);
    assert_true(eng_face_distance(da, dc) > ENG_FACE_MATCH_THRESHOLD);
    assert_true(eng_face_distance(db, dd) > ENG_FACE_MATCH_THRESHOLD);
    /* deterministic: the same chip twice gives the same bits */
    float again[ENG_FACE_DESCRIPTOR];
    assert_int_equal(eng_face_descriptor_aligned(r->m, r->ctx, &a, again, &err), 0);
    assert_memory_equal(again, da, sizeof da);
    eng_image_release(&a);
    eng_image_release(&b);
    eng_image_release(&c);
    eng_image_release(&d);
}

/* Copies the model folder's files into dir, the recognition .bin cut short by `cut` bytes. */
static void copy_models(const char *dir, long cut)
{
    static const char *files[] = {
        ENG_FACE_DETECTOR_MANIFEST,    "tiny_face_detector_model.bin",
        ENG_FACE_LANDMARK_MANIFEST,    "face_landmark_68_model.bin",
        ENG_FACE_RECOGNITION_MANIFEST, "face_recognition_model.bin",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char src[600], dst[600];
        snprintf(src, sizeof src, "%s/%s", MODELS_DIR, files[i]);
        snprintf(dst, sizeof dst, "%s/%s", dir, files[i]);
        FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
        assert_non_null(in);
        assert_non_null(out);
        fseek(in, 0, SEEK_END);
        long n = ftell(in);
        fseek(in, 0, SEEK_SET);
        if (i == 5)
            n -= cut;
        char buf[65536];
        while (n > 0) {
            const size_t want = n > (long)sizeof buf ? sizeof buf : (size_t)n;
            assert_int_equal(fread(buf, 1, want, in), want);
            assert_int_equal(fwrite(buf, 1, want, out), want);
            n -= (long)want;
        }
        fclose(in);
        assert_int_equal(fclose(out), 0);
    }
}

static void remove_models(const char *dir)
{
    static const char *files[] = {
        ENG_FACE_DETECTOR_MANIFEST,    "tiny_face_detector_model.bin",
        ENG_FACE_LANDMARK_MANIFEST,    "face_landmark_68_model.bin",
        ENG_FACE_RECOGNITION_MANIFEST, "face_recognition_model.bin",
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void test_face_real_truncated_bin_names_tensor(void **state)
{
    struct real *r = *state;
    REQUIRE_MODELS(r);
    char dir[] = "/tmp/test_face.XXXXXX";
    assert_non_null(mkdtemp(dir));
    copy_models(dir, 100); /* fc, the last tensor, loses its end */
    struct eng_face_models *m = NULL;
    struct eng_err err = {0};
    assert_int_equal(eng_face_models_load(dir, NULL, &m, &err), -1);
    assert_null(m);
    assert_string_equal(err.where, "fc");
    assert_non_null(strstr(err.msg, "truncated"));
    remove_models(dir);

    assert_int_equal(eng_face_models_load("/nonexistent/faces", NULL, &m, &err), -1);
    assert_non_null(strstr(err.where, ENG_FACE_DETECTOR_MANIFEST));
    struct eng_face_load_opts opts = {.max_input_size = 100};
    assert_int_equal(eng_face_models_load(MODELS_DIR, &opts, &m, &err), -1);
}

static void test_face_real_small_max_input_and_flops(void **state)
{
    struct real *r = *state;
    REQUIRE_MODELS(r);
    assert_int_equal(eng_face_models_max_input(r->m), 608);
    double lm = 0, rec = 0;
    const double det = eng_face_models_flops(r->m, 416, &lm, &rec);
    assert_true(det > 1e8 && lm > 1e7 && rec > 1e8);
    assert_true(eng_face_models_flops(r->m, 100, NULL, NULL) == 0.0);

    struct eng_face_models *m = NULL;
    struct eng_err err = {0};
    const struct eng_face_load_opts opts = {.max_input_size = 128};
    assert_int_equal(eng_face_models_load(MODELS_DIR, &opts, &m, &err), 0);
    struct eng_face_ctx *ctx = eng_face_ctx_new(m, &err);
    assert_non_null(ctx);
    uint8_t px[3 * 40 * 90] = {0};
    const struct eng_image img = {.width = 90, .height = 40, .rgb = px};
    struct eng_face_params p;
    eng_face_params_default(&p);
    struct eng_face faces[2];
    assert_int_equal(eng_face_detect(m, ctx, &img, &p, faces, 2, &err), -1); /* 416 > 128 */
    p.input_size = 128;
    assert_true(eng_face_detect(m, ctx, &img, &p, faces, 2, &err) >= 0);
    eng_face_ctx_free(ctx);
    eng_face_models_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_face_tf_same_pad_matches_tensorflow),
        cmocka_unit_test(test_face_conv_same_stride2_even_input_pads_bottom_right),
        cmocka_unit_test(test_face_conv_same_and_pad_exclusive),
        cmocka_unit_test(test_face_conv_same_matches_naive_reference),
        cmocka_unit_test(test_face_separable_conv_matches_naive),
        cmocka_unit_test(test_face_maxpool_tf_same_odd_input),
        cmocka_unit_test(test_face_avgpool_window_valid_hand_computed),
        cmocka_unit_test(test_face_avgpool_size0_stays_global),
        cmocka_unit_test(test_face_dense_matches_naive_chw_flatten),
        cmocka_unit_test(test_face_add_sums_inputs_then_activates),
        cmocka_unit_test(test_face_add_zero_extend_like_resnet_down_block),
        cmocka_unit_test(test_face_ctx_bind_smaller_net_fits_larger_refused),
        cmocka_unit_test(test_face_align_dlib_hand_computed),
        cmocka_unit_test(test_face_distances_squared_and_euclidean),
        cmocka_unit_test(test_face_sort_largest_area_first_ties_keep_order),
        cmocka_unit_test(test_face_select_largest_best_several_and_none),
        cmocka_unit_test(test_face_box_crop_clipped_floored_outside_empty),
        cmocka_unit_test(test_face_real_sample1_matches_faceapi),
        cmocka_unit_test(test_face_real_no_face_in_flat_image),
        cmocka_unit_test(test_face_real_bad_params_rejected),
        cmocka_unit_test(test_face_real_aligned_chips_same_person_close),
        cmocka_unit_test(test_face_real_truncated_bin_names_tensor),
        cmocka_unit_test(test_face_real_small_max_input_and_flops),
    };
    /* the real-model tests share one load */
    return cmocka_run_group_tests(tests, real_setup, real_teardown);
}
