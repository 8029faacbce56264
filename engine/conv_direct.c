/* conv_direct.c - stride-1 convolutions with a small GEMM depth, read straight from the input.
 *
 * A first layer on RGB (3 channels, 3x3: k = 27) through im2col wrote its input out 27 times: for
 * yolov3-tiny @416, 18.7 MB of columns for an 11 MB output, and the layer ran at 25-30 GFLOP/s. Here
 * each tap (channel, ky, kx) of an output row is a contiguous stretch of a zero-padded copy of the
 * input (or of the input itself when there is no padding), so the pointwise kernel (kern.h) reads
 * it through a table of k offsets: same register tiles, same order of sums, no columns. Up to k = 160
 * (yolov3-tiny's second layer, k = 144, at 208x208: 7.1-7.9 ms through im2col and sgemm, 3.6-4.8
 * direct), while a tile's k input stretches of 32 floats and its 8 x k weights stay in L1; at
 * k = 288 they do not, and the direct layer ran 4x slower than sgemm. Rows narrower than the kernel's
 * 32-pixel tile would leave most pixels to its scalar tail. */
#include <string.h>

#include "kern.h"
#include "layer.h"
#include "team.h"

/* The padded input: hp rows of wp floats per channel; the input sits at (pad_top, pad_left). */
static int padded_h(const struct eng_layer *l)
{
    return l->out.h + l->p.conv.size - 1;
}

static int padded_w(const struct eng_layer *l)
{
    return l->out.w + l->p.conv.size - 1;
}

static int unpadded(const struct eng_conv *c)
{
    return c->pad_top == 0 && c->pad_left == 0 && c->pad_bottom == 0 && c->pad_right == 0;
}

#define DIRECT_MAX_K 160
#define DIRECT_MIN_WIDTH 32

int eng_conv_direct_ok(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    const int k = l->in.c * c->size * c->size;
    return c->stride == 1 && c->groups == 1 && c->size > 1 && k <= DIRECT_MAX_K &&
           l->out.w >= DIRECT_MIN_WIDTH && c->pad_top >= 0 && c->pad_left >= 0 && c->pad_bottom >= 0 &&
           c->pad_right >= 0;
}

size_t eng_conv_direct_work_floats(const struct eng_layer *l)
{
    return unpadded(&l->p.conv) ? 0 : (size_t)l->in.c * padded_h(l) * padded_w(l);
}

/* The input copied into the middle of a zeroed hp x wp plane per channel. */
static void pad_input(const struct eng_layer *l, const float *in, float *pad)
{
    const struct eng_conv *c = &l->p.conv;
    const int hp = padded_h(l), wp = padded_w(l), h = l->in.h, w = l->in.w;
    const int rows = h < hp - c->pad_top ? h : hp - c->pad_top;
    const int cols = w < wp - c->pad_left ? w : wp - c->pad_left;
    for (int ch = 0; ch < l->in.c; ch++) {
        float *plane = pad + (size_t)ch * hp * wp;
        memset(plane, 0, sizeof(float) * (size_t)c->pad_top * wp);
        for (int y = 0; y < rows; y++) {
            float *row = plane + (size_t)(y + c->pad_top) * wp;
            memset(row, 0, sizeof(float) * (size_t)c->pad_left);
            memcpy(row + c->pad_left, in + ((size_t)ch * h + y) * w, sizeof(float) * (size_t)cols);
            memset(row + c->pad_left + cols, 0, sizeof(float) * (size_t)(wp - c->pad_left - cols));
        }
        memset(plane + (size_t)(rows + c->pad_top) * wp, 0,
               sizeof(float) * (size_t)(hp - rows - c->pad_top) * wp);
    }
}

struct direct_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    const float *src; /* the padded input, or the input */
    const size_t *offsets;
    int n_tasks;
};

/* Output rows of one task: each row is one pointwise call over its whole width, so a pixel is
 * computed the same way whatever the split. */
static void direct_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct direct_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const size_t plane = (size_t)l->out.h * l->out.w;
    int y0, y1;
    eng_team_split(l->out.h, r->n_tasks, task, 1, &y0, &y1);
    const struct eng_kern *kern = eng_kern_best();
    for (int y = y0; y < y1; y++) {
        const struct eng_pw pw = {.w = c->weights, .bias = c->bias,
                                  .in = r->src + (size_t)y * padded_w(l), .out = r->f->out + (size_t)y * l->out.w,
                                  .m = c->filters, .k = l->in.c * c->size * c->size, .plane = plane,
                                  .in_offsets = r->offsets, .act = c->act};
        kern->pointwise(&pw, 0, c->filters, 0, (size_t)l->out.w);
    }
}

void eng_conv_direct_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_conv *c = &l->p.conv;
    const int hp = padded_h(l), wp = padded_w(l), s = c->size;
    size_t offsets[DIRECT_MAX_K];
    for (int ch = 0; ch < l->in.c; ch++)
        for (int ky = 0; ky < s; ky++)
            for (int kx = 0; kx < s; kx++)
                offsets[(ch * s + ky) * s + kx] = ((size_t)ch * hp + ky) * wp + kx;
    struct direct_run r = {.l = l, .f = f, .src = f->in, .offsets = offsets,
                           .n_tasks = l->out.h < 16 ? l->out.h : 16};
    if (!unpadded(c)) {
        pad_input(l, f->in, f->work); /* the caller's scratch, read by every task */
        r.src = f->work;
    }
    eng_team_for(f->team, r.n_tasks, direct_task, &r);
}
