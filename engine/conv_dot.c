/* conv_dot.c - convolutions whose whole output is a pixel or a few, as dot products along k.
 *
 * The face recognizer's last convolutions have 1x1 outputs: the stride-2 one onto 1x1 (256 filters,
 * k = 2304) and the 1x1 that keep_live_tap (face_load.c) leaves of the last 3x3. conv.c ran them
 * through the small-n kernel (which spreads the pixels across a vector: 1 of AVX-512's 16 lanes useful)
 * or the packed GEMM, at 5-9 GFLOP/s (docs/PERFORMANCE.md, "Per-layer profile"). Here each pixel's patch
 * is unfolded once into a row of B^T (n rows of k floats), and the kernel table's gemm_dot (dot_isa.inc)
 * runs its vectors along k, where every lane is useful. The bias, the post affine and the activation
 * follow on the n outputs of each row.
 *
 * Outputs of 5..16 pixels (the recognizer's 3x3 and 4x4 layers, 256 filters, k = 1152 and 2304) keep
 * the small-n kernel, but no longer conv.c's im2col: on planes 3 and 4 wide it unfolded a row of 3-4
 * floats per call, and the layers ran at 140-150 us against the kernel's 83 (a layer harness, weights
 * warm). Here the input is staged once into a zero-padded copy of just the window the outputs read, and
 * each of B's k rows is gathered from it through a table of the n pixels' offsets. Same kernels and
 * order as conv.c (bias, then the GEMM, then the post affine and the activation), so the same bits.
 *
 * Rows are split across the team; every element is computed the same way whatever the split, so
 * results do not depend on the thread count. */
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

static int pixels(const struct eng_layer *l)
{
    return l->out.h * l->out.w;
}

/* The staged window: rows and columns the outputs read, padding included. */
static int stage_h(const struct eng_layer *l)
{
    return (l->out.h - 1) * l->p.conv.stride + l->p.conv.size;
}

static int stage_w(const struct eng_layer *l)
{
    return (l->out.w - 1) * l->p.conv.stride + l->p.conv.size;
}

/* Whether the layer is a 1x1 stride-1 unpadded one (conv.c reads its input as B: nothing to unfold). */
static int pointwise(const struct eng_conv *c)
{
    return c->size == 1 && c->stride == 1 && c->pad_top == 0 && c->pad_left == 0 && c->pad_bottom == 0 &&
           c->pad_right == 0;
}

int eng_conv_dot_ok(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    if (l->kind != ENG_LAYER_CONV || c->groups != 1 || dot_k(l) < ENG_KERN_MAX_VL)
        return 0;
    return pixels(l) <= dot_max_n() || (pixels(l) <= ENG_KERN_SMALL_N && !pointwise(c));
}

size_t eng_conv_dot_work_floats(const struct eng_layer *l)
{
    if (pixels(l) <= dot_max_n())
        return (size_t)pixels(l) * dot_ldb(l);
    return (size_t)l->in.c * stage_h(l) * stage_w(l) + dot_k(l) * ENG_KERN_SMALL_N;
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

/* ---- 5..16 pixels: the small-n kernel on B gathered from a staged window ---------------------- */

struct small_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    float *staged, *b;
    int offsets[ENG_KERN_SMALL_N]; /* pixel j's first tap in the staged window */
    int n_tasks, stage_tasks;
};

/* Channels of one task: their window staged (zeros where it is padding), then their k rows of B. */
static void small_stage_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct small_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const int hs = stage_h(l), ws = stage_w(l), n = pixels(l), s = c->size;
    int ch0, ch1;
    eng_team_split(l->in.c, r->stage_tasks, task, 1, &ch0, &ch1);
    for (int ch = ch0; ch < ch1; ch++) {
        const float *plane = r->f->in + (size_t)ch * l->in.h * l->in.w;
        float *win = r->staged + (size_t)ch * hs * ws;
        for (int y = 0; y < hs; y++)
            for (int x = 0; x < ws; x++) {
                const int iy = y - c->pad_top, ix = x - c->pad_left;
                win[y * ws + x] =
                    iy >= 0 && iy < l->in.h && ix >= 0 && ix < l->in.w ? plane[(size_t)iy * l->in.w + ix] : 0.0f;
            }
        for (int ky = 0; ky < s; ky++)
            for (int kx = 0; kx < s; kx++) {
                const float *tap = win + ky * ws + kx;
                float *row = r->b + ((size_t)(ch * s + ky) * s + kx) * ENG_KERN_SMALL_N;
                for (int j = 0; j < n; j++)
                    row[j] = tap[r->offsets[j]];
                for (int j = n; j < ENG_KERN_SMALL_N; j++)
                    row[j] = 0.0f;
            }
    }
}

/* Output channels of one task, as conv.c's conv_gemm has them for a small-n tile. */
static void small_rows_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct small_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const int n = pixels(l);
    const size_t k = dot_k(l);
    int m0, m1;
    eng_team_split(c->filters, r->n_tasks, task, 8, &m0, &m1);
    if (m1 <= m0)
        return;
    const struct eng_kern *kern = eng_kern_best();
    float *out = r->f->out + (size_t)m0 * n;
    kern->fill_rows(out, m1 - m0, n, (size_t)n, c->bias ? c->bias + m0 : NULL);
    kern->gemm_small_n(c->weights + (size_t)m0 * k, k, r->b, out, (size_t)n, m1 - m0, n, (int)k);
    for (int o = m0; o < m1; o++, out += n) {
        if (c->post_scale)
            for (int j = 0; j < n; j++)
                out[j] = out[j] * c->post_scale[o] + c->post_bias[o];
        if (c->act != ENG_ACT_LINEAR)
            eng_activate(out, (size_t)n, c->act);
    }
}

static void small_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    struct small_run r = {.l = l, .f = f, .staged = f->work, .n_tasks = rows_tasks(l),
                          .stage_tasks = l->in.c < 8 ? l->in.c : 8};
    r.b = r.staged + (size_t)l->in.c * stage_h(l) * stage_w(l);
    for (int j = 0; j < pixels(l); j++)
        r.offsets[j] = (j / l->out.w) * l->p.conv.stride * stage_w(l) + (j % l->out.w) * l->p.conv.stride;
    eng_team_for(f->team, r.stage_tasks, small_stage_task, &r);
    eng_team_for(f->team, r.n_tasks, small_rows_task, &r);
}

void eng_conv_dot_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    if (pixels(l) > dot_max_n()) {
        small_forward(l, f);
        return;
    }
    struct dot_run r = {.l = l, .f = f, .bt = f->work, .n_tasks = rows_tasks(l)};
    /* B^T in the caller's scratch (slot 0), a row per task: copies, so any split gives the same bits */
    eng_team_for(f->team, l->out.h * l->out.w, unfold_task, &r);
    eng_team_for(f->team, r.n_tasks, rows_task, &r);
}
