/* srv_route.h - the route table (srv_routes.c) and what a row's job is made of.
 *
 * A route is a row: method, path pattern, error dialect, auth scope, handler, and for the routes that
 * run a model, a job kind (the parameter schema, the job function) and an encoder. The one handler of
 * job routes, srv_job_handler, does for every such route what the HTTP side needs: refuse when the
 * route cannot serve, allocate the job, collect and check its parameters, submit it with its deadline;
 * and on the worker side: run it, free it, reply with the encoded body or the error. The HTTP layer
 * gives every row auth, CORS, limits, metrics, the access log and the error shape (srv_http.h).
 *
 * Adding a route: a row in srv_routes.c and, for a job route, a struct srv_job_kind (a job struct that
 * starts with struct srv_job, and its functions). Private to server/. */
#ifndef SRV_ROUTE_H
#define SRV_ROUTE_H

#include <stddef.h>

#include "proto_errors.h"
#include "srv_http.h"
#include "srv_params.h"
#include "workers.h"

struct srv_app;
struct srv_worker_state;

/* The head of every route's job (a kind's job struct starts with it). */
struct srv_job {
    struct eng_job job;
    struct srv_app *app;          /* the generation the job runs on */
    struct srv_req *req;          /* replied to once, by srv_job_handler's callbacks */
    const struct srv_route *route;
    int timeout_ms;               /* the request's own deadline (0: the configured one); set by check */
};

struct srv_job_kind {
    size_t size; /* of the kind's job struct */
    /* 0 if the route can serve now, else -1 with *e (checked before the parameters); may be NULL. */
    int (*ready)(const struct srv_app *app, struct proto_err *e);
    /* The parameter schema: initializes the job's request for the dialect and returns its sink. */
    struct srv_param_sink (*params)(struct srv_job *j, enum proto_dialect dialect);
    /* Once every part is in: the cross-checks (and e.g. the model); 0, or -1 with *e. */
    int (*check)(struct srv_job *j, struct proto_err *e);
    /* The job function, on a worker: 0 with *body (new, from j->route->encode; NULL: out of memory),
     * or -1 with *e. Releases what it took (images) before returning. */
    int (*run)(struct srv_job *j, struct srv_worker_state *ws, char **body, struct proto_err *e);
    /* Frees what params/check/run left in the job (not the job itself); NULL-safe on a zeroed job. */
    void (*release)(struct srv_job *j);
    int status; /* of a success: 0 is 200; 201 for a route that creates */
};

/* The daemon's route table (srv_routes.c): rows, borrowed, static. */
const struct srv_route *srv_routes(int *n);

/* `visiond routes`: prints the table, one row a line (methods, path, scope, dialect, name). Returns
 * the exit status. */
int srv_routes_print(int argc, char **argv);

/* The handler of every job route (app: a struct srv_app). */
void srv_job_handler(struct srv_req *req, void *app);

/* Feeds query arguments, then the body (multipart, JSON or raw image) and X-Timeout-Ms to sink. */
int srv_collect_params(struct srv_req *req, const struct srv_param_sink *sink, struct proto_err *e);

/* Job kinds (srv_detect.c, srv_faces.c) and the plain handlers (srv_status.c) the table names. */
extern const struct srv_job_kind srv_detect_job, srv_faces_job, srv_verify_job;
/* The gallery's (srv_gallery_jobs.c): enrolment (201) and DeepStack's register (200), identification. */
extern const struct srv_job_kind srv_gallery_enroll_job, srv_gallery_register_job, srv_gallery_identify_job;
void srv_models_handler(struct srv_req *req, void *app);
void srv_healthz_handler(struct srv_req *req, void *app);
void srv_readyz_handler(struct srv_req *req, void *app);
void srv_metrics_handler(struct srv_req *req, void *app);
void srv_openapi_handler(struct srv_req *req, void *app);
/* DeepStack-only plain routes (srv_deepstack.c): /v1/vision/custom/list, /v1/vision/scene. */
void srv_custom_list_handler(struct srv_req *req, void *app);
void srv_scene_handler(struct srv_req *req, void *app);

/* Encoders of the job routes' success bodies (srv_routes.c): response is the kind's response struct. */
char *srv_encode_detect(const void *response);
char *srv_encode_detect_deepstack(const void *response);
char *srv_encode_faces(const void *response);
char *srv_encode_faces_deepstack(const void *response);
char *srv_encode_verify(const void *response);
char *srv_encode_verify_deepstack(const void *response);

#endif
