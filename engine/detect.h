/* detect.h - boxes, IoU, non-max suppression, and the YOLO detection pipeline.
 *
 * IoU and NMS are small pure functions shared by every detector (YOLO models, the face detector). */
#ifndef ENG_DETECT_H
#define ENG_DETECT_H

#include <stddef.h>

#include "eng_err.h"
#include "image.h"
#include "layer.h"

struct eng_net;
struct eng_ctx;

/* Corners; units depend on the stage (normalized network coordinates, then image pixels). */
struct eng_box {
    float x1, y1, x2, y2;
};

struct eng_detection {
    struct eng_box box;
    float confidence;
    int class_id;
};

/* Intersection over union; 0 for disjoint or degenerate boxes. */
float eng_box_iou(struct eng_box a, struct eng_box b);

/* Greedy NMS, in place: sorts dets by confidence (descending; ties in a fixed order), then drops every
 * box whose IoU with a kept box of the same class (any class if `agnostic`) exceeds iou_thresh.
 * Keeps at most max_det (<= 0: no cap). Returns the number kept, which are dets[0..n). */
int eng_nms(struct eng_detection *dets, int n, float iou_thresh, int agnostic, int max_det);

/* Rows in OpenCV DNN's output form for a head layer: one row per (cell y, cell x, anchor), columns
 * x, y, w, h (normalized centre/size), objectness, objectness * class probability. */
size_t eng_head_rows_count(const struct eng_layer *l);
void eng_head_rows(const struct eng_layer *l, const float *out, int net_w, int net_h, float *rows);

/* Boxes of one head with confidence (objectness x best class probability) >= conf_thresh, in
 * normalized network coordinates, class = argmax. class_allowed (NULL = all) filters after argmax.
 * Writes at most cap; returns the count. */
int eng_head_candidates(const struct eng_layer *l, const float *out, int net_w, int net_h,
                        float conf_thresh, const unsigned char *class_allowed,
                        struct eng_detection *cand, int cap);

struct eng_detect_params {
    float conf;                         /* 0.25 */
    float iou;                          /* 0.45 */
    int agnostic;                       /* class-agnostic NMS */
    int max_det;                        /* 100 */
    int letterbox;                      /* keep aspect ratio (darknet letterbox) instead of stretching */
    const unsigned char *class_allowed; /* NULL = all classes; else classes-long array of 0/1 */
};

void eng_detect_params_default(struct eng_detect_params *p);

struct eng_detect_timing {
    double preprocess_ms, infer_ms, nms_ms;
};

/* Runs the model on an image: resize into ctx's input, forward, decode every head, NMS, and map boxes
 * to image pixels (clipped to the image). Writes at most `cap` detections to out (sorted by confidence)
 * and returns their number, or -1 with err. Uses only ctx's memory (ctx must belong to net). */
int eng_detect(const struct eng_net *net, struct eng_ctx *ctx, const struct eng_image *img,
               const struct eng_detect_params *params, struct eng_detection *out, int cap,
               struct eng_detect_timing *timing, struct eng_err *err);

#endif
