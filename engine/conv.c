/* conv.c - [convolutional]: im2col + cblas_sgemm per group, bias as the GEMM's start, then activation.
 *
 * Batch norm is folded into weights and bias by the loader, so inference is one GEMM per group.
 * A 1x1, stride-1, unpadded convolution is already a GEMM on the input (C x HW), so it skips im2col.
 * The output columns are processed in tiles sized to stay in L2: im2col fills one tile, the GEMM
 * consumes it (starting from the bias, beta = 1), and the activation runs on the result before it
 * leaves the cache. Depthwise layers go to the direct kernels (conv_dw_plane.c, conv_dw.c), pointwise
 * layers with few input channels to conv_pw.c. */
#include <cblas.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "kern.h"
#include "layer.h"
#include "team.h"

static int out_dim(int n, int size, int stride, int pad_before, int pad_after)
{
    return (n + pad_before + pad_after - size) / stride + 1;
}

static int is_pointwise(const struct eng_conv *c)
{
    return c->size == 1 && c->stride == 1 && c->pad_top == 0 && c->pad_left == 0 &&
           c->pad_bottom == 0 && c->pad_right == 0;
}

void eng_tf_same_pad(int n, int size, int stride, int *out, int *before, int *after)
{
    const int o = (n + stride - 1) / stride;
    int total = (o - 1) * stride + size - n;
    total = total > 0 ? total : 0;
    *out = o;
    *before = total / 2;
    *after = total - total / 2;
}

/* dst[t] = src[2 t] for t in [0, n): the stride-2 layers' unfolding (yolov4-tiny's second layer, 32 ->
 * 64 channels at 104x104, unfolds 3.1 M floats this way per pass: ~5 % of the model's time one by one),
 * four at a time by SSE2 (every x86-64 has it). A copy: the same bits either way. */
static void im2col_run2(float *dst, const float *src, int n)
{
    int t = 0;
#ifdef __SSE2__
    for (; t + 4 < n; t += 4) /* reads src[2 t .. 2 t + 7], within [0, 2 n - 1) while t + 4 < n */
        _mm_storeu_ps(dst + t, _mm_shuffle_ps(_mm_loadu_ps(src + 2 * t), _mm_loadu_ps(src + 2 * t + 4),
                                              _MM_SHUFFLE(2, 0, 2, 0)));
#endif
    for (; t < n; t++)
        dst[t] = src[2 * t];
}

/* dst[t] = src[x0 + t * s] for t in [0, n), 0 where that falls outside [0, w). The zero ends are
 * cut off first, so the middle is a copy without checks: the per-element check it replaces made
 * im2col a third of yolov3-tiny's time. Runs are often short (the face ResNet's planes are 9..75
 * wide), so stride 1 needs no division and short stretches are plain loops, not library calls. */
static void im2col_run(float *dst, const float *src, int w, int x0, int s, int n)
{
    int t0, t1; /* first t with x0 + t * s >= 0, first t with x0 + t * s >= w */
    if (s == 1) {
        t0 = x0 >= 0 ? 0 : -x0;
        t1 = w - x0;
    } else {
        t0 = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
        t1 = x0 >= w ? 0 : (w - 1 - x0) / s + 1;
    }
    t0 = t0 < n ? t0 : n;
    t1 = t1 < n ? t1 : n;
    t1 = t1 > t0 ? t1 : t0;
    for (int t = 0; t < t0; t++)
        dst[t] = 0.0f;
    if (s == 1 && t1 - t0 >= 16)
        memcpy(dst + t0, src + x0 + t0, sizeof(float) * (size_t)(t1 - t0));
    else if (s == 1)
        for (int t = t0; t < t1; t++)
            dst[t] = src[x0 + t];
    else if (s == 2)
        im2col_run2(dst + t0, src + x0 + 2 * t0, t1 - t0);
    else
        for (int t = t0; t < t1; t++)
            dst[t] = src[x0 + t * s];
    for (int t = t1; t < n; t++)
        dst[t] = 0.0f;
}

/* Unfolds columns [n0, n0 + cols) of one group's (channels*size*size) x (out_h*out_w) im2col matrix
 * into col (rows ld >= cols apart, zero beyond cols): a tile small enough to stay in cache for the
 * GEMM that reads it. */
static void im2col_tile(const float *in, int channels, int h, int w, const struct eng_conv *c,
                        int out_w, int n0, int cols, int ld, float *col)
{
    const int k = c->size, s = c->stride;
    for (int ch = 0; ch < channels; ch++) {
        const float *plane = in + (size_t)ch * h * w;
        for (int ky = 0; ky < k; ky++) {
            for (int kx = 0; kx < k; kx++) {
                float *row = col + (((size_t)ch * k + ky) * k + kx) * ld;
                memset(row + cols, 0, sizeof(float) * (size_t)(ld - cols));
                int oy = n0 / out_w, ox = n0 % out_w;
                for (int j = 0; j < cols;) {
                    /* one output row's stretch at a time: iy is fixed along it */
                    const int run = out_w - ox < cols - j ? out_w - ox : cols - j;
                    const int iy = oy * s - c->pad_top + ky;
                    if (iy < 0 || iy >= h) {
                        memset(row + j, 0, sizeof(float) * run);
                    } else {
                        im2col_run(row + j, plane + (size_t)iy * w, w, ox * s - c->pad_left + kx, s,
                                   run);
                    }
                    j += run;
                    ox = 0;
                    oy++;
                }
            }
        }
    }
}

/* What the packed GEMM's implicit B needs to unfold group g's input for the columns from n0 on. */
struct im2col_pack_ctx {
    const float *in;
    const struct eng_conv *c;
    int h, w, out_w, n0;
};

/* The im2col matrix's rows [kk0, kk0 + kc) x columns [n0 + j0, n0 + j0 + nc) straight into the GEMM's
 * packed panels (kern.h, struct eng_gemm's pack): the tile the GEMM would otherwise copy from is
 * never written (its extra pass cost 4-10% of the large layers' time, bench/kernbench.c). */
static void im2col_pack(const void *arg, int kk0, int kc, int j0, int nc, int nr, float *dst)
{
    const struct im2col_pack_ctx *x = arg;
    const struct eng_conv *c = x->c;
    const int k = c->size, s = c->stride;
    for (int r = 0; r < kc; r++) {
        const int kk = kk0 + r, ch = kk / (k * k), ky = kk / k % k, kx = kk % k;
        const float *plane = x->in + (size_t)ch * x->h * x->w;
        for (int p = 0; p * nr < nc; p++) {
            const int cols = nc - p * nr < nr ? nc - p * nr : nr, first = x->n0 + j0 + p * nr;
            float *seg = dst + ((size_t)p * kc + r) * nr;
            int oy = first / x->out_w, ox = first % x->out_w;
            for (int j = 0; j < cols;) { /* one output row's stretch at a time, as im2col_tile */
                const int run = x->out_w - ox < cols - j ? x->out_w - ox : cols - j;
                const int iy = oy * s - c->pad_top + ky;
                if (iy < 0 || iy >= x->h)
                    memset(seg + j, 0, sizeof(float) * (size_t)run);
                else
                    im2col_run(seg + j, plane + (size_t)iy * x->w, x->w, ox * s - c->pad_left + kx, s, run);
                j += run;
                ox = 0;
                oy++;
            }
            memset(seg + cols, 0, sizeof(float) * (size_t)(nr - cols));
        }
    }
}

/* Columns per GEMM call: the B tile (k x cols) and the C tile (m x cols) should fit in L2 together,
 * so bias and activation run on the output while it is still in cache; never too narrow for the
 * GEMM kernels to run at speed. */
static int column_tile(int m, int k, int n)
{
    int t = (256 * 1024) / (m + k);
    t = t < 512 ? 512 : t;
    t = (t + 15) / 16 * 16;
    return t < n ? t : n;
}

/* The post affine (if any) and the activation on an m x cols tile of rows `ld` apart, while it is in
 * cache (the bias is already in: see conv_gemm). */
static void finish_rows(float *out, int m, int cols, int ld, const float *post_scale, const float *post_bias,
                        enum eng_act act)
{
    for (int o = 0; o < m; o++) {
        float *row = out + (size_t)o * ld;
        if (post_scale) {
            const float s = post_scale[o], b = post_bias[o];
            for (int i = 0; i < cols; i++)
                row[i] = row[i] * s + b;
        }
        if (act != ENG_ACT_LINEAR)
            eng_activate(row, (size_t)cols, act);
    }
}

/* Whether the GEMM of a tile of `cols` columns goes to the small-n kernel (kern.h). */
static int small_n(const struct eng_conv *c, int cols)
{
    return cols <= ENG_KERN_SMALL_N && !is_pointwise(c);
}

/* Whether the GEMM goes to the pointwise kernel (kern.h): with k this small (a first layer's 3x3 on
 * 3 channels has 27) sgemm spends more time packing than multiplying (docs/PERFORMANCE.md, "Per-layer
 * profile"). The threshold is conv_pw.c's, where the same kernel beat sgemm up to k = 64. */
static int small_k(int k)
{
    return k <= ENG_CONV_DIRECT_MAX_K;
}

/* Whether the GEMM of a tile of `cols` columns is our packed GEMM unfolding the input itself. */
static int implicit_gemm(const struct eng_conv *c, int cols, int k)
{
    return eng_kern_best()->gemm && !is_pointwise(c) && !small_n(c, cols) && !small_k(k);
}

/* The GEMM's B for group g's output columns [n0, n0 + cols): the input itself for a pointwise layer,
 * NULL where the packed GEMM unfolds the input itself (implicit_gemm, unless the tile is `shared` by
 * several blocks of output channels: each would unfold it again, and on 13-wide rows that unfolding
 * costs more than packing from one shared tile), otherwise its im2col tile unfolded into `work` (k x
 * cols floats, or k x ENG_KERN_SMALL_N for the small-n kernel). Sets *ldb. */
static const float *conv_columns(const struct eng_layer *l, const struct eng_fwd *f, int g, int n0,
                                 int cols, float *work, int *ldb, int shared)
{
    const struct eng_conv *c = &l->p.conv;
    const int in_c = l->in.c / c->groups;
    const float *in = f->in + (size_t)g * in_c * l->in.h * l->in.w;
    if (is_pointwise(c)) {
        *ldb = l->out.h * l->out.w;
        return in + n0;
    }
    if (!shared && implicit_gemm(c, cols, in_c * c->size * c->size)) {
        *ldb = 0;
        return NULL;
    }
    *ldb = small_n(c, cols) ? ENG_KERN_SMALL_N : cols;
    im2col_tile(in, in_c, l->in.h, l->in.w, c, l->out.w, n0, cols, *ldb, work);
    return work;
}

/* Output channels [m0, m1) of group g over the output columns [n0, n0 + cols): one GEMM on b (from
 * conv_columns), then the activation while the tile is in cache. */
static void conv_gemm(const struct eng_layer *l, const struct eng_fwd *f, int g, int n0, int cols,
                      int m0, int m1, const float *b, int ldb, float *scratch)
{
    const struct eng_conv *c = &l->p.conv;
    const int out_c = c->filters / c->groups;
    const int n = l->out.h * l->out.w;
    const int k = (l->in.c / c->groups) * c->size * c->size;
    const float *a = c->weights + ((size_t)g * out_c + m0) * k;
    float *out = f->out + ((size_t)g * out_c + m0) * n;
    const float *bias = c->bias ? c->bias + (size_t)g * out_c + m0 : NULL;
    const float *post_scale = c->post_scale ? c->post_scale + (size_t)g * out_c + m0 : NULL;
    const float *post_bias = c->post_scale ? c->post_bias + (size_t)g * out_c + m0 : NULL;
    /* The bias is the GEMM's starting C (beta = 1): no pass adds it afterwards, and OpenBLAS skips
     * the pass that zeroes C for beta = 0 (sgemm_beta, 3% of yolov3-tiny). */
    const struct eng_kern *kern = eng_kern_best();
    if (small_k(k) && !small_n(c, cols)) {
        /* bias and activation are applied as each output is written */
        const struct eng_pw pw = {.w = a, .bias = bias, .in = b, .out = out + n0, .m = m1 - m0, .k = k,
                                  .plane = (size_t)n, .in_plane = (size_t)ldb, .act = c->act,
                                  .post_w = post_scale, .post_b = post_bias};
        kern->pointwise(&pw, 0, m1 - m0, 0, (size_t)cols);
        return;
    }
    if (kern->gemm && !small_n(c, cols)) {
        /* our packed GEMM (gemm_isa.inc): bias, affine and activation in its store */
        const int in_c = l->in.c / c->groups;
        const struct im2col_pack_ctx x = {.in = f->in + (size_t)g * in_c * l->in.h * l->in.w, .c = c,
                                          .h = l->in.h, .w = l->in.w, .out_w = l->out.w, .n0 = n0};
        const float *ap = c->packed ? c->packed + (size_t)g * eng_gemm_packed_floats(out_c, k) : NULL;
        const struct eng_gemm gm = {.a = a, .ap = ap, .a_row = m0, .ap_m = out_c, .b = b, .c = out + n0, .lda = (size_t)k,
                                    .ldb = (size_t)ldb,
                                    .ldc = (size_t)n, .m = m1 - m0, .n = cols, .k = k, .bias = bias,
                                    .post_w = post_scale, .post_b = post_bias, .act = c->act,
                                    .pack = b ? NULL : im2col_pack, .pack_ctx = &x};
        kern->gemm(&gm, scratch);
        return;
    }
    kern->fill_rows(out + n0, m1 - m0, cols, (size_t)n, bias);
    if (small_n(c, cols))
        kern->gemm_small_n(a, (size_t)k, b, out + n0, (size_t)n, m1 - m0, cols, k);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, cols, k, 1.0f, a, k, b, ldb,
                    1.0f, out + n0, n);
    finish_rows(out + n0, m1 - m0, cols, n, post_scale, post_bias, c->act);
}

/* The packed GEMM's scratch in a task's work area: its last ENG_GEMM_SCRATCH_FLOATS floats, after the
 * im2col tile (slot 0's tile is shared by conv_rows tasks, whose GEMMs use their own slot's scratch). */
static float *gemm_scratch(const struct eng_layer *l, float *work)
{
    return work + l->work_floats - ENG_GEMM_SCRATCH_FLOATS;
}

/* How a convolution is cut into tasks: groups x column tiles x blocks of output channels. */
struct conv_split {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    int tile, col_tiles, row_blocks;
};

/* How many tasks a layer is cut into: the machine's online cores (2..8), read once. The cut depends on
 * the layer and the machine alone, never on how many threads run it: every task makes the same sgemm
 * calls on any team, so results are bit-identical whatever the thread count (OpenBLAS rounds
 * differently for different matrix shapes). More tasks than cores cost the single thread dearly: a
 * large GEMM cut into 8 runs far below the same GEMM cut into 2 (docs/PERFORMANCE.md, "Threading"). */
static int conv_tasks(void)
{
    static atomic_int tasks;
    int t = atomic_load_explicit(&tasks, memory_order_relaxed);
    if (t == 0) {
        const long cores = sysconf(_SC_NPROCESSORS_ONLN);
        t = cores < 2 ? 2 : cores > 8 ? 8 : (int)cores;
        atomic_store_explicit(&tasks, t, memory_order_relaxed);
    }
    return t;
}

#define CONV_MIN_TILE 128 /* narrower column tiles run sgemm too slowly */

static int round_up(int x, int to)
{
    return (x + to - 1) / to * to;
}

/* Column tiles of equal width, as many as a multiple of the task count (so no thread waits on a wider
 * last tile or an odd one out), but never narrower than CONV_MIN_TILE: a small image is cut into
 * blocks of output channels instead (at least 16 each), which share one im2col of their tile
 * (conv_forward). */
static struct conv_split conv_split_plan(const struct eng_layer *l, const struct eng_fwd *f)
{
    const struct eng_conv *c = &l->p.conv;
    const int out_c = c->filters / c->groups;
    const int n = l->out.h * l->out.w;
    const int k = (l->in.c / c->groups) * c->size * c->size;
    const int want = conv_tasks();
    const int widest = column_tile(out_c, k, n);
    int tiles = (n + widest - 1) / widest;
    tiles = (round_up(c->groups * tiles, want) + c->groups - 1) / c->groups;
    int tile = round_up((n + tiles - 1) / tiles, 16);
    if (tile < CONV_MIN_TILE)
        tile = widest;
    struct conv_split s = {.l = l, .f = f, .tile = tile < n ? tile : n, .row_blocks = 1};
    s.col_tiles = (n + s.tile - 1) / s.tile;
    const int tasks = c->groups * s.col_tiles;
    if (tasks < want) {
        const int blocks = (want + tasks - 1) / tasks;
        const int max_blocks = out_c / 16 > 1 ? out_c / 16 : 1;
        s.row_blocks = blocks < max_blocks ? blocks : max_blocks;
    }
    return s;
}

/* One task of a layer cut by column tiles only: unfolds its tile, then the GEMM of all its rows. */
static void conv_task(void *arg, int task, int slot)
{
    const struct conv_split *s = arg;
    const struct eng_layer *l = s->l;
    const int n = l->out.h * l->out.w;
    const int ct = task % s->col_tiles, g = task / s->col_tiles;
    const int n0 = ct * s->tile, cols = n - n0 < s->tile ? n - n0 : s->tile;
    int ldb;
    float *work = s->f->work + (size_t)slot * s->f->work_stride;
    const float *b = conv_columns(l, s->f, g, n0, cols, work, &ldb, 0);
    conv_gemm(l, s->f, g, n0, cols, 0, l->p.conv.filters / l->p.conv.groups, b, ldb, gemm_scratch(l, work));
}

/* Blocks of output channels of one column tile, all reading the tile's unfolded columns. */
struct conv_rows {
    const struct conv_split *s;
    int g, n0, cols, ldb;
    const float *b;
};

static void conv_rows_task(void *arg, int task, int slot)
{
    const struct conv_rows *r = arg;
    const struct eng_layer *l = r->s->l;
    int m0, m1;
    /* our GEMM: blocks of whole register tiles (the packed weights' panels), else as sgemm had them */
    eng_team_split(l->p.conv.filters / l->p.conv.groups, r->s->row_blocks, task,
                   eng_kern_best()->gemm ? ENG_GEMM_MR : 16, &m0, &m1);
    if (m1 > m0)
        conv_gemm(l, r->s->f, r->g, r->n0, r->cols, m0, m1, r->b, r->ldb,
                  gemm_scratch(l, r->s->f->work + (size_t)slot * r->s->f->work_stride));
}

/* A column tile's im2col unfolded for the blocks of output channels that share it, split by input
 * channels across the team (a copy: any split gives the same bits). On one thread this unfolding was
 * the serial part of the 13x13 layers (yolov3-tiny's 1024 x 4608: 3 MB of columns). */
struct unfold_run {
    const struct eng_layer *l;
    const float *in;
    int n0, cols, ldb, n_tasks;
    float *dst;
};

static void unfold_task(void *arg, int task, int slot)
{
    (void)slot;
    const struct unfold_run *u = arg;
    const struct eng_layer *l = u->l;
    const struct eng_conv *c = &l->p.conv;
    const size_t plane = (size_t)l->in.h * l->in.w, taps = (size_t)c->size * c->size;
    int ch0, ch1;
    eng_team_split(l->in.c / c->groups, u->n_tasks, task, 1, &ch0, &ch1);
    if (ch1 > ch0)
        im2col_tile(u->in + ch0 * plane, ch1 - ch0, l->in.h, l->in.w, c, l->out.w, u->n0, u->cols, u->ldb,
                    u->dst + ch0 * taps * u->ldb);
}

/* conv_columns for a tile shared by blocks of output channels (shared = 1), the unfolding split. */
static const float *conv_columns_shared(const struct eng_layer *l, const struct eng_fwd *f, int g, int n0,
                                        int cols, float *work, int *ldb)
{
    const struct eng_conv *c = &l->p.conv;
    const int in_c = l->in.c / c->groups;
    if (is_pointwise(c))
        return conv_columns(l, f, g, n0, cols, work, ldb, 1);
    *ldb = small_n(c, cols) ? ENG_KERN_SMALL_N : cols;
    struct unfold_run u = {.l = l, .in = f->in + (size_t)g * in_c * l->in.h * l->in.w, .n0 = n0,
                                 .cols = cols, .ldb = *ldb, .n_tasks = in_c < 16 ? in_c : 16, .dst = work};
    eng_team_for(f->team, u.n_tasks, unfold_task, &u);
    return work;
}

static void conv_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    struct conv_split s = conv_split_plan(l, f);
    if (s.row_blocks == 1) {
        eng_team_for(f->team, l->p.conv.groups * s.col_tiles, conv_task, &s);
        return;
    }
    /* Small images: each column tile is unfolded once (the caller's scratch), then its blocks of
     * output channels run side by side; a block per task would redo the im2col row_blocks times. */
    const int n = l->out.h * l->out.w;
    for (int g = 0; g < l->p.conv.groups; g++) {
        for (int ct = 0; ct < s.col_tiles; ct++) {
            struct conv_rows r = {.s = &s, .g = g, .n0 = ct * s.tile};
            r.cols = n - r.n0 < s.tile ? n - r.n0 : s.tile;
            r.b = conv_columns_shared(l, f, g, r.n0, r.cols, f->work, &r.ldb);
            eng_team_for(f->team, s.row_blocks, conv_rows_task, &r);
        }
    }
}

int eng_conv_setup(struct eng_layer *l, char *why, size_t why_size)
{
    struct eng_conv *c = &l->p.conv;
    if (c->filters <= 0 || c->size <= 0 || c->stride <= 0 || c->pad < 0 || c->groups <= 0) {
        snprintf(why, why_size, "filters, size, stride and groups must be positive, pad >= 0");
        return -1;
    }
    if (!c->post_scale != !c->post_bias) {
        snprintf(why, why_size, "a post affine needs both its scale and its bias");
        return -1;
    }
    if (c->same && c->pad) {
        snprintf(why, why_size, "'same' padding and pad=%d are exclusive", c->pad);
        return -1;
    }
    if (l->in.c % c->groups || c->filters % c->groups) {
        snprintf(why, why_size, "groups=%d must divide input channels (%d) and filters (%d)",
                 c->groups, l->in.c, c->filters);
        return -1;
    }
    if (c->same) { /* the output sizes below then come out as TF's ceil(n / stride) */
        int o;
        eng_tf_same_pad(l->in.h, c->size, c->stride, &o, &c->pad_top, &c->pad_bottom);
        eng_tf_same_pad(l->in.w, c->size, c->stride, &o, &c->pad_left, &c->pad_right);
    } else {
        c->pad_top = c->pad_left = c->pad_bottom = c->pad_right = c->pad;
    }
    const int ph = c->pad_top + c->pad_bottom, pw = c->pad_left + c->pad_right;
    const int oh = out_dim(l->in.h, c->size, c->stride, c->pad_top, c->pad_bottom);
    const int ow = out_dim(l->in.w, c->size, c->stride, c->pad_left, c->pad_right);
    /* C division truncates toward zero, so out_dim alone would give 1 for a kernel that overhangs
     * the padded input by less than a stride: test the fit itself. */
    if (oh <= 0 || ow <= 0 || l->in.h + ph < c->size || l->in.w + pw < c->size) {
        snprintf(why, why_size, "a %dx%d kernel does not fit the %dx%d input", c->size, c->size,
                 l->in.w, l->in.h);
        return -1;
    }
    l->out = (struct eng_shape){c->filters, oh, ow};
    const int depthwise = c->groups == l->in.c && c->groups == c->filters;
    if (depthwise && c->post_scale) {
        snprintf(why, why_size, "a depthwise layer takes no post affine");
        return -1;
    }
    l->forward = depthwise ? eng_conv_depthwise_forward : conv_forward;
    if (!depthwise && is_pointwise(c) && eng_conv_pointwise_direct(l))
        l->forward = eng_conv_pointwise_forward;
    else if (!depthwise && eng_conv_direct_ok(l))
        l->forward = eng_conv_direct_forward;
    const size_t k = (size_t)(l->in.c / c->groups) * c->size * c->size;
    const int tile = column_tile(c->filters / c->groups, (int)k, oh * ow);
    const int tile_floats = tile < ENG_KERN_SMALL_N ? ENG_KERN_SMALL_N : tile; /* see conv_columns */
    l->work_floats = depthwise                                 ? (size_t)l->in.w
                     : l->forward == eng_conv_direct_forward ? eng_conv_direct_work_floats(l)
                     : l->forward == eng_conv_pointwise_forward ? 0
                     : (is_pointwise(c) ? 0 : k * (size_t)tile_floats) + ENG_GEMM_SCRATCH_FLOATS;
    if (depthwise)
        eng_conv_depthwise_plane_setup(l);
    l->flops = 2.0 * (double)k * c->filters * oh * ow;
    return 0;
}

size_t eng_conv_packed_floats(const struct eng_layer *l)
{
    if (l->kind != ENG_LAYER_CONV || l->forward != conv_forward || !eng_kern_best()->gemm)
        return 0;
    const struct eng_conv *c = &l->p.conv;
    const int k = (l->in.c / c->groups) * c->size * c->size;
    if (small_k(k) || small_n(c, l->out.h * l->out.w)) /* every tile goes to another kernel */
        return 0;
    return (size_t)c->groups * eng_gemm_packed_floats(c->filters / c->groups, k);
}

void eng_conv_pack(struct eng_layer *l, float *dst)
{
    struct eng_conv *c = &l->p.conv;
    const int out_c = c->filters / c->groups, k = (l->in.c / c->groups) * c->size * c->size;
    for (int g = 0; g < c->groups; g++)
        eng_gemm_pack_a(c->weights + (size_t)g * out_c * k, (size_t)k, out_c, k,
                        dst + (size_t)g * eng_gemm_packed_floats(out_c, k));
    c->packed = dst;
}
