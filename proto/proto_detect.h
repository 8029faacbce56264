/* proto_detect.h - the JSON form of detection results, shared by the CLI and the HTTP API. */
#ifndef PROTO_DETECT_H
#define PROTO_DETECT_H

#include "detect.h"
#include "eng_err.h"
#include "net.h"

struct proto_detect_result {
    const char *image; /* file name or NULL */
    int width, height; /* of the upright image */
    const struct eng_net *net;
    const struct eng_detection *dets;
    int count;
    double decode_ms, infer_ms, nms_ms;
};

/* One-line JSON document for a result. New string, caller frees with free(); NULL if out of memory. */
char *proto_detect_result_json(const struct proto_detect_result *r);

/* {"image": ..., "error": {"code": ..., "message": ...}} for an image that could not be processed.
 * New string, caller frees. */
char *proto_detect_error_json(const char *image, const struct eng_err *err);

/* The machine-readable code for an engine error kind ("BAD_IMAGE", "UNSUPPORTED_MEDIA", ...). */
const char *proto_err_code(enum eng_err_kind kind);

#endif
