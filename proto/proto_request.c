/* proto_request.c - parsing /v1/detect parameters from query strings, form fields and JSON bodies.
 *
 * Both sources end in the same setters: a value is either a string (query/form) or a json_t (JSON
 * body), wrapped in struct proto_val (proto_param.h), so each parameter's rules and messages are
 * written once. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto_labels.h"
#include "proto_param.h"
#include "proto_request.h"

enum kind { K_MODEL, K_CONF, K_IOU, K_AGNOSTIC, K_MAX_DET, K_CLASSES, K_EXIF, K_TIMEOUT, K_IMAGE_B64, K_API_KEY };

enum { ROUTE = 1 }; /* one route: every row's routes */

/* Names and aliases; the first entry of a kind is its canonical name. */
static const struct proto_param_def PARAMS[] = {
    {"model", K_MODEL, PROTO_PARAM_MODEL, ROUTE, 0, 0},
    {"conf", K_CONF, PROTO_PARAM_CONF, ROUTE, 0, 0},
    {"min_confidence", K_CONF, PROTO_PARAM_CONF, ROUTE, 0, 0}, /* DeepStack's name */
    {"iou", K_IOU, PROTO_PARAM_IOU, ROUTE, 0, 0},
    {"agnostic_nms", K_AGNOSTIC, PROTO_PARAM_AGNOSTIC, ROUTE, 0, 0},
    {"agnostic", K_AGNOSTIC, PROTO_PARAM_AGNOSTIC, ROUTE, 0, 0},
    {"max_det", K_MAX_DET, PROTO_PARAM_MAX_DET, ROUTE, 0, 0},
    {"classes", K_CLASSES, PROTO_PARAM_CLASSES, ROUTE, 0, 0},
    {"exif", K_EXIF, PROTO_PARAM_EXIF, ROUTE, 0, 0},
    {"timeout_ms", K_TIMEOUT, PROTO_PARAM_TIMEOUT, ROUTE, 0, 0},
    {"image_b64", K_IMAGE_B64, PROTO_PARAM_IMAGE, ROUTE, 0, 0},
    {"api_key", K_API_KEY, PROTO_PARAM_API_KEY, ROUTE, 0, 1},
};
#define N_PARAMS (sizeof PARAMS / sizeof PARAMS[0])

void proto_detect_request_init(struct proto_detect_request *req, enum proto_dialect dialect)
{
    memset(req, 0, sizeof *req);
    req->dialect = dialect;
    req->conf = PROTO_CONF_DEFAULT;
    req->iou = PROTO_IOU_DEFAULT;
    req->max_det = PROTO_MAX_DET_DEFAULT;
    req->exif = 1;
}

static void free_classes(struct proto_detect_request *req)
{
    for (int i = 0; i < req->n_classes; i++)
        free(req->classes[i]);
    free(req->classes);
    req->classes = NULL;
    req->n_classes = 0;
}

void proto_detect_request_release(struct proto_detect_request *req)
{
    if (!req)
        return;
    free(req->model);
    free_classes(req);
    free(req->image_owned);
    if (req->api_key) {
        explicit_bzero(req->api_key, strlen(req->api_key));
        free(req->api_key);
    }
    proto_detect_request_init(req, req->dialect);
}

/* ---- parameters ---- */

static int valid_name(const char *s)
{
    const size_t n = strlen(s);
    return n > 0 && n <= PROTO_NAME_MAX &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static int add_class(struct proto_detect_request *req, const char *name, size_t len,
                     const char *field, struct proto_err *err)
{
    if (len == 0)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "expected class names or ids, got an empty entry");
    if (len > PROTO_NAME_MAX)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "class name longer than %d characters", PROTO_NAME_MAX);
    if (req->n_classes >= PROTO_CLASSES_MAX)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "more than %d classes",
                             PROTO_CLASSES_MAX);
    char *copy = strndup(name, len);
    if (!copy)
        return proto_err_nomem(err, field);
    if (!req->classes) {
        req->classes = calloc(PROTO_CLASSES_MAX, sizeof *req->classes);
        if (!req->classes) {
            free(copy);
            return proto_err_nomem(err, field);
        }
    }
    req->classes[req->n_classes++] = copy;
    return 0;
}

/* "person, car,2": entries split on commas, spaces around them dropped. */
static int add_class_list(struct proto_detect_request *req, const char *s, const char *field,
                          struct proto_err *err)
{
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        const char *b = s;
        while (b < end && isspace((unsigned char)*b))
            b++;
        const char *e = end;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (add_class(req, b, (size_t)(e - b), field, err))
            return -1;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

static int set_classes(struct proto_detect_request *req, const char *field, const struct proto_val *v,
                       struct proto_err *err)
{
    snprintf(req->classes_field, sizeof req->classes_field, "%s", field);
    const char *s = proto_val_string(v);
    if (s)
        return add_class_list(req, s, field, err);
    if (!json_is_array(v->json))
        return proto_val_bad(err, field, "a list of class names or ids", v);
    req->classes_indexed = 1;
    size_t i;
    json_t *item;
    json_array_foreach(v->json, i, item) {
        char path[PROTO_ERR_FIELD_MAX];
        snprintf(path, sizeof path, "%s[%zu]", field, i);
        if (json_is_string(item)) {
            const char *name = json_string_value(item);
            if (add_class(req, name, strlen(name), path, err))
                return -1;
        } else if (json_is_integer(item) && json_integer_value(item) >= 0) {
            char id[32];
            const int n = snprintf(id, sizeof id, "%lld", (long long)json_integer_value(item));
            if (add_class(req, id, (size_t)n, path, err))
                return -1;
        } else {
            const struct proto_val iv = {.json = item};
            return proto_val_bad(err, path, "a class name or a non-negative class id", &iv);
        }
    }
    if (req->n_classes == 0)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "expected class names or ids, got an empty list (omit it for all classes)");
    return 0;
}

static int set_image_owned(struct proto_detect_request *req, uint8_t *data, size_t len)
{
    req->image_owned = data;
    req->image = data;
    req->image_len = len;
    req->given |= PROTO_PARAM_IMAGE;
    return 0;
}

/* "data:image/jpeg;base64,...." or plain base64. */
static int set_image_b64(struct proto_detect_request *req, const char *field, const struct proto_val *v,
                         struct proto_err *err)
{
    uint8_t *data;
    size_t n;
    if (proto_val_image_b64(field, v, &data, &n, err))
        return -1;
    return set_image_owned(req, data, n);
}

static int apply(void *r, const struct proto_param_def *p, const char *field, const struct proto_val *v,
                 struct proto_err *err)
{
    struct proto_detect_request *req = r;
    if (req->given & p->bit)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "given more than once");
    int rc = 0;
    switch (p->kind) {
    case K_MODEL: {
        const char *s = proto_val_string(v);
        if (!s || !valid_name(s))
            return proto_val_bad(err, field,
                             "a model name (letters, digits, '.', '_' or '-'; at most 128)", v);
        req->model = strdup(s);
        if (!req->model)
            return proto_err_nomem(err, field);
        break;
    }
    case K_CONF: rc = proto_val_set_unit(&req->conf, field, v, err); break;
    case K_IOU: rc = proto_val_set_unit(&req->iou, field, v, err); break;
    case K_AGNOSTIC: rc = proto_val_set_bool(&req->agnostic, field, v, err); break;
    case K_MAX_DET: rc = proto_val_set_int(&req->max_det, 1, PROTO_MAX_DET_MAX, field, v, err); break;
    case K_CLASSES:
        rc = set_classes(req, field, v, err);
        if (rc)
            free_classes(req); /* no half-read list */
        break;
    case K_EXIF: rc = proto_val_set_bool(&req->exif, field, v, err); break;
    case K_TIMEOUT: rc = proto_val_set_int(&req->timeout_ms, 1, PROTO_TIMEOUT_MS_MAX, field, v, err); break;
    case K_IMAGE_B64: rc = set_image_b64(req, field, v, err); break;
    case K_API_KEY: rc = proto_val_set_string(&req->api_key, field, v, err); break;
    }
    if (rc == 0)
        req->given |= p->bit;
    return rc;
}

/* ---- unknown names ---- */

/* The parameter a mistyped key most likely meant ("confidence" -> "conf"), or NULL. */
static const char *suggest(const char *key, enum proto_dialect dialect)
{
    const char *names[N_PARAMS];
    size_t n = 0;
    for (size_t i = 0; i < N_PARAMS; i++)
        if (!PARAMS[i].deepstack_only || dialect == PROTO_DIALECT_DEEPSTACK)
            names[n++] = PARAMS[i].name;
    return proto_suggest(key, names, n);
}

static int unknown_param(const char *key, const char *field, enum proto_dialect dialect,
                         struct proto_err *err)
{
    if (!strcmp(key, "api_key"))
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "unknown parameter: send API keys in the Authorization (Bearer) or "
                             "X-API-Key header");
    const char *hint = suggest(key, dialect);
    if (hint)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "unknown parameter (did you mean \"%s\"?)", hint);
    return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                         "unknown parameter (known: model, conf, iou, agnostic_nms, max_det, "
                         "classes, exif, timeout_ms, image_b64)");
}

static int unknown(void *r, const char *key, const char *field, int text, struct proto_err *err)
{
    const struct proto_detect_request *req = r;
    if (text && !strcmp(key, "image"))
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, PROTO_IMAGE_AS_TEXT_HINT);
    return unknown_param(key, field, req->dialect, err);
}

static const struct proto_schema SCHEMA = {PARAMS, N_PARAMS, apply, unknown};

int proto_detect_request_set(struct proto_detect_request *req, const char *key, const char *value,
                             struct proto_err *err)
{
    return proto_schema_set(&SCHEMA, req, ROUTE, req->dialect, key, value, err);
}

int proto_detect_request_set_image_static(struct proto_detect_request *req, const uint8_t *data,
                                          size_t len, struct proto_err *err)
{
    if (req->given & PROTO_PARAM_IMAGE)
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, "image", "given more than once");
    static const uint8_t empty[1];
    req->image = data ? data : empty;
    req->image_len = data ? len : 0;
    req->given |= PROTO_PARAM_IMAGE;
    return 0;
}

int proto_detect_request_parse_json(struct proto_detect_request *req, const char *body, size_t len,
                                    struct proto_err *err)
{
    req->from_json = 1;
    return proto_schema_parse_json(&SCHEMA, req, ROUTE, req->dialect, body, len, err);
}

int proto_detect_request_check(const struct proto_detect_request *req, struct proto_err *err)
{
    const char *field = req->from_json ? "$.image_b64" : "image";
    if (!(req->given & PROTO_PARAM_IMAGE))
        return proto_err_set(err, PROTO_ERR_BAD_REQUEST, field,
                             "missing: send the image as the raw body (Content-Type image/jpeg or "
                             "image/png), as the multipart file field \"image\", or base64-encoded "
                             "as \"image_b64\" in a JSON body");
    if (req->image_len == 0)
        return proto_err_set(err, PROTO_ERR_BAD_IMAGE, field, "empty (0 bytes)");
    return 0;
}

int proto_detect_request_params(const struct proto_detect_request *req, const struct eng_net *net,
                                const struct eng_detect_params *defaults, unsigned char *class_mask,
                                struct eng_detect_params *out, struct proto_err *err)
{
    if (defaults)
        *out = *defaults;
    else
        eng_detect_params_default(out);
    if (req->given & PROTO_PARAM_CONF)
        out->conf = req->conf;
    else if (req->dialect == PROTO_DIALECT_DEEPSTACK)
        out->conf = PROTO_DEEPSTACK_CONF_DEFAULT; /* what DeepStack's clients expect when they send none */
    if (req->given & PROTO_PARAM_IOU)
        out->iou = req->iou;
    if (req->given & PROTO_PARAM_AGNOSTIC)
        out->agnostic = req->agnostic;
    if (req->given & PROTO_PARAM_MAX_DET)
        out->max_det = req->max_det;
    if (!(req->given & PROTO_PARAM_CLASSES))
        return 0;
    memset(class_mask, 0, (size_t)net->classes);
    for (int i = 0; i < req->n_classes; i++) {
        const char *name = req->classes[i];
        const int id = proto_class_find(net, req->dialect, name);
        if (id >= 0) {
            class_mask[id] = 1;
            continue;
        }
        char field[PROTO_ERR_FIELD_MAX], q[64];
        if (req->classes_indexed)
            snprintf(field, sizeof field, "%.100s[%d]", req->classes_field, i);
        else
            snprintf(field, sizeof field, "%s", req->classes_field);
        proto_quote(name, q, sizeof q);
        const char *model = net->name ? net->name : "the model";
        if (strspn(name, "0123456789") == strlen(name))
            return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                                 "class id %s out of range: %s has %d classes (0 to %d)", name,
                                 model, net->classes, net->classes - 1);
        return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                             "unknown class %s for %s (GET /v1/models lists its classes)", q, model);
    }
    out->class_allowed = class_mask;
    return 0;
}

/* ---- base64 ---- */

/* 0..63, or -1; *alphabet: 1 for '+' '/', 2 for '-' '_', unchanged otherwise. */
static int b64_digit(unsigned char c, int *alphabet)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '/') {
        *alphabet = 1;
        return c == '+' ? 62 : 63;
    }
    if (c == '-' || c == '_') {
        *alphabet = 2;
        return c == '-' ? 62 : 63;
    }
    return -1;
}

int proto_base64_decode(const char *in, size_t len, const char *field, size_t offset_base,
                        uint8_t **out, size_t *out_len, struct proto_err *err)
{
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf)
        return proto_err_nomem(err, field);
    size_t o = 0, n = 0, pad = 0;
    unsigned acc = 0;
    int bits = 0, alphabet = 0;
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')
            continue;
        if (c == '=') {
            if (++pad > 2) {
                proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                              "invalid base64: too much '=' padding at offset %zu", offset_base + i);
                goto fail;
            }
            continue;
        }
        if (pad) {
            proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                          "invalid base64: data after '=' padding at offset %zu", offset_base + i);
            goto fail;
        }
        int a = 0;
        const int d = b64_digit(c, &a);
        if (d < 0) {
            if (c >= 0x20 && c < 0x7f)
                proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                              "invalid base64: unexpected character '%c' at offset %zu", c,
                              offset_base + i);
            else
                proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                              "invalid base64: unexpected byte 0x%02x at offset %zu", c,
                              offset_base + i);
            goto fail;
        }
        if (a) {
            if (alphabet && a != alphabet) {
                proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                              "invalid base64: mixes the standard (+/) and URL-safe (-_) alphabets "
                              "at offset %zu",
                              offset_base + i);
                goto fail;
            }
            alphabet = a;
        }
        acc = (acc << 6 | (unsigned)d) & 0xffffffu;
        bits += 6;
        n++;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (uint8_t)(acc >> bits);
        }
    }
    if (n % 4 == 1) {
        proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                      "invalid base64: truncated (%zu digits leave a lone 6-bit group)", n);
        goto fail;
    }
    if (pad && (n + pad) % 4 != 0) {
        proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                      "invalid base64: wrong padding (%zu '=' after %zu digits)", pad, n);
        goto fail;
    }
    *out = buf;
    *out_len = o;
    return 0;
fail:
    free(buf);
    return -1;
}
