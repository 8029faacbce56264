/* test_proto_gallery.c - the gallery routes' JSON bodies (names, embeddings, identify's options) with
 * their errors and JSON paths, the paging cursor, and the answers parsed back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face.h"
#include "proto_gallery.h"

#define FP "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const unsigned char *U(const char *s) { return (const unsigned char *)s; }

/* {"embeddings": [n arrays of dim numbers], "model_fingerprint": fp}, new string. */
static char *emb_body(int n, int dim, const char *fp, const char *poison)
{
    size_t cap = 64 + (size_t)n * dim * 12 + 200;
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "{\"embeddings\":[");
    for (int i = 0; i < n; i++) {
        p += sprintf(p, "%s[", i ? "," : "");
        for (int k = 0; k < dim; k++)
            p += sprintf(p, "%s%s", k ? "," : "", poison && i == n - 1 && k == 5 ? poison : "0.015625");
        p += sprintf(p, "]");
    }
    p += sprintf(p, "]");
    if (fp)
        p += sprintf(p, ",\"model_fingerprint\":\"%s\"", fp);
    sprintf(p, "}");
    return s;
}

static void test_proto_gallery_name_body_rules(void **state)
{
    (void)state;
    struct proto_err e;
    char *name = NULL;
    const char *ok = "{\"name\":\"Zoë\"}";
    assert_int_equal(proto_gallery_name_body(U(ok), strlen(ok), &name, &e), 0);
    assert_string_equal(name, "Zoë");
    free(name);
    const char *bad[] = {"{\"name\":3}", "{}", "{\"name\":\"a\",\"x\":1}", "[\"a\"]", "{\"name\":", "{\"name\":\"a\\u0000b\"}"};
    const enum proto_code code[] = {PROTO_ERR_INVALID_PARAM, PROTO_ERR_INVALID_PARAM, PROTO_ERR_INVALID_PARAM,
                                    PROTO_ERR_BAD_JSON, PROTO_ERR_BAD_JSON, PROTO_ERR_BAD_JSON};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(proto_gallery_name_body(U(bad[i]), strlen(bad[i]), &name, &e), -1);
        assert_int_equal(e.code, code[i]);
        assert_null(name);
    }
}

static void test_proto_gallery_enroll_body_embeddings(void **state)
{
    (void)state;
    struct proto_err e;
    struct proto_gallery_embeddings g;
    char *b = emb_body(3, 128, FP, NULL);
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), 0);
    assert_int_equal(g.n, 3);
    assert_true(g.emb[2][127] == 0.015625f);
    assert_string_equal(g.fingerprint, FP);
    proto_gallery_embeddings_release(&g);
    free(b);

    b = emb_body(2, 127, FP, NULL); /* wrong length */
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), -1);
    assert_int_equal(e.code, PROTO_ERR_INVALID_PARAM);
    assert_string_equal(e.field, "$.embeddings[0]");
    assert_null(g.emb);
    free(b);
    b = emb_body(2, 128, FP, "\"x\""); /* not a number */
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), -1);
    assert_string_equal(e.field, "$.embeddings[1][5]");
    free(b);
    b = emb_body(1, 128, FP, "NaN"); /* JSON has no NaN */
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), -1);
    assert_int_equal(e.code, PROTO_ERR_BAD_JSON);
    free(b);
    b = emb_body(1, 128, FP, "1e999"); /* overflows to infinity */
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), -1);
    free(b);
    b = emb_body(1, 128, NULL, NULL); /* the fingerprint is required */
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), -1);
    assert_string_equal(e.field, "$.model_fingerprint");
    free(b);
    b = emb_body(1, 128, "ABC", NULL);
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), -1);
    assert_string_equal(e.field, "$.model_fingerprint");
    free(b);
    b = emb_body(PROTO_GAL_MAX_EMBEDDINGS + 1, 128, FP, NULL);
    assert_int_equal(proto_gallery_enroll_body(U(b), strlen(b), &g, &e), -1);
    assert_string_equal(e.field, "$.embeddings");
    free(b);
}

static void test_proto_gallery_identify_body_and_options(void **state)
{
    (void)state;
    struct proto_err e;
    struct proto_gallery_embeddings g;
    struct proto_identify_opts o;
    proto_identify_opts_init(&o);
    assert_int_equal(o.top_k, 3);
    assert_true(fabs(o.match_threshold - ENG_FACE_MATCH_THRESHOLD) < 1e-12);
    char body[4096], *p = body;
    p += sprintf(p, "{\"top_k\":5,\"match_threshold\":0.5,\"embedding\":[");
    for (int k = 0; k < 128; k++)
        p += sprintf(p, "%s%d", k ? "," : "", k);
    sprintf(p, "]}");
    assert_int_equal(proto_identify_body(U(body), strlen(body), &g, &o, &e), 0);
    assert_int_equal(g.n, 1);
    assert_true(g.emb[0][127] == 127.0f);
    assert_int_equal(o.top_k, 5);
    assert_true(o.match_threshold == 0.5);
    proto_gallery_embeddings_release(&g);
    assert_int_equal(proto_identify_opt_text(&o, "top_k", "0", &e), -1);
    assert_int_equal(proto_identify_opt_text(&o, "top_k", "65", &e), -1);
    assert_int_equal(proto_identify_opt_text(&o, "match_threshold", "nan", &e), -1);
    assert_int_equal(proto_identify_opt_text(&o, "match_threshold", "-1", &e), -1);
    assert_int_equal(proto_identify_opt_text(&o, "det_threshold", "0.3", &e), 1);
    const char *none = "{\"top_k\":2}";
    assert_int_equal(proto_identify_body(U(none), strlen(none), &g, &o, &e), -1);
    assert_string_equal(e.field, "$.embedding");
}

static void test_proto_gallery_cursor_round_trip(void **state)
{
    (void)state;
    char c[300], back[130];
    struct proto_err e;
    proto_cursor_encode("Zoë Å", c, sizeof c);
    assert_int_equal(proto_cursor_decode(c, back, sizeof back, &e), 0);
    assert_string_equal(back, "Zoë Å");
    assert_int_equal(proto_cursor_decode("abc", back, sizeof back, &e), -1);
    assert_int_equal(proto_cursor_decode("zz", back, sizeof back, &e), -1);
    assert_int_equal(proto_cursor_decode("00", back, sizeof back, &e), -1);
}

static void test_proto_gallery_identify_answer_unknown_is_null(void **state)
{
    (void)state;
    struct proto_identify_candidate c[2] = {{"Ann", 7, 0.3}, {"Bob", 9, 0.8}};
    struct proto_identify_face f[2] = {
        {.detected = 1, .box = {1, 2, 30, 40}, .det_score = 0.9, .cand = c, .n_cand = 2},
        {.detected = 0, .cand = c + 1, .n_cand = 1},
    };
    char *s = proto_identify_json("req-1", f, 2, 0.6, 12.5);
    assert_non_null(s);
    json_t *doc = json_loads(s, 0, NULL);
    free(s);
    assert_non_null(doc);
    json_t *faces = json_object_get(doc, "faces");
    json_t *m = json_object_get(json_array_get(faces, 0), "match");
    assert_string_equal(json_string_value(json_object_get(m, "subject")), "Ann");
    assert_int_equal(json_integer_value(json_object_get(m, "face_id")), 7);
    assert_true(fabs(json_real_value(json_object_get(m, "confidence")) - eng_face_confidence(0.3)) < 1e-4);
    assert_true(json_is_null(json_object_get(json_array_get(faces, 1), "match")));
    assert_true(json_is_null(json_object_get(json_array_get(faces, 1), "box")));
    assert_int_equal(json_array_size(json_object_get(json_array_get(faces, 0), "candidates")), 2);
    json_decref(doc);
}

static void test_proto_gallery_deepstack_shapes(void **state)
{
    (void)state;
    struct proto_ds_recognized r[1] = {{"unknown", 0.41, 1, 2, 3, 4}};
    char *s = proto_ds_recognize_json(r, 1, 20);
    json_t *doc = json_loads(s, 0, NULL);
    free(s);
    assert_true(json_is_true(json_object_get(doc, "success")));
    json_t *p = json_array_get(json_object_get(doc, "predictions"), 0);
    assert_string_equal(json_string_value(json_object_get(p, "userid")), "unknown");
    assert_true(json_is_integer(json_object_get(p, "x_max")));
    json_decref(doc);
    const char *names[] = {"a", "b"};
    s = proto_ds_list_json(names, 2);
    assert_string_equal(s, "{\"success\":true,\"faces\":[\"a\",\"b\"]}");
    free(s);
    s = proto_ds_register_json();
    assert_string_equal(s, "{\"success\":true,\"message\":\"face added\"}");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_gallery_name_body_rules),
        cmocka_unit_test(test_proto_gallery_enroll_body_embeddings),
        cmocka_unit_test(test_proto_gallery_identify_body_and_options),
        cmocka_unit_test(test_proto_gallery_cursor_round_trip),
        cmocka_unit_test(test_proto_gallery_identify_answer_unknown_is_null),
        cmocka_unit_test(test_proto_gallery_deepstack_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
