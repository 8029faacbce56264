/* conv.c - [convolutional]: im2col + cblas_sgemm per group, then bias and activation.
 *
 * Batch norm is folded into weights and bias by the loader, so inference is one GEMM per group.
 * A 1x1, stride-1, unpadded convolution is already a GEMM on the input (C x HW), so it skips im2col. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"

static int out_dim(int n, int size, int stride, int pad_before, int pad_after)
{
    return (n + pad_before + pad_after - size) / stride + 1;
}

static int is_pointwise(const struct eng_conv *c)
{
    return c->size == 1 && c->stride == 1 && c->pad_top == 0 && c->pad_left == 0 &&
           c->pad_bottom == 0 && c->pad_right == 0;
}

void eng_tf_same_pad(int n, int size, int stride, int *out, int *before, int *after)
{
    const int o = (n + stride - 1) / stride;
    int total = (o - 1) * stride + size - n;
    total = total > 0 ? total : 0;
    *out = o;
    *before = total / 2;
    *after = total - total / 2;
}

/* Unfolds one group's input channels into a (channels*size*size) x (out_h*out_w) matrix. */
static void im2col(const float *in, int channels, int h, int w, const struct eng_conv *c, int out_h,
                   int out_w, float *col)
{
    const int k = c->size;
    for (int ch = 0; ch < channels; ch++) {
        const float *plane = in + (size_t)ch * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + (((size_t)ch * k + ky) * k + kx) * out_h * out_w;
                for (int oy = 0; oy < out_h; oy++) {
                    const int iy = oy * c->stride - c->pad_top + ky;
                    float *dst = row + (size_t)oy * out_w;
                    if (iy < 0 || iy >= h) {
                        memset(dst, 0, sizeof(float) * out_w);
                        continue;
                    }
                    const float *src = plane + (size_t)iy * w;
                    for (int ox = 0; ox < out_w; ox++) {
                        const int ix = ox * c->stride - c->pad_left + kx;
                        dst[ox] = (ix >= 0 && ix < w) ? src[ix] : 0.0f;
                    }
                }
            }
        }
    }
}

static void conv_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_conv *c = &l->p.conv;
    const int in_c = l->in.c / c->groups;
    const int out_c = c->filters / c->groups;
    const int n = l->out.h * l->out.w;
    const int k = in_c * c->size * c->size;
    const size_t in_plane = (size_t)l->in.h * l->in.w;

    for (int g = 0; g < c->groups; g++) {
        const float *in = f->in + (size_t)g * in_c * in_plane;
        const float *b = in;
        if (!is_pointwise(c)) {
            im2col(in, in_c, l->in.h, l->in.w, c, l->out.h, l->out.w, f->work);
            b = f->work;
        }
        const float *a = c->weights + (size_t)g * out_c * k;
        float *out = f->out + (size_t)g * out_c * n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, out_c, n, k, 1.0f, a, k, b, n, 0.0f,
                    out, n);
    }
    for (int o = 0; c->bias && o < c->filters; o++) {
        float *plane = f->out + (size_t)o * n;
        const float bias = c->bias[o];
        for (int i = 0; i < n; i++)
            plane[i] += bias;
    }
    eng_activate(f->out, eng_shape_size(l->out), c->act);
}

int eng_conv_setup(struct eng_layer *l, char *why, size_t why_size)
{
    struct eng_conv *c = &l->p.conv;
    if (c->filters <= 0 || c->size <= 0 || c->stride <= 0 || c->pad < 0 || c->groups <= 0) {
        snprintf(why, why_size, "filters, size, stride and groups must be positive, pad >= 0");
        return -1;
    }
    if (c->same && c->pad) {
        snprintf(why, why_size, "'same' padding and pad=%d are exclusive", c->pad);
        return -1;
    }
    if (l->in.c % c->groups || c->filters % c->groups) {
        snprintf(why, why_size, "groups=%d must divide input channels (%d) and filters (%d)",
                 c->groups, l->in.c, c->filters);
        return -1;
    }
    if (c->same) { /* the output sizes below then come out as TF's ceil(n / stride) */
        int o;
        eng_tf_same_pad(l->in.h, c->size, c->stride, &o, &c->pad_top, &c->pad_bottom);
        eng_tf_same_pad(l->in.w, c->size, c->stride, &o, &c->pad_left, &c->pad_right);
    } else {
        c->pad_top = c->pad_left = c->pad_bottom = c->pad_right = c->pad;
    }
    const int ph = c->pad_top + c->pad_bottom, pw = c->pad_left + c->pad_right;
    const int oh = out_dim(l->in.h, c->size, c->stride, c->pad_top, c->pad_bottom);
    const int ow = out_dim(l->in.w, c->size, c->stride, c->pad_left, c->pad_right);
    /* C division truncates toward zero, so out_dim alone would give 1 for a kernel that overhangs
     * the padded input by less than a stride: test the fit itself. */
    if (oh <= 0 || ow <= 0 || l->in.h + ph < c->size || l->in.w + pw < c->size) {
        snprintf(why, why_size, "a %dx%d kernel does not fit the %dx%d input", c->size, c->size,
                 l->in.w, l->in.h);
        return -1;
    }
    l->out = (struct eng_shape){c->filters, oh, ow};
    const int depthwise = c->groups == l->in.c && c->groups == c->filters;
    l->forward = depthwise ? eng_conv_depthwise_forward : conv_forward;
    const size_t k = (size_t)(l->in.c / c->groups) * c->size * c->size;
    l->work_floats = depthwise ? (size_t)l->in.w : is_pointwise(c) ? 0 : k * (size_t)oh * ow;
    l->flops = 2.0 * (double)k * c->filters * oh * ow;
    return 0;
}
