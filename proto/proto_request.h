/* proto_request.h - the parameters of POST /v1/detect and POST /v1/vision/detection.
 *
 * The HTTP layer (which alone knows about HTTP) hands us what a request carried, in any of its forms:
 *   raw body + query string : proto_detect_request_set() per query argument, the body as the image
 *   multipart/form-data     : proto_detect_request_set() per text field, the "image" file as the image
 *   JSON body               : proto_detect_request_parse_json() (plus query arguments, if any)
 * then calls proto_detect_request_check() once everything is in, and, on the worker that knows the
 * model, proto_detect_request_params() to get the engine's parameters.
 *
 * Parameters (JSON type / query or form text):
 *   model        string                     name of a loaded model; absent = the server's default
 *   conf         number in [0,1]  "0.5"     alias min_confidence (DeepStack)
 *   iou          number in [0,1]  "0.45"
 *   agnostic_nms boolean          "true"/"false"/"1"/"0" (case-insensitive); alias agnostic
 *   max_det      integer 1..1000  "100"
 *   classes      [names or ids] or "person,car,2"
 *   exif         boolean          as agnostic_nms
 *   timeout_ms   integer 1..600000
 *   image_b64    string: base64 (standard or URL-safe, whitespace ignored) or a data:image/...;base64, URI
 *   api_key      DeepStack dialect only (its form field); kept so the HTTP layer can check it
 * A JSON null means "not given". A parameter given twice (also as name and alias) is an error.
 * Unknown parameters are an error (INVALID_PARAM naming it, with a "did you mean" hint) in the native
 * dialect; the DeepStack dialect ignores them, as DeepStack does, so its clients keep working.
 *
 * Errors fill a struct proto_err (proto_errors.h) whose field is the parameter's name for query/form
 * input ("conf") and a JSON path for JSON input ("$.conf", "$.classes[1]"), e.g.
 *   INVALID_PARAM "$.conf: expected a number between 0 and 1, got 1.5"
 * A request belongs to one thread at a time; functions on different requests are thread-safe. */
#ifndef PROTO_REQUEST_H
#define PROTO_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "net.h"
#include "proto_errors.h"

#define PROTO_CONF_DEFAULT 0.25f
#define PROTO_DEEPSTACK_CONF_DEFAULT 0.40f /* min_confidence on /v1/vision/detection and custom/ */
#define PROTO_IOU_DEFAULT 0.45f
#define PROTO_MAX_DET_DEFAULT 100
#define PROTO_MAX_DET_MAX 1000
#define PROTO_TIMEOUT_MS_MAX 600000
#define PROTO_NAME_MAX 128    /* longest model or class name accepted */
#define PROTO_CLASSES_MAX 1024 /* most entries in "classes" */

/* Bits of proto_detect_request.given: which parameters the request set. */
enum proto_param {
    PROTO_PARAM_MODEL = 1u << 0,
    PROTO_PARAM_CONF = 1u << 1,
    PROTO_PARAM_IOU = 1u << 2,
    PROTO_PARAM_AGNOSTIC = 1u << 3,
    PROTO_PARAM_MAX_DET = 1u << 4,
    PROTO_PARAM_CLASSES = 1u << 5,
    PROTO_PARAM_EXIF = 1u << 6,
    PROTO_PARAM_TIMEOUT = 1u << 7,
    PROTO_PARAM_IMAGE = 1u << 8,
    PROTO_PARAM_API_KEY = 1u << 9,
};

/* Fields are read-only for callers; change them through the functions below. Values of parameters
 * not given are the defaults shown. */
struct proto_detect_request {
    enum proto_dialect dialect;
    unsigned given;   /* PROTO_PARAM_* bits */
    int from_json;    /* parse_json was used: errors name JSON paths */
    char *model;      /* owned; NULL = the server's default model */
    float conf;       /* 0.25 */
    float iou;        /* 0.45 */
    int agnostic;     /* 0 */
    int max_det;      /* 100 */
    char **classes;   /* owned; n_classes names or decimal ids, as given; none = every class */
    int n_classes;
    char classes_field[PROTO_ERR_FIELD_MAX]; /* where they came from: "classes" or "$.classes" */
    int classes_indexed; /* from a JSON array: an entry's errors name "$.classes[i]" */
    int exif;         /* 1: apply EXIF orientation */
    int timeout_ms;   /* 0 = the server's default */
    /* The encoded image (PNG/JPEG bytes, not yet decoded). Either borrowed (set_image_static: the
     * caller keeps the bytes alive until release) or owned (image_b64: image_owned ==
     * image, freed by release). */
    const uint8_t *image;
    size_t image_len;
    uint8_t *image_owned;
    char *api_key;    /* owned, DeepStack form field; wiped and freed by release */
};

/* Sets every field to its default. No allocation; cannot fail. */
void proto_detect_request_init(struct proto_detect_request *req, enum proto_dialect dialect);

/* Frees what the request owns (model, classes, owned image, api_key wiped first) and re-inits it
 * with the same dialect. Safe on an initialized request, twice, or on NULL. */
void proto_detect_request_release(struct proto_detect_request *req);

/* One query argument or form text field. key and value are borrowed (copied as needed); value NULL
 * is read as "". Returns 0, or -1 with *err (INVALID_PARAM naming the key; UNSUPPORTED_MEDIA_TYPE for a
 * data: URI that is not an image; INTERNAL when out of memory). */
int proto_detect_request_set(struct proto_detect_request *req, const char *key, const char *value,
                             struct proto_err *err);

/* The image bytes (raw body or multipart file), borrowed: they must stay valid and unchanged until
 * proto_detect_request_release. Fails (INVALID_PARAM "image: given more than once") if the request
 * already has an image. data may be NULL when len is 0. */
int proto_detect_request_set_image_static(struct proto_detect_request *req, const uint8_t *data,
                                          size_t len, struct proto_err *err);

/* A JSON body: one object whose members are parameters (image_b64 holds the image). body is borrowed
 * and need not be NUL-terminated. Errors: BAD_JSON (not JSON: the message gives line and column; or
 * not an object), INVALID_PARAM (unknown member, wrong type, out of range, bad base64), as for _set.
 * On failure the request may hold some of the parameters; release it. */
int proto_detect_request_parse_json(struct proto_detect_request *req, const char *body, size_t len,
                                    struct proto_err *err);

/* Once every source is in: the request must have an image (BAD_REQUEST "image: missing ...") that is
 * not empty (BAD_IMAGE). */
int proto_detect_request_check(const struct proto_detect_request *req, struct proto_err *err);

/* The engine's parameters for this request on `net`: *out = *defaults (the model's; NULL: the
 * engine's), then conf, iou, agnostic and max_det as given; on the DeepStack dialect conf not given is
 * PROTO_DEEPSTACK_CONF_DEFAULT, DeepStack's own default. When classes were given they are resolved
 * against net (exact name, COCO's names too on the DeepStack dialect (proto_labels.h), else id) into class_mask (net->classes bytes, caller-owned, must outlive
 * *out) and out->class_allowed = class_mask; an unknown name or an id out of range is INVALID_PARAM
 * naming the entry ("$.classes[1]" or "classes"). Reads req and net only: thread-safe. */
int proto_detect_request_params(const struct proto_detect_request *req, const struct eng_net *net,
                                const struct eng_detect_params *defaults, unsigned char *class_mask,
                                struct eng_detect_params *out, struct proto_err *err);

/* Decodes base64 (RFC 4648): the standard (+/) or the URL-safe (-_) alphabet (not both), ASCII
 * whitespace ignored, '=' padding optional but, when present, correct and last. On success *out is a
 * new buffer (caller frees; never NULL, even for empty input) of *out_len bytes. On failure -1 with
 * INVALID_PARAM naming `field` and the offset of the problem (plus `offset_base`, so offsets can count
 * from the start of a data: URI). */
int proto_base64_decode(const char *in, size_t len, const char *field, size_t offset_base,
                        uint8_t **out, size_t *out_len, struct proto_err *err);

#endif
