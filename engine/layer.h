/* layer.h - one network layer: a small struct with a forward function.
 *
 * A network is an array of these (see net.h). Layers are built once by a loader (darknet.c), are
 * immutable afterwards and shared by every worker; all mutable memory (activations, scratch) lives in
 * the worker's eng_ctx, so a forward pass allocates nothing and several threads may run one model. */
#ifndef ENG_LAYER_H
#define ENG_LAYER_H

#include <stddef.h>

/* Activation functions with darknet's definitions (leaky slope 0.1, mish with softplus threshold 20). */
enum eng_act {
    ENG_ACT_LINEAR = 0,
    ENG_ACT_LEAKY,
    ENG_ACT_RELU,
    ENG_ACT_LOGISTIC,
    ENG_ACT_TANH,
    ENG_ACT_MISH,
    ENG_ACT_SWISH,
};

enum eng_layer_kind {
    ENG_LAYER_CONV = 0,
    ENG_LAYER_MAXPOOL,
    ENG_LAYER_AVGPOOL,
    ENG_LAYER_UPSAMPLE,
    ENG_LAYER_ROUTE,
    ENG_LAYER_SHORTCUT,
    ENG_LAYER_DROPOUT,
    ENG_LAYER_YOLO,
    ENG_LAYER_REGION,
    ENG_LAYER_DENSE, /* not darknet sections: built by other loaders (face.c) */
    ENG_LAYER_ADD,
};

/* Channels, height, width of one image (batch size is 1; tensors are CHW float32, NCHW with N=1). */
struct eng_shape {
    int c, h, w;
};

static inline size_t eng_shape_size(struct eng_shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

struct eng_conv {
    int filters, size, stride, pad, groups;
    int same; /* TensorFlow 'same' padding instead of `pad` (which must be 0): out = ceil(n / stride),
               * total padding max((out - 1) * stride + size - n, 0), the odd pixel bottom/right */
    int pad_top, pad_left, pad_bottom, pad_right; /* filled by setup from pad or same */
    enum eng_act act;
    int batch_normalize;  /* the weights file carries BN parameters for it (folded when loaded) */
    const float *weights; /* [filters][c/groups][size][size], batch norm already folded in; NULL in a
                           * Winograd layer loaded by eng_darknet_load (only c->wino is kept) */
    const float *bias;    /* [filters], or NULL for none */
    /* A per-channel affine after the bias and before act, or NULL: act((conv + bias) * post_scale +
     * post_bias). The face recognizer's "scale" layers (conv, bias, scale, relu) run here, in the
     * output pass, instead of as a layer of their own. Not for depthwise layers. */
    const float *post_scale, *post_bias;
    float *wino; /* owned (freed with the net): the Winograd-transformed weights, or NULL (conv_wino.h) */
    int wino_m;  /* their output tile side, 2 or 4 */
    int wino_packed; /* each U_xi in the GEMM's packed layout (eng_gemm_pack_a), else in place (conv_wino.h) */
    /* The weights packed for the GEMM's register tiles (kern.h, eng_gemm_pack_a; per group), or NULL:
     * set at load by eng_net_pack_weights, owned by the net. */
    const float *packed;
    /* A depthwise layer fused with the 1x1 expansion before it (conv_expdw.c): that layer (whose
     * output is then never written), or NULL. */
    const struct eng_layer *expand;
    float *blk; /* owned (freed with the net): the weights packed for conv_blk.c, or NULL (conv_blk.h) */
};

/* maxpool: darknet's `padding` is the total, split as pad/2 before (so pad = TensorFlow's total 'same'
 * padding gives TF's 'same' pooling). avgpool: size 0 is darknet's global average; size > 0 is a
 * window of size x size moved by stride over the input without padding (TF 'valid'). */
struct eng_pool {
    int size, stride, pad;
};

/* Fully connected: the input, flattened in CHW order, times a matrix, plus bias, then act.
 * Output shape outputs x 1 x 1. */
struct eng_dense {
    int outputs;
    enum eng_act act;
    const float *weights; /* [outputs][inputs] */
    const float *bias;    /* [outputs], or NULL for none */
};

#define ENG_ADD_MAX_INPUTS 8

/* Elementwise sum of earlier layers' outputs, then act. With zero_extend the shapes may differ: the
 * output takes the largest channels, height and width, and each input is added at the origin as if
 * padded with zeros after its last channel, row and column (TF's concat-with-zeros in ResNet blocks
 * that change shape); without it every input must have the same shape. */
struct eng_add {
    int n;
    int inputs[ENG_ADD_MAX_INPUTS]; /* absolute layer indices, all earlier than this layer */
    struct eng_shape shapes[ENG_ADD_MAX_INPUTS]; /* each input's shape (filled by setup) */
    int zero_extend;
    enum eng_act act;
    /* Set by eng_conv_sep_fuse: the fused 1x1 layer just before computes this sum in its store (this
     * layer's forward does nothing), adding the running sum of the earlier inputs, read from layer
     * sum_from's buffer (inputs[0]'s value for n = 2, else the raw sum the layer inputs[n - 2] stored
     * there); with keep_sum, it stores its own raw sum (no act) in its own buffer for a later add. */
    int by_prev, sum_from, keep_sum;
};

struct eng_upsample {
    int stride;
    float scale;
};

#define ENG_ROUTE_MAX_INPUTS 8

struct eng_route {
    int n;
    int inputs[ENG_ROUTE_MAX_INPUTS];   /* absolute layer indices, all earlier than this layer */
    int channels[ENG_ROUTE_MAX_INPUTS]; /* each input's channel count (filled by setup) */
    int groups, group_id;             /* take channel slice group_id of `groups` from each input */
};

struct eng_shortcut {
    int from; /* absolute layer index */
    enum eng_act act;
    /* The 1x1 projection fused into this layer (conv_resadd.c), whose output is then never written, or
     * NULL. */
    const struct eng_layer *project;
};

/* [yolo] (YOLOv3/v4) and [region] (YOLOv2) heads. Output layout is darknet's:
 * [anchor][x, y, w, h, objectness, class...][grid_h][grid_w], with the activations applied. */
struct eng_head {
    int classes;
    int anchors_n;         /* anchors used by this head (the mask's length for [yolo]) */
    const float *anchors;  /* anchors_n (w, h) pairs: pixels for [yolo], grid units for [region] */
    float scale_x_y;       /* [yolo] only; 1 = plain logistic */
};

struct eng_layer;
struct eng_team;

/* What a layer's forward function sees. `in` is the previous layer's output (or the network input),
 * `outs` every earlier layer's output (for route and shortcut). */
struct eng_fwd {
    const float *in;
    float *out;
    float *work;            /* scratch, at least layer->work_floats floats per slot of the team */
    float *const *outs;
    struct eng_team *team;  /* splits the layer's outer loops across threads (NULL: run alone) */
    size_t work_stride;     /* slot s of eng_team_for uses work + s * work_stride (unused for slot 0) */
};

typedef void (*eng_forward_fn)(const struct eng_layer *l, const struct eng_fwd *f);

struct eng_layer {
    enum eng_layer_kind kind;
    int index;
    struct eng_shape in, out;
    eng_forward_fn forward; /* NULL for layers whose output aliases their input (dropout) */
    size_t work_floats;     /* scratch this layer needs */
    double flops;           /* multiply-adds x 2, for benchmarks and profiles */
    union {
        struct eng_conv conv;
        struct eng_pool pool;
        struct eng_upsample upsample;
        struct eng_route route;
        struct eng_shortcut shortcut;
        struct eng_head head;
        struct eng_dense dense;
        struct eng_add add;
    } p;
};

/* Runs fn(l, f, lo, hi) over ranges [lo, hi) that together cover 0..n (channels, anchors, ...), split
 * across f->team: about two ranges per thread, so an uneven range does not hold the layer up; one
 * call fn(l, f, 0, n) without a team. The ranges must be independent (net.c). */
typedef void (*eng_range_fn)(const struct eng_layer *l, const struct eng_fwd *f, int lo, int hi);
void eng_fwd_split(const struct eng_layer *l, const struct eng_fwd *f, int n, eng_range_fn fn);

/* Layer constructors: validate parameters against the input shape, fill out shape, forward, work size
 * and flops. Return 0, or -1 with a message in `why` (the loader adds file:line). */
int eng_conv_setup(struct eng_layer *l, char *why, size_t why_size);
int eng_maxpool_setup(struct eng_layer *l, char *why, size_t why_size);
int eng_avgpool_setup(struct eng_layer *l, char *why, size_t why_size);
/* One output row of a 2x2 stride-2 TF 'same' max-pool (pool.c's bits): out[0 .. ceil(w / 2)) from
 * input rows r0 and r1 (NULL: r0 is the last row, the one below it padding), each w wide. For layers
 * that pool in their output pass (conv_direct.c, conv_pw.c). */
void eng_maxpool2_rows(const float *r0, const float *r1, int w, float *out);
int eng_upsample_setup(struct eng_layer *l, char *why, size_t why_size);
int eng_route_setup(struct eng_layer *l, const struct eng_layer *layers, char *why, size_t why_size);
int eng_shortcut_setup(struct eng_layer *l, const struct eng_layer *layers, char *why, size_t why_size);
int eng_dropout_setup(struct eng_layer *l, char *why, size_t why_size);
int eng_yolo_setup(struct eng_layer *l, char *why, size_t why_size);
int eng_region_setup(struct eng_layer *l, char *why, size_t why_size);
int eng_dense_setup(struct eng_layer *l, char *why, size_t why_size);
int eng_add_setup(struct eng_layer *l, const struct eng_layer *layers, char *why, size_t why_size);

/* TensorFlow 'same' padding along one axis: output size and the padding before and after. */
void eng_tf_same_pad(int n, int size, int stride, int *out, int *before, int *after);

/* Depthwise convolution computed directly (conv_dw.c); used by conv for groups == channels. */
void eng_conv_depthwise_forward(const struct eng_layer *l, const struct eng_fwd *f);
/* For depthwise layers of size 3 or 5 at stride 1, or at stride 2 with outputs up to 32 wide: sets
 * forward and work_floats to the padded-plane kernel (conv_dw_plane.c); leaves other layers as they
 * are. */
void eng_conv_depthwise_plane_setup(struct eng_layer *l);

/* Fuses each 1x1 expansion with the depthwise layer after it where the rule of conv_expdw.c holds:
 * the expansion loses its forward (its output aliases its input) and the depthwise layer computes
 * both. Call once the layers are set up, before contexts are made. */
struct eng_net;
void eng_conv_expdw_fuse(struct eng_net *net);
/* Fuses each 1x1 projection into the [shortcut] that adds a residual to it (through dropouts) where
 * the rule of conv_resadd.c holds: the projection loses its forward, the shortcut computes both. */
void eng_conv_resadd_fuse(struct eng_net *net);
/* Whether a layer other than `reader` reads layer i's output: as its input (the layer after it, if that
 * has a forward), a route's, shortcut's or add's operand, a head's input, or the net's caller (the last
 * layer). For the fusions above (conv_resadd.c). */
int eng_net_read_by_other(const struct eng_net *net, int i, int reader);

/* Pointwise convolution computed directly (conv_pw.c): whether conv should use it for layer l (a 1x1,
 * stride-1, unpadded, non-depthwise convolution), and its forward function. */
int eng_conv_pointwise_direct(const struct eng_layer *l);
/* GEMM depth (input channels x kernel area) up to which the pointwise kernel (kern.h) beats sgemm,
 * measured on Yolo-Fastest-XL's 1x1 shapes (docs/PERFORMANCE.md, Kernels): the kernel wins clearly at
 * K = 8..32, evenly at 48, still at 64 with 16 outputs; from K = 96 sgemm is slightly faster. */
#define ENG_CONV_DIRECT_MAX_K 64
/* Outputs per group up to which the pointwise kernel takes a 1x1 layer at any K: Yolo-Fastest-XL's
 * projections (32 or 48 outputs from 192 or 272 channels) ran the packed GEMM at about half its speed
 * on the expansions, its per-call packing of B amortised over few rows; the pointwise kernel reads the
 * input in place and ran them about 1.3x faster (docs/PERFORMANCE.md, "Yolo-Fastest-XL's 1x1 layers"). */
#define ENG_CONV_PW_MAX_M 48

/* Stride-1 and stride-2 convolutions of one group computed from a padded copy of the input without
 * im2col (conv_direct.c): rows at least 32 wide with k = channels x size x size up to 160, or narrower
 * planes (8..31 wide) with small enough weights at any k. Whether conv uses it for layer l, the
 * scratch it needs (0 when it reads the input itself), and its forward function. */
int eng_conv_direct_ok(const struct eng_layer *l);
size_t eng_conv_direct_work_floats(const struct eng_layer *l);
void eng_conv_direct_forward(const struct eng_layer *l, const struct eng_fwd *f);
void eng_conv_pointwise_forward(const struct eng_layer *l, const struct eng_fwd *f);
/* For a layer that eng_conv_direct_forward computes from its input itself (stride 1, unpadded, row
 * mode): folds a following 2x2 stride-2 TF 'same' max-pool into it (out becomes the pooled grid,
 * ceil(n / 2) each way; forward, work_floats and flops change) and returns 1; else changes nothing
 * and returns 0. The results are the bits of the conv layer followed by that maxpool layer. */
int eng_conv_direct_pool2_setup(struct eng_layer *l);
/* The same for a layer eng_conv_pointwise_forward computes (one group, rows at least
 * ENG_KERN_MAX_VL wide, so that no row falls to the kernel's scalar tail). */
int eng_conv_pointwise_pool2_setup(struct eng_layer *l);

/* Convolutions of one group with at most 4 output pixels (1 in the plain set; the face recognizer's 1x1
 * outputs) as dot products along k (conv_dot.c): whether conv uses it for layer l, its scratch and forward. */
int eng_conv_dot_ok(const struct eng_layer *l);
size_t eng_conv_dot_work_floats(const struct eng_layer *l);
void eng_conv_dot_forward(const struct eng_layer *l, const struct eng_fwd *f);

/* The weights packed once at load for the packed GEMM (conv.c): floats layer l needs for them (0 when
 * its forward does not run that GEMM in this process's kernel set), and the packing into dst (that
 * many floats, owned by the caller), which sets l->p.conv.packed. Call after the weights are final. */
size_t eng_conv_packed_floats(const struct eng_layer *l);
void eng_conv_pack(struct eng_layer *l, float *dst);

/* Activations (activation.c). */
void eng_activate(float *x, size_t n, enum eng_act act);
/* Parses darknet's activation names; returns -1 for an unknown name. */
int eng_act_parse(const char *name, enum eng_act *act);
const char *eng_act_name(enum eng_act act);

const char *eng_layer_kind_name(enum eng_layer_kind kind);

#endif
