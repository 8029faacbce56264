/* gal_read.c - the gallery store's reads (gal.h): subjects, faces, counts, the change sequence and
 * the whole-gallery scan the index is built from, once for both backends (gal_db.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gal.h"
#include "gal_db.h"
#include "gal_store_internal.h"

struct subject_rows {
    struct gal_subject *v;
    size_t n, cap;
};

static int row_subject(void *user, const struct gal_val *c, int n, struct gal_err *err)
{
    struct subject_rows *r = user;
    if (n < 3 || c[0].t != GAL_V_TEXT)
        return gal_err_set(err, GAL_ERR_DB, NULL, "unexpected subject row");
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct gal_subject *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory");
        r->v = v, r->cap = cap;
    }
    struct gal_subject *sub = &r->v[r->n++];
    snprintf(sub->name, sizeof sub->name, "%s", c[0].s);
    sub->created_ms = c[1].i;
    sub->n_faces = c[2].i;
    return 0;
}

#define SUBJECT_COLS "s.name, s.created_ms, (SELECT count(*) FROM faces f WHERE f.subject_id = s.id)"

int gal_subject_get(struct gal_store *s, const char *name, struct gal_subject *out, struct gal_err *err)
{
    if (gal_name_check(name, err))
        return -1;
    struct subject_rows r = {0};
    struct gal_val p[1] = {gal_text(name)};
    if (s->ops->exec(s->db, "SELECT " SUBJECT_COLS " FROM subjects s WHERE s.name = $1", p, 1, row_subject, &r,
                     NULL, err)) {
        free(r.v);
        return -1;
    }
    if (r.n == 0)
        return gal_err_set(err, GAL_ERR_NOT_FOUND, NULL, "no subject is named \"%s\"", name);
    *out = r.v[0];
    free(r.v);
    return 0;
}

int gal_subject_list(struct gal_store *s, const char *after, size_t max, struct gal_subject **out,
                     size_t *n, struct gal_err *err)
{
    struct subject_rows r = {0};
    struct gal_val p[2] = {gal_text(after ? after : ""), gal_int((int64_t)max)};
    if (s->ops->exec(s->db, "SELECT " SUBJECT_COLS " FROM subjects s WHERE s.name > $1 ORDER BY s.name LIMIT $2",
                     p, 2, row_subject, &r, NULL, err)) {
        free(r.v);
        return -1;
    }
    *out = r.v;
    *n = r.n;
    return 0;
}

struct face_rows {
    struct gal_face *v;
    size_t n, cap;
};

/* Columns: id, embedding, fingerprint, det_score, x_min, y_min, x_max, y_max, created_ms. */
#define FACE_COLS "f.id, f.embedding, f.fingerprint, f.det_score, f.x_min, f.y_min, f.x_max, f.y_max, f.created_ms"

static double num(const struct gal_val *v)
{
    return v->t == GAL_V_REAL ? v->r : v->t == GAL_V_INT ? (double)v->i : 0.0;
}

static int face_from_row(struct gal_face *f, const struct gal_val *c, int n, struct gal_err *err)
{
    if (n < 9 || c[1].t != GAL_V_BLOB || c[1].n != sizeof f->emb || c[2].t != GAL_V_TEXT)
        return gal_err_set(err, GAL_ERR_DB, NULL, "a stored face row is malformed (embedding of %zu bytes)",
                           c[1].n);
    f->id = c[0].i;
    memcpy(f->emb, c[1].b, sizeof f->emb);
    snprintf(f->fingerprint, sizeof f->fingerprint, "%s", c[2].s);
    f->det_score = (float)num(&c[3]);
    for (int k = 0; k < 4; k++)
        f->box[k] = (float)num(&c[4 + k]);
    f->created_ms = c[8].i;
    return 0;
}

static int row_face(void *user, const struct gal_val *c, int n, struct gal_err *err)
{
    struct face_rows *r = user;
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        struct gal_face *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory");
        r->v = v, r->cap = cap;
    }
    return face_from_row(&r->v[r->n++], c, n, err);
}

int gal_faces_list(struct gal_store *s, const char *name, struct gal_face **out, size_t *n,
                   struct gal_err *err)
{
    int64_t sid;
    if (gal_name_check(name, err))
        return -1;
    if (s->ops->begin(s->db, 0, err))
        return -1;
    struct face_rows r = {0};
    struct gal_val p[1];
    int rc = gal_subject_id(s, name, &sid, err);
    if (!rc) {
        p[0] = gal_int(sid);
        rc = s->ops->exec(s->db, "SELECT " FACE_COLS " FROM faces f WHERE f.subject_id = $1 ORDER BY f.id", p, 1,
                          row_face, &r, NULL, err);
    }
    s->ops->rollback(s->db);
    if (rc) {
        free(r.v);
        return -1;
    }
    *out = r.v;
    *n = r.n;
    return 0;
}

int gal_store_counts(struct gal_store *s, int64_t *subjects, int64_t *faces, struct gal_err *err)
{
    int64_t v[2] = {0, 0};
    if (s->ops->exec(s->db, "SELECT (SELECT count(*) FROM subjects), (SELECT count(*) FROM faces)", NULL, 0,
                     gal_row_int, v, NULL, err))
        return -1;
    *subjects = v[0];
    *faces = v[1];
    return 0;
}

int gal_store_seq(struct gal_store *s, int64_t *seq, struct gal_err *err)
{
    *seq = -1;
    return s->ops->exec(s->db, GAL_SQL_SEQ, NULL, 0, gal_row_int, seq, NULL, err);
}

int gal_store_wait(struct gal_store *s, int64_t known, int timeout_ms, int64_t *seq, struct gal_err *err)
{
    return s->ops->wait(s->db, known, timeout_ms, seq, err);
}

struct scan_ctx {
    gal_scan_fn fn;
    void *user;
};

static int row_scan(void *user, const struct gal_val *c, int n, struct gal_err *err)
{
    struct scan_ctx *sc = user;
    struct gal_face f;
    if (n < 10 || c[9].t != GAL_V_TEXT)
        return gal_err_set(err, GAL_ERR_DB, NULL, "unexpected scan row");
    if (face_from_row(&f, c, n, err))
        return -1;
    return sc->fn(sc->user, c[9].s, &f, err) ? -1 : 0;
}

int gal_store_scan_since(struct gal_store *s, int64_t after_id, gal_scan_fn fn, void *user, int64_t *seq,
                         int64_t *reshape, struct gal_err *err)
{
    if (s->ops->begin(s->db, 0, err))
        return -1;
    struct scan_ctx sc = {fn, user};
    int64_t state[2] = {-1, -1};
    struct gal_val p[1] = {gal_int(after_id)};
    int rc = s->ops->exec(s->db, "SELECT seq, reshape FROM gal_state WHERE id = 1", NULL, 0, gal_row_int, state, NULL,
                          err);
    if (!rc)
        rc = s->ops->exec(s->db,
                          "SELECT " FACE_COLS ", s.name FROM faces f JOIN subjects s ON s.id = f.subject_id "
                          "WHERE f.id > $1 ORDER BY f.subject_id, f.id",
                          p, 1, row_scan, &sc, NULL, err);
    s->ops->rollback(s->db); /* read-only: nothing to keep */
    *seq = state[0];
    if (reshape)
        *reshape = state[1];
    return rc;
}

int gal_store_scan(struct gal_store *s, gal_scan_fn fn, void *user, int64_t *seq, struct gal_err *err)
{
    return gal_store_scan_since(s, 0, fn, user, seq, NULL, err);
}
