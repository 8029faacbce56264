/* kern.c - chooses the kernel set (kern.h) the processor runs, or the one VISIOND_KERNELS forces. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"

const struct eng_kern *eng_kern_for(enum eng_isa isa)
{
    switch (isa) {
    case ENG_ISA_C:
        return &eng_kern_c;
#if ENG_KERN_X86
    /* __builtin_cpu_supports also checks that the OS saves the wider registers (XCR0). */
    case ENG_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? &eng_kern_avx2 : NULL;
    case ENG_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") ? &eng_kern_avx512 : NULL;
#endif
    default:
        return NULL;
    }
}

size_t eng_gemm_packed_floats(int m, int k)
{
    return (size_t)(m + ENG_GEMM_MR - 1) / ENG_GEMM_MR * ENG_GEMM_MR * (size_t)k;
}

size_t eng_gemm_packed_index(int m, int k, int i, int kk)
{
    const size_t mp = (size_t)(m + ENG_GEMM_MR - 1) / ENG_GEMM_MR * ENG_GEMM_MR;
    const int kk0 = kk / ENG_GEMM_KC * ENG_GEMM_KC, kc = k - kk0 < ENG_GEMM_KC ? k - kk0 : ENG_GEMM_KC;
    return (size_t)kk0 * mp + (size_t)(i / ENG_GEMM_MR) * kc * ENG_GEMM_MR +
           (size_t)(kk - kk0) * ENG_GEMM_MR + (size_t)(i % ENG_GEMM_MR);
}

void eng_gemm_pack_a(const float *a, size_t lda, int m, int k, float *dst)
{
    const int mp = (m + ENG_GEMM_MR - 1) / ENG_GEMM_MR * ENG_GEMM_MR;
    for (int kk0 = 0; kk0 < k; kk0 += ENG_GEMM_KC) {
        const int kc = k - kk0 < ENG_GEMM_KC ? k - kk0 : ENG_GEMM_KC;
        float *block = dst + (size_t)kk0 * mp;
        for (int i0 = 0; i0 < m; i0 += ENG_GEMM_MR) {
            float *panel = block + (size_t)i0 * kc;
            for (int kk = 0; kk < kc; kk++)
                for (int r = 0; r < ENG_GEMM_MR; r++)
                    panel[(size_t)kk * ENG_GEMM_MR + r] =
                        i0 + r < m ? a[(size_t)(i0 + r) * lda + kk0 + kk] : 0.0f;
        }
    }
}

const struct eng_kern *eng_kern_widest(void)
{
    for (int isa = ENG_ISA_COUNT - 1; isa > ENG_ISA_C; isa--) {
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (k)
            return k;
    }
    return &eng_kern_c;
}

const char *eng_isa_name(enum eng_isa isa)
{
    static const char *names[ENG_ISA_COUNT] = {"c", "avx2", "avx512"};
    return isa >= 0 && isa < ENG_ISA_COUNT ? names[isa] : "unknown";
}

static pthread_once_t kern_once = PTHREAD_ONCE_INIT;
static const struct eng_kern *kern_chosen;
static char kern_env_error[160];

/* Read once: a set switched in the middle of a forward pass would mix two sets' roundings. */
static void kern_choose(void)
{
    const char *want = getenv(ENG_KERN_ENV);
    kern_chosen = eng_kern_widest();
    if (!want || !*want || strcmp(want, "auto") == 0)
        return;
    for (int isa = 0; isa < ENG_ISA_COUNT; isa++) {
        if (strcmp(want, eng_isa_name((enum eng_isa)isa)) != 0)
            continue;
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (k)
            kern_chosen = k;
        else {
            char runs[32];
            snprintf(kern_env_error, sizeof kern_env_error,
                     "%s=%s: this processor (or build) cannot run the %s kernels; it runs: %s", ENG_KERN_ENV,
                     want, want, eng_kern_supported(runs, sizeof runs));
        }
        return;
    }
    snprintf(kern_env_error, sizeof kern_env_error, "%s=%.32s: unknown kernel set (auto, c, avx2 or avx512)",
             ENG_KERN_ENV, want);
}

const struct eng_kern *eng_kern_best(void)
{
    pthread_once(&kern_once, kern_choose);
    return kern_chosen;
}

const char *eng_kern_env_error(void)
{
    pthread_once(&kern_once, kern_choose);
    return kern_env_error[0] ? kern_env_error : NULL;
}

char *eng_kern_supported(char *buf, size_t size)
{
    size_t used = 0;
    if (size)
        buf[0] = '\0';
    for (int isa = 0; isa < ENG_ISA_COUNT; isa++) {
        if (!eng_kern_for((enum eng_isa)isa) || used >= size)
            continue;
        const int n = snprintf(buf + used, size - used, "%s%s", used ? " " : "", eng_isa_name((enum eng_isa)isa));
        used += n > 0 ? (size_t)n : 0;
    }
    return buf;
}

static size_t round_up(size_t n, size_t m)
{
    return (n + m - 1) / m * m;
}

int eng_dw_supported(const struct eng_dw *d)
{
    return (d->k == 3 || d->k == 5) && (d->stride == 1 || d->stride == 2);
}

struct eng_dw_geom eng_dw_geom(const struct eng_dw *d)
{
    struct eng_dw_geom g = {0};
    const size_t vl = ENG_KERN_MAX_VL;
    g.hp = (d->oh - 1) * d->stride + d->k;
    if (d->stride == 1) {
        const int used = d->ow - 1 + d->k;
        g.wp = d->w_in + d->pad_left > used ? d->w_in + d->pad_left : used;
        /* the plane loop runs whole vectors past the last output and reads k - 1 rows below it */
        g.plane_floats = (size_t)g.hp * g.wp + (size_t)d->k + vl;
        g.out_floats = (size_t)d->oh * g.wp + vl;
    } else {
        /* four phase planes of rows + k / 2 rows, w2 = ow + k / 2 columns; the output stretch (whole
         * vectors over oh x w2) reads up to k / 2 rows and columns past its own index, the row fills
         * store whole vectors past a row's end (at most vl - 1 floats past the last row) */
        const size_t half = (size_t)d->k / 2, rows = (size_t)d->oh + half;
        g.w2 = d->ow + (int)half;
        g.out_floats = round_up((size_t)d->oh * (size_t)g.w2, vl);
        size_t need = g.out_floats + half * (size_t)g.w2 + half + vl;
        need = need > rows * (size_t)g.w2 + vl ? need : rows * (size_t)g.w2 + vl;
        g.plane_floats = round_up(need, vl);
        /* one padded input row: the pairs the fills read and the whole vectors of the row copy */
        const size_t pairs = 2 * round_up((size_t)g.w2, vl), data = (size_t)d->pad_left + round_up((size_t)d->w_in, vl);
        g.wp = (int)round_up((pairs > data ? pairs : data) + vl, vl);
    }
    return g;
}

size_t eng_dw_scratch_floats(const struct eng_dw *d)
{
    const struct eng_dw_geom g = eng_dw_geom(d);
    return d->stride == 1 ? g.plane_floats + g.out_floats
                          : 4 * g.plane_floats + (size_t)g.wp + g.out_floats;
}
