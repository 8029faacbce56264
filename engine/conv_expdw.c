/* conv_expdw.c - a 1x1 expansion fused with the depthwise layer after it (MobileNetV2's inverted
 * residual: 1x1 expand -> 3x3 depthwise -> 1x1 project, as in Yolo-Fastest(-XL)).
 *
 * Unfused, the expansion writes C x H x W floats (192x40x40 is 1.2 MB, more than L2) that the
 * depthwise layer reads straight back; the depthwise layers ran at a fifth of their compute bound
 * (docs/PERFORMANCE.md, "Per-layer profile"). Fused, a task computes the expansion for a block of
 * EXPDW_CB channels over a band of input rows into its slot's scratch (EXPDW_BUDGET floats, which stays
 * in L2), then runs the depthwise kernel on it: the expanded tensor is never written whole. The two
 * layers are also one team dispatch instead of two, which matters at 2 threads on these small layers.
 *
 * The expansion layer keeps its place in the net (routes and shortcuts count layers) but gets no forward
 * function: like a dropout its output then aliases its input (net.c), which is what the fused depthwise
 * layer reads. Bands overlap by k - stride input rows, which are computed in both; the plan (bands and
 * channel blocks) depends on the shapes alone, never on the thread count, so every team computes the
 * same bits. */
#include <string.h>

#include "kern.h"
#include "layer.h"
#include "net.h"
#include "team.h"

#define EXPDW_CB 8            /* expanded channels per task: the pointwise kernel's register tile */
#define EXPDW_BUDGET (32 * 1024) /* floats of expanded rows per task (128 KB, stays in L2) */

static int block_channels(const struct eng_layer *d)
{
    return d->out.c < EXPDW_CB ? d->out.c : EXPDW_CB;
}

/* Output rows per band, so that a block's expanded rows fit EXPDW_BUDGET: a band of r output rows reads
 * (r - 1) * stride + 3 input rows. */
static int band_rows(const struct eng_layer *d)
{
    const int s = d->p.conv.stride;
    int r = ((int)(EXPDW_BUDGET / ((size_t)block_channels(d) * d->in.w)) - 3) / s + 1;
    r = r < 1 ? 1 : r;
    return r < d->out.h ? r : d->out.h;
}

/* Scratch floats of a task: a vector of slack, the block's planes of band rows, the kernel's reach past
 * the last row (kern.h, dw3_padded). */
static size_t task_floats(const struct eng_layer *d)
{
    const size_t rows = (size_t)(band_rows(d) - 1) * d->p.conv.stride + 3;
    return ENG_KERN_MAX_VL + (size_t)block_channels(d) * rows * d->in.w + ENG_DW3P_ROW(d->out.w, d->p.conv.stride);
}

struct expdw_run {
    const struct eng_layer *d;
    const struct eng_fwd *f;
    int rows, bands, blocks;
};

/* Band `task / blocks` of output rows, block `task % blocks` of channels: the expansion of the band's
 * input rows in one pointwise call into the slot's scratch (zero rows where the band reaches past the
 * input), then the depthwise rows straight into the output (the kernel masks the columns outside). */
static void expdw_task(void *arg, int task, int slot)
{
    const struct expdw_run *r = arg;
    const struct eng_layer *d = r->d, *e = d->p.conv.expand;
    const struct eng_conv *ec = &e->p.conv, *dc = &d->p.conv;
    const int s = dc->stride, w = d->in.w, h = d->in.h;
    const int c0 = task % r->blocks * EXPDW_CB, c1 = c0 + EXPDW_CB < d->out.c ? c0 + EXPDW_CB : d->out.c;
    const int oy0 = task / r->blocks * r->rows, oy1 = oy0 + r->rows < d->out.h ? oy0 + r->rows : d->out.h;
    const int iy0 = oy0 * s - dc->pad_top, hp = (oy1 - oy0 - 1) * s + 3;
    const int ylo = iy0 < 0 ? 0 : iy0, yhi = iy0 + hp < h ? iy0 + hp : h;
    const size_t plane = (size_t)hp * w;
    float *buf = r->f->work + (size_t)slot * r->f->work_stride + ENG_KERN_MAX_VL;
    for (int c = 0; c < c1 - c0; c++) {
        float *pc = buf + c * plane;
        if (ylo > iy0)
            memset(pc, 0, sizeof(float) * (size_t)(ylo - iy0) * w);
        if (iy0 + hp > yhi)
            memset(pc + (size_t)(yhi - iy0) * w, 0, sizeof(float) * (size_t)(iy0 + hp - yhi) * w);
    }
    const struct eng_kern *kern = eng_kern_best();
    const struct eng_pw pw = {.w = ec->weights + (size_t)c0 * e->in.c, .bias = ec->bias ? ec->bias + c0 : NULL,
                              .in = r->f->in + (size_t)ylo * w, .in_plane = (size_t)h * w,
                              .out = buf + (size_t)(ylo - iy0) * w, .m = c1 - c0, .k = e->in.c, .plane = plane,
                              .act = ec->act};
    kern->pointwise(&pw, 0, c1 - c0, 0, (size_t)(yhi - ylo) * w);
    const size_t out_plane = (size_t)d->out.h * d->out.w;
    for (int ch = c0; ch < c1; ch++)
        kern->dw3_padded(buf + (size_t)(ch - c0) * plane, (size_t)w, r->f->out + ch * out_plane + (size_t)oy0 * d->out.w,
                         (size_t)d->out.w, oy1 - oy0, d->out.w, s, dc->pad_left, w, dc->weights + (size_t)ch * 9,
                         dc->bias ? dc->bias[ch] : 0.0f, dc->act);
}

static void expdw_forward(const struct eng_layer *d, const struct eng_fwd *f)
{
    struct expdw_run r = {.d = d, .f = f, .rows = band_rows(d), .blocks = (d->out.c + EXPDW_CB - 1) / EXPDW_CB};
    r.bands = (d->out.h + r.rows - 1) / r.rows;
    eng_team_for(f->team, r.bands * r.blocks, expdw_task, &r);
}

/* The fixed rule: e is a 1x1 stride-1 layer of one group run by the pointwise kernel (conv_pw.c: few
 * input channels or outputs), with no post affine; d the 3x3 depthwise layer right after it, at stride 1
 * or 2. Measured on Yolo-Fastest(-XL) (CPU time per layer, docs/PERFORMANCE.md), every such pair ran
 * faster fused or the same (the 20-wide stride-1 pairs), and an expansion by the GEMM (more inputs and
 * outputs) is left alone. */
static int fusable(const struct eng_layer *e, const struct eng_layer *d)
{
    const struct eng_conv *ec = &e->p.conv, *dc = &d->p.conv;
    return e->kind == ENG_LAYER_CONV && d->kind == ENG_LAYER_CONV && e->forward == eng_conv_pointwise_forward &&
           ec->groups == 1 && !ec->post_scale && dc->groups == d->in.c && dc->filters == d->in.c &&
           d->forward && d->forward != expdw_forward && dc->size == 3 && (dc->stride == 1 || dc->stride == 2) &&
           !dc->post_scale && d->in.c == e->out.c;
}

void eng_conv_expdw_fuse(struct eng_net *net)
{
    for (int i = 0; i + 1 < net->n_layers; i++) {
        struct eng_layer *e = &net->layers[i], *d = &net->layers[i + 1];
        if (!fusable(e, d) || eng_net_read_by_other(net, i, i + 1))
            continue;
        d->p.conv.expand = e;
        d->forward = expdw_forward;
        d->work_floats = task_floats(d);
        d->flops += e->flops; /* the profile shows the pair on the depthwise layer */
        e->flops = 0;
        e->forward = NULL;
        e->work_floats = 0;
    }
}
