/* conv_sep.c - a depthwise 3x3 stride-1 layer fused with the 1x1 layer after it (separable pairs).
 *
 * The face nets are built of depthwise 3x3 layers each followed by a 1x1 layer that alone reads its
 * output (face-api's separableConv2d: the landmark net has 12 stride-1 pairs, the detector 5, of
 * which 2 have no pool folded into the 1x1 layer). Run as two layers, the depthwise output of the
 * whole layer goes through L2 and back and each layer has its own dispatch and, with a team, barrier.
 *
 * Fused, a task takes a band of output rows: the band kernel (kern.h dw3_band, sep_isa.inc) writes
 * the band's depthwise rows of every channel into a scratch of channels x band pixels (L2-sized),
 * and the pointwise kernel reads them from there into the output rows, bias and activation in its
 * store. A depthwise output is bias + its nine products in tap order whatever the band (a band's rows
 * outside the input are the zeros the padding holds), and the pointwise kernel sums each output in the
 * order of k whatever its pixel range or channel block, so the results are the same at any team size.
 * They are not the bits of the unfused pair (the 1x1 layers with k >= 128 ran the packed GEMM).
 *
 * The depthwise layer keeps its place in the net with no forward function (its output "aliases" its
 * input, as a dropout's does), so the 1x1 layer's input is the depthwise layer's input, which the
 * arena's liveness keeps until then; the 1x1 layer finds the depthwise parameters one layer back.
 * Measured per layer and why only stride 1: docs/PERFORMANCE.md, "Kernels".
 *
 * Pooled pairs: the face detector's 1x1 layers are followed by a 2x2 stride-2 max-pool, folded into the
 * 1x1 layer (conv_pw.c) or a layer of its own (k = 128: the pointwise fold does not take it). Fused,
 * bands start on even rows and the 1x1 rows go through a scratch to the pool kernel, as conv_pw.c's
 * fold does; with a pool layer, the 1x1 layer loses its forward too and the pool layer computes the
 * three. Unfused, the detector wrote its 16x207x207 depthwise output (2.7 MB) for the 1x1 layer to read
 * back; fused, its three pooled pairs and the pool took about 0.15 ms less of 2.8 (docs/PERFORMANCE.md,
 * work log, issue19d). */
#include <stdlib.h>
#include <string.h>

#include "conv_blk.h"
#include "conv_sep.h"
#include "kern.h"
#include "layer.h"
#include "team.h"

/* Band scratch of about SEP_BAND_FLOATS (channels x band pixels; 96 KB, in L2): of 24 / 48 / 96 KB,
 * the largest ran the landmark net's pairs fastest (fewer bands, each re-reading two rows of input
 * and paying the kernel's set-up). Bands have at least SEP_MIN_PIXELS pixels where the plane allows,
 * so that the pointwise kernel's 32-pixel tiles are not mostly empty (7x7, 14x14: one band). */
#define SEP_BAND_FLOATS 24576
#define SEP_MIN_PIXELS 128

/* 1x1 layers on planes of at most SEP_BLK_PIXELS (the landmark net's 7x7 pairs: 49 pixels, which the
 * pointwise kernel's pixel vectors fill as 64 lanes on AVX-512) run conv3_blk's 1x1 instance instead,
 * vectors along output channels (c3b_isa.inc), the plane as one row: weights packed at load into the
 * layer's blk, a fixed rule of the shape and the kernel set (AVX-512, where it was measured). The same
 * sums in the same order as the pointwise kernel (bias, then each input channel, one FMA each, then the
 * post affine): the same bits, whichever path. */
#define SEP_BLK_PIXELS 64

static int blk_rule(const struct eng_layer *p)
{
    return p->in.h * p->in.w <= SEP_BLK_PIXELS && p->p.conv.filters % 16 == 0 &&
           eng_kern_best()->isa == ENG_ISA_AVX512;
}

/* The layer that computes a fused pair is its 1x1 layer, or the max-pool after it when that is fused
 * too (eng_conv_sep_fuse): the 1x1 layer of the computing layer l, and the depthwise layer before it. */
static const struct eng_layer *pw_of(const struct eng_layer *l)
{
    return l->kind == ENG_LAYER_MAXPOOL ? l - 1 : l;
}

static const struct eng_layer *dw_of(const struct eng_layer *l)
{
    return pw_of(l) - 1;
}

/* Output rows per band, for a layer with c channels in and an oh x ow output: the plane cut into
 * equal bands (a fixed rule of the shape). */
static int band_rows(int c, int oh, int ow)
{
    int rows = SEP_BAND_FLOATS / (c * ow);
    const int min_rows = (SEP_MIN_PIXELS + ow - 1) / ow;
    rows = rows < min_rows ? min_rows : rows;
    rows = rows < 1 ? 1 : rows > oh ? oh : rows;
    const int n_bands = (oh + rows - 1) / rows;
    return (oh + n_bands - 1) / n_bands;
}

/* Whether computing layer l pools: a max-pool layer, or a 1x1 layer with a 2x2 stride-2 pool folded in
 * (conv_pw.c, its output then the pooled grid). Either pool is 2x2 at stride 2, TF 'same' (fusable). */
static int pooled(const struct eng_layer *l)
{
    return l->kind == ENG_LAYER_MAXPOOL || l->out.h != l->in.h || l->out.w != l->in.w;
}

/* A pooled layer's bands start on even rows, so that each pool window's two rows fall in one band. */
static int whole_rows(const struct eng_layer *l, int rows)
{
    return pooled(l) ? rows + (rows & 1) : rows;
}

/* Row pairs per pointwise call in a pooled layer: about 4 SEP_MIN_PIXELS pixels. Of 64, 512 and 1024,
 * 512 ran the detector's pooled pairs fastest (26 wide: 0.29 ms, 0.27, 0.28; 52 wide: 0.31, 0.29,
 * 0.30), the scratch of a call's rows (about m x 512 floats) still in L2. */
static int pool_pairs(int ow)
{
    const int pairs = (4 * SEP_MIN_PIXELS + 2 * ow - 1) / (2 * ow);
    return pairs < 1 ? 1 : pairs;
}

/* The band kernel's view of output rows [y0, y1) of depthwise layer dw, channels of `in` to `out`. */
static struct eng_dw_band band_of(const struct eng_layer *dw, const float *in, int y0, int y1, float *out)
{
    const struct eng_conv *c = &dw->p.conv;
    return (struct eng_dw_band){.in = in, .in_end = in ? in + eng_shape_size(dw->in) : NULL,
                                .w = c->weights, .bias = c->bias, .h = dw->in.h, .w_in = dw->in.w,
                                .pad_top = c->pad_top, .pad_left = c->pad_left, .y0 = y0, .y1 = y1,
                                .ow = dw->out.w, .out = out};
}

struct sep_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    const struct eng_add *add; /* the add layer after l that l computes (sep_add_forward), or NULL */
    int rows, n_bands, n_mblocks;
    int n_pairs; /* pooled: the plane's row pairs, cut evenly into the bands (sep_forward); else 0 */
};

/* Rows [y0, y1) of band `band`: `rows` each, the last one ragged; or, pooled, an even share of the
 * row pairs (shares differing by one pair at most). */
static void band_bounds(const struct sep_run *r, int band, int oh, int *y0, int *y1)
{
    if (r->n_pairs) {
        *y0 = 2 * (int)((long)band * r->n_pairs / r->n_bands);
        *y1 = 2 * (int)((long)(band + 1) * r->n_pairs / r->n_bands);
    } else {
        *y0 = band * r->rows;
        *y1 = *y0 + r->rows;
    }
    *y1 = *y1 < oh ? *y1 : oh;
}

static void sep_task(void *arg, int task, int slot)
{
    const struct sep_run *r = arg;
    const struct eng_layer *l = r->l, *p = pw_of(l), *dw = dw_of(l);
    const struct eng_conv *c = &p->p.conv;
    const int band = task % r->n_bands, mb = task / r->n_bands;
    const int oh = p->in.h, ow = p->in.w, ch = p->in.c; /* the depthwise output's plane */
    int y0, y1, m0, m1;
    band_bounds(r, band, oh, &y0, &y1);
    /* c->blk is set by eng_conv_sep_fuse where blk_rule holds; such planes are one band (band_rows) */
    const int blk = c->blk && !pooled(l) && y0 == 0 && y1 == oh;
    eng_team_split(c->filters, r->n_mblocks, mb, blk ? 16 : 8, &m0, &m1);
    if (y1 <= y0 || m1 <= m0)
        return;
    const size_t n = (size_t)(y1 - y0) * ow;
    /* ch x n floats and the band kernel's spill, then the kernel's scratch */
    float *buf = r->f->work + (size_t)slot * r->f->work_stride;
    float *scratch = buf + (size_t)ch * r->rows * ow + ENG_KERN_MAX_VL;
    const struct eng_kern *kern = eng_kern_best();
    const struct eng_dw_band b = band_of(dw, r->f->in, y0, y1, buf);
    kern->dw3_band(&b, 0, ch, scratch);
    struct eng_pw pw = {.w = c->weights, .bias = c->bias, .in = buf, .in_plane = n,
                        .out = r->f->out + (size_t)y0 * ow, .plane = (size_t)oh * ow,
                        .m = c->filters, .k = ch, .act = c->act, .post_w = c->post_scale,
                        .post_b = c->post_bias};
    if (blk) { /* the whole plane is one band here (band_rows' SEP_MIN_PIXELS): one row of n pixels */
        float *z = r->add ? scratch : pw.out; /* with an add: the 1x1 output, then the add as add_act's */
        const struct eng_c3b a = {.in = buf, .in_plane = n, .wp = (int)n, .c = ch, .size = 1, .stride = 1,
                                  .w = c->blk, .bias = c->bias, .post_w = c->post_scale, .post_b = c->post_bias,
                                  .act = r->add ? ENG_ACT_LINEAR : c->act, .out = z, .oh = 1, .ow = (int)n};
        kern->conv3_blk(&a, m0 / 16, m1 / 16, 0, 1);
        for (int o = m0; r->add && o < m1; o++) {
            const size_t at = (size_t)o * oh * ow + (size_t)y0 * ow;
            const float *two[2] = {r->f->outs[r->add->sum_from] + at, z + (size_t)o * n};
            if (r->add->keep_sum)
                kern->add_act(pw.out + (size_t)o * oh * ow, two, 2, n, ENG_ACT_LINEAR);
            kern->add_act(r->f->outs[l->index + 1] + at, two, 2, n, r->add->act);
        }
        return;
    }
    if (r->add) { /* the add layer's output in the store (its sum over the earlier inputs from sum_from) */
        const size_t at = (size_t)y0 * ow;
        pw.add = r->f->outs[r->add->sum_from] + at;
        pw.sum_out = r->add->keep_sum ? pw.out : NULL;
        pw.out = r->f->outs[l->index + 1] + at;
        pw.act = r->add->act;
    }
    if (!pooled(l)) {
        kern->pointwise(&pw, m0, m1, 0, n);
        return;
    }
    /* Rows in pairs (pool_pairs at a time) to the scratch after the band kernel's (it is done with it),
     * then each pair pooled from there, as conv_pw.c's pool2_task does: the same pointwise sums and
     * pool kernel, the bits of the 1x1 layer and the pool run apart. */
    float *rows = scratch;
    const int step = 2 * pool_pairs(ow);
    pw.plane = (size_t)step * ow;
    pw.out = rows;
    for (int y = y0; y < y1; y += step) {
        const int n_rows = y1 - y < step ? y1 - y : step;
        pw.in = buf + (size_t)(y - y0) * ow;
        kern->pointwise(&pw, m0, m1, 0, (size_t)n_rows * ow);
        for (int o = m0; o < m1; o++)
            for (int j = 0; j < n_rows; j += 2) {
                const float *a = rows + (size_t)o * pw.plane + (size_t)j * ow;
                eng_maxpool2_rows(a, j + 1 < n_rows ? a + ow : NULL, ow,
                                  r->f->out + ((size_t)o * l->out.h + (y + j) / 2) * l->out.w);
            }
    }
}

/* Bands across the team, as many as a multiple of its width (a team of two ran 5 bands of the landmark
 * net's 56x56 pairs 3 : 2); where those bands would be under SEP_MIN_TEAM_PIXELS, the output channels
 * are cut instead, each task then redoing its band's depthwise rows (7x7 planes). The cut changes no
 * bit (see the top of this file), and band_rows at one thread bounds every band, hence the scratch. */
#define SEP_MIN_TEAM_PIXELS 64

static void sep_run_pair(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_add *add)
{
    const struct eng_layer *p = pw_of(l);
    const int oh = p->in.h, ow = p->in.w, width = eng_team_width(f->team);
    struct sep_run r = {.l = l, .f = f, .add = add, .rows = whole_rows(l, band_rows(p->in.c, oh, ow)),
                        .n_mblocks = 1};
    r.n_bands = (oh + r.rows - 1) / r.rows;
    if (pooled(l)) {
        /* Even shares of the row pairs: cut in bands of r.rows, the detector's pooled planes left a
         * team of two 4 bands of 8 rows, 8, 8, 2 (26 rows) or 7 bands (52 rows). As many bands as at
         * one thread, or the next multiple of the width while a band keeps SEP_MIN_TEAM_PIXELS; no
         * band is larger than r.rows, which sized the scratch. */
        r.n_pairs = (oh + 1) / 2;
        const int want = (r.n_bands + width - 1) / width * width;
        if (want <= r.n_pairs && 2 * (r.n_pairs / want) * ow >= SEP_MIN_TEAM_PIXELS)
            r.n_bands = want;
        else if (width > 1 && r.n_bands % width)
            r.n_mblocks = width < (p->p.conv.filters + 7) / 8 ? width : (p->p.conv.filters + 7) / 8;
        eng_team_for(f->team, r.n_bands * r.n_mblocks, sep_task, &r);
        return;
    }
    if (width > 1 && r.n_bands % width) {
        const int want = (r.n_bands + width - 1) / width * width, rows = (oh + want - 1) / want;
        if (rows * ow >= SEP_MIN_TEAM_PIXELS && want <= oh) {
            r.rows = rows;
            r.n_bands = (oh + rows - 1) / rows;
        } else {
            const int most = (p->p.conv.filters + 7) / 8;
            r.n_mblocks = width < most ? width : most;
        }
    }
    eng_team_for(f->team, r.n_bands * r.n_mblocks, sep_task, &r);
}

static void sep_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    sep_run_pair(l, f, NULL);
}

/* A fused pair that also computes the add layer after it (fuse_adds). */
static void sep_add_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    sep_run_pair(l, f, &l[1].p.add);
}

/* The add layer's forward once the pair before it computes its output: nothing left to do. */
static void add_done(const struct eng_layer *l, const struct eng_fwd *f)
{
    (void)l;
    (void)f;
}

/* Whether layers i (depthwise 3x3, stride 1, 'same'-sized output, no activation or post affine) and
 * i + 1 (1x1 of one group, stride 1, unpadded, perhaps with conv_pw.c's pool folded in) form a pair
 * whose depthwise output no other layer reads. Stride 2 stays unfused: the band kernel has no even/odd
 * split (kern_isa.inc's depthwise kernel does), and fused through the plane kernel per band those
 * pairs ran slower. */
static int fusable(const struct eng_net *net, int i)
{
    if (i + 1 >= net->n_layers)
        return 0;
    const struct eng_layer *d = &net->layers[i], *p = &net->layers[i + 1];
    if (d->kind != ENG_LAYER_CONV || p->kind != ENG_LAYER_CONV || !d->forward || !p->forward)
        return 0;
    const struct eng_conv *dc = &d->p.conv, *pc = &p->p.conv;
    if (dc->groups != d->in.c || dc->filters != d->in.c || dc->size != 3 || dc->stride != 1 ||
        dc->post_scale || dc->act != ENG_ACT_LINEAR || !dc->weights || d->out.h != d->in.h + dc->pad_top +
        dc->pad_bottom - 2 || d->out.w != d->in.w + dc->pad_left + dc->pad_right - 2)
        return 0;
    if (pc->groups != 1 || pc->size != 1 || pc->stride != 1 || pc->pad_top || pc->pad_left ||
        pc->pad_bottom || pc->pad_right || !pc->weights || p->in.h != d->out.h || p->in.w != d->out.w)
        return 0;
    if (pooled(p) && (p->out.h != (d->out.h + 1) / 2 || p->out.w != (d->out.w + 1) / 2 ||
                      d->out.w < ENG_KERN_MAX_VL))
        return 0; /* a pool other than the 2x2 stride-2 'same' one conv_pw.c folds in */
    return !eng_net_read_by_other(net, i, i + 1); /* no route, shortcut or add reads the depthwise output */
}

/* Whether layer j, after a fusable pair, is a 2x2 stride-2 max-pool with TF 'same' padding (none, or
 * one row and column after: pool.c splits pad / 2 before) that alone reads the 1x1 layer's output, on
 * rows at least a vector wide (as conv_pw.c's fold asks): the 1x1 layer then pools in its output pass
 * too. The detector's 256-channel pair at 26x26, whose 1x1 layer (k = 128) the pointwise fold does not
 * take, wrote 0.7 MB for that pool to read back. */
static int pool_fusable(const struct eng_net *net, int j)
{
    if (j >= net->n_layers)
        return 0;
    const struct eng_layer *q = &net->layers[j], *p = q - 1;
    const struct eng_pool *pool = &q->p.pool;
    if (q->kind != ENG_LAYER_MAXPOOL || !q->forward || pooled(p) || pool->size != 2 || pool->stride != 2 ||
        pool->pad > 1 || q->out.h != (q->in.h + 1) / 2 || q->out.w != (q->in.w + 1) / 2 ||
        q->in.w < ENG_KERN_MAX_VL)
        return 0;
    return !eng_net_read_by_other(net, j - 1, j);
}

size_t eng_conv_sep_work_floats(const struct eng_layer *l)
{
    const struct eng_layer *pw = pw_of(l), *dw = dw_of(l);
    const int rows = whole_rows(l, band_rows(pw->in.c, pw->in.h, pw->in.w));
    const struct eng_dw_band b = band_of(dw, NULL, 0, rows, NULL);
    size_t scratch = eng_dw_band_scratch_floats(&b);
    const size_t pool_rows = 2 * (size_t)pool_pairs(pw->in.w) * pw->p.conv.filters * pw->in.w;
    scratch = pooled(l) && pool_rows > scratch ? pool_rows : scratch; /* one after the other */
    const size_t z = (size_t)pw->p.conv.filters * rows * pw->in.w; /* blk with an add: the 1x1 output */
    scratch = blk_rule(pw) && !pooled(l) && z > scratch ? z : scratch;
    return (size_t)pw->in.c * rows * pw->in.w + ENG_KERN_MAX_VL + scratch;
}

/* ---- dense-block adds ---------------------------------------------------------------------------
 * face-api's dense blocks sum a growing list of branch outputs: relu(out1 + out2), relu(out1 + out2 +
 * out3), relu(out1 + ... + out4), each out_i (i > 1) the linear 1x1 layer of a fused pair just before the
 * add. Each add layer read every input back from memory in a pass of its own (a team dispatch, and
 * about 0.07 ms of the landmark net's 0.8: docs/PERFORMANCE.md, work log). Fused, the pair's 1x1 layer
 * adds, as it stores, the running sum of the earlier inputs and writes the add layer's output; where a
 * later add extends the same list, it also keeps its raw running sum (instead of out_i, which nothing
 * else then reads) for that add to start from. The sums are add_act's, in its order: 0 + in[0], then
 * each input in turn (a running sum is never -0, so 0 + it is itself): the bits of the unfused net. */

/* Whether add layer a is built as fuse_adds takes it: plain (no zero extension), after a fused unpooled
 * pair whose 1x1 layer is linear, that pair's output its last input. */
static int add_candidate(const struct eng_net *net, int a)
{
    if (a < 2 || a >= net->n_layers)
        return 0;
    const struct eng_layer *l = &net->layers[a], *p = l - 1;
    const struct eng_add *ad = &l->p.add;
    return l->kind == ENG_LAYER_ADD && l->forward && !ad->zero_extend && ad->n >= 2 && !ad->by_prev &&
           ad->inputs[ad->n - 1] == a - 1 && p->kind == ENG_LAYER_CONV && p->forward == sep_forward &&
           !pooled(p) && p->p.conv.act == ENG_ACT_LINEAR && p->out.c == l->out.c && p->out.h == l->out.h &&
           p->out.w == l->out.w;
}

/* Whether add c's inputs begin with all of add a's and more (by one: c starts from a's raw sum). */
static int extends(const struct eng_net *net, int c, int a, int by_one)
{
    const struct eng_add *ac = &net->layers[c].p.add, *aa = &net->layers[a].p.add;
    if (by_one ? ac->n != aa->n + 1 : ac->n <= aa->n)
        return 0;
    for (int k = 0; k < aa->n; k++)
        if (ac->inputs[k] != aa->inputs[k])
            return 0;
    return 1;
}

/* Whether a fusable add a still holds, given ok[] for the others: an add of 3 or more inputs starts from
 * the fused add of all but its last; every other reader of the pair's output (whose buffer then holds a
 * raw sum, or nothing) is a fused add that extends a (it reads that buffer, or a later add's sum, never
 * the pair's own output). */
static int add_holds(const struct eng_net *net, const unsigned char *ok, int a)
{
    const struct eng_add *ad = &net->layers[a].p.add;
    if (ad->n > 2) {
        const int b = ad->inputs[ad->n - 2] + 1;
        if (b >= a || !ok[b] || !extends(net, a, b, 1))
            return 0;
    }
    const int p = a - 1;
    for (int j = 0; j < net->n_layers; j++) {
        const struct eng_layer *l = &net->layers[j];
        if (j == a)
            continue;
        int reads = j == p + 1 && l->forward;
        if (l->kind == ENG_LAYER_ROUTE)
            for (int k = 0; k < l->p.route.n; k++)
                reads |= l->p.route.inputs[k] == p;
        else if (l->kind == ENG_LAYER_SHORTCUT)
            reads |= l->p.shortcut.from == p;
        else if (l->kind == ENG_LAYER_ADD)
            for (int k = 0; k < l->p.add.n; k++)
                reads |= l->p.add.inputs[k] == p;
        if (reads && !(l->kind == ENG_LAYER_ADD && ok[j] && extends(net, j, a, 0)))
            return 0;
    }
    return p != net->n_layers - 1;
}

static int fuse_adds(struct eng_net *net)
{
    unsigned char ok[256]; /* the face nets have 45-60 layers; a larger net keeps its add layers */
    if (net->n_layers > (int)sizeof ok)
        return 0;
    for (int a = 0; a < net->n_layers; a++)
        ok[a] = (unsigned char)add_candidate(net, a);
    for (int changed = 1; changed;) { /* drop the adds that do not hold until all do */
        changed = 0;
        for (int a = 0; a < net->n_layers; a++)
            if (ok[a] && !add_holds(net, ok, a)) {
                ok[a] = 0;
                changed = 1;
            }
    }
    int fused = 0;
    for (int a = 0; a < net->n_layers; a++) {
        if (!ok[a])
            continue;
        struct eng_layer *l = &net->layers[a], *p = l - 1;
        struct eng_add *ad = &l->p.add;
        ad->by_prev = 1;
        ad->sum_from = ad->inputs[ad->n - 2];
        ad->keep_sum = 0;
        for (int c = a + 1; c < net->n_layers; c++)
            ad->keep_sum |= ok[c] && extends(net, c, a, 1);
        l->forward = add_done;
        p->forward = sep_add_forward;
        p->flops += l->flops; /* the profile shows the add on the pair */
        l->flops = 0;
        fused++;
    }
    return fused;
}

int eng_conv_sep_fuse(struct eng_net *net)
{
    int fused = 0;
    for (int i = 0; i + 1 < net->n_layers; i++) {
        if (!fusable(net, i))
            continue;
        struct eng_layer *d = &net->layers[i], *p = &net->layers[i + 1];
        d->forward = NULL;
        d->work_floats = 0;
        p->forward = sep_forward;
        p->work_floats = eng_conv_sep_work_floats(p);
        fused++;
        if (blk_rule(p) && !pooled(p) && (p->p.conv.blk || (p->p.conv.blk = malloc(sizeof(float) *
                                                            eng_conv_blk_packed_floats(p)))))
            eng_conv_blk_pack(p, p->p.conv.blk); /* out of memory: the pointwise kernel, same bits */
        i++;
        if (!pool_fusable(net, i + 1))
            continue;
        struct eng_layer *q = &net->layers[i + 1];
        p->forward = NULL; /* its output now "aliases" the depthwise layer's input too */
        p->work_floats = 0;
        q->forward = sep_forward;
        q->work_floats = eng_conv_sep_work_floats(q);
        q->flops += p->flops; /* the profile shows the three on the pool */
        p->flops = 0;
        i++;
    }
    fuse_adds(net);
    return fused;
}
