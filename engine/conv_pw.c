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

#define PIXEL_BLOCK 32 /* the kernel's pixel tile: thread ranges start at multiples of it */

int eng_conv_pointwise_direct(const struct eng_layer *l)
{
    const int k = l->in.c / l->p.conv.groups, m = l->p.conv.filters / l->p.conv.groups;
    return k <= ENG_CONV_DIRECT_MAX_K || m <= ENG_CONV_PW_MAX_M;
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
        kern->pointwise(&pw, 0, out_c, p0, p1);
    }
}

/* Split across the team by pixel ranges: every output channel of a pixel comes from the same K input
 * values, which a range keeps in L1. */
void eng_conv_pointwise_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const int n = l->out.h * l->out.w;
    eng_fwd_split(l, f, (n + PIXEL_BLOCK - 1) / PIXEL_BLOCK, pointwise_blocks);
}
