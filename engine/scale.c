/* scale.c - per-channel affine y = x * w[c] + b[c] then an activation: the "scale" layer of
 * Caffe/dlib ResNets (face-api's face recognition net keeps it apart from the convolution). */
#include <stdio.h>

#include "layer.h"

static void scale_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_scale *s = &l->p.scale;
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int c = 0; c < l->in.c; c++) {
        const float w = s->weights[c], b = s->bias[c];
        const float *in = f->in + c * plane;
        float *out = f->out + c * plane;
        for (size_t i = 0; i < plane; i++)
            out[i] = in[i] * w + b;
    }
    eng_activate(f->out, eng_shape_size(l->out), s->act);
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
