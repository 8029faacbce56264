/* gal_store.c - the gallery's store logic, once for both backends: validation, transactions, the
 * change sequence. The SQL here runs unchanged on SQLite and PostgreSQL (gal_db.h).
 *
 * Every write transaction bumps the sequence FIRST: on PostgreSQL that takes the row lock of gal_state,
 * which serializes writers (two requests creating the same subject cannot both pass the existence
 * check); on SQLite BEGIN IMMEDIATE already holds the write lock. */
#include "gal.h"
#include "gal_db.h"
#include "gal_store_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>


int gal_err_set(struct gal_err *err, enum gal_err_kind kind, const char *stmt, const char *fmt, ...)
{
    if (!err)
        return -1;
    err->kind = kind;
    snprintf(err->stmt, sizeof err->stmt, "%s", stmt ? stmt : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

const char *gal_err_format(const struct gal_err *err, char *buf, size_t size)
{
    if (err->stmt[0])
        snprintf(buf, size, "%s (in: %s)", err->msg, err->stmt);
    else
        snprintf(buf, size, "%s", err->msg);
    return buf;
}

/* Length of the UTF-8 sequence at p (1-4), or 0 if it is not valid (overlong, surrogate, > U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
    unsigned c = p[0];
    size_t n;
    unsigned cp;
    if (c < 0x80)
        return 1;
    else if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (n > left)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
        return 0;
    /* C1 control characters (U+0080..U+009F) are control characters too. */
    if (n == 2 && cp >= 0x80 && cp <= 0x9F)
        return 0;
    return n;
}

int gal_name_check(const char *name, struct gal_err *err)
{
    if (!name)
        return gal_err_set(err, GAL_ERR_INVALID, NULL, "name is missing");
    size_t len = strlen(name);
    if (len == 0)
        return gal_err_set(err, GAL_ERR_INVALID, NULL, "name is empty");
    if (len > GAL_NAME_MAX)
        return gal_err_set(err, GAL_ERR_INVALID, NULL, "name is %zu bytes long; at most %d are allowed", len,
                           GAL_NAME_MAX);
    const unsigned char *p = (const unsigned char *)name;
    for (size_t i = 0; i < len;) {
        if (p[i] < 0x20 || p[i] == 0x7F)
            return gal_err_set(err, GAL_ERR_INVALID, NULL, "name has a control character at byte %zu", i);
        if (p[i] == '/')
            return gal_err_set(err, GAL_ERR_INVALID, NULL, "name must not contain '/'");
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            return gal_err_set(err, GAL_ERR_INVALID, NULL,
                               "name is not valid UTF-8 (or has a control character) at byte %zu", i);
        i += n;
    }
    return 0;
}

int gal_fingerprint_check(const char *fp, struct gal_err *err)
{
    size_t n = fp ? strlen(fp) : 0;
    if (n != GAL_FP_HEX)
        return gal_err_set(err, GAL_ERR_INVALID, NULL, "a model fingerprint is %d hex digits, not %zu",
                           GAL_FP_HEX, n);
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)fp[i]) || isupper((unsigned char)fp[i]))
            return gal_err_set(err, GAL_ERR_INVALID, NULL, "a model fingerprint is lower-case hex");
    return 0;
}

int gal_embedding_check(const float emb[GAL_DIM], struct gal_err *err)
{
    for (int i = 0; i < GAL_DIM; i++)
        if (!isfinite(emb[i]))
            return gal_err_set(err, GAL_ERR_INVALID, NULL, "embedding value %d is not a finite number", i);
    return 0;
}

const char *gal_spec_redact(const char *spec, char *buf, size_t size)
{
    /* URI form: scheme://user:password@host... -> the password becomes ***; key/value form
     * password=... likewise. */
    snprintf(buf, size, "%s", spec ? spec : "");
    char *scheme = strstr(buf, "://");
    if (scheme) {
        char *auth = scheme + 3;
        char *at = strpbrk(auth, "@/?");
        if (at && *at == '@') {
            char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon) {
                char tail[1024];
                snprintf(tail, sizeof tail, "%s", at);
                snprintf(colon + 1, size - (size_t)(colon + 1 - buf), "***%s", tail);
            }
        }
    }
    /* password=... in the query string or in a key/value conninfo */
    for (char *p = buf; (p = strstr(p, "password=")) != NULL;) {
        char *v = p + 9;
        char *end = v + strcspn(v, "& ");
        char tail[1024];
        snprintf(tail, sizeof tail, "%s", end);
        snprintf(v, size - (size_t)(v - buf), "***%s", tail);
        p = v + 3;
    }
    return buf;
}

int64_t gal_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- row readers ---- */

int gal_row_int(void *user, const struct gal_val *c, int n, struct gal_err *err)
{
    (void)err;
    int64_t *out = user;
    for (int i = 0; i < n; i++)
        out[i] = c[i].t == GAL_V_INT ? c[i].i : (c[i].t == GAL_V_REAL ? (int64_t)c[i].r : -1);
    return 0;
}

int gal_row_text(void *user, const struct gal_val *c, int n, struct gal_err *err)
{
    (void)err;
    char *out = user;
    if (n >= 1 && c[0].t == GAL_V_TEXT)
        snprintf(out, GAL_NAME_MAX + 1, "%s", c[0].s);
    else
        out[0] = '\0';
    return 0;
}

int gal_migrate_steps(void *db, int64_t v, const char *const *migrations, int n, const char *version_stmt,
                      int (*script)(void *db, const char *sql, struct gal_err *err), struct gal_err *err)
{
    if (v < 0) /* no version recorded: a new database */
        v = 0;
    if (v > n)
        return gal_err_set(err, GAL_ERR_DB, version_stmt,
                           "the gallery's schema is version %lld, newer than this visiond's (%d): use a newer visiond",
                           (long long)v, n);
    for (; v < n; v++)
        if (script(db, migrations[v], err))
            return -1;
    return 0;
}

/* ---- open ---- */

const char *gal_store_backend(const struct gal_store *s) { return s->ops->name; }
const char *gal_store_fingerprint(const struct gal_store *s) { return s->fingerprint; }
int64_t gal_store_last_write_seq(const struct gal_store *s) { return s->last_seq; }

static int is_pg(const char *spec)
{
    return strncmp(spec, "postgres://", 11) == 0 || strncmp(spec, "postgresql://", 13) == 0;
}

/* The gallery's fingerprint must be ours, or unset with no faces stored (then it becomes ours). */
static int adopt_fingerprint(struct gal_store *s, struct gal_err *err)
{
    const struct gal_db_ops *o = s->ops;
    if (o->begin(s->db, 1, err))
        return -1;
    char fp[GAL_NAME_MAX + 1] = "";
    int64_t faces = 0;
    const char *q1 = "SELECT fingerprint FROM gal_state WHERE id = 1";
    const char *q2 = "SELECT count(*) FROM faces";
    if (o->exec(s->db, q1, NULL, 0, gal_row_text, fp, NULL, err) || o->exec(s->db, q2, NULL, 0, gal_row_int, &faces, NULL, err))
        goto fail;
    if (fp[0] && strcmp(fp, s->fingerprint) != 0) {
        if (faces > 0) {
            gal_err_set(err, GAL_ERR_FINGERPRINT, q1,
                        "the gallery's %lld faces were made by another recognition model (fingerprint %.12s..., "
                        "this one is %.12s...): export them with that model or enroll again",
                        (long long)faces, fp, s->fingerprint);
            goto fail;
        }
    }
    if (strcmp(fp, s->fingerprint) != 0) {
        struct gal_val p[1] = {gal_text(s->fingerprint)};
        const char *u = "UPDATE gal_state SET fingerprint = $1 WHERE id = 1";
        if (o->exec(s->db, u, p, 1, NULL, NULL, NULL, err))
            goto fail;
        if (o->bump(s->db, &s->last_seq, err))
            goto fail;
        return o->commit(s->db, err);
    }
    o->rollback(s->db);
    return 0;
fail:
    o->rollback(s->db);
    return -1;
}

struct gal_store *gal_store_open(const char *spec, const char *fingerprint, struct gal_err *err)
{
    if (!spec || !*spec) {
        gal_err_set(err, GAL_ERR_INVALID, NULL, "no gallery given (sqlite:PATH or postgres://...)");
        return NULL;
    }
    if (gal_fingerprint_check(fingerprint, err))
        return NULL;
    struct gal_store *s = calloc(1, sizeof *s);
    if (!s) {
        gal_err_set(err, GAL_ERR_NOMEM, NULL, "out of memory");
        return NULL;
    }
    snprintf(s->fingerprint, sizeof s->fingerprint, "%s", fingerprint);
    if (is_pg(spec)) {
        s->ops = &gal_pg_ops;
        s->db = gal_pg_open(spec, err);
    } else {
        const char *path = strncmp(spec, "sqlite:", 7) == 0 ? spec + 7 : spec;
        if (!*path) {
            free(s);
            gal_err_set(err, GAL_ERR_INVALID, NULL, "sqlite: needs a file path");
            return NULL;
        }
        s->ops = &gal_sqlite_ops;
        s->db = gal_sqlite_open(path, err);
    }
    if (!s->db) {
        free(s);
        return NULL;
    }
    if (s->ops->migrate(s->db, err) || adopt_fingerprint(s, err)) {
        gal_store_free(s);
        return NULL;
    }
    return s;
}

void gal_store_free(struct gal_store *s)
{
    if (!s)
        return;
    s->ops->close(s->db);
    free(s);
}

/* ---- writes ---- */

/* Every write transaction records a random token in gal_writes. When COMMIT fails because the
 * connection broke, the transaction may or may not have committed; looking the token up once the
 * database answers again tells which, so a committed write is acknowledged (and a caller's retry does
 * not apply it twice) and an uncommitted one is not. Tokens older than a day are pruned. */
#define OUTCOME_WAIT_MS 15000
#define TOKEN_KEEP_MS (24LL * 3600 * 1000)

static int write_begin(struct gal_store *s, int64_t *seq, struct gal_err *err)
{
    if (s->ops->begin(s->db, 1, err))
        return -1;
    unsigned char r[16];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        s->ops->rollback(s->db);
        return gal_err_set(err, GAL_ERR_DB, NULL, "getrandom failed");
    }
    for (int i = 0; i < 16; i++)
        snprintf(s->token + 2 * i, 3, "%02x", r[i]);
    int64_t t = gal_now_ms();
    struct gal_val p[2] = {gal_text(s->token), gal_int(t)};
    struct gal_val old[1] = {gal_int(t - TOKEN_KEEP_MS)};
    if (s->ops->bump(s->db, seq, err) ||
        s->ops->exec(s->db, "INSERT INTO gal_writes (token, at_ms) VALUES ($1, $2)", p, 2, NULL, NULL, NULL, err) ||
        (*seq % 256 == 0 &&
         s->ops->exec(s->db, "DELETE FROM gal_writes WHERE at_ms < $1", old, 1, NULL, NULL, NULL, err))) {
        s->ops->rollback(s->db);
        return -1;
    }
    return 0;
}

/* After a COMMIT that failed for want of the database: 1 if the transaction committed, 0 if not, -1 if
 * that could not be learnt within OUTCOME_WAIT_MS. */
static int committed(struct gal_store *s)
{
    const char *q = "SELECT 1 FROM gal_writes WHERE token = $1";
    struct gal_val p[1] = {gal_text(s->token)};
    for (int waited = 0; waited < OUTCOME_WAIT_MS; waited += 200) {
        int64_t found = 0;
        struct gal_err e;
        if (s->ops->exec(s->db, q, p, 1, gal_row_int, &found, NULL, &e) == 0)
            return found == 1;
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
    }
    return -1;
}

static int write_end(struct gal_store *s, int64_t seq, int rc, struct gal_err *err)
{
    if (rc) {
        s->ops->rollback(s->db);
        return -1;
    }
    struct gal_err e = {0};
    if (s->ops->commit(s->db, &e)) {
        int c = e.kind == GAL_ERR_UNAVAILABLE ? committed(s) : 0;
        if (c == 1)
            goto done;
        if (err)
            *err = e;
        if (c < 0)
            snprintf(err ? err->msg : e.msg, sizeof e.msg, "%s",
                     "the database went away during COMMIT and has not come back: the write's outcome is unknown");
        return -1;
    }
done:
    s->last_seq = seq;
    return 0;
}

/* Inside a write that removes or renames: indexes must rebuild rather than append (gal_index_update). */
static int mark_reshape(struct gal_store *s, struct gal_err *err)
{
    return s->ops->exec(s->db, "UPDATE gal_state SET reshape = seq WHERE id = 1", NULL, 0, NULL, NULL, NULL, err);
}

/* The subject's row id, or -1 with GAL_ERR_NOT_FOUND. */
int gal_subject_id(struct gal_store *s, const char *name, int64_t *id, struct gal_err *err)
{
    const char *q = "SELECT id FROM subjects WHERE name = $1";
    struct gal_val p[1] = {gal_text(name)};
    *id = -1;
    if (s->ops->exec(s->db, q, p, 1, gal_row_int, id, NULL, err))
        return -1;
    if (*id < 0)
        return gal_err_set(err, GAL_ERR_NOT_FOUND, NULL, "no subject is named \"%s\"", name);
    return 0;
}

/* Inside a write: the gallery's fingerprint must still be ours (another process may have re-keyed an
 * empty gallery to another model since we opened it); an unset one becomes ours. */
static int claim_fingerprint(struct gal_store *s, struct gal_err *err)
{
    char fp[GAL_NAME_MAX + 1] = "";
    const char *qf = "SELECT fingerprint FROM gal_state WHERE id = 1";
    int rc = s->ops->exec(s->db, qf, NULL, 0, gal_row_text, fp, NULL, err);
    if (!rc && fp[0] && strcmp(fp, s->fingerprint) != 0)
        rc = gal_err_set(err, GAL_ERR_FINGERPRINT, qf, "the gallery now belongs to another recognition model");
    if (!rc && !fp[0]) {
        struct gal_val p[1] = {gal_text(s->fingerprint)};
        rc = s->ops->exec(s->db, "UPDATE gal_state SET fingerprint = $1 WHERE id = 1", p, 1, NULL, NULL, NULL, err);
    }
    return rc;
}

int gal_subject_create(struct gal_store *s, const char *name, struct gal_err *err)
{
    if (gal_name_check(name, err))
        return -1;
    int64_t seq;
    if (write_begin(s, &seq, err))
        return -1;
    const char *q = "INSERT INTO subjects (name, created_ms) VALUES ($1, $2)";
    struct gal_val p[2] = {gal_text(name), gal_int(gal_now_ms())};
    int rc = s->ops->exec(s->db, q, p, 2, NULL, NULL, NULL, err);
    if (rc && err && err->kind == GAL_ERR_CONFLICT)
        gal_err_set(err, GAL_ERR_CONFLICT, q, "a subject named \"%s\" exists already", name);
    return write_end(s, seq, rc, err);
}

int gal_subject_rename(struct gal_store *s, const char *name, const char *new_name, struct gal_err *err)
{
    if (gal_name_check(name, err) || gal_name_check(new_name, err))
        return -1;
    int64_t seq, changed = 0;
    if (write_begin(s, &seq, err))
        return -1;
    const char *q = "UPDATE subjects SET name = $1 WHERE name = $2";
    struct gal_val p[2] = {gal_text(new_name), gal_text(name)};
    int rc = s->ops->exec(s->db, q, p, 2, NULL, NULL, &changed, err);
    if (rc && err && err->kind == GAL_ERR_CONFLICT)
        gal_err_set(err, GAL_ERR_CONFLICT, q, "a subject named \"%s\" exists already", new_name);
    if (!rc && changed == 0)
        rc = gal_err_set(err, GAL_ERR_NOT_FOUND, NULL, "no subject is named \"%s\"", name);
    if (!rc)
        rc = mark_reshape(s, err);
    return write_end(s, seq, rc, err);
}

int gal_subject_delete(struct gal_store *s, const char *name, int64_t *n_faces, struct gal_err *err)
{
    if (gal_name_check(name, err))
        return -1;
    int64_t seq, id, faces = 0;
    if (write_begin(s, &seq, err))
        return -1;
    int rc = gal_subject_id(s, name, &id, err);
    if (!rc) {
        struct gal_val p[1] = {gal_int(id)};
        rc = s->ops->exec(s->db, "DELETE FROM faces WHERE subject_id = $1", p, 1, NULL, NULL, &faces, err);
        if (!rc)
            rc = s->ops->exec(s->db, "DELETE FROM subjects WHERE id = $1", p, 1, NULL, NULL, NULL, err);
        if (!rc)
            rc = mark_reshape(s, err);
    }
    if (write_end(s, seq, rc, err))
        return -1;
    if (n_faces)
        *n_faces = faces;
    return 0;
}

int gal_faces_add(struct gal_store *s, const char *name, int create, struct gal_face *faces,
                  size_t n, int64_t *ids, struct gal_err *err)
{
    if (gal_name_check(name, err))
        return -1;
    if (n == 0)
        return gal_err_set(err, GAL_ERR_INVALID, NULL, "no faces to add");
    for (size_t i = 0; i < n; i++) {
        if (strcmp(faces[i].fingerprint, s->fingerprint) != 0)
            return gal_err_set(err, GAL_ERR_FINGERPRINT, NULL,
                               "face %zu was made by another recognition model (fingerprint %.12s..., the "
                               "gallery's is %.12s...)",
                               i, faces[i].fingerprint, s->fingerprint);
        if (gal_embedding_check(faces[i].emb, err))
            return -1;
    }
    int64_t seq, sid = -1;
    if (write_begin(s, &seq, err))
        return -1;
    int rc = claim_fingerprint(s, err);
    if (!rc) {
        const char *q = "SELECT id FROM subjects WHERE name = $1";
        struct gal_val p[1] = {gal_text(name)};
        rc = s->ops->exec(s->db, q, p, 1, gal_row_int, &sid, NULL, err);
    }
    if (!rc && sid < 0) {
        if (!create) {
            rc = gal_err_set(err, GAL_ERR_NOT_FOUND, NULL, "no subject is named \"%s\"", name);
        } else {
            const char *q = "INSERT INTO subjects (name, created_ms) VALUES ($1, $2) RETURNING id";
            struct gal_val p[2] = {gal_text(name), gal_int(gal_now_ms())};
            rc = s->ops->exec(s->db, q, p, 2, gal_row_int, &sid, NULL, err);
        }
    }
    const char *qi = "INSERT INTO faces (subject_id, fingerprint, embedding, det_score, x_min, y_min, x_max, "
                     "y_max, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
    int64_t t = gal_now_ms();
    for (size_t i = 0; !rc && i < n; i++) {
        const struct gal_face *f = &faces[i];
        struct gal_val p[9] = {gal_int(sid),         gal_text(s->fingerprint), gal_blob(f->emb, sizeof f->emb),
                               gal_real(f->det_score), gal_real(f->box[0]),     gal_real(f->box[1]),
                               gal_real(f->box[2]),  gal_real(f->box[3]),     gal_int(t)};
        int64_t id = -1;
        rc = s->ops->exec(s->db, qi, p, 9, gal_row_int, &id, NULL, err);
        if (!rc && ids)
            ids[i] = id;
        faces[i].id = id;
    }
    if (write_end(s, seq, rc, err))
        return -1;
    for (size_t i = 0; i < n; i++)
        faces[i].created_ms = t;
    return 0;
}

int gal_import_begin(struct gal_store *s, struct gal_err *err)
{
    s->import_name[0] = '\0';
    s->import_sid = -1;
    if (write_begin(s, &s->import_seq, err))
        return -1;
    int rc = claim_fingerprint(s, err);
    if (rc)
        s->ops->rollback(s->db);
    return rc;
}

int gal_import_face(struct gal_store *s, const char *name, const struct gal_face *f, struct gal_err *err)
{
    if (gal_name_check(name, err) || gal_embedding_check(f->emb, err))
        return -1;
    if (strcmp(f->fingerprint, s->fingerprint) != 0)
        return gal_err_set(err, GAL_ERR_FINGERPRINT, NULL,
                           "a face of another recognition model (fingerprint %.12s..., the gallery's is %.12s...)",
                           f->fingerprint, s->fingerprint);
    if (strcmp(name, s->import_name) != 0) {
        struct gal_val p[2] = {gal_text(name), gal_int(gal_now_ms())};
        s->import_sid = -1;
        if (s->ops->exec(s->db, "SELECT id FROM subjects WHERE name = $1", p, 1, gal_row_int, &s->import_sid, NULL, err))
            return -1;
        if (s->import_sid < 0 &&
            s->ops->exec(s->db, "INSERT INTO subjects (name, created_ms) VALUES ($1, $2) RETURNING id", p, 2,
                         gal_row_int, &s->import_sid, NULL, err))
            return -1;
        snprintf(s->import_name, sizeof s->import_name, "%s", name);
    }
    const char *qi = "INSERT INTO faces (subject_id, fingerprint, embedding, det_score, x_min, y_min, x_max, "
                     "y_max, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    struct gal_val p[9] = {gal_int(s->import_sid), gal_text(s->fingerprint), gal_blob(f->emb, sizeof f->emb),
                           gal_real(f->det_score),  gal_real(f->box[0]),      gal_real(f->box[1]),
                           gal_real(f->box[2]),    gal_real(f->box[3]),      gal_int(f->created_ms ? f->created_ms : gal_now_ms())};
    return s->ops->exec(s->db, qi, p, 9, NULL, NULL, NULL, err);
}

int gal_import_commit(struct gal_store *s, struct gal_err *err)
{
    return write_end(s, s->import_seq, 0, err);
}

void gal_import_abort(struct gal_store *s)
{
    s->ops->rollback(s->db);
}

int gal_face_delete(struct gal_store *s, int64_t id, char *subject, struct gal_err *err)
{
    int64_t seq;
    char name[GAL_NAME_MAX + 1] = "";
    if (write_begin(s, &seq, err))
        return -1;
    const char *q = "SELECT s.name FROM faces f JOIN subjects s ON s.id = f.subject_id WHERE f.id = $1";
    struct gal_val p[1] = {gal_int(id)};
    int rc = s->ops->exec(s->db, q, p, 1, gal_row_text, name, NULL, err);
    if (!rc && !name[0])
        rc = gal_err_set(err, GAL_ERR_NOT_FOUND, NULL, "no face has the id %lld", (long long)id);
    if (!rc)
        rc = s->ops->exec(s->db, "DELETE FROM faces WHERE id = $1", p, 1, NULL, NULL, NULL, err);
    if (!rc)
        rc = mark_reshape(s, err);
    if (write_end(s, seq, rc, err))
        return -1;
    if (subject)
        snprintf(subject, GAL_NAME_MAX + 1, "%s", name);
    return 0;
}

