/* test_box.c - IoU and greedy non-max suppression (engine/box.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "detect.h"

#define assert_near(actual, expected, tol)                                                        \
    do {                                                                                          \
        const double a_ = (actual), e_ = (expected);                                              \
        if (!(fabs(a_ - e_) <= (tol)))                                                            \
            fail_msg("%s = %.9g, expected %.9g (tolerance %g)", #actual, a_, e_, (double)(tol));  \
    } while (0)

static struct eng_box box(float x1, float y1, float x2, float y2)
{
    return (struct eng_box){x1, y1, x2, y2};
}

static struct eng_detection det(float x1, float y1, float x2, float y2, float conf, int cls)
{
    return (struct eng_detection){.box = {x1, y1, x2, y2}, .confidence = conf, .class_id = cls};
}

/* IoU must not depend on the argument order. */
static float iou_both(struct eng_box a, struct eng_box b)
{
    const float ab = eng_box_iou(a, b), ba = eng_box_iou(b, a);
    if (!(ab == ba || (isnan(ab) && isnan(ba))))
        fail_msg("iou(a, b) = %.9g but iou(b, a) = %.9g", (double)ab, (double)ba);
    return ab;
}

/* ---- IoU -------------------------------------------------------------------------------------- */

static void test_iou_identical_is_one(void **state)
{
    (void)state;
    assert_near(iou_both(box(0, 0, 1, 1), box(0, 0, 1, 1)), 1.0, 0);
    assert_near(iou_both(box(10.5f, 20, 30, 44.25f), box(10.5f, 20, 30, 44.25f)), 1.0, 1e-7);
    assert_near(iou_both(box(-3, -2, -1, 5), box(-3, -2, -1, 5)), 1.0, 0);
}

static void test_iou_disjoint_is_zero(void **state)
{
    (void)state;
    assert_near(iou_both(box(0, 0, 1, 1), box(2, 2, 3, 3)), 0.0, 0);
    assert_near(iou_both(box(0, 0, 1, 1), box(0, 5, 1, 6)), 0.0, 0); /* overlap in x only */
    assert_near(iou_both(box(0, 0, 1, 1), box(5, 0, 6, 1)), 0.0, 0); /* overlap in y only */
}

static void test_iou_touching_is_zero(void **state)
{
    (void)state;
    assert_near(iou_both(box(0, 0, 1, 1), box(1, 0, 2, 1)), 0.0, 0); /* shared edge */
    assert_near(iou_both(box(0, 0, 1, 1), box(0, 1, 1, 2)), 0.0, 0);
    assert_near(iou_both(box(0, 0, 1, 1), box(1, 1, 2, 2)), 0.0, 0); /* shared corner */
}

static void test_iou_nested_is_area_ratio(void **state)
{
    (void)state;
    assert_near(iou_both(box(0, 0, 4, 4), box(1, 1, 3, 3)), 4.0 / 16.0, 1e-7);
    assert_near(iou_both(box(0, 0, 10, 10), box(0, 0, 10, 5)), 0.5, 1e-7); /* sharing three edges */
    assert_near(iou_both(box(0, 0, 100, 50), box(25, 10, 35, 20)), 100.0 / 5000.0, 1e-7);
}

static void test_iou_partial_overlap_hand_computed(void **state)
{
    (void)state;
    /* 2x2 squares offset by (1, 1): intersection 1, union 4 + 4 - 1 = 7. */
    assert_near(iou_both(box(0, 0, 2, 2), box(1, 1, 3, 3)), 1.0 / 7.0, 1e-7);
    /* 4x2 and 4x4 sharing a 2x1 area: 2 / (8 + 16 - 2) = 1/11. */
    assert_near(iou_both(box(0, 0, 4, 2), box(2, 1, 6, 5)), 1.0 / 11.0, 1e-7);
    /* Half-offset in x only: 2 / (3 + 3 - 2) = 0.5 exactly. */
    assert_near(iou_both(box(0, 0, 3, 1), box(1, 0, 4, 1)), 0.5, 0);
    /* Normalized coordinates, as NMS sees them before mapping to pixels. */
    assert_near(iou_both(box(0.1f, 0.1f, 0.5f, 0.5f), box(0.3f, 0.3f, 0.7f, 0.7f)),
                0.04 / (0.16 + 0.16 - 0.04), 1e-6);
}

static void test_iou_degenerate_boxes_are_zero(void **state)
{
    (void)state;
    const struct eng_box big = box(0, 0, 2, 2);
    assert_near(iou_both(box(1, 1, 1, 1), big), 0.0, 0);     /* a point inside */
    assert_near(iou_both(box(1, 0, 1, 2), big), 0.0, 0);     /* a vertical segment */
    assert_near(iou_both(box(0, 1, 2, 1), big), 0.0, 0);     /* a horizontal segment */
    assert_near(iou_both(box(1, 1, 1, 1), box(1, 1, 1, 1)), 0.0, 0);
    assert_near(iou_both(box(2, 2, 0, 0), big), 0.0, 0);     /* inverted corners */
    assert_near(iou_both(box(2, 2, 0, 0), box(2, 2, 0, 0)), 0.0, 0);
    assert_near(iou_both(box(2, 0, 0, 2), box(2, 0, 0, 2)), 0.0, 0); /* inverted in x only */
}

static void test_iou_nan_boxes_are_zero(void **state)
{
    (void)state;
    const struct eng_box ok = box(0, 0, 1, 1);
    const float coords[4] = {0, 0, 1, 1};
    /* NaN in each coordinate, of one box and of both. */
    for (int i = 0; i < 4; i++) {
        float c[4];
        memcpy(c, coords, sizeof c);
        c[i] = NAN;
        const struct eng_box bad = box(c[0], c[1], c[2], c[3]);
        const float v = iou_both(bad, ok);
        if (v != 0.0f)
            fail_msg("NaN in coordinate %d: iou = %g, expected 0", i, (double)v);
        assert_true(eng_box_iou(bad, bad) == 0.0f);
    }
    assert_true(eng_box_iou(box(NAN, NAN, NAN, NAN), box(NAN, NAN, NAN, NAN)) == 0.0f);
}

static void test_iou_infinite_boxes_not_nan(void **state)
{
    (void)state;
    const float v = iou_both(box(-INFINITY, -INFINITY, INFINITY, INFINITY), box(0, 0, 1, 1));
    assert_false(isnan(v));
    assert_true(v >= 0.0f && v <= 1.0f);
    const float w = iou_both(box(-INFINITY, 0, INFINITY, 1), box(-INFINITY, 0, INFINITY, 1));
    assert_false(isnan(w));
}

static void test_iou_result_within_unit_interval(void **state)
{
    (void)state;
    uint32_t s = 99;
    for (int i = 0; i < 10000; i++) {
        float v[8];
        for (int k = 0; k < 8; k++) {
            s = s * 1664525u + 1013904223u;
            v[k] = (float)(s >> 8) / 16777216.0f * 10.0f;
        }
        const struct eng_box a = box(fminf(v[0], v[1]), fminf(v[2], v[3]), fmaxf(v[0], v[1]),
                                     fmaxf(v[2], v[3]));
        const struct eng_box b = box(fminf(v[4], v[5]), fminf(v[6], v[7]), fmaxf(v[4], v[5]),
                                     fmaxf(v[6], v[7]));
        const float r = iou_both(a, b);
        if (!(r >= 0.0f && r <= 1.0f))
            fail_msg("iou = %g outside [0, 1]", (double)r);
    }
}

/* ---- NMS -------------------------------------------------------------------------------------- */

static void test_nms_same_class_overlap_suppressed(void **state)
{
    (void)state;
    struct eng_detection d[2] = {det(0, 0, 10, 10, 0.8f, 3), det(1, 1, 11, 11, 0.9f, 3)};
    assert_int_equal(eng_nms(d, 2, 0.45f, 0, 0), 1);
    assert_near(d[0].confidence, 0.9, 1e-7); /* the stronger one survives */
    assert_near(d[0].box.x1, 1, 0);
    assert_int_equal(d[0].class_id, 3);
}

static void test_nms_different_classes_kept(void **state)
{
    (void)state;
    struct eng_detection d[2] = {det(0, 0, 10, 10, 0.9f, 0), det(0, 0, 10, 10, 0.8f, 1)};
    assert_int_equal(eng_nms(d, 2, 0.45f, 0, 0), 2);
    assert_int_equal(d[0].class_id, 0);
    assert_int_equal(d[1].class_id, 1);
}

static void test_nms_agnostic_suppresses_across_classes(void **state)
{
    (void)state;
    struct eng_detection d[3] = {det(0, 0, 10, 10, 0.8f, 1), det(0, 0, 10, 10, 0.9f, 0),
                                 det(50, 50, 60, 60, 0.7f, 1)};
    assert_int_equal(eng_nms(d, 3, 0.45f, 1, 0), 2);
    assert_int_equal(d[0].class_id, 0);
    assert_near(d[0].confidence, 0.9, 1e-7);
    assert_near(d[1].box.x1, 50, 0);
}

static void test_nms_iou_at_threshold_kept(void **state)
{
    (void)state;
    /* IoU exactly 0.5 (2 / 4): suppression needs IoU > thresh. */
    struct eng_detection d[2] = {det(0, 0, 3, 1, 0.9f, 0), det(1, 0, 4, 1, 0.8f, 0)};
    assert_true(eng_box_iou(d[0].box, d[1].box) == 0.5f);
    assert_int_equal(eng_nms(d, 2, 0.5f, 0, 0), 2);

    struct eng_detection e[2] = {det(0, 0, 3, 1, 0.9f, 0), det(1, 0, 4, 1, 0.8f, 0)};
    assert_int_equal(eng_nms(e, 2, 0.49f, 0, 0), 1);
    /* Threshold 0: any overlap suppresses, touching does not. */
    struct eng_detection f[3] = {det(0, 0, 3, 1, 0.9f, 0), det(2.9f, 0, 4, 1, 0.8f, 0),
                                 det(3, 0, 5, 1, 0.7f, 0)};
    assert_int_equal(eng_nms(f, 3, 0.0f, 0, 0), 2);
    assert_near(f[1].box.x1, 3, 0);
    /* Threshold 1: identical boxes are not "more than" 1, so nothing is suppressed. */
    struct eng_detection g[2] = {det(0, 0, 1, 1, 0.9f, 0), det(0, 0, 1, 1, 0.8f, 0)};
    assert_int_equal(eng_nms(g, 2, 1.0f, 0, 0), 2);
}

static void test_nms_greedy_suppressed_box_suppresses_nothing(void **state)
{
    (void)state;
    /* B overlaps A and C by IoU 0.5, A and C by only 0.2: B goes, so C stays. */
    struct eng_detection d[3] = {det(4, 0, 10, 1, 0.7f, 0), det(0, 0, 6, 1, 0.9f, 0),
                                 det(2, 0, 8, 1, 0.8f, 0)};
    assert_int_equal(eng_nms(d, 3, 0.3f, 0, 0), 2);
    assert_near(d[0].confidence, 0.9, 1e-7);
    assert_near(d[1].confidence, 0.7, 1e-7);
}

static void test_nms_max_det_caps_after_suppression(void **state)
{
    (void)state;
    /* Six disjoint boxes plus a duplicate of the best: max_det counts kept boxes only. */
    struct eng_detection d[7];
    for (int i = 0; i < 6; i++)
        d[i] = det((float)(10 * i), 0, (float)(10 * i + 5), 5, 0.1f * (float)(i + 1), 0);
    d[6] = det(50, 0, 55, 5, 0.55f, 0); /* overlaps the 0.6 one entirely */
    assert_int_equal(eng_nms(d, 7, 0.45f, 0, 3), 3);
    assert_near(d[0].confidence, 0.6, 1e-6);
    assert_near(d[1].confidence, 0.5, 1e-6);
    assert_near(d[2].confidence, 0.4, 1e-6);

    struct eng_detection e[4] = {det(0, 0, 1, 1, 0.5f, 0), det(2, 2, 3, 3, 0.6f, 0),
                                 det(4, 4, 5, 5, 0.7f, 0), det(6, 6, 7, 7, 0.8f, 0)};
    assert_int_equal(eng_nms(e, 4, 0.45f, 0, 0), 4);  /* 0: no cap */
    assert_int_equal(eng_nms(e, 4, 0.45f, 0, -1), 4); /* negative: no cap */
    assert_int_equal(eng_nms(e, 4, 0.45f, 0, 1), 1);
    assert_near(e[0].confidence, 0.8, 1e-7);
}

static void test_nms_output_sorted_by_confidence(void **state)
{
    (void)state;
    struct eng_detection d[5] = {det(0, 0, 1, 1, 0.3f, 0), det(2, 0, 3, 1, 0.9f, 1),
                                 det(4, 0, 5, 1, 0.5f, 2), det(6, 0, 7, 1, 0.7f, 0),
                                 det(8, 0, 9, 1, 0.1f, 1)};
    assert_int_equal(eng_nms(d, 5, 0.45f, 0, 0), 5);
    const float expected[5] = {0.9f, 0.7f, 0.5f, 0.3f, 0.1f};
    for (int i = 0; i < 5; i++)
        assert_near(d[i].confidence, expected[i], 0);
}

static void test_nms_equal_confidence_order_deterministic(void **state)
{
    (void)state;
    /* Ties are broken by class, then coordinates: any input order gives the same output. */
    const struct eng_detection base[4] = {det(0, 0, 1, 1, 0.5f, 2), det(5, 0, 6, 1, 0.5f, 0),
                                          det(3, 0, 4, 1, 0.5f, 0), det(9, 0, 10, 1, 0.5f, 1)};
    const int perms[3][4] = {{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}};
    for (int p = 0; p < 3; p++) {
        struct eng_detection d[4];
        for (int i = 0; i < 4; i++)
            d[i] = base[perms[p][i]];
        assert_int_equal(eng_nms(d, 4, 0.45f, 0, 0), 4);
        assert_int_equal(d[0].class_id, 0);
        assert_near(d[0].box.x1, 3, 0);
        assert_int_equal(d[1].class_id, 0);
        assert_near(d[1].box.x1, 5, 0);
        assert_int_equal(d[2].class_id, 1);
        assert_int_equal(d[3].class_id, 2);
    }
}

static void test_nms_empty_input_returns_zero(void **state)
{
    (void)state;
    struct eng_detection d[1] = {det(0, 0, 1, 1, 0.5f, 0)};
    assert_int_equal(eng_nms(d, 0, 0.45f, 0, 0), 0);
    assert_int_equal(eng_nms(d, 0, 0.45f, 1, 10), 0);
    assert_near(d[0].confidence, 0.5, 0); /* untouched */
    assert_int_equal(eng_nms(d, 1, 0.45f, 0, 0), 1);
}

static void test_nms_degenerate_boxes_never_suppress(void **state)
{
    (void)state;
    /* A zero-area box and a NaN box have IoU 0 with everything: all kept. */
    struct eng_detection d[3] = {det(0, 0, 10, 10, 0.9f, 0), det(5, 5, 5, 5, 0.8f, 0),
                                 det(NAN, 0, 10, 10, 0.7f, 0)};
    assert_int_equal(eng_nms(d, 3, 0.45f, 0, 0), 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iou_identical_is_one),
        cmocka_unit_test(test_iou_disjoint_is_zero),
        cmocka_unit_test(test_iou_touching_is_zero),
        cmocka_unit_test(test_iou_nested_is_area_ratio),
        cmocka_unit_test(test_iou_partial_overlap_hand_computed),
        cmocka_unit_test(test_iou_degenerate_boxes_are_zero),
        cmocka_unit_test(test_iou_nan_boxes_are_zero),
        cmocka_unit_test(test_iou_infinite_boxes_not_nan),
        cmocka_unit_test(test_iou_result_within_unit_interval),
        cmocka_unit_test(test_nms_same_class_overlap_suppressed),
        cmocka_unit_test(test_nms_different_classes_kept),
        cmocka_unit_test(test_nms_agnostic_suppresses_across_classes),
        cmocka_unit_test(test_nms_iou_at_threshold_kept),
        cmocka_unit_test(test_nms_greedy_suppressed_box_suppresses_nothing),
        cmocka_unit_test(test_nms_max_det_caps_after_suppression),
        cmocka_unit_test(test_nms_output_sorted_by_confidence),
        cmocka_unit_test(test_nms_equal_confidence_order_deterministic),
        cmocka_unit_test(test_nms_empty_input_returns_zero),
        cmocka_unit_test(test_nms_degenerate_boxes_never_suppress),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
