/* proto_face_json.c - the face routes' answers: POST /v1/faces, /v1/verify and their DeepStack aliases,
 * encoded from the results the server fills (proto_face.h). Pure and thread-safe. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "face.h"
#include "proto_detect.h"
#include "proto_face.h"
#include "proto_json.h"

#define num proto_json_round

/* ---- responses ---- */

static json_t *box_json(const struct eng_box *b)
{
    return json_pack("{s:o,s:o,s:o,s:o}", "x1", num(b->x1, 0.01), "y1", num(b->y1, 0.01), "x2",
                     num(b->x2, 0.01), "y2", num(b->y2, 0.01));
}

/* json_real fails (NULL) on a value that is not finite; the packers then fail too. */
static json_t *floats_json(const float *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_real(v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *landmarks_json(const float *xy)
{
    json_t *a = json_array();
    for (int i = 0; a && i < PROTO_FACE_LANDMARKS; i++)
        if (json_array_append_new(
                a, json_pack("[o,o]", num(xy[2 * i], 0.01), num(xy[2 * i + 1], 0.01)))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

static json_t *face_json(const struct proto_face *f)
{
    /* "o*" drops a NULL value's key; a NULL from a failed builder must fail the whole face instead. */
    json_t *lm = NULL, *emb = NULL;
    if (f->landmarks && !(lm = landmarks_json(f->landmarks)))
        return NULL;
    if (f->embedding && !(emb = floats_json(f->embedding, PROTO_FACE_EMBEDDING_DIM))) {
        json_decref(lm);
        return NULL;
    }
    return json_pack("{s:o,s:o,s:o*,s:o*}", "box", box_json(&f->box), "det_score",
                     num(f->det_score, 1e-4), "landmarks", lm, "embedding", emb);
}

static json_t *timing_json(const struct proto_face_timing *t)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "decode", num(t->decode, 0.001), "queue",
                     num(t->queue, 0.001), "detect", num(t->detect, 0.001), "landmarks",
                     num(t->landmarks, 0.001), "embedding", num(t->embedding, 0.001), "total",
                     num(t->total, 0.001));
}

char *proto_faces_response_json(const struct proto_faces_response *r)
{
    json_t *faces = json_array();
    for (int i = 0; faces && i < r->count; i++)
        if (json_array_append_new(faces, face_json(&r->faces[i]))) {
            json_decref(faces);
            faces = NULL;
        }
    json_t *model = json_pack(
        "{s:o,s:o*,s:o*}", "detector",
        proto_json_str(r->detector_model ? r->detector_model : "tiny_face_detector"), "landmarks",
        r->landmark_model ? proto_json_str(r->landmark_model) : NULL, "recognition",
        r->recognition_model ? proto_json_str(r->recognition_model) : NULL);
    /* json_pack steals every "o" reference, even when it fails; "o*" drops a NULL value's key. */
    return proto_json_dump(json_pack(
        "{s:o*,s:o,s:{s:i,s:i,s:b},s:o,s:i,s:o}", "request_id",
        r->request_id ? proto_json_str(r->request_id) : NULL, "model", model, "image", "width",
        r->width, "height", r->height, "exif_rotated", r->exif_rotated != 0, "faces", faces, "count",
        r->count, "timing_ms", timing_json(&r->timing_ms)));
}

/* DeepStack's int(x), on x clamped to [0, max]. */
static json_int_t pixel_int(float v, int max)
{
    return v > 0 ? (v < (float)max ? (json_int_t)v : max) : 0;
}

char *proto_faces_deepstack_json(const struct proto_faces_response *r)
{
    json_t *preds = json_array();
    for (int i = 0; preds && i < r->count; i++) {
        const struct proto_face *f = &r->faces[i];
        json_t *p = json_pack("{s:o,s:I,s:I,s:I,s:I}", "confidence", num(f->det_score, 1e-4), "x_min",
                              pixel_int(f->box.x1, r->width), "y_min", pixel_int(f->box.y1, r->height),
                              "x_max", pixel_int(f->box.x2, r->width), "y_max",
                              pixel_int(f->box.y2, r->height));
        if (json_array_append_new(preds, p)) {
            json_decref(preds);
            preds = NULL;
        }
    }
    return proto_json_dump(
        json_pack("{s:b,s:o,s:i,s:I}", "success", 1, "predictions", preds, "count", r->count,
                  "duration", (json_int_t)proto_duration_ms(r->timing_ms.total)));
}

static json_t *verify_face_json(const struct proto_verify_face *f)
{
    if (!f->detected)
        return json_null();
    return json_pack("{s:o,s:o,s:i,s:b}", "box", box_json(&f->box), "det_score", num(f->det_score, 1e-4),
                     "faces_in_image", f->faces_in_image, "fallback", f->fallback != 0);
}

double proto_verify_similarity(double squared_distance)
{
    return eng_face_confidence(sqrt(squared_distance));
}

char *proto_verify_response_json(const struct proto_verify_response *r)
{
    if (!(r->squared_distance >= 0) || !isfinite(r->squared_distance))
        return NULL;
    const double distance = sqrt(r->squared_distance);
    return proto_json_dump(json_pack(
        "{s:o*,s:b,s:o,s:o,s:o,s:s,s:{s:o,s:o},s:o}", "request_id",
        r->request_id ? proto_json_str(r->request_id) : NULL, "verified",
        distance < r->threshold, "distance", num(distance, 1e-6), "squared_distance",
        num(r->squared_distance, 1e-6), "threshold", num(r->threshold, 1e-6), "metric", "euclidean",
        "faces", "image1", verify_face_json(&r->faces[0]), "image2", verify_face_json(&r->faces[1]),
        "timing_ms", timing_json(&r->timing_ms)));
}

char *proto_verify_deepstack_json(const struct proto_verify_response *r)
{
    if (!(r->squared_distance >= 0) || !isfinite(r->squared_distance))
        return NULL;
    return proto_json_dump(json_pack("{s:b,s:o,s:I}", "success", 1, "similarity",
                                     num(proto_verify_similarity(r->squared_distance), 1e-6),
                                     "duration", (json_int_t)proto_duration_ms(r->timing_ms.total)));
}
