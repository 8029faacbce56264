/* test_layers.c - every layer kind on small hand-computed cases (engine/conv.c, activation.c, pool.c,
 * upsample.c, route.c, shortcut.c, yolo.c), and the im2col + sgemm convolution against a naive direct
 * convolution on random shapes.
 *
 * Layers are built as the loader builds them: fill a struct eng_layer, call its eng_*_setup, then call
 * l.forward with an eng_fwd whose buffers are allocated at exactly the sizes the layer declares, so
 * AddressSanitizer catches any read or write past them. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "detect.h"
#include "kern.h"
#include "layer.h"
#include "net.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

#define assert_near(actual, expected, tol)                                                        \
    do {                                                                                          \
        const double a_ = (actual), e_ = (expected);                                              \
        if (!(fabs(a_ - e_) <= (tol)))                                                            \
            fail_msg("%s = %.9g, expected %.9g (tolerance %g)", #actual, a_, e_, (double)(tol));  \
    } while (0)

static void assert_floats_near(const float *actual, const float *expected, size_t n, double tol)
{
    for (size_t i = 0; i < n; i++)
        if (!(fabs((double)actual[i] - (double)expected[i]) <= tol))
            fail_msg("element %zu = %.9g, expected %.9g (tolerance %g)", i, (double)actual[i],
                     (double)expected[i], tol);
}

#include "layer_harness.h"

/* ---- activations ------------------------------------------------------------------------------ */

struct act_case {
    enum eng_act act;
    float x, y;
};

static const struct act_case act_cases[] = {
    {ENG_ACT_LINEAR, -3.5f, -3.5f},
    {ENG_ACT_LINEAR, 2.25f, 2.25f},
    {ENG_ACT_LEAKY, -2.0f, -0.2f},
    {ENG_ACT_LEAKY, 0.0f, 0.0f},
    {ENG_ACT_LEAKY, 0.5f, 0.5f},
    {ENG_ACT_RELU, -3.0f, 0.0f},
    {ENG_ACT_RELU, 2.0f, 2.0f},
    {ENG_ACT_LOGISTIC, 0.0f, 0.5f},
    {ENG_ACT_LOGISTIC, 2.0f, 0.8807970779778823f},
    {ENG_ACT_LOGISTIC, -2.0f, 0.11920292202211755f},
    {ENG_ACT_TANH, 0.5f, 0.46211715726000974f},
    {ENG_ACT_TANH, -1.0f, -0.7615941559557649f},
    {ENG_ACT_MISH, 0.0f, 0.0f},
    {ENG_ACT_MISH, 1.0f, 0.8650983882673103f},
    {ENG_ACT_MISH, -1.0f, -0.30340146137410895f},
    {ENG_ACT_MISH, 2.0f, 1.9439589595339946f},
    {ENG_ACT_MISH, 30.0f, 30.0f},                     /* softplus threshold: softplus(x) = x */
    {ENG_ACT_MISH, -30.0f, -2.8072868906520526e-12f}, /* softplus(x) = exp(x) */
    {ENG_ACT_SWISH, 0.0f, 0.0f},
    {ENG_ACT_SWISH, 1.0f, 0.7310585786300049f},
    {ENG_ACT_SWISH, -1.0f, -0.2689414213699951f},
    {ENG_ACT_SWISH, -3.0f, -0.14227761953270035f},
};

static void test_activation_spot_values_match_darknet(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof act_cases / sizeof act_cases[0]; i++) {
        float x = act_cases[i].x;
        eng_activate(&x, 1, act_cases[i].act);
        if (!(fabs((double)x - (double)act_cases[i].y) <= 1e-6 * (1.0 + fabs(act_cases[i].y))))
            fail_msg("%s(%g) = %.9g, expected %.9g", eng_act_name(act_cases[i].act),
                     (double)act_cases[i].x, (double)x, (double)act_cases[i].y);
    }
}

static void test_activation_large_inputs_stay_finite(void **state)
{
    (void)state;
    const enum eng_act acts[] = {ENG_ACT_LOGISTIC, ENG_ACT_TANH, ENG_ACT_MISH, ENG_ACT_SWISH};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
        float x[4] = {-1e30f, -100.0f, 100.0f, 1e30f};
        eng_activate(x, 4, acts[i]);
        for (int j = 0; j < 4; j++)
            if (!isfinite(x[j]))
                fail_msg("%s gives %g at element %d", eng_act_name(acts[i]), (double)x[j], j);
    }
}

static void test_activation_names_round_trip(void **state)
{
    (void)state;
    const char *names[] = {"linear", "leaky", "relu", "logistic", "tanh", "mish", "swish"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        enum eng_act act;
        assert_int_equal(eng_act_parse(names[i], &act), 0);
        assert_string_equal(eng_act_name(act), names[i]);
    }
    enum eng_act act = ENG_ACT_LEAKY;
    assert_int_equal(eng_act_parse("gelu", &act), -1);
    assert_int_equal(eng_act_parse("", &act), -1);
    assert_int_equal(eng_act_parse("Leaky", &act), -1);
}

/* ---- convolution ------------------------------------------------------------------------------ */

static struct eng_layer conv_new(int c, int h, int w, int filters, int size, int stride, int pad,
                                 int groups, enum eng_act act, const float *weights, const float *bias)
{
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, c, h, w);
    l.p.conv = (struct eng_conv){.filters = filters, .size = size, .stride = stride, .pad = pad,
                                 .groups = groups, .act = act, .weights = weights, .bias = bias};
    char why[256] = "";
    setup_ok(eng_conv_setup(&l, why, sizeof why), why);
    return l;
}

/* Direct convolution, one output at a time, in double: the reference for im2col + sgemm. */
static void conv_reference(const struct eng_layer *l, const float *in, float *out)
{
    const struct eng_conv *c = &l->p.conv;
    const int cin = l->in.c / c->groups, fout = c->filters / c->groups;
    for (int o = 0; o < c->filters; o++) {
        const int g = o / fout;
        for (int oy = 0; oy < l->out.h; oy++) {
            for (int ox = 0; ox < l->out.w; ox++) {
                double s = c->bias[o];
                for (int ic = 0; ic < cin; ic++) {
                    const int ch = g * cin + ic;
                    for (int ky = 0; ky < c->size; ky++) {
                        for (int kx = 0; kx < c->size; kx++) {
                            const int iy = oy * c->stride - c->pad + ky;
                            const int ix = ox * c->stride - c->pad + kx;
                            if (iy < 0 || iy >= l->in.h || ix < 0 || ix >= l->in.w)
                                continue;
                            s += (double)in[((size_t)ch * l->in.h + iy) * l->in.w + ix] *
                                 c->weights[(((size_t)o * cin + ic) * c->size + ky) * c->size + kx];
                        }
                    }
                }
                if (c->post_scale)
                    s = s * c->post_scale[o] + c->post_bias[o];
                out[((size_t)o * l->out.h + oy) * l->out.w + ox] = (float)s;
            }
        }
    }
    eng_activate(out, eng_shape_size(l->out), c->act);
}

static void test_conv_output_size_follows_darknet_formula(void **state)
{
    (void)state;
    const float w[5 * 5] = {0}, b[1] = {0};
    for (int n = 1; n <= 20; n++) {
        for (int f = 1; f <= 5; f++) {
            for (int s = 1; s <= 3; s++) {
                for (int p = 0; p <= 2; p++) {
                    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, 1, n, n + 1);
                    l.p.conv = (struct eng_conv){.filters = 1, .size = f, .stride = s, .pad = p,
                                                 .groups = 1, .weights = w, .bias = b};
                    char why[256] = "";
                    const int rc = eng_conv_setup(&l, why, sizeof why);
                    if (n + 2 * p < f) { /* the kernel does not fit, whatever the stride */
                        if (rc != -1)
                            fail_msg("n=%d size=%d stride=%d pad=%d accepted (out %dx%d)", n, f, s,
                                     p, l.out.h, l.out.w);
                        assert_true(why[0] != '\0');
                        continue;
                    }
                    assert_int_equal(rc, 0);
                    assert_int_equal(l.out.h, (n + 2 * p - f) / s + 1);
                    assert_int_equal(l.out.w, (n + 1 + 2 * p - f) / s + 1);
                    assert_int_equal(l.out.c, 1);
                }
            }
        }
    }
    /* The shapes of real networks. */
    struct eng_layer l = conv_new(3, 416, 416, 1, 3, 2, 1, 1, ENG_ACT_LINEAR, w, b);
    assert_int_equal(l.out.h, 208);
    assert_int_equal(l.out.w, 208);
    l = conv_new(3, 320, 320, 1, 3, 2, 1, 1, ENG_ACT_LINEAR, w, b);
    assert_int_equal(l.out.h, 160);
    l = conv_new(1, 13, 13, 1, 3, 2, 1, 1, ENG_ACT_LINEAR, w, b);
    assert_int_equal(l.out.h, 7); /* floor((13 + 2 - 3) / 2) + 1 */
}

static void test_conv_stride2_pad1_hand_computed(void **state)
{
    (void)state;
    const float in[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    const float w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, b[1] = {0.5f};
    struct eng_layer l = conv_new(1, 4, 4, 1, 3, 2, 1, 1, ENG_ACT_LINEAR, w, b);
    assert_int_equal(l.out.c, 1);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 2);
    /* Windows centred on (0,0), (0,2), (2,0), (2,2), zero outside the input. */
    const float expected[4] = {1 + 2 + 5 + 6 + 0.5f, 2 + 3 + 4 + 6 + 7 + 8 + 0.5f,
                               5 + 6 + 9 + 10 + 13 + 14 + 0.5f,
                               6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16 + 0.5f};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 4, 1e-5);
    free(out);
}

static void test_conv_padding_zero_border_hand_computed(void **state)
{
    (void)state;
    /* 3x3 box sum, stride 1, pad 1 over 1..9: every output sees only the cells inside the input. */
    const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, b[1] = {0};
    struct eng_layer l = conv_new(1, 3, 3, 1, 3, 1, 1, 1, ENG_ACT_LINEAR, w, b);
    assert_int_equal(l.out.h, 3);
    assert_int_equal(l.out.w, 3);
    const float expected[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 9, 1e-5);
    free(out);
}

static void test_conv_kernel_orientation_not_flipped(void **state)
{
    (void)state;
    /* A kernel with a single 1 at (ky=0, kx=2) picks in[y-1][x+1]: cross-correlation, as darknet. */
    const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    const float w[9] = {0, 0, 1, 0, 0, 0, 0, 0, 0}, b[1] = {0};
    struct eng_layer l = conv_new(1, 3, 3, 1, 3, 1, 1, 1, ENG_ACT_LINEAR, w, b);
    const float expected[9] = {0, 0, 0, 2, 3, 0, 5, 6, 0};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 9, 0);
    free(out);
}

static void test_conv_groups_keep_channels_apart(void **state)
{
    (void)state;
    /* Two groups of one channel each (depthwise): filter 0 is a box sum of channel 0 only, filter 1
     * doubles channel 1 only. With groups ignored, each output would mix both channels. */
    float in[18];
    for (int i = 0; i < 9; i++) {
        in[i] = (float)(i + 1);
        in[9 + i] = 10.0f * (float)(i + 1);
    }
    const float w[18] = {1, 1, 1, 1, 1, 1, 1, 1, 1, /* filter 0 */
                         0, 0, 0, 0, 2, 0, 0, 0, 0 /* filter 1 */};
    const float b[2] = {0, 1};
    struct eng_layer l = conv_new(2, 3, 3, 2, 3, 1, 1, 2, ENG_ACT_LINEAR, w, b);
    assert_int_equal(l.out.c, 2);
    /* Depthwise runs the padded-plane kernel, whose scratch is one padded plane and its outputs
     * (not an im2col matrix). */
    const struct eng_dw d = {.h = 3, .w_in = 3, .oh = 3, .ow = 3, .k = 3, .stride = 1, .pad_top = 1,
                             .pad_left = 1};
    assert_int_equal(l.work_floats, eng_dw_scratch_floats(&d));
    const float expected[18] = {12, 21, 16, 27, 45, 33, 24, 39, 28,
                                21, 41, 61, 81, 101, 121, 141, 161, 181};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 18, 1e-4);
    free(out);
}

static void test_conv_groups_two_channels_per_group_hand_computed(void **state)
{
    (void)state;
    /* 4 channels (1x1 each), 2 groups, 4 filters of 1x1: filters 0,1 see channels 0,1; filters 2,3
     * see channels 2,3. Pointwise path with groups. */
    const float in[4] = {1, 2, 3, 4};
    const float w[8] = {1, 10, /* f0: 1*1 + 10*2 */ 100, 0, /* f1: 100*1 */
                        1, 1, /* f2: 3 + 4 */ 0, -1 /* f3: -4 */};
    const float b[4] = {0, 0, 0, 0.5f};
    struct eng_layer l = conv_new(4, 1, 1, 4, 1, 1, 0, 2, ENG_ACT_LINEAR, w, b);
    const float expected[4] = {21, 100, 7, -3.5f};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 4, 1e-6);
    free(out);
}

static void test_conv_pointwise_is_gemm_without_workspace(void **state)
{
    (void)state;
    /* 3 channels of 2x2, 2 filters of 1x1: out[o][p] = sum_c w[o][c] in[c][p] + b[o]. */
    const float in[12] = {1, 2, 3, 4, /* c0 */ 0, 1, 0, -1, /* c1 */ 2, 2, 2, 2 /* c2 */};
    const float w[6] = {1, 0, 0.5f, /* f0 */ -1, 3, 0 /* f1 */};
    const float b[2] = {0.25f, -1};
    struct eng_layer l = conv_new(3, 2, 2, 2, 1, 1, 0, 1, ENG_ACT_LINEAR, w, b);
    assert_int_equal(l.work_floats, 0);
    assert_int_equal(l.out.c, 2);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 2);
    assert_near(l.flops, 2.0 * 3 * 2 * 4, 0);
    const float expected[8] = {2.25f, 3.25f, 4.25f, 5.25f, -2, 0, -4, -8};
    float *out = run(&l, in, NULL); /* work is NULL: the pointwise path must not touch it */
    assert_floats_near(out, expected, 8, 1e-6);
    free(out);
}

static void test_conv_bias_added_to_every_position(void **state)
{
    (void)state;
    float in[2 * 3 * 3];
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++)
        in[i] = (float)i;
    const float w[3 * 2 * 9] = {0};
    const float b[3] = {1.5f, -2, 0};
    struct eng_layer l = conv_new(2, 3, 3, 3, 3, 1, 1, 1, ENG_ACT_LINEAR, w, b);
    float *out = run(&l, in, NULL);
    for (int o = 0; o < 3; o++)
        for (int i = 0; i < 9; i++)
            assert_near(out[o * 9 + i], b[o], 0);
    free(out);
}

static void test_conv_activation_applied_after_bias(void **state)
{
    (void)state;
    /* One 1x1 filter of weight 1 with bias -1 over x = -1..3: pre-activation x - 1. */
    const float in[5] = {-1, 0, 1, 2, 3};
    const float w[1] = {1}, b[1] = {-1};
    const enum eng_act acts[] = {ENG_ACT_LINEAR, ENG_ACT_LEAKY, ENG_ACT_RELU, ENG_ACT_LOGISTIC,
                                 ENG_ACT_TANH, ENG_ACT_MISH, ENG_ACT_SWISH};
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        struct eng_layer l = conv_new(1, 1, 5, 1, 1, 1, 0, 1, acts[a], w, b);
        float *out = run(&l, in, NULL);
        for (int i = 0; i < 5; i++) {
            const double x = in[i] - 1.0;
            double y = x;
            switch (acts[a]) {
            case ENG_ACT_LINEAR: y = x; break;
            case ENG_ACT_LEAKY: y = x > 0 ? x : 0.1 * x; break;
            case ENG_ACT_RELU: y = x > 0 ? x : 0; break;
            case ENG_ACT_LOGISTIC: y = 1 / (1 + exp(-x)); break;
            case ENG_ACT_TANH: y = tanh(x); break;
            case ENG_ACT_MISH: y = x * tanh(log1p(exp(x))); break;
            case ENG_ACT_SWISH: y = x / (1 + exp(-x)); break;
            }
            if (!(fabs(out[i] - y) <= 1e-6))
                fail_msg("%s: x=%g gives %.9g, expected %.9g", eng_act_name(acts[a]), x,
                         (double)out[i], y);
        }
        free(out);
    }
}

struct conv_shape {
    int c, h, w, filters, size, stride, pad, groups;
    enum eng_act act;
};

/* The direct depthwise kernel (conv_dw.c) has a vectorized interior and a checked border: shapes
 * below put the border/interior split everywhere it can fall, with wide rows for the vector tails. */
static void test_conv_depthwise_direct_matches_naive_reference(void **state)
{
    (void)state;
    static const struct conv_shape shapes[] = {
        {4, 37, 53, 4, 3, 1, 1, 4, ENG_ACT_LEAKY}, {4, 38, 54, 4, 3, 2, 1, 4, ENG_ACT_LEAKY},
        {3, 37, 53, 3, 3, 2, 1, 3, ENG_ACT_LINEAR}, {3, 9, 70, 3, 3, 1, 0, 3, ENG_ACT_RELU},
        {3, 9, 71, 3, 3, 2, 0, 3, ENG_ACT_LINEAR}, {2, 6, 65, 2, 3, 1, 2, 2, ENG_ACT_LINEAR},
        {2, 7, 66, 2, 3, 2, 2, 2, ENG_ACT_LINEAR}, {5, 21, 33, 5, 5, 1, 2, 5, ENG_ACT_MISH},
        {5, 21, 33, 5, 5, 2, 2, 5, ENG_ACT_LINEAR}, {3, 8, 40, 3, 1, 1, 0, 3, ENG_ACT_LINEAR},
        {3, 1, 1, 3, 3, 1, 1, 3, ENG_ACT_LINEAR},  {3, 2, 2, 3, 3, 2, 1, 3, ENG_ACT_LINEAR},
        {2, 3, 3, 2, 3, 1, 1, 2, ENG_ACT_LINEAR},  {2, 17, 160, 2, 3, 1, 1, 2, ENG_ACT_SWISH},
    };
    rng_state = 7;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct conv_shape *s = &shapes[i];
        const size_t nw = (size_t)s->filters * s->size * s->size;
        float *w = floats_random(nw), *b = floats_random((size_t)s->filters);
        float *in = floats_random((size_t)s->c * s->h * s->w);
        struct eng_layer l = conv_new(s->c, s->h, s->w, s->filters, s->size, s->stride, s->pad,
                                      s->groups, s->act, w, b);
        /* sizes 3 and 5 at stride 1, and at stride 2 up to 32 outputs wide, run the padded-plane
         * kernel (kern.h), the rest the row kernel (conv_dw.c), which also runs on every shape */
        const int plane = (s->size == 3 || s->size == 5) &&
                          (s->stride == 1 || (s->stride == 2 && l.out.w <= 32));
        assert_true(plane == (l.forward != eng_conv_depthwise_forward));
        struct eng_layer rows = l;
        rows.forward = eng_conv_depthwise_forward;
        rows.work_floats = (size_t)s->w;
        float *ref = floats_new(eng_shape_size(l.out));
        conv_reference(&l, in, ref);
        float *out = run(&l, in, NULL), *out_rows = run(&rows, in, NULL);
        for (size_t j = 0; j < eng_shape_size(l.out); j++)
            if (!(fabs((double)out[j] - (double)ref[j]) <= 1e-5 * (1.0 + fabs(ref[j]))) ||
                !(fabs((double)out_rows[j] - (double)ref[j]) <= 1e-5 * (1.0 + fabs(ref[j]))))
                fail_msg("shape %zu, element %zu: %.9g (rows %.9g), reference %.9g", i, j,
                         (double)out[j], (double)out_rows[j], (double)ref[j]);
        free(out);
        free(out_rows);
        free(ref);
        free(in);
        free(b);
        free(w);
    }
}

/* Random weights, bias (and with_post a post affine) and input for shape s: the layer's output must
 * match conv_reference within 1e-4 relative. */
static void check_conv_shape(const struct conv_shape *s, size_t i, int with_post)
{
    const size_t nw = (size_t)s->filters * (s->c / s->groups) * s->size * s->size;
    float *w = floats_random(nw), *b = floats_random((size_t)s->filters);
    float *ps = with_post ? floats_random((size_t)s->filters) : NULL;
    float *pb = with_post ? floats_random((size_t)s->filters) : NULL;
    float *in = floats_random((size_t)s->c * s->h * s->w);
    struct eng_layer l = conv_new(s->c, s->h, s->w, s->filters, s->size, s->stride, s->pad, s->groups,
                                  s->act, w, b);
    l.p.conv.post_scale = ps;
    l.p.conv.post_bias = pb;
    float *ref = floats_new(eng_shape_size(l.out));
    conv_reference(&l, in, ref);
    float *out = run(&l, in, NULL);
    for (size_t j = 0; j < eng_shape_size(l.out); j++)
        if (!(fabs((double)out[j] - (double)ref[j]) <= 1e-4 * (1.0 + fabs(ref[j]))))
            fail_msg("shape %zu, element %zu: %.9g, reference %.9g", i, j, (double)out[j], (double)ref[j]);
    free(out);
    free(ref);
    free(in);
    free(pb);
    free(ps);
    free(b);
    free(w);
}

static void test_conv_im2col_sgemm_matches_naive_reference(void **state)
{
    (void)state;
    static const struct conv_shape shapes[] = {
        {3, 7, 9, 4, 3, 1, 1, 1, ENG_ACT_LINEAR},
        {4, 8, 8, 6, 3, 2, 1, 2, ENG_ACT_LEAKY},     /* stride 2, groups 2 */
        {8, 5, 6, 8, 3, 1, 1, 8, ENG_ACT_LINEAR},    /* depthwise */
        {8, 9, 7, 16, 3, 2, 1, 8, ENG_ACT_LINEAR},   /* depthwise, 2 filters per group, stride 2 */
        {6, 6, 5, 12, 1, 1, 0, 3, ENG_ACT_LINEAR},   /* grouped pointwise */
        {5, 9, 7, 3, 5, 2, 2, 1, ENG_ACT_MISH},      /* 5x5 stride 2 */
        {2, 4, 5, 2, 1, 2, 0, 1, ENG_ACT_LINEAR},    /* 1x1 stride 2: not the pointwise path */
        {3, 6, 6, 2, 1, 1, 1, 1, ENG_ACT_LINEAR},    /* 1x1 with a zero border */
        {16, 13, 11, 32, 3, 1, 1, 1, ENG_ACT_LEAKY}, /* enough work for a real GEMM */
        {3, 10, 10, 5, 2, 2, 0, 1, ENG_ACT_LINEAR},  /* even kernel */
        {4, 3, 3, 4, 3, 1, 0, 4, ENG_ACT_SWISH},     /* 1x1 output */
        {3, 1, 1, 7, 3, 1, 1, 1, ENG_ACT_LINEAR},    /* 1x1 input, only the centre tap counts */
        {3, 11, 4, 3, 3, 3, 2, 3, ENG_ACT_LINEAR},   /* pad wider than needed, stride 3 */
        /* small k at stride 1, 32+ wide: conv_direct.c, from a padded copy or (pad 0) the input */
        {3, 40, 37, 16, 3, 1, 1, 1, ENG_ACT_LEAKY},
        {7, 20, 39, 9, 3, 1, 1, 1, ENG_ACT_LINEAR},  /* k = 63 */
        {16, 9, 48, 21, 3, 1, 1, 1, ENG_ACT_LEAKY},  /* k = 144 */
        {7, 20, 19, 9, 3, 1, 1, 1, ENG_ACT_LINEAR},  /* narrow: over the padded width, one chunk */
        /* narrow planes with k past one chunk (PLANE_CHUNK_K): the face recognizer's 3x3 layers */
        {32, 35, 35, 32, 3, 1, 1, 1, ENG_ACT_RELU},   /* k = 288 */
        {64, 17, 17, 64, 3, 1, 1, 1, ENG_ACT_LINEAR}, /* k = 576 */
        {128, 8, 8, 40, 3, 1, 1, 1, ENG_ACT_RELU},    /* k = 1152, 8 wide */
        {33, 10, 9, 13, 3, 1, 1, 1, ENG_ACT_LEAKY},   /* k = 297, 13 filters: partial register tiles */
        {20, 14, 12, 11, 5, 1, 0, 1, ENG_ACT_LEAKY},  /* 5x5 unpadded, k = 500 */
        {16, 12, 7, 8, 3, 1, 1, 1, ENG_ACT_LINEAR},   /* 7 wide: im2col and the small-k kernel */
        {3, 18, 41, 10, 3, 1, 0, 1, ENG_ACT_RELU},
        {2, 9, 40, 17, 5, 1, 2, 1, ENG_ACT_LEAKY},   /* 5x5 */
        /* stride 2 (conv_direct.c from the input's four phase planes), by rows or narrow planes */
        {3, 33, 35, 20, 3, 2, 1, 1, ENG_ACT_LOGISTIC}, /* 17 x 18 */
        {3, 150, 150, 32, 7, 2, 0, 1, ENG_ACT_RELU},   /* the face recognizer's first layer, 72 wide */
        {3, 41, 67, 16, 3, 2, 1, 1, ENG_ACT_LEAKY},    /* 21 x 34, odd sizes */
        {32, 35, 35, 40, 3, 2, 0, 1, ENG_ACT_RELU},    /* 17 x 17, k = 288 */
        {5, 20, 18, 7, 5, 2, 2, 1, ENG_ACT_LINEAR},    /* 5x5: 10 x 9 */
        {4, 12, 30, 6, 2, 2, 0, 1, ENG_ACT_LINEAR},    /* even kernel, 6 x 15 */
        {3, 30, 70, 5, 3, 3, 1, 1, ENG_ACT_LINEAR},    /* stride 3: im2col */
        /* outputs of up to 16 pixels (small_n): the small-n kernel, as the face recognizer's end */
        {256, 4, 4, 40, 3, 1, 1, 1, ENG_ACT_RELU},   /* 16 pixels, k = 2304 */
        {130, 3, 3, 9, 3, 1, 0, 1, ENG_ACT_LINEAR},  /* 1 pixel */
        {72, 5, 5, 19, 3, 2, 1, 1, ENG_ACT_LEAKY},   /* 9 pixels, stride 2 */
        {40, 4, 5, 34, 3, 1, 1, 2, ENG_ACT_LINEAR},  /* 20 pixels, 2 groups: back to sgemm */
        /* k past the direct kernels, wide outputs: the packed GEMM (AVX sets) unfolding the input into
         * its panels itself, across k blocks, column blocks and output rows; sgemm on the plain set */
        {48, 34, 40, 70, 3, 1, 1, 1, ENG_ACT_LEAKY},  /* k = 432, 1360 pixels */
        {100, 9, 45, 13, 3, 2, 1, 1, ENG_ACT_MISH},   /* k = 900, stride 2, 5 x 23 */
        {90, 16, 33, 20, 3, 1, 1, 2, ENG_ACT_RELU},   /* 2 groups, k = 405 */
    };
    rng_state = 42;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_conv_shape(&shapes[i], i, 0);
}

/* A per-channel affine after the bias (the face recognizer's scale layers) on every path a convolution
 * can take: plane and row modes, stride 2, the small-n kernel, the small-k kernel on im2col, sgemm,
 * groups, the pointwise kernel. */
static void test_conv_post_affine_on_every_path(void **state)
{
    (void)state;
    static const struct conv_shape shapes[] = {
        {32, 35, 35, 32, 3, 1, 1, 1, ENG_ACT_RELU},   /* plane mode, two chunks */
        {64, 17, 17, 24, 3, 1, 1, 1, ENG_ACT_LINEAR}, /* plane mode, four chunks */
        {3, 40, 37, 16, 3, 1, 1, 1, ENG_ACT_LEAKY},   /* row mode */
        {3, 41, 67, 16, 3, 2, 1, 1, ENG_ACT_RELU},    /* stride 2, row mode */
        {256, 4, 4, 40, 3, 1, 1, 1, ENG_ACT_RELU},    /* small-n */
        {130, 3, 3, 9, 3, 1, 0, 1, ENG_ACT_LINEAR},   /* 1 pixel */
        {3, 30, 70, 5, 3, 3, 1, 1, ENG_ACT_RELU},     /* stride 3, k = 27: small-k on im2col */
        {20, 30, 40, 16, 3, 3, 1, 1, ENG_ACT_LEAKY},  /* stride 3, k = 180: sgemm */
        {4, 8, 8, 6, 3, 2, 1, 2, ENG_ACT_RELU},       /* 2 groups */
        {6, 6, 5, 12, 1, 1, 0, 3, ENG_ACT_LINEAR},    /* grouped pointwise */
        {16, 9, 40, 21, 1, 1, 0, 1, ENG_ACT_MISH},    /* pointwise, an activation applied after */
    };
    rng_state = 7;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_conv_shape(&shapes[i], i, 1);
    /* both halves or neither; never on a depthwise layer */
    static const float dw[4 * 9], one[4];
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, 4, 6, 6);
    l.p.conv = (struct eng_conv){.filters = 4, .size = 3, .stride = 1, .pad = 1, .groups = 4, .weights = dw,
                                 .post_scale = one, .post_bias = one};
    char why[256] = "";
    assert_int_equal(eng_conv_setup(&l, why, sizeof why), -1);
    assert_non_null(strstr(why, "depthwise"));
    l.p.conv.groups = 1;
    l.p.conv.post_bias = NULL;
    assert_int_equal(eng_conv_setup(&l, why, sizeof why), -1);
    assert_non_null(strstr(why, "both"));
}

/* Which path the small-k shapes above take: stride 1 reads the input directly (conv_direct.c). */
static void test_conv_small_k_stride1_goes_direct(void **state)
{
    (void)state;
    static const float w[16 * 3 * 3 * 3];
    struct eng_layer l = conv_new(3, 40, 37, 16, 3, 1, 1, 1, ENG_ACT_LEAKY, w, NULL);
    assert_true(l.forward == eng_conv_direct_forward);
    assert_int_equal(l.work_floats, 3 * 42 * 39); /* the padded copy */
    l = conv_new(3, 40, 37, 16, 3, 1, 0, 1, ENG_ACT_LEAKY, w, NULL);
    assert_true(l.forward == eng_conv_direct_forward);
    assert_int_equal(l.work_floats, 0); /* reads the input itself */
    l = conv_new(3, 40, 37, 16, 3, 2, 1, 1, ENG_ACT_LEAKY, w, NULL);
    assert_true(l.forward == eng_conv_direct_forward); /* stride 2: from four phase planes */
    l = conv_new(3, 40, 37, 16, 3, 3, 1, 1, ENG_ACT_LEAKY, w, NULL);
    assert_true(l.forward != eng_conv_direct_forward); /* stride 3 */
    l = conv_new(3, 40, 31, 16, 3, 1, 1, 1, ENG_ACT_LEAKY, w, NULL);
    assert_true(l.forward == eng_conv_direct_forward); /* 31 wide: over the padded width */
    l = conv_new(3, 40, 7, 16, 3, 1, 1, 1, ENG_ACT_LEAKY, w, NULL);
    assert_true(l.forward != eng_conv_direct_forward); /* 7 wide: too much padding to compute */
    static const float w2[8 * 18 * 3 * 3];
    l = conv_new(18, 40, 37, 8, 3, 1, 1, 1, ENG_ACT_LEAKY, w2, NULL);
    assert_true(l.forward == eng_conv_direct_forward); /* k = 162, 37 wide: a plane in chunks */
    l = conv_new(18, 120, 37, 8, 3, 1, 1, 1, ENG_ACT_LEAKY, w2, NULL);
    assert_true(l.forward != eng_conv_direct_forward); /* k = 162, 120 x 39: too big a plane */
    l = conv_new(18, 20, 20, 8, 3, 1, 1, 1, ENG_ACT_LEAKY, w2, NULL);
    assert_true(l.forward == eng_conv_direct_forward); /* k = 162, 20 wide: chunks of taps */
    l = conv_new(18, 200, 20, 8, 3, 1, 1, 1, ENG_ACT_LEAKY, w2, NULL);
    assert_true(l.forward != eng_conv_direct_forward); /* 200 x 22 padded pixels: too big a plane */
}

static void test_conv_setup_bad_groups_rejected(void **state)
{
    (void)state;
    const float w[64] = {0}, b[8] = {0};
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, 3, 4, 4);
    l.p.conv = (struct eng_conv){.filters = 4, .size = 1, .stride = 1, .groups = 2, .weights = w,
                                 .bias = b};
    char why[256] = "";
    assert_int_equal(eng_conv_setup(&l, why, sizeof why), -1);
    assert_string_equal(why, "groups=2 must divide input channels (3) and filters (4)");

    l = layer_new(ENG_LAYER_CONV, 0, 4, 4, 4);
    l.p.conv = (struct eng_conv){.filters = 3, .size = 1, .stride = 1, .groups = 2, .weights = w,
                                 .bias = b};
    assert_int_equal(eng_conv_setup(&l, why, sizeof why), -1);

    l = layer_new(ENG_LAYER_CONV, 0, 4, 4, 4);
    l.p.conv = (struct eng_conv){.filters = 4, .size = 1, .stride = 1, .groups = 0, .weights = w,
                                 .bias = b};
    assert_int_equal(eng_conv_setup(&l, why, sizeof why), -1);
}

static void test_conv_setup_kernel_larger_than_input_rejected(void **state)
{
    (void)state;
    const float w[25] = {0}, b[1] = {0};
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, 1, 3, 3);
    l.p.conv = (struct eng_conv){.filters = 1, .size = 5, .stride = 1, .pad = 0, .groups = 1,
                                 .weights = w, .bias = b};
    char why[256] = "";
    assert_int_equal(eng_conv_setup(&l, why, sizeof why), -1);
    assert_string_equal(why, "a 5x5 kernel does not fit the 3x3 input");
}

/* ---- maxpool / avgpool ------------------------------------------------------------------------ */

static struct eng_layer pool_new(enum eng_layer_kind kind, int c, int h, int w, int size, int stride,
                                 int pad)
{
    struct eng_layer l = layer_new(kind, 0, c, h, w);
    l.p.pool = (struct eng_pool){.size = size, .stride = stride, .pad = pad};
    char why[256] = "";
    setup_ok(kind == ENG_LAYER_MAXPOOL ? eng_maxpool_setup(&l, why, sizeof why)
                                       : eng_avgpool_setup(&l, why, sizeof why),
             why);
    return l;
}

static void test_maxpool_size2_stride1_keeps_size(void **state)
{
    (void)state;
    /* yolov3-tiny's 13x13 -> 13x13 maxpool: padding = size - 1 = 1, all of it after the input. */
    const float in[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    struct eng_layer l = pool_new(ENG_LAYER_MAXPOOL, 1, 3, 3, 2, 1, 1);
    assert_int_equal(l.out.h, 3);
    assert_int_equal(l.out.w, 3);
    const float expected[9] = {5, 6, 6, 8, 9, 9, 8, 9, 9};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 9, 0);
    free(out);

    l = pool_new(ENG_LAYER_MAXPOOL, 512, 13, 13, 2, 1, 1);
    assert_int_equal(l.out.c, 512);
    assert_int_equal(l.out.h, 13);
    assert_int_equal(l.out.w, 13);
}

static void test_maxpool_padding_never_wins_at_borders(void **state)
{
    (void)state;
    /* All inputs negative: a padding cell read as 0 would win at every border. */
    const float in[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
    struct eng_layer l = pool_new(ENG_LAYER_MAXPOOL, 1, 3, 3, 3, 1, 2);
    assert_int_equal(l.out.h, 3);
    assert_int_equal(l.out.w, 3);
    const float expected[9] = {-1, -1, -2, -1, -1, -2, -4, -4, -5};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 9, 0);
    free(out);
}

static void test_maxpool_stride2_odd_size_hand_computed(void **state)
{
    (void)state;
    float in[25];
    for (int i = 0; i < 25; i++)
        in[i] = (float)(i + 1);
    /* darknet default padding = size - 1 = 1: (5 + 1 - 2) / 2 + 1 = 3, the last window half outside. */
    struct eng_layer l = pool_new(ENG_LAYER_MAXPOOL, 1, 5, 5, 2, 2, 1);
    assert_int_equal(l.out.h, 3);
    assert_int_equal(l.out.w, 3);
    const float expected[9] = {7, 9, 10, 17, 19, 20, 22, 24, 25};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 9, 0);
    free(out);

    /* padding=0: (5 - 2) / 2 + 1 = 2, the last row and column are dropped. */
    l = pool_new(ENG_LAYER_MAXPOOL, 1, 5, 5, 2, 2, 0);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 2);
    const float expected0[4] = {7, 9, 17, 19};
    out = run(&l, in, NULL);
    assert_floats_near(out, expected0, 4, 0);
    free(out);

    /* yolov3-tiny's 13 -> 7 with the default padding, and 416 -> 208. */
    l = pool_new(ENG_LAYER_MAXPOOL, 1, 13, 13, 2, 2, 1);
    assert_int_equal(l.out.h, 7);
    l = pool_new(ENG_LAYER_MAXPOOL, 1, 416, 416, 2, 2, 1);
    assert_int_equal(l.out.h, 208);
}

static void test_maxpool_channels_pooled_separately(void **state)
{
    (void)state;
    const float in[8] = {1, 9, 2, 3, /* c0 */ -5, -6, -7, -8 /* c1 */};
    struct eng_layer l = pool_new(ENG_LAYER_MAXPOOL, 2, 2, 2, 2, 2, 0);
    assert_int_equal(l.out.c, 2);
    assert_int_equal(l.out.h, 1);
    const float expected[2] = {9, -5};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 2, 0);
    free(out);
}

static void test_maxpool_spp_sizes_keep_size_and_match_reference(void **state)
{
    (void)state;
    /* yolov4's SPP block: size 5, 9, 13 with stride 1 and padding size - 1 keep 19x19 (at 608). The
     * reference takes the max over the window centred on each cell, clipped to the input. */
    const int sizes[] = {5, 9, 13};
    const int c = 2, h = 19, w = 17;
    rng_state = 7;
    float *in = floats_random((size_t)c * h * w);
    for (size_t k = 0; k < 3; k++) {
        const int s = sizes[k], r = (s - 1) / 2;
        struct eng_layer l = pool_new(ENG_LAYER_MAXPOOL, c, h, w, s, 1, s - 1);
        assert_int_equal(l.out.c, c);
        assert_int_equal(l.out.h, h);
        assert_int_equal(l.out.w, w);
        float *out = run(&l, in, NULL);
        for (int ch = 0; ch < c; ch++) {
            for (int y = 0; y < h; y++) {
                for (int x = 0; x < w; x++) {
                    float best = -INFINITY;
                    for (int yy = y - r; yy <= y + r; yy++)
                        for (int xx = x - r; xx <= x + r; xx++)
                            if (yy >= 0 && yy < h && xx >= 0 && xx < w &&
                                in[((size_t)ch * h + yy) * w + xx] > best)
                                best = in[((size_t)ch * h + yy) * w + xx];
                    assert_near(out[((size_t)ch * h + y) * w + x], best, 0);
                }
            }
        }
        free(out);
    }
    free(in);
}

/* Sizes 2 and 3 (the fast interior path), 4 and 5 (at stride 1 the separable path, pool.c), strides
 * 1-3, every padding darknet allows, widths around the interior's edges and beyond the separable
 * path's stack row (300): against the window maximum of what lies inside the input. */
static void test_maxpool_random_shapes_match_reference(void **state)
{
    (void)state;
    rng_state = 17;
    const int widths[] = {2, 3, 4, 7, 13, 26, 70, 99, 300}; /* 70, 99: whole vectors of the 2x2 kernel */
    for (int size = 2; size <= 5; size++)
        for (int stride = 1; stride <= 3; stride++)
            for (int pad = 0; pad <= 2 * (size - 1); pad++)
                for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
                    const int c = 2, w = widths[wi], h = widths[(wi + 2) % 8]; /* h <= 99 */
                    if (pad / 2 >= size || pad - pad / 2 >= size || w + pad < size || h + pad < size)
                        continue;
                    struct eng_layer l = pool_new(ENG_LAYER_MAXPOOL, c, h, w, size, stride, pad);
                    float *in = floats_random((size_t)c * h * w);
                    float *out = run(&l, in, NULL);
                    for (int ch = 0; ch < c; ch++)
                        for (int y = 0; y < l.out.h; y++)
                            for (int x = 0; x < l.out.w; x++) {
                                float best = -INFINITY;
                                for (int ky = 0; ky < size; ky++)
                                    for (int kx = 0; kx < size; kx++) {
                                        const int iy = y * stride - pad / 2 + ky;
                                        const int ix = x * stride - pad / 2 + kx;
                                        if (iy >= 0 && iy < h && ix >= 0 && ix < w &&
                                            in[((size_t)ch * h + iy) * w + ix] > best)
                                            best = in[((size_t)ch * h + iy) * w + ix];
                                    }
                                const float got = out[((size_t)ch * l.out.h + y) * l.out.w + x];
                                if (got != best)
                                    fail_msg("size %d stride %d pad %d %dx%d: out[%d][%d][%d] = %g, "
                                             "expected %g", size, stride, pad, w, h, ch, y, x,
                                             (double)got, (double)best);
                            }
                    free(out);
                    free(in);
                }
}

static void test_maxpool_setup_bad_parameters_rejected(void **state)
{
    (void)state;
    char why[256] = "";
    struct eng_layer l = layer_new(ENG_LAYER_MAXPOOL, 0, 1, 4, 4);
    l.p.pool = (struct eng_pool){.size = 2, .stride = 2, .pad = 4}; /* a window wholly in padding */
    assert_int_equal(eng_maxpool_setup(&l, why, sizeof why), -1);
    assert_string_equal(why, "padding=4 is too large for size=2");

    l = layer_new(ENG_LAYER_MAXPOOL, 0, 1, 2, 2);
    l.p.pool = (struct eng_pool){.size = 5, .stride = 1, .pad = 0};
    assert_int_equal(eng_maxpool_setup(&l, why, sizeof why), -1);

    l = layer_new(ENG_LAYER_MAXPOOL, 0, 1, 2, 2);
    l.p.pool = (struct eng_pool){.size = 2, .stride = 0, .pad = 0};
    assert_int_equal(eng_maxpool_setup(&l, why, sizeof why), -1);
}

static void test_avgpool_global_mean_per_channel(void **state)
{
    (void)state;
    const float in[12] = {1, 2, 3, 4, 5, 6, /* c0: mean 3.5 */ -2, -2, -2, -2, -2, -2 /* c1 */};
    struct eng_layer l = pool_new(ENG_LAYER_AVGPOOL, 2, 2, 3, 0, 0, 0);
    assert_int_equal(l.out.c, 2);
    assert_int_equal(l.out.h, 1);
    assert_int_equal(l.out.w, 1);
    const float expected[2] = {3.5f, -2};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 2, 1e-6);
    free(out);
}

/* ---- upsample --------------------------------------------------------------------------------- */

static struct eng_layer upsample_new(int index, int c, int h, int w, int stride, float scale)
{
    struct eng_layer l = layer_new(ENG_LAYER_UPSAMPLE, index, c, h, w);
    l.p.upsample = (struct eng_upsample){.stride = stride, .scale = scale};
    char why[256] = "";
    setup_ok(eng_upsample_setup(&l, why, sizeof why), why);
    return l;
}

static void test_upsample_stride2_nearest_neighbour(void **state)
{
    (void)state;
    const float in[8] = {1, 2, 3, 4, /* c0 */ 5, 6, 7, 8 /* c1 */};
    struct eng_layer l = upsample_new(0, 2, 2, 2, 2, 1.0f);
    assert_int_equal(l.out.c, 2);
    assert_int_equal(l.out.h, 4);
    assert_int_equal(l.out.w, 4);
    const float expected[32] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4,
                                5, 5, 6, 6, 5, 5, 6, 6, 7, 7, 8, 8, 7, 7, 8, 8};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 32, 0);
    free(out);
}

static void test_upsample_scale_multiplies_and_odd_shape(void **state)
{
    (void)state;
    const float in[3] = {1, -2, 4}; /* 1x3 */
    struct eng_layer l = upsample_new(0, 1, 1, 3, 2, 0.5f);
    assert_int_equal(l.out.h, 2);
    assert_int_equal(l.out.w, 6);
    const float expected[12] = {0.5f, 0.5f, -1, -1, 2, 2, 0.5f, 0.5f, -1, -1, 2, 2};
    float *out = run(&l, in, NULL);
    assert_floats_near(out, expected, 12, 0);
    free(out);

    l = upsample_new(0, 1, 1, 1, 3, 2.0f);
    assert_int_equal(l.out.h, 3);
    assert_int_equal(l.out.w, 3);
    const float one = 1.5f;
    out = run(&l, &one, NULL);
    for (int i = 0; i < 9; i++)
        assert_near(out[i], 3.0f, 0);
    free(out);
}

static void test_upsample_setup_bad_stride_rejected(void **state)
{
    (void)state;
    char why[256] = "";
    struct eng_layer l = layer_new(ENG_LAYER_UPSAMPLE, 0, 1, 2, 2);
    l.p.upsample = (struct eng_upsample){.stride = 0, .scale = 1};
    assert_int_equal(eng_upsample_setup(&l, why, sizeof why), -1);
    assert_string_equal(why, "stride=0 is not supported (1..64)");
    l.p.upsample.stride = -2;
    assert_int_equal(eng_upsample_setup(&l, why, sizeof why), -1);
}

/* ---- route ------------------------------------------------------------------------------------ */

static void test_route_concatenates_inputs_in_listed_order(void **state)
{
    (void)state;
    /* Layers 0, 1, 2 output 1, 2 and 3 channels of 2x2; route layers = 2, 0, 1 at index 3. */
    struct eng_layer layers[4];
    float a[4] = {1, 2, 3, 4}, b[8] = {10, 11, 12, 13, 14, 15, 16, 17};
    float c[12] = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12};
    float *outs[4] = {a, b, c, NULL};
    for (int i = 0; i < 3; i++) {
        layers[i] = layer_new(ENG_LAYER_CONV, i, 1, 2, 2);
        layers[i].out = (struct eng_shape){i + 1, 2, 2};
    }
    layers[3] = layer_new(ENG_LAYER_ROUTE, 3, 3, 2, 2);
    struct eng_route *r = &layers[3].p.route;
    r->n = 3;
    r->inputs[0] = 2;
    r->inputs[1] = 0;
    r->inputs[2] = 1;
    r->groups = 1;
    char why[256] = "";
    setup_ok(eng_route_setup(&layers[3], layers, why, sizeof why), why);
    assert_int_equal(layers[3].out.c, 6);
    assert_int_equal(layers[3].out.h, 2);
    assert_int_equal(layers[3].out.w, 2);
    assert_int_equal(r->channels[0], 3);
    assert_int_equal(r->channels[1], 1);
    assert_int_equal(r->channels[2], 2);
    const float expected[24] = {-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12,
                                1,  2,  3,  4,  10, 11, 12, 13, 14, 15,  16,  17};
    float *out = run(&layers[3], c, outs);
    assert_floats_near(out, expected, 24, 0);
    free(out);
}

static void test_route_single_input_takes_its_shape(void **state)
{
    (void)state;
    /* yolov3-tiny's `layers = -4`: the route's shape is the routed layer's, not the previous one's. */
    struct eng_layer layers[3];
    float a[2 * 2 * 3] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    float b[1] = {0};
    float *outs[3] = {a, b, NULL};
    layers[0] = layer_new(ENG_LAYER_CONV, 0, 1, 1, 1);
    layers[0].out = (struct eng_shape){2, 2, 3};
    layers[1] = layer_new(ENG_LAYER_CONV, 1, 2, 2, 3);
    layers[1].out = (struct eng_shape){1, 1, 1};
    layers[2] = layer_new(ENG_LAYER_ROUTE, 2, 1, 1, 1);
    layers[2].p.route = (struct eng_route){.n = 1, .inputs = {0}, .groups = 1};
    char why[256] = "";
    setup_ok(eng_route_setup(&layers[2], layers, why, sizeof why), why);
    assert_int_equal(layers[2].out.c, 2);
    assert_int_equal(layers[2].out.h, 2);
    assert_int_equal(layers[2].out.w, 3);
    float *out = run(&layers[2], b, outs);
    assert_floats_near(out, a, 12, 0);
    free(out);
}

static void test_route_groups2_group_id1_takes_second_half(void **state)
{
    (void)state;
    /* yolov4-tiny: [route] layers=-1 groups=2 group_id=1 keeps channels 2 and 3 of 4. */
    struct eng_layer layers[3];
    float a[8] = {0, 0, 1, 1, 2, 2, 3, 3}; /* 4 channels of 1x2 */
    float b[8] = {10, 10, 11, 11, 12, 12, 13, 13};
    float *outs[3] = {a, b, NULL};
    for (int i = 0; i < 2; i++) {
        layers[i] = layer_new(ENG_LAYER_CONV, i, 4, 1, 2);
        layers[i].out = (struct eng_shape){4, 1, 2};
    }
    layers[2] = layer_new(ENG_LAYER_ROUTE, 2, 4, 1, 2);
    layers[2].p.route = (struct eng_route){.n = 1, .inputs = {0}, .groups = 2, .group_id = 1};
    char why[256] = "";
    setup_ok(eng_route_setup(&layers[2], layers, why, sizeof why), why);
    assert_int_equal(layers[2].out.c, 2);
    const float expected[4] = {2, 2, 3, 3};
    float *out = run(&layers[2], b, outs);
    assert_floats_near(out, expected, 4, 0);
    free(out);

    layers[2].p.route = (struct eng_route){.n = 1, .inputs = {0}, .groups = 2, .group_id = 0};
    setup_ok(eng_route_setup(&layers[2], layers, why, sizeof why), why);
    const float expected0[4] = {0, 0, 1, 1};
    out = run(&layers[2], b, outs);
    assert_floats_near(out, expected0, 4, 0);
    free(out);

    /* With two inputs each contributes its own slice. */
    layers[2].p.route = (struct eng_route){.n = 2, .inputs = {1, 0}, .groups = 2, .group_id = 1};
    setup_ok(eng_route_setup(&layers[2], layers, why, sizeof why), why);
    assert_int_equal(layers[2].out.c, 4);
    const float expected2[8] = {12, 12, 13, 13, 2, 2, 3, 3};
    out = run(&layers[2], b, outs);
    assert_floats_near(out, expected2, 8, 0);
    free(out);
}

static void test_route_setup_bad_inputs_rejected(void **state)
{
    (void)state;
    struct eng_layer layers[3];
    layers[0] = layer_new(ENG_LAYER_CONV, 0, 1, 1, 1);
    layers[0].out = (struct eng_shape){3, 4, 4};
    layers[1] = layer_new(ENG_LAYER_CONV, 1, 3, 4, 4);
    layers[1].out = (struct eng_shape){2, 2, 2};
    char why[256] = "";

    layers[2] = layer_new(ENG_LAYER_ROUTE, 2, 2, 2, 2);
    layers[2].p.route = (struct eng_route){.n = 1, .inputs = {2}, .groups = 1};
    assert_int_equal(eng_route_setup(&layers[2], layers, why, sizeof why), -1);
    assert_string_equal(why, "layer 2 does not exist before layer 2");

    layers[2].p.route = (struct eng_route){.n = 1, .inputs = {-1}, .groups = 1};
    assert_int_equal(eng_route_setup(&layers[2], layers, why, sizeof why), -1);

    layers[2].p.route = (struct eng_route){.n = 2, .inputs = {0, 1}, .groups = 1};
    assert_int_equal(eng_route_setup(&layers[2], layers, why, sizeof why), -1);
    assert_string_equal(why, "layer 1 is 2x2 but layer 0 is 4x4");

    layers[2].p.route = (struct eng_route){.n = 1, .inputs = {0}, .groups = 2, .group_id = 0};
    assert_int_equal(eng_route_setup(&layers[2], layers, why, sizeof why), -1);
    assert_string_equal(why, "layer 0 has 3 channels, not divisible by groups=2");

    layers[2].p.route = (struct eng_route){.n = 1, .inputs = {1}, .groups = 2, .group_id = 2};
    assert_int_equal(eng_route_setup(&layers[2], layers, why, sizeof why), -1);

    layers[2].p.route = (struct eng_route){.n = 0, .groups = 1};
    assert_int_equal(eng_route_setup(&layers[2], layers, why, sizeof why), -1);
}

/* ---- shortcut and dropout --------------------------------------------------------------------- */

static void test_shortcut_adds_from_layer_then_activates(void **state)
{
    (void)state;
    struct eng_layer layers[3];
    float a[4] = {0.5f, 0.5f, -10, 1}, prev[4] = {1, -2, 3, -4};
    float *outs[3] = {a, prev, NULL};
    for (int i = 0; i < 2; i++) {
        layers[i] = layer_new(ENG_LAYER_CONV, i, 1, 2, 2);
        layers[i].out = (struct eng_shape){1, 2, 2};
    }
    layers[2] = layer_new(ENG_LAYER_SHORTCUT, 2, 1, 2, 2);
    layers[2].p.shortcut = (struct eng_shortcut){.from = 0, .act = ENG_ACT_LINEAR};
    char why[256] = "";
    setup_ok(eng_shortcut_setup(&layers[2], layers, why, sizeof why), why);
    assert_int_equal(layers[2].out.c, 1);
    assert_int_equal(layers[2].out.h, 2);
    assert_int_equal(layers[2].out.w, 2);
    const float expected[4] = {1.5f, -1.5f, -7, -3};
    float *out = run(&layers[2], prev, outs);
    assert_floats_near(out, expected, 4, 1e-6);
    free(out);

    layers[2].p.shortcut.act = ENG_ACT_LEAKY;
    setup_ok(eng_shortcut_setup(&layers[2], layers, why, sizeof why), why);
    const float expected_leaky[4] = {1.5f, -0.15f, -0.7f, -0.3f};
    out = run(&layers[2], prev, outs);
    assert_floats_near(out, expected_leaky, 4, 1e-6);
    free(out);
}

static void test_shortcut_setup_bad_from_rejected(void **state)
{
    (void)state;
    struct eng_layer layers[3];
    layers[0] = layer_new(ENG_LAYER_CONV, 0, 1, 1, 1);
    layers[0].out = (struct eng_shape){2, 2, 2};
    layers[1] = layer_new(ENG_LAYER_CONV, 1, 2, 2, 2);
    layers[1].out = (struct eng_shape){1, 2, 2};
    layers[2] = layer_new(ENG_LAYER_SHORTCUT, 2, 1, 2, 2);
    char why[256] = "";
    layers[2].p.shortcut.from = 2;
    assert_int_equal(eng_shortcut_setup(&layers[2], layers, why, sizeof why), -1);
    assert_string_equal(why, "layer 2 does not exist before layer 2");
    layers[2].p.shortcut.from = 3;
    assert_int_equal(eng_shortcut_setup(&layers[2], layers, why, sizeof why), -1);
    layers[2].p.shortcut.from = -1;
    assert_int_equal(eng_shortcut_setup(&layers[2], layers, why, sizeof why), -1);
    layers[2].p.shortcut.from = 0; /* 2 channels vs 1 */
    assert_int_equal(eng_shortcut_setup(&layers[2], layers, why, sizeof why), -1);
    assert_string_equal(why, "layer 0 is 2x2x2 but the input is 1x2x2");
}

static void dummy_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    (void)l;
    (void)f;
}

static void test_dropout_setup_aliases_input(void **state)
{
    (void)state;
    struct eng_layer l = layer_new(ENG_LAYER_DROPOUT, 1, 5, 3, 2);
    l.forward = dummy_forward; /* setup must clear it */
    char why[256] = "";
    setup_ok(eng_dropout_setup(&l, why, sizeof why), why);
    assert_null(l.forward);
    assert_int_equal(l.out.c, 5);
    assert_int_equal(l.out.h, 3);
    assert_int_equal(l.out.w, 2);
    assert_int_equal(l.work_floats, 0);
}

static void test_dropout_in_net_output_is_input(void **state)
{
    (void)state;
    /* A hand-built net: upsample x2 (stride 1), dropout, upsample x3. The dropout's output is the
     * same memory as its input, and the layer after it reads through it. */
    struct eng_layer layers[3];
    char why[256] = "";
    layers[0] = upsample_new(0, 1, 2, 2, 1, 2.0f);
    layers[1] = layer_new(ENG_LAYER_DROPOUT, 1, 1, 2, 2);
    setup_ok(eng_dropout_setup(&layers[1], why, sizeof why), why);
    layers[2] = upsample_new(2, 1, 2, 2, 1, 3.0f);
    char name[] = "dropout-net";
    struct eng_net net = {.name = name, .input = {1, 2, 2}, .n_layers = 3, .layers = layers};
    struct eng_err err = {0};
    struct eng_ctx *ctx = eng_ctx_new(&net, &err);
    assert_non_null(ctx);
    assert_ptr_equal(ctx->outs[1], ctx->outs[0]);
    assert_ptr_not_equal(ctx->outs[2], ctx->outs[1]);
    const float in[4] = {1, 2, -3, 0.5f};
    memcpy(ctx->input, in, sizeof in);
    eng_net_forward(&net, ctx);
    for (int i = 0; i < 4; i++) {
        assert_near(eng_ctx_output(ctx, 0)[i], 2 * in[i], 0);
        assert_near(eng_ctx_output(ctx, 1)[i], 2 * in[i], 0);
        assert_near(eng_ctx_output(ctx, 2)[i], 6 * in[i], 0);
    }
    eng_ctx_free(ctx);

    /* A dropout first in the net aliases the network input itself. */
    layers[0] = layer_new(ENG_LAYER_DROPOUT, 0, 1, 2, 2);
    setup_ok(eng_dropout_setup(&layers[0], why, sizeof why), why);
    ctx = eng_ctx_new(&net, &err);
    assert_non_null(ctx);
    assert_ptr_equal(ctx->outs[0], ctx->input);
    assert_ptr_equal(ctx->outs[1], ctx->input);
    memcpy(ctx->input, in, sizeof in);
    eng_net_forward(&net, ctx);
    for (int i = 0; i < 4; i++)
        assert_near(eng_ctx_output(ctx, 2)[i], 3 * in[i], 0);
    eng_ctx_free(ctx);
}

/* ---- detection heads -------------------------------------------------------------------------- */

static double logistic(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static struct eng_layer head_new(enum eng_layer_kind kind, int classes, int anchors_n,
                                 const float *anchors, float scale_x_y, int h, int w)
{
    struct eng_layer l = layer_new(kind, 0, anchors_n * (5 + classes), h, w);
    l.p.head = (struct eng_head){.classes = classes, .anchors_n = anchors_n, .anchors = anchors,
                                 .scale_x_y = scale_x_y};
    char why[256] = "";
    setup_ok(kind == ENG_LAYER_YOLO ? eng_yolo_setup(&l, why, sizeof why)
                                    : eng_region_setup(&l, why, sizeof why),
             why);
    return l;
}

static void test_yolo_activations_with_scale_x_y(void **state)
{
    (void)state;
    /* 2 anchors, 2 classes, a 1x2 grid: 14 channels of 2 cells. */
    const float anchors[4] = {10, 14, 23, 27};
    float in[14 * 2];
    for (int i = 0; i < 28; i++)
        in[i] = (float)(i % 7) * 0.5f - 1.5f + (float)(i / 14) * 0.25f;
    const float scales[] = {1.0f, 1.05f, 2.0f};
    for (size_t k = 0; k < 3; k++) {
        const double s = scales[k];
        struct eng_layer l = head_new(ENG_LAYER_YOLO, 2, 2, anchors, scales[k], 1, 2);
        assert_int_equal(l.out.c, 14);
        assert_int_equal(l.out.h, 1);
        assert_int_equal(l.out.w, 2);
        float *out = run(&l, in, NULL);
        for (int a = 0; a < 2; a++) {
            for (int e = 0; e < 7; e++) {
                for (int cell = 0; cell < 2; cell++) {
                    const int i = (a * 7 + e) * 2 + cell;
                    double y;
                    if (e < 2)
                        y = logistic(in[i]) * s - 0.5 * (s - 1.0);
                    else if (e < 4)
                        y = in[i]; /* w, h stay raw */
                    else
                        y = logistic(in[i]); /* objectness and classes */
                    if (!(fabs(out[i] - y) <= 1e-6))
                        fail_msg("scale %g anchor %d entry %d cell %d: %.9g, expected %.9g", s, a,
                                 e, cell, (double)out[i], y);
                }
            }
        }
        free(out);
    }

    /* Spot values: x = 0 is the cell centre whatever the scale; scale 2 maps logistic(2) to
     * 2 * 0.880797 - 0.5 = 1.261594 (outside the cell, as YOLOv4 intends). */
    const float anchors1[2] = {1, 1};
    float one[6] = {0, 2, 0, 0, 0, 0};
    struct eng_layer l = head_new(ENG_LAYER_YOLO, 1, 1, anchors1, 2.0f, 1, 1);
    float *out = run(&l, one, NULL);
    assert_near(out[0], 0.5, 1e-6);
    assert_near(out[1], 1.2615941559557646, 1e-6);
    assert_near(out[4], 0.5, 1e-6);
    assert_near(out[5], 0.5, 1e-6);
    free(out);
}

static void test_yolo_setup_channel_mismatch_rejected(void **state)
{
    (void)state;
    const float anchors[6] = {1, 1, 2, 2, 3, 3};
    struct eng_layer l = layer_new(ENG_LAYER_YOLO, 0, 254, 13, 13);
    l.p.head = (struct eng_head){.classes = 80, .anchors_n = 3, .anchors = anchors, .scale_x_y = 1};
    char why[256] = "";
    assert_int_equal(eng_yolo_setup(&l, why, sizeof why), -1);
    assert_string_equal(why,
                        "the input has 254 channels but 3 anchors x (5 + 80 classes) = 255 are needed");
    l.in.c = 255;
    setup_ok(eng_yolo_setup(&l, why, sizeof why), why);
    l.p.head.classes = 0;
    assert_int_equal(eng_yolo_setup(&l, why, sizeof why), -1);
}

static void test_region_softmax_over_classes_per_cell(void **state)
{
    (void)state;
    /* 1 anchor, 3 classes, a 1x2 grid: cell 0 logits 1, 2, 3; cell 1 logits 1000, 1000, 0 (a naive
     * softmax overflows expf). */
    const float anchors[2] = {1, 1};
    const float in[8 * 2] = {0, 2,   /* x */
                             -2, 0,  /* y */
                             0.5f, -0.5f, /* w (raw) */
                             1, 2,   /* h (raw) */
                             0, -2,  /* objectness */
                             1, 1000, 2, 1000, 3, 0 /* classes */};
    struct eng_layer l = head_new(ENG_LAYER_REGION, 3, 1, anchors, 1.0f, 1, 2);
    float *out = run(&l, in, NULL);
    const float expected[16] = {0.5f, 0.8807970779778823f, 0.11920292202211755f, 0.5f,
                                0.5f, -0.5f, 1, 2, 0.5f, 0.11920292202211755f,
                                0.09003057317038046f, 0.5f, 0.24472847105479764f, 0.5f,
                                0.6652409557748219f, 0.0f};
    assert_floats_near(out, expected, 16, 1e-6);
    for (int cell = 0; cell < 2; cell++)
        assert_near(out[10 + cell] + out[12 + cell] + out[14 + cell], 1.0, 1e-6);
    free(out);
}

static void test_yolo_candidates_decode_box_and_class(void **state)
{
    (void)state;
    /* Already activated output of a 2x2 [yolo] head, 1 anchor of 16x32 pixels, 2 classes, 64x64 net.
     * Only cell (x=1, y=0) has an object: offsets 0.5, 0.25, w = exp(0) * 16, h = exp(ln 2) * 32. */
    const float anchors[2] = {16, 32};
    struct eng_layer l = head_new(ENG_LAYER_YOLO, 2, 1, anchors, 1.0f, 2, 2);
    float out[7 * 4] = {0};
    const int cell = 1; /* y * w + x */
    out[0 * 4 + cell] = 0.5f;
    out[1 * 4 + cell] = 0.25f;
    out[2 * 4 + cell] = 0.0f;
    out[3 * 4 + cell] = logf(2.0f);
    out[4 * 4 + cell] = 0.9f;
    out[5 * 4 + cell] = 0.2f;
    out[6 * 4 + cell] = 0.8f;
    struct eng_detection cand[4];
    assert_int_equal(eng_head_candidates(&l, out, 64, 64, 0.5f, NULL, cand, 4), 1);
    assert_int_equal(cand[0].class_id, 1);
    assert_near(cand[0].confidence, 0.72, 1e-6);
    assert_near(cand[0].box.x1, 0.75 - 0.125, 1e-6);
    assert_near(cand[0].box.x2, 0.75 + 0.125, 1e-6);
    assert_near(cand[0].box.y1, 0.125 - 0.5, 1e-6);
    assert_near(cand[0].box.y2, 0.125 + 0.5, 1e-6);

    /* Above the threshold only through objectness x class: 0.9 * 0.8 < 0.75. */
    assert_int_equal(eng_head_candidates(&l, out, 64, 64, 0.75f, NULL, cand, 4), 0);
    /* The class filter applies after argmax: the box is class 1, so asking for class 0 drops it. */
    const unsigned char only0[2] = {1, 0}, only1[2] = {0, 1};
    assert_int_equal(eng_head_candidates(&l, out, 64, 64, 0.1f, only0, cand, 4), 0);
    assert_int_equal(eng_head_candidates(&l, out, 64, 64, 0.1f, only1, cand, 4), 1);
    /* cap 0: nothing written. */
    assert_int_equal(eng_head_candidates(&l, out, 64, 64, 0.1f, NULL, cand, 0), 0);

    /* The OpenCV-style rows: one per (cell, anchor), class columns are objectness x probability. */
    assert_int_equal(eng_head_rows_count(&l), 4);
    float rows[4 * 7];
    eng_head_rows(&l, out, 64, 64, rows);
    const float *row = rows + 1 * 7;
    assert_near(row[0], 0.75, 1e-6);
    assert_near(row[1], 0.125, 1e-6);
    assert_near(row[2], 0.25, 1e-6);
    assert_near(row[3], 1.0, 1e-6);
    assert_near(row[4], 0.9, 1e-6);
    assert_near(row[5], 0.18, 1e-6);
    assert_near(row[6], 0.72, 1e-6);
    assert_near(rows[0 * 7 + 0], 0.0, 0); /* cell (0, 0) with a zero offset */
    assert_near(rows[0 * 7 + 4], 0.0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_spot_values_match_darknet),
        cmocka_unit_test(test_activation_large_inputs_stay_finite),
        cmocka_unit_test(test_activation_names_round_trip),
        cmocka_unit_test(test_conv_output_size_follows_darknet_formula),
        cmocka_unit_test(test_conv_stride2_pad1_hand_computed),
        cmocka_unit_test(test_conv_padding_zero_border_hand_computed),
        cmocka_unit_test(test_conv_kernel_orientation_not_flipped),
        cmocka_unit_test(test_conv_groups_keep_channels_apart),
        cmocka_unit_test(test_conv_groups_two_channels_per_group_hand_computed),
        cmocka_unit_test(test_conv_pointwise_is_gemm_without_workspace),
        cmocka_unit_test(test_conv_bias_added_to_every_position),
        cmocka_unit_test(test_conv_activation_applied_after_bias),
        cmocka_unit_test(test_conv_im2col_sgemm_matches_naive_reference),
        cmocka_unit_test(test_conv_small_k_stride1_goes_direct),
        cmocka_unit_test(test_conv_post_affine_on_every_path),
        cmocka_unit_test(test_conv_depthwise_direct_matches_naive_reference),
        cmocka_unit_test(test_conv_setup_bad_groups_rejected),
        cmocka_unit_test(test_conv_setup_kernel_larger_than_input_rejected),
        cmocka_unit_test(test_maxpool_size2_stride1_keeps_size),
        cmocka_unit_test(test_maxpool_padding_never_wins_at_borders),
        cmocka_unit_test(test_maxpool_stride2_odd_size_hand_computed),
        cmocka_unit_test(test_maxpool_channels_pooled_separately),
        cmocka_unit_test(test_maxpool_spp_sizes_keep_size_and_match_reference),
        cmocka_unit_test(test_maxpool_random_shapes_match_reference),
        cmocka_unit_test(test_maxpool_setup_bad_parameters_rejected),
        cmocka_unit_test(test_avgpool_global_mean_per_channel),
        cmocka_unit_test(test_upsample_stride2_nearest_neighbour),
        cmocka_unit_test(test_upsample_scale_multiplies_and_odd_shape),
        cmocka_unit_test(test_upsample_setup_bad_stride_rejected),
        cmocka_unit_test(test_route_concatenates_inputs_in_listed_order),
        cmocka_unit_test(test_route_single_input_takes_its_shape),
        cmocka_unit_test(test_route_groups2_group_id1_takes_second_half),
        cmocka_unit_test(test_route_setup_bad_inputs_rejected),
        cmocka_unit_test(test_shortcut_adds_from_layer_then_activates),
        cmocka_unit_test(test_shortcut_setup_bad_from_rejected),
        cmocka_unit_test(test_dropout_setup_aliases_input),
        cmocka_unit_test(test_dropout_in_net_output_is_input),
        cmocka_unit_test(test_yolo_activations_with_scale_x_y),
        cmocka_unit_test(test_yolo_setup_channel_mismatch_rejected),
        cmocka_unit_test(test_region_softmax_over_classes_per_cell),
        cmocka_unit_test(test_yolo_candidates_decode_box_and_class),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
