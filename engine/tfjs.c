/* tfjs.c - TF.js weights-manifest loader (the engine's one use of jansson, see tfjs.h).
 *
 * Two passes: the manifest becomes a list of tensor specs (name, shape, encoding) whose sizes are all
 * checked, then each group's shards are sized with stat() against what its tensors need before a
 * byte is read, read into one buffer and decoded into the table's float block. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "tfjs.h"

#define MAX_TENSORS 65536
#define MAX_SHARDS 4096
#define PATH_MAX_LEN 4096

enum encoding { ENC_FLOAT32 = 0, ENC_UINT8, ENC_UINT16, ENC_FLOAT16 };

static const size_t enc_bytes[] = {[ENC_FLOAT32] = 4, [ENC_UINT8] = 1, [ENC_UINT16] = 2,
                                   [ENC_FLOAT16] = 2};

struct spec {
    enum encoding enc;
    double scale, min; /* uint8/uint16 */
    int group;
    size_t offset; /* bytes into its group's concatenated shards */
};

struct group {
    int n_paths;
    char **paths; /* resolved: the manifest's folder + the listed name */
    size_t bytes; /* what its tensors need */
};

struct loader {
    const char *manifest;
    struct eng_err *err;
    struct eng_tfjs_weights *w;
    struct spec *specs;
    struct group *groups;
    int n_groups;
};

void eng_tfjs_free(struct eng_tfjs_weights *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n; i++)
        free(w->tensors[i].name);
    free(w->tensors);
    free(w->data);
    free(w->path);
    free(w);
}

static void loader_free_groups(struct loader *ld)
{
    for (int g = 0; g < ld->n_groups; g++) {
        for (int i = 0; i < ld->groups[g].n_paths; i++)
            free(ld->groups[g].paths[i]);
        free(ld->groups[g].paths);
    }
    free(ld->groups);
}

/* ---- manifest -------------------------------------------------------------------------------- */

/* A shard name must be relative and stay inside the manifest's folder. */
static int shard_name_ok(const char *s)
{
    if (!*s || *s == '/' || strlen(s) >= PATH_MAX_LEN)
        return 0;
    for (const char *p = s; *p;) {
        const char *e = strchr(p, '/');
        const size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return 0;
        p += n + (e ? 1 : 0);
    }
    return 1;
}

static char *join_dir(const char *manifest, const char *name)
{
    const char *slash = strrchr(manifest, '/');
    const size_t dlen = slash ? (size_t)(slash - manifest) + 1 : 0;
    char *p = malloc(dlen + strlen(name) + 1);
    if (!p)
        return NULL;
    memcpy(p, manifest, dlen);
    strcpy(p + dlen, name);
    return p;
}

static int parse_paths(struct loader *ld, int g, json_t *paths)
{
    struct group *gr = &ld->groups[g];
    if (!json_is_array(paths) || json_array_size(paths) == 0 || json_array_size(paths) > MAX_SHARDS)
        return eng_err_set(ld->err, ENG_ERR_INVALID, ld->manifest,
                           "$[%d].paths: expected a non-empty array of shard file names", g);
    gr->paths = calloc(json_array_size(paths), sizeof *gr->paths);
    if (!gr->paths)
        return eng_err_set(ld->err, ENG_ERR_NOMEM, ld->manifest, "out of memory");
    for (size_t i = 0; i < json_array_size(paths); i++) {
        const char *s = json_string_value(json_array_get(paths, i));
        if (!s || !shard_name_ok(s))
            return eng_err_set(ld->err, ENG_ERR_INVALID, ld->manifest,
                               "$[%d].paths[%zu]: expected a relative file name inside the "
                               "manifest's folder", g, i);
        if (!(gr->paths[gr->n_paths] = join_dir(ld->manifest, s)))
            return eng_err_set(ld->err, ENG_ERR_NOMEM, ld->manifest, "out of memory");
        gr->n_paths++;
    }
    return 0;
}

/* The place of a weight entry: its name when it has one, else its JSON path. */
static const char *entry_where(const char *name, char *buf, size_t size, int g, size_t i)
{
    if (name && *name)
        return name;
    snprintf(buf, size, "$[%d].weights[%zu]", g, i);
    return buf;
}

static int parse_quantization(struct loader *ld, json_t *q, const char *where, struct spec *sp)
{
    const char *qd = json_string_value(json_object_get(q, "dtype"));
    if (!json_is_object(q) || !qd)
        return eng_err_set(ld->err, ENG_ERR_INVALID, where,
                           "quantization must be an object with a dtype (in %s)", ld->manifest);
    if (strcmp(qd, "float16") == 0) {
        sp->enc = ENC_FLOAT16;
        return 0;
    }
    if (strcmp(qd, "uint8") && strcmp(qd, "uint16"))
        return eng_err_set(ld->err, ENG_ERR_UNSUPPORTED, where,
                           "unknown quantization dtype '%.40s' (expected uint8, uint16 or float16; "
                           "in %s)", qd, ld->manifest);
    sp->enc = qd[4] == '8' ? ENC_UINT8 : ENC_UINT16;
    json_t *scale = json_object_get(q, "scale"), *min = json_object_get(q, "min");
    if (!json_is_number(scale) || !json_is_number(min))
        return eng_err_set(ld->err, ENG_ERR_INVALID, where,
                           "%s quantization needs numeric scale and min (in %s)", qd, ld->manifest);
    sp->scale = json_number_value(scale);
    sp->min = json_number_value(min);
    if (!isfinite(sp->scale) || !isfinite(sp->min))
        return eng_err_set(ld->err, ENG_ERR_INVALID, where, "scale and min must be finite (in %s)",
                           ld->manifest);
    return 0;
}

static int parse_weight(struct loader *ld, int g, size_t i, json_t *e, int k)
{
    struct eng_tfjs_tensor *t = &ld->w->tensors[k];
    struct spec *sp = &ld->specs[k];
    char buf[64];
    const char *name = json_string_value(json_object_get(e, "name"));
    const char *where = entry_where(name, buf, sizeof buf, g, i);
    if (!json_is_object(e) || !name || !*name)
        return eng_err_set(ld->err, ENG_ERR_INVALID, ld->manifest,
                           "%s: expected an object with a non-empty name", where);
    if (!(t->name = strdup(name)))
        return eng_err_set(ld->err, ENG_ERR_NOMEM, where, "out of memory");
    if (eng_tfjs_find(ld->w, name) != t)
        return eng_err_set(ld->err, ENG_ERR_INVALID, where, "tensor name appears twice in %s",
                           ld->manifest);
    json_t *shape = json_object_get(e, "shape");
    if (!json_is_array(shape) || json_array_size(shape) > ENG_TFJS_MAX_RANK)
        return eng_err_set(ld->err, ENG_ERR_INVALID, where,
                           "shape must be an array of at most %d sizes (in %s)", ENG_TFJS_MAX_RANK,
                           ld->manifest);
    t->rank = (int)json_array_size(shape);
    t->size = 1;
    for (int d = 0; d < t->rank; d++) {
        json_t *v = json_array_get(shape, (size_t)d);
        const json_int_t n = json_is_integer(v) ? json_integer_value(v) : -1;
        if (n < 0 || (uint64_t)n > ENG_TFJS_MAX_BYTES)
            return eng_err_set(ld->err, ENG_ERR_INVALID, where,
                               "shape[%d] must be an integer in 0..%zu (in %s)", d,
                               ENG_TFJS_MAX_BYTES, ld->manifest);
        t->shape[d] = (int)n;
        if (n && t->size > ENG_TFJS_MAX_BYTES / (size_t)n)
            return eng_err_set(ld->err, ENG_ERR_TOO_LARGE, where, "tensor is too large (in %s)",
                               ld->manifest);
        t->size *= (size_t)n;
    }
    const char *dtype = json_string_value(json_object_get(e, "dtype"));
    if (!dtype)
        return eng_err_set(ld->err, ENG_ERR_INVALID, where, "missing dtype (in %s)", ld->manifest);
    if (strcmp(dtype, "float32") && strcmp(dtype, "float16"))
        return eng_err_set(ld->err, ENG_ERR_UNSUPPORTED, where,
                           "unsupported dtype '%.40s' (expected float32; in %s)", dtype,
                           ld->manifest);
    sp->enc = dtype[5] == '1' ? ENC_FLOAT16 : ENC_FLOAT32;
    sp->group = g;
    json_t *q = json_object_get(e, "quantization");
    if (q && !json_is_null(q) && parse_quantization(ld, q, where, sp))
        return -1;
    return 0;
}

static int parse_manifest(struct loader *ld, json_t *root)
{
    if (!json_is_array(root) || json_array_size(root) == 0)
        return eng_err_set(ld->err, ENG_ERR_INVALID, ld->manifest,
                           "expected a JSON array of weight groups");
    size_t n = 0;
    for (size_t g = 0; g < json_array_size(root); g++) {
        json_t *ws = json_object_get(json_array_get(root, g), "weights");
        if (!json_is_array(ws))
            return eng_err_set(ld->err, ENG_ERR_INVALID, ld->manifest,
                               "$[%zu]: expected an object with a weights array", g);
        n += json_array_size(ws);
    }
    if (n == 0 || n > MAX_TENSORS || json_array_size(root) > MAX_TENSORS)
        return eng_err_set(ld->err, ENG_ERR_INVALID, ld->manifest,
                           "%zu tensors: expected 1..%d", n, MAX_TENSORS);
    ld->w->tensors = calloc(n, sizeof *ld->w->tensors);
    ld->specs = calloc(n, sizeof *ld->specs);
    ld->groups = calloc(json_array_size(root), sizeof *ld->groups);
    if (!ld->w->tensors || !ld->specs || !ld->groups)
        return eng_err_set(ld->err, ENG_ERR_NOMEM, ld->manifest, "out of memory");
    int k = 0;
    for (size_t g = 0; g < json_array_size(root); g++) {
        json_t *grp = json_array_get(root, g);
        ld->n_groups = (int)g + 1;
        if (parse_paths(ld, (int)g, json_object_get(grp, "paths")))
            return -1;
        json_t *ws = json_object_get(grp, "weights");
        size_t offset = 0;
        for (size_t i = 0; i < json_array_size(ws); i++, k++) {
            ld->w->n = k + 1;
            if (parse_weight(ld, (int)g, i, json_array_get(ws, i), k))
                return -1;
            ld->specs[k].offset = offset;
            offset += ld->w->tensors[k].size * enc_bytes[ld->specs[k].enc];
            ld->w->total += ld->w->tensors[k].size;
            if (offset > ENG_TFJS_MAX_BYTES || ld->w->total > ENG_TFJS_MAX_BYTES)
                return eng_err_set(ld->err, ENG_ERR_TOO_LARGE, ld->w->tensors[k].name,
                                   "the tensors of %s need more than %zu bytes", ld->manifest,
                                   ENG_TFJS_MAX_BYTES);
        }
        ld->groups[g].bytes = offset;
    }
    return 0;
}

/* ---- shards ---------------------------------------------------------------------------------- */

/* The first tensor of group g that does not fit in `have` bytes. */
static int first_cut_tensor(const struct loader *ld, int g, size_t have)
{
    for (int k = 0; k < ld->w->n; k++) {
        const size_t end = ld->specs[k].offset + ld->w->tensors[k].size * enc_bytes[ld->specs[k].enc];
        if (ld->specs[k].group == g && end > have)
            return k;
    }
    return -1;
}

static int size_shards(struct loader *ld, int g, size_t *have)
{
    const struct group *gr = &ld->groups[g];
    *have = 0;
    for (int i = 0; i < gr->n_paths; i++) {
        struct stat st;
        if (stat(gr->paths[i], &st) != 0) {
            /* name the first tensor that lives in the missing shard */
            const int k = first_cut_tensor(ld, g, *have);
            return eng_err_set(ld->err, ENG_ERR_IO, k >= 0 ? ld->w->tensors[k].name : gr->paths[i],
                               "cannot open weights shard %s (listed in %s): %s", gr->paths[i],
                               ld->manifest, strerror(errno));
        }
        if (!S_ISREG(st.st_mode))
            return eng_err_set(ld->err, ENG_ERR_IO, gr->paths[i], "not a regular file");
        if ((uint64_t)st.st_size > ENG_TFJS_MAX_BYTES - *have)
            return eng_err_set(ld->err, ENG_ERR_TOO_LARGE, gr->paths[i],
                               "shards are larger than %zu bytes", ENG_TFJS_MAX_BYTES);
        *have += (size_t)st.st_size;
    }
    if (*have < gr->bytes) {
        const int k = first_cut_tensor(ld, g, *have);
        const size_t start = ld->specs[k].offset;
        return eng_err_set(ld->err, ENG_ERR_INVALID, ld->w->tensors[k].name,
                           "weights truncated: the tensor needs bytes %zu..%zu of %s but the shards "
                           "hold %zu bytes", start,
                           start + ld->w->tensors[k].size * enc_bytes[ld->specs[k].enc],
                           gr->paths[gr->n_paths - 1], *have);
    }
    if (*have > gr->bytes)
        return eng_err_set(ld->err, ENG_ERR_INVALID, gr->paths[gr->n_paths - 1],
                           "shards hold %zu bytes but the tensors listed in %s need %zu: %zu bytes "
                           "too many (wrong manifest for these weights?)", *have, ld->manifest,
                           gr->bytes, *have - gr->bytes);
    return 0;
}

static int read_shards(struct loader *ld, int g, unsigned char *buf)
{
    const struct group *gr = &ld->groups[g];
    size_t at = 0;
    for (int i = 0; i < gr->n_paths; i++) {
        FILE *f = fopen(gr->paths[i], "rb");
        if (!f)
            return eng_err_set(ld->err, ENG_ERR_IO, gr->paths[i], "cannot open: %s", strerror(errno));
        struct stat st;
        const int ok = fstat(fileno(f), &st) == 0 && (uint64_t)st.st_size <= gr->bytes - at;
        const size_t n = ok ? (size_t)st.st_size : 0;
        const size_t got = ok ? fread(buf + at, 1, n, f) : 0;
        const int bad = !ok || ferror(f) || got != n;
        fclose(f);
        if (bad) /* the file changed since size_shards() */
            return eng_err_set(ld->err, ENG_ERR_IO, gr->paths[i], "read error (%zu bytes read)", got);
        at += n;
    }
    if (at != gr->bytes)
        return eng_err_set(ld->err, ENG_ERR_IO, gr->paths[gr->n_paths - 1],
                           "shards changed while being read");
    return 0;
}

float eng_tfjs_half_to_float(unsigned short h)
{
    const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)mant, -24); /* subnormal (or zero) */
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexpf((float)(mant | 0x400), exp - 25);
    return sign ? -v : v;
}

static void decode(const struct spec *sp, const unsigned char *p, size_t n, float *dst)
{
    switch (sp->enc) {
    case ENC_FLOAT32:
        for (size_t i = 0; i < n; i++, p += 4) {
            const uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                               (uint32_t)p[3] << 24;
            memcpy(&dst[i], &u, sizeof u);
        }
        return;
    case ENC_UINT8: /* TF.js: Float32Array.from(q, v => v * scale + min), in double */
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)((double)p[i] * sp->scale + sp->min);
        return;
    case ENC_UINT16:
        for (size_t i = 0; i < n; i++, p += 2)
            dst[i] = (float)((double)(p[0] | p[1] << 8) * sp->scale + sp->min);
        return;
    case ENC_FLOAT16:
        for (size_t i = 0; i < n; i++, p += 2)
            dst[i] = eng_tfjs_half_to_float((unsigned short)(p[0] | p[1] << 8));
        return;
    }
}

static int load_groups(struct loader *ld)
{
    size_t have;
    for (int g = 0; g < ld->n_groups; g++)
        if (size_shards(ld, g, &have))
            return -1;
    ld->w->data = malloc((ld->w->total ? ld->w->total : 1) * sizeof(float));
    if (!ld->w->data)
        return eng_err_set(ld->err, ENG_ERR_NOMEM, ld->manifest, "out of memory for %zu weights",
                           ld->w->total);
    size_t at = 0;
    for (int g = 0; g < ld->n_groups; g++) {
        unsigned char *buf = malloc(ld->groups[g].bytes ? ld->groups[g].bytes : 1);
        if (!buf)
            return eng_err_set(ld->err, ENG_ERR_NOMEM, ld->manifest, "out of memory");
        if (read_shards(ld, g, buf)) {
            free(buf);
            return -1;
        }
        for (int k = 0; k < ld->w->n; k++) {
            if (ld->specs[k].group != g)
                continue;
            struct eng_tfjs_tensor *t = &ld->w->tensors[k];
            decode(&ld->specs[k], buf + ld->specs[k].offset, t->size, ld->w->data + at);
            t->data = ld->w->data + at;
            at += t->size;
        }
        free(buf);
    }
    for (int k = 0; k < ld->w->n; k++) {
        const struct eng_tfjs_tensor *t = &ld->w->tensors[k];
        for (size_t i = 0; i < t->size; i++)
            if (!isfinite(t->data[i]))
                return eng_err_set(ld->err, ENG_ERR_INVALID, t->name,
                                   "value %zu is not finite (in %s)", i, ld->manifest);
    }
    return 0;
}

int eng_tfjs_load(const char *manifest_path, struct eng_tfjs_weights **out, struct eng_err *err)
{
    struct loader ld = {.manifest = manifest_path, .err = err};
    json_error_t jerr;
    int rc = -1;
    json_t *root = json_load_file(manifest_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        /* jansson's own allocation failures are not a bad file: say so, not "cannot read". When
         * its lexer cannot allocate its buffer it returns without any text, and without setting
         * the code byte json_error_code reads: test the text first. */
        if (jerr.text[0] == '\0' || json_error_code(&jerr) == json_error_out_of_memory)
            return eng_err_set(err, ENG_ERR_NOMEM, manifest_path, "out of memory reading the manifest");
        if (jerr.line > 0)
            return eng_err_set_line(err, ENG_ERR_INVALID, manifest_path, jerr.line,
                                    "malformed manifest: %s", jerr.text);
        return eng_err_set(err, ENG_ERR_IO, manifest_path, "cannot read manifest: %s", jerr.text);
    }
    if (!(ld.w = calloc(1, sizeof *ld.w)) || !(ld.w->path = strdup(manifest_path))) {
        eng_err_set(err, ENG_ERR_NOMEM, manifest_path, "out of memory");
        goto done;
    }
    if (parse_manifest(&ld, root) || load_groups(&ld))
        goto done;
    *out = ld.w;
    ld.w = NULL;
    rc = 0;
done:
    json_decref(root);
    loader_free_groups(&ld);
    free(ld.specs);
    eng_tfjs_free(ld.w);
    return rc;
}

/* ---- lookups and layouts --------------------------------------------------------------------- */

const struct eng_tfjs_tensor *eng_tfjs_find(const struct eng_tfjs_weights *w, const char *name)
{
    for (int i = 0; w && i < w->n; i++)
        if (w->tensors[i].name && strcmp(w->tensors[i].name, name) == 0)
            return &w->tensors[i];
    return NULL;
}

static void shape_str(const int *shape, int rank, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < rank && n < size; d++)
        n += (size_t)snprintf(buf + n, size - n, "%s%d", d ? ", " : "", shape[d]);
    if (n < size)
        snprintf(buf + n, size - n, "]");
}

const float *eng_tfjs_get(const struct eng_tfjs_weights *w, const char *name, int rank,
                          const int *shape, struct eng_err *err)
{
    const struct eng_tfjs_tensor *t = eng_tfjs_find(w, name);
    if (!t) {
        eng_err_set(err, ENG_ERR_INVALID, name, "tensor missing from %s",
                    w ? w->path : "(no weights)");
        return NULL;
    }
    int same = t->rank == rank;
    for (int d = 0; same && d < rank; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char want[96], have[96];
        shape_str(shape, rank, want, sizeof want);
        shape_str(t->shape, t->rank, have, sizeof have);
        eng_err_set(err, ENG_ERR_INVALID, name, "shape is %s but the network needs %s (in %s)",
                    have, want, w->path);
        return NULL;
    }
    return t->data;
}

void eng_tfjs_conv_to_engine(const float *src, int kh, int kw, int in, int out, float *dst)
{
    for (int y = 0; y < kh; y++)
        for (int x = 0; x < kw; x++)
            for (int i = 0; i < in; i++)
                for (int o = 0; o < out; o++)
                    dst[(((size_t)o * in + i) * kh + y) * kw + x] =
                        src[(((size_t)y * kw + x) * in + i) * out + o];
}

void eng_tfjs_depthwise_to_engine(const float *src, int kh, int kw, int c, float *dst)
{
    for (int y = 0; y < kh; y++)
        for (int x = 0; x < kw; x++)
            for (int ch = 0; ch < c; ch++)
                dst[((size_t)ch * kh + y) * kw + x] = src[((size_t)y * kw + x) * c + ch];
}

void eng_tfjs_dense_to_engine(const float *src, int in, int out, float *dst)
{
    for (int i = 0; i < in; i++)
        for (int o = 0; o < out; o++)
            dst[(size_t)o * in + i] = src[(size_t)i * out + o];
}
