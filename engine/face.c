/* face.c - running face-api's three networks (built by face_load.c): contexts, pre- and
 * post-processing, alignment, descriptors and distances.
 *
 * A context holds three eng_ctx: the detector's sized for the largest input and re-pointed
 * (eng_ctx_bind) at the size a request asks for. Image preparation (crop, zero padding to a square,
 * TF.js bilinear resize, mean subtraction) samples the image directly into the network input, with no
 * intermediate buffer. The face-api source each step follows is named in its comment. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face.h"
#include "face_models.h"
#include "net.h"
#include "team.h"

/* tinyFaceDetector/const.ts */
static const double det_anchors[DET_ANCHORS][2] = {
    {1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
    {4.266906, 5.178857}, {9.041765, 10.66308},
};
static const float det_mean[3] = {117.001f, 114.697f, 97.404f};
/* faceFeatureExtractor/FaceFeatureExtractor.ts and faceRecognitionNet/FaceRecognitionNet.ts */
static const float face_mean[3] = {122.782f, 117.001f, 104.298f};

struct eng_face_ctx {
    const struct eng_face_models *m;
    struct eng_ctx *det, *lm, *rec;
    struct eng_detection *cand; /* room for every anchor of the largest detector */
    int cap_cand;
    float *own_arena; /* the activations of det, lm and rec, when this context allocated them */
};

/* ---- contexts ------------------------------------------------------------------------------- */

void eng_face_ctx_free(struct eng_face_ctx *ctx)
{
    if (!ctx)
        return;
    eng_ctx_free(ctx->det);
    eng_ctx_free(ctx->lm);
    eng_ctx_free(ctx->rec);
    free(ctx->cand);
    free(ctx->own_arena); /* after the contexts that borrow it */
    free(ctx);
}

void eng_face_ctx_net(const struct eng_face_models *m, struct eng_face_ctx *ctx, enum eng_face_net which,
                      const struct eng_net **net, struct eng_ctx **net_ctx)
{
    *net_ctx = which == ENG_FACE_NET_DETECTOR ? ctx->det : which == ENG_FACE_NET_LANDMARKS ? ctx->lm : ctx->rec;
    *net = which == ENG_FACE_NET_DETECTOR ? ctx->det->net : which == ENG_FACE_NET_LANDMARKS ? m->lm : m->rec;
}

size_t eng_face_ctx_arena_floats(const struct eng_face_models *m)
{
    const size_t det = eng_ctx_arena_floats(m->det[m->n_det - 1]), lm = eng_ctx_arena_floats(m->lm),
                 rec = eng_ctx_arena_floats(m->rec);
    if (!det || !lm || !rec)
        return 0;
    const size_t most = det > lm ? det : lm;
    return most > rec ? most : rec;
}

struct eng_face_ctx *eng_face_ctx_new(const struct eng_face_models *m, struct eng_err *err)
{
    const size_t floats = eng_face_ctx_arena_floats(m);
    float *arena = floats ? malloc(sizeof(float) * floats) : NULL;
    struct eng_face_ctx *ctx = arena ? eng_face_ctx_new_shared(m, arena, floats, err) : NULL;
    if (!ctx) {
        if (!arena)
            eng_err_set(err, ENG_ERR_NOMEM, "faces", "out of memory");
        free(arena);
        return NULL;
    }
    ctx->own_arena = arena;
    return ctx;
}

struct eng_face_ctx *eng_face_ctx_new_shared(const struct eng_face_models *m, float *arena, size_t floats,
                                             struct eng_err *err)
{
    struct eng_face_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        eng_err_set(err, ENG_ERR_NOMEM, "faces", "out of memory");
        return NULL;
    }
    ctx->m = m;
    const struct eng_net *big = m->det[m->n_det - 1];
    const struct eng_layer *head = &big->layers[big->n_layers - 1];
    ctx->cap_cand = DET_ANCHORS * head->out.h * head->out.w;
    ctx->cand = calloc((size_t)ctx->cap_cand, sizeof *ctx->cand);
    if (!ctx->cand) {
        eng_err_set(err, ENG_ERR_NOMEM, "faces", "out of memory");
        eng_face_ctx_free(ctx);
        return NULL;
    }
    if (!(ctx->det = eng_ctx_new_shared(big, arena, floats, err)) ||
        !(ctx->lm = eng_ctx_new_shared(m->lm, arena, floats, err)) ||
        !(ctx->rec = eng_ctx_new_shared(m->rec, arena, floats, err))) {
        eng_face_ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

int eng_face_ctx_set_team(struct eng_face_ctx *ctx, struct eng_team *team, struct eng_err *err)
{
    return eng_ctx_set_team(ctx->det, team, err) || eng_ctx_set_team(ctx->lm, team, err) ||
                   eng_ctx_set_team(ctx->rec, team, err)
               ? -1
               : 0;
}

/* ---- image preparation ---------------------------------------------------------------------- */

/* What a network sees: the rectangle (x, y, w, h) of img, placed at (ox, oy) in a zero canvas of
 * side x side (ops/padToSquare.ts), resized to n x n by TF.js's resizeBilinear with alignCorners and
 * halfPixelCenters false (tfjs-backend-cpu ResizeBilinear: source = dst * side / n, in double),
 * minus mean (ops/normalize.ts), / 255; float32 rounding after each op as the tensors round. */
struct view {
    const struct eng_image *img;
    int x, y, w, h, ox, oy, side;
};

/* floor and ceil of a non-negative double below INT_MAX, as libm's (source coordinates are). */
static inline int floor_nonneg(double x)
{
    return (int)x;
}

static inline int ceil_nonneg(double x)
{
    const int i = (int)x;
    return i + ((double)i < x);
}

/* Row r of the canvas: its first pixel of the view's columns (column ox of the canvas), or NULL
 * where the row is padding. */
static const uint8_t *view_row(const struct view *v, int r)
{
    r -= v->oy;
    if (r < 0 || r >= v->h)
        return NULL;
    return v->img->rgb + ((size_t)(v->y + r) * v->img->width + (size_t)v->x) * 3;
}

/* Without a resize every value is a function of one byte and its channel: a table of the 3 x 256
 * values (the bilinear's sums at ratio 1, computed once per call) replaces the per-value double
 * arithmetic, which took about a sixth of the detector's step on a ready 416x416 input
 * (docs/PERFORMANCE.md, work log, issue19d). The padding's taps are byte 0, as the bilinear's. Rows
 * are cut across the context's team (each value is the same whichever thread writes it): alone, the
 * 416x416 input was about a tenth of the detector's time at two threads. */
struct unresized {
    const struct view *v;
    int n, n_tasks;
    float lut[3][256];
    float *dst;
};

static void unresized_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct unresized *u = arg;
    const struct view *v = u->v;
    const int n = u->n;
    const size_t plane = (size_t)n * n;
    /* the view's columns inside the canvas: [c_lo, c_hi); the rest is padding */
    const int c_lo = v->ox > 0 ? (v->ox < n ? v->ox : n) : 0;
    const int c_hi = v->ox + v->w < n ? (v->ox + v->w > c_lo ? v->ox + v->w : c_lo) : n;
    int r0, r1;
    eng_team_split(n, u->n_tasks, task, 1, &r0, &r1);
    for (int r = r0; r < r1; r++) {
        const uint8_t *row = view_row(v, r);
        float *d0 = u->dst + (size_t)r * n, *d1 = d0 + plane, *d2 = d1 + plane;
        const int lo = row ? c_lo : n, hi = row ? c_hi : n;
        for (int c = 0; c < lo; c++) {
            d0[c] = u->lut[0][0];
            d1[c] = u->lut[1][0];
            d2[c] = u->lut[2][0];
        }
        if (row) {
            const uint8_t *px = row + (size_t)(lo - v->ox) * 3; /* one pass over the pixels */
            for (int c = lo; c < hi; c++, px += 3) {
                d0[c] = u->lut[0][px[0]];
                d1[c] = u->lut[1][px[1]];
                d2[c] = u->lut[2][px[2]];
            }
        }
        for (int c = hi; c < n; c++) {
            d0[c] = u->lut[0][0];
            d1[c] = u->lut[1][0];
            d2[c] = u->lut[2][0];
        }
    }
}

static void prepare_unresized(const struct view *v, int n, const float mean[3], float *dst,
                              struct eng_team *team)
{
    struct unresized u = {.v = v, .n = n, .n_tasks = 1, .dst = dst};
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < 256; p++) {
            const float centred = (float)((double)p - (double)mean[ch]);
            u.lut[ch][p] = (float)((double)centred / 255.0);
        }
    eng_team_begin(team); /* the cores a forward pass would take (team.h) */
    const int width = eng_team_width(team);
    u.n_tasks = width > 1 ? 2 * width : 1;
    eng_team_for(team, u.n_tasks, unresized_task, &u);
    eng_team_end(team);
}

/* One column of the resize: where its two source pixels start in a view row (-1: the padding's
 * zeros) and its weight. */
struct col_tap {
    int k0, k1;
    double cf;
};
#define COL_CHUNK 512

/* Columns [c_lo, c_hi) of output row r (d: its first float of channel 0; planes `plane` apart). */
static void resize_row(const struct view *v, double ratio, int r, const float mean[3],
                       const struct col_tap *cols, int c_lo, int c_hi, float *d, size_t plane)
{
    const double fr = ratio * r;
    const int r0 = floor_nonneg(fr);
    const int r1 = ceil_nonneg(fr) < v->side - 1 ? ceil_nonneg(fr) : v->side - 1;
    const double rf = fr - r0;
    const uint8_t *p0 = view_row(v, r0), *p1 = view_row(v, r1);
    if (!p0 && !p1) { /* a row of the padding (a third of a landscape photo's): every tap 0 */
        for (int ch = 0; ch < 3; ch++) {
            const float centred = (float)((double)0.0f - (double)mean[ch]);
            const float value = (float)((double)centred / 255.0);
            for (int c = c_lo; c < c_hi; c++)
                d[(size_t)ch * plane + c] = value;
        }
        return;
    }
    for (int c = c_lo; c < c_hi; c++) {
        const struct col_tap t = cols[c - c_lo];
        for (int ch = 0; ch < 3; ch++) {
            double tl = 0.0, tr = 0.0, bl = 0.0, br = 0.0;
            if (p0 && t.k0 >= 0)
                tl = p0[t.k0 + ch];
            if (p0 && t.k1 >= 0)
                tr = p0[t.k1 + ch];
            if (p1 && t.k0 >= 0)
                bl = p1[t.k0 + ch];
            if (p1 && t.k1 >= 0)
                br = p1[t.k1 + ch];
            const double top = tl + (tr - tl) * t.cf, bottom = bl + (br - bl) * t.cf;
            const float px = (float)(top + (bottom - top) * rf);
            const float centred = (float)((double)px - (double)mean[ch]);
            d[(size_t)ch * plane + c] = (float)((double)centred / 255.0);
        }
    }
}

static void prepare_input(const struct view *v, int n, const float mean[3], float *dst,
                          struct eng_team *team)
{
    const double ratio = (double)v->side / (double)n;
    const size_t plane = (size_t)n * n;
    if (v->side == n) { /* no resize (toBatchTensor skips it too); below, ratio 1 gives these same bits */
        prepare_unresized(v, n, mean, dst, team);
        return;
    }
    /* TF.js's bilinear sums in double, read through row pointers: the per-tap checks
     * and libm's floor/ceil calls were most of a 1920x1280 photo's detector step; the columns' taps
     * and weights are worked out once per call (per chunk of COL_CHUNK columns, a stack table), not
     * once per row (the landmark step's 112x112 input: docs/PERFORMANCE.md, Kernels). */
    struct col_tap cols[COL_CHUNK];
    for (int c_lo = 0; c_lo < n; c_lo += COL_CHUNK) {
        const int c_hi = c_lo + COL_CHUNK < n ? c_lo + COL_CHUNK : n;
        for (int c = c_lo; c < c_hi; c++) {
            const double fc = ratio * c;
            const int c0 = floor_nonneg(fc);
            const int c1 = ceil_nonneg(fc) < v->side - 1 ? ceil_nonneg(fc) : v->side - 1;
            const int k0 = c0 - v->ox, k1 = c1 - v->ox;
            cols[c - c_lo] = (struct col_tap){k0 >= 0 && k0 < v->w ? k0 * 3 : -1,
                                              k1 >= 0 && k1 < v->w ? k1 * 3 : -1, fc - c0};
        }
        for (int r = 0; r < n; r++)
            resize_row(v, ratio, r, mean, cols, c_lo, c_hi, dst + (size_t)r * n, plane);
    }
}

/* The crop padded to a centred square (NetInput.toBatchTensor(size, true)): Math.round(diff / 2)
 * zero rows/columns after the crop, the rest before. */
static struct view centred_view(const struct eng_image *img, struct eng_face_rect r)
{
    struct view v = {img, r.x, r.y, r.w, r.h, 0, 0, r.w > r.h ? r.w : r.h};
    const int diff = abs(r.w - r.h);
    const int before = diff - (diff + 1) / 2;
    if (r.w < r.h)
        v.ox = before;
    else
        v.oy = before;
    return v;
}

/* Box.clipAtImageBorders: clip the top-left corner at 0 and the size at the image, then floor. */
static struct eng_face_rect clip_box(double x, double y, double w, double h, int img_w, int img_h)
{
    const double cx = x > 0 ? x : 0, cy = y > 0 ? y : 0;
    double cw = x + w - cx, ch = y + h - cy;
    cw = cw < img_w - cx ? cw : img_w - cx;
    ch = ch < img_h - cy ? ch : img_h - cy;
    return (struct eng_face_rect){(int)floor(cx), (int)floor(cy), (int)floor(cw), (int)floor(ch)};
}

/* ---- detection ------------------------------------------------------------------------------ */

void eng_face_params_default(struct eng_face_params *p)
{
    *p = (struct eng_face_params){.score_threshold = 0.5f, .input_size = ENG_FACE_INPUT_DEFAULT,
                                  .iou = 0.4f};
}

static double sigmoid(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

/* TinyYolov2Base.extractBoxes: boxes relative to the image (the correction factors undo the square
 * padding), then ObjectDetection rescales them to pixels. */
static int decode_boxes(const struct eng_face_ctx *ctx, const struct eng_layer *head,
                        const float *out, const struct eng_image *img, int side, float threshold)
{
    const int g = head->out.h;
    const size_t plane = (size_t)g * g;
    const double scale = (double)side / (img->width > img->height ? img->width : img->height);
    const double corr_x = side / floor(img->width * scale + 0.5);
    const double corr_y = side / floor(img->height * scale + 0.5);
    int n = 0;
    for (int row = 0; row < g; row++)
        for (int col = 0; col < g; col++)
            for (int a = 0; a < DET_ANCHORS; a++) {
                const float *o = out + (size_t)a * DET_BOX * plane + (size_t)row * g + col;
                const double score = sigmoid(o[4 * plane]);
                if (threshold > 0.0f && !(score > threshold))
                    continue;
                const double cx = ((col + sigmoid(o[0])) / g) * corr_x;
                const double cy = ((row + sigmoid(o[plane])) / g) * corr_y;
                const double w = ((exp(o[2 * plane]) * det_anchors[a][0]) / g) * corr_x;
                const double h = ((exp(o[3 * plane]) * det_anchors[a][1]) / g) * corr_y;
                const double x = cx - w / 2, y = cy - h / 2;
                struct eng_detection *d = &ctx->cand[n++];
                d->box = (struct eng_box){(float)(x * img->width), (float)(y * img->height),
                                          (float)((x + w) * img->width),
                                          (float)((y + h) * img->height)};
                d->confidence = (float)score;
                d->class_id = 0;
            }
    return n;
}

int eng_face_detect(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                    const struct eng_image *img, const struct eng_face_params *params,
                    struct eng_face *out, int cap, struct eng_err *err)
{
    const int side = params->input_size;
    if (!img->rgb || img->width <= 0 || img->height <= 0 || cap < 0)
        return eng_err_set(err, ENG_ERR_INVALID, "image", "empty image or negative capacity");
    if (side < 32 || side > m->max_input || side % 32)
        return eng_err_set(err, ENG_ERR_INVALID, "input_size",
                           "%d: expected a multiple of 32 in 32..%d", side, m->max_input);
    if (!(params->score_threshold >= 0.0f && params->score_threshold < 1.0f) ||
        !(params->iou >= 0.0f && params->iou <= 1.0f))
        return eng_err_set(err, ENG_ERR_INVALID, "score_threshold",
                           "score_threshold must be in [0, 1) and iou in [0, 1]");
    const struct eng_net *net = m->det[side / 32 - 1];
    /* Re-planning the arena allocates scratch: only when the input size changes, so the usual call
     * (the same size as the last one) allocates nothing. The failure cannot happen: contexts are sized
     * for the largest input. */
    if (ctx->det->net != net && eng_ctx_bind(ctx->det, net))
        return eng_err_set(err, ENG_ERR_INVALID, net->name, "context too small for this input size");
    const int big = img->width > img->height ? img->width : img->height;
    const struct view v = {img, 0, 0, img->width, img->height, 0, 0, big};
    prepare_input(&v, side, det_mean, ctx->det->input, ctx->det->team);
    eng_net_forward(net, ctx->det);
    const struct eng_layer *head = &net->layers[net->n_layers - 1];
    int n = decode_boxes(ctx, head, eng_ctx_output(ctx->det, head->index), img, side,
                         params->score_threshold);
    n = cap > 0 ? eng_nms(ctx->cand, n, params->iou, 1, cap) : 0;
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].box = ctx->cand[i].box;
        out[i].score = ctx->cand[i].confidence;
    }
    return n;
}

/* ---- landmarks and alignment ---------------------------------------------------------------- */

/* classes/FaceLandmarks.ts alignDlib with FaceLandmarks68.getRefPointsForAlignment, in double. */
static struct eng_face_rect align_dlib(const double *xy, int crop_w, int crop_h)
{
    static const int ranges[3][2] = {{36, 42}, {42, 48}, {48, 68}}; /* left eye, right eye, mouth */
    double cx[3], cy[3];
    for (int k = 0; k < 3; k++) {
        double sx = 0.0, sy = 0.0;
        for (int i = ranges[k][0]; i < ranges[k][1]; i++) {
            sx += xy[2 * i];
            sy += xy[2 * i + 1];
        }
        const double n = ranges[k][1] - ranges[k][0];
        cx[k] = sx / n;
        cy[k] = sy / n;
    }
    const double d_left = sqrt((cx[2] - cx[0]) * (cx[2] - cx[0]) + (cy[2] - cy[0]) * (cy[2] - cy[0]));
    const double d_right = sqrt((cx[2] - cx[1]) * (cx[2] - cx[1]) + (cy[2] - cy[1]) * (cy[2] - cy[1]));
    const double size = floor(((d_left + d_right) / 2) / 0.45);
    const double rx = (cx[0] + cx[1] + cx[2]) / 3, ry = (cy[0] + cy[1] + cy[2]) / 3;
    const double x = floor(fmax(0.0, rx - 0.5 * size)), y = floor(fmax(0.0, ry - 0.43 * size));
    return (struct eng_face_rect){(int)x, (int)y, (int)fmin(size, crop_w + x),
                                  (int)fmin(size, crop_h + y)};
}

struct eng_face_rect eng_face_align_dlib(const struct eng_face_point pts[ENG_FACE_LANDMARKS],
                                         int crop_w, int crop_h)
{
    double xy[2 * ENG_FACE_LANDMARKS];
    for (int i = 0; i < ENG_FACE_LANDMARKS; i++) {
        xy[2 * i] = pts[i].x;
        xy[2 * i + 1] = pts[i].y;
    }
    return align_dlib(xy, crop_w, crop_h);
}

struct eng_face_rect eng_face_box_crop(const struct eng_box *box, int img_w, int img_h)
{
    const double bw = (double)box->x2 - box->x1, bh = (double)box->y2 - box->y1;
    if (!(bw > 0) || !(bh > 0)) /* also NaN */
        return (struct eng_face_rect){0, 0, 0, 0};
    return clip_box(box->x1, box->y1, bw, bh, img_w, img_h);
}

int eng_face_landmarks(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                       const struct eng_image *img, struct eng_face *face, struct eng_err *err)
{
    if (!img->rgb || img->width <= 0 || img->height <= 0)
        return eng_err_set(err, ENG_ERR_INVALID, "image", "empty image");
    const struct eng_box bx = face->box;
    /* extractFaceTensors: the detection box clipped and floored */
    const struct eng_face_rect crop = eng_face_box_crop(&bx, img->width, img->height);
    if (crop.w <= 0 || crop.h <= 0)
        return eng_err_set(err, ENG_ERR_INVALID, "face",
                           "box (%.1f, %.1f, %.1f, %.1f) has no pixel inside the %dx%d image", bx.x1,
                           bx.y1, bx.x2, bx.y2, img->width, img->height);
    const struct view v = centred_view(img, crop);
    const int n = ENG_FACE_LANDMARK_INPUT;
    prepare_input(&v, n, face_mean, ctx->lm->input, ctx->lm->team);
    eng_net_forward(m->lm, ctx->lm);
    const float *o = eng_ctx_output(ctx->lm, m->lm->n_layers - 1);

    /* FaceLandmark68NetBase.postProcess, in float32 tensors: (out * 112 - pad) / scaled size */
    const double s = (double)n / (crop.w > crop.h ? crop.w : crop.h);
    const double sw = crop.w * s, sh = crop.h * s;
    const float pad_x = (float)(crop.w < crop.h ? fabs(sw - sh) / 2 : 0.0);
    const float pad_y = (float)(crop.h < crop.w ? fabs(sw - sh) / 2 : 0.0);
    double xy[2 * ENG_FACE_LANDMARKS];
    for (int i = 0; i < ENG_FACE_LANDMARKS; i++) {
        const float ox = (float)((double)o[2 * i] * n), oy = (float)((double)o[2 * i + 1] * n);
        const float rx = (float)((double)(float)((double)ox - pad_x) / (double)(float)sw);
        const float ry = (float)((double)(float)((double)oy - pad_y) / (double)(float)sh);
        /* FaceLandmarks: relative to the crop's size; extendWithFaceLandmarks shifts by the box */
        xy[2 * i] = (double)rx * crop.w + bx.x1;
        xy[2 * i + 1] = (double)ry * crop.h + bx.y1;
        face->landmarks[i] = (struct eng_face_point){(float)xy[2 * i], (float)xy[2 * i + 1]};
    }
    /* ComputeFaceDescriptorsTasks: landmarks.align(null, {useDlibAlignment: true}), then
     * extractFaceTensors clips that rectangle to the image */
    const struct eng_face_rect r = align_dlib(xy, crop.w, crop.h);
    face->chip = clip_box(r.x, r.y, r.w, r.h, img->width, img->height);
    face->has_landmarks = 1;
    if (face->chip.w <= 0 || face->chip.h <= 0)
        return eng_err_set(err, ENG_ERR_INVALID, "face",
                           "the aligned face (%d, %d, %dx%d) lies outside the %dx%d image", r.x, r.y,
                           r.w, r.h, img->width, img->height);
    return 0;
}

/* ---- descriptors ---------------------------------------------------------------------------- */

static void describe(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                     const struct eng_image *img, struct eng_face_rect chip,
                     float out[ENG_FACE_DESCRIPTOR])
{
    const struct view v = centred_view(img, chip);
    prepare_input(&v, ENG_FACE_CHIP, face_mean, ctx->rec->input, ctx->rec->team);
    eng_net_forward(m->rec, ctx->rec);
    memcpy(out, eng_ctx_output(ctx->rec, m->rec->n_layers - 1), sizeof(float) * ENG_FACE_DESCRIPTOR);
}

int eng_face_descriptor(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                        const struct eng_image *img, const struct eng_face *face,
                        float out[ENG_FACE_DESCRIPTOR], struct eng_err *err)
{
    const struct eng_face_rect c = face->chip;
    if (!face->has_landmarks || c.w <= 0 || c.h <= 0 || c.x < 0 || c.y < 0 ||
        c.x > img->width - c.w || c.y > img->height - c.h)
        return eng_err_set(err, ENG_ERR_INVALID, "face",
                           "the face has no aligned chip inside the image (landmarks not computed?)");
    describe(m, ctx, img, c, out);
    return 0;
}

int eng_face_descriptor_aligned(const struct eng_face_models *m, struct eng_face_ctx *ctx,
                                const struct eng_image *img, float out[ENG_FACE_DESCRIPTOR],
                                struct eng_err *err)
{
    if (!img->rgb || img->width <= 0 || img->height <= 0)
        return eng_err_set(err, ENG_ERR_INVALID, "image", "empty image");
    describe(m, ctx, img, (struct eng_face_rect){0, 0, img->width, img->height}, out);
    return 0;
}

/* ---- distances ------------------------------------------------------------------------------ */

double eng_face_distance_sq(const float a[ENG_FACE_DESCRIPTOR], const float b[ENG_FACE_DESCRIPTOR])
{
    double sum = 0.0;
    for (int i = 0; i < ENG_FACE_DESCRIPTOR; i++) {
        const double d = (double)a[i] - (double)b[i];
        sum += d * d;
    }
    return sum;
}

double eng_face_distance(const float a[ENG_FACE_DESCRIPTOR], const float b[ENG_FACE_DESCRIPTOR])
{
    return sqrt(eng_face_distance_sq(a, b));
}

double eng_face_confidence(double distance)
{
    return pow(ENG_FACE_MATCH_CONFIDENCE, distance / ENG_FACE_MATCH_THRESHOLD);
}

double eng_face_confidence_distance(double confidence)
{
    return ENG_FACE_MATCH_THRESHOLD * log(confidence) / log(ENG_FACE_MATCH_CONFIDENCE);
}

/* ---- choosing faces ------------------------------------------------------------------------- */

static float face_area(const struct eng_face *f)
{
    return (f->box.x2 - f->box.x1) * (f->box.y2 - f->box.y1);
}

void eng_face_sort_largest(struct eng_face *faces, int n)
{
    /* Insertion sort: stable, no allocation, and n is a detector's handful of faces. */
    for (int i = 1; i < n; i++) {
        const struct eng_face f = faces[i];
        const float a = face_area(&f);
        int j = i;
        for (; j > 0 && face_area(&faces[j - 1]) < a; j--)
            faces[j] = faces[j - 1];
        faces[j] = f;
    }
}

int eng_face_select(const struct eng_face *faces, int n, enum eng_face_select how)
{
    if (n <= 0)
        return -1;
    int pick = 0;
    for (int i = 1; i < n; i++) {
        const int better = how == ENG_FACE_SELECT_BEST ? faces[i].score > faces[pick].score
                                                       : face_area(&faces[i]) > face_area(&faces[pick]);
        if (better)
            pick = i;
    }
    return pick;
}
