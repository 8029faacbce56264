/* srv_gallery_jobs.c - the gallery routes that run the face networks, on a worker: enrolment from
 * photos (POST /v1/subjects/{name}/faces, DeepStack's register) and identification of the faces in a
 * photo (POST /v1/identify, DeepStack's recognize).
 *
 * Parameters: the photos are every file part (any field name: DeepStack clients send image, image1,
 * image2, ...) or the raw body; the face options are /v1/verify's (det_threshold, input_size, exif,
 * face_select, aligned, min_det_threshold), plus top_k, match_threshold and limit for identify, userid
 * and min_confidence for DeepStack. An enrolment photo must hold exactly one face unless face_select is
 * given (MULTIPLE_FACES names the photo); one with no face at det_threshold enrols its best face down
 * to min_det_threshold, as /v1/verify does, and its entry says "fallback": true (NO_FACE only when
 * there is none even there). The faces of all photos are written in one transaction. */
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
#include "srv_route.h"

#define MAX_PHOTOS 32

struct photo {
    const unsigned char *data; /* borrowed from the request body */
    size_t len;
    char field[64];
};

struct photo_job {
    struct srv_job head;
    int identify;                  /* identify/recognize; else enrol/register */
    enum proto_dialect dialect;
    struct proto_verify_request v; /* face options; its sides stay empty */
    struct proto_identify_opts id;
    double min_confidence;
    int limit;
    char name[GAL_NAME_MAX + 2];
    int has_name;
    size_t n;
    struct photo photo[MAX_PHOTOS];
    struct proto_gallery_embeddings emb; /* a JSON body's embeddings instead of photos */
    int json;
};
/* ---- parameters ---------------------------------------------------------------------------- */

static int job_set(void *r, const char *key, const char *value, struct proto_err *e)
{
    struct photo_job *j = r;
    if (strcmp(key, "userid") == 0 && j->dialect == PROTO_DIALECT_DEEPSTACK) {
        snprintf(j->name, sizeof j->name, "%s", value);
        j->has_name = 1;
        return 0;
    }
    if (j->identify && j->dialect == PROTO_DIALECT_DEEPSTACK && strcmp(key, "min_confidence") == 0) {
        char *end;
        double c = strtod(value, &end);
        if (*end || end == value || !(c > 0) || c > 1)
            return proto_err_set(e, PROTO_ERR_INVALID_PARAM, "min_confidence", "expected a number in (0, 1]");
        j->min_confidence = c;
        return 0;
    }
    if (j->identify && j->dialect == PROTO_DIALECT_NATIVE) {
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
    if (j->identify && j->n == 1)
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
    struct photo_job *j = r;
    if (j->dialect == PROTO_DIALECT_DEEPSTACK)
        return proto_err_set(e, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, "Content-Type", "send a multipart/form-data form");
    const unsigned char *b = (const unsigned char *)body;
    if (j->identify ? proto_identify_body(b, len, &j->emb, &j->id, e) : proto_gallery_enroll_body(b, len, &j->emb, e))
        return -1;
    j->json = j->emb.n > 0; /* embeddings; else base64 photos, which go where multipart files go */
    for (size_t i = 0; i < j->emb.n_options; i++)
        if (job_set(j, j->emb.option_key[i], j->emb.option_value[i], e))
            return -1;
    for (size_t i = 0; i < j->emb.n_images; i++) {
        char field[48];
        if (j->identify)
            snprintf(field, sizeof field, "image_b64");
        else
            snprintf(field, sizeof field, "images_b64[%zu]", i);
        if (job_set_image(j, field, j->emb.image[i], j->emb.image_len[i], e))
            return -1;
    }
    return 0;
}

/* ---- worker -------------------------------------------------------------------------------- */

static void job_release(struct srv_job *h)
{
    struct photo_job *j = (struct photo_job *)h;
    proto_verify_request_release(&j->v);
    proto_gallery_embeddings_release(&j->emb);
}

static int decode(const struct photo_job *j, const struct photo *p, struct eng_image *img, struct proto_err *e)
{
    struct eng_err err = {0};
    const struct eng_decode_opts o = {.max_pixels = (uint64_t)j->head.app->cfg->max_pixels, .apply_exif = j->v.opt.exif};
    if (eng_image_decode(p->data, p->len, &o, img, NULL, &err))
        return proto_err_from_eng(e, &err, p->field);
    return 0;
}

/* Enrolment: one embedding per photo, then one transaction. */
static int run_enroll(struct photo_job *j, struct srv_worker_state *ws, char **body, struct proto_err *e)
{
    struct srv_gallery *g = j->head.app->gallery;
    const size_t n = j->json ? j->emb.n : j->n;
    struct gal_face *faces = calloc(n, sizeof *faces);
    int64_t *ids = calloc(n, sizeof *ids);
    struct proto_gal_face *out = calloc(n, sizeof *out);
    unsigned char *fallback = calloc(n, 1);
    if (!faces || !ids || !out || !fallback) {
        free(faces), free(ids), free(out), free(fallback);
        return proto_err_set(e, PROTO_ERR_INTERNAL, NULL, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; j->json && i < n; i++) { /* embeddings: the client's model must be ours */
        memcpy(faces[i].emb, j->emb.emb[i], sizeof faces[i].emb);
        memcpy(faces[i].fingerprint, j->emb.fingerprint, sizeof faces[i].fingerprint);
    }
    for (size_t i = 0; !j->json && rc == 0 && i < n; i++) {
        struct eng_image img = {0};
        struct proto_verify_face vf = {0};
        struct proto_face_timing t = {0};
        rc = decode(j, &j->photo[i], &img, e);
        if (!rc)
            rc = srv_face_verify_image(j->head.app->faces, ws->face_ctx, &img, &j->v, ws->faces, SRV_MAX_FACES,
                                       faces[i].emb, &vf, &t, j->photo[i].field, e);
        eng_image_release(&img);
        /* a fallback's faces_in_image counts the faces down to the floor: the best one is taken, as
         * /v1/verify does (none reached det_threshold, so no face is more the subject's than it) */
        if (!rc && vf.detected && !vf.fallback && vf.faces_in_image > 1 && j->dialect == PROTO_DIALECT_NATIVE &&
            !(j->v.opt.given & PROTO_FACE_PARAM_FACE_SELECT))
            rc = proto_err_set(e, PROTO_ERR_MULTIPLE_FACES, j->photo[i].field,
                               "%d faces in the photo: send one face a photo, or face_select=largest|best",
                               vf.faces_in_image);
        memcpy(faces[i].fingerprint, g->fingerprint, sizeof faces[i].fingerprint);
        if (vf.detected) {
            faces[i].det_score = vf.det_score;
            fallback[i] = (unsigned char)(vf.fallback != 0);
            faces[i].box[0] = vf.box.x1, faces[i].box[1] = vf.box.y1;
            faces[i].box[2] = vf.box.x2, faces[i].box[3] = vf.box.y2;
        }
    }
    struct gal_err ge = {0};
    if (!rc) {
        pthread_mutex_lock(&g->mu);
        int wrc = gal_faces_add(g->store, j->name, j->dialect == PROTO_DIALECT_DEEPSTACK, faces, n, ids, &ge);
        int64_t seq = gal_store_last_write_seq(g->store);
        pthread_mutex_unlock(&g->mu);
        if (wrc)
            rc = srv_gallery_err(e, &ge, PROTO_ERR_SUBJECT_NOT_FOUND, j->json ? "$.embeddings" : "image");
        else
            srv_gallery_settle(g, seq);
    }
    if (!rc && j->dialect == PROTO_DIALECT_DEEPSTACK) {
        *body = proto_ds_register_json();
    } else if (!rc) {
        for (size_t i = 0; i < n; i++)
            out[i] = (struct proto_gal_face){ids[i], faces[i].fingerprint, faces[i].det_score,
                                             {faces[i].box[0], faces[i].box[1], faces[i].box[2], faces[i].box[3]},
                                             faces[i].created_ms, fallback[i]};
        *body = proto_gal_faces_json(j->name, out, n);
    }
    free(faces), free(ids), free(out), free(fallback);
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
    struct srv_gallery *g = j->head.app->gallery;
    struct eng_image img = {0};
    struct proto_face_timing t = {0};
    struct proto_identify_face info[SRV_MAX_FACES];
    int n = 0;
    if (j->json) {
        if (j->emb.fingerprint[0] && strcmp(j->emb.fingerprint, g->fingerprint) != 0)
            return proto_err_set(e, PROTO_ERR_MODEL_MISMATCH, "$.model_fingerprint",
                                 "the embeddings were made by another recognition model than this gallery's "
                                 "(GET /v1/gallery)");
        *body = srv_gallery_identify_json(g, j->head.req, &j->emb.emb[0][0], j->emb.n, NULL, &j->id);
        return 0;
    }
    if (decode(j, &j->photo[0], &img, e))
        return -1;
    if (j->v.aligned) {
        struct proto_verify_face vf;
        if (srv_face_verify_image(j->head.app->faces, ws->face_ctx, &img, &j->v, ws->faces, SRV_MAX_FACES,
                                  ws->embeddings[0], &vf, &t, "image", e)) {
            eng_image_release(&img);
            return -1;
        }
        info[0] = (struct proto_identify_face){0};
        n = 1;
    } else {
        n = srv_face_detect(j->head.app->faces, ws->face_ctx, &img, &j->v.opt, ws->faces, SRV_MAX_FACES, &t, "image", e);
        if (n > 0 && j->limit > 0 && n > j->limit)
            n = j->limit;
        if (n < 0 ||
            (n > 0 && srv_face_describe(j->head.app->faces, ws->face_ctx, &img, ws->faces, n, ws->embeddings, &t, "image", e))) {
            eng_image_release(&img);
            return -1;
        }
        for (int i = 0; i < n; i++) {
            const struct eng_box *b = &ws->faces[i].box;
            info[i] = (struct proto_identify_face){1, {b->x1, b->y1, b->x2, b->y2}, ws->faces[i].score, NULL, 0};
        }
    }
    if (j->dialect == PROTO_DIALECT_NATIVE) {
        eng_image_release(&img);
        *body = srv_gallery_identify_json(g, j->head.req, &ws->embeddings[0][0], (size_t)n, info, &j->id);
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
        *body = proto_ds_recognize_json(pred, (size_t)n, srv_req_elapsed_ms(j->head.req));
    gal_snap_release(snap); /* after encoding: the names are the snapshot's */
    eng_image_release(&img);
    return rc ? proto_err_set(e, PROTO_ERR_INTERNAL, NULL, "%s", ge.msg) : 0;
}

static int job_run(struct srv_job *h, struct srv_worker_state *ws, char **body, struct proto_err *e)
{
    struct photo_job *j = (struct photo_job *)h;
    return j->identify ? run_identify(j, ws, body, e) : run_enroll(j, ws, body, e);
}

/* ---- HTTP side ----------------------------------------------------------------------------- */

/* The generation is const to job kinds; its gallery slot is the one part made to change (atomically,
 * once: srv_gallery_get opens a gallery whose database was unreachable at start-up). */
static int job_ready(const struct srv_app *app, struct proto_err *e)
{
    if (!srv_gallery_get((struct srv_app *)app, e))
        return -1;
    if (!app->faces)
        return proto_err_set(e, PROTO_ERR_NOT_READY, NULL, "%s",
                             app->faces_error[0] ? app->faces_error : "the face models are not installed");
    return 0;
}

static struct srv_param_sink params(struct srv_job *h, enum proto_dialect d, int identify)
{
    struct photo_job *j = (struct photo_job *)h;
    j->identify = identify;
    j->dialect = d;
    proto_verify_request_init(&j->v, d);
    proto_identify_opts_init(&j->id);
    j->min_confidence = ENG_FACE_MATCH_CONFIDENCE;
    const char *name = srv_req_path_param(h->req, "name");
    if (name) {
        snprintf(j->name, sizeof j->name, "%s", name);
        j->has_name = 1;
    }
    return (struct srv_param_sink){j, job_set, job_set_image, job_parse_json, 1, &j->v.opt.given,
                                   PROTO_FACE_PARAM_TIMEOUT};
}

static struct srv_param_sink enroll_params(struct srv_job *h, enum proto_dialect d) { return params(h, d, 0); }
static struct srv_param_sink identify_params(struct srv_job *h, enum proto_dialect d) { return params(h, d, 1); }

static int job_check(struct srv_job *h, struct proto_err *e)
{
    struct photo_job *j = (struct photo_job *)h;
    struct gal_err ge;
    h->timeout_ms = j->v.opt.timeout_ms;
    if (!j->json && j->n == 0)
        return proto_err_set(e, PROTO_ERR_BAD_REQUEST, j->dialect == PROTO_DIALECT_DEEPSTACK ? NULL : "image",
                             j->dialect == PROTO_DIALECT_DEEPSTACK ? "No valid image file found"
                                                                   : "missing: send a photo or JSON embeddings");
    if (j->identify)
        return 0;
    if (!j->has_name)
        return proto_err_set(e, PROTO_ERR_BAD_REQUEST, NULL, "user id not specified"); /* DeepStack's words */
    if (gal_name_check(j->name, &ge))
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, j->dialect == PROTO_DIALECT_NATIVE ? "name" : "userid", "%s",
                             ge.msg);
    return 0;
}

const struct srv_job_kind srv_gallery_enroll_job = {
    .size = sizeof(struct photo_job), .ready = job_ready, .params = enroll_params, .check = job_check,
    .run = job_run, .release = job_release, .status = 201};
const struct srv_job_kind srv_gallery_register_job = {
    .size = sizeof(struct photo_job), .ready = job_ready, .params = enroll_params, .check = job_check,
    .run = job_run, .release = job_release};
const struct srv_job_kind srv_gallery_identify_job = {
    .size = sizeof(struct photo_job), .ready = job_ready, .params = identify_params, .check = job_check,
    .run = job_run, .release = job_release};
