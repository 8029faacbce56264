/* test_conv_blk.c - engine/conv_blk.c's convolutions with vectors along output channels (3x3 at stride
 * 1 or 2, 7x7 at stride 2; kernel table entry conv3_blk, engine/c3b_isa.inc) against a naive direct
 * convolution in double, on every kernel set the processor runs: widths 1..27 (every tile size of every
 * set's row cut: 1..12 pixels on AVX-512, 1..6 on AVX2, 1..3 on the plain set), odd heights and channel
 * counts, 16 to 80 filters (an odd number of 16-channel blocks leaves AVX-512's single-block tile), bias
 * or none, stride 2 with 'same' and 'valid' padding, the post affine, linear / relu / leaky / logistic (a
 * scalar activation after the store); every output written (NaN before), the same bits on teams of 1 to
 * 3 threads; 3x3 and 4x4 outputs (whole-plane tiles on AVX-512); and the rule picks it for the face
 * recognizer's 3x3 shapes on AVX-512 only. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conv_blk.h"
#include "kern.h"
#include "layer.h"
#include "layer_harness.h"
#include "team.h"

struct blk_case {
    int c, h, w, filters, with_bias, with_post;
    int size, stride, valid; /* size 0: 3 */
    enum eng_act act;
};

/* A case's layer (set up, conv_blk's weights packed), its random input and the naive double convolution
 * of it (want, mag: conv_ref_f64's), all freed by case_free. */
struct case_run {
    struct eng_layer l;
    float *w, *bias, *pw, *pb, *in;
    double *want, *mag;
};

static void case_new(const struct blk_case *k, struct case_run *r)
{
    r->l = layer_new(ENG_LAYER_CONV, 0, k->c, k->h, k->w);
    const int size = k->size ? k->size : 3, stride = k->stride ? k->stride : 1;
    r->w = floats_random((size_t)k->filters * k->c * size * size);
    r->bias = k->with_bias ? floats_random((size_t)k->filters) : NULL;
    r->pw = k->with_post ? floats_random((size_t)k->filters) : NULL;
    r->pb = k->with_post ? floats_random((size_t)k->filters) : NULL;
    r->in = floats_random((size_t)k->c * k->h * k->w);
    r->l.p.conv = (struct eng_conv){.filters = k->filters, .size = size, .stride = stride, .same = !k->valid,
                                    .groups = 1, .act = k->act, .weights = r->w, .bias = r->bias,
                                    .post_scale = r->pw, .post_bias = r->pb};
    char why[256] = "";
    setup_ok(eng_conv_setup(&r->l, why, sizeof why), why);
    assert_true(eng_conv_blk_shape_ok(&r->l));
    assert_int_equal(eng_conv_blk_use(&r->l), 0);
    const size_t n = eng_shape_size(r->l.out);
    r->want = malloc(sizeof(double) * n);
    r->mag = malloc(sizeof(double) * n);
    assert_non_null(r->want);
    assert_non_null(r->mag);
    conv_ref_f64(&r->l, r->in, r->want, r->mag);
}

static void case_free(struct case_run *r)
{
    free(r->l.p.conv.blk);
    free(r->want);
    free(r->mag);
    free(r->w);
    free(r->bias);
    free(r->pw);
    free(r->pb);
    free(r->in);
}

static void check_case(const struct blk_case *k, const struct eng_kern *const *sets, int n_sets)
{
    struct case_run cr;
    case_new(k, &cr);
    const struct eng_layer l = cr.l;
    const float *in = cr.in;
    const double *want = cr.want, *mag = cr.mag;
    const int size = l.p.conv.size, stride = l.p.conv.stride;
    const size_t n = eng_shape_size(l.out);
    for (int s = 0; s < n_sets; s++) {
        float *got = run_threads(&l, in, 1, eng_conv_blk_run, sets[s]);
        for (size_t i = 0; i < n; i++) /* float rounding: a few epsilons of the terms; one wrong term is far more */
            if (!(fabs((double)got[i] - want[i]) <= 4e-7 * mag[i] + 1e-7 * fabs(want[i]) + 1e-30))
                fail_msg("%s %dx%dx%d k%d s%d -> %d filters act %d, output %zu (channel %zu, y %zu, x %zu): %.9g, expected "
                         "%.9g (terms %.3g)",
                         sets[s]->name, k->c, k->h, k->w, size, stride, k->filters, (int)k->act, i,
                         i / ((size_t)l.out.h * l.out.w), i / (size_t)l.out.w % (size_t)l.out.h, i % (size_t)l.out.w,
                         (double)got[i], want[i], mag[i]);
        for (int threads = 2; threads <= 3; threads++) {
            float *again = run_threads(&l, in, threads, eng_conv_blk_run, sets[s]);
            assert_memory_equal(got, again, sizeof(float) * n);
            free(again);
        }
        free(got);
    }
    case_free(&cr);
}

static void test_conv_blk_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 43;
    for (int w = 1; w <= 27; w++) { /* every tile size and cut of the row */
        const struct blk_case k = {.c = 3 + w % 4, .h = 1 + w % 5, .w = w, .filters = 16 * (1 + w % 3),
                                   .with_bias = w % 2, .with_post = w % 3 == 0,
                                   .act = w % 4 == 0 ? ENG_ACT_LEAKY : w % 4 == 1 ? ENG_ACT_RELU : ENG_ACT_LINEAR};
        check_case(&k, sets, n_sets);
        /* stride 2, 3x3 and 7x7, 'same' (odd padding after) and 'valid' */
        const struct blk_case k2 = {.c = 2 + w % 3, .h = 3 + w % 4, .w = 2 * w + w % 2, .filters = 16 * (1 + w % 2),
                                    .with_bias = 1, .with_post = w % 2, .act = ENG_ACT_RELU, .size = 3, .stride = 2,
                                    .valid = w % 3 == 0};
        check_case(&k2, sets, n_sets);
        const struct blk_case k7 = {.c = 1 + w % 3, .h = 7 + w % 4, .w = 7 + w, .filters = 16 * (1 + w % 3),
                                    .with_bias = w % 2, .with_post = 1, .act = ENG_ACT_LINEAR, .size = 7,
                                    .stride = 2, .valid = w % 2};
        check_case(&k7, sets, n_sets);
    }
    const struct blk_case cases[] = {
        {.c = 32, .h = 35, .w = 35, .filters = 32, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU},
        {.c = 64, .h = 17, .w = 17, .filters = 64, .with_bias = 1, .with_post = 1, .act = ENG_ACT_LINEAR},
        {.c = 33, .h = 8, .w = 8, .filters = 80, .with_bias = 0, .with_post = 0, .act = ENG_ACT_LEAKY},
        {.c = 17, .h = 9, .w = 13, .filters = 48, .with_bias = 1, .with_post = 0, .act = ENG_ACT_LOGISTIC},
        {.c = 3, .h = 150, .w = 150, .filters = 32, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU, .size = 7,
         .stride = 2, .valid = 1}, /* the recognizer's stem */
        {.c = 32, .h = 35, .w = 35, .filters = 64, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU, .size = 3,
         .stride = 2, .valid = 1},
        {.c = 64, .h = 17, .w = 17, .filters = 128, .with_bias = 1, .with_post = 0, .act = ENG_ACT_LINEAR, .size = 3,
         .stride = 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i], sets, n_sets);
}

/* 3x3 and 4x4 outputs, which AVX-512 computes a whole plane a tile (two blocks of 9 pixels; two tiles of
 * two rows for 4x4, the second reading the pair's weights again; odd block counts leave single-block
 * tiles of all 16 pixels), with the weights prefetched 8 channels ahead: channel counts below, at and
 * above that distance, odd; stride 1 'same' and stride 2 'same' / 'valid'; teams of 1..3 cut the blocks. */
static void test_conv_blk_plane_tiles(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 47;
    const struct blk_case cases[] = {
        {.c = 256, .h = 4, .w = 4, .filters = 256, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU},
        {.c = 256, .h = 3, .w = 3, .filters = 256, .with_bias = 1, .with_post = 1, .act = ENG_ACT_LINEAR},
        {.c = 128, .h = 8, .w = 8, .filters = 256, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU, .size = 3,
         .stride = 2, .valid = 1}, /* the recognizer's 8x8 -> 3x3 */
        {.c = 7, .h = 4, .w = 4, .filters = 48, .with_bias = 0, .with_post = 0, .act = ENG_ACT_LEAKY},
        {.c = 9, .h = 3, .w = 3, .filters = 80, .with_bias = 1, .with_post = 0, .act = ENG_ACT_LOGISTIC},
        {.c = 1, .h = 4, .w = 4, .filters = 16, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU},
        {.c = 13, .h = 7, .w = 8, .filters = 48, .with_bias = 1, .with_post = 1, .act = ENG_ACT_LINEAR, .size = 3,
         .stride = 2}, /* 'same' onto 4x4 */
        {.c = 5, .h = 6, .w = 5, .filters = 32, .with_bias = 0, .with_post = 1, .act = ENG_ACT_RELU, .size = 3,
         .stride = 2}, /* 'same' onto 3x3 */
        {.c = 33, .h = 9, .w = 9, .filters = 112, .with_bias = 1, .with_post = 0, .act = ENG_ACT_LEAKY, .size = 3,
         .stride = 2, .valid = 1}, /* 9 -> 4x4 'valid' */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i], sets, n_sets);
}

/* A 'valid' convolution with its 'valid' 3x3 stride-2 max pool folded in (eng_conv_blk_pool3_setup: the
 * recognizer's stem) against the naive double convolution's maxima over each window, on every set;
 * pooled heights and widths odd and even (tasks cut the pooled rows), odd block counts, teams of 1..3
 * giving the same bits. */
static void test_conv_blk_pool3(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 53;
    const struct blk_case cases[] = {
        {.c = 3, .h = 150, .w = 150, .filters = 32, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU, .size = 7,
         .stride = 2, .valid = 1}, /* the recognizer's stem: 72x72 -> 35x35 */
        {.c = 2, .h = 21, .w = 24, .filters = 48, .with_bias = 0, .with_post = 1, .act = ENG_ACT_LINEAR, .size = 7,
         .stride = 2, .valid = 1},
        {.c = 5, .h = 17, .w = 19, .filters = 16, .with_bias = 1, .with_post = 0, .act = ENG_ACT_LEAKY, .size = 3,
         .stride = 2, .valid = 1},
        {.c = 3, .h = 9, .w = 12, .filters = 32, .with_bias = 1, .with_post = 1, .act = ENG_ACT_RELU, .size = 3,
         .stride = 1, .valid = 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct case_run cr;
        case_new(&cases[i], &cr);
        struct eng_layer *lp = &cr.l;
        const int ch = lp->out.h, cw = lp->out.w;
        const float *in = cr.in;
        const double *want = cr.want, *mag = cr.mag;
        assert_int_equal(eng_conv_blk_pool3_setup(lp), 1);
        const struct eng_layer l = *lp;
        assert_int_equal(l.out.h, (ch - 3) / 2 + 1);
        assert_int_equal(l.out.w, (cw - 3) / 2 + 1);
        for (int s = 0; s < n_sets; s++) {
            float *got = run_threads(&l, in, 1, eng_conv_blk_pool3_run, sets[s]);
            for (int o = 0; o < l.out.c; o++)
                for (int y = 0; y < l.out.h; y++)
                    for (int x = 0; x < l.out.w; x++) {
                        double best = -INFINITY, tol = 0;
                        for (int dy = 0; dy < 3; dy++)
                            for (int dx = 0; dx < 3; dx++) {
                                const size_t j = ((size_t)o * ch + 2 * y + dy) * cw + 2 * x + dx;
                                best = want[j] > best ? want[j] : best;
                                tol = 4e-7 * mag[j] + 1e-7 * fabs(want[j]) > tol ? 4e-7 * mag[j] + 1e-7 * fabs(want[j]) : tol;
                            }
                        const double g = got[((size_t)o * l.out.h + y) * l.out.w + x];
                        if (!(fabs(g - best) <= tol + 1e-30))
                            fail_msg("%s case %zu channel %d y %d x %d: %.9g, expected %.9g", sets[s]->name, i, o, y, x,
                                     g, best);
                    }
            for (int threads = 2; threads <= 3; threads++) {
                float *again = run_threads(&l, in, threads, eng_conv_blk_pool3_run, sets[s]);
                assert_memory_equal(got, again, sizeof(float) * eng_shape_size(l.out));
                free(again);
            }
            free(got);
        }
        case_free(&cr);
    }
}

static void test_conv_blk_rule(void **state)
{
    (void)state;
    const int shapes[][3] = {{32, 35, 35}, {64, 17, 17}, {128, 8, 8}, {256, 4, 4}, {256, 3, 3}};
    float *w = floats_new((size_t)256 * 256 * 9);
    memset(w, 0, sizeof(float) * (size_t)256 * 256 * 9);
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, shapes[i][0], shapes[i][1], shapes[i][2]);
        l.p.conv = (struct eng_conv){.filters = shapes[i][0], .size = 3, .stride = 1, .same = 1, .groups = 1,
                                     .act = ENG_ACT_RELU, .weights = w};
        char why[256] = "";
        setup_ok(eng_conv_setup(&l, why, sizeof why), why);
        assert_int_equal(eng_conv_blk_ok(&l), eng_kern_best()->isa == ENG_ISA_AVX512);
        l.p.conv.size = 5; /* not its shape */
        assert_false(eng_conv_blk_shape_ok(&l));
    }
    free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_blk_matches_naive_every_set),
        cmocka_unit_test(test_conv_blk_plane_tiles),
        cmocka_unit_test(test_conv_blk_pool3),
        cmocka_unit_test(test_conv_blk_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
