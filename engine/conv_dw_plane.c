/* conv_dw_plane.c - depthwise 3x3 and 5x5 layers (stride 1 or 2) through the padded-plane kernel of
 * kern.h; other depthwise shapes keep the row kernel of conv_dw.c. */
#include "kern.h"
#include "layer.h"

static struct eng_dw dw_params(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_conv *c = &l->p.conv;
    return (struct eng_dw){.in = f ? f->in : NULL, .out = f ? f->out : NULL, .w = c->weights,
                           .bias = c->bias, .h = l->in.h, .w_in = l->in.w, .oh = l->out.h,
                           .ow = l->out.w, .k = c->size, .stride = c->stride,
                           .pad_top = c->pad_top, .pad_left = c->pad_left, .act = c->act};
}

static void dw_plane_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_dw d = dw_params(l, f);
    eng_kern_best()->depthwise(&d, 0, l->out.c, f->work);
}

/* Stride 2 splits every padded row into even and odd columns first: that pays on narrow outputs,
 * where the row kernel's per-row overhead dominates (272x20x20 -> 10x10: 0.21 -> 0.13 ms), breaks even
 * at 40 columns and loses on wide ones (48x160x160 -> 80x80: 0.41 -> 0.66 ms). */
#define STRIDE2_MAX_OUT_W 32

void eng_conv_depthwise_plane_setup(struct eng_layer *l)
{
    const struct eng_dw d = dw_params(l, NULL);
    if (!eng_dw_supported(&d) || (d.stride == 2 && d.ow > STRIDE2_MAX_OUT_W))
        return;
    l->forward = dw_plane_forward;
    l->work_floats = eng_dw_scratch_floats(&d);
}
