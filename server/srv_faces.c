/* srv_faces.c - the face routes: POST /v1/faces, POST /v1/verify and their DeepStack aliases.
 *
 * Same flow as detection: the handler (HTTP thread) parses the request with proto/ and submits a job;
 * the worker decodes, runs the face networks from its own eng_face_ctx, encodes and replies. */
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

struct faces_job {
    struct eng_job job;
    struct srv_app *app;
    struct srv_req *req;
    struct proto_face_request params;
};

struct verify_job {
    struct eng_job job;
    struct srv_app *app;
    struct srv_req *req;
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

/* ---- POST /v1/faces ------------------------------------------------------------------------ */

static void faces_finish(struct faces_job *j)
{
    proto_face_request_release(&j->params);
    free(j);
}

static void faces_run(struct eng_job *job, void *state)
{
    struct faces_job *j = (struct faces_job *)job;
    struct srv_worker_state *ws = state;
    const struct proto_face_request *p = &j->params;
    const enum proto_dialect dialect = p->opt.dialect;
    struct srv_req *req = j->req;
    struct proto_err e;
    struct eng_image img = {0};
    struct eng_decode_info info = {0};
    struct proto_face_timing t = {.queue = job->queue_ms};
    char *body = NULL;

    const double t0 = srv_now_ms();
    if (check_input_size(j->app, &p->opt, &e) ||
        decode(j->app, &p->image, p->opt.exif, &img, &info, "image", &e))
        goto fail;
    t.decode = ms_since(t0);
    const int n = srv_face_find(j->app->faces, ws->face_ctx, &img, p, ws->faces, ws->embeddings,
                                ws->face_out, SRV_MAX_FACES, &t, &e);
    if (n < 0)
        goto fail;
    t.total = srv_req_elapsed_ms(req);
    const struct proto_faces_response r = {
        .request_id = srv_req_id(req), .landmark_model = p->landmarks ? "face_landmark_68" : NULL,
        .recognition_model = p->embedding ? "face_recognition" : NULL, .width = img.width,
        .height = img.height, .exif_rotated = info.exif_rotated, .faces = ws->face_out, .count = n,
        .timing_ms = t};
    body = dialect == PROTO_DIALECT_DEEPSTACK ? proto_faces_deepstack_json(&r)
                                              : proto_faces_response_json(&r);
    srv_metrics_job(j->app->metrics, job->queue_ms, eng_workers_job_run_ms(job));
    eng_image_release(&img);
    faces_finish(j);
    srv_reply_json(req, 200, body, NULL);
    return;
fail:
    eng_image_release(&img);
    faces_finish(j);
    srv_reply_err(req, dialect, &e);
}

/* ---- POST /v1/verify ----------------------------------------------------------------------- */

static void verify_finish(struct verify_job *j)
{
    proto_verify_request_release(&j->params);
    free(j);
}

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
    if (decode(j->app, &s->image, p->opt.exif, &img, NULL, side_field(k), e))
        return -1;
    t->decode += ms_since(t0);
    const int rc = srv_face_verify_image(j->app->faces, ws->face_ctx, &img, p, ws->faces, SRV_MAX_FACES,
                                         out, vf, t, side_field(k), e);
    eng_image_release(&img);
    return rc;
}

static void verify_run(struct eng_job *job, void *state)
{
    struct verify_job *j = (struct verify_job *)job;
    struct srv_worker_state *ws = state;
    const enum proto_dialect dialect = j->params.opt.dialect;
    struct srv_req *req = j->req;
    struct proto_err e;
    struct proto_verify_response r = {.request_id = srv_req_id(req),
                                      .threshold = j->params.match_threshold,
                                      .timing_ms = {.queue = job->queue_ms}};
    float desc[2][ENG_FACE_DESCRIPTOR];
    if (check_input_size(j->app, &j->params.opt, &e))
        goto fail;
    for (int k = 0; k < 2; k++)
        if (side_descriptor(j, ws, k, desc[k], &r.faces[k], &r.timing_ms, &e))
            goto fail;
    r.squared_distance = eng_face_distance_sq(desc[0], desc[1]);
    r.timing_ms.total = srv_req_elapsed_ms(req);
    char *body = dialect == PROTO_DIALECT_DEEPSTACK ? proto_verify_deepstack_json(&r)
                                                    : proto_verify_response_json(&r);
    srv_metrics_job(j->app->metrics, job->queue_ms, eng_workers_job_run_ms(job));
    verify_finish(j);
    srv_reply_json(req, 200, body, NULL);
    return;
fail:
    verify_finish(j);
    srv_reply_err(req, dialect, &e);
}

/* ---- expiry and cancellation (both job kinds) ---------------------------------------------- */

static void faces_expired(struct eng_job *job)
{
    struct faces_job *j = (struct faces_job *)job;
    struct srv_req *req = j->req;
    const enum proto_dialect d = j->params.opt.dialect;
    faces_finish(j);
    srv_reply_code(req, d, PROTO_ERR_TIMEOUT, NULL, "the deadline passed while the job was queued");
}

static void faces_cancelled(struct eng_job *job)
{
    struct faces_job *j = (struct faces_job *)job;
    struct srv_req *req = j->req;
    const enum proto_dialect d = j->params.opt.dialect;
    faces_finish(j);
    srv_reply_code(req, d, PROTO_ERR_NOT_READY, NULL, "the server is shutting down");
}

static void verify_expired(struct eng_job *job)
{
    struct verify_job *j = (struct verify_job *)job;
    struct srv_req *req = j->req;
    const enum proto_dialect d = j->params.opt.dialect;
    verify_finish(j);
    srv_reply_code(req, d, PROTO_ERR_TIMEOUT, NULL, "the deadline passed while the job was queued");
}

static void verify_cancelled(struct eng_job *job)
{
    struct verify_job *j = (struct verify_job *)job;
    struct srv_req *req = j->req;
    const enum proto_dialect d = j->params.opt.dialect;
    verify_finish(j);
    srv_reply_code(req, d, PROTO_ERR_NOT_READY, NULL, "the server is shutting down");
}

/* ---- handlers ------------------------------------------------------------------------------ */

static int faces_ready(struct srv_app *app, struct srv_req *req, enum proto_dialect d)
{
    if (app->faces)
        return 1;
    srv_reply_code(req, d, PROTO_ERR_NOT_READY, NULL,
                   app->faces_error[0] ? app->faces_error
                                       : "the face models are not installed on this server "
                                         "(scripts/fetch-models)");
    return 0;
}

static void faces_route(struct srv_req *req, struct srv_app *app, enum proto_dialect d)
{
    struct proto_err e;
    struct faces_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_reply_code(req, d, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    proto_face_request_init(&j->params, d);
    const struct srv_param_sink sink = srv_params_faces_sink(&j->params);
    if (srv_collect_params(req, &sink, &e) || proto_face_request_check(&j->params, &e)) {
        faces_finish(j);
        srv_reply_err(req, d, &e);
        return;
    }
    j->app = app;
    j->req = req;
    j->job = (struct eng_job){.run = faces_run, .expired = faces_expired, .cancelled = faces_cancelled};
    if (srv_submit(app, req, &j->job, d, j->params.opt.timeout_ms))
        faces_finish(j);
}

static void verify_route(struct srv_req *req, struct srv_app *app, enum proto_dialect d)
{
    struct proto_err e;
    struct verify_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_reply_code(req, d, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    proto_verify_request_init(&j->params, d);
    const struct srv_param_sink sink = srv_params_verify_sink(&j->params);
    if (srv_collect_params(req, &sink, &e) || proto_verify_request_check(&j->params, &e)) {
        verify_finish(j);
        srv_reply_err(req, d, &e);
        return;
    }
    j->app = app;
    j->req = req;
    j->job = (struct eng_job){.run = verify_run, .expired = verify_expired, .cancelled = verify_cancelled};
    if (srv_submit(app, req, &j->job, d, j->params.opt.timeout_ms))
        verify_finish(j);
}

void srv_faces_handler(struct srv_req *req, void *app)
{
    if (faces_ready(app, req, PROTO_DIALECT_NATIVE))
        faces_route(req, app, PROTO_DIALECT_NATIVE);
}

void srv_faces_deepstack_handler(struct srv_req *req, void *app)
{
    if (faces_ready(app, req, PROTO_DIALECT_DEEPSTACK))
        faces_route(req, app, PROTO_DIALECT_DEEPSTACK);
}

void srv_verify_handler(struct srv_req *req, void *app)
{
    if (faces_ready(app, req, PROTO_DIALECT_NATIVE))
        verify_route(req, app, PROTO_DIALECT_NATIVE);
}

void srv_verify_deepstack_handler(struct srv_req *req, void *app)
{
    if (faces_ready(app, req, PROTO_DIALECT_DEEPSTACK))
        verify_route(req, app, PROTO_DIALECT_DEEPSTACK);
}
