/* upsample.c - [upsample]: nearest-neighbour by an integer stride, times `scale` (darknet's). */
#include <stdio.h>
#include <string.h>

#include "layer.h"

static void upsample_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const int s = l->p.upsample.stride;
    const float scale = l->p.upsample.scale;
    for (int c = c0; c < c1; c++) {
        const float *in = f->in + (size_t)c * l->in.h * l->in.w;
        float *out = f->out + (size_t)c * l->out.h * l->out.w;
        /* each input row makes one output row, copied s - 1 times below it: a division per element
         * (ox / s) made this layer cost as much as the convolution after it (docs/PERFORMANCE.md) */
        for (int iy = 0; iy < l->in.h; iy++) {
            const float *src = in + (size_t)iy * l->in.w;
            float *dst = out + (size_t)iy * s * l->out.w;
            if (s == 2) {
                for (int ix = 0; ix < l->in.w; ix++)
                    dst[2 * ix] = dst[2 * ix + 1] = scale * src[ix];
            } else {
                for (int ix = 0; ix < l->in.w; ix++)
                    for (int k = 0; k < s; k++)
                        dst[ix * s + k] = scale * src[ix];
            }
            for (int k = 1; k < s; k++)
                memcpy(dst + (size_t)k * l->out.w, dst, sizeof(float) * (size_t)l->out.w);
        }
    }
}

static void upsample_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_fwd_split(l, f, l->out.c, upsample_channels);
}

int eng_upsample_setup(struct eng_layer *l, char *why, size_t why_size)
{
    const int s = l->p.upsample.stride;
    /* darknet reads a negative stride as downsampling; no published YOLO uses it. */
    if (s <= 0 || s > 64) {
        snprintf(why, why_size, "stride=%d is not supported (1..64)", s);
        return -1;
    }
    l->out = (struct eng_shape){l->in.c, l->in.h * s, l->in.w * s};
    l->forward = upsample_forward;
    return 0;
}
