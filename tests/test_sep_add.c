/* test_sep_add.c - face-api's dense-block adds computed in the store of the fused 1x1 layer before them
 * (engine/conv_sep.c fuse_adds, kern.h struct eng_pw's add / sum_out): the pointwise kernel's residual
 * store in every kernel set against a double reference and against the unfused path's bits (pointwise,
 * then add_act); a dense block of three pairs and three adds as a net, against a double reference of
 * the block and bit-identical across teams of 1, 2 and 3; and adds left alone where another layer reads
 * a pair's output. */
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
#include "conv_sep.h"
#include "eng_err.h"
#include "kern.h"
#include "layer.h"
#include "layer_harness.h"
#include "net.h"
#include "team.h"

#define GUARD 12345.0f

static double act_ref(double x, enum eng_act act)
{
    float f = (float)x;
    eng_act_ref(&f, 1, act);
    return act == ENG_ACT_LINEAR ? x : act == ENG_ACT_RELU ? (x > 0 ? x : 0.0) :
           act == ENG_ACT_LEAKY ? (x > 0 ? x : 0.1 * x) : (double)f;
}

/* kern->pointwise with add (and sum_out) over channels [m0, m1) x pixels [p0, p1) of an m x plane output:
 * against a double reference, untouched outside the range, and bit for bit the unfused path: the same
 * call without add, then add_act of (add, that output). */
static void check_resid(const struct eng_kern *kern, int m, int k, size_t plane, int m0, int m1, size_t p0,
                        size_t p1, enum eng_act act, int with_sum, int with_post)
{
    const size_t n = (size_t)m * plane;
    float *w = floats_random((size_t)m * k), *bias = floats_random((size_t)m), *in = floats_random((size_t)k * plane);
    float *post_w = floats_random((size_t)m), *post_b = floats_random((size_t)m), *add = floats_random(n);
    float *out = floats_new(n), *sum = floats_new(n), *z = floats_new(n), *unfused = floats_new(n);
    for (size_t i = 0; i < n; i++)
        out[i] = sum[i] = z[i] = unfused[i] = GUARD;
    struct eng_pw pw = {.w = w, .bias = bias, .in = in, .out = z, .m = m, .k = k, .plane = plane,
                        .act = ENG_ACT_LINEAR, .post_w = with_post ? post_w : NULL,
                        .post_b = with_post ? post_b : NULL};
    kern->pointwise(&pw, m0, m1, p0, p1); /* the unfused path: the 1x1 layer's output z, then the add */
    for (int o = m0; o < m1; o++) {
        const float *two[2] = {add + (size_t)o * plane + p0, z + (size_t)o * plane + p0};
        kern->add_act(unfused + (size_t)o * plane + p0, two, 2, p1 - p0, act);
    }
    pw.out = out;
    pw.act = act;
    pw.add = add;
    pw.sum_out = with_sum ? sum : NULL;
    kern->pointwise(&pw, m0, m1, p0, p1);
    for (int o = 0; o < m; o++)
        for (size_t p = 0; p < plane; p++) {
            const size_t i = (size_t)o * plane + p;
            const int inside = o >= m0 && o < m1 && p >= p0 && p < p1;
            double s = bias[o], mag = fabs(bias[o]);
            for (int kk = 0; kk < k; kk++) {
                s += (double)w[(size_t)o * k + kk] * in[(size_t)kk * plane + p];
                mag += fabs((double)w[(size_t)o * k + kk] * in[(size_t)kk * plane + p]);
            }
            if (with_post) {
                s = s * post_w[o] + post_b[o];
                mag = mag * fabs(post_w[o]) + fabs(post_b[o]);
            }
            s += add[i];
            mag += fabs(add[i]);
            const double want = inside ? act_ref(s, act) : GUARD, want_sum = inside && with_sum ? s : GUARD;
            const double tol = inside ? 1e-5 * (1.0 + mag) : 0.0;
            if (!(fabs(out[i] - want) <= tol) || !(fabs(sum[i] - want_sum) <= tol))
                fail_msg("%s m=%d k=%d plane=%zu [%d,%d)x[%zu,%zu) %s sum=%d post=%d: [%d][%zu] = %.9g / sum %.9g, "
                         "want %.9g / %.9g", kern->name, m, k, plane, m0, m1, p0, p1, eng_act_name(act), with_sum,
                         with_post, o, p, (double)out[i], (double)sum[i], want, want_sum);
            if (memcmp(&out[i], &unfused[i], sizeof(float)) != 0)
                fail_msg("%s m=%d k=%d plane=%zu %s: [%d][%zu] = %.9g, the unfused path %.9g (other bits)",
                         kern->name, m, k, plane, eng_act_name(act), o, p, (double)out[i], (double)unfused[i]);
        }
    free(w);
    free(bias);
    free(in);
    free(post_w);
    free(post_b);
    free(add);
    free(out);
    free(sum);
    free(z);
    free(unfused);
}

static void test_pointwise_resid_every_set(void **state)
{
    (void)state;
    rng_state = 21;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    static const enum eng_act acts[] = {ENG_ACT_RELU, ENG_ACT_LEAKY, ENG_ACT_LINEAR, ENG_ACT_LOGISTIC};
    static const size_t planes[] = {1, 3, 7, 16, 17, 33, 49, 64, 100};
    for (int s = 0; s < n_sets; s++)
        for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++)
            for (size_t p = 0; p < sizeof planes / sizeof planes[0]; p++) {
                const int m = 1 + (int)(p * 5 + a) % 19, k = 1 + (int)(p * 3 + a * 7) % 23;
                check_resid(sets[s], m, k, planes[p], 0, m, 0, planes[p], acts[a], (int)(p + a) % 2, (int)p % 3 == 0);
            }
    for (int s = 0; s < n_sets; s++) { /* sub-ranges: only they are written */
        check_resid(sets[s], 20, 16, 100, 3, 17, 5, 77, ENG_ACT_RELU, 1, 0);
        check_resid(sets[s], 20, 16, 100, 0, 20, 33, 34, ENG_ACT_RELU, 1, 1);
        check_resid(sets[s], 13, 9, 49, 8, 13, 17, 49, ENG_ACT_LEAKY, 0, 0);
    }
}

/* A dense block as face_load.c builds it (denseBlock4 after its first layer): layer 0 a 1x1 relu layer
 * (out1), then three depthwise + linear 1x1 pairs, the pair's input the add before it:
 * 1, 2 = pair(out1); 3 = relu(0 + 2); 4, 5 = pair(3); 6 = relu(0 + 2 + 5); 7, 8 = pair(6);
 * 9 = relu(0 + 2 + 5 + 8). With detour set, layer 9 sums (2, 8) instead: the second add's sum is then
 * not what it starts from. Weights and net owned by the caller's arrays. */
struct block {
    struct eng_layer layers[10];
    struct eng_net net;
    float *w0, *b0, *dww[3], *pww[3], *pwb[3];
};

static void block_new(struct block *b, int cin, int c, int h, int w, int detour)
{
    char why[128] = "";
    b->w0 = floats_random((size_t)c * cin);
    b->b0 = floats_random((size_t)c);
    b->layers[0] = layer_new(ENG_LAYER_CONV, 0, cin, h, w);
    b->layers[0].p.conv = (struct eng_conv){.filters = c, .size = 1, .stride = 1, .groups = 1, .act = ENG_ACT_RELU,
                                            .weights = b->w0, .bias = b->b0};
    setup_ok(eng_conv_setup(&b->layers[0], why, sizeof why), why);
    for (int i = 0; i < 3; i++) {
        const int d = 1 + 3 * i, a = d + 2;
        b->dww[i] = floats_random((size_t)c * 9);
        b->pww[i] = floats_random((size_t)c * c);
        b->pwb[i] = floats_random((size_t)c);
        b->layers[d] = layer_new(ENG_LAYER_CONV, d, c, h, w);
        b->layers[d].p.conv = (struct eng_conv){.filters = c, .size = 3, .stride = 1, .groups = c, .same = 1,
                                                .act = ENG_ACT_LINEAR, .weights = b->dww[i]};
        setup_ok(eng_conv_setup(&b->layers[d], why, sizeof why), why);
        b->layers[d + 1] = layer_new(ENG_LAYER_CONV, d + 1, c, h, w);
        b->layers[d + 1].p.conv = (struct eng_conv){.filters = c, .size = 1, .stride = 1, .groups = 1,
                                                    .act = ENG_ACT_LINEAR, .weights = b->pww[i], .bias = b->pwb[i]};
        setup_ok(eng_conv_setup(&b->layers[d + 1], why, sizeof why), why);
        b->layers[a] = layer_new(ENG_LAYER_ADD, a, c, h, w);
        struct eng_add *ad = &b->layers[a].p.add;
        *ad = (struct eng_add){.n = i + 2, .act = ENG_ACT_RELU};
        for (int j = 0; j <= i + 1; j++)
            ad->inputs[j] = j == 0 ? 0 : 3 * j - 1;
        if (detour && i == 2)
            *ad = (struct eng_add){.n = 2, .inputs = {2, 8}, .act = ENG_ACT_RELU};
        setup_ok(eng_add_setup(&b->layers[a], b->layers, why, sizeof why), why);
    }
    b->net = (struct eng_net){.name = "block", .input = {cin, h, w}, .n_layers = 10, .layers = b->layers};
}

static void block_free(struct block *b)
{
    for (int i = 0; i < 10; i++)
        if (b->layers[i].kind == ENG_LAYER_CONV)
            free(b->layers[i].p.conv.blk); /* conv_sep.c's packed 1x1 weights, where its rule took them */
    free(b->w0);
    free(b->b0);
    for (int i = 0; i < 3; i++) {
        free(b->dww[i]);
        free(b->pww[i]);
        free(b->pwb[i]);
    }
}

/* The block in double: outs[i] for every layer (c x h x w each; caller frees). */
static void block_ref(const struct block *b, const float *in, int cin, int c, int h, int w, double *outs[10])
{
    const size_t plane = (size_t)h * w;
    for (int i = 0; i < 10; i++) {
        outs[i] = malloc(sizeof(double) * c * plane);
        assert_non_null(outs[i]);
    }
    for (int o = 0; o < c; o++)
        for (size_t p = 0; p < plane; p++) {
            double s = b->b0[o];
            for (int k = 0; k < cin; k++)
                s += (double)b->w0[(size_t)o * cin + k] * in[(size_t)k * plane + p];
            outs[0][(size_t)o * plane + p] = s > 0 ? s : 0.0;
        }
    for (int i = 0; i < 3; i++) {
        const int d = 1 + 3 * i, a = d + 2;
        const double *x = outs[d - 1];
        for (int ch = 0; ch < c; ch++)
            for (int y = 0; y < h; y++)
                for (int xx = 0; xx < w; xx++) {
                    double s = 0.0;
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            const int iy = y + ky - 1, ix = xx + kx - 1;
                            if (iy >= 0 && iy < h && ix >= 0 && ix < w)
                                s += (double)b->dww[i][ch * 9 + ky * 3 + kx] * x[(size_t)ch * plane + (size_t)iy * w + ix];
                        }
                    outs[d][(size_t)ch * plane + (size_t)y * w + xx] = s;
                }
        for (int o = 0; o < c; o++)
            for (size_t p = 0; p < plane; p++) {
                double s = b->pwb[i][o];
                for (int k = 0; k < c; k++)
                    s += (double)b->pww[i][(size_t)o * c + k] * outs[d][(size_t)k * plane + p];
                outs[d + 1][(size_t)o * plane + p] = s;
            }
        const struct eng_add *ad = &b->layers[a].p.add;
        for (size_t e = 0; e < c * plane; e++) {
            double s = 0.0;
            for (int j = 0; j < ad->n; j++)
                s += outs[ad->inputs[j]][e];
            outs[a][e] = s > 0 ? s : 0.0;
        }
    }
}

/* The block as a net through eng_conv_sep_fuse, on teams of 1, 2 and 3: the adds fused as expected
 * (fused_adds: a bit per add layer 3, 6, 9), the output against block_ref, the same bits on every team. */
static void check_block(int cin, int c, int h, int w, int detour, unsigned fused_adds)
{
    struct block b;
    block_new(&b, cin, c, h, w, detour);
    assert_int_equal(eng_conv_sep_fuse(&b.net), 3);
    for (int i = 0; i < 3; i++) {
        const struct eng_add *ad = &b.layers[3 + 3 * i].p.add;
        if (ad->by_prev != (int)((fused_adds >> i) & 1))
            fail_msg("%dx%dx%d detour %d: add layer %d fused %d, want %u", c, h, w, detour, 3 + 3 * i, ad->by_prev,
                     (fused_adds >> i) & 1);
    }
    float *in = floats_random((size_t)cin * h * w);
    double *want[10];
    block_ref(&b, in, cin, c, h, w, want);
    const size_t n = (size_t)c * h * w;
    float *first = floats_new(n);
    struct eng_err err;
    for (int threads = 1; threads <= 3; threads++) {
        struct eng_ctx *ctx = eng_ctx_new(&b.net, &err);
        assert_non_null(ctx);
        struct eng_team *team = threads > 1 ? eng_team_new(threads, NULL, &err) : NULL;
        assert_true(threads == 1 || team);
        assert_int_equal(eng_ctx_set_team(ctx, team, &err), 0);
        memcpy(ctx->input, in, sizeof(float) * (size_t)cin * h * w);
        eng_net_forward(&b.net, ctx);
        const float *got = eng_ctx_output(ctx, 9);
        for (size_t e = 0; e < n; e++) {
            const double tol = 1e-4 * (1.0 + fabs(want[9][e]));
            if (!(fabs(got[e] - want[9][e]) <= tol))
                fail_msg("%d -> %d channels %dx%d detour %d, %d threads: output %zu is %.8g, want %.8g", cin, c, h,
                         w, detour, threads, e, (double)got[e], want[9][e]);
        }
        if (threads == 1)
            memcpy(first, got, sizeof(float) * n);
        else if (memcmp(first, got, sizeof(float) * n) != 0)
            fail_msg("%dx%dx%d: %d threads give other bits than one", c, h, w, threads);
        eng_ctx_free(ctx);
        eng_team_free(team);
    }
    for (int i = 0; i < 10; i++)
        free(want[i]);
    free(first);
    free(in);
    block_free(&b);
}

/* kern.h conv3_blk's 1x1 instance (c3b_isa.inc, conv_sep.c's path for planes of up to 64 pixels), as one
 * row of n pixels: bit for bit the pointwise kernel's output in every set (the same sums in the same
 * order), which test_kern checks against a double reference. */
static void check_c3b_1x1(const struct eng_kern *kern, int m, int k, int n, enum eng_act act, int with_post)
{
    struct eng_layer l = layer_new(ENG_LAYER_CONV, 0, k, 1, n);
    float *w = floats_random((size_t)m * k), *bias = floats_random((size_t)m), *in = floats_random((size_t)k * n);
    float *post_w = floats_random((size_t)m), *post_b = floats_random((size_t)m);
    l.p.conv = (struct eng_conv){.filters = m, .size = 1, .stride = 1, .groups = 1, .weights = w};
    float *packed = floats_new(eng_conv_blk_packed_floats(&l));
    eng_conv_blk_pack(&l, packed);
    float *got = floats_new((size_t)m * n), *want = floats_new((size_t)m * n);
    for (size_t i = 0; i < (size_t)m * n; i++)
        got[i] = want[i] = GUARD;
    const struct eng_c3b a = {.in = in, .in_plane = (size_t)n, .wp = n, .c = k, .size = 1, .stride = 1, .w = packed,
                              .bias = bias, .post_w = with_post ? post_w : NULL, .post_b = with_post ? post_b : NULL,
                              .act = act, .out = got, .oh = 1, .ow = n};
    kern->conv3_blk(&a, 0, m / 16, 0, 1);
    const struct eng_pw pw = {.w = w, .bias = bias, .in = in, .out = want, .m = m, .k = k, .plane = (size_t)n,
                              .act = act, .post_w = a.post_w, .post_b = a.post_b};
    kern->pointwise(&pw, 0, m, 0, (size_t)n);
    for (size_t i = 0; i < (size_t)m * n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s 1x1 conv3_blk m=%d k=%d n=%d %s post=%d: [%zu][%zu] = %.9g, the pointwise kernel %.9g",
                     kern->name, m, k, n, eng_act_name(act), with_post, i / n, i % n, (double)got[i],
                     (double)want[i]);
    free(w);
    free(bias);
    free(in);
    free(post_w);
    free(post_b);
    free(packed);
    free(got);
    free(want);
}

static void test_c3b_1x1_matches_pointwise_every_set(void **state)
{
    (void)state;
    rng_state = 31;
    const struct eng_kern *sets[ENG_ISA_COUNT];
    const int n_sets = kern_sets(sets);
    static const int ns[] = {1, 3, 7, 12, 13, 25, 49, 64};
    for (int s = 0; s < n_sets; s++)
        for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
            check_c3b_1x1(sets[s], 32, 5 + (int)i * 3, ns[i], ENG_ACT_LINEAR, (int)i % 2);
            check_c3b_1x1(sets[s], 48, 17, ns[i], i % 2 ? ENG_ACT_RELU : ENG_ACT_LEAKY, 0);
            check_c3b_1x1(sets[s], 16, 1, ns[i], ENG_ACT_LOGISTIC, 1);
        }
}

/* The block on a plane conv_sep.c's rule gives conv3_blk (with AVX-512 the engine's set): the same bits
 * with the layers' packed weights dropped (the pointwise path). */
static void check_block_paths(int cin, int c, int h, int w)
{
    struct block b;
    block_new(&b, cin, c, h, w, 0);
    assert_int_equal(eng_conv_sep_fuse(&b.net), 3);
    float *in = floats_random((size_t)cin * h * w);
    const size_t n = (size_t)c * h * w;
    float *out[2];
    struct eng_err err;
    for (int path = 0; path < 2; path++) {
        if (path == 1) {
            for (int i = 0; i < 10; i++) {
                free(b.layers[i].p.conv.blk);
                b.layers[i].p.conv.blk = NULL;
            }
        }
        struct eng_ctx *ctx = eng_ctx_new(&b.net, &err);
        assert_non_null(ctx);
        memcpy(ctx->input, in, sizeof(float) * (size_t)cin * h * w);
        eng_net_forward(&b.net, ctx);
        out[path] = floats_new(n);
        memcpy(out[path], eng_ctx_output(ctx, 9), sizeof(float) * n);
        eng_ctx_free(ctx);
    }
    if (memcmp(out[0], out[1], sizeof(float) * n) != 0)
        fail_msg("%d -> %d channels %dx%d: conv3_blk's path and the pointwise kernel's give other bits", cin, c, h, w);
    free(out[0]);
    free(out[1]);
    free(in);
    block_free(&b);
}

static void test_small_plane_paths_same_bits(void **state)
{
    (void)state;
    rng_state = 37;
    print_message("kernel set %s\n", eng_kern_best()->name);
    check_block_paths(5, 32, 7, 7); /* the landmark net's last planes (256 channels there) */
    check_block_paths(3, 48, 5, 9);
    check_block_paths(4, 16, 8, 8);
    check_block(6, 32, 7, 7, 0, 7u); /* and against the double reference, at 1, 2 and 3 threads */
}

static void test_dense_block_adds_fused(void **state)
{
    (void)state;
    rng_state = 23;
    check_block(3, 5, 9, 11, 0, 7u);   /* odd channels, one band */
    check_block(4, 32, 20, 56, 0, 7u); /* the landmark net's first width, several bands */
    check_block(6, 17, 7, 7, 0, 7u);   /* a 7x7 plane: the tail vector overlaps */
    check_block(5, 13, 61, 37, 0, 7u); /* a ragged last band */
}

/* The last add sums (2, 8): the first add's pair output (layer 2) is read by an add that does not start
 * from its sum, so the first add stays a layer of its own (and so does the second, which would start
 * from it); the last one (two inputs) is fused, starting from layer 2's own output. */
static void test_adds_left_alone_when_read_elsewhere(void **state)
{
    (void)state;
    rng_state = 29;
    check_block(3, 5, 9, 11, 1, 4u);
    check_block(4, 18, 14, 14, 1, 4u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pointwise_resid_every_set),
        cmocka_unit_test(test_dense_block_adds_fused),
        cmocka_unit_test(test_adds_left_alone_when_read_elsewhere),
        cmocka_unit_test(test_c3b_1x1_matches_pointwise_every_set),
        cmocka_unit_test(test_small_plane_paths_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
