/* srv_app.h - the daemon's state shared by its route files (srv_serve.c: start-up, reload and
 * shutdown; srv_detect.c, srv_faces.c: the jobs; srv_status.c: the other routes). Private to server/. */
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
    struct srv_gallery *_Atomic gallery; /* NULL until it opens: srv_gallery_get (srv_gallery.h) */
    char gallery_error[512];       /* why it did not open at start-up ("" if it did) */
    struct srv_gallery_retry *gallery_retry; /* the database was unreachable: tried again on requests */
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

/* The index of the model called name (NULL: the default one), or -1 (srv_detect.c). */
int srv_find_model(const struct srv_app *app, const char *name);

/* The face models at start-up, and each worker's face context (srv_faces.c). */
int srv_faces_load(struct srv_app *app);
int srv_faces_worker_init(struct srv_app *app, struct srv_worker_state *ws, struct eng_err *err);
void srv_faces_worker_free(struct srv_worker_state *ws);

#endif
