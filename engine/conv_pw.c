/* conv_pw.c - pointwise (1x1) convolutions with few input channels, computed directly.
 *
 * The per-layer profile of Yolo-Fastest showed its 1x1 expansion layers (8..32 input channels) running
 * sgemm several times slower than the projections with more input channels: with so small a
 * K, OpenBLAS's packing of both operands and its separate beta pass over C cost more than the
 * multiply-adds, and bias and activation took one more pass. The direct kernel (kern.h) keeps a
 * K x 32-pixel tile of the input in L1, accumulates 8 output channels x 32 pixels in registers, and
 * writes each output once with bias and activation applied. It also takes 1x1 layers with few outputs
 * at any K (layer.h, ENG_CONV_PW_MAX_M), where the GEMM's packing of the input costs more than it saves. */
#include "kern.h"
#include "layer.h"
#include "team.h"

#define PIXEL_BLOCK 32 /* the kernel's pixel tile: thread ranges start at multiples of it */

int eng_conv_pointwise_direct(const struct eng_layer *l)
{
    const int k = l->in.c / l->p.conv.groups, m = l->p.conv.filters / l->p.conv.groups;
    return k <= ENG_CONV_DIRECT_MAX_K || m <= ENG_CONV_PW_MAX_M;
}

/* Layers with up to PW_STRETCH_MAX_M outputs run in stretches of pixels, PW_CHANNELS outputs at a
 * time (pointwise_blocks): Yolo-Fastest-XL's 8 -> 48 on 160x160 ran 2.5x faster so; layers with more
 * outputs (192 from 32) ran ~4% slower, and keep one call (docs/PERFORMANCE.md, "Yolo-Fastest-XL's
 * 1x1 layers"). */
#define PW_STRETCH_MAX_M 64
#define PW_CHANNELS 8        /* output channels per pass along a stretch */
#define PW_CHUNK_FLOATS 4096 /* input floats per stretch (k x chunk pixels): 16 KB of L1 */

/* Pixels per stretch for k input channels: whole tiles, as many as fit PW_CHUNK_FLOATS. */
static size_t pointwise_chunk(int k)
{
    const size_t tiles = (size_t)PW_CHUNK_FLOATS / ((size_t)k * PIXEL_BLOCK);
    return (tiles ? tiles : 1) * PIXEL_BLOCK;
}

/* Pixels [32 * b0, 32 * b1) of every group: ranges in whole 32-pixel tiles of the kernel, so a
 * pixel is computed the same way whichever range it falls in. */
static void pointwise_blocks(const struct eng_layer *l, const struct eng_fwd *f, int b0, int b1)
{
    const struct eng_conv *c = &l->p.conv;
    const int in_c = l->in.c / c->groups, out_c = c->filters / c->groups;
    const size_t n = (size_t)l->out.h * l->out.w;
    const size_t p0 = (size_t)b0 * PIXEL_BLOCK, p1 = (size_t)b1 * PIXEL_BLOCK < n ? (size_t)b1 * PIXEL_BLOCK : n;
    const struct eng_kern *kern = eng_kern_best();
    for (int g = 0; g < c->groups; g++) {
        const struct eng_pw pw = {.w = c->weights + (size_t)g * out_c * in_c,
                                  .bias = c->bias ? c->bias + (size_t)g * out_c : NULL,
                                  .in = f->in + (size_t)g * in_c * n,
                                  .out = f->out + (size_t)g * out_c * n,
                                  .m = out_c, .k = in_c, .plane = n, .act = c->act,
                                  .post_w = c->post_scale ? c->post_scale + (size_t)g * out_c : NULL,
                                  .post_b = c->post_scale ? c->post_bias + (size_t)g * out_c : NULL};
        if (out_c > PW_STRETCH_MAX_M) {
            kern->pointwise(&pw, 0, out_c, p0, p1);
            continue;
        }
        /* Stretches of chunk pixels (whole tiles, the last one taking the rest so the kernel's tail
         * is as in one call), PW_CHANNELS output channels at a time along each: the same sums in the
         * same order as one call over [p0, p1), with fewer output planes written at once (a 160x160
         * layer's planes are a multiple of 4 KB apart: a tile's channels all fall in one L1 set). */
        const size_t chunk = pointwise_chunk(in_c);
        for (size_t q0 = p0; q0 < p1;) {
            const size_t q1 = p1 - q0 < 2 * chunk ? p1 : q0 + chunk;
            for (int m = 0; m < out_c; m += PW_CHANNELS)
                kern->pointwise(&pw, m, out_c - m < PW_CHANNELS ? out_c : m + PW_CHANNELS, q0, q1);
            q0 = q1;
        }
    }
}

/* Split across the team by pixel ranges: every output channel of a pixel comes from the same K input
 * values, which a range keeps in L1. */
void eng_conv_pointwise_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const int n = l->out.h * l->out.w;
    eng_fwd_split(l, f, (n + PIXEL_BLOCK - 1) / PIXEL_BLOCK, pointwise_blocks);
}

/* ---- a 2x2 stride-2 max-pool in the output pass ---------------------------------------------------
 * The face detector's pointwise layers before a pool wrote 32x207x207 (5.5 MB) and smaller outputs
 * that the pool read back; here each pair of output rows goes to the slot's scratch and is pooled
 * from there (as conv_direct.c does for the first layer): the same pointwise call on those pixels,
 * the same pool kernel, the bits of the two layers. */
struct pool2_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    int n_tasks;
};

static void pool2_task(void *arg, int task, int slot)
{
    const struct pool2_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const int h = l->in.h, w = l->in.w, m = c->filters;
    float *rows = r->f->work + (size_t)slot * r->f->work_stride; /* m planes of 2 rows */
    int y0, y1;
    eng_team_split(l->out.h, r->n_tasks, task, 1, &y0, &y1);
    const struct eng_kern *kern = eng_kern_best();
    for (int py = y0; py < y1; py++) {
        const int n_rows = 2 * py + 1 < h ? 2 : 1;
        const struct eng_pw pw = {.w = c->weights, .bias = c->bias, .in = r->f->in + (size_t)2 * py * w,
                                  .in_plane = (size_t)h * w, .out = rows, .m = m, .k = l->in.c,
                                  .plane = 2 * (size_t)w, .act = c->act, .post_w = c->post_scale,
                                  .post_b = c->post_bias};
        kern->pointwise(&pw, 0, m, 0, (size_t)n_rows * w);
        for (int o = 0; o < m; o++) {
            const float *a = rows + (size_t)o * 2 * w;
            eng_maxpool2_rows(a, n_rows == 2 ? a + w : NULL, w,
                              r->f->out + ((size_t)o * l->out.h + py) * l->out.w);
        }
    }
}

static void pool2_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    struct pool2_run r = {.l = l, .f = f, .n_tasks = 1};
    const int width = eng_team_width(f->team);
    if (width > 1)
        r.n_tasks = 4 * width < l->out.h ? 4 * width : l->out.h;
    eng_team_for(f->team, r.n_tasks, pool2_task, &r);
}

int eng_conv_pointwise_pool2_setup(struct eng_layer *l)
{
    if (l->forward != eng_conv_pointwise_forward || l->p.conv.groups != 1 || l->in.w < ENG_KERN_MAX_VL)
        return 0;
    l->out.h = (l->in.h + 1) / 2; /* TF 'same': ceil(n / 2), the odd row and column padded after */
    l->out.w = (l->in.w + 1) / 2;
    l->forward = pool2_forward;
    l->work_floats = 2 * (size_t)l->p.conv.filters * l->in.w;
    l->flops += 4.0 * (double)eng_shape_size(l->out);
    return 1;
}
