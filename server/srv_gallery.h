/* srv_gallery.h - the daemon's face gallery: the store, the index and its follower for one generation
 * of the daemon (srv_app), and the routes over them (srv_gallery.c: subjects, faces, identify by
 * embedding, /v1/gallery, DeepStack's list and delete; srv_gallery_jobs.c: the routes that run the
 * face networks on a worker: enrolment and identification from photos, DeepStack's register and
 * recognize). Private to server/. */
#ifndef SRV_GALLERY_H
#define SRV_GALLERY_H

#include <pthread.h>

#include "gal.h"
#include "proto_errors.h"
#include "proto_gallery.h"
#include "srv_http.h"

struct srv_app;
struct srv_config;
struct srv_gallery_retry; /* srv_gallery.c: a gallery whose database was unreachable, to try again */

struct srv_gallery {
    struct gal_store *store; /* the handlers' connection: one at a time, under mu */
    pthread_mutex_t mu;
    struct gal_index *ix;
    struct gal_follow *follow; /* keeps ix in step with the store, whoever writes */
    char fingerprint[GAL_FP_HEX + 1];
};

/* The recognition model's fingerprint: SHA-256 over its weight manifest and its weight files as
 * installed in faces_dir (face_recognition_model*), as lower-case hex. 0, or -1 with why. */
int srv_gallery_fingerprint(const char *faces_dir, char out[GAL_FP_HEX + 1], char *why, size_t why_size);

/* The gallery spec the configuration names: `gallery` if set, else sqlite:<data_dir>/gallery.db (the
 * directory is created if missing). buf gets it. 0, or -1 with why. */
int srv_gallery_spec(const struct srv_config *cfg, char *buf, size_t size, char *why, size_t why_size);

/* Opens the store, loads the index and starts its follower. New (srv_gallery_free), or NULL with why
 * (which never holds a password) and *kind (may be NULL): GAL_ERR_UNAVAILABLE when the database could
 * not be reached, a failure that may pass. */
struct srv_gallery *srv_gallery_open(const char *spec, const char *fingerprint, char *why, size_t why_size,
                                     enum gal_err_kind *kind);
void srv_gallery_free(struct srv_gallery *g);

/* Opens the generation's gallery (once its face models are loaded): app->gallery, or a warning and
 * app->gallery_error (the gallery routes then answer 503; the other routes serve). When the database
 * was unreachable, app->gallery_retry is set: srv_gallery_get tries again. */
void srv_gallery_load(struct srv_app *app);
/* The generation's gallery, or NULL with *e set (503: NOT_READY, or GALLERY_UNAVAILABLE while its
 * database has not been reached yet). While it has not opened for an unreachable database, a call
 * opens it on the caller's thread, at most one at a time and with a back-off between attempts
 * (0.5 s doubling to 10 s): a database that starts after the daemon (docker compose) is taken up by the
 * first request after it is up, without a reload; if it then fails otherwise (another model's gallery),
 * it is not tried again (NOT_READY with why). Borrowed: valid while the generation is. Any thread. */
struct srv_gallery *srv_gallery_get(struct srv_app *app, struct proto_err *e);
/* Frees the retry state (srv_serve.c's app_free; NULL is a no-op). */
void srv_gallery_retry_free(struct srv_gallery_retry *r);

/* After a write of ours committed at seq: wait (bounded) until our index holds it, so the client's
 * next identify sees its own write. */
void srv_gallery_settle(struct srv_gallery *g, int64_t seq);

/* Handlers of the routes that run no network (app: a struct srv_app); the others are job kinds
 * (srv_route.h: srv_gallery_enroll_job, srv_gallery_register_job, srv_gallery_identify_job). */
void srv_gallery_subjects_post(struct srv_req *req, void *app);  /* POST /v1/subjects */
void srv_gallery_subjects_get(struct srv_req *req, void *app);   /* GET /v1/subjects */
void srv_gallery_subject_get(struct srv_req *req, void *app);    /* GET /v1/subjects/{name} */
void srv_gallery_subject_patch(struct srv_req *req, void *app);  /* PATCH /v1/subjects/{name} */
void srv_gallery_subject_delete(struct srv_req *req, void *app); /* DELETE /v1/subjects/{name} */
void srv_gallery_faces_get(struct srv_req *req, void *app);      /* GET /v1/subjects/{name}/faces */
void srv_gallery_face_delete(struct srv_req *req, void *app);    /* DELETE /v1/faces/{face_id} */
void srv_gallery_info(struct srv_req *req, void *app);           /* GET /v1/gallery */
void srv_gallery_ds_list(struct srv_req *req, void *app);        /* POST /v1/vision/face/list */
void srv_gallery_ds_delete(struct srv_req *req, void *app);      /* POST /v1/vision/face/delete */

/* A store failure as the client's error (*e); not_found: the code for GAL_ERR_NOT_FOUND; field: the
 * place of a GAL_ERR_INVALID. Logs database failures (with their statement). Returns -1. */
int srv_gallery_err(struct proto_err *e, const struct gal_err *ge, enum proto_code not_found, const char *field);
/* identify's answer for n embeddings (row-major) searched in the current snapshot; faces: their
 * boxes (NULL: embeddings sent, no boxes). New string (NULL: out of memory). */
char *srv_gallery_identify_json(struct srv_gallery *g, struct srv_req *req, const float *emb, size_t n,
                                const struct proto_identify_face *faces, const struct proto_identify_opts *o);

#endif
