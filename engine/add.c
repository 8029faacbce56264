/* add.c - elementwise sum of several earlier outputs, then an activation. face-api's dense blocks
 * sum up to four branch outputs; its ResNet "down" blocks add a pooled input with fewer channels to
 * a convolution output with fewer rows (zero_extend). */
#include <stdio.h>
#include <string.h>

#include "kern.h"
#include "layer.h"

/* Adds `in` (shape is) into `out` (shape os, at least as large in every dimension) at the origin. */
static void add_into(float *out, struct eng_shape os, const float *in, struct eng_shape is)
{
    if (is.h == os.h && is.w == os.w) { /* same planes: one run per input */
        const size_t n = eng_shape_size(is);
        for (size_t i = 0; i < n; i++)
            out[i] += in[i];
        return;
    }
    for (int c = 0; c < is.c; c++)
        for (int y = 0; y < is.h; y++) {
            float *o = out + ((size_t)c * os.h + y) * os.w;
            const float *s = in + ((size_t)c * is.h + y) * is.w;
            for (int x = 0; x < is.w; x++)
                o[x] += s[x];
        }
}

/* Inputs of different shapes (zero_extend): cleared, each added in turn, then activated. */
static void add_extend_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_add *a = &l->p.add;
    memset(f->out, 0, sizeof(float) * eng_shape_size(l->out));
    for (int i = 0; i < a->n; i++) {
        const int k = a->inputs[i];
        add_into(f->out, l->out, f->outs[k], a->shapes[i]);
    }
    eng_activate(f->out, eng_shape_size(l->out), a->act);
}

/* Channels [c0, c1) of inputs all of the output's shape: one pass of the kernel, the same sums in
 * the same order as add_extend_forward's. */
static void add_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const struct eng_add *a = &l->p.add;
    const size_t plane = (size_t)l->out.h * l->out.w, at = (size_t)c0 * plane;
    const float *in[ENG_ADD_MAX_INPUTS];
    for (int i = 0; i < a->n; i++)
        in[i] = f->outs[a->inputs[i]] + at;
    eng_kern_best()->add_act(f->out + at, in, a->n, (size_t)(c1 - c0) * plane, a->act);
}

static void add_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_fwd_split(l, f, l->out.c, add_channels);
}

int eng_add_setup(struct eng_layer *l, const struct eng_layer *layers, char *why, size_t why_size)
{
    struct eng_add *a = &l->p.add;
    if (a->n < 2 || a->n > ENG_ADD_MAX_INPUTS) {
        snprintf(why, why_size, "add needs 2..%d inputs, not %d", ENG_ADD_MAX_INPUTS, a->n);
        return -1;
    }
    struct eng_shape o = {0, 0, 0};
    for (int i = 0; i < a->n; i++) {
        const int k = a->inputs[i];
        if (k < 0 || k >= l->index) {
            snprintf(why, why_size, "layer %d does not exist before layer %d", k, l->index);
            return -1;
        }
        const struct eng_shape s = layers[k].out;
        if (!a->zero_extend && i > 0 && (s.c != o.c || s.h != o.h || s.w != o.w)) {
            snprintf(why, why_size, "layer %d is %dx%dx%d but layer %d is %dx%dx%d", k, s.c, s.h,
                     s.w, a->inputs[0], o.c, o.h, o.w);
            return -1;
        }
        a->shapes[i] = s;
        o.c = s.c > o.c ? s.c : o.c;
        o.h = s.h > o.h ? s.h : o.h;
        o.w = s.w > o.w ? s.w : o.w;
    }
    l->out = o;
    l->forward = add_forward;
    for (int i = 0; i < a->n; i++)
        if (a->shapes[i].c != o.c || a->shapes[i].h != o.h || a->shapes[i].w != o.w)
            l->forward = add_extend_forward;
    l->flops = (double)a->n * (double)eng_shape_size(o);
    return 0;
}
