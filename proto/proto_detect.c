/* proto_detect.c - detection results as JSON (jansson). */
#include <jansson.h>

#include "proto_detect.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6) | JSON_PRESERVE_ORDER)

/* Rounds to 0.01 px / 1e-4: more digits would be noise, and short numbers keep lines readable. */
static json_t *num(double v, double unit)
{
    return json_real((double)(long long)(v / unit + (v >= 0 ? 0.5 : -0.5)) * unit);
}

static json_t *detection_json(const struct eng_net *net, const struct eng_detection *d)
{
    char buf[32];
    json_t *box = json_pack("{s:o,s:o,s:o,s:o}", "x1", num(d->box.x1, 0.01), "y1",
                            num(d->box.y1, 0.01), "x2", num(d->box.x2, 0.01), "y2",
                            num(d->box.y2, 0.01));
    return json_pack("{s:i,s:s,s:o,s:o}", "class_id", d->class_id, "label",
                     eng_net_class_name(net, d->class_id, buf, sizeof buf), "confidence",
                     num(d->confidence, 1e-4), "box", box);
}

char *proto_detect_result_json(const struct proto_detect_result *r)
{
    json_t *dets = json_array();
    for (int i = 0; dets && i < r->count; i++)
        json_array_append_new(dets, detection_json(r->net, &r->dets[i]));
    json_t *timing = json_pack("{s:o,s:o,s:o}", "decode", num(r->decode_ms, 0.001), "infer",
                               num(r->infer_ms, 0.001), "nms", num(r->nms_ms, 0.001));
    json_t *doc = json_pack("{s:s?,s:i,s:i,s:s,s:o,s:o}", "image", r->image, "width", r->width,
                            "height", r->height, "model", r->net->name ? r->net->name : "",
                            "detections", dets, "timing_ms", timing);
    char *s = doc ? json_dumps(doc, JSON_FLAGS) : NULL;
    json_decref(doc);
    return s;
}

const char *proto_err_code(enum eng_err_kind kind)
{
    switch (kind) {
    case ENG_ERR_NONE: return "OK";
    case ENG_ERR_INVALID: return "BAD_IMAGE";
    case ENG_ERR_UNSUPPORTED: return "UNSUPPORTED_MEDIA";
    case ENG_ERR_TOO_LARGE: return "TOO_LARGE";
    case ENG_ERR_IO: return "IO_ERROR";
    case ENG_ERR_NOMEM: return "OUT_OF_MEMORY";
    }
    return "INTERNAL";
}

char *proto_detect_error_json(const char *image, const struct eng_err *err)
{
    char msg[ENG_ERR_MSG_MAX + ENG_ERR_WHERE_MAX + 4];
    json_t *doc = json_pack("{s:s?,s:{s:s,s:s}}", "image", image, "error", "code",
                            proto_err_code(err->kind), "message",
                            eng_err_format(err, msg, sizeof msg));
    char *s = doc ? json_dumps(doc, JSON_FLAGS) : NULL;
    json_decref(doc);
    return s;
}
