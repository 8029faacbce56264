/* conv_resadd.c - a 1x1 projection fused with the [shortcut] that adds a residual to it (the end of
 * MobileNetV2's inverted residual in Yolo-Fastest(-XL): 1x1 linear project, [dropout], [shortcut]).
 *
 * Unfused, the projection writes its output and the shortcut layer reads it back with the residual in
 * a pass of its own (about 4 GFLOP/s: a memory pass, docs/PERFORMANCE.md "Per-layer profile") and a team
 * dispatch of its own. Fused, the shortcut layer computes the projection a stretch of pixels at a time
 * into its slot's scratch (in L1) and adds the residual as it stores: the sum is the projection plus the
 * residual, as shortcut.c adds them (add_act's 0 + p + r: the same value but for the sign of a zero sum).
 * The projection keeps its layer index with no forward function (its output, and the dropout's, alias
 * its input, net.c), so the shortcut layer's input is the projection's input. Stretches are fixed by the
 * shapes, never by the thread count, so every team computes the same bits. */
#include "kern.h"
#include "layer.h"
#include "net.h"
#include "team.h"

#define RESADD_PIXELS 256 /* pixels per stretch: K x 256 input floats and M x 256 sums stay in L1/L2 */
#define RESADD_MIN_TASKS 4 /* planes under 4 stretches are cut in 4 (whole vectors): a 20x20 or 10x10
                            * layer as one stretch left the second thread of a team idle */

/* Pixels per stretch for a plane of n: a constant of the shape, never of the thread count. */
static size_t stretch(size_t n)
{
    if (n >= RESADD_MIN_TASKS * RESADD_PIXELS)
        return RESADD_PIXELS;
    const size_t v = ENG_KERN_MAX_VL, s = (n / RESADD_MIN_TASKS + v - 1) / v * v;
    return s ? s : v;
}

struct resadd_run {
    const struct eng_layer *s;
    const struct eng_fwd *f;
    int n_tasks;
};

/* Stretch `task` (the last takes the rest, so no stretch is shorter than one vector unless the plane
 * is). */
static void resadd_task(void *arg, int task, int slot)
{
    const struct resadd_run *r = arg;
    const struct eng_layer *s = r->s, *p = s->p.shortcut.project;
    const struct eng_conv *c = &p->p.conv;
    const size_t n = (size_t)s->out.h * s->out.w, p0 = (size_t)task * stretch(n);
    const size_t p1 = task == r->n_tasks - 1 ? n : p0 + stretch(n), len = p1 - p0;
    float *sums = r->f->work + (size_t)slot * r->f->work_stride; /* m rows of len */
    const struct eng_pw pw = {.w = c->weights, .bias = c->bias, .in = r->f->in + p0, .in_plane = n, .out = sums,
                              .m = s->out.c, .k = p->in.c, .plane = len, .act = c->act};
    const struct eng_kern *kern = eng_kern_best();
    kern->pointwise(&pw, 0, s->out.c, 0, len);
    const float *res = r->f->outs[s->p.shortcut.from];
    for (int o = 0; o < s->out.c; o++) {
        const float *in[2] = {sums + (size_t)o * len, res + (size_t)o * n + p0};
        kern->add_act(r->f->out + (size_t)o * n + p0, in, 2, len, s->p.shortcut.act);
    }
}

static void resadd_forward(const struct eng_layer *s, const struct eng_fwd *f)
{
    const size_t n = (size_t)s->out.h * s->out.w;
    struct resadd_run r = {.s = s, .f = f, .n_tasks = n / stretch(n) > 1 ? (int)(n / stretch(n)) : 1};
    eng_team_for(f->team, r.n_tasks, resadd_task, &r);
}

int eng_net_read_by_other(const struct eng_net *net, int i, int reader)
{
    if (i == net->n_layers - 1)
        return 1;
    for (int j = 0; j < net->n_layers; j++) {
        const struct eng_layer *l = &net->layers[j];
        if (j == reader)
            continue;
        if (j == i + 1 && l->forward)
            return 1; /* it reads i as its input */
        if (l->kind == ENG_LAYER_ROUTE) {
            for (int k = 0; k < l->p.route.n; k++)
                if (l->p.route.inputs[k] == i)
                    return 1;
        } else if (l->kind == ENG_LAYER_SHORTCUT && l->p.shortcut.from == i) {
            return 1;
        } else if (l->kind == ENG_LAYER_ADD) {
            for (int k = 0; k < l->p.add.n; k++)
                if (l->p.add.inputs[k] == i)
                    return 1;
        } else if ((l->kind == ENG_LAYER_YOLO || l->kind == ENG_LAYER_REGION) && j == i + 1) {
            return 1;
        }
    }
    return 0;
}

/* The fixed rule: a shortcut whose input comes from a 1x1 stride-1 layer of one group on the pointwise
 * kernel (conv_pw.c) with no post affine, through dropouts only, whose output (and the dropouts') nothing
 * else reads, adding a residual from before that layer. */
void eng_conv_resadd_fuse(struct eng_net *net)
{
    for (int i = 0; i < net->n_layers; i++) {
        struct eng_layer *s = &net->layers[i];
        if (s->kind != ENG_LAYER_SHORTCUT || s->forward == resadd_forward || s->p.shortcut.project)
            continue;
        int pi = i - 1;
        while (pi >= 0 && net->layers[pi].kind == ENG_LAYER_DROPOUT)
            pi--;
        if (pi < 0 || s->p.shortcut.from >= pi)
            continue;
        struct eng_layer *p = &net->layers[pi];
        const struct eng_conv *c = &p->p.conv;
        if (p->kind != ENG_LAYER_CONV || p->forward != eng_conv_pointwise_forward || c->groups != 1 ||
            c->post_scale)
            continue;
        int other = 0;
        for (int j = pi; j < i && !other; j++)
            other = eng_net_read_by_other(net, j, i);
        if (other)
            continue;
        s->p.shortcut.project = p;
        s->forward = resadd_forward;
        s->work_floats = (size_t)s->out.c * 2 * stretch((size_t)s->out.h * s->out.w); /* the last: under 2 x */
        s->flops += p->flops; /* the profile shows the pair on the shortcut */
        p->flops = 0;
        p->forward = NULL;
        p->work_floats = 0;
    }
}
