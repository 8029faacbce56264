/* pool.c - [maxpool] and [avgpool] with darknet's semantics.
 *
 * maxpool: out = (n + padding - size) / stride + 1, the window starts padding/2 before the input, and
 * cells outside the input never win (so size=2 stride=1 keeps the grid size, as in yolov3-tiny).
 * avgpool: darknet's is global: each channel becomes its mean. With size > 0 (not from darknet cfgs)
 * it is TensorFlow's 'valid' average pooling: size x size windows moved by stride, no padding. */
#include <float.h>
#include <stdio.h>

#include "layer.h"

static void maxpool_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const struct eng_pool *p = &l->p.pool;
    const int off = -p->pad / 2;
    for (int c = c0; c < c1; c++) {
        const float *in = f->in + (size_t)c * l->in.h * l->in.w;
        float *out = f->out + (size_t)c * l->out.h * l->out.w;
        for (int oy = 0; oy < l->out.h; oy++) {
            for (int ox = 0; ox < l->out.w; ox++) {
                float best = -FLT_MAX;
                for (int ky = 0; ky < p->size; ky++) {
                    const int iy = off + oy * p->stride + ky;
                    if (iy < 0 || iy >= l->in.h)
                        continue;
                    for (int kx = 0; kx < p->size; kx++) {
                        const int ix = off + ox * p->stride + kx;
                        if (ix < 0 || ix >= l->in.w)
                            continue;
                        const float v = in[(size_t)iy * l->in.w + ix];
                        best = v > best ? v : best;
                    }
                }
                out[(size_t)oy * l->out.w + ox] = best;
            }
        }
    }
}

static void maxpool_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_fwd_split(l, f, l->out.c, maxpool_channels);
}

int eng_maxpool_setup(struct eng_layer *l, char *why, size_t why_size)
{
    const struct eng_pool *p = &l->p.pool;
    if (p->size <= 0 || p->stride <= 0 || p->pad < 0) {
        snprintf(why, why_size, "size and stride must be positive and padding >= 0");
        return -1;
    }
    const int oh = (l->in.h + p->pad - p->size) / p->stride + 1;
    const int ow = (l->in.w + p->pad - p->size) / p->stride + 1;
    if (oh <= 0 || ow <= 0 || l->in.h + p->pad < p->size || l->in.w + p->pad < p->size) {
        snprintf(why, why_size, "a %dx%d window does not fit the %dx%d input", p->size, p->size,
                 l->in.w, l->in.h);
        return -1;
    }
    /* A window that lies wholly in the padding would output -FLT_MAX: refuse such shapes. */
    if (p->pad / 2 >= p->size || p->pad - p->pad / 2 >= p->size) {
        snprintf(why, why_size, "padding=%d is too large for size=%d", p->pad, p->size);
        return -1;
    }
    l->out = (struct eng_shape){l->in.c, oh, ow};
    l->forward = maxpool_forward;
    l->flops = (double)eng_shape_size(l->out) * p->size * p->size;
    return 0;
}

static void avgpool_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int c = 0; c < l->in.c; c++) {
        const float *in = f->in + c * plane;
        double sum = 0.0;
        for (size_t i = 0; i < plane; i++)
            sum += in[i];
        f->out[c] = (float)(sum / (double)plane);
    }
}

static void avgpool_window_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_pool *p = &l->p.pool;
    const float count = (float)(p->size * p->size);
    for (int c = 0; c < l->out.c; c++) {
        const float *in = f->in + (size_t)c * l->in.h * l->in.w;
        float *out = f->out + (size_t)c * l->out.h * l->out.w;
        for (int oy = 0; oy < l->out.h; oy++) {
            for (int ox = 0; ox < l->out.w; ox++) {
                float sum = 0.0f;
                for (int ky = 0; ky < p->size; ky++) {
                    const float *row = in + (size_t)(oy * p->stride + ky) * l->in.w + ox * p->stride;
                    for (int kx = 0; kx < p->size; kx++)
                        sum += row[kx];
                }
                out[(size_t)oy * l->out.w + ox] = sum / count;
            }
        }
    }
}

int eng_avgpool_setup(struct eng_layer *l, char *why, size_t why_size)
{
    const struct eng_pool *p = &l->p.pool;
    if (p->size == 0) {
        l->out = (struct eng_shape){l->in.c, 1, 1};
        l->forward = avgpool_forward;
        l->flops = (double)eng_shape_size(l->in);
        return 0;
    }
    if (p->size < 0 || p->stride <= 0 || p->pad != 0) {
        snprintf(why, why_size, "a windowed avgpool needs size > 0, stride > 0 and no padding");
        return -1;
    }
    if (l->in.h < p->size || l->in.w < p->size) {
        snprintf(why, why_size, "a %dx%d window does not fit the %dx%d input", p->size, p->size,
                 l->in.w, l->in.h);
        return -1;
    }
    l->out = (struct eng_shape){l->in.c, (l->in.h - p->size) / p->stride + 1,
                                (l->in.w - p->size) / p->stride + 1};
    l->forward = avgpool_window_forward;
    l->flops = (double)eng_shape_size(l->out) * p->size * p->size;
    return 0;
}
