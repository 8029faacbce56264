/* test_params.c - the routes' parameter sinks (server/srv_params.c), which the daemon's routes and
 * fuzz_http share: what each sink does with a query argument, a form part, a raw body, a JSON body and
 * the X-Timeout-Ms header, called as srv_collect_params calls them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "srv_params.h"

static const unsigned char IMG[] = {0x89, 'P', 'N', 'G'}; /* bytes only: the sinks never decode */

/* ---- X-Timeout-Ms: applies when no timeout_ms parameter came, yields to one that did ---- */

static void test_params_timeout_header_yields_to_parameter(void **state)
{
    (void)state;
    struct proto_err e = {0};
    struct proto_detect_request d;
    proto_detect_request_init(&d, PROTO_DIALECT_NATIVE);
    struct srv_param_sink s = srv_params_detect_sink(&d);
    assert_int_equal(srv_params_timeout_header(&s, "250", &e), 0);
    assert_int_equal(d.timeout_ms, 250);
    proto_detect_request_release(&d);
    assert_int_equal(s.set(s.req, "timeout_ms", "100", &e), 0);
    assert_int_equal(srv_params_timeout_header(&s, "250", &e), 0);
    assert_int_equal(d.timeout_ms, 100);
    proto_detect_request_release(&d);

    struct proto_face_request f;
    proto_face_request_init(&f, PROTO_DIALECT_NATIVE);
    s = srv_params_faces_sink(&f);
    assert_int_equal(srv_params_timeout_header(&s, "300", &e), 0);
    assert_int_equal(f.opt.timeout_ms, 300);
    proto_face_request_release(&f);
    assert_int_equal(s.set(s.req, "timeout_ms", "120", &e), 0);
    assert_int_equal(srv_params_timeout_header(&s, "300", &e), 0);
    assert_int_equal(f.opt.timeout_ms, 120);
    proto_face_request_release(&f);

    struct proto_verify_request v;
    proto_verify_request_init(&v, PROTO_DIALECT_NATIVE);
    s = srv_params_verify_sink(&v);
    assert_int_equal(srv_params_timeout_header(&s, "350", &e), 0);
    assert_int_equal(v.opt.timeout_ms, 350);
    proto_verify_request_release(&v);
    assert_int_equal(s.set(s.req, "timeout_ms", "140", &e), 0);
    assert_int_equal(srv_params_timeout_header(&s, "350", &e), 0);
    assert_int_equal(v.opt.timeout_ms, 140);
    proto_verify_request_release(&v);
}

static void test_params_bad_timeout_header_invalid_param(void **state)
{
    (void)state;
    struct proto_err e = {0};
    struct proto_face_request f;
    proto_face_request_init(&f, PROTO_DIALECT_NATIVE);
    const struct srv_param_sink s = srv_params_faces_sink(&f);
    assert_int_equal(srv_params_timeout_header(&s, "soon", &e), -1);
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    assert_string_equal(e.field, "timeout_ms");
    proto_face_request_release(&f);
}

/* ---- images: the image field and a raw body are borrowed; other parts are parameters ---- */

static void test_params_detect_and_faces_image_borrowed_raw_body_accepted(void **state)
{
    (void)state;
    struct proto_err e = {0};
    struct proto_detect_request d;
    proto_detect_request_init(&d, PROTO_DIALECT_NATIVE);
    struct srv_param_sink s = srv_params_detect_sink(&d);
    assert_int_equal(s.raw_body_ok, 1);
    assert_int_equal(s.set_image(s.req, NULL, IMG, sizeof IMG, &e), 0); /* raw body */
    assert_ptr_equal(d.image, IMG);
    assert_int_equal(d.image_len, sizeof IMG);
    assert_int_equal(s.set_image(s.req, "image", IMG, sizeof IMG, &e), -1);
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM); /* given more than once */
    assert_string_equal(e.field, "image");
    proto_detect_request_release(&d);

    struct proto_face_request f;
    proto_face_request_init(&f, PROTO_DIALECT_NATIVE);
    s = srv_params_faces_sink(&f);
    assert_int_equal(s.raw_body_ok, 1);
    assert_int_equal(s.set_image(s.req, "image", IMG, sizeof IMG, &e), 0);
    assert_ptr_equal(f.image.data, IMG);
    assert_int_equal(f.image.len, sizeof IMG);
    assert_null(f.image.owned);
    proto_face_request_release(&f);
}

/* A file part named like a parameter (curl -F limit=@file) sets that parameter. */
static void test_params_other_file_part_is_parameter(void **state)
{
    (void)state;
    struct proto_err e = {0};
    struct proto_face_request f;
    proto_face_request_init(&f, PROTO_DIALECT_NATIVE);
    const struct srv_param_sink s = srv_params_faces_sink(&f);
    assert_int_equal(s.set_image(s.req, "limit", (const unsigned char *)"3", 1, &e), 0);
    assert_int_equal(f.limit, 3);
    assert_null(f.image.data);
    proto_face_request_release(&f);

    struct proto_detect_request d;
    proto_detect_request_init(&d, PROTO_DIALECT_NATIVE);
    const struct srv_param_sink ds = srv_params_detect_sink(&d);
    assert_int_equal(ds.set_image(ds.req, "imagex", (const unsigned char *)"1", 1, &e), -1);
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    assert_string_equal(e.field, "imagex");
    assert_null(d.image);
    proto_detect_request_release(&d);
}

static void test_params_verify_two_images_raw_body_unsupported_media_type(void **state)
{
    (void)state;
    struct proto_err e = {0};
    struct proto_verify_request v;
    proto_verify_request_init(&v, PROTO_DIALECT_NATIVE);
    const struct srv_param_sink s = srv_params_verify_sink(&v);
    assert_int_equal(s.raw_body_ok, 0);
    assert_int_equal(s.set_image(s.req, NULL, IMG, sizeof IMG, &e), -1);
    assert_int_equal(e.code, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE);
    assert_string_equal(e.field, "Content-Type");

    assert_int_equal(s.set_image(s.req, "image2", IMG, sizeof IMG, &e), 0);
    assert_int_equal(v.side[1].input, PROTO_VERIFY_IMAGE);
    assert_ptr_equal(v.side[1].image.data, IMG);
    assert_int_equal(v.side[0].input, PROTO_VERIFY_NONE);
    assert_int_equal(s.set_image(s.req, "image1", IMG, 2, &e), 0);
    assert_int_equal(v.side[0].image.len, 2);
    assert_int_equal(s.set_image(s.req, "aligned", (const unsigned char *)"true", 4, &e), 0);
    assert_int_equal(v.aligned, 1);
    assert_int_equal(s.set_image(s.req, "image3", IMG, sizeof IMG, &e), -1);
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    assert_string_equal(e.field, "image3");
    proto_verify_request_release(&v);
}

/* ---- JSON bodies go to the route's parser ---- */

static void test_params_json_body_parsed_by_route(void **state)
{
    (void)state;
    struct proto_err e = {0};
    static const char faces_json[] = "{\"limit\":2,\"timeout_ms\":90}";
    struct proto_face_request f;
    proto_face_request_init(&f, PROTO_DIALECT_NATIVE);
    struct srv_param_sink s = srv_params_faces_sink(&f);
    assert_int_equal(s.parse_json(s.req, faces_json, strlen(faces_json), &e), 0);
    assert_int_equal(f.limit, 2);
    assert_int_equal(f.opt.timeout_ms, 90);
    assert_int_equal(srv_params_timeout_header(&s, "500", &e), 0); /* after the body, as collected */
    assert_int_equal(f.opt.timeout_ms, 90);
    proto_face_request_release(&f);

    static const char verify_json[] = "{\"match_threshold\":0.5}";
    struct proto_verify_request v;
    proto_verify_request_init(&v, PROTO_DIALECT_NATIVE);
    s = srv_params_verify_sink(&v);
    assert_int_equal(s.parse_json(s.req, verify_json, strlen(verify_json), &e), 0);
    assert_true(v.match_threshold == 0.5);
    proto_verify_request_release(&v);

    struct proto_detect_request d;
    proto_detect_request_init(&d, PROTO_DIALECT_NATIVE);
    s = srv_params_detect_sink(&d);
    assert_int_equal(s.parse_json(s.req, "{\"conf\":", 8, &e), -1);
    assert_int_equal(e.code, PROTO_ERR_BAD_JSON);
    proto_detect_request_release(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_timeout_header_yields_to_parameter),
        cmocka_unit_test(test_params_bad_timeout_header_invalid_param),
        cmocka_unit_test(test_params_detect_and_faces_image_borrowed_raw_body_accepted),
        cmocka_unit_test(test_params_other_file_part_is_parameter),
        cmocka_unit_test(test_params_verify_two_images_raw_body_unsupported_media_type),
        cmocka_unit_test(test_params_json_body_parsed_by_route),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
