/* srv_status.c - the routes that run no job: the model list, health and readiness, metrics and the
 * OpenAPI document (rows of srv_routes.c; app is the current struct srv_app). */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proto_detect.h"
#include "proto_openapi.h"
#include "srv_app.h"
#include "srv_blas.h"
#include "srv_route.h"

void srv_models_handler(struct srv_req *req, void *arg)
{
    struct srv_app *app = arg;
    struct proto_model_info info[SRV_MAX_MODELS];
    for (int i = 0; i < app->n_models; i++) {
        const struct srv_model *m = &app->models[i];
        info[i] = (struct proto_model_info){.name = m->name, .net = m->net, .conf = m->defaults.conf,
                                            .iou = m->defaults.iou, .max_det = m->defaults.max_det,
                                            .is_default = i == app->default_model};
    }
    const int side = app->faces ? eng_face_models_max_input(app->faces) : 0;
    const struct proto_face_model_info faces[] = {
        {"tiny_face_detector", "face_detector", side, side},
        {"face_landmark_68", "face_landmarks", ENG_FACE_LANDMARK_INPUT, ENG_FACE_LANDMARK_INPUT},
        {"face_recognition", "face_recognition", ENG_FACE_CHIP, ENG_FACE_CHIP},
    };
    srv_req_reply_json(req, 200,
                   proto_models_json(info, app->n_models, faces, app->faces ? 3 : 0), NULL);
}

void srv_healthz_handler(struct srv_req *req, void *app)
{
    (void)app;
    srv_req_reply_json(req, 200, proto_health_json("ok"), NULL);
}

static int over_high_water(struct srv_app *app)
{
    const size_t cap = eng_workers_capacity(app->pool);
    return (double)eng_workers_depth(app->pool) > app->cfg->queue_high_water * (double)cap;
}

void srv_readyz_handler(struct srv_req *req, void *arg)
{
    struct srv_app *app = arg;
    if (!atomic_load(&app->ready))
        srv_req_reply_code(req, PROTO_ERR_NOT_READY, NULL, "models are still loading");
    else if (app->faces_error[0])
        srv_req_reply_code(req, PROTO_ERR_NOT_READY, NULL, app->faces_error);
    else if (app->models_error[0]) /* a broken model: the others serve, but an operator must look */
        srv_req_reply_code(req, PROTO_ERR_NOT_READY, NULL, app->models_error);
    else if (over_high_water(app))
        srv_req_reply_code(req, PROTO_ERR_NOT_READY, NULL,
                   "the job queue is above its high-water mark");
    else
        srv_req_reply_json(req, 200, proto_health_json("ready"), NULL);
}

void srv_metrics_handler(struct srv_req *req, void *arg)
{
    struct srv_app *app = arg;
    struct eng_workers_stats st;
    eng_workers_stats_read(app->pool, &st);
    const struct srv_metrics_gauges g = {
        .queue_depth = st.queued, .queue_capacity = st.capacity, .workers = st.workers,
        .busy_workers = st.busy, .expired = st.expired, .rejected = st.rejected_full,
        .read_timeouts = srv_http_read_timeouts(srv_req_server(req)), /* app->http is set after start */
        .ready = atomic_load(&app->ready), .blas_core = srv_blas_core()};
    char *page = srv_metrics_render(app->metrics, &g);
    if (!page) {
        srv_req_reply_code(req, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    srv_req_reply(req, 200, "text/plain; version=0.0.4", page, strlen(page), NULL);
}

void srv_openapi_handler(struct srv_req *req, void *app)
{
    (void)app;
    char *doc = malloc(proto_openapi_json_len() + 1);
    if (!doc) {
        srv_req_reply_code(req, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    memcpy(doc, proto_openapi_json(), proto_openapi_json_len() + 1);
    srv_req_reply(req, 200, "application/json", doc, proto_openapi_json_len(), NULL);
}

