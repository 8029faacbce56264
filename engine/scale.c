/* scale.c - per-channel affine y = x * w[c] + b[c] then an activation: the "scale" layer of
 * Caffe/dlib ResNets (face-api's face recognition net keeps it apart from the convolution). */
#include <stdio.h>

#include "layer.h"

/* Channels [c0, c1). */
static void scale_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const struct eng_scale *s = &l->p.scale;
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int c = c0; c < c1; c++) {
        const float w = s->weights[c], b = s->bias[c];
        const float *in = f->in + c * plane;
        float *out = f->out + c * plane;
        for (size_t i = 0; i < plane; i++)
            out[i] = in[i] * w + b;
    }
    eng_activate(f->out + c0 * plane, (size_t)(c1 - c0) * plane, s->act);
}

static void scale_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_fwd_split(l, f, l->in.c, scale_channels);
}

int eng_scale_setup(struct eng_layer *l, char *why, size_t why_size)
{
    if (!l->p.scale.weights || !l->p.scale.bias) {
        snprintf(why, why_size, "a scale layer needs weights and biases");
        return -1;
    }
    l->out = l->in;
    l->forward = scale_forward;
    l->flops = 2.0 * (double)eng_shape_size(l->out);
    return 0;
}
