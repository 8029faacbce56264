/* image_resize.c - OpenCV-exact linear resize and the network input tensor.
 *
 * The resize reproduces OpenCV 4.6 modules/imgproc/src/resize.cpp: the generic INTER_LINEAR path with
 * 11-bit coefficients and its exact-2x shortcut to INTER_AREA; tests/ref/test_image_opencv.py checks
 * it against cv2.resize byte for byte. */
#include <assert.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"

#define RESIZE_COEF_BITS 11 /* INTER_RESIZE_COEF_BITS */
#define RESIZE_COEF_ONE (1 << RESIZE_COEF_BITS)

/* saturate_cast<short>(c * INTER_RESIZE_COEF_SCALE): float product, rounded half to even. */
static short coef_fixed(float c)
{
    long v = lrintf(c * (float)RESIZE_COEF_ONE);
    return (short)(v < SHRT_MIN ? SHRT_MIN : v > SHRT_MAX ? SHRT_MAX : v);
}

/* OpenCV maps destination index d to the source with half-pixel centres, in double, then rounds to
 * float: fx = (float)((d + 0.5) * scale - 0.5). Doing it in float instead changes ~0.07% of the bytes
 * of photo-sized resizes; a fused multiply-add would too (-std=c11 keeps GCC from contracting). */
static float resize_src_pos(int d, double scale)
{
    return (float)((d + 0.5) * scale - 0.5);
}

struct resize_plan {
    int sw, sh, dw, dh;
    int xmax;     /* columns >= xmax take the last source column unweighted (right border) */
    int *xofs;    /* per column: left source column, clamped as OpenCV does */
    short *alpha; /* per column: weights of xofs and xofs + 1 */
    int *yofs;    /* per row: upper source row, NOT clamped (rows are clamped when fetched) */
    short *beta;  /* per row: weights of the two rows */
    int *rows[2]; /* horizontal-pass cache: 3 * dw ints each */
    int row_tag[2];
};

/* Columns: for sx < 0 OpenCV sets fx = 0, sx = 0; for sx >= sw - 1, fx = 0, sx = sw - 1, and from the
 * first such column on (xmax) it copies S[sx] * ONE instead of interpolating. */
static void plan_columns(struct resize_plan *p, double scale)
{
    p->xmax = p->dw;
    for (int dx = 0; dx < p->dw; dx++) {
        float fx = resize_src_pos(dx, scale);
        int sx = (int)floorf(fx);
        fx -= (float)sx;
        if (sx < 0) {
            fx = 0.f;
            sx = 0;
        }
        if (sx + 1 >= p->sw) {
            if (p->xmax > dx)
                p->xmax = dx;
            if (sx >= p->sw - 1) {
                fx = 0.f;
                sx = p->sw - 1;
            }
        }
        p->xofs[dx] = sx;
        p->alpha[2 * dx] = coef_fixed(1.f - fx);
        p->alpha[2 * dx + 1] = coef_fixed(fx);
    }
}

/* Rows: no clamping of the weights; out-of-range rows are replaced by the border row when fetched
 * (OpenCV's clip(sy, 0, ssize.height)), so both weights apply to the same row at the borders. */
static void plan_rows(struct resize_plan *p, double scale)
{
    for (int dy = 0; dy < p->dh; dy++) {
        float fy = resize_src_pos(dy, scale);
        int sy = (int)floorf(fy);
        fy -= (float)sy;
        p->yofs[dy] = sy;
        p->beta[2 * dy] = coef_fixed(1.f - fy);
        p->beta[2 * dy + 1] = coef_fixed(fy);
    }
}

/* HResizeLinear<uchar, int, short, 2048>: one source row to 3 * dw fixed-point values. */
static void resize_row_h(const struct resize_plan *p, const uint8_t *src, int *out)
{
    int dx = 0;
    for (; dx < p->xmax; dx++) {
        const uint8_t *s = src + 3 * p->xofs[dx];
        int a0 = p->alpha[2 * dx], a1 = p->alpha[2 * dx + 1];
        for (int c = 0; c < 3; c++)
            out[3 * dx + c] = s[c] * a0 + s[c + 3] * a1;
    }
    for (; dx < p->dw; dx++) {
        const uint8_t *s = src + 3 * p->xofs[dx];
        for (int c = 0; c < 3; c++)
            out[3 * dx + c] = s[c] * RESIZE_COEF_ONE;
    }
}

/* Horizontal pass of source row r (clamped), reusing the cached rows; `keep` is a row still needed. */
static const int *resize_fetch(struct resize_plan *p, const struct eng_image *src, int r, int keep)
{
    r = r < 0 ? 0 : r >= p->sh ? p->sh - 1 : r;
    for (int i = 0; i < 2; i++)
        if (p->row_tag[i] == r)
            return p->rows[i];
    int slot = p->row_tag[0] == keep ? 1 : 0;
    resize_row_h(p, src->rgb + (size_t)r * p->sw * 3, p->rows[slot]);
    p->row_tag[slot] = r;
    return p->rows[slot];
}

/* VResizeLinear<uchar, int, short, FixedPtCast<int, uchar, 22>>: OpenCV drops 4 bits before the
 * multiply and 16 after it (matching its SIMD v_mul_hi), then rounds the last 2 bits. */
static void resize_row_v(const int *r0, const int *r1, int b0, int b1, int n, uint8_t *dst)
{
    for (int i = 0; i < n; i++)
        dst[i] = (uint8_t)((((b0 * (r0[i] >> 4)) >> 16) + ((b1 * (r1[i] >> 4)) >> 16) + 2) >> 2);
}

static void resize_plan_free(struct resize_plan *p)
{
    free(p->xofs);
    free(p->alpha);
    free(p->yofs);
    free(p->beta);
    free(p->rows[0]);
    free(p->rows[1]);
}

static int resize_generic(const struct eng_image *src, int dw, int dh, double scale_x, double scale_y,
                          uint8_t *dst, struct eng_err *err)
{
    struct resize_plan p = {.sw = src->width, .sh = src->height, .dw = dw, .dh = dh,
                            .row_tag = {-1, -1}};
    p.xofs = malloc((size_t)dw * sizeof *p.xofs);
    p.alpha = malloc((size_t)dw * 2 * sizeof *p.alpha);
    p.yofs = malloc((size_t)dh * sizeof *p.yofs);
    p.beta = malloc((size_t)dh * 2 * sizeof *p.beta);
    p.rows[0] = malloc((size_t)dw * 3 * sizeof *p.rows[0]);
    p.rows[1] = malloc((size_t)dw * 3 * sizeof *p.rows[1]);
    if (!p.xofs || !p.alpha || !p.yofs || !p.beta || !p.rows[0] || !p.rows[1]) {
        resize_plan_free(&p);
        return eng_err_set(err, ENG_ERR_NOMEM, NULL, "out of memory resizing to %dx%d", dw, dh);
    }
    plan_columns(&p, scale_x);
    plan_rows(&p, scale_y);
    for (int dy = 0; dy < dh; dy++) {
        int r0 = p.yofs[dy];
        int r0c = r0 < 0 ? 0 : r0 >= p.sh ? p.sh - 1 : r0;
        const int *a = resize_fetch(&p, src, r0, -1);
        const int *b = resize_fetch(&p, src, r0 + 1, r0c);
        resize_row_v(a, b, p.beta[2 * dy], p.beta[2 * dy + 1], dw * 3, dst + (size_t)dy * dw * 3);
    }
    resize_plan_free(&p);
    return 0;
}

/* OpenCV switches INTER_LINEAR to INTER_AREA for an exact 2x downscale on both axes; its fast area
 * path for 2x2 blocks is (a + b + c + d + 2) >> 2. The generic path with weights 1024/1024 gives the
 * same bytes at ordinary sizes; taking OpenCV's branch keeps that true at any width, and is cheaper. */
static void resize_half(const struct eng_image *src, int dw, int dh, uint8_t *dst)
{
    size_t sstride = (size_t)src->width * 3;
    for (int dy = 0; dy < dh; dy++) {
        const uint8_t *s0 = src->rgb + 2 * (size_t)dy * sstride, *s1 = s0 + sstride;
        uint8_t *d = dst + (size_t)dy * dw * 3;
        for (int i = 0; i < dw * 3; i++) {
            int j = (i / 3) * 6 + i % 3;
            d[i] = (uint8_t)((s0[j] + s0[j + 3] + s1[j] + s1[j + 3] + 2) >> 2);
        }
    }
}

int eng_image_resize_linear(const struct eng_image *src, int dst_w, int dst_h, uint8_t *dst,
                            struct eng_err *err)
{
    assert(src && src->rgb && src->width > 0 && src->height > 0 && dst);
    assert(dst_w > 0 && dst_h > 0 && dst_w <= INT_MAX / 3);
    if (dst_w == src->width && dst_h == src->height) { /* cv::resize copies */
        memcpy(dst, src->rgb, (size_t)dst_w * dst_h * 3);
        return 0;
    }
    /* the same double arithmetic as cv::resize / hal::resize */
    double inv_x = (double)dst_w / src->width, inv_y = (double)dst_h / src->height;
    double scale_x = 1. / inv_x, scale_y = 1. / inv_y;
    double iscale_x = nearbyint(scale_x), iscale_y = nearbyint(scale_y);
    int area_fast = fabs(scale_x - iscale_x) < DBL_EPSILON && fabs(scale_y - iscale_y) < DBL_EPSILON;
    if (area_fast && iscale_x == 2 && iscale_y == 2) {
        resize_half(src, dst_w, dst_h, dst);
        return 0;
    }
    return resize_generic(src, dst_w, dst_h, scale_x, scale_y, dst, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* Network input                                                                                  */

/* darknet's letterbox_image: compare the ratios in float, then integer division for the other side. */
static void letterbox_size(int w, int h, int net_w, int net_h, int *new_w, int *new_h)
{
    if ((float)net_w / w < (float)net_h / h) {
        *new_w = net_w;
        *new_h = (int)((int64_t)h * net_w / w);
    } else {
        *new_h = net_h;
        *new_w = (int)((int64_t)w * net_h / h);
    }
    /* extreme aspect ratios would round a side to 0, which darknet does not survive either */
    if (*new_w < 1)
        *new_w = 1;
    if (*new_h < 1)
        *new_h = 1;
}

int eng_image_to_input(const struct eng_image *img, int net_w, int net_h, int letterbox, float *dst,
                       struct eng_letterbox *map, struct eng_err *err)
{
    assert(img && img->rgb && img->width > 0 && img->height > 0 && dst);
    if (net_w <= 0 || net_h <= 0 || net_w > INT_MAX / 3)
        return eng_err_set(err, ENG_ERR_INVALID, NULL, "bad network input size %dx%d", net_w, net_h);
    int new_w = net_w, new_h = net_h;
    if (letterbox)
        letterbox_size(img->width, img->height, net_w, net_h, &new_w, &new_h);
    uint8_t *pix = malloc((size_t)new_w * new_h * 3);
    if (!pix)
        return eng_err_set(err, ENG_ERR_NOMEM, NULL, "out of memory for a %dx%d input", new_w, new_h);
    if (eng_image_resize_linear(img, new_w, new_h, pix, err) != 0) {
        free(pix);
        return -1;
    }

    size_t plane = (size_t)net_w * net_h;
    int pad_x = (net_w - new_w) / 2, pad_y = (net_h - new_h) / 2;
    if (letterbox)
        for (size_t i = 0; i < 3 * plane; i++)
            dst[i] = 0.5f;
    /* pixel * (float)(1/255.) is what blobFromImage computes (convertTo, then *= scalefactor);
     * pixel / 255.f differs in the last bit for about half the values */
    const float k = (float)(1.0 / 255.0);
    for (int y = 0; y < new_h; y++) {
        const uint8_t *s = pix + (size_t)y * new_w * 3;
        float *d = dst + (size_t)(y + pad_y) * net_w + pad_x;
        for (int x = 0; x < new_w; x++)
            for (int c = 0; c < 3; c++)
                d[c * plane + x] = (float)s[3 * x + c] * k;
    }
    free(pix);
    if (map)
        *map = (struct eng_letterbox){.scale_x = (float)new_w / img->width,
                                      .scale_y = (float)new_h / img->height,
                                      .pad_x = (float)pad_x,
                                      .pad_y = (float)pad_y};
    return 0;
}

