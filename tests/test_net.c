/* test_net.c - contexts (engine/net.c): several contexts sharing one activation arena, as a daemon
 * worker's contexts do, give the same outputs as contexts with their own, whatever ran in between; an
 * arena too small is refused. Uses the real yolo-fastest models (models/, skipped when absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "darknet.h"
#include "net.h"

#ifndef VISIOND_SOURCE_DIR
#define VISIOND_SOURCE_DIR "."
#endif
#define MODELS VISIOND_SOURCE_DIR "/models"

static struct eng_net *load(const char *name)
{
    char cfg[512], weights[512];
    snprintf(cfg, sizeof cfg, "%s/%s/%s.cfg", MODELS, name, name);
    snprintf(weights, sizeof weights, "%s/%s/%s.weights", MODELS, name, name);
    if (access(weights, R_OK))
        return NULL;
    struct eng_err err = {0};
    struct eng_net *net = NULL;
    assert_int_equal(eng_darknet_load(cfg, weights, NULL, NULL, &net, &err), 0);
    return net;
}

static void fill_input(float *x, size_t n)
{
    unsigned s = 12345u;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f;
    }
}

/* Runs net on the fixed input in ctx and returns its heads' outputs, concatenated (new, caller frees). */
static float *forward_heads(const struct eng_net *net, struct eng_ctx *ctx, size_t *n)
{
    fill_input(ctx->input, eng_shape_size(net->input));
    eng_net_forward(net, ctx);
    *n = 0;
    for (int k = 0; k < net->n_heads; k++)
        *n += eng_shape_size(net->layers[net->heads[k]].out);
    float *out = malloc(sizeof(float) * *n), *p = out;
    assert_non_null(out);
    for (int k = 0; k < net->n_heads; k++) {
        const size_t m = eng_shape_size(net->layers[net->heads[k]].out);
        memcpy(p, eng_ctx_output(ctx, net->heads[k]), sizeof(float) * m);
        p += m;
    }
    return out;
}

static void assert_same_heads(const struct eng_net *net, struct eng_ctx *ctx, const float *want, size_t n)
{
    size_t got_n;
    float *got = forward_heads(net, ctx, &got_n);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, want, sizeof(float) * n);
    free(got);
}

static void test_net_shared_arena_same_outputs_as_own(void **state)
{
    (void)state;
    struct eng_net *a = load("yolo-fastest-1.1"), *b = load("yolo-fastest-1.1-xl");
    if (!a || !b) {
        eng_net_free(a);
        eng_net_free(b);
        skip();
    }
    struct eng_err err = {0};
    struct eng_ctx *own_a = eng_ctx_new(a, &err), *own_b = eng_ctx_new(b, &err);
    assert_non_null(own_a);
    assert_non_null(own_b);
    size_t na, nb;
    float *want_a = forward_heads(a, own_a, &na), *want_b = forward_heads(b, own_b, &nb);

    const size_t fa = eng_ctx_arena_floats(a), fb = eng_ctx_arena_floats(b);
    assert_true(fa > 0 && fb > 0);
    const size_t floats = fa > fb ? fa : fb;
    float *arena = malloc(sizeof(float) * floats);
    assert_non_null(arena);
    struct eng_ctx *sa = eng_ctx_new_shared(a, arena, floats, &err);
    struct eng_ctx *sb = eng_ctx_new_shared(b, arena, floats, &err);
    assert_non_null(sa);
    assert_non_null(sb);
    /* a, then b over a's activations, then a again over b's: each as with its own arena */
    assert_same_heads(a, sa, want_a, na);
    assert_same_heads(b, sb, want_b, nb);
    assert_same_heads(a, sa, want_a, na);

    eng_ctx_free(sa); /* leaves the arena to its owner: ASan reports a double free otherwise */
    eng_ctx_free(sb);
    free(arena);
    free(want_a);
    free(want_b);
    eng_ctx_free(own_a);
    eng_ctx_free(own_b);
    eng_net_free(a);
    eng_net_free(b);
}

static void test_net_shared_arena_too_small_refused(void **state)
{
    (void)state;
    struct eng_net *a = load("yolo-fastest-1.1");
    if (!a)
        skip();
    const size_t need = eng_ctx_arena_floats(a);
    float *arena = malloc(sizeof(float) * need);
    assert_non_null(arena);
    struct eng_err err = {0};
    assert_null(eng_ctx_new_shared(a, arena, need - 1, &err));
    assert_int_equal(err.kind, ENG_ERR_INVALID);
    assert_non_null(strstr(err.msg, "shared arena"));
    struct eng_ctx *ctx = eng_ctx_new_shared(a, arena, need, &err);
    assert_non_null(ctx);
    eng_ctx_free(ctx);
    free(arena);
    eng_net_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_net_shared_arena_same_outputs_as_own),
        cmocka_unit_test(test_net_shared_arena_too_small_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
