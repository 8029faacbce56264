/* proto_detect.h - the JSON form of detection results, shared by the CLI and the HTTP API.
 *
 * Encoders take borrowed, read-only inputs and return a new string (caller frees with free()), or NULL
 * only when out of memory. They keep no state and are thread-safe. Boxes are in pixels of the upright
 * image, rounded to 0.01; confidences to 1e-4. Class labels come from the net's names (or "class_<i>"). */
#ifndef PROTO_DETECT_H
#define PROTO_DETECT_H

#include "detect.h"
#include "eng_err.h"
#include "net.h"

struct proto_detect_result {
    const char *image; /* file name or NULL */
    int width, height; /* of the upright image */
    const struct eng_net *net;
    const struct eng_detection *dets;
    int count;
    double decode_ms, infer_ms, nms_ms;
};

/* One-line JSON document for a result. New string, caller frees with free(); NULL if out of memory. */
char *proto_detect_result_json(const struct proto_detect_result *r);

/* ---- HTTP API responses ---- */

/* One POST /v1/detect (or /v1/vision/detection) answer. */
struct proto_detect_response {
    const char *request_id;           /* NULL: omitted */
    const char *model;                /* model name as clients select it; NULL: net->name */
    const struct eng_net *net;        /* input size and class names */
    int width, height;                /* of the upright image */
    int exif_rotated;                 /* nonzero if EXIF orientation was applied */
    const struct eng_detection *dets; /* sorted by confidence, boxes in image pixels */
    int count;
    double decode_ms, queue_ms, inference_ms, nms_ms, total_ms;
};

/* {"request_id","model":{"name","input":{"width","height"}},"image":{"width","height","exif_rotated"},
 *  "detections":[{"class_id","label","confidence","box":{"x1","y1","x2","y2"}}],"count",
 *  "timing_ms":{"decode","queue","inference","nms","total"}}. New string, caller frees. */
char *proto_detect_response_json(const struct proto_detect_response *r);

/* DeepStack's answer: {"success":true,"predictions":[{"label","confidence","x_min","y_min","x_max",
 * "y_max"}],"count":n,"duration":ms}; coordinates are integers (pixels truncated toward zero, as
 * DeepStack's int()); labels are COCO's names for a COCO-80 model (proto_labels.h); duration is
 * total_ms rounded to whole milliseconds.
 * request_id is not part of it (it goes in the X-Request-Id header). New string, caller frees. */
char *proto_deepstack_response_json(const struct proto_detect_response *r);

/* CodeProject.AI's /v1/vision/custom/list: {"success":true,"models":[names]} (the loaded detection
 * models, each usable as /v1/vision/custom/{name}). names are borrowed. New string, caller frees. */
char *proto_deepstack_models_list_json(const char *const *names, int n);

/* A duration in whole milliseconds, as DeepStack's answers carry it (negative or absurd: 0). */
long long proto_duration_ms(double ms);

/* One loaded model for GET /v1/models. */
struct proto_model_info {
    const char *name;          /* as clients select it; NULL: net->name */
    const struct eng_net *net; /* input size, class names */
    float conf, iou;           /* the thresholds used when a request gives none */
    int max_det;
    int is_default;            /* the model used when a request names none */
};

/* One face network for GET /v1/models: {"name","kind","input":{"width","height"}}, kind one of
 * "face_detector" (input: the largest detector size served), "face_landmarks", "face_recognition". */
struct proto_face_model_info {
    const char *name;
    const char *kind;
    int input_w, input_h;
};

/* GET /v1/models: the YOLO models, then the face networks (n_faces may be 0):
 * {"models":[{"name","kind":"yolo","default":bool,"input":{"width","height"},"classes":[names],
 *  "deepstack_classes":[labels on the DeepStack routes],"coco80":bool,"defaults":{"conf","iou",
 *  "max_det"}}, {"name","kind","input"}...]}. New string, caller frees. */
char *proto_models_json(const struct proto_model_info *models, int n,
                        const struct proto_face_model_info *faces, int n_faces);

/* {"status": status} for GET /healthz and /readyz ("ok", "ready"). New string, caller frees. */
char *proto_health_json(const char *status);

#endif
