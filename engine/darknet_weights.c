/* darknet_weights.c - darknet .weights reader (batch norm folded into the convolutions) and the
 * loading of a model's files (cfg, weights, names). The cfg parser: darknet.c. */
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

/* ---- weights ------------------------------------------------------------------------------- */

/* Bytes the weights file must hold after its header. */
static size_t weights_payload_floats(const struct eng_net *net)
{
    size_t n = 0;
    for (int i = 0; i < net->n_layers; i++) {
        const struct eng_layer *l = &net->layers[i];
        if (l->kind != ENG_LAYER_CONV)
            continue;
        n += eng_darknet_conv_weights(l) + (size_t)l->p.conv.filters * (l->p.conv.batch_normalize ? 4 : 1);
    }
    return n;
}

static const float *take(const unsigned char **cur, size_t n)
{
    const float *p = (const float *)(const void *)*cur;
    *cur += n * sizeof(float);
    return p;
}

/* The file stores floats unaligned for our purposes; copy them out to be safe on every target. */
static void copy_floats(float *dst, const float *src, size_t n)
{
    memcpy(dst, src, n * sizeof(float));
}

/* Layer l's parameters from *cur, its weights into w (c->weights, or a caller's buffer). */
static int load_conv(struct eng_layer *l, float *w, const unsigned char **cur, float *tmp, const char *name,
                     struct eng_err *err)
{
    struct eng_conv *c = &l->p.conv;
    const size_t nw = eng_darknet_conv_weights(l);
    const size_t per_filter = nw / (size_t)c->filters;
    float *bias = (float *)c->bias;
    copy_floats(bias, take(cur, c->filters), c->filters);
    float *scale = tmp, *mean = tmp + c->filters, *var = tmp + 2 * (size_t)c->filters;
    if (c->batch_normalize) {
        copy_floats(scale, take(cur, c->filters), c->filters);
        copy_floats(mean, take(cur, c->filters), c->filters);
        copy_floats(var, take(cur, c->filters), c->filters);
    }
    copy_floats(w, take(cur, nw), nw);
    if (!c->batch_normalize)
        return 0;
    for (int o = 0; o < c->filters; o++) {
        if (!(var[o] >= 0.0f) || !isfinite(scale[o]) || !isfinite(mean[o]))
            return eng_err_set(err, ENG_ERR_INVALID, name,
                               "layer %d filter %d: batch norm variance %g / scale %g / mean %g is "
                               "not valid", l->index, o, var[o], scale[o], mean[o]);
        /* darknet's normalize_cpu: y = scale * (x - mean) / sqrt(var + 1e-6) + bias (OpenCV's importer
         * uses the same epsilon; 1e-5 visibly shifts boxes when a variance is ~1e-4). */
        const float k = scale[o] / sqrtf(var[o] + .000001f);
        for (size_t j = 0; j < per_filter; j++)
            w[(size_t)o * per_filter + j] *= k;
        bias[o] -= mean[o] * k;
    }
    return 0;
}

static int read_weights(struct eng_net *net, const unsigned char *data, size_t len, const char *name,
                        int drop_wino, struct eng_err *err);

int eng_darknet_load_weights_mem(struct eng_net *net, const unsigned char *data, size_t len,
                                 const char *name, struct eng_err *err)
{
    return read_weights(net, data, len, name, 0, err) ? -1 : eng_darknet_conv_prepare(net, err, name);
}

/* Layer l's weights through a buffer of their own, transformed for Winograd (which then reads only U)
 * and dropped: their place in net->params is never written (its pages are never touched), c->weights
 * is NULL. A Winograd layer of yolov3-tiny or yolov4-tiny otherwise kept both, 9 and 16 (or 36) floats
 * per weight. */
static int load_conv_wino(struct eng_layer *l, const unsigned char **cur, float *tmp, const char *name,
                          struct eng_err *err)
{
    float *own = malloc(eng_darknet_conv_weights(l) * sizeof(float));
    if (!own)
        return eng_err_set(err, ENG_ERR_NOMEM, name, "out of memory for layer %d's weights", l->index);
    l->p.conv.weights = own;
    int rc = load_conv(l, own, cur, tmp, name, err);
    if (rc == 0 && eng_conv_wino_prepare(l))
        rc = eng_err_set(err, ENG_ERR_NOMEM, name, "out of memory for layer %d's Winograd weights", l->index);
    l->p.conv.weights = NULL;
    free(own);
    return rc;
}

static int read_weights(struct eng_net *net, const unsigned char *data, size_t len, const char *name,
                        int drop_wino, struct eng_err *err)
{
    if (len < 12)
        return eng_err_set(err, ENG_ERR_INVALID, name,
                           "%zu bytes is too short for a darknet weights header", len);
    int32_t ver[3];
    memcpy(ver, data, sizeof ver);
    /* From version 0.2 on, `seen` is 64-bit (darknet's parser.c uses the same test, computed here
     * in 64 bits: the header is file data, and major * 10 must not overflow). */
    const int wide = (int64_t)ver[0] * 10 + ver[1] >= 2 && ver[0] < 1000 && ver[1] < 1000;
    const size_t header = 12 + (wide ? 8 : 4);
    const size_t payload = weights_payload_floats(net);
    const size_t expected = header + payload * sizeof(float);
    if (len != expected)
        return eng_err_set(err, ENG_ERR_INVALID, name,
                           "weights file is %zu bytes but the cfg needs %zu (header %zu + %zu floats);"
                           " %s", len, expected, header, payload,
                           len < expected ? "truncated?" : "wrong cfg for these weights?");
    size_t max_filters = 1;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].kind == ENG_LAYER_CONV && (size_t)net->layers[i].p.conv.filters > max_filters)
            max_filters = (size_t)net->layers[i].p.conv.filters;
    float *tmp = malloc(3 * max_filters * sizeof(float));
    if (!tmp)
        return eng_err_set(err, ENG_ERR_NOMEM, name, "out of memory");
    const unsigned char *cur = data + header;
    int rc = 0;
    for (int i = 0; i < net->n_layers && rc == 0; i++) {
        struct eng_layer *l = &net->layers[i];
        if (l->kind == ENG_LAYER_CONV)
            rc = drop_wino && eng_conv_wino_ok(l) ? load_conv_wino(l, &cur, tmp, name, err)
                                                  : load_conv(l, (float *)l->p.conv.weights, &cur, tmp, name, err);
    }
    free(tmp);
    return rc;
}

int eng_darknet_conv_prepare(struct eng_net *net, struct eng_err *err, const char *name)
{
    for (int i = 0; i < net->n_layers; i++)
        if (eng_conv_wino_prepare(&net->layers[i]))
            return eng_err_set(err, ENG_ERR_NOMEM, name, "out of memory for layer %d's Winograd weights", i);
    eng_conv_expdw_fuse(net);
    eng_conv_resadd_fuse(net);
    return eng_net_pack_weights(net, err); /* after Winograd took its layers */
}

int eng_read_file(const char *path, size_t max_bytes, unsigned char **data, size_t *len,
                  struct eng_err *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return eng_err_set(err, ENG_ERR_IO, path, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
        fclose(f);
        return eng_err_set(err, ENG_ERR_IO, path, "not a regular file");
    }
    if ((uint64_t)st.st_size > max_bytes) {
        fclose(f);
        return eng_err_set(err, ENG_ERR_TOO_LARGE, path, "file is %lld bytes, more than %zu",
                           (long long)st.st_size, max_bytes);
    }
    const size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return eng_err_set(err, ENG_ERR_NOMEM, path, "out of memory for %zu bytes", n);
    }
    const size_t got = fread(buf, 1, n, f);
    const int bad = ferror(f) || got != n;
    fclose(f);
    if (bad) {
        free(buf);
        return eng_err_set(err, ENG_ERR_IO, path, "read error (%zu of %zu bytes)", got, n);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

static char *model_name_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    const size_t n = dot && dot > base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, n);
}

int eng_darknet_load(const char *cfg_path, const char *weights_path, const char *names_path,
                     const struct eng_darknet_opts *opts, struct eng_net **out, struct eng_err *err)
{
    unsigned char *text = NULL, *weights = NULL;
    size_t text_len, weights_len;
    struct eng_net *net = NULL;
    int rc = -1;
    /* Prepared once, on the final weights, and after the weights file's buffer is freed: the peak of
     * a load is then the parameters and their transforms, not also the file (docs/PERFORMANCE.md). */
    if (eng_read_file(cfg_path, ENG_DARKNET_MAX_CFG_BYTES, &text, &text_len, err) ||
        eng_darknet_parse_cfg_unprepared((const char *)text, text_len, cfg_path, opts, &net, err))
        goto done;
    if (!(net->name = model_name_from_path(cfg_path))) {
        eng_err_set(err, ENG_ERR_NOMEM, cfg_path, "out of memory");
        goto done;
    }
    if (weights_path &&
        (eng_read_file(weights_path, (size_t)ENG_DARKNET_MAX_PARAMS * 4 + 64, &weights, &weights_len, err) ||
         read_weights(net, weights, weights_len, weights_path, 1, err)))
        goto done;
    free(weights);
    weights = NULL;
    if (eng_darknet_conv_prepare(net, err, weights_path ? weights_path : cfg_path))
        goto done;
    if (names_path && eng_net_load_names(net, names_path, err))
        goto done;
    *out = net;
    net = NULL;
    rc = 0;
done:
    eng_net_free(net);
    free(text);
    free(weights);
    return rc;
}
