/* kernbench.c - the FMA peak of one core and the packed GEMM (engine/gemm_isa.inc) against it, in the same
 * process, for bench/run (issue #17: the largest layers at >= 85 % of the peak measured in the same run).
 *
 * usage: visiond_kernbench [--runs 20]
 * Peak: per vector width, 24 independent chains of FMAs on registers (no memory), the best of `runs`
 * timings of this thread's CPU time. GEMM: the shapes of yolov3-tiny @416's largest convolutions as
 * conv.c hands them over (the weights m x k packed at load, the im2col tile k x n), for each kernel set
 * with a GEMM, then again with the weights read in place ("weights in place": the GEMM before packing),
 * and OpenBLAS's sgemm on the same shapes (one thread, OPENBLAS_CORETYPE as the environment sets it,
 * which is what the daemon gets); rounds alternate the peak and the
 * GEMMs so that load from other processes hits both. Best of `runs` per figure; one JSON line last. */
#include <cblas.h>
#include <immintrin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kern.h"

/* This thread's CPU time, not the wall clock: on a machine shared with other work (2 cores, several
 * processes) a wall-clock timing of an 8 ms GEMM almost always includes time spent descheduled, which
 * says nothing about the kernel; the peak loop and the GEMMs are timed the same way. */
static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHAINS 24
#define ITERS 200000L

/* 24 chains x ITERS FMAs of 16 (8) floats: 2 flops each. Returns GFLOP/s. */
__attribute__((target("avx512f,fma"), noinline)) static double peak_avx512(void)
{
    __m512 acc[CHAINS];
    const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    const double t0 = now_s();
    for (long it = 0; it < ITERS; it++) {
#pragma GCC unroll 24
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], m, a);
    }
    const double t = now_s() - t0;
    float sink = 0.0f;
    for (int i = 0; i < CHAINS; i++)
        sink += _mm512_reduce_add_ps(acc[i]);
    if (sink == 42.0f)
        printf(" ");
    return 2.0 * 16 * CHAINS * ITERS / t * 1e-9;
}

__attribute__((target("avx2,fma"), noinline)) static double peak_avx2(void)
{
    __m256 acc[CHAINS / 2];
    const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS / 2; i++)
        acc[i] = _mm256_set1_ps((float)i);
    const double t0 = now_s();
    for (long it = 0; it < ITERS; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS / 2; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], m, a);
    }
    const double t = now_s() - t0;
    float buf[8], sink = 0.0f;
    for (int i = 0; i < CHAINS / 2; i++) {
        _mm256_storeu_ps(buf, acc[i]);
        sink += buf[0];
    }
    if (sink == 42.0f)
        printf(" ");
    return 2.0 * 8 * (CHAINS / 2) * ITERS / t * 1e-9;
}

struct shape {
    const char *what;
    int m, n, k;
};

static const struct shape shapes[] = {
    {"yolov3-tiny layer 12 (1024x13x13, 3x3 on 512)", 1024, 169, 4608},
    {"yolov3-tiny layer 21 (256x26x26, 3x3 on 384)", 256, 676, 3456},
    {"yolov3-tiny layer 14 (512x13x13, 3x3 on 256)", 512, 169, 2304},
    {"yolov3-tiny layer 10 (512x13x13, 3x3 on 256)", 512, 169, 2304},
    {"yolov3-tiny layer 8 (256x26x26, 3x3 on 128)", 256, 676, 1152},
};
#define N_SHAPES (sizeof shapes / sizeof shapes[0])

static float *random_floats(size_t n)
{
    float *p = malloc(n * sizeof(float));
    if (!p) {
        fprintf(stderr, "visiond_kernbench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((i * 2654435761u) % 1000u) / 500.0f - 1.0f;
    return p;
}

/* Seconds of one GEMM of shape s: ours through kern (bias and leaky fused; weights packed at load as
 * conv.c gives them when ap is set, else read in place and packed per tile), or sgemm (kern NULL). */
static double time_gemm(const struct eng_kern *kern, const struct shape *s, const float *a, const float *ap,
                        const float *b, float *c, const float *bias, float *scratch)
{
    const double t0 = now_s();
    if (kern) {
        const struct eng_gemm g = {.a = a, .ap = ap, .ap_m = s->m, .b = b, .c = c, .lda = (size_t)s->k, .ldb = (size_t)s->n,
                                   .ldc = (size_t)s->n, .m = s->m, .n = s->n, .k = s->k, .bias = bias,
                                   .act = ENG_ACT_LEAKY};
        kern->gemm(&g, scratch);
    } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, s->k, 1.0f, a, s->k, b, s->n, 1.0f,
                    c, s->n);
    }
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    int runs = 20;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: visiond_kernbench [--runs 20]\n");
            return 2;
        }
    }
    runs = runs < 1 ? 1 : runs;
    openblas_set_num_threads(1); /* its work must be on this thread's CPU clock */
    const struct eng_kern *sets[2 * ENG_ISA_COUNT + 1];
    int n_sets = 0;
    for (int isa = ENG_ISA_COUNT - 1; isa >= 0; isa--) {
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (k && k->gemm)
            sets[n_sets++] = k;
    }
    const int n_ours = n_sets;
    for (int s = 0; s < n_ours; s++) /* then the same sets with the weights read in place */
        sets[n_sets++] = sets[s];
    sets[n_sets++] = NULL; /* sgemm */
    double peak[ENG_ISA_COUNT] = {0}, best[N_SHAPES][2 * ENG_ISA_COUNT + 1];
    for (size_t i = 0; i < N_SHAPES; i++)
        for (int s = 0; s < n_sets; s++)
            best[i][s] = 1e30;
    float *scratch = random_floats(ENG_GEMM_SCRATCH_FLOATS);
    for (int r = 0; r < runs; r++) {
        for (int s = 0; s < n_ours; s++) {
            if (!sets[s])
                continue;
            const double p = sets[s]->isa == ENG_ISA_AVX512 ? peak_avx512() : peak_avx2();
            peak[sets[s]->isa] = p > peak[sets[s]->isa] ? p : peak[sets[s]->isa];
        }
        for (size_t i = 0; i < N_SHAPES; i++) {
            const struct shape *sh = &shapes[i];
            float *a = random_floats((size_t)sh->m * sh->k), *b = random_floats((size_t)sh->k * sh->n);
            float *c = random_floats((size_t)sh->m * sh->n), *bias = random_floats((size_t)sh->m);
            float *ap = random_floats(eng_gemm_packed_floats(sh->m, sh->k));
            eng_gemm_pack_a(a, (size_t)sh->k, sh->m, sh->k, ap); /* at load: not timed */
            for (int s = 0; s < n_sets; s++) {
                const double t = time_gemm(sets[s], sh, a, s < n_ours ? ap : NULL, b, c, bias, scratch);
                best[i][s] = t < best[i][s] ? t : best[i][s];
            }
            free(a);
            free(ap);
            free(b);
            free(c);
            free(bias);
        }
    }
    printf("| GEMM (m x n x k) | kernels | GFLOP/s (best of %d) | share of the FMA peak of that width |\n"
           "|---|---|---|---|\n", runs);
    for (int s = 0; s < n_ours; s++)
        if (sets[s])
            printf("| FMA peak, %d-bit vectors | %s | %.1f | 100%% |\n",
                   sets[s]->isa == ENG_ISA_AVX512 ? 512 : 256, sets[s]->name, peak[sets[s]->isa]);
    printf("\n");
    const double top = peak[ENG_ISA_AVX512] > 0 ? peak[ENG_ISA_AVX512] : peak[ENG_ISA_AVX2];
    printf("{\"peak\":{");
    for (int s = 0, first = 1; s < n_ours; s++)
        if (sets[s]) {
            printf("%s\"%s\":%.2f", first ? "" : ",", sets[s]->name, peak[sets[s]->isa]);
            first = 0;
        }
    printf("},\"gemm\":[");
    for (size_t i = 0; i < N_SHAPES; i++) {
        const struct shape *sh = &shapes[i];
        const double flop = 2.0 * sh->m * sh->n * sh->k;
        for (int s = 0; s < n_sets; s++) {
            const double gf = flop / best[i][s] * 1e-9;
            const double p = sets[s] ? peak[sets[s]->isa] : top;
            printf("%s{\"what\":\"%s\",\"m\":%d,\"n\":%d,\"k\":%d,\"kernels\":\"%s%s\",\"gflop_per_s\":%.2f,"
                   "\"peak_share\":%.4f}", i || s ? "," : "", sh->what, sh->m, sh->n, sh->k,
                   sets[s] ? sets[s]->name : "openblas-sgemm", s >= n_ours && sets[s] ? " (weights in place)" : "",
                   gf, gf / p);
        }
    }
    printf("]}\n");
    free(scratch);
    return 0;
}
