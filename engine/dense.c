/* dense.c - fully connected layer: out = W x + b (x is the input flattened in CHW order), one
 * cblas_sgemm with a single column, then an activation. */
#include <cblas.h>
#include <stdio.h>
#include <string.h>

#include "layer.h"

static void dense_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_dense *d = &l->p.dense;
    const int n_in = (int)eng_shape_size(l->in);
    if (d->bias)
        memcpy(f->out, d->bias, sizeof(float) * (size_t)d->outputs);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d->outputs, 1, n_in, 1.0f, d->weights,
                n_in, f->in, 1, d->bias ? 1.0f : 0.0f, f->out, 1);
    eng_activate(f->out, (size_t)d->outputs, d->act);
}

int eng_dense_setup(struct eng_layer *l, char *why, size_t why_size)
{
    const struct eng_dense *d = &l->p.dense;
    if (d->outputs <= 0 || !d->weights) {
        snprintf(why, why_size, "a dense layer needs outputs > 0 and weights");
        return -1;
    }
    if (eng_shape_size(l->in) > (size_t)1 << 30) {
        snprintf(why, why_size, "input of %zu values is too large", eng_shape_size(l->in));
        return -1;
    }
    l->out = (struct eng_shape){d->outputs, 1, 1};
    l->forward = dense_forward;
    l->flops = 2.0 * (double)eng_shape_size(l->in) * d->outputs;
    return 0;
}
