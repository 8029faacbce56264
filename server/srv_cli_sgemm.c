/* srv_cli_sgemm.c - `visiond bench --sgemm`: OpenBLAS's own sgemm speed, measured by the same binary
 * (so with the same OpenBLAS core the daemon re-executes itself with, see srv_blas.h) and printed as
 * one JSON line. bench/run puts it beside the networks' GFLOP/s: the ceiling a GEMM-bound layer could
 * reach on this machine. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "srv_blas.h"
#include "srv_cli.h"
#include "srv_cli_common.h"

enum { EXIT_USAGE = 2, OPT_SGEMM = 256, OPT_THREADS, OPT_RUNS, OPT_WARMUP, OPT_SIZE };

static const struct option sgemm_options[] = {
    {"sgemm", no_argument, 0, OPT_SGEMM},
    {"threads", required_argument, 0, OPT_THREADS},
    {"runs", required_argument, 0, OPT_RUNS},
    {"warmup", required_argument, 0, OPT_WARMUP},
    {"size", required_argument, 0, OPT_SIZE},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

static const char sgemm_usage[] =
    "usage: visiond bench --sgemm [--threads 1] [--size 1024] [--runs 20] [--warmup 3]\n"
    "  times cblas_sgemm on SIZE x SIZE x SIZE float matrices with N OpenBLAS threads; prints\n"
    "  {\"sgemm\":SIZE,\"threads\":N,\"median_ms\":..,\"gflop_per_s\":..,\"blas_core\":..}\n";

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Fixed values in [0,1): zeros or denormals could take a different path through the kernels. */
static void fill(float *x, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)(seed >> 8) / 16777216.0f;
    }
}

/* Median of `runs` timed sgemm calls after `warmup` untimed ones, in ms. */
static double time_sgemm(int n, const float *a, const float *b, float *c, int runs, int warmup, double *ms)
{
    for (int i = 0; i < warmup + runs; i++) {
        const double t0 = srv_cli_now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        if (i >= warmup)
            ms[i - warmup] = srv_cli_now_ms() - t0;
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    return runs % 2 ? ms[runs / 2] : (ms[runs / 2 - 1] + ms[runs / 2]) / 2;
}

int srv_cli_bench_sgemm(int argc, char **argv)
{
    int threads = 1, runs = 20, warmup = 3, n = 1024, opt, bad = 0;
    optind = 1;
    while (!bad && (opt = getopt_long(argc, argv, "h", sgemm_options, NULL)) != -1) {
        switch (opt) {
        case OPT_SGEMM: break;
        case OPT_THREADS: bad = srv_cli_int(optarg, 1, 256, &threads); break;
        case OPT_RUNS: bad = srv_cli_int(optarg, 1, 100000, &runs); break;
        case OPT_WARMUP: bad = srv_cli_int(optarg, 0, 100000, &warmup); break;
        case OPT_SIZE: bad = srv_cli_int(optarg, 16, 8192, &n); break;
        case 'h': fputs(sgemm_usage, stdout); return EXIT_SUCCESS;
        default: bad = 1;
        }
    }
    if (bad || optind < argc) {
        fprintf(stderr, "visiond: bench --sgemm: invalid arguments\n%s", sgemm_usage);
        return EXIT_USAGE;
    }
    srv_blas_set_threads(threads);
    const size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    double *ms = malloc((size_t)runs * sizeof *ms);
    int rc = EXIT_SUCCESS;
    if (!a || !b || !c || !ms) {
        fprintf(stderr, "visiond: out of memory\n");
        rc = EXIT_FAILURE;
    } else {
        fill(a, nn, 1u);
        fill(b, nn, 2u);
        const double median = time_sgemm(n, a, b, c, runs, warmup, ms);
        const double flops = 2.0 * n * n * (double)n;
        printf("{\"sgemm\":%d,\"threads\":%d,\"runs\":%d,\"median_ms\":%.4f,\"min_ms\":%.4f,"
               "\"gflop_per_s\":%.2f,\"max_gflop_per_s\":%.2f,\"blas_core\":\"%s\"}\n",
               n, threads, runs, median, ms[0], flops / (median * 1e6), flops / (ms[0] * 1e6),
               srv_blas_core());
    }
    free(a);
    free(b);
    free(c);
    free(ms);
    return rc;
}
