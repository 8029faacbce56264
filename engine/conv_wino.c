/* conv_wino.c - Winograd F(mxm,3x3) convolution, m = 2 or 4 (conv_wino.h): per m x m output tile,
 * Y = A^T [U . V] A with U = G g G^T (the weights, transformed at load) and V = B^T d B (the n x n input
 * patch d, n = m + 2). F(2x2):
 *
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * F(4x4): G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1], B^T and A^T
 * in wino_isa.inc. Summed over the input channels, the elementwise products U . V are n n GEMMs
 * (filters x channels) x (channels x tiles): 16 multiplies per 4 outputs, or 36 per 16, instead of 9
 * each. The output is taken in blocks of whole tile rows (the n n matrices of tiles are the GEMMs' B and
 * C, see kern.h). A block's transforms and GEMMs are cut into tasks by a plan that depends on the layer
 * alone, and our GEMM sums every element in the order of k whatever the cut: the results do not depend
 * on the thread count. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "conv_wino.h"
#include "team.h"

/* Blocks of output tiles: a block is `rows` whole tile rows of tw tiles (its GEMMs' n). */
struct wino_plan {
    int m, nm;                 /* output tile side (2 or 4) and matrices ((m + 2)^2) */
    int tw, th, rows, blocks, in_c, out_c;
    size_t ld;                /* floats per row of the nm matrices: the block's tiles and a vector's pad */
    size_t v_floats, m_floats; /* the transformed input and the GEMM outputs of one block */
    int in_parts;              /* tasks of a block's input transform (few blocks) */
};

/* Tiles per block: the transformed input and the outputs of a block, nm (in_c + out_c) floats per
 * tile, about 4 MB (they stay in L3; the GEMM blocks for L1 and L2 itself), but never fewer than 256
 * tiles: the GEMMs' width is padded to whole vectors of 16, and a 26x26 layer cut into blocks of 4 tile
 * rows (52 tiles, padded to 64) ran 15-20% slower than in one block of 169 (bench/winobench.c). */
#define WINO_BLOCK_FLOATS (1024 * 1024)
#define WINO_MIN_BLOCK_TILES 256

static struct wino_plan wino_plan(const struct eng_layer *l)
{
    const int m = l->p.conv.wino_m;
    struct wino_plan p = {.m = m, .nm = (m + 2) * (m + 2), .tw = (l->out.w + m - 1) / m,
                          .th = (l->out.h + m - 1) / m, .in_c = l->in.c, .out_c = l->out.c};
    int target = WINO_BLOCK_FLOATS / (p.nm * (p.in_c + p.out_c));
    target = target < WINO_MIN_BLOCK_TILES ? WINO_MIN_BLOCK_TILES : target;
    p.rows = target / p.tw < 1 ? 1 : target / p.tw > p.th ? p.th : target / p.tw;
    p.blocks = (p.th + p.rows - 1) / p.rows;
    const size_t tiles = (size_t)p.rows * p.tw;
    p.ld = (tiles + 15) / 16 * 16 + ENG_WINO_LD_PAD;
    p.v_floats = (size_t)p.nm * p.in_c * p.ld;
    p.m_floats = (size_t)p.nm * p.out_c * p.ld;
    p.in_parts = p.in_c < 8 ? p.in_c : 8;
    return p;
}

/* A layer cut into at least this many blocks runs a block per task (each in its own slot's scratch);
 * fewer blocks are each cut into tasks by channels (a small image: yolov3-tiny's 13x13 layers are one
 * block of 49 tiles). */
#define WINO_BLOCK_TASKS 4

static size_t wino_work_floats(const struct wino_plan *p)
{
    return p->v_floats + p->m_floats + ENG_GEMM_SCRATCH_FLOATS + ENG_WINO_SCRATCH_FLOATS(p->tw, p->rows);
}

/* The rule, per kernel set, from bench/winobench.c's figures (docs/PERFORMANCE.md, "Winograd"): the
 * fewest input channels, output tiles (2x2 each) and GEMM work (input x output channels x tiles) with
 * which Winograd ran faster than conv.c's way. On AVX-512 conv.c's implicit GEMM is fast enough that
 * Winograd only wins on large layers (yolov*-tiny's, not the face recognizer's 8x8..35x35 ones); on
 * AVX2 and the plain set it wins from 16 channels on, but not on a handful of tiles (3x3 outputs), where
 * streaming 16 / 9 times the weights costs more than the multiplies saved. */
static const struct {
    int min_in, min_out, min_tiles;
    double min_work;
} wino_rule[ENG_ISA_COUNT] = {
    [ENG_ISA_C] = {16, 16, 16, 0},
    [ENG_ISA_AVX2] = {16, 16, 9, 0},
    [ENG_ISA_AVX512] = {32, 16, 1, 2.0 * 1024 * 1024},
};

/* F(4x4,3x3) instead (36 matrices, 16 outputs a tile: 2.25 multiplies an output instead of 4) where it ran
 * faster than F(2x2) in the same runs (bench/winobench.c, docs/PERFORMANCE.md "Winograd"). Since the
 * transforms split their rows by vector shuffles, on AVX-512 on every 52x52 or larger output with 32 or
 * more input channels (yolov4-tiny's 32 -> 32 and 64 -> 64 layers too: 0.72-0.85 of F(2x2)'s time), not
 * on 26x26 and 13x13 (its GEMMs are then 64 and 16 tiles wide, one panel or one vector, and stream 4x
 * the weights); on AVX2 also on 9 or more 4x4 tiles with 128 or more input channels (yolov3/v4-tiny's
 * 26x26 and 13x13 layers: 0.70-0.95; 16 tiles are two of its vectors). Never in the plain set (sgemm
 * there: no shape of yolov3/v4-tiny or the recognizer ran faster than F(2x2)). Its error is about 10x
 * F(2x2)'s (tests/test_wino.c), well inside the differential tests' tolerances (docs/PERFORMANCE.md). */
static int wino_f4(const struct eng_layer *l, enum eng_isa isa)
{
    const int tiles4 = ((l->out.h + 3) / 4) * ((l->out.w + 3) / 4);
    const int large = l->in.c >= 32 && l->out.c >= 32 && tiles4 >= 169;
    if (isa == ENG_ISA_AVX512)
        return large;
    if (isa == ENG_ISA_AVX2)
        return large || (l->in.c >= 128 && tiles4 >= 9);
    return 0;
}

int eng_conv_wino_ok(const struct eng_layer *l)
{
    const struct eng_conv *c = &l->p.conv;
    if (l->kind != ENG_LAYER_CONV || c->size != 3 || c->stride != 1 || c->groups != 1)
        return 0;
    const enum eng_isa isa = eng_kern_best()->isa;
    const double tiles = (double)((l->out.h + 1) / 2) * ((l->out.w + 1) / 2);
    const int f2 = l->in.c >= wino_rule[isa].min_in && l->out.c >= wino_rule[isa].min_out &&
                   tiles >= wino_rule[isa].min_tiles &&
                   (double)l->in.c * l->out.c * tiles >= wino_rule[isa].min_work;
    return !f2 ? 0 : wino_f4(l, isa) ? 4 : 2;
}

/* Floats of one U_xi (filters x in_c): packed for the GEMM (rows rounded up to its panels) or in place. */
static size_t u_plane(int filters, int in_c, int packed)
{
    return packed ? eng_gemm_packed_floats(filters, in_c) : (size_t)filters * in_c;
}

/* U_xi[o][ch] = (G g G^T)[a][b] for xi = n a + b (n = m + 2), in double, rounded once; written straight
 * into the packed layout when `packed` (no in-place copy is made, even for a moment). */
static void wino_weights(const struct eng_conv *c, int in_c, int m, int packed, float *u)
{
    static const double G2[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    static const double G4[6][3] = {{1.0 / 4, 0, 0},
                                    {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                    {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                    {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                    {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                    {0, 0, 1}};
    const int n = m + 2;
    const double(*G)[3] = m == 4 ? G4 : G2;
    const size_t plane = u_plane(c->filters, in_c, packed);
    for (int o = 0; o < c->filters; o++) {
        for (int ch = 0; ch < in_c; ch++) {
            const size_t at = packed ? eng_gemm_packed_index(c->filters, in_c, o, ch) : (size_t)o * in_c + ch;
            const float *g = c->weights + ((size_t)o * in_c + ch) * 9;
            double t[6][3]; /* G g */
            for (int a = 0; a < n; a++)
                for (int j = 0; j < 3; j++)
                    t[a][j] = G[a][0] * g[j] + G[a][1] * g[3 + j] + G[a][2] * g[6 + j];
            for (int a = 0; a < n; a++)
                for (int b = 0; b < n; b++)
                    u[(size_t)(n * a + b) * plane + at] =
                        (float)(t[a][0] * G[b][0] + t[a][1] * G[b][1] + t[a][2] * G[b][2]);
        }
    }
}

int eng_conv_wino_transform_as(struct eng_layer *l, int m, int packed)
{
    struct eng_conv *c = &l->p.conv;
    packed = packed != 0;
    if (!c->weights) /* dropped once transformed (eng_darknet_load): U is final */
        return c->wino && c->wino_m == m && c->wino_packed == packed ? 0 : -1;
    if (c->wino && (c->wino_m != m || c->wino_packed != packed)) {
        free(c->wino);
        c->wino = NULL;
    }
    const size_t nw = (size_t)c->filters * l->in.c * 9;
    int fresh = 0;
    if (!c->wino) {
        /* calloc: the packed layout's rows past the filters stay zero */
        if (!(c->wino = calloc((size_t)((m + 2) * (m + 2)) * u_plane(c->filters, l->in.c, packed), sizeof(float))))
            return -1;
        fresh = 1;
    }
    c->wino_m = m;
    c->wino_packed = packed;
    /* A cfg is parsed with zero weights and prepared again once they are loaded: a fresh (zeroed) U is
     * already their transform, and the double-precision pass is most of the load time it adds. */
    size_t nonzero = 0;
    while (fresh && nonzero < nw && c->weights[nonzero] == 0.0f)
        nonzero++;
    if (!fresh || nonzero < nw)
        wino_weights(c, l->in.c, m, packed, c->wino);
    const struct wino_plan p = wino_plan(l);
    l->forward = eng_conv_wino_forward;
    l->work_floats = wino_work_floats(&p);
    return 0;
}

int eng_conv_wino_transform(struct eng_layer *l, int m)
{
    return eng_conv_wino_transform_as(l, m, eng_kern_best()->gemm != NULL);
}

int eng_conv_wino_prepare(struct eng_layer *l)
{
    const int m = l->kind == ENG_LAYER_CONV ? eng_conv_wino_ok(l) : 0;
    return m ? eng_conv_wino_transform(l, m) : 0;
}

/* The GEMMs' width for n tiles: whole vectors of 16 (the columns past n are zero in V, and M has room:
 * plan.ld), so that no tile of the GEMM goes through its partial-panel path. */
static int gemm_n(int n)
{
    return (n + 15) / 16 * 16;
}

/* Zeroes V's columns [n, gemm_n(n)) of channels [c0, c1) (the input transform leaves some undefined). */
static void zero_pad(const struct wino_plan *p, float *v, int c0, int c1, int n)
{
    for (int xi = 0; xi < p->nm; xi++)
        for (int ch = c0; ch < c1; ch++)
            memset(v + ((size_t)xi * p->in_c + ch) * p->ld + n, 0, sizeof(float) * (size_t)(gemm_n(n) - n));
}

/* Rows [m0, m1) of the nm GEMMs of a block of n tiles: M_xi = U_xi V_xi, with our GEMM (reading U
 * packed, one stream a register tile, or in place) or else sgemm (U in place). */
static void wino_gemms(const struct eng_layer *l, const struct wino_plan *p,
                       void (*gemm)(const struct eng_gemm *, float *), const float *v, float *m, int n, int m0,
                       int m1, float *scratch)
{
    const struct eng_conv *conv = &l->p.conv;
    const size_t plane = u_plane(p->out_c, p->in_c, conv->wino_packed);
    for (int xi = 0; xi < p->nm; xi++) {
        const float *u = conv->wino + (size_t)xi * plane;
        const float *a = conv->wino_packed ? NULL : u + (size_t)m0 * p->in_c;
        const float *b = v + (size_t)xi * p->in_c * p->ld;
        float *c = m + ((size_t)xi * p->out_c + m0) * p->ld;
        if (gemm) {
            const struct eng_gemm g = {.a = a, .ap = conv->wino_packed ? u : NULL, .a_row = m0, .ap_m = p->out_c,
                                       .b = b, .c = c, .lda = (size_t)p->in_c, .ldb = p->ld, .ldc = p->ld,
                                       .m = m1 - m0, .n = n, .k = p->in_c, .act = ENG_ACT_LINEAR};
            gemm(&g, scratch);
        } else {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m1 - m0, n, p->in_c, 1.0f, a, p->in_c, b,
                        (int)p->ld, 0.0f, c, (int)p->ld);
        }
    }
}

/* One forward pass's shared state. */
struct wino_run {
    const struct eng_layer *l;
    const struct eng_fwd *f;
    const struct eng_kern *k;
    void (*gemm)(const struct eng_gemm *g, float *scratch); /* k's, or NULL for sgemm */
    struct wino_plan p;
    int block;     /* the block being cut by channels (few blocks) */
    int row_parts; /* tasks of a block's GEMMs (few blocks) */
};

static float *slot_work(const struct wino_run *r, int slot)
{
    return r->f->work + (size_t)slot * r->f->work_stride;
}

/* The slot's scratch: V, M, the GEMM's packing scratch, the transforms' rows. */
static float *v_of(const struct wino_run *r, float *w) { (void)r; return w; }
static float *m_of(const struct wino_run *r, float *w) { return w + r->p.v_floats; }
static float *gemm_of(const struct wino_run *r, float *w) { return w + r->p.v_floats + r->p.m_floats; }
static float *rows_of(const struct wino_run *r, float *w)
{
    return gemm_of(r, w) + ENG_GEMM_SCRATCH_FLOATS;
}

static struct eng_wino_in in_args(const struct wino_run *r, float *v)
{
    const struct eng_conv *c = &r->l->p.conv;
    return (struct eng_wino_in){.in = r->f->in, .m = r->p.m, .h = r->l->in.h, .w = r->l->in.w, .pad_top = c->pad_top,
                                .pad_left = c->pad_left, .tw = r->p.tw, .v = v, .ld = r->p.ld,
                                .mstride = (size_t)r->p.in_c * r->p.ld};
}

static struct eng_wino_out out_args(const struct wino_run *r, const float *m)
{
    const struct eng_conv *c = &r->l->p.conv;
    return (struct eng_wino_out){.m = m, .ld = r->p.ld, .mstride = (size_t)r->p.out_c * r->p.ld,
                                 .tile = r->p.m, .tw = r->p.tw, .out = r->f->out, .oh = r->l->out.h, .ow = r->l->out.w,
                                 .bias = c->bias, .post_w = c->post_scale, .post_b = c->post_bias,
                                 .act = c->act};
}

static void block_rows(const struct wino_run *r, int block, int *ty0, int *ty1)
{
    *ty0 = block * r->p.rows;
    *ty1 = *ty0 + r->p.rows < r->p.th ? *ty0 + r->p.rows : r->p.th;
}

/* A whole block in one task, in the slot's own scratch. */
static void block_task(void *arg, int block, int slot)
{
    const struct wino_run *r = arg;
    float *w = slot_work(r, slot);
    int ty0, ty1;
    block_rows(r, block, &ty0, &ty1);
    const struct eng_wino_in in = in_args(r, v_of(r, w));
    r->k->wino_in(&in, 0, r->p.in_c, ty0, ty1, rows_of(r, w));
    zero_pad(&r->p, v_of(r, w), 0, r->p.in_c, (ty1 - ty0) * r->p.tw);
    wino_gemms(r->l, &r->p, r->gemm, v_of(r, w), m_of(r, w), gemm_n((ty1 - ty0) * r->p.tw), 0, r->p.out_c,
               gemm_of(r, w));
    const struct eng_wino_out out = out_args(r, m_of(r, w));
    r->k->wino_out(&out, 0, r->p.out_c, ty0, ty1, rows_of(r, w));
}

/* Few blocks: input channels of r->block transformed into slot 0's V, ... */
static void in_task(void *arg, int task, int slot)
{
    const struct wino_run *r = arg;
    int c0, c1, ty0, ty1;
    eng_team_split(r->p.in_c, r->p.in_parts, task, 1, &c0, &c1);
    block_rows(r, r->block, &ty0, &ty1);
    const struct eng_wino_in in = in_args(r, v_of(r, slot_work(r, 0)));
    if (c1 > c0) {
        r->k->wino_in(&in, c0, c1, ty0, ty1, rows_of(r, slot_work(r, slot)));
        zero_pad(&r->p, in.v, c0, c1, (ty1 - ty0) * r->p.tw);
    }
}

/* ... then the GEMMs and output transform of a part of the filters, into slot 0's M. */
static void rows_task(void *arg, int task, int slot)
{
    const struct wino_run *r = arg;
    int m0, m1, ty0, ty1;
    eng_team_split(r->p.out_c, r->row_parts, task, 16, &m0, &m1);
    if (m1 <= m0)
        return;
    block_rows(r, r->block, &ty0, &ty1);
    float *w0 = slot_work(r, 0), *w = slot_work(r, slot);
    wino_gemms(r->l, &r->p, r->gemm, v_of(r, w0), m_of(r, w0), gemm_n((ty1 - ty0) * r->p.tw), m0, m1,
               gemm_of(r, w));
    const struct eng_wino_out out = out_args(r, m_of(r, w0));
    r->k->wino_out(&out, m0, m1, ty0, ty1, rows_of(r, w));
}

void eng_conv_wino_run(const struct eng_layer *l, const struct eng_fwd *f, const struct eng_kern *k)
{
    struct wino_run r = {.l = l, .f = f, .k = k, .gemm = k->gemm, .p = wino_plan(l)};
    /* U packed (the process's set has our GEMM) run with a set without one (a test's choice): sgemm
     * cannot read it, the widest set's GEMM can (the engine's set had one, so that one has too). */
    if (!r.gemm && l->p.conv.wino_packed)
        r.gemm = eng_kern_widest()->gemm;
    if (r.p.blocks >= WINO_BLOCK_TASKS) {
        eng_team_for(f->team, r.p.blocks, block_task, &r);
        return;
    }
    /* Our GEMM sums each element the same way whatever the cut of its rows, so the cut may follow the
     * team (each task packs the block's V again: a task per thread, no more); sgemm's sums depend on the
     * shape of the call, so its cut is fixed. */
    const int parts = r.gemm ? eng_team_width(f->team) : 4, most = (r.p.out_c + 15) / 16;
    r.row_parts = parts < most ? parts : most;
    for (r.block = 0; r.block < r.p.blocks; r.block++) {
        eng_team_for(f->team, r.p.in_parts, in_task, &r);
        eng_team_for(f->team, r.row_parts, rows_task, &r);
    }
}

void eng_conv_wino_forward(const struct eng_layer *l, const struct eng_fwd *f)
{
    eng_conv_wino_run(l, f, eng_kern_best());
}
