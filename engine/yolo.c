/* yolo.c - the detection heads: [yolo] (YOLOv3/v4) and [region] (YOLOv2).
 *
 * forward applies darknet's activations so the layer output holds, per anchor and cell: x, y offsets
 * in the cell (logistic, scaled by scale_x_y), raw w and h, objectness, class probabilities (logistic
 * for [yolo], softmax for [region]). Decoding into boxes happens afterwards (eng_head_*), so a model's
 * raw output can be compared with other implementations. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "detect.h"
#include "kern.h"
#include "layer.h"

static inline float logistic(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static int entries(const struct eng_head *h)
{
    return 5 + h->classes;
}

/* Anchors [a0, a1): each anchor's block of channels is independent of the others. */
static void yolo_anchors(const struct eng_layer *l, const struct eng_fwd *f, int a0, int a1)
{
    const struct eng_head *h = &l->p.head;
    const size_t plane = (size_t)l->out.h * l->out.w;
    const float sxy = h->scale_x_y;
    const size_t block = (size_t)entries(h) * plane;
    memcpy(f->out + a0 * block, f->in + a0 * block, sizeof(float) * block * (size_t)(a1 - a0));
    const struct eng_kern *kern = eng_kern_best(); /* the vector logistic (kern_logistic.inc) */
    for (int a = a0; a < a1; a++) {
        float *base = f->out + (size_t)a * entries(h) * plane;
        kern->logistic(base, 2 * plane, sxy, -0.5f * (sxy - 1.0f));
        kern->logistic(base + 4 * plane, (size_t)(entries(h) - 4) * plane, 1.0f, 0.0f);
    }
}

static void yolo_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_fwd_split(l, f, l->p.head.anchors_n, yolo_anchors);
}

static void softmax_strided(float *x, int n, size_t stride)
{
    float max = x[0];
    for (int i = 1; i < n; i++)
        max = x[i * stride] > max ? x[i * stride] : max;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i * stride] = expf(x[i * stride] - max);
        sum += x[i * stride];
    }
    for (int i = 0; i < n; i++)
        x[i * stride] /= sum;
}

static void region_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_head *h = &l->p.head;
    const size_t plane = (size_t)l->out.h * l->out.w;
    memcpy(f->out, f->in, sizeof(float) * eng_shape_size(l->out));
    for (int a = 0; a < h->anchors_n; a++) {
        float *base = f->out + (size_t)a * entries(h) * plane;
        for (size_t i = 0; i < 2 * plane; i++)
            base[i] = logistic(base[i]);
        for (size_t i = 4 * plane; i < 5 * plane; i++)
            base[i] = logistic(base[i]);
        for (size_t cell = 0; cell < plane; cell++)
            softmax_strided(base + 5 * plane + cell, h->classes, plane);
    }
}

static int head_setup(struct eng_layer *l, eng_forward_fn forward, char *why, size_t why_size)
{
    const struct eng_head *h = &l->p.head;
    if (h->classes <= 0 || h->anchors_n <= 0) {
        snprintf(why, why_size, "classes and anchors must be positive");
        return -1;
    }
    if (l->in.c != h->anchors_n * entries(h)) {
        snprintf(why, why_size,
                 "the input has %d channels but %d anchors x (5 + %d classes) = %d are needed", l->in.c,
                 h->anchors_n, h->classes, h->anchors_n * entries(h));
        return -1;
    }
    l->out = l->in;
    l->forward = forward;
    return 0;
}

int eng_yolo_setup(struct eng_layer *l, char *why, size_t why_size)
{
    return head_setup(l, yolo_forward, why, why_size);
}

int eng_region_setup(struct eng_layer *l, char *why, size_t why_size)
{
    return head_setup(l, region_forward, why, why_size);
}

size_t eng_head_rows_count(const struct eng_layer *l)
{
    return (size_t)l->out.h * l->out.w * l->p.head.anchors_n;
}

/* Box of anchor a at cell (x, y), as centre and size normalized to the network input. */
static void head_box(const struct eng_layer *l, const float *out, int a, int x, int y, int net_w,
                     int net_h, float box[4])
{
    const struct eng_head *h = &l->p.head;
    const size_t plane = (size_t)l->out.h * l->out.w;
    const float *e = out + (size_t)a * entries(h) * plane + (size_t)y * l->out.w + x;
    /* [yolo] anchors are in network pixels, [region] anchors in grid cells. */
    const float norm_w = l->kind == ENG_LAYER_YOLO ? (float)net_w : (float)l->out.w;
    const float norm_h = l->kind == ENG_LAYER_YOLO ? (float)net_h : (float)l->out.h;
    box[0] = (x + e[0]) / l->out.w;
    box[1] = (y + e[plane]) / l->out.h;
    box[2] = expf(e[2 * plane]) * h->anchors[2 * a] / norm_w;
    box[3] = expf(e[3 * plane]) * h->anchors[2 * a + 1] / norm_h;
}

void eng_head_rows(const struct eng_layer *l, const float *out, int net_w, int net_h, float *rows)
{
    const struct eng_head *h = &l->p.head;
    const size_t plane = (size_t)l->out.h * l->out.w;
    const int cols = entries(h);
    for (int y = 0; y < l->out.h; y++) {
        for (int x = 0; x < l->out.w; x++) {
            for (int a = 0; a < h->anchors_n; a++) {
                float *row = rows + (((size_t)y * l->out.w + x) * h->anchors_n + a) * cols;
                const float *e = out + (size_t)a * cols * plane + (size_t)y * l->out.w + x;
                head_box(l, out, a, x, y, net_w, net_h, row);
                const float obj = e[4 * plane];
                row[4] = obj;
                for (int c = 0; c < h->classes; c++)
                    row[5 + c] = obj * e[(5 + (size_t)c) * plane];
            }
        }
    }
}

int eng_head_candidates(const struct eng_layer *l, const float *out, int net_w, int net_h,
                        float conf_thresh, const unsigned char *class_allowed,
                        struct eng_detection *cand, int cap)
{
    const struct eng_head *h = &l->p.head;
    const size_t plane = (size_t)l->out.h * l->out.w;
    int n = 0;
    for (int a = 0; a < h->anchors_n; a++) {
        for (int y = 0; y < l->out.h; y++) {
            for (int x = 0; x < l->out.w; x++) {
                const float *e = out + (size_t)a * entries(h) * plane + (size_t)y * l->out.w + x;
                const float obj = e[4 * plane];
                if (!(obj >= conf_thresh))
                    continue; /* conf = obj * p <= obj: nothing here can pass */
                int best = -1;
                float best_p = 0.0f;
                for (int c = 0; c < h->classes; c++) {
                    const float p = e[(5 + (size_t)c) * plane];
                    if (best < 0 || p > best_p) {
                        best = c;
                        best_p = p;
                    }
                }
                /* The class filter applies after argmax: a box that is mostly "car" is not
                 * reported as a weak "person" because only people were asked for. */
                if (!(obj * best_p >= conf_thresh) || (class_allowed && !class_allowed[best]) ||
                    n >= cap)
                    continue;
                float b[4];
                head_box(l, out, a, x, y, net_w, net_h, b);
                cand[n++] = (struct eng_detection){
                    .box = {b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2},
                    .confidence = obj * best_p,
                    .class_id = best,
                };
            }
        }
    }
    return n;
}
