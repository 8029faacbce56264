/* winobench.c - the 3x3 stride-1 convolutions of darknet cfgs, each run the way conv.c runs it (direct,
 * implicit GEMM or sgemm on im2col tiles) and as Winograd F(2x2,3x3) and F(4x4,3x3) (engine/conv_wino.c), in the same
 * process, interleaved: the figures the rule in eng_conv_wino_ok comes from (docs/PERFORMANCE.md,
 * "Winograd").
 *
 * usage: visiond_winobench [--runs 20] (CFG | CxHxW:FILTERS)...   (a shape: 'same' padding)
 * Kernel set: the engine's (VISIOND_KERNELS forces one). One thread; each figure the best of `runs` timings
 * of this thread's CPU time (the machine is shared: wall-clock timings of a few ms include time spent
 * descheduled). Random weights and input (the time does not depend on the values). Prints a markdown
 * table: layer, shape, ms each way, the ratios to conv.c's, which the rule picks. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv_wino.h"
#include "darknet.h"
#include "kern.h"
#include "net.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static float *random_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    if (!p) {
        fprintf(stderr, "visiond_winobench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000u) / 500.0f - 1.0f;
    return p;
}

static double time_layer(const struct eng_layer *l, const float *in, float *out, float *work)
{
    const struct eng_fwd f = {.in = in, .out = out, .work = work};
    const double t0 = now_s();
    l->forward(l, &f);
    return now_s() - t0;
}

static void bench_layer(const char *model, const struct eng_layer *src, int runs)
{
    struct eng_layer plain = *src, w2 = *src, w4 = *src, w2i = *src, w4i = *src;
    const struct eng_conv *c = &src->p.conv;
    float *w = random_floats((size_t)c->filters * src->in.c * 9), *bias = random_floats((size_t)c->filters);
    /* conv.c, F(2x2), F(4x4) with U as the engine keeps it, then F(2x2), F(4x4) with U in place */
    struct eng_layer *all[5] = {&plain, &w2, &w4, &w2i, &w4i};
    char why[256] = "";
    for (int i = 0; i < 5; i++) {
        all[i]->p.conv.weights = w;
        all[i]->p.conv.bias = bias;
        all[i]->p.conv.wino = NULL;
        if (eng_conv_setup(all[i], why, sizeof why) ||
            (i > 0 && (i < 3 ? eng_conv_wino_transform(all[i], 2 * i) : eng_conv_wino_transform_as(all[i], 2 * (i - 2), 0)))) {
            fprintf(stderr, "visiond_winobench: %s layer %d: %s\n", model, src->index, why);
            exit(1);
        }
    }
    size_t work_n = 0;
    for (int i = 0; i < 5; i++)
        work_n = all[i]->work_floats > work_n ? all[i]->work_floats : work_n;
    float *in = random_floats(eng_shape_size(src->in)), *out = random_floats(eng_shape_size(src->out));
    float *work = random_floats(work_n);
    double best[5] = {1e9, 1e9, 1e9, 1e9, 1e9};
    for (int r = 0; r < runs; r++)
        for (int i = 0; i < 5; i++) {
            const double t = time_layer(all[i], in, out, work);
            best[i] = t < best[i] ? t : best[i];
        }
    const int rule = eng_conv_wino_ok(src);
    printf("| %s | %d | %dx%dx%d -> %d | %.3f | %.3f | %.2f | %.3f | %.2f | %.3f | %.3f | %s |\n", model, src->index,
           src->in.c, src->in.h, src->in.w, c->filters, best[0] * 1e3, best[1] * 1e3, best[1] / best[0],
           best[2] * 1e3, best[2] / best[0], best[3] * 1e3, best[4] * 1e3,
           rule == 4 ? "F(4x4)" : rule == 2 ? "F(2x2)" : "no");
    fflush(stdout);
    free(w2.p.conv.wino);
    free(w4.p.conv.wino);
    free(w2i.p.conv.wino);
    free(w4i.p.conv.wino);
    free(w);
    free(bias);
    free(in);
    free(out);
    free(work);
}

int main(int argc, char **argv)
{
    int runs = 20, first = 1;
    if (argc > 2 && strcmp(argv[1], "--runs") == 0) {
        runs = atoi(argv[2]);
        first = 3;
    }
    if (first >= argc) {
        fprintf(stderr, "usage: visiond_winobench [--runs 20] (CFG | CxHxW:FILTERS)...\n");
        return 2;
    }
    runs = runs < 1 ? 1 : runs;
    openblas_set_num_threads(1); /* its work must be on this thread's CPU clock */
    printf("kernel set %s, best of %d runs (thread CPU time)\n\n", eng_kern_best()->name, runs);
    /* U as the engine keeps it (packed for our GEMM where the set has one), then in place */
    printf("| model | layer | input -> filters | conv.c ms | F(2x2) ms | ratio | F(4x4) ms | ratio | F(2x2) U in "
           "place ms | F(4x4) U in place ms | rule |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = first; i < argc; i++) {
        int c, h, w, filters;
        if (sscanf(argv[i], "%dx%dx%d:%d", &c, &h, &w, &filters) == 4) { /* a shape: 'same' padding */
            struct eng_layer l = {.kind = ENG_LAYER_CONV, .in = {c, h, w}};
            l.p.conv = (struct eng_conv){.filters = filters, .size = 3, .stride = 1, .pad = 1, .groups = 1,
                                         .act = ENG_ACT_RELU};
            char why[256];
            if (eng_conv_setup(&l, why, sizeof why)) {
                fprintf(stderr, "visiond_winobench: %s: %s\n", argv[i], why);
                return 1;
            }
            bench_layer("shape", &l, runs);
            continue;
        }
        struct eng_net *net = NULL;
        struct eng_err err = {0};
        if (eng_darknet_load(argv[i], NULL, NULL, NULL, &net, &err)) {
            fprintf(stderr, "visiond_winobench: %s: %s\n", argv[i], err.msg);
            return 1;
        }
        const char *model = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        for (int j = 0; j < net->n_layers; j++) {
            const struct eng_layer *l = &net->layers[j];
            if (l->kind == ENG_LAYER_CONV && l->p.conv.size == 3 && l->p.conv.stride == 1 &&
                l->p.conv.groups == 1)
                bench_layer(model, l, runs);
        }
        eng_net_free(net);
    }
    return 0;
}
