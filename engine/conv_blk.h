/* conv_blk.h - 3x3 (stride 1 or 2) and 7x7 stride-2 convolutions with vectors along output channels
 * (conv_blk.c).
 *
 * The weights are packed once, when the loader has them, into c->blk (owned by the layer, freed by
 * eng_net_free); whether a layer takes this path is a fixed rule on its shape and the kernel set
 * (eng_conv_blk_ok), never a timing. Only the face loader (face_load.c) asks for it: the darknet
 * models' 3x3 layers were not measured through it. */
#ifndef ENG_CONV_BLK_H
#define ENG_CONV_BLK_H

#include "kern.h"
#include "layer.h"

/* Whether the kernel takes l's shape at all (tests), and whether the rule picks it with the engine's set. */
int eng_conv_blk_shape_ok(const struct eng_layer *l);
int eng_conv_blk_ok(const struct eng_layer *l);

/* Called by the loaders once l's weights are final: if the rule picks this path, packs the weights into
 * c->blk (allocated the first time) and sets l's forward and work_floats. 0, or -1 if out of memory. */
int eng_conv_blk_prepare(struct eng_layer *l);

/* The same without the rule, for any layer eng_conv_blk_shape_ok takes (tests, benchmarks). */
int eng_conv_blk_use(struct eng_layer *l);

/* The packed weights' size and layout ([filters / 16][c][3][3][16]), and the forward pass's scratch. */
size_t eng_conv_blk_packed_floats(const struct eng_layer *l);
void eng_conv_blk_pack(const struct eng_layer *l, float *dst);
size_t eng_conv_blk_work_floats(const struct eng_layer *l);

void eng_conv_blk_forward(const struct eng_layer *l, const struct eng_fwd *f);

/* The forward pass with kernel set k instead of the engine's (tests run every set). */
void eng_conv_blk_run(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_kern *k);

/* For a layer this path runs with no padding (the recognizer's stem): folds a following 'valid' 3x3
 * stride-2 max pool into it (out becomes the pooled grid; forward, work_floats and flops change) and
 * returns 1; else changes nothing and returns 0. The bits of the conv layer then that pool. */
int eng_conv_blk_pool3_setup(struct eng_layer *l);
void eng_conv_blk_pool3_forward(const struct eng_layer *l, const struct eng_fwd *f);
void eng_conv_blk_pool3_run(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_kern *k);

#endif
