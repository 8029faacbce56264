/* test_expdw.c - the fused 1x1 expansion + depthwise layer (engine/conv_expdw.c) and its kernel
 * (kern.h, dw3_padded), and the 1x1 projection fused into its [shortcut] (engine/conv_resadd.c), against
 * naive double-precision references: the kernel in every instruction set
 * this processor runs, on widths around whole vectors and narrower than one, both strides, the
 * activations, with guard values around each output row; the fused layers in a hand-built net on shapes
 * with several bands, a partial channel block and odd channel counts, on one thread and on two (the
 * same bits). */
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
#include "net.h"
#include "team.h"

#define GUARD 12345.0f

static double act_d(double x, enum eng_act act)
{
    switch (act) {
    case ENG_ACT_LEAKY: return x > 0 ? x : 0.1 * x;
    case ENG_ACT_RELU: return x > 0 ? x : 0;
    case ENG_ACT_LOGISTIC: return 1.0 / (1.0 + exp(-x));
    default: return x;
    }
}

/* Both layouts: the padding stored (pl = 0, w = wp) and not stored (rows of w floats, pl = 1, the taps
 * outside masked), with slack around the plane as kern.h asks and the data's neighbours random, so a
 * read outside [0, w) that were used would show. */
static void test_dw3_padded_matches_naive_every_set(void **state)
{
    (void)state;
    const enum eng_act acts[] = {ENG_ACT_LINEAR, ENG_ACT_LEAKY, ENG_ACT_RELU, ENG_ACT_LOGISTIC};
    const int widths[] = {1, 3, 4, 7, 8, 15, 16, 17, 20, 31, 33, 40, 47};
    rng_state = 41;
    for (int isa = 0; isa < ENG_ISA_COUNT; isa++) {
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (!k) {
            print_message("instruction set %d not supported here: not tested\n", isa);
            continue;
        }
        for (int masked = 0; masked <= 1; masked++)
            for (int s = 1; s <= 2; s++)
                for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
                    for (int oh = 1; oh <= 4; oh += 3) {
                        const int ow = widths[wi], pl = masked;
                        const enum eng_act act = acts[(wi + (size_t)s) % 4];
                        /* masked: the input's width for ow outputs at pad 1 (s (ow - 1) + 1 .. s ow) */
                        const int w = masked ? s * ow - (int)(wi % 2) : (int)(ENG_DW3P_ROW(ow, s) + wi % 3);
                        const size_t wp = (size_t)w, rows = (size_t)(oh - 1) * s + 3;
                        const size_t slack = ENG_KERN_MAX_VL + ENG_DW3P_ROW(ow, s);
                        float *mem = floats_random(slack + rows * wp + slack), *plane = mem + slack, wt[9];
                        for (int i = 0; i < 9; i++)
                            wt[i] = rnd();
                        const float bias = rnd();
                        const size_t ldo = (size_t)ow + 5;
                        float *out = floats_new((size_t)oh * ldo);
                        for (size_t i = 0; i < (size_t)oh * ldo; i++)
                            out[i] = GUARD;
                        k->dw3_padded(plane, wp, out, ldo, oh, ow, s, pl, w, wt, bias, act);
                        for (int y = 0; y < oh; y++)
                            for (size_t x = 0; x < ldo; x++) {
                                const float got = out[(size_t)y * ldo + x];
                                if ((int)x >= ow) {
                                    if (got != GUARD)
                                        fail_msg("%s s%d ow %d: wrote column %zu", k->name, s, ow, x);
                                    continue;
                                }
                                double sum = bias, mag = fabs(bias);
                                for (int ky = 0; ky < 3; ky++)
                                    for (int kx = 0; kx < 3; kx++) {
                                        const int c = s * (int)x + kx - pl;
                                        if (c < 0 || c >= w)
                                            continue;
                                        const double t = (double)wt[3 * ky + kx] * plane[(size_t)(s * y + ky) * wp + c];
                                        sum += t;
                                        mag += fabs(t);
                                    }
                                const double want = act_d(sum, act);
                                if (!(fabs(got - want) <= 1e-6 * mag + 1e-7))
                                    fail_msg("%s masked %d s%d ow %d oh %d act %d: out[%d][%zu] = %.9g, expected %.9g",
                                             k->name, masked, s, ow, oh, (int)act, y, x, (double)got, want);
                            }
                        free(out);
                        free(mem);
                    }
    }
}

/* A net of two layers: a 1x1 from k to m channels (leaky) and a 3x3 depthwise at `stride`, pad 1
 * (act), on a c x h x w input. Weights and biases random, owned by the caller (params). */
struct pair {
    struct eng_layer layers[2];
    struct eng_net net;
    float *params;
    char name[16];
};

static void pair_new(struct pair *p, int k, int m, int h, int w, int stride, enum eng_act act)
{
    memset(p, 0, sizeof *p);
    p->params = floats_random((size_t)m * k + m + (size_t)m * 9 + m);
    char why[256] = "";
    p->layers[0] = layer_new(ENG_LAYER_CONV, 0, k, h, w);
    p->layers[0].p.conv = (struct eng_conv){.filters = m, .size = 1, .stride = 1, .groups = 1, .act = ENG_ACT_LEAKY,
                                            .weights = p->params, .bias = p->params + (size_t)m * k};
    setup_ok(eng_conv_setup(&p->layers[0], why, sizeof why), why);
    p->layers[1] = layer_new(ENG_LAYER_CONV, 1, m, h, w);
    p->layers[1].p.conv = (struct eng_conv){.filters = m, .size = 3, .stride = stride, .pad = 1, .groups = m,
                                            .act = act, .weights = p->params + (size_t)m * k + m,
                                            .bias = p->params + (size_t)m * k + m + (size_t)m * 9};
    setup_ok(eng_conv_setup(&p->layers[1], why, sizeof why), why);
    strcpy(p->name, "expdw-pair");
    p->net = (struct eng_net){.name = p->name, .input = {k, h, w}, .n_layers = 2, .layers = p->layers};
}

/* The pair in double: the expansion (leaky), then the depthwise window with zero padding. */
static double pair_ref(const struct pair *p, const float *in, int ch, int oy, int ox)
{
    const struct eng_layer *e = &p->layers[0], *d = &p->layers[1];
    const int k = e->in.c, h = e->in.h, w = e->in.w, s = d->p.conv.stride;
    double sum = d->p.conv.bias[ch];
    for (int ky = 0; ky < 3; ky++)
        for (int kx = 0; kx < 3; kx++) {
            const int iy = oy * s - 1 + ky, ix = ox * s - 1 + kx;
            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                continue;
            double x = e->p.conv.bias[ch];
            for (int kk = 0; kk < k; kk++)
                x += (double)e->p.conv.weights[(size_t)ch * k + kk] * in[((size_t)kk * h + iy) * w + ix];
            sum += d->p.conv.weights[(size_t)ch * 9 + 3 * ky + kx] * act_d(x, ENG_ACT_LEAKY);
        }
    return act_d(sum, d->p.conv.act);
}

static void test_fused_pair_matches_naive_and_threads(void **state)
{
    (void)state;
    /* k, m, h, w, stride: several bands (64 rows of 64, 150 output rows of 17, 600 rows of 20 do not fit
     * one band's scratch), a partial last block of channels (11, 19, 5, 3), odd input channels, rows
     * wider and narrower than a vector, odd widths */
    const int shapes[][5] = {{5, 11, 64, 64, 1}, {3, 19, 300, 34, 2}, {8, 16, 9, 32, 2}, {7, 5, 70, 65, 1},
                             {4, 3, 600, 20, 1}, {6, 9, 21, 9, 1}, {5, 8, 13, 7, 2}, {9, 24, 40, 40, 1}};
    const enum eng_act acts[] = {ENG_ACT_LINEAR, ENG_ACT_LEAKY, ENG_ACT_RELU, ENG_ACT_LOGISTIC};
    struct eng_err err = {0};
    struct eng_team *team = eng_team_new(2, NULL, &err);
    assert_non_null(team);
    rng_state = 43;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *sh = shapes[i];
        struct pair p;
        pair_new(&p, sh[0], sh[1], sh[2], sh[3], sh[4], acts[i % 4]);
        eng_conv_expdw_fuse(&p.net);
        assert_null(p.layers[0].forward); /* the expansion's output aliases its input */
        assert_ptr_equal(p.layers[1].p.conv.expand, &p.layers[0]);
        struct eng_ctx *ctx = eng_ctx_new(&p.net, &err);
        assert_non_null(ctx);
        float *in = floats_random(eng_shape_size(p.net.input));
        memcpy(ctx->input, in, sizeof(float) * eng_shape_size(p.net.input));
        eng_net_forward(&p.net, ctx);
        const struct eng_shape o = p.layers[1].out;
        float *one = floats_new(eng_shape_size(o));
        memcpy(one, ctx->outs[1], sizeof(float) * eng_shape_size(o));
        for (int ch = 0; ch < o.c; ch++)
            for (int y = 0; y < o.h; y++)
                for (int x = 0; x < o.w; x++) {
                    const double want = pair_ref(&p, in, ch, y, x);
                    const float got = one[((size_t)ch * o.h + y) * o.w + x];
                    if (!(fabs(got - want) <= 1e-5 * (1.0 + fabs(want))))
                        fail_msg("shape %zu: out[%d][%d][%d] = %.9g, expected %.9g", i, ch, y, x, (double)got, want);
                }
        /* two threads: the same bits */
        assert_int_equal(eng_ctx_set_team(ctx, team, &err), 0);
        memset(ctx->outs[1], 0, sizeof(float) * eng_shape_size(o));
        eng_net_forward(&p.net, ctx);
        assert_memory_equal(ctx->outs[1], one, sizeof(float) * eng_shape_size(o));
        eng_ctx_free(ctx);
        free(one);
        free(in);
        free(p.params);
    }
    eng_team_free(team);
}

/* The rule: a pair whose expansion another layer reads, and a depthwise layer after a 3x3, stay
 * unfused. */
static void test_fuse_rule_leaves_other_layers(void **state)
{
    (void)state;
    rng_state = 47;
    struct pair p;
    struct eng_layer layers[3];
    pair_new(&p, 4, 8, 64, 64, 1, ENG_ACT_LEAKY);
    layers[0] = p.layers[0];
    layers[1] = p.layers[1];
    layers[2] = layer_new(ENG_LAYER_SHORTCUT, 2, 8, 64, 64);
    layers[2].p.shortcut.from = 0;
    p.net.layers = layers;
    p.net.n_layers = 3;
    eng_conv_expdw_fuse(&p.net);
    assert_non_null(layers[0].forward);
    free(p.params);

    pair_new(&p, 4, 8, 64, 64, 1, ENG_ACT_LEAKY);
    char why[256] = "";
    p.layers[0].p.conv.size = 3;
    p.layers[0].p.conv.pad = 1;
    setup_ok(eng_conv_setup(&p.layers[0], why, sizeof why), why);
    eng_conv_expdw_fuse(&p.net);
    assert_non_null(p.layers[0].forward);
    assert_null(p.layers[1].p.conv.expand);
    free(p.params);
}

/* The projection fused into its shortcut: a 1x1 k -> m (leaky) makes the residual R, a 1x1 m -> m
 * (linear) projects it, a dropout, then the shortcut adds R (act). Planes of one stretch, of several
 * with a longer last one, and narrower than a vector; odd channel counts; 1 and 2 threads. */
static void test_fused_projection_shortcut_matches_naive_and_threads(void **state)
{
    (void)state;
    const int shapes[][4] = {{5, 11, 17, 19}, {3, 33, 40, 40}, {8, 5, 3, 5}, {16, 8, 26, 11}}; /* k, m, h, w */
    const enum eng_act acts[] = {ENG_ACT_LINEAR, ENG_ACT_LEAKY, ENG_ACT_RELU, ENG_ACT_LINEAR};
    struct eng_err err = {0};
    struct eng_team *team = eng_team_new(2, NULL, &err);
    assert_non_null(team);
    rng_state = 53;
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int k = shapes[t][0], m = shapes[t][1], h = shapes[t][2], w = shapes[t][3];
        float *params = floats_random((size_t)m * k + m + (size_t)m * m + m);
        const float *w0 = params, *b0 = params + (size_t)m * k, *w1 = b0 + m, *b1 = w1 + (size_t)m * m;
        struct eng_layer layers[4];
        char why[256] = "";
        layers[0] = layer_new(ENG_LAYER_CONV, 0, k, h, w);
        layers[0].p.conv = (struct eng_conv){.filters = m, .size = 1, .stride = 1, .groups = 1, .act = ENG_ACT_LEAKY,
                                             .weights = w0, .bias = b0};
        setup_ok(eng_conv_setup(&layers[0], why, sizeof why), why);
        layers[1] = layer_new(ENG_LAYER_CONV, 1, m, h, w);
        layers[1].p.conv = (struct eng_conv){.filters = m, .size = 1, .stride = 1, .groups = 1, .act = ENG_ACT_LINEAR,
                                             .weights = w1, .bias = b1};
        setup_ok(eng_conv_setup(&layers[1], why, sizeof why), why);
        layers[2] = layer_new(ENG_LAYER_DROPOUT, 2, m, h, w);
        setup_ok(eng_dropout_setup(&layers[2], why, sizeof why), why);
        layers[3] = layer_new(ENG_LAYER_SHORTCUT, 3, m, h, w);
        layers[3].p.shortcut = (struct eng_shortcut){.from = 0, .act = acts[t]};
        setup_ok(eng_shortcut_setup(&layers[3], layers, why, sizeof why), why);
        char name[] = "resadd";
        struct eng_net net = {.name = name, .input = {k, h, w}, .n_layers = 4, .layers = layers};
        eng_conv_resadd_fuse(&net);
        assert_null(layers[1].forward);
        assert_ptr_equal(layers[3].p.shortcut.project, &layers[1]);
        struct eng_ctx *ctx = eng_ctx_new(&net, &err);
        assert_non_null(ctx);
        const size_t plane = (size_t)h * w, outn = (size_t)m * plane;
        float *in = floats_random((size_t)k * plane);
        memcpy(ctx->input, in, sizeof(float) * (size_t)k * plane);
        eng_net_forward(&net, ctx);
        float *one = floats_new(outn);
        memcpy(one, ctx->outs[3], sizeof(float) * outn);
        double *r = calloc(outn, sizeof *r);
        assert_non_null(r);
        for (int o = 0; o < m; o++)
            for (size_t p = 0; p < plane; p++) {
                double x = b0[o];
                for (int kk = 0; kk < k; kk++)
                    x += (double)w0[(size_t)o * k + kk] * in[kk * plane + p];
                r[o * plane + p] = act_d(x, ENG_ACT_LEAKY);
            }
        for (int o = 0; o < m; o++)
            for (size_t p = 0; p < plane; p++) {
                double y = b1[o], mag = fabs(b1[o]);
                for (int kk = 0; kk < m; kk++) {
                    y += w1[(size_t)o * m + kk] * r[kk * plane + p];
                    mag += fabs(w1[(size_t)o * m + kk] * r[kk * plane + p]);
                }
                const double want = act_d(y + r[o * plane + p], acts[t]);
                const float got = one[o * plane + p];
                if (!(fabs(got - want) <= 1e-5 * (1.0 + mag + fabs(r[o * plane + p]))))
                    fail_msg("shape %zu: out[%d][%zu] = %.9g, expected %.9g", t, o, p, (double)got, want);
            }
        assert_int_equal(eng_ctx_set_team(ctx, team, &err), 0);
        memset(ctx->outs[3], 0, sizeof(float) * outn);
        eng_net_forward(&net, ctx);
        assert_memory_equal(ctx->outs[3], one, sizeof(float) * outn);
        eng_ctx_free(ctx);
        free(r);
        free(one);
        free(in);
        free(params);
    }
    eng_team_free(team);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dw3_padded_matches_naive_every_set),
        cmocka_unit_test(test_fused_pair_matches_naive_and_threads),
        cmocka_unit_test(test_fuse_rule_leaves_other_layers),
        cmocka_unit_test(test_fused_projection_shortcut_matches_naive_and_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
