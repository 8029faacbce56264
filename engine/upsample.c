/* upsample.c - [upsample]: nearest-neighbour by an integer stride, times `scale` (darknet's). */
#include <stdio.h>

#include "layer.h"

static void upsample_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const int s = l->p.upsample.stride;
    const float scale = l->p.upsample.scale;
    for (int c = c0; c < c1; c++) {
        const float *in = f->in + (size_t)c * l->in.h * l->in.w;
        float *out = f->out + (size_t)c * l->out.h * l->out.w;
        for (int oy = 0; oy < l->out.h; oy++) {
            const float *src = in + (size_t)(oy / s) * l->in.w;
            float *dst = out + (size_t)oy * l->out.w;
            for (int ox = 0; ox < l->out.w; ox++)
                dst[ox] = scale * src[ox / s];
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
