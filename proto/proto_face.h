/* proto_face.h - the wire format of the face routes: POST /v1/faces and POST /v1/verify, and their
 * DeepStack-compatible aliases POST /v1/vision/face and POST /v1/vision/face/match.
 *
 * Requests are read as for /v1/detect (proto_request.h): the HTTP layer hands over query arguments and
 * form text fields (_set), file fields or a raw body (_set_image_static), or a JSON body
 * (_parse_json), then calls _check once. The same parameter rules apply whatever the form: numbers and
 * booleans as text ("0.5", "true"/"false"/"1"/"0") or as JSON values; JSON null = not given; a
 * parameter given twice (also under an alias) is INVALID_PARAM; unknown parameters are INVALID_PARAM
 * naming them with a hint in the native dialect, ignored in the DeepStack one (as DeepStack does).
 * Error fields are parameter names for text ("det_threshold", "embedding1[3]") and JSON paths for JSON
 * ("$.det_threshold", "$.embedding1[3]").
 *
 * Parameters of both routes:
 *   det_threshold  number in [0,1], 0.5   face detection score threshold (a face is kept if its score is
 *                                         above it). DeepStack alias: min_confidence (DeepStack dialect).
 *   input_size     integer, a multiple of 32 in [128,1024], 416: the detector's square input side
 *                  (face-api's TinyFaceDetectorOptions.inputSize; larger finds smaller faces, slower)
 *   exif           boolean, true: apply the EXIF orientation before anything else
 *   timeout_ms     integer 1..600000: the deadline (0 = the server's default)
 * /v1/faces only:
 *   limit          integer 0..1000, 0 = all: the most faces returned, largest first
 *   landmarks      boolean, true (false in the DeepStack dialect, whose answer has no landmarks)
 *   embedding      boolean, false: add each face's 128-d descriptor
 *   image_b64      the image, base64 or a data:image/...;base64, URI (JSON or text)
 * /v1/verify only:
 *   image1_b64, image2_b64   the images as text (also multipart files image1, image2)
 *   embedding1, embedding2   128 numbers: a JSON array, or text "0.1,-0.2,..." (optionally in [ ])
 *   face_select    "largest" (default: the face with the largest box) or "best" (highest det_score),
 *                  when an image holds several faces
 *   match_threshold number in [0,4], 0.6: the largest Euclidean distance between the descriptors that
 *                  still verifies (verified = distance < match_threshold; the dlib/face-api convention)
 *   aligned        boolean, false: true = the images are aligned face crops (as face-api's 150x150
 *                  chips): skip detection and landmarks, describe the whole image
 * Each side of /v1/verify is an image or an embedding, one of each is fine; a side with neither is
 * BAD_REQUEST naming it ("image2", or "embedding2" when the other side is an embedding), a side with
 * both INVALID_PARAM.
 *
 * A request belongs to one thread at a time; functions on different requests are thread-safe. */
#ifndef PROTO_FACE_H
#define PROTO_FACE_H

#include <stddef.h>
#include <stdint.h>

#include "detect.h"
#include "proto_errors.h"
#include "proto_request.h" /* enum proto_dialect */

#define PROTO_FACE_DET_THRESHOLD_DEFAULT 0.5f
#define PROTO_DEEPSTACK_FACE_DET_THRESHOLD_DEFAULT 0.55f /* /v1/vision/face: DeepStack's min_confidence */
#define PROTO_FACE_INPUT_SIZE_DEFAULT 416
#define PROTO_FACE_INPUT_SIZE_MIN 128
#define PROTO_FACE_INPUT_SIZE_MAX 1024
#define PROTO_FACE_INPUT_SIZE_STEP 32 /* the detector halves its input 5 times */
#define PROTO_FACE_LIMIT_MAX 1000
#define PROTO_FACE_LANDMARKS 68         /* points per face */
#define PROTO_FACE_EMBEDDING_DIM 128    /* values per descriptor */
#define PROTO_FACE_EMBEDDING_ABS_MAX 1000.0 /* |value| bound of a sent embedding (this model's are < 1) */
#define PROTO_MATCH_THRESHOLD_DEFAULT 0.6
#define PROTO_MATCH_THRESHOLD_MAX 4.0

/* Bits of proto_face_options.given: which parameters a request set. */
enum proto_face_param {
    PROTO_FACE_PARAM_DET_THRESHOLD = 1u << 0,
    PROTO_FACE_PARAM_INPUT_SIZE = 1u << 1,
    PROTO_FACE_PARAM_EXIF = 1u << 2,
    PROTO_FACE_PARAM_TIMEOUT = 1u << 3,
    PROTO_FACE_PARAM_API_KEY = 1u << 4,
    PROTO_FACE_PARAM_LIMIT = 1u << 5,      /* /v1/faces */
    PROTO_FACE_PARAM_LANDMARKS = 1u << 6,  /* /v1/faces */
    PROTO_FACE_PARAM_EMBEDDING = 1u << 7,  /* /v1/faces */
    PROTO_FACE_PARAM_IMAGE = 1u << 8,      /* /v1/faces */
    PROTO_FACE_PARAM_FACE_SELECT = 1u << 9,     /* /v1/verify */
    PROTO_FACE_PARAM_MATCH_THRESHOLD = 1u << 10, /* /v1/verify */
    PROTO_FACE_PARAM_ALIGNED = 1u << 11,        /* /v1/verify */
    PROTO_FACE_PARAM_IMAGE1 = 1u << 12,         /* /v1/verify, file or image1_b64 */
    PROTO_FACE_PARAM_IMAGE2 = 1u << 13,
    PROTO_FACE_PARAM_EMBEDDING1 = 1u << 14,
    PROTO_FACE_PARAM_EMBEDDING2 = 1u << 15,
    PROTO_FACE_PARAM_MIN_DET_THRESHOLD = 1u << 16, /* /v1/verify */
};

/* The one-face fallback of /v1/verify: a side with no face at det_threshold takes its best face down to
 * this score, and says so (proto_verify_face.fallback). */
#define PROTO_FACE_MIN_DET_THRESHOLD_DEFAULT 0.1f

/* An encoded image (PNG/JPEG bytes, not decoded). Either borrowed (set_image_static: the caller keeps
 * the bytes alive and unchanged until the request is released) or owned (*_b64: owned ==
 * data, freed on release). data is NULL until given; an empty image has data != NULL and len 0. */
struct proto_image {
    const uint8_t *data;
    size_t len;
    uint8_t *owned;
};

/* What both routes share. Fields are read-only for callers; values not given are the defaults shown. */
struct proto_face_options {
    enum proto_dialect dialect; /* NATIVE: /v1/faces, /v1/verify; DEEPSTACK: /v1/vision/face[/match] */
    unsigned given;             /* PROTO_FACE_PARAM_* bits */
    int from_json;              /* a JSON body was parsed: errors name JSON paths */
    float det_threshold;        /* 0.5 */
    int input_size;             /* 416 */
    int exif;                   /* 1 */
    int timeout_ms;             /* 0 = the server's default */
    char *api_key;              /* owned; DeepStack form field; wiped and freed on release */
};

/* ---- POST /v1/faces, POST /v1/vision/face ---- */

struct proto_face_request {
    struct proto_face_options opt;
    int limit;     /* 0 = all */
    int landmarks; /* 1 (0 in the DeepStack dialect) */
    int embedding; /* 0 */
    struct proto_image image;
};

/* Sets every field to its default. No allocation; cannot fail. */
void proto_face_request_init(struct proto_face_request *req, enum proto_dialect dialect);

/* Frees what the request owns (image, api_key wiped first) and re-inits it with the same dialect.
 * Safe on an initialized request, twice, or on NULL. */
void proto_face_request_release(struct proto_face_request *req);

/* One query argument or form text field; key and value borrowed (value NULL reads as ""). Returns 0,
 * or -1 with *err: INVALID_PARAM naming the key (unknown, wrong type, out of range, given twice, bad
 * base64), UNSUPPORTED_MEDIA_TYPE (a data: URI of another type), INTERNAL (out of memory). */
int proto_face_request_set(struct proto_face_request *req, const char *key, const char *value,
                           struct proto_err *err);

/* The image (raw body, or the multipart file "image"), borrowed until release; data may be NULL when
 * len is 0. INVALID_PARAM "image: given more than once" if the request has one already. */
int proto_face_request_set_image_static(struct proto_face_request *req, const uint8_t *data, size_t len,
                                        struct proto_err *err);

/* A JSON body: one object of parameters, the image in image_b64. body borrowed, need not be
 * NUL-terminated. Errors: BAD_JSON (field "$": not JSON, with line and column; not an object; a
 * member given twice), else as _set with "$.<name>" fields. On failure the request may hold some
 * parameters; release it. */
int proto_face_request_parse_json(struct proto_face_request *req, const char *body, size_t len,
                                  struct proto_err *err);

/* Once every source is in: an image must have come (BAD_REQUEST "image: missing: ..." or
 * "$.image_b64: ..." after a JSON body) and not be empty (BAD_IMAGE). Reads req only. */
int proto_face_request_check(const struct proto_face_request *req, struct proto_err *err);

/* ---- POST /v1/verify, POST /v1/vision/face/match ---- */

enum proto_face_select {
    PROTO_FACE_SELECT_LARGEST = 0, /* the face with the largest box area */
    PROTO_FACE_SELECT_BEST,        /* the face with the highest det_score */
};

enum proto_verify_input {
    PROTO_VERIFY_NONE = 0,
    PROTO_VERIFY_IMAGE,     /* side.image holds the encoded image */
    PROTO_VERIFY_EMBEDDING, /* side.embedding holds the descriptor */
};

struct proto_verify_side {
    enum proto_verify_input input;
    struct proto_image image;
    float embedding[PROTO_FACE_EMBEDDING_DIM]; /* finite, |v| <= PROTO_FACE_EMBEDDING_ABS_MAX */
    char field[PROTO_ERR_FIELD_MAX]; /* where the input came from ("image1", "$.embedding2", ...) */
};

struct proto_verify_request {
    struct proto_face_options opt;
    enum proto_face_select face_select; /* largest */
    double match_threshold;             /* 0.6 (double: compared with the distance exactly) */
    int aligned;                        /* 0 */
    float min_det_threshold;            /* 0.1: the fallback's floor (no fallback if >= det_threshold) */
    struct proto_verify_side side[2];   /* [0]: image1/embedding1, [1]: image2/embedding2 */
};

/* As the proto_face_request functions above. */
void proto_verify_request_init(struct proto_verify_request *req, enum proto_dialect dialect);
void proto_verify_request_release(struct proto_verify_request *req);

/* A query argument or form text field; "embedding1"/"embedding2" take the comma-separated form.
 * Errors as proto_face_request_set. */
int proto_verify_request_set(struct proto_verify_request *req, const char *key, const char *value,
                             struct proto_err *err);

/* A multipart file field: name "image1" or "image2" (borrowed until release). Another name is
 * INVALID_PARAM in the native dialect and ignored (0) in the DeepStack one. The side given twice is
 * INVALID_PARAM "image1: given more than once"; an image for a side that has an embedding is
 * INVALID_PARAM too. */
int proto_verify_request_set_image_static(struct proto_verify_request *req, const char *name,
                                          const uint8_t *data, size_t len, struct proto_err *err);

/* A JSON body (image1_b64, image2_b64, embedding1, embedding2 and parameters). As
 * proto_face_request_parse_json. */
int proto_verify_request_parse_json(struct proto_verify_request *req, const char *body, size_t len,
                                    struct proto_err *err);

/* Once every source is in: both sides given (BAD_REQUEST naming the missing one: "image2" /
 * "$.image2_b64", or "embedding2" / "$.embedding2" when the other side is an embedding), no image
 * empty (BAD_IMAGE). Reads req only. */
int proto_verify_request_check(const struct proto_verify_request *req, struct proto_err *err);

/* ---- errors ---- */

/* NO_FACE for an image in which the detector found no face: field "image" (/v1/faces never answers it:
 * no face there is an empty list), "image1" or "image2" -- the image's name, whatever form it came in.
 * The message gives the det_threshold and input_size used. Returns -1. */
int proto_face_err_no_face(struct proto_err *err, const char *field,
                           const struct proto_face_options *opt);

/* ---- responses ---- */

/* One detected face; every pointer borrowed. */
struct proto_face {
    struct eng_box box;     /* pixels of the upright image, as predicted (not clipped) */
    float det_score;        /* detector score, 0..1 */
    const float *landmarks; /* NULL (omitted), or PROTO_FACE_LANDMARKS (x, y) pairs, in image pixels */
    const float *embedding; /* NULL (omitted), or PROTO_FACE_EMBEDDING_DIM values */
};

/* Milliseconds; for /v1/verify, the sums over both images. */
struct proto_face_timing {
    double decode;    /* decoding and EXIF rotation */
    double queue;     /* waiting for a worker */
    double detect;    /* detector input, forward pass, box decode and NMS */
    double landmarks; /* landmark net */
    double embedding; /* alignment and recognition net */
    double total;     /* arrival to answer */
};

/* One POST /v1/faces answer. */
struct proto_faces_response {
    const char *request_id;        /* NULL: omitted */
    const char *detector_model;    /* NULL: "tiny_face_detector" */
    const char *landmark_model;    /* NULL: not run (omitted) */
    const char *recognition_model; /* NULL: not run (omitted) */
    int width, height;             /* of the upright image */
    int exif_rotated;
    const struct proto_face *faces; /* in answer order: largest first, after the limit */
    int count;
    struct proto_face_timing timing_ms;
};

/* {"request_id","model":{"detector","landmarks"?,"recognition"?},"image":{"width","height",
 *  "exif_rotated"},"faces":[{"box":{"x1","y1","x2","y2"},"det_score","landmarks"?:[[x,y]...],
 *  "embedding"?:[...]}],"count","timing_ms":{"decode","queue","detect","landmarks","embedding","total"}}.
 * Boxes and landmarks rounded to 0.01 px, scores to 1e-4, embedding values to 6 significant digits.
 * New string, caller frees with free(); NULL if out of memory or a number is not finite. Thread-safe. */
char *proto_faces_response_json(const struct proto_faces_response *r);

/* DeepStack's /v1/vision/face answer: {"success":true,"predictions":[{"confidence","x_min","y_min",
 * "x_max","y_max"}],"count","duration"}; coordinates whole pixels (truncated, clamped to the image),
 * confidence rounded to 1e-4, duration timing_ms.total in whole milliseconds. No request_id (it is in the X-Request-Id header). New string, caller frees. */
char *proto_faces_deepstack_json(const struct proto_faces_response *r);

/* The face behind one side of a verification. */
struct proto_verify_face {
    int detected;       /* 0: JSON null (an embedding, or an aligned crop: nothing was detected) */
    struct eng_box box; /* the face selected, in pixels of the upright image */
    float det_score;
    int faces_in_image; /* faces the detector found, >= 1 */
    int fallback;       /* none at det_threshold: the best face at or above min_det_threshold */
};

/* One POST /v1/verify answer. */
struct proto_verify_response {
    const char *request_id;   /* NULL: omitted */
    double squared_distance;  /* ||f(x1) - f(x2)||^2, the Siamese distance, >= 0 */
    double threshold;         /* the match_threshold used */
    struct proto_verify_face faces[2];
    struct proto_face_timing timing_ms;
};

/* {"request_id","verified","distance","squared_distance","threshold","metric":"euclidean",
 *  "faces":{"image1":{"box","det_score","faces_in_image"}|null,"image2":...},"timing_ms":{...}}.
 * distance = sqrt(squared_distance); verified = distance < threshold (strict, as face-api's
 * FaceMatcher), decided before rounding; distances and threshold rounded to 1e-6 and, like every
 * number this module writes, to 6 significant digits (so to 1e-5 from 1 up). New string, caller
 * frees; NULL if out of memory or squared_distance is negative or not finite. */
char *proto_verify_response_json(const struct proto_verify_response *r);

/* DeepStack's "similarity" in (0,1] for a squared Euclidean distance d2: eng_face_confidence(sqrt(d2)),
 * f(d) = 0.67^(d / 0.6) (engine/face.h, docs/FACES.md): 1 for identical descriptors, 0.67 exactly at
 * the default match distance 0.6 (DeepStack's default recognition threshold), lower as faces differ;
 * strictly decreasing, so no information is lost: distance = eng_face_confidence_distance(s). Pure. */
double proto_verify_similarity(double squared_distance);

/* DeepStack's /v1/vision/face/match answer: {"success":true,"similarity":s,"duration":ms} with s from
 * proto_verify_similarity, rounded to 1e-6, and timing_ms.total in whole milliseconds. New string, caller frees; NULL as for the native one. */
char *proto_verify_deepstack_json(const struct proto_verify_response *r);

#endif
