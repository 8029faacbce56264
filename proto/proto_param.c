/* proto_param.c - value readers, messages and name hints shared by the request parsers. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto_param.h"
#include "proto_request.h" /* proto_base64_decode */

/* ---- describing what we got, for messages ---- */

void proto_quote(const char *s, char *buf, size_t size)
{
    size_t o = 0, i = 0;
    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return;
    }
    buf[o++] = '"';
    for (; s[i] && o + 5 < size && i < 40; i++)
        buf[o++] = (unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f ? s[i] : '?';
    if (s[i]) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

void proto_val_describe(const struct proto_val *v, char *buf, size_t size)
{
    char q[64];
    if (v->str) {
        proto_quote(v->str, buf, size);
        return;
    }
    switch (json_typeof(v->json)) {
    case JSON_OBJECT: snprintf(buf, size, "an object"); break;
    case JSON_ARRAY: snprintf(buf, size, "an array"); break;
    case JSON_STRING:
        proto_quote(json_string_value(v->json), q, sizeof q);
        snprintf(buf, size, "the string %s", q);
        break;
    case JSON_INTEGER: snprintf(buf, size, "%lld", (long long)json_integer_value(v->json)); break;
    case JSON_REAL: snprintf(buf, size, "%g", json_real_value(v->json)); break;
    case JSON_TRUE: snprintf(buf, size, "true"); break;
    case JSON_FALSE: snprintf(buf, size, "false"); break;
    case JSON_NULL: snprintf(buf, size, "null"); break;
    }
}

int proto_val_bad(struct proto_err *err, const char *field, const char *what, const struct proto_val *v)
{
    char got[96];
    proto_val_describe(v, got, sizeof got);
    return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field, "expected %s, got %s", what, got);
}

int proto_err_nomem(struct proto_err *err, const char *field)
{
    return proto_err_set(err, PROTO_ERR_INTERNAL, field, "out of memory");
}

/* ---- typed readers ---- */

int proto_val_number(const struct proto_val *v, double *out)
{
    if (v->json) {
        if (!json_is_number(v->json))
            return -1;
        *out = json_number_value(v->json);
        return 0;
    }
    const char *s = v->str;
    if (!*s || strspn(s, "0123456789+-.eE") != strlen(s))
        return -1;
    char *end;
    errno = 0;
    const double d = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(d))
        return -1;
    *out = d;
    return 0;
}

int proto_val_integer(const struct proto_val *v, long long *out)
{
    if (v->json) {
        if (!json_is_integer(v->json))
            return -1;
        *out = json_integer_value(v->json);
        return 0;
    }
    const char *s = v->str;
    const char *digits = *s == '+' || *s == '-' ? s + 1 : s;
    if (!*digits || strspn(digits, "0123456789") != strlen(digits))
        return -1;
    *out = strtoll(s, NULL, 10);
    return 0;
}

int proto_val_bool(const struct proto_val *v, int *out)
{
    if (v->json) {
        if (!json_is_boolean(v->json))
            return -1;
        *out = json_is_true(v->json);
        return 0;
    }
    if (!strcasecmp(v->str, "true") || !strcmp(v->str, "1"))
        *out = 1;
    else if (!strcasecmp(v->str, "false") || !strcmp(v->str, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

const char *proto_val_string(const struct proto_val *v)
{
    return v->json ? json_string_value(v->json) : v->str; /* NULL if not a JSON string */
}

/* ---- setters ---- */

int proto_val_set_unit(float *dst, const char *field, const struct proto_val *v, struct proto_err *err)
{
    double d;
    if (proto_val_number(v, &d) || !(d >= 0 && d <= 1))
        return proto_val_bad(err, field, "a number between 0 and 1", v);
    *dst = (float)d;
    return 0;
}

int proto_val_set_int(int *dst, long long lo, long long hi, const char *field, const struct proto_val *v,
                      struct proto_err *err)
{
    long long n;
    if (proto_val_integer(v, &n) || n < lo || n > hi) {
        char what[64];
        snprintf(what, sizeof what, "an integer between %lld and %lld", lo, hi);
        return proto_val_bad(err, field, what, v);
    }
    *dst = (int)n;
    return 0;
}

int proto_val_set_bool(int *dst, const char *field, const struct proto_val *v, struct proto_err *err)
{
    int b;
    if (proto_val_bool(v, &b))
        return proto_val_bad(err, field, v->json ? "true or false" : "true, false, 1 or 0", v);
    *dst = b;
    return 0;
}

/* ---- images as text ---- */

int proto_val_image_b64(const char *field, const struct proto_val *v, uint8_t **out, size_t *out_len,
                        struct proto_err *err)
{
    const char *s = proto_val_string(v);
    if (!s)
        return proto_val_bad(err, field, "a base64 string or a data: URI", v);
    size_t len = v->json ? json_string_length(v->json) : strlen(s);
    size_t skip = 0;
    if (len >= 5 && !strncasecmp(s, "data:", 5)) {
        const char *comma = memchr(s, ',', len);
        if (!comma)
            return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                                 "malformed data: URI (no ',' before the data)");
        const size_t hlen = (size_t)(comma - s);
        if (hlen < 5 + 7 || strncasecmp(comma - 7, ";base64", 7))
            return proto_err_set(err, PROTO_ERR_INVALID_PARAM, field,
                                 "only base64 data: URIs are accepted (data:image/jpeg;base64,...)");
        const char *type = s + 5;
        const size_t tlen = strcspn(type, ";,");
        if (tlen > 0 && (tlen < 6 || strncasecmp(type, "image/", 6))) {
            char t[64];
            snprintf(t, sizeof t, "%.*s", (int)(tlen < 40 ? tlen : 40), type);
            char q[64];
            proto_quote(t, q, sizeof q);
            return proto_err_set(err, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, field,
                                 "the data: URI's media type %s is not an image type", q);
        }
        skip = hlen + 1;
    }
    return proto_base64_decode(s + skip, len - skip, field, skip, out, out_len, err);
}

/* ---- names ---- */

void proto_field_name(const char *prefix, const char *key, char *buf, size_t size)
{
    const size_t n = strlen(prefix);
    snprintf(buf, size, "%s%s", prefix, key);
    for (char *p = buf + (n < size ? n : size - 1); *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
}

static size_t edit_distance(const char *a, const char *b)
{
    const size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40)
        return 99;
    size_t row[41];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            const size_t up = row[j];
            const size_t sub = diag + (a[i - 1] != b[j - 1]);
            const size_t del = row[j] + 1, ins = row[j - 1] + 1;
            row[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            diag = up;
        }
    }
    return row[lb];
}

const char *proto_suggest(const char *key, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        const char *name = names[i];
        const size_t kl = strlen(key), nl = strlen(name);
        const size_t shorter = kl < nl ? kl : nl;
        if (shorter >= 3 && !strncasecmp(key, name, shorter))
            return name; /* one is a prefix of the other: "confidence" / "conf", "image" / "image_b64" */
        const size_t d = edit_distance(key, name);
        if (d < best_d) {
            best_d = d;
            best = name;
        }
    }
    return best;
}

/* ---- JSON bodies ---- */

int proto_json_load_object(const char *body, size_t len, json_t **out, struct proto_err *err)
{
    *out = NULL;
    json_error_t jerr;
    json_t *doc = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &jerr);
    /* jansson reports some allocation failures as syntax errors, others without any text (and then
     * without setting the code byte json_error_code reads: test the text first). */
    if (!doc && (!jerr.text[0] || json_error_code(&jerr) == json_error_out_of_memory))
        return proto_err_nomem(err, "$");
    if (!doc)
        return proto_err_set(err, PROTO_ERR_BAD_JSON, "$", "invalid JSON at line %d, column %d: %s",
                             jerr.line, jerr.column, jerr.text);
    if (!json_is_object(doc)) {
        const struct proto_val v = {.json = doc};
        char got[96];
        proto_val_describe(&v, got, sizeof got);
        json_decref(doc);
        return proto_err_set(err, PROTO_ERR_BAD_JSON, "$", "expected a JSON object, got %s", got);
    }
    *out = doc;
    return 0;
}

int proto_val_set_string(char **dst, const char *field, const struct proto_val *v, struct proto_err *err)
{
    const char *s = proto_val_string(v);
    if (!s)
        return proto_val_bad(err, field, "a string", v);
    if (!(*dst = strdup(s)))
        return proto_err_nomem(err, field);
    return 0;
}

/* ---- parameter schemas ---- */

const struct proto_param_def *proto_schema_find(const struct proto_schema *s, const char *key, unsigned route,
                                                enum proto_dialect dialect)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct proto_param_def *p = &s->params[i];
        if ((p->routes & route) && !strcmp(p->name, key) &&
            (!p->deepstack_only || dialect == PROTO_DIALECT_DEEPSTACK))
            return p;
    }
    return NULL;
}

int proto_schema_set(const struct proto_schema *s, void *req, unsigned route, enum proto_dialect dialect,
                     const char *key, const char *value, struct proto_err *err)
{
    char field[PROTO_ERR_FIELD_MAX];
    proto_field_name("", key, field, sizeof field);
    const struct proto_param_def *p = proto_schema_find(s, key, route, dialect);
    if (!p)
        return dialect == PROTO_DIALECT_DEEPSTACK ? 0 : s->unknown(req, key, field, 1, err);
    const struct proto_val v = {.str = value ? value : ""};
    return s->apply(req, p, field, &v, err);
}

int proto_schema_parse_json(const struct proto_schema *s, void *req, unsigned route, enum proto_dialect dialect,
                            const char *body, size_t len, struct proto_err *err)
{
    json_t *doc;
    if (proto_json_load_object(body, len, &doc, err))
        return -1;
    int rc = 0;
    const char *key;
    json_t *value;
    json_object_foreach(doc, key, value) {
        char field[PROTO_ERR_FIELD_MAX];
        proto_field_name("$.", key, field, sizeof field);
        const struct proto_param_def *p = proto_schema_find(s, key, route, dialect);
        if (!p) {
            if (dialect != PROTO_DIALECT_DEEPSTACK)
                rc = s->unknown(req, key, field, 0, err);
        } else if (!json_is_null(value)) { /* null = not given */
            const struct proto_val v = {.json = value};
            rc = s->apply(req, p, field, &v, err);
        }
        if (rc)
            break;
    }
    json_decref(doc);
    return rc;
}
