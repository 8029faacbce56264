/* conv_sep.h - depthwise 3x3 layers fused with the 1x1 layer after them (conv_sep.c).
 * Owns nothing: it rewires the forward functions of a net's layers in place. */
#ifndef ENG_CONV_SEP_H
#define ENG_CONV_SEP_H

#include <stddef.h>

#include "layer.h"
#include "net.h"

/* For every depthwise 3x3 layer (stride 1) followed by a 1x1 layer that alone reads its output:
 * the depthwise layer loses its forward function and the 1x1 layer computes both (forward and
 * work_floats change); where a 2x2 stride-2 max-pool layer alone reads the 1x1 layer's output, the
 * 1x1 layer loses its forward as well and the pool layer computes the three (and takes the 1x1
 * layer's flops). Then every add layer right after a fused pair whose linear 1x1 output is its last
 * input (face-api's dense blocks) is computed in that 1x1 layer's store where the rule in conv_sep.c
 * (fuse_adds) allows: the add layer keeps its buffer with a forward that does nothing (eng_add.by_prev).
 * Call once the net is built, before eng_net_pack_weights and before any context is made for it.
 * Returns the number of pairs fused. */
int eng_conv_sep_fuse(struct eng_net *net);

/* Scratch floats per thread of the fused layer `l` (the 1x1 layer of a fused pair, or the pool). */
size_t eng_conv_sep_work_floats(const struct eng_layer *l);

#endif
