/* srv_job.c - the request path of every job route, written once (srv_route.h): on the HTTP thread,
 * readiness, the job's allocation, its parameters and checks, its submission with a deadline; on the
 * worker, the job function, then the job freed and the reply sent (success body or error). A job's
 * request body (the image bytes its parameters borrow) lives until the reply, so the job is always
 * freed before replying. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "srv_app.h"
#include "srv_route.h"

static void job_free(struct srv_job *j)
{
    if (j->route->job->release)
        j->route->job->release(j);
    free(j);
}

/* ---- worker side --------------------------------------------------------------------------- */

static void job_run(struct eng_job *job, void *state)
{
    struct srv_job *j = (struct srv_job *)job;
    struct srv_req *req = j->req;
    struct srv_app *app = j->app;
    struct proto_err e;
    char *body = NULL;
    const int rc = j->route->job->run(j, state, &body, &e);
    const int status = j->route->job->status ? j->route->job->status : 200;
    if (rc == 0)
        srv_metrics_job(app->metrics, job->queue_ms, eng_workers_job_run_ms(job));
    job_free(j);
    if (rc)
        srv_req_reply_error(req, &e);
    else
        srv_req_reply_json(req, status, body, NULL);
}

static void job_expired(struct eng_job *job)
{
    struct srv_job *j = (struct srv_job *)job;
    struct srv_req *req = j->req;
    char msg[128];
    snprintf(msg, sizeof msg, "the deadline passed after %.0f ms in the queue", job->queue_ms);
    job_free(j);
    srv_req_reply_code(req, PROTO_ERR_TIMEOUT, NULL, msg);
}

static void job_cancelled(struct eng_job *job)
{
    struct srv_job *j = (struct srv_job *)job;
    struct srv_req *req = j->req;
    job_free(j);
    srv_req_reply_code(req, PROTO_ERR_NOT_READY, NULL, "the server is shutting down");
}

/* ---- HTTP side ----------------------------------------------------------------------------- */

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
    return srv_params_timeout_header(sink, srv_req_header(req, "X-Timeout-Ms"), e);
}

/* Hands the deferred job to the pool; on refusal replies 503 itself and returns -1 (the job is still
 * the caller's then). */
static int submit(struct srv_job *j)
{
    const int timeout = j->timeout_ms ? j->timeout_ms : j->app->cfg->timeout_ms;
    j->job.deadline_ns = (uint64_t)((srv_req_arrival_ms(j->req) + timeout) * 1e6);
    srv_req_defer(j->req);
    const enum eng_workers_submit_status st = eng_workers_submit(j->app->pool, &j->job);
    if (st == ENG_WORKERS_OK)
        return 0; /* the worker replies; neither req nor the job are the caller's any more */
    if (st == ENG_WORKERS_FULL)
        srv_req_reply_code(j->req, PROTO_ERR_QUEUE_FULL, NULL, "all workers are busy and the queue is full");
    else
        srv_req_reply_code(j->req, PROTO_ERR_NOT_READY, NULL, "the server is shutting down");
    return -1;
}

void srv_job_handler(struct srv_req *req, void *arg)
{
    struct srv_app *app = arg;
    const struct srv_route *route = srv_req_route(req);
    const struct srv_job_kind *kind = route->job;
    struct proto_err e;
    if (kind->ready && kind->ready(app, &e)) {
        srv_req_reply_error(req, &e);
        return;
    }
    struct srv_job *j = calloc(1, kind->size);
    if (!j) {
        srv_req_reply_code(req, PROTO_ERR_INTERNAL, NULL, "out of memory");
        return;
    }
    *j = (struct srv_job){.job = {.run = job_run, .expired = job_expired, .cancelled = job_cancelled},
                          .app = app, .req = req, .route = route};
    const struct srv_param_sink sink = kind->params(j, route->dialect);
    if (srv_collect_params(req, &sink, &e) || kind->check(j, &e)) {
        job_free(j);
        srv_req_reply_error(req, &e);
        return;
    }
    if (submit(j))
        job_free(j);
}
