/* test_proto_labels.c - COCO's label names on the DeepStack routes (proto/proto_labels.c), DeepStack's
 * min_confidence default and `duration` (proto_request.c, proto_detect.c).
 *
 * The expected names are written out here from the COCO 2017 annotations' 80 categories, not taken
 * from proto_coco80_names. */
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
#include "proto_labels.h"
#include "proto_request.h"

/* darknet's data/coco.names, the spelling visiond's models ship with */
static const char *const DARKNET_COCO[80] = {
    "person", "bicycle", "car", "motorbike", "aeroplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "sofa", "pottedplant", "bed",
    "diningtable", "toilet", "tvmonitor", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
};

/* The six that differ, as COCO's annotations name them. */
static const struct { int id; const char *coco; } RENAMED[] = {
    {3, "motorcycle"}, {4, "airplane"}, {57, "couch"}, {58, "potted plant"}, {60, "dining table"},
    {62, "tv"},
};

static struct eng_net net_with(const char *const *names, int n, char **storage)
{
    for (int i = 0; i < n; i++)
        storage[i] = (char *)names[i];
    return (struct eng_net){.name = "m", .classes = n, .class_names = storage, .input = {3, 416, 416}};
}

static void test_labels_darknet_spelling_is_coco80_and_renamed_on_deepstack(void **state)
{
    (void)state;
    char *names[80], buf[32];
    struct eng_net net = net_with(DARKNET_COCO, 80, names);
    assert_true(proto_net_is_coco80(&net));
    for (size_t k = 0; k < sizeof RENAMED / sizeof *RENAMED; k++) {
        const int id = RENAMED[k].id;
        assert_string_equal(proto_class_label(&net, PROTO_DIALECT_DEEPSTACK, id, buf, sizeof buf),
                            RENAMED[k].coco);
        assert_string_equal(proto_class_label(&net, PROTO_DIALECT_NATIVE, id, buf, sizeof buf),
                            DARKNET_COCO[id]);
        /* a DeepStack client may filter on the names it receives; the native route keeps .names */
        assert_int_equal(proto_class_find(&net, PROTO_DIALECT_DEEPSTACK, RENAMED[k].coco), id);
        assert_int_equal(proto_class_find(&net, PROTO_DIALECT_DEEPSTACK, DARKNET_COCO[id]), id);
        assert_int_equal(proto_class_find(&net, PROTO_DIALECT_NATIVE, RENAMED[k].coco), -1);
    }
    /* the other 74 are the same in both */
    int same = 0;
    for (int i = 0; i < 80; i++)
        same += !strcmp(proto_class_label(&net, PROTO_DIALECT_DEEPSTACK, i, buf, sizeof buf),
                        DARKNET_COCO[i]);
    assert_int_equal(same, 74);
}

static void test_labels_coco_spelling_and_other_models(void **state)
{
    (void)state;
    char *names[80], buf[32];
    const char *coco[80];
    memcpy(coco, DARKNET_COCO, sizeof coco);
    for (size_t k = 0; k < sizeof RENAMED / sizeof *RENAMED; k++)
        coco[RENAMED[k].id] = RENAMED[k].coco;
    struct eng_net net = net_with(coco, 80, names);
    assert_true(proto_net_is_coco80(&net));
    /* out of order: not COCO-80, labels stay the model's own on every route */
    const char *swapped[80];
    memcpy(swapped, DARKNET_COCO, sizeof swapped);
    swapped[3] = DARKNET_COCO[4];
    swapped[4] = DARKNET_COCO[3];
    net = net_with(swapped, 80, names);
    assert_false(proto_net_is_coco80(&net));
    assert_string_equal(proto_class_label(&net, PROTO_DIALECT_DEEPSTACK, 3, buf, sizeof buf),
                        "aeroplane");
    /* 79 classes, and a net without names */
    net = net_with(DARKNET_COCO, 79, names);
    assert_false(proto_net_is_coco80(&net));
    net.class_names = NULL;
    net.classes = 80;
    assert_false(proto_net_is_coco80(&net));
}

static void test_deepstack_default_conf_040_native_keeps_model_default(void **state)
{
    (void)state;
    char *names[80];
    struct eng_net net = net_with(DARKNET_COCO, 80, names);
    unsigned char mask[80];
    struct eng_detect_params defaults, out;
    struct proto_err err;
    eng_detect_params_default(&defaults);
    defaults.conf = 0.25f;
    for (int d = 0; d < 2; d++) {
        struct proto_detect_request req;
        proto_detect_request_init(&req, d ? PROTO_DIALECT_DEEPSTACK : PROTO_DIALECT_NATIVE);
        assert_int_equal(proto_detect_request_params(&req, &net, &defaults, mask, &out, &err), 0);
        assert_float_equal(out.conf, d ? 0.40f : 0.25f, 1e-7);
        assert_int_equal(proto_detect_request_set(&req, "min_confidence", "0.7", &err), 0);
        assert_int_equal(proto_detect_request_params(&req, &net, &defaults, mask, &out, &err), 0);
        assert_float_equal(out.conf, 0.7f, 1e-7);
        proto_detect_request_release(&req);
    }
}

static void test_deepstack_answer_coco_labels_and_duration(void **state)
{
    (void)state;
    char *names[80];
    struct eng_net net = net_with(DARKNET_COCO, 80, names);
    const struct eng_detection dets[] = {
        {.box = {10.7f, 20.2f, 100.9f, 200.5f}, .confidence = 0.9f, .class_id = 3},
        {.box = {1, 2, 3, 4}, .confidence = 0.5f, .class_id = 62},
    };
    const struct proto_detect_response r = {.net = &net, .width = 640, .height = 480, .dets = dets,
                                            .count = 2, .total_ms = 37.6};
    char *s = proto_deepstack_response_json(&r);
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "duration")), 38);
    json_t *p0 = json_array_get(json_object_get(j, "predictions"), 0);
    assert_string_equal(json_string_value(json_object_get(p0, "label")), "motorcycle");
    assert_true(json_is_integer(json_object_get(p0, "x_min")));
    assert_int_equal(json_integer_value(json_object_get(p0, "x_max")), 100);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "predictions"), 1), "label")),
        "tv");
    json_decref(j);
    free(s);
    /* the native answer keeps the model's spelling */
    s = proto_detect_response_json(&r);
    assert_non_null(strstr(s, "\"motorbike\""));
    assert_null(strstr(s, "\"motorcycle\""));
    free(s);
}

static void test_models_list_both_spellings(void **state)
{
    (void)state;
    char *names[80];
    struct eng_net net = net_with(DARKNET_COCO, 80, names);
    const struct proto_model_info m = {.name = "m", .net = &net, .conf = 0.25f, .iou = 0.45f,
                                       .max_det = 100, .is_default = 1};
    char *s = proto_models_json(&m, 1, NULL, 0);
    json_t *j = json_loads(s, 0, NULL);
    assert_non_null(j);
    json_t *model = json_array_get(json_object_get(j, "models"), 0);
    assert_true(json_is_true(json_object_get(model, "coco80")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(model, "classes"), 58)),
                        "pottedplant");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(model, "deepstack_classes"), 58)),
        "potted plant");
    json_decref(j);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels_darknet_spelling_is_coco80_and_renamed_on_deepstack),
        cmocka_unit_test(test_labels_coco_spelling_and_other_models),
        cmocka_unit_test(test_deepstack_default_conf_040_native_keeps_model_default),
        cmocka_unit_test(test_deepstack_answer_coco_labels_and_duration),
        cmocka_unit_test(test_models_list_both_spellings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
