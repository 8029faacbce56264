/* proto_detect.c - detection results as JSON (jansson): the CLI's lines and the HTTP API's answers. */
#include <jansson.h>

#include "proto_detect.h"
#include "proto_errors.h"
#include "proto_json.h"
#include "proto_labels.h"

#define num proto_json_round

static json_t *label_json(const struct eng_net *net, int class_id)
{
    char buf[32];
    return proto_json_str(eng_net_class_name(net, class_id, buf, sizeof buf));
}

static json_t *detection_json(const struct eng_net *net, const struct eng_detection *d)
{
    json_t *box = json_pack("{s:o,s:o,s:o,s:o}", "x1", num(d->box.x1, 0.01), "y1",
                            num(d->box.y1, 0.01), "x2", num(d->box.x2, 0.01), "y2",
                            num(d->box.y2, 0.01));
    return json_pack("{s:i,s:o,s:o,s:o}", "class_id", d->class_id, "label",
                     label_json(net, d->class_id), "confidence", num(d->confidence, 1e-4), "box",
                     box);
}

/* [detection_json...], or NULL if out of memory. */
static json_t *detections_json(const struct eng_net *net, const struct eng_detection *dets, int n)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, detection_json(net, &dets[i]))) {
            json_decref(arr);
            return NULL;
        }
    return arr;
}

char *proto_detect_result_json(const struct proto_detect_result *r)
{
    json_t *timing = json_pack("{s:o,s:o,s:o}", "decode", num(r->decode_ms, 0.001), "infer",
                               num(r->infer_ms, 0.001), "nms", num(r->nms_ms, 0.001));
    json_t *doc = json_pack("{s:o,s:i,s:i,s:o,s:o,s:o}", "image", proto_json_str(r->image), "width",
                            r->width, "height", r->height, "model",
                            proto_json_str(r->net->name ? r->net->name : ""), "detections",
                            detections_json(r->net, r->dets, r->count), "timing_ms", timing);
    return proto_json_dump(doc);
}

/* ---- HTTP API responses ---- */

static const char *model_name(const char *name, const struct eng_net *net)
{
    return name ? name : net->name ? net->name : "";
}

char *proto_detect_response_json(const struct proto_detect_response *r)
{
    /* json_pack steals every "o" reference, even when it fails; "o*" drops a NULL value's key. */
    return proto_json_dump(json_pack(
        "{s:o*,s:{s:o,s:{s:i,s:i}},s:{s:i,s:i,s:b},s:o,s:i,s:{s:o,s:o,s:o,s:o,s:o}}", "request_id",
        r->request_id ? proto_json_str(r->request_id) : NULL, "model", "name",
        proto_json_str(model_name(r->model, r->net)), "input", "width", r->net->input.w, "height",
        r->net->input.h, "image", "width", r->width, "height", r->height, "exif_rotated",
        r->exif_rotated != 0, "detections", detections_json(r->net, r->dets, r->count), "count",
        r->count, "timing_ms", "decode", num(r->decode_ms, 0.001), "queue", num(r->queue_ms, 0.001),
        "inference", num(r->inference_ms, 0.001), "nms", num(r->nms_ms, 0.001), "total",
        num(r->total_ms, 0.001)));
}

/* DeepStack's int(x) on a non-negative float. Boxes are clipped to the image, so >= 0. */
static json_int_t pixel_int(float v)
{
    return v > 0 ? (json_int_t)v : 0;
}

char *proto_deepstack_response_json(const struct proto_detect_response *r)
{
    json_t *preds = json_array();
    char buf[32];
    for (int i = 0; preds && i < r->count; i++) {
        const struct eng_detection *d = &r->dets[i];
        const char *label = proto_class_label(r->net, PROTO_DIALECT_DEEPSTACK, d->class_id, buf, sizeof buf);
        json_t *p = json_pack("{s:o,s:o,s:I,s:I,s:I,s:I}", "label", proto_json_str(label),
                              "confidence", num(d->confidence, 1e-4), "x_min", pixel_int(d->box.x1),
                              "y_min", pixel_int(d->box.y1), "x_max", pixel_int(d->box.x2), "y_max",
                              pixel_int(d->box.y2));
        if (json_array_append_new(preds, p)) {
            json_decref(preds);
            preds = NULL;
        }
    }
    return proto_json_dump(
        json_pack("{s:b,s:o,s:i,s:I}", "success", 1, "predictions", preds, "count", r->count,
                  "duration", (json_int_t)proto_duration_ms(r->total_ms)));
}

char *proto_deepstack_models_list_json(const char *const *names, int n)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < n; i++)
        if (json_array_append_new(arr, proto_json_str(names[i]))) {
            json_decref(arr);
            arr = NULL;
        }
    return proto_json_dump(json_pack("{s:b,s:o}", "success", 1, "models", arr));
}

long long proto_duration_ms(double ms)
{
    return ms > 0 && ms < 1e12 ? (long long)(ms + 0.5) : 0;
}

/* The labels the DeepStack routes report for the net's classes (proto_labels.h). */
static json_t *deepstack_classes_json(const struct eng_net *net)
{
    json_t *classes = json_array();
    char buf[32];
    for (int i = 0; classes && i < net->classes; i++)
        if (json_array_append_new(classes, proto_json_str(proto_class_label(
                                               net, PROTO_DIALECT_DEEPSTACK, i, buf, sizeof buf)))) {
            json_decref(classes);
            classes = NULL;
        }
    return classes;
}

static json_t *model_json(const struct proto_model_info *m)
{
    const struct eng_net *net = m->net;
    json_t *classes = json_array();
    for (int i = 0; classes && i < net->classes; i++)
        if (json_array_append_new(classes, label_json(net, i))) {
            json_decref(classes);
            classes = NULL;
        }
    return json_pack("{s:o,s:s,s:b,s:{s:i,s:i},s:o,s:o,s:b,s:{s:o,s:o,s:i}}", "name",
                     proto_json_str(model_name(m->name, net)), "kind", "yolo", "default",
                     m->is_default != 0, "input", "width", net->input.w, "height", net->input.h,
                     "classes", classes, "deepstack_classes", deepstack_classes_json(net), "coco80",
                     proto_net_is_coco80(net) != 0, "defaults", "conf", num(m->conf, 1e-4), "iou",
                     num(m->iou, 1e-4), "max_det", m->max_det);
}

static json_t *face_model_json(const struct proto_face_model_info *m)
{
    return json_pack("{s:o,s:s,s:{s:i,s:i}}", "name", proto_json_str(m->name), "kind", m->kind,
                     "input", "width", m->input_w, "height", m->input_h);
}

char *proto_models_json(const struct proto_model_info *models, int n,
                            const struct proto_face_model_info *faces, int n_faces)
{
    json_t *arr = json_array();
    for (int i = 0; arr && i < n + n_faces; i++)
        if (json_array_append_new(arr, i < n ? model_json(&models[i]) : face_model_json(&faces[i - n]))) {
            json_decref(arr);
            arr = NULL;
        }
    return proto_json_dump(json_pack("{s:o}", "models", arr));
}

char *proto_health_json(const char *status)
{
    return proto_json_dump(json_pack("{s:o}", "status", proto_json_str(status ? status : "ok")));
}
