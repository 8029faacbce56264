/* srv_params.c - the routes' parameter sinks (srv_params.h): each adapts a proto request type to the
 * form-independent calls of srv_collect_params. */
#include "srv_params.h"

#include <string.h>

int srv_params_timeout_header(const struct srv_param_sink *sink, const char *header, struct proto_err *e)
{
    if (!header || !sink->given || (*sink->given & sink->timeout_bit))
        return 0; /* the header yields to a timeout_ms parameter */
    return sink->set(sink->req, "timeout_ms", header, e);
}

/* ---- POST /v1/detect, /v1/vision/detection ------------------------------------------------- */

static int detect_set(void *r, const char *key, const char *value, struct proto_err *e)
{
    return proto_detect_request_set(r, key, value, e);
}

static int detect_set_image(void *r, const char *name, const unsigned char *data, size_t len,
                            struct proto_err *e)
{
    struct proto_detect_request *p = r;
    if (name && strcmp(name, "image") != 0)
        return proto_detect_request_set(p, name, (const char *)data, e);
    return proto_detect_request_set_image_static(p, data, len, e);
}

static int detect_parse_json(void *r, const char *body, size_t len, struct proto_err *e)
{
    return proto_detect_request_parse_json(r, body, len, e);
}

struct srv_param_sink srv_params_detect_sink(struct proto_detect_request *p)
{
    return (struct srv_param_sink){p, detect_set, detect_set_image, detect_parse_json, 1, &p->given,
                                   PROTO_PARAM_TIMEOUT};
}

/* ---- POST /v1/faces, /v1/vision/face ------------------------------------------------------- */

static int faces_set(void *r, const char *key, const char *value, struct proto_err *e)
{
    return proto_face_request_set(r, key, value, e);
}

static int faces_set_image(void *r, const char *name, const unsigned char *data, size_t len,
                           struct proto_err *e)
{
    if (name && strcmp(name, "image") != 0)
        return proto_face_request_set(r, name, (const char *)data, e);
    return proto_face_request_set_image_static(r, data, len, e);
}

static int faces_parse_json(void *r, const char *body, size_t len, struct proto_err *e)
{
    return proto_face_request_parse_json(r, body, len, e);
}

struct srv_param_sink srv_params_faces_sink(struct proto_face_request *p)
{
    return (struct srv_param_sink){p, faces_set, faces_set_image, faces_parse_json, 1, &p->opt.given,
                                   PROTO_FACE_PARAM_TIMEOUT};
}

/* ---- POST /v1/verify, /v1/vision/face/match ------------------------------------------------ */

static int verify_set(void *r, const char *key, const char *value, struct proto_err *e)
{
    return proto_verify_request_set(r, key, value, e);
}

static int verify_set_image(void *r, const char *name, const unsigned char *data, size_t len,
                            struct proto_err *e)
{
    if (!name) /* a raw body cannot carry two images */
        return proto_err_set(e, PROTO_ERR_UNSUPPORTED_MEDIA_TYPE, "Content-Type",
                             "send the two images as multipart/form-data or JSON");
    if (strcmp(name, "image1") && strcmp(name, "image2"))
        return proto_verify_request_set(r, name, (const char *)data, e);
    return proto_verify_request_set_image_static(r, name, data, len, e);
}

static int verify_parse_json(void *r, const char *body, size_t len, struct proto_err *e)
{
    return proto_verify_request_parse_json(r, body, len, e);
}

struct srv_param_sink srv_params_verify_sink(struct proto_verify_request *p)
{
    return (struct srv_param_sink){p, verify_set, verify_set_image, verify_parse_json, 0, &p->opt.given,
                                   PROTO_FACE_PARAM_TIMEOUT};
}
