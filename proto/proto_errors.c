/* proto_errors.c - the error table and the error reply bodies. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto_errors.h"
#include "proto_json.h"
#include "proto_output.h"

static const struct proto_code_info CODES[PROTO_CODE_COUNT] = {
    [PROTO_OK] = {"OK", 200, "ok"},
    [PROTO_ERR_BAD_REQUEST] = {"BAD_REQUEST", 400, "malformed request"},
    [PROTO_ERR_INVALID_PARAM] = {"INVALID_PARAM", 400, "invalid parameter"},
    [PROTO_ERR_BAD_JSON] = {"BAD_JSON", 400, "the body is not a valid JSON object"},
    [PROTO_ERR_BAD_IMAGE] = {"BAD_IMAGE", 400, "the image is corrupt or truncated"},
    [PROTO_ERR_UNAUTHORIZED] = {"UNAUTHORIZED", 401, "missing or invalid API key"},
    [PROTO_ERR_FORBIDDEN] = {"FORBIDDEN", 403, "this API key may not call this route"},
    [PROTO_ERR_NOT_FOUND] = {"NOT_FOUND", 404, "no such route"},
    [PROTO_ERR_MODEL_NOT_FOUND] = {"MODEL_NOT_FOUND", 404, "no model is loaded under that name"},
    [PROTO_ERR_METHOD_NOT_ALLOWED] = {"METHOD_NOT_ALLOWED", 405, "method not allowed on this route"},
    [PROTO_ERR_PAYLOAD_TOO_LARGE] = {"PAYLOAD_TOO_LARGE", 413, "the request body is over the size limit"},
    [PROTO_ERR_IMAGE_TOO_LARGE] = {"IMAGE_TOO_LARGE", 413, "the image has more pixels than the limit"},
    [PROTO_ERR_UNSUPPORTED_MEDIA_TYPE] = {"UNSUPPORTED_MEDIA_TYPE", 415, "unsupported content type"},
    [PROTO_ERR_UNSUPPORTED_IMAGE] = {"UNSUPPORTED_IMAGE", 415, "unsupported image format: send PNG, JPEG, WebP, HEIC or AVIF"},
    [PROTO_ERR_NO_FACE] = {"NO_FACE", 422, "no face found in the image"},
    [PROTO_ERR_UNPROCESSABLE] = {"UNPROCESSABLE", 422, "the request is well-formed but cannot be processed"},
    [PROTO_ERR_QUEUE_FULL] = {"QUEUE_FULL", 503, "the server is busy: retry later"},
    [PROTO_ERR_NOT_READY] = {"NOT_READY", 503, "the server is not ready: retry later"},
    [PROTO_ERR_TIMEOUT] = {"TIMEOUT", 504, "the request's deadline passed before it was processed"},
    [PROTO_ERR_INTERNAL] = {"INTERNAL", 500, "internal error"},
    [PROTO_ERR_IO] = {"IO_ERROR", 500, "input/output error"},
    [PROTO_ERR_SUBJECT_NOT_FOUND] = {"SUBJECT_NOT_FOUND", 404, "no subject of that name"},
    [PROTO_ERR_FACE_NOT_FOUND] = {"FACE_NOT_FOUND", 404, "no face of that id"},
    [PROTO_ERR_SUBJECT_EXISTS] = {"SUBJECT_EXISTS", 409, "a subject of that name exists already"},
    [PROTO_ERR_MULTIPLE_FACES] = {"MULTIPLE_FACES", 422, "the photo holds more than one face: send face_select"},
    [PROTO_ERR_MODEL_MISMATCH] = {"MODEL_MISMATCH", 422, "made by another recognition model"},
    [PROTO_ERR_GALLERY_UNAVAILABLE] = {"GALLERY_UNAVAILABLE", 503, "the gallery's database is unreachable: retry later"},
};

const struct proto_code_info *proto_code_info(enum proto_code code)
{
    if ((unsigned)code >= PROTO_CODE_COUNT)
        code = PROTO_ERR_INTERNAL;
    return &CODES[code];
}

const char *proto_code_name(enum proto_code code)
{
    return proto_code_info(code)->name;
}

int proto_code_status(enum proto_code code)
{
    return proto_code_info(code)->status;
}

const char *proto_code_message(enum proto_code code)
{
    return proto_code_info(code)->message;
}

int proto_code_from_name(const char *name, enum proto_code *out)
{
    for (int i = 0; name && i < PROTO_CODE_COUNT; i++)
        if (strcmp(CODES[i].name, name) == 0) {
            *out = (enum proto_code)i;
            return 0;
        }
    return -1;
}

enum proto_code proto_code_from_eng(enum eng_err_kind kind)
{
    switch (kind) {
    case ENG_ERR_INVALID: return PROTO_ERR_BAD_IMAGE;
    case ENG_ERR_UNSUPPORTED: return PROTO_ERR_UNSUPPORTED_IMAGE;
    case ENG_ERR_TOO_LARGE: return PROTO_ERR_IMAGE_TOO_LARGE;
    case ENG_ERR_IO: return PROTO_ERR_IO;
    case ENG_ERR_NOMEM:
    case ENG_ERR_NONE: return PROTO_ERR_INTERNAL;
    }
    return PROTO_ERR_INTERNAL;
}

int proto_err_set(struct proto_err *err, enum proto_code code, const char *field, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    size_t n = 0;
    if (err->field[0]) {
        const int k = snprintf(err->msg, sizeof err->msg, "%s: ", err->field);
        n = k > 0 && (size_t)k < sizeof err->msg ? (size_t)k : 0;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg + n, sizeof err->msg - n, fmt, ap);
    va_end(ap);
    return -1;
}

int proto_err_from_eng(struct proto_err *out, const struct eng_err *e, const char *field)
{
    return proto_err_set(out, proto_code_from_eng(e ? e->kind : ENG_ERR_NONE), field, "%s",
                         e && e->msg[0] ? e->msg : "unknown engine error");
}

/* ---- JSON helpers shared by proto/ (declared in proto_json.h) ---- */

json_t *proto_json_str(const char *s)
{
    if (!s)
        return json_null();
    json_t *j = json_string(s);
    if (j)
        return j;
    /* Not valid UTF-8: keep the ASCII, replace the rest (the text is for people, not machines). */
    char *copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

char *proto_json_dump(json_t *doc)
{
    const size_t flags = proto_get_precision() == PROTO_PRECISION_FULL ? PROTO_JSON_FLAGS_FULL : PROTO_JSON_FLAGS;
    char *s = doc ? json_dumps(doc, flags) : NULL;
    json_decref(doc);
    return s;
}

json_t *proto_json_round(double v, double unit)
{
    if (proto_get_precision() == PROTO_PRECISION_FULL)
        return json_real(v);
    const double q = v / unit;
    if (!(fabs(q) < 9e15)) /* not finite (json_real then fails), or beyond any rounding */
        return json_real(v);
    return json_real((double)(long long)(q + (v >= 0 ? 0.5 : -0.5)) * unit);
}

/* ---- error bodies ---- */

/* {"code":"...","message":"...","field":"..."}: the native error object. */
static json_t *error_object(const struct proto_err *err)
{
    /* json_pack steals every "o" reference, even when it fails; "o*" drops a NULL value's key. */
    const struct proto_code_info *info = proto_code_info(err->code);
    return json_pack("{s:s,s:o,s:o*}", "code", info->name, "message",
                     proto_json_str(err->msg[0] ? err->msg : info->message), "field",
                     err->field[0] ? proto_json_str(err->field) : NULL);
}

char *proto_error_body(enum proto_dialect dialect, const struct proto_err *err, const char *request_id)
{
    const struct proto_code_info *info = proto_code_info(err->code);
    json_t *id = request_id ? proto_json_str(request_id) : NULL;
    if (dialect == PROTO_DIALECT_DEEPSTACK)
        return proto_json_dump(json_pack("{s:b,s:o,s:i,s:o*}", "success", 0, "error",
                                         proto_json_str(err->msg[0] ? err->msg : info->message),
                                         "code", info->status, "request_id", id));
    return proto_json_dump(json_pack("{s:o,s:o*}", "error", error_object(err), "request_id", id));
}

char *proto_error_line(const char *image, const struct proto_err *err)
{
    return proto_json_dump(json_pack("{s:o,s:o}", "image", proto_json_str(image), "error", error_object(err)));
}
