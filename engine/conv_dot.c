/* conv_dot.c - convolutions whose whole output is a pixel or a few, as dot products along k.
 *
 * The face recognizer's last convolutions have 1x1 outputs: the stride-2 one onto 1x1 (256 filters,
 * k = 2304) and the 1x1 that keep_live_tap (face_load.c) leaves of the last 3x3. conv.c ran them
 * through the small-n kernel (which spreads the pixels across a vector: 1 of AVX-512's 16 lanes useful)
 * or the packed GEMM, at 5-9 GFLOP/s (docs/PERFORMANCE.md, "Per-layer profile"). Here each pixel's patch
 * is unfolded once into a row of B^T (n rows of k floats), and the kernel table's gemm_dot (dot_isa.inc)
 * runs its vectors along k, where every lane is useful. The bias, the post affine and the activation
 * follow on the n outputs of each row. Rows are split across the team; every element is computed the
 * same way whatever the split, so results do not depend on the thread count. */
#include <string.h>

#include "kern.h"
#include "layer.h"
#include "team.h"

/* The rule, from a harness timing gemm_dot against the small-n kernel on m = 256 (thread CPU time, best
 * of 200, weights warm; docs/PERFORMANCE.md, "Face recognizer"): on the AVX sets dot won 3.5x at n = 1,
 * 3.4x / 2.5x at n = 2, 1.9x / 2.2x at n = 4 (avx512 / avx2, k = 2304), but at n = 9 and k = 2304 it lost
 * on AVX-512 (9 rows of B^T, 83 KB, no longer fit in L1; in the net the recognizer's 3x3-output layers
 * ran 0.15 -> 0.19 ms). The plain set won at n = 1 only (7x; 0.9x at n = 2..6, where its 16 registers
 * leave one row a tile). */
static int dot_max_n(void)
{
    return eng_kern_best()->isa == ENG_ISA_C ? 1 : 4;
}

static size_t dot_k(const struct eng_layer *l)
{
    return (size_t)l->in.c * l->p.conv.size * l->p.conv.size;
}

/* B^T's rows: k rounded up to whole AVX-512 vectors, so every row starts aligned alike. */
static size_t dot_ldb(const struct eng_layer *l)
{
    return (dot_k(l) + ENG_KERN_MAX_VL - 1) / ENG_KERN_MAX_VL * ENG_KERN_MAX_VL;
}

int eng_conv_dot_ok(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    return l->kind == ENG_LAYER_CONV && c->groups == 1 && l->out.h * l->out.w <= dot_max_n() &&
           dot_k(l) >= ENG_KERN_MAX_VL;
}

size_t eng_conv_dot_work_floats(const struct eng_layer *l)
{
    return (size_t)l->out.h * l->out.w * dot_ldb(l);
}

struct dot_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    const float *bt;
    int n_tasks;
};

/* Row j of B^T: output pixel j's patch in (channel, ky, kx) order, zero where it reads padding. */
static void unfold_task(void *arg, int j, int slot)
{
    (void)slot;
    const struct dot_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const int oy = j / l->out.w, ox = j % l->out.w, s = c->size, h = l->in.h, w = l->in.w;
    float *row = (float *)r->bt + (size_t)j * dot_ldb(l);
    for (int ch = 0; ch < l->in.c; ch++) {
        const float *plane = r->f->in + (size_t)ch * h * w;
        for (int ky = 0; ky < s; ky++) {
            const int iy = oy * c->stride - c->pad_top + ky;
            for (int kx = 0; kx < s; kx++) {
                const int ix = ox * c->stride - c->pad_left + kx;
                *row++ = iy >= 0 && iy < h && ix >= 0 && ix < w ? plane[(size_t)iy * w + ix] : 0.0f;
            }
        }
    }
}

/* Output channels of one task: the dot products, then bias, post affine and activation per row. */
static void rows_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct dot_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const int n = l->out.h * l->out.w;
    int m0, m1;
    eng_team_split(c->filters, r->n_tasks, task, 8, &m0, &m1);
    if (m1 <= m0)
        return;
    const struct eng_kern *kern = eng_kern_best();
    const size_t k = dot_k(l);
    float *out = r->f->out + (size_t)m0 * n;
    kern->gemm_dot(c->weights + (size_t)m0 * k, k, r->bt, dot_ldb(l), out, (size_t)n, m1 - m0, n, (int)k);
    for (int o = m0; o < m1; o++, out += n) {
        const float b = c->bias ? c->bias[o] : 0.0f;
        for (int j = 0; j < n; j++) {
            const float v = out[j] + b;
            out[j] = c->post_scale ? v * c->post_scale[o] + c->post_bias[o] : v;
        }
        kern->act(out, (size_t)n, c->act);
    }
}

/* Blocks of at least 32 output channels, at most 8: enough for a team of any size to share, few enough
 * that each task's rows are a long stream of weights. */
static int rows_tasks(const struct eng_layer *l)
{
    const int t = l->p.conv.filters / 32;
    return t < 1 ? 1 : t > 8 ? 8 : t;
}

void eng_conv_dot_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    struct dot_run r = {.l = l, .f = f, .bt = f->work, .n_tasks = rows_tasks(l)};
    /* B^T in the caller's scratch (slot 0), a row per task: copies, so any split gives the same bits */
    eng_team_for(f->team, l->out.h * l->out.w, unfold_task, &r);
    eng_team_for(f->team, r.n_tasks, rows_task, &r);
}
