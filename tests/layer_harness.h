/* layer_harness.h - helpers the layer tests share: a fixed-seed generator and running one layer.
 * Include after <cmocka.h>. Each test file gets its own copy of the generator's state. */
#ifndef LAYER_HARNESS_H
#define LAYER_HARNESS_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "layer.h"
#include "team.h"

/* A fixed-seed generator: the tests are the same on every run. */
static uint32_t rng_state;

static inline float rnd(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 16777216.0f * 2.0f - 1.0f; /* [-1, 1) */
}

static inline float *floats_new(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof *p);
    assert_non_null(p);
    return p;
}

static inline float *floats_random(size_t n)
{
    float *p = floats_new(n);
    for (size_t i = 0; i < n; i++)
        p[i] = rnd();
    return p;
}

static inline struct eng_layer layer_new(enum eng_layer_kind kind, int index, int c, int h, int w)
{
    struct eng_layer l;
    memset(&l, 0, sizeof l);
    l.kind = kind;
    l.index = index;
    l.in = (struct eng_shape){c, h, w};
    l.out = l.in;
    return l;
}

/* Runs l on `in` with outputs `outs` (may be NULL) and returns its new output (caller frees). The work
 * buffer is exactly work_floats long, and NULL when the layer declares none. */
static inline float *run(const struct eng_layer *l, const float *in, float *const *outs)
{
    assert_non_null(l->forward);
    float *out = floats_new(eng_shape_size(l->out));
    float *work = l->work_floats ? floats_new(l->work_floats) : NULL;
    const struct eng_fwd f = {.in = in, .out = out, .work = work, .outs = outs};
    l->forward(l, &f);
    free(work);
    return out;
}

/* A forward that takes its kernel set (eng_conv_blk_run's shape); NULL in run_threads: the layer's own. */
typedef void (*harness_fwd)(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_kern *k);

/* Runs l on a team of `threads` (none for 1) as a net does, a scratch slot per thread, into an output filled
 * with NaN first so that a value left unwritten fails the comparison. The caller frees the result. */
static inline float *run_threads(const struct eng_layer *l, const float *in, int threads, harness_fwd fwd,
                                 const struct eng_kern *k)
{
    struct eng_err err;
    struct eng_team *t = threads > 1 ? eng_team_new(threads, NULL, &err) : NULL;
    if (threads > 1 && !t)
        fail_msg("eng_team_new(%d): %s", threads, err.msg);
    float *out = floats_new(eng_shape_size(l->out));
    for (size_t i = 0; i < eng_shape_size(l->out); i++)
        out[i] = NAN;
    float *work = floats_new(l->work_floats * (size_t)threads);
    const struct eng_fwd f = {.in = in, .out = out, .work = work, .team = t, .work_stride = l->work_floats};
    if (fwd)
        fwd(l, &f, k);
    else
        l->forward(l, &f);
    free(work);
    eng_team_free(t);
    return out;
}

static inline void setup_ok(int rc, const char *why)
{
    if (rc != 0)
        fail_msg("setup failed: %s", why);
}

/* The kernel sets this build and processor run, into sets[] (ENG_ISA_COUNT entries); a set the processor
 * lacks is reported, not tested (CI's processors run all three). */
static inline int kern_sets(const struct eng_kern **sets)
{
    int n = 0;
    for (int isa = 0; isa < ENG_ISA_COUNT; isa++) {
        const struct eng_kern *k = eng_kern_for((enum eng_isa)isa);
        if (k) {
            assert_int_equal(k->isa, isa);
            sets[n++] = k;
        } else {
            print_message("instruction set %d not supported here: not tested\n", isa);
        }
    }
    assert_true(n >= 1);
    return n;
}

/* Naive direct convolution in double (any size, stride and padding: pad_top / pad_left as setup set
 * them), bias, post affine, activation; mag[i] the sum of |terms| of output i, for float tolerances. */
static inline void conv_ref_f64(const struct eng_layer *l, const float *in, double *want, double *mag)
{
    const struct eng_conv *c = &l->p.conv;
    for (int o = 0; o < l->out.c; o++)
        for (int oy = 0; oy < l->out.h; oy++)
            for (int ox = 0; ox < l->out.w; ox++) {
                double s = c->bias ? c->bias[o] : 0.0, m = fabs(s);
                for (int ch = 0; ch < l->in.c; ch++)
                    for (int ky = 0; ky < c->size; ky++)
                        for (int kx = 0; kx < c->size; kx++) {
                            const int iy = oy * c->stride - c->pad_top + ky, ix = ox * c->stride - c->pad_left + kx;
                            if (iy < 0 || iy >= l->in.h || ix < 0 || ix >= l->in.w)
                                continue;
                            const double p = (double)c->weights[((o * l->in.c + ch) * c->size + ky) * c->size + kx] *
                                             in[(ch * l->in.h + iy) * l->in.w + ix];
                            s += p;
                            m += fabs(p);
                        }
                if (c->post_scale) {
                    s = s * c->post_scale[o] + c->post_bias[o];
                    m = m * fabs(c->post_scale[o]) + fabs(c->post_bias[o]);
                }
                float v = (float)s;
                eng_act_ref(&v, 1, c->act);
                const size_t at = ((size_t)o * l->out.h + oy) * l->out.w + ox;
                want[at] = c->act == ENG_ACT_LINEAR ? s : v;
                mag[at] = m;
            }
}

#endif
