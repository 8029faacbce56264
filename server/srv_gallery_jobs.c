/* srv_gallery_jobs.c - the gallery routes that run the face networks, on a worker: enrolment from
 * photos (POST /v1/subjects/{name}/faces, DeepStack's register) and identification of the faces in a
 * photo (POST /v1/identify, DeepStack's recognize).
 *
 * Parameters: the photos are every file part (any field name: DeepStack clients send image, image1,
 * image2, ...) or the raw body; the face options are /v1/verify's (det_threshold, input_size, exif,
 * face_select, aligned), plus top_k, match_threshold and limit for identify, userid and
 * min_confidence for DeepStack. An enrolment photo must hold exactly one face unless face_select is
 * given (MULTIPLE_FACES names the photo); the faces of all photos are written in one transaction. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face.h"
#include "image.h"
#include "proto_gallery.h"
#include "srv_app.h"
#include "srv_face_steps.h"
#include "srv_gallery.h"

#define MAX_PHOTOS 32

struct photo {
    const unsigned char *data; /* borrowed from the request body */
    size_t len;
    char field[64];
};

struct photo_job {
    struct eng_job job;
    struct srv_app *app;
    struct srv_req *req;
    enum srv_gallery_job_kind kind;
    enum proto_dialect dialect;
    struct proto_verify_request v; /* face options; its sides stay empty */
    struct proto_identify_opts id;
    double min_confidence;
    int limit;
    char name[GAL_NAME_MAX + 2];
    int has_name;
    size_t n;
    struct photo photo[MAX_PHOTOS];
};

/* ---- parameters ---------------------------------------------------------------------------- */

static int job_set(void *r, const char *key, const char *value, struct proto_err *e)
{
    struct photo_job *j = r;
    if (strcmp(key, "X-Timeout-Ms") == 0)
        return (j->v.opt.given & PROTO_FACE_PARAM_TIMEOUT) ? 0 : proto_verify_request_set(&j->v, "timeout_ms", value, e);
    if (strcmp(key, "userid") == 0 && j->dialect == PROTO_DIALECT_DEEPSTACK) {
        snprintf(j->name, sizeof j->name, "%s", value);
        j->has_name = 1;
        return 0;
    }
    if (j->kind == SRV_GALLERY_DS_RECOGNIZE && strcmp(key, "min_confidence") == 0) {
        char *end;
        double c = strtod(value, &end);
        if (*end || end == value || !(c > 0) || c > 1)
            return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "min_confidence", "expected a number in (0, 1]");
        j->min_confidence = c;
        return 0;
    }
    if (j->kind == SRV_GALLERY_IDENTIFY) {
        if (strcmp(key, "limit") == 0) {
            char *end;
            long l = strtol(value, &end, 10);
            if (*end || end == value || l < 0 || l > SRV_MAX_FACES)
                return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "limit", "expected a whole number from 0 to %d",
                                     SRV_MAX_FACES);
            j->limit = (int)l;
            return 0;
        }
        int rc = proto_identify_opt_text(&j->id, key, value, e);
        if (rc <= 0)
            return rc;
    }
    if (strncmp(key, "embedding", 9) == 0 || strncmp(key, "image", 5) == 0)
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, key, "not a parameter of this route");
    return proto_verify_request_set(&j->v, key, value, e);
}

static int job_set_image(void *r, const char *name, const unsigned char *data, size_t len, struct proto_err *e)
{
    struct photo_job *j = r;
    if (j->n == MAX_PHOTOS)
        return proto_err_set(e, PROTO_ERR_BAD_REQUEST, name ? name : "image", "at most %d photos per request",
                             MAX_PHOTOS);
    if ((j->kind == SRV_GALLERY_IDENTIFY || j->kind == SRV_GALLERY_DS_RECOGNIZE) && j->n == 1)
        return proto_err_set(e, PROTO_ERR_BAD_REQUEST, name ? name : "image", "send one photo to identify");
    if (len == 0)
        return proto_err_set(e, PROTO_ERR_BAD_IMAGE, name ? name : "image", "the photo is empty");
    struct photo *p = &j->photo[j->n++];
    p->data = data;
    p->len = len;
    snprintf(p->field, sizeof p->field, "%s", name ? name : "image");
    return 0;
}

static int job_parse_json(void *r, const char *body, size_t len, struct proto_err *e)
{
    (void)r, (void)body, (void)len;
    return proto_err_set(e, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, "Content-Type",
                         "send photos as multipart/form-data or a raw image body");
}

/* ---- worker -------------------------------------------------------------------------------- */

static void job_free(struct photo_job *j)
{
    proto_verify_request_release(&j->v);
    free(j);
}

static int decode(const struct photo_job *j, const struct photo *p, struct eng_image *img, struct proto_err *e)
{
    struct eng_err err = {0};
    const struct eng_decode_opts o = {.max_pixels = (uint64_t)j->app->cfg->max_pixels, .apply_exif = j->v.opt.exif};
    if (eng_image_decode(p->data, p->len, &o, img, NULL, &err))
        return proto_err_from_eng(e, &err, p->field);
    return 0;
}

/* Enrolment: one embedding per photo, then one transaction. */
static int run_enroll(struct photo_job *j, struct srv_worker_state *ws, char **body, int *status, struct proto_err *e)
{
    struct srv_gallery *g = j->app->gallery;
    struct gal_face *faces = calloc(j->n, sizeof *faces);
    if (!faces)
        return proto_err_set(e, PROTO_ERR_INTERNAL, NULL, "out of memory");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < j->n; i++) {
        struct eng_image img = {0};
        struct proto_verify_face vf = {0};
        struct proto_face_timing t = {0};
        rc = decode(j, &j->photo[i], &img, e);
        if (!rc)
            rc = srv_face_verify_image(j->app->faces, ws->face_ctx, &img, &j->v, ws->faces, SRV_MAX_FACES,
                                       faces[i].emb, &vf, &t, j->photo[i].field, e);
        eng_image_release(&img);
        if (!rc && vf.detected && vf.faces_in_image > 1 && j->dialect == PROTO_DIALECT_NATIVE &&
            !(j->v.opt.given & PROTO_FACE_PARAM_FACE_SELECT))
            rc = proto_err_set(e, PROTO_ERR_MULTIPLE_FACES, j->photo[i].field,
                               "%d faces in the photo: send one face a photo, or face_select=largest|best",
                               vf.faces_in_image);
        memcpy(faces[i].fingerprint, g->fingerprint, sizeof faces[i].fingerprint);
        if (vf.detected) {
            faces[i].det_score = vf.det_score;
            faces[i].box[0] = vf.box.x1, faces[i].box[1] = vf.box.y1;
            faces[i].box[2] = vf.box.x2, faces[i].box[3] = vf.box.y2;
        }
    }
    int64_t ids[MAX_PHOTOS];
    struct gal_err ge = {0};
    if (!rc) {
        pthread_mutex_lock(&g->mu);
        int wrc = gal_faces_add(g->store, j->name, j->kind == SRV_GALLERY_DS_REGISTER, faces, j->n, ids, &ge);
        int64_t seq = gal_store_last_write_seq(g->store);
        pthread_mutex_unlock(&g->mu);
        if (wrc)
            rc = srv_gallery_err(e, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, j->dialect == PROTO_DIALECT_NATIVE ? "name" : "userid");
        else
            srv_gallery_settle(g, seq);
    }
    if (!rc) {
        *status = 201;
        if (j->kind == SRV_GALLERY_DS_REGISTER) {
            *status = 200;
            *body = proto_ds_register_json();
        } else {
            struct proto_gal_face out[MAX_PHOTOS];
            for (size_t i = 0; i < j->n; i++)
                out[i] = (struct proto_gal_face){ids[i], faces[i].fingerprint, faces[i].det_score,
                                                 {faces[i].box[0], faces[i].box[1], faces[i].box[2], faces[i].box[3]},
                                                 0};
            *body = proto_gal_faces_json(j->name, out, j->n);
        }
    }
    free(faces);
    return rc;
}

static int pixel(float v, int size)
{
    int p = (int)v;
    return p < 0 ? 0 : p >= size ? size - 1 : p;
}

/* Identification: every face of the photo (or the photo as one aligned chip), one search. */
static int run_identify(struct photo_job *j, struct srv_worker_state *ws, char **body, struct proto_err *e)
{
    struct srv_gallery *g = j->app->gallery;
    struct eng_image img = {0};
    struct proto_face_timing t = {0};
    struct proto_identify_face info[SRV_MAX_FACES];
    int n = 0;
    if (decode(j, &j->photo[0], &img, e))
        return -1;
    if (j->v.aligned) {
        struct proto_verify_face vf;
        if (srv_face_verify_image(j->app->faces, ws->face_ctx, &img, &j->v, ws->faces, SRV_MAX_FACES,
                                  ws->embeddings[0], &vf, &t, "image", e)) {
            eng_image_release(&img);
            return -1;
        }
        info[0] = (struct proto_identify_face){0};
        n = 1;
    } else {
        n = srv_face_detect(j->app->faces, ws->face_ctx, &img, &j->v.opt, ws->faces, SRV_MAX_FACES, &t, "image", e);
        if (n > 0 && j->limit > 0 && n > j->limit)
            n = j->limit;
        if (n < 0 ||
            (n > 0 && srv_face_describe(j->app->faces, ws->face_ctx, &img, ws->faces, n, ws->embeddings, &t, "image", e))) {
            eng_image_release(&img);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            const struct eng_box *b = &ws->faces[i].box;
            info[i] = (struct proto_identify_face){1, {b->x1, b->y1, b->x2, b->y2}, ws->faces[i].score, NULL, 0};
        }
    }
    if (j->kind == SRV_GALLERY_IDENTIFY) {
        eng_image_release(&img);
        *body = srv_gallery_identify_json(g, j->req, &ws->embeddings[0][0], (size_t)n, info, &j->id);
        return 0;
    }
    /* DeepStack: the nearest subject when its confidence reaches min_confidence, else "unknown" with
     * the nearest one's confidence (0 with an empty gallery) */
    struct proto_ds_recognized pred[SRV_MAX_FACES];
    struct gal_candidate c[SRV_MAX_FACES];
    size_t nc[SRV_MAX_FACES];
    struct gal_snap *snap = gal_index_acquire(g->ix);
    struct gal_err ge;
    int rc = n > 0 ? gal_snap_search(snap, &ws->embeddings[0][0], (size_t)n, 1, c, nc, &ge) : 0;
    const double max_d = eng_face_confidence_distance(j->min_confidence);
    for (int i = 0; rc == 0 && i < n; i++) {
        const struct eng_box *b = &ws->faces[i].box;
        int known = nc[i] > 0 && c[i].distance < max_d;
        pred[i] = (struct proto_ds_recognized){known ? c[i].subject : "unknown",
                                               nc[i] ? eng_face_confidence(c[i].distance) : 0.0,
                                               pixel(b->x1, img.width), pixel(b->y1, img.height),
                                               pixel(b->x2, img.width), pixel(b->y2, img.height)};
    }
    if (rc == 0)
        *body = proto_ds_recognize_json(pred, (size_t)n, srv_req_elapsed_ms(j->req));
    gal_snap_release(snap); /* after encoding: the names are the snapshot's */
    eng_image_release(&img);
    return rc ? proto_err_set(e, PROTO_ERR_INTERNAL, NULL, "%s", ge.msg) : 0;
}

static void job_run(struct eng_job *job, void *state)
{
    struct photo_job *j = (struct photo_job *)job;
    struct srv_req *req = j->req;
    const enum proto_dialect d = j->dialect;
    struct proto_err e;
    char *body = NULL;
    int status = 200, rc;
    if (j->kind == SRV_GALLERY_ENROLL || j->kind == SRV_GALLERY_DS_REGISTER)
        rc = run_enroll(j, state, &body, &status, &e);
    else
        rc = run_identify(j, state, &body, &e);
    if (rc == 0)
        srv_metrics_job(j->app->metrics, job->queue_ms, eng_workers_job_run_ms(job));
    job_free(j);
    if (rc)
        srv_reply_err(req, d, &e);
    else
        srv_reply_json(req, status, body, NULL);
}

static void job_expired(struct eng_job *job)
{
    struct photo_job *j = (struct photo_job *)job;
    struct srv_req *req = j->req;
    const enum proto_dialect d = j->dialect;
    job_free(j);
    srv_reply_code(req, d, PROTO_ERR_TIMEOUT, NULL, "the deadline passed while the job was queued");
}

static void job_cancelled(struct eng_job *job)
{
    struct photo_job *j = (struct photo_job *)job;
    struct srv_req *req = j->req;
    const enum proto_dialect d = j->dialect;
    job_free(j);
    srv_reply_code(req, d, PROTO_ERR_NOT_READY, NULL, "the server is shutting down");
}

/* ---- HTTP side ----------------------------------------------------------------------------- */

void srv_gallery_photo_job(struct srv_req *req, struct srv_app *app, enum srv_gallery_job_kind kind,
                           const char *name)
{
    const enum proto_dialect d =
        kind == SRV_GALLERY_DS_REGISTER || kind == SRV_GALLERY_DS_RECOGNIZE ? PROTO_DIALECT_DEEPSTACK : PROTO_DIALECT_NATIVE;
    if (!app->faces) {
        srv_reply_code(req, d, PROTO_ERR_NOT_READY, NULL,
                       app->faces_error[0] ? app->faces_error : "the face models are not installed on this server");
        return;
    }
    struct photo_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_reply_code(req, d, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    j->kind = kind;
    j->dialect = d;
    proto_verify_request_init(&j->v, d);
    proto_identify_opts_init(&j->id);
    j->min_confidence = ENG_FACE_MATCH_CONFIDENCE;
    if (name) {
        snprintf(j->name, sizeof j->name, "%s", name);
        j->has_name = 1;
    }
    struct proto_err e;
    struct gal_err ge;
    const struct srv_param_sink sink = {j, job_set, job_set_image, job_parse_json, 1};
    int rc = srv_collect_params(req, &sink, &e);
    if (!rc && j->n == 0)
        rc = proto_err_set(&e, PROTO_ERR_BAD_REQUEST, "image",
                           d == PROTO_DIALECT_DEEPSTACK ? "No valid image file found" : "missing: send a photo");
    if (!rc && kind == SRV_GALLERY_DS_REGISTER && !j->has_name)
        rc = proto_err_set(&e, PROTO_ERR_BAD_REQUEST, NULL, "user id not specified"); /* DeepStack's words */
    if (!rc && (kind == SRV_GALLERY_ENROLL || kind == SRV_GALLERY_DS_REGISTER) && gal_name_check(j->name, &ge))
        rc = proto_err_set(&e, PROTO_ERR_INVALID_PARAM, d == PROTO_DIALECT_NATIVE ? "name" : "userid", "%s", ge.msg);
    if (rc) {
        job_free(j);
        srv_reply_err(req, d, &e);
        return;
    }
    j->app = app;
    j->req = req;
    j->job = (struct eng_job){.run = job_run, .expired = job_expired, .cancelled = job_cancelled};
    if (srv_submit(app, req, &j->job, d, j->v.opt.timeout_ms))
        job_free(j);
}

void srv_gallery_ds_register(struct srv_req *req, void *app)
{
    if (srv_gallery_ready(req, app, PROTO_DIALECT_DEEPSTACK))
        srv_gallery_photo_job(req, app, SRV_GALLERY_DS_REGISTER, NULL);
}

void srv_gallery_ds_recognize(struct srv_req *req, void *app)
{
    if (srv_gallery_ready(req, app, PROTO_DIALECT_DEEPSTACK))
        srv_gallery_photo_job(req, app, SRV_GALLERY_DS_RECOGNIZE, NULL);
}
