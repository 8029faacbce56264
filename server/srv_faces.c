/* srv_faces.c - the face jobs: POST /v1/faces, POST /v1/verify and their DeepStack aliases (rows of
 * srv_routes.c), and the face models' start-up. The worker decodes, runs the face networks from its own
 * eng_face_ctx and encodes with the route's encoder; srv_job.c does the rest of the request path. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "face.h"
#include "image.h"
#include "proto_face.h"
#include "srv_app.h"
#include "srv_face_steps.h"
#include "srv_log.h"
#include "srv_route.h"

struct faces_job {
    struct srv_job head;
    struct proto_face_request params;
};

struct verify_job {
    struct srv_job head;
    struct proto_verify_request params;
};

/* ---- start-up ------------------------------------------------------------------------------ */

int srv_faces_load(struct srv_app *app)
{
    char dir[4096];
    struct stat st;
    if (snprintf(dir, sizeof dir, "%s/faces", app->cfg->models) >= (int)sizeof dir)
        return -1;
    if (stat(dir, &st) != 0) {
        SRV_LOG(SRV_LOG_WARN, "no face models in %s (scripts/fetch-models installs them): face routes "
                "will answer 503", dir);
        return 0;
    }
    struct eng_err err = {0};
    if (eng_face_models_load(dir, NULL, &app->faces, &err)) {
        char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
        /* Installed but broken: serve the rest, but never report ready; /readyz says why. */
        const int n = snprintf(app->faces_error, sizeof app->faces_error, "face models not loaded: %s",
                               eng_err_format(&err, buf, sizeof buf));
        (void)n; /* a long message is cut, which is fine for a log line and /readyz */
        SRV_LOG(SRV_LOG_ERROR, "%s", app->faces_error);
        return 0;
    }
    SRV_LOG(SRV_LOG_INFO, "loaded face models from %s (detector input up to %d)", dir,
            eng_face_models_max_input(app->faces));
    return 0;
}

int srv_faces_worker_init(struct srv_app *app, struct srv_worker_state *ws, struct eng_err *err)
{
    if (!app->faces)
        return 0;
    return (ws->face_ctx = eng_face_ctx_new_shared(app->faces, ws->arena, ws->arena_floats, err)) ? 0 : -1;
}

void srv_faces_worker_free(struct srv_worker_state *ws)
{
    eng_face_ctx_free(ws->face_ctx);
}

/* ---- shared worker steps ------------------------------------------------------------------- */

static int decode(const struct srv_app *app, const struct proto_image *im, int exif,
                  struct eng_image *img, struct eng_decode_info *info, const char *field,
                  struct proto_err *e)
{
    struct eng_err err = {0};
    const struct eng_decode_opts o = {.max_pixels = (uint64_t)app->cfg->max_pixels, .apply_exif = exif};
    if (eng_image_decode(im->data, im->len, &o, img, info, &err))
        return proto_err_from_eng(e, &err, field);
    return 0;
}

static int check_input_size(const struct srv_app *app, const struct proto_face_options *o,
                            struct proto_err *e)
{
    const int max = eng_face_models_max_input(app->faces);
    if (o->input_size > max)
        return proto_err_set(e, PROTO_ERR_INVALID_PARAM, o->from_json ? "$.input_size" : "input_size",
                             "input_size %d is above this server's maximum %d", o->input_size, max);
    return 0;
}

static double ms_since(double t0)
{
    return srv_now_ms() - t0;
}

/* ---- both jobs: readiness ------------------------------------------------------------------ */

static int faces_ready(const struct srv_app *app, struct proto_err *e)
{
    if (app->faces)
        return 0;
    return proto_err_set(e, PROTO_ERR_NOT_READY, NULL, "%s",
                         app->faces_error[0] ? app->faces_error
                                             : "the face models are not installed on this server "
                                               "(scripts/fetch-models)");
}

/* ---- POST /v1/faces ------------------------------------------------------------------------ */

static struct srv_param_sink faces_params(struct srv_job *job, enum proto_dialect dialect)
{
    struct faces_job *j = (struct faces_job *)job;
    proto_face_request_init(&j->params, dialect);
    return srv_params_faces_sink(&j->params);
}

static int faces_check(struct srv_job *job, struct proto_err *e)
{
    struct faces_job *j = (struct faces_job *)job;
    job->timeout_ms = j->params.opt.timeout_ms;
    return proto_face_request_check(&j->params, e);
}

static int faces_run(struct srv_job *job, struct srv_worker_state *ws, char **body, struct proto_err *e)
{
    struct faces_job *j = (struct faces_job *)job;
    const struct proto_face_request *p = &j->params;
    struct eng_image img = {0};
    struct eng_decode_info info = {0};
    struct proto_face_timing t = {.queue = job->job.queue_ms};
    int n = -1;

    const double t0 = srv_now_ms();
    if (check_input_size(job->app, &p->opt, e) ||
        decode(job->app, &p->image, p->opt.exif, &img, &info, "image", e))
        goto done;
    t.decode = ms_since(t0);
    n = srv_face_find(job->app->faces, ws->face_ctx, &img, p, ws->faces, ws->embeddings, ws->face_out,
                      SRV_MAX_FACES, &t, e);
    if (n < 0)
        goto done;
    t.total = srv_req_elapsed_ms(job->req);
    const struct proto_faces_response r = {
        .request_id = srv_req_id(job->req), .landmark_model = p->landmarks ? "face_landmark_68" : NULL,
        .recognition_model = p->embedding ? "face_recognition" : NULL, .width = img.width,
        .height = img.height, .exif_rotated = info.exif_rotated, .faces = ws->face_out, .count = n,
        .timing_ms = t};
    *body = job->route->encode(&r);
done:
    eng_image_release(&img);
    return n < 0 ? -1 : 0;
}

static void faces_release(struct srv_job *job)
{
    proto_face_request_release(&((struct faces_job *)job)->params);
}

const struct srv_job_kind srv_faces_job = {
    .size = sizeof(struct faces_job), .ready = faces_ready, .params = faces_params,
    .check = faces_check, .run = faces_run, .release = faces_release};

/* ---- POST /v1/verify ----------------------------------------------------------------------- */

static const char *side_field(int k)
{
    return k == 0 ? "image1" : "image2";
}

/* One side's descriptor: given, or from its image (srv_face_verify_image). */
static int side_descriptor(struct verify_job *j, struct srv_worker_state *ws, int k,
                           float out[ENG_FACE_DESCRIPTOR], struct proto_verify_face *vf,
                           struct proto_face_timing *t, struct proto_err *e)
{
    const struct proto_verify_request *p = &j->params;
    const struct proto_verify_side *s = &p->side[k];
    struct eng_image img = {0};
    *vf = (struct proto_verify_face){0};
    if (s->input == PROTO_VERIFY_EMBEDDING) {
        memcpy(out, s->embedding, sizeof(float) * ENG_FACE_DESCRIPTOR);
        return 0;
    }
    const double t0 = srv_now_ms();
    if (decode(j->head.app, &s->image, p->opt.exif, &img, NULL, side_field(k), e))
        return -1;
    t->decode += ms_since(t0);
    const int rc = srv_face_verify_image(j->head.app->faces, ws->face_ctx, &img, p, ws->faces,
                                         SRV_MAX_FACES, out, vf, t, side_field(k), e);
    eng_image_release(&img);
    return rc;
}

static struct srv_param_sink verify_params(struct srv_job *job, enum proto_dialect dialect)
{
    struct verify_job *j = (struct verify_job *)job;
    proto_verify_request_init(&j->params, dialect);
    return srv_params_verify_sink(&j->params);
}

static int verify_check(struct srv_job *job, struct proto_err *e)
{
    struct verify_job *j = (struct verify_job *)job;
    job->timeout_ms = j->params.opt.timeout_ms;
    return proto_verify_request_check(&j->params, e);
}

static int verify_run(struct srv_job *job, struct srv_worker_state *ws, char **body, struct proto_err *e)
{
    struct verify_job *j = (struct verify_job *)job;
    struct proto_verify_response r = {.request_id = srv_req_id(job->req),
                                      .threshold = j->params.match_threshold,
                                      .timing_ms = {.queue = job->job.queue_ms}};
    float desc[2][ENG_FACE_DESCRIPTOR];
    if (check_input_size(job->app, &j->params.opt, e))
        return -1;
    for (int k = 0; k < 2; k++)
        if (side_descriptor(j, ws, k, desc[k], &r.faces[k], &r.timing_ms, e))
            return -1;
    r.squared_distance = eng_face_distance_sq(desc[0], desc[1]);
    r.timing_ms.total = srv_req_elapsed_ms(job->req);
    *body = job->route->encode(&r);
    return 0;
}

static void verify_release(struct srv_job *job)
{
    proto_verify_request_release(&((struct verify_job *)job)->params);
}

const struct srv_job_kind srv_verify_job = {
    .size = sizeof(struct verify_job), .ready = faces_ready, .params = verify_params,
    .check = verify_check, .run = verify_run, .release = verify_release};
