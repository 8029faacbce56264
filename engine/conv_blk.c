/* conv_blk.c - convolutions on narrow planes with vectors along output channels (3x3 at stride 1 or
 * 2, the 7x7 stride-2 stem).
 *
 * The face recognizer's residual stages are 3x3 'same' convolutions on 35x35, 17x17 and 8x8 planes
 * with 32, 64 and 128 channels. conv_direct.c's plane mode runs vectors along pixels over the padded
 * width (37, 19, 10 columns for 35, 17, 8: 6-20 % of its lanes multiply padding, plus rounding to whole
 * vectors) and reloads its output planes between chunks of taps; ONNX Runtime's channel-blocked
 * kernel wastes no lane and ran these layers about 20 % faster (docs/PERFORMANCE.md, Kernels, the
 * issue18r and issue19r rows). Here (kernel table entry conv3_blk, c3b_isa.inc) each register tile is
 * a few pixels of one output row x 16 or 32 output channels: every lane is a real output, the sums stay
 * in registers for the whole k, and the weights are packed once at load so that a tap's channel
 * vectors are one contiguous load. The tile is transposed in registers for the store, so the net's
 * layout (CHW) is unchanged and no other layer needs to know. The same kernel at stride 2 and 7x7 runs
 * the recognizer's stride-2 layers and its stem (with its max pool folded in, below); on 3x3 and 4x4
 * outputs (its 256-channel layers) a tile is the whole plane, so their 1.2-2.4 MB of weights stream once.
 *
 * The rule (eng_conv_blk_ok) is fixed in the code, from per-layer timings against conv.c's way on each
 * kernel set (docs/PERFORMANCE.md); never a timing at run time, so every process computes the same
 * bits. Tasks cut output rows and channel blocks; each element is computed the same way whatever the
 * cut, so results do not depend on the thread count. */
#include <stdlib.h>
#include <string.h>

#include "conv_blk.h"
#include "team.h"

/* The staged input: per channel hp rows of wp floats, the input at (pad_top, pad_left), zeros around,
 * as many rows and columns as the outputs' windows reach. */
static int pad_h(const struct eng_layer *l)
{
    return (l->out.h - 1) * l->p.conv.stride + l->p.conv.size;
}

static int pad_w(const struct eng_layer *l)
{
    return (l->out.w - 1) * l->p.conv.stride + l->p.conv.size;
}

static size_t padded_floats(const struct eng_layer *l)
{
    return (size_t)l->in.c * pad_h(l) * pad_w(l);
}

/* Whether the windows read only the input itself ('valid': no padding before, none needed after), which is
 * then read in place: the copy cost the recognizer's stem about 15 us (3 x 150 x 150 floats). */
static int in_place(const struct eng_layer *l)
{
    return l->p.conv.pad_top == 0 && l->p.conv.pad_left == 0 && pad_h(l) <= l->in.h && pad_w(l) <= l->in.w;
}

/* Whether the kernel computes each output plane as one tile (3x3 and 4x4 outputs; kern.h): tasks then
 * cut the channel blocks only, and every weight is read once a layer. */
static int plane_tiles(const struct eng_layer *l)
{
    return l->p.conv.size == 3 && eng_c3b_plane_tile(l->out.h, l->out.w);
}

/* The shapes the kernel takes: 3x3 at stride 1 or 2, 7x7 at stride 2, one group, whole blocks of 16
 * filters. */
int eng_conv_blk_shape_ok(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    return l->kind == ENG_LAYER_CONV && ((c->size == 3 && (c->stride == 1 || c->stride == 2)) ||
                                         (c->size == 7 && c->stride == 2)) &&
           c->groups == 1 && c->pad_top >= 0 && c->pad_left >= 0 && c->filters % 16 == 0 && c->weights;
}

/* AVX-512 only, on outputs up to 72 wide (the face recognizer's stem) and at least 8 (stride 1) or 3
 * (stride 2) wide: where it was measured faster than conv.c's choices (conv_direct.c, the small-n
 * kernel; docs/PERFORMANCE.md). On the 256-channel 4x4 and 3x3 stride-1 layers it won in a harness with
 * warm weights but lost in the net (0.127 -> 0.148 ms), where their 2.4 MB of weights stream from
 * memory and a 4-pixel tile hides too little of it; the stride-2 layer onto 3x3 (1.2 MB) gained. The
 * AVX2 and plain sets run the stride-1 layers through Winograd (conv_wino.c) and have no figures here. */
int eng_conv_blk_ok(const struct eng_layer *l)
{
    return eng_conv_blk_shape_ok(l) && eng_kern_best()->isa == ENG_ISA_AVX512 && l->out.w <= 72 &&
           (l->out.w >= (l->p.conv.stride == 1 ? 8 : 3) || (l->p.conv.size == 3 && plane_tiles(l)));
}

size_t eng_conv_blk_packed_floats(const struct eng_layer *l)
{
    return (size_t)l->p.conv.filters * l->in.c * l->p.conv.size * l->p.conv.size;
}

void eng_conv_blk_pack(const struct eng_layer *l, float *dst)
{
    const struct eng_conv *c = &l->p.conv;
    const int in_c = l->in.c;
    const int taps = c->size * c->size;
    for (int o = 0; o < c->filters; o++)
        for (int ch = 0; ch < in_c; ch++)
            for (int t = 0; t < taps; t++)
                dst[(((size_t)(o / 16) * in_c + ch) * taps + t) * 16 + o % 16] =
                    c->weights[((size_t)o * in_c + ch) * taps + t];
}

size_t eng_conv_blk_work_floats(const struct eng_layer *l)
{
    return in_place(l) ? 0 : padded_floats(l);
}

int eng_conv_blk_use(struct eng_layer *l)
{
    struct eng_conv *c = &l->p.conv;
    if (!c->blk && !(c->blk = malloc(sizeof(float) * eng_conv_blk_packed_floats(l))))
        return -1;
    eng_conv_blk_pack(l, c->blk);
    l->forward = eng_conv_blk_forward;
    l->work_floats = eng_conv_blk_work_floats(l);
    return 0;
}

int eng_conv_blk_prepare(struct eng_layer *l)
{
    return l->kind == ENG_LAYER_CONV && eng_conv_blk_ok(l) ? eng_conv_blk_use(l) : 0;
}

struct blk_run {
    const struct eng_layer *l;
    struct eng_c3b a;
    const struct eng_kern *k;
    const struct eng_fwd *f;
    int n_tasks, units, staged, planes;
};

/* Padded rows [y0, y1) of every channel into the slot's copy (zeros where the padding is), at the rows'
 * places in the whole padded layout, so the kernel's addressing does not depend on the task. (Plain
 * loops instead of memcpy / memset ran slower: this file is built for the baseline set.) */
static void pad_rows(const struct eng_layer *l, const float *in, float *pad, int y0, int y1)
{
    const struct eng_conv *c = &l->p.conv;
    const int h = l->in.h, w = l->in.w, hp = pad_h(l), wp = pad_w(l), pl = c->pad_left;
    const int cols = w < wp - pl ? w : wp - pl; /* 'valid' windows may leave columns */
    for (int ch = 0; ch < l->in.c; ch++)
        for (int y = y0; y < y1; y++) {
            float *row = pad + ((size_t)ch * hp + y) * wp;
            const int iy = y - c->pad_top;
            if (iy < 0 || iy >= h || cols <= 0) {
                memset(row, 0, sizeof(float) * (size_t)wp);
                continue;
            }
            memset(row, 0, sizeof(float) * (size_t)pl);
            memcpy(row + pl, in + ((size_t)ch * h + iy) * w, sizeof(float) * (size_t)cols);
            memset(row + pl + cols, 0, sizeof(float) * (size_t)(wp - pl - cols));
        }
}

/* Units are (row, block pair) in that order, cut into contiguous runs: a task reads only its rows' band
 * of the input, which it stages itself (one team pass a layer, not a staging pass and a barrier
 * before the convolution; the recognizer's layers are 0.05-0.1 ms, where each pass counts at 2
 * threads). One task alone runs block pair by block pair instead, all rows each, so a pair's weights
 * (36-147 KB) stay in L1/L2 for all its rows: 1-2 % faster at one thread than row by row. */
static void conv_task(void *arg, int task, int slot)
{
    const struct blk_run *r = arg;
    const struct eng_layer *l = r->l;
    const int pairs = (l->p.conv.filters / 16 + 1) / 2, nb = l->p.conv.filters / 16, oh = l->out.h;
    int u0, u1;
    eng_team_split(r->units, r->n_tasks, task, 1, &u0, &u1);
    if (u0 >= u1)
        return;
    struct eng_c3b a = r->a;
    if (r->staged) {
        const int st = l->p.conv.stride, ks = l->p.conv.size;
        a.in = r->f->work + (size_t)slot * r->f->work_stride;
        if (r->n_tasks > 1 && !r->planes)
            pad_rows(l, r->f->in, (float *)a.in, u0 / pairs * st, (u1 - 1) / pairs * st + ks);
        else
            pad_rows(l, r->f->in, (float *)a.in, 0, pad_h(l));
    }
    if (r->n_tasks == 1) {
        r->k->conv3_blk(&a, 0, nb, 0, oh);
        return;
    }
    if (r->planes) { /* units are block pairs */
        r->k->conv3_blk(&a, 2 * u0, 2 * u1 < nb ? 2 * u1 : nb, 0, oh);
        return;
    }
    for (int u = u0; u < u1;) {
        const int y = u / pairs, p0 = u % pairs, p1 = u1 - y * pairs < pairs ? u1 - y * pairs : pairs;
        r->k->conv3_blk(&a, 2 * p0, 2 * p1 < nb ? 2 * p1 : nb, y, y + 1);
        u += p1 - p0;
    }
}

void eng_conv_blk_run(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_kern *k)
{
    const struct eng_conv *c = &l->p.conv;
    const int width = eng_team_width(f->team);
    struct blk_run r = {.l = l, .k = k, .f = f, .staged = !in_place(l)};
    r.a = (struct eng_c3b){.in = f->in, .in_plane = (size_t)l->in.h * l->in.w, .wp = l->in.w, .c = l->in.c,
                           .size = c->size, .stride = c->stride, .w = c->blk, .bias = c->bias,
                           .post_w = c->post_scale, .post_b = c->post_bias, .act = c->act, .out = f->out,
                           .oh = l->out.h, .ow = l->out.w};
    if (r.staged) {
        r.a.in_plane = (size_t)pad_h(l) * pad_w(l);
        r.a.wp = pad_w(l);
    }
    r.planes = plane_tiles(l);
    r.units = (c->filters / 16 + 1) / 2 * (r.planes ? 1 : l->out.h);
    r.n_tasks = width < r.units ? width : r.units;
    eng_team_for(f->team, r.n_tasks, conv_task, &r);
}

void eng_conv_blk_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_conv_blk_run(l, f, eng_kern_best());
}

/* ---- the stem with its 3x3 stride-2 max pool ------------------------------------------------------
 * The recognizer's stem (7x7/2, 'valid': 32 x 72 x 72, 663 KB) is read only by a 'valid' 3x3/2 max pool
 * (32 x 35 x 35): the pool read it back from L2 or memory at 0.03 ms against ONNX Runtime's 0.011. Here
 * each task computes the stem's rows one at a time into a ring of three (channels x width each, in
 * L1/L2) and pools each output row as soon as its three rows are there, with pool.c's kernels in
 * pool.c's order (maxpool2_s1 on rows 2y, 2y + 1 and on 2y + 1, 2y + 2, then maxpool2 of the two): the
 * bits of the conv layer followed by the pool layer. A task's first row is computed by both tasks that
 * share it, the same way, so results do not depend on the thread count. */
static int pool3_conv_h(const struct eng_layer *l)
{
    return (l->in.h - l->p.conv.size) / l->p.conv.stride + 1;
}

static int pool3_conv_w(const struct eng_layer *l)
{
    return (l->in.w - l->p.conv.size) / l->p.conv.stride + 1;
}

int eng_conv_blk_pool3_setup(struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    if (l->forward != eng_conv_blk_forward || c->pad_top || c->pad_left || c->pad_bottom || c->pad_right ||
        l->out.h < 3 || l->out.w < 3)
        return 0;
    const int ch = pool3_conv_h(l), cw = pool3_conv_w(l);
    l->out = (struct eng_shape){c->filters, (ch - 3) / 2 + 1, (cw - 3) / 2 + 1};
    l->forward = eng_conv_blk_pool3_forward;
    l->work_floats = (size_t)3 * c->filters * cw + 2 * (size_t)cw;
    l->flops += 9.0 * (double)eng_shape_size(l->out);
    return 1;
}

struct pool3_run {
    const struct eng_layer *l;
    struct eng_c3b a;
    const struct eng_kern *k;
    const struct eng_fwd *f;
    int n_tasks;
};

static void pool3_task(void *arg, int task, int slot)
{
    const struct pool3_run *r = arg;
    const struct eng_layer *l = r->l;
    const int nf = l->p.conv.filters, cw = pool3_conv_w(l), ph = l->out.h, pw = l->out.w;
    int y0, y1;
    eng_team_split(ph, r->n_tasks, task, 1, &y0, &y1);
    float *ring = r->f->work + (size_t)slot * r->f->work_stride, *pa = ring + (size_t)3 * nf * cw, *pb = pa + cw;
    struct eng_c3b a = r->a;
    for (int py = y0; py < y1; py++) {
        for (int cy = py == y0 ? 2 * py : 2 * py + 1; cy <= 2 * py + 2; cy++) {
            a.in = r->f->in + (size_t)cy * l->p.conv.stride * l->in.w;
            a.out = ring + (size_t)(cy % 3) * nf * cw;
            r->k->conv3_blk(&a, 0, nf / 16, 0, 1);
        }
        const float *r0 = ring + (size_t)(2 * py % 3) * nf * cw, *r1 = ring + (size_t)((2 * py + 1) % 3) * nf * cw,
                    *r2 = ring + (size_t)((2 * py + 2) % 3) * nf * cw;
        for (int o = 0; o < nf; o++) {
            const size_t at = (size_t)o * cw;
            r->k->maxpool2_s1(r0 + at, r1 + at, pa, 2 * pw);
            r->k->maxpool2_s1(r1 + at, r2 + at, pb, 2 * pw);
            r->k->maxpool2(pa, pb, r->f->out + ((size_t)o * ph + py) * pw, pw);
        }
    }
}

void eng_conv_blk_pool3_run(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_kern *k)
{
    const struct eng_conv *c = &l->p.conv;
    const int width = eng_team_width(f->team);
    struct pool3_run r = {.l = l, .k = k, .f = f};
    r.a = (struct eng_c3b){.in_plane = (size_t)l->in.h * l->in.w, .wp = l->in.w, .c = l->in.c, .size = c->size,
                           .stride = c->stride, .w = c->blk, .bias = c->bias, .post_w = c->post_scale,
                           .post_b = c->post_bias, .act = c->act, .oh = 1, .ow = pool3_conv_w(l)};
    r.n_tasks = width < l->out.h ? width : l->out.h;
    eng_team_for(f->team, r.n_tasks, pool3_task, &r);
}

void eng_conv_blk_pool3_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_conv_blk_pool3_run(l, f, eng_kern_best());
}
