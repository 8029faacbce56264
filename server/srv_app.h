/* srv_app.h - the daemon's state shared by its route files (srv_serve.c: YOLO routes, start-up and
 * shutdown; srv_faces.c: face routes). Private to server/. */
#ifndef SRV_APP_H
#define SRV_APP_H

#include <stdatomic.h>

#include "detect.h"
#include "face.h"
#include "net.h"
#include "proto_errors.h"
#include "proto_face.h"
#include "proto_request.h"
#include "srv_config.h"
#include "srv_face_steps.h" /* SRV_MAX_FACES */
#include "srv_gallery.h"
#include "srv_http.h"
#include "srv_metrics.h"
#include "srv_params.h" /* struct srv_param_sink and the routes' sinks */
#include "team.h"
#include "workers.h"

#define SRV_MAX_MODELS 32

struct srv_model {
    char *name;
    struct eng_net *net;
    struct eng_detect_params defaults;
};

/* One generation of the daemon: what a SIGHUP reload replaces as a whole (srv_serve.c). A job keeps
 * using the generation it was submitted with; the generation outlives its pool's jobs. */
struct srv_app {
    struct srv_config *cfg;
    struct srv_model models[SRV_MAX_MODELS];
    int n_models;
    int default_model;
    int max_classes;
    struct eng_face_models *faces; /* NULL when the face models are not installed or broken */
    char faces_error[512];         /* why installed face models did not load ("" if they did) */
    char models_error[512];        /* the first model folder that did not load, and why ("" if none) */
    struct srv_gallery *gallery;   /* NULL when it could not be opened (srv_gallery.h) */
    char gallery_error[512];       /* why not ("" if it opened) */
    struct srv_keys *keys;
    struct eng_workers *pool;
    struct eng_cores *cores;       /* the cores the workers' teams share (threading = auto), or NULL */
    struct srv_http *http;       /* borrowed: the daemon's, shared by all generations */
    struct srv_metrics *metrics; /* borrowed: the daemon's, shared by all generations */
    atomic_int ready;
    atomic_int users;            /* handlers running on this generation (srv_serve.c app_acquire) */
};

/* What each worker owns: contexts for every model and room for one request's results. */
struct srv_worker_state {
    struct eng_team *team; /* splits this worker's forward passes across cores, or NULL */
    struct eng_ctx *ctx[SRV_MAX_MODELS];
    float *arena;          /* the activations of every context above and face_ctx: one job at a time */
    size_t arena_floats;
    struct eng_detection dets[PROTO_MAX_DET_MAX];
    unsigned char *class_mask;
    struct eng_face_ctx *face_ctx;
    struct eng_face faces[SRV_MAX_FACES];
    float embeddings[SRV_MAX_FACES][ENG_FACE_DESCRIPTOR];
    struct proto_face face_out[SRV_MAX_FACES];
};

/* Feeds query arguments, then the body (multipart, JSON or raw image) and X-Timeout-Ms to sink. */
int srv_collect_params(struct srv_req *req, const struct srv_param_sink *sink, struct proto_err *e);

/* Replies: body is taken (NULL: 500); errors in the route's dialect. */
void srv_reply_json(struct srv_req *req, int status, char *body, const char *const *headers);
void srv_reply_err(struct srv_req *req, enum proto_dialect dialect, const struct proto_err *e);
void srv_reply_code(struct srv_req *req, enum proto_dialect dialect, enum proto_code code,
                    const char *field, const char *msg);

/* Submits a deferred job whose callbacks reply; on refusal replies 503 itself and returns -1 (the
 * caller still owns the job then). */
int srv_submit(struct srv_app *app, struct srv_req *req, struct eng_job *job, enum proto_dialect dialect,
               int timeout_ms);

/* Face routes (srv_faces.c). */
int srv_faces_load(struct srv_app *app);
int srv_faces_worker_init(struct srv_app *app, struct srv_worker_state *ws, struct eng_err *err);
void srv_faces_worker_free(struct srv_worker_state *ws);
void srv_faces_handler(struct srv_req *req, void *app);
void srv_faces_deepstack_handler(struct srv_req *req, void *app);
void srv_verify_handler(struct srv_req *req, void *app);
void srv_verify_deepstack_handler(struct srv_req *req, void *app);

#endif
