/* test_proto_face.c - proto/'s face routes: /v1/faces and /v1/verify requests (query/form values, JSON
 * bodies, files, embeddings), their DeepStack aliases, NO_FACE, and the answers (parsed back with
 * jansson). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto_errors.h"
#include "proto_face.h"

/* ---- helpers ---------------------------------------------------------------------------------- */

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

#define assert_contains(s, part)                                                                  \
    do {                                                                                          \
        if (!strstr((s), (part)))                                                                 \
            fail_msg("\"%s\" does not contain \"%s\"", (s), (part));                              \
    } while (0)

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

static json_t *at(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        fail_msg("no \"%s\"", key);
    return v;
}

static double num_at(json_t *obj, const char *key)
{
    json_t *v = at(obj, key);
    if (!json_is_number(v))
        fail_msg("\"%s\" is not a number", key);
    return json_number_value(v);
}

/* Every key of obj is one of keys (NULL-terminated) and every one of keys is there. */
static void assert_keys(json_t *obj, const char *const *keys)
{
    size_t n = 0;
    for (; keys[n]; n++)
        if (!json_object_get(obj, keys[n]))
            fail_msg("missing \"%s\"", keys[n]);
    assert_int_equal(json_object_size(obj), n);
}

/* One key/value on a fresh request; returns its error (code PROTO_OK if accepted). */
static struct proto_err face_set_one(const char *k, const char *v)
{
    struct proto_face_request r;
    struct proto_err e = {0};
    proto_face_request_init(&r, PROTO_DIALECT_NATIVE);
    proto_face_request_set(&r, k, v, &e);
    proto_face_request_release(&r);
    return e;
}

static struct proto_err verify_set_one(const char *k, const char *v)
{
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    proto_verify_request_set(&r, k, v, &e);
    proto_verify_request_release(&r);
    return e;
}

/* A JSON body on a fresh request, then check(); returns the error. */
static struct proto_err face_json_one(const char *body)
{
    struct proto_face_request r;
    struct proto_err e = {0};
    proto_face_request_init(&r, PROTO_DIALECT_NATIVE);
    if (proto_face_request_parse_json(&r, body, strlen(body), &e) == 0)
        proto_face_request_check(&r, &e);
    proto_face_request_release(&r);
    return e;
}

static struct proto_err verify_json_one(const char *body)
{
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    if (proto_verify_request_parse_json(&r, body, strlen(body), &e) == 0)
        proto_verify_request_check(&r, &e);
    proto_verify_request_release(&r);
    return e;
}

/* The i-th value of the test embeddings: distinct, signed, not all representable in few digits. */
static double emb_value(int i, int which)
{
    return (i - 64) / 100.0 + which * 0.001 + 1.0 / 3.0 * 1e-3;
}

/* "[v0,v1,...]" (json = 1) or "v0, v1, ..." of n values, entry `bad` replaced by bad_text. New string. */
static char *emb_list(int n, int which, int json, int bad, const char *bad_text)
{
    size_t cap = (size_t)n * 32 + 64, o = 0;
    char *s = malloc(cap);
    assert_non_null(s);
    if (json)
        s[o++] = '[';
    for (int i = 0; i < n; i++) {
        if (i == bad)
            o += (size_t)snprintf(s + o, cap - o, "%s%s", i ? ", " : "", bad_text);
        else
            o += (size_t)snprintf(s + o, cap - o, "%s%.17g", i ? ", " : "", emb_value(i, which));
    }
    if (json)
        s[o++] = ']';
    s[o] = '\0';
    return s;
}

/* {"<member>": <list>} plus `extra` members ("" for none; else starting with ','). New string. */
static char *body_with(const char *member, char *list, const char *extra)
{
    const size_t n = strlen(member) + strlen(list) + strlen(extra) + 16;
    char *s = malloc(n);
    assert_non_null(s);
    snprintf(s, n, "{\"%s\":%s%s}", member, list, extra);
    free(list);
    return s;
}

static const uint8_t JPEG[] = {0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 'J', 'F', 'I', 'F'};

/* ---- /v1/faces: key/value parameters ---------------------------------------------------------- */

static void test_proto_face_defaults_then_valid_values_stored(void **state)
{
    (void)state;
    struct proto_face_request r;
    struct proto_err e = {0};
    proto_face_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_true(r.opt.det_threshold == 0.5f);
    assert_int_equal(r.opt.input_size, 416);
    assert_int_equal(r.opt.exif, 1);
    assert_int_equal(r.opt.timeout_ms, 0);
    assert_int_equal(r.limit, 0);
    assert_int_equal(r.landmarks, 1);
    assert_int_equal(r.embedding, 0);
    assert_null(r.image.data);
    assert_int_equal(proto_face_request_set(&r, "det_threshold", "0.3", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "input_size", "608", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "limit", "1000", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "landmarks", "false", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "embedding", "TRUE", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "exif", "0", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "timeout_ms", "2500", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "image_b64", "/9j/4A==", &e), 0);
    assert_true(r.opt.det_threshold == 0.3f);
    assert_int_equal(r.opt.input_size, 608);
    assert_int_equal(r.limit, 1000);
    assert_int_equal(r.landmarks, 0);
    assert_int_equal(r.embedding, 1);
    assert_int_equal(r.opt.exif, 0);
    assert_int_equal(r.opt.timeout_ms, 2500);
    assert_int_equal(r.image.len, 4);
    assert_memory_equal(r.image.data, JPEG, 4);
    assert_ptr_equal(r.image.data, r.image.owned);
    assert_int_equal(r.opt.given,
                     PROTO_FACE_PARAM_DET_THRESHOLD | PROTO_FACE_PARAM_INPUT_SIZE | PROTO_FACE_PARAM_LIMIT |
                         PROTO_FACE_PARAM_LANDMARKS | PROTO_FACE_PARAM_EMBEDDING | PROTO_FACE_PARAM_EXIF |
                         PROTO_FACE_PARAM_TIMEOUT | PROTO_FACE_PARAM_IMAGE);
    assert_int_equal(proto_face_request_check(&r, &e), 0);
    proto_face_request_release(&r);
    assert_int_equal(r.opt.given, 0);
    assert_null(r.image.data);
    proto_face_request_release(&r); /* twice is fine */
    proto_face_request_release(NULL);
}

static void test_proto_face_det_threshold_out_of_range_rejected(void **state)
{
    (void)state;
    assert_int_equal(face_set_one("det_threshold", "0").code, PROTO_OK);
    assert_int_equal(face_set_one("det_threshold", "1").code, PROTO_OK);
    const char *bad[] = {"1.01", "-0.1", "abc", "", "nan", "inf", "0,5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct proto_err e = face_set_one("det_threshold", bad[i]);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "det_threshold",
                   "det_threshold: expected a number between 0 and 1, got");
    }
}

static void test_proto_face_input_size_multiple_of_32_enforced(void **state)
{
    (void)state;
    const char *good[] = {"128", "160", "224", "320", "416", "512", "608", "1024", "+416"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(face_set_one("input_size", good[i]).code, PROTO_OK);
    const char *bad[] = {"96", "100", "300", "415", "1056", "0", "-416", "416.0", "4e2", "abc", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct proto_err e = face_set_one("input_size", bad[i]);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "input_size",
                   "input_size: expected a multiple of 32 between 128 and 1024");
    }
    assert_int_equal(verify_set_one("input_size", "320").code, PROTO_OK);
    assert_int_equal(verify_set_one("input_size", "333").code, PROTO_ERR_INVALID_PARAM);
}

static void test_proto_face_limit_and_booleans_checked(void **state)
{
    (void)state;
    assert_int_equal(face_set_one("limit", "0").code, PROTO_OK);
    struct proto_err e = face_set_one("limit", "-1");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "limit", "limit: expected an integer between 0 and 1000");
    assert_int_equal(face_set_one("limit", "1001").code, PROTO_ERR_INVALID_PARAM);
    assert_int_equal(face_set_one("limit", "1.5").code, PROTO_ERR_INVALID_PARAM);
    e = face_set_one("landmarks", "yes");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "landmarks",
               "landmarks: expected true, false, 1 or 0, got \"yes\"");
    e = face_set_one("embedding", "2");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "embedding", "embedding: expected true, false, 1 or 0");
    assert_int_equal(face_set_one("timeout_ms", "0").code, PROTO_ERR_INVALID_PARAM);
    assert_int_equal(face_set_one("timeout_ms", "600001").code, PROTO_ERR_INVALID_PARAM);
}

static void test_proto_face_unknown_params_rejected_with_hint(void **state)
{
    (void)state;
    struct proto_err e = face_set_one("threshold", "0.5");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "threshold",
               "threshold: unknown parameter (did you mean \"det_threshold\"?");
    e = face_set_one("min_confidence", "0.5"); /* DeepStack's name: only on its route */
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "min_confidence",
               "min_confidence: unknown parameter (did you mean \"det_threshold\"?");
    e = face_set_one("det_treshold", "0.5");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "det_treshold",
               "det_treshold: unknown parameter (did you mean \"det_threshold\"?)");
    e = face_set_one("landmark", "1");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "landmark",
               "landmark: unknown parameter (did you mean \"landmarks\"?)");
    e = face_set_one("match_threshold", "0.5");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "match_threshold",
               "match_threshold: unknown parameter (a parameter of POST /v1/verify");
    e = face_set_one("image", "xx");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "image", "image: send the image as a multipart file");
    e = face_set_one("image1", "xx");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "image1", "image1: unknown parameter (send one image");
    e = face_set_one("api_key", "k");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "api_key", "api_key: unknown parameter (send API keys");
    e = face_set_one("zzzzzz", "1");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "zzzzzz",
               "zzzzzz: unknown parameter (known: det_threshold, input_size, limit, landmarks, "
               "embedding, image_b64, exif, timeout_ms)");
    e = face_set_one("a\x01\xff", "1"); /* echoed safely */
    assert_string_equal(e.field, "a??");
}

static void test_proto_face_twice_rejected(void **state)
{
    (void)state;
    struct proto_face_request r;
    struct proto_err e = {0};
    proto_face_request_init(&r, PROTO_DIALECT_DEEPSTACK);
    assert_int_equal(proto_face_request_set(&r, "det_threshold", "0.4", &e), 0);
    int rc = proto_face_request_set(&r, "min_confidence", "0.4", &e); /* alias of the same */
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "min_confidence", "min_confidence: given more than once");
    assert_int_equal(proto_face_request_set_image_static(&r, JPEG, sizeof JPEG, &e), 0);
    rc = proto_face_request_set(&r, "image_b64", "/9j/4A==", &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "image_b64", "image_b64: given more than once");
    rc = proto_face_request_set_image_static(&r, JPEG, 4, &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "image", "image: given more than once");
    assert_ptr_equal(r.image.data, JPEG); /* the first one stays, borrowed */
    assert_null(r.image.owned);
    proto_face_request_release(&r);
}

static void test_proto_face_check_missing_or_empty_image_rejected(void **state)
{
    (void)state;
    struct proto_face_request r;
    struct proto_err e = {0};
    proto_face_request_init(&r, PROTO_DIALECT_NATIVE);
    int rc = proto_face_request_check(&r, &e);
    assert_err(rc, e, PROTO_ERR_BAD_REQUEST, "image", "image: missing: send the image");
    assert_int_equal(proto_face_request_set_image_static(&r, NULL, 0, &e), 0);
    rc = proto_face_request_check(&r, &e);
    assert_err(rc, e, PROTO_ERR_BAD_IMAGE, "image", "image: empty (0 bytes)");
    proto_face_request_release(&r);
    e = face_json_one("{\"det_threshold\": 0.5}");
    assert_err(-1, e, PROTO_ERR_BAD_REQUEST, "$.image_b64", "$.image_b64: missing");
    e = face_json_one("{\"image_b64\": \"\"}");
    assert_err(-1, e, PROTO_ERR_BAD_IMAGE, "$.image_b64", "$.image_b64: empty (0 bytes)");
    proto_face_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(proto_face_request_set_image_static(&r, JPEG, sizeof JPEG, &e), 0);
    assert_null(r.image.owned);
    assert_int_equal(proto_face_request_check(&r, &e), 0);
    proto_face_request_release(&r);
}

static void test_proto_face_deepstack_dialect_names_and_defaults(void **state)
{
    (void)state;
    struct proto_face_request r;
    struct proto_err e = {0};
    proto_face_request_init(&r, PROTO_DIALECT_DEEPSTACK);
    assert_int_equal(r.landmarks, 0); /* its answer has none: don't compute them */
    assert_int_equal(proto_face_request_set(&r, "min_confidence", "0.7", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "api_key", "secret", &e), 0);
    assert_int_equal(proto_face_request_set(&r, "whatever", "x", &e), 0); /* ignored, as DeepStack */
    assert_true(r.opt.det_threshold == 0.7f);
    assert_string_equal(r.opt.api_key, "secret");
    assert_int_equal(r.opt.given, PROTO_FACE_PARAM_DET_THRESHOLD | PROTO_FACE_PARAM_API_KEY);
    const char *body = "{\"image_b64\":\"/9j/4A==\",\"typ\":1,\"input_size\":320}";
    assert_int_equal(proto_face_request_parse_json(&r, body, strlen(body), &e), 0);
    assert_int_equal(r.opt.input_size, 320);
    assert_int_equal(proto_face_request_check(&r, &e), 0);
    proto_face_request_release(&r);
    assert_null(r.opt.api_key);
    assert_int_equal(r.opt.dialect, PROTO_DIALECT_DEEPSTACK);
}

/* ---- /v1/faces: JSON bodies ------------------------------------------------------------------- */

static void test_proto_face_json_body_parsed(void **state)
{
    (void)state;
    struct proto_face_request r;
    struct proto_err e = {0};
    proto_face_request_init(&r, PROTO_DIALECT_NATIVE);
    const char *body = "{\"image_b64\":\"data:image/jpeg;base64,/9j/4A==\",\"det_threshold\":0.25,"
                       "\"input_size\":224,\"limit\":3,\"landmarks\":false,\"embedding\":true,"
                       "\"exif\":true,\"timeout_ms\":100}";
    assert_int_equal(proto_face_request_parse_json(&r, body, strlen(body), &e), 0);
    assert_int_equal(proto_face_request_check(&r, &e), 0);
    assert_int_equal(r.opt.from_json, 1);
    assert_true(r.opt.det_threshold == 0.25f);
    assert_int_equal(r.opt.input_size, 224);
    assert_int_equal(r.limit, 3);
    assert_int_equal(r.landmarks, 0);
    assert_int_equal(r.embedding, 1);
    assert_int_equal(r.opt.timeout_ms, 100);
    assert_int_equal(r.image.len, 4);
    proto_face_request_release(&r);
    /* null = not given */
    proto_face_request_init(&r, PROTO_DIALECT_NATIVE);
    body = "{\"image_b64\":\"/9j/4A==\",\"det_threshold\":null,\"limit\":null,\"embedding\":null}";
    assert_int_equal(proto_face_request_parse_json(&r, body, strlen(body), &e), 0);
    assert_int_equal(r.opt.given, PROTO_FACE_PARAM_IMAGE);
    assert_true(r.opt.det_threshold == 0.5f);
    proto_face_request_release(&r);
}

static void test_proto_face_json_errors_name_the_path(void **state)
{
    (void)state;
    struct proto_err e = face_json_one("{\"image_b64\":\"/9j/4A==\",\"det_threshold\":\"0.5\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.det_threshold",
               "$.det_threshold: expected a number between 0 and 1, got the string \"0.5\"");
    e = face_json_one("{\"image_b64\":\"/9j/4A==\",\"input_size\":416.0}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.input_size", "$.input_size: expected a multiple of 32");
    e = face_json_one("{\"image_b64\":\"/9j/4A==\",\"landmarks\":\"true\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.landmarks", "$.landmarks: expected true or false");
    e = face_json_one("{\"image_b64\":\"/9j/4A==\",\"limit\":-1}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.limit", "$.limit: expected an integer between 0 and 1000");
    e = face_json_one("{\"image_b64\":\"!!\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64", "$.image_b64: invalid base64");
    e = face_json_one("{\"image_b64\":\"data:text/plain;base64,AAAA\"}");
    assert_err(-1, e, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, "$.image_b64", "$.image_b64: the data: URI");
    e = face_json_one("{\"image_b64\":12}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image_b64", "$.image_b64: expected a base64 string");
    e = face_json_one("{\"image1_b64\":\"/9j/4A==\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image1_b64", "$.image1_b64: unknown parameter");
    e = face_json_one("{\"image\":\"/9j/4A==\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image",
               "$.image: unknown parameter (did you mean \"image_b64\"?)");
    e = face_json_one("[1]");
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: expected a JSON object, got an array");
    e = face_json_one("{\"limit\":1,\"limit\":2}");
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: invalid JSON at line 1");
    e = face_json_one("{\"image_b64\":");
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: invalid JSON at line 1, column");
}

/* ---- /v1/verify: parameters ------------------------------------------------------------------- */

static void test_proto_verify_defaults_then_valid_values_stored(void **state)
{
    (void)state;
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(r.face_select, PROTO_FACE_SELECT_LARGEST);
    assert_true(r.match_threshold == 0.6);
    assert_int_equal(r.aligned, 0);
    assert_true(r.opt.det_threshold == 0.5f);
    assert_int_equal(r.opt.input_size, 416);
    assert_int_equal(r.side[0].input, PROTO_VERIFY_NONE);
    assert_int_equal(proto_verify_request_set(&r, "face_select", "best", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "match_threshold", "0.5", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "aligned", "true", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "det_threshold", "0.9", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "input_size", "160", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "exif", "false", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "timeout_ms", "9", &e), 0);
    assert_int_equal(r.face_select, PROTO_FACE_SELECT_BEST);
    assert_true(r.match_threshold == 0.5);
    assert_int_equal(r.aligned, 1);
    assert_true(r.opt.det_threshold == 0.9f);
    assert_int_equal(r.opt.input_size, 160);
    assert_int_equal(r.opt.exif, 0);
    assert_int_equal(r.opt.timeout_ms, 9);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image2", JPEG, 4, &e), 0);
    assert_int_equal(proto_verify_request_check(&r, &e), 0);
    assert_int_equal(r.side[0].input, PROTO_VERIFY_IMAGE);
    assert_int_equal(r.side[1].image.len, 4);
    assert_string_equal(r.side[0].field, "image1");
    assert_string_equal(r.side[1].field, "image2");
    assert_null(r.side[0].image.owned);
    assert_int_equal(r.opt.given & (PROTO_FACE_PARAM_IMAGE1 | PROTO_FACE_PARAM_IMAGE2),
                     PROTO_FACE_PARAM_IMAGE1 | PROTO_FACE_PARAM_IMAGE2);
    proto_verify_request_release(&r);
    assert_int_equal(r.side[0].input, PROTO_VERIFY_NONE);
    assert_int_equal(r.opt.given, 0);
    proto_verify_request_release(&r);
    proto_verify_request_release(NULL);
}

static void test_proto_verify_face_select_and_match_threshold_checked(void **state)
{
    (void)state;
    assert_int_equal(verify_set_one("face_select", "largest").code, PROTO_OK);
    assert_int_equal(verify_set_one("face_select", "Best").code, PROTO_ERR_INVALID_PARAM); /* an enum */
    struct proto_err e = verify_set_one("face_select", "biggest");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "face_select",
               "face_select: expected \"largest\" or \"best\", got \"biggest\"");
    assert_int_equal(verify_set_one("match_threshold", "0").code, PROTO_OK);
    assert_int_equal(verify_set_one("match_threshold", "4").code, PROTO_OK);
    const char *bad[] = {"4.01", "-0.1", "abc", "", "nan"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e = verify_set_one("match_threshold", bad[i]);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "match_threshold",
                   "match_threshold: expected a Euclidean distance between 0 and 4");
    }
    e = verify_set_one("aligned", "maybe");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "aligned", "aligned: expected true, false, 1 or 0");
    e = verify_json_one("{\"face_select\":1}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.face_select",
               "$.face_select: expected \"largest\" or \"best\", got 1");
    e = verify_json_one("{\"match_threshold\":\"0.6\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.match_threshold", "$.match_threshold: expected");
}

static void test_proto_verify_min_det_threshold_parsed_and_checked(void **state)
{
    (void)state;
    struct proto_verify_request req;
    struct proto_err e;
    proto_verify_request_init(&req, PROTO_DIALECT_NATIVE);
    assert_float_equal(req.min_det_threshold, 0.1, 1e-7);
    assert_int_equal(proto_verify_request_set(&req, "min_det_threshold", "0.25", &e), 0);
    assert_float_equal(req.min_det_threshold, 0.25, 1e-7);
    assert_int_equal(proto_verify_request_set(&req, "min_det_threshold", "0.3", &e), -1);
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM); /* given twice */
    proto_verify_request_release(&req);
    assert_int_equal(proto_verify_request_set(&req, "min_det_threshold", "1.5", &e), -1);
    assert_string_equal(e.field, "min_det_threshold");
    proto_verify_request_release(&req);
}

static void test_proto_verify_unknown_params_rejected_with_hint(void **state)
{
    (void)state;
    struct proto_err e = verify_set_one("threshold", "0.6");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "threshold", "threshold: unknown parameter (ambiguous:");
    assert_contains(e.msg, "det_threshold");
    assert_contains(e.msg, "match_threshold");
    e = verify_set_one("tolerance", "0.6");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "tolerance",
               "tolerance: unknown parameter (did you mean \"match_threshold\"?");
    e = verify_set_one("similarity_threshold", "0.6");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "similarity_threshold",
               "similarity_threshold: unknown parameter (there is no similarity threshold");
    e = verify_set_one("min_confidence", "0.6");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "min_confidence",
               "min_confidence: unknown parameter (did you mean \"det_threshold\"?");
    e = verify_set_one("limit", "1");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "limit",
               "limit: unknown parameter (a parameter of POST /v1/faces");
    e = verify_set_one("image", "x");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "image", "image: unknown parameter (send the two images");
    e = verify_set_one("image1", "x"); /* as text, not a file */
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "image1",
               "image1: send image1 as a multipart file field, or base64-encoded as image1_b64");
    e = verify_set_one("embeding1", "1");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "embeding1",
               "embeding1: unknown parameter (did you mean \"embedding1\"?)");
    e = verify_set_one("qqqqqq", "1");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "qqqqqq",
               "qqqqqq: unknown parameter (known: det_threshold, input_size, image1_b64, image2_b64, "
               "embedding1, embedding2, face_select, match_threshold, aligned, min_det_threshold, exif, "
               "timeout_ms)");
    /* A file field of another name. */
    struct proto_verify_request r;
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    int rc = proto_verify_request_set_image_static(&r, "image", JPEG, sizeof JPEG, &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "image", "image: unknown file field (send the two images");
    rc = proto_verify_request_set_image_static(&r, "photo", JPEG, 3, &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "photo", "photo: unknown file field");
    proto_verify_request_release(&r);
}

/* ---- /v1/verify: embeddings ------------------------------------------------------------------- */

static void test_proto_verify_embeddings_json_parsed(void **state)
{
    (void)state;
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    char *body = body_with("embedding1", emb_list(128, 0, 1, -1, NULL), "");
    char *b2 = emb_list(128, 1, 1, -1, NULL);
    char *full = malloc(strlen(body) + strlen(b2) + 64);
    assert_non_null(full);
    body[strlen(body) - 1] = '\0'; /* drop the closing brace */
    sprintf(full, "%s,\"embedding2\":%s,\"match_threshold\":0.55}", body, b2);
    free(body);
    free(b2);
    assert_int_equal(proto_verify_request_parse_json(&r, full, strlen(full), &e), 0);
    free(full);
    assert_int_equal(proto_verify_request_check(&r, &e), 0);
    for (int s = 0; s < 2; s++) {
        assert_int_equal(r.side[s].input, PROTO_VERIFY_EMBEDDING);
        for (int i = 0; i < 128; i++)
            assert_true(r.side[s].embedding[i] == (float)emb_value(i, s));
    }
    assert_string_equal(r.side[0].field, "$.embedding1");
    assert_string_equal(r.side[1].field, "$.embedding2");
    assert_true(r.match_threshold == 0.55);
    assert_int_equal(r.opt.given, PROTO_FACE_PARAM_EMBEDDING1 | PROTO_FACE_PARAM_EMBEDDING2 |
                                      PROTO_FACE_PARAM_MATCH_THRESHOLD);
    proto_verify_request_release(&r);
}

static void test_proto_verify_embedding_text_parsed(void **state)
{
    (void)state;
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    char *plain = emb_list(128, 0, 0, -1, NULL);        /* "v0, v1, ..." */
    char *bracketed = emb_list(128, 1, 1, -1, NULL);    /* "[v0, v1, ...]" as a JSON client might */
    assert_int_equal(proto_verify_request_set(&r, "embedding1", plain, &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "embedding2", bracketed, &e), 0);
    free(plain);
    free(bracketed);
    assert_int_equal(proto_verify_request_check(&r, &e), 0);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 128; i++)
            assert_true(r.side[s].embedding[i] == (float)emb_value(i, s));
    assert_string_equal(r.side[0].field, "embedding1");
    proto_verify_request_release(&r);
    /* No spaces, surrounding whitespace, exponents. */
    char text[128 * 8 + 16];
    size_t o = 0;
    o += (size_t)snprintf(text + o, sizeof text - o, "  ");
    for (int i = 0; i < 128; i++)
        o += (size_t)snprintf(text + o, sizeof text - o, "%s%de-3", i ? "," : "", i - 64);
    snprintf(text + o, sizeof text - o, "\n");
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(proto_verify_request_set(&r, "embedding1", text, &e), 0);
    assert_true(r.side[0].embedding[0] == -0.064f);
    assert_true(r.side[0].embedding[127] == 0.063f);
    proto_verify_request_release(&r);
}

static void test_proto_verify_embedding_wrong_length_rejected(void **state)
{
    (void)state;
    const int lengths[] = {0, 1, 127, 129, 256};
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        const int n = lengths[k];
        char *body = body_with("embedding1", emb_list(n, 0, 1, -1, NULL), "");
        struct proto_err e = verify_json_one(body);
        free(body);
        char want[96];
        snprintf(want, sizeof want, "$.embedding1: expected an array of 128 numbers, got %d", n);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.embedding1", want);
        char *text = emb_list(n, 0, 0, -1, NULL);
        e = verify_set_one("embedding1", text);
        free(text);
        if (n <= 128)
            snprintf(want, sizeof want, "embedding1: expected 128 comma-separated numbers, got %d", n);
        else
            snprintf(want, sizeof want, "embedding1: expected 128 comma-separated numbers, got more");
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "embedding1", want);
    }
    struct proto_err e = verify_set_one("embedding2", "[1, 2");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "embedding2", "embedding2: expected 128 comma-separated");
}

static void test_proto_verify_embedding_non_numbers_rejected(void **state)
{
    (void)state;
    /* JSON: the entry is named by its path. */
    const char *json_bad[] = {"\"0.5\"", "null", "true", "[0.5]", "{}", "1e39", "-1001"};
    for (size_t k = 0; k < sizeof json_bad / sizeof json_bad[0]; k++) {
        char *body = body_with("embedding2", emb_list(128, 0, 1, 5, json_bad[k]), "");
        struct proto_err e = verify_json_one(body);
        free(body);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.embedding2[5]",
                   "$.embedding2[5]: expected a finite number between -1000 and 1000, got");
    }
    /* Text: NaN and infinities in any spelling, words, empty entries, overflow. */
    const char *text_bad[] = {"nan", "NaN", "-nan", "inf", "-Infinity", "abc", "", "1e400", "0x10",
                              "1 2", "1001"};
    for (size_t k = 0; k < sizeof text_bad / sizeof text_bad[0]; k++) {
        char *text = emb_list(128, 0, 0, 127, text_bad[k]);
        struct proto_err e = verify_set_one("embedding1", text);
        free(text);
        assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "embedding1[127]",
                   "embedding1[127]: expected a finite number between -1000 and 1000, got");
    }
    char *text = emb_list(128, 0, 0, 3, "0.123456789012345678901234567890123456789012345678901234567890123");
    struct proto_err e = verify_set_one("embedding1", text);
    free(text);
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "embedding1[3]", "embedding1[3]: expected a number, got 65");
    /* NaN cannot even be written in JSON. */
    char *body = body_with("embedding1", emb_list(128, 0, 1, 0, "NaN"), "");
    e = verify_json_one(body);
    free(body);
    assert_err(-1, e, PROTO_ERR_BAD_JSON, "$", "$: invalid JSON");
    /* Not an array at all. */
    e = verify_json_one("{\"embedding1\":\"0.1,0.2\"}");
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.embedding1",
               "$.embedding1: expected an array of 128 numbers, got the string \"0.1,0.2\"");
    /* A failed list leaves the side open. */
    struct proto_verify_request r;
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    text = emb_list(128, 0, 0, 100, "x");
    assert_int_equal(proto_verify_request_set(&r, "embedding1", text, &e), -1);
    free(text);
    assert_int_equal(r.side[0].input, PROTO_VERIFY_NONE);
    assert_int_equal(r.opt.given, 0);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    proto_verify_request_release(&r);
}

/* ---- /v1/verify: sides ------------------------------------------------------------------------ */

static void test_proto_verify_one_image_one_embedding_accepted(void **state)
{
    (void)state;
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    char *text = emb_list(128, 1, 0, -1, NULL);
    assert_int_equal(proto_verify_request_set(&r, "embedding2", text, &e), 0);
    free(text);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    assert_int_equal(proto_verify_request_check(&r, &e), 0);
    assert_int_equal(r.side[0].input, PROTO_VERIFY_IMAGE);
    assert_int_equal(r.side[1].input, PROTO_VERIFY_EMBEDDING);
    proto_verify_request_release(&r);
    /* In JSON too. */
    char *body = body_with("embedding1", emb_list(128, 0, 1, -1, NULL), ",\"image2_b64\":\"/9j/4A==\"");
    e = verify_json_one(body);
    free(body);
    assert_int_equal(e.code, PROTO_OK);
}

static void test_proto_verify_missing_side_names_the_field(void **state)
{
    (void)state;
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    int rc = proto_verify_request_check(&r, &e);
    assert_err(rc, e, PROTO_ERR_BAD_REQUEST, "image1", "image1: missing: /v1/verify compares two faces");
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    rc = proto_verify_request_check(&r, &e);
    assert_err(rc, e, PROTO_ERR_BAD_REQUEST, "image2", "image2: missing");
    assert_int_equal(proto_code_status(e.code), 400);
    proto_verify_request_release(&r);
    /* The other side an embedding: this one is most likely a forgotten embedding. */
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    char *text = emb_list(128, 0, 0, -1, NULL);
    assert_int_equal(proto_verify_request_set(&r, "embedding1", text, &e), 0);
    free(text);
    rc = proto_verify_request_check(&r, &e);
    assert_err(rc, e, PROTO_ERR_BAD_REQUEST, "embedding2", "embedding2: missing");
    proto_verify_request_release(&r);
    /* JSON bodies name JSON paths. */
    e = verify_json_one("{\"image1_b64\":\"/9j/4A==\"}");
    assert_err(-1, e, PROTO_ERR_BAD_REQUEST, "$.image2_b64", "$.image2_b64: missing");
    e = verify_json_one("{\"image2_b64\":\"/9j/4A==\",\"image1_b64\":null}");
    assert_err(-1, e, PROTO_ERR_BAD_REQUEST, "$.image1_b64", "$.image1_b64: missing");
    char *body = body_with("embedding2", emb_list(128, 0, 1, -1, NULL), "");
    e = verify_json_one(body);
    free(body);
    assert_err(-1, e, PROTO_ERR_BAD_REQUEST, "$.embedding1", "$.embedding1: missing");
    /* Present but empty. */
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image2", NULL, 0, &e), 0);
    rc = proto_verify_request_check(&r, &e);
    assert_err(rc, e, PROTO_ERR_BAD_IMAGE, "image2", "image2: empty (0 bytes)");
    proto_verify_request_release(&r);
    e = verify_json_one("{\"image1_b64\":\"\",\"image2_b64\":\"/9j/4A==\"}");
    assert_err(-1, e, PROTO_ERR_BAD_IMAGE, "$.image1_b64", "$.image1_b64: empty (0 bytes)");
}

static void test_proto_verify_side_given_twice_or_both_ways_rejected(void **state)
{
    (void)state;
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    int rc = proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "image1", "image1: given more than once");
    rc = proto_verify_request_set(&r, "image1_b64", "/9j/4A==", &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "image1_b64", "image1_b64: given more than once");
    char *text = emb_list(128, 0, 0, -1, NULL);
    rc = proto_verify_request_set(&r, "embedding1", text, &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "embedding1",
               "embedding1: image1 was given too: give either image1 (or image1_b64) or embedding1");
    assert_int_equal(proto_verify_request_set(&r, "embedding2", text, &e), 0);
    rc = proto_verify_request_set(&r, "embedding2", text, &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "embedding2", "embedding2: given more than once");
    free(text);
    rc = proto_verify_request_set_image_static(&r, "image2", JPEG, 4, &e);
    assert_err(rc, e, PROTO_ERR_INVALID_PARAM, "image2", "image2: embedding2 was given too");
    assert_int_equal(r.side[0].input, PROTO_VERIFY_IMAGE);
    assert_int_equal(r.side[1].input, PROTO_VERIFY_EMBEDDING);
    proto_verify_request_release(&r);
    /* In one JSON body. */
    char *body = body_with("embedding1", emb_list(128, 0, 1, -1, NULL), ",\"image1_b64\":\"/9j/4A==\"");
    e = verify_json_one(body);
    free(body);
    assert_err(-1, e, PROTO_ERR_INVALID_PARAM, "$.image1_b64",
               "$.image1_b64: embedding1 was given too");
}

static void test_proto_verify_deepstack_dialect_takes_its_form(void **state)
{
    (void)state;
    struct proto_verify_request r;
    struct proto_err e = {0};
    proto_verify_request_init(&r, PROTO_DIALECT_DEEPSTACK);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image2", JPEG, sizeof JPEG, &e), 0);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image3", JPEG, sizeof JPEG, &e), 0);
    assert_int_equal(proto_verify_request_set_image_static(&r, "other", JPEG, 2, &e), 0); /* ignored */
    assert_int_equal(proto_verify_request_set(&r, "api_key", "k", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "min_confidence", "0.8", &e), 0);
    assert_int_equal(proto_verify_request_set(&r, "userid", "x", &e), 0); /* ignored */
    assert_int_equal(proto_verify_request_check(&r, &e), 0);
    assert_true(r.opt.det_threshold == 0.8f);
    assert_string_equal(r.opt.api_key, "k");
    proto_verify_request_release(&r);
    proto_verify_request_init(&r, PROTO_DIALECT_DEEPSTACK);
    assert_int_equal(proto_verify_request_set_image_static(&r, "image1", JPEG, sizeof JPEG, &e), 0);
    int rc = proto_verify_request_check(&r, &e);
    assert_err(rc, e, PROTO_ERR_BAD_REQUEST, "image2", "image2: missing");
    proto_verify_request_release(&r);
}

/* ---- NO_FACE ---------------------------------------------------------------------------------- */

static void test_proto_face_no_face_names_the_image(void **state)
{
    (void)state;
    struct proto_verify_request r;
    proto_verify_request_init(&r, PROTO_DIALECT_NATIVE);
    struct proto_err e;
    int rc = proto_face_err_no_face(&e, "image2", &r.opt);
    assert_err(rc, e, PROTO_ERR_NO_FACE, "image2",
               "image2: no face found (det_threshold 0.5, input_size 416;");
    assert_int_equal(proto_code_status(e.code), 422);
    json_t *j = parse(proto_error_body(PROTO_DIALECT_NATIVE, &e, "rid"));
    json_t *err = at(j, "error");
    assert_string_equal(json_string_value(at(err, "code")), "NO_FACE");
    assert_string_equal(json_string_value(at(err, "field")), "image2");
    json_decref(j);
    j = parse(proto_error_body(PROTO_DIALECT_DEEPSTACK, &e, NULL));
    assert_int_equal(json_integer_value(at(j, "code")), 422);
    assert_contains(json_string_value(at(j, "error")), "image2: no face found");
    json_decref(j);
    assert_int_equal(proto_face_err_no_face(NULL, "image", &r.opt), -1);
}

/* ---- answers ---------------------------------------------------------------------------------- */

static float LANDMARKS[PROTO_FACE_LANDMARKS * 2];
static float EMBEDDING[PROTO_FACE_EMBEDDING_DIM];

static void fill_face_data(void)
{
    for (int i = 0; i < PROTO_FACE_LANDMARKS; i++) {
        LANDMARKS[2 * i] = 100.0f + (float)i * 1.23456f;
        LANDMARKS[2 * i + 1] = 50.0f + (float)i * 0.5f;
    }
    for (int i = 0; i < PROTO_FACE_EMBEDDING_DIM; i++)
        EMBEDDING[i] = (float)emb_value(i, 0);
}

static void test_proto_faces_response_has_every_field(void **state)
{
    (void)state;
    fill_face_data();
    const struct proto_face faces[] = {
        {{-3.5f, 10.254f, 200.0f, 250.5f}, 0.987654f, LANDMARKS, EMBEDDING},
        {{300.0f, 40.0f, 340.0f, 90.0f}, 0.51f, NULL, NULL},
    };
    const struct proto_faces_response r = {
        .request_id = "rid-7", .landmark_model = "face_landmark_68",
        .recognition_model = "face_recognition", .width = 640, .height = 480, .exif_rotated = 1,
        .faces = faces, .count = 2,
        .timing_ms = {1.5, 0.25, 20.125, 3.0, 40.0, 65.5}};
    json_t *j = parse(proto_faces_response_json(&r));
    static const char *const top[] = {"request_id", "model", "image", "faces", "count", "timing_ms", NULL};
    assert_keys(j, top);
    assert_string_equal(json_string_value(at(j, "request_id")), "rid-7");
    json_t *model = at(j, "model");
    assert_string_equal(json_string_value(at(model, "detector")), "tiny_face_detector");
    assert_string_equal(json_string_value(at(model, "landmarks")), "face_landmark_68");
    assert_string_equal(json_string_value(at(model, "recognition")), "face_recognition");
    json_t *image = at(j, "image");
    assert_int_equal(json_integer_value(at(image, "width")), 640);
    assert_int_equal(json_integer_value(at(image, "height")), 480);
    assert_true(json_is_true(at(image, "exif_rotated")));
    assert_int_equal(json_integer_value(at(j, "count")), 2);
    json_t *fs = at(j, "faces");
    assert_int_equal(json_array_size(fs), 2);
    json_t *f0 = json_array_get(fs, 0);
    static const char *const full[] = {"box", "det_score", "landmarks", "embedding", NULL};
    assert_keys(f0, full);
    json_t *box = at(f0, "box");
    assert_true(num_at(box, "x1") == -3.5); /* as predicted: not clipped */
    assert_float_equal(num_at(box, "y1"), 10.25, 1e-9);
    assert_true(num_at(box, "x2") == 200.0);
    assert_true(num_at(box, "y2") == 250.5);
    assert_float_equal(num_at(f0, "det_score"), 0.9877, 1e-9);
    json_t *lm = at(f0, "landmarks");
    assert_int_equal(json_array_size(lm), 68);
    for (int i = 0; i < 68; i++) {
        json_t *p = json_array_get(lm, (size_t)i);
        assert_int_equal(json_array_size(p), 2);
        assert_float_equal(json_number_value(json_array_get(p, 0)), LANDMARKS[2 * i], 0.005 + 1e-6);
        assert_float_equal(json_number_value(json_array_get(p, 1)), LANDMARKS[2 * i + 1], 0.005 + 1e-6);
    }
    json_t *emb = at(f0, "embedding");
    assert_int_equal(json_array_size(emb), 128);
    for (int i = 0; i < 128; i++) /* 6 significant digits */
        assert_float_equal(json_number_value(json_array_get(emb, (size_t)i)), EMBEDDING[i],
                           fabs(EMBEDDING[i]) * 1e-5 + 1e-9);
    static const char *const bare[] = {"box", "det_score", NULL};
    assert_keys(json_array_get(fs, 1), bare);
    json_t *t = at(j, "timing_ms");
    static const char *const timing[] = {"decode",    "queue", "detect", "landmarks",
                                         "embedding", "total", NULL};
    assert_keys(t, timing);
    assert_true(num_at(t, "detect") == 20.125);
    assert_true(num_at(t, "total") == 65.5);
    json_decref(j);
}

static void test_proto_faces_response_no_face_is_an_empty_list(void **state)
{
    (void)state;
    const struct proto_faces_response r = {.detector_model = "tiny", .width = 1, .height = 1};
    json_t *j = parse(proto_faces_response_json(&r));
    assert_null(json_object_get(j, "request_id"));
    json_t *model = at(j, "model");
    static const char *const only[] = {"detector", NULL};
    assert_keys(model, only);
    assert_string_equal(json_string_value(at(model, "detector")), "tiny");
    assert_true(json_is_array(at(j, "faces")));
    assert_int_equal(json_array_size(at(j, "faces")), 0);
    assert_int_equal(json_integer_value(at(j, "count")), 0);
    assert_true(json_is_false(at(at(j, "image"), "exif_rotated")));
    json_decref(j);
}

static void test_proto_faces_response_non_finite_fails(void **state)
{
    (void)state;
    fill_face_data();
    float bad[PROTO_FACE_EMBEDDING_DIM];
    memcpy(bad, EMBEDDING, sizeof bad);
    bad[7] = NAN;
    struct proto_face f = {{0, 0, 1, 1}, 0.5f, NULL, bad};
    const struct proto_faces_response r = {.width = 2, .height = 2, .faces = &f, .count = 1};
    assert_null(proto_faces_response_json(&r)); /* never "null" or a silently shorter list */
    float lm[PROTO_FACE_LANDMARKS * 2];
    memcpy(lm, LANDMARKS, sizeof lm);
    lm[3] = INFINITY;
    f.embedding = NULL;
    f.landmarks = lm;
    assert_null(proto_faces_response_json(&r));
}

static void test_proto_faces_deepstack_integer_pixels_clamped(void **state)
{
    (void)state;
    const struct proto_face faces[] = {
        {{-3.5f, 10.9f, 700.0f, 250.5f}, 0.987654f, LANDMARKS, EMBEDDING},
        {{300.2f, 40.0f, 340.99f, 90.0f}, 0.5f, NULL, NULL},
    };
    const struct proto_faces_response r = {.request_id = "x", .width = 640, .height = 480,
                                           .faces = faces, .count = 2, .timing_ms = {.total = 41.4}};
    json_t *j = parse(proto_faces_deepstack_json(&r));
    static const char *const top[] = {"success", "predictions", "count", "duration", NULL};
    assert_keys(j, top);
    assert_int_equal(json_integer_value(at(j, "duration")), 41);
    assert_true(json_is_true(at(j, "success")));
    assert_int_equal(json_integer_value(at(j, "count")), 2);
    json_t *p = json_array_get(at(j, "predictions"), 0);
    static const char *const pred[] = {"confidence", "x_min", "y_min", "x_max", "y_max", NULL};
    assert_keys(p, pred);
    assert_int_equal(json_integer_value(at(p, "x_min")), 0);
    assert_int_equal(json_integer_value(at(p, "y_min")), 10);
    assert_int_equal(json_integer_value(at(p, "x_max")), 640);
    assert_int_equal(json_integer_value(at(p, "y_max")), 250);
    assert_float_equal(num_at(p, "confidence"), 0.9877, 1e-9);
    p = json_array_get(at(j, "predictions"), 1);
    assert_int_equal(json_integer_value(at(p, "x_min")), 300);
    assert_int_equal(json_integer_value(at(p, "x_max")), 340);
    json_decref(j);
}

static void test_proto_verify_response_has_every_field(void **state)
{
    (void)state;
    const struct proto_verify_response r = {
        .request_id = "rid", .squared_distance = 0.1225, .threshold = 0.6,
        .faces = {{1, {10.0f, 20.0f, 110.0f, 140.0f}, 0.93f, 3}, {0}},
        .timing_ms = {1, 2, 3, 4, 5, 15}};
    json_t *j = parse(proto_verify_response_json(&r));
    static const char *const top[] = {"request_id", "verified", "distance", "squared_distance",
                                      "threshold", "metric", "faces", "timing_ms", NULL};
    assert_keys(j, top);
    assert_true(json_is_true(at(j, "verified")));
    assert_float_equal(num_at(j, "distance"), 0.35, 1e-12);
    assert_float_equal(num_at(j, "squared_distance"), 0.1225, 1e-12);
    assert_float_equal(num_at(j, "threshold"), 0.6, 1e-12);
    assert_string_equal(json_string_value(at(j, "metric")), "euclidean");
    json_t *faces = at(j, "faces");
    static const char *const sides[] = {"image1", "image2", NULL};
    assert_keys(faces, sides);
    json_t *f1 = at(faces, "image1");
    static const char *const face[] = {"box", "det_score", "faces_in_image", "fallback", NULL};
    assert_keys(f1, face);
    assert_true(json_is_false(at(f1, "fallback")));
    assert_true(num_at(at(f1, "box"), "x2") == 110.0);
    assert_int_equal(json_integer_value(at(f1, "faces_in_image")), 3);
    assert_true(json_is_null(at(faces, "image2"))); /* an embedding or an aligned crop */
    static const char *const timing[] = {"decode",    "queue", "detect", "landmarks",
                                         "embedding", "total", NULL};
    assert_keys(at(j, "timing_ms"), timing);
    json_decref(j);
}

static void test_proto_verify_response_threshold_is_strict(void **state)
{
    (void)state;
    struct proto_verify_response r = {.squared_distance = 0.36, .threshold = 0.6};
    json_t *j = parse(proto_verify_response_json(&r)); /* distance 0.6 = threshold: not < */
    assert_true(json_is_false(at(j, "verified")));
    assert_float_equal(num_at(j, "distance"), 0.6, 1e-12);
    json_decref(j);
    r.squared_distance = 0.3599;
    j = parse(proto_verify_response_json(&r));
    assert_true(json_is_true(at(j, "verified")));
    json_decref(j);
    r.threshold = 0; /* nothing verifies */
    r.squared_distance = 0;
    j = parse(proto_verify_response_json(&r));
    assert_true(json_is_false(at(j, "verified")));
    json_decref(j);
    r.squared_distance = -1e-9; /* a bug upstream: no answer rather than a wrong one */
    assert_null(proto_verify_response_json(&r));
    assert_null(proto_verify_deepstack_json(&r));
    r.squared_distance = NAN;
    assert_null(proto_verify_response_json(&r));
    r.squared_distance = INFINITY;
    assert_null(proto_verify_deepstack_json(&r));
}

static void test_proto_verify_similarity_maps_distance(void **state)
{
    (void)state;
    /* f(d) = 0.67^(d / 0.6), written out here rather than through engine/face.h */
    assert_true(proto_verify_similarity(0) == 1.0);
    assert_float_equal(proto_verify_similarity(0.36), 0.67, 1e-12); /* the default threshold */
    assert_float_equal(proto_verify_similarity(1.44), 0.67 * 0.67, 1e-12);
    double prev = 1.0;
    for (double d = 0.05; d < 3.0; d += 0.05) {
        const double s = proto_verify_similarity(d * d);
        assert_true(s < prev && s > 0);
        assert_float_equal(0.6 * log(s) / log(0.67), d, 1e-9); /* invertible */
        prev = s;
    }
    const struct proto_verify_response r = {.squared_distance = 0.09, .threshold = 0.6,
                                            .timing_ms = {.total = 12.6}};
    json_t *j = parse(proto_verify_deepstack_json(&r));
    static const char *const top[] = {"success", "similarity", "duration", NULL};
    assert_keys(j, top);
    assert_true(json_is_true(at(j, "success")));
    assert_float_equal(num_at(j, "similarity"), pow(0.67, 0.5), 1e-6);
    assert_int_equal(json_integer_value(at(j, "duration")), 13);
    json_decref(j);
}

/* ---- out of memory ---------------------------------------------------------------------------- */

/* jansson allocations fail after `budget` successes: every encoder and parser must then give NULL /
 * INTERNAL without leaking (LeakSanitizer checks). */
#include "failing_alloc.h"

static void test_proto_face_out_of_memory_fails_cleanly(void **state)
{
    (void)state;
    fill_face_data();
    const struct proto_face faces[] = {{{1, 2, 3, 4}, 0.9f, LANDMARKS, EMBEDDING}};
    const struct proto_faces_response fr = {.request_id = "id", .landmark_model = "l", .width = 9,
                                            .height = 9, .faces = faces, .count = 1};
    const struct proto_verify_response vr = {.request_id = "id", .squared_distance = 0.2, .threshold = 0.6,
                                             .faces = {{1, {1, 2, 3, 4}, 0.9f, 1}, {0}}};
    /* Short numbers: jansson itself asserts (lex_unget_unsave) when an allocation fails while it lexes
     * a token longer than its 16-byte buffer. */
    char list[128 * 8 + 8];
    size_t o = 0;
    for (int i = 0; i < 128; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%d.5", i ? "," : "[", i - 64);
    snprintf(list + o, sizeof list - o, "]");
    char *body = body_with("embedding1", strdup(list), ",\"image2_b64\":\"/9j/4A==\"");
    json_set_alloc_funcs(failing_malloc, free);
    int succeeded = 0;
    for (long n = 0; n < 2000 && succeeded < 5; n++) {
        char *out[4];
        budget = n;
        out[0] = proto_faces_response_json(&fr);
        budget = n;
        out[1] = proto_faces_deepstack_json(&fr);
        budget = n;
        out[2] = proto_verify_response_json(&vr);
        budget = n;
        out[3] = proto_verify_deepstack_json(&vr);
        succeeded = 0;
        for (int i = 0; i < 4; i++) {
            succeeded += out[i] != NULL;
            free(out[i]);
        }
        struct proto_verify_request req;
        struct proto_err e = {0};
        proto_verify_request_init(&req, PROTO_DIALECT_NATIVE);
        budget = n;
        const int rc = proto_verify_request_parse_json(&req, body, strlen(body), &e);
        if (rc) /* jansson reports some allocation failures as syntax errors */
            assert_true(e.code == PROTO_ERR_INTERNAL || e.code == PROTO_ERR_BAD_JSON);
        else
            succeeded++;
        proto_verify_request_release(&req);
    }
    budget = -1;
    json_set_alloc_funcs(malloc, free);
    free(body);
    assert_int_equal(succeeded, 5);
}

static int restore_allocator(void **state)
{
    (void)state;
    budget = -1;
    json_set_alloc_funcs(malloc, free);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_face_defaults_then_valid_values_stored),
        cmocka_unit_test(test_proto_face_det_threshold_out_of_range_rejected),
        cmocka_unit_test(test_proto_face_input_size_multiple_of_32_enforced),
        cmocka_unit_test(test_proto_face_limit_and_booleans_checked),
        cmocka_unit_test(test_proto_face_unknown_params_rejected_with_hint),
        cmocka_unit_test(test_proto_face_twice_rejected),
        cmocka_unit_test(test_proto_face_check_missing_or_empty_image_rejected),
        cmocka_unit_test(test_proto_face_deepstack_dialect_names_and_defaults),
        cmocka_unit_test(test_proto_face_json_body_parsed),
        cmocka_unit_test(test_proto_face_json_errors_name_the_path),
        cmocka_unit_test(test_proto_verify_defaults_then_valid_values_stored),
        cmocka_unit_test(test_proto_verify_face_select_and_match_threshold_checked),
        cmocka_unit_test(test_proto_verify_unknown_params_rejected_with_hint),
        cmocka_unit_test(test_proto_verify_min_det_threshold_parsed_and_checked),
        cmocka_unit_test(test_proto_verify_embeddings_json_parsed),
        cmocka_unit_test(test_proto_verify_embedding_text_parsed),
        cmocka_unit_test(test_proto_verify_embedding_wrong_length_rejected),
        cmocka_unit_test(test_proto_verify_embedding_non_numbers_rejected),
        cmocka_unit_test(test_proto_verify_one_image_one_embedding_accepted),
        cmocka_unit_test(test_proto_verify_missing_side_names_the_field),
        cmocka_unit_test(test_proto_verify_side_given_twice_or_both_ways_rejected),
        cmocka_unit_test(test_proto_verify_deepstack_dialect_takes_its_form),
        cmocka_unit_test(test_proto_face_no_face_names_the_image),
        cmocka_unit_test(test_proto_faces_response_has_every_field),
        cmocka_unit_test(test_proto_faces_response_no_face_is_an_empty_list),
        cmocka_unit_test(test_proto_faces_response_non_finite_fails),
        cmocka_unit_test(test_proto_faces_deepstack_integer_pixels_clamped),
        cmocka_unit_test(test_proto_verify_response_has_every_field),
        cmocka_unit_test(test_proto_verify_response_threshold_is_strict),
        cmocka_unit_test(test_proto_verify_similarity_maps_distance),
        cmocka_unit_test_teardown(test_proto_face_out_of_memory_fails_cleanly, restore_allocator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
