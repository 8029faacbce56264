/* darknet_cfg.c - a darknet .cfg as text: sections of key=value pairs with their lines, typed getters
 * that report a malformed value at its line, and the keys left unread (darknet.c turns the sections
 * into layers; darknet_cfg.h says what is borrowed from what). */
#include "darknet_cfg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void eng_cfg_free(struct eng_cfg *c)
{
    free(c->text);
    free(c->secs);
    free(c->kvs);
}

static int cfg_add_kv(struct eng_cfg *c, char *line, int lineno, int *cap, struct eng_err *err)
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
    c->kvs[c->n_kvs++] = (struct eng_cfg_kv){trim(line), trim(eq + 1), lineno, 0};
    c->secs[c->n_secs - 1].n++;
    if (!c->kvs[c->n_kvs - 1].key[0])
        return eng_err_set_line(err, ENG_ERR_INVALID, c->name, lineno, "empty key");
    return 0;
}

static int cfg_add_section(struct eng_cfg *c, char *line, int lineno, int *cap, struct eng_err *err)
{
    char *close = strchr(line, ']');
    if (!close || close[1] != '\0')
        return eng_err_set_line(err, ENG_ERR_INVALID, c->name, lineno,
                                "malformed section header '%.60s'", line);
    *close = '\0';
    if (grow((void **)&c->secs, c->n_secs, cap, sizeof *c->secs))
        return eng_err_set(err, ENG_ERR_NOMEM, c->name, "out of memory");
    c->secs[c->n_secs++] = (struct eng_cfg_section){trim(line + 1), lineno, c->n_kvs, 0};
    return 0;
}

int eng_cfg_parse(struct eng_cfg *c, const char *text, size_t len)
{
    struct eng_err *err = c->err;
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

struct eng_cfg_kv *eng_cfg_find(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key)
{
    for (int i = s->first; i < s->first + s->n; i++) {
        if (strcmp(c->kvs[i].key, key) == 0) {
            c->kvs[i].used = 1;
            return &c->kvs[i];
        }
    }
    return NULL;
}

int eng_cfg_bad_value(struct eng_cfg *c, const struct eng_cfg_kv *kv, const char *what)
{
    return eng_err_set_line(c->err, ENG_ERR_INVALID, c->name, kv->line, "%s=%.40s: %s",
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

int eng_cfg_int(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, int def, int lo,
                   int hi, int *out)
{
    const struct eng_cfg_kv *kv = eng_cfg_find(c, s, key);
    *out = def;
    if (!kv)
        return 0;
    if (parse_int(kv->value, out))
        return eng_cfg_bad_value(c, kv, "not an integer");
    if (*out < lo || *out > hi) {
        char msg[80];
        snprintf(msg, sizeof msg, "out of range %d..%d", lo, hi);
        return eng_cfg_bad_value(c, kv, msg);
    }
    return 0;
}

int eng_cfg_float(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, float def,
                     float lo, float hi, float *out)
{
    const struct eng_cfg_kv *kv = eng_cfg_find(c, s, key);
    *out = def;
    if (!kv)
        return 0;
    if (parse_float(kv->value, out))
        return eng_cfg_bad_value(c, kv, "not a number");
    if (*out < lo || *out > hi) {
        char msg[80];
        snprintf(msg, sizeof msg, "out of range %g..%g", lo, hi);
        return eng_cfg_bad_value(c, kv, msg);
    }
    return 0;
}

/* Comma-separated list; *n = 0 when the key is absent. */
int eng_cfg_list(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, int is_float,
                    void *vals, int max, int *n)
{
    const struct eng_cfg_kv *kv = eng_cfg_find(c, s, key);
    *n = 0;
    if (!kv)
        return 0;
    char buf[1024];
    if (strlen(kv->value) >= sizeof buf)
        return eng_cfg_bad_value(c, kv, "list too long");
    strcpy(buf, kv->value);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok = trim(tok);
        if (!*tok)
            continue;
        if (*n >= max)
            return eng_cfg_bad_value(c, kv, "too many values");
        int rc = is_float ? parse_float(tok, (float *)vals + *n) : parse_int(tok, (int *)vals + *n);
        if (rc)
            return eng_cfg_bad_value(c, kv, is_float ? "not a list of numbers" : "not a list of integers");
        (*n)++;
    }
    if (*n == 0)
        return eng_cfg_bad_value(c, kv, "empty list");
    return 0;
}

int eng_cfg_act(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key,
                enum eng_act *act)
{
    const struct eng_cfg_kv *kv = eng_cfg_find(c, s, key);
    *act = ENG_ACT_LINEAR;
    if (kv && eng_act_parse(kv->value, act))
        return eng_cfg_bad_value(c, kv,
                                 "unsupported activation (linear, leaky, relu, logistic, tanh, mish, swish)");
    return 0;
}

int eng_cfg_require_default(struct eng_cfg *c, const struct eng_cfg_section *s, const char *key, int def)
{
    const struct eng_cfg_kv *kv = eng_cfg_find(c, s, key);
    int v;
    if (!kv)
        return 0;
    if (parse_int(kv->value, &v))
        return eng_cfg_bad_value(c, kv, "not an integer");
    if (v != def) {
        char msg[80];
        snprintf(msg, sizeof msg, "not supported (only %d)", def);
        return eng_cfg_bad_value(c, kv, msg);
    }
    return 0;
}

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

void eng_cfg_warn_unused(struct eng_cfg *c, const struct eng_cfg_section *s,
                         const struct eng_darknet_opts *opts)
{
    for (int i = s->first; i < s->first + s->n; i++) {
        const struct eng_cfg_kv *kv = &c->kvs[i];
        if (kv->used || is_ignored(kv->key) || !opts || !opts->warn)
            continue;
        char where[ENG_ERR_WHERE_MAX], msg[ENG_ERR_MSG_MAX];
        snprintf(where, sizeof where, "%s:%d", c->name, kv->line);
        snprintf(msg, sizeof msg, "unknown key '%s' in [%s] ignored", kv->key, s->name);
        opts->warn(opts->warn_user, where, msg);
    }
}
