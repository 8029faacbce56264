/* srv_params.h - where each route's request parts go: the parameter sinks of POST /v1/detect, /v1/faces,
 * /v1/verify and their DeepStack aliases, which srv_collect_params (srv_job.c) feeds with the query
 * arguments, the form fields or JSON body and the X-Timeout-Ms header. The daemon's routes and the HTTP
 * fuzzer (fuzz/fuzz_http.c) and the CLI's options (srv_cli_param) use these same sinks, so all of them
 * parse parameters as the daemon does.
 * Only proto/ here, no HTTP: this is part of visiond_server_lib. */
#ifndef SRV_PARAMS_H
#define SRV_PARAMS_H

#include <stddef.h>

#include "proto_errors.h"
#include "proto_face.h"
#include "proto_request.h"

/* Where the parts of a request go: each route's proto request type provides these. */
struct srv_param_sink {
    void *req;
    int (*set)(void *req, const char *key, const char *value, struct proto_err *err);
    /* A file part or raw body; name is the form field ("image", "image1"), NULL for a raw body. */
    int (*set_image)(void *req, const char *name, const unsigned char *data, size_t len,
                     struct proto_err *err);
    int (*parse_json)(void *req, const char *body, size_t len, struct proto_err *err);
    int raw_body_ok; /* a raw image body is one of the route's forms */
    /* The X-Timeout-Ms header is the parameter timeout_ms unless the request set that itself: *given
     * & timeout_bit says whether it did (given NULL: the route takes no timeout). */
    const unsigned *given;
    unsigned timeout_bit;
};

/* A sink that fills p (initialized by the caller, who also releases it). Returned by value; it borrows
 * p, which must outlive every call through it. Through the sink, keys and text values are copied as the
 * proto_*_request_set functions do; image bytes are borrowed (set_image_static): they must stay valid and
 * unchanged until p is released (the daemon's request body: until the route has answered). Every call
 * returns 0, or -1 with *err filled by proto/ (or, for verify, UNSUPPORTED_MEDIA_TYPE on a raw body,
 * which cannot hold two images). Thread safety: as p's, one thread at a time. */
struct srv_param_sink srv_params_detect_sink(struct proto_detect_request *p); /* raw body: the image */
struct srv_param_sink srv_params_faces_sink(struct proto_face_request *p);    /* raw body: the image */
struct srv_param_sink srv_params_verify_sink(struct proto_verify_request *p); /* multipart or JSON only */

/* The X-Timeout-Ms header's value (NULL: none) into the request behind sink: as the timeout_ms parameter
 * (same bounds, same message), unless the request set timeout_ms itself, which wins. 0, or -1 with *e. */
int srv_params_timeout_header(const struct srv_param_sink *sink, const char *header, struct proto_err *e);

#endif
