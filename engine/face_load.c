/* face_load.c - face-api's three networks (TF.js weights) built as engine layer arrays.
 *
 * Loading converts every tensor once into the models' parameter block (TF layouts to the engine's,
 * see tfjs.h) and builds the layer arrays: one detector per supported input size (they share the
 * weights; a detector's layer array is about 4 KB), one landmark net, one recognition net. The
 * face-api source each network follows is named in its comment. Running them: face.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_sep.h"
#include "conv_blk.h"
#include "conv_wino.h"
#include "face.h"
#include "face_models.h"
#include "net.h"
#include "tfjs.h"

#define MAX_NET_LAYERS 128

/* ---- building ------------------------------------------------------------------------------- */

struct cached {
    const char *name; /* borrowed from the tfjs table being built from */
    const float *data;
};

struct builder {
    const struct eng_tfjs_weights *w;
    struct eng_err *err;
    float *params; /* bump allocation: converted tensors */
    size_t used, cap;
    struct cached *cache; /* converted tensors by name, so detectors of every size share them */
    int n_cache, cap_cache;
    int part_first; /* the current part's first cache entry: lookups stay within the part */
    struct eng_net *net; /* being built */
    struct eng_shape cur;
};

enum layout { LAYOUT_COPY, LAYOUT_CONV, LAYOUT_DEPTHWISE, LAYOUT_DENSE };

/* The tensor `name` (with `rank` dims `shape`) converted to the engine's layout. */
static const float *param(struct builder *b, const char *name, enum layout layout, int rank,
                          const int *shape)
{
    for (int i = b->part_first; i < b->n_cache; i++)
        if (strcmp(b->cache[i].name, name) == 0)
            return b->cache[i].data;
    const float *src = eng_tfjs_get(b->w, name, rank, shape, b->err);
    if (!src)
        return NULL;
    const struct eng_tfjs_tensor *t = eng_tfjs_find(b->w, name);
    if (t->size > b->cap - b->used || b->n_cache >= b->cap_cache) {
        eng_err_set(b->err, ENG_ERR_INVALID, name, "more weights than the manifests declare");
        return NULL;
    }
    float *dst = b->params + b->used;
    switch (layout) {
    case LAYOUT_COPY: memcpy(dst, src, sizeof(float) * t->size); break;
    case LAYOUT_CONV: eng_tfjs_conv_to_engine(src, shape[0], shape[1], shape[2], shape[3], dst); break;
    case LAYOUT_DEPTHWISE: eng_tfjs_depthwise_to_engine(src, shape[0], shape[1], shape[2], dst); break;
    case LAYOUT_DENSE: eng_tfjs_dense_to_engine(src, shape[0], shape[1], dst); break;
    }
    b->used += t->size;
    b->cache[b->n_cache++] = (struct cached){t->name, dst};
    return dst;
}

static const float *vec(struct builder *b, const char *name, int n)
{
    return param(b, name, LAYOUT_COPY, 1, (int[]){n});
}

static int begin_net(struct builder *b, const char *name, int side)
{
    struct eng_net *net = calloc(1, sizeof *net);
    if (!net || !(net->layers = calloc(MAX_NET_LAYERS, sizeof *net->layers)) ||
        !(net->name = strdup(name))) {
        eng_net_free(net);
        return eng_err_set(b->err, ENG_ERR_NOMEM, name, "out of memory");
    }
    net->input = (struct eng_shape){3, side, side};
    b->net = net;
    b->cur = net->input;
    return 0;
}

static struct eng_layer *next_layer(struct builder *b, enum eng_layer_kind kind)
{
    struct eng_net *net = b->net;
    if (net->n_layers >= MAX_NET_LAYERS) /* the architectures below are fixed and smaller */
        return NULL;
    struct eng_layer *l = &net->layers[net->n_layers];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->index = net->n_layers;
    l->in = b->cur;
    l->out = b->cur;
    return l;
}

/* Runs the layer's setup and appends it; returns its index or -1. */
static int finish_layer(struct builder *b, struct eng_layer *l, int rc, const char *why,
                        const char *tensor)
{
    if (rc)
        return eng_err_set(b->err, ENG_ERR_INVALID, tensor, "%s layer %d (%s): %s", b->net->name,
                           l->index, eng_layer_kind_name(l->kind), why);
    b->cur = l->out;
    b->net->flops += l->flops;
    return b->net->n_layers++;
}

/* A 'same' convolution on a 1x1 input reads nothing but one tap, the rest being padding: it is kept as
 * a 1x1 convolution over that tap's weights (compacted in place). The recognizer's last 3x3 layer (256
 * channels) otherwise streamed all 2.4 MB of its weights for 0.13 MFLOP (docs/PERFORMANCE.md, "Per-layer
 * profile", has the figures). The sums are the same, less eight terms that were products with zero. */
static void keep_live_tap(struct builder *b, struct eng_conv *c, int in)
{
    float *w = b->params + (c->weights - b->params);
    const int k = c->size, tap = (k - 1) / 2 * k + (k - 1) / 2; /* TF 'same' pads (k - 1) / 2 before */
    for (size_t i = 0; i < (size_t)c->filters * in; i++)
        w[i] = w[i * k * k + tap];
    c->size = 1;
    c->same = 0;
}

/* Convolution with HWIO kernel `prefix`/filters (or /depthwise_filter with depthwise) and optional
 * bias `bias_name`. pad < 0 means TF 'same'. */
static int add_conv(struct builder *b, const char *filters, const char *bias_name, int k, int out,
                    int stride, int pad, int depthwise, enum eng_act act)
{
    struct eng_layer *l = next_layer(b, ENG_LAYER_CONV);
    if (!l)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->net->name, "too many layers");
    const int in = b->cur.c;
    struct eng_conv *c = &l->p.conv;
    if (depthwise) {
        c->weights = param(b, filters, LAYOUT_DEPTHWISE, 4, (int[]){k, k, in, 1});
        out = in;
        c->groups = in;
    } else {
        c->weights = param(b, filters, LAYOUT_CONV, 4, (int[]){k, k, in, out});
        c->groups = 1;
    }
    if (!c->weights || (bias_name && !(c->bias = vec(b, bias_name, out))))
        return -1;
    c->filters = out;
    c->size = k;
    c->stride = stride;
    c->same = pad < 0;
    c->pad = pad < 0 ? 0 : pad;
    c->act = act;
    if (!depthwise && c->same && k > 1 && b->cur.h == 1 && b->cur.w == 1)
        keep_live_tap(b, c, in);
    char why[ENG_ERR_MSG_MAX] = "";
    const int rc = eng_conv_setup(l, why, sizeof why);
    if (rc == 0 && eng_conv_wino_prepare(l))
        return eng_err_set(b->err, ENG_ERR_NOMEM, filters, "out of memory for the Winograd weights");
    if (rc == 0 && eng_conv_blk_prepare(l))
        return eng_err_set(b->err, ENG_ERR_NOMEM, filters, "out of memory for the packed weights");
    return finish_layer(b, l, rc, why, filters);
}

/* depthwise 3x3 (stride, padding) then pointwise 1x1 with bias: tf.separableConv2d + bias. */
static int add_separable(struct builder *b, const char *prefix, int out, int stride, int pad,
                         enum eng_act act)
{
    char dw[128], pw[128], bias[128];
    snprintf(dw, sizeof dw, "%s/depthwise_filter", prefix);
    snprintf(pw, sizeof pw, "%s/pointwise_filter", prefix);
    snprintf(bias, sizeof bias, "%s/bias", prefix);
    if (add_conv(b, dw, NULL, 3, 0, stride, pad, 1, ENG_ACT_LINEAR) < 0)
        return -1;
    return add_conv(b, pw, bias, 1, out, 1, 0, 0, act);
}

static int add_maxpool(struct builder *b, int size, int stride, int tf_same)
{
    struct eng_layer *l = next_layer(b, ENG_LAYER_MAXPOOL);
    if (!l)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->net->name, "too many layers");
    l->p.pool.size = size;
    l->p.pool.stride = stride;
    if (tf_same) { /* darknet's maxpool splits its total padding as TF 'same' does (pool.c) */
        int o, before, after;
        eng_tf_same_pad(b->cur.h, size, stride, &o, &before, &after);
        l->p.pool.pad = before + after;
    }
    char why[ENG_ERR_MSG_MAX] = "";
    const int rc = eng_maxpool_setup(l, why, sizeof why);
    return finish_layer(b, l, rc, why, b->net->name);
}

static int add_avgpool(struct builder *b, int size, int stride)
{
    struct eng_layer *l = next_layer(b, ENG_LAYER_AVGPOOL);
    if (!l)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->net->name, "too many layers");
    l->p.pool.size = size;
    l->p.pool.stride = stride;
    char why[ENG_ERR_MSG_MAX] = "";
    const int rc = eng_avgpool_setup(l, why, sizeof why);
    return finish_layer(b, l, rc, why, b->net->name);
}

static int add_sum(struct builder *b, const int *inputs, int n, int zero_extend, enum eng_act act)
{
    struct eng_layer *l = next_layer(b, ENG_LAYER_ADD);
    if (!l)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->net->name, "too many layers");
    l->p.add.n = n;
    memcpy(l->p.add.inputs, inputs, sizeof(int) * (size_t)n);
    l->p.add.zero_extend = zero_extend;
    l->p.add.act = act;
    char why[ENG_ERR_MSG_MAX] = "";
    const int rc = eng_add_setup(l, b->net->layers, why, sizeof why);
    return finish_layer(b, l, rc, why, b->net->name);
}

static int add_dense(struct builder *b, const char *weights, const char *bias_name, int out)
{
    struct eng_layer *l = next_layer(b, ENG_LAYER_DENSE);
    if (!l)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->net->name, "too many layers");
    const int in = (int)eng_shape_size(b->cur);
    struct eng_dense *d = &l->p.dense;
    if (!(d->weights = param(b, weights, LAYOUT_DENSE, 2, (int[]){in, out})) ||
        (bias_name && !(d->bias = vec(b, bias_name, out))))
        return -1;
    d->outputs = out;
    char why[ENG_ERR_MSG_MAX] = "";
    const int rc = eng_dense_setup(l, why, sizeof why);
    return finish_layer(b, l, rc, why, weights);
}

/* Folds the 2x2 stride-2 'same' pool that follows layer i into its output pass where its kernel
 * allows (conv_direct.c, conv_pw.c), so that its full-size output never reaches memory: the face
 * detector's first layer wrote 11 MB at 416 for the pool to read back. The same bits as the pool
 * layer. Returns 1 if folded (the caller then adds no pool). */
static int fold_pool2(struct builder *b, int i)
{
    struct eng_layer *l = &b->net->layers[i];
    if (!eng_conv_direct_pool2_setup(l) && !eng_conv_pointwise_pool2_setup(l))
        return 0;
    b->net->flops += 4.0 * (double)eng_shape_size(l->out);
    b->cur = l->out;
    return 1;
}

/* TinyYolov2Base.runMobilenet with TinyFaceDetector's config: conv0 is a plain 3x3 'valid' conv
 * (isFirstLayerConv2d), filter sizes [3, 16, 32, 64, 128, 256, 512] so conv6 and conv7 are absent,
 * every pooling is 2x2 'same', the last one with stride 1. tinyYolov2/depthwiseSeparableConv.ts pads
 * by 1 before a 'valid' separable conv and applies leaky (0.1) after the bias. */
static int build_detector(struct builder *b, int side)
{
    char name[64];
    snprintf(name, sizeof name, "tiny_face_detector@%d", side);
    int conv0;
    if (begin_net(b, name, side) || (conv0 = add_conv(b, "conv0/filters", "conv0/bias", 3, 16, 1, 0, 0,
                                                       ENG_ACT_LEAKY)) < 0)
        return -1;
    int pooled = fold_pool2(b, conv0);
    static const int filters[] = {32, 64, 128, 256, 512};
    for (int i = 0; i < 5; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "conv%d", i + 1);
        int pw;
        if ((!pooled && add_maxpool(b, 2, 2, 1) < 0) ||
            (pw = add_separable(b, prefix, filters[i], 1, 1, ENG_ACT_LEAKY)) < 0)
            return -1;
        pooled = i < 4 && fold_pool2(b, pw); /* the last pool has stride 1 */
    }
    if (add_maxpool(b, 2, 1, 1) < 0 ||
        add_conv(b, "conv8/filters", "conv8/bias", 1, DET_ANCHORS * DET_BOX, 1, 0, 0,
                 ENG_ACT_LINEAR) < 0)
        return -1;
    return 0;
}

/* faceFeatureExtractor/denseBlock.ts denseBlock4: out1 = relu(conv0(x)) (stride 2), out2..out4 are
 * separable convs (stride 1, 'same', no activation) of relu(out1 + ... + previous), and the block's
 * output is relu(out1 + out2 + out3 + out4). */
static int add_dense_block(struct builder *b, const char *prefix, int channels, int first)
{
    char name[128], filters[160], bias[160];
    int outs[4];
    snprintf(name, sizeof name, "%s/conv0", prefix);
    if (first) {
        snprintf(filters, sizeof filters, "%s/filters", name);
        snprintf(bias, sizeof bias, "%s/bias", name);
        outs[0] = add_conv(b, filters, bias, 3, channels, 2, -1, 0, ENG_ACT_RELU);
    } else {
        outs[0] = add_separable(b, name, channels, 2, -1, ENG_ACT_RELU);
    }
    if (outs[0] < 0)
        return -1;
    for (int i = 1; i < 4; i++) {
        snprintf(name, sizeof name, "%s/conv%d", prefix, i);
        if (i > 1 && add_sum(b, outs, i, 0, ENG_ACT_RELU) < 0)
            return -1;
        if ((outs[i] = add_separable(b, name, channels, 1, -1, ENG_ACT_LINEAR)) < 0)
            return -1;
    }
    return add_sum(b, outs, 4, 0, ENG_ACT_RELU);
}

/* FaceFeatureExtractor.forwardInput + FaceLandmark68Net's classifier: four dense blocks
 * (32, 64, 128, 256 channels; 112 -> 7), avgPool 7x7 (global here), fully connected 256 -> 136. */
static int build_landmarks(struct builder *b)
{
    if (begin_net(b, "face_landmark_68", ENG_FACE_LANDMARK_INPUT))
        return -1;
    static const int channels[] = {32, 64, 128, 256};
    for (int i = 0; i < 4; i++) {
        char prefix[32];
        snprintf(prefix, sizeof prefix, "dense%d", i);
        if (add_dense_block(b, prefix, channels[i], i == 0) < 0)
            return -1;
    }
    if (b->cur.h != 7 || b->cur.w != 7)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->net->name, "feature map is %dx%d, not 7x7",
                           b->cur.w, b->cur.h);
    if (add_avgpool(b, 0, 0) < 0 || add_dense(b, "fc/weights", "fc/bias", 2 * ENG_FACE_LANDMARKS) < 0)
        return -1;
    return 0;
}

/* faceRecognitionNet/convLayer.ts: conv (+bias), scale, optional relu. The scale (x * weights +
 * biases per channel) runs in the convolution's output pass, as its post affine. */
static int add_conv_scale(struct builder *b, const char *prefix, int k, int out, int stride, int pad,
                          enum eng_act act)
{
    char filters[128], bias[128], scale[128], offset[128];
    snprintf(filters, sizeof filters, "%s/conv/filters", prefix);
    snprintf(bias, sizeof bias, "%s/conv/bias", prefix);
    snprintf(scale, sizeof scale, "%s/scale/weights", prefix);
    snprintf(offset, sizeof offset, "%s/scale/biases", prefix);
    const int conv = add_conv(b, filters, bias, k, out, stride, pad, 0, act);
    if (conv < 0)
        return -1;
    struct eng_conv *c = &b->net->layers[conv].p.conv;
    if (!(c->post_scale = vec(b, scale, out)) || !(c->post_bias = vec(b, offset, out)))
        return -1;
    return conv;
}

/* faceRecognitionNet/residualLayer.ts: residual (3x3 'same' twice, + x, relu) and residualDown (the
 * first conv 3x3 stride 2 'valid'; + avgPool(x, 2, 2, 'valid') zero-extended in channels, the conv
 * output zero-extended by a row and a column when it is smaller; relu). */
static int add_route(struct builder *b, int from)
{
    struct eng_layer *l = next_layer(b, ENG_LAYER_ROUTE);
    if (!l)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->net->name, "too many layers");
    l->p.route.n = 1;
    l->p.route.inputs[0] = from;
    l->p.route.groups = 1;
    char why[ENG_ERR_MSG_MAX] = "";
    const int rc = eng_route_setup(l, b->net->layers, why, sizeof why);
    return finish_layer(b, l, rc, why, b->net->name);
}

/* A layer reads the previous layer's output, so a down block pools x first and then takes x again
 * (a one-input route) for its convolutions. */
static int add_residual(struct builder *b, const char *prefix, int out, int down)
{
    const int x = b->net->n_layers - 1;
    int skip = x;
    if (down && ((skip = add_avgpool(b, 2, 2)) < 0 || add_route(b, x) < 0))
        return -1;
    char name[128];
    snprintf(name, sizeof name, "%s/conv1", prefix);
    if (add_conv_scale(b, name, 3, out, down ? 2 : 1, down ? 0 : -1, ENG_ACT_RELU) < 0)
        return -1;
    snprintf(name, sizeof name, "%s/conv2", prefix);
    const int conv = add_conv_scale(b, name, 3, out, 1, -1, ENG_ACT_LINEAR);
    if (conv < 0)
        return -1;
    return add_sum(b, (int[]){skip, conv}, 2, down, ENG_ACT_RELU);
}

/* FaceRecognitionNet.forwardInput. */
static int build_recognition(struct builder *b)
{
    int stem;
    if (begin_net(b, "face_recognition", ENG_FACE_CHIP) ||
        (stem = add_conv_scale(b, "conv32_down", 7, 32, 2, 0, ENG_ACT_RELU)) < 0)
        return -1;
    if (eng_conv_blk_pool3_setup(&b->net->layers[stem])) { /* the pool in the stem's pass (conv_blk.c) */
        b->cur = b->net->layers[stem].out;
        b->net->flops += 9.0 * (double)eng_shape_size(b->cur);
    } else if (add_maxpool(b, 3, 2, 0) < 0)
        return -1;
    static const struct {
        const char *prefix;
        int channels, down;
    } blocks[] = {
        {"conv32_1", 32, 0},   {"conv32_2", 32, 0},     {"conv32_3", 32, 0},  {"conv64_down", 64, 1},
        {"conv64_1", 64, 0},   {"conv64_2", 64, 0},     {"conv64_3", 64, 0},  {"conv128_down", 128, 1},
        {"conv128_1", 128, 0}, {"conv128_2", 128, 0},   {"conv256_down", 256, 1},
        {"conv256_1", 256, 0}, {"conv256_2", 256, 0},   {"conv256_down_out", 256, 1},
    };
    for (size_t i = 0; i < sizeof blocks / sizeof blocks[0]; i++)
        if (add_residual(b, blocks[i].prefix, blocks[i].channels, blocks[i].down) < 0)
            return -1;
    if (add_avgpool(b, 0, 0) < 0 || add_dense(b, "fc", NULL, ENG_FACE_DESCRIPTOR) < 0)
        return -1;
    return 0;
}

/* Every tensor of the manifest must be used: anything left over means a different architecture. */
static int check_all_used(struct builder *b, int first_cached)
{
    for (int i = 0; i < b->w->n; i++) {
        int used = 0;
        for (int k = first_cached; k < b->n_cache && !used; k++)
            used = b->cache[k].name == b->w->tensors[i].name;
        if (!used)
            return eng_err_set(b->err, ENG_ERR_INVALID, b->w->tensors[i].name,
                               "tensor of %s is not part of the network", b->w->path);
    }
    return 0;
}

static char *path_join(const char *dir, const char *file)
{
    const size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s%s%s", dir, *dir && dir[strlen(dir) - 1] != '/' ? "/" : "", file);
    return p;
}

void eng_face_models_free(struct eng_face_models *m)
{
    if (!m)
        return;
    for (int i = 0; m->det && i < m->n_det; i++)
        eng_net_free(m->det[i]);
    free(m->det);
    eng_net_free(m->lm);
    eng_net_free(m->rec);
    free(m->params);
    free(m);
}

enum { PART_DET, PART_LM, PART_REC, N_PARTS };

static const char *const part_files[N_PARTS] = {
    ENG_FACE_DETECTOR_MANIFEST, ENG_FACE_LANDMARK_MANIFEST, ENG_FACE_RECOGNITION_MANIFEST};

/* Gives back the unused end of a finished net's layer array (it was allocated for MAX_NET_LAYERS). */
static void trim_layers(struct eng_net *net)
{
    struct eng_layer *l = realloc(net->layers, sizeof *l * (size_t)net->n_layers);
    if (l) /* on failure the larger block simply stays */
        net->layers = l;
}

/* Builds one part's nets from b->w into m; the net being built is freed on failure. */
static int build_part(struct builder *b, struct eng_face_models *m, int part)
{
    const int first = b->part_first = b->n_cache;
    int rc = 0;
    for (int i = 0; part == PART_DET && i < m->n_det && rc == 0; i++) {
        if ((rc = build_detector(b, 32 * (i + 1))) == 0) {
            eng_conv_sep_fuse(b->net); /* depthwise + 1x1 pairs as one layer (conv_sep.c) */
            trim_layers(b->net);
            m->det[i] = b->net;
        } else
            eng_net_free(b->net);
        b->net = NULL;
    }
    if (part != PART_DET) {
        rc = part == PART_LM ? build_landmarks(b) : build_recognition(b);
        if (rc == 0 && part == PART_LM)
            eng_conv_sep_fuse(b->net); /* depthwise + 1x1 pairs as one layer (conv_sep.c) */
        /* Weights packed for the GEMM in these two nets only: the detectors (one net per input size)
         * share one copy of their weights, which packing would repeat per size. */
        if (rc == 0)
            rc = eng_net_pack_weights(b->net, b->err);
        if (rc) {
            eng_net_free(b->net);
        } else {
            trim_layers(b->net);
            *(part == PART_LM ? &m->lm : &m->rec) = b->net;
        }
        b->net = NULL;
    }
    return rc ? rc : check_all_used(b, first);
}

int eng_face_models_load(const char *dir, const struct eng_face_load_opts *opts,
                         struct eng_face_models **out, struct eng_err *err)
{
    const int max = opts && opts->max_input_size ? opts->max_input_size : ENG_FACE_INPUT_MAX_DEFAULT;
    if (max < 32 || max > ENG_FACE_INPUT_LIMIT || max % 32)
        return eng_err_set(err, ENG_ERR_INVALID, dir,
                           "max_input_size %d: expected a multiple of 32 in 32..%d", max,
                           ENG_FACE_INPUT_LIMIT);
    struct eng_tfjs_weights *w[N_PARTS] = {NULL};
    struct builder b = {.err = err};
    struct eng_face_models *m = calloc(1, sizeof *m);
    int rc = -1;
    if (!m || !(m->det = calloc((size_t)(max / 32), sizeof *m->det))) {
        eng_err_set(err, ENG_ERR_NOMEM, dir, "out of memory");
        goto done;
    }
    m->max_input = max;
    m->n_det = max / 32;
    /* All manifests first: the parameter block is sized once, from what they declare. */
    for (int i = 0; i < N_PARTS; i++) {
        char *path = path_join(dir, part_files[i]);
        if (!path) {
            eng_err_set(err, ENG_ERR_NOMEM, dir, "out of memory");
            goto done;
        }
        const int lrc = eng_tfjs_load(path, &w[i], err);
        free(path);
        if (lrc)
            goto done;
        b.cap += w[i]->total;
        b.cap_cache += w[i]->n;
    }
    b.params = malloc(sizeof(float) * (b.cap ? b.cap : 1));
    b.cache = calloc((size_t)b.cap_cache, sizeof *b.cache);
    if (!b.params || !b.cache) {
        eng_err_set(err, ENG_ERR_NOMEM, dir, "out of memory for %zu weights", b.cap);
        goto done;
    }
    for (int i = 0; i < N_PARTS; i++) {
        b.w = w[i];
        if (build_part(&b, m, i))
            goto done;
    }
    m->params = b.params;
    m->n_params = b.used;
    b.params = NULL;
    *out = m;
    m = NULL;
    rc = 0;
done:
    for (int i = 0; i < N_PARTS; i++)
        eng_tfjs_free(w[i]);
    free(b.cache);
    free(b.params);
    eng_face_models_free(m);
    return rc;
}

int eng_face_models_max_input(const struct eng_face_models *m)
{
    return m->max_input;
}

double eng_face_models_flops(const struct eng_face_models *m, int input_size, double *landmark_flops,
                             double *descriptor_flops)
{
    if (landmark_flops)
        *landmark_flops = m->lm->flops;
    if (descriptor_flops)
        *descriptor_flops = m->rec->flops;
    if (input_size < 32 || input_size > m->max_input || input_size % 32)
        return 0.0;
    return m->det[input_size / 32 - 1]->flops;
}

