/* gal_f16.c - IEEE half precision (binary16) conversion for the gallery index's scan copy (gal_f16.h).
 *
 * Three implementations with bit-identical results (round to nearest even, both directions exact for
 * finite values): portable C, F16C (8 values per instruction, with AVX2) and AVX-512F (16). The widest
 * the processor supports is chosen once, at first use; VISIOND_KERNELS=c|avx2|avx512 forces one, as it
 * does for the engine's kernel sets (engine/kern.c); a forced set the processor lacks falls back to C. */
#include "gal_f16.h"

#include <pthread.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GAL_F16_X86 1
#else
#define GAL_F16_X86 0
#endif

/* ---- portable C ---- */

static uint16_t half_from_float(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax >= 0x47800000u) /* >= 65536, infinity or NaN */
        return (uint16_t)(sign | (ax > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (ax < 0x38800000u) { /* below 2^-14: a subnormal half; the FPU's own rounding (to nearest even) */
        float t;
        memcpy(&t, &ax, sizeof t);
        t += 0.5f; /* 0.5f = 2^-1: aligns 2^-24, the smallest subnormal, on the float's last bit */
        uint32_t tb;
        memcpy(&tb, &t, sizeof tb);
        return (uint16_t)(sign | (tb - 0x3f000000u));
    }
    uint32_t odd = (ax >> 13) & 1u;
    ax += 0xc8000fffu + odd; /* rebias the exponent (15 - 127) and round the 13 dropped bits to even */
    return (uint16_t)(sign | (ax >> 13));
}

static float float_from_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, u;
    if (e == 0) {
        float f = (float)m * 0x1p-24f; /* zero or subnormal: exact */
        memcpy(&u, &f, sizeof u);
        u |= sign;
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13);
    } else {
        u = sign | ((e + 112u) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void to_half_c(uint16_t *dst, const float *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_from_float(src[i]);
}

static void to_float_c(float *dst, const uint16_t *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = float_from_half(src[i]);
}

/* dots[q * n + r] = queries[q] . rows[r] (rows: n x GAL_F16_DIM halves) */
static void dots_c(float *dots, const uint16_t *rows, size_t n, const float *queries, size_t nq)
{
    for (size_t r = 0; r < n; r++) {
        float g[GAL_F16_DIM];
        to_float_c(g, rows + r * GAL_F16_DIM, GAL_F16_DIM);
        for (size_t q = 0; q < nq; q++) {
            const float *qq = queries + q * GAL_F16_DIM;
            float acc = 0;
            for (int k = 0; k < GAL_F16_DIM; k++)
                acc += qq[k] * g[k];
            dots[q * n + r] = acc;
        }
    }
}

/* ---- F16C and AVX-512F ---- */

#if GAL_F16_X86
__attribute__((target("avx2,f16c"))) static void to_half_f16c(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    to_half_c(dst + i, src + i, n - i);
}

__attribute__((target("avx2,f16c"))) static void to_float_f16c(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    to_float_c(dst + i, src + i, n - i);
}

/* One row converted once into registers, then dotted with every query: the rows are read from memory
 * once per call whatever nq, in half the bytes of float rows. */
__attribute__((target("avx2,fma,f16c"))) static void dots_f16c(float *dots, const uint16_t *rows, size_t n,
                                                               const float *queries, size_t nq)
{
    for (size_t r = 0; r < n; r++) {
        const uint16_t *h = rows + r * GAL_F16_DIM;
        __m256 g[GAL_F16_DIM / 8];
        for (int c = 0; c < GAL_F16_DIM / 8; c++)
            g[c] = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + 8 * c)));
        for (size_t q = 0; q < nq; q++) {
            const float *qq = queries + q * GAL_F16_DIM;
            __m256 a0 = _mm256_mul_ps(g[0], _mm256_loadu_ps(qq)), a1 = _mm256_mul_ps(g[1], _mm256_loadu_ps(qq + 8));
            for (int c = 2; c < GAL_F16_DIM / 8; c += 2) {
                a0 = _mm256_fmadd_ps(g[c], _mm256_loadu_ps(qq + 8 * c), a0);
                a1 = _mm256_fmadd_ps(g[c + 1], _mm256_loadu_ps(qq + 8 * c + 8), a1);
            }
            __m256 a = _mm256_add_ps(a0, a1);
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
            s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
            dots[q * n + r] = _mm_cvtss_f32(s4);
        }
    }
}

__attribute__((target("avx512f"))) static void dots_avx512(float *dots, const uint16_t *rows, size_t n,
                                                           const float *queries, size_t nq)
{
    if (nq == 1) { /* the query stays in registers; four rows at a time keep the loads in flight */
        __m512 q[GAL_F16_DIM / 16];
        for (int c = 0; c < GAL_F16_DIM / 16; c++)
            q[c] = _mm512_loadu_ps(queries + 16 * c);
        size_t r = 0;
        for (; r + 4 <= n; r += 4) {
            const uint16_t *h = rows + r * GAL_F16_DIM;
            __m512 a[4];
            for (int j = 0; j < 4; j++) {
                const uint16_t *hj = h + j * GAL_F16_DIM;
                __m512 x0 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)hj)), q[0]);
                __m512 x1 = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(hj + 16))), q[1]);
                for (int c = 2; c < GAL_F16_DIM / 16; c += 2) {
                    x0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(hj + 16 * c))), q[c], x0);
                    x1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(hj + 16 * c + 16))),
                                         q[c + 1], x1);
                }
                a[j] = _mm512_add_ps(x0, x1);
            }
            for (int j = 0; j < 4; j++)
                dots[r + j] = _mm512_reduce_add_ps(a[j]);
        }
        for (; r < n; r++)
            dots_c(dots + r, rows + r * GAL_F16_DIM, 1, queries, 1);
        return;
    }
    for (size_t r = 0; r < n; r++) {
        const uint16_t *h = rows + r * GAL_F16_DIM;
        __m512 g[GAL_F16_DIM / 16];
        for (int c = 0; c < GAL_F16_DIM / 16; c++)
            g[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(h + 16 * c)));
        for (size_t q = 0; q < nq; q++) {
            const float *qq = queries + q * GAL_F16_DIM;
            __m512 a0 = _mm512_mul_ps(g[0], _mm512_loadu_ps(qq)), a1 = _mm512_mul_ps(g[1], _mm512_loadu_ps(qq + 16));
            for (int c = 2; c < GAL_F16_DIM / 16; c += 2) {
                a0 = _mm512_fmadd_ps(g[c], _mm512_loadu_ps(qq + 16 * c), a0);
                a1 = _mm512_fmadd_ps(g[c + 1], _mm512_loadu_ps(qq + 16 * c + 16), a1);
            }
            dots[q * n + r] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        }
    }
}

__attribute__((target("avx512f"))) static void to_half_avx512(uint16_t *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i),
                            _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    to_half_c(dst + i, src + i, n - i);
}

__attribute__((target("avx512f"))) static void to_float_avx512(float *dst, const uint16_t *src, size_t n)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    to_float_c(dst + i, src + i, n - i);
}
#endif

/* ---- choice ---- */

struct f16_set {
    const char *name;
    void (*to_half)(uint16_t *, const float *, size_t);
    void (*to_float)(float *, const uint16_t *, size_t);
    void (*dots)(float *, const uint16_t *, size_t, const float *, size_t);
};

static const struct f16_set set_c = {"c", to_half_c, to_float_c, dots_c};
#if GAL_F16_X86
static const struct f16_set set_f16c = {"avx2", to_half_f16c, to_float_f16c, dots_f16c};
static const struct f16_set set_avx512 = {"avx512", to_half_avx512, to_float_avx512, dots_avx512};
#endif

static const struct f16_set *chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

#if GAL_F16_X86
/* F16C from CPUID (leaf 1, ECX bit 29): clang's __builtin_cpu_supports has no "f16c" (the fuzz builds). */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));
}
#endif

static void choose(void)
{
    const char *want = getenv("VISIOND_KERNELS");
    chosen = &set_c;
#if GAL_F16_X86
    int has512 = __builtin_cpu_supports("avx512f"),
        has_f16c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    if (want && *want) {
        if (strcmp(want, "avx512") == 0 && has512)
            chosen = &set_avx512;
        else if (strcmp(want, "avx2") == 0 && has_f16c)
            chosen = &set_f16c;
        return;
    }
    chosen = has512 ? &set_avx512 : has_f16c ? &set_f16c : &set_c;
#else
    (void)want;
#endif
}

static const struct f16_set *set(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}

void gal_f16_from_f32(uint16_t *dst, const float *src, size_t n) { set()->to_half(dst, src, n); }
void gal_f16_to_f32(float *dst, const uint16_t *src, size_t n) { set()->to_float(dst, src, n); }
void gal_f16_dots(float *dots, const uint16_t *rows, size_t n, const float *queries, size_t nq)
{
    set()->dots(dots, rows, n, queries, nq);
}
const char *gal_f16_isa(void) { return set()->name; }
void gal_f16_from_f32_c(uint16_t *dst, const float *src, size_t n) { to_half_c(dst, src, n); }
void gal_f16_to_f32_c(float *dst, const uint16_t *src, size_t n) { to_float_c(dst, src, n); }
