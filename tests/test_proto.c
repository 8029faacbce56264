/* test_proto.c - proto/: the error table, request parsing (query/form values, JSON bodies, base64),
 * and the response encoders (parsed back with jansson). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto_detect.h"
#include "proto_errors.h"
#include "proto_openapi.h"
#include "proto_request.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

static char *NAMES[] = {"person", "bicycle", "car", "traffic light"};
static const struct eng_net NET = {.name = "test-net", .input = {3, 320, 416}, .classes = 4,
                                   .class_names = NAMES};

static json_t *parse(char *s)
{
    assert_non_null(s);
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %s", e.text, s);
    free(s);
    return j;
}

static const char *str_at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("\"%s\" is not a string", key);
    return json_string_value(v);
}

#define assert_err(rc, err, want_code, want_field, want_msg_prefix)                                 \
    do {                                                                                          \
        assert_int_equal((rc), -1);                                                               \
        if ((err).code != (want_code))                                                            \
            fail_msg("code %s, expected %s (%s)", proto_code_name((err).code),                    \
                     proto_code_name(want_code), (err).msg);                                      \
        assert_string_equal((err).field, (want_field));                                           \
        if (strncmp((err).msg, (want_msg_prefix), strlen(want_msg_prefix)) != 0)                  \
            fail_msg("message \"%s\" does not start with \"%s\"", (err).msg, (want_msg_prefix));  \
    } while (0)

static int set(struct proto_detect_request *r, const char *k, const char *v, struct proto_err *e)
{
    memset(e, 0, sizeof *e);
    return proto_detect_request_set(r, k, v, e);
}

static int json_body(struct proto_detect_request *r, const char *body, struct proto_err *e)
{
    memset(e, 0, sizeof *e);
    return proto_detect_request_parse_json(r, body, strlen(body), e);
}

/* One key=value on a fresh native request; returns its error (code PROTO_OK if accepted). */
static struct proto_err set_one(const char *k, const char *v)
{
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    set(&r, k, v, &e);
    proto_detect_request_release(&r);
    return e;
}

/* One JSON body on a fresh native request, then check(); returns the error. */
static struct proto_err json_one(const char *body)
{
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    if (json_body(&r, body, &e) == 0)
        proto_detect_request_check(&r, &e);
    proto_detect_request_release(&r);
    return e;
}

/* ---- error table ------------------------------------------------------------------------------ */

static void test_proto_error_table_statuses_as_specified(void **state)
{
    (void)state;
    static const struct {
        enum proto_code code;
        const char *name;
        int status;
    } want[] = {
        {PROTO_ERR_BAD_REQUEST, "BAD_REQUEST", 400},
        {PROTO_ERR_INVALID_PARAM, "INVALID_PARAM", 400},
        {PROTO_ERR_BAD_JSON, "BAD_JSON", 400},
        {PROTO_ERR_BAD_IMAGE, "BAD_IMAGE", 400},
        {PROTO_ERR_UNAUTHORIZED, "UNAUTHORIZED", 401},
        {PROTO_ERR_FORBIDDEN, "FORBIDDEN", 403},
        {PROTO_ERR_NOT_FOUND, "NOT_FOUND", 404},
        {PROTO_ERR_MODEL_NOT_FOUND, "MODEL_NOT_FOUND", 404},
        {PROTO_ERR_METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED", 405},
        {PROTO_ERR_PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE", 413},
        {PROTO_ERR_IMAGE_TOO_LARGE, "IMAGE_TOO_LARGE", 413},
        {PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE", 415},
        {PROTO_ERR_UNSUPPORTED_IMAGE, "UNSUPPORTED_IMAGE", 415},
        {PROTO_ERR_NO_FACE, "NO_FACE", 422},
        {PROTO_ERR_UNPROCESSABLE, "UNPROCESSABLE", 422},
        {PROTO_ERR_QUEUE_FULL, "QUEUE_FULL", 503},
        {PROTO_ERR_NOT_READY, "NOT_READY", 503},
        {PROTO_ERR_TIMEOUT, "TIMEOUT", 504},
        {PROTO_ERR_INTERNAL, "INTERNAL", 500},
        {PROTO_ERR_IO, "IO_ERROR", 500},
        {PROTO_ERR_SUBJECT_NOT_FOUND, "SUBJECT_NOT_FOUND", 404},
        {PROTO_ERR_FACE_NOT_FOUND, "FACE_NOT_FOUND", 404},
        {PROTO_ERR_SUBJECT_EXISTS, "SUBJECT_EXISTS", 409},
        {PROTO_ERR_MULTIPLE_FACES, "MULTIPLE_FACES", 422},
        {PROTO_ERR_MODEL_MISMATCH, "MODEL_MISMATCH", 422},
        {PROTO_ERR_GALLERY_UNAVAILABLE, "GALLERY_UNAVAILABLE", 503},
    };
    assert_int_equal(sizeof want / sizeof want[0], PROTO_CODE_COUNT - 1);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(proto_code_name(want[i].code), want[i].name);
        assert_int_equal(proto_code_status(want[i].code), want[i].status);
        assert_true(strlen(proto_code_message(want[i].code)) > 0);
        enum proto_code back;
        assert_int_equal(proto_code_from_name(want[i].name, &back), 0);
        assert_int_equal(back, want[i].code);
    }
}

static void test_proto_error_table_unknown_lookups_fail_safe(void **state)
{
    (void)state;
    enum proto_code c = PROTO_OK;
    assert_int_equal(proto_code_from_name("NOPE", &c), -1);
    assert_int_equal(proto_code_from_name(NULL, &c), -1);
    assert_string_equal(proto_code_name((enum proto_code)999), "INTERNAL");
    assert_int_equal(proto_code_status((enum proto_code)-1), 500);
}

static void test_proto_eng_kinds_map_to_codes(void **state)
{
    (void)state;
    assert_int_equal(proto_code_from_eng(ENG_ERR_INVALID), PROTO_ERR_BAD_IMAGE);
    assert_int_equal(proto_code_from_eng(ENG_ERR_UNSUPPORTED), PROTO_ERR_UNSUPPORTED_IMAGE);
    assert_int_equal(proto_code_from_eng(ENG_ERR_TOO_LARGE), PROTO_ERR_IMAGE_TOO_LARGE);
    assert_int_equal(proto_code_from_eng(ENG_ERR_NOMEM), PROTO_ERR_INTERNAL);
    assert_int_equal(proto_code_from_eng(ENG_ERR_IO), PROTO_ERR_IO);
    assert_int_equal(proto_code_from_eng(ENG_ERR_NONE), PROTO_ERR_INTERNAL);

    struct eng_err ee;
    eng_err_set(&ee, ENG_ERR_TOO_LARGE, "<memory>", "9000x9000 is over the 40000000-pixel limit");
    struct proto_err pe;
    assert_int_equal(proto_err_from_eng(&pe, &ee, "image"), -1);
    assert_int_equal(pe.code, PROTO_ERR_IMAGE_TOO_LARGE);
    assert_string_equal(pe.field, "image");
    assert_string_equal(pe.msg, "image: 9000x9000 is over the 40000000-pixel limit");
}

/* An error as the HTTP layer fills one: message and field as given ("" for none). */
static struct proto_err err_of(enum proto_code code, const char *msg, const char *field)
{
    struct proto_err e = {.code = code};
    snprintf(e.msg, sizeof e.msg, "%s", msg ? msg : "");
    snprintf(e.field, sizeof e.field, "%s", field ? field : "");
    return e;
}

static char *native_error(enum proto_code code, const char *msg, const char *field, const char *id)
{
    const struct proto_err e = err_of(code, msg, field);
    return proto_error_body(PROTO_DIALECT_NATIVE, &e, id);
}

static char *deepstack_error(enum proto_code code, const char *msg, const char *id)
{
    const struct proto_err e = err_of(code, msg, NULL);
    return proto_error_body(PROTO_DIALECT_DEEPSTACK, &e, id);
}

static void test_proto_error_body_has_every_member(void **state)
{
    (void)state;
    json_t *j = parse(native_error(PROTO_ERR_BAD_IMAGE, "image: truncated", "image", "req-1"));
    json_t *e = json_object_get(j, "error");
    assert_string_equal(str_at(e, "code"), "BAD_IMAGE");
    assert_string_equal(str_at(e, "message"), "image: truncated");
    assert_string_equal(str_at(e, "field"), "image");
    assert_string_equal(str_at(j, "request_id"), "req-1");
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);
}

static void test_proto_error_body_empty_parts_omitted(void **state)
{
    (void)state;
    json_t *j = parse(native_error(PROTO_ERR_QUEUE_FULL, NULL, NULL, NULL));
    json_t *e = json_object_get(j, "error");
    assert_string_equal(str_at(e, "code"), "QUEUE_FULL");
    assert_string_equal(str_at(e, "message"), proto_code_message(PROTO_ERR_QUEUE_FULL));
    assert_null(json_object_get(e, "field"));
    assert_null(json_object_get(j, "request_id"));
    json_decref(j);
    j = parse(native_error(PROTO_ERR_NOT_FOUND, "x", "", "r"));
    assert_null(json_object_get(json_object_get(j, "error"), "field"));
    json_decref(j);
}

static void test_proto_error_body_invalid_utf8_replaced(void **state)
{
    (void)state;
    json_t *j = parse(native_error(PROTO_ERR_INVALID_PARAM, "bad \xff\xfe value", "k\x80", "r"));
    assert_string_equal(str_at(json_object_get(j, "error"), "message"), "bad ?? value");
    assert_string_equal(str_at(json_object_get(j, "error"), "field"), "k?");
    json_decref(j);
}

static void test_proto_error_body_uses_struct(void **state)
{
    (void)state;
    struct proto_err e;
    proto_err_set(&e, PROTO_ERR_INVALID_PARAM, "$.conf", "expected a number between %d and %d", 0, 1);
    assert_string_equal(e.msg, "$.conf: expected a number between 0 and 1");
    json_t *j = parse(proto_error_body(PROTO_DIALECT_NATIVE, &e, "r"));
    assert_string_equal(str_at(json_object_get(j, "error"), "field"), "$.conf");
    json_decref(j);
    assert_int_equal(proto_err_set(NULL, PROTO_ERR_INTERNAL, NULL, "x"), -1);
}

static void test_proto_error_line_names_the_file(void **state)
{
    (void)state;
    struct proto_err e;
    proto_err_set(&e, PROTO_ERR_NO_FACE, "image2", "no face found");
    json_t *j = parse(proto_error_line("photos/b.jpg", &e));
    assert_string_equal(str_at(j, "image"), "photos/b.jpg");
    json_t *err = json_object_get(j, "error");
    assert_string_equal(str_at(err, "code"), "NO_FACE");
    assert_string_equal(str_at(err, "message"), "image2: no face found");
    assert_string_equal(str_at(err, "field"), "image2");
    assert_int_equal(json_object_size(j), 2);
    json_decref(j);
    proto_err_set(&e, PROTO_ERR_IO, NULL, "cannot open");
    j = parse(proto_error_line("x\xff.jpg", &e));
    assert_string_equal(str_at(j, "image"), "x?.jpg");
    assert_null(json_object_get(json_object_get(j, "error"), "field"));
    json_decref(j);
}

static void test_proto_error_body_deepstack_success_false(void **state)
{
    (void)state;
    json_t *j = parse(deepstack_error(PROTO_ERR_BAD_IMAGE, "invalid image file", "r9"));
    assert_true(json_is_false(json_object_get(j, "success")));
    assert_string_equal(str_at(j, "error"), "invalid image file");
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 400);
    assert_string_equal(str_at(j, "request_id"), "r9");
    json_decref(j);
    j = parse(deepstack_error(PROTO_ERR_UNAUTHORIZED, NULL, NULL));
    assert_string_equal(str_at(j, "error"), proto_code_message(PROTO_ERR_UNAUTHORIZED));
    assert_int_equal(json_integer_value(json_object_get(j, "code")), 401);
    assert_null(json_object_get(j, "request_id"));
    json_decref(j);
}

/* ---- key/value parameters --------------------------------------------------------------------- */

static void test_proto_set_valid_values_stored(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_null(r.model);
    assert_true(r.conf == 0.25f && r.iou == 0.45f && r.max_det == 100 && r.exif == 1);
    assert_int_equal(r.agnostic, 0);
    assert_int_equal(r.timeout_ms, 0);
    assert_int_equal(set(&r, "model", "yolo-fastest-1.1_xl", &e), 0);
    assert_int_equal(set(&r, "conf", "0.5", &e), 0);
    assert_int_equal(set(&r, "iou", "1", &e), 0);
    assert_int_equal(set(&r, "agnostic_nms", "TRUE", &e), 0);
    assert_int_equal(set(&r, "max_det", "1000", &e), 0);
    assert_int_equal(set(&r, "classes", " person , 2,traffic light ", &e), 0);
    assert_int_equal(set(&r, "exif", "0", &e), 0);
    assert_int_equal(set(&r, "timeout_ms", "600000", &e), 0);
    assert_string_equal(r.model, "yolo-fastest-1.1_xl");
    assert_true(r.conf == 0.5f && r.iou == 1.0f);
    assert_int_equal(r.agnostic, 1);
    assert_int_equal(r.max_det, 1000);
    assert_int_equal(r.n_classes, 3);
    assert_string_equal(r.classes[0], "person");
    assert_string_equal(r.classes[1], "2");
    assert_string_equal(r.classes[2], "traffic light");
    assert_int_equal(r.exif, 0);
    assert_int_equal(r.timeout_ms, 600000);
    assert_int_equal(r.given, PROTO_PARAM_MODEL | PROTO_PARAM_CONF | PROTO_PARAM_IOU |
                                  PROTO_PARAM_AGNOSTIC | PROTO_PARAM_MAX_DET | PROTO_PARAM_CLASSES |
                                  PROTO_PARAM_EXIF | PROTO_PARAM_TIMEOUT);
    proto_detect_request_release(&r);
    assert_null(r.model);
    assert_int_equal(r.given, 0);
    proto_detect_request_release(&r); /* twice is fine */
    proto_detect_request_release(NULL);
}

static void test_proto_set_conf_out_of_range_rejected(void **state)
{
    (void)state;
    struct proto_err e = set_one("conf", "1.5");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "conf", "conf: expected a number between 0 and 1");
    assert_non_null(strstr(e.msg, "got \"1.5\""));
    e = set_one("conf", "-0.01");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "conf", "conf: expected a number between 0 and 1");
    e = set_one("iou", "2");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "iou", "iou: expected a number between 0 and 1");
    e = set_one("conf", "1e-400"); /* underflow */
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
}

static void test_proto_set_not_a_number_rejected(void **state)
{
    (void)state;
    const char *bad[] = {"abc", "", "nan", "inf", "0x1p-2", " 0.5", "0.5 ", "0,5", "1..2", "--1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct proto_err e = set_one("conf", bad[i]);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "conf", "conf: expected a number between 0 and 1");
    }
    struct proto_err e = set_one("conf", NULL);
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "conf", "conf: expected a number");
    e = set_one("conf", "\x01\xff");
    assert_non_null(strstr(e.msg, "got \"??\"")); /* echoed safely */
}

static void test_proto_set_integer_bounds_enforced(void **state)
{
    (void)state;
    assert_int_equal(set_one("max_det", "1").code, PROTO_OK);
    struct proto_err e = set_one("max_det", "0");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "max_det",
               "max_det: expected an integer between 1 and 1000, got \"0\"");
    e = set_one("max_det", "1001");
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    e = set_one("max_det", "10.0");
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    e = set_one("max_det", "99999999999999999999999");
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    assert_int_equal(set_one("timeout_ms", "1").code, PROTO_OK);
    e = set_one("timeout_ms", "600001");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "timeout_ms",
               "timeout_ms: expected an integer between 1 and 600000");
    e = set_one("timeout_ms", "-5");
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
}

static void test_proto_set_booleans_parsed(void **state)
{
    (void)state;
    const char *yes[] = {"true", "True", "1"}, *no[] = {"false", "FALSE", "0"};
    for (int i = 0; i < 3; i++) {
        struct proto_detect_request r;
        struct proto_err e;
        proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
        assert_int_equal(set(&r, "agnostic", yes[i], &e), 0);
        assert_int_equal(set(&r, "exif", no[i], &e), 0);
        assert_int_equal(r.agnostic, 1);
        assert_int_equal(r.exif, 0);
        proto_detect_request_release(&r);
    }
    struct proto_err e = set_one("exif", "yes");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "exif", "exif: expected true, false, 1 or 0");
}

static void test_proto_set_unknown_key_rejected_with_hint(void **state)
{
    (void)state;
    struct proto_err e = set_one("confidence", "0.5");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "confidence", "confidence: unknown parameter");
    assert_non_null(strstr(e.msg, "did you mean \"conf\"?"));
    e = set_one("max_dets", "5");
    assert_non_null(strstr(e.msg, "did you mean \"max_det\"?"));
    e = set_one("zzzzzzzz", "5");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "zzzzzzzz", "zzzzzzzz: unknown parameter (known:");
    e = set_one("api_key", "secret");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "api_key", "api_key: unknown parameter");
    assert_null(strstr(e.msg, "secret"));
    e = set_one("image", "x");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "image", "image: send the image as");
    e = set_one("bad\nkey", "1");
    assert_string_equal(e.field, "bad?key");
}

static void test_proto_set_twice_rejected(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(set(&r, "conf", "0.3", &e), 0);
    assert_err(set(&r, "min_confidence", "0.3", &e), e, PROTO_ERR_INVALID_PARAM, "min_confidence",
               "min_confidence: given more than once");
    assert_err(set(&r, "conf", "0.3", &e), e, PROTO_ERR_INVALID_PARAM, "conf",
               "conf: given more than once");
    proto_detect_request_release(&r);
}

static void test_proto_set_model_name_checked(void **state)
{
    (void)state;
    const char *bad[] = {"", "../x", "a b", "x/y"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct proto_err e = set_one("model", bad[i]);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "model", "model: expected a model name");
    }
    char longname[PROTO_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_int_equal(set_one("model", longname).code, PROTO_ERR_INVALID_PARAM);
    longname[PROTO_NAME_MAX] = '\0';
    assert_int_equal(set_one("model", longname).code, PROTO_OK);
}

static void test_proto_set_classes_bad_lists_rejected(void **state)
{
    (void)state;
    struct proto_err e = set_one("classes", "person,,car");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "classes", "classes: expected class names or ids");
    e = set_one("classes", "");
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    e = set_one("classes", "person,");
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
}

static void test_proto_deepstack_dialect_aliases_and_ignores_unknown(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_DEEPSTACK);
    assert_int_equal(set(&r, "min_confidence", "0.6", &e), 0);
    assert_int_equal(set(&r, "api_key", "k3y", &e), 0);
    assert_int_equal(set(&r, "typ", "whatever", &e), 0); /* ignored, as DeepStack does */
    assert_true(r.conf == 0.6f);
    assert_string_equal(r.api_key, "k3y");
    assert_int_equal(r.given, PROTO_PARAM_CONF | PROTO_PARAM_API_KEY);
    assert_err(set(&r, "min_confidence", "2", &e), e, PROTO_ERR_INVALID_PARAM, "min_confidence",
               "min_confidence: given more than once");
    proto_detect_request_release(&r);
    assert_null(r.api_key);
    assert_int_equal(r.dialect, PROTO_DIALECT_DEEPSTACK);
}

/* ---- images and check() ----------------------------------------------------------------------- */

static void test_proto_check_missing_or_empty_image_rejected(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_err(proto_detect_request_check(&r, &e), e, PROTO_ERR_BAD_REQUEST, "image",
               "image: missing");
    assert_int_equal(proto_detect_request_set_image_static(&r, NULL, 0, &e), 0);
    assert_err(proto_detect_request_check(&r, &e), e, PROTO_ERR_BAD_IMAGE, "image", "image: empty");
    proto_detect_request_release(&r);

    e = json_one("{\"conf\": 0.5}");
    assert_err(-1, e, PROTO_ERR_BAD_REQUEST, "$.image_b64", "$.image_b64: missing");
    e = json_one("{\"image_b64\": \"\"}");
    assert_err(-1, e, PROTO_ERR_BAD_IMAGE, "$.image_b64", "$.image_b64: empty");
}

static void test_proto_image_static_borrowed_take_owned(void **state)
{
    (void)state;
    static const uint8_t bytes[] = {0x89, 'P', 'N', 'G'};
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(proto_detect_request_set_image_static(&r, bytes, sizeof bytes, &e), 0);
    assert_ptr_equal(r.image, bytes);
    assert_int_equal(r.image_len, 4);
    assert_null(r.image_owned);
    assert_int_equal(proto_detect_request_check(&r, &e), 0);
    /* A second image is refused. */
    assert_err(proto_detect_request_set_image_static(&r, bytes, 4, &e), e, PROTO_ERR_INVALID_PARAM,
               "image", "image: given more than once");
    assert_err(set(&r, "image_b64", "AAAA", &e), e, PROTO_ERR_INVALID_PARAM, "image_b64",
               "image_b64: given more than once");
    proto_detect_request_release(&r);
}

/* ---- JSON bodies ------------------------------------------------------------------------------ */

static void test_proto_json_valid_body_parsed(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    const char *body = "{\"image_b64\": \"aGVsbG8=\", \"model\": \"m1\", \"conf\": 0.4, \"iou\": 1,"
                       " \"agnostic_nms\": true, \"max_det\": 7, \"classes\": [\"person\", 2],"
                       " \"exif\": false, \"timeout_ms\": 250}";
    assert_int_equal(json_body(&r, body, &e), 0);
    assert_int_equal(proto_detect_request_check(&r, &e), 0);
    assert_int_equal(r.image_len, 5);
    assert_memory_equal(r.image, "hello", 5);
    assert_ptr_equal(r.image, r.image_owned);
    assert_string_equal(r.model, "m1");
    assert_true(r.conf == 0.4f && r.iou == 1.0f);
    assert_int_equal(r.agnostic, 1);
    assert_int_equal(r.max_det, 7);
    assert_int_equal(r.n_classes, 2);
    assert_string_equal(r.classes[0], "person");
    assert_string_equal(r.classes[1], "2");
    assert_int_equal(r.exif, 0);
    assert_int_equal(r.timeout_ms, 250);
    proto_detect_request_release(&r);
}

static void test_proto_json_nulls_mean_not_given(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(json_body(&r, "{\"image_b64\":\"AA==\",\"model\":null,\"conf\":null}", &e), 0);
    assert_null(r.model);
    assert_int_equal(r.given, PROTO_PARAM_IMAGE);
    /* ...so a query argument may still give them. */
    assert_int_equal(set(&r, "conf", "0.7", &e), 0);
    proto_detect_request_release(&r);
}

static void test_proto_json_malformed_reports_line_and_column(void **state)
{
    (void)state;
    struct proto_err e = json_one("{\n  \"conf\": 0.5,\n  \"iou\": }");
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: invalid JSON at line 3, column ");
    e = json_one("");
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: invalid JSON at line ");
    e = json_one("{\"conf\": 0.5, \"conf\": 0.6}");
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: invalid JSON");
    assert_non_null(strstr(e.msg, "duplicate"));
    e = json_one("[1, 2]");
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: expected a JSON object, got an array");
    e = json_one("{} trailing");
    assert_int_equal(e.code, PROTO_ERR_BAD_JSON);
    /* Not NUL-terminated: only len bytes are read. */
    struct proto_detect_request r;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(proto_detect_request_parse_json(&r, "{\"conf\":0.5}garbage", 12, &e), 0);
    proto_detect_request_release(&r);
}

static void test_proto_json_wrong_types_name_the_path(void **state)
{
    (void)state;
    struct proto_err e = json_one("{\"image_b64\":\"AA==\",\"conf\":\"0.5\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.conf",
               "$.conf: expected a number between 0 and 1, got the string \"0.5\"");
    e = json_one("{\"image_b64\":\"AA==\",\"conf\":1.5}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.conf",
               "$.conf: expected a number between 0 and 1, got 1.5");
    e = json_one("{\"max_det\":10.5}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.max_det",
               "$.max_det: expected an integer between 1 and 1000, got 10.5");
    e = json_one("{\"exif\":1}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.exif", "$.exif: expected true or false, got 1");
    e = json_one("{\"agnostic_nms\":\"true\"}");
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    e = json_one("{\"model\":3}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.model", "$.model: expected a model name");
    e = json_one("{\"image_b64\":{}}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64",
               "$.image_b64: expected a base64 string or a data: URI, got an object");
    e = json_one("{\"classes\":[\"person\", true]}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.classes[1]",
               "$.classes[1]: expected a class name or a non-negative class id, got true");
    e = json_one("{\"classes\":[-3]}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.classes[0]", "$.classes[0]: expected");
    e = json_one("{\"classes\":[]}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.classes", "$.classes: expected class names");
    e = json_one("{\"classes\":5}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.classes",
               "$.classes: expected a list of class names or ids, got 5");
    e = json_one("{\"confidence\":0.5}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.confidence", "$.confidence: unknown parameter");
    assert_non_null(strstr(e.msg, "\"conf\""));
    e = json_one("{\"conf\":0.5,\"min_confidence\":0.5}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.min_confidence",
               "$.min_confidence: given more than once");
}

static void test_proto_json_bad_base64_rejected(void **state)
{
    (void)state;
    struct proto_err e = json_one("{\"image_b64\":\"aGVs!G8=\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64",
               "$.image_b64: invalid base64: unexpected character '!' at offset 4");
    e = json_one("{\"image_b64\":\"aGVsbG8\"}"); /* unpadded is fine */
    assert_int_equal(e.code, PROTO_OK);
    e = json_one("{\"image_b64\":\"aGVsbG8==\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64", "$.image_b64: invalid base64: wrong padding");
    e = json_one("{\"image_b64\":\"data:image/png;base64,aGV$\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64",
               "$.image_b64: invalid base64: unexpected character '$' at offset 25");
}

static void test_proto_json_data_uri_accepted(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(json_body(&r, "{\"image_b64\":\"data:image/jpeg;base64,/9j/\\n4A==\"}", &e), 0);
    assert_int_equal(r.image_len, 4);
    assert_memory_equal(r.image, "\xff\xd8\xff\xe0", 4);
    proto_detect_request_release(&r);

    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(json_body(&r, "{\"image_b64\":\"DATA:;BASE64,AAEC\"}", &e), 0);
    assert_int_equal(r.image_len, 3);
    proto_detect_request_release(&r);

    e = json_one("{\"image_b64\":\"data:text/plain;base64,AAAA\"}");
    assert_err(-1, e, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, "$.image_b64",
               "$.image_b64: the data: URI's media type \"text/plain\" is not an image type");
    e = json_one("{\"image_b64\":\"data:image/png,%89PNG\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64",
               "$.image_b64: only base64 data: URIs are accepted");
    e = json_one("{\"image_b64\":\"data:image/png;base64\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64", "$.image_b64: malformed data: URI");
}

static void test_proto_json_deepstack_dialect_ignores_unknown(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_DEEPSTACK);
    assert_int_equal(json_body(&r, "{\"image_b64\":\"AA==\",\"min_confidence\":0.1,\"x\":[1]}", &e), 0);
    assert_true(r.conf == 0.1f);
    proto_detect_request_release(&r);
}

/* ---- classes and engine parameters ------------------------------------------------------------ */

static void test_proto_params_classes_by_name_and_id(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(set(&r, "classes", "car,3,person", &e), 0);
    assert_int_equal(set(&r, "conf", "0.6", &e), 0);
    unsigned char mask[4];
    struct eng_detect_params defaults, p;
    eng_detect_params_default(&defaults);
    defaults.iou = 0.3f;
    defaults.max_det = 50;
    assert_int_equal(proto_detect_request_params(&r, &NET, &defaults, mask, &p, &e), 0);
    assert_ptr_equal(p.class_allowed, mask);
    assert_int_equal(mask[0], 1);
    assert_int_equal(mask[1], 0);
    assert_int_equal(mask[2], 1);
    assert_int_equal(mask[3], 1);
    assert_true(p.conf == 0.6f);   /* given */
    assert_true(p.iou == 0.3f);    /* the model's default */
    assert_int_equal(p.max_det, 50);
    proto_detect_request_release(&r);

    /* Nothing given: the defaults as they are, every class. */
    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(proto_detect_request_params(&r, &NET, NULL, mask, &p, &e), 0);
    assert_null(p.class_allowed);
    assert_true(p.conf == 0.25f && p.iou == 0.45f && p.max_det == 100);
    proto_detect_request_release(&r);
}

static void test_proto_params_unknown_class_names_the_entry(void **state)
{
    (void)state;
    struct proto_detect_request r;
    struct proto_err e;
    unsigned char mask[4];
    struct eng_detect_params p;

    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(set(&r, "classes", "person,persn", &e), 0);
    assert_err(proto_detect_request_params(&r, &NET, NULL, mask, &p, &e), e,
               PROTO_ERR_INVALID_PARAM, "classes",
               "classes: unknown class \"persn\" for test-net");
    proto_detect_request_release(&r);

    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(json_body(&r, "{\"classes\":[\"car\", 4]}", &e), 0);
    assert_err(proto_detect_request_params(&r, &NET, NULL, mask, &p, &e), e,
               PROTO_ERR_INVALID_PARAM, "$.classes[1]",
               "$.classes[1]: class id 4 out of range: test-net has 4 classes (0 to 3)");
    proto_detect_request_release(&r);

    proto_detect_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(json_body(&r, "{\"classes\":\"car, bus\"}", &e), 0);
    assert_err(proto_detect_request_params(&r, &NET, NULL, mask, &p, &e), e,
               PROTO_ERR_INVALID_PARAM, "$.classes", "$.classes: unknown class \"bus\"");
    proto_detect_request_release(&r);
}

/* ---- base64 ----------------------------------------------------------------------------------- */

static int b64(const char *in, uint8_t **out, size_t *n, struct proto_err *e)
{
    memset(e, 0, sizeof *e);
    return proto_base64_decode(in, strlen(in), "b", 0, out, n, e);
}

static void assert_b64(const char *in, const char *want)
{
    uint8_t *out = NULL;
    size_t n = 99;
    struct proto_err e;
    if (b64(in, &out, &n, &e))
        fail_msg("\"%s\": %s", in, e.msg);
    assert_non_null(out);
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    free(out);
}

static void test_proto_base64_rfc4648_vectors_decoded(void **state)
{
    (void)state;
    /* RFC 4648, section 10. */
    assert_b64("", "");
    assert_b64("Zg==", "f");
    assert_b64("Zm8=", "fo");
    assert_b64("Zm9v", "foo");
    assert_b64("Zm9vYg==", "foob");
    assert_b64("Zm9vYmE=", "fooba");
    assert_b64("Zm9vYmFy", "foobar");
    /* Padding optional, whitespace ignored (MIME-style line breaks). */
    assert_b64("Zg", "f");
    assert_b64("Zm9vYmE", "fooba");
    assert_b64(" Zm9v\r\nYmFy\n", "foobar");
    assert_b64("Zm8 =", "fo");
    /* URL-safe alphabet (RFC 4648 section 5). */
    assert_b64("-_8=", "\xfb\xff");
    assert_b64("+/8=", "\xfb\xff");
}

static void test_proto_base64_all_bytes_round_trip(void **state)
{
    (void)state;
    static const char A[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    uint8_t bytes[256];
    char enc[400];
    for (int i = 0; i < 256; i++)
        bytes[i] = (uint8_t)i;
    for (size_t len = 0; len <= 256; len += 37) {
        size_t o = 0;
        for (size_t i = 0; i < len; i += 3) {
            const unsigned v = (unsigned)bytes[i] << 16 | (i + 1 < len ? bytes[i + 1] << 8 : 0) |
                               (i + 2 < len ? bytes[i + 2] : 0);
            enc[o++] = A[v >> 18 & 63];
            enc[o++] = A[v >> 12 & 63];
            enc[o++] = i + 1 < len ? A[v >> 6 & 63] : '=';
            enc[o++] = i + 2 < len ? A[v & 63] : '=';
        }
        enc[o] = '\0';
        uint8_t *out;
        size_t n;
        struct proto_err e;
        assert_int_equal(b64(enc, &out, &n, &e), 0);
        assert_int_equal(n, len);
        if (len)
            assert_memory_equal(out, bytes, len);
        free(out);
    }
}

static void test_proto_base64_invalid_input_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"Zm9v!", "b: invalid base64: unexpected character '!' at offset 4"},
        {"Zm\x80v", "b: invalid base64: unexpected byte 0x80 at offset 2"},
        {"Z", "b: invalid base64: truncated"},
        {"Zm9vY", "b: invalid base64: truncated"},
        {"Zg=", "b: invalid base64: wrong padding"},
        {"Zm8==", "b: invalid base64: wrong padding"},
        {"Zg===", "b: invalid base64: too much '=' padding at offset 4"},
        {"Zg==Zg==", "b: invalid base64: data after '=' padding at offset 4"},
        {"=", "b: invalid base64: wrong padding"},
        {"+-AA", "b: invalid base64: mixes the standard (+/) and URL-safe (-_) alphabets at offset 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint8_t *out = (uint8_t *)"untouched";
        size_t n;
        struct proto_err e;
        assert_err(b64(bad[i].in, &out, &n, &e), e, PROTO_ERR_INVALID_PARAM, "b", bad[i].msg);
        assert_string_equal((const char *)out, "untouched");
    }
}

/* ---- encoders --------------------------------------------------------------------------------- */

static const struct eng_detection DETS[] = {
    {{10.256f, 20.5f, 110.75f, 220.999f}, 0.987654f, 0},
    {{0.0f, 0.4f, 639.0f, 479.0f}, 0.5f, 3},
};

static void test_proto_detect_response_has_every_field(void **state)
{
    (void)state;
    const struct proto_detect_response r = {
        .request_id = "abc", .net = &NET, .width = 640, .height = 480, .exif_rotated = 1,
        .dets = DETS, .count = 2, .decode_ms = 1.5, .queue_ms = 0.25, .inference_ms = 30,
        .nms_ms = 0.125, .total_ms = 32};
    json_t *j = parse(proto_detect_response_json(&r));
    assert_string_equal(str_at(j, "request_id"), "abc");
    json_t *model = json_object_get(j, "model");
    assert_string_equal(str_at(model, "name"), "test-net");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(model, "input"), "width")), 416);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(model, "input"), "height")), 320);
    json_t *image = json_object_get(j, "image");
    assert_int_equal(json_integer_value(json_object_get(image, "width")), 640);
    assert_int_equal(json_integer_value(json_object_get(image, "height")), 480);
    assert_true(json_is_true(json_object_get(image, "exif_rotated")));
    json_t *dets = json_object_get(j, "detections");
    assert_int_equal(json_array_size(dets), 2);
    json_t *d0 = json_array_get(dets, 0);
    assert_int_equal(json_integer_value(json_object_get(d0, "class_id")), 0);
    assert_string_equal(str_at(d0, "label"), "person");
    assert_float_equal(json_number_value(json_object_get(d0, "confidence")), 0.9877, 1e-9);
    json_t *box = json_object_get(d0, "box");
    assert_float_equal(json_number_value(json_object_get(box, "x1")), 10.26, 1e-9);
    assert_float_equal(json_number_value(json_object_get(box, "y2")), 221.0, 1e-9);
    assert_string_equal(str_at(json_array_get(dets, 1), "label"), "traffic light");
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
    json_t *t = json_object_get(j, "timing_ms");
    const char *keys[] = {"decode", "queue", "inference", "nms", "total"};
    const double want[] = {1.5, 0.25, 30, 0.125, 32};
    for (int i = 0; i < 5; i++)
        assert_float_equal(json_number_value(json_object_get(t, keys[i])), want[i], 1e-9);
    assert_int_equal(json_object_size(j), 6);
    json_decref(j);
}

static void test_proto_detect_response_model_override_and_no_detections(void **state)
{
    (void)state;
    const struct eng_net unnamed = {.input = {3, 416, 416}, .classes = 2};
    const struct proto_detect_response r = {.model = "folder-name", .net = &unnamed, .width = 1,
                                            .height = 1};
    json_t *j = parse(proto_detect_response_json(&r));
    assert_null(json_object_get(j, "request_id"));
    assert_string_equal(str_at(json_object_get(j, "model"), "name"), "folder-name");
    assert_int_equal(json_array_size(json_object_get(j, "detections")), 0);
    assert_true(json_is_false(json_object_get(json_object_get(j, "image"), "exif_rotated")));
    json_decref(j);
}

static void test_proto_deepstack_response_integer_pixels(void **state)
{
    (void)state;
    const struct proto_detect_response r = {.net = &NET, .width = 640, .height = 480, .dets = DETS,
                                            .count = 2};
    json_t *j = parse(proto_deepstack_response_json(&r));
    assert_true(json_is_true(json_object_get(j, "success")));
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
    json_t *p = json_array_get(json_object_get(j, "predictions"), 0);
    assert_string_equal(str_at(p, "label"), "person");
    assert_true(json_is_real(json_object_get(p, "confidence")));
    const char *keys[] = {"x_min", "y_min", "x_max", "y_max"};
    const long long want[] = {10, 20, 110, 220}; /* truncated, as DeepStack's int() */
    for (int i = 0; i < 4; i++) {
        json_t *v = json_object_get(p, keys[i]);
        assert_true(json_is_integer(v));
        assert_int_equal(json_integer_value(v), want[i]);
    }
    assert_int_equal(json_object_size(p), 6);
    assert_null(json_object_get(j, "request_id"));
    json_decref(j);
}

static void test_proto_models_json_lists_models(void **state)
{
    (void)state;
    const struct eng_net unnamed = {.input = {3, 608, 608}, .classes = 2};
    const struct proto_model_info m[] = {
        {.net = &NET, .conf = 0.25f, .iou = 0.45f, .max_det = 100, .is_default = 1},
        {.name = "other", .net = &unnamed, .conf = 0.5f, .iou = 0.3f, .max_det = 10},
    };
    json_t *j = parse(proto_models_json(m, 2, NULL, 0));
    json_t *models = json_object_get(j, "models");
    assert_int_equal(json_array_size(models), 2);
    json_t *a = json_array_get(models, 0);
    assert_string_equal(str_at(a, "name"), "test-net");
    assert_string_equal(str_at(a, "kind"), "yolo");
    assert_true(json_is_true(json_object_get(a, "default")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "input"), "width")), 416);
    json_t *classes = json_object_get(a, "classes");
    assert_int_equal(json_array_size(classes), 4);
    assert_string_equal(json_string_value(json_array_get(classes, 3)), "traffic light");
    json_t *d = json_object_get(a, "defaults");
    assert_float_equal(json_number_value(json_object_get(d, "conf")), 0.25, 1e-9);
    assert_float_equal(json_number_value(json_object_get(d, "iou")), 0.45, 1e-9);
    assert_int_equal(json_integer_value(json_object_get(d, "max_det")), 100);
    json_t *b = json_array_get(models, 1);
    assert_string_equal(str_at(b, "name"), "other");
    assert_true(json_is_false(json_object_get(b, "default")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(b, "classes"), 1)), "1");
    json_decref(j);

    j = parse(proto_models_json(NULL, 0, NULL, 0));
    assert_int_equal(json_array_size(json_object_get(j, "models")), 0);
    json_decref(j);
    j = parse(proto_health_json("ready"));
    assert_string_equal(str_at(j, "status"), "ready");
    json_decref(j);
}

static void test_proto_encoders_survive_invalid_utf8_labels(void **state)
{
    (void)state;
    static char *names[] = {"caf\xc3\xa9", "bad\xff"};
    const struct eng_net net = {.name = "n\xfe", .input = {3, 32, 32}, .classes = 2,
                                .class_names = names};
    const struct eng_detection d[] = {{{1, 1, 2, 2}, 0.5f, 0}, {{1, 1, 2, 2}, 0.4f, 1}};
    const struct proto_detect_response r = {.net = &net, .width = 4, .height = 4, .dets = d,
                                            .count = 2};
    json_t *j = parse(proto_detect_response_json(&r));
    json_t *dets = json_object_get(j, "detections");
    assert_string_equal(str_at(json_array_get(dets, 0), "label"), "caf\xc3\xa9");
    assert_string_equal(str_at(json_array_get(dets, 1), "label"), "bad?");
    assert_string_equal(str_at(json_object_get(j, "model"), "name"), "n?");
    json_decref(j);
}

static void test_proto_cli_result_json_unchanged(void **state)
{
    (void)state;
    const struct proto_detect_result r = {.image = "dog.jpg", .width = 768, .height = 576,
                                          .net = &NET, .dets = DETS, .count = 1, .decode_ms = 9.3,
                                          .infer_ms = 30.1, .nms_ms = 0.03};
    char *s = proto_detect_result_json(&r);
    assert_non_null(s);
    assert_string_equal(s, "{\"image\":\"dog.jpg\",\"width\":768,\"height\":576,\"model\":\"test-net\","
                           "\"detections\":[{\"class_id\":0,\"label\":\"person\",\"confidence\":0.9877,"
                           "\"box\":{\"x1\":10.26,\"y1\":20.5,\"x2\":110.75,\"y2\":221.0}}],"
                           "\"timing_ms\":{\"decode\":9.3,\"infer\":30.1,\"nms\":0.03}}");
    free(s);
}

/* jansson allocations fail after `budget` successes: every encoder and the parser must then give
 * NULL / INTERNAL without leaking (LeakSanitizer checks the leaks). */
#include "failing_alloc.h"

static void test_proto_out_of_memory_fails_cleanly(void **state)
{
    (void)state;
    const struct proto_detect_response r = {.request_id = "id", .net = &NET, .width = 640,
                                            .height = 480, .dets = DETS, .count = 2};
    const struct proto_model_info m = {.net = &NET, .conf = 0.25f, .iou = 0.45f, .max_det = 1};
    const char *body = "{\"image_b64\":\"AAAA\",\"classes\":[\"a\",1],\"conf\":0.5}";
    json_set_alloc_funcs(failing_malloc, free);
    int succeeded = 0;
    for (long n = 0; n < 400 && succeeded < 6; n++) {
        char *out[5];
        budget = n;
        out[0] = proto_detect_response_json(&r);
        budget = n;
        out[1] = proto_deepstack_response_json(&r);
        budget = n;
        out[2] = proto_models_json(&m, 1, NULL, 0);
        budget = n;
        out[3] = native_error(PROTO_ERR_TIMEOUT, "m", "f", "id");
        budget = n;
        out[4] = deepstack_error(PROTO_ERR_TIMEOUT, "m", "id");
        succeeded = 0;
        for (int i = 0; i < 5; i++) {
            succeeded += out[i] != NULL;
            free(out[i]);
        }
        struct proto_detect_request req;
        struct proto_err e = {0};
        proto_detect_request_init(&req, PROTO_DIALECT_NATIVE);
        budget = n;
        const int rc = proto_detect_request_parse_json(&req, body, strlen(body), &e);
        if (rc) /* jansson reports some allocation failures as syntax errors */
            assert_true(e.code == PROTO_ERR_INTERNAL || e.code == PROTO_ERR_BAD_JSON);
        else
            succeeded++;
        proto_detect_request_release(&req);
    }
    assert_int_equal(succeeded, 6);
}

static int restore_allocator(void **state)
{
    (void)state;
    budget = -1;
    json_set_alloc_funcs(malloc, free);
    return 0;
}

static void test_proto_openapi_embedded_is_the_document(void **state)
{
    (void)state;
    const char *s = proto_openapi_json();
    assert_int_equal(strlen(s), proto_openapi_json_len());
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("embedded OpenAPI is not JSON: %s (line %d)", e.text, e.line);
    assert_string_equal(str_at(j, "openapi"), "3.1.0");
    assert_non_null(json_object_get(json_object_get(j, "paths"), "/v1/detect"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_error_table_statuses_as_specified),
        cmocka_unit_test(test_proto_error_table_unknown_lookups_fail_safe),
        cmocka_unit_test(test_proto_eng_kinds_map_to_codes),
        cmocka_unit_test(test_proto_error_body_has_every_member),
        cmocka_unit_test(test_proto_error_body_empty_parts_omitted),
        cmocka_unit_test(test_proto_error_body_invalid_utf8_replaced),
        cmocka_unit_test(test_proto_error_body_uses_struct),
        cmocka_unit_test(test_proto_error_line_names_the_file),
        cmocka_unit_test(test_proto_error_body_deepstack_success_false),
        cmocka_unit_test(test_proto_set_valid_values_stored),
        cmocka_unit_test(test_proto_set_conf_out_of_range_rejected),
        cmocka_unit_test(test_proto_set_not_a_number_rejected),
        cmocka_unit_test(test_proto_set_integer_bounds_enforced),
        cmocka_unit_test(test_proto_set_booleans_parsed),
        cmocka_unit_test(test_proto_set_unknown_key_rejected_with_hint),
        cmocka_unit_test(test_proto_set_twice_rejected),
        cmocka_unit_test(test_proto_set_model_name_checked),
        cmocka_unit_test(test_proto_set_classes_bad_lists_rejected),
        cmocka_unit_test(test_proto_deepstack_dialect_aliases_and_ignores_unknown),
        cmocka_unit_test(test_proto_check_missing_or_empty_image_rejected),
        cmocka_unit_test(test_proto_image_static_borrowed_take_owned),
        cmocka_unit_test(test_proto_json_valid_body_parsed),
        cmocka_unit_test(test_proto_json_nulls_mean_not_given),
        cmocka_unit_test(test_proto_json_malformed_reports_line_and_column),
        cmocka_unit_test(test_proto_json_wrong_types_name_the_path),
        cmocka_unit_test(test_proto_json_bad_base64_rejected),
        cmocka_unit_test(test_proto_json_data_uri_accepted),
        cmocka_unit_test(test_proto_json_deepstack_dialect_ignores_unknown),
        cmocka_unit_test(test_proto_params_classes_by_name_and_id),
        cmocka_unit_test(test_proto_params_unknown_class_names_the_entry),
        cmocka_unit_test(test_proto_base64_rfc4648_vectors_decoded),
        cmocka_unit_test(test_proto_base64_all_bytes_round_trip),
        cmocka_unit_test(test_proto_base64_invalid_input_rejected),
        cmocka_unit_test(test_proto_detect_response_has_every_field),
        cmocka_unit_test(test_proto_detect_response_model_override_and_no_detections),
        cmocka_unit_test(test_proto_deepstack_response_integer_pixels),
        cmocka_unit_test(test_proto_models_json_lists_models),
        cmocka_unit_test(test_proto_encoders_survive_invalid_utf8_labels),
        cmocka_unit_test(test_proto_cli_result_json_unchanged),
        cmocka_unit_test_teardown(test_proto_out_of_memory_fails_cleanly, restore_allocator),
        cmocka_unit_test(test_proto_openapi_embedded_is_the_document),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
