/* srv_gallery.c - the gallery of one daemon generation, and its routes that need no face network:
 * subjects and faces by name and id, identify by embedding, /v1/gallery, DeepStack's list and delete.
 *
 * The store's connection is shared by the handlers under a mutex (a write is a few ms: one fsync);
 * identification reads only the index snapshot, so it never waits for a write. Every write waits
 * (bounded) for the follower to load it into the index before answering, so a client identifies what
 * it has just enrolled. Names and face ids are never logged at info level. */
#include "srv_gallery.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "proto_gallery.h"
#include "srv_app.h"
#include "srv_log.h"
#include "srv_sha256.h"

#define SETTLE_MS 5000 /* longest a write waits for the index to hold it */

/* ---- start-up ------------------------------------------------------------------------------ */

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int hash_file(struct srv_sha256 *h, const char *path, char *why, size_t why_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        srv_sha256_update(h, buf, n);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(why, why_size, "%s: read error", path);
        return -1;
    }
    return 0;
}

int srv_gallery_fingerprint(const char *faces_dir, char out[GAL_FP_HEX + 1], char *why, size_t why_size)
{
    /* the manifest first, then the weight files in name order: the model as installed */
    DIR *d = opendir(faces_dir);
    if (!d) {
        snprintf(why, why_size, "%s: %s", faces_dir, strerror(errno));
        return -1;
    }
    char *names[64];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 64)
        if (strncmp(e->d_name, "face_recognition_model", 22) == 0 && (names[n] = strdup(e->d_name)) != NULL)
            n++;
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], name_cmp);
    struct srv_sha256 h;
    srv_sha256_init(&h);
    int rc = 0, manifest = -1;
    for (int i = 0; i < n; i++)
        if (strstr(names[i], "manifest.json"))
            manifest = i;
    if (manifest < 0) {
        snprintf(why, why_size, "%s: no face_recognition_model manifest", faces_dir);
        rc = -1;
    }
    for (int pass = 0; rc == 0 && pass < 2; pass++)
        for (int i = 0; rc == 0 && i < n; i++) {
            if ((pass == 0) != (i == manifest))
                continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", faces_dir, names[i]);
            rc = hash_file(&h, path, why, why_size);
        }
    for (int i = 0; i < n; i++)
        free(names[i]);
    if (rc)
        return -1;
    unsigned char dig[SRV_SHA256_SIZE];
    srv_sha256_final(&h, dig);
    for (int i = 0; i < SRV_SHA256_SIZE; i++)
        snprintf(out + 2 * i, 3, "%02x", dig[i]);
    return 0;
}

int srv_gallery_spec(const struct srv_config *cfg, char *buf, size_t size, char *why, size_t why_size)
{
    if (cfg->gallery[0]) {
        snprintf(buf, size, "%s", cfg->gallery);
        return 0;
    }
    if (mkdir(cfg->data_dir, 0750) != 0 && errno != EEXIST) {
        snprintf(why, why_size, "data_dir %s: %s", cfg->data_dir, strerror(errno));
        return -1;
    }
    if (snprintf(buf, size, "sqlite:%s/gallery.db", cfg->data_dir) >= (int)size) {
        snprintf(why, why_size, "data_dir is too long");
        return -1;
    }
    return 0;
}

struct srv_gallery *srv_gallery_open(const char *spec, const char *fingerprint, char *why, size_t why_size,
                                     enum gal_err_kind *kind)
{
    struct gal_err err = {0};
    struct srv_gallery *g = calloc(1, sizeof *g);
    if (kind)
        *kind = GAL_ERR_NOMEM;
    if (!g || !(g->ix = gal_index_new())) {
        snprintf(why, why_size, "out of memory");
        free(g);
        return NULL;
    }
    snprintf(g->fingerprint, sizeof g->fingerprint, "%s", fingerprint);
    pthread_mutex_init(&g->mu, NULL);
    g->store = gal_store_open(spec, fingerprint, &err);
    if (g->store)
        g->follow = gal_follow_start(g->ix, spec, fingerprint, 100, &err);
    if (!g->store || !g->follow) {
        char line[600], red[512];
        snprintf(why, why_size, "gallery %s: %s", gal_spec_redact(spec, red, sizeof red),
                 gal_err_format(&err, line, sizeof line));
        if (kind)
            *kind = err.kind;
        srv_gallery_free(g);
        return NULL;
    }
    return g;
}

void srv_gallery_free(struct srv_gallery *g)
{
    if (!g)
        return;
    gal_follow_stop(g->follow);
    gal_store_free(g->store);
    gal_index_free(g->ix);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

/* The gallery could not be opened because its database was unreachable: what to try again, when. */
struct srv_gallery_retry {
    char spec[4200];
    char fingerprint[GAL_FP_HEX + 1];
    pthread_mutex_t mu; /* guards what follows; held briefly, never during an attempt */
    int connecting;     /* an attempt is running on some request's thread */
    double next_ms;     /* srv_now_ms() before which no attempt starts */
    int delay_ms;       /* the back-off after the next failure */
    int attempts;
    int gave_up;   /* the database answered, but the gallery cannot open (e.g. another model's) */
    char why[480]; /* the last failure */
};

#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS 10000

static void log_loaded(const struct srv_gallery *g, const char *spec, const char *fp, int attempts)
{
    char red[512];
    struct gal_snap *snap = gal_index_acquire(g->ix);
    SRV_LOG(SRV_LOG_INFO, "gallery %s: %zu faces of %zu subjects loaded (model fingerprint %.12s)%s",
            gal_spec_redact(spec, red, sizeof red), gal_snap_faces(snap), gal_snap_subjects(snap), fp,
            attempts ? ", its database reached at last" : "");
    gal_snap_release(snap);
}

void srv_gallery_load(struct srv_app *app)
{
    char dir[4096], fp[GAL_FP_HEX + 1], spec[4200], why[480];
    if (!app->faces) {
        snprintf(app->gallery_error, sizeof app->gallery_error, "the gallery needs the face models: %.400s",
                 app->faces_error[0] ? app->faces_error : "not installed (scripts/fetch-models)");
        return;
    }
    snprintf(dir, sizeof dir, "%s/faces", app->cfg->models);
    enum gal_err_kind kind = GAL_ERR_INVALID;
    struct srv_gallery *g = NULL;
    if (srv_gallery_fingerprint(dir, fp, why, sizeof why) || srv_gallery_spec(app->cfg, spec, sizeof spec, why, sizeof why) ||
        !(g = srv_gallery_open(spec, fp, why, sizeof why, &kind))) {
        struct srv_gallery_retry *r = kind == GAL_ERR_UNAVAILABLE ? calloc(1, sizeof *r) : NULL;
        snprintf(app->gallery_error, sizeof app->gallery_error, "gallery not available: %.440s%s", why,
                 r ? " (tried again on requests)" : "");
        SRV_LOG(SRV_LOG_WARN, "%s", app->gallery_error);
        if (r) {
            snprintf(r->spec, sizeof r->spec, "%s", spec);
            snprintf(r->fingerprint, sizeof r->fingerprint, "%s", fp);
            snprintf(r->why, sizeof r->why, "%s", why);
            pthread_mutex_init(&r->mu, NULL);
            r->next_ms = srv_now_ms() + RETRY_FIRST_MS;
            r->delay_ms = 2 * RETRY_FIRST_MS;
            app->gallery_retry = r;
        }
        return;
    }
    atomic_store_explicit(&app->gallery, g, memory_order_release);
    log_loaded(g, spec, fp, 0);
}

void srv_gallery_retry_free(struct srv_gallery_retry *r)
{
    if (!r)
        return;
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* One attempt, if none is running and the back-off allows; the gallery if it opened. */
static struct srv_gallery *retry_open(struct srv_app *app, struct srv_gallery_retry *r)
{
    pthread_mutex_lock(&r->mu);
    const int go = !r->connecting && !r->gave_up && srv_now_ms() >= r->next_ms;
    r->connecting |= go;
    pthread_mutex_unlock(&r->mu);
    if (!go)
        return NULL;
    char why[480];
    enum gal_err_kind kind = GAL_ERR_UNAVAILABLE;
    struct srv_gallery *g = srv_gallery_open(r->spec, r->fingerprint, why, sizeof why, &kind);
    pthread_mutex_lock(&r->mu);
    const int attempts = ++r->attempts;
    if (g) {
        atomic_store_explicit(&app->gallery, g, memory_order_release);
    } else {
        snprintf(r->why, sizeof r->why, "%s", why);
        r->gave_up = kind != GAL_ERR_UNAVAILABLE;
        r->next_ms = srv_now_ms() + r->delay_ms;
        if (r->gave_up)
            SRV_LOG(SRV_LOG_WARN, "gallery not available (attempt %d; not tried again before a reload): %s",
                    attempts, why);
        else
            SRV_LOG(SRV_LOG_WARN, "gallery not available (attempt %d; the next in %d ms at the earliest): %s",
                    attempts, r->delay_ms, why);
        r->delay_ms = r->delay_ms * 2 < RETRY_MAX_MS ? r->delay_ms * 2 : RETRY_MAX_MS;
    }
    r->connecting = 0;
    pthread_mutex_unlock(&r->mu);
    if (g)
        log_loaded(g, r->spec, r->fingerprint, attempts);
    return g;
}

struct srv_gallery *srv_gallery_get(struct srv_app *app, struct proto_err *e)
{
    struct srv_gallery *g = atomic_load_explicit(&app->gallery, memory_order_acquire);
    struct srv_gallery_retry *r = app->gallery_retry;
    if (g || (r && (g = retry_open(app, r)) != NULL))
        return g;
    if ((g = atomic_load_explicit(&app->gallery, memory_order_acquire)) != NULL) /* opened by another */
        return g;
    if (!r) {
        proto_err_set(e, PROTO_ERR_NOT_READY, NULL, "%s",
                      app->gallery_error[0] ? app->gallery_error : "the gallery is not available on this server");
        return NULL;
    }
    pthread_mutex_lock(&r->mu);
    if (r->gave_up)
        proto_err_set(e, PROTO_ERR_NOT_READY, NULL, "gallery not available: %.440s", r->why);
    else
        proto_err_set(e, PROTO_ERR_GALLERY_UNAVAILABLE, NULL,
                      "the gallery's database is unreachable (%d attempts since start-up; tried again on requests, "
                      "with a back-off): %.300s",
                      r->attempts + 1, r->why);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

void srv_gallery_settle(struct srv_gallery *g, int64_t seq)
{
    if (gal_follow_wait_seq(g->follow, seq, SETTLE_MS) != 0)
        SRV_LOG(SRV_LOG_WARN, "the gallery index has not caught up with change %lld after %d ms", (long long)seq,
                SETTLE_MS);
}

/* ---- shared by the routes ------------------------------------------------------------------ */

/* The generation's gallery, or NULL after answering 503. */
static struct srv_gallery *gallery_of(struct srv_req *req, struct srv_app *app)
{
    struct proto_err e;
    struct srv_gallery *g = srv_gallery_get(app, &e);
    if (!g)
        srv_req_reply_error(req, &e);
    return g;
}

int srv_gallery_err(struct proto_err *e, const struct gal_err *ge, enum proto_code not_found, const char *field)
{
    enum proto_code code;
    switch (ge->kind) {
    case GAL_ERR_INVALID: code = PROTO_ERR_INVALID_PARAM; break;
    case GAL_ERR_NOT_FOUND: code = not_found; break;
    case GAL_ERR_CONFLICT: code = PROTO_ERR_SUBJECT_EXISTS; break;
    case GAL_ERR_FINGERPRINT: code = PROTO_ERR_MODEL_MISMATCH; break;
    case GAL_ERR_UNAVAILABLE: code = PROTO_ERR_GALLERY_UNAVAILABLE; break;
    default: code = PROTO_ERR_INTERNAL; break;
    }
    if (code == PROTO_ERR_INTERNAL || code == PROTO_ERR_GALLERY_UNAVAILABLE) {
        char line[600];
        SRV_LOG(SRV_LOG_ERROR, "gallery: %s", gal_err_format(ge, line, sizeof line));
        return proto_err_set(e, code, NULL, "%s", proto_code_message(code));
    }
    return proto_err_set(e, code, code == PROTO_ERR_INVALID_PARAM ? field : NULL, "%s", ge->msg);
}

static void reply_gal_err(struct srv_req *req, const struct gal_err *ge, enum proto_code not_found,
                          const char *field)
{
    struct proto_err e;
    srv_gallery_err(&e, ge, not_found, field);
    srv_req_reply_error(req, &e);
}

/* A {name} or {face_id} path segment copied into buf; NULL if missing or too long (then not found). */
static const char *path_param(struct srv_req *req, const char *key, char *buf, size_t size)
{
    const char *v = srv_req_path_param(req, key);
    if (!v || strlen(v) >= size)
        return NULL;
    snprintf(buf, size, "%s", v);
    return buf;
}
/* A text parameter from the form fields or the query; borrowed, NULL if absent. */
static const char *text_param(struct srv_req *req, const char *key)
{
    const struct srv_field *f;
    int nf = srv_req_fields(req, &f);
    for (int i = 0; i < nf; i++)
        if (!f[i].filename && strcmp(f[i].name, key) == 0 && memchr(f[i].data, '\0', f[i].len + 1))
            return (const char *)f[i].data;
    const char *const *k, *const *v;
    int nq = srv_req_query(req, &k, &v);
    for (int i = 0; i < nq; i++)
        if (strcmp(k[i], key) == 0)
            return v[i];
    return NULL;
}

/* ---- subjects -------------------------------------------------------------------------------- */

static void reply_subject(struct srv_req *req, struct srv_gallery *g, const char *name, int status)
{
    struct gal_subject s;
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_subject_get(g->store, name, &s, &ge);
    pthread_mutex_unlock(&g->mu);
    if (rc) {
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, "name");
        return;
    }
    const struct proto_gal_subject ps = {s.name, s.n_faces, s.created_ms};
    srv_req_reply_json(req, status, proto_subject_json(&ps), NULL);
}

/* The {"name": ...} body (new, caller frees), or NULL after answering the error. */
static char *name_body(struct srv_req *req)
{
    struct proto_err e;
    size_t len;
    const unsigned char *body = srv_req_body(req, &len);
    char *name = NULL;
    if (proto_gallery_name_body(body, len, &name, &e))
        srv_req_reply_error(req, &e);
    return name;
}

void srv_gallery_subjects_post(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    char *name = name_body(req);
    if (!name)
        return;
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_subject_create(g->store, name, &ge);
    pthread_mutex_unlock(&g->mu);
    if (rc)
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, "$.name");
    else
        reply_subject(req, g, name, 201);
    free(name);
}

void srv_gallery_subjects_get(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    struct proto_err e;
    long page = PROTO_GAL_PAGE_DEFAULT;
    char after[GAL_NAME_MAX + 1] = "";
    const char *ps = text_param(req, "page_size"), *cur = text_param(req, "cursor");
    if (ps) {
        char *end;
        page = strtol(ps, &end, 10);
        if (*end || end == ps || page < 1 || page > PROTO_GAL_PAGE_MAX) {
            srv_req_reply_code(req, PROTO_ERR_INVALID_PARAM, "page_size",
                           "page_size: expected a whole number from 1 to 1000");
            return;
        }
    }
    if (cur && *cur && proto_cursor_decode(cur, after, sizeof after, &e)) {
        srv_req_reply_error(req, &e);
        return;
    }
    struct gal_subject *v = NULL;
    size_t n = 0;
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_subject_list(g->store, after, (size_t)page + 1, &v, &n, &ge);
    pthread_mutex_unlock(&g->mu);
    if (rc) {
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, NULL);
        return;
    }
    struct proto_gal_subject *out = calloc(n + 1, sizeof *out);
    char next[2 * GAL_NAME_MAX + 1];
    int more = n > (size_t)page;
    if (more)
        n = (size_t)page;
    for (size_t i = 0; out && i < n; i++)
        out[i] = (struct proto_gal_subject){v[i].name, v[i].n_faces, v[i].created_ms};
    if (more)
        proto_cursor_encode(v[n - 1].name, next, sizeof next);
    srv_req_reply_json(req, 200, out ? proto_subjects_json(out, n, more ? next : NULL) : NULL, NULL);
    free(out);
    free(v);
}

void srv_gallery_subject_get(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    char name[GAL_NAME_MAX + 2];
    if (g)
        reply_subject(req, g, path_param(req, "name", name, sizeof name) ? name : "", 200);
}

void srv_gallery_subject_patch(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    char old[GAL_NAME_MAX + 2];
    char *name = name_body(req);
    if (!name)
        return;
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_subject_rename(g->store, path_param(req, "name", old, sizeof old) ? old : "", name, &ge);
    int64_t seq = gal_store_last_write_seq(g->store);
    pthread_mutex_unlock(&g->mu);
    if (rc) {
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, "$.name");
    } else {
        srv_gallery_settle(g, seq);
        reply_subject(req, g, name, 200);
    }
    free(name);
}

void srv_gallery_subject_delete(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    char name[GAL_NAME_MAX + 2];
    struct gal_err ge;
    int64_t faces = 0;
    pthread_mutex_lock(&g->mu);
    int rc = gal_subject_delete(g->store, path_param(req, "name", name, sizeof name) ? name : "", &faces, &ge);
    int64_t seq = gal_store_last_write_seq(g->store);
    pthread_mutex_unlock(&g->mu);
    if (rc) {
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, "name");
        return;
    }
    srv_gallery_settle(g, seq);
    srv_req_reply_json(req, 200, proto_subject_deleted_json(name, faces), NULL);
}

/* ---- faces ----------------------------------------------------------------------------------- */

void srv_gallery_faces_get(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    char name[GAL_NAME_MAX + 2];
    struct gal_face *v = NULL;
    size_t n = 0;
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_faces_list(g->store, path_param(req, "name", name, sizeof name) ? name : "", &v, &n, &ge);
    pthread_mutex_unlock(&g->mu);
    if (rc) {
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, "name");
        return;
    }
    struct proto_gal_face *out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        out[i] = (struct proto_gal_face){v[i].id, v[i].fingerprint, v[i].det_score,
                                         {v[i].box[0], v[i].box[1], v[i].box[2], v[i].box[3]}, v[i].created_ms,
                                         0};
    srv_req_reply_json(req, 200, out ? proto_gal_faces_json(name, out, n) : NULL, NULL);
    free(out);
    free(v);
}

void srv_gallery_face_delete(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    char idtext[32], subject[GAL_NAME_MAX + 1];
    char *end = NULL;
    long long id = path_param(req, "face_id", idtext, sizeof idtext) ? strtoll(idtext, &end, 10) : -1;
    if (!end || *end || id < 1) {
        srv_req_reply_code(req, PROTO_ERR_FACE_NOT_FOUND, NULL,
                       "a face id is a positive whole number");
        return;
    }
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_face_delete(g->store, id, subject, &ge);
    int64_t seq = gal_store_last_write_seq(g->store);
    pthread_mutex_unlock(&g->mu);
    if (rc) {
        reply_gal_err(req, &ge, PROTO_ERR_FACE_NOT_FOUND, NULL);
        return;
    }
    srv_gallery_settle(g, seq);
    srv_req_reply_json(req, 200, proto_face_deleted_json(id, subject), NULL);
}

/* ---- identify by embedding, state ------------------------------------------------------------ */

char *srv_gallery_identify_json(struct srv_gallery *g, struct srv_req *req, const float *emb, size_t n,
                                const struct proto_identify_face *faces, const struct proto_identify_opts *o)
{
    struct gal_candidate *c = calloc(n * (size_t)o->top_k + 1, sizeof *c);
    struct proto_identify_candidate *pc = calloc(n * (size_t)o->top_k + 1, sizeof *pc);
    struct proto_identify_face *pf = calloc(n + 1, sizeof *pf);
    size_t *nc = calloc(n + 1, sizeof *nc);
    char *out = NULL;
    struct gal_snap *snap = gal_index_acquire(g->ix);
    struct gal_err ge;
    if (c && pc && pf && nc && gal_snap_search(snap, emb, n, (size_t)o->top_k, c, nc, &ge) == 0) {
        for (size_t i = 0; i < n; i++) {
            pf[i] = faces ? faces[i] : (struct proto_identify_face){0};
            pf[i].cand = pc + i * (size_t)o->top_k;
            pf[i].n_cand = nc[i];
            for (size_t k = 0; k < nc[i]; k++) {
                const struct gal_candidate *ck = &c[i * (size_t)o->top_k + k];
                pc[i * (size_t)o->top_k + k] = (struct proto_identify_candidate){ck->subject, ck->face_id, ck->distance};
            }
        }
        out = proto_identify_json(srv_req_id(req), pf, n, o->match_threshold, srv_req_elapsed_ms(req));
    }
    gal_snap_release(snap);
    free(c), free(pc), free(pf), free(nc);
    return out;
}

void srv_gallery_info(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    struct proto_gallery_info info = {.backend = gal_store_backend(g->store), .fingerprint = g->fingerprint};
    struct gal_err ge;
    int64_t ns = 0, nf = 0;
    pthread_mutex_lock(&g->mu);
    info.connected = gal_store_counts(g->store, &ns, &nf, &ge) == 0;
    pthread_mutex_unlock(&g->mu);
    struct gal_snap *snap = gal_index_acquire(g->ix);
    info.index_faces = (long long)gal_snap_faces(snap);
    info.index_subjects = (long long)gal_snap_subjects(snap);
    info.index_bytes = (long long)gal_snap_bytes(snap);
    info.index_seq = gal_snap_seq(snap);
    gal_snap_release(snap);
    /* while the database is away, the counts are the index's */
    info.subjects = info.connected ? ns : info.index_subjects;
    info.faces = info.connected ? nf : info.index_faces;
    srv_req_reply_json(req, 200, proto_gallery_info_json(&info), NULL);
}

/* ---- DeepStack's list and delete ------------------------------------------------------------- */

void srv_gallery_ds_list(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    struct gal_subject *all = NULL;
    size_t n = 0;
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_subject_list(g->store, "", (size_t)-1 >> 1, &all, &n, &ge);
    pthread_mutex_unlock(&g->mu);
    if (rc) {
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, NULL);
        return;
    }
    const char **names = calloc(n + 1, sizeof *names);
    for (size_t i = 0; names && i < n; i++)
        names[i] = all[i].name;
    srv_req_reply_json(req, 200, names ? proto_ds_list_json(names, n) : NULL, NULL);
    free(names);
    free(all);
}

void srv_gallery_ds_delete(struct srv_req *req, void *app)
{
    struct srv_gallery *g = gallery_of(req, app);
    if (!g)
        return;
    const char *userid = text_param(req, "userid");
    if (!userid || !*userid) {
        srv_req_reply_code(req, PROTO_ERR_BAD_REQUEST, NULL, "user id not specified");
        return;
    }
    struct gal_err ge;
    pthread_mutex_lock(&g->mu);
    int rc = gal_subject_delete(g->store, userid, NULL, &ge);
    int64_t seq = gal_store_last_write_seq(g->store);
    pthread_mutex_unlock(&g->mu);
    /* DeepStack answers success for a user it does not know: deleting is idempotent there */
    if (rc && ge.kind != GAL_ERR_NOT_FOUND) {
        reply_gal_err(req, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, "userid");
        return;
    }
    if (!rc)
        srv_gallery_settle(g, seq);
    srv_req_reply_json(req, 200, proto_ds_success_json(), NULL);
}
