/* srv_serve.c - the daemon: loads every model, starts the worker pool and the HTTP layer, routes
 * requests, reloads on SIGHUP and shuts down cleanly on SIGTERM/SIGINT.
 *
 * Data flow of POST /v1/detect: the HTTP layer collects the request; detect_handler (HTTP thread)
 * parses parameters with proto/, picks the model and submits a job; a worker decodes the image, runs
 * the model and NMS, encodes the JSON and replies, which resumes the suspended connection.
 *
 * Reload. Everything a SIGHUP can replace (settings, API keys, models, and the worker pool whose
 * contexts are sized for those models) is one generation, a struct srv_app. The daemon points at the
 * current one; a handler takes it with app_acquire() for as long as it runs, and its job keeps using
 * that generation. The main thread builds the new generation beside the running one, swaps the
 * pointer, waits until no handler holds the old one, then drains the old pool (queued and running
 * jobs finish on the old models) and frees it. A reload that fails to build leaves the old one. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "detect.h"
#include "image.h"
#include "net.h"
#include "proto_detect.h"
#include "proto_errors.h"
#include "proto_openapi.h"
#include "proto_request.h"
#include "kern.h"
#include "proto_output.h"
#include "srv_blas.h"
#include "srv_config.h"
#include "srv_http.h"
#include "srv_log.h"
#include "srv_metrics.h"
#include "srv_model.h"
#include "srv_serve.h"
#include "srv_systemd.h"
#include "team.h"
#include "workers.h"
#include "srv_app.h"

struct detect_job {
    struct eng_job job;
    struct srv_app *app;
    struct srv_req *req;
    struct proto_detect_request params;
    int model;
};

static volatile sig_atomic_t stop_requested, reload_requested;

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        stop_requested = 1;
}

/* The daemon: the HTTP layer, and the current generation that SIGHUP replaces (see the top). */
struct srv_daemon {
    pthread_mutex_t lock;        /* makes reading `app` and counting a user of it one step */
    struct srv_app *app;         /* the current generation; written only by the main thread */
    struct srv_http *http;
    struct srv_metrics *metrics; /* outlives generations: counters survive a reload */
    struct srv_config_args args; /* to read the configuration again */
    int listen_fd;               /* the service manager's socket, or -1 */
    char **cors;                 /* the HTTP layer's CORS origins: it outlives the generation they
                                    came from (a reload keeps their value, not their memory) */
};

/* The current generation, valid until app_release(). */
static struct srv_app *app_acquire(struct srv_daemon *d)
{
    pthread_mutex_lock(&d->lock);
    struct srv_app *app = d->app;
    atomic_fetch_add(&app->users, 1);
    pthread_mutex_unlock(&d->lock);
    return app;
}

static void app_release(struct srv_app *app)
{
    atomic_fetch_sub(&app->users, 1);
}

/* ---- replies ------------------------------------------------------------------------------- */

void srv_reply_json(struct srv_req *req, int status, char *body, const char *const *headers)
{
    if (!body) {
        srv_req_reply(req, 500, "application/json", NULL, 0, NULL);
        return;
    }
    srv_req_reply(req, status, "application/json", body, strlen(body), headers);
}

void srv_reply_err(struct srv_req *req, enum proto_dialect dialect, const struct proto_err *e)
{
    static const char *const retry[] = {"Retry-After", "1", NULL};
    const char *const *headers = (e->code == PROTO_ERR_QUEUE_FULL || e->code == PROTO_ERR_NOT_READY ||
                                  e->code == PROTO_ERR_GALLERY_UNAVAILABLE)
                                     ? retry
                                     : NULL;
    char *body = dialect == PROTO_DIALECT_DEEPSTACK
                     ? proto_deepstack_error_json(e->code, e->msg, srv_req_id(req))
                     : proto_err_json(e, srv_req_id(req));
    srv_reply_json(req, proto_code_status(e->code), body, headers);
}

void srv_reply_code(struct srv_req *req, enum proto_dialect dialect, enum proto_code code,
                       const char *field, const char *msg)
{
    struct proto_err e;
    proto_err_set(&e, code, field, "%s", msg ? msg : proto_code_message(code));
    srv_reply_err(req, dialect, &e);
}

/* ---- the detect job (worker side) ---------------------------------------------------------- */

static void job_finish(struct detect_job *j)
{
    proto_detect_request_release(&j->params);
    free(j);
}

static void detect_run(struct eng_job *job, void *state)
{
    struct detect_job *j = (struct detect_job *)job;
    struct srv_worker_state *ws = state;
    struct srv_app *app = j->app;
    const struct srv_model *m = &app->models[j->model];
    const enum proto_dialect dialect = j->params.dialect;
    struct srv_req *req = j->req;
    struct proto_err perr;
    struct eng_err err = {0};
    struct eng_image img = {0};
    struct eng_decode_info info = {0};
    struct eng_detect_params params;

    const double t0 = srv_now_ms();
    const struct eng_decode_opts dopts = {.max_pixels = (uint64_t)app->cfg->max_pixels,
                                          .apply_exif = j->params.exif};
    if (eng_image_decode(j->params.image, j->params.image_len, &dopts, &img, &info, &err)) {
        proto_err_from_eng(&perr, &err, "image");
        job_finish(j);
        srv_reply_err(req, dialect, &perr);
        return;
    }
    const double decode_ms = srv_now_ms() - t0;
    if (proto_detect_request_params(&j->params, m->net, &m->defaults, ws->class_mask, &params, &perr)) {
        eng_image_release(&img);
        job_finish(j);
        srv_reply_err(req, dialect, &perr);
        return;
    }
    struct eng_detect_timing t;
    const int n = eng_detect(m->net, ws->ctx[j->model], &img, &params, ws->dets, PROTO_MAX_DET_MAX,
                             &t, &err);
    const double run_ms = eng_workers_job_run_ms(job);
    srv_metrics_job(app->metrics, job->queue_ms, run_ms);
    if (n < 0) {
        proto_err_from_eng(&perr, &err, "image");
        eng_image_release(&img);
        job_finish(j);
        srv_reply_err(req, dialect, &perr);
        return;
    }
    const struct proto_detect_response r = {
        .request_id = srv_req_id(req), .model = m->name, .net = m->net, .width = img.width,
        .height = img.height, .exif_rotated = info.exif_rotated, .dets = ws->dets, .count = n,
        .decode_ms = decode_ms + t.preprocess_ms, .queue_ms = job->queue_ms,
        .inference_ms = t.infer_ms, .nms_ms = t.nms_ms, .total_ms = srv_req_elapsed_ms(req)};
    char *body = dialect == PROTO_DIALECT_DEEPSTACK ? proto_deepstack_response_json(&r)
                                                    : proto_detect_response_json(&r);
    eng_image_release(&img);
    job_finish(j); /* before the reply: the request's body (the image) dies with the reply */
    srv_reply_json(req, 200, body, NULL);
}

static void detect_expired(struct eng_job *job)
{
    struct detect_job *j = (struct detect_job *)job;
    const enum proto_dialect dialect = j->params.dialect;
    struct srv_req *req = j->req;
    char msg[128];
    snprintf(msg, sizeof msg, "the deadline passed after %.0f ms in the queue", job->queue_ms);
    job_finish(j);
    srv_reply_code(req, dialect, PROTO_ERR_TIMEOUT, NULL, msg);
}

static void detect_cancelled(struct eng_job *job)
{
    struct detect_job *j = (struct detect_job *)job;
    const enum proto_dialect dialect = j->params.dialect;
    struct srv_req *req = j->req;
    job_finish(j);
    srv_reply_code(req, dialect, PROTO_ERR_NOT_READY, NULL, "the server is shutting down");
}

/* ---- the detect handler (HTTP side) -------------------------------------------------------- */

static int is_raw_image_type(const char *ct)
{
    return strncmp(ct, "image/", 6) == 0 || strcmp(ct, "application/octet-stream") == 0;
}

int srv_collect_params(struct srv_req *req, const struct srv_param_sink *sink, struct proto_err *e)
{
    const char *const *keys, *const *values;
    const int nq = srv_req_query(req, &keys, &values);
    for (int i = 0; i < nq; i++)
        if (sink->set(sink->req, keys[i], values[i], e))
            return -1;
    const char *ct = srv_req_content_type(req);
    size_t len;
    const unsigned char *body = srv_req_body(req, &len);
    if (strcmp(ct, "multipart/form-data") == 0) {
        const struct srv_field *f;
        const int nf = srv_req_fields(req, &f);
        for (int i = 0; i < nf; i++) {
            /* File parts and the image fields are images; other parts are parameters. */
            const int is_image = f[i].filename || strncmp(f[i].name, "image", 5) == 0;
            int rc = is_image ? sink->set_image(sink->req, f[i].name, f[i].data, f[i].len, e)
                              : sink->set(sink->req, f[i].name, (const char *)f[i].data, e);
            if (rc)
                return -1;
        }
    } else if (strcmp(ct, "application/json") == 0) {
        if (sink->parse_json(sink->req, (const char *)body, len, e))
            return -1;
    } else if (sink->raw_body_ok &&
               (is_raw_image_type(ct) ||
                ((!ct[0] || strcmp(ct, "application/x-www-form-urlencoded") == 0) &&
                 eng_image_sniff(body, len) != ENG_IMAGE_UNKNOWN))) {
        if (sink->set_image(sink->req, NULL, body, len, e))
            return -1;
    } else {
        return proto_err_set(e, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, "Content-Type",
                             "Content-Type '%s' is not accepted: send %smultipart/form-data or "
                             "application/json", ct[0] ? ct : "(none)",
                             sink->raw_body_ok ? "image/jpeg, image/png, " : "");
    }
    const char *timeout = srv_req_header(req, "X-Timeout-Ms");
    if (timeout && sink->set(sink->req, "X-Timeout-Ms", timeout, e))
        return -1;
    return 0;
}

/* Fills p from whichever form the request used. */
static int collect_params(struct srv_req *req, struct proto_detect_request *p, struct proto_err *e)
{
    const struct srv_param_sink sink = srv_params_detect_sink(p);
    return srv_collect_params(req, &sink, e) ? -1 : proto_detect_request_check(p, e);
}

static int find_model(const struct srv_app *app, const char *name)
{
    if (!name)
        return app->default_model;
    for (int i = 0; i < app->n_models; i++)
        if (strcmp(app->models[i].name, name) == 0)
            return i;
    return -1;
}

static void detect_handler_dialect(struct srv_req *req, struct srv_app *app, enum proto_dialect dialect)
{
    struct proto_err e;
    struct detect_job *j = calloc(1, sizeof *j);
    if (!j) {
        srv_reply_code(req, dialect, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    proto_detect_request_init(&j->params, dialect);
    if (collect_params(req, &j->params, &e)) {
        job_finish(j);
        srv_reply_err(req, dialect, &e);
        return;
    }
    if ((j->model = find_model(app, j->params.model)) < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "no model named '%.128s' is loaded (GET /v1/models lists them)",
                 j->params.model);
        job_finish(j);
        srv_reply_code(req, dialect, PROTO_ERR_MODEL_NOT_FOUND, "model", msg);
        return;
    }
    j->app = app;
    j->req = req;
    j->job = (struct eng_job){.run = detect_run, .expired = detect_expired,
                              .cancelled = detect_cancelled};
    if (srv_submit(app, req, &j->job, dialect, j->params.timeout_ms))
        job_finish(j);
}

int srv_submit(struct srv_app *app, struct srv_req *req, struct eng_job *job, enum proto_dialect dialect,
               int timeout_ms)
{
    const int timeout = timeout_ms ? timeout_ms : app->cfg->timeout_ms;
    job->deadline_ns = (uint64_t)((srv_req_arrival_ms(req) + timeout) * 1e6);
    srv_req_defer(req);
    const enum eng_workers_submit_status st = eng_workers_submit(app->pool, job);
    if (st == ENG_WORKERS_OK)
        return 0; /* the worker replies; neither req nor the job are the caller's any more */
    if (st == ENG_WORKERS_FULL)
        srv_reply_code(req, dialect, PROTO_ERR_QUEUE_FULL, NULL, "all workers are busy and the queue is full");
    else
        srv_reply_code(req, dialect, PROTO_ERR_NOT_READY, NULL, "the server is shutting down");
    return -1;
}

static void detect_handler(struct srv_req *req, void *app)
{
    detect_handler_dialect(req, app, PROTO_DIALECT_NATIVE);
}

static void deepstack_handler(struct srv_req *req, void *app)
{
    detect_handler_dialect(req, app, PROTO_DIALECT_DEEPSTACK);
}

/* ---- other routes -------------------------------------------------------------------------- */

static void models_handler(struct srv_req *req, void *arg)
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
    srv_reply_json(req, 200,
                   proto_models_json_all(info, app->n_models, faces, app->faces ? 3 : 0), NULL);
}

static void healthz_handler(struct srv_req *req, void *app)
{
    (void)app;
    srv_reply_json(req, 200, proto_health_json("ok"), NULL);
}

static int over_high_water(struct srv_app *app)
{
    const size_t cap = eng_workers_capacity(app->pool);
    return (double)eng_workers_depth(app->pool) > app->cfg->queue_high_water * (double)cap;
}

static void readyz_handler(struct srv_req *req, void *arg)
{
    struct srv_app *app = arg;
    if (!atomic_load(&app->ready))
        srv_reply_code(req, PROTO_DIALECT_NATIVE, PROTO_ERR_NOT_READY, NULL, "models are still loading");
    else if (app->faces_error[0])
        srv_reply_code(req, PROTO_DIALECT_NATIVE, PROTO_ERR_NOT_READY, NULL, app->faces_error);
    else if (app->models_error[0]) /* a broken model: the others serve, but an operator must look */
        srv_reply_code(req, PROTO_DIALECT_NATIVE, PROTO_ERR_NOT_READY, NULL, app->models_error);
    else if (over_high_water(app))
        srv_reply_code(req, PROTO_DIALECT_NATIVE, PROTO_ERR_NOT_READY, NULL,
                   "the job queue is above its high-water mark");
    else
        srv_reply_json(req, 200, proto_health_json("ready"), NULL);
}

static void metrics_handler(struct srv_req *req, void *arg)
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
    srv_req_reply(req, page ? 200 : 500, "text/plain; version=0.0.4", page, page ? strlen(page) : 0,
                  NULL);
}

static void openapi_handler(struct srv_req *req, void *app)
{
    (void)app;
    char *doc = malloc(proto_openapi_json_len() + 1);
    if (doc)
        memcpy(doc, proto_openapi_json(), proto_openapi_json_len() + 1);
    srv_req_reply(req, doc ? 200 : 500, "application/json", doc, doc ? proto_openapi_json_len() : 0,
                  NULL);
}

static char *deepstack_error_body(int code, const char *message, const char *field,
                                  const char *request_id)
{
    (void)field;
    return proto_deepstack_error_json((enum proto_code)code, message, request_id);
}

/* The HTTP layer calls handlers with the daemon; these run one on the current generation. */
#define ON_CURRENT_APP(handler)                                                                      \
    static void handler##_current(struct srv_req *req, void *daemon)                                 \
    {                                                                                                \
        struct srv_app *app = app_acquire(daemon);                                                   \
        handler(req, app);                                                                           \
        app_release(app);                                                                            \
    }
ON_CURRENT_APP(detect_handler)
ON_CURRENT_APP(deepstack_handler)
ON_CURRENT_APP(srv_faces_handler)
ON_CURRENT_APP(srv_verify_handler)
ON_CURRENT_APP(srv_faces_deepstack_handler)
ON_CURRENT_APP(srv_verify_deepstack_handler)
ON_CURRENT_APP(models_handler)
ON_CURRENT_APP(readyz_handler)
ON_CURRENT_APP(metrics_handler)
ON_CURRENT_APP(srv_gallery_subjects)
ON_CURRENT_APP(srv_gallery_identify)
ON_CURRENT_APP(srv_gallery_info)
ON_CURRENT_APP(srv_gallery_ds_register)
ON_CURRENT_APP(srv_gallery_ds_recognize)
ON_CURRENT_APP(srv_gallery_ds_list)
ON_CURRENT_APP(srv_gallery_ds_delete)

static const struct srv_route routes[] = {
    {"/v1/detect", SRV_POST, detect_handler_current, 1, "detect", NULL},
    {"/v1/vision/detection", SRV_POST, deepstack_handler_current, 1, "deepstack_detection",
     deepstack_error_body},
    {"/v1/faces", SRV_POST, srv_faces_handler_current, 1, "faces", NULL},
    {"/v1/verify", SRV_POST, srv_verify_handler_current, 1, "verify", NULL},
    {"/v1/vision/face", SRV_POST, srv_faces_deepstack_handler_current, 1, "deepstack_face",
     deepstack_error_body},
    {"/v1/vision/face/match", SRV_POST, srv_verify_deepstack_handler_current, 1, "deepstack_face_match",
     deepstack_error_body},
    {"/v1/models", SRV_GET | SRV_HEAD, models_handler_current, 1, "models", NULL},
    {"/healthz", SRV_GET | SRV_HEAD, healthz_handler, 0, "healthz", NULL},
    {"/readyz", SRV_GET | SRV_HEAD, readyz_handler_current, 0, "readyz", NULL},
    {"/metrics", SRV_GET, metrics_handler_current, 1, "metrics", NULL},
    {"/openapi.json", SRV_GET, openapi_handler, 1, "openapi", NULL},
    /* the gallery (srv_gallery.h) */
    {"/v1/subjects", SRV_GET | SRV_POST, srv_gallery_subjects_current, 1, "subjects", NULL},
    {"/v1/identify", SRV_POST, srv_gallery_identify_current, 1, "identify", NULL},
    {"/identify", SRV_POST, srv_gallery_identify_current, 1, "identify", NULL},
    {"/v1/gallery", SRV_GET | SRV_HEAD, srv_gallery_info_current, 1, "gallery", NULL},
    {"/v1/vision/face/register", SRV_POST, srv_gallery_ds_register_current, 1, "deepstack_face_register",
     deepstack_error_body},
    {"/v1/vision/face/recognize", SRV_POST, srv_gallery_ds_recognize_current, 1, "deepstack_face_recognize",
     deepstack_error_body},
    {"/v1/vision/face/list", SRV_POST, srv_gallery_ds_list_current, 1, "deepstack_face_list",
     deepstack_error_body},
    {"/v1/vision/face/delete", SRV_POST, srv_gallery_ds_delete_current, 1, "deepstack_face_delete",
     deepstack_error_body},
};

static int auth_ok(void *daemon, const char *key)
{
    struct srv_app *app = app_acquire(daemon);
    const int ok = !app->keys || srv_keys_check(app->keys, key);
    app_release(app);
    return ok;
}

static const char *method_name(enum srv_method m)
{
    switch (m) {
    case SRV_GET: return "GET";
    case SRV_POST: return "POST";
    case SRV_OPTIONS: return "OPTIONS";
    case SRV_HEAD: return "HEAD";
    }
    return "OTHER";
}

static void request_finished(void *daemon, const struct srv_req *req)
{
    struct srv_app *app = app_acquire(daemon);
    const double ms = srv_req_elapsed_ms(req);
    srv_metrics_request(app->metrics, srv_req_route_name(req), srv_req_status(req), ms);
    if (app->cfg->access_log)
        srv_log_request(srv_req_id(req), method_name(srv_req_method(req)), srv_req_route_name(req),
                        srv_req_status(req), srv_req_bytes_in(req), srv_req_bytes_out(req), ms);
    app_release(app);
}

/* ---- start-up ------------------------------------------------------------------------------ */

static void worker_state_free(int worker, void *arg, void *state);

/* Threads a pass uses at most in auto mode: layers are cut into 8 tasks (engine/conv.c), two per thread
 * at 4, so more cores serve more passes at once instead. */
#define AUTO_TEAM_MAX 4

/* The worker's thread team (README, "Threading"): none in throughput mode; in auto mode up to
 * AUTO_TEAM_MAX threads borrowing idle cores from the generation's budget (ENG_CORES_SHARE), so busy threads never exceed
 * `threads`; in latency mode `threads` threads for every pass. */
static int worker_team_new(struct srv_app *app, struct srv_worker_state *ws, struct eng_err *err)
{
    const struct srv_config *cfg = app->cfg;
    if (cfg->threading == SRV_THREADING_THROUGHPUT || cfg->threads <= 1)
        return 0;
    const int size = cfg->threading == SRV_THREADING_AUTO && cfg->threads > AUTO_TEAM_MAX ? AUTO_TEAM_MAX
                                                                                          : cfg->threads;
    ws->team = eng_team_new(size, app->cores, err);
    return ws->team ? 0 : -1;
}

/* One activation arena per worker, shared by all its contexts since a worker runs one job at a time:
 * the largest model's activations instead of the sum over every model (issue #5's memory target). */
static int worker_arena_new(const struct srv_app *app, struct srv_worker_state *ws)
{
    size_t floats = 0;
    if (app->faces && !(floats = eng_face_ctx_arena_floats(app->faces)))
        return -1;
    for (int i = 0; i < app->n_models; i++) {
        const size_t f = eng_ctx_arena_floats(app->models[i].net);
        if (!f)
            return -1;
        floats = f > floats ? f : floats;
    }
    ws->arena_floats = floats;
    return floats && !(ws->arena = malloc(sizeof(float) * floats)) ? -1 : 0;
}

static int worker_state_new(int worker, void *arg, void **out, struct eng_err *err)
{
    (void)worker;
    struct srv_app *app = arg;
    struct srv_worker_state *ws = calloc(1, sizeof *ws);
    if (!ws || !(ws->class_mask = calloc((size_t)app->max_classes + 1, 1)) || worker_arena_new(app, ws)) {
        if (ws)
            free(ws->class_mask);
        free(ws);
        return eng_err_set(err, ENG_ERR_NOMEM, "worker", "out of memory");
    }
    if (worker_team_new(app, ws, err))
        goto fail;
    for (int i = 0; i < app->n_models; i++) {
        if (!(ws->ctx[i] = eng_ctx_new_shared(app->models[i].net, ws->arena, ws->arena_floats, err)) || eng_ctx_set_team(ws->ctx[i], ws->team, err))
            goto fail;
        /* Warm-up: touches every buffer and lets OpenBLAS set itself up before the first request;
         * on a zero image, since the arena is uninitialised (valgrind: results of garbage). */
        memset(ws->ctx[i]->input, 0, sizeof(float) * eng_shape_size(app->models[i].net->input));
        eng_net_forward(app->models[i].net, ws->ctx[i]);
    }
    if (srv_faces_worker_init(app, ws, err) ||
        (ws->face_ctx && eng_face_ctx_set_team(ws->face_ctx, ws->team, err)))
        goto fail;
    *out = ws;
    return 0;
fail:
    worker_state_free(worker, app, ws);
    return -1;
}

static void worker_state_free(int worker, void *arg, void *state)
{
    (void)worker;
    struct srv_app *app = arg;
    struct srv_worker_state *ws = state;
    if (!ws)
        return;
    for (int i = 0; i < app->n_models; i++)
        eng_ctx_free(ws->ctx[i]);
    srv_faces_worker_free(ws);
    eng_team_free(ws->team); /* after the contexts that borrow it */
    free(ws->class_mask);
    free(ws->arena); /* after the contexts that borrow it */
    free(ws);
}

static int load_one_model(struct srv_app *app, const char *name)
{
    struct eng_err err = {0};
    struct eng_net *net = NULL;
    const struct srv_model_spec spec = {.name = name, .models_dir = app->cfg->models};
    if (srv_model_load(&spec, &net, &err)) {
        char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
        SRV_LOG(SRV_LOG_ERROR, "model %s not loaded: %s", name, eng_err_format(&err, buf, sizeof buf));
        if (!app->models_error[0]) {
            /* cut to fit: enough for /readyz, the log line above has it all */
            snprintf(app->models_error, sizeof app->models_error, "model %.64s not loaded: %.400s", name, buf);
        }
        return -1;
    }
    struct srv_model *m = &app->models[app->n_models];
    if (!(m->name = strdup(name))) {
        eng_net_free(net);
        return -1;
    }
    m->net = net;
    eng_detect_params_default(&m->defaults);
    app->n_models++;
    if (net->classes > app->max_classes)
        app->max_classes = net->classes;
    SRV_LOG(SRV_LOG_INFO, "loaded model %s from %s/%s: input %dx%d, %d classes, %d layers, %.2f GFLOP",
            name, app->cfg->models, name, net->input.w, net->input.h, net->classes, net->n_layers,
            net->flops / 1e9);
    return 0;
}

/* Every sub-folder of the models directory holding <name>/<name>.cfg is a model. strict (a reload):
 * a model that fails to load fails them all, so the running set stays. */
static int load_models(struct srv_app *app, int strict)
{
    int failed = 0;
    DIR *d = opendir(app->cfg->models);
    if (!d) {
        SRV_LOG(SRV_LOG_ERROR, "cannot open models directory %s: %s (run scripts/fetch-models)",
                app->cfg->models, strerror(errno));
        return -1;
    }
    for (struct dirent *e; (e = readdir(d)) && app->n_models < SRV_MAX_MODELS;) {
        char cfg[4096];
        struct stat st;
        if (e->d_name[0] == '.' ||
            snprintf(cfg, sizeof cfg, "%s/%s/%s.cfg", app->cfg->models, e->d_name, e->d_name) >=
                (int)sizeof cfg ||
            stat(cfg, &st) != 0)
            continue;
        failed += load_one_model(app, e->d_name) != 0;
    }
    closedir(d);
    if (strict && failed)
        return -1;
    app->default_model = find_model(app, app->cfg->default_model);
    if (app->default_model < 0) {
        SRV_LOG(SRV_LOG_ERROR, "default model %s is not among the loaded models in %s",
                app->cfg->default_model, app->cfg->models);
        return -1;
    }
    return 0;
}

/* Frees a generation whose pool is stopped, or was never started (eng_workers_free stops it). */
static void app_free(struct srv_app *app)
{
    if (!app)
        return;
    eng_workers_free(app->pool);
    eng_cores_free(app->cores);
    for (int i = 0; i < app->n_models; i++) {
        eng_net_free(app->models[i].net);
        free(app->models[i].name);
    }
    srv_gallery_free(app->gallery);
    eng_face_models_free(app->faces);
    srv_keys_free(app->keys);
    srv_config_free(app->cfg);
    free(app);
}

/* A new generation from cfg (taken): API keys, every model, the face models and a warmed-up worker
 * pool. strict (a reload): broken models or face models fail it instead of being served around. */
static struct srv_app *app_new(struct srv_daemon *d, struct srv_config *cfg, int strict)
{
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    struct srv_app *app = calloc(1, sizeof *app);
    if (!app) {
        SRV_LOG(SRV_LOG_ERROR, "out of memory");
        srv_config_free(cfg);
        return NULL;
    }
    app->cfg = cfg;
    app->metrics = d->metrics;
    app->http = d->http;
    if (cfg->keys[0] && !(app->keys = srv_keys_load(cfg->keys, &err))) {
        SRV_LOG(SRV_LOG_ERROR, "API keys: %s", eng_err_format(&err, buf, sizeof buf));
        goto fail;
    }
    if (load_models(app, strict) || srv_faces_load(app) || (strict && app->faces_error[0]))
        goto fail;
    srv_gallery_load(app);
    if (cfg->threading == SRV_THREADING_AUTO &&
        !(app->cores = eng_cores_new_policy(cfg->threads, ENG_CORES_SHARE))) {
        SRV_LOG(SRV_LOG_ERROR, "out of memory");
        goto fail;
    }
    const struct eng_workers_config wc = {.workers = cfg->workers, .queue_cap = (size_t)cfg->queue,
                                          .state_new = worker_state_new,
                                          .state_free = worker_state_free, .arg = app};
    if (!(app->pool = eng_workers_new(&wc, &err))) {
        SRV_LOG(SRV_LOG_ERROR, "workers: %s", eng_err_format(&err, buf, sizeof buf));
        goto fail;
    }
    atomic_store(&app->ready, 1);
    return app;
fail:
    app_free(app);
    return NULL;
}

static void strings_free(char **list)
{
    for (char **p = list; p && *p; p++)
        free(*p);
    free(list);
}

/* A NULL-terminated copy of list (new, strings_free), or NULL if out of memory. */
static char **strings_copy(char *const *list, size_t n)
{
    char **out = calloc(n + 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++)
        if (!(out[i] = strdup(list[i]))) {
            strings_free(out);
            return NULL;
        }
    return out;
}

/* Loads the first generation (cfg is taken), then starts serving and tells the service manager. */
static int start(struct srv_daemon *d, struct srv_config *cfg)
{
    srv_blas_set_threads(cfg->blas_threads);
    proto_set_precision((enum proto_precision)cfg->json_precision);
    struct srv_app *app = NULL;
    if (!(d->metrics = srv_metrics_new()) || !(app = app_new(d, cfg, 0))) {
        if (!d->metrics)
            srv_config_free(cfg);
        return -1;
    }
    d->app = app;
    if (!(d->cors = strings_copy(app->cfg->cors, app->cfg->n_cors))) {
        SRV_LOG(SRV_LOG_ERROR, "out of memory");
        return -1;
    }
    const struct srv_http_opts ho = {
        .bind = app->cfg->bind, .port = app->cfg->port, .listen_fd = d->listen_fd,
        .max_body = app->cfg->max_body, .threads = 2,
        .max_connections = (unsigned)app->cfg->max_connections,
        .max_connections_per_ip = (unsigned)app->cfg->max_connections_per_ip,
        .connection_timeout_s = (unsigned)app->cfg->idle_timeout_s,
        .read_timeout_ms = (unsigned)app->cfg->read_timeout_ms,
        .cors_origins = (const char *const *)d->cors};
    const struct srv_http_hooks hooks = {.auth_ok = auth_ok, .finished = request_finished};
    char why[256];
    d->http = srv_http_start(&ho, routes, (int)(sizeof routes / sizeof routes[0]), &hooks, d, why,
                             sizeof why);
    if (!d->http) {
        SRV_LOG(SRV_LOG_ERROR, "%s", why);
        return -1;
    }
    app->http = d->http;
    SRV_LOG(SRV_LOG_INFO,
            "listening on %s:%d%s (%d models, %d workers, queue %d, kernels %s, BLAS %s x %d threads%s)",
            app->cfg->bind, srv_http_port(d->http), d->listen_fd >= 0 ? " (socket activation)" : "",
            app->n_models, app->cfg->workers, app->cfg->queue, eng_kern_best()->name, srv_blas_core(),
            app->cfg->blas_threads,
            app->keys ? ", API keys required" : "");
    srv_sd_notify("READY=1\nSTATUS=serving");
    return 0;
}

/* Socket activation: bind and port become the address of the service manager's socket, so the
 * loopback-or-keys rule (srv_config_validate) and the log speak of the address really listened on. */
static int adopt_listen_socket(const struct srv_daemon *d, struct srv_config *cfg, char *why, size_t n)
{
    char addr[INET6_ADDRSTRLEN];
    int port;
    if (d->listen_fd < 0)
        return 0;
    if (srv_sd_socket_addr(d->listen_fd, addr, sizeof addr, &port)) {
        snprintf(why, n, "socket activation: cannot read the socket's address: %s", strerror(errno));
        return -1;
    }
    char *copy = strdup(addr);
    if (!copy) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    free(cfg->bind);
    cfg->bind = copy;
    cfg->port = port;
    return 0;
}

/* What a reload may change; every other setting (bind, port, workers, queue, limits of the HTTP
 * layer, ...) is fixed at start, since the HTTP layer and the thread counts are. */
static const char *const reloadable[] = {"models", "default_model", "keys", "timeout_ms", "max_pixels",
                                         "access_log", "drain_timeout_ms", "queue_high_water", NULL};

static int is_reloadable(const char *name)
{
    for (const char *const *r = reloadable; *r; r++)
        if (strcmp(*r, name) == 0)
            return 1;
    return 0;
}

/* The configuration read again, with the settings a reload cannot change kept at their running
 * values ("needs restart" in the log). NULL (logged) if it does not load or validate. */
static struct srv_config *reload_config(const struct srv_daemon *d, const struct srv_config *running)
{
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4], why[256];
    struct srv_config *cfg = srv_config_load(&d->args, &err);
    if (!cfg) {
        SRV_LOG(SRV_LOG_ERROR, "reload: %s", eng_err_format(&err, buf, sizeof buf));
        return NULL;
    }
    if (adopt_listen_socket(d, cfg, why, sizeof why)) {
        SRV_LOG(SRV_LOG_ERROR, "reload: %s", why);
        srv_config_free(cfg);
        return NULL;
    }
    for (size_t i = 0; srv_config_name(i); i++) {
        const char *name = srv_config_name(i);
        const int kept = is_reloadable(name) ? 0 : srv_config_keep(cfg, running, name, &err);
        if (kept < 0)
            goto invalid;
        if (kept)
            SRV_LOG(SRV_LOG_WARN, "reload: %s changed, which needs restart; keeping the running value",
                    name);
    }
    char warnings[512] = "";
    if (srv_config_validate(cfg, sysconf(_SC_NPROCESSORS_ONLN), warnings, sizeof warnings, &err))
        goto invalid;
    return cfg;
invalid:
    SRV_LOG(SRV_LOG_ERROR, "reload: %s", eng_err_format(&err, buf, sizeof buf));
    srv_config_free(cfg);
    return NULL;
}

/* SIGHUP: a new generation from the configuration file, keys file and models directory as they are
 * now, swapped in; requests already holding the old one finish on it (see the top of this file). */
static void reload(struct srv_daemon *d)
{
    srv_sd_notify_reloading();
    SRV_LOG(SRV_LOG_INFO, "reloading: configuration, API keys and models");
    struct srv_app *old = d->app; /* only this thread writes d->app */
    struct srv_config *cfg = reload_config(d, old->cfg);
    struct srv_app *app = cfg ? app_new(d, cfg, 1) : NULL;
    if (!app) {
        SRV_LOG(SRV_LOG_ERROR, "reload failed: still serving the previous configuration and models");
        srv_sd_notify("READY=1\nSTATUS=serving (the last reload failed; see the log)");
        return;
    }
    pthread_mutex_lock(&d->lock);
    d->app = app;
    pthread_mutex_unlock(&d->lock);
    /* Handlers that took the old generation may still submit to its pool: wait for them first. */
    while (atomic_load(&old->users) > 0)
        nanosleep(&(struct timespec){0, 1000 * 1000}, NULL);
    eng_workers_stop(old->pool, 1);
    app_free(old);
    SRV_LOG(SRV_LOG_INFO, "reloaded: %d models (default %s), face models %s, API keys %s",
            app->n_models, app->models[app->default_model].name, app->faces ? "loaded" : "absent",
            app->keys ? "required" : "off");
    srv_sd_notify("READY=1\nSTATUS=serving");
}

/* SIGTERM: refuse new connections, let queued and running jobs finish, send their replies. */
static void drain(struct srv_daemon *d)
{
    struct srv_app *app = d->app;
    srv_sd_notify("STOPPING=1\nSTATUS=finishing the requests in flight");
    SRV_LOG(SRV_LOG_INFO, "stopping: finishing %d requests in flight", srv_http_in_flight(d->http));
    srv_http_quiesce(d->http);
    eng_workers_stop(app->pool, 1);
    const double until = srv_now_ms() + app->cfg->drain_timeout_ms;
    while (srv_http_in_flight(d->http) > 0 && srv_now_ms() < until)
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    SRV_LOG(SRV_LOG_INFO, "stopped (%d requests unfinished)", srv_http_in_flight(d->http));
}

static void install_signals(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* The configuration, with the service manager's socket adopted; checked. Returns 0 to serve, or the
 * exit status (after --help or --print-config, or on an error, which it prints). */
static int configure(struct srv_daemon *d, struct srv_config **out)
{
    struct eng_err err = {0};
    char buf[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4], why[256];
    struct srv_config *cfg = srv_config_load(&d->args, &err);
    if (!cfg) {
        fprintf(stderr, "visiond: %s\n", eng_err_format(&err, buf, sizeof buf));
        return 2;
    }
    if (cfg->help) {
        srv_config_usage(stdout);
        srv_config_free(cfg);
        return -1;
    }
    if (srv_sd_listen_fd(&d->listen_fd, why, sizeof why) || adopt_listen_socket(d, cfg, why, sizeof why)) {
        fprintf(stderr, "visiond: %s\n", why);
        srv_config_free(cfg);
        return 2;
    }
    char warnings[512] = "";
    const int invalid = srv_config_validate(cfg, sysconf(_SC_NPROCESSORS_ONLN), warnings,
                                            sizeof warnings, &err);
    if (cfg->print_config) {
        srv_config_print(cfg, stdout);
        srv_config_free(cfg);
        return invalid ? 2 : -1;
    }
    srv_log_min_level = (int)cfg->log_level;
    if (warnings[0])
        SRV_LOG(SRV_LOG_WARN, "%s", warnings);
    if (invalid) {
        SRV_LOG(SRV_LOG_ERROR, "%s", eng_err_format(&err, buf, sizeof buf));
        srv_config_free(cfg);
        return 2;
    }
    *out = cfg;
    return 0;
}

int srv_serve(int argc, char **argv)
{
    struct srv_daemon d = {.lock = PTHREAD_MUTEX_INITIALIZER, .args = {.argc = argc, .argv = argv},
                           .listen_fd = -1};
    struct srv_config *cfg = NULL;
    const int rc = configure(&d, &cfg);
    if (rc)
        return rc < 0 ? 0 : rc;
    install_signals();
    int status = 1;
    if (start(&d, cfg) == 0) {
        while (!stop_requested) {
            if (reload_requested) {
                reload_requested = 0;
                reload(&d);
            }
            nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
        }
        drain(&d);
        status = 0;
    }
    srv_http_stop(d.http);
    app_free(d.app);
    srv_metrics_free(d.metrics);
    strings_free(d.cors);
    return status;
}
