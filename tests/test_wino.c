/* test_wino.c - the Winograd F(2x2,3x3) convolution (engine/conv_wino.c, its transforms in
 * engine/wino_isa.inc) in every kernel set the processor runs, against a naive direct convolution in
 * double: odd and even output sizes (edge tiles), odd channel counts, padding on every side or none,
 * one block and several blocks of tiles (both ways of cutting a layer into tasks), bias or none, the
 * post affine, vector and scalar activations; bit-identical outputs on teams of 1 to 3 threads; with
 * U packed for our GEMM (each set that has one) the same bits as with U in place; and the rule
 * (eng_conv_wino_ok) applied by eng_conv_wino_prepare. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv_wino.h"
#include "eng_blas.h"
#include "kern.h"
#include "layer.h"
#include "layer_harness.h"
#include "team.h"


struct wino_case {
    int c, filters, h, w;
    int pad_top, pad_left, pad_bottom, pad_right; /* 'same' (1 each) through pad, else TF 'same' */
    int pad;
    int same;
    int with_bias, with_post;
    enum eng_act act;
};

struct built {
    struct eng_layer l;
    float *w, *bias, *post_w, *post_b, *in;
};

static void build(struct built *b, const struct wino_case *k, int m)
{
    memset(b, 0, sizeof *b);
    b->l = layer_new(ENG_LAYER_CONV, 0, k->c, k->h, k->w);
    b->w = floats_random((size_t)k->filters * k->c * 9);
    b->bias = k->with_bias ? floats_random((size_t)k->filters) : NULL;
    if (k->with_post) {
        b->post_w = floats_random((size_t)k->filters);
        b->post_b = floats_random((size_t)k->filters);
    }
    b->in = floats_random((size_t)k->c * k->h * k->w);
    b->l.p.conv = (struct eng_conv){.filters = k->filters, .size = 3, .stride = 1, .pad = k->pad,
                                    .same = k->same, .groups = 1, .act = k->act, .weights = b->w,
                                    .bias = b->bias, .post_scale = b->post_w, .post_bias = b->post_b};
    char why[256] = "";
    setup_ok(eng_conv_setup(&b->l, why, sizeof why), why);
    assert_int_equal(eng_conv_wino_transform_as(&b->l, m, 0), 0); /* U in place: every set reads it */
    assert_true(b->l.forward == eng_conv_wino_forward);
}

/* The layer of b with U packed for our GEMM instead (its own copy of U: free l.p.conv.wino). */
static struct built packed_copy(const struct built *b, int m)
{
    struct built p = *b;
    p.l.p.conv.wino = NULL;
    assert_int_equal(eng_conv_wino_transform_as(&p.l, m, 1), 0);
    assert_true(p.l.p.conv.wino_packed);
    return p;
}

static void built_free(struct built *b)
{
    free(b->l.p.conv.wino);
    free(b->w);
    free(b->bias);
    free(b->post_w);
    free(b->post_b);
    free(b->in);
}

/* The direct convolution in double; *mag gets each output's sum of |terms| (the scale of its
 * rounding error). */
static void reference(const struct built *b, double *want, double *mag)
{
    const struct eng_layer *l = &b->l;
    const struct eng_conv *c = &l->p.conv;
    for (int o = 0; o < l->out.c; o++)
        for (int y = 0; y < l->out.h; y++)
            for (int x = 0; x < l->out.w; x++) {
                double s = b->bias ? b->bias[o] : 0.0, m = fabs(s);
                for (int ch = 0; ch < l->in.c; ch++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int iy = y - c->pad_top + ky, ix = x - c->pad_left + kx;
                            if (iy < 0 || iy >= l->in.h || ix < 0 || ix >= l->in.w)
                                continue;
                            const double t = (double)b->w[((size_t)o * l->in.c + ch) * 9 + ky * 3 + kx] *
                                             b->in[((size_t)ch * l->in.h + iy) * l->in.w + ix];
                            s += t;
                            m += fabs(t);
                        }
                if (b->post_w) {
                    s = s * b->post_w[o] + b->post_b[o];
                    m = m * fabs(b->post_w[o]) + fabs(b->post_b[o]);
                }
                const size_t i = ((size_t)o * l->out.h + y) * l->out.w + x;
                want[i] = s;
                mag[i] = m;
            }
}

/* darknet's activation of the double reference (eng_act_ref works on floats: the float of the sum is
 * within the tolerance, and the activations below are smooth or piecewise linear). */
static double act_ref(double x, enum eng_act act)
{
    float f = (float)x;
    if (act == ENG_ACT_LINEAR)
        return x;
    if (act == ENG_ACT_LEAKY)
        return x > 0 ? x : 0.1 * x;
    if (act == ENG_ACT_RELU)
        return x > 0 ? x : 0.0;
    eng_act_ref(&f, 1, act);
    return f;
}

static float *run_with(const struct built *b, const struct eng_kern *k, struct eng_team *team, int threads)
{
    const struct eng_layer *l = &b->l;
    const size_t n_out = eng_shape_size(l->out);
    float *out = floats_new(n_out);
    for (size_t i = 0; i < n_out; i++)
        out[i] = NAN; /* every output must be written */
    float *work = floats_new(l->work_floats * (size_t)threads);
    const struct eng_fwd f = {.in = b->in, .out = out, .work = work, .team = team,
                              .work_stride = l->work_floats};
    eng_conv_wino_run(l, &f, k);
    free(work);
    return out;
}

/* Winograd's rounding: a few float epsilons of the sum of |terms| for F(2x2) (the transforms add up
 * to 4 x 4 input values and 4 x 4 products, with coefficients 1 and 1/2), some more for F(4x4) (6 x 6,
 * coefficients up to 8 in A^T and 5 in B^T). A wrong coefficient is off by a fraction of the terms. */
#define WINO2_TOL 2e-6
#define WINO4_TOL 2e-5

static void check_case_m(const struct wino_case *k, const char *name, int m)
{
    const double tol_rel = m == 4 ? WINO4_TOL : WINO2_TOL;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    struct built b;
    build(&b, k, m);
    const size_t n_out = eng_shape_size(b.l.out);
    double *want = malloc(sizeof(double) * n_out), *mag = malloc(sizeof(double) * n_out);
    assert_non_null(want);
    assert_non_null(mag);
    reference(&b, want, mag);
    for (int s = 0; s < n_sets; s++) {
        float *got = run_with(&b, sets[s], NULL, 1);
        double worst = 0;
        for (size_t i = 0; i < n_out; i++) {
            const double w = act_ref(want[i], k->act), tol = tol_rel * (mag[i] + 1.0);
            const double err = fabs((double)got[i] - w);
            if (!(err <= tol))
                fail_msg("%s, F(%dx%d), set %s, output %zu of %zu: %.9g, expected %.9g (|terms| %.3g)", name,
                         m, m, sets[s]->name, i, n_out, (double)got[i], w, mag[i]);
            worst = err / (mag[i] + 1.0) > worst ? err / (mag[i] + 1.0) : worst;
        }
        print_message("%s, F(%dx%d), set %s: largest error %.3g of the terms' magnitude\n", name, m, m,
                      sets[s]->name, worst);
        /* U packed (sets with our GEMM): the same bits, on any team */
        if (sets[s]->gemm) {
            struct built p = packed_copy(&b, m);
            for (int threads = 1; threads <= 3; threads++) {
                struct eng_err err = {0};
                struct eng_team *t = threads > 1 ? eng_team_new(threads, NULL, &err) : NULL;
                if (threads > 1 && !t)
                    fail_msg("eng_team_new(%d): %s", threads, err.msg);
                float *packed = run_with(&p, sets[s], t, threads);
                for (size_t i = 0; i < n_out; i++)
                    if (memcmp(&packed[i], &got[i], sizeof(float)) != 0)
                        fail_msg("%s, F(%dx%d), set %s, %d threads: U packed gives %.9g at output %zu, in place "
                                 "%.9g", name, m, m, sets[s]->name, threads, (double)packed[i], i, (double)got[i]);
                free(packed);
                eng_team_free(t);
            }
            free(p.l.p.conv.wino);
        }
        /* the same bits on any team */
        for (int threads = 2; threads <= 3; threads++) {
            struct eng_err err = {0};
            struct eng_team *t = eng_team_new(threads, NULL, &err);
            if (!t)
                fail_msg("eng_team_new(%d): %s", threads, err.msg);
            float *again = run_with(&b, sets[s], t, threads);
            if (memcmp(again, got, sizeof(float) * n_out) != 0)
                fail_msg("%s, F(%dx%d), set %s: %d threads give other bits than 1", name, m, m, sets[s]->name,
                         threads);
            free(again);
            eng_team_free(t);
        }
        free(got);
    }
    free(want);
    free(mag);
    built_free(&b);
}

static void check_case(const struct wino_case *k, const char *name)
{
    check_case_m(k, name, 2);
    check_case_m(k, name, 4);
}

static void test_wino_small_shapes_every_set(void **state)
{
    (void)state;
    rng_state = 41;
    const struct wino_case cases[] = {
        {.c = 3, .filters = 5, .h = 7, .w = 9, .pad = 1, .with_bias = 1, .act = ENG_ACT_LEAKY},
        {.c = 17, .filters = 13, .h = 13, .w = 13, .pad = 1, .with_bias = 1, .act = ENG_ACT_LINEAR},
        {.c = 8, .filters = 16, .h = 6, .w = 5, .pad = 0, .with_bias = 0, .act = ENG_ACT_RELU},
        {.c = 5, .filters = 7, .h = 1, .w = 1, .pad = 1, .with_bias = 1, .act = ENG_ACT_LEAKY},
        {.c = 2, .filters = 3, .h = 3, .w = 3, .pad = 0, .with_bias = 1, .act = ENG_ACT_LEAKY},
        {.c = 9, .filters = 11, .h = 10, .w = 35, .pad = 2, .with_bias = 1, .act = ENG_ACT_MISH},
        {.c = 6, .filters = 20, .h = 12, .w = 11, .same = 1, .with_bias = 1, .with_post = 1,
         .act = ENG_ACT_RELU},
        {.c = 31, .filters = 37, .h = 26, .w = 26, .pad = 1, .with_bias = 1, .with_post = 1,
         .act = ENG_ACT_LOGISTIC},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "case %zu", i);
        check_case(&cases[i], name);
    }
}

/* Several blocks of tiles cut by channels (64x60x59: 2 blocks) or each a task of its own (16x199x127: 4
 * blocks, the last one shorter), and channels enough for the GEMMs' blocking across k (400 > ENG_GEMM_KC). */
static void test_wino_large_shapes_every_set(void **state)
{
    (void)state;
    rng_state = 43;
    const struct wino_case cases[] = {
        {.c = 64, .filters = 64, .h = 60, .w = 59, .pad = 1, .with_bias = 1, .act = ENG_ACT_LEAKY},
        {.c = 16, .filters = 24, .h = 199, .w = 127, .pad = 1, .with_bias = 1, .act = ENG_ACT_LEAKY},
        {.c = 400, .filters = 70, .h = 13, .w = 13, .pad = 1, .with_bias = 1, .act = ENG_ACT_LEAKY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32];
        snprintf(name, sizeof name, "large case %zu", i);
        check_case(&cases[i], name);
    }
}

/* The rule (for the engine's kernel set; scripts/test runs the suite once per set): yolov*-tiny's
 * large 3x3 layers take Winograd, F(4x4) on 52x52 and larger outputs (and on AVX2 on 26x26 and 13x13
 * ones with many channels); other kernel sizes, strides, groups, a first layer's 3 channels and a 3x3 output (4 tiles)
 * do not; eng_conv_wino_prepare applies it. */
static void test_wino_rule(void **state)
{
    (void)state;
    struct {
        int c, filters, size, stride, groups, hw, want[ENG_ISA_COUNT]; /* c, avx2, avx512 */
    } rules[] = {
        {128, 256, 3, 1, 1, 26, {2, 4, 2}},  {512, 1024, 3, 1, 1, 13, {2, 4, 2}},
        {384, 256, 3, 1, 1, 26, {2, 4, 2}},  {64, 128, 3, 1, 1, 52, {2, 4, 4}},
        {32, 32, 3, 1, 1, 104, {2, 4, 4}},   {64, 64, 3, 1, 1, 52, {2, 4, 4}},
        {64, 64, 3, 1, 1, 17, {2, 2, 0}},
        {128, 256, 3, 2, 1, 26, {0, 0, 0}},  {128, 256, 1, 1, 1, 26, {0, 0, 0}},
        {128, 256, 3, 1, 2, 26, {0, 0, 0}},  {3, 16, 3, 1, 1, 416, {0, 0, 0}},
        {256, 256, 3, 1, 1, 3, {0, 0, 0}},   {128, 128, 3, 1, 1, 8, {2, 2, 0}},
    };
    const enum eng_isa isa = eng_kern_best()->isa;
    print_message("kernel set %s\n", eng_kern_best()->name);
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, rules[i].c, rules[i].hw, rules[i].hw);
        float *w = calloc((size_t)rules[i].filters * rules[i].c * rules[i].size * rules[i].size, sizeof(float));
        assert_non_null(w);
        l.p.conv = (struct eng_conv){.filters = rules[i].filters, .size = rules[i].size,
                                     .stride = rules[i].stride, .pad = rules[i].size / 2,
                                     .groups = rules[i].groups, .weights = w};
        char why[256] = "";
        setup_ok(eng_conv_setup(&l, why, sizeof why), why);
        const int want = rules[i].want[isa];
        if (eng_conv_wino_ok(&l) != want)
            fail_msg("rule %zu: %d, expected %d", i, eng_conv_wino_ok(&l), want);
        assert_int_equal(eng_conv_wino_prepare(&l), 0);
        assert_int_equal(l.forward == eng_conv_wino_forward, want != 0);
        assert_int_equal(l.p.conv.wino != NULL, want != 0);
        if (want) {
            assert_int_equal(l.p.conv.wino_m, want);
            assert_int_equal(l.p.conv.wino_packed, eng_kern_best()->gemm != NULL); /* one copy of U */
        }
        free(l.p.conv.wino);
        free(w);
    }
}

int main(void)
{
    eng_blas_init(); /* as every engine context does: sgemm (the plain set) at one thread */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wino_small_shapes_every_set),
        cmocka_unit_test(test_wino_large_shapes_every_set),
        cmocka_unit_test(test_wino_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
