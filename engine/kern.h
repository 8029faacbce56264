/* kern.h - hand-vectorized kernels, built once per instruction set and chosen at run time.
 *
 * Each kernel is compiled three times from kern_isa.inc: for AVX-512 (kern_avx512.c), AVX2 + FMA
 * (kern_avx2.c) and plain x86-64 / any target (kern_c.c, SSE2 or the compiler's generic vectors).
 * eng_kern_best() picks the widest set this processor runs, so one binary runs on any x86-64; tests
 * call every set the processor supports through eng_kern_for() and compare it with a naive reference.
 * Kernels take const inputs, write their output, allocate nothing and take no locks. Each works on a
 * caller-given sub-range (output channels, pixels), so a layer can be split across threads. */
#ifndef ENG_KERN_H
#define ENG_KERN_H

#include <stddef.h>

#include "layer.h"

enum eng_isa {
    ENG_ISA_C = 0, /* baseline: SSE2 on x86-64, generic vectors elsewhere */
    ENG_ISA_AVX2,  /* AVX2 + FMA */
    ENG_ISA_AVX512,
    ENG_ISA_COUNT,
};

/* A pointwise (1x1, stride 1, unpadded) convolution as out[o][p] = act(bias[o] + sum_k w[o][k] in[k][p]):
 * the weights are m x k row-major, the output m planes of `plane` floats; input row k starts at
 * in + in_offsets[k] if in_offsets is set, else k planes of `in_plane` floats (0: `plane`) in. It is
 * also the GEMM of an im2col tile with a small k (conv.c), and with offsets a stride-1 or stride-2
 * convolution read straight from a padded copy of its input, with no im2col (conv_direct.c). */
struct eng_pw {
    const float *w;
    const float *bias; /* [m], or NULL */
    const float *in;
    float *out;
    int m, k;
    size_t plane, in_plane;
    const size_t *in_offsets; /* [k], or NULL */
    enum eng_act act;
    /* For a GEMM cut along k (conv_direct.c): weight rows are ldw floats apart (0: k), and with
     * accumulate the sums start from out instead of the bias. Chunks in order give the same sums as
     * one call: a float stored and loaded back is unchanged. */
    size_t ldw;
    int accumulate;
    /* A per-channel affine on the sums before act, or NULL: out = act(sum * post_w[o] + post_b[o]). */
    const float *post_w, *post_b;
    /* A residual added in the store, or NULL (conv_sep.c: face-api's dense-block adds): with it, z (the
     * sums after the affine, no act) becomes s = (0 + add[o][p]) + z, add_act's order, out = act(s),
     * and, with sum_out, s itself (no act) into sum_out; add and sum_out have out's layout (rows `plane`
     * apart) and overlap neither out nor each other. Not with accumulate or in_offsets. */
    const float *add;
    float *sum_out;
};

/* A depthwise convolution: channel c of `out` (oh x ow) is the k x k window of weights w[c] moved by
 * `stride` over channel c of `in` (h x w, zero-padded by pad_top/pad_left before and as needed
 * after), plus bias[c], then act. The direct kernel takes k 3 or 5 and stride 1 or 2. */
struct eng_dw {
    const float *in;
    float *out;
    const float *w;    /* [c][k][k] */
    const float *bias; /* [c], or NULL */
    int h, w_in, oh, ow, k, stride, pad_top, pad_left;
    enum eng_act act;
};

/* Where the depthwise kernel keeps a channel in its scratch (kern.c): a zero-padded copy of the input
 * rows it reads, hp rows of wp floats (stride 1); or (stride 2) the padded rows split by the parity
 * of their row and column into four planes of w2 = ow + k / 2 columns, so that every tap of the whole
 * output, taken as one stretch of oh x w2, is a contiguous vector load (wp: one padded input row).
 * Widths include room for whole vectors of up to ENG_KERN_MAX_VL floats. */
#define ENG_KERN_MAX_VL 16
struct eng_dw_geom {
    int hp, wp, w2;
    size_t plane_floats; /* stride 1: padded plane; stride 2: each of the four phase planes */
    size_t out_floats;   /* stride 1: output rows of wp floats; stride 2: the oh x w2 stretch */
};
struct eng_dw_geom eng_dw_geom(const struct eng_dw *d);

/* Whether the direct depthwise kernel handles d's kernel size and stride. */
int eng_dw_supported(const struct eng_dw *d);

/* Scratch floats the depthwise kernel needs per concurrent call (the same for every set). */
size_t eng_dw_scratch_floats(const struct eng_dw *d);

/* C = act(post(bias + A B)) for a convolution's im2col tile (gemm_isa.inc): A the weights, m x k with
 * rows lda apart; B k x n, rows ldb apart; C m x n, rows ldc apart; bias [m] or NULL, post_w/post_b
 * as in struct eng_pw. With ap set, A is read from there instead: weights packed once at load
 * (eng_gemm_pack_a of an ap_m x k matrix), C's row i being row a_row + i of it (the same bits either
 * way). */
struct eng_gemm {
    const float *a, *b;
    const float *ap;
    int a_row, ap_m;
    float *c;
    size_t lda, ldb, ldc;
    int m, n, k;
    const float *bias, *post_w, *post_b;
    enum eng_act act;
    /* Or, with b NULL: pack fills each packed block of B itself (an implicit GEMM: conv.c unfolds the
     * input straight into it, with no im2col tile to copy from): rows [kk0, kk0 + kc) x columns
     * [j0, j0 + nc) as panels of nr columns, each kc rows of nr floats, zero beyond nc. */
    void (*pack)(const void *ctx, int kk0, int kc, int j0, int nc, int nr, float *dst);
    const void *pack_ctx;
};

/* The GEMM's blocking: B is packed GEMM_KC rows x GEMM_NC columns at a time into the caller's
 * scratch of ENG_GEMM_SCRATCH_FLOATS floats. */
#define ENG_GEMM_KC 384
#define ENG_GEMM_NC 256
#define ENG_GEMM_MR 6 /* rows of a register tile, the same in every set with a .gemm */
#define ENG_GEMM_SCRATCH_FLOATS ((size_t)ENG_GEMM_KC * ENG_GEMM_NC)

/* The packed layout of A the GEMM's inner loop reads as one sequential stream: for each block of
 * ENG_GEMM_KC columns (the last one kc <= ENG_GEMM_KC wide), panels of ENG_GEMM_MR rows, each kc groups
 * of ENG_GEMM_MR floats; rows beyond m zero. Element (i, kk) of an m x k matrix, mp = m rounded up to
 * ENG_GEMM_MR: (kk / KC) * KC * mp + (i / MR) * kc * MR + (kk % KC) * MR + i % MR. A pass of the GEMM
 * over one k block then reads one contiguous run. It does not depend on the kernel set (every set
 * tiles by ENG_GEMM_MR rows and blocks k by ENG_GEMM_KC), so weights packed at load serve whichever
 * set a process runs. */
size_t eng_gemm_packed_floats(int m, int k);
void eng_gemm_pack_a(const float *a, size_t lda, int m, int k, float *dst);
/* Where element (i, kk) of an m x k matrix lies in that layout (for writers that make it directly). */
size_t eng_gemm_packed_index(int m, int k, int i, int kk);

/* Output widths the small-n GEMM takes: B's rows are this many floats, zero beyond n. */
#define ENG_KERN_SMALL_N 16

/* Winograd F(mxm,3x3), m = 2 or 4 (conv_wino.c): a stride-1 3x3 convolution computed per m x m output
 * tile as A^T [(G g G^T) . (B^T d B)] A from the n x n input patch d (n = m + 2). Tile (ty, tx) reads
 * input rows from m ty - pad_top and columns from m tx - pad_left (zero outside h x w) and writes
 * output rows m ty .. m ty + m - 1 and columns m tx .. m tx + m - 1 (those inside oh x ow). Element xi
 * (0..n n - 1, xi = n a + b, a the vertical index) of tile t = (ty - ty0) tw + tx of channel ch is at
 * [xi * mstride + ch * ld + t]: n n matrices [channel][tile] that are the B (input) and C (output) of
 * n n GEMMs with the transformed weights. */
struct eng_wino_in {
    const float *in; /* channel ch's h x w plane at in + ch h w */
    int m;           /* 2 or 4 */
    int h, w, pad_top, pad_left, tw;
    float *v;
    size_t ld, mstride;
};
struct eng_wino_out {
    const float *m;
    size_t ld, mstride;
    int tile; /* m: 2 or 4 */
    int tw;
    float *out; /* channel o's oh x ow plane at out + o oh ow */
    int oh, ow;
    const float *bias, *post_w, *post_b; /* [o], or NULL */
    enum eng_act act;
};
/* Scratch floats either transform needs per concurrent call for tw tiles a row and up to `rows` tile rows
 * (36 rows of tw + 1 tiles and a vector: F(4x4)'s 6 input rows split into 6 phases; then two channels'
 * zero-padded input rows, 4 rows + 2 of up to 4 such rows each), and the columns of padding (beyond a
 * block's tiles) each row of the n n matrices needs: whole vectors are written and read. */
#define ENG_WINO_ROW(tw)                                                                               \
    (((size_t)(tw) + 1 + ENG_KERN_MAX_VL - 1) / ENG_KERN_MAX_VL * ENG_KERN_MAX_VL + ENG_KERN_MAX_VL)
#define ENG_WINO_SCRATCH_FLOATS(tw, rows) ((36 + 8 * (4 * (size_t)(rows) + 2)) * ENG_WINO_ROW(tw))
#define ENG_WINO_LD_PAD ENG_KERN_MAX_VL

/* A band of output rows [y0, y1) of a depthwise 3x3 stride-1 layer with no activation (conv_sep.c):
 * channel c's input plane (h x w_in) at in + c h w_in, zero-padded by pad_top / pad_left before and as
 * needed after; its output rows are written compact, (y1 - y0) x ow, at out + c (y1 - y0) ow, as
 * bias[c] (0 if bias is NULL) + the nine products in the order of the taps. The kernel writes up to
 * ENG_KERN_MAX_VL floats past a channel's rows (the next channel's, or slack the caller provides after
 * the last one) and reads no input at or past in_end. */
struct eng_dw_band {
    const float *in, *in_end;
    const float *w, *bias; /* [c][9], [c] or NULL */
    int h, w_in, pad_top, pad_left, y0, y1, ow;
    float *out;
};
/* The padded plane's width, and the scratch floats dw3_band needs per concurrent call. */
static inline int eng_dw_band_wp(const struct eng_dw_band *b)
{
    const int wp = b->w_in + b->pad_left > b->ow + 2 ? b->w_in + b->pad_left : b->ow + 2;
    return (wp + ENG_KERN_MAX_VL - 1) / ENG_KERN_MAX_VL * ENG_KERN_MAX_VL; /* rows start aligned */
}
static inline size_t eng_dw_band_scratch_floats(const struct eng_dw_band *b)
{
    const size_t oh = (size_t)(b->y1 - b->y0), wp = (size_t)eng_dw_band_wp(b);
    /* two padded planes, the stretch of outputs, and room to align the planes to 64 bytes */
    return 2 * ((oh + 2) * wp + 3 * ENG_KERN_MAX_VL + 2) + oh * wp + 2 * ENG_KERN_MAX_VL + 16;
}

/* A size x size convolution at `stride` (1 at 1, 3 at 1 or 2, 7 at 2) with vectors along output channels
 * (conv_blk.c, c3b_isa.inc): channel ch of the zero-padded input is rows of wp floats at in + ch in_plane,
 * output (y, x) reading rows stride y .. stride y + size - 1 from column stride x; w the weights packed as
 * [filters / 16][c][size][size][16] (eng_conv_blk_pack); the output filters planes of oh x ow.
 * out[o][y][x] = act(post(bias[o] + sum over ch, ky, kx in that order)). */
struct eng_c3b {
    const float *in;
    size_t in_plane;
    int wp, c, size, stride;
    const float *w;
    const float *bias, *post_w, *post_b; /* [filters], or NULL */
    enum eng_act act;
    float *out;
    int oh, ow;
};
/* Whether conv3_blk computes each output plane of oh x ow as one tile (AVX-512: 3x3 and 4x4 planes), when a
 * call covers all its rows: every weight is then read once a call, not once a row (conv_blk.c). */
static inline int eng_c3b_plane_tile(int oh, int ow)
{
    return oh == ow && (ow == 3 || ow == 4);
}


struct eng_kern {
    enum eng_isa isa;
    const char *name;
    /* In-place activation of n floats; any act (the vector sets vectorize linear, leaky and relu). */
    void (*act)(float *x, size_t n, enum eng_act act);
    /* Pointwise convolution of output channels [m0, m1) over pixels [p0, p1), bias and activation
     * applied as each output is written. Reads no pixel outside [p0, p1). */
    void (*pointwise)(const struct eng_pw *pw, int m0, int m1, size_t p0, size_t p1);
    /* Row o of the m x cols block at out (rows ld apart) set to bias[o] (0 if bias is NULL). */
    void (*fill_rows)(float *out, int m, int cols, size_t ld, const float *bias);
    /* Depthwise convolution of channels [c0, c1) (eng_dw_supported(d) must hold), using `scratch`
     * of eng_dw_scratch_floats(d) floats that no other call uses at the same time. */
    void (*depthwise)(const struct eng_dw *d, int c0, int c1, float *scratch);
    /* C += A B for a convolution with few output pixels (1 <= n <= ENG_KERN_SMALL_N): A is m x k
     * (rows lda apart), B is k rows of ENG_KERN_SMALL_N floats (zero beyond n), C is m x n (rows ldc
     * apart). The face recognizer's last stages have 1 to 16 pixels; sgemm packs the whole weight
     * matrix for them (far from its peak), where this reads each weight once. Every element is
     * summed in the order of k whatever m, so a caller may split rows freely. */
    void (*gemm_small_n)(const float *a, size_t lda, const float *b, float *c, size_t ldc, int m, int n,
                         int k);
    /* The depthwise row kernels (conv_dw.c: the shapes the plane kernel above does not take). 3x3
     * taps at stride 1 or 2 over output columns [x0, x1) whose taps all lie inside the rows r0..r2
     * (ky = 0..2), o[x] = bias + sum of w[3 ky + kx] r_ky[stride x - pad + kx]; and 5x5 at stride 1
     * over rows[0..4]. Sums in that order, one element at a time in each lane: unfused, so each set
     * gives the same bits (conv_dw.c's results do not depend on the set, only its speed does). */
    void (*dw3_row)(float *o, const float *r0, const float *r1, const float *r2, const float *w, float bias,
                    int x0, int x1, int pad, int stride);
    void (*dw5_row_s1)(float *o, const float *const *rows, const float *w, float bias, int x0, int x1,
                       int pad);
    /* 2x2 max pooling at stride 2 of two input rows: out[i] = the largest of r0[2i], r0[2i + 1],
     * r1[2i], r1[2i + 1] for i in [0, n). */
    void (*maxpool2)(const float *r0, const float *r1, float *out, int n);
    /* The same at stride 1: out[i] = the largest of r0[i], r0[i + 1], r1[i], r1[i + 1], i in [0, n). */
    void (*maxpool2_s1)(const float *r0, const float *r1, float *out, int n);
    /* out[i] = act(0 + in[0][i] + in[1][i] + ... + in[k - 1][i]) for i in [0, n), summed in that order
     * (the bits of add.c's plain loop); out may not overlap an input. */
    void (*add_act)(float *out, const float *const *in, int k, size_t n, enum eng_act act);
    /* The packed, register-blocked GEMM of struct eng_gemm, using `scratch` of
     * ENG_GEMM_SCRATCH_FLOATS floats no other call uses at the same time; NULL in the plain set,
     * where OpenBLAS's sgemm does this. Each element is bias + its products in the order of k, so a
     * caller may cut m and n freely. */
    void (*gemm)(const struct eng_gemm *g, float *scratch);
    /* Winograd transforms (struct eng_wino_in/out) of channels [c0, c1) over tile rows [ty0, ty1),
     * with `scratch` of ENG_WINO_SCRATCH_FLOATS(tw, ty1 - ty0) floats. The input transform writes
     * whole vectors (up to ENG_WINO_LD_PAD floats past a row's last tile); the output transform adds bias, then
     * applies the post affine and act, as it stores. Each element is a fixed sequence of operations
     * whatever the range, so a caller may cut channels and tile rows freely. */
    void (*wino_in)(const struct eng_wino_in *a, int c0, int c1, int ty0, int ty1, float *scratch);
    void (*wino_out)(const struct eng_wino_out *a, int o0, int o1, int ty0, int ty1, float *scratch);
    /* C = A B^T for convolutions of very few output pixels (conv_dot.c): A is m x k (rows lda apart),
     * B^T is n rows of k floats (ldb apart: each pixel's unfolded patch), C is m x n (rows ldc apart),
     * written, not added to. Vectors run along k (dot_isa.inc); each element is summed in a fixed
     * order whatever m and n, so a caller may split rows freely. */
    void (*gemm_dot)(const float *a, size_t lda, const float *bt, size_t ldb, float *c, size_t ldc, int m,
                     int n, int k);
    /* x[i] = logistic(x[i]) * scale + shift for i in [0, n) (kern_logistic.inc): the yolo heads'
     * activation, within a few ulp of darknet's 1 / (1 + expf(-x)); each element alike wherever a
     * range starts, so a caller may cut ranges freely. */
    void (*logistic)(float *x, size_t n, float scale, float shift);
    /* A 3x3 depthwise channel at stride 1 or 2 from a plane (kern_expdw.inc): out[y ldo + x] =
     * act(bias + sum over ky, kx of w[3 ky + kx] P(stride y + ky, stride x + kx - pl)) for y < oh,
     * x < ow, where P(r, c) = plane[r wp + c] for 0 <= c < w and 0 elsewhere (rows above and below the
     * input are the caller's zero rows). Reads (stride (oh - 1) + 3) rows from column -pl up to
     * ENG_DW3P_ROW(ow, stride) - pl (values outside [0, w) are read, never used: rows wp < that apart
     * need that much readable memory before and after the plane); writes only those outputs. */
    void (*dw3_padded)(const float *plane, size_t wp, float *out, size_t ldo, int oh, int ow, int stride, int pl,
                       int w, const float *wt, float bias, enum eng_act act);
    /* Depthwise 3x3 stride-1 rows of channels [c0, c1) for a fused separable pair (struct
     * eng_dw_band, sep_isa.inc), with `scratch` of eng_dw_band_scratch_floats floats. */
    void (*dw3_band)(const struct eng_dw_band *b, int c0, int c1, float *scratch);
    /* Output channel blocks [ob0, ob1) (16 channels each) x rows [y0, y1) of struct eng_c3b; each
     * element is computed the same way whatever the ranges, so a caller may cut both freely. */
    void (*conv3_blk)(const struct eng_c3b *a, int ob0, int ob1, int y0, int y1);
};
/* Floats of each padded row the dw3_padded kernel may read for ow outputs at stride s (rows narrower
 * than a vector are computed as one whole vector). */
#define ENG_DW3P_ROW(ow, s) ((size_t)(s) * ((size_t)(ow) > ENG_KERN_MAX_VL ? (size_t)(ow) : ENG_KERN_MAX_VL) + 2)

/* The kernels for `isa`, or NULL if this build or processor cannot run them. Borrowed, static. */
const struct eng_kern *eng_kern_for(enum eng_isa isa);

/* The kernel set the engine uses (never NULL; borrowed, static): the one the environment variable
 * VISIOND_KERNELS names (c, avx2 or avx512) if this processor runs it, else the widest it runs. The
 * variable makes another processor's arithmetic reproducible here (tests run every set, scripts/test);
 * it is read once per process. Cheap: call it per layer. */
#define ENG_KERN_ENV "VISIOND_KERNELS"
const struct eng_kern *eng_kern_best(void);

/* Why VISIOND_KERNELS was not followed (an unknown name, or a set this processor cannot run), or NULL.
 * The engine then runs the widest set; a program should refuse to start (server/main.c does). */
const char *eng_kern_env_error(void);

/* The widest set this processor runs, whatever the environment says (never NULL). */
const struct eng_kern *eng_kern_widest(void);

/* "c", "avx2", "avx512" (static). */
const char *eng_isa_name(enum eng_isa isa);

/* The names of the sets this processor runs, space-separated, into buf (returned). */
char *eng_kern_supported(char *buf, size_t size);

/* The per-set tables (kern_c.c, kern_avx2.c, kern_avx512.c). The AVX sets exist only where
 * ENG_KERN_X86 is 1 (GCC on x86-64). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define ENG_KERN_X86 1
#else
#define ENG_KERN_X86 0
#endif
extern const struct eng_kern eng_kern_c;
#if ENG_KERN_X86
extern const struct eng_kern eng_kern_avx2;
extern const struct eng_kern eng_kern_avx512;
#endif

/* darknet's activation definitions, one value at a time (activation.c): the reference, and what the
 * vector kernels fall back to for the activations they do not vectorize. */
void eng_act_ref(float *x, size_t n, enum eng_act act);

#endif
