/* conv_dw_plane.c - depthwise 3x3 and 5x5 layers (stride 1 or 2) through the padded-plane kernel of
 * kern.h; other depthwise shapes keep the row kernel of conv_dw.c. */
#include "kern.h"
#include "layer.h"
#include "team.h"

static struct eng_dw dw_params(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_conv *c = &l->p.conv;
    return (struct eng_dw){.in = f ? f->in : NULL, .out = f ? f->out : NULL, .w = c->weights,
                           .bias = c->bias, .h = l->in.h, .w_in = l->in.w, .oh = l->out.h,
                           .ow = l->out.w, .k = c->size, .stride = c->stride,
                           .pad_top = c->pad_top, .pad_left = c->pad_left, .act = c->act};
}

/* A team splits the channels: each range runs on its own slot's scratch (work_floats per slot). */
struct dw_split {
    struct eng_dw d;
    const struct eng_fwd *f;
    int channels, n_tasks;
};

static void dw_task(void *arg, int task, int slot)
{
    const struct dw_split *s = arg;
    int lo, hi;
    eng_team_split(s->channels, s->n_tasks, task, 1, &lo, &hi);
    if (hi > lo)
        eng_kern_best()->depthwise(&s->d, lo, hi, s->f->work + (size_t)slot * s->f->work_stride);
}

static void dw_plane_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const int width = eng_team_width(f->team);
    struct dw_split s = {.d = dw_params(l, f), .f = f, .channels = l->out.c, .n_tasks = 1};
    if (width > 1)
        s.n_tasks = 2 * width < l->out.c ? 2 * width : l->out.c;
    eng_team_for(f->team, s.n_tasks, dw_task, &s);
}

/* Stride 2 splits every padded row into even and odd columns first: that pays on narrow outputs,
 * where the row kernel's per-row overhead dominates (272x20x20 -> 10x10), breaks even at 40 columns
 * and loses on wide ones (48x160x160 -> 80x80); docs/PERFORMANCE.md, Kernels. */
#define STRIDE2_MAX_OUT_W 32

void eng_conv_depthwise_plane_setup(struct eng_layer *l)
{
    const struct eng_dw d = dw_params(l, NULL);
    if (!eng_dw_supported(&d) || (d.stride == 2 && d.ow > STRIDE2_MAX_OUT_W))
        return;
    l->forward = dw_plane_forward;
    l->work_floats = eng_dw_scratch_floats(&d);
}
