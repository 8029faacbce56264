/* detect.c - the YOLO pipeline: image -> network input -> forward -> boxes -> NMS -> image pixels. */
#include <time.h>

#include "detect.h"
#include "net.h"

void eng_detect_params_default(struct eng_detect_params *p)
{
    *p = (struct eng_detect_params){.conf = 0.25f, .iou = 0.45f, .max_det = 100};
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static float clampf(float v, float lo, float hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Normalized network coordinates -> pixels of the original image. */
static void to_image(struct eng_box *b, const struct eng_net *net, const struct eng_letterbox *m)
{
    const float nw = (float)net->input.w, nh = (float)net->input.h;
    b->x1 = (b->x1 * nw - m->pad_x) / m->scale_x;
    b->x2 = (b->x2 * nw - m->pad_x) / m->scale_x;
    b->y1 = (b->y1 * nh - m->pad_y) / m->scale_y;
    b->y2 = (b->y2 * nh - m->pad_y) / m->scale_y;
}

static void clip(struct eng_box *b, const struct eng_image *img)
{
    const float W = (float)img->width, H = (float)img->height;
    b->x1 = clampf(b->x1, 0.0f, W);
    b->x2 = clampf(b->x2, 0.0f, W);
    b->y1 = clampf(b->y1, 0.0f, H);
    b->y2 = clampf(b->y2, 0.0f, H);
}

int eng_detect(const struct eng_net *net, struct eng_ctx *ctx, const struct eng_image *img,
               const struct eng_detect_params *params, struct eng_detection *out, int cap,
               struct eng_detect_timing *timing, struct eng_err *err)
{
    struct eng_detect_timing t = {0};
    struct eng_letterbox map;
    double t0 = now_ms();
    if (eng_image_to_input(img, net->input.w, net->input.h, params->letterbox, ctx->input, &map, err))
        return -1;
    double t1 = now_ms();
    t.preprocess_ms = t1 - t0;
    eng_net_forward(net, ctx);
    double t2 = now_ms();
    t.infer_ms = t2 - t1;

    int n = 0;
    for (int h = 0; h < net->n_heads; h++) {
        const struct eng_layer *l = &net->layers[net->heads[h]];
        n += eng_head_candidates(l, eng_ctx_output(ctx, l->index), net->input.w, net->input.h,
                                 params->conf, params->class_allowed, ctx->cand + n,
                                 (int)net->max_candidates - n);
    }
    /* Suppress in image pixels, as OpenCV's NMSBoxes does on pixel boxes: a stretched image scales x
     * and y differently, which changes IoU, so the coordinates must be the image's. Clipping comes
     * after, so boxes reaching past the border are compared whole, as the reference does. */
    for (int i = 0; i < n; i++)
        to_image(&ctx->cand[i].box, net, &map);
    n = eng_nms(ctx->cand, n, params->iou, params->agnostic, params->max_det);
    if (n > cap)
        n = cap;
    for (int i = 0; i < n; i++) {
        out[i] = ctx->cand[i];
        clip(&out[i].box, img);
    }
    t.nms_ms = now_ms() - t2;
    if (timing)
        *timing = t;
    return n;
}
