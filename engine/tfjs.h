/* tfjs.h - TensorFlow.js weights: a `*-weights_manifest.json` and the `.bin` shards it lists.
 *
 * The manifest is a JSON array of groups {"paths": [shard, ...], "weights": [{name, shape, dtype,
 * quantization?}, ...]}. A group's shards, concatenated, hold its tensors back to back in manifest
 * order. Values are decoded to float32 when loaded:
 *   dtype float32 without quantization: little-endian IEEE floats;
 *   quantization {dtype: uint8 | uint16, scale, min}: value = q * scale + min (TF.js's formula,
 *     computed in double and rounded once);
 *   quantization {dtype: float16}: IEEE half floats.
 * Nothing is trusted: shard paths must stay inside the manifest's folder, every shape and size is
 * checked, and the shards' total size must equal what the tensors need, exactly. Every error names
 * its place: the tensor (where = tensor name, the manifest in the message) or the manifest file
 * (where = "file:line" for malformed JSON).
 *
 * A loaded eng_tfjs_weights is immutable; lookups are thread-safe. Tensors keep TF's layout
 * (row-major over `shape`, NHWC-style); the eng_tfjs_*_to_* functions convert to the engine's. */
#ifndef ENG_TFJS_H
#define ENG_TFJS_H

#include <stddef.h>

#include "eng_err.h"

#define ENG_TFJS_MAX_RANK 8
#define ENG_TFJS_MAX_BYTES ((size_t)1 << 30) /* all shards of one manifest together */

struct eng_tfjs_tensor {
    char *name;
    int rank;
    int shape[ENG_TFJS_MAX_RANK];
    size_t size;       /* elements: the product of shape (1 for a scalar) */
    const float *data; /* decoded values, TF layout; points into the table's one block */
};

struct eng_tfjs_weights {
    char *path; /* the manifest, as given to eng_tfjs_load */
    int n;
    struct eng_tfjs_tensor *tensors; /* n, in manifest order */
    float *data;                     /* one block holding every tensor's values */
    size_t total;                    /* floats in data */
};

/* Loads a manifest and its shards into a new table (*out; caller frees with eng_tfjs_free).
 * Returns 0, or -1 with err (the table is not created). */
int eng_tfjs_load(const char *manifest_path, struct eng_tfjs_weights **out, struct eng_err *err);

/* Frees the table and its tensors; NULL is a no-op. */
void eng_tfjs_free(struct eng_tfjs_weights *w);

/* The tensor called name, or NULL. Borrowed: valid until eng_tfjs_free(w). */
const struct eng_tfjs_tensor *eng_tfjs_find(const struct eng_tfjs_weights *w, const char *name);

/* The values of tensor `name`, which must exist and have exactly the given shape (rank dims);
 * otherwise NULL with err (where = name). Borrowed: valid until eng_tfjs_free(w). */
const float *eng_tfjs_get(const struct eng_tfjs_weights *w, const char *name, int rank,
                          const int *shape, struct eng_err *err);

/* Layout conversions (dst must not overlap src):
 * conv kernel [kh][kw][in][out] (HWIO)          -> the engine's [out][in][kh][kw];
 * depthwise kernel [kh][kw][c][1] (HWC1)        -> grouped conv weights [c][1][kh][kw] (groups = c);
 * dense matrix [in][out] (x * W, as tf.matMul)  -> [out][in] (W' * x, as eng_dense). */
void eng_tfjs_conv_to_engine(const float *src, int kh, int kw, int in, int out, float *dst);
void eng_tfjs_depthwise_to_engine(const float *src, int kh, int kw, int c, float *dst);
void eng_tfjs_dense_to_engine(const float *src, int in, int out, float *dst);

/* IEEE 754 half to float (exact). */
float eng_tfjs_half_to_float(unsigned short h);

#endif
