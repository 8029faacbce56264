/* gal_index.c - the gallery's in-memory index: immutable snapshots swapped under a pointer.
 *
 * Design: a snapshot holds every face as one row of a row-major n x 128 float matrix, grouped by
 * subject (each subject's faces are contiguous), with each row's squared norm, and the same rows in IEEE
 * half precision (gal_f16.h) with their own norms. A search scans the half rows (half the bytes: the
 * scan is bound by memory bandwidth) in blocks: dot products with the query batch, |q - g|^2 = |q|^2 +
 * |g|^2 - 2 q.g, a running minimum per subject; it shortlists top_k + RERANK subjects by that estimate
 * and re-ranks them exactly, in double over all their float rows. gal_snap_search_exact does the same
 * with a BLAS scan of the float rows (sgemv for one query, sgemm for several).
 * Concurrency: gal_index_load builds a whole new snapshot without any lock, then swaps the pointer under
 * a mutex that readers also take only to load the pointer and count a reference (O(1) both sides). A
 * snapshot is freed by whoever drops its last reference. */
#include "gal.h"
#include "gal_f16.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_HALF 1024   /* rows per gal_f16_dots call: the dot products stay in L1 */
#define BLOCK_FLOAT 16384 /* rows per BLAS call: a block's dot products stay in L2 */
#define RERANK 32       /* subjects re-ranked exactly beyond top_k (docs/GALLERY.md: recall) */
/* a face's bytes in a snapshot: float and half rows, two norms, the id */
#define ROW_BYTES (sizeof(float) * (GAL_DIM + 2) + sizeof(uint16_t) * GAL_DIM + sizeof(int64_t))

struct gal_snap {
    atomic_long refs;
    _Atomic int64_t seq; /* the one field that moves: a write that added no face (gal_index_update) */
    int64_t reshape; /* the store's reshape sequence when loaded (gal_index_update) */
    int64_t max_id;  /* the highest face id held */
    size_t n, n_sub;
    float *mat;        /* n x GAL_DIM */
    float *norm2;      /* n */
    uint16_t *half;    /* n x GAL_DIM: mat in IEEE half precision, what the search scans */
    float *hnorm2;     /* n: squared norms of the half rows */
    int64_t *ids;      /* n */
    size_t *sub_start; /* n_sub + 1: subject s owns rows [sub_start[s], sub_start[s + 1]) */
    char **names;      /* n_sub, into pool */
    char *pool;
    size_t bytes;
};

struct gal_index {
    pthread_mutex_t mu;
    struct gal_snap *cur;
};

static void snap_free(struct gal_snap *s)
{
    if (!s)
        return;
    free(s->mat);
    free(s->norm2);
    free(s->half);
    free(s->hnorm2);
    free(s->ids);
    free(s->sub_start);
    free(s->names);
    free(s->pool);
    free(s);
}

void gal_snap_release(struct gal_snap *snap)
{
    if (snap && atomic_fetch_sub(&snap->refs, 1) == 1)
        snap_free(snap);
}

size_t gal_snap_faces(const struct gal_snap *snap) { return snap->n; }
size_t gal_snap_subjects(const struct gal_snap *snap) { return snap->n_sub; }
int64_t gal_snap_seq(const struct gal_snap *snap) { return atomic_load(&((struct gal_snap *)snap)->seq); }
size_t gal_snap_bytes(const struct gal_snap *snap) { return snap->bytes; }

struct gal_index *gal_index_new(void)
{
    struct gal_index *ix = calloc(1, sizeof *ix);
    struct gal_snap *s = calloc(1, sizeof *s);
    size_t *start = calloc(1, sizeof *start);
    if (!ix || !s || !start || pthread_mutex_init(&ix->mu, NULL) != 0) {
        free(ix);
        free(s);
        free(start);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->sub_start = start;
    s->seq = -1;
    ix->cur = s;
    return ix;
}

void gal_index_free(struct gal_index *ix)
{
    if (!ix)
        return;
    gal_snap_release(ix->cur);
    pthread_mutex_destroy(&ix->mu);
    free(ix);
}

struct gal_snap *gal_index_acquire(struct gal_index *ix)
{
    pthread_mutex_lock(&ix->mu);
    struct gal_snap *s = ix->cur;
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&ix->mu);
    return s;
}

int64_t gal_index_seq(struct gal_index *ix)
{
    struct gal_snap *s = gal_index_acquire(ix);
    int64_t seq = s->seq;
    gal_snap_release(s);
    return seq;
}

/* ---- building a snapshot from a store scan ---- */

/* Row r of mat, norm2, half and hnorm2 from emb. */
static void set_row(struct gal_snap *s, size_t r, const float *emb)
{
    float *row = s->mat + r * GAL_DIM, back[GAL_DIM];
    uint16_t *h = s->half + r * GAL_DIM;
    memcpy(row, emb, GAL_DIM * sizeof *row);
    gal_f16_from_f32(h, row, GAL_DIM);
    gal_f16_to_f32(back, h, GAL_DIM);
    double n2 = 0, h2 = 0;
    for (int k = 0; k < GAL_DIM; k++) {
        n2 += (double)row[k] * row[k];
        h2 += (double)back[k] * back[k];
    }
    s->norm2[r] = (float)n2;
    s->hnorm2[r] = (float)h2;
}

struct builder {
    struct gal_snap *s;
    size_t cap, sub_cap, pool_len, pool_cap;
    size_t *name_off; /* offsets into pool until the end (pool moves while growing) */
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int build_row(void *user, const char *name, const struct gal_face *f, struct gal_err *err)
{
    struct builder *b = user;
    struct gal_snap *s = b->s;
    int new_subject = s->n_sub == 0 || strcmp(b->s->pool + b->name_off[s->n_sub - 1], name) != 0;
    if (new_subject) {
        size_t len = strlen(name) + 1, sc = b->sub_cap, sc2 = b->sub_cap;
        if (grow((void **)&b->name_off, &sc, s->n_sub + 1, sizeof *b->name_off) ||
            grow((void **)&s->sub_start, &sc2, s->n_sub + 2, sizeof *s->sub_start) ||
            grow((void **)&s->pool, &b->pool_cap, b->pool_len + len, 1))
            return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory building the index");
        b->sub_cap = sc < sc2 ? sc : sc2;
        memcpy(s->pool + b->pool_len, name, len);
        b->name_off[s->n_sub] = b->pool_len;
        b->pool_len += len;
        s->sub_start[s->n_sub++] = s->n;
    }
    size_t c1 = b->cap, c2 = b->cap, c3 = b->cap, c4 = b->cap, c5 = b->cap;
    if (grow((void **)&s->mat, &c1, s->n + 1, sizeof(float) * GAL_DIM) ||
        grow((void **)&s->norm2, &c2, s->n + 1, sizeof(float)) || grow((void **)&s->ids, &c3, s->n + 1, sizeof(int64_t)) ||
        grow((void **)&s->half, &c4, s->n + 1, sizeof(uint16_t) * GAL_DIM) ||
        grow((void **)&s->hnorm2, &c5, s->n + 1, sizeof(float)))
        return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory building the index");
    b->cap = c1;
    set_row(s, s->n, f->emb);
    s->ids[s->n] = f->id;
    s->n++;
    if (f->id > s->max_id)
        s->max_id = f->id;
    return 0;
}

int gal_index_load(struct gal_index *ix, struct gal_store *store, struct gal_err *err)
{
    struct builder b = {0};
    b.s = calloc(1, sizeof *b.s);
    if (!b.s)
        return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory building the index");
    atomic_init(&b.s->refs, 1);
    int64_t seq = -1, reshape = -1;
    if (gal_store_scan_since(store, 0, build_row, &b, &seq, &reshape, err)) {
        free(b.name_off);
        snap_free(b.s);
        return -1;
    }
    struct gal_snap *s = b.s;
    s->seq = seq;
    s->reshape = reshape;
    s->names = calloc(s->n_sub + 1, sizeof *s->names);
    size_t *start = realloc(s->sub_start, (s->n_sub + 1) * sizeof *start);
    if (!s->names || !start) {
        if (start)
            s->sub_start = start;
        free(b.name_off);
        snap_free(s);
        return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory building the index");
    }
    s->sub_start = start;
    s->sub_start[s->n_sub] = s->n;
    for (size_t i = 0; i < s->n_sub; i++)
        s->names[i] = s->pool + b.name_off[i];
    free(b.name_off);
    s->bytes = sizeof *s + b.cap * (ROW_BYTES) + b.pool_cap +
               (s->n_sub + 1) * (sizeof(size_t) + sizeof(char *));

    pthread_mutex_lock(&ix->mu);
    struct gal_snap *old = ix->cur;
    ix->cur = s;
    pthread_mutex_unlock(&ix->mu);
    gal_snap_release(old);
    return 0;
}

/* ---- incremental update ---- */

#define APPEND_MAX 4096 /* more new faces than this: a full load is as cheap */

struct delta {
    size_t n, cap;
    struct gal_face *f;
    char (*name)[GAL_NAME_MAX + 1];
    size_t *sub; /* the subject index each face goes to (old ones, then new ones) */
};

static int collect(void *user, const char *name, const struct gal_face *f, struct gal_err *err)
{
    struct delta *d = user;
    if (d->n == APPEND_MAX) {
        d->n++; /* too many: the caller loads everything */
        return 0;
    }
    if (d->n > APPEND_MAX)
        return 0;
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        struct gal_face *nf = realloc(d->f, cap * sizeof *nf);
        if (nf)
            d->f = nf;
        char(*nn)[GAL_NAME_MAX + 1] = realloc(d->name, cap * sizeof *nn);
        if (nn)
            d->name = nn;
        if (!nf || !nn)
            return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory updating the index");
        d->cap = cap;
    }
    d->f[d->n] = *f;
    snprintf(d->name[d->n++], GAL_NAME_MAX + 1, "%s", name);
    return 0;
}

/* The new snapshot: old's subjects in order, each with its old rows then its new ones, then the new
 * subjects; so every subject's rows stay contiguous, as the search needs. */
static struct gal_snap *merge(const struct gal_snap *old, struct delta *d)
{
    size_t n_new_sub = 0, pool_add = 0;
    d->sub = malloc((d->n + 1) * sizeof *d->sub);
    if (!d->sub)
        return NULL;
    for (size_t i = 0; i < d->n; i++) { /* faces come grouped by subject: one look-up per group */
        if (i > 0 && strcmp(d->name[i], d->name[i - 1]) == 0) {
            d->sub[i] = d->sub[i - 1];
            continue;
        }
        size_t s = 0;
        while (s < old->n_sub && strcmp(old->names[s], d->name[i]) != 0)
            s++;
        if (s == old->n_sub) {
            s = old->n_sub + n_new_sub++;
            pool_add += strlen(d->name[i]) + 1;
        }
        d->sub[i] = s;
    }
    size_t n = old->n + d->n, n_sub = old->n_sub + n_new_sub, pool_old = 0;
    for (size_t i = 0; i < old->n_sub; i++)
        pool_old += strlen(old->names[i]) + 1;
    struct gal_snap *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    s->mat = malloc((n + 1) * GAL_DIM * sizeof *s->mat);
    s->norm2 = malloc((n + 1) * sizeof *s->norm2);
    s->half = malloc((n + 1) * GAL_DIM * sizeof *s->half);
    s->hnorm2 = malloc((n + 1) * sizeof *s->hnorm2);
    s->ids = malloc((n + 1) * sizeof *s->ids);
    s->sub_start = malloc((n_sub + 1) * sizeof *s->sub_start);
    s->names = calloc(n_sub + 1, sizeof *s->names);
    s->pool = malloc(pool_old + pool_add + 1);
    if (!s->mat || !s->norm2 || !s->half || !s->hnorm2 || !s->ids || !s->sub_start || !s->names || !s->pool) {
        snap_free(s);
        return NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < old->n_sub; i++) {
        size_t len = strlen(old->names[i]) + 1;
        memcpy(s->pool + used, old->names[i], len);
        s->names[i] = s->pool + used;
        used += len;
    }
    for (size_t i = 0; i < d->n; i++)
        if (d->sub[i] >= old->n_sub && !s->names[d->sub[i]]) {
            size_t len = strlen(d->name[i]) + 1;
            memcpy(s->pool + used, d->name[i], len);
            s->names[d->sub[i]] = s->pool + used;
            used += len;
        }
    size_t row = 0;
    for (size_t sub = 0; sub < n_sub; sub++) {
        s->sub_start[sub] = row;
        if (sub < old->n_sub) {
            size_t a = old->sub_start[sub], b = old->sub_start[sub + 1];
            memcpy(s->mat + row * GAL_DIM, old->mat + a * GAL_DIM, (b - a) * GAL_DIM * sizeof *s->mat);
            memcpy(s->norm2 + row, old->norm2 + a, (b - a) * sizeof *s->norm2);
            memcpy(s->half + row * GAL_DIM, old->half + a * GAL_DIM, (b - a) * GAL_DIM * sizeof *s->half);
            memcpy(s->hnorm2 + row, old->hnorm2 + a, (b - a) * sizeof *s->hnorm2);
            memcpy(s->ids + row, old->ids + a, (b - a) * sizeof *s->ids);
            row += b - a;
        }
        for (size_t i = 0; i < d->n; i++) {
            if (d->sub[i] != sub)
                continue;
            set_row(s, row, d->f[i].emb);
            s->ids[row++] = d->f[i].id;
        }
    }
    s->sub_start[n_sub] = row;
    s->n = n;
    s->n_sub = n_sub;
    s->max_id = old->max_id;
    for (size_t i = 0; i < d->n; i++)
        if (d->f[i].id > s->max_id)
            s->max_id = d->f[i].id;
    s->bytes = sizeof *s + (n + 1) * (ROW_BYTES) + pool_old + pool_add +
               (n_sub + 1) * (sizeof(size_t) + sizeof(char *));
    return s;
}

int gal_index_update(struct gal_index *ix, struct gal_store *store, struct gal_err *err)
{
    struct gal_snap *old = gal_index_acquire(ix);
    struct delta d = {0};
    int64_t seq = -1, reshape = -1;
    int rc = 0;
    if (old->seq < 0 || gal_store_scan_since(store, old->max_id, collect, &d, &seq, &reshape, err) ||
        reshape != old->reshape || d.n > APPEND_MAX) {
        rc = gal_index_load(ix, store, err); /* first load, a removal or rename since, or a bulk import */
    } else if (seq != old->seq && d.n == 0) {
        atomic_store(&old->seq, seq); /* e.g. a subject created: nothing to search changed */
    } else if (seq != old->seq) {
        struct gal_snap *s = merge(old, &d);
        if (!s) {
            rc = gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory updating the index");
        } else {
            s->seq = seq;
            s->reshape = reshape;
            pthread_mutex_lock(&ix->mu);
            struct gal_snap *prev = ix->cur;
            ix->cur = s;
            pthread_mutex_unlock(&ix->mu);
            gal_snap_release(prev);
        }
    }
    free(d.f), free(d.name), free(d.sub);
    gal_snap_release(old);
    return rc;
}

/* ---- search ---- */

static double exact_distance(const float *a, const float *b)
{
    double d = 0;
    for (int k = 0; k < GAL_DIM; k++) {
        double t = (double)a[k] - b[k];
        d += t * t;
    }
    return sqrt(d);
}

/* The scan: for every query and subject, its nearest row by the estimate |q|^2 + |g|^2 - 2 q.g, over
 * the half rows (gal_f16_dots: each row read once, converted in registers) or the float ones (BLAS).
 * best and best_row are nq x n_sub. */
static void scan(const struct gal_snap *s, const float *queries, size_t nq, int half, const float *qn, float *dots,
                 float *best, size_t *best_row)
{
    const float *norm = half ? s->hnorm2 : s->norm2;
    size_t sub = 0; /* the subject of row r0 */
    size_t block = half ? BLOCK_HALF : BLOCK_FLOAT;
    for (size_t r0 = 0; r0 < s->n; r0 += block) {
        size_t rows = s->n - r0 < block ? s->n - r0 : block;
        const float *g = s->mat + r0 * GAL_DIM;
        /* dots[q][r] = queries[q] . g[r] */
        if (half)
            gal_f16_dots(dots, s->half + r0 * GAL_DIM, rows, queries, nq);
        else if (nq == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)rows, GAL_DIM, 1.0f, g, GAL_DIM, queries, 1, 0.0f, dots, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)rows, GAL_DIM, 1.0f, queries, GAL_DIM,
                        g, GAL_DIM, 0.0f, dots, (int)rows);
        size_t sub0 = sub;
        for (size_t q = 0; q < nq; q++) {
            sub = sub0;
            const float *dq = dots + q * rows;
            float *bq = best + q * s->n_sub;
            size_t *brq = best_row + q * s->n_sub;
            for (size_t r = 0; r < rows; r++) {
                size_t row = r0 + r;
                while (row >= s->sub_start[sub + 1])
                    sub++;
                float d2 = qn[q] + norm[row] - 2.0f * dq[r];
                if (d2 < bq[sub])
                    bq[sub] = d2, brq[sub] = row;
            }
        }
    }
}

#define KMAX 64 /* the most subjects one query returns */

/* The best c subjects of one query by the scan's estimate, into order[] (ascending); returns how many. */
static size_t shortlist(const float *bq, size_t n_sub, size_t c, size_t *order)
{
    size_t k = 0;
    for (size_t j = 0; j < n_sub; j++) {
        if (k == c && bq[j] >= bq[order[k - 1]])
            continue;
        size_t at = k < c ? k++ : c - 1;
        while (at > 0 && bq[order[at - 1]] > bq[j]) {
            order[at] = order[at - 1];
            at--;
        }
        order[at] = j;
    }
    return k;
}

/* The exact re-ranking: each shortlisted subject's nearest face by the distance in double over all its
 * float rows, the shortlist sorted by it (ties: the subject's order in the snapshot), the first kmax
 * into o. So the answer is the exact one whenever the exact top subjects are on the shortlist. */
static size_t rerank(const struct gal_snap *s, const float *q, const size_t *order, size_t c, size_t kmax,
                     struct gal_candidate *o)
{
    double dist[KMAX + RERANK];
    size_t row_of[KMAX + RERANK], sub_of[KMAX + RERANK];
    for (size_t j = 0; j < c; j++) {
        size_t sub = order[j], best = s->sub_start[sub];
        double bd = INFINITY;
        for (size_t r = s->sub_start[sub]; r < s->sub_start[sub + 1]; r++) {
            double d = exact_distance(q, s->mat + r * GAL_DIM);
            if (d < bd)
                bd = d, best = r;
        }
        size_t at = j;
        while (at > 0 && (dist[at - 1] > bd || (dist[at - 1] == bd && sub_of[at - 1] > sub))) {
            dist[at] = dist[at - 1], row_of[at] = row_of[at - 1], sub_of[at] = sub_of[at - 1];
            at--;
        }
        dist[at] = bd, row_of[at] = best, sub_of[at] = sub;
    }
    size_t k = c < kmax ? c : kmax;
    for (size_t j = 0; j < k; j++) {
        o[j].subject = s->names[sub_of[j]];
        o[j].face_id = s->ids[row_of[j]];
        o[j].distance = (float)dist[j];
    }
    return k;
}

static int search(const struct gal_snap *s, const float *queries, size_t nq, size_t top_k, int half,
                  struct gal_candidate *out, size_t *n_out, struct gal_err *err)
{
    for (size_t q = 0; q < nq; q++)
        n_out[q] = 0;
    if (nq == 0 || top_k == 0 || s->n == 0)
        return 0;
    for (size_t q = 0; q < nq; q++)
        if (gal_embedding_check(queries + q * GAL_DIM, err))
            return -1;
    float *dots = malloc(nq * (half ? BLOCK_HALF : BLOCK_FLOAT) * sizeof *dots);
    float *best = malloc(nq * s->n_sub * sizeof *best);
    size_t *best_row = malloc(nq * s->n_sub * sizeof *best_row);
    float *qn = malloc(nq * sizeof *qn);
    if (!dots || !best || !best_row || !qn) {
        free(dots), free(best), free(best_row), free(qn);
        return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory searching the gallery");
    }
    for (size_t q = 0; q < nq; q++) {
        double n2 = 0;
        for (int k = 0; k < GAL_DIM; k++)
            n2 += (double)queries[q * GAL_DIM + k] * queries[q * GAL_DIM + k];
        qn[q] = (float)n2;
    }
    for (size_t i = 0; i < nq * s->n_sub; i++)
        best[i] = INFINITY, best_row[i] = 0;
    scan(s, queries, nq, half, qn, dots, best, best_row);
    size_t kmax = top_k < KMAX ? top_k : KMAX;
    for (size_t q = 0; q < nq; q++) {
        size_t order[KMAX + RERANK];
        size_t c = shortlist(best + q * s->n_sub, s->n_sub, kmax + RERANK, order);
        n_out[q] = rerank(s, queries + q * GAL_DIM, order, c, kmax, out + q * top_k);
    }
    free(dots), free(best), free(best_row), free(qn);
    return 0;
}

int gal_snap_search(const struct gal_snap *snap, const float *queries, size_t nq, size_t top_k,
                    struct gal_candidate *out, size_t *n_out, struct gal_err *err)
{
    return search(snap, queries, nq, top_k, 1, out, n_out, err);
}

int gal_snap_search_exact(const struct gal_snap *snap, const float *queries, size_t nq, size_t top_k,
                          struct gal_candidate *out, size_t *n_out, struct gal_err *err)
{
    return search(snap, queries, nq, top_k, 0, out, n_out, err);
}
