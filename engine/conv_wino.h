/* conv_wino.h - Winograd F(2x2,3x3) convolution for 3x3 stride-1 layers (conv_wino.c).
 *
 * The weights are transformed once, when the loader has them (U = G g G^T: 16 matrices of filters x
 * channels, owned by the layer as c->wino and freed by eng_net_free); the forward pass then runs 16
 * GEMMs per block of 2x2 output tiles between the input and output transforms of kern.h. Whether a
 * layer takes this path is a fixed rule on its shape and the kernel set (eng_conv_wino_ok), never a
 * timing: every process computes the same bits. docs/PERFORMANCE.md ("Winograd") has the figures the
 * rule comes from. */
#ifndef ENG_CONV_WINO_H
#define ENG_CONV_WINO_H

#include "kern.h"
#include "layer.h"

/* The Winograd tile the rule picks for l (set up by eng_conv_setup) with the engine's kernel set:
 * 2 for F(2x2,3x3), 4 for F(4x4,3x3), 0 for none. */
int eng_conv_wino_ok(const struct eng_layer *l);

/* Called by the loaders once l's weights are final (and again if they change): if the rule picks
 * Winograd, transforms the weights into c->wino (allocated the first time) and sets l's forward and
 * work_floats. Returns 0, or -1 if out of memory (l is then unchanged). */
int eng_conv_wino_prepare(struct eng_layer *l);

/* The same without the rule, F(m x m, 3x3) with m 2 or 4, for any 3x3, stride-1, single-group layer
 * (tests, bench/winobench.c). */
int eng_conv_wino_transform(struct eng_layer *l, int m);

/* U's layout: each U_xi packed for our GEMM (kern.h, eng_gemm_pack_a; its register tiles then stream
 * one contiguous panel) where the engine's kernel set has that GEMM, else in place (filters x channels,
 * for sgemm). Only one copy is kept. The same bits either way (tests/test_wino.c). This variant picks
 * the layout (tests, benchmarks); `packed` needs a set with .gemm to run. */
int eng_conv_wino_transform_as(struct eng_layer *l, int m, int packed);

void eng_conv_wino_forward(const struct eng_layer *l, const struct eng_fwd *f);

/* The forward pass with kernel set k instead of the engine's (tests run every set). */
void eng_conv_wino_run(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_kern *k);

#endif
