/* test_kern_dw.c - the depthwise kernels of every instruction set (engine/kern.h: dw3_row, dw5_row_s1,
 * depthwise) against naive references, on the sizes and ranges test_kern.c uses for the other kernels:
 * widths around the vector lengths, strides 1 and 2, padding before and after, channel sub-ranges with
 * guard values around them so a write outside the range fails. Split from test_kern.c to keep each
 * file readable in one sitting. */
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

/* The depthwise row kernels (conv_dw.c's), every set: 3x3 at stride 1 and 2 and 5x5 at stride 1 over
 * column ranges that hit vector bodies and tails, against the sum written out in the same order,
 * unfused: exactly equal (so the set never changes a depthwise layer's bits), guards untouched. */
static void test_kern_dw_rows_match_naive_exactly_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 29;
    float *rows_in = floats_random(5 * 200), *w = floats_random(25), out[100], want;
    const float *r[5];
    for (int ky = 0; ky < 5; ky++)
        r[ky] = rows_in + 200 * ky;
    const float bias = 0.375f;
    for (int s = 0; s < n_sets; s++)
        for (int stride = 1; stride <= 2; stride++)
            for (int x0 = 0; x0 <= 3; x0++)
                for (int x1 = x0; x1 <= 70; x1 += 1 + x1 / 8) {
                    for (int x = 0; x < 100; x++)
                        out[x] = GUARD;
                    sets[s]->dw3_row(out, r[0], r[1], r[2], w, bias, x0, x1, 0, stride);
                    for (int x = 0; x < 100; x++) {
                        if (x < x0 || x >= x1) {
                            assert_true(out[x] == GUARD);
                            continue;
                        }
                        const int i = stride * x; /* pad 0 */
                        want = bias + w[0] * r[0][i] + w[1] * r[0][i + 1] + w[2] * r[0][i + 2] +
                               w[3] * r[1][i] + w[4] * r[1][i + 1] + w[5] * r[1][i + 2] + w[6] * r[2][i] +
                               w[7] * r[2][i + 1] + w[8] * r[2][i + 2];
                        if (out[x] != want)
                            fail_msg("%s dw3 stride %d [%d, %d): out[%d] = %.9g, expected %.9g", sets[s]->name,
                                     stride, x0, x1, x, (double)out[x], (double)want);
                    }
                    if (stride == 2)
                        continue;
                    for (int x = 0; x < 100; x++)
                        out[x] = GUARD;
                    sets[s]->dw5_row_s1(out, r, w, bias, x0, x1, 0);
                    for (int x = 0; x < 100; x++) {
                        if (x < x0 || x >= x1) {
                            assert_true(out[x] == GUARD);
                            continue;
                        }
                        want = bias;
                        for (int ky = 0; ky < 5; ky++)
                            want += w[5 * ky] * r[ky][x] + w[5 * ky + 1] * r[ky][x + 1] +
                                    w[5 * ky + 2] * r[ky][x + 2] + w[5 * ky + 3] * r[ky][x + 3] +
                                    w[5 * ky + 4] * r[ky][x + 4];
                        if (out[x] != want)
                            fail_msg("%s dw5 [%d, %d): out[%d] = %.9g, expected %.9g", sets[s]->name, x0, x1, x,
                                     (double)out[x], (double)want);
                    }
                }
    free(rows_in);
    free(w);
}

/* Depthwise convolution in double, channels [c0, c1), zero padding outside the input. */
static void depthwise_reference(const struct eng_dw *d, int c0, int c1, float *out)
{
    const size_t plane = (size_t)d->oh * d->ow;
    for (int c = c0; c < c1; c++) {
        for (int y = 0; y < d->oh; y++)
            for (int x = 0; x < d->ow; x++) {
                double s = d->bias ? d->bias[c] : 0.0;
                for (int ky = 0; ky < d->k; ky++)
                    for (int kx = 0; kx < d->k; kx++) {
                        const int iy = y * d->stride - d->pad_top + ky;
                        const int ix = x * d->stride - d->pad_left + kx;
                        if (iy >= 0 && iy < d->h && ix >= 0 && ix < d->w_in)
                            s += (double)d->w[((size_t)c * d->k + ky) * d->k + kx] *
                                 d->in[((size_t)c * d->h + iy) * d->w_in + ix];
                    }
                out[c * plane + (size_t)y * d->ow + x] = (float)s;
            }
        eng_act_ref(out + c * plane, plane, d->act);
    }
}

/* in (channels x h x w), k, stride, pad on every side as darknet's pad; channels [c0, c1) computed
 * with scratch of exactly the declared size; everything outside them keeps the guard value. */
static void check_depthwise_out(const struct eng_kern *kern, int channels, int h, int w, int k, int stride,
                                int pad, int oh, int ow, int c0, int c1, enum eng_act act, int with_bias)
{
    float *wt = floats_random((size_t)channels * k * k), *bias = floats_random((size_t)channels);
    float *in = floats_random((size_t)channels * h * w);
    const size_t n = (size_t)channels * oh * ow;
    float *got = floats_new(n), *want = floats_new(n);
    for (size_t i = 0; i < n; i++)
        got[i] = want[i] = GUARD;
    const struct eng_dw d = {.in = in, .out = got, .w = wt, .bias = with_bias ? bias : NULL, .h = h,
                             .w_in = w, .oh = oh, .ow = ow, .k = k, .stride = stride,
                             .pad_top = pad, .pad_left = pad, .act = act};
    assert_true(eng_dw_supported(&d));
    float *scratch = floats_new(eng_dw_scratch_floats(&d));
    kern->depthwise(&d, c0, c1, scratch);
    depthwise_reference(&d, c0, c1, want);
    for (size_t i = 0; i < n; i++) {
        const double tol = want[i] == GUARD ? 0.0 : 1e-5 * (1.0 + fabs(want[i]));
        if (!(fabs((double)got[i] - (double)want[i]) <= tol))
            fail_msg("%s %dx%dx%d k%d s%d pad %d [%d,%d) %s: element %zu = %.9g, expected %.9g",
                     kern->name, channels, h, w, k, stride, pad, c0, c1, eng_act_name(act), i,
                     (double)got[i], (double)want[i]);
    }
    free(scratch);
    free(wt);
    free(bias);
    free(in);
    free(got);
    free(want);
}

static void check_depthwise(const struct eng_kern *kern, int channels, int h, int w, int k, int stride,
                            int pad, int c0, int c1, enum eng_act act, int with_bias)
{
    const int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    check_depthwise_out(kern, channels, h, w, k, stride, pad, oh, ow, c0, c1, act, with_bias);
}

/* Sizes 3 and 5, strides 1 and 2, paddings 0..2, widths around the vector lengths (1..70, 160) and
 * odd heights, every set. */
static void test_kern_depthwise_matches_naive_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 3;
    const int widths[] = {1, 2, 3, 5, 8, 10, 15, 16, 17, 20, 31, 33, 40, 47, 70, 160};
    const enum eng_act acts[] = {ENG_ACT_LEAKY, ENG_ACT_LINEAR, ENG_ACT_RELU, ENG_ACT_SWISH};
    int i = 0;
    for (int s = 0; s < n_sets; s++)
        for (int k = 3; k <= 5; k += 2)
            for (int stride = 1; stride <= 2; stride++)
                for (int pad = 0; pad <= 2; pad++)
                    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++, i++) {
                        const int w = widths[wi], h = 1 + (int)(wi * 7 % 13);
                        if (h + 2 * pad < k || w + 2 * pad < k)
                            continue;
                        check_depthwise(sets[s], 3, h, w, k, stride, pad, 0, 3, acts[i % 4],
                                        i % 5 != 0);
                    }
}

/* Stride 2 with TF's 'same' padding on even sides (the landmark net's 56 -> 28, 28 -> 14, 14 -> 7):
 * nothing before (k = 3) or one (k = 5), the rest after, so the last outputs read the padding after
 * the row and below the plane; even sides 2..58, every set. */
static void test_kern_depthwise_s2_same_pads_after_every_set(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 5;
    for (int s = 0; s < n_sets; s++)
        for (int side = 2; side <= 58; side += 2) {
            const int h = side, w = side + 2 * (side % 6 == 0);
            check_depthwise_out(sets[s], 3, h, w, 3, 2, 0, h / 2, w / 2, 0, 3, ENG_ACT_RELU, 1);
            if (side >= 4)
                check_depthwise_out(sets[s], 2, h, w, 5, 2, 1, h / 2, w / 2, 0, 2, ENG_ACT_LINEAR, side % 4 == 0);
        }
}

static void test_kern_depthwise_sub_range_writes_only_its_channels(void **state)
{
    (void)state;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    rng_state = 4;
    for (int s = 0; s < n_sets; s++) {
        check_depthwise(sets[s], 7, 20, 20, 3, 1, 1, 2, 5, ENG_ACT_LEAKY, 1);
        check_depthwise(sets[s], 7, 20, 21, 3, 2, 1, 6, 7, ENG_ACT_LEAKY, 1);
        check_depthwise(sets[s], 7, 11, 12, 5, 1, 2, 0, 1, ENG_ACT_MISH, 1);
        check_depthwise(sets[s], 7, 11, 12, 5, 2, 2, 3, 3, ENG_ACT_LINEAR, 0); /* empty */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kern_dw_rows_match_naive_exactly_every_set),
        cmocka_unit_test(test_kern_depthwise_matches_naive_every_set),
        cmocka_unit_test(test_kern_depthwise_s2_same_pads_after_every_set),
        cmocka_unit_test(test_kern_depthwise_sub_range_writes_only_its_channels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
