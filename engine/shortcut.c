/* shortcut.c - [shortcut]: previous output plus an earlier layer's output, then an activation; and
 * [dropout], which is the identity at inference (its output aliases its input, no copy). */
#include <stdio.h>

#include "layer.h"

/* Channels [c0, c1). */
static void shortcut_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const size_t plane = (size_t)l->out.h * l->out.w, lo = c0 * plane, n = (size_t)(c1 - c0) * plane;
    const float *add = f->outs[l->p.shortcut.from] + lo, *in = f->in + lo;
    float *out = f->out + lo;
    for (size_t i = 0; i < n; i++)
        out[i] = in[i] + add[i];
    eng_activate(out, n, l->p.shortcut.act);
}

static void shortcut_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_fwd_split(l, f, l->out.c, shortcut_channels);
}

int eng_shortcut_setup(struct eng_layer *l, const struct eng_layer *layers, char *why,
                       size_t why_size)
{
    const int from = l->p.shortcut.from;
    if (from < 0 || from >= l->index) {
        snprintf(why, why_size, "layer %d does not exist before layer %d", from, l->index);
        return -1;
    }
    const struct eng_shape s = layers[from].out;
    /* darknet can add mismatched shapes by striding; no YOLO we load needs it, so refuse clearly. */
    if (s.c != l->in.c || s.h != l->in.h || s.w != l->in.w) {
        snprintf(why, why_size, "layer %d is %dx%dx%d but the input is %dx%dx%d", from, s.c, s.h,
                 s.w, l->in.c, l->in.h, l->in.w);
        return -1;
    }
    l->out = l->in;
    l->forward = shortcut_forward;
    l->flops = (double)eng_shape_size(l->out);
    return 0;
}

int eng_dropout_setup(struct eng_layer *l, char *why, size_t why_size)
{
    (void)why;
    (void)why_size;
    l->out = l->in;
    l->forward = NULL;
    return 0;
}
