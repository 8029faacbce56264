/* pool.c - [maxpool] and [avgpool] with darknet's semantics.
 *
 * maxpool: out = (n + padding - size) / stride + 1, the window starts padding/2 before the input, and
 * cells outside the input never win (so size=2 stride=1 keeps the grid size, as in yolov3-tiny).
 * avgpool: darknet's is global: each channel becomes its mean. With size > 0 (not from darknet cfgs)
 * it is TensorFlow's 'valid' average pooling: size x size windows moved by stride, no padding. */
#include <float.h>
#include <stdio.h>
#include <string.h>

#include "kern.h"
#include "layer.h"

/* Output columns whose whole window [ox * stride + off, + size) lies inside [0, w). */
static void pool_interior(int size, int stride, int off, int w, int ow, int *lo, int *hi)
{
    int a = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int b = w - size - off < 0 ? 0 : (w - size - off) / stride + 1;
    *lo = a < ow ? a : ow;
    *hi = b < ow ? b : ow;
    if (*hi < *lo)
        *hi = *lo;
}

/* Window maximum along one input row for interior columns [lo, hi), folded into out (first: set).
 * size is a constant where it is inlined, so the window loop unrolls and nothing is checked. */
static inline __attribute__((always_inline)) void max_row(const float *r, int size, int stride,
                                                          int off, int lo, int hi, int first,
                                                          float *out)
{
    for (int ox = lo; ox < hi; ox++) {
        const float *p = r + ox * stride + off;
        float m = p[0];
        for (int kx = 1; kx < size; kx++)
            m = p[kx] > m ? p[kx] : m;
        out[ox] = first || m > out[ox] ? m : out[ox];
    }
}

/* Interior columns [lo, hi) of the output row whose window starts at input row iy0. */
static void max_rows(const struct eng_pool *p, const float *in, int h, int w, int iy0, int off, int lo, int hi,
                     float *orow)
{
    int first = 1;
    for (int ky = 0; ky < p->size && hi > lo; ky++) {
        if (iy0 + ky < 0 || iy0 + ky >= h)
            continue;
        const float *r = in + (size_t)(iy0 + ky) * w;
        if (p->size == 2)
            max_row(r, 2, p->stride, off, lo, hi, first, orow);
        else if (p->size == 3)
            max_row(r, 3, p->stride, off, lo, hi, first, orow);
        else
            max_row(r, p->size, p->stride, off, lo, hi, first, orow);
        first = 0;
    }
}

/* One output element with bounds checks: the border columns. */
static float max_point(const float *in, int h, int w, int size, int iy0, int ix0)
{
    float best = -FLT_MAX;
    for (int ky = 0; ky < size; ky++) {
        const int iy = iy0 + ky;
        if (iy < 0 || iy >= h)
            continue;
        for (int kx = 0; kx < size; kx++) {
            const int ix = ix0 + kx;
            if (ix >= 0 && ix < w && in[(size_t)iy * w + ix] > best)
                best = in[(size_t)iy * w + ix];
        }
    }
    return best;
}

/* The face recognizer's 3x3 stride-2 pool (32 x 72 x 72 -> 35 x 35) ran max_row's scalar loop at a
 * sixth of ONNX Runtime's speed (docs/PERFORMANCE.md, "Face recognizer"). A window's three rows are
 * reduced first, a vector pass over the row (t = max of rows iy0 .. iy0 + 2), and t's 3-wide windows at
 * stride 2 are the 2x2 stride-2 kernel's windows of t and t shifted by one: max(t[2i], t[2i + 1],
 * t[2i + 1], t[2i + 2]). Max is exact, so these are the values of max_rows (up to which of two equal
 * values, +0 and -0, is kept). Rows up to POOL3_MAX_W wide; interior rows and columns only. */
#define POOL3_MAX_W 1024

static void max3_rows_s2(const float *r0, const float *r1, const float *r2, int from, int to, int lo, int hi,
                         void (*pool2)(const float *, const float *, float *, int), float *orow)
{
    typedef float v4 __attribute__((vector_size(16))); /* the baseline's SSE: this file is built for any x86-64 */
    typedef int v4i __attribute__((vector_size(16)));
    float t[POOL3_MAX_W];
    int x = from;
    for (; x + 4 <= to + 1; x += 4) { /* -O2 leaves the plain loop scalar (its trip count is unknown) */
        v4 a, b, c;
        memcpy(&a, r0 + x, sizeof a);
        memcpy(&b, r1 + x, sizeof b);
        memcpy(&c, r2 + x, sizeof c);
        v4i gt = b > a;
        a = (v4)(((v4i)b & gt) | ((v4i)a & ~gt));
        gt = c > a;
        a = (v4)(((v4i)c & gt) | ((v4i)a & ~gt));
        memcpy(t + x, &a, sizeof a);
    }
    for (; x <= to; x++) {
        const float a = r1[x] > r0[x] ? r1[x] : r0[x];
        t[x] = r2[x] > a ? r2[x] : a;
    }
    pool2(t + from, t + from + 1, orow + lo, hi - lo);
}

/* The same pool with no padding ('valid', the recognizer's), in bands of output rows with no per-row
 * work but one call: a 3x3 window at stride 2 is the 2x2 stride-2 window over a = the 2x2 stride-1
 * maxima of the input (rows 2 oy .. 2 oy + 2, columns 2 ox .. 2 ox + 2), and a over a band's input rows
 * is one stretch of the plane (the values that straddle a row's end are never read). The row pass above
 * ran 48 us on 32 x 72 x 72 (a vertical max by SSE, then a call, per output row; a /tmp harness, min of
 * 500); this 29 us with the two vector kernels. Max is exact: the same values (up to +0 / -0, as above). */
#define POOL3_BAND_FLOATS 2048

static void max3_valid_s2(const float *in, int w, int oh, int ow, const struct eng_kern *kern, float *out)
{
    float a[POOL3_BAND_FLOATS];
    const int band = POOL3_BAND_FLOATS / (2 * w) < 1 ? 1 : POOL3_BAND_FLOATS / (2 * w);
    for (int oy0 = 0; oy0 < oh; oy0 += band) {
        const int oy1 = oy0 + band < oh ? oy0 + band : oh;
        const float *r = in + (size_t)2 * oy0 * w;
        kern->maxpool2_s1(r, r + w, a, 2 * (oy1 - oy0) * w - 1);
        for (int oy = oy0; oy < oy1; oy++)
            kern->maxpool2(a + (size_t)2 * (oy - oy0) * w, a + (size_t)(2 * (oy - oy0) + 1) * w,
                           out + (size_t)oy * ow, ow);
    }
}

/* Stride-1 windows of size 3 and up (SPP's 5, 9, 13 in Yolo-Fastest and yolov4), whose 10x10 to
 * 20x20 planes are mostly border, where max_point checked every cell of every window (a size-9 pool
 * took 4% of Yolo-Fastest-XL's pass): the maximum is separable, so each output row first takes the
 * column maxima over its window's rows (clipped to the input) into a row of `col`, then each output
 * the maximum of its clipped span of those: 2 x size comparisons per output instead of size^2. The
 * result is the same value (a maximum does not depend on the order). */
#define SEPARABLE_MAX_W 256 /* the column maxima live on the stack */

static int separable(const struct eng_pool *p, int w)
{
    return p->stride == 1 && p->size >= 3 && w <= SEPARABLE_MAX_W;
}

static void maxpool_separable(const struct eng_layer *l, const float *in, float *out)
{
    const struct eng_pool *p = &l->p.pool;
    const int off = -p->pad / 2, h = l->in.h, w = l->in.w, ow = l->out.w;
    float col[SEPARABLE_MAX_W];
    for (int oy = 0; oy < l->out.h; oy++) {
        const int y0 = off + oy < 0 ? 0 : off + oy, y1 = off + oy + p->size > h ? h : off + oy + p->size;
        const float *r = in + (size_t)y0 * w;
        for (int x = 0; x < w; x++)
            col[x] = r[x];
        for (int y = y0 + 1; y < y1; y++) {
            r = in + (size_t)y * w;
            for (int x = 0; x < w; x++)
                col[x] = r[x] > col[x] ? r[x] : col[x];
        }
        float *orow = out + (size_t)oy * ow;
        for (int ox = 0; ox < ow; ox++) {
            const int x0 = off + ox < 0 ? 0 : off + ox, x1 = off + ox + p->size > w ? w : off + ox + p->size;
            float m = col[x0];
            for (int x = x0 + 1; x < x1; x++)
                m = col[x] > m ? col[x] : m;
            orow[ox] = m;
        }
    }
}

/* Interior columns row by row of the window (the per-element checks of a plain loop made maxpool a
 * quarter of the face pipeline's time), 2x2 windows at stride 2 or 1 by the vector kernels, also
 * where one of the two rows is padding; borders with checks. Padding never wins: max of what is
 * inside, as darknet. */
static void maxpool_channels(const struct eng_layer *l, const struct eng_fwd *f, int c0, int c1)
{
    const struct eng_pool *p = &l->p.pool;
    const int off = -p->pad / 2, h = l->in.h, w = l->in.w, ow = l->out.w;
    int lo, hi;
    pool_interior(p->size, p->stride, off, w, ow, &lo, &hi);
    const struct eng_kern *kern = eng_kern_best();
    /* the vector kernels' cases: 2x2 windows at stride 2 or 1 (the face detector's last pool) */
    void (*pool2)(const float *, const float *, float *, int) =
        p->size != 2 ? NULL : p->stride == 2 ? kern->maxpool2 : p->stride == 1 ? kern->maxpool2_s1 : NULL;
    /* Stride 1 with the padding after (the output the input's size): all rows but the last as one
     * stretch of the plane, whose last column (read across into the next row) is then redone. The
     * face detector's 13-wide rows are shorter than an AVX-512 vector. */
    const int pool3 = p->size == 3 && p->stride == 2 && w <= POOL3_MAX_W;
    const int flat = pool2 && p->stride == 1 && off == 0 && ow == w && l->out.h == h && h >= 2 && w >= 2;
    for (int c = c0; c < c1; c++) {
        const float *in = f->in + (size_t)c * h * w;
        float *out = f->out + (size_t)c * l->out.h * ow;
        if (separable(p, w)) {
            maxpool_separable(l, in, out);
            continue;
        }
        if (pool3 && p->pad == 0 && 2 * w <= POOL3_BAND_FLOATS) {
            max3_valid_s2(in, w, l->out.h, ow, kern, out);
            continue;
        }
        if (flat) {
            pool2(in, in + w, out, (h - 1) * w - 1);
            const float *last = in + (size_t)(h - 1) * w;
            pool2(last, last, out + (size_t)(h - 1) * w, w - 1);
            for (int oy = 0; oy < h; oy++)
                out[(size_t)oy * w + w - 1] = max_point(in, h, w, 2, oy, w - 1);
            continue;
        }
        for (int oy = 0; oy < l->out.h; oy++) {
            float *orow = out + (size_t)oy * ow;
            const int iy0 = off + oy * p->stride;
            const int top = iy0 >= 0 && iy0 < h, bottom = iy0 + 1 >= 0 && iy0 + 1 < h;
            if (pool3 && iy0 >= 0 && iy0 + 2 < h && hi > lo) {
                const float *r0 = in + (size_t)iy0 * w;
                max3_rows_s2(r0, r0 + w, r0 + 2 * w, off + 2 * lo, off + 2 * hi, lo, hi, kern->maxpool2, orow);
            } else if (pool2 && (top || bottom)) {
                /* a window's row in the padding: the other row twice (the max of a row with itself
                 * is that row's, as max_rows gives) */
                const float *r0 = in + (size_t)(top ? iy0 : iy0 + 1) * w + off + p->stride * lo;
                const float *r1 = in + (size_t)(bottom ? iy0 + 1 : iy0) * w + off + p->stride * lo;
                pool2(r0, r1, orow + lo, hi - lo);
            } else {
                max_rows(p, in, h, w, iy0, off, lo, hi, orow);
            }
            for (int ox = 0; ox < ow; ox++) {
                if (ox == lo && hi > lo)
                    ox = hi;
                if (ox < ow)
                    orow[ox] = max_point(in, h, w, p->size, iy0, off + ox * p->stride);
            }
        }
    }
}

void eng_maxpool2_rows(const float *r0, const float *r1, int w, float *out)
{
    const int half = w / 2;
    eng_kern_best()->maxpool2(r0, r1 ? r1 : r0, out, half);
    if (w % 2) { /* the last window's column in the padding: max_point's order */
        float best = -FLT_MAX;
        if (r0[w - 1] > best)
            best = r0[w - 1];
        if (r1 && r1[w - 1] > best)
            best = r1[w - 1];
        out[half] = best;
    }
}

static void maxpool_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_fwd_split(l, f, l->out.c, maxpool_channels);
}

int eng_maxpool_setup(struct eng_layer *l, char *why, size_t why_size)
{
    const struct eng_pool *p = &l->p.pool;
    if (p->size <= 0 || p->stride <= 0 || p->pad < 0) {
        snprintf(why, why_size, "size and stride must be positive and padding >= 0");
        return -1;
    }
    const int oh = (l->in.h + p->pad - p->size) / p->stride + 1;
    const int ow = (l->in.w + p->pad - p->size) / p->stride + 1;
    if (oh <= 0 || ow <= 0 || l->in.h + p->pad < p->size || l->in.w + p->pad < p->size) {
        snprintf(why, why_size, "a %dx%d window does not fit the %dx%d input", p->size, p->size,
                 l->in.w, l->in.h);
        return -1;
    }
    /* A window that lies wholly in the padding would output -FLT_MAX: refuse such shapes. */
    if (p->pad / 2 >= p->size || p->pad - p->pad / 2 >= p->size) {
        snprintf(why, why_size, "padding=%d is too large for size=%d", p->pad, p->size);
        return -1;
    }
    l->out = (struct eng_shape){l->in.c, oh, ow};
    l->forward = maxpool_forward;
    l->flops = (double)eng_shape_size(l->out) * p->size * p->size;
    return 0;
}

static void avgpool_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const size_t plane = (size_t)l->in.h * l->in.w;
    for (int c = 0; c < l->in.c; c++) {
        const float *in = f->in + c * plane;
        double sum = 0.0;
        for (size_t i = 0; i < plane; i++)
            sum += in[i];
        f->out[c] = (float)(sum / (double)plane);
    }
}

/* 2x2 windows at stride 2 (the recognizer's down blocks): the general loop's sums in its order, with
 * the window loops unrolled (they were most of its time on 17..2-wide outputs). */
static void avgpool2_s2(const struct eng_layer *l, const struct eng_fwd *f)
{
    for (int c = 0; c < l->out.c; c++) {
        const float *in = f->in + (size_t)c * l->in.h * l->in.w;
        float *out = f->out + (size_t)c * l->out.h * l->out.w;
        for (int oy = 0; oy < l->out.h; oy++) {
            const float *r0 = in + (size_t)(2 * oy) * l->in.w, *r1 = r0 + l->in.w;
            for (int ox = 0; ox < l->out.w; ox++) {
                float sum = 0.0f;
                sum += r0[2 * ox];
                sum += r0[2 * ox + 1];
                sum += r1[2 * ox];
                sum += r1[2 * ox + 1];
                out[(size_t)oy * l->out.w + ox] = sum / 4.0f;
            }
        }
    }
}

static void avgpool_window_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_pool *p = &l->p.pool;
    if (p->size == 2 && p->stride == 2) {
        avgpool2_s2(l, f);
        return;
    }
    const float count = (float)(p->size * p->size);
    for (int c = 0; c < l->out.c; c++) {
        const float *in = f->in + (size_t)c * l->in.h * l->in.w;
        float *out = f->out + (size_t)c * l->out.h * l->out.w;
        for (int oy = 0; oy < l->out.h; oy++) {
            for (int ox = 0; ox < l->out.w; ox++) {
                float sum = 0.0f;
                for (int ky = 0; ky < p->size; ky++) {
                    const float *row = in + (size_t)(oy * p->stride + ky) * l->in.w + ox * p->stride;
                    for (int kx = 0; kx < p->size; kx++)
                        sum += row[kx];
                }
                out[(size_t)oy * l->out.w + ox] = sum / count;
            }
        }
    }
}

int eng_avgpool_setup(struct eng_layer *l, char *why, size_t why_size)
{
    const struct eng_pool *p = &l->p.pool;
    if (p->size == 0) {
        l->out = (struct eng_shape){l->in.c, 1, 1};
        l->forward = avgpool_forward;
        l->flops = (double)eng_shape_size(l->in);
        return 0;
    }
    if (p->size < 0 || p->stride <= 0 || p->pad != 0) {
        snprintf(why, why_size, "a windowed avgpool needs size > 0, stride > 0 and no padding");
        return -1;
    }
    if (l->in.h < p->size || l->in.w < p->size) {
        snprintf(why, why_size, "a %dx%d window does not fit the %dx%d input", p->size, p->size,
                 l->in.w, l->in.h);
        return -1;
    }
    l->out = (struct eng_shape){l->in.c, (l->in.h - p->size) / p->stride + 1,
                                (l->in.w - p->size) / p->stride + 1};
    l->forward = avgpool_window_forward;
    l->flops = (double)eng_shape_size(l->out) * p->size * p->size;
    return 0;
}
