/* srv_detect.c - the detection job (POST /v1/detect, /v1/vision/detection): its parameters are
 * proto_detect_request; on the worker it decodes the image, runs the model and NMS, and encodes the
 * detections with the route's encoder (native or DeepStack). */
#include <stdio.h>
#include <string.h>

#include "detect.h"
#include "image.h"
#include "proto_detect.h"
#include "proto_request.h"
#include "srv_app.h"
#include "srv_route.h"

struct detect_job {
    struct srv_job head;
    struct proto_detect_request params;
    int model;
};

static struct srv_param_sink detect_params(struct srv_job *job, enum proto_dialect dialect)
{
    struct detect_job *j = (struct detect_job *)job;
    proto_detect_request_init(&j->params, dialect);
    return srv_params_detect_sink(&j->params);
}

int srv_find_model(const struct srv_app *app, const char *name)
{
    if (!name)
        return app->default_model;
    for (int i = 0; i < app->n_models; i++)
        if (strcmp(app->models[i].name, name) == 0)
            return i;
    return -1;
}

static int detect_check(struct srv_job *job, struct proto_err *e)
{
    struct detect_job *j = (struct detect_job *)job;
    /* /v1/vision/custom/{model}: the model named in the path (and not again in the form) */
    const char *path_model = srv_req_path_param(job->req, "model");
    if (path_model && proto_detect_request_set(&j->params, "model", path_model, e))
        return -1;
    if (proto_detect_request_check(&j->params, e))
        return -1;
    if ((j->model = srv_find_model(job->app, j->params.model)) < 0)
        return proto_err_set(e, PROTO_ERR_MODEL_NOT_FOUND, "model",
                             "no model named '%.128s' is loaded (GET /v1/models lists them)", j->params.model);
    job->timeout_ms = j->params.timeout_ms;
    return 0;
}

static int detect_run(struct srv_job *job, struct srv_worker_state *ws, char **body, struct proto_err *e)
{
    struct detect_job *j = (struct detect_job *)job;
    const struct srv_app *app = job->app;
    const struct srv_model *m = &app->models[j->model];
    struct eng_err err = {0};
    struct eng_image img = {0};
    struct eng_decode_info info = {0};
    struct eng_detect_params params;
    struct eng_detect_timing t;

    const double t0 = srv_now_ms();
    const struct eng_decode_opts dopts = {.max_pixels = (uint64_t)app->cfg->max_pixels,
                                          .apply_exif = j->params.exif};
    if (eng_image_decode(j->params.image, j->params.image_len, &dopts, &img, &info, &err))
        return proto_err_from_eng(e, &err, "image");
    const double decode_ms = srv_now_ms() - t0;
    int n = -1;
    if (proto_detect_request_params(&j->params, m->net, &m->defaults, ws->class_mask, &params, e) == 0 &&
        (n = eng_detect(m->net, ws->ctx[j->model], &img, &params, ws->dets, PROTO_MAX_DET_MAX, &t,
                        &err)) < 0)
        proto_err_from_eng(e, &err, "image");
    if (n >= 0) {
        const struct proto_detect_response r = {
            .request_id = srv_req_id(job->req), .model = m->name, .net = m->net, .width = img.width,
            .height = img.height, .exif_rotated = info.exif_rotated, .dets = ws->dets, .count = n,
            .decode_ms = decode_ms + t.preprocess_ms, .queue_ms = job->job.queue_ms,
            .inference_ms = t.infer_ms, .nms_ms = t.nms_ms, .total_ms = srv_req_elapsed_ms(job->req)};
        *body = job->route->encode(&r);
    }
    eng_image_release(&img);
    return n < 0 ? -1 : 0;
}

static void detect_release(struct srv_job *job)
{
    proto_detect_request_release(&((struct detect_job *)job)->params);
}

const struct srv_job_kind srv_detect_job = {
    .size = sizeof(struct detect_job), .params = detect_params, .check = detect_check,
    .run = detect_run, .release = detect_release};
