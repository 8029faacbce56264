/* conv_direct.c - stride-1 and stride-2 convolutions read straight from the input, without im2col.
 *
 * A first layer on RGB (3 channels, 3x3: k = 27) through im2col wrote its input out 27 times: for
 * yolov3-tiny @416, 18.7 MB of columns for an 11 MB output, and the layer was memory-bound. Here
 * each tap (channel, ky, kx) of an output row is a contiguous stretch of a zero-padded copy of the
 * input (or of the input itself when there is no padding), so the pointwise kernel (kern.h) reads
 * it through a table of k offsets: same register tiles, same order of sums, no columns. At stride 2
 * the copy is split into four phase planes (even/odd rows x even/odd columns), so a tap's reads stay
 * contiguous (the face recognizer's 7x7 stride-2 first layer: docs/PERFORMANCE.md, Kernels).
 *
 * Row mode, outputs at least 32 wide: one kernel call per output row, up to k = 160 (yolov3-tiny's
 * second layer, k = 144, at 208x208, about twice as fast as im2col and sgemm), while a tile's k input
 * stretches of 32 floats and its 8 x k weights stay in L1; at k = 288 they do not, and the layer ran
 * several times slower than sgemm (docs/PERFORMANCE.md, Kernels).
 *
 * Plane mode, narrower outputs (8..31 wide): rows that narrow would leave most pixels to the kernel's
 * scalar tail, so the whole plane is computed over the padded width as one stretch of pixels (the
 * extra columns are thrown away), in chunks of PLANE_CHUNK_K taps that accumulate, so that a chunk's
 * input stretches and weights stay in L1 at any k. The face recognizer's 17x17 and 8x8 layers
 * (k = 576, 1152) gain over im2col + sgemm; its 35x35 layers (k = 288) run the same either way
 * (docs/PERFORMANCE.md, Kernels). */
#include <string.h>
#include <unistd.h>

#include "kern.h"
#include "layer.h"
#include "team.h"

/* The staged input: per channel stride x stride phase planes (one at stride 1) of hp rows of wp floats.
 * Phase (py, px) holds the zero-padded input's rows py, py + stride, ... and columns likewise, so that
 * a tap's reads for a row of outputs are one contiguous stretch at any stride. */
static int padded_h(const struct eng_layer *l)
{
    return l->out.h + (l->p.conv.size - 1) / l->p.conv.stride;
}

static int padded_w(const struct eng_layer *l)
{
    return l->out.w + (l->p.conv.size - 1) / l->p.conv.stride;
}

static size_t staged_floats(const struct eng_layer *l)
{
    const int st = l->p.conv.stride;
    return (size_t)l->in.c * st * st * padded_h(l) * padded_w(l);
}

/* Whether the input itself is the staged input (stride 1, no padding). */
static int unpadded(const struct eng_conv *c)
{
    return c->stride == 1 && c->pad_top == 0 && c->pad_left == 0 && c->pad_bottom == 0 && c->pad_right == 0;
}

#define DIRECT_MAX_K 160
#define DIRECT_MIN_WIDTH 32

/* Narrow planes (plane_ok) are computed whole over the padded width, in chunks of PLANE_CHUNK_K taps,
 * into a scratch of PLANE_ROUND-rounded planes; see plane_forward. */
#define PLANE_CHUNK_K 144
#define PLANE_ROUND 32
#define PLANE_MIN_WIDTH 8
#define PLANE_MAX_PIXELS 4096
#define PLANE_MAX_WEIGHTS (1 << 20) /* bytes: every pixel tile reads them all, from L2 */

static int row_ok(const struct eng_layer *l)
{
    return l->in.c * l->p.conv.size * l->p.conv.size <= DIRECT_MAX_K && l->out.w >= DIRECT_MIN_WIDTH;
}

static int plane_ok(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    const size_t k = (size_t)l->in.c * c->size * c->size;
    return !row_ok(l) && l->out.w >= PLANE_MIN_WIDTH && (size_t)l->out.h * padded_w(l) <= PLANE_MAX_PIXELS &&
           k * c->filters * sizeof(float) <= PLANE_MAX_WEIGHTS;
}

int eng_conv_direct_ok(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    return (c->stride == 1 || c->stride == 2) && c->groups == 1 && c->size > 1 && c->pad_top >= 0 &&
           c->pad_left >= 0 && c->pad_bottom >= 0 && c->pad_right >= 0 && (row_ok(l) || plane_ok(l));
}

static size_t round_up(size_t x, size_t to)
{
    return (x + to - 1) / to * to;
}

/* The plane mode's scratch, in floats: the tap offsets (size_t), the padded input with room for the
 * last pixel tile's reads past its end, then the output planes over the padded width. */
static size_t plane_pixels(const struct eng_layer *l)
{
    return round_up((size_t)l->out.h * padded_w(l), PLANE_ROUND);
}

static size_t plane_offsets_floats(const struct eng_layer *l)
{
    const size_t k = (size_t)l->in.c * l->p.conv.size * l->p.conv.size;
    return round_up(k * sizeof(size_t) / sizeof(float), 16);
}

static size_t plane_input_floats(const struct eng_layer *l)
{
    return round_up(staged_floats(l) + (size_t)l->p.conv.size + PLANE_ROUND, 16);
}

size_t eng_conv_direct_work_floats(const struct eng_layer *l)
{
    if (!row_ok(l))
        return plane_offsets_floats(l) + plane_input_floats(l) + (size_t)l->out.c * plane_pixels(l);
    return unpadded(&l->p.conv) ? 0 : staged_floats(l);
}

/* Stride 1: channels [ch0, ch1) of the input copied into the middle of a zeroed hp x wp plane each. */
static void pad_input(const struct eng_layer *l, const float *in, float *pad, int ch0, int ch1)
{
    const struct eng_conv *c = &l->p.conv;
    const int hp = padded_h(l), wp = padded_w(l), h = l->in.h, w = l->in.w;
    const int rows = h < hp - c->pad_top ? h : hp - c->pad_top;
    const int cols = w < wp - c->pad_left ? w : wp - c->pad_left;
    for (int ch = ch0; ch < ch1; ch++) {
        float *plane = pad + (size_t)ch * hp * wp;
        memset(plane, 0, sizeof(float) * (size_t)c->pad_top * wp);
        for (int y = 0; y < rows; y++) {
            float *row = plane + (size_t)(y + c->pad_top) * wp;
            memset(row, 0, sizeof(float) * (size_t)c->pad_left);
            memcpy(row + c->pad_left, in + ((size_t)ch * h + y) * w, sizeof(float) * (size_t)cols);
            memset(row + c->pad_left + cols, 0, sizeof(float) * (size_t)(wp - c->pad_left - cols));
        }
        memset(plane + (size_t)(rows + c->pad_top) * wp, 0,
               sizeof(float) * (size_t)(hp - rows - c->pad_top) * wp);
    }
}

/* Stride 2: channels [ch0, ch1) each split into its four phase planes, zeros where the padding is. */
static void split_phases(const struct eng_layer *l, const float *in, float *dst, int ch0, int ch1)
{
    const struct eng_conv *c = &l->p.conv;
    const int hp = padded_h(l), wp = padded_w(l), h = l->in.h, w = l->in.w;
    dst += (size_t)ch0 * 4 * hp * wp;
    for (int ch = ch0; ch < ch1; ch++)
        for (int py = 0; py < 2; py++)
            for (int px = 0; px < 2; px++)
                for (int r = 0; r < hp; r++, dst += wp) {
                    /* zeros, the columns [q0, q1) whose source 2 q + px - pad_left lies in the row,
                     * zeros: a test per element made this copy a third of Yolo-Fastest-XL's first
                     * layer */
                    const int iy = 2 * r + py - c->pad_top, off = px - c->pad_left;
                    int q0 = off < 0 ? (1 - off) / 2 : 0, q1 = w - 1 - off < 0 ? 0 : (w - 1 - off) / 2 + 1;
                    q1 = iy < 0 || iy >= h ? 0 : q1 < wp ? q1 : wp;
                    q0 = q0 < q1 ? q0 : q1;
                    const float *src = in + ((size_t)ch * h + (iy >= 0 && iy < h ? iy : 0)) * w;
                    for (int q = 0; q < q0; q++)
                        dst[q] = 0.0f;
                    for (int q = q0; q < q1; q++)
                        dst[q] = src[2 * q + off];
                    for (int q = q1; q < wp; q++)
                        dst[q] = 0.0f;
                }
}

struct stage_run {
    const struct eng_layer *l;
    const float *in;
    float *dst;
    int n_tasks;
};

static void stage_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct stage_run *s = arg;
    int ch0, ch1;
    eng_team_split(s->l->in.c, s->n_tasks, task, 1, &ch0, &ch1);
    if (s->l->p.conv.stride == 1)
        pad_input(s->l, s->in, s->dst, ch0, ch1);
    else
        split_phases(s->l, s->in, s->dst, ch0, ch1);
}

/* The staged input, split by channels across the team: a copy, so any split gives the same bits; on
 * one thread it was the serial part of yolov3-tiny's second layer (16 x 210 x 210 floats). */
static void stage_input(const struct eng_layer *l, const float *in, float *dst, struct eng_team *team)
{
    struct stage_run s = {.l = l, .in = in, .dst = dst, .n_tasks = l->in.c < 8 ? l->in.c : 8};
    eng_team_for(team, s.n_tasks, stage_task, &s);
}

struct direct_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    const float *src; /* the padded input, or the input */
    const size_t *offsets;
    int n_tasks;
};

/* Output rows of one task: each row is one pointwise call over its whole width, so a pixel is
 * computed the same way whatever the split. */
static void direct_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct direct_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const size_t plane = (size_t)l->out.h * l->out.w;
    int y0, y1;
    eng_team_split(l->out.h, r->n_tasks, task, 1, &y0, &y1);
    const struct eng_kern *kern = eng_kern_best();
    for (int y = y0; y < y1; y++) {
        const struct eng_pw pw = {.w = c->weights, .bias = c->bias, .in = r->src + (size_t)y * padded_w(l),
                                  .out = r->f->out + (size_t)y * l->out.w,
                                  .m = c->filters, .k = l->in.c * c->size * c->size, .plane = plane,
                                  .in_offsets = r->offsets, .act = c->act,
                                  .post_w = c->post_scale, .post_b = c->post_bias};
        kern->pointwise(&pw, 0, c->filters, 0, (size_t)l->out.w);
    }
}

/* Where tap (channel, ky, kx) of output pixel 0 reads in the staged input. */
static void tap_offsets(const struct eng_layer *l, size_t *offsets)
{
    const int hp = padded_h(l), wp = padded_w(l), s = l->p.conv.size, st = l->p.conv.stride;
    for (int ch = 0; ch < l->in.c; ch++)
        for (int ky = 0; ky < s; ky++)
            for (int kx = 0; kx < s; kx++) {
                const size_t phase = ((size_t)ch * st + ky % st) * st + kx % st;
                offsets[(ch * s + ky) * s + kx] = (phase * hp + ky / st) * wp + kx / st;
            }
}

struct plane_run {
    const struct eng_layer *l;
    const float *src;
    const size_t *offsets;
    float *planes; /* out.c planes of plane_pixels(l) */
    float *out;
    int n_tasks;
};

/* Tasks of a narrow plane: blocks of at least 8 output channels, one per online core (2..8). Each task
 * sweeps the whole plane, so fewer, larger blocks reuse each input stretch more. */
static int plane_tasks(const struct eng_layer *l)
{
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const int want = cores < 2 ? 2 : cores > 8 ? 8 : (int)cores, blocks = l->p.conv.filters / 8;
    return blocks < 1 ? 1 : blocks < want ? blocks : want;
}

/* The output channels of one task: each chunk of taps in order (so a pixel's sum runs in the same
 * order whatever the split), then the valid columns of each row copied out of the padded width. */
static void plane_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct plane_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const int k = l->in.c * c->size * c->size;
    const size_t pixels = plane_pixels(l);
    int m0, m1;
    eng_team_split(c->filters, r->n_tasks, task, 8, &m0, &m1);
    const struct eng_kern *kern = eng_kern_best();
    for (int k0 = 0; k0 < k; k0 += PLANE_CHUNK_K) {
        const int kc = k - k0 < PLANE_CHUNK_K ? k - k0 : PLANE_CHUNK_K;
        struct eng_pw pw = {.w = c->weights + k0, .ldw = (size_t)k, .bias = c->bias, .in = r->src,
                            .out = r->planes, .m = c->filters, .k = kc, .plane = pixels,
                            .in_offsets = r->offsets + k0, .accumulate = k0 > 0};
        if (k0 + kc == k) { /* the sums are complete: the affine and the activation */
            pw.act = c->act;
            pw.post_w = c->post_scale;
            pw.post_b = c->post_bias;
        }
        kern->pointwise(&pw, m0, m1, 0, pixels);
    }
    const int wp = padded_w(l);
    for (int m = m0; m < m1; m++)
        for (int y = 0; y < l->out.h; y++)
            memcpy(r->out + ((size_t)m * l->out.h + y) * l->out.w, r->planes + m * pixels + (size_t)y * wp,
                   sizeof(float) * (size_t)l->out.w);
}

/* Rows narrower than the pointwise kernel's tile (the face recognizer's 35, 17 and 8): the output is
 * computed over the padded width, so that one plane is a single stretch of pixels and every tap a
 * contiguous read; the extra columns are thrown away. At k = 288..1152 the taps are cut into chunks
 * whose input stretches and weights stay in L1 (the whole k did not: see the top of the file). */
static void plane_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    size_t *offsets = (size_t *)(void *)f->work;
    float *padded = f->work + plane_offsets_floats(l);
    const size_t in_floats = staged_floats(l);
    tap_offsets(l, offsets);
    stage_input(l, f->in, padded, f->team);
    memset(padded + in_floats, 0, sizeof(float) * (plane_input_floats(l) - in_floats));
    struct plane_run r = {.l = l, .src = padded, .offsets = offsets, .planes = padded + plane_input_floats(l),
                          .out = f->out, .n_tasks = plane_tasks(l)};
    eng_team_for(f->team, r.n_tasks, plane_task, &r);
}

void eng_conv_direct_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_conv *c = &l->p.conv;
    if (!row_ok(l)) {
        plane_forward(l, f);
        return;
    }
    size_t offsets[DIRECT_MAX_K];
    tap_offsets(l, offsets);
    struct direct_run r = {.l = l, .f = f, .src = f->in, .offsets = offsets,
                           .n_tasks = l->out.h < 16 ? l->out.h : 16};
    if (!unpadded(c)) {
        stage_input(l, f->in, f->work, f->team); /* the caller's scratch, read by every task */
        r.src = f->work;
    }
    eng_team_for(f->team, r.n_tasks, direct_task, &r);
}

/* ---- a 2x2 stride-2 max-pool in the output pass ---------------------------------------------------
 * The face detector's first layer wrote 16 planes of 414x414 (11 MB, past the caches) that its pool
 * then read back; here each pair of output rows is computed into the slot's scratch (L1/L2) and
 * pooled from there, so only the pooled grid reaches memory (docs/PERFORMANCE.md, Kernels). The
 * same pointwise call per row and the same pool kernel and border order as pool.c: the same bits
 * as the conv layer followed by the maxpool layer. */
struct pool2_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    const size_t *offsets;
    int conv_h, conv_w, n_tasks;
};

static void pool2_task(void *arg, int task, int slot)
{
    const struct pool2_run *r = arg;
    const struct eng_layer *l = r->l;
    const struct eng_conv *c = &l->p.conv;
    const int ow = r->conv_w, m = c->filters;
    float *rows = r->f->work + (size_t)slot * r->f->work_stride; /* 2 rows of m x ow */
    int y0, y1;
    eng_team_split(l->out.h, r->n_tasks, task, 1, &y0, &y1);
    const struct eng_kern *kern = eng_kern_best();
    for (int py = y0; py < y1; py++) {
        const int n_rows = 2 * py + 1 < r->conv_h ? 2 : 1;
        for (int i = 0; i < n_rows; i++) {
            const struct eng_pw pw = {.w = c->weights, .bias = c->bias,
                                      .in = r->f->in + (size_t)(2 * py + i) * l->in.w,
                                      .out = rows + (size_t)i * m * ow, .m = m,
                                      .k = l->in.c * c->size * c->size, .plane = (size_t)ow,
                                      .in_offsets = r->offsets, .act = c->act,
                                      .post_w = c->post_scale, .post_b = c->post_bias};
            kern->pointwise(&pw, 0, m, 0, (size_t)ow);
        }
        for (int o = 0; o < m; o++)
            eng_maxpool2_rows(rows + (size_t)o * ow, n_rows == 2 ? rows + ((size_t)m + o) * ow : NULL, ow,
                              r->f->out + ((size_t)o * l->out.h + py) * l->out.w);
    }
}

static void pool2_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_conv *c = &l->p.conv;
    size_t offsets[DIRECT_MAX_K];
    for (int ch = 0; ch < l->in.c; ch++) /* unpadded, stride 1: taps read the input itself */
        for (int ky = 0; ky < c->size; ky++)
            for (int kx = 0; kx < c->size; kx++)
                offsets[(ch * c->size + ky) * c->size + kx] = ((size_t)ch * l->in.h + ky) * l->in.w + kx;
    struct pool2_run r = {.l = l, .f = f, .offsets = offsets, .conv_h = l->in.h - c->size + 1,
                          .conv_w = l->in.w - c->size + 1};
    const int width = eng_team_width(f->team);
    r.n_tasks = width > 1 ? (4 * width < l->out.h ? 4 * width : l->out.h) : 1;
    eng_team_for(f->team, r.n_tasks, pool2_task, &r);
}

int eng_conv_direct_pool2_setup(struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    if (l->forward != eng_conv_direct_forward || !row_ok(l) || !unpadded(c))
        return 0;
    const int oh = l->out.h, ow = l->out.w;
    l->out.h = (oh + 1) / 2; /* TF 'same': ceil(n / 2), the odd row and column padded after */
    l->out.w = (ow + 1) / 2;
    l->forward = pool2_forward;
    l->work_floats = 2 * (size_t)c->filters * ow;
    l->flops += 4.0 * (double)eng_shape_size(l->out);
    return 1;
}
