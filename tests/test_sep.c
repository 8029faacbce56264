/* test_sep.c - the fused depthwise 3x3 + 1x1 layers (engine/conv_sep.c) and their band kernel
 * (kern.h dw3_band, engine/sep_isa.inc) against naive double-precision references: every kernel set
 * this processor runs, odd channel counts, widths below, at and past a vector, bands at the top, in
 * the middle and at the bottom of the plane; the input placed at the very end of its block so that a
 * read past it shows under ASan, and the channels' rows checked exactly where they must be. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv_sep.h"
#include "kern.h"
#include "layer.h"
#include "layer_harness.h"
#include "net.h"
#include "team.h"

/* Output (y, x) of channel ch of a 3x3 stride-1 depthwise convolution padded by 1 ('same'). */
static double dw_ref(const float *in, int h, int w, const float *wt, const float *bias, int ch, int y, int x)
{
    double acc = bias ? bias[ch] : 0.0;
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            const int iy = y + ky - 1, ix = x + kx - 1;
            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                acc += (double)wt[ch * 9 + ky * 3 + kx] * in[((size_t)ch * h + iy) * w + ix];
        }
    return acc;
}

/* The whole depthwise output (no bias) of c channels, in double (caller frees). */
static double *dw_plane_ref(const float *in, int c, int h, int w, const float *wt)
{
    double *mid = malloc(sizeof *mid * (size_t)c * h * w);
    assert_non_null(mid);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                mid[((size_t)ch * h + y) * w + x] = dw_ref(in, h, w, wt, NULL, ch, y, x);
    return mid;
}

static void check_band(const struct eng_kern *k, int c, int h, int w, int y0, int y1, int with_bias)
{
    const size_t n_in = (size_t)c * h * w;
    float *in = floats_random(n_in); /* in_end is the block's end: ASan sees any read past it */
    float *wt = floats_random((size_t)c * 9), *bias = with_bias ? floats_random((size_t)c) : NULL;
    const int oh = y1 - y0;
    const size_t n_out = (size_t)c * oh * w;
    float *out = floats_new(n_out + ENG_KERN_MAX_VL);
    for (size_t i = 0; i < n_out + ENG_KERN_MAX_VL; i++)
        out[i] = NAN;
    struct eng_dw_band b = {.in = in, .in_end = in + n_in, .w = wt, .bias = bias, .h = h, .w_in = w,
                            .pad_top = 1, .pad_left = 1, .y0 = y0, .y1 = y1, .ow = w, .out = out};
    float *scratch = floats_new(eng_dw_band_scratch_floats(&b));
    k->dw3_band(&b, 0, c, scratch);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < w; x++) {
                const double want = dw_ref(in, h, w, wt, bias, ch, y0 + y, x);
                const float got = out[((size_t)ch * oh + y) * w + x];
                if (!(fabs(got - want) <= 1e-5 * (1.0 + fabs(want))))
                    fail_msg("%s: %d channels %dx%d, band [%d, %d): channel %d (%d, %d) is %.8g, want %.8g",
                             k->name, c, h, w, y0, y1, ch, y0 + y, x, (double)got, want);
            }
    free(scratch);
    free(out);
    free(bias);
    free(wt);
    free(in);
}

static void test_dw3_band_every_set(void **state)
{
    (void)state;
    rng_state = 7;
    static const int shapes[][3] = {{5, 7, 7}, {3, 13, 19}, {2, 9, 33}, {1, 4, 16}, {7, 6, 1}, {3, 3, 2}};
    int sets = 0;
    for (int isa = 0; isa < ENG_ISA_COUNT; isa++) {
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (!k) {
            print_message("instruction set %d not supported here: not tested\n", isa);
            continue;
        }
        sets++;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            const int c = shapes[s][0], h = shapes[s][1], w = shapes[s][2];
            const int bands[][2] = {{0, h}, {0, 1}, {h - 1, h}, {h / 3, h / 3 + (h + 1) / 2}};
            for (int i = 0; i < 4; i++)
                check_band(k, c, h, w, bands[i][0], bands[i][1], i % 2);
        }
    }
    assert_true(sets >= 1);
}

/* layers[0]: a depthwise 3x3 'same' layer on c x h x w (weights dww, no bias, linear); layers[1]: a 1x1
 * layer c -> m (weights pww, bias pwb or NULL, act), both set up. */
static void pair_new(struct eng_layer *layers, int c, int m, int h, int w, const float *dww, const float *pww,
                     const float *pwb, enum eng_act act)
{
    char why[128] = "";
    layers[0] = layer_new(ENG_LAYER_CONV, 0, c, h, w);
    layers[0].p.conv = (struct eng_conv){.filters = c, .size = 3, .stride = 1, .groups = c, .same = 1,
                                         .act = ENG_ACT_LINEAR, .weights = dww};
    setup_ok(eng_conv_setup(&layers[0], why, sizeof why), why);
    layers[1] = layer_new(ENG_LAYER_CONV, 1, c, h, w);
    layers[1].p.conv = (struct eng_conv){.filters = m, .size = 1, .stride = 1, .groups = 1, .act = act,
                                         .weights = pww, .bias = pwb};
    setup_ok(eng_conv_setup(&layers[1], why, sizeof why), why);
}

/* A depthwise layer and a 1x1 layer (c -> m, bias, leaky) as a two-layer net, fused, against the
 * double reference of the pair; and the pair left unfused when a later layer reads the depthwise
 * output. */
static void check_pair(int c, int m, int h, int w)
{
    struct eng_layer layers[2];
    float *dww = floats_random((size_t)c * 9), *pww = floats_random((size_t)m * c);
    float *pwb = floats_random((size_t)m);
    pair_new(layers, c, m, h, w, dww, pww, pwb, ENG_ACT_LEAKY);
    struct eng_net net = {.n_layers = 2, .layers = layers};
    assert_int_equal(eng_conv_sep_fuse(&net), 1);
    assert_null(layers[0].forward);
    assert_int_equal(layers[1].work_floats, eng_conv_sep_work_floats(&layers[1]));

    float *in = floats_random((size_t)c * h * w);
    float *out = run(&layers[1], in, NULL);
    double *mid = dw_plane_ref(in, c, h, w, dww);
    for (int o = 0; o < m; o++)
        for (size_t p = 0; p < (size_t)h * w; p++) {
            double acc = pwb[o];
            for (int ch = 0; ch < c; ch++)
                acc += (double)pww[(size_t)o * c + ch] * mid[(size_t)ch * h * w + p];
            const double want = acc > 0 ? acc : 0.1 * acc;
            const float got = out[(size_t)o * h * w + p];
            if (!(fabs(got - want) <= 1e-5 * (1.0 + fabs(want))))
                fail_msg("%d -> %d channels %dx%d: output %d pixel %zu is %.8g, want %.8g", c, m, h, w, o, p,
                         (double)got, want);
        }
    free(mid);
    free(out);
    free(in);
    free(pwb);
    free(pww);
    free(dww);
}

static void test_fused_pair_matches_reference(void **state)
{
    (void)state;
    rng_state = 11;
    check_pair(5, 7, 9, 11);     /* odd channels, one band */
    check_pair(3, 9, 61, 37);    /* several bands, a ragged last one */
    check_pair(32, 40, 20, 56);  /* the landmark net's first width */
    check_pair(17, 13, 7, 7);
}

static void test_not_fused_when_shared(void **state)
{
    (void)state;
    struct eng_layer layers[3];
    float *dww = floats_random(4 * 9), *pww = floats_random(4 * 4);
    pair_new(layers, 4, 4, 8, 8, dww, pww, NULL, ENG_ACT_LINEAR);
    layers[2] = layer_new(ENG_LAYER_ADD, 2, 4, 8, 8);
    layers[2].p.add = (struct eng_add){.n = 2, .inputs = {0, 1}};
    struct eng_net net = {.n_layers = 3, .layers = layers};
    assert_int_equal(eng_conv_sep_fuse(&net), 0);
    assert_non_null(layers[0].forward);
    free(pww);
    free(dww);
}

/* A depthwise layer, a 1x1 layer (c -> m, bias, leaky) and a 2x2 stride-2 TF 'same' max-pool, fused:
 * with the pool folded into the 1x1 layer first (conv_pw.c, pool_layer 0) or as a max-pool layer of its
 * own (pool_layer 1), against the double reference of the three; and bit-identical with teams of 2 and 3
 * (bands re-cut, on even rows). */
static void check_pooled(int c, int m, int h, int w, int pool_layer)
{
    struct eng_layer layers[3];
    char why[128] = "";
    float *dww = floats_random((size_t)c * 9), *pww = floats_random((size_t)m * c);
    float *pwb = floats_random((size_t)m);
    pair_new(layers, c, m, h, w, dww, pww, pwb, ENG_ACT_LEAKY);
    int n_layers = 2;
    if (pool_layer) {
        int o, before, after;
        eng_tf_same_pad(h, 2, 2, &o, &before, &after);
        layers[2] = layer_new(ENG_LAYER_MAXPOOL, 2, m, h, w);
        layers[2].p.pool = (struct eng_pool){.size = 2, .stride = 2, .pad = before + after};
        setup_ok(eng_maxpool_setup(&layers[2], why, sizeof why), why);
        n_layers = 3;
    } else {
        assert_int_equal(eng_conv_pointwise_pool2_setup(&layers[1]), 1);
    }
    struct eng_net net = {.n_layers = n_layers, .layers = layers};
    assert_int_equal(eng_conv_sep_fuse(&net), 1);
    const struct eng_layer *top = &layers[n_layers - 1];
    assert_null(layers[0].forward);
    if (pool_layer)
        assert_null(layers[1].forward);
    assert_int_equal(top->out.h, (h + 1) / 2);
    assert_int_equal(top->out.w, (w + 1) / 2);

    float *in = floats_random((size_t)c * h * w);
    float *out = run(top, in, NULL);
    double *mid = dw_plane_ref(in, c, h, w, dww), *act = malloc(sizeof *act * (size_t)h * w);
    assert_non_null(act);
    const int oh = (h + 1) / 2, ow = (w + 1) / 2;
    for (int o = 0; o < m; o++) {
        for (size_t p = 0; p < (size_t)h * w; p++) {
            double acc = pwb[o];
            for (int ch = 0; ch < c; ch++)
                acc += (double)pww[(size_t)o * c + ch] * mid[(size_t)ch * h * w + p];
            act[p] = acc > 0 ? acc : 0.1 * acc;
        }
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                double want = -INFINITY; /* the window's cells inside the plane: TF 'same' pads after */
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        const int iy = 2 * y + dy, ix = 2 * x + dx;
                        if (iy < h && ix < w && act[(size_t)iy * w + ix] > want)
                            want = act[(size_t)iy * w + ix];
                    }
                const float got = out[((size_t)o * oh + y) * ow + x];
                if (!(fabs(got - want) <= 1e-5 * (1.0 + fabs(want))))
                    fail_msg("%d -> %d channels %dx%d (pool layer %d): output %d (%d, %d) is %.8g, want %.8g",
                             c, m, h, w, pool_layer, o, y, x, (double)got, want);
            }
    }
    for (int threads = 2; threads <= 3; threads++) {
        float *team_out = run_threads(top, in, threads, NULL, NULL);
        if (memcmp(team_out, out, sizeof(float) * eng_shape_size(top->out)) != 0)
            fail_msg("%d -> %d channels %dx%d (pool layer %d): %d threads give other bits than one", c, m, h,
                     w, pool_layer, threads);
        free(team_out);
    }
    free(act);
    free(mid);
    free(out);
    free(in);
    free(pwb);
    free(pww);
    free(dww);
}

static void test_fused_pooled_matches_reference(void **state)
{
    (void)state;
    rng_state = 13;
    for (int pool_layer = 0; pool_layer <= 1; pool_layer++) {
        check_pooled(5, 7, 9, 17, pool_layer);    /* odd plane: the last row and column pooled alone */
        check_pooled(3, 9, 61, 37, pool_layer);   /* several bands, the last one ragged */
        check_pooled(16, 32, 30, 26, pool_layer); /* even plane, pool_pairs' several pairs per call */
        check_pooled(17, 13, 20, 16, pool_layer); /* rows one AVX-512 vector wide */
        check_pooled(24, 40, 15, 50, pool_layer);
    }
}

/* A max-pool that is not 2x2 stride 2 after a fused pair stays a layer of its own. */
static void test_pool_not_fused_when_stride1(void **state)
{
    (void)state;
    struct eng_layer layers[3];
    char why[128] = "";
    float *dww = floats_random(4 * 9), *pww = floats_random(4 * 4);
    pair_new(layers, 4, 4, 16, 16, dww, pww, NULL, ENG_ACT_LINEAR);
    layers[2] = layer_new(ENG_LAYER_MAXPOOL, 2, 4, 16, 16);
    layers[2].p.pool = (struct eng_pool){.size = 2, .stride = 1, .pad = 1};
    setup_ok(eng_maxpool_setup(&layers[2], why, sizeof why), why);
    struct eng_net net = {.n_layers = 3, .layers = layers};
    assert_int_equal(eng_conv_sep_fuse(&net), 1);
    assert_non_null(layers[1].forward);
    assert_non_null(layers[2].forward);
    free(pww);
    free(dww);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dw3_band_every_set),
        cmocka_unit_test(test_fused_pair_matches_reference),
        cmocka_unit_test(test_not_fused_when_shared),
        cmocka_unit_test(test_fused_pooled_matches_reference),
        cmocka_unit_test(test_pool_not_fused_when_stride1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
