/* darknet.c - darknet .cfg parser (the .weights reader and file loading: darknet_weights.c).
 *
 * Parsing happens in two steps: the text becomes a list of sections with key=value pairs (each with
 * its line), then each section becomes one eng_layer through the layer's setup function. Nothing here
 * trusts the file: every number is range-checked, every index must point backwards, and the total
 * size of weights and activations is bounded before anything large is allocated. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "conv_wino.h"
#include "darknet.h"
#include "detect.h"

#define MAX_LAYERS 2048
#define MAX_DIM 8192
#define MAX_EXTENT (1 << 20)           /* any dimension of a layer's output */
#define MAX_ACTIVATIONS (1024u << 20) /* floats per context */
#define MAX_LIST 64

struct kv {
    char *key, *value;
    int line;
    int used;
};

struct section {
    char *name;
    int line;
    int first, n; /* its kvs */
};

struct cfg {
    const char *name;
    char *text;
    struct section *secs;
    int n_secs;
    struct kv *kvs;
    int n_kvs;
};

struct builder {
    struct cfg *cfg;
    const struct eng_darknet_opts *opts;
    struct eng_err *err;
    struct eng_net *net;
    size_t *param_off; /* per layer: offset of its weights in net->params */
    float *anchors;    /* every head's anchors, one block; owned by net->params afterwards */
};

/* ---- text to sections ---------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

static int grow(void **arr, int n, int *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    const int ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return -1;
    *arr = p;
    *cap = ncap;
    return 0;
}

static void cfg_free(struct cfg *c)
{
    free(c->text);
    free(c->secs);
    free(c->kvs);
}

static int cfg_add_kv(struct cfg *c, char *line, int lineno, int *cap, struct eng_err *err)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return eng_err_set_line(err, ENG_ERR_INVALID, c->name, lineno,
                                "expected key=value or [section], got '%.60s'", line);
    if (c->n_secs == 0)
        return eng_err_set_line(err, ENG_ERR_INVALID, c->name, lineno,
                                "key outside any section (the file must start with [net])");
    *eq = '\0';
    if (grow((void **)&c->kvs, c->n_kvs, cap, sizeof *c->kvs))
        return eng_err_set(err, ENG_ERR_NOMEM, c->name, "out of memory");
    c->kvs[c->n_kvs++] = (struct kv){trim(line), trim(eq + 1), lineno, 0};
    c->secs[c->n_secs - 1].n++;
    if (!c->kvs[c->n_kvs - 1].key[0])
        return eng_err_set_line(err, ENG_ERR_INVALID, c->name, lineno, "empty key");
    return 0;
}

static int cfg_add_section(struct cfg *c, char *line, int lineno, int *cap, struct eng_err *err)
{
    char *close = strchr(line, ']');
    if (!close || close[1] != '\0')
        return eng_err_set_line(err, ENG_ERR_INVALID, c->name, lineno,
                                "malformed section header '%.60s'", line);
    *close = '\0';
    if (grow((void **)&c->secs, c->n_secs, cap, sizeof *c->secs))
        return eng_err_set(err, ENG_ERR_NOMEM, c->name, "out of memory");
    c->secs[c->n_secs++] = (struct section){trim(line + 1), lineno, c->n_kvs, 0};
    return 0;
}

static int cfg_parse(struct cfg *c, const char *text, size_t len, struct eng_err *err)
{
    if (len > ENG_DARKNET_MAX_CFG_BYTES)
        return eng_err_set(err, ENG_ERR_TOO_LARGE, c->name, "cfg is %zu bytes, more than %u", len,
                           ENG_DARKNET_MAX_CFG_BYTES);
    if (memchr(text, '\0', len))
        return eng_err_set(err, ENG_ERR_INVALID, c->name, "cfg contains a NUL byte: not a text file");
    if (!(c->text = malloc(len + 1)))
        return eng_err_set(err, ENG_ERR_NOMEM, c->name, "out of memory");
    memcpy(c->text, text, len);
    c->text[len] = '\0';
    int sec_cap = 0, kv_cap = 0, lineno = 0;
    for (char *line = c->text, *next; line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line = trim(line);
        if (!*line || *line == '#' || *line == ';')
            continue;
        int rc = *line == '[' ? cfg_add_section(c, line, lineno, &sec_cap, err)
                              : cfg_add_kv(c, line, lineno, &kv_cap, err);
        if (rc)
            return -1;
    }
    if (c->n_secs == 0)
        return eng_err_set(err, ENG_ERR_INVALID, c->name, "no sections: not a darknet cfg");
    return 0;
}

/* ---- typed getters: a present but malformed value is an error at its line ---------------------- */

static struct kv *find(struct builder *b, const struct section *s, const char *key)
{
    for (int i = s->first; i < s->first + s->n; i++) {
        if (strcmp(b->cfg->kvs[i].key, key) == 0) {
            b->cfg->kvs[i].used = 1;
            return &b->cfg->kvs[i];
        }
    }
    return NULL;
}

static int bad_value(struct builder *b, const struct kv *kv, const char *what)
{
    return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, kv->line, "%s=%.40s: %s",
                            kv->key, kv->value, what);
}

static int parse_int(const char *s, int *out)
{
    char *end;
    errno = 0;
    const long v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == s || *end || errno || v < -1000000000L || v > 1000000000L)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, float *out)
{
    char *end;
    errno = 0;
    const float v = strtof(s, &end);
    while (*end == ' ' || *end == '\t')
        end++;
    if (end == s || *end || errno || !isfinite(v))
        return -1;
    *out = v;
    return 0;
}

static int get_int(struct builder *b, const struct section *s, const char *key, int def, int lo,
                   int hi, int *out)
{
    const struct kv *kv = find(b, s, key);
    *out = def;
    if (!kv)
        return 0;
    if (parse_int(kv->value, out))
        return bad_value(b, kv, "not an integer");
    if (*out < lo || *out > hi) {
        char msg[80];
        snprintf(msg, sizeof msg, "out of range %d..%d", lo, hi);
        return bad_value(b, kv, msg);
    }
    return 0;
}

static int get_float(struct builder *b, const struct section *s, const char *key, float def,
                     float lo, float hi, float *out)
{
    const struct kv *kv = find(b, s, key);
    *out = def;
    if (!kv)
        return 0;
    if (parse_float(kv->value, out))
        return bad_value(b, kv, "not a number");
    if (*out < lo || *out > hi) {
        char msg[80];
        snprintf(msg, sizeof msg, "out of range %g..%g", lo, hi);
        return bad_value(b, kv, msg);
    }
    return 0;
}

/* Comma-separated list; *n = 0 when the key is absent. */
static int get_list(struct builder *b, const struct section *s, const char *key, int is_float,
                    void *vals, int max, int *n)
{
    const struct kv *kv = find(b, s, key);
    *n = 0;
    if (!kv)
        return 0;
    char buf[1024];
    if (strlen(kv->value) >= sizeof buf)
        return bad_value(b, kv, "list too long");
    strcpy(buf, kv->value);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok)
            continue;
        if (*n >= max)
            return bad_value(b, kv, "too many values");
        int rc = is_float ? parse_float(tok, (float *)vals + *n) : parse_int(tok, (int *)vals + *n);
        if (rc)
            return bad_value(b, kv, is_float ? "not a list of numbers" : "not a list of integers");
        (*n)++;
    }
    if (*n == 0)
        return bad_value(b, kv, "empty list");
    return 0;
}

static int get_act(struct builder *b, const struct section *s, const char *key, enum eng_act *act)
{
    const struct kv *kv = find(b, s, key);
    *act = ENG_ACT_LINEAR;
    if (kv && eng_act_parse(kv->value, act))
        return bad_value(b, kv, "unsupported activation (linear, leaky, relu, logistic, tanh, mish, swish)");
    return 0;
}

/* A key darknet understands but whose non-default value changes inference in a way we do not
 * implement: accepting it silently would give wrong answers. */
static int require_default(struct builder *b, const struct section *s, const char *key, int def)
{
    const struct kv *kv = find(b, s, key);
    int v;
    if (!kv)
        return 0;
    if (parse_int(kv->value, &v))
        return bad_value(b, kv, "not an integer");
    if (v != def) {
        char msg[80];
        snprintf(msg, sizeof msg, "not supported (only %d)", def);
        return bad_value(b, kv, msg);
    }
    return 0;
}

/* ---- sections to layers --------------------------------------------------------------------- */

/* Keys darknet uses only for training (or that change nothing at inference): accepted silently. */
static const char *const ignored_keys[] = {
    /* [net] */
    "batch", "subdivisions", "momentum", "decay", "angle", "saturation", "exposure", "hue",
    "learning_rate", "burn_in", "max_batches", "policy", "steps", "scales", "scale", "step", "gamma",
    "power", "mosaic", "flip", "letter_box", "cutmix", "mixup", "blur", "gaussian_noise",
    "label_smooth_eps", "max_chart_loss", "min_crop", "max_crop", "aspect", "adam", "B1", "B2", "eps",
    "track", "time_steps", "mosaic_bound", "adversarial_lr", "attention", "resize_step",
    "dynamic_minibatch", "ema_alpha", "loss_scale", "unsupervised", "contrastive", "sequential_subdivisions",
    /* [yolo] / [region] */
    "jitter", "ignore_thresh", "truth_thresh", "random", "iou_normalizer", "iou_loss",
    "cls_normalizer", "nms_kind", "beta_nms", "max_delta", "counters_per_class", "focal_loss",
    "iou_thresh", "uc_normalizer", "obj_normalizer", "resize", "objectness_smooth",
    "delta_normalizer", "bias_match", "rescore", "object_scale", "noobject_scale", "class_scale",
    "coord_scale", "absolute", "thresh", "iou_thresh_kind", "embedding_layer", "show_details",
    "log", "map", "tree", "mask_scale", "classfix", "track_history_size", "sim_thres", "dets_for_track",
    "dets_for_show", "track_ciou_norm",
    /* [convolutional] and others */
    "stopbackward", "dont_update", "burnin_update", "train_only_bn", "probability", "dropblock",
    "dropblock_size_abs", "dropblock_size_rel", "flipped", "learning_rate_scale", "assisted_excitation",
};

static int is_ignored(const char *key)
{
    for (size_t i = 0; i < sizeof ignored_keys / sizeof ignored_keys[0]; i++)
        if (strcmp(key, ignored_keys[i]) == 0)
            return 1;
    return 0;
}

static void warn_unused(struct builder *b, const struct section *s)
{
    for (int i = s->first; i < s->first + s->n; i++) {
        const struct kv *kv = &b->cfg->kvs[i];
        if (kv->used || is_ignored(kv->key) || !b->opts || !b->opts->warn)
            continue;
        char where[ENG_ERR_WHERE_MAX], msg[ENG_ERR_MSG_MAX];
        snprintf(where, sizeof where, "%s:%d", b->cfg->name, kv->line);
        snprintf(msg, sizeof msg, "unknown key '%s' in [%s] ignored", kv->key, s->name);
        b->opts->warn(b->opts->warn_user, where, msg);
    }
}

static int parse_net(struct builder *b, const struct section *s)
{
    struct eng_shape *in = &b->net->input;
    if (strcmp(s->name, "net") && strcmp(s->name, "network"))
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                "the first section must be [net], not [%s]", s->name);
    if (get_int(b, s, "width", 416, 1, MAX_DIM, &in->w) ||
        get_int(b, s, "height", 416, 1, MAX_DIM, &in->h) ||
        get_int(b, s, "channels", 3, 3, 3, &in->c))
        return -1;
    if (b->opts && b->opts->width > 0)
        in->w = b->opts->width;
    if (b->opts && b->opts->height > 0)
        in->h = b->opts->height;
    return 0;
}

static int parse_conv(struct builder *b, const struct section *s, struct eng_layer *l)
{
    struct eng_conv *c = &l->p.conv;
    int pad_flag, padding;
    if (get_int(b, s, "filters", 1, 1, 65536, &c->filters) ||
        get_int(b, s, "size", 1, 1, 31, &c->size) ||
        get_int(b, s, "stride", 1, 1, 64, &c->stride) ||
        get_int(b, s, "pad", 0, 0, 1, &pad_flag) ||
        get_int(b, s, "padding", 0, 0, 64, &padding) ||
        get_int(b, s, "groups", 1, 1, 65536, &c->groups) ||
        get_int(b, s, "batch_normalize", 0, 0, 1, &c->batch_normalize) || get_act(b, s, "activation", &c->act) ||
        require_default(b, s, "dilation", 1) || require_default(b, s, "binary", 0) ||
        require_default(b, s, "xnor", 0) || require_default(b, s, "antialiasing", 0) ||
        require_default(b, s, "deform", 0) || require_default(b, s, "share_index", -1000000))
        return -1;
    int sx, sy;
    if (get_int(b, s, "stride_x", c->stride, 1, 64, &sx) ||
        get_int(b, s, "stride_y", c->stride, 1, 64, &sy))
        return -1;
    if (sx != c->stride || sy != c->stride)
        return eng_err_set_line(b->err, ENG_ERR_UNSUPPORTED, b->cfg->name, s->line,
                                "stride_x/stride_y different from stride are not supported");
    /* darknet: pad=1 means "same" padding size/2 and overrides padding=. */
    c->pad = pad_flag ? c->size / 2 : padding;
    return eng_conv_setup(l, b->err->msg, sizeof b->err->msg);
}

static int parse_maxpool(struct builder *b, const struct section *s, struct eng_layer *l)
{
    struct eng_pool *p = &l->p.pool;
    if (get_int(b, s, "stride", 1, 1, 64, &p->stride) || get_int(b, s, "size", p->stride, 1, 64, &p->size) ||
        get_int(b, s, "padding", p->size - 1, 0, 128, &p->pad) ||
        require_default(b, s, "maxpool_depth", 0) || require_default(b, s, "antialiasing", 0))
        return -1;
    int sx, sy;
    if (get_int(b, s, "stride_x", p->stride, 1, 64, &sx) || get_int(b, s, "stride_y", p->stride, 1, 64, &sy))
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

static int parse_route(struct builder *b, const struct section *s, struct eng_layer *l)
{
    struct eng_route *r = &l->p.route;
    int idx[MAX_LIST];
    if (get_list(b, s, "layers", 0, idx, ENG_ROUTE_MAX_INPUTS, &r->n) ||
        get_int(b, s, "groups", 1, 1, 1024, &r->groups) ||
        get_int(b, s, "group_id", 0, 0, 1023, &r->group_id))
        return -1;
    if (r->n == 0)
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                "[route] needs layers=");
    for (int i = 0; i < r->n; i++)
        r->inputs[i] = resolve_index(idx[i], l->index);
    return eng_route_setup(l, b->net->layers, b->err->msg, sizeof b->err->msg);
}

static int parse_shortcut(struct builder *b, const struct section *s, struct eng_layer *l)
{
    int from[MAX_LIST], n;
    if (get_list(b, s, "from", 0, from, 1, &n) || get_act(b, s, "activation", &l->p.shortcut.act))
        return -1;
    const struct kv *wt = find(b, s, "weights_type");
    if (wt && strcmp(wt->value, "none"))
        return bad_value(b, wt, "weighted shortcuts are not supported");
    if (n != 1)
        return eng_err_set_line(b->err, ENG_ERR_INVALID, b->cfg->name, s->line,
                                "[shortcut] needs exactly one from=");
    l->p.shortcut.from = resolve_index(from[0], l->index);
    return eng_shortcut_setup(l, b->net->layers, b->err->msg, sizeof b->err->msg);
}

static int parse_upsample(struct builder *b, const struct section *s, struct eng_layer *l)
{
    if (get_int(b, s, "stride", 2, -64, 64, &l->p.upsample.stride) ||
        get_float(b, s, "scale", 1.0f, -1e6f, 1e6f, &l->p.upsample.scale))
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

static int parse_anchors(struct builder *b, const struct section *s, float *anchors, int *num)
{
    int n_vals, num_decl;
    if (get_list(b, s, "anchors", 1, anchors, MAX_LIST, &n_vals))
        return -1;
    if (get_int(b, s, "num", n_vals / 2, 1, MAX_LIST / 2, &num_decl))
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

static int parse_yolo(struct builder *b, const struct section *s, struct eng_layer *l, size_t *aoff)
{
    struct eng_head *h = &l->p.head;
    float anchors[MAX_LIST], picked[MAX_LIST];
    int mask[MAX_LIST], num, n_mask;
    if (get_int(b, s, "classes", 20, 1, 100000, &h->classes) || parse_anchors(b, s, anchors, &num) ||
        get_list(b, s, "mask", 0, mask, MAX_LIST / 2, &n_mask) ||
        get_float(b, s, "scale_x_y", 1.0f, 0.5f, 4.0f, &h->scale_x_y) ||
        require_default(b, s, "new_coords", 0))
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

static int parse_region(struct builder *b, const struct section *s, struct eng_layer *l, size_t *aoff)
{
    struct eng_head *h = &l->p.head;
    float anchors[MAX_LIST];
    int num;
    h->scale_x_y = 1.0f;
    if (get_int(b, s, "classes", 20, 1, 100000, &h->classes) || parse_anchors(b, s, anchors, &num) ||
        require_default(b, s, "coords", 4) || require_default(b, s, "softmax", 1) ||
        require_default(b, s, "background", 0))
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
static int build_layer(struct builder *b, const struct section *s, int i, size_t *aoff)
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
    struct cfg *c = b->cfg;
    if (parse_net(b, &c->secs[0]))
        return -1;
    warn_unused(b, &c->secs[0]);
    for (int i = 0; i < b->net->n_layers; i++) {
        const struct section *s = &c->secs[i + 1];
        if (build_layer(b, s, i, &anchor_off[i]))
            return -1;
        const enum eng_layer_kind k = b->net->layers[i].kind;
        if (k == ENG_LAYER_YOLO || k == ENG_LAYER_REGION) {
            if (b->net->n_heads >= ENG_NET_MAX_HEADS)
                return eng_err_set_line(b->err, ENG_ERR_UNSUPPORTED, c->name, s->line,
                                        "more than %d detection heads", ENG_NET_MAX_HEADS);
            b->net->heads[b->net->n_heads++] = i;
        }
        warn_unused(b, s);
    }
    if (finish_net(b))
        return -1;
    size_t anchors_n = 0;
    for (int i = 0; i < b->net->n_heads; i++)
        anchors_n += 2 * (size_t)b->net->layers[b->net->heads[i]].p.head.anchors_n;
    if (allocate_params(b, anchors_n))
        return -1;
    link_params(b, anchor_off);
    return eng_darknet_conv_prepare(b->net, b->err, b->cfg->name);
}

int eng_darknet_parse_cfg(const char *text, size_t len, const char *name,
                          const struct eng_darknet_opts *opts, struct eng_net **out,
                          struct eng_err *err)
{
    struct eng_err local;
    if (!err)
        err = &local;
    memset(err, 0, sizeof *err);
    struct cfg c = {.name = name};
    struct builder b = {.cfg = &c, .opts = opts, .err = err};
    size_t *anchor_off = NULL;
    int rc = -1;
    if (cfg_parse(&c, text, len, err))
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
    cfg_free(&c);
    return rc;
}
