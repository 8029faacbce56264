/* darknet.c - darknet .cfg parser (the .weights reader and file loading: darknet_weights.c).
 *
 * Parsing happens in two steps: the text becomes a list of sections with key=value pairs (each with
 * its line: darknet_cfg.c), then each section becomes one eng_layer through the layer's setup
 * function. Nothing here trusts the file: every number is range-checked, every index must point
 * backwards, and the total size of weights and activations is bounded before anything large is
 * allocated. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conv_wino.h"
#include "darknet.h"
#include "darknet_cfg.h"
#include "detect.h"

#define MAX_LAYERS 2048
#define MAX_DIM 8192
#define MAX_EXTENT (1 << 20)           /* any dimension of a layer's output */
#define MAX_ACTIVATIONS (1024u << 20) /* floats per context */
#define MAX_LIST 64

struct builder {
    struct eng_cfg *cfg;
    const struct eng_darknet_opts *opts;
    struct eng_err *err;
    struct eng_net *net;
    size_t *param_off; /* per layer: offset of its weights in net->params */
    float *anchors;    /* every head's anchors, one block; owned by net->params afterwards */
    int unprepared;    /* leave eng_darknet_conv_prepare to the caller (weights to come) */
};

/* ---- sections to layers --------------------------------------------------------------------- */

static int parse_net(struct builder *b, const struct eng_cfg_section *s)
{
    struct eng_shape *in = &b->net->input;
    if (strcmp(s->name, "net") && strcmp(s->name, "network"))
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                "the first section must be [net], not [%s]", s->name);
    if (eng_cfg_int(b->cfg, s, "width", 416, 1, MAX_DIM, &in->w) ||
        eng_cfg_int(b->cfg, s, "height", 416, 1, MAX_DIM, &in->h) ||
        eng_cfg_int(b->cfg, s, "channels", 3, 3, 3, &in->c))
        return -1;
    if (b->opts && b->opts->width > 0)
        in->w = b->opts->width;
    if (b->opts && b->opts->height > 0)
        in->h = b->opts->height;
    return 0;
}

static int parse_conv(struct builder *b, const struct eng_cfg_section *s, struct eng_layer *l)
{
    struct eng_conv *c = &l->p.conv;
    int pad_flag, padding;
    if (eng_cfg_int(b->cfg, s, "filters", 1, 1, 65536, &c->filters) ||
        eng_cfg_int(b->cfg, s, "size", 1, 1, 31, &c->size) ||
        eng_cfg_int(b->cfg, s, "stride", 1, 1, 64, &c->stride) ||
        eng_cfg_int(b->cfg, s, "pad", 0, 0, 1, &pad_flag) ||
        eng_cfg_int(b->cfg, s, "padding", 0, 0, 64, &padding) ||
        eng_cfg_int(b->cfg, s, "groups", 1, 1, 65536, &c->groups) ||
        eng_cfg_int(b->cfg, s, "batch_normalize", 0, 0, 1, &c->batch_normalize) ||
        eng_cfg_act(b->cfg, s, "activation", &c->act) || eng_cfg_require_default(b->cfg, s, "dilation", 1) ||
        eng_cfg_require_default(b->cfg, s, "binary", 0) || eng_cfg_require_default(b->cfg, s, "xnor", 0) ||
        eng_cfg_require_default(b->cfg, s, "antialiasing", 0) ||
        eng_cfg_require_default(b->cfg, s, "deform", 0) ||
        eng_cfg_require_default(b->cfg, s, "share_index", -1000000))
        return -1;
    int sx, sy;
    if (eng_cfg_int(b->cfg, s, "stride_x", c->stride, 1, 64, &sx) ||
        eng_cfg_int(b->cfg, s, "stride_y", c->stride, 1, 64, &sy))
        return -1;
    if (sx != c->stride || sy != c->stride)
        return eng_err_set_line(b->err, ENG_ERR_UNSUPPORTED, b->cfg->name, s->line,
                                "stride_x/stride_y different from stride are not supported");
    /* darknet: pad=1 means "same" padding size/2 and overrides padding=. */
    c->pad = pad_flag ? c->size / 2 : padding;
    return eng_conv_setup(l, b->err->msg, sizeof b->err->msg);
}

static int parse_maxpool(struct builder *b, const struct eng_cfg_section *s, struct eng_layer *l)
{
    struct eng_pool *p = &l->p.pool;
    if (eng_cfg_int(b->cfg, s, "stride", 1, 1, 64, &p->stride) ||
        eng_cfg_int(b->cfg, s, "size", p->stride, 1, 64, &p->size) ||
        eng_cfg_int(b->cfg, s, "padding", p->size - 1, 0, 128, &p->pad) ||
        eng_cfg_require_default(b->cfg, s, "maxpool_depth", 0) ||
        eng_cfg_require_default(b->cfg, s, "antialiasing", 0))
        return -1;
    int sx, sy;
    if (eng_cfg_int(b->cfg, s, "stride_x", p->stride, 1, 64, &sx) ||
        eng_cfg_int(b->cfg, s, "stride_y", p->stride, 1, 64, &sy))
        return -1;
    if (sx != p->stride || sy != p->stride)
        return eng_err_set_line(b->err, ENG_ERR_UNSUPPORTED, b->cfg->name, s->line,
                                "stride_x/stride_y different from stride are not supported");
    return eng_maxpool_setup(l, b->err->msg, sizeof b->err->msg);
}

/* darknet indexes layers from 0 after [net]; negative values count back from the current layer. */
static int resolve_index(int v, int current)
{
    return v < 0 ? current + v : v;
}

static int parse_route(struct builder *b, const struct eng_cfg_section *s, struct eng_layer *l)
{
    struct eng_route *r = &l->p.route;
    int idx[MAX_LIST];
    if (eng_cfg_list(b->cfg, s, "layers", 0, idx, ENG_ROUTE_MAX_INPUTS, &r->n) ||
        eng_cfg_int(b->cfg, s, "groups", 1, 1, 1024, &r->groups) ||
        eng_cfg_int(b->cfg, s, "group_id", 0, 0, 1023, &r->group_id))
        return -1;
    if (r->n == 0)
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                "[route] needs layers=");
    for (int i = 0; i < r->n; i++)
        r->inputs[i] = resolve_index(idx[i], l->index);
    return eng_route_setup(l, b->net->layers, b->err->msg, sizeof b->err->msg);
}

static int parse_shortcut(struct builder *b, const struct eng_cfg_section *s, struct eng_layer *l)
{
    int from[MAX_LIST], n;
    if (eng_cfg_list(b->cfg, s, "from", 0, from, 1, &n) ||
        eng_cfg_act(b->cfg, s, "activation", &l->p.shortcut.act))
        return -1;
    const struct eng_cfg_kv *wt = eng_cfg_find(b->cfg, s, "weights_type");
    if (wt && strcmp(wt->value, "none"))
        return eng_cfg_bad_value(b->cfg, wt, "weighted shortcuts are not supported");
    if (n != 1)
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                "[shortcut] needs exactly one from=");
    l->p.shortcut.from = resolve_index(from[0], l->index);
    return eng_shortcut_setup(l, b->net->layers, b->err->msg, sizeof b->err->msg);
}

static int parse_upsample(struct builder *b, const struct eng_cfg_section *s, struct eng_layer *l)
{
    if (eng_cfg_int(b->cfg, s, "stride", 2, -64, 64, &l->p.upsample.stride) ||
        eng_cfg_float(b->cfg, s, "scale", 1.0f, -1e6f, 1e6f, &l->p.upsample.scale))
        return -1;
    return eng_upsample_setup(l, b->err->msg, sizeof b->err->msg);
}

/* Anchors are copied into one growing block; pointers are fixed up once params are allocated. */
static int add_anchors(struct builder *b, const float *src, int pairs, size_t *off)
{
    size_t have = 0;
    for (int i = 0; i < b->net->n_heads; i++)
        have += 2 * (size_t)b->net->layers[b->net->heads[i]].p.head.anchors_n;
    float *p = realloc(b->anchors, sizeof(float) * (have + 2 * (size_t)pairs));
    if (!p)
        return eng_err_set(b->err, ENG_ERR_NOMEM, b->cfg->name, "out of memory");
    b->anchors = p;
    memcpy(p + have, src, sizeof(float) * 2 * pairs);
    *off = have;
    return 0;
}

static int parse_anchors(struct builder *b, const struct eng_cfg_section *s, float *anchors, int *num)
{
    int n_vals, num_decl;
    if (eng_cfg_list(b->cfg, s, "anchors", 1, anchors, MAX_LIST, &n_vals))
        return -1;
    if (eng_cfg_int(b->cfg, s, "num", n_vals / 2, 1, MAX_LIST / 2, &num_decl))
        return -1;
    if (n_vals == 0 || n_vals % 2 || n_vals / 2 < num_decl)
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                "anchors= must hold num=%d (w,h) pairs, found %d values", num_decl,
                                n_vals);
    for (int i = 0; i < n_vals; i++)
        if (!(anchors[i] > 0.0f))
            return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                    "anchors must be positive");
    *num = num_decl;
    return 0;
}

static int parse_yolo(struct builder *b, const struct eng_cfg_section *s, struct eng_layer *l, size_t *aoff)
{
    struct eng_head *h = &l->p.head;
    float anchors[MAX_LIST], picked[MAX_LIST];
    int mask[MAX_LIST], num, n_mask;
    if (eng_cfg_int(b->cfg, s, "classes", 20, 1, 100000, &h->classes) || parse_anchors(b, s, anchors, &num) ||
        eng_cfg_list(b->cfg, s, "mask", 0, mask, MAX_LIST / 2, &n_mask) ||
        eng_cfg_float(b->cfg, s, "scale_x_y", 1.0f, 0.5f, 4.0f, &h->scale_x_y) ||
        eng_cfg_require_default(b->cfg, s, "new_coords", 0))
        return -1;
    if (n_mask == 0) {
        for (n_mask = 0; n_mask < num; n_mask++)
            mask[n_mask] = n_mask;
    }
    for (int i = 0; i < n_mask; i++) {
        if (mask[i] < 0 || mask[i] >= num)
            return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                    "mask index %d is not among the %d anchors", mask[i], num);
        picked[2 * i] = anchors[2 * mask[i]];
        picked[2 * i + 1] = anchors[2 * mask[i] + 1];
    }
    h->anchors_n = n_mask;
    if (add_anchors(b, picked, n_mask, aoff))
        return -1;
    return eng_yolo_setup(l, b->err->msg, sizeof b->err->msg);
}

static int parse_region(struct builder *b, const struct eng_cfg_section *s, struct eng_layer *l, size_t *aoff)
{
    struct eng_head *h = &l->p.head;
    float anchors[MAX_LIST];
    int num;
    h->scale_x_y = 1.0f;
    if (eng_cfg_int(b->cfg, s, "classes", 20, 1, 100000, &h->classes) || parse_anchors(b, s, anchors, &num) ||
        eng_cfg_require_default(b->cfg, s, "coords", 4) || eng_cfg_require_default(b->cfg, s, "softmax", 1) ||
        eng_cfg_require_default(b->cfg, s, "background", 0))
        return -1;
    h->anchors_n = num;
    if (add_anchors(b, anchors, num, aoff))
        return -1;
    return eng_region_setup(l, b->err->msg, sizeof b->err->msg);
}

enum { KIND_UNKNOWN = -1 };

static int section_kind(const char *name)
{
    static const struct {
        const char *name;
        enum eng_layer_kind kind;
    } kinds[] = {
        {"convolutional", ENG_LAYER_CONV}, {"conv", ENG_LAYER_CONV},
        {"maxpool", ENG_LAYER_MAXPOOL},    {"max", ENG_LAYER_MAXPOOL},
        {"avgpool", ENG_LAYER_AVGPOOL},    {"avg", ENG_LAYER_AVGPOOL},
        {"upsample", ENG_LAYER_UPSAMPLE},  {"route", ENG_LAYER_ROUTE},
        {"shortcut", ENG_LAYER_SHORTCUT},  {"dropout", ENG_LAYER_DROPOUT},
        {"yolo", ENG_LAYER_YOLO},          {"region", ENG_LAYER_REGION},
    };
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(name, kinds[i].name) == 0)
            return (int)kinds[i].kind;
    return KIND_UNKNOWN;
}

/* Builds layer i from section s; *aoff receives a head's offset among the anchors. */
static int build_layer(struct builder *b, const struct eng_cfg_section *s, int i, size_t *aoff)
{
    struct eng_net *net = b->net;
    struct eng_layer *l = &net->layers[i];
    const int kind = section_kind(s->name);
    if (kind == KIND_UNKNOWN)
        return eng_err_set_line(b->err, ENG_ERR_UNSUPPORTED, b->cfg->name, s->line,
                                "unknown section [%s]", s->name);
    l->kind = (enum eng_layer_kind)kind;
    l->index = i;
    l->in = i == 0 ? net->input : net->layers[i - 1].out;
    l->out = l->in;
    b->err->msg[0] = '\0';
    int rc = 0;
    switch (l->kind) {
    case ENG_LAYER_CONV: rc = parse_conv(b, s, l); break;
    case ENG_LAYER_MAXPOOL: rc = parse_maxpool(b, s, l); break;
    case ENG_LAYER_AVGPOOL: rc = eng_avgpool_setup(l, b->err->msg, sizeof b->err->msg); break;
    case ENG_LAYER_UPSAMPLE: rc = parse_upsample(b, s, l); break;
    case ENG_LAYER_ROUTE: rc = parse_route(b, s, l); break;
    case ENG_LAYER_SHORTCUT: rc = parse_shortcut(b, s, l); break;
    case ENG_LAYER_DROPOUT: rc = eng_dropout_setup(l, b->err->msg, sizeof b->err->msg); break;
    case ENG_LAYER_YOLO: rc = parse_yolo(b, s, l, aoff); break;
    case ENG_LAYER_REGION: rc = parse_region(b, s, l, aoff); break;
    case ENG_LAYER_DENSE: /* not darknet sections: section_kind() never yields them */
    case ENG_LAYER_ADD: rc = -1; break;
    }
    if (rc && b->err->where[0] == '\0') {
        /* A setup function wrote only the reason: add the place. */
        char why[ENG_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", b->err->msg);
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line, "[%s] layer %d: %s",
                                s->name, i, why);
    }
    /* Bounding every output keeps the next layer's shape arithmetic (upsample's h * stride, route's
     * channel sum, eng_shape_size) far from int and size_t overflow. */
    const struct eng_shape o = l->out;
    if (rc == 0 && (o.c > MAX_EXTENT || o.h > MAX_EXTENT || o.w > MAX_EXTENT ||
                    (double)o.c * o.h * o.w > MAX_ACTIVATIONS))
        return eng_err_set_line(b->err, ENG_ERR_TOO_LARGE, b->cfg->name, s->line,
                                "[%s] layer %d: output %dx%dx%d is too large", s->name, i, o.c, o.h,
                                o.w);
    return rc;
}

size_t eng_darknet_conv_weights(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    return (size_t)c->filters * (size_t)(l->in.c / c->groups) * c->size * c->size;
}

/* Lays out params: per conv layer its weights then its bias, then all head anchors at the end. */
static int allocate_params(struct builder *b, size_t anchors_n)
{
    struct eng_net *net = b->net;
    size_t total = 0;
    double acts = (double)eng_shape_size(net->input);
    for (int i = 0; i < net->n_layers; i++) {
        const struct eng_layer *l = &net->layers[i];
        acts += (double)eng_shape_size(l->out) + (double)l->work_floats;
        b->param_off[i] = total;
        if (l->kind == ENG_LAYER_CONV)
            total += eng_darknet_conv_weights(l) + (size_t)l->p.conv.filters;
        if (total > ENG_DARKNET_MAX_PARAMS)
            return eng_err_set(b->err, ENG_ERR_TOO_LARGE, b->cfg->name,
                               "the model has more than %u parameters", ENG_DARKNET_MAX_PARAMS);
    }
    if (acts > MAX_ACTIVATIONS)
        return eng_err_set(b->err, ENG_ERR_TOO_LARGE, b->cfg->name,
                           "the model needs %.0f activation floats, more than %u", acts,
                           MAX_ACTIVATIONS);
    net->n_params = total;
    net->params = calloc(total + anchors_n + 1, sizeof(float));
    if (!net->params)
        return eng_err_set(b->err, ENG_ERR_NOMEM, b->cfg->name, "out of memory for %zu weights", total);
    memcpy(net->params + total, b->anchors, sizeof(float) * anchors_n);
    return 0;
}

static void link_params(struct builder *b, const size_t *anchor_off)
{
    struct eng_net *net = b->net;
    for (int i = 0; i < net->n_layers; i++) {
        struct eng_layer *l = &net->layers[i];
        if (l->kind == ENG_LAYER_CONV) {
            l->p.conv.weights = net->params + b->param_off[i];
            l->p.conv.bias = net->params + b->param_off[i] + eng_darknet_conv_weights(l);
        } else if (l->kind == ENG_LAYER_YOLO || l->kind == ENG_LAYER_REGION) {
            l->p.head.anchors = net->params + net->n_params + anchor_off[i];
        }
    }
}

static int finish_net(struct builder *b)
{
    struct eng_net *net = b->net;
    if (net->n_heads == 0)
        return eng_err_set(b->err, ENG_ERR_INVALID, b->cfg->name,
                           "the model has no [yolo] or [region] layer");
    net->classes = net->layers[net->heads[0]].p.head.classes;
    for (int i = 0; i < net->n_heads; i++) {
        const struct eng_layer *h = &net->layers[net->heads[i]];
        if (h->p.head.classes != net->classes)
            return eng_err_set(b->err, ENG_ERR_INVALID, b->cfg->name,
                               "heads disagree on the number of classes (%d and %d)", net->classes,
                               h->p.head.classes);
        net->max_candidates += eng_head_rows_count(h);
    }
    for (int i = 0; i < net->n_layers; i++)
        net->flops += net->layers[i].flops;
    return 0;
}

static int build_net(struct builder *b, size_t *anchor_off)
{
    struct eng_cfg *c = b->cfg;
    if (parse_net(b, &c->secs[0]))
        return -1;
    eng_cfg_warn_unused(b->cfg, &c->secs[0], b->opts);
    for (int i = 0; i < b->net->n_layers; i++) {
        const struct eng_cfg_section *s = &c->secs[i + 1];
        if (build_layer(b, s, i, &anchor_off[i]))
            return -1;
        const enum eng_layer_kind k = b->net->layers[i].kind;
        if (k == ENG_LAYER_YOLO || k == ENG_LAYER_REGION) {
            if (b->net->n_heads >= ENG_NET_MAX_HEADS)
                return eng_err_set_line(b->err, ENG_ERR_UNSUPPORTED, c->name, s->line,
                                        "more than %d detection heads", ENG_NET_MAX_HEADS);
            b->net->heads[b->net->n_heads++] = i;
        }
        eng_cfg_warn_unused(b->cfg, s, b->opts);
    }
    if (finish_net(b))
        return -1;
    size_t anchors_n = 0;
    for (int i = 0; i < b->net->n_heads; i++)
        anchors_n += 2 * (size_t)b->net->layers[b->net->heads[i]].p.head.anchors_n;
    if (allocate_params(b, anchors_n))
        return -1;
    link_params(b, anchor_off);
    return b->unprepared ? 0 : eng_darknet_conv_prepare(b->net, b->err, b->cfg->name);
}

static int parse_cfg(const char *text, size_t len, const char *name, const struct eng_darknet_opts *opts,
                     int unprepared, struct eng_net **out, struct eng_err *err)
{
    struct eng_err local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    struct eng_cfg c = {.name = name, .err = err};
    struct builder b = {.cfg = &c, .opts = opts, .err = err, .unprepared = unprepared};
    size_t *anchor_off = NULL;
    int rc = -1;
    if (eng_cfg_parse(&c, text, len))
        goto done;
    const int n_layers = c.n_secs - 1;
    if (n_layers > MAX_LAYERS) {
        eng_err_set(err, ENG_ERR_TOO_LARGE, name, "%d layers, more than %d", n_layers, MAX_LAYERS);
        goto done;
    }
    b.net = calloc(1, sizeof *b.net);
    anchor_off = calloc((size_t)n_layers + 1, sizeof *anchor_off);
    b.param_off = calloc((size_t)n_layers + 1, sizeof *b.param_off);
    if (b.net)
        b.net->layers = calloc((size_t)n_layers + 1, sizeof *b.net->layers);
    if (!b.net || !anchor_off || !b.param_off || !b.net->layers) {
        eng_err_set(err, ENG_ERR_NOMEM, name, "out of memory");
        goto done;
    }
    b.net->n_layers = n_layers;
    rc = build_net(&b, anchor_off);
done:
    if (rc)
        eng_net_free(b.net);
    else
        *out = b.net;
    free(anchor_off);
    free(b.param_off);
    free(b.anchors);
    eng_cfg_free(&c);
    return rc;
}

int eng_darknet_parse_cfg(const char *text, size_t len, const char *name,
                          const struct eng_darknet_opts *opts, struct eng_net **out,
                          struct eng_err *err)
{
    return parse_cfg(text, len, name, opts, 0, out, err);
}

int eng_darknet_parse_cfg_unprepared(const char *text, size_t len, const char *name,
                                     const struct eng_darknet_opts *opts, struct eng_net **out,
                                     struct eng_err *err)
{
    return parse_cfg(text, len, name, opts, 1, out, err);
}
