/* conv_dw.c - depthwise convolution (groups == channels == filters) computed directly.
 *
 * Through GEMM a depthwise layer is one 1 x K x HW product per channel after an im2col, far from
 * the FMA peak (the per-layer profile of yolo-fastest showed these layers taking most of the time). Directly, a 3x3 output row is nine multiply-adds per element over three input rows, which
 * the compiler vectorizes along the row; border columns and other kernel sizes take a checked path.
 * The row kernels are in the kernel table (kern.h, kern_dw_rows.inc), one copy per instruction set. */
#include <stddef.h>
#include <string.h>

#include "kern.h"
#include "layer.h"

/* One output element with bounds checks: the border columns, and any kernel size. */
static float dw_point(const float *in, int ih, int iw, const float *w, float bias, int k, int iy0,
                      int ix0)
{
    float acc = bias;
    for (int ky = 0; ky < k; ky++) {
        const int iy = iy0 + ky;
        if (iy < 0 || iy >= ih)
            continue;
        for (int kx = 0; kx < k; kx++) {
            const int ix = ix0 + kx;
            if (ix >= 0 && ix < iw)
                acc += w[ky * k + kx] * in[(size_t)iy * iw + ix];
        }
    }
    return acc;
}

/* Output columns whose whole window [x*s - pad, x*s - pad + k) lies inside [0, iw). */
static void interior_columns(int k, int s, int pad, int iw, int ow, int *lo, int *hi)
{
    int a = (pad + s - 1) / s;
    int b = iw - k + pad < 0 ? 0 : (iw - k + pad) / s + 1;
    *lo = a < ow ? a : ow;
    *hi = b < ow ? b : ow;
    if (*hi < *lo)
        *hi = *lo;
}

static void dw_row(const struct eng_layer *l, const float *in, const float *w, float bias,
                   const float *zero, int oy, float *orow)
{
    const struct eng_conv *c = &l->p.conv;
    const int k = c->size, s = c->stride, p = c->pad_left, ih = l->in.h, iw = l->in.w, ow = l->out.w;
    const int iy0 = oy * s - c->pad_top;
    int lo = 0, hi = 0;
    if (k == 3 && (s == 1 || s == 2)) {
        interior_columns(k, s, p, iw, ow, &lo, &hi);
        const float *r[3];
        for (int ky = 0; ky < 3; ky++) {
            const int iy = iy0 + ky;
            r[ky] = (iy >= 0 && iy < ih) ? in + (size_t)iy * iw : zero;
        }
        eng_kern_best()->dw3_row(orow, r[0], r[1], r[2], w, bias, lo, hi, p, s);
    } else if (k == 5 && s == 1) {
        interior_columns(k, s, p, iw, ow, &lo, &hi);
        const float *r[5];
        for (int ky = 0; ky < 5; ky++) {
            const int iy = iy0 + ky;
            r[ky] = (iy >= 0 && iy < ih) ? in + (size_t)iy * iw : zero;
        }
        eng_kern_best()->dw5_row_s1(orow, r, w, bias, lo, hi, p);
    }
    for (int x = 0; x < ow; x++) {
        if (x == lo && hi > lo)
            x = hi; /* done above */
        if (x < ow)
            orow[x] = dw_point(in, ih, iw, w, bias, k, iy0, x * s - p);
    }
}

/* Channels [c0, c1): each output row computed and activated while it is still in L1 (a separate
 * pass over the plane would stream it through memory twice more, and these layers are memory-bound).
 * f->work starts with a row of at least in.w zeros. */
static void dw_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const float *zero = f->work;
    const struct eng_conv *c = &l->p.conv;
    const int k = c->size, ih = l->in.h, iw = l->in.w, oh = l->out.h, ow = l->out.w;
    for (int ch = c0; ch < c1; ch++) {
        const float *in = f->in + (size_t)ch * ih * iw;
        const float *w = c->weights + (size_t)ch * k * k;
        float *out = f->out + (size_t)ch * oh * ow;
        for (int oy = 0; oy < oh; oy++) {
            float *orow = out + (size_t)oy * ow;
            dw_row(l, in, w, c->bias ? c->bias[ch] : 0.0f, zero, oy, orow);
            eng_activate(orow, (size_t)ow, c->act);
        }
    }
}

/* Split by channel ranges: channels are independent, and a plane is the unit that stays in cache. */
void eng_conv_depthwise_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    memset(f->work, 0, sizeof(float) * (size_t)l->in.w); /* the zero row, shared read-only by all */
    eng_fwd_split(l, f, l->out.c, dw_channels);
}
